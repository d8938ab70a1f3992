/*
 * feed.c - the global feed (GET /v1/events, with its long poll) and the two Server-Sent Events
 * routes (GET /v1/events/stream, GET /v1/conversations/{id}/events/stream).
 *
 * Neither holds a thread while it waits. A long poll with nothing to return asks its worker to
 * park it in the feed hub (hub.c) and is run again when an event of its tenant is committed or
 * wait_ms is over. A stream is a libmicrohttpd content reader on the event-loop threads: each
 * call hands out frames from the hub's shared ring, or from the store while the stream is
 * behind the ring (catch-up), or - when there is nothing - suspends the connection, parked in
 * the hub until an event concerns it or the heartbeat is due (a comment line, so that proxies
 * keep the connection and a vanished client is found out).
 *
 * Delivery: a stream sends each event after its starting position exactly once, in position
 * order, whether it comes from the store or the ring: both are read strictly after the last
 * position sent. The starting position is Last-Event-ID, else ?after_position, else the end of
 * the feed as the request arrives (live only). A client that reconnects with the last id it
 * got misses nothing and gets nothing twice. The global stream reads the tenant's feed; a
 * conversation's stream reads that conversation's own events through its index (a fork's
 * stream has the fork's events, not its parent's), and ends after conversation_deleted.
 * ?types= sends only those event types; the position still advances past the others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define SSE_PAGE   100	 /* events one catch-up read takes from the store */
#define SSE_BUDGET 65536 /* bytes of frames prepared at once */
#define SSE_BLOCK  16384 /* libmicrohttpd's buffer for the stream */

int cs_buf_add(cs_buf *b, const char *s, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return CS_ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, len);
	b->len += len;
	return CS_OK;
}

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

int cs_sse_frame(cs_buf *out, const Convstore__V1__Event *ev)
{
	Convstore__V1__Event pub = *ev; /* shallow: the public view without the tenant */
	pub.tenant = (char *)protobuf_c_empty_string;
	char *json = cs_json_text(&pub.base, NULL);
	if (!json)
		return CS_ENOMEM;
	char head[160];
	int n = snprintf(head, sizeof(head),
			 "id: %llu\nevent: %s\ndata: ", (unsigned long long)ev->position, ev->type);
	int rc = cs_buf_add(out, head, (size_t)n);
	if (!rc)
		rc = cs_buf_add(out, json, strlen(json));
	if (!rc)
		rc = cs_buf_add(out, "\n\n", 2);
	free(json);
	return rc;
}

/* ---- the long poll ------------------------------------------------------------------------ */

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
	if (rc)
		return cs_reply_error(r, &err);
	if (!r->poll_started) { /* the first run; later ones go on where it got to */
		r->poll_started = true;
		r->poll_until_ms = cs_mono_ms() + wait_ms;
		r->poll_after = after;
	}
	for (;;) {
		uint64_t seen = cs_hub_published(r->srv);
		rc =
		    cs_store_read_feed(&page, r->srv->store, r->tenant, r->poll_after, limit, &err);
		if (rc || page.n || cs_mono_ms() >= r->poll_until_ms ||
		    atomic_load(&r->srv->draining))
			break;
		bool skipped = page.next > r->poll_after; /* only other tenants' events so far */
		r->poll_after = page.next;
		cs_event_page_deinit(&page);
		if (!skipped) {
			r->park = true;
			r->park_seen = seen;
			r->waiter.tenant = r->tenant;
			r->waiter.conversation = NULL;
			r->waiter.types = NULL;
			r->waiter.deadline_ms = r->poll_until_ms;
			return MHD_YES; /* the worker parks it in the hub */
		}
	}
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

/* ---- Server-Sent Events ------------------------------------------------------------------- */

/* One stream's state, owned by its libmicrohttpd response. */
typedef struct sse {
	cs_server *srv;
	struct MHD_Connection *conn;
	cs_waiter w; /* the filter (tenant, conversation, types) and the hub's parking spot */
	char tenant[CS_MAX_ID_LEN + 1];
	char conversation[CS_MAX_ID_LEN + 1]; /* "" for the global stream */
	cs_types types;
	uint64_t after;	   /* the last position sent or passed over */
	uint64_t trusted;  /* the ring is complete for this stream only after this */
	uint64_t quiet_ms; /* when the stream last sent anything */
	bool ended;	   /* the conversation was erased: end after what is prepared */
	cs_buf out;	   /* frames prepared, not yet handed out */
	size_t off;
} sse;

#define SSE_OF(wt) ((sse *)((char *)(wt)-offsetof(sse, w)))

static void sse_wake(cs_waiter *w)
{
	MHD_resume_connection(SSE_OF(w)->conn);
}

static void sse_on_park(cs_waiter *w)
{
	MHD_suspend_connection(SSE_OF(w)->conn);
}

/* Frames of @page's events the stream wants; s->after moves past the page. */
static int sse_take(sse *s, const cs_event_page *page)
{
	for (size_t i = 0; i < page->n; i++) {
		const Convstore__V1__Event *ev = page->events[i];
		int rc = cs_types_has(&s->types, ev->type) ? cs_sse_frame(&s->out, ev) : CS_OK;
		if (rc)
			return rc;
		s->after = ev->position;
	}
	if (page->next > s->after)
		s->after = page->next;
	return CS_OK;
}

/* Prepare what comes after s->after: from the ring, or from the store while behind it. */
static int sse_produce(sse *s)
{
	int rc = cs_hub_copy(s->srv, &s->w, s->trusted, &s->after, &s->out, SSE_BUDGET, &s->ended);
	if (rc == CS_HUB_BEHIND) {
		cs_event_page page = {0};
		cs_error err = CS_ERROR_INIT;
		rc = s->conversation[0]
			 ? cs_store_read_conv_feed(&page, s->srv->store, s->tenant, s->conversation,
						   s->after, SSE_PAGE, &err)
			 : cs_store_read_feed(&page, s->srv->store, s->tenant, s->after, SSE_PAGE,
					      &err);
		if (rc == CS_ENOTFOUND && s->conversation[0]) {
			s->ended = true; /* erased: its events are gone with it */
			return CS_OK;
		}
		if (rc)
			cs_log(s->srv, CS_LOG_ERROR, "stream of %s: %s", s->tenant, err.msg);
		else
			rc = sse_take(s, &page);
		cs_event_page_deinit(&page);
	}
	return rc;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	sse *s = cls;
	while (s->off == s->out.len) {
		s->off = s->out.len = 0;
		if (s->ended || atomic_load(&s->srv->draining))
			return MHD_CONTENT_READER_END_OF_STREAM;
		uint64_t seen = cs_hub_published(s->srv), before = s->after;
		if (sse_produce(s))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (s->out.len || s->ended || s->after != before)
			continue; /* something to send, or only passed over others' events */
		uint64_t beat = s->quiet_ms + s->srv->cfg.heartbeat_ms;
		if (cs_mono_ms() >= beat) {
			if (cs_buf_add(&s->out, ": keep-alive\n\n", 14))
				return MHD_CONTENT_READER_END_WITH_ERROR;
			break;
		}
		s->w.deadline_ms = beat;
		if (cs_hub_park(s->srv, &s->w, seen))
			return 0; /* suspended (sse_on_park); resumed by the hub */
	}
	size_t n = s->out.len - s->off < max ? s->out.len - s->off : max;
	memcpy(buf, s->out.p + s->off, n);
	s->off += n;
	s->quiet_ms = cs_mono_ms();
	return (ssize_t)n;
}

static void sse_free(void *cls)
{
	sse *s = cls;
	cs_hub_unpark(s->srv, &s->w);
	cs_hub_detach(s->srv, s->tenant, s->w.conversation);
	free(s->out.p);
	free(s);
}

/* ?types=a,b: event types of the Event payload. */
static int types_parse(cs_types *out, const cs_req *r, cs_error *err)
{
	const char *q = cs_query_get(r, "types");
	out->n = 0;
	while (q && *q) {
		size_t len = strcspn(q, ",");
		char name[64];
		const ProtobufCFieldDescriptor *f = NULL;
		if (len && len < sizeof(name)) {
			memcpy(name, q, len);
			name[len] = '\0';
			f = protobuf_c_message_descriptor_get_field_by_name(
			    &convstore__v1__event__descriptor, name);
		}
		if (!f || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			return cs_error_set(err, CS_EINVAL, "types: '%.*s' is not an event type",
					    (int)(len < 64 ? len : 64), q);
		if (out->n == CS_TYPES_MAX)
			return cs_error_set(err, CS_EINVAL, "types: more than %d types",
					    CS_TYPES_MAX);
		memcpy(out->names[out->n++], name, len + 1);
		q += len;
		if (*q == ',' && !*++q)
			return cs_error_set(err, CS_EINVAL, "types: an empty type after ','");
	}
	return CS_OK;
}

/* Where a stream starts: Last-Event-ID, else ?after_position, else the end of the feed now. A
 * position past the end is refused: it can only come from another store (a restored backup, a
 * different server) and would wait, silently, for events that are not this store's. */
static int sse_start(uint64_t *after, cs_req *r, cs_error *err)
{
	cs_store_stats st;
	int rc = cs_store_stats_get(&st, r->srv->store, err);
	if (rc)
		return rc;
	const char *last = cs_req_header(r, "Last-Event-ID");
	*after = st.last_position;
	if (last && !cs_parse_u64(after, last))
		return cs_error_set(err, CS_EINVAL, "Last-Event-ID '%.32s' is not a position",
				    last);
	if (!last && cs_query_get(r, "after_position") &&
	    (rc = cs_query_u64(after, r, "after_position", 0, 0, UINT64_MAX, err)))
		return rc;
	if (*after > st.last_position)
		return cs_error_set(err, CS_EINVAL,
				    "position %llu is past the end of the feed (%llu): not this "
				    "store's",
				    (unsigned long long)*after,
				    (unsigned long long)st.last_position);
	return CS_OK;
}

static enum MHD_Result stream(cs_req *r, const char *conversation)
{
	cs_error err = CS_ERROR_INIT;
	sse *s = calloc(1, sizeof(*s));
	int rc = s ? sse_start(&s->after, r, &err) : cs_error_set(&err, CS_ENOMEM, "out of memory");
	if (!rc)
		rc = types_parse(&s->types, r, &err);
	if (rc) {
		free(s);
		return cs_reply_error(r, &err);
	}
	s->srv = r->srv;
	s->conn = r->conn;
	snprintf(s->tenant, sizeof(s->tenant), "%s", r->tenant);
	snprintf(s->conversation, sizeof(s->conversation), "%s", conversation);
	s->w = (cs_waiter){.tenant = s->tenant,
			   .conversation = conversation[0] ? s->conversation : NULL,
			   .types = &s->types,
			   .wake = sse_wake,
			   .on_park = sse_on_park};
	s->quiet_ms = cs_mono_ms();
	/* A first comment: the client knows it is attached, and from where. */
	char hello[64];
	int n = snprintf(hello, sizeof(hello), ": after %llu\n\n", (unsigned long long)s->after);
	struct MHD_Response *resp = cs_buf_add(&s->out, hello, (size_t)n)
					? NULL
					: MHD_create_response_from_callback(
					      MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_read, s, sse_free);
	if (!resp) {
		free(s->out.p);
		free(s);
		return MHD_NO;
	}
	s->trusted = cs_hub_attach(r->srv, s->tenant, s->w.conversation);
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
