/*
 * procs.c - see procs.h.
 */
#include "procs.h"

#include <ftw.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

void procs_tmpdir(char *out, size_t size, const char *prefix)
{
	struct statfs fs;
	bool tmpfs = statfs("/tmp", &fs) == 0 && fs.f_type == TMPFS_MAGIC;
	snprintf(out, size, "%s/%s-XXXXXX", tmpfs ? "." : "/tmp", prefix);
	if (!mkdtemp(out)) {
		perror("mkdtemp");
		exit(1);
	}
}

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *ftw)
{
	(void)st, (void)f, (void)ftw;
	return remove(p);
}

void procs_rmtree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

pid_t procs_spawn(const char *exe, const char *dir, const char *const *extra, unsigned *port)
{
	char data[4200];
	int out[2];
	snprintf(data, sizeof(data), "%s/server", dir);
	if (pipe(out))
		return -1;
	const char *argv[32] = {exe, "--port", "0", "--data", data};
	size_t argc = 5;
	for (size_t i = 0; extra && extra[i] && argc < 31; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		if (!freopen("/dev/null", "w", stderr))
			_exit(127);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	char line[128] = "";
	size_t n = 0;
	while (n + 1 < sizeof(line) && read(out[0], line + n, 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	close(out[0]);
	const char *colon = strrchr(line, ':');
	*port = colon ? (unsigned)atoi(colon + 1) : 0;
	return *port ? pid : -1;
}

int procs_stop(pid_t pid)
{
	int status = 0;
	kill(pid, SIGTERM);
	if (waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

double procs_cpu_seconds(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long utime, stime;
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	/* after ")": state and fields 4..13, then utime (14) and stime (15) */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
			 &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

long procs_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	size_t len = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len) && line[len] == ':')
			kb = atol(line + len + 1);
	if (f)
		fclose(f);
	return kb;
}
