/*
 * env.c - the one LMDB wrapper: opening the environment and its named databases, mapping LMDB's
 * codes to ours, transactions, and growing the map.
 *
 * Invariants:
 *  - Every transaction of this process holds txn_lock shared from begin to commit/abort, and
 *    growing the map holds it exclusively. LMDB requires mdb_env_set_mapsize() to run with no
 *    transaction open in the process; the lock makes that a fact instead of a comment. The lock
 *    prefers writers, so a grow waits only for the reads already running.
 *  - MDB_NOTLS: a read transaction is not tied to its thread's slot, so HTTP worker threads can
 *    each hold one without exhausting the reader table.
 *  - A map that another process grew (MDB_MAP_RESIZED) is adopted and the begin retried once;
 *    a full reader table (MDB_READERS_FULL) gets one mdb_reader_check() and one retry.
 *
 * A full disk: LMDB returns ENOSPC from a failed write, but EIO from a short one (the usual
 * way a full disk shows); an EIO at commit with under CS_LOW_SPACE bytes free is taken for a
 * full disk too. Either way the transaction is aborted and nothing of it is visible.
 *
 * Durability: without no_sync, mdb_txn_commit() writes and fdatasync()s before it returns, so a
 * commit that returned is on disk. With no_sync (MDB_NOSYNC) it is not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "internal.h"

#define MAIN_DBI	    1 /* LMDB's unnamed database, where named ones are listed */
#define CS_LOW_SPACE	    ((uint64_t)16 << 20) /* below this, a failed write means a full disk */
#define CS_DEFAULT_MAP_SIZE ((size_t)64 << 20)

int cs_lmdb_error(cs_error *err, int rc, const char *what)
{
	int code;
	switch (rc) {
	case MDB_SUCCESS: return CS_OK;
	case MDB_NOTFOUND: code = CS_ENOTFOUND; break;
	case MDB_MAP_FULL: code = CS_EMAPFULL; break;
	case ENOSPC:
	case EDQUOT: code = CS_EFULL; break;
	case MDB_TXN_FULL:
	case MDB_BAD_VALSIZE: code = CS_ETOOBIG; break;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_INCOMPATIBLE: code = CS_ECORRUPT; break;
	case ENOMEM: code = CS_ENOMEM; break;
	default: code = CS_EIO; break;
	}
	return cs_error_set(err, code, "%s: %s", what, mdb_strerror(rc));
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(buf))
		return ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return errno;
		buf[i] = c;
	}
	return 0;
}

/* Make the store's folder and its files' names durable (LMDB syncs the files' contents, not the
 * directory entries): fsync the folder and the folder it sits in. Best effort. */
static void sync_dirs(const char *path)
{
	char parent[4096];
	snprintf(parent, sizeof(parent), "%s/..", path);
	const char *dirs[] = {path, parent};
	for (size_t i = 0; i < 2; i++) {
		int fd = open(dirs[i], O_RDONLY | O_DIRECTORY);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
}

/* The named databases, in the order stats lists them. */
static const struct {
	const char *name;
	size_t offset; /* of its MDB_dbi in cs_env */
} dbs[CS_ENV_DBS] = {{"meta", offsetof(cs_env, meta)},	     {"events", offsetof(cs_env, events)},
		     {"streams", offsetof(cs_env, streams)}, {"idem", offsetof(cs_env, idem)},
		     {"snaps", offsetof(cs_env, snaps)},     {"list", offsetof(cs_env, list)},
		     {"usage", offsetof(cs_env, usage)},     {"forks", offsetof(cs_env, forks)},
		     {"tombs", offsetof(cs_env, tombs)},     {"retain", offsetof(cs_env, retain)},
		     {"calls", offsetof(cs_env, calls)}};

const char *cs_env_db_name(size_t i)
{
	return dbs[i].name;
}

MDB_dbi *cs_env_dbi(cs_env *e, size_t i)
{
	return (MDB_dbi *)((char *)e + dbs[i].offset);
}

static int open_dbis(cs_env *e, cs_error *err)
{
	MDB_txn *txn;
	unsigned flags = e->read_only ? 0 : MDB_CREATE;
	int rc = mdb_txn_begin(e->env, NULL, e->read_only ? MDB_RDONLY : 0, &txn);
	if (rc)
		return cs_lmdb_error(err, rc, "begin");
	/* Only an empty environment may become a store: one holding other data is not ours. */
	MDB_dbi probe;
	MDB_stat st;
	if (mdb_dbi_open(txn, "meta", 0, &probe) == MDB_NOTFOUND &&
	    mdb_stat(txn, MAIN_DBI, &st) == 0 && st.ms_entries > 0) {
		mdb_txn_abort(txn);
		return cs_error_set(err, CS_ECORRUPT,
				    "not a convstore store: the environment holds other data");
	}
	for (size_t i = 0; i < CS_ENV_DBS; i++) {
		rc = mdb_dbi_open(txn, dbs[i].name, flags, cs_env_dbi(e, i));
		if (rc) {
			mdb_txn_abort(txn);
			if (rc == MDB_NOTFOUND)
				return cs_error_set(err, CS_ECORRUPT,
						    "not a convstore store: no \"%s\" database",
						    dbs[i].name);
			return cs_lmdb_error(err, rc, dbs[i].name);
		}
	}
	rc = mdb_txn_commit(txn);
	return rc ? cs_lmdb_error(err, rc, "open databases") : CS_OK;
}

int cs_env_open(cs_env *e, const cs_store_options *o, cs_error *err)
{
	memset(e, 0, sizeof(*e));
	e->read_only = o->read_only;
	if (strlen(o->path) >= sizeof(e->path))
		return cs_error_set(err, CS_EINVAL, "store path is longer than %zu bytes",
				    sizeof(e->path) - 1);
	strcpy(e->path, o->path);
	e->map_size = o->map_size ? o->map_size : CS_DEFAULT_MAP_SIZE;
	e->max_map_size = o->max_map_size;
	if (e->max_map_size && e->map_size > e->max_map_size)
		e->map_size = e->max_map_size;

	if (!e->read_only) {
		int rc = mkdir_p(o->path);
		if (rc)
			return cs_error_set(err, CS_EIO, "cannot create %s: %s", o->path,
					    strerror(rc));
	}
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->txn_lock, &attr);
	pthread_rwlockattr_destroy(&attr);

	int rc = mdb_env_create(&e->env);
	if (rc)
		goto fail;
	mdb_env_set_maxdbs(e->env, 16);
	mdb_env_set_maxreaders(e->env, o->max_readers ? o->max_readers : 510);
	if ((rc = mdb_env_set_mapsize(e->env, e->map_size)))
		goto fail;
	unsigned flags =
	    MDB_NOTLS | (o->no_sync ? MDB_NOSYNC : 0) | (e->read_only ? MDB_RDONLY : 0);
	if ((rc = mdb_env_open(e->env, o->path, flags, 0600)))
		goto fail;
	/* Another process may have grown the map beyond what we asked for: adopt its size. */
	MDB_envinfo info;
	mdb_env_info(e->env, &info);
	e->map_size = info.me_mapsize;
	if (!e->read_only)
		sync_dirs(o->path);
	if (open_dbis(e, err) != CS_OK) {
		cs_env_close(e);
		return err ? err->code : CS_EIO;
	}
	return CS_OK;
fail:
	cs_lmdb_error(err, rc, "open");
	cs_env_close(e);
	return err ? err->code : CS_EIO;
}

void cs_env_close(cs_env *e)
{
	if (e->env)
		mdb_env_close(e->env);
	e->env = NULL;
	pthread_rwlock_destroy(&e->txn_lock);
}

/* Adopt a map size another process set (MDB_MAP_RESIZED). Needs no txn open: exclusive lock. */
/* Resize the map (txn_lock held exclusively). When LMDB cannot map the new size it has already
 * dropped the old map, so map the old size again; if even that fails, the store is dead rather
 * than one access away from a crash. */
static int resize_locked(cs_env *e, size_t size)
{
	int rc = mdb_env_set_mapsize(e->env, size);
	if (rc && mdb_env_set_mapsize(e->env, e->map_size) != 0)
		e->dead = true;
	if (!rc) {
		MDB_envinfo info;
		mdb_env_info(e->env, &info);
		e->map_size = info.me_mapsize;
	}
	return rc;
}

static void adopt_map_size(cs_env *e)
{
	pthread_rwlock_wrlock(&e->txn_lock);
	resize_locked(e, 0);
	pthread_rwlock_unlock(&e->txn_lock);
}

int cs_txn_begin(MDB_txn **out, cs_env *e, bool write, cs_error *err)
{
	*out = NULL;
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		pthread_rwlock_rdlock(&e->txn_lock);
		if (e->dead) {
			pthread_rwlock_unlock(&e->txn_lock);
			return cs_error_set(err, CS_EIO,
					    "the store lost its map in a failed resize; "
					    "reopen it");
		}
		rc = mdb_txn_begin(e->env, NULL, write ? 0 : MDB_RDONLY, out);
		if (rc == MDB_SUCCESS)
			return CS_OK;
		pthread_rwlock_unlock(&e->txn_lock);
		if (rc == MDB_MAP_RESIZED) {
			adopt_map_size(e);
		} else if (rc == MDB_READERS_FULL) {
			int dead = 0;
			mdb_reader_check(e->env, &dead);
		} else {
			break;
		}
	}
	*out = NULL;
	return cs_lmdb_error(err, rc, write ? "begin write" : "begin read");
}

void cs_txn_abort(cs_env *e, MDB_txn *txn)
{
	if (!txn)
		return;
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&e->txn_lock);
}

/* Whether the filesystem under the store has less than CS_LOW_SPACE bytes left for us. */
static bool low_on_space(const cs_env *e)
{
	struct statvfs fs;
	return statvfs(e->path, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < CS_LOW_SPACE;
}

int cs_txn_commit(cs_env *e, MDB_txn *txn, cs_error *err)
{
	int rc = mdb_txn_commit(txn);
	pthread_rwlock_unlock(&e->txn_lock);
	/* LMDB reports a short write as EIO ("filesystem full?" in its source): when the disk is
	 * indeed nearly full, that is CS_EFULL, which callers can act on. */
	if (rc == EIO && low_on_space(e))
		rc = ENOSPC;
	return rc ? cs_lmdb_error(err, rc, "commit") : CS_OK;
}

/* The largest map the disk could fill: the data file's size plus the space left for us. A map
 * beyond it buys nothing (its pages could never be written), and a grossly oversized one can
 * fail to map at all, which would leave LMDB without its map. */
static size_t disk_limit(const cs_env *e)
{
	char file[sizeof(e->path) + 16];
	struct stat st;
	struct statvfs fs;
	snprintf(file, sizeof(file), "%s/data.mdb", e->path);
	if (stat(file, &st) != 0 || statvfs(e->path, &fs) != 0)
		return SIZE_MAX;
	uint64_t limit = (uint64_t)st.st_size + (uint64_t)fs.f_bavail * fs.f_frsize;
	return limit > SIZE_MAX ? SIZE_MAX : (size_t)limit;
}

int cs_env_grow(cs_env *e, size_t at_least, cs_error *err)
{
	pthread_rwlock_wrlock(&e->txn_lock);
	size_t want = e->map_size * 2;
	if (want < e->map_size + at_least)
		want = e->map_size + at_least;
	if (e->max_map_size && want > e->max_map_size)
		want = e->max_map_size;
	size_t disk = disk_limit(e);
	if (want > disk)
		want = disk;
	int rc = CS_OK;
	if (want <= e->map_size && want == disk) {
		rc =
		    cs_error_set(err, CS_EFULL,
				 "no space left on the disk for a map over %zu bytes", e->map_size);
	} else if (want <= e->map_size) {
		rc = cs_error_set(err, CS_EFULL, "map is at its %zu-byte cap", e->map_size);
	} else {
		int mrc = resize_locked(e, want);
		if (mrc)
			rc = cs_lmdb_error(err, mrc, "grow map");
		else
			e->grows++;
	}
	pthread_rwlock_unlock(&e->txn_lock);
	return rc;
}

int cs_cursor_before(MDB_cursor *cur, MDB_val *key, MDB_val *val)
{
	int rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND) /* nothing at or after: the last entry is before */
		return mdb_cursor_get(cur, key, val, MDB_LAST);
	return rc ? rc : mdb_cursor_get(cur, key, val, MDB_PREV);
}

int cs_env_copy(cs_env *e, const char *path, cs_error *err)
{
	if (mkdir(path, 0700) != 0)
		return cs_error_set(err, errno == EEXIST ? CS_EINVAL : CS_EIO, "%s: %s", path,
				    errno == EEXIST ? "exists already" : strerror(errno));
	pthread_rwlock_rdlock(&e->txn_lock); /* no resize while LMDB copies the map */
	int rc = mdb_env_copy2(e->env, path, MDB_CP_COMPACT);
	pthread_rwlock_unlock(&e->txn_lock);
	if (rc) {
		char file[4200];
		snprintf(file, sizeof(file), "%s/data.mdb", path);
		unlink(file); /* leave no half copy behind */
		rmdir(path);
		return cs_lmdb_error(err, rc, "copy");
	}
	return CS_OK;
}
