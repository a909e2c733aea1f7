// The pre-join network check: three throwaway connections to the SFU, in parallel, each allowed one
// path — plain UDP, ICE-TCP, and the TURN relay (over TLS when the server has a `turns:` one) —
// tell what this network lets through. `classify` turns the results into the verdict the lobby
// shows and the ICE ladder's starting step (shared/ice.js). Server side: `/api/network-check`
// (server/src/api/network_check.rs); documented in docs/signaling.md, "Network check".

import { iceConfig, relayServers, selectedPath, pathKind } from '../shared/ice.js';

/** How long a probe may take to connect once it has the answer. */
export const CONNECT_TIMEOUT_MS = 8000;
/** How long a probe gathers before offering what it has (an unreachable TURN server never ends it). */
const GATHER_TIMEOUT_MS = 4000;
/** How long a connected probe stays up so that its round trips can be read. */
const SAMPLE_MS = 1500;
/** A round trip (ms) and a STUN loss ratio from which the connection is called slow. */
export const SLOW_RTT_MS = 300;
export const SLOW_LOSS = 0.05;
/** STUN requests needed before their losses say anything. */
const MIN_REQUESTS_FOR_LOSS = 10;

export const PROBES = ['udp', 'tcp', 'relay'];

/**
 * The verdict of a check, pure. `results` maps each of `udp`, `tcp`, `relay` to
 * `{ ok: boolean, available?: false, rtt?: ms|null, loss?: ratio|null }` (`available: false`: the
 * server offers no such path — no ICE-TCP listener, no TURN). Returns
 * `{ verdict: 'ok'|'fallback'|'relay'|'none', slow, rtt, loss, code }`: `ok` when UDP connects,
 * `fallback` when only TCP (or TCP and the relay) does, `relay` when only the relay does; `rtt` and
 * `loss` are those of the path the room would take; `code` is short enough to read on the phone,
 * e.g. `U1-T0-R1-120` (each path 1 ok, 0 failed, x not offered by the server; then the round trip
 * in ms, and `-L7` the STUN loss in % when it counts towards "slow").
 */
export function classify(results) {
  const r = (name) => results?.[name] || { ok: false };
  const [udp, tcp, relay] = PROBES.map(r);
  let verdict = 'none';
  let used = null;
  if (udp.ok) [verdict, used] = ['ok', udp];
  else if (tcp.ok) [verdict, used] = ['fallback', tcp];
  else if (relay.ok) [verdict, used] = ['relay', relay];
  const rtt = used && Number.isFinite(used.rtt) ? Math.round(used.rtt) : null;
  const loss = used && Number.isFinite(used.loss) ? used.loss : null;
  const slowRtt = rtt !== null && rtt >= SLOW_RTT_MS;
  const slowLoss = loss !== null && loss >= SLOW_LOSS;
  const flag = (x) => (x.available === false ? 'x' : x.ok ? '1' : '0');
  let code = `U${flag(udp)}-T${flag(tcp)}-R${flag(relay)}`;
  if (rtt !== null) code += `-${rtt}`;
  if (slowLoss) code += `-L${Math.round(loss * 100)}`;
  return { verdict, slow: slowRtt || slowLoss, rtt, loss, code };
}

/** The TURN host the IT office must let through on 443 (the first `turns:` URL's), or null. */
export function relayHost(servers) {
  for (const s of relayServers(servers)) {
    for (const url of [].concat(s.urls || [])) {
      const m = /^turns?:([^:?]+)/i.exec(url);
      if (m) return m[1];
    }
  }
  return null;
}

/** The answer with only the SFU's candidates of `protocol` (`udp`, `tcp`), or as it is (null). */
export function onlyCandidates(sdp, protocol) {
  if (!protocol) return sdp;
  return sdp
    .split(/\r\n/)
    .filter((line) => {
      const m = /^a=candidate:\S+ \d+ (\S+) /i.exec(line);
      return !m || m[1].toLowerCase() === protocol;
    })
    .join('\r\n');
}

function hasCandidate(sdp, protocol) {
  return sdp.split(/\r\n/).some((l) => new RegExp(`^a=candidate:\\S+ \\d+ ${protocol} `, 'i').test(l));
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Resolves when gathering is complete, or after `ms` with what was gathered so far. */
function gathered(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/** true once `connected` (ICE and DTLS), false when failed or after `ms`. */
function connected(pc, ms) {
  return new Promise((resolve) => {
    const check = () => {
      if (pc.connectionState === 'connected') done(true);
      else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') done(false);
    };
    const timer = setTimeout(() => done(false), ms);
    function done(ok) {
      clearTimeout(timer);
      pc.removeEventListener('connectionstatechange', check);
      resolve(ok);
    }
    pc.addEventListener('connectionstatechange', check);
    check();
  });
}

/** STUN requests lost on the selected pair, as a ratio, when enough were sent to tell. */
async function stunLoss(pc) {
  const report = await pc.getStats();
  for (const s of report.values()) {
    if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
    const pair = report.get(s.selectedCandidatePairId);
    if (!pair || !(pair.requestsSent >= MIN_REQUESTS_FOR_LOSS)) return null;
    return Math.max(0, pair.requestsSent - (pair.responsesReceived || 0)) / pair.requestsSent;
  }
  return null;
}

/**
 * One probe: a fresh connection with one receive-only audio m-line, allowed only `kind`'s path.
 * Returns `{ ok, available, rtt, loss, path }`.
 */
async function probe(kind, check, post) {
  let config = { iceServers: [] };
  if (kind === 'relay') {
    config = iceConfig(1, check.ice_servers);
    if (config.iceTransportPolicy !== 'relay') return { ok: false, available: false };
  }
  const pc = new RTCPeerConnection(config);
  try {
    pc.addTransceiver('audio', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, GATHER_TIMEOUT_MS);
    const offer = pc.localDescription.sdp;
    // Without a relay candidate the TURN server was not reached: nothing to try.
    if (kind === 'relay' && !/ typ relay/.test(offer)) return { ok: false };
    const answer = await post(offer);
    const protocol = kind === 'relay' ? null : kind;
    if (protocol && !hasCandidate(answer, protocol)) return { ok: false, available: false };
    await pc.setRemoteDescription({ type: 'answer', sdp: onlyCandidates(answer, protocol) });
    if (!(await connected(pc, CONNECT_TIMEOUT_MS))) return { ok: false };
    await sleep(SAMPLE_MS);
    const path = await selectedPath(pc);
    const loss = await stunLoss(pc).catch(() => null);
    const rtt = path && Number.isFinite(path.rtt) ? path.rtt * 1000 : null;
    return { ok: true, rtt, loss, path: pathKind(path) };
  } finally {
    pc.close();
  }
}

/**
 * Runs a check against the server: resolves to `{ verdict, slow, rtt, loss, code, results,
 * relayHost }` or throws an ApiError-like `{ status, code }` when the check could not start
 * (rate-limited, server unreachable). `api` is shared/api.js's client.
 */
export async function runCheck(api) {
  if (typeof RTCPeerConnection === 'undefined') {
    const err = new Error('no WebRTC');
    err.code = 'unsupported';
    throw err;
  }
  const check = await api('/api/network-check');
  const url = `/api/network-check/${encodeURIComponent(check.probe)}`;
  const post = (sdp) => api(url, { method: 'POST', raw: sdp, type: 'application/sdp', as: 'text' });
  try {
    const outcomes = await Promise.all(PROBES.map((kind) => probe(kind, check, post)
      .catch((e) => {
        console.warn(`sportello: network check (${kind})`, e);
        return { ok: false };
      })));
    const results = Object.fromEntries(PROBES.map((kind, i) => [kind, outcomes[i]]));
    return { ...classify(results), results, relayHost: relayHost(check.ice_servers) };
  } finally {
    // The probes' peers go now rather than when the server's timer removes them.
    fetch(url, { method: 'DELETE', keepalive: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// The lobby's section (join.html `#netcheck`)

/**
 * Runs the check when asked and shows the verdict in `#netcheck-result` (role="status": replaced
 * in one go, so it is announced once; focus never moves). `onOutcome(outcome)` gets every outcome.
 * `outcome` is null while a check runs, then `{ verdict, slow, rtt, loss, code, results, relayHost }`
 * or `{ verdict: null, error }` when the check could not run.
 */
export class NetcheckPanel {
  constructor({ api, t, el, onOutcome }) {
    this.api = api;
    this.t = t;
    this.el = el;
    this.onOutcome = onOutcome;
    this.outcome = null;
    this.running = false;
    this.retry = document.getElementById('netcheck-retry');
    this.box = document.getElementById('netcheck-result');
    // aria-disabled, not disabled: a focused button that became disabled would drop the focus.
    this.retry?.addEventListener('click', () => this.run());
  }

  async run() {
    if (this.running || !this.box) return;
    this.running = true;
    this.outcome = null;
    this.retry?.setAttribute('aria-disabled', 'true');
    this.render();
    this.onOutcome(null);
    let outcome;
    try {
      outcome = await runCheck(this.api);
    } catch (e) {
      console.warn('sportello: network check', e);
      outcome = { verdict: null, error: e.code === 'unsupported' ? 'unsupported' : (e.code || 'network') };
    }
    this.running = false;
    this.outcome = outcome;
    this.retry?.removeAttribute('aria-disabled');
    this.render();
    this.onOutcome(outcome);
  }

  /** (Re)writes the section in the current language. */
  render() {
    const { t, el } = this;
    const o = this.outcome;
    const box = this.box;
    if (!box) return;
    box.dataset.verdict = this.running ? 'running' : (o?.verdict || 'unknown');
    if (this.running || !o) {
      box.replaceChildren(el('p', { class: 'netcheck-verdict', text: t('netcheck.running') }));
      return;
    }
    if (!o.verdict) {
      const key = o.error === 'unsupported' ? 'netcheck.unsupported' : 'netcheck.unavailable';
      box.replaceChildren(el('p', { class: 'netcheck-verdict', text: t(key) }));
      return;
    }
    const parts = [el('p', { class: 'netcheck-verdict', text: t(`netcheck.${o.verdict}`) })];
    if (o.slow && o.verdict !== 'none') {
      const slow = o.rtt !== null && o.rtt >= SLOW_RTT_MS ? t('netcheck.slow', { rtt: o.rtt }) : t('netcheck.slow.loss');
      parts.push(el('p', { class: 'netcheck-slow', text: slow }));
    }
    if (o.verdict === 'none') {
      const it = o.relayHost ? t('netcheck.todo.it', { host: o.relayHost }) : t('netcheck.todo.it.generic');
      parts.push(
        el('p', { class: 'netcheck-todo', text: t('netcheck.todo') }),
        el('ul', { class: 'netcheck-list' },
          ['netcheck.todo.network', 'netcheck.todo.hotspot', 'netcheck.todo.vpn'].map((k) => el('li', { text: t(k) })),
          el('li', { text: it }),
          el('li', { text: t('netcheck.todo.call') })),
      );
    }
    parts.push(el('p', { class: 'netcheck-code' }, `${t('netcheck.code')} `, el('code', { text: o.code })));
    box.replaceChildren(...parts);
  }
}
