/*
 * test_mapfull.c - proves the map-size contract (store.h caveats):
 *
 *  - a store opened with a tiny map (1 MiB) and no cap grows by itself: ~20 MB of events in many
 *    requests all succeed, stats report map_grows >= 1 and a bigger map, and every event reads
 *    back identical, even with a reader thread hammering the store while the map grows;
 *  - with a cap (1 MiB, growing to 2 MiB at most) appending past the cap fails with CS_EFULL and
 *    stores nothing of that request; everything appended before still reads back identical and
 *    verify finds no problem;
 *  - reopened with a larger cap, appends succeed again and continue the numbering;
 *  - the same with 4 writers at once: growth under concurrent appends loses nothing, and at the
 *    cap every writer gets CS_EFULL while everything acknowledged before reads back intact.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"

#define T	     "t"
#define MIB	     ((size_t)1 << 20)
#define EVENT_CHARS  (32u << 10)
#define PER_REQUEST  4
#define GROW_EVENTS  640 /* x 32 KiB = 20 MiB */
#define CAP_ATTEMPTS 400

static char root[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;

/* A barely compressible event: deflate cannot make the map-size arithmetic moot. */
static Convstore__V1__Event *noise_event(unsigned long seed)
{
	return ev_message(&A, NULL, "assistant", ev_noise(&A, seed, EVENT_CHARS));
}

/* Open (creating) the store @name under root with a 1 MiB map growing up to @max_map_size (0: no
 * cap); NULL (a failed check) when it does not open. */
static cs_store *open_sub(const char *name, size_t max_map_size)
{
	cs_store *s = NULL;
	cs_error err = CS_ERROR_INIT;
	const char *path = ev_strf(&A, "%s/%s", root, name);
	if (!CHECK_EQ_INT(fx_open(&s, path, MIB, max_map_size, false, &err), CS_OK)) {
		fprintf(stderr, "  open %s: %s\n", path, err.msg);
		return NULL;
	}
	return s;
}

/* Every event of @conv reads back as sent. */
static void all_intact(cs_store *s, const char *conv, Convstore__V1__Event **sent, size_t n)
{
	cs_event_page all = {0};
	cs_error err = CS_ERROR_INIT;
	if (n == 0) { /* nothing acknowledged (another writer took the space): nothing stored */
		CHECK_EQ_INT(fx_read_all(&all, s, T, conv, 64, &err), CS_ENOTFOUND);
		cs_event_page_deinit(&all);
		return;
	}
	if (!CHECK_EQ_INT(fx_read_all(&all, s, T, conv, 64, &err), CS_OK))
		fprintf(stderr, "  read %s: %s\n", conv, err.msg);
	if (CHECK_EQ_UINT(all.n, n)) {
		size_t bad = 0;
		for (size_t i = 0; i < n; i++)
			if (all.events[i]->version != i + 1 ||
			    !ev_same_as_sent(&A, all.events[i], sent[i], true))
				bad++;
		if (!CHECK_EQ_UINT(bad, 0))
			fprintf(stderr, "  %zu events of %s differ from what was sent\n", bad,
				conv);
	}
	cs_event_page_deinit(&all);
}

typedef struct reader_arg {
	cs_store *store;
	atomic_bool stop;
	atomic_ulong reads;
	atomic_ulong errors;
	char first_error[300];
} reader_arg;

/* Reads while the writer grows the map: every read must succeed. */
static void *reader(void *p)
{
	reader_arg *ra = p;
	while (!atomic_load(&ra->stop)) {
		cs_event_page page = {0};
		cs_error err = CS_ERROR_INIT;
		int rc = cs_store_read_feed(&page, ra->store, NULL, 0, 8, &err);
		cs_event_page_deinit(&page);
		if (rc == CS_OK) {
			Convstore__V1__Head *h = NULL;
			rc = cs_store_head(&h, ra->store, T, "grow", &err);
			if (h)
				protobuf_c_message_free_unpacked(&h->base, NULL);
			if (rc == CS_ENOTFOUND)
				rc = CS_OK;
		}
		if (rc != CS_OK && atomic_fetch_add(&ra->errors, 1) == 0)
			snprintf(ra->first_error, sizeof ra->first_error, "%d %s", rc, err.msg);
		atomic_fetch_add(&ra->reads, 1);
	}
	return NULL;
}

static void test_grows(void)
{
	cs_store *s = open_sub("grow", 0);
	if (!s)
		return;
	cs_error err = CS_ERROR_INIT;
	cs_store_stats st0 = fx_stats(s);
	CHECK(st0.map_size <= 2 * MIB);

	reader_arg ra = {.store = s};
	pthread_t th;
	CHECK_EQ_INT(pthread_create(&th, NULL, reader, &ra), 0);

	Convstore__V1__Event **sent = ev_alloc(&A, GROW_EVENTS * sizeof *sent);
	for (size_t i = 0; i < GROW_EVENTS; i++)
		sent[i] = noise_event(i + 1);
	size_t failed = 0;
	for (size_t i = 0; i < GROW_EVENTS; i += PER_REQUEST) {
		cs_append_result r;
		int rc = cs_store_append(&r, s, T, "grow", (int64_t)i, sent + i, PER_REQUEST, &err);
		if (rc != CS_OK && failed++ == 0)
			fprintf(stderr, "  append at %zu: %d %s\n", i, rc, err.msg);
		else if (rc == CS_OK)
			CHECK_EQ_UINT(r.last_version, i + PER_REQUEST);
	}
	atomic_store(&ra.stop, true);
	pthread_join(th, NULL);
	CHECK_EQ_UINT(failed, 0);
	if (!CHECK_EQ_UINT(atomic_load(&ra.errors), 0))
		fprintf(stderr, "  first reader error: %s\n", ra.first_error);
	CHECK(atomic_load(&ra.reads) > 0);

	cs_store_stats st = fx_stats(s);
	CHECK_EQ_UINT(st.events, GROW_EVENTS);
	CHECK(st.map_grows >= 1);
	CHECK(st.map_size > st0.map_size);
	CHECK(st.map_size >= 15 * MIB);
	CHECK(st.map_used <= st.map_size);
	printf("grow: %u events of %u KiB, map %llu -> %llu bytes in %llu grows, %llu used\n",
	       GROW_EVENTS, EVENT_CHARS >> 10, (unsigned long long)st0.map_size,
	       (unsigned long long)st.map_size, (unsigned long long)st.map_grows,
	       (unsigned long long)st.map_used);
	all_intact(s, "grow", sent, GROW_EVENTS);
	cs_store_close(s);
}

static void test_cap(void)
{
	cs_store *s = open_sub("cap", 2 * MIB);
	if (!s)
		return;
	cs_error err = CS_ERROR_INIT;

	Convstore__V1__Event **sent = ev_alloc(&A, CAP_ATTEMPTS * sizeof *sent);
	size_t stored = 0;
	int rc = CS_OK;
	for (size_t i = 0; i < CAP_ATTEMPTS; i++) {
		sent[i] = noise_event(1000 + i);
		cs_append_result r;
		err = (cs_error)CS_ERROR_INIT;
		rc = cs_store_append(&r, s, T, "cap", CS_ANY_VERSION, sent + i, 1, &err);
		if (rc != CS_OK)
			break;
		CHECK_EQ_UINT(r.first_version, i + 1);
		stored++;
	}
	CHECK_EQ_INT(rc, CS_EFULL);
	CHECK_EQ_INT(err.code, CS_EFULL);
	CHECK(err.msg[0] != '\0');
	CHECK(stored >= 10);
	CHECK(stored < CAP_ATTEMPTS);
	printf("cap: %zu events stored before CS_EFULL (\"%s\")\n", stored, err.msg);

	cs_store_stats st = fx_stats(s);
	CHECK_EQ_UINT(st.events, stored);
	CHECK(st.map_size <= 2 * MIB);
	CHECK_EQ_UINT(fx_version(s, T, "cap"), stored);

	/* full stays full for a big event, and such a failure stores nothing */
	cs_append_result r;
	CHECK_EQ_INT(cs_store_append(&r, s, T, "cap", CS_ANY_VERSION, sent + stored, 1, &err),
		     CS_EFULL);
	CHECK_EQ_UINT(fx_stats(s).events, stored);
	all_intact(s, "cap", sent, stored);

	/* a small one may still fit; if it does it is numbered right */
	Convstore__V1__Event *small[] = {ev_message(&A, NULL, "user", "tiny")};
	rc = cs_store_append(&r, s, T, "cap", CS_ANY_VERSION, small, 1, &err);
	CHECK(rc == CS_OK || rc == CS_EFULL);
	size_t small_stored = rc == CS_OK;
	if (rc == CS_OK)
		CHECK_EQ_UINT(r.first_version, stored + 1);

	cs_verify_report rep = {0};
	CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
	CHECK_EQ_UINT(rep.problems, 0);
	CHECK_EQ_UINT(rep.records, stored + small_stored);
	cs_store_close(s);

	/* a larger cap: appends work again */
	s = open_sub("cap", 64 * MIB);
	if (!s)
		return;
	uint64_t next = stored + small_stored + 1;
	for (size_t i = 0; i < 8; i++) {
		Convstore__V1__Event *ev[] = {noise_event(5000 + i)};
		CHECK_EQ_INT(cs_store_append(&r, s, T, "cap", CS_ANY_VERSION, ev, 1, &err), CS_OK);
		CHECK_EQ_UINT(r.first_version, next + i);
	}
	CHECK(fx_stats(s).map_size > 2 * MIB);
	cs_event_page p = {0};
	CHECK_EQ_INT(fx_read_all(&p, s, T, "cap", 100, &err), CS_OK);
	CHECK_EQ_UINT(p.n, stored + small_stored + 8);
	size_t bad = 0;
	for (size_t i = 0; i < stored && i < p.n; i++)
		bad += !ev_same_as_sent(&A, p.events[i], sent[i], true);
	CHECK_EQ_UINT(bad, 0);
	cs_event_page_deinit(&p);
	CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
	cs_store_close(s);
}

/* ---- many writers against a small map -------------------------------------------------------- */

#define W_THREADS  4
#define W_REQUESTS 100
#define W_PER_REQ  2
#define W_CHARS	   (16u << 10)

typedef struct writer_arg {
	cs_store *store;
	char conv[16];
	Convstore__V1__Event **events; /* W_REQUESTS * W_PER_REQ */
	bool stop_at_full;
	size_t acked; /* events acknowledged */
	size_t misnumbered;
	int last_rc;
	char last_msg[256];
} writer_arg;

static void *writer(void *p)
{
	writer_arg *w = p;
	for (size_t i = 0; i < W_REQUESTS; i++) {
		cs_append_result r;
		cs_error err = CS_ERROR_INIT;
		w->last_rc = cs_store_append(&r, w->store, T, w->conv, CS_ANY_VERSION,
					     w->events + i * W_PER_REQ, W_PER_REQ, &err);
		if (w->last_rc != CS_OK) {
			memcpy(w->last_msg, err.msg, sizeof w->last_msg);
			break;
		}
		w->misnumbered += r.first_version != w->acked + 1;
		w->acked += W_PER_REQ;
	}
	return NULL;
}

static void run_writers(writer_arg *w, cs_store *s, unsigned long seed)
{
	pthread_t th[W_THREADS];
	for (size_t t = 0; t < W_THREADS; t++) {
		w[t] = (writer_arg){.store = s};
		snprintf(w[t].conv, sizeof w[t].conv, "w%zu", t);
		w[t].events = ev_alloc(&A, W_REQUESTS * W_PER_REQ * sizeof *w[t].events);
		for (size_t i = 0; i < W_REQUESTS * W_PER_REQ; i++)
			w[t].events[i] = ev_message(&A, NULL, "assistant",
						    ev_noise(&A, seed + t * 100000 + i, W_CHARS));
	}
	for (size_t t = 0; t < W_THREADS; t++)
		CHECK_EQ_INT(pthread_create(&th[t], NULL, writer, &w[t]), 0);
	for (size_t t = 0; t < W_THREADS; t++)
		pthread_join(th[t], NULL);
}

static void test_grows_concurrently(void)
{
	cs_store *s = open_sub("grow-many", 0);
	if (!s)
		return;
	static writer_arg w[W_THREADS];
	run_writers(w, s, 77);
	size_t total = 0;
	for (size_t t = 0; t < W_THREADS; t++) {
		if (!CHECK_EQ_INT(w[t].last_rc, CS_OK))
			fprintf(stderr, "  writer %zu: %s\n", t, w[t].last_msg);
		CHECK_EQ_UINT(w[t].acked, W_REQUESTS * W_PER_REQ);
		CHECK_EQ_UINT(w[t].misnumbered, 0);
		all_intact(s, w[t].conv, w[t].events, w[t].acked);
		total += w[t].acked;
	}
	cs_store_stats st = fx_stats(s);
	CHECK_EQ_UINT(st.events, total);
	CHECK(st.map_grows >= 1);
	cs_verify_report rep = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
	CHECK_EQ_UINT(rep.records, total);
	printf("grow, %d writers: %zu events, map %llu bytes after %llu grows\n", W_THREADS, total,
	       (unsigned long long)st.map_size, (unsigned long long)st.map_grows);
	cs_store_close(s);
}

static void test_cap_concurrently(void)
{
	cs_store *s = open_sub("cap-many", 2 * MIB);
	if (!s)
		return;
	static writer_arg w[W_THREADS];
	run_writers(w, s, 99);
	size_t total = 0;
	for (size_t t = 0; t < W_THREADS; t++) {
		/* every writer ran into the cap, and only into the cap */
		if (!CHECK_EQ_INT(w[t].last_rc, CS_EFULL))
			fprintf(stderr, "  writer %zu: %d %s\n", t, w[t].last_rc, w[t].last_msg);
		CHECK_EQ_UINT(w[t].misnumbered, 0);
		CHECK_EQ_UINT(fx_version(s, T, w[t].conv), w[t].acked);
		all_intact(s, w[t].conv, w[t].events, w[t].acked);
		total += w[t].acked;
	}
	CHECK(total > 0);
	CHECK_EQ_UINT(fx_stats(s).events, total);
	cs_verify_report rep = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
	CHECK_EQ_UINT(rep.problems, 0);
	printf("cap, %d writers: %zu events acknowledged before CS_EFULL\n", W_THREADS, total);
	cs_store_close(s);
}

int main(void)
{
	fx_tmpdir(root, "mapfull");
	CHECK_RUN(test_grows);
	CHECK_RUN(test_cap);
	CHECK_RUN(test_grows_concurrently);
	CHECK_RUN(test_cap_concurrently);
	ev_arena_free(&A);
	fx_rmrf(root);
	return check_finish();
}
