/*
 * json.c - TAP unit test of `_fibersd`.control (src/fibersd/lcontrol.c):
 * UTF-8 sanitising in C, then JSON encode/decode, null sentinel, arrays,
 * signal names, timestamps and peer credentials through an embedded Lua
 * state (a socketpair stands in for a control connection).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lcontrol.h"
#include "tap.h"

/* ok(cond, name) for the Lua part */
static int l_ok(lua_State *L)
{
	t_result(lua_toboolean(L, 1), NULL, 0, "%s", luaL_optstring(L, 2, "?"));
	return 0;
}

static void test_utf8(void)
{
	size_t n;
	char *s = ctl_utf8_sanitize("a\xff" "b", 3, &n);
	ok(n == 5 && memcmp(s, "a\xef\xbf\xbd" "b", 5) == 0, "invalid byte -> U+FFFD");
	free(s);
	s = ctl_utf8_sanitize("\xc3\xa9\xe2\x82", 4, &n); /* é + truncated 3-byte seq */
	ok(n == 8 && memcmp(s, "\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd", 8) == 0, "truncated sequence -> one U+FFFD per byte");
	free(s);
	ok(ctl_utf8_valid_prefix("\xc0\x80", 2) == 0, "overlong NUL rejected");
	ok(ctl_utf8_valid_prefix("\xed\xa0\x80", 3) == 0, "surrogate rejected");
	ok(ctl_utf8_valid_prefix("\xf4\x90\x80\x80", 4) == 0, "> U+10FFFF rejected");
	ok(ctl_utf8_valid_prefix("\xf0\x9f\x98\x80x", 5) == 5, "4-byte sequence accepted");
}

static const char *lua_tests =
	"local c, fd, ok = ...\n"
	"local enc, dec = c.json_encode, c.json_decode\n"
	"ok(enc({b=1, a={1,2,3}, s='x'}) == '{\"a\":[1,2,3],\"b\":1,\"s\":\"x\"}', 'encode sorted compact')\n"
	"ok(enc({}) == '{}', 'empty table is an object')\n"
	"ok(enc(c.array()) == '[]', 'marked empty array')\n"
	"ok(enc({x=c.null}) == '{\"x\":null}', 'null sentinel encodes')\n"
	"ok(enc(1.5) == '1.5' and enc(3) == '3', 'numbers')\n"
	"ok(enc(0/0) == 'null', 'nan -> null')\n"
	"ok(enc('a\\255b') == '\"a\\239\\191\\189b\"', 'encode sanitises bytes')\n"
	"ok(enc({[1]='a',[3]='c'}) == '{\"1\":\"a\",\"3\":\"c\"}', 'sparse table -> object')\n"
	"ok(enc('line\\nbreak') == '\"line\\\\nbreak\"', 'newline escaped: one line')\n"
	"local e1 = select(2, pcall(enc, {f=print}))\n"
	"ok(tostring(e1):find('cannot encode a function', 1, true), 'function raises')\n"
	"local cyc = {} cyc.self = cyc\n"
	"local e2 = select(2, pcall(enc, cyc))\n"
	"ok(tostring(e2):find('nesting deeper', 1, true), 'cycle raises')\n"
	"local v = dec('{\"id\":7,\"method\":\"status\",\"params\":{\"x\":[1,null,2.5]},\"b\":false}')\n"
	"ok(v.id == 7 and math.type(v.id) == 'integer', 'decode integer')\n"
	"ok(v.method == 'status' and v.b == false, 'decode string, false')\n"
	"ok(v.params.x[2] == c.null and v.params.x[3] == 2.5, 'decode null sentinel, real')\n"
	"ok(enc(dec('[]')) == '[]' and enc(dec('{}')) == '{}', 'empty containers round-trip')\n"
	"local nv, err = dec('{\"id\":')\n"
	"ok(nv == nil and type(err) == 'string' and err:find('line 1'), 'bad JSON -> nil, err')\n"
	"ok(dec('\"\\255\"') == nil, 'invalid UTF-8 input refused')\n"
	"ok(dec('\"a\\\\u0000b\"') == 'a\\0b', 'escaped NUL allowed')\n"
	"ok(c.sanitize('ok') == 'ok' and c.sanitize('\\200') == '\\239\\191\\189', 'sanitize')\n"
	"ok(c.signum('TERM') == 15 and c.signum('sigkill') == 9 and c.signum(1) == 1, 'signum')\n"
	"ok(select(2, c.signum('SIGTERM')) == 'TERM' and select(2, c.signum('10')) == 'USR1', 'signum names')\n"
	"ok(c.signum('NOPE') == nil and select(2, c.signum('NOPE')) == \"unknown signal 'NOPE'\", 'unknown signal')\n"
	"ok(c.rfc3339(0) == '1970-01-01T00:00:00.000Z' and c.rfc3339(1.25) == '1970-01-01T00:00:01.250Z', 'rfc3339')\n"
	"ok(c.PROTOCOL == 1 and c.MAX_REQUEST == 65536 and c.MAX_CLIENTS == 64, 'constants')\n"
	"ok(c.errors.not_found == 'not_found' and c.errors.busy == 'busy', 'error codes')\n"
	"ok(c.gid(0) == 0 and c.gid('7') == 7 and c.gid('root') == 0, 'gid by number and name')\n"
	"ok(c.gid('no-such-group-x') == nil and select(2, c.gid('no-such-group-x')) == \"group 'no-such-group-x' does not exist\", 'unknown group')\n"
	"local pid, uid, gid = c.peer_cred(fd)\n"
	"ok(pid > 0 and uid >= 0 and gid >= 0, 'peer_cred on a socketpair')\n"
	"local role, rpid = c.peer_role(fd, 12345, 12346)\n"
	"ok(role == 'admin' and rpid == pid, 'own uid is admin')\n"
	"ok(type(c.peer_groups(fd)) == 'table', 'peer_groups')\n"
	"local n, msg, eno = c.peer_cred(0 + 999)\n"
	"ok(n == nil and type(msg) == 'string' and eno > 0, 'bad fd -> nil, msg, errno')\n";

int main(void)
{
	int sv[2];
	test_utf8();
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	if (luaL_loadstring(L, lua_tests) != LUA_OK) {
		printf("Bail out! %s\n", lua_tostring(L, -1));
		return 1;
	}
	fd_open_control(L);
	lua_pushinteger(L, sv[0]);
	lua_pushcfunction(L, l_ok);
	if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
		ok(0, "%s", lua_tostring(L, -1));
	}
	lua_close(L);
	close(sv[0]);
	close(sv[1]);
	return done_testing();
}
