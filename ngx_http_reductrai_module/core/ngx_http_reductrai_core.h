
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Definitions shared by the nginx-free core: the archive format, the JSON
 * minifier, the decoders and the storage backends.  Nothing here includes an
 * nginx header, so the module, the command-line tool, the unit tests and the
 * fuzzers all link the same code.
 */


#ifndef _NGX_HTTP_REDUCTRAI_CORE_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_CORE_H_INCLUDED_


#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_REDUCTRAI_VERSION  "1.0.0"

#define NGX_HTTP_REDUCTRAI_OK       0
#define NGX_HTTP_REDUCTRAI_ERROR   -1


/*
 * gcc -fanalyzer (12) loses track of memory stored into a structure it
 * reaches through a computed pointer (a field offset, an array element, a
 * hash chain) and reports it leaked, and does not see a caller's NULL check.
 * These bracket the few statements where that happens, for one named
 * diagnostic each; every site says why the finding is false.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define NGX_HTTP_REDUCTRAI_PRAGMA(x)  _Pragma(#x)
#define NGX_HTTP_REDUCTRAI_ANALYZER_IGNORE(w)                                 \
    _Pragma("GCC diagnostic push")                                            \
    NGX_HTTP_REDUCTRAI_PRAGMA(GCC diagnostic ignored w)
#define NGX_HTTP_REDUCTRAI_ANALYZER_END  _Pragma("GCC diagnostic pop")
#else
#define NGX_HTTP_REDUCTRAI_ANALYZER_IGNORE(w)
#define NGX_HTTP_REDUCTRAI_ANALYZER_END
#endif


/* a byte string; data == NULL means "absent" (JSON null) */
typedef struct {
    const u_char  *data;
    size_t         len;
} ngx_http_reductrai_str_t;


/* a growable byte buffer owned by one thread at a time */
typedef struct {
    u_char        *data;
    size_t         len;
    size_t         cap;
} ngx_http_reductrai_buf_t;


/* receives encoded output piece by piece; returns 0, or -1 with errno set */
typedef int (*ngx_http_reductrai_sink_pt)(void *data, const u_char *p,
    size_t len);


int ngx_http_reductrai_buf_reserve(ngx_http_reductrai_buf_t *b, size_t size);
void ngx_http_reductrai_buf_free(ngx_http_reductrai_buf_t *b);

/* "2026-11-25T19:16:23.123Z" (24 bytes, no terminating NUL) */
#define NGX_HTTP_REDUCTRAI_TS_LEN  24
u_char *ngx_http_reductrai_format_ts(u_char *p, int64_t ms);
int64_t ngx_http_reductrai_parse_ts(const u_char *p, size_t len);

/* the value of n decimal digits; -1 when one is not a digit */
int ngx_http_reductrai_digits(const u_char *p, size_t n, int *value);
/*
 * Seconds since the epoch of a UTC date and time (mon 1-12).  timegm()
 * rolls a day past the month's end ("02-30") into the next month: exact
 * (may be NULL) tells whether the day was one of the month's.
 */
int64_t ngx_http_reductrai_utc(int year, int mon, int mday, int hour,
    int min, int sec, int *exact);

u_char *ngx_http_reductrai_hex(u_char *dst, const u_char *src, size_t len);
/* the value of a hex digit of either case, or -1 */
int ngx_http_reductrai_hexval(u_char c);
/* len hex digits (len even) into len / 2 bytes; -1 on a non-digit */
int ngx_http_reductrai_unhex(u_char *dst, const u_char *src, size_t len);

/* little-endian integers of the archive's and the spool's binary parts */
void ngx_http_reductrai_put_le32(u_char *p, uint32_t v);
void ngx_http_reductrai_put_le64(u_char *p, uint64_t v);
uint32_t ngx_http_reductrai_get_le32(const u_char *p);
uint64_t ngx_http_reductrai_get_le64(const u_char *p);

/* fsync() of a directory; sync_parent() of the directory holding path */
int ngx_http_reductrai_sync_dir(const char *dir);
int ngx_http_reductrai_sync_parent(const char *path);

/* writes all of p, through EINTR and short writes; 0, or -1 with errno */
int ngx_http_reductrai_fd_write(int fd, const void *p, size_t len);

/*
 * Creates a spool file (mode 0600, read and write) under a hidden ".new."
 * name, takes an exclusive flock on it, writes head[0..len) (when len is
 * not 0), and only then gives it its name: a spool scan that can lock a
 * named file knows its writer is gone.  Returns the descriptor, holding
 * the lock until it is closed, or -1 (errno; nothing is left behind).
 */
int ngx_http_reductrai_create_locked(const char *path, const u_char *head,
    size_t len);

/* keeps the last size bytes of a stream in buf (*len of them so far) */
void ngx_http_reductrai_keep_tail(u_char *buf, size_t size, size_t *len,
    const u_char *p, size_t n);


#endif /* _NGX_HTTP_REDUCTRAI_CORE_H_INCLUDED_ */
