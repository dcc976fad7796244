/*
 * jarena.c - the bump allocator behind jansson trees that live for one
 * request (see jarena.h).  Memory comes in chunks of at least CHUNK bytes
 * from malloc; a request larger than a chunk gets a chunk of its own.  At
 * jarena_end() the chunks are freed, except for up to KEEP bytes of them,
 * which the next arena reuses (a daemon answering status queries does not
 * go back to malloc for each one, and retains a bounded amount).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "jarena.h"

#define CHUNK ((size_t)1 << 20) /* 1 MiB */
#define KEEP ((size_t)8 << 20)  /* retained between arenas */
#define ALIGN ((size_t)16)

struct chunk {
	struct chunk *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	max_align_t data[];
};

static struct chunk *cur;      /* chunk being filled (head of the list) */
static struct chunk *spare;    /* recycled chunks */
static int active;
static json_malloc_t prev_malloc;
static json_free_t prev_free;

static struct chunk *new_chunk(size_t need)
{
	size_t size = need > CHUNK ? need : CHUNK;
	struct chunk **pp = &spare;
	for (struct chunk *k = spare; k; pp = &k->next, k = k->next)
		if (k->size >= need) {
			*pp = k->next;
			k->used = 0;
			return k;
		}
	struct chunk *k = malloc(sizeof *k + size);
	if (!k)
		return NULL;
	k->size = size;
	k->used = 0;
	return k;
}

static void *arena_malloc(size_t n)
{
	n = (n + ALIGN - 1) & ~(ALIGN - 1);
	if (!n)
		n = ALIGN;
	if (!cur || cur->size - cur->used < n) {
		struct chunk *k = new_chunk(n);
		if (!k)
			return NULL;
		k->next = cur;
		cur = k;
	}
	void *p = (char *)cur->data + cur->used;
	cur->used += n;
	return p;
}

static void arena_free(void *p)
{
	(void)p; /* everything goes at jarena_end() */
}

/* Route jansson's allocations into the arena; see jarena.h. */
void jarena_begin(void)
{
	if (active)
		return;
	json_get_alloc_funcs(&prev_malloc, &prev_free);
	json_set_alloc_funcs(arena_malloc, arena_free);
	active = 1;
}

/* Restore the previous allocator and recycle the arena; see jarena.h. */
void jarena_end(void)
{
	if (!active)
		return;
	json_set_alloc_funcs(prev_malloc, prev_free);
	active = 0;
	size_t kept = 0;
	for (struct chunk *k = spare; k; k = k->next)
		kept += k->size;
	while (cur) {
		struct chunk *k = cur;
		cur = k->next;
		if (kept + k->size <= KEEP) {
			kept += k->size;
			k->next = spare;
			spare = k;
		} else {
			free(k);
		}
	}
}

/* Is an arena active? */
int jarena_active(void)
{
	return active;
}
