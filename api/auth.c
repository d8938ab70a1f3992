/*
 * auth.c - API keys, tenants and roles (API.md "Auth and tenants").
 *
 * The key file holds no token, only its SHA-256: one key a line,
 *
 *     <64 lower-case hex digits: sha-256 of the token> <tenant> <role>
 *
 * blank lines and '#' comments allowed; roles read < append < admin, and operator (tenant
 * "*"). SHA-256 comes from OpenSSL's libcrypto (EVP_Digest): a digest is not something to write
 * again, and libcrypto is on every Debian machine. Tokens are compared by digest with
 * CRYPTO_memcmp, so the time taken says nothing about how much of a token was right.
 *
 * The order of checks is fixed by the API: a missing or unknown token is 401; a role too weak
 * for the route is 403, decided from the route alone before any conversation is looked at; only
 * then does a handler run, scoped to the key's tenant, so another tenant's conversation is a
 * plain 404. Without a key file every request is tenant "default" with every role (server.c
 * then refuses any address but loopback).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "server.h"

#define SHA256_LEN     32
#define KEYS_MAX       100000 /* lines of one key file */
#define NO_AUTH_TENANT "default"

typedef struct key_entry {
	unsigned char hash[SHA256_LEN];
	char tenant[CS_MAX_ID_LEN + 1];
	enum cs_role role;
} key_entry;

struct cs_keyring {
	key_entry *keys;
	size_t n, cap;
};

static const char *const role_names[] = {
    [CS_ROLE_NONE] = "none",   [CS_ROLE_READ] = "read",		[CS_ROLE_APPEND] = "append",
    [CS_ROLE_ADMIN] = "admin", [CS_ROLE_OPERATOR] = "operator",
};

static enum cs_role role_parse(const char *s)
{
	for (int i = CS_ROLE_READ; i <= CS_ROLE_OPERATOR; i++)
		if (strcmp(s, role_names[i]) == 0)
			return (enum cs_role)i;
	return CS_ROLE_NONE;
}

static int sha256(unsigned char out[SHA256_LEN], const char *data, size_t len)
{
	unsigned int n = 0;
	if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != SHA256_LEN)
		return CS_EIO;
	return CS_OK;
}

static bool hex_decode(unsigned char *out, size_t n, const char *hex)
{
	static const char digits[] = "0123456789abcdef";
	if (strlen(hex) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *hi = memchr(digits, hex[2 * i], 16);
		const char *lo = memchr(digits, hex[2 * i + 1], 16);
		if (!hi || !lo || !hex[2 * i] || !hex[2 * i + 1])
			return false;
		out[i] = (unsigned char)((hi - digits) * 16 + (lo - digits));
	}
	return true;
}

static void hex_encode(char *out, const unsigned char *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

/* The tenant and role of a key-file line (or of keygen's arguments) must fit together. */
static int key_check(enum cs_role *role, const char *tenant, const char *role_name, cs_error *err)
{
	*role = role_parse(role_name);
	if (*role == CS_ROLE_NONE)
		return cs_error_set(err, CS_EINVAL,
				    "role '%.32s' is not read, append, admin or operator",
				    role_name);
	if ((*role == CS_ROLE_OPERATOR) != (strcmp(tenant, "*") == 0))
		return cs_error_set(err, CS_EINVAL,
				    "role operator goes with tenant '*' and only it");
	if (*role != CS_ROLE_OPERATOR && !cs_id_valid(tenant))
		return cs_error_set(err, CS_EINVAL, "tenant '%.64s' is not a valid id", tenant);
	return CS_OK;
}

static int keyring_add(cs_keyring *k, const char *line, size_t lineno, cs_error *err)
{
	char hex[80], tenant[160], role_name[40], extra[2];
	int n = sscanf(line, "%79s %159s %39s %1s", hex, tenant, role_name, extra);
	if (n != 3)
		return cs_error_set(err, CS_EINVAL,
				    "line %zu: want '<sha-256 hex> <tenant> <role>'", lineno);
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 16;
		key_entry *grown = cap <= KEYS_MAX ? realloc(k->keys, cap * sizeof(*grown)) : NULL;
		if (!grown)
			return cs_error_set(err, CS_ENOMEM, "line %zu: too many keys", lineno);
		k->keys = grown;
		k->cap = cap;
	}
	key_entry *e = &k->keys[k->n];
	if (!hex_decode(e->hash, SHA256_LEN, hex))
		return cs_error_set(err, CS_EINVAL, "line %zu: not 64 lower-case hex digits",
				    lineno);
	int rc = key_check(&e->role, tenant, role_name, err);
	if (rc) {
		char what[32];
		snprintf(what, sizeof(what), "line %zu", lineno);
		return cs_error_wrap(err, rc, what);
	}
	memcpy(e->tenant, tenant, strlen(tenant) + 1); /* key_check bounded it */
	k->n++;
	return CS_OK;
}

int cs_keyring_load(cs_keyring **out, const char *path, cs_error *err)
{
	*out = NULL;
	FILE *f = fopen(path, "r");
	if (!f)
		return cs_error_set(err, CS_EIO, "cannot open key file %.200s", path);
	cs_keyring *k = calloc(1, sizeof(*k));
	char line[512];
	size_t lineno = 0;
	int rc = k ? CS_OK : cs_error_set(err, CS_ENOMEM, "out of memory loading keys");
	while (!rc && fgets(line, sizeof(line), f)) {
		lineno++;
		const char *p = line + strspn(line, " \t");
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		rc = keyring_add(k, p, lineno, err);
	}
	fclose(f);
	if (rc) {
		cs_keyring_free(k);
		return rc;
	}
	*out = k;
	return CS_OK;
}

void cs_keyring_free(cs_keyring *k)
{
	if (!k)
		return;
	free(k->keys);
	free(k);
}

static const key_entry *keyring_find(const cs_keyring *k, const char *token)
{
	unsigned char hash[SHA256_LEN];
	if (sha256(hash, token, strlen(token)))
		return NULL;
	const key_entry *hit = NULL;
	for (size_t i = 0; i < k->n; i++)
		if (CRYPTO_memcmp(hash, k->keys[i].hash, SHA256_LEN) == 0)
			hit = &k->keys[i];
	return hit;
}

/* Whether @have may call a route that needs @need. */
static bool role_allows(enum cs_role have, enum cs_role need)
{
	if (need == CS_ROLE_NONE)
		return true;
	if (need == CS_ROLE_OPERATOR || have == CS_ROLE_OPERATOR)
		return have == need;
	return have >= need;
}

int cs_auth_check(cs_req *r, cs_error *err)
{
	enum cs_role need = cs_routes[r->route].role;
	const cs_keyring *k = r->srv->keys;
	if (!k) {
		r->tenant = NO_AUTH_TENANT;
		r->role = CS_ROLE_ADMIN;
		return CS_OK;
	}
	if (need == CS_ROLE_NONE)
		return CS_OK;
	const char *auth = cs_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7])
		return cs_error_set(err, CS_HTTP_EUNAUTHENTICATED, "missing bearer token");
	const key_entry *e = keyring_find(k, auth + 7);
	if (!e)
		return cs_error_set(err, CS_HTTP_EUNAUTHENTICATED, "unknown token");
	r->tenant = e->tenant;
	r->role = e->role;
	if (!role_allows(e->role, need))
		return cs_error_set(err, CS_HTTP_EFORBIDDEN, "role %s may not %s %s",
				    role_names[e->role], cs_routes[r->route].method,
				    cs_routes[r->route].path);
	return CS_OK;
}

int cs_keygen(const char *tenant, const char *role_name, cs_error *err)
{
	enum cs_role role;
	int rc = key_check(&role, tenant, role_name, err);
	if (rc)
		return rc;
	unsigned char raw[32], hash[SHA256_LEN];
	char token[2 * sizeof(raw) + 1], hash_hex[2 * SHA256_LEN + 1];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return cs_error_set(err, CS_EIO, "getrandom failed");
	hex_encode(token, raw, sizeof(raw));
	if (sha256(hash, token, strlen(token)))
		return cs_error_set(err, CS_EIO, "sha-256 failed");
	hex_encode(hash_hex, hash, SHA256_LEN);
	printf("token: %s\n%s %s %s\n", token, hash_hex, tenant, role_name);
	return CS_OK;
}
