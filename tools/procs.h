/*
 * procs.h - what the load tools (bench_http, soak) need around the server they measure: start
 * a convstored on a free port in a temp folder and stop it, and read a process's CPU time and
 * memory from /proc. One copy, so that every tool measures the same way.
 */
#ifndef CONVSTORE_TOOLS_PROCS_H
#define CONVSTORE_TOOLS_PROCS_H

#include <stddef.h>
#include <sys/types.h>

/**
 * Make a temp folder on a real disk for a durable store: under /tmp, or under the current folder
 * when /tmp is tmpfs (where fsync costs nothing). @prefix names it. Exits on failure.
 */
void procs_tmpdir(char *out, size_t size, const char *prefix);

/** Remove @dir and everything in it. */
void procs_rmtree(const char *dir);

/**
 * Start @exe (convstored) with --port 0 --data @dir/server and the NULL-terminated @extra flags
 * (may be NULL), its stderr to /dev/null; *@port is the port it printed.
 * @return its pid; -1 when it did not start.
 */
pid_t procs_spawn(const char *exe, const char *dir, const char *const *extra, unsigned *port);

/** SIGTERM @pid and wait; whether it exited 0. */
int procs_stop(pid_t pid);

/** CPU seconds (user + system) process @pid has used; < 0 when unknown. */
double procs_cpu_seconds(pid_t pid);

/** A field of /proc/@pid/status in kB ("VmRSS", "RssAnon", "RssFile"); -1 when unknown. */
long procs_status_kb(pid_t pid, const char *field);

#endif
