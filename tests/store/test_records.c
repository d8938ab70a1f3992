/*
 * test_records.c - proves that stored records are checked on every read and by verify:
 *
 *  - big compressible events are stored deflated (their LMDB value is much smaller than the
 *    packed event) and read back byte-identical; small ones are stored as they are;
 *  - one flipped byte in a deflated record, one in a plain record, the first byte of a record, a
 *    value truncated to half, and a value shorter than any header (each forged with liblmdb in
 *    the `events` database of the closed store) make cs_store_read_stream() and
 *    cs_store_read_feed() over that event fail with CS_ECORRUPT naming its position, while every
 *    other event still reads back identical, and cs_store_verify() reports problems >= 1 with
 *    first_bad_position == that position;
 *  - a log record that is gone, an index entry that is gone (a read across the gap must not
 *    return versions 3, 5, 6 as if nothing were missing), and a head ahead of both are found by
 *    verify;
 *  - with the original bytes put back, verify finds no problem again (the check is about the
 *    bytes, nothing else was touched);
 *  - a decompression bomb (8 MiB of zeros deflated to a few KiB, with a valid CRC) is refused
 *    by a reader capped at 1 MiB before anything is inflated, and one that lies about its
 *    inflated length stops at that length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"
#include "internal.h"
#include "lmdb_raw.h"

#define T	 "t"
#define CONV	 "rec"
#define N_EVENTS 8
#define FILLER	 40

static char dir[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;

/* What was stored, as read back from the intact store. */
static uint64_t pos[N_EVENTS + 1]; /* by version */
static uint8_t *packed[N_EVENTS + 1];
static size_t packed_len[N_EVENTS + 1];
static bool big[N_EVENTS + 1];

static cs_store *open_store(void)
{
	cs_store *s = NULL;
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(fx_open(&s, dir, 0, 0, false, &err), CS_OK)) {
		fprintf(stderr, "  open: %s\n", err.msg);
		return NULL;
	}
	return s;
}

/* Read one event by version and compare it with what the intact store held. */
static bool reads_intact(cs_store *s, uint64_t version)
{
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_read_stream(&p, s, T, CONV, version, 1, CS_FORWARD, &err);
	bool ok = CHECK_EQ_INT(rc, CS_OK) && CHECK_EQ_UINT(p.n, 1);
	if (ok) {
		size_t len;
		uint8_t *b = ev_pack(&A, p.events[0], &len);
		ok = CHECK_MEM_EQ(b, len, packed[version], packed_len[version]);
	}
	if (!ok)
		fprintf(stderr, "  version %llu: rc %d \"%s\"\n", (unsigned long long)version, rc,
			err.msg);
	cs_event_page_deinit(&p);
	return ok;
}

/* The raw `events` record of version @v: its key (8 bytes) in @key, a malloc'd copy of its value
 * in *val. False (a failed check) when it cannot be read. */
static bool raw_record(uint64_t v, unsigned char *key, void **val, size_t *len)
{
	raw_position_key(key, pos[v]);
	return CHECK_EQ_INT(raw_get(dir, "events", key, 8, val, len), 0);
}

/* verify must find the forgery: CS_ECORRUPT and at least one problem, the first of them at
 * @bad_position unless that is 0 (not known). Returns the error, for checks on its message. */
static cs_error verify_finds_corruption(cs_store *s, uint64_t bad_position)
{
	cs_verify_report rep = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_ECORRUPT);
	CHECK_EQ_INT(err.code, CS_ECORRUPT);
	CHECK(rep.problems >= 1);
	if (bad_position)
		CHECK_EQ_UINT(rep.first_bad_position, bad_position);
	return err;
}

/* Once the forged bytes are put back: the store opens, verify finds no problem and version @v
 * reads back as it was. */
static void intact_again(uint64_t v)
{
	cs_store *s = open_store();
	if (!s)
		return;
	cs_verify_report rep = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
	CHECK_EQ_UINT(rep.problems, 0);
	reads_intact(s, v);
	cs_store_close(s);
}

static void test_setup_and_roundtrip(void)
{
	cs_store *s = open_store();
	if (!s)
		return;
	cs_error err = CS_ERROR_INIT;
	cs_append_result r;

	/* filler, so that positions are not small numbers that any message might contain */
	Convstore__V1__Event *fill[FILLER];
	for (int i = 0; i < FILLER; i++)
		fill[i] = ev_message(&A, NULL, "user", "filler");
	CHECK_EQ_INT(cs_store_append(&r, s, T, "filler", CS_ANY_VERSION, fill, FILLER, &err),
		     CS_OK);

	Convstore__V1__Event *evs[N_EVENTS];
	for (int i = 0; i < N_EVENTS; i++) {
		big[i + 1] = i % 2 == 1;
		evs[i] = big[i + 1] ? ev_message(&A, NULL, "assistant",
						 ev_prose(&A, 6000 + 3000 * (size_t)i))
				    : ev_message(&A, NULL, "user", ev_strf(&A, "short %d", i));
	}
	CHECK_EQ_INT(cs_store_append(&r, s, T, CONV, 0, evs, N_EVENTS, &err), CS_OK);

	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_stream(&p, s, T, CONV, 1, 100, CS_FORWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, N_EVENTS)) {
		for (size_t v = 1; v <= N_EVENTS; v++) {
			const Convstore__V1__Event *e = p.events[v - 1];
			pos[v] = e->position;
			packed[v] = ev_pack(&A, e, &packed_len[v]);
			CHECK(ev_same_as_sent(&A, e, evs[v - 1], true));
		}
	}
	cs_event_page_deinit(&p);

	cs_verify_report rep = {0};
	CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
	CHECK_EQ_UINT(rep.records, FILLER + N_EVENTS);
	CHECK_EQ_UINT(rep.problems, 0);
	CHECK_EQ_UINT(rep.first_bad_position, 0);
	cs_store_close(s);

	/* big compressible events are deflated on disk, small ones are not */
	for (size_t v = 1; v <= N_EVENTS; v++) {
		unsigned char key[8];
		void *val;
		size_t len;
		if (!raw_record(v, key, &val, &len))
			continue;
		if (big[v]) {
			if (!CHECK(len < packed_len[v] / 2))
				fprintf(stderr,
					"  big event %zu: %zu stored bytes for %zu packed\n", v,
					len, packed_len[v]);
		} else {
			CHECK(len >= packed_len[v]);
		}
		free(val);
	}
}

/* Forge the record of version @v, then check what every read and verify say about it. */
typedef void (*forge_fn)(unsigned char *val, size_t *len);

static void flip_middle(unsigned char *val, size_t *len)
{
	val[*len / 2] ^= 0x20;
}

static void flip_first(unsigned char *val, size_t *len)
{
	(void)len;
	val[0] ^= 0x01;
}

static void truncate_half(unsigned char *val, size_t *len)
{
	(void)val;
	*len /= 2;
}

static void truncate_tiny(unsigned char *val, size_t *len)
{
	(void)val;
	*len = 3;
}

static void corrupted(const char *what, uint64_t v, forge_fn forge)
{
	unsigned char key[8];
	void *orig;
	size_t orig_len;
	if (!raw_record(v, key, &orig, &orig_len))
		return;
	unsigned char *bad = ev_alloc(&A, orig_len);
	memcpy(bad, orig, orig_len);
	size_t bad_len = orig_len;
	forge(bad, &bad_len);
	CHECK_EQ_INT(raw_put(dir, "events", false, key, 8, bad, bad_len), 0);

	int failed_before = check_failed;
	cs_store *s = open_store();
	if (!s) {
		free(orig);
		return;
	}
	char *pos_text = ev_strf(&A, "%llu", (unsigned long long)pos[v]);
	cs_error err = CS_ERROR_INIT;
	cs_event_page p = {0};

	/* the event itself, by stream and by feed */
	CHECK_EQ_INT(cs_store_read_stream(&p, s, T, CONV, v, 1, CS_FORWARD, &err), CS_ECORRUPT);
	CHECK_EQ_INT(err.code, CS_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, pos_text);
	cs_event_page_deinit(&p);
	err = (cs_error)CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_read_stream(&p, s, T, CONV, 1, 100, CS_FORWARD, &err), CS_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, pos_text);
	cs_event_page_deinit(&p);
	err = (cs_error)CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_read_feed(&p, s, NULL, pos[v] - 1, 1, &err), CS_ECORRUPT);
	CHECK_EQ_INT(err.code, CS_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, pos_text);
	cs_event_page_deinit(&p);
	err = (cs_error)CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_read_feed(&p, s, T, pos[1] - 1, 100, &err), CS_ECORRUPT);
	cs_event_page_deinit(&p);

	/* everything else reads fine */
	for (uint64_t w = 1; w <= N_EVENTS; w++)
		if (w != v)
			reads_intact(s, w);
	CHECK_EQ_INT(cs_store_read_feed(&p, s, NULL, pos[v], 100, &err), CS_OK);
	CHECK_EQ_UINT(p.n, N_EVENTS - v);
	cs_event_page_deinit(&p);
	CHECK_EQ_INT(cs_store_read_feed(&p, s, NULL, 0, FILLER, &err), CS_OK);
	CHECK_EQ_UINT(p.n, FILLER);
	cs_event_page_deinit(&p);
	CHECK_EQ_UINT(fx_version(s, T, CONV), N_EVENTS);

	err = verify_finds_corruption(s, pos[v]);
	CHECK_STR_CONTAINS(err.msg, pos_text);
	cs_store_close(s);

	/* put the original bytes back: intact again */
	CHECK_EQ_INT(raw_put(dir, "events", false, key, 8, orig, orig_len), 0);
	free(orig);
	intact_again(v);
	if (check_failed != failed_before)
		fprintf(stderr, "  case: %s at version %llu (position %s)\n", what,
			(unsigned long long)v, pos_text);
}

static void test_flipped_deflated(void)
{
	CHECK(big[2]);
	corrupted("flipped byte in a deflated record", 2, flip_middle);
}

static void test_flipped_plain(void)
{
	CHECK(!big[3]);
	corrupted("flipped byte in a plain record", 3, flip_middle);
}

static void test_flipped_first_byte(void)
{
	corrupted("flipped first byte", 5, flip_first);
}

static void test_truncated(void)
{
	corrupted("deflated record truncated to half", 4, truncate_half);
	corrupted("plain record truncated to half", 1, truncate_half);
	corrupted("record of 3 bytes", 8, truncate_tiny);
}

/* The log record of an indexed event is gone: reads of it and verify must say so. */
static void test_missing_record(void)
{
	uint64_t v = 6;
	unsigned char key[8];
	void *orig;
	size_t orig_len;
	if (!raw_record(v, key, &orig, &orig_len))
		return;
	CHECK_EQ_INT(raw_del(dir, "events", key, 8), 0);
	cs_store *s = open_store();
	if (s) {
		cs_error err = CS_ERROR_INIT;
		cs_event_page p = {0};
		CHECK_EQ_INT(cs_store_read_stream(&p, s, T, CONV, v, 1, CS_FORWARD, &err),
			     CS_ECORRUPT);
		cs_event_page_deinit(&p);
		reads_intact(s, v - 1);
		reads_intact(s, v + 1);
		verify_finds_corruption(s, pos[v]);
		cs_store_close(s);
	}
	CHECK_EQ_INT(raw_put(dir, "events", false, key, 8, orig, orig_len), 0);
	free(orig);
	intact_again(v);
}

/* The per-conversation index lost the entry of one version (its value is the event's 8-byte
 * position): verify must notice that the log and the index disagree. */
static void test_missing_index_entry(void)
{
	uint64_t v = 4;
	unsigned char val[8];
	raw_position_key(val, pos[v]);
	void *key;
	size_t key_len;
	if (!CHECK_EQ_INT(raw_find_value(dir, "streams", val, 8, &key, &key_len), 0)) {
		fprintf(stderr, "  no index entry holds position %llu\n",
			(unsigned long long)pos[v]);
		return;
	}
	CHECK_EQ_INT(raw_del(dir, "streams", key, key_len), 0);
	cs_store *s = open_store();
	if (s) {
		verify_finds_corruption(s, 0);
		/* a read across the gap must not hand out versions 3, 5, 6 as if nothing were
		 * missing: the stream's versions are gapless by definition, so a gap is corruption
		 */
		cs_event_page p = {0};
		cs_error err = CS_ERROR_INIT;
		int rc = cs_store_read_stream(&p, s, T, CONV, v - 1, 3, CS_FORWARD, &err);
		if (!CHECK_EQ_INT(rc, CS_ECORRUPT)) {
			fprintf(stderr, "  read from version %llu: %zu events, versions",
				(unsigned long long)(v - 1), p.n);
			for (size_t i = 0; i < p.n; i++)
				fprintf(stderr, " %llu", (unsigned long long)p.events[i]->version);
			fprintf(stderr, "\n");
		}
		cs_event_page_deinit(&p);
		cs_store_close(s);
	}
	CHECK_EQ_INT(raw_put(dir, "streams", false, key, key_len, val, 8), 0);
	free(key);
	intact_again(v);
}

/* The last event vanished from both the log and the index, consistently: only the head still
 * says version 8. verify must compare heads with the index too. */
static void test_head_ahead_of_index(void)
{
	uint64_t v = N_EVENTS;
	unsigned char pkey[8];
	void *rec, *ikey;
	size_t rec_len, ikey_len;
	if (!raw_record(v, pkey, &rec, &rec_len))
		return;
	if (!CHECK_EQ_INT(raw_find_value(dir, "streams", pkey, 8, &ikey, &ikey_len), 0)) {
		free(rec);
		return;
	}
	CHECK_EQ_INT(raw_del(dir, "events", pkey, 8), 0);
	CHECK_EQ_INT(raw_del(dir, "streams", ikey, ikey_len), 0);
	cs_store *s = open_store();
	if (s) {
		verify_finds_corruption(s, 0);
		cs_store_close(s);
	}
	CHECK_EQ_INT(raw_put(dir, "events", false, pkey, 8, rec, rec_len), 0);
	CHECK_EQ_INT(raw_put(dir, "streams", false, ikey, ikey_len, pkey, 8), 0);
	free(rec);
	free(ikey);
	intact_again(v);
}

/* The head is gone while the conversation's events and index remain: verify must notice, and
 * name the position of the conversation's last event. */
static void test_missing_head(void)
{
	unsigned char key[RAW_KEY_MAX];
	size_t key_len = raw_head_key(key, T, CONV);
	void *orig;
	size_t orig_len;
	if (!CHECK_EQ_INT(raw_get(dir, "streams", key, key_len, &orig, &orig_len), 0))
		return;
	CHECK_EQ_INT(raw_del(dir, "streams", key, key_len), 0);
	cs_store *s = open_store();
	if (s) {
		cs_error err = verify_finds_corruption(s, pos[N_EVENTS]);
		CHECK_STR_CONTAINS(err.msg, "have no head");
		cs_store_close(s);
	}
	CHECK_EQ_INT(raw_put(dir, "streams", false, key, key_len, orig, orig_len), 0);
	free(orig);
	intact_again(1);
}

/* meta's last_position fell behind the log: the next append would collide with a stored
 * position, so verify must report it. */
static void test_meta_behind_log(void)
{
	const char *k = "last_position";
	void *orig;
	size_t orig_len;
	if (!CHECK_EQ_INT(raw_get(dir, "meta", k, strlen(k), &orig, &orig_len), 0))
		return;
	unsigned char behind[8];
	raw_position_key(behind, pos[N_EVENTS] - 1);
	CHECK_EQ_INT(raw_put(dir, "meta", false, k, strlen(k), behind, 8), 0);
	cs_store *s = open_store();
	if (s) {
		cs_error err = verify_finds_corruption(s, pos[N_EVENTS]);
		CHECK_STR_CONTAINS(err.msg, "last_position");
		cs_store_close(s);
	}
	CHECK_EQ_INT(raw_put(dir, "meta", false, k, strlen(k), orig, orig_len), 0);
	free(orig);
	intact_again(1);
}

/* An id index entry that names the wrong event: verify must report it. */
static void test_bad_id_entry(void)
{
	unsigned char key[RAW_KEY_MAX];
	size_t n = raw_head_key(key, T, CONV) - 8;
	memcpy(key + n, "no-such-id", 10);
	unsigned char version[8];
	raw_position_key(version, 2); /* a big-endian version, like a real entry */
	CHECK_EQ_INT(raw_put(dir, "idem", false, key, n + 10, version, 8), 0);
	cs_store *s = open_store();
	if (s) {
		cs_error err = verify_finds_corruption(s, pos[2]);
		CHECK_STR_CONTAINS(err.msg, "no-such-id");
		cs_store_close(s);
	}
	CHECK_EQ_INT(raw_del(dir, "idem", key, n + 10), 0);
	intact_again(2);
}

/* A record of @raw_len zeros, deflated, whose header claims @claimed inflated bytes. */
static unsigned char *bomb(size_t raw_len, uint32_t claimed, size_t *len)
{
	unsigned char *zeros = calloc(1, raw_len);
	uLong bound = compressBound((uLong)raw_len);
	unsigned char *rec = malloc(CS_RECORD_HEADER + bound);
	z_stream z = {0};
	*len = 0;
	if (zeros && rec && deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK) {
		z.next_in = zeros;
		z.avail_in = (uInt)raw_len;
		z.next_out = rec + CS_RECORD_HEADER;
		z.avail_out = (uInt)bound;
		if (deflate(&z, Z_FINISH) == Z_STREAM_END)
			*len = CS_RECORD_HEADER + z.total_out;
		deflateEnd(&z);
	}
	free(zeros);
	if (!*len) {
		free(rec);
		return NULL;
	}
	rec[4] = 1; /* format */
	rec[5] = 1; /* deflated */
	cs_put_be32(rec + 6, claimed);
	rec[10] = rec[11] = 0; /* no tail */
	cs_put_be32(rec, (uint32_t)crc32(0, rec + 4, (uInt)(*len - 4)));
	return rec;
}

static void test_inflate_capped(void)
{
	const size_t raw = 8u << 20, cap = 1u << 20;
	size_t len;
	unsigned char *rec = bomb(raw, (uint32_t)raw, &len);
	if (!CHECK(rec))
		return;
	CHECK(len < raw / 100); /* a bomb: over 100x */
	cs_record_view v;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_record_open(&v, rec, len, cap, "bomb", &err), CS_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "exceeds the 1048576 cap");
	CHECK(v.raw == NULL && v.raw_len == 0);
	/* the same record under a cap it fits: it is well-formed, only too big */
	if (CHECK_EQ_INT(cs_record_open(&v, rec, len, 2 * raw, "bomb", &err), CS_OK))
		CHECK_EQ_UINT(v.raw_len, raw);
	cs_record_view_deinit(&v);
	free(rec);

	/* a header that lies: inflating stops at the 1,000 bytes it claims */
	rec = bomb(raw, 1000, &len);
	if (!CHECK(rec))
		return;
	CHECK_EQ_INT(cs_record_open(&v, rec, len, cap, "liar", &err), CS_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "does not inflate to 1000 bytes");
	CHECK(v.raw == NULL);
	free(rec);
}

int main(void)
{
	fx_tmpdir(dir, "records");
	CHECK_RUN(test_inflate_capped);
	CHECK_RUN(test_setup_and_roundtrip);
	if (pos[N_EVENTS]) {
		CHECK_RUN(test_flipped_deflated);
		CHECK_RUN(test_flipped_plain);
		CHECK_RUN(test_flipped_first_byte);
		CHECK_RUN(test_truncated);
		CHECK_RUN(test_missing_record);
		CHECK_RUN(test_missing_index_entry);
		CHECK_RUN(test_head_ahead_of_index);
		CHECK_RUN(test_missing_head);
		CHECK_RUN(test_meta_behind_log);
		CHECK_RUN(test_bad_id_entry);
	}
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
