/*
 * test_forks.c - cs_store_fork() and cs_store_forks(), and what reading a fork means:
 *
 *  - fork X at N into Y: Y's events 1..N are X's own records (same positions, ids and payloads),
 *    forward and backward and across page boundaries, then Y's own from N+1, starting with a
 *    conversation_forked event that names the parent and the version;
 *  - Y's state and messages at any version: at N and below the same as X's; after, X's prefix
 *    plus Y's own (a tool call pending in X at N is pending in Y, and answering it in Y leaves
 *    it pending in X);
 *  - appending to X after the fork changes nothing of Y;
 *  - forks of forks (three levels) read through every ancestor;
 *  - cs_store_forks lists the direct children with their at_version, ordered by id;
 *  - errors: at_version 0 or beyond the version (CS_EINVAL), an existing id (CS_ECONFLICT), a
 *    missing parent (CS_ENOTFOUND), a bad id (CS_EINVAL), each storing nothing; erasing a
 *    conversation that forks depend on is CS_ECONFLICT, and works once they are erased.
 */
#include <jansson.h>
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
static cs_store *S;

#define EVS(...)  ((Convstore__V1__Event *[]){__VA_ARGS__})
#define NEVS(...) (sizeof(EVS(__VA_ARGS__)) / sizeof(Convstore__V1__Event *))
#define APPEND(conv, ...)                                                                          \
	CHECK_EQ_INT(vw_append(NULL, S, T, (conv), EVS(__VA_ARGS__), NEVS(__VA_ARGS__)), CS_OK)

static Convstore__V1__Event *user(const char *text)
{
	return ev_message(&A, NULL, "user", text);
}

static Convstore__V1__Event *response(const char *content, double cost)
{
	Convstore__V1__Event *e = ev_model_response(&A, NULL, "gpt-4o", content);
	ev_set_usage(&A, e, 1, 2, 0, 0, cost);
	return e;
}

/* Fork that must succeed; checks the versions it reports. */
static bool fork_ok(const char *parent, uint64_t at, const char *child, const char *title)
{
	cs_append_result r = {0};
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_fork(&r, S, T, parent, at, child,
			       vw_forked(&A, title, VW_KV("branch", child)), &err);
	if (!CHECK_EQ_INT(rc, CS_OK)) {
		fprintf(stderr, "  fork %s at %llu into %s: %s\n", parent, (unsigned long long)at,
			child, err.msg);
		return false;
	}
	bool ok = CHECK_EQ_UINT(r.first_version, at + 1);
	ok &= CHECK_EQ_UINT(r.last_version, at + 1);
	ok &= CHECK(r.first_position > 0 && r.first_position == r.last_position);
	return ok;
}

/* The packed bytes of @e with the fields that may name the reader's conversation cleared. */
static uint8_t *record_bytes(const Convstore__V1__Event *e, size_t *len)
{
	Convstore__V1__Event copy = *e;
	copy.conversation_id = (char *)protobuf_c_empty_string;
	return ev_pack(&A, &copy, len);
}

/* Whether versions 1..n of @a and @b are the same records (position, id, payload). */
static bool same_records(const cs_event_page *a, const cs_event_page *b, size_t n)
{
	if (a->n < n || b->n < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		size_t la, lb;
		uint8_t *pa = record_bytes(a->events[i], &la);
		uint8_t *pb = record_bytes(b->events[i], &lb);
		if (a->events[i]->version != i + 1 || b->events[i]->version != i + 1 ||
		    a->events[i]->position != b->events[i]->position || la != lb ||
		    memcmp(pa, pb, la) != 0) {
			fprintf(stderr, "  version %zu differs\n", i + 1);
			return false;
		}
	}
	return true;
}

static bool read_all(cs_event_page *out, const char *conv)
{
	cs_error err = CS_ERROR_INIT;
	return vw_said(fx_read_all(out, S, T, conv, 1000, &err), "read", conv, &err) == CS_OK;
}

/* X: v1 system, v2 user, v3 response with call "ca" (pending), v4 user, v5 response, v6-8 */
static void build_x(void)
{
	Convstore__V1__Event *r3 = response(NULL, 0.25);
	ev_add_tool_call(&A, r3, "ca", "lookup", "{\"k\":1}");
	APPEND("x", ev_message(&A, NULL, "system", "sys"), user("q"), r3, user("more"),
	       response("answer", 0.5), user("u6"), user("u7"), user("u8"));
}

static void check_forked_event(const Convstore__V1__Event *e, uint64_t version, const char *parent,
			       uint64_t at)
{
	CHECK_EQ_UINT(e->version, version);
	CHECK_STR_EQ(e->type, "conversation_forked");
	if (CHECK_EQ_INT(e->payload_case, CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED)) {
		CHECK_STR_EQ(e->conversation_forked->parent_id, parent);
		CHECK_EQ_UINT(e->conversation_forked->parent_version, at);
	}
}

static void test_fork_stream(void)
{
	build_x();
	if (!fork_ok("x", 5, "y", "fork-y"))
		return;
	APPEND("y", ev_tool_result(&A, NULL, "ca", "lookup", "found"), user("y8"));

	cs_event_page x = {0}, y = {0};
	if (read_all(&x, "x") && read_all(&y, "y") && CHECK_EQ_UINT(y.n, 8)) {
		CHECK(same_records(&y, &x, 5));
		check_forked_event(y.events[5], 6, "x", 5);
		CHECK(y.events[5]->position > x.events[7]->position);
		CHECK_EQ_UINT(y.events[6]->version, 7);
		CHECK_EQ_UINT(y.events[7]->version, 8);
		if (CHECK_EQ_INT(y.events[7]->payload_case, CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE))
			CHECK_STR_EQ(y.events[7]->message->content, "y8");
		CHECK_STR_EQ(y.events[7]->conversation_id, "y");
	}

	/* forward pages of 3 cross the boundary between X's records and Y's */
	static const uint64_t fwd_from[] = {1, 4, 7}, fwd_next[] = {4, 7, 0}, fwd_n[] = {3, 3, 2};
	cs_error err = CS_ERROR_INIT;
	for (int i = 0; i < 3; i++) {
		cs_event_page p = {0};
		CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "y", fwd_from[i], 3, CS_FORWARD, &err),
			     CS_OK);
		if (CHECK_EQ_UINT(p.n, fwd_n[i]))
			for (size_t k = 0; k < p.n; k++)
				CHECK_EQ_UINT(p.events[k]->version, fwd_from[i] + k);
		CHECK_EQ_UINT(p.next, fwd_next[i]);
		cs_event_page_deinit(&p);
	}
	/* backward from the end, all at once and in pages of 2 from version 6 */
	cs_event_page back = {0};
	CHECK_EQ_INT(cs_store_read_stream(&back, S, T, "y", 0, 100, CS_BACKWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(back.n, 8) && y.n == 8)
		for (size_t k = 0; k < 8; k++) {
			CHECK_EQ_UINT(back.events[k]->version, 8 - k);
			CHECK_EQ_UINT(back.events[k]->position, y.events[7 - k]->position);
		}
	cs_event_page_deinit(&back);
	uint64_t from = 6;
	for (uint64_t want = 6; want >= 2; want -= 2) {
		cs_event_page p = {0};
		CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "y", from, 2, CS_BACKWARD, &err),
			     CS_OK);
		if (CHECK_EQ_UINT(p.n, 2)) {
			CHECK_EQ_UINT(p.events[0]->version, want);
			CHECK_EQ_UINT(p.events[1]->version, want - 1);
		}
		CHECK_EQ_UINT(p.next, want - 2);
		from = p.next;
		cs_event_page_deinit(&p);
	}
	cs_event_page_deinit(&x);
	cs_event_page_deinit(&y);
}

static void test_fork_state(void)
{
	int rc;
	Convstore__V1__ConversationState *y = vw_state(S, T, "y", 0, &rc);
	if (CHECK(y)) {
		CHECK_STR_EQ(y->id, "y");
		CHECK_EQ_UINT(y->version, 8);
		CHECK(y->parent && !strcmp(y->parent->id, "x") && y->parent->version == 5);
		CHECK_STR_EQ(y->title, "fork-y");
		CHECK_STR_EQ(vw_state_meta(y, "branch"), "y");
		CHECK_EQ_UINT(y->n_messages, 7);
		static const uint64_t versions[] = {1, 2, 3, 4, 5, 7, 8};
		for (size_t i = 0; i < y->n_messages && i < 7; i++)
			CHECK_EQ_UINT(y->messages[i]->version, versions[i]);
		CHECK_EQ_UINT(y->n_pending_tool_calls, 0); /* answered in y */
		CHECK(y->usage && y->usage->cost_usd == 0.75 && y->usage->responses == 2);
		CHECK(y->counts && y->counts->events == 8 && y->counts->messages == 7);
	}
	vw_free(y);

	/* x keeps its own call pending: y's answer is not x's */
	Convstore__V1__ConversationState *x = vw_state(S, T, "x", 0, &rc);
	if (CHECK(x)) {
		CHECK_EQ_UINT(x->n_pending_tool_calls, 1);
		CHECK(x->parent == NULL || x->parent->id[0] == '\0');
	}
	vw_free(x);

	/* at 5 and below, y is x: same transcript, usage, pending calls and counts */
	for (uint64_t v = 1; v <= 5; v++) {
		json_t *mx = vw_messages_json(S, T, "x", v, &rc);
		json_t *my = vw_messages_json(S, T, "y", v, &rc);
		CHECK(vw_json_equal(my, mx, "messages of y and x"));
		json_decref(mx);
		json_decref(my);
		Convstore__V1__ConversationState *sx = vw_state(S, T, "x", v, &rc);
		Convstore__V1__ConversationState *sy = vw_state(S, T, "y", v, &rc);
		if (CHECK(sx && sy)) {
			CHECK_STR_EQ(sy->id, "y");
			CHECK_EQ_UINT(sy->version, v);
			CHECK_EQ_UINT(sy->n_messages, sx->n_messages);
			CHECK_EQ_UINT(sy->n_pending_tool_calls, sx->n_pending_tool_calls);
			CHECK(sy->usage && sx->usage && sy->usage->cost_usd == sx->usage->cost_usd);
			CHECK(sy->counts && sx->counts && sy->counts->events == v &&
			      sx->counts->events == v);
			CHECK_EQ_UINT(sy->last_position, sx->last_position);
		}
		vw_free(sx);
		vw_free(sy);
	}
	/* at 6: the fork point, with x's pending call */
	Convstore__V1__ConversationState *y6 = vw_state(S, T, "y", 6, &rc);
	if (CHECK(y6)) {
		CHECK(y6->parent && !strcmp(y6->parent->id, "x"));
		CHECK_EQ_UINT(y6->n_messages, 5);
		if (CHECK_EQ_UINT(y6->n_pending_tool_calls, 1)) {
			CHECK_STR_EQ(y6->pending_tool_calls[0]->id, "ca");
			CHECK_STR_EQ(y6->pending_tool_calls[0]->arguments, "{\"k\":1}");
		}
	}
	vw_free(y6);
}

static void test_parent_moves_on(void)
{
	size_t lb = 0, la = 0, sb = 0, sa = 0;
	uint8_t *before = vw_state_bytes(S, T, "y", 0, true, &lb);
	uint8_t *stream_before = vw_stream_bytes(S, T, "y", &sb);
	APPEND("x", user("x9"), response("x10", 1.0), user("x11"));
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_update(&r, S, T, "x", CS_ANY_VERSION,
				     vw_updated(&A, "renamed", NULL, VW_KV("branch", "main"), NULL),
				     &err),
		     CS_OK);
	uint8_t *after = vw_state_bytes(S, T, "y", 0, true, &la);
	uint8_t *stream_after = vw_stream_bytes(S, T, "y", &sa);
	CHECK(before && after && stream_before && stream_after);
	CHECK_MEM_EQ(after, la, before, lb);
	CHECK_MEM_EQ(stream_after, sa, stream_before, sb);
	CHECK_EQ_UINT(fx_version(S, T, "x"), 12);
	free(before);
	free(after);
	free(stream_before);
	free(stream_after);
}

static void test_forks_of_forks(void)
{
	if (!fork_ok("y", 7, "z", "fork-z") || !fork_ok("z", 8, "w", "fork-w"))
		return;
	APPEND("w", user("w10"));
	cs_event_page y = {0}, z = {0}, w = {0};
	if (read_all(&y, "y") && read_all(&z, "z") && read_all(&w, "w") && CHECK_EQ_UINT(w.n, 10) &&
	    CHECK_EQ_UINT(z.n, 8)) {
		CHECK(same_records(&z, &y, 7));
		CHECK(same_records(&w, &z, 8));
		check_forked_event(w.events[5], 6, "x", 5); /* y's own first event */
		check_forked_event(w.events[7], 8, "y", 7); /* z's */
		check_forked_event(w.events[8], 9, "z", 8); /* w's */
		if (CHECK_EQ_INT(w.events[9]->payload_case, CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE))
			CHECK_STR_EQ(w.events[9]->message->content, "w10");
	}
	cs_event_page_deinit(&y);
	cs_event_page_deinit(&z);
	cs_event_page_deinit(&w);

	int rc;
	Convstore__V1__ConversationState *st = vw_state(S, T, "w", 0, &rc);
	if (CHECK(st)) {
		CHECK_EQ_UINT(st->version, 10);
		CHECK(st->parent && !strcmp(st->parent->id, "z") && st->parent->version == 8);
		CHECK_STR_EQ(st->title, "fork-w");
		static const uint64_t versions[] = {1, 2, 3, 4, 5, 7, 10};
		if (CHECK_EQ_UINT(st->n_messages, 7))
			for (size_t i = 0; i < 7; i++)
				CHECK_EQ_UINT(st->messages[i]->version, versions[i]);
		CHECK(st->counts && st->counts->events == 10);
	}
	vw_free(st);
	/* w at 7 is y at 7 */
	json_t *mw = vw_messages_json(S, T, "w", 7, &rc);
	json_t *my = vw_messages_json(S, T, "y", 7, &rc);
	CHECK(vw_json_equal(mw, my, "messages of w and y at 7"));
	json_decref(mw);
	json_decref(my);
}

/*
 * A fork of a fork that stops inside the grandparent: gx (1..4), gy = fork(gx@4) with its own
 * 5, 6, gz = fork(gy@2). gz's stream is gx's 1, 2 and its own conversation_forked at 3,
 * nothing of gx after 2 nor of gy; its messages are gx's at 2.
 */
static void test_fork_inside_grandparent(void)
{
	for (int i = 1; i <= 4; i++)
		APPEND("gx", user(ev_strf(&A, "gx%d", i)));
	if (!fork_ok("gx", 4, "gy", "gy"))
		return;
	APPEND("gy", user("gy6"));
	if (!fork_ok("gy", 2, "gz", "gz"))
		return;
	char *fwd = vw_read_versions(S, T, "gz", 1, 100, CS_FORWARD);
	char *bwd = vw_read_versions(S, T, "gz", 0, 100, CS_BACKWARD);
	CHECK_STR_EQ(fwd, "gx:1 gx:2 gz:3 | next 0");
	CHECK_STR_EQ(bwd, "gz:3 gx:2 gx:1 | next 0");
	free(fwd);
	free(bwd);
	int rc;
	json_t *mz = vw_messages_json(S, T, "gz", 0, &rc);
	json_t *mx = vw_messages_json(S, T, "gx", 2, &rc);
	CHECK(mz && json_array_size(mz) == 2);
	CHECK(vw_json_equal(mz, mx, "messages of gz and of gx at 2"));
	json_decref(mz);
	json_decref(mx);
	CHECK_EQ_UINT(fx_version(S, T, "gz"), 3);
}

/* The forks of @conv as "id@at,id@at" (empty when none); NULL on error with *rc set. */
static char *forks_of(const char *conv, int *rc)
{
	Convstore__V1__ForkList *l = NULL;
	cs_error err = CS_ERROR_INIT;
	*rc = cs_store_forks(&l, S, T, conv, &err);
	if (*rc != CS_OK)
		return NULL;
	char *s = ev_strf(&A, "%s", "");
	for (size_t i = 0; i < l->n_forks; i++)
		s = ev_strf(&A, "%s%s%s@%llu", s, i ? "," : "", l->forks[i]->id,
			    (unsigned long long)l->forks[i]->at_version);
	vw_free(l);
	return s;
}

static void test_fork_list(void)
{
	/* created out of id order: the list is by id */
	if (!fork_ok("x", 12, "x-c", NULL) || !fork_ok("x", 2, "x-a", NULL))
		return;
	int rc;
	CHECK_STR_EQ(forks_of("x", &rc), "x-a@2,x-c@12,y@5");
	CHECK_STR_EQ(forks_of("y", &rc), "z@7");
	CHECK_STR_EQ(forks_of("z", &rc), "w@8");
	CHECK_STR_EQ(forks_of("w", &rc), "");
	CHECK_EQ_INT(rc, CS_OK);
	CHECK(forks_of("missing", &rc) == NULL);
	CHECK_EQ_INT(rc, CS_ENOTFOUND);
	CHECK_STR_EQ(forks_of("x-a", &rc), "");
	/* x-a's own history: x's first two events, then its fork event */
	CHECK_EQ_UINT(fx_version(S, T, "x-a"), 3);
}

/* A fork that must fail with @code and store nothing. */
static void fork_refused(const char *parent, uint64_t at, const char *child, int code)
{
	cs_store_stats before = fx_stats(S);
	cs_append_result r = {0};
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_fork(&r, S, T, parent, at, child, NULL, &err);
	if (!CHECK_EQ_INT(rc, code))
		fprintf(stderr, "  fork %s at %llu into %s\n", parent, (unsigned long long)at,
			child);
	CHECK_EQ_INT(err.code, code);
	CHECK(err.msg[0] != '\0');
	cs_store_stats after = fx_stats(S);
	CHECK_EQ_UINT(after.events, before.events);
	CHECK_EQ_UINT(after.last_position, before.last_position);
	CHECK_EQ_UINT(after.conversations, before.conversations);
}

static void test_fork_errors(void)
{
	fork_refused("x", 0, "new1", CS_EINVAL);
	fork_refused("x", 13, "new1", CS_EINVAL);
	fork_refused("x", UINT64_MAX, "new1", CS_EINVAL);
	fork_refused("x", 3, "y", CS_ECONFLICT);
	fork_refused("x", 3, "x", CS_ECONFLICT);
	fork_refused("missing", 1, "new1", CS_ENOTFOUND);
	fork_refused("x", 3, "bad id!", CS_EINVAL);
	CHECK_EQ_UINT(fx_version(S, T, "new1"), 0);
	/* another tenant's x is not a parent */
	cs_error err = CS_ERROR_INIT;
	cs_append_result r;
	CHECK_EQ_INT(cs_store_fork(&r, S, "t2", "x", 1, "new2", NULL, &err), CS_ENOTFOUND);
}

static int erase(const char *conv)
{
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	return cs_store_erase(&r, S, T, conv, false, &err);
}

static void test_erase_with_forks(void)
{
	CHECK_EQ_INT(erase("x"), CS_ECONFLICT);
	CHECK_EQ_INT(erase("y"), CS_ECONFLICT);
	CHECK_EQ_INT(erase("z"), CS_ECONFLICT);
	/* refused erases left everything readable */
	CHECK_EQ_UINT(fx_version(S, T, "x"), 12);
	CHECK_EQ_UINT(fx_version(S, T, "y"), 8);
	CHECK_EQ_UINT(fx_count(S, T, "w"), 10);

	CHECK_EQ_INT(erase("w"), CS_OK);
	CHECK_EQ_INT(erase("z"), CS_OK);
	int rc;
	CHECK_STR_EQ(forks_of("y", &rc), "");
	CHECK_EQ_INT(erase("y"), CS_OK);
	CHECK_STR_EQ(forks_of("x", &rc), "x-a@2,x-c@12");
	CHECK_EQ_INT(erase("x"), CS_ECONFLICT);
	CHECK_EQ_INT(erase("x-a"), CS_OK);
	CHECK_EQ_INT(erase("x-c"), CS_OK);
	CHECK_EQ_INT(erase("x"), CS_OK);
	CHECK_EQ_UINT(fx_version(S, T, "x"), 0);
	CHECK(forks_of("x", &rc) == NULL);
	CHECK_EQ_INT(rc, CS_ENOTFOUND);
	cs_verify_report rep = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_verify(&rep, S, &err), CS_OK);
	CHECK_EQ_UINT(rep.problems, 0);
}

int main(void)
{
	fx_tmpdir(dir, "forks");
	S = vw_open_in(dir, "store", 3); /* small: reads cross snapshots of parents and forks */
	CHECK_RUN(test_fork_stream);
	CHECK_RUN(test_fork_state);
	CHECK_RUN(test_parent_moves_on);
	CHECK_RUN(test_forks_of_forks);
	CHECK_RUN(test_fork_inside_grandparent);
	CHECK_RUN(test_fork_list);
	CHECK_RUN(test_fork_errors);
	CHECK_RUN(test_erase_with_forks);
	cs_store_close(S);
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
