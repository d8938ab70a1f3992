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
 * The events of a request are then prepared and folded as the writer does (cs_request_prepare,
 * cs_head_check, cs_head_apply): once the checks pass, folding must succeed and the transcript
 * entry, the summary and the head must encode as JSON.
 */
#include "internal.h"

#include "fuzz.h"

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

/* @m encodes as JSON (a view the server will answer with). */
static void check_encodes(const ProtobufCMessage *m)
{
	cs_error err = CS_ERROR_INIT;
	char *text = cs_json_encode_text(m, CS_JSON_NULL_OPTIONAL, &err);
	if (!text)
		fprintf(stderr, "view does not encode: %s\n", err.msg);
	FUZZ_REQUIRE(text);
	free(text);
}

/* What the single writer does with a request the caller's thread prepared (append.c): number
 * each event, check it against the head, fold it in; then the views built from the head and
 * from each event. A check may refuse the request; once it passed, folding and the views must
 * work. */
static void check_fold(Convstore__V1__Event *const *events, size_t n)
{
	cs_limits lim = {CS_DEFAULT_MAX_EVENT_BYTES, CS_DEFAULT_MAX_REQUEST_EVENTS};
	cs_request req;
	cs_error err = CS_ERROR_INIT;
	if (cs_request_prepare(&req, &lim, "t", "c1", CS_ANY_VERSION, events, n, &err) != CS_OK)
		return;
	Convstore__V1__Head *head = NULL;
	FUZZ_REQUIRE(cs_head_new(&head, "t", "c1", &err) == CS_OK);
	Convstore__V1__Timestamp now = CONVSTORE__V1__TIMESTAMP__INIT;
	now.seconds = 1795700000;
	for (size_t i = 0; i < req.n; i++) {
		Convstore__V1__Event *ev = &req.events[i].ev;
		if (!fuzz_fold_one(head, ev, &now))
			break; /* the request is refused as a whole */
		Convstore__V1__TranscriptMessage *t = NULL;
		FUZZ_REQUIRE(cs_transcript_entry(&t, ev, &err) == CS_OK);
		if (t) {
			check_encodes(&t->base);
			protobuf_c_message_free_unpacked(&t->base, NULL);
		}
		ev->recorded_at = NULL; /* borrowed from this frame */
	}
	Convstore__V1__ConversationState *st = NULL;
	FUZZ_REQUIRE(cs_summary_of(&st, head, &err) == CS_OK);
	check_encodes(&st->base);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	check_encodes(&head->base);
	cs_head_free(head);
	cs_request_deinit(&req);
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
			check_fold(req->events, req->n_events);
			convstore__v1__append_request__free_unpacked(req, NULL);
		}
	} else {
		Convstore__V1__Event *ev = convstore__v1__event__unpack(NULL, size - 1, data + 1);
		if (ev) {
			check_events(&ev, 1);
			check_fold(&ev, 1);
			convstore__v1__event__free_unpacked(ev, NULL);
		}
	}
	return 0;
}
