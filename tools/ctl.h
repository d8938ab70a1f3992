/*
 * ctl.h - what convctl's commands share: the command line (global and per-command flags, parsed
 * by one function from a table), the exit codes, opening the store, the progress bar, printing
 * events and views, and the HTTP side (--url). Each tools/ctl_*.c file holds a group of commands;
 * tools/convctl.c dispatches to them.
 *
 * Conventions every command keeps: exit 0 when all went well, 1 when something failed or a
 * problem was found, 2 on a usage error; messages go to stderr as "convctl: COMMAND: ..."; with
 * --json, stdout is JSON only (one object, or one object a line for lists and streams).
 */
#ifndef CONVSTORE_TOOLS_CTL_H
#define CONVSTORE_TOOLS_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "convstore/store.h"

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

typedef struct ctl {
	const char *data;   /* --data DIR (default ./convstore-data) */
	const char *url;    /* --url URL: talk to a server instead */
	const char *token;  /* --token, or $CONVSTORE_TOKEN */
	const char *tenant; /* --tenant (store access only; a server knows it from the token) */
	bool json;
	const char *name;  /* the command */
	const char *usage; /* its --help text */
	char **args;	   /* its positional arguments */
	int n_args;
} ctl;

/* A command's own flag: with an argument (@value is set to it) or without (@set). */
typedef struct ctl_flag {
	const char *name;
	const char **value;
	bool *set;
} ctl_flag;

/*
 * Parse a command's argv (argv[0] is the command): the global flags, @flags (ending with a
 * {NULL} entry; NULL: none) and between @min and @max positional arguments.
 * @return -1 to go on; otherwise the exit code (0 after --help, 2 after a usage error).
 */
int ctl_parse(ctl *c, int argc, char **argv, const ctl_flag *flags, int min, int max);
/* "convctl: CMD: <message>" and the command's usage on stderr; returns CTL_USAGE. */
int ctl_usage(const ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "convctl: CMD: <message>" on stderr; returns CTL_FAIL. */
int ctl_fail(const ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A decimal number flag (@s NULL: @out unchanged). false after a usage message. */
bool ctl_u64(const ctl *c, const char *s, const char *what, uint64_t *out);
/* Open the store in --data: read-only unless @write (which creates it when missing).
 * CTL_OK or CTL_FAIL (with a message); refuses --url (CTL_USAGE) for commands without HTTP. */
int ctl_open(cs_store **out, const ctl *c, bool write);

/* ---- progress on stderr when it is a terminal -------------------------------------------- */

typedef struct ctl_progress {
	bool on;
	const char *what;
	uint64_t total, done, bytes;
	double start, shown;
} ctl_progress;

double ctl_now(void); /* seconds, monotonic */
void ctl_progress_start(ctl_progress *p, const char *what, uint64_t total);
void ctl_progress_add(ctl_progress *p, uint64_t n, uint64_t bytes);
/* A cs_progress_fn: @ctx is a ctl_progress, told the store call's absolute progress. */
void ctl_progress_to(void *ctx, uint64_t done, uint64_t total);
void ctl_progress_end(ctl_progress *p);

/* ---- printing ---------------------------------------------------------------------------- */

/* @msg as one line of JSON on stdout (nulls for unset optional fields). CTL_OK or CTL_FAIL. */
int ctl_print_json(const ctl *c, const void *msg);
/* One readable line for an event: "#version @position [tenant/]conversation type recorded_at
 * summary". */
void ctl_print_event(FILE *f, const Convstore__V1__Event *e);
/* RFC 3339 text of a timestamp ("-" when unset). */
const char *ctl_time(char buf[40], const Convstore__V1__Timestamp *t);
/* At most @max bytes of @s on one line (newlines shown as spaces, "..." when cut). */
void ctl_print_short(FILE *f, const char *s, size_t max);

/* ---- HTTP (--url) ------------------------------------------------------------------------ */

/* GET @path (with --token) asking for protobuf, and unpack the body as @desc. CTL_OK; CTL_FAIL
 * with the server's error message (or the connection's). */
int ctl_http_get(void **out, const ctl *c, const char *path,
		 const ProtobufCMessageDescriptor *desc);
/* Host and port of --url (http://HOST:PORT, HOST numeric IPv4 or localhost). */
bool ctl_url_parse(const char *url, char host[64], unsigned *port);
/* The Authorization header line for --token ("" without one), in @buf. */
const char *ctl_auth_header(const ctl *c, char *buf, size_t size);

/* ---- commands ---------------------------------------------------------------------------- */

typedef int (*ctl_cmd)(ctl *c, int argc, char **argv);

int ctl_cmd_stats(ctl *c, int argc, char **argv);
int ctl_cmd_ls(ctl *c, int argc, char **argv);
int ctl_cmd_show(ctl *c, int argc, char **argv);
int ctl_cmd_events(ctl *c, int argc, char **argv);
int ctl_cmd_messages(ctl *c, int argc, char **argv);
int ctl_cmd_replay(ctl *c, int argc, char **argv);
int ctl_cmd_diff(ctl *c, int argc, char **argv);
int ctl_cmd_export(ctl *c, int argc, char **argv);
int ctl_cmd_import(ctl *c, int argc, char **argv);
int ctl_cmd_import_openai(ctl *c, int argc, char **argv);
int ctl_cmd_verify(ctl *c, int argc, char **argv);
int ctl_cmd_rebuild(ctl *c, int argc, char **argv);
int ctl_cmd_compact(ctl *c, int argc, char **argv);
int ctl_cmd_tail(ctl *c, int argc, char **argv);

#endif
