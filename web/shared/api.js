// The one client of the server's API (JSON, uploads, downloads). One convention: a call resolves to
// the answer's body (null when there is none) or throws an ApiError carrying the HTTP status (0: no answer), the
// server's error code and its message — in the page's language, which every call asks for.

import { getLang, t } from './i18n.js';

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    /** The answer's parsed body, if any. */
    this.body = body;
  }
}

/**
 * `api(path, {method, body, secret, token, headers, raw, type, as})`: `body` is sent as JSON, `raw`
 * as it is with Content-Type `type` (a file upload; a Blob without `type` brings its own); `secret` is a booking's `X-Booking-Secret`,
 * `token` a room token sent as `Authorization: Bearer`, `headers` any further request headers.
 * The answer is parsed JSON, or with `as: 'text'` / `as: 'blob'` its text or bytes (a download);
 * failures are ApiErrors either way. Without an answer the error is `network` with the catalog's
 * `error.network`; an answer without a server message gets `http_<status>` and `error.generic`.
 */
export async function api(path, { method = 'GET', body, secret, token, headers: extra, raw, type, as = 'json' } = {}) {
  const headers = {
    Accept: as === 'json' ? 'application/json' : '*/*',
    'Accept-Language': getLang(),
    ...extra,
  };
  let payload;
  if (raw !== undefined) {
    if (type) headers['Content-Type'] = type;
    payload = raw;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (secret) headers['X-Booking-Secret'] = secret;
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', t('error.network'));
  }
  if (response.ok && as !== 'json') {
    try {
      return await (as === 'blob' ? response.blob() : response.text());
    } catch {
      throw new ApiError(0, 'network', t('error.network'));
    }
  }
  const text = await response.text().catch(() => '');
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.ok) return data;
  throw new ApiError(response.status, data?.error?.code ?? `http_${response.status}`, data?.error?.message || t('error.generic'), data);
}
