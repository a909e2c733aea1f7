// /staff: the login form, then the officials' desk — who is waiting (polled every 3 s), the
// walk-in video desk (desk.js), the appointments of their offices, their virtual office and
// invitations. Contract: server/src/api/auth.rs and staff.rs. The session is an HttpOnly cookie:
// this script never sees it. With the municipality's single sign-on (`/api/public/login-options`)
// the login leads with «Accedi con …» (`/auth/staff/login`, back here, or with `?sso_error=`);
// when passwords are off, the password form waits behind «Accesso di emergenza per amministratori».

import { getLang, initPage, onLangChange, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { clearErrors, el, showError } from '../shared/dom.js';
import { announce, fmtDateTime, fmtTime, labelCells, wireCopy } from './common.js';
import { initDesk, rerenderDesk, startDesk, stopDesk } from './desk.js';

const POLL_MS = 3000;
const $ = (id) => document.getElementById(id);

let me = null;
let appointments = [];
/** Waiting entries by `room|participant`, as last rendered. */
let waiting = new Map();
let pollTimer = null;
let firstPoll = true;
/** What the server offers for logging in (`GET /api/public/login-options`). */
let loginOpts = { staff_sso: null, local_passwords: true };
/** The single sign-on's refusal this page was sent back with (`?sso_error=<code>`), or ''. */
let ssoError = '';
/** With the password form behind its disclosure, why the login shows (a session that ended) goes above it. */
let loginNotice = '';
const SSO_ERRORS = ['unknown_user', 'inactive', 'provider', 'expired'];

// --- views ---------------------------------------------------------------------------------------

function showLogin(message) {
  stopPolling();
  stopDesk();
  me = null;
  $('loading').hidden = true;
  $('dash-view').hidden = true;
  $('login-view').hidden = false;
  document.title = t('login.doctitle');
  const behind = Boolean(loginOpts.staff_sso) && !loginOpts.local_passwords;
  loginNotice = behind ? message || '' : '';
  showError($('login-error'), behind ? '' : message || '');
  renderLoginOptions();
  if (!$('sso-error').hidden) $('sso-error').focus();
  else $('login-title').focus();
}

/**
 * The single sign-on button and its refusal (or the login's notice), if any; with passwords off,
 * the password form behind its disclosure, closed until asked for.
 */
function renderLoginOptions() {
  const sso = loginOpts.staff_sso;
  $('sso-box').hidden = !sso;
  if (sso) $('sso-login').textContent = t('login.sso', { label: sso.label?.trim() || t('login.sso.default') });
  const above = ssoError ? t(`login.sso.error.${ssoError}`) : loginNotice;
  $('sso-error').hidden = !above;
  $('sso-error').textContent = above;
  const behind = Boolean(sso) && !loginOpts.local_passwords;
  $('sso-or').hidden = !sso || behind;
  $('local-toggle').hidden = !behind;
  $('local-only-admins').hidden = !behind;
  if (!behind) $('local-login').hidden = false;
  else if ($('local-toggle').getAttribute('aria-expanded') !== 'true') $('local-login').hidden = true;
}

function wireLoginOptions() {
  const toggle = $('local-toggle');
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    $('local-login').hidden = !open;
    if (open) $('login-email').focus();
  });
  // The refusal, once: out of the address so that a reload does not show it again.
  const url = new URL(location.href);
  const code = url.searchParams.get('sso_error');
  if (code !== null) {
    ssoError = SSO_ERRORS.includes(code) ? code : 'other';
    url.searchParams.delete('sso_error');
    history.replaceState(history.state, '', `${url.pathname}${url.search}${url.hash}`);
  }
}

async function showDashboard(data) {
  me = data;
  ssoError = '';
  loginNotice = '';
  $('loading').hidden = true;
  $('login-view').hidden = true;
  $('dash-view').hidden = false;
  document.title = t('dash.doctitle');
  renderMe();
  $('dash-title').focus();
  firstPoll = true;
  waiting = new Map();
  $('waiting-list').replaceChildren();
  await Promise.all([loadAppointments(), pollWaiting(), startDesk()]);
  startPolling();
}

function renderMe() {
  if (!me) return;
  const { user, offices } = me;
  $('me-line').textContent = t('dash.hello', { name: user.display_name, role: t('role.' + user.role) });
  $('me-offices').textContent = offices.length
    ? t('dash.offices', { list: offices.map((o) => o.name).join(', ') })
    : t('dash.nooffices');
  $('admin-link').hidden = user.role !== 'admin';
  // The desk's figures are for officials and administrators (a councillor has no office).
  $('figures-link').hidden = user.role === 'councillor';
  renderOfficeVirtualOffices();
}

// --- the virtual office of each of the user's offices ---------------------------------------------

/** Host links already opened, by office id (kept across a language switch). */
const officeLinks = new Map();

function renderOfficeVirtualOffices() {
  const offices = me?.offices ?? [];
  $('ovo').hidden = offices.length === 0;
  $('ovo-list').replaceChildren(...offices.map((o) => {
    const url = officeLinks.get(o.id);
    const input = el('input', { type: 'text', id: `ovo-link-${o.id}`, readonly: true, spellcheck: 'false', value: url ?? '' });
    const copy = el('button', { type: 'button', class: 'btn', text: t('copy') });
    wireCopy(copy, input);
    const enter = el('a', { class: 'btn btn-primary', target: '_blank', rel: 'noopener noreferrer', href: url ?? '#', text: t('vo.enter') });
    const box = el('div', { class: 'link-box', hidden: !url },
      el('label', { for: input.id, text: t('ovo.link', { name: o.name }) }),
      el('div', { class: 'inline' }, input, copy, enter));
    const open = el('button', {
      type: 'button', class: 'btn btn-primary open-office-vo', text: t('ovo.open'),
      'aria-label': t('ovo.open.label', { name: o.name }),
      onclick: async () => {
        showError($('ovo-error'), '');
        let link;
        try {
          link = await api(`/api/staff/offices/${encodeURIComponent(o.id)}/virtual-office`, { method: 'POST', body: {} });
        } catch (e) {
          if (sessionLost(e)) return;
          showError($('ovo-error'), e.message);
          return;
        }
        officeLinks.set(o.id, link.url);
        input.value = link.url;
        enter.href = link.url;
        box.hidden = false;
        input.focus();
        input.select();
        announce(t('ovo.ready', { name: o.name }));
      },
    });
    return el('li', { class: 'ovo-item', dataset: { officeId: o.id } }, el('p', { class: 'ovo-name' }, el('strong', { text: o.name })), open, box);
  }));
}

/** Any 401 after login means the session ended (expired, password changed elsewhere, deactivated). */
function sessionLost(error) {
  if (error.status === 401) {
    showLogin(t('error.session'));
    return true;
  }
  return false;
}

// --- login, logout, password -------------------------------------------------------------------

function wireLogin() {
  const form = $('login-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const email = $('login-email');
    const password = $('login-password');
    // Name what is missing (not the page's intro again) and mark only the empty fields.
    const empty = [email.value.trim() ? null : email, password.value ? null : password].filter(Boolean);
    if (empty.length) {
      const key = empty.length === 2 ? 'login.missing.both' : empty[0] === email ? 'login.missing.email' : 'login.missing.password';
      showError($('login-error'), t(key), empty);
      empty[0].focus();
      return;
    }
    $('login-submit').disabled = true;
    let who;
    try {
      who = await api('/api/auth/login', { method: 'POST', body: { email: email.value.trim(), password: password.value } });
    } catch (e) {
      $('login-submit').disabled = false;
      showError($('login-error'), e.message, [email, password]);
      password.value = '';
      password.focus();
      return;
    }
    $('login-submit').disabled = false;
    password.value = '';
    await showDashboard(who);
  });
}

function wireAccount() {
  $('logout').addEventListener('click', async () => {
    // Signed out either way: a failed call leaves at most a session that expires by itself.
    await api('/api/auth/logout', { method: 'POST', body: {} }).catch(() => {});
    // Signed in through the municipality's provider: out of it too (it sends the browser back here).
    if (loginOpts.staff_sso) {
      location.assign('/auth/staff/logout');
      return;
    }
    showLogin('');
  });
  const form = $('pw-form');
  const toggle = $('pw-toggle');
  const setOpen = (open) => {
    form.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    if (open) $('pw-current').focus();
    else { clearErrors(form); form.reset(); toggle.focus(); }
  };
  toggle.addEventListener('click', () => setOpen(form.hidden));
  $('pw-cancel').addEventListener('click', () => setOpen(false));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const current = $('pw-current');
    const next = $('pw-new');
    if (next.value.length < 10) {
      showError($('pw-error'), t('setup.short'), [next]);
      next.focus();
      return;
    }
    $('pw-submit').disabled = true;
    try {
      await api('/api/auth/password', { method: 'POST', body: { current_password: current.value, new_password: next.value } });
    } catch (e) {
      $('pw-submit').disabled = false;
      if (sessionLost(e)) return;
      const field = e.code === 'wrong_password' ? current : next;
      showError($('pw-error'), e.message, [field]);
      field.focus();
      return;
    }
    $('pw-submit').disabled = false;
    setOpen(false);
    announce(t('pw.done'));
  });
}

// --- who is waiting ------------------------------------------------------------------------------

function startPolling() {
  stopPolling();
  pollTimer = setInterval(pollWaiting, POLL_MS);
}

function stopPolling() {
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
}

const waitKey = (w) => `${w.room}|${w.participant_id}`;

/** Which room, in words: the appointment's time, service and office, or which virtual office. */
function whereLabel(w) {
  if (w.office_name) return t('wait.where.office', { name: w.office_name });
  if (!w.appointment_id) return t('wait.where.vo');
  const listed = appointments.find((x) => x.id === w.appointment_id);
  const a = w.appointment ?? (listed && { start: listed.start, end: listed.end, service_name: listed.service_name, office_name: listed.office_name });
  if (!a) return t('wait.where.appt.unknown');
  return t('wait.where.appt', { what: `${fmtDateTime(a.start)}–${fmtTime(a.end)} · ${a.service_name} · ${a.office_name}` });
}

function waitingItem(w) {
  const name = w.name;
  // Nobody is let into an empty room: unless this official is already in it, the button also
  // opens the room for them (docs/staff.md).
  const enter = !w.host_here;
  const admit = el('button', {
    type: 'button', class: 'btn btn-primary btn-small admit', text: t(enter ? 'wait.admit.enter' : 'wait.admit'),
    'aria-label': t(enter ? 'wait.admit.enter.label' : 'wait.admit.label', { name }),
    onclick: (e) => (enter ? admitAndEnter(w, e.currentTarget) : decide(w, true)),
  });
  const decline = el('button', {
    type: 'button', class: 'btn btn-small decline', text: t('wait.decline'),
    'aria-label': t('wait.decline.label', { name }), onclick: () => decide(w, false),
  });
  return el('li', { class: 'waiting-item', dataset: { waitingId: waitKey(w) } },
    el('div', {},
      el('p', { class: 'waiting-name', text: t('wait.item', { name, time: fmtTime(w.since) }) }),
      el('p', { class: 'help', text: whereLabel(w) })),
    el('div', { class: 'inline' }, admit, decline));
}

/** Updates the list in place (only added/removed items change, so keyboard focus stays put). */
function renderWaiting(list) {
  const ul = $('waiting-list');
  const next = new Map(list.map((w) => [waitKey(w), w]));
  const arrived = [];
  for (const key of waiting.keys()) {
    if (!next.has(key)) {
      const li = ul.querySelector(`[data-waiting-id="${CSS.escape(key)}"]`);
      if (li?.contains(document.activeElement)) $('waiting-title').focus();
      li?.remove();
    }
  }
  for (const [key, w] of next) {
    if (!waiting.has(key)) {
      ul.append(waitingItem(w));
      arrived.push(w);
    }
  }
  waiting = next;
  $('waiting-empty').hidden = waiting.size > 0;
  if (!firstPoll) for (const w of arrived) announce(t('wait.new', { name: w.name }));
  firstPoll = false;
}

function rerenderWaiting() {
  const list = [...waiting.values()];
  waiting = new Map();
  $('waiting-list').replaceChildren();
  const first = firstPoll;
  firstPoll = true;
  renderWaiting(list);
  firstPoll = first;
}

async function pollWaiting() {
  if (!me) return;
  let list;
  try {
    list = await api('/api/staff/waiting');
  } catch (e) {
    if (!me || sessionLost(e)) return;
    showError($('waiting-error'), e.status === 403 ? e.message : t('wait.error'));
    return;
  }
  if (!me) return;
  showError($('waiting-error'), '');
  renderWaiting(list);
}

async function decide(w, admit) {
  if (!admit && !confirm(t('wait.decline.confirm', { name: w.name }))) return;
  const path = `/api/staff/rooms/${encodeURIComponent(w.room)}/${admit ? 'admit' : 'decline'}`;
  try {
    await api(path, { method: 'POST', body: { participant_id: w.participant_id } });
    announce(t(admit ? 'wait.admitted' : 'wait.declined', { name: w.name }));
  } catch (e) {
    if (sessionLost(e)) return;
    // Someone else already let them in or out: the list below shows it.
    if (e.code !== 'not_waiting') {
      showError($('waiting-error'), e.message);
      return;
    }
  }
  await pollWaiting();
}

/** Where this official gets a host link for the waiting person's room. */
function hostLinkPath(w) {
  if (w.appointment_id) return `/api/staff/appointments/${encodeURIComponent(w.appointment_id)}/join`;
  if (w.room.startsWith('office-')) return `/api/staff/offices/${encodeURIComponent(w.room.slice('office-'.length))}/virtual-office`;
  return '/api/staff/virtual-office';
}

/**
 * «Fai entrare e apri la stanza»: opens the room for the official in a new tab (opened while the
 * click still counts as a user gesture) and admits the person in the same step. If the browser
 * blocks the tab, nobody is admitted: a link to the room appears, where the official admits them.
 */
async function admitAndEnter(w, button) {
  const tab = window.open('', '_blank');
  button.disabled = true;
  let link;
  try {
    link = await api(hostLinkPath(w), { method: 'POST', body: {} });
  } catch (e) {
    button.disabled = false;
    tab?.close();
    if (sessionLost(e)) return;
    showError($('waiting-error'), e.message);
    return;
  }
  if (!tab) {
    button.disabled = false;
    const a = el('a', { class: 'btn btn-small open-room', href: link.url, target: '_blank', rel: 'noopener noreferrer', text: t('wait.openroom', { name: w.name }) });
    button.after(a);
    a.focus();
    announce(t('wait.admit.popup', { name: w.name }));
    return;
  }
  tab.opener = null;
  tab.location.href = link.url;
  try {
    await api(`/api/staff/rooms/${encodeURIComponent(w.room)}/admit`, { method: 'POST', body: { participant_id: w.participant_id } });
    button.disabled = false;
    announce(t('wait.admitted.entered', { name: w.name }));
  } catch (e) {
    button.disabled = false;
    if (sessionLost(e)) return;
    if (e.code !== 'not_waiting') showError($('waiting-error'), e.message);
  }
  await pollWaiting();
}

// --- appointments --------------------------------------------------------------------------------

async function loadAppointments() {
  let list;
  try {
    list = await api('/api/staff/appointments');
  } catch (e) {
    if (sessionLost(e)) return;
    showError($('appt-error'), e.message);
    return;
  }
  showError($('appt-error'), '');
  appointments = list;
  renderAppointments();
}

const citizen = (a) => `${a.first_name} ${a.last_name}`.trim();

function renderAppointments() {
  const tbody = $('appointments').querySelector('tbody');
  tbody.replaceChildren(...appointments.map(appointmentRow));
  labelCells($('appointments'));
  $('appt-empty').hidden = appointments.length > 0;
  $('appointments').hidden = appointments.length === 0;
}

function appointmentRow(a) {
  const name = citizen(a);
  const actions = el('div', { class: 'row-actions' });
  if (a.status === 'confirmed') {
    if (a.mode === 'video') {
      actions.append(el('button', {
        type: 'button', class: 'btn btn-primary btn-small join-room', text: t('appt.join'),
        'aria-label': t('appt.join.label', { name }), onclick: (e) => joinRoom(a, e.currentTarget),
      }));
    }
    for (const [status, key] of [['completed', 'appt.completed'], ['no_show', 'appt.no_show'], ['cancelled', 'appt.cancel']]) {
      actions.append(el('button', {
        type: 'button', class: `btn btn-small status-${status}`, text: t(key),
        'aria-label': t('appt.action.label', { action: t(key), name }), onclick: () => setStatus(a, status),
      }));
    }
  }
  actions.append(el('button', {
    type: 'button', class: 'btn btn-small details', text: t('appt.details'),
    'aria-label': t('appt.action.label', { action: t('appt.details'), name }),
    'aria-controls': 'appt-detail', onclick: (e) => showDetail(a, e.currentTarget),
  }));
  const waitingHere = a.waiting?.length ? el('span', { class: 'badge-wait', text: t('appt.waiting', { n: a.waiting.length }) }) : null;
  return el('tr', { dataset: { appointmentId: a.id } },
    el('td', {}, el('time', { datetime: a.start, text: fmtDateTime(a.start) })),
    el('td', {}, name, waitingHere ? ' ' : null, waitingHere),
    el('td', { text: a.service_name }),
    el('td', { text: a.office_name }),
    el('td', { text: t('mode.' + a.mode) }),
    el('td', {}, el('span', { class: `status status--${a.status}`, text: t('status.' + a.status) })),
    el('td', {}, actions));
}

/**
 * Opens the room in a new tab. The tab is opened before the request (while the click still counts as
 * a user gesture, so pop-up blockers let it through) and pointed at the link once it arrives; if
 * the browser refused it, a plain link appears next to the button.
 */
async function joinRoom(a, button) {
  const tab = window.open('', '_blank');
  button.disabled = true;
  let link;
  try {
    link = await api(`/api/staff/appointments/${encodeURIComponent(a.id)}/join`, { method: 'POST', body: {} });
  } catch (e) {
    button.disabled = false;
    tab?.close();
    if (sessionLost(e)) return;
    showError($('appt-error'), e.message);
    return;
  }
  button.disabled = false;
  if (tab) {
    tab.opener = null;
    tab.location.href = link.url;
    announce(t('appt.opened'));
  } else {
    const open = el('a', { class: 'btn btn-small', href: link.url, target: '_blank', rel: 'noopener noreferrer', text: t('appt.openlink', { name: citizen(a) }) });
    button.after(open);
    open.focus();
    announce(t('appt.popup'));
  }
}

async function setStatus(a, status) {
  if (!confirm(t('appt.confirm.' + status, { name: citizen(a) }))) return;
  let changed;
  try {
    changed = await api(`/api/staff/appointments/${encodeURIComponent(a.id)}/status`, { method: 'POST', body: { status } });
  } catch (e) {
    if (sessionLost(e)) return;
    showError($('appt-error'), e.message);
    return;
  }
  announce(t('appt.status.changed', { name: citizen(a), status: t('status.' + changed.status) }));
  await loadAppointments();
  // The row's buttons are gone: keep the keyboard in the row.
  $('appointments').querySelector(`[data-appointment-id="${CSS.escape(a.id)}"] .details`)?.focus();
}

let detailReturn = null;

async function showDetail(a, button) {
  let detail;
  try {
    detail = await api(`/api/staff/appointments/${encodeURIComponent(a.id)}`);
  } catch (e) {
    if (sessionLost(e)) return;
    showError($('appt-error'), e.message);
    return;
  }
  detailReturn = button;
  const { appointment: x, audit } = detail;
  const row = (key, value) => [el('dt', { text: t(key) }), el('dd', { text: value || '—' })];
  // Who and what in words, times in Rome (the stored actor, action and detail hold ids and seconds).
  const who = (e) => (e.actor_kind === 'system' ? t('detail.audit.system')
    : e.actor_kind === 'citizen' ? t('detail.audit.citizen', { name: e.actor_name }) : e.actor_name);
  const table = el('table', { class: 'data-table audit-table' },
    el('caption', { text: t('detail.audit') }),
    el('thead', {}, el('tr', {}, ...['at', 'actor', 'action'].map((k) => el('th', { scope: 'col', text: t('detail.audit.' + k) })))),
    el('tbody', {}, ...audit.map((e) => el('tr', {},
      el('td', {}, el('time', { datetime: e.at, text: fmtDateTime(e.at) })),
      el('td', { text: who(e) }), el('td', { text: getLang() === 'en' ? e.summary_en : e.summary_it })))));
  labelCells(table);
  $('detail-body').replaceChildren(
    el('dl', { class: 'detail-list' },
      row('appt.col.citizen', citizen(x)),
      row('detail.email', x.email),
      row('appt.col.time', fmtDateTime(x.start)),
      row('appt.col.service', x.service_name),
      row('appt.col.office', x.office_name),
      row('detail.official', x.official_name),
      row('appt.col.status', t('status.' + x.status)),
      row('detail.code', x.code),
      row('detail.details', x.details),
      // Attendance (docs/walkin.md): arrived in the waiting room, admitted, the meeting's end.
      x.citizen_arrived_at ? row('detail.arrived', fmtDateTime(x.citizen_arrived_at)) : null,
      row('detail.joined', x.citizen_joined_at ? fmtDateTime(x.citizen_joined_at) : ''),
      x.meeting_ended_at ? row('detail.ended', fmtDateTime(x.meeting_ended_at)) : null),
    x.status === 'no_show' ? noShowFix(a, x) : null,
    el('div', { class: 'table-wrap' }, table));
  $('appt-detail').hidden = false;
  $('detail-title').focus();
}

/**
 * «Correggi: il cittadino è venuto»: turns a `no_show` (often the automatic one) into `completed`,
 * with an optional note for the history; then the detail and the list are read again.
 */
function noShowFix(a, x) {
  const note = el('textarea', { id: 'noshow-note', rows: '2', maxlength: '300', 'aria-describedby': 'noshow-help' });
  const error = el('p', { id: 'noshow-error', class: 'field-error', role: 'alert', hidden: true });
  const submit = el('button', { id: 'noshow-fix', type: 'submit', class: 'btn btn-primary btn-small status-fix', text: t('detail.fix') });
  const form = el('form', { id: 'noshow-form', class: 'sub-form', novalidate: true, 'aria-labelledby': 'noshow-title' },
    el('h4', { id: 'noshow-title', text: t('detail.fix.title') }),
    el('p', { id: 'noshow-help', class: 'help', text: t('detail.fix.help') }),
    el('div', { class: 'field' }, el('label', { for: 'noshow-note', text: t('detail.fix.note') }), note),
    error,
    submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = { status: 'completed' };
    if (note.value.trim()) body.note = note.value.trim();
    submit.disabled = true;
    let changed;
    try {
      changed = await api(`/api/staff/appointments/${encodeURIComponent(x.id)}/status`, { method: 'POST', body });
    } catch (e) {
      submit.disabled = false;
      if (sessionLost(e)) return;
      showError(error, e.message, [note]);
      submit.focus();
      return;
    }
    announce(t('appt.status.changed', { name: citizen(x), status: t('status.' + (changed?.status ?? 'completed')) }));
    await loadAppointments();
    // The list was drawn again: come back to this appointment's «Dettagli» when the detail closes.
    const button = $('appointments').querySelector(`[data-appointment-id="${CSS.escape(a.id)}"] .details`);
    await showDetail(appointments.find((y) => y.id === a.id) ?? a, button ?? detailReturn);
  });
  return form;
}

// --- virtual office and invitations ------------------------------------------------------------

function wireVirtualOffice() {
  wireCopy($('vo-copy'), $('vo-link'));
  wireCopy($('invite-copy'), $('invite-link'));
  $('open-vo').addEventListener('click', async () => {
    showError($('vo-error'), '');
    let link;
    try {
      link = await api('/api/staff/virtual-office', { method: 'POST', body: {} });
    } catch (e) {
      if (sessionLost(e)) return;
      showError($('vo-error'), e.message);
      return;
    }
    $('vo-link').value = link.url;
    $('vo-enter').href = link.url;
    $('vo-result').hidden = false;
    $('vo-link').focus();
    $('vo-link').select();
    announce(t('vo.ready'));
  });
  const form = $('invite-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const name = $('invite-name');
    const hours = $('invite-hours');
    const h = Number(hours.value || 24);
    if (!name.value.trim()) {
      showError($('invite-error'), t('inv.name.help'), [name]);
      name.focus();
      return;
    }
    if (!Number.isInteger(h) || h < 1 || h > 72) {
      showError($('invite-error'), t('inv.hours.help'), [hours]);
      hours.focus();
      return;
    }
    $('invite-submit').disabled = true;
    let invitation;
    try {
      invitation = await api('/api/staff/invitations', { method: 'POST', body: { name: name.value.trim(), valid_hours: h } });
    } catch (e) {
      $('invite-submit').disabled = false;
      if (sessionLost(e)) return;
      const field = e.code === 'invalid_validity' ? hours : name;
      showError($('invite-error'), e.message, [field]);
      field.focus();
      return;
    }
    $('invite-submit').disabled = false;
    $('invite-link').value = invitation.url;
    $('invite-result').hidden = false;
    $('invite-link').focus();
    $('invite-link').select();
    announce(t('inv.ready'));
  });
}

// --- start ---------------------------------------------------------------------------------------

async function init() {
  initPage();
  wireLoginOptions();
  wireLogin();
  wireAccount();
  wireVirtualOffice();
  initDesk({ me: () => me, sessionLost });
  $('appt-refresh').addEventListener('click', loadAppointments);
  $('detail-close').addEventListener('click', () => {
    $('appt-detail').hidden = true;
    detailReturn?.focus();
  });
  onLangChange(() => {
    document.title = t(me ? 'dash.doctitle' : 'login.doctitle');
    if (!me) renderLoginOptions();
    renderMe();
    if (me) {
      renderAppointments();
      rerenderWaiting();
      rerenderDesk();
      $('appt-detail').hidden = true;
    }
  });
  const options = api('/api/public/login-options').catch(() => null);
  let who;
  try {
    who = await api('/api/auth/me');
  } catch (e) {
    loginOpts = { ...loginOpts, ...(await options) };
    showLogin(e.status === 401 ? '' : e.message);
    return;
  }
  loginOpts = { ...loginOpts, ...(await options) };
  await showDashboard(who);
}

init();
