/*
 * tests/fuzz/fuzz.h - what the libFuzzer targets of tests/fuzz/ and their seed generator share:
 * the entry points libFuzzer calls, the one fatal check, and the meaning of each target's first
 * input byte.
 *
 * Every target reads its first byte as a selector (which message type, which cap, whether to
 * repair the CRC) and the rest as the bytes under test. The selector lives here, next to the
 * tables it indexes, so that the seed generator (seeds.c) writes inputs that mean to a target
 * exactly what it meant them to: a seed is the selector byte followed by real bytes.
 *
 * FUZZ_REQUIRE is how a target states a property beyond "does not crash" (a decoded message
 * encodes again, a record round-trips): when it fails it aborts, and libFuzzer saves the input
 * as a crash like any sanitizer report. The JSON round trip and the writer's fold of one event
 * (when store/internal.h is included first) are here because two files use each. Header-only;
 * one per target executable.
 */
#ifndef CONVSTORE_TESTS_FUZZ_H
#define CONVSTORE_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convstore/pbjson.h"
#include "convstore/v1/api.pb-c.h"
#include "convstore/v1/event.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_REQUIRE(cond)                                                                         \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__,        \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The protobuf bytes of @m, malloc'd. */
static inline uint8_t *fuzz_packed(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*len ? *len : 1);
	FUZZ_REQUIRE(buf);
	protobuf_c_message_pack(m, buf);
	return buf;
}

/* @m as JSON text, then decoded and encoded again: the text the JSON form settles on. Every
 * step must succeed. The first trip may normalise (an empty JsonValue from binary input becomes
 * null, then absent); after it the text must not change. With @exact (a message that came from
 * JSON, so already normal), the first trip must give back @m's protobuf bytes and text. */
static inline void fuzz_json_round_trip(const ProtobufCMessage *m, bool exact)
{
	cs_error err = CS_ERROR_INIT;
	char *text[3] = {cs_json_encode_text(m, 0, &err), NULL, NULL};
	ProtobufCMessage *back[2] = {NULL, NULL};
	for (int i = 0; i < 2; i++) {
		if (!text[i])
			fprintf(stderr, "round trip %d: encode: %s\n", i, err.msg);
		FUZZ_REQUIRE(text[i]);
		int rc =
		    cs_json_decode_text(&back[i], m->descriptor, text[i], strlen(text[i]), &err);
		if (rc)
			fprintf(stderr, "round trip %d: decode: %s\n%s\n", i, err.msg, text[i]);
		FUZZ_REQUIRE(rc == CS_OK);
		text[i + 1] = cs_json_encode_text(back[i], 0, &err);
	}
	FUZZ_REQUIRE(text[2] && strcmp(text[1], text[2]) == 0);
	if (exact) {
		size_t a_len, b_len;
		uint8_t *a = fuzz_packed(m, &a_len), *b = fuzz_packed(back[0], &b_len);
		FUZZ_REQUIRE(a_len == b_len && memcmp(a, b, a_len) == 0);
		FUZZ_REQUIRE(strcmp(text[0], text[1]) == 0);
		free(a);
		free(b);
	}
	for (int i = 0; i < 2; i++)
		protobuf_c_message_free_unpacked(back[i], NULL);
	for (int i = 0; i < 3; i++)
		free(text[i]);
}

#ifdef CONVSTORE_INTERNAL_H
/* The single writer's step for one event (append.c): number it, check it against @head, fold it
 * in. False when the check refuses it (the whole request would be refused); once the check
 * passed, folding must succeed. @ev->recorded_at points at @now until the caller resets it. */
static inline bool fuzz_fold_one(Convstore__V1__Head *head, Convstore__V1__Event *ev,
				 Convstore__V1__Timestamp *now)
{
	cs_error err = CS_ERROR_INIT;
	ev->version = head->version + 1;
	ev->position = 1000 + head->version;
	ev->recorded_at = now;
	if (cs_head_check(head, ev, &err) != CS_OK)
		return false;
	FUZZ_REQUIRE(cs_head_apply(head, ev, &err) == CS_OK);
	return true;
}
#endif

/* fuzz_json: byte 0 (modulo the count) picks the type the JSON text after it is decoded as:
 * the request bodies convstored decodes (api/http.c), plus the two well-known types. */
static const ProtobufCMessageDescriptor *const fuzz_json_types[] = {
    &convstore__v1__event__descriptor,		&convstore__v1__append_request__descriptor,
    &convstore__v1__create_request__descriptor, &convstore__v1__update_request__descriptor,
    &convstore__v1__fork_request__descriptor,	&convstore__v1__timestamp__descriptor,
    &convstore__v1__json_value__descriptor,
};
#define FUZZ_JSON_TYPES	 (sizeof(fuzz_json_types) / sizeof(fuzz_json_types[0]))
#define FUZZ_JSON_EVENT	 0
#define FUZZ_JSON_APPEND 1

/* fuzz_event: byte 0 even: the rest is one binary Event; odd: an AppendRequest (a batch). */
#define FUZZ_EVENT_BATCH 0x01u

/* fuzz_record: bit 0 of byte 0 set: write the correct CRC into the record before opening it, so
 * that mutations reach the framing and inflate checks behind the CRC; bits 1-2 pick the
 * reader's inflate cap from fuzz_record_caps. */
#define FUZZ_RECORD_FIX_CRC 0x01u
static const size_t fuzz_record_caps[] = {64, 4096, 1u << 20, 16u << 20};
#define FUZZ_RECORD_CAP(b) (fuzz_record_caps[((b) >> 1) & 3u])

#endif
