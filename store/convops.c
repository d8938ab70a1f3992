/*
 * convops.c - the conversation operations whose events the store writes itself: create,
 * update, fork, erase, and the retention sweep.
 *
 * Each public function builds a request in the caller's thread and hands it to the group
 * commit like an append (commit.c), so there is still exactly one writer and every operation is
 * one transaction with everything it changes:
 *
 *   create / update  one conversation_created / _updated event through the append path
 *                    (append.c: cs_events_commit), so the head, snapshots and views follow as
 *                    for any event
 *   fork             the new conversation's head starts as its parent's state at the fork point
 *                    (history.c: cs_head_at) and folds its conversation_forked event; a fork
 *                    link [parent][fork] -> at_version records the dependency. No event is copied
 *   erase            deletes the conversation's own events, index, ids, head, snapshots, list
 *                    entry, fork link and its share of the usage rollups, leaves a tombstone
 *                    (unless purged) and appends a content-free conversation_deleted event to
 *                    the global feed (no stream, no version) so followers can erase too
 *   sweep            for every conversation in the retain index, removes the events its policy
 *                    no longer keeps, after storing the state at the cut as a snapshot, so the
 *                    state stays whole, and the arguments of tool calls still pending whose
 *                    events go (the calls database), so the state view keeps showing them. A
 *                    conversation with forks is left alone: each fork reads its versions from 1
 *
 * Deliberately not done: erasing a conversation that forks depend on (CS_ECONFLICT: erase the
 * forks first, the README says why), and retention on the parent's part of a fork's history
 * (each conversation's policy applies to its own events only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__Head Head;
typedef Convstore__V1__Event Event;

static int writable(cs_store *s, cs_error *err)
{
	return s->env.read_only ? cs_error_set(err, CS_EINVAL, "the store is open read-only")
				: CS_OK;
}

static int submit_event(cs_append_result *out, cs_store *s, enum cs_request_kind kind,
			const char *tenant, const char *conv, int64_t expected, Event *ev,
			cs_request *req, cs_error *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	int rc = writable(s, err);
	if (!rc)
		rc = cs_request_prepare_server(req, kind, &s->limits, tenant, conv, expected, ev,
					       err);
	return rc ? rc : cs_store_submit(out, s, req, err);
}

int cs_store_create(cs_append_result *out, cs_store *s, const char *tenant, const char *conv,
		    const Convstore__V1__ConversationCreated *spec, cs_error *err)
{
	Convstore__V1__ConversationCreated c = CONVSTORE__V1__CONVERSATION_CREATED__INIT;
	if (spec)
		c = *spec;
	Event ev = CONVSTORE__V1__EVENT__INIT;
	ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_CREATED;
	ev.conversation_created = &c;
	cs_request req;
	return submit_event(out, s, CS_REQ_CREATE, tenant, conv, CS_ANY_VERSION, &ev, &req, err);
}

int cs_store_update(cs_append_result *out, cs_store *s, const char *tenant, const char *conv,
		    int64_t expected_version, const Convstore__V1__ConversationUpdated *spec,
		    cs_error *err)
{
	Convstore__V1__ConversationUpdated u = CONVSTORE__V1__CONVERSATION_UPDATED__INIT;
	if (spec)
		u = *spec;
	Event ev = CONVSTORE__V1__EVENT__INIT;
	ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_UPDATED;
	ev.conversation_updated = &u;
	cs_request req;
	return submit_event(out, s, CS_REQ_UPDATE, tenant, conv, expected_version, &ev, &req, err);
}

int cs_store_fork(cs_append_result *out, cs_store *s, const char *tenant, const char *parent_id,
		  uint64_t at_version, const char *fork_id,
		  const Convstore__V1__ConversationForked *spec, cs_error *err)
{
	if (!parent_id || !cs_id_valid(parent_id))
		return cs_error_set(err, CS_EINVAL, "parent id \"%.64s\" is not a valid id",
				    parent_id ? parent_id : "");
	if (at_version == 0)
		return cs_error_set(err, CS_EINVAL, "a fork needs at_version 1 or more");
	Convstore__V1__ConversationForked f = CONVSTORE__V1__CONVERSATION_FORKED__INIT;
	if (spec)
		f = *spec;
	f.parent_id = (char *)parent_id;
	f.parent_version = at_version;
	Event ev = CONVSTORE__V1__EVENT__INIT;
	ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED;
	ev.conversation_forked = &f;
	cs_request req;
	if (out)
		memset(out, 0, sizeof(*out));
	int rc = writable(s, err);
	if (!rc)
		rc = cs_request_prepare_server(&req, CS_REQ_FORK, &s->limits, tenant, fork_id,
					       CS_ANY_VERSION, &ev, err);
	if (rc)
		return rc;
	req.parent_id = parent_id;
	req.at_version = at_version;
	return cs_store_submit(out, s, &req, err);
}

/* A request with no events: erase and sweep. */
static int submit_bare(cs_append_result *out, cs_store *s, cs_request *req, cs_error *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	int rc = writable(s, err);
	return rc ? rc : cs_store_submit(out, s, req, err);
}

int cs_store_erase(cs_append_result *out, cs_store *s, const char *tenant, const char *conv,
		   bool purge, cs_error *err)
{
	if (!tenant || !conv || !cs_id_valid(tenant) || !cs_id_valid(conv))
		return cs_error_set(err, CS_EINVAL, "invalid tenant or conversation id");
	cs_request req = {
	    .kind = CS_REQ_ERASE, .tenant = tenant, .conversation_id = conv, .purge = purge};
	return submit_bare(out, s, &req, err);
}

int cs_store_retention_sweep(uint64_t *removed, cs_store *s, int64_t now_seconds, cs_error *err)
{
	cs_request req = {.kind = CS_REQ_SWEEP, .now_seconds = now_seconds};
	if (removed)
		*removed = 0;
	int rc = submit_bare(NULL, s, &req, err);
	if (!rc && removed)
		*removed = req.removed;
	return rc;
}

/* ==== the writer's side =================================================================== */

/* A failure that concerns this request's conversation only (it is damaged, or gone): the
 * request fails with @err's message, the rest of the batch commits. */
static int fail_alone(cs_request *req, int rc, const cs_error *err)
{
	req->rc = rc;
	if (err)
		req->err = *err;
	return CS_OK;
}

/* Fail the request alone with @code and "conversation "<id>" <what>". */
static int answer(cs_request *req, int code, const char *id, const char *what)
{
	req->rc = cs_error_set(&req->err, code, "conversation \"%s\" %s", id, what);
	return CS_OK;
}

/* @stream's fork links, ordered by the fork's id. */
static int fork_list_read(Convstore__V1__ForkList *list, MDB_txn *txn, cs_store *s,
			  const cs_key *stream, cs_error *err)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, s->env.forks, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	MDB_val key = {stream->len, (void *)stream->b}, val;
	int res = CS_OK;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	     rc == 0 && key.mv_size > stream->len &&
	     memcmp(key.mv_data, stream->b, stream->len) == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		size_t idlen = key.mv_size - stream->len;
		if (val.mv_size != 8 || idlen > CS_MAX_ID_LEN) {
			res = cs_error_set(err, CS_ECORRUPT, "a fork link is damaged");
			break;
		}
		Convstore__V1__ForkRef **grown =
		    realloc(list->forks, (list->n_forks + 1) * sizeof(*grown));
		Convstore__V1__ForkRef *ref = grown ? malloc(sizeof(*ref)) : NULL;
		char *id = ref ? strndup((char *)key.mv_data + stream->len, idlen) : NULL;
		if (grown)
			list->forks = grown;
		if (!id) {
			free(ref);
			res = cs_error_set(err, CS_ENOMEM, "out of memory for a fork list");
			break;
		}
		convstore__v1__fork_ref__init(ref);
		ref->id = id;
		ref->at_version = cs_get_be64(val.mv_data);
		list->forks[list->n_forks++] = ref;
	}
	mdb_cursor_close(cur);
	if (!res && rc && rc != MDB_NOTFOUND)
		res = cs_lmdb_error(err, rc, "forks");
	return res;
}

/* The forks of @stream, for callers that only look at them. */
static int forks_of(Convstore__V1__ForkList *list, MDB_txn *txn, cs_store *s, const cs_key *stream,
		    cs_error *err)
{
	convstore__v1__fork_list__init(list);
	return fork_list_read(list, txn, s, stream, err);
}

static void forks_deinit(Convstore__V1__ForkList *list)
{
	for (size_t i = 0; i < list->n_forks; i++)
		protobuf_c_message_free_unpacked(&list->forks[i]->base, NULL);
	free(list->forks);
}

/* The fork's checks; 1 when the request was answered (req->rc), 0 to go on. */
static int fork_admit(cs_batch_ctx *ctx, cs_request *req, const Head *parent, const cs_key *child,
		      cs_error *err)
{
	if (req->at_version > parent->version) {
		req->rc = cs_error_set(&req->err, CS_EINVAL,
				       "at_version %llu is beyond \"%s\" at version %llu",
				       (unsigned long long)req->at_version, req->parent_id,
				       (unsigned long long)parent->version);
		return 1;
	}
	cs_history hist;
	int rc = cs_history_open(&hist, ctx->store, ctx->txn, parent, err);
	if (rc)
		return rc;
	if (hist.n > CS_MAX_FORK_DEPTH) { /* the fork would add one more segment */
		answer(req, CS_EINVAL, req->parent_id, "is too deep in a chain of forks");
		return 1;
	}
	cs_key hk;
	cs_key_head(&hk, child);
	MDB_val hkey = {hk.len, hk.b}, val;
	int mrc = mdb_get(ctx->txn, ctx->store->env.streams, &hkey, &val);
	if (mrc == 0) {
		answer(req, CS_ECONFLICT, req->conversation_id, "already exists");
		return 1;
	}
	if (mrc != MDB_NOTFOUND)
		return cs_lmdb_error(err, mrc, "head");
	bool tomb;
	if ((rc = cs_tombstone_get(&tomb, ctx->txn, ctx->store, child, err)))
		return rc;
	if (tomb) {
		answer(req, CS_EGONE, req->conversation_id, "was erased");
		return 1;
	}
	return 0;
}

int cs_fork_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err)
{
	cs_store *s = ctx->store;
	cs_key pstream, child;
	cs_key_stream(&pstream, req->tenant, req->parent_id);
	cs_key_stream(&child, req->tenant, req->conversation_id);
	Head *parent = NULL, *state = NULL;
	int rc = cs_head_load(&parent, s, ctx->txn, &pstream, err);
	if (rc == CS_ENOTFOUND)
		return answer(req, CS_ENOTFOUND, req->parent_id, "not found");
	if (rc == CS_ECORRUPT || rc == CS_EGONE) /* this request fails; the batch goes on */
		return fail_alone(req, rc, err);
	if (rc)
		return rc;
	rc = fork_admit(ctx, req, parent, &child, err);
	if (rc == 0) {
		/* The fork starts as the parent was at the fork point, under its own name. */
		rc = cs_head_at(&state, s, ctx->txn, parent, req->at_version, err);
		if (rc == CS_EGONE || rc == CS_ECORRUPT) {
			fail_alone(req, rc, err);
			rc = 1;
		}
	}
	if (rc == 0)
		rc = cs_head_rename(state, req->conversation_id, err);
	if (rc == 0)
		rc = cs_events_commit(ctx, req, state, true, err);
	if (rc == 0 && req->rc == CS_OK) {
		unsigned char at[8];
		cs_put_be64(at, req->at_version);
		cs_key fk;
		cs_key_fork(&fk, &pstream, req->conversation_id);
		MDB_val key = {fk.len, fk.b}, val = {8, at};
		int mrc = mdb_put(ctx->txn, s->env.forks, &key, &val, 0);
		rc = mrc ? cs_lmdb_error(err, mrc, "fork link") : CS_OK;
	}
	cs_head_free(parent);
	cs_head_free(state);
	return rc < 0 ? rc : CS_OK;
}

/* ---- erase ------------------------------------------------------------------------------- */

/* Delete the keys of @dbi that are @stream ++ [version BE] with version < @below (every key
 * that starts with @stream when @below is UINT64_MAX and @any_suffix). */
static int delete_from(MDB_txn *txn, MDB_dbi dbi, const cs_key *stream, uint64_t below,
		       bool any_suffix, cs_error *err)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	MDB_val key = {stream->len, (void *)stream->b}, val;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	     rc == 0 && key.mv_size >= stream->len &&
	     memcmp(key.mv_data, stream->b, stream->len) == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) { /* after a delete: the next one */
		if (!any_suffix &&
		    (key.mv_size != stream->len + 8 ||
		     cs_get_be64((unsigned char *)key.mv_data + stream->len) >= below))
			break;
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
	}
	mdb_cursor_close(cur);
	return rc && rc != MDB_NOTFOUND ? cs_lmdb_error(err, rc, "delete") : CS_OK;
}

/* Delete every key of @dbi that starts with @prefix. */
static int delete_prefix(MDB_txn *txn, MDB_dbi dbi, const cs_key *prefix, cs_error *err)
{
	return delete_from(txn, dbi, prefix, UINT64_MAX, true, err);
}

/* Delete @stream's records keyed by version below @below (snapshots). */
static int delete_range(MDB_txn *txn, MDB_dbi dbi, const cs_key *stream, uint64_t below,
			cs_error *err)
{
	return delete_from(txn, dbi, stream, below, false, err);
}

/* Remove own events @lo..@hi of @stream: the records, their index entries, their usage. */
static int drop_events(cs_batch_ctx *ctx, const cs_key *stream, uint64_t lo, uint64_t hi,
		       cs_error *err)
{
	cs_store *s = ctx->store;
	for (uint64_t v = lo; v <= hi; v++) {
		cs_key k;
		cs_key_at(&k, stream, v);
		MDB_val key = {k.len, k.b}, val;
		int rc = mdb_get(ctx->txn, s->env.streams, &key, &val);
		if (rc)
			return rc == MDB_NOTFOUND
				   ? cs_error_set(err, CS_ECORRUPT, "version %llu is missing",
						  (unsigned long long)v)
				   : cs_lmdb_error(err, rc, "index");
		uint64_t pos = val.mv_size == 8 ? cs_get_be64(val.mv_data) : 0;
		Event *ev;
		if ((rc = cs_event_load(&ev, s, ctx->txn, pos, err)))
			return rc == CS_ENOTFOUND
				   ? cs_error_set(err, CS_ECORRUPT, "version %llu points nowhere",
						  (unsigned long long)v)
				   : rc;
		rc = cs_usage_apply(ctx->txn, s, ev, -1, err);
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		cs_key pk;
		cs_key_position(&pk, pos);
		if (!rc)
			rc = cs_view_del(ctx->txn, s->env.events, &pk, err);
		if (!rc)
			rc = cs_view_del(ctx->txn, s->env.streams, &k, err);
		if (rc)
			return rc;
	}
	return CS_OK;
}

/* Append the content-free conversation_deleted event to the global feed (no stream). */
static int feed_deleted(cs_batch_ctx *ctx, cs_request *req, cs_error *err)
{
	char id[37];
	int rc = cs_uuid_v4(id, err);
	if (rc)
		return rc;
	Convstore__V1__ConversationDeleted d = CONVSTORE__V1__CONVERSATION_DELETED__INIT;
	Event ev = CONVSTORE__V1__EVENT__INIT;
	d.purged = req->purge;
	ev.id = id;
	ev.tenant = (char *)req->tenant;
	ev.conversation_id = (char *)req->conversation_id;
	ev.type = "conversation_deleted";
	ev.position = ctx->next_position;
	ev.recorded_at = &ctx->now;
	ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED;
	ev.conversation_deleted = &d;
	cs_key k;
	cs_key_position(&k, ev.position);
	if ((rc = cs_view_put_msg(ctx->txn, ctx->store->env.events, &k, &ev.base, err)))
		return rc;
	req->result.first_position = req->result.last_position = ctx->next_position++;
	return CS_OK;
}

static int erase_views(cs_batch_ctx *ctx, cs_request *req, const Head *h, const cs_key *stream,
		       cs_error *err)
{
	cs_store *s = ctx->store;
	int rc = delete_prefix(ctx->txn, s->env.idem, stream, err);
	if (!rc)
		rc = delete_prefix(ctx->txn, s->env.snaps, stream, err);
	if (!rc)
		rc = delete_prefix(ctx->txn, s->env.calls, stream, err);
	if (!rc)
		rc = cs_list_move(ctx->txn, s, req->tenant, req->conversation_id, h->last_position,
				  0, err);
	if (!rc)
		rc = cs_retain_sync(ctx->txn, s, stream, NULL, err);
	if (!rc && h->parent) {
		cs_key ps, fk;
		cs_key_stream(&ps, req->tenant, h->parent->id);
		cs_key_fork(&fk, &ps, req->conversation_id);
		rc = cs_view_del(ctx->txn, s->env.forks, &fk, err);
	}
	cs_key hk;
	cs_key_head(&hk, stream);
	return rc ? rc : cs_view_del(ctx->txn, s->env.streams, &hk, err);
}

/* No head: a tombstone to purge or report, or nothing at all. */
static int erase_missing(cs_batch_ctx *ctx, cs_request *req, const cs_key *stream, cs_error *err)
{
	bool tomb;
	int rc = cs_tombstone_get(&tomb, ctx->txn, ctx->store, stream, err);
	if (rc)
		return rc;
	if (!tomb)
		return answer(req, CS_ENOTFOUND, req->conversation_id, "not found");
	if (!req->purge)
		return answer(req, CS_EGONE, req->conversation_id, "was already erased");
	return cs_view_del(ctx->txn, ctx->store->env.tombs, stream, err);
}

int cs_erase_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err)
{
	cs_store *s = ctx->store;
	cs_key stream;
	cs_key_stream(&stream, req->tenant, req->conversation_id);
	Head *h;
	int rc = cs_head_load(&h, s, ctx->txn, &stream, err);
	if (rc == CS_ENOTFOUND)
		return erase_missing(ctx, req, &stream, err);
	if (rc == CS_ECORRUPT) /* rebuild repairs it; the rest of the batch goes on */
		return fail_alone(req, rc, err);
	if (rc)
		return rc;
	Convstore__V1__ForkList forks;
	rc = forks_of(&forks, ctx->txn, s, &stream, err);
	if (!rc && forks.n_forks)
		req->rc =
		    cs_error_set(&req->err, CS_ECONFLICT,
				 "%zu forks depend on \"%s\" (\"%s\" first): erase them first",
				 forks.n_forks, req->conversation_id, forks.forks[0]->id);
	forks_deinit(&forks);
	if (rc || req->rc) {
		cs_head_free(h);
		return rc;
	}
	cs_history hist;
	if (!rc)
		rc = cs_history_open(&hist, s, ctx->txn, h, err);
	if (!rc) {
		const cs_segment *own = &hist.seg[hist.n - 1];
		rc = drop_events(ctx, &stream, own->held, own->hi, err);
	}
	if (!rc)
		rc = erase_views(ctx, req, h, &stream, err);
	if (!rc)
		rc = feed_deleted(ctx, req, err);
	if (!rc && !req->purge) {
		unsigned char pos[8];
		cs_put_be64(pos, req->result.last_position);
		MDB_val key = {stream.len, stream.b}, val = {8, pos};
		int mrc = mdb_put(ctx->txn, s->env.tombs, &key, &val, 0);
		rc = mrc ? cs_lmdb_error(err, mrc, "tombstone") : CS_OK;
	}
	if (!rc)
		ctx->conversations--;
	cs_head_free(h);
	return rc;
}

/* ---- retention --------------------------------------------------------------------------- */

typedef struct age_scan {
	int64_t cutoff;	   /* events recorded before this second go */
	uint64_t last_old; /* the newest version recorded before the cutoff */
} age_scan;

static int age_one(void *ctx, Event *ev, cs_error *err)
{
	(void)err;
	age_scan *a = ctx;
	if (ev->recorded_at && ev->recorded_at->seconds < a->cutoff) {
		a->last_old = ev->version;
		return CS_OK;
	}
	return 1; /* recorded_at never decreases along a stream: stop at the first young one */
}

/* The newest version retention removes from @h's own events (0: none). */
static int retention_cut(uint64_t *cut, cs_batch_ctx *ctx, const Head *h, const cs_key *stream,
			 uint64_t own_lo, int64_t now, cs_error *err)
{
	const Convstore__V1__Retention *r = h->retention;
	*cut = 0;
	if (r->max_events && h->version > r->max_events)
		*cut = h->version - r->max_events;
	if (r->max_age_seconds && own_lo <= h->version) {
		age_scan a = {.cutoff = now - (int64_t)r->max_age_seconds, .last_old = 0};
		int rc = cs_stream_walk(ctx->store, ctx->txn, stream, own_lo, h->version, age_one,
					&a, err);
		if (rc < 0)
			return rc;
		*cut = a.last_old > *cut ? a.last_old : *cut;
	}
	/* A fork reads this conversation's versions 1..at_version, and retention removes the
	 * oldest first: while any fork exists, nothing can go. */
	Convstore__V1__ForkList forks;
	int rc = forks_of(&forks, ctx->txn, ctx->store, stream, err);
	if (!rc && forks.n_forks)
		*cut = 0;
	forks_deinit(&forks);
	return rc;
}

/* Forget the ids of @stream's events at versions up to @cut (they are gone). */
static int idem_drop_upto(MDB_txn *txn, cs_store *s, const cs_key *stream, uint64_t cut,
			  cs_error *err)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, s->env.idem, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	MDB_val key = {stream->len, (void *)stream->b}, val;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size > stream->len &&
	       memcmp(key.mv_data, stream->b, stream->len) == 0) {
		bool old = val.mv_size == 8 && cs_get_be64(val.mv_data) <= cut;
		if (old && (rc = mdb_cursor_del(cur, 0)))
			break;
		/* After mdb_cursor_del the cursor already sits on the next entry, and MDB_NEXT
		 * returns that one without moving (MDB_GET_CURRENT fails at the end). */
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc && rc != MDB_NOTFOUND ? cs_lmdb_error(err, rc, "ids") : CS_OK;
}

/* Keep what the state view shows of the calls asked at @version that are still pending, before
 * retention removes that event: one RetainedCalls record at [stream][version]. */
static int retain_calls_of(cs_batch_ctx *ctx, const Head *h, const cs_key *stream, uint64_t version,
			   cs_error *err)
{
	Event *ev;
	uint64_t pos;
	int rc = cs_index_get(&pos, ctx->store, ctx->txn, h->tenant, h->id, version, err);
	if (!rc)
		rc = cs_event_load(&ev, ctx->store, ctx->txn, pos, err);
	if (rc)
		return rc;
	Convstore__V1__RetainedCalls kept = CONVSTORE__V1__RETAINED_CALLS__INIT;
	Convstore__V1__PendingToolCall *calls[CS_MAX_TOOL_CALLS], one[CS_MAX_TOOL_CALLS];
	for (size_t i = 0; i < h->n_pending_tool_calls && kept.n_calls < CS_MAX_TOOL_CALLS; i++) {
		const Convstore__V1__PendingToolCall *p = h->pending_tool_calls[i];
		if (p->version != version)
			continue;
		one[kept.n_calls] = *p;
		one[kept.n_calls].arguments = (char *)cs_call_arguments(ev, p->id);
		calls[kept.n_calls] = &one[kept.n_calls];
		kept.n_calls++;
	}
	kept.calls = calls;
	cs_key k;
	cs_key_at(&k, stream, version);
	rc = cs_view_put_msg(ctx->txn, ctx->store->env.calls, &k, &kept.base, err);
	protobuf_c_message_free_unpacked(&ev->base, NULL);
	return rc;
}

static int retain_calls(cs_batch_ctx *ctx, const Head *h, const cs_key *stream, uint64_t own_lo,
			uint64_t cut, cs_error *err)
{
	int rc = CS_OK;
	for (size_t i = 0; i < h->n_pending_tool_calls && !rc; i++) {
		uint64_t v = h->pending_tool_calls[i]->version;
		bool first = true; /* one record per version: skip a version already done */
		for (size_t j = 0; j < i && first; j++)
			first = h->pending_tool_calls[j]->version != v;
		if (first && v >= own_lo && v <= cut)
			rc = retain_calls_of(ctx, h, stream, v, err);
	}
	return rc;
}

/* Remove @h's own versions own_lo..cut, keeping the state at cut as the base snapshot. */
static int truncate_at(cs_batch_ctx *ctx, Head *h, const cs_key *stream, uint64_t own_lo,
		       uint64_t cut, cs_error *err)
{
	cs_store *s = ctx->store;
	Head *base;
	int rc = cs_head_at(&base, s, ctx->txn, h, cut, err);
	if (rc)
		return rc;
	rc = cs_snapshot_put(ctx->txn, s, stream, base, err);
	/* Every call pending at some version after the cut that was asked at or before it is
	 * pending in the state at the cut. */
	if (!rc)
		rc = retain_calls(ctx, base, stream, own_lo, cut, err);
	cs_head_free(base);
	if (!rc)
		rc = drop_events(ctx, stream, own_lo, cut, err);
	/* Older snapshots (at whatever cadence wrote them) and the ids of removed events go too. */
	if (!rc)
		rc = delete_range(ctx->txn, s->env.snaps, stream, cut, err);
	if (!rc)
		rc = idem_drop_upto(ctx->txn, s, stream, cut, err);
	if (!rc) {
		h->first_version = cut + 1;
		cs_key hk;
		cs_key_head(&hk, stream);
		rc = cs_view_put_msg(ctx->txn, s->env.streams, &hk, &h->base, err);
	}
	return rc;
}

static int sweep_one(cs_batch_ctx *ctx, cs_request *req, const MDB_val *stream_key, cs_error *err)
{
	cs_key stream = {.len = stream_key->mv_size};
	if (stream.len > CS_STREAM_KEY_MAX)
		return cs_error_set(err, CS_ECORRUPT, "a retain entry is damaged");
	memcpy(stream.b, stream_key->mv_data, stream.len);
	Head *h;
	int rc = cs_head_load(&h, ctx->store, ctx->txn, &stream, err);
	/* A damaged conversation (or a retain entry without one) is left for verify and rebuild
	 * to find: it must not stop retention for every other conversation. */
	if (rc == CS_ENOTFOUND || rc == CS_ECORRUPT)
		return CS_OK;
	if (rc)
		return rc;
	uint64_t own_lo = cs_head_own_first(h), cut = 0;
	int64_t now = req->now_seconds ? req->now_seconds : ctx->now.seconds;
	if (h->retention)
		rc = retention_cut(&cut, ctx, h, &stream, own_lo, now, err);
	if (!rc && cut >= own_lo) {
		rc = truncate_at(ctx, h, &stream, own_lo, cut, err);
		req->removed += cut - own_lo + 1;
	}
	cs_head_free(h);
	return rc;
}

int cs_sweep_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err)
{
	req->removed = 0;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(ctx->txn, ctx->store->env.retain, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	MDB_val key, val;
	int mrc;
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); mrc == 0 && !rc;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
		rc = sweep_one(ctx, req, &key, err);
	mdb_cursor_close(cur);
	if (!rc && mrc != MDB_NOTFOUND)
		rc = cs_lmdb_error(err, mrc, "retain");
	return rc;
}

/* ---- reads ------------------------------------------------------------------------------- */

int cs_store_forks(Convstore__V1__ForkList **out, cs_store *s, const char *tenant, const char *conv,
		   cs_error *err)
{
	*out = NULL;
	MDB_txn *txn;
	Head *h;
	int rc = cs_head_read(&txn, &h, s, tenant, conv, err);
	if (rc)
		return rc;
	cs_head_free(h);
	Convstore__V1__ForkList *list = malloc(sizeof(*list));
	if (!list)
		rc = cs_error_set(err, CS_ENOMEM, "out of memory for a fork list");
	else
		convstore__v1__fork_list__init(list);
	if (!rc) {
		cs_key stream;
		cs_key_stream(&stream, tenant, conv);
		rc = fork_list_read(list, txn, s, &stream, err);
	}
	cs_txn_abort(&s->env, txn);
	if (rc && list)
		protobuf_c_message_free_unpacked(&list->base, NULL);
	else if (!rc)
		*out = list;
	return rc;
}
