/*
 * openai.h - OpenAI chat-completions messages as convstore events: the one mapping that
 * `convctl import-openai`, the corpus tests (tests/store/corpus.h) and bench_read share. It is
 * the inverse of the messages view of API.md:
 *
 *     system, developer, user  -> message {role, content, name}
 *     assistant                -> model_response {model, content (unset when null),
 *                                 tool_calls [{id, name = function.name, arguments}]}
 *     tool                     -> tool_result {call_id = tool_call_id, name, output = content}
 *
 * so that the messages view of the events is the list that was mapped. Content must be a string
 * (or null for an assistant): the view has no content parts, so an array of parts is refused
 * rather than flattened into something the view would not give back.
 */
#ifndef CONVSTORE_TOOLS_OPENAI_H
#define CONVSTORE_TOOLS_OPENAI_H

#include <jansson.h>

#include "convstore/error.h"
#include "convstore/v1/event.pb-c.h"

/**
 * Map one chat message (a JSON object) to an event.
 *
 * @param[out] out  the event, owned by the caller: protobuf_c_message_free_unpacked(); NULL on
 *                  failure
 * @param model     model_response.model for assistant messages (NULL: empty)
 * @param id        the event's id (NULL: none, the store makes one up)
 * @return CS_OK; CS_EINVAL when @m is not a chat message this mapping knows (the message says
 *         which field); CS_ENOMEM.
 */
int cs_openai_event(Convstore__V1__Event **out, const json_t *m, const char *model, const char *id,
		    cs_error *err);

#endif
