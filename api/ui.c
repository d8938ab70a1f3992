/*
 * ui.c - serves the replay debugger (the files of api/ui/, embedded at build time into
 * cs_ui_files[] by api/embed_ui.py) at /ui/.
 *
 *     GET /ui          -> 308 to /ui/ (relative links in the page need the slash)
 *     GET /ui/         -> index.html
 *     GET /ui/<name>   -> that file, or 404 with the usual JSON error
 *
 * The page is static and holds no data: it reads everything through the public HTTP API with
 * the token the user types, so these routes need no token (routes.h: CS_ROLE_NONE) and give
 * nothing away. A name is compared byte for byte with the embedded names: nothing is decoded,
 * joined to a path or read from disk, so no request can reach a file that was not embedded.
 *
 * Responses are served from the embedded bytes without a copy (MHD_RESPMEM_PERSISTENT), in
 * their prebuilt gzip form when the client accepts gzip. Caching: an ETag per file (a digest of
 * its bytes) and `Cache-Control: no-cache`, so a browser revalidates and gets a 304 until the
 * binary is rebuilt with a changed page (the names are not content-hashed, so a long max-age
 * would serve a stale page after an upgrade). Every answer carries the security headers: the
 * page runs only its own scripts and styles and talks only to its own origin (CSP
 * default-src 'self', no inline code), cannot be framed, sends no Referer and is never sniffed.
 */
#include <stdio.h>
#include <string.h>

#include "server.h"

#define UI_CSP                                                                                     \
	"default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "             \
	"frame-ancestors 'none'"

/* The embedded file named by @name[0, @len), or NULL. */
static const cs_ui_file *ui_find(const char *name, size_t len)
{
	for (size_t i = 0; i < cs_ui_files_count; i++)
		if (strlen(cs_ui_files[i].name) == len &&
		    memcmp(cs_ui_files[i].name, name, len) == 0)
			return &cs_ui_files[i];
	return NULL;
}

static void ui_headers(struct MHD_Response *resp, const cs_ui_file *f)
{
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f->etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	MHD_add_response_header(resp, "Content-Security-Policy", UI_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

static enum MHD_Result ui_redirect(cs_req *r)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/ui/");
	enum MHD_Result ret = cs_reply_queue(r, MHD_HTTP_PERMANENT_REDIRECT, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result cs_h_ui(cs_req *r)
{
	if (r->route == CS_ROUTE_UI_ROOT)
		return ui_redirect(r);
	const cs_ui_file *f = r->route == CS_ROUTE_UI_INDEX
				  ? ui_find("index.html", strlen("index.html"))
				  : ui_find(r->id_raw, r->id_raw_len);
	if (!f)
		return cs_reply_fail(r, CS_ENOTFOUND, "the ui has no file '%.*s'",
				     (int)(r->id_raw_len < 128 ? r->id_raw_len : 128), r->id_raw);
	bool not_modified = cs_req_etag_match(r, f->etag);
	bool gz = !not_modified && r->gzip_ok && f->gz;
	const unsigned char *body = gz ? f->gz : f->data;
	size_t len = not_modified ? 0 : gz ? f->gz_len : f->len;
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	ui_headers(resp, f);
	if (!not_modified)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->content_type);
	if (gz)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	enum MHD_Result ret =
	    cs_reply_queue(r, not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}
