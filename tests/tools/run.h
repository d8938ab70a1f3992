/*
 * tests/tools/run.h - running convctl from a C test: a shell command's stdout and exit status
 * as values to assert on. Header-only; include it once per test executable.
 */
#ifndef CONVSTORE_TESTS_TOOLS_RUN_H
#define CONVSTORE_TESTS_TOOLS_RUN_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* Run a shell command (printf-style); its stdout in *out (malloc'd; NULL: dropped), its exit
 * status (-1 when it did not exit normally). */
static int run(char **out, const char *f, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *f, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, f);
	vsnprintf(cmd, sizeof(cmd), f, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	size_t cap = 1 << 16, len = 0, n;
	char *buf = malloc(cap);
	while (p && buf && (n = fread(buf + len, 1, cap - len - 1, p)) > 0)
		if ((len += n) + 1 == cap)
			buf = realloc(buf, cap *= 2);
	if (buf)
		buf[len] = '\0';
	int status = p ? pclose(p) : -1;
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

#endif
