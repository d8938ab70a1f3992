/*
 * convctl - the debugging and operations CLI. It opens a store directly (--data; LMDB lets it
 * while a server runs) or, for the read commands where that is natural, talks to a server over
 * HTTP (--url, with --token or $CONVSTORE_TOKEN).
 *
 * This file dispatches and holds the two commands that read nothing: init and keygen. The
 * others live by group in tools/ctl_*.c and share tools/ctl.h (flags, exit codes, printing):
 *   ctl_inspect.c  stats, ls, show, events, messages
 *   ctl_replay.c   replay, diff
 *   ctl_io.c       export, import, import-openai
 *   ctl_ops.c      verify, rebuild, compact
 *   ctl_tail.c     tail
 *
 * Only init, import, import-openai and rebuild write. Every other command opens the store
 * read-only, so that a mistyped --data is an error rather than a new empty store, and so that
 * it never competes with a running server's writer.
 *
 * keygen makes an API token for convstored's key file (API.md, "Auth and tenants"): 32 random
 * bytes as hex, and the line `<sha-256 of the token> <tenant> <role>`.
 *
 * Exit codes: 0 ok, 1 a failure or a problem found, 2 usage.
 */
#include <getopt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "ctl.h"

static const char usage[] =
    "usage: convctl [--data DIR | --url URL] [--token T] [--tenant T] [--json] COMMAND ...\n"
    "\n"
    "  --data DIR   the store's folder (default ./convstore-data)\n"
    "  --url URL    a server (http://HOST:PORT) instead, for ls, show, events, messages, tail\n"
    "  --token T    its API token (default $CONVSTORE_TOKEN)\n"
    "  --tenant T   the tenant whose conversations a store command reads (default \"default\")\n"
    "  --json       machine-readable output\n"
    "\n"
    "commands (convctl COMMAND --help for each):\n"
    "  init                 create the store in DIR (nothing happens when it exists)\n"
    "  stats                events, conversations, positions, map size and use, databases\n"
    "  ls                   the conversations, newest first\n"
    "  show CONV            the state view (--at N: as it was after version N)\n"
    "  events CONV          the raw events (--from N, --limit N)\n"
    "  messages CONV        the model-ready transcript (--at N)\n"
    "  replay CONV          step through the events and what each changed (--from, --to, --step)\n"
    "  diff CONV A B        two versions of a conversation; diff CONV1 CONV2: two branches\n"
    "  export [CONV...] -o FILE   the events as a gzip stream of delimited protobufs\n"
    "  import FILE          replay an export into the store (idempotent)\n"
    "  import-openai FILE   conversations in OpenAI chat format, one JSON object a line\n"
    "  verify               check CRCs, indexes, heads and projections; exits 1 on a problem\n"
    "  rebuild              rebuild every projection from the events\n"
    "  compact -o DIR       a compacted copy of the store\n"
    "  tail                 follow the global feed (--url: the server's SSE stream)\n"
    "  keygen TENANT ROLE   a new API token and its key-file line (roles: read, append,\n"
    "                       admin; operator with tenant '*')\n"
    "\n"
    "exit codes: 0 ok, 1 failure or problem found, 2 usage\n";

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

static const char init_usage[] = "usage: convctl init [--data DIR] [--json]\n"
				 "  create the store in DIR (nothing happens when it exists)\n";

static int cmd_init(ctl *c, int argc, char **argv)
{
	c->usage = init_usage;
	int rc = ctl_parse(c, argc, argv, NULL, 0, 0);
	cs_store *s;
	if (rc >= 0 || (rc = ctl_open(&s, c, true)))
		return rc;
	cs_store_close(s);
	if (c->json)
		printf("{\"format\": %d}\n", CS_STORE_FORMAT_VERSION);
	else
		printf("store ready (format %d)\n", CS_STORE_FORMAT_VERSION);
	return 0;
}

static const char keygen_usage[] =
    "usage: convctl keygen TENANT ROLE\n"
    "  print a new API token and its key-file line (roles: read, append, admin; operator\n"
    "  with tenant '*')\n";

static int cmd_keygen_args(ctl *c, int argc, char **argv)
{
	c->usage = keygen_usage;
	int rc = ctl_parse(c, argc, argv, NULL, 2, 2);
	return rc >= 0 ? rc : cmd_keygen(c->args[0], c->args[1]);
}

static const struct {
	const char *name;
	ctl_cmd run;
} cmds[] = {{"init", cmd_init},
	    {"stats", ctl_cmd_stats},
	    {"ls", ctl_cmd_ls},
	    {"show", ctl_cmd_show},
	    {"events", ctl_cmd_events},
	    {"messages", ctl_cmd_messages},
	    {"replay", ctl_cmd_replay},
	    {"diff", ctl_cmd_diff},
	    {"export", ctl_cmd_export},
	    {"import", ctl_cmd_import},
	    {"import-openai", ctl_cmd_import_openai},
	    {"verify", ctl_cmd_verify},
	    {"rebuild", ctl_cmd_rebuild},
	    {"compact", ctl_cmd_compact},
	    {"tail", ctl_cmd_tail},
	    {"keygen", cmd_keygen_args}};

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
					     {"url", required_argument, NULL, 'u'},
					     {"token", required_argument, NULL, 't'},
					     {"tenant", required_argument, NULL, 'T'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	ctl c = {.data = "./convstore-data", .tenant = "default", .name = "convctl"};
	int ch;
	/* "+": the global flags end at the command, whose own flags its parser reads */
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': c.data = optarg; break;
		case 'u': c.url = optarg; break;
		case 't': c.token = optarg; break;
		case 'T': c.tenant = optarg; break;
		case 'j': c.json = true; break;
		case 'h': fputs(usage, stdout); return CTL_OK;
		default: fputs(usage, stderr); return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		fputs("convctl: no command\n", stderr);
		fputs(usage, stderr);
		return CTL_USAGE;
	}
	const char *cmd = argv[optind];
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmd, cmds[i].name) == 0) {
			c.name = cmds[i].name;
			return cmds[i].run(&c, argc - optind, argv + optind);
		}
	}
	fprintf(stderr, "convctl: unknown command \"%s\"\n%s", cmd, usage);
	return CTL_USAGE;
}
