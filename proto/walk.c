/*
 * walk.c - generic walks over protobuf-c messages: strict UTF-8 validation of every string, and
 * the map-entry rule that the JSON codec shares.
 *
 * Binary protobuf input never passes through Jansson, and protobuf-c does not check that string
 * fields hold UTF-8, so the store runs cs_pb_check_text() on everything it decodes from binary
 * before it keeps it. The walk reads only the selected member of each oneof (the others share
 * its storage), never allocates, and stops CS_JSON_MAX_DEPTH messages down so that a hostile
 * recursive message cannot exhaust the stack.
 *
 * Error paths read like the JSON codec's: "events[2].message.content", "metadata[\"k\"]", and
 * "metadata[3].key" when the map key itself is the bad string. Bytes from the input are shown
 * as printable ASCII only ('?' for anything else), so the message stays one valid line.
 *
 * A JsonValue's text must parse as one JSON value (it is written out as JSON, so text that does
 * not parse would turn a stored event into one that can never be shown), and its nesting counts
 * towards the depth cap. For the same reason a Timestamp must be one the JSON form can write
 * (cs_timestamp_valid). Bytes fields and unknown fields are not checked.
 */
#include "convstore/pbjson.h"
#include "path.h"
#include "convstore/v1/event.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct walk {
	cs_error *err;
	unsigned depth;
	cs_path path;
};

static const void *member_at(const ProtobufCMessage *m, unsigned offset)
{
	return (const char *)m + offset;
}

static int bad(struct walk *w, const char *what)
{
	if (w->path.len)
		return cs_error_set(w->err, CS_EINVAL, "%s: %s", w->path.buf, what);
	return cs_error_set(w->err, CS_EINVAL, "%s", what);
}

/* ---- UTF-8 --------------------------------------------------------------------------------- */

bool cs_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;

	while (p < end) {
		/* Most text is ASCII: skip it eight bytes at a time. */
		while (end - p >= 8) {
			uint64_t w;
			memcpy(&w, p, 8);
			if (w & 0x8080808080808080u)
				break;
			p += 8;
		}
		if (p == end)
			break;
		unsigned c = *p;
		if (c < 0x80) {
			p++;
			continue;
		}
		/*
		 * Lead bytes 0x80-0xc1 are continuations or 2-byte overlongs, 0xf5-0xff would start
		 * something above U+10FFFF: neither can begin a character.
		 */
		size_t more;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= more)
			return false;
		for (size_t i = 1; i <= more; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if (more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
			return false;
		if (more == 3 && (cp < 0x10000 || cp > 0x10ffff))
			return false;
		p += more + 1;
	}
	return true;
}

/* ---- map detection ------------------------------------------------------------------------- */

/* Does @s equal protoc's map-entry name for @field ("foo_bar" -> "FooBarEntry")? */
static bool is_entry_name(const char *s, const char *field)
{
	bool cap = true;
	for (const char *f = field; *f; f++) {
		if (*f == '_') {
			cap = true;
			continue;
		}
		char want = *f;
		if (cap && want >= 'a' && want <= 'z')
			want = (char)(want - 'a' + 'A');
		cap = false;
		if (*s++ != want)
			return false;
	}
	return strcmp(s, "Entry") == 0;
}

static bool is_map_key_type(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
	case PROTOBUF_C_TYPE_ENUM: return false;
	default: return true;
	}
}

const ProtobufCMessageDescriptor *cs_pb_map_entry(const ProtobufCMessageDescriptor *parent,
						  const ProtobufCFieldDescriptor *field)
{
	if (!parent || !field || field->label != PROTOBUF_C_LABEL_REPEATED ||
	    field->type != PROTOBUF_C_TYPE_MESSAGE || !field->descriptor)
		return NULL;
	const ProtobufCMessageDescriptor *e = field->descriptor;
	if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
	    strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0 ||
	    e->fields[0].label == PROTOBUF_C_LABEL_REPEATED ||
	    e->fields[1].label == PROTOBUF_C_LABEL_REPEATED || !is_map_key_type(e->fields[0].type))
		return NULL;
	/* Entries are nested in the message that holds the map: "<parent>.<Name>Entry". */
	size_t plen = strlen(parent->name);
	if (!e->name || strncmp(e->name, parent->name, plen) != 0 || e->name[plen] != '.' ||
	    !is_entry_name(e->name + plen + 1, field->name))
		return NULL;
	return e;
}

/* ---- the walk ------------------------------------------------------------------------------ */

static int walk_message(struct walk *w, const ProtobufCMessage *m);

static int check_string(struct walk *w, const char *s)
{
	if (s && !cs_utf8_valid(s, strlen(s)))
		return bad(w, "invalid utf-8");
	return CS_OK;
}

/* One value of a string or message field; every other type is left alone. */
static int walk_value(struct walk *w, const ProtobufCFieldDescriptor *f, const void *member)
{
	if (f->type == PROTOBUF_C_TYPE_STRING)
		return check_string(w, *(char *const *)member);
	if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage *const *)member)
		return walk_message(w, *(ProtobufCMessage *const *)member);
	return CS_OK;
}

/* Map entries are shown by key when the key is a printable string, else by index. */
static int walk_map(struct walk *w, const ProtobufCMessageDescriptor *e, ProtobufCMessage **arr,
		    size_t n)
{
	const ProtobufCFieldDescriptor *kf = &e->fields[0];
	const ProtobufCFieldDescriptor *vf = &e->fields[1];
	for (size_t i = 0; i < n; i++) {
		if (!arr[i])
			continue;
		size_t mark = w->path.len;
		const char *key = NULL;
		if (kf->type == PROTOBUF_C_TYPE_STRING) {
			key = *(char *const *)member_at(arr[i], kf->offset);
			if (key && !cs_utf8_valid(key, strlen(key))) {
				cs_path_index(&w->path, i);
				cs_path_field(&w->path, "key");
				return bad(w, "invalid utf-8");
			}
		}
		if (key)
			cs_path_key(&w->path, key, strlen(key));
		else
			cs_path_index(&w->path, i);
		int rc = walk_value(w, vf, member_at(arr[i], vf->offset));
		if (rc)
			return rc;
		cs_path_pop(&w->path, mark);
	}
	return CS_OK;
}

static int walk_field(struct walk *w, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const void *member = member_at(m, f->offset);
	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return walk_value(w, f, member);

	size_t n = *(const size_t *)member_at(m, f->quantifier_offset);
	if (n == 0)
		return CS_OK;
	const ProtobufCMessageDescriptor *e = cs_pb_map_entry(m->descriptor, f);
	if (e)
		return walk_map(w, e, *(ProtobufCMessage * *const *)member, n);

	const char *arr = *(const char *const *)member;
	size_t step = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE
			  ? sizeof(void *)
			  : 0;
	if (!step || !arr)
		return CS_OK;
	for (size_t i = 0; i < n; i++) {
		size_t mark = cs_path_index(&w->path, i);
		int rc = walk_value(w, f, arr + i * step);
		if (rc)
			return rc;
		cs_path_pop(&w->path, mark);
	}
	return CS_OK;
}

static size_t json_depth(const json_t *v)
{
	size_t deepest = 0, d;
	const char *key;
	json_t *child;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, child) if ((d = json_depth(child)) > deepest)
		    deepest = d;
		return deepest + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, child) if ((d = json_depth(child)) > deepest) deepest = d;
		return deepest + 1;
	}
	return 0;
}

/* A JsonValue: its text is one JSON value, no deeper than what is left of the cap. */
static int check_json_value(struct walk *w, const ProtobufCMessage *m)
{
	const Convstore__V1__JsonValue *jv = (const Convstore__V1__JsonValue *)m;
	if (!jv->json || !*jv->json)
		return CS_OK;
	size_t mark = cs_path_field(&w->path, "json");
	int rc = check_string(w, jv->json);
	if (rc)
		return rc;
	cs_path_pop(&w->path, mark);
	/* Jansson's own depth limit (2048) bounds its recursion before ours is checked. */
	json_t *v =
	    json_loads(jv->json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	if (!v)
		return bad(w, "invalid json");
	size_t depth = json_depth(v);
	json_decref(v);
	if (w->depth + depth > CS_JSON_MAX_DEPTH)
		return bad(w, "too deeply nested");
	return CS_OK;
}

static int walk_message(struct walk *w, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
		return bad(w, "not a protobuf-c message");
	if (++w->depth > CS_JSON_MAX_DEPTH)
		return bad(w, "too deeply nested");
	if (d == &convstore__v1__json_value__descriptor) {
		int rc = check_json_value(w, m);
		w->depth--;
		return rc;
	}
	if (d == &convstore__v1__timestamp__descriptor) {
		const Convstore__V1__Timestamp *t = (const Convstore__V1__Timestamp *)m;
		w->depth--;
		return cs_timestamp_valid(t->seconds, t->nanos) ? CS_OK
								: bad(w, "timestamp out of range");
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		/* The members of a oneof share storage: only the selected one may be read. */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)member_at(m, f->quantifier_offset) != f->id)
			continue;
		size_t mark = cs_path_field(&w->path, f->name);
		int rc = walk_field(w, m, f);
		if (rc)
			return rc;
		cs_path_pop(&w->path, mark);
	}
	w->depth--;
	return CS_OK;
}

int cs_pb_check_text(const ProtobufCMessage *msg, cs_error *err)
{
	struct walk w = {.err = err};
	if (!msg)
		return cs_error_set(err, CS_EINVAL, "no message");
	return walk_message(&w, msg);
}
