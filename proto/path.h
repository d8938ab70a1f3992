/*
 * path.h - the field path shown in error messages ("events[2].message.content"), shared by the
 * JSON codec (json.c) and the message walk (walk.c). Private to proto/.
 *
 * The path is built in a fixed buffer as a walk goes down and cut back on the way up: every push
 * returns the length to cut back to. Past CS_PATH_CAP it is simply truncated. Bytes that come
 * from input (map keys, field names) are shown as printable ASCII only, so that a message stays
 * one valid line whatever the input held.
 */
#ifndef CONVSTORE_PROTO_PATH_H
#define CONVSTORE_PROTO_PATH_H

#include <stddef.h>

#define CS_PATH_CAP  160
#define CS_SHOWN_CAP 52 /* room for one shown piece of input, "..." and the NUL included */

typedef struct cs_path {
	size_t len;
	char buf[CS_PATH_CAP];
} cs_path;

/* Copy untrusted @s for a message: printable ASCII but '"' and '\' ('?' for any other byte),
 * cut to fit @cap (at least 5) with "..." when it does not. Returns @dst, to be used in place. */
const char *cs_path_show(char *dst, size_t cap, const char *s, size_t len);

size_t cs_path_append(cs_path *p, const char *s, size_t n);
/* ".name" (or "name" at the top). */
size_t cs_path_field(cs_path *p, const char *name);
/* "[i]" */
size_t cs_path_index(cs_path *p, size_t i);
/* "[\"key\"]", the key shown as cs_path_show does. */
size_t cs_path_key(cs_path *p, const char *key, size_t len);
void cs_path_pop(cs_path *p, size_t mark);

#endif
