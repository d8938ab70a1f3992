/*
 * test_static.c - convstored serves the replay debugger's files (api/ui.c) the way the page
 * needs them, checked without a browser so that it runs in every build (plain, ASan, valgrind):
 *   - every file of api/ui/ ($UI_SRC) is embedded and served byte for byte with its
 *     Content-Type, so a file missing from api/meson.build's list fails here;
 *   - /ui redirects to /ui/, which is index.html; ETag + If-None-Match give 304; gzip when asked;
 *   - the security headers (CSP default-src 'self', nosniff, no framing) are on every file;
 *   - unknown names, escapes, sub-folders, query strings and other methods are the usual JSON
 *     errors; with --keys the files need no token while the API still does.
 * The browser test (test_ui.mjs) drives the page itself.
 */
#include <dirent.h>
#include <zlib.h>

#include "../check.h"
#include "../api/server.h"

static srv S;

static httpc_response get(const char *path, const char *headers)
{
	return srv_req(&S, "GET", path, headers, NULL);
}

static bool header_is(const httpc_response *r, const char *name, const char *want)
{
	char buf[512];
	const char *v = httpc_header(r, name, buf, sizeof(buf));
	if (!CHECK_STR_EQ(v ? v : "(none)", want))
		fprintf(stderr, "  header %s\n", name);
	return v && !strcmp(v, want);
}

static const char *type_of(const char *name)
{
	const char *ext = strrchr(name, '.');
	if (!ext)
		return "?";
	if (!strcmp(ext, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(ext, ".js"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(ext, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(ext, ".svg"))
		return "image/svg+xml";
	return "?";
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	static char buf[1 << 20];
	*len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return buf;
}

/* Every file in the source folder, served as it is, with its type and the security headers. */
static void test_every_file(void)
{
	const char *src = getenv("UI_SRC");
	DIR *d = src ? opendir(src) : NULL;
	if (!CHECK(d != NULL))
		return;
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		size_t len = 0;
		snprintf(path, sizeof(path), "%s/%s", src, e->d_name);
		const char *want = read_file(path, &len);
		httpc_response r = get(fmt("/ui/%s", e->d_name), "");
		if (!CHECK_EQ_INT(r.status, 200))
			fprintf(stderr, "  /ui/%s is not served: is it in api/meson.build?\n",
				e->d_name);
		else
			CHECK_MEM_EQ(r.body, r.body_len, want, len);
		header_is(&r, "Content-Type", type_of(e->d_name));
		header_is(&r, "X-Content-Type-Options", "nosniff");
		header_is(&r, "Cache-Control", "no-cache");
		header_is(&r, "X-Frame-Options", "DENY");
		char csp[512];
		CHECK_STR_CONTAINS(httpc_header(&r, "Content-Security-Policy", csp, sizeof(csp)),
				   "default-src 'self'");
		httpc_response_free(&r);
		n++;
	}
	closedir(d);
	CHECK(n >= 3);
}

static void test_index_and_cache(void)
{
	httpc_response r = get("/ui", "");
	CHECK_EQ_INT(r.status, 308);
	header_is(&r, "Location", "/ui/");
	httpc_response_free(&r);

	r = get("/ui/", "");
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR_CONTAINS(r.body, "<!doctype html>");
	header_is(&r, "Content-Type", "text/html; charset=utf-8");
	char etag[64] = "", inm[160];
	httpc_header(&r, "ETag", etag, sizeof(etag));
	CHECK(strlen(etag) == 18 && etag[0] == '"');
	httpc_response_free(&r);

	r = get("/ui/index.html", "");
	header_is(&r, "ETag", etag);
	httpc_response_free(&r);

	snprintf(inm, sizeof(inm), "If-None-Match: \"other\", %s\r\n", etag);
	r = get("/ui/", inm);
	CHECK_EQ_INT(r.status, 304);
	CHECK_EQ_INT(r.body_len, 0);
	header_is(&r, "ETag", etag);
	httpc_response_free(&r);

	r = get("/ui/", "If-None-Match: \"0000000000000000\"\r\n");
	CHECK_EQ_INT(r.status, 200);
	httpc_response_free(&r);

	/* HEAD: the headers alone */
	r = srv_req(&S, "HEAD", "/ui/", "", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.body_len, 0);
	httpc_response_free(&r);
}

static void test_gzip(void)
{
	httpc_response plain = get("/ui/", "");
	httpc_response r = get("/ui/", "Accept-Encoding: gzip\r\n");
	CHECK_EQ_INT(r.status, 200);
	header_is(&r, "Content-Encoding", "gzip");
	header_is(&r, "Vary", "Accept-Encoding");
	static unsigned char out[1 << 20];
	z_stream z = {0};
	CHECK_EQ_INT(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (unsigned char *)r.body;
	z.avail_in = (unsigned)r.body_len;
	z.next_out = out;
	z.avail_out = sizeof(out);
	CHECK_EQ_INT(inflate(&z, Z_FINISH), Z_STREAM_END);
	CHECK_MEM_EQ(out, z.total_out, plain.body, plain.body_len);
	inflateEnd(&z);
	httpc_response_free(&r);
	httpc_response_free(&plain);
}

static void expect_error(const char *method, const char *path, int status, const char *code)
{
	json_t *b = NULL;
	if (!CHECK_EQ_INT(srv_call(&S, NULL, method, path, NULL, &b), status))
		fprintf(stderr, "  %s %s\n", method, path);
	CHECK_STR_EQ(err_code(b), code);
	json_decref(b);
}

static void test_errors(void)
{
	expect_error("GET", "/ui/nope.js", 404, "not_found");
	expect_error("GET", "/ui/app.js%00", 404, "not_found");
	expect_error("GET", "/ui/..%2Fmeson.build", 404, "not_found");
	expect_error("GET", "/ui/%2e%2e", 404, "not_found");
	expect_error("GET", "/ui/a/index.html", 404, "not_found");
	expect_error("GET", "/ui//index.html", 404, "not_found");
	expect_error("GET", "/ui/index.html?v=1", 400, "invalid_argument");
	expect_error("POST", "/ui/", 405, "method_not_allowed");
	expect_error("DELETE", "/ui/app.js", 405, "method_not_allowed");
}

/* With a key file the page loads without a token; the API it calls does not answer without. */
static void test_no_token_needed(void)
{
	char tok[80], keys[PATH_MAX + 8];
	snprintf(keys, sizeof(keys), "%s/keys", S.dir);
	FILE *f = fopen(keys, "w");
	if (!CHECK(f != NULL))
		return;
	srv_keygen(tok, f, "acme", "read");
	fclose(f);
	srv a;
	const char *extra[] = {"--keys", keys, NULL};
	srv_start(&a, extra);
	CHECK_EQ_INT(srv_call(&a, NULL, "GET", "/ui/", NULL, NULL), 200);
	CHECK_EQ_INT(srv_call(&a, NULL, "GET", "/ui/app.js", NULL, NULL), 200);
	CHECK_EQ_INT(srv_call(&a, NULL, "GET", "/v1/conversations", NULL, NULL), 401);
	CHECK_EQ_INT(srv_call(&a, tok, "GET", "/v1/conversations", NULL, NULL), 200);
	CHECK_EQ_INT(srv_stop(&a), 0);
}

int main(void)
{
	srv_start(&S, NULL);
	CHECK_RUN(test_every_file);
	CHECK_RUN(test_index_and_cache);
	CHECK_RUN(test_gzip);
	CHECK_RUN(test_errors);
	CHECK_RUN(test_no_token_needed);
	CHECK_EQ_INT(srv_stop(&S), 0);
	return check_finish();
}
