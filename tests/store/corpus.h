/*
 * tests/store/corpus.h - the tau-bench airline corpus as convstore events, for every corpus test
 * (and tools/bench_read), mapped by tools/openai.c (the mapping `convctl import-openai` uses,
 * with model "gpt-4o" for assistant messages).
 *
 * The file is $CONVSTORE_CORPUS/tau-bench/gpt-4o-airline.conversations.jsonl: one JSON object a
 * line with `messages` in OpenAI chat format. Each conversation keeps its parsed JSON and owns
 * its events (corpus_free frees both).
 */
#ifndef CONVSTORE_TESTS_STORE_CORPUS_H
#define CONVSTORE_TESTS_STORE_CORPUS_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "openai.h"

#define CORPUS_MAX_CONVS    256
#define CORPUS_MAX_MESSAGES 128
#define CORPUS_FILE	    "tau-bench/gpt-4o-airline.conversations.jsonl"

typedef struct corpus_conv {
	json_t *root;		/* the parsed line */
	const json_t *messages; /* the original `messages` array (borrowed from root) */
	Convstore__V1__Event *events[CORPUS_MAX_MESSAGES];
	size_t n;
	size_t tool_calls;
	size_t pending; /* calls left unanswered at the end */
} corpus_conv;

typedef struct corpus {
	corpus_conv convs[CORPUS_MAX_CONVS];
	size_t n_convs, n_messages;
} corpus;

static inline const char *corpus_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* One OpenAI chat message as an event (tools/openai.c, owned by @c's conversation and freed by
 * corpus_free); NULL when it cannot be mapped. */
static inline Convstore__V1__Event *corpus_map_message(const json_t *m, corpus_conv *c)
{
	Convstore__V1__Event *ev = NULL;
	cs_error err = CS_ERROR_INIT;
	if (cs_openai_event(&ev, m, "gpt-4o", NULL, &err) != CS_OK)
		return NULL;
	if (ev->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE)
		c->tool_calls += ev->model_response->n_tool_calls;
	return ev;
}

/* Count the calls left unanswered, as the store's rules define them. */
static inline size_t corpus_unanswered(const corpus_conv *c)
{
	const char *open[CORPUS_MAX_MESSAGES];
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++) {
		const Convstore__V1__Event *e = c->events[i];
		if (e->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE) {
			for (size_t k = 0;
			     k < e->model_response->n_tool_calls && n < CORPUS_MAX_MESSAGES; k++)
				open[n++] = e->model_response->tool_calls[k]->id;
		} else if (e->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT) {
			for (size_t k = 0; k < n; k++)
				if (!strcmp(open[k], e->tool_result->call_id)) {
					open[k] = open[--n];
					break;
				}
		}
	}
	return n;
}

/* Map one line of the file into @c; false (with a message) when it is not a conversation. */
static inline bool corpus_parse_line(corpus_conv *c, const char *line, const char *where,
				     size_t lineno)
{
	json_error_t jerr = {0};
	c->root = json_loads(line, 0, &jerr);
	c->messages = json_object_get(c->root, "messages");
	if (!json_is_array(c->messages) || json_array_size(c->messages) > CORPUS_MAX_MESSAGES) {
		fprintf(stderr, "%s:%zu: not a conversation (%s)\n", where, lineno, jerr.text);
		return false;
	}
	size_t i;
	const json_t *m;
	json_array_foreach(c->messages, i, m)
	{
		c->events[i] = corpus_map_message(m, c);
		if (!c->events[i]) {
			c->n = i; /* corpus_free frees those mapped */
			fprintf(stderr, "%s:%zu: message %zu cannot be mapped\n", where, lineno, i);
			return false;
		}
	}
	c->n = json_array_size(c->messages);
	c->pending = corpus_unanswered(c);
	return true;
}

/* Load the corpus from folder @root (NULL: $CONVSTORE_CORPUS) into @out; 1 when done, 0 when the
 * file is absent, -1 on a malformed file. Free with corpus_free() in every case. */
static inline int corpus_load(corpus *out, ev_arena *a, const char *root)
{
	memset(out, 0, sizeof *out);
	if (!root)
		root = getenv("CONVSTORE_CORPUS");
	if (!root)
		return 0;
	char *path = ev_strf(a, "%s/%s", root, CORPUS_FILE);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0;
	int rc = 1;
	while (getline(&line, &cap, f) > 0 && out->n_convs < CORPUS_MAX_CONVS) {
		corpus_conv *c = &out->convs[out->n_convs++];
		if (!corpus_parse_line(c, line, path, out->n_convs)) {
			rc = -1;
			break;
		}
		out->n_messages += c->n;
	}
	free(line);
	fclose(f);
	return rc;
}

static inline void corpus_free(corpus *c)
{
	for (size_t k = 0; k < c->n_convs; k++) {
		json_decref(c->convs[k].root);
		for (size_t i = 0; i < c->convs[k].n; i++)
			protobuf_c_message_free_unpacked(&c->convs[k].events[i]->base, NULL);
	}
	c->n_convs = 0;
}

#endif
