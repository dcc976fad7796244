/*
 * jarena.h - a bump allocator for short-lived jansson trees, shared by the
 * daemon's JSON encoder (ljson.c, lstatus.c) and fibersctl's reply
 * parsing.  While an arena is active every jansson allocation comes from
 * it and frees are no-ops; jarena_end() restores the previous allocator
 * and releases (or keeps for reuse, up to a bound) the memory in one go.
 * A 1000-task status builds ~50k jansson nodes: this turns 50k malloc/free
 * pairs (and the tree walk of json_decref) into pointer bumps.
 * Single-threaded use only; no jansson value made inside an arena may be
 * used after jarena_end().
 */
#ifndef FIBERSD_JARENA_H
#define FIBERSD_JARENA_H

/* Route jansson's allocations into the arena (a no-op when already on). */
void jarena_begin(void);
/* Restore the previous jansson allocator and recycle the arena's memory;
 * every value allocated since jarena_begin() is gone (a no-op when off). */
void jarena_end(void);
/* Is an arena active? */
int jarena_active(void);

#endif
