/*
 * tests/check.h - the assertions every convstore test uses.
 *
 * A failed check prints "file:line: what was expected, and the values" to stderr, counts the
 * failure and carries on, so one run shows every broken case. main() runs its cases with
 * CHECK_RUN(fn) and ends with `return check_finish();`, which prints a summary and returns the
 * exit code meson reads (0 all passed, 1 any failed). Header-only: include it in exactly one
 * file per test executable.
 */
#ifndef CONVSTORE_TESTS_CHECK_H
#define CONVSTORE_TESTS_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static int check_failed;    /* failed checks */
static int check_passed;    /* passed checks */
static int check_cases;	    /* cases run by CHECK_RUN */
static int check_cases_bad; /* cases with at least one failed check */

static inline bool check_report(bool ok, const char *file, int line)
{
	if (ok) {
		check_passed++;
		return true;
	}
	check_failed++;
	fprintf(stderr, "%s:%d: check failed: ", file, line);
	return false;
}

static inline bool check_true(bool ok, const char *expr, const char *file, int line)
{
	if (!check_report(ok, file, line))
		fprintf(stderr, "%s\n", expr);
	return ok;
}

static inline bool check_int(long long a, long long b, const char *ea, const char *eb,
			     const char *file, int line)
{
	if (!check_report(a == b, file, line))
		fprintf(stderr, "%s == %s (%lld != %lld)\n", ea, eb, a, b);
	return a == b;
}

static inline bool check_uint(unsigned long long a, unsigned long long b, const char *ea,
			      const char *eb, const char *file, int line)
{
	if (!check_report(a == b, file, line))
		fprintf(stderr, "%s == %s (%llu != %llu)\n", ea, eb, a, b);
	return a == b;
}

static inline bool check_str(const char *a, const char *b, const char *ea, const char *eb,
			     const char *file, int line)
{
	bool ok = a && b && strcmp(a, b) == 0;
	if (!check_report(ok, file, line))
		fprintf(stderr, "%s == %s\n  got:  \"%s\"\n  want: \"%s\"\n", ea, eb,
			a ? a : "(null)", b ? b : "(null)");
	return ok;
}

static inline bool check_contains(const char *hay, const char *needle, const char *eh,
				  const char *file, int line)
{
	bool ok = hay && needle && strstr(hay, needle);
	if (!check_report(ok, file, line))
		fprintf(stderr, "%s contains \"%s\"\n  got: \"%s\"\n", eh,
			needle ? needle : "(null)", hay ? hay : "(null)");
	return ok;
}

static inline bool check_mem(const void *a, size_t alen, const void *b, size_t blen, const char *ea,
			     const char *eb, const char *file, int line)
{
	bool ok = alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
	if (!check_report(ok, file, line))
		fprintf(stderr, "%s == %s (%zu and %zu bytes)\n", ea, eb, alen, blen);
	return ok;
}

/* Each evaluates to true when the check passed, so a test can stop early: if (!CHECK(p)) return; */
#define CHECK(cond)	   check_true((cond), #cond, __FILE__, __LINE__)
#define CHECK_EQ_INT(a, b) check_int((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_EQ_UINT(a, b)                                                                        \
	check_uint((unsigned long long)(a), (unsigned long long)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR_EQ(a, b)	 check_str((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR_CONTAINS(h, n) check_contains((h), (n), #h, __FILE__, __LINE__)
#define CHECK_MEM_EQ(a, alen, b, blen)                                                             \
	check_mem((a), (alen), (b), (blen), #a, #b, __FILE__, __LINE__)

/* Run one test case: a void function of no arguments. */
#define CHECK_RUN(fn)                                                                              \
	do {                                                                                       \
		int check_before_ = check_failed;                                                  \
		check_cases++;                                                                     \
		fn();                                                                              \
		if (check_failed != check_before_) {                                               \
			check_cases_bad++;                                                         \
			fprintf(stderr, "FAIL %s\n", #fn);                                         \
		}                                                                                  \
	} while (0)

/* Print the summary; the exit code for main(). */
static inline int check_finish(void)
{
	fprintf(check_failed ? stderr : stdout, "%d cases (%d failed), %d checks (%d failed)\n",
		check_cases, check_cases_bad, check_passed + check_failed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
