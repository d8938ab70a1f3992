/*
 * test_faults.c - the two server-side error statuses of API.md "Errors" that a well-formed
 * request can get: 500 internal when a stored record no longer matches its CRC (one byte of
 * an event flipped in data.mdb between two runs of the server), and 503 unavailable from
 * /readyz while the server drains after SIGTERM. Each asserts the exact status and the JSON
 * error body, and that the rest of the server is unaffected. And that a SIGTERM can only ever
 * reach the main thread, so that every stop is a drain.
 */
#include <dirent.h>
#include <time.h>

#include "../check.h"
#include "server.h"

#define MARKER "zq7CORRUPTME"

#define MEMBER(role, text) "\"message\":{\"role\":\"" role "\",\"content\":\"" text "\"}"
#define APPEND(role, text) "{\"events\":[{" MEMBER(role, text) "}]}"

/* Read the whole of @path into a malloc'd buffer; NULL when it cannot. */
static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *buf = NULL;
	if (fseek(f, 0, SEEK_END) == 0) {
		long n = ftell(f);
		if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) &&
		    fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = n > 0 ? (size_t)n : 0;
	}
	fclose(f);
	return buf;
}

/*
 * Flip one byte (the 'C' of "CORRUPT" becomes 'c': still UTF-8, still a valid protobuf
 * string, so only the CRC can tell) in every copy of @marker in @path. Every copy, because
 * LMDB may keep stale copies in freed pages. Returns the number of copies, -1 on I/O failure.
 */
static int flip_marker(const char *path, const char *marker)
{
	size_t len = 0, mlen = strlen(marker);
	unsigned char *buf = read_file(path, &len);
	if (!buf)
		return -1;
	int copies = 0;
	for (size_t i = 0; i + mlen <= len; i++)
		if (memcmp(buf + i, marker, mlen) == 0) {
			buf[i + 3] ^= 0x20;
			copies++;
		}
	FILE *f = fopen(path, "r+b");
	int rc = f && fwrite(buf, 1, len, f) == len ? copies : -1;
	if (f && fclose(f))
		rc = -1;
	free(buf);
	return rc;
}

/* @b is {"error":{"code":@code,"message":...}} and the message contains @needle. */
static void check_error(json_t *b, const char *code, const char *needle)
{
	json_t *e = json_object_get(b, "error");
	CHECK(json_is_object(e));
	CHECK_STR_EQ(err_code(b), code);
	CHECK(json_is_string(json_object_get(e, "message")));
	CHECK_STR_CONTAINS(jstr(e, "message"), needle);
}

/*
 * A flipped byte in an event's body: the conversation's events, its views and the global
 * feed that cross that event answer 500 internal naming the position; everything else
 * (other conversations, the feed after it, health, new appends) goes on as before.
 */
static void test_corrupt_record(void)
{
	srv s;
	json_t *b = NULL;
	srv_start(&s, NULL);
	CHECK_EQ_INT(srv_json(&s, NULL, "POST", "/v1/conversations/good/events",
			      APPEND("user", "fine before")),
		     201);
	CHECK_EQ_INT(srv_json(&s, &b, "POST", "/v1/conversations/bad/events",
			      APPEND("user", "this one is " MARKER " soon")),
		     201);
	long long bad_pos = jint(b, "first_position");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&s, NULL, "POST", "/v1/conversations/good/events",
			      APPEND("assistant", "fine after")),
		     201);
	CHECK_EQ_INT(bad_pos, 2);
	CHECK_EQ_INT(srv_stop_keep(&s), 0);

	char mdb[PATH_MAX + 16];
	snprintf(mdb, sizeof(mdb), "%s/data/data.mdb", s.dir);
	int copies = flip_marker(mdb, MARKER);
	CHECK(copies >= 1); /* 0: small event bodies are no longer stored as they are */
	printf("test_corrupt_record: flipped %d cop%s of the marker\n", copies,
	       copies == 1 ? "y" : "ies");

	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", s.dir);
	srv_start_in(&s, dir, NULL);
	char want[64]; /* what the messages name: the damaged event */
	snprintf(want, sizeof(want), "position %lld", bad_pos);

	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/v1/conversations/bad/events", NULL), 500);
	check_error(b, "internal", want);
	CHECK_STR_CONTAINS(jstr(json_object_get(b, "error"), "message"), "crc mismatch");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/v1/events?after_position=0", NULL), 500);
	check_error(b, "internal", want);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/v1/conversations/bad/messages", NULL), 500);
	check_error(b, "internal", want);
	json_decref(b);

	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/v1/conversations/bad", NULL), 500);
	check_error(b, "internal", want); /* the state view reads the event for its messages */
	json_decref(b);

	/* around the damage, everything reads */
	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/v1/conversations/good/events", NULL), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 2);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/v1/conversations/good", NULL), 200);
	CHECK_EQ_INT(jint(b, "version"), 2);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/v1/conversations", NULL), 200); /* heads only */
	CHECK_EQ_INT(json_array_size(json_object_get(b, "conversations")), 2);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&s, &b, "GET", fmt("/v1/events?after_position=%lld", bad_pos), NULL),
		     200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 1);
	CHECK_EQ_INT(jint(b, "last_position"), 3);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/v1/events?after_position=0&limit=1", NULL), 200);
	CHECK_EQ_INT(jint(b, "last_position"), 1);
	json_decref(b);

	/* and the server stays up and takes writes */
	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/healthz", NULL), 200);
	CHECK_STR_EQ(jstr(b, "status"), "ok");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&s, &b, "POST", "/v1/conversations/other/events",
			      APPEND("user", "after the damage")),
		     201);
	CHECK_EQ_INT(jint(b, "first_position"), 4);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/v1/conversations/other/events", NULL), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 1);
	json_decref(b);
	CHECK_EQ_INT(srv_json(&s, &b, "GET", "/v1/conversations/bad/events", NULL), 500);
	check_error(b, "internal", want);
	json_decref(b);
	CHECK_EQ_INT(srv_stop(&s), 0);
}

/* Send @head on @c and read "HTTP/1.1 100 Continue": proof that the server has taken the
 * request's headers (its handler's first call has run). */
static void send_and_continue(httpc *c, const char *head)
{
	char got[256];
	CHECK_EQ_INT(httpc_send_raw(c, head, strlen(head)), 0);
	CHECK(httpc_read_some(c, got, sizeof(got), 5000) > 0);
	CHECK_STR_CONTAINS(got, "HTTP/1.1 100 Continue");
}

/*
 * SIGTERM while a kept-alive connection is open: that connection is still served, and /readyz
 * on it says 503 unavailable ("draining"). An append whose body is half sent keeps the drain
 * waiting; a long poll that the drain ends shows that draining has begun; then the append is
 * finished, answered and kept, and the server exits 0.
 */
static void test_drain_unavailable(void)
{
	srv d;
	json_t *b = NULL;
	srv_start(&d, NULL);
	d.c.timeout_ms = 5000;
	CHECK_EQ_INT(srv_json(&d, &b, "GET", "/readyz", NULL), 200);
	CHECK_STR_EQ(jstr(b, "status"), "ok");
	json_decref(b);
	int kept_fd = d.c.fd;
	CHECK(kept_fd >= 0);

	/* the holder: an append with half of its body sent */
	static const char body[] = APPEND("user", "held over the drain");
	char head[512];
	snprintf(head, sizeof(head),
		 "POST /v1/conversations/held/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		 "Expect: 100-continue\r\n\r\n",
		 strlen(body));
	httpc hold;
	httpc_init(&hold, "127.0.0.1", d.port);
	hold.timeout_ms = 5000;
	send_and_continue(&hold, head);
	size_t half = strlen(body) / 2;
	CHECK_EQ_INT(httpc_send_raw(&hold, body, half), 0);

	/* the signal: a long poll in flight, which draining ends at once */
	httpc poll;
	httpc_init(&poll, "127.0.0.1", d.port);
	poll.timeout_ms = 5000;
	send_and_continue(&poll, "GET /v1/events?wait_ms=30000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				 "Expect: 100-continue\r\n\r\n");

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ_INT(kill(d.pid, SIGTERM), 0);
	httpc_response r;
	CHECK_EQ_INT(httpc_read_response(&r, &poll), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR_EQ(r.body, "{\"events\":[],\"last_position\":0}");
	CHECK(t1.tv_sec - t0.tv_sec < 3); /* ended by the drain, not by wait_ms */
	httpc_response_free(&r);
	httpc_close(&poll);

	/* draining has begun: the kept-alive connection is still served, and not ready */
	CHECK_EQ_INT(srv_json(&d, &b, "GET", "/readyz", NULL), 503);
	check_error(b, "unavailable", "draining");
	json_decref(b);
	CHECK_EQ_INT(d.c.fd, kept_fd); /* the same connection, not a reconnect */
	CHECK_EQ_INT(srv_json(&d, &b, "GET", "/healthz", NULL), 200);
	CHECK_STR_EQ(jstr(b, "status"), "ok");
	json_decref(b);
	CHECK_EQ_INT(d.c.fd, kept_fd);

	/* the holder finishes: its append is answered, then the server stops */
	CHECK_EQ_INT(httpc_send_raw(&hold, body + half, strlen(body) - half), 0);
	CHECK_EQ_INT(httpc_read_response(&r, &hold), 0);
	CHECK_EQ_INT(r.status, 201);
	httpc_response_free(&r);
	httpc_close(&hold);
	httpc_close(&d.c);
	int status = 0;
	CHECK_EQ_INT(waitpid(d.pid, &status, 0), d.pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);

	/* the append answered during the drain was kept */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", d.dir);
	srv_start_in(&d, dir, NULL);
	CHECK_EQ_INT(srv_json(&d, &b, "GET", "/v1/conversations/held/events", NULL), 200);
	json_t *ev = json_array_get(json_object_get(b, "events"), 0);
	CHECK_STR_EQ(jstr(json_object_get(ev, "message"), "content"), "held over the drain");
	json_decref(b);
	CHECK_EQ_INT(srv_json(&d, &b, "GET", "/readyz", NULL), 200);
	json_decref(b);
	CHECK_EQ_INT(srv_stop(&d), 0);
}

/*
 * Every thread of the server blocks SIGINT and SIGTERM, so that only the main thread's
 * sigwait() takes them and a stop is always a drain. (The store's writer thread once started
 * before the mask was set: a SIGTERM arriving while the main thread was not in sigwait() -
 * sweeping, or just starting - went to it and killed the process.)
 */
static void test_signal_mask(void)
{
	srv d;
	srv_start(&d, NULL);
	CHECK_EQ_INT(srv_json(&d, NULL, "GET", "/healthz", NULL), 200);
	char dir[64], path[400], line[256];
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)d.pid);
	DIR *tasks = opendir(dir);
	CHECK(tasks != NULL);
	int threads = 0, blocking = 0;
	for (struct dirent *t; tasks && (t = readdir(tasks));) {
		if (t->d_name[0] == '.' || atoi(t->d_name) == (int)d.pid)
			continue; /* the main thread: in sigwait(), which unblocks what it waits for
				   */
		snprintf(path, sizeof(path), "%s/%s/status", dir, t->d_name);
		FILE *f = fopen(path, "r");
		unsigned long long blocked = 0;
		while (f && fgets(line, sizeof(line), f))
			if (!strncmp(line, "SigBlk:", 7))
				blocked = strtoull(line + 7, NULL, 16);
		if (f)
			fclose(f);
		threads++;
		unsigned long long want = (1ull << (SIGINT - 1)) | (1ull << (SIGTERM - 1));
		blocking += (blocked & want) == want;
	}
	if (tasks)
		closedir(tasks);
	CHECK(threads > 3);
	CHECK_EQ_INT(blocking, threads);
	CHECK_EQ_INT(srv_stop(&d), 0);
}

int main(void)
{
	CHECK_RUN(test_signal_mask);
	CHECK_RUN(test_corrupt_record);
	CHECK_RUN(test_drain_unavailable);
	return check_finish();
}
