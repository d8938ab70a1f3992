/*
 * present.c - the JSON of a response shows the empty lists and the zeros that API.md shows.
 *
 * The proto3 JSON codec (proto/) leaves out fields at their default value, as the proto3
 * mapping allows, so an empty feed page would read `{}` where API.md promises
 * `{"events": [], "last_position": 0}` and clients index into it. This walk, driven only by the
 * message descriptors like the codec itself, adds what is missing, by these rules:
 *
 *   - the response message itself: its missing lists as [] (maps as {}) and numbers as 0
 *     (`events: []`, `last_position: 0`, a fresh state view's `messages: []`);
 *   - the messages below it: missing numbers as 0 (`usage`, `counts`, a usage row) and maps as
 *     {} (a list summary's `metadata`), but no list: the messages view must have "no tool_calls
 *     key when there are none" (API.md);
 *   - never a bool: `"is_error": false` on every transcript message says nothing;
 *   - never anything inside a convstore.v1.Event: events are shown as stored, with the fields
 *     they were sent with and the ones the server added, and no zeros they never had.
 *
 * Strings, bytes, enums, absent sub-messages and oneof members are left as the codec wrote them:
 * "" says nothing a missing key does not, and an absent `parent` or an unset `content_opt` must
 * stay absent or null.
 *
 * A small workaround here; the natural home is a CS_JSON_EMIT_DEFAULTS flag in the codec.
 */
#include "server.h"

/* The default to show for missing field @f of a @desc message; NULL: leave it missing. */
static json_t *default_value(const ProtobufCMessageDescriptor *desc,
			     const ProtobufCFieldDescriptor *f, bool top)
{
	bool map = f->label == PROTOBUF_C_LABEL_REPEATED && cs_pb_map_entry(desc, f);
	if (map)
		return json_object();
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return top ? json_array() : NULL;
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_ENUM:
	case PROTOBUF_C_TYPE_MESSAGE: return NULL;
	default: return json_integer(0); /* the integer and floating types */
	}
}

void cs_json_present(json_t *obj, const ProtobufCMessageDescriptor *desc, int depth)
{
	if (!json_is_object(obj) || depth > CS_JSON_MAX_DEPTH ||
	    desc == &convstore__v1__event__descriptor)
		return;
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			continue;
		json_t *v = json_object_get(obj, f->name);
		if (!v) {
			json_t *d = default_value(desc, f, depth == 1);
			if (d)
				json_object_set_new(obj, f->name, d);
			continue;
		}
		if (f->type != PROTOBUF_C_TYPE_MESSAGE || cs_pb_map_entry(desc, f))
			continue;
		if (!json_is_array(v)) {
			cs_json_present(v, f->descriptor, depth + 1);
			continue;
		}
		size_t j;
		json_t *item;
		json_array_foreach(v, j, item)
		{
			cs_json_present(item, f->descriptor, depth + 1);
		}
	}
}

char *cs_json_text(const ProtobufCMessage *msg, cs_error *err)
{
	json_t *v = NULL;
	if (cs_json_encode_flags(&v, msg, CS_JSON_NULL_OPTIONAL, err))
		return NULL;
	cs_json_present(v, msg->descriptor, 1);
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	if (!text)
		cs_error_set(err, CS_ENOMEM, "out of memory writing json");
	return text;
}
