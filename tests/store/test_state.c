/*
 * test_state.c - the one reducer, seen through cs_store_state() and cs_store_messages():
 *
 *  - every field of the state view after a hand-built sequence of every event type, now and at
 *    earlier versions: version, status, title, metadata, timestamps (the recorded_at of the first
 *    and of the last event), the transcript with each message's version, pending tool calls with
 *    their arguments, usage (cost summed exactly: 0.1 + 0.2 is 0.3, and 0.1 a thousand times is
 *    100), counts;
 *  - time travel: the state and messages at EVERY version of a mixed workload are the same in
 *    stores that snapshot every 1, 2, 7 and 128 events as in a store that never snapshots (a
 *    fresh fold of events 1..N), and agree with the events themselves (version, last position,
 *    updated_at); also for a conversation of 1,100 events crossing many snapshot boundaries;
 *  - cs_store_summary() at every version is the state without messages and pending calls;
 *  - at_version 0 is now, beyond the version is CS_EINVAL, an unknown conversation CS_ENOTFOUND;
 *  - the messages view in the exact shape of API.md (content null for a tool-only assistant turn,
 *    tool_calls of type "function", tool messages with tool_call_id, name and content, an empty
 *    tool output as "" and not null, a tool_call event as an assistant message with one call).
 */
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"
#include "views.h"

#define T "t1"

static char dir[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;
static cs_store *S; /* default snapshot interval */

#define EVS(...)  ((Convstore__V1__Event *[]){__VA_ARGS__})
#define NEVS(...) (sizeof(EVS(__VA_ARGS__)) / sizeof(Convstore__V1__Event *))
#define APPEND(s, conv, ...)                                                                       \
	CHECK_EQ_INT(vw_append(NULL, (s), T, (conv), EVS(__VA_ARGS__), NEVS(__VA_ARGS__)), CS_OK)

static Convstore__V1__Event *msg(const char *role, const char *content)
{
	return ev_message(&A, NULL, role, content);
}

static Convstore__V1__Event *response(const char *model, const char *content, uint64_t in,
				      uint64_t out, double cost)
{
	Convstore__V1__Event *e = ev_model_response(&A, NULL, model, content);
	ev_set_usage(&A, e, in, out, 0, 0, cost);
	return e;
}

static Convstore__V1__Event *result(const char *call, const char *name, const char *out,
				    bool is_error)
{
	Convstore__V1__Event *e = ev_tool_result(&A, NULL, call, name, out);
	e->tool_result->is_error = is_error;
	return e;
}

/* ---- the hand-built conversation ---------------------------------------------------------- */

/*
 *  v1  conversation_created  title "T1", metadata {a: 1, b: 2}
 *  v2  message system "sys"
 *  v3  message user "hi" (name "mia")
 *  v4  model_response gpt-4o, content null, calls call_1 get_user, call_2 get_flight;
 *      usage 10/20/3/4, cost 0.1
 *  v5  tool_result call_1 get_user "u"
 *  v6  tool_result call_2 get_flight "boom", is_error
 *  v7  tool_call call_3 search {"q":"x"}
 *  v8  turn_started
 *  v9  extension
 *  v10 model_response gpt-4o-mini "ok"; usage 1/2/0/0, cost 0.2
 *  v11 conversation_updated title "T2", metadata {a: "", c: 3}, status archived
 *  v12 model_response gpt-4o, content null, call call_4 noop {}
 *  v13 tool_result call_4 noop "" (an empty output)
 */
#define HB "hand"

static int hand_built(cs_store *s)
{
	cs_error err = CS_ERROR_INIT;
	cs_append_result r;
	int rc = cs_store_create(&r, s, T, HB,
				 vw_created(&A, "T1", VW_KV("a", "1", "b", "2"), NULL), &err);
	if (vw_said(rc, "create", HB, &err))
		return rc;
	Convstore__V1__Event *u = msg("user", "hi");
	u->message->name = "mia";
	Convstore__V1__Event *r4 = response("gpt-4o", NULL, 10, 20, 0.1);
	r4->model_response->usage->cached_tokens = 3;
	r4->model_response->usage->reasoning_tokens = 4;
	ev_add_tool_call(&A, r4, "call_1", "get_user", "{\"id\":1}");
	ev_add_tool_call(&A, r4, "call_2", "get_flight", "{\"f\":2}");
	Convstore__V1__Event *first[] = {
	    msg("system", "sys"),
	    u,
	    r4,
	    result("call_1", "get_user", "u", false),
	    result("call_2", "get_flight", "boom", true),
	    ev_tool_call(&A, NULL, "call_3", "search", "{\"q\":\"x\"}"),
	    ev_turn_started(&A, NULL, "turn-1"),
	    ev_extension(&A, NULL, "x.custom", "\x01\x02", 2),
	    response("gpt-4o-mini", "ok", 1, 2, 0.2),
	};
	if ((rc = vw_append(NULL, s, T, HB, first, 9)))
		return rc;
	rc =
	    cs_store_update(&r, s, T, HB, CS_ANY_VERSION,
			    vw_updated(&A, "T2", "archived", VW_KV("a", "", "c", "3"), NULL), &err);
	if (vw_said(rc, "update", HB, &err))
		return rc;
	Convstore__V1__Event *r12 = ev_model_response(&A, NULL, "gpt-4o", NULL);
	ev_add_tool_call(&A, r12, "call_4", "noop", "{}");
	Convstore__V1__Event *last[] = {r12, result("call_4", "noop", "", false)};
	return vw_append(NULL, s, T, HB, last, 2);
}

static void check_tm(const Convstore__V1__TranscriptMessage *m, uint64_t version, const char *role,
		     const char *content)
{
	CHECK_EQ_UINT(m->version, version);
	CHECK_STR_EQ(m->role, role);
	if (content) {
		CHECK_EQ_INT(m->content_opt_case,
			     CONVSTORE__V1__TRANSCRIPT_MESSAGE__CONTENT_OPT_CONTENT);
		CHECK_STR_EQ(m->content, content);
	} else {
		CHECK_EQ_INT(m->content_opt_case,
			     CONVSTORE__V1__TRANSCRIPT_MESSAGE__CONTENT_OPT__NOT_SET);
	}
}

static void check_call(const Convstore__V1__ToolCallRequest *c, const char *id, const char *name,
		       const char *args)
{
	CHECK_STR_EQ(c->id, id);
	CHECK_STR_EQ(c->name, name);
	CHECK_STR_EQ(c->arguments, args);
}

/* The transcript of the hand-built conversation at v13: every field of every message. */
static void check_hand_transcript(const Convstore__V1__ConversationState *st)
{
	if (!CHECK_EQ_UINT(st->n_messages, 9))
		return;
	Convstore__V1__TranscriptMessage *const *m = st->messages;
	check_tm(m[0], 2, "system", "sys");
	check_tm(m[1], 3, "user", "hi");
	CHECK_STR_EQ(m[1]->name, "mia");
	check_tm(m[2], 4, "assistant", NULL);
	CHECK_STR_EQ(m[2]->model, "gpt-4o");
	if (CHECK_EQ_UINT(m[2]->n_tool_calls, 2)) {
		check_call(m[2]->tool_calls[0], "call_1", "get_user", "{\"id\":1}");
		check_call(m[2]->tool_calls[1], "call_2", "get_flight", "{\"f\":2}");
	}
	check_tm(m[3], 5, "tool", "u");
	CHECK_STR_EQ(m[3]->tool_call_id, "call_1");
	CHECK_STR_EQ(m[3]->name, "get_user");
	CHECK(!m[3]->is_error);
	check_tm(m[4], 6, "tool", "boom");
	CHECK_STR_EQ(m[4]->tool_call_id, "call_2");
	CHECK(m[4]->is_error);
	check_tm(m[5], 7, "assistant", NULL);
	if (CHECK_EQ_UINT(m[5]->n_tool_calls, 1))
		check_call(m[5]->tool_calls[0], "call_3", "search", "{\"q\":\"x\"}");
	check_tm(m[6], 10, "assistant", "ok");
	CHECK_STR_EQ(m[6]->model, "gpt-4o-mini");
	CHECK_EQ_UINT(m[6]->n_tool_calls, 0);
	check_tm(m[7], 12, "assistant", NULL);
	check_tm(m[8], 13, "tool", ""); /* set, and empty: not null */
}

static void check_times(const Convstore__V1__ConversationState *st, uint64_t version)
{
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_read_all(&p, S, T, HB, 100, &err), CS_OK);
	if (CHECK(p.n >= version) && CHECK(st->created_at && st->updated_at)) {
		CHECK_EQ_INT(st->created_at->seconds, p.events[0]->recorded_at->seconds);
		CHECK_EQ_INT(st->created_at->nanos, p.events[0]->recorded_at->nanos);
		CHECK_EQ_INT(st->updated_at->seconds, p.events[version - 1]->recorded_at->seconds);
		CHECK_EQ_INT(st->updated_at->nanos, p.events[version - 1]->recorded_at->nanos);
		CHECK_EQ_UINT(st->last_position, p.events[version - 1]->position);
	}
	cs_event_page_deinit(&p);
}

static void test_fields_now(void)
{
	if (!CHECK_EQ_INT(hand_built(S), CS_OK))
		return;
	int rc;
	Convstore__V1__ConversationState *st = vw_state(S, T, HB, 0, &rc);
	if (!CHECK(st))
		return;
	CHECK_STR_EQ(st->id, HB);
	CHECK_EQ_UINT(st->version, 13);
	CHECK_STR_EQ(st->status, "archived");
	CHECK_STR_EQ(st->title, "T2");
	CHECK_EQ_UINT(st->n_metadata, 2);
	CHECK(vw_state_meta(st, "a") == NULL);
	CHECK_STR_EQ(vw_state_meta(st, "b"), "2");
	CHECK_STR_EQ(vw_state_meta(st, "c"), "3");
	CHECK(st->parent == NULL || st->parent->id[0] == '\0');
	check_times(st, 13);
	check_hand_transcript(st);
	if (CHECK_EQ_UINT(st->n_pending_tool_calls, 1)) {
		CHECK_STR_EQ(st->pending_tool_calls[0]->id, "call_3");
		CHECK_STR_EQ(st->pending_tool_calls[0]->name, "search");
		CHECK_STR_EQ(st->pending_tool_calls[0]->arguments, "{\"q\":\"x\"}");
		CHECK_EQ_UINT(st->pending_tool_calls[0]->version, 7);
	}
	if (CHECK(st->usage)) {
		CHECK_EQ_UINT(st->usage->input_tokens, 11);
		CHECK_EQ_UINT(st->usage->output_tokens, 22);
		CHECK_EQ_UINT(st->usage->cached_tokens, 3);
		CHECK_EQ_UINT(st->usage->reasoning_tokens, 4);
		CHECK(st->usage->cost_usd == 0.3); /* not 0.30000000000000004 */
		CHECK_EQ_UINT(st->usage->responses, 3);
	}
	if (CHECK(st->counts)) {
		CHECK_EQ_UINT(st->counts->events, 13);
		CHECK_EQ_UINT(st->counts->messages, 9);
		CHECK_EQ_UINT(st->counts->tool_calls, 4);
		CHECK_EQ_UINT(st->counts->tool_errors, 1);
	}
	vw_free(st);
}

static void test_fields_earlier(void)
{
	int rc;
	/* at v4: two calls pending with their arguments, the first title and metadata */
	Convstore__V1__ConversationState *st = vw_state(S, T, HB, 4, &rc);
	if (!CHECK(st))
		return;
	CHECK_EQ_UINT(st->version, 4);
	CHECK_STR_EQ(st->status, "active");
	CHECK_STR_EQ(st->title, "T1");
	CHECK_STR_EQ(vw_state_meta(st, "a"), "1");
	CHECK(vw_state_meta(st, "c") == NULL);
	CHECK_EQ_UINT(st->n_messages, 3);
	check_times(st, 4);
	if (CHECK_EQ_UINT(st->n_pending_tool_calls, 2)) {
		CHECK_STR_EQ(st->pending_tool_calls[0]->id, "call_1");
		CHECK_STR_EQ(st->pending_tool_calls[0]->arguments, "{\"id\":1}");
		CHECK_EQ_UINT(st->pending_tool_calls[0]->version, 4);
		CHECK_STR_EQ(st->pending_tool_calls[1]->id, "call_2");
		CHECK_STR_EQ(st->pending_tool_calls[1]->arguments, "{\"f\":2}");
	}
	if (CHECK(st->usage)) {
		CHECK_EQ_UINT(st->usage->input_tokens, 10);
		CHECK(st->usage->cost_usd == 0.1);
		CHECK_EQ_UINT(st->usage->responses, 1);
	}
	if (CHECK(st->counts)) {
		CHECK_EQ_UINT(st->counts->events, 4);
		CHECK_EQ_UINT(st->counts->messages, 3);
		CHECK_EQ_UINT(st->counts->tool_calls, 2);
		CHECK_EQ_UINT(st->counts->tool_errors, 0);
	}
	vw_free(st);

	/* at v1: only the creation */
	st = vw_state(S, T, HB, 1, &rc);
	if (CHECK(st)) {
		CHECK_EQ_UINT(st->version, 1);
		CHECK_STR_EQ(st->title, "T1");
		CHECK_EQ_UINT(st->n_messages, 0);
		CHECK_EQ_UINT(st->n_pending_tool_calls, 0);
		CHECK(st->counts && st->counts->events == 1 && st->counts->messages == 0);
		check_times(st, 1);
	}
	vw_free(st);
}

/* A conversation that was never created explicitly: status active, no title. */
static void test_implicit_creation(void)
{
	APPEND(S, "implicit", msg("user", "a"));
	int rc;
	Convstore__V1__ConversationState *st = vw_state(S, T, "implicit", 0, &rc);
	if (CHECK(st)) {
		CHECK_EQ_UINT(st->version, 1);
		CHECK_STR_EQ(st->status, "active");
		CHECK_STR_EQ(st->title, "");
		CHECK_EQ_UINT(st->n_metadata, 0);
		CHECK_EQ_UINT(st->n_messages, 1);
		CHECK(st->counts && st->counts->messages == 1);
	}
	vw_free(st);
}

/* ---- exact usage ------------------------------------------------------------------------- */

static void test_cost_exact(void)
{
	/* 1,000 responses: 0.1, 0.2, 0.1, 0.2 ... (a double sum drifts from 150 by ~1e-11) */
	for (int batch = 0; batch < 10; batch++) {
		Convstore__V1__Event *evs[100];
		for (int i = 0; i < 100; i++)
			evs[i] = response(i % 2 ? "m2" : "m1", "x", 3, 5, i % 2 ? 0.2 : 0.1);
		if (!CHECK_EQ_INT(vw_append(NULL, S, T, "costly", evs, 100), CS_OK))
			return;
	}
	int rc;
	Convstore__V1__ConversationState *st = vw_state(S, T, "costly", 0, &rc);
	if (CHECK(st) && CHECK(st->usage)) {
		CHECK(st->usage->cost_usd == 150.0);
		CHECK_EQ_UINT(st->usage->input_tokens, 3000);
		CHECK_EQ_UINT(st->usage->output_tokens, 5000);
		CHECK_EQ_UINT(st->usage->responses, 1000);
	}
	vw_free(st);
	/* and at version 10: five of each, 1.5 exactly */
	st = vw_state(S, T, "costly", 10, &rc);
	if (CHECK(st) && CHECK(st->usage))
		CHECK(st->usage->cost_usd == 1.5);
	vw_free(st);
	/* at 20: ten of each, 3.0 exactly */
	st = vw_state(S, T, "costly", 20, &rc);
	if (CHECK(st) && CHECK(st->usage))
		CHECK(st->usage->cost_usd == 3.0);
	vw_free(st);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_errors(void)
{
	Convstore__V1__ConversationState *st = (void *)1;
	Convstore__V1__ChatTranscript *tr = (void *)1;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_state(&st, S, T, HB, 14, &err), CS_EINVAL);
	CHECK(st == NULL);
	CHECK_EQ_INT(err.code, CS_EINVAL);
	CHECK(err.msg[0] != '\0');
	CHECK_EQ_INT(cs_store_state(&st, S, T, HB, UINT64_MAX, &err), CS_EINVAL);
	CHECK_EQ_INT(cs_store_messages(&tr, S, T, HB, 14, &err), CS_EINVAL);
	CHECK(tr == NULL);
	CHECK_EQ_INT(cs_store_state(&st, S, T, "nobody", 0, &err), CS_ENOTFOUND);
	CHECK(st == NULL);
	CHECK_EQ_INT(cs_store_state(&st, S, T, "nobody", 1, &err), CS_ENOTFOUND);
	CHECK_EQ_INT(cs_store_messages(&tr, S, T, "nobody", 0, &err), CS_ENOTFOUND);
	/* another tenant's conversation of the same id does not exist for this one */
	CHECK_EQ_INT(cs_store_state(&st, S, "t2", HB, 0, &err), CS_ENOTFOUND);
	CHECK_EQ_INT(cs_store_messages(&tr, S, "t2", HB, 0, &err), CS_ENOTFOUND);
	CHECK_EQ_INT(cs_store_summary(&st, S, T, HB, 14, &err), CS_EINVAL);
	CHECK(st == NULL);
	CHECK_EQ_INT(cs_store_summary(&st, S, T, "nobody", 0, &err), CS_ENOTFOUND);
	CHECK(vw_summary_matches(S, T, HB, 0));
	CHECK(vw_summary_matches(S, T, HB, 4));

	/* at_version 0 is now, byte for byte with the timestamps */
	size_t la = 0, lb = 0;
	uint8_t *a = vw_state_bytes(S, T, HB, 0, true, &la);
	uint8_t *b = vw_state_bytes(S, T, HB, 13, true, &lb);
	CHECK(a && b);
	CHECK_MEM_EQ(a, la, b, lb);
	free(a);
	free(b);
	int rc;
	json_t *m0 = vw_messages_json(S, T, HB, 0, &rc);
	json_t *m13 = vw_messages_json(S, T, HB, 13, &rc);
	CHECK(vw_json_equal(m0, m13, "messages at 0 and at 13"));
	json_decref(m0);
	json_decref(m13);
}

/* ---- the messages view ------------------------------------------------------------------- */

static const char *const hand_messages =
    "["
    "{\"role\":\"system\",\"content\":\"sys\"},"
    "{\"role\":\"user\",\"content\":\"hi\",\"name\":\"mia\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
    " {\"id\":\"call_1\",\"type\":\"function\","
    "  \"function\":{\"name\":\"get_user\",\"arguments\":\"{\\\"id\\\":1}\"}},"
    " {\"id\":\"call_2\",\"type\":\"function\","
    "  \"function\":{\"name\":\"get_flight\",\"arguments\":\"{\\\"f\\\":2}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"name\":\"get_user\",\"content\":\"u\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"name\":\"get_flight\","
    " \"content\":\"boom\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
    " {\"id\":\"call_3\",\"type\":\"function\","
    "  \"function\":{\"name\":\"search\",\"arguments\":\"{\\\"q\\\":\\\"x\\\"}\"}}]},"
    "{\"role\":\"assistant\",\"content\":\"ok\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
    " {\"id\":\"call_4\",\"type\":\"function\","
    "  \"function\":{\"name\":\"noop\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_4\",\"name\":\"noop\",\"content\":\"\"}"
    "]";

static void test_messages_view(void)
{
	json_error_t jerr;
	json_t *want = json_loads(hand_messages, 0, &jerr);
	if (!CHECK(want)) {
		fprintf(stderr, "  expected JSON: %s\n", jerr.text);
		return;
	}
	int rc;
	json_t *got = vw_messages_json(S, T, HB, 0, &rc);
	CHECK(vw_json_equal(got, want, "messages view of " HB));
	json_decref(got);

	/* at v6: the first five only; at v1: none */
	json_t *head5 = json_array();
	for (size_t i = 0; i < 5; i++)
		json_array_append(head5, json_array_get(want, i));
	got = vw_messages_json(S, T, HB, 6, &rc);
	CHECK(vw_json_equal(got, head5, "messages view at 6"));
	json_decref(got);
	got = vw_messages_json(S, T, HB, 1, &rc);
	CHECK(got && json_array_size(got) == 0);
	json_decref(got);
	json_decref(head5);
	json_decref(want);
}

/* ---- time travel ------------------------------------------------------------------------- */

/*
 * A deterministic mixed workload: a creation, then user messages, model responses with 0-3 tool
 * calls whose results come some events later (so calls stay pending across snapshot
 * boundaries), agent tool calls, turns, extensions, and an update every 50 events. Built once,
 * applied to every store in the same order, so positions agree between stores.
 */
typedef struct step {
	Convstore__V1__Event *evs[4];
	size_t n;
	Convstore__V1__ConversationUpdated *update;
	Convstore__V1__ConversationCreated *create;
} step;

typedef struct workload {
	step *steps;
	size_t n_steps;
	uint64_t events;
} workload;

static step *next_step(workload *w, size_t cap)
{
	if (w->n_steps == cap) {
		fprintf(stderr, "workload: more than %zu steps\n", cap);
		exit(1);
	}
	return &w->steps[w->n_steps++];
}

static Convstore__V1__Event *mixed_event(unsigned long *x, const char **open, size_t *n_open,
					 unsigned *call_no, uint64_t v)
{
	*x = *x * 6364136223846793005ul + 1442695040888963407ul;
	unsigned r = (unsigned)(*x >> 33) % 10;
	if (r < 3 && *n_open > 0) {
		const char *id = open[0];
		memmove(open, open + 1, --*n_open * sizeof *open);
		return result(id, "fn",
			      r == 0 ? "" : ev_strf(&A, "out %llu", (unsigned long long)v), r == 1);
	}
	if (r < 5) {
		Convstore__V1__Event *e =
		    response(r == 3 ? "gpt-4o" : "gpt-4o-mini", r == 3 ? NULL : "text", v % 7,
			     v % 11, 0.001 * (double)(v % 13));
		for (unsigned k = 0; k < (unsigned)(v % 4) && *n_open < 60; k++) {
			char *id = ev_strf(&A, "c%u", (*call_no)++);
			ev_add_tool_call(&A, e, id, "fn",
					 ev_strf(&A, "{\"v\":%llu}", (unsigned long long)v));
			open[(*n_open)++] = id;
		}
		return e;
	}
	if (r == 5 && *n_open < 60) {
		char *id = ev_strf(&A, "c%u", (*call_no)++);
		open[(*n_open)++] = id;
		return ev_tool_call(&A, NULL, id, "agent_fn", "{}");
	}
	if (r == 6)
		return ev_turn_started(&A, NULL, ev_strf(&A, "turn%llu", (unsigned long long)v));
	if (r == 7)
		return ev_extension(&A, NULL, "x.t", "b", 1);
	return msg(r == 8 ? "user" : "developer",
		   ev_strf(&A, "message %llu", (unsigned long long)v));
}

static workload make_workload(uint64_t events, unsigned long seed)
{
	size_t cap = events + 1;
	workload w = {ev_alloc(&A, cap * sizeof(step)), 0, 0};
	const char *open[64];
	size_t n_open = 0;
	unsigned call_no = 0;
	unsigned long x = seed;
	step *s = next_step(&w, cap);
	s->create = vw_created(&A, "start", VW_KV("k", "0"), NULL);
	w.events = 1;
	while (w.events < events) {
		s = next_step(&w, cap);
		if (w.events % 50 == 49) {
			const char *t = ev_strf(&A, "title %llu", (unsigned long long)w.events);
			s->update =
			    vw_updated(&A, t, w.events % 100 == 49 ? "archived" : "active",
				       VW_KV("k", ev_strf(&A, "%llu", (unsigned long long)w.events),
					     "gone", ""),
				       NULL);
			w.events++;
			continue;
		}
		size_t n = 1 + (w.events % 3);
		for (size_t i = 0; i < n && w.events < events; i++)
			s->evs[s->n++] = mixed_event(&x, open, &n_open, &call_no, ++w.events);
	}
	return w;
}

static int run_workload(cs_store *s, const char *conv, const workload *w)
{
	for (size_t i = 0; i < w->n_steps; i++) {
		const step *st = &w->steps[i];
		cs_append_result r;
		cs_error err = CS_ERROR_INIT;
		int rc;
		if (st->create)
			rc = vw_said(cs_store_create(&r, s, T, conv, st->create, &err), "create",
				     conv, &err);
		else if (st->update)
			rc = vw_said(
			    cs_store_update(&r, s, T, conv, CS_ANY_VERSION, st->update, &err),
			    "update", conv, &err);
		else
			rc = vw_append(NULL, s, T, conv, st->evs, st->n);
		if (rc)
			return rc;
	}
	return CS_OK;
}

/* The state at @v agrees with the events themselves (fold-independent facts). */
static bool agrees_with_events(cs_store *s, const char *conv, uint64_t v,
			       const cs_event_page *events)
{
	int rc;
	Convstore__V1__ConversationState *st = vw_state(s, T, conv, v, &rc);
	const Convstore__V1__Event *e = events->events[v - 1];
	bool ok = st && st->version == v && st->counts && st->counts->events == v &&
		  st->last_position == e->position && st->updated_at &&
		  st->updated_at->seconds == e->recorded_at->seconds &&
		  st->updated_at->nanos == e->recorded_at->nanos;
	if (!ok)
		fprintf(stderr,
			"  state %s at %llu: version, count, position or updated_at wrong\n", conv,
			(unsigned long long)v);
	vw_free(st);
	return ok;
}

/*
 * Every version of @conv in each of @stores against @ref: state bytes (timestamps aside) and
 * messages JSON equal; plus the reference against the events. Returns the versions that differ.
 */
static size_t compare_every_version(cs_store *ref, cs_store *const *stores, size_t n_stores,
				    const char *conv, uint64_t last)
{
	cs_event_page events = {0};
	cs_error err = CS_ERROR_INIT;
	if (fx_read_all(&events, ref, T, conv, 1000, &err) != CS_OK || events.n != last) {
		fprintf(stderr, "  %s: %zu events of %llu\n", conv, events.n,
			(unsigned long long)last);
		cs_event_page_deinit(&events);
		return 1;
	}
	size_t bad = 0;
	for (uint64_t v = 1; v <= last && bad < 5; v++) {
		bool ok = agrees_with_events(ref, conv, v, &events);
		ok &= vw_summary_matches(ref, T, conv, v);
		int rc;
		json_t *want = vw_messages_json(ref, T, conv, v, &rc);
		for (size_t k = 0; k < n_stores; k++) {
			ok &= vw_same_state(stores[k], ref, T, conv, v, false);
			ok &= vw_summary_matches(stores[k], T, conv, v);
			json_t *got = vw_messages_json(stores[k], T, conv, v, &rc);
			ok &= vw_json_equal(got, want, "messages view");
			json_decref(got);
		}
		json_decref(want);
		bad += !ok;
	}
	cs_event_page_deinit(&events);
	return bad;
}

static void test_time_travel(void)
{
	static const unsigned every[] = {1, 2, 7, 128};
	cs_store *ref = vw_open_in(dir, "never", VW_NEVER);
	cs_store *stores[4];
	for (size_t k = 0; k < 4; k++)
		stores[k] = vw_open_in(dir, ev_strf(&A, "every-%u", every[k]), every[k]);
	workload w = make_workload(300, 42);
	bool ok = CHECK_EQ_INT(run_workload(ref, "mixed", &w), CS_OK);
	for (size_t k = 0; k < 4; k++)
		ok &= CHECK_EQ_INT(run_workload(stores[k], "mixed", &w), CS_OK);
	if (ok) {
		CHECK_EQ_UINT(fx_version(ref, T, "mixed"), 300);
		CHECK_EQ_UINT(compare_every_version(ref, stores, 4, "mixed", 300), 0);
		/* now equals the last version, timestamps included, in every store */
		for (size_t k = 0; k < 4; k++) {
			size_t la = 0, lb = 0;
			uint8_t *a = vw_state_bytes(stores[k], T, "mixed", 0, true, &la);
			uint8_t *b = vw_state_bytes(stores[k], T, "mixed", 300, true, &lb);
			CHECK(a && b);
			CHECK_MEM_EQ(a, la, b, lb);
			free(a);
			free(b);
		}
	}
	cs_store_close(ref);
	for (size_t k = 0; k < 4; k++)
		cs_store_close(stores[k]);
}

/* 1,100 events: many snapshot boundaries at 7 and at the default 128. */
static void test_long_conversation(void)
{
	cs_store *ref = vw_open_in(dir, "long-never", VW_NEVER);
	cs_store *stores[2] = {vw_open_in(dir, "long-7", 7), vw_open_in(dir, "long-default", 0)};
	workload w = make_workload(1100, 7);
	bool ok = CHECK_EQ_INT(run_workload(ref, "long", &w), CS_OK);
	for (size_t k = 0; k < 2; k++)
		ok &= CHECK_EQ_INT(run_workload(stores[k], "long", &w), CS_OK);
	if (ok)
		CHECK_EQ_UINT(compare_every_version(ref, stores, 2, "long", 1100), 0);
	cs_store_close(ref);
	cs_store_close(stores[0]);
	cs_store_close(stores[1]);
}

int main(void)
{
	fx_tmpdir(dir, "state");
	S = vw_open_in(dir, "main", 0);
	CHECK_RUN(test_fields_now);
	CHECK_RUN(test_fields_earlier);
	CHECK_RUN(test_implicit_creation);
	CHECK_RUN(test_cost_exact);
	CHECK_RUN(test_errors);
	CHECK_RUN(test_messages_view);
	CHECK_RUN(test_time_travel);
	CHECK_RUN(test_long_conversation);
	cs_store_close(S);
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
