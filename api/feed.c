/*
 * feed.c - the global feed (GET /v1/events, with its long poll) and the two Server-Sent Events
 * routes (GET /v1/events/stream, GET /v1/conversations/{id}/events/stream).
 *
 * Both wait on the server's feed signal (server.c), which every successful write broadcasts,
 * rather than polling the store. The sequence number is read BEFORE the store is, so a write
 * that lands between the read and the wait is never missed. Each connection has its own
 * thread, so waiting here blocks no one else.
 *
 * SSE streams are produced by a libmicrohttpd content reader: each call hands out the frames
 * already formatted, or reads the next page of the feed after the last position sent, or waits
 * (at most KEEPALIVE_MS, then sends a comment line so that proxies and dead clients are found
 * out). A stream starts after Last-Event-ID, else after ?after_position, else at the end of the
 * feed as of the request (live only); it ends when the server drains.
 *
 * Deliberately simple (a feeds issue will harden them): a conversation stream reads the
 * tenant's feed and skips other conversations' events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define KEEPALIVE_MS 15000
#define SSE_PAGE     100
#define SSE_BLOCK    16384

void cs_events_public(Convstore__V1__Event **events, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		Convstore__V1__Event *ev = events[i];
		if (ev->tenant && ev->tenant != protobuf_c_empty_string) {
			free(ev->tenant);
			ev->tenant = (char *)protobuf_c_empty_string;
		}
	}
}

static struct timespec deadline_in(uint64_t ms)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += (time_t)(ms / 1000);
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static bool deadline_passed(const struct timespec *d)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > d->tv_sec || (now.tv_sec == d->tv_sec && now.tv_nsec >= d->tv_nsec);
}

/* Read the feed after @after; with @wait_ms, wait for a first event until the deadline. */
static int feed_read(cs_event_page *page, cs_req *r, uint64_t after, size_t limit, uint64_t wait_ms,
		     cs_error *err)
{
	cs_server *srv = r->srv;
	struct timespec deadline = deadline_in(wait_ms);
	for (;;) {
		uint64_t seq = cs_server_seq(srv);
		int rc = cs_store_read_feed(page, srv->store, r->tenant, after, limit, err);
		if (rc || page->n || !wait_ms || atomic_load(&srv->draining) ||
		    deadline_passed(&deadline))
			return rc;
		if (page->next > after)
			after = page->next; /* skipped other tenants' events: go on from there */
		cs_event_page_deinit(page);
		page->next = after;
		cs_server_wait(srv, seq, &deadline);
	}
}

enum MHD_Result cs_h_feed(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	uint64_t after, wait_ms;
	size_t limit;
	cs_event_page page = {0};
	int rc = cs_query_u64(&after, r, "after_position", 0, 0, UINT64_MAX, &err);
	if (!rc)
		rc = cs_query_limit(&limit, r, &err);
	if (!rc)
		rc = cs_query_u64(&wait_ms, r, "wait_ms", 0, 0, CS_WAIT_MS_MAX, &err);
	if (!rc)
		rc = feed_read(&page, r, after, limit, wait_ms, &err);
	if (rc)
		return cs_reply_error(r, &err);
	Convstore__V1__FeedPage out = CONVSTORE__V1__FEED_PAGE__INIT;
	cs_events_public(page.events, page.n);
	out.events = page.events;
	out.n_events = page.n;
	out.last_position = page.n ? page.events[page.n - 1]->position : page.next;
	enum MHD_Result ret = cs_reply_message(r, MHD_HTTP_OK, &out.base, 0);
	cs_event_page_deinit(&page);
	return ret;
}

/* One SSE stream's state, owned by its libmicrohttpd response. */
typedef struct sse {
	cs_server *srv;
	char tenant[CS_MAX_ID_LEN + 1];
	char conversation[CS_MAX_ID_LEN + 1]; /* "" for the global stream */
	uint64_t after;			      /* the last position sent (or skipped) */
	char *out;			      /* formatted frames not yet handed out */
	size_t out_len, out_off;
} sse;

/* Format the events of @page the stream wants as frames in s->out. */
static int sse_format(sse *s, cs_event_page *page)
{
	FILE *f = open_memstream(&s->out, &s->out_len);
	if (!f)
		return CS_ENOMEM;
	for (size_t i = 0; i < page->n; i++) {
		Convstore__V1__Event *ev = page->events[i];
		s->after = ev->position;
		if (s->conversation[0] && strcmp(ev->conversation_id, s->conversation) != 0)
			continue;
		cs_events_public(&ev, 1);
		char *json = cs_json_text(&ev->base, NULL);
		if (json)
			fprintf(f, "id: %llu\nevent: %s\ndata: %s\n\n",
				(unsigned long long)ev->position, ev->type, json);
		free(json);
	}
	if (page->next > s->after)
		s->after = page->next;
	return fclose(f) ? CS_ENOMEM : CS_OK;
}

/* Fill s->out with the next frames, waiting for them (or a keep-alive) if need be. */
static int sse_fill(sse *s)
{
	struct timespec deadline = deadline_in(KEEPALIVE_MS);
	while (!atomic_load(&s->srv->draining)) {
		cs_event_page page = {0};
		uint64_t seq = cs_server_seq(s->srv), before = s->after;
		int rc =
		    cs_store_read_feed(&page, s->srv->store, s->tenant, s->after, SSE_PAGE, NULL);
		if (!rc) {
			free(s->out);
			s->out = NULL;
			s->out_off = s->out_len = 0;
			rc = sse_format(s, &page);
		}
		cs_event_page_deinit(&page);
		if (rc || s->out_len)
			return rc;
		if (s->after != before)
			continue; /* only skipped events so far: read on without waiting */
		if (deadline_passed(&deadline)) {
			free(s->out);
			s->out = strdup(": keep-alive\n\n");
			s->out_len = s->out ? strlen(s->out) : 0;
			return s->out ? CS_OK : CS_ENOMEM;
		}
		cs_server_wait(s->srv, seq, &deadline);
	}
	return CS_ECLOSED;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	sse *s = cls;
	if (s->out_off == s->out_len) {
		int rc = sse_fill(s);
		if (rc == CS_ECLOSED)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (rc)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	size_t n = s->out_len - s->out_off < max ? s->out_len - s->out_off : max;
	memcpy(buf, s->out + s->out_off, n);
	s->out_off += n;
	return (ssize_t)n;
}

static void sse_free(void *cls)
{
	sse *s = cls;
	free(s->out);
	free(s);
}

/* Where a stream starts: Last-Event-ID, else ?after_position, else the end of the feed now. */
static int sse_start(uint64_t *after, cs_req *r, cs_error *err)
{
	const char *last = cs_req_header(r, "Last-Event-ID");
	if (last) {
		if (!cs_parse_u64(after, last))
			return cs_error_set(err, CS_EINVAL,
					    "Last-Event-ID '%.32s' is not a position", last);
		return CS_OK;
	}
	if (cs_query_get(r, "after_position"))
		return cs_query_u64(after, r, "after_position", 0, 0, UINT64_MAX, err);
	cs_store_stats st;
	int rc = cs_store_stats_get(&st, r->srv->store, err);
	*after = st.last_position;
	return rc;
}

static enum MHD_Result stream(cs_req *r, const char *conversation)
{
	cs_error err = CS_ERROR_INIT;
	sse *s = calloc(1, sizeof(*s));
	int rc = s ? sse_start(&s->after, r, &err) : cs_error_set(&err, CS_ENOMEM, "out of memory");
	if (rc) {
		free(s);
		return cs_reply_error(r, &err);
	}
	s->srv = r->srv;
	snprintf(s->tenant, sizeof(s->tenant), "%s", r->tenant);
	snprintf(s->conversation, sizeof(s->conversation), "%s", conversation);
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_read, s, sse_free);
	if (!resp) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	enum MHD_Result ret = cs_reply_queue(r, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result cs_h_feed_stream(cs_req *r)
{
	return stream(r, "");
}

enum MHD_Result cs_h_conv_stream(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__Head *head = NULL;
	if (cs_store_head(&head, r->srv->store, r->tenant, r->id, &err))
		return cs_reply_error(r, &err);
	protobuf_c_message_free_unpacked(&head->base, NULL);
	return stream(r, r->id);
}
