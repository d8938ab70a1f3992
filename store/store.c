/*
 * store.c - opening and closing a store, its meta records (format version, last position),
 * stats, and the small id helpers.
 *
 * A new store gets meta "format" = CS_STORE_FORMAT_VERSION in its first transaction; an
 * existing one must carry exactly that version, so a future layout change is detected at open
 * instead of being misread. Opening starts the writer thread (commit.c); closing drains it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "internal.h"

#define CS_DEFAULT_MAX_BATCH_EVENTS 65536u
/* Reads inflate at most this much: a property of the format, not of today's options, so that a
 * store reopened with a lower max_event_bytes still reads what it stored before. */
#define CS_READ_CAP (CS_MAX_EVENT_BYTES_LIMIT + (1u << 20))

int cs_meta_get_u64(MDB_txn *txn, cs_env *e, const char *name, uint64_t *out, cs_error *err)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, e->meta, &k, &v);
	*out = 0;
	if (rc == MDB_NOTFOUND)
		return CS_OK;
	if (rc)
		return cs_lmdb_error(err, rc, name);
	if (v.mv_size != 8)
		return cs_error_set(err, CS_ECORRUPT, "meta %s is %zu bytes", name, v.mv_size);
	*out = cs_get_be64(v.mv_data);
	return CS_OK;
}

int cs_meta_put_u64(MDB_txn *txn, cs_env *e, const char *name, uint64_t v, cs_error *err)
{
	unsigned char num[8];
	cs_put_be64(num, v);
	MDB_val k = {strlen(name), (void *)name}, val = {8, num};
	int rc = mdb_put(txn, e->meta, &k, &val, 0);
	return rc ? cs_lmdb_error(err, rc, name) : CS_OK;
}

/* Record the format of a new store, or check the format of an existing one. */
static int check_format(cs_env *e, cs_error *err)
{
	MDB_txn *txn;
	int rc = cs_txn_begin(&txn, e, !e->read_only, err);
	if (rc)
		return rc;
	MDB_val k = {strlen(CS_META_FORMAT), CS_META_FORMAT}, v;
	int mrc = mdb_get(txn, e->meta, &k, &v);
	if (mrc == MDB_NOTFOUND && !e->read_only) {
		unsigned char num[4];
		cs_put_be32(num, CS_STORE_FORMAT_VERSION);
		v = (MDB_val){4, num};
		mrc = mdb_put(txn, e->meta, &k, &v, 0);
		if (mrc) {
			cs_txn_abort(e, txn);
			return cs_lmdb_error(err, mrc, "write format");
		}
		return cs_txn_commit(e, txn, err);
	}
	if (mrc == MDB_NOTFOUND)
		rc = cs_error_set(err, CS_ECORRUPT, "not a convstore store: no format record");
	else if (mrc)
		rc = cs_lmdb_error(err, mrc, "read format");
	else if (v.mv_size != 4 || cs_get_be32(v.mv_data) != CS_STORE_FORMAT_VERSION)
		rc = cs_error_set(err, CS_ECORRUPT, "store has format version %u, expected %u",
				  v.mv_size == 4 ? cs_get_be32(v.mv_data) : 0,
				  CS_STORE_FORMAT_VERSION);
	cs_txn_abort(e, txn);
	return rc;
}

int cs_store_open(cs_store **out, const cs_store_options *opts, cs_error *err)
{
	*out = NULL;
	if (!opts || !opts->path || !*opts->path)
		return cs_error_set(err, CS_EINVAL, "a store needs a path");
	cs_store *s = calloc(1, sizeof(*s));
	if (!s)
		return cs_error_set(err, CS_ENOMEM, "out of memory opening a store");
	s->limits.max_event_bytes =
	    opts->max_event_bytes ? opts->max_event_bytes : CS_DEFAULT_MAX_EVENT_BYTES;
	s->limits.max_request_events =
	    opts->max_request_events ? opts->max_request_events : CS_DEFAULT_MAX_REQUEST_EVENTS;
	s->max_raw = CS_READ_CAP;
	s->snapshot_every = opts->snapshot_every ? opts->snapshot_every : CS_DEFAULT_SNAPSHOT_EVERY;
	if (s->limits.max_event_bytes > CS_MAX_EVENT_BYTES_LIMIT) {
		free(s);
		return cs_error_set(err, CS_EINVAL, "max_event_bytes %zu is over the %u limit",
				    opts->max_event_bytes, CS_MAX_EVENT_BYTES_LIMIT);
	}
	int rc = cs_env_open(&s->env, opts, err);
	if (rc) {
		free(s);
		return rc;
	}
	rc = check_format(&s->env, err);
	if (rc == CS_EMAPFULL) /* a map too small for even the format record */
		rc = err ? (err->code = CS_EFULL) : CS_EFULL;
	if (!rc && !opts->read_only)
		rc = cs_committer_start(&s->committer, s,
					opts->max_batch_events ? opts->max_batch_events
							       : CS_DEFAULT_MAX_BATCH_EVENTS,
					err);
	if (rc) {
		cs_env_close(&s->env);
		free(s);
		return rc;
	}
	*out = s;
	return CS_OK;
}

void cs_store_close(cs_store *s)
{
	if (!s)
		return;
	cs_committer_stop(&s->committer);
	cs_env_close(&s->env);
	free(s);
}

int cs_store_append(cs_append_result *out, cs_store *s, const char *tenant,
		    const char *conversation_id, int64_t expected_version,
		    Convstore__V1__Event *const *events, size_t n, cs_error *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (s->env.read_only)
		return cs_error_set(err, CS_EINVAL, "the store is open read-only");
	cs_request req;
	int rc = cs_request_prepare(&req, &s->limits, tenant, conversation_id, expected_version,
				    events, n, err);
	return rc ? rc : cs_store_submit(out, s, &req, err);
}

struct cs_append_op {
	cs_request req;
};

int cs_store_append_start(cs_append_op **out, cs_store *s, const char *tenant,
			  const char *conversation_id, int64_t expected_version,
			  Convstore__V1__Event *const *events, size_t n, void (*done)(void *ctx),
			  void *ctx, cs_error *err)
{
	*out = NULL;
	if (s->env.read_only)
		return cs_error_set(err, CS_EINVAL, "the store is open read-only");
	cs_append_op *op = calloc(1, sizeof(*op));
	if (!op)
		return cs_error_set(err, CS_ENOMEM, "out of memory for an append");
	int rc = cs_request_prepare(&op->req, &s->limits, tenant, conversation_id, expected_version,
				    events, n, err);
	if (rc) {
		free(op);
		return rc;
	}
	op->req.on_done = done;
	op->req.done_ctx = ctx;
	rc = cs_committer_submit_async(&s->committer, &op->req);
	if (rc) {
		if (err)
			*err = op->req.err;
		cs_request_deinit(&op->req);
		free(op);
		return rc;
	}
	*out = op;
	return CS_OK;
}

int cs_store_append_finish(cs_append_op *op, cs_append_result *out, cs_error *err)
{
	int rc = op->req.rc;
	if (rc == CS_OK && out)
		*out = op->req.result;
	else if (rc && err)
		*err = op->req.err;
	sem_destroy(&op->req.done);
	cs_request_deinit(&op->req);
	free(op);
	return rc;
}

int cs_store_submit(cs_append_result *out, cs_store *s, cs_request *req, cs_error *err)
{
	int rc = cs_committer_submit(&s->committer, req);
	if (rc == CS_OK && out)
		*out = req->result;
	else if (rc && err)
		*err = req->err;
	cs_request_deinit(req);
	return rc;
}

static uint64_t db_entries(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_stat st;
	return mdb_stat(txn, dbi, &st) == 0 ? st.ms_entries : 0;
}

int cs_store_stats_get(cs_store_stats *out, cs_store *s, cs_error *err)
{
	memset(out, 0, sizeof(*out));
	MDB_txn *txn;
	int rc = cs_txn_begin(&txn, &s->env, false, err);
	if (rc)
		return rc;
	out->events = db_entries(txn, s->env.events);
	rc = cs_meta_get_u64(txn, &s->env, CS_META_LAST_POSITION, &out->last_position, err);
	if (!rc)
		rc = cs_meta_get_u64(txn, &s->env, CS_META_CONVERSATIONS, &out->conversations, err);
	MDB_envinfo info;
	MDB_stat st;
	mdb_env_info(s->env.env, &info);
	mdb_env_stat(s->env.env, &st);
	out->map_size = info.me_mapsize;
	out->map_used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	for (size_t i = 0; i < CS_ENV_DBS && i < CS_STATS_DBS; i++) {
		MDB_stat ds = {0};
		mdb_stat(txn, *cs_env_dbi(&s->env, i), &ds);
		out->dbs[i].name = cs_env_db_name(i);
		out->dbs[i].entries = ds.ms_entries;
		out->dbs[i].pages = ds.ms_branch_pages + ds.ms_leaf_pages + ds.ms_overflow_pages;
		out->n_dbs = i + 1;
	}
	cs_txn_abort(&s->env, txn);
	out->commits = s->committer.commits;
	out->appends = s->committer.appends;
	out->map_grows = s->env.grows;
	return rc;
}

void cs_progress_step(cs_progress *p)
{
	if (p && p->fn && ++p->done % CS_PROGRESS_EVERY == 0)
		p->fn(p->ctx, p->done, p->total);
}

int cs_store_copy(cs_store *s, const char *path, cs_error *err)
{
	if (!path || !*path)
		return cs_error_set(err, CS_EINVAL, "a copy needs a folder");
	return cs_env_copy(&s->env, path, err);
}

/* Random bytes for ids come from a per-thread pool refilled 512 bytes at a time: one
 * getrandom() call per 32 ids instead of one per id. A forked child must not replay its
 * parent's pool: the fork handler empties the forking thread's pool (the only thread the child
 * has). */
static _Thread_local unsigned char pool[512];
static _Thread_local size_t left;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_forget(void)
{
	left = 0;
}

static void pool_init(void)
{
	pthread_atfork(NULL, NULL, pool_forget);
}

static int random_bytes(unsigned char *out, size_t n, cs_error *err)
{
	pthread_once(&pool_once, pool_init);
	if (left < n) {
		size_t got = 0;
		while (got < sizeof(pool)) {
			ssize_t r = getrandom(pool + got, sizeof(pool) - got, 0);
			if (r < 0 && errno != EINTR)
				return cs_error_set(err, CS_EIO, "getrandom: %s", strerror(errno));
			if (r > 0)
				got += (size_t)r;
		}
		left = sizeof(pool);
	}
	memcpy(out, pool + sizeof(pool) - left, n);
	memset(pool + sizeof(pool) - left, 0, n); /* a used id's bytes do not linger */
	left -= n;
	return CS_OK;
}

int cs_uuid_v4(char out[37], cs_error *err)
{
	unsigned char b[16];
	int rc = random_bytes(b, sizeof(b), err);
	if (rc)
		return rc;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return CS_OK;
}

bool cs_id_valid(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
		if (!ok || n >= CS_MAX_ID_LEN)
			return false;
	}
	/* "." and ".." are legal characters but read as path traversal wherever ids end up in
	 * URLs or file names: refuse them. */
	return n > 0 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}
