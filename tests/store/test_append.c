/*
 * test_append.c - proves the append contract of cs_store_append() (store.h), one case per rule:
 *
 *  - versions are 1..n without gaps across requests; positions grow strictly, store-wide;
 *  - expected_version: CS_ANY_VERSION, 0 (must not exist) and N, with CS_ECONFLICT carrying the
 *    current version, and a conflict storing nothing;
 *  - idempotency: a retry with the same ids returns the original versions and positions with
 *    replayed=true whatever expected_version says, a partial overlap is CS_ECONFLICT, duplicate
 *    ids in one request are CS_EINVAL;
 *  - validation: every rejected event is named by err->index and the request stores nothing
 *    (stats, head and stream unchanged);
 *  - limits: events per request and bytes per event (CS_ETOOBIG);
 *  - generated ids (UUID v4) in the stored copy while the caller's structs stay untouched, and
 *    the server-set fields of the stored copy;
 *  - the head after appends: version, last position, counts, pending tool calls, usage totals.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"

#define T		"t1"
#define MAX_REQ_EVENTS	8
#define MAX_EVENT_BYTES (64u << 10)
#define DONT_CARE	(-1000)

/* A request as a compound-literal array, and its length. */
#define EVS(...)  ((Convstore__V1__Event *[]){__VA_ARGS__})
#define NEVS(...) (sizeof(EVS(__VA_ARGS__)) / sizeof(Convstore__V1__Event *))
#define APPEND(res, conv, expected, err, ...)                                                      \
	append_n((res), (conv), (expected), (err), EVS(__VA_ARGS__), NEVS(__VA_ARGS__))

static cs_store *S;
static ev_arena A = EV_ARENA_INIT;

static int append_n(cs_append_result *res, const char *conv, int64_t expected, cs_error *err,
		    Convstore__V1__Event **evs, size_t n)
{
	cs_error e0 = CS_ERROR_INIT;
	*err = e0;
	memset(res, 0, sizeof *res);
	return cs_store_append(res, S, T, conv, expected, evs, n, err);
}

/* Append one request that must succeed; returns its result (zeroed on failure). */
static cs_append_result ok_n(const char *conv, int64_t expected, Convstore__V1__Event **evs,
			     size_t n)
{
	cs_append_result r;
	cs_error err;
	int rc = append_n(&r, conv, expected, &err, evs, n);
	if (!CHECK_EQ_INT(rc, CS_OK))
		fprintf(stderr, "  append to %s: %s (index %d)\n", conv, err.msg, err.index);
	return r;
}
#define OK(conv, expected, ...) ok_n((conv), (expected), EVS(__VA_ARGS__), NEVS(__VA_ARGS__))

static Convstore__V1__Event *user(const char *text)
{
	return ev_message(&A, NULL, "user", text);
}

/*
 * Append a request that must be refused with @code and, unless DONT_CARE, err->index == @index;
 * checks that nothing was stored: store-wide event count and last position, the target's head
 * version and its stream length are what they were. @tenant NULL means T.
 */
static void refused_n(const char *what, const char *tenant, const char *conv, int64_t expected,
		      Convstore__V1__Event **evs, size_t n, int code, int index)
{
	const char *t = tenant ? tenant : T;
	cs_store_stats before = fx_stats(S);
	uint64_t v_before = cs_id_valid(conv) && cs_id_valid(t) ? fx_version(S, t, conv) : 0;
	long count_before = cs_id_valid(conv) && cs_id_valid(t) ? fx_count(S, t, conv) : 0;

	cs_append_result r;
	memset(&r, 0, sizeof r);
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_append(&r, S, t, conv, expected, evs, n, &err);
	bool ok = CHECK_EQ_INT(rc, code);
	ok &= CHECK_EQ_INT(err.code, code);
	if (index != DONT_CARE)
		ok &= CHECK_EQ_INT(err.index, index);
	ok &= CHECK(err.msg[0] != '\0');

	cs_store_stats after = fx_stats(S);
	ok &= CHECK_EQ_UINT(after.events, before.events);
	ok &= CHECK_EQ_UINT(after.last_position, before.last_position);
	ok &= CHECK_EQ_UINT(after.conversations, before.conversations);
	if (cs_id_valid(conv) && cs_id_valid(t)) {
		ok &= CHECK_EQ_UINT(fx_version(S, t, conv), v_before);
		ok &= CHECK_EQ_INT(fx_count(S, t, conv), count_before);
	}
	if (!ok)
		fprintf(stderr, "  case: %s (rc %d, index %d, msg \"%s\")\n", what, rc, err.index,
			err.msg);
}
#define REFUSED(what, conv, expected, code, index, ...)                                            \
	refused_n((what), NULL, (conv), (expected), EVS(__VA_ARGS__), NEVS(__VA_ARGS__), (code),   \
		  (index))

/* A request of @index good events, then @bad, then one more good one: refused at @index. */
static void bad_event_at(const char *what, const char *conv, Convstore__V1__Event *bad, int index)
{
	Convstore__V1__Event *evs[8];
	int n = 0;
	for (int i = 0; i < index; i++)
		evs[n++] = user("fine");
	evs[n++] = bad;
	evs[n++] = user("also fine");
	refused_n(what, NULL, conv, CS_ANY_VERSION, evs, (size_t)n, CS_EINVAL, index);
}

/* ---- versions and positions ---------------------------------------------------------------- */

static void test_versions_and_positions(void)
{
	cs_append_result r1 = OK("vp", CS_ANY_VERSION, user("a"), user("b"), user("c"));
	CHECK_EQ_UINT(r1.first_version, 1);
	CHECK_EQ_UINT(r1.last_version, 3);
	CHECK(!r1.replayed);
	CHECK(r1.first_position >= 1);
	CHECK(r1.last_position > r1.first_position);

	cs_append_result r2 = OK("vp", CS_ANY_VERSION, user("d"), user("e"));
	CHECK_EQ_UINT(r2.first_version, 4);
	CHECK_EQ_UINT(r2.last_version, 5);
	CHECK(r2.first_position > r1.last_position);
	CHECK(r2.last_position > r2.first_position);

	cs_append_result r3 = OK("vp-other", CS_ANY_VERSION, user("x"), user("y"));
	CHECK_EQ_UINT(r3.first_version, 1);
	CHECK_EQ_UINT(r3.last_version, 2);
	CHECK(r3.first_position > r2.last_position);

	cs_append_result r4 = OK("vp", CS_ANY_VERSION, user("f"));
	CHECK_EQ_UINT(r4.first_version, 6);
	CHECK_EQ_UINT(r4.last_version, 6);
	CHECK_EQ_UINT(r4.first_position, r4.last_position);
	CHECK(r4.first_position > r3.last_position);

	cs_store_stats st = fx_stats(S);
	CHECK_EQ_UINT(st.last_position, r4.last_position);

	/* the stream shows the same versions and positions, in order */
	cs_event_page all = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_read_all(&all, S, T, "vp", 2, &err), CS_OK);
	if (CHECK_EQ_UINT(all.n, 6)) {
		static const char *const want[] = {"a", "b", "c", "d", "e", "f"};
		for (size_t i = 0; i < 6; i++) {
			CHECK_EQ_UINT(all.events[i]->version, i + 1);
			CHECK_STR_EQ(all.events[i]->message->content, want[i]);
			if (i)
				CHECK(all.events[i]->position > all.events[i - 1]->position);
		}
		CHECK_EQ_UINT(all.events[0]->position, r1.first_position);
		CHECK_EQ_UINT(all.events[2]->position, r1.last_position);
		CHECK_EQ_UINT(all.events[3]->position, r2.first_position);
		CHECK_EQ_UINT(all.events[4]->position, r2.last_position);
		CHECK_EQ_UINT(all.events[5]->position, r4.first_position);
	}
	cs_event_page_deinit(&all);

	/* paging: next continues, 0 once the end was read; past the end is an empty page */
	cs_event_page pg = {0};
	CHECK_EQ_INT(cs_store_read_stream(&pg, S, T, "vp", 1, 2, CS_FORWARD, &err), CS_OK);
	CHECK_EQ_UINT(pg.n, 2);
	CHECK_EQ_UINT(pg.next, 3);
	cs_event_page_deinit(&pg);
	CHECK_EQ_INT(cs_store_read_stream(&pg, S, T, "vp", 5, 2, CS_FORWARD, &err), CS_OK);
	CHECK_EQ_UINT(pg.n, 2);
	CHECK_EQ_UINT(pg.next, 0);
	cs_event_page_deinit(&pg);
	CHECK_EQ_INT(cs_store_read_stream(&pg, S, T, "vp", 7, 2, CS_FORWARD, &err), CS_OK);
	CHECK_EQ_UINT(pg.n, 0);
	CHECK_EQ_UINT(pg.next, 0);
	cs_event_page_deinit(&pg);
	CHECK_EQ_INT(cs_store_read_stream(&pg, S, T, "vp", 3, 10, CS_BACKWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(pg.n, 3))
		CHECK_EQ_UINT(pg.events[2]->version, 1);
	CHECK_EQ_UINT(pg.next, 0);
	cs_event_page_deinit(&pg);
	CHECK_EQ_INT(cs_store_read_feed(&pg, S, NULL, r4.last_position, 10, &err), CS_OK);
	CHECK_EQ_UINT(pg.n, 0);
	CHECK_EQ_UINT(pg.next, r4.last_position);
	cs_event_page_deinit(&pg);
	CHECK_EQ_INT(cs_store_read_feed(&pg, S, NULL, 0, 3, &err), CS_OK);
	if (CHECK_EQ_UINT(pg.n, 3))
		CHECK_EQ_UINT(pg.next, pg.events[2]->position);
	cs_event_page_deinit(&pg);

	/* backward from the end */
	cs_event_page back = {0};
	CHECK_EQ_INT(cs_store_read_stream(&back, S, T, "vp", 0, 4, CS_BACKWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(back.n, 4)) {
		for (size_t i = 0; i < 4; i++)
			CHECK_EQ_UINT(back.events[i]->version, 6 - i);
		CHECK_EQ_UINT(back.next, 2);
	}
	cs_event_page_deinit(&back);

	/* the feed after r1's first event holds everything else of both conversations */
	cs_event_page feed = {0};
	CHECK_EQ_INT(cs_store_read_feed(&feed, S, T, r1.first_position, 100, &err), CS_OK);
	if (CHECK_EQ_UINT(feed.n, 7)) {
		CHECK_EQ_UINT(feed.events[0]->position, r1.first_position + 1);
		for (size_t i = 1; i < feed.n; i++)
			CHECK(feed.events[i]->position > feed.events[i - 1]->position);
		CHECK_STR_EQ(feed.events[4]->conversation_id, "vp-other");
		CHECK_EQ_UINT(feed.events[6]->version, 6);
		CHECK_EQ_UINT(feed.next, r4.last_position);
	}
	cs_event_page_deinit(&feed);

	Convstore__V1__Head *h = NULL;
	if (CHECK_EQ_INT(cs_store_head(&h, S, T, "vp", &err), CS_OK)) {
		CHECK_EQ_UINT(h->version, 6);
		CHECK_EQ_UINT(h->last_position, r4.last_position);
		CHECK(h->counts && h->counts->events == 6);
		protobuf_c_message_free_unpacked(&h->base, NULL);
	}
}

static void test_not_found(void)
{
	cs_error err = CS_ERROR_INIT;
	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "nobody", 1, 10, CS_FORWARD, &err),
		     CS_ENOTFOUND);
	CHECK_EQ_INT(err.code, CS_ENOTFOUND);
	CHECK_EQ_UINT(p.n, 0);
	cs_event_page_deinit(&p);
	Convstore__V1__Head dummy = CONVSTORE__V1__HEAD__INIT;
	Convstore__V1__Head *h = &dummy; /* must be reset to NULL */
	CHECK_EQ_INT(cs_store_head(&h, S, T, "nobody", &err), CS_ENOTFOUND);
	CHECK(h == NULL);
}

/* ---- expected version ---------------------------------------------------------------------- */

static void conflict(const char *conv, int64_t expected, uint64_t current)
{
	cs_store_stats before = fx_stats(S);
	cs_append_result r;
	cs_error err;
	int rc = APPEND(&r, conv, expected, &err, user("late"));
	CHECK_EQ_INT(rc, CS_ECONFLICT);
	CHECK_EQ_INT(err.code, CS_ECONFLICT);
	if (!CHECK_EQ_UINT(err.current_version, current))
		fprintf(stderr, "  case: %s expected %lld\n", conv, (long long)expected);
	CHECK_EQ_INT(err.index, CS_NO_INDEX);
	CHECK_EQ_UINT(fx_stats(S).events, before.events);
	CHECK_EQ_UINT(fx_version(S, T, conv), current);
}

static void test_expected_version(void)
{
	cs_append_result r = OK("ev", 0, user("first"));
	CHECK_EQ_UINT(r.first_version, 1);
	conflict("ev", 0, 1);

	r = OK("ev", 1, user("second"));
	CHECK_EQ_UINT(r.first_version, 2);
	conflict("ev", 1, 2); /* stale */
	conflict("ev", 5, 2); /* ahead */

	r = OK("ev", CS_ANY_VERSION, user("third"), user("fourth"));
	CHECK_EQ_UINT(r.first_version, 3);
	CHECK_EQ_UINT(r.last_version, 4);
	r = OK("ev", 4, user("fifth"));
	CHECK_EQ_UINT(r.first_version, 5);

	/* N on a conversation that does not exist: current is 0 and it stays absent */
	conflict("ev-absent", 3, 0);
	conflict("ev-absent", 1, 0);

	/* an expected version that is none of ANY, 0, N */
	REFUSED("expected -2", "ev", -2, CS_EINVAL, DONT_CARE, user("x"));
}

/* ---- idempotency --------------------------------------------------------------------------- */

static void replay(const char *what, int64_t expected, Convstore__V1__Event **evs, size_t n,
		   const cs_append_result *orig)
{
	cs_store_stats before = fx_stats(S);
	cs_append_result r;
	cs_error err;
	int rc = append_n(&r, "idem", expected, &err, evs, n);
	bool ok = CHECK_EQ_INT(rc, CS_OK);
	ok &= CHECK(r.replayed);
	ok &= CHECK_EQ_UINT(r.first_version, orig->first_version);
	ok &= CHECK_EQ_UINT(r.last_version, orig->last_version);
	ok &= CHECK_EQ_UINT(r.first_position, orig->first_position);
	ok &= CHECK_EQ_UINT(r.last_position, orig->last_position);
	cs_store_stats after = fx_stats(S);
	ok &= CHECK_EQ_UINT(after.events, before.events);
	ok &= CHECK_EQ_UINT(after.last_position, before.last_position);
	ok &= CHECK_EQ_INT(fx_count(S, T, "idem"), 4);
	ok &= CHECK_EQ_UINT(fx_version(S, T, "idem"), 4);
	if (!ok)
		fprintf(stderr, "  case: retry %s (rc %d: %s)\n", what, rc, err.msg);
}

static void test_idempotency(void)
{
	OK("idem", 0, ev_message(&A, "i0", "system", "be brief"));
	Convstore__V1__Event *e1 = ev_message(&A, "i1", "user", "hello");
	Convstore__V1__Event *e2 = ev_model_response(&A, "i2", "gpt-4o", "hi");
	cs_append_result orig = OK("idem", 1, e1, e2);
	CHECK_EQ_UINT(orig.first_version, 2);
	CHECK_EQ_UINT(orig.last_version, 3);
	CHECK(!orig.replayed);
	cs_append_result r4 = OK("idem", 3, ev_message(&A, "i3", "user", "thanks"));
	CHECK_EQ_UINT(r4.first_version, 4);

	/* every expected-version mode: any, 0, the stale N, a wrong N, the current N */
	Convstore__V1__Event *again[] = {e1, e2};
	replay("any", CS_ANY_VERSION, again, 2, &orig);
	replay("0", 0, again, 2, &orig);
	replay("stale 1", 1, again, 2, &orig);
	replay("wrong 7", 7, again, 2, &orig);
	replay("current 4", 4, again, 2, &orig);

	/* the id alone decides: other content under the same ids is still a replay, and the
	 * stored content stays the original */
	Convstore__V1__Event *other[] = {ev_message(&A, "i1", "user", "changed"),
					 ev_message(&A, "i2", "user", "changed too")};
	replay("changed content", CS_ANY_VERSION, other, 2, &orig);
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "idem", 2, 1, CS_FORWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 1))
		CHECK_STR_EQ(p.events[0]->message->content, "hello");
	cs_event_page_deinit(&p);

	/* a retried request whose tool call is pending now, and a retried answer whose call is
	 * answered now: both are retries, not new requests to validate */
	Convstore__V1__Event *call = ev_model_response(&A, "i-call", "gpt-4o", NULL);
	ev_add_tool_call(&A, call, "k1", "get_user", "{}");
	Convstore__V1__Event *call_req[] = {call};
	cs_append_result rc1 = ok_n("idem-tools", CS_ANY_VERSION, call_req, 1);
	cs_append_result rc1b = ok_n("idem-tools", 1, call_req, 1);
	CHECK(rc1b.replayed);
	CHECK_EQ_UINT(rc1b.first_version, rc1.first_version);
	Convstore__V1__Event *answer_req[] = {
	    ev_tool_result(&A, "i-answer", "k1", "get_user", "{}")};
	cs_append_result ra1 = ok_n("idem-tools", CS_ANY_VERSION, answer_req, 1);
	cs_append_result ra1b = ok_n("idem-tools", CS_ANY_VERSION, answer_req, 1);
	CHECK(ra1b.replayed);
	CHECK_EQ_UINT(ra1b.first_version, ra1.first_version);
	CHECK_EQ_UINT(ra1b.first_version, 2);
	CHECK_EQ_INT(fx_count(S, T, "idem-tools"), 2);

	/* a retried single-event request */
	Convstore__V1__Event *third[] = {ev_message(&A, "i3", "user", "thanks")};
	replay("single", CS_ANY_VERSION, third, 1, &r4);

	/* partial overlap, either order: a conflict, and the new id is not stored */
	REFUSED("overlap old+new", "idem", CS_ANY_VERSION, CS_ECONFLICT, DONT_CARE,
		ev_message(&A, "i2", "user", "x"), ev_message(&A, "i5", "user", "y"));
	REFUSED("overlap new+old, right N", "idem", 4, CS_ECONFLICT, DONT_CARE,
		ev_message(&A, "i5", "user", "y"), ev_message(&A, "i1", "user", "x"));
	cs_append_result r5 = OK("idem", 4, ev_message(&A, "i5", "user", "y"));
	CHECK_EQ_UINT(r5.first_version, 5);
	CHECK(!r5.replayed);

	/* duplicate ids inside one request: the second occurrence is the bad event */
	REFUSED("duplicate ids", "idem", CS_ANY_VERSION, CS_EINVAL, 2,
		ev_message(&A, "d1", "user", "x"), ev_message(&A, "d2", "user", "y"),
		ev_message(&A, "d1", "user", "z"));
	REFUSED("duplicate stored ids", "idem", CS_ANY_VERSION, CS_EINVAL, 1,
		ev_message(&A, "i1", "user", "x"), ev_message(&A, "i1", "user", "x"));

	/* ids are scoped to the conversation (and the tenant) */
	cs_append_result ro = OK("idem-other", CS_ANY_VERSION, ev_message(&A, "i1", "user", "x"));
	CHECK(!ro.replayed);
	CHECK_EQ_UINT(ro.first_version, 1);
	cs_append_result rt;
	cs_error e2err = CS_ERROR_INIT;
	Convstore__V1__Event *tev[] = {ev_message(&A, "i1", "user", "x")};
	CHECK_EQ_INT(cs_store_append(&rt, S, "t2", "idem", CS_ANY_VERSION, tev, 1, &e2err), CS_OK);
	CHECK(!rt.replayed);
	CHECK_EQ_UINT(rt.first_version, 1);
}

/* ---- validation ---------------------------------------------------------------------------- */

static void test_payload_rules(void)
{
	OK("val", 0, user("start"));

	bad_event_at("no payload", "val", ev_empty(&A, NULL), 0);
	static const struct {
		const char *what;
		Convstore__V1__Event__PayloadCase which;
		int index;
	} server_only[] = {
	    {"conversation_created", CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_CREATED, 1},
	    {"conversation_forked", CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED, 2},
	    {"conversation_updated", CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_UPDATED, 1},
	    {"conversation_deleted", CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED, 0},
	};
	for (size_t i = 0; i < sizeof server_only / sizeof server_only[0]; i++)
		bad_event_at(server_only[i].what, "val",
			     ev_server_only(&A, NULL, server_only[i].which), server_only[i].index);

	bad_event_at("role tool", "val", ev_message(&A, NULL, "tool", "x"), 1);
	bad_event_at("role robot", "val", ev_message(&A, NULL, "robot", "x"), 2);
	bad_event_at("role empty", "val", ev_message(&A, NULL, "", "x"), 0);
	bad_event_at("role User", "val", ev_message(&A, NULL, "User", "x"), 1);

	cs_append_result r =
	    OK("val", CS_ANY_VERSION, ev_message(&A, NULL, "system", "s"),
	       ev_message(&A, NULL, "developer", "d"), ev_message(&A, NULL, "user", "u"),
	       ev_message(&A, NULL, "assistant", "a"));
	CHECK_EQ_UINT(r.first_version, 2);
	CHECK_EQ_UINT(r.last_version, 5);
}

static Convstore__V1__Event *calls(const char *a, const char *b)
{
	Convstore__V1__Event *ev = ev_model_response(&A, NULL, "gpt-4o", NULL);
	ev_add_tool_call(&A, ev, a, "get_user", "{\"user_id\":\"u1\"}");
	if (b)
		ev_add_tool_call(&A, ev, b, "get_flight", "{}");
	return ev;
}

static Convstore__V1__Event *result(const char *call_id)
{
	return ev_tool_result(&A, NULL, call_id, "get_user", "{\"ok\":true}");
}

static size_t pending(const char *conv)
{
	Convstore__V1__Head *h = NULL;
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(cs_store_head(&h, S, T, conv, &err), CS_OK))
		return SIZE_MAX;
	size_t n = h->n_pending_tool_calls;
	protobuf_c_message_free_unpacked(&h->base, NULL);
	return n;
}

static void test_tool_calls(void)
{
	OK("tc", 0, user("go"));

	bad_event_at("result without call", "tc", result("nope"), 1);

	/* answered in the same request, and in a later one */
	OK("tc", CS_ANY_VERSION, calls("c1", NULL), result("c1"));
	CHECK_EQ_UINT(pending("tc"), 0);
	OK("tc", CS_ANY_VERSION, calls("c2", "c3"));
	CHECK_EQ_UINT(pending("tc"), 2);
	OK("tc", CS_ANY_VERSION, result("c3"));
	CHECK_EQ_UINT(pending("tc"), 1);
	OK("tc", CS_ANY_VERSION, result("c2"));
	CHECK_EQ_UINT(pending("tc"), 0);

	/* a call made by the agent itself */
	OK("tc", CS_ANY_VERSION, ev_tool_call(&A, NULL, "a1", "search", "{\"q\":\"x\"}"));
	CHECK_EQ_UINT(pending("tc"), 1);
	OK("tc", CS_ANY_VERSION, ev_tool_result(&A, NULL, "a1", "search", "[]"));
	CHECK_EQ_UINT(pending("tc"), 0);

	/* answering twice: the second answers nothing */
	bad_event_at("second answer", "tc", result("c1"), 0);

	/* reusing an answered id is fine (tau-bench does it), both kinds */
	OK("tc", CS_ANY_VERSION, calls("c1", NULL), result("c1"));
	OK("tc", CS_ANY_VERSION, ev_tool_call(&A, NULL, "c1", "search", "{}"), result("c1"));
	CHECK_EQ_UINT(pending("tc"), 0);

	/* a result before its call in the same request answers nothing */
	REFUSED("result before its call", "tc", CS_ANY_VERSION, CS_EINVAL, 0, result("r1"),
		calls("r1", NULL));

	/* reusing a pending id is not; the pending entry names the event that requested it */
	cs_append_result rp = OK("tc", CS_ANY_VERSION, calls("p1", NULL));
	Convstore__V1__Head *h = NULL;
	cs_error err = CS_ERROR_INIT;
	if (CHECK_EQ_INT(cs_store_head(&h, S, T, "tc", &err), CS_OK)) {
		if (CHECK_EQ_UINT(h->n_pending_tool_calls, 1)) {
			CHECK_STR_EQ(h->pending_tool_calls[0]->id, "p1");
			CHECK_EQ_UINT(h->pending_tool_calls[0]->version, rp.first_version);
		}
		protobuf_c_message_free_unpacked(&h->base, NULL);
	}
	bad_event_at("pending id in model_response", "tc", calls("p1", NULL), 1);
	bad_event_at("pending id in tool_call", "tc", ev_tool_call(&A, NULL, "p1", "x", "{}"), 0);
	REFUSED("same id twice in one request", "tc", CS_ANY_VERSION, CS_EINVAL, 1,
		ev_tool_call(&A, NULL, "p2", "x", "{}"), ev_tool_call(&A, NULL, "p2", "x", "{}"));
	bad_event_at("same id twice in one response", "tc", calls("p3", "p3"), 1);
	CHECK_EQ_UINT(pending("tc"), 1);

	/* a call must have an id */
	bad_event_at("tool_call without id", "tc", ev_tool_call(&A, NULL, "", "x", "{}"), 1);
	bad_event_at("tool_call with NULL id", "tc", ev_tool_call(&A, NULL, NULL, "x", "{}"), 0);
	bad_event_at("model_response call without id", "tc", calls("", NULL), 2);
	bad_event_at("tool_result without call id", "tc", result(""), 0);

	OK("tc", CS_ANY_VERSION, result("p1"));
	CHECK_EQ_UINT(pending("tc"), 0);
}

static void test_utf8(void)
{
	OK("u8", 0, user("start"));
	/* valid multi-byte text passes */
	OK("u8", CS_ANY_VERSION, user("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));

	bad_event_at("content 0xff", "u8", user("ab\xff"), 1);
	bad_event_at("truncated sequence", "u8", user("\xe2\x82"), 0);
	bad_event_at("overlong nul", "u8", user("a\xc0\x80"), 2);
	bad_event_at("surrogate", "u8", user("\xed\xa0\x80"), 1);

	Convstore__V1__Event *actor = user("x");
	actor->actor = "\xc3";
	bad_event_at("actor", "u8", actor, 1);
	Convstore__V1__Event *meta = user("x");
	ev_add_metadata(&A, meta, "k\xff", "v");
	bad_event_at("metadata key", "u8", meta, 0);
	Convstore__V1__Event *metav = user("x");
	ev_add_metadata(&A, metav, "k", "\xfe");
	bad_event_at("metadata value", "u8", metav, 1);
	bad_event_at("model content", "u8", ev_model_response(&A, NULL, "m", "\xff"), 1);
	Convstore__V1__Event *args = ev_tool_call(&A, NULL, "u1", "f", "{\"a\":\"\xff\"}");
	bad_event_at("tool arguments", "u8", args, 0);
	bad_event_at("tool output", "u8",
		     ev_tool_result(&A, NULL, "u1", "f", "\xf8\x88\x80\x80\x80"), 1);
	bad_event_at("extension type", "u8", ev_extension(&A, NULL, "x\xff", NULL, 0), 0);

	/* a string nested two levels down: message.parts[0].text */
	Convstore__V1__Event *part = user("x");
	Convstore__V1__ContentPart *cp = ev_alloc(&A, sizeof *cp);
	convstore__v1__content_part__init(cp);
	cp->type = "text";
	cp->text = "bad \xff part";
	Convstore__V1__ContentPart **parts = ev_alloc(&A, sizeof *parts);
	parts[0] = cp;
	part->message->n_parts = 1;
	part->message->parts = parts;
	bad_event_at("message part text", "u8", part, 1);

	/* bytes are not text: any byte goes */
	static const unsigned char raw[] = {0xff, 0xfe, 0x00, 0xc0};
	cs_append_result r = OK("u8", CS_ANY_VERSION, ev_extension(&A, NULL, "blob", raw, 4));
	CHECK_EQ_UINT(r.first_version, 3);

	/* an occurred_at no RFC 3339 string can show: stored, it made every JSON read of the
	 * conversation fail (found by tests/fuzz/fuzz_event) */
	Convstore__V1__Event *late = user("x");
	late->occurred_at = ev_timestamp(&A, 253402300800LL, 0);
	bad_event_at("occurred_at after 9999", "u8", late, 1);
	Convstore__V1__Event *nanos = user("x");
	nanos->occurred_at = ev_timestamp(&A, 0, 1000000000);
	bad_event_at("occurred_at nanos", "u8", nanos, 0);
}

static void test_event_ids(void)
{
	OK("ids", 0, user("start"));
	char *id129 = ev_repeat(&A, 'a', 129);
	char *id128 = ev_repeat(&A, 'b', 128);

	bad_event_at("id a/b", "ids", ev_message(&A, "a/b", "user", "x"), 1);
	bad_event_at("id 129 chars", "ids", ev_message(&A, id129, "user", "x"), 0);
	bad_event_at("id with space", "ids", ev_message(&A, "a b", "user", "x"), 1);
	bad_event_at("id ../x", "ids", ev_message(&A, "../x", "user", "x"), 2);

	cs_append_result r = OK("ids", CS_ANY_VERSION, ev_message(&A, id128, "user", "x"),
				ev_message(&A, "Az09._:-", "user", "y"));
	CHECK_EQ_UINT(r.last_version, 3);
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "ids", 2, 2, CS_FORWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 2)) {
		CHECK_STR_EQ(p.events[0]->id, id128);
		CHECK_STR_EQ(p.events[1]->id, "Az09._:-");
	}
	cs_event_page_deinit(&p);
}

static void test_metadata_limits(void)
{
	OK("md", 0, user("start"));
	char keys[CS_MAX_METADATA_PAIRS + 1][8];
	for (int i = 0; i <= CS_MAX_METADATA_PAIRS; i++)
		snprintf(keys[i], sizeof keys[i], "k%d", i);

	Convstore__V1__Event *many = user("x");
	for (int i = 0; i <= CS_MAX_METADATA_PAIRS; i++)
		ev_add_metadata(&A, many, keys[i], "v");
	bad_event_at("65 pairs", "md", many, 1);

	Convstore__V1__Event *key = user("x");
	ev_add_metadata(&A, key, ev_repeat(&A, 'k', CS_MAX_METADATA_KEY + 1), "v");
	bad_event_at("key 129 bytes", "md", key, 0);

	Convstore__V1__Event *val = user("x");
	ev_add_metadata(&A, val, "k", ev_repeat(&A, 'v', CS_MAX_METADATA_VALUE + 1));
	bad_event_at("value 4097 bytes", "md", val, 2);

	/* exactly at every limit is fine */
	Convstore__V1__Event *full = user("x");
	for (int i = 0; i < CS_MAX_METADATA_PAIRS - 1; i++)
		ev_add_metadata(&A, full, keys[i], "v");
	ev_add_metadata(&A, full, ev_repeat(&A, 'k', CS_MAX_METADATA_KEY),
			ev_repeat(&A, 'v', CS_MAX_METADATA_VALUE));
	cs_append_result r = OK("md", CS_ANY_VERSION, full);
	CHECK_EQ_UINT(r.first_version, 2);
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "md", 2, 1, CS_FORWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 1)) {
		CHECK_EQ_UINT(p.events[0]->n_metadata, CS_MAX_METADATA_PAIRS);
		CHECK(ev_same_as_sent(&A, p.events[0], full, true));
	}
	cs_event_page_deinit(&p);
}

static void test_server_fields_refused(void)
{
	OK("sf", 0, user("start"));
	Convstore__V1__Event *e;

	e = user("x");
	e->version = 5;
	bad_event_at("client version", "sf", e, 1);
	e = user("x");
	e->position = 9;
	bad_event_at("client position", "sf", e, 0);
	e = user("x");
	e->recorded_at = ev_timestamp(&A, 1700000000, 0);
	bad_event_at("client recorded_at", "sf", e, 1);
	e = user("x");
	e->type = "bogus";
	bad_event_at("client type", "sf", e, 2);
	e = user("x");
	e->conversation_id = "elsewhere";
	bad_event_at("conversation_id of another conversation", "sf", e, 1);
	e = user("x");
	e->tenant = "t9";
	bad_event_at("tenant of another tenant", "sf", e, 0);
}

static void bad_target(const char *what, const char *tenant, const char *conv)
{
	refused_n(what, tenant, conv, CS_ANY_VERSION, EVS(user("x")), 1, CS_EINVAL, CS_NO_INDEX);
}

static void test_longest_ids(void)
{
	const char *t = ev_repeat(&A, 'T', CS_MAX_ID_LEN);
	const char *c = ev_repeat(&A, 'C', CS_MAX_ID_LEN);
	Convstore__V1__Event *evs[] = {
	    ev_message(&A, ev_repeat(&A, 'E', CS_MAX_ID_LEN), "user", "longest ids")};
	cs_append_result r, again;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_append(&r, S, t, c, 0, evs, 1, &err), CS_OK);
	CHECK_EQ_UINT(r.first_version, 1);
	CHECK_EQ_INT(cs_store_append(&again, S, t, c, 0, evs, 1, &err), CS_OK);
	CHECK(again.replayed);
	CHECK_EQ_UINT(again.first_position, r.first_position);
	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_stream(&p, S, t, c, 1, 10, CS_FORWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 1)) {
		CHECK_STR_EQ(p.events[0]->tenant, t);
		CHECK_STR_EQ(p.events[0]->conversation_id, c);
	}
	cs_event_page_deinit(&p);
	CHECK_EQ_UINT(fx_version(S, t, c), 1);
	/* a conversation id that is a prefix of another stays separate */
	CHECK_EQ_UINT(fx_version(S, t, ev_repeat(&A, 'C', CS_MAX_ID_LEN - 1)), 0);

	err = (cs_error)CS_ERROR_INIT;
	Convstore__V1__Event *late[] = {user("late")};
	CHECK_EQ_INT(cs_store_append(&r, S, t, c, INT64_MAX, late, 1, &err), CS_ECONFLICT);
	CHECK_EQ_UINT(err.current_version, 1);
}

static void test_request_rules(void)
{
	char *long_id = ev_repeat(&A, 'c', CS_MAX_ID_LEN + 1);
	cs_store_stats before = fx_stats(S);
	bad_target("tenant empty", "", "ok");
	bad_target("tenant ../x", "../x", "ok");
	bad_target("tenant 129 chars", long_id, "ok");
	bad_target("conversation empty", T, "");
	bad_target("conversation ../x", T, "../x");
	bad_target("conversation a/b", T, "a/b");
	bad_target("conversation 129 chars", T, long_id);
	CHECK_EQ_UINT(fx_stats(S).conversations, before.conversations);
	CHECK_EQ_UINT(fx_version(S, T, "ok"), 0);

	refused_n("n = 0", NULL, "rq", CS_ANY_VERSION, EVS(user("x")), 0, CS_EINVAL, CS_NO_INDEX);

	Convstore__V1__Event *evs[MAX_REQ_EVENTS + 1];
	for (size_t i = 0; i <= MAX_REQ_EVENTS; i++)
		evs[i] = user("x");
	refused_n("too many events", NULL, "rq", CS_ANY_VERSION, evs, MAX_REQ_EVENTS + 1,
		  CS_ETOOBIG, DONT_CARE);
	cs_append_result r = ok_n("rq", CS_ANY_VERSION, evs, MAX_REQ_EVENTS);
	CHECK_EQ_UINT(r.last_version, MAX_REQ_EVENTS);

	/* one event over max_event_bytes, incompressible so that no codec makes it fit */
	Convstore__V1__Event *big = user(ev_noise(&A, 7, MAX_EVENT_BYTES + 16));
	refused_n("event too big", NULL, "rq", CS_ANY_VERSION, EVS(user("x"), big, user("y")), 3,
		  CS_ETOOBIG, 1);
	Convstore__V1__Event *fits = user(ev_noise(&A, 8, MAX_EVENT_BYTES - 1024));
	r = OK("rq", CS_ANY_VERSION, fits);
	CHECK_EQ_UINT(r.first_version, MAX_REQ_EVENTS + 1);
}

/* ---- what the store fills in --------------------------------------------------------------- */

static void test_generated_ids(void)
{
	Convstore__V1__Event *a = user("no id at all");
	a->id = NULL;
	char empty[1] = "";
	Convstore__V1__Event *b = user("empty id");
	b->id = empty;
	Convstore__V1__Event *c = ev_message(&A, "mine", "user", "own id");
	size_t lb0, lc0;
	uint8_t *pb0 = ev_pack(&A, b, &lb0);
	uint8_t *pc0 = ev_pack(&A, c, &lc0);

	OK("gen", CS_ANY_VERSION, a, b, c);

	/* the caller's structs are as they were */
	CHECK(a->id == NULL);
	CHECK(b->id == empty && empty[0] == '\0');
	CHECK_STR_EQ(c->id, "mine");
	Convstore__V1__Event *mine[] = {a, b, c};
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_UINT(mine[i]->version, 0);
		CHECK_EQ_UINT(mine[i]->position, 0);
		CHECK(mine[i]->recorded_at == NULL);
		CHECK_STR_EQ(mine[i]->conversation_id, "");
		CHECK_STR_EQ(mine[i]->tenant, "");
		CHECK_STR_EQ(mine[i]->type, "");
	}
	size_t lb1, lc1;
	uint8_t *pb1 = ev_pack(&A, b, &lb1);
	uint8_t *pc1 = ev_pack(&A, c, &lc1);
	CHECK_MEM_EQ(pb1, lb1, pb0, lb0);
	CHECK_MEM_EQ(pc1, lc1, pc0, lc0);

	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "gen", 1, 10, CS_FORWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 3)) {
		CHECK(fx_is_uuid_v4(p.events[0]->id));
		CHECK(fx_is_uuid_v4(p.events[1]->id));
		CHECK(strcmp(p.events[0]->id, p.events[1]->id) != 0);
		CHECK_STR_EQ(p.events[2]->id, "mine");
		if (!fx_is_uuid_v4(p.events[0]->id))
			fprintf(stderr, "  generated id: \"%s\"\n", p.events[0]->id);
	}
	cs_event_page_deinit(&p);

	/* the generator itself */
	char ids[64][37];
	for (int i = 0; i < 64; i++) {
		CHECK_EQ_INT(cs_uuid_v4(ids[i], &err), CS_OK);
		CHECK(fx_is_uuid_v4(ids[i]));
		CHECK(cs_id_valid(ids[i]));
		for (int j = 0; j < i; j++)
			CHECK(strcmp(ids[i], ids[j]) != 0);
	}
}

static void test_id_valid(void)
{
	CHECK(cs_id_valid("a"));
	CHECK(cs_id_valid("Az09._:-"));
	CHECK(cs_id_valid(ev_repeat(&A, 'x', 128)));
	CHECK(!cs_id_valid(ev_repeat(&A, 'x', 129)));
	CHECK(!cs_id_valid(""));
	CHECK(!cs_id_valid("a/b"));
	CHECK(!cs_id_valid("../x"));
	CHECK(!cs_id_valid("a b"));
	CHECK(!cs_id_valid("a%2Fb"));
	CHECK(!cs_id_valid("\xc3\xa9"));
}

static void test_stored_copy(void)
{
	Convstore__V1__Event *evs[7];
	evs[0] = ev_message(&A, "s0", "user", "book a flight");
	evs[0]->occurred_at = ev_timestamp(&A, 1764190800, 5000);
	evs[0]->actor = "billing-agent";
	evs[0]->correlation_id = "req-42";
	evs[0]->causation_id = "evt-17";
	ev_add_metadata(&A, evs[0], "user_id", "u1");
	ev_add_metadata(&A, evs[0], "lang", "en");
	evs[1] = ev_model_response(&A, "s1", "gpt-4o", NULL);
	ev_add_tool_call(&A, evs[1], "call_1", "get_user", "{\"id\":1}");
	ev_set_usage(&A, evs[1], 10, 2, 1, 0, 0.5);
	evs[2] = ev_tool_result(&A, "s2", "call_1", "get_user", "{\"name\":\"mia\"}");
	evs[3] = ev_tool_call(&A, "s3", "own_1", "lookup", "{}");
	evs[4] = ev_turn_started(&A, "s4", "turn-1");
	evs[5] = ev_turn_ended(&A, "s5", "turn-1");
	static const unsigned char raw[] = {0, 1, 2, 0xff};
	evs[6] = ev_extension(&A, "s6", "acme.Thing", raw, sizeof raw);
	static const char *const types[] = {"message",	 "model_response", "tool_result",
					    "tool_call", "turn_started",   "turn_ended",
					    "extension"};

	int64_t t0 = fx_now();
	cs_append_result r = ok_n("copy", CS_ANY_VERSION, evs, 7);
	int64_t t1 = fx_now();

	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "copy", 1, 100, CS_FORWARD, &err), CS_OK);
	if (!CHECK_EQ_UINT(p.n, 7)) {
		cs_event_page_deinit(&p);
		return;
	}
	CHECK_EQ_UINT(p.next, 0);
	for (size_t i = 0; i < 7; i++) {
		const Convstore__V1__Event *s = p.events[i];
		CHECK_STR_EQ(s->conversation_id, "copy");
		CHECK_STR_EQ(s->tenant, T);
		CHECK_EQ_UINT(s->version, r.first_version + i);
		CHECK_STR_EQ(s->type, types[i]);
		CHECK_EQ_INT(s->payload_case, evs[i]->payload_case);
		if (CHECK(s->recorded_at != NULL)) {
			CHECK(s->recorded_at->seconds >= t0 - 1 &&
			      s->recorded_at->seconds <= t1 + 1);
			CHECK(s->recorded_at->nanos >= 0 && s->recorded_at->nanos < 1000000000);
		}
		if (i)
			CHECK(s->position > p.events[i - 1]->position);
		if (!CHECK(ev_same_as_sent(&A, s, evs[i], false)))
			fprintf(stderr, "  stored event %zu differs from what was sent\n", i);
	}
	CHECK_EQ_UINT(p.events[0]->position, r.first_position);
	CHECK_EQ_UINT(p.events[6]->position, r.last_position);
	cs_event_page_deinit(&p);
}

/* Bytes of a field number no schema version has used yet, on the envelope and inside the
 * payload: a newer client's fields must come back as they went in. */
static void test_unknown_fields(void)
{
	static const uint8_t wire[] = {
	    0x98, 0x01, 0x2a,		     /* envelope field 19: varint 42 */
	    0xa2, 0x01, 0x09,		     /* field 20 (message), 9 bytes: */
	    0x0a, 0x04, 'u',  's', 'e', 'r', /*   role "user" */
	    0x4a, 0x01, 'x',		     /*   field 9: "x" */
	};
	Convstore__V1__Event *ev = convstore__v1__event__unpack(NULL, sizeof wire, wire);
	if (!CHECK(ev != NULL))
		return;
	CHECK_EQ_UINT(ev->base.n_unknown_fields, 1);
	CHECK_EQ_INT(ev->payload_case, CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE);
	CHECK(ev->message && ev->message->base.n_unknown_fields == 1);

	Convstore__V1__Event *evs[] = {ev};
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_append(&r, S, T, "unknown", 0, evs, 1, &err), CS_OK);
	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "unknown", 1, 1, CS_FORWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 1)) {
		CHECK_EQ_UINT(p.events[0]->base.n_unknown_fields, 1);
		CHECK(p.events[0]->message && p.events[0]->message->base.n_unknown_fields == 1);
		CHECK(ev_same_as_sent(&A, p.events[0], ev, true));
	}
	cs_event_page_deinit(&p);
	convstore__v1__event__free_unpacked(ev, NULL);
}

static void test_head(void)
{
	int64_t t0 = fx_now();
	OK("hd", 0, user("hello"));
	Convstore__V1__Event *mr = ev_model_response(&A, NULL, "gpt-4o", NULL);
	ev_add_tool_call(&A, mr, "a", "get_user", "{}");
	ev_add_tool_call(&A, mr, "b", "get_flight", "{\"x\":1}");
	ev_set_usage(&A, mr, 100, 20, 5, 3, 0.25);
	OK("hd", CS_ANY_VERSION, mr, ev_tool_result(&A, NULL, "a", "get_user", "{}"));

	Convstore__V1__Head *h = NULL;
	cs_error err = CS_ERROR_INIT;
	if (CHECK_EQ_INT(cs_store_head(&h, S, T, "hd", &err), CS_OK)) {
		CHECK_EQ_UINT(h->version, 3);
		if (CHECK_EQ_UINT(h->n_pending_tool_calls, 1)) {
			CHECK_STR_EQ(h->pending_tool_calls[0]->id, "b");
			CHECK_STR_EQ(h->pending_tool_calls[0]->name, "get_flight");
			CHECK_EQ_UINT(h->pending_tool_calls[0]->version, 2);
		}
		protobuf_c_message_free_unpacked(&h->base, NULL);
	}

	Convstore__V1__Event *fail = ev_tool_result(&A, NULL, "b", "get_flight", "boom");
	fail->tool_result->is_error = 1;
	Convstore__V1__Event *done = ev_model_response(&A, NULL, "gpt-4o", "done");
	ev_set_usage(&A, done, 50, 10, 0, 7, 0.125);
	OK("hd", CS_ANY_VERSION, ev_tool_call(&A, NULL, "c", "search", "{\"q\":1}"), fail, done);
	cs_append_result last = OK("hd", 6, ev_turn_started(&A, NULL, "turn-2"));
	int64_t t1 = fx_now();

	h = NULL;
	if (!CHECK_EQ_INT(cs_store_head(&h, S, T, "hd", &err), CS_OK))
		return;
	CHECK_STR_EQ(h->tenant, T);
	CHECK_STR_EQ(h->id, "hd");
	CHECK_STR_EQ(h->status, "active");
	CHECK_EQ_UINT(h->version, 7);
	CHECK_EQ_UINT(h->last_position, last.last_position);
	if (CHECK(h->counts != NULL)) {
		CHECK_EQ_UINT(h->counts->events, 7);
		/* message, model_response, tool_result, tool_call, tool_result, model_response */
		CHECK_EQ_UINT(h->counts->messages, 6);
		CHECK_EQ_UINT(h->counts->tool_calls, 3);
		CHECK_EQ_UINT(h->counts->tool_errors, 1);
	}
	if (CHECK_EQ_UINT(h->n_pending_tool_calls, 1)) {
		CHECK_STR_EQ(h->pending_tool_calls[0]->id, "c");
		CHECK_STR_EQ(h->pending_tool_calls[0]->name, "search");
		CHECK_EQ_UINT(h->pending_tool_calls[0]->version, 4);
	}
	if (CHECK(h->usage != NULL)) {
		CHECK_EQ_UINT(h->usage->input_tokens, 150);
		CHECK_EQ_UINT(h->usage->output_tokens, 30);
		CHECK_EQ_UINT(h->usage->cached_tokens, 5);
		CHECK_EQ_UINT(h->usage->reasoning_tokens, 10);
		CHECK_EQ_INT(h->usage->cost_nanos, 375000000);
		CHECK_EQ_UINT(h->usage->responses, 2);
	}
	if (CHECK(h->created_at && h->updated_at)) {
		CHECK(h->created_at->seconds >= t0 - 1 && h->created_at->seconds <= t1 + 1);
		CHECK(h->updated_at->seconds >= h->created_at->seconds);
		CHECK(h->updated_at->seconds <= t1 + 1);
	}
	protobuf_c_message_free_unpacked(&h->base, NULL);

	OK("hd", CS_ANY_VERSION, ev_tool_result(&A, NULL, "c", "search", "[]"));
	CHECK_EQ_UINT(pending("hd"), 0);
}

static void test_tenants(void)
{
	Convstore__V1__Event *one[] = {user("for a")};
	Convstore__V1__Event *two[] = {user("for b")};
	cs_append_result ra, rb;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_append(&ra, S, "ta", "same", 0, one, 1, &err), CS_OK);
	CHECK_EQ_INT(cs_store_append(&rb, S, "tb", "same", 0, two, 1, &err), CS_OK);
	CHECK_EQ_UINT(ra.first_version, 1);
	CHECK_EQ_UINT(rb.first_version, 1);
	CHECK(rb.first_position > ra.first_position);

	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_feed(&p, S, "ta", ra.first_position - 1, 100, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 1)) {
		CHECK_STR_EQ(p.events[0]->tenant, "ta");
		CHECK_STR_EQ(p.events[0]->message->content, "for a");
	}
	cs_event_page_deinit(&p);
	CHECK_EQ_INT(cs_store_read_feed(&p, S, NULL, ra.first_position - 1, 100, &err), CS_OK);
	CHECK_EQ_UINT(p.n, 2);
	CHECK_EQ_UINT(p.next, rb.first_position);
	cs_event_page_deinit(&p);
	CHECK_EQ_INT(cs_store_read_stream(&p, S, "tc", "same", 1, 10, CS_FORWARD, &err),
		     CS_ENOTFOUND);
	cs_event_page_deinit(&p);

	/* the limit counts the tenant's events, not the others' skipped on the way */
	uint64_t mark = fx_stats(S).last_position;
	Convstore__V1__Event *five[] = {user("b1"), user("b2"), user("b3"), user("b4"), user("b5")};
	CHECK_EQ_INT(cs_store_append(&rb, S, "tb", "same", CS_ANY_VERSION, five, 5, &err), CS_OK);
	Convstore__V1__Event *mine[] = {user("a2"), user("a3")};
	CHECK_EQ_INT(cs_store_append(&ra, S, "ta", "same", CS_ANY_VERSION, mine, 2, &err), CS_OK);
	CHECK_EQ_INT(cs_store_read_feed(&p, S, "ta", mark, 1, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 1)) {
		CHECK_STR_EQ(p.events[0]->message->content, "a2");
		CHECK_EQ_UINT(p.events[0]->position, ra.first_position);
		CHECK_EQ_UINT(p.next, ra.first_position);
	}
	cs_event_page_deinit(&p);
	CHECK_EQ_INT(cs_store_read_feed(&p, S, "ta", ra.first_position, 10, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 1))
		CHECK_STR_EQ(p.events[0]->message->content, "a3");
	cs_event_page_deinit(&p);
}

int main(void)
{
	char dir[PATH_MAX];
	fx_tmpdir(dir, "append");
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = dir;
	o.no_sync = true;
	o.max_request_events = MAX_REQ_EVENTS;
	o.max_event_bytes = MAX_EVENT_BYTES;
	cs_error err = CS_ERROR_INIT;
	if (cs_store_open(&S, &o, &err) != CS_OK) {
		fprintf(stderr, "cs_store_open %s: %s\n", dir, err.msg);
		fx_rmrf(dir);
		return 1;
	}

	CHECK_RUN(test_versions_and_positions);
	CHECK_RUN(test_not_found);
	CHECK_RUN(test_expected_version);
	CHECK_RUN(test_idempotency);
	CHECK_RUN(test_payload_rules);
	CHECK_RUN(test_tool_calls);
	CHECK_RUN(test_utf8);
	CHECK_RUN(test_event_ids);
	CHECK_RUN(test_metadata_limits);
	CHECK_RUN(test_server_fields_refused);
	CHECK_RUN(test_longest_ids);
	CHECK_RUN(test_request_rules);
	CHECK_RUN(test_generated_ids);
	CHECK_RUN(test_id_valid);
	CHECK_RUN(test_stored_copy);
	CHECK_RUN(test_unknown_fields);
	CHECK_RUN(test_head);
	CHECK_RUN(test_tenants);

	cs_store_close(S);
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
