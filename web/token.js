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
