/*
 * history.c - a conversation's history across forks, and its state at any version (time travel).
 *
 * A fork does not copy events. Conversation Y forked from X at version N owns only its versions
 * N+1.. in the streams index; its versions 1..N are X's, read through X (which may itself be a
 * fork). So a history is a chain of segments, oldest first:
 *
 *     X (root):  versions 1 .. 5           the parent's own events up to the fork point
 *     Y (fork):  versions 6 .. 9           Y's own, beginning with its conversation_forked
 *
 * and reading version v of Y means finding the segment that holds v. Retention may have removed
 * a segment's oldest events (the head's first_version says from where it holds them); asking
 * for one of those is CS_EGONE.
 *
 * State at version v (cs_head_at): the newest snapshot at or below v in the conversation's own
 * segment (views.c writes one every snapshot_every events), else the parent's state at the fork
 * point (recursively, itself from a snapshot), else the empty head; then fold the conversation's
 * own events up to v with the one reducer (reduce.c). So the cost is bounded by snapshot_every
 * folds per fork level, whatever the conversation's length.
 *
 * A head's first_version (what retention removed) is not part of the fold: cs_head_at() results
 * and snapshots have it 0, and only the stored head says it.
 *
 * Everything here runs inside a transaction the caller owns (read or write), so the writer uses
 * the same code to fork (the new conversation starts from its parent's state at N).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__Head Head;
typedef Convstore__V1__Event Event;

uint64_t cs_head_own_lo(const Head *h)
{
	return h->parent ? h->parent->version + 1 : 1;
}

uint64_t cs_head_own_first(const Head *h)
{
	uint64_t lo = cs_head_own_lo(h);
	return h->first_version > lo ? h->first_version : lo;
}

static int load_head_of(Head **out, cs_store *s, MDB_txn *txn, const char *tenant, const char *conv,
			cs_error *err)
{
	cs_key stream;
	cs_key_stream(&stream, tenant, conv);
	int rc = cs_head_load(out, s, txn, &stream, err);
	if (rc == CS_ENOTFOUND)
		return cs_error_set(err, rc, "conversation \"%s\" not found", conv);
	return rc;
}

int cs_history_open(cs_history *out, cs_store *s, MDB_txn *txn, const Head *head, cs_error *err)
{
	memset(out, 0, sizeof(*out));
	const Head *h = head;
	Head *owned = NULL;
	uint64_t hi = head->version;
	int rc = CS_OK;
	for (;;) {
		if (out->n == CS_MAX_FORK_DEPTH + 1) {
			rc = cs_error_set(err, CS_ECORRUPT, "fork chain of \"%s\" is too deep",
					  head->id);
			break;
		}
		cs_segment *seg = &out->seg[out->n++];
		snprintf(seg->conv, sizeof(seg->conv), "%s", h->id);
		seg->lo = cs_head_own_lo(h);
		seg->held = cs_head_own_first(h);
		seg->hi = hi;
		if (!h->parent)
			break;
		hi = h->parent->version < hi ? h->parent->version
					     : hi; /* a fork of a fork may stop early */
		Head *parent;
		rc = load_head_of(&parent, s, txn, h->tenant, h->parent->id, err);
		if (rc == CS_ENOTFOUND)
			rc = cs_error_set(err, CS_ECORRUPT, "parent \"%s\" of \"%s\" is missing",
					  h->parent->id, h->id);
		cs_head_free(owned);
		owned = NULL;
		if (rc)
			break;
		h = owned = parent;
	}
	cs_head_free(owned);
	if (rc)
		return rc;
	snprintf(out->tenant, sizeof(out->tenant), "%s", head->tenant);
	/* Oldest first. */
	for (size_t i = 0; i < out->n / 2; i++) {
		cs_segment t = out->seg[i];
		out->seg[i] = out->seg[out->n - 1 - i];
		out->seg[out->n - 1 - i] = t;
	}
	return CS_OK;
}

uint64_t cs_history_first_version(const cs_history *hist)
{
	uint64_t first = 0;
	for (size_t i = 0; i < hist->n; i++)
		if (hist->seg[i].held > hist->seg[i].lo)
			first = hist->seg[i].held;
	return first;
}

const cs_segment *cs_history_find(const cs_history *hist, uint64_t version)
{
	for (size_t i = 0; i < hist->n; i++)
		if (version >= hist->seg[i].lo && version <= hist->seg[i].hi)
			return &hist->seg[i];
	return NULL;
}

int cs_index_get(uint64_t *position, cs_store *s, MDB_txn *txn, const char *tenant,
		 const char *conv, uint64_t version, cs_error *err)
{
	cs_key k;
	cs_key_version(&k, tenant, conv, version);
	MDB_val key = {k.len, k.b}, val;
	int rc = mdb_get(txn, s->env.streams, &key, &val);
	if (rc == MDB_NOTFOUND)
		return cs_error_set(err, CS_ECORRUPT, "version %llu of \"%s\" is missing",
				    (unsigned long long)version, conv);
	if (rc)
		return cs_lmdb_error(err, rc, "index");
	if (val.mv_size != 8)
		return cs_error_set(err, CS_ECORRUPT, "index entry of version %llu is damaged",
				    (unsigned long long)version);
	*position = cs_get_be64(val.mv_data);
	return CS_OK;
}

int cs_history_event(Event **out, cs_store *s, MDB_txn *txn, const cs_history *hist,
		     uint64_t version, cs_error *err)
{
	*out = NULL;
	const cs_segment *seg = cs_history_find(hist, version);
	if (!seg)
		return cs_error_set(err, CS_EINVAL, "version %llu is not in the history",
				    (unsigned long long)version);
	if (version < seg->held)
		return cs_error_set(err, CS_EGONE, "version %llu was removed by retention",
				    (unsigned long long)version);
	uint64_t pos;
	int rc = cs_index_get(&pos, s, txn, hist->tenant, seg->conv, version, err);
	if (!rc)
		rc = cs_event_load(out, s, txn, pos, err);
	if (rc == CS_ENOTFOUND)
		rc = cs_error_set(err, CS_ECORRUPT, "version %llu points to a missing event",
				  (unsigned long long)version);
	return rc;
}

int cs_history_walk(cs_store *s, MDB_txn *txn, const cs_history *hist, uint64_t from, uint64_t to,
		    cs_event_fn fn, void *ctx, cs_error *err)
{
	for (size_t i = 0; i < hist->n; i++) {
		const cs_segment *seg = &hist->seg[i];
		uint64_t lo = from > seg->held ? from : seg->held;
		uint64_t hi = to < seg->hi ? to : seg->hi;
		if (lo > hi)
			continue;
		cs_key k;
		cs_key_stream(&k, hist->tenant, seg->conv);
		int rc = cs_stream_walk(s, txn, &k, lo, hi, fn, ctx, err);
		if (rc)
			return rc;
	}
	return CS_OK;
}

int cs_stream_walk(cs_store *s, MDB_txn *txn, const cs_key *stream, uint64_t lo, uint64_t hi,
		   cs_event_fn fn, void *ctx, cs_error *err)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, s->env.streams, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	cs_key k;
	cs_key_at(&k, stream, lo);
	MDB_val key = {k.len, k.b}, val;
	uint64_t expect = lo;
	int res = CS_OK;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	     rc == 0 && cs_key_is_event_of(&key, stream) && expect <= hi;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		uint64_t version = cs_get_be64((unsigned char *)key.mv_data + stream->len);
		if (version != expect || val.mv_size != 8)
			break;
		Event *ev;
		res = cs_event_load(&ev, s, txn, cs_get_be64(val.mv_data), err);
		if (res == CS_ENOTFOUND)
			res =
			    cs_error_set(err, CS_ECORRUPT, "version %llu points to a missing event",
					 (unsigned long long)version);
		if (res)
			break;
		res = fn(ctx, ev, err);
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		if (res)
			break;
		expect++;
	}
	mdb_cursor_close(cur);
	if (!res && rc != 0 && rc != MDB_NOTFOUND)
		return cs_lmdb_error(err, rc, "stream");
	if (!res && expect <= hi) /* versions are gapless: a missing one is damage */
		return cs_error_set(err, CS_ECORRUPT, "version %llu is missing from the index",
				    (unsigned long long)expect);
	return res;
}

/* ---- state at a version ------------------------------------------------------------------ */

static int fold_one(void *ctx, Event *ev, cs_error *err)
{
	return cs_head_apply(ctx, ev, err);
}

int cs_snapshot_find(Head **out, MDB_val *raw, cs_store *s, MDB_txn *txn, const cs_key *stream,
		     uint64_t lo, uint64_t hi, cs_error *err)
{
	*out = NULL;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, s->env.snaps, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	cs_key k;
	cs_key_at(&k, stream, hi == UINT64_MAX ? hi : hi + 1);
	MDB_val key = {k.len, k.b}, val;
	rc = cs_cursor_before(cur, &key, &val);
	int res = CS_OK;
	if (rc == 0 && key.mv_size == stream->len + 8 &&
	    memcmp(key.mv_data, stream->b, stream->len) == 0) {
		uint64_t v = cs_get_be64((unsigned char *)key.mv_data + stream->len);
		if (v >= lo && v <= hi) {
			char what[48];
			snprintf(what, sizeof(what), "snapshot at version %llu",
				 (unsigned long long)v);
			res = cs_record_unpack((ProtobufCMessage **)out,
					       &convstore__v1__head__descriptor, val.mv_data,
					       val.mv_size, s->max_raw, what, err);
			if (!res && (res = cs_head_sane(*out, err))) {
				cs_head_free(*out);
				*out = NULL;
			}
			if (raw)
				*raw = val;
		}
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		res = cs_lmdb_error(err, rc, "snapshot");
	}
	mdb_cursor_close(cur);
	return res;
}

static int head_at(Head **out, cs_store *s, MDB_txn *txn, const Head *h, uint64_t version,
		   unsigned depth, cs_error *err);

/* The state of @h's parent at @version (at most the fork point), under @h's identity. */
static int parent_at(Head **out, cs_store *s, MDB_txn *txn, const Head *h, uint64_t version,
		     unsigned depth, cs_error *err)
{
	Head *parent;
	int rc = load_head_of(&parent, s, txn, h->tenant, h->parent->id, err);
	if (rc == CS_ENOTFOUND)
		rc = cs_error_set(err, CS_ECORRUPT, "parent \"%s\" of \"%s\" is missing",
				  h->parent->id, h->id);
	if (rc)
		return rc;
	rc = head_at(out, s, txn, parent, version, depth + 1, err);
	cs_head_free(parent);
	if (!rc && (rc = cs_head_rename(*out, h->id, err))) {
		cs_head_free(*out);
		*out = NULL;
	}
	return rc;
}

static int head_at(Head **out, cs_store *s, MDB_txn *txn, const Head *h, uint64_t version,
		   unsigned depth, cs_error *err)
{
	*out = NULL;
	if (depth > CS_MAX_FORK_DEPTH)
		return cs_error_set(err, CS_ECORRUPT, "fork chain of \"%s\" is too deep", h->id);
	if (h->parent && version <= h->parent->version)
		return parent_at(out, s, txn, h, version, depth, err);
	uint64_t first = cs_head_own_first(h);
	if (version + 1 < first)
		return cs_error_set(err, CS_EGONE,
				    "version %llu of \"%s\" was removed by retention (it holds "
				    "%llu on)",
				    (unsigned long long)version, h->id, (unsigned long long)first);
	cs_key stream;
	cs_key_stream(&stream, h->tenant, h->id);
	Head *state;
	int rc = cs_snapshot_find(&state, NULL, s, txn, &stream, first - 1, version, err);
	/* No snapshot in the own segment: start from the parent at the fork point, or empty. */
	if (!rc && !state)
		rc = h->parent ? parent_at(&state, s, txn, h, h->parent->version, depth, err)
			       : cs_head_new(&state, h->tenant, h->id, err);
	if (rc)
		return rc;
	if (state->version < version)
		rc = cs_stream_walk(s, txn, &stream, state->version + 1, version, fold_one, state,
				    err);
	if (rc) {
		cs_head_free(state);
		return rc;
	}
	*out = state;
	return CS_OK;
}

int cs_head_at(Head **out, cs_store *s, MDB_txn *txn, const Head *head, uint64_t version,
	       cs_error *err)
{
	*out = NULL;
	if (version > head->version)
		return cs_error_set(err, CS_EINVAL, "version %llu is beyond the current %llu",
				    (unsigned long long)version, (unsigned long long)head->version);
	int rc;
	if (version == head->version) {
		/* The head is the state now: a copy of it. */
		unsigned char *rec;
		size_t len;
		if ((rc = cs_record_pack(&rec, &len, &head->base, err)))
			return rc;
		rc = cs_record_unpack((ProtobufCMessage **)out, &convstore__v1__head__descriptor,
				      rec, len, s->max_raw, "head", err);
		free(rec);
	} else {
		rc = head_at(out, s, txn, head, version, 0, err);
	}
	/* What retention removed is a fact about the store now, not about the state at a version:
	 * folded states (and so snapshots) never carry it; heads do. */
	if (!rc)
		(*out)->first_version = 0;
	return rc;
}
