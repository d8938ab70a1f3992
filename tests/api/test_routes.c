/*
 * test_routes.c - every route of API.md against a real convstored: the happy paths with their
 * exact fields and statuses, both content types, gzip, ETag / If-None-Match, If-Match, the
 * feed's long poll, both SSE streams, usage, metrics, health, and the error statuses a route
 * can give (400, 404, 405, 409, 410, 413, 415, 507). Auth is in test_auth, the malformed-request
 * catalogue in test_malformed.
 */
#include <pthread.h>
#include <zlib.h>

#include "../check.h"
#include "convstore/v1/api.pb-c.h"
#include "convstore/v1/view.pb-c.h"
#include "server.h"

static srv S;

#define MEMBER(role, text) "\"message\":{\"role\":\"" role "\",\"content\":\"" text "\"}"
#define MSG(role, text)	   "{" MEMBER(role, text) "}"

static void test_health(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/healthz", NULL), 200);
	CHECK_STR_EQ(jstr(b, "status"), "ok");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/readyz", NULL), 200);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/openapi.json", NULL), 200);
	CHECK_STR_EQ(jstr(b, "openapi"), "3.1.0");
	json_decref(b);
}

/* @body parsed equals @want (JSON text), whatever the key order. */
static void check_json_is(json_t *body, const char *want)
{
	json_t *w = json_loads(want, 0, NULL);
	CHECK(w != NULL);
	if (!json_equal(body, w)) {
		char *got = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		fprintf(stderr, "got  %s\nwant %s\n", got ? got : "(null)", want);
		free(got);
		CHECK(!"the JSON above differs");
	}
	json_decref(w);
}

/*
 * The empty lists and zeros API.md shows are there, and nothing else: no bool defaults, and
 * events exactly as stored. Runs first, on an empty store.
 */
static void test_present(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/events", NULL), 200);
	check_json_is(b, "{\"events\":[],\"last_position\":0}");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations", NULL), 200);
	check_json_is(b, "{\"conversations\":[],\"next_cursor\":null}");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations", "{\"id\":\"fresh\"}"), 201);
	char created[64];
	snprintf(created, sizeof(created), "%s", jstr(b, "created_at"));
	check_json_is(
	    b, fmt("{\"id\":\"fresh\",\"version\":1,\"status\":\"active\",\"metadata\":{},"
		   "\"created_at\":\"%s\",\"updated_at\":\"%s\",\"messages\":[],"
		   "\"pending_tool_calls\":[],\"usage\":{\"input_tokens\":0,\"output_tokens\":0,"
		   "\"cached_tokens\":0,\"reasoning_tokens\":0,\"cost_usd\":0,\"responses\":0},"
		   "\"counts\":{\"events\":1,\"messages\":0,\"tool_calls\":0,\"tool_errors\":0},"
		   "\"last_position\":1,\"first_version\":0}",
		   created, created));
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/fresh/events", NULL), 200);
	json_t *ev = json_array_get(json_object_get(b, "events"), 0);
	check_json_is(ev, fmt("{\"id\":\"%s\",\"conversation_id\":\"fresh\",\"version\":1,"
			      "\"position\":1,\"recorded_at\":\"%s\",\"type\":"
			      "\"conversation_created\",\"conversation_created\":{}}",
			      jstr(ev, "id"), created));
	CHECK(json_is_null(json_object_get(b, "next_from_version")));
	json_decref(b);
	/* a transcript message has is_error only when it is true; events keep what they had */
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/fresh/events",
			      "{\"events\":[{\"tool_call\":{\"id\":\"t1\",\"name\":\"ls\"}},"
			      "{\"tool_result\":{\"call_id\":\"t1\",\"output\":\"no\","
			      "\"is_error\":true}},{\"tool_call\":{\"id\":\"t2\",\"name\":\"ls\"}},"
			      "{\"tool_result\":{\"call_id\":\"t2\",\"output\":\"ok\"}}]}"),
		     201);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/fresh", NULL), 200);
	json_t *msgs = json_object_get(b, "messages");
	CHECK_EQ_INT(json_array_size(msgs), 4);
	CHECK(!json_object_get(json_array_get(msgs, 0), "is_error"));
	CHECK(json_is_true(json_object_get(json_array_get(msgs, 1), "is_error")));
	CHECK(!json_object_get(json_array_get(msgs, 2), "is_error"));
	CHECK(!json_object_get(json_array_get(msgs, 3), "is_error"));
	CHECK_EQ_INT(jint(json_object_get(b, "counts"), "tool_errors"), 1);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/events?after_position=4", NULL), 200);
	ev = json_array_get(json_object_get(b, "events"), 0);
	check_json_is(json_object_get(ev, "tool_result"), "{\"call_id\":\"t2\",\"output\":\"ok\"}");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations?limit=1", NULL), 200);
	json_t *summary = json_array_get(json_object_get(b, "conversations"), 0);
	check_json_is(json_object_get(summary, "metadata"), "{}");
	CHECK(!json_object_get(summary, "messages") &&
	      !json_object_get(summary, "pending_tool_calls"));
	json_decref(b);
}

static void test_create(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations",
			      "{\"id\":\"c1\",\"title\":\"first\",\"metadata\":{\"user\":\"u1\"}}"),
		     201);
	CHECK_STR_EQ(jstr(b, "id"), "c1");
	CHECK_EQ_INT(jint(b, "version"), 1);
	CHECK_STR_EQ(jstr(b, "title"), "first");
	CHECK(json_is_array(json_object_get(b, "messages")));
	CHECK_EQ_INT(jint(json_object_get(b, "counts"), "events"), 1);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations", "{\"id\":\"c1\"}"), 409);
	CHECK_STR_EQ(err_code(b), "conflict");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations", "{}"), 201);
	CHECK_EQ_INT(strlen(jstr(b, "id")), 36); /* a UUID */
	json_decref(b);
}

static void test_append(void)
{
	json_t *b = NULL;
	const char *body = "{\"expected_version\":0,\"events\":[{\"id\":\"a1\"," MEMBER(
	    "system", "be brief") "},"
				  "{\"id\":\"a2\",\"actor\":\"agent\"," MEMBER("user",
									       "hello") "}]}";
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations/c2/events", body), 201);
	CHECK_STR_EQ(jstr(b, "conversation_id"), "c2");
	CHECK_EQ_INT(jint(b, "first_version"), 1);
	CHECK_EQ_INT(jint(b, "last_version"), 2);
	long long first_pos = jint(b, "first_position");
	CHECK(first_pos > 0);
	CHECK_EQ_INT(jint(b, "last_position"), first_pos + 1);
	json_decref(b);
	/* the same ids again: 200 with the original result, whatever expected_version says */
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations/c2/events", body), 200);
	CHECK_EQ_INT(jint(b, "first_position"), first_pos);
	json_decref(b);
	/* a version mismatch: 409 with current_version */
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations/c2/events",
			      "{\"expected_version\":1,\"events\":[" MSG("user", "x") "]}"),
		     409);
	CHECK_STR_EQ(err_code(b), "conflict");
	CHECK_EQ_INT(jint(json_object_get(b, "error"), "current_version"), 2);
	json_decref(b);
	/* a mismatch on a conversation that does not exist says current_version 0 */
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations/not-yet/events",
			      "{\"expected_version\":3,\"events\":[" MSG("user", "x") "]}"),
		     409);
	CHECK(json_is_integer(json_object_get(json_object_get(b, "error"), "current_version")));
	CHECK_EQ_INT(jint(json_object_get(b, "error"), "current_version"), 0);
	json_decref(b);
	/* If-Match is expected_version */
	httpc_response r =
	    srv_req(&S, "POST", "/v1/conversations/c2/events", JSON_HDR "If-Match: \"2\"\r\n",
		    "{\"events\":[{\"model_response\":{\"model\":\"gpt-4o\","
		    "\"tool_calls\":[{\"id\":\"k1\",\"name\":\"get\",\"arguments\":"
		    "\"{}\"}],\"usage\":{\"input_tokens\":10,\"output_tokens\":3},"
		    "\"cost_usd\":0.5}}]}");
	CHECK_EQ_INT(r.status, 201);
	httpc_response_free(&r);
	r = srv_req(&S, "POST", "/v1/conversations/c2/events", JSON_HDR "If-Match: \"2\"\r\n",
		    "{\"events\":[" MSG("user", "late") "]}");
	CHECK_EQ_INT(r.status, 409);
	httpc_response_free(&r);
	/* a bad event: 400 with its index, nothing stored */
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations/c2/events",
			      "{\"events\":[" MSG("user", "ok") ",{\"tool_result\":{\"call_id\":"
								"\"nope\",\"output\":\"x\"}}]}"),
		     400);
	CHECK_STR_EQ(err_code(b), "invalid_argument");
	CHECK_EQ_INT(jint(json_object_get(b, "error"), "index"), 1);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations/c2/events",
			      "{\"events\":[{\"tool_result\":{\"call_id\":\"k1\",\"name\":\"get\","
			      "\"output\":\"{\\\"ok\\\":1}\"}}]}"),
		     201);
	CHECK_EQ_INT(jint(b, "last_version"), 4);
	json_decref(b);
}

static void test_state_and_etag(void)
{
	httpc_response r = srv_req(&S, "GET", "/v1/conversations/c2", "", NULL);
	char etag[64] = "";
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR_EQ(httpc_header(&r, "ETag", etag, sizeof(etag)), "\"4\"");
	json_t *b = json_loadb(r.body, r.body_len, 0, NULL);
	CHECK_EQ_INT(jint(b, "version"), 4);
	json_t *msgs = json_object_get(b, "messages");
	CHECK_EQ_INT(json_array_size(msgs), 4);
	json_t *m3 = json_array_get(msgs, 2);
	CHECK_STR_EQ(jstr(m3, "role"), "assistant");
	CHECK(json_is_null(json_object_get(m3, "content")));
	CHECK_STR_EQ(jstr(m3, "model"), "gpt-4o");
	CHECK_EQ_INT(jint(json_object_get(b, "usage"), "input_tokens"), 10);
	CHECK_EQ_INT(jint(json_object_get(b, "counts"), "tool_calls"), 1);
	json_decref(b);
	httpc_response_free(&r);
	r = srv_req(&S, "GET", "/v1/conversations/c2", "If-None-Match: \"4\"\r\n", NULL);
	CHECK_EQ_INT(r.status, 304);
	CHECK_EQ_INT(r.body_len, 0);
	httpc_response_free(&r);
	r = srv_req(&S, "GET", "/v1/conversations/c2", "If-None-Match: \"3\"\r\n", NULL);
	CHECK_EQ_INT(r.status, 200);
	httpc_response_free(&r);
	/* time travel */
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/c2?at_version=2", NULL), 200);
	CHECK_EQ_INT(jint(b, "version"), 2);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "messages")), 2);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/c2?at_version=99", NULL), 400);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/nosuch", NULL), 404);
	CHECK_STR_EQ(err_code(b), "not_found");
	json_decref(b);
}

static void test_messages(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/c2/messages", NULL), 200);
	json_t *m = json_object_get(b, "messages");
	CHECK_EQ_INT(json_array_size(m), 4);
	CHECK_STR_EQ(jstr(json_array_get(m, 0), "role"), "system");
	json_t *call = json_array_get(json_object_get(json_array_get(m, 2), "tool_calls"), 0);
	CHECK_STR_EQ(jstr(call, "type"), "function");
	CHECK_STR_EQ(jstr(json_object_get(call, "function"), "name"), "get");
	CHECK(!json_object_get(json_array_get(m, 1), "tool_calls"));
	CHECK_STR_EQ(jstr(json_array_get(m, 3), "tool_call_id"), "k1");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/c2/messages?at_version=1", NULL),
		     200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "messages")), 1);
	json_decref(b);
	httpc_response r =
	    srv_req(&S, "GET", "/v1/conversations/c2/messages", "If-None-Match: \"4\"\r\n", NULL);
	CHECK_EQ_INT(r.status, 304);
	httpc_response_free(&r);
}

static void test_events_page(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/c2/events?limit=3", NULL), 200);
	json_t *ev = json_object_get(b, "events");
	CHECK_EQ_INT(json_array_size(ev), 3);
	CHECK_EQ_INT(jint(b, "next_from_version"), 4);
	CHECK_STR_EQ(jstr(json_array_get(ev, 0), "type"), "message");
	CHECK_EQ_INT(jint(json_array_get(ev, 1), "version"), 2);
	CHECK(!json_object_get(json_array_get(ev, 0), "tenant"));
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/c2/events?from_version=4", NULL),
		     200);
	CHECK(json_is_null(json_object_get(b, "next_from_version")));
	json_decref(b);
	CHECK_EQ_INT(
	    srv_json(&S, &b, "GET", "/v1/conversations/c2/events?direction=backward&limit=2", NULL),
	    200);
	CHECK_EQ_INT(jint(json_array_get(json_object_get(b, "events"), 0), "version"), 4);
	json_decref(b);
}

/* limit defaults to 100 and is capped at 1,000 (not refused) on every paged route. */
static void test_paging_caps(void)
{
	static char body[1100 * 64];
	size_t n = (size_t)snprintf(body, sizeof(body), "{\"events\":[");
	for (int i = 0; i < 1001; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%s" MSG("user", "m"),
				      i ? "," : "");
	snprintf(body + n, sizeof(body) - n, "]}");
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/many/events", body), 201);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/many/events", NULL), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 100);
	CHECK_EQ_INT(jint(b, "next_from_version"), 101);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/many/events?limit=5000", NULL),
		     200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 1000);
	CHECK_EQ_INT(jint(b, "next_from_version"), 1001);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/events?limit=1001", NULL), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 1000);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations?limit=1001", NULL), 200);
	CHECK(json_array_size(json_object_get(b, "conversations")) >= 1);
	json_decref(b);
}

static void test_list_patch_fork(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "PATCH", "/v1/conversations/c1",
			      "{\"title\":\"renamed\",\"status\":\"archived\",\"metadata\":{\"k\":"
			      "\"v\"}}"),
		     200);
	CHECK_STR_EQ(jstr(b, "title"), "renamed");
	CHECK_STR_EQ(jstr(b, "status"), "archived");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations?limit=1", NULL), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "conversations")), 1);
	const char *cursor = json_string_value(json_object_get(b, "next_cursor"));
	CHECK(cursor != NULL);
	if (cursor) {
		json_t *b2 = NULL;
		CHECK_EQ_INT(
		    srv_json(&S, &b2, "GET", fmt("/v1/conversations?cursor=%s", cursor), NULL),
		    200);
		CHECK(json_array_size(json_object_get(b2, "conversations")) >= 1);
		json_decref(b2);
	}
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations?status=archived", NULL), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "conversations")), 1);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations?metadata.user=u1", NULL), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "conversations")), 1);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations/c2/fork",
			      "{\"at_version\":2,\"id\":\"c2f\"}"),
		     201);
	CHECK_STR_EQ(jstr(json_object_get(b, "parent"), "id"), "c2");
	CHECK_EQ_INT(jint(json_object_get(b, "parent"), "version"), 2);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/c2/forks", NULL), 200);
	json_t *f = json_array_get(json_object_get(b, "forks"), 0);
	CHECK_STR_EQ(jstr(f, "id"), "c2f");
	CHECK_EQ_INT(jint(f, "at_version"), 2);
	json_decref(b);
}

static void test_erase(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "DELETE", "/v1/conversations/c2", NULL), 409);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, NULL, "DELETE", "/v1/conversations/c2f", NULL), 204);
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/e1/events",
			      "{\"events\":[" MSG("user", "bye") "]}"),
		     201);
	CHECK_EQ_INT(srv_json(&S, NULL, "DELETE", "/v1/conversations/e1", NULL), 204);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/e1", NULL), 404);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "POST", "/v1/conversations/e1/events",
			      "{\"events\":[" MSG("user", "again") "]}"),
		     410);
	CHECK_STR_EQ(err_code(b), "gone");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, NULL, "DELETE", "/v1/conversations/e1?purge=true", NULL), 204);
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/e1/events",
			      "{\"events\":[" MSG("user", "reborn") "]}"),
		     201);
}

/* One request on a connection of its own, from a thread, after @delay_ms. */
typedef struct later {
	unsigned port;
	int delay_ms;
	const char *method, *path, *body; /* body: JSON or NULL */
	int status;			  /* out: -1 when the request failed */
	char reply[256];		  /* out: the start of the response body */
} later;

static void *request_later(void *arg)
{
	later *l = arg;
	httpc c;
	httpc_response r;
	httpc_init(&c, "127.0.0.1", l->port);
	usleep((useconds_t)l->delay_ms * 1000);
	l->status = httpc_request(&r, &c, l->method, l->path, l->body ? JSON_HDR : "", l->body,
				  l->body ? strlen(l->body) : 0)
			? -1
			: r.status;
	snprintf(l->reply, sizeof(l->reply), "%s", r.body ? r.body : "");
	httpc_response_free(&r);
	httpc_close(&c);
	return NULL;
}

static void test_feed_and_long_poll(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/events?after_position=0&limit=2", NULL), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 2);
	long long last = jint(b, "last_position");
	CHECK_EQ_INT(jint(json_array_get(json_object_get(b, "events"), 1), "position"), last);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/events?after_position=1000000", NULL), 200);
	CHECK_EQ_INT(jint(b, "last_position"), 1000000);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 0);
	json_decref(b);
	/* long poll: a request waiting at the end wakes with the next append */
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/events?after_position=0&limit=1000", NULL), 200);
	long long end = jint(b, "last_position");
	json_decref(b);
	later d = {S.port,
		   200,
		   "POST",
		   "/v1/conversations/poll/events",
		   "{\"events\":[" MSG("user", "wake up") "]}",
		   0,
		   ""};
	pthread_t t;
	pthread_create(&t, NULL, request_later, &d);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ_INT(
	    srv_json(&S, &b, "GET", fmt("/v1/events?after_position=%lld&wait_ms=5000", end), NULL),
	    200);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 1);
	CHECK(waited > 0.1 && waited < 4.0);
	json_decref(b);
	pthread_join(t, NULL);
}

/* Read SSE text from @c until it holds @want frames or 3 s pass. */
static int sse_frames(httpc *c, char *buf, size_t cap, int want)
{
	size_t len = 0;
	int frames = 0;
	for (int i = 0; i < 30 && frames < want; i++) {
		long n = httpc_read_some(c, buf + len, cap - len, 100);
		if (n < 0)
			break;
		len += (size_t)n;
		frames = 0;
		for (const char *p = buf; (p = strstr(p, "\nevent: ")); p++)
			frames++;
	}
	return frames;
}

static void test_sse(void)
{
	httpc c;
	static char buf[1 << 16];
	httpc_init(&c, "127.0.0.1", S.port);
	const char *req = "GET /v1/events/stream?after_position=0 HTTP/1.1\r\nHost: x\r\n\r\n";
	CHECK_EQ_INT(httpc_send_raw(&c, req, strlen(req)), 0);
	CHECK(sse_frames(&c, buf, sizeof(buf), 3) >= 3);
	CHECK_STR_CONTAINS(buf, "text/event-stream");
	CHECK_STR_CONTAINS(buf, "id: 1\n");
	CHECK_STR_CONTAINS(buf, "event: conversation_created\ndata: {");
	httpc_close(&c);
	/* a conversation's stream, live only: sees the next append to it and nothing else */
	req = "GET /v1/conversations/live/events/stream HTTP/1.1\r\nHost: x\r\n\r\n";
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/live/events",
			      "{\"events\":[" MSG("user", "before") "]}"),
		     201);
	CHECK_EQ_INT(httpc_send_raw(&c, req, strlen(req)), 0);
	usleep(200 * 1000);
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/other/events",
			      "{\"events\":[" MSG("user", "elsewhere") "]}"),
		     201);
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/live/events",
			      "{\"events\":[" MSG("user", "after") "]}"),
		     201);
	CHECK_EQ_INT(sse_frames(&c, buf, sizeof(buf), 1), 1);
	CHECK_STR_CONTAINS(buf, "\"content\":\"after\"");
	CHECK(!strstr(buf, "before") && !strstr(buf, "elsewhere"));
	httpc_close(&c);
}

static void test_usage_and_metrics(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/usage?group_by=model", NULL), 200);
	json_t *row = json_array_get(json_object_get(b, "rows"), 0);
	CHECK_STR_EQ(jstr(row, "key"), "gpt-4o");
	CHECK_EQ_INT(jint(row, "input_tokens"), 10);
	CHECK_EQ_INT(jint(row, "responses"), 1);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/usage?group_by=day&from=2000-01-01", NULL), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "rows")), 1);
	json_decref(b);
	httpc_response r = srv_req(&S, "GET", "/metrics", "", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR_CONTAINS(r.body, "convstore_http_requests_total{route=\"/v1/conversations/{id}/"
				   "events\",method=\"POST\",status=\"201\"}");
	CHECK_STR_CONTAINS(r.body, "convstore_http_request_duration_seconds_bucket{");
	CHECK_STR_CONTAINS(r.body, "convstore_append_commit_seconds_count ");
	CHECK_STR_CONTAINS(r.body, "convstore_map_used_bytes ");
	CHECK_STR_CONTAINS(r.body, "convstore_tokens_total{model=\"gpt-4o\",kind=\"input\"} 10");
	CHECK_STR_CONTAINS(r.body, "convstore_cost_usd_total{model=\"gpt-4o\"} 0.5");
	httpc_response_free(&r);

	/* A client that leaves mid-body ends its request without an answer (logged 499): counted
	 * as status "other", which once made /metrics read past its status table (found by the
	 * HTTP fuzz target; UBSan stops the ASan build's server on it) */
	httpc gone;
	httpc_init(&gone, "127.0.0.1", S.port);
	const char *half = "POST /v1/conversations/gone/events HTTP/1.1\r\nHost: x\r\n"
			   "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ev";
	CHECK_EQ_INT(httpc_send_raw(&gone, half, strlen(half)), 0);
	usleep(100 * 1000);
	httpc_close(&gone);
	usleep(200 * 1000);
	r = srv_req(&S, "GET", "/metrics", "", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR_CONTAINS(r.body, "convstore_http_requests_total{route=\"/v1/conversations/{id}/"
				   "events\",method=\"POST\",status=\"other\"} 1");
	httpc_response_free(&r);
}

static void test_protobuf(void)
{
	Convstore__V1__Message m = CONVSTORE__V1__MESSAGE__INIT;
	Convstore__V1__Event ev = CONVSTORE__V1__EVENT__INIT;
	Convstore__V1__Event *evs[] = {&ev};
	Convstore__V1__AppendRequest req = CONVSTORE__V1__APPEND_REQUEST__INIT;
	m.role = "user";
	m.content = "binary";
	ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE;
	ev.message = &m;
	req.events = evs;
	req.n_events = 1;
	uint8_t buf[256];
	size_t len = protobuf_c_message_pack(&req.base, buf);
	httpc_response r;
	const char *pb =
	    "Content-Type: application/x-protobuf\r\nAccept: application/x-protobuf\r\n";
	CHECK_EQ_INT(httpc_request(&r, &S.c, "POST", "/v1/conversations/pb/events", pb, buf, len),
		     0);
	CHECK_EQ_INT(r.status, 201);
	Convstore__V1__AppendResponse *ar =
	    convstore__v1__append_response__unpack(NULL, r.body_len, (const uint8_t *)r.body);
	CHECK(ar && ar->first_version == 1 && !strcmp(ar->conversation_id, "pb"));
	if (ar)
		convstore__v1__append_response__free_unpacked(ar, NULL);
	httpc_response_free(&r);
	r = srv_req(&S, "GET", "/v1/conversations/pb", "Accept: application/x-protobuf\r\n", NULL);
	char ct[64];
	CHECK_STR_EQ(httpc_header(&r, "Content-Type", ct, sizeof(ct)), "application/x-protobuf");
	Convstore__V1__ConversationState *st =
	    convstore__v1__conversation_state__unpack(NULL, r.body_len, (const uint8_t *)r.body);
	CHECK(st && st->n_messages == 1 && !strcmp(st->messages[0]->content, "binary"));
	if (st)
		convstore__v1__conversation_state__free_unpacked(st, NULL);
	httpc_response_free(&r);
	/* errors are JSON whatever was asked for */
	r = srv_req(&S, "GET", "/v1/conversations/nosuch", "Accept: application/x-protobuf\r\n",
		    NULL);
	CHECK_EQ_INT(r.status, 404);
	CHECK_STR_EQ(httpc_header(&r, "Content-Type", ct, sizeof(ct)), "application/json");
	httpc_response_free(&r);
}

static void test_gzip(void)
{
	static char big[8192];
	memset(big, 'z', 4000);
	big[4000] = '\0';
	CHECK_EQ_INT(
	    srv_json(
		&S, NULL, "POST", "/v1/conversations/gz/events",
		fmt("{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"%s\"}}]}", big)),
	    201);
	httpc_response plain = srv_req(&S, "GET", "/v1/conversations/gz/events", "", NULL);
	httpc_response z = srv_req(&S, "GET", "/v1/conversations/gz/events",
				   "Accept-Encoding: br, gzip\r\n", NULL);
	char v[64];
	CHECK_STR_EQ(httpc_header(&z, "Content-Encoding", v, sizeof(v)), "gzip");
	CHECK_STR_EQ(httpc_header(&z, "Vary", v, sizeof(v)), "Accept-Encoding");
	CHECK(!httpc_header(&plain, "Content-Encoding", v, sizeof(v)));
	CHECK(z.body_len < plain.body_len);
	static char out[65536];
	z_stream s = {0};
	inflateInit2(&s, 15 + 16);
	s.next_in = (Bytef *)z.body;
	s.avail_in = (uInt)z.body_len;
	s.next_out = (Bytef *)out;
	s.avail_out = sizeof(out);
	CHECK_EQ_INT(inflate(&s, Z_FINISH), Z_STREAM_END);
	CHECK_MEM_EQ(out, s.total_out, plain.body, plain.body_len);
	inflateEnd(&s);
	httpc_response_free(&plain);
	httpc_response_free(&z);
	/* small bodies are not worth it */
	z = srv_req(&S, "GET", "/healthz", "Accept-Encoding: gzip\r\n", NULL);
	CHECK(!httpc_header(&z, "Content-Encoding", v, sizeof(v)));
	httpc_response_free(&z);
}

static void test_http_errors(void)
{
	json_t *b = NULL;
	httpc_response r = srv_req(&S, "PUT", "/v1/conversations/c1", "", NULL);
	char allow[64];
	CHECK_EQ_INT(r.status, 405);
	CHECK_STR_EQ(httpc_header(&r, "Allow", allow, sizeof(allow)), "GET, PATCH, DELETE");
	httpc_response_free(&r);
	r = srv_req(&S, "POST", "/v1/conversations/c1/events", "Content-Type: text/plain\r\n", "x");
	CHECK_EQ_INT(r.status, 415);
	b = json_loadb(r.body, r.body_len, 0, NULL);
	CHECK_STR_EQ(err_code(b), "unsupported_media_type");
	json_decref(b);
	httpc_response_free(&r);
	/* 413 from Content-Length alone, before a byte of the body is sent */
	const char *huge = "POST /v1/conversations/c1/events HTTP/1.1\r\nHost: x\r\n"
			   "Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n";
	httpc c;
	httpc_init(&c, "127.0.0.1", S.port);
	CHECK_EQ_INT(httpc_send_raw(&c, huge, strlen(huge)), 0);
	CHECK_EQ_INT(httpc_read_response(&r, &c), 0);
	CHECK_EQ_INT(r.status, 413);
	httpc_response_free(&r);
	httpc_close(&c);
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v2/nothing", NULL), 404);
	json_decref(b);
	/* an id of quote, backslash, control and non-UTF-8 bytes: 400, and a log line (test_log) */
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/a%22b%5C%01%FF", NULL), 400);
	json_decref(b);
}

#define TRACE_ID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define OWN_TRACE "11111111111111111111111111111111"

/* traceparent goes on every event without its own trace; a malformed one is ignored. */
static void test_traceparent(void)
{
	json_t *b = NULL;
	httpc_response r =
	    srv_req(&S, "POST", "/v1/conversations/traced/events",
		    JSON_HDR "traceparent: 00-" TRACE_ID "-00f067aa0ba902b7-01\r\n",
		    "{\"events\":[" MSG("user", "a") ",{\"trace\":{\"trace_id\":\"" OWN_TRACE "\","
						     "\"span_id\":\"1111111111111111\"}," MEMBER(
							 "user", "b") "}]}");
	CHECK_EQ_INT(r.status, 201);
	httpc_response_free(&r);
	/* malformed: no flags, version ff, upper case, version 00 with more after the flags */
	static const char *const bad[] = {"00-" TRACE_ID "-00f067aa0ba902b7",
					  "ff-" TRACE_ID "-00f067aa0ba902b7-01",
					  "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
					  "00-" TRACE_ID "-00f067aa0ba902b7-01-x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = srv_req(&S, "POST", "/v1/conversations/traced/events",
			    fmt(JSON_HDR "traceparent: %s\r\n", bad[i]),
			    "{\"events\":[" MSG("user", "c") "]}");
		CHECK_EQ_INT(r.status, 201);
		httpc_response_free(&r);
	}
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/traced/events", NULL), 200);
	json_t *ev = json_object_get(b, "events");
	check_json_is(json_object_get(json_array_get(ev, 0), "trace"),
		      "{\"trace_id\":\"" TRACE_ID "\",\"span_id\":\"00f067aa0ba902b7\"}");
	CHECK_STR_EQ(jstr(json_object_get(json_array_get(ev, 1), "trace"), "trace_id"), OWN_TRACE);
	CHECK_EQ_INT(json_array_size(ev), 6);
	for (size_t i = 2; i < 6; i++)
		CHECK(!json_object_get(json_array_get(ev, i), "trace"));
	json_decref(b);
}

/* After the server stopped: one JSON line per request, with the fields API.md names. */
static void test_log(void)
{
	char path[PATH_MAX + 8], line[4096];
	snprintf(path, sizeof(path), "%s/log", S.dir);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	int requests = 0, appends = 0, traced = 0, errors = 0, nasty = 0;
	while (f && fgets(line, sizeof(line), f)) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		if (!CHECK(o != NULL))
			fprintf(stderr, "log line: %.300s (%s)\n", line, je.text);
		if (!o || strcmp(jstr(o, "msg"), "request") != 0) {
			json_decref(o);
			continue;
		}
		requests++;
		CHECK(json_is_integer(json_object_get(o, "duration_us")));
		CHECK(!json_object_get(o, "duration_ms"));
		CHECK(json_is_integer(json_object_get(o, "status")));
		CHECK(*jstr(o, "method") && *jstr(o, "route") && *jstr(o, "ts"));
		if (!strcmp(jstr(o, "route"), "/v1/conversations/{id}/events") &&
		    jint(o, "status") == 201) {
			appends++;
			CHECK_STR_EQ(jstr(o, "tenant"), "default");
			CHECK(*jstr(o, "conversation"));
		}
		traced += !strcmp(jstr(o, "trace_id"), TRACE_ID);
		nasty += !strcmp(jstr(o, "conversation"), "a\"b\\\x01?");
		if (jint(o, "status") >= 400) {
			errors++;
			CHECK(*jstr(o, "error"));
			CHECK_STR_EQ(jstr(o, "level"), jint(o, "status") >= 500 ? "error" : "warn");
		}
		json_decref(o);
	}
	if (f)
		fclose(f);
	CHECK(requests > 50 && appends > 5 && errors > 5);
	CHECK_EQ_INT(traced, 1);
	CHECK_EQ_INT(nasty, 1);
}

/* SIGTERM ends a long poll and an SSE stream in flight, and the server exits 0 at once. */
static void test_drain(void)
{
	srv d;
	srv_start(&d, NULL);
	later lp = {d.port, 0, "GET", "/v1/events?wait_ms=30000", NULL, 0, ""};
	later sse = {d.port, 0, "GET", "/v1/events/stream", NULL, 0, ""};
	pthread_t poll_thread, sse_thread;
	pthread_create(&poll_thread, NULL, request_later, &lp);
	pthread_create(&sse_thread, NULL, request_later, &sse);
	usleep(300 * 1000);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ_INT(srv_stop(&d), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(poll_thread, NULL);
	pthread_join(sse_thread, NULL);
	CHECK(t1.tv_sec - t0.tv_sec < 5);
	CHECK_EQ_INT(lp.status, 200);
	CHECK_STR_EQ(lp.reply, "{\"events\":[],\"last_position\":0}");
	CHECK_EQ_INT(sse.status, 200);
}

/* The server applies retention policies every --retention-interval seconds: a conversation
 * created with max_events 2 keeps its 2 newest events, and its state stays whole. */
static void test_retention_sweep(void)
{
	srv r;
	const char *args[] = {"--retention-interval", "1", NULL};
	srv_start(&r, args);
	CHECK_EQ_INT(srv_json(&r, NULL, "POST", "/v1/conversations",
			      "{\"id\":\"kept\",\"retention\":{\"max_events\":2}}"),
		     201);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(srv_json(&r, NULL, "POST", "/v1/conversations/kept/events",
				      "{\"events\":[{\"message\":{\"role\":\"user\","
				      "\"content\":\"hi\"}}]}"),
			     201);
	json_t *b = NULL;
	size_t n = 6;
	for (int tries = 0; tries < 50 && n > 2; tries++) { /* up to 5 s for a sweep to run */
		usleep(100 * 1000);
		CHECK_EQ_INT(
		    srv_json(&r, &b, "GET", "/v1/conversations/kept/events?limit=10", NULL), 200);
		n = json_array_size(json_object_get(b, "events"));
		if (n == 2)
			CHECK_EQ_INT(
			    jint(json_array_get(json_object_get(b, "events"), 0), "version"), 5);
		json_decref(b);
	}
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(srv_json(&r, &b, "GET", "/v1/conversations/kept", NULL), 200);
	CHECK_EQ_INT(jint(json_object_get(b, "counts"), "events"), 6);
	CHECK_EQ_INT(jint(b, "first_version"), 5);
	json_decref(b);
	CHECK_EQ_INT(srv_stop(&r), 0);
}

/* A map capped at 1 MiB fills up: 507 storage_full, and reads still work. */
static void test_full(void)
{
	srv small;
	const char *args[] = {"--max-map", "1048576", NULL};
	srv_start(&small, args);
	static char body[300000];
	int status = 0;
	srand(7); /* incompressible text, so that records stay large */
	for (int i = 0; i < 40 && status != 507; i++) {
		int n = snprintf(body, sizeof(body),
				 "{\"events\":[{\"extension\":{\"type\":\"blob\",\"data\":\"");
		while (n < (int)sizeof(body) - 10)
			body[n++] = (char)('a' + rand() % 26);
		snprintf(body + n, sizeof(body) - (size_t)n, "\"}}]}");
		status = srv_json(&small, NULL, "POST", "/v1/conversations/fill/events", body);
	}
	CHECK_EQ_INT(status, 507);
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&small, &b, "GET", "/v1/conversations/fill/events?limit=1", NULL),
		     200);
	json_decref(b);
	CHECK_EQ_INT(srv_stop(&small), 0);
}

int main(void)
{
	srv_start(&S, NULL);
	CHECK_RUN(test_present);
	CHECK_RUN(test_health);
	CHECK_RUN(test_create);
	CHECK_RUN(test_append);
	CHECK_RUN(test_state_and_etag);
	CHECK_RUN(test_messages);
	CHECK_RUN(test_events_page);
	CHECK_RUN(test_list_patch_fork);
	CHECK_RUN(test_erase);
	CHECK_RUN(test_feed_and_long_poll);
	CHECK_RUN(test_sse);
	CHECK_RUN(test_usage_and_metrics);
	CHECK_RUN(test_protobuf);
	CHECK_RUN(test_gzip);
	CHECK_RUN(test_http_errors);
	CHECK_RUN(test_traceparent);
	CHECK_RUN(test_paging_caps);
	CHECK_RUN(test_full);
	CHECK_RUN(test_retention_sweep);
	CHECK_RUN(test_drain);
	CHECK_EQ_INT(srv_stop_keep(&S), 0);
	CHECK_RUN(test_log);
	nftw(S.dir, srv_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return check_finish();
}
