/*
 * list.c - a tenant's conversations, newest first, paged by a cursor that stays correct while
 * appends happen between pages.
 *
 * The list index (views.c) has one entry per conversation at the position of its last event,
 * so a backward walk from the end lists newest first, and a page costs its own length whatever
 * the number of conversations. Appends move entries forward, which a plain "continue below the
 * last position returned" cursor gets wrong: a conversation not yet listed that is appended to
 * jumps above the cursor and would be skipped. So the cursor remembers the moment the listing
 * began (P0, the store's last position at the first page) along with where it stopped (C):
 *
 *     list index (positions)   ... 40 [a]  57 [b]  63 [c] | 70 [d]  81 [b']
 *                                                     P0 = 65
 *
 * A page lists, in the order of P0's moment, what had its last event at or before P0:
 *   - entries below C are unchanged since P0 (their key is still <= P0);
 *   - entries above P0 (d, b') moved after the listing began: each is placed where it was at
 *     P0 (b' back at 57, found by a binary search of its own index for the last position
 *     <= P0), and d, which did not exist at P0, is left out.
 * Every conversation that existed at P0 and still exists is thus listed exactly once. A page
 * looks at no more than CS_LIST_SCAN_MAX entries, and a listing whose conversations moved more
 * than that many times since its first page is refused (CS_EGONE: list again).
 *
 *   cursor (base64url, 30 characters):  [u8 version=1][P0 u64 BE][C u64 BE][u32 BE check]
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__Head Head;
typedef Convstore__V1__ConversationState State;

/* ---- the cursor -------------------------------------------------------------------------- */

#define CURSOR_BYTES 21

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static uint32_t check_of(const unsigned char *b, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a: catches typos and truncation, not forgery */
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

void cs_list_cursor_encode(char out[CS_CURSOR_MAX], uint64_t p0, uint64_t c)
{
	unsigned char b[CURSOR_BYTES];
	b[0] = 1;
	cs_put_be64(b + 1, p0);
	cs_put_be64(b + 9, c);
	cs_put_be32(b + 17, check_of(b, 17));
	size_t o = 0;
	for (size_t i = 0; i < CURSOR_BYTES; i += 3) {
		uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
		for (int j = 3; j >= 0; j--)
			out[o++] = b64url[(v >> (6 * j)) & 63];
	}
	out[o] = 0;
}

int cs_list_cursor_decode(uint64_t *p0, uint64_t *c, const char *s, cs_error *err)
{
	unsigned char b[CURSOR_BYTES];
	if (strlen(s) != CURSOR_BYTES / 3 * 4)
		return cs_error_set(err, CS_EINVAL, "cursor \"%.40s\" is not one we gave", s);
	for (size_t i = 0, o = 0; i < CURSOR_BYTES / 3 * 4; i += 4) {
		uint32_t v = 0;
		for (size_t j = 0; j < 4; j++) {
			const char *at = s[i + j] ? strchr(b64url, s[i + j]) : NULL;
			if (!at)
				return cs_error_set(err, CS_EINVAL,
						    "cursor \"%.40s\" is not one we gave", s);
			v = v << 6 | (uint32_t)(at - b64url);
		}
		b[o++] = (unsigned char)(v >> 16);
		b[o++] = (unsigned char)(v >> 8);
		b[o++] = (unsigned char)v;
	}
	if (b[0] != 1 || cs_get_be32(b + 17) != check_of(b, 17))
		return cs_error_set(err, CS_EINVAL, "cursor \"%.40s\" is not one we gave", s);
	*p0 = cs_get_be64(b + 1);
	*c = cs_get_be64(b + 9);
	if (*c > *p0 && *c - *p0 > 1) /* C <= P0 + 1, which would wrap at UINT64_MAX */
		return cs_error_set(err, CS_EINVAL, "cursor \"%.40s\" is not one we gave", s);
	return CS_OK;
}

/* ---- where a conversation was at P0 ------------------------------------------------------ */

/* The position of @h's last own event at or before @p0; 0 when it had none then. */
static int position_at(uint64_t *out, cs_store *s, MDB_txn *txn, const Head *h, uint64_t p0,
		       cs_error *err)
{
	*out = 0;
	uint64_t lo = cs_head_own_first(h);
	uint64_t hi = h->version;
	while (lo <= hi) { /* positions grow with versions: binary search */
		uint64_t mid = lo + (hi - lo) / 2, pos;
		int rc = cs_index_get(&pos, s, txn, h->tenant, h->id, mid, err);
		if (rc)
			return rc;
		if (pos <= p0) {
			*out = pos;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	if (*out || cs_head_own_first(h) == cs_head_own_lo(h))
		return CS_OK;
	/* Retention removed the events that were its last at P0: the state it kept at the cut
	 * says where the last removed one was. */
	cs_key stream;
	cs_key_stream(&stream, h->tenant, h->id);
	Head *base;
	uint64_t cut = cs_head_own_first(h) - 1;
	int rc = cs_snapshot_find(&base, NULL, s, txn, &stream, cut, cut, err);
	if (!rc && base && base->last_position <= p0)
		*out = base->last_position;
	cs_head_free(base);
	return rc;
}

/* A conversation to consider for the page, at its place in P0's order. */
typedef struct place {
	uint64_t order;
	char conv[CS_MAX_ID_LEN + 1];
} place;

static int by_order_desc(const void *a, const void *b)
{
	uint64_t x = ((const place *)a)->order, y = ((const place *)b)->order;
	return x < y ? 1 : x > y ? -1 : 0;
}

typedef struct lister {
	cs_store *s;
	MDB_txn *txn;
	const char *tenant;
	const cs_list_query *q;
	uint64_t p0, c;
	place *moved; /* moved since P0, placed below C, ordered newest first */
	size_t n_moved, next_moved;
	MDB_cursor *cur; /* the backward walk below C */
	MDB_val key, val;
	bool walk_done;
	cs_key prefix; /* [tl][tenant] */
} lister;

static bool of_tenant(const lister *l, const MDB_val *key)
{
	return key->mv_size == l->prefix.len + 8 &&
	       memcmp(key->mv_data, l->prefix.b, l->prefix.len) == 0;
}

/* Collect the entries above P0 that had an event at or before P0 below C. */
static int collect_moved(lister *l, cs_error *err)
{
	cs_key k;
	cs_key_list(&k, l->tenant, UINT64_MAX);
	MDB_val key = {k.len, k.b}, val;
	int rc = cs_cursor_before(l->cur, &key, &val);
	size_t seen = 0, cap = 0;
	for (; rc == 0 && of_tenant(l, &key); rc = mdb_cursor_get(l->cur, &key, &val, MDB_PREV)) {
		if (cs_get_be64((unsigned char *)key.mv_data + l->prefix.len) <= l->p0)
			break;
		if (++seen > CS_LIST_SCAN_MAX)
			return cs_error_set(err, CS_EGONE,
					    "more than %u conversations changed since this listing "
					    "began: list again from the first page",
					    CS_LIST_SCAN_MAX);
		if (val.mv_size == 0 || val.mv_size > CS_MAX_ID_LEN)
			return cs_error_set(err, CS_ECORRUPT, "a list entry is damaged");
		place pl;
		memcpy(pl.conv, val.mv_data, val.mv_size);
		pl.conv[val.mv_size] = 0;
		cs_key stream;
		cs_key_stream(&stream, l->tenant, pl.conv);
		Head *h;
		int hrc = cs_head_load(&h, l->s, l->txn, &stream, err);
		if (hrc)
			return hrc == CS_ENOTFOUND
				   ? cs_error_set(err, CS_ECORRUPT, "a list entry has no head")
				   : hrc;
		hrc = position_at(&pl.order, l->s, l->txn, h, l->p0, err);
		cs_head_free(h);
		if (hrc)
			return hrc;
		if (pl.order == 0 || pl.order >= l->c)
			continue; /* new since P0, or already listed */
		if (l->n_moved == cap) {
			cap = cap ? 2 * cap : 16;
			place *grown = realloc(l->moved, cap * sizeof(*grown));
			if (!grown)
				return cs_error_set(err, CS_ENOMEM, "out of memory listing");
			l->moved = grown;
		}
		l->moved[l->n_moved++] = pl;
	}
	if (rc && rc != MDB_NOTFOUND)
		return cs_lmdb_error(err, rc, "list");
	if (l->n_moved > 1)
		qsort(l->moved, l->n_moved, sizeof(*l->moved), by_order_desc);
	return CS_OK;
}

static int walk_start(lister *l, cs_error *err)
{
	cs_key k;
	cs_key_list(&k, l->tenant, l->c);
	l->key = (MDB_val){k.len, k.b};
	int rc = cs_cursor_before(l->cur, &l->key, &l->val);
	l->walk_done = rc != 0 || !of_tenant(l, &l->key);
	return rc && rc != MDB_NOTFOUND ? cs_lmdb_error(err, rc, "list") : CS_OK;
}

/* The next conversation in P0's order: from the walk below C or the moved ones. 0: none. */
static int next_place(place *out, lister *l, cs_error *err)
{
	uint64_t walk =
	    l->walk_done ? 0 : cs_get_be64((unsigned char *)l->key.mv_data + l->prefix.len);
	uint64_t moved = l->next_moved < l->n_moved ? l->moved[l->next_moved].order : 0;
	if (!walk && !moved) {
		out->order = 0;
		return CS_OK;
	}
	if (moved > walk) {
		*out = l->moved[l->next_moved++];
		return CS_OK;
	}
	if (l->val.mv_size == 0 || l->val.mv_size > CS_MAX_ID_LEN)
		return cs_error_set(err, CS_ECORRUPT, "a list entry is damaged");
	out->order = walk;
	memcpy(out->conv, l->val.mv_data, l->val.mv_size);
	out->conv[l->val.mv_size] = 0;
	int rc = mdb_cursor_get(l->cur, &l->key, &l->val, MDB_PREV);
	l->walk_done = rc != 0 || !of_tenant(l, &l->key);
	return rc && rc != MDB_NOTFOUND ? cs_lmdb_error(err, rc, "list") : CS_OK;
}

static const char *meta_get(const Head *h, const char *key)
{
	for (size_t i = 0; i < h->n_metadata; i++)
		if (strcmp(h->metadata[i]->key, key) == 0)
			return h->metadata[i]->value;
	return NULL;
}

static bool matches(const Head *h, const cs_list_query *q)
{
	if (q->status && *q->status && strcmp(h->status, q->status) != 0)
		return false;
	if (q->updated_after && (!h->updated_at || h->updated_at->seconds <= q->updated_after))
		return false;
	for (size_t i = 0; i < q->n_meta; i++) {
		const char *v = meta_get(h, q->meta_keys[i]);
		if (!v || strcmp(v, q->meta_values[i]) != 0)
			return false;
	}
	return true;
}

static int page_add(Convstore__V1__ConversationList *page, lister *l, const Head *h, size_t limit,
		    cs_error *err)
{
	if (!page->conversations) {
		page->conversations = calloc(limit, sizeof(*page->conversations));
		if (!page->conversations)
			return cs_error_set(err, CS_ENOMEM, "out of memory listing");
	}
	State *st;
	cs_history hist;
	int rc = cs_summary_of(&st, h, err);
	if (!rc) /* first_version as the state view says it (a fork's parent may have gaps) */
		rc = cs_history_open(&hist, l->s, l->txn, h, err);
	if (!rc)
		st->first_version = cs_history_first_version(&hist);
	if (st && !rc)
		page->conversations[page->n_conversations++] = st;
	else if (st)
		protobuf_c_message_free_unpacked(&st->base, NULL);
	return rc;
}

static int fill_page(Convstore__V1__ConversationList *page, lister *l, size_t limit, uint64_t *stop,
		     cs_error *err)
{
	size_t scanned = 0;
	place pl;
	int rc;
	*stop = 0;
	while (page->n_conversations < limit && scanned < CS_LIST_SCAN_MAX) {
		if ((rc = next_place(&pl, l, err)) || pl.order == 0) {
			*stop = 0; /* the end: no next page */
			return rc;
		}
		scanned++;
		*stop = pl.order;
		cs_key stream;
		cs_key_stream(&stream, l->tenant, pl.conv);
		Head *h;
		if ((rc = cs_head_load(&h, l->s, l->txn, &stream, err)))
			return rc == CS_ENOTFOUND
				   ? cs_error_set(err, CS_ECORRUPT, "a list entry has no head")
				   : rc;
		if (matches(h, l->q))
			rc = page_add(page, l, h, limit, err);
		cs_head_free(h);
		if (rc)
			return rc;
	}
	/* Stopped by the limit or the scan cap: is anything left? */
	bool more = !l->walk_done || l->next_moved < l->n_moved;
	if (!more)
		*stop = 0;
	return CS_OK;
}

static int check_query(const cs_list_query *q, size_t *limit, cs_error *err)
{
	*limit = q->limit ? q->limit : 100;
	if (*limit > CS_LIST_LIMIT_MAX)
		return cs_error_set(err, CS_EINVAL, "limit %zu is over %u", q->limit,
				    CS_LIST_LIMIT_MAX);
	if (q->status && *q->status && strcmp(q->status, "active") != 0 &&
	    strcmp(q->status, "archived") != 0)
		return cs_error_set(err, CS_EINVAL, "status \"%.32s\" is not active or archived",
				    q->status);
	if (q->n_meta > CS_MAX_METADATA_PAIRS)
		return cs_error_set(err, CS_EINVAL, "more than %d metadata filters",
				    CS_MAX_METADATA_PAIRS);
	for (size_t i = 0; i < q->n_meta; i++)
		if (!q->meta_keys[i] || !q->meta_values[i])
			return cs_error_set(err, CS_EINVAL, "a metadata filter is missing");
	return CS_OK;
}

static int list_txn(Convstore__V1__ConversationList *page, lister *l, size_t limit, cs_error *err)
{
	int rc = mdb_cursor_open(l->txn, l->s->env.list, &l->cur);
	if (rc)
		return cs_lmdb_error(err, rc, "cursor");
	rc = CS_OK;
	if (!l->q->cursor || !*l->q->cursor) {
		rc = cs_meta_get_u64(l->txn, &l->s->env, CS_META_LAST_POSITION, &l->p0, err);
		l->c = l->p0 + 1;
	}
	if (!rc)
		rc = collect_moved(l, err);
	if (!rc)
		rc = walk_start(l, err);
	uint64_t stop = 0;
	if (!rc)
		rc = fill_page(page, l, limit, &stop, err);
	mdb_cursor_close(l->cur);
	if (!rc && stop) {
		char next[CS_CURSOR_MAX];
		cs_list_cursor_encode(next, l->p0, stop);
		page->next_cursor = strdup(next);
		page->next_cursor_opt_case =
		    CONVSTORE__V1__CONVERSATION_LIST__NEXT_CURSOR_OPT_NEXT_CURSOR;
		if (!page->next_cursor)
			rc = cs_error_set(err, CS_ENOMEM, "out of memory listing");
	}
	return rc;
}

int cs_store_list(Convstore__V1__ConversationList **out, cs_store *s, const char *tenant,
		  const cs_list_query *q, cs_error *err)
{
	*out = NULL;
	size_t limit;
	if (!tenant || !cs_id_valid(tenant))
		return cs_error_set(err, CS_EINVAL, "invalid tenant");
	int rc = check_query(q, &limit, err);
	lister l = {.s = s, .tenant = tenant, .q = q};
	if (!rc && q->cursor && *q->cursor)
		rc = cs_list_cursor_decode(&l.p0, &l.c, q->cursor, err);
	if (rc)
		return rc;
	l.prefix.len = 0;
	l.prefix.b[l.prefix.len++] = (unsigned char)strlen(tenant);
	memcpy(l.prefix.b + 1, tenant, strlen(tenant));
	l.prefix.len += strlen(tenant);
	Convstore__V1__ConversationList *page = malloc(sizeof(*page));
	if (!page)
		return cs_error_set(err, CS_ENOMEM, "out of memory listing");
	convstore__v1__conversation_list__init(page);
	if ((rc = cs_txn_begin(&l.txn, &s->env, false, err)) == CS_OK) {
		rc = list_txn(page, &l, limit, err);
		cs_txn_abort(&s->env, l.txn);
	}
	free(l.moved);
	if (rc) {
		protobuf_c_message_free_unpacked(&page->base, NULL);
		return rc;
	}
	*out = page;
	return CS_OK;
}
