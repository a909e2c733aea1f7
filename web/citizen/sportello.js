// /sportello and /sportello/<office>: the walk-in video desk, citizen's side (docs/walkin.md).
// Without an office: the offices that have a video desk. With one: its desk — closed (when it opens
// next, and booking instead), or open: the form (name, optional email, topic and service, privacy),
// the room lobby's own camera/microphone and network check, then the queue. In the queue the page
// polls the ticket every 3 s (each poll keeps the place), says the position and the estimate
// politely when they change, offers to leave or to be called back, and goes into the room when an
// official calls. The ticket is kept in localStorage (room/walkin.js), so a closed tab comes back
// to its place within the grace period.

import '../room/strings.js';
import { addStrings, getLang, initPage, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { el } from '../shared/dom.js';
import { field as fieldOf, privacyAck as privacyOf } from './fields.js';
import './services.js';
import { NetcheckPanel } from '../room/netcheck.js';
import { MicMeter, acquireMedia, listDevices, mediaSupported } from '../room/media.js';
import {
  OVER, POLL_MS, fetchTicket, forgetTicket, loadTicket, saveTicket, ticketGone,
} from '../room/walkin.js';

// The lobby's advice when the network blocks the call speaks of a confirmation email: here there
// is none (this page alone loads this catalog after the room's).
addStrings({
  it: { 'netcheck.todo.call': 'oppure prenota un appuntamento in presenza o chiama l\'ufficio.' },
  en: { 'netcheck.todo.call': 'or book an in-person appointment, or call the office.' },
});

/** How long «È il tuo turno» stays on screen before the room opens. */
const GO_DELAY_MS = 1500;
/** How often the desk's status is asked again while the page shows it (closed, or the form). */
const DESK_REFRESH_MS = 60000;
const TOPIC_MAX = 200;
const EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

const FIELD_IDS = { name: 'walkin-name', email: 'walkin-email', topic: 'walkin-topic', service_id: 'walkin-service' };
const CODE_FIELDS = {
  invalid_name: 'name', invalid_email: 'email', invalid_topic: 'topic', invalid_service: 'service_id',
  unknown_service: 'service_id', service_not_offered: 'service_id',
};

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

/** The office of `/sportello/<office>`, or null on `/sportello`. */
function officeFromPath() {
  const m = /^\/sportello\/([^/]+)\/?$/.exec(location.pathname);
  if (!m) return null;
  try { return decodeURIComponent(m[1]); } catch { return null; }
}

const OFFICE = officeFromPath();

const s = {
  /** list | loading | unknown | nodesk | closed | form | check | queue | turn | error */
  view: 'loading',
  desk: null,
  offices: null,
  statuses: {},
  /** The stored ticket `{id, secret, office, office_name}`, and the last Ticket the server sent. */
  stored: loadTicket(),
  ticket: null,
  form: { name: '', email: '', topic: '', serviceId: '', privacy: false, website: '' },
  errors: {},
  alert: '',
  /** A message above the views: `{key}` (ours, re-said on a language switch) or `{text}`. */
  notice: null,
  error: '',
  offline: false,
  asking: false,
  cbEmail: '',
  cbError: '',
  queueAlert: '',
  going: false,
  busy: false,
};

function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

function officeName() {
  return s.desk?.office_name || s.ticket?.office_name || (s.stored?.office === OFFICE ? s.stored?.office_name : '') || '';
}

/** When the desk opens next, in the page's language. */
function opensText(desk) {
  const label = desk?.opens_label;
  if (label) return label[getLang()] || label.it || label.en || '';
  if (!desk?.opens_at) return '';
  return new Intl.DateTimeFormat(getLang() === 'en' ? 'en-GB' : 'it-IT', {
    timeZone: 'Europe/Rome', weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit',
  }).format(new Date(desk.opens_at));
}

/** «Aperto ora. In coda: 3 persone. Attesa stimata: circa 30 minuti.» or «Chiuso ora. Riapre …». */
function statusText(desk) {
  if (!desk) return '';
  if (!desk.open) {
    const when = opensText(desk);
    return [t('walkin.status.closed'), when ? t('walkin.status.opens', { when }) : t('walkin.status.nonext')].join(' ');
  }
  const n = desk.waiting ?? 0;
  const parts = [t('walkin.status.open'), n === 0 ? t('walkin.status.queue.0') : n === 1 ? t('walkin.status.queue.1') : t('walkin.status.queue', { n })];
  const m = desk.estimated_wait_minutes;
  if (n > 0 && Number.isFinite(m) && m > 0) parts.push(m === 1 ? t('walkin.status.estimate.1') : t('walkin.status.estimate', { n: m }));
  return parts.join(' ');
}

function positionText(tk) {
  if (!Number.isFinite(tk.position)) return t('walkin.position.unknown');
  return tk.position <= 1 ? t('walkin.position.first') : t('walkin.position', { n: tk.position });
}

function waitText(tk) {
  const m = tk.estimated_wait_minutes;
  if (!Number.isFinite(m) || m <= 0) return '';
  return m === 1 ? t('walkin.wait.1') : t('walkin.wait', { n: m });
}

/** A link into the room only on this site. */
function sameOrigin(url) {
  try { return new URL(url, location.origin).origin === location.origin; } catch { return false; }
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderChrome() {
  const name = officeName();
  const crumbs = [el('li', {}, el('a', { href: '/', text: t('nav.home') }))];
  if (OFFICE) {
    crumbs.push(el('li', {}, el('a', { href: '/sportello', text: t('nav.walkin') })));
    crumbs.push(el('li', { 'aria-current': 'page', text: name || (s.view === 'unknown' ? t('walkin.notfound') : '…') }));
  } else {
    crumbs.push(el('li', { 'aria-current': 'page', text: t('nav.walkin') }));
  }
  $('crumbs').replaceChildren(...crumbs);
  const office = $('walkin-office');
  const showOffice = !!(OFFICE && name && s.view !== 'unknown');
  office.hidden = !showOffice;
  setText(office, showOffice ? t('walkin.office', { office: name }) : '');
  if (s.view === 'turn') document.title = t('walkin.doctitle.turn');
  else if (OFFICE && name) document.title = t('walkin.doctitle.office', { office: name });
  else document.title = t('walkin.doctitle');
  setText($('walkin-notice'), s.notice ? (s.notice.key ? t(s.notice.key) : s.notice.text || '') : '');
}

/** `focusId`: where the focus goes after a change of view the user asked for (never on load). */
function render(focusId = null) {
  renderChrome();
  const root = $('walkin');
  $('check').hidden = s.view !== 'check';
  $('queue').hidden = s.view !== 'queue';
  root.hidden = s.view === 'check' || s.view === 'queue';
  root.replaceChildren(...(root.hidden ? [] : VIEWS[s.view]().flat().filter((x) => x !== null && x !== undefined && x !== false)));
  if (s.view === 'check') renderCheck();
  if (s.view === 'queue') renderQueue({ rebuild: true });
  if (focusId) $(focusId)?.focus();
}

function viewTitle(key) {
  return el('h2', { id: 'view-title', tabindex: '-1', text: t(key) });
}

function bookLink(primary = true) {
  return el('a', { class: primary ? 'btn btn-primary' : 'btn', href: '/prenota', 'data-element': 'appointment-booking', text: t('walkin.book') });
}

function othersLink() {
  return el('a', { class: 'btn', href: '/sportello', text: t('walkin.others') });
}

/** Queued at another office's desk (another tab, an earlier visit): the way back to that queue. */
function resumeLink() {
  const st = s.stored;
  if (!st || !st.office || st.office === OFFICE) return null;
  const text = st.office_name ? t('walkin.list.resume', { office: st.office_name }) : t('walkin.list.resume.any');
  return el('p', { class: 'note' }, el('a', { href: `/sportello/${enc(st.office)}`, id: 'resume-link', text }));
}

/** A field of the form, with the error the last check left for it. */
function field(id, label, input, options = {}) {
  return fieldOf(id, label, input, { ...options, error: s.errors[id] });
}

function privacyAck() {
  return privacyOf({
    checked: s.form.privacy, onchange: (v) => { s.form.privacy = v; }, error: s.errors['privacy-ack'],
  });
}

const VIEWS = {
  loading: () => [el('p', { text: t('walkin.loading') })],
  error: () => [
    el('p', { class: 'form-alert', role: 'alert', text: s.error || t('error.network') }),
    el('div', { class: 'actions' }, el('button', { type: 'button', class: 'btn btn-primary', id: 'retry', text: t('walkin.retry'), onclick: retry })),
  ],
  list: () => {
    const offices = (s.offices || []).filter((o) => o.has_desk);
    const intro = el('p', { class: 'lead', text: t('walkin.intro') });
    if (!offices.length) {
      return [intro, resumeLink(), el('p', { id: 'no-desk', text: t('walkin.list.none') }), el('div', { class: 'actions' }, bookLink())];
    }
    return [intro, resumeLink(), el('h2', { text: t('walkin.list.title') }),
      el('ul', { class: 'cards', id: 'desk-list' }, offices.map((o) => el('li', { class: 'card', 'data-office-id': o.id },
        el('h3', { text: o.name }),
        o.address ? el('p', { text: o.address }) : null,
        s.statuses[o.id] ? el('p', { class: 'desk-status', text: statusText(s.statuses[o.id]) }) : null,
        el('a', { class: 'btn btn-primary', href: `/sportello/${enc(o.id)}`, text: t('walkin.list.enter'), 'aria-label': `${t('walkin.list.enter')}: ${o.name}` }))))];
  },
  unknown: () => [el('p', { id: 'unknown-office', text: t('walkin.unknown') }), el('div', { class: 'actions' }, othersLink(), bookLink(false))],
  nodesk: () => [viewTitle('walkin.nodesk.title'), el('p', { text: t('walkin.nodesk') }),
    el('div', { class: 'actions' }, bookLink(), othersLink())],
  closed: () => {
    const when = opensText(s.desk);
    return [viewTitle('walkin.closed.title'), resumeLink(),
      el('p', { id: 'desk-closed', text: when ? t('walkin.closed.opens', { when }) : t('walkin.closed.nonext') }),
      el('p', { text: t('walkin.closed.book') }),
      el('div', { class: 'actions' }, bookLink(), othersLink())];
  },
  form: () => {
    const f = s.form;
    const input = (key, type, autocomplete, extra = {}) => el('input', { type, autocomplete, value: f[key], oninput: (e) => { f[key] = e.target.value; }, ...extra });
    const services = s.desk?.services || [];
    const service = services.length
      ? field('walkin-service', t('walkin.service'),
        el('select', { value: f.serviceId, onchange: (e) => { f.serviceId = e.target.value; } },
          el('option', { value: '', text: t('walkin.service.none') }),
          services.map((x) => el('option', { value: x.id, text: x.name }))),
        { help: t('walkin.service.help') })
      : null;
    const form = el('form', { id: 'walkin-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); toCheck(); } },
      el('div', { class: 'form-alert', role: 'alert', id: 'form-alert', text: s.alert || '' }),
      field('walkin-name', t('walkin.name'), input('name', 'text', 'name'), { required: true }),
      field('walkin-email', t('walkin.email'), input('email', 'email', 'email'), { help: t('walkin.email.help') }),
      field('walkin-topic', t('walkin.topic'),
        el('textarea', { rows: 3, maxlength: TOPIC_MAX, value: f.topic, oninput: (e) => { f.topic = e.target.value; } }),
        { help: t('walkin.topic.help') }),
      service,
      el('div', { class: 'honeypot', 'aria-hidden': 'true' },
        el('label', { for: 'website', text: t('walkin.website') }),
        el('input', { type: 'text', id: 'website', name: 'website', tabindex: '-1', autocomplete: 'off', value: f.website, oninput: (e) => { f.website = e.target.value; } })),
      privacyAck(),
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'btn btn-primary', id: 'walkin-next', text: t('walkin.next') })));
    return [resumeLink(), el('p', { id: 'desk-status', class: 'desk-status', text: statusText(s.desk) }),
      viewTitle('walkin.form.title'), el('p', { text: t('walkin.form.intro') }), form];
  },
  turn: () => {
    const url = s.ticket?.join_url;
    return [viewTitle('walkin.turn'),
      el('p', { role: 'status', text: t(s.going ? 'walkin.turn.going' : 'walkin.turn.ready') }),
      el('div', { class: 'actions' }, el('a', { class: 'btn btn-primary btn-large', id: 'enter-room', href: url, text: t('walkin.turn.enter') }))];
  },
};

// ---------------------------------------------------------------------------------------------
// The office list and the desk

async function startList() {
  try {
    s.offices = await api('/api/public/offices');
  } catch (e) {
    s.view = 'error';
    s.error = e.message;
    render();
    return;
  }
  s.view = 'list';
  render();
  // Each desk's state, when it answers (a few offices: one request each).
  await Promise.all(s.offices.filter((o) => o.has_desk).map(async (o) => {
    try { s.statuses[o.id] = await api(`/api/public/offices/${enc(o.id)}/desk`); } catch { /* said without it */ }
  }));
  if (s.view === 'list') {
    // Only the status lines change: the focus stays where it is.
    for (const o of s.offices.filter((x) => x.has_desk && s.statuses[x.id])) {
      const card = document.querySelector(`#desk-list [data-office-id="${CSS.escape(o.id)}"]`);
      if (!card || card.querySelector('.desk-status')) continue;
      card.querySelector('.btn')?.before(el('p', { class: 'desk-status', text: statusText(s.statuses[o.id]) }));
    }
  }
}

/** Asks the desk's status and picks the view from it (not rendered). */
async function loadDesk() {
  try {
    s.desk = await api(`/api/public/offices/${enc(OFFICE)}/desk`);
  } catch (e) {
    if (e.status === 404) {
      s.view = 'unknown';
    } else {
      s.view = 'error';
      s.error = e.message;
    }
    return;
  }
  if (!s.desk.has_desk) s.view = 'nodesk';
  else if (!s.desk.open) s.view = 'closed';
  else s.view = 'form';
  scheduleDeskRefresh();
}

let deskTimer = null;
function scheduleDeskRefresh() {
  clearTimeout(deskTimer);
  deskTimer = setTimeout(refreshDesk, DESK_REFRESH_MS);
}

/** While the desk is shown: a desk that opens shows its form; the form's status line stays true. */
async function refreshDesk() {
  if (!['closed', 'form'].includes(s.view) || document.hidden) {
    if (['closed', 'form'].includes(s.view)) scheduleDeskRefresh();
    return;
  }
  try {
    s.desk = await api(`/api/public/offices/${enc(OFFICE)}/desk`);
  } catch { /* the next time */ }
  if (s.view === 'closed' && s.desk.open && s.desk.has_desk) {
    s.view = 'form';
    render();
  } else if (s.view === 'form') {
    setText($('desk-status'), statusText(s.desk));
  }
  if (['closed', 'form'].includes(s.view)) scheduleDeskRefresh();
}

async function retry() {
  s.view = 'loading';
  render();
  await start();
  $('view-title')?.focus();
}

async function startOffice() {
  s.stored = loadTicket();
  if (s.stored && s.stored.office === OFFICE) {
    let tk = null;
    try {
      tk = await fetchTicket(s.stored);
    } catch (e) {
      if (!ticketGone(e)) {
        // No answer: the place is kept, the queue view tries again.
        s.ticket = { office_id: OFFICE, office_name: s.stored.office_name, state: 'waiting', position: null, estimated_wait_minutes: null };
        s.offline = true;
        s.view = 'queue';
        render();
        ensurePolling();
        return;
      }
      forgetTicket(s.stored.id);
      s.stored = null;
    }
    if (tk && !OVER.includes(tk.state)) {
      onTicket(tk, { resumed: true });
      return;
    }
    if (tk) {
      forgetTicket(s.stored.id);
      s.stored = null;
      if (tk.state === 'abandoned') s.notice = { key: 'walkin.abandoned' };
    }
  }
  await loadDesk();
  render();
}

function start() {
  return OFFICE ? startOffice() : startList();
}

// ---------------------------------------------------------------------------------------------
// The form, then the device and network check

function check() {
  const f = s.form;
  s.errors = {};
  if (!f.name.trim()) s.errors['walkin-name'] = t('walkin.err.required');
  if (f.email.trim() && !EMAIL_RE.test(f.email.trim())) s.errors['walkin-email'] = t('walkin.err.email');
  if (f.topic.length > TOPIC_MAX) s.errors['walkin-topic'] = t('walkin.err.topic');
  if (!f.privacy) s.errors['privacy-ack'] = t('walkin.err.privacy');
  return Object.keys(s.errors).length === 0;
}

function toCheck() {
  s.alert = '';
  if (!check()) {
    render();
    $(Object.keys(s.errors)[0])?.focus();
    return;
  }
  s.view = 'check';
  render('check-title');
  startMedia();
  if (!netcheck) {
    netcheck = new NetcheckPanel({ api, t, el, onOutcome: onNetcheck });
    netcheck.run();
  }
}

let netcheck = null;

function onNetcheck(outcome) {
  const none = outcome?.verdict === 'none';
  const note = $('check-note');
  setText(note, none ? t('walkin.check.none') : '');
  note.hidden = !none;
  if (none) $('queue-join').setAttribute('aria-describedby', 'check-note');
  else $('queue-join').removeAttribute('aria-describedby');
}

function renderCheck() {
  netcheck?.render();
  onNetcheck(netcheck?.outcome ?? null);
  setMediaNote(media.noteKey);
  setText($('check-alert'), s.alert || '');
  $('queue-join').setAttribute('aria-disabled', s.busy ? 'true' : 'false');
}

const media = { gen: 0, audio: null, video: null, meter: null, noteKey: null };

function setMediaNote(key) {
  media.noteKey = key;
  const note = $('media-note');
  setText(note, key ? t(key) : '');
  note.hidden = !key;
}

async function startMedia() {
  const gen = ++media.gen;
  media.meter ??= new MicMeter($('mic-meter'));
  if (!mediaSupported()) {
    setMediaNote('join.media.unsupported');
    fillSelect($('camera-select'), [], null);
    fillSelect($('mic-select'), [], null);
    $('preview-off').hidden = false;
    return;
  }
  setMediaNote('join.media.waiting');
  const r = await acquireMedia();
  if (gen !== media.gen) {
    r.audio?.stop();
    r.video?.stop();
    return;
  }
  media.audio = r.audio;
  media.video = r.video;
  renderPreview();
  media.meter.attach(r.audio);
  if (r.error === 'denied') setMediaNote('join.media.denied');
  else if (r.error === 'none') setMediaNote('join.media.none');
  else if (!r.video) setMediaNote('join.media.nocamera');
  else if (!r.audio) setMediaNote('join.media.nomic');
  else setMediaNote('join.media.ready');
  await fillDevices();
}

/** Camera and microphone off: they are not needed while queueing (the room asks again). */
function stopMedia() {
  media.gen += 1;
  media.meter?.detach();
  media.audio?.stop();
  media.video?.stop();
  media.audio = null;
  media.video = null;
  $('preview').srcObject = null;
}

function renderPreview() {
  const video = $('preview');
  if (media.video) {
    video.srcObject = new MediaStream([media.video]);
    video.play().catch(() => {});
  } else {
    video.srcObject = null;
  }
  $('preview-off').hidden = !!media.video;
}

async function fillDevices() {
  if (s.view !== 'check') return;
  let devices;
  try {
    devices = await listDevices();
  } catch {
    return;
  }
  fillSelect($('camera-select'), devices.cameras, media.video?.getSettings().deviceId);
  fillSelect($('mic-select'), devices.microphones, media.audio?.getSettings().deviceId);
}

function fillSelect(select, devices, currentId) {
  select.replaceChildren();
  if (!devices.length) {
    select.append(el('option', { value: '', text: t('device.none') }));
    select.disabled = true;
    return;
  }
  select.disabled = false;
  devices.forEach((d, i) => {
    select.append(el('option', { value: d.deviceId, text: d.label || t('device.unnamed', { n: i + 1 }), selected: d.deviceId === currentId }));
  });
}

async function switchDevice(source, deviceId) {
  const audio = source === 'microphone';
  const gen = media.gen;
  const r = await acquireMedia({ audio, video: !audio, audioDeviceId: audio ? deviceId : undefined, videoDeviceId: audio ? undefined : deviceId });
  const track = audio ? r.audio : r.video;
  if (gen !== media.gen || s.view !== 'check') {
    track?.stop();
    return;
  }
  if (!track) {
    setMediaNote(audio ? 'join.media.nomic' : 'join.media.nocamera');
    return;
  }
  if (audio) {
    media.audio?.stop();
    media.audio = track;
    media.meter?.attach(track);
  } else {
    media.video?.stop();
    media.video = track;
    renderPreview();
  }
}

function backToForm() {
  stopMedia();
  s.alert = '';
  s.view = 'form';
  render('view-title');
  scheduleDeskRefresh();
}

/** Server field errors: the body's `fields` (names or `{field, message}`, or an object) or the code. */
function serverFieldErrors(e) {
  const out = {};
  const fields = e.body?.error?.fields;
  if (Array.isArray(fields)) {
    for (const x of fields) {
      const name = typeof x === 'string' ? x : x?.field ?? x?.name;
      if (FIELD_IDS[name]) out[FIELD_IDS[name]] = (typeof x === 'object' && x?.message) || e.message;
    }
  } else if (fields && typeof fields === 'object') {
    for (const [k, v] of Object.entries(fields)) if (FIELD_IDS[k]) out[FIELD_IDS[k]] = typeof v === 'string' ? v : e.message;
  }
  const byCode = FIELD_IDS[CODE_FIELDS[e.code]];
  if (byCode && !out[byCode]) out[byCode] = e.message;
  return out;
}

async function joinQueue() {
  if (s.busy || s.view !== 'check') return;
  s.busy = true;
  s.alert = '';
  renderCheck();
  const f = s.form;
  const body = { name: f.name.trim(), lang: getLang(), website: f.website };
  if (f.email.trim()) body.email = f.email.trim();
  if (f.topic.trim()) body.topic = f.topic.trim();
  if (f.serviceId) body.service_id = f.serviceId;
  let tk;
  try {
    tk = await api(`/api/public/offices/${enc(OFFICE)}/walkins`, { method: 'POST', body });
  } catch (e) {
    s.busy = false;
    if (e.status === 400) {
      stopMedia();
      s.errors = serverFieldErrors(e);
      s.alert = e.message;
      s.view = 'form';
      render();
      $(Object.keys(s.errors)[0] || 'form-alert')?.focus();
      return;
    }
    // Closed meanwhile (or no desk any more): the desk's status says what now.
    if (e.status === 409 && ['desk_closed', 'no_desk'].includes(e.code)) {
      stopMedia();
      s.notice = { text: e.message };
      await loadDesk();
      render('view-title');
      return;
    }
    s.alert = e.status === 429 ? (e.body?.error?.message || t('walkin.err.busy')) : e.message;
    renderCheck();
    return;
  }
  s.busy = false;
  stopMedia();
  s.stored = { id: tk.id, secret: tk.secret, office: OFFICE, office_name: tk.office_name || officeName() };
  saveTicket(s.stored);
  s.notice = null;
  s.errors = {};
  s.form.privacy = false;
  s.ticket = null;
  onTicket(tk, { focus: true });
}

// ---------------------------------------------------------------------------------------------
// The queue

const live = { position: null, wait: null, callbackKey: null, actionsKey: null };

/** Out of the queue: its texts go, so that a new place is said afresh. */
function resetQueue() {
  live.position = null;
  live.wait = null;
  setText($('queue-position'), '');
  setText($('queue-wait'), '');
  s.asking = false;
  s.cbError = '';
  s.queueAlert = '';
}

/** Writes the queue view; the live texts only when they changed (each change is announced). */
function renderQueue({ rebuild = false } = {}) {
  const tk = s.ticket;
  if (!tk) return;
  const cb = tk.state === 'callback';
  setText($('queue-title'), t(cb ? 'walkin.cb.title.done' : 'walkin.queue.title'));
  const position = cb ? t('walkin.cb.done') : positionText(tk);
  const wait = cb ? '' : waitText(tk);
  if (position !== live.position || wait !== live.wait) {
    live.position = position;
    live.wait = wait;
    setText($('queue-position'), position);
    setText($('queue-wait'), wait);
  }
  setText($('queue-keep'), t(cb ? 'walkin.cb.close' : 'walkin.queue.keep'));
  setText($('queue-offline'), s.offline ? t('walkin.queue.offline') : '');
  setText($('queue-alert'), s.queueAlert || '');
  const offer = tk.state === 'waiting' && tk.callback_offered;
  const callbackKey = `${offer}|${tk.email_given}|${getLang()}|${s.cbError}`;
  if (rebuild || callbackKey !== live.callbackKey) {
    const hadFocus = $('queue-callback').contains(document.activeElement);
    live.callbackKey = callbackKey;
    $('queue-callback').replaceChildren(...(offer ? callbackOffer(tk) : []));
    if (hadFocus && !$('queue-callback').contains(document.activeElement)) ($('cb-email') || $('cb-button') || $('queue-title'))?.focus();
  }
  const actionsKey = `${s.asking}|${getLang()}`;
  if (rebuild || actionsKey !== live.actionsKey) {
    live.actionsKey = actionsKey;
    $('queue-actions').replaceChildren(...queueActions());
  }
}

function callbackOffer(tk) {
  const parts = [el('h3', { id: 'cb-title', text: t('walkin.cb.title') }), el('p', { text: t('walkin.cb.text') })];
  const form = el('form', { id: 'cb-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); requestCallback(); } });
  if (!tk.email_given) {
    const input = el('input', {
      type: 'email', autocomplete: 'email', value: s.cbEmail, oninput: (e) => { s.cbEmail = e.target.value; },
    });
    form.append(fieldOf('cb-email', t('walkin.cb.email'), input, { required: true, error: s.cbError }));
  } else if (s.cbError) {
    form.append(el('p', { id: 'cb-email-error', class: 'field-error', text: s.cbError }));
  }
  form.append(el('button', { type: 'submit', class: 'btn btn-primary', id: 'cb-button', text: t('walkin.cb.button') }));
  parts.push(form);
  return [el('section', { class: 'walkin-callback', 'aria-labelledby': 'cb-title' }, parts)];
}

function queueActions() {
  if (!s.asking) {
    return [el('div', { class: 'actions' }, el('button', {
      type: 'button', class: 'btn', id: 'leave', 'aria-expanded': 'false', text: t('walkin.leave'),
      onclick: () => { s.asking = true; renderQueue(); $('leave-question')?.focus(); },
    }))];
  }
  return [el('div', { class: 'walkin-leave', role: 'group', 'aria-labelledby': 'leave-question' },
    el('p', { id: 'leave-question', tabindex: '-1', text: t('walkin.leave.ask') }),
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'btn btn-primary', id: 'leave-yes', text: t('walkin.leave.yes'), onclick: leaveQueue }),
      el('button', { type: 'button', class: 'btn', id: 'leave-no', text: t('walkin.leave.no'), onclick: () => { s.asking = false; renderQueue(); $('leave')?.focus(); } })))];
}

function secretHeader() {
  return { 'X-Walkin-Secret': s.stored.secret };
}

async function requestCallback() {
  const tk = s.ticket;
  if (!tk || !s.stored || s.busy) return;
  const email = s.cbEmail.trim();
  if (!tk.email_given && !EMAIL_RE.test(email)) {
    s.cbError = email ? t('walkin.err.email') : t('walkin.err.required');
    renderQueue();
    $('cb-email')?.focus();
    return;
  }
  s.busy = true;
  s.cbError = '';
  s.queueAlert = '';
  let next;
  try {
    next = await api(`/api/public/walkins/${enc(s.stored.id)}/callback`, {
      method: 'POST', headers: secretHeader(), body: tk.email_given ? {} : { email },
    });
  } catch (e) {
    s.busy = false;
    if (ticketGone(e)) {
      lost(null);
      return;
    }
    if (e.status === 400) {
      s.cbError = e.message;
      renderQueue();
      ($('cb-email') || $('cb-button'))?.focus();
    } else {
      s.queueAlert = e.message;
      renderQueue();
    }
    return;
  }
  s.busy = false;
  onTicket(next);
  $('queue-title')?.focus();
}

async function leaveQueue() {
  const stored = s.stored;
  if (!stored || s.busy) return;
  s.busy = true;
  // No poll meanwhile: it would see `left` and take the page elsewhere first.
  stopPolling();
  try {
    await api(`/api/public/walkins/${enc(stored.id)}/leave`, { method: 'POST', headers: secretHeader() });
  } catch (e) {
    if (!ticketGone(e)) {
      s.busy = false;
      s.queueAlert = e.message;
      renderQueue();
      ensurePolling();
      return;
    }
  }
  s.busy = false;
  resetQueue();
  forgetTicket(stored.id);
  s.stored = null;
  s.ticket = null;
  s.notice = { key: 'walkin.left' };
  await loadDesk();
  render('view-title');
}

/** The ticket is over or unknown: forget it, back to the desk (saying so for a lost place). */
async function lost(state) {
  stopPolling();
  const wasQueue = s.view === 'queue' || s.view === 'turn';
  resetQueue();
  if (s.stored) forgetTicket(s.stored.id);
  s.stored = null;
  s.ticket = null;
  s.offline = false;
  s.notice = state === 'abandoned' ? { key: 'walkin.abandoned' } : null;
  await loadDesk();
  render(wasQueue ? 'view-title' : null);
}

/** A Ticket from the server (queueing, a poll, the callback, a resumed page). */
function onTicket(tk, { resumed = false, focus = false } = {}) {
  s.offline = false;
  if (OVER.includes(tk.state)) {
    lost(tk.state);
    return;
  }
  const { secret: _secret, ...rest } = tk;
  s.ticket = { ...(s.ticket || {}), ...rest };
  if (['serving', 'transferring'].includes(tk.state) && tk.join_url && sameOrigin(tk.join_url)) {
    yourTurn(!resumed);
    return;
  }
  if (s.view !== 'queue') {
    s.view = 'queue';
    render(focus ? 'queue-title' : null);
  } else {
    renderQueue();
  }
  ensurePolling();
}

/** Called by an official: say so and go into the room (a page opened again shows the link instead). */
function yourTurn(go) {
  if (s.view === 'turn') {
    ensurePolling();
    return;
  }
  resetQueue();
  s.view = 'turn';
  s.going = go;
  render('view-title');
  if (go) {
    stopPolling();
    const url = s.ticket.join_url;
    setTimeout(() => location.assign(url), GO_DELAY_MS);
  } else {
    ensurePolling();
  }
}

// Polling: one request at a time, every POLL_MS while in the queue (or shown the room's link).
const poll = { timer: null, gen: 0, active: false };

function pollWanted() {
  return !!s.stored && (s.view === 'queue' || (s.view === 'turn' && !s.going));
}

function schedule(ms) {
  clearTimeout(poll.timer);
  poll.active = true;
  const gen = ++poll.gen;
  poll.timer = setTimeout(() => pollOnce(gen), ms);
}

function ensurePolling() {
  if (!poll.active && pollWanted()) schedule(POLL_MS);
}

function stopPolling() {
  poll.gen += 1;
  poll.active = false;
  clearTimeout(poll.timer);
}

async function pollOnce(gen) {
  if (gen !== poll.gen || !s.stored) return;
  let tk = null;
  try {
    tk = await fetchTicket(s.stored);
  } catch (e) {
    if (gen !== poll.gen) return;
    if (ticketGone(e)) {
      lost(null);
      return;
    }
    if (!s.offline) {
      s.offline = true;
      if (s.view === 'queue') renderQueue();
    }
  }
  if (gen !== poll.gen) return;
  if (tk) onTicket(tk);
  if (gen !== poll.gen) return;
  if (pollWanted()) schedule(POLL_MS);
  else poll.active = false;
}

// ---------------------------------------------------------------------------------------------

$('check-back').addEventListener('click', backToForm);
$('queue-join').addEventListener('click', joinQueue);
$('camera-select').addEventListener('change', (e) => switchDevice('camera', e.target.value));
$('mic-select').addEventListener('change', (e) => switchDevice('microphone', e.target.value));
navigator.mediaDevices?.addEventListener?.('devicechange', fillDevices);
// Back in view: ask at once (a hidden tab's timers may have been slowed down).
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && poll.active && pollWanted()) schedule(0);
});
// Restored from the back/forward cache: the page's state may be old, ask again.
window.addEventListener('pageshow', (e) => {
  if (e.persisted) {
    s.going = false;
    s.view = 'loading';
    stopPolling();
    s.stored = loadTicket();
    start();
  }
});
window.addEventListener('pagehide', stopMedia);

initPage(() => render());
render();
start();
