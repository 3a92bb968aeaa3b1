
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_transcode.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>


static int ngx_http_reductrai_transcode_frames(
    ngx_http_reductrai_frame_reader_t *rd, ngx_http_reductrai_segment_t *seg,
    const char *tmp_path, const ngx_http_reductrai_transcode_conf_t *conf,
    ngx_http_reductrai_transcode_t *res);
static int ngx_http_reductrai_zero_tail(int fd, off_t from, off_t size);
static void ngx_http_reductrai_transcode_done(
    ngx_http_reductrai_segment_t *seg,
    const ngx_http_reductrai_transcode_conf_t *conf);


int
ngx_http_reductrai_transcode(int fd, const char *tmp_path,
    const char *sealed_path, const ngx_http_reductrai_transcode_conf_t *conf,
    ngx_http_reductrai_transcode_t *res)
{
    int                                err;
    ngx_http_reductrai_segment_t       own, *seg;
    ngx_http_reductrai_frame_reader_t  rd;

    memset(res, 0, sizeof(ngx_http_reductrai_transcode_t));
    seg = conf->seg;

    if (seg == NULL) {
        seg = &own;
        ngx_http_reductrai_segment_init(seg);
    }

    /* a temporary left by a seal that crashed: ours, since we hold the log */
    (void) unlink(tmp_path);

    res->end = ngx_http_reductrai_frame_reader_open(&rd, fd);
    res->log_bytes = rd.size;

    if (res->end == NGX_HTTP_REDUCTRAI_FRAME_OK) {
        if (ngx_http_reductrai_transcode_frames(&rd, seg, tmp_path, conf,
                                                res)
            != NGX_HTTP_REDUCTRAI_OK)
        {
            err = errno;
            goto failed;
        }
    }

    if (res->end == NGX_HTTP_REDUCTRAI_FRAME_IO_ERROR) {
        err = errno;
        goto failed;
    }

    /* zeros past the end: a tail that was never synced, not corruption */

    if (res->end == NGX_HTTP_REDUCTRAI_FRAME_CORRUPT
        && ngx_http_reductrai_zero_tail(fd, res->valid_bytes, rd.size) == 1)
    {
        res->end = NGX_HTTP_REDUCTRAI_FRAME_TORN;
    }

    if (seg->fd == -1) {
        if (res->end == NGX_HTTP_REDUCTRAI_FRAME_CORRUPT) {
            ngx_http_reductrai_frame_reader_free(&rd);
            return NGX_HTTP_REDUCTRAI_OK;
        }

        if (ngx_http_reductrai_segment_open(seg, tmp_path, conf->level)
            != NGX_HTTP_REDUCTRAI_OK)
        {
            err = errno;
            goto failed;
        }
    }

    if (ngx_http_reductrai_segment_seal(seg, sealed_path, conf->sync)
        != NGX_HTTP_REDUCTRAI_OK)
    {
        err = errno;
        goto failed;
    }

    res->trailer = seg->stats;
    res->file_bytes = seg->file_bytes;
    res->written = 1;

    ngx_http_reductrai_transcode_done(seg, conf);
    ngx_http_reductrai_frame_reader_free(&rd);

    return NGX_HTTP_REDUCTRAI_OK;

failed:

    if (seg->fd != -1) {
        (void) unlink(seg->path);
    }

    ngx_http_reductrai_transcode_done(seg, conf);
    ngx_http_reductrai_frame_reader_free(&rd);

    errno = err;

    return NGX_HTTP_REDUCTRAI_ERROR;
}


/*
 * Every intact frame becomes a line: the head as the event loop wrote it,
 * then the decoded body.  res->end tells why the reading stopped.
 */

static int
ngx_http_reductrai_transcode_frames(ngx_http_reductrai_frame_reader_t *rd,
    ngx_http_reductrai_segment_t *seg, const char *tmp_path,
    const ngx_http_reductrai_transcode_conf_t *conf,
    ngx_http_reductrai_transcode_t *res)
{
    int                                  rc;
    size_t                               decoded;
    ngx_http_reductrai_frame_t          *f;
    ngx_http_reductrai_record_encoder_t  enc;

    memset(&enc, 0, sizeof(ngx_http_reductrai_record_encoder_t));
    f = &rd->frame;
    rc = NGX_HTTP_REDUCTRAI_OK;

    for ( ;; ) {
        res->valid_bytes = rd->offset;
        res->end = ngx_http_reductrai_frame_next(rd);

        if (res->end != NGX_HTTP_REDUCTRAI_FRAME_OK) {
            break;
        }

        if (seg->fd == -1
            && ngx_http_reductrai_segment_open(seg, tmp_path, conf->level)
               != NGX_HTTP_REDUCTRAI_OK)
        {
            rc = NGX_HTTP_REDUCTRAI_ERROR;
            break;
        }

        if (ngx_http_reductrai_segment_write(seg, rd->head, f->head_len)
            != NGX_HTTP_REDUCTRAI_OK
            || ngx_http_reductrai_record_body(&enc,
                                   (ngx_http_reductrai_encoding_e) f->coding,
                                   f->format, rd->body, (size_t) f->body_len,
                                   conf->max_decoded,
                                   ngx_http_reductrai_segment_write, seg,
                                   &decoded)
               != NGX_HTTP_REDUCTRAI_OK)
        {
            rc = NGX_HTTP_REDUCTRAI_ERROR;
            break;
        }

        ngx_http_reductrai_segment_record(seg, f->ts_ms);
        res->decoded += decoded;
    }

    ngx_http_reductrai_record_encoder_free(&enc);

    return rc;
}


/* the file goes; a segment the caller keeps keeps its context */

static void
ngx_http_reductrai_transcode_done(ngx_http_reductrai_segment_t *seg,
    const ngx_http_reductrai_transcode_conf_t *conf)
{
    if (seg == conf->seg) {
        ngx_http_reductrai_segment_close(seg);

    } else {
        ngx_http_reductrai_segment_free(seg);
    }
}


/* 1 when fd holds only zero bytes in [from, size), 0 if not, -1 on error */

static int
ngx_http_reductrai_zero_tail(int fd, off_t from, off_t size)
{
    u_char   buf[16384];
    size_t   i;
    ssize_t  n;

    while (from < size) {
        n = pread(fd, buf, sizeof(buf), from);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            return -1;
        }

        for (i = 0; i < (size_t) n; i++) {
            if (buf[i] != 0) {
                return 0;
            }
        }

        from += n;
    }

    return 1;
}
