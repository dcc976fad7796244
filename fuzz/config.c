/*
 * config.c - libFuzzer target for the fibersd configuration parser
 * (src/fibersd/config.c, through inih with our line reader): any input
 * either parses to a table or yields messages that are all
 * "fuzz.conf:<line>: <message>" with a line number within the input.
 * `make fuzz` runs it for FUZZ_TIME seconds; not in make check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "fibersd.h"

static lua_State *L;

/* Count the lines of the input (a last line without newline counts). */
static long count_lines(const uint8_t *data, size_t size)
{
	long n = 0;
	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n + (size > 0 && data[size - 1] != '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (L == NULL) {
		L = luaL_newstate();
		luaL_openlibs(L);
	}
	if (size == 0)
		return 0;
	FILE *fp = fmemopen((void *)data, size, "r");
	if (fp == NULL)
		return 0;
	lua_settop(L, 0);
	cfg_load(L, NULL); /* the defaults table */
	int r = cfg_parse_stream(L, "fuzz.conf", fp, 1);
	fclose(fp);
	if (r == 2) {
		const char *msg = lua_tostring(L, -1);
		long lines = count_lines(data, size);
		for (const char *p = msg; p && *p;) {
			long line;
			int used = 0;
			if (sscanf(p, "fuzz.conf:%ld: %n", &line, &used) != 1 || used == 0 ||
			    line < 0 || line > lines)
				abort();
			p = strchr(p, '\n');
			p = p ? p + 1 : NULL;
		}
	} else if (!lua_istable(L, 1)) {
		abort();
	}
	lua_settop(L, 0);
	return 0;
}
