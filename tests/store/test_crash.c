/*
 * test_crash.c - proves the durability promise of store.h: when cs_store_append() returns CS_OK
 * (on a store opened WITHOUT no_sync) the events survive kill -9, with exactly the versions and
 * positions that were acknowledged, and a crash never leaves half an append or a broken store.
 *
 * Each round forks a child that opens the store (with a 1 MiB map, so that it grows while children
 * are being killed) and runs 4 threads appending 1-4 events at a time, one in eight of them
 * 4-20 KiB, to a few conversations as fast as it can. After every acknowledged append a thread
 * writes one fixed-size record (conversation, thread, sequence, versions, positions) to a pipe;
 * records are smaller than PIPE_BUF, so each write is atomic. The parent kills the child with
 * SIGKILL after 50-300 ms, keeps the complete records, reopens the store and checks:
 *
 *  - every event acknowledged in this round or any earlier one is present with its id and
 *    exactly the acknowledged version and position;
 *  - every conversation is gapless 1..head.version, and the feed holds each event once in
 *    strictly increasing position order, up to stats.last_position;
 *  - cs_store_verify() finds no problem.
 *
 * 8 rounds run on the same store, each child continuing where the last one was killed. Set
 * CONVSTORE_CRASH_SEED to replay the kill times of a run (the seed is printed).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"

#define T	       "t"
#define ROUNDS	       8
#define CHILD_THREADS  4
#define CONVS	       3
#define MAX_PER_APPEND 4
#define CHILD_SECONDS  20		 /* the child stops by itself if nobody kills it */
#define MAP_SIZE       ((size_t)1 << 20) /* small, so that children grow the map */

/* What a child reports after each acknowledged append. */
typedef struct ack {
	uint32_t round, thread, seq, conv;
	uint32_t n;
	int32_t rc; /* CS_OK, or the error an append got (n is then 0) */
	uint64_t first_version, last_version;
	uint64_t first_position, last_position;
} ack;

_Static_assert(sizeof(ack) <= 512, "an ack must be written atomically to a pipe");

static char dir[PATH_MAX];

static void event_id(char *out, size_t size, uint32_t round, uint32_t thread, uint32_t seq,
		     uint32_t k)
{
	snprintf(out, size, "r%u-t%u-s%u-%u", round, thread, seq, k);
}

static void conv_id(char *out, size_t size, uint32_t c)
{
	snprintf(out, size, "crash-%u", c);
}

/* ---- the child ----------------------------------------------------------------------------- */

typedef struct child_arg {
	cs_store *store;
	uint32_t round, thread;
	int fd;
} child_arg;

static void *child_worker(void *p)
{
	child_arg *c = p;
	unsigned seed = c->round * 7919u + c->thread * 104729u + 1;
	time_t stop = time(NULL) + CHILD_SECONDS;
	ev_arena a = EV_ARENA_INIT;
	for (uint32_t seq = 0; time(NULL) < stop; seq++) {
		ack k = {.round = c->round, .thread = c->thread, .seq = seq};
		k.conv = (uint32_t)rand_r(&seed) % CONVS;
		uint32_t n = 1 + (uint32_t)rand_r(&seed) % MAX_PER_APPEND;
		Convstore__V1__Event *evs[MAX_PER_APPEND];
		char ids[MAX_PER_APPEND][48], conv[16];
		conv_id(conv, sizeof conv, k.conv);
		for (uint32_t i = 0; i < n; i++) {
			event_id(ids[i], sizeof ids[i], c->round, c->thread, seq, i);
			/* now and then a big one, so that the map grows while we kill */
			const char *text =
			    rand_r(&seed) % 8
				? "crash me if you can"
				: ev_noise(&a, seed, 4096 + (size_t)rand_r(&seed) % 16384);
			evs[i] = ev_message(&a, ids[i], "user", text);
		}
		cs_append_result r;
		cs_error err = CS_ERROR_INIT;
		k.rc = cs_store_append(&r, c->store, T, conv, CS_ANY_VERSION, evs, n, &err);
		if (k.rc == CS_OK) {
			k.n = n;
			k.first_version = r.first_version;
			k.last_version = r.last_version;
			k.first_position = r.first_position;
			k.last_position = r.last_position;
		}
		if (write(c->fd, &k, sizeof k) != (ssize_t)sizeof k)
			break;
		ev_arena_free(&a);
		if (k.rc != CS_OK)
			break;
	}
	ev_arena_free(&a);
	return NULL;
}

static void child_main(uint32_t round, int fd)
{
	cs_store *s = NULL;
	cs_error err = CS_ERROR_INIT;
	if (fx_open(&s, dir, MAP_SIZE, 0, true, &err) != CS_OK) {
		fprintf(stderr, "child: open: %s\n", err.msg);
		_exit(3);
	}
	pthread_t th[CHILD_THREADS];
	child_arg args[CHILD_THREADS];
	for (uint32_t t = 0; t < CHILD_THREADS; t++) {
		args[t] = (child_arg){s, round, t, fd};
		if (pthread_create(&th[t], NULL, child_worker, &args[t]) != 0)
			_exit(4);
	}
	for (uint32_t t = 0; t < CHILD_THREADS; t++)
		pthread_join(th[t], NULL);
	cs_store_close(s);
	_exit(0);
}

/* ---- the parent ---------------------------------------------------------------------------- */

static ack *acks;
static size_t n_acks, cap_acks;

static void keep(const ack *k)
{
	if (n_acks == cap_acks) {
		cap_acks = cap_acks ? 2 * cap_acks : 1024;
		acks = realloc(acks, cap_acks * sizeof *acks);
		if (!acks) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
	}
	acks[n_acks++] = *k;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read what the child wrote until @deadline_ms (or EOF with -1); returns false on EOF. */
static bool drain(int fd, unsigned char *buf, size_t *have, size_t cap, int64_t deadline_ms)
{
	for (;;) {
		int wait = -1;
		if (deadline_ms >= 0) {
			int64_t left = deadline_ms - now_ms();
			if (left <= 0)
				return true;
			wait = (int)left;
		}
		struct pollfd pfd = {fd, POLLIN, 0};
		int rc = poll(&pfd, 1, wait);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return true;
		ssize_t got = read(fd, buf + *have, cap - *have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return false;
		*have += (size_t)got;
		/* hand over complete records, keep a partial tail */
		size_t whole = *have / sizeof(ack) * sizeof(ack);
		for (size_t off = 0; off < whole; off += sizeof(ack)) {
			ack k;
			memcpy(&k, buf + off, sizeof k);
			keep(&k);
		}
		memmove(buf, buf + whole, *have - whole);
		*have -= whole;
	}
}

/* Run one child and kill it; returns the number of acks it sent, or -1 if it died otherwise. */
static long run_child(uint32_t round, unsigned *seed)
{
	int fds[2];
	if (pipe(fds) != 0) {
		perror("pipe");
		exit(1);
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(round, fds[1]);
	}
	close(fds[1]);
	size_t before = n_acks;
	static unsigned char buf[1 << 16];
	size_t have = 0;
	int64_t kill_at = now_ms() + 50 + rand_r(seed) % 251;
	drain(fds[0], buf, &have, sizeof buf, kill_at);
	kill(pid, SIGKILL);
	int status = 0;
	waitpid(pid, &status, 0);
	drain(fds[0], buf, &have, sizeof buf, -1);
	close(fds[0]);
	if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
		fprintf(stderr, "  round %u: the child was not killed (status %d)\n", round,
			status);
		return -1;
	}
	return (long)(n_acks - before);
}

/* Every acknowledged event is there, with its id, version and position. */
static size_t check_acks(cs_store *s)
{
	size_t bad = 0;
	for (size_t i = 0; i < n_acks; i++) {
		const ack *k = &acks[i];
		if (k->rc != CS_OK) {
			if (bad++ < 5)
				fprintf(stderr, "  round %u thread %u: append failed with %d\n",
					k->round, k->thread, k->rc);
			continue;
		}
		char conv[16];
		conv_id(conv, sizeof conv, k->conv);
		cs_event_page p = {0};
		cs_error err = CS_ERROR_INIT;
		int rc =
		    cs_store_read_stream(&p, s, T, conv, k->first_version, k->n, CS_FORWARD, &err);
		bool ok =
		    rc == CS_OK && p.n == k->n && k->last_version == k->first_version + k->n - 1;
		for (size_t j = 0; ok && j < p.n; j++) {
			const Convstore__V1__Event *e = p.events[j];
			char want[48];
			event_id(want, sizeof want, k->round, k->thread, k->seq, (uint32_t)j);
			ok = e->version == k->first_version + j && !strcmp(e->id, want) &&
			     (j == 0 ? e->position == k->first_position
				     : e->position > p.events[j - 1]->position) &&
			     (j + 1 < p.n || e->position == k->last_position);
		}
		if (!ok && bad++ < 5)
			fprintf(stderr,
				"  acked %s v%llu..%llu p%llu..%llu (round %u thread %u seq %u): "
				"rc %d, %zu events read %s\n",
				conv, (unsigned long long)k->first_version,
				(unsigned long long)k->last_version,
				(unsigned long long)k->first_position,
				(unsigned long long)k->last_position, k->round, k->thread, k->seq,
				rc, p.n, err.msg);
		cs_event_page_deinit(&p);
	}
	return bad;
}

/* Conversations gapless, feed exact; returns the number of events present. */
static size_t check_history(cs_store *s)
{
	size_t present = 0;
	for (uint32_t c = 0; c < CONVS; c++) {
		char conv[16];
		conv_id(conv, sizeof conv, c);
		uint64_t head = fx_version(s, T, conv);
		cs_event_page all = {0};
		cs_error err = CS_ERROR_INIT;
		int rc = head ? fx_read_all(&all, s, T, conv, 1000, &err) : CS_OK;
		CHECK_EQ_INT(rc, CS_OK);
		CHECK_EQ_UINT(all.n, head);
		size_t gaps = 0;
		for (size_t i = 0; i < all.n; i++)
			gaps += all.events[i]->version != i + 1;
		CHECK_EQ_UINT(gaps, 0);
		present += all.n;
		cs_event_page_deinit(&all);
	}

	fx_feed_walk feed;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_walk_feed(&feed, s, 1000, NULL, NULL, &err), CS_OK);
	CHECK_EQ_UINT(feed.events, present);
	CHECK_EQ_UINT(feed.not_increasing, 0);
	CHECK_EQ_UINT(feed.bad_next, 0);
	cs_store_stats st = fx_stats(s);
	CHECK_EQ_UINT(st.events, present);
	CHECK_EQ_UINT(st.last_position, feed.last_position);
	return present;
}

static void test_crash_rounds(void)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	const char *env = getenv("CONVSTORE_CRASH_SEED");
	if (env)
		seed = (unsigned)strtoul(env, NULL, 10);
	printf("seed %u\n", seed);
	size_t acked_events = 0;
	for (uint32_t round = 0; round < ROUNDS; round++) {
		size_t first = n_acks;
		long got = run_child(round, &seed);
		if (!CHECK(got >= 0))
			break;
		size_t events = 0;
		for (size_t i = first; i < n_acks; i++)
			events += acks[i].n;
		acked_events += events;

		cs_store *s = NULL;
		cs_error err = CS_ERROR_INIT;
		if (!CHECK_EQ_INT(fx_open(&s, dir, MAP_SIZE, 0, true, &err), CS_OK)) {
			fprintf(stderr, "  reopen after round %u: %s\n", round, err.msg);
			break;
		}
		cs_verify_report rep = {0};
		int vrc = cs_store_verify(&rep, s, &err);
		bool intact = CHECK_EQ_INT(vrc, CS_OK);
		intact &= CHECK_EQ_UINT(rep.problems, 0);
		if (!intact)
			fprintf(stderr, "  verify after round %u: %s (first bad position %llu)\n",
				round, err.msg, (unsigned long long)rep.first_bad_position);
		CHECK_EQ_UINT(check_acks(s), 0);
		size_t present = check_history(s);
		CHECK(present >= acked_events);
		CHECK_EQ_UINT(rep.records, present);
		printf("round %u: %ld appends acknowledged (%zu events); %zu acknowledged in all, "
		       "%zu present; map %llu bytes\n",
		       round, got, events, acked_events, present,
		       (unsigned long long)fx_stats(s).map_size);
		cs_store_close(s);
	}
	CHECK(acked_events > 0);
}

int main(void)
{
	fx_tmpdir(dir, "crash");
	CHECK_RUN(test_crash_rounds);
	free(acks);
	fx_rmrf(dir);
	return check_finish();
}
