/*
 * manage.c - the routes that manage conversations rather than their events: list, patch, fork,
 * forks and erase (API.md "Routes"). Same shape as conv.c: read the request, call one store
 * function scoped to the request's tenant, reply with a view or through the one error replier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define META_PREFIX "metadata."

/* RFC 3339 text or whole unix seconds, as unix seconds. */
static int parse_time(int64_t *out, const char *s, cs_error *err)
{
	uint64_t secs;
	if (cs_parse_u64(&secs, s) && secs <= INT64_MAX) {
		*out = (int64_t)secs;
		return CS_OK;
	}
	char quoted[80];
	Convstore__V1__Timestamp *ts = NULL;
	snprintf(quoted, sizeof(quoted), "\"%.64s\"", s);
	int rc =
	    cs_json_decode_text((ProtobufCMessage **)&ts, &convstore__v1__timestamp__descriptor,
				quoted, strlen(quoted), err);
	if (rc || strchr(s, '"') || strchr(s, '\\'))
		rc = cs_error_set(err, CS_EINVAL, "'%.64s' is not an RFC 3339 time or unix seconds",
				  s);
	else
		*out = ts->seconds;
	if (ts)
		protobuf_c_message_free_unpacked(&ts->base, NULL);
	return rc;
}

/* The list query from the request's parameters; metadata filters point into r->params. */
static int list_query(cs_list_query *q, const char **keys, const char **values, const cs_req *r,
		      cs_error *err)
{
	int rc = cs_query_limit(&q->limit, r, err);
	if (rc)
		return rc;
	q->cursor = cs_query_get(r, "cursor");
	q->status = cs_query_get(r, "status");
	if (q->status && strcmp(q->status, "active") != 0 && strcmp(q->status, "archived") != 0)
		return cs_error_set(err, CS_EINVAL, "status '%.32s' is not active or archived",
				    q->status);
	const char *after = cs_query_get(r, "updated_after");
	if (after && (rc = parse_time(&q->updated_after, after, err)))
		return cs_error_wrap(err, rc, "updated_after");
	for (size_t i = 0; i < r->n_params; i++) {
		if (strncmp(r->params[i].key, META_PREFIX, strlen(META_PREFIX)) != 0)
			continue;
		keys[q->n_meta] = r->params[i].key + strlen(META_PREFIX);
		values[q->n_meta++] = r->params[i].value;
	}
	q->meta_keys = keys;
	q->meta_values = values;
	return CS_OK;
}

enum MHD_Result cs_h_list(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	cs_list_query q = {0};
	const char *keys[CS_MAX_PARAMS], *values[CS_MAX_PARAMS];
	Convstore__V1__ConversationList *list = NULL;
	int rc = list_query(&q, keys, values, r, &err);
	if (!rc)
		rc = cs_store_list(&list, r->srv->store, r->tenant, &q, &err);
	return cs_reply_view(r, rc, &err, MHD_HTTP_OK, list ? &list->base : NULL, 0);
}

enum MHD_Result cs_h_update(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__UpdateRequest *req = NULL;
	Convstore__V1__ConversationUpdated spec = CONVSTORE__V1__CONVERSATION_UPDATED__INIT;
	int64_t expected = CS_ANY_VERSION;
	cs_append_result res;
	int rc = cs_body_decode((ProtobufCMessage **)&req, r,
				&convstore__v1__update_request__descriptor, &err);
	if (!rc)
		rc = cs_if_match(&expected, r, false, 0, &err);
	if (!rc) {
		if (req->title_opt_case == CONVSTORE__V1__UPDATE_REQUEST__TITLE_OPT_TITLE) {
			spec.title_opt_case = CONVSTORE__V1__CONVERSATION_UPDATED__TITLE_OPT_TITLE;
			spec.title = req->title;
		}
		spec.n_metadata = req->n_metadata;
		spec.status = req->status;
		spec.retention = req->retention;
		rc = cs_map_retype((void ***)&spec.metadata,
				   &convstore__v1__conversation_updated__metadata_entry__descriptor,
				   (void *const *)req->metadata, req->n_metadata, &err);
		if (!rc)
			rc = cs_write_done(r, cs_store_update(&res, r->srv->store, r->tenant, r->id,
							      expected, &spec, &err));
		free(spec.metadata);
	}
	if (req)
		protobuf_c_message_free_unpacked(&req->base, NULL);
	if (rc)
		return cs_reply_error(r, &err);
	return cs_reply_state(r, MHD_HTTP_OK, r->id);
}

static int fork_spec(Convstore__V1__ConversationForked *spec, const Convstore__V1__ForkRequest *req,
		     cs_error *err)
{
	if (!req->at_version)
		return cs_error_set(err, CS_EINVAL,
				    "at_version: a version of 1 or more is required");
	spec->title = req->title;
	spec->n_metadata = req->n_metadata;
	spec->retention = req->retention;
	return cs_map_retype((void ***)&spec->metadata,
			     &convstore__v1__conversation_forked__metadata_entry__descriptor,
			     (void *const *)req->metadata, req->n_metadata, err);
}

enum MHD_Result cs_h_fork(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__ForkRequest *req = NULL;
	Convstore__V1__ConversationForked spec = CONVSTORE__V1__CONVERSATION_FORKED__INIT;
	char id[CS_MAX_ID_LEN + 1];
	cs_append_result res;
	int rc = cs_body_decode((ProtobufCMessage **)&req, r,
				&convstore__v1__fork_request__descriptor, &err);
	if (!rc)
		rc = cs_body_id(id, req->id, &err);
	if (!rc)
		rc = fork_spec(&spec, req, &err);
	if (!rc)
		rc = cs_write_done(r, cs_store_fork(&res, r->srv->store, r->tenant, r->id,
						    req->at_version, id, &spec, &err));
	free(spec.metadata);
	if (req)
		protobuf_c_message_free_unpacked(&req->base, NULL);
	if (rc)
		return cs_reply_error(r, &err);
	return cs_reply_state(r, MHD_HTTP_CREATED, id);
}

enum MHD_Result cs_h_forks(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	Convstore__V1__ForkList *forks = NULL;
	int rc = cs_store_forks(&forks, r->srv->store, r->tenant, r->id, &err);
	return cs_reply_view(r, rc, &err, MHD_HTTP_OK, forks ? &forks->base : NULL, 0);
}

enum MHD_Result cs_h_erase(cs_req *r)
{
	cs_error err = CS_ERROR_INIT;
	cs_append_result res;
	const char *purge = cs_query_get(r, "purge");
	bool p = purge && (!strcmp(purge, "true") || !strcmp(purge, "1"));
	if (purge && !p && strcmp(purge, "false") != 0 && strcmp(purge, "0") != 0)
		return cs_reply_fail(r, CS_EINVAL, "purge '%.32s' is not true or false", purge);
	if (cs_write_done(r, cs_store_erase(&res, r->srv->store, r->tenant, r->id, p, &err)))
		return cs_reply_error(r, &err);
	cs_hub_forget(r->srv, r->tenant, r->id, res.last_position); /* gone before the 204 */
	return cs_reply_empty(r, MHD_HTTP_NO_CONTENT, 0);
}
