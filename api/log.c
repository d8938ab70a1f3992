/*
 * log.c - structured logs: one JSON object a line on stderr, written with one stdio call so
 * that lines from different threads never interleave. Every request gets exactly one line (from
 * server.c's completion callback), with the error message when it failed; server events (start,
 * drain, failures outside a request) use cs_log().
 *
 * Levels: request lines are "info" (2xx/3xx), "warn" (4xx) or "error" (5xx); --log-level drops
 * what is below it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "server.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

uint64_t cs_us_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t us =
	    (int64_t)(now.tv_sec - start->tv_sec) * 1000000 + (now.tv_nsec - start->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

static void timestamp(char out[32])
{
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03ldZ", now.tv_nsec / 1000000);
}

static bool level_on(const cs_server *srv, enum cs_log_level level)
{
	return !srv || level <= srv->cfg.log_level;
}

/* Write @o (taken over) as one line at @level. */
static void emit(enum cs_log_level level, json_t *o)
{
	if (!o)
		return;
	char ts[32];
	timestamp(ts);
	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "level", json_string(level_names[level]));
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	if (text)
		fprintf(stderr, "%s\n", text);
	free(text);
	json_decref(o);
}

/* Add @value as a string unless it is empty; bytes that are not UTF-8 become '?'. */
static void set_text(json_t *o, const char *key, const char *value)
{
	if (!value || !*value)
		return;
	json_t *s = json_string(value);
	if (!s) {
		char safe[256];
		size_t n = 0;
		for (const char *p = value; *p && n + 1 < sizeof(safe); p++)
			safe[n++] = (*p & 0x80) ? '?' : *p;
		safe[n] = '\0';
		s = json_string(safe);
	}
	json_object_set_new(o, key, s);
}

void cs_log(const cs_server *srv, enum cs_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (!level_on(srv, level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *o = json_object();
	if (o)
		set_text(o, "msg", msg);
	emit(level, o);
}

void cs_log_request(const cs_req *r, uint64_t us)
{
	enum cs_log_level level = r->status >= 500   ? CS_LOG_ERROR
				  : r->status >= 400 ? CS_LOG_WARN
						     : CS_LOG_INFO;
	json_t *o = level_on(r->srv, level) ? json_object() : NULL;
	if (!o)
		return;
	set_text(o, "msg", "request");
	set_text(o, "method", r->method);
	set_text(o, "route", r->route == CS_ROUTE_NONE ? "unmatched" : cs_routes[r->route].path);
	json_object_set_new(o, "status", json_integer(r->status));
	json_object_set_new(o, "duration_us", json_integer((json_int_t)us));
	set_text(o, "tenant", r->tenant);
	set_text(o, "conversation", r->id);
	set_text(o, "trace_id", r->trace_id);
	if (r->status >= 400)
		set_text(o, "error", r->error);
	emit(level, o);
}
