/*
 * httpc.c - see httpc.h. Deliberately small: no TLS, no redirects, no proxies, numeric IPv4
 * only. Header blocks are capped at 64 KiB and bodies at 1 GiB, so a broken server cannot make
 * a test or the benchmark allocate without bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "httpc.h"

#define HEADERS_MAX (64 * 1024)
#define BODY_MAX    (1024L * 1024 * 1024)

void httpc_init(httpc *c, const char *host, unsigned port)
{
	c->fd = -1;
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = port;
	c->timeout_ms = 0;
	c->in.data = NULL;
	c->in.len = c->in.cap = 0;
}

void httpc_close(httpc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->in.data);
	c->in.data = NULL;
	c->in.len = c->in.cap = 0;
}

static int timeout(const httpc *c)
{
	return c->timeout_ms > 0 ? c->timeout_ms : 30000;
}

static int connect_fd(httpc *c)
{
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)c->port);
	if (inet_pton(AF_INET, c->host, &a.sin_addr) != 1)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	struct timeval tv = {timeout(c) / 1000, (timeout(c) % 1000) * 1000};
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Blocking sends and receives time out by themselves: no poll() before each. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	return 0;
}

/* Write @n buffers as one stream (one sendmsg when the socket takes it all): a request's head
 * and body leave in one segment, as curl and browsers send small requests. */
static int send_all(httpc *c, struct iovec *iov, int n)
{
	if (c->fd < 0 && connect_fd(c))
		return -1;
	while (n > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t sent = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent <= 0)
			return -1; /* also the SO_SNDTIMEO timeout */
		while (n > 0 && (size_t)sent >= iov->iov_len) {
			sent -= (ssize_t)iov->iov_len;
			iov++, n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + sent;
			iov->iov_len -= (size_t)sent;
		}
	}
	return 0;
}

int httpc_send_raw(httpc *c, const void *data, size_t len)
{
	struct iovec iov = {(void *)data, len};
	return send_all(c, &iov, 1);
}

long httpc_read_some(httpc *c, char *buf, size_t cap, int timeout_ms)
{
	struct pollfd pfd = {c->fd, POLLIN, 0};
	int ready = poll(&pfd, 1, timeout_ms);
	if (ready == 0) {
		buf[0] = '\0';
		return 0;
	}
	ssize_t n = ready < 0 ? -1 : recv(c->fd, buf, cap - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return (long)n;
}

/* Read more into @b; 0 on data, -1 on close, error or timeout. */
static int fill(httpc *c)
{
	httpc_buf *b = &c->in;
	if (b->cap - b->len < 4096) {
		size_t cap = b->cap ? 2 * b->cap : 16384;
		char *grown = realloc(b->data, cap);
		if (!grown)
			return -1;
		b->data = grown;
		b->cap = cap;
	}
	ssize_t n;
	do /* SO_RCVTIMEO bounds the wait */
		n = recv(c->fd, b->data + b->len, b->cap - b->len - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	b->len += (size_t)n;
	b->data[b->len] = '\0';
	return 0;
}

const char *httpc_header(const httpc_response *r, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name);
	for (const char *p = r->headers; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
		if (strncasecmp(p, name, n) != 0 || p[n] != ':')
			continue;
		p += n + 1;
		p += strspn(p, " \t");
		size_t len = strcspn(p, "\r\n");
		if (len >= size)
			len = size - 1;
		memcpy(buf, p, len);
		buf[len] = '\0';
		return buf;
	}
	return NULL;
}

/* Decode a chunked body in place in b->data[start..]; -1 when incomplete or malformed. */
static long dechunk(char *data, size_t len, size_t *out_len)
{
	size_t in = 0, out = 0;
	for (;;) {
		char *end = memmem(data + in, len - in, "\r\n", 2);
		if (!end)
			return -1;
		unsigned long n = strtoul(data + in, NULL, 16);
		size_t body = (size_t)(end - data) + 2;
		if (n == 0) {
			char *fin = memmem(data + body, len - body, "\r\n", 2);
			if (!fin)
				return -1;
			*out_len = out;
			return (long)((size_t)(fin - data) + 2);
		}
		if (n > BODY_MAX || body + n + 2 > len)
			return -1;
		memmove(data + out, data + body, n);
		out += n;
		in = body + n + 2;
	}
}

/* Parse the response in b (already holding the header block up to @hdr_end). */
static int parse_body(httpc_response *out, httpc *c, size_t hdr_end, bool head)
{
	httpc_buf *b = &c->in;
	char v[64];
	size_t body_len = 0;
	bool chunked =
	    httpc_header(out, "Transfer-Encoding", v, sizeof(v)) && strcasecmp(v, "chunked") == 0;
	bool has_len = httpc_header(out, "Content-Length", v, sizeof(v)) != NULL;
	long want = has_len ? atol(v) : -1;
	bool no_body = head || out->status == 204 || out->status == 304 || out->status < 200;
	if (no_body)
		want = 0;
	if (want > BODY_MAX)
		return -1;
	for (;;) {
		size_t have = b->len - hdr_end;
		if (chunked && !no_body) {
			char *copy = malloc(have + 1);
			if (!copy)
				return -1;
			memcpy(copy, b->data + hdr_end, have);
			long used = dechunk(copy, have, &body_len);
			if (used >= 0) {
				out->body = copy;
				out->body[body_len] = '\0';
				out->body_len = body_len;
				memmove(b->data, b->data + hdr_end + used, have - (size_t)used);
				b->len = have - (size_t)used;
				b->data[b->len] = '\0';
				return 0;
			}
			free(copy);
		} else if (want >= 0 && have >= (size_t)want) {
			out->body = malloc((size_t)want + 1);
			if (!out->body)
				return -1;
			memcpy(out->body, b->data + hdr_end, (size_t)want);
			out->body[want] = '\0';
			out->body_len = (size_t)want;
			memmove(b->data, b->data + hdr_end + want, have - (size_t)want);
			b->len = have - (size_t)want;
			b->data[b->len] = '\0';
			return 0;
		}
		if (fill(c)) {
			if (want >= 0 || chunked)
				return -1;
			want = (long)(b->len - hdr_end); /* read until close */
			close(c->fd);
			c->fd = -1;
		}
	}
}

static int read_response(httpc_response *out, httpc *c, bool head)
{
	httpc_buf *b = &c->in;
	char *end;
	memset(out, 0, sizeof(*out));
	while (!b->data || !(end = strstr(b->data, "\r\n\r\n"))) {
		if (b->len > HEADERS_MAX || fill(c))
			return -1;
	}
	size_t hdr_end = (size_t)(end - b->data) + 4;
	if (sscanf(b->data, "HTTP/1.%*d %d", &out->status) != 1)
		return -1;
	out->headers = strndup(b->data, hdr_end);
	if (!out->headers)
		return -1;
	bool close_after = false;
	char v[32];
	if (httpc_header(out, "Connection", v, sizeof(v)) && strcasecmp(v, "close") == 0)
		close_after = true;
	int rc = parse_body(out, c, hdr_end, head);
	if (rc || close_after)
		httpc_close(c);
	if (rc)
		httpc_response_free(out);
	return rc;
}

int httpc_read_response(httpc_response *out, httpc *c)
{
	return read_response(out, c, false);
}

int httpc_request(httpc_response *out, httpc *c, const char *method, const char *path,
		  const char *headers, const void *body, size_t body_len)
{
	char head[8192];
	int n = snprintf(head, sizeof(head),
			 "%s %s HTTP/1.1\r\nHost: %s:%u\r\nContent-Length: %zu\r\n%s\r\n", method,
			 path, c->host, c->port, body_len, headers ? headers : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused = c->fd >= 0;
		c->in.len = 0;
		if (c->in.data)
			c->in.data[0] = '\0';
		struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, body_len}};
		if (send_all(c, iov, body_len ? 2 : 1) == 0 &&
		    read_response(out, c, strcmp(method, "HEAD") == 0) == 0)
			return 0;
		httpc_close(c);
		if (!reused)
			break;
	}
	memset(out, 0, sizeof(*out));
	return -1;
}

void httpc_response_free(httpc_response *r)
{
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}
