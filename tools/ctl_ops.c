/*
 * ctl_ops.c - the operator's commands on a store: verify (read-only; every problem with its
 * position), rebuild (every projection from the events, in the store's writer) and compact (a
 * compacted copy through LMDB's own copy, from one read snapshot, so it runs beside a server).
 */
#include <inttypes.h>

#include "ctl.h"

static const char verify_usage[] =
    "usage: convctl verify [--data DIR] [--json]\n"
    "  check every record's CRC, the indexes against the log, the id index, every head and\n"
    "  every projection (snapshots, list, usage rollups, fork links) against a fresh fold;\n"
    "  prints each problem with its position and exits 1 when there is any\n";

typedef struct verify_out {
	ctl_progress progress; /* first: the hooks' ctx is also a ctl_progress */
	const ctl *c;
	uint64_t shown;
} verify_out;

static void on_problem(void *ctx, uint64_t position, const char *problem)
{
	verify_out *o = ctx;
	if (o->progress.on) /* the line under the bar */
		fputs("\r\033[K", stderr);
	if (o->c->json)
		printf("%s{\"position\": %" PRIu64 ", \"problem\": \"", o->shown ? ", " : "",
		       position);
	else
		printf("problem at position %" PRIu64 ": ", position);
	for (const char *p = problem; *p; p++) /* messages are plain text; quote what JSON needs */
		printf(o->c->json && (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
	printf(o->c->json ? "\"}" : "\n");
	o->shown++;
}

int ctl_cmd_verify(ctl *c, int argc, char **argv)
{
	c->usage = verify_usage;
	int rc = ctl_parse(c, argc, argv, NULL, 0, 0);
	cs_store *s;
	if (rc >= 0 || (rc = ctl_open(&s, c, false)))
		return rc;
	cs_verify_report rep;
	cs_error err = CS_ERROR_INIT;
	verify_out out = {.c = c};
	ctl_progress_start(&out.progress, "verify", 0);
	cs_verify_hooks hooks = {on_problem, ctl_progress_to, &out};
	double t0 = ctl_now();
	if (c->json)
		printf("{\"problem_list\": [");
	rc = cs_store_verify_each(&rep, s, &hooks, &err);
	ctl_progress_end(&out.progress);
	double secs = ctl_now() - t0;
	cs_store_close(s);
	if (c->json)
		printf("], \"records\": %" PRIu64 ", \"problems\": %" PRIu64
		       ", \"first_bad_position\": %" PRIu64 ", \"seconds\": %.3f}\n",
		       rep.records, rep.problems, rep.first_bad_position, secs);
	else
		printf("%" PRIu64 " records checked, %" PRIu64 " problems\n", rep.records,
		       rep.problems);
	if (rc == CS_ECORRUPT)
		return ctl_fail(c, "%" PRIu64 " problems, the first at position %" PRIu64 ": %s",
				rep.problems, rep.first_bad_position, err.msg);
	return rc ? ctl_fail(c, "%s", err.msg) : CTL_OK;
}

static const char rebuild_usage[] =
    "usage: convctl rebuild [--data DIR] [--json]\n"
    "  recompute every projection (heads, snapshots, list, usage rollups, fork links, the\n"
    "  retention index) from the events, in one transaction, and say how many records\n"
    "  differed from what appends had maintained (0 on a healthy store). Appends wait while it\n"
    "  runs; run it with the server stopped (one process writes a store)\n";

int ctl_cmd_rebuild(ctl *c, int argc, char **argv)
{
	c->usage = rebuild_usage;
	int rc = ctl_parse(c, argc, argv, NULL, 0, 0);
	cs_store *s;
	if (rc >= 0 || (rc = ctl_open(&s, c, true)))
		return rc;
	cs_rebuild_report rep = {0};
	cs_error err = CS_ERROR_INIT;
	double t0 = ctl_now();
	ctl_progress pr;
	ctl_progress_start(&pr, "rebuild", 0);
	rc = cs_store_rebuild_each(&rep, s, ctl_progress_to, &pr, &err);
	ctl_progress_end(&pr);
	double secs = ctl_now() - t0;
	cs_store_close(s);
	if (rc)
		return ctl_fail(c, "%s", err.msg);
	if (c->json)
		printf("{\"conversations\": %" PRIu64 ", \"events\": %" PRIu64
		       ", \"differences\": %" PRIu64 ", \"seconds\": %.3f}\n",
		       rep.conversations, rep.events, rep.differences, secs);
	else
		printf("%" PRIu64 " conversations rebuilt from %" PRIu64 " events, %" PRIu64
		       " records differed (%.2f s)\n",
		       rep.conversations, rep.events, rep.differences, secs);
	return CTL_OK;
}

static const char compact_usage[] =
    "usage: convctl compact -o DIR [--data DIR]\n"
    "  write a compacted copy of the store into the new folder DIR (free pages left out, so\n"
    "  erased content that LMDB had not reused is gone from the copy); the store is only read,\n"
    "  and a running server may go on writing (the copy is one snapshot)\n";

int ctl_cmd_compact(ctl *c, int argc, char **argv)
{
	const char *out = NULL;
	const ctl_flag flags[] = {{"output", &out, NULL}, {"o", &out, NULL}, {NULL}};
	c->usage = compact_usage;
	int rc = ctl_parse(c, argc, argv, flags, 0, 0);
	if (rc >= 0)
		return rc;
	if (!out)
		return ctl_usage(c, "-o DIR is required");
	cs_store *s;
	if ((rc = ctl_open(&s, c, false)))
		return rc;
	cs_error err = CS_ERROR_INIT;
	rc = cs_store_copy(s, out, &err);
	cs_store_close(s);
	if (rc)
		return ctl_fail(c, "%s", err.msg);
	if (!c->json)
		printf("compacted copy written to %s\n", out);
	return CTL_OK;
}
