/*
 * tests/fuzz/fuzz_http.c - libFuzzer target for a whole HTTP request handled in-process: the
 * input is sent, byte for byte, on a fresh loopback connection to the very server convstored
 * runs (api/ as a library: libmicrohttpd's parser, routing, auth, query and body decoding, the
 * handlers, the store), started once per process on a free port with a temp store.
 *
 * Per input: connect, send it, close the sending side, read what comes back (a whole response,
 * or until the server closes or 150 ms pass: long polls and streams are simply left). Properties
 * beyond "no crash" (ASan and UBSan watch the server's threads too):
 *   - whatever comes back starts as an HTTP/1.x response;
 *   - never a 500: a request, however malformed, is a client error, not an internal one;
 *   - every 64 inputs the server still answers GET /healthz with 200 within 2 s (alive, not
 *     wedged by what came before).
 * Seeds (seeds.c, kind http): requests after API.md's examples on every route, and tau-bench
 * conversations as append requests.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "server.h"

#include "../store/fixture.h"

static cs_server srv;
static char store_dir[PATH_MAX];
static unsigned port;
static unsigned long inputs;

static void server_stop(void)
{
	cs_server_drain(&srv, 2000);
	cs_store_close(srv.store);
	cs_limits_free(&srv);
	fx_rmrf(store_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	snprintf(store_dir, sizeof(store_dir), "/tmp/convstore-fuzz-http-XXXXXX");
	FUZZ_REQUIRE(mkdtemp(store_dir) != NULL);
	cs_config_defaults(&srv.cfg);
	srv.cfg.data = store_dir;
	srv.cfg.port = 0;
	srv.cfg.no_sync = true;
	srv.cfg.threads = 4;
	srv.cfg.heartbeat_ms = 100;
	srv.cfg.idle_timeout = 2;
	srv.cfg.max_body = 1u << 20;
	srv.cfg.log_level = CS_LOG_ERROR;
	srv.cfg.retention_interval = 0;
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = store_dir;
	o.no_sync = true;
	cs_error err = CS_ERROR_INIT;
	FUZZ_REQUIRE(cs_store_open(&srv.store, &o, &err) == CS_OK);
	FUZZ_REQUIRE(cs_limits_init(&srv, &err) == CS_OK);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FUZZ_REQUIRE(cs_server_start(&srv, (struct sockaddr *)&a, &err) == CS_OK);
	port = cs_server_port(&srv);
	FUZZ_REQUIRE(port != 0);
	atexit(server_stop);
	return 0;
}

static int connect_server(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FUZZ_REQUIRE(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	return fd;
}

/* Whether @buf holds one whole response (its Content-Length worth of body, or a chunked body's
 * last chunk): no need to wait for more. */
static bool answer_complete(const char *buf, size_t n)
{
	const char *end = strstr(buf, "\r\n\r\n");
	if (!end)
		return false;
	size_t head = (size_t)(end + 4 - buf);
	const char *cl = strcasestr(buf, "\r\nContent-Length: ");
	if (cl && cl < end)
		return n - head >= strtoull(cl + 18, NULL, 10);
	return n >= 5 && !memcmp(buf + n - 5, "0\r\n\r\n", 5);
}

/* Read into @buf (NUL-terminated) until a whole response is there, the server closes, or @ms
 * pass; the bytes read. */
static size_t read_answer(int fd, char *buf, size_t cap, int ms)
{
	size_t n = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left =
		    ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd p = {fd, POLLIN, 0};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		char scratch[4096];
		ssize_t got = recv(fd, n + 1 < cap ? buf + n : scratch,
				   n + 1 < cap ? cap - 1 - n : sizeof(scratch), 0);
		if (got <= 0)
			break;
		if (n + 1 < cap)
			n += (size_t)got;
		buf[n] = '\0';
		if (answer_complete(buf, n))
			break;
	}
	buf[n] = '\0';
	return n;
}

static void check_alive(void)
{
	int fd = connect_server();
	const char *req = "GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
	FUZZ_REQUIRE(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
	char buf[512];
	read_answer(fd, buf, sizeof(buf), 2000);
	close(fd);
	FUZZ_REQUIRE(strncmp(buf, "HTTP/1.1 200", 12) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = connect_server();
	size_t sent = 0;
	while (sent < size) {
		ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* the server may close early on a bad request */
		sent += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	static char buf[1 << 16];
	size_t n = read_answer(fd, buf, sizeof(buf), 150);
	close(fd);
	if (n >= 12) {
		FUZZ_REQUIRE(strncmp(buf, "HTTP/1.", 7) == 0);
		FUZZ_REQUIRE(strncmp(buf + 9, "500", 3) != 0);
	}
	if (++inputs % 64 == 0)
		check_alive();
	return 0;
}
