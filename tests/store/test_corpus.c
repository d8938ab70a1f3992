/*
 * test_corpus.c - proves that real agent traces go through the store unchanged: the 200
 * tau-bench airline conversations ($CONVSTORE_CORPUS/tau-bench/gpt-4o-airline.conversations.jsonl,
 * OpenAI chat format; skipped with 77 when absent) are mapped to events
 *
 *     system / user          -> message {role, content}
 *     assistant              -> model_response {model "gpt-4o", content (unset when null),
 *                               tool_calls [{id, name, arguments}]}
 *     tool                   -> tool_result {call_id = tool_call_id, name, output = content}
 *
 * and appended twice: each conversation in one request, and a second copy one event per
 * request. Both must be accepted, although tau-bench reuses tool-call ids inside a conversation
 * once the earlier call was answered. Then:
 *
 *  - every stored event equals what was sent (protobuf bytes, server-set fields cleared) and has
 *    the right version and type;
 *  - the global feed from 0 returns every event exactly once, in strictly increasing position;
 *  - every head counts the conversation's events, messages and tool calls, and its pending tool
 *    calls are exactly the calls left unanswered (none, for this corpus).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "corpus.h"
#include "events.h"
#include "fixture.h"

#define T "tau"

typedef struct conv {
	corpus_conv *src;
	char id_whole[32], id_single[32];
} conv;

static char dir[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;
static cs_store *S;
static corpus C;
static conv convs[CORPUS_MAX_CONVS];
static size_t n_convs, n_messages;

/* Load the corpus; 1 when done, 0 when the file is absent, -1 on a malformed file. */
static int load(void)
{
	int rc = corpus_load(&C, &A, NULL);
	n_convs = C.n_convs;
	n_messages = C.n_messages;
	for (size_t k = 0; k < n_convs; k++) {
		convs[k].src = &C.convs[k];
		snprintf(convs[k].id_whole, sizeof convs[k].id_whole, "whole-%03zu", k);
		snprintf(convs[k].id_single, sizeof convs[k].id_single, "single-%03zu", k);
	}
	return rc;
}

static void test_append_whole(void)
{
	size_t failed = 0;
	for (size_t k = 0; k < n_convs; k++) {
		conv *c = &convs[k];
		cs_append_result r;
		cs_error err = CS_ERROR_INIT;
		int rc = cs_store_append(&r, S, T, c->id_whole, 0, c->src->events, c->src->n, &err);
		if (rc != CS_OK) {
			if (failed++ < 5)
				fprintf(stderr, "  %s: rc %d at event %d: %s\n", c->id_whole, rc,
					err.index, err.msg);
			continue;
		}
		CHECK_EQ_UINT(r.first_version, 1);
		CHECK_EQ_UINT(r.last_version, c->src->n);
		CHECK(r.last_position - r.first_position + 1 >= c->src->n);
	}
	CHECK_EQ_UINT(failed, 0);
}

static void test_append_single(void)
{
	size_t failed = 0, misnumbered = 0;
	for (size_t k = 0; k < n_convs; k++) {
		conv *c = &convs[k];
		for (size_t i = 0; i < c->src->n; i++) {
			cs_append_result r;
			cs_error err = CS_ERROR_INIT;
			int rc = cs_store_append(&r, S, T, c->id_single, (int64_t)i,
						 &c->src->events[i], 1, &err);
			if (rc != CS_OK) {
				if (failed++ < 5)
					fprintf(stderr, "  %s event %zu: rc %d: %s\n", c->id_single,
						i, rc, err.msg);
				break;
			}
			misnumbered += r.first_version != i + 1;
		}
	}
	CHECK_EQ_UINT(failed, 0);
	CHECK_EQ_UINT(misnumbered, 0);
}

static const char *type_of(const Convstore__V1__Event *e)
{
	switch (e->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE: return "message";
	case CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE: return "model_response";
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT: return "tool_result";
	default: return "?";
	}
}

/* Read one copy back; count events that differ from what was sent. */
static size_t differing(const conv *c, const char *id)
{
	cs_event_page all = {0};
	cs_error err = CS_ERROR_INIT;
	size_t bad = 0;
	if (fx_read_all(&all, S, T, id, 25, &err) != CS_OK || all.n != c->src->n) {
		fprintf(stderr, "  %s: %zu events read of %zu (%s)\n", id, all.n, c->src->n,
			err.msg);
		bad = c->src->n;
	} else {
		for (size_t i = 0; i < c->src->n; i++) {
			const Convstore__V1__Event *e = all.events[i];
			bool same = e->version == i + 1 &&
				    !strcmp(e->type, type_of(c->src->events[i])) &&
				    !strcmp(e->conversation_id, id) &&
				    ev_same_as_sent(&A, e, c->src->events[i], true);
			if (!same && bad++ < 3)
				fprintf(stderr, "  %s version %zu differs from what was sent\n", id,
					i + 1);
		}
	}
	cs_event_page_deinit(&all);
	return bad;
}

static void test_read_back(void)
{
	size_t bad = 0;
	for (size_t k = 0; k < n_convs; k++) {
		bad += differing(&convs[k], convs[k].id_whole);
		bad += differing(&convs[k], convs[k].id_single);
	}
	CHECK_EQ_UINT(bad, 0);
}

/* Which conversation and copy an id names: index * 2 + (single ? 1 : 0), or -1. */
static long slot_of(const char *id)
{
	unsigned k;
	if (sscanf(id, "whole-%u", &k) == 1 && k < n_convs)
		return (long)k * 2;
	if (sscanf(id, "single-%u", &k) == 1 && k < n_convs)
		return (long)k * 2 + 1;
	return -1;
}

/* What the feed walk found beyond order and count: events visited, and those seen twice, not
 * placed, or differing from what was sent. */
typedef struct feed_check {
	unsigned char seen[CORPUS_MAX_CONVS * 2][CORPUS_MAX_MESSAGES + 1]; /* seen[slot][version] */
	size_t visited, twice, unknown, differ;
} feed_check;

static void feed_event(const Convstore__V1__Event *e, void *ctx)
{
	feed_check *fc = ctx;
	fc->visited++;
	long slot = slot_of(e->conversation_id);
	if (slot < 0 || e->version < 1 || e->version > convs[slot / 2].src->n) {
		fc->unknown++;
		return;
	}
	fc->twice += fc->seen[slot][e->version]++ != 0;
	fc->differ += !ev_same_as_sent(&A, e, convs[slot / 2].src->events[e->version - 1], true);
}

static void test_feed(void)
{
	static feed_check fc;
	fx_feed_walk w;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_walk_feed(&w, S, 777, feed_event, &fc, &err), CS_OK);
	CHECK_EQ_UINT(w.bad_next, 0);
	CHECK_EQ_UINT(w.events, 2 * n_messages);
	CHECK_EQ_UINT(fc.visited, 2 * n_messages);
	CHECK_EQ_UINT(fc.twice, 0);
	CHECK_EQ_UINT(fc.unknown, 0);
	CHECK_EQ_UINT(w.not_increasing, 0);
	CHECK_EQ_UINT(fc.differ, 0);
	CHECK_EQ_UINT(fx_stats(S).events, 2 * n_messages);
	CHECK_EQ_UINT(fx_stats(S).last_position, w.last_position);
}

static void test_heads(void)
{
	size_t bad = 0;
	for (size_t k = 0; k < n_convs; k++) {
		const conv *c = &convs[k];
		const char *ids[] = {c->id_whole, c->id_single};
		for (int j = 0; j < 2; j++) {
			Convstore__V1__Head *h = NULL;
			cs_error err = CS_ERROR_INIT;
			if (cs_store_head(&h, S, T, ids[j], &err) != CS_OK) {
				fprintf(stderr, "  head %s: %s\n", ids[j], err.msg);
				bad++;
				continue;
			}
			bool ok = h->version == c->src->n && h->counts &&
				  h->counts->events == c->src->n &&
				  h->counts->messages == c->src->n &&
				  h->counts->tool_calls == c->src->tool_calls &&
				  h->n_pending_tool_calls == c->src->pending;
			if (!ok && bad++ < 3)
				fprintf(
				    stderr,
				    "  head %s: version %llu events %llu messages %llu tool "
				    "calls %llu pending %zu; want %zu, %zu calls, %zu pending\n",
				    ids[j], (unsigned long long)h->version,
				    (unsigned long long)(h->counts ? h->counts->events : 0),
				    (unsigned long long)(h->counts ? h->counts->messages : 0),
				    (unsigned long long)(h->counts ? h->counts->tool_calls : 0),
				    h->n_pending_tool_calls, c->src->n, c->src->tool_calls,
				    c->src->pending);
			protobuf_c_message_free_unpacked(&h->base, NULL);
		}
	}
	CHECK_EQ_UINT(bad, 0);
	CHECK_EQ_UINT(fx_stats(S).conversations, 2 * n_convs);
}

int main(void)
{
	int loaded = load();
	if (loaded == 0) {
		printf("corpus file absent: skipped\n");
		ev_arena_free(&A);
		return FX_SKIP;
	}
	fx_tmpdir(dir, "corpus");
	cs_error err = CS_ERROR_INIT;
	if (loaded < 0 || fx_open(&S, dir, 0, 0, false, &err) != CS_OK) {
		fprintf(stderr, "setup failed: %s\n", err.msg);
		fx_rmrf(dir);
		return 1;
	}
	CHECK_EQ_UINT(n_convs, 200);
	printf("%zu conversations, %zu messages\n", n_convs, n_messages);

	CHECK_RUN(test_append_whole);
	CHECK_RUN(test_append_single);
	CHECK_RUN(test_read_back);
	CHECK_RUN(test_feed);
	CHECK_RUN(test_heads);

	cs_store_close(S);
	corpus_free(&C);
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
