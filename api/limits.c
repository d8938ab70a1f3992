/*
 * limits.c - per-tenant rate limits: a token bucket per tenant, --rate-limit requests a second
 * with bursts of --rate-burst, checked right after auth so that a tenant over its rate costs
 * the server one hash lookup and a 429 with Retry-After (the seconds until a token is back).
 *
 * The buckets live in a fixed hash table of striped locks; a tenant's bucket is created on its
 * first request and never freed (tenants come from the key file, or are the one "default"), so
 * the table cannot be grown by anyone without a valid token. /healthz, /readyz and /metrics are
 * not limited: probes and scrapes must keep working under load.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define BUCKETS 256u

typedef struct bucket {
	struct bucket *next;
	double tokens;
	uint64_t at_us; /* when tokens was last brought up to date */
	char tenant[];
} bucket;

struct cs_limits {
	pthread_mutex_t lock[BUCKETS];
	bucket *slot[BUCKETS];
};

static uint64_t mono_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

int cs_limits_init(cs_server *srv, cs_error *err)
{
	if (!srv->cfg.rate_limit)
		return CS_OK;
	cs_limits *l = calloc(1, sizeof(*l));
	if (!l)
		return cs_error_set(err, CS_ENOMEM, "out of memory for rate limits");
	for (size_t i = 0; i < BUCKETS; i++)
		pthread_mutex_init(&l->lock[i], NULL);
	srv->limits = l;
	return CS_OK;
}

void cs_limits_free(cs_server *srv)
{
	cs_limits *l = srv->limits;
	if (!l)
		return;
	for (size_t i = 0; i < BUCKETS; i++) {
		while (l->slot[i]) {
			bucket *b = l->slot[i];
			l->slot[i] = b->next;
			free(b);
		}
		pthread_mutex_destroy(&l->lock[i]);
	}
	free(l);
	srv->limits = NULL;
}

int cs_rate_check(cs_req *r, cs_error *err)
{
	cs_limits *l = r->srv->limits;
	if (!l || !r->tenant || r->role == CS_ROLE_OPERATOR ||
	    cs_routes[r->route].role == CS_ROLE_NONE)
		return CS_OK;
	double rate = r->srv->cfg.rate_limit, burst = r->srv->cfg.rate_burst;
	uint32_t h = 2166136261u;
	for (const char *p = r->tenant; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	size_t i = h % BUCKETS;
	uint64_t now = mono_us();
	pthread_mutex_lock(&l->lock[i]);
	bucket *b = l->slot[i];
	while (b && strcmp(b->tenant, r->tenant) != 0)
		b = b->next;
	if (!b && (b = calloc(1, sizeof(*b) + strlen(r->tenant) + 1))) {
		strcpy(b->tenant, r->tenant);
		b->tokens = burst;
		b->at_us = now;
		b->next = l->slot[i];
		l->slot[i] = b;
	}
	bool ok = true;
	double wait_s = 0;
	if (b) {
		b->tokens = fmin(burst, b->tokens + (double)(now - b->at_us) / 1e6 * rate);
		b->at_us = now;
		ok = b->tokens >= 1;
		if (ok)
			b->tokens -= 1;
		else
			wait_s = (1 - b->tokens) / rate;
	}
	pthread_mutex_unlock(&l->lock[i]);
	if (ok)
		return CS_OK;
	r->retry_after = (unsigned)ceil(wait_s);
	if (!r->retry_after)
		r->retry_after = 1;
	return cs_error_set(err, CS_HTTP_ERATE,
			    "tenant '%s' is over its rate of %u requests a second (burst %u)",
			    r->tenant, r->srv->cfg.rate_limit, r->srv->cfg.rate_burst);
}
