/*
 * test_rebuild.c - cs_store_rebuild() and cs_store_verify() on the read side's records.
 *
 * After a mixed workload (appends with tool calls, creates, updates, forks, an erase and a
 * purge, retention, two tenants, snapshots every 4 events), every LMDB database but the
 * primary ones (events, idem) is dumped byte for byte through liblmdb; rebuild must report 0
 * differences and leave every dump identical. Then, one at a time, a derived record is damaged
 * under the closed store (lmdb_raw.h):
 *
 *  - a head rewritten with wrong counts and usage but a valid CRC (a bug, not a disk error);
 *  - a head with one byte flipped (CRC), read through cs_store_head and cs_store_state too;
 *  - a snapshot with one byte flipped, and a snapshot cut to 3 bytes;
 *  - a usage rollup rewritten with one token more (valid CRC);
 *
 * and each time verify must answer CS_ECORRUPT (never crash) naming the conversation or the
 * record, rebuild must count at least one difference, verify must then be clean, and every
 * derived database must again be byte-identical to the healthy dump.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"
#include "internal.h"
#include "lmdb_raw.h"
#include "views.h"

#define T "t"

static char dir[PATH_MAX], path[PATH_MAX + 16];
static ev_arena A = EV_ARENA_INIT;
static cs_store *S;

/* ---- dumps ------------------------------------------------------------------------------- */

#define MAX_DBS 32

typedef struct db_dump {
	char name[64];
	unsigned char *buf;
	size_t len, cap, records;
} db_dump;

typedef struct dump {
	db_dump dbs[MAX_DBS];
	size_t n;
} dump;

static void dump_free(dump *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->dbs[i].buf);
	memset(d, 0, sizeof *d);
}

static void put_bytes(db_dump *d, const void *p, size_t n)
{
	if (d->len + n + 8 > d->cap) {
		size_t cap = 2 * (d->len + n + 8) + 4096;
		unsigned char *grown = realloc(d->buf, cap);
		if (!grown) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		d->buf = grown;
		d->cap = cap;
	}
	uint64_t len = n;
	memcpy(d->buf + d->len, &len, 8);
	memcpy(d->buf + d->len + 8, p, n);
	d->len += 8 + n;
}

static int dump_record(const char *db, const MDB_val *k, const MDB_val *v, void *arg)
{
	dump *d = arg;
	if (!strcmp(db, "events") || !strcmp(db, "idem"))
		return 0;
	if (d->n == 0 || strcmp(d->dbs[d->n - 1].name, db) != 0) {
		if (d->n == MAX_DBS)
			return 0;
		snprintf(d->dbs[d->n++].name, sizeof d->dbs[0].name, "%s", db);
	}
	db_dump *cur = &d->dbs[d->n - 1];
	put_bytes(cur, k->mv_data, k->mv_size);
	put_bytes(cur, v->mv_data, v->mv_size);
	cur->records++;
	return 0;
}

/* Dump the derived databases of the store (closing it first, reopening after). */
static bool take_dump(dump *out)
{
	vw_reopen(&S, NULL, 0);
	memset(out, 0, sizeof *out);
	int rc = raw_walk_all(path, dump_record, out);
	vw_reopen(&S, path, 4);
	return rc == 0;
}

/* Whether two dumps are identical; names the first database that is not. */
static bool same_dump(const dump *got, const dump *want)
{
	bool ok = got->n == want->n;
	for (size_t i = 0; i < want->n; i++) {
		const db_dump *w = &want->dbs[i];
		const db_dump *g = NULL;
		for (size_t j = 0; j < got->n; j++)
			if (!strcmp(got->dbs[j].name, w->name))
				g = &got->dbs[j];
		if (!g || g->len != w->len || memcmp(g->buf, w->buf, w->len) != 0) {
			fprintf(stderr, "  database %s differs: %zu records, want %zu\n", w->name,
				g ? g->records : 0, w->records);
			ok = false;
		}
	}
	return ok;
}

/* ---- the workload ------------------------------------------------------------------------ */

static bool add(const char *tenant, const char *conv, Convstore__V1__Event *e)
{
	return vw_append(NULL, S, tenant, conv, &e, 1) == CS_OK;
}

static Convstore__V1__Event *resp(const char *call, double cost)
{
	Convstore__V1__Event *e = ev_model_response(&A, NULL, call ? "gpt-4o" : "mini", "x");
	ev_set_usage(&A, e, 3, 4, 1, 0, cost);
	if (call)
		ev_add_tool_call(&A, e, call, "fn", "{\"a\":1}");
	return e;
}

static bool workload(void)
{
	bool ok = true;
	for (int c = 1; c <= 5 && ok; c++) {
		const char *conv = ev_strf(&A, "a%d", c);
		for (int i = 0; i < 3 + 2 * c && ok; i++) {
			const char *call = ev_strf(&A, "k%d", i);
			ok =
			    add(T, conv, ev_message(&A, NULL, "user", "q")) &&
			    add(T, conv, resp(call, 0.1 * c)) &&
			    (i % 3 == 2 || add(T, conv, ev_tool_result(&A, NULL, call, "fn", "r")));
		}
	}
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	ok = ok && add("t2", "a1", resp(NULL, 2.0)) && add("t2", "a1", resp(NULL, 0.3));
	ok = ok &&
	     !cs_store_create(&r, S, T, "c1", vw_created(&A, "T", VW_KV("k", "v"), NULL), &err);
	ok = ok && !cs_store_update(
		       &r, S, T, "c1", CS_ANY_VERSION,
		       vw_updated(&A, "T2", "archived", VW_KV("k", "", "j", "w"), NULL), &err);
	ok = ok && !cs_store_fork(&r, S, T, "a1", 3, "f1", vw_forked(&A, "F", NULL), &err);
	ok = ok && add(T, "f1", resp(NULL, 0.7)) && add(T, "f1", ev_message(&A, NULL, "user", "f"));
	ok = ok && !cs_store_erase(&r, S, T, "a5", false, &err);
	ok = ok && !cs_store_erase(&r, S, T, "a4", true, &err);
	ok = ok && !cs_store_create(&r, S, T, "r1",
				    vw_created(&A, NULL, NULL, vw_retention(&A, 5, 0)), &err);
	for (int i = 0; i < 12 && ok; i++)
		ok = add(T, "r1", i % 2 ? resp(NULL, 0.01) : ev_message(&A, NULL, "user", "r"));
	uint64_t removed;
	ok = ok && !cs_store_retention_sweep(&removed, S, 0, &err);
	if (!ok)
		fprintf(stderr, "  workload: %s\n", err.msg);
	return ok;
}

/* ---- cases ------------------------------------------------------------------------------- */

static dump healthy;

static void test_rebuild_healthy(void)
{
	if (!CHECK(workload()))
		return;
	cs_verify_report rep = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_verify(&rep, S, &err), CS_OK);
	CHECK_EQ_UINT(rep.problems, 0);
	if (rep.problems)
		fprintf(stderr, "  verify: %s\n", err.msg);
	CHECK(take_dump(&healthy));
	const char *expected[] = {"forks", "list",    "meta",  "retain",
				  "snaps", "streams", "tombs", "usage"};
	for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
		bool found = false;
		for (size_t j = 0; j < healthy.n; j++)
			found |=
			    !strcmp(healthy.dbs[j].name, expected[i]) && healthy.dbs[j].records > 0;
		if (!CHECK(found))
			fprintf(stderr, "  no records in database %s\n", expected[i]);
	}

	cs_rebuild_report rb = {0};
	CHECK_EQ_INT(cs_store_rebuild(&rb, S, &err), CS_OK);
	CHECK_EQ_UINT(rb.differences, 0);
	CHECK_EQ_UINT(rb.conversations, 7); /* a1 a2 a3 c1 f1 r1, and t2's a1 */
	CHECK(rb.events > 0);
	dump after;
	CHECK(take_dump(&after));
	CHECK(same_dump(&after, &healthy));
	dump_free(&after);
	/* a second rebuild is as quiet */
	CHECK_EQ_INT(cs_store_rebuild(&rb, S, &err), CS_OK);
	CHECK_EQ_UINT(rb.differences, 0);
}

/* The record damaged last, to put back when rebuild did not repair it (so that one failure
 * does not spill into the next case). */
static struct {
	char db[16];
	void *key, *val;
	size_t key_len, val_len;
} saved;

static void save_original(const char *db, const void *key, size_t key_len, const void *val,
			  size_t val_len)
{
	free(saved.key);
	free(saved.val);
	snprintf(saved.db, sizeof saved.db, "%s", db);
	saved.key = malloc(key_len);
	saved.val = malloc(val_len);
	if (!saved.key || !saved.val)
		exit(1);
	memcpy(saved.key, key, key_len);
	memcpy(saved.val, val, val_len);
	saved.key_len = key_len;
	saved.val_len = val_len;
}

static void restore_original(void)
{
	vw_reopen(&S, NULL, 0);
	if (raw_put(path, saved.db, false, saved.key, saved.key_len, saved.val, saved.val_len))
		fprintf(stderr, "  could not put the original record back\n");
	vw_reopen(&S, path, 4);
}

/* Verify finds the damage (naming @name), rebuild repairs it, and the dump is healthy again. */
static void detect_and_repair(const char *what, const char *name)
{
	cs_verify_report rep = {0};
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_verify(&rep, S, &err);
	if (!CHECK_EQ_INT(rc, CS_ECORRUPT))
		fprintf(stderr, "  %s: verify did not see it\n", what);
	CHECK(rep.problems >= 1);
	CHECK_EQ_INT(err.code, rc);
	if (!CHECK_STR_CONTAINS(err.msg, name))
		fprintf(stderr, "  %s: the message does not name %s\n", what, name);
	cs_rebuild_report rb = {0};
	cs_error rerr = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(cs_store_rebuild(&rb, S, &rerr), CS_OK))
		fprintf(stderr, "  %s: rebuild: %s\n", what, rerr.msg);
	if (!CHECK(rb.differences >= 1))
		fprintf(stderr, "  %s: rebuild counted no difference\n", what);
	CHECK_EQ_INT(cs_store_verify(&rep, S, &err), CS_OK);
	CHECK_EQ_UINT(rep.problems, 0);
	dump after;
	CHECK(take_dump(&after));
	if (!CHECK(same_dump(&after, &healthy))) {
		fprintf(stderr, "  %s: not repaired byte for byte\n", what);
		restore_original();
	}
	dump_free(&after);
}

/* Rewrite the record under @key in @db with @edit applied to its decoded message. */
typedef void (*edit_fn)(ProtobufCMessage *msg);

static bool forge(const char *db, const void *key, size_t key_len,
		  const ProtobufCMessageDescriptor *desc, edit_fn edit)
{
	vw_reopen(&S, NULL, 0);
	void *val = NULL;
	size_t len = 0;
	ProtobufCMessage *msg = NULL;
	unsigned char *rec = NULL;
	size_t rec_len = 0;
	cs_error err = CS_ERROR_INIT;
	bool ok = raw_get(path, db, key, key_len, &val, &len) == 0 &&
		  cs_record_unpack(&msg, desc, val, len, 1u << 24, "forge", &err) == CS_OK;
	if (ok) {
		save_original(db, key, key_len, val, len);
		edit(msg);
		ok = cs_record_pack(&rec, &rec_len, msg, &err) == CS_OK &&
		     raw_put(path, db, false, key, key_len, rec, rec_len) == 0;
	}
	if (!ok)
		fprintf(stderr, "  forge in %s failed: %s\n", db, err.msg);
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
	free(rec);
	free(val);
	vw_reopen(&S, path, 4);
	return ok;
}

/* Overwrite the value under @key in @db with its first @keep bytes, byte @flip xor 0x20. */
static bool damage(const char *db, const void *key, size_t key_len, size_t flip, size_t keep)
{
	vw_reopen(&S, NULL, 0);
	void *val = NULL;
	size_t len = 0;
	bool ok = raw_get(path, db, key, key_len, &val, &len) == 0 && flip < len;
	if (ok) {
		save_original(db, key, key_len, val, len);
		((unsigned char *)val)[flip] ^= 0x20;
		ok = raw_put(path, db, false, key, key_len, val, keep < len ? keep : len) == 0;
	}
	free(val);
	vw_reopen(&S, path, 4);
	return ok;
}

static void head_key(cs_key *k, const char *tenant, const char *conv)
{
	cs_key stream;
	cs_key_stream(&stream, tenant, conv);
	cs_key_head(k, &stream);
}

static void inflate_head(ProtobufCMessage *msg)
{
	Convstore__V1__Head *h = (Convstore__V1__Head *)msg;
	if (h->counts)
		h->counts->events += 5;
	if (h->usage)
		h->usage->cost_nanos += 1000;
}

static void test_forged_head(void)
{
	cs_key k;
	head_key(&k, T, "a2");
	if (!CHECK(forge("streams", k.b, k.len, &convstore__v1__head__descriptor, inflate_head)))
		return;
	detect_and_repair("forged head", "a2");
}

static void test_flipped_head(void)
{
	cs_key k;
	head_key(&k, T, "a3");
	if (!CHECK(damage("streams", k.b, k.len, 20, SIZE_MAX)))
		return;
	Convstore__V1__Head *h = NULL;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_head(&h, S, T, "a3", &err), CS_ECORRUPT);
	Convstore__V1__ConversationState *st = NULL;
	CHECK_EQ_INT(cs_store_state(&st, S, T, "a3", 0, &err), CS_ECORRUPT);
	vw_free(st);
	detect_and_repair("flipped head", "a3");
}

typedef struct first_key {
	const unsigned char *prefix;
	size_t prefix_len;
	void *key;
	size_t key_len;
} first_key;

static int find_prefixed(const char *db, const MDB_val *k, const MDB_val *v, void *arg)
{
	(void)v;
	first_key *f = arg;
	if (f->key || !f->prefix || strcmp(db, f->prefix_len ? "snaps" : "usage") != 0)
		return 0;
	if (k->mv_size < f->prefix_len || memcmp(k->mv_data, f->prefix, f->prefix_len) != 0)
		return 0;
	f->key = malloc(k->mv_size);
	if (f->key) {
		memcpy(f->key, k->mv_data, k->mv_size);
		f->key_len = k->mv_size;
	}
	return 0;
}

/* The first key of "snaps" under @conv's stream key, or (conv NULL) the first of "usage". */
static first_key find_key(const char *conv)
{
	cs_key stream;
	cs_key_stream(&stream, T, conv ? conv : "");
	first_key f = {conv ? stream.b : (const unsigned char *)"", conv ? stream.len : 0, NULL, 0};
	vw_reopen(&S, NULL, 0);
	raw_walk_all(path, find_prefixed, &f);
	vw_reopen(&S, path, 4);
	return f;
}

static void test_flipped_snapshot(void)
{
	first_key f = find_key("a2");
	if (!CHECK(f.key))
		return;
	CHECK(damage("snaps", f.key, f.key_len, 14, SIZE_MAX));
	detect_and_repair("flipped snapshot", "a2");
	CHECK(damage("snaps", f.key, f.key_len, 0, 3));
	detect_and_repair("truncated snapshot", "a2");
	free(f.key);
}

static void one_more_token(ProtobufCMessage *msg)
{
	((Convstore__V1__UsageCounter *)msg)->input_tokens++;
}

static void test_forged_usage(void)
{
	first_key f = find_key(NULL);
	if (!CHECK(f.key))
		return;
	if (CHECK(forge("usage", f.key, f.key_len, &convstore__v1__usage_counter__descriptor,
			one_more_token)))
		detect_and_repair("forged usage", "usage");
	free(f.key);
}

static void long_parent(ProtobufCMessage *msg)
{
	Convstore__V1__ParentRef *parent = malloc(sizeof *parent);
	char *id = malloc(501);
	if (!parent || !id)
		exit(1);
	convstore__v1__parent_ref__init(parent);
	memset(id, 'p', 500);
	id[500] = '\0';
	parent->id = id;
	parent->version = 1;
	Convstore__V1__Head *h = (Convstore__V1__Head *)msg;
	vw_free(h->parent);
	h->parent = parent; /* freed with the head */
}

/* A head with a valid CRC whose parent id is 500 bytes (no id is longer than 128): reads
 * refuse it as damaged (once, a key was built from it without a length check). */
static void test_long_parent_id(void)
{
	cs_key k;
	head_key(&k, T, "a2");
	if (!CHECK(forge("streams", k.b, k.len, &convstore__v1__head__descriptor, long_parent)))
		return;
	Convstore__V1__ConversationState *st = NULL;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_state(&st, S, T, "a2", 1, &err), CS_ECORRUPT);
	vw_free(st);
	detect_and_repair("head with a long parent id", "a2");
}

/* ---- stores of their own ----------------------------------------------------------------- */

/* Verify @s: its code, with the problems in *problems and the message in @err. */
static int verify_of(cs_store *s, uint64_t *problems, cs_error *err)
{
	cs_verify_report rep = {0};
	*err = (cs_error)CS_ERROR_INIT;
	int rc = cs_store_verify(&rep, s, err);
	*problems = rep.problems;
	return rc;
}

/* Rebuild @s: the differences found, UINT64_MAX (and a failed check) when it fails. */
static uint64_t rebuild_of(cs_store *s)
{
	cs_rebuild_report rb = {0};
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(cs_store_rebuild(&rb, s, &err), CS_OK)) {
		fprintf(stderr, "  rebuild: %s\n", err.msg);
		return UINT64_MAX;
	}
	return rb.differences;
}

/* Verify @s finds nothing. */
static void verify_clean(cs_store *s)
{
	uint64_t problems;
	cs_error err;
	if (!CHECK_EQ_INT(verify_of(s, &problems, &err), CS_OK) || !CHECK_EQ_UINT(problems, 0))
		fprintf(stderr, "  verify: %s\n", err.msg);
}

static bool messages_to(cs_store *s, const char *conv, int n)
{
	bool ok = true;
	for (int i = 0; ok && i < n; i++) {
		Convstore__V1__Event *e =
		    ev_message(&A, NULL, "user", ev_strf(&A, "%s%d", conv, i));
		ok = vw_append(NULL, s, T, conv, &e, 1) == CS_OK;
	}
	return ok;
}

/*
 * A fork of a truncated fork: X (1..4); Y = fork(X@4) with max_events 1 and two own events,
 * swept; Z = fork(Y@2), whose versions 1, 2 are X's. Verify is clean, and rebuild finds no
 * difference and leaves Z as it was (version 3, one message; it once rebuilt Z from Y's
 * retention snapshot, at version 6).
 */
static void test_fork_of_truncated_fork(void)
{
	cs_store *s = vw_open_in(dir, "forkfork", 4);
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__ConversationForked *f = vw_forked(&A, NULL, NULL);
	f->retention = vw_retention(&A, 1, 0);
	uint64_t removed = 0;
	bool ok = CHECK_EQ_INT(cs_store_create(NULL, s, T, "X", NULL, &err), CS_OK) &&
		  messages_to(s, "X", 3) &&
		  CHECK_EQ_INT(cs_store_fork(NULL, s, T, "X", 4, "Y", f, &err), CS_OK) &&
		  messages_to(s, "Y", 2) &&
		  CHECK_EQ_INT(cs_store_retention_sweep(&removed, s, 0, &err), CS_OK) &&
		  CHECK_EQ_UINT(removed, 2) &&
		  CHECK_EQ_INT(cs_store_fork(NULL, s, T, "Y", 2, "Z", NULL, &err), CS_OK);
	size_t lb = 0, la = 0;
	uint8_t *before = ok ? vw_state_bytes(s, T, "Z", 0, true, &lb) : NULL;
	if (CHECK(before)) {
		verify_clean(s);
		CHECK_EQ_UINT(rebuild_of(s), 0);
		verify_clean(s);
		CHECK_EQ_UINT(fx_version(s, T, "Z"), 3);
		int rc;
		Convstore__V1__ConversationState *st = vw_state(s, T, "Z", 0, &rc);
		if (CHECK(st)) {
			CHECK_EQ_UINT(st->version, 3);
			CHECK_EQ_UINT(st->n_messages, 1);
		}
		vw_free(st);
		uint8_t *after = vw_state_bytes(s, T, "Z", 0, true, &la);
		if (CHECK(after))
			CHECK_MEM_EQ(after, la, before, lb);
		free(after);
	}
	free(before);
	cs_store_close(s);
}

/* Snapshots are a cache: a store written with snapshot_every 4 and reopened with 3 is healthy;
 * rebuild rewrites them at the new cadence, and verify is clean after it too. */
static void test_other_snapshot_cadence(void)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof p, "%s/cadence", dir);
	cs_store *s = vw_open_in(dir, "cadence", 4);
	if (CHECK(messages_to(s, "X", 10))) {
		verify_clean(s);
		vw_reopen(&s, p, 3);
		verify_clean(s);
		CHECK(rebuild_of(s) != UINT64_MAX);
		verify_clean(s);
		CHECK_EQ_UINT(fx_version(s, T, "X"), 10);
	}
	cs_store_close(s);
}

/* One damaged list entry (X's, now naming "x") is one problem, named, and one difference. */
static void test_one_list_entry(void)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof p, "%s/listentry", dir);
	cs_store *s = vw_open_in(dir, "listentry", 0);
	bool ok = CHECK(messages_to(s, "X", 1));
	vw_reopen(&s, NULL, 0);
	void *key = NULL;
	size_t key_len = 0;
	ok = ok && CHECK_EQ_INT(raw_find_value(p, "list", "X", 1, &key, &key_len), 0) &&
	     CHECK_EQ_INT(raw_flip(p, "list", key, key_len, 0), 0);
	free(key);
	vw_reopen(&s, p, 0);
	uint64_t problems = 0;
	cs_error err;
	if (ok) {
		CHECK_EQ_INT(verify_of(s, &problems, &err), CS_ECORRUPT);
		CHECK_EQ_UINT(problems, 1);
		CHECK_STR_CONTAINS(err.msg, "\"X\"");
		CHECK_STR_CONTAINS(err.msg, "tenant \"t\"");
		CHECK_EQ_UINT(rebuild_of(s), 1);
		verify_clean(s);
	}
	cs_store_close(s);
}

int main(void)
{
	fx_tmpdir(dir, "rebuild");
	snprintf(path, sizeof path, "%s/store", dir);
	S = vw_open_in(dir, "store", 4);
	CHECK_RUN(test_rebuild_healthy);
	CHECK_RUN(test_forged_head);
	CHECK_RUN(test_flipped_head);
	CHECK_RUN(test_flipped_snapshot);
	CHECK_RUN(test_forged_usage);
	CHECK_RUN(test_long_parent_id);
	CHECK_RUN(test_fork_of_truncated_fork);
	CHECK_RUN(test_other_snapshot_cadence);
	CHECK_RUN(test_one_list_entry);
	cs_store_close(S);
	dump_free(&healthy);
	free(saved.key);
	free(saved.val);
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
