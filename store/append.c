/*
 * append.c - one append request, in the three separable steps DESIGN.md asks for:
 *
 *   1. prepare (caller's thread, no transaction): stateless validation, the stored copy of each
 *      event (tenant, conversation, type and id filled in), packing, deflating and CRC.
 *   2. decide (writer, inside the batch transaction): idempotency by event id, the expected
 *      version, and the checks that need the head (reduce.c), folding each event into the head.
 *   3. persist (writer, same transaction): the event records, the stream index, the id index
 *      (client-sent ids only: an id the server generated was never sent, so no retry can
 *      carry it, and leaving it out saves a randomly placed page write per event) and the head.
 *
 * A request that fails in step 2 writes nothing and fails alone (req->rc); the transaction and
 * the other requests in it go on. A failure in step 3 (map full, I/O) fails the transaction,
 * and commit.c decides what to retry.
 *
 * Step 3 adds to each event's body a tail holding what only the writer knows (version,
 * position, recorded_at) as extra protobuf fields; see record.c for why that is sound.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__Event Event;

static void snaps_clear(cs_request *req)
{
	for (size_t i = 0; i < req->n_snaps; i++)
		free(req->snaps[i].rec);
	free(req->snaps);
	req->snaps = NULL;
	req->n_snaps = 0;
}

void cs_request_deinit(cs_request *req)
{
	snaps_clear(req);
	if (!req->events)
		return;
	for (size_t i = 0; i < req->n; i++)
		cs_body_deinit(&req->events[i].body);
	free(req->events);
	req->events = NULL;
}

static int fail_at(cs_error *err, size_t index, int rc)
{
	if (err)
		err->index = (int)index;
	return rc;
}

static int prepare_one(cs_prepared *p, const cs_limits *lim, const char *tenant,
		       const char *conversation_id, const Event *src, enum cs_request_kind kind,
		       cs_error *err)
{
	/* An applied event (apply.c) is checked by the rules of whoever first wrote it. */
	bool server = kind == CS_REQ_APPLY ? cs_event_is_server_only(src) : kind != CS_REQ_APPEND;
	int rc =
	    server ? cs_server_event_check(src, err) : cs_event_check(src, conversation_id, err);
	if (rc)
		return rc;
	if (kind == CS_REQ_APPLY && !(src->id && *src->id)) /* apply.c: replayed events have ids */
		return cs_error_set(err, CS_EINVAL, "an applied event needs its id");
	p->ev = *src;
	p->ev.tenant = (char *)tenant;
	p->ev.conversation_id = (char *)conversation_id;
	p->ev.type = (char *)cs_event_type_name(src);
	if (src->id && *src->id) {
		strcpy(p->id, src->id); /* cs_event_check bounded it to CS_MAX_ID_LEN */
	} else if ((rc = cs_uuid_v4(p->id, err))) {
		return rc;
	} else {
		p->generated = true;
	}
	p->ev.id = p->id;

	return cs_body_pack(&p->body, &p->ev.base, lim->max_event_bytes, err);
}

static int cmp_prepared_id(const void *a, const void *b)
{
	return strcmp((*(cs_prepared *const *)a)->id, (*(cs_prepared *const *)b)->id);
}

/* Ids must be distinct within a request (sort, then compare neighbours: n can be 10,000). */
static int check_distinct_ids(cs_request *req, cs_error *err)
{
	cs_prepared **order = malloc(req->n * sizeof(*order));
	if (!order)
		return cs_error_set(err, CS_ENOMEM, "out of memory checking ids");
	for (size_t i = 0; i < req->n; i++)
		order[i] = &req->events[i];
	qsort(order, req->n, sizeof(*order), cmp_prepared_id);
	int rc = CS_OK;
	for (size_t i = 1; i < req->n && !rc; i++) {
		if (strcmp(order[i - 1]->id, order[i]->id) == 0) {
			cs_prepared *later = order[i] > order[i - 1] ? order[i] : order[i - 1];
			rc = fail_at(err, (size_t)(later - req->events),
				     cs_error_set(err, CS_EINVAL, "event id \"%s\" appears twice",
						  later->id));
		}
	}
	free(order);
	return rc;
}

static int prepare_common(cs_request *req, const cs_limits *lim, const char *tenant,
			  const char *conversation_id, int64_t expected_version,
			  Event *const *events, size_t n, cs_error *err);

int cs_request_prepare(cs_request *req, const cs_limits *lim, const char *tenant,
		       const char *conversation_id, int64_t expected_version, Event *const *events,
		       size_t n, cs_error *err)
{
	memset(req, 0, sizeof(*req));
	return prepare_common(req, lim, tenant, conversation_id, expected_version, events, n, err);
}

static int prepare_common(cs_request *req, const cs_limits *lim, const char *tenant,
			  const char *conversation_id, int64_t expected_version,
			  Event *const *events, size_t n, cs_error *err)
{
	if (!tenant || !cs_id_valid(tenant))
		return cs_error_set(err, CS_EINVAL, "tenant \"%.64s\" is not a valid id",
				    tenant ? tenant : "");
	if (!conversation_id || !cs_id_valid(conversation_id))
		return cs_error_set(err, CS_EINVAL,
				    "conversation id \"%.64s\" must be 1-128 characters of "
				    "A-Z a-z 0-9 . _ : -",
				    conversation_id ? conversation_id : "");
	if (n == 0 || !events)
		return cs_error_set(err, CS_EINVAL, "an append needs at least one event");
	if (n > lim->max_request_events)
		return cs_error_set(err, CS_ETOOBIG, "%zu events in one request, at most %zu", n,
				    lim->max_request_events);
	if (expected_version < CS_ANY_VERSION)
		return cs_error_set(err, CS_EINVAL, "expected version %lld is negative",
				    (long long)expected_version);
	req->tenant = tenant;
	req->conversation_id = conversation_id;
	req->expected_version = expected_version;
	req->events = calloc(n, sizeof(*req->events));
	if (!req->events)
		return cs_error_set(err, CS_ENOMEM, "out of memory for %zu events", n);
	req->n = n;
	for (size_t i = 0; i < n; i++) {
		if (!events[i]) {
			cs_request_deinit(req);
			return fail_at(err, i, cs_error_set(err, CS_EINVAL, "event is NULL"));
		}
		int rc = prepare_one(&req->events[i], lim, tenant, conversation_id, events[i],
				     req->kind, err);
		if (rc) {
			cs_request_deinit(req);
			return fail_at(err, i, rc);
		}
		if (events[i]->id && *events[i]->id)
			req->client_ids = true;
	}
	int rc = n > 1 ? check_distinct_ids(req, err) : CS_OK;
	if (rc)
		cs_request_deinit(req);
	return rc;
}

int cs_request_prepare_server(cs_request *req, enum cs_request_kind kind, const cs_limits *lim,
			      const char *tenant, const char *conversation_id,
			      int64_t expected_version, Event *ev, cs_error *err)
{
	memset(req, 0, sizeof(*req));
	req->kind = kind; /* prepare_one checks a server event by the server's rules */
	Event *one[] = {ev};
	return prepare_common(req, lim, tenant, conversation_id, expected_version, one, 1, err);
}

int cs_request_prepare_apply(cs_request *req, const cs_limits *lim, const char *tenant,
			     const char *conversation_id, Event *const *events, size_t n,
			     cs_error *err)
{
	memset(req, 0, sizeof(*req));
	req->kind = CS_REQ_APPLY;
	return prepare_common(req, lim, tenant, conversation_id, CS_ANY_VERSION, events, n, err);
}

/* ---- the writer's side ------------------------------------------------------------------- */

static size_t put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

/* The tail: Event fields 3 (version), 4 (position) and 5 (recorded_at: Timestamp seconds=1,
 * nanos=2), in protobuf wire format. At most 2 + 10 + 2 + 10 + 2 + 11 + 6 bytes. */
#define CS_TAIL_MAX 48
static size_t encode_tail(unsigned char *t, uint64_t version, uint64_t position,
			  const Convstore__V1__Timestamp *at)
{
	unsigned char ts[24];
	size_t tn = 0;
	if (at->seconds) {
		ts[tn++] = 0x08;
		tn += put_varint(ts + tn, (uint64_t)at->seconds);
	}
	if (at->nanos) {
		ts[tn++] = 0x10;
		tn += put_varint(ts + tn, (uint64_t)(int64_t)at->nanos);
	}
	size_t n = 0;
	t[n++] = 0x18;
	n += put_varint(t + n, version);
	t[n++] = 0x20;
	n += put_varint(t + n, position);
	t[n++] = 0x2a;
	t[n++] = (unsigned char)tn;
	memcpy(t + n, ts, tn);
	return n + tn;
}

static int put(cs_batch_ctx *ctx, MDB_dbi dbi, const cs_key *k, MDB_val *v, unsigned flags,
	       cs_error *err)
{
	MDB_val key = {k->len, (void *)k->b};
	int rc = mdb_put(ctx->txn, dbi, &key, v, flags);
	return rc ? cs_lmdb_error(err, rc, "put") : CS_OK;
}

static int get_u64(cs_batch_ctx *ctx, MDB_dbi dbi, const cs_key *k, uint64_t *out, cs_error *err)
{
	MDB_val key = {k->len, (void *)k->b}, val;
	int rc = mdb_get(ctx->txn, dbi, &key, &val);
	if (rc)
		return cs_lmdb_error(err, rc, "get");
	if (val.mv_size != 8)
		return cs_error_set(err, CS_ECORRUPT, "index value of %zu bytes, expected 8",
				    val.mv_size);
	*out = cs_get_be64(val.mv_data);
	return CS_OK;
}

/* Idempotency: every id already stored -> the original result; some -> conflict; none -> go on.
 * Returns 1 when the request was answered here, 0 to go on, < 0 on a transaction failure. */
static int check_replay(cs_batch_ctx *ctx, cs_request *req, uint64_t current, cs_error *err)
{
	if (!req->client_ids) /* fresh UUIDs cannot be stored already */
		return 0;
	size_t found = 0;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (size_t i = 0; i < req->n; i++) {
		cs_key k;
		uint64_t v;
		if (req->events[i].generated)
			continue;
		cs_key_event_id(&k, req->tenant, req->conversation_id, req->events[i].id);
		int rc = get_u64(ctx, ctx->store->env.idem, &k, &v, err);
		if (rc == CS_ENOTFOUND)
			continue;
		if (rc)
			return rc;
		found++;
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	if (found == 0)
		return 0;
	if (found < req->n) {
		req->rc =
		    cs_error_set(&req->err, CS_ECONFLICT,
				 "%zu of the %zu event ids are already stored", found, req->n);
		req->err.current_version = current;
		return 1;
	}
	cs_key k;
	cs_append_result *r = &req->result;
	r->first_version = lo;
	r->last_version = hi;
	r->replayed = true;
	cs_key_version(&k, req->tenant, req->conversation_id, lo);
	int rc = get_u64(ctx, ctx->store->env.streams, &k, &r->first_position, err);
	cs_key_version(&k, req->tenant, req->conversation_id, hi);
	if (!rc)
		rc = get_u64(ctx, ctx->store->env.streams, &k, &r->last_position, err);
	return rc ? rc : 1;
}

/* A snapshot of @head as it is now, kept on the request until persist. */
static int snap_take(cs_request *req, const Convstore__V1__Head *head, cs_error *err)
{
	cs_snap *grown = realloc(req->snaps, (req->n_snaps + 1) * sizeof(*grown));
	if (!grown)
		return cs_error_set(err, CS_ENOMEM, "out of memory for a snapshot");
	req->snaps = grown;
	cs_snap *sn = &grown[req->n_snaps];
	int rc = cs_snapshot_pack(&sn->rec, &sn->len, head, err);
	if (rc)
		return rc;
	sn->version = head->version;
	req->n_snaps++;
	return CS_OK;
}

/* Step 2 for each event: number it, check it against the head, fold it in. */
static int decide(cs_batch_ctx *ctx, cs_request *req, Convstore__V1__Head *head, cs_error *err)
{
	uint64_t v0 = head->version, position = ctx->next_position;
	for (size_t i = 0; i < req->n; i++) {
		Event *ev = &req->events[i].ev;
		ev->version = v0 + 1 + i;
		ev->recorded_at = &ctx->now;
		int rc = CS_OK;
		if (req->kind ==
		    CS_REQ_APPLY) { /* apply.c: the event keeps its version and time, */
			ev->recorded_at = &req->events[i].at;
			/* and its position while that is still ahead of this store's */
			if (req->events[i].position > position)
				position = req->events[i].position;
			if (ev->version != req->events[i].version)
				rc = cs_error_set(&req->err, CS_ECONFLICT,
						  "version %llu of \"%s\" comes after version %llu",
						  (unsigned long long)req->events[i].version,
						  req->conversation_id,
						  (unsigned long long)(ev->version - 1));
		}
		ev->position = position++;
		if (!rc)
			rc = cs_head_check(head, ev, &req->err);
		if (rc) {
			req->err.index = (int)i;
			req->rc = rc;
			return CS_OK;
		}
		if ((rc = cs_head_apply(head, ev, err)))
			return rc;
		if (cs_snapshot_due(ctx->store, ev->version) && (rc = snap_take(req, head, err)))
			return rc;
	}
	return CS_OK;
}

static int persist_event(cs_batch_ctx *ctx, cs_request *req, cs_prepared *p, cs_error *err)
{
	cs_env *e = &ctx->store->env;
	unsigned char tail[CS_TAIL_MAX], num[8];
	size_t tail_len = encode_tail(tail, p->ev.version, p->ev.position, p->ev.recorded_at);
	cs_key k;
	MDB_val v = {cs_record_size(&p->body, tail_len), NULL};

	cs_key_position(&k, p->ev.position);
	int rc = put(ctx, e->events, &k, &v, MDB_APPEND | MDB_RESERVE, err);
	if (rc)
		return rc;
	cs_record_write(v.mv_data, &p->body, tail, tail_len);

	cs_put_be64(num, p->ev.position);
	v = (MDB_val){8, num};
	cs_key_version(&k, req->tenant, req->conversation_id, p->ev.version);
	if ((rc = put(ctx, e->streams, &k, &v, 0, err)))
		return rc;
	/* The views that follow single events: usage rollups (model responses only). */
	if ((rc = cs_usage_apply(ctx->txn, ctx->store, &p->ev, 1, err)))
		return rc;
	if (p->generated) /* no client can retry with an id it never sent */
		return CS_OK;
	cs_put_be64(num, p->ev.version);
	cs_key_event_id(&k, req->tenant, req->conversation_id, p->id);
	return put(ctx, e->idem, &k, &v, 0, err);
}

/* Step 3: the events, the head record (already packed by the caller), and the views that
 * follow the head: snapshots, the list entry, the retention index. */
static int persist(cs_batch_ctx *ctx, cs_request *req, const Convstore__V1__Head *head,
		   MDB_val *head_rec, const cs_key *stream, uint64_t old_position, cs_error *err)
{
	cs_store *s = ctx->store;
	bool conversation_event = false;
	for (size_t i = 0; i < req->n; i++) {
		int rc = persist_event(ctx, req, &req->events[i], err);
		if (rc)
			return rc;
		conversation_event |= cs_event_is_server_only(&req->events[i].ev);
	}
	cs_key hk;
	cs_key_head(&hk, stream);
	int rc = put(ctx, s->env.streams, &hk, head_rec, 0, err);
	for (size_t i = 0; i < req->n_snaps && !rc; i++) {
		MDB_val v = {req->snaps[i].len, req->snaps[i].rec};
		cs_key_at(&hk, stream, req->snaps[i].version);
		rc = put(ctx, s->env.snaps, &hk, &v, 0, err);
	}
	if (!rc)
		rc = cs_list_move(ctx->txn, s, req->tenant, req->conversation_id, old_position,
				  req->events[req->n - 1].ev.position, err);
	if (!rc && conversation_event) /* only they can change the policy */
		rc = cs_retain_sync(ctx->txn, s, stream, head, err);
	return rc;
}

/* Pack the folded head; one that would outgrow CS_HEAD_MAX fails the request (not the batch). */
static int pack_head(MDB_val *out, cs_request *req, const Convstore__V1__Head *head, cs_error *err)
{
	unsigned char *rec;
	size_t len;
	int rc = cs_record_pack(&rec, &len, &head->base, err);
	if (rc)
		return rc;
	if (len > CS_HEAD_MAX) {
		free(rec);
		req->rc = cs_error_set(&req->err, CS_ETOOBIG,
				       "the conversation's head would grow to %zu bytes, over %u",
				       len, CS_HEAD_MAX);
		return CS_OK;
	}
	*out = (MDB_val){len, rec};
	return CS_OK;
}

int cs_tombstone_get(bool *out, MDB_txn *txn, cs_store *s, const cs_key *stream, cs_error *err)
{
	MDB_val key = {stream->len, (void *)stream->b}, val;
	int rc = mdb_get(txn, s->env.tombs, &key, &val);
	*out = rc == 0;
	return rc && rc != MDB_NOTFOUND ? cs_lmdb_error(err, rc, "tombstone") : CS_OK;
}

/* The request-level checks before folding: existence by kind, tombstones, idempotency and the
 * expected version. 1: answered (req->rc says how), 0: go on, < 0: transaction failure. */
static int admit(cs_batch_ctx *ctx, cs_request *req, const cs_key *stream, uint64_t current,
		 bool is_new, cs_error *err)
{
	const char *conv = req->conversation_id;
	if (is_new) {
		bool tomb;
		int rc = cs_tombstone_get(&tomb, ctx->txn, ctx->store, stream, err);
		if (rc)
			return rc;
		if (tomb) {
			req->rc = cs_error_set(&req->err, CS_EGONE,
					       "conversation \"%s\" was erased", conv);
			return 1;
		}
		if (req->kind == CS_REQ_UPDATE) {
			req->rc = cs_error_set(&req->err, CS_ENOTFOUND,
					       "conversation \"%s\" not found", conv);
			return 1;
		}
	} else if (req->kind == CS_REQ_CREATE) {
		req->rc = cs_error_set(&req->err, CS_ECONFLICT,
				       "conversation \"%s\" already exists", conv);
		req->err.current_version = current;
		return 1;
	}
	int rc = check_replay(ctx, req, current, err);
	if (rc != 0)
		return rc;
	if (req->expected_version != CS_ANY_VERSION && (uint64_t)req->expected_version != current) {
		req->rc = cs_error_set(
		    &req->err, CS_ECONFLICT, "expected version %lld, the conversation is at %llu",
		    (long long)req->expected_version, (unsigned long long)current);
		req->err.current_version = current;
		return 1;
	}
	return 0;
}

int cs_events_commit(cs_batch_ctx *ctx, cs_request *req, Convstore__V1__Head *head, bool is_new,
		     cs_error *err)
{
	cs_key stream;
	cs_key_stream(&stream, req->tenant, req->conversation_id);
	uint64_t current = head->version, old_position = is_new ? 0 : head->last_position;
	MDB_val head_rec = {0, NULL};
	int rc = decide(ctx, req, head, err);
	if (!rc && req->rc == CS_OK)
		rc = pack_head(&head_rec, req, head, err);
	if (!rc && req->rc == CS_OK)
		rc = persist(ctx, req, head, &head_rec, &stream, old_position, err);
	free(head_rec.mv_data);
	for (size_t i = 0; i < req->n; i++) /* it pointed into the batch's frame */
		req->events[i].ev.recorded_at = NULL;
	if (rc || req->rc)
		return rc;

	cs_append_result *r = &req->result;
	r->first_version = current + 1;
	r->last_version = current + req->n;
	r->first_position = req->events[0].ev.position; /* consecutive, except when applied */
	r->last_position = req->events[req->n - 1].ev.position;
	ctx->next_position = r->last_position + 1;
	ctx->conversations += is_new;
	return CS_OK;
}

int cs_request_head(Convstore__V1__Head **out, bool *is_new, cs_batch_ctx *ctx, cs_request *req,
		    cs_error *err)
{
	cs_key stream;
	cs_key_stream(&stream, req->tenant, req->conversation_id);
	*out = NULL;
	int rc = cs_head_load(out, ctx->store, ctx->txn, &stream, err);
	*is_new = rc == CS_ENOTFOUND;
	if (*is_new)
		rc = cs_head_new(out, req->tenant, req->conversation_id, err);
	if (rc == CS_ECORRUPT) { /* this conversation is damaged; the others are not */
		req->rc = rc;
		req->err = *err;
		return CS_OK;
	}
	return rc;
}

int cs_request_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err)
{
	req->rc = CS_OK;
	req->err = (cs_error)CS_ERROR_INIT;
	memset(&req->result, 0, sizeof(req->result));
	snaps_clear(req); /* a retried batch decides again */
	switch (req->kind) {
	case CS_REQ_FORK: return cs_fork_apply(ctx, req, err);
	case CS_REQ_ERASE: return cs_erase_apply(ctx, req, err);
	case CS_REQ_SWEEP: return cs_sweep_apply(ctx, req, err);
	case CS_REQ_REBUILD: return cs_rebuild_apply(ctx, req, err);
	case CS_REQ_APPLY: return cs_apply_run(ctx, req, err);
	default: break;
	}

	cs_key stream;
	cs_key_stream(&stream, req->tenant, req->conversation_id);
	Convstore__V1__Head *head = NULL;
	bool is_new;
	int rc = cs_request_head(&head, &is_new, ctx, req, err);
	if (rc || !head)
		return rc;
	rc = admit(ctx, req, &stream, head->version, is_new, err);
	if (rc == 0)
		rc = cs_events_commit(ctx, req, head, is_new, err);
	cs_head_free(head);
	return rc < 0 ? rc : CS_OK;
}
