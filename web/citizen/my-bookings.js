// /le-mie-prenotazioni: a citizen logged in with SPID/CIE sees their appointments (coming ones
// first, then past and cancelled ones), dates and times in Rome; not logged in, the page says why
// it is empty and offers the login (identity.js). Changing or cancelling stays with the emailed
// link: this list carries no booking secret.

import { addStrings, getLang, initPage, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { el } from '../shared/dom.js';
import './services.js';
import {
  currentCitizen, loginErrorText, loginLink, loginOptions, logout, providerLabel, takeLoginError, whoLine,
} from './identity.js';

addStrings({
  it: {
    'mine.loading': 'Caricamento in corso…',
    'mine.intro': 'Qui trovi gli appuntamenti prenotati con la tua identità digitale. Per spostarne o annullarne uno usa il link «Per vedere, spostare o annullare l\'appuntamento» dell\'email di conferma.',
    'mine.out': 'Per vedere qui le tue prenotazioni accedi con {label}. Non serve accedere per prenotare: ogni appuntamento si può vedere, spostare o annullare anche dal link dell\'email di conferma.',
    'mine.nologin': 'L\'accesso con SPID o CIE non è attivo su questo sito. Ogni appuntamento si può vedere, spostare o annullare dal link dell\'email di conferma.',
    'mine.coming': 'Prossimi appuntamenti',
    'mine.past': 'Appuntamenti passati e annullati',
    'mine.none': 'Non hai appuntamenti prenotati con la tua identità digitale.',
    'mine.none.coming': 'Nessun appuntamento in programma.',
    'mine.office': 'Ufficio', 'mine.service': 'Servizio', 'mine.mode': 'Modalità', 'mine.status': 'Stato', 'mine.code': 'Codice',
    'mine.when': '{date}, dalle {from} alle {to}',
    'mine.book': 'Prenota un appuntamento',
  },
  en: {
    'mine.loading': 'Loading…',
    'mine.intro': 'Here are the appointments booked with your digital identity. To move or cancel one, use the link «To view, move or cancel the appointment» in the confirmation email.',
    'mine.out': 'To see your bookings here, log in with {label}. You do not need to log in to book: every appointment can also be viewed, moved or cancelled from the link in the confirmation email.',
    'mine.nologin': 'Logging in with SPID or CIE is not available on this site. Every appointment can be viewed, moved or cancelled from the link in the confirmation email.',
    'mine.coming': 'Coming appointments',
    'mine.past': 'Past and cancelled appointments',
    'mine.none': 'You have no appointments booked with your digital identity.',
    'mine.none.coming': 'No appointment coming up.',
    'mine.office': 'Office', 'mine.service': 'Service', 'mine.mode': 'How', 'mine.status': 'Status', 'mine.code': 'Code',
    'mine.when': '{date}, {from} to {to}',
    'mine.book': 'Book an appointment',
  },
});

const ZONE = 'Europe/Rome';
const v = { loading: true, login: null, me: null, list: [], alert: '', loginError: '', loggedOut: false };

/** `opts` of a date in Rome, in the page's language. */
const inRome = (iso, opts) => new Intl.DateTimeFormat(getLang() === 'en' ? 'en-GB' : 'it-IT', { timeZone: ZONE, ...opts }).format(new Date(iso));

/** «giovedì 11 dicembre 2025, dalle 10:00 alle 10:30» (Rome). */
function whenText(a) {
  const time = { hour: '2-digit', minute: '2-digit' };
  return t('mine.when', {
    date: inRome(a.start, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }),
    from: inRome(a.start, time), to: inRome(a.end, time),
  });
}

/** One appointment as a card: when (its heading), office, service, mode, status in words, code. */
function card(a) {
  const row = (k, value, attrs = {}) => [el('dt', { text: t(k) }), el('dd', { ...attrs, text: value })];
  const status = t(`status.${a.status}`);
  return el('li', { class: 'card', dataset: { code: a.code } },
    el('h3', { text: whenText(a) }),
    el('dl', { class: 'summary' },
      row('mine.office', a.office_name), row('mine.service', a.service_name),
      row('mine.mode', t(`mode.${a.mode}`)),
      row('mine.status', status === `status.${a.status}` ? a.status : status),
      row('mine.code', a.code, { class: 'booking-code' })));
}

function list() {
  const now = Date.now();
  const coming = v.list.filter((a) => a.status === 'confirmed' && Date.parse(a.end) > now)
    .sort((x, y) => Date.parse(x.start) - Date.parse(y.start));
  const past = v.list.filter((a) => !coming.includes(a)).sort((x, y) => Date.parse(y.start) - Date.parse(x.start));
  if (!v.list.length) {
    return [el('p', { id: 'mine-none', text: t('mine.none') }),
      el('p', { class: 'actions' }, el('a', { class: 'btn btn-primary', href: '/prenota', text: t('mine.book') }))];
  }
  return [
    el('section', { 'aria-labelledby': 'mine-coming' },
      el('h2', { id: 'mine-coming', text: t('mine.coming') }),
      coming.length ? el('ul', { class: 'cards', id: 'mine-coming-list' }, coming.map(card)) : el('p', { text: t('mine.none.coming') })),
    past.length ? el('section', { 'aria-labelledby': 'mine-past' },
      el('h2', { id: 'mine-past', text: t('mine.past') }),
      el('ul', { class: 'cards', id: 'mine-past-list' }, past.map(card))) : null,
    el('p', { class: 'actions' }, el('a', { class: 'btn', href: '/prenota', text: t('mine.book') }))];
}

function render(focusId) {
  const parts = [el('div', { class: 'form-alert', role: 'alert', id: 'mine-alert', text: v.alert })];
  if (v.loginError) parts.push(el('div', { class: 'form-alert', role: 'alert', id: 'login-error', tabindex: '-1', text: loginErrorText(v.loginError) }));
  if (v.loggedOut) parts.push(el('p', { id: 'mine-note', tabindex: '-1', text: t('id.logged.out') }));
  if (v.loading) {
    parts.push(el('p', { role: 'status', text: t('mine.loading') }));
  } else if (v.me) {
    parts.push(whoLine(v.me, { onLogout: leave, mine: false }), el('p', { text: t('mine.intro') }), ...list());
  } else if (v.login) {
    parts.push(el('p', { id: 'mine-out', text: t('mine.out', { label: providerLabel(v.login) }) }),
      el('p', { class: 'actions' }, loginLink(v.login, { primary: true }), el('a', { class: 'btn', href: '/prenota', text: t('mine.book') })));
  } else {
    parts.push(el('p', { id: 'mine-out', text: t('mine.nologin') }),
      el('p', { class: 'actions' }, el('a', { class: 'btn btn-primary', href: '/prenota', text: t('mine.book') })));
  }
  document.getElementById('mine').replaceChildren(...parts.filter(Boolean));
  if (focusId) document.getElementById(focusId)?.focus();
}

/** «Esci»: the session ends, the list goes. */
async function leave() {
  try {
    await logout();
  } catch (e) {
    v.alert = e.message;
    render();
    return;
  }
  v.me = null;
  v.list = [];
  v.alert = '';
  v.loggedOut = true;
  render('mine-note');
}

async function load() {
  v.loginError = takeLoginError();
  const [options, me] = await Promise.all([loginOptions(), currentCitizen()]);
  v.login = options.citizen_login || null;
  v.me = me;
  if (me) {
    try {
      v.list = (await api('/api/citizen/appointments')) || [];
    } catch (e) {
      if (e.status === 401) v.me = null;
      else v.alert = e.message;
    }
  }
  v.loading = false;
  render(v.loginError ? 'login-error' : undefined);
}

initPage(() => render());
load();
