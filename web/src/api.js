// The server's HTTP API: JSON in, problem+json errors turned into ApiError.

export class ApiError extends Error {
  /** @param {string} message @param {{status?: number, field?: string, body?: any}} [info] */
  constructor(message, { status = 0, field = undefined, body = undefined } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // 0: no answer at all (server down, network gone, timeout)
    this.field = field;
    this.body = body;
  }
}

/** The session's CSRF token, which the page carries: sent with every unsafe request. */
export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? '';
}

/** Where a request answered 401 (the session ended) sends the browser: sign in, then back. */
function toLogin() {
  window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
}

/** End the session and go to the login page. */
export async function signOut(apiPrefix) {
  try {
    await postJson(`${apiPrefix}/auth/logout`);
  } finally {
    window.location.assign('/login');
  }
}

/** GET a JSON document; throws ApiError with the server's `detail` and `field`. */
export function getJson(url, { timeoutMs = 10000, signal = undefined } = {}) {
  return requestJson(url, { timeoutMs, signal });
}

/** POST (a JSON body, or none) and read the JSON answer; errors as for getJson. */
export function postJson(url, body = undefined, { timeoutMs = 10000 } = {}) {
  return requestJson(url, { timeoutMs, method: 'POST', body });
}

/** PATCH a JSON body and read the JSON answer; errors as for getJson. */
export function patchJson(url, body, { timeoutMs = 10000 } = {}) {
  return requestJson(url, { timeoutMs, method: 'PATCH', body });
}

async function requestJson(url, { timeoutMs, signal = undefined, method = 'GET', body: sent = undefined }) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  signal?.addEventListener('abort', () => controller.abort());
  const headers = { Accept: 'application/json' };
  if (sent !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken();
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: sent === undefined ? undefined : JSON.stringify(sent),
      signal: controller.signal,
    });
  } catch {
    throw new ApiError('the server does not answer');
  } finally {
    clearTimeout(timer);
  }
  const body = await response.json().catch(() => null);
  if (response.status === 401) toLogin();
  if (!response.ok) {
    const detail = body?.detail ?? `${response.status} ${response.statusText}`;
    throw new ApiError(detail, { status: response.status, field: body?.field, body });
  }
  return body;
}

/**
 * The server's readiness (`/readyz`): `ok`, `degraded` (it answers, but the database, Redis
 * or the broker does not: the detail names them) or `down` (no answer).
 * @returns {Promise<{state: 'ok' | 'degraded' | 'down', detail: string}>}
 */
export async function readiness(readyUrl) {
  try {
    await getJson(readyUrl, { timeoutMs: 5000 });
    return { state: 'ok', detail: '' };
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 0) {
      return { state: 'down', detail: 'no answer' };
    }
    const checks = error.body?.checks ?? {};
    const failing = Object.entries(checks)
      .filter(([, value]) => value !== 'ok')
      .map(([name]) => name);
    return { state: 'degraded', detail: failing.length ? `${failing.join(', ')} unavailable` : error.message };
  }
}

/**
 * Keeps asking the server for its readiness, every `everyMs` while it is fine and every
 * `retryMs` while it is not; `check()` asks at once (a tile failed to load, say).
 */
export function watchServer(readyUrl, onChange, { everyMs = 30000, retryMs = 5000 } = {}) {
  let timer = 0;
  let last = '';
  const check = async () => {
    clearTimeout(timer);
    const found = await readiness(readyUrl);
    const key = `${found.state}:${found.detail}`;
    if (key !== last) {
      last = key;
      onChange(found);
    }
    timer = setTimeout(check, found.state === 'ok' ? everyMs : retryMs);
  };
  check();
  return { check, stop: () => clearTimeout(timer) };
}
