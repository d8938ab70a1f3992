/*
 * ops.c - the routes around the conversations: usage, the OpenAPI document, health,
 * readiness and metrics.
 *
 * /healthz says the process answers; /readyz says it can take writes (the store answers, its
 * folder is writable, and the server is not draining); neither needs a token. /metrics is for
 * the operator role (metrics.c renders it). /v1/openapi.json is api/openapi.yaml as JSON,
 * embedded at build time, and needs no token either: it describes the API, not any data.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

/* YYYY-MM-DD as days since 1970-01-01 (the civil-from-days inverse, proleptic Gregorian). */
static int parse_day(int64_t *out, const char *s, cs_error *err)
{
	int y, m, d, n = 0;
	if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 ||
	    s[4] != '-' || s[7] != '-' || strspn(s, "0123456789-") != 10 || m < 1 || m > 12 ||
	    d < 1 || d > 31 || y < 1)
		return cs_error_set(err, CS_EINVAL, "'%.32s' is not a day (YYYY-MM-DD)", s);
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
		return cs_error_set(err, CS_EINVAL, "'%.32s' is not a day of the calendar", s);
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	*out = era * 146097 + doe - 719468;
	return CS_OK;
}

static int usage_query(cs_usage_query *q, const cs_req *r, cs_error *err)
{
	static const char *const groups[] = {"model", "conversation", "day"};
	const char *group = cs_query_get(r, "group_by");
	const char *from = cs_query_get(r, "from"), *to = cs_query_get(r, "to");
	q->group_by = CS_USAGE_BY_MODEL;
	q->from_day = INT64_MIN;
	q->to_day = INT64_MAX;
	if (group) {
		size_t i = 0;
		while (i < 3 && strcmp(group, groups[i]) != 0)
			i++;
		if (i == 3)
			return cs_error_set(err, CS_EINVAL,
					    "group_by '%.32s' is not model, conversation or day",
					    group);
		q->group_by = (enum cs_usage_group)i;
	}
	int rc = from ? parse_day(&q->from_day, from, err) : CS_OK;
	if (rc)
		return cs_error_wrap(err, rc, "from");
	rc = to ? parse_day(&q->to_day, to, err) : CS_OK;
	return rc ? cs_error_wrap(err, rc, "to") : CS_OK;
}

enum MHD_Result cs_h_usage(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	cs_usage_query q;
	Convstore__V1__UsageReport *report = NULL;
	int rc = usage_query(&q, r, &err);
	if (!rc)
		rc = cs_store_usage(&report, r->srv->store, r->tenant, &q, &err);
	return cs_reply_view(r, rc, &err, MHD_HTTP_OK, report ? &report->base : NULL, 0);
}

enum MHD_Result cs_h_openapi(cs_req *r)
{
	return cs_reply_bytes(r, MHD_HTTP_OK, "application/json", cs_openapi_json,
			      cs_openapi_json_len);
}

static enum MHD_Result reply_health(cs_req *r, const char *status)
{
	Convstore__V1__Health h = CONVSTORE__V1__HEALTH__INIT;
	h.status = (char *)status;
	return cs_reply_message(r, MHD_HTTP_OK, &h.base, 0);
}

enum MHD_Result cs_h_healthz(cs_req *r)
{
	return reply_health(r, "ok");
}

enum MHD_Result cs_h_readyz(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	cs_store_stats st;
	if (atomic_load(&r->srv->draining))
		return cs_reply_fail(r, CS_ECLOSED, "draining");
	if (cs_store_stats_get(&st, r->srv->store, &err))
		return cs_reply_error(r, &err);
	if (access(r->srv->cfg.data, W_OK) != 0)
		return cs_reply_fail(r, CS_EIO, "store folder %.200s is not writable",
				     r->srv->cfg.data);
	return reply_health(r, "ok");
}

enum MHD_Result cs_h_metrics(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	size_t len = 0;
	char *text = cs_metrics_render(r->srv, &len, &err);
	if (!text)
		return cs_reply_error(r, &err);
	enum MHD_Result ret =
	    cs_reply_bytes(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
	return ret;
}
