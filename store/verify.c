/*
 * verify.c - whole-store checks, for `convctl verify` and the crash tests.
 *
 * Five passes in one read transaction (a consistent snapshot while appends go on):
 *   1. the log: every record's framing, CRC and decode; its position field matches its key;
 *      the stream index maps its (tenant, conversation, version) back to this position (except
 *      for the content-free conversation_deleted records an erase leaves, which have no stream).
 *   2. meta: last_position is not behind the log (or the next append would collide).
 *   3. the streams: each stream's index entries with gapless versions, from the first version
 *      it owns (1; after a fork point; or after what retention removed), each pointing to an
 *      existing event, then its head (keys.c), whose version and last position equal the
 *      stream's last indexed event; no index entries without a head.
 *   4. the id index: every entry names a version whose event carries that id.
 *   5. the projections (rebuild.c): heads, snapshots, list, usage, fork links and the retain
 *      index equal, byte for byte, a fresh fold of the events by the one reducer.
 * Every problem is counted; the first is described in err with its position, and each one is
 * told to the caller's function (cs_store_verify_each), with the projections' differences as
 * one problem and a count. Nothing is repaired here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef struct verify_ctx {
	cs_store *s;
	MDB_txn *txn;
	cs_verify_report *rep;
	cs_error *err;
	/* The index walk: entries come in key order, each stream's versions together ascending. */
	unsigned char prefix[CS_STREAM_KEY_MAX];
	size_t prefix_len;
	uint64_t first;	   /* the first version seen in the current stream */
	uint64_t version;  /* the last version seen in the current stream */
	uint64_t last_pos; /* and its position */
	bool saw_head;
	uint64_t max_pos; /* the highest position in the log */
	cs_verify_fn fn;  /* told of every problem (optional) */
	void *fn_ctx;
	cs_progress progress; /* one step per log record, then per event folded */
} verify_ctx;

__attribute__((format(printf, 3, 4))) static void problem(verify_ctx *v, uint64_t position,
							  const char *fmt, ...)
{
	char msg[sizeof(v->err->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (v->rep->problems++ == 0) {
		v->rep->first_bad_position = position;
		if (v->err) {
			v->err->code = CS_ECORRUPT;
			v->err->index = CS_NO_INDEX;
			memcpy(v->err->msg, msg, sizeof(msg));
		}
	}
	if (v->fn)
		v->fn(v->fn_ctx, position, msg);
}

static void check_log_entry(verify_ctx *v, const MDB_val *key, const MDB_val *val)
{
	cs_progress_step(&v->progress);
	uint64_t pos = key->mv_size == 8 ? cs_get_be64(key->mv_data) : 0;
	if (pos > v->max_pos)
		v->max_pos = pos;
	char what[40];
	snprintf(what, sizeof(what), "position %llu", (unsigned long long)pos);
	Convstore__V1__Event *ev;
	cs_error e = CS_ERROR_INIT;
	if (cs_record_unpack((ProtobufCMessage **)&ev, &convstore__v1__event__descriptor,
			     val->mv_data, val->mv_size, v->s->max_raw, what, &e)) {
		problem(v, pos, "%s", e.msg);
		return;
	}
	v->rep->records++;
	bool streamless = ev->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED &&
			  ev->version == 0;
	if (streamless && ev->position == pos) {
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		return;
	}
	if (ev->position != pos || !cs_id_valid(ev->tenant) || !cs_id_valid(ev->conversation_id)) {
		problem(v, pos, "position %llu: envelope says position %llu",
			(unsigned long long)pos, (unsigned long long)ev->position);
	} else {
		cs_key k;
		cs_key_version(&k, ev->tenant, ev->conversation_id, ev->version);
		MDB_val ik = {k.len, k.b}, iv;
		if (mdb_get(v->txn, v->s->env.streams, &ik, &iv) != 0 || iv.mv_size != 8 ||
		    cs_get_be64(iv.mv_data) != pos)
			problem(v, pos, "position %llu: no index entry for %s version %llu",
				(unsigned long long)pos, ev->conversation_id,
				(unsigned long long)ev->version);
	}
	protobuf_c_message_free_unpacked(&ev->base, NULL);
}

/* Walk a whole database, calling @fn for each entry. */
static int walk(verify_ctx *v, MDB_dbi dbi,
		void (*fn)(verify_ctx *, const MDB_val *, const MDB_val *))
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(v->txn, dbi, &cur);
	if (rc)
		return cs_lmdb_error(v->err, rc, "cursor");
	MDB_val key, val;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
		fn(v, &key, &val);
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? CS_OK : cs_lmdb_error(v->err, rc, "walk");
}

static void check_head(verify_ctx *v, const MDB_val *key, const MDB_val *val);

/* A stream whose index entries are not followed by its head. */
static void check_stream_end(verify_ctx *v)
{
	if (v->prefix_len && v->version && !v->saw_head)
		problem(v, v->last_pos, "position %llu: a conversation's events have no head",
			(unsigned long long)v->last_pos);
}

/* Stream entries come in key order: a stream's versions ascending, then its head. */
static void check_stream_entry(verify_ctx *v, const MDB_val *key, const MDB_val *val)
{
	if (key->mv_size <= 8 || key->mv_size - 8 > CS_STREAM_KEY_MAX) {
		problem(v, 0, "malformed stream key of %zu bytes", key->mv_size);
		return;
	}
	size_t plen = key->mv_size - 8;
	uint64_t version = cs_get_be64((unsigned char *)key->mv_data + plen);
	bool same = plen == v->prefix_len && memcmp(v->prefix, key->mv_data, plen) == 0;
	if (!same) {
		check_stream_end(v);
		memcpy(v->prefix, key->mv_data, plen);
		v->prefix_len = plen;
		v->version = 0;
		v->first = 0;
		v->last_pos = 0;
		v->saw_head = false;
	}
	if (version == CS_HEAD_VERSION) {
		check_head(v, key, val);
		return;
	}
	uint64_t pos = val->mv_size == 8 ? cs_get_be64(val->mv_data) : 0;
	if (!v->version)
		v->first = version; /* the head says whether the stream should start here */
	else if (version != v->version + 1)
		problem(v, pos, "position %llu: version %llu follows version %llu (a gap)",
			(unsigned long long)pos, (unsigned long long)version,
			(unsigned long long)v->version);
	v->version = version;
	v->last_pos = pos;
	cs_key k;
	cs_key_position(&k, pos);
	MDB_val ek = {k.len, k.b}, ev;
	if (!pos || mdb_get(v->txn, v->s->env.events, &ek, &ev) != 0)
		problem(v, pos, "index points to position %llu, which is not in the log",
			(unsigned long long)pos);
}

/* The head must name its own stream, and say the version and position of the stream's last
 * index entry, which the walk has just passed (the head's key sorts last in its stream). */
static void check_head(verify_ctx *v, const MDB_val *key, const MDB_val *val)
{
	v->saw_head = true;
	Convstore__V1__Head *h;
	cs_error e = CS_ERROR_INIT;
	if (cs_record_unpack((ProtobufCMessage **)&h, &convstore__v1__head__descriptor,
			     val->mv_data, val->mv_size, v->s->max_raw, "head", &e)) {
		char tenant[CS_MAX_ID_LEN + 1] = "?", conv[CS_MAX_ID_LEN + 1] = "?";
		cs_key_parse_stream(key->mv_data, key->mv_size, tenant, conv, NULL);
		problem(v, v->last_pos, "head of \"%s\" (tenant \"%s\", position %llu): %s", conv,
			tenant, (unsigned long long)v->last_pos, e.msg);
		return;
	}
	bool ok = cs_id_valid(h->tenant) && cs_id_valid(h->id);
	if (ok) {
		cs_key stream;
		cs_key_stream(&stream, h->tenant, h->id);
		ok = stream.len + 8 == key->mv_size &&
		     memcmp(stream.b, key->mv_data, stream.len) == 0;
	}
	/* The first own version: 1, after the fork point, or after what retention removed; a
	 * stream whose own events retention removed entirely has none. */
	uint64_t first = cs_head_own_first(h);
	if (ok && v->version && v->first != first)
		problem(v, v->last_pos, "\"%s\" starts at version %llu, expected %llu", h->id,
			(unsigned long long)v->first, (unsigned long long)first);
	if (!v->version && ok && h->version + 1 == first)
		v->version = h->version, v->last_pos = h->last_position;
	if (!ok || h->version != v->version || h->last_position != v->last_pos)
		problem(v, h->last_position,
			"head of \"%s\" says version %llu at position %llu; the index says %llu at "
			"%llu",
			h->id, (unsigned long long)h->version, (unsigned long long)h->last_position,
			(unsigned long long)v->version, (unsigned long long)v->last_pos);
	protobuf_c_message_free_unpacked(&h->base, NULL);
}

/* An id index entry: [tl][tenant][cl][conversation][event id] -> version. The event at that
 * version must carry that id. */
static void check_id_entry(verify_ctx *v, const MDB_val *key, const MDB_val *val)
{
	const unsigned char *b = key->mv_data;
	size_t n = key->mv_size, tl = n ? b[0] : 0, cl = n > 1 + tl ? b[1 + tl] : 0;
	if (n < 2 + tl + cl + 1 || val->mv_size != 8) {
		problem(v, 0, "malformed id index entry");
		return;
	}
	cs_key k;
	memcpy(k.b, b, 2 + tl + cl);
	cs_put_be64(k.b + 2 + tl + cl, cs_get_be64(val->mv_data));
	k.len = 2 + tl + cl + 8;
	MDB_val ik = {k.len, k.b}, iv;
	Convstore__V1__Event *ev = NULL;
	uint64_t pos = 0;
	if (mdb_get(v->txn, v->s->env.streams, &ik, &iv) == 0 && iv.mv_size == 8)
		pos = cs_get_be64(iv.mv_data);
	const char *id = (const char *)b + 2 + tl + cl;
	size_t id_len = n - 2 - tl - cl;
	if (!pos || cs_event_load(&ev, v->s, v->txn, pos, NULL) != CS_OK ||
	    strlen(ev->id) != id_len || memcmp(ev->id, id, id_len) != 0)
		problem(v, pos, "id index entry \"%.*s\" does not match the event it names",
			(int)(id_len > 64 ? 64 : id_len), id);
	if (ev)
		protobuf_c_message_free_unpacked(&ev->base, NULL);
}

/* The next position the writer gives must be past every event in the log. */
static void check_meta(verify_ctx *v)
{
	uint64_t last = 0;
	cs_error e = CS_ERROR_INIT;
	if (cs_meta_get_u64(v->txn, &v->s->env, CS_META_LAST_POSITION, &last, &e) != CS_OK)
		problem(v, 0, "%s", e.msg);
	else if (last < v->max_pos)
		problem(v, v->max_pos, "meta last_position %llu is behind the log's %llu",
			(unsigned long long)last, (unsigned long long)v->max_pos);
}

int cs_store_verify(cs_verify_report *out, cs_store *s, cs_error *err)
{
	return cs_store_verify_each(out, s, NULL, err);
}

int cs_store_verify_each(cs_verify_report *out, cs_store *s, const cs_verify_hooks *hooks,
			 cs_error *err)
{
	memset(out, 0, sizeof(*out));
	verify_ctx v = {.s = s, .rep = out, .err = err};
	if (hooks) {
		v.fn = hooks->problem;
		v.fn_ctx = hooks->ctx;
		v.progress = (cs_progress){hooks->progress, hooks->ctx, 0, 0};
	}
	int rc = cs_txn_begin(&v.txn, &s->env, false, err);
	if (rc)
		return rc;
	MDB_stat st;
	if (mdb_stat(v.txn, s->env.events, &st) == 0)
		v.progress.total = 2 * st.ms_entries;
	rc = walk(&v, s->env.events, check_log_entry);
	if (!rc)
		check_meta(&v);
	if (!rc)
		rc = walk(&v, s->env.streams, check_stream_entry);
	if (!rc)
		check_stream_end(&v);
	if (!rc)
		rc = walk(&v, s->env.idem, check_id_entry);
	uint64_t diffs = 0;
	cs_error first = CS_ERROR_INIT;
	if (!rc)
		rc = cs_projections_check(&diffs, s, v.txn, &v.progress, &first, err);
	if (!rc && diffs) {
		problem(&v, 0, "%s", first.msg);
		out->problems += diffs - 1;
	}
	cs_txn_abort(&s->env, v.txn);
	if (rc)
		return rc;
	return out->problems ? CS_ECORRUPT : CS_OK;
}
