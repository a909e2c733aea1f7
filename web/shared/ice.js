// ICE for the room, the live player and the network check: which servers and policy a connection
// uses (the ladder), the TURN servers a WHEP endpoint names in its `Link` headers, and which
// network path a connection took, read from getStats() (also read by the end-to-end tests).

// The ladder: which ICE servers and policy a new pair of peer connections uses, and which step
// comes after a failure (ICE failed, or disconnected for 10 s). Step 0 tries every path (UDP,
// ICE-TCP, and TURN when the server offers it); step 1 goes through the TURN relay only, over TLS
// when there is a `turns:` server (the one path a web-only firewall lets through). Pure: app.js
// keeps the step, the network check may start on step 1; the live player climbs it too.

export const STEPS = ['all', 'relay'];

const isTurn = (url) => /^turns?:/i.test(url);
const isTurns = (url) => /^turns:/i.test(url);

/** The TURN servers (each with only its TURN URLs): the `turns:` ones alone when there are any. */
export function relayServers(servers) {
  const pick = (test) => (servers || [])
    .map((s) => ({ ...s, urls: [].concat(s.urls || []).filter(test) }))
    .filter((s) => s.urls.length);
  const tls = pick(isTurns);
  return tls.length ? tls : pick(isTurn);
}

/** The RTCPeerConnection configuration of `step` for the servers of the `welcome`. */
export function iceConfig(step, servers) {
  if (STEPS[step] === 'relay') {
    const relay = relayServers(servers);
    if (relay.length) return { iceServers: relay, iceTransportPolicy: 'relay' };
  }
  return { iceServers: servers || [], iceTransportPolicy: 'all' };
}

/** The step after a failure on `step`: the relay when there is one, else (and after it) all paths again. */
export function nextStep(step, servers) {
  const next = (step + 1) % STEPS.length;
  return STEPS[next] === 'relay' && !relayServers(servers).length ? 0 : next;
}

/**
 * The ICE servers of a response's `Link` headers (RFC 9725 §4.6): `<turns:h:443?transport=tcp>;
 * rel="ice-server"; username="…"; credential="…"`. fetch() joins repeated headers with ", ".
 */
export function linkIceServers(header) {
  const out = [];
  for (const part of (header || '').split(/,\s*(?=<)/)) {
    const url = /^\s*<([^>]+)>/.exec(part);
    if (!url || !/;\s*rel="?ice-server"?/i.test(part)) continue;
    const param = (name) => new RegExp(`;\\s*${name}="([^"]*)"`, 'i').exec(part)?.[1];
    const server = { urls: [url[1]] };
    const username = param('username');
    const credential = param('credential');
    if (username !== undefined) server.username = username;
    if (credential !== undefined) server.credential = credential;
    out.push(server);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The path in use

/**
 * The candidate pair in use, or null before ICE has selected one.
 * `{ local: {type, protocol, relayProtocol, port}, remote: {type, protocol, address, port}, rtt }`
 * where `type` is `host`, `srflx`, `prflx` or `relay`, `protocol` is `udp` or `tcp`, and
 * `relayProtocol` (relay only) is how the browser reaches its TURN server: `udp`, `tcp` or `tls`.
 */
export async function selectedPath(pc) {
  if (!pc || pc.connectionState === 'closed') return null;
  const report = await pc.getStats();
  let pair = null;
  for (const s of report.values()) {
    // The standard, as Chromium and Firefox ESR 153 report it: the transport names its selected pair.
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) ?? pair;
  }
  if (!pair) {
    // Older Firefox releases: no transport entry; the pair in use says `selected` (non-standard).
    for (const s of report.values()) {
      if (s.type === 'candidate-pair' && s.selected && s.state === 'succeeded') pair = s;
    }
  }
  if (!pair) return null;
  const local = report.get(pair.localCandidateId);
  const remote = report.get(pair.remoteCandidateId);
  if (!local || !remote) return null;
  return {
    local: {
      type: local.candidateType,
      protocol: local.protocol,
      relayProtocol: local.relayProtocol ?? null,
      port: local.port,
    },
    remote: { type: remote.candidateType, protocol: remote.protocol, address: remote.address, port: remote.port },
    rtt: pair.currentRoundTripTime ?? null,
  };
}

/** A path in three words for the status line and the logs: `udp`, `tcp` or `relay-tls` (…). */
export function pathKind(path) {
  if (!path) return null;
  if (path.local.type === 'relay') return `relay-${path.local.relayProtocol || 'udp'}`;
  return path.remote.protocol === 'tcp' || path.local.protocol === 'tcp' ? 'tcp' : 'udp';
}
