/*
 * test_corpus.c - every tau-bench conversation ($CONVSTORE_CORPUS/tau-bench/
 * gpt-4o-airline.conversations.jsonl; skipped with 77 when absent) goes in over HTTP, one append
 * per conversation, mapped as
 *
 *     system / user  -> message {role, content}
 *     assistant      -> model_response {model "gpt-4o", content (absent when null),
 *                       tool_calls [{id, name, arguments}]}
 *     tool           -> tool_result {call_id = tool_call_id, name, output = content}
 *
 * and GET /v1/conversations/{id}/messages must give back the original `messages` list, compared
 * as JSON values (key order ignored; an assistant message without tool calls has no tool_calls
 * key, as API.md says).
 */
#include "../check.h"
#include "server.h"

#define CORPUS "/tau-bench/gpt-4o-airline.conversations.jsonl"

static srv S;

static json_t *map_message(const json_t *m)
{
	const char *role = json_string_value(json_object_get(m, "role"));
	json_t *content = json_object_get(m, "content");
	if (!strcmp(role, "tool"))
		return json_pack("{s:{s:O,s:O,s:O}}", "tool_result", "call_id",
				 json_object_get(m, "tool_call_id"), "name",
				 json_object_get(m, "name"), "output", content);
	if (strcmp(role, "assistant") != 0)
		return json_pack("{s:{s:s,s:O}}", "message", "role", role, "content", content);
	json_t *mr = json_pack("{s:s}", "model", "gpt-4o");
	if (json_is_string(content))
		json_object_set(mr, "content", content);
	json_t *calls = json_array();
	size_t i;
	json_t *call;
	json_array_foreach(json_object_get(m, "tool_calls"), i, call)
	{
		json_t *fn = json_object_get(call, "function");
		json_array_append_new(calls,
				      json_pack("{s:O,s:O,s:O}", "id", json_object_get(call, "id"),
						"name", json_object_get(fn, "name"), "arguments",
						json_object_get(fn, "arguments")));
	}
	json_object_set_new(mr, "tool_calls", calls);
	return json_pack("{s:o}", "model_response", mr);
}

/* The original list as the messages view must give it: no empty tool_calls key. */
static json_t *expected_view(json_t *messages)
{
	json_t *want = json_deep_copy(messages);
	size_t i;
	json_t *m;
	json_array_foreach(want, i, m)
	{
		json_t *calls = json_object_get(m, "tool_calls");
		if (calls && json_array_size(calls) == 0)
			json_object_del(m, "tool_calls");
		else if (json_is_null(calls))
			json_object_del(m, "tool_calls");
	}
	return want;
}

static bool check_conversation(json_t *messages, size_t n)
{
	json_t *events = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(messages, i, m)
	{
		json_array_append_new(events, map_message(m));
	}
	json_t *req = json_pack("{s:i,s:o}", "expected_version", 0, "events", events);
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	char path[64];
	snprintf(path, sizeof(path), "/v1/conversations/tau-%zu/events", n);
	bool ok = CHECK_EQ_INT(srv_json(&S, NULL, "POST", path, body), 201);
	free(body);
	snprintf(path, sizeof(path), "/v1/conversations/tau-%zu/messages", n);
	json_t *got = NULL;
	ok = ok && CHECK_EQ_INT(srv_json(&S, &got, "GET", path, NULL), 200);
	json_t *want = expected_view(messages);
	if (ok && !CHECK(json_equal(json_object_get(got, "messages"), want))) {
		fprintf(stderr, "  conversation %zu differs\n", n);
		ok = false;
	}
	json_decref(want);
	json_decref(got);
	return ok;
}

int main(void)
{
	const char *dir = getenv("CONVSTORE_CORPUS");
	char path[4096];
	snprintf(path, sizeof(path), "%s%s", dir ? dir : "", CORPUS);
	FILE *f = dir ? fopen(path, "r") : NULL;
	if (!f) {
		printf("corpus not found (%s): skipped\n", path);
		return 77;
	}
	srv_start(&S, NULL);
	static char line[4 << 20];
	size_t n = 0, bad = 0;
	while (fgets(line, sizeof(line), f) && bad < 3) {
		json_t *conv = json_loads(line, 0, NULL);
		if (!CHECK(conv != NULL))
			break;
		if (!check_conversation(json_object_get(conv, "messages"), n++))
			bad++;
		json_decref(conv);
	}
	fclose(f);
	CHECK(n >= 200 || bad);
	printf("%zu conversations through HTTP\n", n);
	CHECK_EQ_INT(srv_stop(&S), 0);
	return check_finish();
}
