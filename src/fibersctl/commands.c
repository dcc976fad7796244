/*
 * commands.c - the fibersctl commands: protocol.h's method table parsed by
 * one generic argument parser (each row's template says which positional
 * arguments and options it takes and how they become params), the
 * renderers where the human output needs one, the request/reply loop
 * shared by all commands (streams included) and the protocol-error ->
 * exit-code mapping.
 */
#include "config.h"

#include <ctype.h>
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

/* ---- the argument template (protocol.h's FIBERSD_METHODS) ------------------ */

#define TMPL_MAX 8

/* A command's template, parsed: positional names and options. */
struct tmpl {
	int npos, nopt;
	char pos[TMPL_MAX][32];   /* SCOPE, TASK, ... */
	struct {
		char shortn[8];   /* "-n" or "" */
		char longn[32];   /* "--lines" or "" */
		char key[32];     /* params key: "lines" (for --no-wait: "wait") */
		int valued;       /* takes a number */
		int negated;      /* --no-KEY: sets KEY = false */
	} opt[TMPL_MAX];
};

/* Parse one option spec "-n|--lines N" (or "--no-wait", "-f|--follow"). */
static void tmpl_option(struct tmpl *t, const char *spec, size_t len)
{
	if (t->nopt >= TMPL_MAX)
		return;
	char buf[96];
	snprintf(buf, sizeof buf, "%.*s", (int)len, spec);
	char *value = strchr(buf, ' ');
	if (value)
		*value = '\0';
	memset(&t->opt[t->nopt], 0, sizeof t->opt[t->nopt]);
	t->opt[t->nopt].valued = value != NULL;
	for (char *name = strtok(buf, "|"); name; name = strtok(NULL, "|")) {
		if (name[1] == '-')
			snprintf(t->opt[t->nopt].longn, sizeof t->opt[t->nopt].longn, "%s", name);
		else
			snprintf(t->opt[t->nopt].shortn, sizeof t->opt[t->nopt].shortn, "%s", name);
	}
	const char *key = t->opt[t->nopt].longn[0] ? t->opt[t->nopt].longn + 2 : t->opt[t->nopt].shortn + 1;
	if (strncmp(key, "no-", 3) == 0) {
		t->opt[t->nopt].negated = 1;
		key += 3;
	}
	snprintf(t->opt[t->nopt].key, sizeof t->opt[t->nopt].key, "%s", key);
	t->nopt++;
}

/* Parse a template: WORD / [WORD] positional, [-x|--name N] / [-x|--name]
 * / [--no-name] options (see protocol.h). */
static void tmpl_parse(const char *args, struct tmpl *t)
{
	memset(t, 0, sizeof *t);
	for (const char *p = args; *p;) {
		if (*p == ' ') {
			p++;
			continue;
		}
		const char *tok = p, *end;
		size_t len;
		if (*p == '[') {
			end = strchr(p, ']');
			end = end ? end : p + strlen(p);
			tok = p + 1;
			len = (size_t)(end - tok);
			p = *end ? end + 1 : end;
		} else {
			end = strchr(p, ' ');
			end = end ? end : p + strlen(p);
			len = (size_t)(end - tok);
			p = end;
		}
		if (tok[0] == '-')
			tmpl_option(t, tok, len);
		else if (t->npos < TMPL_MAX)
			snprintf(t->pos[t->npos++], sizeof t->pos[0], "%.*s", (int)len, tok);
	}
}

static int parse_count(const struct ctl_cmd *cmd, const char *val, json_int_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(val, &end, 10);
	if (errno || end == val || *end || n < 0)
		return bad_usage(cmd, "expected a number >= 0");
	*out = n;
	return 0;
}

/* The one parser: argv (argv[0] is the command) into params, by the
 * command's template; 0 or FCTL_EXIT_USAGE after saying why. */
static int parse_args(const struct ctl_cmd *cmd, int argc, char **argv, json_t *params)
{
	struct tmpl t;
	tmpl_parse(cmd->args, &t);
	const char *pos[TMPL_MAX];
	int npos = 0, only_pos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (!only_pos && a[0] == '-' && a[1]) {
			int k;
			for (k = 0; k < t.nopt; k++)
				if (strcmp(a, t.opt[k].shortn) == 0 || strcmp(a, t.opt[k].longn) == 0)
					break;
			if (k == t.nopt) {
				char why[128];
				snprintf(why, sizeof why, "unknown option '%s'", a);
				return bad_usage(cmd, why);
			}
			if (t.opt[k].valued) {
				json_int_t n;
				if (i + 1 >= argc)
					return bad_usage(cmd, "option needs a value");
				if (parse_count(cmd, argv[++i], &n))
					return FCTL_EXIT_USAGE;
				json_object_set_new(params, t.opt[k].key, json_integer(n));
			} else {
				json_object_set_new(params, t.opt[k].key,
						    t.opt[k].negated ? json_false() : json_true());
			}
			continue;
		}
		if (npos >= cmd->max_args || npos >= TMPL_MAX)
			return bad_usage(cmd, "too many arguments");
		pos[npos++] = a;
	}
	/* positionals after the options (the params' order on the wire) */
	for (int k = 0; k < npos; k++) {
		char key[32];
		size_t j;
		for (j = 0; t.pos[k][j] && j + 1 < sizeof key; j++)
			key[j] = (char)tolower((unsigned char)t.pos[k][j]);
		key[j] = '\0';
		json_object_set_new(params, key, json_string(pos[k]));
	}
	if (npos < cmd->min_args) {
		char why[128] = "missing";
		for (int k = npos; k < cmd->min_args && k < t.npos; k++)
			snprintf(why + strlen(why), sizeof why - strlen(why), "%s%s",
				 k > npos ? " and " : " ", t.pos[k]);
		return bad_usage(cmd, why);
	}
	return 0;
}

/* ---- what the human output needs, per command ----------------------------- */

/* status without a scope, for the table: the daemon may leave out what
 * render.c never prints (a reply half the size). */
static void prep_status(struct ctl *c, json_t *params)
{
	if (!json_object_get(params, "scope") && !c->json)
		json_object_set_new(params, "brief", json_true());
}

/* The daemon waits for a join or a state a little less than we do, so that
 * a slow one comes back as a "timeout" error rather than silence. */
static void prep_wait(struct ctl *c, json_t *params)
{
	json_object_set_new(params, "timeout", json_real(c->timeout * 0.9));
}

/* logs -f without -n: the last FCTL_FOLLOW_LINES lines, then new ones (as
 * tail -f and journalctl -f), not the whole ring. */
static void prep_logs(struct ctl *c, json_t *params)
{
	(void)c;
	if (json_is_true(json_object_get(params, "follow")) && !json_object_get(params, "lines"))
		json_object_set_new(params, "lines", json_integer(FCTL_FOLLOW_LINES));
}

/* Renderers and exit codes where the human output needs them; a command
 * without a row here prints its result generically (ctl_render_generic). */
static const struct ctl_human {
	const char *name;
	int (*render)(struct ctl *c, json_t *result);
	int (*exit_of)(json_t *result);
	void (*prepare)(struct ctl *c, json_t *params);
} human[] = {
	{ "status", ctl_render_status, ctl_status_exit, prep_status },
	{ "cancel", ctl_render_cancel, NULL, prep_wait },
	{ "start", ctl_render_task_op, NULL, prep_wait },
	{ "stop", ctl_render_task_op, NULL, prep_wait },
	{ "restart", ctl_render_task_op, NULL, prep_wait },
	{ "signal", ctl_render_signal, NULL, NULL },
	{ "reload", ctl_render_reload, ctl_reload_exit, NULL },
	{ "logs", ctl_render_logs, NULL, prep_logs },
	{ "watch", ctl_render_watch, NULL, NULL },
	{ "version", ctl_render_version, NULL, NULL },
	{ NULL, NULL, NULL, NULL },
};

/* The command table: protocol.h's method table. */
const struct ctl_cmd ctl_commands[] = {
#define READ 0
#define ADMIN 1
#define X(name, args, min, max, role, stream, help) { #name, args, help, min, max, role, stream },
	FIBERSD_METHODS(X)
#undef X
#undef READ
#undef ADMIN
	{ NULL, NULL, NULL, 0, 0, 0, 0 },
};

/* Look a command up by name; NULL when unknown. */
const struct ctl_cmd *ctl_find_command(const char *name)
{
	for (const struct ctl_cmd *cmd = ctl_commands; cmd->name; cmd++)
		if (strcmp(cmd->name, name) == 0)
			return cmd;
	return NULL;
}

static const struct ctl_human *human_of(const struct ctl_cmd *cmd)
{
	for (const struct ctl_human *h = human; h->name; h++)
		if (strcmp(h->name, cmd->name) == 0)
			return h;
	return NULL;
}

/* A result with no renderer of its own: one "key: value" line per member
 * (strings bare, anything else as compact JSON). */
static int ctl_render_generic(struct ctl *c, json_t *result)
{
	(void)c;
	const char *k;
	json_t *v;
	if (!json_is_object(result)) {
		char *s = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%s\n", s ? s : "?");
		return FCTL_EXIT_OK;
	}
	json_object_foreach(result, k, v) {
		if (json_is_string(v)) {
			printf("%s: %s\n", k, json_string_value(v));
		} else {
			char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));
			printf("%s: %s\n", k, s ? s : "?");
		}
	}
	return FCTL_EXIT_OK;
}

/* Print one result: unchanged JSON, or through the command's renderer. */
static int emit(struct ctl *c, const struct ctl_cmd *cmd, json_t *result)
{
	const struct ctl_human *h = human_of(cmd);
	if (c->json) {
		/* same real precision as the daemon, so numbers print as sent */
		char *s = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));
		if (s) {
			fputs(s, stdout);
			fputc('\n', stdout);
		} /* s is in the reply's arena (ctl_run_command): no free */
		/* the exit code contract holds in JSON mode too */
		return h && h->exit_of ? h->exit_of(result) : FCTL_EXIT_OK;
	}
	return h ? h->render(c, result) : ctl_render_generic(c, result);
}

/* Run one command end to end; returns the exit code. */
int ctl_run_command(struct ctl *c, const struct ctl_cmd *cmd, int argc, char **argv)
{
	json_t *params = json_object();
	int rc = parse_args(cmd, argc, argv, params);
	if (rc) {
		json_decref(params);
		return rc;
	}
	const struct ctl_human *h = human_of(cmd);
	if (h && h->prepare)
		h->prepare(c, params);
	c->deadline = ctl_now() + c->timeout;
	if ((rc = ctl_connect(c))) {
		json_decref(params);
		return rc;
	}
	if (strcmp(cmd->name, "version") == 0 && !c->json)
		printf("fibersctl %s (protocol %d)\n", PACKAGE_VERSION, FIBERSD_PROTOCOL_VERSION);
	json_t *req = json_pack("{s:i, s:s, s:o}", "id", 1, "method", cmd->name, "params", params);
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
