// /staff/calendario: an official's smart-working calendar — the month at a glance, the working
// pattern (on site / remote / off per weekday, hours, contact band, date exceptions), absences,
// external calendars (ICS subscriptions and uploads) and the outgoing feeds. An administrator picks
// whose calendar to edit (`?user=<id>` on every call). Contract: server/src/api/calendar.rs.

import { addStrings, getLang, initPage, onLangChange, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { clearErrors, el, showError } from '../shared/dom.js';
import { announce, labelCells, wireCopy, ZONE } from './common.js';

addStrings({
  it: {
    'cal.doctitle': 'Il mio calendario — {municipality}',
    'cal.title': 'Il mio calendario',
    'cal.login': 'Vai all\'accesso del personale',
    'cal.session': 'Non hai effettuato l\'accesso, o la sessione è scaduta.',
    'cal.user': 'Calendario di',
    'cal.user.help': 'Come amministratore puoi modificare il calendario di ogni funzionario.',
    'cal.user.self': '{name} (io)',
    'cal.who': 'Calendario di {name}',
    'wd.0': 'Lun', 'wd.1': 'Mar', 'wd.2': 'Mer', 'wd.3': 'Gio', 'wd.4': 'Ven', 'wd.5': 'Sab', 'wd.6': 'Dom',

    'month.title': 'Il mese',
    'month.prev': '‹ Mese precedente',
    'month.next': 'Mese successivo ›',
    'month.legend': 'Legenda',
    'month.caption': '{month}: giorni in sede, da remoto, assenze, festivi e appuntamenti (ora di Roma).',
    'month.shown': 'Mostrato {month}.',
    'month.today': 'oggi',
    'day.status.on_site': 'In sede',
    'day.status.remote': 'Remoto',
    'day.status.absent': 'Assente',
    'day.status.holiday': 'Festivo',
    'day.status.holiday.named': 'Festivo ({name})',
    'day.status.off': 'Riposo',
    'day.contact': 'Contatto {range}',
    'day.busy': 'Occupato {range}',
    'day.appointments': 'Appuntamenti',

    'pat.title': 'Piano di lavoro',
    'pat.help': 'Per ogni giorno: in sede, da remoto o non lavorativo; l\'orario di lavoro (fasce separate da virgola) e la fascia di contattabilità, in cui i cittadini possono prenotare. Dalle 22:00 alle 06:00 e nelle 11 ore di riposo tra un giorno e l\'altro non viene mai offerto nulla, qualunque cosa dica il piano.',
    'pat.follow': 'Segui l\'orario di apertura dell\'ufficio',
    'pat.follow.help': 'Senza un piano personale sei disponibile, in sede, negli orari di apertura dei tuoi uffici.',
    'pat.mode': 'Modalità',
    'pat.mode.on_site': 'In sede',
    'pat.mode.remote': 'Da remoto',
    'pat.mode.off': 'Non lavorativo',
    'pat.hours': 'Orario di lavoro',
    'pat.hours.ph': '08:00-14:00, 15:00-18:00',
    'pat.contact': 'Fascia di contattabilità',
    'pat.save': 'Salva il piano di lavoro',
    'pat.saved': 'Piano di lavoro salvato.',
    'pat.invalid.hours': '{day}: orario non valido. Usa «HH:MM-HH:MM», più fasce separate da virgola.',
    'pat.invalid.contact': '{day}: fascia di contattabilità non valida. Usa «HH:MM-HH:MM».',
    'pat.invalid.empty': '{day}: indica l\'orario di lavoro, oppure scegli «Non lavorativo».',
    'pat.preview.removed': 'Attenzione: con questo piano i cittadini perderebbero {removed} orari prenotabili su {before}, da oggi al {to}.',
    'pat.preview.added': 'Con questo piano i cittadini avrebbero {added} orari prenotabili in più, da oggi al {to}.',
    'pat.preview.none': 'Questo piano non cambia gli orari prenotabili dai cittadini.',
    'pat.preview.service': '{service} ({office}): {before} → {after} orari',
    'pat.preview.ask': 'Controlla il piano, oppure salvalo comunque.',
    'pat.preview.confirm': 'Salva comunque',
    'pat.preview.error': 'Non è stato possibile calcolare quanti orari prenotabili cambiano.',
    'exc.title': 'Eccezioni per singole date',
    'exc.empty': 'Nessuna eccezione.',
    'exc.date': 'Data',
    'exc.add': 'Aggiungi l\'eccezione',
    'exc.remove': 'Rimuovi',
    'exc.remove.label': 'Rimuovi l\'eccezione del {date}',
    'exc.nodate': 'Scegli la data dell\'eccezione.',
    'exc.added': 'Eccezione aggiunta: salva il piano di lavoro per renderla effettiva.',
    'exc.removed': 'Eccezione rimossa: salva il piano di lavoro per renderla effettiva.',

    'abs.title': 'Assenze',
    'abs.caption': 'Assenze dell\'ultimo mese e future.',
    'abs.kind': 'Tipo',
    'abs.when': 'Quando',
    'abs.note': 'Nota',
    'abs.new': 'Nuova assenza',
    'abs.kind.holiday': 'Ferie',
    'abs.kind.sick': 'Malattia',
    'abs.kind.training': 'Formazione',
    'abs.kind.other': 'Altro',
    'abs.start': 'Dal',
    'abs.end': 'Al (vuoto = un solo giorno)',
    'abs.start_time': 'Dalle ore (permesso orario)',
    'abs.end_time': 'Alle ore (permesso orario)',
    'abs.time.help': 'Lascia vuoti gli orari per un\'assenza di giornate intere. Un permesso orario toglie anche l\'obbligo di contattabilità in quelle ore.',
    'abs.add': 'Aggiungi l\'assenza',
    'abs.added': 'Assenza aggiunta.',
    'abs.deleted': 'Assenza eliminata.',
    'abs.delete': 'Elimina',
    'abs.delete.label': 'Elimina l\'assenza {what}',
    'abs.confirm.delete': 'Eliminare l\'assenza {what}?',
    'abs.none': 'Nessuna assenza.',
    'abs.nostart': 'Indica il primo giorno dell\'assenza.',
    'abs.badtimes': 'Per un permesso orario indica sia l\'ora di inizio sia quella di fine.',
    'abs.range': 'dal {start} al {end}',
    'abs.times': '{date}, {start}–{end}',

    'src.title': 'Calendari esterni',
    'src.help': 'Gli impegni dei tuoi calendari (Outlook, Google, Thunderbird…) diventano orari occupati: in quegli orari non si prenota. Si leggono solo inizio e fine, mai i titoli.',
    'src.empty': 'Nessun calendario esterno.',
    'src.url.title': 'Abbonati a un calendario (link ICS)',
    'src.label': 'Nome',
    'src.url': 'Indirizzo del calendario (https://… .ics)',
    'src.add': 'Aggiungi il calendario',
    'src.up.title': 'Carica un file .ics',
    'src.file': 'File .ics',
    'src.upload': 'Carica il file',
    'src.uploaded': 'File caricato',
    'src.added': 'Calendario aggiunto.',
    'src.refreshed': 'Calendario «{label}» aggiornato.',
    'src.deleted': 'Calendario eliminato.',
    'src.refresh': 'Aggiorna ora',
    'src.refresh.label': 'Aggiorna ora il calendario «{label}»',
    'src.delete': 'Elimina',
    'src.delete.label': 'Elimina il calendario «{label}»',
    'src.confirm.delete': 'Eliminare il calendario «{label}»? I suoi orari occupati non conteranno più.',
    'src.last': 'Ultimo aggiornamento riuscito: {when}',
    'src.never': 'Mai aggiornato con successo',
    'src.tried': 'ultimo tentativo: {when}',
    'src.busy': 'Orari occupati: {n}',
    'src.error': 'Errore all\'ultimo aggiornamento (restano validi gli orari occupati precedenti): {error}',
    'src.nolabel': 'Dai un nome al calendario.',
    'src.nourl': 'Indica l\'indirizzo del calendario, che inizia con https://.',
    'src.nofile': 'Scegli un file .ics.',
    'src.toolarge': 'Il file è troppo grande.',

    'feed.title': 'Feed del calendario',
    'feed.help': 'Aggiungi questi link al tuo calendario come «calendario in abbonamento» per vedere appuntamenti e giorni in sede o da remoto. Sono segreti: chi ha il link vede gli appuntamenti. Google Calendar aggiorna i calendari in abbonamento ogni 12–24 ore.',
    'feed.official': 'Il mio calendario (personale)',
    'feed.office': 'Ufficio: {name}',
    'feed.rotate': 'Rigenera i link',
    'feed.rotate.help': 'I link attuali smettono di funzionare: dovrai aggiungere di nuovo quelli nuovi ai tuoi calendari.',
    'feed.rotate.confirm': 'Rigenerare i link? Quelli attuali smetteranno subito di funzionare.',
    'feed.rotated': 'Link rigenerati: aggiorna gli abbonamenti nei tuoi calendari.',
    'feed.copy.label': 'Copia il link: {what}',
  },
  en: {
    'cal.doctitle': 'My calendar — {municipality}',
    'cal.title': 'My calendar',
    'cal.login': 'Go to the staff login',
    'cal.session': 'You are not logged in, or your session has expired.',
    'cal.user': 'Calendar of',
    'cal.user.help': 'As an administrator you can edit every official\'s calendar.',
    'cal.user.self': '{name} (me)',
    'cal.who': 'Calendar of {name}',
    'wd.0': 'Mon', 'wd.1': 'Tue', 'wd.2': 'Wed', 'wd.3': 'Thu', 'wd.4': 'Fri', 'wd.5': 'Sat', 'wd.6': 'Sun',

    'month.title': 'The month',
    'month.prev': '‹ Previous month',
    'month.next': 'Next month ›',
    'month.legend': 'Legend',
    'month.caption': '{month}: days on site, remote, absences, holidays and appointments (Rome time).',
    'month.shown': 'Showing {month}.',
    'month.today': 'today',
    'day.status.on_site': 'On site',
    'day.status.remote': 'Remote',
    'day.status.absent': 'Absent',
    'day.status.holiday': 'Holiday',
    'day.status.holiday.named': 'Holiday ({name})',
    'day.status.off': 'Rest day',
    'day.contact': 'Contact {range}',
    'day.busy': 'Busy {range}',
    'day.appointments': 'Appointments',

    'pat.title': 'Working pattern',
    'pat.help': 'For each day: on site, remote or not working; the working hours (ranges separated by commas) and the contact band, in which citizens can book. Between 22:00 and 06:00 and during the 11 hours of rest between two days nothing is ever offered, whatever the pattern says.',
    'pat.follow': 'Follow the office\'s opening hours',
    'pat.follow.help': 'Without a personal pattern you are available, on site, during your offices\' opening hours.',
    'pat.mode': 'Mode',
    'pat.mode.on_site': 'On site',
    'pat.mode.remote': 'Remote',
    'pat.mode.off': 'Not working',
    'pat.hours': 'Working hours',
    'pat.hours.ph': '08:00-14:00, 15:00-18:00',
    'pat.contact': 'Contact band',
    'pat.save': 'Save the working pattern',
    'pat.saved': 'Working pattern saved.',
    'pat.invalid.hours': '{day}: invalid hours. Use «HH:MM-HH:MM», several ranges separated by commas.',
    'pat.invalid.contact': '{day}: invalid contact band. Use «HH:MM-HH:MM».',
    'pat.invalid.empty': '{day}: enter the working hours, or choose «Not working».',
    'pat.preview.removed': 'Warning: with this pattern citizens would lose {removed} of {before} bookable times, from today to {to}.',
    'pat.preview.added': 'With this pattern citizens would have {added} more bookable times, from today to {to}.',
    'pat.preview.none': 'This pattern does not change the times citizens can book.',
    'pat.preview.service': '{service} ({office}): {before} → {after} times',
    'pat.preview.ask': 'Check the pattern, or save it anyway.',
    'pat.preview.confirm': 'Save anyway',
    'pat.preview.error': 'It was not possible to work out how many bookable times change.',
    'exc.title': 'Exceptions for single dates',
    'exc.empty': 'No exceptions.',
    'exc.date': 'Date',
    'exc.add': 'Add the exception',
    'exc.remove': 'Remove',
    'exc.remove.label': 'Remove the exception of {date}',
    'exc.nodate': 'Choose the date of the exception.',
    'exc.added': 'Exception added: save the working pattern to apply it.',
    'exc.removed': 'Exception removed: save the working pattern to apply it.',

    'abs.title': 'Absences',
    'abs.caption': 'Absences of the last month and ahead.',
    'abs.kind': 'Kind',
    'abs.when': 'When',
    'abs.note': 'Note',
    'abs.new': 'New absence',
    'abs.kind.holiday': 'Holiday',
    'abs.kind.sick': 'Sick leave',
    'abs.kind.training': 'Training',
    'abs.kind.other': 'Other',
    'abs.start': 'From',
    'abs.end': 'To (empty = a single day)',
    'abs.start_time': 'From time (hourly leave)',
    'abs.end_time': 'To time (hourly leave)',
    'abs.time.help': 'Leave the times empty for whole days. Hourly leave also lifts the contact obligation in those hours.',
    'abs.add': 'Add the absence',
    'abs.added': 'Absence added.',
    'abs.deleted': 'Absence deleted.',
    'abs.delete': 'Delete',
    'abs.delete.label': 'Delete the absence {what}',
    'abs.confirm.delete': 'Delete the absence {what}?',
    'abs.none': 'No absences.',
    'abs.nostart': 'Enter the first day of the absence.',
    'abs.badtimes': 'For hourly leave enter both the start and the end time.',
    'abs.range': 'from {start} to {end}',
    'abs.times': '{date}, {start}–{end}',

    'src.title': 'External calendars',
    'src.help': 'The events of your own calendars (Outlook, Google, Thunderbird…) become busy times: nobody can book then. Only start and end are read, never the titles.',
    'src.empty': 'No external calendars.',
    'src.url.title': 'Subscribe to a calendar (ICS link)',
    'src.label': 'Name',
    'src.url': 'Calendar address (https://… .ics)',
    'src.add': 'Add the calendar',
    'src.up.title': 'Upload an .ics file',
    'src.file': '.ics file',
    'src.upload': 'Upload the file',
    'src.uploaded': 'Uploaded file',
    'src.added': 'Calendar added.',
    'src.refreshed': 'Calendar «{label}» updated.',
    'src.deleted': 'Calendar deleted.',
    'src.refresh': 'Update now',
    'src.refresh.label': 'Update the calendar «{label}» now',
    'src.delete': 'Delete',
    'src.delete.label': 'Delete the calendar «{label}»',
    'src.confirm.delete': 'Delete the calendar «{label}»? Its busy times will no longer count.',
    'src.last': 'Last successful update: {when}',
    'src.never': 'Never updated successfully',
    'src.tried': 'last attempt: {when}',
    'src.busy': 'Busy times: {n}',
    'src.error': 'The last update failed (the previous busy times still apply): {error}',
    'src.nolabel': 'Give the calendar a name.',
    'src.nourl': 'Enter the calendar\'s address, starting with https://.',
    'src.nofile': 'Choose an .ics file.',
    'src.toolarge': 'The file is too large.',

    'feed.title': 'Calendar feeds',
    'feed.help': 'Add these links to your calendar as a «subscribed calendar» to see appointments and on-site or remote days. They are secret: whoever has a link sees the appointments. Google Calendar refreshes subscribed calendars every 12–24 hours.',
    'feed.official': 'My calendar (personal)',
    'feed.office': 'Office: {name}',
    'feed.rotate': 'Regenerate the links',
    'feed.rotate.help': 'The current links stop working: you will have to add the new ones to your calendars again.',
    'feed.rotate.confirm': 'Regenerate the links? The current ones will stop working at once.',
    'feed.rotated': 'Links regenerated: update the subscriptions in your calendars.',
    'feed.copy.label': 'Copy the link: {what}',
  },
});

const $ = (id) => document.getElementById(id);
const RANGE = /^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/;
const MODES = ['on_site', 'remote', 'off'];
const STATUS_ICON = { on_site: '■', remote: '◆', absent: '✕', holiday: '★', off: '○' };
/** What a new personal pattern starts from when no office hours are known: Monday–Friday on site. */
const DEFAULT_DAY = { mode: 'on_site', hours: ['08:00-14:00'], contact: '09:00-12:00' };

let me = null;
/** The user whose calendar is shown; null = oneself (no `?user=`). */
let subject = null;
let month = null;
let monthData = null;
let absences = [];
let sources = [];
let feeds = null;
/** The exceptions being edited, by date (saved with the pattern). */
let exceptions = {};

// --- helpers ---------------------------------------------------------------------------------------

/** `path` with `?user=` (or `&user=`) when an administrator looks at someone else's calendar. */
function q(path) {
  if (!subject) return path;
  return `${path}${path.includes('?') ? '&' : '?'}user=${encodeURIComponent(subject)}`;
}

const cal = (path) => q(`/api/staff/calendar${path}`);

function locale() {
  return getLang() === 'en' ? 'en-GB' : 'it-IT';
}

/** Today in Rome as YYYY-MM-DD. */
function todayRome() {
  return new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
}

function addDays(iso, n) {
  const d = new Date(`${iso}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

function shiftMonth(ym, n) {
  const [y, m] = ym.split('-').map(Number);
  const d = new Date(Date.UTC(y, m - 1 + n, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

function fmtMonth(ym) {
  const [y, m] = ym.split('-').map(Number);
  return new Intl.DateTimeFormat(locale(), { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(new Date(Date.UTC(y, m - 1, 15)));
}

/** "lun 9 mar 2026" for a civil date. */
function fmtDate(iso) {
  return new Intl.DateTimeFormat(locale(), { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })
    .format(new Date(`${iso}T12:00:00Z`));
}

/** A time of day in Rome: "HH:MM" strings as they are, instants converted. */
function fmtClock(value) {
  if (!value) return '';
  if (/^\d\d:\d\d$/.test(value)) return value;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return new Intl.DateTimeFormat(locale(), { timeZone: ZONE, hour: '2-digit', minute: '2-digit' }).format(d);
}

function fmtInstant(value) {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return new Intl.DateTimeFormat(locale(), {
    timeZone: ZONE, day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
  }).format(d);
}

const range = (r) => r.replace('-', '–');

/** A 401 anywhere means the session ended: say so and point at the login. */
function sessionLost(error) {
  if (error.status !== 401) return false;
  denied(t('cal.session'), true);
  return true;
}

function denied(message, login) {
  $('loading').hidden = true;
  $('cal-view').hidden = true;
  $('cal-denied-text').textContent = message;
  $('cal-login').hidden = !login;
  $('cal-denied').hidden = false;
}

/** A server error (an ApiError) in `box`; 401 ends the page. */
function fail(box, error, fields = []) {
  if (sessionLost(error)) return;
  showError(box, error.message, fields);
}

/** GETs `path` for a list: its data, or `null` after showing the failure in the box `errorId`. */
async function fetchList(path, errorId) {
  let data;
  try {
    data = await api(path);
  } catch (e) {
    fail($(errorId), e);
    return null;
  }
  showError($(errorId), '');
  return data;
}

/**
 * Sends a validated form with its button disabled meanwhile (`send` resolves or throws an error
 * with a message). A failure is shown in `box`, `field` marked and focused; success resets the
 * form, announces `done` and reloads what it changed.
 */
async function sendForm({ form, button, box, field, send, done, reload }) {
  $(button).disabled = true;
  try {
    await send();
  } catch (e) {
    $(button).disabled = false;
    fail(box, e, [field]);
    field.focus();
    return;
  }
  $(button).disabled = false;
  form.reset();
  announce(t(done));
  await Promise.all(reload.map((load) => load()));
}

/** A raw-body POST (the .ics upload); a refusal without a message is "file too large" on 413. */
async function postRaw(path, raw, type) {
  try {
    return await api(path, { method: 'POST', raw, type });
  } catch (e) {
    if (e.status === 413 && e.code === 'http_413') e.message = t('src.toolarge');
    throw e;
  }
}

// --- who ---------------------------------------------------------------------------------------------

async function loadUsers() {
  if (me.user.role !== 'admin') return;
  let list;
  try {
    list = await api('/api/admin/users');
  } catch {
    return;
  }
  const select = $('user-select');
  const others = list.filter((u) => u.id !== me.user.id && u.active && u.role === 'official');
  select.replaceChildren(
    el('option', { value: '', text: t('cal.user.self', { name: me.user.display_name }) }),
    ...others.map((u) => el('option', { value: u.id, text: `${u.display_name} — ${u.email}` })));
  select.value = subject ?? '';
  $('user-picker').hidden = false;
}

function renderWho() {
  const select = $('user-select');
  const name = subject ? select.selectedOptions[0]?.textContent ?? subject : me.user.display_name;
  $('cal-who').textContent = t('cal.who', { name });
}

async function loadAll() {
  renderWho();
  await Promise.all([loadMonth(), loadPattern(), loadAbsences(), loadSources(), loadFeeds()]);
}

// --- the month ---------------------------------------------------------------------------------------

async function loadMonth() {
  const wanted = `${month}|${subject}`;
  let data;
  try {
    data = await api(cal(`/month?month=${month}`));
  } catch (e) {
    // Quick clicks on the month buttons: only the answer for the month now shown counts.
    if (wanted === `${month}|${subject}`) fail($('month-error'), e);
    return;
  }
  if (wanted !== `${month}|${subject}`) return;
  showError($('month-error'), '');
  monthData = data;
  renderMonth();
}

function statusText(day) {
  if (day.status === 'holiday') {
    return day.holiday ? t('day.status.holiday.named', { name: day.holiday }) : t('day.status.holiday');
  }
  return t('day.status.' + day.status);
}

function dayCell(day, today) {
  const status = MODES.includes(day.status) || ['absent', 'holiday'].includes(day.status) ? day.status : 'off';
  const parts = [
    el('p', { class: 'day-num' }, el('time', { datetime: day.date, text: String(Number(day.date.slice(8, 10))) }),
      day.date === today ? el('span', { class: 'day-today', text: ` · ${t('month.today')}` }) : null),
    el('p', { class: 'day-status' }, el('span', { 'aria-hidden': 'true', text: `${STATUS_ICON[status]} ` }), statusText(day)),
  ];
  // On a holiday or a whole day of absence the plan's hours and contact band are not in force.
  const working = status !== 'holiday' && status !== 'absent';
  if (working && day.hours?.length) parts.push(el('p', { class: 'day-hours', text: day.hours.map(range).join(', ') }));
  if (working && day.contact) parts.push(el('p', { class: 'day-line', text: t('day.contact', { range: range(day.contact) }) }));
  for (const a of day.absences ?? []) {
    const times = a.start_time && a.end_time ? ` ${a.start_time}–${a.end_time}` : '';
    parts.push(el('p', { class: 'day-line day-absence', text: `${t('abs.kind.' + a.kind)}${times}` }));
  }
  for (const b of day.busy ?? []) {
    parts.push(el('p', { class: 'day-line day-busy', title: sources.find((x) => x.id === b.source)?.label ?? '', text: t('day.busy', { range: `${fmtClock(b.start)}–${fmtClock(b.end)}` }) }));
  }
  if (day.appointments?.length) {
    parts.push(el('ul', { class: 'day-appts', 'aria-label': t('day.appointments') },
      ...day.appointments.map((a) => el('li', { class: `day-appt day-appt--${a.status}`, dataset: { appointmentId: a.id } },
        el('time', { datetime: a.start, text: fmtClock(a.start) }), ` ${a.service}`,
        a.status && a.status !== 'confirmed' ? ` (${t('status.' + a.status)})` : null))));
  }
  return el('td', {
    class: `day day--${status}`, dataset: { date: day.date, status: day.status },
    'aria-current': day.date === today ? 'date' : null,
  }, ...parts);
}

function renderMonth() {
  const label = fmtMonth(month);
  $('month-label').textContent = label;
  $('month-caption').textContent = t('month.caption', { month: label });
  const tbody = $('month-grid').querySelector('tbody');
  const days = monthData?.days ?? [];
  const today = todayRome();
  const rows = [];
  let cells = [];
  const lead = days.length ? (days[0].weekday || 1) - 1 : 0;
  for (let i = 0; i < lead; i++) cells.push(el('td', { class: 'day day--blank' }));
  for (const day of days) {
    cells.push(dayCell(day, today));
    if (cells.length === 7) {
      rows.push(el('tr', {}, ...cells));
      cells = [];
    }
  }
  if (cells.length) {
    while (cells.length < 7) cells.push(el('td', { class: 'day day--blank' }));
    rows.push(el('tr', {}, ...cells));
  }
  tbody.replaceChildren(...rows);
  labelCells($('month-grid'));
}

function wireMonth() {
  const go = async (n) => {
    month = shiftMonth(month, n);
    await loadMonth();
    announce(t('month.shown', { month: fmtMonth(month) }));
  };
  $('month-prev').addEventListener('click', () => go(-1));
  $('month-next').addEventListener('click', () => go(1));
}

// --- the working pattern -----------------------------------------------------------------------------

/** Mode select, hours and contact inputs for one day (`id` prefixes their ids). */
function dayFields(id, day) {
  const mode = el('select', { id: `${id}-mode`, class: 'day-mode' },
    ...MODES.map((m) => el('option', { value: m, text: t('pat.mode.' + m) })));
  mode.value = day.mode ?? 'off';
  const hours = el('input', {
    type: 'text', id: `${id}-hours`, class: 'day-hours-input', value: (day.hours ?? []).join(', '),
    placeholder: t('pat.hours.ph'), autocomplete: 'off', spellcheck: 'false',
  });
  const contact = el('input', {
    type: 'text', id: `${id}-contact`, class: 'day-contact-input', value: day.contact ?? '',
    placeholder: '09:00-12:00', autocomplete: 'off', spellcheck: 'false',
  });
  const sync = () => {
    const off = mode.value === 'off';
    hours.disabled = off;
    contact.disabled = off;
  };
  mode.addEventListener('change', sync);
  sync();
  return [
    el('div', { class: 'field' }, el('label', { for: mode.id, text: t('pat.mode') }), mode),
    el('div', { class: 'field' }, el('label', { for: hours.id, text: t('pat.hours') }), hours),
    el('div', { class: 'field' }, el('label', { for: contact.id, text: t('pat.contact') }), contact),
  ];
}

function renderWeek(week) {
  $('week-fields').replaceChildren(...[0, 1, 2, 3, 4, 5, 6].map((d) => el('fieldset', { class: 'day-row', id: `day-${d}` },
    el('legend', { text: t('day.' + d) }), el('div', { class: 'day-grid' }, ...dayFields(`day-${d}`, week[d] ?? { mode: 'off' })))));
}

function renderExceptions() {
  const dates = Object.keys(exceptions).sort();
  $('exceptions-list').replaceChildren(...dates.map((date) => el('li', { class: 'exception', dataset: { date } },
    el('fieldset', { class: 'day-row' }, el('legend', { text: fmtDate(date) }), el('div', { class: 'day-grid' }, ...dayFields(`exc-${date}`, exceptions[date]))),
    el('button', {
      type: 'button', class: 'btn btn-small btn-danger', text: t('exc.remove'), 'aria-label': t('exc.remove.label', { date: fmtDate(date) }),
      onclick: () => {
        readExceptions();
        delete exceptions[date];
        renderExceptions();
        $('exc-add').focus();
        announce(t('exc.removed'));
      },
    }))));
  $('exceptions-empty').hidden = dates.length > 0;
}

function renderNewException() {
  const row = $('exception-new');
  row.replaceChildren(row.firstElementChild, ...dayFields('exc-new', { mode: 'off' }));
}

function setFollow(follow) {
  $('follow-office').checked = follow;
  $('week-fields').hidden = follow;
  $('exceptions-box').hidden = follow;
}

let patternState = null;

/** The pattern the form describes (null = follow the office's hours); throws like readDay. */
function readPattern() {
  if ($('follow-office').checked) return null;
  const week = [0, 1, 2, 3, 4, 5, 6].map((d) => readDay(`day-${d}`, t('day.' + d)));
  readExceptions();
  return { week, exceptions };
}

// --- what a pattern does to the citizens' offer, said before saving -------------------------------

/** The pattern (as JSON) the official chose to save although it removes bookable times. */
let confirmedFor = null;
let previewTimer = null;
let previewSeq = 0;

/** Asks the server what `pattern` would change (nothing is saved); null if it cannot say. */
async function fetchPreview(pattern) {
  const seq = ++previewSeq;
  let preview;
  try {
    preview = await api(cal('/pattern/preview'), { method: 'POST', body: { pattern } });
  } catch (e) {
    if (seq !== previewSeq) return undefined;
    sessionLost(e);
    return null;
  }
  if (seq !== previewSeq) return undefined;
  return preview;
}

/** Shows the preview under the form: how many bookable times go (and come), per service. */
function renderPreview(p, asking) {
  const box = $('pattern-preview');
  if (p === undefined) return;
  box.classList.toggle('note-warning', Boolean(p?.removed));
  if (!p) {
    box.replaceChildren(el('p', { text: t('pat.preview.error') }));
    box.hidden = false;
    return;
  }
  const to = fmtDate(p.to);
  const lines = [];
  if (p.removed) lines.push(el('p', { class: 'preview-removed', text: t('pat.preview.removed', { removed: p.removed, before: p.before, to }) }));
  if (p.added) lines.push(el('p', { text: t('pat.preview.added', { added: p.added, to }) }));
  if (!p.removed && !p.added) lines.push(el('p', { text: t('pat.preview.none') }));
  const changed = p.services.filter((x) => x.removed || x.added);
  if (changed.length) {
    lines.push(el('ul', {}, ...changed.map((x) => el('li', {
      text: t('pat.preview.service', { service: x.service_name, office: x.office_name, before: x.before, after: x.after }),
    }))));
  }
  if (asking) {
    lines.push(el('p', { text: t('pat.preview.ask') }));
    lines.push(el('button', {
      type: 'button', id: 'pattern-confirm', class: 'btn btn-danger', text: t('pat.preview.confirm'),
      onclick: () => {
        confirmedFor = asking;
        $('pattern-form').requestSubmit();
      },
    }));
  }
  box.replaceChildren(...lines);
  box.hidden = false;
}

/** After each edit (debounced): the preview of what the form now says, if it reads well. */
function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(async () => {
    let pattern;
    try {
      pattern = readPattern();
    } catch {
      return;
    }
    renderPreview(await fetchPreview(pattern), null);
  }, 400);
}

async function loadPattern() {
  let state;
  try {
    state = await api(cal('/pattern'));
  } catch (e) {
    fail($('pattern-error'), e);
    return;
  }
  showError($('pattern-error'), '');
  patternState = state;
  renderPattern();
}

function renderPattern() {
  const pattern = patternState?.pattern ?? null;
  // Unticking «Segui l'orario…» starts from the hours in force (the office's), never from a sample.
  const week = pattern?.week ?? patternState?.in_force?.week ?? [0, 1, 2, 3, 4, 5, 6].map((d) => (d < 5 ? DEFAULT_DAY : { mode: 'off' }));
  exceptions = { ...(pattern?.exceptions ?? {}) };
  renderWeek(week);
  renderExceptions();
  renderNewException();
  setFollow(pattern === null);
}

/** One day's fields as PatternJson, or throws `{message, field}`. */
function readDay(id, dayName) {
  const mode = $(`${id}-mode`).value;
  if (mode === 'off') return { mode: 'off' };
  const hoursInput = $(`${id}-hours`);
  const contactInput = $(`${id}-contact`);
  const hours = hoursInput.value.split(',').map((s) => s.trim().replace(/[–—]/g, '-').replace(/\s+/g, '')).filter(Boolean);
  if (!hours.length) throw { message: t('pat.invalid.empty', { day: dayName }), field: hoursInput };
  if (!hours.every((h) => RANGE.test(h))) throw { message: t('pat.invalid.hours', { day: dayName }), field: hoursInput };
  const contact = contactInput.value.trim().replace(/[–—]/g, '-').replace(/\s+/g, '');
  if (contact && !RANGE.test(contact)) throw { message: t('pat.invalid.contact', { day: dayName }), field: contactInput };
  return contact ? { mode, hours, contact } : { mode, hours };
}

/** Copies what is typed in the exception rows back into `exceptions` (throws like readDay). */
function readExceptions() {
  for (const date of Object.keys(exceptions)) {
    if ($(`exc-${date}-mode`)) exceptions[date] = readDay(`exc-${date}`, fmtDate(date));
  }
}

function wirePattern() {
  $('follow-office').addEventListener('change', (e) => setFollow(e.target.checked));
  $('pattern-form').addEventListener('change', schedulePreview);
  $('pattern-form').addEventListener('input', schedulePreview);
  $('exc-add').addEventListener('click', () => {
    const box = $('exception-error');
    showError(box, '', [$('exc-date')]);
    const date = $('exc-date').value;
    if (!/^\d{4}-\d\d-\d\d$/.test(date)) {
      showError(box, t('exc.nodate'), [$('exc-date')]);
      $('exc-date').focus();
      return;
    }
    try {
      readExceptions();
      exceptions[date] = readDay('exc-new', fmtDate(date));
    } catch (e) {
      showError(box, e.message, [e.field]);
      e.field.focus();
      return;
    }
    renderExceptions();
    renderNewException();
    $('exc-date').value = '';
    $('exc-date').focus();
    announce(t('exc.added'));
  });
  const form = $('pattern-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    let pattern;
    try {
      pattern = readPattern();
    } catch (e) {
      showError($('pattern-error'), e.message, [e.field]);
      e.field.focus();
      return;
    }
    // Before saving, say how many bookable times the change takes from citizens; save only once
    // the official has seen the number and confirmed.
    const key = JSON.stringify(pattern);
    if (confirmedFor !== key) {
      clearTimeout(previewTimer);
      $('pattern-save').disabled = true;
      const preview = await fetchPreview(pattern);
      $('pattern-save').disabled = false;
      if (preview?.removed) {
        renderPreview(preview, key);
        $('pattern-preview').focus();
        return;
      }
    }
    confirmedFor = null;
    $('pattern-save').disabled = true;
    let saved;
    try {
      saved = await api(cal('/pattern'), { method: 'PUT', body: { pattern } });
    } catch (e) {
      $('pattern-save').disabled = false;
      fail($('pattern-error'), e);
      $('pattern-error').focus?.();
      return;
    }
    $('pattern-save').disabled = false;
    patternState = saved;
    renderPattern();
    $('pattern-preview').hidden = true;
    announce(t('pat.saved'));
    await loadMonth();
  });
}

// --- absences ----------------------------------------------------------------------------------------

function absenceWhen(a) {
  if (a.start_time && a.end_time) return t('abs.times', { date: fmtDate(a.start), start: a.start_time, end: a.end_time });
  if (a.start === a.end) return fmtDate(a.start);
  return t('abs.range', { start: fmtDate(a.start), end: fmtDate(a.end) });
}

async function loadAbsences() {
  const today = todayRome();
  const data = await fetchList(cal(`/absences?from=${addDays(today, -31)}&to=${addDays(today, 730)}`), 'abs-list-error');
  if (!data) return;
  absences = data;
  renderAbsences();
}

function renderAbsences() {
  const tbody = $('absences-table').querySelector('tbody');
  tbody.replaceChildren(...absences.map((a) => {
    const what = `${t('abs.kind.' + a.kind)}, ${absenceWhen(a)}`;
    return el('tr', { dataset: { absenceId: a.id } },
      el('th', { scope: 'row', text: t('abs.kind.' + a.kind) }),
      el('td', { text: absenceWhen(a) }),
      el('td', { text: a.note || '—' }),
      el('td', {}, el('button', {
        type: 'button', class: 'btn btn-small btn-danger delete-absence', text: t('abs.delete'),
        'aria-label': t('abs.delete.label', { what }), onclick: () => deleteAbsence(a, what),
      })));
  }));
  if (!absences.length) tbody.append(el('tr', {}, el('td', { colspan: 4, text: t('abs.none') })));
  labelCells($('absences-table'));
}

async function deleteAbsence(a, what) {
  if (!confirm(t('abs.confirm.delete', { what }))) return;
  try {
    await api(cal(`/absences/${encodeURIComponent(a.id)}`), { method: 'DELETE' });
  } catch (e) {
    fail($('abs-list-error'), e);
    return;
  }
  announce(t('abs.deleted'));
  await Promise.all([loadAbsences(), loadMonth()]);
  $('abs-title').focus();
}

function wireAbsences() {
  const form = $('absence-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const box = $('absence-error');
    const start = $('abs-start');
    const end = $('abs-end');
    const st = $('abs-start-time');
    const et = $('abs-end-time');
    if (!start.value) {
      showError(box, t('abs.nostart'), [start]);
      start.focus();
      return;
    }
    if (Boolean(st.value) !== Boolean(et.value)) {
      const field = st.value ? et : st;
      showError(box, t('abs.badtimes'), [field]);
      field.focus();
      return;
    }
    const body = {
      kind: $('abs-kind').value,
      start: start.value,
      end: end.value || start.value,
      start_time: st.value || null,
      end_time: et.value || null,
      note: $('abs-note').value.trim(),
    };
    await sendForm({
      form, button: 'absence-submit', box, field: start,
      send: () => api(cal('/absences'), { method: 'POST', body }),
      done: 'abs.added', reload: [loadAbsences, loadMonth],
    });
  });
}

// --- external calendars ------------------------------------------------------------------------------

async function loadSources() {
  const data = await fetchList(cal('/sources'), 'src-list-error');
  if (!data) return;
  sources = data;
  renderSources();
}

function sourceItem(s) {
  const status = [];
  status.push(s.last_ok_at ? t('src.last', { when: fmtInstant(s.last_ok_at) }) : t('src.never'));
  if (s.last_fetch_at && s.last_fetch_at !== s.last_ok_at) status.push(t('src.tried', { when: fmtInstant(s.last_fetch_at) }));
  const actions = el('div', { class: 'row-actions' });
  if (s.kind === 'url') {
    actions.append(el('button', {
      type: 'button', class: 'btn btn-small refresh-source', text: t('src.refresh'),
      'aria-label': t('src.refresh.label', { label: s.label }), onclick: (e) => refreshSource(s, e.currentTarget),
    }));
  }
  actions.append(el('button', {
    type: 'button', class: 'btn btn-small btn-danger delete-source', text: t('src.delete'),
    'aria-label': t('src.delete.label', { label: s.label }), onclick: () => deleteSource(s),
  }));
  return el('li', { class: `source${s.last_error ? ' source--error' : ''}`, dataset: { sourceId: s.id } },
    el('div', { class: 'source-main' },
      el('p', { class: 'source-label' }, el('strong', { text: s.label }), ' — ', s.kind === 'url' ? (s.url_host ?? '') : t('src.uploaded')),
      el('p', { class: 'help', text: `${status.join(' · ')} · ${t('src.busy', { n: s.busy_count ?? 0 })}` }),
      s.last_error ? el('p', { class: 'source-error', role: 'alert', text: t('src.error', { error: s.last_error }) }) : null),
    actions);
}

function renderSources() {
  $('sources-list').replaceChildren(...sources.map(sourceItem));
  $('sources-empty').hidden = sources.length > 0;
}

async function refreshSource(s, button) {
  button.disabled = true;
  let refreshed;
  try {
    refreshed = await api(cal(`/sources/${encodeURIComponent(s.id)}/refresh`), { method: 'POST', body: {} });
  } catch (e) {
    button.disabled = false;
    fail($('src-list-error'), e);
    await loadSources();
    return;
  }
  button.disabled = false;
  showError($('src-list-error'), '');
  announce(refreshed?.last_error ? t('src.error', { error: refreshed.last_error }) : t('src.refreshed', { label: s.label }));
  await Promise.all([loadSources(), loadMonth()]);
  $('sources-list').querySelector(`[data-source-id="${CSS.escape(s.id)}"] .refresh-source`)?.focus();
}

async function deleteSource(s) {
  if (!confirm(t('src.confirm.delete', { label: s.label }))) return;
  try {
    await api(cal(`/sources/${encodeURIComponent(s.id)}`), { method: 'DELETE' });
  } catch (e) {
    fail($('src-list-error'), e);
    return;
  }
  announce(t('src.deleted'));
  await Promise.all([loadSources(), loadMonth()]);
  $('src-title').focus();
}

function wireSources() {
  const form = $('source-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const box = $('source-error');
    const label = $('src-label');
    const url = $('src-url');
    if (!label.value.trim()) {
      showError(box, t('src.nolabel'), [label]);
      label.focus();
      return;
    }
    if (!/^(https?|webcal):\/\/\S+$/i.test(url.value.trim())) {
      showError(box, t('src.nourl'), [url]);
      url.focus();
      return;
    }
    await sendForm({
      form, button: 'source-submit', box, field: url,
      send: () => api(cal('/sources'), { method: 'POST', body: { label: label.value.trim(), url: url.value.trim() } }),
      done: 'src.added', reload: [loadSources, loadMonth],
    });
  });

  const upload = $('upload-form');
  upload.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(upload);
    const box = $('upload-error');
    const label = $('up-label');
    const file = $('up-file');
    if (!label.value.trim()) {
      showError(box, t('src.nolabel'), [label]);
      label.focus();
      return;
    }
    if (!file.files?.length) {
      showError(box, t('src.nofile'), [file]);
      file.focus();
      return;
    }
    const send = async () => {
      let text;
      try {
        text = await file.files[0].text();
      } catch {
        throw new Error(t('error.generic'));
      }
      return postRaw(cal(`/upload?label=${encodeURIComponent(label.value.trim())}`), text, 'text/calendar; charset=utf-8');
    };
    await sendForm({ form: upload, button: 'upload-submit', box, field: file, send, done: 'src.added', reload: [loadSources, loadMonth] });
  });
}

// --- feeds -------------------------------------------------------------------------------------------

async function loadFeeds() {
  const data = await fetchList(cal('/feeds'), 'feed-error');
  if (!data) return;
  feeds = data;
  renderFeeds();
}

function feedRow(id, what, url) {
  const input = el('input', { type: 'text', id, readonly: true, spellcheck: 'false', value: url });
  const copy = el('button', { type: 'button', class: 'btn', text: t('copy'), 'aria-label': t('feed.copy.label', { what }) });
  wireCopy(copy, input);
  return el('div', { class: 'field link-box' }, el('label', { for: id, text: what }), el('div', { class: 'inline' }, input, copy));
}

function renderFeeds() {
  if (!feeds) return;
  $('feeds').replaceChildren(
    feedRow('feed-official', t('feed.official'), feeds.official_url),
    ...(feeds.offices ?? []).map((o) => feedRow(`feed-office-${o.office_id}`, t('feed.office', { name: o.name }), o.url)));
}

function wireFeeds() {
  $('feeds-rotate').addEventListener('click', async () => {
    if (!confirm(t('feed.rotate.confirm'))) return;
    $('feeds-rotate').disabled = true;
    let rotated;
    try {
      rotated = await api(cal('/feeds/rotate'), { method: 'POST', body: {} });
    } catch (e) {
      $('feeds-rotate').disabled = false;
      fail($('feed-error'), e);
      return;
    }
    $('feeds-rotate').disabled = false;
    showError($('feed-error'), '');
    feeds = rotated;
    renderFeeds();
    announce(t('feed.rotated'));
  });
}

// --- start -------------------------------------------------------------------------------------------

async function init() {
  initPage();
  wireMonth();
  wirePattern();
  wireAbsences();
  wireSources();
  wireFeeds();
  month = todayRome().slice(0, 7);
  try {
    me = await api('/api/auth/me');
  } catch (e) {
    denied(e.status === 401 ? t('cal.session') : e.message, e.status === 401);
    return;
  }
  $('loading').hidden = true;
  $('cal-view').hidden = false;
  document.title = t('cal.doctitle');
  await loadUsers();
  $('user-select').addEventListener('change', async (e) => {
    subject = e.target.value || null;
    await loadAll();
    announce($('cal-who').textContent);
  });
  onLangChange(() => {
    document.title = t('cal.doctitle');
    renderWho();
    renderMonth();
    // Keep what is being typed: re-read the pattern fields only if they are valid.
    try {
      if (patternState && !$('follow-office').checked) {
        const week = [0, 1, 2, 3, 4, 5, 6].map((d) => readDay(`day-${d}`, t('day.' + d)));
        readExceptions();
        patternState = { ...patternState, pattern: { week, exceptions } };
      }
      renderPattern();
    } catch { /* invalid input stays as typed, in the old language */ }
    renderAbsences();
    renderSources();
    renderFeeds();
  });
  await loadAll();
}

init();
