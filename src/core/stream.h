/*
 * stream.h - a buffered, non-blocking file-descriptor stream (plain C).
 *
 * A stream owns a read buffer (filled from the fd in large chunks, directly
 * into the buffer's free space) and a write buffer (small writes are
 * gathered there; large ones go straight to the fd).  It remembers EOF and
 * a sticky read error.  It never blocks by itself unless the fd is blocking
 * (regular files are, by nature): EAGAIN is returned and the caller (the
 * Lua layer) waits for readiness through the scheduler.  A stream with
 * fd == -1 is "backend-driven": the caller feeds bytes with stream_feed().
 * A blocking fd that must stay blocking (stdio shared with other
 * processes) sets `pollfirst`: each read/write is preceded by a zero-timeout
 * poll, so a read never blocks and a write only blocks to finish a chunk.
 * Functions return 0 or a positive errno.
 */
#ifndef FIBERS_STREAM_H
#define FIBERS_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

#define STREAM_DEFAULT_BUFSIZE 65536
#define STREAM_MAX_FILL (4u << 20)
#define STREAM_SCAN_TERM_MAX 32
#define STREAM_LINE_MAX (1u << 20) /* default bound of a line read */

typedef struct stream {
	int fd;              /* -1: closed or backend-driven */
	int rerr;            /* sticky read error (errno), 0 if none */
	unsigned eof : 1;    /* the read side saw end of file */
	unsigned closed : 1; /* stream_close() was called */
	unsigned pollfirst : 1; /* blocking fd: poll(0) before each syscall */
	size_t bufsize;      /* fill chunk and write-buffer limit */
	buf_t rb;            /* read buffer */
	buf_t wb;            /* write buffer */
	size_t scan;         /* bytes of rb known to hold no scan_term */
	size_t scan_tlen;    /* length of scan_term (0: cache unused) */
	char scan_term[STREAM_SCAN_TERM_MAX];
	buf_acct_t acct;     /* accounting of rb and wb (see buf.h), if set */
} stream_t;

/* Initialise s over fd (may be -1 for a backend-driven stream). */
void stream_init(stream_t *s, int fd, size_t bufsize);
/* Free the buffers; does not close the fd (see stream_close). */
void stream_destroy(stream_t *s);
/*
 * Account both buffers' memory through charge (see buf_acct_t), from now
 * on; call before the first read or write.  The stream must not move.
 */
void stream_set_acct(stream_t *s, int (*charge)(void *, uint64_t, long long), void *ud,
		     uint64_t owner);

/*
 * Read once from the fd into the read buffer, at least bufsize bytes of
 * room (more, up to STREAM_MAX_FILL, when want asks for it).  Returns 0
 * when bytes arrived or EOF was seen (*got = count, 0 at EOF), EAGAIN when
 * nothing is available, or an errno (also kept in s->rerr).
 */
int stream_fill(stream_t *s, size_t want, size_t *got);
/*
 * Fill until EAGAIN, EOF (returns 0) or an error, growing geometrically;
 * with limit > 0 also stop (returning 0) once limit bytes are buffered.
 */
int stream_fill_all(stream_t *s, size_t limit);
/* Append bytes obtained elsewhere (backend-driven streams). */
int stream_feed(stream_t *s, const void *p, size_t n);

/* Offset of term in the read buffer, or -1; remembers how far it looked. */
ssize_t stream_find(stream_t *s, const char *term, size_t tlen);
/* Drop n bytes from the front of the read buffer. */
void stream_consume(stream_t *s, size_t n);

/*
 * Write n bytes from p straight to the fd until done or EAGAIN; *done
 * counts bytes taken.  Returns 0 (all written), EAGAIN or an errno.
 */
int stream_write(stream_t *s, const char *p, size_t n, size_t *done);
/* Write out the write buffer: 0 when empty, EAGAIN, or an errno. */
int stream_flush(stream_t *s);

/* Close: free buffers and close the fd if close_fd; returns close's errno. */
int stream_close(stream_t *s, int close_fd);

#endif
