/*
 * present.c - the JSON of a response shows its lists and numbers even when they are empty or 0.
 *
 * The proto3 JSON codec (proto/) leaves out fields at their default value, as the proto3
 * mapping allows, so an empty feed page would read `{}` where API.md promises
 * `{"events": [], "last_position": 0}` and clients index into it. This walk, driven only by the
 * message descriptors like the codec itself, adds the missing repeated fields of the response
 * message itself (as [] or, for a map, {}) and every missing number or bool (as 0 or false),
 * recursively through the sub-messages that are present. Lists inside list items are left out
 * when empty: the messages view must have "no tool_calls key when there are none" (API.md).
 * Strings, bytes, enums, absent sub-messages and oneof members are left as the codec wrote them:
 * "" says nothing a missing key does not, and an absent `parent` or an unset `content_opt` must
 * stay absent or null.
 *
 * A small workaround here; the natural home is a CS_JSON_EMIT_DEFAULTS flag in the codec.
 */
#include "server.h"

static json_t *default_value(const ProtobufCMessageDescriptor *desc,
			     const ProtobufCFieldDescriptor *f, bool top)
{
	if (f->label == PROTOBUF_C_LABEL_REPEATED && !top)
		return NULL;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return cs_pb_map_entry(desc, f) ? json_object() : json_array();
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL: return json_false();
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: return json_integer(0);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_ENUM:
	case PROTOBUF_C_TYPE_MESSAGE: return NULL;
	default: return json_integer(0); /* the integer types */
	}
}

void cs_json_present(json_t *obj, const ProtobufCMessageDescriptor *desc, int depth)
{
	if (!json_is_object(obj) || depth > CS_JSON_MAX_DEPTH)
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
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (json_is_array(v)) {
			size_t j;
			json_t *item;
			json_array_foreach(v, j, item)
			{
				cs_json_present(item, f->descriptor, depth + 1);
			}
		} else {
			cs_json_present(v, f->descriptor, depth + 1);
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
