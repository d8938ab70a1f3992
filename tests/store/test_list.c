/*
 * test_list.c - cs_store_list(), and the conversation operations whose effect it shows
 * (cs_store_create, cs_store_update):
 *
 *  - newest first by the position of each conversation's last event; an append moves one to the
 *    front; summaries carry version, last_position, title, counts but no messages and no pending
 *    tool calls;
 *  - filters: status, updated_after (strictly later), metadata KEY=VALUE (all must match);
 *  - limit 1..1000, 0 meaning 100, 1001 and a bad status CS_EINVAL; garbage, truncated,
 *    tampered and overlong cursors CS_EINVAL; cursors are URL-safe and shorter than
 *    CS_CURSOR_MAX;
 *  - paging through 1,000 conversations 7 at a time while appends move conversations to the
 *    front between pages (interleaved, and from another thread): every conversation that
 *    existed at the first page is listed exactly once, in the order of that moment, and no id
 *    is listed twice;
 *  - tenants: one never sees another's conversations, even with the same ids;
 *  - create (title, metadata) and update (title, metadata merge with "" removing, status) show in
 *    the listing and are conversation_updated events in the stream; their error codes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../check.h"
#include "events.h"
#include "fixture.h"
#include "internal.h"
#include "views.h"

static char dir[PATH_MAX];
static ev_arena A = EV_ARENA_INIT;
static cs_store *S;

static Convstore__V1__Event *user(const char *text)
{
	return ev_message(&A, NULL, "user", text);
}

/* Append one message to tenant/conv; its last position (0 on failure). */
static uint64_t touch(const char *tenant, const char *conv)
{
	Convstore__V1__Event *e[] = {user("hi")};
	cs_append_result r = {0};
	vw_append(&r, S, tenant, conv, e, 1);
	return r.last_position;
}

static bool create(const char *tenant, const char *conv, const char *title, const char *const *kv)
{
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_create(&r, S, tenant, conv, vw_created(&A, title, kv, NULL), &err);
	return vw_said(rc, "create", conv, &err) == CS_OK;
}

static bool update(const char *tenant, const char *conv, const char *title, const char *status,
		   const char *const *kv)
{
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_update(&r, S, tenant, conv, CS_ANY_VERSION,
				 vw_updated(&A, title, status, kv, NULL), &err);
	return vw_said(rc, "update", conv, &err) == CS_OK;
}

/* The ids of one page as "a,b,c"; NULL (and *rc) on error. *cursor gets next_cursor (or NULL). */
static char *page_ids(const char *tenant, cs_list_query *q, int *rc, char **cursor)
{
	Convstore__V1__ConversationList *l = vw_list(S, tenant, q, rc);
	if (cursor)
		*cursor = NULL;
	if (!l)
		return NULL;
	char *s = ev_strf(&A, "%s", "");
	for (size_t i = 0; i < l->n_conversations; i++)
		s = ev_strf(&A, "%s%s%s", s, i ? "," : "", l->conversations[i]->id);
	if (cursor && l->next_cursor_opt_case ==
			  CONVSTORE__V1__CONVERSATION_LIST__NEXT_CURSOR_OPT_NEXT_CURSOR)
		*cursor = ev_strf(&A, "%s", l->next_cursor);
	vw_free(l);
	return s;
}

/* All ids of a tenant's listing with query @q, following cursors. */
static char *all_ids(const char *tenant, cs_list_query q)
{
	char *all = ev_strf(&A, "%s", "");
	for (int pages = 0; pages < 1000; pages++) {
		int rc;
		char *cursor;
		char *ids = page_ids(tenant, &q, &rc, &cursor);
		if (!ids) {
			fprintf(stderr, "  list %s: rc %d\n", tenant, rc);
			return NULL;
		}
		if (*ids)
			all = ev_strf(&A, "%s%s%s", all, *all ? "," : "", ids);
		if (!cursor)
			return all;
		q.cursor = cursor;
	}
	return NULL;
}

/* ---- order and summaries ----------------------------------------------------------------- */

static void test_order_and_summaries(void)
{
	for (int i = 0; i < 10; i++)
		touch("ord", ev_strf(&A, "o%d", i));
	cs_list_query q = {0};
	CHECK_STR_EQ(all_ids("ord", q), "o9,o8,o7,o6,o5,o4,o3,o2,o1,o0");
	Convstore__V1__Event *r = ev_model_response(&A, NULL, "gpt-4o", NULL);
	ev_add_tool_call(&A, r, "call", "fn", "{}");
	Convstore__V1__Event *evs[] = {user("again"), r};
	cs_append_result res;
	CHECK_EQ_INT(vw_append(&res, S, "ord", "o3", evs, 2), CS_OK);
	CHECK_STR_EQ(all_ids("ord", q), "o3,o9,o8,o7,o6,o5,o4,o2,o1,o0");

	int rc;
	Convstore__V1__ConversationList *l = vw_list(S, "ord", &q, &rc);
	if (CHECK(l) && CHECK_EQ_UINT(l->n_conversations, 10)) {
		const Convstore__V1__ConversationState *o3 = l->conversations[0];
		CHECK_STR_EQ(o3->id, "o3");
		CHECK_EQ_UINT(o3->version, 3);
		CHECK_EQ_UINT(o3->last_position, res.last_position);
		CHECK_STR_EQ(o3->status, "active");
		CHECK(o3->counts && o3->counts->events == 3 && o3->counts->messages == 3 &&
		      o3->counts->tool_calls == 1);
		CHECK(o3->usage && o3->usage->responses == 1);
		CHECK(o3->created_at && o3->updated_at);
		size_t with_transcript = 0;
		for (size_t i = 0; i < l->n_conversations; i++)
			with_transcript += l->conversations[i]->n_messages +
					   l->conversations[i]->n_pending_tool_calls;
		CHECK_EQ_UINT(with_transcript, 0);
		CHECK_EQ_INT(l->next_cursor_opt_case,
			     CONVSTORE__V1__CONVERSATION_LIST__NEXT_CURSOR_OPT__NOT_SET);
	}
	vw_free(l);
	/* an empty tenant: an empty page and no cursor */
	CHECK_STR_EQ(all_ids("nobody", q), "");
}

/* ---- create and update ------------------------------------------------------------------- */

static void test_create_update(void)
{
	if (!CHECK(create("cu", "c1", "Hello", VW_KV("team", "x", "env", "prod"))))
		return;
	int rc;
	cs_list_query q = {0};
	Convstore__V1__ConversationList *l = vw_list(S, "cu", &q, &rc);
	if (CHECK(l) && CHECK_EQ_UINT(l->n_conversations, 1)) {
		const Convstore__V1__ConversationState *c = l->conversations[0];
		CHECK_STR_EQ(c->title, "Hello");
		CHECK_STR_EQ(vw_state_meta(c, "team"), "x");
		CHECK_STR_EQ(vw_state_meta(c, "env"), "prod");
		CHECK_EQ_UINT(c->version, 1);
	}
	vw_free(l);

	CHECK(update("cu", "c1", "Bye", "archived", VW_KV("env", "", "owner", "ann")));
	l = vw_list(S, "cu", &q, &rc);
	if (CHECK(l) && CHECK_EQ_UINT(l->n_conversations, 1)) {
		const Convstore__V1__ConversationState *c = l->conversations[0];
		CHECK_STR_EQ(c->title, "Bye");
		CHECK_STR_EQ(c->status, "archived");
		CHECK_EQ_UINT(c->n_metadata, 2);
		CHECK_STR_EQ(vw_state_meta(c, "team"), "x");
		CHECK_STR_EQ(vw_state_meta(c, "owner"), "ann");
		CHECK(vw_state_meta(c, "env") == NULL);
		CHECK_EQ_UINT(c->version, 2);
	}
	vw_free(l);

	/* the stream records both as events of their own */
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	CHECK_EQ_INT(fx_read_all(&p, S, "cu", "c1", 10, &err), CS_OK);
	if (CHECK_EQ_UINT(p.n, 2)) {
		CHECK_STR_EQ(p.events[0]->type, "conversation_created");
		CHECK_STR_EQ(p.events[1]->type, "conversation_updated");
		const Convstore__V1__ConversationUpdated *u = p.events[1]->conversation_updated;
		if (CHECK_EQ_INT(p.events[1]->payload_case,
				 CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_UPDATED)) {
			CHECK_EQ_INT(u->title_opt_case,
				     CONVSTORE__V1__CONVERSATION_UPDATED__TITLE_OPT_TITLE);
			CHECK_STR_EQ(u->title, "Bye");
			CHECK_STR_EQ(u->status, "archived");
			CHECK_EQ_UINT(u->n_metadata, 2);
		}
	}
	cs_event_page_deinit(&p);

	/* a status-only update keeps the title; back to active */
	CHECK(update("cu", "c1", NULL, "active", NULL));
	l = vw_list(S, "cu", &q, &rc);
	if (CHECK(l) && CHECK_EQ_UINT(l->n_conversations, 1)) {
		CHECK_STR_EQ(l->conversations[0]->title, "Bye");
		CHECK_STR_EQ(l->conversations[0]->status, "active");
	}
	vw_free(l);
}

static void test_create_update_errors(void)
{
	cs_append_result r;
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__ConversationUpdated *title = vw_updated(&A, "t", NULL, NULL, NULL);
	CHECK_EQ_INT(cs_store_create(&r, S, "cu", "c1", NULL, &err), CS_ECONFLICT);
	CHECK_EQ_INT(cs_store_create(&r, S, "cu", "bad id", NULL, &err), CS_EINVAL);
	CHECK_EQ_INT(cs_store_update(&r, S, "cu", "nope", CS_ANY_VERSION, title, &err),
		     CS_ENOTFOUND);
	CHECK_EQ_INT(cs_store_update(&r, S, "cu", "c1", 1, title, &err), CS_ECONFLICT);
	CHECK_EQ_UINT(err.current_version, 3);
	CHECK_EQ_INT(cs_store_update(&r, S, "cu", "c1", CS_ANY_VERSION,
				     vw_updated(&A, NULL, "deleted", NULL, NULL), &err),
		     CS_EINVAL);
	CHECK_EQ_UINT(fx_version(S, "cu", "c1"), 3);
	CHECK_EQ_INT(cs_store_update(&r, S, "cu", "c1", 3, title, &err), CS_OK);
	CHECK_EQ_UINT(r.first_version, 4);
	/* create without a spec: version 1, no title */
	CHECK_EQ_INT(cs_store_create(&r, S, "cu", "c2", NULL, &err), CS_OK);
	CHECK_EQ_UINT(r.first_version, 1);
	CHECK_EQ_UINT(r.last_version, 1);
	CHECK_EQ_UINT(fx_version(S, "cu", "c2"), 1);
}

/* ---- filters ----------------------------------------------------------------------------- */

static void test_filters(void)
{
	bool ok = create("flt", "f1", NULL, VW_KV("team", "x", "env", "prod")) &&
		  create("flt", "f2", NULL, VW_KV("team", "x", "env", "dev")) &&
		  create("flt", "f3", NULL, VW_KV("team", "y", "env", "prod")) &&
		  create("flt", "f4", NULL, VW_KV("team", "x", "env", "prod", "tier", "gold")) &&
		  create("flt", "f5", NULL, NULL) &&
		  create("flt", "f6", NULL, VW_KV("team", "x", "env", "prod")) &&
		  update("flt", "f6", NULL, "archived", NULL);
	if (!CHECK(ok))
		return;
	const char *const k2[] = {"team", "env"}, *const v2[] = {"x", "prod"};
	cs_list_query q = {.meta_keys = k2, .meta_values = v2, .n_meta = 2};
	CHECK_STR_EQ(all_ids("flt", q), "f6,f4,f1");
	q.status = "active";
	CHECK_STR_EQ(all_ids("flt", q), "f4,f1");
	q.status = "archived";
	CHECK_STR_EQ(all_ids("flt", q), "f6");
	q.status = NULL;
	const char *const k3[] = {"team", "env", "tier"}, *const v3[] = {"x", "prod", "gold"};
	cs_list_query q3 = {.meta_keys = k3, .meta_values = v3, .n_meta = 3};
	CHECK_STR_EQ(all_ids("flt", q3), "f4");
	const char *const kt[] = {"team"}, *const vt[] = {"X"};
	cs_list_query qt = {.meta_keys = kt, .meta_values = vt, .n_meta = 1};
	CHECK_STR_EQ(all_ids("flt", qt), "");
	const char *const ke[] = {"env"}, *const ve[] = {"prod"};
	cs_list_query qe = {.meta_keys = ke, .meta_values = ve, .n_meta = 1};
	CHECK_STR_EQ(all_ids("flt", qe), "f6,f4,f3,f1");
	cs_list_query qs = {.status = "active"};
	CHECK_STR_EQ(all_ids("flt", qs), "f5,f4,f3,f2,f1");
	qs.status = "bogus";
	int rc;
	CHECK(page_ids("flt", &qs, &rc, NULL) == NULL);
	CHECK_EQ_INT(rc, CS_EINVAL);
}

static void test_updated_after(void)
{
	touch("time", "a1");
	touch("time", "a2");
	int64_t t_a = fx_now();
	while (fx_now() < t_a + 2) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	touch("time", "b1");
	touch("time", "b2");
	cs_list_query q = {.updated_after = t_a + 1};
	CHECK_STR_EQ(all_ids("time", q), "b2,b1");
	q.updated_after = t_a - 100;
	CHECK_STR_EQ(all_ids("time", q), "b2,b1,a2,a1");
	q.updated_after = fx_now() + 100;
	CHECK_STR_EQ(all_ids("time", q), "");
	touch("time", "a1");
	q.updated_after = t_a + 1;
	CHECK_STR_EQ(all_ids("time", q), "a1,b2,b1");
}

/* ---- limits and cursors ------------------------------------------------------------------ */

static size_t page_len(const char *tenant, size_t limit, int *rc, char **cursor)
{
	cs_list_query q = {.limit = limit};
	char *ids = page_ids(tenant, &q, rc, cursor);
	if (!ids)
		return SIZE_MAX;
	size_t n = *ids ? 1 : 0;
	for (const char *p = ids; *p; p++)
		n += *p == ',';
	return n;
}

static void test_limits(void)
{
	for (int i = 0; i < 150; i++)
		touch("lim", ev_strf(&A, "l%03d", i));
	int rc;
	char *cursor;
	CHECK_EQ_UINT(page_len("lim", 0, &rc, &cursor), 100);
	CHECK(cursor != NULL);
	CHECK_EQ_UINT(page_len("lim", 1, &rc, &cursor), 1);
	CHECK(cursor != NULL);
	CHECK_EQ_UINT(page_len("lim", 149, &rc, &cursor), 149);
	CHECK(cursor != NULL);
	CHECK_EQ_UINT(page_len("lim", 1000, &rc, &cursor), 150);
	CHECK(cursor == NULL);
	CHECK_EQ_UINT(page_len("lim", 1001, &rc, &cursor), SIZE_MAX);
	CHECK_EQ_INT(rc, CS_EINVAL);
	CHECK_EQ_UINT(page_len("lim", SIZE_MAX, &rc, &cursor), SIZE_MAX);
	CHECK_EQ_INT(rc, CS_EINVAL);
	/* pages of 1 walk all 150 */
	cs_list_query q = {.limit = 1};
	char *all = all_ids("lim", q);
	CHECK(all && strlen(all) == 150 * 4 + 149);
}

static bool url_safe(const char *s)
{
	for (; *s; s++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~",
			    *s))
			return false;
	return true;
}

static void bad_cursor(const char *cursor, const char *what)
{
	cs_list_query q = {.limit = 10, .cursor = cursor};
	Convstore__V1__ConversationList *l = (void *)1;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_list(&l, S, "lim", &q, &err);
	if (!CHECK_EQ_INT(rc, CS_EINVAL))
		fprintf(stderr, "  cursor %s \"%s\" accepted\n", what, cursor);
	else
		CHECK(l == NULL && err.msg[0] != '\0');
	if (rc == CS_OK)
		vw_free(l);
}

static void test_bad_cursors(void)
{
	int rc;
	char *cursor;
	page_len("lim", 10, &rc, &cursor);
	if (!CHECK(cursor))
		return;
	size_t n = strlen(cursor);
	CHECK(n > 0 && n < CS_CURSOR_MAX);
	CHECK(url_safe(cursor));
	bad_cursor("garbage!!", "garbage");
	bad_cursor("%00%ff", "percent-encoded");
	bad_cursor(ev_strf(&A, "%.*s", (int)(n - 1), cursor), "truncated by one");
	bad_cursor(ev_strf(&A, "%.*s", (int)(n / 2), cursor), "truncated to half");
	bad_cursor(ev_strf(&A, "%sAAAA", cursor), "extended");
	char *over = ev_repeat(&A, 'A', CS_CURSOR_MAX + 10);
	bad_cursor(over, "overlong");
	/* every character but the last, whose low bits may be base64 padding that no decoder
	 * sees */
	for (size_t i = 0; i + 1 < n; i++) {
		char *t = ev_strf(&A, "%s", cursor);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		bad_cursor(t, ev_strf(&A, "tampered at %zu", i));
	}
	/* the good one still works and gives the next 10 */
	cs_list_query q = {.limit = 10, .cursor = cursor};
	char *ids = page_ids("lim", &q, &rc, NULL);
	CHECK(ids && strlen(ids) == 10 * 4 + 9);
}

/* Cursors at the top of the u64 range. The check C <= P0 + 1 wrapped at P0 = UINT64_MAX and
 * refused every such cursor but C = 0 (found by tests/fuzz/fuzz_cursor). */
static void test_cursor_bounds(void)
{
	char text[CS_CURSOR_MAX];
	uint64_t p0 = 0, c = 0;
	cs_list_cursor_encode(text, UINT64_MAX, 5);
	CHECK_EQ_INT(cs_list_cursor_decode(&p0, &c, text, NULL), CS_OK);
	CHECK_EQ_UINT(p0, UINT64_MAX);
	CHECK_EQ_UINT(c, 5);
	cs_list_cursor_encode(text, 10, 11);
	CHECK_EQ_INT(cs_list_cursor_decode(&p0, &c, text, NULL), CS_OK);
	cs_list_cursor_encode(text, 10, 12);
	CHECK_EQ_INT(cs_list_cursor_decode(&p0, &c, text, NULL), CS_EINVAL);
	/* (MAX, MAX) stops nowhere and moves nothing back: the first page, as without a cursor. */
	cs_list_cursor_encode(text, UINT64_MAX, UINT64_MAX);
	int rc;
	cs_list_query first = {.limit = 10}, from_top = {.limit = 10, .cursor = text};
	char *want = page_ids("lim", &first, &rc, NULL);
	char *got = page_ids("lim", &from_top, &rc, NULL);
	CHECK_EQ_INT(rc, CS_OK);
	CHECK_STR_EQ(got, want);
}

/* ---- paging while appends happen --------------------------------------------------------- */

#define N_PAGED 1000

typedef struct paging {
	const char *tenant;
	uint64_t last_pos[N_PAGED]; /* each original's last position before the first page */
	unsigned seen[N_PAGED];
	size_t repeats, unknown, out_of_order, pages, listed;
	char *listed_ids; /* every id listed, to find repeats of new ones */
} paging;

static long original_index(const char *id)
{
	int k;
	return sscanf(id, "p%d", &k) == 1 && k >= 0 && k < N_PAGED ? k : -1;
}

static unsigned long rng(unsigned long *x)
{
	*x = *x * 6364136223846793005ul + 1442695040888963407ul;
	return *x >> 33;
}

static void fill(paging *p)
{
	for (int i = 0; i < N_PAGED; i++)
		p->last_pos[i] = touch(p->tenant, ev_strf(&A, "p%04d", i));
}

/* Tally one page; returns its cursor (NULL at the end or on error). */
static char *tally_page(paging *p, cs_list_query *q, uint64_t *prev_pos)
{
	int rc;
	Convstore__V1__ConversationList *l = vw_list(S, p->tenant, q, &rc);
	if (!CHECK(l))
		return NULL;
	p->pages++;
	for (size_t i = 0; i < l->n_conversations; i++) {
		const char *id = l->conversations[i]->id;
		char *tagged = ev_strf(&A, ",%s,", id);
		p->repeats += strstr(p->listed_ids, tagged) != NULL;
		p->listed_ids = ev_strf(&A, "%s%s,", p->listed_ids, id);
		p->listed++;
		long k = original_index(id);
		if (k < 0) {
			p->unknown += strncmp(id, "new", 3) != 0;
			continue;
		}
		p->seen[k]++;
		p->out_of_order += p->last_pos[k] >= *prev_pos;
		*prev_pos = p->last_pos[k];
	}
	char *next =
	    l->next_cursor_opt_case == CONVSTORE__V1__CONVERSATION_LIST__NEXT_CURSOR_OPT_NEXT_CURSOR
		? ev_strf(&A, "%s", l->next_cursor)
		: NULL;
	vw_free(l);
	return next;
}

static void check_paging(const paging *p)
{
	size_t never = 0, twice = 0;
	for (int i = 0; i < N_PAGED; i++) {
		never += p->seen[i] == 0;
		twice += p->seen[i] > 1;
	}
	CHECK_EQ_UINT(never, 0);
	CHECK_EQ_UINT(twice, 0);
	CHECK_EQ_UINT(p->repeats, 0);
	CHECK_EQ_UINT(p->unknown, 0);
	CHECK_EQ_UINT(p->out_of_order, 0);
	CHECK(p->pages >= N_PAGED / 7);
}

static void test_paging_interleaved(void)
{
	static paging p;
	p.tenant = "page";
	p.listed_ids = ",";
	fill(&p);
	unsigned long x = 1;
	cs_list_query q = {.limit = 7};
	uint64_t prev = UINT64_MAX;
	int n_new = 0;
	for (;;) {
		char *next = tally_page(&p, &q, &prev);
		if (!next)
			break;
		q.cursor = next;
		/* between pages: three appends to random originals and one new conversation */
		for (int i = 0; i < 3; i++)
			touch(p.tenant, ev_strf(&A, "p%04lu", rng(&x) % N_PAGED));
		touch(p.tenant, ev_strf(&A, "new%d", n_new++));
		if (p.pages > 2 * N_PAGED)
			break;
	}
	check_paging(&p);
}

typedef struct appender {
	const char *tenant;
	atomic_bool stop;
	atomic_ulong appends;
	ev_arena arena;
} appender;

static void *append_loop(void *arg)
{
	appender *ap = arg;
	unsigned long x = 7;
	while (!atomic_load(&ap->stop)) {
		char id[16];
		snprintf(id, sizeof id, "p%04lu", rng(&x) % N_PAGED);
		Convstore__V1__Event *e[] = {ev_message(&ap->arena, NULL, "user", "bg")};
		cs_append_result r;
		if (cs_store_append(&r, S, ap->tenant, id, CS_ANY_VERSION, e, 1, NULL) == CS_OK)
			atomic_fetch_add(&ap->appends, 1);
		ev_arena_free(&ap->arena);
	}
	return NULL;
}

static void test_paging_threaded(void)
{
	static paging p;
	p.tenant = "page2";
	p.listed_ids = ",";
	fill(&p);
	static appender ap;
	ap.tenant = p.tenant;
	cs_list_query q = {.limit = 7};
	uint64_t prev = UINT64_MAX;
	/* The first page fixes P0, the moment whose order the listing keeps and last_pos holds, so
	 * the appender starts after it: started before, it could move conversations ahead of P0
	 * and the order checked would not be P0's (it did, under valgrind's scheduling). */
	char *next = tally_page(&p, &q, &prev);
	pthread_t th;
	if (!CHECK_EQ_INT(pthread_create(&th, NULL, append_loop, &ap), 0))
		return;
	while (next && p.pages <= 2 * N_PAGED) {
		q.cursor = next;
		struct timespec ts = {0, 200 * 1000};
		nanosleep(&ts, NULL);
		next = tally_page(&p, &q, &prev);
	}
	atomic_store(&ap.stop, true);
	pthread_join(th, NULL);
	check_paging(&p);
	CHECK(atomic_load(&ap.appends) > 0);
	printf("threaded paging: %zu pages while %lu appends ran\n", p.pages,
	       (unsigned long)atomic_load(&ap.appends));
}

/* ---- tenants ----------------------------------------------------------------------------- */

/*
 * A conversation truncated by retention between pages is still listed: A (max_events 1) and B;
 * page 1 (limit 1) is B; A is appended to, and the sweep removes every event it had at the
 * first page; the pages after page 1 are exactly A.
 */
static void test_paging_truncated(void)
{
	const char *tn = "trunc";
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_create(NULL, S, tn, "A",
				 vw_created(&A, "a", NULL, vw_retention(&A, 1, 0)), &err);
	if (!CHECK_EQ_INT(vw_said(rc, "create", "A", &err), CS_OK) ||
	    !CHECK(create(tn, "B", "b", NULL)))
		return;
	cs_list_query q = {.limit = 1};
	char *cursor = NULL;
	CHECK_STR_EQ(page_ids(tn, &q, &rc, &cursor), "B");
	if (!CHECK(cursor))
		return;
	CHECK(touch(tn, "A") > 0);
	uint64_t removed = 0;
	CHECK_EQ_INT(cs_store_retention_sweep(&removed, S, 0, &err), CS_OK);
	CHECK_EQ_UINT(removed, 1);
	q.cursor = cursor;
	CHECK_STR_EQ(all_ids(tn, q), "A");
}

static void test_tenants(void)
{
	bool ok = create("ta", "same", "A", NULL) && create("tb", "same", "B", NULL) &&
		  create("tb", "onlyb", "B2", NULL) && create("ta", "onlya", "A2", NULL);
	if (!CHECK(ok))
		return;
	cs_list_query q = {0};
	CHECK_STR_EQ(all_ids("ta", q), "onlya,same");
	CHECK_STR_EQ(all_ids("tb", q), "onlyb,same");
	int rc;
	Convstore__V1__ConversationList *l = vw_list(S, "tb", &q, &rc);
	if (CHECK(l) && CHECK_EQ_UINT(l->n_conversations, 2))
		CHECK_STR_EQ(l->conversations[1]->title, "B");
	vw_free(l);
	/* a filter that only another tenant's conversation matches */
	cs_list_query qs = {.status = "active"};
	CHECK_STR_EQ(all_ids("tc", qs), "");
}

int main(void)
{
	fx_tmpdir(dir, "list");
	S = vw_open_in(dir, "store", 0);
	CHECK_RUN(test_order_and_summaries);
	CHECK_RUN(test_create_update);
	CHECK_RUN(test_create_update_errors);
	CHECK_RUN(test_filters);
	CHECK_RUN(test_updated_after);
	CHECK_RUN(test_limits);
	CHECK_RUN(test_bad_cursors);
	CHECK_RUN(test_cursor_bounds);
	CHECK_RUN(test_paging_interleaved);
	CHECK_RUN(test_paging_threaded);
	CHECK_RUN(test_tenants);
	CHECK_RUN(test_paging_truncated);
	cs_store_close(S);
	ev_arena_free(&A);
	fx_rmrf(dir);
	return check_finish();
}
