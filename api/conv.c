/*
 * conv.c - the routes that write and read one conversation's events: create, append, state,
 * messages, events (API.md "Routes"). manage.c has list, patch, fork, forks and erase.
 *
 * Each handler reads its request (cs_body_decode, cs_query_*), calls ONE store function with
 * the request's tenant, and replies with a view message through cs_reply_message() or an error
 * through cs_reply_error(): no JSON is written by hand, and the store's error codes become HTTP
 * statuses only in http.c's table. Writes go through the store's group commit
 * (cs_store_append and friends); this file never sees a transaction.
 *
 * Tenancy: every store call is scoped to r->tenant, so another tenant's conversation is simply
 * not found (404), exactly like one that does not exist.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

typedef Convstore__V1__Event Event;

/* The layout protoc-c gives every map<string, string> entry. */
typedef struct string_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
} string_entry;

int cs_map_retype(void ***out, const ProtobufCMessageDescriptor *desc, void *const *src, size_t n,
		  cs_error *err)
{
	*out = NULL;
	if (!n)
		return CS_OK;
	if (desc->sizeof_message != sizeof(string_entry))
		return cs_error_set(err, CS_EINVAL, "metadata: not a map of strings");
	void **list = malloc(n * (sizeof(void *) + sizeof(string_entry)));
	if (!list)
		return cs_error_set(err, CS_ENOMEM, "out of memory for %zu metadata pairs", n);
	string_entry *e = (string_entry *)(list + n);
	for (size_t i = 0; i < n; i++) {
		const string_entry *s = src[i];
		protobuf_c_message_init(desc, &e[i]);
		e[i].key = s->key;
		e[i].value = s->value;
		list[i] = &e[i];
	}
	*out = list;
	return CS_OK;
}

int cs_body_id(char out[CS_MAX_ID_LEN + 1], const char *given, cs_error *err)
{
	if (!given || !*given)
		return cs_uuid_v4(out, err);
	if (!cs_id_valid(given) || !strcmp(given, ".") || !strcmp(given, ".."))
		return cs_error_set(err, CS_EINVAL,
				    "id '%.64s' is not 1 to %d characters of A-Z a-z 0-9 . _ : -",
				    given, CS_MAX_ID_LEN);
	snprintf(out, CS_MAX_ID_LEN + 1, "%s", given);
	return CS_OK;
}

enum MHD_Result cs_reply_state(cs_req *r, unsigned status, const char *id)
{
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__ConversationState *st = NULL;
	int rc = cs_store_state(&st, r->srv->store, r->tenant, id, 0, &err);
	return cs_reply_view(r, rc, &err, status, st ? &st->base : NULL, st ? st->version : 0);
}

int cs_write_done(cs_req *r, int rc)
{
	if (!rc)
		cs_hub_notify(r->srv);
	return rc;
}

enum MHD_Result cs_h_create(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__CreateRequest *req = NULL;
	Convstore__V1__ConversationCreated spec = CONVSTORE__V1__CONVERSATION_CREATED__INIT;
	char id[CS_MAX_ID_LEN + 1];
	cs_append_result res;
	int rc = cs_body_decode((ProtobufCMessage **)&req, r,
				&convstore__v1__create_request__descriptor, &err);
	if (!rc)
		rc = cs_body_id(id, req->id, &err);
	if (!rc) {
		spec.title = req->title;
		spec.n_metadata = req->n_metadata;
		spec.retention = req->retention;
		rc = cs_map_retype((void ***)&spec.metadata,
				   &convstore__v1__conversation_created__metadata_entry__descriptor,
				   (void *const *)req->metadata, req->n_metadata, &err);
		if (!rc)
			rc = cs_write_done(
			    r, cs_store_create(&res, r->srv->store, r->tenant, id, &spec, &err));
		free(spec.metadata);
	}
	if (req)
		protobuf_c_message_free_unpacked(&req->base, NULL);
	if (rc)
		return cs_reply_error(r, &err);
	snprintf(r->id, sizeof(r->id), "%s", id);
	return cs_reply_state(r, MHD_HTTP_CREATED, id);
}

int cs_if_match(int64_t *out, const cs_req *r, bool body_set, uint64_t body_value, cs_error *err)
{
	const char *im = cs_req_header(r, MHD_HTTP_HEADER_IF_MATCH);
	*out = body_set ? (int64_t)body_value : CS_ANY_VERSION;
	if (body_set && body_value > INT64_MAX)
		return cs_error_set(err, CS_EINVAL, "expected_version %llu is out of range",
				    (unsigned long long)body_value);
	if (!im || strcmp(im, "*") == 0)
		return CS_OK;
	char digits[24];
	uint64_t v;
	size_t n = strlen(im);
	if (n < 3 || n > sizeof(digits) || im[0] != '"' || im[n - 1] != '"')
		return cs_error_set(err, CS_EINVAL, "If-Match '%.32s' is not \"<version>\"", im);
	memcpy(digits, im + 1, n - 2);
	digits[n - 2] = '\0';
	if (!cs_parse_u64(&v, digits) || v > INT64_MAX)
		return cs_error_set(err, CS_EINVAL, "If-Match '%.32s' is not \"<version>\"", im);
	if (body_set && v != body_value)
		return cs_error_set(err, CS_EINVAL,
				    "If-Match %llu and expected_version %llu differ",
				    (unsigned long long)v, (unsigned long long)body_value);
	*out = (int64_t)v;
	return CS_OK;
}

/* The request's traceparent on every event that carries no trace of its own. */
static int add_trace(const cs_req *r, Event **events, size_t n, cs_error *err)
{
	if (!r->trace_id[0])
		return CS_OK;
	for (size_t i = 0; i < n; i++) {
		if (events[i]->trace)
			continue;
		Convstore__V1__TraceContext *t = malloc(sizeof(*t));
		char *tid = strdup(r->trace_id), *sid = strdup(r->span_id);
		if (!t || !tid || !sid) {
			free(t), free(tid), free(sid);
			return cs_error_set(err, CS_ENOMEM, "out of memory adding the trace");
		}
		convstore__v1__trace_context__init(t);
		t->trace_id = tid;
		t->span_id = sid;
		events[i]->trace = t; /* freed with the request message */
	}
	return CS_OK;
}

/* A decode error inside "events[N]..." is about event N: say so in err->index. */
static void index_from_path(cs_error *err)
{
	unsigned long i;
	if (err->code == CS_EINVAL && err->index == CS_NO_INDEX &&
	    sscanf(err->msg, "events[%lu]", &i) == 1 && i <= INT32_MAX)
		err->index = (int)i;
}

static int append_check(int64_t *expected, cs_req *r, Convstore__V1__AppendRequest *req,
			cs_error *err)
{
	bool set = req->expected_version_opt_case ==
		   CONVSTORE__V1__APPEND_REQUEST__EXPECTED_VERSION_OPT_EXPECTED_VERSION;
	int rc = cs_if_match(expected, r, set, req->expected_version, err);
	if (rc)
		return rc;
	if (req->n_events == 0)
		return cs_error_set(err, CS_EINVAL, "events: at least one event is required");
	if (req->n_events > r->srv->cfg.max_events)
		return cs_error_set(err, CS_ETOOBIG, "%zu events is over the limit of %zu",
				    req->n_events, r->srv->cfg.max_events);
	return add_trace(r, req->events, req->n_events, err);
}

/* The append's commit is done (the store's writer thread): let the event loop answer it. */
static void append_done(void *ctx)
{
	cs_req *r = ctx;
	MHD_resume_connection(r->conn);
}

void cs_append_abandon(cs_req *r)
{
	if (r->append_op)
		cs_store_append_finish(r->append_op, NULL, NULL);
	if (r->append_request)
		protobuf_c_message_free_unpacked(&r->append_request->base, NULL);
	r->append_op = NULL;
	r->append_request = NULL;
}

/* Answer an append from its outcome; frees @req. */
static enum MHD_Result append_reply(cs_req *r, int rc, const cs_error *err,
				    Convstore__V1__AppendRequest *req, const cs_append_result *res)
{
	if (!rc)
		cs_metrics_append(&r->srv->metrics, req->n_events, cs_us_since(&r->append_t0));
	if (req)
		protobuf_c_message_free_unpacked(&req->base, NULL);
	if (rc)
		return cs_reply_error(r, err);
	Convstore__V1__AppendResponse out = CONVSTORE__V1__APPEND_RESPONSE__INIT;
	out.conversation_id = r->id;
	out.first_version = res->first_version;
	out.last_version = res->last_version;
	out.first_position = res->first_position;
	out.last_position = res->last_position;
	return cs_reply_message(r, res->replayed ? MHD_HTTP_OK : MHD_HTTP_CREATED, &out.base, 0);
}

/*
 * POST /v1/conversations/{id}/events. On a worker it waits for the commit like any handler. On
 * the event loop (r->inline_append: a small body, see server.c) it queues the append and
 * returns with the connection still suspended; the store's writer resumes it once committed,
 * and libmicrohttpd calls this again to answer: no thread waits for the commit at all.
 */
enum MHD_Result cs_h_append(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	cs_append_result res = {0};
	if (r->append_op) { /* the second call: the commit is done */
		Convstore__V1__AppendRequest *req = r->append_request;
		int rc = cs_store_append_finish(r->append_op, &res, &err);
		r->append_op = NULL;
		r->append_request = NULL;
		return append_reply(r, cs_write_done(r, rc), &err, req, &res);
	}
	Convstore__V1__AppendRequest *req = NULL;
	int64_t expected = CS_ANY_VERSION;
	int rc = cs_body_decode((ProtobufCMessage **)&req, r,
				&convstore__v1__append_request__descriptor, &err);
	if (rc)
		index_from_path(&err);
	if (!rc)
		rc = append_check(&expected, r, req, &err);
	clock_gettime(CLOCK_MONOTONIC, &r->append_t0);
	if (!rc && r->inline_append) {
		rc = cs_store_append_start(&r->append_op, r->srv->store, r->tenant, r->id, expected,
					   req->events, req->n_events, append_done, r, &err);
		if (!rc) {
			r->append_request = req;
			return MHD_YES; /* answered when append_done() resumes the connection */
		}
	} else if (!rc) {
		rc = cs_write_done(r, cs_store_append(&res, r->srv->store, r->tenant, r->id,
						      expected, req->events, req->n_events, &err));
	}
	return append_reply(r, rc, &err, req, &res);
}

/*
 * The version a view of r->id is at (for its ETag): @at when given, else the head's. Also
 * answers "does it exist" for the tenant before anything is folded.
 */
static int view_version(uint64_t *out, cs_req *r, uint64_t at, cs_error *err)
{
	Convstore__V1__Head *head = NULL;
	int rc = cs_store_head(&head, r->srv->store, r->tenant, r->id, err);
	if (rc)
		return rc;
	*out = head->version;
	protobuf_c_message_free_unpacked(&head->base, NULL);
	if (at > *out)
		return cs_error_set(err, CS_EINVAL, "at_version %llu is beyond the version %llu",
				    (unsigned long long)at, (unsigned long long)*out);
	if (at)
		*out = at;
	return CS_OK;
}

/*
 * The state view and the messages view share their ETag (the version they show) and the 304
 * that If-None-Match earns before anything is folded; only the store call differs.
 */
static enum MHD_Result reply_view(cs_req *r, bool transcript)
{
	cs_error err = CS_ERROR_INIT;
	uint64_t at, version = 0;
	ProtobufCMessage *view = NULL;
	int rc = cs_query_u64(&at, r, "at_version", 0, 1, UINT64_MAX, &err);
	if (!rc)
		rc = view_version(&version, r, at, &err);
	if (!rc && cs_req_not_modified(r, version))
		return cs_reply_empty(r, MHD_HTTP_NOT_MODIFIED, version);
	if (!rc && transcript)
		rc = cs_store_messages((Convstore__V1__ChatTranscript **)&view, r->srv->store,
				       r->tenant, r->id, at, &err);
	else if (!rc)
		rc = cs_store_state((Convstore__V1__ConversationState **)&view, r->srv->store,
				    r->tenant, r->id, at, &err);
	return cs_reply_view(r, rc, &err, MHD_HTTP_OK, view, version);
}

enum MHD_Result cs_h_state(cs_req *r)
{
	return reply_view(r, false);
}

enum MHD_Result cs_h_messages(cs_req *r)
{
	return reply_view(r, true);
}

enum MHD_Result cs_h_events(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__EventPage out = CONVSTORE__V1__EVENT_PAGE__INIT;
	cs_event_page page = {0};
	const char *dir = cs_query_get(r, "direction");
	enum cs_direction d = CS_FORWARD;
	uint64_t from;
	size_t limit;
	int rc = CS_OK;
	if (dir && strcmp(dir, "forward") != 0 && strcmp(dir, "backward") != 0)
		rc = cs_error_set(&err, CS_EINVAL, "direction '%.32s' is not forward or backward",
				  dir);
	if (dir && !strcmp(dir, "backward"))
		d = CS_BACKWARD;
	if (!rc)
		rc = cs_query_u64(&from, r, "from_version", d == CS_FORWARD ? 1 : 0,
				  d == CS_FORWARD ? 1 : 0, UINT64_MAX, &err);
	if (!rc)
		rc = cs_query_limit(&limit, r, &err);
	if (!rc)
		rc = cs_store_read_stream(&page, r->srv->store, r->tenant, r->id, from, limit, d,
					  &err);
	if (rc)
		return cs_reply_error(r, &err);
	cs_events_public(page.events, page.n);
	out.events = page.events;
	out.n_events = page.n;
	if (page.next) {
		out.next_from_version_opt_case =
		    CONVSTORE__V1__EVENT_PAGE__NEXT_FROM_VERSION_OPT_NEXT_FROM_VERSION;
		out.next_from_version = page.next;
	}
	enum MHD_Result ret = cs_reply_message(r, MHD_HTTP_OK, &out.base, 0);
	cs_event_page_deinit(&page);
	return ret;
}
