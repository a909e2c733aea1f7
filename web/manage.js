// /appuntamento?codice=…#<secret>: the citizen's booking — summary, cancel (confirmed by a button
// press; `azione=annulla` from the reminder only preselects it: link scanners must not cancel by
// GET), move to another slot, download the .ics.

import { addStrings, api, download, el, initPage, lang, tr } from './services.js';

addStrings({
  it: {
    'm.title': 'Il tuo appuntamento', 'm.missing': 'Il link non è completo: aprilo di nuovo dall\'email di conferma.',
    'm.code': 'Codice', 'm.status': 'Stato', 'm.when': 'Data e orario', 'm.office': 'Ufficio', 'm.service': 'Servizio',
    'm.bring': 'Cosa serve', 'm.contacts': 'Contatti',
    'status.confirmed': 'Confermato', 'status.cancelled': 'Annullato', 'status.completed': 'Concluso', 'status.no_show': 'Non presentato',
    'm.join': 'Entra nella videochiamata', 'm.ics': 'Aggiungi al calendario (.ics)',
    'm.cancel': 'Annulla l\'appuntamento', 'm.cancel.ask': 'Vuoi davvero annullare questo appuntamento? L\'orario tornerà disponibile per altri.',
    'm.cancel.yes': 'Sì, annulla l\'appuntamento', 'm.cancel.no': 'No, mantienilo', 'm.cancelled': 'L\'appuntamento è stato annullato. Ti abbiamo inviato una email di conferma.',
    'm.move': 'Sposta l\'appuntamento', 'm.month': 'Mese', 'm.slots': 'Nuovo orario', 'm.move.do': 'Sposta a questo orario',
    'm.moved': 'Appuntamento spostato. Ti abbiamo inviato una email con il nuovo link.', 'm.pick': 'Scegli un orario.',
    'm.noslots': 'Nessun orario libero in questo mese.', 'm.book': 'Prenota un nuovo appuntamento',
  },
  en: {
    'm.title': 'Your appointment', 'm.missing': 'The link is incomplete: open it again from the confirmation email.',
    'm.code': 'Code', 'm.status': 'Status', 'm.when': 'Date and time', 'm.office': 'Office', 'm.service': 'Service',
    'm.bring': 'What to bring', 'm.contacts': 'Contacts',
    'status.confirmed': 'Confirmed', 'status.cancelled': 'Cancelled', 'status.completed': 'Completed', 'status.no_show': 'Missed',
    'm.join': 'Join the video call', 'm.ics': 'Add to calendar (.ics)',
    'm.cancel': 'Cancel the appointment', 'm.cancel.ask': 'Do you really want to cancel this appointment? The time becomes available to others.',
    'm.cancel.yes': 'Yes, cancel the appointment', 'm.cancel.no': 'No, keep it', 'm.cancelled': 'The appointment was cancelled. We sent you a confirmation email.',
    'm.move': 'Move the appointment', 'm.month': 'Month', 'm.slots': 'New time', 'm.move.do': 'Move to this time',
    'm.moved': 'Appointment moved. We sent you an email with the new link.', 'm.pick': 'Choose a time.',
    'm.noslots': 'No free time in this month.', 'm.book': 'Book a new appointment',
  },
});

const params = new URLSearchParams(location.search);
const code = params.get('codice') || '';
const secret = decodeURIComponent(location.hash.slice(1));
const m = { appt: null, asking: params.get('azione') === 'annulla', moving: false, months: [], month: '', slots: [], slot: '', note: '', alert: '' };
const base = `/api/public/appointments/${encodeURIComponent(code)}`;
const label = (x) => (lang() === 'en' ? x.label_en : x.label_it);

function render(focusId) {
  const root = document.getElementById('manage');
  if (!code || !secret) {
    root.replaceChildren(el('p', { role: 'alert', text: tr('m.missing') }));
    return;
  }
  const a = m.appt;
  const parts = [el('div', { class: 'form-alert', role: 'alert', text: m.alert }), el('p', { role: 'status', id: 'manage-note', text: m.note })];
  if (a) {
    const o = a.office;
    parts.push(el('dl', { class: 'summary' },
      el('dt', { text: tr('m.code') }), el('dd', {}, el('strong', { id: 'booking-code', class: 'booking-code', text: a.code })),
      el('dt', { text: tr('m.status') }), el('dd', { id: 'status', text: tr(`status.${a.status}`) }),
      el('dt', { text: tr('m.when') }), el('dd', { text: `${label(a)} – ${a.end.slice(11, 16)} (${tr(`mode.${a.mode}`)})` }),
      el('dt', { text: tr('m.office') }), el('dd', { text: o.name }),
      el('dt', { text: tr('m.service') }), el('dd', { text: a.service.name }),
      a.service.what_to_bring ? [el('dt', { text: tr('m.bring') }), el('dd', { text: a.service.what_to_bring })] : [],
      el('dt', { text: tr('m.contacts') }), el('dd', { text: [o.address, o.email, o.phone].filter(Boolean).join('\n') })));
    const actions = el('div', { class: 'actions' });
    if (a.join_url) actions.append(el('a', { class: 'btn btn-primary', href: a.join_url, text: tr('m.join') }));
    if (a.status === 'confirmed') actions.append(el('button', { type: 'button', class: 'btn', id: 'ics', text: tr('m.ics'), onclick: ics }));
    if (a.can_change) {
      actions.append(el('button', { type: 'button', class: 'btn', id: 'move', 'aria-expanded': String(m.moving), text: tr('m.move'), onclick: openMove }));
      actions.append(el('button', { type: 'button', class: 'btn', id: 'cancel', 'aria-expanded': String(m.asking), text: tr('m.cancel'), onclick: () => { m.asking = true; render('cancel-question'); } }));
    }
    if (a.status === 'cancelled') actions.append(el('a', { class: 'btn btn-primary', href: '/prenota', text: tr('m.book') }));
    parts.push(actions);
    if (a.can_change && m.asking) {
      parts.push(el('section', { class: 'panel', 'aria-labelledby': 'cancel-question' },
        el('h2', { id: 'cancel-question', tabindex: '-1', text: tr('m.cancel.ask') }),
        el('div', { class: 'actions' },
          el('button', { type: 'button', class: 'btn btn-primary', id: 'confirm-cancel', text: tr('m.cancel.yes'), onclick: cancel }),
          el('button', { type: 'button', class: 'btn', text: tr('m.cancel.no'), onclick: () => { m.asking = false; render('cancel'); } }))));
    }
    if (a.can_change && m.moving) parts.push(moveForm());
  }
  root.replaceChildren(...parts);
  if (focusId) document.getElementById(focusId)?.focus();
}

function moveForm() {
  const month = el('select', { id: 'month-select', onchange: async (e) => { m.month = e.target.value; await loadSlots(); render('month-select'); } },
    m.months.map((x) => el('option', { value: x.month, selected: x.month === m.month, text: lang() === 'en' ? x.label_en : x.label_it })));
  return el('form', { novalidate: true, onsubmit: move, 'aria-labelledby': 'move-title' },
    el('h2', { id: 'move-title', tabindex: '-1', text: tr('m.move') }),
    el('div', { class: 'field' }, el('label', { for: 'month-select', text: tr('m.month') }), month),
    m.slots.length
      ? el('fieldset', { class: 'slots' }, el('legend', { text: tr('m.slots') }),
        m.slots.map((x) => el('label', {}, el('input', { type: 'radio', name: 'slot', value: x.start, checked: m.slot === x.start, onchange: () => { m.slot = x.start; } }), el('span', { text: label(x) }))))
      : el('p', { text: tr('m.noslots') }),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'btn btn-primary', id: 'confirm', text: tr('m.move.do') })));
}

async function load() {
  try {
    m.appt = await api(base, { secret });
  } catch (e) {
    m.alert = e.message;
  }
  render();
}

async function openMove() {
  m.moving = true;
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
  m.slot = '';
  if (!m.month) return;
  const q = `service=${encodeURIComponent(m.appt.service.id)}&month=${m.month}`;
  m.slots = (await api(`/api/public/offices/${encodeURIComponent(m.appt.office.id)}/slots?${q}`)).slots;
}

async function move(e) {
  e.preventDefault();
  if (!m.slot) {
    m.alert = tr('m.pick');
    render('month-select');
    return;
  }
  try {
    m.appt = await api(`${base}/reschedule`, { method: 'POST', body: { start: m.slot }, secret });
    m.moving = false;
    m.alert = '';
    m.note = tr('m.moved');
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
    m.note = tr('m.cancelled');
  } catch (err) {
    m.alert = err.message;
  }
  render('manage-note');
}

async function ics() {
  try {
    const response = await fetch(`${base}/ics`, { headers: { 'X-Booking-Secret': secret } });
    if (!response.ok) throw new Error(String(response.status));
    download('appuntamento.ics', await response.text(), 'text/calendar');
  } catch {
    m.alert = tr('error.network');
    render();
  }
}

initPage(() => render());
load();
