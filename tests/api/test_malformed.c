/*
 * test_malformed.c - a catalogue of malformed requests against one convstored (limits lowered
 * by flags so that "too large" is cheap): bad JSON, wrong types, bad UTF-8, unknown fields, bad
 * protobuf, huge and streamed bodies, bad ids (percent-encoded slashes, dots, NULs), bad query
 * strings, wrong methods and media types. Each must get its exact 4xx status and a JSON error
 * body with the right code; afterwards the server still answers and the store is unchanged
 * (the global feed's last position and one conversation's events, compared byte for byte).
 */
#include "../check.h"
#include "server.h"

static srv S;

#define EVM    "\"message\":{\"role\":\"user\",\"content\":\"hi\"}"
#define EV     "{" EVM "}"
#define PB     "Content-Type: application/x-protobuf\r\n"
#define APPEND "/v1/conversations/m1/events"

typedef struct bad {
	const char *method, *path, *headers, *body;
	int status;
	const char *code;
} bad;

#define E400 400, "invalid_argument"
#define E404 404, "not_found"
#define E405 405, "method_not_allowed"
#define E413 413, "payload_too_large"
#define E415 415, "unsupported_media_type"

static const bad catalogue[] = {
    /* bodies that are not the message they claim to be */
    {"POST", APPEND, JSON_HDR, "{", E400},
    {"POST", APPEND, JSON_HDR, "[]", E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":\"x\"}", E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":[]}", E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":[" EV "],\"bogus\":1}", E400},
    {"POST", APPEND, JSON_HDR,
     "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"x\"},\"colour\":\"red\"}]}", E400},
    {"POST", APPEND, JSON_HDR,
     "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"x\"},\"tool_call\":{\"id\":\"a\"}}"
     "]}",
     E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":[{}]}", E400},
    {"POST", APPEND, JSON_HDR,
     "{\"events\":[{\"message\":{\"role\":\"robot\",\"content\":\"x\"}}]}", E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":42}}]}",
     E400},
    {"POST", APPEND, JSON_HDR, "{\"expected_version\":\"abc\",\"events\":[" EV "]}", E400},
    {"POST", APPEND, JSON_HDR, "{\"expected_version\":-1,\"events\":[" EV "]}", E400},
    {"POST", APPEND, JSON_HDR, "{\"expected_version\":1e30,\"events\":[" EV "]}", E400},
    {"POST", APPEND, JSON_HDR,
     "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"\xff\xfe\"}}]}", E400},
    {"POST", APPEND, JSON_HDR,
     "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"\\ud800\"}}]}", E400},
    {"POST", APPEND, JSON_HDR,
     "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"a\\u0000b\"}}]}", E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":[{\"version\":7," EVM "}]}", E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":[{\"tool_result\":{\"call_id\":\"nope\"}}]}", E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":[{\"occurred_at\":\"yesterday\"," EVM "}]}", E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":[{\"metadata\":{\"k\":1}," EVM "}]}", E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":[" EV "],\"events\":[" EV "]}", E400},
    {"POST", APPEND, JSON_HDR, "{\"events\":[{\"id\":\"has space\"," EVM "}]}", E400},
    {"POST", APPEND, PB, "\xff\xff\xff\xff\x0f", E400},
    {"POST", APPEND, PB, "\x12\x05garba", E400},
    {"POST", APPEND, "Content-Type: text/plain\r\n", "{\"events\":[" EV "]}", E415},
    {"POST", APPEND, "Content-Type: application/xml\r\n", "<events/>", E415},
    {"POST", APPEND, JSON_HDR "If-Match: \"abc\"\r\n", "{\"events\":[" EV "]}", E400},
    {"POST", APPEND, JSON_HDR "If-Match: \"1\"\r\n", "{\"expected_version\":2,\"events\":[" EV "]}",
     E400},
    {"POST", "/v1/conversations", JSON_HDR, "{\"id\":\"a/b\"}", E400},
    {"POST", "/v1/conversations", JSON_HDR, "{\"id\":\"..\"}", E400},
    {"POST", "/v1/conversations", JSON_HDR, "{\"name\":\"x\"}", E400},
    {"POST", "/v1/conversations/m1/fork", JSON_HDR, "{}", E400},
    {"POST", "/v1/conversations/m1/fork", JSON_HDR, "{\"at_version\":\"two\"}", E400},
    {"PATCH", "/v1/conversations/m1", JSON_HDR, "{\"status\":7}", E400},
    {"PATCH", "/v1/conversations/m1", JSON_HDR, "{\"title\":[\"x\"]}", E400},
    /* ids: percent-decoded, then 1-128 of A-Z a-z 0-9 . _ : - and not . or .. */
    {"GET", "/v1/conversations/a%2Fb/events", "", NULL, E400},
    {"GET", "/v1/conversations/../events", "", NULL, E400},
    {"GET", "/v1/conversations/%2E%2E/events", "", NULL, E400},
    {"GET", "/v1/conversations/..%2F..%2Fetc%2Fpasswd", "", NULL, E400},
    {"GET", "/v1/conversations/a%00b", "", NULL, E400},
    {"GET", "/v1/conversations/a%20b", "", NULL, E400},
    {"GET", "/v1/conversations/a%G1", "", NULL, E400},
    {"GET", "/v1/conversations/caf%C3%A9", "", NULL, E400},
    {"GET", "/v1/conversations//events", "", NULL, E400},
    {"GET", "/v1/conversations/a\\b", "", NULL, E400},
    /* query strings */
    {"GET", "/v1/events?foo=1", "", NULL, E400},
    {"GET", "/v1/events?limit=0", "", NULL, E400},
    {"GET", "/v1/events?limit=99999999999999999999999", "", NULL, E400},
    {"GET", "/v1/events?limit=", "", NULL, E400},
    {"GET", "/v1/events?limit=abc", "", NULL, E400},
    {"GET", "/v1/events?limit=-1", "", NULL, E400},
    {"GET", "/v1/events?limit=1&limit=2", "", NULL, E400},
    {"GET", "/v1/events?after_position=1e3", "", NULL, E400},
    {"GET", "/v1/events?wait_ms=999999", "", NULL, E400},
    {"GET", "/v1/events?after_position=99999999999999999999999", "", NULL, E400},
    {"GET", "/v1/conversations/m1/events?direction=sideways", "", NULL, E400},
    {"GET", "/v1/conversations/m1?at_version=x", "", NULL, E400},
    {"GET", "/v1/conversations/m1?at_version=0", "", NULL, E400},
    {"GET", "/v1/conversations?status=deleted", "", NULL, E400},
    {"GET", "/v1/conversations?updated_after=soon", "", NULL, E400},
    {"GET", "/v1/usage?group_by=week", "", NULL, E400},
    {"GET", "/v1/usage?from=2024-13-01", "", NULL, E400},
    {"GET", "/v1/usage?to=2023-02-29", "", NULL, E400},
    {"DELETE", "/v1/conversations/m1?purge=maybe", "", NULL, E400},
    {"GET", "/v1/events/stream", "Last-Event-ID: yesterday\r\n", NULL, E400},
    /* methods and paths */
    {"PUT", "/v1/conversations/m1", "", NULL, E405},
    {"DELETE", "/v1/events", "", NULL, E405},
    {"GET", "/v1/conversations/m1/fork", "", NULL, E405},
    {"POST", "/healthz", JSON_HDR, "{}", E405},
    {"POST", "/v1/nothing", JSON_HDR, "{}", E404},
    {"GET", "/v1/conversations/m1/events/extra", "", NULL, E404},
    {"GET", "/v1", "", NULL, E404},
};

/* What must not change: the feed's end and m1's events. */
static char *snapshot(void)
{
	httpc_response a = srv_req(&S, "GET", "/v1/events?after_position=0&limit=1000", "", NULL);
	httpc_response b = srv_req(&S, "GET", "/v1/conversations/m1/events?limit=1000", "", NULL);
	size_t n = a.body_len + b.body_len + 2;
	char *s = malloc(n);
	snprintf(s, n, "%s|%s", a.body ? a.body : "", b.body ? b.body : "");
	httpc_response_free(&a);
	httpc_response_free(&b);
	return s;
}

static void check_one(const bad *c, size_t i)
{
	httpc_response r = srv_req(&S, c->method, c->path, c->headers, c->body);
	json_t *body = r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
	char ct[64] = "";
	httpc_header(&r, "Content-Type", ct, sizeof(ct));
	if (!CHECK_EQ_INT(r.status, c->status) || !CHECK_STR_EQ(err_code(body), c->code) ||
	    !CHECK_STR_EQ(ct, "application/json") ||
	    !CHECK(strlen(jstr(json_object_get(body, "error"), "message")) > 0))
		fprintf(stderr, "  case %zu: %s %s %.60s -> %d %.200s\n", i, c->method, c->path,
			c->body ? c->body : "", r.status, r.body ? r.body : "");
	json_decref(body);
	httpc_response_free(&r);
}

static void test_catalogue(void)
{
	size_t n = sizeof(catalogue) / sizeof(catalogue[0]);
	CHECK(n >= 40);
	for (size_t i = 0; i < n; i++)
		check_one(&catalogue[i], i);
}

/* Cases that need bytes a table row cannot hold. */
static void test_limits(void)
{
	static char big[8192];
	memset(big, 'x', 5000);
	big[5000] = '\0';
	/* one event over --max-event 4096 */
	bad c = {"POST", APPEND, JSON_HDR, NULL, E413};
	char *body = malloc(20000);
	snprintf(body, 20000, "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"%s\"}}]}",
		 big);
	c.body = body;
	check_one(&c, 1000);
	/* 51 events over --max-events 50 */
	size_t n = (size_t)snprintf(body, 20000, "{\"events\":[");
	for (int i = 0; i < 51; i++)
		n += (size_t)snprintf(body + n, 20000 - n, "%s" EV, i ? "," : "");
	snprintf(body + n, 20000 - n, "]}");
	check_one(&c, 1001);
	/* metadata: 65 pairs */
	n = (size_t)snprintf(body, 20000, "{\"events\":[{\"metadata\":{");
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(body + n, 20000 - n, "%s\"k%d\":\"v\"", i ? "," : "", i);
	snprintf(body + n, 20000 - n, "},%s]}", EV + 1);
	bad meta = {"POST", APPEND, JSON_HDR, body, E400};
	check_one(&meta, 1002);
	/* JSON nested deeper than the codec allows */
	n = (size_t)snprintf(body, 20000, "{\"events\":[{\"extension\":{\"type\":\"t\",\"data\":");
	for (int i = 0; i < 100; i++)
		body[n++] = '[';
	for (int i = 0; i < 100; i++)
		body[n++] = ']';
	snprintf(body + n, 20000 - n, "}}]}");
	check_one(&meta, 1003);
	free(body);
}

/* Bodies over --max-body: by Content-Length (refused before the body), and streamed. */
static void test_huge_bodies(void)
{
	httpc c;
	httpc_response r;
	httpc_init(&c, "127.0.0.1", S.port);
	const char *head =
	    "POST " APPEND " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	    "Content-Length: 200000\r\n\r\n";
	CHECK_EQ_INT(httpc_send_raw(&c, head, strlen(head)), 0);
	CHECK_EQ_INT(httpc_read_response(&r, &c), 0);
	CHECK_EQ_INT(r.status, 413);
	httpc_response_free(&r);
	httpc_close(&c);
	const char *chunked = "POST " APPEND " HTTP/1.1\r\nHost: x\r\nContent-Type: "
			      "application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
	CHECK_EQ_INT(httpc_send_raw(&c, chunked, strlen(chunked)), 0);
	static char chunk[16384 + 16];
	int n = snprintf(chunk, sizeof(chunk), "4000\r\n");
	memset(chunk + n, ' ', 16384);
	memcpy(chunk + n + 16384, "\r\n", 2);
	for (int i = 0; i < 10; i++)
		httpc_send_raw(&c, chunk, (size_t)n + 16384 + 2);
	httpc_send_raw(&c, "0\r\n\r\n", 5);
	CHECK_EQ_INT(httpc_read_response(&r, &c), 0);
	CHECK_EQ_INT(r.status, 413);
	json_t *b = json_loadb(r.body, r.body_len, 0, NULL);
	CHECK_STR_EQ(err_code(b), "payload_too_large");
	json_decref(b);
	httpc_response_free(&r);
	httpc_close(&c);
}

int main(void)
{
	const char *args[] = {"--max-body", "100000", "--max-events", "50", "--max-event",
			      "4096",	    NULL};
	srv_start(&S, args);
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", APPEND, "{\"events\":[" EV "," EV "]}"), 201);
	char *before = snapshot();
	CHECK_RUN(test_catalogue);
	CHECK_RUN(test_limits);
	CHECK_RUN(test_huge_bodies);
	CHECK_EQ_INT(srv_json(&S, NULL, "GET", "/healthz", NULL), 200);
	char *after = snapshot();
	CHECK_STR_EQ(after, before);
	free(before);
	free(after);
	CHECK_EQ_INT(srv_stop(&S), 0);
	return check_finish();
}
