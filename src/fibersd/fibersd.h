/*
 * fibersd.h - declarations shared by the fibersd host (src/fibersd/):
 * configuration (config.c), logging (journal.c), systemd glue (notify.c),
 * per-task Lua memory accounting and the runaway guard (task.c), the
 * control socket helpers (sock.c) and the `_fibersd` Lua module (lhost.c).
 *
 * Only main.c may exit; everything here returns errors to its caller.
 */
#ifndef FIBERSD_H
#define FIBERSD_H

#include <stddef.h>
#include <stdio.h>
#include <stdbool.h>

#include <lua.h>
#include <lauxlib.h>

/* ---- config.c ---------------------------------------------------------- */

/* Value types of configuration keys. */
enum cfg_type {
	CFG_STRING,   /* free text (may be empty) */
	CFG_PATH,     /* non-empty path */
	CFG_BOOL,     /* yes/no/true/false/on/off/1/0 */
	CFG_INT,      /* decimal integer in [min, max] */
	CFG_DURATION, /* seconds, float >= min (and <= max) */
	CFG_SIZE,     /* bytes, with optional K/M/G suffix (1024-based) */
	CFG_MODE,     /* octal file mode, <= 07777 */
	CFG_GROUP,    /* group name or number */
	CFG_ENUM,     /* one of the '|'-separated words in `choices` */
	CFG_USER,     /* an existing user: name or number */
	CFG_GROUPS,   /* existing groups, names or numbers, blank/comma-separated
		       * (at most `max` of them when max > 0) */
	CFG_CPUMAX,   /* cgroup cpu.max: "max" or a quota in microseconds,
		       * optionally followed by a period */
};

/* Sections a key may appear in (bit mask). */
#define CFG_SEC_FIBERSD 1  /* [fibersd] */
#define CFG_SEC_DEFAULTS 2 /* [defaults] and [task:NAME] */
#define CFG_SEC_TASK 4     /* [task:NAME] only */

/* What a changed value does at reload. */
enum cfg_reload {
	CFG_RELOAD_LIVE = 1, /* applies at reload (tasks keep running) */
	CFG_RELOAD_TASK,     /* the tasks it applies to are stopped and started */
	CFG_RELOAD_DAEMON,   /* kept until fibersd restarts (a warning at reload) */
};

/* One configuration key: the single table that drives parsing, defaults
 * (also those the Lua side uses), the reload rules, --check, and the tests
 * of the shipped config file and of fibersd.conf(5). */
struct cfg_key {
	const char *name;
	int sections;        /* CFG_SEC_* mask */
	enum cfg_type type;
	double min, max;     /* range for INT, DURATION, SIZE, MODE */
	const char *choices; /* ENUM: "a|b|c" */
	const char *def;     /* default as written in the config file; "" = unset */
	enum cfg_reload reload;
	const char *help;    /* one line */
};

/* The key table, terminated by an entry with name == NULL. */
extern const struct cfg_key cfg_keys[];

/* Print the shipped configuration file: every key commented out with its
 * help line and default (`fibersd --print-config`). */
void cfg_print(FILE *f);

/* Find a key by section mask and name; NULL when unknown. */
const struct cfg_key *cfg_find(int section, const char *name);

/* Parse `text` as a value of key `k`; push the Lua value (nil for an empty
 * optional value) and return NULL, or push nothing and return a static
 * error message. */
const char *cfg_push_value(lua_State *L, const struct cfg_key *k, const char *text);

/* Load the configuration file `path` (NULL = built-in defaults) and push
 * the config table (see lhost.c for its shape); returns 1.  On errors
 * pushes nil and a message of "file:line: message" lines and returns 2. */
int cfg_load(lua_State *L, const char *path);

/* Parse an open stream named `name` into the config table at index cfg
 * (as made by cfg_load); returns 1 (nothing pushed) or 2 (nil and the
 * "name:line: message" lines pushed).  Used by cfg_load and the fuzzer. */
int cfg_parse_stream(lua_State *L, const char *name, FILE *fp, int cfg);

/* Longest accepted line, in bytes including the newline. */
#define CFG_MAX_LINE 200

/* ---- journal.c --------------------------------------------------------- */

/* Log targets. */
enum log_target { LOG_TARGET_AUTO, LOG_TARGET_JOURNAL, LOG_TARGET_STDERR };

/* Parse a level name (debug|info|notice|warning|err) to a syslog priority;
 * -1 when unknown. */
int log_level_parse(const char *name);

/* Set the maximum priority logged and the target. */
void log_configure(int level, enum log_target target);

/* Fields attached to one log record (any may be NULL / 0). */
struct log_fields {
	const char *task;
	const char *scope;
	const char *stream;
	long pid;
};

/* Emit one record; returns true when it was written (not filtered). */
bool log_emit(int priority, const char *msg, size_t len, const struct log_fields *f);

/* ---- notify.c ---------------------------------------------------------- */

/* Send a state string to the service manager; true when sent. */
bool notify_send(const char *state);

/* The watchdog period in microseconds, 0 when not enabled. */
unsigned long long notify_watchdog_usec(void);

/* ---- task.c: per-task memory accounting and runaway guard -------------- */

/* The lua_Alloc that carries a small owner header on every block. */
void *mem_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Create the accounting state; pass it as `ud` of lua_newstate. */
void *mem_state_new(void);

/* Free the accounting state after lua_close. */
void mem_state_free(void *ud);
/* Exempt library chunks "@DIR/fibers*" from the guard's doom error
 * (task.c); 0 or an errno. */
int mem_guard_exempt(lua_State *L, const char *dir);
/* Charge the C buffers of streams a task creates to the task (task.c). */
void mem_acct_install(lua_State *L);

/* ---- sock.c ------------------------------------------------------------ */

/* NULL when path may be trusted by root (always when not root), else the
 * reason, written to why (n bytes). */
const char *fd_trust(const char *path, char *why, size_t n);

/* ---- lhost.c: the config file as the daemon loads it -------------------- */

/* cfg_load after the trust check of the file (root); same results. */
int fd_load_config(lua_State *L, const char *path);

/* ---- functions merged into `_fibersd` (one array per file) ------------- */

extern const luaL_Reg fd_task_funcs[];   /* task.c */
extern const luaL_Reg fd_sock_funcs[];   /* sock.c */
extern const luaL_Reg fd_notify_funcs[]; /* notify.c */

/* ---- lhost.c ----------------------------------------------------------- */

/* The loader of `_fibersd`. */
int luaopen__fibersd(lua_State *L);

/* Register `_fibersd` in package.preload of L. */
void fd_preload(lua_State *L);

/* True when this executable is the one in the build tree. */
bool fd_in_build_tree(void);

/* The optional system features, detected once (the first call; main()
 * makes it at startup): built with libsystemd, started by a service manager
 * (NOTIFY_SOCKET set), our cgroup v2 directory ("" when there is no
 * cgroup v2 hierarchy) and whether we may write to it (create cgroups). */
struct fd_features {
	bool libsystemd;
	bool service_manager;
	char cgroup[512];
	bool cgroup_writable;
};
const struct fd_features *fd_features(void);
/* One line for `fibersd --version`: "features: libsystemd=yes ...". */
void fd_print_features(FILE *f);

/* Sub-module openers of `_fibersd` (one line each in lhost.c's subs[]). */

#endif
