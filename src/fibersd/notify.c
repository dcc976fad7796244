/*
 * notify.c - the systemd glue of `_fibersd` that is not logging:
 * sd_notify, the watchdog period and socket activation
 * (sd_listen_fds_with_names).  Built without libsystemd every function
 * still exists: notifications are no-ops, no fds are passed, the watchdog
 * is off.
 */
#include <stdlib.h>
#include <sys/socket.h>

#include "config.h"
#include "fibersd.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

/* Send a state string to the service manager; true when sent. */
bool notify_send(const char *state)
{
#ifdef HAVE_SYSTEMD
	return sd_notify(0, state) > 0;
#else
	(void)state;
	return false;
#endif
}

/* The watchdog period in microseconds, 0 when not enabled. */
unsigned long long notify_watchdog_usec(void)
{
#ifdef HAVE_SYSTEMD
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0)
		return usec;
#endif
	return 0;
}

/* notify(state) -> true when the service manager got it, false without one */
static int l_notify(lua_State *L)
{
	lua_pushboolean(L, notify_send(luaL_checkstring(L, 1)));
	return 1;
}

/* watchdog_usec() -> the watchdog period in microseconds (0 = off) */
static int l_watchdog_usec(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)notify_watchdog_usec());
	return 1;
}

/* listen_fds() -> { {fd=, name=, unix_stream=bool}, ... } passed by systemd.
 * The LISTEN_* variables are removed from the environment, so this returns
 * the fds once. */
static int l_listen_fds(lua_State *L)
{
	lua_newtable(L);
#ifdef HAVE_SYSTEMD
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		lua_createtable(L, 0, 3);
		lua_pushinteger(L, fd);
		lua_setfield(L, -2, "fd");
		lua_pushstring(L, names && names[i] ? names[i] : "unknown");
		lua_setfield(L, -2, "name");
		lua_pushboolean(L, sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0);
		lua_setfield(L, -2, "unix_stream");
		lua_rawseti(L, -2, i + 1);
	}
	if (names) {
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
#endif
	return 1;
}

/* The functions of this file, merged into `_fibersd` by lhost.c. */
const luaL_Reg fd_notify_funcs[] = {
	{ "notify", l_notify },
	{ "watchdog_usec", l_watchdog_usec },
	{ "listen_fds", l_listen_fds },
	{ NULL, NULL },
};
