/*
 * control.c - libFuzzer target for the control request decoder
 * (`_fibersd`.control in src/fibersd/lcontrol.c): every input line goes
 * through json_decode exactly as the daemon reads a request; whatever
 * decodes must re-encode, decode again and encode to the same text (so
 * replies built from requests are stable), and sanitize() must always yield
 * valid UTF-8.  `make fuzz` runs it for FUZZ_TIME seconds (leak detection off: the
 * Lua state lives across inputs); not in make check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lcontrol.h"

static lua_State *L;

static const char *check =
	"local C, s = ...\n"
	"local v = C.json_decode(s)\n"
	"if v ~= nil then\n"
	"  local e1 = C.json_encode(v)\n"
	"  local v2, derr = C.json_decode(e1)\n"
	"  assert(derr == nil, 'encoded text does not decode')\n" /* v2 may be false */
	"  local e2 = C.json_encode(v2)\n"
	"  assert(e1 == e2, 'encode/decode not stable')\n"
	"  assert(not e1:find('\\n', 1, true), 'encoded text spans lines')\n"
	"end\n"
	"return C.sanitize(s)\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: decode, round-trip, sanitize; abort on any broken invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0; /* the daemon refuses longer request lines */
	if (!L) {
		L = luaL_newstate();
		luaL_openlibs(L);
		if (luaL_loadstring(L, check) != LUA_OK)
			abort();
		lua_setglobal(L, "check");
		fd_open_control(L);
		lua_setglobal(L, "C");
	}
	lua_settop(L, 0);
	lua_getglobal(L, "check");
	lua_getglobal(L, "C");
	lua_pushlstring(L, (const char *)data, size);
	if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		/* nesting beyond the encoder's limit is a refusal, not a bug */
		if (msg && strstr(msg, "nesting deeper"))
			return 0;
		abort();
	}
	size_t n;
	const char *s = lua_tolstring(L, -1, &n);
	if (ctl_utf8_valid_prefix(s, n) != n)
		abort();
	lua_settop(L, 0);
	lua_gc(L, LUA_GCCOLLECT, 0); /* Lua's garbage is not a leak */
	return 0;
}
