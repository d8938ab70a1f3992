/*
 * log.c - structured logs: one JSON object a line on stderr, written with one call so that
 * lines from different threads never interleave. Every request gets exactly one line (from
 * server.c's completion callback), with the error message when it failed; server events (start,
 * drain, failures outside a request) use cs_log().
 *
 * Levels: request lines are "info" (2xx/3xx), "warn" (4xx) or "error" (5xx); --log-level drops
 * what is below it before anything is formatted.
 *
 * A line is formatted here into a stack buffer rather than built as a Jansson object: this runs
 * once per request, and the object, its hash table and the generic dump cost more than the
 * request's own JSON response. The values are few and known: strings are escaped for JSON
 * (quote, backslash, control characters), kept as they are when they are UTF-8, and their
 * bytes above 0x7f become '?' when they are not; a line that would not fit is cut short at a
 * value boundary and stays valid JSON.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server.h"

#define LINE_MAX_BYTES 4096

static const char *const level_names[] = {"error", "warn", "info", "debug"};

uint64_t cs_us_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t us =
	    (int64_t)(now.tv_sec - start->tv_sec) * 1000000 + (now.tv_nsec - start->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

/* One log line being written: {"ts":…,"level":…, then the fields. */
typedef struct log_line {
	char buf[LINE_MAX_BYTES];
	size_t len;
} log_line;

static bool level_on(const cs_server *srv, enum cs_log_level level)
{
	return !srv || level <= srv->cfg.log_level;
}

/* Append @n bytes if they fit with room left for the closing "}\n"; false when they do not. */
static bool put(log_line *l, const char *s, size_t n)
{
	if (n > sizeof(l->buf) - 3 - l->len)
		return false;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return true;
}

/* @s as a JSON string body into @out (at least 6 * strlen(@s) + 1 bytes); its length. */
static size_t escape(char *out, const char *s)
{
	bool utf8 = cs_utf8_valid(s, strlen(s));
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			out[n++] = '\\';
			out[n++] = (char)*p;
		} else if (*p < 0x20) {
			n += (size_t)sprintf(out + n, "\\u%04x", *p);
		} else {
			out[n++] = *p >= 0x80 && !utf8 ? '?' : (char)*p;
		}
	}
	return n;
}

/* ,"key":"value" unless @value is NULL or empty (or the line is full). */
static void put_text(log_line *l, const char *key, const char *value)
{
	char esc[6 * 512 + 1];
	if (!value || !*value)
		return;
	size_t klen = strlen(key), vlen = strnlen(value, 512), start = l->len;
	char v[513];
	memcpy(v, value, vlen);
	v[vlen] = '\0';
	size_t elen = escape(esc, v);
	if (!put(l, ",\"", 2) || !put(l, key, klen) || !put(l, "\":\"", 3) || !put(l, esc, elen) ||
	    !put(l, "\"", 1))
		l->len = start; /* leave the whole pair out */
}

/* ,"key":N */
static void put_uint(log_line *l, const char *key, uint64_t value)
{
	char num[48];
	int n = snprintf(num, sizeof(num), ",\"%s\":%llu", key, (unsigned long long)value);
	put(l, num, (size_t)n);
}

/* Start @l with the time and @level. */
static void line_start(log_line *l, enum cs_log_level level)
{
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	int n = snprintf(l->buf, sizeof(l->buf),
			 "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\"",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, now.tv_nsec / 1000000, level_names[level]);
	l->len = (size_t)n;
}

static void line_end(log_line *l)
{
	l->buf[l->len++] = '}';
	l->buf[l->len++] = '\n';
	fwrite(l->buf, 1, l->len, stderr);
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
	log_line l;
	line_start(&l, level);
	put_text(&l, "msg", msg);
	line_end(&l);
}

void cs_log_request(const cs_req *r, uint64_t us)
{
	enum cs_log_level level = r->status >= 500   ? CS_LOG_ERROR
				  : r->status >= 400 ? CS_LOG_WARN
						     : CS_LOG_INFO;
	if (!level_on(r->srv, level))
		return;
	log_line l;
	line_start(&l, level);
	put_text(&l, "msg", "request");
	put_text(&l, "method", r->method);
	put_text(&l, "route", r->route == CS_ROUTE_NONE ? "unmatched" : cs_routes[r->route].path);
	put_uint(&l, "status", r->status);
	put_uint(&l, "duration_us", us);
	put_text(&l, "tenant", r->tenant);
	put_text(&l, "conversation", r->id);
	put_text(&l, "trace_id", r->trace_id);
	if (r->status >= 400)
		put_text(&l, "error", r->error);
	line_end(&l);
}
