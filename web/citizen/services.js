// The citizen pages' words and helpers (/servizi, /prenota, /appuntamento, the live page) and the
// services list. Italian first; the header button switches to English (shared/i18n.js). No
// third-party code.

import { addStrings, initPage, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { el } from '../shared/dom.js';
import './strings.js';

addStrings({
  it: {
    'services.title': 'Servizi su appuntamento',
    'services.intro': 'Scegli il servizio e prenota un appuntamento, in presenza o in videochiamata.',
    'services.book': 'Prenota',
    'services.book.any': 'Prenota un appuntamento',
    'services.empty': 'Nessun servizio prenotabile al momento.',
    'services.minutes': '{n} minuti',
    'nav.home': 'Home',
    'nav.services': 'Servizi',
    'nav.book': 'Prenota un appuntamento',
    'nav.manage': 'Il tuo appuntamento',
    'error.network': 'Il servizio non risponde: controlla la connessione e riprova.',
    'error.generic': 'Il servizio non risponde: controlla la connessione e riprova.',
    'mode.video': 'Videochiamata',
    'mode.in_person': 'In presenza',
    // An appointment's status, in words (/appuntamento, /le-mie-prenotazioni).
    'status.confirmed': 'Confermato', 'status.cancelled': 'Annullato', 'status.completed': 'Concluso', 'status.no_show': 'Non presentato',
    'hours.closed': 'chiuso',
    'days': 'Lun,Mar,Mer,Gio,Ven,Sab,Dom',
  },
  en: {
    'services.title': 'Services by appointment',
    'services.intro': 'Choose the service and book an appointment, in person or by video call.',
    'services.book': 'Book',
    'services.book.any': 'Book an appointment',
    'services.empty': 'No service can be booked at the moment.',
    'services.minutes': '{n} minutes',
    'nav.home': 'Home',
    'nav.services': 'Services',
    'nav.book': 'Book an appointment',
    'nav.manage': 'Your appointment',
    'error.network': 'The service does not answer: check your connection and try again.',
    'error.generic': 'The service does not answer: check your connection and try again.',
    'mode.video': 'Video call',
    'mode.in_person': 'In person',
    'status.confirmed': 'Confirmed', 'status.cancelled': 'Cancelled', 'status.completed': 'Completed', 'status.no_show': 'Missed',
    'hours.closed': 'closed',
    'days': 'Mon,Tue,Wed,Thu,Fri,Sat,Sun',
  },
});

/** "Lun 09:00–12:00 · Mar …" from 7 arrays of ranges. */
export function hoursText(hours) {
  const days = t('days').split(',');
  return (hours || [])
    .map((ranges, i) => `${days[i]} ${ranges.length ? ranges.join(', ').replace(/-/g, '–') : t('hours.closed')}`)
    .join(' · ');
}

/** An office's contacts, one per line: address, then email and phone as mailto:/tel: links. */
export function contactLines(office, { withName = false } = {}) {
  const lines = [
    withName ? office.name : null,
    office.address || null,
    office.email ? el('a', { href: `mailto:${office.email}`, text: office.email }) : null,
    office.phone ? el('a', { href: `tel:${office.phone.replace(/[^\d+]/g, '')}`, text: office.phone }) : null,
  ].filter(Boolean);
  return lines.flatMap((line, i) => (i ? [el('br'), line] : [line]));
}

/** Saves text through a blob URL (no inline script, no third party). */
export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// --- /servizi --------------------------------------------------------------------------------

async function renderServices() {
  const list = document.getElementById('service-list');
  const status = document.getElementById('services-status');
  let services;
  try {
    services = await api('/api/public/services');
  } catch (e) {
    status.textContent = e.message;
    return;
  }
  list.replaceChildren();
  status.textContent = services.length ? '' : t('services.empty');
  for (const s of services) {
    list.append(el('li', { class: 'card' },
      el('h2', { text: s.name }),
      s.description ? el('p', { text: s.description }) : null,
      el('p', { class: 'muted', text: `${t('services.minutes', { n: s.duration_minutes })} · ${s.modes.map((m) => t(`mode.${m}`)).join(', ')}` }),
      el('a', {
        class: 'btn btn-primary', href: `/prenota?servizio=${encodeURIComponent(s.id)}`,
        'data-element': 'service-booking-access', text: t('services.book'),
        'aria-label': `${t('services.book')}: ${s.name}`,
      })));
  }
}

/** The link to the walk-in video desk, shown when an office has one. */
async function showWalkinLink() {
  const link = document.getElementById('walkin-any');
  if (!link) return;
  try {
    link.hidden = !(await api('/api/public/offices')).some((o) => o.has_desk);
  } catch { /* the link stays hidden */ }
}

if (document.body?.dataset.page === 'servizi') {
  initPage(renderServices);
  renderServices();
  showWalkinLink();
}
