/*
 * test_concurrency.c - proves that cs_store_append() is safe and exact under concurrent callers
 * (the group-commit writer of store.h):
 *
 *  (a) 16 threads x 200 appends to their own conversations: all succeed, every conversation is
 *      gapless 1..200 in the order its thread appended, positions are unique and strictly
 *      increasing in feed order and match what each caller was told, and the writer batched
 *      (stats: commits < appends);
 *  (b) 8 threads race on one conversation with expected_version = the version they last read,
 *      retrying on conflict, until 400 successes: the history is gapless 1..400, each success
 *      owns a distinct version (expected + 1) holding exactly its event, and every CS_ECONFLICT
 *      carried a current_version beyond the expected one;
 *  (c) 8 threads send the same request (same ids) at the same moment, round after round:
 *      exactly one result per round is not a replay, all report the same versions and
 *      positions, and the events exist once;
 *  (d) while 8 threads append valid events, 4 others send invalid requests to the same
 *      conversations: each invalid one fails alone with CS_EINVAL and the right index, every
 *      valid one lands, and nothing of an invalid request is stored;
 *  (e) 8 threads request the same tool-call id at once: one wins, the others are refused as
 *      "still pending" (or replayed, when they share the winner's event id);
 *  (f) 8 threads send [common id, own id] at once: one commits, the others get CS_ECONFLICT;
 *  (g) with max_batch_events = 4, requests of 1..6 events (some larger than a batch) all land.
 *
 * Threads only record what happened; every CHECK runs in the main thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"

#define T "t"

static char root[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;

static cs_store *open_sub(const char *name, bool durable)
{
	cs_store *s = NULL;
	cs_error err = CS_ERROR_INIT;
	const char *path = ev_strf(&A, "%s/%s", root, name);
	if (!CHECK_EQ_INT(fx_open(&s, path, 0, 0, durable, &err), CS_OK)) {
		fprintf(stderr, "  open %s: %s\n", path, err.msg);
		return NULL;
	}
	return s;
}

static void start_all(pthread_t *th, size_t n, void *(*fn)(void *), void *args, size_t arg_size)
{
	for (size_t i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, fn, (char *)args + i * arg_size) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
}

static void join_all(pthread_t *th, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* Run @fn on each of the @n structs at @args (@arg_size bytes apart), a thread each. */
static void run_all(size_t n, void *(*fn)(void *), void *args, size_t arg_size)
{
	pthread_t *th = calloc(n, sizeof *th);
	if (!th) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	start_all(th, n, fn, args, arg_size);
	join_all(th, n);
	free(th);
}

/* ---- (a) many conversations ----------------------------------------------------------------- */

#define A_THREADS 16
#define A_APPENDS 200

typedef struct a_arg {
	cs_store *store;
	char conv[16];
	Convstore__V1__Event **events; /* A_APPENDS, built by main */
	cs_append_result res[A_APPENDS];
	int rc[A_APPENDS];
} a_arg;

static void *a_worker(void *p)
{
	a_arg *a = p;
	for (size_t i = 0; i < A_APPENDS; i++) {
		cs_error err = CS_ERROR_INIT;
		a->rc[i] = cs_store_append(&a->res[i], a->store, T, a->conv, CS_ANY_VERSION,
					   &a->events[i], 1, &err);
	}
	return NULL;
}

/* Counts the feed events of (a) visited, and those not where their caller was told (or not of
 * (a) at all). */
typedef struct a_feed_check {
	const a_arg *args;
	size_t visited, mismatched;
} a_feed_check;

static void a_feed_event(const Convstore__V1__Event *e, void *ctx)
{
	a_feed_check *fc = ctx;
	fc->visited++;
	unsigned t;
	if (sscanf(e->conversation_id, "conv-%u", &t) != 1 || t >= A_THREADS || e->version < 1 ||
	    e->version > A_APPENDS) {
		fc->mismatched++;
		return;
	}
	const a_arg *a = &fc->args[t];
	size_t k = (size_t)e->version - 1;
	fc->mismatched +=
	    a->res[k].first_position != e->position || strcmp(e->id, a->events[k]->id) != 0;
}

static void test_many_conversations(void)
{
	cs_store *s = open_sub("a", true);
	if (!s)
		return;
	static a_arg args[A_THREADS];
	for (size_t t = 0; t < A_THREADS; t++) {
		args[t].store = s;
		snprintf(args[t].conv, sizeof args[t].conv, "conv-%zu", t);
		args[t].events = ev_alloc(&A, A_APPENDS * sizeof *args[t].events);
		for (size_t i = 0; i < A_APPENDS; i++)
			args[t].events[i] = ev_message(&A, ev_strf(&A, "a%zu-%zu", t, i), "user",
						       ev_strf(&A, "thread %zu says %zu", t, i));
	}
	run_all(A_THREADS, a_worker, args, sizeof args[0]);

	size_t failures = 0, order_bad = 0;
	for (size_t t = 0; t < A_THREADS; t++)
		for (size_t i = 0; i < A_APPENDS; i++) {
			failures += args[t].rc[i] != CS_OK;
			order_bad += args[t].res[i].first_version != i + 1 ||
				     args[t].res[i].last_version != i + 1 ||
				     args[t].res[i].replayed ||
				     (i && args[t].res[i].first_position <=
					       args[t].res[i - 1].first_position);
		}
	CHECK_EQ_UINT(failures, 0);
	CHECK_EQ_UINT(order_bad, 0);

	/* the feed: every event once, in strictly increasing position, where its caller was told */
	a_feed_check fc = {args, 0, 0};
	fx_feed_walk w;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_walk_feed(&w, s, 1000, a_feed_event, &fc, &err), CS_OK);
	CHECK_EQ_UINT(w.events, A_THREADS * A_APPENDS);
	CHECK_EQ_UINT(w.not_increasing, 0);
	CHECK_EQ_UINT(w.bad_next, 0);
	CHECK_EQ_UINT(fc.visited, A_THREADS * A_APPENDS);
	CHECK_EQ_UINT(fc.mismatched, 0);
	for (size_t t = 0; t < A_THREADS; t++)
		CHECK_EQ_UINT(fx_version(s, T, args[t].conv), A_APPENDS);

	cs_store_stats st = fx_stats(s);
	CHECK_EQ_UINT(st.events, A_THREADS * A_APPENDS);
	CHECK_EQ_UINT(st.appends, A_THREADS * A_APPENDS);
	CHECK(st.commits >= 1);
	CHECK(st.commits < st.appends);
	printf("(a) %llu appends in %llu commits\n", (unsigned long long)st.appends,
	       (unsigned long long)st.commits);
	cs_store_close(s);
}

/* ---- (b) one conversation, optimistic concurrency ------------------------------------------ */

#define B_THREADS   8
#define B_SUCCESSES 400
#define B_MAX_CONFL 200000

typedef struct b_success {
	unsigned ticket;
	uint64_t expected, version, position;
} b_success;

typedef struct b_arg {
	cs_store *store;
	unsigned thread;
	atomic_uint *tickets;
	b_success ok[B_SUCCESSES];
	size_t n_ok;
	size_t conflicts;
	size_t bad_conflicts; /* current_version not beyond expected */
	size_t errors;	      /* anything but OK and CONFLICT */
	char first_problem[300];
	ev_arena arena;
} b_arg;

static uint64_t head_version(cs_store *s, const char *conv)
{
	Convstore__V1__Head *h = NULL;
	int rc = cs_store_head(&h, s, T, conv, NULL);
	uint64_t v = rc == CS_OK ? h->version : 0;
	if (h)
		protobuf_c_message_free_unpacked(&h->base, NULL);
	return v;
}

static void *b_worker(void *p)
{
	b_arg *b = p;
	for (;;) {
		unsigned ticket = atomic_fetch_add(b->tickets, 1);
		if (ticket >= B_SUCCESSES)
			break;
		Convstore__V1__Event *ev[] = {
		    ev_message(&b->arena, ev_strf(&b->arena, "b%u-%u", b->thread, ticket), "user",
			       ev_strf(&b->arena, "ticket %u", ticket))};
		for (;;) {
			uint64_t expected = head_version(b->store, "race");
			cs_append_result r;
			cs_error err = CS_ERROR_INIT;
			int rc = cs_store_append(&r, b->store, T, "race", (int64_t)expected, ev, 1,
						 &err);
			if (rc == CS_OK) {
				b->ok[b->n_ok++] = (b_success){ticket, expected, r.first_version,
							       r.first_position};
				break;
			}
			if (rc == CS_ECONFLICT) {
				b->conflicts++;
				if (err.current_version <= expected && b->bad_conflicts++ == 0)
					snprintf(b->first_problem, sizeof b->first_problem,
						 "conflict at expected %llu said current %llu",
						 (unsigned long long)expected,
						 (unsigned long long)err.current_version);
				if (b->conflicts < B_MAX_CONFL)
					continue;
				snprintf(err.msg, sizeof err.msg, "gave up after %zu conflicts",
					 b->conflicts);
			}
			if (b->errors++ == 0)
				snprintf(b->first_problem, sizeof b->first_problem, "rc %d: %s", rc,
					 err.msg);
			break;
		}
	}
	return NULL;
}

static void test_one_conversation_race(void)
{
	cs_store *s = open_sub("b", false);
	if (!s)
		return;
	static b_arg args[B_THREADS];
	atomic_uint tickets = 0;
	for (unsigned t = 0; t < B_THREADS; t++) {
		args[t].store = s;
		args[t].thread = t;
		args[t].tickets = &tickets;
	}
	run_all(B_THREADS, b_worker, args, sizeof args[0]);

	/* who owns which version */
	static int owner[B_SUCCESSES + 1];
	static unsigned owner_ticket[B_SUCCESSES + 1];
	memset(owner, -1, sizeof owner);
	size_t total = 0, conflicts = 0, bad_conflicts = 0, errors = 0, dup = 0, wrong = 0;
	for (unsigned t = 0; t < B_THREADS; t++) {
		const b_arg *b = &args[t];
		total += b->n_ok;
		conflicts += b->conflicts;
		bad_conflicts += b->bad_conflicts;
		errors += b->errors;
		if (b->first_problem[0])
			fprintf(stderr, "  thread %u: %s\n", t, b->first_problem);
		for (size_t i = 0; i < b->n_ok; i++) {
			uint64_t v = b->ok[i].version;
			wrong += v != b->ok[i].expected + 1 || v < 1 || v > B_SUCCESSES;
			if (v < 1 || v > B_SUCCESSES)
				continue;
			dup += owner[v] != -1;
			owner[v] = (int)t;
			owner_ticket[v] = b->ok[i].ticket;
		}
	}
	CHECK_EQ_UINT(total, B_SUCCESSES);
	CHECK_EQ_UINT(errors, 0);
	CHECK_EQ_UINT(bad_conflicts, 0);
	CHECK_EQ_UINT(dup, 0);
	CHECK_EQ_UINT(wrong, 0);
	printf("(b) %zu successes, %zu conflicts\n", total, conflicts);

	cs_event_page all = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_read_all(&all, s, T, "race", 1000, &err), CS_OK);
	if (CHECK_EQ_UINT(all.n, B_SUCCESSES)) {
		size_t gaps = 0, foreign = 0;
		for (size_t i = 0; i < all.n; i++) {
			uint64_t v = i + 1;
			gaps += all.events[i]->version != v;
			char want[32];
			snprintf(want, sizeof want, "b%d-%u", owner[v], owner_ticket[v]);
			foreign += owner[v] < 0 || strcmp(all.events[i]->id, want) != 0;
		}
		CHECK_EQ_UINT(gaps, 0);
		CHECK_EQ_UINT(foreign, 0);
	}
	cs_event_page_deinit(&all);
	CHECK_EQ_UINT(fx_stats(s).events, B_SUCCESSES);
	cs_store_close(s);
	for (unsigned t = 0; t < B_THREADS; t++)
		ev_arena_free(&args[t].arena);
}

/* ---- (c), (e), (f): requests released at the same moment, round after round ---------------- */

#define R_THREADS 8
#define R_ROUNDS  40
#define R_EVENTS  3

/* Each round the main thread sets every thread's request, releases them all through a barrier
 * and collects their results at a second one. */
typedef struct rounds {
	cs_store *store;
	const char *conv;
	pthread_barrier_t start, end;
	Convstore__V1__Event **req[R_THREADS];
	size_t n[R_THREADS];
	int64_t expected;
	bool quit;
	pthread_t th[R_THREADS];
	struct r_arg {
		struct rounds *r;
		size_t t;
		int rc;
		cs_error err;
		cs_append_result res;
	} args[R_THREADS];
} rounds;

static void *r_worker(void *p)
{
	struct r_arg *a = p;
	rounds *r = a->r;
	for (;;) {
		pthread_barrier_wait(&r->start);
		if (r->quit)
			break;
		a->err = (cs_error)CS_ERROR_INIT;
		memset(&a->res, 0, sizeof a->res);
		a->rc = cs_store_append(&a->res, r->store, T, r->conv, r->expected, r->req[a->t],
					r->n[a->t], &a->err);
		pthread_barrier_wait(&r->end);
	}
	return NULL;
}

static bool rounds_start(rounds *r, const char *name, const char *conv)
{
	memset(r, 0, sizeof *r);
	r->store = open_sub(name, false);
	if (!r->store)
		return false;
	r->conv = conv;
	pthread_barrier_init(&r->start, NULL, R_THREADS + 1);
	pthread_barrier_init(&r->end, NULL, R_THREADS + 1);
	for (size_t t = 0; t < R_THREADS; t++) {
		r->args[t].r = r;
		r->args[t].t = t;
	}
	start_all(r->th, R_THREADS, r_worker, r->args, sizeof r->args[0]);
	return true;
}

static void rounds_run(rounds *r)
{
	pthread_barrier_wait(&r->start);
	pthread_barrier_wait(&r->end);
}

static void rounds_stop(rounds *r)
{
	r->quit = true;
	pthread_barrier_wait(&r->start);
	join_all(r->th, R_THREADS);
	pthread_barrier_destroy(&r->start);
	pthread_barrier_destroy(&r->end);
	cs_store_close(r->store);
}

/* After the last round: no round went wrong, and the store holds @events events, all of them in
 * the conversation of the rounds (at version @events). Then rounds_stop(). */
static void rounds_end(rounds *r, size_t bad_rounds, uint64_t events)
{
	CHECK_EQ_UINT(bad_rounds, 0);
	CHECK_EQ_UINT(fx_stats(r->store).events, events);
	CHECK_EQ_UINT(fx_version(r->store, T, r->conv), events);
	rounds_stop(r);
}

/* Read @conv whole and check its ids against want_id(i); returns the number of events. */
static size_t check_ids(cs_store *s, const char *conv, void (*want_id)(char *, size_t, size_t))
{
	cs_event_page all = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_read_all(&all, s, T, conv, 1000, &err), CS_OK);
	size_t wrong = 0;
	for (size_t i = 0; i < all.n; i++) {
		char want[48];
		want_id(want, sizeof want, i);
		bool bad = all.events[i]->version != i + 1 || strcmp(all.events[i]->id, want) != 0;
		if (bad && wrong++ < 3)
			fprintf(stderr, "  %s version %zu: id \"%s\", want \"%s\"\n", conv, i + 1,
				all.events[i]->id, want);
	}
	CHECK_EQ_UINT(wrong, 0);
	size_t n = all.n;
	cs_event_page_deinit(&all);
	return n;
}

static void c_id(char *out, size_t size, size_t i)
{
	snprintf(out, size, "c%zu-%zu", i / R_EVENTS, i % R_EVENTS);
}

/* (c) 8 threads, one request, same ids */
static void test_same_request_racing(void)
{
	static rounds r;
	if (!rounds_start(&r, "c", "same"))
		return;
	size_t bad_rounds = 0;
	for (unsigned round = 0; round < R_ROUNDS; round++) {
		Convstore__V1__Event **req = ev_alloc(&A, R_EVENTS * sizeof *req);
		for (unsigned k = 0; k < R_EVENTS; k++)
			req[k] =
			    ev_message(&A, ev_strf(&A, "c%u-%u", round, k), "user", "same request");
		for (size_t t = 0; t < R_THREADS; t++) {
			r.req[t] = req;
			r.n[t] = R_EVENTS;
		}
		/* half the rounds with "any", half with the exact current version */
		r.expected = round % 2 ? (int64_t)(round * R_EVENTS) : CS_ANY_VERSION;
		rounds_run(&r);

		size_t fresh = 0, not_ok = 0, differ = 0;
		for (size_t t = 0; t < R_THREADS; t++) {
			const struct r_arg *a = &r.args[t];
			if (a->rc != CS_OK) {
				if (not_ok++ == 0)
					fprintf(stderr, "  round %u thread %zu: rc %d %s\n", round,
						t, a->rc, a->err.msg);
				continue;
			}
			fresh += !a->res.replayed;
			differ += a->res.first_version != round * R_EVENTS + 1 ||
				  a->res.last_version != (round + 1) * R_EVENTS ||
				  a->res.first_position != r.args[0].res.first_position ||
				  a->res.last_position != r.args[0].res.last_position;
		}
		bool ok = CHECK_EQ_UINT(not_ok, 0);
		ok &= CHECK_EQ_UINT(fresh, 1);
		ok &= CHECK_EQ_UINT(differ, 0);
		bad_rounds += !ok;
	}
	CHECK_EQ_UINT(check_ids(r.store, "same", c_id), R_ROUNDS * R_EVENTS);
	rounds_end(&r, bad_rounds, R_ROUNDS * R_EVENTS);
}

/* (e) 8 threads request the same tool-call id at once: the first pending call wins, the other
 * seven are refused although they share a commit with it */
static void test_pending_call_racing(void)
{
	static rounds r;
	if (!rounds_start(&r, "e", "pending"))
		return;
	size_t bad_rounds = 0;
	for (unsigned round = 0; round < R_ROUNDS; round++) {
		for (size_t t = 0; t < R_THREADS; t++) {
			Convstore__V1__Event *ev = ev_model_response(&A, NULL, "gpt-4o", NULL);
			ev_add_tool_call(&A, ev, "z", "get_user", ev_strf(&A, "{\"t\":%zu}", t));
			ev->id = ev_strf(&A, "e%u-call", round);
			if (t % 2) /* half of them under their own ids: not an idempotent retry */
				ev->id = ev_strf(&A, "e%u-call-%zu", round, t);
			r.req[t] = ev_alloc(&A, sizeof *r.req[t]);
			r.req[t][0] = ev;
			r.n[t] = 1;
		}
		r.expected = CS_ANY_VERSION;
		rounds_run(&r);

		size_t fresh = 0, replayed = 0, refused = 0, other = 0, winner = R_THREADS;
		for (size_t t = 0; t < R_THREADS; t++) {
			const struct r_arg *a = &r.args[t];
			if (a->rc == CS_OK && !a->res.replayed) {
				fresh++;
				winner = t;
			} else if (a->rc == CS_OK) {
				replayed++;
			} else if (a->rc == CS_EINVAL && a->err.index == 0) {
				refused++;
			} else if (other++ == 0) {
				fprintf(stderr, "  round %u thread %zu: rc %d %s\n", round, t,
					a->rc, a->err.msg);
			}
		}
		/* the even threads share one id: when one of them won, the other three are
		 * retries of a stored request (replays), whatever the pending call says */
		bool ok = CHECK_EQ_UINT(fresh, 1);
		ok &= CHECK_EQ_UINT(other, 0);
		ok &= CHECK_EQ_UINT(replayed, winner % 2 ? 0 : R_THREADS / 2 - 1);
		ok &= CHECK_EQ_UINT(refused, winner % 2 ? R_THREADS - 1 : R_THREADS / 2);
		bad_rounds += !ok;
		if (winner == R_THREADS)
			break;

		/* answer it: the next round's call is not pending */
		Convstore__V1__Event *ans[] = {
		    ev_tool_result(&A, ev_strf(&A, "e%u-answer", round), "z", "get_user", "{}")};
		cs_append_result res;
		cs_error err = CS_ERROR_INIT;
		CHECK_EQ_INT(
		    cs_store_append(&res, r.store, T, "pending", CS_ANY_VERSION, ans, 1, &err),
		    CS_OK);
		CHECK_EQ_UINT(res.first_version, 2 * round + 2);
	}
	rounds_end(&r, bad_rounds, 2 * R_ROUNDS);
}

/* (f) 8 threads send [common id, own id]: the first commits, the others overlap partially and
 * get CS_ECONFLICT, so each round stores exactly two events */
static void test_overlapping_ids_racing(void)
{
	static rounds r;
	if (!rounds_start(&r, "f", "overlap"))
		return;
	size_t bad_rounds = 0;
	for (unsigned round = 0; round < R_ROUNDS; round++) {
		const char *common = ev_strf(&A, "f%u-common", round);
		for (size_t t = 0; t < R_THREADS; t++) {
			r.req[t] = ev_alloc(&A, 2 * sizeof *r.req[t]);
			r.req[t][0] = ev_message(&A, common, "user", "common");
			r.req[t][1] =
			    ev_message(&A, ev_strf(&A, "f%u-own-%zu", round, t), "user", "own");
			r.n[t] = 2;
		}
		r.expected = CS_ANY_VERSION;
		rounds_run(&r);
		size_t fresh = 0, conflicts = 0, other = 0;
		for (size_t t = 0; t < R_THREADS; t++) {
			const struct r_arg *a = &r.args[t];
			if (a->rc == CS_OK && !a->res.replayed &&
			    a->res.first_version == 2 * round + 1 &&
			    a->res.last_version == 2 * round + 2)
				fresh++;
			else if (a->rc == CS_ECONFLICT)
				conflicts++;
			else if (other++ == 0)
				fprintf(stderr,
					"  round %u thread %zu: rc %d replayed %d v%llu %s\n",
					round, t, a->rc, a->res.replayed,
					(unsigned long long)a->res.first_version, a->err.msg);
		}
		bool ok = CHECK_EQ_UINT(fresh, 1);
		ok &= CHECK_EQ_UINT(conflicts, R_THREADS - 1);
		ok &= CHECK_EQ_UINT(other, 0);
		bad_rounds += !ok;
	}
	rounds_end(&r, bad_rounds, 2 * R_ROUNDS);
}

/* ---- (d) valid and invalid requests in the same batches ------------------------------------ */

#define D_VALID	  8
#define D_INVALID 4
#define D_CONVS	  4
#define D_EACH	  100

typedef struct d_arg {
	cs_store *store;
	unsigned thread;
	bool valid;
	size_t ok, einval, wrong_index, other;
	uint64_t last_version[D_CONVS];
	size_t not_increasing;
	char first_problem[300];
	ev_arena arena;
} d_arg;

static void d_note(d_arg *d, int rc, const cs_error *err)
{
	if (d->first_problem[0] == '\0')
		snprintf(d->first_problem, sizeof d->first_problem, "rc %d index %d: %s", rc,
			 err->index, err->msg);
}

static void *d_worker(void *p)
{
	d_arg *d = p;
	ev_arena *a = &d->arena;
	for (unsigned i = 0; i < D_EACH; i++) {
		unsigned c = (d->thread + i) % D_CONVS;
		char *conv = ev_strf(a, "mix-%u", c);
		Convstore__V1__Event *evs[2];
		size_t n = 1;
		int want_index = 0;
		if (d->valid) {
			evs[0] =
			    ev_message(a, NULL, "user", ev_strf(a, "valid %u/%u", d->thread, i));
		} else {
			switch (i % 3) {
			case 0: /* stateless: a bad role */
				evs[0] = ev_message(a, NULL, "robot", "doomed");
				break;
			case 1: /* stateful: a result nobody asked for */
				evs[0] = ev_tool_result(a, NULL, "nobody-called", "f", "doomed");
				break;
			default: /* a valid event dragged down by its neighbour */
				evs[0] = ev_message(a, NULL, "user", "doomed");
				evs[1] = ev_tool_result(a, NULL, "nobody-called", "f", "doomed");
				n = 2;
				want_index = 1;
			}
		}
		cs_append_result r;
		cs_error err = CS_ERROR_INIT;
		int rc = cs_store_append(&r, d->store, T, conv, CS_ANY_VERSION, evs, n, &err);
		if (rc == CS_OK && d->valid) {
			d->ok++;
			d->not_increasing += r.first_version <= d->last_version[c];
			d->last_version[c] = r.first_version;
		} else if (rc == CS_EINVAL && !d->valid) {
			d->einval++;
			if (err.index != want_index) {
				d->wrong_index++;
				d_note(d, rc, &err);
			}
		} else {
			d->other++;
			d_note(d, rc, &err);
		}
	}
	return NULL;
}

static void test_mixed_batches(void)
{
	cs_store *s = open_sub("d", true);
	if (!s)
		return;
	static d_arg args[D_VALID + D_INVALID];
	for (unsigned t = 0; t < D_VALID + D_INVALID; t++) {
		args[t].store = s;
		args[t].thread = t;
		args[t].valid = t < D_VALID;
	}
	run_all(D_VALID + D_INVALID, d_worker, args, sizeof args[0]);

	size_t ok = 0, einval = 0, wrong_index = 0, other = 0, not_increasing = 0;
	for (unsigned t = 0; t < D_VALID + D_INVALID; t++) {
		ok += args[t].ok;
		einval += args[t].einval;
		wrong_index += args[t].wrong_index;
		other += args[t].other;
		not_increasing += args[t].not_increasing;
		if (args[t].first_problem[0])
			fprintf(stderr, "  thread %u: %s\n", t, args[t].first_problem);
	}
	CHECK_EQ_UINT(ok, D_VALID * D_EACH);
	CHECK_EQ_UINT(einval, D_INVALID * D_EACH);
	CHECK_EQ_UINT(wrong_index, 0);
	CHECK_EQ_UINT(other, 0);
	CHECK_EQ_UINT(not_increasing, 0);

	size_t total = 0, doomed = 0, gaps = 0;
	for (unsigned c = 0; c < D_CONVS; c++) {
		char conv[16];
		snprintf(conv, sizeof conv, "mix-%u", c);
		cs_event_page all = {0};
		cs_error err = CS_ERROR_INIT;
		CHECK_EQ_INT(fx_read_all(&all, s, T, conv, 1000, &err), CS_OK);
		CHECK_EQ_UINT(all.n, D_VALID * D_EACH / D_CONVS);
		for (size_t i = 0; i < all.n; i++) {
			gaps += all.events[i]->version != i + 1;
			doomed +=
			    all.events[i]->payload_case != CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE ||
			    strncmp(all.events[i]->message->content, "valid ", 6) != 0;
		}
		total += all.n;
		CHECK_EQ_UINT(fx_version(s, T, conv), all.n);
		cs_event_page_deinit(&all);
	}
	CHECK_EQ_UINT(total, D_VALID * D_EACH);
	CHECK_EQ_UINT(doomed, 0);
	CHECK_EQ_UINT(gaps, 0);
	cs_store_stats st = fx_stats(s);
	CHECK_EQ_UINT(st.events, D_VALID * D_EACH);
	printf("(d) %llu valid appends in %llu commits, %zu refused\n",
	       (unsigned long long)st.appends, (unsigned long long)st.commits, einval);
	cs_store_close(s);
	for (unsigned t = 0; t < D_VALID + D_INVALID; t++)
		ev_arena_free(&args[t].arena);
}

/* ---- (g) a tiny batch cap -------------------------------------------------------------------- */

#define G_THREADS 8
#define G_EACH	  40
#define G_BATCH	  4

typedef struct g_arg {
	cs_store *store;
	unsigned thread;
	size_t events, ok, misnumbered;
	char first_problem[300];
	ev_arena arena;
} g_arg;

static void *g_worker(void *p)
{
	g_arg *g = p;
	char conv[16];
	snprintf(conv, sizeof conv, "g%u", g->thread);
	uint64_t next = 1;
	for (unsigned i = 0; i < G_EACH; i++) {
		/* 1..6 events: some requests are larger than a whole batch */
		size_t n = 1 + (g->thread + i) % 6;
		Convstore__V1__Event *evs[6];
		for (size_t k = 0; k < n; k++)
			evs[k] = ev_message(&g->arena, NULL, "user", "batched");
		cs_append_result r;
		cs_error err = CS_ERROR_INIT;
		int rc = cs_store_append(&r, g->store, T, conv, CS_ANY_VERSION, evs, n, &err);
		if (rc != CS_OK) {
			if (g->first_problem[0] == '\0')
				snprintf(g->first_problem, sizeof g->first_problem,
					 "%zu events: rc %d %s", n, rc, err.msg);
			continue;
		}
		g->ok++;
		g->misnumbered += r.first_version != next || r.last_version != next + n - 1;
		next += n;
		g->events += n;
	}
	return NULL;
}

static void test_small_batches(void)
{
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = ev_strf(&A, "%s/g", root);
	o.no_sync = true;
	o.max_batch_events = G_BATCH;
	cs_store *s = NULL;
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(cs_store_open(&s, &o, &err), CS_OK))
		return;
	static g_arg args[G_THREADS];
	for (unsigned t = 0; t < G_THREADS; t++) {
		args[t].store = s;
		args[t].thread = t;
	}
	run_all(G_THREADS, g_worker, args, sizeof args[0]);
	size_t ok = 0, events = 0, misnumbered = 0;
	for (unsigned t = 0; t < G_THREADS; t++) {
		ok += args[t].ok;
		events += args[t].events;
		misnumbered += args[t].misnumbered;
		if (args[t].first_problem[0])
			fprintf(stderr, "  thread %u: %s\n", t, args[t].first_problem);
		char conv[16];
		snprintf(conv, sizeof conv, "g%u", t);
		CHECK_EQ_INT(fx_count(s, T, conv), (long)args[t].events);
		ev_arena_free(&args[t].arena);
	}
	CHECK_EQ_UINT(ok, G_THREADS * G_EACH);
	CHECK_EQ_UINT(misnumbered, 0);
	cs_store_stats st = fx_stats(s);
	CHECK_EQ_UINT(st.events, events);
	/* a transaction holds whole requests of at most G_BATCH events, or one larger request */
	CHECK(st.commits * 6 >= events);
	printf("(g) %zu events in %llu commits of at most %d events\n", events,
	       (unsigned long long)st.commits, G_BATCH);
	cs_store_close(s);
}

int main(void)
{
	fx_tmpdir(root, "concurrency");
	CHECK_RUN(test_many_conversations);
	CHECK_RUN(test_one_conversation_race);
	CHECK_RUN(test_same_request_racing);
	CHECK_RUN(test_pending_call_racing);
	CHECK_RUN(test_overlapping_ids_racing);
	CHECK_RUN(test_mixed_batches);
	CHECK_RUN(test_small_batches);
	ev_arena_free(&A);
	fx_rmrf(root);
	return check_finish();
}
