/*
 * convstore/store.h - libconvstore, the event store. A user guide as much as a header.
 *
 * A store is one folder holding one LMDB environment. Conversations (streams) belong to a
 * tenant; each holds events numbered by `version` 1, 2, 3 ... with no gaps, and every event also
 * gets a store-wide, strictly increasing global `position`. Events are immutable protobuf
 * messages (convstore.v1.Event, see proto/convstore/v1/event.proto).
 *
 * Writing: cs_store_append() validates a batch of events for one conversation, checks the
 * caller's expected version, and hands the batch to the store's single writer thread, which
 * commits every request queued at that moment in ONE LMDB transaction and ONE fsync (group
 * commit) and then wakes each caller with its own result. A request that fails validation or
 * conflicts fails alone; the others in the same transaction commit. When cs_store_append()
 * returns CS_OK the events are durable (unless the store was opened with no_sync).
 *
 * Reading: short MVCC read transactions; a reader never blocks the writer and never sees an event
 * without the head that reflects it. Results are copied out (unpacked protobuf), so nothing
 * returned points into the map.
 *
 * Threads: every function may be called from any thread at the same time, except that
 * cs_store_close() must not race with any other call on the same store.
 *
 * Caveats:
 *  - One process writes a store at a time through libconvstore's writer; other processes may
 *    read (LMDB allows it) and see new commits at their next read.
 *  - The map grows by itself when it fills, up to options.max_map_size (0: as far as the disk
 *    goes). Growing needs a moment with no read transaction open in this process; reads are
 *    short, so an append that triggers growth waits at most for the reads already running.
 *  - A full disk (or a map at its cap) fails the append with CS_EFULL; nothing is half-written
 *    and later appends succeed again once space is freed.
 */
#ifndef CONVSTORE_STORE_H
#define CONVSTORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convstore/error.h"
#include "convstore/v1/event.pb-c.h"
#include "convstore/v1/store.pb-c.h"
#include "convstore/v1/view.pb-c.h"

typedef struct cs_store cs_store;

/* The on-disk layout version this library writes and reads. A store with another version is
 * refused by cs_store_open() with CS_ECORRUPT ("format version N, expected M"). */
#define CS_STORE_FORMAT_VERSION 2

/* Default limits (API.md). */
#define CS_DEFAULT_MAX_EVENT_BYTES    (16u << 20)
#define CS_DEFAULT_MAX_REQUEST_EVENTS 10000u
#define CS_MAX_ID_LEN		      128
#define CS_MAX_METADATA_PAIRS	      64
#define CS_MAX_METADATA_KEY	      128
#define CS_MAX_METADATA_VALUE	      4096
#define CS_MAX_TOOL_CALLS	      128    /* tool calls in one model_response */
#define CS_MAX_PENDING_CALLS	      1024   /* calls of one conversation waiting for results */
#define CS_FEED_SCAN_MAX	      10000u /* records one feed read looks at */
#define CS_MAX_EVENT_BYTES_LIMIT      (256u << 20)  /* the largest max_event_bytes accepted */
#define CS_MAX_MODEL_LEN	      128	    /* model_response.model */
#define CS_MAX_TITLE		      1024	    /* a conversation's title */
#define CS_MAX_FORK_DEPTH	      64	    /* forks of forks of ... */
#define CS_MAX_COST_USD		      1e4	    /* model_response.cost_usd: 0 ..this */
#define CS_MAX_RETENTION_AGE	      3155760000ull /* retention.max_age_seconds: 100 years */

typedef struct cs_store_options {
	const char *path;	   /* folder; created (mode 0700) when missing */
	size_t map_size;	   /* initial map size in bytes; 0: 64 MiB */
	size_t max_map_size;	   /* growth cap in bytes; 0: no cap but the disk */
	bool no_sync;		   /* tests and benchmarks ONLY: commits skip fsync, so an
				      acknowledged append can be lost in a crash */
	bool read_only;		   /* open for reading only; cs_store_append gives CS_EINVAL */
	size_t max_event_bytes;	   /* one packed event; 0: CS_DEFAULT_MAX_EVENT_BYTES */
	size_t max_request_events; /* events in one append; 0: CS_DEFAULT_MAX_REQUEST_EVENTS */
	size_t max_batch_events;   /* group commit: events in one transaction; 0: 65,536 */
	unsigned max_readers;	   /* LMDB reader slots; 0: 510 */
	unsigned snapshot_every;   /* snapshot a conversation's folded state every this many
				      events; 0: CS_DEFAULT_SNAPSHOT_EVERY; UINT_MAX: never */
} cs_store_options;

/* Snapshots: state at any version folds at most this many events after one snapshot. */
#define CS_DEFAULT_SNAPSHOT_EVERY 128u

#define CS_STORE_OPTIONS_INIT                                                                      \
	{                                                                                          \
		0                                                                                  \
	}

/**
 * Open (creating if needed) the store in options->path and start its writer thread.
 *
 * @param[out] out   the store; NULL on failure. Close it with cs_store_close().
 * @param[in]  opts  options; only path is required. Not kept after the call.
 * @return CS_OK; CS_EINVAL (bad options), CS_ECORRUPT (not a convstore store, or another format
 *         version), CS_EIO (the folder or LMDB could not be opened), CS_ENOMEM.
 */
int cs_store_open(cs_store **out, const cs_store_options *opts, cs_error *err);

/**
 * Stop the writer after it has committed every request already queued, then close the
 * environment. Appends that arrive while closing get CS_ECLOSED. Accepts NULL.
 */
void cs_store_close(cs_store *store);

/* expected_version for cs_store_append(): accept whatever the current version is. */
#define CS_ANY_VERSION (-1)

typedef struct cs_append_result {
	uint64_t first_version;
	uint64_t last_version;
	uint64_t first_position;
	uint64_t last_position;
	bool replayed; /* true: every event id was already stored; nothing new was written and the
			  versions and positions are the original ones */
} cs_append_result;

/**
 * Append @n events to conversation @conversation_id of @tenant, atomically, through the group
 * commit. The conversation is created by its first append.
 *
 * @param[out] out     optional: versions and positions given to the events (or, for a
 *                     replayed request, the original ones)
 * @param[in]  events  the events as the client sent them. They are not modified: the store
 *                     fills conversation_id, tenant, version, position, recorded_at, type and a
 *                     generated id (UUID v4, when the event has none) in its stored copy.
 * @param expected_version  CS_ANY_VERSION; 0: the conversation must not exist yet; N: its
 *                     current version must be N.
 * @return CS_OK
 *         CS_EINVAL     an event is invalid (err->index names it): no payload or a server-only
 *                       payload, a bad role, a tool_result that answers no pending call, a
 *                       call id that is still pending, more than CS_MAX_TOOL_CALLS calls in
 *                       one response or CS_MAX_PENDING_CALLS waiting, bad ids or metadata,
 *                       invalid UTF-8 or JsonValue text, server-set fields given by the
 *                       client, duplicate ids in the request
 *         CS_ETOOBIG    too many events, one event larger than max_event_bytes, or a head
 *                       that would outgrow its 1 MiB cap
 *         CS_ECONFLICT  the version is not @expected_version (err->current_version says what
 *                       it is), or some but not all of the events' ids are already stored (an
 *                       event without an id counts as not stored)
 *         CS_EFULL      no space left (the map is at its cap or the disk is full)
 *         CS_ECLOSED    the store is closing; CS_EIO, CS_ENOMEM
 *         On any error nothing of the request is stored.
 */
int cs_store_append(cs_append_result *out, cs_store *store, const char *tenant,
		    const char *conversation_id, int64_t expected_version,
		    Convstore__V1__Event *const *events, size_t n, cs_error *err);

/*
 * The same append without a thread waiting for it, for servers that do not hold a thread per
 * request: cs_store_append_start() checks and queues it (errors of the request come back at
 * once, exactly as cs_store_append() gives them, and then @done is never called); once it is
 * committed (or refused by the writer), @done(@ctx) is called once, on the store's writer
 * thread: it must only hand the news over (resume a connection, post a semaphore), never wait
 * or call the store. Then cs_store_append_finish() gives the outcome, as cs_store_append()
 * would have returned it, and frees the operation. @events must stay alive until then.
 */
typedef struct cs_append_op cs_append_op;
int cs_store_append_start(cs_append_op **out, cs_store *store, const char *tenant,
			  const char *conversation_id, int64_t expected_version,
			  Convstore__V1__Event *const *events, size_t n, void (*done)(void *ctx),
			  void *ctx, cs_error *err);
int cs_store_append_finish(cs_append_op *op, cs_append_result *out, cs_error *err);

/* A page of events read from the store. Each event is owned by the page. */
typedef struct cs_event_page {
	Convstore__V1__Event **events;
	size_t n;
	uint64_t next; /* stream reads: the version to read from next; feed reads: the last
			  position returned (or the one asked for when none was); 0 when the
			  stream read reached its end */
} cs_event_page;

/** Free the events of @page and reset it to empty. Accepts NULL. */
void cs_event_page_deinit(cs_event_page *page);

enum cs_direction { CS_FORWARD = 0, CS_BACKWARD = 1 };

/**
 * Read up to @limit events of one conversation starting at @from_version, forward (ascending)
 * or backward (descending; from_version 0 means "from the last event"). A fork's versions up to
 * its fork point are its parent's events (their conversation_id says so). Versions removed by
 * retention are skipped: a forward read from below the oldest one kept starts at it.
 *
 * @param[out] out  a page (zero-initialise before the call; deinit after); next is the version
 *                  to continue from, 0 when there is nothing more.
 * @return CS_OK; CS_ENOTFOUND (no such conversation); CS_ECORRUPT (a record fails its check:
 *         the message names the position); CS_ENOMEM; CS_EIO.
 */
int cs_store_read_stream(cs_event_page *out, cs_store *store, const char *tenant,
			 const char *conversation_id, uint64_t from_version, size_t limit,
			 enum cs_direction direction, cs_error *err);

/**
 * Read the global feed: up to @limit events with a position greater than @after_position, in
 * position order. @tenant NULL reads every tenant's events; otherwise others are skipped.
 *
 * out->next is where to continue: the position of the last event returned, or @after_position
 * when none was; except that one call looks at no more than CS_FEED_SCAN_MAX records, so a
 * tenant's read that skipped that many of other tenants' events returns with next set to the
 * last position it looked at (possibly with no events). Reads stay short whatever the mix.
 */
int cs_store_read_feed(cs_event_page *out, cs_store *store, const char *tenant,
		       uint64_t after_position, size_t limit, cs_error *err);

/**
 * Read one conversation's own events (a fork's, not its parent's) with a position greater than
 * @after_position, in order: the feed of one conversation, found through its index rather than
 * by scanning the log. out->next is where to continue: the position of the last event
 * returned; but when the read reached the conversation's end, the last position of the whole
 * log as of the read, since every event of this conversation up to there has been returned.
 * @return as cs_store_read_stream().
 */
int cs_store_read_conv_feed(cs_event_page *out, cs_store *store, const char *tenant,
			    const char *conversation_id, uint64_t after_position, size_t limit,
			    cs_error *err);

/**
 * The head of one conversation (version, status, timestamps, pending tool calls, usage,
 * counts...). @out is owned by the caller: protobuf_c_message_free_unpacked(&(*out)->base,
 * NULL). CS_ENOTFOUND when the conversation does not exist.
 */
int cs_store_head(Convstore__V1__Head **out, cs_store *store, const char *tenant,
		  const char *conversation_id, cs_error *err);

#define CS_STATS_DBS 16

typedef struct cs_store_stats {
	uint64_t events;	/* records in the event log */
	uint64_t conversations; /* heads */
	uint64_t last_position; /* the highest position ever given */
	uint64_t map_size;	/* bytes mapped */
	uint64_t map_used;	/* bytes in use (pages in use times the page size) */
	uint64_t commits;	/* write transactions committed by this process */
	uint64_t appends;	/* append requests committed by this process */
	uint64_t map_grows;	/* times this process grew the map */
	struct {
		const char *name; /* static: "events", "streams", ... */
		uint64_t entries;
		uint64_t pages; /* branch, leaf and overflow pages */
	} dbs[CS_STATS_DBS];	/* each LMDB database of the store */
	size_t n_dbs;
} cs_store_stats;

int cs_store_stats_get(cs_store_stats *out, cs_store *store, cs_error *err);

typedef struct cs_verify_report {
	uint64_t records;	     /* event records checked */
	uint64_t problems;	     /* problems found; the first is described in err */
	uint64_t first_bad_position; /* position of the first bad record, 0 if none */
} cs_verify_report;

/**
 * Check the whole store: every record's framing and CRC, that it decodes, that the
 * per-conversation index and the log agree both ways, that versions are gapless, and that every
 * head's version and last position match its last indexed event.
 *
 * @return CS_OK when no problem was found; CS_ECORRUPT when one was (report->problems counts
 *         them, err describes the first with its position); CS_EIO, CS_ENOMEM.
 */
int cs_store_verify(cs_verify_report *out, cs_store *store, cs_error *err);

/* Told of one problem verify found: the position it concerns (0: not one record's) and what. */
typedef void (*cs_verify_fn)(void *ctx, uint64_t position, const char *problem);
/* Told how far a long call is: @done steps of about @total (done may pass total a little). */
typedef void (*cs_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct cs_verify_hooks {
	cs_verify_fn problem;	 /* every problem as it is found (optional) */
	cs_progress_fn progress; /* every 4,096 records (optional); total = 2 x events */
	void *ctx;		 /* given to both */
} cs_verify_hooks;

/** cs_store_verify() with @hooks (NULL: none), called from the calling thread. */
int cs_store_verify_each(cs_verify_report *out, cs_store *store, const cs_verify_hooks *hooks,
			 cs_error *err);

/* ==== Applying events that already have versions (import, followers) ==================== */

typedef struct cs_apply_result {
	uint64_t applied;	 /* events stored by this call */
	uint64_t skipped;	 /* events already stored (the same event at that version) */
	uint64_t first_position; /* positions given to the first and last event stored; 0: none */
	uint64_t last_position;
} cs_apply_result;

/**
 * Store events that already carry their conversation, version and recorded_at (read back from
 * another store: `convctl import`, or a follower): each is checked and folded exactly as an
 * append of it would be, with the same inline views in the same group commit, but it keeps its
 * version, its recorded_at and its id, and its position while that is ahead of this store's last
 * one (otherwise it gets the next free one). Applied in their original order to an empty store,
 * a store's events get back every position and every view exactly.
 *
 * @events are grouped in runs of consecutive events of one conversation (tenant and
 * conversation_id set), each run with consecutive versions; a run that starts a fork begins with
 * its conversation_forked event (version parent_version + 1), after the parent's events up to
 * the fork point. Each run (split every max_request_events) is one atomic request; the runs of one
 * call are queued together, so a group commit takes them in one transaction.
 *
 * Idempotent: an event whose version is already stored is skipped when the stored one is the
 * same event (id, recorded_at and content), so applying the same events twice changes nothing.
 * Applied events' ids are all indexed (a client may retry any of them later).
 *
 * @param[out] out  optional: counts and positions, of the runs before the first failure
 * @return CS_OK
 *         CS_EINVAL     an event is invalid (err->index names it in @events): the append rules,
 *                       a missing tenant, conversation, version, recorded_at or id, versions
 *                       that do not follow one another, a conversation_deleted event
 *         CS_ECONFLICT  a different event is stored at that version, or a run does not continue
 *                       its conversation (a gap, or a fork whose parent is not there yet)
 *         CS_EGONE      the conversation was erased; as cs_store_append() otherwise.
 *         A failed run stores nothing; other runs of the same call may have been stored (apply
 *         them again: those are skipped).
 */
int cs_store_apply(cs_apply_result *out, cs_store *store, Convstore__V1__Event *const *events,
		   size_t n, cs_error *err);

/* ==== Conversations: the operations whose events the server writes ========================
 *
 * These go through the same group commit as cs_store_append() and give the same
 * cs_append_result. The events they write (conversation_created, _forked, _updated, _deleted)
 * are the stream's own: they have versions, appear in the feed and are folded like any other.
 */

/**
 * Create conversation @conversation_id with a conversation_created event at version 1.
 * @spec gives title, metadata and retention (NULL: none).
 * @return CS_OK; CS_ECONFLICT (it exists); CS_EGONE (erased; its tombstone stays until purged);
 *         CS_EINVAL (bad id, title or metadata); as cs_store_append() otherwise.
 */
int cs_store_create(cs_append_result *out, cs_store *store, const char *tenant,
		    const char *conversation_id, const Convstore__V1__ConversationCreated *spec,
		    cs_error *err);

/**
 * Record a conversation_updated event: a title (when title_opt is set), metadata merged into
 * the existing pairs (a key set to "" is removed), status "active" or "archived" (empty:
 * unchanged), retention (when set: replaces the policy).
 * @return CS_OK; CS_ENOTFOUND; CS_EGONE; CS_ECONFLICT (@expected_version given and not met);
 *         CS_EINVAL (bad status, metadata...).
 */
int cs_store_update(cs_append_result *out, cs_store *store, const char *tenant,
		    const char *conversation_id, int64_t expected_version,
		    const Convstore__V1__ConversationUpdated *spec, cs_error *err);

/**
 * Fork @parent_id at its version @at_version (1 <= at_version <= its version) into the new
 * conversation @fork_id, without copying events: the fork's versions 1..at_version are the
 * parent's (read through the parent), and its own begin with a conversation_forked event at
 * at_version + 1. Forks of forks work. spec->parent_id and parent_version are set by the store
 * (the caller's values are ignored); title, metadata and retention come from @spec (NULL: none).
 * @return CS_OK; CS_ENOTFOUND (no parent); CS_EINVAL (at_version out of range, bad id);
 *         CS_ECONFLICT (@fork_id exists); CS_EGONE (@fork_id is a tombstone, or the parent's
 *         events up to at_version were removed by retention).
 */
int cs_store_fork(cs_append_result *out, cs_store *store, const char *tenant, const char *parent_id,
		  uint64_t at_version, const char *fork_id,
		  const Convstore__V1__ConversationForked *spec, cs_error *err);

/**
 * The conversations forked from @conversation_id (direct children), ordered by id.
 * @out is owned by the caller (protobuf_c_message_free_unpacked). CS_ENOTFOUND.
 */
int cs_store_forks(Convstore__V1__ForkList **out, cs_store *store, const char *tenant,
		   const char *conversation_id, cs_error *err);

/**
 * Erase a conversation (GDPR): its events, index, head, snapshots, transcript, list entry and
 * its share of the usage rollups are physically removed in one transaction, a tombstone keeps
 * the id from being reused, and a content-free conversation_deleted event (position only, no
 * version) goes to the global feed so followers erase too. With @purge the tombstone is removed
 * as well (and purging an id that is only a tombstone just removes it).
 * @param[out] out  optional: last_position is the conversation_deleted event's position
 * @return CS_OK; CS_ENOTFOUND (neither a conversation nor a tombstone); CS_EGONE (already
 *         erased and !purge); CS_ECONFLICT (forks still depend on it: erase them first).
 */
int cs_store_erase(cs_append_result *out, cs_store *store, const char *tenant,
		   const char *conversation_id, bool purge, cs_error *err);

/* ==== Read views (the "Q" of CQRS) ======================================================== */

/**
 * The state view of a conversation: the fold of its events (one reducer), with the transcript.
 * @at_version 0: now; N: as it was right after version N (time travel; folds at most
 * options.snapshot_every events after loading one snapshot).
 * @out is owned by the caller (protobuf_c_message_free_unpacked).
 * @return CS_OK; CS_ENOTFOUND (no such conversation, or erased); CS_EINVAL (@at_version beyond
 *         the current version); CS_EGONE (@at_version is older than retention kept).
 */
int cs_store_state(Convstore__V1__ConversationState **out, cs_store *store, const char *tenant,
		   const char *conversation_id, uint64_t at_version, cs_error *err);

/**
 * The state view without messages and pending_tool_calls (what a list item shows), now or
 * @at_version. Its cost does not grow with the conversation's length (a snapshot and at most
 * options.snapshot_every folds), while cs_store_state() reads every event for the transcript.
 * Errors as cs_store_state().
 */
int cs_store_summary(Convstore__V1__ConversationState **out, cs_store *store, const char *tenant,
		     const char *conversation_id, uint64_t at_version, cs_error *err);

/**
 * The messages view: the transcript in OpenAI chat-completions form (API.md), now or
 * @at_version. Errors as cs_store_state().
 */
int cs_store_messages(Convstore__V1__ChatTranscript **out, cs_store *store, const char *tenant,
		      const char *conversation_id, uint64_t at_version, cs_error *err);

#define CS_LIST_LIMIT_MAX 1000u
#define CS_LIST_SCAN_MAX  10000u /* list entries one page looks at (filters may skip them) */
#define CS_CURSOR_MAX	  128	 /* a cursor's length with its NUL */

typedef struct cs_list_query {
	size_t limit;	       /* 1..CS_LIST_LIMIT_MAX; 0: 100 */
	const char *cursor;    /* NULL or "": the first page; else a next_cursor returned before */
	const char *status;    /* NULL: any; "active" or "archived" */
	int64_t updated_after; /* unix seconds; only conversations updated strictly later; 0: any */
	const char *const *meta_keys; /* metadata KEY=VALUE filters, all must match */
	const char *const *meta_values;
	size_t n_meta;
} cs_list_query;

/**
 * List a tenant's conversations, newest first (by the position of each one's last event), as
 * summaries (the state view without messages and pending_tool_calls). Paged by an opaque
 * URL-safe cursor that stays correct while appends happen between pages: every conversation
 * that existed when the first page was read and still exists is listed exactly once, in the
 * order of that moment. A page looks at no more than CS_LIST_SCAN_MAX entries, so a selective
 * filter can give a short (even empty) page with a next_cursor.
 * The cursor stays valid while fewer than CS_LIST_SCAN_MAX of the tenant's conversations have
 * been appended to or created since the first page; after that the listing must start again.
 * @out owned by the caller; next_cursor_opt unset at the end.
 * @return CS_OK; CS_EINVAL (bad cursor, limit or status); CS_EGONE (the cursor's listing is
 *         too old, see above); CS_ECORRUPT (a damaged list entry or head).
 */
int cs_store_list(Convstore__V1__ConversationList **out, cs_store *store, const char *tenant,
		  const cs_list_query *q, cs_error *err);

enum cs_usage_group {
	CS_USAGE_BY_MODEL = 0,
	CS_USAGE_BY_CONVERSATION,
	CS_USAGE_BY_DAY,
	CS_USAGE_TOTAL, /* one row, key "total" */
};

typedef struct cs_usage_query {
	enum cs_usage_group group_by;
	int64_t from_day; /* days since 1970-01-01 UTC, inclusive; INT64_MIN: no bound */
	int64_t to_day;	  /* inclusive; INT64_MAX: no bound */
} cs_usage_query;

/**
 * Token and cost totals of @tenant's model_response events (the UTC day is the event's
 * recorded_at), maintained inline and exact (cost summed in nano-dollars). Rows are ordered by
 * key. Erase and retention remove the share of the events they remove. @tenant NULL sums every
 * tenant's (for operators; it walks all rollups).
 * @return CS_OK; CS_EINVAL (bad group or range).
 */
int cs_store_usage(Convstore__V1__UsageReport **out, cs_store *store, const char *tenant,
		   const cs_usage_query *q, cs_error *err);

/* ==== Retention, rebuild ================================================================= */

/**
 * Apply every conversation's retention policy now (@now_seconds: the clock to judge max_age by;
 * 0: the real clock): remove events beyond max_events or older than max_age, keeping a
 * snapshot at the truncation point so the state stays whole (pending tool calls keep their
 * arguments). The ids of removed events are forgotten with them: a client retrying one of them
 * appends it again. A conversation that has forks is skipped while they exist: they read its
 * versions from 1. The server calls it periodically; appends do not enforce a policy.
 * @param[out] removed  optional: events removed
 */
int cs_store_retention_sweep(uint64_t *removed, cs_store *store, int64_t now_seconds,
			     cs_error *err);

typedef struct cs_rebuild_report {
	uint64_t conversations; /* heads rebuilt */
	uint64_t events;	/* events folded */
	uint64_t differences;	/* derived records that differed from the inline views */
} cs_rebuild_report;

/**
 * Rebuild every projection (heads, snapshots, the list index, usage rollups, fork links, the
 * retention index, the conversation count) from the events, in one write transaction, and
 * count how many records differed from what the appends had maintained inline (0 on a healthy
 * store). Caveat: appends wait while it runs, and LMDB caps the pages one transaction may
 * dirty (about 512 MiB of derived records here); a store beyond that fails with an error and
 * is left as it was. Erase and the retention sweep are single transactions too.
 */
int cs_store_rebuild(cs_rebuild_report *out, cs_store *store, cs_error *err);

/** cs_store_rebuild() telling @fn (from the store's writer thread, while the caller waits) how
 * far it is every 4,096 events folded, of about twice the events (a check pass, then the
 * rebuild). */
int cs_store_rebuild_each(cs_rebuild_report *out, cs_store *store, cs_progress_fn fn, void *ctx,
			  cs_error *err);

/**
 * Write a compacted copy of the store (free pages left out, records in key order) into the new
 * folder @path, from one read snapshot: appends may go on meanwhile and are not in the copy.
 * The copy opens as a store of its own. Works on a store opened read-only.
 * @return CS_OK; CS_EINVAL (@path exists); CS_EFULL, CS_EIO (nothing is left at @path).
 */
int cs_store_copy(cs_store *store, const char *path, cs_error *err);

/** Generate a random UUID v4 in @out (37 bytes with the NUL). */
int cs_uuid_v4(char out[37], cs_error *err);

/** Whether @s is a valid id: 1..128 characters of A-Z a-z 0-9 . _ : - */
bool cs_id_valid(const char *s);

#endif
