/*
 * lmodule.c - the object that makes fibers/core.so.  The loader itself,
 * luaopen_fibers_core, comes from libfiberslua (lcore.c), which libtool
 * links in whole; this file only anchors the module's own translation unit.
 */
#include "lbind.h"

/* Referenced so that the linker keeps the loader even without whole-archive. */
lua_CFunction fl_module_entry = luaopen_fibers_core;
