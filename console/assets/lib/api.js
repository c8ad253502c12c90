// The JSON API client (console/API.md): same origin, JSON both ways, the session's CSRF token on
// every change. A 401 means the session is gone: the handler set with onSessionLost() runs.

import { t } from './i18n.js';
import { state } from './state.js';

/** How often the live pages (fleet, blue/green) ask again. */
export const REFRESH_MS = 2000;

let lost = () => {};

/** Sets what to do when a call answers 401 (the session expired or was ended elsewhere). */
export function onSessionLost(handler) {
  lost = handler;
}

export class ApiError extends Error {
  constructor(status, message, errors = []) {
    super(message);
    this.status = status;
    this.errors = errors;
    this.sessionLost = false;
    this.retryAfter = null;
  }
}

/** One call of the JSON API. Resolves with the parsed body (null for 204); throws ApiError. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && path !== '/api/login' && state.me) headers['x-csrf-token'] = state.me.csrf;
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, t('err.network'));
  }
  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  const message = (data && typeof data.error === 'string' && data.error) || res.statusText || String(res.status);
  const err = new ApiError(res.status, message, data && Array.isArray(data.errors) ? data.errors : []);
  err.retryAfter = res.headers.get('retry-after');
  if (res.status === 401 && path !== '/api/login') {
    err.sessionLost = true;
    lost();
  }
  throw err;
}
