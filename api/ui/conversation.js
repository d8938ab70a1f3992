// conversation.js - one conversation (/ui/#/conversations/{id}?v=N): its timeline, a version
// slider with step buttons, the state and the messages view exactly as they were after event
// N, a diff between two versions, the fork tree with a one-click fork, the usage summary, and
// live mode.
//
// Everything is read through the public API: the head (GET …/{id}), the events (GET …/events,
// paged forward), the views at N (GET …/{id}?at_version=N and …/messages?at_version=N, cached
// by version: history is immutable, so a view at N never changes), the forks (GET …/forks, and
// the parent chain through each state's `parent`), the fork itself (POST …/fork), and the
// conversation's SSE stream for live mode, started right after the last event loaded so that
// nothing falls between the two.
//
// Version changes are cheap on purpose: the timeline only re-classes the rows between the old
// and the new version, the URL is replaced (not pushed), and the two view requests are
// debounced and the answer to an older request is dropped when a newer one was made.

import { api, conv, follow, withQuery } from './api.js';
import { badge, fill, fmtTime, h } from './dom.js';
import { renderDiff } from './diff.js';
import { Timeline } from './timeline.js';
import { chart, chartSelect, summary, turns } from './usage.js';

const EVENTS_MAX = 20000; // events drawn; a longer conversation says so
const CACHE_MAX = 64;
const TABS = [
  ['messages', 'Messages'],
  ['state', 'State'],
  ['diff', 'Diff'],
  ['forks', 'Fork tree'],
];

/** One message of the messages view, as text (the same function draws the diff's messages). */
export function renderMessage(m, i, cls) {
  if (!m) return null;
  return h('li', { class: ['msg', `msg-${m.role}`, cls], dataset: { index: i } },
    h('div', { class: 'msg-head' },
      h('span', { class: 'msg-index muted' }, `${i + 1}`),
      h('span', { class: 'msg-role' }, m.role),
      m.name ? h('span', { class: 'msg-name' }, m.name) : null,
      m.tool_call_id ? h('span', { class: 'msg-tool-call-id mono', title: 'tool_call_id' }, m.tool_call_id) : null),
    m.content === null || m.content === undefined
      ? h('div', { class: 'msg-null muted' }, 'content: null')
      : h('div', { class: 'msg-content' }, m.content),
    (m.tool_calls || []).map((c) => h('div', { class: 'msg-call' },
      h('span', { class: 'call-id mono' }, c.id), ' ',
      h('span', { class: 'call-name' }, c.function ? c.function.name : c.name),
      h('pre', { class: 'call-args mono' }, c.function ? c.function.arguments : c.arguments))));
}

export class ConversationView {
  constructor(ctx, id, params) {
    this.ctx = ctx;
    this.id = id;
    this.params = { ...params };
    this.tab = TABS.some(([t]) => t === params.tab) ? params.tab : 'messages';
    this.events = [];
    this.head = null;
    this.n = 0;
    this.latest = 0;
    this.first = 1;
    this.cache = new Map();
    this.seq = 0;
    this.timer = null;
    this.stream = null;
    this.liveOn = params.live !== '0';
    this.destroyed = false;
    this.timeline = new Timeline(id, (v) => this.select(v));
    this.el = h('section', { class: 'conv-view' }, h('p', { class: 'muted' }, `Loading ${id}…`));
    this.onKey = (e) => this.key(e);
  }

  async start() {
    try {
      this.head = await api('GET', conv(this.id));
      await this.loadEvents();
    } catch (err) {
      if (this.destroyed) return;
      this.ctx.showError(err);
      fill(this.el, h('p', { class: 'bad not-found' }, `Cannot show conversation ${this.id}.`), h('p', {}, h('a', { href: '#/' }, '← all conversations')));
      return;
    }
    if (this.destroyed) return;
    // an append between the two reads is in the events but not in the head
    const lastEv = this.events.length ? this.events[this.events.length - 1].version : 0;
    this.latest = Math.max(this.head.version, this.truncated ? 0 : lastEv);
    this.first = Math.max(1, Number(this.head.first_version || 1));
    this.build();
    // mark where forks branched off (the fork tree tab has the rest)
    api('GET', conv(this.id, 'forks')).then((r) => this.timeline.markForks(r.forks || []), () => {});
    const v = Number(this.params.v);
    this.select(Number.isInteger(v) && v > 0 ? v : this.latest, { fromUrl: true });
    document.addEventListener('keydown', this.onKey);
    if (this.liveOn) this.startLive();
  }

  update(params) {
    const v = params.v ? Number(params.v) : this.latest; // no ?v: follow the latest version
    this.params = { ...params };
    const tab = params.tab || 'messages';
    if (tab !== this.tab) this.showTab(tab, { fromUrl: true });
    if (this.diffFrom && params.from) this.diffFrom.value = params.from;
    if (this.latest && Number.isInteger(v) && v > 0 && v !== this.n) this.select(v, { fromUrl: true });
  }

  destroy() {
    this.destroyed = true;
    this.seq++;
    clearTimeout(this.timer);
    document.removeEventListener('keydown', this.onKey);
    if (this.stream) this.stream.stop();
  }

  async loadEvents() {
    let from = 1;
    for (;;) {
      const page = await api('GET', withQuery(conv(this.id, 'events'), { from_version: from, limit: 1000 }));
      this.events.push(...page.events);
      if (page.next_from_version === null || page.next_from_version === undefined || this.events.length >= EVENTS_MAX) {
        this.truncated = page.next_from_version !== null && page.next_from_version !== undefined;
        break;
      }
      from = page.next_from_version;
    }
  }

  // ---- layout ------------------------------------------------------------------------------

  build() {
    this.header = h('div', { class: 'conv-header' });
    this.renderHeader();
    this.slider = h('input', { type: 'range', class: 'slider', min: this.first, max: this.latest, step: 1, 'aria-label': 'version' });
    this.slider.addEventListener('input', () => this.select(Number(this.slider.value)));
    this.vInput = h('input', { type: 'number', class: 'v-input', min: this.first, max: this.latest, 'aria-label': 'version number' });
    this.vInput.addEventListener('change', () => this.select(Number(this.vInput.value)));
    this.latestLabel = h('span', { class: 'latest' });
    this.forkBtn = h('button', { type: 'button', class: 'fork-btn', on: { click: () => this.fork() } });
    this.liveBtn = h('button', { type: 'button', class: 'live-btn', on: { click: () => this.toggleLive() } });
    this.liveState = h('span', { class: 'live-state', dataset: { state: 'off' } }, 'off');
    this.link = h('input', { class: 'deeplink', readonly: true, 'aria-label': 'link to this view', on: { focus: (e) => e.target.select() } });
    const step = (label, title, fn) => h('button', { type: 'button', class: 'step', title, 'aria-label': title, on: { click: fn } }, label);
    const bar = h('div', { class: 'version-bar' },
      step('|◀', 'first version', () => this.select(this.first)),
      step('◀', 'previous version (←)', () => this.select(this.n - 1)),
      this.slider,
      step('▶', 'next version (→)', () => this.select(this.n + 1)),
      step('▶|', 'latest version', () => this.select(this.latest)),
      h('label', {}, 'v ', this.vInput), this.latestLabel,
      this.forkBtn, this.liveBtn, this.liveState);
    this.usageBox = h('div', { class: 'usage-box' });
    this.chartBox = h('div', { class: 'chart-box' });
    this.tabBar = h('div', { class: 'tabs', role: 'tablist' }, TABS.map(([t, label]) =>
      h('button', { type: 'button', role: 'tab', class: 'tab', dataset: { tab: t }, on: { click: () => this.showTab(t) } }, label)));
    this.panels = Object.fromEntries(TABS.map(([t]) => [t, h('div', { class: ['panel', `panel-${t}`], role: 'tabpanel' })]));
    this.buildDiffControls();
    this.timeline.add(this.events);
    this.renderUsage();
    fill(this.el,
      this.header,
      bar,
      h('div', { class: 'linkbar' }, h('span', { class: 'muted small' }, 'link to this view '), this.link),
      this.truncated ? h('p', { class: 'bad' }, `Only the first ${this.events.length} events are drawn.`) : null,
      h('div', { class: 'conv-grid' },
        h('div', { class: 'col-left' }, h('h2', {}, 'Timeline ', h('span', { class: 'muted small' }, `${this.events.length} events`)), this.timeline.el),
        h('div', { class: 'col-right' },
          h('div', { class: 'card' }, h('h2', {}, 'Usage'), this.chartBox, this.usageBox),
          h('div', { class: 'card' }, this.tabBar, Object.values(this.panels)))));
    this.showTab(this.tab, { fromUrl: true });
    this.renderLive();
  }

  renderHeader() {
    const c = this.head;
    const parent = c.parent && c.parent.id;
    fill(this.header,
      h('a', { href: '#/', class: 'back' }, '← conversations'),
      h('h1', {}, h('span', { class: 'conv-id mono' }, c.id), ' ', badge(c.status || 'active', c.status === 'archived' ? 'muted' : 'ok'), c.title ? h('span', { class: 'title' }, ` ${c.title}`) : null),
      h('div', { class: 'facts small' },
        h('span', {}, `created ${fmtTime(c.created_at)}`),
        h('span', {}, `updated ${fmtTime(c.updated_at)}`),
        h('span', {}, `${c.version} events`),
        parent ? h('span', { class: 'parent' }, 'fork of ', h('a', { href: `#/conversations/${encodeURIComponent(c.parent.id)}?v=${c.parent.version}` }, c.parent.id), ` at v${c.parent.version}`) : null,
        Object.entries(c.metadata || {}).map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`))));
  }

  // ---- the selected version ------------------------------------------------------------------

  /** Show the conversation as it was after event @v. */
  select(v, { fromUrl = false } = {}) {
    if (!this.latest || !Number.isFinite(v)) return;
    v = Math.min(Math.max(Math.round(v), this.first), this.latest);
    const moved = v !== this.n;
    this.n = v;
    this.slider.value = v;
    this.vInput.value = v;
    this.latestLabel.textContent = `of ${this.latest}`;
    this.forkBtn.textContent = `Fork at v${v}`;
    this.timeline.select(v);
    if (moved && !fromUrl) this.timeline.reveal(v);
    if (this.svg) chartSelect(this.svg, v);
    if (!fromUrl || this.params.v) this.params.v = String(v);
    this.writeHash();
    this.el.dataset.version = v;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.loadViews(), fromUrl ? 0 : 80);
  }

  writeHash() {
    const p = { v: this.params.v, tab: this.tab === 'messages' ? undefined : this.tab, from: this.tab === 'diff' ? this.diffFrom.value : undefined, live: this.liveOn ? undefined : '0' };
    this.ctx.replaceHash(`/conversations/${encodeURIComponent(this.id)}`, p);
    this.link.value = location.href;
  }

  key(e) {
    if (e.target.closest('input, select, textarea, [contenteditable]') || e.altKey || e.ctrlKey || e.metaKey) return;
    const to = { ArrowLeft: this.n - 1, ArrowRight: this.n + 1, Home: this.first, End: this.latest }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    this.select(to);
  }

  /** A view at version @v, from the cache or the API. */
  view(kind, v) {
    const key = `${kind}:${v}`;
    if (!this.cache.has(key)) {
      const path = kind === 'state' ? conv(this.id) : conv(this.id, 'messages');
      const p = api('GET', withQuery(path, { at_version: v }));
      p.catch(() => this.cache.delete(key));
      this.cache.set(key, p);
      if (this.cache.size > CACHE_MAX) this.cache.delete(this.cache.keys().next().value);
    }
    return this.cache.get(key);
  }

  async loadViews() {
    const seq = ++this.seq;
    const v = this.n;
    this.el.dataset.loading = '1';
    try {
      const [state, msgs] = await Promise.all([this.view('state', v), this.view('messages', v)]);
      if (seq !== this.seq) return;
      this.renderMessages(v, msgs.messages || []);
      this.renderState(v, state);
      this.renderUsage(state);
      if (this.tab === 'diff') await this.renderDiffPanel(seq);
      if (this.tab === 'forks' && !this.forksLoaded) await this.renderForks();
    } catch (err) {
      if (seq === this.seq) this.ctx.showError(err);
    } finally {
      if (seq === this.seq) delete this.el.dataset.loading;
    }
  }

  // ---- panels ----------------------------------------------------------------------------------

  showTab(tab, { fromUrl = false } = {}) {
    if (!this.panels || !this.panels[tab]) return;
    this.tab = tab;
    for (const b of this.tabBar.children) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
    for (const [t, p] of Object.entries(this.panels)) p.hidden = t !== tab;
    if (!fromUrl || this.n) this.writeHash();
    if (!this.n) return;
    if (tab === 'diff') this.renderDiffPanel(this.seq).catch((e) => this.ctx.showError(e));
    if (tab === 'forks') this.renderForks().catch((e) => this.ctx.showError(e));
  }

  renderMessages(v, messages) {
    const panel = this.panels.messages;
    fill(panel,
      h('p', { class: 'muted small' }, `${messages.length} message${messages.length === 1 ? '' : 's'} after event ${v}: exactly what a model call at that point was given (GET …/messages?at_version=${v}).`),
      h('ol', { class: 'msgs' }, messages.map((m, i) => renderMessage(m, i))));
    panel.dataset.version = v;
  }

  renderState(v, st) {
    const panel = this.panels.state;
    const u = st.usage || {};
    const c = st.counts || {};
    const pending = st.pending_tool_calls || [];
    const { messages, ...rest } = st;
    const row = (k, ...val) => h('tr', {}, h('th', {}, k), h('td', {}, ...val));
    fill(panel,
      h('table', { class: 'kv' }, h('tbody', {},
        row('version', String(st.version)),
        row('status', st.status || ''),
        row('title', st.title || ''),
        row('metadata', Object.entries(st.metadata || {}).map(([k, val]) => h('span', { class: 'chip' }, `${k}=${val}`))),
        row('updated', fmtTime(st.updated_at)),
        row('counts', `${c.events || 0} events, ${c.messages || 0} messages, ${c.tool_calls || 0} tool calls, ${c.tool_errors || 0} failed`),
        row('usage', `${u.input_tokens || 0} in, ${u.output_tokens || 0} out, ${u.responses || 0} responses`),
        st.parent && st.parent.id ? row('parent', `${st.parent.id} at v${st.parent.version}`) : null)),
      h('h3', {}, `Open tool calls at v${v}: ${pending.length}`),
      pending.length
        ? h('ul', { class: 'pending' }, pending.map((p) => h('li', { class: 'open-call' },
          h('a', { href: '#', dataset: { goto: p.version }, on: { click: (e) => { e.preventDefault(); this.select(p.version); } } }, `v${p.version}`), ' ',
          h('span', { class: 'call-name' }, p.name), h('span', { class: 'mono small' }, ` (${p.arguments || ''}) id ${p.id}`))))
        : h('p', { class: 'muted' }, 'None: every call made so far has its result.'),
      h('details', { class: 'raw' }, h('summary', {}, 'state JSON (without messages)'), h('pre', { class: 'json' }, JSON.stringify(rest, null, 2))));
    panel.dataset.version = v;
  }

  /** The usage card: totals at N (from @stateAtN, else the last state shown) and in all. */
  renderUsage(stateAtN = this.stateAtN) {
    this.stateAtN = stateAtN;
    const ts = turns(this.events);
    this.svg = chart(ts, (v) => this.select(v));
    const any = ts.some((t) => t.input + t.output > 0);
    fill(this.chartBox,
      h('div', { class: 'chart-title small muted' }, 'tokens per turn ', h('span', { class: 'key key-cached' }, 'cached'), h('span', { class: 'key key-input' }, 'input'), h('span', { class: 'key key-output' }, 'output')),
      any ? this.svg : h('p', { class: 'muted small' }, 'No token usage recorded in this conversation.'));
    if (this.n) chartSelect(this.svg, this.n);
    fill(this.usageBox, summary(stateAtN ? stateAtN.usage : null, this.head.usage, this.n || this.latest, ts, this.events));
  }

  buildDiffControls() {
    this.diffFrom = h('input', { type: 'number', class: 'diff-from', min: this.first, max: this.latest, value: this.params.from || Math.max(this.first, this.latest - 1) });
    this.diffFrom.addEventListener('change', () => {
      this.writeHash();
      this.renderDiffPanel(this.seq).catch((e) => this.ctx.showError(e));
    });
    this.diffOut = h('div', { class: 'diff-out' });
    fill(this.panels.diff,
      h('div', { class: 'diff-controls' }, h('label', {}, 'from version ', this.diffFrom), h('span', { class: 'diff-to' }, ' to the selected version')),
      this.diffOut);
  }

  async renderDiffPanel(seq) {
    const a = Math.min(Math.max(Number(this.diffFrom.value) || this.first, this.first), this.latest);
    const b = this.n;
    const [sa, sb, ma, mb] = await Promise.all([this.view('state', a), this.view('state', b), this.view('messages', a), this.view('messages', b)]);
    if (seq !== this.seq) return;
    fill(this.diffOut, renderDiff(a, b, sa, sb, ma.messages || [], mb.messages || [], renderMessage));
    this.panels.diff.dataset.version = `${a}-${b}`;
  }

  // ---- forks -------------------------------------------------------------------------------------

  /**
   * The fork tree around this conversation: its ancestors (each with the version its child
   * forked at), the parent's other forks, this conversation's forks and theirs. Parents are
   * found through each ancestor's current state: a state at a version up to its own fork
   * point has no parent yet (those versions are its parent's), so at_version would not do.
   */
  async renderForks() {
    const panel = this.panels.forks;
    const refs = []; // refs[0]: this -> parent, refs[1]: parent -> grandparent, ...
    for (let p = this.head.parent; p && p.id && refs.length < 16;) {
      refs.push(p);
      p = (await api('GET', conv(p.id))).parent;
    }
    const forksOf = (id) => api('GET', conv(id, 'forks')).then((r) => r.forks || [], () => []);
    const [children, siblings] = await Promise.all([forksOf(this.id), refs.length ? forksOf(refs[0].id) : []]);
    const grand = await Promise.all(children.map((c) => forksOf(c.id)));
    this.forksLoaded = true;
    this.timeline.markForks(children);
    const link = (id, v) => h('a', { class: 'tree-link', href: `#/conversations/${encodeURIComponent(id)}${v ? `?v=${v}` : ''}` }, id);
    const at = (v) => h('a', { href: '#', class: 'small', on: { click: (e) => { e.preventDefault(); this.select(v); } } }, `v${v}`);
    let node = h('li', { class: 'tree-self' }, h('strong', { class: 'mono' }, this.id),
      refs.length ? ` forked at v${refs[0].version}` : '', ` · ${this.latest} events · this one`,
      h('ul', {}, children.map((c, i) => h('li', { class: 'tree-child', dataset: { id: c.id, at: c.at_version } },
        link(c.id), ' forked here at ', at(c.at_version),
        grand[i].length ? h('ul', {}, grand[i].map((g) => h('li', {}, link(g.id), ` forked at v${g.at_version}`))) : null))));
    for (let i = 0; i < refs.length; i++) {
      const kids = [node];
      if (i === 0) for (const sib of siblings.filter((f) => f.id !== this.id)) kids.push(h('li', { class: 'tree-sibling', dataset: { id: sib.id } }, link(sib.id), ` forked at v${sib.at_version}`));
      node = h('li', { class: 'tree-ancestor', dataset: { id: refs[i].id } }, link(refs[i].id, refs[i].version),
        refs[i + 1] ? ` forked at v${refs[i + 1].version}` : '', h('ul', {}, kids));
    }
    fill(panel,
      h('p', { class: 'muted small' }, refs.length ? `${this.id} is a fork: its versions 1 to ${refs[0].version} are read through ${refs[0].id}.` : 'Not a fork.', ` ${children.length} direct fork${children.length === 1 ? '' : 's'}.`),
      h('ul', { class: 'tree' }, node),
      h('p', { class: 'muted small' }, 'Fork at the selected version with the button above the timeline.'));
  }

  async fork() {
    const v = this.n;
    try {
      const st = await api('POST', conv(this.id, 'fork'), { at_version: v });
      this.cache.clear();
      location.hash = `#/conversations/${encodeURIComponent(st.id)}`;
    } catch (err) {
      this.ctx.showError(err);
    }
  }

  // ---- live mode ---------------------------------------------------------------------------------

  toggleLive() {
    this.liveOn = !this.liveOn;
    if (this.liveOn) this.startLive();
    else if (this.stream) {
      this.stream.stop();
      this.stream = null;
    }
    this.writeHash();
    this.renderLive();
  }

  renderLive(state) {
    if (state) this.liveState.dataset.state = state;
    if (!this.liveOn) this.liveState.dataset.state = 'off';
    this.liveState.textContent = { live: '● live', reconnecting: 'reconnecting…', stopped: 'stopped', off: 'off' }[this.liveState.dataset.state] || '';
    this.liveBtn.textContent = this.liveOn ? 'Stop live' : 'Go live';
  }

  startLive() {
    const after = this.events.reduce((m, e) => Math.max(m, Number(e.position || 0)), 0);
    this.stream = follow(conv(this.id, 'events', 'stream'), after, {
      onEvent: (ev) => this.arrived(ev),
      onStatus: (st, err) => {
        if (this.destroyed) return;
        this.renderLive(st);
        if (err && st === 'stopped') this.ctx.showError(err);
      },
    });
  }

  arrived(ev) {
    if (this.destroyed) return;
    if (ev.type === 'conversation_deleted') {
      this.ctx.showError(new Error(`${this.id} was erased (event at position ${ev.position}).`));
      return;
    }
    if (!ev.version || ev.version <= this.latest) return;
    const following = this.n === this.latest;
    this.events.push(ev);
    this.latest = ev.version;
    this.head = { ...this.head, version: ev.version };
    this.slider.max = this.latest;
    this.vInput.max = this.latest;
    this.diffFrom.max = this.latest;
    this.timeline.add([ev]);
    this.forksLoaded = false;
    this.refreshHead();
    if (following) {
      // a view without ?v follows the latest version and keeps its link that way
      this.select(this.latest, { fromUrl: !this.params.v });
      this.timeline.reveal(this.latest);
    } else {
      this.latestLabel.textContent = `of ${this.latest}`;
      this.renderUsage();
    }
  }

  /** The head changed (title, status, usage): fetch it again, at most a few times a second. */
  refreshHead() {
    if (this.headTimer) return;
    this.headTimer = setTimeout(async () => {
      this.headTimer = null;
      try {
        const head = await api('GET', conv(this.id));
        if (this.destroyed) return;
        this.head = head;
        this.renderHeader();
        this.renderUsage(await this.view('state', this.n));
      } catch (err) {
        if (!this.destroyed) this.ctx.showError(err);
      }
    }, 250);
  }
}
