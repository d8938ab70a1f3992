/*
 * test_openapi.c - api/openapi.yaml (served as /v1/openapi.json) and convstored's route table
 * (api/routes.h, printed by `convstored --routes`) describe the same API: every route is an
 * operation with the same method and path, and every operation is a route. Also: the document
 * is OpenAPI 3.1, and every operation answers something.
 */
#include <ctype.h>

#include "../check.h"
#include "server.h"

#define MAX_ROUTES 64

static char routes[MAX_ROUTES][160];
static size_t n_routes;
static srv S;

static void load_routes(void)
{
	char cmd[512], line[160];
	snprintf(cmd, sizeof(cmd), "%s --routes", getenv("CONVSTORED"));
	FILE *p = popen(cmd, "r");
	while (p && n_routes < MAX_ROUTES && fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		snprintf(routes[n_routes++], sizeof(routes[0]), "%s", line);
	}
	CHECK(p && pclose(p) == 0);
}

static bool is_route(const char *method_path)
{
	for (size_t i = 0; i < n_routes; i++)
		if (!strcmp(routes[i], method_path))
			return true;
	return false;
}

static void test_same_routes(void)
{
	json_t *doc = NULL;
	CHECK_EQ_INT(srv_json(&S, &doc, "GET", "/v1/openapi.json", NULL), 200);
	CHECK_STR_EQ(jstr(doc, "openapi"), "3.1.0");
	json_t *paths = json_object_get(doc, "paths");
	CHECK(json_object_size(paths) > 0);
	size_t operations = 0;
	const char *path;
	json_t *item;
	json_object_foreach(paths, path, item)
	{
		const char *method;
		json_t *op;
		json_object_foreach(item, method, op)
		{
			if (!strcmp(method, "parameters"))
				continue;
			char upper[16], both[160];
			size_t i = 0;
			for (; method[i] && i + 1 < sizeof(upper); i++)
				upper[i] = (char)toupper((unsigned char)method[i]);
			upper[i] = '\0';
			snprintf(both, sizeof(both), "%s %s", upper, path);
			if (!CHECK(is_route(both)))
				fprintf(stderr, "  openapi has %s, convstored does not\n", both);
			CHECK(json_object_size(json_object_get(op, "responses")) > 0);
			operations++;
		}
	}
	for (size_t i = 0; i < n_routes; i++) {
		char method[16], p[140], lower[16];
		if (!CHECK(sscanf(routes[i], "%15s %139s", method, p) == 2))
			continue;
		size_t j = 0;
		for (; method[j]; j++)
			lower[j] = (char)tolower((unsigned char)method[j]);
		lower[j] = '\0';
		if (!CHECK(json_object_get(json_object_get(paths, p), lower) != NULL))
			fprintf(stderr, "  convstored has %s, openapi does not\n", routes[i]);
	}
	CHECK_EQ_INT(operations, n_routes);
	json_decref(doc);
}

int main(void)
{
	load_routes();
	CHECK(n_routes >= 18);
	srv_start(&S, NULL);
	CHECK_RUN(test_same_routes);
	CHECK_EQ_INT(srv_stop(&S), 0);
	return check_finish();
}
