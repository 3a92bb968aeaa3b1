
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Types shared by the nginx side of the module:
 *
 *   module.c   directives, configuration, process hooks
 *   tap.c      the PRECONTENT handler: read the body, submit, wait, resume
 *   writer.c   per worker and stream: encode jobs that append to the spool
 *   shipper.c  spool scan and recovery, uploads to storage
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
#include "ngx_http_reductrai_key.h"
#include "ngx_http_reductrai_record.h"
#include "ngx_http_reductrai_segment.h"
#include "ngx_http_reductrai_storage.h"


#define NGX_HTTP_REDUCTRAI_STREAMS        16
#define NGX_HTTP_REDUCTRAI_OTHER          NGX_HTTP_REDUCTRAI_STREAMS
#define NGX_HTTP_REDUCTRAI_SLOTS          (NGX_HTTP_REDUCTRAI_STREAMS + 1)

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
    ngx_str_t                        instance;
    ngx_uint_t                       durability;
    ngx_msec_t                       commit_timeout;
    ngx_shm_zone_t                  *shm_zone;
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
} ngx_http_reductrai_shm_t;


typedef struct ngx_http_reductrai_record_s  ngx_http_reductrai_record_t;
typedef struct ngx_http_reductrai_ctx_s     ngx_http_reductrai_ctx_t;


/*
 * A part of a body: in the record's copy of the in-memory parts, or in
 * nginx's temporary file.  Records whose body is all in memory have none.
 */
typedef struct {
    off_t                            offset;
    size_t                           len;
    ngx_uint_t                       in_file;
} ngx_http_reductrai_piece_t;


/*
 * A record waiting to be written.  It owns copies of everything it needs
 * (the head, the in-memory body, a dup() of the temporary file), so an
 * encode job never touches request memory and a request may go away, or
 * move on after a commit timeout, while its record is being written.
 */

struct ngx_http_reductrai_record_s {
    ngx_http_reductrai_record_t     *next;
    ngx_http_reductrai_ctx_t        *waiter;
    int64_t                          ts_ms;
    ngx_http_reductrai_encoding_e    coding;
    ngx_uint_t                       format;      /* body_format_e */
    u_char                          *head;
    size_t                           head_len;
    u_char                          *body;        /* in-memory parts */
    size_t                           size;        /* whole body */
    size_t                           cost;        /* against buffer_size */
    ngx_fd_t                         fd;          /* or NGX_INVALID_FILE */
    ngx_uint_t                       npieces;
    ngx_http_reductrai_piece_t      *pieces;
    size_t                           decoded;     /* set by the job */
    ngx_uint_t                       failed;      /* set by the job */
    ngx_uint_t                       acked;       /* answered unwritten */
};


struct ngx_http_reductrai_ctx_s {
    ngx_http_request_t              *request;
    ngx_http_reductrai_record_t     *record;      /* while waiting */
    ngx_event_t                      timer;
    ngx_int_t                        phase_rc;
    ngx_uint_t                       slot;
    ngx_str_t                        id;
    unsigned                         forward:1;
    unsigned                         bypassed:1;
};


/* encode jobs of one stream in one worker */

typedef struct {
    u_char                           name[NGX_HTTP_REDUCTRAI_STREAM_MAX + 1];
    ngx_thread_task_t               *task;

    /* the job's, while busy */
    ngx_http_reductrai_segment_t     seg;
    ngx_http_reductrai_segment_id_t  id;
    ngx_http_reductrai_record_encoder_t  enc;
    ngx_http_reductrai_buf_t         raw;
    ngx_http_reductrai_record_t     *batch;
    ngx_http_reductrai_buf_t         sealed;      /* "name\0size\0"... */
    ngx_uint_t                       seal;        /* seal after the batch */
    int                              error;
    int                              seal_error;
    uint64_t                         flushed;     /* records committed */
    uint64_t                         seq;
    uint64_t                         accounted;   /* file bytes counted */
    int64_t                          spool_delta;
    uint64_t                         archived;
    uint64_t                         body_bytes;  /* in the open segment */
    unsigned                         open:1;

    /* the event loop's */
    ngx_http_reductrai_record_t     *pending;
    ngx_http_reductrai_record_t    **pending_last;
    unsigned                         busy:1;
    unsigned                         seal_requested:1;
} ngx_http_reductrai_writer_t;


/* module.c */
ngx_uint_t ngx_http_reductrai_request_format(ngx_http_request_t *r);
extern ngx_module_t  ngx_http_reductrai_module;

/* tap.c */
ngx_int_t ngx_http_reductrai_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_reductrai_tap_init(ngx_conf_t *cf);
void ngx_http_reductrai_commit_done(ngx_http_reductrai_record_t *rec,
    ngx_int_t ok);

/* writer.c */
ngx_int_t ngx_http_reductrai_writer_init_process(ngx_cycle_t *cycle);
void ngx_http_reductrai_writer_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_reductrai_submit(ngx_http_reductrai_record_t *rec,
    ngx_uint_t slot, ngx_log_t *log);
u_char *ngx_http_reductrai_next_id(u_char *p);
ngx_uint_t ngx_http_reductrai_buffer_full(size_t size);
ngx_uint_t ngx_http_reductrai_buffer_pressed(void);
ngx_uint_t ngx_http_reductrai_spool_failing(void);
void ngx_http_reductrai_record_free(ngx_http_reductrai_record_t *rec);
ngx_http_reductrai_main_conf_t *ngx_http_reductrai_worker_conf(void);
const char *ngx_http_reductrai_spool_path(void);
int64_t ngx_http_reductrai_now_ms(void);

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
