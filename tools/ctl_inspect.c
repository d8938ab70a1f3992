/*
 * ctl_inspect.c - the read commands: stats, ls, show, events, messages.
 *
 * ls, show, events and messages read either the store (--data, opened read-only) or a server
 * (--url, as protobuf): each gets its view as the same message both ways (a ConversationList,
 * ConversationState, EventPage or ChatTranscript) and prints it with one printer. stats needs
 * the store itself (map size and databases are not served over HTTP).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "convstore/v1/api.pb-c.h"
#include "ctl.h"

typedef Convstore__V1__ConversationState State;

static const char stats_usage[] =
    "usage: convctl stats [--data DIR] [--json]\n"
    "  events, conversations, the last position, map size and use, and each LMDB database's\n"
    "  entries and pages\n";

int ctl_cmd_stats(ctl *c, int argc, char **argv)
{
	c->usage = stats_usage;
	int rc = ctl_parse(c, argc, argv, NULL, 0, 0);
	cs_store *s;
	if (rc >= 0 || (rc = ctl_open(&s, c, false)))
		return rc;
	cs_store_stats st;
	cs_error err = CS_ERROR_INIT;
	if (cs_store_stats_get(&st, s, &err)) {
		cs_store_close(s);
		return ctl_fail(c, "%s", err.msg);
	}
	cs_store_close(s);
	if (c->json) {
		printf("{\"events\": %" PRIu64 ", \"conversations\": %" PRIu64
		       ", \"last_position\": %" PRIu64 ", \"map_size\": %" PRIu64
		       ", \"map_used\": %" PRIu64 ", \"databases\": {",
		       st.events, st.conversations, st.last_position, st.map_size, st.map_used);
		for (size_t i = 0; i < st.n_dbs; i++)
			printf("%s\"%s\": {\"entries\": %" PRIu64 ", \"pages\": %" PRIu64 "}",
			       i ? ", " : "", st.dbs[i].name, st.dbs[i].entries, st.dbs[i].pages);
		printf("}}\n");
		return CTL_OK;
	}
	printf("events         %" PRIu64 "\nconversations  %" PRIu64 "\nlast position  %" PRIu64
	       "\nmap size       %" PRIu64 "\nmap used       %" PRIu64 "\n",
	       st.events, st.conversations, st.last_position, st.map_size, st.map_used);
	printf("\ndatabase   entries      pages\n");
	for (size_t i = 0; i < st.n_dbs; i++)
		printf("%-8s %9" PRIu64 " %10" PRIu64 "\n", st.dbs[i].name, st.dbs[i].entries,
		       st.dbs[i].pages);
	return CTL_OK;
}

/* ---- ls ---------------------------------------------------------------------------------- */

static const char ls_usage[] =
    "usage: convctl ls [--data DIR | --url URL] [--tenant T] [--status S] [--limit N] [--json]\n"
    "  the conversations, newest first (by their last event): id, version, status, updated,\n"
    "  title; --json: one summary (the state view without messages) a line\n";

static void print_summary_line(const State *st)
{
	char t[40];
	printf("%-32s v%-7" PRIu64 " %-8s %s  ", st->id, st->version, st->status,
	       ctl_time(t, st->updated_at));
	ctl_print_short(stdout, st->title, 60);
	putchar('\n');
}

/* One page of the list, from the store or the server. */
static int list_page(Convstore__V1__ConversationList **out, ctl *c, cs_store *s, const char *cursor,
		     const char *status, size_t limit)
{
	if (c->url) {
		char path[512];
		snprintf(path, sizeof(path), "/v1/conversations?limit=%zu%s%s%s%s", limit,
			 cursor ? "&cursor=" : "", cursor ? cursor : "", status ? "&status=" : "",
			 status ? status : "");
		return ctl_http_get((void **)out, c, path,
				    &convstore__v1__conversation_list__descriptor);
	}
	cs_list_query q = {.limit = limit, .cursor = cursor, .status = status};
	cs_error err = CS_ERROR_INIT;
	if (cs_store_list(out, s, c->tenant, &q, &err))
		return ctl_fail(c, "%s", err.msg);
	return CTL_OK;
}

/* Open the store unless --url says to ask a server. */
static int open_read(cs_store **s, const ctl *c)
{
	*s = NULL;
	return c->url ? CTL_OK : ctl_open(s, c, false);
}

int ctl_cmd_ls(ctl *c, int argc, char **argv)
{
	const char *limit_s = NULL, *status = NULL;
	const ctl_flag flags[] = {{"limit", &limit_s, NULL}, {"status", &status, NULL}, {NULL}};
	c->usage = ls_usage;
	uint64_t limit = UINT64_MAX;
	int rc = ctl_parse(c, argc, argv, flags, 0, 0);
	if (rc >= 0)
		return rc;
	if (!ctl_u64(c, limit_s, "--limit", &limit))
		return CTL_USAGE;
	cs_store *s;
	if ((rc = open_read(&s, c)))
		return rc;
	char cursor[CS_CURSOR_MAX] = "";
	for (uint64_t shown = 0; shown < limit && !rc;) {
		Convstore__V1__ConversationList *page = NULL;
		uint64_t want =
		    limit - shown < CS_LIST_LIMIT_MAX ? limit - shown : CS_LIST_LIMIT_MAX;
		if ((rc = list_page(&page, c, s, *cursor ? cursor : NULL, status, (size_t)want)))
			break;
		for (size_t i = 0; i < page->n_conversations && !rc; i++, shown++)
			rc = c->json ? ctl_print_json(c, page->conversations[i])
				     : (print_summary_line(page->conversations[i]), CTL_OK);
		bool more =
		    page->next_cursor_opt_case && strlen(page->next_cursor) < sizeof(cursor);
		if (more)
			strcpy(cursor, page->next_cursor);
		protobuf_c_message_free_unpacked(&page->base, NULL);
		if (!more)
			break;
	}
	cs_store_close(s);
	return rc;
}

/* ---- show -------------------------------------------------------------------------------- */

static const char show_usage[] =
    "usage: convctl show CONV [--at N] [--data DIR | --url URL] [--tenant T] [--json]\n"
    "  the state view of CONV: status, title, metadata, usage, counts, pending tool calls and\n"
    "  the transcript; --at N: as it was right after version N\n";

static void print_transcript(const State *st)
{
	for (size_t i = 0; i < st->n_messages; i++) {
		const Convstore__V1__TranscriptMessage *m = st->messages[i];
		printf("  #%-5" PRIu64 " %s%s%s: ", m->version, m->role, *m->name ? " " : "",
		       m->name);
		if (m->content_opt_case)
			ctl_print_short(stdout, m->content, 100);
		else if (!m->n_tool_calls)
			fputs("(null)", stdout);
		for (size_t k = 0; k < m->n_tool_calls; k++)
			printf("%s%s(%s)", k ? ", " : " calls ", m->tool_calls[k]->name,
			       m->tool_calls[k]->id);
		putchar('\n');
	}
}

static void print_state(const State *st)
{
	char a[40], b[40];
	printf("conversation %s  version %" PRIu64 "  %s\n", st->id, st->version, st->status);
	if (*st->title)
		printf("title     %s\n", st->title);
	printf("created   %s\nupdated   %s\n", ctl_time(a, st->created_at),
	       ctl_time(b, st->updated_at));
	if (st->parent)
		printf("parent    %s at version %" PRIu64 "\n", st->parent->id,
		       st->parent->version);
	for (size_t i = 0; i < st->n_metadata; i++)
		printf("metadata  %s=%s\n", st->metadata[i]->key, st->metadata[i]->value);
	const Convstore__V1__UsageTotals *u = st->usage;
	if (u)
		printf("usage     %" PRIu64 " in, %" PRIu64 " out, %" PRIu64 " cached, %" PRIu64
		       " reasoning, $%.6f, %" PRIu64 " responses\n",
		       u->input_tokens, u->output_tokens, u->cached_tokens, u->reasoning_tokens,
		       u->cost_usd, u->responses);
	const Convstore__V1__Counts *n = st->counts;
	if (n)
		printf("counts    %" PRIu64 " events, %" PRIu64 " messages, %" PRIu64
		       " tool calls, %" PRIu64 " tool errors\n",
		       n->events, n->messages, n->tool_calls, n->tool_errors);
	for (size_t i = 0; i < st->n_pending_tool_calls; i++)
		printf("pending   %s %s (version %" PRIu64 ")\n", st->pending_tool_calls[i]->id,
		       st->pending_tool_calls[i]->name, st->pending_tool_calls[i]->version);
	if (st->n_messages)
		printf("messages\n");
	print_transcript(st);
}

/* A view of one conversation at a version: the path of its route, or the store call. */
typedef int (*store_view_fn)(void **out, cs_store *s, const char *tenant, const char *conv,
			     uint64_t at, cs_error *err);

static int state_fn(void **out, cs_store *s, const char *t, const char *conv, uint64_t at,
		    cs_error *err)
{
	return cs_store_state((State **)out, s, t, conv, at, err);
}

static int messages_fn(void **out, cs_store *s, const char *t, const char *conv, uint64_t at,
		       cs_error *err)
{
	return cs_store_messages((Convstore__V1__ChatTranscript **)out, s, t, conv, at, err);
}

/* Read the view of CONV (c->args[0]) at @at_s, from the store or GET @route. */
static int read_view(void **out, ctl *c, const char *at_s, store_view_fn fn, const char *route,
		     const ProtobufCMessageDescriptor *desc)
{
	uint64_t at = 0;
	if (!ctl_u64(c, at_s, "--at", &at))
		return CTL_USAGE;
	const char *conv = c->args[0];
	if (!cs_id_valid(conv))
		return ctl_usage(c, "conversation id \"%s\" is not valid", conv);
	if (c->url) {
		char path[512];
		snprintf(path, sizeof(path), "/v1/conversations/%s%s?at_version=%" PRIu64, conv,
			 route, at);
		return ctl_http_get(out, c, at ? path : strtok(path, "?"), desc);
	}
	cs_store *s;
	int rc = ctl_open(&s, c, false);
	if (rc)
		return rc;
	cs_error err = CS_ERROR_INIT;
	if (fn(out, s, c->tenant, conv, at, &err))
		rc = ctl_fail(c, "%s", err.msg);
	cs_store_close(s);
	return rc;
}

int ctl_cmd_show(ctl *c, int argc, char **argv)
{
	const char *at_s = NULL;
	const ctl_flag flags[] = {{"at", &at_s, NULL}, {NULL}};
	c->usage = show_usage;
	int rc = ctl_parse(c, argc, argv, flags, 1, 1);
	State *st = NULL;
	if (rc >= 0 || (rc = read_view((void **)&st, c, at_s, state_fn, "",
				       &convstore__v1__conversation_state__descriptor)))
		return rc;
	if (c->json)
		rc = ctl_print_json(c, st);
	else
		print_state(st);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	return rc;
}

/* ---- messages ---------------------------------------------------------------------------- */

static const char messages_usage[] =
    "usage: convctl messages CONV [--at N] [--data DIR | --url URL] [--tenant T] [--json]\n"
    "  the model-ready transcript of CONV (OpenAI chat-completions form); --at N: as it was\n"
    "  right after version N; --json: {\"messages\": [...]} as GET .../messages gives it\n";

int ctl_cmd_messages(ctl *c, int argc, char **argv)
{
	const char *at_s = NULL;
	const ctl_flag flags[] = {{"at", &at_s, NULL}, {NULL}};
	c->usage = messages_usage;
	int rc = ctl_parse(c, argc, argv, flags, 1, 1);
	Convstore__V1__ChatTranscript *t = NULL;
	if (rc >= 0 || (rc = read_view((void **)&t, c, at_s, messages_fn, "/messages",
				       &convstore__v1__chat_transcript__descriptor)))
		return rc;
	if (c->json)
		rc = ctl_print_json(c, t);
	for (size_t i = 0; i < t->n_messages && !c->json; i++) {
		const Convstore__V1__ChatMessage *m = t->messages[i];
		printf("%s%s%s: ", m->role, *m->tool_call_id ? " " : "", m->tool_call_id);
		if (m->content_opt_case)
			ctl_print_short(stdout, m->content, 200);
		else
			fputs("(null)", stdout);
		for (size_t k = 0; k < m->n_tool_calls; k++)
			printf("%s%s(%s)", k ? ", " : " calls ", m->tool_calls[k]->function->name,
			       m->tool_calls[k]->id);
		putchar('\n');
	}
	protobuf_c_message_free_unpacked(&t->base, NULL);
	return rc;
}

/* ---- events ------------------------------------------------------------------------------ */

static const char events_usage[] =
    "usage: convctl events CONV [--from N] [--limit N] [--data DIR | --url URL] [--tenant T]\n"
    "                      [--json]\n"
    "  the raw events of CONV from version N (default 1), at most --limit of them (default:\n"
    "  all); --json: one event a line\n";

/* One page of a conversation's events, from the store or the server. */
static int events_page(Convstore__V1__EventPage **out, ctl *c, cs_store *s, uint64_t from,
		       size_t limit)
{
	const char *conv = c->args[0];
	if (c->url) {
		char path[512];
		snprintf(path, sizeof(path),
			 "/v1/conversations/%s/events?from_version=%" PRIu64 "&limit=%zu", conv,
			 from, limit);
		return ctl_http_get((void **)out, c, path, &convstore__v1__event_page__descriptor);
	}
	cs_event_page p = {0};
	cs_error err = CS_ERROR_INIT;
	if (cs_store_read_stream(&p, s, c->tenant, conv, from, limit, CS_FORWARD, &err)) {
		cs_event_page_deinit(&p);
		return ctl_fail(c, "%s", err.msg);
	}
	/* The same message as the route's, so that one loop prints both. */
	Convstore__V1__EventPage *page = malloc(sizeof(*page));
	if (!page) {
		cs_event_page_deinit(&p);
		return ctl_fail(c, "out of memory");
	}
	convstore__v1__event_page__init(page);
	page->events = p.events;
	page->n_events = p.n;
	if (p.next) {
		page->next_from_version_opt_case =
		    CONVSTORE__V1__EVENT_PAGE__NEXT_FROM_VERSION_OPT_NEXT_FROM_VERSION;
		page->next_from_version = p.next;
	}
	*out = page;
	return CTL_OK;
}

int ctl_cmd_events(ctl *c, int argc, char **argv)
{
	const char *from_s = NULL, *limit_s = NULL;
	const ctl_flag flags[] = {{"from", &from_s, NULL}, {"limit", &limit_s, NULL}, {NULL}};
	c->usage = events_usage;
	uint64_t from = 1, limit = UINT64_MAX;
	int rc = ctl_parse(c, argc, argv, flags, 1, 1);
	if (rc >= 0)
		return rc;
	if (!ctl_u64(c, from_s, "--from", &from) || !ctl_u64(c, limit_s, "--limit", &limit))
		return CTL_USAGE;
	if (!cs_id_valid(c->args[0]))
		return ctl_usage(c, "conversation id \"%s\" is not valid", c->args[0]);
	cs_store *s;
	if ((rc = open_read(&s, c)))
		return rc;
	for (uint64_t shown = 0; shown < limit && from && !rc;) {
		Convstore__V1__EventPage *page = NULL;
		uint64_t want = limit - shown < 1000 ? limit - shown : 1000;
		if ((rc = events_page(&page, c, s, from, (size_t)want)))
			break;
		for (size_t i = 0; i < page->n_events && !rc; i++, shown++)
			rc = c->json ? ctl_print_json(c, page->events[i])
				     : (ctl_print_event(stdout, page->events[i]), CTL_OK);
		from = page->n_events && page->next_from_version_opt_case ? page->next_from_version
									  : 0;
		protobuf_c_message_free_unpacked(&page->base, NULL);
	}
	cs_store_close(s);
	return rc;
}
