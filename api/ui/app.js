// app.js - the replay debugger's entry point: the hash router, the token bar and the error
// banner; the views themselves are list.js and conversation.js.
//
// Every view is a deep link that can be pasted into a bug report, in the URL fragment so that
// convstored serves the same index.html for all of them and the server never sees them:
//
//   /ui/#/                                    the conversation list (filters and page in the
//                                             query: #/?status=archived&meta=team%3Db&limit=20)
//   /ui/#/conversations/{id}                  a conversation, following its latest version
//   /ui/#/conversations/{id}?v=N              ... as it was after event N
//   /ui/#/conversations/{id}?v=N&tab=diff&from=M   ... with the diff from version M to N open
//
// A view object has update(params) (the same view with other query parameters: no reload)
// and destroy() (stop its live stream). Views report failures through showError(), which
// prints the API's own code and message with the request that failed.

import { describeError, getToken, setToken } from './api.js';
import { fill, h } from './dom.js';
import { ListView } from './list.js';
import { ConversationView } from './conversation.js';

const main = document.getElementById('view');
const errors = document.getElementById('errors');
let current = null; // { key, view }

/** Show an error (an ApiError or anything thrown) in the banner until dismissed. */
export function showError(err) {
  if (err && err.name === 'AbortError') return;
  const { line, hint } = describeError(err);
  console.warn(line);
  const box = h('div', { class: 'error' },
    h('strong', {}, 'Error '), h('span', { class: 'error-line' }, line),
    hint && h('div', { class: 'error-hint' }, hint),
    h('button', { type: 'button', class: 'link', on: { click: () => box.remove() } }, 'dismiss'));
  errors.replaceChildren(box);
}

export function clearErrors() {
  errors.replaceChildren();
}

/** The fragment as {path, params}: "#/conversations/c1?v=3" -> {"/conversations/c1", {v: "3"}}. */
function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = Object.fromEntries(new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)));
  return { path, params };
}

/** Set the fragment without a new history entry and without re-routing. */
export function replaceHash(path, params) {
  const qs = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();
  history.replaceState(null, '', `#${path}${qs ? `?${qs}` : ''}`);
}

function route() {
  const { path, params } = parseHash();
  const m = /^\/conversations\/([^/]+)$/.exec(path);
  const key = m ? `conv:${decodeURIComponent(m[1])}` : 'list';
  if (current && current.key === key) {
    current.view.update(params);
    return;
  }
  if (current) current.view.destroy();
  clearErrors();
  const ctx = { showError, clearErrors, replaceHash };
  const view = m ? new ConversationView(ctx, decodeURIComponent(m[1]), params) : new ListView(ctx, params);
  current = { key, view };
  fill(main, view.el);
  view.start();
  document.title = m ? `${decodeURIComponent(m[1])} · convstore` : 'conversations · convstore';
}

function setupAuth() {
  const form = document.getElementById('auth');
  const input = document.getElementById('token');
  const state = document.getElementById('token-state');
  const show = () => {
    state.textContent = getToken() ? 'token set (this tab only)' : 'no token';
  };
  input.value = getToken();
  show();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    show();
    reload();
  });
  document.getElementById('token-clear').addEventListener('click', () => {
    input.value = '';
    setToken('');
    show();
    reload();
  });
}

/** Draw the current view again from scratch (after the token changed). */
function reload() {
  if (current) current.view.destroy();
  current = null;
  route();
}

window.addEventListener('hashchange', route);
setupAuth();
route();
