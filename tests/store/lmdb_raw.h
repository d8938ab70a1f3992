/*
 * tests/store/lmdb_raw.h - reach under the store: read and overwrite single records of a CLOSED
 * store's LMDB environment with liblmdb itself, to forge what a bug, a disk or another version
 * would leave (a foreign format number, a flipped byte, a truncated value). Each call is one
 * short transaction on a freshly opened environment, closed again before returning, so the store
 * can be reopened right after. Returns an LMDB code (0, MDB_NOTFOUND, ...).
 */
#ifndef CONVSTORE_TESTS_STORE_LMDB_RAW_H
#define CONVSTORE_TESTS_STORE_LMDB_RAW_H

#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Run one transaction on named database @db of the environment in folder @path. @db NULL is the
 * main database; with @create it is created when missing. */
typedef int (*raw_txn_fn)(MDB_txn *txn, MDB_dbi dbi, void *arg);

/* Open the environment in @path and begin one transaction; on failure *env may still need
 * mdb_env_close() (it is NULL when not created). */
static inline int raw_begin(MDB_env **env, MDB_txn **txn, const char *path, bool write)
{
	*env = NULL;
	*txn = NULL;
	int rc = mdb_env_create(env);
	if (rc)
		return rc;
	mdb_env_set_maxdbs(*env, 64);
	if ((rc = mdb_env_open(*env, path, write ? 0 : MDB_RDONLY, 0600)))
		return rc;
	return mdb_txn_begin(*env, NULL, write ? 0 : MDB_RDONLY, txn);
}

static inline int raw_with_db(const char *path, const char *db, bool create, bool write,
			      raw_txn_fn fn, void *arg)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	int rc = raw_begin(&env, &txn, path, write);
	if (rc)
		goto out;
	if ((rc = mdb_dbi_open(txn, db, create ? MDB_CREATE : 0, &dbi)))
		goto out;
	if ((rc = fn(txn, dbi, arg)))
		goto out;
	if (write) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
out:
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

typedef struct raw_kv {
	const void *key;
	size_t key_len;
	void *val; /* put: the bytes to store; get: a malloc'd copy (caller frees) */
	size_t val_len;
} raw_kv;

static inline int raw_get_fn(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
	raw_kv *kv = arg;
	MDB_val k = {kv->key_len, (void *)kv->key}, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc)
		return rc;
	kv->val = malloc(v.mv_size ? v.mv_size : 1);
	if (!kv->val)
		return ENOMEM;
	memcpy(kv->val, v.mv_data, v.mv_size);
	kv->val_len = v.mv_size;
	return 0;
}

static inline int raw_put_fn(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
	raw_kv *kv = arg;
	MDB_val k = {kv->key_len, (void *)kv->key}, v = {kv->val_len, kv->val};
	return mdb_put(txn, dbi, &k, &v, 0);
}

/* A malloc'd copy of the value of @key in @db; *val NULL when the call fails. */
static inline int raw_get(const char *path, const char *db, const void *key, size_t key_len,
			  void **val, size_t *val_len)
{
	raw_kv kv = {key, key_len, NULL, 0};
	int rc = raw_with_db(path, db, false, false, raw_get_fn, &kv);
	*val = rc ? NULL : kv.val;
	*val_len = rc ? 0 : kv.val_len;
	return rc;
}

/* Store @val under @key in @db (created when @create). */
static inline int raw_put(const char *path, const char *db, bool create, const void *key,
			  size_t key_len, const void *val, size_t val_len)
{
	raw_kv kv = {key, key_len, (void *)val, val_len};
	return raw_with_db(path, db, create, true, raw_put_fn, &kv);
}

static inline int raw_del_fn(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
	raw_kv *kv = arg;
	MDB_val k = {kv->key_len, (void *)kv->key};
	return mdb_del(txn, dbi, &k, NULL);
}

/* Delete @key from @db. */
static inline int raw_del(const char *path, const char *db, const void *key, size_t key_len)
{
	raw_kv kv = {key, key_len, NULL, 0};
	return raw_with_db(path, db, false, true, raw_del_fn, &kv);
}

static inline int raw_find_fn(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
	raw_kv *kv = arg;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return rc;
	MDB_val k, v;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (v.mv_size == kv->val_len && memcmp(v.mv_data, kv->val, v.mv_size) == 0) {
			void *copy = malloc(k.mv_size ? k.mv_size : 1);
			if (!copy) {
				rc = ENOMEM;
				break;
			}
			memcpy(copy, k.mv_data, k.mv_size);
			kv->key = copy;
			kv->key_len = k.mv_size;
			break;
		}
	}
	mdb_cursor_close(cur);
	return rc;
}

/* A malloc'd copy of the first key of @db whose value is exactly @val; MDB_NOTFOUND if none. */
static inline int raw_find_value(const char *path, const char *db, const void *val, size_t val_len,
				 void **key, size_t *key_len)
{
	raw_kv kv = {NULL, 0, (void *)val, val_len};
	int rc = raw_with_db(path, db, false, false, raw_find_fn, &kv);
	*key = rc ? NULL : (void *)kv.key;
	*key_len = rc ? 0 : kv.key_len;
	return rc;
}

/* The 8-byte big-endian key of global position @pos in the `events` database. */
static inline void raw_position_key(unsigned char key[8], uint64_t pos)
{
	for (int i = 7; i >= 0; i--) {
		key[i] = (unsigned char)(pos & 0xff);
		pos >>= 8;
	}
}

/*
 * The key of a conversation's head in `streams` (keys.c): [len][tenant][len][conversation] then
 * 8 bytes of 0xff, in @k (RAW_KEY_MAX bytes); returns its length.
 */
#define RAW_KEY_MAX (2 + 2 * 255 + 8)
static inline size_t raw_head_key(unsigned char *k, const char *tenant, const char *conv)
{
	size_t n = 0, lt = strlen(tenant), lc = strlen(conv);
	k[n++] = (unsigned char)lt;
	memcpy(k + n, tenant, lt);
	n += lt;
	k[n++] = (unsigned char)lc;
	memcpy(k + n, conv, lc);
	n += lc;
	memset(k + n, 0xff, 8);
	return n + 8;
}

/* Flip (xor 0x20) byte @at of the value under @key in @db; MDB_NOTFOUND also when @at is past
 * its end. */
static inline int raw_flip(const char *path, const char *db, const void *key, size_t key_len,
			   size_t at)
{
	void *val;
	size_t len;
	int rc = raw_get(path, db, key, key_len, &val, &len);
	if (rc)
		return rc;
	if (at < len) {
		((unsigned char *)val)[at] ^= 0x20;
		rc = raw_put(path, db, false, key, key_len, val, len);
	} else {
		rc = MDB_NOTFOUND;
	}
	free(val);
	return rc;
}

/* Called on every record of every named database by raw_walk_all(); non-zero stops the walk. */
typedef int (*raw_visit_fn)(const char *db, const MDB_val *key, const MDB_val *val, void *arg);

static inline int raw_walk_db(MDB_txn *txn, MDB_dbi dbi, const char *db, raw_visit_fn fn, void *arg)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return rc;
	MDB_val k, v;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		if ((rc = fn(db, &k, &v, arg)))
			break;
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Walk every record of every named database of the environment in @path (read-only; the store
 * must be closed): the main database lists the named ones, so databases added later are walked
 * too. Databases are visited in name order, records in key order.
 */
static inline int raw_walk_all(const char *path, raw_visit_fn fn, void *arg)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_dbi main_dbi;
	int rc;
	if ((rc = raw_begin(&env, &txn, path, false)) ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) ||
	    (rc = mdb_cursor_open(txn, main_dbi, &cur)))
		goto out;
	MDB_val k, v;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char name[512];
		MDB_dbi dbi;
		if (k.mv_size >= sizeof name)
			continue;
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if (mdb_dbi_open(txn, name, 0, &dbi) != 0)
			continue; /* a plain record of the main database, not a named one */
		if ((rc = raw_walk_db(txn, dbi, name, fn, arg)))
			break;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

#endif
