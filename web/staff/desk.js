// The walk-in video desk on /staff (docs/walkin.md), the officials' side: each office's queue with
// «Prossimo» and its callbacks, the citizens this official is serving (transfer, invite a colleague,
// finish, absent), the transfers and calls addressed to them, and the colleagues' presence.
// Contract: server/src/api/desk.rs. GET /api/staff/desk is polled every 4 s; a list is re-rendered
// only where its content changed, so the keyboard focus stays where it is, and a control rebuilt
// under the focus hands it to the same control of the new row.

import { getLang, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { clearErrors, el, showError } from '../shared/dom.js';
import { announce, fmtDateTime, fmtTime } from './common.js';

const POLL_MS = 4000;
const NOTE_MAX = 300;
const $ = (id) => document.getElementById(id);

/** What staff.js lends: the logged-in user and its handler of a 401. */
let host = { me: () => null, sessionLost: () => false };
let timer = null;
/** The poll on its way (a promise), and whether another was asked for meanwhile. */
let inFlight = null;
let again = false;
let running = false;
/** The last answer of GET /api/staff/desk. */
let desk = null;
/** Ids already seen (queue entries, transfers, calls), for announcing newcomers; null before the first poll. */
let seen = null;
/** Each rendered row's key and content signature. */
const rows = new WeakMap();
/** The walk-in the open hand-off or invitation form is about. */
let handoffFor = null;
let inviteFor = null;

// --- start and stop -------------------------------------------------------------------------------

/** Wires the forms once; `me()` gives the logged-in user, `sessionLost(e)` handles a 401. */
export function initDesk({ me, sessionLost }) {
  host = { me, sessionLost };
  wireHandoff();
  wireInvite();
}

/** Polls the desk (after a login); the section shows once the server has answered. */
export async function startDesk() {
  stopDesk();
  running = true;
  desk = null;
  seen = null;
  for (const id of ['desk-offices', 'desk-mine', 'desk-transfers', 'desk-calls', 'desk-colleagues']) $(id).replaceChildren();
  for (const id of ['desk-error', 'desk-poll-error']) showError($(id), '');
  closeForm('handoff', false);
  closeForm('callin', false);
  $('desk-popup').hidden = true;
  await pollDesk();
  if (running) timer = setInterval(pollDesk, POLL_MS);
}

/** Stops polling (logout, lost session). */
export function stopDesk() {
  running = false;
  if (timer) clearInterval(timer);
  timer = null;
}

/** Renders everything again in the current language, keeping the focus on the same control. */
export function rerenderDesk() {
  if (!desk) return;
  render(desk, false);
  if (!$('handoff-form').hidden) fillColleagueSelect($('handoff-to'));
  if (!$('callin-form').hidden) fillColleagueSelect($('callin-to'));
  relabelForms();
}

/**
 * Reads the desk (the regular poll, and right after an action). One request at a time: asked
 * while one is on its way, it waits for it and asks once more, so an action's effect is shown.
 */
function pollDesk() {
  if (!running) return Promise.resolve();
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = (async () => {
    try {
      do {
        again = false;
        await pollOnce();
      } while (again && running);
    } finally {
      inFlight = null;
    }
  })();
  return inFlight;
}

async function pollOnce() {
  let answer;
  try {
    answer = await api('/api/staff/desk');
  } catch (e) {
    if (!running || host.sessionLost(e)) return;
    // Not for this role (a councillor), or a server without the desk: the section goes away.
    if (e.status === 403 || e.status === 404) {
      stopDesk();
      $('desk').hidden = true;
      return;
    }
    $('desk').hidden = false;
    showError($('desk-poll-error'), t('desk.poll.error'));
    return;
  }
  if (!running) return;
  $('desk').hidden = false;
  showError($('desk-poll-error'), '');
  const first = seen === null;
  desk = normalise(answer);
  render(desk, !first);
}

function normalise(d) {
  return {
    offices: d?.offices ?? [],
    mine: d?.mine ?? [],
    transfers: d?.transfers ?? [],
    calls: d?.calls ?? [],
    colleagues: d?.colleagues ?? [],
  };
}

// --- rendering ------------------------------------------------------------------------------------

/**
 * Makes `container`'s children the rows of `items`, in order. A row whose key and signature are
 * unchanged keeps its node; a changed one is rebuilt. If the focus was inside a row, it stays on
 * the same control (found by its `desk-…` class), or goes to `fallback` when the row is gone.
 * `update(node, item)` refreshes what changes on its own (minutes waited, positions) in place.
 */
function reconcile(container, items, { key, sig, build, update, fallback }) {
  const focused = document.activeElement;
  const focusRow = focused && focused !== document.body && container.contains(focused)
    ? [...container.children].find((n) => n.contains(focused)) : null;
  const focusKey = focusRow ? rows.get(focusRow)?.key : null;
  const old = new Map([...container.children].map((n) => [rows.get(n)?.key, n]));
  const lang = getLang();
  const nodes = items.map((item) => {
    const k = String(key(item));
    const s = `${lang}|${sig(item)}`;
    let node = old.get(k);
    if (!node || rows.get(node).sig !== s) {
      node = build(item);
      rows.set(node, { key: k, sig: s });
    }
    update?.(node, item);
    return node;
  });
  const keep = new Set(nodes);
  for (const n of [...container.children]) if (!keep.has(n)) n.remove();
  nodes.forEach((n, i) => {
    if (container.children[i] !== n) container.insertBefore(n, container.children[i] ?? null);
  });
  if (focusRow && document.activeElement !== focused) {
    if (focused.isConnected) {
      focused.focus();
    } else {
      const row = nodes.find((n) => rows.get(n).key === focusKey);
      const cls = [...focused.classList].find((c) => c.startsWith('desk-'));
      const same = row && cls ? row.querySelector(`.${CSS.escape(cls)}`) : null;
      (same ?? fallback?.())?.focus();
    }
  }
}

/** Minutes since `iso`, in words. */
function since(iso) {
  const minutes = Math.floor((Date.now() - new Date(iso).getTime()) / 60000);
  return minutes < 1 ? t('desk.since.now') : t('desk.since.min', { n: minutes });
}

/** Service and topic, as one line ('' when neither). */
function what(x) {
  return [x.service_name, x.topic ? `«${x.topic}»` : ''].filter(Boolean).join(' — ');
}

function render(d, announceNew) {
  const news = [];
  const me = host.me()?.user?.id;
  const shown = d.offices.filter((o) => o.has_desk || o.waiting?.length || o.callbacks?.length || o.serving?.length);
  reconcile($('desk-offices'), shown, {
    key: (o) => o.office_id,
    sig: (o) => o.office_name,
    build: officeSection,
    update: updateOffice,
    fallback: () => $('desk-title'),
  });
  $('desk-none').hidden = shown.length > 0;

  reconcile($('desk-mine'), d.mine, {
    key: (w) => w.id,
    sig: (w) => JSON.stringify([w.name, w.topic, w.state, w.office_name, w.called_at, w.transfer_note]),
    build: mineRow,
    fallback: () => $('desk-mine-title'),
  });
  $('desk-mine-empty').hidden = d.mine.length > 0;
  // The forms are about a walk-in that is no longer this official's: close them.
  if (handoffFor && !d.mine.some((w) => w.id === handoffFor.id)) closeForm('handoff', true);
  if (inviteFor && !d.mine.some((w) => w.id === inviteFor.id)) closeForm('callin', true);

  reconcile($('desk-transfers'), d.transfers, {
    key: (x) => x.id,
    sig: (x) => JSON.stringify([x.name, x.topic, x.from_name, x.office_name, x.note, x.since]),
    build: transferRow,
    fallback: () => $('desk-transfers-title'),
  });
  $('desk-transfers-empty').hidden = d.transfers.length > 0;

  reconcile($('desk-calls'), d.calls, {
    key: (c) => c.id,
    sig: (c) => JSON.stringify([c.from_name, c.room, c.note, c.at]),
    build: callRow,
    fallback: () => $('desk-calls-title'),
  });
  $('desk-calls-empty').hidden = d.calls.length > 0;

  const colleagues = d.colleagues.filter((c) => c.user_id !== me);
  reconcile($('desk-colleagues'), colleagues, {
    key: (c) => c.user_id,
    sig: (c) => JSON.stringify([c.name, c.offices, c.location, c.in_call, c.available]),
    build: colleagueRow,
    fallback: () => $('desk-colleagues-title'),
  });
  $('desk-colleagues-empty').hidden = colleagues.length > 0;
  // The open forms' colleague lists follow presence changes (not while one is being chosen).
  for (const id of ['handoff-to', 'callin-to']) {
    const select = $(id);
    if (!select.closest('form').hidden && document.activeElement !== select) fillColleagueSelect(select);
  }

  // Newcomers, said once and politely.
  const now = {
    waiting: new Set(d.offices.flatMap((o) => (o.waiting ?? []).map((w) => w.id))),
    transfers: new Set(d.transfers.map((x) => x.id)),
    calls: new Set(d.calls.map((c) => c.id)),
  };
  if (announceNew && seen) {
    for (const o of d.offices) {
      for (const w of o.waiting ?? []) {
        if (!seen.waiting.has(w.id)) news.push(t('desk.new.waiting', { name: w.name, office: o.office_name }));
      }
    }
    for (const x of d.transfers) if (!seen.transfers.has(x.id)) news.push(t('desk.new.transfer', { from: x.from_name, name: x.name }));
    for (const c of d.calls) if (!seen.calls.has(c.id)) news.push(t('desk.new.call', { from: c.from_name }));
  }
  seen = now;
  if (news.length) announce(news.join(' '));
}

// An office: its state, queue, callbacks and who is being served there.
function officeSection(o) {
  const base = `desk-o-${o.office_id}`;
  const next = el('button', {
    type: 'button', class: 'btn btn-primary desk-next', text: t('desk.next'),
    dataset: { office: o.office_id }, 'aria-label': t('desk.next.label', { office: o.office_name }),
    onclick: (e) => callNext(o, e.currentTarget),
  });
  return el('section', { class: 'desk-office', dataset: { office: o.office_id }, 'aria-labelledby': `${base}-title` },
    el('div', { class: 'section-head' },
      el('h3', { id: `${base}-title`, tabindex: '-1', text: o.office_name }),
      next),
    el('p', { class: 'desk-office-state' }),
    el('h4', { id: `${base}-queue-title`, tabindex: '-1', text: t('desk.queue') }),
    el('ol', { class: 'desk-list desk-queue', 'aria-labelledby': `${base}-queue-title` }),
    el('p', { class: 'help desk-queue-empty', text: t('desk.queue.empty') }),
    el('div', { class: 'desk-callbacks-wrap' },
      el('h4', { id: `${base}-cb-title`, tabindex: '-1', text: t('desk.callbacks') }),
      el('p', { class: 'help', text: t('desk.callbacks.help') }),
      el('ul', { class: 'desk-list desk-callbacks', 'aria-labelledby': `${base}-cb-title` })),
    el('div', { class: 'desk-serving-wrap' },
      el('h4', { id: `${base}-sv-title`, tabindex: '-1', text: t('desk.serving') }),
      el('ul', { class: 'desk-list desk-serving', 'aria-labelledby': `${base}-sv-title` })));
}

function updateOffice(node, o) {
  const base = `desk-o-${o.office_id}`;
  const waiting = [...(o.waiting ?? [])].sort((a, b) => a.position - b.position);
  const state = node.querySelector('.desk-office-state');
  const badge = o.open
    ? el('span', { class: 'status status--completed', text: t('desk.open') })
    : el('span', { class: 'status status--no_show', text: t('desk.closed') });
  const parts = [];
  if (!o.open) parts.push(o.opens_at ? t('desk.opens', { when: fmtDateTime(o.opens_at) }) : t('desk.opens.none'));
  parts.push(t('desk.queue.length', { n: waiting.length }));
  if (waiting.length) parts.push(t('desk.estimate', { n: o.estimated_wait_minutes }));
  const text = parts.join(' · ');
  const stateSig = `${o.open}|${text}|${getLang()}`;
  if (state.dataset.sig !== stateSig) {
    state.replaceChildren(badge, ' ', text);
    state.dataset.sig = stateSig;
  }
  const queueTitle = () => node.querySelector(`#${CSS.escape(base)}-queue-title`);
  reconcile(node.querySelector('.desk-queue'), waiting, {
    key: (w) => w.id,
    sig: (w) => JSON.stringify([w.name, w.topic, w.service_name, w.queued_at, w.email_given]),
    build: waitingRow,
    update: (li, w) => setText(li.querySelector('.desk-meta'), waitingMeta(w)),
    fallback: queueTitle,
  });
  node.querySelector('.desk-queue-empty').hidden = waiting.length > 0;
  const callbacks = o.callbacks ?? [];
  reconcile(node.querySelector('.desk-callbacks'), callbacks, {
    key: (w) => w.id,
    sig: (w) => JSON.stringify([w.name, w.topic, w.service_name, w.queued_at, w.email_given]),
    build: (w) => callbackRow(w, o),
    update: (li, w) => setText(li.querySelector('.desk-meta'), t('desk.callback.meta', { time: fmtTime(w.queued_at), since: since(w.queued_at) })),
    fallback: queueTitle,
  });
  node.querySelector('.desk-callbacks-wrap').hidden = callbacks.length === 0;
  const serving = o.serving ?? [];
  reconcile(node.querySelector('.desk-serving'), serving, {
    key: (s) => s.id,
    sig: (s) => JSON.stringify([s.name, s.topic, s.state, s.official_name, s.called_at]),
    build: servingRow,
  });
  node.querySelector('.desk-serving-wrap').hidden = serving.length === 0;
}

function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

function waitingMeta(w) {
  const parts = [t('desk.position', { n: w.position }), t('desk.queued', { time: fmtTime(w.queued_at), since: since(w.queued_at) })];
  if (w.email_given) parts.push(t('desk.email.given'));
  return parts.join(' · ');
}

function whoLine(x) {
  const about = what(x);
  return el('p', { class: 'desk-who' }, el('strong', { text: x.name }), about ? ` — ${about}` : null);
}

function waitingRow(w) {
  return el('li', { class: 'desk-row desk-waiting-row', dataset: { walkin: w.id } },
    el('div', {}, whoLine(w), el('p', { class: 'help desk-meta' })));
}

function callbackRow(w, o) {
  return el('li', { class: 'desk-row desk-callback-row', dataset: { walkin: w.id } },
    el('div', {}, whoLine(w), el('p', { class: 'help desk-meta' })),
    el('div', { class: 'row-actions' }, el('button', {
      type: 'button', class: 'btn btn-primary btn-small desk-callback', text: t('desk.callback'),
      dataset: { walkin: w.id, office: o.office_id }, 'aria-label': t('desk.callback.label', { name: w.name }),
      onclick: (e) => run(e.currentTarget, {
        path: `/api/staff/walkins/${encodeURIComponent(w.id)}/callback`, open: true, name: w.name,
        done: () => t('desk.callback.done', { name: w.name }),
      }),
    })));
}

function servingRow(s) {
  const key = s.state === 'transferring' ? 'desk.serving.transferring' : 'desk.serving.by';
  return el('li', { class: 'desk-row desk-serving-row', dataset: { walkin: s.id } },
    el('div', {}, whoLine(s),
      el('p', { class: 'help', text: t(key, { official: s.official_name, time: s.called_at ? fmtTime(s.called_at) : '—' }) })));
}

// The citizens this official is serving.
function mineRow(w) {
  const transferring = w.state === 'transferring';
  const button = (cls, key, labelKey, onclick, extra = {}) => el('button', {
    type: 'button', class: `btn btn-small ${cls}`, text: t(key), dataset: { walkin: w.id },
    'aria-label': t(labelKey, { name: w.name }), onclick, ...extra,
  });
  const actions = el('div', { class: 'row-actions' },
    transferring ? null : button('desk-rejoin', 'desk.rejoin', 'desk.rejoin.label', (e) => run(e.currentTarget, {
      path: `/api/staff/walkins/${encodeURIComponent(w.id)}/join`, open: true, name: w.name,
    })),
    button('desk-handoff', 'desk.handoff', 'desk.handoff.label', (e) => openHandoff(w, e.currentTarget),
      { 'aria-controls': 'handoff-form', 'aria-expanded': String(handoffFor?.id === w.id) }),
    button('desk-invite', 'desk.invite', 'desk.invite.label', (e) => openInvite(w, e.currentTarget),
      { 'aria-controls': 'callin-form', 'aria-expanded': String(inviteFor?.id === w.id) }),
    button('desk-finish', 'desk.finish', 'desk.finish.label', (e) => finish(w, e.currentTarget)),
    transferring ? null : button('desk-absent btn-danger', 'desk.absent', 'desk.absent.label', (e) => absent(w, e.currentTarget)));
  const meta = [w.office_name, t('desk.mine.since', { time: w.called_at ? fmtTime(w.called_at) : '—' })];
  if (transferring) meta.push(t('desk.mine.transferring'));
  return el('li', { class: 'desk-row desk-mine-row', dataset: { walkin: w.id, state: w.state } },
    el('div', {}, whoLine(w),
      el('p', { class: 'help', text: meta.filter(Boolean).join(' · ') }),
      transferring && w.transfer_note ? el('p', { class: 'help', text: t('desk.note', { note: w.transfer_note }) }) : null),
    actions);
}

function transferRow(x) {
  return el('li', { class: 'desk-row desk-transfer-row', dataset: { walkin: x.id } },
    el('div', {}, whoLine(x),
      el('p', { class: 'help', text: t('desk.transfer.from', { from: x.from_name, office: x.office_name, time: fmtTime(x.since) }) }),
      x.note ? el('p', { class: 'desk-note', text: t('desk.note', { note: x.note }) }) : null),
    el('div', { class: 'row-actions' }, el('button', {
      type: 'button', class: 'btn btn-primary btn-small desk-accept', text: t('desk.accept'), dataset: { walkin: x.id },
      'aria-label': t('desk.accept.label', { name: x.name, from: x.from_name }),
      onclick: (e) => run(e.currentTarget, {
        path: `/api/staff/walkins/${encodeURIComponent(x.id)}/accept`, open: true, name: x.name,
        done: () => t('desk.accept.done', { name: x.name }),
      }),
    })));
}

function callRow(c) {
  const where = c.room?.startsWith('walkin-') ? t('desk.call.walkin') : t('desk.call.staff');
  return el('li', { class: 'desk-row desk-call-row', dataset: { call: c.id } },
    el('div', {},
      el('p', { class: 'desk-who' }, el('strong', { text: t('desk.call.from', { from: c.from_name }) })),
      el('p', { class: 'help', text: `${where} · ${fmtTime(c.at)}` }),
      c.note ? el('p', { class: 'desk-note', text: t('desk.note', { note: c.note }) }) : null),
    el('div', { class: 'row-actions' },
      el('button', {
        type: 'button', class: 'btn btn-primary btn-small desk-answer', text: t('desk.answer'), dataset: { call: c.id },
        'aria-label': t('desk.answer.label', { from: c.from_name }),
        onclick: (e) => run(e.currentTarget, {
          path: `/api/staff/calls/${encodeURIComponent(c.id)}/answer`, open: true, name: c.from_name,
          done: () => t('desk.answer.done', { from: c.from_name }),
        }),
      }),
      el('button', {
        type: 'button', class: 'btn btn-small desk-decline', text: t('desk.decline'), dataset: { call: c.id },
        'aria-label': t('desk.decline.label', { from: c.from_name }),
        onclick: (e) => run(e.currentTarget, {
          path: `/api/staff/calls/${encodeURIComponent(c.id)}/decline`,
          done: () => t('desk.decline.done', { from: c.from_name }),
        }),
      })));
}

/** A colleague's presence in words: where, and whether they can be reached. */
function presence(c) {
  const where = { on_site: 'desk.loc.on_site', remote: 'desk.loc.remote', off: 'desk.loc.off' }[c.location] ?? 'desk.loc.off';
  const reach = c.in_call ? 'desk.in_call' : c.available ? 'desk.available' : 'desk.unavailable';
  return { where, reach };
}

function presenceText(c) {
  const { where, reach } = presence(c);
  return c.location === 'off' && !c.in_call ? t(where) : `${t(where)}, ${t(reach)}`;
}

function colleagueRow(c) {
  const { where, reach } = presence(c);
  const badges = el('span', { class: 'presence' },
    el('span', { class: `presence-badge presence--${c.location}`, text: t(where) }),
    c.location === 'off' && !c.in_call ? null
      : el('span', { class: `presence-badge presence--${c.in_call ? 'in_call' : c.available ? 'available' : 'busy'}`, text: t(reach) }));
  return el('li', { class: 'desk-row desk-colleague', dataset: { user: c.user_id } },
    el('div', {},
      el('p', { class: 'desk-who' }, el('strong', { text: c.name }), ' ', badges),
      c.offices?.length ? el('p', { class: 'help', text: c.offices.join(', ') }) : null),
    el('div', { class: 'row-actions' }, el('button', {
      type: 'button', class: 'btn btn-small desk-call', text: t('desk.call'), dataset: { user: c.user_id },
      'aria-label': t('desk.call.label', { name: c.name }),
      onclick: (e) => run(e.currentTarget, {
        path: '/api/staff/calls', body: { to_user: c.user_id, note: '' }, open: true, name: c.name,
        done: () => t('desk.call.done', { name: c.name }),
      }),
    })));
}

// --- actions --------------------------------------------------------------------------------------

function status(text) {
  const box = $('desk-status');
  // Emptied first so that the same words are said again.
  box.textContent = '';
  if (text) setTimeout(() => { box.textContent = text; }, 50);
}

/**
 * One desk action: POST `path` (with `body`); with `open`, the answer is a RoomLink opened in a
 * new tab, which is opened first, while the click still counts as a user gesture (as joinRoom
 * does); `name` (or `name(answer)`) is whose room it is. `done(answer)` gives the words said afterwards; `failed(e)`, if given, handles an error first
 * (returns true when it did).
 */
async function run(button, { path, body = {}, open = false, name = '', done, failed }) {
  const tab = open ? window.open('', '_blank') : null;
  showError($('desk-error'), '');
  status('');
  // A disabled button loses the focus: afterwards it goes back to the button, or, if its row is
  // gone, to the heading of the part it was in.
  const part = button.closest('section');
  const heading = part?.querySelector('h3[tabindex], h4[tabindex]');
  const refocus = () => {
    if (document.activeElement && document.activeElement !== document.body) return;
    (button.isConnected ? button : heading?.isConnected ? heading : $('desk-title')).focus();
  };
  button.disabled = true;
  let answer;
  try {
    answer = await api(path, { method: 'POST', body });
  } catch (e) {
    button.disabled = false;
    tab?.close();
    if (host.sessionLost(e)) return null;
    if (!failed?.(e)) showError($('desk-error'), e.message);
    await pollDesk();
    refocus();
    return null;
  }
  button.disabled = false;
  const link = answer?.link ?? answer;
  if (open && link?.url) {
    openLink(tab, link.url, typeof name === 'function' ? name(answer) : name);
  } else {
    tab?.close();
    $('desk-popup').hidden = true;
  }
  const words = done?.(answer);
  if (words) status(words);
  await pollDesk();
  if (!$('desk-popup').querySelector('a:focus')) refocus();
  return answer ?? true;
}

/** Points the tab opened in the click at `url`; when the browser blocked it, offers a link instead. */
function openLink(tab, url, name) {
  const box = $('desk-popup');
  if (tab) {
    tab.opener = null;
    tab.location.href = url;
    box.hidden = true;
    return;
  }
  const a = el('a', {
    class: 'btn btn-primary desk-open-link', href: url, target: '_blank', rel: 'noopener noreferrer',
    text: name ? t('desk.openlink', { name }) : t('desk.openlink.plain'),
  });
  box.replaceChildren(el('p', { text: t('desk.popup') }), a);
  box.hidden = false;
  a.focus();
}

function callNext(o, button) {
  return run(button, {
    path: `/api/staff/offices/${encodeURIComponent(o.office_id)}/next`, open: true,
    name: (called) => called?.walkin?.name ?? '',
    done: (called) => t('desk.next.done', { name: called?.walkin?.name ?? '', office: o.office_name }),
    failed: (e) => {
      if (e.code !== 'queue_empty') return false;
      status(t('desk.queue.nobody', { office: o.office_name }));
      return true;
    },
  });
}

function finish(w, button) {
  if (!confirm(t('desk.finish.confirm', { name: w.name }))) return;
  run(button, { path: `/api/staff/walkins/${encodeURIComponent(w.id)}/finish`, done: () => t('desk.finish.done', { name: w.name }) });
}

function absent(w, button) {
  if (!confirm(t('desk.absent.confirm', { name: w.name }))) return;
  run(button, { path: `/api/staff/walkins/${encodeURIComponent(w.id)}/absent`, done: () => t('desk.absent.done', { name: w.name }) });
}

// --- the hand-off and invitation forms -----------------------------------------------------------

/** The colleagues as options, with their presence in words; keeps the chosen one. */
function fillColleagueSelect(select) {
  const me = host.me()?.user?.id;
  const chosen = select.value;
  const colleagues = (desk?.colleagues ?? []).filter((c) => c.user_id !== me);
  const options = [el('option', { value: '', text: t(colleagues.length ? 'desk.form.choose' : 'desk.form.nobody') }),
    ...colleagues.map((c) => el('option', {
      value: c.user_id,
      text: [c.name, c.offices?.length ? c.offices.join(', ') : null, presenceText(c)].filter(Boolean).join(' — '),
    }))];
  const sig = JSON.stringify(options.map((o) => [o.value, o.textContent]));
  if (select.dataset.sig === sig) return;
  select.replaceChildren(...options);
  select.dataset.sig = sig;
  select.value = colleagues.some((c) => c.user_id === chosen) ? chosen : '';
}

const forms = {
  handoff: { title: 'desk.handoff.title', set: (w) => { handoffFor = w; }, get: () => handoffFor },
  callin: { title: 'desk.invite.title', set: (w) => { inviteFor = w; }, get: () => inviteFor },
};
/** The button that opened each form, to go back to. */
const opener = { handoff: null, callin: null };

function openForm(kind, w, button) {
  const other = kind === 'handoff' ? 'callin' : 'handoff';
  closeForm(other, false);
  const form = $(`${kind}-form`);
  clearErrors(form);
  form.reset();
  forms[kind].set(w);
  opener[kind] = button;
  $(`${kind}-to`).dataset.sig = '';
  fillColleagueSelect($(`${kind}-to`));
  $(`${kind}-title`).textContent = t(forms[kind].title, { name: w.name });
  form.hidden = false;
  for (const b of document.querySelectorAll(`[aria-controls="${kind}-form"]`)) b.setAttribute('aria-expanded', String(b === button));
  $(`${kind}-to`).focus();
}

function closeForm(kind, restoreFocus) {
  const form = $(`${kind}-form`);
  const wasOpen = !form.hidden;
  form.hidden = true;
  forms[kind].set(null);
  for (const b of document.querySelectorAll(`[aria-controls="${kind}-form"]`)) b.setAttribute('aria-expanded', 'false');
  if (restoreFocus && wasOpen && form.contains(document.activeElement)) {
    const back = opener[kind];
    (back?.isConnected ? back : $('desk-mine-title')).focus();
  }
  opener[kind] = null;
}

function relabelForms() {
  for (const kind of ['handoff', 'callin']) {
    const w = forms[kind].get();
    if (w) $(`${kind}-title`).textContent = t(forms[kind].title, { name: w.name });
  }
}

const openHandoff = (w, button) => openForm('handoff', w, button);
const openInvite = (w, button) => openForm('callin', w, button);

/** Reads a form's colleague and note; marks what is wrong. */
function readForm(kind) {
  const form = $(`${kind}-form`);
  clearErrors(form);
  const to = $(`${kind}-to`);
  const note = $(`${kind}-note`);
  if (!to.value) {
    showError($(`${kind}-error`), t('desk.form.pick'), [to]);
    to.focus();
    return null;
  }
  if (note.value.trim().length > NOTE_MAX) {
    showError($(`${kind}-error`), t('desk.form.long', { n: NOTE_MAX }), [note]);
    note.focus();
    return null;
  }
  const colleague = desk?.colleagues.find((c) => c.user_id === to.value);
  return { to_user: to.value, note: note.value.trim(), name: colleague?.name ?? '' };
}

function wireHandoff() {
  $('handoff-cancel').addEventListener('click', () => closeForm('handoff', true));
  $('handoff-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const w = handoffFor;
    const input = w && readForm('handoff');
    if (!input) return;
    const send = $('handoff-send');
    send.disabled = true;
    try {
      await api(`/api/staff/walkins/${encodeURIComponent(w.id)}/handoff`, { method: 'POST', body: { to_user: input.to_user, note: input.note } });
    } catch (e) {
      send.disabled = false;
      if (host.sessionLost(e)) return;
      const field = e.code?.includes('note') ? $('handoff-note') : $('handoff-to');
      showError($('handoff-error'), e.message, [field]);
      field.focus();
      return;
    }
    send.disabled = false;
    closeForm('handoff', false);
    $('desk-mine-title').focus();
    status(t('desk.handoff.done', { name: w.name, to: input.name }));
    await pollDesk();
  });
}

function wireInvite() {
  $('callin-cancel').addEventListener('click', () => closeForm('callin', true));
  $('callin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const w = inviteFor;
    const input = w && readForm('callin');
    if (!input) return;
    const send = $('callin-send');
    send.disabled = true;
    try {
      // The caller is in the room already: the link they get back is not opened.
      await api('/api/staff/calls', { method: 'POST', body: { to_user: input.to_user, room: `walkin-${w.id}`, note: input.note } });
    } catch (e) {
      send.disabled = false;
      if (host.sessionLost(e)) return;
      const field = e.code?.includes('note') ? $('callin-note') : $('callin-to');
      showError($('callin-error'), e.message, [field]);
      field.focus();
      return;
    }
    send.disabled = false;
    const back = opener.callin;
    closeForm('callin', false);
    (back?.isConnected ? back : $('desk-mine-title')).focus();
    status(t('desk.invite.done', { name: input.name }));
    await pollDesk();
  });
}
