/*
 * tests/tools/test_ctl_verify.c - convctl on a store this test builds (no corpus needed):
 *
 *   - verify passes on it, then catches a flipped byte in one event record and a deleted index
 *     entry, each time naming the right position and exiting 1 (text and --json);
 *   - import refuses garbage, a truncated gzip, a foreign header, a later format version, an
 *     empty stream, an undecodable event, a missing file and an event that conflicts with the
 *     stored one, each with its message and exit 1, and leaves the store exactly as it was
 *     (stats --json and an export compared before and after); garbage does not even create a
 *     store in a folder that had none;
 *   - usage errors exit 2 with their message, an unknown conversation exits 1, every command
 *     answers --help;
 *   - replay, diff of two versions, compact and rebuild on the same store.
 *
 * $CONVCTL is the CLI.
 */
#include <jansson.h>
#include <zlib.h>

#include "../check.h"
#include "../store/events.h"
#include "../store/fixture.h"
#include "../store/lmdb_raw.h"
#include "run.h"

static const char *convctl;
static char dir[PATH_MAX];

/* c1: 5 events at positions 1-5 (a tool call answered, usage); c2: 3 at 6-8. */
static void build(const char *path)
{
	cs_store *s;
	cs_error err = CS_ERROR_INIT;
	if (fx_open(&s, path, 0, 0, false, &err)) {
		fprintf(stderr, "open: %s\n", err.msg);
		exit(1);
	}
	ev_arena a = EV_ARENA_INIT;
	Convstore__V1__Event *mr = ev_model_response(&a, "r1", "gpt-4o", NULL);
	ev_add_tool_call(&a, mr, "call_1", "search", "{\"q\": 1}");
	ev_set_usage(&a, mr, 100, 7, 0, 0, 0.01);
	Convstore__V1__Event *c1[] = {ev_message(&a, "e1", "system", "be brief"),
				      ev_message(&a, "e2", "user", "find it"), mr,
				      ev_tool_result(&a, "e4", "call_1", "search", "found"),
				      ev_model_response(&a, "e5", "gpt-4o", "here it is")};
	Convstore__V1__Event *c2[] = {ev_message(&a, "f1", "user", "a"),
				      ev_message(&a, "f2", "user", "b"),
				      ev_message(&a, "f3", "user", "c")};
	CHECK_EQ_INT(cs_store_append(NULL, s, "default", "c1", 0, c1, 5, &err), CS_OK);
	CHECK_EQ_INT(cs_store_append(NULL, s, "default", "c2", 0, c2, 3, &err), CS_OK);
	cs_store_close(s);
	ev_arena_free(&a);
}

/* The events of an export of @store as hex: the file gunzipped, its header (one message of
 * under 128 bytes, holding the clock) left out. */
static char *export_events(const char *store)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/snap.gz", dir);
	run(NULL, "rm -f %s; %s --data %s export -o %s", path, convctl, store, path);
	gzFile f = gzopen(path, "rb");
	size_t cap = 1 << 16, len = 0;
	unsigned char *raw = malloc(cap);
	int n;
	while (f && (n = gzread(f, raw + len, (unsigned)(cap - len))) > 0)
		if ((len += (size_t)n) == cap)
			raw = realloc(raw, cap *= 2);
	if (f)
		gzclose(f);
	size_t skip = len ? 1 + (size_t)raw[0] : 0;
	char *hex = malloc(2 * len + 1);
	hex[0] = '\0';
	for (size_t i = skip; i < len; i++)
		sprintf(hex + 2 * (i - skip), "%02x", raw[i]);
	free(raw);
	return hex;
}

/* What a store looks like from outside: stats and an export's events. */
static char *snapshot(const char *store)
{
	char *stats, *events = export_events(store);
	run(&stats, "%s --json --data %s stats", convctl, store);
	char *both = malloc(strlen(stats) + strlen(events) + 1);
	sprintf(both, "%s%s", stats, events);
	free(stats);
	free(events);
	return both;
}

static void test_verify_finds(void)
{
	char path[PATH_MAX + 8], *out;
	snprintf(path, sizeof(path), "%s/v", dir);
	build(path);
	CHECK_EQ_INT(run(&out, "%s --data %s verify", convctl, path), 0);
	CHECK_STR_EQ(out, "8 records checked, 0 problems\n");
	free(out);

	/* a flipped byte in the body of the event at position 4 */
	unsigned char key[8];
	raw_position_key(key, 4);
	void *orig;
	size_t len;
	CHECK_EQ_INT(raw_get(path, "events", key, 8, &orig, &len), 0);
	CHECK_EQ_INT(raw_flip(path, "events", key, 8, len - 3), 0);
	CHECK_EQ_INT(run(&out, "%s --data %s verify 2>%s/err", convctl, path, dir), 1);
	CHECK_STR_CONTAINS(out, "problem at position 4: ");
	free(out);
	run(&out, "cat %s/err", dir);
	CHECK_STR_CONTAINS(out, "convctl: verify: ");
	CHECK_STR_CONTAINS(out, "the first at position 4");
	free(out);
	CHECK_EQ_INT(raw_put(path, "events", false, key, 8, orig, len), 0);
	free(orig);
	CHECK_EQ_INT(run(NULL, "%s --data %s verify", convctl, path), 0);

	/* a deleted index entry: c2's version 2, at position 7 */
	unsigned char ik[RAW_KEY_MAX];
	size_t klen = raw_head_key(ik, "default", "c2");
	raw_position_key(ik + klen - 8, 2);
	CHECK_EQ_INT(raw_del(path, "streams", ik, klen), 0);
	CHECK_EQ_INT(run(&out, "%s --data %s --json verify 2>/dev/null", convctl, path), 1);
	json_t *j = json_loads(out, 0, NULL);
	CHECK(j != NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "first_bad_position")), 7);
	CHECK(json_integer_value(json_object_get(j, "problems")) >= 1);
	json_t *first = json_array_get(json_object_get(j, "problem_list"), 0);
	CHECK_EQ_INT(json_integer_value(json_object_get(first, "position")), 7);
	json_decref(j);
	free(out);
}

/* Write @len bytes gzipped to @path. */
static void gz_file(const char *path, const void *data, size_t len)
{
	gzFile f = gzopen(path, "wb");
	if (len)
		gzwrite(f, data, (unsigned)len);
	gzclose(f);
}

/* import @file into @store: exit 1, a message with @want, and the store unchanged. */
static void refused(const char *store, const char *file, const char *want)
{
	char *before = snapshot(store), *after, *err;
	CHECK_EQ_INT(run(NULL, "%s --data %s import %s 2>%s/err", convctl, store, file, dir), 1);
	run(&err, "cat %s/err", dir);
	if (!CHECK_STR_CONTAINS(err, want))
		fprintf(stderr, "  (importing %s)\n", file);
	CHECK_STR_CONTAINS(err, "convctl: import: ");
	after = snapshot(store);
	CHECK_STR_EQ(after, before);
	free(before);
	free(after);
	free(err);
}

static void test_import_refuses(void)
{
	char src[PATH_MAX + 8], dst[PATH_MAX + 8], f[PATH_MAX + 32], *out;
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	build(src);
	snprintf(f, sizeof(f), "%s/x.gz", dir);
	CHECK_EQ_INT(run(NULL, "%s --data %s export -o %s", convctl, src, f), 0);
	CHECK_EQ_INT(run(&out, "%s --data %s import %s", convctl, dst, f), 0);
	CHECK_STR_EQ(out, "imported 8 events: 8 stored, 0 already there\n");
	free(out);
	CHECK_EQ_INT(run(&out, "%s --data %s import %s", convctl, dst, f), 0);
	CHECK_STR_EQ(out, "imported 8 events: 0 stored, 8 already there\n");
	free(out);

	run(NULL, "head -c 3000 /dev/urandom > %s/garbage", dir);
	snprintf(f, sizeof(f), "%s/garbage", dir);
	refused(dst, f, "not a convstore export (not gzip)");
	CHECK_EQ_INT(run(NULL, "%s --data %s/new import %s 2>/dev/null", convctl, dir, f), 1);
	char created[PATH_MAX + 8];
	snprintf(created, sizeof(created), "%s/new", dir);
	CHECK(access(created, F_OK) != 0);

	run(NULL, "head -c $(( $(stat -c %%s %s/x.gz) / 2 )) %s/x.gz > %s/half.gz", dir, dir, dir);
	snprintf(f, sizeof(f), "%s/half.gz", dir);
	refused(dst, f, "truncated");

	static const unsigned char foreign[] = {3, 0x0a, 1, 'x'};
	snprintf(f, sizeof(f), "%s/foreign.gz", dir);
	gz_file(f, foreign, sizeof(foreign));
	refused(dst, f, "not a convstore export (wrong header)");

	unsigned char later[64] = {20, 0x0a, 16};
	memcpy(later + 3, "convstore.events", 16);
	later[19] = 0x10;
	later[20] = 9;
	snprintf(f, sizeof(f), "%s/later.gz", dir);
	gz_file(f, later, 21);
	refused(dst, f, "export format version 9, this convctl reads 1");

	snprintf(f, sizeof(f), "%s/empty.gz", dir);
	gz_file(f, "", 0);
	refused(dst, f, "not a convstore export (empty)");

	unsigned char bad_event[26];
	memcpy(bad_event, later, 21);
	bad_event[20] = 1; /* a good header, then an event that does not decode */
	memcpy(bad_event + 21, "\x04\xff\xff\xff\xff", 5);
	snprintf(f, sizeof(f), "%s/bad_event.gz", dir);
	gz_file(f, bad_event, sizeof(bad_event));
	refused(dst, f, "message 1 does not decode as Event");

	refused(dst, "/nonexistent/file.gz", "/nonexistent/file.gz: cannot open");
}

/* An export whose c1 differs from the store's at version 2 is a conflict and stores nothing. */
static void test_import_conflict(void)
{
	char other[PATH_MAX + 8], dst[PATH_MAX + 8], f[PATH_MAX + 16];
	snprintf(other, sizeof(other), "%s/other", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	cs_store *s;
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_open(&s, other, 0, 0, false, &err), CS_OK);
	ev_arena a = EV_ARENA_INIT;
	Convstore__V1__Event *evs[] = {ev_message(&a, "e1", "system", "be brief"),
				       ev_message(&a, "e2", "user", "something else")};
	CHECK_EQ_INT(cs_store_append(NULL, s, "default", "c1", 0, evs, 2, &err), CS_OK);
	cs_store_close(s);
	ev_arena_free(&a);
	snprintf(f, sizeof(f), "%s/other.gz", dir);
	CHECK_EQ_INT(run(NULL, "%s --data %s export -o %s", convctl, other, f), 0);
	refused(dst, f, "a different event is stored there");
}

static void test_usage_and_lookups(void)
{
	char store[PATH_MAX + 8], *out;
	snprintf(store, sizeof(store), "%s/dst", dir);
	static const struct {
		const char *args, *want;
		int rc;
	} cases[] = {
	    {"show", "convctl: show: missing arguments", 2},
	    {"show c1 --at x", "convctl: show: --at \"x\" is not a number", 2},
	    {"ls --bogus", "convctl: ls: bad flag \"--bogus\"", 2},
	    {"export", "convctl: export: -o FILE is required", 2},
	    {"diff c1 5 2", "convctl: diff: want versions A <= B", 2},
	    {"replay c1 --from 0", "convctl: replay: want 1 <= --from <= --to", 2},
	    {"events c1 x", "convctl: events: too many arguments", 2},
	    {"show nope", "convctl: show: conversation \"nope\" not found", 1},
	    {"show c1 --at 99", "convctl: show: ", 1},
	    {"export nope -o /dev/null", "convctl: export: conversation \"nope\" not found", 1},
	    {"stats --url http://127.0.0.1:1", "convctl: stats: works on a store", 2},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run(&out, "%s --data %s %s 2>&1", convctl, store, cases[i].args);
		if (!CHECK_EQ_INT(rc, cases[i].rc) || !CHECK_STR_CONTAINS(out, cases[i].want))
			fprintf(stderr, "  (convctl %s)\n", cases[i].args);
		free(out);
	}
	static const char *const cmds[] = {
	    "init",    "stats",	  "ls",	    "show",   "events",	       "messages",
	    "replay",  "diff",	  "export", "import", "import-openai", "verify",
	    "rebuild", "compact", "tail",   "keygen"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		CHECK_EQ_INT(run(&out, "%s %s --help", convctl, cmds[i]), 0);
		char want[64];
		snprintf(want, sizeof(want), "usage: convctl %s", cmds[i]);
		CHECK_STR_CONTAINS(out, want);
		free(out);
	}
}

static void test_replay_diff_ops(void)
{
	char store[PATH_MAX + 8], *out;
	snprintf(store, sizeof(store), "%s/dst", dir);
	CHECK_EQ_INT(run(&out, "%s --data %s replay c1", convctl, store), 0);
	CHECK_STR_CONTAINS(out, "#3 @3 default/c1 model_response");
	CHECK_STR_CONTAINS(out, "    + tool call opened call_1 search {\"q\": 1}\n");
	CHECK_STR_CONTAINS(out,
			   "    usage +100 in, +7 out, +0 cached, +0 reasoning, +0.010000 USD");
	CHECK_STR_CONTAINS(out, "    + tool call answered call_1: found\n");
	free(out);
	CHECK_EQ_INT(run(&out, "%s --data %s --json replay c1 --from 2 --to 3", convctl, store), 0);
	CHECK_EQ_UINT(count_lines(out), 2);
	json_t *j = json_loads(strchr(out, '\n') + 1, 0, NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "state"), "version")),
		     3);
	json_decref(j);
	free(out);
	CHECK_EQ_INT(run(&out, "%s --data %s diff c1 1 4", convctl, store), 0);
	CHECK_STR_CONTAINS(out, "c1 from version 1 to 4: 3 events");
	CHECK_STR_CONTAINS(out, "usage +100 in");
	free(out);

	CHECK_EQ_INT(run(&out, "%s --data %s compact -o %s/compact", convctl, store, dir), 0);
	free(out);
	CHECK_EQ_INT(run(NULL, "%s --data %s/compact verify", convctl, dir), 0);
	CHECK_EQ_INT(run(&out, "%s --data %s compact -o %s/compact 2>&1", convctl, store, dir), 1);
	CHECK_STR_CONTAINS(out, "exists already");
	free(out);
	CHECK_EQ_INT(run(&out, "%s --data %s rebuild", convctl, store), 0);
	CHECK_STR_CONTAINS(out, "2 conversations rebuilt from 8 events, 0 records differed");
	free(out);
}

/* A tail of the store's own feed (no server): the last events, then stop at --count. */
static void test_tail_store(void)
{
	char *out;
	CHECK_EQ_INT(
	    run(&out, "%s --data %s/dst --json tail --after-position 6 --count 2", convctl, dir),
	    0);
	CHECK_EQ_UINT(count_lines(out), 2);
	CHECK_STR_CONTAINS(out, "\"position\":7");
	free(out);
}

int main(void)
{
	convctl = getenv("CONVCTL");
	if (!convctl) {
		fprintf(stderr, "CONVCTL is not set\n");
		return 1;
	}
	fx_tmpdir(dir, "ctl");
	CHECK_RUN(test_verify_finds);
	CHECK_RUN(test_import_refuses);
	CHECK_RUN(test_import_conflict);
	CHECK_RUN(test_usage_and_lookups);
	CHECK_RUN(test_replay_diff_ops);
	CHECK_RUN(test_tail_store);
	int rc = check_finish();
	fx_rmrf(dir);
	return rc;
}
