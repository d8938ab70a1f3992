// timeline.js - a conversation's events as a timeline: one row per event (version, type, role,
// time, actor, trace id, and what the event says), tool calls drawn paired with their results,
// model responses with model, token usage, cost and latency.
//
// Pairing follows the store's rule (API.md "Validation"): a tool_result answers the pending
// call with its call_id, and an id may be reused once its earlier call is answered, so calls
// are matched in order, never by id alone. Each call gets a number; the call and its result
// show the same numbered chip, linked both ways. A call with no result yet is "open"; relative
// to the selected version N a call is open at N when it was made at or before N and answered
// after N (or never): those chips are highlighted, and match the state's pending_tool_calls.
//
// Built for long conversations: rows are made once (and appended live), a row's full JSON is
// made only when it is opened, and moving the selected version only touches the rows between
// the old and the new version (classes "current" and "future"), so stepping through a
// 500-event conversation costs nothing like a redraw.

import { badge, fill, fmtCost, fmtMs, fmtNum, fmtTime, h, snippet } from './dom.js';

/** The part of an event a person reads first: {role?, text, extra: [nodes]}. */
function describe(ev) {
  const p = ev[ev.type] || {};
  switch (ev.type) {
    case 'message':
      return { role: p.role, text: p.content || (p.parts || []).map((x) => x.text || x.url || '').join(' ') };
    case 'model_response':
      return { role: 'assistant', text: p.content ?? '' };
    case 'tool_call':
      return { role: 'agent', text: '' };
    case 'tool_result':
      return { role: 'tool', text: p.output };
    case 'turn_started':
    case 'turn_ended':
      return { text: [p.turn_id, p.reason].filter(Boolean).join(' · ') };
    case 'conversation_created':
      return { text: [p.title && `title “${p.title}”`, metaText(p.metadata)].filter(Boolean).join(' · ') };
    case 'conversation_forked':
      return { text: `fork of ${p.parent_id} at v${p.parent_version}` };
    case 'conversation_updated':
      return { text: [p.status && `status ${p.status}`, p.title !== undefined && `title “${p.title}”`, metaText(p.metadata)].filter(Boolean).join(' · ') };
    case 'extension':
      return { text: p.type };
    default:
      return { text: '' };
  }
}

function metaText(m) {
  const e = Object.entries(m || {});
  return e.length ? e.map(([k, v]) => `${k}=${v}`).join(' ') : '';
}

function usageLine(mr) {
  const u = mr.usage;
  const bits = [
    mr.model && h('span', { class: 'model' }, mr.model),
    u && h('span', { class: 'tokens-in', title: 'input tokens (cached)' }, `in ${fmtNum(u.input_tokens)}${u.cached_tokens ? ` (${fmtNum(u.cached_tokens)} cached)` : ''}`),
    u && h('span', { class: 'tokens-out', title: 'output tokens (reasoning)' }, `out ${fmtNum(u.output_tokens)}${u.reasoning_tokens ? ` (${fmtNum(u.reasoning_tokens)} reasoning)` : ''}`),
    mr.cost_usd ? h('span', { class: 'cost', title: 'cost' }, fmtCost(mr.cost_usd)) : null,
    mr.latency_ms ? h('span', { class: 'latency', title: 'latency' }, fmtMs(mr.latency_ms)) : null,
    mr.finish_reason ? h('span', { title: 'finish reason' }, mr.finish_reason) : null,
  ];
  return h('div', { class: 'usage-line' }, bits);
}

export class Timeline {
  /** @ownId: the conversation's id (a fork's first events are read through its parent's);
   * @onSelect(version): a row (or a chip's partner) was chosen. */
  constructor(ownId, onSelect) {
    this.ownId = ownId;
    this.onSelect = onSelect;
    this.rows = new Map(); // version -> row element
    this.calls = []; // {n, id, name, args, version, result: version | null, chips: [el]}
    this.pending = new Map(); // call id -> call, while unanswered
    this.selected = 0;
    this.forkMarks = new Map();
    this.list = h('ol', { class: 'timeline' });
    this.el = h('div', { class: 'timeline-wrap' }, this.list);
    this.list.addEventListener('click', (e) => this.click(e));
  }

  click(e) {
    const go = e.target.closest('[data-goto]');
    if (go) {
      e.preventDefault();
      const v = Number(go.dataset.goto);
      this.onSelect(v);
      this.reveal(v);
      return;
    }
    if (e.target.closest('details, a, button')) return;
    const row = e.target.closest('li.ev');
    if (row) this.onSelect(Number(row.dataset.v));
  }

  /** Scroll the timeline (not the page) so that row @v shows. */
  reveal(v) {
    const row = this.rows.get(v);
    if (!row) return;
    const wrap = this.el;
    const top = row.offsetTop; // .timeline-wrap is positioned: offsets are inside it
    if (top < wrap.scrollTop) wrap.scrollTop = top;
    else if (top + row.offsetHeight > wrap.scrollTop + wrap.clientHeight) wrap.scrollTop = top + row.offsetHeight - wrap.clientHeight;
  }

  /** Add events (in version order, after those already shown). */
  add(events) {
    const frag = document.createDocumentFragment();
    for (const ev of events) {
      if (this.rows.has(ev.version)) continue;
      const row = this.row(ev);
      this.rows.set(ev.version, row);
      if (ev.version > this.selected && this.selected) row.classList.add('future');
      frag.appendChild(row);
    }
    this.list.appendChild(frag);
    this.refreshOpen();
  }

  row(ev) {
    const d = describe(ev);
    const p = ev[ev.type] || {};
    const inherited = ev.conversation_id && ev.conversation_id !== this.ownId;
    const body = [];
    if (d.text) body.push(h('div', { class: ['text', ev.type === 'tool_result' && 'mono'] }, snippet(d.text, 280)));
    if (ev.type === 'model_response') {
      body.push(usageLine(p));
      for (const c of p.tool_calls || []) body.push(this.callLine(ev, c));
    } else if (ev.type === 'tool_call') {
      body.push(this.callLine(ev, p));
    } else if (ev.type === 'tool_result') {
      body.push(this.resultLine(ev, p));
    }
    const details = h('details', { class: 'raw' }, h('summary', {}, 'event JSON'));
    details.addEventListener('toggle', () => {
      if (details.open && details.children.length === 1)
        details.appendChild(h('pre', { class: 'json' }, JSON.stringify(ev, null, 2)));
    }, { once: false });
    const trace = ev.trace && ev.trace.trace_id;
    return h('li', { class: ['ev', `ev-${ev.type}`, inherited && 'inherited'], dataset: { v: ev.version, type: ev.type } },
      h('div', { class: 'ev-head' },
        h('span', { class: 'ver' }, `v${ev.version}`),
        badge(ev.type.replace(/_/g, ' '), ev.type),
        d.role ? h('span', { class: ['role', `role-${d.role}`] }, d.role) : null,
        h('span', { class: 'time', title: `recorded ${ev.recorded_at || ''}${ev.occurred_at ? `\noccurred ${ev.occurred_at}` : ''}` }, fmtTime(ev.occurred_at || ev.recorded_at)),
        ev.actor ? h('span', { class: 'actor', title: 'actor' }, ev.actor) : null,
        trace ? h('span', { class: 'trace mono', title: `trace ${trace}${ev.trace.span_id ? ` span ${ev.trace.span_id}` : ''}` }, trace.slice(0, 8)) : null,
        inherited ? h('span', { class: 'muted small', title: `read through ${ev.conversation_id}` }, `from ${ev.conversation_id}`) : null),
      h('div', { class: 'ev-body' }, body),
      details);
  }

  callLine(ev, c) {
    const call = { n: this.calls.length + 1, id: c.id, name: c.name, version: ev.version, result: null, chips: [] };
    this.calls.push(call);
    this.pending.set(c.id, call);
    const chip = h('a', { class: 'chip call-chip open', href: '#', title: 'no result yet' }, `#${call.n}`);
    call.chips.push(chip);
    return h('div', { class: 'call', dataset: { call: call.n } },
      chip, ' ',
      h('span', { class: 'call-name' }, c.name || '(no name)'),
      h('span', { class: 'call-args mono' }, `(${snippet(c.arguments, 200)})`),
      h('span', { class: 'muted small' }, ` id ${c.id}`));
  }

  resultLine(ev, p) {
    const call = this.pending.get(p.call_id);
    const chip = h('a', { class: 'chip call-chip', href: '#' }, call ? `#${call.n}` : '?');
    if (call) {
      this.pending.delete(p.call_id);
      call.result = ev.version;
      call.isError = !!p.is_error;
      call.chips.push(chip);
      for (const c of call.chips) {
        c.classList.remove('open');
        c.classList.toggle('failed', call.isError);
      }
      call.chips[0].dataset.goto = ev.version;
      call.chips[0].title = `result at v${ev.version}`;
      chip.dataset.goto = call.version;
      chip.title = `call at v${call.version}`;
    }
    return h('div', { class: 'result' },
      chip, ' ',
      h('span', { class: 'call-name' }, p.name || ''),
      p.is_error ? badge('error', 'bad') : badge('ok', 'ok'),
      p.duration_ms ? h('span', { class: 'muted small' }, ` ${fmtMs(p.duration_ms)}`) : null,
      call ? h('span', { class: 'muted small' }, ` answers call at v${call.version}`) : h('span', { class: 'bad small' }, ` answers ${p.call_id}, not seen`));
  }

  /** Mark version @v selected: rows after it are "future", calls open at @v highlighted. */
  select(v) {
    const old = this.selected;
    this.selected = v;
    const mark = (ver, row) => {
      row.classList.toggle('future', ver > v);
      row.classList.toggle('current', ver === v);
    };
    if (!old) {
      for (const [ver, row] of this.rows) mark(ver, row);
    } else {
      for (let ver = Math.min(old, v); ver <= Math.max(old, v); ver++) {
        const row = this.rows.get(ver);
        if (row) mark(ver, row);
      }
    }
    this.refreshOpen();
  }

  refreshOpen() {
    const v = this.selected || Infinity;
    for (const c of this.calls) {
      const open = c.version <= v && (c.result === null || c.result > v);
      for (const chip of c.chips) chip.classList.toggle('open-at', open);
    }
  }

  /** The calls open at version @v, for the state panel's cross-check. */
  openAt(v) {
    return this.calls.filter((c) => c.version <= v && (c.result === null || c.result > v));
  }

  /** Show where forks branched off: a mark on row @version for each child. */
  markForks(forks) {
    for (const el of this.list.querySelectorAll('.fork-mark')) el.remove();
    for (const f of forks) {
      const row = this.rows.get(f.at_version);
      if (!row) continue;
      row.querySelector('.ev-head').appendChild(
        h('a', { class: 'fork-mark', href: `#/conversations/${encodeURIComponent(f.id)}`, title: `forked at v${f.at_version}` }, `↳ fork ${f.id}`));
    }
  }

  clear() {
    fill(this.list);
  }
}
