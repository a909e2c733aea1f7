// Websocket client for docs/signaling.md (protocol version 1): sends `join` on every connection,
// pings the server every 2 s once in (a server silent for 5 s is left for another: a frozen node),
// reconnects with backoff unless we left or the server said the failure is fatal: while the server
// cannot be reached (restarting, network gone) every 0.5 s, 1 s, then at most 2 s, so a restarted
// server has everyone back within seconds; a room that fails after the server answered is retried
// 0.5 s, 1 s, 2 s, … at most 10 s.

export const PROTOCOL_VERSION = 1;

/** Error codes after which the server closes the websocket and retrying cannot help. */
export const FATAL_ERRORS = new Set([
  'token_invalid', 'token_expired', 'token_not_yet_valid', 'wrong_room', 'replaced', 'room_full',
  'too_large', 'declined', 'appointment_cancelled', 'appointment_closed', 'appointment_not_found',
]);

/** Close codes the server uses for fatal errors (see the error table), with the error they stand for. */
export const CLOSE_CODE_ERRORS = {
  1009: 'too_large', 4001: 'token_invalid', 4003: 'wrong_room', 4004: 'appointment_closed',
  4009: 'replaced', 4013: 'declined', 4029: 'room_full',
};

/** How long a connection may take from `new WebSocket` to `welcome` before we try again. */
const JOIN_TIMEOUT_MS = 15000;
/** After `leave`, how long we wait for the server to close before closing ourselves. */
const LEAVE_CLOSE_MS = 2000;
/** Once in the room (or its waiting room), a `ping` this often; the server answers `pong`. */
const PING_EVERY_MS = 2000;
/**
 * Nothing from the server this long (not even a `pong`): it stands still (a frozen process, a
 * half-open connection) — drop the websocket and join again, through the balancer, elsewhere.
 */
const SILENT_MS = 5000;
/**
 * The backoff starts again from 0.5 s only once a connection has stayed up this long after `welcome`,
 * so that a room that fails right after every join (e.g. ICE blocked) is retried less and less often.
 */
const STABLE_MS = 10000;

/**
 * The wait before reconnection number `attempt` (0 first). `reached`: the last websocket opened, so
 * the server is up and something after it failed (slow down, up to 10 s); otherwise it was not
 * reached at all (a restart, a network change) and we try again at most 2 s apart, so that the room
 * is back at most 2 s after the server is. A random part (50–100 %) spreads the clients of a
 * restarted server, which all lost it at the same instant, instead of having them come back at once.
 */
export function backoffDelay(attempt, reached = true, random = Math.random) {
  const cap = reached ? 10000 : 2000;
  const full = Math.min(500 * 2 ** Math.min(attempt, 5), cap);
  return Math.round(full * (0.5 + random() / 2));
}

export class Signaling {
  /**
   * @param {object} o
   * @param {string} o.room
   * @param {string} o.token
   * @param {() => string} o.lang current UI language, sent as `lang` on every (re)connection
   * @param {(msg: object) => void} o.onMessage every server message, in order
   * @param {(info: {left?: boolean, fatal?: {code: string|null, closeCode: number, message: string|null},
   *          retryIn?: number}) => void} o.onDisconnect
   */
  constructor({ room, token, lang, onMessage, onDisconnect }) {
    this.room = room;
    this.token = token;
    this.lang = lang;
    this.onMessage = onMessage;
    this.onDisconnect = onDisconnect;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = null;
    /** Whether the last websocket opened (the server was there), for the backoff. */
    this.reached = true;
    this.stopped = true;
    this.leaving = false;
    this.fatalError = null;
    this._onOnline = () => {
      // The network came back: do not wait for the rest of the backoff.
      if (this.retryTimer !== null) {
        clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this._connect();
      }
    };
  }

  start() {
    this.stopped = false;
    this.leaving = false;
    this.fatalError = null;
    this.attempt = 0;
    window.addEventListener('online', this._onOnline);
    this._connect();
  }

  /** Stop for good: no reconnection, the socket is closed without `leave`. */
  stop() {
    this.stopped = true;
    window.removeEventListener('online', this._onOnline);
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws) this._detach(this.ws).close();
    this.ws = null;
  }

  /** Send one message (adds `v`). Returns false when there is no open websocket. */
  send(msg) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ v: PROTOCOL_VERSION, ...msg }));
    return true;
  }

  /** Send `leave`; `onDisconnect({left: true})` follows once the socket is closed. */
  leave() {
    this.leaving = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    if (!ws || !this.send({ type: 'leave' })) {
      this._finish({ left: true });
      return;
    }
    // The server closes with 1000; if it does not, close ourselves.
    setTimeout(() => {
      if (this.ws === ws) {
        this._detach(ws).close(1000);
        this._finish({ left: true });
      }
    }, LEAVE_CLOSE_MS);
  }

  /**
   * Drop the current websocket as a network loss would (no `leave`) and reconnect with backoff.
   * Used by the ICE-failure rejoin and by the test hook `dropConnection()`.
   */
  drop() {
    if (this.stopped || this.leaving) return;
    const ws = this.ws;
    if (ws) this._detach(ws).close();
    this.ws = null;
    this._lost(1006);
  }

  _connect() {
    this.retryTimer = null;
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${proto}//${location.host}/ws?room=${encodeURIComponent(this.room)}`
      + `&lang=${encodeURIComponent(this.lang())}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      console.warn('sportello: websocket', e);
      this._lost(1006);
      return;
    }
    this.ws = ws;
    this.reached = false;
    let welcomed = false;
    let heardAt = Date.now();
    let heartbeat = null;
    const beat = () => {
      if (this.ws !== ws) {
        clearInterval(heartbeat);
      } else if (Date.now() - heardAt > SILENT_MS) {
        console.warn('sportello: the server is silent, reconnecting');
        clearInterval(heartbeat);
        this.drop();
      } else {
        this.send({ type: 'ping' });
      }
    };
    const joinTimer = setTimeout(() => {
      if (this.ws === ws && !welcomed) {
        console.warn('sportello: no welcome in time, reconnecting');
        this.drop();
      }
    }, JOIN_TIMEOUT_MS);

    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.reached = true;
      this.send({ type: 'join', token: this.token });
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('sportello: frame is not JSON', ev.data);
        return;
      }
      if (!msg || typeof msg.type !== 'string') return;
      if (msg.v !== undefined && msg.v !== PROTOCOL_VERSION) {
        console.warn('sportello: ignoring message of protocol version', msg.v);
        return;
      }
      heardAt = Date.now();
      if (msg.type === 'pong') return; // the heartbeat's; nothing for the page
      if ((msg.type === 'waiting' || msg.type === 'welcome') && heartbeat === null) {
        heartbeat = setInterval(beat, PING_EVERY_MS);
      }
      if (msg.type === 'waiting') {
        // Held in the waiting room: the server answered, `welcome` follows when a host admits us.
        clearTimeout(joinTimer);
      } else if (msg.type === 'declined') {
        this.fatalError = { code: 'declined', message: msg.message ?? null };
      } else if (msg.type === 'welcome') {
        welcomed = true;
        clearTimeout(joinTimer);
        setTimeout(() => {
          if (this.ws === ws) this.attempt = 0;
        }, STABLE_MS);
      } else if (msg.type === 'error' && FATAL_ERRORS.has(msg.code)) {
        this.fatalError = { code: msg.code, message: msg.message ?? null };
      }
      this.onMessage(msg);
      // A server-side failure of our `join`: try again (with backoff) on a new connection.
      if (msg.type === 'error' && msg.code === 'internal' && !welcomed && this.ws === ws) this.drop();
    };
    ws.onerror = () => { /* a close event follows */ };
    ws.onclose = (ev) => {
      clearTimeout(joinTimer);
      clearInterval(heartbeat);
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.leaving) {
        this._finish({ left: true });
      } else if (this.fatalError || ev.code in CLOSE_CODE_ERRORS) {
        const fatal = {
          code: this.fatalError?.code ?? CLOSE_CODE_ERRORS[ev.code],
          message: this.fatalError?.message ?? null,
          closeCode: ev.code,
        };
        this._finish({ fatal });
      } else {
        this._lost(ev.code);
      }
    };
  }

  _lost(closeCode) {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt, this.reached);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this._connect(), delay);
    this.onDisconnect({ retryIn: delay, closeCode });
  }

  _finish(info) {
    const wasStopped = this.stopped;
    this.stop();
    if (!wasStopped) this.onDisconnect(info);
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    return ws;
  }
}
