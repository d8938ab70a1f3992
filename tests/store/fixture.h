/*
 * tests/store/fixture.h - what every store test needs around the store itself: a fresh temp
 * folder (removed at the end), opening a store in it, and small read helpers that return values
 * to assert on, among them fx_walk_feed(), the one walk over the whole global feed. Nothing here
 * asserts: failures come back as values (or a message on stderr and exit 1 when the test cannot
 * go on, e.g. no temp folder).
 */
#ifndef CONVSTORE_TESTS_STORE_FIXTURE_H
#define CONVSTORE_TESTS_STORE_FIXTURE_H

#include <ctype.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "convstore/store.h"

/* Exit code that tells meson the test was skipped. */
#define FX_SKIP 77

/* A fresh folder /tmp/convstore-<name>-XXXXXX in @out (PATH_MAX bytes). Exits 1 on failure. */
static inline void fx_tmpdir(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "/tmp/convstore-%s-XXXXXX", name);
	if (!mkdtemp(out)) {
		perror("mkdtemp");
		exit(1);
	}
}

static inline int fx_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 ? 0 : -1;
}

/* rm -rf @path (it must be one of ours, under /tmp). */
static inline void fx_rmrf(const char *path)
{
	if (strncmp(path, "/tmp/convstore-", 15) != 0)
		return;
	nftw(path, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Open a store in @path with the given map sizes (0: defaults); no_sync unless @durable. */
static inline int fx_open(cs_store **out, const char *path, size_t map_size, size_t max_map_size,
			  bool durable, cs_error *err)
{
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = path;
	o.map_size = map_size;
	o.max_map_size = max_map_size;
	o.no_sync = !durable;
	return cs_store_open(out, &o, err);
}

/* The store's stats, all zero (and a message) when they cannot be read. */
static inline cs_store_stats fx_stats(cs_store *s)
{
	cs_store_stats st = {0};
	cs_error err = CS_ERROR_INIT;
	if (cs_store_stats_get(&st, s, &err) != CS_OK)
		fprintf(stderr, "cs_store_stats_get: %s\n", err.msg);
	return st;
}

/* The conversation's head version, 0 when it does not exist, UINT64_MAX on another error. */
static inline uint64_t fx_version(cs_store *s, const char *tenant, const char *conv)
{
	Convstore__V1__Head *h = NULL;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_head(&h, s, tenant, conv, &err);
	if (rc == CS_ENOTFOUND)
		return 0;
	if (rc != CS_OK) {
		fprintf(stderr, "cs_store_head %s/%s: %s\n", tenant, conv, err.msg);
		return UINT64_MAX;
	}
	uint64_t v = h->version;
	protobuf_c_message_free_unpacked(&h->base, NULL);
	return v;
}

/*
 * Read a whole conversation forward into @out (zero-initialised by the caller, deinit after),
 * following page.next across pages of @page_size. Returns the code of the first failing read.
 */
static inline int fx_read_all(cs_event_page *out, cs_store *s, const char *tenant, const char *conv,
			      size_t page_size, cs_error *err)
{
	uint64_t from = 1;
	while (from) {
		cs_event_page p = {0};
		int rc =
		    cs_store_read_stream(&p, s, tenant, conv, from, page_size, CS_FORWARD, err);
		if (rc != CS_OK) {
			cs_event_page_deinit(&p);
			return rc;
		}
		Convstore__V1__Event **grown =
		    realloc(out->events, (out->n + p.n + 1) * sizeof *grown);
		if (!grown) {
			cs_event_page_deinit(&p);
			return CS_ENOMEM;
		}
		out->events = grown;
		memcpy(out->events + out->n, p.events, p.n * sizeof *p.events);
		out->n += p.n;
		/* the events now belong to @out: free only the page's array */
		free(p.events);
		if (p.n == 0 || p.next == from)
			break;
		from = p.next;
	}
	out->next = 0;
	return CS_OK;
}

/*
 * What fx_walk_feed() saw: the events read, those whose position was not above the one before
 * (the first is compared with 0), the pages whose next was not what read_feed promises (the
 * position of their last event, or the position asked from when empty), and the position of
 * the last event (0 when none).
 */
typedef struct fx_feed_walk {
	size_t events;
	size_t not_increasing;
	size_t bad_next;
	uint64_t last_position;
} fx_feed_walk;

/* Called by fx_walk_feed() on every event, in feed order, with the caller's @ctx. */
typedef void (*fx_feed_visit)(const Convstore__V1__Event *e, void *ctx);

/*
 * Walk the whole global feed (every tenant) from position 0 in pages of @page_size, calling
 * @visit (NULL: none) on each event and tallying into @out, until an empty page, or a page whose
 * next does not move forward (counted in bad_next, so that a stuck cursor cannot loop forever).
 * Returns CS_OK or the code of the failing read; @out then holds what was read before it.
 */
static inline int fx_walk_feed(fx_feed_walk *out, cs_store *s, size_t page_size,
			       fx_feed_visit visit, void *ctx, cs_error *err)
{
	memset(out, 0, sizeof *out);
	uint64_t after = 0;
	for (;;) {
		cs_event_page p = {0};
		int rc = cs_store_read_feed(&p, s, NULL, after, page_size, err);
		if (rc != CS_OK) {
			cs_event_page_deinit(&p);
			return rc;
		}
		for (size_t i = 0; i < p.n; i++) {
			const Convstore__V1__Event *e = p.events[i];
			out->not_increasing += e->position <= out->last_position;
			out->last_position = e->position;
			if (visit)
				visit(e, ctx);
		}
		out->events += p.n;
		out->bad_next += p.next != (p.n ? out->last_position : after);
		bool more = p.n > 0 && p.next > after;
		after = p.next;
		cs_event_page_deinit(&p);
		if (!more)
			return CS_OK;
	}
}

/* Count a conversation's events, -1 on error. */
static inline long fx_count(cs_store *s, const char *tenant, const char *conv)
{
	cs_event_page all = {0};
	cs_error err = CS_ERROR_INIT;
	int rc = fx_read_all(&all, s, tenant, conv, 1000, &err);
	long n = rc == CS_OK ? (long)all.n : rc == CS_ENOTFOUND ? 0 : -1;
	cs_event_page_deinit(&all);
	return n;
}

/* Now, in seconds since the epoch. */
static inline int64_t fx_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* Whether @s is a UUID v4 (8-4-4-4-12 hex digits, version nibble 4, RFC 4122 variant). */
static inline bool fx_is_uuid_v4(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return s[14] == '4' && strchr("89abAB", s[19]) != NULL;
}

#endif
