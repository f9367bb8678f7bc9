// The console's only way to the data: the public /v1 HTTP API, with the token the user gave
// (kept in sessionStorage: for this browser tab only). Errors keep the API's stable code,
// message and details, so views can show validation problems where they belong.

const TOKEN_KEY = 'kitle.token';

/** What the service said about access: whether tokens are required, and our scope. */
export const session = { tokensRequired: false, scope: null };

/** Whether the current token may change things (keep definitions, refresh, delete). */
export function isAdmin() {
  return session.scope === 'admin';
}

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function keepToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API: `status`, stable `code`, `message` and `details`. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? `http_${status}`;
    this.details = Array.isArray(error?.details) ? error.details : [];
  }
}

let unauthorized = () => {};
/** Called when the API answers 401 (the token is gone or was never given). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

const seg = encodeURIComponent;

/** One request. `body` is sent as JSON; `accept: 'text/csv'` returns a Blob. */
export async function request(method, path, { body, accept, signal, token } = {}) {
  const headers = {};
  const bearer = token ?? storedToken();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (accept) headers.Accept = accept;
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { code: 'network', message: `The kitle service cannot be reached (${e.message}).` });
  }
  if (response.status === 204) return null;
  if (!response.ok) {
    let error;
    try {
      error = (await response.json()).error;
    } catch {
      error = { code: `http_${response.status}`, message: `${response.status} ${response.statusText}` };
    }
    const failure = new ApiError(response.status, error);
    if (response.status === 401 && token === undefined) unauthorized(failure);
    throw failure;
  }
  if (accept && accept !== 'application/json') return response.blob();
  return response.json();
}

/** The routes the console uses, one function each (see docs/http.md). */
export const api = {
  auth: (token) => request('GET', '/v1/auth', { token: token ?? storedToken() ?? '' }),
  segments: () => request('GET', '/v1/segments'),
  segment: (id) => request('GET', `/v1/segments/${seg(id)}`),
  put: (id, definition) => request('PUT', `/v1/segments/${seg(id)}`, { body: definition }),
  remove: (id) => request('DELETE', `/v1/segments/${seg(id)}`),
  preview: (definition, { asOf, sample, signal } = {}) =>
    request('POST', '/v1/segments/preview', {
      body: { definition, ...(asOf ? { as_of: asOf } : {}), ...(sample ? { sample } : {}) }, signal,
    }),
  refresh: (id) => request('POST', `/v1/segments/${seg(id)}/refresh`, { body: {} }),
  members: (id, { cursor, limit } = {}) => {
    const query = new URLSearchParams();
    if (cursor) query.set('cursor', cursor);
    if (limit) query.set('limit', String(limit));
    return request('GET', `/v1/segments/${seg(id)}/members?${query}`);
  },
  membersCsv: (id) => request('GET', `/v1/segments/${seg(id)}/members`, { accept: 'text/csv' }),
  lookup: (id, customer, explain = false) =>
    request('GET', `/v1/segments/${seg(id)}/members/${seg(customer)}${explain ? '?explain=true' : ''}`),
  customerSegments: (customer) => request('GET', `/v1/customers/${seg(customer)}/segments`),
  erase: (customer, reason) =>
    request('POST', `/v1/customers/${seg(customer)}/erase`, { body: reason ? { reason } : {} }),
  history: (id) => request('GET', `/v1/segments/${seg(id)}/history`),
  sql: (sql, accept) => request('POST', '/v1/sql', { body: { sql }, accept }),
  schema: () => request('GET', '/v1/schema'),
  templates: () => request('GET', '/v1/templates'),
};

let schemaPromise = null;
/** `/v1/schema`, asked once per page load (columns rarely change; reload to see new ones). */
export function schema() {
  schemaPromise ??= api.schema().catch((e) => {
    schemaPromise = null;
    throw e;
  });
  return schemaPromise;
}
