/*
 * bench_append - durable append throughput of the store's group commit, measured against plain
 * LMDB in the same run.
 *
 * What it measures: events per second that cs_store_append() acknowledges as durable, for 1 KiB
 * `message` events (role user, content 1024 bytes of pseudo-random printable text, so zlib gains
 * little), with 1, 4, 16 and 64 threads (--threads) each appending ONE event per call to its own
 * conversation with CS_ANY_VERSION, and in a batched mode (1 and 16 threads, 100 events per
 * call). Each row also gives the p50/p99 latency of one call and the events the store committed
 * per LMDB transaction (from cs_store_stats_get, warm-up included).
 *
 * Why the baseline is plain LMDB: the machines this runs on are shared and their disks noisy, so
 * an absolute events/s figure from one run says little about the next. What group commit buys is
 * fewer syncs per event, and that gain shows as a RATIO to the simplest durable way to write the
 * same bytes to the same disk in the same run: the same packed Event written straight to LMDB
 * (own env in its own directory, one named db, an 8-byte big-endian counter as key, MDB_APPEND,
 * default durable flags) with one write transaction, and so one durable commit, per event (an
 * LMDB commit syncs the data pages, then the meta page; the store's commits pay the same). The
 * baseline runs from 1 thread (the reference of every ratio) and from 16 threads contending on
 * LMDB's writer lock, which shows that threads alone buy nothing without batching.
 *
 * This is the only place outside store/ that links LMDB directly, and only for the baseline;
 * everything about the store goes through convstore/store.h.
 *
 * Method: every row runs in a fresh directory under one temp dir, removed at the end. The
 * workers run through a warm-up and then a window of fixed wall time (--seconds, default 2 s);
 * a call counts when it completes inside the window. fsync on tmpfs costs nothing and would make
 * every figure meaningless, so when /tmp is tmpfs the temp dir goes under the current directory
 * instead; the filesystem used is printed. Every append's return and versions are checked, and
 * after each row the events held are compared with the events acknowledged: any failure stops
 * the benchmark with exit status 1. SIGINT, SIGTERM and SIGPIPE stop it too, temp dir removed.
 *
 * Not measured: reads, the HTTP layer, recovery, no_sync stores.
 */
#include <assert.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "convstore/store.h"

#define CONTENT_BYTES	   1024
#define PACKED_MAX	   2048
#define BATCH_EVENTS	   100
#define CONTENDED_THREADS  16
#define MAX_THREAD_COUNTS  16
#define MAX_THREADS	   1024
#define MAX_ROWS	   (2 + MAX_THREAD_COUNTS + 2)
#define DEFAULT_SECONDS	   2.0
#define QUICK_SECONDS	   0.5
#define MAX_WARMUP_SECONDS 0.5
#define LMDB_MAP_BYTES	   ((size_t)1 << 30)
#define BENCH_TENANT	   "bench"
#define NS_PER_S	   1e9

/* ------------------------------------------------------------------------------------------ */
/* Small helpers: clock, byte order, directories                                                */
/* ------------------------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put_be64(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* Remove @path and everything under it; a failure is only reported, as it ends no result. */
static void rm_tree(const char *path)
{
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
		fprintf(stderr, "bench_append: cannot remove %s: %s\n", path, strerror(errno));
}

/*
 * Name the filesystem holding @path in @out and say whether it lives in memory, where fsync is
 * free. statfs magic numbers, as in linux/magic.h.
 */
static void fs_describe(char *out, size_t len, bool *in_memory, const char *path)
{
	static const struct {
		unsigned long magic;
		const char *name;
		bool ram;
	} known[] = {
	    {0xEF53, "ext2/3/4", false},  {0x58465342, "xfs", false},
	    {0x9123683E, "btrfs", false}, {0x2FC12FC1, "zfs", false},
	    {0xF2F52010, "f2fs", false},  {0x794C7630, "overlayfs", false},
	    {0x6969, "nfs", false},	  {0x65735546, "fuse", false},
	    {0x01021997, "9p", false},	  {0x01021994, "tmpfs", true},
	    {0x858458F6, "ramfs", true},
	};
	struct statfs sf;

	*in_memory = false;
	if (statfs(path, &sf) != 0) {
		snprintf(out, len, "unknown (statfs: %s)", strerror(errno));
		return;
	}
	unsigned long magic = (unsigned long)sf.f_type & 0xFFFFFFFFul;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (known[i].magic == magic) {
			snprintf(out, len, "%s", known[i].name);
			*in_memory = known[i].ram;
			return;
		}
	}
	snprintf(out, len, "fs magic 0x%lx", magic);
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                      */
/* ------------------------------------------------------------------------------------------ */

struct bench_opts {
	double seconds;
	double warmup;
	const char *dir; /* parent of the temp dir; NULL: /tmp, or the cwd when /tmp is tmpfs */
	unsigned threads[MAX_THREAD_COUNTS];
	size_t n_threads;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_append [--seconds S] [--dir DIR] [--threads LIST] [--quick]\n"
		"  --seconds S     measured wall time of each row (default %.1f)\n"
		"  --dir DIR       make the temp dir in DIR (pick the filesystem to measure)\n"
		"  --threads LIST  appender threads of the one-event rows (default 1,4,16,64)\n"
		"  --quick         %.1f s per row (smoke test)\n"
		"  --help          this text\n",
		DEFAULT_SECONDS, QUICK_SECONDS);
}

static int parse_seconds(struct bench_opts *o, const char *s, cs_error *err)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	/* Written so that NaN fails too. */
	if (end == s || *end != '\0' || errno != 0 || !(v >= 0.01 && v <= 3600))
		return cs_error_set(err, CS_EINVAL, "--seconds: bad value \"%s\" (0.01 .. 3600)",
				    s);
	o->seconds = v;
	return CS_OK;
}

static int parse_threads(struct bench_opts *o, const char *list, cs_error *err)
{
	const char *p = list;

	o->n_threads = 0;
	do {
		char *end = NULL;
		errno = 0;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p || errno != 0 || v < 1 || v > MAX_THREADS ||
		    (*end != ',' && *end != '\0') || o->n_threads == MAX_THREAD_COUNTS)
			return cs_error_set(
			    err, CS_EINVAL,
			    "--threads: bad list \"%s\" (up to %d counts of 1 .. %d, "
			    "comma-separated)",
			    list, MAX_THREAD_COUNTS, MAX_THREADS);
		o->threads[o->n_threads++] = (unsigned)v;
		p = *end == ',' ? end + 1 : end;
	} while (*p != '\0' || p[-1] == ',');
	return CS_OK;
}

/* @return CS_OK, 1 when --help was asked for, or CS_EINVAL. */
static int parse_args(struct bench_opts *o, int argc, char **argv, cs_error *err)
{
	static const unsigned default_threads[] = {1, 4, 16, 64};
	int rc = CS_OK;

	o->seconds = DEFAULT_SECONDS;
	o->n_threads = sizeof(default_threads) / sizeof(default_threads[0]);
	memcpy(o->threads, default_threads, sizeof(default_threads));
	for (int i = 1; i < argc && rc == CS_OK; i++) {
		const char *a = argv[i];
		bool has_value = i + 1 < argc;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return 1;
		else if (strcmp(a, "--quick") == 0)
			o->seconds = QUICK_SECONDS;
		else if (has_value && strcmp(a, "--seconds") == 0)
			rc = parse_seconds(o, argv[++i], err);
		else if (has_value && strcmp(a, "--threads") == 0)
			rc = parse_threads(o, argv[++i], err);
		else if (has_value && strcmp(a, "--dir") == 0)
			o->dir = argv[++i];
		else
			rc = cs_error_set(err, CS_EINVAL, "unknown option or missing value: \"%s\"",
					  a);
	}
	o->warmup = o->seconds / 4 < MAX_WARMUP_SECONDS ? o->seconds / 4 : MAX_WARMUP_SECONDS;
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The event every mode writes                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* One client-side `message` event; it points into itself, so it must not move once built. */
struct sample_event {
	char content[CONTENT_BYTES + 1];
	Convstore__V1__Message message;
	Convstore__V1__Event event;
};

/*
 * Printable ASCII from xorshift64: about 6.6 bits of entropy per byte, so zlib can take off
 * little more than a sixth. Seeded per thread so no two conversations hold the same text.
 */
static void sample_event_init(struct sample_event *s, uint64_t seed)
{
	static char role_user[] = "user";
	uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15u | 1;

	for (size_t i = 0; i < CONTENT_BYTES; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		s->content[i] = (char)(' ' + (x >> 32) % 95);
	}
	s->content[CONTENT_BYTES] = '\0';
	convstore__v1__message__init(&s->message);
	s->message.role = role_user;
	s->message.content = s->content;
	convstore__v1__event__init(&s->event);
	s->event.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE;
	s->event.message = &s->message;
}

/* ------------------------------------------------------------------------------------------ */
/* Workers and the one timed-run driver                                                         */
/* ------------------------------------------------------------------------------------------ */

struct worker;
struct run;

/* Append run->batch events for @w to run->target; CS_OK or a CS_E* code with @err filled. */
typedef int (*append_fn)(struct worker *w, cs_error *err);

struct latencies {
	uint64_t *ns;
	size_t n, cap;
};

struct worker {
	struct run *run;
	unsigned idx;
	pthread_t thread;
	char conversation_id[32];
	struct sample_event sample;
	Convstore__V1__Event *batch[BATCH_EVENTS]; /* BATCH_EVENTS times &sample.event */
	uint8_t packed[PACKED_MAX];		   /* sample.event packed, for the LMDB baseline */
	size_t packed_len;
	uint64_t next_version; /* the version this conversation's next append must get */
	uint64_t acked;	       /* events acknowledged, warm-up included */
	uint64_t in_window;    /* events acknowledged inside the measured window */
	struct latencies lat;  /* ns per call completed inside the window */
	cs_error err;
};

enum phase { PHASE_WARMUP, PHASE_MEASURE, PHASE_STOP };

struct run {
	append_fn append;
	void *target; /* cs_store * or struct lmdb_target * */
	size_t batch; /* events per call */
	unsigned n_workers;
	struct worker *workers;
	atomic_int phase;
	atomic_int failed; /* 1 + index of the first worker that failed; 0: none */
};

struct measurement {
	uint64_t events;
	double seconds;
	uint64_t p50_ns, p99_ns;
};

static int latencies_push(struct latencies *l, uint64_t ns, cs_error *err)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint64_t *p =
		    cap <= SIZE_MAX / sizeof(*p) ? realloc(l->ns, cap * sizeof(*p)) : NULL;
		if (!p)
			return cs_error_set(err, CS_ENOMEM, "no memory for %zu latency samples",
					    cap);
		l->ns = p;
		l->cap = cap;
	}
	l->ns[l->n++] = ns;
	return CS_OK;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;

	while (atomic_load(&r->phase) != PHASE_STOP && atomic_load(&r->failed) == 0) {
		uint64_t start = now_ns();
		if (r->append(w, &w->err) != CS_OK)
			goto fail;
		uint64_t took = now_ns() - start;
		w->acked += r->batch;
		if (atomic_load(&r->phase) != PHASE_MEASURE)
			continue;
		w->in_window += r->batch;
		if (latencies_push(&w->lat, took, &w->err) != CS_OK)
			goto fail;
	}
	return NULL;
fail:;
	int none = 0;
	atomic_compare_exchange_strong(&r->failed, &none, (int)w->idx + 1);
	return NULL;
}

static int workers_new(struct run *r, cs_error *err)
{
	r->workers = calloc(r->n_workers, sizeof(*r->workers));
	if (!r->workers)
		return cs_error_set(err, CS_ENOMEM, "no memory for %u workers", r->n_workers);
	for (unsigned i = 0; i < r->n_workers; i++) {
		struct worker *w = &r->workers[i];
		cs_error none = CS_ERROR_INIT;
		w->run = r;
		w->idx = i;
		w->err = none;
		w->next_version = 1;
		snprintf(w->conversation_id, sizeof(w->conversation_id), "bench-%u", i);
		sample_event_init(&w->sample, i);
		for (size_t j = 0; j < BATCH_EVENTS; j++)
			w->batch[j] = &w->sample.event;
		assert(convstore__v1__event__get_packed_size(&w->sample.event) <= PACKED_MAX);
		w->packed_len = convstore__v1__event__pack(&w->sample.event, w->packed);
	}
	return CS_OK;
}

static void workers_free(struct run *r)
{
	for (unsigned i = 0; r->workers && i < r->n_workers; i++)
		free(r->workers[i].lat.ns);
	free(r->workers);
	r->workers = NULL;
}

/*
 * SIGINT, SIGTERM and SIGPIPE (output piped into `head`) stop the current row; main then
 * removes the temp dir, which may sit in the current directory, and exits 1.
 */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGPIPE);
}

static void stop_signals_catch(void)
{
	struct sigaction sa = {0};
	sigset_t set;

	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	stop_signals(&set);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&set, sig) == 1)
			sigaction(sig, &sa, NULL);
}

/* Sleep @seconds, or less if a worker fails or a stop signal arrives meanwhile. */
static void sleep_unless_stopped(struct run *r, double seconds)
{
	uint64_t end = now_ns() + (uint64_t)(seconds * NS_PER_S);
	struct timespec slice = {0, 5 * 1000 * 1000};

	for (uint64_t t = now_ns(); t < end && atomic_load(&r->failed) == 0 && stop_signal == 0;
	     t = now_ns())
		nanosleep(&slice, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile @pct of the sorted @v[@n], n > 0. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned pct)
{
	size_t rank = (n * pct + 99) / 100;
	return v[rank ? rank - 1 : 0];
}

/* Merge the workers' window counts and latencies into @m (seconds already set). */
static int measurement_collect(struct measurement *m, const struct run *r, cs_error *err)
{
	size_t n = 0, at = 0;

	m->events = 0;
	m->p50_ns = m->p99_ns = 0;
	for (unsigned i = 0; i < r->n_workers; i++) {
		m->events += r->workers[i].in_window;
		n += r->workers[i].lat.n;
	}
	if (n == 0)
		return CS_OK;
	uint64_t *all = n <= SIZE_MAX / sizeof(*all) ? malloc(n * sizeof(*all)) : NULL;
	if (!all)
		return cs_error_set(err, CS_ENOMEM, "no memory to merge %zu latency samples", n);
	for (unsigned i = 0; i < r->n_workers; i++) {
		const struct latencies *l = &r->workers[i].lat;
		if (l->n == 0) /* a worker that finished no call in the window has no buffer */
			continue;
		memcpy(all + at, l->ns, l->n * sizeof(*all));
		at += l->n;
	}
	qsort(all, n, sizeof(*all), cmp_u64);
	m->p50_ns = percentile(all, n, 50);
	m->p99_ns = percentile(all, n, 99);
	free(all);
	return CS_OK;
}

/* Start r->n_workers threads with the stop signals blocked, so that only the main thread takes
 * them. @return how many started; on a failure @err says why. */
static unsigned workers_start(struct run *r, cs_error *err)
{
	sigset_t stops, old;
	unsigned started = 0;

	stop_signals(&stops);
	pthread_sigmask(SIG_BLOCK, &stops, &old);
	for (; started < r->n_workers; started++) {
		struct worker *w = &r->workers[started];
		int e = pthread_create(&w->thread, NULL, worker_main, w);
		if (e != 0) {
			cs_error_set(err, CS_EIO, "cannot start thread %u: %s", started,
				     strerror(e));
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return started;
}

/*
 * The one driver of every mode: start r->n_workers threads calling r->append in a loop, let them
 * warm up, measure for o->seconds of wall time, stop them and collect. The first worker failure
 * (or a stop signal) ends the run early and is returned in @err.
 */
static int run_timed(struct measurement *out, struct run *r, const struct bench_opts *o,
		     cs_error *err)
{
	uint64_t t0 = now_ns();

	atomic_init(&r->phase, PHASE_WARMUP);
	atomic_init(&r->failed, 0);
	unsigned started = workers_start(r, err);
	if (started == r->n_workers) {
		sleep_unless_stopped(r, o->warmup);
		atomic_store(&r->phase, PHASE_MEASURE);
		t0 = now_ns();
		sleep_unless_stopped(r, o->seconds);
	}
	atomic_store(&r->phase, PHASE_STOP);
	out->seconds = (double)(now_ns() - t0) / NS_PER_S;
	for (unsigned i = 0; i < started; i++)
		pthread_join(r->workers[i].thread, NULL);
	if (started != r->n_workers)
		return CS_EIO;
	int failed = atomic_load(&r->failed);
	if (failed != 0) {
		const cs_error *first = &r->workers[failed - 1].err;
		if (err)
			*err = *first;
		return first->code != CS_OK ? first->code : CS_EIO;
	}
	if (stop_signal != 0)
		return cs_error_set(err, CS_EIO, "stopped by signal %d", (int)stop_signal);
	return measurement_collect(out, r, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Mode: the store's group commit                                                               */
/* ------------------------------------------------------------------------------------------ */

static int store_open(void **target, const char *dir, cs_error *err)
{
	cs_store_options opts = CS_STORE_OPTIONS_INIT;
	cs_store *store = NULL;

	opts.path = dir;
	int rc = cs_store_open(&store, &opts, err);
	if (rc != CS_OK) {
		cs_error_wrap(err, rc, "cs_store_open");
		return rc;
	}
	*target = store;
	return CS_OK;
}

static int store_append(struct worker *w, cs_error *err)
{
	cs_append_result res = {0};
	size_t n = w->run->batch;

	int rc = cs_store_append(&res, w->run->target, BENCH_TENANT, w->conversation_id,
				 CS_ANY_VERSION, w->batch, n, err);
	if (rc != CS_OK) {
		cs_error_wrap(err, rc, "cs_store_append");
		return rc;
	}
	/* One writer per conversation: every call must extend it by exactly n versions. */
	if (res.replayed || res.first_version != w->next_version ||
	    res.last_version != w->next_version + n - 1)
		return cs_error_set(err, CS_ECORRUPT,
				    "cs_store_append to %s gave versions %" PRIu64 "..%" PRIu64
				    "%s, expected %" PRIu64 "..%" PRIu64,
				    w->conversation_id, res.first_version, res.last_version,
				    res.replayed ? " (replayed)" : "", w->next_version,
				    w->next_version + n - 1);
	w->next_version += n;
	return CS_OK;
}

static int store_check(double *ev_per_txn, void *target, uint64_t acked, cs_error *err)
{
	cs_store_stats st = {0};

	int rc = cs_store_stats_get(&st, target, err);
	if (rc != CS_OK) {
		cs_error_wrap(err, rc, "cs_store_stats_get");
		return rc;
	}
	if (st.events != acked)
		return cs_error_set(err, CS_ECORRUPT,
				    "the store holds %" PRIu64 " events, %" PRIu64
				    " were acknowledged",
				    st.events, acked);
	*ev_per_txn = st.commits ? (double)st.events / (double)st.commits : 0;
	return CS_OK;
}

static void store_close(void *target)
{
	cs_store_close(target);
}

/* ------------------------------------------------------------------------------------------ */
/* Mode: the plain LMDB baseline, one write transaction per event                               */
/* ------------------------------------------------------------------------------------------ */

struct lmdb_target {
	MDB_env *env;
	MDB_dbi dbi;
	uint64_t last_key; /* guarded by LMDB's writer lock */
};

static int lmdb_fail(cs_error *err, const char *what, int mdb_rc)
{
	return cs_error_set(err, CS_EIO, "lmdb baseline: %s: %s", what, mdb_strerror(mdb_rc));
}

static void lmdb_close(void *target)
{
	struct lmdb_target *t = target;

	if (t && t->env)
		mdb_env_close(t->env);
	free(t);
}

static int lmdb_open(void **target, const char *dir, cs_error *err)
{
	struct lmdb_target *t = calloc(1, sizeof(*t));
	MDB_txn *txn = NULL;
	int rc;

	if (!t)
		return cs_error_set(err, CS_ENOMEM, "lmdb baseline: out of memory");
	if (mkdir(dir, 0700) != 0) {
		rc = cs_error_set(err, CS_EIO, "mkdir %s: %s", dir, strerror(errno));
		goto fail;
	}
	rc = mdb_env_create(&t->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(t->env, 1);
	if (rc == 0)
		rc = mdb_env_set_mapsize(t->env, LMDB_MAP_BYTES);
	if (rc == 0)
		rc = mdb_env_open(t->env, dir, 0, 0600); /* no MDB_NOSYNC: durable commits */
	if (rc == 0)
		rc = mdb_txn_begin(t->env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "events", MDB_CREATE, &t->dbi);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc != 0) {
		rc = lmdb_fail(err, dir, rc);
		goto fail;
	}
	*target = t;
	return CS_OK;
fail:
	if (txn)
		mdb_txn_abort(txn);
	lmdb_close(t);
	return rc;
}

static int lmdb_append(struct worker *w, cs_error *err)
{
	struct lmdb_target *t = w->run->target;
	MDB_txn *txn = NULL;
	uint8_t key[8];

	assert(w->run->batch == 1);
	int rc = mdb_txn_begin(t->env, NULL, 0, &txn);
	if (rc != 0)
		return lmdb_fail(err, "mdb_txn_begin", rc);
	/* The writer lock is held until the commit: the counter needs no lock of its own, and
	 * keys reach LMDB in order, as MDB_APPEND requires. */
	put_be64(key, ++t->last_key);
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key};
	MDB_val v = {.mv_size = w->packed_len, .mv_data = w->packed};
	rc = mdb_put(txn, t->dbi, &k, &v, MDB_APPEND);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return lmdb_fail(err, "mdb_put", rc);
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		return lmdb_fail(err, "mdb_txn_commit", rc);
	return CS_OK;
}

static int lmdb_check(double *ev_per_txn, void *target, uint64_t acked, cs_error *err)
{
	struct lmdb_target *t = target;
	MDB_txn *txn = NULL;
	MDB_stat st;

	int rc = mdb_txn_begin(t->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return lmdb_fail(err, "mdb_txn_begin", rc);
	rc = mdb_stat(txn, t->dbi, &st);
	mdb_txn_abort(txn);
	if (rc != 0)
		return lmdb_fail(err, "mdb_stat", rc);
	if (st.ms_entries != acked)
		return cs_error_set(err, CS_ECORRUPT,
				    "lmdb baseline holds %zu records, %" PRIu64 " were committed",
				    st.ms_entries, acked);
	*ev_per_txn = 1;
	return CS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Rows: what to measure, measuring one, printing                                               */
/* ------------------------------------------------------------------------------------------ */

struct mode {
	const char *label; /* for people */
	const char *key;   /* for the machine-readable lines */
	int (*open)(void **target, const char *dir, cs_error *err);
	int (*check)(double *ev_per_txn, void *target, uint64_t acked, cs_error *err);
	void (*close)(void *target);
	append_fn append;
};

static const struct mode lmdb_mode = {"lmdb baseline", "lmdb",	   lmdb_open,
				      lmdb_check,      lmdb_close, lmdb_append};
static const struct mode store_mode = {"group commit", "store",	    store_open,
				       store_check,    store_close, store_append};

struct row {
	const struct mode *mode;
	unsigned threads;
	size_t batch;
	struct measurement m;
	double ev_per_txn;
};

static double row_rate(const struct row *row)
{
	return row->m.seconds > 0 ? (double)row->m.events / row->m.seconds : 0;
}

static void row_name(char *out, size_t len, const struct row *row)
{
	snprintf(out, len, "%s %u thread%s%s", row->mode->label, row->threads,
		 row->threads == 1 ? "" : "s", row->batch > 1 ? " x100/call" : "");
}

static size_t rows_plan(struct row *rows, const struct bench_opts *o)
{
	static const unsigned batch_threads[] = {1, 16};
	size_t n = 0;

	rows[n++] = (struct row){.mode = &lmdb_mode, .threads = 1, .batch = 1};
	rows[n++] = (struct row){.mode = &lmdb_mode, .threads = CONTENDED_THREADS, .batch = 1};
	for (size_t i = 0; i < o->n_threads; i++)
		rows[n++] = (struct row){.mode = &store_mode, .threads = o->threads[i], .batch = 1};
	for (size_t i = 0; i < sizeof(batch_threads) / sizeof(batch_threads[0]); i++)
		rows[n++] = (struct row){
		    .mode = &store_mode, .threads = batch_threads[i], .batch = BATCH_EVENTS};
	assert(n <= MAX_ROWS);
	return n;
}

/* Measure @row in the fresh directory @dir (which must not exist yet). */
static int row_measure(struct row *row, const char *dir, const struct bench_opts *o, cs_error *err)
{
	struct run r = {
	    .append = row->mode->append, .batch = row->batch, .n_workers = row->threads};
	void *target = NULL;
	uint64_t acked = 0;

	int rc = workers_new(&r, err);
	if (rc == CS_OK)
		rc = row->mode->open(&target, dir, err);
	if (rc != CS_OK)
		goto out;
	r.target = target;
	rc = run_timed(&row->m, &r, o, err);
	for (unsigned i = 0; i < r.n_workers; i++)
		acked += r.workers[i].acked;
	if (rc == CS_OK)
		rc = row->mode->check(&row->ev_per_txn, target, acked, err);
out:
	if (target)
		row->mode->close(target);
	workers_free(&r);
	return rc;
}

static void row_print(const struct row *row, double base)
{
	char name[64], label[66];
	double rate = row_rate(row);

	row_name(name, sizeof(name), row);
	snprintf(label, sizeof(label), "%s:", name);
	printf("%-35s %8.0f ev/s = %6.2fx baseline  p50 %7.3f ms  p99 %7.3f ms  %5.1f ev/txn\n",
	       label, rate, base > 0 ? rate / base : 0, (double)row->m.p50_ns / 1e6,
	       (double)row->m.p99_ns / 1e6, row->ev_per_txn);
	fflush(stdout);
}

static void row_print_machine(const struct row *row, double base)
{
	double rate = row_rate(row);

	printf("BENCH_APPEND mode=%s threads=%u events_per_call=%zu events=%" PRIu64
	       " seconds=%.3f events_per_s=%.1f ratio=%.3f p50_us=%.1f p99_us=%.1f"
	       " events_per_txn=%.2f\n",
	       row->mode->key, row->threads, row->batch, row->m.events, row->m.seconds, rate,
	       base > 0 ? rate / base : 0, (double)row->m.p50_ns / 1e3, (double)row->m.p99_ns / 1e3,
	       row->ev_per_txn);
}

/* Measure every row, each in its own directory under @root, printing each as it ends. */
static int rows_run(struct row *rows, size_t n, const char *root, const struct bench_opts *o,
		    cs_error *err)
{
	char dir[PATH_MAX], name[64];

	printf("p50/p99: latency of one append call; ev/txn: events per LMDB write transaction\n");
	for (size_t i = 0; i < n; i++) {
		int len = snprintf(dir, sizeof(dir), "%s/%02zu-%s-%u", root, i, rows[i].mode->key,
				   rows[i].threads);
		if (len < 0 || (size_t)len >= sizeof(dir))
			return cs_error_set(err, CS_EINVAL, "directory name too long: %s", root);
		int rc = row_measure(&rows[i], dir, o, err);
		rm_tree(dir);
		if (rc != CS_OK) {
			row_name(name, sizeof(name), &rows[i]);
			cs_error_wrap(err, rc, name);
			return rc;
		}
		row_print(&rows[i], row_rate(&rows[0]));
	}
	return CS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* main                                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* Make the temp dir in @out: under o->dir, else /tmp unless it is in memory, else the cwd. */
static int root_make(char *out, size_t len, const struct bench_opts *o, cs_error *err)
{
	char cwd[PATH_MAX], fs[64];
	const char *parent = o->dir;
	bool in_memory = false;

	if (!parent) {
		parent = "/tmp";
		fs_describe(fs, sizeof(fs), &in_memory, parent);
		if (in_memory) {
			if (!getcwd(cwd, sizeof(cwd)))
				return cs_error_set(err, CS_EIO, "getcwd: %s", strerror(errno));
			printf("note: /tmp is %s, where fsync is free; measuring in the current "
			       "directory instead\n",
			       fs);
			parent = cwd;
		}
	}
	int n = snprintf(out, len, "%s/bench_append.XXXXXX", parent);
	if (n < 0 || (size_t)n >= len)
		return cs_error_set(err, CS_EINVAL, "directory name too long: %s", parent);
	if (!mkdtemp(out))
		return cs_error_set(err, CS_EIO, "cannot make a temp dir %s: %s", out,
				    strerror(errno));
	return CS_OK;
}

static void header_print(const char *root, const struct bench_opts *o)
{
	struct sample_event sample;
	char fs[64];
	bool in_memory = false;
	int major = 0, minor = 0, patch = 0;

	sample_event_init(&sample, 0);
	fs_describe(fs, sizeof(fs), &in_memory, root);
	mdb_version(&major, &minor, &patch);
	printf("bench_append: durable appends of %d-byte message events (%zu bytes packed)\n",
	       CONTENT_BYTES, convstore__v1__event__get_packed_size(&sample.event));
	printf("directory:    %s (%s)\n", root, fs);
	if (in_memory)
		printf("WARNING: %s is in memory: fsync costs nothing and these figures mean "
		       "nothing\n",
		       fs);
	printf("timing:       %.2f s per row after a %.2f s warm-up; %ld cpus\n", o->seconds,
	       o->warmup, sysconf(_SC_NPROCESSORS_ONLN));
	printf("baseline:     LMDB %d.%d.%d, one durable write transaction per event, MDB_APPEND;"
	       " ratios are to its 1-thread row\n\n",
	       major, minor, patch);
}

int main(int argc, char **argv)
{
	struct bench_opts o = {0};
	struct row rows[MAX_ROWS];
	char root[PATH_MAX];
	cs_error err = CS_ERROR_INIT;

	int rc = parse_args(&o, argc, argv, &err);
	if (rc > 0) {
		usage(stdout);
		return 0;
	}
	if (rc != CS_OK) {
		fprintf(stderr, "bench_append: %s\n", err.msg);
		usage(stderr);
		return 2;
	}
	size_t n = rows_plan(rows, &o);
	stop_signals_catch();
	if (root_make(root, sizeof(root), &o, &err) != CS_OK) {
		fprintf(stderr, "bench_append: %s\n", err.msg);
		return 1;
	}
	header_print(root, &o);
	rc = rows_run(rows, n, root, &o, &err);
	rm_tree(root);
	if (rc != CS_OK) {
		fprintf(stderr, "bench_append: %s\n", err.msg);
		return 1;
	}
	printf("\n");
	for (size_t i = 0; i < n; i++)
		row_print_machine(&rows[i], row_rate(&rows[0]));
	return 0;
}
