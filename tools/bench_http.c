/*
 * bench_http - what the HTTP layer costs: durable appends and state reads through convstored,
 * against the in-process store append in the same run.
 *
 * Workloads (1 KiB `message` events of pseudo-random printable text, one event per request,
 * each client on its own keep-alive connection appending to its own conversation):
 *   - HTTP append at 1, 16 and 64 clients (--clients): POST /v1/conversations/{id}/events;
 *   - HTTP state view at 16 clients: GET /v1/conversations/{id} of a 10-event conversation;
 *   - in-process: cs_store_append() through libconvstore on a durable store in its own folder,
 *     the same client counts, one thread per client.
 * Each row prints requests/s, p50 and p99 latency, for appends the ratio of HTTP to
 * in-process throughput at the same client count (the target: at least 0.5 at 64 clients),
 * and for HTTP rows the server's CPU time (user + system, from /proc) per request when the
 * benchmark spawned the server: the figure that says what the server costs, whatever else
 * runs on the machine. The last column is this program's own CPU per request (client threads;
 * for in-process rows, the store's work done on them), which shares the cores with the server.
 *
 * --spawn PATH starts PATH (convstored) on a free port with a temp data folder, durable (no
 * --no-sync), its log to /dev/null, and stops it with SIGTERM; --url http://127.0.0.1:PORT
 * targets a running server instead (its store must be durable for the figures to mean
 * anything). Temp folders go under the current folder when /tmp is tmpfs (fsync is free there).
 * --quick: 0.3 s windows at 1 and 4 clients, for the test suite. Every response is checked: any
 * non-2xx answer stops the benchmark with exit status 1.
 *
 * --feed measures the live feeds instead (GET /v1/events/stream, Server-Sent Events):
 *   - latency from an append's acknowledgement (the 201 read by the writer) to the event's
 *     receipt by each subscriber, p50 and p99 over every (subscriber, event) pair, with 1, 100
 *     and 1,000 subscribers on the global stream, one writer appending one event every 5 ms;
 *     a receipt that beats the acknowledgement counts as 0;
 *   - writer throughput (16 clients) with no subscriber, with 1,000 subscribers attached to
 *     streams of other conversations (idle), and with 1,000 on the global stream each receiving
 *     every event (the fan-out case: 1,000 deliveries per append), as ratios to the first.
 * One thread here pumps every subscriber socket with poll(); the server's CPU per append is
 * the figure that does not depend on this program keeping up.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/resource.h>

#include "convstore/store.h"
#include "httpc.h"
#include "procs.h"
#include "sse.h"

#define CONTENT_BYTES 1024
#define MAX_CLIENTS   256
#define MAX_SAMPLES   (1u << 20)
#define READ_CLIENTS  16

typedef struct cfg {
	char host[64];
	unsigned port;
	double seconds;
	unsigned clients[8];
	size_t n_clients;
	char run[32]; /* makes conversation ids unique per run */
	bool feed;    /* --feed: the live-feed tables instead */
} cfg;

typedef struct worker {
	const cfg *c;
	int id;
	int mode; /* 0: HTTP append, 1: HTTP state read, 2: in-process append */
	cs_store *store;
	double *lat; /* seconds */
	size_t n;
	atomic_bool *stop;
	bool failed;
} worker;

static char content[CONTENT_BYTES + 1];
static char body[CONTENT_BYTES + 128];

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int http_once(worker *w, httpc *h, const char *conv)
{
	char path[160];
	httpc_response r;
	int rc;
	if (w->mode == 1) {
		snprintf(path, sizeof(path), "/v1/conversations/%s", conv);
		rc = httpc_request(&r, h, "GET", path, "", NULL, 0);
	} else {
		snprintf(path, sizeof(path), "/v1/conversations/%s/events", conv);
		rc = httpc_request(&r, h, "POST", path, "Content-Type: application/json\r\n", body,
				   strlen(body));
	}
	if (!rc && (r.status < 200 || r.status > 299)) {
		fprintf(stderr, "bench_http: %s -> %d %.200s\n", path, r.status, r.body);
		rc = -1;
	}
	httpc_response_free(&r);
	return rc;
}

static int store_once(worker *w, const char *conv)
{
	Convstore__V1__Message m = CONVSTORE__V1__MESSAGE__INIT;
	Convstore__V1__Event ev = CONVSTORE__V1__EVENT__INIT;
	Convstore__V1__Event *evs[] = {&ev};
	m.role = "user";
	m.content = content;
	ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE;
	ev.message = &m;
	cs_append_result res;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_append(&res, w->store, "bench", conv, CS_ANY_VERSION, evs, 1, &err);
	if (rc)
		fprintf(stderr, "bench_http: in-process append: %s\n", err.msg);
	return rc;
}

static void *work(void *arg)
{
	worker *w = arg;
	httpc h;
	char conv[96];
	snprintf(conv, sizeof(conv), "%s-%s-%d", w->c->run, w->mode == 1 ? "r" : "w", w->id);
	httpc_init(&h, w->c->host, w->c->port);
	if (w->mode == 1) /* a small conversation to read */
		for (int i = 0; i < 10 && !w->failed; i++) {
			w->mode = 0;
			w->failed = http_once(w, &h, conv) != 0;
			w->mode = 1;
		}
	while (!w->failed && !atomic_load(w->stop)) {
		double t0 = now();
		w->failed = (w->mode == 2 ? store_once(w, conv) : http_once(w, &h, conv)) != 0;
		if (w->n < MAX_SAMPLES)
			w->lat[w->n++] = now() - t0;
	}
	httpc_close(&h);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

typedef struct result {
	double per_sec, p50, p99;
	double cpu_us;	      /* server CPU per request in microseconds; < 0: not known */
	double client_cpu_us; /* this load generator's CPU per request */
} result;

static pid_t server_pid; /* the spawned convstored; 0 with --url */

/* Run @n workers of @mode for the configured window; false when a request failed. */
static bool run(result *out, const cfg *c, int mode, unsigned n, cs_store *store)
{
	static worker w[MAX_CLIENTS];
	pthread_t t[MAX_CLIENTS];
	atomic_bool stop = false;
	double cpu0 = mode == 2 ? -1 : procs_cpu_seconds(server_pid),
	       self0 = procs_cpu_seconds(getpid());
	for (unsigned i = 0; i < n; i++) {
		w[i] = (worker){c, (int)i, mode, store, malloc(MAX_SAMPLES * sizeof(double)),
				0, &stop,  false};
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	double t0 = now();
	usleep((useconds_t)(c->seconds * 1e6));
	atomic_store(&stop, true);
	size_t total = 0;
	bool ok = true;
	for (unsigned i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		total += w[i].n;
		ok = ok && !w[i].failed;
	}
	double elapsed = now() - t0, cpu1 = cpu0 < 0 ? -1 : procs_cpu_seconds(server_pid);
	double self1 = procs_cpu_seconds(getpid());
	out->cpu_us = cpu1 < 0 || !total ? -1 : (cpu1 - cpu0) * 1e6 / (double)total;
	out->client_cpu_us = self1 < 0 || !total ? -1 : (self1 - self0) * 1e6 / (double)total;
	double *all = malloc((total ? total : 1) * sizeof(double));
	size_t k = 0;
	for (unsigned i = 0; i < n; i++) {
		memcpy(all + k, w[i].lat, w[i].n * sizeof(double));
		k += w[i].n;
		free(w[i].lat);
	}
	qsort(all, total, sizeof(double), cmp_double);
	out->per_sec = (double)total / elapsed;
	out->p50 = total ? all[total / 2] * 1e3 : 0;
	out->p99 = total ? all[(size_t)((double)total * 0.99)] * 1e3 : 0;
	free(all);
	return ok;
}

/* ---- --feed ----------------------------------------------------------------------------- */

#define MAX_SUBS      1000
#define LAT_EVENTS    200
#define LAT_PACING_US 5000

typedef struct feed_bench {
	const cfg *c;
	sse_client *subs;
	size_t n;
	atomic_bool stop;
	bool discard;	   /* only drain the sockets (the fan-out throughput row) */
	atomic_bool armed; /* base and received are set: record receipts */
	uint64_t base;	   /* the position before the latency run's first append */
	double *received;  /* [sub * LAT_EVENTS + k]: when subscriber sub got position base+1+k */
} feed_bench;

static feed_bench FB;

static void on_feed_event(sse_client *sc, uint64_t id, const char *event, const char *data)
{
	(void)event, (void)data;
	size_t sub = (size_t)(sc - FB.subs);
	if (atomic_load(&FB.armed) && id > FB.base && id <= FB.base + LAT_EVENTS)
		FB.received[sub * LAT_EVENTS + (id - FB.base - 1)] = now();
}

static void *pump(void *arg)
{
	(void)arg;
	static struct pollfd pfd[MAX_SUBS];
	static char scratch[1 << 16];
	while (!atomic_load(&FB.stop)) {
		for (size_t i = 0; i < FB.n; i++)
			pfd[i] = (struct pollfd){FB.subs[i].fd, POLLIN, 0};
		if (poll(pfd, FB.n, 10) <= 0)
			continue;
		for (size_t i = 0; i < FB.n; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (FB.discard)
				while (recv(FB.subs[i].fd, scratch, sizeof(scratch), 0) > 0)
					;
			else
				sse_pump(&FB.subs[i], 0);
		}
	}
	return NULL;
}

/* Attach @n streams: the global one, or (@conv_prefix) those of conversations @conv_prefix0,
 * @conv_prefix1, ...; wait until each has its first comment. */
static bool attach(const cfg *c, size_t n, const char *conv_prefix)
{
	FB.subs = calloc(n, sizeof(*FB.subs));
	for (size_t i = 0; i < n; i++) {
		char path[256] = "/v1/events/stream";
		if (conv_prefix)
			snprintf(path, sizeof(path), "/v1/conversations/%s%zu/events/stream",
				 conv_prefix, i);
		if (sse_open(&FB.subs[i], c->port, path, ""))
			return false;
		FB.subs[i].on_event = on_feed_event;
	}
	size_t ready = 0;
	for (double end = now() + 30; ready < n && now() < end;) {
		ready = 0;
		for (size_t i = 0; i < n; i++) {
			sse_pump(&FB.subs[i], 0);
			ready += FB.subs[i].comments > 0;
		}
		usleep(2000);
	}
	FB.n = n;
	return ready == n;
}

static void detach(void)
{
	for (size_t i = 0; i < FB.n; i++)
		sse_close(&FB.subs[i]);
	free(FB.subs);
	FB.subs = NULL;
	FB.n = 0;
}

static pthread_t pump_start(bool discard)
{
	pthread_t t;
	atomic_store(&FB.stop, false);
	FB.discard = discard;
	pthread_create(&t, NULL, pump, NULL);
	return t;
}

static void pump_stop(pthread_t t)
{
	atomic_store(&FB.stop, true);
	pthread_join(t, NULL);
}

/* Latency with @n subscribers: @q p50 and p99 from the ack, p50 and p99 from the request. */
static bool feed_latency(const cfg *c, size_t n, double q[4])
{
	httpc h;
	httpc_init(&h, c->host, c->port);
	char conv[96], path[160];
	snprintf(conv, sizeof(conv), "%s-lat-%zu", c->run, n);
	snprintf(path, sizeof(path), "/v1/conversations/%s/events", conv);
	if (!attach(c, n, NULL))
		return false;
	static double acked[LAT_EVENTS], sent[LAT_EVENTS];
	FB.received = calloc(n * LAT_EVENTS, sizeof(double));
	pthread_t t = pump_start(false);
	bool ok = true;
	for (int k = -1; ok && k < LAT_EVENTS; k++) { /* k -1: a first append gives the base */
		httpc_response r;
		double t0 = now();
		ok = httpc_request(&r, &h, "POST", path, "Content-Type: application/json\r\n", body,
				   strlen(body)) == 0 &&
		     r.status == 201;
		double at = now();
		const char *fp = ok ? strstr(r.body, "\"first_position\":") : NULL;
		uint64_t pos = fp ? strtoull(fp + 17, NULL, 10) : 0;
		httpc_response_free(&r);
		if (k < 0) {
			FB.base = pos;
			atomic_store(&FB.armed, true);
			continue;
		}
		ok = ok && pos == FB.base + 1 + (uint64_t)k; /* the only writer */
		acked[k] = at;
		sent[k] = t0;
		usleep(LAT_PACING_US);
	}
	usleep(200 * 1000);
	pump_stop(t);
	atomic_store(&FB.armed, false);
	size_t total = n * LAT_EVENTS, got = 0;
	double *lat = malloc(total * sizeof(double)), *e2e = malloc(total * sizeof(double));
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < LAT_EVENTS; k++) {
			double rcv = FB.received[i * LAT_EVENTS + k];
			if (rcv <= 0)
				continue;
			e2e[got] = rcv - sent[k];
			lat[got++] = rcv > acked[k] ? rcv - acked[k] : 0;
		}
	qsort(lat, got, sizeof(double), cmp_double);
	qsort(e2e, got, sizeof(double), cmp_double);
	q[0] = got ? lat[got / 2] * 1e3 : 0;
	q[1] = got ? lat[(size_t)((double)got * 0.99)] * 1e3 : 0;
	q[2] = got ? e2e[got / 2] * 1e3 : 0;
	q[3] = got ? e2e[(size_t)((double)got * 0.99)] * 1e3 : 0;
	free(e2e);
	if (got != total) {
		fprintf(stderr, "bench_http: %zu of %zu deliveries arrived\n", got, total);
		ok = false;
	}
	free(lat);
	free(FB.received);
	FB.received = NULL;
	detach();
	httpc_close(&h);
	return ok;
}

static int feed_main(const cfg *c)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	size_t counts[] = {1, 100, MAX_SUBS};
	printf(
	    "| subscribers (global stream) | ack -> receipt p50 | p99 | request -> receipt p50 | "
	    "p99 |\n| ---: | ---: | ---: | ---: | ---: |\n");
	for (size_t i = 0; i < 3; i++) {
		double q[4];
		if (!feed_latency(c, counts[i], q))
			return 1;
		printf("| %zu | %.2f ms | %.2f ms | %.2f ms | %.2f ms |\n", counts[i], q[0], q[1],
		       q[2], q[3]);
		fflush(stdout);
	}
	/* conversations for the idle subscribers to watch */
	httpc h;
	httpc_init(&h, c->host, c->port);
	for (size_t i = 0; i < MAX_SUBS; i++) {
		char create[128];
		httpc_response r;
		snprintf(create, sizeof(create), "{\"id\":\"%s-idle-%zu\"}", c->run, i);
		if (httpc_request(&r, &h, "POST", "/v1/conversations",
				  "Content-Type: application/json\r\n", create, strlen(create)) ||
		    r.status != 201)
			return 1;
		httpc_response_free(&r);
	}
	httpc_close(&h);
	char idle_prefix[64];
	snprintf(idle_prefix, sizeof(idle_prefix), "%s-idle-", c->run);
	unsigned writers = c->n_clients == 2 ? 4 : 16;
	printf("\n| writer: %u clients, 1 KiB appends | appends/s | ratio | server CPU / append |\n"
	       "| --- | ---: | ---: | ---: |\n",
	       writers);
	result none, idle, fan;
	if (!run(&none, c, 0, writers, NULL))
		return 1;
	printf("| no subscribers | %.0f | 1.00x | %.0f µs |\n", none.per_sec, none.cpu_us);
	if (!attach(c, MAX_SUBS, idle_prefix))
		return 1;
	pthread_t t = pump_start(false);
	bool ok = run(&idle, c, 0, writers, NULL);
	pump_stop(t);
	detach();
	if (!ok)
		return 1;
	printf("| 1,000 subscribers on other conversations | %.0f | %.2fx | %.0f µs |\n",
	       idle.per_sec, idle.per_sec / none.per_sec, idle.cpu_us);
	if (!attach(c, MAX_SUBS, NULL))
		return 1;
	t = pump_start(true);
	ok = run(&fan, c, 0, writers, NULL);
	pump_stop(t);
	detach();
	if (!ok)
		return 1;
	printf("| 1,000 subscribers on the global stream | %.0f | %.2fx | %.0f µs |\n", fan.per_sec,
	       fan.per_sec / none.per_sec, fan.cpu_us);
	return 0;
}

static void usage(void)
{
	fputs("usage: bench_http (--spawn PATH | --url http://127.0.0.1:PORT) [--seconds S]\n"
	      "                  [--clients 1,16,64] [--quick] [--feed]\n",
	      stderr);
	exit(2);
}

static void parse(cfg *c, const char **spawn_exe, int argc, char **argv)
{
	c->seconds = 2;
	unsigned defaults[] = {1, 16, 64};
	memcpy(c->clients, defaults, sizeof(defaults));
	c->n_clients = 3;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--quick")) {
			c->seconds = 0.3;
			c->clients[0] = 1, c->clients[1] = 4, c->n_clients = 2;
		} else if (!strcmp(a, "--feed")) {
			c->feed = true;
		} else if (!strcmp(a, "--spawn") && v) {
			*spawn_exe = v, i++;
		} else if (!strcmp(a, "--url") && v &&
			   sscanf(v, "http://%63[0-9.]:%u", c->host, &c->port) == 2) {
			i++;
		} else if (!strcmp(a, "--seconds") && v && (c->seconds = atof(v)) > 0) {
			i++;
		} else if (!strcmp(a, "--clients") && v) {
			c->n_clients = 0;
			for (char *p = argv[++i]; *p && c->n_clients < 8; p += strspn(p, ","))
				c->clients[c->n_clients++] = (unsigned)strtoul(p, &p, 10);
		} else {
			usage();
		}
	}
	if (!*spawn_exe && !c->port)
		usage();
	for (size_t i = 0; i < c->n_clients; i++)
		if (c->clients[i] < 1 || c->clients[i] > MAX_CLIENTS)
			usage();
}

static void row(const char *what, unsigned clients, const result *r, const result *base)
{
	char ratio[16] = "", cpu[16] = "", client[16] = "";
	if (base)
		snprintf(ratio, sizeof(ratio), "%.2fx", r->per_sec / base->per_sec);
	if (r->cpu_us >= 0)
		snprintf(cpu, sizeof(cpu), "%.0f µs", r->cpu_us);
	if (r->client_cpu_us >= 0)
		snprintf(client, sizeof(client), "%.0f µs", r->client_cpu_us);
	printf("| %-28s | %3u | %9.0f | %7.2f ms | %7.2f ms | %6s | %7s | %7s |\n", what, clients,
	       r->per_sec, r->p50, r->p99, ratio, cpu, client);
}

int main(int argc, char **argv)
{
	cfg c = {0};
	const char *spawn_exe = NULL;
	parse(&c, &spawn_exe, argc, argv);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL));
	for (int i = 0; i < CONTENT_BYTES; i++)
		content[i] = (char)('a' + rand() % 26);
	snprintf(body, sizeof(body),
		 "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"%s\"}}]}", content);
	snprintf(c.run, sizeof(c.run), "b%ld", (long)time(NULL) % 100000);
	char dir[4096], store_dir[4200];
	procs_tmpdir(dir, sizeof(dir), "bench-http");
	pid_t pid = spawn_exe ? procs_spawn(spawn_exe, dir, NULL, &c.port) : 0;
	if (spawn_exe)
		snprintf(c.host, sizeof(c.host), "127.0.0.1");
	server_pid = pid;
	cs_store *store = NULL;
	cs_error err = CS_ERROR_INIT;
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	snprintf(store_dir, sizeof(store_dir), "%s/inprocess", dir);
	o.path = store_dir;
	int rc = 0;
	if (pid < 0 || cs_store_open(&store, &o, &err)) {
		fprintf(stderr, "bench_http: cannot start: %s\n", err.msg);
		rc = 1;
	}
	if (!rc && c.feed) {
		rc = feed_main(&c);
		goto done;
	}
	printf("| workload (1 KiB events) | clients | req/s | p50 | p99 | HTTP / in-process | "
	       "server CPU / req | bench CPU / req |\n"
	       "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (size_t i = 0; !rc && i < c.n_clients; i++) {
		result in, http;
		if (!run(&in, &c, 2, c.clients[i], store) || !run(&http, &c, 0, c.clients[i], NULL))
			rc = 1;
		row("in-process append (durable)", c.clients[i], &in, NULL);
		row("HTTP append (durable)", c.clients[i], &http, &in);
	}
	result rd;
	unsigned readers = c.n_clients == 2 ? 4 : READ_CLIENTS;
	if (!rc && !run(&rd, &c, 1, readers, NULL))
		rc = 1;
	if (!rc)
		row("HTTP state view GET", readers, &rd, NULL);
done:
	cs_store_close(store);
	if (pid > 0 && !procs_stop(pid)) {
		fprintf(stderr, "bench_http: convstored did not exit cleanly\n");
		rc = 1;
	}
	procs_rmtree(dir);
	return rc;
}
