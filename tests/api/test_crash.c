/*
 * test_crash.c - the durability promise over HTTP: an append convstored answered with 2xx
 * survives kill -9 of the server, with the version and position it was given, and a crash never
 * leaves part of an append behind. tests/store/test_crash proves it for the store in-process;
 * this proves it for what clients see (the HTTP layer acknowledges only after the commit).
 *
 * One durable convstored (its default fsync, not the --no-sync of the other API tests) takes
 * appends of 1-4 events from THREADS client threads, each on its own connection and its own
 * conversations, one append in eight carrying a 3-6 KiB event (deflated on disk). After a random
 * 100-400 ms the test kills the server with SIGKILL, waits for the clients (whose request in
 * flight fails), runs `convctl --data DIR verify` on the folder the crash left (must exit 0),
 * restarts the server on it and reads every conversation back through the API:
 *
 *  - versions are 1..N with no gap, positions strictly increase;
 *  - every event carries an id the test sent (r<append>-e<k>), in the conversation it was sent
 *    to, so nothing appears that was not asked for;
 *  - an acknowledged append is there whole, event k at first_version + k, positions between
 *    first_position and last_position as acknowledged;
 *  - an append that got no answer (in flight at the kill) is there whole or not at all, and
 *    stays that way in every later check.
 * KILLS rounds run on the same folder, each sending at most ROUND_APPENDS (so that a fast machine
 * does not make the read-back grow without bound); the counts are printed at the end.
 * CONVSTORE_CRASH_SEED replays the random choices of a run (the seed is printed).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "../check.h"
#include "server.h"

#define KILLS	      20
#define THREADS	      8
#define CONVS	      2 /* per thread */
#define MAX_EVENTS    4 /* per append */
#define ROUND_APPENDS 5000
#define MAX_APPENDS   (KILLS * ROUND_APPENDS)

/* One append as sent. State moves SENT -> ACKED, or stays SENT when the answer never came. */
enum { SENT = 1, ACKED, REFUSED };

typedef struct append_rec {
	_Atomic int state;
	unsigned conv; /* thread * CONVS + c */
	unsigned n;
	uint64_t first_version, last_version, first_position, last_position;
	unsigned seen; /* events found by the last check */
	int present;   /* -1 unknown; 0/1 what the first check after its round found */
} append_rec;

static append_rec recs[MAX_APPENDS];
static atomic_uint n_recs;
static unsigned round_end; /* n_recs may not pass this in the current round */
static atomic_bool stop;
static unsigned port;
static unsigned seed;

typedef struct counts {
	unsigned kills, verified_ok, sent, acked, acked_events, refused;
	unsigned unacked_present, unacked_absent, acked_checked;
} counts;

static counts C;

static void conv_name(char *out, size_t size, unsigned conv)
{
	snprintf(out, size, "kill-%u", conv);
}

/* The append's JSON body: ids r<idx>-e<k>; one in eight has a big, compressible event. */
static char *append_body(unsigned idx, unsigned n, unsigned *rnd)
{
	size_t big = rand_r(rnd) % 8 == 0 ? 3072 + (size_t)(rand_r(rnd) % 3072) : 0;
	size_t cap = 256 * n + big + 64;
	char *b = malloc(cap);
	if (!b)
		exit(1);
	size_t o = (size_t)snprintf(b, cap, "{\"events\":[");
	for (unsigned k = 0; k < n; k++) {
		o += (size_t)snprintf(b + o, cap - o,
				      "%s{\"id\":\"r%u-e%u\",\"message\":{\"role\":\"user\","
				      "\"content\":\"append %u event %u ",
				      k ? "," : "", idx, k, idx, k);
		for (size_t i = 0; k == 0 && i < big; i++)
			b[o++] = "crash test "[i % 11];
		o += (size_t)snprintf(b + o, cap - o, "\"}}");
	}
	snprintf(b + o, cap - o, "]}");
	return b;
}

static void ack(append_rec *r, const httpc_response *resp)
{
	json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
	r->first_version = (uint64_t)jint(j, "first_version");
	r->last_version = (uint64_t)jint(j, "last_version");
	r->first_position = (uint64_t)jint(j, "first_position");
	r->last_position = (uint64_t)jint(j, "last_position");
	json_decref(j);
	atomic_store(&r->state, ACKED);
}

static void *client(void *p)
{
	unsigned t = (unsigned)(uintptr_t)p;
	unsigned rnd = seed * 31u + t * 7919u + C.kills * 104729u;
	httpc c;
	httpc_init(&c, "127.0.0.1", port);
	while (!atomic_load(&stop)) {
		unsigned idx = atomic_fetch_add(&n_recs, 1);
		if (idx >= round_end) {
			atomic_fetch_sub(&n_recs, 1);
			break; /* this round's share is sent: wait for the kill */
		}
		append_rec *r = &recs[idx];
		r->conv = t * CONVS + (unsigned)rand_r(&rnd) % CONVS;
		r->n = 1 + (unsigned)rand_r(&rnd) % MAX_EVENTS;
		r->present = -1;
		atomic_store(&r->state, SENT);
		char path[64], conv[32];
		conv_name(conv, sizeof(conv), r->conv);
		snprintf(path, sizeof(path), "/v1/conversations/%s/events", conv);
		char *body = append_body(idx, r->n, &rnd);
		httpc_response resp;
		int rc = httpc_request(&resp, &c, "POST", path, JSON_HDR, body, strlen(body));
		free(body);
		if (rc != 0)
			break; /* the server is gone: this append stays SENT */
		if (resp.status == 201 || resp.status == 200)
			ack(r, &resp);
		else
			atomic_store(&r->state, REFUSED);
		httpc_response_free(&resp);
	}
	httpc_close(&c);
	return NULL;
}

/* `convctl --data DIR verify` on the folder the crash left; its exit status. */
static int verify(const char *dir)
{
	const char *convctl = getenv("CONVCTL");
	char data[PATH_MAX + 8];
	snprintf(data, sizeof(data), "%s/data", dir);
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 1);
		execl(convctl, convctl, "--data", data, "verify", (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- reading back ------------------------------------------------------------------------- */

/* Check one event of @conv read back; false when it is not one this test sent there. */
static bool check_event(json_t *ev, unsigned conv, uint64_t want_version, uint64_t *last_pos)
{
	unsigned idx, k;
	const char *id = jstr(ev, "id");
	uint64_t version = (uint64_t)jint(ev, "version"), pos = (uint64_t)jint(ev, "position");
	if (!CHECK_EQ_UINT(version, want_version) || !CHECK(pos > *last_pos))
		return false;
	*last_pos = pos;
	if (!CHECK(sscanf(id, "r%u-e%u", &idx, &k) == 2 && idx < MAX_APPENDS))
		return false;
	append_rec *r = &recs[idx];
	if (!CHECK_EQ_UINT(r->conv, conv) || !CHECK(k < r->n))
		return false;
	CHECK_EQ_UINT(k, r->seen++); /* an append's events are consecutive, in order */
	if (atomic_load(&r->state) == ACKED) {
		CHECK_EQ_UINT(version, r->first_version + k);
		CHECK(pos >= r->first_position && pos <= r->last_position);
	}
	return true;
}

/* Read conversation @conv back page by page and check every event. */
static void check_conv(srv *s, unsigned conv)
{
	char name[32];
	conv_name(name, sizeof(name), conv);
	uint64_t from = 1, last_pos = 0;
	for (;;) {
		json_t *page = NULL;
		int status =
		    srv_json(s, &page, "GET",
			     fmt("/v1/conversations/%s/events?from_version=%llu&limit=1000", name,
				 (unsigned long long)from),
			     NULL);
		if (status == 404 && from == 1) { /* never created: nothing was acknowledged */
			json_decref(page);
			return;
		}
		if (!CHECK_EQ_INT(status, 200)) {
			json_decref(page);
			return;
		}
		json_t *events = json_object_get(page, "events"), *ev;
		size_t i;
		json_array_foreach(events, i, ev)
		{
			if (!check_event(ev, conv, from++, &last_pos))
				break;
		}
		bool more = json_is_integer(json_object_get(page, "next_from_version")) &&
			    json_array_size(events) > 0;
		json_decref(page);
		if (!more)
			return;
	}
}

static void check_all(srv *s)
{
	unsigned n = atomic_load(&n_recs);
	for (unsigned i = 0; i < n; i++)
		recs[i].seen = 0;
	for (unsigned conv = 0; conv < THREADS * CONVS; conv++)
		check_conv(s, conv);
	for (unsigned i = 0; i < n; i++) {
		append_rec *r = &recs[i];
		int state = atomic_load(&r->state);
		if (state == ACKED) {
			if (!CHECK_EQ_UINT(r->seen, r->n))
				fprintf(stderr,
					"  acknowledged append r%u: %u of %u events (conv %u, "
					"versions %llu-%llu, positions %llu-%llu)\n",
					i, r->seen, r->n, r->conv,
					(unsigned long long)r->first_version,
					(unsigned long long)r->last_version,
					(unsigned long long)r->first_position,
					(unsigned long long)r->last_position);
			CHECK_EQ_UINT(r->last_version - r->first_version + 1, r->n);
			C.acked_checked++;
			continue;
		}
		if (!CHECK(r->seen == 0 || r->seen == r->n)) /* all or nothing */
			fprintf(stderr, "  append r%u: %u of %u events\n", i, r->seen, r->n);
		if (state == REFUSED) {
			CHECK_EQ_UINT(r->seen, 0);
		} else if (r->present < 0) {
			r->present = r->seen == r->n;
			if (r->present)
				C.unacked_present++;
			else
				C.unacked_absent++;
		} else { /* once decided, it never changes */
			CHECK_EQ_INT(r->present, r->seen == r->n);
		}
	}
}

/* ---- the rounds ---------------------------------------------------------------------------- */

static void round_once(srv *s, unsigned *rnd)
{
	pthread_t th[THREADS];
	atomic_store(&stop, false);
	port = s->port;
	round_end = atomic_load(&n_recs) + ROUND_APPENDS;
	for (unsigned t = 0; t < THREADS; t++)
		if (pthread_create(&th[t], NULL, client, (void *)(uintptr_t)t) != 0)
			exit(1);
	struct timespec ts = {0, (100 + rand_r(rnd) % 300) * 1000000L};
	nanosleep(&ts, NULL);
	srv_kill(s);
	C.kills++;
	atomic_store(&stop, true);
	for (unsigned t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	if (CHECK_EQ_INT(verify(s->dir), 0))
		C.verified_ok++;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", s->dir);
	srv_launch(s, dir, NULL, true);
	check_all(s);
}

static void test_kill_rounds(void)
{
	srv s;
	srv_launch(&s, NULL, NULL, true);
	unsigned rnd = seed;
	for (unsigned k = 0; k < KILLS; k++)
		round_once(&s, &rnd);
	unsigned n = atomic_load(&n_recs);
	for (unsigned i = 0; i < n; i++) {
		int state = atomic_load(&recs[i].state);
		C.acked += state == ACKED;
		C.acked_events += state == ACKED ? recs[i].n : 0;
		C.refused += state == REFUSED;
	}
	C.sent = n;
	CHECK_EQ_INT(C.kills, KILLS);
	CHECK(C.acked > 0);
	CHECK_EQ_INT(C.refused, 0);
	CHECK_EQ_INT(srv_stop(&s), 0);
	printf("seed %u: %u kills, %u appends sent, %u acknowledged (%u events), %u checks of "
	       "acknowledged appends, %u unacknowledged but present, %u unacknowledged and "
	       "absent, %u refused, %u verify runs exited 0\n",
	       seed, C.kills, C.sent, C.acked, C.acked_events, C.acked_checked, C.unacked_present,
	       C.unacked_absent, C.refused, C.verified_ok);
}

int main(void)
{
	const char *env = getenv("CONVSTORE_CRASH_SEED");
	seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
	if (!getenv("CONVCTL")) {
		fprintf(stderr, "CONVCTL is not set\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	CHECK_RUN(test_kill_rounds);
	return check_finish();
}
