/*
 * test_open.c - proves the lifecycle contract of cs_store_open()/cs_store_close() (store.h):
 *
 *  - open creates the missing folder (mode 0700) and a fresh, empty store;
 *  - a reopened store holds exactly the bytes it held (events, heads, stats), versions and
 *    positions continue where they stopped, and idempotency keys survive the reopen; pages and
 *    heads a read returned stay valid after the store is closed;
 *  - a store whose meta "format" record says another version is refused with CS_ECORRUPT and a
 *    message naming that version (forged with liblmdb under the closed store), and is accepted
 *    again once the record is restored; an LMDB environment that is not a convstore store and a
 *    file that is not LMDB at all are refused with CS_ECORRUPT, and a path that is a file with
 *    CS_EIO;
 *  - a read-only store reads but refuses appends with CS_EINVAL and writes nothing;
 *  - bad options (no options, NULL or empty path) are CS_EINVAL with *out NULL, and
 *    cs_store_close(NULL) is a no-op.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"
#include "lmdb_raw.h"

#define T "t"

static char root[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;

static const char *sub(const char *name)
{
	return ev_strf(&A, "%s/%s", root, name);
}

/* A non-NULL pointer that cs_store_open() must overwrite with NULL when it fails. */
static cs_store *poison(void)
{
	return (cs_store *)(uintptr_t)0x1;
}

static int append1(cs_append_result *r, cs_store *s, const char *conv, Convstore__V1__Event *ev,
		   cs_error *err)
{
	Convstore__V1__Event *evs[] = {ev};
	return cs_store_append(r, s, T, conv, CS_ANY_VERSION, evs, 1, err);
}

/* Create a store at @path holding one message, @content, in conversation "c", and close it; false
 * (a failed check) when it does not open. */
static bool closed_store_with_one(const char *path, const char *content)
{
	cs_store *s = NULL;
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(fx_open(&s, path, 0, 0, false, &err), CS_OK))
		return false;
	cs_append_result r;
	CHECK_EQ_INT(append1(&r, s, "c", ev_message(&A, NULL, "user", content), &err), CS_OK);
	cs_store_close(s);
	return true;
}

/* Opening @path must fail with @want and leave the store pointer NULL; @what names the case. */
static void open_refused(const char *path, int want, const char *what)
{
	cs_store *s = poison();
	cs_error err = CS_ERROR_INIT;
	int rc = fx_open(&s, path, 0, 0, false, &err);
	if (!CHECK_EQ_INT(rc, want))
		fprintf(stderr, "  %s: rc %d \"%s\"\n", what, rc, err.msg);
	if (!CHECK(s == NULL) && rc == CS_OK)
		cs_store_close(s);
}

static void test_creates_folder(void)
{
	const char *path = sub("fresh");
	struct stat st;
	CHECK_EQ_INT(stat(path, &st), -1);

	cs_store *s = poison();
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(fx_open(&s, path, 0, 0, false, &err), CS_OK)) {
		fprintf(stderr, "  open: %s\n", err.msg);
		return;
	}
	CHECK(s != NULL && s != poison());
	if (CHECK_EQ_INT(stat(path, &st), 0)) {
		CHECK(S_ISDIR(st.st_mode));
		CHECK_EQ_INT(st.st_mode & 0777, 0700);
	}
	cs_store_stats stats = fx_stats(s);
	CHECK_EQ_UINT(stats.events, 0);
	CHECK_EQ_UINT(stats.conversations, 0);
	CHECK_EQ_UINT(stats.last_position, 0);
	CHECK(stats.map_size > 0);

	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_feed(&p, s, NULL, 0, 10, &err), CS_OK);
	CHECK_EQ_UINT(p.n, 0);
	CHECK_EQ_UINT(p.next, 0);
	cs_event_page_deinit(&p);
	cs_store_close(s);
}

/* Every event of the store, packed, in feed order. */
typedef struct packed_log {
	uint8_t *bytes[16];
	size_t len[16];
	size_t n;
} packed_log;

static void pack_feed(packed_log *out, cs_store *s)
{
	memset(out, 0, sizeof *out);
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_store_read_feed(&p, s, NULL, 0, 16, &err), CS_OK);
	for (size_t i = 0; i < p.n && i < 16; i++)
		out->bytes[i] = ev_pack(&A, p.events[i], &out->len[i]);
	out->n = p.n;
	cs_event_page_deinit(&p);
}

static void test_reopen(void)
{
	const char *path = sub("reopen");
	cs_store *s = NULL;
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(fx_open(&s, path, 0, 0, true, &err), CS_OK))
		return;
	cs_append_result r;
	Convstore__V1__Event *mr = ev_model_response(&A, "r2", "gpt-4o", NULL);
	ev_add_tool_call(&A, mr, "call_1", "get_user", "{}");
	ev_set_usage(&A, mr, 7, 3, 0, 0, 0.5);
	Convstore__V1__Event *a[] = {ev_message(&A, "r1", "user", "hi"), mr};
	CHECK_EQ_INT(cs_store_append(&r, s, T, "c1", 0, a, 2, &err), CS_OK);
	CHECK_EQ_INT(append1(&r, s, "c2", ev_message(&A, NULL, "system", "sys"), &err), CS_OK);
	CHECK_EQ_INT(
	    append1(&r, s, "c1", ev_tool_result(&A, "r3", "call_1", "get_user", "{}"), &err),
	    CS_OK);
	uint64_t last = r.last_position;
	packed_log before;
	pack_feed(&before, s);
	cs_store_stats st0 = fx_stats(s);
	cs_store_close(s);

	s = NULL;
	if (!CHECK_EQ_INT(fx_open(&s, path, 0, 0, true, &err), CS_OK))
		return;
	packed_log after;
	pack_feed(&after, s);
	if (CHECK_EQ_UINT(after.n, 4) && CHECK_EQ_UINT(before.n, 4))
		for (size_t i = 0; i < 4; i++)
			CHECK_MEM_EQ(after.bytes[i], after.len[i], before.bytes[i], before.len[i]);
	cs_store_stats st1 = fx_stats(s);
	CHECK_EQ_UINT(st1.events, st0.events);
	CHECK_EQ_UINT(st1.events, 4);
	CHECK_EQ_UINT(st1.conversations, 2);
	CHECK_EQ_UINT(st1.last_position, last);

	Convstore__V1__Head *h = NULL;
	if (CHECK_EQ_INT(cs_store_head(&h, s, T, "c1", &err), CS_OK)) {
		CHECK_EQ_UINT(h->version, 3);
		CHECK_EQ_UINT(h->last_position, last);
		CHECK_EQ_UINT(h->n_pending_tool_calls, 0);
		CHECK(h->usage && h->usage->input_tokens == 7 && h->usage->output_tokens == 3);
		protobuf_c_message_free_unpacked(&h->base, NULL);
	}

	/* the ids survive: a retry is still a replay */
	cs_append_result rr;
	CHECK_EQ_INT(cs_store_append(&rr, s, T, "c1", 0, a, 2, &err), CS_OK);
	CHECK(rr.replayed);
	CHECK_EQ_UINT(rr.first_version, 1);
	CHECK_EQ_UINT(rr.last_version, 2);

	/* numbering continues */
	CHECK_EQ_INT(append1(&r, s, "c1", ev_message(&A, NULL, "user", "again"), &err), CS_OK);
	CHECK_EQ_UINT(r.first_version, 4);
	CHECK(r.first_position > last);
	CHECK_EQ_INT(append1(&r, s, "c2", ev_message(&A, NULL, "user", "again"), &err), CS_OK);
	CHECK_EQ_UINT(r.first_version, 2);

	/* what reads return is copied out: it outlives the store */
	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_stream(&p, s, T, "c1", 1, 10, CS_FORWARD, &err), CS_OK);
	h = NULL;
	CHECK_EQ_INT(cs_store_head(&h, s, T, "c1", &err), CS_OK);
	cs_store_close(s);
	if (CHECK_EQ_UINT(p.n, 4)) {
		CHECK_STR_EQ(p.events[0]->message->content, "hi");
		CHECK_STR_EQ(p.events[1]->model_response->tool_calls[0]->name, "get_user");
		CHECK_STR_EQ(p.events[3]->message->content, "again");
	}
	if (CHECK(h != NULL)) {
		CHECK_STR_EQ(h->id, "c1");
		CHECK_EQ_UINT(h->version, 4);
		protobuf_c_message_free_unpacked(&h->base, NULL);
	}
	cs_event_page_deinit(&p);
	CHECK(p.events == NULL && p.n == 0);
	cs_event_page_deinit(&p); /* deinit leaves an empty page: twice is fine */
	cs_event_page_deinit(NULL);
}

static void test_format_version(void)
{
	const char *path = sub("format");
	if (!closed_store_with_one(path, "x"))
		return;

	/* the record the store wrote: 4 bytes, big-endian CS_STORE_FORMAT_VERSION */
	void *v = NULL;
	size_t vlen = 0;
	CHECK_EQ_INT(raw_get(path, "meta", "format", 6, &v, &vlen), 0);
	static const unsigned char one[4] = {0, 0, 0, CS_STORE_FORMAT_VERSION};
	CHECK_MEM_EQ(v, vlen, one, sizeof one);
	free(v);

	static const unsigned char ninety_nine[4] = {0, 0, 0, 99};
	CHECK_EQ_INT(raw_put(path, "meta", false, "format", 6, ninety_nine, 4), 0);
	cs_store *s = poison();
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_open(&s, path, 0, 0, false, &err), CS_ECORRUPT);
	CHECK_EQ_INT(err.code, CS_ECORRUPT);
	CHECK(s == NULL);
	CHECK_STR_CONTAINS(err.msg, "99");

	/* read-only opens check it too */
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = path;
	o.read_only = true;
	s = poison();
	CHECK_EQ_INT(cs_store_open(&s, &o, &err), CS_ECORRUPT);
	CHECK(s == NULL);

	/* a format record of the wrong size */
	CHECK_EQ_INT(raw_put(path, "meta", false, "format", 6, one + 2, 2), 0);
	open_refused(path, CS_ECORRUPT, "format record of 2 bytes");

	/* the refusal was about the version alone: restored, the store opens with its data */
	CHECK_EQ_INT(raw_put(path, "meta", false, "format", 6, one, 4), 0);
	s = NULL;
	if (CHECK_EQ_INT(fx_open(&s, path, 0, 0, false, &err), CS_OK)) {
		CHECK_EQ_UINT(fx_version(s, T, "c"), 1);
		cs_store_close(s);
	}
}

static void test_not_a_store(void)
{
	/* an LMDB environment that some other program wrote */
	const char *foreign = sub("foreign");
	CHECK_EQ_INT(mkdir(foreign, 0700), 0);
	CHECK_EQ_INT(raw_put(foreign, "accounts", true, "alice", 5, "42", 2), 0);
	open_refused(foreign, CS_ECORRUPT, "foreign lmdb env opened as a store");

	/* a data file that is not LMDB at all */
	const char *garbage = sub("garbage");
	CHECK_EQ_INT(mkdir(garbage, 0700), 0);
	const char *file = ev_strf(&A, "%s/data.mdb", garbage);
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	char junk[16384];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 7 + 3);
	CHECK_EQ_INT(write(fd, junk, sizeof junk), (long long)sizeof junk);
	close(fd);
	open_refused(garbage, CS_ECORRUPT, "garbage data.mdb");

	/* a path that is a regular file */
	const char *plain = sub("plain-file");
	fd = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	close(fd);
	open_refused(plain, CS_EIO, "path is a file");
}

static void test_read_only(void)
{
	const char *path = sub("ro");
	if (!closed_store_with_one(path, "written"))
		return;

	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = path;
	o.read_only = true;
	cs_store *s = NULL;
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(cs_store_open(&s, &o, &err), CS_OK)) {
		fprintf(stderr, "  read-only open: %s\n", err.msg);
		return;
	}
	cs_event_page p = {0};
	CHECK_EQ_INT(cs_store_read_stream(&p, s, T, "c", 1, 10, CS_FORWARD, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 1))
		CHECK_STR_EQ(p.events[0]->message->content, "written");
	cs_event_page_deinit(&p);
	CHECK_EQ_UINT(fx_version(s, T, "c"), 1);

	cs_append_result r;
	err = (cs_error)CS_ERROR_INIT;
	CHECK_EQ_INT(append1(&r, s, "c", ev_message(&A, NULL, "user", "refused"), &err), CS_EINVAL);
	CHECK_EQ_INT(err.code, CS_EINVAL);
	CHECK_EQ_INT(append1(&r, s, "new", ev_message(&A, NULL, "user", "refused"), &err),
		     CS_EINVAL);
	CHECK_EQ_UINT(fx_stats(s).events, 1);
	CHECK_EQ_UINT(fx_version(s, T, "new"), 0);
	cs_verify_report rep = {0};
	CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
	CHECK_EQ_UINT(rep.records, 1);
	cs_store_close(s);

	/* a read-only open does not create a missing store */
	const char *missing = sub("ro-missing");
	o.path = missing;
	s = poison();
	int rc = cs_store_open(&s, &o, &err);
	CHECK(rc != CS_OK);
	CHECK(s == NULL);
	struct stat st;
	CHECK_EQ_INT(stat(missing, &st), -1);
	if (rc == CS_OK)
		cs_store_close(s);
}

static void test_bad_options(void)
{
	cs_store *s = poison();
	cs_error err = CS_ERROR_INIT;
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	CHECK_EQ_INT(cs_store_open(&s, &o, &err), CS_EINVAL);
	CHECK_EQ_INT(err.code, CS_EINVAL);
	CHECK(err.msg[0] != '\0');
	CHECK(s == NULL);

	o.path = "";
	s = poison();
	CHECK_EQ_INT(cs_store_open(&s, &o, &err), CS_EINVAL);
	CHECK(s == NULL);

	s = poison();
	CHECK_EQ_INT(cs_store_open(&s, NULL, &err), CS_EINVAL);
	CHECK(s == NULL);

	/* a NULL error struct is allowed */
	s = poison();
	CHECK_EQ_INT(cs_store_open(&s, &o, NULL), CS_EINVAL);
	CHECK(s == NULL);

	cs_store_close(NULL);
	CHECK(true);
}

int main(void)
{
	fx_tmpdir(root, "open");
	CHECK_RUN(test_creates_folder);
	CHECK_RUN(test_reopen);
	CHECK_RUN(test_format_version);
	CHECK_RUN(test_not_a_store);
	CHECK_RUN(test_read_only);
	CHECK_RUN(test_bad_options);
	ev_arena_free(&A);
	fx_rmrf(root);
	return check_finish();
}
