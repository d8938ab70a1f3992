/*
 * test_limits.c - the caps that keep one conversation, one event or one read from costing
 * without bound, each refused cleanly with nothing stored:
 *  - at most CS_MAX_TOOL_CALLS tool calls in one model_response;
 *  - at most CS_MAX_PENDING_CALLS tool calls of a conversation waiting for results (so the head,
 *    rewritten on every append, stays small), and room again once one is answered;
 *  - a trace context with missing ids is refused, not dereferenced;
 *  - max_event_bytes above CS_MAX_EVENT_BYTES_LIMIT is refused at open, and a store reopened
 *    with a lower max_event_bytes still reads the larger events it stored before;
 *  - a tenant's feed read looks at no more than CS_FEED_SCAN_MAX records of other tenants, and
 *    says where to resume.
 */
#include "../check.h"
#include "events.h"
#include "fixture.h"

#define T "t"

static char dir[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;

static int append1(cs_store *s, const char *conv, Convstore__V1__Event *ev, cs_error *err)
{
	cs_append_result r;
	return cs_store_append(&r, s, T, conv, CS_ANY_VERSION, &ev, 1, err);
}

/* A model_response asking for @n tool calls with ids "<prefix>-<i>". */
static Convstore__V1__Event *calls(const char *prefix, size_t n)
{
	Convstore__V1__Event *ev = ev_model_response(&A, NULL, "m", NULL);
	for (size_t i = 0; i < n; i++)
		ev_add_tool_call(&A, ev, ev_strf(&A, "%s-%zu", prefix, i), "f", "{}");
	return ev;
}

static void test_tool_calls_per_event(cs_store *s)
{
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(append1(s, "per-event", calls("a", CS_MAX_TOOL_CALLS + 1), &err), CS_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "tool calls");
	CHECK_EQ_INT(err.index, 0);
	CHECK_EQ_UINT(fx_version(s, T, "per-event"), 0);
	CHECK_EQ_INT(append1(s, "per-event", calls("a", CS_MAX_TOOL_CALLS), &err), CS_OK);
}

static void test_pending_cap(cs_store *s)
{
	cs_error err = CS_ERROR_INIT;
	const char *conv = "pending";
	size_t rounds = CS_MAX_PENDING_CALLS / CS_MAX_TOOL_CALLS;
	for (size_t r = 0; r < rounds; r++)
		CHECK_EQ_INT(
		    append1(s, conv, calls(ev_strf(&A, "r%zu", r), CS_MAX_TOOL_CALLS), &err),
		    CS_OK);
	uint64_t v = fx_version(s, T, conv);
	CHECK_EQ_UINT(v, rounds);

	/* One more call, by a model or by the agent, is refused and stores nothing. */
	CHECK_EQ_INT(append1(s, conv, calls("over", 1), &err), CS_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "waiting for results");
	Convstore__V1__Event *agent = ev_tool_call(&A, NULL, "over-agent", "f", "{}");
	CHECK_EQ_INT(append1(s, conv, agent, &err), CS_EINVAL);
	CHECK_EQ_UINT(fx_version(s, T, conv), v);

	/* Answering one makes room for exactly one. */
	CHECK_EQ_INT(append1(s, conv, ev_tool_result(&A, NULL, "r0-0", "f", "ok"), &err), CS_OK);
	CHECK_EQ_INT(append1(s, conv, calls("room", 1), &err), CS_OK);
	CHECK_EQ_INT(append1(s, conv, calls("again", 1), &err), CS_EINVAL);

	Convstore__V1__Head *h = NULL;
	if (CHECK_EQ_INT(cs_store_head(&h, s, T, conv, &err), CS_OK)) {
		CHECK_EQ_UINT(h->n_pending_tool_calls, CS_MAX_PENDING_CALLS);
		protobuf_c_message_free_unpacked(&h->base, NULL);
	}
}

static void test_trace_without_ids(cs_store *s)
{
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__TraceContext tc = CONVSTORE__V1__TRACE_CONTEXT__INIT;
	tc.trace_id = NULL; /* hand-built: protobuf-c would never leave these NULL */
	tc.span_id = NULL;
	Convstore__V1__Event *ev = ev_message(&A, NULL, "user", "hi");
	ev->trace = &tc;
	CHECK_EQ_INT(append1(s, "trace", ev, &err), CS_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "trace");
	tc.trace_id = "0af7651916cd43dd8448eb211c80319c";
	tc.span_id = "b7ad6b7169203331";
	CHECK_EQ_INT(append1(s, "trace", ev, &err), CS_OK);
}

static void test_event_size_options(void)
{
	char sub[PATH_MAX + 8];
	snprintf(sub, sizeof(sub), "%s/sizes", dir);
	cs_store *s;
	cs_error err = CS_ERROR_INIT;
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = sub;
	o.no_sync = true;
	o.max_event_bytes = (size_t)CS_MAX_EVENT_BYTES_LIMIT + 1;
	CHECK_EQ_INT(cs_store_open(&s, &o, &err), CS_EINVAL);
	CHECK(s == NULL);

	/* Stored under the default limit, read back under a lower one. */
	o.max_event_bytes = 0;
	if (!CHECK_EQ_INT(cs_store_open(&s, &o, &err), CS_OK))
		return;
	size_t big = 2u << 20;
	CHECK_EQ_INT(append1(s, "big", ev_message(&A, NULL, "user", ev_noise(&A, 7, big)), &err),
		     CS_OK);
	cs_store_close(s);
	o.max_event_bytes = 1u << 20;
	if (!CHECK_EQ_INT(cs_store_open(&s, &o, &err), CS_OK))
		return;
	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_stream(&p, s, T, "big", 1, 1, CS_FORWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 1))
		CHECK_EQ_UINT(strlen(p.events[0]->message->content), big);
	cs_event_page_deinit(&p);
	/* ...while new events over the lower limit are refused. */
	CHECK_EQ_INT(append1(s, "big", ev_message(&A, NULL, "user", ev_noise(&A, 8, big)), &err),
		     CS_ETOOBIG);
	cs_store_close(s);
}

/* Tenant "quiet" has one event after 2.5 scan caps of tenant "busy": each read looks at no more
 * than CS_FEED_SCAN_MAX records and says where to resume; following next finds the event. */
static void test_feed_scan_cap(cs_store *s)
{
	cs_error err = CS_ERROR_INIT;
	size_t busy = CS_FEED_SCAN_MAX * 5 / 2, batch = 5000;
	Convstore__V1__Event **evs = ev_alloc(&A, batch * sizeof *evs);
	for (size_t i = 0; i < batch; i++)
		evs[i] = ev_message(&A, NULL, "user", "x");
	cs_append_result r;
	for (size_t done = 0; done < busy; done += batch)
		CHECK_EQ_INT(cs_store_append(&r, s, "busy", "c", CS_ANY_VERSION, evs, batch, &err),
			     CS_OK);
	CHECK_EQ_INT(cs_store_append(&r, s, "quiet", "c", CS_ANY_VERSION, evs, 1, &err), CS_OK);
	uint64_t target = r.first_position, start = fx_stats(s).last_position - busy - 1;

	uint64_t after = start;
	size_t calls = 0, found = 0;
	while (calls < 10 && !found) {
		cs_event_page p = {0};
		if (!CHECK_EQ_INT(cs_store_read_feed(&p, s, "quiet", after, 10, &err), CS_OK))
			break;
		calls++;
		found = p.n;
		if (p.n) {
			CHECK_EQ_UINT(p.events[0]->position, target);
			CHECK_EQ_UINT(p.next, target);
		} else {
			CHECK_EQ_UINT(p.next,
				      after + CS_FEED_SCAN_MAX); /* resumes where it stopped */
		}
		after = p.next;
		cs_event_page_deinit(&p);
	}
	CHECK_EQ_UINT(found, 1);
	CHECK_EQ_UINT(calls, 3);
}

static void test_all(void)
{
	cs_store *s;
	cs_error err = CS_ERROR_INIT;
	char sub[PATH_MAX + 8];
	snprintf(sub, sizeof(sub), "%s/main", dir);
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = sub;
	o.no_sync = true;
	if (!CHECK_EQ_INT(cs_store_open(&s, &o, &err), CS_OK))
		return;
	test_tool_calls_per_event(s);
	test_pending_cap(s);
	test_trace_without_ids(s);
	test_feed_scan_cap(s);
	cs_store_close(s);
	test_event_size_options();
}

int main(void)
{
	fx_tmpdir(dir, "limits");
	CHECK_RUN(test_all);
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
