#!/bin/sh
# tests/lua/exec_vfork.sh - TAP: tests/lua/exec.lua again, with spawns in
# the vfork mode (FIBERS_SPAWN=vfork: the parent waits for the child's
# exec) instead of the overlapped default, so both modes run in every
# `make check`.
FIBERS_SPAWN=vfork
FIBERS_EXEC_N=500
export FIBERS_SPAWN FIBERS_EXEC_N
exec ${LUA_RUNNER:-lua5.4} "${top_srcdir:-.}/tests/lua/exec.lua"
