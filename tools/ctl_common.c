/*
 * ctl_common.c - the parts of convctl every command uses (ctl.h): one flag parser driven by
 * each command's table (so no command has its own getopt loop), the messages and exit codes,
 * opening the store, the progress bar, and the one readable line an event prints as.
 *
 * The progress bar is drawn on stderr only when stderr is a terminal, at most ten times a
 * second, and erased at the end, so that scripts and tests see nothing of it.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "convstore/pbjson.h"
#include "ctl.h"

#define CTL_MAX_FLAGS 32

/* The flags every command takes. */
enum { G_DATA, G_URL, G_TOKEN, G_TENANT, G_JSON, G_HELP, G_COUNT };

int ctl_parse(ctl *c, int argc, char **argv, const ctl_flag *flags, int min, int max)
{
	struct option opts[CTL_MAX_FLAGS + G_COUNT + 1] = {
	    {"data", required_argument, NULL, 0},  {"url", required_argument, NULL, 0},
	    {"token", required_argument, NULL, 0}, {"tenant", required_argument, NULL, 0},
	    {"json", no_argument, NULL, 0},	   {"help", no_argument, NULL, 0}};
	size_t n = G_COUNT;
	for (size_t i = 0; flags && flags[i].name && n < CTL_MAX_FLAGS + G_COUNT; i++, n++)
		opts[n] = (struct option){
		    flags[i].name, flags[i].value ? required_argument : no_argument, NULL, 0};
	bool help = false;
	int idx, ch;
	optind = 0; /* glibc: start afresh, argv[0] is the command */
	opterr = 0;
	while ((ch = getopt_long_only(argc, argv, "", opts, &idx)) != -1) {
		if (ch != 0)
			return ctl_usage(c, "bad flag \"%s\"", argv[optind - 1]);
		switch (idx) {
		case G_DATA: c->data = optarg; break;
		case G_URL: c->url = optarg; break;
		case G_TOKEN: c->token = optarg; break;
		case G_TENANT: c->tenant = optarg; break;
		case G_JSON: c->json = true; break;
		case G_HELP: help = true; break;
		default:
			if (flags[idx - G_COUNT].value)
				*flags[idx - G_COUNT].value = optarg;
			else
				*flags[idx - G_COUNT].set = true;
		}
	}
	if (help) {
		fputs(c->usage, stdout);
		return CTL_OK;
	}
	c->args = argv + optind;
	c->n_args = argc - optind;
	if (c->n_args < min || c->n_args > max)
		return ctl_usage(c, c->n_args < min ? "missing arguments" : "too many arguments");
	if (!cs_id_valid(c->tenant))
		return ctl_usage(c, "tenant \"%s\" is not a valid id", c->tenant);
	return -1;
}

static void say(const ctl *c, const char *fmt, va_list ap)
{
	fprintf(stderr, "convctl: %s: ", c->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int ctl_usage(const ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(c, fmt, ap);
	va_end(ap);
	fputs(c->usage, stderr);
	return CTL_USAGE;
}

int ctl_fail(const ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(c, fmt, ap);
	va_end(ap);
	return CTL_FAIL;
}

bool ctl_u64(const ctl *c, const char *s, const char *what, uint64_t *out)
{
	if (!s)
		return true;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno) {
		ctl_usage(c, "%s \"%s\" is not a number", what, s);
		return false;
	}
	*out = v;
	return true;
}

int ctl_open(cs_store **out, const ctl *c, bool write)
{
	*out = NULL;
	if (c->url)
		return ctl_usage(c, "works on a store (--data), not over --url");
	cs_error err = CS_ERROR_INIT;
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = c->data;
	o.read_only = !write;
	if (cs_store_open(out, &o, &err) != CS_OK)
		return ctl_fail(c, "%s: %s", c->data, err.msg);
	return CTL_OK;
}

/* ---- progress ---------------------------------------------------------------------------- */

double ctl_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void ctl_progress_start(ctl_progress *p, const char *what, uint64_t total)
{
	*p = (ctl_progress){.on = isatty(2) == 1, .what = what, .total = total};
	p->start = p->shown = ctl_now();
}

void ctl_progress_add(ctl_progress *p, uint64_t n, uint64_t bytes)
{
	p->done += n;
	p->bytes += bytes;
	double now = ctl_now();
	if (!p->on || now - p->shown < 0.1)
		return;
	p->shown = now;
	double frac = p->total ? (double)p->done / (double)p->total : 0;
	if (frac > 1)
		frac = 1;
	char bar[31];
	size_t fill = (size_t)(frac * 30);
	for (size_t i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	double rate = (double)p->done / (now - p->start);
	fprintf(stderr, "\r%s [%s] %3.0f%% %" PRIu64 "/%" PRIu64 ", %.0f/s ", p->what, bar,
		100 * frac, p->done, p->total, rate);
}

void ctl_progress_to(void *ctx, uint64_t done, uint64_t total)
{
	ctl_progress *p = ctx;
	p->total = total;
	ctl_progress_add(p, done > p->done ? done - p->done : 0, 0);
}

void ctl_progress_end(ctl_progress *p)
{
	if (p->on && p->shown > p->start)
		fputs("\r\033[K", stderr);
}

/* ---- printing ---------------------------------------------------------------------------- */

int ctl_print_json(const ctl *c, const void *msg)
{
	cs_error err = CS_ERROR_INIT;
	char *text = cs_json_encode_text(msg, CS_JSON_NULL_OPTIONAL, &err);
	if (!text)
		return ctl_fail(c, "json: %s", err.msg);
	puts(text);
	free(text);
	return CTL_OK;
}

const char *ctl_time(char buf[40], const Convstore__V1__Timestamp *t)
{
	if (!t)
		return "-";
	time_t secs = (time_t)t->seconds;
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 40 - n, ".%06dZ", t->nanos / 1000);
	return buf;
}

void ctl_print_short(FILE *f, const char *s, size_t max)
{
	size_t n = 0;
	for (; s && s[n] && n < max; n++)
		fputc(s[n] == '\n' || s[n] == '\r' || s[n] == '\t' ? ' ' : s[n], f);
	if (s && s[n])
		fputs("...", f);
}

static void print_payload(FILE *f, const Convstore__V1__Event *e)
{
	switch (e->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE:
		fprintf(f, "%s: ", e->message->role);
		ctl_print_short(f, e->message->content, 100);
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE: {
		const Convstore__V1__ModelResponse *r = e->model_response;
		fprintf(f, "%s: ", *r->model ? r->model : "assistant");
		if (r->content_opt_case)
			ctl_print_short(f, r->content, 100);
		for (size_t i = 0; i < r->n_tool_calls; i++)
			fprintf(f, "%s%s(%s)", i ? ", " : " calls ", r->tool_calls[i]->name,
				r->tool_calls[i]->id);
		break;
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL:
		fprintf(f, "%s(%s)", e->tool_call->name, e->tool_call->id);
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT:
		fprintf(f, "%s%s: ", e->tool_result->call_id,
			e->tool_result->is_error ? " (error)" : "");
		ctl_print_short(f, e->tool_result->output, 100);
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED:
		fprintf(f, "from %s at %" PRIu64, e->conversation_forked->parent_id,
			e->conversation_forked->parent_version);
		break;
	default: break;
	}
}

void ctl_print_event(FILE *f, const Convstore__V1__Event *e)
{
	char t[40];
	/* the API leaves the tenant out: a client sees only its own */
	fprintf(f, "#%" PRIu64 " @%" PRIu64 " %s%s%s %s %s  ", e->version, e->position, e->tenant,
		*e->tenant ? "/" : "", e->conversation_id, *e->type ? e->type : "?",
		ctl_time(t, e->recorded_at));
	print_payload(f, e);
	fputc('\n', f);
}
