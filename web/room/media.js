// Local devices and the two peer connections of docs/signaling.md:
// - `Publisher`: the browser offers; one sendonly transceiver per source (microphone, camera, screen).
// - `Subscriber`: the server offers; `tracks[].mid` says which remote track arrives on which m-line.
// Each negotiates one round at a time; a request made during a round runs again after it.

export const SOURCES = ['microphone', 'camera', 'screen'];

/** How long the publisher waits for the server's `answer` before giving up on the connection. */
const ANSWER_TIMEOUT_MS = 15000;
/** A connection that stays `disconnected` this long is treated like `failed`. */
const DISCONNECTED_GRACE_MS = 10000;

// ---------------------------------------------------------------------------------------------
// Devices

const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
const VIDEO_CONSTRAINTS = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

export function mediaSupported() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

export function screenShareSupported() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
}

function constraintsFor(kind, deviceId) {
  const base = kind === 'audio' ? AUDIO_CONSTRAINTS : VIDEO_CONSTRAINTS;
  return deviceId ? { ...base, deviceId: { exact: deviceId } } : { ...base };
}

/**
 * Ask for microphone and/or camera. When both are asked and one is missing, fall back to the other.
 * Returns `{audio, video, error}`: tracks or null; `error` is 'denied', 'none' or null.
 */
export async function acquireMedia({ audio = true, video = true, audioDeviceId, videoDeviceId } = {}) {
  const ask = async (a, v) => {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: a ? constraintsFor('audio', audioDeviceId) : false,
      video: v ? constraintsFor('video', videoDeviceId) : false,
    });
    return {
      audio: stream.getAudioTracks()[0] ?? null,
      video: stream.getVideoTracks()[0] ?? null,
      error: null,
    };
  };
  const denied = (e) => e && (e.name === 'NotAllowedError' || e.name === 'SecurityError');
  if (!mediaSupported()) return { audio: null, video: null, error: 'none' };
  try {
    return await ask(audio, video);
  } catch (e) {
    if (denied(e)) return { audio: null, video: null, error: 'denied' };
    if (!(audio && video)) return { audio: null, video: null, error: 'none' };
  }
  // One of the two is missing or busy: take what is there.
  for (const [a, v] of [[true, false], [false, true]]) {
    try {
      return await ask(a, v);
    } catch (e) {
      if (denied(e)) return { audio: null, video: null, error: 'denied' };
    }
  }
  return { audio: null, video: null, error: 'none' };
}

export async function listDevices() {
  const all = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: all.filter((d) => d.kind === 'videoinput'),
    microphones: all.filter((d) => d.kind === 'audioinput'),
  };
}

// ---------------------------------------------------------------------------------------------
// Microphone level meter (WebAudio AnalyserNode)

export class MicMeter {
  /** @param {HTMLElement} el element with role="meter"; its first child is the bar */
  constructor(el) {
    this.el = el;
    this.bar = el.querySelector('.meter-bar');
    this.ctx = null;
    this.timer = null;
    this.level = 0;
    this._resume = () => this.ctx?.resume().catch(() => {});
  }

  attach(track) {
    this.detach();
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!track || !Ctx) return;
    this.ctx = new Ctx();
    const src = this.ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = this.ctx.createAnalyser();
    analyser.fftSize = 1024;
    src.connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    // Browsers may start the context suspended until a user gesture.
    this._resume();
    document.addEventListener('pointerdown', this._resume);
    document.addEventListener('keydown', this._resume);
    this.timer = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      const rms = Math.sqrt(sum / buf.length);
      // -60 dBFS … 0 dBFS → 0 … 100, falling slowly so the bar is readable.
      const db = rms > 0 ? 20 * Math.log10(rms) : -100;
      const now = Math.max(0, Math.min(100, Math.round(((db + 60) / 60) * 100)));
      this.level = Math.max(now, Math.round(this.level * 0.8));
      this._render();
    }, 100);
  }

  _render() {
    if (this.bar) this.bar.style.width = `${this.level}%`;
    this.el.setAttribute('aria-valuenow', String(this.level));
  }

  detach() {
    clearInterval(this.timer);
    this.timer = null;
    document.removeEventListener('pointerdown', this._resume);
    document.removeEventListener('keydown', this._resume);
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
    this.level = 0;
    this._render();
  }
}

// ---------------------------------------------------------------------------------------------
// Peer connections

function candidateJson(c) {
  return { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex };
}

/** What both peer connections share: ICE trickle in both directions and failure detection. */
class PeerBase {
  constructor({ name, rtcConfig, send, onFailed, onConnected }) {
    this.name = name;
    this.send = send;
    this.onFailed = onFailed;
    this.onConnected = onConnected;
    this.closed = false;
    // `rtcConfig`: the ICE servers and policy of the ladder's current step (shared/ice.js).
    this.pc = new RTCPeerConnection({ iceServers: [], ...rtcConfig, bundlePolicy: 'max-bundle' });
    // Local candidates wait until our first SDP has been sent; remote ones until we have theirs.
    this.localReady = false;
    this.localCandidates = [];
    this.remoteCandidates = [];
    this.disconnectedTimer = null;
    this.pc.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate) return; // end of candidates: not sent
      const c = candidateJson(e.candidate);
      if (this.localReady) this._sendCandidate(c);
      else this.localCandidates.push(c);
    };
    this.pc.onconnectionstatechange = () => {
      const s = this.pc.connectionState;
      clearTimeout(this.disconnectedTimer);
      if (s === 'connected') {
        this.onConnected?.(this);
      } else if (s === 'failed') {
        this.fail(new Error(`${name} connection failed`));
      } else if (s === 'disconnected') {
        this.disconnectedTimer = setTimeout(() => {
          if (this.pc.connectionState === 'disconnected') {
            this.fail(new Error(`${name} connection disconnected for too long`));
          }
        }, DISCONNECTED_GRACE_MS);
      }
    };
  }

  _sendCandidate(c) {
    this.send({ type: 'candidate', pc: this.name, candidate: c });
  }

  /** Our SDP was sent: trickle the candidates gathered meanwhile. */
  _localSent() {
    this.localReady = true;
    for (const c of this.localCandidates.splice(0)) this._sendCandidate(c);
  }

  async _flushRemoteCandidates() {
    for (const c of this.remoteCandidates.splice(0)) {
      await this.pc.addIceCandidate(c).catch((e) => console.warn('sportello: candidate', e));
    }
  }

  /** A server candidate (`candidate: ""` means end of candidates and is ignored). */
  addRemoteCandidate(c) {
    if (this.closed || !c || !c.candidate) return;
    if (this.pc.remoteDescription) {
      this.pc.addIceCandidate(c).catch((e) => console.warn('sportello: candidate', e));
    } else {
      this.remoteCandidates.push(c);
    }
  }

  fail(err) {
    if (this.closed) return;
    console.warn('sportello:', err);
    this.onFailed(err);
  }

  close() {
    this.closed = true;
    clearTimeout(this.disconnectedTimer);
    this.pc.onicecandidate = null;
    this.pc.onconnectionstatechange = null;
    this.pc.ontrack = null;
    this.pc.close();
  }
}

/** Thrown when an offer cannot be sent because the websocket is down; the next welcome redoes all. */
class NotConnected extends Error {}

export class Publisher extends PeerBase {
  constructor(opts) {
    super({ ...opts, name: 'publish' });
    /** @type {Map<string, RTCRtpTransceiver>} source → transceiver */
    this.transceivers = new Map();
    this.inFlight = false;
    this.needed = false;
    this.pendingAnswer = null;
    /** Resolves once the first offer/answer round has completed. */
    this.ready = new Promise((resolve) => { this._setReady = resolve; });
  }

  /** Send every `[source, track]` pair of a fresh connection, in one negotiation. */
  publishAll(entries) {
    if (this.closed) return;
    for (const [source, track] of entries) {
      this.transceivers.set(source, this.pc.addTransceiver(track, { direction: 'sendonly' }));
    }
    if (entries.length) this.negotiate();
  }

  /** Start sending `track` as `source` (adding or reusing its transceiver) and renegotiate. */
  async setTrack(source, track) {
    if (this.closed) return;
    const t = this.transceivers.get(source);
    if (!t) {
      this.publishAll([[source, track]]);
      return;
    }
    await t.sender.replaceTrack(track);
    if (this.closed) return;
    t.direction = 'sendonly';
    this.negotiate();
  }

  /**
   * Stop sending `source` and renegotiate without it. The transceiver stays (inactive) and is reused
   * if the source comes back, so its mid does not change.
   */
  removeSource(source) {
    if (this.closed) return;
    const t = this.transceivers.get(source);
    if (!t || !t.sender.track) return;
    this.pc.removeTrack(t.sender);
    this.negotiate();
  }

  /** `tracks` of the publish offer: every sending m-line and its source. */
  trackList() {
    const out = [];
    for (const [source, t] of this.transceivers) {
      if (t.mid !== null && t.sender.track && (t.direction === 'sendonly' || t.direction === 'sendrecv')) {
        out.push({ mid: t.mid, source });
      }
    }
    return out;
  }

  negotiate() {
    this.needed = true;
    if (!this.inFlight) this._run();
  }

  async _run() {
    this.inFlight = true;
    try {
      while (this.needed && !this.closed) {
        this.needed = false;
        await this._round();
      }
    } catch (e) {
      if (e instanceof NotConnected) {
        this.needed = false;
      } else {
        this.fail(e);
      }
    } finally {
      this.inFlight = false;
    }
  }

  async _round() {
    const offer = await this.pc.createOffer();
    if (this.closed) return;
    await this.pc.setLocalDescription(offer);
    if (this.closed) return;
    const answer = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer to the publish offer')), ANSWER_TIMEOUT_MS);
      this.pendingAnswer = {
        resolve: (sdp) => { clearTimeout(timer); resolve(sdp); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      };
    });
    answer.catch(() => {}); // handled below; avoid an unhandled rejection if we throw first
    const sent = this.send({
      type: 'offer', pc: 'publish', sdp: this.pc.localDescription.sdp, tracks: this.trackList(),
    });
    if (!sent) {
      this.pendingAnswer = null;
      await this.pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
      throw new NotConnected('websocket down');
    }
    this._localSent();
    let sdp;
    try {
      sdp = await answer;
    } finally {
      this.pendingAnswer = null;
    }
    if (this.closed) return;
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    await this._flushRemoteCandidates();
    this._setReady();
  }

  handleAnswer(sdp) {
    if (!this.pendingAnswer) {
      console.warn('sportello: publish answer without an offer');
      return;
    }
    this.pendingAnswer.resolve(sdp);
  }

  close() {
    if (this.pendingAnswer) this.pendingAnswer.reject(new Error('closed'));
    super.close();
  }
}

export class Subscriber extends PeerBase {
  /**
   * @param {object} opts
   * @param {() => void} opts.onChange the set of active remote tracks may have changed
   */
  constructor(opts) {
    super({ ...opts, name: 'subscribe' });
    this.onChange = opts.onChange;
    /** @type {Map<string, object>} mid → Track, from the last offer */
    this.mapping = new Map();
    this.chain = Promise.resolve();
    this.pc.ontrack = () => this.onChange();
  }

  /** A server `offer`; offers are applied strictly in order. */
  handleOffer(msg) {
    this.chain = this.chain
      .then(() => this._applyOffer(msg))
      .catch((e) => this.fail(e));
  }

  async _applyOffer(msg) {
    if (this.closed) return;
    // Set before setRemoteDescription: `track` events fire during it.
    this.mapping = new Map((msg.tracks || []).map((x) => [String(x.mid), x.track]));
    await this.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    await this._flushRemoteCandidates();
    const answer = await this.pc.createAnswer();
    if (this.closed) return;
    await this.pc.setLocalDescription(answer);
    if (this.closed) return;
    // If the websocket is down the answer is lost, and so is this connection: the next welcome
    // replaces it.
    this.send({ type: 'answer', pc: 'subscribe', sdp: this.pc.localDescription.sdp });
    this._localSent();
    this.onChange();
  }

  /** Remote tracks currently received: `[{info: Track, track: MediaStreamTrack, mid}]`. */
  active() {
    const out = [];
    if (this.closed) return out;
    for (const t of this.pc.getTransceivers()) {
      if (t.mid === null) continue;
      const info = this.mapping.get(t.mid);
      const dir = t.currentDirection;
      if (info && (dir === 'recvonly' || dir === 'sendrecv')) {
        out.push({ info, track: t.receiver.track, mid: t.mid });
      }
    }
    return out;
  }

  /** `inbound-rtp` statistics mapped to our track ids. */
  async inboundStats() {
    if (this.closed) return [];
    const byTrackIdentifier = new Map();
    for (const t of this.pc.getTransceivers()) {
      if (t.mid !== null) byTrackIdentifier.set(t.receiver.track.id, t.mid);
    }
    const report = await this.pc.getStats();
    const best = new Map();
    for (const s of report.values()) {
      if (s.type !== 'inbound-rtp') continue;
      const mid = s.mid ?? byTrackIdentifier.get(s.trackIdentifier);
      const info = mid !== undefined ? this.mapping.get(String(mid)) : undefined;
      if (!info) continue;
      const prev = best.get(info.id);
      // An m-line reused for a new SSRC keeps the old entry: report the most recent one.
      if (prev && (prev.s.lastPacketReceivedTimestamp ?? 0) > (s.lastPacketReceivedTimestamp ?? 0)) continue;
      best.set(info.id, { s, info });
    }
    return [...best.values()].map(({ s, info }) => {
      // The SFU's sender reports for this stream, as the browser took them (its lip sync needs them).
      const remote = s.remoteId ? report.get(s.remoteId) : undefined;
      return {
        trackId: info.id,
        participantId: info.participant,
        source: info.source,
        kind: info.kind ?? s.kind,
        framesDecoded: s.framesDecoded ?? 0,
        packetsReceived: s.packetsReceived ?? 0,
        packetsLost: s.packetsLost ?? 0,
        bytesReceived: s.bytesReceived ?? 0,
        senderReports: remote?.reportsSent ?? 0,
        remotePacketsSent: remote?.packetsSent ?? 0,
      };
    });
  }
}
