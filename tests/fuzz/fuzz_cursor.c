/*
 * tests/fuzz/fuzz_cursor.c - libFuzzer target for the conversation-list cursor (store/list.c):
 * the parser of the opaque string clients send back, and the listing that starts from whatever
 * it decodes.
 *
 * A cursor is checksummed, so random text is refused at once; the interesting inputs are valid
 * cursors with positions no listing ever produced. The input is therefore used twice:
 *   - as the cursor text itself, to GET-list with (the parser; mostly refusals);
 *   - its first 16 bytes as P0 and C (big-endian), turned into a well-formed cursor by the
 *     store's own encoder, which must decode back to the same pair (when C <= P0 + 1) and list
 *     without crashing (ASan watches every read), returning no more than the limit and never
 *     the erased conversation.
 * The store is made once per process in a temp folder: 40 conversations over two tenants, some
 * appended to after others (so a listing finds entries that moved) and one erased.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"

#include "../store/events.h"
#include "../store/fixture.h"

#define CONVS 40
#define LIMIT 7

static cs_store *store;
static char store_dir[PATH_MAX];

static void store_remove(void)
{
	cs_store_close(store);
	fx_rmrf(store_dir);
}

static int append_one(const char *tenant, const char *conv, const char *text)
{
	ev_arena a = EV_ARENA_INIT;
	Convstore__V1__Event *ev = ev_message(&a, NULL, "user", text);
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_append(&r, store, tenant, conv, CS_ANY_VERSION, &ev, 1, &err);
	if (rc)
		fprintf(stderr, "fuzz_cursor: append to %s: %s\n", conv, err.msg);
	ev_arena_free(&a);
	return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fx_tmpdir(store_dir, "fuzz-cursor");
	cs_error err = CS_ERROR_INIT;
	if (fx_open(&store, store_dir, 0, 0, false, &err)) {
		fprintf(stderr, "fuzz_cursor: open: %s\n", err.msg);
		exit(1);
	}
	atexit(store_remove);
	char conv[32];
	int rc = 0;
	for (int i = 0; i < CONVS && !rc; i++) {
		snprintf(conv, sizeof(conv), "c%d", i);
		rc = append_one(i % 4 ? "default" : "other", conv, "hello");
	}
	for (int i = 0; i < CONVS && !rc; i += 3) { /* these move above the earlier listing */
		snprintf(conv, sizeof(conv), "c%d", i);
		rc = append_one(i % 4 ? "default" : "other", conv, "again");
	}
	if (!rc)
		rc = cs_store_erase(NULL, store, "default", "c5", false, &err);
	if (rc) {
		fprintf(stderr, "fuzz_cursor: setup failed\n");
		exit(1);
	}
	return 0;
}

static void list_with(const char *cursor)
{
	cs_list_query q = {0};
	q.limit = LIMIT;
	q.cursor = cursor;
	Convstore__V1__ConversationList *page = NULL;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_list(&page, store, "default", &q, &err);
	if (rc != CS_OK) {
		FUZZ_REQUIRE(page == NULL && err.code == rc);
		FUZZ_REQUIRE(rc == CS_EINVAL || rc == CS_EGONE);
		return;
	}
	FUZZ_REQUIRE(page->n_conversations <= LIMIT);
	for (size_t i = 0; i < page->n_conversations; i++)
		FUZZ_REQUIRE(strcmp(page->conversations[i]->id, "c5") != 0);
	protobuf_c_message_free_unpacked(&page->base, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[CS_CURSOR_MAX];
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	memcpy(text, data, n);
	text[n] = 0;
	list_with(text);
	if (size < 16)
		return 0;

	uint64_t p0 = cs_get_be64(data), c = cs_get_be64(data + 8), p0_back, c_back;
	cs_list_cursor_encode(text, p0, c);
	cs_error err = CS_ERROR_INIT;
	int rc = cs_list_cursor_decode(&p0_back, &c_back, text, &err);
	if (c <= p0 || c - p0 <= 1) { /* C <= P0 + 1 without overflowing */
		FUZZ_REQUIRE(rc == CS_OK && p0_back == p0 && c_back == c);
		list_with(text);
	} else {
		FUZZ_REQUIRE(rc == CS_EINVAL);
	}
	return 0;
}
