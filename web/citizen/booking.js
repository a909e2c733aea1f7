// /prenota: the booking stepper of the "modello Comuni" — 1 Ufficio, 2 Data e orario, 3 Dettagli,
// 4 Richiedente, 5 Riepilogo, 6 Confermato. Every step can go back; focus moves to the step heading;
// errors sit next to their field (aria-describedby) or at the top (role="alert").
// The requester step offers the optional SPID/CIE login (identity.js) and App IO notices: the way
// out to the provider keeps what was chosen in this tab's sessionStorage (`KEPT`), read back and
// removed when the page comes back, so the citizen lands on the same step with the same choices.

import { addStrings, getLang, initPage, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { el } from '../shared/dom.js';
import { field as fieldOf, privacyAck as privacyOf } from './fields.js';
import {
  appioEnabled, currentCitizen, loginErrorText, loginLink, loginOptions, logout, maskedFiscalCode,
  providerLabel, takeLoginError, whoLine,
} from './identity.js';
import { contactLines, download, hoursText } from './services.js';
import { dayOf, focusTimes, slotPicker } from './slot-picker.js';

addStrings({
  it: {
    'title': 'Prenota un appuntamento',
    'step.1': 'Ufficio', 'step.2': 'Data e orario', 'step.3': 'Dettagli', 'step.4': 'Richiedente',
    'step.5': 'Riepilogo', 'step.6': 'Confermato',
    'stepper': 'Passaggi della prenotazione', 'step.of': 'Passo {n} di 6: {name}',
    'office.choose': 'Scegli questo ufficio', 'office.none': 'Nessun ufficio disponibile per questo servizio.',
    'office.hours': 'Orari', 'office.address': 'Indirizzo',
    'month': 'Mese', 'month.none': 'Nessuna data disponibile nei prossimi mesi. Contatta l\'ufficio.',
    'slots': 'Orari disponibili', 'slots.none': 'Nessun orario libero in questo mese.',
    'mode': 'Modalità',
    'topic': 'Motivo', 'details': 'Dettagli', 'details.help': 'Facoltativo, al massimo 2000 caratteri. Non inserire dati sanitari.',
    'first': 'Nome', 'last': 'Cognome', 'email': 'Email',
    'website': 'Non compilare questo campo',
    'err.privacy': 'Per proseguire conferma di aver letto e compreso l\'informativa privacy.',
    'next': 'Avanti', 'back': 'Indietro', 'confirm': 'Conferma la prenotazione',
    'err.slot': 'Scegli un orario.', 'err.required': 'Campo obbligatorio.', 'err.email': 'Indirizzo email non valido.',
    'sum.office': 'Ufficio', 'sum.when': 'Data e orario', 'sum.mode': 'Modalità', 'sum.topic': 'Motivo',
    'sum.details': 'Dettagli', 'sum.requester': 'Richiedente',
    'done.code': 'Codice prenotazione', 'done.sent': 'Abbiamo inviato il riepilogo a {email}.',
    'done.video': 'Il link per entrare nella videochiamata è nell\'email di conferma: aprilo il giorno dell\'appuntamento, la sala d\'attesa apre 15 minuti prima dell\'orario.',
    'done.when': 'Inizio e fine', 'done.bring': 'Cosa serve', 'done.contacts': 'Contatti dell\'ufficio',
    'done.ics': 'Aggiungi al calendario (.ics)', 'done.manage': 'Gestisci o annulla la prenotazione',
    'rate': 'Com\'è andata la prenotazione? (1 = male, 5 = benissimo)', 'rate.send': 'Invia la valutazione',
    'rate.thanks': 'Grazie per la valutazione!',
    'login.optional': 'Non serve accedere per prenotare. Se vuoi, puoi accedere con {label}: i tuoi dati vengono compilati e ritrovi le tue prenotazioni.',
    'login.names': 'Nome e cognome vengono dalla tua identità digitale e qui non si possono cambiare. Per prenotare a nome di un\'altra persona esci: puoi prenotare anche senza accedere.',
    'appio': 'Ricevi avvisi anche nell\'app IO',
    'appio.help': 'Facoltativo. Nell\'app IO ti mandiamo la conferma, gli spostamenti, l\'annullamento e il promemoria dell\'appuntamento, con ufficio, servizio, data, ora, modalità e codice della prenotazione: mai i dettagli che scrivi nella richiesta. Le email arrivano comunque. Per IO serve il tuo codice fiscale; puoi smettere quando vuoi dalla pagina dell\'appuntamento.',
    'appio.cf.mine': 'Useremo il codice fiscale della tua identità digitale: {cf}.',
    'fiscal': 'Codice fiscale', 'fiscal.help': '16 caratteri, lettere e numeri, come sulla tessera sanitaria.',
    'err.fiscal': 'Il codice fiscale ha 16 caratteri, solo lettere e numeri: controlla di averlo scritto tutto.',
    'sum.appio': 'Avvisi nell\'app IO', 'sum.appio.yes': 'Sì, anche nell\'app IO',
    'done.appio': 'Riceverai gli avvisi di questo appuntamento anche nell\'app IO.',
    'restore.slot': 'L\'orario che avevi scelto non è più libero: scegline un altro.',
  },
  en: {
    'title': 'Book an appointment',
    'step.1': 'Office', 'step.2': 'Date and time', 'step.3': 'Details', 'step.4': 'Your details',
    'step.5': 'Summary', 'step.6': 'Confirmed',
    'stepper': 'Booking steps', 'step.of': 'Step {n} of 6: {name}',
    'office.choose': 'Choose this office', 'office.none': 'No office is available for this service.',
    'office.hours': 'Opening hours', 'office.address': 'Address',
    'month': 'Month', 'month.none': 'No date available in the coming months. Please contact the office.',
    'slots': 'Available times', 'slots.none': 'No free time in this month.',
    'mode': 'How',
    'topic': 'Reason', 'details': 'Details', 'details.help': 'Optional, at most 2000 characters. Do not include health data.',
    'first': 'First name', 'last': 'Last name', 'email': 'Email',
    'website': 'Leave this field empty',
    'err.privacy': 'To go on, confirm that you have read and understood the privacy notice.',
    'next': 'Next', 'back': 'Back', 'confirm': 'Confirm the booking',
    'err.slot': 'Choose a time.', 'err.required': 'Required field.', 'err.email': 'The email address is not valid.',
    'sum.office': 'Office', 'sum.when': 'Date and time', 'sum.mode': 'How', 'sum.topic': 'Reason',
    'sum.details': 'Details', 'sum.requester': 'Name',
    'done.code': 'Booking code', 'done.sent': 'We sent the summary to {email}.',
    'done.video': 'The link to join the video call is in the confirmation email: open it on the day of the appointment, the waiting room opens 15 minutes before the time.',
    'done.when': 'Start and end', 'done.bring': 'What to bring', 'done.contacts': 'Office contacts',
    'done.ics': 'Add to calendar (.ics)', 'done.manage': 'Manage or cancel the booking',
    'rate': 'How was booking? (1 = bad, 5 = very good)', 'rate.send': 'Send the rating',
    'rate.thanks': 'Thank you for your rating!',
    'login.optional': 'You do not need to log in to book. If you like, you can log in with {label}: your details are filled in and you find your bookings again.',
    'login.names': 'First and last name come from your digital identity and cannot be changed here. To book for another person, log out: you can book without logging in too.',
    'appio': 'Also get notices in the IO app',
    'appio.help': 'Optional. In the IO app we send you the appointment\'s confirmation, changes, cancellation and reminder, with the office, service, date, time, mode and booking code: never the details you write in your request. The emails come anyway. IO needs your fiscal code; you can stop whenever you like from the appointment\'s page.',
    'appio.cf.mine': 'We will use the fiscal code of your digital identity: {cf}.',
    'fiscal': 'Fiscal code (codice fiscale)', 'fiscal.help': '16 characters, letters and digits, as on the health insurance card.',
    'err.fiscal': 'A fiscal code has 16 characters, letters and digits only: check that you wrote all of it.',
    'sum.appio': 'Notices in the IO app', 'sum.appio.yes': 'Yes, in the IO app too',
    'done.appio': 'You will also get this appointment\'s notices in the IO app.',
    'restore.slot': 'The time you had chosen is no longer free: please choose another one.',
  },
});

const FIELD_OF = {
  invalid_first_name: ['first-name', 4], invalid_last_name: ['last-name', 4], invalid_email: ['email', 4],
  invalid_details: ['details', 3], slot_taken: [null, 2], slot_unavailable: [null, 2], invalid_start: [null, 2],
  invalid_mode: [null, 2], service_not_offered: ['topic-select', 3],
  invalid_fiscal_code: ['fiscal-code', 4], fiscal_code_required: ['fiscal-code', 4],
};
/** Where the choices wait (this tab only) while the citizen logs in; read back once, then removed. */
const KEPT = 'sportello.booking';
/** Choices older than this are not brought back (a tab left for hours starts afresh). */
const KEPT_MS = 60 * 60 * 1000;

const params = new URLSearchParams(location.search);
const s = {
  step: 1, offices: [], services: [], office: null, serviceId: params.get('servizio') || '',
  months: [], month: '', slots: [], day: '', slot: null, mode: null, details: '', first: '', last: '', email: '',
  website: '', privacy: false, errors: {}, alert: '', result: null,
  // The optional login and App IO: what the server offers, who is logged in, the citizen's choice.
  login: null, me: null, appioOn: false, appio: false, fiscal: '', loginError: '', loggedOut: false,
  // The server asked for the fiscal code although the citizen is logged in: ask it then.
  askFiscal: false,
};

const root = () => document.getElementById('booking');
const service = () => s.services.find((x) => x.id === s.serviceId) || null;
const when = (x) => (getLang() === 'en' ? x.label_en : x.label_it);

/** A field of this form, with the error the last check left for it. */
function field(id, label, input, options = {}) {
  return fieldOf(id, label, input, { ...options, error: s.errors[id] });
}

function privacyAck() {
  return privacyOf({ checked: s.privacy, onchange: (v) => { s.privacy = v; }, error: s.errors['privacy-ack'] });
}

function buttons({ next = true, back = true, confirm = false } = {}) {
  return el('div', { class: 'actions' },
    back ? el('button', { type: 'button', id: 'back', class: 'btn', text: t('back'), onclick: () => go(s.step - 1) }) : null,
    next ? el('button', { type: 'submit', id: 'next', class: 'btn btn-primary', text: t('next') }) : null,
    confirm ? el('button', { type: 'submit', id: 'confirm', class: 'btn btn-primary', text: t('confirm') }) : null);
}

/**
 * The top of the requester step: logged in, who and «Esci» (and why the names cannot be edited);
 * not logged in, that login is optional and the way to it (only when the server offers one).
 */
function identity() {
  if (s.me) {
    return el('div', {},
      whoLine(s.me, { onLogout: leaveIdentity, mineInNewTab: true }),
      el('p', { id: 'identity-names', class: 'help', text: t('login.names') }));
  }
  const note = s.loggedOut ? el('p', { id: 'identity-note', tabindex: '-1', text: t('id.logged.out') }) : null;
  if (!s.login) return note;
  return el('div', { class: 'note citizen-login' },
    note,
    el('p', { id: 'login-optional', text: t('login.optional', { label: providerLabel(s.login) }) }),
    loginLink(s.login, { beforeLeave: keep }));
}

/**
 * «Ricevi avvisi anche nell'app IO» (only when the server can send them), what is sent, and the
 * fiscal code IO needs: typed when not logged in, the identity's (masked) when logged in.
 */
function appioChoice() {
  if (!s.appioOn) return null;
  const box = el('input', {
    type: 'checkbox', id: 'appio', checked: s.appio, 'aria-describedby': 'appio-help',
    onchange: (e) => {
      s.appio = e.target.checked;
      delete s.errors['fiscal-code'];
      render();
      document.getElementById('appio')?.focus();
    },
  });
  let fiscal = null;
  if (s.appio && !typesFiscalCode()) {
    fiscal = el('p', { id: 'appio-cf' }, ...t('appio.cf.mine', { cf: '\u0000' }).split('\u0000').flatMap((x, i) => (i ? [maskedFiscalCode(s.me.fiscal_code), x] : [x])));
  } else if (s.appio) {
    const input = el('input', {
      type: 'text', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', class: 'fiscal-code',
      value: s.fiscal, oninput: (e) => { s.fiscal = e.target.value; },
    });
    fiscal = field('fiscal-code', t('fiscal'), input, { required: true, help: t('fiscal.help') });
  }
  return el('div', { class: 'field appio-field' },
    el('div', { class: 'check' }, box, el('label', { for: 'appio', text: t('appio') })),
    el('p', { id: 'appio-help', class: 'help', text: t('appio.help') }),
    fiscal);
}

/** Whether the citizen types the fiscal code (not logged in, or the server asked for it). */
const typesFiscalCode = () => !s.me || s.askFiscal;

/** The fiscal code as the server gets it: no spaces, upper case. */
const typedFiscalCode = () => s.fiscal.replace(/\s+/g, '').toUpperCase();

/** Keeps the citizen's choices in this tab while they log in (not the fiscal code: retyped if need be). */
function keep() {
  const kept = {
    at: Date.now(), step: s.step, office: s.office?.id || null, serviceId: s.serviceId, month: s.month, day: s.day,
    slot: s.slot, mode: s.mode, details: s.details, first: s.first, last: s.last, email: s.email,
    privacy: s.privacy, appio: s.appio,
  };
  try { sessionStorage.setItem(KEPT, JSON.stringify(kept)); } catch { /* not kept: the citizen starts again */ }
}

/** The choices kept by `keep`, once (removed as they are read), if recent. */
function takeKept() {
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(KEPT) || 'null');
    sessionStorage.removeItem(KEPT);
  } catch { /* nothing kept */ }
  return kept && Date.now() - kept.at < KEPT_MS ? kept : null;
}

/** Back on the step the citizen left, with what they chose; a slot taken meanwhile is chosen again. */
async function restore(kept) {
  s.office = s.offices.find((o) => o.id === kept.office) || null;
  if (!s.office) return;
  Object.assign(s, {
    serviceId: kept.serviceId || s.serviceId, month: kept.month || '', day: kept.day || '', mode: kept.mode,
    details: kept.details || '', first: kept.first || '', last: kept.last || '', email: kept.email || '',
    privacy: kept.privacy === true, appio: kept.appio === true && s.appioOn,
  });
  s.step = 2;
  await loadMonths();
  s.slot = kept.slot && s.slots.find((x) => x.start === kept.slot.start) ? kept.slot : null;
  if (s.slot) s.step = Math.min(Math.max(kept.step || 2, 2), 5);
  else if (kept.slot) s.alert = t('restore.slot');
}

/** Logged in: the names are the identity's, the email too unless one was typed. */
function fillFromIdentity() {
  if (!s.me) return;
  s.first = s.me.given_name || s.first;
  s.last = s.me.family_name || s.last;
  if (!s.email.trim() && s.me.email) s.email = s.me.email;
}

/** «Esci»: the session ends, the identity's names leave the form, booking goes on without login. */
async function leaveIdentity() {
  try {
    await logout();
  } catch (e) {
    s.alert = e.message;
    render();
    document.getElementById('form-alert')?.focus();
    return;
  }
  const me = s.me;
  s.me = null;
  if (s.first === me.given_name) s.first = '';
  if (s.last === me.family_name) s.last = '';
  if (me.email && s.email === me.email) s.email = '';
  s.loggedOut = true;
  render();
  document.getElementById('identity-note')?.focus();
}

function stepper() {
  return el('ol', { class: 'stepper', 'aria-label': t('stepper') },
    [1, 2, 3, 4, 5, 6].map((n) => el('li', { 'aria-current': n === s.step ? 'step' : null, text: `${n}. ${t(`step.${n}`)}` })));
}

async function go(step, { keepErrors = false } = {}) {
  if (step < 1) {
    history.back();
    return;
  }
  s.step = step;
  if (!keepErrors) {
    s.errors = {};
    s.alert = '';
    s.loginError = '';
    s.loggedOut = false;
  }
  if (step === 2) await loadMonths();
  render(true);
}

function render(focus = false) {
  const form = el('form', { novalidate: true, onsubmit: (e) => { e.preventDefault(); submit(); } });
  const heading = el('h2', { class: 'step-heading', tabindex: '-1', id: 'step-heading', text: t('step.of', { n: s.step, name: t(`step.${s.step}`) }) });
  form.append(heading, el('div', { class: 'form-alert', role: 'alert', id: 'form-alert', text: s.alert || '' }));
  // A refused login, on the step the citizen came back to (focused by `start`).
  if (s.loginError) form.append(el('div', { class: 'form-alert', role: 'alert', id: 'login-error', tabindex: '-1', text: loginErrorText(s.loginError) }));
  // Absent parts (no error, no mode choice) are null: append would print them as "null".
  form.append(...STEPS[s.step]().filter((part) => part !== null && part !== undefined));
  root().replaceChildren(stepper(), form);
  if (focus) heading.focus();
}

const STEPS = {
  1: () => {
    const wanted = s.serviceId ? s.offices.filter((o) => o.service_ids.includes(s.serviceId)) : s.offices;
    if (!wanted.length) return [el('p', { text: t('office.none') })];
    return [el('ul', { class: 'cards' }, wanted.map((o) => el('li', { class: 'card', 'data-office-id': o.id, 'aria-current': s.office?.id === o.id ? 'true' : null },
      el('h3', { text: o.name }),
      o.address ? el('p', {}, el('strong', { text: `${t('office.address')}: ` }), o.address) : null,
      el('p', {}, el('strong', { text: `${t('office.hours')}: ` }), hoursText(o.opening_hours)),
      o.has_desk ? el('a', { class: 'walkin-link', href: `/sportello/${encodeURIComponent(o.id)}`, text: t('walkin.link'), 'aria-label': `${t('walkin.link')}: ${o.name}` }) : null,
      el('button', { type: 'button', class: 'btn btn-primary choose-office', text: t('office.choose'), 'aria-label': `${t('office.choose')}: ${o.name}`,
        onclick: () => { s.office = o; if (!o.service_ids.includes(s.serviceId)) s.serviceId = o.service_ids[0] || ''; s.month = ''; s.day = ''; s.slot = null; go(2); } })))),
    buttons({ next: false })];
  },
  2: () => {
    if (!s.months.length) return [el('p', { text: t('month.none') }), buttons({ next: false })];
    const select = el('select', { onchange: async (e) => { s.month = e.target.value; s.day = ''; s.slot = null; await loadSlots(); render(); document.getElementById('month-select').focus(); } },
      s.months.map((m) => el('option', { value: m.month, selected: m.month === s.month, text: getLang() === 'en' ? m.label_en : m.label_it })));
    const slotErr = s.errors.slot;
    const month = s.months.find((m) => m.month === s.month);
    const [calendar, times] = s.slots.length
      ? slotPicker({
        slots: s.slots, month: s.month, monthLabel: month ? (getLang() === 'en' ? month.label_en : month.label_it) : s.month,
        day: s.day || (s.slot ? dayOf(s.slot) : ''), selected: s.slot?.start || '', describedBy: slotErr ? 'slot-error' : null,
        onDay: (day) => { s.day = day; if (s.slot && dayOf(s.slot) !== day) s.slot = null; render(); focusTimes(); },
        onSlot: (x) => {
          s.slot = x;
          s.mode = x.modes.includes(s.mode) ? s.mode : x.modes[0];
          delete s.errors.slot;
          render();
          document.querySelector(`input[name=slot][value="${x.start}"]`)?.focus();
        },
      })
      : [el('p', { text: t('slots.none') }), null];
    const modes = s.slot && s.slot.modes.length > 1
      ? el('fieldset', { class: 'field' }, el('legend', { text: t('mode') }),
        s.slot.modes.map((m) => el('label', {}, el('input', { type: 'radio', name: 'mode', value: m, checked: s.mode === m, onchange: () => { s.mode = m; } }), ` ${t(`mode.${m}`)}`)))
      : null;
    // The mode and «Avanti» follow the chosen day's times, not the whole month.
    return [field('month-select', t('month'), select), calendar, times,
      slotErr ? el('p', { id: 'slot-error', class: 'field-error', text: slotErr }) : null, modes, buttons()];
  },
  3: () => {
    const offered = s.services.filter((x) => s.office.service_ids.includes(x.id));
    const topic = el('select', { onchange: (e) => { s.serviceId = e.target.value; } },
      offered.map((x) => el('option', { value: x.id, selected: x.id === s.serviceId, text: x.name })));
    const details = el('textarea', { maxLength: 2000, value: s.details, oninput: (e) => { s.details = e.target.value; } });
    return [field('topic-select', t('topic'), topic, { required: true }),
      field('details', t('details'), details, { help: t('details.help') }), buttons()];
  },
  4: () => {
    const input = (key, type, autocomplete) => el('input', { type, autocomplete, value: s[key], oninput: (e) => { s[key] = e.target.value; } });
    // Logged in, the names are the digital identity's: read-only (still focusable and read out), so
    // that the booking, its App IO notices and «Le mie prenotazioni» name the person who logged in.
    // The email stays editable: the identity may have none, or an old one.
    const names = (key, claim, autocomplete) => {
      const box = input(key, 'text', autocomplete);
      if (s.me?.[claim]) box.readOnly = true;
      return box;
    };
    const fromIdentity = s.me ? { describedBy: ['identity-names'] } : {};
    return [
      identity(),
      field('first-name', t('first'), names('first', 'given_name', 'given-name'), { required: true, ...fromIdentity }),
      field('last-name', t('last'), names('last', 'family_name', 'family-name'), { required: true, ...fromIdentity }),
      field('email', t('email'), input('email', 'email', 'email'), { required: true }),
      appioChoice(),
      el('div', { class: 'honeypot', 'aria-hidden': 'true' },
        el('label', { for: 'website', text: t('website') }),
        el('input', { type: 'text', id: 'website', name: 'website', tabIndex: -1, autocomplete: 'off', value: s.website, oninput: (e) => { s.website = e.target.value; } })),
      privacyAck(),
      buttons()];
  },
  5: () => {
    const svc = service();
    const row = (k, v) => [el('dt', { text: t(k) }), el('dd', { text: v })];
    return [el('dl', { class: 'summary' },
      row('sum.office', s.office.name), row('sum.when', when(s.slot)), row('sum.mode', t(`mode.${s.mode}`)),
      row('sum.topic', svc?.name || ''), row('sum.details', s.details || '—'),
      row('sum.requester', `${s.first} ${s.last} — ${s.email}`),
      s.appio ? row('sum.appio', t('sum.appio.yes')) : null),
    buttons({ next: false, confirm: true })];
  },
  6: () => {
    const r = s.result;
    const rating = el('form', { novalidate: true, onsubmit: rate },
      el('fieldset', { class: 'rate-scale' }, el('legend', { text: t('rate') }),
        [1, 2, 3, 4, 5].map((n) => el('label', {}, el('input', { type: 'radio', name: 'rating', value: String(n) }), ` ${n}`))),
      el('button', { type: 'submit', class: 'btn', id: 'rate-send', text: t('rate.send') }),
      el('p', { role: 'status', id: 'rate-status' }));
    return [
      el('p', {}, `${t('done.code')}: `, el('strong', { id: 'booking-code', class: 'booking-code', text: r.code })),
      el('p', { role: 'status', text: t('done.sent', { email: r.email }) }),
      r.mode === 'video' ? el('p', { id: 'video-link-note', text: t('done.video') }) : null,
      r.appio ? el('p', { id: 'appio-done', text: t('done.appio') }) : null,
      el('dl', { class: 'summary' },
        el('dt', { text: t('done.when') }), el('dd', { text: `${when(r)} – ${r.end.slice(11, 16)}` }),
        r.service.what_to_bring ? [el('dt', { text: t('done.bring') }), el('dd', { text: r.service.what_to_bring })] : [],
        el('dt', { text: t('done.contacts') }), el('dd', { id: 'office-contacts' }, contactLines(r.office, { withName: true }))),
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'btn btn-primary', id: 'ics', text: t('done.ics'), onclick: ics }),
        el('a', { class: 'btn', href: `/appuntamento?codice=${encodeURIComponent(r.code)}#${r.secret}`, text: t('done.manage') }),
        s.me ? el('a', { class: 'btn', href: '/le-mie-prenotazioni', id: 'mine-link', text: t('id.mine') }) : null),
      rating];
  },
};

async function ics() {
  try {
    download('appuntamento.ics', await api(s.result.ics_url, { secret: s.result.secret, as: 'text' }), 'text/calendar');
  } catch {
    s.alert = t('error.network');
    render();
  }
}

async function rate(e) {
  e.preventDefault();
  const v = new FormData(e.target).get('rating');
  const status = document.getElementById('rate-status');
  if (!v) return;
  try {
    await api(`/api/public/appointments/${encodeURIComponent(s.result.code)}/rating`, { method: 'POST', body: { rating: Number(v) }, secret: s.result.secret });
    status.textContent = t('rate.thanks');
    e.target.querySelector('button').disabled = true;
  } catch (err) {
    status.textContent = err.message;
  }
}

async function loadMonths() {
  s.months = [];
  s.slots = [];
  if (!s.office || !s.serviceId) return;
  try {
    s.months = (await api(`/api/public/offices/${encodeURIComponent(s.office.id)}/months?service=${encodeURIComponent(s.serviceId)}`)).months;
  } catch (e) {
    s.alert = e.message;
  }
  if (!s.months.some((m) => m.month === s.month)) s.month = s.months[0]?.month || '';
  await loadSlots();
}

async function loadSlots() {
  s.slots = [];
  if (!s.month) return;
  try {
    s.slots = (await api(`/api/public/offices/${encodeURIComponent(s.office.id)}/slots?service=${encodeURIComponent(s.serviceId)}&month=${s.month}`)).slots;
  } catch (e) {
    s.alert = e.message;
  }
}

function check() {
  s.errors = {};
  if (s.step === 2 && !s.slot) s.errors.slot = t('err.slot');
  if (s.step === 3 && !s.serviceId) s.errors['topic-select'] = t('err.required');
  if (s.step === 4) {
    if (!s.first.trim()) s.errors['first-name'] = t('err.required');
    if (!s.last.trim()) s.errors['last-name'] = t('err.required');
    if (!s.email.trim()) s.errors.email = t('err.required');
    else if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(s.email.trim())) s.errors.email = t('err.email');
    // The form only: the server checks the check character.
    if (s.appioOn && s.appio && typesFiscalCode()) {
      if (!typedFiscalCode()) s.errors['fiscal-code'] = t('err.required');
      else if (!/^[A-Z0-9]{16}$/.test(typedFiscalCode())) s.errors['fiscal-code'] = t('err.fiscal');
    }
    if (!s.privacy) s.errors['privacy-ack'] = t('err.privacy');
  }
  return Object.keys(s.errors).length === 0;
}

async function submit() {
  if (!check()) {
    render();
    const first = Object.keys(s.errors)[0];
    const target = first === 'slot'
      ? document.querySelector('#times input[name=slot]') || document.querySelector('#day-calendar button[tabindex="0"]') || document.getElementById('month-select')
      : document.getElementById(first);
    target?.focus();
    return;
  }
  if (s.step < 5) {
    await go(s.step + 1);
    return;
  }
  if (s.step !== 5) return;
  const button = document.getElementById('confirm');
  button.disabled = true;
  try {
    s.result = await api('/api/public/appointments', { method: 'POST', body: {
      office_id: s.office.id, service_id: s.serviceId, start: s.slot.start, mode: s.mode,
      first_name: s.first, last_name: s.last, email: s.email, details: s.details, lang: getLang(), website: s.website,
      // Logged in, the server takes the identity's fiscal code.
      appio: s.appioOn && s.appio, fiscal_code: s.appioOn && s.appio && typesFiscalCode() ? typedFiscalCode() : null,
    } });
    await go(6);
  } catch (e) {
    const [fieldId, step] = FIELD_OF[e.code] || [null, 5];
    if (step === 2) s.slot = null;
    // The session may have ended meanwhile, or the server wants the code typed: the field shows.
    if (fieldId === 'fiscal-code') {
      s.me = await currentCitizen();
      s.askFiscal = true;
    }
    await go(step, { keepErrors: true });
    if (fieldId) s.errors[fieldId] = e.message;
    else if (step === 2) s.errors.slot = e.message;
    s.alert = e.message;
    render(true);
  }
}

async function start() {
  s.loginError = takeLoginError();
  const kept = takeKept();
  let options;
  try {
    [s.offices, s.services, options, s.me, s.appioOn] = await Promise.all([
      api('/api/public/offices'), api('/api/public/services'), loginOptions(), currentCitizen(), appioEnabled()]);
  } catch (e) {
    s.alert = e.message;
  }
  s.login = options?.citizen_login || null;
  if (kept) await restore(kept);
  fillFromIdentity();
  // Back from the provider: on the step left, the refusal (if any) read out first.
  render(Boolean(kept) && !s.loginError);
  if (s.loginError) document.getElementById('login-error')?.focus();
}

initPage(render);
start();
