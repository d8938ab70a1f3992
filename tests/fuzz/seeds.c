/*
 * tests/fuzz/seeds.c - writes the seed corpus of one fuzz target: `fuzz_seeds KIND DIR` with
 * KIND json, event, record, cursor or http (whole requests). tests/fuzz/run.sh calls it before each
 * run, into the build folder; nothing it writes is committed.
 *
 * Seeds are real inputs in each target's input format (fuzz.h: a selector byte, then bytes):
 *   - a handful of requests written here after the examples of API.md, one per payload type and
 *     request body, so every decoder branch has a starting point even without the corpus;
 *   - when $CONVSTORE_CORPUS is there (tests/meson.build sets it to ../shared/corpus), the
 *     tau-bench conversations as events through the tests' one mapping (tests/store/corpus.h),
 *     and the OpenHands event streams as extension data, whatever their shape.
 * JSON seeds become protobuf seeds by the codec itself, and records by the store's record
 * writer (deflated and plain), so each target starts from what the layer before it produces.
 */
#include <errno.h>
#include <glob.h>
#include <sys/stat.h>

#include "convstore/pbjson.h"
#include "internal.h"

#include "fuzz.h"

#include "../store/corpus.h"

#define MAX_CORPUS_CONVS 24 /* each conversation gives a batch and its events */

static const char *const samples[] = {
    "{\"id\":\"0f8c6a1e-7d3c-4e0e-9a51-2b7c1c0d9e11\",\"occurred_at\":\"2026-11-26T21:00:00Z\","
    "\"actor\":\"billing-agent\",\"correlation_id\":\"req-42\",\"causation_id\":\"evt-17\","
    "\"metadata\":{\"user_id\":\"u1\"},\"message\":{\"role\":\"user\",\"content\":\"Book me a "
    "flight\",\"name\":\"mia\"}}",
    "{\"message\":{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"text\":\"hi\"},{\"type\":"
    "\"image_url\",\"url\":\"https://x/y.png\"},{\"type\":\"json\",\"json\":{\"a\":[1,2.5,null,"
    "true]}}]}}",
    "{\"model_response\":{\"model\":\"gpt-4o\",\"tool_calls\":[{\"id\":\"call_1\",\"name\":"
    "\"search\",\"arguments\":\"{\\\"to\\\":\\\"LIS\\\"}\"}],\"finish_reason\":\"tool_calls\","
    "\"usage\":{\"input_tokens\":120,\"output_tokens\":15,\"cached_tokens\":4,"
    "\"reasoning_tokens\":2},\"cost_usd\":0.0012,\"latency_ms\":830,\"request_id\":\"r1\"}}",
    "{\"tool_call\":{\"id\":\"call_2\",\"name\":\"lookup\",\"arguments\":\"{}\"}}",
    "{\"toolResult\":{\"callId\":\"call_1\",\"name\":\"search\",\"output\":\"3 flights\","
    "\"isError\":true,\"durationMs\":\"41\"}}",
    "{\"turn_started\":{\"turn_id\":\"t1\"},\"trace\":{\"trace_id\":"
    "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\"}}",
    "{\"turn_ended\":{\"turn_id\":\"t1\",\"reason\":\"done\"},\"occurred_at\":"
    "\"2026-11-26T21:00:00.123456789+01:30\"}",
    "{\"extension\":{\"type\":\"acme.v1.Note\",\"data\":{\"k\":\"v\",\"n\":[1e3,-0.5]}}}",
    "{\"extension\":{\"type\":\"acme.v1.Blob\",\"bytes\":\"AAECAwQ=\"}}",
};

static int written;

static void write_seed(const char *dir, uint8_t selector, const void *data, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/seed-%04d", dir, written++);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(&selector, 1, 1, f) != 1 || (len && fwrite(data, 1, len, f) != len)) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

/* A message as its JSON text (json), protobuf (event) or record (record) seed. */
static void write_message(const char *kind, const char *dir, const ProtobufCMessage *m)
{
	bool batch = m->descriptor == &convstore__v1__append_request__descriptor;
	cs_error err = CS_ERROR_INIT;
	if (!strcmp(kind, "json")) {
		char *text = cs_json_encode_text(m, 0, &err);
		if (text)
			write_seed(dir, batch ? FUZZ_JSON_APPEND : FUZZ_JSON_EVENT, text,
				   strlen(text));
		free(text);
		return;
	}
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		exit(1);
	protobuf_c_message_pack(m, buf);
	if (!strcmp(kind, "event"))
		write_seed(dir, batch ? FUZZ_EVENT_BATCH : 0, buf, len);
	free(buf);
	if (strcmp(kind, "record") != 0 || batch)
		return;
	for (size_t deflate_min = 0; deflate_min <= 1; deflate_min++) { /* deflated, then not */
		unsigned char *rec;
		size_t rec_len;
		if (cs_record_pack_min(&rec, &rec_len, m, deflate_min ? SIZE_MAX : 0, &err))
			exit(1);
		write_seed(dir, FUZZ_RECORD_FIX_CRC | 2u << 1, rec, rec_len); /* 1 MiB cap */
		free(rec);
	}
}

/* The events as one AppendRequest and each on its own. */
static void write_events(const char *kind, const char *dir, Convstore__V1__Event **events, size_t n)
{
	Convstore__V1__AppendRequest req = CONVSTORE__V1__APPEND_REQUEST__INIT;
	req.events = events;
	req.n_events = n;
	write_message(kind, dir, &req.base);
	for (size_t i = 0; i < n; i++)
		write_message(kind, dir, &events[i]->base);
}

/* Head records (every read opens one): a new conversation's, and one with @events folded in. */
static void head_seeds(const char *dir, Convstore__V1__Event **events, size_t n)
{
	Convstore__V1__Head *head;
	if (cs_head_new(&head, "t", "c1", NULL) != CS_OK)
		exit(1);
	write_message("record", dir, &head->base);
	Convstore__V1__Timestamp now = CONVSTORE__V1__TIMESTAMP__INIT;
	now.seconds = 1795700000;
	for (size_t i = 0; i < n; i++) {
		bool folded = fuzz_fold_one(head, events[i], &now);
		events[i]->recorded_at = NULL; /* it pointed into this frame */
		if (!folded)
			break;
	}
	write_message("record", dir, &head->base);
	cs_head_free(head);
}

static void samples_seeds(const char *kind, const char *dir)
{
	size_t n = sizeof(samples) / sizeof(samples[0]);
	Convstore__V1__Event *events[sizeof(samples) / sizeof(samples[0])];
	for (size_t i = 0; i < n; i++) {
		cs_error err = CS_ERROR_INIT;
		if (cs_json_decode_text((ProtobufCMessage **)&events[i],
					&convstore__v1__event__descriptor, samples[i],
					strlen(samples[i]), &err)) {
			fprintf(stderr, "sample %zu: %s\n", i, err.msg);
			exit(1);
		}
	}
	write_events(kind, dir, events, n);
	if (!strcmp(kind, "record"))
		head_seeds(dir, events, n);
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&events[i]->base, NULL);
	if (strcmp(kind, "json") != 0)
		return;
	static const char *const others[][2] = {
	    {"\x02", "{\"id\":\"c1\",\"title\":\"Trip\",\"metadata\":{\"team\":\"a\"}}"},
	    {"\x03", "{\"title\":null,\"metadata\":{\"team\":\"\"},\"status\":\"archived\"}"},
	    {"\x04", "{\"at_version\":7,\"id\":\"c1-b\",\"metadata\":{\"why\":\"retry\"}}"},
	    {"\x05", "\"9999-12-31T23:59:59.999999999Z\""},
	    {"\x06", "[{\"a\":{\"b\":[[],{}]}},\"\\u00e9\\ud83d\\ude00\",-1.5e-300]"},
	    {"\x01", "{\"expected_version\":\"3\",\"events\":[{\"message\":{\"role\":\"system\","
		     "\"content\":\"\"}}]}"},
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		write_seed(dir, (uint8_t)others[i][0][0], others[i][1], strlen(others[i][1]));
}

static void corpus_seeds(const char *kind, const char *dir)
{
	ev_arena a = EV_ARENA_INIT;
	corpus *c = calloc(1, sizeof(*c));
	if (c && corpus_load(c, &a, NULL) == 1)
		for (size_t i = 0; i < c->n_convs && i < MAX_CORPUS_CONVS; i++)
			write_events(kind, dir, c->convs[i].events, c->convs[i].n);
	if (c)
		corpus_free(c);
	free(c);
	ev_arena_free(&a);
	const char *root = getenv("CONVSTORE_CORPUS");
	if (!root || strcmp(kind, "json") != 0)
		return;
	/* OpenHands events, each as the data of an extension event. */
	char pattern[PATH_MAX];
	snprintf(pattern, sizeof(pattern), "%s/openhands/*.json", root);
	glob_t g = {0};
	if (glob(pattern, 0, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		json_t *all = json_load_file(g.gl_pathv[i], 0, NULL);
		size_t k;
		json_t *item;
		json_array_foreach(all, k, item)
		{
			json_t *ev = json_pack("{s:{s:s,s:O}}", "extension", "type",
					       "openhands.Event", "data", item);
			char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
			if (text)
				write_seed(dir, FUZZ_JSON_EVENT, text, strlen(text));
			free(text);
			json_decref(ev);
		}
		json_decref(all);
	}
	globfree(&g);
}

/* Whole requests for fuzz_http: the input is sent as it is, so the selector byte is simply the
 * request's first byte. */
static void http_seed(const char *dir, const char *req)
{
	write_seed(dir, (uint8_t)req[0], req + 1, strlen(req) - 1);
}

static void http_seeds(const char *dir)
{
#define HOST "Host: fuzz\r\n"
#define JSON "Content-Type: application/json\r\n"
	static const char *const requests[] = {
	    "GET /healthz HTTP/1.1\r\n" HOST "\r\n",
	    "GET /v1/conversations?limit=5&status=active&metadata.team=a HTTP/1.1\r\n" HOST "\r\n",
	    "POST /v1/conversations HTTP/1.1\r\n" HOST JSON "Content-Length: 29\r\n\r\n"
	    "{\"id\":\"c1\",\"title\":\"Trip\"}",
	    "POST /v1/conversations/c1/events HTTP/1.1\r\n" HOST JSON "If-Match: \"1\"\r\n"
	    "Content-Length: 60\r\n\r\n"
	    "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"hi\"}}]}",
	    "POST /v1/conversations/c1/events HTTP/1.1\r\n" HOST JSON
	    "Transfer-Encoding: chunked\r\n\r\n"
	    "12\r\n{\"events\":[{\"tool_\r\n2d\r\ncall\":{\"id\":\"k\",\"name\":\"f\"}}]}"
	    "\r\n0\r\n\r\n",
	    "GET /v1/conversations/c1?at_version=1 HTTP/1.1\r\n" HOST
	    "Accept-Encoding: gzip\r\nIf-None-Match: \"2\"\r\n\r\n",
	    "GET /v1/conversations/c1/messages HTTP/1.1\r\n" HOST
	    "Accept: application/x-protobuf\r\n\r\n",
	    "GET /v1/conversations/c1/events?from_version=1&limit=2&direction=backward "
	    "HTTP/1.1\r\n" HOST "\r\n",
	    "PATCH /v1/conversations/c1 HTTP/1.1\r\n" HOST JSON "Content-Length: 22\r\n\r\n"
	    "{\"status\":\"archived\"}",
	    "POST /v1/conversations/c1/fork HTTP/1.1\r\n" HOST JSON "Content-Length: 32\r\n\r\n"
	    "{\"at_version\":1,\"id\":\"c1-b\"}",
	    "GET /v1/conversations/c1/forks HTTP/1.1\r\n" HOST "\r\n",
	    "GET /v1/events?after_position=0&limit=3&wait_ms=50 HTTP/1.1\r\n" HOST "\r\n",
	    "GET /v1/events/stream?types=message,tool_call HTTP/1.1\r\n" HOST
	    "Last-Event-ID: 1\r\n\r\n",
	    "GET /v1/conversations/c1/events/stream?after_position=0 HTTP/1.1\r\n" HOST "\r\n",
	    "GET /v1/usage?group_by=model&from=2026-01-01 HTTP/1.1\r\n" HOST "\r\n",
	    "DELETE /v1/conversations/c1-b?purge=true HTTP/1.1\r\n" HOST "\r\n",
	    "GET /ui/ HTTP/1.1\r\n" HOST "\r\n",
	    "GET /v1/openapi.json HTTP/1.1\r\n" HOST "\r\n",
	    "GET /metrics HTTP/1.1\r\n" HOST "Authorization: Bearer x\r\n\r\n",
	};
#undef HOST
#undef JSON
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
		http_seed(dir, requests[i]);
	/* tau-bench conversations as append requests */
	ev_arena a = EV_ARENA_INIT;
	corpus *c = calloc(1, sizeof(*c));
	if (c && corpus_load(c, &a, NULL) == 1)
		for (size_t i = 0; i < c->n_convs && i < 8; i++) {
			Convstore__V1__AppendRequest req = CONVSTORE__V1__APPEND_REQUEST__INIT;
			req.events = c->convs[i].events;
			req.n_events = c->convs[i].n;
			char *json = cs_json_encode_text(&req.base, 0, NULL);
			size_t len = json ? strlen(json) : 0;
			char *text = json ? malloc(len + 256) : NULL;
			if (text) {
				snprintf(text, len + 256,
					 "POST /v1/conversations/tau-%zu/events HTTP/1.1\r\nHost: "
					 "fuzz\r\n"
					 "Content-Type: application/json\r\nContent-Length: "
					 "%zu\r\n\r\n%s",
					 i, len, json);
				http_seed(dir, text);
			}
			free(text);
			free(json);
		}
	if (c)
		corpus_free(c);
	free(c);
	ev_arena_free(&a);
}

static void cursor_seeds(const char *dir)
{
	static const uint64_t pairs[][2] = {{0, 1}, {45, 46}, {45, 20}, {100, 3}, {7, 0}};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		char text[CS_CURSOR_MAX];
		cs_list_cursor_encode(text, pairs[i][0], pairs[i][1]);
		/* The target reads the whole input as the cursor: no selector byte here. */
		write_seed(dir, (uint8_t)text[0], text + 1, strlen(text) - 1);
		unsigned char raw[16];
		cs_put_be64(raw, pairs[i][0]);
		cs_put_be64(raw + 8, pairs[i][1]);
		write_seed(dir, raw[0], raw + 1, sizeof(raw) - 1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fuzz_seeds json|event|record|cursor|http DIR\n");
		return 2;
	}
	const char *kind = argv[1], *dir = argv[2];
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	if (!strcmp(kind, "cursor")) {
		cursor_seeds(dir);
	} else if (!strcmp(kind, "http")) {
		http_seeds(dir);
	} else {
		samples_seeds(kind, dir);
		corpus_seeds(kind, dir);
	}
	printf("%d seeds for %s in %s\n", written, kind, dir);
	return 0;
}
