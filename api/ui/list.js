// list.js - the conversation list (/ui/#/): GET /v1/conversations, newest first (the API's
// order: the position of each conversation's last event), paged by the API's cursor, filtered
// by status, metadata key=value pairs (separated by spaces) and last update; and a search by
// id.
//
// The API lists no conversations by id (there is no id prefix filter), so the id search is an
// exact lookup: GET /v1/conversations/{id} (the state view holds every field a list row shows).
// The filters and the page's cursor live in the fragment, so a filtered page is a deep link;
// "previous" walks back through the cursors this tab has seen (a cursor only points forward).

import { api, conv, describeError, withQuery } from './api.js';
import { badge, fill, fmtCost, fmtNum, fmtTime, h } from './dom.js';

const LIMITS = ['10', '20', '50', '100'];

export class ListView {
  constructor(ctx, params) {
    this.ctx = ctx;
    this.params = params;
    this.back = []; // cursors of the pages before this one
    this.seq = 0;
    this.el = h('section', { class: 'list-view' });
    this.form = this.buildForm();
    this.summary = h('p', { class: 'muted list-summary' });
    this.table = h('tbody');
    this.pager = h('nav', { class: 'pager' });
    fill(this.el,
      h('h1', {}, 'Conversations'),
      this.form,
      this.summary,
      h('table', { class: 'conv-table' },
        h('thead', {}, h('tr', {},
          ['id', 'title', 'status', 'events', 'messages', 'tool calls', 'tokens in / out', 'cost', 'updated', 'metadata']
            .map((t) => h('th', {}, t)))),
        this.table),
      this.pager);
  }

  buildForm() {
    const p = this.params;
    const f = h('form', { class: 'filters', autocomplete: 'off' },
      h('label', {}, 'id ', h('input', { name: 'id', value: p.id || '', placeholder: 'exact id', spellcheck: 'false' })),
      h('label', {}, 'status ', h('select', { name: 'status' },
        ['', 'active', 'archived'].map((s) => h('option', { value: s, selected: (p.status || '') === s }, s || 'any')))),
      h('label', {}, 'metadata ', h('input', { name: 'meta', value: p.meta || '', placeholder: 'key=value key2=value2', spellcheck: 'false' })),
      h('label', {}, 'updated after ', h('input', { name: 'after', type: 'datetime-local', step: '1', value: p.after || '' })),
      h('label', {}, 'per page ', h('select', { name: 'limit' },
        LIMITS.map((l) => h('option', { value: l, selected: (p.limit || '20') === l }, l)))),
      h('button', { type: 'submit' }, 'Search'),
      h('button', { type: 'button', class: 'link', on: { click: () => this.go({}) } }, 'clear'));
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      const d = new FormData(f);
      this.go({ id: d.get('id').trim(), status: d.get('status'), meta: d.get('meta').trim(), after: d.get('after'), limit: d.get('limit') });
    });
    return f;
  }

  /** Show the list for @params (and put them in the link); new filters start at page 1. */
  go(params, { paging = false } = {}) {
    const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v));
    if (clean.limit === '20') delete clean.limit;
    if (!paging) this.back = [];
    this.params = clean;
    this.ctx.replaceHash('/', clean);
    this.load();
  }

  start() {
    this.load();
  }

  update(params) {
    this.params = params;
    this.back = [];
    const fresh = this.buildForm();
    this.form.replaceWith(fresh);
    this.form = fresh;
    this.load();
  }

  destroy() {
    this.seq++;
  }

  /** The list request of the current filters, or an error message for a bad filter. */
  query() {
    const p = this.params;
    const q = { limit: p.limit || '20', status: p.status, cursor: p.cursor };
    for (const pair of (p.meta || '').split(/[\s,]+/).filter(Boolean)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) return { error: `metadata filter '${pair}' is not key=value` };
      q[`metadata.${pair.slice(0, eq)}`] = pair.slice(eq + 1);
    }
    if (p.after) {
      const t = new Date(p.after);
      if (Number.isNaN(t.getTime())) return { error: `'${p.after}' is not a time` };
      q.updated_after = t.toISOString();
    }
    return { path: withQuery('/v1/conversations', q) };
  }

  async load() {
    const seq = ++this.seq;
    this.el.dataset.loading = '1';
    this.ctx.clearErrors();
    try {
      let rows;
      let next = null;
      if (this.params.id) {
        rows = await this.byId(this.params.id);
      } else {
        const q = this.query();
        if (q.error) throw new Error(q.error);
        const page = await api('GET', q.path);
        rows = page.conversations || [];
        next = page.next_cursor || null;
      }
      if (seq !== this.seq) return;
      this.render(rows, next);
    } catch (err) {
      if (seq !== this.seq) return;
      this.render([], null);
      fill(this.summary, h('span', { class: 'bad' }, describeError(err).line));
      this.ctx.showError(err);
    } finally {
      if (seq === this.seq) delete this.el.dataset.loading;
    }
  }

  async byId(id) {
    try {
      return [await api('GET', conv(id))];
    } catch (err) {
      if (err.status === 404) return [];
      throw err;
    }
  }

  render(rows, next) {
    const p = this.params;
    const what = p.id ? `id ${p.id}` : [p.status && `status ${p.status}`, p.meta && `metadata ${p.meta}`, p.after && `updated after ${p.after}`].filter(Boolean).join(', ');
    fill(this.summary, rows.length
      ? `${rows.length} conversation${rows.length === 1 ? '' : 's'}${what ? ` (${what})` : ''}, newest first${this.back.length || p.cursor ? ` · page ${this.back.length + 1}` : ''}`
      : `No conversation${what ? ` with ${what}` : ' yet'}.`);
    fill(this.table, rows.map((c) => this.row(c)));
    const prev = h('button', { type: 'button', class: 'prev', disabled: !this.back.length && !p.cursor, on: { click: () => this.page(-1) } }, '← newer');
    const nxt = h('button', { type: 'button', class: 'next', disabled: !next, on: { click: () => this.page(1, next) } }, 'older →');
    fill(this.pager, prev, nxt);
  }

  page(dir, next) {
    const p = { ...this.params };
    if (dir > 0) {
      this.back.push(p.cursor || '');
      p.cursor = next;
    } else {
      p.cursor = this.back.length ? this.back.pop() : '';
    }
    this.go(p, { paging: true });
  }

  row(c) {
    const u = c.usage || {};
    const n = c.counts || {};
    const meta = Object.entries(c.metadata || {});
    return h('tr', { class: 'conv-row', dataset: { id: c.id } },
      h('td', {}, h('a', { class: 'conv-link', href: `#/conversations/${encodeURIComponent(c.id)}` }, c.id),
        c.parent && c.parent.id && h('div', { class: 'muted small' }, `fork of ${c.parent.id} @ v${c.parent.version}`)),
      h('td', {}, c.title || ''),
      h('td', {}, badge(c.status || 'active', c.status === 'archived' ? 'muted' : 'ok')),
      h('td', { class: 'num' }, fmtNum(c.version)),
      h('td', { class: 'num' }, fmtNum(n.messages)),
      h('td', { class: 'num' }, fmtNum(n.tool_calls), n.tool_errors ? h('span', { class: 'bad' }, ` (${n.tool_errors} failed)`) : null),
      h('td', { class: 'num' }, `${fmtNum(u.input_tokens)} / ${fmtNum(u.output_tokens)}`),
      h('td', { class: 'num' }, fmtCost(u.cost_usd)),
      h('td', { class: 'small', title: c.updated_at || '' }, fmtTime(c.updated_at)),
      h('td', {}, meta.map(([k, v]) => h('span', { class: 'chip', title: `${k}=${v}` }, `${k}=${v}`))));
  }
}
