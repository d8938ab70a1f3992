/*
 * rebuild.c - every derived record, recomputed from the events with the one reducer: for
 * cs_store_verify() to compare against what appends maintained inline, and for
 * cs_store_rebuild() to write.
 *
 * The projector visits each conversation (each head in the streams database) and emits what
 * the inline path would have written for it:
 *
 *   head       the fold of its history: its base (the parent's state at the fork point, or the
 *              retention snapshot when its oldest own events were removed, or empty), then its
 *              own events; first_version when retention removed some
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
	/* the conversation being folded */
	Head *state;
	const cs_key *stream;
	int rc;
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

static int fold_event(void *ctx, Event *ev, cs_error *err)
{
	projector *p = ctx;
	p->folded++;
	int rc = cs_head_apply(p->state, ev, err);
	if (!rc)
		rc = rollups_add(p, ev, err);
	if (!rc && cs_snapshot_due(p->s, ev->version)) {
		cs_key k;
		cs_key_at(&k, p->stream, ev->version);
		rc = emit_msg(p, p->s->env.snaps, &k, &p->state->base, "snapshot", err);
	}
	return rc;
}

/* The lowest version in @stream's own index (0: it has none). */
static int lowest_own(uint64_t *out, projector *p, const cs_key *stream, cs_error *err)
{
	*out = 0;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(p->txn, p->s->env.streams, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	cs_key k;
	cs_key_at(&k, stream, 0);
	MDB_val key = {k.len, k.b}, val;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	if (rc == 0 && cs_key_is_event_of(&key, stream))
		*out = cs_get_be64((unsigned char *)key.mv_data + stream->len);
	mdb_cursor_close(cur);
	return rc && rc != MDB_NOTFOUND ? cs_lmdb_error(err, rc, "streams") : CS_OK;
}

/* Where the fold of @h's own events starts: the retention base, the parent's state at the
 * fork point, or empty. *held is the first own version the stream still has. */
static int fold_base(Head **out, uint64_t *held, projector *p, const Head *h, const cs_key *stream,
		     cs_error *err)
{
	uint64_t nominal = h->parent ? h->parent->version + 1 : 1, lowest;
	int rc = lowest_own(&lowest, p, stream, err);
	if (rc)
		return rc;
	*held = lowest ? lowest : h->version + 1;
	if (*held > nominal) { /* retention removed the oldest: its base snapshot stands in */
		cs_key k;
		cs_key_at(&k, stream, *held - 1);
		MDB_val key = {k.len, k.b}, val;
		if (mdb_get(p->txn, p->s->env.snaps, &key, &val) != 0)
			return cs_error_set(err, CS_ECORRUPT,
					    "\"%s\" has lost versions before %llu and no snapshot "
					    "stands in for them",
					    h->id, (unsigned long long)*held);
		rc = cs_record_unpack((ProtobufCMessage **)out, &convstore__v1__head__descriptor,
				      val.mv_data, val.mv_size, p->s->max_raw, "snapshot", err);
		if (!rc)
			rc = emit(p, p->s->env.snaps, &k, &val, "retention snapshot", err);
		return rc;
	}
	*held = nominal;
	if (!h->parent)
		return cs_head_new(out, h->tenant, h->id, err);
	cs_key ps;
	cs_key_stream(&ps, h->tenant, h->parent->id);
	Head *parent;
	rc = cs_head_load(&parent, p->s, p->txn, &ps, err);
	if (rc == CS_ENOTFOUND)
		return cs_error_set(err, CS_ECORRUPT, "parent \"%s\" of \"%s\" is missing",
				    h->parent->id, h->id);
	if (!rc)
		rc = cs_head_at(out, p->s, p->txn, parent, h->parent->version, err);
	cs_head_free(parent);
	if (!rc) {
		free((*out)->id);
		(*out)->id = strdup(h->id);
		if (!(*out)->id)
			rc = cs_error_set(err, CS_ENOMEM, "out of memory");
	}
	return rc;
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

static int project_one(projector *p, const cs_key *stream, const Head *stored, cs_error *err)
{
	uint64_t held;
	Head *state;
	int rc = fold_base(&state, &held, p, stored, stream, err);
	if (rc)
		return rc;
	p->state = state;
	p->stream = stream;
	if (held <= stored->version)
		rc =
		    cs_stream_walk(p->s, p->txn, stream, held, stored->version, fold_event, p, err);
	uint64_t nominal = stored->parent ? stored->parent->version + 1 : 1;
	state->first_version = held > nominal ? held : 0;
	if (!rc)
		rc = emit_head_views(p, state, stream, err);
	if (!rc)
		rc = rollups_emit(p, &p->convs, err);
	p->convs.n = 0;
	cs_head_free(state);
	p->state = NULL;
	return rc;
}

/* ---- the whole store --------------------------------------------------------------------- */

/* The stream keys of every head, collected first so that rebuild may write while it goes. */
static int heads_list(cs_key **out, size_t *n, projector *p, cs_error *err)
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
		if (key.mv_size <= 8 || key.mv_size - 8 > CS_STREAM_KEY_MAX ||
		    cs_get_be64((unsigned char *)key.mv_data + key.mv_size - 8) != CS_HEAD_VERSION)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 256;
			cs_key *grown = realloc(*out, cap * sizeof(*grown));
			if (!grown) {
				res = cs_error_set(err, CS_ENOMEM, "out of memory listing heads");
				break;
			}
			*out = grown;
		}
		(*out)[*n].len = key.mv_size - 8;
		memcpy((*out)[*n].b, key.mv_data, key.mv_size - 8);
		(*n)++;
	}
	mdb_cursor_close(cur);
	if (!res && rc && rc != MDB_NOTFOUND)
		res = cs_lmdb_error(err, rc, "streams");
	return res;
}

static int project_all(projector *p, uint64_t *conversations, cs_error *err)
{
	cs_key *heads;
	size_t n;
	int rc = heads_list(&heads, &n, p, err);
	for (size_t i = 0; i < n && !rc; i++) {
		Head *stored;
		rc = cs_head_load(&stored, p->s, p->txn, &heads[i], err);
		if (rc)
			break;
		rc = project_one(p, &heads[i], stored, err);
		cs_head_free(stored);
	}
	if (!rc)
		rc = rollups_emit(p, &p->days, err);
	*conversations = n;
	free(heads);
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
