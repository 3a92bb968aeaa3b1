
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Reading archive objects back: a streaming reader that takes an object's
 * bytes in pieces (a storage get() sink, or a file read loop), decodes the
 * zstd stream, hands every NDJSON line to a callback and keeps the object's
 * last bytes, so that the trailer is found without a second request.  Memory
 * is bounded by the longest line, whatever the object's size.
 *
 * Also here: a view of one record line (the spans of its fields, without
 * building a tree, so a 64 MB body is skipped rather than parsed) and the
 * inverse of the record encoder's string escaping and base64.
 */


#ifndef _NGX_HTTP_REDUCTRAI_READER_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_READER_H_INCLUDED_


#include "ngx_http_reductrai_core.h"
#include "ngx_http_reductrai_segment.h"


/* a body of 64 MB as base64 is 86 MB; anything longer is not a record */
#define NGX_HTTP_REDUCTRAI_LINE_MAX  (256 * 1024 * 1024)


typedef enum {
    NGX_HTTP_REDUCTRAI_READ_OK = 0,
    NGX_HTTP_REDUCTRAI_READ_STOPPED,        /* the line handler said stop */
    NGX_HTTP_REDUCTRAI_READ_CORRUPT,        /* zstd refused the data */
    NGX_HTTP_REDUCTRAI_READ_TRUNCATED,      /* the stream ends in a frame */
    NGX_HTTP_REDUCTRAI_READ_PARTIAL_LINE,   /* data after the last '\n' */
    NGX_HTTP_REDUCTRAI_READ_LINE_TOO_LONG,
    NGX_HTTP_REDUCTRAI_READ_NOMEM
} ngx_http_reductrai_read_rc_e;


/* a line without its '\n'; returns 0 to go on, non-zero to stop */
typedef int (*ngx_http_reductrai_line_pt)(void *data, const u_char *line,
    size_t len);


#define NGX_HTTP_REDUCTRAI_READ_SHA256  0x1


typedef struct {
    void                           *dctx;       /* ZSTD_DStream */
    void                           *sha;        /* EVP_MD_CTX, or NULL */
    u_char                         *out;
    size_t                          out_size;

    ngx_http_reductrai_buf_t        line;       /* a line across pieces */

    ngx_http_reductrai_line_pt      handler;
    void                           *data;

    /* the first bytes (frame header) and the last ones (trailer) */
    u_char                          head[8];
    size_t                          head_len;
    u_char                          tail[NGX_HTTP_REDUCTRAI_TRAILER_MAX];
    size_t                          tail_len;

    size_t                          frame_left; /* zstd's last hint */
    uint64_t                        in_bytes;   /* compressed, seen */
    uint64_t                        raw_bytes;  /* decompressed */
    uint64_t                        lines;

    ngx_http_reductrai_read_rc_e    rc;
    char                            error[160];
} ngx_http_reductrai_reader_t;


typedef struct {
    ngx_http_reductrai_read_rc_e    rc;
    const char                     *error;      /* one line, or "" */
    uint64_t                        in_bytes;
    uint64_t                        raw_bytes;
    uint64_t                        lines;
    unsigned                        has_trailer:1;
    unsigned                        no_checksum:1;  /* first frame */
    ngx_http_reductrai_trailer_t    trailer;
    u_char                          sha256[32];  /* with READ_SHA256 */
} ngx_http_reductrai_read_result_t;


int ngx_http_reductrai_reader_init(ngx_http_reductrai_reader_t *r,
    unsigned flags, ngx_http_reductrai_line_pt handler, void *data);

/*
 * Takes the next bytes of the object (an ngx_http_reductrai_sink_pt).
 * Returns 0, or -1 once reading cannot go on (r->rc says why); the lines
 * decoded before an error have been delivered.
 */
int ngx_http_reductrai_reader_feed(void *r, const u_char *p, size_t len);

/* the object has ended: checks that nothing is left over, finds trailer */
void ngx_http_reductrai_reader_finish(ngx_http_reductrai_reader_t *r,
    ngx_http_reductrai_read_result_t *res);

/* ready for another object, keeping the buffers */
int ngx_http_reductrai_reader_reset(ngx_http_reductrai_reader_t *r);
void ngx_http_reductrai_reader_free(ngx_http_reductrai_reader_t *r);


/*
 * The fields of one record line.  String fields hold the text between the
 * quotes, still escaped; data == NULL means null or absent.  body is the
 * raw JSON value, body_b64 the base64 text.  size is -1 when absent,
 * forwarded -1 when absent.
 */
typedef struct {
    ngx_http_reductrai_str_t   id;
    ngx_http_reductrai_str_t   ts;
    ngx_http_reductrai_str_t   stream;
    ngx_http_reductrai_str_t   method;
    ngx_http_reductrai_str_t   uri;
    ngx_http_reductrai_str_t   host;
    ngx_http_reductrai_str_t   client;
    ngx_http_reductrai_str_t   request_id;
    ngx_http_reductrai_str_t   content_type;
    ngx_http_reductrai_str_t   content_encoding;
    ngx_http_reductrai_str_t   user_agent;
    ngx_http_reductrai_str_t   api_key_fp;
    ngx_http_reductrai_str_t   decode_error;
    ngx_http_reductrai_str_t   body_format;
    ngx_http_reductrai_str_t   body;
    ngx_http_reductrai_str_t   body_b64;
    int64_t                    size;
    int                        forwarded;
    int64_t                    ts_ms;       /* ts parsed, or -1 */
} ngx_http_reductrai_record_view_t;


/*
 * Fills a view of a record line: one JSON object whose members are
 * scanned, not validated (ngx_http_reductrai_json_minify() validates).
 * Unknown members are skipped.  Returns 0, or -1 with a reason in *err.
 */
int ngx_http_reductrai_record_view(const u_char *line, size_t len,
    ngx_http_reductrai_record_view_t *v, const char **err);

/*
 * Undoes JSON string escaping as the record encoder applies it: \u00XX
 * gives the byte XX (the encoder writes each byte of invalid UTF-8 that
 * way), other \uXXXX (and surrogate pairs) give UTF-8.  dst must hold len
 * bytes.  Returns the length written, or -1 for an invalid escape.
 */
ssize_t ngx_http_reductrai_json_unescape(u_char *dst, const u_char *src,
    size_t len);

/* standard base64 with padding; dst holds len / 4 * 3; -1 if invalid */
ssize_t ngx_http_reductrai_body_b64_decode(u_char *dst, const u_char *src,
    size_t len);


#endif /* _NGX_HTTP_REDUCTRAI_READER_H_INCLUDED_ */
