/*
 * config.c - TAP unit test of the fibersd configuration parser
 * (src/fibersd/config.c): built-in defaults, the value grammar, task
 * sections, every error message with its file:line, the line-length limit,
 * and the shipped etc/fibersd.conf against the key table (every key present
 * in its section with its default; the uncommented file parses to exactly
 * the defaults).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "fibersd.h"
#include "tap.h"

#ifndef FIBERSD_SYSCONFDIR
#define FIBERSD_SYSCONFDIR "/etc"
#endif

static lua_State *L;
static char tmpdir[] = "/tmp/cfgtXXXXXX";

/* Evaluate a Lua expression over the globals cfg / err. */
static int expr(const char *e)
{
	char chunk[1024];
	snprintf(chunk, sizeof chunk, "return %s", e);
	if (luaL_dostring(L, chunk) != LUA_OK) {
		printf("# %s\n", lua_tostring(L, -1));
		lua_pop(L, 1);
		return 0;
	}
	int r = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return r;
}

static void okx(const char *e)
{
	ok(expr(e), "%s", e);
}

static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* Load a file; sets globals cfg and err; returns the error text or NULL. */
static const char *load(const char *path)
{
	int n = cfg_load(L, path);
	if (n == 1) {
		lua_setglobal(L, "cfg");
		lua_pushnil(L);
		lua_setglobal(L, "err");
		return NULL;
	}
	lua_setglobal(L, "err");
	lua_setglobal(L, "cfg");
	lua_getglobal(L, "err");
	const char *e = lua_tostring(L, -1);
	lua_pop(L, 1);
	return e; /* anchored in the global */
}

static const char *load_text(const char *text)
{
	return load(write_file("t.conf", text));
}

static void test_defaults(void)
{
	ok(load(NULL) == NULL, "no file: defaults");
	okx("cfg.file == nil");
	okx("cfg.fibersd.task_dir == '" FIBERSD_SYSCONFDIR "/fibers.d'");
	okx("cfg.fibersd.control_socket == '/run/fibersd/control.sock'");
	okx("cfg.fibersd.control_mode == 432");
	okx("cfg.fibersd.control_group == 'fibersd' and cfg.fibersd.admin_group == 'fibersd-admin'");
	okx("cfg.fibersd.log_level == 'info' and cfg.fibersd.log_target == 'auto'");
	okx("cfg.fibersd.shutdown_timeout == 30 and cfg.fibersd.max_slice == 1.0");
	okx("cfg.fibersd.lua_path == '' and cfg.fibersd.log_lines == 200");
	okx("math.type(cfg.fibersd.log_lines) == 'integer' and cfg.fibersd.control_idle == 60");
	okx("cfg.defaults.restart == 'on-failure' and cfg.defaults.restart_delay == 0.1");
	okx("cfg.defaults.restart_max_delay == 30 and cfg.defaults.restart_limit == 5");
	okx("cfg.defaults.restart_window == 60 and cfg.defaults.shutdown_grace == 5");
	okx("cfg.defaults.memory_limit == 64 * 1024 * 1024");
	okx("cfg.defaults.stop_timeout == nil and cfg.defaults.watchdog_sec == 0");
	okx("next(cfg.tasks) == nil and cfg.defaults.enabled == nil");
}

static void test_values(void)
{
	const char *e = load_text(
		"; a comment\n# another\n\n"
		"[fibersd]\n"
		"task_dir = /srv/tasks\n"
		"  control_socket=/tmp/x.sock   ; inline comment\n"
		"control_mode = 0600\n"
		"control_group = 1234\n"
		"admin_group = wheel\n"
		"log_level = debug\n"
		"max_slice = 0.25\n"
		"lua_path = /opt/a/?.lua;/opt/b\n"
		"shutdown_timeout = 1.5e1\n"
		"[defaults]\n"
		"restart = always\n"
		"memory_limit = 512K\n"
		"stop_timeout = 7\n"
		"[task:web-1.x]\n"
		"enabled = off\n"
		"memory_limit = 2g\n"
		"param.url = http://example.org/a=b\n"
		"param.empty =\n"
		"[task:plain]\n"
		"[task:web-1.x]\n"
		"restart = no\n");
	is_str(e ? e : "", "", "a file using every value type parses");
	okx("cfg.fibersd.task_dir == '/srv/tasks' and cfg.fibersd.control_socket == '/tmp/x.sock'");
	okx("cfg.fibersd.control_mode == 384 and cfg.fibersd.control_group == 1234");
	okx("math.type(cfg.fibersd.control_group) == 'integer' and cfg.fibersd.admin_group == 'wheel'");
	okx("cfg.fibersd.log_level == 'debug' and cfg.fibersd.max_slice == 0.25");
	okx("cfg.fibersd.lua_path == '/opt/a/?.lua;/opt/b' and cfg.fibersd.shutdown_timeout == 15");
	okx("cfg.defaults.restart == 'always' and cfg.defaults.memory_limit == 524288");
	okx("cfg.defaults.stop_timeout == 7 and cfg.defaults.restart_delay == 0.1");
	okx("cfg.tasks['web-1.x'].enabled == false and cfg.tasks['web-1.x'].memory_limit == 2^31");
	okx("cfg.tasks['web-1.x'].params.url == 'http://example.org/a=b'");
	okx("cfg.tasks['web-1.x'].params.empty == '' and cfg.tasks['web-1.x'].restart == 'no'");
	okx("cfg.tasks['web-1.x'].restart_delay == nil");
	okx("cfg.tasks.plain.enabled == true and next(cfg.tasks.plain.params) == nil");
	okx("cfg.file:sub(-7) == '/t.conf'");

	static const char *const bools[] = { "yes", "true", "on", "1", "YES", "no", "false", "off", "0", "Off" };
	for (int i = 0; i < 10; i++) {
		char text[128];
		snprintf(text, sizeof text, "[task:b]\nenabled = %s\n", bools[i]);
		load_text(text);
		char want[64];
		snprintf(want, sizeof want, "cfg.tasks.b.enabled == %s", i < 5 ? "true" : "false");
		ok(expr(want), "%s", bools[i]);
	}
	load_text("[defaults]\nmemory_limit = 0\nrestart_delay = 0\nwatchdog_sec = .5\n");
	okx("cfg.defaults.memory_limit == 0 and cfg.defaults.restart_delay == 0 and cfg.defaults.watchdog_sec == 0.5");
	load_text("[defaults]\nmemory_limit = 3M\nstop_timeout =\n");
	okx("cfg.defaults.memory_limit == 3145728 and cfg.defaults.stop_timeout == nil");
	load_text("[defaults]\nmemory_limit = 100\n");
	okx("cfg.defaults.memory_limit == 100");
}

static void test_errors(void)
{
	struct { const char *text, *want, *name; } cases[] = {
		{ "[fibersd]\nbogus = 1\n", "t.conf:2: unknown key 'bogus' in [fibersd]", "unknown key" },
		{ "[defaults]\ntask_dir = /x\n", "t.conf:2: unknown key 'task_dir' in [defaults]", "fibersd key in [defaults]" },
		{ "[fibersd]\nrestart = no\n", "t.conf:2: unknown key 'restart' in [fibersd]", "defaults key in [fibersd]" },
		{ "[defaults]\nenabled = no\n", "t.conf:2: unknown key 'enabled' in [defaults]", "enabled only in tasks" },
		{ "[task:a]\nbogus = 1\n", "t.conf:2: unknown key 'bogus' in [task:a]", "unknown task key" },
		{ "[fibersd]\n\nmax_slice = fast\n", "t.conf:3: bad value 'fast' for max_slice: expected a duration in seconds (a number >= 0)", "bad duration" },
		{ "[fibersd]\nmax_slice = -1\n", "t.conf:2: bad value '-1' for max_slice: expected a duration in seconds (a number >= 0)", "negative duration" },
		{ "[fibersd]\nmax_slice = nan\n", "t.conf:2: bad value 'nan' for max_slice: expected a duration in seconds (a number >= 0)", "nan duration" },
		{ "[fibersd]\nmax_slice = 0x10\n", "t.conf:2: bad value '0x10' for max_slice: expected a duration in seconds (a number >= 0)", "hex duration" },
		{ "[fibersd]\ncontrol_mode = 660x\n", "t.conf:2: bad value '660x' for control_mode: expected an octal mode such as 0660", "bad mode" },
		{ "[fibersd]\ncontrol_mode = 0989\n", "t.conf:2: bad value '0989' for control_mode: expected an octal mode such as 0660", "non-octal mode" },
		{ "[fibersd]\ncontrol_mode = 01777\n", "t.conf:2: bad value '01777' for control_mode: out of range", "mode out of range" },
		{ "[fibersd]\nlog_level = loud\n", "t.conf:2: bad value 'loud' for log_level: expected one of debug|info|notice|warning|err", "bad enum" },
		{ "[fibersd]\nlog_lines = 1e3\n", "t.conf:2: bad value '1e3' for log_lines: expected a whole number", "bad integer" },
		{ "[fibersd]\nlog_lines = 99999999\n", "t.conf:2: bad value '99999999' for log_lines: out of range", "integer out of range" },
		{ "[fibersd]\ntask_dir = relative/dir\n", "t.conf:2: bad value 'relative/dir' for task_dir: expected an absolute path", "relative path" },
		{ "[fibersd]\ntask_dir =\n", "t.conf:2: bad value '' for task_dir: empty value", "empty path" },
		{ "[fibersd]\ncontrol_group = a b\n", "t.conf:2: bad value 'a b' for control_group: expected a group name or number", "bad group" },
		{ "[defaults]\nmemory_limit = 12X\n", "t.conf:2: bad value '12X' for memory_limit: expected a size (bytes, or a number with K, M or G)", "bad size" },
		{ "[defaults]\nmemory_limit = 1.5M\n", "t.conf:2: bad value '1.5M' for memory_limit: expected a size (bytes, or a number with K, M or G)", "fractional size" },
		{ "[task:a]\nenabled = maybe\n", "t.conf:2: bad value 'maybe' for enabled: expected yes/no/true/false/on/off/1/0", "bad boolean" },
		{ "[fibersd]\n[bogus]\nx = 1\n[defaults]\n", "t.conf:2: unknown section [bogus]", "unknown section, its keys not reported" },
		{ "[defaults]\n[empty]\n", "t.conf:2: unknown section [empty]", "empty unknown section" },
		{ "[task:]\n", "t.conf:1: unknown section [task:]", "task without a name" },
		{ "[task:a b]\n", "t.conf:1: unknown section [task:a b]", "bad task name" },
		{ "[task:control]\n", "t.conf:1: task name 'control' is reserved", "reserved task name" },
		{ "[fibersd\n", "t.conf:1: unterminated section header", "unterminated header" },
		{ "task_dir = /x\n", "t.conf:1: key 'task_dir' outside of any section", "key before any section" },
		{ "[fibersd]\njust words\n", "t.conf:2: expected 'key = value' or '[section]'", "no '='" },
		{ "[fibersd]\nbogus = 1\nmax_slice = x\n[nope]\n",
		  "t.conf:2: unknown key 'bogus' in [fibersd]\n"
		  "t.conf:3: bad value 'x' for max_slice: expected a duration in seconds (a number >= 0)\n"
		  "t.conf:4: unknown section [nope]", "every problem reported, in order" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *e = load_text(cases[i].text);
		/* strip "<tmpdir>/" from every line for the comparison */
		char got[2048] = "";
		size_t tl = strlen(tmpdir), g = 0;
		for (const char *p = e ? e : ""; *p && g < sizeof got - 1;) {
			if (strncmp(p, tmpdir, tl) == 0 && p[tl] == '/')
				p += tl + 1;
			else
				got[g++] = *p++;
		}
		got[g] = '\0';
		is_str(e ? got : NULL, cases[i].want, "%s", cases[i].name);
		ok(expr("cfg == nil"), "no table on error");
	}
}

static void test_lines(void)
{
	char text[1024], line[400];
	/* "lua_path = " is 11 bytes; 199 bytes + newline = 200 is accepted */
	memset(line, 'a', sizeof line);
	snprintf(text, sizeof text, "[fibersd]\nlua_path = /%.*s\n", 199 - 12, line);
	ok(load_text(text) == NULL, "a 200-byte line (with its newline) is accepted");
	okx("#cfg.fibersd.lua_path == 188");
	snprintf(text, sizeof text, "[fibersd]\nlua_path = /%.*s\n", 200 - 12, line);
	const char *e = load_text(text);
	ok(e && strstr(e, "/t.conf:2: line too long") && !strchr(e, '\n'), "a 201-byte line is too long");
	snprintf(text, sizeof text, "[fibersd]\n; %.*s\nbogus = 1\n", 298, line);
	e = load_text(text);
	ok(e && strstr(e, "/t.conf:2: line too long\n") && strstr(e, "/t.conf:3: unknown key 'bogus'"),
	   "after a 300-byte line the numbering stays right");
	e = load_text("[fibersd]\r\nmax_slice = 2\r\n");
	ok(e == NULL && expr("cfg.fibersd.max_slice == 2"), "CRLF line ends");
	e = load_text("\xEF\xBB\xBF[fibersd]\nmax_slice = 3\n");
	ok(e == NULL && expr("cfg.fibersd.max_slice == 3"), "UTF-8 byte order mark");
	e = load_text("[fibersd]\nmax_slice = 4");
	ok(e == NULL && expr("cfg.fibersd.max_slice == 4"), "no newline at the end");
	e = load_text("[fibersd]\nmax_slice = 4\n    log_lines = 5\n");
	ok(e == NULL && expr("cfg.fibersd.log_lines == 5 and cfg.fibersd.max_slice == 4"),
	   "indented keys are keys, not continuations");
	{
		char many[8192] = "[fibersd]\n";
		for (int i = 0; i < 100; i++)
			snprintf(many + strlen(many), sizeof many - strlen(many), "unknown_key_%03d = 1\n", i);
		e = load_text(many);
		int n = 0;
		for (const char *p = e; p && (p = strstr(p, "unknown key 'unknown_key_")); p++)
			n++;
		ok(n == 100 && strstr(e, "/t.conf:101: unknown key 'unknown_key_099' in [fibersd]"),
		   "100 errors (more than a buffer's worth) all reported");
	}
	e = load("/nonexistent/fibersd.conf");
	is_str(e, "/nonexistent/fibersd.conf: the configuration file does not exist", "missing file");
	e = load(tmpdir);
	ok(e && strstr(e, ": Is a directory"), "a directory");
}

/* The shipped file: every key, commented, with its default. */
static void test_shipped(void)
{
	const char *bd = getenv("top_builddir");
	char path[512], upath[512];
	snprintf(path, sizeof path, "%s/etc/fibersd.conf", bd ? bd : ".");
	FILE *f = fopen(path, "r");
	ok(f != NULL, "shipped etc/fibersd.conf exists");
	if (!f)
		return;
	snprintf(upath, sizeof upath, "%s/uncommented.conf", tmpdir);
	FILE *u = fopen(upath, "w");
	char buf[512], section[64] = "";
	int seen[64] = { 0 }, bad = 0;
	while (fgets(buf, sizeof buf, f)) {
		char *p = buf;
		if (p[0] == ';' && p[1] != ' ' && (p[1] == '[' || strchr(p, '=')))
			p++;
		fputs(p, u);
		if (*p == '[') {
			snprintf(section, sizeof section, "%.*s", (int)strcspn(p + 1, ":]"), p + 1);
			continue;
		}
		char key[64], val[256] = "";
		if (p == buf || sscanf(p, "%63[a-z_.] = %255[^\n]", key, val) < 1)
			continue;
		if (strncmp(key, "param.", 6) == 0)
			continue;
		int mask = strcmp(section, "fibersd") == 0 ? CFG_SEC_FIBERSD :
			   strcmp(section, "defaults") == 0 ? CFG_SEC_DEFAULTS : CFG_SEC_TASK;
		const struct cfg_key *k = cfg_find(mask, key);
		if (k == NULL || (k->sections & mask) == 0 || strcmp(val, k->def) != 0) {
			printf("# shipped %s in [%s] = '%s' does not match the key table\n", key, section, val);
			bad++;
		} else {
			seen[k - cfg_keys]++;
		}
	}
	fclose(f);
	fclose(u);
	ok(bad == 0, "every shipped key is known, in its section, with its default");
	int missing = 0;
	for (const struct cfg_key *k = cfg_keys; k->name; k++) {
		if (seen[k - cfg_keys] != 1) {
			printf("# key %s appears %d times in the shipped file\n", k->name, seen[k - cfg_keys]);
			missing++;
		}
	}
	ok(missing == 0, "every key of the table is in the shipped file exactly once");
	const char *e = load(upath);
	is_str(e ? e : "", "", "the uncommented shipped file parses");
	lua_getglobal(L, "cfg");
	lua_setglobal(L, "shipped");
	load(NULL);
	ok(expr("(function() for _, s in ipairs({'fibersd', 'defaults'}) do "
		"for k, v in pairs(cfg[s]) do if shipped[s][k] ~= v then return false end end "
		"for k, v in pairs(shipped[s]) do if cfg[s][k] ~= v then return false end end end "
		"return shipped.tasks.NAME.enabled == true end)()"),
	   "the uncommented shipped file means exactly the built-in defaults");
}

/* The key table is the one schema: every row has a name, a section, a
 * default (possibly empty), a reload rule and a help line. */
static void test_schema(void)
{
	int bad = 0, n = 0;
	for (const struct cfg_key *k = cfg_keys; k->name; k++, n++) {
		const char *why = NULL;
		if (!*k->name || strspn(k->name, "abcdefghijklmnopqrstuvwxyz_") != strlen(k->name))
			why = "bad name";
		else if (k->sections != CFG_SEC_FIBERSD && k->sections != CFG_SEC_DEFAULTS &&
			 k->sections != CFG_SEC_TASK)
			why = "no section";
		else if (k->def == NULL)
			why = "no default";
		else if (k->reload != CFG_RELOAD_LIVE && k->reload != CFG_RELOAD_TASK &&
			 k->reload != CFG_RELOAD_DAEMON)
			why = "no reload rule";
		else if (k->help == NULL || !*k->help)
			why = "no help line";
		else if (k->type == CFG_ENUM && (k->choices == NULL || !*k->choices))
			why = "an enum without choices";
		if (why) {
			printf("# key %s: %s\n", k->name, why);
			bad++;
		}
	}
	ok(n > 0 && bad == 0, "every key has a section, a default, a reload rule and a help line");
}

int main(void)
{
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	L = luaL_newstate();
	luaL_openlibs(L);
	test_defaults();
	test_values();
	test_errors();
	test_lines();
	test_shipped();
	test_schema();
	int rc = done_testing();
	lua_close(L);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return rc;
}
