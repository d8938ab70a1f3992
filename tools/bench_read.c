/*
 * bench_read - the read side's costs (issue 3), in one run, as one table:
 *
 *   1. state reads/s of a 200-event conversation (cs_store_state now; also the summary and the
 *      messages view);
 *   2. state-at-version latency of a 100,000-event conversation at versions 1, 50,000 and
 *      100,000, in a store with the default snapshot interval and in one that never snapshots
 *      (snapshot_every = UINT_MAX), for the full state (which reads every event up to N for the
 *      transcript) and for the summary (no transcript): the ratio without/with snapshots is
 *      what snapshots buy;
 *   3. replay (fold) throughput over the whole tau-bench corpus: each conversation's summary and
 *      state at its version n-1 in the never-snapshot store, i.e. a fresh fold of events 1..n-1
 *      (at its last version the summary is the head itself and folds nothing);
 *   4. list-page latency (limit 100) with 1,000 and 1,000,000 conversations: the first page,
 *      page 51 reached through cursors (the last page when there are fewer), and a page whose
 *      filter matches nothing (it scans up to CS_LIST_SCAN_MAX entries, so it costs more with
 *      1,000,000 conversations than with 1,000 until the cap); the ratio 1,000,000 / 1,000 shows
 * whether a page's cost depends on how many conversations exist.
 *
 * --quick (the meson test) uses 5,000 events and 1,000 / 20,000 conversations and shorter
 * timing windows. --corpus DIR names the corpus folder (default $CONVSTORE_CORPUS); without the
 * corpus row 3 is skipped.
 *
 * Method: every store is a fresh no_sync store under one temp dir in /tmp, removed at the end
 * (what is measured is reading, not durability). A latency is the median of repeated calls over
 * a window of wall time (at least 3 calls). Every call's return code is checked, and the views'
 * versions against what was appended: any failure stops the run with exit status 1.
 *
 * The corpus is mapped to events by tests/store/corpus.h, the same mapping the corpus tests
 * use; it needs only the store's public API and Jansson.
 */
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "convstore/store.h"
#include "corpus.h"
#include "events.h"

#define TENANT	  "bench"
#define MAX_REPS  100000
#define INGEST_TH 4

static struct {
	bool quick;
	const char *corpus;
	uint64_t long_events;
	size_t list_small, list_big;
	double window; /* seconds per measurement */
	char dir[PATH_MAX];
} cfg;

static ev_arena A = EV_ARENA_INIT;

/* ---- helpers ----------------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb, (void)type, (void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	if (cfg.dir[0])
		nftw(cfg.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	ev_arena_free(&A);
}

static void die(const char *what, int rc, const cs_error *err)
{
	fprintf(stderr, "bench_read: %s: rc %d: %s\n", what, rc, err ? err->msg : "");
	cleanup();
	exit(1);
}

static cs_store *open_store(const char *name, unsigned snapshot_every)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", cfg.dir, name);
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = path;
	o.no_sync = true;
	o.snapshot_every = snapshot_every;
	cs_store *s = NULL;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_open(&s, &o, &err);
	if (rc)
		die("open", rc, &err);
	return s;
}

static void append(cs_store *s, const char *conv, Convstore__V1__Event **evs, size_t n)
{
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_append(&r, s, TENANT, conv, CS_ANY_VERSION, evs, n, &err);
	if (rc)
		die("append", rc, &err);
}

/* Event @i of a synthetic agent conversation: user, model response with a call, tool result. */
static Convstore__V1__Event *synthetic(ev_arena *a, uint64_t i)
{
	const char *call = ev_strf(a, "c%llu", (unsigned long long)(i / 3));
	switch (i % 3) {
	case 0:
		return ev_message(a, NULL, "user",
				  ev_strf(a, "%s %llu", ev_prose(a, 200), (unsigned long long)i));
	case 1: {
		Convstore__V1__Event *e = ev_model_response(a, NULL, "gpt-4o", NULL);
		ev_add_tool_call(a, e, call, "lookup", "{\"q\":\"something to look up\"}");
		ev_set_usage(a, e, 900, 40, 0, 0, 0.0012);
		return e;
	}
	default: return ev_tool_result(a, NULL, call, "lookup", ev_prose(a, 300));
	}
}

/* Append @n synthetic events to @conv in batches of 1,000. */
static void fill(cs_store *s, const char *conv, uint64_t n)
{
	Convstore__V1__Event *batch[1000];
	for (uint64_t done = 0; done < n;) {
		ev_arena a = EV_ARENA_INIT;
		size_t k = 0;
		while (k < 1000 && done < n)
			batch[k++] = synthetic(&a, done++);
		append(s, conv, batch, k);
		ev_arena_free(&a);
	}
}

typedef int (*read_fn)(cs_store *s, const char *conv, uint64_t at, uint64_t want_version);

static int read_state(cs_store *s, const char *conv, uint64_t at, uint64_t want)
{
	Convstore__V1__ConversationState *st = NULL;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_state(&st, s, TENANT, conv, at, &err);
	if (!rc && st->version != want)
		rc = CS_ECORRUPT;
	if (st)
		protobuf_c_message_free_unpacked(&st->base, NULL);
	if (rc)
		die("state", rc, &err);
	return rc;
}

static int read_summary(cs_store *s, const char *conv, uint64_t at, uint64_t want)
{
	Convstore__V1__ConversationState *st = NULL;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_summary(&st, s, TENANT, conv, at, &err);
	if (!rc && st->version != want)
		rc = CS_ECORRUPT;
	if (st)
		protobuf_c_message_free_unpacked(&st->base, NULL);
	if (rc)
		die("summary", rc, &err);
	return rc;
}

static int read_messages(cs_store *s, const char *conv, uint64_t at, uint64_t want)
{
	(void)want;
	Convstore__V1__ChatTranscript *t = NULL;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_messages(&t, s, TENANT, conv, at, &err);
	if (t)
		protobuf_c_message_free_unpacked(&t->base, NULL);
	if (rc)
		die("messages", rc, &err);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median seconds of one call of @fn, over a window of cfg.window (at least 3 calls). */
static double median_latency(read_fn fn, cs_store *s, const char *conv, uint64_t at, uint64_t want,
			     size_t *calls)
{
	static double t[MAX_REPS];
	size_t n = 0;
	double start = now_s();
	while (n < MAX_REPS && (n < 3 || now_s() - start < cfg.window)) {
		double t0 = now_s();
		fn(s, conv, at, want);
		t[n++] = now_s() - t0;
	}
	qsort(t, n, sizeof *t, cmp_double);
	if (calls)
		*calls = n;
	return t[n / 2];
}

static void fmt_time(char *out, size_t len, double s)
{
	if (s < 1e-3)
		snprintf(out, len, "%.1f us", s * 1e6);
	else if (s < 1)
		snprintf(out, len, "%.2f ms", s * 1e3);
	else
		snprintf(out, len, "%.2f s", s);
}

/* ---- 1. state reads/s -------------------------------------------------------------------- */

static void bench_small(void)
{
	cs_store *s = open_store("small", 0);
	fill(s, "c200", 200);
	printf("\n1. reads of a 200-event conversation (default snapshots)\n");
	printf("   %-28s %14s %12s\n", "call", "reads/s", "median");
	struct {
		const char *name;
		read_fn fn;
	} rows[] = {{"cs_store_state (now)", read_state},
		    {"cs_store_summary (now)", read_summary},
		    {"cs_store_messages (now)", read_messages}};
	for (size_t i = 0; i < 3; i++) {
		size_t calls;
		double start = now_s();
		double med = median_latency(rows[i].fn, s, "c200", 0, 200, &calls);
		double rate = (double)calls / (now_s() - start);
		char m[32];
		fmt_time(m, sizeof m, med);
		printf("   %-28s %14.0f %12s\n", rows[i].name, rate, m);
	}
	cs_store_close(s);
}

/* ---- 2. time travel in a long conversation ----------------------------------------------- */

static void bench_long(void)
{
	uint64_t n = cfg.long_events;
	double t0 = now_s();
	cs_store *snap = open_store("long-snap", 0);
	fill(snap, "long", n);
	double t1 = now_s();
	cs_store *never = open_store("long-never", UINT_MAX);
	fill(never, "long", n);
	double t2 = now_s();
	printf("\n2. state at version N of a %llu-event conversation (ingest: %.1f s with "
	       "snapshots every %u, %.1f s without)\n",
	       (unsigned long long)n, t1 - t0, CS_DEFAULT_SNAPSHOT_EVERY, t2 - t1);
	printf("   %-10s %-9s %14s %14s %10s\n", "version", "view", "snapshots", "no snapshots",
	       "ratio");
	uint64_t at[] = {1, n / 2, n};
	for (size_t i = 0; i < 3; i++) {
		for (int summary = 1; summary >= 0; summary--) {
			read_fn fn = summary ? read_summary : read_state;
			double a = median_latency(fn, snap, "long", at[i], at[i], NULL);
			double b = median_latency(fn, never, "long", at[i], at[i], NULL);
			char sa[32], sb[32];
			fmt_time(sa, sizeof sa, a);
			fmt_time(sb, sizeof sb, b);
			printf("   %-10llu %-9s %14s %14s %9.1fx\n", (unsigned long long)at[i],
			       summary ? "summary" : "state", sa, sb, b / a);
		}
	}
	cs_store_close(snap);
	cs_store_close(never);
}

/* ---- 3. replay over the corpus ----------------------------------------------------------- */

static void bench_replay(void)
{
	static corpus c;
	int loaded = corpus_load(&c, &A, cfg.corpus);
	if (loaded <= 0) {
		printf("\n3. replay: corpus %s\n", loaded == 0 ? "absent: skipped" : "malformed");
		corpus_free(&c);
		if (loaded < 0) {
			cleanup();
			exit(1);
		}
		return;
	}
	cs_store *never = open_store("corpus-never", UINT_MAX);
	char id[32];
	for (size_t k = 0; k < c.n_convs; k++) {
		snprintf(id, sizeof id, "tau-%03zu", k);
		append(never, id, c.convs[k].events, c.convs[k].n);
	}
	printf("\n3. replay (fresh fold, no snapshots) over the corpus: %zu conversations, %zu "
	       "events\n",
	       c.n_convs, c.n_messages);
	printf("   %-28s %14s %10s\n", "view at version n-1", "events/s", "passes");
	for (int summary = 1; summary >= 0; summary--) {
		double start = now_s();
		size_t passes = 0;
		do {
			for (size_t k = 0; k < c.n_convs; k++) {
				snprintf(id, sizeof id, "tau-%03zu", k);
				(summary ? read_summary : read_state)(never, id, c.convs[k].n - 1,
								      c.convs[k].n - 1);
			}
			passes++;
		} while (now_s() - start < cfg.window);
		double rate = (double)(passes * (c.n_messages - c.n_convs)) / (now_s() - start);
		printf("   %-28s %14.0f %10zu\n", summary ? "cs_store_summary" : "cs_store_state",
		       rate, passes);
	}
	cs_store_close(never);
	corpus_free(&c);
}

/* ---- 4. list pages ----------------------------------------------------------------------- */

typedef struct ingest {
	cs_store *s;
	size_t from, to;
} ingest;

static void *ingest_convs(void *arg)
{
	ingest *in = arg;
	for (size_t i = in->from; i < in->to; i++) {
		ev_arena a = EV_ARENA_INIT;
		char id[32];
		snprintf(id, sizeof id, "conv-%07zu", i);
		Convstore__V1__Event *e = ev_message(&a, NULL, "user", "hello there");
		append(in->s, id, &e, 1);
		ev_arena_free(&a);
	}
	return NULL;
}

static cs_store *list_store(size_t n, double *secs)
{
	cs_store *s = open_store(ev_strf(&A, "list-%zu", n), 0);
	pthread_t th[INGEST_TH];
	ingest parts[INGEST_TH];
	double t0 = now_s();
	for (size_t i = 0; i < INGEST_TH; i++) {
		parts[i] = (ingest){s, n * i / INGEST_TH, n * (i + 1) / INGEST_TH};
		if (pthread_create(&th[i], NULL, ingest_convs, &parts[i]))
			die("pthread_create", -1, NULL);
	}
	for (size_t i = 0; i < INGEST_TH; i++)
		pthread_join(th[i], NULL);
	*secs = now_s() - t0;
	return s;
}

/* One page; its cursor copied into @next (empty at the end). */
static void list_page(cs_store *s, const cs_list_query *q, char *next)
{
	Convstore__V1__ConversationList *l = NULL;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_list(&l, s, TENANT, q, &err);
	if (rc)
		die("list", rc, &err);
	next[0] = '\0';
	if (l->next_cursor_opt_case ==
	    CONVSTORE__V1__CONVERSATION_LIST__NEXT_CURSOR_OPT_NEXT_CURSOR)
		snprintf(next, CS_CURSOR_MAX, "%s", l->next_cursor);
	protobuf_c_message_free_unpacked(&l->base, NULL);
}

static cs_list_query list_query;

static int read_list(cs_store *s, const char *conv, uint64_t at, uint64_t want)
{
	(void)conv, (void)at, (void)want;
	char next[CS_CURSOR_MAX];
	list_page(s, &list_query, next);
	return CS_OK;
}

/* Median latency of three kinds of page in @s. */
static void list_latencies(cs_store *s, double out[3])
{
	static char deep[CS_CURSOR_MAX];
	cs_list_query q = {.limit = 100};
	list_query = q;
	out[0] = median_latency(read_list, s, NULL, 0, 0, NULL);
	/* the cursor of page 51, or of the last page when there are fewer */
	char cur[CS_CURSOR_MAX] = "";
	deep[0] = '\0';
	for (int i = 0; i < 50; i++) {
		q.cursor = i ? deep : NULL;
		list_page(s, &q, cur);
		if (!cur[0])
			break;
		memcpy(deep, cur, sizeof deep);
	}
	list_query.cursor = deep[0] ? deep : NULL;
	out[1] = median_latency(read_list, s, NULL, 0, 0, NULL);
	list_query.cursor = NULL;
	list_query.status = "archived"; /* nothing matches: a page scans its maximum */
	out[2] = median_latency(read_list, s, NULL, 0, 0, NULL);
	list_query.status = NULL;
}

static void bench_list(void)
{
	double ta, tb, a[3], b[3];
	cs_store *small = list_store(cfg.list_small, &ta);
	list_latencies(small, a);
	cs_store_close(small);
	cs_store *big = list_store(cfg.list_big, &tb);
	list_latencies(big, b);
	cs_store_close(big);
	printf(
	    "\n4. list pages (limit 100), ingest %.1f s and %.1f s (one event per conversation, %d "
	    "threads)\n",
	    ta, tb, INGEST_TH);
	printf("   %-26s %14zu %14zu %10s\n", "page \\ conversations", cfg.list_small, cfg.list_big,
	       "ratio");
	const char *names[] = {"first page", "page 51 or last (cursor)", "filter matching nothing"};
	for (int i = 0; i < 3; i++) {
		char sa[32], sb[32];
		fmt_time(sa, sizeof sa, a[i]);
		fmt_time(sb, sizeof sb, b[i]);
		printf("   %-26s %14s %14s %9.2fx\n", names[i], sa, sb, b[i] / a[i]);
	}
}

int main(int argc, char **argv)
{
	cfg.corpus = getenv("CONVSTORE_CORPUS");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			cfg.quick = true;
		else if (!strcmp(argv[i], "--corpus") && i + 1 < argc)
			cfg.corpus = argv[++i];
		else {
			fprintf(stderr, "usage: bench_read [--quick] [--corpus DIR]\n");
			return 2;
		}
	}
	cfg.long_events = cfg.quick ? 5000 : 100000;
	cfg.list_small = 1000;
	cfg.list_big = cfg.quick ? 20000 : 1000000;
	cfg.window = cfg.quick ? 0.2 : 1.0;
	snprintf(cfg.dir, sizeof cfg.dir, "/tmp/convstore-bench-read-XXXXXX");
	if (!mkdtemp(cfg.dir)) {
		perror("mkdtemp");
		return 1;
	}
	printf("bench_read%s: no_sync stores in %s, %ld cores online\n",
	       cfg.quick ? " --quick" : "", cfg.dir, sysconf(_SC_NPROCESSORS_ONLN));
	bench_small();
	bench_long();
	bench_replay();
	bench_list();
	cleanup();
	return 0;
}
