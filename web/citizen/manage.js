// /appuntamento?codice=…#<secret>: the citizen's booking — summary, cancel (confirmed by a button
// press; `azione=annulla` from the reminder only preselects it: link scanners must not cancel by
// GET), move to another slot, download the .ics, stop the App IO notices (confirmed by a button
// press too).

import { addStrings, getLang, initPage, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { el } from '../shared/dom.js';
import { contactLines, download } from './services.js';
import { focusTimes, slotPicker } from './slot-picker.js';

addStrings({
  it: {
    'm.title': 'Il tuo appuntamento', 'm.missing': 'Il link non è completo: aprilo di nuovo dall\'email di conferma.',
    'm.codeonly': 'Per aprire la prenotazione {code} apri il link «Per vedere, spostare o annullare l\'appuntamento» dell\'email di conferma: a tutela dei tuoi dati il codice da solo non basta. Con quel link puoi vedere, spostare o annullare l\'appuntamento.',
    'm.code': 'Codice', 'm.status': 'Stato', 'm.when': 'Data e orario', 'm.office': 'Ufficio', 'm.service': 'Servizio',
    'm.bring': 'Cosa serve', 'm.contacts': 'Contatti',
    'm.join': 'Entra nella videochiamata', 'm.ics': 'Aggiungi al calendario (.ics)',
    'm.cancel': 'Annulla l\'appuntamento', 'm.cancel.ask': 'Vuoi davvero annullare questo appuntamento? L\'orario tornerà disponibile per altri.',
    'm.cancel.yes': 'Sì, annulla l\'appuntamento', 'm.cancel.no': 'No, mantienilo', 'm.cancelled': 'L\'appuntamento è stato annullato. Ti abbiamo inviato una email di conferma.',
    'm.move': 'Sposta l\'appuntamento', 'm.month': 'Mese', 'm.slots': 'Nuovo orario', 'm.move.do': 'Sposta a questo orario',
    'm.moved': 'Appuntamento spostato. Ti abbiamo inviato una email con il nuovo link.', 'm.pick': 'Scegli un orario.',
    'm.noslots': 'Nessun orario libero in questo mese.', 'm.book': 'Prenota un nuovo appuntamento',
    'm.appio': 'Riceverai gli avvisi di questo appuntamento anche nell\'app IO.',
    'm.appio.off': 'Non ricevere più avvisi su IO',
    'm.appio.ask': 'Vuoi smettere di ricevere nell\'app IO gli avvisi di questo appuntamento? Le email continueranno ad arrivare.',
    'm.appio.yes': 'Sì, niente più avvisi su IO', 'm.appio.no': 'No, continua a mandarli',
    'm.appio.done': 'Non riceverai più avvisi su IO per questo appuntamento. Le email continueranno ad arrivare.',
  },
  en: {
    'm.title': 'Your appointment', 'm.missing': 'The link is incomplete: open it again from the confirmation email.',
    'm.codeonly': 'To open booking {code}, open the link «To view, move or cancel the appointment» in the confirmation email: to protect your data the code alone is not enough. With that link you can view, move or cancel the appointment.',
    'm.code': 'Code', 'm.status': 'Status', 'm.when': 'Date and time', 'm.office': 'Office', 'm.service': 'Service',
    'm.bring': 'What to bring', 'm.contacts': 'Contacts',
    'm.join': 'Join the video call', 'm.ics': 'Add to calendar (.ics)',
    'm.cancel': 'Cancel the appointment', 'm.cancel.ask': 'Do you really want to cancel this appointment? The time becomes available to others.',
    'm.cancel.yes': 'Yes, cancel the appointment', 'm.cancel.no': 'No, keep it', 'm.cancelled': 'The appointment was cancelled. We sent you a confirmation email.',
    'm.move': 'Move the appointment', 'm.month': 'Month', 'm.slots': 'New time', 'm.move.do': 'Move to this time',
    'm.moved': 'Appointment moved. We sent you an email with the new link.', 'm.pick': 'Choose a time.',
    'm.noslots': 'No free time in this month.', 'm.book': 'Book a new appointment',
    'm.appio': 'You will also get this appointment\'s notices in the IO app.',
    'm.appio.off': 'Stop the notices in IO',
    'm.appio.ask': 'Do you want to stop getting this appointment\'s notices in the IO app? The emails will still come.',
    'm.appio.yes': 'Yes, no more notices in IO', 'm.appio.no': 'No, keep sending them',
    'm.appio.done': 'You will no longer get notices in IO for this appointment. The emails will still come.',
  },
});

const params = new URLSearchParams(location.search);
const code = params.get('codice') || '';
const secret = decodeURIComponent(location.hash.slice(1));
const m = { appt: null, asking: params.get('azione') === 'annulla', askingAppio: false, moving: false, months: [], month: '', slots: [], day: '', slot: '', pickError: '', note: '', alert: '' };
const base = `/api/public/appointments/${encodeURIComponent(code)}`;
const label = (x) => (getLang() === 'en' ? x.label_en : x.label_it);

function render(focusId) {
  const root = document.getElementById('manage');
  if (!code || !secret) {
    // A booking code alone (pasted on the home page) opens nothing: the secret protects the data.
    root.replaceChildren(el('p', { role: 'alert', id: 'manage-missing', text: code ? t('m.codeonly', { code }) : t('m.missing') }));
    return;
  }
  const a = m.appt;
  // The note takes the focus after an action whose button is gone (cancel, move, App IO off).
  const parts = [el('div', { class: 'form-alert', role: 'alert', text: m.alert }), el('p', { role: 'status', id: 'manage-note', tabindex: m.note ? '-1' : null, text: m.note })];
  if (a) {
    const o = a.office;
    parts.push(el('dl', { class: 'summary' },
      el('dt', { text: t('m.code') }), el('dd', {}, el('strong', { id: 'booking-code', class: 'booking-code', text: a.code })),
      el('dt', { text: t('m.status') }), el('dd', { id: 'status', text: t(`status.${a.status}`) }),
      el('dt', { text: t('m.when') }), el('dd', { text: `${label(a)} – ${a.end.slice(11, 16)} (${t(`mode.${a.mode}`)})` }),
      el('dt', { text: t('m.office') }), el('dd', { text: o.name }),
      el('dt', { text: t('m.service') }), el('dd', { text: a.service.name }),
      a.service.what_to_bring ? [el('dt', { text: t('m.bring') }), el('dd', { text: a.service.what_to_bring })] : [],
      el('dt', { text: t('m.contacts') }), el('dd', { id: 'office-contacts' }, contactLines(o))));
    const actions = el('div', { class: 'actions' });
    if (a.join_url) actions.append(el('a', { class: 'btn btn-primary', href: a.join_url, text: t('m.join') }));
    if (a.status === 'confirmed') actions.append(el('button', { type: 'button', class: 'btn', id: 'ics', text: t('m.ics'), onclick: ics }));
    if (a.can_change) {
      actions.append(el('button', { type: 'button', class: 'btn', id: 'move', 'aria-expanded': String(m.moving), text: t('m.move'), onclick: openMove }));
      actions.append(el('button', { type: 'button', class: 'btn', id: 'cancel', 'aria-expanded': String(m.asking), text: t('m.cancel'), onclick: () => { m.asking = true; render('cancel-question'); } }));
    }
    if (a.status === 'cancelled') actions.append(el('a', { class: 'btn btn-primary', href: '/prenota', text: t('m.book') }));
    parts.push(actions);
    // App IO notices: said while the appointment stands, with the way to stop them.
    if (a.appio && a.status === 'confirmed') {
      parts.push(el('div', { class: 'note appio-line', id: 'appio-line' },
        el('p', { text: t('m.appio') }),
        el('button', { type: 'button', class: 'btn btn-small', id: 'appio-off', 'aria-expanded': String(m.askingAppio), text: t('m.appio.off'), onclick: () => { m.askingAppio = true; render('appio-question'); } })));
      if (m.askingAppio) {
        parts.push(el('section', { class: 'panel', 'aria-labelledby': 'appio-question' },
          el('h2', { id: 'appio-question', tabindex: '-1', text: t('m.appio.ask') }),
          el('div', { class: 'actions' },
            el('button', { type: 'button', class: 'btn btn-primary', id: 'confirm-appio-off', text: t('m.appio.yes'), onclick: appioOff }),
            el('button', { type: 'button', class: 'btn', text: t('m.appio.no'), onclick: () => { m.askingAppio = false; render('appio-off'); } }))));
      }
    }
    if (a.can_change && m.asking) {
      parts.push(el('section', { class: 'panel', 'aria-labelledby': 'cancel-question' },
        el('h2', { id: 'cancel-question', tabindex: '-1', text: t('m.cancel.ask') }),
        el('div', { class: 'actions' },
          el('button', { type: 'button', class: 'btn btn-primary', id: 'confirm-cancel', text: t('m.cancel.yes'), onclick: cancel }),
          el('button', { type: 'button', class: 'btn', text: t('m.cancel.no'), onclick: () => { m.asking = false; render('cancel'); } }))));
    }
    if (a.can_change && m.moving) parts.push(moveForm());
  }
  root.replaceChildren(...parts);
  if (focusId) document.getElementById(focusId)?.focus();
}

function moveForm() {
  const month = el('select', { id: 'month-select', onchange: async (e) => { m.month = e.target.value; await loadSlots(); render('month-select'); } },
    m.months.map((x) => el('option', { value: x.month, selected: x.month === m.month, text: getLang() === 'en' ? x.label_en : x.label_it })));
  const current = m.months.find((x) => x.month === m.month);
  const [calendar, times] = m.slots.length
    ? slotPicker({
      slots: m.slots, month: m.month, monthLabel: current ? (getLang() === 'en' ? current.label_en : current.label_it) : m.month,
      day: m.day, selected: m.slot, describedBy: m.pickError ? 'move-error' : null,
      onDay: (day) => { m.day = day; m.slot = ''; render(); focusTimes(); },
      onSlot: (x) => { m.slot = x.start; m.pickError = ''; render(); document.querySelector(`input[name=slot][value="${x.start}"]`)?.focus(); },
    })
    : [el('p', { text: t('m.noslots') }), null];
  return el('form', { novalidate: true, onsubmit: move, 'aria-labelledby': 'move-title' },
    el('h2', { id: 'move-title', tabindex: '-1', text: t('m.move') }),
    el('div', { class: 'field' }, el('label', { for: 'month-select', text: t('m.month') }), month),
    calendar, times,
    m.pickError ? el('p', { id: 'move-error', class: 'field-error', text: m.pickError }) : null,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'btn btn-primary', id: 'confirm', text: t('m.move.do') })));
}

async function load() {
  try {
    m.appt = await api(base, { secret });
  } catch (e) {
    m.alert = e.message;
  }
  // The reminder's one-click cancel opens on the question, in view and announced.
  render(m.asking ? 'cancel-question' : undefined);
}

async function openMove() {
  m.moving = true;
  m.pickError = '';
  try {
    const q = `service=${encodeURIComponent(m.appt.service.id)}`;
    m.months = (await api(`/api/public/offices/${encodeURIComponent(m.appt.office.id)}/months?${q}`)).months;
    m.month = m.months[0]?.month || '';
    await loadSlots();
  } catch (e) {
    m.alert = e.message;
  }
  render('move-title');
}

async function loadSlots() {
  m.slots = [];
  m.day = '';
  m.slot = '';
  if (!m.month) return;
  const q = `service=${encodeURIComponent(m.appt.service.id)}&month=${m.month}`;
  m.slots = (await api(`/api/public/offices/${encodeURIComponent(m.appt.office.id)}/slots?${q}`)).slots;
}

async function move(e) {
  e.preventDefault();
  if (!m.slot) {
    m.pickError = t('m.pick');
    render();
    (document.querySelector('#times input[name=slot]') || document.querySelector('#day-calendar button[tabindex="0"]'))?.focus();
    return;
  }
  try {
    m.appt = await api(`${base}/reschedule`, { method: 'POST', body: { start: m.slot }, secret });
    m.moving = false;
    m.alert = '';
    m.note = t('m.moved');
  } catch (err) {
    m.alert = err.message;
  }
  render('manage-note');
}

async function cancel() {
  try {
    m.appt = await api(`${base}/cancel`, { method: 'POST', body: {}, secret });
    m.asking = false;
    m.alert = '';
    m.note = t('m.cancelled');
  } catch (err) {
    m.alert = err.message;
  }
  render('manage-note');
}

async function appioOff() {
  try {
    m.appt = await api(`${base}/appio-off`, { method: 'POST', body: {}, secret });
    m.askingAppio = false;
    m.alert = '';
    m.note = t('m.appio.done');
  } catch (err) {
    m.alert = err.message;
  }
  render('manage-note');
}

async function ics() {
  try {
    download('appuntamento.ics', await api(`${base}/ics`, { secret, as: 'text' }), 'text/calendar');
  } catch {
    m.alert = t('error.network');
    render();
  }
}

initPage(() => render());
load();
