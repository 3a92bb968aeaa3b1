
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Names of segments: the object key in storage and the file name in the
 * spool.  Both carry the same identity, so a segment keeps its key through
 * crashes, recovery and retries, and uploads stay idempotent.
 *
 *   key:    PREFIX/stream=S/dt=YYYY-MM-DD/hour=HH/INST-PID-STARTMS-SEQ.ndjson.zst
 *   spool:  S,YYYY-MM-DD,HH,INST-PID-STARTMS-SEQ,FIRSTMS.log   (being written)
 *           S,YYYY-MM-DD,HH,INST-PID-STARTMS-SEQ,FIRSTMS.zst   (sealed)
 *           S,YYYY-MM-DD,HH,INST-PID-STARTMS-SEQ,FIRSTMS.open  (being written
 *                                 by a version before the spool log: a zstd
 *                                 stream, recovered as such after an upgrade)
 *
 * FIRSTMS (the time of the segment's first record) lets the spool scan
 * compute the archive lag without opening files.  Stream and instance
 * names never hold ',' or '/', so spool names split on ','; the instance
 * may hold '-', so the key's file name is parsed from the right.
 */


#ifndef _NGX_HTTP_REDUCTRAI_KEY_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_KEY_H_INCLUDED_


#include "ngx_http_reductrai_core.h"


#define NGX_HTTP_REDUCTRAI_STREAM_MAX    32
#define NGX_HTTP_REDUCTRAI_INSTANCE_MAX  64
#define NGX_HTTP_REDUCTRAI_NAME_MAX      256
#define NGX_HTTP_REDUCTRAI_SEQ_DIGITS    8

#define NGX_HTTP_REDUCTRAI_OPEN_SUFFIX    ".open"
#define NGX_HTTP_REDUCTRAI_LOG_SUFFIX     ".log"
#define NGX_HTTP_REDUCTRAI_SEALED_SUFFIX  ".zst"
#define NGX_HTTP_REDUCTRAI_KEY_SUFFIX     ".ndjson.zst"

#define NGX_HTTP_REDUCTRAI_HOUR_MS  3600000


typedef enum {
    NGX_HTTP_REDUCTRAI_SPOOL_OPEN = 0,
    NGX_HTTP_REDUCTRAI_SPOOL_SEALED,
    NGX_HTTP_REDUCTRAI_SPOOL_LOG
} ngx_http_reductrai_spool_state_e;

#define NGX_HTTP_REDUCTRAI_SPOOL_STATES  3


typedef struct {
    char        stream[NGX_HTTP_REDUCTRAI_STREAM_MAX + 1];
    char        instance[NGX_HTTP_REDUCTRAI_INSTANCE_MAX + 1];
    int64_t     hour;           /* hours since the epoch (UTC) */
    int64_t     pid;
    int64_t     start_ms;       /* when the writing worker started */
    uint64_t    seq;            /* per worker and stream, from 1 */
    int64_t     first_ms;       /* spool names only */
} ngx_http_reductrai_segment_id_t;


/* [a-z0-9_-]{1,32} */
int ngx_http_reductrai_valid_stream(const u_char *s, size_t len);

/* [A-Za-z0-9._-]{1,64} */
int ngx_http_reductrai_valid_instance(const u_char *s, size_t len);

/*
 * Each formatter writes a NUL-terminated name and returns its length, or 0
 * when size is too small.  Parsers return 0 or -1.
 */
size_t ngx_http_reductrai_spool_name(char *buf, size_t size,
    const ngx_http_reductrai_segment_id_t *id,
    ngx_http_reductrai_spool_state_e state);
int ngx_http_reductrai_spool_name_parse(const char *name,
    ngx_http_reductrai_segment_id_t *id,
    ngx_http_reductrai_spool_state_e *state);

/* the object key; prefix may be empty */
size_t ngx_http_reductrai_object_key(char *buf, size_t size,
    const char *prefix, const ngx_http_reductrai_segment_id_t *id);

/* the "stream=S/dt=D/hour=H/" directory of a key (with prefix) */
size_t ngx_http_reductrai_object_dir(char *buf, size_t size,
    const char *prefix, const char *stream, int64_t hour);

/* parses a key from the right; whatever precedes "stream=" is the prefix */
int ngx_http_reductrai_object_key_parse(const char *key, size_t len,
    ngx_http_reductrai_segment_id_t *id);


#endif /* _NGX_HTTP_REDUCTRAI_KEY_H_INCLUDED_ */
