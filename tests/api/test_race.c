/*
 * test_race.c - many clients racing on one conversation with expected_version. Each thread, on
 * its own connection, reads the current version and appends one event expecting exactly it.
 * Afterwards: the history is gapless (versions 1..N, N = the successes), every success owns a
 * distinct version, and every failure was a 409 conflict naming a current version.
 */
#include <pthread.h>

#include "../check.h"
#include "server.h"

#define THREADS	 16
#define ATTEMPTS 25
#define MAX_OK	 (THREADS * ATTEMPTS)

static srv S;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long long versions[MAX_OK];
static int n_ok, n_conflict, n_other;

static long long current_version(httpc *c)
{
	httpc_response r;
	if (httpc_request(&r, c, "GET", "/v1/conversations/race/events?direction=backward&limit=1",
			  "", NULL, 0))
		return -1;
	json_t *b = r.status == 200 ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
	long long v =
	    r.status == 404 ? 0 : jint(json_array_get(json_object_get(b, "events"), 0), "version");
	json_decref(b);
	httpc_response_free(&r);
	return v;
}

static void *racer(void *arg)
{
	httpc c;
	httpc_init(&c, "127.0.0.1", S.port);
	for (int i = 0; i < ATTEMPTS; i++) {
		long long v = current_version(&c);
		char body[256];
		snprintf(body, sizeof(body),
			 "{\"expected_version\":%lld,\"events\":[{\"message\":{\"role\":\"user\","
			 "\"content\":\"t%ld-%d\"}}]}",
			 v, (long)(intptr_t)arg, i);
		httpc_response r;
		int rc = httpc_request(&r, &c, "POST", "/v1/conversations/race/events", JSON_HDR,
				       body, strlen(body));
		json_t *b = rc ? NULL : json_loadb(r.body, r.body_len, 0, NULL);
		pthread_mutex_lock(&lock);
		if (!rc && r.status == 201 && n_ok < MAX_OK)
			versions[n_ok++] = jint(b, "first_version");
		else if (!rc && r.status == 409 && !strcmp(err_code(b), "conflict"))
			n_conflict++;
		else
			n_other++;
		pthread_mutex_unlock(&lock);
		json_decref(b);
		httpc_response_free(&r);
	}
	httpc_close(&c);
	return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

static void test_race(void)
{
	pthread_t t[THREADS];
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, racer, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_INT(n_other, 0);
	CHECK_EQ_INT(n_ok + n_conflict, THREADS * ATTEMPTS);
	CHECK(n_ok > 0);
	qsort(versions, (size_t)n_ok, sizeof(versions[0]), cmp_ll);
	for (int i = 0; i < n_ok; i++)
		if (!CHECK_EQ_INT(versions[i], i + 1))
			break;
	json_t *b = NULL;
	CHECK_EQ_INT(srv_json(&S, &b, "GET", "/v1/conversations/race/events?limit=1000", NULL),
		     200);
	json_t *events = json_object_get(b, "events");
	CHECK_EQ_INT(json_array_size(events), n_ok);
	for (size_t i = 0; i < json_array_size(events); i++)
		if (!CHECK_EQ_INT(jint(json_array_get(events, i), "version"), (long long)i + 1))
			break;
	json_decref(b);
	printf("%d appends won, %d lost with 409\n", n_ok, n_conflict);
}

int main(void)
{
	srv_start(&S, NULL);
	CHECK_RUN(test_race);
	CHECK_EQ_INT(srv_stop(&S), 0);
	return check_finish();
}
