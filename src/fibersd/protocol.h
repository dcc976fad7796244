/*
 * protocol.h - the fibersd control protocol in ONE place, shared by the
 * daemon (src/fibersd/lcontrol.c exports these to lib/fibersd/control.lua)
 * and the client (src/fibersctl/).  Plain constants only: no Lua, no
 * jansson, nothing that either side would not want to include.
 *
 * Wire format (doc/daemon.md §7): AF_UNIX stream, newline-delimited compact
 * JSON objects.  The server greets first with
 *   {"hello":{"daemon":"fibersd","version":"X.Y.Z","protocol":1,"role":R}}
 * or refuses with {"error":{"code":C,"message":M}} and closes.
 * Requests: {"id":N,"method":M,"params":{...}}; replies {"id":N,"result":{}}
 * or {"id":N,"error":{"code":C,"message":M}}; streams (watch, logs -f) send
 * more replies with the same id and "continues":true.
 *
 * Bump FIBERSD_PROTOCOL_VERSION on any incompatible change; both sides check
 * it on every connection.
 */
#ifndef FIBERSD_PROTOCOL_H
#define FIBERSD_PROTOCOL_H

/* Protocol version spoken by this build (greeting field "protocol"). */
#define FIBERSD_PROTOCOL_VERSION 1

/* Longest request line the server accepts (bytes, without the newline);
 * a longer line gets a bad_request error and the connection is closed. */
#define FIBERSD_PROTO_MAX_REQUEST (64 * 1024)
/* Longest reply line a client accepts (bytes). */
#define FIBERSD_PROTO_MAX_REPLY (64 * 1024 * 1024)
/* Simultaneous control connections, of which ADMIN_RESERVED are kept free
 * for admin peers; one more gets a busy error and is closed. */
#define FIBERSD_PROTO_MAX_CLIENTS 64
#define FIBERSD_PROTO_ADMIN_RESERVED 8
/* A stream (watch, logs -f) whose unsent output passes this is dropped. */
#define FIBERSD_PROTO_MAX_UNSENT (1024 * 1024)

/* Compiled-in control socket path (the shipped config says the same). */
#ifndef FIBERSD_DEFAULT_SOCKET
#define FIBERSD_DEFAULT_SOCKET "/run/fibersd/control.sock"
#endif

/* Roles announced in the greeting. */
#define FIBERSD_ROLE_ADMIN "admin"
#define FIBERSD_ROLE_READ "read"

/* The control methods: ONE table shared by the daemon and fibersctl.
 * X(name, args, min, max, role, stream, help):
 *   name    the method (and fibersctl command) name
 *   args    the argument template; fibersctl parses argv by it and prints
 *           it in --help and the completion reads it:
 *             WORD, [WORD]        a positional argument, sent as
 *                                 params.<word in lower case> (a string)
 *             [-x|--name N]       a valued option, params.name = N (an
 *                                 integer >= 0)
 *             [-x|--name]         a flag, params.name = true
 *             [--no-name]         a flag, params.name = false
 *   min,max how many positional arguments
 *   role    READ (control_group may call it) or ADMIN
 *   stream  1 when it may answer with several replies ("continues":true)
 *   help    one line for --help, the completion and fibersctl(1)
 * The daemon refuses to start when a row has no Lua handler in
 * lib/fibersd/control_methods.lua or a handler has no row. */
#define FIBERSD_METHODS(X)                                                                      \
	X(status, "[SCOPE] [-d|--depth N]", 0, 1, READ, 0, "show tasks, scopes and processes")     \
	X(cancel, "SCOPE [REASON] [--no-wait]", 1, 2, ADMIN, 0,                                     \
	  "cancel a scope and wait for its join report")                                            \
	X(start, "TASK", 1, 1, ADMIN, 0, "start a stopped, exited or fatal task")                   \
	X(stop, "TASK", 1, 1, ADMIN, 0, "stop a task (not restarted until start)")                 \
	X(restart, "TASK", 1, 1, ADMIN, 0, "stop and start a task")                                 \
	X(signal, "SCOPE SIG", 2, 2, ADMIN, 0, "send SIG to every process group in SCOPE")         \
	X(reload, "", 0, 0, ADMIN, 0, "re-read the config and rescan the task directory")          \
	X(logs, "TASK [-n|--lines N] [-f|--follow]", 1, 1, READ, 1,                                \
	  "show (and follow) a task's recent log lines")                                            \
	X(watch, "", 0, 0, READ, 1, "stream state changes (snapshot first)")                       \
	X(version, "", 0, 0, READ, 0, "show fibersctl and fibersd versions")

/* Error codes (the "code" of an error object).  X-macro so the server can
 * export the list and the client can map each code to an exit status:
 * X(C identifier, wire string, fibersctl exit code). */
#define FIBERSD_PROTO_ERRORS(X)                    \
	X(BAD_REQUEST, "bad_request", 2)           \
	X(UNKNOWN_METHOD, "unknown_method", 2)     \
	X(NOT_FOUND, "not_found", 3)               \
	X(AMBIGUOUS, "ambiguous", 3)               \
	X(PERMISSION_DENIED, "permission_denied", 4) \
	X(BUSY, "busy", 1)                         \
	X(TIMEOUT, "timeout", 6)                   \
	X(FAILED, "failed", 1)                     \
	X(SHUTTING_DOWN, "shutting_down", 1)

/* fibersctl exit codes (documented in fibersctl(1); stable). */
enum fibersctl_exit {
	FCTL_EXIT_OK = 0,          /* success */
	FCTL_EXIT_FAILED = 1,      /* operation failed; status: a task failed/fatal */
	FCTL_EXIT_USAGE = 2,       /* bad command line */
	FCTL_EXIT_NOT_FOUND = 3,   /* no such scope/task */
	FCTL_EXIT_PERMISSION = 4,  /* permission denied */
	FCTL_EXIT_UNREACHABLE = 5, /* daemon not reachable / protocol mismatch */
	FCTL_EXIT_TIMEOUT = 6,     /* no reply within -t seconds */
};

#endif
