
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_reader.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zstd.h>


#define NGX_HTTP_REDUCTRAI_ZSTD_MAGIC  0xFD2FB528


static int ngx_http_reductrai_reader_lines(ngx_http_reductrai_reader_t *r,
    const u_char *p, size_t len);
static int ngx_http_reductrai_reader_append(ngx_http_reductrai_reader_t *r,
    const u_char *p, size_t len);
static void ngx_http_reductrai_reader_keep(ngx_http_reductrai_reader_t *r,
    const u_char *p, size_t len);
static int ngx_http_reductrai_reader_fail(ngx_http_reductrai_reader_t *r,
    ngx_http_reductrai_read_rc_e rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ngx_http_reductrai_str_t *ngx_http_reductrai_view_string(
    ngx_http_reductrai_record_view_t *v, const u_char *key, size_t len);
static const u_char *ngx_http_reductrai_skip_ws(const u_char *p,
    const u_char *end);
static const u_char *ngx_http_reductrai_skip_string(const u_char *p,
    const u_char *end);
static const u_char *ngx_http_reductrai_skip_value(const u_char *p,
    const u_char *end);
static int ngx_http_reductrai_hex4(const u_char *p, unsigned *v);
static u_char *ngx_http_reductrai_utf8(u_char *p, unsigned cp);


/* the value of a base64 digit, or -1 */

static const signed char  ngx_http_reductrai_b64_value[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
};


int
ngx_http_reductrai_reader_init(ngx_http_reductrai_reader_t *r,
    unsigned flags, ngx_http_reductrai_line_pt handler, void *data)
{
    memset(r, 0, sizeof(ngx_http_reductrai_reader_t));

    r->handler = handler;
    r->data = data;

    r->dctx = ZSTD_createDStream();
    r->out_size = ZSTD_DStreamOutSize();
    r->out = malloc(r->out_size);

    if (flags & NGX_HTTP_REDUCTRAI_READ_SHA256) {
        r->sha = EVP_MD_CTX_new();
    }

    if (r->dctx == NULL || r->out == NULL
        || ((flags & NGX_HTTP_REDUCTRAI_READ_SHA256) && r->sha == NULL))
    {
        ngx_http_reductrai_reader_free(r);
        errno = ENOMEM;
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    return ngx_http_reductrai_reader_reset(r);
}


int
ngx_http_reductrai_reader_reset(ngx_http_reductrai_reader_t *r)
{
    if (ZSTD_isError(ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only))) {
        errno = EINVAL;
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    if (r->sha != NULL
        && EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL) != 1)
    {
        errno = ENOMEM;
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    /* the line buffer of a huge record is not kept for the next object */
    if (r->line.cap > 1024 * 1024) {
        ngx_http_reductrai_buf_free(&r->line);
    }

    r->line.len = 0;
    r->head_len = 0;
    r->tail_len = 0;
    r->frame_left = 0;
    r->in_bytes = 0;
    r->raw_bytes = 0;
    r->lines = 0;
    r->rc = NGX_HTTP_REDUCTRAI_READ_OK;
    r->error[0] = '\0';

    return NGX_HTTP_REDUCTRAI_OK;
}


void
ngx_http_reductrai_reader_free(ngx_http_reductrai_reader_t *r)
{
    ZSTD_freeDStream(r->dctx);
    EVP_MD_CTX_free(r->sha);
    free(r->out);
    ngx_http_reductrai_buf_free(&r->line);

    r->dctx = NULL;
    r->sha = NULL;
    r->out = NULL;
}


int
ngx_http_reductrai_reader_feed(void *data, const u_char *p, size_t len)
{
    ngx_http_reductrai_reader_t *r = data;

    size_t          ret;
    ZSTD_inBuffer   in;
    ZSTD_outBuffer  out;

    if (r->rc != NGX_HTTP_REDUCTRAI_READ_OK) {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    ngx_http_reductrai_reader_keep(r, p, len);

    in.src = p;
    in.size = len;
    in.pos = 0;

    out.dst = r->out;
    out.size = r->out_size;
    out.pos = out.size;

    /* a full output buffer may hide more output: call until it is not */

    while (in.pos < in.size || out.pos == out.size) {
        out.pos = 0;

        ret = ZSTD_decompressStream(r->dctx, &out, &in);

        if (ZSTD_isError(ret)) {
            return ngx_http_reductrai_reader_fail(r,
                       NGX_HTTP_REDUCTRAI_READ_CORRUPT,
                       "zstd: %s (after %llu decompressed bytes, %llu "
                       "lines)", ZSTD_getErrorName(ret),
                       (unsigned long long) r->raw_bytes,
                       (unsigned long long) r->lines);
        }

        r->frame_left = ret;

        if (out.pos == 0) {
            if (in.pos == in.size) {
                break;
            }

            continue;
        }

        r->raw_bytes += out.pos;

        if (r->sha != NULL
            && EVP_DigestUpdate(r->sha, r->out, out.pos) != 1)
        {
            return ngx_http_reductrai_reader_fail(r,
                       NGX_HTTP_REDUCTRAI_READ_NOMEM, "sha256 failed");
        }

        if (ngx_http_reductrai_reader_lines(r, r->out, out.pos) != 0) {
            return NGX_HTTP_REDUCTRAI_ERROR;
        }
    }

    r->in_bytes += len;

    return NGX_HTTP_REDUCTRAI_OK;
}


void
ngx_http_reductrai_reader_finish(ngx_http_reductrai_reader_t *r,
    ngx_http_reductrai_read_result_t *res)
{
    unsigned int  len;

    memset(res, 0, sizeof(ngx_http_reductrai_read_result_t));

    if (ngx_http_reductrai_trailer_parse(r->tail, r->tail_len, &res->trailer)
        != 0)
    {
        res->has_trailer = 1;
    }

    if (r->rc == NGX_HTTP_REDUCTRAI_READ_OK) {
        if (r->in_bytes == 0) {
            (void) ngx_http_reductrai_reader_fail(r,
                       NGX_HTTP_REDUCTRAI_READ_TRUNCATED, "empty object");

        } else if (r->frame_left != 0 && res->has_trailer) {
            /*
             * The object ends with its trailer, so it is whole: a damaged
             * block header made zstd read on into the trailer.
             */
            (void) ngx_http_reductrai_reader_fail(r,
                       NGX_HTTP_REDUCTRAI_READ_CORRUPT,
                       "zstd: the frame runs into the trailer: corrupt data "
                       "(%zu more bytes expected)", r->frame_left);

        } else if (r->frame_left != 0) {
            (void) ngx_http_reductrai_reader_fail(r,
                       NGX_HTTP_REDUCTRAI_READ_TRUNCATED,
                       "zstd stream ends inside a frame after %llu bytes "
                       "(%zu more expected): the object is truncated",
                       (unsigned long long) r->in_bytes, r->frame_left);

        } else if (r->line.len > 0) {
            (void) ngx_http_reductrai_reader_fail(r,
                       NGX_HTTP_REDUCTRAI_READ_PARTIAL_LINE,
                       "%zu bytes after the last newline", r->line.len);
        }
    }

    res->rc = r->rc;
    res->error = r->error;
    res->in_bytes = r->in_bytes;
    res->raw_bytes = r->raw_bytes;
    res->lines = r->lines;

    /* magic, then the frame header descriptor: bit 2 is the checksum */
    if (r->head_len >= 5
        && (uint32_t) r->head[0] + ((uint32_t) r->head[1] << 8)
           + ((uint32_t) r->head[2] << 16) + ((uint32_t) r->head[3] << 24)
           == NGX_HTTP_REDUCTRAI_ZSTD_MAGIC)
    {
        res->no_checksum = (r->head[4] & 0x04) ? 0 : 1;
    }

    if (r->sha != NULL) {
        len = 32;
        (void) EVP_DigestFinal_ex(r->sha, res->sha256, &len);
    }
}


static int
ngx_http_reductrai_reader_lines(ngx_http_reductrai_reader_t *r,
    const u_char *p, size_t len)
{
    size_t         n;
    const u_char  *nl, *end, *line;

    end = p + len;

    while (p < end) {
        nl = memchr(p, '\n', (size_t) (end - p));

        if (nl == NULL) {
            return ngx_http_reductrai_reader_append(r, p, (size_t) (end - p));
        }

        n = (size_t) (nl - p);

        if (r->line.len == 0) {
            /* the common case: the whole line is in this piece */
            line = p;

        } else {
            if (ngx_http_reductrai_reader_append(r, p, n) != 0) {
                return NGX_HTTP_REDUCTRAI_ERROR;
            }

            line = r->line.data;
            n = r->line.len;
            r->line.len = 0;
        }

        r->lines++;

        if (r->handler(r->data, line, n) != 0) {
            return ngx_http_reductrai_reader_fail(r,
                       NGX_HTTP_REDUCTRAI_READ_STOPPED, "stopped");
        }

        p = nl + 1;
    }

    return 0;
}


/* a piece of the line that is not complete yet */

static int
ngx_http_reductrai_reader_append(ngx_http_reductrai_reader_t *r,
    const u_char *p, size_t len)
{
    if (r->line.len + len > NGX_HTTP_REDUCTRAI_LINE_MAX) {
        return ngx_http_reductrai_reader_fail(r,
                   NGX_HTTP_REDUCTRAI_READ_LINE_TOO_LONG,
                   "line %llu is longer than %d bytes",
                   (unsigned long long) r->lines + 1,
                   NGX_HTTP_REDUCTRAI_LINE_MAX);
    }

    if (ngx_http_reductrai_buf_reserve(&r->line, len) != 0) {
        return ngx_http_reductrai_reader_fail(r,
                   NGX_HTTP_REDUCTRAI_READ_NOMEM, "out of memory");
    }

    memcpy(r->line.data + r->line.len, p, len);
    r->line.len += len;

    return NGX_HTTP_REDUCTRAI_OK;
}


/* remembers the first bytes and the last TRAILER_MAX bytes seen */

static void
ngx_http_reductrai_reader_keep(ngx_http_reductrai_reader_t *r,
    const u_char *p, size_t len)
{
    size_t  n;

    if (r->head_len < sizeof(r->head)) {
        n = sizeof(r->head) - r->head_len;
        n = len < n ? len : n;
        memcpy(r->head + r->head_len, p, n);
        r->head_len += n;
    }

    ngx_http_reductrai_keep_tail(r->tail, sizeof(r->tail), &r->tail_len, p,
                                 len);
}


static int
ngx_http_reductrai_reader_fail(ngx_http_reductrai_reader_t *r,
    ngx_http_reductrai_read_rc_e rc, const char *fmt, ...)
{
    va_list  args;

    r->rc = rc;

    va_start(args, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, args);
    va_end(args);

    return NGX_HTTP_REDUCTRAI_ERROR;
}


int
ngx_http_reductrai_record_view(const u_char *line, size_t len,
    ngx_http_reductrai_record_view_t *v, const char **err)
{
    size_t                     klen;
    const u_char              *p, *end, *key, *val, *vend;
    ngx_http_reductrai_str_t  *field;

    memset(v, 0, sizeof(ngx_http_reductrai_record_view_t));
    v->size = -1;
    v->forwarded = -1;
    v->ts_ms = -1;

    end = line + len;
    p = ngx_http_reductrai_skip_ws(line, end);

    if (p == end || *p != '{') {
        *err = "not a JSON object";
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    p = ngx_http_reductrai_skip_ws(p + 1, end);

    if (p < end && *p == '}') {
        goto done;
    }

    for ( ;; ) {
        if (p == end || *p != '"') {
            *err = "a member name is expected";
            return NGX_HTTP_REDUCTRAI_ERROR;
        }

        key = p + 1;
        p = ngx_http_reductrai_skip_string(p, end);
        if (p == NULL) {
            *err = "unterminated string";
            return NGX_HTTP_REDUCTRAI_ERROR;
        }

        klen = (size_t) (p - 1 - key);

        p = ngx_http_reductrai_skip_ws(p, end);
        if (p == end || *p != ':') {
            *err = "':' is expected";
            return NGX_HTTP_REDUCTRAI_ERROR;
        }

        val = ngx_http_reductrai_skip_ws(p + 1, end);
        vend = ngx_http_reductrai_skip_value(val, end);

        if (vend == NULL || vend == val) {
            *err = "invalid value";
            return NGX_HTTP_REDUCTRAI_ERROR;
        }

#define ngx_http_reductrai_key_is(s)                                         \
        (klen == sizeof(s) - 1 && memcmp(key, s, klen) == 0)

        if (ngx_http_reductrai_key_is("body")) {
            v->body.data = val;
            v->body.len = (size_t) (vend - val);

        } else if (ngx_http_reductrai_key_is("size")) {
            if (*val < '0' || *val > '9') {
                *err = "\"size\" is not a number";
                return NGX_HTTP_REDUCTRAI_ERROR;
            }

            v->size = 0;

            for (p = val; p < vend && *p >= '0' && *p <= '9'; p++) {
                v->size = v->size * 10 + (*p - '0');
            }

        } else if (ngx_http_reductrai_key_is("forwarded")) {
            if (*val == 't' || *val == 'f') {
                v->forwarded = (*val == 't');

            } else {
                *err = "\"forwarded\" is not a boolean";
                return NGX_HTTP_REDUCTRAI_ERROR;
            }

        } else {
            field = ngx_http_reductrai_view_string(v, key, klen);

            if (field != NULL) {
                if (*val == '"') {
                    field->data = val + 1;
                    field->len = (size_t) (vend - val - 2);

                } else if (*val != 'n') {
                    *err = "a string field holds another type";
                    return NGX_HTTP_REDUCTRAI_ERROR;
                }
            }
        }

#undef ngx_http_reductrai_key_is

        p = ngx_http_reductrai_skip_ws(vend, end);

        if (p < end && *p == ',') {
            p = ngx_http_reductrai_skip_ws(p + 1, end);
            continue;
        }

        if (p < end && *p == '}') {
            break;
        }

        *err = "',' or '}' is expected";
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    if (ngx_http_reductrai_skip_ws(p + 1, end) != end) {
        *err = "data after the object";
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

done:

    if (v->ts.data != NULL) {
        v->ts_ms = ngx_http_reductrai_parse_ts(v->ts.data, v->ts.len);
    }

    return NGX_HTTP_REDUCTRAI_OK;
}


static ngx_http_reductrai_str_t *
ngx_http_reductrai_view_string(ngx_http_reductrai_record_view_t *v,
    const u_char *key, size_t len)
{
    size_t  i;

    static const struct {
        const char  *name;
        size_t       offset;
    } fields[] = {
#define ngx_http_reductrai_view_field(f)                                     \
        { #f, offsetof(ngx_http_reductrai_record_view_t, f) }
        ngx_http_reductrai_view_field(id),
        ngx_http_reductrai_view_field(ts),
        ngx_http_reductrai_view_field(stream),
        ngx_http_reductrai_view_field(method),
        ngx_http_reductrai_view_field(uri),
        ngx_http_reductrai_view_field(host),
        ngx_http_reductrai_view_field(client),
        ngx_http_reductrai_view_field(request_id),
        ngx_http_reductrai_view_field(content_type),
        ngx_http_reductrai_view_field(content_encoding),
        ngx_http_reductrai_view_field(user_agent),
        ngx_http_reductrai_view_field(api_key_fp),
        ngx_http_reductrai_view_field(decode_error),
        ngx_http_reductrai_view_field(body_format),
        ngx_http_reductrai_view_field(body_b64),
#undef ngx_http_reductrai_view_field
        { NULL, 0 }
    };

    for (i = 0; fields[i].name != NULL; i++) {
        if (strlen(fields[i].name) == len
            && memcmp(fields[i].name, key, len) == 0)
        {
            return (ngx_http_reductrai_str_t *)
                       ((u_char *) v + fields[i].offset);
        }
    }

    return NULL;
}


static const u_char *
ngx_http_reductrai_skip_ws(const u_char *p, const u_char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }

    return p;
}


/* p is at the opening quote; returns the byte after the closing one */

static const u_char *
ngx_http_reductrai_skip_string(const u_char *p, const u_char *end)
{
    const u_char  *q;

    for (p++; p < end; p++) {
        /* most of a string needs no look at each byte */
        q = memchr(p, '"', (size_t) (end - p));
        if (q == NULL) {
            return NULL;
        }

        p = q;

        /* the quote is escaped if an odd number of backslashes precede it */
        for (q = p; q[-1] == '\\'; q--) { /* void */ }

        if (((p - q) & 1) == 0) {
            return p + 1;
        }
    }

    return NULL;
}


static const u_char *
ngx_http_reductrai_skip_value(const u_char *p, const u_char *end)
{
    size_t  depth;

    if (p == end) {
        return NULL;
    }

    switch (*p) {

    case '"':
        return ngx_http_reductrai_skip_string(p, end);

    case '{':
    case '[':
        depth = 0;

        while (p < end) {
            switch (*p) {

            case '"':
                p = ngx_http_reductrai_skip_string(p, end);
                if (p == NULL) {
                    return NULL;
                }

                continue;

            case '{':
            case '[':
                depth++;
                break;

            case '}':
            case ']':
                if (--depth == 0) {
                    return p + 1;
                }

                break;
            }

            p++;
        }

        return NULL;

    default:
        /* numbers, true, false, null */
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' '
               && *p != '\t' && *p != '\r' && *p != '\n')
        {
            p++;
        }

        return p;
    }
}


ssize_t
ngx_http_reductrai_json_unescape(u_char *dst, const u_char *src, size_t len)
{
    u_char        *d;
    unsigned       cp, lo;
    const u_char  *end;

    d = dst;
    end = src + len;

    while (src < end) {
        if (*src != '\\') {
            *d++ = *src++;
            continue;
        }

        if (end - src < 2) {
            return -1;
        }

        switch (src[1]) {
        case '"':  *d++ = '"';  break;
        case '\\': *d++ = '\\'; break;
        case '/':  *d++ = '/';  break;
        case 'b':  *d++ = '\b'; break;
        case 'f':  *d++ = '\f'; break;
        case 'n':  *d++ = '\n'; break;
        case 'r':  *d++ = '\r'; break;
        case 't':  *d++ = '\t'; break;

        case 'u':
            if (end - src < 6 || ngx_http_reductrai_hex4(src + 2, &cp) != 0) {
                return -1;
            }

            src += 6;

            if (cp <= 0xff) {
                /* a control character, or one byte of invalid UTF-8 */
                *d++ = (u_char) cp;
                continue;
            }

            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - src < 6 || src[0] != '\\' || src[1] != 'u'
                    || ngx_http_reductrai_hex4(src + 2, &lo) != 0
                    || lo < 0xdc00 || lo > 0xdfff)
                {
                    return -1;
                }

                src += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);

            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return -1;
            }

            /* at most 4 bytes for the 6 or 12 read */
            d = ngx_http_reductrai_utf8(d, cp);
            continue;

        default:
            return -1;
        }

        src += 2;
    }

    return d - dst;
}


static int
ngx_http_reductrai_hex4(const u_char *p, unsigned *v)
{
    int  i;

    *v = 0;

    for (i = 0; i < 4; i++) {
        *v <<= 4;

        if (p[i] >= '0' && p[i] <= '9') {
            *v |= (unsigned) (p[i] - '0');

        } else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f') {
            *v |= (unsigned) ((p[i] | 0x20) - 'a' + 10);

        } else {
            return -1;
        }
    }

    return 0;
}


static u_char *
ngx_http_reductrai_utf8(u_char *p, unsigned cp)
{
    if (cp < 0x800) {
        *p++ = (u_char) (0xc0 | (cp >> 6));
        *p++ = (u_char) (0x80 | (cp & 0x3f));

    } else if (cp < 0x10000) {
        *p++ = (u_char) (0xe0 | (cp >> 12));
        *p++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
        *p++ = (u_char) (0x80 | (cp & 0x3f));

    } else {
        *p++ = (u_char) (0xf0 | (cp >> 18));
        *p++ = (u_char) (0x80 | ((cp >> 12) & 0x3f));
        *p++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
        *p++ = (u_char) (0x80 | (cp & 0x3f));
    }

    return p;
}


ssize_t
ngx_http_reductrai_body_b64_decode(u_char *dst, const u_char *src, size_t len)
{
    int        c, n;
    u_char    *d;
    size_t     i, pad;
    uint32_t   acc;

    if (len % 4 != 0) {
        return -1;
    }

    pad = 0;

    if (len > 0 && src[len - 1] == '=') {
        pad = (len > 1 && src[len - 2] == '=') ? 2 : 1;
    }

    d = dst;
    acc = 0;
    n = 0;

    for (i = 0; i < len - pad; i++) {
        c = ngx_http_reductrai_b64_value[src[i]];
        if (c < 0) {
            return -1;
        }

        acc = (acc << 6) | (uint32_t) c;

        if (++n == 4) {
            *d++ = (u_char) (acc >> 16);
            *d++ = (u_char) (acc >> 8);
            *d++ = (u_char) acc;
            acc = 0;
            n = 0;
        }
    }

    if (n == 3) {
        *d++ = (u_char) (acc >> 10);
        *d++ = (u_char) (acc >> 2);

    } else if (n == 2) {
        *d++ = (u_char) (acc >> 4);

    } else if (n == 1) {
        return -1;
    }

    return d - dst;
}
