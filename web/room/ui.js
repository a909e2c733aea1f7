// DOM: status, alert banner, live announcements, the room (tiles and controls), the end screens.
// Nothing here talks to the network; app.js drives it.

import { t, onLangChange } from '../shared/i18n.js';
import { el as h } from '../shared/dom.js';
import './strings.js';

// ---------------------------------------------------------------------------------------------
// Small helpers

const SVG_NS = 'http://www.w3.org/2000/svg';
const ICONS = {
  mic: ['M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z', 'M19 11a7 7 0 0 1-14 0', 'M12 18v3'],
  cam: ['M3 7h12v10H3z', 'M15 10.5l6-3.5v10l-6-3.5'],
  screen: ['M3 4h18v12H3z', 'M8 20h8', 'M12 16v4'],
  leave: ['M14 4h6v16h-6', 'M10 8l-4 4 4 4', 'M6 12h10'],
  chat: ['M4 5h16v11H9l-5 4z'],
  sound: ['M4 9h4l5-4v14l-5-4H4z', 'M16 9a4 4 0 0 1 0 6', 'M19 6a8 8 0 0 1 0 12'],
  slash: ['M4 3l17 18'],
};

/** An inline SVG icon (decorative); `off` adds a slash. */
export function icon(name, { off = false, cls = '' } = {}) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `icon ${cls}`.trim());
  for (const d of [...ICONS[name], ...(off ? ICONS.slash : [])]) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

/** Play a media element; `onBlocked` is called when autoplay with sound is refused. */
function play(el, onBlocked) {
  const p = el.play();
  if (p && p.catch) {
    p.catch((e) => {
      if (e && e.name === 'NotAllowedError' && onBlocked) onBlocked();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Status, alert, announcements

let statusKey = 'status.lobby';
/** The alert's text, or a function giving it in the current language. */
let alertSource = '';

export function setStatus(key) {
  statusKey = key;
  const el = document.getElementById('status');
  if (el) el.textContent = t(key);
  if (document.body) document.body.dataset.status = key;
}

/**
 * Show a message in the `#alert` banner (role="alert"); empty text hides it. `source` is a string
 * (e.g. the server's message) or a function returning the text in the current language.
 */
export function showAlert(source) {
  alertSource = source || '';
  renderAlert();
}

function renderAlert() {
  const el = document.getElementById('alert');
  if (!el) return;
  const text = typeof alertSource === 'function' ? alertSource() : alertSource;
  if (el.textContent !== text) el.textContent = text;
  const dismiss = document.getElementById('alert-dismiss');
  if (dismiss) dismiss.hidden = !text;
  el.closest('.alert-box')?.classList.toggle('alert-box--shown', !!text);
}

export function clearAlert() {
  showAlert('');
}

export function initChrome() {
  const dismiss = document.getElementById('alert-dismiss');
  if (dismiss) {
    dismiss.addEventListener('click', () => {
      clearAlert();
      document.getElementById('main')?.focus();
    });
  }
  setStatus(statusKey);
  renderAlert();
  onLangChange(() => {
    setStatus(statusKey);
    renderAlert();
  });
}

/** Polite announcement for screen readers (`#announcer`, aria-live="polite"). */
export function announce(text) {
  const el = document.getElementById('announcer');
  if (!el) return;
  // Appending a fresh node makes repeated identical messages be announced again.
  el.append(h('p', { text }));
  while (el.childElementCount > 5) el.firstElementChild.remove();
}

// ---------------------------------------------------------------------------------------------
// End screens (left, fatal error)

function endScreen(id, titleKey, paragraphs, rejoin, buttonKey) {
  document.getElementById(id)?.remove();
  const title = h('h1', { id: `${id}-title`, tabindex: '-1' });
  const section = h('section', { id, class: 'panel end-screen', 'aria-labelledby': `${id}-title` }, title);
  const texts = paragraphs.map((p) => {
    const el = h('p');
    section.append(el);
    return [el, p];
  });
  let btn = null;
  if (rejoin) {
    btn = h('button', { type: 'button', id: 'rejoin-btn', class: 'btn btn-primary' });
    btn.addEventListener('click', rejoin);
    section.append(btn);
  }
  const render = () => {
    title.textContent = t(titleKey);
    for (const [el, p] of texts) el.textContent = typeof p === 'function' ? p() : t(p);
    if (btn) btn.textContent = t(buttonKey);
  };
  render();
  const off = onLangChange(render);
  section.addEventListener('sportello:remove', off);
  document.getElementById('main').append(section);
  title.focus();
  return section;
}

export function showLeftScreen(onRejoin) {
  return endScreen('left', 'left.title', ['left.text'], onRejoin, 'left.rejoin');
}

/**
 * @param {object} o
 * @param {string|null} o.message the server's message, if any
 * @param {string} o.helpKey what to do
 * @param {(() => void)|null} o.onRejoin
 */
export function showErrorScreen({ message, helpKey, onRejoin }) {
  const paras = [];
  if (message) paras.push(() => message);
  paras.push(helpKey);
  return endScreen('fatal', 'error.title', paras, onRejoin, 'error.retry');
}

export function removeEndScreens() {
  for (const id of ['left', 'fatal']) {
    const el = document.getElementById(id);
    if (el) {
      el.dispatchEvent(new Event('sportello:remove'));
      el.remove();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The room

const CONTROL_ICONS = { 'btn-mic': 'mic', 'btn-cam': 'cam', 'btn-screen': 'screen' };

function controlButton(id, labelKey, { toggle = false, cls = '' } = {}) {
  const b = h('button', { type: 'button', id, class: `ctl ${cls}`.trim() });
  if (toggle) {
    const name = CONTROL_ICONS[id];
    b.setAttribute('aria-pressed', 'false');
    b.append(icon(name, { cls: 'icon-on' }), icon(name, { off: true, cls: 'icon-off' }));
  }
  const label = h('span', { class: 'ctl-label' });
  b.append(label);
  // The visible on/off word; screen readers get the state from aria-pressed.
  const state = toggle ? h('span', { class: 'ctl-state', 'aria-hidden': 'true' }) : null;
  if (state) b.append(state);
  return { b, label, state, labelKey };
}

export class RoomView {
  /**
   * @param {object} o
   * @param {() => string} o.title the room in words, in the current language
   * @param {boolean} o.canPublish false for viewers: no microphone, camera or screen controls
   * @param {boolean} o.canShareScreen
   * @param {{mic: Function, cam: Function, screen: Function, leave: Function, chat: Function}} o.actions
   */
  constructor({ title, canPublish, canShareScreen, actions }) {
    this.roomTitle = title;
    this.noticeKey = null;
    this.chatState = { open: true, unread: 0 };
    /** @type {Map<string, object>} participant id → tile */
    this.tiles = new Map();
    /** @type {Map<string, {el: HTMLMediaElement, track: MediaStreamTrack, info: object}>} track id → element */
    this.media = new Map();
    /** @type {Map<string, object>} track id (or 'local') → screen tile */
    this.screenTiles = new Map();
    this.selfId = null;
    this.speaker = null;
    this.controls = { mic: true, cam: true, screen: false };

    this.title = h('h1', { id: 'room-title', tabindex: '-1' });
    this.count = h('p', { class: 'room-count' });
    // Focusable so that keyboard users can scroll it when the tiles overflow.
    this.grid = h('ul', { class: 'grid', id: 'tiles', tabindex: '0' });
    this.buttons = [];
    const bar = h('div', { class: 'controls', role: 'group' });
    this.controlsBar = bar;
    if (canPublish) {
      const mic = controlButton('btn-mic', 'btn.mic', { toggle: true });
      const cam = controlButton('btn-cam', 'btn.cam', { toggle: true });
      mic.b.addEventListener('click', () => actions.mic());
      cam.b.addEventListener('click', () => actions.cam());
      this.buttons.push(mic, cam);
      bar.append(mic.b, cam.b);
      if (canShareScreen) {
        const screen = controlButton('btn-screen', 'btn.screen', { toggle: true });
        screen.b.addEventListener('click', () => actions.screen());
        this.buttons.push(screen);
        bar.append(screen.b);
      }
    }
    // Chat and documents: a panel beside the videos on wide screens, toggled on phones; the badge
    // counts messages that arrived while it was closed.
    const chat = controlButton('btn-chat', 'chat.toggle', { cls: 'ctl-chat' });
    chat.b.prepend(icon('chat'));
    chat.b.setAttribute('aria-controls', 'room-side');
    this.chatBadge = h('span', { class: 'ctl-badge', 'aria-hidden': 'true', hidden: true });
    this.chatUnread = h('span', { class: 'visually-hidden' });
    chat.b.append(this.chatBadge, this.chatUnread);
    chat.b.addEventListener('click', () => actions.chat());
    this.chatButton = chat.b;
    this.buttons.push(chat);
    bar.append(chat.b);
    const audio = controlButton('btn-audio', 'btn.audio', { cls: 'ctl-audio' });
    audio.b.prepend(icon('sound'));
    audio.b.hidden = true;
    audio.b.addEventListener('click', () => this.unlockAudio());
    this.audioButton = audio.b;
    const leave = controlButton('btn-leave', 'btn.leave', { cls: 'ctl-leave' });
    leave.b.prepend(icon('leave'));
    leave.b.addEventListener('click', () => actions.leave());
    this.buttons.push(audio, leave);
    bar.append(audio.b, leave.b);

    // Visible and polite: told when nobody who can receive us is in the room yet.
    this.notice = h('p', { id: 'room-notice', class: 'room-notice', role: 'status' });
    /** Hosts: who waits to be admitted, at the top of the room (SidePanel.lobbyBox). */
    this.lobbySlot = h('div', { class: 'room-lobby-slot' });
    this.el = h('section', { id: 'room', 'aria-labelledby': 'room-title' },
      h('div', { class: 'room-head' }, this.title, this.count),
      this.notice,
      this.lobbySlot,
      this.grid,
      bar);
    this.offLang = onLangChange(() => this.relabel());
    this.relabel();
  }

  mount(parent) {
    parent.append(this.el);
  }

  destroy() {
    this.offLang();
    for (const m of this.media.values()) m.el.srcObject = null;
    for (const tile of this.tiles.values()) if (tile.video) tile.video.srcObject = null;
    this.el.remove();
  }

  focusTitle() {
    this.title.focus();
  }

  // --- labels ---

  relabel() {
    const title = this.roomTitle();
    this.title.textContent = title;
    document.title = t('room.doctitle', { room: title });
    this.renderNotice();
    this.renderChatState();
    this.grid.setAttribute('aria-label', t('room.tiles'));
    this.controlsBar.setAttribute('aria-label', t('room.controls'));
    for (const { label, labelKey } of this.buttons) label.textContent = t(labelKey);
    this.renderControls();
    this.renderCount();
    for (const tile of this.tiles.values()) this.renderTile(tile);
    for (const st of this.screenTiles.values()) this.renderScreenTile(st);
  }

  renderCount() {
    const n = this.tiles.size;
    this.count.textContent = n === 1 ? t('room.count.one') : t('room.count.many', { n });
  }

  // --- notice, chat toggle ---

  /** Show `key`'s text (or nothing) above the videos; it is a polite live region. */
  setNotice(key) {
    if (this.noticeKey === key) return;
    this.noticeKey = key;
    this.renderNotice();
  }

  renderNotice() {
    const text = this.noticeKey ? t(this.noticeKey) : '';
    if (this.notice.textContent !== text) this.notice.textContent = text;
    this.notice.classList.toggle('room-notice--shown', !!text);
  }

  /** @param {{open: boolean, unread: number}} state */
  setChatState(state) {
    this.chatState = state;
    this.renderChatState();
  }

  renderChatState() {
    const { open, unread } = this.chatState;
    this.chatButton.setAttribute('aria-expanded', String(open));
    this.chatBadge.hidden = !unread;
    this.chatBadge.textContent = unread ? String(unread) : '';
    const words = unread === 1 ? t('chat.unread.one') : t('chat.unread.many', { n: unread });
    this.chatUnread.textContent = unread ? `, ${words}` : '';
  }

  // --- controls ---

  /** @param {{mic?: boolean, cam?: boolean, screen?: boolean}} on which sources are on */
  setControls(on) {
    Object.assign(this.controls, on);
    this.renderControls();
  }

  renderControls() {
    const states = { 'btn-mic': this.controls.mic, 'btn-cam': this.controls.cam, 'btn-screen': this.controls.screen };
    for (const { b, state } of this.buttons) {
      if (!(b.id in states)) continue;
      const on = !!states[b.id];
      b.setAttribute('aria-pressed', String(on));
      if (!state) continue;
      if (b.id === 'btn-screen') state.textContent = on ? t('state.sharing') : '';
      else state.textContent = on ? t('state.on') : t('state.off');
    }
  }

  showAudioUnlock() {
    this.audioButton.hidden = false;
  }

  unlockAudio() {
    this.audioButton.hidden = true;
    for (const { el } of this.media.values()) play(el, () => this.showAudioUnlock());
  }

  // --- participant tiles ---

  /** Add or update a participant's tile. `p = {id, name, role, muted}`; `self` marks our own. */
  upsertParticipant(p, { self = false } = {}) {
    let tile = this.tiles.get(p.id);
    if (!tile) {
      const avatar = h('div', { class: 'tile-avatar', 'aria-hidden': 'true' });
      const mediaBox = h('div', { class: 'tile-media' }, avatar);
      const nameEl = h('span', { class: 'tile-name' });
      const roleEl = h('span', { class: 'tile-role' });
      const micOff = h('span', { class: 'badge badge-mic-off' }, icon('mic', { off: true }),
        h('span', { class: 'visually-hidden' }));
      const camOff = h('span', { class: 'visually-hidden badge-cam-off' });
      const speaking = h('span', { class: 'badge badge-speaking' }, icon('sound'), h('span'));
      const caption = h('div', { class: 'tile-caption' }, nameEl, roleEl, micOff, camOff, speaking);
      const li = h('li', { class: 'tile', 'data-participant-id': p.id, 'data-self': self ? 'true' : null },
        mediaBox, caption);
      tile = { id: p.id, self, li, mediaBox, avatar, nameEl, roleEl, micOff, camOff, speaking, video: null };
      this.tiles.set(p.id, tile);
      if (self) {
        this.selfId = p.id;
        this.grid.prepend(li);
      } else {
        this.grid.append(li);
      }
      this.renderCount();
    }
    tile.name = p.name || p.id;
    tile.role = p.role;
    tile.muted = { ...(p.muted || {}) };
    this.renderTile(tile);
    for (const st of this.screenTiles.values()) if (st.pid === p.id) this.renderScreenTile(st);
  }

  removeParticipant(id) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    for (const [trackId, m] of this.media) if (m.info.participant === id) this.removeMedia(trackId);
    tile.li.remove();
    this.tiles.delete(id);
    if (this.speaker === id) this.speaker = null;
    this.renderCount();
  }

  setMuted(id, source, muted) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    tile.muted[source] = muted;
    this.renderTile(tile);
  }

  setActiveSpeaker(id) {
    const prev = this.tiles.get(this.speaker);
    this.speaker = id ?? null;
    if (prev) this.renderTile(prev);
    const cur = this.tiles.get(this.speaker);
    if (cur) this.renderTile(cur);
  }

  renderTile(tile) {
    const speaking = this.speaker === tile.id;
    const camOff = !!tile.muted.camera || !tile.video;
    tile.li.classList.toggle('tile--speaking', speaking);
    tile.li.classList.toggle('tile--no-video', camOff);
    tile.li.dataset.speaking = String(speaking);
    tile.nameEl.textContent = tile.self ? t('tile.you', { name: tile.name }) : tile.name;
    tile.roleEl.textContent = tile.role === 'viewer' ? t('tile.viewer') : '';
    tile.roleEl.hidden = tile.role !== 'viewer';
    tile.avatar.textContent = initials(tile.name);
    tile.micOff.hidden = !tile.muted.microphone;
    tile.micOff.lastElementChild.textContent = t('tile.mic.off');
    tile.camOff.textContent = tile.muted.camera ? t('tile.cam.off') : '';
    tile.speaking.hidden = !speaking;
    tile.speaking.lastElementChild.textContent = t('tile.speaking.badge');
    const parts = [tile.nameEl.textContent];
    if (tile.role === 'viewer') parts.push(t('tile.viewer'));
    if (tile.muted.microphone) parts.push(t('tile.mic.off'));
    if (tile.muted.camera) parts.push(t('tile.cam.off'));
    if (speaking) parts.push(t('tile.speaking'));
    tile.li.setAttribute('aria-label', parts.join(', '));
  }

  // --- our own media ---

  setLocalCamera(track) {
    const tile = this.tiles.get(this.selfId);
    if (!tile) return;
    if (!track) {
      if (tile.video) {
        tile.video.srcObject = null;
        tile.video.remove();
        tile.video = null;
      }
    } else {
      if (!tile.video) {
        tile.video = h('video', { autoplay: true, playsinline: true, class: 'mirror', 'data-local-source': 'camera' });
        tile.video.muted = true;
        tile.mediaBox.append(tile.video);
      }
      if (tile.video.srcObject?.getVideoTracks()[0] !== track) {
        tile.video.srcObject = new MediaStream([track]);
        play(tile.video);
      }
    }
    this.renderTile(tile);
  }

  setLocalScreen(track) {
    const existing = this.screenTiles.get('local');
    if (existing) {
      existing.video.srcObject = null;
      existing.li.remove();
      this.screenTiles.delete('local');
      this.layout();
    }
    if (!track) return;
    const video = h('video', { autoplay: true, playsinline: true, 'data-local-source': 'screen' });
    video.muted = true;
    video.srcObject = new MediaStream([track]);
    this.addScreenTile('local', this.selfId, video, true);
    play(video);
  }

  addScreenTile(key, pid, video, self) {
    const caption = h('div', { class: 'tile-caption' }, h('span', { class: 'tile-name' }));
    const li = h('li', { class: 'tile tile--screen', 'data-screen-of': pid },
      h('div', { class: 'tile-media' }, video), caption);
    const st = { key, pid, li, video, self, nameEl: caption.firstElementChild };
    this.screenTiles.set(key, st);
    this.grid.prepend(li);
    this.renderScreenTile(st);
    this.layout();
  }

  /** With a screen share the screen gets the space and the people become a strip of small tiles. */
  layout() {
    this.grid.classList.toggle('grid--with-screen', this.screenTiles.size > 0);
  }

  renderScreenTile(st) {
    const name = this.tiles.get(st.pid)?.name ?? st.pid;
    st.nameEl.textContent = st.self ? t('tile.screen.you') : t('tile.screen', { name });
    st.li.setAttribute('aria-label', st.nameEl.textContent);
  }

  // --- remote media ---

  /**
   * Show exactly these remote tracks: `[{info: Track, track: MediaStreamTrack}]`. Elements are keyed
   * by track id; an existing element only gets a new source when the MediaStreamTrack changed.
   */
  setRemoteTracks(list) {
    const want = new Map(list.map((x) => [x.info.id, x]));
    for (const id of [...this.media.keys()]) if (!want.has(id)) this.removeMedia(id);
    for (const [id, { info, track }] of want) {
      const cur = this.media.get(id);
      if (cur && cur.track === track) continue;
      if (cur) {
        cur.el.srcObject = new MediaStream([track]);
        cur.track = track;
        play(cur.el, () => this.showAudioUnlock());
        continue;
      }
      this.addMedia(info, track);
    }
  }

  addMedia(info, track) {
    const tile = this.tiles.get(info.participant);
    if (!tile) return;
    const isAudio = (info.kind ?? track.kind) === 'audio';
    const el = h(isAudio ? 'audio' : 'video', {
      autoplay: true, playsinline: isAudio ? null : true, 'data-track-id': info.id,
      'data-source': info.source,
    });
    // Sound comes only from audio elements, so videos are muted (which also lets them autoplay).
    if (!isAudio) el.muted = true;
    el.srcObject = new MediaStream([track]);
    this.media.set(info.id, { el, track, info });
    if (isAudio) {
      tile.li.append(el);
    } else if (info.source === 'screen') {
      this.addScreenTile(info.id, info.participant, el, false);
      el.classList.add('screen-video');
    } else {
      if (tile.video) tile.video.remove();
      tile.video = el;
      tile.mediaBox.append(el);
      this.renderTile(tile);
    }
    play(el, () => this.showAudioUnlock());
  }

  removeMedia(trackId) {
    const m = this.media.get(trackId);
    if (!m) return;
    m.el.srcObject = null;
    m.el.remove();
    this.media.delete(trackId);
    const st = this.screenTiles.get(trackId);
    if (st) {
      st.li.remove();
      this.screenTiles.delete(trackId);
      this.layout();
    }
    const tile = this.tiles.get(m.info.participant);
    if (tile && tile.video === m.el) {
      tile.video = null;
      this.renderTile(tile);
    }
  }

  /** Track ids shown for participant `id`. */
  tracksOf(id) {
    return [...this.media.values()].filter((m) => m.info.participant === id).map((m) => m.info.id).sort();
  }
}

// ---------------------------------------------------------------------------------------------
// Side panel: waiting room (hosts), chat, documents

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function formatTime(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString(document.documentElement.lang || 'it', {
    hour: '2-digit', minute: '2-digit',
  });
}

export class SidePanel {
  /**
   * @param {object} o
   * @param {boolean} o.isHost shows the waiting room with admit/decline buttons
   * @param {string} o.selfId
   * @param {{chat: (text: string) => boolean, upload: (file: File) => void,
   *          download: (doc: object) => void, admit: (id: string) => void, decline: (id: string) => void,
   *          close: () => void}} o.actions
   */
  constructor({ isHost, selfId, actions }) {
    this.isHost = isHost;
    this.selfId = selfId;
    this.actions = actions;
    this.lobby = [];
    this.chat = [];
    this.documents = [];

    const heading = (key) => h('h2', { 'data-key': key });
    this.headings = [];
    const section = (cls, key, ...children) => {
      const title = heading(key);
      this.headings.push(title);
      return h('section', { class: `side-section ${cls}` }, title, ...children);
    };

    // Waiting room (hosts only): shown at the top of the room while someone waits (lobbyBox), so
    // admitting does not depend on the chat panel being open.
    this.lobbyList = h('ul', { id: 'lobby-list', class: 'lobby-list' });
    this.lobbyEmpty = h('p', { class: 'empty' });

    // Chat: a log (polite live region) around a real list (a list with role="log" would no longer
    // be a list, and its items would be orphans), and a labelled textarea; Enter sends.
    this.chatList = h('ol', { id: 'chat-list', class: 'chat-list' });
    this.chatLog = h('div', { id: 'chat-log', class: 'chat-log', role: 'log', 'aria-live': 'polite', tabindex: '0' },
      this.chatList);
    this.chatEmpty = h('p', { class: 'empty' });
    this.chatLabel = h('label', { for: 'chat-input' });
    this.chatHelp = h('p', { id: 'chat-help', class: 'help' });
    this.chatInput = h('textarea', {
      id: 'chat-input', rows: '2', maxlength: '2000', 'aria-describedby': 'chat-help', autocomplete: 'off',
    });
    this.chatSend = h('button', { id: 'chat-send', type: 'submit', class: 'btn btn-primary btn-small' });
    this.chatForm = h('form', { class: 'chat-form', novalidate: '' },
      this.chatLabel, this.chatInput, this.chatHelp, this.chatSend);
    this.chatForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.sendChat();
    });
    this.chatInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.sendChat();
      }
    });

    // Documents: a visible label on the file input; each document is a download button.
    this.docLabel = h('label', { for: 'doc-input', class: 'btn btn-small file-label' });
    this.docInput = h('input', { id: 'doc-input', type: 'file', class: 'file-input', 'aria-describedby': 'doc-help' });
    this.docHelp = h('p', { id: 'doc-help', class: 'help' });
    this.docStatus = h('p', { class: 'help', role: 'status' });
    this.docList = h('ul', { id: 'doc-list', class: 'doc-list' });
    this.docEmpty = h('p', { class: 'empty' });
    this.docInput.addEventListener('change', () => {
      const file = this.docInput.files && this.docInput.files[0];
      if (file) this.actions.upload(file);
      this.docInput.value = '';
    });

    this.lobbyBox = isHost ? section('side-lobby', 'lobby.title', this.lobbyEmpty, this.lobbyList) : null;
    this.lobbyBox?.setAttribute('id', 'room-lobby');
    this.closeButton = h('button', { type: 'button', id: 'side-close', class: 'btn btn-small side-close' });
    this.closeButton.addEventListener('click', () => this.actions.close());
    this.el = h('aside', { id: 'room-side', class: 'room-side' },
      this.closeButton,
      section('side-chat', 'chat.title', this.chatEmpty, this.chatLog, this.chatForm),
      section('side-docs', 'docs.title', this.docLabel, this.docInput, this.docHelp, this.docStatus,
        this.docEmpty, this.docList));
    this.offLang = onLangChange(() => this.relabel());
    this.relabel();
  }

  /** The panel into `parent`; the hosts' waiting list into `lobbyParent` (the room's top). */
  mount(parent, lobbyParent) {
    parent.append(this.el);
    if (this.lobbyBox) lobbyParent.append(this.lobbyBox);
  }

  destroy() {
    this.offLang();
    this.el.remove();
    this.lobbyBox?.remove();
  }

  /** Shown or not (the room's chat button); on opening, the keyboard goes to the message box. */
  setOpen(open, { focus = false } = {}) {
    this.el.hidden = !open;
    if (open && focus) this.chatInput.focus();
  }

  relabel() {
    this.el.setAttribute('aria-label', t('side.label.chat'));
    this.closeButton.textContent = t('chat.close');
    for (const title of this.headings) title.textContent = t(title.dataset.key);
    this.chatLabel.textContent = t('chat.input');
    this.chatHelp.textContent = t('chat.help');
    this.chatSend.textContent = t('chat.send');
    this.chatLog.setAttribute('aria-label', t('chat.list'));
    this.docLabel.textContent = t('docs.input');
    this.docHelp.textContent = t('docs.help');
    this.renderLobby();
    this.renderChat();
    this.renderDocuments();
  }

  sendChat() {
    const text = this.chatInput.value.trim();
    if (!text) return;
    if ([...text].length > 2000) {
      showAlert(() => t('chat.too_long'));
      return;
    }
    if (this.actions.chat(text)) this.chatInput.value = '';
  }

  setDocStatus(text) {
    this.docStatus.textContent = text || '';
  }

  // --- waiting room ---

  setLobby(list) {
    this.lobby = list;
    this.renderLobby();
  }

  renderLobby() {
    if (!this.isHost) return;
    this.lobbyEmpty.textContent = t('lobby.empty');
    this.lobbyEmpty.hidden = this.lobby.length > 0;
    this.lobbyBox.hidden = this.lobby.length === 0;
    const focused = document.activeElement;
    const keepFocus = focused && this.lobbyList.contains(focused) ? focused.closest('[data-waiting-id]') : null;
    this.lobbyList.replaceChildren(...this.lobby.map((w) => {
      const admit = h('button', {
        type: 'button', class: 'btn btn-primary btn-small admit', text: t('lobby.admit'),
        'aria-label': t('lobby.admit.label', { name: w.name }),
      });
      const decline = h('button', {
        type: 'button', class: 'btn btn-small decline', text: t('lobby.decline'),
        'aria-label': t('lobby.decline.label', { name: w.name }),
      });
      admit.addEventListener('click', () => this.actions.admit(w.id));
      decline.addEventListener('click', () => this.actions.decline(w.id));
      return h('li', { 'data-waiting-id': w.id, class: 'lobby-item' },
        h('span', { class: 'lobby-name', text: w.name }),
        h('span', { class: 'lobby-since', text: t('lobby.since', { time: formatTime(w.since) }) }),
        h('span', { class: 'lobby-actions' }, admit, decline));
    }));
    // The person whose buttons had focus was admitted or declined: keep the keyboard in the list.
    if (keepFocus && !this.lobbyList.contains(keepFocus)) {
      (this.lobbyList.querySelector('button') ?? document.getElementById('room-title'))?.focus();
    }
  }

  // --- chat ---

  addChat(msg) {
    if (this.chat.some((m) => m.id === msg.id)) return false;
    this.chat.push(msg);
    this.chatList.append(this.chatItem(msg));
    this.chatEmpty.hidden = true;
    this.chatLog.scrollTop = this.chatLog.scrollHeight;
    return true;
  }

  chatItem(msg) {
    const who = msg.participant_id === this.selfId ? t('chat.you') : msg.name;
    return h('li', { class: 'chat-item', 'data-chat-id': msg.id },
      h('span', { class: 'chat-meta' },
        h('strong', { text: who }), ' ',
        h('time', { datetime: new Date(msg.at * 1000).toISOString(), text: formatTime(msg.at) })),
      h('p', { class: 'chat-text', text: msg.text }));
  }

  renderChat() {
    this.chatEmpty.textContent = t('chat.empty');
    this.chatEmpty.hidden = this.chat.length > 0;
    this.chatList.replaceChildren(...this.chat.map((m) => this.chatItem(m)));
  }

  // --- documents ---

  addDocument(doc) {
    if (this.documents.some((d) => d.id === doc.id)) return false;
    this.documents.push(doc);
    this.renderDocuments();
    return true;
  }

  renderDocuments() {
    this.docEmpty.textContent = t('docs.empty');
    this.docEmpty.hidden = this.documents.length > 0;
    this.docList.replaceChildren(...this.documents.map((d) => {
      const button = h('button', {
        type: 'button', class: 'btn btn-small doc-download', text: d.name,
        'aria-label': t('docs.download', { name: d.name }),
      });
      button.addEventListener('click', () => this.actions.download(d));
      const who = d.participant_id === this.selfId ? t('chat.you') : d.uploader_name;
      return h('li', { 'data-document-id': d.id, class: 'doc-item' },
        button,
        h('span', { class: 'doc-meta', text: t('docs.meta', { size: formatSize(d.size), who }) }));
    }));
  }
}
