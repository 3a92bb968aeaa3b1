
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * A segment is one archive object: a standard zstd stream of NDJSON records
 * (frame checksum on) followed by a trailer, a zstd skippable frame that
 * holds a JSON index and ends with an 8-byte footer:
 *
 *   [zstd frame ...][skippable frame: magic, size, {"v":1,...}, L, "RDX1"]
 *
 * where L is the length of the whole skippable frame, so a reader finds the
 * index with one ranged GET of the object's tail.  In the spool the frame is
 * flushed after every batch, so after a crash its readable prefix is exactly
 * the records written so far; recovery cuts the torn tail and seals.
 */


#ifndef _NGX_HTTP_REDUCTRAI_SEGMENT_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_SEGMENT_H_INCLUDED_


#include "ngx_http_reductrai_core.h"

#include <limits.h>


#define NGX_HTTP_REDUCTRAI_TRAILER_MAGIC      0x184D2A50
#define NGX_HTTP_REDUCTRAI_FOOTER_MAGIC       "RDX1"
#define NGX_HTTP_REDUCTRAI_FOOTER_LEN         8
/* a reader fetching this many bytes of an object's tail gets the trailer */
#define NGX_HTTP_REDUCTRAI_TRAILER_MAX        1024

/*
 * The zstd window of a segment: 8 MiB, the default segment size, so that
 * long-distance matching finds what agents repeat from one payload to the
 * next (series names, tag sets, resources), however many other payloads
 * lie between: 15-20% smaller objects than a plain level 1-3 stream.  A
 * writer's context takes about 10 MiB at levels 1-3, a reader needs 8 MiB
 * (zstd and DuckDB accept windows up to 128 MiB by default).
 */
#define NGX_HTTP_REDUCTRAI_SEGMENT_WLOG       23
/*
 * Long-distance matching looks up one position in 2^5 (zstd's default for
 * this window is 2^7): about 10% more CPU for 3% less on agent payloads.
 */
#define NGX_HTTP_REDUCTRAI_SEGMENT_LDM_RATE   5


typedef struct {
    uint64_t         count;
    uint64_t         raw_bytes;
    int64_t          first_ms;          /* earliest record ts */
    int64_t          last_ms;           /* latest record ts */
    u_char           sha256[32];        /* of the decompressed NDJSON */
    /*
     * Version 1 trailers carry sha256; version 2 (what we write) leaves it
     * out: zstd's frame checksum already covers the content, and hashing
     * every byte again cost more CPU per request than the rest of the seal
     * but compression.
     */
    unsigned         has_sha256:1;
} ngx_http_reductrai_trailer_t;


typedef struct {
    int              fd;
    int              window_log;        /* 0: the level's own */
    int              long_distance;     /* long-distance matching */
    int              ldm_rate;          /* its hash rate log, 0: zstd's */
    char             path[PATH_MAX];
    void            *cctx;              /* ZSTD_CCtx, until segment_free */
    u_char          *out;
    size_t           out_size;
    size_t           out_len;
    uint64_t         file_bytes;        /* compressed bytes in the file */
    ngx_http_reductrai_trailer_t  stats;
} ngx_http_reductrai_segment_t;


/*
 * A closed segment, with the window and long-distance matching above (a
 * caller may change them before open).
 */
void ngx_http_reductrai_segment_init(ngx_http_reductrai_segment_t *seg);

/*
 * Creates the file (O_EXCL, mode 0600) and takes an exclusive flock on it,
 * held until close: a segment whose lock can be taken has no live writer.
 */
int ngx_http_reductrai_segment_open(ngx_http_reductrai_segment_t *seg,
    const char *path, int level);

/* compresses NDJSON bytes into the segment (a sink) */
int ngx_http_reductrai_segment_write(void *seg, const u_char *p, size_t len);

/* accounts one complete record (its line has been written) */
void ngx_http_reductrai_segment_record(ngx_http_reductrai_segment_t *seg,
    int64_t ts_ms);

/*
 * Makes everything written so far decodable from the file (ZSTD_e_flush),
 * then fdatasync()s it when sync is set.
 */
int ngx_http_reductrai_segment_flush(ngx_http_reductrai_segment_t *seg,
    int sync);

/*
 * Ends the frame, appends the trailer, fdatasync()s the file and renames it
 * to sealed_path (then fsync()s the directory when sync is set).  The file
 * stays open and locked until close.
 */
int ngx_http_reductrai_segment_seal(ngx_http_reductrai_segment_t *seg,
    const char *sealed_path, int sync);

void ngx_http_reductrai_segment_close(ngx_http_reductrai_segment_t *seg);
void ngx_http_reductrai_segment_free(ngx_http_reductrai_segment_t *seg);

/* the whole skippable frame; returns its length, or 0 if size is short */
size_t ngx_http_reductrai_trailer_build(u_char *buf, size_t size,
    const ngx_http_reductrai_trailer_t *t);

/*
 * Finds the trailer at the end of tail[0..len) (an object's last bytes).
 * Returns the trailer frame's length, or 0 if there is none or it is
 * invalid.
 */
size_t ngx_http_reductrai_trailer_parse(const u_char *tail, size_t len,
    ngx_http_reductrai_trailer_t *t);

/* reads the trailer of a local file; returns 0, or -1 (errno, or EINVAL) */
int ngx_http_reductrai_trailer_read_fd(int fd, off_t size,
    ngx_http_reductrai_trailer_t *t);

/*
 * Recovery: decodes the zstd stream in fd (open, torn, sealed or with a bad
 * trailer) as far as it is readable, keeps every complete line, and writes
 * them as a new sealed object: tmp_path, fsync, rename to sealed_path.
 * Returns the number of records kept; 0 means nothing was readable and no
 * file was written; -1 is an I/O error (errno).  *torn is set when bytes
 * were discarded (a cut tail or unreadable data).
 */
ssize_t ngx_http_reductrai_segment_recover(int fd, const char *tmp_path,
    const char *sealed_path, int level, ngx_http_reductrai_trailer_t *t,
    int *torn);


#endif /* _NGX_HTTP_REDUCTRAI_SEGMENT_H_INCLUDED_ */
