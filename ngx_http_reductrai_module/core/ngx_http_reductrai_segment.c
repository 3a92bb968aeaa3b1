
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <jansson.h>
#include <zstd.h>


static int ngx_http_reductrai_segment_compress(
    ngx_http_reductrai_segment_t *seg, const u_char *p, size_t len,
    ZSTD_EndDirective mode);
static int ngx_http_reductrai_segment_drain(ngx_http_reductrai_segment_t *seg);
static int ngx_http_reductrai_recover_lines(ngx_http_reductrai_segment_t *out,
    const char *tmp_path, int level, ngx_http_reductrai_buf_t *line,
    const u_char *p, size_t len, ssize_t *kept);
static int64_t ngx_http_reductrai_line_ts(const u_char *line, size_t len);


void
ngx_http_reductrai_segment_init(ngx_http_reductrai_segment_t *seg)
{
    memset(seg, 0, sizeof(ngx_http_reductrai_segment_t));
    seg->fd = -1;
    seg->window_log = NGX_HTTP_REDUCTRAI_SEGMENT_WLOG;
    seg->long_distance = 1;
    seg->ldm_rate = NGX_HTTP_REDUCTRAI_SEGMENT_LDM_RATE;
}


int
ngx_http_reductrai_segment_open(ngx_http_reductrai_segment_t *seg,
    const char *path, int level)
{
    int         fd;
    size_t      len;
    ZSTD_CCtx  *cctx;

    len = strlen(path);
    if (len + 6 >= sizeof(seg->path)) {
        errno = ENAMETOOLONG;
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    if (seg->cctx == NULL) {
        seg->cctx = ZSTD_createCCtx();
        seg->out_size = ZSTD_CStreamOutSize();
        seg->out = malloc(seg->out_size);

        if (seg->cctx == NULL || seg->out == NULL) {
            ngx_http_reductrai_segment_free(seg);
            errno = ENOMEM;
            return NGX_HTTP_REDUCTRAI_ERROR;
        }
    }

    cctx = seg->cctx;

    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);

    if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel,
                                            level))
        || ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1))
        || (seg->window_log
            && ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog,
                                                   seg->window_log)))
        || (seg->long_distance
            && ZSTD_isError(ZSTD_CCtx_setParameter(cctx,
                                       ZSTD_c_enableLongDistanceMatching, 1)))
        || (seg->long_distance && seg->ldm_rate
            && ZSTD_isError(ZSTD_CCtx_setParameter(cctx,
                                                   ZSTD_c_ldmHashRateLog,
                                                   seg->ldm_rate))))
    {
        errno = EINVAL;
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    fd = ngx_http_reductrai_create_locked(path, NULL, 0);
    if (fd == -1) {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    memcpy(seg->path, path, len + 1);
    seg->fd = fd;
    seg->out_len = 0;
    seg->file_bytes = 0;
    memset(&seg->stats, 0, sizeof(ngx_http_reductrai_trailer_t));
    seg->stats.first_ms = -1;
    seg->stats.last_ms = -1;

    return NGX_HTTP_REDUCTRAI_OK;
}


int
ngx_http_reductrai_segment_write(void *data, const u_char *p, size_t len)
{
    ngx_http_reductrai_segment_t  *seg = data;

    seg->stats.raw_bytes += len;

    return ngx_http_reductrai_segment_compress(seg, p, len, ZSTD_e_continue);
}


void
ngx_http_reductrai_segment_record(ngx_http_reductrai_segment_t *seg,
    int64_t ts_ms)
{
    seg->stats.count++;

    if (seg->stats.first_ms == -1 || ts_ms < seg->stats.first_ms) {
        seg->stats.first_ms = ts_ms;
    }

    if (ts_ms > seg->stats.last_ms) {
        seg->stats.last_ms = ts_ms;
    }
}


int
ngx_http_reductrai_segment_flush(ngx_http_reductrai_segment_t *seg, int sync)
{
    if (ngx_http_reductrai_segment_compress(seg, NULL, 0, ZSTD_e_flush)
        != NGX_HTTP_REDUCTRAI_OK)
    {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    if (sync && fdatasync(seg->fd) == -1) {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    return NGX_HTTP_REDUCTRAI_OK;
}


int
ngx_http_reductrai_segment_seal(ngx_http_reductrai_segment_t *seg,
    const char *sealed_path, int sync)
{
    size_t        n, len;
    u_char        trailer[NGX_HTTP_REDUCTRAI_TRAILER_MAX];

    len = strlen(sealed_path);
    if (len >= sizeof(seg->path)) {
        errno = ENAMETOOLONG;
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    if (ngx_http_reductrai_segment_compress(seg, NULL, 0, ZSTD_e_end)
        != NGX_HTTP_REDUCTRAI_OK)
    {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    n = ngx_http_reductrai_trailer_build(trailer, sizeof(trailer),
                                         &seg->stats);

    if (n == 0
        || ngx_http_reductrai_fd_write(seg->fd, trailer, n)
           != NGX_HTTP_REDUCTRAI_OK)
    {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    seg->file_bytes += n;

    /*
     * The data must be on disk before the name says "sealed": a sealed
     * file is shipped as it is, never recovered.
     */

    if (fdatasync(seg->fd) == -1) {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    if (rename(seg->path, sealed_path) == -1) {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    memcpy(seg->path, sealed_path, len + 1);

    if (sync && ngx_http_reductrai_sync_parent(sealed_path) != 0) {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    return NGX_HTTP_REDUCTRAI_OK;
}


void
ngx_http_reductrai_segment_close(ngx_http_reductrai_segment_t *seg)
{
    if (seg->fd != -1) {
        (void) close(seg->fd);
        seg->fd = -1;
    }
}


void
ngx_http_reductrai_segment_free(ngx_http_reductrai_segment_t *seg)
{
    ngx_http_reductrai_segment_close(seg);

    ZSTD_freeCCtx(seg->cctx);
    free(seg->out);

    seg->cctx = NULL;
    seg->out = NULL;
}


static int
ngx_http_reductrai_segment_compress(ngx_http_reductrai_segment_t *seg,
    const u_char *p, size_t len, ZSTD_EndDirective mode)
{
    size_t          rc;
    ZSTD_inBuffer   in;
    ZSTD_outBuffer  out;

    in.src = p;
    in.size = len;
    in.pos = 0;

    for ( ;; ) {
        out.dst = seg->out;
        out.size = seg->out_size;
        out.pos = seg->out_len;

        rc = ZSTD_compressStream2(seg->cctx, &out, &in, mode);
        seg->out_len = out.pos;

        if (ZSTD_isError(rc)) {
            errno = EINVAL;
            return NGX_HTTP_REDUCTRAI_ERROR;
        }

        if (seg->out_len == seg->out_size
            || (mode != ZSTD_e_continue && rc == 0))
        {
            if (ngx_http_reductrai_segment_drain(seg)
                != NGX_HTTP_REDUCTRAI_OK)
            {
                return NGX_HTTP_REDUCTRAI_ERROR;
            }
        }

        if (mode == ZSTD_e_continue ? in.pos == in.size : rc == 0) {
            return NGX_HTTP_REDUCTRAI_OK;
        }
    }
}


static int
ngx_http_reductrai_segment_drain(ngx_http_reductrai_segment_t *seg)
{
    if (seg->out_len == 0) {
        return NGX_HTTP_REDUCTRAI_OK;
    }

    if (ngx_http_reductrai_fd_write(seg->fd, seg->out, seg->out_len)
        != NGX_HTTP_REDUCTRAI_OK)
    {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    seg->file_bytes += seg->out_len;
    seg->out_len = 0;

    return NGX_HTTP_REDUCTRAI_OK;
}


size_t
ngx_http_reductrai_trailer_build(u_char *buf, size_t size,
    const ngx_http_reductrai_trailer_t *t)
{
    int     n;
    u_char  first[NGX_HTTP_REDUCTRAI_TS_LEN + 1];
    u_char  last[NGX_HTTP_REDUCTRAI_TS_LEN + 1];
    u_char  hex[65];
    char    sha[sizeof(",\"sha256\":\"\"") + 64];
    size_t  total;

    *ngx_http_reductrai_format_ts(first, t->first_ms < 0 ? 0 : t->first_ms)
        = '\0';
    *ngx_http_reductrai_format_ts(last, t->last_ms < 0 ? 0 : t->last_ms)
        = '\0';

    /* version 1 only: in version 2 zstd's frame checksum covers the content */
    sha[0] = '\0';

    if (t->has_sha256) {
        *ngx_http_reductrai_hex(hex, t->sha256, 32) = '\0';
        snprintf(sha, sizeof(sha), ",\"sha256\":\"%s\"", hex);
    }

    if (size < 16) {
        return 0;
    }

    n = snprintf((char *) buf + 8, size - 16,
                 "{\"v\":%d,\"count\":%llu,\"first_ts\":\"%s\","
                 "\"last_ts\":\"%s\",\"raw_bytes\":%llu%s}",
                 t->has_sha256 ? 1 : 2, (unsigned long long) t->count,
                 first, last, (unsigned long long) t->raw_bytes, sha);

    if (n < 0 || (size_t) n >= size - 16) {
        return 0;
    }

    total = 8 + (size_t) n + NGX_HTTP_REDUCTRAI_FOOTER_LEN;

    ngx_http_reductrai_put_le32(buf, NGX_HTTP_REDUCTRAI_TRAILER_MAGIC);
    ngx_http_reductrai_put_le32(buf + 4, (uint32_t) (total - 8));
    ngx_http_reductrai_put_le32(buf + total - 8, (uint32_t) total);
    memcpy(buf + total - 4, NGX_HTTP_REDUCTRAI_FOOTER_MAGIC, 4);

    return total;
}


size_t
ngx_http_reductrai_trailer_parse(const u_char *tail, size_t len,
    ngx_http_reductrai_trailer_t *t)
{
    size_t        total, jlen;
    json_t       *root, *v;
    json_int_t    version;
    const char   *s;
    const u_char *frame;
    json_error_t  error;

    if (len < 16 + 2
        || memcmp(tail + len - 4, NGX_HTTP_REDUCTRAI_FOOTER_MAGIC, 4) != 0)
    {
        return 0;
    }

    total = ngx_http_reductrai_get_le32(tail + len - 8);

    if (total < 18 || total > len || total > NGX_HTTP_REDUCTRAI_TRAILER_MAX) {
        return 0;
    }

    frame = tail + len - total;

    if (ngx_http_reductrai_get_le32(frame) != NGX_HTTP_REDUCTRAI_TRAILER_MAGIC
        || ngx_http_reductrai_get_le32(frame + 4) != total - 8)
    {
        return 0;
    }

    jlen = total - 16;

    root = json_loadb((const char *) frame + 8, jlen, 0, &error);
    if (root == NULL) {
        return 0;
    }

    memset(t, 0, sizeof(ngx_http_reductrai_trailer_t));

    version = json_integer_value(json_object_get(root, "v"));

    if (version != 1 && version != 2) {
        goto invalid;
    }

    v = json_object_get(root, "count");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        goto invalid;
    }

    t->count = (uint64_t) json_integer_value(v);

    v = json_object_get(root, "raw_bytes");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        goto invalid;
    }

    t->raw_bytes = (uint64_t) json_integer_value(v);

    s = json_string_value(json_object_get(root, "first_ts"));
    t->first_ms = s ? ngx_http_reductrai_parse_ts((const u_char *) s,
                                                  strlen(s))
                    : -1;

    s = json_string_value(json_object_get(root, "last_ts"));
    t->last_ms = s ? ngx_http_reductrai_parse_ts((const u_char *) s,
                                                 strlen(s))
                   : -1;

    if (t->first_ms < 0 || t->last_ms < 0) {
        goto invalid;
    }

    /* version 1 must carry the digest; version 2 may */

    s = json_string_value(json_object_get(root, "sha256"));

    if (s == NULL && version == 1) {
        goto invalid;
    }

    if (s != NULL) {
        if (strlen(s) != 64
            || ngx_http_reductrai_unhex(t->sha256, (const u_char *) s, 64)
               != 0)
        {
            goto invalid;
        }

        t->has_sha256 = 1;
    }

    json_decref(root);

    return total;

invalid:

    json_decref(root);

    return 0;
}


int
ngx_http_reductrai_trailer_read_fd(int fd, off_t size,
    ngx_http_reductrai_trailer_t *t)
{
    size_t   want;
    ssize_t  n;
    u_char   tail[NGX_HTTP_REDUCTRAI_TRAILER_MAX];

    want = size < (off_t) sizeof(tail) ? (size_t) size : sizeof(tail);

    n = pread(fd, tail, want, size - (off_t) want);
    if (n == -1) {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    if ((size_t) n != want
        || ngx_http_reductrai_trailer_parse(tail, want, t) == 0)
    {
        errno = EINVAL;
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    return NGX_HTTP_REDUCTRAI_OK;
}


/* the "ts" of a record line, or -1 */

static int64_t
ngx_http_reductrai_line_ts(const u_char *line, size_t len)
{
    const u_char  *p, *end;

    static const char  ts[] = "\"ts\":\"";

    /* the id never holds a quote, so the first "ts" key is the field */

    end = line + (len < 256 ? len : 256);

    for (p = line; p + sizeof(ts) - 1 + NGX_HTTP_REDUCTRAI_TS_LEN <= end;
         p++)
    {
        if (*p == '"' && memcmp(p, ts, sizeof(ts) - 1) == 0) {
            return ngx_http_reductrai_parse_ts(p + sizeof(ts) - 1,
                                               NGX_HTTP_REDUCTRAI_TS_LEN);
        }
    }

    return -1;
}


ssize_t
ngx_http_reductrai_segment_recover(int fd, const char *tmp_path,
    const char *sealed_path, int level, ngx_http_reductrai_trailer_t *t,
    int *torn)
{
    int                           err;
    size_t                        rc;
    ssize_t                       n, kept;
    u_char                       *in, *out;
    ZSTD_DCtx                    *dctx;
    ZSTD_inBuffer                 ib;
    ZSTD_outBuffer                ob;
    ngx_http_reductrai_buf_t      line;
    ngx_http_reductrai_segment_t  seg;

    *torn = 0;
    kept = 0;
    rc = 0;
    err = 0;

    ngx_http_reductrai_segment_init(&seg);
    memset(&line, 0, sizeof(ngx_http_reductrai_buf_t));

    dctx = ZSTD_createDCtx();
    in = malloc(ZSTD_DStreamInSize());
    out = malloc(ZSTD_DStreamOutSize());

    if (dctx == NULL || in == NULL || out == NULL) {
        err = ENOMEM;
        goto failed;
    }

    (void) unlink(tmp_path);

    for ( ;; ) {
        n = read(fd, in, ZSTD_DStreamInSize());

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            err = errno;
            goto failed;
        }

        if (n == 0) {
            /* a frame cut short, or data after the last complete line */
            if (rc != 0 || line.len != 0) {
                *torn = 1;
            }

            break;
        }

        ib.src = in;
        ib.size = (size_t) n;
        ib.pos = 0;

        /* an output buffer filled up may hide more: call until it is not */

        for ( ;; ) {
            ob.dst = out;
            ob.size = ZSTD_DStreamOutSize();
            ob.pos = 0;

            rc = ZSTD_decompressStream(dctx, &ob, &ib);

            if (ZSTD_isError(rc)) {
                /* unreadable from here on: keep what came before */
                *torn = 1;
                goto done;
            }

            if (ngx_http_reductrai_recover_lines(&seg, tmp_path, level,
                                                 &line, out, ob.pos, &kept)
                != NGX_HTTP_REDUCTRAI_OK)
            {
                err = errno;
                goto failed;
            }

            if (ib.pos == ib.size && ob.pos < ob.size) {
                break;
            }
        }
    }

done:

    /*
     * A clean stream without records (a worker killed before its first
     * flush) still becomes an object, so no sequence number goes missing.
     */

    if (kept == 0 && !*torn
        && ngx_http_reductrai_segment_open(&seg, tmp_path, level)
           != NGX_HTTP_REDUCTRAI_OK)
    {
        err = errno;
        goto failed;
    }

    if (seg.fd != -1) {
        if (ngx_http_reductrai_segment_seal(&seg, sealed_path, 1)
            != NGX_HTTP_REDUCTRAI_OK)
        {
            err = errno;
            goto failed;
        }

        *t = seg.stats;
    }

    ngx_http_reductrai_segment_free(&seg);
    ngx_http_reductrai_buf_free(&line);
    ZSTD_freeDCtx(dctx);
    free(in);
    free(out);

    return kept;

failed:

    if (seg.fd != -1) {
        (void) unlink(seg.path);
    }

    ngx_http_reductrai_segment_free(&seg);
    ngx_http_reductrai_buf_free(&line);
    ZSTD_freeDCtx(dctx);
    free(in);
    free(out);

    errno = err;

    return -1;
}


/*
 * Splits decoded bytes into lines; a complete line is re-encoded at once,
 * the unfinished one waits in line.
 */

static int
ngx_http_reductrai_recover_lines(ngx_http_reductrai_segment_t *seg,
    const char *tmp_path, int level, ngx_http_reductrai_buf_t *line,
    const u_char *p, size_t len, ssize_t *kept)
{
    size_t         n;
    int64_t        ts;
    const u_char  *nl;

    while (len) {
        nl = memchr(p, '\n', len);
        n = nl ? (size_t) (nl - p) + 1 : len;

        if (ngx_http_reductrai_buf_reserve(line, n) != NGX_HTTP_REDUCTRAI_OK)
        {
            return NGX_HTTP_REDUCTRAI_ERROR;
        }

        memcpy(line->data + line->len, p, n);
        line->len += n;
        p += n;
        len -= n;

        if (nl == NULL) {
            break;
        }

        if (seg->fd == -1
            && ngx_http_reductrai_segment_open(seg, tmp_path, level)
               != NGX_HTTP_REDUCTRAI_OK)
        {
            return NGX_HTTP_REDUCTRAI_ERROR;
        }

        if (ngx_http_reductrai_segment_write(seg, line->data, line->len)
            != NGX_HTTP_REDUCTRAI_OK)
        {
            return NGX_HTTP_REDUCTRAI_ERROR;
        }

        ts = ngx_http_reductrai_line_ts(line->data, line->len);
        ngx_http_reductrai_segment_record(seg, ts < 0 ? 0 : ts);

        line->len = 0;
        (*kept)++;
    }

    return NGX_HTTP_REDUCTRAI_OK;
}
