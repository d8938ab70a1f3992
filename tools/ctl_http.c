/*
 * ctl_http.c - convctl's side of --url: one GET that asks for binary protobuf (every route
 * speaks it, API.md), so that a view read over HTTP is the same message a store read gives and
 * the commands print both with one printer. Errors are JSON whatever was asked for; their
 * message is what convctl reports.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "httpc.h"

bool ctl_url_parse(const char *url, char host[64], unsigned *port)
{
	if (strncmp(url, "http://", 7) != 0)
		return false;
	const char *h = url + 7, *colon = strchr(h, ':');
	size_t len = colon ? (size_t)(colon - h) : strcspn(h, "/");
	if (len == 0 || len >= 64)
		return false;
	memcpy(host, h, len);
	host[len] = '\0';
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	char *end = NULL;
	unsigned long p = colon ? strtoul(colon + 1, &end, 10) : 80;
	if (colon && (end == colon + 1 || (*end && *end != '/') || p == 0 || p > 65535))
		return false;
	*port = (unsigned)p;
	return true;
}

const char *ctl_auth_header(const ctl *c, char *buf, size_t size)
{
	const char *token = c->token ? c->token : getenv("CONVSTORE_TOKEN");
	if (!token || !*token || strlen(token) + 32 > size)
		return "";
	snprintf(buf, size, "Authorization: Bearer %s\r\n", token);
	return buf;
}

/* The message of a JSON error body, or the status when it has none. */
static int http_error(const ctl *c, const httpc_response *r)
{
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
	const char *msg =
	    json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	int rc = msg ? ctl_fail(c, "%d %s", r->status, msg) : ctl_fail(c, "HTTP %d", r->status);
	json_decref(j);
	return rc;
}

int ctl_http_get(void **out, const ctl *c, const char *path, const ProtobufCMessageDescriptor *desc)
{
	*out = NULL;
	char host[64], auth[512], headers[600];
	unsigned port;
	if (!ctl_url_parse(c->url, host, &port))
		return ctl_usage(c, "--url \"%s\" is not http://HOST:PORT", c->url);
	snprintf(headers, sizeof(headers), "Accept: application/x-protobuf\r\n%s",
		 ctl_auth_header(c, auth, sizeof(auth)));
	httpc h;
	httpc_init(&h, host, port);
	httpc_response r = {0};
	int rc = CTL_OK;
	if (httpc_request(&r, &h, "GET", path, headers, NULL, 0) != 0) {
		rc = ctl_fail(c, "%s: no answer", c->url);
	} else if (r.status != 200) {
		rc = http_error(c, &r);
	} else {
		*out = protobuf_c_message_unpack(desc, NULL, r.body_len, (uint8_t *)r.body);
		if (!*out)
			rc = ctl_fail(c, "%s%s: the answer does not decode", c->url, path);
	}
	httpc_response_free(&r);
	httpc_close(&h);
	return rc;
}
