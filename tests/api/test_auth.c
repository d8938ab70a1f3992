/*
 * test_auth.c - API keys, roles and tenants (API.md "Auth and tenants") against a convstored
 * started with a key file made by `convstored --keygen`:
 *   - a missing or unknown token is 401 (health checks need none);
 *   - a role too weak is 403, decided before the conversation is looked at (also for ids that
 *     do not exist);
 *   - another tenant's conversation is 404 exactly like a missing one, ids are per tenant, and
 *     feeds (pages, long polls and both SSE streams) show only the tenant's own events;
 *   - the operator reads /metrics and nothing else, and its tokens and cost by model sum every
 *     tenant's (the key file names 70 other tenants first: no tenant count is too many);
 *   - without a key file a non-loopback address is refused, and --no-sync must be spelled out.
 */
#include <ctype.h>

#include "../check.h"
#include "server.h"
#include "sse.h"

static srv S;
static char tok_a_append[80], tok_a_read[80], tok_b_admin[80], tok_op[80];

#define EV "{\"events\":[{\"message\":{\"role\":\"user\",\"content\":\"hi\"}}]}"

static int call(const char *tok, const char *method, const char *path, const char *body,
		json_t **out)
{
	return srv_call(&S, tok, method, path, body, out);
}

static void test_unauthenticated(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(call(NULL, "GET", "/v1/events", NULL, &b), 401);
	CHECK_STR_EQ(err_code(b), "unauthenticated");
	json_decref(b);
	CHECK_EQ_INT(call("not-a-token", "GET", "/v1/events", NULL, NULL), 401);
	CHECK_EQ_INT(call(NULL, "POST", "/v1/conversations/x/events", EV, NULL), 401);
	CHECK_EQ_INT(call(NULL, "GET", "/metrics", NULL, NULL), 401);
	CHECK_EQ_INT(call(NULL, "GET", "/healthz", NULL, NULL), 200);
	CHECK_EQ_INT(call(NULL, "GET", "/readyz", NULL, NULL), 200);
}

static void test_roles(void)
{
	json_t *b = NULL;
	CHECK_EQ_INT(call(tok_a_append, "POST", "/v1/conversations/c1/events", EV, NULL), 201);
	CHECK_EQ_INT(call(tok_a_read, "GET", "/v1/conversations/c1/events", NULL, NULL), 200);
	CHECK_EQ_INT(call(tok_a_read, "POST", "/v1/conversations/c1/events", EV, &b), 403);
	CHECK_STR_EQ(err_code(b), "permission_denied");
	json_decref(b);
	/* 403 comes first, whichever conversation is named */
	CHECK_EQ_INT(call(tok_a_read, "POST", "/v1/conversations/nosuch/events", EV, NULL), 403);
	/* ... and before the id is checked: 403 and 401, not 400, for a malformed id */
	CHECK_EQ_INT(call(tok_a_read, "POST", "/v1/conversations/a%2Fb/events", EV, NULL), 403);
	CHECK_EQ_INT(call(NULL, "GET", "/v1/conversations/..", NULL, NULL), 401);
	CHECK_EQ_INT(call(tok_a_read, "GET", "/v1/conversations/..", NULL, NULL), 400);
	CHECK_EQ_INT(call(tok_a_read, "DELETE", "/v1/conversations/nosuch", NULL, NULL), 403);
	CHECK_EQ_INT(call(tok_a_append, "DELETE", "/v1/conversations/c1", NULL, NULL), 403);
	CHECK_EQ_INT(call(tok_a_read, "POST", "/v1/conversations", "{}", NULL), 403);
	CHECK_EQ_INT(
	    call(tok_a_read, "POST", "/v1/conversations/c1/fork", "{\"at_version\":1}", NULL), 403);
	CHECK_EQ_INT(call(tok_a_read, "PATCH", "/v1/conversations/c1", "{}", NULL), 403);
	CHECK_EQ_INT(call(tok_a_append, "GET", "/metrics", NULL, NULL), 403);
	CHECK_EQ_INT(call(tok_op, "GET", "/metrics", NULL, NULL), 200);
	CHECK_EQ_INT(call(tok_op, "GET", "/v1/events", NULL, NULL), 403);
	CHECK_EQ_INT(call(tok_op, "GET", "/v1/conversations/c1/events", NULL, NULL), 403);
}

static void test_tenants(void)
{
	json_t *b = NULL;
	/* B cannot see A's c1: 404, the same body as for an id nobody has */
	CHECK_EQ_INT(call(tok_b_admin, "GET", "/v1/conversations/c1/events", NULL, &b), 404);
	CHECK_STR_EQ(err_code(b), "not_found");
	json_decref(b);
	CHECK_EQ_INT(call(tok_b_admin, "DELETE", "/v1/conversations/c1", NULL, NULL), 404);
	CHECK_EQ_INT(call(tok_b_admin, "GET", "/v1/conversations/c1/forks", NULL, NULL), 404);
	CHECK_EQ_INT(
	    call(tok_b_admin, "POST", "/v1/conversations/c1/fork", "{\"at_version\":1}", NULL),
	    404);
	/* ids are per tenant: B's own c1 starts at version 1 */
	CHECK_EQ_INT(call(tok_b_admin, "POST", "/v1/conversations/c1/events", EV, &b), 201);
	CHECK_EQ_INT(jint(b, "first_version"), 1);
	json_decref(b);
	CHECK_EQ_INT(call(tok_a_append, "POST", "/v1/conversations/c1/events", EV, &b), 201);
	CHECK_EQ_INT(jint(b, "first_version"), 2);
	json_decref(b);
	/* feeds: each tenant sees only its own events */
	CHECK_EQ_INT(call(tok_a_read, "GET", "/v1/events?limit=1000", NULL, &b), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 2);
	json_decref(b);
	CHECK_EQ_INT(call(tok_b_admin, "GET", "/v1/events?limit=1000", NULL, &b), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(b, "events")), 1);
	json_decref(b);
	/* the streams too: A's global stream from 0 has A's two events; B's c1 stream has B's one,
	 * and a live stream of B's wakes for B's append only */
	static sse_client a, bc, blive;
	char auth[160];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", tok_a_read);
	CHECK_EQ_INT(sse_open(&a, S.port, "/v1/events/stream?after_position=0", auth), 0);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", tok_b_admin);
	CHECK_EQ_INT(
	    sse_open(&bc, S.port, "/v1/conversations/c1/events/stream?after_position=0", auth), 0);
	CHECK_EQ_INT(sse_open(&blive, S.port, "/v1/events/stream", auth), 0);
	for (int i = 0; i < 10; i++)
		sse_pump(&a, 20), sse_pump(&bc, 20), sse_pump(&blive, 20);
	CHECK_EQ_INT(call(tok_a_append, "POST", "/v1/conversations/c1/events", EV, NULL), 201);
	CHECK_EQ_INT(call(tok_b_admin, "POST", "/v1/conversations/b-only/events", EV, NULL), 201);
	for (int i = 0; i < 10; i++)
		sse_pump(&a, 20), sse_pump(&bc, 20), sse_pump(&blive, 20);
	CHECK_EQ_INT(a.status, 200);
	CHECK_EQ_INT(a.last_id, 4); /* A's: positions 1 and 3 (B's c1 is 2), then 4 */
	CHECK_EQ_INT(a.events, 3);
	CHECK_EQ_INT(bc.last_id, 2);
	CHECK_EQ_INT(bc.events, 1);
	CHECK_EQ_INT(blive.events, 1);
	CHECK_EQ_INT(blive.last_id, 5);
	CHECK(!a.data || !strstr(a.data, "b-only"));
	sse_close(&a);
	sse_close(&bc);
	sse_close(&blive);
	CHECK_EQ_INT(call(tok_b_admin, "DELETE", "/v1/conversations/c1", NULL, NULL), 204);
	CHECK_EQ_INT(call(tok_a_read, "GET", "/v1/conversations/c1/events", NULL, NULL), 200);
}

#define USAGE_EV(n)                                                                                \
	"{\"events\":[{\"model_response\":{\"model\":\"gpt-m\",\"content\":\"x\","                 \
	"\"usage\":{\"input_tokens\":" n "}}}]}"

static void test_metrics_usage(void)
{
	CHECK_EQ_INT(call(tok_a_append, "POST", "/v1/conversations/u/events", USAGE_EV("5"), NULL),
		     201);
	CHECK_EQ_INT(call(tok_b_admin, "POST", "/v1/conversations/u/events", USAGE_EV("7"), NULL),
		     201);
	char headers[128];
	snprintf(headers, sizeof(headers), "Authorization: Bearer %s\r\n", tok_op);
	httpc_response r = srv_req(&S, "GET", "/metrics", headers, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR_CONTAINS(r.body, "convstore_tokens_total{model=\"gpt-m\",kind=\"input\"} 12\n");
	CHECK_STR_CONTAINS(r.body, "convstore_model_responses_total{model=\"gpt-m\"} 2\n");
	httpc_response_free(&r);
}

/* convstored's own refusals, without starting to serve. */
static void test_refusals(void)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s --listen 0.0.0.0 --port 0 --data /nonexistent 2>/dev/null",
		 getenv("CONVSTORED"));
	CHECK_EQ_INT(WEXITSTATUS(system(cmd)), 2);
	snprintf(cmd, sizeof(cmd), "%s --no-sy --port 0 --data /nonexistent 2>/dev/null",
		 getenv("CONVSTORED"));
	CHECK_EQ_INT(WEXITSTATUS(system(cmd)), 2);
	snprintf(cmd, sizeof(cmd), "%s --keygen '*' read >/dev/null 2>&1", getenv("CONVSTORED"));
	CHECK_EQ_INT(WEXITSTATUS(system(cmd)), 2);
}

int main(void)
{
	char dir[] = "/tmp/convstore-api-keys-XXXXXX", keys[sizeof(dir) + 8];
	if (!mkdtemp(dir))
		return 1;
	snprintf(keys, sizeof(keys), "%s/keys", dir);
	FILE *f = fopen(keys, "w");
	fputs("# test keys\n\n", f);
	for (unsigned i = 0; i < 70; i++) /* tenants with keys nobody holds */
		fprintf(f, "%064x filler-%u read\n", i, i);
	srv_keygen(tok_a_append, f, "tenant-a", "append");
	srv_keygen(tok_a_read, f, "tenant-a", "read");
	srv_keygen(tok_b_admin, f, "tenant-b", "admin");
	srv_keygen(tok_op, f, "*", "operator");
	fclose(f);
	const char *args[] = {"--keys", keys, NULL};
	srv_start(&S, args);
	CHECK_RUN(test_unauthenticated);
	CHECK_RUN(test_roles);
	CHECK_RUN(test_tenants);
	CHECK_RUN(test_metrics_usage);
	CHECK_RUN(test_refusals);
	CHECK_EQ_INT(srv_stop(&S), 0);
	remove(keys);
	rmdir(dir);
	return check_finish();
}
