
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_decode.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>


/* the first buffer for a decoded body, as a multiple of its encoded size */
#define NGX_HTTP_REDUCTRAI_DECODE_RATIO  8
#define NGX_HTTP_REDUCTRAI_DECODE_MIN    16384

/* any window of the standard zstd levels (up to 19) is accepted */
#define NGX_HTTP_REDUCTRAI_ZSTD_WLOG     23


static ngx_http_reductrai_decode_rc_e ngx_http_reductrai_decode_zlib(
    int wbits, const u_char *in, size_t len, size_t max,
    ngx_http_reductrai_buf_t *out);
static ngx_http_reductrai_decode_rc_e ngx_http_reductrai_decode_zstd(
    const u_char *in, size_t len, size_t max, ngx_http_reductrai_buf_t *out);
static ngx_http_reductrai_decode_rc_e ngx_http_reductrai_decode_snappy(
    const u_char *in, size_t len, size_t max, ngx_http_reductrai_buf_t *out);
static int ngx_http_reductrai_decode_room(ngx_http_reductrai_buf_t *out,
    size_t len, size_t max, size_t *avail);
static int ngx_http_reductrai_decode_grow(ngx_http_reductrai_buf_t *out,
    size_t hint, size_t limit);


ngx_http_reductrai_encoding_e
ngx_http_reductrai_encoding_parse(const u_char *value, size_t len)
{
    if (value == NULL) {
        return NGX_HTTP_REDUCTRAI_ENC_IDENTITY;
    }

    while (len && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }

    while (len && (value[len - 1] == ' ' || value[len - 1] == '\t')) {
        len--;
    }

    if (len == 0
        || (len == 8 && strncasecmp((char *) value, "identity", 8) == 0))
    {
        return NGX_HTTP_REDUCTRAI_ENC_IDENTITY;
    }

    if ((len == 4 && strncasecmp((char *) value, "gzip", 4) == 0)
        || (len == 6 && strncasecmp((char *) value, "x-gzip", 6) == 0))
    {
        return NGX_HTTP_REDUCTRAI_ENC_GZIP;
    }

    if (len == 7 && strncasecmp((char *) value, "deflate", 7) == 0) {
        return NGX_HTTP_REDUCTRAI_ENC_DEFLATE;
    }

    if ((len == 4 && strncasecmp((char *) value, "zstd", 4) == 0)
        || (len == 5 && strncasecmp((char *) value, "zstd1", 5) == 0))
    {
        return NGX_HTTP_REDUCTRAI_ENC_ZSTD;
    }

    if (len == 6 && strncasecmp((char *) value, "snappy", 6) == 0) {
        return NGX_HTTP_REDUCTRAI_ENC_SNAPPY;
    }

    return NGX_HTTP_REDUCTRAI_ENC_UNSUPPORTED;
}


ngx_http_reductrai_decode_rc_e
ngx_http_reductrai_decode(ngx_http_reductrai_encoding_e enc,
    const u_char *in, size_t len, size_t max, ngx_http_reductrai_buf_t *out)
{
    ngx_http_reductrai_decode_rc_e  rc, raw;

    out->len = 0;

    switch (enc) {

    case NGX_HTTP_REDUCTRAI_ENC_IDENTITY:
        if (len > max) {
            return NGX_HTTP_REDUCTRAI_DECODE_TOO_LARGE;
        }

        if (len > out->cap
            && ngx_http_reductrai_decode_grow(out, len, len) != 0)
        {
            return NGX_HTTP_REDUCTRAI_DECODE_NOMEM;
        }

        if (len) {
            memcpy(out->data, in, len);
        }

        out->len = len;

        return NGX_HTTP_REDUCTRAI_DECODE_OK;

    case NGX_HTTP_REDUCTRAI_ENC_GZIP:
        return ngx_http_reductrai_decode_zlib(16 + MAX_WBITS, in, len, max,
                                              out);

    case NGX_HTTP_REDUCTRAI_ENC_DEFLATE:
        /*
         * "deflate" means zlib-wrapped (RFC 9110), but some clients send
         * raw deflate.  A raw stream nearly always fails the zlib header
         * check at once; when it passes by chance, what the zlib attempt
         * made of it (even "too large") must not hide a good raw stream.
         */

        rc = ngx_http_reductrai_decode_zlib(MAX_WBITS, in, len, max, out);

        if (rc == NGX_HTTP_REDUCTRAI_DECODE_OK
            || rc == NGX_HTTP_REDUCTRAI_DECODE_NOMEM)
        {
            return rc;
        }

        out->len = 0;
        raw = ngx_http_reductrai_decode_zlib(-MAX_WBITS, in, len, max, out);

        return (raw == NGX_HTTP_REDUCTRAI_DECODE_CORRUPT) ? rc : raw;

    case NGX_HTTP_REDUCTRAI_ENC_ZSTD:
        return ngx_http_reductrai_decode_zstd(in, len, max, out);

    case NGX_HTTP_REDUCTRAI_ENC_SNAPPY:
        return ngx_http_reductrai_decode_snappy(in, len, max, out);

    default:
        return NGX_HTTP_REDUCTRAI_DECODE_UNSUPPORTED;
    }
}


const char *
ngx_http_reductrai_decode_error(ngx_http_reductrai_encoding_e enc,
    ngx_http_reductrai_decode_rc_e rc)
{
    switch (rc) {

    case NGX_HTTP_REDUCTRAI_DECODE_OK:
        return NULL;

    case NGX_HTTP_REDUCTRAI_DECODE_TOO_LARGE:
        return "too_large";

    case NGX_HTTP_REDUCTRAI_DECODE_NOMEM:
        return "out_of_memory";

    case NGX_HTTP_REDUCTRAI_DECODE_CORRUPT:
        switch (enc) {

        case NGX_HTTP_REDUCTRAI_ENC_GZIP:
            return "invalid_gzip";

        case NGX_HTTP_REDUCTRAI_ENC_DEFLATE:
            return "invalid_deflate";

        case NGX_HTTP_REDUCTRAI_ENC_ZSTD:
            return "invalid_zstd";

        case NGX_HTTP_REDUCTRAI_ENC_SNAPPY:
            return "invalid_snappy";

        default:
            break;
        }

        /* fall through */

    default:
        return "unsupported_encoding";
    }
}


static ngx_http_reductrai_decode_rc_e
ngx_http_reductrai_decode_zlib(int wbits, const u_char *in, size_t len,
    size_t max, ngx_http_reductrai_buf_t *out)
{
    int                             zrc;
    size_t                          left, avail;
    z_stream                        z;
    ngx_http_reductrai_decode_rc_e  rc;

    memset(&z, 0, sizeof(z_stream));

    zrc = inflateInit2(&z, wbits);
    if (zrc != Z_OK) {
        return (zrc == Z_MEM_ERROR) ? NGX_HTTP_REDUCTRAI_DECODE_NOMEM
                                    : NGX_HTTP_REDUCTRAI_DECODE_CORRUPT;
    }

    left = len;

    z.next_in = (u_char *) in;
    z.avail_in = 0;

    for ( ;; ) {

        if (z.avail_in == 0 && left) {
            z.avail_in = (left > UINT_MAX) ? UINT_MAX : (uInt) left;
            left -= z.avail_in;
        }

        if (ngx_http_reductrai_decode_room(out, len, max, &avail) != 0) {
            rc = NGX_HTTP_REDUCTRAI_DECODE_NOMEM;
            goto failed;
        }

        z.next_out = out->data + out->len;
        z.avail_out = (avail > UINT_MAX) ? UINT_MAX : (uInt) avail;

        zrc = inflate(&z, Z_NO_FLUSH);

        out->len = z.next_out - out->data;

        if (out->len > max) {
            rc = NGX_HTTP_REDUCTRAI_DECODE_TOO_LARGE;
            goto failed;
        }

        switch (zrc) {

        case Z_OK:
            continue;

        case Z_STREAM_END:
            if (z.avail_in == 0 && left == 0) {
                inflateEnd(&z);
                return NGX_HTTP_REDUCTRAI_DECODE_OK;
            }

            if (wbits > MAX_WBITS) {
                /* gzip: another member follows (RFC 1952, 2.2) */
                inflateReset(&z);
                continue;
            }

            rc = NGX_HTTP_REDUCTRAI_DECODE_CORRUPT;
            goto failed;

        case Z_BUF_ERROR:
            if (z.avail_out == 0) {
                continue;
            }

            /* the input ended before the stream did */

            rc = NGX_HTTP_REDUCTRAI_DECODE_CORRUPT;
            goto failed;

        case Z_MEM_ERROR:
            rc = NGX_HTTP_REDUCTRAI_DECODE_NOMEM;
            goto failed;

        default:
            rc = NGX_HTTP_REDUCTRAI_DECODE_CORRUPT;
            goto failed;
        }
    }

failed:

    inflateEnd(&z);

    return rc;
}


/*
 * ZSTD_decompressStream() walks concatenated and skippable frames by itself;
 * a frame whose window would need more memory than the cap allows is
 * refused as too large before anything is allocated for it.
 */

static ngx_http_reductrai_decode_rc_e
ngx_http_reductrai_decode_zstd(const u_char *in, size_t len, size_t max,
    ngx_http_reductrai_buf_t *out)
{
    int                             wlog;
    size_t                          avail, ret, before;
    ZSTD_DCtx                      *dctx;
    ZSTD_bounds                     bounds;
    ZSTD_inBuffer                   input;
    ZSTD_outBuffer                  output;
    ngx_http_reductrai_decode_rc_e  rc;

    dctx = ZSTD_createDCtx();
    if (dctx == NULL) {
        return NGX_HTTP_REDUCTRAI_DECODE_NOMEM;
    }

    bounds = ZSTD_dParam_getBounds(ZSTD_d_windowLogMax);

    for (wlog = NGX_HTTP_REDUCTRAI_ZSTD_WLOG;
         wlog < bounds.upperBound && ((size_t) 1 << wlog) < max;
         wlog++)
    {
        /* void */
    }

    if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax,
                                            wlog)))
    {
        rc = NGX_HTTP_REDUCTRAI_DECODE_NOMEM;
        goto failed;
    }

    input.src = in;
    input.size = len;
    input.pos = 0;

    for ( ;; ) {
        if (ngx_http_reductrai_decode_room(out, len, max, &avail) != 0) {
            rc = NGX_HTTP_REDUCTRAI_DECODE_NOMEM;
            goto failed;
        }

        output.dst = out->data + out->len;
        output.size = avail;
        output.pos = 0;
        before = input.pos;

        ret = ZSTD_decompressStream(dctx, &output, &input);

        if (ZSTD_isError(ret)) {
            switch (ZSTD_getErrorCode(ret)) {

            case ZSTD_error_frameParameter_windowTooLarge:
                rc = NGX_HTTP_REDUCTRAI_DECODE_TOO_LARGE;
                break;

            case ZSTD_error_memory_allocation:
                rc = NGX_HTTP_REDUCTRAI_DECODE_NOMEM;
                break;

            default:
                rc = NGX_HTTP_REDUCTRAI_DECODE_CORRUPT;
            }

            goto failed;
        }

        out->len += output.pos;

        if (out->len > max) {
            rc = NGX_HTTP_REDUCTRAI_DECODE_TOO_LARGE;
            goto failed;
        }

        if (input.pos == input.size && ret == 0) {
            /* the last frame is complete and flushed */
            ZSTD_freeDCtx(dctx);
            return NGX_HTTP_REDUCTRAI_DECODE_OK;
        }

        if (output.pos < output.size
            && (input.pos == input.size
                || (input.pos == before && output.pos == 0)))
        {
            /* truncated: room for output, but no input left to make it */
            rc = NGX_HTTP_REDUCTRAI_DECODE_CORRUPT;
            goto failed;
        }
    }

failed:

    ZSTD_freeDCtx(dctx);

    return rc;
}


/*
 * A snappy block starts with its decoded length: a body over the cap is
 * refused before anything is allocated, and the decoder checks the rest
 * (snappy_uncompress() never writes beyond the stated length).
 */

static ngx_http_reductrai_decode_rc_e
ngx_http_reductrai_decode_snappy(const u_char *in, size_t len, size_t max,
    ngx_http_reductrai_buf_t *out)
{
    size_t  n;

    if (snappy_uncompressed_length((const char *) in, len, &n) != SNAPPY_OK) {
        return NGX_HTTP_REDUCTRAI_DECODE_CORRUPT;
    }

    if (n > max) {
        return NGX_HTTP_REDUCTRAI_DECODE_TOO_LARGE;
    }

    if (n > out->cap && ngx_http_reductrai_decode_grow(out, n, n) != 0) {
        return NGX_HTTP_REDUCTRAI_DECODE_NOMEM;
    }

    if (n == 0) {
        /* the block of an empty body is one byte, its zero length */
        return (len == 1) ? NGX_HTTP_REDUCTRAI_DECODE_OK
                          : NGX_HTTP_REDUCTRAI_DECODE_CORRUPT;
    }

    if (snappy_uncompress((const char *) in, len, (char *) out->data, &n)
        != SNAPPY_OK)
    {
        return NGX_HTTP_REDUCTRAI_DECODE_CORRUPT;
    }

    out->len = n;

    return NGX_HTTP_REDUCTRAI_DECODE_OK;
}


/*
 * The free bytes at the end of out for a decoder fed len bytes, grown when
 * there are none.  The buffer never grows beyond max + 1 bytes: one byte
 * more than allowed is how a body over the cap is told from one exactly at
 * it.
 */

static int
ngx_http_reductrai_decode_room(ngx_http_reductrai_buf_t *out, size_t len,
    size_t max, size_t *avail)
{
    size_t  limit, hint;

    limit = (max < (size_t) -1) ? max + 1 : max;

    if (out->len == ((out->cap < limit) ? out->cap : limit)) {
        hint = (len < ((size_t) -1) / NGX_HTTP_REDUCTRAI_DECODE_RATIO)
               ? len * NGX_HTTP_REDUCTRAI_DECODE_RATIO : limit;

        if (ngx_http_reductrai_decode_grow(out, hint, limit) != 0) {
            return -1;
        }
    }

    *avail = ((out->cap < limit) ? out->cap : limit) - out->len;

    return 0;
}


/* grows out towards hint bytes (at least doubling), never beyond limit */

static int
ngx_http_reductrai_decode_grow(ngx_http_reductrai_buf_t *out, size_t hint,
    size_t limit)
{
    size_t   cap;
    u_char  *p;

    cap = (out->cap > ((size_t) -1) / 2) ? (size_t) -1 : out->cap * 2;

    if (cap < hint) {
        cap = hint;
    }

    if (cap < NGX_HTTP_REDUCTRAI_DECODE_MIN) {
        cap = NGX_HTTP_REDUCTRAI_DECODE_MIN;
    }

    if (cap > limit) {
        cap = limit;
    }

    if (cap <= out->cap) {
        return 0;
    }

    p = realloc(out->data, cap);
    if (p == NULL) {
        return -1;
    }

    out->data = p;
    out->cap = cap;

    return 0;
}
