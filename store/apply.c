/*
 * apply.c - applying events that already carry their version and recorded_at: what `convctl
 * import` replays from an export, and the follower's apply path DESIGN.md asks for ("Beyond one
 * machine").
 *
 * An applied event goes through exactly what an append goes through: the same stateless checks
 * (a client payload by the client rules, a conversation_created / _updated / _forked by the
 * server's), the same reducer and head checks, the same persist step with every inline view, in
 * the same group commit (append.c, commit.c). What differs:
 *
 *   - its version is not assigned but checked: a run of events must continue the conversation
 *     exactly (version = current + 1, + 2, ...); a conversation_forked first event creates the
 *     fork from its parent at parent_version (convops.c's fork path), so parents come first;
 *   - its recorded_at is kept (the batch clock is not used), so timestamps, the usage day and
 *     every projection come out as they were where the event was first written;
 *   - idempotency is by version, not by the id index (an event whose id the server generated
 *     has no index entry): an event whose version is already stored is skipped when the stored
 *     one is the same event (id, recorded_at and content), and is a conflict otherwise;
 *   - every id is indexed, since the event may be retried by its id later on.
 *
 * The position is kept while it is ahead of the store's last one (an import into an empty store,
 * in the original order, reproduces every position, the gaps erasure left included); an event
 * whose position is taken gets the next free one. Positions stay strictly increasing.
 *
 * Deliberately not done: a conversation_deleted (erase) is not applied (export leaves erased
 * conversations out); events retention removed cannot be applied (the run must start at 1 or at
 * a fork point).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__Event Event;

/* Whether @stored (as read back) is the event @p describes: same id, recorded_at and bytes once
 * the fields the writer sets (version, position, recorded_at) are left out of both. */
static bool same_event(const Event *stored, const cs_prepared *p)
{
	const Convstore__V1__Timestamp *at = stored->recorded_at;
	if (!at || at->seconds != p->at.seconds || at->nanos != p->at.nanos)
		return false;
	Event a = *stored, b = p->ev;
	a.version = b.version = 0;
	a.position = b.position = 0;
	a.recorded_at = b.recorded_at = NULL;
	size_t la = convstore__v1__event__get_packed_size(&a);
	size_t lb = convstore__v1__event__get_packed_size(&b);
	if (la != lb)
		return false;
	unsigned char *pa = malloc(la + lb + 1);
	if (!pa)
		return false;
	convstore__v1__event__pack(&a, pa);
	convstore__v1__event__pack(&b, pa + la);
	bool same = memcmp(pa, pa + la, la) == 0;
	free(pa);
	return same;
}

/* How many leading events of @req are stored already (and the same); a different one fails the
 * request with CS_ECONFLICT. < 0: a transaction failure. */
static int count_stored(size_t *skip, cs_batch_ctx *ctx, cs_request *req,
			const Convstore__V1__Head *head, cs_error *err)
{
	*skip = 0;
	for (size_t i = 0; i < req->n && req->events[i].version <= head->version; i++) {
		cs_prepared *p = &req->events[i];
		uint64_t pos;
		Event *stored = NULL;
		int rc = p->version < cs_head_own_lo(head)
			     ? cs_error_set(err, CS_ECONFLICT, "it is read through its parent")
			     : cs_index_get(&pos, ctx->store, ctx->txn, req->tenant,
					    req->conversation_id, p->version, err);
		if (!rc)
			rc = cs_event_load(&stored, ctx->store, ctx->txn, pos, err);
		if (rc == CS_OK && !same_event(stored, p))
			rc = cs_error_set(err, CS_ECONFLICT, "a different event is stored there");
		if (stored)
			protobuf_c_message_free_unpacked(&stored->base, NULL);
		if (rc == CS_ECONFLICT || rc == CS_ECORRUPT || rc == CS_ENOTFOUND ||
		    rc == CS_EGONE) {
			req->rc = cs_error_set(&req->err, rc == CS_ENOTFOUND ? CS_ECORRUPT : rc,
					       "version %llu of \"%s\": %s",
					       (unsigned long long)p->version, req->conversation_id,
					       err ? err->msg : "");
			req->err.index = (int)i;
			req->err.current_version = head->version;
			return CS_OK;
		}
		if (rc)
			return rc;
		(*skip)++;
	}
	return CS_OK;
}

/* Apply the events after the stored ones: a fork's first event forks, anything else folds into
 * the head like an append. */
static int apply_new(cs_batch_ctx *ctx, cs_request *req, Convstore__V1__Head *head, bool is_new,
		     cs_error *err)
{
	const Event *first = &req->events[0].ev;
	if (first->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED) {
		const Convstore__V1__ConversationForked *f = first->conversation_forked;
		if (!is_new || req->events[0].version != f->parent_version + 1) {
			req->rc = cs_error_set(
			    &req->err, CS_ECONFLICT,
			    "conversation_forked at version %llu of \"%s\" cannot "
			    "start a fork at %llu",
			    (unsigned long long)req->events[0].version, req->conversation_id,
			    (unsigned long long)f->parent_version);
			return CS_OK;
		}
		req->parent_id = f->parent_id;
		req->at_version = f->parent_version;
		return cs_fork_apply(ctx, req, err);
	}
	if (is_new) {
		bool tomb;
		cs_key stream;
		cs_key_stream(&stream, req->tenant, req->conversation_id);
		int rc = cs_tombstone_get(&tomb, ctx->txn, ctx->store, &stream, err);
		if (rc)
			return rc;
		if (tomb) {
			req->rc =
			    cs_error_set(&req->err, CS_EGONE, "conversation \"%s\" was erased",
					 req->conversation_id);
			return CS_OK;
		}
	}
	return cs_events_commit(ctx, req, head, is_new, err);
}

int cs_apply_run(cs_batch_ctx *ctx, cs_request *req, cs_error *err)
{
	Convstore__V1__Head *head = NULL;
	bool is_new;
	int rc = cs_request_head(&head, &is_new, ctx, req, err);
	if (rc || !head)
		return rc;
	size_t skip = 0;
	cs_error scratch = CS_ERROR_INIT;
	rc = count_stored(&skip, ctx, req, head, &scratch);
	if (rc && err)
		*err = scratch;
	if (!rc && !req->rc && skip == req->n) {
		req->result.replayed = true;
		req->result.first_version = req->events[0].version;
		req->result.last_version = req->events[req->n - 1].version;
	} else if (!rc && !req->rc) {
		/* The request's events are the ones after the stored prefix while they are applied;
		 * restored after, since a retried batch applies the request again. */
		cs_prepared *all = req->events;
		size_t n = req->n;
		req->events += skip;
		req->n -= skip;
		rc = apply_new(ctx, req, head, is_new, err);
		req->events = all;
		req->n = n;
		if (req->rc && req->err.index != CS_NO_INDEX)
			req->err.index += (int)skip;
	}
	cs_head_free(head);
	return rc < 0 ? rc : CS_OK;
}

/* The end of the run starting at @i: the same conversation and at most @max events. */
static size_t run_end(Event *const *events, size_t n, size_t i, size_t max)
{
	size_t j = i + 1;
	while (j < n && j - i < max && strcmp(events[j]->tenant, events[i]->tenant) == 0 &&
	       strcmp(events[j]->conversation_id, events[i]->conversation_id) == 0)
		j++;
	return j;
}

/* The envelope checks an applied event needs before the append checks see it. */
static int apply_sane(const Event *ev, cs_error *err)
{
	if (!ev || !ev->tenant || !cs_id_valid(ev->tenant) || !ev->conversation_id ||
	    !cs_id_valid(ev->conversation_id))
		return cs_error_set(err, CS_EINVAL,
				    "an applied event needs a tenant and a "
				    "conversation id");
	if (ev->version == 0 || !ev->recorded_at)
		return cs_error_set(err, CS_EINVAL,
				    "an applied event needs its version and "
				    "recorded_at");
	return CS_OK;
}

/* Prepare the run @events[0..n) as one request: shallow copies without the writer's fields. */
static int prepare_run(cs_request *req, cs_store *s, Event *const *events, size_t n, cs_error *err)
{
	Event *copies = malloc(n * sizeof(*copies));
	Event **ptrs = malloc(n * sizeof(*ptrs));
	int rc = copies && ptrs ? CS_OK : cs_error_set(err, CS_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && !rc; i++) {
		if ((rc = apply_sane(events[i], err))) {
			err->index = (int)i;
			break;
		}
		if (i > 0 && events[i]->version != events[i - 1]->version + 1) {
			rc = cs_error_set(
			    err, CS_EINVAL, "version %llu of \"%s\" does not follow version %llu",
			    (unsigned long long)events[i]->version, events[i]->conversation_id,
			    (unsigned long long)events[i - 1]->version);
			err->index = (int)i;
			break;
		}
		copies[i] = *events[i];
		copies[i].version = copies[i].position = 0;
		copies[i].recorded_at = NULL;
		copies[i].tenant = (char *)protobuf_c_empty_string;
		ptrs[i] = &copies[i];
	}
	if (!rc)
		rc = cs_request_prepare_apply(req, &s->limits, events[0]->tenant,
					      events[0]->conversation_id, ptrs, n, err);
	for (size_t i = 0; i < n && !rc; i++) {
		req->events[i].version = events[i]->version;
		req->events[i].position = events[i]->position;
		req->events[i].at = *events[i]->recorded_at;
		req->events[i].at.base.unknown_fields = NULL;
		req->events[i].at.base.n_unknown_fields = 0;
	}
	free(copies);
	free(ptrs);
	return rc;
}

/* Add one request's outcome to @out. */
static void tally(cs_apply_result *out, const cs_request *req)
{
	if (req->result.replayed) {
		out->skipped += req->n;
		return;
	}
	uint64_t applied = req->result.last_position
			       ? req->result.last_position - req->result.first_position + 1
			       : 0;
	out->applied += applied;
	out->skipped += req->n - applied;
	if (!out->first_position)
		out->first_position = req->result.first_position;
	if (req->result.last_position)
		out->last_position = req->result.last_position;
}

int cs_store_apply(cs_apply_result *out, cs_store *s, Event *const *events, size_t n, cs_error *err)
{
	cs_apply_result res = {0};
	if (out)
		*out = res;
	if (s->env.read_only)
		return cs_error_set(err, CS_EINVAL, "the store is open read-only");
	size_t cap = s->limits.max_request_events, n_reqs = 0;
	for (size_t i = 0; i < n; i = run_end(events, n, i, cap)) {
		if (!events[i] || !events[i]->tenant || !events[i]->conversation_id)
			return apply_sane(NULL, err);
		n_reqs++;
	}
	cs_request *reqs = calloc(n_reqs ? n_reqs : 1, sizeof(*reqs));
	if (!reqs)
		return cs_error_set(err, CS_ENOMEM, "out of memory for %zu requests", n_reqs);
	int rc = CS_OK;
	size_t prepared = 0, at = 0;
	for (size_t i = 0; i < n && !rc; i = run_end(events, n, i, cap), prepared++) {
		size_t end = run_end(events, n, i, cap);
		if ((rc = prepare_run(&reqs[prepared], s, events + i, end - i, err)) && err &&
		    err->index != CS_NO_INDEX)
			err->index += (int)i;
	}
	if (!rc)
		cs_committer_submit_all(&s->committer, reqs, n_reqs);
	for (size_t r = 0; r < prepared; r++) {
		if (!rc && reqs[r].rc) {
			rc = reqs[r].rc;
			if (err) {
				*err = reqs[r].err;
				if (err->index != CS_NO_INDEX)
					err->index += (int)at;
			}
		} else if (!rc) {
			tally(&res, &reqs[r]);
		}
		at += reqs[r].n;
		cs_request_deinit(&reqs[r]);
	}
	free(reqs);
	if (out)
		*out = res;
	return rc;
}
