/*
 * rebuild.c - every derived record, recomputed from the events with the one reducer: for
 * cs_store_verify() to compare against what appends maintained inline, and for
 * cs_store_rebuild() to write.
 *
 * The projector visits each conversation (each head in the streams database) and emits what
 * the inline path would have written for it:
 *
 *   head       the fold of its history, judged from the events alone (a damaged head is
 *              rebuilt, not trusted): its base (the parent's state at the fork point, folded
 *              afresh; or the snapshot retention left when it removed the oldest events; or
 *              empty), then its own events; first_version when retention removed some
 *   snaps      the fold at every snapshot_every versions, and the retention base as it is
 *   list       [tenant][last position] -> id
 *   forks      [parent][id] -> fork point, for a fork
 *   retain     for a conversation with a policy
 *   usage      the model responses of its own events, per day, per day and model, per day and
 *              conversation (the per-day ones summed over all conversations before emitting)
 *
 * Emitting either compares with the stored record (verify: a missing or different record is a
 * problem, and so is a stored record nothing emitted) or writes it (rebuild, after clearing the
 * derived databases; retention bases are kept since no event can give them back).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__Head Head;
typedef Convstore__V1__Event Event;
typedef Convstore__V1__UsageCounter Counter;

/* The derived databases, in the order emitted[] counts them. */
enum { D_STREAMS, D_SNAPS, D_LIST, D_USAGE, D_FORKS, D_RETAIN, D_COUNT };

typedef struct projector {
	cs_store *s;
	MDB_txn *txn;
	bool write;		 /* rebuild: put what is emitted; verify: compare */
	uint64_t diffs;		 /* records missing or different (verify) */
	uint64_t folded;	 /* events folded */
	size_t emitted[D_COUNT]; /* records matched or written, per derived database */
	MDB_dbi dbi[D_COUNT];
	cs_error first;		   /* the first difference */
	cs_tally days;		   /* per day and per day and model, over all conversations */
	cs_tally convs;		   /* per day and conversation, for the conversation being folded */
	const char *tenant, *conv; /* the conversation being projected, for messages */
	cs_progress *progress;	   /* one step per event folded (optional) */
} projector;

static void projector_init(projector *p, cs_store *s, MDB_txn *txn, bool write)
{
	cs_env *e = &s->env;
	*p = (projector){.s = s,
			 .txn = txn,
			 .write = write,
			 .first = CS_ERROR_INIT,
			 .dbi = {e->streams, e->snaps, e->list, e->usage, e->forks, e->retain}};
}

static void projector_deinit(projector *p)
{
	cs_tally_deinit(&p->days);
	cs_tally_deinit(&p->convs);
}

static size_t slot_of(const projector *p, MDB_dbi dbi)
{
	size_t i = 0;
	while (i < D_COUNT - 1 && p->dbi[i] != dbi)
		i++;
	return i;
}

static void differ(projector *p, const char *what)
{
	if (p->diffs++ == 0)
		cs_error_set(&p->first, CS_ECORRUPT,
			     "%s of \"%s\" (tenant \"%s\") is missing or wrong", what,
			     p->conv ? p->conv : "", p->tenant ? p->tenant : "");
}

/* Compare with, or write, one derived record. A stored record that differs still counts as
 * one the fold accounts for: it is reported once, not again as an extra. */
static int emit(projector *p, MDB_dbi dbi, const cs_key *k, const MDB_val *v, const char *what,
		cs_error *err)
{
	MDB_val key = {k->len, (void *)k->b}, stored;
	if (p->write) {
		MDB_val val = *v;
		int rc = mdb_put(p->txn, dbi, &key, &val, 0);
		if (rc)
			return cs_lmdb_error(err, rc, "rebuild");
	} else {
		int rc = mdb_get(p->txn, dbi, &key, &stored);
		if (rc && rc != MDB_NOTFOUND)
			return cs_lmdb_error(err, rc, "verify");
		if (rc || stored.mv_size != v->mv_size ||
		    memcmp(stored.mv_data, v->mv_data, v->mv_size) != 0)
			differ(p, what);
		if (rc)
			return CS_OK;
	}
	p->emitted[slot_of(p, dbi)]++;
	return CS_OK;
}

/* Emit a record its packer just made (@rc: the packer's result), and free it. */
static int emit_packed(projector *p, MDB_dbi dbi, const cs_key *k, int rc, unsigned char *rec,
		       size_t len, const char *what, cs_error *err)
{
	if (rc)
		return rc;
	MDB_val v = {len, rec};
	rc = emit(p, dbi, k, &v, what, err);
	free(rec);
	return rc;
}

static int emit_msg(projector *p, MDB_dbi dbi, const cs_key *k, const ProtobufCMessage *m,
		    const char *what, cs_error *err)
{
	unsigned char *rec = NULL;
	size_t len = 0;
	int rc = cs_record_pack(&rec, &len, m, err);
	return emit_packed(p, dbi, k, rc, rec, len, what, err);
}

/* ---- usage sums -------------------------------------------------------------------------- */

static int rollups_add(projector *p, const Event *ev, cs_error *err)
{
	if (ev->payload_case != CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE)
		return CS_OK;
	const Convstore__V1__ModelResponse *mr = ev->model_response;
	uint32_t day = cs_day_of(ev->recorded_at);
	cs_key k[3];
	cs_key_usage(&k[0], ev->tenant, CS_USAGE_KEY_DAY, day, NULL);
	cs_key_usage(&k[1], ev->tenant, CS_USAGE_KEY_MODEL, day, mr->model ? mr->model : "");
	cs_key_usage(&k[2], ev->tenant, CS_USAGE_KEY_CONV, day, ev->conversation_id);
	for (int i = 0; i < 3; i++) {
		Counter *c = cs_tally_at(i < 2 ? &p->days : &p->convs, k[i].b, k[i].len);
		if (!c)
			return cs_error_set(err, CS_ENOMEM, "out of memory summing usage");
		cs_counter_add(c, mr, 1);
	}
	return CS_OK;
}

static int rollups_emit(projector *p, cs_tally *t, cs_error *err)
{
	int rc = CS_OK;
	for (size_t i = 0; i < t->cap && !rc; i++) {
		cs_tally_entry *e = &t->slots[i];
		if (!e->key)
			continue;
		cs_key k = {.len = e->len};
		memcpy(k.b, e->key, e->len);
		rc = emit_msg(p, p->s->env.usage, &k, &e->c.base, "usage rollup", err);
	}
	cs_tally_deinit(t);
	return rc;
}

/* ---- one conversation -------------------------------------------------------------------- */

/* A fold in progress: the state, and whether its records are emitted (a parent's history folded
 * only to give a fork its starting state emits nothing). */
typedef struct fold {
	projector *p;
	Head *state;
	const cs_key *stream;
	bool emitting;
} fold;

static int fold_event(void *ctx, Event *ev, cs_error *err)
{
	fold *f = ctx;
	int rc = cs_head_apply(f->state, ev, err);
	if (rc || !f->emitting)
		return rc;
	f->p->folded++;
	cs_progress_step(f->p->progress);
	rc = rollups_add(f->p, ev, err);
	if (rc)
		return rc;
	/* Snapshots are a cache: rebuild writes them at this store's cadence; verify checks the
	 * ones that exist, whatever cadence wrote them (snapshot_every is a per-open option). */
	cs_key k;
	cs_key_at(&k, f->stream, ev->version);
	MDB_val key = {k.len, k.b}, stored;
	bool check = f->p->write ? cs_snapshot_due(f->p->s, ev->version)
				 : mdb_get(f->p->txn, f->p->s->env.snaps, &key, &stored) == 0;
	if (!check)
		return CS_OK;
	unsigned char *rec = NULL;
	size_t len = 0;
	rc = cs_snapshot_pack(&rec, &len, f->state, err);
	return emit_packed(f->p, f->p->s->env.snaps, &k, rc, rec, len, "snapshot", err);
}

/* The lowest (@last false) or highest own version in @stream's index; 0 when it has none. */
static int own_edge(uint64_t *out, projector *p, const cs_key *stream, bool last, cs_error *err)
{
	*out = 0;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(p->txn, p->s->env.streams, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	cs_key k;
	cs_key_at(&k, stream, last ? CS_HEAD_VERSION : 0);
	MDB_val key = {k.len, k.b}, val;
	/* lowest: the first entry at or after version 0; highest: the last before the head */
	rc = last ? cs_cursor_before(cur, &key, &val)
		  : mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	if (rc == 0 && cs_key_is_event_of(&key, stream))
		*out = cs_get_be64((unsigned char *)key.mv_data + stream->len);
	mdb_cursor_close(cur);
	return rc && rc != MDB_NOTFOUND ? cs_lmdb_error(err, rc, "streams") : CS_OK;
}

static int lowest_own(uint64_t *out, projector *p, const cs_key *stream, cs_error *err)
{
	return own_edge(out, p, stream, false, err);
}

static int fresh_state(Head **out, projector *p, const char *tenant, const char *conv,
		       uint64_t upto, unsigned depth, bool emitting, cs_error *err);

/* How a stream's own part begins, judged from its events alone (never its head). */
typedef struct shape {
	uint64_t lowest, highest;	/* own versions in the index; 0: none */
	Head *base;			/* retention's snapshot below the lowest (owned), or NULL */
	MDB_val base_raw;		/* its stored record */
	char parent[CS_MAX_ID_LEN + 1]; /* the parent ("" for none) */
	uint64_t parent_version;	/* its fork point */
} shape;

/* Its first own event is conversation_forked (a fork), or version 1 (a root), or neither:
 * retention removed the oldest, and the snapshot it left below the lowest stands in (and says,
 * in its parent field, whether this is a fork). */
static int shape_of(shape *sh, projector *p, const char *tenant, const char *conv,
		    const cs_key *stream, cs_error *err)
{
	memset(sh, 0, sizeof(*sh));
	int rc = own_edge(&sh->lowest, p, stream, false, err);
	if (!rc)
		rc = own_edge(&sh->highest, p, stream, true, err);
	if (rc || sh->lowest == 1)
		return rc;
	Event *ev = NULL;
	uint64_t pos;
	if (sh->lowest && !(rc = cs_index_get(&pos, p->s, p->txn, tenant, conv, sh->lowest, err)))
		rc = cs_event_load(&ev, p->s, p->txn, pos, err);
	if (!rc && ev && ev->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED) {
		snprintf(sh->parent, sizeof(sh->parent), "%s", ev->conversation_forked->parent_id);
		sh->parent_version = ev->conversation_forked->parent_version;
	} else if (!rc) {
		uint64_t below = sh->lowest ? sh->lowest - 1 : UINT64_MAX;
		rc = cs_snapshot_find(&sh->base, &sh->base_raw, p->s, p->txn, stream,
				      sh->lowest ? below : 0, below, err);
		if (!rc && !sh->base)
			rc =
			    cs_error_set(err, CS_ECORRUPT,
					 "\"%s\" has lost its oldest events and no snapshot stands "
					 "in for them",
					 conv);
		if (!rc && sh->base->parent) {
			snprintf(sh->parent, sizeof(sh->parent), "%s", sh->base->parent->id);
			sh->parent_version = sh->base->parent->version;
		}
	}
	if (ev)
		protobuf_c_message_free_unpacked(&ev->base, NULL);
	return rc;
}

/* The state the fold of the own events starts from, or the whole answer when @upto is at or
 * below the fork point (*whole). */
static int fold_start(Head **out, bool *whole, projector *p, const char *tenant, const char *conv,
		      const cs_key *stream, shape *sh, uint64_t upto, unsigned depth, bool emitting,
		      cs_error *err)
{
	*whole = sh->parent[0] && upto <= sh->parent_version;
	if (*whole || (sh->parent[0] && !sh->base))
		return fresh_state(out, p, tenant, sh->parent, *whole ? upto : sh->parent_version,
				   depth + 1, false, err);
	if (!sh->base)
		return cs_head_new(out, tenant, conv, err);
	if (upto < sh->base->version)
		return cs_error_set(err, CS_EGONE,
				    "version %llu of \"%s\" was removed by retention",
				    (unsigned long long)upto, conv);
	int rc = CS_OK;
	if (emitting) {
		cs_key k;
		cs_key_at(&k, stream, sh->base->version);
		rc = emit(p, p->s->env.snaps, &k, &sh->base_raw, "retention snapshot", err);
	}
	*out = sh->base;
	sh->base = NULL;
	return rc;
}

/* The state of @conv after version @upto (UINT64_MAX: all it has), folded afresh from its
 * events with the one reducer; emitting the derived records of its own events if @emitting. */
static int fresh_state(Head **out, projector *p, const char *tenant, const char *conv,
		       uint64_t upto, unsigned depth, bool emitting, cs_error *err)
{
	*out = NULL;
	if (depth > CS_MAX_FORK_DEPTH || !cs_id_valid(conv))
		return cs_error_set(err, CS_ECORRUPT, "the fork chain of \"%s\" is broken", conv);
	cs_key stream;
	cs_key_stream(&stream, tenant, conv);
	shape sh;
	bool whole = false;
	Head *state = NULL;
	int rc = shape_of(&sh, p, tenant, conv, &stream, err);
	if (!rc)
		rc = fold_start(&state, &whole, p, tenant, conv, &stream, &sh, upto, depth,
				emitting, err);
	cs_head_free(sh.base);
	if (!rc && (depth > 0 || whole || strcmp(state->id, conv) != 0)) /* under this name */
		rc = cs_head_rename(state, conv, err);
	fold f = {.p = p, .state = state, .stream = &stream, .emitting = emitting};
	uint64_t hi = sh.highest < upto ? sh.highest : upto;
	if (!rc && !whole && sh.lowest && state->version < hi)
		rc = cs_stream_walk(p->s, p->txn, &stream, state->version + 1, hi, fold_event, &f,
				    err);
	if (rc) {
		cs_head_free(state);
		return rc;
	}
	state->first_version = 0; /* a fact about the head now, not about a fold (history.c) */
	if (depth == 0 && !whole && sh.lowest != cs_head_own_lo(state))
		state->first_version = sh.lowest ? sh.lowest : state->version + 1;
	*out = state;
	return CS_OK;
}

/* The records that hang off the folded head: head, list entry, fork link, retain entry. */
static int emit_head_views(projector *p, const Head *h, const cs_key *stream, cs_error *err)
{
	cs_store *s = p->s;
	cs_key k;
	cs_key_head(&k, stream);
	int rc = emit_msg(p, s->env.streams, &k, &h->base, "head", err);
	if (!rc) {
		cs_key_list(&k, h->tenant, h->last_position);
		MDB_val v = {strlen(h->id), h->id};
		rc = emit(p, s->env.list, &k, &v, "list entry", err);
	}
	if (!rc && h->parent) {
		cs_key ps;
		unsigned char at[8];
		cs_key_stream(&ps, h->tenant, h->parent->id);
		cs_key_fork(&k, &ps, h->id);
		cs_put_be64(at, h->parent->version);
		MDB_val v = {8, at};
		rc = emit(p, s->env.forks, &k, &v, "fork link", err);
	}
	if (!rc && h->retention) {
		MDB_val v = {0, ""};
		rc = emit(p, s->env.retain, stream, &v, "retain entry", err);
	}
	return rc;
}

static int project_one(projector *p, const cs_key *stream, cs_error *err)
{
	char tenant[CS_MAX_ID_LEN + 1], conv[CS_MAX_ID_LEN + 1];
	if (cs_key_parse_stream(stream->b, stream->len, tenant, conv, NULL))
		return cs_error_set(err, CS_ECORRUPT, "a stream key is damaged");
	Head *state;
	p->tenant = tenant;
	p->conv = conv;
	int rc = fresh_state(&state, p, tenant, conv, UINT64_MAX, 0, true, err);
	if (!rc)
		rc = emit_head_views(p, state, stream, err);
	if (!rc)
		rc = rollups_emit(p, &p->convs, err);
	cs_tally_deinit(&p->convs);
	cs_head_free(state);
	p->tenant = p->conv = NULL;
	return rc;
}

/* ---- the whole store --------------------------------------------------------------------- */

/* Every stream (index entries or a head), collected first so that rebuild may write while it
 * goes; a head that fails its CRC is still a stream to rebuild. */
static int streams_list(cs_key **out, size_t *n, projector *p, cs_error *err)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(p->txn, p->s->env.streams, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	MDB_val key, val;
	int res = CS_OK;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && !res;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size <= 8 || key.mv_size - 8 > CS_STREAM_KEY_MAX)
			continue;
		size_t plen = key.mv_size - 8;
		if (*n && (*out)[*n - 1].len == plen &&
		    memcmp((*out)[*n - 1].b, key.mv_data, plen) == 0)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 256;
			cs_key *grown = realloc(*out, cap * sizeof(*grown));
			if (!grown) {
				res = cs_error_set(err, CS_ENOMEM, "out of memory listing streams");
				break;
			}
			*out = grown;
		}
		(*out)[*n].len = plen;
		memcpy((*out)[*n].b, key.mv_data, plen);
		(*n)++;
	}
	mdb_cursor_close(cur);
	if (!res && rc && rc != MDB_NOTFOUND)
		res = cs_lmdb_error(err, rc, "streams");
	return res;
}

static int project_all(projector *p, uint64_t *conversations, cs_error *err)
{
	cs_key *streams;
	size_t n;
	int rc = streams_list(&streams, &n, p, err);
	for (size_t i = 0; i < n && !rc; i++)
		rc = project_one(p, &streams[i], err);
	if (!rc)
		rc = rollups_emit(p, &p->days, err);
	*conversations = n;
	free(streams);
	return rc;
}

static uint64_t entries(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_stat st;
	return mdb_stat(txn, dbi, &st) == 0 ? st.ms_entries : 0;
}

/* Verify: stored records that nothing emitted are differences too, and so is a conversation
 * counter that does not count the conversations. */
static void count_extra(projector *p, uint64_t conversations)
{
	for (size_t i = D_SNAPS; i < D_COUNT; i++) {
		uint64_t stored = entries(p->txn, p->dbi[i]);
		if (stored <= p->emitted[i])
			continue;
		uint64_t extra = stored - p->emitted[i];
		if (p->diffs == 0)
			cs_error_set(&p->first, CS_ECORRUPT,
				     "%llu derived records belong to nothing",
				     (unsigned long long)extra);
		p->diffs += extra;
	}
	uint64_t counted = 0;
	cs_meta_get_u64(p->txn, &p->s->env, CS_META_CONVERSATIONS, &counted, NULL);
	if (counted != conversations) {
		if (p->diffs == 0)
			cs_error_set(&p->first, CS_ECORRUPT,
				     "meta counts %llu conversations; the store has %llu",
				     (unsigned long long)counted,
				     (unsigned long long)conversations);
		p->diffs++;
	}
}

int cs_projections_check(uint64_t *differences, cs_store *s, MDB_txn *txn, cs_progress *progress,
			 cs_error *first, cs_error *err)
{
	projector p;
	projector_init(&p, s, txn, false);
	p.progress = progress;
	uint64_t n = 0;
	int rc = project_all(&p, &n, err);
	if (!rc)
		count_extra(&p, n);
	projector_deinit(&p);
	*differences = p.diffs;
	if (first)
		*first = p.first;
	return rc;
}

/* Whether @stream has a head. */
static bool has_head(projector *p, const cs_key *stream)
{
	cs_key k;
	cs_key_head(&k, stream);
	MDB_val key = {k.len, k.b}, val;
	return mdb_get(p->txn, p->s->env.streams, &key, &val) == 0;
}

/* A snapshot no fold makes again: a retention base, just below the lowest own version left
 * (or, when retention removed them all, any snapshot of a conversation that still exists). */
static int is_base(bool *out, projector *p, const MDB_val *key, cs_error *err)
{
	*out = false;
	if (key->mv_size <= 8 || key->mv_size - 8 > CS_STREAM_KEY_MAX)
		return CS_OK; /* not a snapshot key: it goes */
	cs_key stream = {.len = key->mv_size - 8};
	memcpy(stream.b, key->mv_data, stream.len);
	uint64_t v = cs_get_be64((unsigned char *)key->mv_data + stream.len), lowest;
	int rc = lowest_own(&lowest, p, &stream, err);
	if (!rc)
		*out = lowest ? v + 1 == lowest : has_head(p, &stream);
	return rc;
}

/* Empty the derived databases, keeping the retention bases (heads are overwritten). */
static int clear_views(projector *p, cs_error *err)
{
	for (size_t i = D_LIST; i < D_COUNT; i++) {
		int rc = mdb_drop(p->txn, p->dbi[i], 0);
		if (rc)
			return cs_lmdb_error(err, rc, "clear");
	}
	MDB_cursor *cur;
	int rc = mdb_cursor_open(p->txn, p->s->env.snaps, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	MDB_val key, val;
	int res = CS_OK;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && !res;) {
		bool base;
		if ((res = is_base(&base, p, &key, err)))
			break;
		if (!base)
			rc = mdb_cursor_del(cur, 0);
		/* After a delete MDB_NEXT gives the entry that took its place. */
		if (!rc)
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (!res && rc != MDB_NOTFOUND)
		res = cs_lmdb_error(err, rc, "clear snapshots");
	return res;
}

/* Rebuild runs in the writer's transaction, like any request: appends queued with it wait. */
int cs_rebuild_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err)
{
	uint64_t diffs = 0, n = 0;
	req->progress.done = 0;
	req->progress.total = 2 * entries(ctx->txn, ctx->store->env.events);
	int rc = cs_projections_check(&diffs, ctx->store, ctx->txn, &req->progress, NULL, err);
	projector p;
	projector_init(&p, ctx->store, ctx->txn, true);
	p.progress = &req->progress;
	if (!rc)
		rc = clear_views(&p, err);
	if (!rc)
		rc = project_all(&p, &n, err);
	projector_deinit(&p);
	if (!rc)
		ctx->conversations = n; /* the counter too (commit.c writes it) */
	req->rebuild->differences = diffs;
	req->rebuild->conversations = n;
	req->rebuild->events = p.folded;
	return rc;
}

int cs_store_rebuild(cs_rebuild_report *out, cs_store *s, cs_error *err)
{
	return cs_store_rebuild_each(out, s, NULL, NULL, err);
}

int cs_store_rebuild_each(cs_rebuild_report *out, cs_store *s, cs_progress_fn fn, void *ctx,
			  cs_error *err)
{
	memset(out, 0, sizeof(*out));
	if (s->env.read_only)
		return cs_error_set(err, CS_EINVAL, "the store is open read-only");
	cs_request req = {.kind = CS_REQ_REBUILD, .rebuild = out, .progress = {fn, ctx, 0, 0}};
	return cs_store_submit(NULL, s, &req, err);
}
