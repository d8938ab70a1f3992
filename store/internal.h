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
 *   apply.c    events that already carry versions and times (import, followers)
 *   store.c    open/close, meta and format version, stats, ids
 *
 * The read side (issue 3):
 *   history.c  a conversation's history across forks; state at a version (snapshot + fold)
 *   views.c    the inline views written with each append: snapshots, list, usage, retain
 *   convops.c  create, update, fork, erase and the retention sweep, inside the writer
 *   state.c    the state, summary and messages views
 *   list.c     the conversation list and its cursor
 *   usage.c    usage queries over the rollups
 *   rebuild.c  every projection recomputed from the events, for verify and rebuild
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
/* [tl][tenant][position]: the list index (keys.c has every layout). */
void cs_key_list(cs_key *k, const char *tenant, uint64_t position);
/* Usage rollup keys: kind CS_USAGE_KEY_DAY (name NULL), _MODEL (name = model) or _CONV. */
#define CS_USAGE_KEY_DAY   'd'
#define CS_USAGE_KEY_MODEL 'm'
#define CS_USAGE_KEY_CONV  'c'
void cs_key_usage(cs_key *k, const char *tenant, char kind, uint32_t day, const char *name);
/* Read the tenant and conversation back from a key that starts with a stream key; *used is the
 * stream key's length. CS_ECORRUPT when it is not one. */
int cs_key_parse_stream(const unsigned char *b, size_t len, char tenant[CS_MAX_ID_LEN + 1],
			char conv[CS_MAX_ID_LEN + 1], size_t *used);
/* @stream ++ @version: an index key (streams) or a snapshot key (snaps). */
void cs_key_at(cs_key *k, const cs_key *stream, uint64_t version);
/* [parent stream][fork id]: one fork link. */
void cs_key_fork(cs_key *k, const cs_key *parent, const char *fork_id);
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
/* The same, deflating bodies from @deflate_min bytes on (when that saves an eighth). */
int cs_record_pack_min(unsigned char **out, size_t *out_len, const ProtobufCMessage *msg,
		       size_t deflate_min, cs_error *err);

/* ---- env.c ------------------------------------------------------------------------------- */

typedef struct cs_env {
	MDB_env *env;
	MDB_dbi meta, events, streams, idem;
	MDB_dbi snaps, list, usage, forks, tombs, retain, calls; /* the read side (views.c) */
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
/* The named databases: CS_ENV_DBS of them, each with its name and its handle in @e. */
#define CS_ENV_DBS 11
const char *cs_env_db_name(size_t i);
MDB_dbi *cs_env_dbi(cs_env *e, size_t i);
/* A compacted copy of the environment in the new folder @path (mdb_env_copy2, MDB_CP_COMPACT). */
int cs_env_copy(cs_env *e, const char *path, cs_error *err);
void cs_env_close(cs_env *e);
/* Internal only, never returned by a public function: the map is full (MDB_MAP_FULL), which the
 * writer answers by growing it. A disk that is full is CS_EFULL, and growing would not help. */
#define CS_EMAPFULL (-100)

/* Map an LMDB (or errno) code to ours, with "@what: <lmdb text>" as the message. */
int cs_lmdb_error(cs_error *err, int rc, const char *what);
int cs_txn_begin(MDB_txn **out, cs_env *e, bool write, cs_error *err);
void cs_txn_abort(cs_env *e, MDB_txn *txn);
int cs_txn_commit(cs_env *e, MDB_txn *txn, cs_error *err);
/* Put @cur on the last entry whose key is below *key (a backward walk's start). Returns the LMDB
 * code: MDB_NOTFOUND when there is none. */
int cs_cursor_before(MDB_cursor *cur, MDB_val *key, MDB_val *val);
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
/* Give a state folded from another conversation's events (a parent's) the id @id. */
int cs_head_rename(Convstore__V1__Head *head, const char *id, cs_error *err);
/* The transcript message @ev adds to the state (NULL in *out when it adds none: turns,
 * extensions, conversation events). @ev needs its version set. Owned by the caller. */
int cs_transcript_entry(Convstore__V1__TranscriptMessage **out, const Convstore__V1__Event *ev,
			cs_error *err);
bool cs_event_in_transcript(const Convstore__V1__Event *ev);
/* The arguments @ev (a model_response or tool_call) gave call @id; "" when it has none. */
const char *cs_call_arguments(const Convstore__V1__Event *ev, const char *id);
/* Add (@sign 1) or subtract (-1) one model response's tokens and cost; the head's usage and
 * the rollups (views.c) both count with it. */
void cs_counter_add(Convstore__V1__UsageCounter *c, const Convstore__V1__ModelResponse *mr,
		    int sign);
/* A validated cost_usd (0..CS_MAX_COST_USD) in nano-dollars, rounded to nearest. */
int64_t cs_cost_nanos(double cost_usd);

/* ---- validate.c -------------------------------------------------------------------------- */

typedef struct cs_limits {
	size_t max_event_bytes;
	size_t max_request_events;
} cs_limits;

/* Stateless checks of one client event. */
int cs_event_check(const Convstore__V1__Event *ev, const char *conversation_id, cs_error *err);
/* Checks of a conversation_created / _forked / _updated event the store builds from a caller's
 * spec (title, metadata, status, UTF-8). */
int cs_server_event_check(const Convstore__V1__Event *ev, cs_error *err);
/* Records read back from the store are checked before their ids go into keys: bytes on disk
 * are untrusted (a forged record with a valid CRC). CS_ECORRUPT. */
int cs_head_sane(const Convstore__V1__Head *h, cs_error *err);
int cs_event_sane(const Convstore__V1__Event *ev, cs_error *err);
/* Server-only payloads (conversation_created, ...) that clients may not append. */
bool cs_event_is_server_only(const Convstore__V1__Event *ev);
const char *cs_event_type_name(const Convstore__V1__Event *ev);

/* ---- progress (store.c) ------------------------------------------------------------------ */

/* A long call's progress: fn is told done and total every CS_PROGRESS_EVERY steps. */
#define CS_PROGRESS_EVERY 4096u
typedef struct cs_progress {
	cs_progress_fn fn; /* NULL: nobody asked */
	void *ctx;
	uint64_t done, total;
} cs_progress;

/* One step of @p (NULL: none). */
void cs_progress_step(cs_progress *p);

/* ---- append.c ---------------------------------------------------------------------------- */

/* One event of a request as prepared in the caller's thread. */
typedef struct cs_prepared {
	Convstore__V1__Event ev; /* shallow copy: tenant, conversation, type and id filled */
	char id[CS_MAX_ID_LEN + 1];
	bool generated; /* the server made the id up: it is no idempotency key */
	cs_body body;
	uint64_t version;	     /* CS_REQ_APPLY: the version the event already has, */
	uint64_t position;	     /* the position it had (kept when still ahead) */
	Convstore__V1__Timestamp at; /* CS_REQ_APPLY: and its recorded_at */
} cs_prepared;

/* What a request asks the writer to do. Appends, creates and updates carry prepared events;
 * the others are carried out by convops.c inside the batch transaction. */
enum cs_request_kind {
	CS_REQ_APPEND = 0, /* client events */
	CS_REQ_CREATE,	   /* one conversation_created event; the conversation must not exist */
	CS_REQ_UPDATE,	   /* one conversation_updated event; the conversation must exist */
	CS_REQ_FORK,	   /* one conversation_forked event into a new conversation */
	CS_REQ_ERASE,
	CS_REQ_SWEEP,	/* retention, for every conversation with a policy */
	CS_REQ_REBUILD, /* every projection from the events (rebuild.c) */
	CS_REQ_APPLY,	/* events that already have versions and times (apply.c) */
};

/* A snapshot taken while deciding, written if the request commits. */
typedef struct cs_snap {
	uint64_t version;
	unsigned char *rec;
	size_t len;
} cs_snap;

typedef struct cs_request {
	enum cs_request_kind kind;
	const char *tenant;
	const char *conversation_id;
	int64_t expected_version;
	cs_prepared *events;
	size_t n;
	bool client_ids;	    /* at least one event came with an id of its own */
	const char *parent_id;	    /* CS_REQ_FORK: the parent; conversation_id is the fork */
	uint64_t at_version;	    /* CS_REQ_FORK */
	bool purge;		    /* CS_REQ_ERASE */
	int64_t now_seconds;	    /* CS_REQ_SWEEP: the clock max_age is judged by */
	uint64_t removed;	    /* CS_REQ_SWEEP: events removed */
	cs_rebuild_report *rebuild; /* CS_REQ_REBUILD: the report */
	cs_progress progress;	    /* CS_REQ_REBUILD: told from the writer */
	cs_snap *snaps;		    /* taken while deciding */
	size_t n_snaps;
	/* results, written by the writer */
	int rc;
	cs_error err;
	cs_append_result result;
	sem_t done;		    /* posted by the writer once the results above are written */
	void (*on_done)(void *ctx); /* instead of posting done: called by the writer (async) */
	void *done_ctx;
	struct cs_request *next;
} cs_request;

int cs_request_prepare(cs_request *req, const cs_limits *lim, const char *tenant,
		       const char *conversation_id, int64_t expected_version,
		       Convstore__V1__Event *const *events, size_t n, cs_error *err);
/* A request of @kind carrying one event the store built (conversation_created/_updated/_forked):
 * checked with cs_server_event_check instead of the client rules. */
int cs_request_prepare_server(cs_request *req, enum cs_request_kind kind, const cs_limits *lim,
			      const char *tenant, const char *conversation_id,
			      int64_t expected_version, Convstore__V1__Event *ev, cs_error *err);
/* A CS_REQ_APPLY request: @events are shallow copies with version, position, recorded_at and
 * tenant cleared (apply.c sets each cs_prepared's version and at afterwards). */
int cs_request_prepare_apply(cs_request *req, const cs_limits *lim, const char *tenant,
			     const char *conversation_id, Convstore__V1__Event *const *events,
			     size_t n, cs_error *err);
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
/* The head of the request's conversation, or a new one (*is_new). A damaged head fails the
 * request alone (req->rc, *out NULL, CS_OK returned); < 0: a transaction failure. */
int cs_request_head(Convstore__V1__Head **out, bool *is_new, cs_batch_ctx *ctx, cs_request *req,
		    cs_error *err);
/* Fold the request's events into @head (numbering them from head->version + 1), taking the
 * snapshots that fall due, then persist events, head and views. A failed check is req->rc. */
int cs_events_commit(cs_batch_ctx *ctx, cs_request *req, Convstore__V1__Head *head, bool is_new,
		     cs_error *err);
/* Whether @stream has a tombstone (it was erased and not purged). */
int cs_tombstone_get(bool *out, MDB_txn *txn, cs_store *s, const cs_key *stream, cs_error *err);

/* ---- rebuild.c ---------------------------------------------------------------------------- */

/* Compare every derived record with a fresh fold of the events; *differences counts records
 * missing, different or extra, @first (optional) describes the first. */
int cs_projections_check(uint64_t *differences, cs_store *s, MDB_txn *txn, cs_progress *progress,
			 cs_error *first, cs_error *err);
int cs_rebuild_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err);

/* ---- apply.c ----------------------------------------------------------------------------- */

/* The writer's side of one CS_REQ_APPLY request (one conversation's run of events). */
int cs_apply_run(cs_batch_ctx *ctx, cs_request *req, cs_error *err);

/* ---- convops.c --------------------------------------------------------------------------- */

/* Queue a prepared request and wait for it; its result or error is copied out. */
int cs_store_submit(cs_append_result *out, cs_store *s, cs_request *req, cs_error *err);
int cs_fork_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err);
int cs_erase_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err);
int cs_sweep_apply(cs_batch_ctx *ctx, cs_request *req, cs_error *err);

/* ---- commit.c ---------------------------------------------------------------------------- */

typedef struct cs_committer {
	pthread_mutex_t lock;
	pthread_cond_t work; /* the writer waits here for requests (CLOCK_MONOTONIC) */
	cs_request *head, *tail;
	size_t queued;			   /* requests in the queue */
	size_t queued_events;		   /* and their events */
	size_t linger_target;		   /* requests the writer expects back (see commit.c) */
	uint64_t last_commit_ns;	   /* how long the last commit took */
	Convstore__V1__Timestamp last_now; /* the clock given to the last batch */
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
/* Queue @req without waiting: the writer calls req->on_done(req->done_ctx) once its results are
 * written. CS_OK, or CS_ECLOSED (req->rc and req->err say so; on_done is not called). */
int cs_committer_submit_async(cs_committer *c, cs_request *req);
/* Queue @n requests at once, in order (so one batch may take them all), and wait for every one.
 * Returns CS_OK; each request's own result is in its rc. */
int cs_committer_submit_all(cs_committer *c, cs_request *reqs, size_t n);

/* ---- history.c --------------------------------------------------------------------------- */

/* One conversation's own part of a history: versions lo..hi, of which held.. are still stored. */
typedef struct cs_segment {
	char conv[CS_MAX_ID_LEN + 1];
	uint64_t lo, held, hi;
} cs_segment;

/* A history across forks, oldest segment first (history.c shows the picture). */
typedef struct cs_history {
	char tenant[CS_MAX_ID_LEN + 1];
	cs_segment seg[CS_MAX_FORK_DEPTH + 1];
	size_t n;
} cs_history;

/* Called for each event of a walk; @ev is freed after the call. Non-zero stops the walk. */
typedef int (*cs_event_fn)(void *ctx, Convstore__V1__Event *ev, cs_error *err);

/* The first version a conversation owns (1, or after its fork point), and the first it still
 * holds (after what retention removed). */
uint64_t cs_head_own_lo(const Convstore__V1__Head *h);
uint64_t cs_head_own_first(const Convstore__V1__Head *h);
int cs_history_open(cs_history *out, cs_store *s, MDB_txn *txn, const Convstore__V1__Head *head,
		    cs_error *err);
const cs_segment *cs_history_find(const cs_history *hist, uint64_t version);
/* The oldest version from which the history is whole to its end (every version from it on can
 * be read): just above the newest gap retention left in any segment; 0 when there is none. */
uint64_t cs_history_first_version(const cs_history *hist);
/* The event at @version of a history (CS_EGONE when retention removed it). */
int cs_history_event(Convstore__V1__Event **out, cs_store *s, MDB_txn *txn, const cs_history *hist,
		     uint64_t version, cs_error *err);
/* Walk versions @from..@to (clamped to what is held) of a history, oldest first. */
int cs_history_walk(cs_store *s, MDB_txn *txn, const cs_history *hist, uint64_t from, uint64_t to,
		    cs_event_fn fn, void *ctx, cs_error *err);
/* Walk versions @lo..@hi of one stream's own index; a missing version is CS_ECORRUPT. */
int cs_stream_walk(cs_store *s, MDB_txn *txn, const cs_key *stream, uint64_t lo, uint64_t hi,
		   cs_event_fn fn, void *ctx, cs_error *err);
/* The position of @version in @conv's own index. */
int cs_index_get(uint64_t *position, cs_store *s, MDB_txn *txn, const char *tenant,
		 const char *conv, uint64_t version, cs_error *err);
/* The newest snapshot of @stream at a version in [@lo, @hi]; *out NULL when there is none.
 * @raw (optional) gets the stored record, valid until the transaction ends. */
int cs_snapshot_find(Convstore__V1__Head **out, MDB_val *raw, cs_store *s, MDB_txn *txn,
		     const cs_key *stream, uint64_t lo, uint64_t hi, cs_error *err);
/* The state (head) of @head's conversation right after @version: snapshot + fold. */
int cs_head_at(Convstore__V1__Head **out, cs_store *s, MDB_txn *txn,
	       const Convstore__V1__Head *head, uint64_t version, cs_error *err);

/* ---- views.c ----------------------------------------------------------------------------- */

int cs_view_del(MDB_txn *txn, MDB_dbi dbi, const cs_key *k, cs_error *err);
/* Frame @msg as a record (record.c) and put it at @k. */
int cs_view_put_msg(MDB_txn *txn, MDB_dbi dbi, const cs_key *k, const ProtobufCMessage *msg,
		    cs_error *err);
bool cs_snapshot_due(const cs_store *s, uint64_t version);
/* A snapshot record of @h: the folded state (first_version left out, history.c), deflated
 * whenever that saves an eighth, however small. Every snapshot is packed by this. */
int cs_snapshot_pack(unsigned char **out, size_t *out_len, const Convstore__V1__Head *h,
		     cs_error *err);
/* Store @h as the snapshot of @stream at h->version. */
int cs_snapshot_put(MDB_txn *txn, cs_store *s, const cs_key *stream, const Convstore__V1__Head *h,
		    cs_error *err);
/* Move a conversation's list entry from @old_position (0: none) to @new_position (0: none). */
int cs_list_move(MDB_txn *txn, cs_store *s, const char *tenant, const char *conv,
		 uint64_t old_position, uint64_t new_position, cs_error *err);
/* The UTC day (days since 1970-01-01) of a timestamp. */
uint32_t cs_day_of(const Convstore__V1__Timestamp *t);
/* Add (@sign 1) or remove (-1) a model_response event's share of its tenant's usage rollups;
 * other events are ignored. @ev needs tenant, conversation_id and recorded_at. */
int cs_usage_apply(MDB_txn *txn, cs_store *s, const Convstore__V1__Event *ev, int sign,
		   cs_error *err);
/* One usage rollup record; *out NULL when there is none. */
int cs_counter_load(Convstore__V1__UsageCounter **out, cs_store *s, MDB_txn *txn, const cs_key *k,
		    cs_error *err);
/* Keep the retain index in step with @h's policy (@h NULL: the conversation is gone). */
int cs_retain_sync(MDB_txn *txn, cs_store *s, const cs_key *stream, const Convstore__V1__Head *h,
		   cs_error *err);

/* ---- state.c ----------------------------------------------------------------------------- */

/* @h in the state view's shape, without transcript and pending calls (a list item). */
int cs_summary_of(Convstore__V1__ConversationState **out, const Convstore__V1__Head *h,
		  cs_error *err);

/* ---- list.c ------------------------------------------------------------------------------ */

/* A list cursor (list.c shows its bytes): the listing's start P0 and where the page stopped. */
void cs_list_cursor_encode(char out[CS_CURSOR_MAX], uint64_t p0, uint64_t c);
/* CS_EINVAL for anything cs_list_cursor_encode() did not write (or with C above P0 + 1). */
int cs_list_cursor_decode(uint64_t *p0, uint64_t *c, const char *s, cs_error *err);

/* ---- tally.c ----------------------------------------------------------------------------- */

typedef struct cs_tally_entry {
	unsigned char *key; /* NULL: a free slot */
	size_t len;
	Convstore__V1__UsageCounter c;
} cs_tally_entry;

/* Usage counters by key bytes. Zero-initialise; walk slots[0..cap) for the entries. */
typedef struct cs_tally {
	cs_tally_entry *slots;
	size_t cap, n;
} cs_tally;

/* The counter of @key (a new zero one the first time); NULL when out of memory. */
Convstore__V1__UsageCounter *cs_tally_at(cs_tally *t, const void *key, size_t len);
void cs_tally_deinit(cs_tally *t);

/* ---- store.c ----------------------------------------------------------------------------- */

struct cs_store {
	cs_env env;
	cs_committer committer;
	cs_limits limits;
	size_t max_raw;		 /* the largest record body a read will inflate */
	unsigned snapshot_every; /* options.snapshot_every; UINT_MAX: never */
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
/* The start of every read of one conversation: check the ids, begin a read transaction and
 * load the head ("conversation "x" not found" when there is none). On success the caller ends
 * *txn and frees *out; on failure nothing is left open. */
int cs_head_read(MDB_txn **txn, Convstore__V1__Head **out, cs_store *s, const char *tenant,
		 const char *conv, cs_error *err);
/* Unpack a head record; CS_ENOTFOUND when the conversation has none. */
int cs_head_load(Convstore__V1__Head **out, cs_store *s, MDB_txn *txn, const cs_key *stream,
		 cs_error *err);

#endif
