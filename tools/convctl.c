/*
 * convctl - the operations and debugging CLI, opening a store directly (LMDB lets it while a
 * server runs). This first cut has the commands the core needs: init, stats and verify. Inspect,
 * replay, export/import, rebuild and tail come with the convctl issue.
 *
 * Only init writes. Every other command opens the store read-only, so that a mistyped --data
 * is an error rather than a new empty store, and so that it never competes with a running
 * server's writer.
 *
 * keygen opens no store: it makes an API token for convstored's key file (API.md, "Auth and
 * tenants"): 32 random bytes as hex, and the line `<sha-256 of the token> <tenant> <role>`.
 *
 * Exit codes: 0 ok, 1 a failure or a problem found, 2 usage.
 */
#include <getopt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "convstore/store.h"

static const char usage[] =
    "usage: convctl [--data DIR] [--json] COMMAND\n"
    "\n"
    "  --data DIR   the store's folder (default ./convstore-data)\n"
    "  --json       machine-readable output\n"
    "\n"
    "commands:\n"
    "  init         create the store in DIR (nothing happens when it exists)\n"
    "  stats        events, conversations, last position, map size and use\n"
    "  verify       check every record's CRC, the indexes against the log, every head and\n"
    "               every projection against a fresh fold; exits 1 when a problem is found\n"
    "  keygen TENANT ROLE\n"
    "               print a new API token and its key-file line (roles: read, append,\n"
    "               admin; operator with tenant '*')\n";

static void hex(char *out, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static int cmd_keygen(const char *tenant, const char *role)
{
	static const char *const roles[] = {"read", "append", "admin", "operator"};
	size_t r = 0;
	while (r < 4 && strcmp(role, roles[r]) != 0)
		r++;
	bool operator= r == 3, any = strcmp(tenant, "*") == 0;
	if (r == 4 || operator!= any ||(!any && !cs_id_valid(tenant))) {
		fprintf(stderr, "convctl: keygen: want a tenant id and read, append or admin, or "
				"'*' and operator\n");
		return 2;
	}
	unsigned char raw[32], digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char token[2 * sizeof(raw) + 1], digest_hex[2 * EVP_MAX_MD_SIZE + 1];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		perror("convctl: keygen: getrandom");
		return 1;
	}
	hex(token, raw, sizeof(raw));
	if (!EVP_Digest(token, strlen(token), digest, &dlen, EVP_sha256(), NULL)) {
		fprintf(stderr, "convctl: keygen: sha-256 failed\n");
		return 1;
	}
	hex(digest_hex, digest, dlen);
	printf("token: %s\n%s %s %s\n", token, digest_hex, tenant, role);
	return 0;
}

static int cmd_init(cs_store *s, bool json)
{
	(void)s;
	if (json)
		printf("{\"format\": %d}\n", CS_STORE_FORMAT_VERSION);
	else
		printf("store ready (format %d)\n", CS_STORE_FORMAT_VERSION);
	return 0;
}

static int cmd_stats(cs_store *s, bool json)
{
	cs_store_stats st;
	cs_error err = CS_ERROR_INIT;
	if (cs_store_stats_get(&st, s, &err)) {
		fprintf(stderr, "convctl: stats: %s\n", err.msg);
		return 1;
	}
	unsigned long long v[] = {st.events, st.conversations, st.last_position, st.map_size,
				  st.map_used};
	if (json)
		printf("{\"events\": %llu, \"conversations\": %llu, \"last_position\": %llu, "
		       "\"map_size\": %llu, \"map_used\": %llu}\n",
		       v[0], v[1], v[2], v[3], v[4]);
	else
		printf("events         %llu\nconversations  %llu\nlast position  %llu\n"
		       "map size       %llu\nmap used       %llu\n",
		       v[0], v[1], v[2], v[3], v[4]);
	return 0;
}

static int cmd_verify(cs_store *s, bool json)
{
	cs_verify_report rep;
	cs_error err = CS_ERROR_INIT;
	int rc = cs_store_verify(&rep, s, &err);
	if (json)
		printf("{\"records\": %llu, \"problems\": %llu, \"first_bad_position\": %llu}\n",
		       (unsigned long long)rep.records, (unsigned long long)rep.problems,
		       (unsigned long long)rep.first_bad_position);
	else
		printf("%llu records checked, %llu problems\n", (unsigned long long)rep.records,
		       (unsigned long long)rep.problems);
	if (rc)
		fprintf(stderr, "convctl: verify: %s\n", err.msg);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *data = "./convstore-data";
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "d:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind + 3 == argc && strcmp(argv[optind], "keygen") == 0)
		return cmd_keygen(argv[optind + 1], argv[optind + 2]);
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	static const struct {
		const char *name;
		int (*run)(cs_store *, bool);
		bool writes;
	} cmds[] = {
	    {"init", cmd_init, true}, {"stats", cmd_stats, false}, {"verify", cmd_verify, false}};
	size_t n_cmds = sizeof(cmds) / sizeof(cmds[0]), i = 0;
	while (i < n_cmds && strcmp(cmd, cmds[i].name) != 0)
		i++;
	int (*run)(cs_store *, bool) = i < n_cmds ? cmds[i].run : NULL;
	if (!run) {
		fprintf(stderr, "convctl: unknown command \"%s\"\n%s", cmd, usage);
		return 2;
	}
	cs_store *s;
	cs_error err = CS_ERROR_INIT;
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = data;
	o.read_only = !cmds[i].writes;
	if (cs_store_open(&s, &o, &err)) {
		fprintf(stderr, "convctl: %s: %s\n", data, err.msg);
		return 1;
	}
	int rc = run(s, json);
	cs_store_close(s);
	return rc;
}
