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
 */
#include <errno.h>
#include <ftw.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "convstore/store.h"
#include "httpc.h"

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

/* CPU seconds (user + system) process @pid has used; < 0 when unknown. */
static double cpu_seconds(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long utime, stime;
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	/* after ")": state and fields 4..13, then utime (14) and stime (15) */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
			 &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Run @n workers of @mode for the configured window; false when a request failed. */
static bool run(result *out, const cfg *c, int mode, unsigned n, cs_store *store)
{
	static worker w[MAX_CLIENTS];
	pthread_t t[MAX_CLIENTS];
	atomic_bool stop = false;
	double cpu0 = mode == 2 ? -1 : cpu_seconds(server_pid), self0 = cpu_seconds(getpid());
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
	double elapsed = now() - t0, cpu1 = cpu0 < 0 ? -1 : cpu_seconds(server_pid);
	double self1 = cpu_seconds(getpid());
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

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *ftw)
{
	(void)st, (void)f, (void)ftw;
	return remove(p);
}

/* A temp folder on a real disk: under /tmp unless it is tmpfs. */
static void make_tmp(char *out, size_t size)
{
	struct statfs fs;
	bool tmpfs = statfs("/tmp", &fs) == 0 && fs.f_type == TMPFS_MAGIC;
	snprintf(out, size, "%s/bench-http-XXXXXX", tmpfs ? "." : "/tmp");
	if (!mkdtemp(out)) {
		perror("mkdtemp");
		exit(1);
	}
}

static pid_t spawn(cfg *c, const char *exe, const char *dir)
{
	char data[4200];
	int out[2];
	snprintf(data, sizeof(data), "%s/server", dir);
	if (pipe(out))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		freopen("/dev/null", "w", stderr);
		execl(exe, exe, "--port", "0", "--data", data, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	char line[128] = "";
	size_t n = 0;
	while (n + 1 < sizeof(line) && read(out[0], line + n, 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	close(out[0]);
	const char *colon = strrchr(line, ':');
	c->port = colon ? (unsigned)atoi(colon + 1) : 0;
	snprintf(c->host, sizeof(c->host), "127.0.0.1");
	return c->port ? pid : -1;
}

static void usage(void)
{
	fputs("usage: bench_http (--spawn PATH | --url http://127.0.0.1:PORT) [--seconds S]\n"
	      "                  [--clients 1,16,64] [--quick]\n",
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
	make_tmp(dir, sizeof(dir));
	pid_t pid = spawn_exe ? spawn(&c, spawn_exe, dir) : 0;
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
	cs_store_close(store);
	if (pid > 0) {
		int status = 0;
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "bench_http: convstored did not exit cleanly\n");
			rc = 1;
		}
	}
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
