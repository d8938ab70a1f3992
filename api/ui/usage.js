// usage.js - the usage summary of a conversation and its small chart of tokens per turn, drawn
// as inline SVG (no chart library: a few rects, made with dom.js, so text stays text).
//
// A turn is what the events say it is: from one turn_started to the next when the agent
// records turns; otherwise it begins at a user message that follows a model response (so a
// system prompt and the first user message are one turn, and several user messages in a row
// are one turn). A bar stacks the turn's cached input, other input and output tokens of its
// model responses; its title gives the exact figures; a click selects the turn's last event.

import { fmtCost, fmtMs, fmtNum, h, s } from './dom.js';

/** Split @events into turns with their token sums. */
export function turns(events) {
  const recorded = events.some((e) => e.type === 'turn_started');
  const out = [];
  let cur = null;
  for (const ev of events) {
    const userMsg = ev.type === 'message' && ev.message && ev.message.role === 'user';
    // what comes before the first turn (a system prompt, the first user message) joins it
    const starts = cur && (recorded ? ev.type === 'turn_started' && (cur.started || cur.responses > 0) : userMsg && cur.responses > 0);
    if (!cur || starts) {
      cur = { n: out.length + 1, first: ev.version, last: ev.version, input: 0, cached: 0, output: 0, cost: 0, responses: 0, started: false };
      out.push(cur);
    }
    if (ev.type === 'turn_started') cur.started = true;
    cur.last = ev.version;
    if (ev.type === 'model_response') {
      const mr = ev.model_response;
      const u = mr.usage || {};
      cur.input += Number(u.input_tokens || 0);
      cur.cached += Number(u.cached_tokens || 0);
      cur.output += Number(u.output_tokens || 0);
      cur.cost += Number(mr.cost_usd || 0);
      cur.responses++;
    }
  }
  return out;
}

const W = 600;
const H = 90;

/** The chart of @ts (from turns()); @onPick(version) when a bar is clicked. */
export function chart(ts, onPick) {
  const max = Math.max(1, ...ts.map((t) => t.input + t.output));
  const bw = W / Math.max(ts.length, 1);
  const y = (v) => (v / max) * (H - 12);
  const bars = ts.map((t) => {
    const cached = Math.min(t.cached, t.input);
    const parts = [
      ['cached', cached],
      ['input', t.input - cached],
      ['output', t.output],
    ];
    let top = H;
    const rects = parts.map(([cls, v]) => {
      const hgt = y(v);
      top -= hgt;
      return s('rect', { class: `bar-${cls}`, x: (t.n - 1) * bw + bw * 0.1, y: top, width: Math.max(bw * 0.8, 1), height: hgt });
    });
    const g = s('g', { class: 'turn', dataset: { first: t.first, last: t.last } },
      s('title', {}, `turn ${t.n} (v${t.first}–v${t.last}): ${fmtNum(t.input)} input (${fmtNum(t.cached)} cached), ${fmtNum(t.output)} output tokens, ${fmtCost(t.cost)}, ${t.responses} response${t.responses === 1 ? '' : 's'}`),
      s('rect', { class: 'hit', x: (t.n - 1) * bw, y: 0, width: bw, height: H }),
      rects);
    g.addEventListener('click', () => onPick(t.last));
    return g;
  });
  return s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'tokens per turn' },
    s('line', { class: 'axis', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }),
    bars);
}

/** Mark the turn holding version @v, and dim the turns after it. */
export function chartSelect(svg, v) {
  for (const g of svg.querySelectorAll('g.turn')) {
    const first = Number(g.dataset.first);
    const last = Number(g.dataset.last);
    g.classList.toggle('current', v >= first && v <= last);
    g.classList.toggle('future', first > v);
  }
}

/** The summary figures: usage at the selected version @atN and in all (@total). */
export function summary(atN, total, v, ts, events) {
  const a = atN || {};
  const t = total || {};
  const latencies = events.filter((e) => e.type === 'model_response' && e.model_response.latency_ms).map((e) => Number(e.model_response.latency_ms));
  const models = [...new Set(events.filter((e) => e.type === 'model_response').map((e) => e.model_response.model).filter(Boolean))];
  const row = (label, x, y) => h('tr', {}, h('th', {}, label), h('td', { class: 'num' }, x), h('td', { class: 'num muted' }, y));
  return h('table', { class: 'usage-table' },
    h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', { class: 'num' }, `at v${v}`), h('th', { class: 'num' }, 'in all'))),
    h('tbody', {},
      row('input tokens', fmtNum(a.input_tokens), fmtNum(t.input_tokens)),
      row('cached', fmtNum(a.cached_tokens), fmtNum(t.cached_tokens)),
      row('output tokens', fmtNum(a.output_tokens), fmtNum(t.output_tokens)),
      row('reasoning', fmtNum(a.reasoning_tokens), fmtNum(t.reasoning_tokens)),
      row('cost', fmtCost(a.cost_usd), fmtCost(t.cost_usd)),
      row('model responses', fmtNum(a.responses), fmtNum(t.responses)),
      row('turns', '', fmtNum(ts.length)),
      latencies.length ? row('mean latency', '', fmtMs(Math.round(latencies.reduce((x, y) => x + y, 0) / latencies.length))) : null,
      models.length ? row('models', '', models.join(', ')) : null));
}
