/*
 * tests/fuzz/fuzz_event.c - libFuzzer target for binary protobuf events as convstored receives
 * them (Content-Type: application/x-protobuf): protobuf-c's unpacker, then the store's client-event
 * checks (store/validate.c), then what the store does with an event it accepted.
 *
 * Input: [kind byte][protobuf]; an even byte is one Event, an odd one an AppendRequest (fuzz.h).
 * An event that cs_event_check accepts is one the store will keep and serve forever, so the
 * target holds it to what serving needs:
 *   - it encodes as JSON (every read route answers JSON by default), and that JSON decodes and
 *     settles on one text (fuzz_json_round_trip);
 *   - framed as a record (deflated and not), it opens again to the same protobuf bytes.
 * A failure of either is a bug in validation: an append the store takes but cannot give back.
 */
#include "fuzz.h"
#include "internal.h"

static void check_record(const Convstore__V1__Event *ev, size_t deflate_min)
{
	cs_error err = CS_ERROR_INIT;
	unsigned char *rec = NULL;
	size_t rec_len = 0;
	FUZZ_REQUIRE(cs_record_pack_min(&rec, &rec_len, &ev->base, deflate_min, &err) == CS_OK);
	cs_record_view v;
	int rc = cs_record_open(&v, rec, rec_len, 64u << 20, "fuzz", &err);
	FUZZ_REQUIRE(rc == CS_OK);
	size_t len;
	uint8_t *want = fuzz_packed(&ev->base, &len);
	FUZZ_REQUIRE(v.raw_len == len && memcmp(v.raw, want, len) == 0);
	free(want);
	cs_record_view_deinit(&v);
	free(rec);
}

static void check_events(Convstore__V1__Event *const *events, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cs_error err = CS_ERROR_INIT;
		int rc = cs_event_check(events[i], "c1", &err);
		FUZZ_REQUIRE(rc == CS_OK || (rc == CS_EINVAL && err.code == rc));
		if (rc != CS_OK)
			continue;
		fuzz_json_round_trip(&events[i]->base, false);
		check_record(events[i], 0);	   /* always deflated */
		check_record(events[i], SIZE_MAX); /* never */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & FUZZ_EVENT_BATCH) {
		Convstore__V1__AppendRequest *req =
		    convstore__v1__append_request__unpack(NULL, size - 1, data + 1);
		if (req) {
			check_events(req->events, req->n_events);
			convstore__v1__append_request__free_unpacked(req, NULL);
		}
	} else {
		Convstore__V1__Event *ev = convstore__v1__event__unpack(NULL, size - 1, data + 1);
		if (ev) {
			check_events(&ev, 1);
			convstore__v1__event__free_unpacked(ev, NULL);
		}
	}
	return 0;
}
