
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The spool log: an open segment as the event loop writes it, one frame
 * per request, the body exactly as it arrived on the wire.  Nothing is
 * decoded or compressed to write it; the seal job reads it once and
 * transcodes it into an archive object (ngx_http_reductrai_transcode.h).
 *
 *   file:   "RDXSPOOL" u32 version  u32 0                        16 bytes
 *   frame:  u32 magic "RDXF"  u32 crc32c  u32 head_len
 *           u8 coding  u8 format  u8 pending  u8 0
 *           u64 body_len  i64 ts_ms                                 32 bytes
 *           head (the record's JSON head)  body (wire bytes)
 *
 * Integers are little-endian.  The CRC-32C covers everything after itself:
 * the rest of the frame header, the head and the body.  A reader takes
 * frames up to the first one that is incomplete (a torn tail: the write
 * that was cut short was never acknowledged) or whose magic or checksum
 * does not hold (corruption: what follows is kept aside, never guessed at).
 * A frame that a thread is still appending (its body copied from a file)
 * says "pending" until its header is written again with the checksum: a
 * last frame still pending is a torn tail too.
 */


#ifndef _NGX_HTTP_REDUCTRAI_FRAME_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_FRAME_H_INCLUDED_


#include "ngx_http_reductrai_core.h"


#define NGX_HTTP_REDUCTRAI_LOG_MAGIC        "RDXSPOOL"
#define NGX_HTTP_REDUCTRAI_LOG_VERSION      1
#define NGX_HTTP_REDUCTRAI_LOG_HEADER       16
#define NGX_HTTP_REDUCTRAI_FRAME_MAGIC      0x46584452      /* "RDXF" */
#define NGX_HTTP_REDUCTRAI_FRAME_HEADER     32
/* what the reader takes from the file at a time, at least */
#define NGX_HTTP_REDUCTRAI_READ_AHEAD       (256 * 1024)
/* a head is a few hundred bytes; more is not one of ours */
#define NGX_HTTP_REDUCTRAI_FRAME_HEAD_MAX   (1024 * 1024)


typedef struct {
    uint32_t         crc;
    uint32_t         head_len;
    unsigned         coding;
    unsigned         format;
    uint64_t         body_len;
    int64_t          ts_ms;
    unsigned         pending;
} ngx_http_reductrai_frame_t;


typedef enum {
    NGX_HTTP_REDUCTRAI_FRAME_OK = 0,
    NGX_HTTP_REDUCTRAI_FRAME_END,         /* the log ends after a frame */
    NGX_HTTP_REDUCTRAI_FRAME_TORN,        /* an incomplete last frame */
    NGX_HTTP_REDUCTRAI_FRAME_CORRUPT,     /* bad magic or checksum */
    NGX_HTTP_REDUCTRAI_FRAME_IO_ERROR     /* errno */
} ngx_http_reductrai_frame_rc_e;


/*
 * Reads a log from the start, one frame at a time, through a window of the
 * file: head and body point into it until the next frame is read.
 */
typedef struct {
    int                          fd;
    off_t                        offset;      /* of the next frame */
    off_t                        size;        /* of the file when opened */
    ngx_http_reductrai_buf_t     buf;         /* the window */
    off_t                        window_off;  /* the file offset of buf */
    ngx_http_reductrai_frame_t   frame;
    const u_char                *head;
    const u_char                *body;
} ngx_http_reductrai_frame_reader_t;


/* CRC-32C (Castagnoli); with SSE 4.2 where the processor has it */
uint32_t ngx_http_reductrai_crc32c(uint32_t crc, const u_char *p, size_t len);

/* the 16 bytes that start a log */
void ngx_http_reductrai_log_header(u_char *buf);

/*
 * Writes a frame header for a head and body whose CRC-32C (of head, then
 * body, started from frame_crc_start()) the caller computed in data_crc.
 */
uint32_t ngx_http_reductrai_frame_crc_start(
    const ngx_http_reductrai_frame_t *f);
void ngx_http_reductrai_frame_header(u_char *buf,
    const ngx_http_reductrai_frame_t *f, uint32_t data_crc);

/*
 * Decodes the header in buf[0..FRAME_HEADER): 0, or -1 when its magic or
 * lengths cannot be ours.  The checksum is the caller's to verify.
 */
int ngx_http_reductrai_frame_parse(const u_char *buf,
    ngx_http_reductrai_frame_t *f);

/*
 * Starts reading fd (its size is taken now: frames appended later are not
 * read).  Returns OK, END for an empty file, TORN for a file shorter than
 * its header, CORRUPT when the header is not a log's, or IO_ERROR.
 */
ngx_http_reductrai_frame_rc_e ngx_http_reductrai_frame_reader_open(
    ngx_http_reductrai_frame_reader_t *rd, int fd);

/* the next frame into rd->frame, rd->head and rd->body */
ngx_http_reductrai_frame_rc_e ngx_http_reductrai_frame_next(
    ngx_http_reductrai_frame_reader_t *rd);

void ngx_http_reductrai_frame_reader_free(
    ngx_http_reductrai_frame_reader_t *rd);


#endif /* _NGX_HTTP_REDUCTRAI_FRAME_H_INCLUDED_ */
