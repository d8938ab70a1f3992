/*
 * pending.c - the read-side entry points of store.h whose implementation is in progress
 * (issue 3). Each fails with CS_EINVAL "not implemented yet" so that callers can be written and
 * built against the final header. This file goes away when the last of them lands.
 */
#include "internal.h"

#define NOT_YET(name) cs_error_set(err, CS_EINVAL, name ": not implemented yet")

int cs_store_state(Convstore__V1__ConversationState **out, cs_store *store, const char *tenant,
		   const char *conversation_id, uint64_t at_version, cs_error *err)
{
	(void)store, (void)tenant, (void)conversation_id, (void)at_version;
	*out = NULL;
	return NOT_YET("cs_store_state");
}

int cs_store_messages(Convstore__V1__ChatTranscript **out, cs_store *store, const char *tenant,
		      const char *conversation_id, uint64_t at_version, cs_error *err)
{
	(void)store, (void)tenant, (void)conversation_id, (void)at_version;
	*out = NULL;
	return NOT_YET("cs_store_messages");
}

int cs_store_list(Convstore__V1__ConversationList **out, cs_store *store, const char *tenant,
		  const cs_list_query *q, cs_error *err)
{
	(void)store, (void)tenant, (void)q;
	*out = NULL;
	return NOT_YET("cs_store_list");
}

int cs_store_usage(Convstore__V1__UsageReport **out, cs_store *store, const char *tenant,
		   const cs_usage_query *q, cs_error *err)
{
	(void)store, (void)tenant, (void)q;
	*out = NULL;
	return NOT_YET("cs_store_usage");
}

int cs_store_rebuild(cs_rebuild_report *out, cs_store *store, cs_error *err)
{
	(void)out, (void)store;
	return NOT_YET("cs_store_rebuild");
}
