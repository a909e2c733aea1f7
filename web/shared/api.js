// The one client of the server's JSON API. One convention: a call resolves to the answer's body
// (null when there is none) or throws an ApiError carrying the HTTP status (0: no answer), the
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
 * `api(path, {method, body, secret, raw, type})`: `body` is sent as JSON, `raw` as it is with
 * Content-Type `type` (a file upload); `secret` is a booking's `X-Booking-Secret`. Without an answer
 * the error is `network` with the catalog's `error.network`; an answer without a server message
 * gets `http_<status>` and `error.generic`.
 */
export async function api(path, { method = 'GET', body, secret, raw, type } = {}) {
  const headers = { Accept: 'application/json', 'Accept-Language': getLang() };
  let payload;
  if (raw !== undefined) {
    headers['Content-Type'] = type;
    payload = raw;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (secret) headers['X-Booking-Secret'] = secret;
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', t('error.network'));
  }
  const text = await response.text().catch(() => '');
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.ok) return data;
  throw new ApiError(response.status, data?.error?.code ?? `http_${response.status}`, data?.error?.message || t('error.generic'), data);
}
