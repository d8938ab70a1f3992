/*
 * test_diskfull.c - a full disk as HTTP clients see it: 507 storage_full with a JSON error body,
 * reads that keep working, nothing acknowledged lost, and appends that succeed again once there
 * is room. tests/store/test_diskfull proves the store's side (CS_EFULL, nothing half-written);
 * this proves the server maps it to the status of API.md and stays up.
 *
 * convstored runs on an 8 MiB tmpfs of the test's own (tests/tmpfs.h), next to a 1 MiB filler
 * file. Appends of one 32 KiB event of random text (it does not deflate below ~24 KiB) go in,
 * each with expected_version, until one is refused. Then:
 *  - the refusal is 507 with {"error": {"code": "storage_full", ...}}, and a second try too;
 *  - the state view says the version acknowledged last, and the events read back are exactly
 *    the acknowledged ones, content for content; /healthz still answers;
 *  - with the filler deleted the same append is 201 with the next version;
 *  - the server stops cleanly (exit 0) and `convctl verify` passes on what it left.
 * Needs root (mount): exits 77 (skipped) without it.
 */
#include <limits.h>

#include "../check.h"
#include "../tmpfs.h"
#include "server.h"

#define FS_SIZE	     "size=8m"
#define FILLER_BYTES (1024 * 1024)
#define EVENT_BYTES  (32 * 1024)
#define MAX_APPENDS  1000

static char dir[PATH_MAX];

/* The content of the @i-th append: EVENT_BYTES of letters and digits from a seed of @i. */
static void content_of(char *out, unsigned i)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);
	for (size_t k = 0; k < EVENT_BYTES; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		out[k] = alphabet[x % (sizeof(alphabet) - 1)];
	}
	out[EVENT_BYTES] = '\0';
}

/* Append the @i-th event at expected version @i; the status, @out the body (json_decref). */
static int append(srv *s, unsigned i, json_t **out)
{
	static char content[EVENT_BYTES + 1];
	content_of(content, i);
	return srv_json(s, out, "POST", "/v1/conversations/c/events",
			fmt("{\"expected_version\":%u,\"events\":[{\"message\":{\"role\":\"user\","
			    "\"content\":\"%s\"}}]}",
			    i, content));
}

static void check_full(json_t *body)
{
	CHECK_STR_EQ(err_code(body), "storage_full");
	const char *msg = jstr(json_object_get(body, "error"), "message");
	CHECK(strlen(msg) > 0);
}

/* The events of "c" read back, paged, against what was acknowledged: how many matched. */
static unsigned read_back(srv *s, unsigned acked)
{
	static char want[EVENT_BYTES + 1];
	unsigned matched = 0, from = 1;
	for (;;) {
		json_t *page = NULL;
		int status = srv_json(
		    s, &page, "GET",
		    fmt("/v1/conversations/c/events?from_version=%u&limit=50", from), NULL);
		json_t *events = json_object_get(page, "events"), *ev;
		size_t i, n = json_array_size(events);
		json_array_foreach(events, i, ev)
		{
			content_of(want, from - 1);
			json_t *m = json_object_get(ev, "message");
			matched += jint(ev, "version") == from && !strcmp(jstr(m, "content"), want);
			from++;
		}
		bool more = status == 200 && n > 0 &&
			    json_is_integer(json_object_get(page, "next_from_version"));
		json_decref(page);
		if (!CHECK_EQ_INT(status, 200) || !more || from > acked + 1)
			return matched;
	}
}

static int verify(void)
{
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "\"%s\" --data \"%s/data\" verify >/dev/null", getenv("CONVCTL"),
		 dir);
	return system(cmd);
}

static void test_disk_full(void)
{
	char filler[PATH_MAX + 8];
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	if (!CHECK(tmpfs_fill(filler, FILLER_BYTES)))
		return;
	srv s;
	srv_launch(&s, dir, NULL, true);

	unsigned acked = 0;
	int status = 0;
	json_t *body = NULL;
	while (acked < MAX_APPENDS) {
		json_decref(body);
		status = append(&s, acked, &body);
		if (status != 201)
			break;
		CHECK_EQ_INT(jint(body, "first_version"), acked + 1);
		acked++;
	}
	CHECK_EQ_INT(status, 507);
	check_full(body);
	CHECK(acked > 10 && acked < MAX_APPENDS);
	printf("%u appends of %d bytes acknowledged before 507: %s\n", acked, EVENT_BYTES,
	       jstr(json_object_get(body, "error"), "message"));
	json_decref(body);
	CHECK_EQ_INT(append(&s, acked, &body), 507); /* still full, still clean */
	check_full(body);
	json_decref(body);

	/* Reads keep working and hold exactly what was acknowledged. */
	CHECK_EQ_INT(srv_json(&s, &body, "GET", "/v1/conversations/c", NULL), 200);
	CHECK_EQ_INT(jint(body, "version"), acked);
	json_decref(body);
	CHECK_EQ_UINT(read_back(&s, acked), acked);
	CHECK_EQ_INT(srv_json(&s, NULL, "GET", "/healthz", NULL), 200);

	/* Room again: the same append goes through, with the next version. */
	CHECK_EQ_INT(unlink(filler), 0);
	CHECK_EQ_INT(append(&s, acked, &body), 201);
	CHECK_EQ_INT(jint(body, "first_version"), acked + 1);
	json_decref(body);
	CHECK_EQ_UINT(read_back(&s, acked + 1), acked + 1);

	CHECK_EQ_INT(srv_stop_keep(&s), 0);
	CHECK_EQ_INT(verify(), 0);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/convstore-api-XXXXXX");
	if (!tmpfs_mount(dir, FS_SIZE)) {
		fprintf(stderr, "skipped: cannot mount a tmpfs here (needs root)\n");
		return 77;
	}
	CHECK_RUN(test_disk_full);
	tmpfs_unmount(dir);
	return check_finish();
}
