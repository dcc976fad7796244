/*
 * main.c - the fibersd program: command line (doc/daemon.md §1), the one Lua
 * 5.4 state (with the per-task accounting allocator of task.c), the
 * configuration, package.path built explicitly, and the hand-over to the
 * daemon's Lua policy: require('fibersd.main').run(cfg, opts) under pcall
 * with a traceback handler; its return value is the exit status.
 *
 * Exit status: 0 clean stop (and -h, -V); 1 bad config or usage; 2 could
 * not start (or an internal error escaping the Lua policy).  This is the
 * only file of the daemon that exits.
 *
 * package.path never comes from LUA_PATH/LUA_CPATH and never holds "./":
 * from the build tree (this executable is $(abs_top_builddir)/src/fibersd/
 * fibersd) it is $(abs_top_srcdir)/lib, installed it is $(luadir) and
 * $(pkgdatadir)/lua; then the absolute entries of lua_path.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

#include "config.h"
#include "fibersd.h"
#include "lbind.h"

#ifndef FIBERSD_LUADIR
#define FIBERSD_LUADIR "/usr/local/share/lua/5.4"
#endif
#ifndef FIBERSD_LUACMODDIR
#define FIBERSD_LUACMODDIR "/usr/local/lib/lua/5.4"
#endif
#ifndef FIBERSD_PKGLUADIR
#define FIBERSD_PKGLUADIR "/usr/local/share/fibersd/lua"
#endif
#ifndef FIBERSD_SRCLIB
#define FIBERSD_SRCLIB ""
#endif
#ifndef FIBERSD_SYSCONFDIR
#define FIBERSD_SYSCONFDIR "/etc"
#endif

#define EXIT_USAGE 1
#define EXIT_NOSTART 2

struct opts {
	bool check, no_config;
	const char *config_file;
	char *task_dir, *control_socket;
	const char *log_level;
};

static void usage(FILE *to)
{
	fprintf(to,
		"Usage: fibersd [-c FILE | -n] [-d DIR] [-S PATH] [-l LEVEL] [--check] [-V] [-h]\n"
		"Supervise the Lua task scripts of a directory (see fibersd(8)).\n\n"
		"  -c, --config FILE      configuration file (default %s/fibersd.conf)\n"
		"  -n, --no-config        no configuration file: built-in defaults\n"
		"  -d, --task-dir DIR     task directory (overrides task_dir)\n"
		"  -S, --socket PATH      control socket (overrides control_socket)\n"
		"  -l, --log-level LEVEL  debug|info|notice|warning|err (overrides log_level)\n"
		"      --check            check the configuration and compile every task, then exit\n"
		"      --print-config     print the default configuration file (every key, commented)\n"
		"  -V, --version          print the version and exit\n"
		"  -h, --help             print this help and exit\n\n"
		"Exit status: 0 clean stop or check passed; 1 bad configuration or usage;\n"
		"2 could not start.\n",
		FIBERSD_SYSCONFDIR);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "fibersd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'fibersd -h' for more information.\n");
	return EXIT_USAGE;
}

/* An absolute version of a path given on the command line (malloc'd). */
static char *absolute(const char *p)
{
	char cwd[PATH_MAX];
	if (p[0] == '/' || getcwd(cwd, sizeof cwd) == NULL)
		return strdup(p);
	size_t n = strlen(cwd) + strlen(p) + 2;
	char *r = malloc(n);
	if (r)
		snprintf(r, n, "%s/%s", strcmp(cwd, "/") ? cwd : "", p);
	return r;
}

/* Is s one of the words the log_level key accepts? */
static bool level_ok(const char *s)
{
	const struct cfg_key *k = cfg_find(CFG_SEC_FIBERSD, "log_level");
	size_t n = strlen(s);
	for (const char *c = k->choices; *c;) {
		size_t w = strcspn(c, "|");
		if (w == n && strncmp(c, s, n) == 0)
			return true;
		c += w + (c[w] == '|');
	}
	return false;
}

/* Parse the command line; returns -1 to go on, else an exit status. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "no-config", no_argument, NULL, 'n' },
		{ "task-dir", required_argument, NULL, 'd' },
		{ "socket", required_argument, NULL, 'S' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "check", no_argument, NULL, 'C' },
		{ "print-config", no_argument, NULL, 'P' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:nd:S:l:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config_file = optarg; break;
		case 'n': o->no_config = true; break;
		case 'd':
			if (!*optarg)
				return usage_error("%s-d needs a directory", "");
			free(o->task_dir);
			o->task_dir = absolute(optarg);
			break;
		case 'S':
			if (!*optarg)
				return usage_error("%s-S needs a path", "");
			free(o->control_socket);
			o->control_socket = absolute(optarg);
			break;
		case 'l':
			if (!level_ok(optarg))
				return usage_error("unknown log level '%s' (debug|info|notice|warning|err)",
						   optarg);
			o->log_level = optarg;
			break;
		case 'C': o->check = true; break;
		case 'P': cfg_print(stdout); return 0;
		case 'V':
			printf("fibersd %s\n", PACKAGE_VERSION);
			fd_print_features(stdout);
			return 0;
		case 'h': usage(stdout); return 0;
		case ':': return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default: return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->no_config && o->config_file)
		return usage_error("%s-c and -n exclude each other", "");
	if (!o->no_config && !o->config_file)
		o->config_file = FIBERSD_SYSCONFDIR "/fibersd.conf";
	return -1;
}

/* Append "dir/?.lua;dir/?/init.lua;" (or a template as is) to b. */
static void add_path(luaL_Buffer *b, const char *entry, size_t n, const char *tail)
{
	if (memchr(entry, '?', n)) {
		luaL_addlstring(b, entry, n);
		luaL_addchar(b, ';');
		return;
	}
	while (n > 1 && entry[n - 1] == '/')
		n--;
	for (const char *t = tail; *t;) {
		size_t w = strcspn(t, ";");
		luaL_addlstring(b, entry, n);
		luaL_addlstring(b, t, w);
		luaL_addchar(b, ';');
		t += w + (t[w] == ';');
	}
}

/* Set package.path/cpath from the built-in directories and lua_path
 * (absolute entries only; others are skipped with a warning). */
static void set_paths(lua_State *L, const char *lua_path)
{
	static const char lua_tail[] = "/?.lua;/?/init.lua";
	bool tree = fd_in_build_tree() && FIBERSD_SRCLIB[0];
	luaL_Buffer p, c;
	lua_getglobal(L, "package");
	luaL_buffinit(L, &p);
	/* the library's own chunks run their bookkeeping past a doom (task.c) */
	if (tree) {
		add_path(&p, FIBERSD_SRCLIB, strlen(FIBERSD_SRCLIB), lua_tail);
		mem_guard_exempt(L, FIBERSD_SRCLIB);
	} else {
		add_path(&p, FIBERSD_LUADIR, strlen(FIBERSD_LUADIR), lua_tail);
		add_path(&p, FIBERSD_PKGLUADIR, strlen(FIBERSD_PKGLUADIR), lua_tail);
		mem_guard_exempt(L, FIBERSD_LUADIR);
		mem_guard_exempt(L, FIBERSD_PKGLUADIR);
	}
	for (const char *e = lua_path; *e;) {
		size_t w = strcspn(e, ";");
		if (w > 0 && e[0] == '/') {
			add_path(&p, e, w, lua_tail);
		} else if (w > 0) {
			char msg[300];
			snprintf(msg, sizeof msg, "lua_path: ignoring relative entry '%.*s'", (int)w, e);
			log_emit(4, msg, strlen(msg), NULL);
		}
		e += w + (e[w] == ';');
	}
	luaL_pushresult(&p);
	lua_setfield(L, -2, "path");

	luaL_buffinit(L, &c);
	if (!tree)
		add_path(&c, FIBERSD_LUACMODDIR, strlen(FIBERSD_LUACMODDIR), "/?.so");
	for (const char *e = lua_path; *e;) {
		size_t w = strcspn(e, ";");
		if (w > 0 && e[0] == '/' && !memchr(e, '?', w))
			add_path(&c, e, w, "/?.so");
		e += w + (e[w] == ';');
	}
	luaL_pushresult(&c);
	lua_setfield(L, -2, "cpath");
	lua_pop(L, 1);
}

static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL)
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	luaL_traceback(L, L, msg, 1);
	return 1;
}

static int panicf(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);
	fprintf(stderr, "fibersd: PANIC: unprotected Lua error: %s\n", msg ? msg : "?");
	return 0; /* Lua aborts */
}

static void set_str(lua_State *L, const char *k, const char *v)
{
	if (v) {
		lua_pushstring(L, v);
		lua_setfield(L, -2, k);
	}
}

/* The protected main: config, paths, then fibersd.main.run(cfg, opts). */
static int pmain(lua_State *L)
{
	struct opts *o = lua_touserdata(L, 1);
	luaL_openlibs(L);
	fl_preload(L);
	fd_preload(L);

	if (fd_load_config(L, o->no_config ? NULL : o->config_file) != 1) {
		int err = errno ? errno : EINVAL;
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "%s\n", msg);
		/* systemctl status shows STATUS= and ERRNO= (as its strerror):
		 * the first error itself, and ENOENT for a missing file */
		char status[600];
		snprintf(status, sizeof status, "STATUS=bad configuration: %.*s\nERRNO=%d",
			 (int)strcspn(msg, "\n"), msg, err);
		notify_send(status);
		lua_pushinteger(L, EXIT_USAGE);
		return 1;
	}
	int cfg = lua_gettop(L);

	/* opts = { check, config_file, overrides = {...} }; overrides also
	 * applied to cfg.fibersd */
	lua_createtable(L, 0, 3);
	int opts = lua_gettop(L);
	lua_pushboolean(L, o->check);
	lua_setfield(L, opts, "check");
	set_str(L, "config_file", o->no_config ? NULL : o->config_file);
	lua_createtable(L, 0, 3);
	set_str(L, "task_dir", o->task_dir);
	set_str(L, "control_socket", o->control_socket);
	set_str(L, "log_level", o->log_level);
	lua_setfield(L, opts, "overrides");
	lua_getfield(L, cfg, "fibersd");
	set_str(L, "task_dir", o->task_dir);
	set_str(L, "control_socket", o->control_socket);
	set_str(L, "log_level", o->log_level);

	lua_getfield(L, -1, "log_level");
	lua_getfield(L, -2, "log_target");
	const char *target = lua_tostring(L, -1);
	log_configure(log_level_parse(lua_tostring(L, -2)),
		      strcmp(target, "journal") == 0  ? LOG_TARGET_JOURNAL :
		      strcmp(target, "stderr") == 0 ? LOG_TARGET_STDERR : LOG_TARGET_AUTO);
	lua_pop(L, 2);
	lua_getfield(L, -1, "lua_path");
	set_paths(L, lua_tostring(L, -1));
	lua_pop(L, 2);

	lua_getglobal(L, "require");
	lua_pushliteral(L, "fibersd.main");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "run");
	lua_pushvalue(L, cfg);
	lua_pushvalue(L, opts);
	lua_call(L, 2, 1);
	return 1;
}

/* fds 0-2 closed by whoever started us would be reused by the first files
 * we open (log lines would land in them): keep them open on /dev/null.
 * SIGPIPE would end the daemon when stderr's reader is gone: writes get
 * EPIPE instead (children get every disposition reset at spawn). */
static void sane_stdio(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
			int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
			if (n >= 0 && n != fd) { /* a lower fd was closed too: moved below */
				dup2(n, fd);
				close(n);
			}
		}
	}
	signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	sane_stdio();
	fd_features(); /* detected once, before anything changes the environment */
	int status = parse_args(argc, argv, &o);
	if (status >= 0) /* -h, -V, usage errors: the process ends, nothing to free */
		return status; // NOLINT(clang-analyzer-unix.Malloc)

	log_configure(6, LOG_TARGET_AUTO);
	void *mem = mem_state_new();
	lua_State *L = mem ? lua_newstate(mem_alloc, mem) : NULL;
	if (L == NULL) {
		fprintf(stderr, "fibersd: cannot create the Lua state: not enough memory\n");
		return EXIT_NOSTART;
	}
	lua_atpanic(L, panicf);
	lua_pushcfunction(L, msghandler);
	lua_pushcfunction(L, pmain);
	lua_pushlightuserdata(L, &o);
	if (lua_pcall(L, 1, 1, 1) != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "fibersd: %s\n", msg ? msg : "(error object is not a string)");
		status = EXIT_NOSTART;
	} else if (lua_isinteger(L, -1)) {
		status = (int)lua_tointeger(L, -1);
	} else if (lua_isboolean(L, -1)) {
		status = lua_toboolean(L, -1) ? 0 : 1;
	} else if (lua_isnumber(L, -1)) {
		status = (int)lua_tonumber(L, -1);
	} else {
		status = 0;
	}
	lua_close(L);
	mem_state_free(mem);
	free(o.task_dir);
	free(o.control_socket);
	return status;
}
