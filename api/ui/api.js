// api.js - the page's one door to convstored: JSON calls with the token, readable errors, and
// the Server-Sent Events reader for live mode.
//
// Only the public HTTP API of API.md is used (same origin, so no CORS). The token is kept in
// sessionStorage: it survives a reload and a deep link opened in the same tab, and is gone
// when the tab closes; it is never put in a URL.
//
// Live mode reads the SSE routes with fetch() and a streaming body reader instead of
// EventSource, because EventSource cannot send an Authorization header and a token in the
// query string would end up in logs and browser history. The parser follows the SSE format
// (id/event/data lines, comment lines, a blank line ends an event); on a dropped connection
// it reconnects with Last-Event-ID, which convstored resumes from exactly (nothing lost,
// nothing twice).

const TOKEN_KEY = 'convstore.token';

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An API call that failed: HTTP status (0: no answer), the API's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message, method, path, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.method = method;
    this.path = path;
    this.details = details;
  }
}

const HINTS = {
  401: 'Enter a valid API token in the bar above (convctl keygen TENANT ROLE makes one).',
  403: 'This token\'s role may not do that (read < append < admin).',
  404: 'It does not exist, was erased, or belongs to another tenant.',
  409: 'The conversation changed or the request conflicts with its state.',
  410: 'The conversation was erased.',
};

/** One line for a person: "401 unauthenticated: missing token (GET /v1/conversations)". */
export function describeError(e) {
  if (!(e instanceof ApiError)) return { line: String(e && e.message ? e.message : e), hint: '' };
  const where = `${e.method} ${e.path}`;
  const head = e.status ? `${e.status} ${e.code}` : e.code;
  return { line: `${head}: ${e.message} (${where})`, hint: HINTS[e.status] || '' };
}

function headers(body) {
  const hs = { Accept: 'application/json' };
  const token = getToken();
  if (token) hs.Authorization = `Bearer ${token}`;
  if (body !== undefined) hs['Content-Type'] = 'application/json';
  return hs;
}

/**
 * Call the API: resolves to the parsed JSON body (null for an empty one), rejects with an
 * ApiError whose message is the API's own {"error": {"code", "message"}}.
 */
export async function api(method, path, body, { signal } = {}) {
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers: headers(body),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'unreachable', `cannot reach convstored: ${err.message}`, method, path);
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (resp.ok) return json;
  const e = json && json.error;
  if (e && e.code)
    throw new ApiError(resp.status, e.code, e.message || resp.statusText, method, path, e);
  throw new ApiError(resp.status, 'http_error', `${resp.statusText || 'error'}: ${text.slice(0, 200)}`, method, path);
}

export const enc = encodeURIComponent;

/** Path of a conversation route: conv('c1', 'events') -> /v1/conversations/c1/events. */
export function conv(id, ...rest) {
  return ['/v1/conversations', enc(id), ...rest].join('/');
}

/** Path with a query string from an object (undefined and '' values left out). */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

/** Parse SSE text: feed chunks, get {id, event, data} objects back. */
export class SseParser {
  constructor(onEvent) {
    this.buf = '';
    this.onEvent = onEvent;
    this.reset();
  }

  reset() {
    this.id = null;
    this.event = '';
    this.data = [];
  }

  push(chunk) {
    this.buf += chunk;
    let nl;
    while ((nl = this.buf.search(/\r\n|\r|\n/)) >= 0) {
      // a CR that ends the chunk may be the first half of a CRLF: wait for the next chunk
      if (nl === this.buf.length - 1 && this.buf[nl] === '\r') break;
      const line = this.buf.slice(0, nl);
      const sep = this.buf.startsWith('\r\n', nl) ? 2 : 1;
      this.buf = this.buf.slice(nl + sep);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length) this.onEvent({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
      this.reset();
      return;
    }
    if (line.startsWith(':')) return; // a comment: the server's hello and keep-alives
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') this.id = value;
    else if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
  }
}

/**
 * Follow an SSE route until stop() is called. @after: the position to start after. Calls
 * onEvent(parsed event JSON) for each event, onStatus('live' | 'reconnecting' | 'stopped', err)
 * when the connection changes. Reconnects (1 s, doubling to 10 s) from the last id received.
 */
export function follow(path, after, { onEvent, onStatus }) {
  const ctl = new AbortController();
  let last = String(after);
  let delay = 1000;
  let stopped = false;

  async function once() {
    const resp = await fetch(path, {
      headers: { ...headers(), Accept: 'text/event-stream', 'Last-Event-ID': last },
      signal: ctl.signal,
      cache: 'no-store',
    });
    if (!resp.ok) {
      let e = null;
      try {
        e = (await resp.json()).error;
      } catch {
        e = null;
      }
      throw new ApiError(resp.status, e ? e.code : 'http_error', e ? e.message : resp.statusText, 'GET', path);
    }
    onStatus('live');
    delay = 1000;
    const parser = new SseParser((m) => {
      if (m.id) last = m.id;
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch {
        return;
      }
      onEvent(ev);
    });
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
        if (!stopped) onStatus('reconnecting');
      } catch (err) {
        if (stopped) break;
        onStatus('reconnecting', err);
        // a 4xx will not get better by retrying soon (a conversation erased, a token revoked)
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          onStatus('stopped', err);
          return;
        }
      }
      if (stopped) break;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  })();

  return {
    stop() {
      stopped = true;
      ctl.abort();
      onStatus('stopped');
    },
  };
}
