// Read the claims of a join token (a JWT) for display. No verification: the server verifies it.

const ROLES = ['host', 'participant', 'viewer'];

function base64UrlDecode(s) {
  let b = s.replace(/-/g, '+').replace(/_/g, '/');
  while (b.length % 4) b += '=';
  const bin = atob(b);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

/**
 * Returns `{room, sub, name, role, exp, nbf, wait}` or `null` when the token is missing or malformed.
 */
export function decodeToken(token) {
  if (typeof token !== 'string') return null;
  const parts = token.trim().split('.');
  if (parts.length !== 3 || !parts[1]) return null;
  let claims;
  try {
    claims = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    return null;
  }
  if (!claims || typeof claims !== 'object' || typeof claims.room !== 'string' || !claims.room) {
    return null;
  }
  const sub = typeof claims.sub === 'string' ? claims.sub : '';
  return {
    room: claims.room,
    sub,
    name: typeof claims.name === 'string' && claims.name ? claims.name : sub,
    role: ROLES.includes(claims.role) ? claims.role : 'participant',
    exp: typeof claims.exp === 'number' ? claims.exp : null,
    nbf: typeof claims.nbf === 'number' ? claims.nbf : null,
    /** Let in by a host (citizens, guests): they are told when no host is in the room yet. */
    wait: claims.wait === true,
  };
}

/** The token from a pasted join link (`…/join?t=…`) or a bare token; `null` if neither. */
export function tokenFromInput(text) {
  const s = (text || '').trim();
  if (!s) return null;
  try {
    const u = new URL(s, location.origin);
    const t = u.searchParams.get('t');
    if (t && decodeToken(t)) return t;
  } catch { /* not a URL */ }
  return decodeToken(s) ? s : null;
}

/** A booking code as typed (case, spaces, missing dash, O for 0, I/L for 1) in its canonical form
 * `ABCD-2345`, or `null` (the same rule as `normalize_code` in domain/src/booking.rs). */
export function normalizeCode(typed) {
  const symbols = (typed || '').toUpperCase().replace(/[- ]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  return /^[0-9A-HJKMNP-TV-Z]{8}$/.test(symbols) ? `${symbols.slice(0, 4)}-${symbols.slice(4)}` : null;
}

/**
 * Where a pasted text leads, as a path on this site (never another origin), or `null`: the emailed
 * join link `…/a/<token>`, a room link `…/join?t=<token>` or a bare token, the manage link
 * `…/appuntamento?codice=<code>#<secret>` (also with `&azione=annulla`), or a booking code alone.
 */
export function destinationFromInput(text) {
  const s = (text || '').trim();
  if (!s) return null;
  const code = normalizeCode(s);
  if (code) return `/appuntamento?codice=${encodeURIComponent(code)}`;
  let u = null;
  for (const candidate of [s, `https://${s}`]) {
    try {
      u = new URL(candidate);
      break;
    } catch { /* not an absolute URL */ }
  }
  if (u) {
    const segments = u.pathname.split('/').filter(Boolean);
    if (segments.length === 2 && segments[0] === 'a' && decodeToken(decodeURIComponent(segments[1]))) {
      return `/a/${segments[1]}`;
    }
    const linkCode = normalizeCode(u.searchParams.get('codice'));
    if (segments[0] === 'appuntamento' && linkCode) {
      const cancel = u.searchParams.get('azione') === 'annulla' ? '&azione=annulla' : '';
      return `/appuntamento?codice=${encodeURIComponent(linkCode)}${cancel}${u.hash}`;
    }
  }
  const token = tokenFromInput(s);
  return token ? `/join?t=${encodeURIComponent(token)}` : null;
}
