/*
 * validate.c - the checks an event must pass that need no stored state. They run in the
 * appending caller's thread, before the request reaches the single writer, so that many
 * callers validate in parallel and the writer only does what needs the current state
 * (reduce.c: cs_head_check).
 *
 * What is checked here: exactly one payload and not a server-only one; envelope fields the
 * server sets are absent (or, for conversation_id and type, agree); ids, trace context and
 * metadata within the API's limits; per-payload required fields and roles; UTF-8 everywhere.
 */
#include <string.h>

#include "convstore/pbjson.h"
#include "internal.h"

typedef Convstore__V1__Event Event;

#define CS_MAX_CALL_ID 256

const char *cs_event_type_name(const Event *ev)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
	    &convstore__v1__event__descriptor, (unsigned)ev->payload_case);
	return f ? f->name : "";
}

bool cs_event_is_server_only(const Event *ev)
{
	switch (ev->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_CREATED:
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED:
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_UPDATED:
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED: return true;
	default: return false;
	}
}

static bool empty(const char *s)
{
	return !s || !*s;
}

static bool is_hex(const char *s, size_t len)
{
	if (!s || strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int check_required(const char *value, const char *what, cs_error *err)
{
	if (empty(value))
		return cs_error_set(err, CS_EINVAL, "%s is required", what);
	if (strlen(value) > CS_MAX_CALL_ID)
		return cs_error_set(err, CS_EINVAL, "%s is longer than %d bytes", what,
				    CS_MAX_CALL_ID);
	return CS_OK;
}

/* Every protobuf-c map<string, string> entry has this layout (base, key, value), whichever
 * message it belongs to; the store's metadata maps are all of that kind. */
typedef struct kv_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
} kv_entry;

static int check_metadata_entries(const kv_entry *const *entries, size_t n, cs_error *err)
{
	if (n > CS_MAX_METADATA_PAIRS)
		return cs_error_set(err, CS_EINVAL, "metadata has %zu pairs, at most %d", n,
				    CS_MAX_METADATA_PAIRS);
	for (size_t i = 0; i < n; i++) {
		const char *k = entries[i]->key, *v = entries[i]->value;
		if (empty(k) || strlen(k) > CS_MAX_METADATA_KEY)
			return cs_error_set(err, CS_EINVAL,
					    "metadata key \"%.64s\" must be 1-%d bytes", k ? k : "",
					    CS_MAX_METADATA_KEY);
		if (v && strlen(v) > CS_MAX_METADATA_VALUE)
			return cs_error_set(err, CS_EINVAL,
					    "metadata value of \"%.64s\" is longer than %d bytes",
					    k, CS_MAX_METADATA_VALUE);
	}
	return CS_OK;
}

#define check_metadata(entries, n, err)                                                            \
	check_metadata_entries((const kv_entry *const *)(entries), n, err)

static int check_envelope(const Event *ev, const char *conversation_id, cs_error *err)
{
	if (!empty(ev->id) && !cs_id_valid(ev->id))
		return cs_error_set(err, CS_EINVAL,
				    "id \"%.64s\" must be 1-128 characters of A-Z a-z 0-9 . _ : -",
				    ev->id);
	if (!empty(ev->conversation_id) && strcmp(ev->conversation_id, conversation_id) != 0)
		return cs_error_set(err, CS_EINVAL,
				    "conversation_id \"%.64s\" does not match the conversation",
				    ev->conversation_id);
	if (ev->version || ev->position || ev->recorded_at || !empty(ev->tenant))
		return cs_error_set(
		    err, CS_EINVAL,
		    "version, position, recorded_at and tenant are set by the server");
	if (!empty(ev->type) && strcmp(ev->type, cs_event_type_name(ev)) != 0)
		return cs_error_set(err, CS_EINVAL, "type \"%.64s\" does not match the payload",
				    ev->type);
	if (ev->trace && (!is_hex(ev->trace->trace_id, 32) || !is_hex(ev->trace->span_id, 16)))
		return cs_error_set(
		    err, CS_EINVAL,
		    "trace needs a 32-hex-digit trace_id and a 16-hex-digit span_id");
	return check_metadata(ev->metadata, ev->n_metadata, err);
}

static int check_message(const Convstore__V1__Message *m, cs_error *err)
{
	static const char *const roles[] = {"system", "developer", "user", "assistant"};
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (m->role && strcmp(m->role, roles[i]) == 0)
			return CS_OK;
	return cs_error_set(
	    err, CS_EINVAL,
	    "message.role \"%.32s\" is not one of system, developer, user, assistant",
	    m->role ? m->role : "");
}

static int check_model_response(const Convstore__V1__ModelResponse *mr, cs_error *err)
{
	if (mr->n_tool_calls > CS_MAX_TOOL_CALLS)
		return cs_error_set(err, CS_EINVAL, "model_response has %zu tool calls, at most %d",
				    mr->n_tool_calls, CS_MAX_TOOL_CALLS);
	if (mr->model && strlen(mr->model) > CS_MAX_MODEL_LEN)
		return cs_error_set(err, CS_EINVAL, "model_response.model is longer than %d bytes",
				    CS_MAX_MODEL_LEN);
	/* Costs are summed in integer nano-dollars (cs_cost_nanos): the cap keeps any sum of a
	 * store's worth of responses inside int64. NaN fails both comparisons. */
	if (!(mr->cost_usd >= 0 && mr->cost_usd <= CS_MAX_COST_USD))
		return cs_error_set(err, CS_EINVAL,
				    "model_response.cost_usd %g is not between 0 and %g",
				    mr->cost_usd, CS_MAX_COST_USD);
	for (size_t i = 0; i < mr->n_tool_calls; i++) {
		const Convstore__V1__ToolCallRequest *tc = mr->tool_calls[i];
		int rc = check_required(tc->id, "model_response.tool_calls[].id", err);
		if (!rc)
			rc = check_required(tc->name, "model_response.tool_calls[].name", err);
		if (rc)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (strcmp(mr->tool_calls[j]->id, tc->id) == 0)
				return cs_error_set(err, CS_EINVAL,
						    "tool call id \"%.64s\" appears twice", tc->id);
	}
	return CS_OK;
}

static int check_payload(const Event *ev, cs_error *err)
{
	int rc = CS_OK;
	switch (ev->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE: return check_message(ev->message, err);
	case CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE:
		return check_model_response(ev->model_response, err);
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL:
		rc = check_required(ev->tool_call->id, "tool_call.id", err);
		return rc ? rc : check_required(ev->tool_call->name, "tool_call.name", err);
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT:
		return check_required(ev->tool_result->call_id, "tool_result.call_id", err);
	case CONVSTORE__V1__EVENT__PAYLOAD_TURN_STARTED:
		return check_required(ev->turn_started->turn_id, "turn_started.turn_id", err);
	case CONVSTORE__V1__EVENT__PAYLOAD_TURN_ENDED:
		return check_required(ev->turn_ended->turn_id, "turn_ended.turn_id", err);
	case CONVSTORE__V1__EVENT__PAYLOAD_EXTENSION:
		rc = check_required(ev->extension->type, "extension.type", err);
		if (!rc && ev->extension->data && ev->extension->bytes.len)
			rc = cs_error_set(err, CS_EINVAL, "extension has both data and bytes");
		return rc;
	default: return CS_OK;
	}
}

int cs_event_check(const Event *ev, const char *conversation_id, cs_error *err)
{
	if (ev->payload_case == CONVSTORE__V1__EVENT__PAYLOAD__NOT_SET)
		return cs_error_set(err, CS_EINVAL, "event has no payload");
	/* A payload field present but NULL can only come from a hand-built struct. */
	if (!ev->message)
		return cs_error_set(err, CS_EINVAL, "event payload is empty");
	if (cs_event_is_server_only(ev))
		return cs_error_set(err, CS_EINVAL, "%s events are written by the server only",
				    cs_event_type_name(ev));
	int rc = check_envelope(ev, conversation_id, err);
	if (!rc)
		rc = check_payload(ev, err);
	if (!rc)
		rc = cs_pb_check_text(&ev->base, err);
	return rc;
}

static int check_title(const char *title, cs_error *err)
{
	if (title && strlen(title) > CS_MAX_TITLE)
		return cs_error_set(err, CS_EINVAL, "title is longer than %d bytes", CS_MAX_TITLE);
	return CS_OK;
}

static int check_retention(const Convstore__V1__Retention *r, cs_error *err)
{
	if (r && r->max_age_seconds > CS_MAX_RETENTION_AGE)
		return cs_error_set(err, CS_EINVAL,
				    "retention.max_age_seconds %llu is over %llu (100 years)",
				    (unsigned long long)r->max_age_seconds,
				    (unsigned long long)CS_MAX_RETENTION_AGE);
	return CS_OK;
}

static int check_conversation_payload(const Event *ev, cs_error *err)
{
	switch (ev->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_CREATED: {
		const Convstore__V1__ConversationCreated *c = ev->conversation_created;
		int rc = check_title(c->title, err);
		rc = rc ? rc : check_retention(c->retention, err);
		return rc ? rc : check_metadata(c->metadata, c->n_metadata, err);
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED: {
		const Convstore__V1__ConversationForked *f = ev->conversation_forked;
		int rc = check_title(f->title, err);
		rc = rc ? rc : check_retention(f->retention, err);
		return rc ? rc : check_metadata(f->metadata, f->n_metadata, err);
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_UPDATED: {
		const Convstore__V1__ConversationUpdated *u = ev->conversation_updated;
		if (!empty(u->status) && strcmp(u->status, "active") != 0 &&
		    strcmp(u->status, "archived") != 0)
			return cs_error_set(err, CS_EINVAL,
					    "status \"%.32s\" is not one of active, archived",
					    u->status);
		int rc = check_title(u->title_opt_case ? u->title : NULL, err);
		rc = rc ? rc : check_retention(u->retention, err);
		return rc ? rc : check_metadata(u->metadata, u->n_metadata, err);
	}
	default: return cs_error_set(err, CS_EINVAL, "not a conversation event");
	}
}

int cs_server_event_check(const Event *ev, cs_error *err)
{
	if (!ev->message)
		return cs_error_set(err, CS_EINVAL, "event payload is empty");
	int rc = check_conversation_payload(ev, err);
	return rc ? rc : cs_pb_check_text(&ev->base, err);
}

/* ---- records read back ------------------------------------------------------------------- */

int cs_head_sane(const Convstore__V1__Head *h, cs_error *err)
{
	if (!cs_id_valid(h->tenant) || !cs_id_valid(h->id) ||
	    (h->parent && !cs_id_valid(h->parent->id)))
		return cs_error_set(err, CS_ECORRUPT, "a head or snapshot names an invalid id");
	return CS_OK;
}

int cs_event_sane(const Event *ev, cs_error *err)
{
	if (!cs_id_valid(ev->tenant) || !cs_id_valid(ev->conversation_id))
		return cs_error_set(err, CS_ECORRUPT, "event at position %llu names an invalid id",
				    (unsigned long long)ev->position);
	if (ev->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE &&
	    ev->model_response && ev->model_response->model &&
	    strlen(ev->model_response->model) > CS_MAX_MODEL_LEN)
		return cs_error_set(err, CS_ECORRUPT, "event at position %llu has an invalid model",
				    (unsigned long long)ev->position);
	return CS_OK;
}
