/*
 * tests/tmpfs.h - a small filesystem of the test's own, for the disk-full tests of the store
 * (tests/store/test_diskfull.c) and of the server (tests/api/test_diskfull.c).
 *
 * The tmpfs is mounted in a mount namespace private to the test process (unshare), so it cannot
 * outlive the test whatever happens to it: the kernel drops it when the last process in the
 * namespace exits, crash or not. Child processes (a convstored the test starts) inherit the
 * namespace and see the mount. Needs root; callers exit 77 (skipped) when mounting fails.
 * Header-only.
 */
#ifndef CONVSTORE_TESTS_TMPFS_H
#define CONVSTORE_TESTS_TMPFS_H

#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* Make a folder from the mkdtemp template @dir (rewritten in place) and mount a private tmpfs
 * with @options ("size=8m") on it; false when this process may not (the folder is removed). */
static inline bool tmpfs_mount(char *dir, const char *options)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNS) != 0)
		return false;
	/* Only the propagation changes: source and type are ignored (named for valgrind). */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
		return false;
	if (!mkdtemp(dir))
		return false;
	if (mount("tmpfs", dir, "tmpfs", 0, options) != 0) {
		rmdir(dir);
		return false;
	}
	return true;
}

static inline void tmpfs_unmount(const char *dir)
{
	umount2(dir, MNT_DETACH);
	rmdir(dir);
}

/* Write @bytes of filler to @path (space to free later); true when all of it was written. */
static inline bool tmpfs_fill(const char *path, size_t bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return false;
	static char block[4096];
	memset(block, 'f', sizeof(block));
	size_t written = 0;
	while (written < bytes && write(fd, block, sizeof(block)) == (ssize_t)sizeof(block))
		written += sizeof(block);
	close(fd);
	return written >= bytes;
}

#endif
