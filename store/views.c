/*
 * views.c - the read side's inline records: everything a read view needs that must be current,
 * written in the same transaction as the events it reflects, so that no reader ever sees an
 * event without its effect.
 *
 *   snaps   the folded head every snapshot_every versions (time travel starts from the newest
 *           one below the version asked for), plus the base snapshot retention leaves at its
 *           truncation point; zlib-deflated whenever that saves an eighth (cs_snapshot_pack)
 *   list    one entry per conversation at the position of its last event: a tenant's
 *           conversations newest first is a backward walk (list.c)
 *   usage   token and cost totals of model_response events per tenant and UTC day, per day and
 *           model, per day and conversation (usage.c reads them). Counters are integers (cost
 *           in nano-dollars), so erase and retention subtract exactly what appends added and a
 *           rebuild in any order gives the same bytes
 *   retain  the conversations that have a retention policy, for the sweep to visit
 *
 * Every record is framed by record.c (format byte, CRC), so verify checks them like events.
 * The same functions serve appends, erase, retention and rebuild: there is one way to write
 * each view.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__Head Head;
typedef Convstore__V1__Event Event;
typedef Convstore__V1__UsageCounter Counter;

static int put_val(MDB_txn *txn, MDB_dbi dbi, const cs_key *k, MDB_val *v, cs_error *err)
{
	MDB_val key = {k->len, (void *)k->b};
	int rc = mdb_put(txn, dbi, &key, v, 0);
	return rc ? cs_lmdb_error(err, rc, "put") : CS_OK;
}

int cs_view_del(MDB_txn *txn, MDB_dbi dbi, const cs_key *k, cs_error *err)
{
	MDB_val key = {k->len, (void *)k->b};
	int rc = mdb_del(txn, dbi, &key, NULL);
	return rc && rc != MDB_NOTFOUND ? cs_lmdb_error(err, rc, "delete") : CS_OK;
}

/* Put a record its packer just made (@rc: the packer's result) at @k, and free it. */
static int put_packed(MDB_txn *txn, MDB_dbi dbi, const cs_key *k, int rc, unsigned char *rec,
		      size_t len, cs_error *err)
{
	if (rc)
		return rc;
	MDB_val v = {len, rec};
	rc = put_val(txn, dbi, k, &v, err);
	free(rec);
	return rc;
}

int cs_view_put_msg(MDB_txn *txn, MDB_dbi dbi, const cs_key *k, const ProtobufCMessage *msg,
		    cs_error *err)
{
	unsigned char *rec = NULL;
	size_t len = 0;
	int rc = cs_record_pack(&rec, &len, msg, err);
	return put_packed(txn, dbi, k, rc, rec, len, err);
}

/* ---- snapshots --------------------------------------------------------------------------- */

bool cs_snapshot_due(const cs_store *s, uint64_t version)
{
	return s->snapshot_every != UINT_MAX && version % s->snapshot_every == 0;
}

int cs_snapshot_pack(unsigned char **out, size_t *out_len, const Head *h, cs_error *err)
{
	Head copy = *h; /* shallow: only first_version differs */
	copy.first_version = 0;
	return cs_record_pack_min(out, out_len, &copy.base, 0, err);
}

int cs_snapshot_put(MDB_txn *txn, cs_store *s, const cs_key *stream, const Head *h, cs_error *err)
{
	cs_key k;
	unsigned char *rec = NULL;
	size_t len = 0;
	cs_key_at(&k, stream, h->version);
	int rc = cs_snapshot_pack(&rec, &len, h, err);
	return put_packed(txn, s->env.snaps, &k, rc, rec, len, err);
}

/* ---- the list index ---------------------------------------------------------------------- */

int cs_list_move(MDB_txn *txn, cs_store *s, const char *tenant, const char *conv,
		 uint64_t old_position, uint64_t new_position, cs_error *err)
{
	cs_key k;
	int rc = CS_OK;
	if (old_position) {
		cs_key_list(&k, tenant, old_position);
		rc = cs_view_del(txn, s->env.list, &k, err);
	}
	if (rc || !new_position)
		return rc;
	cs_key_list(&k, tenant, new_position);
	MDB_val v = {strlen(conv), (void *)conv};
	return put_val(txn, s->env.list, &k, &v, err);
}

/* ---- usage rollups ----------------------------------------------------------------------- */

uint32_t cs_day_of(const Convstore__V1__Timestamp *t)
{
	int64_t secs = t && t->seconds > 0 ? t->seconds : 0;
	return (uint32_t)(secs / 86400);
}

int cs_counter_load(Counter **out, cs_store *s, MDB_txn *txn, const cs_key *k, cs_error *err)
{
	*out = NULL;
	MDB_val key = {k->len, (void *)k->b}, val;
	int rc = mdb_get(txn, s->env.usage, &key, &val);
	if (rc == MDB_NOTFOUND)
		return CS_OK;
	if (rc)
		return cs_lmdb_error(err, rc, "usage");
	return cs_record_unpack((ProtobufCMessage **)out, &convstore__v1__usage_counter__descriptor,
				val.mv_data, val.mv_size, s->max_raw, "usage record", err);
}

static int counter_bump(MDB_txn *txn, cs_store *s, const cs_key *k,
			const Convstore__V1__ModelResponse *mr, int sign, cs_error *err)
{
	Counter *c;
	int rc = cs_counter_load(&c, s, txn, k, err);
	if (rc)
		return rc;
	Counter fresh = CONVSTORE__V1__USAGE_COUNTER__INIT;
	Counter *use = c ? c : &fresh;
	cs_counter_add(use, mr, sign);
	/* A rollup that counts no response is not kept: a rebuild would not write it. */
	if (use->responses == 0)
		rc = cs_view_del(txn, s->env.usage, k, err);
	else
		rc = cs_view_put_msg(txn, s->env.usage, k, &use->base, err);
	if (c)
		protobuf_c_message_free_unpacked(&c->base, NULL);
	return rc;
}

int cs_usage_apply(MDB_txn *txn, cs_store *s, const Event *ev, int sign, cs_error *err)
{
	if (ev->payload_case != CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE)
		return CS_OK;
	const Convstore__V1__ModelResponse *mr = ev->model_response;
	uint32_t day = cs_day_of(ev->recorded_at);
	cs_key k;
	cs_key_usage(&k, ev->tenant, CS_USAGE_KEY_DAY, day, NULL);
	int rc = counter_bump(txn, s, &k, mr, sign, err);
	if (!rc) {
		cs_key_usage(&k, ev->tenant, CS_USAGE_KEY_MODEL, day, mr->model ? mr->model : "");
		rc = counter_bump(txn, s, &k, mr, sign, err);
	}
	if (!rc) {
		cs_key_usage(&k, ev->tenant, CS_USAGE_KEY_CONV, day, ev->conversation_id);
		rc = counter_bump(txn, s, &k, mr, sign, err);
	}
	return rc;
}

/* ---- retention policies ------------------------------------------------------------------ */

int cs_retain_sync(MDB_txn *txn, cs_store *s, const cs_key *stream, const Head *h, cs_error *err)
{
	if (!h || !h->retention)
		return cs_view_del(txn, s->env.retain, stream, err);
	MDB_val v = {0, ""};
	return put_val(txn, s->env.retain, stream, &v, err);
}
