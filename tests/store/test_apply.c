/*
 * tests/store/test_apply.c - cs_store_apply(), the path that stores events that already carry
 * their version and recorded_at (import, followers): the global feed of one store applied to an
 * empty one gives every conversation the same state, timestamps, positions and forks included,
 * and verifies clean; applying it again changes nothing; a different event at a stored version,
 * a gap, a fork before its parent and an event without its version are refused and store
 * nothing; into a store that has events, positions are new and the rest is the same.
 */
#include "../check.h"
#include "events.h"
#include "fixture.h"
#include "views.h"

typedef struct feed {
	Convstore__V1__Event **events;
	size_t n;
} feed;

static void feed_collect(const Convstore__V1__Event *e, void *ctx)
{
	feed *f = ctx;
	if (e->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED)
		return;
	size_t len = convstore__v1__event__get_packed_size(e);
	uint8_t *buf = malloc(len + 1);
	convstore__v1__event__pack(e, buf);
	f->events = realloc(f->events, (f->n + 1) * sizeof *f->events);
	f->events[f->n++] = convstore__v1__event__unpack(NULL, len, buf);
	free(buf);
}

static void feed_free(feed *f)
{
	for (size_t i = 0; i < f->n; i++)
		vw_free(f->events[i]);
	free(f->events);
}

/* A little of everything: created with metadata, tool calls answered and pending, usage, an
 * update, a fork, a conversation with no created event, and an erased one. */
static void build_source(cs_store *s, ev_arena *a)
{
	cs_error err = CS_ERROR_INIT;
	const char *kv[] = {"user", "u1", NULL};
	CHECK_EQ_INT(cs_store_create(NULL, s, "t1", "c1", vw_created(a, "first", kv, NULL), &err),
		     CS_OK);
	Convstore__V1__Event *mr = ev_model_response(a, "r1", "gpt-4o", NULL);
	ev_add_tool_call(a, mr, "call_1", "search", "{}");
	ev_add_tool_call(a, mr, "call_2", "book", "{}");
	ev_set_usage(a, mr, 100, 20, 5, 1, 0.25);
	Convstore__V1__Event *b1[] = {ev_message(a, "m1", "user", "hello"), mr,
				      ev_tool_result(a, NULL, "call_1", "search", "[]")};
	CHECK_EQ_INT(vw_append(NULL, s, "t1", "c1", b1, 3), CS_OK);
	Convstore__V1__Event *b2[] = {ev_message(a, NULL, "user", "other")};
	CHECK_EQ_INT(vw_append(NULL, s, "t1", "c2", b2, 1), CS_OK);
	CHECK_EQ_INT(cs_store_update(NULL, s, "t1", "c1", CS_ANY_VERSION,
				     vw_updated(a, "renamed", "archived", kv, NULL), &err),
		     CS_OK);
	CHECK_EQ_INT(
	    cs_store_fork(NULL, s, "t1", "c1", 3, "c1-fork", vw_forked(a, "f", NULL), &err), CS_OK);
	Convstore__V1__Event *b3[] = {ev_tool_result(a, NULL, "call_2", "book", "ok")};
	CHECK_EQ_INT(vw_append(NULL, s, "t1", "c1-fork", b3, 1), CS_OK);
	Convstore__V1__Event *b4[] = {ev_message(a, NULL, "user", "gone soon")};
	CHECK_EQ_INT(vw_append(NULL, s, "t2", "erased", b4, 1), CS_OK);
	CHECK_EQ_INT(cs_store_erase(NULL, s, "t2", "erased", false, &err), CS_OK);
	Convstore__V1__Event *b5[] = {ev_message(a, NULL, "user", "again")};
	CHECK_EQ_INT(vw_append(NULL, s, "t1", "c2", b5, 1), CS_OK);
}

/* Two stores in a temp folder: src built by build_source(), dst empty; f is src's feed. */
typedef struct fixture {
	char dir[PATH_MAX];
	ev_arena a;
	cs_store *src, *dst;
	feed f;
} fixture;

static void fixture_open(fixture *x, unsigned snapshot_every)
{
	memset(x, 0, sizeof(*x));
	fx_tmpdir(x->dir, "apply");
	x->src = vw_open_in(x->dir, "src", snapshot_every);
	x->dst = vw_open_in(x->dir, "dst", snapshot_every);
	build_source(x->src, &x->a);
	fx_feed_walk w;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_walk_feed(&w, x->src, 100, feed_collect, &x->f, &err), CS_OK);
}

static void fixture_close(fixture *x)
{
	feed_free(&x->f);
	cs_store_close(x->src);
	cs_store_close(x->dst);
	ev_arena_free(&x->a);
	fx_rmrf(x->dir);
}

static const char *const convs[][2] = {{"t1", "c1"}, {"t1", "c2"}, {"t1", "c1-fork"}};

static void test_round_trip(void)
{
	fixture x;
	fixture_open(&x, 2);
	feed f = x.f;
	cs_store *src = x.src, *dst = x.dst;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_UINT(f.n, 9);

	cs_apply_result r;
	CHECK_EQ_INT(cs_store_apply(&r, dst, f.events, f.n, &err), CS_OK);
	CHECK_EQ_UINT(r.applied, 9);
	CHECK_EQ_UINT(r.skipped, 0);
	for (size_t i = 0; i < 3; i++)
		CHECK(vw_same_state(dst, src, convs[i][0], convs[i][1], 0, true));
	cs_verify_report rep;
	CHECK_EQ_INT(cs_store_verify(&rep, dst, &err), CS_OK);

	/* Again: every event is skipped, nothing moves. */
	cs_store_stats before = fx_stats(dst);
	CHECK_EQ_INT(cs_store_apply(&r, dst, f.events, f.n, &err), CS_OK);
	CHECK_EQ_UINT(r.applied, 0);
	CHECK_EQ_UINT(r.skipped, 9);
	CHECK_EQ_UINT(fx_stats(dst).last_position, before.last_position);

	/* A different event at a stored version is a conflict, naming it. */
	Convstore__V1__Event changed = *f.events[1];
	Convstore__V1__Message m = *changed.message;
	m.content = "changed";
	changed.message = &m;
	Convstore__V1__Event *one[] = {&changed};
	CHECK_EQ_INT(cs_store_apply(&r, dst, one, 1, &err), CS_ECONFLICT);
	CHECK_STR_CONTAINS(err.msg, "version 2 of \"c1\"");

	/* A gap: version 9 of c2 when it is at 2. */
	Convstore__V1__Event gap = *f.events[4];
	gap.version = 9;
	one[0] = &gap;
	CHECK_EQ_INT(cs_store_apply(&r, dst, one, 1, &err), CS_ECONFLICT);
	CHECK_EQ_UINT(fx_stats(dst).last_position, before.last_position);

	/* No version, no recorded_at: refused before anything is queued. */
	Convstore__V1__Event bare = *f.events[4];
	bare.version = 0;
	one[0] = &bare;
	CHECK_EQ_INT(cs_store_apply(&r, dst, one, 1, &err), CS_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "version and recorded_at");
	fixture_close(&x);
}

/* A fork whose parent is not there yet is refused, and stores nothing. */
static void test_fork_first(void)
{
	fixture x;
	fixture_open(&x, 0);
	feed f = x.f;
	cs_error err = CS_ERROR_INIT;
	size_t k = 0;
	while (k < f.n && strcmp(f.events[k]->conversation_id, "c1-fork") != 0)
		k++;
	CHECK(k < f.n);
	cs_apply_result r;
	CHECK_EQ_INT(cs_store_apply(&r, x.dst, f.events + k, 1, &err), CS_ENOTFOUND);
	CHECK_EQ_UINT(fx_stats(x.dst).events, 0);
	fixture_close(&x);
}

/* Into a store that has events: new positions where the old ones are taken, the same
 * conversations otherwise (versions, times, views), and a store that verifies. */
static void test_into_non_empty(void)
{
	fixture x;
	fixture_open(&x, 2);
	Convstore__V1__Event *mine[20];
	for (size_t i = 0; i < 20; i++)
		mine[i] = ev_message(&x.a, NULL, "user", "already here");
	CHECK_EQ_INT(vw_append(NULL, x.dst, "t1", "mine", mine, 20), CS_OK);
	cs_apply_result r;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_apply(&r, x.dst, x.f.events, x.f.n, &err), CS_OK);
	CHECK_EQ_UINT(r.applied, 9);
	CHECK_EQ_UINT(r.first_position, 21);
	CHECK_EQ_UINT(r.last_position, 29);
	for (size_t i = 0; i < 3; i++) {
		int rc;
		json_t *a = vw_messages_json(x.dst, convs[i][0], convs[i][1], 0, &rc);
		json_t *b = vw_messages_json(x.src, convs[i][0], convs[i][1], 0, &rc);
		CHECK(vw_json_equal(a, b, convs[i][1]));
		json_decref(a);
		json_decref(b);
		Convstore__V1__ConversationState *sa = vw_state(x.dst, "t1", convs[i][1], 0, &rc);
		Convstore__V1__ConversationState *sb = vw_state(x.src, "t1", convs[i][1], 0, &rc);
		CHECK(sa && sb && sa->version == sb->version);
		CHECK(sa && sb && sa->updated_at->seconds == sb->updated_at->seconds &&
		      sa->updated_at->nanos == sb->updated_at->nanos);
		vw_free(sa);
		vw_free(sb);
	}
	cs_verify_report rep;
	CHECK_EQ_INT(cs_store_verify(&rep, x.dst, &err), CS_OK);
	fixture_close(&x);
}

int main(void)
{
	CHECK_RUN(test_round_trip);
	CHECK_RUN(test_fork_first);
	CHECK_RUN(test_into_non_empty);
	return check_finish();
}
