/*
 * test_retention.c - per-conversation retention (store.h: set by cs_store_create / cs_store_update
 * with a Retention, enforced by appends that cross max_events and by cs_store_retention_sweep):
 *
 *  - max_events keeps exactly the newest N events; the stream starts at first_version (also when
 *    read from version 1); the state
 *    now (version, status, title, metadata, counts, usage, pending tool calls with arguments) is
 *    what a store without retention has for the same events, and so is the state at every kept
 *    version; a version below the kept snapshot is CS_EGONE (state and messages);
 *  - the usage rollup loses exactly the removed events' share;
 *  - a policy set by update is applied by the sweep; a second sweep removes nothing;
 *  - max_age removes exactly the events recorded before now - max_age (now given explicitly);
 *  - a parent's retention keeps what its forks read, and forking below the kept part is
 *    CS_EGONE;
 *  - verify is clean and rebuild finds no difference afterwards.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"
#include "lmdb_raw.h"
#include "views.h"

#define T "t"

static char dir[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;
static cs_store *S; /* with retention */
static cs_store *R; /* the same events, no retention: the reference */

static Convstore__V1__Event *numbered(uint64_t i)
{
	if (i % 3)
		return ev_message(&A, NULL, "user", ev_strf(&A, "m%llu", (unsigned long long)i));
	Convstore__V1__Event *e = ev_model_response(&A, NULL, "gpt-4o", "r");
	ev_set_usage(&A, e, i, 1, 0, 0, 0.01 * (double)i);
	return e;
}

static bool create(cs_store *s, const char *conv, Convstore__V1__Retention *ret)
{
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	int rc =
	    cs_store_create(&r, s, T, conv, vw_created(&A, "keep me", VW_KV("m", "1"), ret), &err);
	return vw_said(rc, "create", conv, &err) == CS_OK;
}

/* Version 2: a response whose call stays pending; then events 3..@last one per append. */
static bool fill(cs_store *s, const char *conv, uint64_t last)
{
	Convstore__V1__Event *r = ev_model_response(&A, NULL, "gpt-4o", NULL);
	ev_add_tool_call(&A, r, "pc", "wait", "{\"long\":true}");
	ev_set_usage(&A, r, 7, 7, 0, 0, 0.5);
	bool ok = vw_append(NULL, s, T, conv, &r, 1) == CS_OK;
	for (uint64_t i = 3; ok && i <= last; i++) {
		Convstore__V1__Event *e = numbered(i);
		ok = vw_append(NULL, s, T, conv, &e, 1) == CS_OK;
	}
	return ok;
}

static uint64_t sweep(cs_store *s, int64_t now)
{
	uint64_t removed = UINT64_MAX;
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(cs_store_retention_sweep(&removed, s, now, &err), CS_OK))
		fprintf(stderr, "  sweep: %s\n", err.msg);
	return removed;
}

/* The versions a conversation still holds, as read from its first_version. */
static bool kept_versions(cs_store *s, const char *conv, uint64_t first, uint64_t last)
{
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_read_stream(&p, s, T, conv, first, 1000, CS_FORWARD, &err);
	bool ok = CHECK_EQ_INT(rc, CS_OK) && CHECK_EQ_UINT(p.n, last - first + 1);
	for (size_t i = 0; ok && i < p.n; i++)
		ok = CHECK_EQ_UINT(p.events[i]->version, first + i);
	cs_event_page_deinit(&p);
	/* from version 1: "a forward read from below the oldest one kept starts at it" */
	rc = cs_store_read_stream(&p, s, T, conv, 1, 1000, CS_FORWARD, &err);
	if (CHECK_EQ_INT(rc, CS_OK) && CHECK_EQ_UINT(p.n, last - first + 1))
		ok &= CHECK_EQ_UINT(p.events[0]->version, first);
	cs_event_page_deinit(&p);
	return ok;
}

/* The state fields retention must keep, @got against @want. */
static bool same_fields(const Convstore__V1__ConversationState *got,
			const Convstore__V1__ConversationState *want)
{
	bool ok = got && want && got->version == want->version &&
		  !strcmp(got->status, want->status) && !strcmp(got->title, want->title) &&
		  got->n_metadata == want->n_metadata && got->usage && want->usage &&
		  got->usage->input_tokens == want->usage->input_tokens &&
		  got->usage->output_tokens == want->usage->output_tokens &&
		  got->usage->cost_usd == want->usage->cost_usd &&
		  got->usage->responses == want->usage->responses && got->counts && want->counts &&
		  got->counts->events == want->counts->events &&
		  got->counts->messages == want->counts->messages &&
		  got->counts->tool_calls == want->counts->tool_calls &&
		  got->n_pending_tool_calls == want->n_pending_tool_calls;
	for (size_t i = 0; ok && i < got->n_pending_tool_calls; i++) {
		const Convstore__V1__PendingToolCall *a = got->pending_tool_calls[i],
						     *b = want->pending_tool_calls[i];
		ok = !strcmp(a->id, b->id) && !strcmp(a->arguments, b->arguments) &&
		     a->version == b->version;
	}
	if (!ok && got && want) {
		/* show what is compared: no clock, no transcript */
		Convstore__V1__ConversationState a = *got, b = *want;
		a.created_at = a.updated_at = b.created_at = b.updated_at = NULL;
		a.n_messages = b.n_messages = 0;
		a.first_version = b.first_version = 0;
		a.retention = b.retention = NULL;
		char *ta = vw_json_text(&a), *tb = vw_json_text(&b);
		fprintf(stderr, "  state after retention differs\n");
		vw_show_diff(ta, tb);
		free(ta);
		free(tb);
	}
	return ok;
}

static void check_state_kept(const char *conv, uint64_t at, uint64_t first)
{
	int rc;
	Convstore__V1__ConversationState *got = vw_state(S, T, conv, at, &rc);
	Convstore__V1__ConversationState *want = vw_state(R, T, conv, at, &rc);
	CHECK(same_fields(got, want));
	if (got && at == 0)
		CHECK_EQ_UINT(got->first_version, first);
	vw_free(got);
	vw_free(want);
}

static int state_code(const char *conv, uint64_t at)
{
	Convstore__V1__ConversationState *st = NULL;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_state(&st, S, T, conv, at, &err);
	vw_free(st);
	return rc;
}

static int messages_code(const char *conv, uint64_t at)
{
	Convstore__V1__ChatTranscript *t = NULL;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_messages(&t, S, T, conv, at, &err);
	vw_free(t);
	return rc;
}

/* The cost in nano-dollars of R's model responses of @conv at versions @lo..@hi. */
static int64_t reference_nanos(const char *conv, uint64_t lo, uint64_t hi)
{
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	int64_t n = 0;
	if (fx_read_all(&p, R, T, conv, 1000, &err) == CS_OK)
		for (size_t i = lo - 1; i < hi && i < p.n; i++)
			if (p.events[i]->payload_case ==
			    CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE)
				n += llround(p.events[i]->model_response->cost_usd * 1e9);
	cs_event_page_deinit(&p);
	return n;
}

static void test_max_events(void)
{
	bool ok = create(S, "r1", vw_retention(&A, 10, 0)) && create(R, "r1", NULL) &&
		  fill(S, "r1", 25) && fill(R, "r1", 25);
	if (!CHECK(ok))
		return;
	long before = fx_count(S, T, "r1");
	uint64_t removed = sweep(S, 0);
	CHECK_EQ_UINT(removed + (uint64_t)(25 - before), 15);
	CHECK(kept_versions(S, "r1", 16, 25));
	CHECK_EQ_UINT(fx_version(S, T, "r1"), 25);
	check_state_kept("r1", 0, 16);
	for (uint64_t v = 16; v <= 25; v++)
		check_state_kept("r1", v, 16);
	CHECK_EQ_INT(state_code("r1", 14), CS_EGONE);
	CHECK_EQ_INT(state_code("r1", 1), CS_EGONE);
	CHECK_EQ_INT(messages_code("r1", 14), CS_EGONE);
	int rc15 = state_code("r1", 15); /* the kept snapshot's own version */
	CHECK(rc15 == CS_OK || rc15 == CS_EGONE);
	CHECK_EQ_INT(state_code("r1", 26), CS_EINVAL);
	/* the rollup lost the removed responses' share; the state kept its total */
	int rc;
	Convstore__V1__UsageReport *u =
	    vw_usage(S, T, CS_USAGE_BY_CONVERSATION, INT64_MIN, INT64_MAX, &rc);
	const Convstore__V1__UsageRow *row = vw_usage_row(u, "r1");
	if (CHECK(row))
		CHECK_EQ_INT(llround(row->cost_usd * 1e9), reference_nanos("r1", 16, 25));
	vw_free(u);
	/* a second sweep finds nothing more */
	CHECK_EQ_UINT(sweep(S, 0), 0);
	CHECK(kept_versions(S, "r1", 16, 25));
}

static void test_policy_by_update(void)
{
	bool ok = create(S, "r2", NULL) && create(R, "r2", NULL) && fill(S, "r2", 30) &&
		  fill(R, "r2", 30);
	if (!CHECK(ok))
		return;
	CHECK_EQ_UINT(sweep(S, 0), 0);
	CHECK(kept_versions(S, "r2", 1, 30));
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__ConversationUpdated *u =
	    vw_updated(&A, NULL, NULL, NULL, vw_retention(&A, 5, 0));
	CHECK_EQ_INT(cs_store_update(&r, S, T, "r2", CS_ANY_VERSION, u, &err), CS_OK);
	CHECK_EQ_INT(cs_store_update(&r, R, T, "r2", CS_ANY_VERSION,
				     vw_updated(&A, NULL, NULL, NULL, NULL), &err),
		     CS_OK);
	long before = fx_count(S, T, "r2");
	uint64_t removed = sweep(S, 0);
	CHECK_EQ_UINT(removed, (uint64_t)before - 5);
	CHECK(kept_versions(S, "r2", 27, 31));
	check_state_kept("r2", 0, 27);
	int rc;
	Convstore__V1__ConversationState *st = vw_state(S, T, "r2", 0, &rc);
	CHECK(st && st->retention && st->retention->max_events == 5);
	vw_free(st);
	/* a policy of all zeros removes the limit: appends keep everything again */
	CHECK_EQ_INT(cs_store_update(&r, S, T, "r2", CS_ANY_VERSION,
				     vw_updated(&A, NULL, NULL, NULL, vw_retention(&A, 0, 0)),
				     &err),
		     CS_OK);
	for (uint64_t i = 0; i < 11; i++) {
		Convstore__V1__Event *e = numbered(3 * i + 1);
		CHECK_EQ_INT(vw_append(NULL, S, T, "r2", &e, 1), CS_OK);
	}
	CHECK_EQ_UINT(sweep(S, 0), 0);
	CHECK_EQ_INT(fx_count(S, T, "r2"), 5 + 1 + 11);
}

static void test_max_age(void)
{
	cs_store *s3 = vw_open_in(dir, "age", 4);
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_create(&r, s3, T, "r3",
				     vw_created(&A, NULL, NULL, vw_retention(&A, 0, 100)), &err),
		     CS_OK);
	for (int i = 0; i < 5; i++) {
		Convstore__V1__Event *e = numbered(1);
		CHECK_EQ_INT(vw_append(NULL, s3, T, "r3", &e, 1), CS_OK);
	}
	int64_t t1 = fx_now();
	while (fx_now() < t1 + 2) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < 5; i++) {
		Convstore__V1__Event *e = numbered(1);
		CHECK_EQ_INT(vw_append(NULL, s3, T, "r3", &e, 1), CS_OK);
	}
	cs_event_page p = {0};
	if (!CHECK_EQ_INT(fx_read_all(&p, s3, T, "r3", 100, &err), CS_OK) ||
	    !CHECK_EQ_UINT(p.n, 11)) {
		cs_event_page_deinit(&p);
		cs_store_close(s3);
		return;
	}
	int64_t s0 = p.events[0]->recorded_at->seconds, s1 = p.events[5]->recorded_at->seconds;
	CHECK(p.events[6]->recorded_at->seconds >= s1 + 2);
	cs_event_page_deinit(&p);

	uint64_t removed = UINT64_MAX;
	CHECK_EQ_INT(cs_store_retention_sweep(&removed, s3, s0 + 100, &err), CS_OK);
	CHECK_EQ_UINT(removed, 0);
	CHECK_EQ_INT(cs_store_retention_sweep(&removed, s3, s1 + 1 + 100, &err), CS_OK);
	CHECK_EQ_UINT(removed, 6);
	CHECK_EQ_INT(fx_count(s3, T, "r3"), 5);
	CHECK_EQ_INT(cs_store_retention_sweep(&removed, s3, s1 + 1 + 100, &err), CS_OK);
	CHECK_EQ_UINT(removed, 0);
	int rc;
	Convstore__V1__ConversationState *st = vw_state(s3, T, "r3", 0, &rc);
	if (CHECK(st)) {
		CHECK_EQ_UINT(st->version, 11);
		CHECK_EQ_UINT(st->first_version, 7);
		CHECK(st->counts && st->counts->events == 11 && st->counts->messages == 10);
	}
	vw_free(st);
	cs_verify_report rep = {0};
	CHECK_EQ_INT(cs_store_verify(&rep, s3, &err), CS_OK);
	cs_store_close(s3);
}

static void test_forks_protected(void)
{
	bool ok = create(S, "p", NULL) && fill(S, "p", 20);
	int rc;
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	ok = ok && CHECK_EQ_INT(cs_store_fork(&r, S, T, "p", 5, "pf", NULL, &err), CS_OK);
	if (!CHECK(ok))
		return;
	size_t lb = 0, la = 0;
	uint8_t *before = vw_state_bytes(S, T, "pf", 0, true, &lb);
	Convstore__V1__ConversationState *st_before = vw_state(S, T, "pf", 0, &rc);
	CHECK_EQ_INT(cs_store_update(&r, S, T, "p", CS_ANY_VERSION,
				     vw_updated(&A, NULL, NULL, NULL, vw_retention(&A, 2, 0)),
				     &err),
		     CS_OK);
	sweep(S, 0);
	CHECK_EQ_INT(fx_count(S, T, "pf"), 6);
	uint8_t *after = vw_state_bytes(S, T, "pf", 0, true, &la);
	CHECK(before && after);
	if (!CHECK_MEM_EQ(after, la, before, lb)) {
		Convstore__V1__ConversationState *st_after = vw_state(S, T, "pf", 0, &rc);
		char *ta = vw_json_text(st_after), *tb = vw_json_text(st_before);
		fprintf(stderr, "  the fork's state changed when its parent was truncated\n");
		vw_show_diff(ta, tb);
		free(ta);
		free(tb);
		vw_free(st_after);
	}
	vw_free(st_before);
	free(before);
	free(after);
	/* every fork reads its parent from version 1: while one exists, the parent keeps all */
	Convstore__V1__ConversationState *st = vw_state(S, T, "p", 0, &rc);
	if (CHECK(st))
		CHECK_EQ_UINT(st->first_version, 0);
	vw_free(st);
	CHECK_EQ_INT(fx_count(S, T, "p"), 21);
	CHECK_EQ_INT(cs_store_fork(&r, S, T, "p", 1, "pf2", NULL, &err), CS_OK);
	/* once the forks are gone, the policy applies */
	CHECK_EQ_INT(cs_store_erase(&r, S, T, "pf2", false, &err), CS_OK);
	CHECK_EQ_INT(cs_store_erase(&r, S, T, "pf", false, &err), CS_OK);
	sweep(S, 0);
	CHECK_EQ_INT(fx_count(S, T, "p"), 2);
}

/*
 * A call asked below the cut (version 2) and one asked at it (4), both answered after it (6,
 * 7): at every version between the cut and the answers the state shows them pending WITH their
 * arguments, as the store without retention does.
 */
static void test_pending_across_cut(void)
{
	cs_store *st[2] = {S, R};
	bool ok = create(S, "args", vw_retention(&A, 3, 0)) && create(R, "args", NULL);
	for (int i = 0; ok && i < 2; i++) {
		Convstore__V1__Event *r = ev_model_response(&A, NULL, "gpt-4o", NULL);
		ev_add_tool_call(&A, r, "c2", "fn", "{\"b\":2}");
		Convstore__V1__Event *e[6] = {
		    ev_tool_call(&A, NULL, "c1", "fn", "{\"a\":1}"),
		    ev_message(&A, NULL, "user", "hi"),
		    r,
		    ev_message(&A, NULL, "user", "still there?"),
		    ev_tool_result(&A, NULL, "c1", "fn", "ok"),
		    ev_tool_result(&A, NULL, "c2", "fn", "ok"),
		};
		for (int j = 0; ok && j < 6; j++)
			ok = vw_append(NULL, st[i], T, "args", &e[j], 1) == CS_OK;
	}
	if (!CHECK(ok))
		return;
	CHECK_EQ_UINT(sweep(S, 0), 4);
	CHECK(kept_versions(S, "args", 5, 7));
	for (uint64_t v = 5; v <= 7; v++)
		check_state_kept("args", v, 5);
	int rc;
	Convstore__V1__ConversationState *at5 = vw_state(S, T, "args", 5, &rc);
	if (CHECK(at5) && CHECK_EQ_UINT(at5->n_pending_tool_calls, 2)) {
		CHECK_STR_EQ(at5->pending_tool_calls[0]->id, "c1");
		CHECK_STR_EQ(at5->pending_tool_calls[0]->arguments, "{\"a\":1}");
		CHECK_STR_EQ(at5->pending_tool_calls[1]->id, "c2");
		CHECK_STR_EQ(at5->pending_tool_calls[1]->arguments, "{\"b\":2}");
	}
	vw_free(at5);
	Convstore__V1__ConversationState *at6 = vw_state(S, T, "args", 6, &rc);
	if (CHECK(at6) && CHECK_EQ_UINT(at6->n_pending_tool_calls, 1))
		CHECK_STR_EQ(at6->pending_tool_calls[0]->arguments, "{\"b\":2}");
	vw_free(at6);
}

/* Create "age" with retention.max_age_seconds @max_age. */
static int create_aged(uint64_t max_age, cs_error *err)
{
	return cs_store_create(NULL, S, T, "age",
			       vw_created(&A, NULL, NULL, vw_retention(&A, 0, max_age)), err);
}

/* max_age_seconds is at most 100 years: UINT64_MAX ("for ever") once wrapped to -1 and removed
 * everything. */
static void test_max_age_capped(void)
{
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(create_aged(UINT64_MAX, &err), CS_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "max_age_seconds");
	err = (cs_error)CS_ERROR_INIT;
	CHECK_EQ_INT(create_aged(3155760000ull + 1, &err), CS_EINVAL); /* 100 years and 1 s */
	CHECK_STR_CONTAINS(err.msg, "max_age_seconds");
	CHECK_EQ_UINT(fx_version(S, T, "age"), 0);
	if (!CHECK_EQ_INT(create_aged(3155760000ull, &err), CS_OK))
		fprintf(stderr, "  create: %s\n", err.msg);
	for (int i = 0; i < 3; i++) {
		Convstore__V1__Event *e = numbered(1);
		CHECK_EQ_INT(vw_append(NULL, S, T, "age", &e, 1), CS_OK);
	}
	CHECK_EQ_UINT(sweep(S, 0), 0);
	CHECK_EQ_INT(fx_count(S, T, "age"), 4);
}

/* Append @n messages to @conv of @s, one per append. */
static bool append_n(cs_store *s, const char *conv, int n)
{
	bool ok = true;
	for (int i = 0; ok && i < n; i++) {
		Convstore__V1__Event *e = numbered(1);
		ok = vw_append(NULL, s, T, conv, &e, 1) == CS_OK;
	}
	return ok;
}

/* The stream read of @conv in @s from @from as vw_read_versions() shows it equals @want. */
static void reads(cs_store *s, const char *conv, uint64_t from, enum cs_direction d,
		  const char *want)
{
	char *got = vw_read_versions(s, T, conv, from, 100, d);
	if (!CHECK_STR_EQ(got, want))
		fprintf(stderr, "  read %s from %llu %s\n", conv, (unsigned long long)from,
			d == CS_FORWARD ? "forward" : "backward");
	free(got);
}

/*
 * Retention removed every event of a conversation's own (max_age 10 s, swept with a clock
 * 100 s ahead): "gone" (versions 1..4) holds nothing, "fk" (a fork of "base" at 5, with its
 * own 6..9) holds its parent's 1..5. Reads forward from 1, from a removed version and backward
 * are CS_OK with exactly what is held.
 */
static void test_all_own_removed(void)
{
	cs_store *s = vw_open_in(dir, "gone", 4);
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__ConversationForked *f = vw_forked(&A, NULL, NULL);
	f->retention = vw_retention(&A, 0, 10);
	bool ok =
	    CHECK_EQ_INT(cs_store_create(NULL, s, T, "gone",
					 vw_created(&A, NULL, NULL, vw_retention(&A, 0, 10)), &err),
			 CS_OK) &&
	    append_n(s, "gone", 3) && append_n(s, "base", 5) &&
	    CHECK_EQ_INT(cs_store_fork(NULL, s, T, "base", 5, "fk", f, &err), CS_OK) &&
	    append_n(s, "fk", 3);
	if (CHECK(ok) && CHECK_EQ_UINT(sweep(s, fx_now() + 100), 4 + 4)) {
		reads(s, "gone", 1, CS_FORWARD, "| next 0");
		reads(s, "gone", 3, CS_FORWARD, "| next 0");
		reads(s, "gone", 0, CS_BACKWARD, "| next 0");
		reads(s, "gone", 3, CS_BACKWARD, "| next 0");
		const char *up = "base:1 base:2 base:3 base:4 base:5 | next 0";
		const char *down = "base:5 base:4 base:3 base:2 base:1 | next 0";
		reads(s, "fk", 1, CS_FORWARD, up);
		reads(s, "fk", 7, CS_FORWARD, "| next 0");
		reads(s, "fk", 0, CS_BACKWARD, down);
		reads(s, "fk", 8, CS_BACKWARD, down);
		CHECK_EQ_UINT(fx_version(s, T, "gone"), 4);
		CHECK_EQ_UINT(fx_version(s, T, "fk"), 9);
		cs_verify_report rep = {0};
		CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
	}
	cs_store_close(s);
}

/*
 * A conversation whose head is damaged does not stop the sweep: the policy of the other one is
 * applied, the damaged one is left for verify and rebuild, and swept once repaired.
 */
static void test_sweep_past_damage(void)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/damaged", dir);
	cs_store *s = vw_open_in(dir, "damaged", 4);
	cs_error err = CS_ERROR_INIT;
	const char *convs[2] = {"bad", "good"};
	bool ok = true;
	for (int i = 0; ok && i < 2; i++)
		ok = CHECK_EQ_INT(
			 cs_store_create(NULL, s, T, convs[i],
					 vw_created(&A, NULL, NULL, vw_retention(&A, 1, 0)), &err),
			 CS_OK) &&
		     append_n(s, convs[i], 3);
	vw_reopen(&s, NULL, 0);
	unsigned char key[RAW_KEY_MAX];
	ok = ok && CHECK_EQ_INT(raw_flip(path, "streams", key, raw_head_key(key, T, "bad"), 20), 0);
	vw_reopen(&s, path, 4);
	if (CHECK(ok)) {
		CHECK_EQ_UINT(sweep(s, 0), 3);
		CHECK_EQ_INT(fx_count(s, T, "good"), 1);
		cs_verify_report rep = {0};
		CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_ECORRUPT);
		CHECK_STR_CONTAINS(err.msg, "\"bad\"");
		cs_rebuild_report rb = {0};
		CHECK_EQ_INT(cs_store_rebuild(&rb, s, &err), CS_OK);
		CHECK_EQ_UINT(sweep(s, 0), 3);
		CHECK_EQ_INT(fx_count(s, T, "bad"), 1);
	}
	cs_store_close(s);
}

static void test_verify_and_rebuild(void)
{
	cs_verify_report rep = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_verify(&rep, S, &err), CS_OK);
	CHECK_EQ_UINT(rep.problems, 0);
	cs_rebuild_report rb = {0};
	CHECK_EQ_INT(cs_store_rebuild(&rb, S, &err), CS_OK);
	CHECK_EQ_UINT(rb.differences, 0);
	CHECK_EQ_UINT(rb.conversations, 5); /* r1, r2, p, args and age; the forks were erased */
	CHECK_EQ_INT(cs_store_verify(&rep, S, &err), CS_OK);
	check_state_kept("r1", 0, 16);
}

int main(void)
{
	fx_tmpdir(dir, "retention");
	S = vw_open_in(dir, "retained", 4);
	R = vw_open_in(dir, "reference", 4);
	CHECK_RUN(test_max_events);
	CHECK_RUN(test_policy_by_update);
	CHECK_RUN(test_max_age);
	CHECK_RUN(test_forks_protected);
	CHECK_RUN(test_pending_across_cut);
	CHECK_RUN(test_max_age_capped);
	CHECK_RUN(test_verify_and_rebuild);
	CHECK_RUN(test_all_own_removed);
	CHECK_RUN(test_sweep_past_damage);
	cs_store_close(S);
	cs_store_close(R);
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
