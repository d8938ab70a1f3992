// diff.js - what changed between two versions of a conversation: the state view compared
// field by field (flattened to paths such as usage.input_tokens or metadata.team) and the
// messages view compared message by message.
//
// Not a text diff of JSON on purpose: a conversation's messages at a later version are the
// earlier ones plus more (events are immutable), so comparing by index says exactly "these
// messages were added"; and a state field reads better as "usage.input_tokens 120 -> 450" than
// as two changed lines of pretty-printed JSON. Both are linear in the size of the views, so a
// 500-event conversation diffs instantly.

import { h } from './dom.js';

/** {path: value} of every leaf of @obj (arrays by index), skipping the keys in @skip. */
export function flatten(obj, skip = [], prefix = '', out = {}) {
  if (obj === null || typeof obj !== 'object') {
    out[prefix] = obj;
    return out;
  }
  const entries = Array.isArray(obj) ? obj.map((v, i) => [String(i), v]) : Object.entries(obj);
  if (!entries.length) out[prefix] = Array.isArray(obj) ? '[]' : '{}';
  for (const [k, v] of entries) {
    if (!prefix && skip.includes(k)) continue;
    flatten(v, skip, prefix ? `${prefix}.${k}` : k, out);
  }
  return out;
}

/** The state fields that differ: [{path, a, b}] (a or b undefined when absent). */
export function diffState(a, b) {
  const fa = flatten(a, ['messages']);
  const fb = flatten(b, ['messages']);
  const paths = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
  return paths.filter((p) => JSON.stringify(fa[p]) !== JSON.stringify(fb[p])).map((p) => ({ path: p, a: fa[p], b: fb[p] }));
}

/** Messages compared by index: [{i, kind: 'same'|'added'|'removed'|'changed', a, b}]. */
export function diffMessages(a, b) {
  const out = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const ma = a[i];
    const mb = b[i];
    const kind = ma === undefined ? 'added' : mb === undefined ? 'removed' : JSON.stringify(ma) === JSON.stringify(mb) ? 'same' : 'changed';
    out.push({ i, kind, a: ma, b: mb });
  }
  return out;
}

function val(v) {
  if (v === undefined) return h('span', { class: 'muted' }, '(absent)');
  return h('span', { class: 'mono' }, typeof v === 'string' ? v : JSON.stringify(v));
}

/**
 * The diff panel's content for versions @va -> @vb. @renderMessage(message, index) draws one
 * message as the messages panel does.
 */
export function renderDiff(va, vb, stateA, stateB, msgsA, msgsB, renderMessage) {
  const fields = diffState(stateA, stateB);
  const msgs = diffMessages(msgsA, msgsB);
  const count = (k) => msgs.filter((m) => m.kind === k).length;
  const same = count('same');
  return h('div', { class: 'diff', dataset: { from: va, to: vb } },
    h('h3', {}, `State: ${fields.length} field${fields.length === 1 ? '' : 's'} changed from v${va} to v${vb}`),
    fields.length
      ? h('table', { class: 'diff-fields' },
        h('thead', {}, h('tr', {}, h('th', {}, 'field'), h('th', {}, `v${va}`), h('th', {}, `v${vb}`))),
        h('tbody', {}, fields.map((f) => h('tr', { dataset: { path: f.path } }, h('td', { class: 'mono' }, f.path), h('td', { class: 'del' }, val(f.a)), h('td', { class: 'add' }, val(f.b))))))
      : h('p', { class: 'muted' }, 'The state is the same.'),
    h('h3', { class: 'diff-msg-summary' }, `Messages: ${count('added')} added, ${count('removed')} removed, ${count('changed')} changed, ${same} the same`),
    same ? h('p', { class: 'muted small' }, `${same} message${same === 1 ? '' : 's'} in common not shown.`) : null,
    h('ol', { class: 'diff-msgs' }, msgs.filter((m) => m.kind !== 'same').map((m) =>
      h('li', { class: ['diff-msg', `diff-${m.kind}`], dataset: { kind: m.kind, index: m.i } },
        h('span', { class: 'diff-sign' }, { added: '+', removed: '−', changed: '~' }[m.kind]),
        m.kind === 'changed'
          ? [renderMessage(m.a, m.i, 'del'), renderMessage(m.b, m.i, 'add')]
          : renderMessage(m.kind === 'added' ? m.b : m.a, m.i)))));
}
