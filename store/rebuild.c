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

/* One usage rollup being summed: its key and counter. */
typedef struct rollup {
	cs_key key;
	Counter c;
} rollup;

typedef struct rollups {
	rollup *v;
	size_t n, cap;
} rollups;

typedef struct projector {
	cs_store *s;
	MDB_txn *txn;
	bool write;	    /* rebuild: put what is emitted; verify: compare */
	uint64_t diffs;	    /* records missing or different (verify) */
	uint64_t folded;    /* events folded */
	size_t emitted[16]; /* per database, by dbi number modulo 16: records matched or written */
	cs_error first;	    /* the first difference */
	rollups days;	    /* per day and per day and model, over all conversations */
	rollups convs;	    /* per day and conversation, for the conversation being folded */
} projector;

static void differ(projector *p, const char *what, const cs_key *k)
{
	if (p->diffs++ == 0) {
		char tenant[CS_MAX_ID_LEN + 1] = "", conv[CS_MAX_ID_LEN + 1] = "";
		cs_key_parse_stream(k->b, k->len, tenant, conv, NULL);
		cs_error_set(&p->first, CS_ECORRUPT,
			     "%s of \"%s\" (tenant \"%s\") is missing or wrong", what, conv,
			     tenant);
	}
}

/* Compare with, or write, one derived record. */
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
		    memcmp(stored.mv_data, v->mv_data, v->mv_size) != 0) {
			differ(p, what, k);
			return CS_OK;
		}
	}
	p->emitted[dbi % 16]++;
	return CS_OK;
}

static int emit_msg(projector *p, MDB_dbi dbi, const cs_key *k, const ProtobufCMessage *m,
		    const char *what, cs_error *err)
{
	unsigned char *rec;
	size_t len;
	int rc = cs_record_pack(&rec, &len, m, err);
	if (rc)
		return rc;
	MDB_val v = {len, rec};
	rc = emit(p, dbi, k, &v, what, err);
	free(rec);
	return rc;
}

/* ---- usage sums -------------------------------------------------------------------------- */

static Counter *rollup_at(rollups *r, const cs_key *k)
{
	for (size_t i = r->n; i-- > 0;) /* recent keys are the likely ones */
		if (r->v[i].key.len == k->len && memcmp(r->v[i].key.b, k->b, k->len) == 0)
			return &r->v[i].c;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		rollup *grown = realloc(r->v, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		r->v = grown;
		r->cap = cap;
	}
	rollup *e = &r->v[r->n++];
	e->key = *k;
	convstore__v1__usage_counter__init(&e->c);
	return &e->c;
}

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
		Counter *c = rollup_at(i < 2 ? &p->days : &p->convs, &k[i]);
		if (!c)
			return cs_error_set(err, CS_ENOMEM, "out of memory summing usage");
		cs_counter_add(c, mr, 1);
	}
	return CS_OK;
}

static int rollups_emit(projector *p, rollups *r, cs_error *err)
{
	int rc = CS_OK;
	for (size_t i = 0; i < r->n && !rc; i++)
		rc = emit_msg(p, p->s->env.usage, &r->v[i].key, &r->v[i].c.base, "usage", err);
	r->n = 0;
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
	rc = rollups_add(f->p, ev, err);
	if (!rc && cs_snapshot_due(f->p->s, ev->version)) {
		cs_key k;
		cs_key_at(&k, f->stream, ev->version);
		rc = emit_msg(f->p, f->p->s->env.snaps, &k, &f->state->base, "snapshot", err);
	}
	return rc;
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
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	if (last) /* the entry before the head's slot (or before the next stream) */
		rc = mdb_cursor_get(cur, &key, &val, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
	if (rc == 0 && cs_key_is_event_of(&key, stream))
		*out = cs_get_be64((unsigned char *)key.mv_data + stream->len);
	mdb_cursor_close(cur);
	return rc && rc != MDB_NOTFOUND ? cs_lmdb_error(err, rc, "streams") : CS_OK;
}

static int lowest_own(uint64_t *out, projector *p, const cs_key *stream, cs_error *err)
{
	return own_edge(out, p, stream, false, err);
}

/* The snapshot of @stream at @version (@version UINT64_MAX: its newest); *out NULL if none. */
static int snapshot_at(Head **out, MDB_val *raw, projector *p, const cs_key *stream,
		       uint64_t version, cs_error *err)
{
	*out = NULL;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(p->txn, p->s->env.snaps, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	cs_key k;
	cs_key_at(&k, stream, version);
	MDB_val key = {k.len, k.b};
	if (version == UINT64_MAX) {
		rc = mdb_cursor_get(cur, &key, raw, MDB_SET_RANGE);
		rc = mdb_cursor_get(cur, &key, raw, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
		if (rc == 0 && (key.mv_size != stream->len + 8 ||
				memcmp(key.mv_data, stream->b, stream->len) != 0))
			rc = MDB_NOTFOUND;
	} else {
		rc = mdb_cursor_get(cur, &key, raw, MDB_SET);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return CS_OK;
	if (rc)
		return cs_lmdb_error(err, rc, "snapshots");
	return cs_record_unpack((ProtobufCMessage **)out, &convstore__v1__head__descriptor,
				raw->mv_data, raw->mv_size, p->s->max_raw, "snapshot", err);
}

static int fresh_state(Head **out, projector *p, const char *tenant, const char *conv,
		       uint64_t upto, unsigned depth, bool emitting, cs_error *err);

/* Where the fold of @stream's own events starts, judged from its events alone (never its
 * head): its first own event is conversation_forked (start from the parent's fresh state at
 * the fork point), or version 1 (start empty), or retention removed the oldest (start from the
 * snapshot it left, at the version below the oldest kept). */
static int fold_start(Head **out, bool *truncated, projector *p, const char *tenant,
		      const char *conv, const cs_key *stream, uint64_t lowest, uint64_t upto,
		      unsigned depth, bool emitting, cs_error *err)
{
	*truncated = false;
	MDB_val raw;
	if (lowest == 0 || lowest > 1) { /* a fork's first own event, or retention's base */
		Event *ev = NULL;
		uint64_t pos;
		int rc = lowest ? cs_index_get(&pos, p->s, p->txn, tenant, conv, lowest, err) : 0;
		if (!rc && lowest)
			rc = cs_event_load(&ev, p->s, p->txn, pos, err);
		if (rc)
			return rc;
		bool forked =
		    ev && ev->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED;
		if (forked) {
			const Convstore__V1__ConversationForked *f = ev->conversation_forked;
			uint64_t at = f->parent_version < upto ? f->parent_version : upto;
			rc = fresh_state(out, p, tenant, f->parent_id, at, depth + 1, false, err);
		}
		if (ev)
			protobuf_c_message_free_unpacked(&ev->base, NULL);
		if (forked || rc)
			return rc;
		*truncated = true;
		rc = snapshot_at(out, &raw, p, stream, lowest ? lowest - 1 : UINT64_MAX, err);
		if (!rc && !*out)
			return cs_error_set(
			    err, CS_ECORRUPT,
			    "\"%s\" has lost its oldest events and no snapshot stands "
			    "in for them",
			    conv);
		if (!rc && emitting) {
			cs_key k;
			cs_key_at(&k, stream, (*out)->version);
			rc = emit(p, p->s->env.snaps, &k, &raw, "retention snapshot", err);
		}
		return rc;
	}
	return cs_head_new(out, tenant, conv, err);
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
	uint64_t lowest, highest;
	int rc = own_edge(&lowest, p, &stream, false, err);
	if (!rc)
		rc = own_edge(&highest, p, &stream, true, err);
	bool truncated;
	Head *state = NULL;
	if (!rc)
		rc = fold_start(&state, &truncated, p, tenant, conv, &stream, lowest, upto, depth,
				emitting, err);
	if (rc)
		return rc;
	if (depth > 0 || strcmp(state->id, conv) != 0) { /* a parent's state, under this name */
		free(state->id);
		state->id = strdup(conv);
		if (!state->id)
			rc = cs_error_set(err, CS_ENOMEM, "out of memory");
	}
	fold f = {.p = p, .state = state, .stream = &stream, .emitting = emitting};
	uint64_t hi = highest < upto ? highest : upto;
	if (!rc && lowest && state->version < hi)
		rc = cs_stream_walk(p->s, p->txn, &stream, state->version + 1, hi, fold_event, &f,
				    err);
	state->first_version = 0;
	if (truncated && depth == 0)
		state->first_version = lowest ? lowest : state->version + 1;
	if (rc) {
		cs_head_free(state);
		return rc;
	}
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
	int rc = fresh_state(&state, p, tenant, conv, UINT64_MAX, 0, true, err);
	if (!rc)
		rc = emit_head_views(p, state, stream, err);
	if (!rc)
		rc = rollups_emit(p, &p->convs, err);
	p->convs.n = 0;
	cs_head_free(state);
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

/* Verify: stored records that nothing emitted are differences too. */
static void count_extra(projector *p)
{
	cs_env *e = &p->s->env;
	MDB_dbi dbis[] = {e->snaps, e->list, e->usage, e->forks, e->retain};
	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		uint64_t stored = entries(p->txn, dbis[i]);
		if (stored > p->emitted[dbis[i] % 16]) {
			uint64_t extra = stored - p->emitted[dbis[i] % 16];
			if (p->diffs == 0)
				cs_error_set(&p->first, CS_ECORRUPT,
					     "%llu derived records belong to nothing",
					     (unsigned long long)extra);
			p->diffs += extra;
		}
	}
}

int cs_projections_check(uint64_t *differences, cs_store *s, MDB_txn *txn, cs_error *first,
			 cs_error *err)
{
	projector p = {.s = s, .txn = txn, .first = CS_ERROR_INIT};
	uint64_t n;
	int rc = project_all(&p, &n, err);
	if (!rc)
		count_extra(&p);
	free(p.days.v);
	free(p.convs.v);
	*differences = p.diffs;
	if (first)
		*first = p.first;
	return rc;
}

/* Empty the derived databases, keeping the retention bases (heads are overwritten). */
static int clear_views(projector *p, cs_error *err)
{
	cs_env *e = &p->s->env;
	MDB_dbi dbis[] = {e->list, e->usage, e->forks, e->retain};
	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		int rc = mdb_drop(p->txn, dbis[i], 0);
		if (rc)
			return cs_lmdb_error(err, rc, "clear");
	}
	/* Snapshots: drop those a fold makes again; a retention base sits just below the
	 * stream's lowest own version. */
	MDB_cursor *cur;
	int rc = mdb_cursor_open(p->txn, e->snaps, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	MDB_val key, val;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;) {
		cs_key stream = {.len = key.mv_size - 8};
		uint64_t v = cs_get_be64((unsigned char *)key.mv_data + stream.len), lowest = 0;
		memcpy(stream.b, key.mv_data, stream.len);
		int lrc = lowest_own(&lowest, p, &stream, err);
		if (lrc) {
			mdb_cursor_close(cur);
			return lrc;
		}
		bool base = lowest ? v + 1 == lowest : true;
		if (!base)
			rc = mdb_cursor_del(cur, 0);
		/* After a delete MDB_NEXT gives the entry that took its place. */
		if (!rc)
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? CS_OK : cs_lmdb_error(err, rc, "clear snapshots");
}

/* The rebuild runs in the writer's transaction, as a batch of its own. */
int cs_rebuild_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err)
{
	uint64_t diffs = 0;
	int rc = cs_projections_check(&diffs, ctx->store, ctx->txn, NULL, err);
	projector p = {.s = ctx->store, .txn = ctx->txn, .write = true};
	if (!rc)
		rc = clear_views(&p, err);
	uint64_t n = 0;
	if (!rc)
		rc = project_all(&p, &n, err);
	free(p.days.v);
	free(p.convs.v);
	req->rebuild->differences = diffs;
	req->rebuild->conversations = n;
	req->rebuild->events = p.folded;
	return rc;
}

int cs_store_rebuild(cs_rebuild_report *out, cs_store *s, cs_error *err)
{
	memset(out, 0, sizeof(*out));
	if (s->env.read_only)
		return cs_error_set(err, CS_EINVAL, "the store is open read-only");
	cs_request req = {.kind = CS_REQ_REBUILD, .rebuild = out};
	return cs_store_submit(NULL, s, &req, err);
}
