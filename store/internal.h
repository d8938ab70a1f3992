/*
 * internal.h - what the store's modules share and nothing outside store/ (except tests) sees.
 *
 * Module map (each .c file's header says more):
 *   keys.c     the one key encoder: big-endian numbers, length-prefixed stream keys
 *   record.c   the one record codec: framing, CRC32, zlib (the only file that includes zlib.h)
 *   env.c      the one LMDB wrapper: error map, read transactions, map growth
 *   reduce.c   the one reducer: head' = apply(head, event), and the checks an event must pass
 *              against the head it is applied to
 *   validate.c checks that need no stored state (run in the caller's thread)
 *   append.c   one append request inside a write transaction: idempotency, expected version,
 *              versions and positions, persist
 *   commit.c   group commit: the queue and the single writer thread
 *   read.c     stream, feed and head reads
 *   verify.c   whole-store checks
 *   store.c    open/close, meta and format version, stats, ids
 */
#ifndef CONVSTORE_INTERNAL_H
#define CONVSTORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "convstore/store.h"

/* ---- keys.c ------------------------------------------------------------------------------ */

/* A stream key: [u8 len][tenant][u8 len][conversation id]. With ids capped at 128 bytes the
 * longest key we build (stream key + 8-byte version, or + 128-byte event id) stays under LMDB's
 * 511-byte key limit. */
#define CS_STREAM_KEY_MAX (2 + 2 * CS_MAX_ID_LEN)
#define CS_KEY_MAX	  (CS_STREAM_KEY_MAX + CS_MAX_ID_LEN)

typedef struct cs_key {
	size_t len;
	unsigned char b[CS_KEY_MAX];
} cs_key;

void cs_put_be64(unsigned char *p, uint64_t v);
uint64_t cs_get_be64(const unsigned char *p);
void cs_put_be32(unsigned char *p, uint32_t v);
uint32_t cs_get_be32(const unsigned char *p);

/* Ids must already be valid (cs_id_valid): lengths are not checked here. */
void cs_key_stream(cs_key *k, const char *tenant, const char *conversation_id);
void cs_key_version(cs_key *k, const char *tenant, const char *conversation_id, uint64_t version);
void cs_key_event_id(cs_key *k, const char *tenant, const char *conversation_id,
		     const char *event_id);
void cs_key_position(cs_key *k, uint64_t position);
/* The version slot of a stream's head in the streams database (keys.c). */
#define CS_HEAD_VERSION UINT64_MAX
/* Whether @key is an index entry (not the head) of @stream. */
bool cs_key_is_event_of(const MDB_val *key, const cs_key *stream);
/* The key of @stream's head: the stream key and CS_HEAD_VERSION. */
void cs_key_head(cs_key *k, const cs_key *stream);

/* ---- record.c ---------------------------------------------------------------------------- */

/* A body prepared for storing: the protobuf bytes, deflated when that pays, and their CRC. */
typedef struct cs_body {
	unsigned char *data; /* malloc'd; stored bytes (deflated or not) */
	size_t stored_len;
	size_t raw_len; /* inflated length */
	uint32_t crc;	/* crc32 of data[0..stored_len) */
	bool deflated;
} cs_body;

#define CS_RECORD_HEADER 12

/* Pack @msg into a body (CS_ETOOBIG when it is over @max_len bytes): deflated when that pays,
 * otherwise the packed buffer itself, not a copy of it. */
int cs_body_pack(cs_body *out, const ProtobufCMessage *msg, size_t max_len, cs_error *err);
void cs_body_deinit(cs_body *b);
size_t cs_record_size(const cs_body *b, size_t tail_len);
void cs_record_write(unsigned char *dst, const cs_body *b, const unsigned char *tail,
		     size_t tail_len);

/* A record opened for reading; raw (body ++ tail) is either owned (scratch) or borrowed. */
typedef struct cs_record_view {
	unsigned char *raw; /* contiguous body ++ tail, malloc'd */
	size_t raw_len;
} cs_record_view;

/* Check framing and CRC and produce the raw protobuf bytes (inflating at most @max_raw bytes).
 * CS_ECORRUPT names what is wrong; @what is used in messages ("position 42"). */
int cs_record_open(cs_record_view *out, const unsigned char *rec, size_t len, size_t max_raw,
		   const char *what, cs_error *err);
void cs_record_view_deinit(cs_record_view *v);

/* Unpack a stored record straight into a protobuf message of @desc. */
int cs_record_unpack(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
		     const unsigned char *rec, size_t len, size_t max_raw, const char *what,
		     cs_error *err);
/* Pack @msg and frame it (no tail) into a malloc'd record. */
int cs_record_pack(unsigned char **out, size_t *out_len, const ProtobufCMessage *msg,
		   cs_error *err);

/* ---- env.c ------------------------------------------------------------------------------- */

typedef struct cs_env {
	MDB_env *env;
	MDB_dbi meta, events, streams, idem;
	/* Readers and the writer hold it shared for the life of a transaction; growing the map
	 * takes it exclusively, which is how "resize only with no transaction open" is enforced. */
	pthread_rwlock_t txn_lock;
	_Atomic size_t map_size; /* read by stats without the lock */
	size_t max_map_size;
	_Atomic uint64_t grows;
	bool read_only;
	char path[4096]; /* the store's folder, for free-space checks */
	/* Set (under txn_lock held exclusively) when LMDB lost its map: a resize could not map the
	 * new size nor the old one again. Every later transaction fails with CS_EIO. */
	_Atomic bool dead;
} cs_env;

int cs_env_open(cs_env *e, const cs_store_options *opts, cs_error *err);
void cs_env_close(cs_env *e);
/* Internal only, never returned by a public function: the map is full (MDB_MAP_FULL), which the
 * writer answers by growing it. A disk that is full is CS_EFULL, and growing would not help. */
#define CS_EMAPFULL (-100)

/* Map an LMDB (or errno) code to ours, with "@what: <lmdb text>" as the message. */
int cs_lmdb_error(cs_error *err, int rc, const char *what);
int cs_txn_begin(MDB_txn **out, cs_env *e, bool write, cs_error *err);
void cs_txn_abort(cs_env *e, MDB_txn *txn);
int cs_txn_commit(cs_env *e, MDB_txn *txn, cs_error *err);
/* Grow the map (no transaction of this process may be open: takes txn_lock exclusively).
 * CS_EFULL when already at max_map_size. */
int cs_env_grow(cs_env *e, size_t at_least, cs_error *err);

/* The largest head record an append may leave behind (what keeps it small is the caps on
 * pending calls and metadata; this is the backstop, e.g. for long titles). */
#define CS_HEAD_MAX (1u << 20)

/* ---- reduce.c ---------------------------------------------------------------------------- */

/* Check that @ev may follow @head (tool results answer pending calls, call ids not already
 * pending, status rules). @head may be the empty head of a new conversation. */
int cs_head_check(const Convstore__V1__Head *head, const Convstore__V1__Event *ev, cs_error *err);
/* Fold @ev (with version, position and recorded_at set) into @head, which it owns. */
int cs_head_apply(Convstore__V1__Head *head, const Convstore__V1__Event *ev, cs_error *err);
/* A new, empty head for a conversation (version 0). */
int cs_head_new(Convstore__V1__Head **out, const char *tenant, const char *conversation_id,
		cs_error *err);
void cs_head_free(Convstore__V1__Head *head);
/* A validated cost_usd (0..CS_MAX_COST_USD) in nano-dollars, rounded to nearest. */
int64_t cs_cost_nanos(double cost_usd);

/* ---- validate.c -------------------------------------------------------------------------- */

typedef struct cs_limits {
	size_t max_event_bytes;
	size_t max_request_events;
} cs_limits;

/* Stateless checks of one client event. */
int cs_event_check(const Convstore__V1__Event *ev, const char *conversation_id, cs_error *err);
/* Server-only payloads (conversation_created, ...) that clients may not append. */
bool cs_event_is_server_only(const Convstore__V1__Event *ev);
const char *cs_event_type_name(const Convstore__V1__Event *ev);

/* ---- append.c ---------------------------------------------------------------------------- */

/* One event of a request as prepared in the caller's thread. */
typedef struct cs_prepared {
	Convstore__V1__Event ev; /* shallow copy: tenant, conversation, type and id filled */
	char id[CS_MAX_ID_LEN + 1];
	bool generated; /* the server made the id up: it is no idempotency key */
	cs_body body;
} cs_prepared;

typedef struct cs_request {
	const char *tenant;
	const char *conversation_id;
	int64_t expected_version;
	cs_prepared *events;
	size_t n;
	bool client_ids; /* at least one event came with an id of its own */
	/* results, written by the writer */
	int rc;
	cs_error err;
	cs_append_result result;
	sem_t done; /* posted by the writer once the results above are written */
	struct cs_request *next;
} cs_request;

int cs_request_prepare(cs_request *req, const cs_limits *lim, const char *tenant,
		       const char *conversation_id, int64_t expected_version,
		       Convstore__V1__Event *const *events, size_t n, cs_error *err);
void cs_request_deinit(cs_request *req);

/* The writer's side of a batch: positions are handed out from *next_position. */
typedef struct cs_batch_ctx {
	MDB_txn *txn;
	cs_store *store;
	uint64_t next_position;
	uint64_t conversations; /* the meta counter, counting the batch's new conversations */
	Convstore__V1__Timestamp now;
} cs_batch_ctx;

/* Apply one request inside the batch transaction. A request-level failure (EINVAL, ECONFLICT)
 * writes nothing and is returned in req->rc with 0 as the function result; a non-zero function
 * result is a transaction-level failure (map full, I/O) that dooms the whole transaction. */
int cs_request_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err);

/* ---- commit.c ---------------------------------------------------------------------------- */

typedef struct cs_committer {
	pthread_mutex_t lock;
	pthread_cond_t work; /* the writer waits here for requests (CLOCK_MONOTONIC) */
	cs_request *head, *tail;
	size_t queued;		 /* requests in the queue */
	size_t queued_events;	 /* and their events */
	size_t linger_target;	 /* requests the writer expects back (see commit.c) */
	uint64_t last_commit_ns; /* how long the last commit took */
	size_t max_batch_events;
	bool closing;
	bool started;
	pthread_t thread;
	_Atomic uint64_t commits, appends; /* read by stats while the writer counts */
	cs_store *store;
} cs_committer;

int cs_committer_start(cs_committer *c, cs_store *store, size_t max_batch_events, cs_error *err);
void cs_committer_stop(cs_committer *c);
/* Queue @req and wait for its result (req->rc). */
int cs_committer_submit(cs_committer *c, cs_request *req);

/* ---- store.c ----------------------------------------------------------------------------- */

struct cs_store {
	cs_env env;
	cs_committer committer;
	cs_limits limits;
	size_t max_raw; /* the largest record body a read will inflate */
};

/* Meta keys. */
#define CS_META_FORMAT	      "format"
#define CS_META_LAST_POSITION "last_position"
#define CS_META_CONVERSATIONS "conversations"

/* Read a u64 meta record; 0 when absent. */
int cs_meta_get_u64(MDB_txn *txn, cs_env *e, const char *name, uint64_t *out, cs_error *err);
int cs_meta_put_u64(MDB_txn *txn, cs_env *e, const char *name, uint64_t v, cs_error *err);

/* Unpack the event stored at @position; CS_ENOTFOUND when there is none. */
int cs_event_load(Convstore__V1__Event **out, cs_store *s, MDB_txn *txn, uint64_t position,
		  cs_error *err);
/* Unpack a head record; CS_ENOTFOUND when the conversation has none. */
int cs_head_load(Convstore__V1__Head **out, cs_store *s, MDB_txn *txn, const cs_key *stream,
		 cs_error *err);

#endif
