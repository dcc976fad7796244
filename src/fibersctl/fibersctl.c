/*
 * fibersctl.c - the fibersctl command line and its one connection to the
 * fibersd control socket: option parsing, socket path resolution (-S,
 * $FIBERSD_SOCKET, control_socket from the config, the compiled-in default),
 * the greeting check and line-framed JSON I/O with a deadline.  What each
 * command sends and prints lives in commands.c and render.c.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>

#include "fibersctl.h"

#ifndef FIBERSD_CONFIG_FILE
#define FIBERSD_CONFIG_FILE "/etc/fibersd.conf"
#endif

/* Monotonic clock in seconds. */
double ctl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: fibersctl [-S PATH] [-c CONFIG] [--json] [-t SECONDS] COMMAND [ARGS]\n"
		"\nCommands:\n");
	for (const struct ctl_cmd *cmd = ctl_commands; cmd->name; cmd++) {
		char left[64];
		snprintf(left, sizeof left, "%s %s", cmd->name, cmd->args);
		fprintf(f, "  %-26s  %s\n", left, cmd->help); /* two blanks: the completion splits there */
	}
	fprintf(f,
		"\nOptions:\n"
		"  -S, --socket PATH   control socket (default: $FIBERSD_SOCKET, else\n"
		"                      control_socket in the config, else %s)\n"
		"  -c, --config FILE   read control_socket from FILE (default %s)\n"
		"  -j, --json          print the daemon's result objects, one per line\n"
		"  -t, --timeout SECS  give up after SECS seconds (default 10)\n"
		"  -V, --version       print fibersctl's version\n"
		"  -h, --help          show this help\n"
		"\nGlobal options may come anywhere on the command line (not after --).\n"
		"\nExit status: 0 ok; 1 operation failed (status: a task not running, ready,\n"
		"stopped, disabled or cleanly exited - e.g. backoff, failed, fatal);\n"
		"2 usage; 3 no such scope/task; 4 permission denied; 5 daemon unreachable;\n"
		"6 timeout.\n",
		FIBERSD_DEFAULT_SOCKET, FIBERSD_CONFIG_FILE);
}

/* inih handler: remember [fibersd] control_socket. */
static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	char **out = user;
	if (strcmp(section, "fibersd") == 0 && strcmp(name, "control_socket") == 0 && value[0]) {
		free(*out);
		*out = strdup(value);
	}
	return 1;
}

/* Resolve the socket path; returns 0 or an exit code.  *owned gets memory
 * to free. */
static int resolve_socket(struct ctl *c, const char *opt_socket, const char *opt_config,
			  char **owned)
{
	const char *env = getenv("FIBERSD_SOCKET");
	*owned = NULL;
	if (opt_socket) {
		c->socket_path = opt_socket;
		return 0;
	}
	if (env && env[0]) {
		c->socket_path = env;
		return 0;
	}
	const char *file = opt_config ? opt_config : FIBERSD_CONFIG_FILE;
	int rc = ini_parse(file, cfg_handler, owned);
	if (rc < 0 && opt_config) {
		fprintf(stderr, "fibersctl: cannot read config %s: %s\n", file, strerror(errno));
		return FCTL_EXIT_USAGE;
	}
	c->socket_path = *owned ? *owned : FIBERSD_DEFAULT_SOCKET;
	return 0;
}

/* Connect to c->socket_path and read the greeting; 0 or an exit code. */
int ctl_connect(struct ctl *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(c->socket_path) >= sizeof sa.sun_path) {
		fprintf(stderr, "fibersctl: socket path too long: %s\n", c->socket_path);
		return FCTL_EXIT_USAGE;
	}
	strcpy(sa.sun_path, c->socket_path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		fprintf(stderr, "fibersctl: socket: %s\n", strerror(errno));
		return FCTL_EXIT_FAILED;
	}
	/* A full backlog gives EAGAIN on a non-blocking AF_UNIX connect: retry
	 * until the deadline. */
	while (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		if ((e == EAGAIN || e == EINTR) && ctl_now() < c->deadline) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (e == EAGAIN) {
			fprintf(stderr, "fibersctl: timed out connecting to %s\n", c->socket_path);
			return FCTL_EXIT_TIMEOUT;
		}
		fprintf(stderr, "fibersctl: cannot connect to %s: %s\n", c->socket_path, strerror(e));
		return (e == EACCES || e == EPERM) ? FCTL_EXIT_PERMISSION : FCTL_EXIT_UNREACHABLE;
	}
	json_t *msg = NULL;
	int rc = ctl_recv(c, &msg);
	if (rc)
		return rc;
	json_t *err = json_object_get(msg, "error");
	if (err) {
		rc = ctl_report_error(err);
		json_decref(msg);
		return rc;
	}
	json_t *hello = json_object_get(msg, "hello");
	json_t *proto = json_object_get(hello, "protocol");
	if (!json_is_object(hello) || !json_is_integer(proto)) {
		fprintf(stderr, "fibersctl: %s does not greet like fibersd\n", c->socket_path);
		json_decref(msg);
		return FCTL_EXIT_UNREACHABLE;
	}
	if (json_integer_value(proto) != FIBERSD_PROTOCOL_VERSION) {
		fprintf(stderr,
			"fibersctl: protocol mismatch: fibersd speaks protocol %lld, "
			"this fibersctl speaks %d\n",
			(long long)json_integer_value(proto), FIBERSD_PROTOCOL_VERSION);
		json_decref(msg);
		return FCTL_EXIT_UNREACHABLE;
	}
	c->hello = json_incref(hello);
	json_decref(msg);
	return 0;
}

/* Wait for fd readiness until the deadline; 0 ready, or an exit code. */
static int wait_fd(struct ctl *c, short events)
{
	for (;;) {
		int ms = -1;
		if (c->deadline > 0) {
			double left = c->deadline - ctl_now();
			if (left <= 0) {
				fprintf(stderr, "fibersctl: timed out waiting for fibersd\n");
				return FCTL_EXIT_TIMEOUT;
			}
			ms = (int)(left * 1000) + 1;
		}
		struct pollfd p = { .fd = c->fd, .events = events };
		int n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "fibersctl: poll: %s\n", strerror(errno));
			return FCTL_EXIT_FAILED;
		}
	}
}

/* Send one JSON object as a line; 0 or an exit code. */
int ctl_send(struct ctl *c, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	if (!s) {
		fprintf(stderr, "fibersctl: cannot encode the request\n");
		return FCTL_EXIT_FAILED;
	}
	size_t n = strlen(s);
	s[n] = '\n'; /* json_dumps's NUL becomes the terminator; length is n+1 */
	size_t off = 0;
	int rc = 0;
	while (off < n + 1) {
		ssize_t w = send(c->fd, s + off, n + 1 - off, MSG_NOSIGNAL);
		if (w >= 0) {
			off += (size_t)w;
		} else if (errno == EAGAIN || errno == EINTR) {
			if ((rc = wait_fd(c, POLLOUT)))
				break;
		} else {
			fprintf(stderr, "fibersctl: lost connection to fibersd: %s\n", strerror(errno));
			rc = FCTL_EXIT_UNREACHABLE;
			break;
		}
	}
	free(s);
	return rc;
}

/* Receive one JSON object; see fibersctl.h. */
int ctl_recv(struct ctl *c, json_t **out)
{
	size_t scanned = 0; /* bytes known to hold no newline (a big reply
			     * arrives in many pieces: scan each byte once) */
	for (;;) {
		char *nl = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
		scanned = c->len;
		if (nl) {
			size_t linelen = (size_t)(nl - c->buf);
			json_error_t jerr;
			json_t *v = json_loadb(c->buf, linelen, 0, &jerr);
			memmove(c->buf, nl + 1, c->len - linelen - 1);
			c->len -= linelen + 1;
			if (!v || !json_is_object(v)) {
				fprintf(stderr, "fibersctl: bad reply from fibersd: %s\n",
					v ? "not an object" : jerr.text);
				json_decref(v);
				return FCTL_EXIT_FAILED;
			}
			*out = v;
			return 0;
		}
		if (c->len >= FIBERSD_PROTO_MAX_REPLY) {
			fprintf(stderr, "fibersctl: reply longer than %d bytes\n", FIBERSD_PROTO_MAX_REPLY);
			return FCTL_EXIT_FAILED;
		}
		if (c->cap - c->len < 65536) {
			size_t ncap = c->cap ? c->cap * 2 : 65536;
			if (ncap > FIBERSD_PROTO_MAX_REPLY + 65536)
				ncap = FIBERSD_PROTO_MAX_REPLY + 65536;
			char *nb = realloc(c->buf, ncap);
			if (!nb) {
				fprintf(stderr, "fibersctl: out of memory\n");
				return FCTL_EXIT_FAILED;
			}
			c->buf = nb;
			c->cap = ncap;
		}
		ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (r > 0) {
			c->len += (size_t)r;
		} else if (r == 0) {
			fprintf(stderr, "fibersctl: connection closed by fibersd\n");
			return FCTL_EXIT_UNREACHABLE;
		} else if (errno == EAGAIN || errno == EINTR) {
			int rc = wait_fd(c, POLLIN);
			if (rc)
				return rc;
		} else {
			fprintf(stderr, "fibersctl: lost connection to fibersd: %s\n", strerror(errno));
			return FCTL_EXIT_UNREACHABLE;
		}
	}
}

/* Is argv[i] a global option (as systemctl, they may come anywhere before
 * "--")?  Returns how many words it takes (1 or 2), 0 when it is not one. */
static int global_words(char **argv, int i, int argc)
{
	static const char *const valued_long[] = { "--socket", "--config", "--timeout", NULL };
	static const char *const flag_long[] = { "--json", "--version", "--help", NULL };
	const char *a = argv[i];
	if (a[0] != '-' || a[1] == '\0')
		return 0;
	if (a[1] == '-') {
		for (int k = 0; valued_long[k]; k++) {
			size_t n = strlen(valued_long[k]);
			if (strncmp(a, valued_long[k], n) == 0 && a[n] == '=')
				return 1;
			if (strcmp(a, valued_long[k]) == 0)
				return i + 1 < argc ? 2 : 1; /* getopt reports the missing value */
		}
		for (int k = 0; flag_long[k]; k++)
			if (strcmp(a, flag_long[k]) == 0)
				return 1;
		return 0;
	}
	if (strchr("Sct", a[1]))
		return a[2] ? 1 : (i + 1 < argc ? 2 : 1);
	return strchr("jVh", a[1]) && a[2] == '\0';
}

/* Move the global options found anywhere in argv in front of the command
 * (stable order otherwise), so getopt sees them all; stops at "--". */
static void hoist_globals(int argc, char **argv)
{
	char **out = malloc((size_t)argc * sizeof *out);
	if (out == NULL)
		return; /* then only options before the command count */
	int n = 1, i;
	out[0] = argv[0];
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		int w = global_words(argv, i, argc);
		for (int k = 0; k < w; k++)
			out[n++] = argv[i + k];
		if (w)
			i += w - 1;
	}
	int stop = i;
	for (i = 1; i < argc; i++) {
		if (i < stop) {
			int w = global_words(argv, i, argc);
			if (w) {
				i += w - 1;
				continue;
			}
		}
		out[n++] = argv[i];
	}
	memcpy(argv, out, (size_t)argc * sizeof *out);
	free(out);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .timeout = 10.0, .fd = -1 };
	const char *opt_socket = NULL, *opt_config = NULL;
	int opt;
	hoist_globals(argc, argv);
	while ((opt = getopt_long(argc, argv, "+S:c:jt:Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'S': opt_socket = optarg; break;
		case 'c': opt_config = optarg; break;
		case 'j': c.json = 1; break;
		case 't': {
			char *end;
			errno = 0;
			c.timeout = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(c.timeout > 0) || c.timeout > 1e6) {
				fprintf(stderr, "fibersctl: bad timeout '%s' (seconds > 0)\n", optarg);
				return FCTL_EXIT_USAGE;
			}
			break;
		}
		case 'V': printf("fibersctl %s (protocol %d)\n", PACKAGE_VERSION, FIBERSD_PROTOCOL_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return FCTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "fibersctl: missing command\n");
		usage(stderr);
		return FCTL_EXIT_USAGE;
	}
	const struct ctl_cmd *cmd = ctl_find_command(argv[optind]);
	if (!cmd) {
		fprintf(stderr, "fibersctl: unknown command '%s' (try --help)\n", argv[optind]);
		return FCTL_EXIT_USAGE;
	}
	char *owned = NULL;
	int rc = resolve_socket(&c, opt_socket, opt_config, &owned);
	if (rc == 0) {
		const char *nc = getenv("NO_COLOR");
		c.color = isatty(STDOUT_FILENO) && !(nc && nc[0]);
		/* big results go out in a few writes (streams flush per record) */
		if (!isatty(STDOUT_FILENO))
			setvbuf(stdout, NULL, _IOFBF, 1 << 16);
		rc = ctl_run_command(&c, cmd, argc - optind, argv + optind);
	}
	if (c.fd >= 0)
		close(c.fd);
	json_decref(c.hello);
	free(c.buf);
	free(owned);
	if (fflush(stdout) != 0 && rc == 0)
		rc = FCTL_EXIT_FAILED;
	return rc;
}
