/*
 * path.c - the field path of error messages; see path.h.
 */
#include "path.h"

#include <stdio.h>
#include <string.h>

const char *cs_path_show(char *dst, size_t cap, const char *s, size_t len)
{
	size_t n = 0, max = cap - 4;
	for (size_t i = 0; i < len && n < max; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[n++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
	}
	if (len > max) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
	return dst;
}

size_t cs_path_append(cs_path *p, const char *s, size_t n)
{
	size_t mark = p->len;
	if (n > CS_PATH_CAP - 1 - p->len)
		n = CS_PATH_CAP - 1 - p->len;
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
	return mark;
}

size_t cs_path_field(cs_path *p, const char *name)
{
	size_t mark = p->len;
	if (p->len)
		cs_path_append(p, ".", 1);
	cs_path_append(p, name, strlen(name));
	return mark;
}

size_t cs_path_index(cs_path *p, size_t i)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "[%zu]", i);
	return cs_path_append(p, buf, (size_t)n);
}

size_t cs_path_key(cs_path *p, const char *key, size_t len)
{
	char shown[CS_SHOWN_CAP];
	char buf[CS_SHOWN_CAP + 8];
	cs_path_show(shown, sizeof(shown), key, len);
	int n = snprintf(buf, sizeof(buf), "[\"%s\"]", shown);
	return cs_path_append(p, buf, (size_t)n);
}

void cs_path_pop(cs_path *p, size_t mark)
{
	p->len = mark;
	p->buf[mark] = '\0';
}
