// dom.js - the only way the page makes elements, and the formatters every view shares.
//
// Everything shown comes from the API, so nothing is ever parsed as HTML: h() and s() build
// elements and put text in with text nodes (never innerHTML), attributes with setAttribute
// (never event-handler attributes: listeners are functions), which keeps the page safe with
// any content an agent wrote and lets the CSP forbid inline code.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) throw new Error(`use {on: {…}} for ${k}`);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** An HTML element: h('a', {href, class, on: {click}}, 'text', child, [more]). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, the same way. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replace @el's children with @children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const num = new Intl.NumberFormat('en-US');

/** 12345 -> "12,345"; anything missing -> "0". */
export function fmtNum(n) {
  return num.format(Number(n || 0));
}

/** A cost in US dollars, with enough digits to tell small costs apart. */
export function fmtCost(usd) {
  const v = Number(usd || 0);
  if (v === 0) return '$0';
  if (v >= 1) return `$${v.toFixed(2)}`;
  return `$${v.toPrecision(3).replace(/0+$/, '').replace(/\.$/, '')}`;
}

export function fmtMs(ms) {
  const v = Number(ms || 0);
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v} ms`;
}

/** An RFC 3339 time as "2026-11-26 21:00:00.123Z" (UTC, so that bug reports agree). */
export function fmtTime(ts) {
  if (!ts) return '';
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,3})?\d*(Z|[+-]\d\d:\d\d)$/.exec(ts);
  return m ? `${m[1]} ${m[2]}${m[3] || ''}${m[4]}` : ts;
}

/** The first @max characters of @text on one line, with an ellipsis when cut. */
export function snippet(text, max = 160) {
  const one = String(text ?? '').replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

/** JSON text pretty-printed when it parses, else as it is. */
export function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text ?? '');
  }
}

/** A little label: badge('model_response', 'type'). */
export function badge(text, kind = '') {
  return h('span', { class: ['badge', kind && `badge-${kind}`] }, text);
}
