// Shared helpers of the citizen pages (/servizi, /prenota, /appuntamento) and the services list.
// Italian first; the header button switches to English (stored by i18n.js). No third-party code.

import { getLang, initLangSwitch, onLangChange } from '../shared/i18n.js';

const STRINGS = {
  it: {
    'services.title': 'Servizi su appuntamento',
    'services.intro': 'Scegli il servizio e prenota un appuntamento, in presenza o in videochiamata.',
    'services.book': 'Prenota',
    'services.empty': 'Nessun servizio prenotabile al momento.',
    'services.minutes': '{n} minuti',
    'nav.home': 'Home',
    'nav.services': 'Servizi',
    'nav.book': 'Prenota un appuntamento',
    'nav.manage': 'Il tuo appuntamento',
    'error.network': 'Il servizio non risponde: controlla la connessione e riprova.',
    'mode.video': 'Videochiamata',
    'mode.in_person': 'In presenza',
    'hours.closed': 'chiuso',
    'days': 'Lun,Mar,Mer,Gio,Ven,Sab,Dom',
  },
  en: {
    'services.title': 'Services by appointment',
    'services.intro': 'Choose the service and book an appointment, in person or by video call.',
    'services.book': 'Book',
    'services.empty': 'No service can be booked at the moment.',
    'services.minutes': '{n} minutes',
    'nav.home': 'Home',
    'nav.services': 'Services',
    'nav.book': 'Book an appointment',
    'nav.manage': 'Your appointment',
    'error.network': 'The service does not answer: check your connection and try again.',
    'mode.video': 'Video call',
    'mode.in_person': 'In person',
    'hours.closed': 'closed',
    'days': 'Mon,Tue,Wed,Thu,Fri,Sat,Sun',
  },
};

const extra = { it: {}, en: {} };

/** Pages add their own strings. */
export function addStrings(more) {
  Object.assign(extra.it, more.it);
  Object.assign(extra.en, more.en);
}

export function lang() {
  return getLang() === 'en' ? 'en' : 'it';
}

export function tr(key, params = {}) {
  const l = lang();
  const s = extra[l][key] ?? STRINGS[l][key] ?? extra.it[key] ?? STRINGS.it[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''));
}

/** `data-t` texts and `data-t-attr="attr:key"` attributes. */
export function applyStrings(root = document) {
  for (const e of root.querySelectorAll('[data-t]')) e.textContent = tr(e.dataset.t);
  for (const e of root.querySelectorAll('[data-t-attr]')) {
    const [attr, key] = e.dataset.tAttr.split(':');
    e.setAttribute(attr, tr(key));
  }
}

/** Language switch and static strings; `render` runs again on every language change. */
export function initPage(render) {
  initLangSwitch();
  applyStrings();
  onLangChange(() => {
    applyStrings();
    render?.();
  });
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    // Properties only where the element has one (`value`, `checked`, `tabIndex`): an attribute
    // name such as `tabindex` or `novalidate` set as a property would silently do nothing.
    else if (k in e && !k.includes('-')) e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** JSON API call; throws `ApiFailure` with the server's code and message. */
export async function api(path, { method = 'GET', body, secret } = {}) {
  const headers = { Accept: 'application/json', 'Accept-Language': lang() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (secret) headers['X-Booking-Secret'] = secret;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiFailure(0, 'network', tr('error.network'));
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiFailure(response.status, data?.error?.code ?? 'error', data?.error?.message ?? tr('error.network'));
  }
  return data;
}

/** "Lun 09:00–12:00 · Mar …" from 7 arrays of ranges. */
export function hoursText(hours) {
  const days = tr('days').split(',');
  return (hours || [])
    .map((ranges, i) => `${days[i]} ${ranges.length ? ranges.join(', ').replace(/-/g, '–') : tr('hours.closed')}`)
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
  status.textContent = services.length ? '' : tr('services.empty');
  for (const s of services) {
    list.append(el('li', { class: 'card' },
      el('h2', { text: s.name }),
      s.description ? el('p', { text: s.description }) : null,
      el('p', { class: 'muted', text: `${tr('services.minutes', { n: s.duration_minutes })} · ${s.modes.map((m) => tr(`mode.${m}`)).join(', ')}` }),
      el('a', {
        class: 'btn btn-primary', href: `/prenota?servizio=${encodeURIComponent(s.id)}`,
        'data-element': 'service-booking-access', text: tr('services.book'),
        'aria-label': `${tr('services.book')}: ${s.name}`,
      })));
  }
}

if (document.body?.dataset.page === 'servizi') {
  initPage(renderServices);
  renderServices();
}
