/*
 * tests/tools/test_ctl_server.c - convctl against a real convstored on loopback (started and
 * stopped by pid through tests/api/server.h): the read commands over --url give what they give
 * on the store; tail --url follows the SSE feed, filters by type, and after the server is
 * stopped and started again on the same port resumes with Last-Event-ID without losing or
 * repeating an event; a store with a fork, an update, metadata, tool calls and an erased
 * conversation, exported while the server runs and imported into an empty store, shows every
 * conversation exactly as the original (timestamps, positions and fork links included); diff
 * names where a fork and its parent part.
 *
 * $CONVSTORED is the server, $CONVCTL the CLI.
 */
#include <poll.h>
#include <sys/stat.h>
#include <time.h>

#include "../check.h"
#include "../api/server.h"
#include "run.h"

static const char *convctl;

static void append(srv *s, const char *conv, const char *events)
{
	char path[256], body[4096];
	snprintf(path, sizeof(path), "/v1/conversations/%s/events", conv);
	snprintf(body, sizeof(body), "{\"events\": [%s]}", events);
	CHECK_EQ_INT(srv_json(s, NULL, "POST", path, body), 201);
}

/* Wait until @path holds @lines lines (at most 10 s). */
static bool wait_lines(const char *path, size_t lines)
{
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(path, "r");
		size_t n = 0;
		int ch;
		while (f && (ch = fgetc(f)) != EOF)
			n += ch == '\n';
		if (f)
			fclose(f);
		if (n >= lines)
			return true;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	return false;
}

/* Wait for @pid (at most 10 s); its exit status, -1 when it had to be killed. */
static int wait_exit(pid_t pid)
{
	for (int i = 0; i < 200; i++) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* Start `convctl ARGS...` with stdout into @out_path. */
static pid_t spawn(const char *out_path, const char *const *args)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		const char *argv[16] = {convctl};
		for (int i = 0; args[i] && i < 14; i++)
			argv[i + 1] = args[i];
		execv(convctl, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void test_tail_resumes(void)
{
	srv s;
	srv_start(&s, NULL);
	char url[64], out[PATH_MAX + 16], port[16];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", s.port);
	snprintf(port, sizeof(port), "%u", s.port);
	snprintf(out, sizeof(out), "%s/tail.out", s.dir);
	append(&s, "c1",
	       "{\"message\": {\"role\": \"user\", \"content\": \"one\"}},"
	       "{\"message\": {\"role\": \"user\", \"content\": \"two\"}}");
	const char *args[] = {"--url", url,	  "--json", "tail", "--after-position",
			      "0",     "--count", "6",	    NULL};
	pid_t tail = spawn(out, args);
	CHECK(wait_lines(out, 2));

	/* The server goes away and comes back on the same port; tail reconnects. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", s.dir);
	CHECK_EQ_INT(srv_stop_keep(&s), 0);
	const char *again[] = {"--port", port, NULL};
	srv_start_in(&s, dir, again);
	append(&s, "c1", "{\"message\": {\"role\": \"user\", \"content\": \"three\"}}");
	append(&s, "c2",
	       "{\"message\": {\"role\": \"user\", \"content\": \"four\"}},"
	       "{\"model_response\": {\"model\": \"m\", \"content\": \"five\"}},"
	       "{\"message\": {\"role\": \"user\", \"content\": \"six\"}}");
	CHECK_EQ_INT(wait_exit(tail), 0);
	char *text;
	run(&text, "cat %s", out);
	CHECK_EQ_UINT(count_lines(text), 6);
	size_t i = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), i++) {
		json_t *e = json_loads(line, 0, NULL);
		CHECK_EQ_INT(jint(e, "position"), (long long)i + 1);
		json_decref(e);
	}
	free(text);

	/* --types, and the readable line */
	CHECK_EQ_INT(run(&text,
			 "%s --url %s tail --after-position 0 --types model_response "
			 "--count 1",
			 convctl, url),
		     0);
	CHECK_STR_CONTAINS(text, "#2 @5 c2 model_response");
	CHECK_STR_CONTAINS(text, "m: five");
	free(text);
	CHECK_EQ_INT(run(NULL, "%s --url nothttp tail 2>/dev/null", convctl), 2);
	srv_stop(&s);
}

/* Everything a state can hold, through the HTTP API. */
static void build(srv *s)
{
	CHECK_EQ_INT(srv_json(s, NULL, "POST", "/v1/conversations",
			      "{\"id\": \"c1\", \"title\": \"t\", \"metadata\": {\"k\": \"v\"}}"),
		     201);
	append(s, "c1",
	       "{\"id\": \"e1\", \"message\": {\"role\": \"user\", \"content\": \"hi\"}},"
	       "{\"model_response\": {\"model\": \"gpt-4o\", \"tool_calls\": [{\"id\": "
	       "\"call_1\", \"name\": \"f\", \"arguments\": \"{}\"}], \"usage\": "
	       "{\"input_tokens\": 10, \"output_tokens\": 2}, \"cost_usd\": 0.5}}");
	CHECK_EQ_INT(srv_json(s, NULL, "POST", "/v1/conversations/c1/fork",
			      "{\"at_version\": 3, \"id\": \"c1-b\"}"),
		     201);
	append(s, "c1", "{\"tool_result\": {\"call_id\": \"call_1\", \"output\": \"ok\"}}");
	append(s, "c1-b",
	       "{\"tool_result\": {\"call_id\": \"call_1\", \"output\": \"other\", "
	       "\"is_error\": true}}");
	append(s, "gone", "{\"message\": {\"role\": \"user\", \"content\": \"bye\"}}");
	CHECK_EQ_INT(srv_json(s, NULL, "DELETE", "/v1/conversations/gone", NULL), 204);
	CHECK_EQ_INT(srv_json(s, NULL, "PATCH", "/v1/conversations/c1",
			      "{\"title\": \"t2\", \"status\": \"archived\"}"),
		     200);
}

static void test_round_trip_and_url(void)
{
	srv s;
	srv_start(&s, NULL);
	build(&s);
	char url[64], *a, *b;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", s.port);
	const char *conv[] = {"c1", "c1-b"};
	for (int i = 0; i < 2; i++) { /* --url and --data read the same views */
		CHECK_EQ_INT(run(&a, "%s --json --url %s show %s", convctl, url, conv[i]), 0);
		CHECK_EQ_INT(run(&b, "%s --json --data %s/data show %s", convctl, s.dir, conv[i]),
			     0);
		CHECK_STR_EQ(a, b);
		free(a);
		free(b);
		CHECK_EQ_INT(run(&a, "%s --url %s messages %s --at 2", convctl, url, conv[i]), 0);
		CHECK_EQ_INT(
		    run(&b, "%s --data %s/data messages %s --at 2", convctl, s.dir, conv[i]), 0);
		CHECK_STR_EQ(a, b);
		free(a);
		free(b);
	}
	CHECK_EQ_INT(run(&a, "%s --url %s events c1 --from 2 --limit 2", convctl, url), 0);
	CHECK_EQ_UINT(count_lines(a), 2);
	CHECK_STR_CONTAINS(a, "#3 @3 c1 model_response");
	free(a);
	CHECK_EQ_INT(run(&a, "%s --url %s ls", convctl, url), 0);
	CHECK_EQ_UINT(count_lines(a), 2);
	free(a);
	CHECK_EQ_INT(run(&a, "%s --url %s show nope 2>&1", convctl, url), 1);
	CHECK_STR_CONTAINS(a, "convctl: show: 404 conversation \"nope\" not found");
	free(a);

	/* Export while the server runs; import into an empty store: the same states. */
	CHECK_EQ_INT(run(NULL, "%s --data %s/data export -o %s/x.gz", convctl, s.dir, s.dir), 0);
	CHECK_EQ_INT(run(NULL, "%s --data %s/copy import %s/x.gz", convctl, s.dir, s.dir), 0);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(run(&a, "%s --json --data %s/data show %s", convctl, s.dir, conv[i]),
			     0);
		CHECK_EQ_INT(run(&b, "%s --json --data %s/copy show %s", convctl, s.dir, conv[i]),
			     0);
		CHECK_STR_EQ(a, b);
		free(a);
		free(b);
	}
	CHECK_EQ_INT(run(NULL, "%s --data %s/copy verify", convctl, s.dir), 0);
	CHECK_EQ_INT(run(&a, "%s --data %s/copy show gone 2>&1", convctl, s.dir), 1);
	free(a);

	/* diff of two branches: where they part, and how they differ */
	CHECK_EQ_INT(run(&a, "%s --data %s/copy diff c1 c1-b", convctl, s.dir), 0);
	CHECK_STR_CONTAINS(a, "c1 and c1-b share versions 1..3");
	CHECK_STR_CONTAINS(a, "c1 after 3: 2 events");
	CHECK_STR_CONTAINS(a, "c1-b after 3: 2 events");
	CHECK_STR_CONTAINS(a, "tool errors +1");
	free(a);
	srv_stop(&s);
}

int main(void)
{
	convctl = getenv("CONVCTL");
	if (!convctl) {
		fprintf(stderr, "CONVCTL is not set\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	CHECK_RUN(test_tail_resumes);
	CHECK_RUN(test_round_trip_and_url);
	return check_finish();
}
