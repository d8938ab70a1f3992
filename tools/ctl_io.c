/*
 * ctl_io.c - moving conversations in and out of a store: export, import, import-openai.
 *
 * The export file (proto/convstore/v1/export.proto) is a gzip stream of length-delimited
 * protobuf messages, the standard delimited format:
 *
 *     +--------+---------------+--------+-------+--------+-------+ ...
 *     | varint | ExportHeader  | varint | Event | varint | Event |
 *     | length | (format,      | length |       | length |       |
 *     |        |  version ...) |        |       |        |       |
 *     +--------+---------------+--------+-------+--------+-------+ ...
 *
 * with every event as the store returns it, in global position order (so parents come before
 * the forks that read through them). Import reads the file twice: once to check all of it (gzip
 * integrity to the last byte, the header, every message decodes and carries what an import
 * needs), then, only if that passed, once more to apply it (cs_store_apply: versions, recorded_at,
 * ids and, in an empty store, positions kept; events already stored are skipped, so importing
 * twice changes nothing). A garbage or truncated file is refused before the store is opened.
 *
 * zlib's gzFile is used here directly: this is a file format, not the store's record codec.
 *
 * import-openai maps each line's `messages` with tools/openai.c (the inverse of the messages
 * view) after checking every line, then creates each conversation (with the line's metadata)
 * and appends its messages with ids m1, m2, ... so that a second import is a replay.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "convstore/v1/export.pb-c.h"
#include "ctl.h"
#include "openai.h"

typedef Convstore__V1__Event Event;

#define EXPORT_FORMAT	     "convstore.events"
#define EXPORT_VERSION	     1
#define EXPORT_MAX_MESSAGE   (CS_MAX_EVENT_BYTES_LIMIT + (1u << 20))
#define IMPORT_BATCH_EVENTS  10000
#define IMPORT_BATCH_BYTES   (64u << 20)
#define OPENAI_MAX_LINE_SIZE (64u << 20)

/* ---- the delimited stream ---------------------------------------------------------------- */

static bool write_delimited(gzFile f, const ProtobufCMessage *m, uint64_t *bytes)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	unsigned char head[10], *buf = malloc(len ? len : 1);
	size_t n = 0;
	for (uint64_t v = len; n == 0 || v; v >>= 7)
		head[n++] = (unsigned char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
	if (!buf)
		return false;
	protobuf_c_message_pack(m, buf);
	bool ok = gzwrite(f, head, (unsigned)n) == (int)n &&
		  (len == 0 || gzwrite(f, buf, (unsigned)len) == (int)len);
	free(buf);
	*bytes += n + len;
	return ok;
}

typedef struct reader {
	gzFile f;
	const char *path;
	uint64_t index; /* messages read, the header included */
	uint64_t bytes; /* uncompressed bytes read */
	char why[160];	/* what went wrong */
} reader;

/* A message's bytes: 1 with *out malloc'd, 0 at a clean end, -1 with r->why. */
static int read_raw(reader *r, unsigned char **out, size_t *len)
{
	uint64_t v = 0;
	int shift = 0, ch;
	for (;;) {
		if ((ch = gzgetc(r->f)) < 0)
			break;
		r->bytes++;
		v |= (uint64_t)(ch & 0x7f) << shift;
		if (!(ch & 0x80))
			break;
		if ((shift += 7) > 63) {
			snprintf(r->why, sizeof(r->why), "message %" PRIu64 ": bad length",
				 r->index);
			return -1;
		}
	}
	int zerr;
	const char *zmsg = gzerror(r->f, &zerr);
	if (ch < 0 && zerr != Z_OK) {
		snprintf(r->why, sizeof(r->why), "truncated or damaged at message %" PRIu64 " (%s)",
			 r->index, zmsg);
		return -1;
	}
	if (ch < 0 && shift == 0)
		return 0;
	if (ch < 0 || v > EXPORT_MAX_MESSAGE) {
		snprintf(r->why, sizeof(r->why), "message %" PRIu64 ": %s", r->index,
			 ch < 0 ? "truncated length" : "length over the limit");
		return -1;
	}
	*out = malloc(v ? v : 1);
	if (!*out) {
		snprintf(r->why, sizeof(r->why), "out of memory");
		return -1;
	}
	int got = v ? gzread(r->f, *out, (unsigned)v) : 0;
	if (got != (int)v) {
		gzerror(r->f, &zerr);
		snprintf(r->why, sizeof(r->why), "truncated at message %" PRIu64 " (%s)", r->index,
			 zerr != Z_OK ? gzerror(r->f, &zerr) : "unexpected end of file");
		free(*out);
		return -1;
	}
	*len = v;
	r->bytes += v;
	r->index++;
	return 1;
}

/* Read and unpack the next message as @desc: 1, 0 at the end, -1 (r->why). */
static int read_msg(reader *r, ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc)
{
	unsigned char *buf;
	size_t len;
	int rc = read_raw(r, &buf, &len);
	if (rc <= 0)
		return rc;
	*out = protobuf_c_message_unpack(desc, NULL, len, buf);
	free(buf);
	if (!*out) {
		snprintf(r->why, sizeof(r->why), "message %" PRIu64 " does not decode as %s",
			 r->index - 1, desc->short_name);
		return -1;
	}
	return 1;
}

/* Open @path and read its header: CTL_OK, or CTL_FAIL with a message. */
static int reader_open(reader *r, const ctl *c, const char *path)
{
	*r = (reader){.path = path};
	if (!(r->f = gzopen(path, "rb")))
		return ctl_fail(c, "%s: cannot open", path);
	gzbuffer(r->f, 256 * 1024);
	Convstore__V1__ExportHeader *h = NULL;
	int rc = gzdirect(r->f) ? -2
				: read_msg(r, (ProtobufCMessage **)&h,
					   &convstore__v1__export_header__descriptor);
	bool ok = rc == 1 && !strcmp(h->format, EXPORT_FORMAT);
	if (ok && h->format_version != EXPORT_VERSION)
		rc = ctl_fail(c, "%s: export format version %u, this convctl reads %d", path,
			      h->format_version, EXPORT_VERSION);
	else if (!ok)
		rc = ctl_fail(c, "%s: not a convstore export (%s)", path,
			      rc == -2	? "not gzip"
			      : rc < 0	? r->why
			      : rc == 0 ? "empty"
					: "wrong header");
	else
		rc = CTL_OK;
	if (h)
		protobuf_c_message_free_unpacked(&h->base, NULL);
	if (rc) {
		gzclose(r->f);
		r->f = NULL;
	}
	return rc;
}

/* What import needs of an event, checked before anything is written. */
static const char *import_problem(const Event *e)
{
	if (e->payload_case == CONVSTORE__V1__EVENT__PAYLOAD__NOT_SET)
		return "has no payload";
	if (e->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED)
		return "is a conversation_deleted marker";
	if (!cs_id_valid(e->tenant) || !cs_id_valid(e->conversation_id) || !cs_id_valid(e->id))
		return "lacks a valid tenant, conversation or id";
	if (!e->version || !e->recorded_at)
		return "lacks its version or recorded_at";
	return NULL;
}

/* ---- export ------------------------------------------------------------------------------ */

static const char export_usage[] =
    "usage: convctl export [CONV...] -o FILE [--data DIR] [--tenant T] [--json]\n"
    "  write the store's events (every tenant's; or those of the named conversations of\n"
    "  --tenant, with the parents they were forked from) to FILE: a gzip stream of\n"
    "  length-delimited protobufs (varint length, message), an ExportHeader then each Event\n"
    "  in position order. Erased conversations are not exported. The file is written next to\n"
    "  FILE and renamed when complete\n";

typedef struct wanted {
	char **ids;
	size_t n;
} wanted;

static bool is_wanted(const wanted *w, const Event *e)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->ids[i], e->conversation_id))
			return true;
	return false;
}

/* The named conversations and their ancestors. */
static int want_add(wanted *w, const ctl *c, cs_store *s, const char *conv)
{
	for (int depth = 0; conv && depth <= CS_MAX_FORK_DEPTH; depth++) {
		Convstore__V1__Head *h = NULL;
		cs_error err = CS_ERROR_INIT;
		if (cs_store_head(&h, s, c->tenant, conv, &err))
			return ctl_fail(c, "%s", err.msg);
		char **grown = realloc(w->ids, (w->n + 1) * sizeof(*grown));
		if (!grown || !(grown[w->n] = strdup(conv))) {
			if (grown)
				w->ids = grown;
			protobuf_c_message_free_unpacked(&h->base, NULL);
			return ctl_fail(c, "out of memory");
		}
		w->ids = grown;
		w->n++;
		static char parent[CS_MAX_ID_LEN + 1];
		conv = h->parent && *h->parent->id ? strcpy(parent, h->parent->id) : NULL;
		protobuf_c_message_free_unpacked(&h->base, NULL);
	}
	return CTL_OK;
}

static void want_free(wanted *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->ids[i]);
	free(w->ids);
}

static bool write_header(gzFile f, const ctl *c, uint64_t last_position, uint64_t *bytes)
{
	Convstore__V1__ExportHeader h = CONVSTORE__V1__EXPORT_HEADER__INIT;
	Convstore__V1__Timestamp now = CONVSTORE__V1__TIMESTAMP__INIT;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	now.seconds = ts.tv_sec;
	now.nanos = (int32_t)ts.tv_nsec;
	h.format = EXPORT_FORMAT;
	h.format_version = EXPORT_VERSION;
	h.created_at = &now;
	h.last_position = last_position;
	char *names[256];
	for (int i = 0; i < c->n_args && i < 256; i++) {
		names[i] = malloc(strlen(c->tenant) + strlen(c->args[i]) + 2);
		if (names[i])
			sprintf(names[i], "%s/%s", c->tenant, c->args[i]);
		h.n_conversations += names[i] != NULL;
	}
	h.conversations = names;
	bool ok = write_delimited(f, &h.base, bytes);
	for (size_t i = 0; i < h.n_conversations; i++)
		free(names[i]);
	return ok;
}

/* Write the feed up to @last (filtered by @w when it names conversations). */
static int export_feed(const ctl *c, cs_store *s, gzFile f, const wanted *w, uint64_t last,
		       ctl_progress *pr)
{
	uint64_t after = 0;
	cs_error err = CS_ERROR_INIT;
	while (after < last) {
		cs_event_page p = {0};
		if (cs_store_read_feed(&p, s, w->n ? c->tenant : NULL, after, 1000, &err)) {
			cs_event_page_deinit(&p);
			return ctl_fail(c, "%s", err.msg);
		}
		bool ok = true;
		for (size_t i = 0; i < p.n && ok; i++) {
			const Event *e = p.events[i];
			uint64_t bytes = 0;
			if (e->position > last || import_problem(e) || (w->n && !is_wanted(w, e)))
				continue;
			ok = write_delimited(f, &e->base, &bytes);
			ctl_progress_add(pr, 1, bytes);
		}
		bool moved = p.next > after;
		after = p.next;
		cs_event_page_deinit(&p);
		if (!ok)
			return ctl_fail(c, "write failed");
		if (!moved)
			break;
	}
	return CTL_OK;
}

int ctl_cmd_export(ctl *c, int argc, char **argv)
{
	const char *out = NULL;
	const ctl_flag flags[] = {{"output", &out, NULL}, {"o", &out, NULL}, {NULL}};
	c->usage = export_usage;
	int rc = ctl_parse(c, argc, argv, flags, 0, 256);
	if (rc >= 0)
		return rc;
	if (!out)
		return ctl_usage(c, "-o FILE is required");
	cs_store *s;
	if ((rc = ctl_open(&s, c, false)))
		return rc;
	wanted w = {0};
	for (int i = 0; i < c->n_args && !rc; i++)
		rc = want_add(&w, c, s, c->args[i]);
	cs_store_stats st;
	cs_error err = CS_ERROR_INIT;
	if (!rc && cs_store_stats_get(&st, s, &err))
		rc = ctl_fail(c, "%s", err.msg);
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.partial", out);
	gzFile f = rc ? NULL : gzopen(tmp, "wb1");
	if (!rc && !f)
		rc = ctl_fail(c, "%s: cannot create", tmp);
	ctl_progress pr;
	ctl_progress_start(&pr, "export", rc ? 0 : st.events);
	double t0 = ctl_now();
	uint64_t head_bytes = 0;
	if (!rc && !write_header(f, c, st.last_position, &head_bytes))
		rc = ctl_fail(c, "%s: write failed", tmp);
	if (!rc)
		rc = export_feed(c, s, f, &w, st.last_position, &pr);
	ctl_progress_end(&pr);
	if (f && gzclose(f) != Z_OK && !rc)
		rc = ctl_fail(c, "%s: write failed", tmp);
	if (!rc && rename(tmp, out) != 0)
		rc = ctl_fail(c, "%s: cannot rename to %s", tmp, out);
	if (rc && f)
		unlink(tmp);
	double secs = ctl_now() - t0;
	if (!rc && c->json)
		printf("{\"events\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"seconds\": %.3f}\n",
		       pr.done, pr.bytes + head_bytes, secs);
	else if (!rc)
		printf("exported %" PRIu64 " events (%" PRIu64 " bytes before gzip) to %s\n",
		       pr.done, pr.bytes + head_bytes, out);
	want_free(&w);
	cs_store_close(s);
	return rc;
}

/* ---- import ------------------------------------------------------------------------------ */

static const char import_usage[] =
    "usage: convctl import FILE [--data DIR] [--json]\n"
    "  replay an export into the store (created when missing). Every event keeps its id,\n"
    "  version, recorded_at and content; in an empty store its position too, so every\n"
    "  conversation's state, usage, forks and timestamps come back exactly. In a store that\n"
    "  has events, positions are new where the old ones are taken. Events already stored\n"
    "  (the same event at the same version) are skipped: importing twice changes nothing; a\n"
    "  different event at a stored version is an error. The whole file is checked before\n"
    "  anything is written: a damaged, truncated or foreign file changes nothing\n";

/* Pass 1: every message of the file decodes and is importable. Counts events. */
static int import_check(const ctl *c, const char *path, uint64_t *events)
{
	reader r;
	int rc = reader_open(&r, c, path);
	*events = 0;
	while (!rc) {
		Event *e = NULL;
		int got = read_msg(&r, (ProtobufCMessage **)&e, &convstore__v1__event__descriptor);
		if (got <= 0) {
			rc =
			    got < 0 ? ctl_fail(c, "%s: %s; nothing imported", path, r.why) : CTL_OK;
			break;
		}
		const char *why = import_problem(e);
		if (why)
			rc = ctl_fail(c, "%s: event %" PRIu64 " %s; nothing imported", path,
				      r.index - 1, why);
		protobuf_c_message_free_unpacked(&e->base, NULL);
		(*events)++;
	}
	if (r.f)
		gzclose(r.f);
	return rc;
}

static void batch_free(Event **batch, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&batch[i]->base, NULL);
}

/* Pass 2: apply the file in batches. */
static int import_apply(const ctl *c, cs_store *s, const char *path, cs_apply_result *total,
			ctl_progress *pr)
{
	reader r;
	int rc = reader_open(&r, c, path);
	Event **batch = rc ? NULL : malloc(IMPORT_BATCH_EVENTS * sizeof(*batch));
	if (!rc && !batch)
		rc = ctl_fail(c, "out of memory");
	for (bool end = false; !rc && !end;) {
		size_t n = 0;
		uint64_t bytes0 = r.bytes;
		while (n < IMPORT_BATCH_EVENTS && r.bytes - bytes0 < IMPORT_BATCH_BYTES) {
			int got = read_msg(&r, (ProtobufCMessage **)&batch[n],
					   &convstore__v1__event__descriptor);
			if (got < 0)
				rc = ctl_fail(c, "%s: %s", path, r.why);
			if (got <= 0) {
				end = true;
				break;
			}
			n++;
		}
		cs_apply_result res;
		cs_error err = CS_ERROR_INIT;
		if (!rc && n && cs_store_apply(&res, s, batch, n, &err) != CS_OK)
			rc = ctl_fail(c, "%s: event %" PRIu64 ": %s", path,
				      total->applied + total->skipped +
					  (err.index >= 0 ? (uint64_t)err.index : 0),
				      err.msg);
		if (!rc) {
			total->applied += res.applied;
			total->skipped += res.skipped;
			ctl_progress_add(pr, n, r.bytes - bytes0);
		}
		batch_free(batch, n);
	}
	free(batch);
	if (r.f)
		gzclose(r.f);
	return rc;
}

int ctl_cmd_import(ctl *c, int argc, char **argv)
{
	c->usage = import_usage;
	int rc = ctl_parse(c, argc, argv, NULL, 1, 1);
	if (rc >= 0)
		return rc;
	const char *path = c->args[0];
	uint64_t events;
	double t0 = ctl_now();
	if ((rc = import_check(c, path, &events)))
		return rc;
	cs_store *s;
	if ((rc = ctl_open(&s, c, true)))
		return rc;
	ctl_progress pr;
	ctl_progress_start(&pr, "import", events);
	cs_apply_result total = {0};
	rc = import_apply(c, s, path, &total, &pr);
	ctl_progress_end(&pr);
	cs_store_close(s);
	double secs = ctl_now() - t0;
	if (rc)
		fprintf(stderr,
			"convctl: import: %" PRIu64 " events were stored before the failure; "
			"importing again skips them\n",
			total.applied);
	else if (c->json)
		printf("{\"events\": %" PRIu64 ", \"applied\": %" PRIu64 ", \"skipped\": %" PRIu64
		       ", \"bytes\": %" PRIu64 ", \"seconds\": %.3f}\n",
		       events, total.applied, total.skipped, pr.bytes, secs);
	else
		printf("imported %" PRIu64 " events: %" PRIu64 " stored, %" PRIu64
		       " already there\n",
		       events, total.applied, total.skipped);
	return rc;
}

/* ---- import-openai ----------------------------------------------------------------------- */

static const char openai_usage[] =
    "usage: convctl import-openai FILE.jsonl [--model M] [--data DIR] [--tenant T] [--json]\n"
    "  one conversation per line in OpenAI chat format: {\"messages\": [...], \"id\"?,\n"
    "  \"metadata\"?: {string: string}, \"model\"?}. Each becomes a conversation (id: the line's,\n"
    "  or openai-LINE) created with the metadata, whose messages map to events as the\n"
    "  messages view maps them back (assistant turns: model_response with the line's model,\n"
    "  or --model). Every line is checked before anything is written; importing the same file\n"
    "  again changes nothing (the events' ids are m1, m2, ...)\n";

typedef struct oai_conv {
	char id[CS_MAX_ID_LEN + 1];
	json_t *metadata; /* borrowed from root */
	json_t *root;
	Event **events;
	size_t n;
} oai_conv;

static void oai_free(oai_conv *v, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		batch_free(v[k].events, v[k].n);
		free(v[k].events);
		json_decref(v[k].root);
	}
	free(v);
}

/* Map one line into @v; NULL or a reason. */
static const char *oai_line(oai_conv *v, const char *line, size_t lineno, const char *model,
			    char *why, size_t why_size)
{
	json_error_t jerr;
	v->root = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	const json_t *msgs = json_object_get(v->root, "messages");
	const json_t *id = json_object_get(v->root, "id"), *m;
	const char *line_model = json_string_value(json_object_get(v->root, "model"));
	v->metadata = json_object_get(v->root, "metadata");
	if (!v->root)
		return snprintf(why, why_size, "not JSON (%s)", jerr.text), why;
	if (!json_is_array(msgs))
		return "no \"messages\" array";
	if (id && (!json_is_string(id) || !cs_id_valid(json_string_value(id))))
		return "\"id\" is not a valid conversation id";
	if (id)
		snprintf(v->id, sizeof(v->id), "%s", json_string_value(id));
	else
		snprintf(v->id, sizeof(v->id), "openai-%zu", lineno);
	if (v->metadata && !json_is_object(v->metadata))
		return "\"metadata\" is not an object";
	const char *k;
	json_t *val;
	json_object_foreach(v->metadata, k, val)
	{
		if (!json_is_string(val))
			return "metadata values must be strings";
	}
	v->events = calloc(json_array_size(msgs) + 1, sizeof(*v->events));
	if (!v->events)
		return "out of memory";
	size_t i;
	json_array_foreach(msgs, i, m)
	{
		cs_error err = CS_ERROR_INIT;
		char eid[32];
		snprintf(eid, sizeof(eid), "m%zu", i + 1);
		if (cs_openai_event(&v->events[i], m, line_model ? line_model : model, eid, &err))
			return snprintf(why, why_size, "message %zu: %.150s", i + 1, err.msg), why;
		v->n = i + 1;
	}
	return NULL;
}

/* Pass 1: read and map every line. */
static int oai_read(oai_conv **out, size_t *n, const ctl *c, const char *path, const char *model)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return ctl_fail(c, "%s: cannot open", path);
	char *line = NULL, why[240];
	size_t cap = 0, have = 0;
	ssize_t len;
	int rc = CTL_OK;
	oai_conv *v = NULL;
	for (size_t lineno = 1; !rc && (len = getline(&line, &cap, f)) > 0; lineno++) {
		if ((size_t)len > OPENAI_MAX_LINE_SIZE) {
			rc = ctl_fail(c, "%s:%zu: line too long; nothing imported", path, lineno);
			break;
		}
		if (strspn(line, " \t\r\n") == (size_t)len)
			continue;
		oai_conv *grown = realloc(v, (have + 1) * sizeof(*v));
		if (!grown) {
			rc = ctl_fail(c, "out of memory");
			break;
		}
		v = grown;
		memset(&v[have], 0, sizeof(*v));
		const char *bad = oai_line(&v[have++], line, lineno, model, why, sizeof(why));
		if (bad)
			rc = ctl_fail(c, "%s:%zu: %s; nothing imported", path, lineno, bad);
	}
	if (!rc && have == 0)
		rc = ctl_fail(c, "%s: no conversations; nothing imported", path);
	free(line);
	fclose(f);
	if (rc) {
		oai_free(v, have);
		return rc;
	}
	*out = v;
	*n = have;
	return CTL_OK;
}

/* Pass 2, one conversation: create it with its metadata, append its messages. */
static int oai_store(const ctl *c, cs_store *s, const oai_conv *v, bool *new_events)
{
	Convstore__V1__ConversationCreated spec = CONVSTORE__V1__CONVERSATION_CREATED__INIT;
	size_t n_meta = json_object_size(v->metadata);
	Convstore__V1__ConversationCreated__MetadataEntry *entries =
	    calloc(n_meta + 1, sizeof(*entries));
	Convstore__V1__ConversationCreated__MetadataEntry **ptrs =
	    calloc(n_meta + 1, sizeof(*ptrs));
	if (!entries || !ptrs) {
		free(entries);
		free(ptrs);
		return ctl_fail(c, "out of memory");
	}
	const char *k;
	json_t *val;
	json_object_foreach(v->metadata, k, val)
	{
		convstore__v1__conversation_created__metadata_entry__init(
		    &entries[spec.n_metadata]);
		entries[spec.n_metadata].key = (char *)k;
		entries[spec.n_metadata].value = (char *)json_string_value(val);
		ptrs[spec.n_metadata] = &entries[spec.n_metadata];
		spec.n_metadata++;
	}
	spec.metadata = ptrs;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_create(NULL, s, c->tenant, v->id, &spec, &err);
	free(entries);
	free(ptrs);
	if (rc && rc != CS_ECONFLICT)
		return ctl_fail(c, "%s: %s", v->id, err.msg);
	*new_events = rc == CS_OK;
	size_t max = CS_DEFAULT_MAX_REQUEST_EVENTS;
	for (size_t at = 0; at < v->n; at += max) {
		cs_append_result r;
		size_t n = v->n - at < max ? v->n - at : max;
		if (cs_store_append(&r, s, c->tenant, v->id, CS_ANY_VERSION, v->events + at, n,
				    &err))
			return ctl_fail(c, "%s: event %d: %s", v->id,
					err.index >= 0 ? (int)at + err.index + 1 : 0, err.msg);
		*new_events |= !r.replayed;
	}
	return CTL_OK;
}

int ctl_cmd_import_openai(ctl *c, int argc, char **argv)
{
	const char *model = "";
	const ctl_flag flags[] = {{"model", &model, NULL}, {NULL}};
	c->usage = openai_usage;
	int rc = ctl_parse(c, argc, argv, flags, 1, 1);
	if (rc >= 0)
		return rc;
	oai_conv *v = NULL;
	size_t n = 0;
	if ((rc = oai_read(&v, &n, c, c->args[0], model)))
		return rc;
	cs_store *s;
	if ((rc = ctl_open(&s, c, true))) {
		oai_free(v, n);
		return rc;
	}
	size_t created = 0, messages = 0;
	for (size_t k = 0; k < n && !rc; k++) {
		bool fresh = false;
		rc = oai_store(c, s, &v[k], &fresh);
		created += fresh;
		messages += v[k].n;
	}
	cs_store_close(s);
	oai_free(v, n);
	if (!rc && c->json)
		printf("{\"conversations\": %zu, \"messages\": %zu, \"changed\": %zu}\n", n,
		       messages, created);
	else if (!rc)
		printf("%zu conversations (%zu messages) read, %zu of them new or extended\n", n,
		       messages, created);
	return rc;
}
