/*
 * metrics.c - /metrics in the Prometheus text format (version 0.0.4).
 *
 * Request counters and histograms are atomic counters in cs_metrics, bumped once per request
 * by server.c's completion callback and by the append handler; nothing here takes a lock on the
 * request path. The store's figures (events, conversations, commits, map size and use) come
 * from cs_store_stats_get() at scrape time, and tokens and cost by model from cs_store_usage()
 * over every tenant (a NULL tenant: the store sums them, whoever wrote them, key file or not):
 * a scrape costs two short read transactions.
 *
 * Histograms use fixed buckets (below); a label value is escaped as the format requires.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

/* Upper bounds of the latency buckets in seconds; the last is +Inf. */
static const double latency_le[CS_METRIC_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
/* Upper bounds of the events-per-append buckets; the last is +Inf. */
static const double events_le[CS_METRIC_BUCKETS - 1] = {1,   2,	  4,   8,    16,   32,	 64,
							128, 256, 512, 1024, 4096, 10000};
/* The statuses counted one by one; the last slot counts any other. */
static const unsigned statuses[CS_METRIC_STATUSES - 1] = {
    200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 410, 413, 415, 429, 431, 500, 503, 507, 0};

static void bucket_add(atomic_ullong *buckets, const double *le, double v)
{
	size_t i = 0;
	while (i < CS_METRIC_BUCKETS - 1 && v > le[i])
		i++;
	atomic_fetch_add_explicit(&buckets[i], 1, memory_order_relaxed);
}

void cs_metrics_request(cs_metrics *m, enum cs_route_id route, unsigned status, uint64_t us)
{
	size_t s = 0;
	while (s < CS_METRIC_STATUSES - 1 && statuses[s] != status)
		s++;
	atomic_fetch_add_explicit(&m->requests[route][s], 1, memory_order_relaxed);
	bucket_add(m->duration_buckets[route], latency_le, (double)us / 1e6);
	atomic_fetch_add_explicit(&m->duration_us_sum[route], us, memory_order_relaxed);
}

void cs_metrics_append(cs_metrics *m, size_t events, uint64_t us)
{
	bucket_add(m->append_events_buckets, events_le, (double)events);
	atomic_fetch_add_explicit(&m->append_events_sum, events, memory_order_relaxed);
	bucket_add(m->append_latency_buckets, latency_le, (double)us / 1e6);
	atomic_fetch_add_explicit(&m->append_latency_us_sum, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->appends, 1, memory_order_relaxed);
}

static void put_label(FILE *f, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
}

static const char *route_label(size_t route)
{
	return route == CS_ROUTE_NONE ? "unmatched" : cs_routes[route].path;
}

static const char *route_method(size_t route)
{
	return route == CS_ROUTE_NONE ? "" : cs_routes[route].method;
}

/* One histogram's series; @labels is "" or 'name="value",'. */
static void put_histogram(FILE *f, const char *name, const char *labels, atomic_ullong *buckets,
			  const double *le, double sum)
{
	unsigned long long cum = 0;
	for (size_t i = 0; i < CS_METRIC_BUCKETS; i++) {
		cum += atomic_load_explicit(&buckets[i], memory_order_relaxed);
		if (i < CS_METRIC_BUCKETS - 1)
			fprintf(f, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, le[i], cum);
		else
			fprintf(f, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, cum);
	}
	size_t n = strlen(labels);
	if (!n) {
		fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name, sum, name, cum);
		return;
	}
	fprintf(f, "%s_sum{%.*s} %.6f\n%s_count{%.*s} %llu\n", name, (int)n - 1, labels, sum, name,
		(int)n - 1, labels, cum);
}

static void render_requests(FILE *f, cs_metrics *m)
{
	fputs("# HELP convstore_http_requests_total HTTP requests by route, method and status.\n"
	      "# TYPE convstore_http_requests_total counter\n",
	      f);
	for (size_t r = 0; r <= CS_ROUTE_COUNT; r++)
		for (size_t s = 0; s < CS_METRIC_STATUSES; s++) {
			unsigned long long n = atomic_load(&m->requests[r][s]);
			if (!n)
				continue;
			fprintf(f,
				"convstore_http_requests_total{route=\"%s\",method=\"%s\","
				"status=\"",
				route_label(r), route_method(r));
			if (s < CS_METRIC_STATUSES - 1 && statuses[s])
				fprintf(f, "%u\"} %llu\n", statuses[s], n);
			else
				fprintf(f, "other\"} %llu\n", n);
		}
	fputs("# HELP convstore_http_request_duration_seconds Time from headers to completion.\n"
	      "# TYPE convstore_http_request_duration_seconds histogram\n",
	      f);
	for (size_t r = 0; r <= CS_ROUTE_COUNT; r++) {
		char labels[160];
		snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",", route_label(r),
			 route_method(r));
		put_histogram(f, "convstore_http_request_duration_seconds", labels,
			      m->duration_buckets[r], latency_le,
			      (double)atomic_load(&m->duration_us_sum[r]) / 1e6);
	}
}

static void render_appends(FILE *f, cs_metrics *m)
{
	fputs("# HELP convstore_append_events Events in one append request.\n"
	      "# TYPE convstore_append_events histogram\n",
	      f);
	put_histogram(f, "convstore_append_events", "", m->append_events_buckets, events_le,
		      (double)atomic_load(&m->append_events_sum));
	fputs("# HELP convstore_append_commit_seconds Time an append waits for its group commit "
	      "(validation, queue, transaction, fsync).\n"
	      "# TYPE convstore_append_commit_seconds histogram\n",
	      f);
	put_histogram(f, "convstore_append_commit_seconds", "", m->append_latency_buckets,
		      latency_le, (double)atomic_load(&m->append_latency_us_sum) / 1e6);
}

static void render_store(FILE *f, const cs_store_stats *st)
{
	fprintf(f,
		"# TYPE convstore_events gauge\nconvstore_events %llu\n"
		"# TYPE convstore_conversations gauge\nconvstore_conversations %llu\n"
		"# TYPE convstore_last_position gauge\nconvstore_last_position %llu\n"
		"# TYPE convstore_map_size_bytes gauge\nconvstore_map_size_bytes %llu\n"
		"# TYPE convstore_map_used_bytes gauge\nconvstore_map_used_bytes %llu\n"
		"# TYPE convstore_map_grows_total counter\nconvstore_map_grows_total %llu\n"
		"# HELP convstore_commits_total Write transactions (group commits).\n"
		"# TYPE convstore_commits_total counter\nconvstore_commits_total %llu\n"
		"# HELP convstore_commit_appends_total Append requests committed.\n"
		"# TYPE convstore_commit_appends_total counter\n"
		"convstore_commit_appends_total %llu\n"
		"# HELP convstore_appends_per_commit Mean append requests per group commit.\n"
		"# TYPE convstore_appends_per_commit gauge\nconvstore_appends_per_commit %.3f\n",
		(unsigned long long)st->events, (unsigned long long)st->conversations,
		(unsigned long long)st->last_position, (unsigned long long)st->map_size,
		(unsigned long long)st->map_used, (unsigned long long)st->map_grows,
		(unsigned long long)st->commits, (unsigned long long)st->appends,
		st->commits ? (double)st->appends / (double)st->commits : 0.0);
}

static void render_feed(FILE *f, cs_server *srv)
{
	cs_hub_figures_t h;
	cs_hub_figures(srv, &h);
	fprintf(f,
		"# HELP convstored_feed_streams Server-Sent Events streams attached now.\n"
		"# TYPE convstored_feed_streams gauge\nconvstored_feed_streams %llu\n"
		"# TYPE convstored_feed_streams_total counter\n"
		"convstored_feed_streams_total %llu\n"
		"# HELP convstored_feed_waiting Long polls and streams parked, holding no thread.\n"
		"# TYPE convstored_feed_waiting gauge\nconvstored_feed_waiting %llu\n"
		"# HELP convstored_feed_frames_total Events formatted once for every stream.\n"
		"# TYPE convstored_feed_frames_total counter\nconvstored_feed_frames_total %llu\n"
		"# TYPE convstored_feed_ring_frames gauge\nconvstored_feed_ring_frames %llu\n"
		"# TYPE convstored_feed_ring_bytes gauge\nconvstored_feed_ring_bytes %llu\n",
		(unsigned long long)h.streams, (unsigned long long)h.streams_total,
		(unsigned long long)h.waiters, (unsigned long long)h.frames_total,
		(unsigned long long)h.ring_frames, (unsigned long long)h.ring_bytes);
}

static void put_model_row(FILE *f, const Convstore__V1__UsageRow *row)
{
	static const char *const kinds[] = {"input", "output", "cached", "reasoning"};
	uint64_t v[] = {row->input_tokens, row->output_tokens, row->cached_tokens,
			row->reasoning_tokens};
	for (size_t k = 0; k < 4; k++) {
		fputs("convstore_tokens_total{model=\"", f);
		put_label(f, row->key);
		fprintf(f, "\",kind=\"%s\"} %llu\n", kinds[k], (unsigned long long)v[k]);
	}
	fputs("convstore_cost_usd_total{model=\"", f);
	put_label(f, row->key);
	fprintf(f, "\"} %.9f\nconvstore_model_responses_total{model=\"", row->cost_usd);
	put_label(f, row->key);
	fprintf(f, "\"} %llu\n", (unsigned long long)row->responses);
}

/* Tokens and cost by model over every tenant (the store sums them: one read transaction). */
static int render_usage(FILE *f, cs_server *srv, cs_error *err)
{
	cs_usage_query q = {CS_USAGE_BY_MODEL, INT64_MIN, INT64_MAX};
	Convstore__V1__UsageReport *report = NULL;
	int rc = cs_store_usage(&report, srv->store, NULL, &q, err);
	if (rc)
		return rc;
	fputs("# HELP convstore_tokens_total Tokens of model responses, by model and kind.\n"
	      "# TYPE convstore_tokens_total counter\n"
	      "# TYPE convstore_cost_usd_total counter\n"
	      "# TYPE convstore_model_responses_total counter\n",
	      f);
	for (size_t i = 0; i < report->n_rows; i++)
		put_model_row(f, report->rows[i]);
	protobuf_c_message_free_unpacked(&report->base, NULL);
	return CS_OK;
}

char *cs_metrics_render(cs_server *srv, size_t *len, cs_error *err)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f) {
		cs_error_set(err, CS_ENOMEM, "out of memory rendering metrics");
		return NULL;
	}
	cs_store_stats st;
	int rc = cs_store_stats_get(&st, srv->store, err);
	render_requests(f, &srv->metrics);
	render_appends(f, &srv->metrics);
	render_feed(f, srv);
	if (!rc)
		render_store(f, &st);
	if (!rc && render_usage(f, srv, err))
		cs_log(srv, CS_LOG_WARN, "metrics: usage by model: %s", err ? err->msg : "");
	fclose(f);
	if (rc) {
		free(buf);
		return NULL;
	}
	return buf;
}
