/*
 * openai.c - one OpenAI chat message to one convstore event (openai.h has the mapping).
 *
 * The event is built from borrowed pointers into the JSON (no copies while deciding), then
 * packed and unpacked once: the result owns every byte, so callers free it the one protobuf-c
 * way, whatever its shape.
 */
#include <stdlib.h>
#include <string.h>

#include "openai.h"

typedef Convstore__V1__Event Event;

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A string field that may be absent; "" then, and CS_EINVAL when present but not a string. */
static int opt_str(const char **out, const json_t *o, const char *key, cs_error *err)
{
	const json_t *v = json_object_get(o, key);
	*out = json_is_string(v) ? json_string_value(v) : "";
	if (v && !json_is_string(v) && !json_is_null(v))
		return cs_error_set(err, CS_EINVAL, "\"%s\" is not a string", key);
	return CS_OK;
}

/* Own a copy of @ev (built on borrowed pointers). */
static int own(Event **out, Event *ev, const char *id, cs_error *err)
{
	if (id)
		ev->id = (char *)id;
	size_t len = convstore__v1__event__get_packed_size(ev);
	unsigned char *buf = malloc(len ? len : 1);
	if (!buf)
		return cs_error_set(err, CS_ENOMEM, "out of memory");
	convstore__v1__event__pack(ev, buf);
	*out = convstore__v1__event__unpack(NULL, len, buf);
	free(buf);
	return *out ? CS_OK : cs_error_set(err, CS_ENOMEM, "out of memory");
}

static int map_assistant(Event **out, const json_t *m, const char *model, const char *id,
			 cs_error *err)
{
	Convstore__V1__ModelResponse r = CONVSTORE__V1__MODEL_RESPONSE__INIT;
	Event ev = CONVSTORE__V1__EVENT__INIT;
	const json_t *content = json_object_get(m, "content");
	const json_t *calls = json_object_get(m, "tool_calls");
	if (content && !json_is_string(content) && !json_is_null(content))
		return cs_error_set(err, CS_EINVAL, "assistant content is not a string or null");
	if (calls && !json_is_array(calls) && !json_is_null(calls))
		return cs_error_set(err, CS_EINVAL, "\"tool_calls\" is not an array");
	size_t n = json_array_size(calls);
	Convstore__V1__ToolCallRequest *reqs = calloc(n ? n : 1, sizeof(*reqs));
	Convstore__V1__ToolCallRequest **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	int rc = reqs && ptrs ? CS_OK : cs_error_set(err, CS_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && !rc; i++) {
		const json_t *call = json_array_get(calls, i);
		const json_t *fn = json_object_get(call, "function");
		convstore__v1__tool_call_request__init(&reqs[i]);
		reqs[i].id = (char *)str(call, "id");
		reqs[i].name = (char *)str(fn, "name");
		if (!reqs[i].id || !reqs[i].name) {
			rc = cs_error_set(err, CS_EINVAL,
					  "tool_calls[%zu] needs an id and a "
					  "function name",
					  i);
			break;
		}
		const char *args;
		if ((rc = opt_str(&args, fn, "arguments", err)))
			break;
		reqs[i].arguments = (char *)args;
		ptrs[i] = &reqs[i];
	}
	if (!rc) {
		r.model = (char *)(model ? model : "");
		if (json_is_string(content)) {
			r.content_opt_case = CONVSTORE__V1__MODEL_RESPONSE__CONTENT_OPT_CONTENT;
			r.content = (char *)json_string_value(content);
		}
		r.n_tool_calls = n;
		r.tool_calls = n ? ptrs : NULL;
		ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE;
		ev.model_response = &r;
		rc = own(out, &ev, id, err);
	}
	free(reqs);
	free(ptrs);
	return rc;
}

int cs_openai_event(Event **out, const json_t *m, const char *model, const char *id, cs_error *err)
{
	*out = NULL;
	const char *role = str(m, "role");
	if (!json_is_object(m) || !role)
		return cs_error_set(err, CS_EINVAL, "not a chat message (no \"role\")");
	if (!strcmp(role, "assistant"))
		return map_assistant(out, m, model, id, err);
	Event ev = CONVSTORE__V1__EVENT__INIT;
	const char *content, *name;
	int rc = opt_str(&content, m, "content", err);
	if (!rc)
		rc = opt_str(&name, m, "name", err);
	if (rc)
		return rc;
	if (!strcmp(role, "tool")) {
		Convstore__V1__ToolResult t = CONVSTORE__V1__TOOL_RESULT__INIT;
		t.call_id = (char *)str(m, "tool_call_id");
		if (!t.call_id)
			return cs_error_set(err, CS_EINVAL,
					    "a tool message needs \"tool_call_id\"");
		t.name = (char *)name;
		t.output = (char *)content;
		ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT;
		ev.tool_result = &t;
		return own(out, &ev, id, err);
	}
	if (strcmp(role, "system") && strcmp(role, "developer") && strcmp(role, "user"))
		return cs_error_set(err, CS_EINVAL,
				    "role \"%.32s\" is not system, developer, user, "
				    "assistant or tool",
				    role);
	Convstore__V1__Message msg = CONVSTORE__V1__MESSAGE__INIT;
	msg.role = (char *)role;
	msg.content = (char *)content;
	msg.name = (char *)name;
	ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE;
	ev.message = &msg;
	return own(out, &ev, id, err);
}
