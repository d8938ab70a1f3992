/*
 * tests/store/views.h - what the read-side tests (issue 3) share: opening a store with a given
 * snapshot interval, appending that must succeed, building the specs of the conversation
 * operations (create, update, fork, retention), and reading the views as values to compare:
 * the state view as packed protobuf bytes (optionally with its timestamps cleared, so that two
 * stores fed the same workload at different moments compare equal), and the messages view as
 * the JSON that API.md promises.
 *
 * Nothing here asserts: failures come back as values and a line on stderr.
 */
#ifndef CONVSTORE_TESTS_STORE_VIEWS_H
#define CONVSTORE_TESTS_STORE_VIEWS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convstore/pbjson.h"
#include "events.h"
#include "fixture.h"

/* snapshot_every for a store that never snapshots: every read folds from version 1. */
#define VW_NEVER UINT_MAX

/* Open a no_sync store in @path that snapshots every @snapshot_every events. */
static inline int vw_open(cs_store **out, const char *path, unsigned snapshot_every, cs_error *err)
{
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = path;
	o.no_sync = true;
	o.snapshot_every = snapshot_every;
	return cs_store_open(out, &o, err);
}

/* Open a store in a fresh subfolder @name of @dir; exits 1 when it cannot. */
static inline cs_store *vw_open_in(const char *dir, const char *name, unsigned snapshot_every)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
		fprintf(stderr, "path too long: %s/%s\n", dir, name);
		exit(1);
	}
	cs_store *s = NULL;
	cs_error err = CS_ERROR_INIT;
	if (vw_open(&s, path, snapshot_every, &err) != CS_OK) {
		fprintf(stderr, "open %s: %s\n", path, err.msg);
		exit(1);
	}
	return s;
}

/* Close *@s (when open) and open the store in @path again; exits 1 when it cannot. Tests that
 * reach under the store (lmdb_raw.h) close it with @path NULL, work, then reopen it. */
static inline void vw_reopen(cs_store **s, const char *path, unsigned snapshot_every)
{
	cs_store_close(*s);
	*s = NULL;
	if (!path)
		return;
	cs_error err = CS_ERROR_INIT;
	if (vw_open(s, path, snapshot_every, &err) != CS_OK) {
		fprintf(stderr, "reopen %s: %s\n", path, err.msg);
		exit(1);
	}
}

/* Free any unpacked message (NULL accepted). */
static inline void vw_free(void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked((ProtobufCMessage *)msg, NULL);
}

/* Append @n events that must be accepted; the code, with a line on stderr when it is not OK. */
static inline int vw_append(cs_append_result *out, cs_store *s, const char *tenant,
			    const char *conv, Convstore__V1__Event *const *evs, size_t n)
{
	cs_append_result r = {0};
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_append(&r, s, tenant, conv, CS_ANY_VERSION, evs, n, &err);
	if (rc != CS_OK)
		fprintf(stderr, "  append to %s/%s: rc %d index %d: %s\n", tenant, conv, rc,
			err.index, err.msg);
	if (out)
		*out = r;
	return rc;
}

/* Report a failed call on stderr and pass its code on. */
static inline int vw_said(int rc, const char *what, const char *conv, const cs_error *err)
{
	if (rc != CS_OK)
		fprintf(stderr, "  %s %s: rc %d: %s\n", what, conv, rc, err->msg);
	return rc;
}

/* ---- specs ------------------------------------------------------------------------------- */

static inline Convstore__V1__Retention *vw_retention(ev_arena *a, uint64_t max_events,
						     uint64_t max_age)
{
	Convstore__V1__Retention *r = ev_alloc(a, sizeof *r);
	convstore__v1__retention__init(r);
	r->max_events = max_events;
	r->max_age_seconds = max_age;
	return r;
}

/*
 * Metadata entries from "k1", "v1", "k2", "v2", ..., NULL into a map field of any of the
 * conversation payloads (their entry types share one layout: base, key, value).
 */
typedef struct vw_meta_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
} vw_meta_entry;

static inline size_t vw_meta(ev_arena *a, void ***field, const ProtobufCMessageDescriptor *desc,
			     const char *const *kv)
{
	size_t n = 0;
	while (kv && kv[2 * n])
		n++;
	*field = ev_alloc(a, (n + 1) * sizeof(void *));
	for (size_t i = 0; i < n; i++) {
		vw_meta_entry *e = ev_alloc(a, desc->sizeof_message);
		protobuf_c_message_init(desc, e);
		e->key = (char *)kv[2 * i];
		e->value = (char *)kv[2 * i + 1];
		(*field)[i] = e;
	}
	return n;
}

#define VW_KV(...) ((const char *const[]){__VA_ARGS__, NULL})

static inline Convstore__V1__ConversationCreated *vw_created(ev_arena *a, const char *title,
							     const char *const *kv,
							     Convstore__V1__Retention *retention)
{
	Convstore__V1__ConversationCreated *c = ev_alloc(a, sizeof *c);
	convstore__v1__conversation_created__init(c);
	ev_str(&c->title, title);
	c->n_metadata =
	    vw_meta(a, (void ***)&c->metadata,
		    &convstore__v1__conversation_created__metadata_entry__descriptor, kv);
	c->retention = retention;
	return c;
}

/* An update: @title NULL leaves the title unchanged, @status NULL leaves the status. */
static inline Convstore__V1__ConversationUpdated *vw_updated(ev_arena *a, const char *title,
							     const char *status,
							     const char *const *kv,
							     Convstore__V1__Retention *retention)
{
	Convstore__V1__ConversationUpdated *u = ev_alloc(a, sizeof *u);
	convstore__v1__conversation_updated__init(u);
	if (title) {
		u->title_opt_case = CONVSTORE__V1__CONVERSATION_UPDATED__TITLE_OPT_TITLE;
		u->title = (char *)title;
	}
	ev_str(&u->status, status);
	u->n_metadata =
	    vw_meta(a, (void ***)&u->metadata,
		    &convstore__v1__conversation_updated__metadata_entry__descriptor, kv);
	u->retention = retention;
	return u;
}

static inline Convstore__V1__ConversationForked *vw_forked(ev_arena *a, const char *title,
							   const char *const *kv)
{
	Convstore__V1__ConversationForked *f = ev_alloc(a, sizeof *f);
	convstore__v1__conversation_forked__init(f);
	ev_str(&f->title, title);
	f->n_metadata =
	    vw_meta(a, (void ***)&f->metadata,
		    &convstore__v1__conversation_forked__metadata_entry__descriptor, kv);
	return f;
}

/* The value of metadata @key in a state (NULL when absent). */
static inline const char *vw_state_meta(const Convstore__V1__ConversationState *st, const char *key)
{
	for (size_t i = 0; st && i < st->n_metadata; i++)
		if (!strcmp(st->metadata[i]->key, key))
			return st->metadata[i]->value;
	return NULL;
}

/* ---- views as values --------------------------------------------------------------------- */

/* The state view, or NULL with *rc the code and a line on stderr. */
static inline Convstore__V1__ConversationState *vw_state(cs_store *s, const char *tenant,
							 const char *conv, uint64_t at, int *rc)
{
	Convstore__V1__ConversationState *st = NULL;
	cs_error err = CS_ERROR_INIT;
	*rc = cs_store_state(&st, s, tenant, conv, at, &err);
	if (*rc != CS_OK) {
		fprintf(stderr, "  state %s/%s at %llu: rc %d: %s\n", tenant, conv,
			(unsigned long long)at, *rc, err.msg);
		return NULL;
	}
	return st;
}

/* @msg as compact JSON (malloc'd; "(unencodable)" copy on failure). */
static inline char *vw_json_text(const void *msg)
{
	cs_error err = CS_ERROR_INIT;
	char *t = cs_json_encode_text((const ProtobufCMessage *)msg, CS_JSON_NULL_OPTIONAL, &err);
	return t ? t : strdup("(unencodable)");
}

/*
 * The packed bytes of the state view at @at (malloc'd, *len set), NULL when it cannot be read.
 * Unless @keep_times, created_at and updated_at are cleared first: two stores fed the same
 * workload have the same positions but not the same clock.
 */
static inline uint8_t *vw_state_bytes(cs_store *s, const char *tenant, const char *conv,
				      uint64_t at, bool keep_times, size_t *len)
{
	int rc;
	Convstore__V1__ConversationState *st = vw_state(s, tenant, conv, at, &rc);
	if (!st)
		return NULL;
	Convstore__V1__ConversationState copy = *st;
	if (!keep_times)
		copy.created_at = copy.updated_at = NULL;
	*len = convstore__v1__conversation_state__get_packed_size(&copy);
	uint8_t *buf = malloc(*len ? *len : 1);
	if (buf)
		convstore__v1__conversation_state__pack(&copy, buf);
	vw_free(st);
	return buf;
}

/* Print where two JSON texts first differ, with some context. */
static inline void vw_show_diff(const char *a, const char *b)
{
	size_t i = 0;
	while (a[i] && a[i] == b[i])
		i++;
	size_t from = i > 120 ? i - 120 : 0;
	fprintf(stderr,
		"    first difference at byte %zu:\n    got:  ...%.300s\n    want: ...%.300s\n", i,
		a + from, b + from);
}

/*
 * Whether the state view at @at is the same in store @got and in store @want (the reference,
 * e.g. a store that never snapshots), timestamps aside unless @keep_times; prints the first
 * difference as JSON when not.
 */
static inline bool vw_same_state(cs_store *got, cs_store *want, const char *tenant,
				 const char *conv, uint64_t at, bool keep_times)
{
	size_t la = 0, lb = 0;
	uint8_t *a = vw_state_bytes(got, tenant, conv, at, keep_times, &la);
	uint8_t *b = vw_state_bytes(want, tenant, conv, at, keep_times, &lb);
	bool same = a && b && la == lb && memcmp(a, b, la) == 0;
	if (!same && a && b) {
		Convstore__V1__ConversationState *x =
		    convstore__v1__conversation_state__unpack(NULL, la, a);
		Convstore__V1__ConversationState *y =
		    convstore__v1__conversation_state__unpack(NULL, lb, b);
		char *ta = vw_json_text(x), *tb = vw_json_text(y);
		fprintf(stderr, "  state %s/%s at %llu differs from the reference\n", tenant, conv,
			(unsigned long long)at);
		vw_show_diff(ta, tb);
		free(ta);
		free(tb);
		vw_free(x);
		vw_free(y);
	}
	free(a);
	free(b);
	return same;
}

/*
 * Whether cs_store_summary() at @at is exactly cs_store_state() at @at without messages and
 * pending_tool_calls (packed bytes, timestamps included); prints the difference when not.
 */
static inline bool vw_summary_matches(cs_store *s, const char *tenant, const char *conv,
				      uint64_t at)
{
	int rc;
	Convstore__V1__ConversationState *st = vw_state(s, tenant, conv, at, &rc), *sum = NULL;
	cs_error err = CS_ERROR_INIT;
	rc = cs_store_summary(&sum, s, tenant, conv, at, &err);
	bool same = false;
	if (st && rc == CS_OK) {
		Convstore__V1__ConversationState copy = *st;
		copy.n_messages = copy.n_pending_tool_calls = 0;
		size_t la = convstore__v1__conversation_state__get_packed_size(sum);
		size_t lb = convstore__v1__conversation_state__get_packed_size(&copy);
		uint8_t *a = malloc(la + 1), *b = malloc(lb + 1);
		same = a && b && la == lb &&
		       convstore__v1__conversation_state__pack(sum, a) == la &&
		       convstore__v1__conversation_state__pack(&copy, b) == lb &&
		       memcmp(a, b, la) == 0;
		if (!same) {
			char *ta = vw_json_text(sum), *tb = vw_json_text(&copy);
			fprintf(stderr, "  summary %s/%s at %llu differs from the state\n", tenant,
				conv, (unsigned long long)at);
			vw_show_diff(ta, tb);
			free(ta);
			free(tb);
		}
		free(a);
		free(b);
	} else if (rc != CS_OK) {
		fprintf(stderr, "  summary %s/%s at %llu: rc %d: %s\n", tenant, conv,
			(unsigned long long)at, rc, err.msg);
	}
	vw_free(st);
	vw_free(sum);
	return same;
}

/*
 * The messages view at @at as the JSON array API.md shows (encoded with CS_JSON_NULL_OPTIONAL),
 * a new reference (json_decref); NULL with *rc set when it cannot be read.
 */
static inline json_t *vw_messages_json(cs_store *s, const char *tenant, const char *conv,
				       uint64_t at, int *rc)
{
	Convstore__V1__ChatTranscript *t = NULL;
	cs_error err = CS_ERROR_INIT;
	*rc = cs_store_messages(&t, s, tenant, conv, at, &err);
	if (*rc != CS_OK) {
		fprintf(stderr, "  messages %s/%s at %llu: rc %d: %s\n", tenant, conv,
			(unsigned long long)at, *rc, err.msg);
		return NULL;
	}
	char *text = cs_json_encode_text(&t->base, CS_JSON_NULL_OPTIONAL, &err);
	vw_free(t);
	json_t *root = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (!root) {
		fprintf(stderr, "  messages %s/%s: not encodable: %s\n", tenant, conv, err.msg);
		*rc = CS_EINVAL;
		return NULL;
	}
	json_t *msgs = json_object_get(root, "messages");
	/* an empty list is left out of the JSON form */
	msgs = msgs ? json_incref(msgs) : json_array();
	json_decref(root);
	return msgs;
}

/* Whether two JSON values are equal; prints both (compact) when not. */
static inline bool vw_json_equal(const json_t *got, const json_t *want, const char *what)
{
	if (got && want && json_equal((json_t *)got, (json_t *)want))
		return true;
	char *a = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	char *b = want ? json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	fprintf(stderr, "  %s differs\n", what);
	vw_show_diff(a ? a : "(null)", b ? b : "(null)");
	free(a);
	free(b);
	return false;
}

/* The list page for @q, or NULL with *rc set. */
static inline Convstore__V1__ConversationList *vw_list(cs_store *s, const char *tenant,
						       const cs_list_query *q, int *rc)
{
	Convstore__V1__ConversationList *l = NULL;
	cs_error err = CS_ERROR_INIT;
	*rc = cs_store_list(&l, s, tenant, q, &err);
	return *rc == CS_OK ? l : NULL;
}

/* The usage report, or NULL with *rc set. */
static inline Convstore__V1__UsageReport *vw_usage(cs_store *s, const char *tenant,
						   enum cs_usage_group group, int64_t from,
						   int64_t to, int *rc)
{
	Convstore__V1__UsageReport *u = NULL;
	cs_error err = CS_ERROR_INIT;
	cs_usage_query q = {group, from, to};
	*rc = cs_store_usage(&u, s, tenant, &q, &err);
	if (*rc != CS_OK)
		fprintf(stderr, "  usage %s by %d: rc %d: %s\n", tenant, (int)group, *rc, err.msg);
	return *rc == CS_OK ? u : NULL;
}

/* The row of @key in a usage report, NULL when absent. */
static inline const Convstore__V1__UsageRow *vw_usage_row(const Convstore__V1__UsageReport *u,
							  const char *key)
{
	for (size_t i = 0; u && i < u->n_rows; i++)
		if (!strcmp(u->rows[i]->key, key))
			return u->rows[i];
	return NULL;
}

/*
 * One page of a stream read, as text to compare: each event as "conversation:version", then
 * "| next N", e.g. "X:1 X:2 Z:3 | next 0"; "rc N" when the read fails. Malloc'd.
 */
static inline char *vw_read_versions(cs_store *s, const char *tenant, const char *conv,
				     uint64_t from, size_t limit, enum cs_direction dir)
{
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_read_stream(&p, s, tenant, conv, from, limit, dir, &err);
	size_t cap = 32 + p.n * (CS_MAX_ID_LEN + 24), at = 0;
	char *out = malloc(cap);
	if (!out)
		exit(1);
	out[0] = '\0';
	if (rc != CS_OK)
		snprintf(out, cap, "rc %d", rc);
	for (size_t i = 0; rc == CS_OK && i < p.n; i++)
		at += (size_t)snprintf(out + at, cap - at, "%.*s:%llu ", CS_MAX_ID_LEN,
				       p.events[i]->conversation_id,
				       (unsigned long long)p.events[i]->version);
	if (rc == CS_OK)
		snprintf(out + at, cap - at, "| next %llu", (unsigned long long)p.next);
	cs_event_page_deinit(&p);
	return out;
}

/* The packed bytes of every event of a conversation in one malloc'd buffer (NULL on error). */
static inline uint8_t *vw_stream_bytes(cs_store *s, const char *tenant, const char *conv,
				       size_t *len)
{
	cs_event_page all = {0};
	cs_error err = CS_ERROR_INIT;
	uint8_t *buf = NULL;
	*len = 0;
	if (fx_read_all(&all, s, tenant, conv, 100, &err) == CS_OK) {
		for (size_t i = 0; i < all.n; i++)
			*len += convstore__v1__event__get_packed_size(all.events[i]);
		buf = malloc(*len + 1);
		size_t at = 0;
		for (size_t i = 0; buf && i < all.n; i++)
			at += convstore__v1__event__pack(all.events[i], buf + at);
	}
	cs_event_page_deinit(&all);
	return buf;
}

#endif
