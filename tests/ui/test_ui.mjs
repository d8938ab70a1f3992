// test_ui.mjs - the replay debugger (/ui/) driven in headless Chromium, against a real
// convstored, through every point of issue 8:
//
//   list       rows equal GET /v1/conversations (newest first), paging by cursor both ways,
//              search by status, metadata and id, the filters kept in the link
//   open       a tau-bench conversation (the first of $CONVSTORE_CORPUS, mapped as
//              tests/api/test_corpus.c maps it; without the corpus a generated one stands in)
//              from the list: one timeline row per event, each tool call paired with the result
//              the store's rule pairs it with, model responses with their model and usage
//   version    step to version N with the number box and the step buttons; the messages shown
//              equal GET …/messages?at_version=N field for field, the open calls highlighted
//              equal the state's pending_tool_calls, events after N dimmed, ?v=N in the link
//   diff       from version M to N: the added messages and the changed state fields
//   forks      one click forks at N (the API lists the fork at N), the fork's tree shows its
//              parent and the parent's shows the fork
//   live       an event appended over HTTP appears without a reload, and the view follows it
//   usage      the generated conversation's chart has one bar per recorded turn, totals = API
//   deep link  a pasted /ui/#/conversations/{id}?v=N opens at N; a missing id reads 404
//   SSE        the page's parser gives the same events however the stream is cut
//   auth       with --keys: a readable 401 without a token, the token field (sessionStorage)
//              makes it work and survives a reload, a read-only token's fork reads 403
//   size       a 500-event conversation renders and steps quickly (times printed)
//
// It also fails on any script error or CSP violation the page logs, and on any request to a
// host other than the convstored under test (no CDN, no font: the page works offline). The screenshot of the
// conversation page goes to $UI_SCREENSHOT (the build dir; tests/ui/screenshot.png is a
// committed copy). Exits 77 (skipped) when playwright-core (npm ci here) or Chromium
// (/usr/bin/chromium, or $CHROMIUM) is missing. Usage: node test_ui.mjs path/to/convstored

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SKIP = 77;
const CONVSTORED = process.argv[2] || process.env.CONVSTORED;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CORPUS = process.env.CONVSTORE_CORPUS ? join(process.env.CONVSTORE_CORPUS, 'tau-bench/gpt-4o-airline.conversations.jsonl') : '';
const SHOT = process.env.UI_SCREENSHOT || '';

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  console.log('playwright-core is not installed (run `npm ci` in tests/ui): skipped');
  process.exit(SKIP);
}
if (!existsSync(CHROMIUM)) {
  console.log(`${CHROMIUM} not found (apt-get install chromium): skipped`);
  process.exit(SKIP);
}
if (!CONVSTORED) {
  console.error('usage: node test_ui.mjs path/to/convstored');
  process.exit(2);
}

// ---- checks ------------------------------------------------------------------------------------

let failed = 0;
let passed = 0;
function check(ok, what, detail) {
  if (ok) {
    passed++;
    return true;
  }
  failed++;
  console.error(`FAIL ${what}${detail !== undefined ? `\n  ${typeof detail === 'string' ? detail : JSON.stringify(detail)}` : ''}`);
  return false;
}
function checkEq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  return check(g === w, what, `got:  ${g.slice(0, 600)}\n  want: ${w.slice(0, 600)}`);
}
const t0 = Date.now();
function step(name) {
  console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)}s ${name}`);
}

// ---- convstored ----------------------------------------------------------------------------------

// Servers still running: stopped by pid when the test ends early (an exception, a timeout).
const running = new Set();
function killRunning() {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone already */
    }
  }
}
process.on('exit', killRunning);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(1));

/** Start convstored on a free port in a new temp folder; stop() sends SIGTERM to its pid. */
async function startServer(extra = []) {
  const dir = mkdtempSync(join(tmpdir(), 'convstore-ui-'));
  const log = openSync(join(dir, 'log'), 'a');
  const child = spawn(CONVSTORED, ['--port', '0', '--data', join(dir, 'data'), '--no-sync', ...extra], { stdio: ['ignore', 'pipe', log] });
  running.add(child.pid);
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b) => {
      out += b;
      const m = /listening on [^\n]*:(\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`convstored exited ${code}; see ${dir}/log`)));
  });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  return {
    dir,
    base: `http://127.0.0.1:${port}`,
    async stop() {
      process.kill(child.pid, 'SIGTERM');
      const code = await exited;
      running.delete(child.pid);
      check(code === 0, `convstored (pid ${child.pid}) exits 0 on SIGTERM`, `exit ${code}; log in ${dir}/log`);
      if (code === 0) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One API call: {status, body}. */
async function call(srv, method, path, body, { token, headers = {} } = {}) {
  const hs = { ...headers };
  if (body !== undefined) hs['Content-Type'] = 'application/json';
  if (token) hs.Authorization = `Bearer ${token}`;
  const r = await fetch(srv.base + path, { method, headers: hs, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
async function must(srv, method, path, body, opts) {
  const r = await call(srv, method, path, body, opts);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
async function allEvents(srv, id) {
  const out = [];
  for (let from = 1; ;) {
    const p = await must(srv, 'GET', `/v1/conversations/${id}/events?from_version=${from}&limit=1000`);
    out.push(...p.events);
    if (p.next_from_version == null) return out;
    from = p.next_from_version;
  }
}

// ---- data --------------------------------------------------------------------------------------

/** An OpenAI chat message as an event, exactly as tests/api/test_corpus.c maps it. */
function mapMessage(m) {
  if (m.role === 'tool') return { tool_result: { call_id: m.tool_call_id, name: m.name, output: m.content } };
  if (m.role !== 'assistant') return { message: { role: m.role, content: m.content } };
  const mr = { model: 'gpt-4o', tool_calls: (m.tool_calls || []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })) };
  if (typeof m.content === 'string') mr.content = m.content;
  return { model_response: mr };
}

const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const usage = (i, o, c = 0, r = 0) => ({ input_tokens: i, output_tokens: o, cached_tokens: c, reasoning_tokens: r });

/** The generated conversation: every event type the page draws, with usage, errors and open calls. */
async function loadDemo(srv) {
  await must(srv, 'POST', '/v1/conversations', { id: 'demo', title: 'Move a flight (generated)', metadata: { suite: 'ui', team: 'a' } });
  const at = (s) => `2026-11-26T21:00:${String(s).padStart(2, '0')}Z`;
  await must(srv, 'POST', '/v1/conversations/demo/events', {
    events: [
      { actor: 'airline-agent', occurred_at: at(0), message: { role: 'system', content: 'You are an airline agent. Use the tools.' } },
      { actor: 'web', occurred_at: at(1), message: { role: 'user', name: 'mia', content: 'Please move reservation ABC123 to Friday <b>not</b> Thursday & keep my seat.' } },
      { actor: 'airline-agent', turn_started: { turn_id: 't1', reason: 'user message' } },
      { actor: 'airline-agent', occurred_at: at(3), model_response: { model: 'gpt-4o', tool_calls: [{ id: 'call_1', name: 'get_reservation_details', arguments: '{"reservation_id":"ABC123"}' }], finish_reason: 'tool_calls', usage: usage(812, 24, 512), cost_usd: 0.0031, latency_ms: 640, request_id: 'req-1' } },
      { actor: 'tools', tool_result: { call_id: 'call_1', name: 'get_reservation_details', output: '{"flights":[{"flight_number":"HAT001","date":"2024-05-16"}]}', duration_ms: 35 } },
      { actor: 'airline-agent', model_response: { model: 'gpt-4o', tool_calls: [{ id: 'call_2', name: 'search_direct_flight', arguments: '{"origin":"JFK","destination":"LIS","date":"2024-05-17"}' }, { id: 'call_3', name: 'get_user_details', arguments: '{"user_id":"mia_li_3668"}' }], finish_reason: 'tool_calls', usage: usage(1290, 61, 768), cost_usd: 0.0052, latency_ms: 910 } },
      { actor: 'tools', tool_result: { call_id: 'call_2', name: 'search_direct_flight', output: '[{"flight_number":"HAT007","time":"09:00"},{"flight_number":"HAT009","time":"17:30"}]', duration_ms: 120 } },
      { actor: 'tools', tool_result: { call_id: 'call_3', name: 'get_user_details', output: 'user service timed out after 5 s', is_error: true, duration_ms: 5000 } },
      { actor: 'airline-agent', model_response: { model: 'gpt-4o', content: 'There are two direct flights on Friday: HAT007 at 09:00 and HAT009 at 17:30. Which one?', finish_reason: 'stop', usage: usage(1544, 38, 1024), cost_usd: 0.0047, latency_ms: 720 } },
      { actor: 'airline-agent', turn_ended: { turn_id: 't1' } },
    ],
  }, { headers: { traceparent: TRACE } });
  await must(srv, 'POST', '/v1/conversations/demo/events', {
    events: [
      { actor: 'web', message: { role: 'user', name: 'mia', content: 'The 9am one, please.' } },
      { actor: 'airline-agent', turn_started: { turn_id: 't2' } },
      { actor: 'airline-agent', model_response: { model: 'gpt-4o-mini', tool_calls: [{ id: 'call_4', name: 'update_reservation_flights', arguments: '{"reservation_id":"ABC123","flight_number":"HAT007"}' }], finish_reason: 'tool_calls', usage: usage(1702, 40, 1536, 12), cost_usd: 0.0009, latency_ms: 480 } },
      { actor: 'airline-agent', tool_call: { id: 'audit_1', name: 'audit_log', arguments: '{"event":"rebooking requested"}' } },
    ],
  });
}

/** Filler conversations for paging and search: 24 of them, a quarter archived, two teams. */
async function loadFiller(srv) {
  for (let i = 0; i < 24; i++) {
    const id = `gen-${String(i).padStart(2, '0')}`;
    await must(srv, 'POST', '/v1/conversations', { id, title: `generated ${i}`, metadata: { suite: 'ui', team: i % 3 ? 'a' : 'b' } });
    await must(srv, 'POST', `/v1/conversations/${id}/events`, { events: [{ message: { role: 'user', content: `hello ${i}` } }] });
    if (i % 4 === 0) await must(srv, 'PATCH', `/v1/conversations/${id}`, { status: 'archived' });
  }
}

/** The first tau-bench conversations as tau-0, tau-1, tau-2; false without the corpus. */
async function loadTau(srv) {
  if (!CORPUS || !existsSync(CORPUS)) return false;
  const lines = readFileSync(CORPUS, 'utf8').split('\n').filter(Boolean).slice(0, 3);
  for (const [i, line] of lines.entries()) {
    const rec = JSON.parse(line);
    await must(srv, 'POST', `/v1/conversations/tau-${i}/events`, { expected_version: 0, events: rec.messages.map(mapMessage) });
    await must(srv, 'PATCH', `/v1/conversations/tau-${i}`, { title: `tau-bench airline task ${rec.task_id} trial ${rec.trial}`, metadata: { source: 'tau-bench', user_id: rec.user_id } });
  }
  return true;
}

/** A 500-event conversation (user, model call, tool result, answer, repeated). */
async function loadBig(srv) {
  const events = [];
  for (let i = 0; events.length < 500; i++) {
    events.push({ message: { role: 'user', content: `question ${i}: ${'lorem ipsum '.repeat(20)}` } });
    events.push({ model_response: { model: 'gpt-4o', tool_calls: [{ id: `c${i}`, name: 'lookup', arguments: `{"i":${i}}` }], usage: usage(1000 + i * 40, 20, 500), cost_usd: 0.001, latency_ms: 300 } });
    events.push({ tool_result: { call_id: `c${i}`, name: 'lookup', output: `result ${i}` } });
    events.push({ model_response: { model: 'gpt-4o', content: `answer ${i}`, usage: usage(1100 + i * 40, 30), cost_usd: 0.001, latency_ms: 250 } });
  }
  await must(srv, 'POST', '/v1/conversations/big-500/events', { events: events.slice(0, 500) });
}

/** The calls of @events paired with their results as the store pairs them: [{call, result}]. */
function pairCalls(events) {
  const pending = new Map();
  const out = [];
  for (const ev of events) {
    const calls = ev.type === 'model_response' ? ev.model_response.tool_calls || [] : ev.type === 'tool_call' ? [ev.tool_call] : [];
    for (const c of calls) {
      const p = { call: ev.version, result: null };
      out.push(p);
      pending.set(c.id, p);
    }
    if (ev.type === 'tool_result' && pending.has(ev.tool_result.call_id)) {
      pending.get(ev.tool_result.call_id).result = ev.version;
      pending.delete(ev.tool_result.call_id);
    }
  }
  return out;
}

/** The messages view as the page shows it, read back from the DOM. */
async function shownMessages(page, root = '.panel-messages') {
  return page.$$eval(`${root} li.msg`, (lis) => lis.map((li) => {
    const m = { role: li.querySelector('.msg-role').textContent };
    const name = li.querySelector('.msg-name');
    if (name) m.name = name.textContent;
    const tcid = li.querySelector('.msg-tool-call-id');
    if (tcid) m.tool_call_id = tcid.textContent;
    const content = li.querySelector('.msg-content');
    m.content = content ? content.textContent : null;
    const calls = [...li.querySelectorAll('.msg-call')];
    if (calls.length) m.tool_calls = calls.map((c) => ({ id: c.querySelector('.call-id').textContent, name: c.querySelector('.call-name').textContent, arguments: c.querySelector('.call-args').textContent }));
    return m;
  }));
}

/** GET …/messages?at_version=@v in the same shape. */
async function apiMessages(srv, id, v, opts) {
  const r = await must(srv, 'GET', `/v1/conversations/${id}/messages?at_version=${v}`, undefined, opts);
  return r.messages.map((m) => {
    const o = { role: m.role };
    if (m.name) o.name = m.name;
    if (m.tool_call_id) o.tool_call_id = m.tool_call_id;
    o.content = m.content === undefined ? null : m.content;
    if (m.tool_calls) o.tool_calls = m.tool_calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
    return o;
  });
}

// ---- the browser -----------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const pageErrors = [];
const external = []; // requests to anything but the convstored under test: none (no CDN, no font)
async function newPage(viewport = { width: 1400, height: 900 }) {
  const ctx = await browser.newContext({ viewport });
  await ctx.route((url) => url.hostname !== '127.0.0.1', (route) => {
    external.push(route.request().url());
    return route.abort();
  });
  const page = await ctx.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // failed API calls (the 401s and 404s the test provokes) are logged by Chromium itself
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
  });
  return page;
}
const waitVersion = (page, panel, v) => page.waitForSelector(`.panel-${panel}[data-version="${v}"]`, { state: 'attached' });

const srv = await startServer();
let auth = null;
let exitCode = 1;
try {
  step('loading data');
  await loadFiller(srv);
  await loadDemo(srv);
  const tau = await loadTau(srv);
  await loadBig(srv);
  const subject = tau ? 'tau-0' : 'demo';
  if (!tau) console.log('# corpus not found: the generated conversation stands in for tau-bench');
  const page = await newPage();

  // ---- the list -----------------------------------------------------------------------------
  step('list');
  const rowIds = () => page.$$eval('tr.conv-row', (trs) => trs.map((t) => t.dataset.id));
  const waitRows = async (want, what) => {
    try {
      await page.waitForFunction((w) => JSON.stringify([...document.querySelectorAll('tr.conv-row')].map((t) => t.dataset.id)) === w && !document.querySelector('.list-view[data-loading]'), JSON.stringify(want), { timeout: 10000 });
    } catch {
      /* reported below */
    }
    checkEq(await rowIds(), want, what);
  };
  await page.goto(`${srv.base}/ui/`);
  const p1 = await must(srv, 'GET', '/v1/conversations?limit=20');
  check(p1.next_cursor, 'there is a second page');
  await waitRows(p1.conversations.map((c) => c.id), 'the list shows the first page, newest first');
  const p2 = await must(srv, 'GET', `/v1/conversations?limit=20&cursor=${p1.next_cursor}`);
  await page.click('button.next');
  await waitRows(p2.conversations.map((c) => c.id), 'older → shows the second page');
  check(page.url().includes('cursor='), 'the page is in the link', page.url());
  await page.click('button.prev');
  await waitRows(p1.conversations.map((c) => c.id), '← newer goes back to the first page');

  await page.selectOption('select[name=status]', 'archived');
  await page.click('form.filters button[type=submit]');
  const archived = await must(srv, 'GET', '/v1/conversations?limit=20&status=archived');
  await waitRows(archived.conversations.map((c) => c.id), 'status=archived');
  check(archived.conversations.length === 6, 'six archived conversations', archived.conversations.length);
  check(page.url().includes('status=archived'), 'the status filter is in the link', page.url());

  await page.selectOption('select[name=status]', '');
  await page.fill('input[name=meta]', 'team=b');
  await page.click('form.filters button[type=submit]');
  const teamB = await must(srv, 'GET', '/v1/conversations?limit=20&metadata.team=b');
  await waitRows(teamB.conversations.map((c) => c.id), 'metadata team=b');

  await page.fill('input[name=meta]', '');
  await page.fill('input[name=id]', 'nope');
  await page.click('form.filters button[type=submit]');
  await waitRows([], 'an unknown id lists nothing');
  check((await page.textContent('.list-summary')).includes('No conversation'), 'and says so');
  await page.fill('input[name=id]', subject);
  await page.click('form.filters button[type=submit]');
  await waitRows([subject], `id search finds ${subject}`);

  // ---- a tau-bench conversation ---------------------------------------------------------------------
  step(`open ${subject}`);
  const events = await allEvents(srv, subject);
  await page.click(`a.conv-link:text-is("${subject}")`);
  await page.waitForSelector('.timeline li.ev');
  await waitVersion(page, 'messages', events.length);
  checkEq(await page.$$eval('.timeline li.ev', (l) => l.map((e) => Number(e.dataset.v))), events.map((e) => e.version), 'one timeline row per event, in order');
  checkEq(await page.$$eval('.timeline li.ev', (l) => l.map((e) => e.dataset.type)), events.map((e) => e.type), 'each row says its type');
  check(page.url().endsWith(`#/conversations/${subject}`), 'the link of the latest version has no ?v', page.url());
  const pairs = pairCalls(events);
  const shownPairs = await page.$$eval('.timeline .call', (calls) => calls.map((c) => {
    const chip = c.querySelector('.call-chip');
    return { call: Number(c.closest('li.ev').dataset.v), result: chip.dataset.goto ? Number(chip.dataset.goto) : null };
  }));
  checkEq(shownPairs, pairs, 'every tool call is drawn with the result the store pairs it with');
  check(pairs.length > 0, 'the conversation has tool calls', pairs.length);
  const resultLinks = await page.$$eval('.timeline .result .call-chip', (l) => l.map((c) => Number(c.dataset.goto)));
  checkEq(resultLinks, pairs.filter((p) => p.result).sort((a, b) => a.result - b.result).map((p) => p.call), 'every result links back to its call');
  const models = await page.$$eval('.ev-model_response .model', (l) => l.map((e) => e.textContent));
  check(models.length === events.filter((e) => e.type === 'model_response').length && models.every((m) => m.startsWith('gpt-4o')), 'model responses show their model', models.slice(0, 3));

  // ---- step to version N ----------------------------------------------------------------------------
  const N = Math.min(12, events.length - 4);
  step(`step to version ${N}`);
  await page.fill('input.v-input', String(N + 3));
  await page.press('input.v-input', 'Enter');
  await waitVersion(page, 'messages', N + 3);
  for (let i = 0; i < 3; i++) await page.click('button.step[title^="previous"]');
  await waitVersion(page, 'messages', N);
  checkEq(await shownMessages(page), await apiMessages(srv, subject, N), `the messages shown at v${N} are GET …/messages?at_version=${N}`);
  check(page.url().endsWith(`#/conversations/${subject}?v=${N}`), 'the link has ?v=N', page.url());
  check(Number(await page.inputValue('input.slider')) === N, 'the slider is at N');
  check(await page.$$eval('.timeline li.ev.future', (l) => l.length) === events.filter((e) => e.version > N).length, 'the events after N are dimmed');
  check(await page.$eval(`.timeline li.ev[data-v="${N}"]`, (e) => e.classList.contains('current')), 'the row of N is selected');
  await page.click('.tabs button[data-tab=state]');
  await waitVersion(page, 'state', N);
  const stN = await must(srv, 'GET', `/v1/conversations/${subject}?at_version=${N}`);
  const openShown = await page.$$eval('.timeline .call .call-chip.open-at', (l) => l.map((c) => Number(c.closest('li.ev').dataset.v)));
  checkEq(openShown, stN.pending_tool_calls.map((p) => p.version), 'the calls highlighted open at N are the state\'s pending_tool_calls');
  checkEq(await page.$$eval('.panel-state .open-call .call-name', (l) => l.map((e) => e.textContent)), stN.pending_tool_calls.map((p) => p.name), 'the state panel lists them');
  const { messages: _m, ...stNoMessages } = stN;
  checkEq(JSON.parse(await page.textContent('.panel-state pre.json')), stNoMessages, `the state shown at v${N} is GET …/{id}?at_version=${N}`);
  // ArrowRight steps too, and the messages follow
  await page.click('.timeline-wrap h2, .col-left h2');
  await page.keyboard.press('ArrowRight');
  await waitVersion(page, 'messages', N + 1);
  checkEq(await shownMessages(page), await apiMessages(srv, subject, N + 1), 'ArrowRight steps to N+1, messages equal the API\'s');
  await page.keyboard.press('ArrowLeft');
  await waitVersion(page, 'messages', N);

  // ---- the diff ------------------------------------------------------------------------------------
  const M = Math.max(1, N - 4);
  step(`diff v${M} -> v${N}`);
  await page.click('.tabs button[data-tab=diff]');
  await page.fill('input.diff-from', String(M));
  await page.press('input.diff-from', 'Enter');
  await page.waitForSelector(`.panel-diff[data-version="${M}-${N}"]`, { state: 'attached' });
  const [mM, mN] = [await apiMessages(srv, subject, M), await apiMessages(srv, subject, N)];
  check(await page.$$eval('.diff-msg[data-kind=added]', (l) => l.length) === mN.length - mM.length, 'the diff lists the messages added', `${mN.length} - ${mM.length}`);
  checkEq(await page.$$eval('.diff-msg[data-kind=added] .msg-role', (l) => l.map((e) => e.textContent)), mN.slice(mM.length).map((m) => m.role), 'in order');
  checkEq(await page.$$eval('.diff-fields tr[data-path="version"] td', (l) => l.map((e) => e.textContent)), ['version', String(M), String(N)], 'the state diff shows the version change');
  check(page.url().includes(`tab=diff`) && page.url().includes(`from=${M}`), 'the diff is in the link', page.url());

  // ---- the screenshot ------------------------------------------------------------------------------
  await page.click('.tabs button[data-tab=messages]');
  await waitVersion(page, 'messages', N);
  if (SHOT) {
    await page.screenshot({ path: SHOT, fullPage: false });
    console.log(`# screenshot: ${SHOT}`);
  }

  // ---- fork at N -----------------------------------------------------------------------------------
  step(`fork ${subject} at v${N}`);
  await page.click('button.fork-btn');
  await page.waitForFunction((s) => location.hash.startsWith('#/conversations/') && !location.hash.startsWith(`#/conversations/${s}`), subject);
  const forkId = decodeURIComponent(/#\/conversations\/([^?]+)/.exec(page.url())[1]);
  const forks = await must(srv, 'GET', `/v1/conversations/${subject}/forks`);
  checkEq(forks.forks, [{ id: forkId, at_version: N }], 'the API lists the new fork at N');
  await page.waitForSelector('.conv-header .parent');
  check((await page.textContent('.conv-header .parent')).includes(`fork of ${subject} at v${N}`), 'the fork says its parent and fork point');
  await waitVersion(page, 'messages', N + 1);
  check(await page.$$eval('.timeline li.ev.inherited', (l) => l.length) === N, 'the fork\'s first N events are read through its parent');
  await page.click('.tabs button[data-tab=forks]');
  await page.waitForSelector(`.tree-ancestor[data-id="${subject}"]`);
  check(true, 'the fork tree shows the parent');
  await page.click(`.conv-header .parent a`);
  await waitVersion(page, 'messages', N);
  check(page.url().endsWith(`#/conversations/${subject}?v=${N}`), 'the parent link opens the parent at the fork point', page.url());
  await page.click('.tabs button[data-tab=forks]');
  await page.waitForSelector(`.tree-child[data-id="${forkId}"][data-at="${N}"]`);
  check(true, 'the parent\'s fork tree shows the fork at N');
  check(await page.$eval(`.timeline li.ev[data-v="${N}"] .fork-mark`, (e, f) => e.textContent.includes(f), forkId), 'the fork point is marked on the timeline');
  // a fork of the fork below its own fork point: its versions are all the grandparent's
  await must(srv, 'POST', `/v1/conversations/${forkId}/fork`, { at_version: N - 1, id: 'grandchild' });
  await page.goto(`${srv.base}/ui/#/conversations/grandchild?tab=forks`);
  await page.waitForSelector('.tree-self');
  checkEq(await page.$$eval('.tree-ancestor', (l) => l.map((e) => e.dataset.id)), [subject, forkId], 'a fork\'s tree shows every ancestor');

  // ---- live mode and usage -------------------------------------------------------------------------
  step('live');
  await page.goto(`${srv.base}/ui/#/conversations/demo`);
  const demoEvents = await allEvents(srv, 'demo');
  await waitVersion(page, 'messages', demoEvents.length);
  await page.waitForSelector('.live-state[data-state="live"]');
  const head = await must(srv, 'GET', '/v1/conversations/demo');
  check(await page.$$eval('svg.chart g.turn', (l) => l.length) === 2, 'one bar per recorded turn');
  const allIn = await page.$eval('.usage-table tbody tr:first-child td:nth-child(3)', (e) => e.textContent);
  checkEq(allIn, head.usage.input_tokens.toLocaleString('en-US'), 'the usage summary\'s input tokens are the API\'s');
  check(await page.$$eval('.timeline .call .call-chip.open', (l) => l.length) === 2, 'the two open calls are highlighted');
  check(await page.$$eval('.timeline .call-chip.failed', (l) => l.length) === 2, 'the failed call and its result are marked');
  check(await page.$$eval('.timeline .trace', (l) => l.filter((e) => e.textContent === '4bf92f35').length) === 10, 'rows show the trace id of the request that wrote them');
  await page.evaluate(() => { window.__sameDocument = true; });
  await must(srv, 'POST', '/v1/conversations/demo/events', {
    events: [
      { actor: 'tools', tool_result: { call_id: 'call_4', name: 'update_reservation_flights', output: '{"ok":true}', duration_ms: 80 } },
      { actor: 'airline-agent', model_response: { model: 'gpt-4o-mini', content: 'Done: you are on HAT007 on Friday at 09:00.', usage: usage(1800, 20, 1536), cost_usd: 0.0006, latency_ms: 350 } },
    ],
  });
  const last = demoEvents.length + 2;
  await page.waitForSelector(`.timeline li.ev[data-v="${last}"]`);
  check(await page.evaluate(() => window.__sameDocument === true), 'the new events appeared without a reload');
  await waitVersion(page, 'messages', last);
  checkEq(await shownMessages(page), await apiMessages(srv, 'demo', last), 'the view followed the latest version');
  check(Number(await page.getAttribute('input.slider', 'max')) === last, 'the slider grew');
  check(await page.$$eval('.timeline .call .call-chip.open', (l) => l.length) === 1, 'the answered call is no longer open');
  check(page.url().endsWith('#/conversations/demo'), 'following the latest keeps the link without ?v', page.url());
  // looking at an older version, a new event is added to the timeline but the view stays put
  await page.click('.col-left h2');
  await page.keyboard.press('ArrowLeft');
  await waitVersion(page, 'messages', last - 1);
  const atN = () => page.$eval('.usage-table tbody tr:first-child td:nth-child(2)', (e) => e.textContent);
  const before = await atN();
  await must(srv, 'POST', '/v1/conversations/demo/events', { events: [{ message: { role: 'user', content: 'Thanks!' } }] });
  await page.waitForSelector(`.timeline li.ev[data-v="${last + 1}"].future`);
  checkEq(await atN(), before, 'and its usage at N stays');
  await page.waitForTimeout(400); // the head refresh after a live event
  check((await page.inputValue('input.v-input')) === String(last - 1) && page.url().endsWith(`?v=${last - 1}`), 'a view of an older version does not move');
  checkEq(await atN(), before, 'and its usage at N stays after the head is read again');

  // ---- a deep link ---------------------------------------------------------------------------------
  step('deep link');
  const deep = await newPage();
  await deep.goto(`${srv.base}/ui/#/conversations/${subject}?v=5&tab=diff&from=2`);
  await waitVersion(deep, 'messages', 5);
  check((await deep.inputValue('input.v-input')) === '5', 'a pasted ?v=5 opens at version 5');
  checkEq(await shownMessages(deep), await apiMessages(srv, subject, 5), 'with the messages of version 5');
  await deep.waitForSelector('.panel-diff[data-version="2-5"]', { state: 'attached' });
  check(await deep.isVisible('.panel-diff'), 'and the diff from version 2 open');
  await deep.goto(`${srv.base}/ui/#/conversations/no-such-conversation`);
  await deep.waitForSelector('.error-line');
  const e404 = await deep.textContent('.error-line');
  check(e404.includes('404 not_found') && e404.includes('/v1/conversations/no-such-conversation'), 'a missing conversation reads as a 404 with its request', e404);

  // the SSE parser in the page, fed the same stream cut at every byte and in CRLF form
  const sse = await deep.evaluate(async () => {
    const { SseParser } = await import('/ui/api.js');
    const text = ': after 0\n\nid: 7\nevent: message\ndata: {"a":1}\n\n: keep-alive\n\nid: 8\ndata: x\ndata: y\n\n';
    const runs = [];
    for (const t of [text, text.replace(/\n/g, '\r\n')]) {
      for (let cut = 0; cut <= t.length; cut++) {
        const got = [];
        const p = new SseParser((m) => got.push(m));
        p.push(t.slice(0, cut));
        p.push(t.slice(cut));
        runs.push(JSON.stringify(got));
      }
    }
    return [...new Set(runs)];
  });
  checkEq(sse, [JSON.stringify([{ id: '7', event: 'message', data: '{"a":1}' }, { id: '8', event: 'message', data: 'x\ny' }])], 'the SSE parser reads events whatever the chunking and line ends');

  // ---- a 500-event conversation --------------------------------------------------------------------
  step('500 events');
  let t = Date.now();
  await deep.goto(`${srv.base}/ui/#/conversations/big-500`);
  await waitVersion(deep, 'messages', 500);
  const openMs = Date.now() - t;
  check(await deep.$$eval('.timeline li.ev', (l) => l.length) === 500, 'all 500 events drawn');
  await deep.click('.col-left h2');
  t = Date.now();
  for (let i = 0; i < 20; i++) await deep.keyboard.press('ArrowLeft');
  await waitVersion(deep, 'messages', 480);
  const stepMs = Date.now() - t;
  checkEq(await shownMessages(deep), await apiMessages(srv, 'big-500', 480), 'stepping back 20 versions shows version 480');
  console.log(`# 500 events: opened in ${openMs} ms, 20 steps and the views in ${stepMs} ms`);
  check(openMs < 10000 && stepMs < 10000, 'quick enough on a busy 2-core machine', { openMs, stepMs });

  // ---- auth -------------------------------------------------------------------------------------
  step('auth');
  const token = randomBytes(24).toString('hex');
  const reader = randomBytes(24).toString('hex');
  const sha = (s) => createHash('sha256').update(s).digest('hex');
  const keysDir = mkdtempSync(join(tmpdir(), 'convstore-ui-keys-'));
  writeFileSync(join(keysDir, 'keys'), `# test keys\n${sha(token)} acme append\n${sha(reader)} acme read\n`);
  auth = await startServer(['--keys', join(keysDir, 'keys')]);
  await must(auth, 'POST', '/v1/conversations/secret/events', { events: [{ message: { role: 'user', content: 'only for acme' } }] }, { token });
  const ap = await newPage();
  await ap.goto(`${auth.base}/ui/`);
  await ap.waitForSelector('.error-line');
  const e401 = await ap.textContent('.error-line');
  check(e401.startsWith('401 unauthenticated') && e401.includes('GET /v1/conversations'), 'without a token: a readable 401', e401);
  check((await ap.textContent('.error-hint')).includes('token'), 'with a hint to enter a token');
  await ap.fill('#token', 'wrong');
  await ap.click('#auth button[type=submit]');
  await ap.waitForFunction(() => (document.querySelector('.error-line') || {}).textContent?.includes('401'));
  await ap.fill('#token', token);
  await ap.click('#auth button[type=submit]');
  await ap.waitForSelector('tr.conv-row[data-id="secret"]');
  check(await ap.$$eval('.error', (l) => l.length) === 0, 'the token clears the error');
  check(await ap.evaluate(() => sessionStorage.getItem('convstore.token')) === token, 'the token is kept in session storage');
  await ap.reload();
  await ap.waitForSelector('tr.conv-row[data-id="secret"]');
  check(true, 'and still works after a reload');
  await ap.goto(`${auth.base}/ui/#/conversations/secret`);
  await waitVersion(ap, 'messages', 1);
  await ap.waitForSelector('.live-state[data-state="live"]');
  await must(auth, 'POST', '/v1/conversations/secret/events', { events: [{ message: { role: 'user', content: 'live with a token' } }] }, { token });
  await ap.waitForSelector('.timeline li.ev[data-v="2"]');
  check(true, 'live mode works with a token (fetch stream with the Authorization header)');
  await ap.fill('#token', reader);
  await ap.click('#auth button[type=submit]');
  await waitVersion(ap, 'messages', 2);
  await ap.click('button.fork-btn');
  await ap.waitForSelector('.error-line');
  const e403 = await ap.textContent('.error-line');
  check(e403.startsWith('403 permission_denied') && e403.includes('POST /v1/conversations/secret/fork'), 'a read-only token\'s fork reads as a 403', e403);
  await auth.stop();
  auth = null;
  rmSync(keysDir, { recursive: true, force: true });

  checkEq(pageErrors, [], 'no script errors or CSP violations');
  checkEq(external, [], 'the page asked nothing of any other host (works offline)');
  exitCode = failed ? 1 : 0;
} catch (err) {
  console.error(`FAIL ${err.stack || err}`);
  failed++;
} finally {
  await browser.close().catch(() => {});
  if (auth) await auth.stop();
  await srv.stop();
}
console.log(`${passed} checks passed, ${failed} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : exitCode);
