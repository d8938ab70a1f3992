/*
 * keys.c - the one key encoder. Every LMDB key the store writes is built here.
 *
 * Numbers are big-endian so that LMDB's byte-wise order is numeric order: the event log is
 * scanned in position order and a stream's index in version order without a custom comparator.
 *
 *   events   [position u64 BE]                                    -> record (Event)
 *   streams  [tl u8][tenant][cl u8][conversation][version u64 BE] -> position u64 BE
 *            [tl u8][tenant][cl u8][conversation][2^64-1]         -> record (Head)
 *   idem     [tl u8][tenant][cl u8][conversation][event id]         -> version u64 BE
 *   meta     "format" -> u32 BE; "last_position", "conversations" -> u64 BE
 *
 * The read side's databases (views.c says what each holds and who writes it):
 *
 *   snaps    [stream key][version u64 BE]              -> record (Head at that version)
 *   list     [tl u8][tenant][last position u64 BE]     -> conversation id
 *   usage    [tl u8][tenant]['d'][day u32 BE]                        -> UsageCounter
 *            [tl u8][tenant]['m'][day u32 BE][model]                 -> UsageCounter
 *            [tl u8][tenant]['c'][day u32 BE][cl u8][conversation]   -> UsageCounter
 *   forks    [stream key][fork's conversation id]      -> at_version u64 BE
 *   tombs    [stream key]                              -> position of conversation_deleted
 *   retain   [stream key]                              -> (empty: the head holds the policy)
 *   calls    [stream key][version u64 BE]              -> record (RetainedCalls): the calls
 *                                                         of that event still pending when
 *                                                         retention removed it
 *
 * A list key is unique because a position belongs to one event of one conversation; walking it
 * backwards lists a tenant's conversations newest first. Usage keys start with the day so that
 * a date range is one contiguous walk.
 *
 * The length prefixes make a stream key unambiguous (tenant "a" + conversation "bc" differs from
 * "ab" + "c"), and keep one stream's entries contiguous and ordered by version. The head sits at
 * version 2^64-1, just after the stream's newest index entry, so that an append dirties one leaf
 * page for both instead of one in each of two trees: a durable commit costs in pages written.
 */
#include <string.h>

#include "internal.h"

void cs_put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

uint64_t cs_get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

void cs_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

uint32_t cs_get_be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void key_add_str(cs_key *k, const char *s, bool length_prefix)
{
	size_t n = strlen(s);
	if (length_prefix)
		k->b[k->len++] = (unsigned char)n;
	memcpy(k->b + k->len, s, n);
	k->len += n;
}

void cs_key_stream(cs_key *k, const char *tenant, const char *conversation_id)
{
	k->len = 0;
	key_add_str(k, tenant, true);
	key_add_str(k, conversation_id, true);
}

void cs_key_version(cs_key *k, const char *tenant, const char *conversation_id, uint64_t version)
{
	cs_key_stream(k, tenant, conversation_id);
	cs_put_be64(k->b + k->len, version);
	k->len += 8;
}

void cs_key_event_id(cs_key *k, const char *tenant, const char *conversation_id,
		     const char *event_id)
{
	cs_key_stream(k, tenant, conversation_id);
	key_add_str(k, event_id, false);
}

void cs_key_position(cs_key *k, uint64_t position)
{
	cs_put_be64(k->b, position);
	k->len = 8;
}

bool cs_key_is_event_of(const MDB_val *key, const cs_key *stream)
{
	return key->mv_size == stream->len + 8 &&
	       memcmp(key->mv_data, stream->b, stream->len) == 0 &&
	       cs_get_be64((const unsigned char *)key->mv_data + stream->len) != CS_HEAD_VERSION;
}

void cs_key_head(cs_key *k, const cs_key *stream)
{
	memcpy(k->b, stream->b, stream->len);
	cs_put_be64(k->b + stream->len, CS_HEAD_VERSION);
	k->len = stream->len + 8;
}

void cs_key_list(cs_key *k, const char *tenant, uint64_t position)
{
	k->len = 0;
	key_add_str(k, tenant, true);
	cs_put_be64(k->b + k->len, position);
	k->len += 8;
}

void cs_key_usage(cs_key *k, const char *tenant, char kind, uint32_t day, const char *name)
{
	k->len = 0;
	key_add_str(k, tenant, true);
	k->b[k->len++] = (unsigned char)kind;
	cs_put_be32(k->b + k->len, day);
	k->len += 4;
	if (name)
		key_add_str(k, name, kind == CS_USAGE_KEY_CONV);
}

void cs_key_fork(cs_key *k, const cs_key *parent, const char *fork_id)
{
	memcpy(k->b, parent->b, parent->len);
	k->len = parent->len;
	key_add_str(k, fork_id, false);
}

int cs_key_parse_stream(const unsigned char *b, size_t len, char tenant[CS_MAX_ID_LEN + 1],
			char conv[CS_MAX_ID_LEN + 1], size_t *used)
{
	if (len < 1 || b[0] == 0 || b[0] > CS_MAX_ID_LEN || len < 2u + b[0])
		return CS_ECORRUPT;
	size_t tl = b[0], cl = b[1 + tl];
	if (cl == 0 || cl > CS_MAX_ID_LEN || len < 2 + tl + cl)
		return CS_ECORRUPT;
	memcpy(tenant, b + 1, tl);
	tenant[tl] = 0;
	memcpy(conv, b + 2 + tl, cl);
	conv[cl] = 0;
	if (used)
		*used = 2 + tl + cl;
	return CS_OK;
}

void cs_key_at(cs_key *k, const cs_key *stream, uint64_t version)
{
	*k = *stream;
	cs_put_be64(k->b + k->len, version);
	k->len += 8;
}
