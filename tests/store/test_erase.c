/*
 * test_erase.c - cs_store_erase() as GDPR erasure. A conversation whose events carry a marker
 * string everywhere content can be (title, metadata, message text, a deflated 8 KiB message,
 * tool arguments and output, model text, envelope metadata and actor, an event id) and that
 * crossed several snapshots is erased. Afterwards:
 *
 *  - read_stream, state, messages, head and forks are CS_ENOTFOUND;
 *  - the global feed holds no event of it but one content-free conversation_deleted (its tenant
 *    and id, the position erase returned, no version, no metadata), and no event anywhere holds
 *    the marker; positions still increase and the feed's cursors stay right;
 *  - the listing and the usage report no longer show it;
 *  - no record of any LMDB database (keys and values, deflated bodies inflated) holds the marker
 *    (while a second marker in another tenant's deflated message IS found: the scan works);
 *  - append, create, update, erase and fork onto the id are CS_EGONE and store nothing;
 *  - the other conversations are byte-identical (events and state); verify is clean;
 *  - purge removes the tombstone (the id starts again at version 1); erase with purge of a live
 *    conversation leaves no tombstone; unknown ids and other tenants are CS_ENOTFOUND.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"
#include "lmdb_raw.h"
#include "views.h"

#define T      "t"
#define MARKER "zq7MARKERx93"
#define OTHER  "Kp2OTHERMARKv8"

static char dir[PATH_MAX], path[PATH_MAX + 16];
static ev_arena A = EV_ARENA_INIT;
static cs_store *S;
static uint64_t deleted_position;
static uint8_t *keep_stream[3], *keep_state[3];
static size_t keep_stream_len[3], keep_state_len[3];
static const char *const keeps[3][2] = {{T, "keep1"}, {T, "keep2"}, {"t2", "victim"}};

/* ---- the raw scan ------------------------------------------------------------------------ */

typedef struct scan {
	const char *needle;
	size_t hits;
	char where[128];
} scan;

static void scan_bytes(scan *s, const char *db, const void *p, size_t n, const char *how)
{
	if (n && memmem(p, n, s->needle, strlen(s->needle))) {
		if (!s->hits++)
			snprintf(s->where, sizeof s->where, "%s (%s)", db, how);
	}
}

/* Inflate @n bytes at @p (raw deflate when @window < 0, else zlib or gzip) and scan the output. */
static void scan_inflated(scan *s, const char *db, const unsigned char *p, size_t n, int window)
{
	z_stream z = {0};
	if (inflateInit2(&z, window) != Z_OK)
		return;
	size_t cap = 1 << 16, len = 0;
	unsigned char *out = malloc(cap);
	z.next_in = (unsigned char *)p;
	z.avail_in = (uInt)n;
	int rc = Z_OK;
	while (out && rc == Z_OK && cap <= (64u << 20)) {
		if (len == cap) {
			unsigned char *grown = realloc(out, cap *= 2);
			if (!grown)
				break;
			out = grown;
		}
		z.next_out = out + len;
		z.avail_out = (uInt)(cap - len);
		rc = inflate(&z, Z_NO_FLUSH);
		len = cap - z.avail_out;
	}
	if (out && len)
		scan_bytes(s, db, out, len, "inflated");
	inflateEnd(&z);
	free(out);
}

static int scan_record(const char *db, const MDB_val *k, const MDB_val *v, void *arg)
{
	scan *s = arg;
	const unsigned char *p = v->mv_data;
	scan_bytes(s, db, k->mv_data, k->mv_size, "key");
	scan_bytes(s, db, p, v->mv_size, "value");
	/* a store record (record.c): 12-byte header, flag bit 0 = raw-deflated body */
	if (v->mv_size >= 12 && p[4] == 1 && (p[5] & 1)) {
		size_t tail = ((size_t)p[10] << 8) | p[11];
		if (v->mv_size >= 12 + tail)
			scan_inflated(s, db, p + 12, v->mv_size - 12 - tail, -15);
	}
	/* anything else zlib- or gzip-wrapped near the start */
	for (size_t off = 0; off < 32 && off + 2 < v->mv_size; off++)
		if ((p[off] == 0x78 && ((p[off] << 8) | p[off + 1]) % 31 == 0) ||
		    (p[off] == 0x1f && p[off + 1] == 0x8b))
			scan_inflated(s, db, p + off, v->mv_size - off, 15 + 32);
	return 0;
}

/* Records of the (closed) store holding @needle; where the first one is in *where. */
static size_t raw_hits(const char *needle, char *where, size_t where_len)
{
	scan s = {needle, 0, ""};
	int rc = raw_walk_all(path, scan_record, &s);
	if (rc)
		fprintf(stderr, "  raw walk: %s\n", mdb_strerror(rc));
	snprintf(where, where_len, "%s", s.where);
	return rc ? SIZE_MAX : s.hits;
}

/* ---- setup ------------------------------------------------------------------------------- */

static void build_victim(void)
{
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_create(
	    &r, S, T, "victim", vw_created(&A, "title " MARKER, VW_KV("note", MARKER), NULL), &err);
	CHECK_EQ_INT(vw_said(rc, "create", "victim", &err), CS_OK);
	char *big = ev_strf(&A, "%s " MARKER " %s", ev_prose(&A, 4096), ev_prose(&A, 4096));
	Convstore__V1__Event *resp = ev_model_response(&A, NULL, "gpt-4o", "said " MARKER);
	ev_set_usage(&A, resp, 10, 10, 0, 0, 0.5);
	ev_add_tool_call(&A, resp, "call-1", "lookup", "{\"q\":\"" MARKER "\"}");
	Convstore__V1__Event *u = ev_message(&A, "ev-" MARKER, "user", "my secret " MARKER);
	ev_add_metadata(&A, u, "k", MARKER);
	u->actor = MARKER;
	Convstore__V1__Event *evs[] = {
	    u,
	    ev_message(&A, NULL, "user", big),
	    resp,
	    ev_tool_result(&A, NULL, "call-1", "lookup", "result " MARKER),
	    ev_message(&A, NULL, "user", "a"),
	    ev_message(&A, NULL, "user", "b " MARKER),
	    ev_message(&A, NULL, "user", "c"),
	    ev_message(&A, NULL, "user", "d"),
	    ev_message(&A, NULL, "user", "e"),
	    ev_message(&A, NULL, "user", "f " MARKER),
	    ev_message(&A, NULL, "user", "g"),
	};
	for (size_t i = 0; i < 11; i++) /* one event per append: snapshots at 4 and 8 */
		CHECK_EQ_INT(vw_append(NULL, S, T, "victim", &evs[i], 1), CS_OK);
}

static void build_others(void)
{
	for (int k = 0; k < 2; k++) {
		Convstore__V1__Event *r = ev_model_response(&A, NULL, "gpt-4o", "fine");
		ev_set_usage(&A, r, 1, 1, 0, 0, 0.1);
		Convstore__V1__Event *evs[] = {ev_message(&A, NULL, "user", "hello"), r};
		CHECK_EQ_INT(vw_append(NULL, S, T, keeps[k][1], evs, 2), CS_OK);
	}
	/* another tenant's "victim", its marker only inside a deflated 8 KiB message */
	char *big = ev_strf(&A, "%s " OTHER " %s", ev_prose(&A, 4096), ev_prose(&A, 4096));
	Convstore__V1__Event *evs[] = {ev_message(&A, NULL, "user", big)};
	CHECK_EQ_INT(vw_append(NULL, S, "t2", "victim", evs, 1), CS_OK);
}

static void test_setup(void)
{
	build_victim();
	build_others();
	for (int k = 0; k < 3; k++) {
		keep_stream[k] = vw_stream_bytes(S, keeps[k][0], keeps[k][1], &keep_stream_len[k]);
		keep_state[k] =
		    vw_state_bytes(S, keeps[k][0], keeps[k][1], 0, true, &keep_state_len[k]);
		CHECK(keep_stream[k] && keep_state[k]);
	}
	/* the scan finds both markers before the erase */
	vw_reopen(&S, NULL, 0);
	char where[128];
	size_t hits = raw_hits(MARKER, where, sizeof where);
	CHECK(hits > 0 && hits != SIZE_MAX);
	CHECK(raw_hits(OTHER, where, sizeof where) > 0);
	CHECK_STR_CONTAINS(where, "inflated");
	vw_reopen(&S, path, 4);
}

static void test_erase(void)
{
	cs_append_result r = {0};
	cs_error err = CS_ERROR_INIT;
	uint64_t last = fx_stats(S).last_position;
	if (!CHECK_EQ_INT(cs_store_erase(&r, S, T, "victim", false, &err), CS_OK)) {
		fprintf(stderr, "  erase: %s\n", err.msg);
		return;
	}
	deleted_position = r.last_position;
	CHECK(deleted_position > last);
	CHECK_EQ_UINT(fx_stats(S).last_position, deleted_position);
}

static void test_reads_gone(void)
{
	cs_error err = CS_ERROR_INIT;
	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "victim", 1, 10, CS_FORWARD, &err),
		     CS_ENOTFOUND);
	CHECK_EQ_UINT(p.n, 0);
	cs_event_page_deinit(&p);
	CHECK_EQ_INT(cs_store_read_stream(&p, S, T, "victim", 0, 10, CS_BACKWARD, &err),
		     CS_ENOTFOUND);
	cs_event_page_deinit(&p);
	Convstore__V1__ConversationState *st = NULL;
	CHECK_EQ_INT(cs_store_state(&st, S, T, "victim", 0, &err), CS_ENOTFOUND);
	vw_free(st);
	CHECK_EQ_INT(cs_store_state(&st, S, T, "victim", 3, &err), CS_ENOTFOUND);
	vw_free(st);
	Convstore__V1__ChatTranscript *tr = NULL;
	CHECK_EQ_INT(cs_store_messages(&tr, S, T, "victim", 0, &err), CS_ENOTFOUND);
	vw_free(tr);
	Convstore__V1__Head *h = NULL;
	CHECK_EQ_INT(cs_store_head(&h, S, T, "victim", &err), CS_ENOTFOUND);
	vw_free(h);
	Convstore__V1__ForkList *fl = NULL;
	CHECK_EQ_INT(cs_store_forks(&fl, S, T, "victim", &err), CS_ENOTFOUND);
	vw_free(fl);
}

typedef struct feed_seen {
	size_t of_victim, deleted, with_marker;
	const Convstore__V1__Event *bad;
	uint64_t deleted_at, deleted_version, deleted_size;
	bool deleted_clean;
} feed_seen;

static void feed_visit(const Convstore__V1__Event *e, void *ctx)
{
	feed_seen *f = ctx;
	size_t len;
	uint8_t *bytes = ev_pack(&A, e, &len);
	f->with_marker += memmem(bytes, len, MARKER, strlen(MARKER)) != NULL;
	if (strcmp(e->tenant, T) != 0 || strcmp(e->conversation_id, "victim") != 0)
		return;
	f->of_victim++;
	if (e->payload_case != CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED)
		return;
	f->deleted++;
	f->deleted_at = e->position;
	f->deleted_version = e->version;
	f->deleted_size = len;
	f->deleted_clean = e->n_metadata == 0 && !*e->actor && !*e->correlation_id &&
			   !*e->causation_id && !e->occurred_at && !e->trace &&
			   !e->conversation_deleted->purged &&
			   !strcmp(e->type, "conversation_deleted");
}

static void test_feed(void)
{
	feed_seen f = {0};
	fx_feed_walk w;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_walk_feed(&w, S, 5, feed_visit, &f, &err), CS_OK);
	CHECK_EQ_UINT(f.of_victim, 1);
	CHECK_EQ_UINT(f.deleted, 1);
	CHECK_EQ_UINT(f.deleted_at, deleted_position);
	CHECK_EQ_UINT(f.deleted_version, 0);
	CHECK(f.deleted_clean);
	CHECK(f.deleted_size < 128);
	CHECK_EQ_UINT(f.with_marker, 0);
	CHECK_EQ_UINT(w.not_increasing, 0);
	CHECK_EQ_UINT(w.bad_next, 0);
	CHECK_EQ_UINT(w.last_position, deleted_position);
	/* 2 + 2 + 1 events of the others, and the deleted marker */
	CHECK_EQ_UINT(w.events, 6);
	/* a tenant's feed: the other tenant's one event only */
	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_feed(&p, S, "t2", 0, 100, &err), CS_OK);
	CHECK_EQ_UINT(p.n, 1);
	cs_event_page_deinit(&p);
}

static void test_views_forget(void)
{
	int rc;
	cs_list_query q = {0};
	Convstore__V1__ConversationList *l = vw_list(S, T, &q, &rc);
	if (CHECK(l) && CHECK_EQ_UINT(l->n_conversations, 2)) {
		CHECK_STR_EQ(l->conversations[0]->id, "keep2");
		CHECK_STR_EQ(l->conversations[1]->id, "keep1");
	}
	vw_free(l);
	Convstore__V1__UsageReport *u =
	    vw_usage(S, T, CS_USAGE_BY_CONVERSATION, INT64_MIN, INT64_MAX, &rc);
	if (CHECK(u)) {
		CHECK_EQ_UINT(u->n_rows, 2);
		CHECK(vw_usage_row(u, "victim") == NULL);
	}
	vw_free(u);
	u = vw_usage(S, T, CS_USAGE_TOTAL, INT64_MIN, INT64_MAX, &rc);
	if (CHECK(u) && CHECK_EQ_UINT(u->n_rows, 1)) {
		CHECK_EQ_UINT(u->rows[0]->responses, 2);
		CHECK_EQ_UINT(u->rows[0]->input_tokens, 2);
		CHECK(u->rows[0]->cost_usd == 0.2);
	}
	vw_free(u);
}

static void test_others_untouched(void)
{
	for (int k = 0; k < 3; k++) {
		size_t ls = 0, lt = 0;
		uint8_t *s = vw_stream_bytes(S, keeps[k][0], keeps[k][1], &ls);
		uint8_t *t = vw_state_bytes(S, keeps[k][0], keeps[k][1], 0, true, &lt);
		CHECK(s && t);
		CHECK_MEM_EQ(s, ls, keep_stream[k], keep_stream_len[k]);
		CHECK_MEM_EQ(t, lt, keep_state[k], keep_state_len[k]);
		free(s);
		free(t);
	}
	cs_verify_report rep = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_verify(&rep, S, &err), CS_OK);
	CHECK_EQ_UINT(rep.problems, 0);
	if (rep.problems)
		fprintf(stderr, "  verify: %s\n", err.msg);
}

static void test_raw_bytes_gone(void)
{
	vw_reopen(&S, NULL, 0);
	char where[128] = "";
	size_t hits = raw_hits(MARKER, where, sizeof where);
	if (!CHECK_EQ_UINT(hits, 0))
		fprintf(stderr, "  the marker is still in %s\n", where);
	CHECK(raw_hits(OTHER, where, sizeof where) > 0);
	/* informational: freed LMDB pages keep old bytes until they are reused */
	FILE *f = fopen(ev_strf(&A, "%s/data.mdb", path), "rb");
	if (f) {
		size_t n = 0, cap = 0;
		char *buf = NULL, chunk[1 << 16];
		size_t got;
		while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
			if (n + got > cap) {
				char *grown = realloc(buf, cap = 2 * (n + got));
				if (!grown)
					break;
				buf = grown;
			}
			memcpy(buf + n, chunk, got);
			n += got;
		}
		fclose(f);
		printf("note: data.mdb %s the marker in free pages\n",
		       buf && memmem(buf, n, MARKER, strlen(MARKER)) ? "still holds"
								     : "no longer holds");
		free(buf);
	}
	vw_reopen(&S, path, 4);
}

/* An operation on the erased id that must be refused with @code, storing nothing. */
#define REFUSED(code, call)                                                                        \
	do {                                                                                       \
		cs_store_stats before_ = fx_stats(S);                                              \
		cs_error err = CS_ERROR_INIT;                                                      \
		cs_append_result r;                                                                \
		CHECK_EQ_INT((call), (code));                                                      \
		CHECK(err.msg[0] != '\0');                                                         \
		CHECK_EQ_UINT(fx_stats(S).last_position, before_.last_position);                   \
		CHECK_EQ_UINT(fx_stats(S).events, before_.events);                                 \
	} while (0)

static void test_tombstone(void)
{
	Convstore__V1__Event *e[] = {ev_message(&A, NULL, "user", "again")};
	REFUSED(CS_EGONE, cs_store_append(&r, S, T, "victim", CS_ANY_VERSION, e, 1, &err));
	REFUSED(CS_EGONE, cs_store_append(&r, S, T, "victim", 0, e, 1, &err));
	REFUSED(CS_EGONE, cs_store_create(&r, S, T, "victim", NULL, &err));
	REFUSED(CS_EGONE, cs_store_update(&r, S, T, "victim", CS_ANY_VERSION,
					  vw_updated(&A, "x", NULL, NULL, NULL), &err));
	REFUSED(CS_EGONE, cs_store_erase(&r, S, T, "victim", false, &err));
	REFUSED(CS_EGONE, cs_store_fork(&r, S, T, "keep1", 1, "victim", NULL, &err));
	REFUSED(CS_ENOTFOUND, cs_store_fork(&r, S, T, "victim", 1, "child", NULL, &err));
	REFUSED(CS_ENOTFOUND, cs_store_erase(&r, S, T, "never-was", false, &err));
	REFUSED(CS_ENOTFOUND, cs_store_erase(&r, S, T, "never-was", true, &err));
	REFUSED(CS_ENOTFOUND, cs_store_erase(&r, S, "t3", "keep1", false, &err));
	CHECK_EQ_UINT(fx_version(S, T, "keep1"), 2);
}

static void test_purge(void)
{
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_erase(&r, S, T, "victim", true, &err), CS_OK);
	/* purging again: neither a conversation nor a tombstone */
	CHECK_EQ_INT(cs_store_erase(&r, S, T, "victim", true, &err), CS_ENOTFOUND);
	Convstore__V1__Event *e[] = {ev_message(&A, NULL, "user", "a new life")};
	CHECK_EQ_INT(cs_store_append(&r, S, T, "victim", 0, e, 1, &err), CS_OK);
	CHECK_EQ_UINT(r.first_version, 1);
	int rc;
	Convstore__V1__ConversationState *st = vw_state(S, T, "victim", 0, &rc);
	if (CHECK(st)) {
		CHECK_EQ_UINT(st->version, 1);
		CHECK_STR_EQ(st->title, "");
		CHECK_EQ_UINT(st->n_metadata, 0);
		CHECK_EQ_UINT(st->n_messages, 1);
		CHECK(st->usage == NULL || st->usage->responses == 0);
	}
	vw_free(st);

	/* erase with purge of a live conversation: gone, and no tombstone */
	CHECK_EQ_INT(cs_store_erase(&r, S, T, "keep2", true, &err), CS_OK);
	CHECK_EQ_UINT(fx_version(S, T, "keep2"), 0);
	CHECK_EQ_INT(cs_store_create(&r, S, T, "keep2", NULL, &err), CS_OK);
	CHECK_EQ_UINT(r.first_version, 1);
	cs_verify_report rep = {0};
	CHECK_EQ_INT(cs_store_verify(&rep, S, &err), CS_OK);
	CHECK_EQ_UINT(rep.problems, 0);
}

/* Erasing the conversations whose ids, snapshots and index entries sort last in their
 * databases, one after another, empties those databases from the end. This once failed with
 * "delete: Invalid argument": after deleting the last entry of a database LMDB's cursor has no
 * current entry to return. */
static void test_erase_from_the_end(void)
{
	cs_store *s = vw_open_in(dir, "ends", 2);
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	const char *ids[] = {"a", "m", "z"};
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < 5; i++) {
			Convstore__V1__Event *e[] = {
			    ev_message(&A, ev_strf(&A, "%s-%d", ids[c], i), "user", "x")};
			CHECK_EQ_INT(cs_store_append(&r, s, T, ids[c], CS_ANY_VERSION, e, 1, &err),
				     CS_OK);
		}
	for (int c = 2; c >= 0; c--) {
		CHECK_EQ_INT(cs_store_erase(&r, s, T, ids[c], c == 0, &err), CS_OK);
		CHECK_EQ_UINT(fx_version(s, T, ids[c]), 0);
	}
	cs_verify_report rep = {0};
	CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
	CHECK_EQ_UINT(rep.problems, 0);
	cs_store_close(s);
}

#define SIDE_APPENDS 300

/* Appends to "ok" of a store while another conversation's erase fails. */
typedef struct side_appends {
	cs_store *s;
	Convstore__V1__Event *evs[SIDE_APPENDS];
	int failed;
	atomic_bool done;
} side_appends;

static void *append_side(void *arg)
{
	side_appends *sa = arg;
	for (int i = 0; i < SIDE_APPENDS; i++)
		sa->failed += vw_append(NULL, sa->s, T, "ok", &sa->evs[i], 1) != CS_OK;
	atomic_store(&sa->done, true);
	return NULL;
}

/*
 * Erasing a conversation whose head is damaged fails alone with CS_ECORRUPT: appends to another
 * conversation committed meanwhile (some in the same batch) all succeed. Once rebuild repairs
 * the head, the erase works.
 */
static void test_erase_damaged(void)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof p, "%s/damaged", dir);
	cs_store *s = vw_open_in(dir, "damaged", 4);
	side_appends sa = {.s = s};
	for (int i = 0; i < SIDE_APPENDS; i++)
		sa.evs[i] = ev_message(&A, NULL, "user", "side");
	bool ok = vw_append(NULL, s, T, "bad", &sa.evs[0], 1) == CS_OK &&
		  vw_append(NULL, s, T, "ok", &sa.evs[0], 1) == CS_OK;
	vw_reopen(&s, NULL, 0);
	unsigned char key[RAW_KEY_MAX];
	ok = ok && CHECK_EQ_INT(raw_flip(p, "streams", key, raw_head_key(key, T, "bad"), 20), 0);
	vw_reopen(&s, p, 4);
	sa.s = s;
	pthread_t th;
	if (!CHECK(ok) || !CHECK_EQ_INT(pthread_create(&th, NULL, append_side, &sa), 0)) {
		cs_store_close(s);
		return;
	}
	int erases = 0, not_corrupt = 0;
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	while (!atomic_load(&sa.done) || erases == 0) {
		not_corrupt += cs_store_erase(&r, s, T, "bad", false, &err) != CS_ECORRUPT;
		erases++;
	}
	pthread_join(th, NULL);
	CHECK(erases > 0);
	CHECK_EQ_INT(not_corrupt, 0);
	CHECK_EQ_INT(sa.failed, 0);
	CHECK_EQ_INT(fx_count(s, T, "ok"), 1 + SIDE_APPENDS);
	cs_rebuild_report rb = {0};
	CHECK_EQ_INT(cs_store_rebuild(&rb, s, &err), CS_OK);
	CHECK_EQ_INT(cs_store_erase(&r, s, T, "bad", false, &err), CS_OK);
	CHECK_EQ_UINT(fx_version(s, T, "bad"), 0);
	cs_store_close(s);
}

int main(void)
{
	fx_tmpdir(dir, "erase");
	snprintf(path, sizeof path, "%s/store", dir);
	S = vw_open_in(dir, "store", 4);
	CHECK_RUN(test_setup);
	CHECK_RUN(test_erase);
	CHECK_RUN(test_reads_gone);
	CHECK_RUN(test_feed);
	CHECK_RUN(test_views_forget);
	CHECK_RUN(test_others_untouched);
	CHECK_RUN(test_raw_bytes_gone);
	CHECK_RUN(test_tombstone);
	CHECK_RUN(test_purge);
	CHECK_RUN(test_erase_from_the_end);
	CHECK_RUN(test_erase_damaged);
	cs_store_close(S);
	for (int k = 0; k < 3; k++) {
		free(keep_stream[k]);
		free(keep_state[k]);
	}
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
