/*
 * test_feed.c - the live feeds against a real convstored: long poll and Server-Sent Events.
 *
 *   - exactly once, in order: writers on many threads append while several subscribers follow
 *     the global feed (one is cut off every few events and resumes with Last-Event-ID, one
 *     starts from position 0 while the writers run, so catch-up joins the live tail) and one
 *     follows a conversation's stream with resumes; each must see exactly the events the feed
 *     holds at the end, in position order, no gap and no repeat;
 *   - the long poll is woken by the commit (milliseconds after the append's answer, against a
 *     10 s wait_ms), and answers an empty page when its wait is over;
 *   - only events an attached stream can want are formatted (the /metrics counter);
 *   - ?types= filters, bad positions and bad types are 400, and change nothing;
 *   - an erased conversation vanishes from every feed (only its content-free
 *     conversation_deleted stays), and its stream ends;
 *   - a thousand idle subscribers are held without a thread each, and all get the next event;
 *   - a quiet stream gets heartbeat comments;
 *   - a subscriber that stops reading is dropped after --idle-timeout while another keeps up
 *     and the writer is not held back;
 *   - a drain under keep-alive traffic answers every request (200, or 503 while shutting down)
 *     and exits 0.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>

#include "check.h"
#include "server.h"
#include "sse.h"

static srv S;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define MSG(text) "{\"message\":{\"role\":\"user\",\"content\":\"" text "\"}}"

/* Append @n events (messages, every third a tool call and its result) to @conv on @c. */
static int append_on(httpc *c, const char *conv, int n, int serial)
{
	char body[4096], path[256];
	size_t len = (size_t)snprintf(body, sizeof(body), "{\"events\":[");
	for (int i = 0; i < n; i++)
		len +=
		    (size_t)snprintf(body + len, sizeof(body) - len,
				     "%s{\"message\":{\"role\":\"user\",\"content\":\"m%d-%d\"}}",
				     i ? "," : "", serial, i);
	len += (size_t)snprintf(body + len, sizeof(body) - len, "]}");
	snprintf(path, sizeof(path), "/v1/conversations/%s/events", conv);
	httpc_response r;
	if (httpc_request(&r, c, "POST", path, JSON_HDR, body, len))
		return -1;
	int status = r.status;
	httpc_response_free(&r);
	return status;
}

/* Every event of the feed: positions and conversation ids, in order. */
typedef struct feed_truth {
	uint64_t pos[8192];
	char conv[8192][32];
	char type[8192][32];
	size_t n;
} feed_truth;

static void read_truth(feed_truth *t)
{
	t->n = 0;
	uint64_t after = 0;
	for (;;) {
		json_t *b = NULL;
		if (srv_json(
			&S, &b, "GET",
			fmt("/v1/events?after_position=%llu&limit=1000", (unsigned long long)after),
			NULL) != 200)
			break;
		json_t *evs = json_object_get(b, "events");
		size_t k = json_array_size(evs);
		for (size_t i = 0; i < k && t->n < 8192; i++) {
			json_t *e = json_array_get(evs, i);
			t->pos[t->n] = (uint64_t)jint(e, "position");
			snprintf(t->conv[t->n], sizeof(t->conv[0]), "%s",
				 jstr(e, "conversation_id"));
			snprintf(t->type[t->n], sizeof(t->type[0]), "%s", jstr(e, "type"));
			t->n++;
		}
		after = (uint64_t)jint(b, "last_position");
		json_decref(b);
		if (!k)
			break;
	}
}

/* ---- exactly once, in order, across resumes ------------------------------------------------ */

#define WRITERS	     4
#define APPENDS	     120 /* per writer */
#define MAX_RECEIVED 8192

typedef struct subscriber {
	const char *path;   /* the stream */
	int cut_every;	    /* drop the connection after this many events (0: never) */
	double start_after; /* seconds to wait before subscribing */
	uint64_t from;	    /* ?after_position of the first connection */
	uint64_t got[MAX_RECEIVED];
	size_t n;
	unsigned reconnects;
	volatile uint64_t *stop_at; /* stop once this position was received (0: not known yet) */
	volatile int *writers_done;
	const char *only_conv; /* the conversation a conversation stream must see alone */
	bool foreign;	       /* an event of another conversation arrived */
	int since_cut;
	bool cut;
} subscriber;

static void on_sub_event(sse_client *c, uint64_t id, const char *event, const char *data)
{
	subscriber *s = c->ctx;
	(void)event;
	if (s->n < MAX_RECEIVED)
		s->got[s->n++] = id;
	if (s->only_conv && !strstr(data, s->only_conv))
		s->foreign = true;
	if (s->cut_every && ++s->since_cut >= s->cut_every) {
		s->since_cut = 0;
		s->cut = true;
	}
}

static void *subscribe(void *arg)
{
	subscriber *s = arg;
	usleep((useconds_t)(s->start_after * 1e6));
	sse_client *cp = malloc(sizeof(*cp));
	uint64_t last = s->from;
	double give_up = now_s() + 60;
	while (now_s() < give_up) {
		char extra[64] = "";
		const char *path = s->path;
		char first[256];
		if (!s->reconnects) {
			snprintf(first, sizeof(first), "%s?after_position=%llu", s->path,
				 (unsigned long long)s->from);
			path = first;
		} else {
			snprintf(extra, sizeof(extra), "Last-Event-ID: %llu\r\n",
				 (unsigned long long)last);
		}
		sse_client *c = cp;
		if (sse_open(c, S.port, path, extra))
			break;
		c->on_event = on_sub_event;
		c->ctx = s;
		s->cut = false;
		while (!s->cut && sse_pump(c, 50) == 0) {
			uint64_t stop = *s->stop_at;
			if (*s->writers_done && stop && s->n && s->got[s->n - 1] >= stop)
				break;
		}
		last = s->n ? s->got[s->n - 1] : last;
		sse_close(c);
		uint64_t stop = *s->stop_at;
		if (*s->writers_done && stop && s->n && s->got[s->n - 1] >= stop)
			break;
		s->reconnects++;
	}
	free(cp);
	return NULL;
}

typedef struct writer {
	int id;
	int failures;
} writer;

static void *write_some(void *arg)
{
	writer *w = arg;
	httpc c;
	httpc_init(&c, "127.0.0.1", S.port);
	for (int i = 0; i < APPENDS; i++) {
		char conv[32];
		snprintf(conv, sizeof(conv), "w%d-%d", w->id, i % 5);
		if (append_on(&c, conv, 1 + i % 3, i) != 201)
			w->failures++;
	}
	httpc_close(&c);
	return NULL;
}

static void check_sequence(const subscriber *s, const uint64_t *want, size_t n_want,
			   const char *name)
{
	bool same = s->n == n_want;
	for (size_t i = 0; same && i < n_want; i++)
		same = s->got[i] == want[i];
	if (!same) {
		size_t i = 0;
		while (i < s->n && i < n_want && s->got[i] == want[i])
			i++;
		fprintf(stderr,
			"%s: got %zu events, want %zu; first difference at %zu (%llu vs %llu)\n",
			name, s->n, n_want, i, i < s->n ? (unsigned long long)s->got[i] : 0ull,
			i < n_want ? (unsigned long long)want[i] : 0ull);
	}
	CHECK(same);
}

static void test_exactly_once(void)
{
	static feed_truth before, truth;
	read_truth(&before);
	uint64_t start = before.n ? before.pos[before.n - 1] : 0;
	volatile uint64_t stop_at = 0, conv_stop_at = 0;
	volatile int done = 0;
	static subscriber subs[4];
	subs[0] = (subscriber){.path = "/v1/events/stream", .from = start};
	subs[1] = (subscriber){.path = "/v1/events/stream", .from = start, .cut_every = 37};
	subs[2] = (subscriber){.path = "/v1/events/stream", .from = start, .start_after = 0.3};
	subs[3] = (subscriber){.path = "/v1/conversations/w1-2/events/stream",
			       .from = start,
			       .cut_every = 5,
			       .only_conv = "\"conversation_id\":\"w1-2\""};
	pthread_t st[4], wt[WRITERS];
	/* the conversation stream needs its conversation to exist */
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations", "{\"id\":\"w1-2\"}"), 201);
	for (int i = 0; i < 4; i++) {
		subs[i].stop_at = i == 3 ? &conv_stop_at : &stop_at;
		subs[i].writers_done = &done;
		pthread_create(&st[i], NULL, subscribe, &subs[i]);
	}
	usleep(100 * 1000);
	static writer ws[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		ws[i].id = i;
		pthread_create(&wt[i], NULL, write_some, &ws[i]);
	}
	for (int i = 0; i < WRITERS; i++)
		pthread_join(wt[i], NULL);
	read_truth(&truth);
	static uint64_t want[8192], want_conv[8192];
	size_t n_want = 0, n_conv = 0;
	for (size_t i = 0; i < truth.n; i++) {
		if (truth.pos[i] <= start)
			continue;
		want[n_want++] = truth.pos[i];
		if (!strcmp(truth.conv[i], "w1-2"))
			want_conv[n_conv++] = truth.pos[i];
	}
	CHECK(n_want > WRITERS * APPENDS);
	conv_stop_at = want_conv[n_conv - 1];
	stop_at = truth.pos[truth.n - 1];
	done = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(st[i], NULL);
	for (int i = 0; i < WRITERS; i++)
		CHECK_EQ_INT(ws[i].failures, 0);
	check_sequence(&subs[0], want, n_want, "plain subscriber");
	check_sequence(&subs[1], want, n_want, "cut-off subscriber");
	check_sequence(&subs[2], want, n_want, "late subscriber");
	check_sequence(&subs[3], want_conv, n_conv, "conversation subscriber");
	CHECK(subs[1].reconnects >= 10);
	CHECK(subs[3].reconnects >= 5);
	CHECK(!subs[3].foreign);
	printf("exactly once: %zu events from %d writers; %u and %u resumes\n", n_want, WRITERS,
	       subs[1].reconnects, subs[3].reconnects);
}

/* ---- the long poll ------------------------------------------------------------------------- */

typedef struct poll_call {
	uint64_t after;
	int wait_ms;
	int status;
	size_t events;
	double answered;
} poll_call;

static void *long_poll(void *arg)
{
	poll_call *p = arg;
	httpc c;
	httpc_init(&c, "127.0.0.1", S.port);
	char path[128];
	snprintf(path, sizeof(path), "/v1/events?after_position=%llu&wait_ms=%d",
		 (unsigned long long)p->after, p->wait_ms);
	httpc_response r;
	if (httpc_request(&r, &c, "GET", path, "", NULL, 0) == 0) {
		p->status = r.status;
		json_t *b = json_loadb(r.body, r.body_len, 0, NULL);
		p->events = json_array_size(json_object_get(b, "events"));
		json_decref(b);
		httpc_response_free(&r);
	}
	p->answered = now_s();
	httpc_close(&c);
	return NULL;
}

static uint64_t last_position(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/events?after_position=0&limit=1", NULL), 200);
	json_decref(b);
	/* the end: page to it */
	static feed_truth t;
	read_truth(&t);
	return t.n ? t.pos[t.n - 1] : 0;
}

static void test_long_poll(void)
{
	poll_call p = {.after = last_position(), .wait_ms = 10000};
	pthread_t t;
	pthread_create(&t, NULL, long_poll, &p);
	usleep(300 * 1000);
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/lp/events",
			      "{\"events\":[" MSG("wake") "]}"),
		     201);
	double acked = now_s();
	pthread_join(t, NULL);
	CHECK_EQ_INT(p.status, 200);
	CHECK_EQ_INT(p.events, 1);
	double ms = (p.answered - acked) * 1000;
	printf("long poll answered %.2f ms after the append's answer (wait_ms 10000)\n", ms);
	CHECK(ms < 1000); /* woken by the commit, not by its 10 s timer */

	/* nothing comes: an empty page after wait_ms */
	poll_call q = {.after = last_position(), .wait_ms = 300};
	double t0 = now_s();
	long_poll(&q);
	CHECK_EQ_INT(q.status, 200);
	CHECK_EQ_INT(q.events, 0);
	CHECK(q.answered - t0 >= 0.29);
	CHECK(q.answered - t0 < 5.0);
}

/* ---- filters and bad input --------------------------------------------------------------- */

typedef struct collected {
	char types[64][32];
	uint64_t ids[64];
	size_t n;
} collected;

static void on_collect(sse_client *c, uint64_t id, const char *event, const char *data)
{
	collected *k = c->ctx;
	(void)data;
	if (k->n < 64) {
		k->ids[k->n] = id;
		snprintf(k->types[k->n++], sizeof(k->types[0]), "%s", event);
	}
}

/* Open @path, pump for @ms, return the status; frames into @k. */
static int stream_for(const char *path, const char *extra, int ms, collected *k, sse_client *c)
{
	memset(k, 0, sizeof(*k));
	if (sse_open(c, S.port, path, extra))
		return -1;
	c->on_event = on_collect;
	c->ctx = k;
	double end = now_s() + ms / 1000.0;
	while (now_s() < end && sse_pump(c, 20) == 0)
		;
	return c->status;
}

static void test_types_and_bad_input(void)
{
	static sse_client c;
	collected k;
	uint64_t start = last_position();
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/ty/events",
			      "{\"events\":[" MSG(
				  "a") ",{\"tool_call\":{\"id\":\"k\",\"name\":\"f\"}},"
				       "{\"tool_result\":{\"call_id\":\"k\",\"output\":\"r\"}}]}"),
		     201);
	CHECK_EQ_INT(stream_for(fmt("/v1/events/stream?after_position=%llu&types=tool_call,"
				    "tool_result",
				    (unsigned long long)start),
				"", 400, &k, &c),
		     200);
	sse_close(&c);
	CHECK_EQ_INT(k.n, 2);
	CHECK_STR_EQ(k.types[0], "tool_call");
	CHECK_STR_EQ(k.types[1], "tool_result");
	CHECK_EQ_INT(k.ids[0], start + 2);

	static feed_truth before, after;
	read_truth(&before);
	const char *bad[][2] = {
	    {"/v1/events/stream?types=nonsense", ""},
	    {"/v1/events/stream?types=message,", ""},
	    {"/v1/events/stream?types=id", ""}, /* a field, but not an event type */
	    {"/v1/events/stream?after_position=-1", ""},
	    {"/v1/events/stream", "Last-Event-ID: abc\r\n"},
	    {"/v1/events/stream", "Last-Event-ID: 999999999\r\n"}, /* past the end */
	    {"/v1/events/stream?after_position=999999999", ""},
	    {"/v1/events/stream?sideways=1", ""},
	    {"/v1/conversations/ty/events/stream?types=Message", ""},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(stream_for(bad[i][0], bad[i][1], 200, &k, &c), 400);
		json_t *b = c.body ? json_loads(c.body, 0, NULL) : NULL;
		CHECK_STR_EQ(err_code(b), "invalid_argument");
		json_decref(b);
		sse_close(&c);
	}
	CHECK_EQ_INT(stream_for("/v1/conversations/nobody/events/stream", "", 200, &k, &c), 404);
	sse_close(&c);
	CHECK_EQ_INT(srv_json(&S, NULL, "GET", "/v1/events?wait_ms=60001", NULL), 400);
	CHECK_EQ_INT(srv_json(&S, NULL, "GET", "/v1/events?after_position=x", NULL), 400);
	read_truth(&after);
	CHECK_EQ_INT(after.n, before.n); /* nothing stored changed, and the server is up */
	CHECK_EQ_INT(srv_json(&S, NULL, "GET", "/healthz", NULL), 200);
}

/* ---- erase -------------------------------------------------------------------------------- */

/* Whether the feed has events of @conv other than its deletion; *@deleted counts those. */
static bool feed_mentions(const char *conv, size_t *deleted)
{
	static feed_truth t;
	read_truth(&t);
	bool seen = false;
	*deleted = 0;
	for (size_t i = 0; i < t.n; i++) {
		if (strcmp(t.conv[i], conv) != 0)
			continue;
		if (!strcmp(t.type[i], "conversation_deleted"))
			(*deleted)++;
		else
			seen = true;
	}
	return seen;
}

static void test_erase(void)
{
	static sse_client live, conv, later;
	collected k_live, k_conv, k_later;
	uint64_t start = last_position();
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/doomed/events",
			      "{\"events\":[" MSG("secret-1") "," MSG("secret-2") "]}"),
		     201);
	/* a conversation stream and a live global stream are attached when it is erased */
	memset(&k_conv, 0, sizeof(k_conv));
	CHECK_EQ_INT(sse_open(&conv, S.port, "/v1/conversations/doomed/events/stream", ""), 0);
	conv.on_event = on_collect;
	conv.ctx = &k_conv;
	memset(&k_live, 0, sizeof(k_live));
	CHECK_EQ_INT(
	    sse_open(&live, S.port,
		     fmt("/v1/events/stream?after_position=%llu", (unsigned long long)start), ""),
	    0);
	live.on_event = on_collect;
	live.ctx = &k_live;
	for (int i = 0; i < 10; i++)
		sse_pump(&live, 20), sse_pump(&conv, 20);
	CHECK_EQ_INT(k_live.n, 2);
	size_t deleted;
	CHECK(feed_mentions("doomed", &deleted));
	CHECK_EQ_INT(srv_json(&S, NULL, "DELETE", "/v1/conversations/doomed", NULL), 204);
	double end = now_s() + 3;
	while (now_s() < end && !(conv.closed && k_live.n == 3))
		sse_pump(&live, 20), sse_pump(&conv, 20);
	CHECK_EQ_INT(k_live.n, 3);
	CHECK_STR_EQ(k_live.types[2], "conversation_deleted");
	CHECK_EQ_INT(k_conv.n, 1); /* the conversation's stream: its deletion, then the end */
	CHECK_STR_EQ(k_conv.types[0], "conversation_deleted");
	CHECK(conv.closed);
	sse_close(&live);
	sse_close(&conv);
	/* afterwards: no feed has its events, only the content-free deletion */
	CHECK(!feed_mentions("doomed", &deleted));
	CHECK_EQ_INT(deleted, 1);
	CHECK_EQ_INT(
	    stream_for(fmt("/v1/events/stream?after_position=%llu", (unsigned long long)start), "",
		       300, &k_later, &later),
	    200);
	CHECK_EQ_INT(k_later.n, 1);
	CHECK_STR_EQ(k_later.types[0], "conversation_deleted");
	CHECK(!later.data || !strstr(later.data, "secret"));
	sse_close(&later);
	CHECK_EQ_INT(
	    stream_for("/v1/conversations/doomed/events/stream", "", 100, &k_later, &later), 404);
	sse_close(&later);

	/* Erase right after appends, twenty times, with a live stream attached: each deletion
	 * reaches it even when the hub publishes it before the eraser blanks the ring (a race
	 * that once blanked the conversation_deleted frame itself), and an id purged and used
	 * again at once keeps its new events. */
	start = last_position();
	memset(&k_live, 0, sizeof(k_live));
	CHECK_EQ_INT(
	    sse_open(&live, S.port,
		     fmt("/v1/events/stream?after_position=%llu&types=conversation_deleted",
			 (unsigned long long)start),
		     ""),
	    0);
	live.on_event = on_collect;
	live.ctx = &k_live;
	for (int i = 0; i < 20; i++) {
		CHECK_EQ_INT(srv_json(&S, NULL, "POST", fmt("/v1/conversations/gone-%d/events", i),
				      "{\"events\":[" MSG("x") "]}"),
			     201);
		CHECK_EQ_INT(srv_json(&S, NULL, "DELETE",
				      fmt("/v1/conversations/gone-%d?purge=true", i), NULL),
			     204);
		CHECK_EQ_INT(srv_json(&S, NULL, "POST", fmt("/v1/conversations/gone-%d/events", i),
				      "{\"events\":[" MSG("again") "]}"),
			     201);
		sse_pump(&live, 1);
	}
	for (double until = now_s() + 3; now_s() < until && k_live.n < 20;)
		sse_pump(&live, 20);
	CHECK_EQ_INT(k_live.n, 20);
	sse_close(&live);
	static feed_truth t;
	read_truth(&t);
	size_t again = 0;
	for (size_t i = 0; i < t.n; i++)
		again += !strncmp(t.conv[i], "gone-", 5) && !strcmp(t.type[i], "message");
	CHECK_EQ_INT(again, 20); /* the new ones, not the erased ones */
}

/* ---- what the hub formats ------------------------------------------------------------------ */

/* A number from /metrics ("name value" line); -1 when missing. */
static long long metric(const char *name)
{
	httpc_response r = srv_req(&S, "GET", "/metrics", "", NULL);
	long long v = -1;
	char key[128];
	snprintf(key, sizeof(key), "\n%s ", name);
	const char *p = r.body ? strstr(r.body, key) : NULL;
	if (p)
		v = atoll(p + strlen(key));
	httpc_response_free(&r);
	return v;
}

/* Only events an attached stream can want are formatted: a stream of conversation A makes A's
 * events be formatted, not B's; a global stream makes every event of its tenant be. */
static void test_interest(void)
{
	static sse_client a, g;
	collected k;
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/int-a/events",
			      "{\"events\":[" MSG("a0") "]}"),
		     201);
	CHECK_EQ_INT(metric("convstored_feed_streams"), 0);
	long long f0 = metric("convstored_feed_frames_total");
	CHECK_EQ_INT(stream_for("/v1/conversations/int-a/events/stream", "", 100, &k, &a), 200);
	CHECK_EQ_INT(metric("convstored_feed_streams"), 1);
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/int-b/events",
			      "{\"events\":[" MSG("b1") "," MSG("b2") "]}"),
		     201);
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/int-a/events",
			      "{\"events\":[" MSG("a1") "]}"),
		     201);
	for (int i = 0; i < 20 && !a.events; i++)
		sse_pump(&a, 20);
	CHECK_EQ_INT(a.events, 1);
	CHECK_EQ_INT(metric("convstored_feed_frames_total") - f0, 1);
	CHECK_EQ_INT(stream_for("/v1/events/stream", "", 100, &k, &g), 200);
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/int-b/events",
			      "{\"events\":[" MSG("b3") "]}"),
		     201);
	for (int i = 0; i < 20 && !g.events; i++)
		sse_pump(&g, 20);
	CHECK_EQ_INT(g.events, 1);
	CHECK_EQ_INT(metric("convstored_feed_frames_total") - f0, 2);
	sse_close(&g);
	/* With only A's stream attached, B's events are blank in the ring. A stream of B that
	 * starts before them must read them from the store, not trust the blanks. */
	for (int i = 0; i < 100 && metric("convstored_feed_streams") != 1; i++)
		usleep(10 * 1000); /* the closed global stream is noticed at its next heartbeat */
	CHECK_EQ_INT(metric("convstored_feed_streams"), 1);
	uint64_t before_b = last_position();
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/int-b/events",
			      "{\"events\":[" MSG("b4") "," MSG("b5") "]}"),
		     201);
	static sse_client b;
	CHECK_EQ_INT(stream_for(fmt("/v1/conversations/int-b/events/stream?after_position=%llu",
				    (unsigned long long)before_b),
				"", 300, &k, &b),
		     200);
	CHECK_EQ_INT(k.n, 2);
	CHECK_EQ_INT(k.ids[0], before_b + 1);
	sse_close(&b);
	CHECK_EQ_INT(
	    stream_for(fmt("/v1/events/stream?after_position=%llu", (unsigned long long)before_b),
		       "", 300, &k, &b),
	    200);
	CHECK_EQ_INT(k.n, 2);
	sse_close(&b);
	/* A conversation stream whose ?types= leaves out conversation_deleted still ends when the
	 * conversation is erased */
	CHECK_EQ_INT(
	    sse_open(&b, S.port, "/v1/conversations/int-b/events/stream?types=message", ""), 0);
	for (int i = 0; i < 10; i++)
		sse_pump(&b, 10);
	CHECK_EQ_INT(srv_json(&S, NULL, "DELETE", "/v1/conversations/int-b", NULL), 204);
	for (double until = now_s() + 3; now_s() < until && !b.closed;)
		sse_pump(&b, 20);
	CHECK(b.closed);
	CHECK_EQ_INT(b.events, 0);
	sse_close(&b);
	sse_close(&a);
	for (int i = 0; i < 50 && metric("convstored_feed_streams") != 0; i++)
		usleep(10 * 1000);
	CHECK_EQ_INT(metric("convstored_feed_streams"), 0);
}

/* ---- a thousand idle subscribers ------------------------------------------------------------ */

#define THOUSAND 1000

static int server_threads(void)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)S.pid);
	FILE *f = fopen(path, "r");
	int threads = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Threads:", 8))
			threads = atoi(line + 8);
	if (f)
		fclose(f);
	return threads;
}

static void test_thousand_idle(void)
{
	static sse_client subs[THOUSAND];
	static collected got[THOUSAND];
	int threads_before = server_threads();
	int opened = 0;
	for (int i = 0; i < THOUSAND; i++) {
		memset(&got[i], 0, sizeof(got[i]));
		if (sse_open(&subs[i], S.port, "/v1/events/stream", "") == 0)
			opened++;
		subs[i].on_event = on_collect;
		subs[i].ctx = &got[i];
	}
	CHECK_EQ_INT(opened, THOUSAND);
	/* every one is attached once its first comment arrived */
	int attached = 0;
	for (double end = now_s() + 20; attached < THOUSAND && now_s() < end;) {
		attached = 0;
		for (int i = 0; i < THOUSAND; i++) {
			sse_pump(&subs[i], 0);
			attached += subs[i].comments > 0;
		}
		usleep(10 * 1000);
	}
	CHECK_EQ_INT(attached, THOUSAND);
	int threads = server_threads();
	printf("%d idle subscribers: the server has %d threads (%d before)\n", THOUSAND, threads,
	       threads_before);
	CHECK(threads <= threads_before + 2); /* no thread per subscriber */
	/* parked in the hub (heartbeats wake a few at any moment: the most seen of ten looks) */
	long long waiting = 0;
	for (int i = 0; i < 10 && waiting < THOUSAND; i++) {
		long long w = metric("convstored_feed_waiting");
		waiting = w > waiting ? w : waiting;
	}
	CHECK(waiting >= THOUSAND);
	/* (a stream an earlier case closed is noticed at its next heartbeat) */
	for (int i = 0; i < 100 && metric("convstored_feed_streams") != THOUSAND; i++)
		usleep(10 * 1000);
	CHECK_EQ_INT(metric("convstored_feed_streams"), THOUSAND);
	CHECK_EQ_INT(srv_json(&S, NULL, "POST", "/v1/conversations/all/events",
			      "{\"events\":[" MSG("to everyone") "]}"),
		     201);
	int received = 0;
	double t0 = now_s();
	for (double end = now_s() + 20; received < THOUSAND && now_s() < end;) {
		received = 0;
		for (int i = 0; i < THOUSAND; i++) {
			sse_pump(&subs[i], 0);
			received += got[i].n == 1;
		}
		usleep(1000);
	}
	printf("all %d received the event within %.1f ms\n", received, (now_s() - t0) * 1000);
	CHECK_EQ_INT(received, THOUSAND);
	for (int i = 0; i < THOUSAND; i++)
		sse_close(&subs[i]);
}

/* ---- heartbeat ---------------------------------------------------------------------------- */

static void test_heartbeat(void)
{
	static sse_client c;
	collected k;
	CHECK_EQ_INT(stream_for("/v1/events/stream", "", 1100, &k, &c), 200);
	/* the first comment says where it starts; --heartbeat-ms 200 adds about five */
	CHECK(c.comments >= 3);
	CHECK_EQ_INT(k.n, 0);
	sse_close(&c);
}

/* ---- a stalled reader --------------------------------------------------------------------- */

static void test_stalled_reader(void)
{
	srv st;
	const char *flags[] = {"--idle-timeout", "2", NULL};
	srv saved = S;
	srv_start(&st, flags);
	S = st;
	/* the stalled one reads nothing after its request; the other keeps up */
	static sse_client stalled, reader;
	static collected k_reader;
	memset(&k_reader, 0, sizeof(k_reader));
	const char *path = "/v1/events/stream?after_position=0";
	CHECK_EQ_INT(sse_open_buf(&stalled, S.port, path, "", 4096), 0);
	CHECK_EQ_INT(sse_open(&reader, S.port, path, ""), 0);
	reader.on_event = on_collect;
	reader.ctx = &k_reader;
	/* 32 MiB of events: far more than any socket buffers hold */
	static char body[300 * 1024];
	char *big = malloc(256 * 1024 + 1);
	memset(big, 'x', 256 * 1024);
	big[256 * 1024] = '\0';
	snprintf(body, sizeof(body),
		 "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"%s\"}}]}", big);
	free(big);
	int failed = 0;
	double worst = 0;
	for (int i = 0; i < 128; i++) {
		double t0 = now_s();
		if (srv_json(&S, NULL, "POST", "/v1/conversations/big/events", body) != 201)
			failed++;
		if (now_s() - t0 > worst)
			worst = now_s() - t0;
		sse_pump(&reader, 1);
	}
	uint64_t end_pos = last_position();
	for (double end = now_s() + 20; now_s() < end && reader.last_id < end_pos;)
		sse_pump(&reader, 20);
	CHECK_EQ_INT(failed, 0);
	CHECK_EQ_INT(reader.last_id, end_pos);
	printf("writer: 128 appends of 256 KiB, slowest %.1f ms, with a stalled subscriber\n",
	       worst * 1000);
	CHECK(worst < 1.5); /* never waited for the stalled reader (dropped only after 2 s) */
	/* after --idle-timeout without progress the server drops the stalled one: reading it now
	 * drains what its buffers held and then meets the end, well before the last event */
	sleep(4);
	double end = now_s() + 20;
	while (now_s() < end && sse_pump(&stalled, 50) == 0)
		;
	CHECK(stalled.closed);
	CHECK(stalled.last_id < end_pos);
	printf("stalled subscriber dropped after event %llu of %llu\n",
	       (unsigned long long)stalled.last_id, (unsigned long long)end_pos);
	sse_close(&stalled);
	sse_close(&reader);
	CHECK_EQ_INT(srv_json(&S, NULL, "GET", "/healthz", NULL), 200);
	CHECK_EQ_INT(srv_stop(&S), 0);
	S = saved;
}

/* ---- drain under keep-alive traffic -------------------------------------------------------- */

typedef struct hammer {
	unsigned port;
	atomic_bool *stop;
	int ok, busy, other;
} hammer;

static void *hammer_main(void *arg)
{
	hammer *h = arg;
	httpc c;
	httpc_init(&c, "127.0.0.1", h->port);
	c.timeout_ms = 5000;
	while (!atomic_load(h->stop)) {
		httpc_response r;
		if (httpc_request(&r, &c, "GET", "/v1/events?limit=1", "", NULL, 0))
			break; /* the server closed: it is gone */
		h->ok += r.status == 200;
		h->busy += r.status == 503;
		h->other += r.status != 200 && r.status != 503;
		httpc_response_free(&r);
	}
	httpc_close(&c);
	return NULL;
}

/* SIGTERM while clients keep sending on kept-alive connections: those connections are still
 * served during the drain; when the clients stop, the drain ends, a request that races the
 * pool's stop is answered 503 (never run on a stopped pool), and the server exits 0. */
static void test_drain_keepalive(void)
{
	srv d;
	srv_start(&d, NULL);
	hammer h[4];
	pthread_t t[4];
	atomic_bool stop = false;
	for (int i = 0; i < 4; i++) {
		h[i] = (hammer){.port = d.port, .stop = &stop};
		pthread_create(&t[i], NULL, hammer_main, &h[i]);
	}
	usleep(200 * 1000);
	httpc_close(&d.c);
	CHECK_EQ_INT(kill(d.pid, SIGTERM), 0);
	usleep(300 * 1000);
	atomic_store(&stop, true);
	int status = 0;
	CHECK_EQ_INT(waitpid(d.pid, &status, 0), d.pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (strncmp(d.dir, "/tmp/convstore-api-", 19) == 0)
		nftw(d.dir, srv_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	int ok = 0, busy = 0, other = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok += h[i].ok, busy += h[i].busy, other += h[i].other;
	}
	printf("drain: %d answered 200, %d answered 503 as the pool stopped\n", ok, busy);
	CHECK(ok > 0);
	CHECK_EQ_INT(other, 0);
}

int main(void)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < THOUSAND + 100) {
		fprintf(stderr, "open files are limited to %llu: cannot hold %d streams\n",
			(unsigned long long)rl.rlim_cur, THOUSAND);
		return 77;
	}
	const char *flags[] = {"--heartbeat-ms", "200", NULL};
	srv_start(&S, flags);
	CHECK_RUN(test_long_poll);
	CHECK_RUN(test_interest);
	CHECK_RUN(test_types_and_bad_input);
	CHECK_RUN(test_exactly_once);
	CHECK_RUN(test_erase);
	CHECK_RUN(test_heartbeat);
	CHECK_RUN(test_thousand_idle);
	CHECK_RUN(test_stalled_reader);
	CHECK_RUN(test_drain_keepalive);
	CHECK_EQ_INT(srv_stop(&S), 0);
	return check_finish();
}
