// Entry point of the join page (/join): the lobby, the room and reconnection; exposes
// `window.sportello` for end-to-end tests. The home and privacy pages have their own small module
// (citizen/home.js) and load none of this.

import { t, getLang, initPage, onLangChange } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { el as h } from '../shared/dom.js';
import '../citizen/strings.js';
import './strings.js';
import { decodeToken } from './token.js';
import { STEPS, iceConfig, nextStep, selectedPath, pathKind } from '../shared/ice.js';
import { Signaling, FATAL_ERRORS, CLOSE_CODE_ERRORS } from './signaling.js';
import { CouncilPanel } from './council.js';
import { NetcheckPanel } from './netcheck.js';
import { watchWalkin } from './walkin.js';
import {
  SOURCES, acquireMedia, listDevices, MicMeter, Publisher, Subscriber, mediaSupported,
  screenShareSupported,
} from './media.js';
import {
  RoomView, SidePanel, setStatus, showAlert, clearAlert, announce, initChrome, showLeftScreen,
  showErrorScreen, removeEndScreens,
} from './ui.js';

const app = {
  /** 'lobby' | 'joining' | 'waiting' | 'in-room' | 'reconnecting' | 'left' | 'error' */
  state: 'lobby',
  token: null,
  claims: null,
  participantId: null,
  selfName: '',
  role: 'participant',
  /** @type {Signaling|null} */
  sig: null,
  /** @type {Publisher|null} */
  publisher: null,
  /** @type {Subscriber|null} */
  subscriber: null,
  /** Our tracks; kept across reconnections (never re-acquired for them). */
  local: { microphone: null, camera: null, screen: null },
  muted: { microphone: false, camera: false },
  deviceIds: { microphone: undefined, camera: undefined },
  /** The others: id → {id, name, role, muted} */
  participants: new Map(),
  /** Track ids announced as gone; hidden even if a stale subscribe offer still maps them. */
  unpublished: new Set(),
  /** @type {RoomView|null} */
  view: null,
  meter: null,
  mediaReady: Promise.resolve(),
  /** The server's message types as they came, and why a connection failed (for diagnosis). */
  events: [],
  /** Held in the waiting room until a host admits us. */
  waiting: false,
  /** Hosts: who is waiting, as the last `lobby` message said. */
  lobby: [],
  /** Chat messages and shared documents of this room (history, then live). */
  chat: [],
  documents: [],
  /** @type {SidePanel|null} */
  side: null,
  /** The room in words (`GET /api/rooms/{room}`), or null until it arrived. */
  details: null,
  /** The ICE ladder's step (shared/ice.js) and the `welcome`'s ICE servers it picks from. */
  ladder: 0,
  iceServers: [],
  /** What the status line says while climbing the ladder (a strings key), until a path is up. */
  ladderNote: null,
  /** The path the last connection took: `udp`, `tcp` or `relay-…` (shared/ice.js). */
  path: null,
  /** The lobby's network check (netcheck.js); its outcome picks the ladder's first step. */
  netcheck: null,
  /** The chat/documents panel is shown; messages from others that arrived while it was not. */
  sideOpen: true,
  unread: 0,
};

window.sportello = {
  get state() { return app.state; },
  get participantId() { return app.participantId; },
  get pcs() {
    return { publish: app.publisher?.pc ?? null, subscribe: app.subscriber?.pc ?? null };
  },
  get ws() { return app.sig?.ws ?? null; },
  participants() {
    return [...app.participants.values()].map((p) => ({
      id: p.id,
      name: p.name,
      tracks: app.view ? app.view.tracksOf(p.id) : [],
    }));
  },
  async inboundStats() {
    return app.subscriber ? app.subscriber.inboundStats() : [];
  },
  /** The network check's outcome (`{verdict, code, slow, results}`), null while it runs. */
  get netcheck() { return app.netcheck?.outcome ?? null; },
  /** The ICE ladder: its step's policy and the path the last connection took. */
  get ladder() { return { policy: STEPS[app.ladder], path: app.path }; },
  /** The network path of each peer connection (see shared/ice.js). */
  async paths() {
    return {
      publish: await selectedPath(app.publisher?.pc),
      subscribe: await selectedPath(app.subscriber?.pc),
    };
  },
  dropConnection() {
    app.sig?.drop();
  },
  events: app.events,
  get waiting() { return app.waiting; },
  get lobby() { return app.lobby; },
  get details() { return app.details; },
  get unread() { return app.unread; },
  chat: app.chat,
  documents: app.documents,
  /** Where and with which token a document downloads (tests compare the bytes). */
  documentDownload(id) {
    return { url: apiUrl(`documents/${encodeURIComponent(id)}`), token: app.token };
  },
};

const $ = (id) => document.getElementById(id);

/** `giovedì 11 marzo 2027 alle ore 10:00` in Rome time, in the page's language. */
function formatWhen(unixSeconds) {
  return new Intl.DateTimeFormat(getLang() === 'en' ? 'en-GB' : 'it-IT', {
    timeZone: 'Europe/Rome', weekday: 'long', day: 'numeric', month: 'long', year: 'numeric',
    hour: '2-digit', minute: '2-digit',
  }).format(new Date(unixSeconds * 1000));
}

/**
 * The room as people should read it: office, service, time and official of an appointment, whose
 * virtual office it is — never an internal id like `appt-…` or `vo-…` (those rooms fall back to a
 * generic name until the details arrive).
 */
function roomTitle() {
  const d = app.details;
  const room = app.claims?.room ?? '';
  const kind = d?.kind ?? (room.startsWith('appt-') ? 'appointment'
    : room.startsWith('vo-') || room.startsWith('office-') ? 'office'
      : room.startsWith('walkin-') ? 'walk_in' : room.startsWith('staff-') ? 'staff' : 'other');
  if (kind === 'appointment') {
    const parts = [d?.service, d?.office, d?.starts_at ? formatWhen(d.starts_at) : null,
      d?.official ? t('room.appt.with', { name: d.official }) : null].filter(Boolean);
    return parts.length ? `${t('room.appt')}: ${parts.join(' · ')}` : t('room.appt');
  }
  if (kind === 'virtual_office' && d.official) return t('room.vo', { name: d.official });
  if (kind === 'office' && d?.office) return t('room.office', { name: d.office });
  if (kind === 'virtual_office' || kind === 'office') return t('room.virtual');
  if (kind === 'walk_in') return d?.office ? t('room.walkin.office', { name: d.office }) : t('room.walkin');
  if (kind === 'staff') return t('room.staff');
  return d?.title || room;
}

function renderRoomTitle() {
  const el = $('room-name');
  if (el) el.textContent = roomTitle();
  app.view?.relabel();
}

/** Any token for the room may ask, also one still waiting to be admitted. */
async function loadDetails() {
  try {
    app.details = await api(`/api/rooms/${encodeURIComponent(app.claims.room)}`, { token: app.token });
  } catch (e) {
    // The title stays the one the token gives.
    if (e.status === 0) console.warn('sportello: room details', e);
    return;
  }
  renderRoomTitle();
}

function setState(s) {
  app.state = s;
  document.body.dataset.state = s;
  setStatus(`status.${s}`);
}

// ---------------------------------------------------------------------------------------------
// Lobby

/** A lobby note re-rendered on language change. */
let noteKey = null;
function setNote(key) {
  noteKey = key;
  const el = $('media-note');
  if (el) {
    el.textContent = key ? t(key) : '';
    el.hidden = !key;
  }
}

function initJoin() {
  // `/join#t=` (from the appointment link gateway: the fragment never reaches a log) or `/join?t=`.
  const token = new URLSearchParams(location.search).get('t') ?? new URLSearchParams(location.hash.slice(1)).get('t');
  const claims = decodeToken(token);
  onLangChange(() => setNote(noteKey));
  if (!claims) {
    $('join-form').hidden = true;
    $('room-line').hidden = true;
    setState('error');
    showAlert(() => t(token ? 'token.invalid' : 'token.missing'));
    return;
  }
  app.token = token;
  app.claims = claims;
  app.role = claims.role;
  // A citizen's own walk-in room: says when they are being handed to a colleague.
  watchWalkin(claims);
  renderRoomTitle();
  onLangChange(renderRoomTitle);
  loadDetails();
  $('display-name').value = claims.name;
  startNetcheck();
  if (claims.exp !== null && claims.exp * 1000 < Date.now()) {
    const expired = $('expired-note');
    expired.hidden = false;
  }
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    enter();
  });
  if (claims.role === 'viewer') {
    $('devices').hidden = true;
    $('preview-wrap').hidden = true;
    $('lobby').classList.add('lobby--viewer');
    setNote('join.viewer');
    return;
  }
  app.meter = new MicMeter($('mic-meter'));
  app.mediaReady = setupLobbyMedia().catch((e) => console.warn('sportello: media', e));
  $('camera-select').addEventListener('change', (e) => switchDevice('camera', e.target.value));
  $('mic-select').addEventListener('change', (e) => switchDevice('microphone', e.target.value));
}

/** The network check runs beside the camera/microphone check; its verdict words the join button. */
function startNetcheck() {
  app.netcheck = new NetcheckPanel({ api, t, el: h, onOutcome: onNetcheck });
  onLangChange(() => {
    app.netcheck.render();
    onNetcheck(app.netcheck.outcome);
  });
  app.netcheck.run();
}

function onNetcheck(outcome) {
  // Only the encrypted relay gets through: start on the ladder's relay step, unless the
  // connections were already made (then the ladder climbs by itself).
  if (outcome?.verdict && !app.publisher && !app.subscriber && ['lobby', 'joining', 'waiting'].includes(app.state)) {
    app.ladder = outcome.verdict === 'relay' ? STEPS.indexOf('relay') : 0;
  }
  // Nothing gets through: the join button says why entering will probably not work (it stays usable).
  const none = outcome?.verdict === 'none';
  const note = $('join-note');
  note.textContent = none ? t('join.note.none') : '';
  note.hidden = !none;
  if (none) $('join-btn').setAttribute('aria-describedby', 'join-note');
  else $('join-btn').removeAttribute('aria-describedby');
}

async function setupLobbyMedia() {
  if (!mediaSupported()) {
    setNote('join.media.unsupported');
    fillSelect($('camera-select'), [], null);
    fillSelect($('mic-select'), [], null);
    return;
  }
  setNote('join.media.waiting');
  const r = await acquireMedia();
  setLocal('microphone', r.audio);
  setLocal('camera', r.video);
  renderPreview();
  app.meter.attach(r.audio);
  if (r.error === 'denied') setNote('join.media.denied');
  else if (r.error === 'none') setNote('join.media.none');
  else if (!r.video) setNote('join.media.nocamera');
  else if (!r.audio) setNote('join.media.nomic');
  else setNote('join.media.ready');
  await fillDevices();
  navigator.mediaDevices.addEventListener('devicechange', fillDevices);
}

function renderPreview() {
  const video = $('preview');
  const track = app.local.camera;
  if (track) {
    video.srcObject = new MediaStream([track]);
    video.play().catch(() => {});
  } else {
    video.srcObject = null;
  }
  $('preview-off').hidden = !!track;
}

async function fillDevices() {
  if (app.state !== 'lobby' && app.state !== 'joining' && app.state !== 'waiting') return;
  let devices;
  try {
    devices = await listDevices();
  } catch {
    return;
  }
  fillSelect($('camera-select'), devices.cameras, app.local.camera?.getSettings().deviceId);
  fillSelect($('mic-select'), devices.microphones, app.local.microphone?.getSettings().deviceId);
}

function fillSelect(select, devices, currentId) {
  select.replaceChildren();
  if (!devices.length) {
    select.append(h('option', { value: '', text: t('device.none') }));
    select.disabled = true;
    return;
  }
  select.disabled = false;
  devices.forEach((d, i) => {
    select.append(h('option', {
      value: d.deviceId,
      text: d.label || t('device.unnamed', { n: i + 1 }),
      selected: d.deviceId === currentId,
    }));
  });
}

/** Use another camera or microphone (lobby, or in the room where it replaces the sent track). */
async function switchDevice(source, deviceId) {
  const audio = source === 'microphone';
  const r = await acquireMedia({
    audio, video: !audio,
    audioDeviceId: audio ? deviceId : undefined,
    videoDeviceId: audio ? undefined : deviceId,
  });
  const track = audio ? r.audio : r.video;
  if (!track) {
    showAlert(() => t(audio ? 'media.error.mic' : 'media.error.cam'));
    return;
  }
  app.local[source]?.stop();
  setLocal(source, track);
  app.deviceIds[source] = deviceId;
  if (audio) app.meter?.attach(track);
  else renderPreview();
  if (app.publisher) app.publisher.setTrack(source, track);
}

/** Make `track` our `source`; when the device goes away (unplugged), stop sending it. */
function setLocal(source, track) {
  app.local[source] = track;
  if (!track) return;
  if (source !== 'screen') track.enabled = !app.muted[source];
  track.addEventListener('ended', () => {
    if (app.local[source] !== track) return;
    if (source === 'screen') {
      stopScreen();
      return;
    }
    app.local[source] = null;
    app.publisher?.removeSource(source);
    renderSelf();
  });
}

async function enter() {
  if (app.state !== 'lobby') return;
  $('join-btn').disabled = true;
  setState('joining');
  clearAlert();
  await app.mediaReady;
  // The device check stays on screen until we are really in: we may be held in the waiting room.
  startSignaling();
}

/** Entered the room: the device check and the waiting screen go. */
function closeLobby() {
  app.waiting = false;
  $('waiting-screen').hidden = true;
  if ($('lobby').hidden) return;
  app.meter?.detach();
  if (navigator.mediaDevices) navigator.mediaDevices.removeEventListener('devicechange', fillDevices);
  $('preview').srcObject = null;
  $('lobby').hidden = true;
}

/** Held in the waiting room: say so, keep the camera/microphone check usable. */
function onWaiting() {
  const first = !app.waiting;
  app.waiting = true;
  setState('waiting');
  $('join-btn').hidden = true;
  if ($('lobby').hidden) {
    // Back after leaving the room («Rientra»): the device check comes back with the waiting screen.
    $('lobby').hidden = false;
    renderPreview();
    if (app.local.microphone) app.meter?.attach(app.local.microphone);
  }
  const screen = $('waiting-screen');
  screen.hidden = false;
  if (first) $('waiting-title').focus();
}

// ---------------------------------------------------------------------------------------------
// Signaling

function startSignaling() {
  app.sig?.stop();
  app.sig = new Signaling({
    room: app.claims.room,
    token: app.token,
    lang: getLang,
    onMessage,
    onDisconnect,
  });
  app.sig.start();
}

function send(msg) {
  return app.sig ? app.sig.send(msg) : false;
}

function onDisconnect(info) {
  if (info.left) {
    finishLeave();
  } else if (info.fatal) {
    handleFatal(info.fatal);
  } else if (app.state === 'in-room' || app.state === 'reconnecting') {
    setState('reconnecting');
    if (app.ladderNote) setStatus(app.ladderNote);
  } else if (app.state === 'joining') {
    setStatus('status.joining.retry');
  }
}

function onMessage(msg) {
  app.events.push(msg.type);
  switch (msg.type) {
    case 'welcome': onWelcome(msg); break;
    case 'participant_joined': onParticipantJoined(msg.participant); break;
    case 'participant_left': onParticipantLeft(msg.participant_id); break;
    case 'track_published':
      if (msg.track) onTrackPublished(msg.track);
      break;
    case 'track_unpublished':
      if (msg.track) {
        app.unpublished.add(msg.track.id);
        syncTracks();
      }
      break;
    case 'offer':
      if (msg.pc === 'subscribe') app.subscriber?.handleOffer(msg);
      break;
    case 'answer':
      if (msg.pc === 'publish') app.publisher?.handleAnswer(msg.sdp);
      break;
    case 'candidate':
      (msg.pc === 'publish' ? app.publisher : app.subscriber)?.addRemoteCandidate(msg.candidate);
      break;
    case 'mute': onMute(msg); break;
    case 'active_speaker': app.view?.setActiveSpeaker(msg.participant_id ?? null); break;
    case 'error': onError(msg); break;
    case 'waiting': onWaiting(msg); break;
    case 'declined':
      handleFatal({ code: 'declined', message: msg.message ?? null, closeCode: null });
      break;
    case 'lobby': onLobby(msg.waiting || []); break;
    case 'chat': addChat(msg, true); break;
    case 'document': addDocument(msg, true); break;
    // Council rooms (council.js): the session's state, and the chair's forced mute.
    case 'council.state': app.council?.onState(msg); break;
    case 'force_mute':
      if (app.local[msg.source] && !app.muted[msg.source]) toggleSource(msg.source);
      app.council?.onForceMute();
      break;
    default: console.warn('sportello: unknown message', msg.type);
  }
}

function normalizeParticipant(p) {
  return { id: p.id, name: p.name || p.id, role: p.role, muted: { ...(p.muted || {}) } };
}

function onWelcome(msg) {
  const firstEntry = !app.view;
  const wasReconnecting = app.state === 'reconnecting';
  const you = msg.you || {};
  app.participantId = you.id ?? app.claims.sub;
  app.selfName = you.name ?? app.claims.name;
  app.role = you.role ?? app.claims.role;

  // A new welcome (first, or after any reconnection) always starts both connections afresh.
  teardownPcs();

  const before = app.participants;
  app.participants = new Map();
  for (const p of msg.participants || []) {
    if (p && p.id && p.id !== app.participantId) app.participants.set(p.id, normalizeParticipant(p));
  }
  app.unpublished.clear();

  if (!app.view) {
    removeEndScreens();
    closeLobby();
    app.view = new RoomView({
      title: roomTitle,
      canPublish: app.role !== 'viewer',
      canShareScreen: screenShareSupported(),
      actions: {
        mic: () => toggleSource('microphone'),
        cam: () => toggleSource('camera'),
        screen: toggleScreen,
        leave,
        chat: () => setSideOpen(!app.sideOpen, { focus: true }),
      },
    });
    app.view.mount($('main'));
    app.side = new SidePanel({
      isHost: app.role === 'host',
      selfId: app.participantId,
      actions: {
        chat: (text) => send({ type: 'chat', text }),
        upload: uploadDocument,
        download: downloadDocument,
        admit: (id) => send({ type: 'admit', participant_id: id }),
        decline: (id) => send({ type: 'decline', participant_id: id }),
        close: () => setSideOpen(false, { focus: true }),
      },
    });
    app.side.mount($('main'), app.view.lobbySlot);
    // Beside the videos where there is room for it; on a phone behind the chat button.
    setSideOpen(window.matchMedia(SIDE_BESIDE).matches);
    if ((msg.room ?? app.claims.room ?? '').startsWith('council-')) {
      app.council = new CouncilPanel({ send, selfId: app.participantId, role: app.role });
      app.council.mount($('main'));
    }
    for (const m of app.chat) app.side.addChat(m);
    for (const d of app.documents) app.side.addDocument(d);
    app.side.setLobby(app.lobby);
  }
  loadHistory();
  const view = app.view;
  renderSelf();
  view.setLocalScreen(app.local.screen);
  for (const [id, p] of before) {
    if (app.participants.has(id)) continue;
    view.removeParticipant(id);
    if (wasReconnecting) announce(t('announce.left', { name: p.name }));
  }
  for (const [id, p] of app.participants) {
    view.upsertParticipant(p);
    if (wasReconnecting && !before.has(id)) announce(t('announce.joined', { name: p.name }));
  }
  view.setActiveSpeaker(null);
  updateNotice();

  app.iceServers = msg.ice_servers || [];
  createPcs();
  setState('in-room');
  const pub = app.publisher;
  // Mute states refer to published sources: send them once the publish offer went through.
  pub?.ready.then(() => {
    if (app.publisher === pub) syncMute(you.muted || {});
  });
  syncTracks();
  if (firstEntry) view.focusTitle();
  else if (wasReconnecting) announce(t('announce.reconnected'));
}

function createPcs() {
  const rtcConfig = iceConfig(app.ladder, app.iceServers);
  const sub = new Subscriber({
    rtcConfig,
    send,
    onFailed: (e) => peerFailed(sub, e),
    onConnected: pathReady,
    onChange: syncTracks,
  });
  app.subscriber = sub;
  if (app.role === 'viewer') return;
  const pub = new Publisher({ rtcConfig, send, onFailed: (e) => peerFailed(pub, e), onConnected: pathReady });
  app.publisher = pub;
  pub.publishAll(SOURCES.filter((s) => app.local[s]).map((s) => [s, app.local[s]]));
}

function teardownPcs() {
  app.publisher?.close();
  app.subscriber?.close();
  app.publisher = null;
  app.subscriber = null;
}

/**
 * ICE/DTLS failure, 10 s disconnected, or no answer on a current connection: climb the ladder
 * (shared/ice.js) and rejoin over a new websocket, whose `welcome` makes both connections afresh with
 * the next step's ICE policy. The status line says what is being tried.
 */
function peerFailed(peer, error) {
  if (peer !== app.publisher && peer !== app.subscriber) return;
  if (app.state !== 'in-room') return;
  // Beside the server's message types: why this page rejoined (a failed test prints the list).
  app.events.push(`failed: ${error?.message ?? peer.name}`);
  const next = nextStep(app.ladder, app.iceServers);
  if (next !== app.ladder) {
    app.ladder = next;
    app.ladderNote = STEPS[next] === 'relay' ? 'status.ladder.relay' : 'status.ladder.direct';
  }
  app.sig?.drop();
}

/** A connection is up: tell which path it took when it is not the direct UDP one. */
async function pathReady(peer) {
  const kind = pathKind(await selectedPath(peer.pc).catch(() => null));
  if (!kind || peer.closed || app.state !== 'in-room') return;
  app.path = kind;
  app.ladderNote = null;
  if (kind === 'tcp') setStatus('status.in-room.tcp');
  else if (kind.startsWith('relay')) setStatus('status.in-room.relay');
  else setStatus('status.in-room');
}

/** Tell the server our mute state where its view (from `welcome`) differs. */
function syncMute(serverMuted) {
  for (const source of ['microphone', 'camera']) {
    if (!app.local[source]) continue;
    if (!!serverMuted[source] !== app.muted[source]) {
      send({ type: 'mute', source, muted: app.muted[source] });
    }
  }
}

/** Show the remote tracks the subscribe connection receives, minus those announced as gone. */
function syncTracks() {
  if (!app.view) return;
  const list = app.subscriber
    ? app.subscriber.active().filter((x) => x.info
      && x.info.participant !== app.participantId
      && app.participants.has(x.info.participant)
      && !app.unpublished.has(x.info.id))
    : [];
  app.view.setRemoteTracks(list);
}

function onParticipantJoined(p) {
  if (!p || !p.id || p.id === app.participantId) return;
  const isNew = !app.participants.has(p.id);
  const np = normalizeParticipant(p);
  app.participants.set(p.id, np);
  for (const s of SOURCES) app.unpublished.delete(`${p.id}/${s}`);
  app.view?.upsertParticipant(np);
  updateNotice();
  if (isNew) announce(t('announce.joined', { name: np.name }));
  syncTracks();
}

function onParticipantLeft(id) {
  const p = app.participants.get(id);
  if (!p) return;
  app.participants.delete(id);
  for (const s of SOURCES) app.unpublished.add(`${id}/${s}`);
  app.view?.removeParticipant(id);
  updateNotice();
  announce(t('announce.left', { name: p.name }));
}

function onTrackPublished(track) {
  if (track.participant === app.participantId) return;
  app.unpublished.delete(track.id);
  const p = app.participants.get(track.participant);
  if (p && track.source === 'screen') announce(t('announce.screen', { name: p.name }));
  syncTracks();
}

function onMute(msg) {
  if (msg.participant_id === app.participantId) return;
  const p = app.participants.get(msg.participant_id);
  if (!p) return;
  p.muted[msg.source] = !!msg.muted;
  app.view?.setMuted(p.id, msg.source, !!msg.muted);
}

function onError(msg) {
  if (FATAL_ERRORS.has(msg.code)) {
    handleFatal({ code: msg.code, message: msg.message ?? null, closeCode: null });
    return;
  }
  console.warn('sportello: server error', msg.code, msg.message);
  const text = msg.message || '';
  showAlert(text || (() => t('error.generic')));
}

/** A fatal `error` (or close code): stop reconnecting, turn devices off, explain what to do. */
function handleFatal({ code: c, message, closeCode }) {
  if (app.state === 'error') return;
  app.sig?.stop();
  teardownPcs();
  stopLocal();
  destroyView();
  setState('error');
  if (message) showAlert(message);
  else if (closeCode in CLOSE_CODE_ERRORS) showAlert(() => t(`error.close.${closeCode}`));
  else showAlert(() => t('error.generic'));
  let helpKey = 'error.help.generic';
  if (c === 'token_not_yet_valid') helpKey = 'error.help.not_yet_valid';
  else if (c && (c.startsWith('token_') || c === 'wrong_room')) helpKey = 'error.help.token';
  else if (c === 'replaced') helpKey = 'error.help.replaced';
  else if (c === 'room_full') helpKey = 'error.help.room_full';
  else if (c === 'declined') helpKey = 'error.help.declined';
  else if (c && c.startsWith('appointment_')) helpKey = 'error.help.appointment';
  app.waiting = false;
  const lobby = $('lobby');
  if (lobby && !lobby.hidden) {
    app.meter?.detach();
    lobby.hidden = true;
  }
  const canRetry = ['replaced', 'room_full', 'too_large', 'token_not_yet_valid'].includes(c);
  showErrorScreen({ message: null, helpKey, onRejoin: canRetry ? rejoin : null });
}

// ---------------------------------------------------------------------------------------------
// Controls

function selfMuted() {
  if (app.role === 'viewer') return {};
  return {
    microphone: !app.local.microphone || app.muted.microphone,
    camera: !app.local.camera || app.muted.camera,
  };
}

function renderSelf() {
  const view = app.view;
  if (!view || !app.participantId) return;
  view.upsertParticipant(
    { id: app.participantId, name: app.selfName, role: app.role, muted: selfMuted() },
    { self: true },
  );
  view.setLocalCamera(app.local.camera);
  const m = selfMuted();
  view.setControls({ mic: !m.microphone, cam: !m.camera, screen: !!app.local.screen });
}

/** Microphone/camera button: mute or unmute; if we have no such device yet, ask for it now. */
async function toggleSource(source) {
  const track = app.local[source];
  if (track && track.readyState !== 'ended') {
    app.muted[source] = !app.muted[source];
    track.enabled = !app.muted[source];
    send({ type: 'mute', source, muted: app.muted[source] });
    renderSelf();
    return;
  }
  const audio = source === 'microphone';
  const r = await acquireMedia({
    audio, video: !audio,
    audioDeviceId: app.deviceIds.microphone, videoDeviceId: app.deviceIds.camera,
  });
  const nt = audio ? r.audio : r.video;
  if (!nt) {
    showAlert(() => t(audio ? 'media.error.mic' : 'media.error.cam'));
    return;
  }
  if (app.state === 'left' || app.state === 'error') {
    nt.stop();
    return;
  }
  app.muted[source] = false;
  setLocal(source, nt);
  app.publisher?.setTrack(source, nt);
  send({ type: 'mute', source, muted: false });
  renderSelf();
}

async function toggleScreen() {
  if (app.local.screen) {
    stopScreen();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 15, max: 30 } },
      audio: false,
    });
  } catch (e) {
    // The user closing the picker is not an error.
    if (e.name !== 'NotAllowedError' && e.name !== 'AbortError') showAlert(() => t('screen.error'));
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (!track) return;
  if (!app.view || app.local.screen) {
    track.stop();
    return;
  }
  if ('contentHint' in track) track.contentHint = 'detail';
  setLocal('screen', track); // the browser's own "stop sharing" ends the track → stopScreen
  app.view.setLocalScreen(track);
  app.publisher?.setTrack('screen', track);
  renderSelf();
}

function stopScreen() {
  const track = app.local.screen;
  if (!track) return;
  app.local.screen = null;
  track.stop();
  app.publisher?.removeSource('screen');
  app.view?.setLocalScreen(null);
  renderSelf();
}

function leave() {
  if (app.sig) app.sig.leave();
  else finishLeave();
}

function stopLocal() {
  for (const s of SOURCES) {
    app.local[s]?.stop();
    app.local[s] = null;
  }
}

function destroyView() {
  app.view?.destroy();
  app.view = null;
  app.side?.destroy();
  app.side = null;
  app.unread = 0;
  delete document.body.dataset.side;
  app.participants.clear();
  app.unpublished.clear();
}

function finishLeave() {
  if (app.state === 'left') return;
  teardownPcs();
  stopLocal();
  destroyView();
  setState('left');
  clearAlert();
  showLeftScreen(rejoin);
}

/** "Rientra": get the devices again (they were turned off) and join with the same token. */
async function rejoin() {
  if (app.state !== 'left' && app.state !== 'error') return;
  removeEndScreens();
  clearAlert();
  setState('joining');
  if (app.role !== 'viewer' && mediaSupported()) {
    const r = await acquireMedia({
      audioDeviceId: app.deviceIds.microphone, videoDeviceId: app.deviceIds.camera,
    });
    setLocal('microphone', r.audio);
    setLocal('camera', r.video);
  }
  startSignaling();
}

// ---------------------------------------------------------------------------------------------
// Waiting room (hosts), chat and documents

function onLobby(list) {
  const before = new Set(app.lobby.map((w) => w.id));
  app.lobby = list.filter((w) => w && w.id);
  for (const w of app.lobby) if (!before.has(w.id)) announce(t('announce.waiting', { name: w.name || w.id }));
  app.side?.setLobby(app.lobby);
}

/** `live`: relayed now (not history), so it counts as unread while the panel is closed. */
function addChat(msg, live = false) {
  if (!msg || !msg.id || app.chat.some((m) => m.id === msg.id)) return;
  const m = { id: msg.id, participant_id: msg.participant_id, name: msg.name, text: msg.text, at: msg.at };
  app.chat.push(m);
  app.side?.addChat(m);
  if (live && app.side && !app.sideOpen && m.participant_id !== app.participantId) {
    app.unread += 1;
    app.view?.setChatState({ open: false, unread: app.unread });
    announce(t('announce.chat', { name: m.name }));
  }
}

/** Where the chat panel sits beside the videos (style.css uses the same width). */
const SIDE_BESIDE = '(min-width: 48rem)';

/** Show or hide the chat/documents panel; opening it clears the unread count. */
function setSideOpen(open, { focus = false } = {}) {
  app.sideOpen = open;
  if (open) app.unread = 0;
  document.body.dataset.side = open ? 'open' : 'closed';
  app.side?.setOpen(open, { focus });
  app.view?.setChatState({ open, unread: app.unread });
  if (!open && focus) $('btn-chat')?.focus();
}

/** Someone let in by a host, alone with nobody who can receive them: say that the official is coming. */
function updateNotice() {
  const hostHere = [...app.participants.values()].some((p) => p.role === 'host');
  const alone = app.role !== 'host' && app.claims?.wait && !hostHere;
  app.view?.setNotice(alone ? 'room.alone' : null);
}

function addDocument(msg, live) {
  if (!msg || !msg.id || app.documents.some((d) => d.id === msg.id)) return;
  const d = {
    id: msg.id, name: msg.name, size: msg.size, content_type: msg.content_type,
    participant_id: msg.participant_id, uploader_name: msg.uploader_name, at: msg.at,
  };
  app.documents.push(d);
  app.side?.addDocument(d);
  if (live && d.participant_id !== app.participantId) {
    announce(t('announce.document', { name: d.uploader_name, file: d.name }));
  }
}

function apiUrl(path) {
  return `/api/rooms/${encodeURIComponent(app.claims.room)}/${path}`;
}

/** Chat and documents shared before we came in (or while we were away); each one on its own. */
async function loadHistory() {
  const quiet = (what) => (e) => {
    console.warn(`sportello: ${what}`, e);
    return null;
  };
  const [chat, docs] = await Promise.all([
    api(apiUrl('chat'), { token: app.token }).catch(quiet('chat history')),
    api(apiUrl('documents'), { token: app.token }).catch(quiet('documents')),
  ]);
  if (chat) {
    const known = app.chat.slice();
    app.chat.length = 0;
    for (const m of chat.messages || []) addChat(m);
    for (const m of known) addChat(m);
    app.chat.sort((a, b) => a.at - b.at);
    if (app.side) {
      app.side.chat = app.chat.slice();
      app.side.renderChat();
    }
  }
  if (docs) {
    for (const d of docs.documents || []) addDocument(d, false);
  }
}

async function uploadDocument(file) {
  app.side?.setDocStatus(t('docs.uploading', { name: file.name }));
  let doc;
  try {
    doc = await api(apiUrl('documents'), {
      method: 'POST', token: app.token, headers: { 'X-File-Name': encodeURIComponent(file.name) },
      raw: file,
    });
  } catch (e) {
    console.warn('sportello: upload', e);
    app.side?.setDocStatus('');
    // The server's reason (file too large, type not allowed) in the page's language; else ours,
    // re-said on a language switch.
    showAlert(e.body?.error?.message || (() => t('docs.error')));
    return;
  }
  addDocument(doc, false);
  app.side?.setDocStatus(t('docs.uploaded', { name: doc.name }));
}

/** Fetch with the token (a plain link could not carry it), then save through a blob URL. */
async function downloadDocument(doc) {
  try {
    const blob = await api(apiUrl(`documents/${encodeURIComponent(doc.id)}`), { token: app.token, as: 'blob' });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: doc.name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    console.warn('sportello: download', e);
    showAlert(() => t('docs.error.download'));
  }
}

// ---------------------------------------------------------------------------------------------

window.addEventListener('pagehide', () => {
  // Closing the tab is leaving: the others need not wait for the reconnection grace period.
  if (app.sig && ['in-room', 'reconnecting', 'waiting'].includes(app.state)) app.sig.leave();
});

initPage();
initChrome();
document.body.dataset.state = app.state;
initJoin();
