/*
 * test_usage.c - cs_store_usage(): token and cost totals of model_response events by model,
 * conversation, UTC day and in total, exact (0.1 ten times is 1.0, a nano-dollar counts), rows
 * ordered by key, day ranges inclusive, tenants isolated, the rollup of a conversation equal to
 * its state's usage, erase removing exactly the erased conversation's share, and the error
 * codes of bad groups and ranges.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"
#include "views.h"

static char dir[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;
static cs_store *S;
static int64_t today; /* days since the epoch of the events' recorded_at */
static const char *today_key;

/* What a row must hold. */
typedef struct want {
	const char *key;
	uint64_t in, out, cached, reasoning, responses;
	int64_t nanos;
} want;

static Convstore__V1__Event *response(const char *model, uint64_t in, uint64_t out, double cost)
{
	Convstore__V1__Event *e = ev_model_response(&A, NULL, model, "text");
	ev_set_usage(&A, e, in, out, 1, 2, cost);
	return e;
}

static bool append(const char *tenant, const char *conv, Convstore__V1__Event **evs, size_t n)
{
	return vw_append(NULL, S, tenant, conv, evs, n) == CS_OK;
}

static bool row_is(const Convstore__V1__UsageRow *r, const want *w)
{
	bool ok = r && !strcmp(r->key, w->key) && r->input_tokens == w->in &&
		  r->output_tokens == w->out && r->cached_tokens == w->cached &&
		  r->reasoning_tokens == w->reasoning && r->responses == w->responses &&
		  llround(r->cost_usd * 1e9) == w->nanos &&
		  fabs(r->cost_usd - (double)w->nanos / 1e9) < 1e-12;
	if (!ok && r)
		fprintf(stderr,
			"  row %s: in %llu out %llu cached %llu reasoning %llu responses %llu cost "
			"%.17g; want %s: %llu %llu %llu %llu %llu %.17g\n",
			r->key, (unsigned long long)r->input_tokens,
			(unsigned long long)r->output_tokens, (unsigned long long)r->cached_tokens,
			(unsigned long long)r->reasoning_tokens, (unsigned long long)r->responses,
			r->cost_usd, w->key, (unsigned long long)w->in, (unsigned long long)w->out,
			(unsigned long long)w->cached, (unsigned long long)w->reasoning,
			(unsigned long long)w->responses, (double)w->nanos / 1e9);
	else if (!r)
		fprintf(stderr, "  no row %s\n", w->key);
	return ok;
}

/* The report must be exactly @n rows, in this order. */
static void report_is(const char *tenant, enum cs_usage_group g, int64_t from, int64_t to,
		      const want *rows, size_t n)
{
	int rc;
	Convstore__V1__UsageReport *u = vw_usage(S, tenant, g, from, to, &rc);
	if (!CHECK(u))
		return;
	if (CHECK_EQ_UINT(u->n_rows, n))
		for (size_t i = 0; i < n; i++)
			CHECK(row_is(u->rows[i], &rows[i]));
	vw_free(u);
}

/*
 * u1/a: 10 x m1 (in 1..10, out 2, cost 0.1)            -> cost 1.0 exactly
 * u1/b: 5 x m2 (in 100, out 7, cost 0.7), 3 x m1 (in 0, out 0, cost 1e-9), 1 x gpt without
 *       usage (cost 0.3), a message and a tool result (no usage)
 * u2/a: 1 x m1 (in 9, out 9, cost 5)
 */
static const want m1_a = {"a", 55, 20, 10, 20, 10, 1000000000};
static const want b_all = {"b", 500, 35, 8, 16, 9, 3500000003 + 300000000};

static void test_setup(void)
{
	Convstore__V1__Event *a[10], *b[11];
	for (int i = 0; i < 10; i++)
		a[i] = response("m1", (uint64_t)i + 1, 2, 0.1);
	for (int i = 0; i < 5; i++)
		b[i] = response("m2", 100, 7, 0.7);
	for (int i = 5; i < 8; i++)
		b[i] = response("m1", 0, 0, 1e-9);
	b[8] = ev_model_response(&A, NULL, "gpt", NULL);
	b[8]->model_response->cost_usd = 0.3;
	ev_add_tool_call(&A, b[8], "k", "fn", "{}");
	b[9] = ev_tool_result(&A, NULL, "k", "fn", "out");
	b[10] = ev_message(&A, NULL, "user", "hello");
	Convstore__V1__Event *u2[] = {response("m1", 9, 9, 5.0)};
	CHECK(append("u1", "a", a, 10));
	CHECK(append("u1", "b", b, 11));
	CHECK(append("u2", "a", u2, 1));

	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	if (CHECK_EQ_INT(fx_read_all(&p, S, "u1", "a", 100, &err), CS_OK) && CHECK(p.n == 10)) {
		int64_t secs = p.events[0]->recorded_at->seconds;
		today = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
		time_t t = (time_t)secs;
		struct tm tm;
		gmtime_r(&t, &tm);
		today_key =
		    ev_strf(&A, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	}
	cs_event_page_deinit(&p);
}

static void test_by_model(void)
{
	const want rows[] = {
	    {"gpt", 0, 0, 0, 0, 1, 300000000},
	    {"m1", 55, 20, 13, 26, 13, 1000000003},
	    {"m2", 500, 35, 5, 10, 5, 3500000000},
	};
	report_is("u1", CS_USAGE_BY_MODEL, INT64_MIN, INT64_MAX, rows, 3);
	report_is("u1", CS_USAGE_BY_MODEL, today, today, rows, 3);
	report_is("u1", CS_USAGE_BY_MODEL, today + 1, INT64_MAX, NULL, 0);
	report_is("u1", CS_USAGE_BY_MODEL, INT64_MIN, today - 1, NULL, 0);
}

static void test_by_conversation(void)
{
	const want rows[] = {m1_a, b_all};
	report_is("u1", CS_USAGE_BY_CONVERSATION, INT64_MIN, INT64_MAX, rows, 2);
	/* exactly 1.0, not 0.9999999999999999 */
	int rc;
	Convstore__V1__UsageReport *u =
	    vw_usage(S, "u1", CS_USAGE_BY_CONVERSATION, INT64_MIN, INT64_MAX, &rc);
	const Convstore__V1__UsageRow *a = vw_usage_row(u, "a");
	CHECK(a && a->cost_usd == 1.0);
	/* the rollup agrees with each conversation's state */
	for (size_t i = 0; u && i < u->n_rows; i++) {
		Convstore__V1__ConversationState *st = vw_state(S, "u1", u->rows[i]->key, 0, &rc);
		if (CHECK(st && st->usage)) {
			CHECK_EQ_UINT(st->usage->input_tokens, u->rows[i]->input_tokens);
			CHECK_EQ_UINT(st->usage->output_tokens, u->rows[i]->output_tokens);
			CHECK_EQ_UINT(st->usage->responses, u->rows[i]->responses);
			CHECK(st->usage->cost_usd == u->rows[i]->cost_usd);
		}
		vw_free(st);
	}
	vw_free(u);
}

static void test_by_day_and_total(void)
{
	if (!CHECK(today_key))
		return;
	want all = {today_key, 555, 55, 18, 36, 19, 4800000003};
	report_is("u1", CS_USAGE_BY_DAY, INT64_MIN, INT64_MAX, &all, 1);
	report_is("u1", CS_USAGE_BY_DAY, today, today, &all, 1);
	report_is("u1", CS_USAGE_BY_DAY, today - 30, today + 30, &all, 1);
	report_is("u1", CS_USAGE_BY_DAY, today + 1, today + 1, NULL, 0);
	report_is("u1", CS_USAGE_BY_DAY, today - 1, today - 1, NULL, 0);
	all.key = "total";
	report_is("u1", CS_USAGE_TOTAL, INT64_MIN, INT64_MAX, &all, 1);
	report_is("u1", CS_USAGE_TOTAL, today, today, &all, 1);
}

static void test_tenants(void)
{
	const want u2[] = {{"a", 9, 9, 1, 2, 1, 5000000000}};
	report_is("u2", CS_USAGE_BY_CONVERSATION, INT64_MIN, INT64_MAX, u2, 1);
	const want u2m[] = {{"m1", 9, 9, 1, 2, 1, 5000000000}};
	report_is("u2", CS_USAGE_BY_MODEL, INT64_MIN, INT64_MAX, u2m, 1);
	report_is("nobody", CS_USAGE_BY_MODEL, INT64_MIN, INT64_MAX, NULL, 0);
	report_is("nobody", CS_USAGE_BY_CONVERSATION, INT64_MIN, INT64_MAX, NULL, 0);
}

static void test_errors(void)
{
	Convstore__V1__UsageReport *u = (void *)1;
	cs_error err = CS_ERROR_INIT;
	cs_usage_query q = {(enum cs_usage_group)99, INT64_MIN, INT64_MAX};
	CHECK_EQ_INT(cs_store_usage(&u, S, "u1", &q, &err), CS_EINVAL);
	CHECK(u == NULL);
	cs_usage_query inverted = {CS_USAGE_BY_DAY, today + 1, today};
	CHECK_EQ_INT(cs_store_usage(&u, S, "u1", &inverted, &err), CS_EINVAL);
	CHECK(err.msg[0] != '\0');
}

static void test_after_erase(void)
{
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(cs_store_erase(&r, S, "u1", "a", false, &err), CS_OK))
		return;
	const want conv[] = {b_all};
	report_is("u1", CS_USAGE_BY_CONVERSATION, INT64_MIN, INT64_MAX, conv, 1);
	const want models[] = {
	    {"gpt", 0, 0, 0, 0, 1, 300000000},
	    {"m1", 0, 0, 3, 6, 3, 3},
	    {"m2", 500, 35, 5, 10, 5, 3500000000},
	};
	report_is("u1", CS_USAGE_BY_MODEL, INT64_MIN, INT64_MAX, models, 3);
	want total = {"total", 500, 35, 8, 16, 9, 3800000003};
	report_is("u1", CS_USAGE_TOTAL, INT64_MIN, INT64_MAX, &total, 1);
	/* the other tenant's "a" keeps its share */
	const want u2[] = {{"a", 9, 9, 1, 2, 1, 5000000000}};
	report_is("u2", CS_USAGE_BY_CONVERSATION, INT64_MIN, INT64_MAX, u2, 1);
	/* after purging and reusing the id, only the new events count */
	CHECK_EQ_INT(cs_store_erase(&r, S, "u1", "a", true, &err), CS_OK);
	Convstore__V1__Event *again[] = {response("m1", 1, 1, 0.25)};
	CHECK(append("u1", "a", again, 1));
	const want conv2[] = {{"a", 1, 1, 1, 2, 1, 250000000}, b_all};
	report_is("u1", CS_USAGE_BY_CONVERSATION, INT64_MIN, INT64_MAX, conv2, 2);
}

#define MANY	     20000
#define MANY_THREADS 4

/* Conversations c-<i> of tenant "many", i = @t, @t + MANY_THREADS, ...: one response each,
 * with i + 1 input tokens. Several threads, so that the group commit batches them. */
static void *append_many(void *arg)
{
	int t = (int)(intptr_t)arg, failed = 0;
	ev_arena a = EV_ARENA_INIT;
	for (int i = t; i < MANY; i += MANY_THREADS) {
		Convstore__V1__Event *e = ev_model_response(&a, NULL, "m", "r");
		ev_set_usage(&a, e, (uint64_t)i + 1, 1, 0, 0, 0.001);
		char id[16];
		snprintf(id, sizeof id, "c-%05d", i);
		failed += vw_append(NULL, S, "many", id, &e, 1) != CS_OK;
		ev_arena_free(&a);
	}
	return (void *)(intptr_t)failed;
}

/* By conversation over 20,000 conversations: one row each, in key order, each its own sum
 * (once a linear search per row). */
static void test_many_conversations(void)
{
	pthread_t th[MANY_THREADS];
	int started = 0;
	intptr_t failed = 0;
	for (; started < MANY_THREADS; started++)
		if (!CHECK_EQ_INT(
			pthread_create(&th[started], NULL, append_many, (void *)(intptr_t)started),
			0))
			break;
	for (int t = 0; t < started; t++) {
		void *f;
		pthread_join(th[t], &f);
		failed += (intptr_t)f;
	}
	if (!CHECK_EQ_INT(failed, 0) || !CHECK_EQ_INT(started, MANY_THREADS))
		return;
	int rc;
	Convstore__V1__UsageReport *u =
	    vw_usage(S, "many", CS_USAGE_BY_CONVERSATION, INT64_MIN, INT64_MAX, &rc);
	size_t bad = 0;
	if (CHECK(u) && CHECK_EQ_UINT(u->n_rows, MANY)) {
		for (size_t i = 0; i < MANY; i++) {
			char id[16];
			snprintf(id, sizeof id, "c-%05zu", i);
			const Convstore__V1__UsageRow *r = u->rows[i];
			bool ok = !strcmp(r->key, id) && r->input_tokens == i + 1 &&
				  r->output_tokens == 1 && r->responses == 1;
			if (!ok && bad++ < 3)
				fprintf(stderr, "  row %zu: %s in %llu responses %llu\n", i, r->key,
					(unsigned long long)r->input_tokens,
					(unsigned long long)r->responses);
		}
	}
	CHECK_EQ_UINT(bad, 0);
	vw_free(u);
	const want total = {"total",	     (uint64_t)MANY * (MANY + 1) / 2, MANY, 0, 0, MANY,
			    MANY * 1000000ll};
	report_is("many", CS_USAGE_TOTAL, INT64_MIN, INT64_MAX, &total, 1);
}

int main(void)
{
	fx_tmpdir(dir, "usage");
	S = vw_open_in(dir, "store", 0);
	CHECK_RUN(test_setup);
	CHECK_RUN(test_by_model);
	CHECK_RUN(test_by_conversation);
	CHECK_RUN(test_by_day_and_total);
	CHECK_RUN(test_tenants);
	CHECK_RUN(test_errors);
	CHECK_RUN(test_after_erase);
	CHECK_RUN(test_many_conversations);
	cs_store_close(S);
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
