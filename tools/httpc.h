/*
 * httpc.h - a small blocking HTTP/1.1 client over a plain TCP socket, for the HTTP benchmark and
 * the integration tests (nothing here talks to anything but the address it is given).
 *
 * One httpc is one connection, kept alive between requests and reopened when the server
 * closed it. Responses are read whole: Content-Length, chunked, or until the server closes.
 * Not thread-safe per connection: give each thread its own.
 */
#ifndef CONVSTORE_TOOLS_HTTPC_H
#define CONVSTORE_TOOLS_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes read from a connection and not yet used. */
typedef struct httpc_buf {
	char *data;
	size_t len, cap;
} httpc_buf;

typedef struct httpc {
	int fd; /* -1: not connected */
	char host[64];
	unsigned port;
	int timeout_ms; /* for each read and write; 0: 30 s */
	httpc_buf in;
} httpc;

typedef struct httpc_response {
	int status;
	char *headers; /* the raw header block, "Name: value\r\n" lines */
	char *body;    /* NUL-terminated (the NUL is not counted) */
	size_t body_len;
} httpc_response;

/** Set up @c for @host (numeric IPv4) and @port; connects lazily. */
void httpc_init(httpc *c, const char *host, unsigned port);

/** Close the connection (a later request reconnects) and free its buffer. */
void httpc_close(httpc *c);

/**
 * Send one request and read its response. @headers: "" or extra "Name: value\r\n" lines.
 * A request on a kept-alive connection the server had closed is retried once on a new one.
 * @return 0; -1 on a connection or protocol failure (out is then empty).
 */
int httpc_request(httpc_response *out, httpc *c, const char *method, const char *path,
		  const char *headers, const void *body, size_t body_len);

/** Write @len raw bytes (a hand-made request) on the connection, connecting if needed. */
int httpc_send_raw(httpc *c, const void *data, size_t len);

/** Read one response after httpc_send_raw(). */
int httpc_read_response(httpc_response *out, httpc *c);

/** Read what arrives within @timeout_ms (at most @cap - 1 bytes, NUL-terminated); -1: closed. */
long httpc_read_some(httpc *c, char *buf, size_t cap, int timeout_ms);

/** The value of header @name (case-insensitive) copied into @buf, or NULL. */
const char *httpc_header(const httpc_response *r, const char *name, char *buf, size_t size);

void httpc_response_free(httpc_response *r);

#endif
