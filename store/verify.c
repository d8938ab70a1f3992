/*
 * verify.c - whole-store checks, for `convctl verify` and the crash tests.
 *
 * Two passes in one read transaction (a consistent snapshot while appends go on):
 *   1. the log: every record's framing, CRC and decode; its position field matches its key;
 *      the stream index maps its (tenant, conversation, version) back to this position.
 *   2. the streams: each stream's index entries with gapless versions from 1, each pointing to
 *      an existing event, then its head (keys.c), whose version and last position equal the
 *      stream's last indexed event.
 * Every problem is counted; the first is described in err with its position. Nothing is
 * repaired here.
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
	uint64_t version;
} verify_ctx;

__attribute__((format(printf, 3, 4))) static void problem(verify_ctx *v, uint64_t position,
							  const char *fmt, ...)
{
	if (v->rep->problems++ == 0) {
		v->rep->first_bad_position = position;
		if (v->err) {
			va_list ap;
			va_start(ap, fmt);
			v->err->code = CS_ECORRUPT;
			v->err->index = CS_NO_INDEX;
			vsnprintf(v->err->msg, sizeof(v->err->msg), fmt, ap);
			va_end(ap);
		}
	}
}

static void check_log_entry(verify_ctx *v, const MDB_val *key, const MDB_val *val)
{
	uint64_t pos = key->mv_size == 8 ? cs_get_be64(key->mv_data) : 0;
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
		memcpy(v->prefix, key->mv_data, plen);
		v->prefix_len = plen;
		v->version = 0;
	}
	if (version == CS_HEAD_VERSION) {
		check_head(v, key, val);
		return;
	}
	uint64_t pos = val->mv_size == 8 ? cs_get_be64(val->mv_data) : 0;
	if (version != v->version + 1)
		problem(v, pos, "position %llu: version %llu follows version %llu (a gap)",
			(unsigned long long)pos, (unsigned long long)version,
			(unsigned long long)v->version);
	v->version = version;
	cs_key k;
	cs_key_position(&k, pos);
	MDB_val ek = {k.len, k.b}, ev;
	if (!pos || mdb_get(v->txn, v->s->env.events, &ek, &ev) != 0)
		problem(v, pos, "index points to position %llu, which is not in the log",
			(unsigned long long)pos);
}

/* The head must name its own stream, and its version must be the stream's last one (entries
 * past it cannot exist: the head's key sorts last in its stream). */
static void check_head(verify_ctx *v, const MDB_val *key, const MDB_val *val)
{
	Convstore__V1__Head *h;
	cs_error e = CS_ERROR_INIT;
	if (cs_record_unpack((ProtobufCMessage **)&h, &convstore__v1__head__descriptor,
			     val->mv_data, val->mv_size, v->s->max_raw, "head", &e)) {
		problem(v, 0, "%s", e.msg);
		return;
	}
	cs_key stream, last;
	bool ok = cs_id_valid(h->tenant) && cs_id_valid(h->id);
	if (ok) {
		cs_key_stream(&stream, h->tenant, h->id);
		cs_key_version(&last, h->tenant, h->id, h->version);
		ok = stream.len + 8 == key->mv_size &&
		     memcmp(stream.b, key->mv_data, stream.len) == 0;
	}
	MDB_val lk = {last.len, last.b}, lv, nk, nv;
	MDB_cursor *cur = NULL;
	ok = ok && mdb_get(v->txn, v->s->env.streams, &lk, &lv) == 0 && lv.mv_size == 8 &&
	     cs_get_be64(lv.mv_data) == h->last_position &&
	     mdb_cursor_open(v->txn, v->s->env.streams, &cur) == 0;
	if (ok) { /* nothing of this stream may be indexed after the head's version */
		nk = lk;
		if (mdb_cursor_get(cur, &nk, &nv, MDB_SET_KEY) == 0 &&
		    mdb_cursor_get(cur, &nk, &nv, MDB_NEXT) == 0 &&
		    cs_key_is_event_of(&nk, &stream))
			ok = false;
	}
	mdb_cursor_close(cur);
	if (!ok)
		problem(v, h->last_position,
			"head of \"%s\" says version %llu at position %llu; the index disagrees",
			h->id, (unsigned long long)h->version,
			(unsigned long long)h->last_position);
	protobuf_c_message_free_unpacked(&h->base, NULL);
}

int cs_store_verify(cs_verify_report *out, cs_store *s, cs_error *err)
{
	memset(out, 0, sizeof(*out));
	verify_ctx v = {.s = s, .rep = out, .err = err};
	int rc = cs_txn_begin(&v.txn, &s->env, false, err);
	if (rc)
		return rc;
	rc = walk(&v, s->env.events, check_log_entry);
	if (!rc)
		rc = walk(&v, s->env.streams, check_stream_entry);
	cs_txn_abort(&s->env, v.txn);
	if (rc)
		return rc;
	return out->problems ? CS_ECORRUPT : CS_OK;
}
