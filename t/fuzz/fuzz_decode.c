
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * libFuzzer target for the decoders and the record body:
 *
 *   make fuzz FUZZ_TARGETS=fuzz_decode   (t/fuzz.mk)
 *
 * The first byte picks the coding and the cap; the rest is the body.
 * Checks: no access out of bounds; the cap is kept, on the output and on
 * the buffer; a body that decodes decodes the same at a cap of exactly its
 * size and is too large one byte below; the data round-trips through gzip,
 * zlib, raw deflate and zstd; record_body() always makes a JSON object and
 * its "size" is right; the URI and Authorization helpers stay in bounds.
 */


#include "ngx_http_reductrai_decode.h"
#include "ngx_http_reductrai_json.h"
#include "ngx_http_reductrai_record.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>


static void fuzz_roundtrip(const u_char *in, size_t len);
static void fuzz_record(ngx_http_reductrai_encoding_e enc, const u_char *in,
    size_t len, size_t max);
static void fuzz_uri(const u_char *in, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                          *in;
    size_t                           len, max;
    ngx_http_reductrai_buf_t         out, again;
    ngx_http_reductrai_encoding_e    enc;
    ngx_http_reductrai_decode_rc_e   rc, rc2;

    if (size == 0) {
        return 0;
    }

    enc = (ngx_http_reductrai_encoding_e) (data[0] % 5);
    max = (data[0] & 0x80) ? 1024 * 1024 : (size_t) (data[0] & 0x78) * 64;

    len = size - 1;
    in = malloc(len ? len : 1);
    memcpy(in, data + 1, len);

    memset(&out, 0, sizeof(out));

    rc = ngx_http_reductrai_decode(enc, in, len, max, &out);

    fuzz_assert(rc >= NGX_HTTP_REDUCTRAI_DECODE_OK
                && rc <= NGX_HTTP_REDUCTRAI_DECODE_NOMEM);
    fuzz_assert(rc != NGX_HTTP_REDUCTRAI_DECODE_NOMEM);
    fuzz_assert(out.cap <= max + 1 || out.cap <= len);
    fuzz_assert((rc == NGX_HTTP_REDUCTRAI_DECODE_UNSUPPORTED)
                == (enc == NGX_HTTP_REDUCTRAI_ENC_UNSUPPORTED));

    if (rc == NGX_HTTP_REDUCTRAI_DECODE_OK) {
        fuzz_assert(out.len <= max);

        memset(&again, 0, sizeof(again));

        rc2 = ngx_http_reductrai_decode(enc, in, len, out.len, &again);
        fuzz_assert(rc2 == NGX_HTTP_REDUCTRAI_DECODE_OK);
        fuzz_assert(again.len == out.len);
        fuzz_assert(out.len == 0 || memcmp(again.data, out.data, out.len)
                                    == 0);

        if (out.len > 0) {
            rc2 = ngx_http_reductrai_decode(enc, in, len, out.len - 1,
                                            &again);
            fuzz_assert(rc2 == NGX_HTTP_REDUCTRAI_DECODE_TOO_LARGE);
        }

        ngx_http_reductrai_buf_free(&again);
    }

    ngx_http_reductrai_buf_free(&out);

    fuzz_roundtrip(in, len);
    fuzz_record(enc, in, len, max);
    fuzz_uri(in, len);

    free(in);

    return 0;
}


/* the fuzz input as plain data, through each coding and back */

static void
fuzz_roundtrip(const u_char *in, size_t len)
{
    int                            wbits[3] = { 16 + MAX_WBITS, MAX_WBITS,
                                                -MAX_WBITS };
    u_char                        *packed;
    size_t                         i, bound, n;
    z_stream                       z;
    ngx_http_reductrai_buf_t       out;
    ngx_http_reductrai_encoding_e  enc;

    bound = ZSTD_compressBound(len) + compressBound(len) + 64;
    packed = malloc(bound);
    memset(&out, 0, sizeof(out));

    for (i = 0; i < 3; i++) {
        memset(&z, 0, sizeof(z_stream));
        fuzz_assert(deflateInit2(&z, 1, Z_DEFLATED, wbits[i], 8,
                                 Z_DEFAULT_STRATEGY) == Z_OK);

        z.next_in = (u_char *) in;
        z.avail_in = len;
        z.next_out = packed;
        z.avail_out = bound;

        fuzz_assert(deflate(&z, Z_FINISH) == Z_STREAM_END);
        n = z.total_out;
        deflateEnd(&z);

        enc = (i == 0) ? NGX_HTTP_REDUCTRAI_ENC_GZIP
                       : NGX_HTTP_REDUCTRAI_ENC_DEFLATE;

        fuzz_assert(ngx_http_reductrai_decode(enc, packed, n, len, &out)
                    == NGX_HTTP_REDUCTRAI_DECODE_OK);
        fuzz_assert(out.len == len
                    && (len == 0 || memcmp(out.data, in, len) == 0));
    }

    n = ZSTD_compress(packed, bound, in, len, 1);
    fuzz_assert(!ZSTD_isError(n));

    fuzz_assert(ngx_http_reductrai_decode(NGX_HTTP_REDUCTRAI_ENC_ZSTD, packed,
                                          n, len, &out)
                == NGX_HTTP_REDUCTRAI_DECODE_OK);
    fuzz_assert(out.len == len
                && (len == 0 || memcmp(out.data, in, len) == 0));

    ngx_http_reductrai_buf_free(&out);
    free(packed);
}


/* '{' + record_body() is one JSON object on one line */

static void
fuzz_record(ngx_http_reductrai_encoding_e enc, const u_char *in, size_t len,
    size_t max)
{
    size_t                                size;
    ssize_t                               n;
    ngx_http_reductrai_buf_t              line;
    ngx_http_reductrai_record_encoder_t   e;

    memset(&e, 0, sizeof(e));
    memset(&line, 0, sizeof(line));

    fuzz_assert(fuzz_buf_sink(&line, (u_char *) "{", 1) == 0);
    fuzz_assert(ngx_http_reductrai_record_body(&e, enc, 0, in, len, max,
                                               fuzz_buf_sink, &line, &size)
                == 0);

    fuzz_assert(line.len >= 2 && line.data[line.len - 1] == '\n');
    fuzz_assert(memchr(line.data, '\n', line.len) == line.data + line.len - 1);

    n = ngx_http_reductrai_json_minify(line.data, line.data, line.len - 1);
    fuzz_assert(n == (ssize_t) line.len - 1);

    if (enc == NGX_HTTP_REDUCTRAI_ENC_IDENTITY
        || enc == NGX_HTTP_REDUCTRAI_ENC_UNSUPPORTED)
    {
        fuzz_assert(size == len);
    }

    fuzz_assert(size <= max || size == len);

    ngx_http_reductrai_record_encoder_trim(&e, 0);
    fuzz_assert(e.decoded.cap == 0 && e.minified.cap == 0
                && e.text.cap == 0);

    ngx_http_reductrai_buf_free(&line);
}


static void
fuzz_uri(const u_char *in, size_t len)
{
    u_char                    *dst, fp[NGX_HTTP_REDUCTRAI_FP_LEN];
    size_t                     n, m, k;
    const u_char              *q;
    ngx_http_reductrai_str_t   s;

    n = ngx_http_reductrai_redact_uri_len(in, len);
    dst = malloc(n ? n : 1);
    m = ngx_http_reductrai_redact_uri(dst, in, len);
    fuzz_assert(m == n);

    /* the path, up to the first '?', is never touched */

    q = memchr(in, '?', len);
    k = (q != NULL) ? (size_t) (q + 1 - in) : len;
    fuzz_assert(m >= k && memcmp(dst, in, k) == 0);

    free(dst);

    s = ngx_http_reductrai_uri_credential(in, len);

    if (s.data != NULL) {
        fuzz_assert(s.data > in && s.data + s.len <= in + len && s.len > 0);
        ngx_http_reductrai_api_key_fp(fp, s.data, s.len);
    }

    s = ngx_http_reductrai_authorization_token(in, len);

    if (s.data != NULL) {
        fuzz_assert(s.data >= in && s.data + s.len <= in + len && s.len > 0);
    }
}
