/*
 * tests/api/sse.h - a Server-Sent Events client for the feed tests: one plain socket per stream,
 * the HTTP response head, chunked transfer decoding, and the SSE frames (id, event, data) handed
 * to a callback as they complete. Non-blocking reads, so that one thread can pump a thousand
 * streams with poll(); a stream costs a few hundred bytes until it meets long lines. Header-only;
 * tools/bench_feed uses it too.
 */
#ifndef CONVSTORE_TESTS_API_SSE_H
#define CONVSTORE_TESTS_API_SSE_H

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct sse_client sse_client;
typedef void (*sse_event_fn)(sse_client *c, uint64_t id, const char *event, const char *data);

struct sse_client {
	int fd;
	int status;  /* the HTTP status, once the head is read */
	bool closed; /* the server ended the stream or closed the socket */
	int state;   /* 0 head, 1 chunk size, 2 chunk data, 3 chunk CRLF, 4 done */
	size_t chunk_left;
	char head[4096];
	size_t head_len;
	char *line; /* the current SSE line */
	size_t line_len, line_cap;
	uint64_t id;
	char event[64];
	char *data;
	size_t data_len;
	unsigned comments; /* ":" lines seen */
	unsigned events;   /* frames with an event */
	uint64_t last_id;  /* the id of the last event received (for Last-Event-ID) */
	sse_event_fn on_event;
	void *ctx;
	char *body; /* error bodies (a non-200 answer), NUL-terminated */
	size_t body_len;
};

/* Connect and send GET @path (with @extra header lines, "" for none); 0 or -1. @rcvbuf: the
 * socket's receive buffer (0: the system's), set before connecting so the window is small. */
static inline int sse_open_buf(sse_client *c, unsigned port, const char *path, const char *extra,
			       int rcvbuf)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (rcvbuf)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	char req[2048];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", path, extra);
	if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		return -1;
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

static inline int sse_open(sse_client *c, unsigned port, const char *path, const char *extra)
{
	return sse_open_buf(c, port, path, extra, 0);
}

static inline void sse_close(sse_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->data);
	free(c->body);
	free(c->line);
	c->data = c->body = c->line = NULL;
}

/* One complete line of the event stream. */
static inline void sse_line(sse_client *c)
{
	char *l = c->line;
	l[c->line_len] = '\0';
	c->line_len = 0;
	if (!*l) { /* a blank line ends a frame */
		if (c->event[0] && c->on_event)
			c->on_event(c, c->id, c->event, c->data ? c->data : "");
		if (c->event[0])
			c->last_id = c->id, c->events++;
		c->event[0] = '\0';
		c->data_len = 0;
		if (c->data)
			c->data[0] = '\0';
		return;
	}
	if (*l == ':') {
		c->comments++;
	} else if (!strncmp(l, "id: ", 4)) {
		c->id = strtoull(l + 4, NULL, 10);
	} else if (!strncmp(l, "event: ", 7)) {
		snprintf(c->event, sizeof(c->event), "%s", l + 7);
	} else if (!strncmp(l, "data: ", 6)) {
		size_t n = strlen(l + 6);
		c->data = realloc(c->data, c->data_len + n + 1);
		memcpy(c->data + c->data_len, l + 6, n + 1);
		c->data_len += n;
	}
}

/* Body bytes (after dechunking). */
static inline void sse_body(sse_client *c, const char *p, size_t n)
{
	if (c->status != 200) {
		c->body = realloc(c->body, c->body_len + n + 1);
		memcpy(c->body + c->body_len, p, n);
		c->body_len += n;
		c->body[c->body_len] = '\0';
		return;
	}
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (c->line_len + take + 1 > c->line_cap) {
			while (c->line_len + take + 1 > c->line_cap)
				c->line_cap = c->line_cap ? 2 * c->line_cap : 256;
			c->line = realloc(c->line, c->line_cap);
		}
		memcpy(c->line + c->line_len, p, take);
		c->line_len += take;
		p += take, n -= take;
		if (nl) {
			sse_line(c);
			p++, n--;
		}
	}
}

/* Feed @n raw bytes through the head parser and the chunk decoder. */
static inline void sse_feed(sse_client *c, const char *p, size_t n)
{
	while (n) {
		if (c->state == 0) { /* the response head, up to the blank line */
			c->head[c->head_len++] = *p++, n--;
			c->head[c->head_len] = '\0';
			if (c->head_len >= 4 && !strcmp(c->head + c->head_len - 4, "\r\n\r\n")) {
				c->status = atoi(c->head + 9);
				c->state = strcasestr(c->head, "chunked") ? 1 : 2;
				c->chunk_left = strcasestr(c->head, "chunked") ? 0 : SIZE_MAX;
			} else if (c->head_len + 2 >= sizeof(c->head)) {
				c->closed = true;
				return;
			}
		} else if (c->state == 1) { /* "<hex>\r\n" */
			if (*p == '\n') {
				c->state = c->chunk_left ? 2 : 4;
				if (!c->chunk_left)
					c->closed = true;
			} else if (isxdigit((unsigned char)*p)) {
				c->chunk_left =
				    c->chunk_left * 16 +
				    (size_t)(isdigit((unsigned char)*p)
						 ? *p - '0'
						 : (tolower((unsigned char)*p) - 'a' + 10));
			}
			p++, n--;
		} else if (c->state == 2) {
			size_t take = n < c->chunk_left ? n : c->chunk_left;
			sse_body(c, p, take);
			p += take, n -= take;
			if (c->chunk_left != SIZE_MAX && !(c->chunk_left -= take))
				c->state = 3;
		} else if (c->state == 3) { /* the CRLF after a chunk */
			if (*p == '\n')
				c->state = 1, c->chunk_left = 0;
			p++, n--;
		} else {
			return;
		}
	}
}

/* Read what is there (waiting up to @timeout_ms for something); -1 once closed. */
static inline int sse_pump(sse_client *c, int timeout_ms)
{
	if (c->closed)
		return -1;
	struct pollfd pfd = {c->fd, POLLIN, 0};
	if (timeout_ms && poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	char buf[65536];
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			sse_feed(c, buf, (size_t)n);
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			c->closed = true;
		break;
	}
	return c->closed ? -1 : 0;
}

#endif
