/*
 * ctl_tail.c - tail: follow the global feed, one event a line.
 *
 * With --url it reads the server's Server-Sent Events stream (GET /v1/events/stream, API.md):
 * frames of `id: <position>`, `event: <type>`, `data: <event JSON>` ended by a blank line, and
 * `:` comment lines as heartbeats. The body comes chunked (the server does not know its length),
 * so the bytes go through a small incremental de-chunker before the SSE parser. When the
 * connection drops (a restart, a proxy timeout, 60 s without even a heartbeat) tail reconnects
 * with Last-Event-ID set to the last position it saw, waiting a little longer each time (up to
 * 2 s): the server resumes after it, and positions at or below it are dropped should they come
 * again, so no event is lost or printed twice. Errors the server answers (401, 403, 400) end
 * tail with exit 1: retrying would not change them.
 *
 * With --data it polls the store's feed (cs_store_read_feed) every 200 ms.
 *
 * --types a,b prints only events of those types; --count N stops after N printed (for
 * scripts and tests); --after-position P starts after P (default: the end, live only).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "convstore/pbjson.h"
#include "ctl.h"
#include "httpc.h"

static const char tail_usage[] =
    "usage: convctl tail [--url URL [--token T] | --data DIR] [--after-position P]\n"
    "                    [--types a,b] [--count N] [--json]\n"
    "  follow the global feed: one event a line (--json: the event's JSON, as the API gives\n"
    "  it). Starts after position P, or at the end of the feed (live only). Over --url it\n"
    "  reconnects after a dropped connection without losing or repeating an event. Stops\n"
    "  after N events with --count, else at Ctrl-C\n";

typedef struct tail {
	ctl *c;
	const char *types; /* "a,b" or NULL */
	uint64_t count;	   /* stop after this many printed; 0: never */
	uint64_t printed;
	uint64_t last; /* the last position seen */
	bool started;  /* a position is known (given, or seen) */
	/* the SSE frame being read */
	char id[32], event[64];
	char *data;
	size_t data_len, data_cap;
} tail;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static bool type_wanted(const tail *t, const char *type)
{
	if (!t->types)
		return true;
	size_t n = strlen(type);
	for (const char *p = t->types; *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && !strncmp(p, type, n))
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

/* Print one event (as JSON text from the server, or decoded); true when --count is reached. */
static bool emit(tail *t, uint64_t position, const char *type, const char *json, const void *ev)
{
	if (t->started && position <= t->last)
		return false; /* seen before a reconnect */
	t->last = position;
	t->started = true;
	if (!type_wanted(t, type))
		return false;
	if (t->c->json && json) {
		puts(json);
	} else if (t->c->json) {
		ctl_print_json(t->c, ev);
	} else if (ev) {
		ctl_print_event(stdout, ev);
	} else {
		Convstore__V1__Event *e = NULL;
		cs_error err = CS_ERROR_INIT;
		if (cs_json_decode_text((ProtobufCMessage **)&e, &convstore__v1__event__descriptor,
					json, strlen(json), &err) == CS_OK) {
			ctl_print_event(stdout, e);
			protobuf_c_message_free_unpacked(&e->base, NULL);
		} else {
			printf("@%" PRIu64 " %s %s\n", position, type, json);
		}
	}
	fflush(stdout);
	return t->count && ++t->printed >= t->count;
}

/* ---- SSE --------------------------------------------------------------------------------- */

/* One line of the SSE body (without its newline); true when --count is reached. */
static bool sse_line(tail *t, char *line)
{
	size_t len = strlen(line);
	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	if (len == 0) { /* the end of a frame */
		bool done = false;
		if (t->data_len && *t->id)
			done = emit(t, strtoull(t->id, NULL, 10), t->event, t->data, NULL);
		t->id[0] = t->event[0] = '\0';
		t->data_len = 0;
		return done;
	}
	if (line[0] == ':')
		return false; /* a heartbeat */
	char *value = strchr(line, ':');
	if (!value)
		return false;
	*value++ = '\0';
	if (*value == ' ')
		value++;
	if (!strcmp(line, "id"))
		snprintf(t->id, sizeof(t->id), "%s", value);
	else if (!strcmp(line, "event"))
		snprintf(t->event, sizeof(t->event), "%s", value);
	else if (!strcmp(line, "data")) {
		size_t n = strlen(value), need = t->data_len + n + 2;
		if (need > t->data_cap) {
			char *grown = realloc(t->data, need * 2);
			if (!grown)
				return false;
			t->data = grown;
			t->data_cap = need * 2;
		}
		if (t->data_len)
			t->data[t->data_len++] = '\n';
		memcpy(t->data + t->data_len, value, n + 1);
		t->data_len += n;
	}
	return false;
}

/* A growing byte buffer. */
typedef struct buf {
	char *p;
	size_t len, cap;
} buf;

static bool buf_add(buf *b, const char *data, size_t n)
{
	if (n == 0)
		return true;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *grown = realloc(b->p, cap);
		if (!grown)
			return false;
		b->p = grown;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

static void buf_drop(buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
	b->p[b->len] = '\0';
}

/* The de-chunker's state: bytes left in the current chunk, or whether a size line is due. */
typedef struct chunks {
	bool on;
	size_t left;
	bool crlf; /* the CRLF after a chunk's data is due */
	bool end;
} chunks;

/* Move what @raw holds of the body into @body; false on a malformed chunk. */
static bool dechunk(chunks *ch, buf *raw, buf *body)
{
	if (!ch->on) {
		bool ok = buf_add(body, raw->p, raw->len);
		raw->len = 0;
		return ok;
	}
	while (raw->len && !ch->end) {
		if (ch->crlf) {
			if (raw->len < 2)
				return true;
			buf_drop(raw, 2);
			ch->crlf = false;
		} else if (ch->left == 0) {
			char *eol = strstr(raw->p, "\r\n");
			if (!eol)
				return raw->len < 32;
			char *end;
			ch->left = strtoul(raw->p, &end, 16);
			if (end == raw->p)
				return false;
			buf_drop(raw, (size_t)(eol + 2 - raw->p));
			ch->end = ch->left == 0;
		} else {
			size_t n = raw->len < ch->left ? raw->len : ch->left;
			if (!buf_add(body, raw->p, n))
				return false;
			buf_drop(raw, n);
			ch->left -= n;
			ch->crlf = ch->left == 0;
		}
	}
	return true;
}

/* Parse the complete lines of @body; true when --count is reached. */
static bool sse_lines(tail *t, buf *body)
{
	char *nl;
	while (body->len && (nl = memchr(body->p, '\n', body->len))) {
		*nl = '\0';
		bool done = sse_line(t, body->p);
		buf_drop(body, (size_t)(nl + 1 - body->p));
		if (done)
			return true;
	}
	return false;
}

/* Send the request and read the response head into @raw; the status, or -1 when the
 * connection failed. @raw keeps what came after the head. */
static int sse_open(tail *t, httpc *h, buf *raw, chunks *ch)
{
	char auth[512], req[1024], resume[64] = "";
	if (t->started)
		snprintf(resume, sizeof(resume), "Last-Event-ID: %" PRIu64 "\r\n", t->last);
	int len = snprintf(req, sizeof(req),
			   "GET /v1/events/stream HTTP/1.1\r\nHost: %s:%u\r\n"
			   "Accept: text/event-stream\r\n%s%s\r\n",
			   h->host, h->port, resume, ctl_auth_header(t->c, auth, sizeof(auth)));
	if (httpc_send_raw(h, req, (size_t)len) != 0)
		return -1;
	char in[8192];
	char *end;
	while (!(end = strstr(raw->p ? raw->p : "", "\r\n\r\n"))) {
		long n = httpc_read_some(h, in, sizeof(in), 10000);
		if (n <= 0 || !buf_add(raw, in, (size_t)n) || raw->len > 65536)
			return -1;
	}
	*end = '\0';
	int status = 0;
	sscanf(raw->p, "HTTP/1.%*d %d", &status);
	*ch = (chunks){0};
	for (char *p = raw->p; (p = strchr(p, '\n')); p++)
		if (!strncasecmp(p + 1, "transfer-encoding:", 18) && strstr(p, "chunked"))
			ch->on = true;
	buf_drop(raw, (size_t)(end + 4 - raw->p));
	return status;
}

/* One connection: 0 when it dropped (reconnect), 1 when done, -1 on an answered error. */
static int sse_follow(tail *t, const char *host, unsigned port)
{
	httpc h;
	httpc_init(&h, host, port);
	buf raw = {0}, body = {0};
	chunks ch;
	int status = sse_open(t, &h, &raw, &ch), rc = 0;
	if (status > 0 && status != 200) {
		ctl_fail(t->c, "%s: HTTP %d", t->c->url, status);
		rc = -1;
	}
	double idle_since = ctl_now();
	char in[16384];
	while (status == 200 && !stop && rc == 0) {
		if (!dechunk(&ch, &raw, &body) || ch.end)
			break;
		if (sse_lines(t, &body)) {
			rc = 1;
			break;
		}
		long n = httpc_read_some(&h, in, sizeof(in), 500);
		if (n < 0 || (n == 0 && ctl_now() - idle_since > 60))
			break;
		if (n > 0) {
			idle_since = ctl_now();
			if (!buf_add(&raw, in, (size_t)n))
				break;
		}
	}
	free(raw.p);
	free(body.p);
	httpc_close(&h);
	return stop ? 1 : rc;
}

static int tail_url(tail *t)
{
	char host[64];
	unsigned port;
	if (!ctl_url_parse(t->c->url, host, &port))
		return ctl_usage(t->c, "--url \"%s\" is not http://HOST:PORT", t->c->url);
	for (unsigned attempt = 0; !stop;) {
		uint64_t before = t->last;
		int rc = sse_follow(t, host, port);
		if (rc)
			return rc < 0 ? CTL_FAIL : CTL_OK;
		attempt = t->last != before ? 0 : attempt + 1;
		unsigned ms = attempt * 200 < 2000 ? attempt * 200 + 100 : 2000;
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
	return CTL_OK;
}

/* ---- the store's feed -------------------------------------------------------------------- */

static int tail_store(tail *t)
{
	cs_store *s;
	int rc = ctl_open(&s, t->c, false);
	if (rc)
		return rc;
	if (!t->started) {
		cs_store_stats st;
		cs_error err = CS_ERROR_INIT;
		if (cs_store_stats_get(&st, s, &err) == CS_OK)
			t->last = st.last_position;
		t->started = true;
	}
	while (!stop && !rc) {
		cs_event_page p = {0};
		cs_error err = CS_ERROR_INIT;
		if (cs_store_read_feed(&p, s, NULL, t->last, 1000, &err)) {
			rc = ctl_fail(t->c, "%s", err.msg);
			break;
		}
		bool done = false;
		for (size_t i = 0; i < p.n && !done; i++)
			done = emit(t, p.events[i]->position, p.events[i]->type, NULL, p.events[i]);
		bool idle = p.next == t->last || p.n == 0;
		if (p.next > t->last)
			t->last = p.next;
		cs_event_page_deinit(&p);
		if (done)
			break;
		if (idle) {
			struct timespec ts = {0, 200000000};
			nanosleep(&ts, NULL);
		}
	}
	cs_store_close(s);
	return rc;
}

int ctl_cmd_tail(ctl *c, int argc, char **argv)
{
	const char *after_s = NULL, *count_s = NULL, *types = NULL;
	const ctl_flag flags[] = {{"after-position", &after_s, NULL},
				  {"types", &types, NULL},
				  {"count", &count_s, NULL},
				  {NULL}};
	c->usage = tail_usage;
	int rc = ctl_parse(c, argc, argv, flags, 0, 0);
	if (rc >= 0)
		return rc;
	tail t = {.c = c, .types = types, .started = after_s != NULL};
	if (!ctl_u64(c, after_s, "--after-position", &t.last) ||
	    !ctl_u64(c, count_s, "--count", &t.count))
		return CTL_USAGE;
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = c->url ? tail_url(&t) : tail_store(&t);
	free(t.data);
	return rc;
}
