
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Types shared by the nginx side of the module:
 *
 * along the data:
 *
 *   module.c   directives, configuration, process hooks, small helpers
 *   tap.c      the PRECONTENT handler: read the body, append, wait, resume
 *   spool.c    per worker and stream: the spool log, group fdatasync,
 *              seal triggers
 *   seal.c     the seal job: a log becomes an archive object (threads)
 *   shipper.c  spool scan and recovery, uploads to storage
 *
 * and the leaves that all of them use:
 *
 *   shm.c      counters shared by all workers
 *   status.c   /health and /metrics
 */


#ifndef _NGX_HTTP_REDUCTRAI_MODULE_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_thread_pool.h>

#include "ngx_http_reductrai_core.h"
#include "ngx_http_reductrai_body_format.h"
#include "ngx_http_reductrai_decode.h"
#include "ngx_http_reductrai_frame.h"
#include "ngx_http_reductrai_key.h"
#include "ngx_http_reductrai_record.h"
#include "ngx_http_reductrai_segment.h"
#include "ngx_http_reductrai_storage.h"


#define NGX_HTTP_REDUCTRAI_STREAMS        16
#define NGX_HTTP_REDUCTRAI_OTHER          NGX_HTTP_REDUCTRAI_STREAMS
#define NGX_HTTP_REDUCTRAI_SLOTS          (NGX_HTTP_REDUCTRAI_STREAMS + 1)
/*
 * names that only a variable gives (reductrai_stream $arg_s: chosen by
 * clients) take at most this many slots; the rest stay for names a later
 * reload configures, since slots are kept across reloads
 */
#define NGX_HTTP_REDUCTRAI_DYNAMIC        12

#define NGX_HTTP_REDUCTRAI_ASYNC          0
#define NGX_HTTP_REDUCTRAI_WRITE          1
#define NGX_HTTP_REDUCTRAI_FSYNC          2

#define NGX_HTTP_REDUCTRAI_FULL_AUTO      0
#define NGX_HTTP_REDUCTRAI_FULL_REJECT    1
#define NGX_HTTP_REDUCTRAI_FULL_BYPASS    2

#define NGX_HTTP_REDUCTRAI_FORWARD_VAR    2

/* vendor answer classes of forwarded requests */
#define NGX_HTTP_REDUCTRAI_CLASS_2XX      0
#define NGX_HTTP_REDUCTRAI_CLASS_3XX      1
#define NGX_HTTP_REDUCTRAI_CLASS_4XX      2
#define NGX_HTTP_REDUCTRAI_CLASS_5XX      3
#define NGX_HTTP_REDUCTRAI_CLASS_ERROR    4
#define NGX_HTTP_REDUCTRAI_CLASSES        5

#define NGX_HTTP_REDUCTRAI_STORAGE_UNKNOWN       0
#define NGX_HTTP_REDUCTRAI_STORAGE_CONNECTED     1
#define NGX_HTTP_REDUCTRAI_STORAGE_DISCONNECTED  2

#define NGX_HTTP_REDUCTRAI_ID_LEN        (NGX_HTTP_REDUCTRAI_INSTANCE_MAX + 64)
#define NGX_HTTP_REDUCTRAI_RETRY_AFTER    "5"
#define NGX_HTTP_REDUCTRAI_TICK           250
#define NGX_HTTP_REDUCTRAI_SCAN_INTERVAL  1000
#define NGX_HTTP_REDUCTRAI_PROBE_INTERVAL 30000
#define NGX_HTTP_REDUCTRAI_QUARANTINE     "quarantine"
/* iovecs of one spool write, and of one record's body in it */
#define NGX_HTTP_REDUCTRAI_IOVS           256
#define NGX_HTTP_REDUCTRAI_BODY_IOVS      (NGX_HTTP_REDUCTRAI_IOVS - 2)


typedef struct {
    ngx_http_reductrai_storage_t    *storage;
    ngx_str_t                        spool;
    off_t                            spool_max_size;
    size_t                           buffer_size;
    size_t                           max_decoded_size;
    size_t                           segment_size;
    ngx_msec_t                       segment_age;
    ngx_int_t                        compression_level;
    ngx_str_t                        thread_pool_name;
    ngx_str_t                        upload_thread_pool_name;
    ngx_thread_pool_t               *thread_pool;
    ngx_thread_pool_t               *upload_thread_pool;
    ngx_uint_t                       upload_concurrency;
    ngx_uint_t                       seal_concurrency;
    ngx_str_t                        instance;
    ngx_uint_t                       durability;
    ngx_msec_t                       commit_timeout;
    ngx_shm_zone_t                  *shm_zone;
    ngx_array_t                     *streams;     /* static names */
    ngx_int_t                        request_id_index;
    ngx_uint_t                       tapped;      /* "reductrai on" seen */
    ngx_uint_t                       rejecting;   /* a location may reject */
    u_char                          *storage_file;
    ngx_uint_t                       storage_line;
} ngx_http_reductrai_main_conf_t;


typedef struct {
    ngx_flag_t                       enable;
    ngx_http_complex_value_t        *stream;
    ngx_uint_t                       forward;     /* 0, 1 or _FORWARD_VAR */
    ngx_http_complex_value_t        *forward_var;
    ngx_uint_t                       ack_status;
    ngx_str_t                        ack_body;
    ngx_uint_t                       spool_full;
    ngx_uint_t                       body_format; /* or _FORMAT_AUTO */
    ngx_array_t                     *health_upstreams; /* of names */
    ngx_array_t                     *health_peers;     /* of uscf * */
    ngx_flag_t                       health_live;
    u_char                          *forward_file;
    ngx_uint_t                       forward_line;
    u_char                          *enable_file;
    ngx_uint_t                       enable_line;
} ngx_http_reductrai_loc_conf_t;


/* shared memory: counters of the whole instance, summed over workers */

typedef struct {
    u_char                           name[NGX_HTTP_REDUCTRAI_STREAM_MAX + 1];
    ngx_atomic_t                     ready;
    ngx_atomic_t                     requests;
    ngx_atomic_t                     errors;
    ngx_atomic_t                     upstream[NGX_HTTP_REDUCTRAI_CLASSES];
} ngx_http_reductrai_stream_stats_t;


typedef struct {
    ngx_atomic_t                     start_time;
    ngx_http_reductrai_stream_stats_t  streams[NGX_HTTP_REDUCTRAI_SLOTS];
    ngx_atomic_t                     bytes_received;
    ngx_atomic_t                     bytes_archived;
    ngx_atomic_t                     storage_bytes;
    ngx_atomic_t                     uploads;
    ngx_atomic_t                     upload_errors;
    ngx_atomic_t                     storage_state;
    ngx_atomic_t                     storage_status;  /* last HTTP status */
    ngx_atomic_t                     dropped;
    ngx_atomic_t                     quarantined;
    ngx_atomic_t                     forward_errors;
    ngx_atomic_t                     spool_bytes;
    ngx_atomic_t                     spool_segments;
    ngx_atomic_t                     oldest_ms;     /* 0: nothing unshipped */
    ngx_atomic_t                     last_ok_ms;    /* vendor answered */
    ngx_atomic_t                     last_err_ms;   /* vendor failed */
    ngx_atomic_t                     failing;       /* consecutive failures */
    ngx_atomic_t                     stream_overflow; /* counted as other */
    ngx_atomic_t                     seals_running;   /* seal jobs */
    ngx_atomic_t                     seals_queued;    /* logs waiting */

    /* one worker at a time lists the spool: its pid, its last tick */
    ngx_atomic_t                     scanner;
    ngx_atomic_t                     scanner_seen_ms;
    ngx_atomic_t                     scan_wanted;   /* by an idle worker */
} ngx_http_reductrai_shm_t;


typedef struct ngx_http_reductrai_record_s  ngx_http_reductrai_record_t;
typedef struct ngx_http_reductrai_ctx_s     ngx_http_reductrai_ctx_t;
typedef struct ngx_http_reductrai_stream_s  ngx_http_reductrai_stream_t;
typedef struct ngx_http_reductrai_log_s     ngx_http_reductrai_log_t;
typedef struct ngx_http_reductrai_seal_s    ngx_http_reductrai_seal_t;

/* a record is committed (NGX_OK), failed (NGX_ERROR) or late (NGX_AGAIN) */
typedef void (*ngx_http_reductrai_commit_pt)(ngx_http_reductrai_record_t *rec,
    ngx_int_t rc);
typedef void (*ngx_http_reductrai_seal_pt)(ngx_http_reductrai_seal_t *job);


/* a part of a body that owns its copy: in memory, or in nginx's temp file */
typedef struct {
    off_t                            offset;
    size_t                           len;
    ngx_uint_t                       in_file;
} ngx_http_reductrai_piece_t;


/*
 * A record to append.  One whose body is in memory lives in the request's
 * pool and is written from nginx's own buffers at the end of the event
 * loop pass, while its request waits.  One whose body nginx spilled into a
 * temporary file is "owned": allocated apart, with a copy of the parts in
 * memory and a dup() of the file, since a thread appends it and the
 * request may not wait for it (async, a commit timeout).
 */

struct ngx_http_reductrai_record_s {
    ngx_queue_t                      queue;
    ngx_http_reductrai_commit_pt     handler;     /* NULL: nobody waits */
    void                            *data;
    int64_t                          ts_ms;
    ngx_uint_t                       coding;
    ngx_uint_t                       format;      /* body_format_e */
    u_char                          *head;
    size_t                           head_len;
    ngx_chain_t                     *bufs;        /* the body, in memory */
    size_t                           size;        /* body bytes */
    ngx_uint_t                       niovs;       /* iovecs to write it */
    ngx_int_t                        rc;
    ngx_fd_t                         fd;          /* owned: temp file */
    u_char                          *body;        /* owned: memory parts */
    ngx_uint_t                       npieces;
    ngx_http_reductrai_piece_t      *pieces;
    unsigned                         owned:1;
    unsigned                         queued:1;
    unsigned                         acked:1;     /* answered unwritten */
    u_char                           frame[NGX_HTTP_REDUCTRAI_FRAME_HEADER];
};


struct ngx_http_reductrai_ctx_s {
    ngx_http_request_t              *request;
    ngx_http_reductrai_record_t     *record;      /* while waiting */
    ngx_int_t                        phase_rc;
    ngx_uint_t                       slot;
    ngx_str_t                        id;
    unsigned                         forward:1;
    unsigned                         bypassed:1;
    unsigned                         refused:1;     /* 503 by the policy */
    unsigned                         body_read:1;
};


typedef struct {
    char                             sealed[NGX_HTTP_REDUCTRAI_NAME_MAX];
    uint64_t                         file_bytes;
    uint64_t                         decoded;
    uint64_t                         records;
    int                              error;
    unsigned                         written:1;
    unsigned                         quarantined:1;
    unsigned                         leftover:1;
} ngx_http_reductrai_seal_result_t;


struct ngx_http_reductrai_seal_s {
    ngx_thread_task_t                task;
    int                              fd;
    const char                      *name;
    ngx_http_reductrai_segment_t    *seg;         /* the worker's, kept */
    ngx_http_reductrai_seal_pt       handler;
    void                            *data;
    ngx_http_reductrai_seal_result_t  res;
};


/* a spool log of one stream */

struct ngx_http_reductrai_log_s {
    ngx_queue_t                      queue;       /* waiting for a seal */
    ngx_http_reductrai_stream_t     *stream;
    ngx_http_reductrai_segment_id_t  id;
    char                             name[NGX_HTTP_REDUCTRAI_NAME_MAX];
    int                              fd;
    off_t                            size;
    size_t                           body_bytes;  /* as received */
    ngx_http_reductrai_seal_t        seal;
    unsigned                         syncing:1;
    unsigned                         appending:1;
    unsigned                         dir_synced:1;
};


/* module.c */
ngx_uint_t ngx_http_reductrai_request_format(ngx_http_request_t *r);
extern ngx_module_t  ngx_http_reductrai_module;
ngx_http_reductrai_main_conf_t *ngx_http_reductrai_worker_conf(void);
const char *ngx_http_reductrai_spool_path(void);
int64_t ngx_http_reductrai_now_ms(void);
int64_t ngx_http_reductrai_worker_start_ms(void);
u_char *ngx_http_reductrai_next_id(u_char *p);
void ngx_http_reductrai_record_free(ngx_http_reductrai_record_t *rec);
void ngx_http_reductrai_task_init(ngx_thread_task_t *task,
    void (*handler)(void *data, ngx_log_t *log), ngx_event_handler_pt done,
    void *data, ngx_log_t *log);
ngx_thread_task_t *ngx_http_reductrai_task_create(ngx_cycle_t *cycle,
    void (*handler)(void *data, ngx_log_t *log), ngx_event_handler_pt done,
    void *data);

/* tap.c */
ngx_int_t ngx_http_reductrai_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_reductrai_tap_init(ngx_conf_t *cf);

/* spool.c */
ngx_int_t ngx_http_reductrai_spool_init_process(ngx_cycle_t *cycle);
void ngx_http_reductrai_spool_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_reductrai_spool_append(ngx_http_reductrai_record_t *rec,
    ngx_uint_t slot);
void ngx_http_reductrai_spool_cancel(ngx_http_reductrai_record_t *rec);
ngx_uint_t ngx_http_reductrai_buffer_full(size_t size);
ngx_uint_t ngx_http_reductrai_buffer_pressed(void);
ngx_uint_t ngx_http_reductrai_spool_failing(void);

/* seal.c */
ngx_int_t ngx_http_reductrai_seal_post(ngx_http_reductrai_seal_t *job,
    ngx_log_t *log);
void ngx_http_reductrai_seal_file(int fd, const char *name,
    ngx_http_reductrai_segment_t *seg, ngx_http_reductrai_seal_result_t *res);
void ngx_http_reductrai_seal_report(ngx_http_reductrai_seal_t *job,
    ngx_log_t *log);

/* shipper.c */
ngx_int_t ngx_http_reductrai_shipper_init_process(ngx_cycle_t *cycle);
void ngx_http_reductrai_shipper_add(const char *name, int64_t size);
void ngx_http_reductrai_shipper_tick(ngx_int_t exiting);
ngx_uint_t ngx_http_reductrai_shipper_idle(ngx_int_t exiting);
ngx_uint_t ngx_http_reductrai_log_once(int64_t *last);

/* shm.c */
ngx_int_t ngx_http_reductrai_shm_add(ngx_conf_t *cf,
    ngx_http_reductrai_main_conf_t *rmcf);
void ngx_http_reductrai_shm_init_process(ngx_cycle_t *cycle);
ngx_http_reductrai_shm_t *ngx_http_reductrai_shm(void);
ngx_uint_t ngx_http_reductrai_stream_slot(ngx_str_t *name);
void ngx_http_reductrai_storage_state(ngx_uint_t state, ngx_log_t *log,
    ngx_http_reductrai_storage_err_t *err);
ngx_uint_t ngx_http_reductrai_spool_full(void);
int64_t ngx_http_reductrai_lag(void);
void ngx_http_reductrai_gauge_sub(ngx_atomic_t *gauge,
    ngx_atomic_uint_t value);

/* status.c */
char *ngx_http_reductrai_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_reductrai_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_reductrai_health_merge(ngx_conf_t *cf,
    ngx_http_reductrai_loc_conf_t *prev, ngx_http_reductrai_loc_conf_t *conf);
ngx_int_t ngx_http_reductrai_status_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_buf_t *b);


#endif /* _NGX_HTTP_REDUCTRAI_MODULE_H_INCLUDED_ */
