/*
 * state.c - the conversation views of API.md, built from the one reducer (reduce.c):
 *
 *   summary   the head at a version (history.c: snapshot + at most snapshot_every folds) in the
 *             shape of the state view, without transcript and pending calls; what the list and
 *             the ETag need
 *   state     the summary plus the transcript (cs_transcript_entry over the history's events)
 *             and the pending tool calls with their arguments (looked up in the events that
 *             asked for them)
 *   messages  the transcript in OpenAI chat-completions form
 *   stream    one conversation's raw events by version, across forks
 *
 * Each is one read transaction, and everything returned is a copy the caller owns (unpacker
 * layout: protobuf_c_message_free_unpacked frees it). The transcript costs one event read per
 * version: it is as long as the conversation, unlike the summary, whose cost is bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__Head Head;
typedef Convstore__V1__Event Event;
typedef Convstore__V1__ConversationState State;
typedef Convstore__V1__TranscriptMessage Entry;

/* ---- copies between message types ------------------------------------------------------- */

/* Re-read @m's bytes as a message of @to (same type, or one with the same wire layout, like two
 * map<string, string> entry types): a deep copy in the unpacker's layout. */
static ProtobufCMessage *convert(const ProtobufCMessage *m, const ProtobufCMessageDescriptor *to)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return NULL;
	protobuf_c_message_pack(m, buf);
	ProtobufCMessage *copy = protobuf_c_message_unpack(to, NULL, len, buf);
	free(buf);
	return copy;
}

#define CLONE(dst, src, desc)                                                                      \
	do {                                                                                       \
		if ((src) && !((dst) = (void *)convert(&(src)->base, &(desc))))                    \
			goto nomem;                                                                \
	} while (0)

static char *dup_str(const char *s)
{
	return s && *s ? strdup(s) : (char *)protobuf_c_empty_string;
}

static bool dup_failed(const char *copy, const char *src)
{
	return !copy || (src && *src && copy == protobuf_c_empty_string);
}

static int usage_view(State *st, const Convstore__V1__UsageCounter *u)
{
	Convstore__V1__UsageTotals *t = malloc(sizeof(*t));
	if (!t)
		return CS_ENOMEM;
	convstore__v1__usage_totals__init(t);
	if (u) {
		t->input_tokens = u->input_tokens;
		t->output_tokens = u->output_tokens;
		t->cached_tokens = u->cached_tokens;
		t->reasoning_tokens = u->reasoning_tokens;
		t->cost_usd = (double)u->cost_nanos / 1e9;
		t->responses = u->responses;
	}
	st->usage = t;
	return CS_OK;
}

static int metadata_view(State *st, const Head *h)
{
	if (!h->n_metadata)
		return CS_OK;
	st->metadata = calloc(h->n_metadata, sizeof(*st->metadata));
	if (!st->metadata)
		return CS_ENOMEM;
	for (size_t i = 0; i < h->n_metadata; i++) {
		st->metadata[i] =
		    (void *)convert(&h->metadata[i]->base,
				    &convstore__v1__conversation_state__metadata_entry__descriptor);
		if (!st->metadata[i])
			return CS_ENOMEM;
		st->n_metadata++;
	}
	return CS_OK;
}

/* The head in the state view's shape (no transcript, no pending calls). */
static int summary_of(State **out, const Head *h, cs_error *err)
{
	State *st = malloc(sizeof(*st));
	if (!st)
		return cs_error_set(err, CS_ENOMEM, "out of memory for a state view");
	convstore__v1__conversation_state__init(st);
	st->version = h->version;
	st->last_position = h->last_position;
	st->first_version = h->first_version;
	st->id = dup_str(h->id);
	st->status = dup_str(h->status);
	st->title = dup_str(h->title);
	if (dup_failed(st->id, h->id) || dup_failed(st->status, h->status) ||
	    dup_failed(st->title, h->title))
		goto nomem;
	CLONE(st->created_at, h->created_at, convstore__v1__timestamp__descriptor);
	CLONE(st->updated_at, h->updated_at, convstore__v1__timestamp__descriptor);
	CLONE(st->parent, h->parent, convstore__v1__parent_ref__descriptor);
	CLONE(st->counts, h->counts, convstore__v1__counts__descriptor);
	CLONE(st->retention, h->retention, convstore__v1__retention__descriptor);
	if (usage_view(st, h->usage) || metadata_view(st, h))
		goto nomem;
	if (!st->counts) {
		st->counts = malloc(sizeof(*st->counts));
		if (!st->counts)
			goto nomem;
		convstore__v1__counts__init(st->counts);
	}
	*out = st;
	return CS_OK;
nomem:
	protobuf_c_message_free_unpacked(&st->base, NULL);
	return cs_error_set(err, CS_ENOMEM, "out of memory for a state view");
}

/* ---- transcript and pending calls -------------------------------------------------------- */

static int add_entry(void *ctx, Event *ev, cs_error *err)
{
	State *st = ctx;
	Entry *e;
	int rc = cs_transcript_entry(&e, ev, err);
	if (rc || !e)
		return rc;
	if ((st->n_messages & (st->n_messages - 1)) == 0) { /* grow at powers of two */
		size_t cap = st->n_messages ? 2 * st->n_messages : 16;
		Entry **grown = realloc(st->messages, cap * sizeof(*grown));
		if (!grown) {
			protobuf_c_message_free_unpacked(&e->base, NULL);
			return cs_error_set(err, CS_ENOMEM, "out of memory for a transcript");
		}
		st->messages = grown;
	}
	st->messages[st->n_messages++] = e;
	return CS_OK;
}

/* The arguments of pending call @p from what retention kept of its event (calls database). */
static int retained_arguments(Convstore__V1__PendingToolCall *copy, cs_store *s, MDB_txn *txn,
			      const cs_history *hist, const Convstore__V1__PendingToolCall *p,
			      cs_error *err)
{
	const cs_segment *seg = cs_history_find(hist, p->version);
	if (!seg)
		return CS_OK;
	cs_key stream, k;
	cs_key_stream(&stream, hist->tenant, seg->conv);
	cs_key_at(&k, &stream, p->version);
	MDB_val key = {k.len, k.b}, val;
	int rc = mdb_get(txn, s->env.calls, &key, &val);
	if (rc == MDB_NOTFOUND)
		return CS_OK;
	if (rc)
		return cs_lmdb_error(err, rc, "calls");
	Convstore__V1__RetainedCalls *kept;
	if ((rc = cs_record_unpack((ProtobufCMessage **)&kept,
				   &convstore__v1__retained_calls__descriptor, val.mv_data,
				   val.mv_size, s->max_raw, "retained calls", err)))
		return rc;
	for (size_t i = 0; i < kept->n_calls && !rc; i++) {
		if (strcmp(kept->calls[i]->id, p->id) != 0)
			continue;
		copy->arguments = dup_str(kept->calls[i]->arguments);
		if (dup_failed(copy->arguments, kept->calls[i]->arguments))
			rc = cs_error_set(err, CS_ENOMEM, "out of memory for pending calls");
	}
	protobuf_c_message_free_unpacked(&kept->base, NULL);
	return rc;
}

static int pending_view(State *st, cs_store *s, MDB_txn *txn, const cs_history *hist, const Head *h,
			cs_error *err)
{
	if (!h->n_pending_tool_calls)
		return CS_OK;
	st->pending_tool_calls = calloc(h->n_pending_tool_calls, sizeof(*st->pending_tool_calls));
	if (!st->pending_tool_calls)
		return cs_error_set(err, CS_ENOMEM, "out of memory for pending calls");
	for (size_t i = 0; i < h->n_pending_tool_calls; i++) {
		const Convstore__V1__PendingToolCall *p = h->pending_tool_calls[i];
		Convstore__V1__PendingToolCall *copy = NULL;
		CLONE(copy, p, convstore__v1__pending_tool_call__descriptor);
		st->pending_tool_calls[st->n_pending_tool_calls++] = copy;
		Event *ev;
		int rc = cs_history_event(&ev, s, txn, hist, p->version, err);
		if (rc == CS_EGONE) /* retention removed the asking event: it kept the call */
			rc = retained_arguments(copy, s, txn, hist, p, err);
		else if (rc == CS_OK) {
			copy->arguments = dup_str(cs_call_arguments(ev, p->id));
			bool failed = dup_failed(copy->arguments, cs_call_arguments(ev, p->id));
			protobuf_c_message_free_unpacked(&ev->base, NULL);
			if (failed)
				goto nomem;
		}
		if (rc)
			return rc;
	}
	return CS_OK;
nomem:
	return cs_error_set(err, CS_ENOMEM, "out of memory for pending calls");
}

/* ---- the views --------------------------------------------------------------------------- */

enum view_kind { VIEW_SUMMARY, VIEW_STATE };

static int build_view(State **out, cs_store *s, MDB_txn *txn, const Head *now, uint64_t at,
		      enum view_kind kind, cs_error *err)
{
	Head *h;
	int rc = cs_head_at(&h, s, txn, now, at ? at : now->version, err);
	if (rc)
		return rc;
	State *st = NULL;
	cs_history hist;
	rc = summary_of(&st, h, err);
	if (!rc)
		rc = cs_history_open(&hist, s, txn, now, err);
	if (!rc)
		st->first_version = cs_history_first_version(&hist);
	if (!rc && kind == VIEW_STATE)
		rc = cs_history_walk(s, txn, &hist, 1, h->version, add_entry, st, err);
	if (!rc && kind == VIEW_STATE)
		rc = pending_view(st, s, txn, &hist, h, err);
	cs_head_free(h);
	if (rc && st)
		protobuf_c_message_free_unpacked(&st->base, NULL);
	else
		*out = st;
	return rc;
}

static int view(State **out, cs_store *s, const char *tenant, const char *conv, uint64_t at,
		enum view_kind kind, cs_error *err)
{
	*out = NULL;
	MDB_txn *txn;
	Head *now;
	int rc = cs_head_read(&txn, &now, s, tenant, conv, err);
	if (rc)
		return rc;
	rc = build_view(out, s, txn, now, at, kind, err);
	cs_head_free(now);
	cs_txn_abort(&s->env, txn);
	return rc;
}

int cs_store_state(State **out, cs_store *s, const char *tenant, const char *conv,
		   uint64_t at_version, cs_error *err)
{
	return view(out, s, tenant, conv, at_version, VIEW_STATE, err);
}

int cs_store_summary(State **out, cs_store *s, const char *tenant, const char *conv,
		     uint64_t at_version, cs_error *err)
{
	return view(out, s, tenant, conv, at_version, VIEW_SUMMARY, err);
}

int cs_summary_of(State **out, const Head *h, cs_error *err)
{
	*out = NULL;
	return summary_of(out, h, err);
}

/* ---- the messages view ------------------------------------------------------------------- */

static Convstore__V1__ChatToolCall *chat_call(const Convstore__V1__ToolCallRequest *c)
{
	Convstore__V1__ChatToolCall *call = malloc(sizeof(*call));
	Convstore__V1__ChatFunction *fn = malloc(sizeof(*fn));
	if (!call || !fn) {
		free(call);
		free(fn);
		return NULL;
	}
	convstore__v1__chat_tool_call__init(call);
	convstore__v1__chat_function__init(fn);
	call->function = fn;
	call->id = dup_str(c->id);
	call->type = strdup("function");
	fn->name = dup_str(c->name);
	fn->arguments = dup_str(c->arguments);
	if (dup_failed(call->id, c->id) || !call->type || dup_failed(fn->name, c->name) ||
	    dup_failed(fn->arguments, c->arguments)) {
		protobuf_c_message_free_unpacked(&call->base, NULL);
		return NULL;
	}
	return call;
}

static Convstore__V1__ChatMessage *chat_message(const Entry *e)
{
	Convstore__V1__ChatMessage *m = malloc(sizeof(*m));
	if (!m)
		return NULL;
	convstore__v1__chat_message__init(m);
	m->role = dup_str(e->role);
	m->name = dup_str(e->name);
	m->tool_call_id = dup_str(e->tool_call_id);
	bool failed = dup_failed(m->role, e->role) || dup_failed(m->name, e->name) ||
		      dup_failed(m->tool_call_id, e->tool_call_id);
	if (!failed && e->content_opt_case) {
		m->content = strdup(e->content); /* its own "", so that it reads as set */
		m->content_opt_case = CONVSTORE__V1__CHAT_MESSAGE__CONTENT_OPT_CONTENT;
		failed = !m->content;
	}
	if (!failed && e->n_tool_calls) {
		m->tool_calls = calloc(e->n_tool_calls, sizeof(*m->tool_calls));
		failed = !m->tool_calls;
		for (size_t i = 0; !failed && i < e->n_tool_calls; i++) {
			m->tool_calls[i] = chat_call(e->tool_calls[i]);
			failed = !m->tool_calls[i];
			m->n_tool_calls += !failed;
		}
	}
	if (failed) {
		protobuf_c_message_free_unpacked(&m->base, NULL);
		return NULL;
	}
	return m;
}

int cs_store_messages(Convstore__V1__ChatTranscript **out, cs_store *s, const char *tenant,
		      const char *conv, uint64_t at_version, cs_error *err)
{
	*out = NULL;
	State *st;
	int rc = cs_store_state(&st, s, tenant, conv, at_version, err);
	if (rc)
		return rc;
	Convstore__V1__ChatTranscript *t = malloc(sizeof(*t));
	if (t) {
		convstore__v1__chat_transcript__init(t);
		t->messages = calloc(st->n_messages ? st->n_messages : 1, sizeof(*t->messages));
	}
	for (size_t i = 0; t && t->messages && i < st->n_messages; i++) {
		if (!(t->messages[i] = chat_message(st->messages[i])))
			break;
		t->n_messages++;
	}
	bool ok = t && t->messages && t->n_messages == st->n_messages;
	protobuf_c_message_free_unpacked(&st->base, NULL);
	if (!ok) {
		if (t)
			protobuf_c_message_free_unpacked(&t->base, NULL);
		return cs_error_set(err, CS_ENOMEM, "out of memory for a messages view");
	}
	*out = t;
	return CS_OK;
}
