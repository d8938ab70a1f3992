/*
 * test_corpus_views.c - the read views against real agent traces: every tau-bench airline
 * conversation ($CONVSTORE_CORPUS, mapped by tests/store/corpus.h; skipped with 77 when absent)
 * is appended, in one request each, to three stores: one that never snapshots (the fresh fold),
 * one that snapshots every 4 events (so nearly every read starts from a snapshot) and one with
 * the default interval. Then, for every conversation:
 *
 *  - the messages view, encoded with CS_JSON_NULL_OPTIONAL and parsed by Jansson, equals the
 *    original `messages` array (json_equal, message for message, field for field), now and at
 *    EVERY version N (where it must equal the first N original messages);
 *  - the state at EVERY version N is byte-identical (timestamps aside: the stores ran at other
 *    moments) in the snapshotting stores and in the fresh-fold store;
 *  - the state now counts the conversation's messages and tool calls, and nothing is pending.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "corpus.h"
#include "events.h"
#include "fixture.h"
#include "views.h"

#define T "tau"

static char dir[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;
static corpus C;
static cs_store *ref, *snap4, *dflt;

static const char *conv_id(size_t k)
{
	static char id[32];
	snprintf(id, sizeof id, "conv-%03zu", k);
	return id;
}

static void test_ingest(void)
{
	cs_store *stores[] = {ref, snap4, dflt};
	size_t failed = 0;
	for (size_t k = 0; k < C.n_convs; k++)
		for (size_t s = 0; s < 3; s++)
			failed += vw_append(NULL, stores[s], T, conv_id(k), C.convs[k].events,
					    C.convs[k].n) != CS_OK;
	CHECK_EQ_UINT(failed, 0);
}

/* The first @n messages of @all (a new array). */
static json_t *prefix(const json_t *all, size_t n)
{
	json_t *p = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append(p, json_array_get(all, i));
	return p;
}

/* Compare message by message so that a failure names the first differing one. */
static bool same_messages(const json_t *got, const json_t *want, const char *conv, uint64_t at)
{
	if (got && json_equal((json_t *)got, (json_t *)want))
		return true;
	size_t n = got ? json_array_size(got) : 0;
	fprintf(stderr, "  %s at %llu: %zu messages, want %zu\n", conv, (unsigned long long)at, n,
		json_array_size(want));
	for (size_t i = 0; i < n && i < json_array_size(want); i++)
		if (!json_equal(json_array_get(got, i), json_array_get(want, i))) {
			char *what = ev_strf(&A, "%s message %zu", conv, i);
			vw_json_equal(json_array_get(got, i), json_array_get(want, i), what);
			break;
		}
	return false;
}

static void test_messages_now(void)
{
	size_t bad = 0;
	for (size_t k = 0; k < C.n_convs && bad < 5; k++) {
		int rc;
		json_t *got = vw_messages_json(dflt, T, conv_id(k), 0, &rc);
		bad += !same_messages(got, C.convs[k].messages, conv_id(k), 0);
		json_decref(got);
	}
	CHECK_EQ_UINT(bad, 0);
}

static void test_messages_every_version(void)
{
	size_t bad = 0;
	for (size_t k = 0; k < C.n_convs && bad < 5; k++) {
		const corpus_conv *c = &C.convs[k];
		for (uint64_t v = 1; v <= c->n && bad < 5; v++) {
			json_t *want = prefix(c->messages, v);
			for (int s = 0; s < 2; s++) {
				int rc;
				json_t *got =
				    vw_messages_json(s ? snap4 : ref, T, conv_id(k), v, &rc);
				bad += !same_messages(got, want, conv_id(k), v);
				json_decref(got);
			}
			json_decref(want);
		}
	}
	CHECK_EQ_UINT(bad, 0);
}

static void test_state_every_version(void)
{
	size_t bad = 0, compared = 0;
	for (size_t k = 0; k < C.n_convs && bad < 5; k++) {
		for (uint64_t v = 1; v <= C.convs[k].n && bad < 5; v++) {
			bad += !vw_same_state(snap4, ref, T, conv_id(k), v, false);
			bad += !vw_same_state(dflt, ref, T, conv_id(k), v, false);
			compared += 2;
		}
	}
	CHECK_EQ_UINT(bad, 0);
	CHECK_EQ_UINT(compared, 2 * C.n_messages);
}

static void test_state_now(void)
{
	size_t bad = 0;
	for (size_t k = 0; k < C.n_convs; k++) {
		const corpus_conv *c = &C.convs[k];
		int rc;
		Convstore__V1__ConversationState *st = vw_state(dflt, T, conv_id(k), 0, &rc);
		bool ok = st && st->version == c->n && st->n_messages == c->n && st->counts &&
			  st->counts->events == c->n && st->counts->messages == c->n &&
			  st->counts->tool_calls == c->tool_calls &&
			  st->n_pending_tool_calls == c->pending && st->usage &&
			  st->usage->responses > 0;
		if (!ok && bad++ < 3)
			fprintf(stderr, "  state of %s: wrong version, counts or pending\n",
				conv_id(k));
		vw_free(st);
	}
	CHECK_EQ_UINT(bad, 0);
}

int main(void)
{
	int loaded = corpus_load(&C, &A, NULL);
	if (loaded == 0) {
		printf("corpus file absent: skipped\n");
		ev_arena_free(&A);
		return FX_SKIP;
	}
	if (loaded < 0) {
		corpus_free(&C);
		ev_arena_free(&A);
		return 1;
	}
	fx_tmpdir(dir, "corpus-views");
	ref = vw_open_in(dir, "never", VW_NEVER);
	snap4 = vw_open_in(dir, "every-4", 4);
	dflt = vw_open_in(dir, "default", 0);
	CHECK_EQ_UINT(C.n_convs, 200);
	printf("%zu conversations, %zu messages\n", C.n_convs, C.n_messages);

	CHECK_RUN(test_ingest);
	CHECK_RUN(test_messages_now);
	CHECK_RUN(test_messages_every_version);
	CHECK_RUN(test_state_every_version);
	CHECK_RUN(test_state_now);

	cs_store_close(ref);
	cs_store_close(snap4);
	cs_store_close(dflt);
	corpus_free(&C);
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
