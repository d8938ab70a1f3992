/*
 * tests/fuzz/fuzz_json.c - libFuzzer target for the proto3-JSON decoder (proto/json.c), on the
 * text of every request body convstored decodes, then the client-event checks the store runs
 * (store/validate.c) on what it decoded.
 *
 * Input: [type byte][JSON text]; the byte picks the message type (fuzz.h). Besides "no crash, no
 * leak, no UB", each decoded message must satisfy what the rest of the server relies on:
 *   - a failed decode leaves *out NULL and a one-line error of the code it returned, valid UTF-8
 *     (it goes into a JSON error body);
 *   - a decoded message passes cs_pb_check_text (the decoder's UTF-8 and depth guarantees);
 *   - it encodes again, and decoding that text gives the same protobuf bytes and the same text
 *     (the JSON form is a faithful view of what is stored);
 *   - cs_event_check on its events returns a code, never crashes, whatever it decides.
 */
#include "fuzz.h"
#include "internal.h"

static void check_events(Convstore__V1__Event *const *events, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cs_error err = CS_ERROR_INIT;
		int rc = cs_event_check(events[i], "c1", &err);
		FUZZ_REQUIRE(rc == CS_OK || (rc == CS_EINVAL && err.code == rc));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned type = data[0] % FUZZ_JSON_TYPES;
	ProtobufCMessage *m = (ProtobufCMessage *)data; /* must be reset to NULL on failure */
	cs_error err = CS_ERROR_INIT;
	int rc =
	    cs_json_decode_text(&m, fuzz_json_types[type], (const char *)data + 1, size - 1, &err);
	if (rc != CS_OK) {
		FUZZ_REQUIRE(m == NULL && err.code == rc && (rc == CS_EINVAL || rc == CS_ENOMEM));
		FUZZ_REQUIRE(err.msg[0] && cs_utf8_valid(err.msg, strlen(err.msg)));
		return 0;
	}
	FUZZ_REQUIRE(cs_pb_check_text(m, &err) == CS_OK);
	fuzz_json_round_trip(m, true);
	if (type == FUZZ_JSON_EVENT) {
		Convstore__V1__Event *ev = (Convstore__V1__Event *)m;
		check_events(&ev, 1);
	} else if (type == FUZZ_JSON_APPEND) {
		const Convstore__V1__AppendRequest *req = (const Convstore__V1__AppendRequest *)m;
		check_events(req->events, req->n_events);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
