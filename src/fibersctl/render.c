/*
 * render.c - fibersctl's output for people: the status tree (like
 * `systemctl status`: task, state coloured on a terminal, uptime, restarts,
 * memory, last error; child scopes and processes beneath), join reports,
 * reload summaries, log lines and watch events.  Renderers only print and
 * return an exit code; they never talk to the daemon.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "fibersctl.h"

#define C_RED "\033[1;31m"
#define C_GREEN "\033[1;32m"
#define C_YELLOW "\033[1;33m"
#define C_OFF "\033[0m"

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static double num(json_t *o, const char *key, double dflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : dflt;
}

/* Format a duration in seconds like systemctl ("3min 2s"); returns buf. */
const char *ctl_fmt_duration(double s, char *buf, size_t size)
{
	if (!(s >= 0))
		s = 0;
	long long t = (long long)s;
	if (s < 10)
		snprintf(buf, size, "%.1fs", s);
	else if (t < 60)
		snprintf(buf, size, "%llds", t);
	else if (t < 3600)
		snprintf(buf, size, "%lldmin %llds", t / 60, t % 60);
	else if (t < 86400)
		snprintf(buf, size, "%lldh %lldmin", t / 3600, t % 3600 / 60);
	else
		snprintf(buf, size, "%lldd %lldh", t / 86400, t % 86400 / 3600);
	return buf;
}

/* Format a byte count 1024-based ("1.5M"); returns buf. */
const char *ctl_fmt_bytes(double b, char *buf, size_t size)
{
	static const char units[] = "KMGT";
	if (b < 1024) {
		snprintf(buf, size, "%.0fB", b);
		return buf;
	}
	int u = -1;
	while (b >= 1024 && u < 3) {
		b /= 1024;
		u++;
	}
	/* b >= 1024 here, so the loop ran and u >= 0 */
	// NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage)
	snprintf(buf, size, "%.1f%c", b, units[u]);
	return buf;
}

static int is_bad_state(const char *st)
{
	return st && (strcmp(st, "failed") == 0 || strcmp(st, "fatal") == 0);
}

static const char *state_color(const char *st)
{
	if (!st)
		return NULL;
	if (is_bad_state(st))
		return C_RED;
	if (!strcmp(st, "running") || !strcmp(st, "ready") || !strcmp(st, "ok"))
		return C_GREEN;
	if (!strcmp(st, "backoff") || !strcmp(st, "stopping") || !strcmp(st, "loading") ||
	    !strcmp(st, "joining") || !strcmp(st, "cancelled"))
		return C_YELLOW;
	return NULL;
}

static void put_state(struct ctl *c, const char *st)
{
	const char *col = c->color ? state_color(st) : NULL;
	if (col)
		fputs(col, stdout);
	fputs(st ? st : "?", stdout);
	if (col)
		fputs(C_OFF, stdout);
}

static const char *bullet(const char *st)
{
	if (is_bad_state(st))
		return "\u00d7"; /* × */
	if (st && !strcmp(st, "backoff"))
		return "\u21bb"; /* ↻ waiting to restart: not to be taken for ● without colour */
	if (st && (!strcmp(st, "stopped") || !strcmp(st, "exited") || !strcmp(st, "disabled")))
		return "\u25cb"; /* ○ */
	return "\u25cf"; /* ● */
}

/* "[17]" when the node has an id. */
static void put_id(json_t *node)
{
	json_t *id = json_object_get(node, "id");
	if (json_is_integer(id))
		printf(" [%lld]", (long long)json_integer_value(id));
}

static void put_command(struct ctl *c, json_t *cmd)
{
	char d[32];
	size_t i;
	json_t *a;
	printf("pid %lld:", (long long)json_integer_value(json_object_get(cmd, "pid")));
	json_array_foreach(json_object_get(cmd, "argv"), i, a)
		printf(" %s", json_string_value(a) ? json_string_value(a) : "?");
	printf(" (");
	put_state(c, str(cmd, "state"));
	json_t *ex = json_object_get(cmd, "exit");
	if (json_is_integer(ex))
		printf(" %lld", (long long)json_integer_value(ex));
	if (json_is_number(json_object_get(cmd, "uptime")))
		printf(", up %s", ctl_fmt_duration(num(cmd, "uptime", 0), d, sizeof d));
	printf(")\n");
}

/* Print the children and commands of a node below a line with prefix pre. */
static void put_subtree(struct ctl *c, json_t *kids, json_t *cmds, const char *pre)
{
	size_t nk = json_is_array(kids) ? json_array_size(kids) : 0;
	size_t nc = json_is_array(cmds) ? json_array_size(cmds) : 0;
	char d[32];
	for (size_t i = 0; i < nk + nc; i++) {
		int last = i + 1 == nk + nc;
		printf("%s%s", pre, last ? "\u2514\u2500 " : "\u251c\u2500 ");
		if (i >= nk) {
			put_command(c, json_array_get(cmds, i - nk));
			continue;
		}
		json_t *k = json_array_get(kids, i);
		const char *name = str(k, "name");
		printf("%s", name ? name : "(scope)");
		put_id(k);
		printf(": ");
		put_state(c, str(k, "state"));
		printf(", %lld fiber%s", (long long)num(k, "fibers", 0), num(k, "fibers", 0) == 1 ? "" : "s");
		if (json_is_number(json_object_get(k, "uptime")))
			printf(", up %s", ctl_fmt_duration(num(k, "uptime", 0), d, sizeof d));
		printf("\n");
		char sub[512];
		snprintf(sub, sizeof sub, "%s%s", pre, last ? "   " : "\u2502  ");
		put_subtree(c, json_object_get(k, "children"), json_object_get(k, "commands"), sub);
	}
}

/* The fields of a status node that put_node prints, found in one pass over
 * its keys (a 1000-task status is 1000 such nodes; a lookup per field
 * costs more than the printing). */
struct node_view {
	json_t *state, *name, *path, *id, *ready, *next_restart_in, *uptime, *restarts,
		*memory, *fibers, *file, *last_exit, *last_error, *extra_errors, *children, *commands;
};

static void view_node(json_t *node, struct node_view *v)
{
	const char *k;
	json_t *val;
	memset(v, 0, sizeof *v);
	json_object_foreach(node, k, val) {
		json_t **slot = NULL;
		switch (k[0]) {
		case 'c': slot = !strcmp(k, "children") ? &v->children : !strcmp(k, "commands") ? &v->commands : NULL; break;
		case 'e': slot = strcmp(k, "extra_errors") ? NULL : &v->extra_errors; break;
		case 'f': slot = !strcmp(k, "file") ? &v->file : !strcmp(k, "fibers") ? &v->fibers : NULL; break;
		case 'i': slot = strcmp(k, "id") ? NULL : &v->id; break;
		case 'l': slot = !strcmp(k, "last_exit") ? &v->last_exit
			       : !strcmp(k, "last_error") ? &v->last_error : NULL; break;
		case 'm': slot = strcmp(k, "memory") ? NULL : &v->memory; break;
		case 'n': slot = !strcmp(k, "name") ? &v->name
			       : !strcmp(k, "next_restart_in") ? &v->next_restart_in : NULL; break;
		case 'p': slot = strcmp(k, "path") ? NULL : &v->path; break;
		case 'r': slot = !strcmp(k, "ready") ? &v->ready : !strcmp(k, "restarts") ? &v->restarts : NULL; break;
		case 's': slot = strcmp(k, "state") ? NULL : &v->state; break;
		case 'u': slot = strcmp(k, "uptime") ? NULL : &v->uptime; break;
		default: break;
		}
		if (slot)
			*slot = val;
	}
}

/* Print a decimal integer (printf's format parsing costs more than the
 * digits, 3000 times in a 1000-task table). */
static void put_int(long long n)
{
	char buf[24], *p = buf + sizeof buf;
	unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
	*--p = '\0';
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (n < 0)
		*--p = '-';
	fputs(p, stdout);
}

/* A task's containment (one-task status only): the mode, its cgroup with
 * CPU and memory, one line per process (strays marked). */
static void put_containment(json_t *node)
{
	json_t *cm = json_object_get(node, "containment");
	if (!json_is_string(cm))
		return;
	char m[32];
	printf("    containment: %s", json_string_value(cm));
	if (str(node, "cgroup"))
		printf(" %s", str(node, "cgroup"));
	json_t *u = json_object_get(node, "cpu_user_usec"), *sy = json_object_get(node, "cpu_system_usec");
	if (json_is_integer(u) && json_is_integer(sy))
		printf(", cpu %.2fs user %.2fs system", (double)json_integer_value(u) / 1e6,
		       (double)json_integer_value(sy) / 1e6);
	json_t *mc = json_object_get(node, "memory_current");
	if (json_is_number(mc))
		printf(", memory %s", ctl_fmt_bytes(json_number_value(mc), m, sizeof m));
	putchar('\n');
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(node, "processes"), i, p) {
		printf("    process %lld%s: %s\n", (long long)num(p, "pid", 0),
		       json_is_true(json_object_get(p, "stray")) ? " (stray)" : "",
		       str(p, "cmdline") ? str(p, "cmdline") : "?");
	}
}

/* One task (or addressed scope) block. */
static void put_node(struct ctl *c, json_t *node)
{
	char d[32], m[32];
	struct node_view v;
	view_node(node, &v);
	const char *st = json_string_value(v.state);
	const char *name = json_string_value(v.name);
	const char *path = json_string_value(v.path);
	const char *file = json_string_value(v.file);
	const char *last_exit = json_string_value(v.last_exit);
	const char *last_error = json_string_value(v.last_error);
	const char *col = c->color ? state_color(st) : NULL;
	if (col)
		fputs(col, stdout);
	fputs(bullet(st), stdout);
	if (col)
		fputs(C_OFF, stdout);
	putchar(' ');
	fputs(path ? path : (name ? name : "(scope)"), stdout);
	if (json_is_integer(v.id)) {
		fputs(" [", stdout);
		put_int((long long)json_integer_value(v.id));
		putchar(']');
	}
	fputs(": ", stdout);
	put_state(c, st);
	if (json_is_true(v.ready) && st && strcmp(st, "running") == 0)
		fputs(" (ready)", stdout);
	if (json_is_number(v.next_restart_in))
		printf(" (restart in %s)", ctl_fmt_duration(json_number_value(v.next_restart_in), d, sizeof d));
	if (json_is_number(v.uptime) && v.id) {
		fputs(", up ", stdout);
		fputs(ctl_fmt_duration(json_number_value(v.uptime), d, sizeof d), stdout);
	}
	if (json_is_number(v.restarts)) {
		fputs(", restarts ", stdout);
		put_int((long long)json_number_value(v.restarts));
	}
	if (json_is_number(v.memory)) {
		fputs(", memory ", stdout);
		fputs(ctl_fmt_bytes(json_number_value(v.memory), m, sizeof m), stdout);
	}
	if (!v.file && json_is_number(v.fibers))
		printf(", %lld fiber%s", (long long)json_number_value(v.fibers),
		       json_number_value(v.fibers) == 1 ? "" : "s");
	putchar('\n');
	if (file) {
		fputs("    file: ", stdout);
		fputs(file, stdout);
		putchar('\n');
	}
	put_containment(node);
	if (last_exit && !last_error)
		printf("    last exit: %s\n", last_exit);
	if (last_error)
		printf("    %slast error%s: %s\n", c->color ? C_RED : "", c->color ? C_OFF : "", last_error);
	size_t i;
	json_t *e;
	json_array_foreach(v.extra_errors, i, e)
		printf("    also: %s\n", json_string_value(e) ? json_string_value(e) : "?");
	put_subtree(c, v.children, v.commands, "    ");
}

/* Is a task in a state an operator need not look at?  Running (also not
 * yet ready: many tasks never call ready()), ready, stopped, disabled, or
 * exited without an error.  Anything else - loading, stopping, backoff,
 * failed, fatal, an exit with an error - is not. */
static int task_healthy(json_t *t)
{
	const char *st = str(t, "state");
	if (!st)
		return 0;
	if (!strcmp(st, "running") || !strcmp(st, "ready") || !strcmp(st, "stopped") ||
	    !strcmp(st, "disabled"))
		return 1;
	if (!strcmp(st, "exited")) {
		const char *le = str(t, "last_exit");
		return le == NULL || strcmp(le, "exited") == 0;
	}
	return 0;
}

/* Exit code of a status result: 1 when a task is not healthy (above); a
 * scope below a task only when it failed. */
int ctl_status_exit(json_t *result)
{
	json_t *tasks = json_object_get(result, "tasks");
	size_t i;
	json_t *t;
	if (!json_is_array(tasks)) {
		if (json_object_get(result, "file"))
			return task_healthy(result) ? FCTL_EXIT_OK : FCTL_EXIT_FAILED;
		return is_bad_state(str(result, "state")) ? FCTL_EXIT_FAILED : FCTL_EXIT_OK;
	}
	json_array_foreach(tasks, i, t)
		if (!task_healthy(t))
			return FCTL_EXIT_FAILED;
	return FCTL_EXIT_OK;
}

/* Render a status result: the daemon summary and every task, or one scope. */
int ctl_render_status(struct ctl *c, json_t *result)
{
	json_t *tasks = json_object_get(result, "tasks");
	if (json_is_array(tasks)) {
		char d[32];
		printf("fibersd %s, pid %lld, up %s", str(result, "version") ? str(result, "version") : "?",
		       (long long)num(result, "pid", 0), ctl_fmt_duration(num(result, "uptime", 0), d, sizeof d));
		json_t *counts = json_object_get(result, "counts");
		printf("; %lld task%s", (long long)num(counts, "tasks", 0), num(counts, "tasks", 0) == 1 ? "" : "s");
		static const char *order[] = { "loading", "running", "ready", "stopping", "backoff", "exited",
					       "failed", "fatal", "stopped", "disabled", NULL };
		const char *sep = ": ";
		for (int k = 0; order[k]; k++) {
			double n = num(counts, order[k], 0);
			if (n > 0) {
				printf("%s%lld %s", sep, (long long)n, order[k]);
				sep = ", ";
			}
		}
		if (json_is_number(json_object_get(counts, "processes")))
			printf("; %lld process%s", (long long)num(counts, "processes", 0),
			       num(counts, "processes", 0) == 1 ? "" : "es");
		printf("\n");
		size_t i;
		json_t *t;
		json_array_foreach(tasks, i, t)
			put_node(c, t);
	} else {
		put_node(c, result);
	}
	return ctl_status_exit(result);
}

static void put_report(json_t *report, const char *pre)
{
	size_t i;
	json_t *e, *k;
	json_array_foreach(json_object_get(report, "extra_errors"), i, e)
		printf("%salso: %s\n", pre, json_string_value(e) ? json_string_value(e) : "?");
	json_t *kids = json_object_get(report, "children");
	json_array_foreach(kids, i, k) {
		int last = i + 1 == json_array_size(kids);
		const char *name = str(k, "name");
		printf("%s%s%s", pre, last ? "\u2514\u2500 " : "\u251c\u2500 ", name ? name : "(scope)");
		put_id(k);
		printf(": %s", str(k, "status") ? str(k, "status") : "?");
		if (str(k, "primary"))
			printf(" (%s)", str(k, "primary"));
		printf("\n");
		char sub[512];
		snprintf(sub, sizeof sub, "%s%s", pre, last ? "   " : "\u2502  ");
		put_report(json_object_get(k, "report"), sub);
	}
}

/* Render a cancel result: the scope's outcome and its join report. */
int ctl_render_cancel(struct ctl *c, json_t *result)
{
	const char *scope = str(result, "scope");
	printf("%s", scope ? scope : "(scope)");
	put_id(result);
	printf(": ");
	put_state(c, str(result, "status"));
	if (str(result, "primary"))
		printf(" (%s)", str(result, "primary"));
	printf("\n");
	put_report(json_object_get(result, "report"), "    ");
	return FCTL_EXIT_OK;
}

/* Render start/stop/restart: the task and its new state. */
int ctl_render_task_op(struct ctl *c, json_t *result)
{
	printf("%s: ", str(result, "task") ? str(result, "task") : "?");
	put_state(c, str(result, "state"));
	printf("\n");
	if (str(result, "note"))
		printf("note: %s is %s\n", str(result, "task") ? str(result, "task") : "the task",
		       str(result, "note"));
	return FCTL_EXIT_OK;
}

/* Render signal: which process groups got it. */
int ctl_render_signal(struct ctl *c, json_t *result)
{
	json_t *pids = json_object_get(result, "pids");
	size_t n = json_array_size(pids), i;
	json_t *p;
	(void)c;
	printf("%s: sent SIG%s to %zu process group%s", str(result, "scope") ? str(result, "scope") : "?",
	       str(result, "sig") ? str(result, "sig") : "?", n, n == 1 ? "" : "s");
	json_array_foreach(pids, i, p)
		printf("%s%lld", i ? " " : " (pids ", (long long)json_integer_value(p));
	printf("%s\n", n ? ")" : "");
	return FCTL_EXIT_OK;
}

/* Exit code of a reload result: 1 when it lists errors. */
int ctl_reload_exit(json_t *result)
{
	return json_array_size(json_object_get(result, "errors")) ? FCTL_EXIT_FAILED : FCTL_EXIT_OK;
}

/* Render reload: added/removed/changed/unchanged, then (only when there are
 * any) the tasks whose new version failed and whose old one keeps running,
 * warnings and errors. */
int ctl_render_reload(struct ctl *c, json_t *result)
{
	static const char *keys[] = { "added", "removed", "changed", "unchanged", "kept", NULL };
	(void)c;
	size_t i;
	json_t *v;
	for (int k = 0; keys[k]; k++) {
		json_t *a = json_object_get(result, keys[k]);
		bool kept = strcmp(keys[k], "kept") == 0;
		if (kept && json_array_size(a) == 0)
			continue;
		printf("%s:", keys[k]);
		if (json_array_size(a) == 0)
			printf(" -");
		json_array_foreach(a, i, v)
			printf(" %s", json_string_value(v) ? json_string_value(v) : "?");
		printf("%s\n", kept ? " (old version still running)" : "");
	}
	json_array_foreach(json_object_get(result, "warnings"), i, v)
		printf("warning: %s\n", json_is_string(v) ? json_string_value(v) : str(v, "message"));
	json_array_foreach(json_object_get(result, "errors"), i, v)
		printf("error: %s\n", json_is_string(v) ? json_string_value(v) : str(v, "message"));
	return ctl_reload_exit(result);
}

/* Render log records: "TIME LEVEL TASK[pid stream]: message". */
int ctl_render_logs(struct ctl *c, json_t *result)
{
	size_t i;
	json_t *r;
	(void)c;
	json_array_foreach(json_object_get(result, "lines"), i, r) {
		const char *task = str(r, "task") ? str(r, "task") : str(result, "task");
		printf("%s %s %s", str(r, "time") ? str(r, "time") : "-", str(r, "level") ? str(r, "level") : "info",
		       task ? task : "fibersd");
		if (json_is_integer(json_object_get(r, "pid")))
			printf("[%lld%s%s]", (long long)json_integer_value(json_object_get(r, "pid")),
			       str(r, "stream") ? " " : "", str(r, "stream") ? str(r, "stream") : "");
		printf(": %s\n", str(r, "message") ? str(r, "message") : "");
	}
	return FCTL_EXIT_OK;
}

/* Render a watch record: the snapshot's tasks, then one line per change. */
int ctl_render_watch(struct ctl *c, json_t *result)
{
	const char *ev = str(result, "event");
	const char *time = str(result, "time") ? str(result, "time") : "-";
	if (ev && strcmp(ev, "snapshot") == 0) {
		size_t i;
		json_t *t;
		json_array_foreach(json_object_get(result, "tasks"), i, t) {
			printf("%s %s", time, str(t, "path") ? str(t, "path") : str(t, "name"));
			put_id(t);
			printf(": ");
			put_state(c, str(t, "state"));
			printf("\n");
		}
		return FCTL_EXIT_OK;
	}
	printf("%s %s", time, str(result, "scope") ? str(result, "scope") : "?");
	put_id(result);
	printf(": %s -> ", str(result, "from") ? str(result, "from") : "-");
	put_state(c, str(result, "to"));
	if (str(result, "reason"))
		printf(" (%s)", str(result, "reason"));
	printf("\n");
	return FCTL_EXIT_OK;
}

/* Render version: the daemon's (ours was printed before the request). */
int ctl_render_version(struct ctl *c, json_t *result)
{
	char d[32];
	(void)c;
	printf("%s %s (protocol %lld, pid %lld, up %s)\n", str(result, "daemon") ? str(result, "daemon") : "fibersd",
	       str(result, "version") ? str(result, "version") : "?", (long long)num(result, "protocol", 0),
	       (long long)num(result, "pid", 0), ctl_fmt_duration(num(result, "uptime", 0), d, sizeof d));
	return FCTL_EXIT_OK;
}
