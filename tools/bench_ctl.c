/*
 * bench_ctl - convctl's throughput on a big store: export, import into an empty store, verify
 * and rebuild, each as the real command (the convctl binary, run with --json, which reports its
 * own event count, bytes and seconds), on a store of --events events (default 1,000,000) built
 * first through the store's public API with no_sync (building is not what is measured).
 *
 * The store: --conversations conversations (default 10,000) of equal length, each turn a user
 * message of about 200 bytes and a model response of about 200 bytes with token usage and cost,
 * appended 100 events a call from two threads, so the log interleaves conversations in batches
 * as a server's would. Import is durable (convctl's default); it commits up to 10,000 events
 * per transaction through cs_store_apply.
 *
 * MB/s: export and import count the uncompressed bytes of the delimited stream (what the gzip
 * stream inflates to); verify and rebuild count the store's map in use. Not run by the test
 * suite; `--events 20000` is a quick look.
 *
 *   build/tools/bench_ctl --convctl build/tools/convctl [--events N] [--conversations N]
 *                         [--dir DIR]
 */
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convstore/store.h"

static struct {
	const char *convctl;
	uint64_t events;
	uint64_t conversations;
	char dir[PATH_MAX];
} cfg = {NULL, 1000000, 10000, ""};

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb, (void)type, (void)ftw;
	return remove(path);
}

/* ---- building the store ------------------------------------------------------------------ */

typedef struct builder {
	cs_store *s;
	uint64_t first, step; /* conversations first, first + step, ... */
	int rc;
} builder;

#define BATCH 100

static const char prose[] = "The flight from New York to Seattle on May 20th leaves at 11:05 "
			    "and arrives at 14:10; the fare class is economy, one bag included, "
			    "and the certificate covers two hundred dollars of the total fare.";

static void *build_thread(void *arg)
{
	builder *b = arg;
	uint64_t per = cfg.events / cfg.conversations;
	Convstore__V1__Message msg[BATCH];
	Convstore__V1__ModelResponse mr[BATCH];
	Convstore__V1__Usage usage = CONVSTORE__V1__USAGE__INIT;
	Convstore__V1__Event ev[BATCH], *evs[BATCH];
	usage.input_tokens = 812;
	usage.output_tokens = 64;
	for (int i = 0; i < BATCH; i++) {
		convstore__v1__event__init(&ev[i]);
		evs[i] = &ev[i];
		if (i % 2 == 0) {
			convstore__v1__message__init(&msg[i]);
			msg[i].role = "user";
			msg[i].content = (char *)prose;
			ev[i].payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE;
			ev[i].message = &msg[i];
		} else {
			convstore__v1__model_response__init(&mr[i]);
			mr[i].model = "gpt-4o";
			mr[i].content_opt_case = CONVSTORE__V1__MODEL_RESPONSE__CONTENT_OPT_CONTENT;
			mr[i].content = (char *)prose;
			mr[i].usage = &usage;
			mr[i].cost_usd = 0.0025;
			ev[i].payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE;
			ev[i].model_response = &mr[i];
		}
	}
	for (uint64_t c = b->first; c < cfg.conversations && !b->rc; c += b->step) {
		char id[32];
		snprintf(id, sizeof(id), "conv-%06llu", (unsigned long long)c);
		for (uint64_t done = 0; done < per && !b->rc; done += BATCH) {
			size_t n = per - done < BATCH ? (size_t)(per - done) : BATCH;
			cs_error err = CS_ERROR_INIT;
			b->rc =
			    cs_store_append(NULL, b->s, "bench", id, CS_ANY_VERSION, evs, n, &err);
			if (b->rc)
				fprintf(stderr, "bench_ctl: append: %s\n", err.msg);
		}
	}
	return NULL;
}

static int build(const char *path)
{
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = path;
	o.no_sync = true;
	cs_store *s;
	cs_error err = CS_ERROR_INIT;
	if (cs_store_open(&s, &o, &err)) {
		fprintf(stderr, "bench_ctl: %s: %s\n", path, err.msg);
		return 1;
	}
	builder b[2] = {{s, 0, 2, 0}, {s, 1, 2, 0}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, build_thread, &b[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cs_store_close(s);
	return b[0].rc || b[1].rc;
}

/* ---- running convctl --------------------------------------------------------------------- */

/* Run `convctl --json ARGS` and parse its one JSON line; NULL on failure. */
static json_t *convctl_json(const char *args)
{
	char cmd[PATH_MAX * 4];
	snprintf(cmd, sizeof(cmd), "%s --json %s", cfg.convctl, args);
	FILE *p = popen(cmd, "r");
	char line[65536] = "";
	if (!p || !fgets(line, sizeof(line), p)) {
		if (p)
			pclose(p);
		fprintf(stderr, "bench_ctl: %s: no output\n", cmd);
		return NULL;
	}
	int status = pclose(p);
	json_t *j = json_loads(line, 0, NULL);
	if (status != 0 || !j)
		fprintf(stderr, "bench_ctl: %s: exit %d\n", cmd, status);
	return status == 0 ? j : NULL;
}

static double num(const json_t *j, const char *key)
{
	return json_number_value(json_object_get(j, key));
}

static void row(const char *what, double events, double bytes, double secs)
{
	printf("| %-32s | %11.0f | %9.2f s | %12.0f | %8.1f |\n", what, events, secs, events / secs,
	       bytes / secs / 1e6);
}

static int usage(void)
{
	fprintf(stderr, "usage: bench_ctl --convctl PATH [--events N] [--conversations N] "
			"[--dir DIR]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *base = "/tmp";
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--convctl"))
			cfg.convctl = argv[i + 1];
		else if (!strcmp(argv[i], "--events"))
			cfg.events = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--conversations"))
			cfg.conversations = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--dir"))
			base = argv[i + 1];
		else
			return usage();
	}
	if (!cfg.convctl || argc % 2 == 0 || !cfg.conversations || cfg.events < cfg.conversations)
		return usage();
	snprintf(cfg.dir, sizeof(cfg.dir), "%s/bench-ctl-XXXXXX", base);
	if (!mkdtemp(cfg.dir)) {
		perror("bench_ctl: mkdtemp");
		return 1;
	}
	char src[PATH_MAX + 8], dst[PATH_MAX + 8], file[PATH_MAX + 16], args[PATH_MAX * 3];
	snprintf(src, sizeof(src), "%s/src", cfg.dir);
	snprintf(dst, sizeof(dst), "%s/dst", cfg.dir);
	snprintf(file, sizeof(file), "%s/export.gz", cfg.dir);
	printf("building %llu events in %llu conversations (no_sync)...\n",
	       (unsigned long long)cfg.events, (unsigned long long)cfg.conversations);
	fflush(stdout);
	int rc = build(src);
	json_t *ex = NULL, *im = NULL, *ve = NULL, *re = NULL, *st = NULL;
	if (!rc) {
		snprintf(args, sizeof(args), "--data %s export -o %s", src, file);
		ex = convctl_json(args);
		snprintf(args, sizeof(args), "--data %s import %s", dst, file);
		im = convctl_json(args);
		snprintf(args, sizeof(args), "--data %s stats", dst);
		st = convctl_json(args);
		snprintf(args, sizeof(args), "--data %s verify", dst);
		ve = convctl_json(args);
		snprintf(args, sizeof(args), "--data %s rebuild", dst);
		re = convctl_json(args);
	}
	rc = rc || !ex || !im || !st || !ve || !re;
	if (!rc) {
		struct stat fs;
		stat(file, &fs);
		double used = num(st, "map_used");
		printf("\nexport file: %.1f MB gzip, %.1f MB inflated; store: %.1f MB in use\n\n",
		       (double)fs.st_size / 1e6, num(ex, "bytes") / 1e6, used / 1e6);
		printf("| %-32s | %11s | %11s | %12s | %8s |\n", "convctl", "events", "time",
		       "events/s", "MB/s");
		printf("| --- | ---: | ---: | ---: | ---: |\n");
		row("export (gzip level 1)", num(ex, "events"), num(ex, "bytes"),
		    num(ex, "seconds"));
		row("import into an empty store", num(im, "events"), num(im, "bytes"),
		    num(im, "seconds"));
		row("verify", num(ve, "records"), used, num(ve, "seconds"));
		row("rebuild", num(re, "events"), used, num(re, "seconds"));
	}
	json_decref(ex);
	json_decref(im);
	json_decref(st);
	json_decref(ve);
	json_decref(re);
	nftw(cfg.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
