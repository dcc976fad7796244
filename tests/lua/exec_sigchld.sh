#!/bin/sh
# tests/lua/exec_sigchld.sh - TAP: tests/lua/exec.lua again, with the
# SIGCHLD exit backend forced (FIBERS_PROC=sigchld), so both backends run
# in every `make check`.
FIBERS_PROC=sigchld
FIBERS_EXEC_N=500
export FIBERS_PROC FIBERS_EXEC_N
exec ${LUA_RUNNER:-lua5.4} "${top_srcdir:-.}/tests/lua/exec.lua"
