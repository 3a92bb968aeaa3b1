
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * libFuzzer target for the archive reader the CLI uses (cat, verify,
 * replay, select): the streaming zstd reader with its trailer lookup, the
 * record line view, JSON string unescaping and base64 decoding of bodies.
 *
 * The first byte sets the piece size the object is fed in (as storage
 * get() sinks deliver it); the rest is the object.  Checks: no access out
 * of bounds; an object read without error gives the same result (lines,
 * bytes, trailer) fed whole and in pieces, and an error in one is an error
 * in the other; unescaping never writes more than its input.
 */


#include "ngx_http_reductrai_reader.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int fuzz_line(void *data, const u_char *line, size_t len);
static void fuzz_str(const ngx_http_reductrai_str_t *s);
static void fuzz_read(const u_char *in, size_t len, size_t piece,
    ngx_http_reductrai_read_result_t *res, uint64_t *sum);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                            *in;
    size_t                             len, piece;
    uint64_t                           sum1, sum2;
    ngx_http_reductrai_read_result_t   whole, parts;

    if (size == 0) {
        return 0;
    }

    piece = (size_t) data[0] + 1;
    len = size - 1;

    /* an exact copy, so that ASan sees reads past the end */

    in = malloc(len ? len : 1);
    if (in == NULL) {
        return 0;
    }

    memcpy(in, data + 1, len);

    sum1 = 0;
    sum2 = 0;

    fuzz_read(in, len, len ? len : 1, &whole, &sum1);
    fuzz_read(in, len, piece, &parts, &sum2);

    fuzz_assert((whole.rc == NGX_HTTP_REDUCTRAI_READ_OK)
                == (parts.rc == NGX_HTTP_REDUCTRAI_READ_OK)
                || whole.rc == NGX_HTTP_REDUCTRAI_READ_NOMEM
                || parts.rc == NGX_HTTP_REDUCTRAI_READ_NOMEM);

    /*
     * After an error the reader takes no more bytes, so what it saw of the
     * tail depends on where the pieces ended: compare whole reads only.
     */

    if (whole.rc == NGX_HTTP_REDUCTRAI_READ_OK && parts.rc == whole.rc) {
        fuzz_assert(whole.lines == parts.lines);
        fuzz_assert(whole.raw_bytes == parts.raw_bytes);
        fuzz_assert(whole.has_trailer == parts.has_trailer);
        fuzz_assert(sum1 == sum2);

        if (whole.has_trailer) {
            fuzz_assert(whole.trailer.count == parts.trailer.count);
            fuzz_assert(whole.trailer.raw_bytes == parts.trailer.raw_bytes);
        }
    }

    free(in);

    return 0;
}


static void
fuzz_read(const u_char *in, size_t len, size_t piece,
    ngx_http_reductrai_read_result_t *res, uint64_t *sum)
{
    size_t                       off, n;
    ngx_http_reductrai_reader_t  r;

    memset(res, 0, sizeof(ngx_http_reductrai_read_result_t));

    if (ngx_http_reductrai_reader_init(&r, NGX_HTTP_REDUCTRAI_READ_SHA256,
                                       fuzz_line, sum)
        != 0)
    {
        res->rc = NGX_HTTP_REDUCTRAI_READ_NOMEM;
        return;
    }

    for (off = 0; off < len; off += n) {
        n = (len - off < piece) ? len - off : piece;

        if (ngx_http_reductrai_reader_feed(&r, in + off, n) != 0) {
            break;
        }
    }

    ngx_http_reductrai_reader_finish(&r, res);

    fuzz_assert(res->error != NULL);
    fuzz_assert(strlen(res->error) < sizeof(r.error));

    ngx_http_reductrai_reader_free(&r);
}


static int
fuzz_line(void *data, const u_char *line, size_t len)
{
    u_char                            *buf;
    ssize_t                            n;
    uint64_t                          *sum;
    const char                        *err;
    ngx_http_reductrai_record_view_t   v;

    sum = data;
    *sum += len;

    /* the view reads the line in place: give it an exact copy */

    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return 1;
    }

    memcpy(buf, line, len);

    err = NULL;

    if (ngx_http_reductrai_record_view(buf, len, &v, &err) == 0) {
        fuzz_str(&v.id);
        fuzz_str(&v.uri);
        fuzz_str(&v.user_agent);
        fuzz_str(&v.decode_error);

        if (v.body_b64.data != NULL) {
            u_char  *out;

            out = malloc(v.body_b64.len / 4 * 3 + 1);
            if (out != NULL) {
                n = ngx_http_reductrai_body_b64_decode(out, v.body_b64.data,
                                                       v.body_b64.len);
                fuzz_assert(n <= (ssize_t) (v.body_b64.len / 4 * 3));
                free(out);
            }
        }

        if (v.body.data != NULL) {
            fuzz_assert(v.body.data >= buf
                        && v.body.data + v.body.len <= buf + len);
        }

    } else {
        fuzz_assert(err != NULL);
    }

    free(buf);

    return 0;
}


static void
fuzz_str(const ngx_http_reductrai_str_t *s)
{
    u_char   *out;
    ssize_t   n;

    if (s->data == NULL) {
        return;
    }

    out = malloc(s->len ? s->len : 1);
    if (out == NULL) {
        return;
    }

    n = ngx_http_reductrai_json_unescape(out, s->data, s->len);
    fuzz_assert(n <= (ssize_t) s->len);

    free(out);
}
