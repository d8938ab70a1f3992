/*
 * tally.c - usage counters summed by key: a small open-addressing hash table from key bytes to
 * a UsageCounter, for the queries that sum rollups (usage.c) and for rebuild and verify, which
 * sum every model response of the store (rebuild.c). Linear probing, FNV-1a, grown at 70% load:
 * a sum over n rollups costs O(n), however many distinct keys they have.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint64_t hash_of(const unsigned char *b, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static cs_tally_entry *probe(cs_tally_entry *slots, size_t cap, const void *key, size_t len)
{
	size_t i = (size_t)hash_of(key, len) & (cap - 1);
	while (slots[i].key && (slots[i].len != len || memcmp(slots[i].key, key, len) != 0))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int grow(cs_tally *t)
{
	size_t cap = t->cap ? 2 * t->cap : 64;
	cs_tally_entry *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return CS_ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].key)
			*probe(slots, cap, t->slots[i].key, t->slots[i].len) = t->slots[i];
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return CS_OK;
}

Convstore__V1__UsageCounter *cs_tally_at(cs_tally *t, const void *key, size_t len)
{
	if ((t->n + 1) * 10 > t->cap * 7 && grow(t))
		return NULL;
	cs_tally_entry *e = probe(t->slots, t->cap, key, len);
	if (e->key)
		return &e->c;
	e->key = malloc(len ? len : 1);
	if (!e->key)
		return NULL;
	memcpy(e->key, key, len);
	e->len = len;
	convstore__v1__usage_counter__init(&e->c);
	t->n++;
	return &e->c;
}

void cs_tally_deinit(cs_tally *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].key);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}
