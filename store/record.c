/*
 * record.c - the one record codec: how a protobuf message is framed on disk. The only file of
 * the store that includes zlib.h.
 *
 *    0          4     5       6              10          12
 *    +----------+-----+-------+--------------+-----------+---------------+----------+
 *    | crc32 BE | fmt | flags | body_len BE  | tail_len  | body          | tail     |
 *    +----------+-----+-------+--------------+-----------+---------------+----------+
 *    fmt       CS_RECORD_FMT (1)
 *    flags     bit 0: body is raw deflate (zlib) of body_len bytes; other bits must be 0
 *    body_len  the body's INFLATED length (what a reader must allocate; capped on read)
 *    tail_len  u16 BE, bytes of plain tail after the body
 *    crc32     of every byte after the crc field (header, stored body, tail)
 *
 * The message is body ++ tail: protobuf allows a message to be split anywhere between fields
 * and concatenated. The append path uses that: the caller's thread packs, deflates and
 * checksums the body in parallel with other callers, and the single writer only adds the tail
 * (version, position, recorded_at, known at commit) and combines the CRC (crc32_combine), so
 * the writer never touches the body's bytes but to copy them into the map.
 *
 * Deflating is worth it only for bodies of 2 KiB or more and only when it saves an eighth: on a
 * 1 KiB event it saved ~15% and cost more CPU than the rest of the append path together
 * (tools/bench_append, profiled), while the bodies that matter for space (system prompts, tool
 * outputs) are several KiB of text that deflates 3-5x. Inflating
 * is capped at the reader's max_raw, so a forged body_len cannot become a decompression bomb.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"

#define CS_RECORD_FMT	 1
#define CS_FLAG_DEFLATED 0x01u
#define CS_DEFLATE_MIN	 2048 /* smaller bodies are stored as they are: see above */

void cs_body_deinit(cs_body *b)
{
	if (!b)
		return;
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* One deflater per thread, reset between bodies: setting a stream up allocates ~270 KB and
 * clears its tables, which costs several times more than compressing a 1 KiB event. */
static pthread_key_t deflater_key;
static pthread_once_t deflater_once = PTHREAD_ONCE_INIT;

static void deflater_free(void *p)
{
	deflateEnd(p);
	free(p);
}

static void deflater_key_make(void)
{
	pthread_key_create(&deflater_key, deflater_free);
}

static z_stream *thread_deflater(void)
{
	pthread_once(&deflater_once, deflater_key_make);
	z_stream *z = pthread_getspecific(deflater_key);
	if (z)
		return deflateReset(z) == Z_OK ? z : NULL;
	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	/* Raw deflate (no zlib header: the record has its own CRC) at the fastest level: appends
	 * are latency-sensitive and most of the win is in the first level. */
	if (deflateInit2(z, Z_BEST_SPEED, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(z);
		return NULL;
	}
	if (pthread_setspecific(deflater_key, z) != 0) {
		deflater_free(z);
		return NULL;
	}
	return z;
}

/* The deflated body, or NULL when it does not pay (or cannot be had: then it is stored as is). */
static unsigned char *deflate_body(const unsigned char *raw, size_t raw_len, size_t *out_len)
{
	z_stream *z = thread_deflater();
	if (!z)
		return NULL;
	size_t cap = raw_len - raw_len / 8; /* must save at least an eighth */
	unsigned char *buf = malloc(cap);
	if (!buf)
		return NULL;
	z->next_in = (unsigned char *)raw;
	z->avail_in = (uInt)raw_len;
	z->next_out = buf;
	z->avail_out = (uInt)cap;
	int rc = deflate(z, Z_FINISH);
	*out_len = z->total_out;
	if (rc != Z_STREAM_END) { /* did not fit in cap: not worth it */
		free(buf);
		return NULL;
	}
	return buf;
}

static int body_pack(cs_body *out, const ProtobufCMessage *msg, size_t max_len, size_t deflate_min,
		     cs_error *err);

int cs_body_pack(cs_body *out, const ProtobufCMessage *msg, size_t max_len, cs_error *err)
{
	return body_pack(out, msg, max_len, CS_DEFLATE_MIN, err);
}

static int body_pack(cs_body *out, const ProtobufCMessage *msg, size_t max_len, size_t deflate_min,
		     cs_error *err)
{
	memset(out, 0, sizeof(*out));
	size_t len = protobuf_c_message_get_packed_size(msg);
	if (len > max_len || len > UINT32_MAX)
		return cs_error_set(err, CS_ETOOBIG,
				    "packed, it is %zu bytes: over the %zu-byte limit", len,
				    max_len < UINT32_MAX ? max_len : (size_t)UINT32_MAX);
	unsigned char *raw = malloc(len ? len : 1);
	if (!raw)
		return cs_error_set(err, CS_ENOMEM, "out of memory packing %zu bytes", len);
	protobuf_c_message_pack(msg, raw);
	out->raw_len = len;
	if (len >= deflate_min && len > 0 && len <= UINT32_MAX / 2)
		out->data = deflate_body(raw, len, &out->stored_len);
	if (out->data) {
		out->deflated = true;
		free(raw);
	} else { /* stored as packed: the buffer becomes the body, no copy */
		out->data = raw;
		out->stored_len = len;
	}
	out->crc = (uint32_t)crc32(0, out->data, (uInt)out->stored_len);
	return CS_OK;
}

size_t cs_record_size(const cs_body *b, size_t tail_len)
{
	return CS_RECORD_HEADER + b->stored_len + tail_len;
}

void cs_record_write(unsigned char *dst, const cs_body *b, const unsigned char *tail,
		     size_t tail_len)
{
	dst[4] = CS_RECORD_FMT;
	dst[5] = b->deflated ? CS_FLAG_DEFLATED : 0;
	cs_put_be32(dst + 6, (uint32_t)b->raw_len);
	dst[10] = (unsigned char)(tail_len >> 8);
	dst[11] = (unsigned char)tail_len;
	memcpy(dst + CS_RECORD_HEADER, b->data, b->stored_len);

	uLong crc = crc32(0, dst + 4, CS_RECORD_HEADER - 4);
	crc = crc32_combine(crc, b->crc, (z_off_t)b->stored_len);
	if (tail_len) { /* crc32(c, NULL, 0) would return 0, not c */
		memcpy(dst + CS_RECORD_HEADER + b->stored_len, tail, tail_len);
		crc = crc32(crc, tail, (uInt)tail_len);
	}
	cs_put_be32(dst, (uint32_t)crc);
}

void cs_record_view_deinit(cs_record_view *v)
{
	if (!v)
		return;
	free(v->raw);
	v->raw = NULL;
	v->raw_len = 0;
}

static int inflate_body(unsigned char *dst, size_t dst_len, const unsigned char *src,
			size_t src_len)
{
	z_stream z = {0};
	if (inflateInit2(&z, -15) != Z_OK)
		return CS_ENOMEM;
	z.next_in = (unsigned char *)src;
	z.avail_in = (uInt)src_len;
	z.next_out = dst;
	z.avail_out = (uInt)dst_len;
	int rc = inflate(&z, Z_FINISH);
	size_t got = z.total_out;
	inflateEnd(&z);
	return rc == Z_STREAM_END && got == dst_len && z.avail_in == 0 ? CS_OK : CS_ECORRUPT;
}

int cs_record_open(cs_record_view *out, const unsigned char *rec, size_t len, size_t max_raw,
		   const char *what, cs_error *err)
{
	out->raw = NULL;
	out->raw_len = 0;
	if (len < CS_RECORD_HEADER)
		return cs_error_set(err, CS_ECORRUPT, "%s: record of %zu bytes is truncated", what,
				    len);
	uint32_t want = cs_get_be32(rec);
	uint32_t got = (uint32_t)crc32(0, rec + 4, (uInt)(len - 4));
	if (want != got)
		return cs_error_set(err, CS_ECORRUPT,
				    "%s: crc mismatch (stored %08x, computed %08x)", what, want,
				    got);
	unsigned flags = rec[5];
	size_t body_len = cs_get_be32(rec + 6);
	size_t tail_len = ((size_t)rec[10] << 8) | rec[11];
	if (rec[4] != CS_RECORD_FMT || (flags & ~CS_FLAG_DEFLATED))
		return cs_error_set(err, CS_ECORRUPT, "%s: unknown record format %u flags %#x",
				    what, rec[4], flags);
	if (tail_len > len - CS_RECORD_HEADER)
		return cs_error_set(err, CS_ECORRUPT, "%s: tail of %zu bytes overruns the record",
				    what, tail_len);
	size_t stored = len - CS_RECORD_HEADER - tail_len;
	if (!(flags & CS_FLAG_DEFLATED) && stored != body_len)
		return cs_error_set(err, CS_ECORRUPT, "%s: body is %zu bytes, header says %zu",
				    what, stored, body_len);
	if (body_len > max_raw)
		return cs_error_set(err, CS_ECORRUPT, "%s: body of %zu bytes exceeds the %zu cap",
				    what, body_len, max_raw);

	unsigned char *raw = malloc(body_len + tail_len + 1);
	if (!raw)
		return cs_error_set(err, CS_ENOMEM, "%s: out of memory", what);
	const unsigned char *body = rec + CS_RECORD_HEADER;
	if (flags & CS_FLAG_DEFLATED) {
		int rc = inflate_body(raw, body_len, body, stored);
		if (rc != CS_OK) {
			free(raw);
			return cs_error_set(err, rc,
					    "%s: deflated body does not inflate to %zu bytes", what,
					    body_len);
		}
	} else {
		memcpy(raw, body, body_len);
	}
	memcpy(raw + body_len, body + stored, tail_len);
	out->raw = raw;
	out->raw_len = body_len + tail_len;
	return CS_OK;
}

int cs_record_unpack(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
		     const unsigned char *rec, size_t len, size_t max_raw, const char *what,
		     cs_error *err)
{
	*out = NULL;
	cs_record_view v;
	int rc = cs_record_open(&v, rec, len, max_raw, what, err);
	if (rc != CS_OK)
		return rc;
	*out = protobuf_c_message_unpack(desc, NULL, v.raw_len, v.raw);
	cs_record_view_deinit(&v);
	if (!*out)
		return cs_error_set(err, CS_ECORRUPT, "%s: record does not decode as %s", what,
				    desc->name);
	return CS_OK;
}

int cs_record_pack(unsigned char **out, size_t *out_len, const ProtobufCMessage *msg, cs_error *err)
{
	return cs_record_pack_min(out, out_len, msg, CS_DEFLATE_MIN, err);
}

int cs_record_pack_min(unsigned char **out, size_t *out_len, const ProtobufCMessage *msg,
		       size_t deflate_min, cs_error *err)
{
	*out = NULL;
	cs_body b;
	int rc = body_pack(&b, msg, SIZE_MAX, deflate_min, err);
	if (rc != CS_OK)
		return rc;
	*out_len = cs_record_size(&b, 0);
	*out = malloc(*out_len);
	if (!*out) {
		cs_body_deinit(&b);
		return cs_error_set(err, CS_ENOMEM, "out of memory framing %zu bytes", *out_len);
	}
	cs_record_write(*out, &b, NULL, 0);
	cs_body_deinit(&b);
	return CS_OK;
}
