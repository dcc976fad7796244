/*
 * commands.c - the fibersctl command table: for each command its arguments,
 * the control method it calls, how its params are built and which renderer
 * prints the result.  Also the request/reply loop shared by all commands
 * (streams included) and the protocol-error -> exit-code mapping.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fibersctl.h"
#include "jarena.h"

/* Map a protocol error code to a fibersctl exit code. */
int ctl_error_exit(const char *code)
{
#define X(id, str, ex) if (code && strcmp(code, str) == 0) return ex;
	FIBERSD_PROTO_ERRORS(X)
#undef X
	return FCTL_EXIT_FAILED;
}

/* Print an error object on stderr; returns its exit code. */
int ctl_report_error(json_t *err)
{
	const char *code = json_string_value(json_object_get(err, "code"));
	const char *msg = json_string_value(json_object_get(err, "message"));
	fprintf(stderr, "fibersctl: %s%s%s%s\n", msg ? msg : (code ? code : "error"),
		msg && code ? " (" : "", msg && code ? code : "", msg && code ? ")" : "");
	json_t *ids = json_object_get(err, "ids");
	if (json_is_array(ids) && json_array_size(ids) > 0) {
		size_t i;
		json_t *v;
		fprintf(stderr, "fibersctl: candidates:");
		json_array_foreach(ids, i, v)
			fprintf(stderr, " %lld", (long long)json_integer_value(v));
		fprintf(stderr, "\n");
	}
	return ctl_error_exit(code);
}

static int bad_usage(const struct ctl_cmd *cmd, const char *why)
{
	fprintf(stderr, "fibersctl: %s: %s\nUsage: fibersctl %s %s\n", cmd->name, why, cmd->name,
		cmd->args);
	return FCTL_EXIT_USAGE;
}

/* Split argv into positional args (returned count) after handling the
 * command-local options through `opt(c, flag, value, params)`. */
typedef int (*local_opt_fn)(const struct ctl_cmd *cmd, const char *flag, const char *val,
			    json_t *params);

/* Is `a` one of the space-separated words of `list`? */
static int in_list(const char *list, const char *a)
{
	size_t n = strlen(a);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ' ');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && strncmp(p, a, n) == 0)
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

static int split_args(const struct ctl_cmd *cmd, int argc, char **argv, const char *valued,
		      const char *flags, local_opt_fn opt, json_t *params, char **pos, int maxpos,
		      int *npos)
{
	*npos = 0;
	int only_pos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = 1;
		} else if (!only_pos && a[0] == '-' && a[1]) {
			int rc;
			if (in_list(valued, a)) {
				if (i + 1 >= argc)
					return bad_usage(cmd, "option needs a value");
				rc = opt(cmd, a, argv[++i], params);
			} else if (in_list(flags, a)) {
				rc = opt(cmd, a, NULL, params);
			} else {
				char why[128];
				snprintf(why, sizeof why, "unknown option '%s'", a);
				return bad_usage(cmd, why);
			}
			if (rc)
				return rc;
		} else {
			if (*npos >= maxpos)
				return bad_usage(cmd, "too many arguments");
			pos[(*npos)++] = argv[i];
		}
	}
	return 0;
}

static int parse_count(const struct ctl_cmd *cmd, const char *val, json_int_t *out)
{
	char *end;
	errno = 0;
	/* valued options always pass their value (split_args) */
	// NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker)
	long long n = strtoll(val, &end, 10);
	if (errno || end == val || *end || n < 0)
		return bad_usage(cmd, "expected a number >= 0");
	*out = n;
	return 0;
}

static int local_opt(const struct ctl_cmd *cmd, const char *flag, const char *val, json_t *params)
{
	json_int_t n;
	if (strcmp(flag, "-n") == 0 || strcmp(flag, "--lines") == 0) {
		if (parse_count(cmd, val, &n))
			return FCTL_EXIT_USAGE;
		json_object_set_new(params, "lines", json_integer(n));
	} else if (strcmp(flag, "-d") == 0 || strcmp(flag, "--depth") == 0) {
		if (parse_count(cmd, val, &n))
			return FCTL_EXIT_USAGE;
		json_object_set_new(params, "depth", json_integer(n));
	} else if (strcmp(flag, "-f") == 0 || strcmp(flag, "--follow") == 0) {
		json_object_set_new(params, "follow", json_true());
	} else if (strcmp(flag, "--no-wait") == 0) {
		json_object_set_new(params, "wait", json_false());
	}
	return 0;
}

static int parse_status(struct ctl *c, int argc, char **argv, json_t *params)
{
	char *pos[1];
	int n, rc;
	rc = split_args(&ctl_commands[0], argc, argv, "-d --depth", NULL, local_opt, params, pos, 1, &n);
	if (rc)
		return rc;
	if (n == 1)
		json_object_set_new(params, "scope", json_string(pos[0]));
	else if (!c->json)
		/* every task, for the table: the daemon may leave out what
		 * render.c never prints (a reply half the size) */
		json_object_set_new(params, "brief", json_true());
	return 0;
}

static int parse_cancel(struct ctl *c, int argc, char **argv, json_t *params)
{
	const struct ctl_cmd *cmd = ctl_find_command("cancel");
	char *pos[2];
	int n, rc = split_args(cmd, argc, argv, NULL, "--no-wait", local_opt, params, pos, 2, &n);
	if (rc)
		return rc;
	if (n < 1)
		return bad_usage(cmd, "missing SCOPE");
	json_object_set_new(params, "scope", json_string(pos[0]));
	if (n == 2)
		json_object_set_new(params, "reason", json_string(pos[1]));
	/* The daemon waits for the join a little less than we do, so that a
	 * slow join comes back as a "timeout" error rather than silence. */
	json_object_set_new(params, "timeout", json_real(c->timeout * 0.9));
	return 0;
}

static int parse_task(struct ctl *c, int argc, char **argv, json_t *params)
{
	const struct ctl_cmd *cmd = ctl_find_command(argv[0]);
	char *pos[1];
	int n, rc = split_args(cmd, argc, argv, NULL, NULL, local_opt, params, pos, 1, &n);
	if (rc)
		return rc;
	if (n < 1)
		return bad_usage(cmd, "missing TASK");
	json_object_set_new(params, "task", json_string(pos[0]));
	json_object_set_new(params, "timeout", json_real(c->timeout * 0.9));
	return 0;
}

static int parse_signal(struct ctl *c, int argc, char **argv, json_t *params)
{
	const struct ctl_cmd *cmd = ctl_find_command("signal");
	char *pos[2];
	int n, rc = split_args(cmd, argc, argv, NULL, NULL, local_opt, params, pos, 2, &n);
	(void)c;
	if (rc)
		return rc;
	if (n < 2)
		return bad_usage(cmd, "missing SCOPE or SIG");
	json_object_set_new(params, "scope", json_string(pos[0]));
	json_object_set_new(params, "sig", json_string(pos[1]));
	return 0;
}

static int parse_none(struct ctl *c, int argc, char **argv, json_t *params)
{
	const struct ctl_cmd *cmd = ctl_find_command(argv[0]);
	char *pos[1];
	int n;
	(void)c;
	return split_args(cmd, argc, argv, NULL, NULL, local_opt, params, pos, 0, &n);
}

static int parse_logs(struct ctl *c, int argc, char **argv, json_t *params)
{
	const struct ctl_cmd *cmd = ctl_find_command("logs");
	char *pos[1];
	int n, rc = split_args(cmd, argc, argv, "-n --lines", "-f --follow", local_opt, params, pos,
			       1, &n);
	(void)c;
	if (rc)
		return rc;
	if (n < 1)
		return bad_usage(cmd, "missing TASK");
	json_object_set_new(params, "task", json_string(pos[0]));
	/* -f without -n: the last 10 lines, then new ones (as tail -f and
	 * journalctl -f), not the whole ring */
	if (json_is_true(json_object_get(params, "follow")) && !json_object_get(params, "lines"))
		json_object_set_new(params, "lines", json_integer(FCTL_FOLLOW_LINES));
	return 0;
}

/* The command table.  status must stay first (parse_status uses it). */
const struct ctl_cmd ctl_commands[] = {
	{ "status", "[SCOPE] [-d DEPTH]", "show tasks, scopes and processes", "status",
	  parse_status, ctl_render_status, ctl_status_exit },
	{ "cancel", "SCOPE [REASON] [--no-wait]", "cancel a scope and wait for its join report",
	  "cancel", parse_cancel, ctl_render_cancel, NULL },
	{ "start", "TASK", "start a stopped, exited or fatal task", "start", parse_task,
	  ctl_render_task_op, NULL },
	{ "stop", "TASK", "stop a task (not restarted until start)", "stop", parse_task,
	  ctl_render_task_op, NULL },
	{ "restart", "TASK", "stop and start a task", "restart", parse_task, ctl_render_task_op,
	  NULL },
	{ "signal", "SCOPE SIG", "send SIG to every process group in SCOPE", "signal", parse_signal,
	  ctl_render_signal, NULL },
	{ "reload", "", "re-read the config and rescan the task directory", "reload", parse_none,
	  ctl_render_reload, ctl_reload_exit },
	{ "logs", "TASK [-n N] [-f]", "show (and follow) a task's recent log lines", "logs",
	  parse_logs, ctl_render_logs, NULL },
	{ "watch", "", "stream state changes (snapshot first)", "watch", parse_none,
	  ctl_render_watch, NULL },
	{ "version", "", "show fibersctl and fibersd versions", "version", parse_none,
	  ctl_render_version, NULL },
	{ NULL, NULL, NULL, NULL, NULL, NULL, NULL },
};

/* Look a command up by name; NULL when unknown. */
const struct ctl_cmd *ctl_find_command(const char *name)
{
	for (const struct ctl_cmd *cmd = ctl_commands; cmd->name; cmd++)
		if (strcmp(cmd->name, name) == 0)
			return cmd;
	return NULL;
}

/* Print one result: unchanged JSON, or through the command's renderer. */
static int emit(struct ctl *c, const struct ctl_cmd *cmd, json_t *result)
{
	if (c->json) {
		/* same real precision as the daemon, so numbers print as sent */
		char *s = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));
		if (s) {
			fputs(s, stdout);
			fputc('\n', stdout);
		} /* s is in the reply's arena (ctl_run_command): no free */
		/* the exit code contract holds in JSON mode too */
		return cmd->exit_of ? cmd->exit_of(result) : FCTL_EXIT_OK;
	}
	return cmd->render(c, result);
}

/* Run one command end to end; returns the exit code. */
int ctl_run_command(struct ctl *c, const struct ctl_cmd *cmd, int argc, char **argv)
{
	json_t *params = json_object();
	int rc = cmd->parse(c, argc, argv, params);
	if (rc) {
		json_decref(params);
		return rc;
	}
	c->deadline = ctl_now() + c->timeout;
	if ((rc = ctl_connect(c))) {
		json_decref(params);
		return rc;
	}
	if (cmd->render == ctl_render_version && !c->json)
		printf("fibersctl %s (protocol %d)\n", PACKAGE_VERSION, FIBERSD_PROTOCOL_VERSION);
	json_t *req = json_pack("{s:i, s:s, s:o}", "id", 1, "method", cmd->method, "params", params);
	rc = ctl_send(c, req);
	json_decref(req);
	int final = FCTL_EXIT_OK;
	while (rc == 0) {
		json_t *msg = NULL;
		/* each reply's tree lives in an arena (jarena.h) until it is
		 * printed: a 1000-task status is ~50k nodes */
		jarena_begin();
		if ((rc = ctl_recv(c, &msg))) {
			jarena_end();
			break;
		}
		json_t *id = json_object_get(msg, "id");
		json_t *err = json_object_get(msg, "error");
		if (err && (!id || json_integer_value(id) == 1)) {
			rc = ctl_report_error(err);
			jarena_end();
			break;
		}
		if (!id || json_integer_value(id) != 1) { /* not ours: ignore */
			jarena_end();
			continue;
		}
		json_t *result = json_object_get(msg, "result");
		int more = json_is_true(json_object_get(msg, "continues"));
		int r = emit(c, cmd, result ? result : json_null());
		if (r > final)
			final = r;
		fflush(stdout);
		jarena_end(); /* frees msg */
		if (!more)
			break;
		c->deadline = 0; /* a stream has no deadline after its first reply */
	}
	return rc ? rc : final;
}
