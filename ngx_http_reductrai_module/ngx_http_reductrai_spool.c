
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The spool: one open log per worker and stream (ngx_http_reductrai_frame.h)
 * that the event loop appends to.  Records submitted during one pass of the
 * event loop leave in one pwritev() per stream at its end (a posted event),
 * straight from nginx's buffers: with "write" the requests go on right
 * after it, with "fsync" after one fdatasync() per group in the thread
 * pool.  A body that nginx spilled into a temporary file is appended by a
 * thread job, since reading a file may block; the stream's later records
 * wait for it, so that the log keeps their order.
 *
 * A log seals on size, age, hour change and exit: the seal job (seal.c)
 * transcodes it into an archive object off the event loop and the shipper
 * takes it from there.
 */


#include "ngx_http_reductrai_module.h"

#include <malloc.h>
#include <sys/file.h>
#include <sys/uio.h>


#define NGX_HTTP_REDUCTRAI_COPY_CHUNK     65536
/* allocations from this size up are mapped and unmapped, see below */
#define NGX_HTTP_REDUCTRAI_MMAP_THRESHOLD (4 * 1024 * 1024)
#define NGX_HTTP_REDUCTRAI_EXIT_TIMEOUT   30000
#define NGX_HTTP_REDUCTRAI_EXIT_GRACE     5000


typedef struct {
    ngx_http_reductrai_log_t        *logs[2];     /* the logs to sync */
    int                              fds[2];
    ngx_uint_t                       nlogs;
    int                              dir;         /* sync the directory */
    int                              error;
} ngx_http_reductrai_sync_job_t;


typedef struct {
    ngx_queue_t                      records;     /* owned records */
    int                              fd;
    off_t                            offset;
    int                              error;
} ngx_http_reductrai_append_job_t;


/*
 * Seal jobs at a time per worker, reductrai_seal_concurrency (2): each
 * holds a zstd context (10 MiB at the default level, near 90 MiB at 19),
 * kept from one object to the next, and a body as received, decoded (up to
 * reductrai_max_decoded_size) and minified.  More than one, so that a slow
 * log (a decompression bomb in every record) does not hold up the seals of
 * other streams; a stream seals one log at a time, so that it can take one
 * job only.  Commits never wait for a seal.
 */

typedef struct {
    ngx_http_reductrai_segment_t     seg;         /* the job's, kept */
    ngx_uint_t                       busy;
    ngx_msec_t                       started;
} ngx_http_reductrai_sealer_t;


/*
 * A further seal job starts only beside jobs that have run this long: a
 * seal of a normal log takes tens of milliseconds, and two at once per
 * worker take both CPUs of a small machine from its event loops (one
 * make bench run with two ungated: p99 at half saturation +4.2 ms, 4 KiB;
 * gated runs since: +0.8 to +2.1 ms, within that machine's noise); a seal
 * that takes a second holds a slow record (a decompression bomb), and then
 * another stream's log must not wait for it.
 */
#define NGX_HTTP_REDUCTRAI_SEAL_SLOW      1000


struct ngx_http_reductrai_stream_s {
    u_char                           name[NGX_HTTP_REDUCTRAI_STREAM_MAX + 1];
    uint64_t                         seq;
    ngx_http_reductrai_log_t        *log;         /* open, or NULL */

    ngx_queue_t                      pending;     /* to append */
    ngx_queue_t                      unsynced;    /* written, "fsync" */
    ngx_queue_t                      syncing;     /* in the sync job */
    ngx_http_reductrai_log_t        *rotated;     /* written, not synced */

    ngx_thread_task_t               *sync_task;
    ngx_thread_task_t               *append_task;
    ngx_http_reductrai_sync_job_t    sync;
    ngx_http_reductrai_append_job_t  append;
    ngx_event_t                      timeout;     /* of the job in flight */
    unsigned                         sync_busy:1;
    unsigned                         append_busy:1;
    unsigned                         sealing:1;   /* a log in a seal job */
};


typedef struct {
    ngx_log_t                       *log;
    size_t                           buffered;
    ngx_uint_t                       exiting;
    int64_t                          exit_deadline;
    ngx_uint_t                       spool_failing;
    int64_t                          spool_retry_ms;
    int64_t                          buffer_refused_ms;
    int64_t                          timeout_logged;
    ngx_event_t                      flush;
    ngx_event_t                      tick;
    ngx_queue_t                      to_seal;     /* of logs */
    ngx_uint_t                       sealing;
    ngx_uint_t                       nsealers;
    ngx_http_reductrai_sealer_t     *sealers;
    ngx_http_reductrai_stream_t      streams[NGX_HTTP_REDUCTRAI_SLOTS];
} ngx_http_reductrai_spool_t;


static void ngx_http_reductrai_flush_handler(ngx_event_t *ev);
static void ngx_http_reductrai_stream_run(ngx_http_reductrai_stream_t *s,
    ngx_queue_t *done);
static void ngx_http_reductrai_flush_stream(ngx_http_reductrai_stream_t *s,
    ngx_queue_t *done);
static ngx_uint_t ngx_http_reductrai_log_takes(ngx_http_reductrai_log_t *log,
    ngx_http_reductrai_record_t *rec, size_t bytes);
static ngx_int_t ngx_http_reductrai_rotate(ngx_http_reductrai_stream_t *s);
static void ngx_http_reductrai_write_failed(ngx_http_reductrai_stream_t *s,
    int err, ngx_log_t *log);
static ngx_int_t ngx_http_reductrai_log_open(ngx_http_reductrai_stream_t *s,
    int64_t ts_ms);
static ngx_int_t ngx_http_reductrai_write_group(
    ngx_http_reductrai_stream_t *s, ngx_queue_t *group, ngx_log_t *log);
static ngx_uint_t ngx_http_reductrai_frame_iovs(
    ngx_http_reductrai_record_t *rec, struct iovec *iov);
static void ngx_http_reductrai_written(ngx_http_reductrai_stream_t *s,
    ngx_queue_t *group, ngx_queue_t *done);
static void ngx_http_reductrai_settle(ngx_queue_t *group,
    ngx_http_reductrai_log_t *log);
static void ngx_http_reductrai_fail(ngx_queue_t *group, ngx_queue_t *done);
static void ngx_http_reductrai_complete(ngx_queue_t *done, ngx_int_t rc);
static void ngx_http_reductrai_sync_start(ngx_http_reductrai_stream_t *s);
static void ngx_http_reductrai_sync(void *data, ngx_log_t *log);
static void ngx_http_reductrai_sync_done(ngx_event_t *ev);
static void ngx_http_reductrai_append_start(ngx_http_reductrai_stream_t *s);
static void ngx_http_reductrai_append(void *data, ngx_log_t *log);
static int ngx_http_reductrai_append_record(int fd, off_t *offset,
    ngx_http_reductrai_record_t *rec, u_char *chunk);
static int ngx_http_reductrai_copy_piece(int fd, off_t *offset,
    ngx_http_reductrai_record_t *rec, ngx_http_reductrai_piece_t *pc,
    u_char *chunk, uint32_t *crc);
static void ngx_http_reductrai_append_done(ngx_event_t *ev);
static void ngx_http_reductrai_job_timeout(ngx_event_t *ev);
static void ngx_http_reductrai_seal_enqueue(ngx_http_reductrai_log_t *log);
static ngx_uint_t ngx_http_reductrai_seal_may_start(
    ngx_http_reductrai_spool_t *sp);
static void ngx_http_reductrai_seal_next(void);
static void ngx_http_reductrai_sealed(ngx_http_reductrai_seal_t *job);
static void ngx_http_reductrai_spool_result(ngx_log_t *log, int error);
static void ngx_http_reductrai_tick(ngx_event_t *ev);
static void ngx_http_reductrai_spool_tick(ngx_int_t exiting);
static ngx_uint_t ngx_http_reductrai_spool_idle(void);


static ngx_http_reductrai_spool_t  ngx_http_reductrai_spool;


ngx_int_t
ngx_http_reductrai_spool_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i;
    ngx_http_reductrai_spool_t   *sp;
    ngx_http_reductrai_stream_t  *s;

    sp = &ngx_http_reductrai_spool;

    sp->log = cycle->log;
    ngx_queue_init(&sp->to_seal);

    sp->nsealers = ngx_http_reductrai_worker_conf()->seal_concurrency;
    sp->sealers = ngx_calloc(sp->nsealers * sizeof(ngx_http_reductrai_sealer_t),
                             cycle->log);
    if (sp->sealers == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < sp->nsealers; i++) {
        ngx_http_reductrai_segment_init(&sp->sealers[i].seg);
    }

    /*
     * A seal job's zstd context (about 10 MiB with the segment window) and
     * buffers as large as a decoded body are freed when it ends, but glibc
     * keeps what a thread freed in that thread's arena, and raises its
     * mmap threshold after every large free: each thread of the pool that
     * ever sealed would hold its share.  A fixed threshold gives the
     * largest allocations back to the system at once.
     */

    (void) mallopt(M_MMAP_THRESHOLD, NGX_HTTP_REDUCTRAI_MMAP_THRESHOLD);

    sp->flush.handler = ngx_http_reductrai_flush_handler;
    sp->flush.log = cycle->log;
    sp->flush.data = sp;

    for (i = 0; i < NGX_HTTP_REDUCTRAI_SLOTS; i++) {
        s = &sp->streams[i];

        ngx_queue_init(&s->pending);
        ngx_queue_init(&s->unsynced);
        ngx_queue_init(&s->syncing);

        /* the jobs' data is the stream: they find their part in it */

        s->sync_task = ngx_http_reductrai_task_create(cycle,
                                                 ngx_http_reductrai_sync,
                                                 ngx_http_reductrai_sync_done,
                                                 s);
        s->append_task = ngx_http_reductrai_task_create(cycle,
                                               ngx_http_reductrai_append,
                                               ngx_http_reductrai_append_done,
                                               s);

        if (s->sync_task == NULL || s->append_task == NULL) {
            return NGX_ERROR;
        }

        s->timeout.handler = ngx_http_reductrai_job_timeout;
        s->timeout.data = s;
        s->timeout.log = cycle->log;
        s->timeout.cancelable = 1;
    }

    /*
     * The tick is not cancelable: on a graceful stop the worker waits for
     * it, and it stops only once every log is sealed and shipped (or the
     * time to do so has run out).
     */

    sp->tick.handler = ngx_http_reductrai_tick;
    sp->tick.log = cycle->log;
    sp->tick.data = sp;
    sp->tick.cancelable = 0;

    ngx_add_timer(&sp->tick, NGX_HTTP_REDUCTRAI_TICK);

    return NGX_OK;
}


void
ngx_http_reductrai_spool_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i, left, queued;
    ngx_queue_t                  *q;
    ngx_http_reductrai_shm_t     *sh;
    ngx_http_reductrai_spool_t   *sp;
    ngx_http_reductrai_stream_t  *s;

    sp = &ngx_http_reductrai_spool;
    sh = ngx_http_reductrai_shm();
    left = 0;
    queued = 0;

    for (i = 0; i < NGX_HTTP_REDUCTRAI_SLOTS; i++) {
        s = &sp->streams[i];

        if (s->log != NULL || s->rotated != NULL) {
            left++;
        }
    }

    if (sp->to_seal.next != NULL) {
        for (q = ngx_queue_head(&sp->to_seal);
             q != ngx_queue_sentinel(&sp->to_seal);
             q = ngx_queue_next(q))
        {
            queued++;
        }
    }

    /* the instance's gauges forget this worker's seal jobs */

    if (sh != NULL) {
        ngx_http_reductrai_gauge_sub(&sh->seals_running, sp->sealing);
        ngx_http_reductrai_gauge_sub(&sh->seals_queued, queued);
    }

    left += sp->sealing + queued;

    if (left) {
        /* a fast stop: the next start recovers what is in the spool */
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "reductrai: %ui log(s) left in the spool", left);
    }
}


ngx_uint_t
ngx_http_reductrai_buffer_full(size_t size)
{
    ngx_http_reductrai_spool_t  *sp;

    sp = &ngx_http_reductrai_spool;

    if (sp->buffered + size <= ngx_http_reductrai_worker_conf()->buffer_size)
    {
        return 0;
    }

    sp->buffer_refused_ms = ngx_http_reductrai_now_ms();

    return 1;
}


/*
 * For readiness: the buffer refused a body a moment ago, or is nearly
 * full.  Admission never lets it overflow, so "full" alone never shows.
 */

ngx_uint_t
ngx_http_reductrai_buffer_pressed(void)
{
    size_t                       size;
    ngx_http_reductrai_spool_t  *sp;

    sp = &ngx_http_reductrai_spool;
    size = ngx_http_reductrai_worker_conf()->buffer_size;

    return sp->buffered >= size - size / 16
           || (sp->buffer_refused_ms != 0
               && ngx_http_reductrai_now_ms() - sp->buffer_refused_ms < 1000);
}


ngx_uint_t
ngx_http_reductrai_spool_failing(void)
{
    ngx_http_reductrai_spool_t  *sp;

    sp = &ngx_http_reductrai_spool;

    return sp->spool_failing
           && ngx_http_reductrai_now_ms() < sp->spool_retry_ms;
}


/*
 * Queues a record for the end of this event-loop pass.  Its handler is
 * called once it is committed at the configured durability, or failed.
 */

ngx_int_t
ngx_http_reductrai_spool_append(ngx_http_reductrai_record_t *rec,
    ngx_uint_t slot)
{
    ngx_http_reductrai_spool_t   *sp;
    ngx_http_reductrai_stream_t  *s;

    sp = &ngx_http_reductrai_spool;
    s = &sp->streams[slot];

    if (s->sync_task == NULL) {
        return NGX_ERROR;
    }

    if (s->name[0] == '\0') {
        ngx_cpystrn(s->name, ngx_http_reductrai_shm()->streams[slot].name,
                    sizeof(s->name));
    }

    ngx_queue_insert_tail(&s->pending, &rec->queue);
    rec->queued = 1;
    sp->buffered += rec->size;

    /* an exiting worker whose tick has stopped still seals what it gets */
    if (sp->exiting && !sp->tick.timer_set) {
        ngx_add_timer(&sp->tick, NGX_HTTP_REDUCTRAI_TICK);
    }

    if (!sp->flush.posted) {
        ngx_post_event(&sp->flush, &ngx_posted_events);
    }

    return NGX_OK;
}


/*
 * The request of a record goes away.  A record in nginx's buffers leaves
 * its queue (it was never acknowledged); one in a thread job is the job's
 * until it ends, and only stops resuming anyone.
 */

void
ngx_http_reductrai_spool_cancel(ngx_http_reductrai_record_t *rec)
{
    rec->handler = NULL;
    rec->data = NULL;

    if (rec->owned || !rec->queued) {
        return;
    }

    ngx_queue_remove(&rec->queue);
    rec->queued = 0;
}


static void
ngx_http_reductrai_flush_handler(ngx_event_t *ev)
{
    ngx_uint_t                    i;
    ngx_queue_t                   done;
    ngx_http_reductrai_stream_t  *s;

    ngx_queue_init(&done);

    for (i = 0; i < NGX_HTTP_REDUCTRAI_SLOTS; i++) {
        s = &ngx_http_reductrai_spool.streams[i];

        ngx_http_reductrai_stream_run(s, &done);
    }

    /* the spool is consistent again before any request runs */

    ngx_http_reductrai_complete(&done, NGX_OK);
}


/* what a stream can do now: append what is pending, sync what is written */

static void
ngx_http_reductrai_stream_run(ngx_http_reductrai_stream_t *s,
    ngx_queue_t *done)
{
    ngx_http_reductrai_flush_stream(s, done);

    if (!ngx_queue_empty(&s->unsynced) && !s->sync_busy) {
        ngx_http_reductrai_sync_start(s);
    }
}


/*
 * Appends what the stream has pending, as far as it can now: up to a body
 * in a temporary file (a thread job appends it), or a rotation that must
 * wait for a sync.
 */

static void
ngx_http_reductrai_flush_stream(ngx_http_reductrai_stream_t *s,
    ngx_queue_t *done)
{
    size_t                        bytes;
    ngx_uint_t                    iovs;
    ngx_queue_t                   group, *q;
    ngx_http_reductrai_record_t  *rec;

    while (!ngx_queue_empty(&s->pending) && !s->append_busy) {

        rec = ngx_queue_data(ngx_queue_head(&s->pending),
                             ngx_http_reductrai_record_t, queue);

        if (s->log != NULL
            && !ngx_http_reductrai_log_takes(s->log, rec, 0)
            && ngx_http_reductrai_rotate(s) != NGX_OK)
        {
            /* the sync in flight ends it */
            return;
        }

        if (s->log == NULL
            && ngx_http_reductrai_log_open(s, rec->ts_ms) != NGX_OK)
        {
            ngx_queue_init(&group);
            ngx_queue_add(&group, &s->pending);
            ngx_queue_init(&s->pending);
            ngx_http_reductrai_fail(&group, done);
            return;
        }

        if (rec->owned) {
            ngx_http_reductrai_append_start(s);
            return;
        }

        /* a group of records in memory, as long as the log takes them */

        ngx_queue_init(&group);
        bytes = 0;
        iovs = 0;

        while (!ngx_queue_empty(&s->pending)) {
            q = ngx_queue_head(&s->pending);
            rec = ngx_queue_data(q, ngx_http_reductrai_record_t, queue);

            if (rec->owned
                || rec->niovs + iovs > NGX_HTTP_REDUCTRAI_IOVS
                || !ngx_http_reductrai_log_takes(s->log, rec, bytes))
            {
                break;
            }

            ngx_queue_remove(q);
            ngx_queue_insert_tail(&group, q);
            bytes += rec->size;
            iovs += rec->niovs;
        }

        if (ngx_http_reductrai_write_group(s, &group, ngx_cycle->log)
            != NGX_OK)
        {
            ngx_http_reductrai_fail(&group, done);
            continue;
        }

        ngx_http_reductrai_written(s, &group, done);
    }
}


/*
 * A log takes a record of its hour while it holds less than a segment of
 * bodies, bytes more than it has: a segment never spans an hour.
 */

static ngx_uint_t
ngx_http_reductrai_log_takes(ngx_http_reductrai_log_t *log,
    ngx_http_reductrai_record_t *rec, size_t bytes)
{
    return rec->ts_ms / NGX_HTTP_REDUCTRAI_HOUR_MS == log->id.hour
           && log->body_bytes + bytes
              < ngx_http_reductrai_worker_conf()->segment_size;
}


/*
 * Closes the stream's log to appends and hands it to the seal job, once
 * what it holds is synced ("fsync").  Only one log may wait for its sync:
 * NGX_AGAIN until that one is done.
 */

static ngx_int_t
ngx_http_reductrai_rotate(ngx_http_reductrai_stream_t *s)
{
    ngx_http_reductrai_log_t  *log;

    log = s->log;

    if (log == NULL) {
        return NGX_OK;
    }

    if (s->append_busy) {
        return NGX_AGAIN;
    }

    if (!ngx_queue_empty(&s->unsynced) || log->syncing) {
        if (s->rotated != NULL) {
            return NGX_AGAIN;
        }

        s->rotated = log;
        s->log = NULL;
        return NGX_OK;
    }

    s->log = NULL;
    ngx_http_reductrai_seal_enqueue(log);

    return NGX_OK;
}


/*
 * A write failed (a full disk, an I/O error).  What it wrote is cut off the
 * log again, so that the next record follows an intact one.  A log that
 * never held a record is not data: it goes, and its number is used again,
 * so that a full disk does not leave a trail of empty objects.  One whose
 * end cannot be cut back takes no more records.
 */

static void
ngx_http_reductrai_write_failed(ngx_http_reductrai_stream_t *s, int err,
    ngx_log_t *log)
{
    char                       path[NGX_MAX_PATH];
    ngx_http_reductrai_log_t  *lg;

    lg = s->log;

    ngx_http_reductrai_spool_result(log, err);

    if (lg->body_bytes == 0 && lg->size == NGX_HTTP_REDUCTRAI_LOG_HEADER
        && !lg->syncing)
    {
        ngx_sprintf((u_char *) path, "%s/%s%Z",
                    ngx_http_reductrai_spool_path(), lg->name);

        if (unlink(path) == 0) {
            ngx_http_reductrai_gauge_sub(
                                 &ngx_http_reductrai_shm()->spool_bytes,
                                 NGX_HTTP_REDUCTRAI_LOG_HEADER);
            (void) close(lg->fd);
            s->seq = lg->id.seq - 1;
            s->log = NULL;
            ngx_free(lg);
            return;
        }
    }

    if (ftruncate(lg->fd, lg->size) == 0) {
        return;
    }

    if (ngx_http_reductrai_rotate(s) == NGX_OK) {
        return;
    }

    /* its records are answered already: sealed without waiting */

    s->log = NULL;
    ngx_http_reductrai_seal_enqueue(lg);
}


/* a new log, its header written, locked while this worker writes it */

static ngx_int_t
ngx_http_reductrai_log_open(ngx_http_reductrai_stream_t *s, int64_t ts_ms)
{
    int                              fd, err;
    u_char                           header[NGX_HTTP_REDUCTRAI_LOG_HEADER];
    char                             path[NGX_MAX_PATH];
    size_t                           dir;
    ngx_http_reductrai_log_t        *log;
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_reductrai_worker_conf();

    log = ngx_calloc(sizeof(ngx_http_reductrai_log_t), ngx_cycle->log);
    if (log == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) log->id.stream, s->name, sizeof(log->id.stream));
    ngx_cpystrn((u_char *) log->id.instance, rmcf->instance.data,
                ngx_min(rmcf->instance.len + 1, sizeof(log->id.instance)));

    log->id.hour = ts_ms / NGX_HTTP_REDUCTRAI_HOUR_MS;
    log->id.pid = ngx_pid;
    log->id.start_ms = ngx_http_reductrai_worker_start_ms();
    log->id.seq = s->seq + 1;
    log->id.first_ms = ts_ms;

    dir = ngx_sprintf((u_char *) path, "%V/", &rmcf->spool) - (u_char *) path;

    if (ngx_http_reductrai_spool_name(log->name, sizeof(log->name), &log->id,
                                      NGX_HTTP_REDUCTRAI_SPOOL_LOG)
        == 0
        || dir + ngx_strlen(log->name) >= sizeof(path))
    {
        err = ENAMETOOLONG;
        goto failed;
    }

    ngx_sprintf((u_char *) path + dir, "%s%Z", log->name);
    ngx_http_reductrai_log_header(header);

    fd = ngx_http_reductrai_create_locked(path, header, sizeof(header));
    if (fd == -1) {
        err = ngx_errno;
        goto failed;
    }

    /* a number is used only once a file holds it: gaps mean lost data */

    log->fd = fd;
    log->size = sizeof(header);
    log->stream = s;
    s->seq = log->id.seq;
    s->log = log;

    (void) ngx_atomic_fetch_add(&ngx_http_reductrai_shm()->spool_bytes,
                                sizeof(header));

    return NGX_OK;

failed:

    ngx_http_reductrai_spool_result(ngx_cycle->log, err);
    ngx_free(log);

    return NGX_ERROR;
}


/*
 * One pwritev() for the group, at the log's end: frame headers and heads
 * from the records, bodies from nginx's buffers.  A write cut short is cut
 * off the file again, so that the next frame follows an intact one.
 */

static ngx_int_t
ngx_http_reductrai_write_group(ngx_http_reductrai_stream_t *s,
    ngx_queue_t *group, ngx_log_t *log)
{
    off_t                         offset;
    ssize_t                       n;
    ngx_uint_t                    niov, i;
    ngx_queue_t                  *q;
    struct iovec                  iov[NGX_HTTP_REDUCTRAI_IOVS], *v;
    ngx_http_reductrai_log_t     *lg;
    ngx_http_reductrai_record_t  *rec;

    lg = s->log;
    niov = 0;

    for (q = ngx_queue_head(group);
         q != ngx_queue_sentinel(group);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_reductrai_record_t, queue);
        niov += ngx_http_reductrai_frame_iovs(rec, &iov[niov]);
    }

    offset = lg->size;
    v = iov;

    while (niov) {
        n = pwritev(lg->fd, v, (int) niov, offset);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                continue;
            }

            goto failed;
        }

        if (n == 0) {
            ngx_set_errno(NGX_ENOSPC);
            goto failed;
        }

        offset += n;

        /* past what was written */

        for (i = 0; i < niov && (size_t) n >= v[i].iov_len; i++) {
            n -= v[i].iov_len;
        }

        v += i;
        niov -= i;

        if (niov) {
            v->iov_base = (u_char *) v->iov_base + n;
            v->iov_len -= n;
        }
    }

    (void) ngx_atomic_fetch_add(&ngx_http_reductrai_shm()->spool_bytes,
                                offset - lg->size);
    lg->size = offset;

    ngx_http_reductrai_spool_result(log, 0);

    return NGX_OK;

failed:

    ngx_http_reductrai_write_failed(s, ngx_errno, log);

    return NGX_ERROR;
}


/* the frame header is computed here, over the bytes that will be written */

static ngx_uint_t
ngx_http_reductrai_frame_iovs(ngx_http_reductrai_record_t *rec,
    struct iovec *iov)
{
    size_t                      len;
    uint32_t                    crc;
    ngx_buf_t                  *b;
    ngx_uint_t                  n;
    ngx_chain_t                *cl;
    ngx_http_reductrai_frame_t  f;

    f.head_len = (uint32_t) rec->head_len;
    f.coding = (unsigned) rec->coding;
    f.format = (unsigned) rec->format;
    f.body_len = rec->size;
    f.ts_ms = rec->ts_ms;
    f.pending = 0;

    crc = ngx_http_reductrai_frame_crc_start(&f);
    crc = ngx_http_reductrai_crc32c(crc, rec->head, rec->head_len);

    n = 2;

    /* the tap made sure the body takes at most NGX_HTTP_REDUCTRAI_BODY_IOVS */

    for (cl = rec->bufs; cl != NULL; cl = cl->next) {
        b = cl->buf;
        len = b->last - b->pos;

        if (len == 0) {
            continue;
        }

        crc = ngx_http_reductrai_crc32c(crc, b->pos, len);
        iov[n].iov_base = b->pos;
        iov[n].iov_len = len;
        n++;
    }

    ngx_http_reductrai_frame_header(rec->frame, &f, crc);

    iov[0].iov_base = rec->frame;
    iov[0].iov_len = NGX_HTTP_REDUCTRAI_FRAME_HEADER;
    iov[1].iov_base = rec->head;
    iov[1].iov_len = rec->head_len;

    return n;
}


/*
 * A group leaves the buffer: written into log, or (log NULL) failed.
 */

static void
ngx_http_reductrai_settle(ngx_queue_t *group, ngx_http_reductrai_log_t *log)
{
    ngx_queue_t                  *q;
    ngx_http_reductrai_record_t  *rec;

    for (q = ngx_queue_head(group);
         q != ngx_queue_sentinel(group);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_reductrai_record_t, queue);
        ngx_http_reductrai_spool.buffered -= rec->size;

        if (log != NULL) {
            log->body_bytes += rec->size;

        } else {
            rec->rc = NGX_ERROR;
        }
    }
}


/* the group is in the log: committed now, or after the next sync */

static void
ngx_http_reductrai_written(ngx_http_reductrai_stream_t *s, ngx_queue_t *group,
    ngx_queue_t *done)
{
    ngx_http_reductrai_settle(group, s->log);

    if (ngx_http_reductrai_worker_conf()->durability
        == NGX_HTTP_REDUCTRAI_FSYNC)
    {
        ngx_queue_add(&s->unsynced, group);
        return;
    }

    ngx_queue_add(done, group);
}


static void
ngx_http_reductrai_fail(ngx_queue_t *group, ngx_queue_t *done)
{
    ngx_http_reductrai_settle(group, NULL);
    ngx_queue_add(done, group);
}


/*
 * Hands each record back to its request.  The queue is emptied first: a
 * handler may run a request that submits a new record.
 */

static void
ngx_http_reductrai_complete(ngx_queue_t *done, ngx_int_t rc)
{
    ngx_uint_t                       owned;
    ngx_queue_t                     *q;
    ngx_http_reductrai_commit_pt     handler;
    ngx_http_reductrai_record_t     *rec;

    while (!ngx_queue_empty(done)) {
        q = ngx_queue_head(done);
        ngx_queue_remove(q);

        rec = ngx_queue_data(q, ngx_http_reductrai_record_t, queue);
        rec->queued = 0;

        if (rec->rc == NGX_OK) {
            rec->rc = rc;
        }

        if (rec->rc != NGX_OK && rec->acked) {
            /* answered before it was written, and then not written */
            (void) ngx_atomic_fetch_add(&ngx_http_reductrai_shm()->dropped, 1);
        }

        /* a record in a request's pool may go with the request */

        owned = rec->owned;
        handler = rec->handler;
        rec->handler = NULL;

        if (handler != NULL) {
            handler(rec, rec->rc);
        }

        if (owned) {
            ngx_http_reductrai_record_free(rec);
        }
    }
}


/* group commit: one fdatasync() for every record written since the last */

static void
ngx_http_reductrai_sync_start(ngx_http_reductrai_stream_t *s)
{
    ngx_uint_t                       i;
    ngx_http_reductrai_sync_job_t   *job;
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_reductrai_worker_conf();
    job = &s->sync;

    job->nlogs = 0;
    job->dir = 0;
    job->error = 0;

    if (s->rotated != NULL) {
        job->logs[job->nlogs++] = s->rotated;
    }

    if (s->log != NULL) {
        job->logs[job->nlogs++] = s->log;
    }

    if (job->nlogs == 0) {
        /* records of a log that failed: already answered */
        return;
    }

    for (i = 0; i < job->nlogs; i++) {
        job->fds[i] = job->logs[i]->fd;
        job->logs[i]->syncing = 1;

        /* the name of a new log must survive a power loss too */
        if (!job->logs[i]->dir_synced) {
            job->dir = 1;
        }
    }

    if (ngx_thread_task_post(rmcf->thread_pool, s->sync_task) != NGX_OK) {
        for (i = 0; i < job->nlogs; i++) {
            job->logs[i]->syncing = 0;
        }

        return;
    }

    ngx_queue_add(&s->syncing, &s->unsynced);
    ngx_queue_init(&s->unsynced);
    s->sync_busy = 1;

    ngx_add_timer(&s->timeout, rmcf->commit_timeout);
}


/* runs in a thread */

static void
ngx_http_reductrai_sync(void *data, ngx_log_t *log)
{
    ngx_http_reductrai_stream_t  *s = data;

    ngx_uint_t                      i;
    ngx_http_reductrai_sync_job_t  *job;

    job = &s->sync;

    for (i = 0; i < job->nlogs; i++) {
        if (fdatasync(job->fds[i]) == -1) {
            job->error = errno;
            return;
        }
    }

    if (job->dir
        && ngx_http_reductrai_sync_dir(ngx_http_reductrai_spool_path()) != 0)
    {
        job->error = errno;
    }
}


static void
ngx_http_reductrai_sync_done(ngx_event_t *ev)
{
    ngx_uint_t                      i;
    ngx_queue_t                     done;
    ngx_http_reductrai_log_t       *log;
    ngx_http_reductrai_stream_t    *s;
    ngx_http_reductrai_sync_job_t  *job;

    s = ev->data;
    job = &s->sync;

    s->sync_busy = 0;

    if (s->timeout.timer_set) {
        ngx_del_timer(&s->timeout);
    }

    ngx_http_reductrai_spool_result(ev->log, job->error);

    for (i = 0; i < job->nlogs; i++) {
        log = job->logs[i];
        log->syncing = 0;

        if (job->error == 0) {
            log->dir_synced = 1;
        }
    }

    if (s->rotated != NULL && !s->rotated->syncing
        && ngx_queue_empty(&s->unsynced))
    {
        log = s->rotated;
        s->rotated = NULL;
        ngx_http_reductrai_seal_enqueue(log);
    }

    ngx_queue_init(&done);
    ngx_queue_add(&done, &s->syncing);
    ngx_queue_init(&s->syncing);

    /* records that waited for this sync, and those written meanwhile */

    ngx_http_reductrai_stream_run(s, &done);

    ngx_http_reductrai_complete(&done, job->error ? NGX_ERROR : NGX_OK);
}


/*
 * Bodies in nginx's temporary files: the records at the head of the queue
 * that own a copy of their body (a dup() of the file and the parts in
 * memory) are appended by a thread, which may block reading the file.
 */

static void
ngx_http_reductrai_append_start(ngx_http_reductrai_stream_t *s)
{
    ngx_queue_t                      *q;
    ngx_http_reductrai_record_t      *rec;
    ngx_http_reductrai_main_conf_t   *rmcf;
    ngx_http_reductrai_append_job_t  *job;

    rmcf = ngx_http_reductrai_worker_conf();
    job = &s->append;

    job->fd = s->log->fd;
    job->offset = s->log->size;
    job->error = 0;
    ngx_queue_init(&job->records);

    while (!ngx_queue_empty(&s->pending)) {
        q = ngx_queue_head(&s->pending);
        rec = ngx_queue_data(q, ngx_http_reductrai_record_t, queue);

        if (!rec->owned
            || rec->ts_ms / NGX_HTTP_REDUCTRAI_HOUR_MS != s->log->id.hour)
        {
            break;
        }

        ngx_queue_remove(q);
        ngx_queue_insert_tail(&job->records, q);
    }

    if (ngx_thread_task_post(rmcf->thread_pool, s->append_task) != NGX_OK) {
        /* back in front: the tick tries again */
        ngx_queue_add(&job->records, &s->pending);
        ngx_queue_init(&s->pending);
        ngx_queue_add(&s->pending, &job->records);
        return;
    }

    s->append_busy = 1;
    s->log->appending = 1;

    ngx_add_timer(&s->timeout, rmcf->commit_timeout);
}


/* runs in a thread: touches the job, its own records and the log's fd */

static void
ngx_http_reductrai_append(void *data, ngx_log_t *log)
{
    ngx_http_reductrai_stream_t  *s = data;

    u_char                           *chunk;
    ngx_queue_t                      *q;
    ngx_http_reductrai_record_t      *rec;
    ngx_http_reductrai_append_job_t  *job;

    job = &s->append;

    chunk = malloc(NGX_HTTP_REDUCTRAI_COPY_CHUNK);
    if (chunk == NULL) {
        job->error = ENOMEM;
        return;
    }

    for (q = ngx_queue_head(&job->records);
         q != ngx_queue_sentinel(&job->records);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_reductrai_record_t, queue);

        if (ngx_http_reductrai_append_record(job->fd, &job->offset, rec,
                                             chunk)
            != 0)
        {
            job->error = errno ? errno : EIO;
            break;
        }
    }

    free(chunk);
}


/*
 * The frame header goes first marked pending and is written again once the
 * body has been copied and summed: a crash in between leaves a last frame
 * still pending, which readers take as a torn tail.
 */

static int
ngx_http_reductrai_append_record(int fd, off_t *offset,
    ngx_http_reductrai_record_t *rec, u_char *chunk)
{
    off_t                       start, at;
    uint32_t                    crc;
    ngx_uint_t                  i;
    ngx_http_reductrai_frame_t  f;

    f.head_len = (uint32_t) rec->head_len;
    f.coding = (unsigned) rec->coding;
    f.format = (unsigned) rec->format;
    f.body_len = rec->size;
    f.ts_ms = rec->ts_ms;
    f.pending = 1;

    start = *offset;
    at = start + NGX_HTTP_REDUCTRAI_FRAME_HEADER;

    ngx_http_reductrai_frame_header(rec->frame, &f, 0);

    f.pending = 0;
    crc = ngx_http_reductrai_frame_crc_start(&f);
    crc = ngx_http_reductrai_crc32c(crc, rec->head, rec->head_len);

    if (pwrite(fd, rec->frame, NGX_HTTP_REDUCTRAI_FRAME_HEADER, start)
        != NGX_HTTP_REDUCTRAI_FRAME_HEADER
        || pwrite(fd, rec->head, rec->head_len, at) != (ssize_t) rec->head_len)
    {
        goto failed;
    }

    at += rec->head_len;

    for (i = 0; i < rec->npieces; i++) {
        if (ngx_http_reductrai_copy_piece(fd, &at, rec, &rec->pieces[i],
                                          chunk, &crc)
            != 0)
        {
            goto failed;
        }
    }

    ngx_http_reductrai_frame_header(rec->frame, &f, crc);

    if (pwrite(fd, rec->frame, NGX_HTTP_REDUCTRAI_FRAME_HEADER, start)
        != NGX_HTTP_REDUCTRAI_FRAME_HEADER)
    {
        goto failed;
    }

    *offset = at;

    return 0;

failed:

    if (errno == 0) {
        errno = ENOSPC;
    }

    return -1;
}


static int
ngx_http_reductrai_copy_piece(int fd, off_t *offset,
    ngx_http_reductrai_record_t *rec, ngx_http_reductrai_piece_t *pc,
    u_char *chunk, uint32_t *crc)
{
    size_t         done, len;
    ssize_t        n;
    const u_char  *p;

    for (done = 0; done < pc->len; done += len) {
        len = ngx_min(pc->len - done, NGX_HTTP_REDUCTRAI_COPY_CHUNK);

        if (pc->in_file) {
            n = pread(rec->fd, chunk, len, pc->offset + done);

            if (n == -1 && errno == EINTR) {
                len = 0;
                continue;
            }

            if (n <= 0) {
                errno = n == 0 ? EIO : errno;
                return -1;
            }

            len = (size_t) n;
            p = chunk;

        } else {
            p = rec->body + pc->offset + done;
        }

        *crc = ngx_http_reductrai_crc32c(*crc, p, len);

        if (pwrite(fd, p, len, *offset) != (ssize_t) len) {
            return -1;
        }

        *offset += len;
    }

    return 0;
}


static void
ngx_http_reductrai_append_done(ngx_event_t *ev)
{
    ngx_queue_t                       done, *q;
    ngx_http_reductrai_log_t         *lg;
    ngx_http_reductrai_stream_t      *s;
    ngx_http_reductrai_record_t      *rec;
    ngx_http_reductrai_append_job_t  *job;

    s = ev->data;
    job = &s->append;
    lg = s->log;

    s->append_busy = 0;
    lg->appending = 0;

    if (s->timeout.timer_set) {
        ngx_del_timer(&s->timeout);
    }

    ngx_queue_init(&done);

    if (job->error == 0) {
        (void) ngx_atomic_fetch_add(&ngx_http_reductrai_shm()->spool_bytes,
                                    job->offset - lg->size);
        lg->size = job->offset;
        ngx_http_reductrai_spool_result(ev->log, 0);
        ngx_http_reductrai_written(s, &job->records, &done);

    } else {
        ngx_http_reductrai_write_failed(s, job->error, ev->log);
        ngx_http_reductrai_fail(&job->records, &done);
    }

    for (q = ngx_queue_head(&done);
         q != ngx_queue_sentinel(&done);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_reductrai_record_t, queue);
        rec->queued = 0;
    }

    ngx_http_reductrai_stream_run(s, &done);

    ngx_http_reductrai_complete(&done, NGX_OK);
    ngx_http_reductrai_seal_next();
}


/*
 * A sync or an append took longer than reductrai_commit_timeout: its
 * requests stop waiting (the spool-full policy answers them); the job
 * still finishes what it does.
 */

static void
ngx_http_reductrai_job_timeout(ngx_event_t *ev)
{
    ngx_queue_t                       late, *q;
    ngx_http_reductrai_stream_t      *s;
    ngx_http_reductrai_commit_pt      handler;
    ngx_http_reductrai_record_t      *rec;
    ngx_http_reductrai_main_conf_t   *rmcf;
    ngx_http_reductrai_append_job_t  *job;

    s = ev->data;
    rmcf = ngx_http_reductrai_worker_conf();

    if (ngx_http_reductrai_log_once(
                              &ngx_http_reductrai_spool.timeout_logged))
    {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "reductrai commit took longer than "
                      "reductrai_commit_timeout %M", rmcf->commit_timeout);
    }

    if (!s->append_busy) {
        /* written already: only their sync is late */
        ngx_queue_init(&late);
        ngx_queue_add(&late, &s->syncing);
        ngx_queue_init(&s->syncing);
        ngx_http_reductrai_complete(&late, NGX_AGAIN);
        return;
    }

    /* the job's own records: it frees them when it ends */

    job = &s->append;

    for (q = ngx_queue_head(&job->records);
         q != ngx_queue_sentinel(&job->records);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_reductrai_record_t, queue);

        handler = rec->handler;
        rec->handler = NULL;

        if (handler != NULL) {
            handler(rec, NGX_AGAIN);
        }
    }
}


static void
ngx_http_reductrai_seal_enqueue(ngx_http_reductrai_log_t *log)
{
    ngx_queue_insert_tail(&ngx_http_reductrai_spool.to_seal, &log->queue);
    (void) ngx_atomic_fetch_add(&ngx_http_reductrai_shm()->seals_queued, 1);

    ngx_http_reductrai_seal_next();
}


/*
 * A few seal jobs at a time, so that their memory stays bounded, and one
 * per stream: the oldest log of a stream that is not sealing goes first.
 */

static void
ngx_http_reductrai_seal_next(void)
{
    ngx_uint_t                    i;
    ngx_queue_t                  *q, *next;
    ngx_http_reductrai_shm_t     *sh;
    ngx_http_reductrai_log_t     *log;
    ngx_http_reductrai_spool_t   *sp;
    ngx_http_reductrai_sealer_t  *sealer;

    sp = &ngx_http_reductrai_spool;
    sh = ngx_http_reductrai_shm();

    for (q = ngx_queue_head(&sp->to_seal);
         q != ngx_queue_sentinel(&sp->to_seal) && sp->sealing < sp->nsealers;
         q = next)
    {
        next = ngx_queue_next(q);
        log = ngx_queue_data(q, ngx_http_reductrai_log_t, queue);

        if (log->stream->sealing) {
            continue;
        }

        if (!ngx_http_reductrai_seal_may_start(sp)) {
            /* the tick tries again */
            return;
        }

        for (i = 0; sp->sealers[i].busy; i++) { /* void */ }

        sealer = &sp->sealers[i];

        log->seal.fd = log->fd;
        log->seal.name = log->name;
        log->seal.seg = &sealer->seg;
        log->seal.handler = ngx_http_reductrai_sealed;
        log->seal.data = log;

        if (ngx_http_reductrai_seal_post(&log->seal, sp->log) != NGX_OK) {
            /* the tick tries again */
            return;
        }

        ngx_queue_remove(q);
        sealer->busy = 1;
        sealer->started = ngx_current_msec;
        log->stream->sealing = 1;
        sp->sealing++;

        ngx_http_reductrai_gauge_sub(&sh->seals_queued, 1);
        (void) ngx_atomic_fetch_add(&sh->seals_running, 1);
    }
}


/* no seal job runs, or each has run for NGX_HTTP_REDUCTRAI_SEAL_SLOW */

static ngx_uint_t
ngx_http_reductrai_seal_may_start(ngx_http_reductrai_spool_t *sp)
{
    ngx_uint_t  i;

    for (i = 0; i < sp->nsealers; i++) {
        if (sp->sealers[i].busy
            && ngx_current_msec - sp->sealers[i].started
               < NGX_HTTP_REDUCTRAI_SEAL_SLOW)
        {
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_reductrai_sealed(ngx_http_reductrai_seal_t *job)
{
    int64_t                      delta;
    ngx_uint_t                   i;
    ngx_http_reductrai_shm_t    *sh;
    ngx_http_reductrai_log_t    *log;
    ngx_http_reductrai_spool_t  *sp;

    sp = &ngx_http_reductrai_spool;
    sh = ngx_http_reductrai_shm();
    log = job->data;

    sp->sealing--;
    log->stream->sealing = 0;
    ngx_http_reductrai_gauge_sub(&sh->seals_running, 1);

    for (i = 0; i < sp->nsealers; i++) {
        if (&sp->sealers[i].seg == job->seg) {
            sp->sealers[i].busy = 0;
        }
    }

    (void) ngx_atomic_fetch_add(&sh->bytes_archived, job->res.decoded);

    /* the log leaves the spool, its object comes in */

    if (job->res.error == 0) {
        delta = job->res.file_bytes - log->size;

        if (delta >= 0) {
            (void) ngx_atomic_fetch_add(&sh->spool_bytes, delta);

        } else {
            ngx_http_reductrai_gauge_sub(&sh->spool_bytes,
                                         (ngx_atomic_uint_t) -delta);
        }
    }

    ngx_http_reductrai_seal_report(job, sp->log);

    if (job->res.written) {
        ngx_http_reductrai_shipper_add(job->res.sealed, job->res.file_bytes);
    }

    ngx_free(log);

    ngx_http_reductrai_seal_next();
}


/*
 * A spool that cannot be written (a full disk, an I/O error) is logged once
 * per episode; meanwhile requests are refused for a second at a time
 * rather than each trying, failing and logging.
 */

static void
ngx_http_reductrai_spool_result(ngx_log_t *log, int error)
{
    ngx_http_reductrai_spool_t  *sp;

    sp = &ngx_http_reductrai_spool;

    if (error == 0) {
        if (sp->spool_failing) {
            sp->spool_failing = 0;
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "reductrai: the spool \"%s\" is writable again",
                          ngx_http_reductrai_spool_path());
        }

        return;
    }

    sp->spool_retry_ms = ngx_http_reductrai_now_ms() + 1000;

    if (!sp->spool_failing) {
        sp->spool_failing = 1;
        ngx_log_error(NGX_LOG_CRIT, log, error,
                      "reductrai: writing to the spool \"%s\" failed",
                      ngx_http_reductrai_spool_path());
    }
}


static void
ngx_http_reductrai_spool_tick(ngx_int_t exiting)
{
    int64_t                          now;
    ngx_uint_t                       i;
    ngx_queue_t                      done;
    ngx_http_reductrai_stream_t     *s;
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_reductrai_worker_conf();
    now = ngx_http_reductrai_now_ms();

    ngx_queue_init(&done);

    for (i = 0; i < NGX_HTTP_REDUCTRAI_SLOTS; i++) {
        s = &ngx_http_reductrai_spool.streams[i];

        if (s->log != NULL
            && (exiting
                || now - s->log->id.first_ms >= (int64_t) rmcf->segment_age
                || now / NGX_HTTP_REDUCTRAI_HOUR_MS != s->log->id.hour))
        {
            (void) ngx_http_reductrai_rotate(s);
        }

        ngx_http_reductrai_stream_run(s, &done);
    }

    ngx_http_reductrai_complete(&done, NGX_OK);
    ngx_http_reductrai_seal_next();
}


static ngx_uint_t
ngx_http_reductrai_spool_idle(void)
{
    ngx_uint_t                    i;
    ngx_http_reductrai_spool_t   *sp;
    ngx_http_reductrai_stream_t  *s;

    sp = &ngx_http_reductrai_spool;

    if (sp->sealing || !ngx_queue_empty(&sp->to_seal)) {
        return 0;
    }

    for (i = 0; i < NGX_HTTP_REDUCTRAI_SLOTS; i++) {
        s = &sp->streams[i];

        if (s->log != NULL || s->rotated != NULL || s->sync_busy
            || s->append_busy || !ngx_queue_empty(&s->pending))
        {
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_reductrai_tick(ngx_event_t *ev)
{
    int64_t                      now;
    ngx_core_conf_t             *ccf;
    ngx_http_reductrai_spool_t  *sp;

    sp = ev->data;
    now = ngx_http_reductrai_now_ms();

    if (ngx_exiting && !sp->exiting) {
        ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                               ngx_core_module);
        sp->exiting = 1;
        sp->exit_deadline = now + (ccf->shutdown_timeout
                                   ? (int64_t) ccf->shutdown_timeout
                                   : NGX_HTTP_REDUCTRAI_EXIT_TIMEOUT);

        ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                      "reductrai: sealing and shipping the spool before "
                      "exit");
    }

    ngx_http_reductrai_spool_tick(sp->exiting);
    ngx_http_reductrai_shipper_tick(sp->exiting);

    /*
     * Past the deadline a job stuck in I/O may be cut off: its log is
     * recovered at the next start.
     */

    if (sp->exiting
        && ((ngx_http_reductrai_spool_idle()
             && ngx_http_reductrai_shipper_idle(now >= sp->exit_deadline))
            || now >= sp->exit_deadline + NGX_HTTP_REDUCTRAI_EXIT_GRACE))
    {
        ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                      "reductrai: spool done, worker may exit");
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_REDUCTRAI_TICK);
}
