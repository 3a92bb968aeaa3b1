
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Sealing: a spool log (wire bytes, ngx_http_reductrai_frame.h) becomes an
 * archive object (ngx_http_reductrai_segment.h).  Each body is decoded,
 * printed as its record's line and the whole object compressed in one zstd
 * stream without intermediate flushes, so a stream of small requests
 * compresses as well as the same lines would in one piece.  Runs in a
 * thread (the module's seal job), in recovery and in the tests alike.
 */


#ifndef _NGX_HTTP_REDUCTRAI_TRANSCODE_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_TRANSCODE_H_INCLUDED_


#include "ngx_http_reductrai_core.h"
#include "ngx_http_reductrai_frame.h"
#include "ngx_http_reductrai_record.h"
#include "ngx_http_reductrai_segment.h"


typedef struct {
    int                            level;
    size_t                         max_decoded;
    int                            sync;         /* fsync the directory */
    /*
     * A segment kept from one call to the next, or NULL: its zstd context
     * (10 MiB and more) is then set up once, not mapped, faulted in and
     * cleared for every object.
     */
    ngx_http_reductrai_segment_t  *seg;
} ngx_http_reductrai_transcode_conf_t;


typedef struct {
    ngx_http_reductrai_trailer_t   trailer;      /* of the object */
    uint64_t                       file_bytes;   /* the object's size */
    uint64_t                       decoded;      /* body bytes archived */
    off_t                          log_bytes;    /* the log's size */
    off_t                          valid_bytes;  /* its readable prefix */
    ngx_http_reductrai_frame_rc_e  end;          /* END, TORN, CORRUPT */
    unsigned                       written:1;    /* an object was made */
} ngx_http_reductrai_transcode_t;


/*
 * Reads the log in fd from its start up to its last intact frame and
 * writes the object: tmp_path, fdatasync, rename to sealed_path.  A log
 * without a single intact frame still becomes an (empty) object, so that
 * no sequence number goes missing, unless it is corrupt: then nothing is
 * written.  When res->end is CORRUPT, bytes after valid_bytes could not be
 * read: the caller keeps the log aside.  Returns 0, or -1 on an I/O error
 * (errno; nothing is left at sealed_path).
 */
int ngx_http_reductrai_transcode(int fd, const char *tmp_path,
    const char *sealed_path, const ngx_http_reductrai_transcode_conf_t *conf,
    ngx_http_reductrai_transcode_t *res);


#endif /* _NGX_HTTP_REDUCTRAI_TRANSCODE_H_INCLUDED_ */
