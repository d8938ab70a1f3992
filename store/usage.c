/*
 * usage.c - token and cost totals of a tenant's model responses, read from the rollups that
 * appends maintain inline (views.c): per UTC day, per day and model, per day and conversation.
 *
 * A query walks one contiguous key range (the kind, then the days from..to) and sums the
 * counters by the key asked for: the model, the conversation, the day, or everything. Counters
 * are integers (cost in nano-dollars), so the sums are exact and independent of order; cost_usd
 * is computed once, at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__UsageCounter Counter;
typedef Convstore__V1__UsageRow Row;

static void counter_sum(Counter *into, const Counter *c)
{
	into->input_tokens += c->input_tokens;
	into->output_tokens += c->output_tokens;
	into->cached_tokens += c->cached_tokens;
	into->reasoning_tokens += c->reasoning_tokens;
	into->cost_nanos += c->cost_nanos;
	into->responses += c->responses;
}

/* The row key of one rollup: what follows [tenant][kind][day] in its key, or the day. */
static size_t row_key(char *out, size_t cap, enum cs_usage_group g, const unsigned char *rest,
		      size_t rest_len, uint32_t day)
{
	if (g == CS_USAGE_TOTAL)
		return (size_t)snprintf(out, cap, "total");
	if (g == CS_USAGE_BY_DAY) {
		time_t t = (time_t)day * 86400;
		struct tm tm;
		gmtime_r(&t, &tm);
		return strftime(out, cap, "%Y-%m-%d", &tm);
	}
	if (g == CS_USAGE_BY_CONVERSATION && rest_len) { /* [cl][conversation] */
		rest++;
		rest_len--;
	}
	size_t n = rest_len < cap - 1 ? rest_len : cap - 1;
	memcpy(out, rest, n);
	out[n] = 0;
	return n;
}

static char kind_of(enum cs_usage_group g)
{
	switch (g) {
	case CS_USAGE_BY_MODEL: return CS_USAGE_KEY_MODEL;
	case CS_USAGE_BY_CONVERSATION: return CS_USAGE_KEY_CONV;
	default: return CS_USAGE_KEY_DAY;
	}
}

/* Sum one rollup record into @out under its row key. */
static int sum_record(cs_tally *out, cs_store *s, const cs_usage_query *q, const MDB_val *key,
		      const MDB_val *val, size_t head, uint32_t day, cs_error *err)
{
	const unsigned char *b = key->mv_data;
	Counter *c;
	int res =
	    cs_record_unpack((ProtobufCMessage **)&c, &convstore__v1__usage_counter__descriptor,
			     val->mv_data, val->mv_size, s->max_raw, "usage record", err);
	if (res)
		return res;
	char name[CS_MAX_ID_LEN + 1];
	size_t len =
	    row_key(name, sizeof(name), q->group_by, b + head + 4, key->mv_size - head - 4, day);
	Counter *into = cs_tally_at(out, name, len);
	if (into)
		counter_sum(into, c);
	protobuf_c_message_free_unpacked(&c->base, NULL);
	return into ? CS_OK : cs_error_set(err, CS_ENOMEM, "out of memory summing usage");
}

/* Every tenant's rollups of @kind in [from, to]: a walk of the whole database. */
static int walk_all_tenants(cs_tally *out, cs_store *s, MDB_cursor *cur, const cs_usage_query *q,
			    uint32_t from, uint32_t to, cs_error *err)
{
	char kind = kind_of(q->group_by);
	MDB_val key, val;
	int rc, res = CS_OK;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && !res;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const unsigned char *b = key.mv_data;
		size_t head = key.mv_size ? 1u + b[0] + 1 : 0;
		if (key.mv_size < head + 4 || b[head - 1] != (unsigned char)kind)
			continue;
		uint32_t day = cs_get_be32(b + head);
		if (day >= from && day <= to)
			res = sum_record(out, s, q, &key, &val, head, day, err);
	}
	if (!res && rc && rc != MDB_NOTFOUND)
		res = cs_lmdb_error(err, rc, "usage");
	return res;
}

static int walk_rollups(cs_tally *out, cs_store *s, MDB_txn *txn, const char *tenant,
			const cs_usage_query *q, uint32_t from, uint32_t to, cs_error *err)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, s->env.usage, &cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	if (!tenant) {
		rc = walk_all_tenants(out, s, cur, q, from, to, err);
		mdb_cursor_close(cur);
		return rc;
	}
	char kind = kind_of(q->group_by);
	cs_key k;
	cs_key_usage(&k, tenant, kind, from, NULL);
	size_t head = k.len - 4; /* [tl][tenant][kind] */
	MDB_val key = {k.len, k.b}, val;
	int res = CS_OK;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0 && !res;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const unsigned char *b = key.mv_data;
		if (key.mv_size < head + 4 || memcmp(b, k.b, head) != 0)
			break;
		uint32_t day = cs_get_be32(b + head);
		if (day > to)
			break;
		res = sum_record(out, s, q, &key, &val, head, day, err);
	}
	mdb_cursor_close(cur);
	if (!res && rc && rc != MDB_NOTFOUND)
		res = cs_lmdb_error(err, rc, "usage");
	return res;
}

static int cmp_rows(const void *a, const void *b)
{
	return strcmp((*(Row *const *)a)->key, (*(Row *const *)b)->key);
}

static int report_of(Convstore__V1__UsageReport *r, const cs_tally *t)
{
	r->rows = calloc(t->n ? t->n : 1, sizeof(*r->rows));
	if (!r->rows)
		return CS_ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		const cs_tally_entry *e = &t->slots[i];
		if (!e->key)
			continue;
		Row *row = malloc(sizeof(*row));
		if (!row)
			return CS_ENOMEM;
		convstore__v1__usage_row__init(row);
		r->rows[r->n_rows++] = row;
		if (!(row->key = strndup((const char *)e->key, e->len)))
			return CS_ENOMEM;
		row->input_tokens = e->c.input_tokens;
		row->output_tokens = e->c.output_tokens;
		row->cached_tokens = e->c.cached_tokens;
		row->reasoning_tokens = e->c.reasoning_tokens;
		row->cost_usd = (double)e->c.cost_nanos / 1e9;
		row->responses = e->c.responses;
	}
	qsort(r->rows, r->n_rows, sizeof(*r->rows), cmp_rows);
	return CS_OK;
}

static uint32_t clamp_day(int64_t d)
{
	return d < 0 ? 0 : d > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

int cs_store_usage(Convstore__V1__UsageReport **out, cs_store *s, const char *tenant,
		   const cs_usage_query *q, cs_error *err)
{
	*out = NULL;
	if (tenant && !cs_id_valid(tenant))
		return cs_error_set(err, CS_EINVAL, "invalid tenant");
	if ((unsigned)q->group_by > CS_USAGE_TOTAL)
		return cs_error_set(err, CS_EINVAL, "unknown usage grouping %d", (int)q->group_by);
	if (q->from_day > q->to_day)
		return cs_error_set(err, CS_EINVAL, "the range's start is after its end");
	cs_tally sm = {0};
	MDB_txn *txn;
	int rc = cs_txn_begin(&txn, &s->env, false, err);
	if (!rc) {
		rc = walk_rollups(&sm, s, txn, tenant, q, clamp_day(q->from_day),
				  clamp_day(q->to_day), err);
		cs_txn_abort(&s->env, txn);
	}
	Convstore__V1__UsageReport *r = rc ? NULL : malloc(sizeof(*r));
	if (r) {
		convstore__v1__usage_report__init(r);
		if (report_of(r, &sm)) {
			protobuf_c_message_free_unpacked(&r->base, NULL);
			r = NULL;
		}
	}
	cs_tally_deinit(&sm);
	if (rc)
		return rc;
	if (!r)
		return cs_error_set(err, CS_ENOMEM, "out of memory for a usage report");
	*out = r;
	return CS_OK;
}
