/*
 * lhost.c - the `_fibersd` Lua module: what the daemon's Lua policy
 * (lib/fibersd/) needs from its C host.  It is preloaded by fibersd
 * only (never a loadable .so).  Functions come from several files (one
 * luaL_Reg array each, merged flat into the module) plus nested
 * sub-modules listed in subs[] (one line each, like fibers.core).
 * Misuse raises; OS failure returns nil, message (, code).
 *
 * API (keep HACKING.md in step):
 *   version                        the package version string
 *   build_tree                     true when running from the build tree
 *   sysconfdir, default_config     compiled-in paths
 *   load_config(path|nil) -> cfg | nil, "file:line: msg\n..."  (nil = defaults)
 *       cfg = { file=, fibersd={task_dir, control_socket, control_mode(int),
 *               control_group, admin_group (string or int), log_level,
 *               log_target, shutdown_timeout, max_slice, lua_path,
 *               log_lines, control_idle},
 *               defaults={restart, restart_delay, restart_max_delay,
 *               restart_limit, restart_window, shutdown_grace,
 *               memory_limit(bytes), stop_timeout(nil: grace + 5),
 *               watchdog_sec},
 *               tasks={ NAME={<keys set in [task:NAME]>, enabled=bool,
 *               params={k=v strings}} } }
 *   features() -> { libsystemd=, service_manager=, cgroup=path|false,
 *               cgroup_writable= }   optional system features, detected once
 *   config_keys() -> { {name=, section="fibersd"|"defaults"|"task",
 *               type=, default=(string|nil), choices=, help=,
 *               reload="live"|"task"|"daemon"}, ... }   (config.c's cfg_keys)
 *   log(priority, msg, fields?) -> bool   priority: 0..7 or a level name;
 *       fields { task=, scope=, stream=, pid= }; false when filtered out
 *   set_log(level, target?)        level name or 0..7; auto|journal|stderr
 *   notify(state) -> bool          sd_notify; false without a manager
 *   watchdog_usec() -> n           0 = watchdog off
 *   listen_fds() -> { {fd=, name=, unix_stream=bool}, ... }  (once)
 *   bind_control(path, mode, group?) -> fd, warning? | nil, msg, exitcode
 *   unlink_control(path) -> bool   remove our socket file at exit
 *   check_trust(path) -> true | nil, reason   (checks only when root)
 *   subreaper() -> true | nil, msg
 *   raise_nofile() -> soft, hard | nil, msg   soft limit := hard limit
 *   getpid() -> n; realtime() -> s; monotime() -> s
 *   readdir(dir) -> { names (no . and ..), unsorted } | nil, msg, errno
 *   kill(pid, sig, pgroup?) -> true | nil, msg, errno   (sig a number;
 *       pgroup true = the process group pid)
 *   control                        sub-module of lcontrol.c (control socket)
 *   Per-task memory and runaway guard (task.c):
 *   task_new(limit) -> id; task_set_limit(id, n); task_memory(id) -> bytes;
 *   task_free(id); task_doomed(id) -> reason | nil; memory() -> total bytes
 *   enter(fiber), leave(fiber)     for runtime.set_resume_hook
 *   set_max_slice(seconds)         0 = guard off
 *   trim()                         malloc_trim(0) where glibc has it
 *   The task sandbox (task.c): in_task() -> bool (a task slice runs or task
 *   code is on the stack); task_caller(level) -> bool (the first Lua
 *   function at that stack level is task code); library_source(chunkname)
 *   -> bool.  Opening `_fibersd` also charges the C buffers of streams
 *   created in task slices to their task (mem_acct_install).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "cgroup.h"
#include "core.h"
#include "fibersd.h"
#include "lbind.h"
#include "lcontrol.h"

#ifndef FIBERSD_SYSCONFDIR
#define FIBERSD_SYSCONFDIR "/etc"
#endif
#ifndef FIBERSD_BUILD_EXE
#define FIBERSD_BUILD_EXE ""
#endif

/* Nested sub-modules: `_fibersd.<name>`; add one line per binding file. */
static const struct {
	const char *name;
	lua_CFunction open;
} subs[] = {
	{ "control", fd_open_control }, /* lcontrol.c, ljson.c, lstatus.c: control socket */
	{ NULL, NULL },
};

/* True when this executable is the one in the build tree. */
bool fd_in_build_tree(void)
{
	char exe[PATH_MAX], built[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0 || !FIBERSD_BUILD_EXE[0] || realpath(FIBERSD_BUILD_EXE, built) == NULL)
		return false;
	exe[n] = '\0';
	return strcmp(exe, built) == 0;
}

const struct fd_features *fd_features(void)
{
	static struct fd_features f;
	static bool done;
	if (done)
		return &f;
	done = true;
#ifdef HAVE_SYSTEMD
	f.libsystemd = true;
#endif
	const char *ns = getenv("NOTIFY_SOCKET");
	f.service_manager = ns != NULL && ns[0] != '\0';
	if (cg_path_of(0, f.cgroup, sizeof f.cgroup) != 0)
		f.cgroup[0] = '\0';
	f.cgroup_writable = f.cgroup[0] && access(f.cgroup, W_OK) == 0;
	return &f;
}

void fd_print_features(FILE *out)
{
	const struct fd_features *f = fd_features();
	fprintf(out, "features: libsystemd=%s service-manager=%s cgroup2=%s%s\n",
		f->libsystemd ? "yes" : "no", f->service_manager ? "yes" : "no",
		f->cgroup[0] ? f->cgroup : "no", f->cgroup[0] && !f->cgroup_writable ? " (read-only)" : "");
}

/* features() -> { libsystemd=, service_manager=, cgroup=path|false,
 * cgroup_writable= } (detected once, see fd_features). */
static int l_features(lua_State *L)
{
	const struct fd_features *f = fd_features();
	lua_createtable(L, 0, 4);
	lua_pushboolean(L, f->libsystemd);
	lua_setfield(L, -2, "libsystemd");
	lua_pushboolean(L, f->service_manager);
	lua_setfield(L, -2, "service_manager");
	if (f->cgroup[0])
		lua_pushstring(L, f->cgroup);
	else
		lua_pushboolean(L, 0);
	lua_setfield(L, -2, "cgroup");
	lua_pushboolean(L, f->cgroup_writable);
	lua_setfield(L, -2, "cgroup_writable");
	return 1;
}

/* cfg_load, refusing as root a config file others could have written
 * (what it names runs as root). */
int fd_load_config(lua_State *L, const char *path)
{
	char why[PATH_MAX + 100];
	struct stat st; /* a missing file is cfg_load's to report */
	if (path != NULL && stat(path, &st) == 0 && fd_trust(path, why, sizeof why) != NULL) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: refused: %s", path, why);
		return 2;
	}
	return cfg_load(L, path);
}

static int l_load_config(lua_State *L)
{
	return fd_load_config(L, luaL_optstring(L, 1, NULL));
}

static int l_config_keys(lua_State *L)
{
	static const char *const types[] = { "string", "path", "bool", "int", "duration",
					     "size", "mode", "group", "enum", "user", "groups",
					     "cpumax" };
	static const char *const reloads[] = { "?", "live", "task", "daemon" };
	lua_newtable(L);
	int i = 0;
	for (const struct cfg_key *k = cfg_keys; k->name; k++) {
		lua_createtable(L, 0, 6);
		lua_pushstring(L, k->name);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, k->sections & CFG_SEC_FIBERSD ? "fibersd" :
				  k->sections & CFG_SEC_DEFAULTS ? "defaults" : "task");
		lua_setfield(L, -2, "section");
		lua_pushstring(L, types[k->type]);
		lua_setfield(L, -2, "type");
		if (*k->def || k->type == CFG_STRING)
			lua_pushstring(L, k->def);
		else
			lua_pushnil(L); /* optional, unset by default */
		lua_setfield(L, -2, "default");
		lua_pushstring(L, reloads[k->reload]);
		lua_setfield(L, -2, "reload");
		lua_pushstring(L, k->choices);
		lua_setfield(L, -2, "choices");
		lua_pushstring(L, k->help);
		lua_setfield(L, -2, "help");
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

static int check_level(lua_State *L, int idx)
{
	if (lua_type(L, idx) == LUA_TNUMBER) {
		lua_Integer p = luaL_checkinteger(L, idx);
		luaL_argcheck(L, p >= 0 && p <= 7, idx, "priority out of range 0..7");
		return (int)p;
	}
	int p = log_level_parse(luaL_checkstring(L, idx));
	luaL_argcheck(L, p >= 0, idx, "unknown log level");
	return p;
}

static const char *opt_field(lua_State *L, int t, const char *name)
{
	lua_getfield(L, t, name);
	const char *s = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER ?
				lua_tostring(L, -1) : NULL;
	lua_pop(L, 1); /* the string stays referenced by the fields table */
	return s;
}

static int l_log(lua_State *L)
{
	int prio = check_level(L, 1);
	size_t len;
	const char *msg = luaL_checklstring(L, 2, &len);
	struct log_fields f = { 0 };
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		f.task = opt_field(L, 3, "task");
		f.scope = opt_field(L, 3, "scope");
		f.stream = opt_field(L, 3, "stream");
		lua_getfield(L, 3, "pid");
		f.pid = (long)lua_tointeger(L, -1);
		lua_pop(L, 1);
	}
	lua_pushboolean(L, log_emit(prio, msg, len, &f));
	return 1;
}

static int l_set_log(lua_State *L)
{
	static const char *const targets[] = { "auto", "journal", "stderr", NULL };
	int level = check_level(L, 1);
	int target = luaL_checkoption(L, 2, "auto", targets);
	log_configure(level, (enum log_target)target);
	return 0;
}

static int l_subreaper(lua_State *L)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int l_raise_nofile(lua_State *L)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			lua_pushnil(L);
			lua_pushfstring(L, "setrlimit(RLIMIT_NOFILE): %s", strerror(errno));
			return 2;
		}
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	lua_pushinteger(L, (lua_Integer)rl.rlim_cur);
	lua_pushinteger(L, (lua_Integer)rl.rlim_max);
	return 2;
}

/* trim() -> true: give the C heap's free memory back to the system
 * (glibc's malloc_trim; false where there is none) */
static int l_trim(lua_State *L)
{
#ifdef __GLIBC__
	malloc_trim(0);
	lua_pushboolean(L, 1);
#else
	lua_pushboolean(L, 0);
#endif
	return 1;
}

static int l_getpid(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)getpid());
	return 1;
}

static int l_realtime(lua_State *L)
{
	lua_pushnumber(L, core_realtime());
	return 1;
}

static int l_monotime(lua_State *L)
{
	lua_pushnumber(L, core_monotime());
	return 1;
}

/*
 * read_file(path, max) -> contents | nil, "path: message".  Only a regular
 * file is read: the open never waits (O_NONBLOCK: a FIFO named *.lua would
 * block open() until a writer came) and anything else is refused before a
 * byte is read; more than max bytes is refused too.
 */
static int l_read_file(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	lua_Integer max = luaL_checkinteger(L, 2);
	struct stat st;
	const char *why = NULL;
	int e = 0;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		e = errno;
	else if (fstat(fd, &st) != 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (max >= 0 && st.st_size > max)
		why = "file too large";
	if (e == 0 && why == NULL) {
		luaL_Buffer b;
		luaL_buffinit(L, &b);
		for (;;) {
			char *p = luaL_prepbuffer(&b);
			ssize_t n = read(fd, p, LUAL_BUFFERSIZE);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				e = errno;
				break;
			}
			if (n == 0)
				break;
			luaL_addsize(&b, (size_t)n);
			if (max >= 0 && luaL_bufflen(&b) > (size_t)max) {
				why = "file too large";
				break;
			}
		}
		if (e == 0 && why == NULL) {
			close(fd);
			luaL_pushresult(&b);
			return 1;
		}
	}
	if (fd >= 0)
		close(fd);
	lua_pushnil(L);
	lua_pushfstring(L, "%s: %s", path, why ? why : strerror(e));
	return 2;
}

static int l_readdir(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	DIR *d = opendir(dir);
	if (d == NULL) {
		int e = errno;
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", dir, strerror(e));
		lua_pushinteger(L, e);
		return 3;
	}
	lua_newtable(L);
	int i = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		lua_pushstring(L, de->d_name);
		lua_rawseti(L, -2, ++i);
	}
	closedir(d);
	return 1;
}

static int l_kill(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	lua_Integer sig = luaL_checkinteger(L, 2);
	luaL_argcheck(L, pid > 0, 1, "pid must be positive");
	luaL_argcheck(L, sig >= 0 && sig < 65, 2, "bad signal number");
	if (kill(lua_toboolean(L, 3) ? -(pid_t)pid : (pid_t)pid, (int)sig) != 0)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

static const luaL_Reg host_funcs[] = {
	{ "readdir", l_readdir },
	{ "read_file", l_read_file },
	{ "kill", l_kill },
	{ "load_config", l_load_config },
	{ "config_keys", l_config_keys },
	{ "features", l_features },
	{ "log", l_log },
	{ "set_log", l_set_log },
	{ "subreaper", l_subreaper },
	{ "raise_nofile", l_raise_nofile },
	{ "getpid", l_getpid },
	{ "trim", l_trim },
	{ "realtime", l_realtime },
	{ "monotime", l_monotime },
	{ NULL, NULL },
};

/* The loader of `_fibersd`. */
int luaopen__fibersd(lua_State *L)
{
	mem_acct_install(L);
	lua_newtable(L);
	luaL_setfuncs(L, host_funcs, 0);
	luaL_setfuncs(L, fd_notify_funcs, 0);
	luaL_setfuncs(L, fd_sock_funcs, 0);
	luaL_setfuncs(L, fd_task_funcs, 0);
	lua_pushstring(L, PACKAGE_VERSION);
	lua_setfield(L, -2, "version");
	lua_pushboolean(L, fd_in_build_tree());
	lua_setfield(L, -2, "build_tree");
	lua_pushstring(L, FIBERSD_SYSCONFDIR);
	lua_setfield(L, -2, "sysconfdir");
	lua_pushstring(L, FIBERSD_SYSCONFDIR "/fibersd.conf");
	lua_setfield(L, -2, "default_config");
	for (size_t i = 0; subs[i].name; i++) {
		lua_pushcfunction(L, subs[i].open);
		lua_call(L, 0, 1);
		lua_setfield(L, -2, subs[i].name);
	}
	return 1;
}

/* Register `_fibersd` in package.preload of L. */
void fd_preload(lua_State *L)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, luaopen__fibersd);
	lua_setfield(L, -2, "_fibersd");
	lua_pop(L, 1);
}
