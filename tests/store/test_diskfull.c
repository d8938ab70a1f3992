/*
 * test_diskfull.c - a disk that is really full gives CS_EFULL and leaves the store intact.
 *
 * The store goes on a 4 MiB tmpfs mounted by the test in a mount namespace of its own
 * (tests/tmpfs.h: the mount cannot outlive the test), next to a 512 KiB filler file. Durable
 * appends of ~32 KiB events go in until one fails. Then:
 *  - the failing append returned CS_EFULL (not CS_EIO, not a crash) and stored nothing: stats
 *    and the head are what they were before it;
 *  - every acknowledged event reads back exactly as sent, and verify finds no problem;
 *  - once the filler is removed, the same append succeeds with the next version, and the store
 *    reopens intact.
 * Needs root (mount): exits 77 (skipped) without it.
 */
#include "../check.h"
#include "../tmpfs.h"
#include "events.h"
#include "fixture.h"

#define T	     "t"
#define CONV	     "c"
#define FS_SIZE	     "size=4m"
#define FILLER_BYTES (512 * 1024)
#define EVENT_BYTES  (32 * 1024)
#define MAX_EVENTS   1000

static char dir[PATH_MAX], store_dir[PATH_MAX + 8], filler[PATH_MAX + 8];

/* A private tmpfs at dir (tests/tmpfs.h), or false when this process may not mount. */
static bool mount_small_fs(void)
{
	snprintf(dir, sizeof(dir), "/tmp/convstore-diskfull-XXXXXX");
	if (!tmpfs_mount(dir, FS_SIZE))
		return false;
	snprintf(store_dir, sizeof(store_dir), "%s/s", dir);
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	return true;
}

static void test_disk_full(void)
{
	if (!CHECK(tmpfs_fill(filler, FILLER_BYTES)))
		return;
	cs_store *s;
	cs_error err = CS_ERROR_INIT;
	if (!CHECK_EQ_INT(fx_open(&s, store_dir, 0, 0, true, &err), CS_OK))
		return;

	ev_arena a = {0};
	Convstore__V1__Event *sent[MAX_EVENTS + 1];
	size_t acked = 0;
	int rc = CS_OK;
	cs_store_stats before = {0};
	while (acked < MAX_EVENTS) {
		Convstore__V1__Event *ev =
		    ev_message(&a, NULL, "user", ev_noise(&a, acked + 1, EVENT_BYTES));
		before = fx_stats(s);
		cs_append_result r;
		rc = cs_store_append(&r, s, T, CONV, (int64_t)acked, &ev, 1, &err);
		if (rc != CS_OK)
			break;
		sent[acked++] = ev;
		CHECK_EQ_UINT(r.first_version, acked);
	}
	CHECK_EQ_INT(rc, CS_EFULL);
	CHECK(acked > 10 && acked < MAX_EVENTS);
	printf("%zu appends of %d bytes acknowledged before the disk was full: %s\n", acked,
	       EVENT_BYTES, err.msg);

	/* The failed append stored nothing. */
	cs_store_stats after = fx_stats(s);
	CHECK_EQ_UINT(after.events, before.events);
	CHECK_EQ_UINT(after.events, acked);
	CHECK_EQ_UINT(after.last_position, before.last_position);
	CHECK_EQ_UINT(fx_version(s, T, CONV), acked);

	/* Reads keep working and return exactly what was acknowledged. */
	cs_event_page all = {0};
	CHECK_EQ_INT(fx_read_all(&all, s, T, CONV, 100, &err), CS_OK);
	CHECK_EQ_UINT(all.n, acked);
	size_t differ = 0;
	for (size_t i = 0; i < all.n && i < acked; i++)
		differ += !ev_same_as_sent(&a, all.events[i], sent[i], true);
	CHECK_EQ_UINT(differ, 0);
	cs_event_page_deinit(&all);
	cs_verify_report rep;
	CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
	CHECK_EQ_UINT(rep.records, acked);

	/* Space freed: the same append goes through, with the next version. */
	CHECK_EQ_INT(unlink(filler), 0);
	Convstore__V1__Event *ev = ev_message(&a, NULL, "user", ev_noise(&a, 9999, EVENT_BYTES));
	cs_append_result r;
	CHECK_EQ_INT(cs_store_append(&r, s, T, CONV, (int64_t)acked, &ev, 1, &err), CS_OK);
	CHECK_EQ_UINT(r.first_version, acked + 1);
	cs_store_close(s);

	/* And the store reopens intact. */
	if (CHECK_EQ_INT(fx_open(&s, store_dir, 0, 0, true, &err), CS_OK)) {
		CHECK_EQ_INT(cs_store_verify(&rep, s, &err), CS_OK);
		CHECK_EQ_UINT(rep.records, acked + 1);
		CHECK_EQ_UINT(fx_version(s, T, CONV), acked + 1);
		cs_store_close(s);
	}
	ev_arena_free(&a);
}

int main(void)
{
	if (!mount_small_fs()) {
		fprintf(stderr, "skipped: cannot mount a tmpfs here (needs root)\n");
		return FX_SKIP;
	}
	CHECK_RUN(test_disk_full);
	tmpfs_unmount(dir);
	return check_finish();
}
