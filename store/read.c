/*
 * read.c - reads: one conversation's events by version range, the global feed after a
 * position, and the head.
 *
 * Every read is one short read transaction: LMDB gives it a consistent snapshot (a reader never
 * sees an event without the head that reflects it, because both were written in one
 * transaction), it never blocks the writer, and nothing it returns points into the map: records
 * are checked (CRC), inflated and unpacked into memory the caller owns, so the transaction can
 * end before the caller looks at the result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__Event Event;

void cs_event_page_deinit(cs_event_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->n; i++)
		protobuf_c_message_free_unpacked(&page->events[i]->base, NULL);
	free(page->events);
	memset(page, 0, sizeof(*page));
}

static int page_push(cs_event_page *page, Event *ev, size_t cap, cs_error *err)
{
	if (!page->events) {
		page->events = malloc(cap * sizeof(*page->events));
		if (!page->events) {
			protobuf_c_message_free_unpacked(&ev->base, NULL);
			return cs_error_set(err, CS_ENOMEM, "out of memory for a page of %zu", cap);
		}
	}
	page->events[page->n++] = ev;
	return CS_OK;
}

/* Get the record at @k in @dbi and unpack it as @desc; @what names it in messages. */
static int load_record(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc, cs_store *s,
		       MDB_txn *txn, MDB_dbi dbi, const cs_key *k, const char *what, cs_error *err)
{
	MDB_val key = {k->len, (void *)k->b}, val;
	int rc = mdb_get(txn, dbi, &key, &val);
	if (rc) {
		*out = NULL;
		return cs_lmdb_error(err, rc, what);
	}
	return cs_record_unpack(out, desc, val.mv_data, val.mv_size, s->max_raw, what, err);
}

int cs_event_load(Event **out, cs_store *s, MDB_txn *txn, uint64_t position, cs_error *err)
{
	cs_key k;
	cs_key_position(&k, position);
	char what[40];
	snprintf(what, sizeof(what), "position %llu", (unsigned long long)position);
	int rc = load_record((ProtobufCMessage **)out, &convstore__v1__event__descriptor, s, txn,
			     s->env.events, &k, what, err);
	if (!rc && (rc = cs_event_sane(*out, err))) {
		protobuf_c_message_free_unpacked(&(*out)->base, NULL);
		*out = NULL;
	}
	return rc;
}

int cs_head_load(Convstore__V1__Head **out, cs_store *s, MDB_txn *txn, const cs_key *stream,
		 cs_error *err)
{
	cs_key k;
	cs_key_head(&k, stream);
	int rc = load_record((ProtobufCMessage **)out, &convstore__v1__head__descriptor, s, txn,
			     s->env.streams, &k, "head", err);
	if (!rc && (rc = cs_head_sane(*out, err))) {
		cs_head_free(*out);
		*out = NULL;
	}
	return rc;
}

static size_t clamp_limit(size_t limit)
{
	return limit == 0 ? 100 : limit > 10000 ? 10000 : limit;
}

/* The nearest version at or after (forward) / before (backward) @v that the history holds;
 * 0 when there is none. */
static uint64_t held_from(const cs_history *hist, uint64_t v, enum cs_direction dir)
{
	/* A segment whose own events retention removed entirely holds nothing (held > hi). */
	if (dir == CS_FORWARD) {
		for (size_t i = 0; i < hist->n; i++)
			if (v <= hist->seg[i].hi && hist->seg[i].held <= hist->seg[i].hi)
				return v >= hist->seg[i].held ? v : hist->seg[i].held;
		return 0;
	}
	for (size_t i = hist->n; i-- > 0;)
		if (v >= hist->seg[i].held && hist->seg[i].held <= hist->seg[i].hi)
			return v <= hist->seg[i].hi ? v : hist->seg[i].hi;
	return 0;
}

static int read_history(cs_event_page *out, cs_store *s, MDB_txn *txn, const cs_history *hist,
			uint64_t from, size_t limit, enum cs_direction dir, cs_error *err)
{
	uint64_t v = held_from(hist, from, dir);
	while (v && out->n < limit) {
		Event *ev;
		int rc = cs_history_event(&ev, s, txn, hist, v, err);
		if (rc || (rc = page_push(out, ev, limit, err)))
			return rc;
		v = dir == CS_FORWARD ? held_from(hist, v + 1, dir)
				      : (v > 1 ? held_from(hist, v - 1, dir) : 0);
	}
	out->next = v;
	return CS_OK;
}

int cs_head_read(MDB_txn **txn, Convstore__V1__Head **out, cs_store *s, const char *tenant,
		 const char *conv, cs_error *err)
{
	*txn = NULL;
	*out = NULL;
	if (!tenant || !conv || !cs_id_valid(tenant) || !cs_id_valid(conv))
		return cs_error_set(err, CS_EINVAL, "invalid tenant or conversation id");
	int rc = cs_txn_begin(txn, &s->env, false, err);
	if (rc)
		return rc;
	cs_key stream;
	cs_key_stream(&stream, tenant, conv);
	rc = cs_head_load(out, s, *txn, &stream, err);
	if (rc == CS_ENOTFOUND)
		cs_error_set(err, rc, "conversation \"%s\" not found", conv);
	if (rc) {
		cs_txn_abort(&s->env, *txn);
		*txn = NULL;
	}
	return rc;
}

int cs_store_read_stream(cs_event_page *out, cs_store *s, const char *tenant, const char *conv,
			 uint64_t from_version, size_t limit, enum cs_direction direction,
			 cs_error *err)
{
	memset(out, 0, sizeof(*out));
	MDB_txn *txn;
	Convstore__V1__Head *h;
	int rc = cs_head_read(&txn, &h, s, tenant, conv, err);
	if (rc)
		return rc;
	cs_history hist;
	uint64_t from = from_version;
	if (direction == CS_FORWARD && from == 0)
		from = 1;
	if (direction == CS_BACKWARD && (from == 0 || from > h->version))
		from = h->version;
	rc = cs_history_open(&hist, s, txn, h, err);
	if (!rc)
		rc = read_history(out, s, txn, &hist, from, clamp_limit(limit), direction, err);
	cs_head_free(h);
	cs_txn_abort(&s->env, txn);
	if (rc)
		cs_event_page_deinit(out);
	return rc;
}

int cs_store_read_feed(cs_event_page *out, cs_store *s, const char *tenant, uint64_t after_position,
		       size_t limit, cs_error *err)
{
	memset(out, 0, sizeof(*out));
	out->next = after_position;
	if (after_position == UINT64_MAX)
		return CS_OK;
	limit = clamp_limit(limit);
	MDB_txn *txn;
	int rc = cs_txn_begin(&txn, &s->env, false, err);
	if (rc)
		return rc;
	MDB_cursor *cur;
	int mrc = mdb_cursor_open(txn, s->env.events, &cur);
	if (mrc) {
		cs_txn_abort(&s->env, txn);
		return cs_lmdb_error(err, mrc, "cursor");
	}
	cs_key k;
	cs_key_position(&k, after_position + 1);
	MDB_val key = {k.len, k.b}, val;
	size_t scanned = 0;
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	     mrc == 0 && out->n < limit && scanned < CS_FEED_SCAN_MAX;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT), scanned++) {
		uint64_t pos = key.mv_size == 8 ? cs_get_be64(key.mv_data) : 0;
		char what[40];
		snprintf(what, sizeof(what), "position %llu", (unsigned long long)pos);
		Event *ev;
		rc = cs_record_unpack((ProtobufCMessage **)&ev, &convstore__v1__event__descriptor,
				      val.mv_data, val.mv_size, s->max_raw, what, err);
		if (!rc && (rc = cs_event_sane(ev, err)))
			protobuf_c_message_free_unpacked(&ev->base, NULL);
		if (rc)
			break;
		if (tenant && strcmp(ev->tenant, tenant) != 0) {
			protobuf_c_message_free_unpacked(&ev->base, NULL);
			if (scanned + 1 == CS_FEED_SCAN_MAX)
				out->next = pos; /* the scan stops here: resume after it */
			continue;
		}
		if ((rc = page_push(out, ev, limit, err)))
			break;
		out->next = pos;
	}
	mdb_cursor_close(cur);
	cs_txn_abort(&s->env, txn);
	if (!rc && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = cs_lmdb_error(err, mrc, "feed");
	if (rc)
		cs_event_page_deinit(out);
	return rc;
}

/* The first own version of @h at or after @lo whose event has a position above @after; one past
 * the head when there is none. Own versions' positions grow with the version, so this is a
 * binary search on the index. */
static int first_after(uint64_t *out, cs_store *s, MDB_txn *txn, const Convstore__V1__Head *h,
		       uint64_t lo, uint64_t after, cs_error *err)
{
	uint64_t hi = h->version + 1; /* the answer is in [lo, hi] */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2, pos;
		int rc = cs_index_get(&pos, s, txn, h->tenant, h->id, mid, err);
		if (rc)
			return rc;
		if (pos > after)
			hi = mid;
		else
			lo = mid + 1;
	}
	*out = lo;
	return CS_OK;
}

/* The last position in the event log of @txn's snapshot (0 when it is empty). */
static int last_position(uint64_t *out, cs_store *s, MDB_txn *txn, cs_error *err)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, s->env.events, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	MDB_val key, val;
	rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
	*out = rc == 0 && key.mv_size == 8 ? cs_get_be64(key.mv_data) : 0;
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? CS_OK : cs_lmdb_error(err, rc, "feed");
}

int cs_store_read_conv_feed(cs_event_page *out, cs_store *s, const char *tenant, const char *conv,
			    uint64_t after_position, size_t limit, cs_error *err)
{
	memset(out, 0, sizeof(*out));
	out->next = after_position;
	limit = clamp_limit(limit);
	MDB_txn *txn;
	Convstore__V1__Head *h;
	int rc = cs_head_read(&txn, &h, s, tenant, conv, err);
	if (rc)
		return rc;
	uint64_t v;
	rc = first_after(&v, s, txn, h, cs_head_own_first(h), after_position, err);
	for (; !rc && v <= h->version && out->n < limit; v++) {
		uint64_t pos;
		Event *ev;
		rc = cs_index_get(&pos, s, txn, tenant, conv, v, err);
		if (!rc)
			rc = cs_event_load(&ev, s, txn, pos, err);
		if (rc == CS_ENOTFOUND)
			rc =
			    cs_error_set(err, CS_ECORRUPT, "version %llu points to a missing event",
					 (unsigned long long)v);
		if (!rc && !(rc = page_push(out, ev, limit, err)))
			out->next = pos;
	}
	uint64_t last;
	if (!rc && v > h->version && !(rc = last_position(&last, s, txn, err)) && last > out->next)
		out->next = last; /* read to the end: nothing of it up to here is left unread */
	cs_head_free(h);
	cs_txn_abort(&s->env, txn);
	if (rc)
		cs_event_page_deinit(out);
	return rc;
}

int cs_store_head(Convstore__V1__Head **out, cs_store *s, const char *tenant, const char *conv,
		  cs_error *err)
{
	MDB_txn *txn;
	int rc = cs_head_read(&txn, out, s, tenant, conv, err);
	if (!rc)
		cs_txn_abort(&s->env, txn);
	return rc;
}
