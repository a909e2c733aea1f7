// /live/{id}: the public live stream of a council session, for anyone, without an account.
//
// Polls `/api/live/{id}` every 2 s (title, status, agenda item, speaker) and, while the session is
// live or suspended, plays the program feed over WHEP (docs/council.md, "Live stream"): one
// receive-only peer connection, the complete offer POSTed as application/sdp (no trickle: the SFU
// is ICE-lite and its candidate is in the answer), reconnection with backoff, DELETE on pagehide.
// The picture plays muted (autoplay policy) until «Attiva audio». Test hooks: `window.sportello.live`.

import { addStrings, getLang, initPage, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import '../citizen/services.js';
import { iceConfig, linkIceServers, nextStep, selectedPath } from '../shared/ice.js';

addStrings({
  it: {
    'heading': 'Diretta della seduta',
    'doctitle': '{title} — diretta — {municipality}',
    'player': 'Video della seduta',
    'video': 'Video della seduta in diretta',
    'body.consiglio': 'Consiglio comunale',
    'body.giunta': 'Giunta comunale',
    'scheduled': 'La seduta inizierà a breve.',
    'scheduled.at': 'La seduta inizierà a breve: è convocata per {when}.',
    'scheduled.later': 'La seduta è convocata per {when}. La diretta comincerà qui all\'inizio della seduta.',
    'interrupted': 'La diretta è interrotta: la seduta non è in corso in questo momento. Se riprende, la vedrai qui.',
    'ended': 'La seduta è terminata.',
    'archive': 'Vai alla registrazione nell\'archivio',
    'suspended': 'Trasmissione sospesa',
    'suspended.note': 'Il presidente ha sospeso la diretta per questo punto. Riprenderà a breve.',
    'live.now': 'La seduta è in diretta.',
    'live.suspended': 'La trasmissione è sospesa per questo punto.',
    'connecting': 'Collegamento alla diretta…',
    'reconnecting': 'Collegamento perso: nuovo tentativo tra {s} secondi…',
    'full': 'Troppi spettatori collegati in questo momento: nuovo tentativo tra {s} secondi…',
    'unmute': 'Attiva audio',
    'mute': 'Disattiva audio',
    'item': 'Punto in discussione',
    'speaker': 'Interviene',
    'none': '—',
    'notfound': 'Seduta non trovata: controlla l\'indirizzo della pagina.',
    'offline': 'Il servizio non risponde: nuovo tentativo in corso…',
    'unsupported': 'Questo browser non può riprodurre la diretta (serve un browser aggiornato con WebRTC).',
    'note': 'La diretta è pubblica e non richiede registrazione. Questa pagina non usa cookie né strumenti di tracciamento.',
  },
  en: {
    'heading': 'Live session',
    'doctitle': '{title} — live — {municipality}',
    'player': 'Session video',
    'video': 'Live video of the session',
    'body.consiglio': 'Town council',
    'body.giunta': 'Town executive (Giunta)',
    'scheduled': 'The session will start shortly.',
    'scheduled.at': 'The session will start shortly: it is called for {when}.',
    'scheduled.later': 'The session is called for {when}. The live stream will start here when the session begins.',
    'interrupted': 'The live stream is interrupted: the session is not sitting right now. If it resumes, you will see it here.',
    'ended': 'The session has ended.',
    'archive': 'Go to the recording in the archive',
    'suspended': 'Broadcast suspended',
    'suspended.note': 'The chair suspended the live stream for this item. It will resume shortly.',
    'live.now': 'The session is live.',
    'live.suspended': 'The broadcast is suspended for this item.',
    'connecting': 'Connecting to the live stream…',
    'reconnecting': 'Connection lost: trying again in {s} seconds…',
    'full': 'Too many viewers right now: trying again in {s} seconds…',
    'unmute': 'Unmute',
    'mute': 'Mute',
    'item': 'Item under discussion',
    'speaker': 'Speaking',
    'none': '—',
    'notfound': 'Session not found: check the page address.',
    'offline': 'The service does not answer: trying again…',
    'unsupported': 'This browser cannot play the live stream (an up-to-date browser with WebRTC is needed).',
    'note': 'The live stream is public and needs no registration. This page uses no cookies and no tracking.',
  },
});

const POLL_MS = 2000;
const ICE_GATHER_MS = 3000;
const BACKOFF_MAX_S = 30;
/** A connection not up this long after the answer counts as failed: the next attempt climbs the ladder. */
const CONNECT_MS = 10000;
const AUDIO_SLOTS = 2;

const $ = (id) => document.getElementById(id);
const sessionId = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] ?? '');

const view = {
  /** The last `/api/live/{id}` answer, or null. */
  info: null,
  /** 'loading' | 'notfound' | 'offline' | 'scheduled' | 'live' | 'suspended' | 'interrupted' | 'ended' */
  status: 'loading',
  muted: true,
  /** The text last put in the caption (announced only when it changes). */
  caption: '',
  message: null,
};

// --- WHEP ---------------------------------------------------------------------------------------

const player = {
  /** @type {RTCPeerConnection|null} */
  pc: null,
  /** The viewer's WHEP session URL (Location). */
  resource: null,
  connecting: false,
  attempt: 0,
  retryTimer: null,
  disconnectTimer: null,
  connectTimer: null,
  /** TURN servers from the endpoint's `Link` headers (null: not asked yet), and the ladder's step. */
  iceServers: null,
  ladder: 0,
  audios: [],
};

function wanted() {
  return view.status === 'live' || view.status === 'suspended';
}

function setWaiting(text) {
  $('live-waiting').hidden = !text;
  $('live-waiting-text').textContent = text || '';
}

/** Ends the WHEP session (a direct fetch, as the WHEP offer in connect: see there). */
function deleteResource(keepalive = false) {
  const url = player.resource;
  player.resource = null;
  if (!url) return;
  fetch(url, { method: 'DELETE', keepalive }).catch(() => { /* gone anyway */ });
}

function teardown() {
  clearTimeout(player.disconnectTimer);
  clearTimeout(player.connectTimer);
  if (player.pc) {
    player.pc.onconnectionstatechange = null;
    player.pc.ontrack = null;
    player.pc.close();
    player.pc = null;
  }
  deleteResource();
  $('live-video').srcObject = null;
  for (const a of player.audios) a.srcObject = null;
}

function stop() {
  clearTimeout(player.retryTimer);
  player.retryTimer = null;
  player.attempt = 0;
  teardown();
  setWaiting(null);
}

/** Tries again after `seconds` (exponential backoff from 1 s when not given). */
function retry(seconds, messageKey = 'reconnecting') {
  teardown();
  if (!wanted()) return;
  const s = seconds ?? Math.min(BACKOFF_MAX_S, 2 ** player.attempt);
  player.attempt += 1;
  setWaiting(t(messageKey, { s }));
  clearTimeout(player.retryTimer);
  player.retryTimer = setTimeout(() => { player.retryTimer = null; connect(); }, s * 1000);
}

/** The connection failed or never came up: the next attempt takes the ladder's next step. */
function climb() {
  player.ladder = nextStep(player.ladder, player.iceServers || []);
  retry();
}

/** The TURN servers the WHEP endpoint hands out before an offer (`OPTIONS`, `Link` headers). */
async function fetchIceServers() {
  try {
    const response = await fetch(`/api/live/${encodeURIComponent(sessionId)}/whep`, { method: 'OPTIONS' });
    return linkIceServers(response.headers.get('Link'));
  } catch {
    return []; // no TURN then: direct paths only
  }
}

function audioElement(i) {
  if (!player.audios[i]) {
    const a = document.createElement('audio');
    a.autoplay = true;
    a.muted = view.muted;
    a.hidden = true;
    document.body.append(a);
    player.audios[i] = a;
  }
  return player.audios[i];
}

function waitForIce(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener('icegatheringstatechange', check); clearTimeout(timer); resolve(); };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(done, ICE_GATHER_MS);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

async function connect() {
  if (player.pc || player.connecting || !wanted()) return;
  if (typeof RTCPeerConnection === 'undefined') {
    showMessage(t('unsupported'), true);
    return;
  }
  player.connecting = true;
  setWaiting(t('connecting'));
  let pc;
  try {
    if (player.iceServers === null) player.iceServers = await fetchIceServers();
    pc = new RTCPeerConnection(iceConfig(player.ladder, player.iceServers));
    player.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    for (let i = 0; i < AUDIO_SLOTS; i++) pc.addTransceiver('audio', { direction: 'recvonly' });
    let audioIndex = 0;
    pc.ontrack = (e) => {
      if (e.track.kind === 'video') {
        $('live-video').srcObject = new MediaStream([e.track]);
        $('live-video').play().catch(() => { /* muted autoplay normally allowed */ });
      } else {
        // One element per audio slot: media elements may play only the first audio track of a stream.
        const a = audioElement(audioIndex++);
        a.srcObject = new MediaStream([e.track]);
        a.play().catch(() => { /* waits for «Attiva audio» */ });
      }
    };
    pc.onconnectionstatechange = () => onConnectionState(pc);
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc);
    if (player.pc !== pc) return;
    // WHEP is a media protocol exchange, not a JSON call: an SDP offer in, an SDP answer and the
    // session's Location (and Retry-After) out. So it is a direct fetch, not shared/api.js; the
    // same for the DELETE of that Location (deleteResource), which may need `keepalive`.
    const response = await fetch(`/api/live/${encodeURIComponent(sessionId)}/whep`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', 'Accept-Language': getLang() },
      body: pc.localDescription.sdp,
    });
    if (player.pc !== pc) {
      if (response.status === 201) fetch(response.headers.get('Location'), { method: 'DELETE' }).catch(() => {});
      return;
    }
    if (response.status !== 201) {
      const after = Number(response.headers.get('Retry-After'));
      if (response.status === 410) { teardown(); setWaiting(null); poll(); return; }
      retry(Number.isFinite(after) && after > 0 ? after : undefined, response.status === 503 ? 'full' : 'reconnecting');
      return;
    }
    player.resource = response.headers.get('Location');
    // Fresh credentials for the next attempt (the ones in use may expire meanwhile).
    const servers = linkIceServers(response.headers.get('Link'));
    if (servers.length) player.iceServers = servers;
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    player.connectTimer = setTimeout(() => { if (player.pc === pc && pc.connectionState !== 'connected') climb(); }, CONNECT_MS);
  } catch (e) {
    console.warn('sportello: live', e);
    if (player.pc === pc) retry();
  } finally {
    player.connecting = false;
  }
}

function onConnectionState(pc) {
  if (player.pc !== pc) return;
  const state = pc.connectionState;
  clearTimeout(player.disconnectTimer);
  if (state === 'connected') {
    clearTimeout(player.connectTimer);
    player.attempt = 0;
    setWaiting(null);
  } else if (state === 'failed' || state === 'closed') {
    climb();
  } else if (state === 'disconnected') {
    // Often recovers by itself; if not within 5 s, start again.
    player.disconnectTimer = setTimeout(() => { if (player.pc === pc && pc.connectionState !== 'connected') climb(); }, 5000);
  }
}

// --- the page -------------------------------------------------------------------------------------

function when(unix) {
  try {
    return new Intl.DateTimeFormat(getLang() === 'en' ? 'en-GB' : 'it-IT', {
      dateStyle: 'full', timeStyle: 'short', timeZone: 'Europe/Rome',
    }).format(new Date(unix * 1000));
  } catch {
    return new Date(unix * 1000).toLocaleString();
  }
}

function showMessage(text, error = false) {
  const box = $('live-status');
  if (box.textContent !== text) box.textContent = text;
  box.classList.toggle('is-error', error);
}

function render() {
  const info = view.info;
  if (info) {
    $('live-title').textContent = info.title;
    document.title = t('doctitle', { title: info.title });
    $('live-body').textContent = t(`body.${info.body}`);
  }
  const s = view.status;
  const playing = s === 'live' || s === 'suspended';
  $('live-player').hidden = !playing;
  $('live-slate').hidden = s !== 'suspended';
  $('live-archive').hidden = s !== 'ended';
  if (s === 'ended') $('live-archive-link').href = `/archivio/${encodeURIComponent(sessionId)}`;
  const messages = {
    loading: '',
    notfound: t('notfound'),
    offline: t('offline'),
    scheduled: !info ? t('scheduled')
      : t(info.starting_soon ? 'scheduled.at' : 'scheduled.later', { when: when(info.scheduled_at) }),
    interrupted: t('interrupted'),
    live: t('live.now'),
    suspended: t('live.suspended'),
    ended: t('ended'),
  };
  showMessage(messages[s] ?? '', s === 'notfound' || s === 'offline');
  const unmute = $('live-unmute');
  unmute.textContent = view.muted ? t('unmute') : t('mute');
  unmute.setAttribute('aria-pressed', String(!view.muted));
  // The caption changes only when the item or speaker does, so screen readers hear each change once.
  const item = info?.item || t('none');
  const speaker = info?.speaker || t('none');
  const caption = `${item}\u0000${speaker}`;
  if (caption !== view.caption) {
    view.caption = caption;
    $('live-item').textContent = item;
    $('live-speaker').textContent = speaker;
  }
}

async function poll() {
  // The server marks the state `no-store`: every poll reaches it.
  try {
    view.info = await api(`/api/live/${encodeURIComponent(sessionId)}`);
    view.status = view.info.status;
  } catch (e) {
    if (e.status === 404) {
      view.info = null;
      view.status = 'notfound';
    } else if (e.status) {
      view.status = 'offline';
    } else if (!player.pc) {
      // Keep playing what plays; only say the state endpoint is unreachable when nothing does.
      view.status = 'offline';
    }
  }
  render();
  if (wanted()) {
    if (!player.pc && !player.retryTimer) connect();
  } else if (view.status !== 'offline') {
    stop();
  }
}

function toggleAudio() {
  view.muted = !view.muted;
  $('live-video').muted = true; // the picture carries no sound: audio plays from the slot elements
  for (const a of player.audios) {
    a.muted = view.muted;
    if (!view.muted) a.play().catch(() => {});
  }
  render();
}

/** Mean colour of the current frame on a small canvas, `[r, g, b]`, or null without a picture. */
function averageColor() {
  const video = $('live-video');
  if (!video.videoWidth || !video.videoHeight) return null;
  const canvas = document.createElement('canvas');
  canvas.width = 16;
  canvas.height = 16;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, 16, 16);
  const data = ctx.getImageData(0, 0, 16, 16).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) {
    sum[0] += data[i];
    sum[1] += data[i + 1];
    sum[2] += data[i + 2];
  }
  const n = data.length / 4;
  return sum.map((v) => Math.round(v / n));
}

async function framesDecoded() {
  if (!player.pc) return 0;
  const stats = await player.pc.getStats();
  let frames = 0;
  stats.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded ?? 0; });
  return frames;
}

window.sportello = Object.assign(window.sportello ?? {}, {
  live: {
    status: () => view.status,
    connectionState: () => player.pc?.connectionState ?? 'none',
    framesDecoded,
    averageColor,
    resource: () => player.resource,
    /** The network path in use (shared/ice.js) and the ladder's step. */
    path: () => selectedPath(player.pc),
    ladder: () => player.ladder,
  },
});

if (document.body?.dataset.page === 'live') {
  initPage(render);
  $('live-unmute').addEventListener('click', toggleAudio);
  // Free the viewer's seat at once; `keepalive` lets the DELETE outlive the page.
  window.addEventListener('pagehide', () => deleteResource(true));
  // Back from the back/forward cache: the old session was deleted on pagehide; start afresh.
  window.addEventListener('pageshow', (e) => { if (e.persisted) { stop(); poll(); } });
  render();
  poll();
  setInterval(poll, POLL_MS);
}
