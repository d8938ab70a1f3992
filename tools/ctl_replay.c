/*
 * ctl_replay.c - replay and diff: what an engineer debugging an agent asks of a conversation.
 *
 * Both describe change in one vocabulary: what an event adds (a message, a tool call opened or
 * answered, a turn) comes from the event itself, and what it did to the state (status, title,
 * metadata, usage, counts) from the difference of two summaries (cs_store_summary: a snapshot
 * and a short fold, so stepping through a long conversation stays linear). replay compares
 * each version with the one before; diff compares two versions of one conversation, or the
 * heads of two conversations after the point where their histories part (a fork shares its
 * parent's events up to the fork point, positions included, so the first differing position is
 * where they diverge).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convstore/pbjson.h"
#include "ctl.h"

typedef Convstore__V1__ConversationState State;
typedef Convstore__V1__Event Event;

/* ---- reading ----------------------------------------------------------------------------- */

/* The summary of @conv at @at; at 0, the empty state before version 1 (not "now"). */
static int summary_at(State **out, const ctl *c, cs_store *s, const char *conv, uint64_t at)
{
	cs_error err = CS_ERROR_INIT;
	if (at == 0) {
		*out = malloc(sizeof(**out));
		if (!*out)
			return ctl_fail(c, "out of memory");
		convstore__v1__conversation_state__init(*out);
		return CTL_OK;
	}
	if (cs_store_summary(out, s, c->tenant, conv, at, &err))
		return ctl_fail(c, "%s", err.msg);
	return CTL_OK;
}

/* Events @from..@to of @conv (all of it from @from when @to is 0) into @out. */
static int read_events(cs_event_page *out, const ctl *c, cs_store *s, const char *conv,
		       uint64_t from, uint64_t to)
{
	cs_error err = CS_ERROR_INIT;
	while (from && (!to || from <= to)) {
		cs_event_page p = {0};
		if (cs_store_read_stream(&p, s, c->tenant, conv, from, 1000, CS_FORWARD, &err)) {
			cs_event_page_deinit(&p);
			return ctl_fail(c, "%s", err.msg);
		}
		Event **grown = realloc(out->events, (out->n + p.n + 1) * sizeof(*grown));
		if (!grown) {
			cs_event_page_deinit(&p);
			return ctl_fail(c, "out of memory");
		}
		out->events = grown;
		for (size_t i = 0; i < p.n; i++) {
			if (!to || p.events[i]->version <= to)
				out->events[out->n++] = p.events[i];
			else
				protobuf_c_message_free_unpacked(&p.events[i]->base, NULL);
		}
		from = p.n ? p.next : 0;
		free(p.events);
	}
	return CTL_OK;
}

/* ---- describing change ------------------------------------------------------------------- */

/* What @e adds by itself: messages, tool calls opened or answered, turns. */
static void print_effect(const Event *e)
{
	switch (e->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE:
		printf("    + message %s: ", e->message->role);
		ctl_print_short(stdout, e->message->content, 100);
		putchar('\n');
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE: {
		const Convstore__V1__ModelResponse *r = e->model_response;
		printf("    + message assistant: ");
		if (r->content_opt_case)
			ctl_print_short(stdout, r->content, 100);
		else
			fputs("(null)", stdout);
		putchar('\n');
		for (size_t i = 0; i < r->n_tool_calls; i++) {
			printf("    + tool call opened %s %s ", r->tool_calls[i]->id,
			       r->tool_calls[i]->name);
			ctl_print_short(stdout, r->tool_calls[i]->arguments, 80);
			putchar('\n');
		}
		break;
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL:
		printf("    + tool call opened %s %s\n", e->tool_call->id, e->tool_call->name);
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT:
		printf("    + tool call answered %s%s: ", e->tool_result->call_id,
		       e->tool_result->is_error ? " (error)" : "");
		ctl_print_short(stdout, e->tool_result->output, 80);
		putchar('\n');
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_TURN_STARTED:
		printf("    turn %s started\n", e->turn_started->turn_id);
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_TURN_ENDED:
		printf("    turn %s ended\n", e->turn_ended->turn_id);
		break;
	default: break;
	}
}

static const char *meta_get(const State *s, const char *key)
{
	for (size_t i = 0; i < s->n_metadata; i++)
		if (!strcmp(s->metadata[i]->key, key))
			return s->metadata[i]->value;
	return NULL;
}

static void print_metadata_change(const State *a, const State *b)
{
	for (size_t i = 0; i < b->n_metadata; i++) {
		const char *k = b->metadata[i]->key, *was = meta_get(a, k);
		if (!was)
			printf("    metadata +%s=%s\n", k, b->metadata[i]->value);
		else if (strcmp(was, b->metadata[i]->value))
			printf("    metadata %s: %s -> %s\n", k, was, b->metadata[i]->value);
	}
	for (size_t i = 0; i < a->n_metadata; i++)
		if (!meta_get(b, a->metadata[i]->key))
			printf("    metadata -%s\n", a->metadata[i]->key);
}

/* Signed difference of two counters, for "+3" / "-1". */
static long long delta(uint64_t a, uint64_t b)
{
	return (long long)b - (long long)a;
}

static void print_usage_change(const State *a, const State *b)
{
	static const Convstore__V1__UsageTotals zero = CONVSTORE__V1__USAGE_TOTALS__INIT;
	const Convstore__V1__UsageTotals *x = a->usage ? a->usage : &zero;
	const Convstore__V1__UsageTotals *y = b->usage ? b->usage : &zero;
	if (!memcmp(&x->input_tokens, &y->input_tokens, 4 * sizeof(uint64_t)) &&
	    x->cost_usd == y->cost_usd)
		return;
	printf("    usage %+lld in, %+lld out, %+lld cached, %+lld reasoning, %+.6f USD\n",
	       delta(x->input_tokens, y->input_tokens), delta(x->output_tokens, y->output_tokens),
	       delta(x->cached_tokens, y->cached_tokens),
	       delta(x->reasoning_tokens, y->reasoning_tokens), y->cost_usd - x->cost_usd);
}

/* What changed in the state from @a to @b, beyond the version. */
static void print_changes(const State *a, const State *b)
{
	if (strcmp(a->status, b->status))
		printf("    status %s -> %s\n", *a->status ? a->status : "(none)", b->status);
	if (strcmp(a->title, b->title))
		printf("    title \"%s\" -> \"%s\"\n", a->title, b->title);
	if (b->parent && (!a->parent || strcmp(a->parent->id, b->parent->id)))
		printf("    parent %s at version %" PRIu64 "\n", b->parent->id, b->parent->version);
	print_metadata_change(a, b);
	print_usage_change(a, b);
	static const Convstore__V1__Counts zero = CONVSTORE__V1__COUNTS__INIT;
	const Convstore__V1__Counts *x = a->counts ? a->counts : &zero;
	const Convstore__V1__Counts *y = b->counts ? b->counts : &zero;
	if (y->tool_errors != x->tool_errors)
		printf("    tool errors %+lld\n", delta(x->tool_errors, y->tool_errors));
}

/* {"event": ..., "state": ...} (either may be NULL) as one JSON line. */
static int print_json_pair(const ctl *c, const char *k1, const void *m1, const char *k2,
			   const void *m2)
{
	json_t *o = json_object(), *j;
	cs_error err = CS_ERROR_INIT;
	const void *msgs[] = {m1, m2};
	const char *keys[] = {k1, k2};
	for (int i = 0; i < 2; i++) {
		if (!msgs[i])
			continue;
		if (cs_json_encode_flags(&j, msgs[i], CS_JSON_NULL_OPTIONAL, &err)) {
			json_decref(o);
			return ctl_fail(c, "json: %s", err.msg);
		}
		json_object_set_new(o, keys[i], j);
	}
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return ctl_fail(c, "out of memory");
	puts(text);
	free(text);
	return CTL_OK;
}

/* ---- replay ------------------------------------------------------------------------------ */

static const char replay_usage[] =
    "usage: convctl replay CONV [--from N] [--to N] [--step] [--data DIR] [--tenant T] [--json]\n"
    "  step through the events of CONV from version N (default 1) to N (default: the last),\n"
    "  printing each event and what it changed: messages added, tool calls opened or answered,\n"
    "  turns, status, title, metadata and usage; --step waits for Enter between events when\n"
    "  stdin is a terminal (q Enter stops); --json: {\"event\", \"state\"} a line, the state\n"
    "  being the summary right after the event\n";

/* Wait for Enter on a terminal; false when the user typed q. */
static bool step_wait(void)
{
	if (!isatty(0))
		return true;
	fputs("-- Enter: next, q: quit -- ", stderr);
	char line[64];
	return fgets(line, sizeof(line), stdin) && line[0] != 'q';
}

static int replay_events(const ctl *c, cs_store *s, const char *conv, cs_event_page *evs,
			 State *prev, bool step)
{
	int rc = CTL_OK;
	for (size_t i = 0; i < evs->n && !rc; i++) {
		const Event *e = evs->events[i];
		State *cur = NULL;
		if ((rc = summary_at(&cur, c, s, conv, e->version)))
			break;
		if (c->json) {
			rc = print_json_pair(c, "event", e, "state", cur);
		} else {
			ctl_print_event(stdout, e);
			print_effect(e);
			print_changes(prev, cur);
		}
		protobuf_c_message_free_unpacked(&prev->base, NULL);
		prev = cur;
		fflush(stdout);
		if (step && i + 1 < evs->n && !step_wait())
			break;
	}
	protobuf_c_message_free_unpacked(&prev->base, NULL);
	return rc;
}

int ctl_cmd_replay(ctl *c, int argc, char **argv)
{
	const char *from_s = NULL, *to_s = NULL;
	bool step = false;
	const ctl_flag flags[] = {
	    {"from", &from_s, NULL}, {"to", &to_s, NULL}, {"step", NULL, &step}, {NULL}};
	c->usage = replay_usage;
	uint64_t from = 1, to = 0;
	int rc = ctl_parse(c, argc, argv, flags, 1, 1);
	if (rc >= 0)
		return rc;
	if (!ctl_u64(c, from_s, "--from", &from) || !ctl_u64(c, to_s, "--to", &to))
		return CTL_USAGE;
	if (from == 0 || (to && to < from))
		return ctl_usage(c, "want 1 <= --from <= --to");
	cs_store *s;
	if ((rc = ctl_open(&s, c, false)))
		return rc;
	const char *conv = c->args[0];
	cs_event_page evs = {0};
	State *prev = NULL;
	rc = read_events(&evs, c, s, conv, from, to);
	if (!rc && evs.n == 0)
		rc = ctl_fail(c, "no events of \"%s\" from version %" PRIu64, conv, from);
	if (!rc)
		rc = summary_at(&prev, c, s, conv, evs.events[0]->version - 1);
	if (!rc)
		rc = replay_events(c, s, conv, &evs, prev, step);
	cs_event_page_deinit(&evs);
	cs_store_close(s);
	return rc;
}

/* ---- diff -------------------------------------------------------------------------------- */

static const char diff_usage[] =
    "usage: convctl diff CONV A B [--data DIR] [--tenant T] [--json]\n"
    "       convctl diff CONV1 CONV2 [--data DIR] [--tenant T] [--json]\n"
    "  two versions of one conversation: the events after A up to B and what they changed;\n"
    "  two conversations (a fork and its parent, or two forks): the versions they share,\n"
    "  each one's events after that, and how their states differ\n";

static void print_events(const cs_event_page *evs, size_t from)
{
	for (size_t i = from; i < evs->n; i++) {
		fputs("  ", stdout);
		ctl_print_event(stdout, evs->events[i]);
	}
}

static int diff_versions(const ctl *c, cs_store *s, const char *conv, uint64_t a, uint64_t b)
{
	State *x = NULL, *y = NULL;
	cs_event_page evs = {0};
	int rc = summary_at(&x, c, s, conv, a);
	if (!rc)
		rc = summary_at(&y, c, s, conv, b);
	if (!rc && b > a)
		rc = read_events(&evs, c, s, conv, a + 1, b);
	if (!rc && c->json) {
		rc = print_json_pair(c, "from", x, "to", y);
		for (size_t i = 0; i < evs.n && !rc; i++)
			rc = ctl_print_json(c, evs.events[i]);
	} else if (!rc) {
		printf("%s from version %" PRIu64 " to %" PRIu64 ": %zu events\n", conv, a, b,
		       evs.n);
		print_events(&evs, 0);
		for (size_t i = 0; i < evs.n; i++)
			print_effect(evs.events[i]);
		print_changes(x, y);
	}
	cs_event_page_deinit(&evs);
	if (x)
		protobuf_c_message_free_unpacked(&x->base, NULL);
	if (y)
		protobuf_c_message_free_unpacked(&y->base, NULL);
	return rc;
}

static int diff_branches(const ctl *c, cs_store *s, const char *a, const char *b)
{
	cs_event_page ea = {0}, eb = {0};
	State *x = NULL, *y = NULL;
	int rc = read_events(&ea, c, s, a, 1, 0);
	if (!rc)
		rc = read_events(&eb, c, s, b, 1, 0);
	if (!rc)
		rc = summary_at(&x, c, s, a, ea.n ? ea.events[ea.n - 1]->version : 0);
	if (!rc)
		rc = summary_at(&y, c, s, b, eb.n ? eb.events[eb.n - 1]->version : 0);
	size_t k = 0;
	while (!rc && k < ea.n && k < eb.n && ea.events[k]->position == eb.events[k]->position)
		k++;
	if (!rc && c->json) {
		printf("{\"common_version\": %zu, \"a\": \"%s\", \"a_version\": %zu, \"b\": "
		       "\"%s\", \"b_version\": %zu}\n",
		       k, a, ea.n, b, eb.n);
		rc = print_json_pair(c, "a_state", x, "b_state", y);
	} else if (!rc) {
		printf("%s and %s share versions 1..%zu%s\n", a, b, k, k ? "" : " (none)");
		printf("%s after %zu: %zu events\n", a, k, ea.n - k);
		print_events(&ea, k);
		printf("%s after %zu: %zu events\n", b, k, eb.n - k);
		print_events(&eb, k);
		printf("state of %s -> state of %s:\n", a, b);
		print_changes(x, y);
	}
	cs_event_page_deinit(&ea);
	cs_event_page_deinit(&eb);
	if (x)
		protobuf_c_message_free_unpacked(&x->base, NULL);
	if (y)
		protobuf_c_message_free_unpacked(&y->base, NULL);
	return rc;
}

int ctl_cmd_diff(ctl *c, int argc, char **argv)
{
	c->usage = diff_usage;
	int rc = ctl_parse(c, argc, argv, NULL, 2, 3);
	if (rc >= 0)
		return rc;
	uint64_t a = 0, b = 0;
	if (c->n_args == 3 &&
	    (!ctl_u64(c, c->args[1], "A", &a) || !ctl_u64(c, c->args[2], "B", &b)))
		return CTL_USAGE;
	if (c->n_args == 3 && (a > b || b == 0))
		return ctl_usage(c, "want versions A <= B, B at least 1");
	cs_store *s;
	if ((rc = ctl_open(&s, c, false)))
		return rc;
	rc = c->n_args == 3 ? diff_versions(c, s, c->args[0], a, b)
			    : diff_branches(c, s, c->args[0], c->args[1]);
	cs_store_close(s);
	return rc;
}
