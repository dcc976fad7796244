/*
 * fibersctl.h - shared declarations of fibersctl: the connection (fibersctl.c),
 * the command table (commands.c) and the human renderers (render.c).
 * fibersctl never talks to anything but the control socket; the protocol
 * constants come from src/fibersd/protocol.h.
 */
#ifndef FIBERSCTL_H
#define FIBERSCTL_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "protocol.h"

/* `logs -f` without `-n`: how many recent lines come before the new ones. */
#define FCTL_FOLLOW_LINES 10

/* One fibersctl invocation: options and the connection state. */
struct ctl {
	const char *socket_path; /* resolved control socket path */
	int json;                /* --json: print result objects unchanged */
	int color;               /* colour the human output (stdout is a tty) */
	double timeout;          /* -t SECONDS */
	double deadline;         /* monotonic deadline of the current request */
	int fd;                  /* connected socket or -1 */
	char *buf;               /* read buffer (lines) */
	size_t len, cap;         /* bytes held / allocated */
	json_t *hello;           /* the greeting's "hello" object */
};

/* A command: one row of protocol.h's method table (FIBERSD_METHODS). */
struct ctl_cmd {
	const char *name;  /* command = method name */
	const char *args;  /* argument template (protocol.h): parsed, and shown by --help */
	const char *help;  /* one line for --help */
	int min_args, max_args; /* positional arguments */
	int admin;         /* needs the admin role */
	int stream;        /* may answer with several replies */
};

/* The command table, terminated by a NULL name (commands.c). */
extern const struct ctl_cmd ctl_commands[];
/* Look a command up by name; NULL when unknown. */
const struct ctl_cmd *ctl_find_command(const char *name);
/* Run one command end to end (connect, request, replies); returns the exit code. */
int ctl_run_command(struct ctl *c, const struct ctl_cmd *cmd, int argc, char **argv);

/* Connect to c->socket_path and read the greeting; 0 or an exit code. */
int ctl_connect(struct ctl *c);
/* Send one JSON object as a line; 0 or an exit code. */
int ctl_send(struct ctl *c, json_t *msg);
/* Receive one JSON object (waits until c->deadline unless it is <= 0);
 * 0 and *out set, or an exit code (EOF included) after printing why. */
int ctl_recv(struct ctl *c, json_t **out);
/* Monotonic clock in seconds. */
double ctl_now(void);
/* Map a protocol error code to a fibersctl exit code. */
int ctl_error_exit(const char *code);
/* Print an error object {"code","message"} on stderr; returns its exit code. */
int ctl_report_error(json_t *err);

/* Renderers (render.c), one per command family (commands.c's human[]
 * says which command uses which). */
int ctl_render_status(struct ctl *c, json_t *result);
int ctl_render_cancel(struct ctl *c, json_t *result);
int ctl_render_task_op(struct ctl *c, json_t *result);
int ctl_render_signal(struct ctl *c, json_t *result);
int ctl_render_reload(struct ctl *c, json_t *result);
int ctl_render_logs(struct ctl *c, json_t *result);
int ctl_render_watch(struct ctl *c, json_t *result);
int ctl_render_version(struct ctl *c, json_t *result);
/* Exit code of a status result: 1 when a task is failed or fatal. */
int ctl_status_exit(json_t *result);
/* Exit code of a reload result: 1 when it lists errors. */
int ctl_reload_exit(json_t *result);
/* Format a duration in seconds like systemctl ("3min 2s"); returns buf. */
const char *ctl_fmt_duration(double secs, char *buf, size_t size);
/* Format a byte count 1024-based ("1.5M"); returns buf. */
const char *ctl_fmt_bytes(double bytes, char *buf, size_t size);

#endif
