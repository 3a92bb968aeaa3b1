
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#ifndef _NGX_HTTP_REDUCTRAI_DECODE_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_DECODE_H_INCLUDED_


#include "ngx_http_reductrai_core.h"


/* the values are stored in spool-log frames: append, never renumber */
typedef enum {
    NGX_HTTP_REDUCTRAI_ENC_IDENTITY = 0,
    NGX_HTTP_REDUCTRAI_ENC_GZIP,
    NGX_HTTP_REDUCTRAI_ENC_DEFLATE,
    NGX_HTTP_REDUCTRAI_ENC_ZSTD,
    NGX_HTTP_REDUCTRAI_ENC_UNSUPPORTED,
    NGX_HTTP_REDUCTRAI_ENC_SNAPPY
} ngx_http_reductrai_encoding_e;


typedef enum {
    NGX_HTTP_REDUCTRAI_DECODE_OK = 0,
    NGX_HTTP_REDUCTRAI_DECODE_CORRUPT,      /* not a valid stream */
    NGX_HTTP_REDUCTRAI_DECODE_TOO_LARGE,    /* decoded size above the cap */
    NGX_HTTP_REDUCTRAI_DECODE_UNSUPPORTED,  /* a coding we do not know */
    NGX_HTTP_REDUCTRAI_DECODE_NOMEM
} ngx_http_reductrai_decode_rc_e;


/*
 * Maps a Content-Encoding value to a coding: absent, empty or "identity" is
 * IDENTITY; "gzip" and "x-gzip" GZIP; "deflate" DEFLATE; "zstd" and "zstd1"
 * (as Datadog's clients spell it) ZSTD; "snappy" (the block format, as
 * Prometheus remote write sends it) SNAPPY; anything else UNSUPPORTED.
 * Case-insensitive; surrounding whitespace is ignored.
 */
ngx_http_reductrai_encoding_e ngx_http_reductrai_encoding_parse(
    const u_char *value, size_t len);

/*
 * Decodes in[0..len) into out, growing out->data with realloc() as needed,
 * never beyond max bytes of output (then TOO_LARGE).  gzip accepts
 * concatenated members; deflate accepts zlib-wrapped and raw streams; zstd
 * accepts concatenated frames and skippable frames; snappy is one block
 * whose stated length is checked against max before anything is allocated.
 * Trailing garbage or a truncated stream is CORRUPT.  out->len is the
 * decoded size on success.
 */
ngx_http_reductrai_decode_rc_e ngx_http_reductrai_decode(
    ngx_http_reductrai_encoding_e enc, const u_char *in, size_t len,
    size_t max, ngx_http_reductrai_buf_t *out);

/*
 * The archive's decode_error value for a failed decode: "invalid_gzip",
 * "invalid_deflate", "invalid_zstd", "invalid_snappy", "too_large",
 * "unsupported_encoding", "out_of_memory".
 */
const char *ngx_http_reductrai_decode_error(ngx_http_reductrai_encoding_e enc,
    ngx_http_reductrai_decode_rc_e rc);


#endif /* _NGX_HTTP_REDUCTRAI_DECODE_H_INCLUDED_ */
