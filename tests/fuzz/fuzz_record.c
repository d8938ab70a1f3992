/*
 * tests/fuzz/fuzz_record.c - libFuzzer target for the stored-record decoder (store/record.c):
 * CRC, format byte, flags, lengths, zlib inflate, and the protobuf decode and sanity checks that
 * follow for the two record types every read opens (events and heads).
 *
 * Input: [mode byte][record]. Random bytes almost never carry a valid CRC, so with bit 0 of the
 * mode set the target writes the right CRC first (fuzz.h) and the mutations reach the checks
 * behind it; bits 1-2 pick the reader's inflate cap, from 64 bytes up to 16 MiB. Properties:
 *   - whatever the bytes, the output is at most cap + 65,535 (tail) bytes: a forged inflated
 *     length or a deflate stream that expands past it is refused, never allocated or inflated;
 *   - a refused record leaves the view empty and says CS_ECORRUPT (or CS_ENOMEM);
 *   - an event or head that decodes passes or fails its sanity check without crashing.
 */
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "internal.h"

static void check_decoded(const unsigned char *rec, size_t len, size_t cap)
{
	cs_error err = CS_ERROR_INIT;
	ProtobufCMessage *m = NULL;
	if (cs_record_unpack(&m, &convstore__v1__event__descriptor, rec, len, cap, "fuzz", &err) ==
	    CS_OK) {
		(void)cs_event_sane((const Convstore__V1__Event *)m, &err);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	if (cs_record_unpack(&m, &convstore__v1__head__descriptor, rec, len, cap, "fuzz", &err) ==
	    CS_OK) {
		(void)cs_head_sane((const Convstore__V1__Head *)m, &err);
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t cap = FUZZ_RECORD_CAP(data[0]);
	size_t len = size - 1;
	unsigned char *rec = malloc(len ? len : 1); /* a copy of its own: ASan sees any overrun */
	FUZZ_REQUIRE(rec);
	memcpy(rec, data + 1, len);
	if ((data[0] & FUZZ_RECORD_FIX_CRC) && len >= CS_RECORD_HEADER)
		cs_put_be32(rec, (uint32_t)crc32(0, rec + 4, (uInt)(len - 4)));

	cs_record_view v = {(unsigned char *)data, 1}; /* must be reset on failure */
	cs_error err = CS_ERROR_INIT;
	int rc = cs_record_open(&v, rec, len, cap, "fuzz", &err);
	if (rc == CS_OK) {
		FUZZ_REQUIRE(v.raw_len <= cap + 0xffff && v.raw_len <= len * 1032 + 0xffff);
		cs_record_view_deinit(&v);
		check_decoded(rec, len, cap);
	} else {
		FUZZ_REQUIRE(v.raw == NULL && v.raw_len == 0);
		FUZZ_REQUIRE((rc == CS_ECORRUPT || rc == CS_ENOMEM) && err.code == rc);
	}
	free(rec);
	return 0;
}
