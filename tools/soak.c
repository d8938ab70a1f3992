/*
 * soak - mixed load on convstored for a set time at a set rate, to find what only time shows:
 * memory that grows, latency that drifts, errors that appear after the millionth request.
 *
 * The mix, per request: 50% append (1 KiB message to one of 1,000 conversations of the current
 * generation: a new thousand every 30 s, so conversations stay realistically short), 25% state
 * view, 10% messages view, 10% list page, 5% global feed page; plus --subscribers SSE streams
 * on the global feed consumed the whole time. The load is open-loop: each client thread sends at
 * its share of --rate on a fixed schedule and latency is measured from the scheduled moment, so
 * a server that stalls is charged for the requests that queued behind the stall.
 *
 * Without --rate, soak first measures the peak (closed loop, --clients connections, 10 s) and
 * runs at --percent of it (default 70), open loop on four times as many connections. It prints, per
 * minute and at the end: requests/s, p50, p99 and p999 latency, errors by status, and the server's
 * memory: RssAnon (its heap and stacks: what a leak grows) and RssFile (pages of the store's map
 * the kernel keeps in memory: that grows with the store and is the page cache's to reclaim). It
 * exits 1 when any request failed or RssAnon grew by 10% or more from the end of the first minute
 * (the warm-up) to the end.
 *
 *   soak --spawn build/api/convstored [--minutes 10] [--rate N | --percent 70]
 *        [--clients 16] [--subscribers 10]
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"
#include "procs.h"
#include "sse.h"

#define MAX_CLIENTS   64
#define MAX_SUBS      100
#define CONVERSATIONS 1000
#define SAMPLES	      (1u << 22)
#define GENERATION_S  30 /* seconds a generation of conversations is appended to */

typedef struct opts {
	const char *spawn;
	char host[64];
	unsigned port;
	double minutes, rate, percent;
	unsigned clients, subscribers;
} opts;

static opts O = {.minutes = 10, .percent = 70, .clients = 16, .subscribers = 10};
static volatile sig_atomic_t interrupted; /* SIGINT/SIGTERM: report what ran and stop the server */

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Sleep @seconds, or less when interrupted. */
static void nap(unsigned seconds)
{
	for (unsigned i = 0; i < seconds * 10 && !interrupted; i++)
		usleep(100 * 1000);
}
static char body[1200];
static atomic_bool stop_all;

/* Latencies of one minute (or of the peak run), collected from every client. */
typedef struct window {
	pthread_mutex_t lock;
	double *lat;
	size_t n;
	unsigned long long errors[6]; /* by status class: [0] no answer, [4] 4xx, [5] 5xx */
	unsigned long long requests;
} window;

static window W = {.lock = PTHREAD_MUTEX_INITIALIZER};

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double started;

/* One request of the mix; its HTTP status, or 0 when there was no answer. Conversations come in
 * generations of GENERATION_S seconds (a thousand at a time, like an agent platform's traffic):
 * each stays as long as real ones are, so a request's cost does not grow with the run while the
 * store does. */
static int one_request(httpc *h, unsigned *seed)
{
	unsigned pick = (unsigned)rand_r(seed) % 100, conv = (unsigned)rand_r(seed) % CONVERSATIONS;
	unsigned gen = (unsigned)((now() - started) / GENERATION_S);
	char path[160];
	httpc_response r;
	int rc;
	if (pick < 50) {
		snprintf(path, sizeof(path), "/v1/conversations/soak-%u-%u/events", gen, conv);
		rc = httpc_request(&r, h, "POST", path, "Content-Type: application/json\r\n", body,
				   strlen(body));
	} else {
		if (pick < 75)
			snprintf(path, sizeof(path), "/v1/conversations/soak-%u-%u", gen, conv);
		else if (pick < 85)
			snprintf(path, sizeof(path), "/v1/conversations/soak-%u-%u/messages", gen,
				 conv);
		else if (pick < 95)
			snprintf(path, sizeof(path), "/v1/conversations?limit=20");
		else
			snprintf(path, sizeof(path), "/v1/events?after_position=%u&limit=50",
				 (unsigned)rand_r(seed) % 1000);
		rc = httpc_request(&r, h, "GET", path, "", NULL, 0);
	}
	int status = rc ? 0 : r.status;
	if (!rc)
		httpc_response_free(&r);
	/* a read of a conversation nobody appended to yet is a fine 404 */
	return status == 404 && pick >= 50 && pick < 85 ? 200 : status;
}

static void record(double lat, int status)
{
	pthread_mutex_lock(&W.lock);
	if (W.n < SAMPLES)
		W.lat[W.n++] = lat;
	W.requests++;
	if (status < 200 || status > 299)
		W.errors[status / 100 < 6 ? status / 100 : 0]++;
	pthread_mutex_unlock(&W.lock);
}

typedef struct client {
	int id;
	double interval; /* seconds between requests; 0: closed loop */
} client;

static void *client_main(void *arg)
{
	client *c = arg;
	httpc h;
	httpc_init(&h, O.host, O.port);
	unsigned seed = (unsigned)c->id * 7919u + 1;
	double next = now() + c->interval * ((double)c->id / (double)MAX_CLIENTS);
	while (!atomic_load(&stop_all)) {
		if (c->interval) {
			double wait = next - now();
			if (wait > 0)
				usleep((useconds_t)(wait * 1e6));
		}
		double start = c->interval ? next : now();
		int status = one_request(&h, &seed);
		record(now() - start, status);
		next += c->interval;
	}
	httpc_close(&h);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Take the window's figures and start a new one. */
static void window_take(double *q, unsigned long long *errors, unsigned long long *requests)
{
	pthread_mutex_lock(&W.lock);
	qsort(W.lat, W.n, sizeof(double), cmp_double);
	q[0] = W.n ? W.lat[W.n / 2] * 1e3 : 0;
	q[1] = W.n ? W.lat[(size_t)((double)W.n * 0.99)] * 1e3 : 0;
	q[2] = W.n ? W.lat[(size_t)((double)W.n * 0.999)] * 1e3 : 0;
	*errors = 0;
	for (int i = 0; i < 6; i++)
		*errors += W.errors[i];
	*requests = W.requests;
	W.n = 0;
	W.requests = 0;
	memset(W.errors, 0, sizeof(W.errors));
	pthread_mutex_unlock(&W.lock);
}

static unsigned long long error_total[6];

static void window_errors(void)
{
	pthread_mutex_lock(&W.lock);
	for (int i = 0; i < 6; i++)
		error_total[i] += W.errors[i];
	pthread_mutex_unlock(&W.lock);
}

/* Run @n clients at @interval (0: closed loop) until stop_all. */
static void clients_start(pthread_t *t, client *c, unsigned n, double interval)
{
	atomic_store(&stop_all, false);
	for (unsigned i = 0; i < n; i++) {
		c[i] = (client){(int)i, interval};
		pthread_create(&t[i], NULL, client_main, &c[i]);
	}
}

static void clients_stop(pthread_t *t, unsigned n)
{
	atomic_store(&stop_all, true);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

/* The feed subscribers: streams on the global feed, drained by one thread. */
static sse_client subs[MAX_SUBS];
static atomic_bool subs_stop;
static atomic_ullong subs_events;

static void on_sub_event(sse_client *c, uint64_t id, const char *event, const char *data)
{
	(void)c, (void)id, (void)event, (void)data;
	subs_events++;
}

static void *subs_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&subs_stop))
		for (unsigned i = 0; i < O.subscribers; i++)
			if (sse_pump(&subs[i], i == 0 ? 20 : 0) < 0) { /* dropped: resume */
				uint64_t last = subs[i].last_id;
				char hdr[64];
				sse_close(&subs[i]);
				snprintf(hdr, sizeof(hdr), "Last-Event-ID: %llu\r\n",
					 (unsigned long long)last);
				sse_open(&subs[i], O.port, "/v1/events/stream", hdr);
				subs[i].on_event = on_sub_event;
				subs[i].last_id = last;
			}
	return NULL;
}

static void usage(void)
{
	fputs("usage: soak (--spawn PATH | --url http://127.0.0.1:PORT) [--minutes M]\n"
	      "            [--rate N | --percent P] [--clients N] [--subscribers N]\n",
	      stderr);
	exit(2);
}

static void parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		if (!strcmp(a, "--spawn"))
			O.spawn = v;
		else if (!strcmp(a, "--url") &&
			 sscanf(v, "http://%63[0-9.]:%u", O.host, &O.port) == 2)
			;
		else if (!strcmp(a, "--minutes") && (O.minutes = atof(v)) > 0)
			;
		else if (!strcmp(a, "--rate") && (O.rate = atof(v)) > 0)
			;
		else if (!strcmp(a, "--percent") && (O.percent = atof(v)) > 0 && O.percent <= 100)
			;
		else if (!strcmp(a, "--clients") && (O.clients = (unsigned)atoi(v)) >= 1 &&
			 O.clients <= MAX_CLIENTS)
			;
		else if (!strcmp(a, "--subscribers") &&
			 (O.subscribers = (unsigned)atoi(v)) <= MAX_SUBS)
			;
		else
			usage();
		i++;
	}
	if (!O.spawn && !O.port)
		usage();
}

int main(int argc, char **argv)
{
	parse(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	char content[1025];
	for (int i = 0; i < 1024; i++)
		content[i] = (char)('a' + i % 26);
	content[1024] = '\0';
	snprintf(body, sizeof(body),
		 "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"%s\"}}]}", content);
	W.lat = malloc(SAMPLES * sizeof(double));
	started = now();
	char dir[4096];
	pid_t pid = 0;
	if (O.spawn) {
		procs_tmpdir(dir, sizeof(dir), "soak");
		pid = procs_spawn(O.spawn, dir, NULL, &O.port);
		snprintf(O.host, sizeof(O.host), "127.0.0.1");
		if (pid < 0) {
			fprintf(stderr, "soak: convstored did not start\n");
			return 1;
		}
	}
	pthread_t t[MAX_CLIENTS], st;
	static client c[MAX_CLIENTS];
	double q[3];
	unsigned long long errors, requests;
	/* the subscribers follow the feed from the start: the peak is measured with them */
	for (unsigned i = 0; i < O.subscribers; i++) {
		sse_open(&subs[i], O.port, "/v1/events/stream", "");
		subs[i].on_event = on_sub_event;
	}
	pthread_create(&st, NULL, subs_main, NULL);
	if (!O.rate) { /* the peak, closed loop */
		clients_start(t, c, O.clients, 0);
		nap(10);
		clients_stop(t, O.clients);
		window_errors();
		window_take(q, &errors, &requests);
		O.rate = (double)requests / 10 * O.percent / 100;
		printf("peak: %.0f requests/s (closed loop, %u clients, p99 %.2f ms); soaking at "
		       "%.0f%% = %.0f/s\n",
		       (double)requests / 10, O.clients, q[1], O.percent, O.rate);
	}
	printf("| minute | requests/s | p50 | p99 | p999 | errors | RssAnon | RssFile | feed "
	       "events |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	fflush(stdout);
	/* Open loop on four times as many connections as the peak was measured with: each then
	 * needs a quarter of its capacity, so one slow answer does not leave a client behind its
	 * schedule for the rest of the run (that would measure the client, not the server). */
	unsigned open = O.clients * 4 < MAX_CLIENTS ? O.clients * 4 : MAX_CLIENTS;
	clients_start(t, c, open, open / O.rate);
	long anon_warm = -1, anon_end = -1, anon_start = pid ? procs_status_kb(pid, "RssAnon") : -1;
	unsigned minutes = (unsigned)(O.minutes + 0.5);
	for (unsigned m = 1; m <= minutes && !interrupted; m++) {
		double t0 = now();
		nap(60);
		window_errors();
		window_take(q, &errors, &requests);
		long anon = pid ? procs_status_kb(pid, "RssAnon") : -1;
		long file = pid ? procs_status_kb(pid, "RssFile") : -1;
		if (m == 1)
			anon_warm = anon;
		anon_end = anon;
		printf(
		    "| %u | %.0f | %.2f ms | %.2f ms | %.2f ms | %llu | %ld MB | %ld MB | %llu |\n",
		    m, (double)requests / (now() - t0), q[0], q[1], q[2], errors, anon / 1024,
		    file / 1024, (unsigned long long)atomic_load(&subs_events));
		fflush(stdout);
	}
	clients_stop(t, open);
	atomic_store(&subs_stop, true);
	pthread_join(st, NULL);
	for (unsigned i = 0; i < O.subscribers; i++)
		sse_close(&subs[i]);
	unsigned long long failed = 0;
	for (int i = 0; i < 6; i++)
		failed += error_total[i];
	double growth = anon_warm > 0 ? (double)(anon_end - anon_warm) / (double)anon_warm : 0;
	printf("\nerrors: %llu (no answer %llu, 4xx %llu, 5xx %llu); server RssAnon %ld MB at "
	       "start, %ld MB after the first minute, %ld MB at the end (%+.1f%%)\n",
	       failed, error_total[0], error_total[4], error_total[5], anon_start / 1024,
	       anon_warm / 1024, anon_end / 1024, growth * 100);
	int rc = failed || growth >= 0.10 || interrupted;
	if (pid > 0) {
		if (!procs_stop(pid)) {
			fprintf(stderr, "soak: convstored did not exit cleanly\n");
			rc = 1;
		}
		procs_rmtree(dir);
	}
	printf("%s\n", interrupted ? "interrupted before the end"
		       : rc	   ? "FAILED"
				   : "passed: no request failed and RssAnon grew by less than 10%");
	return rc;
}
