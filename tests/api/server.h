/*
 * tests/api/server.h - start and stop a real convstored for an integration test, and the HTTP
 * and JSON helpers every tests/api test uses.
 *
 * srv_start() runs $CONVSTORED (set by tests/api/meson.build) with --port 0, a fresh data folder
 * under /tmp and --no-sync, reads "listening on 127.0.0.1:PORT" from its stdout and connects a
 * client; the server's log goes to <dir>/log. srv_stop() sends SIGTERM to that pid only and
 * returns the exit status (0 when it drained and closed cleanly); srv_kill() sends SIGKILL.
 * srv_launch() can start a durable server (no --no-sync) for the crash tests. Header-only;
 * include it once per test executable, after check.h (srv_keygen() checks what it does).
 */
#ifndef CONVSTORE_TESTS_API_SERVER_H
#define CONVSTORE_TESTS_API_SERVER_H

#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpc.h"

typedef struct srv {
	pid_t pid;
	unsigned port;
	char dir[PATH_MAX];
	httpc c; /* a client connection for the test's own requests */
} srv;

static inline int srv_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path) == 0 ? 0 : -1;
}

/* Read the port from the child's stdout; 0 when it did not say. */
static inline unsigned srv_read_port(int fd)
{
	char line[256];
	size_t n = 0;
	while (n + 1 < sizeof(line) && read(fd, line + n, 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	const char *colon = strrchr(line, ':');
	if (strncmp(line, "listening on ", 13) != 0 || !colon)
		return 0;
	return (unsigned)atoi(colon + 1);
}

/*
 * Start convstored with extra flags (NULL-terminated, may be NULL). @dir: "" for a new temp
 * folder (kept in s->dir), or an existing one to reuse (a restart). @durable: the server's
 * default fsync on every commit (crash tests); otherwise --no-sync. Exits 1 when it cannot.
 */
static inline void srv_launch(srv *s, const char *dir, const char *const *extra, bool durable)
{
	const char *exe = getenv("CONVSTORED");
	if (!exe) {
		fprintf(stderr, "CONVSTORED is not set\n");
		exit(1);
	}
	if (dir && *dir) {
		snprintf(s->dir, sizeof(s->dir), "%s", dir);
	} else {
		snprintf(s->dir, sizeof(s->dir), "/tmp/convstore-api-XXXXXX");
		if (!mkdtemp(s->dir)) {
			perror("mkdtemp");
			exit(1);
		}
	}
	char data[PATH_MAX + 8], log[PATH_MAX + 8];
	snprintf(data, sizeof(data), "%s/data", s->dir);
	snprintf(log, sizeof(log), "%s/log", s->dir);
	const char *argv[32] = {exe, "--port", "0", "--data", data, "--no-sync"};
	size_t argc = durable ? 5 : 6;
	for (size_t i = 0; extra && extra[i] && argc < 31; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	int out[2];
	if (pipe(out)) {
		perror("pipe");
		exit(1);
	}
	s->pid = fork();
	if (s->pid == 0) {
		int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(out[1], 1);
		if (logfd >= 0)
			dup2(logfd, 2);
		close(out[0]);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	s->port = srv_read_port(out[0]);
	close(out[0]);
	if (!s->port) {
		fprintf(stderr, "convstored did not start (see %s)\n", log);
		exit(1);
	}
	httpc_init(&s->c, "127.0.0.1", s->port);
}

static inline void srv_start_in(srv *s, const char *dir, const char *const *extra)
{
	srv_launch(s, dir, extra, false);
}

static inline void srv_start(srv *s, const char *const *extra)
{
	srv_start_in(s, NULL, extra);
}

/* SIGTERM, wait, return the exit status (-1: killed by a signal). Keeps the folder. */
static inline int srv_stop_keep(srv *s)
{
	int status = 0;
	httpc_close(&s->c);
	kill(s->pid, SIGTERM);
	if (waitpid(s->pid, &status, 0) != s->pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* SIGKILL, as a crash would: nothing is drained or closed. Keeps the folder. */
static inline void srv_kill(srv *s)
{
	httpc_close(&s->c);
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
}

/* Stop and remove the folder. */
static inline int srv_stop(srv *s)
{
	int rc = srv_stop_keep(s);
	if (strncmp(s->dir, "/tmp/convstore-api-", 19) == 0)
		nftw(s->dir, srv_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

/* One request on the test's connection. @ctype_and_headers: "" or header lines. */
static inline httpc_response srv_req(srv *s, const char *method, const char *path,
				     const char *headers, const char *body)
{
	httpc_response r;
	if (httpc_request(&r, &s->c, method, path, headers, body, body ? strlen(body) : 0))
		r.status = -1;
	return r;
}

#define JSON_HDR "Content-Type: application/json\r\n"

/* A JSON request: returns the status, @out (optional) the parsed body (json_decref it). */
static inline int srv_json(srv *s, json_t **out, const char *method, const char *path,
			   const char *body)
{
	httpc_response r = srv_req(s, method, path, body ? JSON_HDR : "", body);
	int status = r.status;
	if (out)
		*out = r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
	httpc_response_free(&r);
	return status;
}

/* A request with an optional bearer token @tok and JSON @body; the status, @out (optional) the
 * parsed body (json_decref it). */
static inline int srv_call(srv *s, const char *tok, const char *method, const char *path,
			   const char *body, json_t **out)
{
	char headers[256];
	snprintf(headers, sizeof(headers), "%s%s%s%s", body ? JSON_HDR : "",
		 tok ? "Authorization: Bearer " : "", tok ? tok : "", tok ? "\r\n" : "");
	httpc_response r = srv_req(s, method, path, headers, body);
	if (out)
		*out = r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
	int status = r.status;
	httpc_response_free(&r);
	return status;
}

/* Run convstored --keygen; the token into @tok (80 bytes), the key-file line appended to @keys. */
static inline void srv_keygen(char *tok, FILE *keys, const char *tenant, const char *role)
{
	char cmd[512], line[256];
	snprintf(cmd, sizeof(cmd), "%s --keygen '%s' %s", getenv("CONVSTORED"), tenant, role);
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL);
	if (!p)
		return;
	CHECK(fgets(line, sizeof(line), p) && sscanf(line, "token: %79s", tok) == 1);
	CHECK(fgets(line, sizeof(line), p) != NULL);
	fputs(line, keys);
	CHECK_EQ_INT(pclose(p), 0);
}

/* printf into a static buffer (one at a time): paths and bodies of tests. */
static inline const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static inline const char *fmt(const char *f, ...)
{
	static char buf[65536];
	va_list ap;
	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	return buf;
}

/* The error code of an error body ("" when it is not one). */
static inline const char *err_code(json_t *body)
{
	const char *c = json_string_value(json_object_get(json_object_get(body, "error"), "code"));
	return c ? c : "";
}

/* The string member @key of @o, "" when it is missing or not a string. */
static inline const char *jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

static inline long long jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

#endif
