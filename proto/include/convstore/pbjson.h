/*
 * convstore/pbjson.h - the proto3 JSON mapping for any protobuf-c message, and a UTF-8 check for
 * messages that arrive as binary protobuf.
 *
 * The codec is driven only by protobuf-c descriptors: it knows no convstore message except the
 * two well-known types of convstore.v1 (Timestamp and JsonValue, see event.proto).
 *
 * Mapping (encode and decode):
 *   - Keys are proto field names (snake_case) on output; decode also accepts the lowerCamelCase
 *     JSON name (drop each '_' and upper-case the letter after it: "call_id" -> "callId").
 *   - proto3 fields at their default (0, "", false, empty bytes, enum 0, empty list or map) are
 *     omitted. A member of a oneof is written whenever its case is set, even at its default, so
 *     a one-member oneof named `<x>_opt` reads as an optional field `x`: written when set, left
 *     out when not. (A selected string or message that still points at protobuf-c's shared
 *     default counts as unset, exactly as protobuf-c's packer treats it.) JSON null for any
 *     field means "absent".
 *   - Integers are JSON numbers; a uint64 above INT64_MAX is a decimal string. Decode accepts
 *     numbers, integral reals and decimal strings, range-checked for the field's width.
 *   - double and float are JSON numbers; NaN and the infinities are "NaN", "Infinity",
 *     "-Infinity". bytes are standard base64 with padding (decode also takes URL-safe, unpadded).
 *     Enums are written by value name; decode takes the name or the number.
 *   - Maps: protobuf-c descriptors carry no map flag, so a repeated message field is a map when
 *     its entry type follows protoc's map-entry rule (see cs_pb_map_entry()). A map is a JSON
 *     object; integer and bool keys are JSON strings ("42", "true").
 *   - convstore.v1.Timestamp is an RFC 3339 string ("2026-11-26T21:00:00Z", 0, 3, 6 or 9
 *     fractional digits on output; decode takes 'Z' or a +hh:mm/-hh:mm offset and 0 to 9
 *     digits, years 0001 to 9999, no leap second).
 *   - convstore.v1.JsonValue is the JSON value its text holds, not a string.
 *
 * Caveats:
 *   - JSON numbers go through Jansson, whose integers are long long: the literal number
 *     18446744073709551615 is a parse error; send large uint64 values as strings.
 *   - Reals print with Jansson's 17 significant digits: exact, but 0.1 reads 0.10000000000000001.
 *   - A singular JsonValue field whose text is "null" or empty (binary input only) encodes as
 *     JSON null, which decodes as an absent field. In lists and map values null stays a
 *     JsonValue holding "null".
 *   - Unknown fields that protobuf-c kept from binary input are not written to JSON.
 *   - A JsonValue decoded from JSON holds Jansson's compact re-serialisation of the value, not
 *     the client's bytes: whitespace goes, and numbers take Jansson's spelling (1e3 -> 1000.0).
 *   - Nesting is capped at CS_JSON_MAX_DEPTH JSON levels on decode (JsonValue contents count).
 *   - Oneof names are not in protobuf-c descriptors (members share a case field), so errors
 *     about a oneof name its members, and any one-member oneof reads as an optional field.
 */
#ifndef CONVSTORE_PBJSON_H
#define CONVSTORE_PBJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "convstore/error.h"

/* The deepest nesting of JSON objects and arrays that decode accepts, the top object being 1. */
#define CS_JSON_MAX_DEPTH 64

/**
 * Encode @msg as a new Jansson value (an object, or a string / any value for a top-level
 * Timestamp / JsonValue).
 *
 * @param[out] out  the new value, owned by the caller (json_decref); NULL on failure
 * @param[in]  msg  any protobuf-c message; only read
 * @param[out] err  optional
 * @return CS_OK; CS_EINVAL for invalid UTF-8 in a string field or map key, a Timestamp out of
 *         range, or messages, lists and maps nested deeper than CS_JSON_MAX_DEPTH; CS_ECORRUPT
 *         for a JsonValue whose text does not parse (one with no text is null); CS_ENOMEM. The
 * message names the field path, e.g. "events[2].message.content: invalid utf-8".
 */
int cs_json_encode(json_t **out, const ProtobufCMessage *msg, cs_error *err);

/* Flags for cs_json_encode_flags() and cs_json_encode_text(). */
enum {
	/* Write an unset optional field (the one member of a oneof, `oneof x_opt { T x = N; }`) as
	 * JSON null instead of leaving it out: `"content": null`, `"next_cursor": null`. */
	CS_JSON_NULL_OPTIONAL = 1u << 0,
};

/** cs_json_encode() with CS_JSON_* @flags. */
int cs_json_encode_flags(json_t **out, const ProtobufCMessage *msg, unsigned flags, cs_error *err);

/**
 * Encode @msg as compact JSON text.
 *
 * @param[in]  msg          as for cs_json_encode()
 * @param[in]  flags        CS_JSON_* flags, or 0
 * @param[out] err          optional
 * @return NUL-terminated text from malloc, owned by the caller (free()); NULL on failure with
 *         @err filled as for cs_json_encode().
 */
char *cs_json_encode_text(const ProtobufCMessage *msg, unsigned flags, cs_error *err);

/**
 * Decode @in into a new message of type @desc.
 *
 * Everything is allocated with malloc in the layout protobuf-c's unpacker produces, so the
 * caller frees the result with protobuf_c_message_free_unpacked(msg, NULL).
 *
 * @param[out] out   the new message; NULL on failure (nothing partially built is left behind)
 * @param[in]  desc  the message type
 * @param[in]  in    a JSON object (or the JSON form of a Timestamp / JsonValue); only read
 * @param[out] err   optional
 * @return CS_OK; CS_EINVAL for an unknown or repeated field, a wrong JSON type, a number out of
 *         range for its field, bad base64, a bad timestamp, a string with a NUL byte, two
 *         members of one oneof, or nesting deeper than CS_JSON_MAX_DEPTH; CS_ENOMEM. The
 *         message names the field path ("events[0].tool_result.duration_ms: ...").
 */
int cs_json_decode(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc, const json_t *in,
		   cs_error *err);

/**
 * Parse @len bytes of JSON @text (duplicate keys rejected) and decode it as cs_json_decode()
 * does. The top level must be an object, except for a top-level Timestamp or JsonValue.
 *
 * @return as cs_json_decode(); a parse error is CS_EINVAL with Jansson's line, column and
 *         reason in the message.
 */
int cs_json_decode_text(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
			const char *text, size_t len, cs_error *err);

/**
 * Check the text inside @msg: every string is valid UTF-8 (singular, repeated and oneof string
 * fields and map keys and values, recursively through sub-messages), every JsonValue holds
 * one JSON value (or nothing) within CS_JSON_MAX_DEPTH, and every Timestamp is one
 * cs_timestamp_valid() accepts. Binary protobuf input skips the JSON decoder's checks, so the
 * store calls this on every event it is given: what passes can always be encoded.
 *
 * @return CS_OK; CS_EINVAL naming the path of the first bad value
 *         ("events[0].metadata[\"k\"]: invalid utf-8", "extension.data: invalid json",
 *         "occurred_at: timestamp out of range") or for messages nested deeper than
 *         CS_JSON_MAX_DEPTH.
 */
int cs_pb_check_text(const ProtobufCMessage *msg, cs_error *err);

/**
 * Whether a convstore.v1.Timestamp has an RFC 3339 form: 0001-01-01T00:00:00Z to
 * 9999-12-31T23:59:59.999999999Z, nanos 0 to 999,999,999 (the proto3 Timestamp range).
 */
bool cs_timestamp_valid(int64_t seconds, int32_t nanos);

/**
 * Strict UTF-8: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
 * truncated sequence. A NUL byte is valid UTF-8 (callers that forbid it check separately).
 */
bool cs_utf8_valid(const char *s, size_t len);

/**
 * If @field of @parent is a map, return its entry type, else NULL.
 *
 * protobuf-c keeps no map flag, so the rule is protoc's own naming: a repeated message field
 * `foo_bar` is a map when its type is the nested message `<parent>.FooBarEntry` (the field name
 * with its first letter and each letter after '_' upper-cased, underscores dropped, plus
 * "Entry") with exactly two fields, key = 1 (an integer, bool or string) and value = 2. A
 * hand-written nested message that matches all of this is treated as a map too.
 */
const ProtobufCMessageDescriptor *cs_pb_map_entry(const ProtobufCMessageDescriptor *parent,
						  const ProtobufCFieldDescriptor *field);

#endif
