/*
 * config.c - the fibersd configuration: ONE table of keys (cfg_keys) that
 * drives parsing, defaults, `--check` and the test of the shipped file, and
 * the parser that turns /etc/fibersd.conf into a Lua table.
 *
 * Parsing goes through inih's ini_parse_stream with a reader of our own:
 * Debian's libinih reports no line numbers and splits lines longer than
 * 200 bytes silently, so the reader counts lines, rejects long ones, checks
 * the syntax and tracks section headers itself (an empty unknown section is
 * an error too).  Leading blanks are stripped before inih sees a line, so
 * inih's multi-line continuation never applies.  Every problem is collected
 * as "file:line: message"; nothing is printed here.
 *
 * Result shape: { file=, fibersd={...}, defaults={...},
 *                 tasks={ NAME={<overrides>, enabled=bool, params={}} } }
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <grp.h>
#include <ini.h>
#include <pwd.h>

#include "config.h"
#include "fibersd.h"

#ifndef FIBERSD_SYSCONFDIR
#define FIBERSD_SYSCONFDIR "/etc"
#endif

#define NOMAX 1e15
#define CFG_MAX_FILE (4 << 20) /* bytes of a config file */
const struct cfg_key cfg_keys[] = {
	{ "task_dir", CFG_SEC_FIBERSD, CFG_PATH, 0, 0, NULL, FIBERSD_SYSCONFDIR "/fibers.d", CFG_RELOAD_DAEMON,
	  "directory of the task scripts: every NAME.lua directly in it is a task" },
	{ "control_socket", CFG_SEC_FIBERSD, CFG_PATH, 0, 0, NULL, "/run/fibersd/control.sock", CFG_RELOAD_DAEMON,
	  "the control socket used by fibersctl(1)" },
	{ "control_mode", CFG_SEC_FIBERSD, CFG_MODE, 0, 0777, NULL, "0660", CFG_RELOAD_DAEMON, "socket file mode (octal)" },
	{ "control_group", CFG_SEC_FIBERSD, CFG_GROUP, 0, 0, NULL, "fibersd", CFG_RELOAD_DAEMON,
	  "group that may read status and logs" },
	{ "admin_group", CFG_SEC_FIBERSD, CFG_GROUP, 0, 0, NULL, "fibersd-admin", CFG_RELOAD_DAEMON,
	  "group that may also cancel/start/stop/restart/reload" },
	{ "log_level", CFG_SEC_FIBERSD, CFG_ENUM, 0, 0, "debug|info|notice|warning|err", "info", CFG_RELOAD_LIVE,
	  "lowest priority logged: debug|info|notice|warning|err" },
	{ "log_target", CFG_SEC_FIBERSD, CFG_ENUM, 0, 0, "auto|journal|stderr", "auto", CFG_RELOAD_LIVE,
	  "where log records go: auto (the journal when stderr is the journal)|journal|stderr" },
	{ "shutdown_timeout", CFG_SEC_FIBERSD, CFG_DURATION, 0, NOMAX, NULL, "30", CFG_RELOAD_LIVE,
	  "seconds for the whole stop before SIGKILL of all" },
	{ "max_slice", CFG_SEC_FIBERSD, CFG_DURATION, 0, NOMAX, NULL, "1.0", CFG_RELOAD_LIVE,
	  "seconds a task may run without yielding (0 = no limit)" },
	{ "lua_path", CFG_SEC_FIBERSD, CFG_STRING, 0, 0, NULL, "", CFG_RELOAD_DAEMON,
	  "extra package.path entries for tasks: templates (/x/?.lua) or directories, ';'-separated" },
	{ "log_lines", CFG_SEC_FIBERSD, CFG_INT, 0, 1000000, NULL, "200", CFG_RELOAD_LIVE,
	  "lines of log kept per task for `fibersctl logs`" },
	{ "control_idle", CFG_SEC_FIBERSD, CFG_DURATION, 0.1, NOMAX, NULL, "60", CFG_RELOAD_DAEMON,
	  "seconds before an idle control connection is closed (not watch/logs -f streams)" },

	{ "restart", CFG_SEC_DEFAULTS, CFG_ENUM, 0, 0, "no|on-failure|always", "on-failure", CFG_RELOAD_LIVE,
	  "restart policy: no|on-failure|always" },
	{ "restart_delay", CFG_SEC_DEFAULTS, CFG_DURATION, 0, NOMAX, NULL, "0.1", CFG_RELOAD_LIVE,
	  "first backoff (seconds), doubles each time, with jitter" },
	{ "restart_max_delay", CFG_SEC_DEFAULTS, CFG_DURATION, 0, NOMAX, NULL, "30", CFG_RELOAD_LIVE,
	  "longest backoff (seconds)" },
	{ "restart_limit", CFG_SEC_DEFAULTS, CFG_INT, 0, 1000000, NULL, "5", CFG_RELOAD_LIVE,
	  "more than this many restarts ..." },
	{ "restart_window", CFG_SEC_DEFAULTS, CFG_DURATION, 0, NOMAX, NULL, "60", CFG_RELOAD_LIVE,
	  "... within this many seconds: give up (state \"fatal\")" },
	{ "shutdown_grace", CFG_SEC_DEFAULTS, CFG_DURATION, 0, NOMAX, NULL, "5", CFG_RELOAD_LIVE,
	  "grace for the task's subprocesses (SIGTERM -> SIGKILL)" },
	{ "memory_limit", CFG_SEC_DEFAULTS, CFG_SIZE, 0, NOMAX, NULL, "64M", CFG_RELOAD_TASK,
	  "Lua memory + stream buffers the task may hold (0 = none)" },
	{ "stop_timeout", CFG_SEC_DEFAULTS, CFG_DURATION, 0, NOMAX, NULL, "", CFG_RELOAD_LIVE,
	  "past this a task that will not stop is forced (empty = shutdown_grace + 5)" },
	{ "watchdog_sec", CFG_SEC_DEFAULTS, CFG_DURATION, 0, NOMAX, NULL, "0", CFG_RELOAD_LIVE,
	  "a task must call fibersd.watchdog() at least this often (0 = off)" },

	{ "memory_max", CFG_SEC_DEFAULTS, CFG_SIZE, 0, NOMAX, NULL, "", CFG_RELOAD_TASK,
	  "memory.max of the task's cgroup: bytes its processes may use (needs the memory controller)" },
	{ "cpu_weight", CFG_SEC_DEFAULTS, CFG_INT, 1, 10000, NULL, "", CFG_RELOAD_TASK,
	  "cpu.weight of the task's cgroup, 1..10000 (needs the cpu controller)" },
	{ "cpu_max", CFG_SEC_DEFAULTS, CFG_CPUMAX, 0, 0, NULL, "", CFG_RELOAD_TASK,
	  "cpu.max of the task's cgroup: 'QUOTA [PERIOD]' in microseconds or 'max' (needs the cpu controller)" },
	{ "pids_max", CFG_SEC_DEFAULTS, CFG_INT, 1, 4194304, NULL, "", CFG_RELOAD_TASK,
	  "pids.max of the task's cgroup: most processes at once (needs the pids controller)" },
	{ "user", CFG_SEC_DEFAULTS, CFG_USER, 0, 0, NULL, "", CFG_RELOAD_TASK,
	  "user the task's Commands run as by default (not its Lua code)" },
	{ "group", CFG_SEC_DEFAULTS, CFG_GROUPS, 0, 1, NULL, "", CFG_RELOAD_TASK,
	  "group of the task's Commands (empty = the user's)" },
	{ "supplementary_groups", CFG_SEC_DEFAULTS, CFG_GROUPS, 0, 0, NULL, "", CFG_RELOAD_TASK,
	  "supplementary groups of the task's Commands (empty = the user's)" },
	{ "working_directory", CFG_SEC_DEFAULTS, CFG_PATH, 0, 0, NULL, "", CFG_RELOAD_TASK,
	  "working directory of the task's Commands (empty = fibersd's)" },
	{ "umask", CFG_SEC_DEFAULTS, CFG_MODE, 0, 0777, NULL, "", CFG_RELOAD_TASK,
	  "umask of the task's Commands (octal; empty = fibersd's)" },
	{ "environment_file", CFG_SEC_DEFAULTS, CFG_PATH, 0, 0, NULL, "", CFG_RELOAD_TASK,
	  "NAME=value lines added to the task's Commands' environment (environment.NAME wins)" },

	{ "enabled", CFG_SEC_TASK, CFG_BOOL, 0, 0, NULL, "yes", CFG_RELOAD_LIVE, "run this task" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

/* The shipped configuration file (`fibersd --print-config`, installed as
 * $(sysconfdir)/fibersd.conf): every key of the table, commented out, with
 * its help line and default. */
void cfg_print(FILE *f)
{
	static const char *const head =
		"# fibersd.conf - configuration of fibersd(8), see fibersd.conf(5).\n"
		"#\n"
		"# Every key is listed below with its default value, commented out; remove\n"
		"# the ';' to change one.  Values: booleans yes/no/true/false/on/off/1/0,\n"
		"# modes in octal, sizes in bytes with an optional K/M/G suffix (1024-based),\n"
		"# durations in seconds (a number >= 0), groups by name or number.\n"
		"# Unknown sections or keys and bad values are errors naming file and line;\n"
		"# `fibersd --check` checks this file and compiles every task script.\n"
		"# Lines may be at most 200 bytes long.\n";
	static const struct {
		int section;
		const char *intro;
	} sections[] = {
		{ CFG_SEC_FIBERSD, "\n[fibersd]\n" },
		{ CFG_SEC_DEFAULTS, "\n[defaults]\n"
				    "; these apply to every task unless its [task:NAME] section overrides them\n" },
		{ CFG_SEC_TASK, "\n; Per task: a [task:NAME] section for the task in NAME.lua takes the\n"
				"; [defaults] keys, `enabled`, and parameters `param.KEY = value` that the\n"
				"; script receives as task.params.KEY (strings).\n"
				";[task:NAME]\n" },
	};
	/* a paragraph before the first key of a group */
	static const struct {
		const char *key, *text;
	} groups[] = {
		{ "memory_max",
		  ";\n"
		  "; Limits of the task's processes: files of its own cgroup (fibersd.conf(5),\n"
		  "; fibersd(8) CONTAINMENT).  A task that sets one whose controller is not\n"
		  "; delegated to fibersd is refused (memory_limit above bounds its Lua only).\n" },
		{ "user",
		  ";\n"
		  "; Defaults of every Command the task starts (a Command may override them);\n"
		  "; the task's Lua code itself keeps running as fibersd.  Task files are\n"
		  "; root-owned configuration, like unit files.\n" },
	};
	fputs(head, f);
	for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
		fputs(sections[i].intro, f);
		for (const struct cfg_key *k = cfg_keys; k->name; k++) {
			if (k->sections != sections[i].section)
				continue;
			for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
				if (strcmp(groups[g].key, k->name) == 0)
					fputs(groups[g].text, f);
			fprintf(f, "; %s\n;%s =%s%s\n", k->help, k->name, *k->def ? " " : "", k->def);
		}
	}
	fputs(";param.example = value\n", f);
}

/* Find a key by section mask and name; NULL when unknown. */
const struct cfg_key *cfg_find(int section, const char *name)
{
	for (const struct cfg_key *k = cfg_keys; k->name; k++)
		if ((k->sections & section) && strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static bool ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
	return *a == *b;
}

static const char *push_bool(lua_State *L, const char *s)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (int i = 0; i < 4; i++) {
		if (ieq(s, yes[i]) || ieq(s, no[i])) {
			lua_pushboolean(L, ieq(s, yes[i]));
			return NULL;
		}
	}
	return "expected yes/no/true/false/on/off/1/0";
}

static const char *push_number(lua_State *L, const struct cfg_key *k, const char *s)
{
	char *end;
	if (k->type == CFG_INT) {
		if (!*s || strspn(s, "0123456789") != strlen(s))
			return "expected a whole number";
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (errno || v < k->min || v > k->max)
			return "out of range";
		lua_pushinteger(L, (lua_Integer)v);
		return NULL;
	}
	/* durations: plain decimal notation only (no hex, inf or nan) */
	if (!*s || strspn(s, "0123456789.eE+-") != strlen(s) ||
	    (!isdigit((unsigned char)*s) && *s != '.'))
		return "expected a duration in seconds (a number >= 0)";
	errno = 0;
	double v = strtod(s, &end);
	if (*end || errno || !isfinite(v))
		return "expected a duration in seconds (a number >= 0)";
	if (v < k->min || v > k->max)
		return "out of range";
	lua_pushnumber(L, v);
	return NULL;
}

static const char *push_size(lua_State *L, const struct cfg_key *k, const char *s)
{
	size_t n = strspn(s, "0123456789");
	if (n == 0)
		return "expected a size (bytes, or a number with K, M or G)";
	double mult = 1;
	const char *u = s + n;
	if (*u) {
		switch (toupper((unsigned char)*u)) {
		case 'K': mult = 1024.0; break;
		case 'M': mult = 1024.0 * 1024; break;
		case 'G': mult = 1024.0 * 1024 * 1024; break;
		default: return "expected a size (bytes, or a number with K, M or G)";
		}
		if (u[1] && !ieq(u + 1, "B") && !ieq(u + 1, "iB"))
			return "expected a size (bytes, or a number with K, M or G)";
	}
	errno = 0;
	double v = (double)strtoull(s, NULL, 10) * mult;
	if (errno || n > 15 || v > k->max)
		return "out of range";
	lua_pushinteger(L, (lua_Integer)v);
	return NULL;
}

static const char *push_group(lua_State *L, const char *s)
{
	if (!*s)
		return "expected a group name or number";
	if (strspn(s, "0123456789") == strlen(s)) {
		if (strlen(s) > 9)
			return "group number out of range";
		lua_pushinteger(L, (lua_Integer)strtol(s, NULL, 10));
		return NULL;
	}
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.-$", *p))
			return "expected a group name or number";
	if (*s == '-')
		return "expected a group name or number";
	lua_pushstring(L, s);
	return NULL;
}

static const char *push_user(lua_State *L, const char *s)
{
	if (strspn(s, "0123456789") == strlen(s)) {
		if (strlen(s) > 9)
			return "user number out of range";
		lua_pushstring(L, s);
		return NULL;
	}
	errno = 0;
	if (getpwnam(s) == NULL)
		return "unknown user";
	lua_pushstring(L, s);
	return NULL;
}

/* Groups as one normalised, blank-separated string (compared as a whole
 * at reload; fibers.exec resolves the names). */
static const char *push_groups(lua_State *L, const struct cfg_key *k, const char *s)
{
	luaL_Buffer b;
	char name[256];
	int n = 0;
	luaL_buffinit(L, &b);
	for (const char *p = s; *p;) {
		p += strspn(p, " \t,");
		size_t w = strcspn(p, " \t,");
		if (!w)
			break;
		if (w >= sizeof name) {
			luaL_pushresult(&b);
			lua_pop(L, 1);
			return "group name too long";
		}
		memcpy(name, p, w);
		name[w] = '\0';
		p += w;
		int numeric = strspn(name, "0123456789") == w;
		if ((numeric && w > 9) || (!numeric && getgrnam(name) == NULL)) {
			luaL_pushresult(&b);
			lua_pop(L, 1);
			return numeric ? "group number out of range" : "unknown group";
		}
		if (n++)
			luaL_addchar(&b, ' ');
		luaL_addlstring(&b, name, w);
	}
	luaL_pushresult(&b);
	if (n == 0 || (k->max > 0 && n > k->max)) {
		lua_pop(L, 1);
		return n == 0 ? "expected group names or numbers" : "expected one group";
	}
	return NULL;
}

/* cpu.max: "max" or QUOTA, optionally " PERIOD" (microseconds). */
static const char *push_cpumax(lua_State *L, const char *s)
{
	const char *bad = "expected 'max' or a quota in microseconds, optionally followed by a period";
	const char *p = s;
	if (strncmp(p, "max", 3) == 0)
		p += 3;
	else if (isdigit((unsigned char)*p)) {
		long long q = strtoll(p, (char **)&p, 10);
		if (q < 1000 || q > 1000000000000LL)
			return "quota out of range (1000..10^12 microseconds)";
	} else
		return bad;
	if (*p == ' ') {
		p++;
		if (!isdigit((unsigned char)*p))
			return bad;
		long long per = strtoll(p, (char **)&p, 10);
		if (per < 1000 || per > 1000000)
			return "period out of range (1000..1000000 microseconds)";
	}
	if (*p)
		return bad;
	lua_pushstring(L, s);
	return NULL;
}

static const char *push_enum(lua_State *L, const struct cfg_key *k, const char *s)
{
	size_t n = strlen(s);
	for (const char *c = k->choices; *c;) {
		size_t w = strcspn(c, "|");
		if (w == n && strncmp(c, s, n) == 0) {
			lua_pushstring(L, s);
			return NULL;
		}
		c += w + (c[w] == '|');
	}
	return "expected one of";
}

/* Parse `text` as a value of key `k`; push the Lua value (nil for an empty
 * optional value) and return NULL, or push nothing and return a static
 * error message. */
const char *cfg_push_value(lua_State *L, const struct cfg_key *k, const char *text)
{
	if (!*text && k->type != CFG_STRING) {
		if (!*k->def) { /* an optional key: empty = unset */
			lua_pushnil(L);
			return NULL;
		}
		return "empty value";
	}
	switch (k->type) {
	case CFG_STRING: lua_pushstring(L, text); return NULL;
	case CFG_PATH:
		if (text[0] != '/')
			return "expected an absolute path";
		lua_pushstring(L, text);
		return NULL;
	case CFG_BOOL: return push_bool(L, text);
	case CFG_INT:
	case CFG_DURATION: return push_number(L, k, text);
	case CFG_SIZE: return push_size(L, k, text);
	case CFG_MODE: {
		if (strspn(text, "01234567") != strlen(text) || strlen(text) > 5)
			return "expected an octal mode such as 0660";
		long v = strtol(text, NULL, 8);
		if (v > k->max)
			return "out of range";
		lua_pushinteger(L, v);
		return NULL;
	}
	case CFG_GROUP: return push_group(L, text);
	case CFG_ENUM: return push_enum(L, k, text);
	case CFG_USER: return push_user(L, text);
	case CFG_GROUPS: return push_groups(L, k, text);
	case CFG_CPUMAX: return push_cpumax(L, text);
	}
	return "unknown key type";
}

/* ---- the parser ---------------------------------------------------------- */

enum sec_kind { SEC_NONE, SEC_FIBERSD, SEC_DEFAULTS, SEC_TASK, SEC_BAD };

struct pctx {
	lua_State *L;
	const char *file;
	FILE *fp;
	int line;
	enum sec_kind sec;
	char task[128];
	int cfg, errs, nerr;
	char *buf;
	size_t cap;
};

static void perr(struct pctx *c, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void perr(struct pctx *c, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	lua_pushfstring(c->L, "%s:%d: %s", c->file, line, msg);
	lua_rawseti(c->L, c->errs, ++c->nerr);
}

/* Task names: [A-Za-z0-9_.-]+ (doc/daemon.md §3). */
static bool task_name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= sizeof ((struct pctx *)0)->task)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

/* Push tasks[name], creating it with the defaults of the [task:NAME]-only
 * keys (enabled) and empty params if needed. */
static void push_task(struct pctx *c, const char *name)
{
	lua_State *L = c->L;
	lua_getfield(L, c->cfg, "tasks");
	if (lua_getfield(L, -1, name) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_createtable(L, 0, 4);
		for (const struct cfg_key *k = cfg_keys; k->name; k++) {
			if (k->sections != CFG_SEC_TASK)
				continue;
			if (cfg_push_value(L, k, k->def) != NULL)
				luaL_error(L, "fibersd: bad built-in default for %s", k->name);
			lua_setfield(L, -2, k->name);
		}
		lua_newtable(L);
		lua_setfield(L, -2, "params");
		lua_pushvalue(L, -1);
		lua_setfield(L, -3, name);
	}
	lua_remove(L, -2);
}

static void section_header(struct pctx *c, char *p)
{
	char *end = strchr(p, ']');
	if (!end) {
		perr(c, c->line, "unterminated section header");
		c->sec = SEC_BAD;
		return;
	}
	char *name = p + 1;
	while (isspace((unsigned char)*name))
		name++;
	char *e = end;
	while (e > name && isspace((unsigned char)e[-1]))
		e--;
	size_t n = (size_t)(e - name);
	if (n == 7 && strncmp(name, "fibersd", 7) == 0) {
		c->sec = SEC_FIBERSD;
	} else if (n == 8 && strncmp(name, "defaults", 8) == 0) {
		c->sec = SEC_DEFAULTS;
	} else if (n > 5 && strncmp(name, "task:", 5) == 0 && task_name_ok(name + 5, n - 5)) {
		memcpy(c->task, name + 5, n - 5);
		c->task[n - 5] = '\0';
		if (strcmp(c->task, "control") == 0 || strcmp(c->task, "fibersd") == 0) {
			perr(c, c->line, "task name '%s' is reserved", c->task);
			c->sec = SEC_BAD;
			return;
		}
		c->sec = SEC_TASK;
		push_task(c, c->task);
		/* where the section starts ("file:line", the first one if it is
		 * repeated): a section for a task with no file is reported there */
		if (lua_getfield(c->L, -1, "where") == LUA_TNIL) {
			lua_pushfstring(c->L, "%s:%d", c->file, c->line);
			lua_setfield(c->L, -3, "where");
		}
		lua_pop(c->L, 2);
	} else {
		perr(c, c->line, "unknown section [%.*s]", (int)n, name);
		c->sec = SEC_BAD;
	}
}

/* The ini_reader: one whole line per call, counted, checked and stripped. */
static char *reader(char *str, int num, void *stream)
{
	struct pctx *c = stream;
	ssize_t n = getline(&c->buf, &c->cap, c->fp);
	if (n < 0)
		return NULL;
	c->line++;
	char *p = c->buf;
	if (n > CFG_MAX_LINE) {
		perr(c, c->line, "line too long");
		p = "";
	} else if (memchr(p, '\0', (size_t)n)) {
		perr(c, c->line, "NUL byte in line");
		p = "";
	} else {
		while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
			p[--n] = '\0';
		if (c->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
			p += 3;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '[') {
			section_header(c, p);
			if (c->sec == SEC_BAD)
				p = "";
		} else if (*p && *p != ';' && *p != '#' && !strchr(p, '=')) {
			perr(c, c->line, "expected 'key = value' or '[section]'");
			p = "";
		}
	}
	size_t len = strlen(p);
	if (len >= (size_t)num)
		len = (size_t)num - 1;
	memcpy(str, p, len);
	str[len] = '\0';
	return str;
}

static const char *sec_name(struct pctx *c, char *buf, size_t size)
{
	switch (c->sec) {
	case SEC_FIBERSD: return "[fibersd]";
	case SEC_DEFAULTS: return "[defaults]";
	default: snprintf(buf, size, "[task:%s]", c->task); return buf;
	}
}

/* Remember where a [defaults] or [task:NAME] key was set:
 * cfg.lines.defaults[key] / cfg.lines.tasks[NAME][key] = line (errors that
 * only the daemon can find, such as a missing cgroup controller, cite it). */
static void note_line(struct pctx *c, const char *name)
{
	lua_State *L = c->L;
	if (c->sec != SEC_DEFAULTS && c->sec != SEC_TASK)
		return;
	lua_getfield(L, c->cfg, "lines");
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_createtable(L, 0, 2);
		lua_pushvalue(L, -1);
		lua_setfield(L, c->cfg, "lines");
	}
	const char *sub = c->sec == SEC_DEFAULTS ? "defaults" : "tasks";
	lua_getfield(L, -1, sub);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, -3, sub);
	}
	if (c->sec == SEC_TASK) {
		lua_getfield(L, -1, c->task);
		if (!lua_istable(L, -1)) {
			lua_pop(L, 1);
			lua_newtable(L);
			lua_pushvalue(L, -1);
			lua_setfield(L, -3, c->task);
		}
	}
	lua_pushinteger(L, c->line);
	lua_setfield(L, -2, name);
	lua_pop(L, c->sec == SEC_TASK ? 3 : 2);
}

/* environment.NAME = value in [defaults] or [task:NAME] (the section's
 * table on top of the stack): stored in its `environment` subtable.
 * Returns 1 when name was such a key (handled, or reported as bad). */
static int environment(struct pctx *c, const char *name, const char *value)
{
	lua_State *L = c->L;
	if (strncmp(name, "environment.", 12) != 0)
		return 0;
	const char *v = name + 12;
	if (!(isalpha((unsigned char)*v) || *v == '_') || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(v)) {
		perr(c, c->line, "bad environment variable name '%s' (expected [A-Za-z_][A-Za-z0-9_]*)", v);
	} else {
		lua_getfield(L, -1, "environment");
		if (!lua_istable(L, -1)) {
			lua_pop(L, 1);
			lua_newtable(L);
			lua_pushvalue(L, -1);
			lua_setfield(L, -3, "environment");
		}
		lua_pushstring(L, value);
		lua_setfield(L, -2, v);
		lua_pop(L, 1);
		note_line(c, name);
	}
	lua_pop(L, 1);
	return 1;
}

/* The ini_handler: validate one key = value and store it. */
static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct pctx *c = user;
	lua_State *L = c->L;
	const struct cfg_key *k = NULL;
	char sbuf[160]; /* `section` is unused: we track sections ourselves */
	switch (c->sec) {
	case SEC_BAD: return 1;
	case SEC_NONE: perr(c, c->line, "key '%s' outside of any section", name); return 1;
	case SEC_FIBERSD:
		k = cfg_find(CFG_SEC_FIBERSD, name);
		lua_getfield(L, c->cfg, "fibersd");
		break;
	case SEC_DEFAULTS:
		lua_getfield(L, c->cfg, "defaults");
		if (environment(c, name, value))
			return 1;
		k = cfg_find(CFG_SEC_DEFAULTS, name);
		break;
	case SEC_TASK:
		push_task(c, c->task);
		if (strncmp(name, "param.", 6) == 0 && name[6]) {
			lua_getfield(L, -1, "params");
			lua_pushstring(L, value);
			lua_setfield(L, -2, name + 6);
			lua_pop(L, 2);
			return 1;
		}
		if (environment(c, name, value))
			return 1;
		k = cfg_find(CFG_SEC_DEFAULTS | CFG_SEC_TASK, name);
		break;
	}
	if (k == NULL) {
		perr(c, c->line, "unknown key '%s' in %s", name, sec_name(c, sbuf, sizeof sbuf));
	} else {
		const char *err = cfg_push_value(L, k, value);
		if (err) {
			perr(c, c->line, "bad value '%s' for %s: %s%s%s", value, name, err,
			     k->type == CFG_ENUM ? " " : "", k->type == CFG_ENUM ? k->choices : "");
		} else {
			lua_setfield(L, -2, name);
			note_line(c, name);
		}
	}
	lua_pop(L, 1);
	return 1;
}

/* Fill the table on top of the stack with the defaults of one section. */
static void push_defaults(lua_State *L, int mask)
{
	lua_newtable(L);
	for (const struct cfg_key *k = cfg_keys; k->name; k++) {
		if (!(k->sections & mask))
			continue;
		if (cfg_push_value(L, k, k->def) != NULL)
			luaL_error(L, "fibersd: bad built-in default for %s", k->name);
		lua_setfield(L, -2, k->name);
	}
}

/* Load the configuration file `path` (NULL = built-in defaults) and push
 * the config table; returns 1.  On errors pushes nil and a message of
 * "file:line: message" lines and returns 2, with errno set to why (the
 * open's errno for a file that cannot be read, EINVAL for bad contents). */
int cfg_load(lua_State *L, const char *path)
{
	lua_createtable(L, 0, 4);
	int cfg = lua_gettop(L);
	push_defaults(L, CFG_SEC_FIBERSD);
	lua_setfield(L, cfg, "fibersd");
	push_defaults(L, CFG_SEC_DEFAULTS);
	lua_setfield(L, cfg, "defaults");
	lua_newtable(L);
	lua_setfield(L, cfg, "tasks");
	if (path == NULL)
		return 1;
	lua_pushstring(L, path);
	lua_setfield(L, cfg, "file");
	/* only a regular file of sane size: a FIFO would block the open
	 * (O_NONBLOCK), a device such as /dev/zero would be read for ever */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	int err = fd < 0 ? errno : fstat(fd, &st) ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
	const char *why = err ? strerror(err) : !S_ISREG(st.st_mode) ? "not a regular file" :
		st.st_size > CFG_MAX_FILE ? "file too large" : NULL;
	FILE *fp = NULL;
	if (why == NULL && (fp = fdopen(fd, "r")) == NULL) {
		err = errno;
		why = strerror(err);
	}
	if (why) {
		if (fd >= 0)
			close(fd);
		lua_pushnil(L);
		if (err == ENOENT)
			lua_pushfstring(L, "%s: the configuration file does not exist", path);
		else
			lua_pushfstring(L, "%s: cannot read the configuration file: %s", path, why);
		errno = err ? err : EINVAL;
		return 2;
	}
	int r = cfg_parse_stream(L, path, fp, cfg);
	fclose(fp);
	errno = r == 1 ? 0 : EINVAL;
	return r;
}

/* Parse an open stream named `name` into the config table at index cfg;
 * returns 1 (nothing pushed) or 2 (nil and the messages pushed). */
int cfg_parse_stream(lua_State *L, const char *name, FILE *fp, int cfg)
{
	lua_newtable(L);
	struct pctx c = { .L = L, .file = name, .fp = fp, .cfg = cfg, .errs = lua_gettop(L) };
	int r = ini_parse_stream(reader, &c, handler, &c);
	if (ferror(fp))
		perr(&c, c.line, "read error: %s", strerror(errno));
	else if (r == -2)
		perr(&c, c.line, "out of memory");
	else if (r > 0 && c.nerr == 0)
		perr(&c, r, "syntax error");
	free(c.buf);
	if (c.nerr == 0) {
		lua_pop(L, 1);
		return 1;
	}
	lua_pushnil(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= c.nerr; i++) {
		if (i > 1)
			luaL_addchar(&b, '\n'); /* before the push: the buffer must be on top */
		lua_rawgeti(L, c.errs, i);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	return 2;
}
