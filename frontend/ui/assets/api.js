// API calls. With --auth-token, the page is opened once with ?token=T; the
// token is kept in localStorage and sent as "Authorization: Bearer T" to
// /api/v1/..., as the basic-auth user name to the task API (/v1/..., whose
// API key is the basic-auth user), and as ?access_token=T on the stream.

const tokenKey = 'callbin.token';

// takeToken moves ?token= from the address bar into localStorage, so the
// token does not stay in the URL (history, screenshots, copied links).
// "?token=" with no value forgets a saved token.
export function takeToken() {
  const url = new URL(location.href);
  if (!url.searchParams.has('token')) return;
  const t = url.searchParams.get('token');
  try {
    if (t) localStorage.setItem(tokenKey, t);
    else localStorage.removeItem(tokenKey);
  } catch {
    memoryToken = t;
  }
  url.searchParams.delete('token');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
}

let memoryToken = '';

export function token() {
  try {
    return localStorage.getItem(tokenKey) || memoryToken || '';
  } catch {
    return memoryToken || '';
  }
}

// ApiError carries the API's error: status, code, message, and for a bad
// scenario the line and field.
export class ApiError extends Error {
  constructor(status, code, message, line, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.line = line;
    this.field = field;
  }
}

function basic(user) {
  const bytes = new TextEncoder().encode(`${user}:`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return 'Basic ' + btoa(bin);
}

function errorFrom(status, data, text) {
  const e = data && data.error;
  if (e && typeof e === 'object') {
    return new ApiError(status, e.code || String(status), e.message || text, e.line, e.field);
  }
  if (typeof e === 'string') {
    // The task API's shape: {"status_code": N, "error": "message"}.
    return new ApiError(status, String(data.status_code || status), e);
  }
  return new ApiError(status, String(status), (text || '').trim().slice(0, 300) || `HTTP ${status}`);
}

// api calls path and returns its JSON (null for an empty body). body may be
// an object (sent as JSON) or a string (sent as contentType). Task-API paths
// (/v1/...) get basic auth.
export async function api(path, { method = 'GET', body, contentType, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (path.startsWith('/v1/')) headers.Authorization = basic(t || 'callbin');
  else if (t) headers.Authorization = `Bearer ${t}`;
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string') {
      payload = body;
      headers['Content-Type'] = contentType || 'text/plain; charset=utf-8';
    } else {
      payload = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, signal, cache: 'no-store', credentials: 'same-origin' });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', `cannot reach the server (${err.message})`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      if (res.ok) throw new ApiError(res.status, 'bad_response', `${method} ${path}: the answer is not JSON`);
    }
  }
  if (!res.ok) throw errorFrom(res.status, data, text);
  return data;
}

// download fetches path with the token and saves it under name. The bytes
// are saved as application/octet-stream, never opened in this origin.
export async function download(path, name) {
  const headers = {};
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const res = await fetch(path, { headers, cache: 'no-store', credentials: 'same-origin' });
  if (!res.ok) {
    const text = await res.text();
    let data = null;
    try {
      data = JSON.parse(text);
    } catch {
      // not JSON
    }
    throw errorFrom(res.status, data, text);
  }
  const blob = new Blob([await res.arrayBuffer()], { type: 'application/octet-stream' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name || 'download';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// streamURL is the websocket URL of the live stream.
export function streamURL(params) {
  const u = new URL('/api/v1/stream', location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(params || {})) if (v != null && v !== '') u.searchParams.set(k, String(v));
  const t = token();
  if (t) u.searchParams.set('access_token', t);
  return u.toString();
}
