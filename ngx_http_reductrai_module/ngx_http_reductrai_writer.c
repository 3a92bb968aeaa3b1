
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The writer: one open spool segment per worker and stream, written by one
 * encode job at a time in the thread pool.  Records that arrive while a job
 * runs queue up and become the next batch: many records, one flush (and
 * with "fsync", one fdatasync), which is the group commit.  When a job is
 * done its records are committed and their requests go on.
 */


#include "ngx_http_reductrai_module.h"


#define NGX_HTTP_REDUCTRAI_BATCH_RECORDS  256
#define NGX_HTTP_REDUCTRAI_BATCH_BYTES    (1024 * 1024)
/* scratch memory a writer keeps between jobs */
#define NGX_HTTP_REDUCTRAI_SCRATCH_KEEP   (4 * 1024 * 1024)
#define NGX_HTTP_REDUCTRAI_EXIT_TIMEOUT   30000
#define NGX_HTTP_REDUCTRAI_EXIT_GRACE     5000


typedef struct {
    ngx_log_t                       *log;
    ngx_pid_t                        pid;
    int64_t                          start_ms;
    uint64_t                         records;
    size_t                           buffered;
    ngx_uint_t                       exiting;
    int64_t                          exit_deadline;
    ngx_uint_t                       spool_failing;
    int64_t                          spool_retry_ms;
    int64_t                          buffer_refused_ms;
    ngx_event_t                      tick;
    ngx_http_reductrai_writer_t      writers[NGX_HTTP_REDUCTRAI_SLOTS];
} ngx_http_reductrai_worker_t;


static ngx_int_t ngx_http_reductrai_job_start(ngx_http_reductrai_writer_t *w);
static void ngx_http_reductrai_job(void *data, ngx_log_t *log);
static void ngx_http_reductrai_job_record(ngx_http_reductrai_writer_t *w,
    ngx_http_reductrai_main_conf_t *rmcf, ngx_http_reductrai_record_t *rec);
static int ngx_http_reductrai_job_body(ngx_http_reductrai_writer_t *w,
    ngx_http_reductrai_record_t *rec, const u_char **raw);
static int ngx_http_reductrai_job_open(ngx_http_reductrai_writer_t *w,
    ngx_http_reductrai_main_conf_t *rmcf, int64_t ts_ms);
static int ngx_http_reductrai_job_seal(ngx_http_reductrai_writer_t *w,
    ngx_http_reductrai_main_conf_t *rmcf);
static void ngx_http_reductrai_job_abandon(ngx_http_reductrai_writer_t *w);
static void ngx_http_reductrai_job_account(ngx_http_reductrai_writer_t *w);
static void ngx_http_reductrai_job_done(ngx_event_t *ev);
static void ngx_http_reductrai_spool_result(ngx_log_t *log, int error);
static void ngx_http_reductrai_writer_tick(ngx_int_t exiting);
static ngx_uint_t ngx_http_reductrai_writer_idle(void);
static void ngx_http_reductrai_tick(ngx_event_t *ev);


static ngx_http_reductrai_worker_t  ngx_http_reductrai_worker;


ngx_http_reductrai_main_conf_t *
ngx_http_reductrai_worker_conf(void)
{
    return ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_reductrai_module);
}


const char *
ngx_http_reductrai_spool_path(void)
{
    return (const char *) ngx_http_reductrai_worker_conf()->spool.data;
}


int64_t
ngx_http_reductrai_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}


ngx_int_t
ngx_http_reductrai_writer_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i;
    ngx_thread_task_t            *task;
    ngx_http_reductrai_worker_t  *wk;
    ngx_http_reductrai_writer_t  *w;

    wk = &ngx_http_reductrai_worker;

    wk->log = cycle->log;
    wk->pid = ngx_pid;
    wk->start_ms = ngx_http_reductrai_now_ms();

    for (i = 0; i < NGX_HTTP_REDUCTRAI_SLOTS; i++) {
        w = &wk->writers[i];

        w->pending_last = &w->pending;
        ngx_http_reductrai_segment_init(&w->seg);

        task = ngx_thread_task_alloc(cycle->pool, sizeof(void *));
        if (task == NULL) {
            return NGX_ERROR;
        }

        *(ngx_http_reductrai_writer_t **) task->ctx = w;
        task->handler = ngx_http_reductrai_job;
        task->event.handler = ngx_http_reductrai_job_done;
        task->event.data = w;
        task->event.log = cycle->log;

        w->task = task;
    }

    /*
     * The tick is not cancelable: on a graceful stop the worker waits for
     * it, and it stops only once every segment is sealed and shipped (or
     * the time to do so has run out).
     */

    wk->tick.handler = ngx_http_reductrai_tick;
    wk->tick.log = cycle->log;
    wk->tick.data = wk;
    wk->tick.cancelable = 0;

    ngx_add_timer(&wk->tick, NGX_HTTP_REDUCTRAI_TICK);

    return NGX_OK;
}


void
ngx_http_reductrai_writer_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i, left;
    ngx_http_reductrai_writer_t  *w;

    left = 0;

    for (i = 0; i < NGX_HTTP_REDUCTRAI_SLOTS; i++) {
        w = &ngx_http_reductrai_worker.writers[i];

        if (w->busy || w->open || w->pending) {
            left++;
        }
    }

    if (left) {
        /* a fast stop: the next start recovers what is in the spool */
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "reductrai: %ui stream(s) left open in the spool",
                      left);
    }
}


u_char *
ngx_http_reductrai_next_id(u_char *p)
{
    ngx_http_reductrai_worker_t     *wk;
    ngx_http_reductrai_main_conf_t  *rmcf;

    wk = &ngx_http_reductrai_worker;
    rmcf = ngx_http_reductrai_worker_conf();

    return ngx_sprintf(p, "%V-%P-%L-%uL", &rmcf->instance, wk->pid,
                       wk->start_ms, ++wk->records);
}


ngx_uint_t
ngx_http_reductrai_buffer_full(size_t size)
{
    ngx_http_reductrai_worker_t  *wk;

    wk = &ngx_http_reductrai_worker;

    if (wk->buffered + size <= ngx_http_reductrai_worker_conf()->buffer_size)
    {
        return 0;
    }

    wk->buffer_refused_ms = ngx_http_reductrai_now_ms();

    return 1;
}


/*
 * For readiness: the buffer refused a body a moment ago, or is nearly
 * full.  Admission never lets it overflow, so "full" alone never shows.
 */

ngx_uint_t
ngx_http_reductrai_buffer_pressed(void)
{
    size_t                        size;
    ngx_http_reductrai_worker_t  *wk;

    wk = &ngx_http_reductrai_worker;
    size = ngx_http_reductrai_worker_conf()->buffer_size;

    return wk->buffered >= size - size / 16
           || (wk->buffer_refused_ms != 0
               && ngx_http_reductrai_now_ms() - wk->buffer_refused_ms < 1000);
}


ngx_int_t
ngx_http_reductrai_submit(ngx_http_reductrai_record_t *rec, ngx_uint_t slot,
    ngx_log_t *log)
{
    ngx_http_reductrai_shm_t     *sh;
    ngx_http_reductrai_writer_t  *w;

    w = &ngx_http_reductrai_worker.writers[slot];

    if (w->task == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "reductrai writer is not initialized");
        return NGX_ERROR;
    }

    if (w->name[0] == '\0') {
        sh = ngx_http_reductrai_shm();
        ngx_cpystrn(w->name, sh->streams[slot].name, sizeof(w->name));
    }

    rec->next = NULL;
    *w->pending_last = rec;
    w->pending_last = &rec->next;

    ngx_http_reductrai_worker.buffered += rec->cost;

    /* an exiting worker whose tick has stopped still seals what it gets */
    if (ngx_http_reductrai_worker.exiting
        && !ngx_http_reductrai_worker.tick.timer_set)
    {
        ngx_add_timer(&ngx_http_reductrai_worker.tick,
                      NGX_HTTP_REDUCTRAI_TICK);
    }

    if (!w->busy) {
        /* if posting fails the records wait for the tick to try again */
        (void) ngx_http_reductrai_job_start(w);
    }

    return NGX_OK;
}


void
ngx_http_reductrai_record_free(ngx_http_reductrai_record_t *rec)
{
    if (rec->fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(rec->fd);
    }

    ngx_free(rec);
}


static ngx_int_t
ngx_http_reductrai_job_start(ngx_http_reductrai_writer_t *w)
{
    size_t                           bytes;
    ngx_uint_t                       n;
    ngx_http_reductrai_record_t     *rec, **last;
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_reductrai_worker_conf();

    /* a bounded batch, so that the first records wait less */

    bytes = 0;
    n = 0;
    last = &w->pending;

    for (rec = w->pending; rec; rec = rec->next) {
        if (n == NGX_HTTP_REDUCTRAI_BATCH_RECORDS
            || (n > 0 && bytes + rec->size > NGX_HTTP_REDUCTRAI_BATCH_BYTES))
        {
            break;
        }

        bytes += rec->size;
        n++;
        last = &rec->next;
    }

    w->batch = w->pending;
    w->pending = *last;
    *last = NULL;

    if (w->pending == NULL) {
        w->pending_last = &w->pending;
    }

    w->seal = (w->pending == NULL && w->seal_requested);

    if (w->batch == NULL && !w->seal) {
        return NGX_OK;
    }

    if (ngx_thread_task_post(rmcf->thread_pool, w->task) != NGX_OK) {
        /* put the batch back in front */
        if (w->batch != NULL) {
            *last = w->pending;
            if (w->pending == NULL) {
                w->pending_last = last;
            }

            w->pending = w->batch;
            w->batch = NULL;
        }

        return NGX_ERROR;
    }

    if (w->seal) {
        w->seal_requested = 0;
    }

    w->busy = 1;

    return NGX_OK;
}


/* runs in a thread: touches only the writer's own data and the records */

static void
ngx_http_reductrai_job(void *data, ngx_log_t *log)
{
    ngx_http_reductrai_writer_t  *w = *(ngx_http_reductrai_writer_t **) data;

    ngx_http_reductrai_record_t     *rec;
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_reductrai_worker_conf();

    w->error = 0;
    w->spool_delta = 0;
    w->archived = 0;
    w->sealed.len = 0;

    for (rec = w->batch; rec && w->error == 0; rec = rec->next) {

        /*
         * A segment never spans an hour, nor grows past its size: decoded
         * body bytes, so that a full segment is one object per
         * reductrai_segment_size of what agents sent, metadata aside.
         */

        if (w->open
            && (rec->ts_ms / NGX_HTTP_REDUCTRAI_HOUR_MS != w->id.hour
                || w->body_bytes >= rmcf->segment_size))
        {
            if (ngx_http_reductrai_job_seal(w, rmcf) != 0) {
                break;
            }
        }

        if (!w->open && ngx_http_reductrai_job_open(w, rmcf, rec->ts_ms) != 0)
        {
            break;
        }

        ngx_http_reductrai_job_record(w, rmcf, rec);
    }

    if (w->error == 0 && w->open && w->batch != NULL) {
        if (ngx_http_reductrai_segment_flush(&w->seg,
                                   rmcf->durability == NGX_HTTP_REDUCTRAI_FSYNC)
            != NGX_HTTP_REDUCTRAI_OK)
        {
            w->error = errno;

        } else {
            w->flushed = w->seg.stats.count;
        }
    }

    /*
     * The batch is committed once flushed: a seal failing after that
     * leaves it for recovery but fails no request.
     */

    w->seal_error = 0;

    if (w->error == 0 && w->open && w->seal
        && ngx_http_reductrai_job_seal(w, rmcf) != 0)
    {
        w->seal_error = w->error;
        w->error = 0;
    }

    if (w->error != 0 && w->open) {
        ngx_http_reductrai_job_abandon(w);
    }

    ngx_http_reductrai_job_account(w);

    ngx_http_reductrai_record_encoder_trim(&w->enc,
                                           NGX_HTTP_REDUCTRAI_SCRATCH_KEEP);

    if (w->raw.cap > NGX_HTTP_REDUCTRAI_SCRATCH_KEEP) {
        ngx_http_reductrai_buf_free(&w->raw);
    }
}


static void
ngx_http_reductrai_job_record(ngx_http_reductrai_writer_t *w,
    ngx_http_reductrai_main_conf_t *rmcf, ngx_http_reductrai_record_t *rec)
{
    const u_char  *raw;

    /* read the body first: a record whose body is lost is not written */

    if (ngx_http_reductrai_job_body(w, rec, &raw) != 0) {
        rec->failed = 1;
        return;
    }

    if (ngx_http_reductrai_segment_write(&w->seg, rec->head, rec->head_len)
        != NGX_HTTP_REDUCTRAI_OK
        || ngx_http_reductrai_record_body(&w->enc, rec->coding, rec->format,
                                          raw, rec->size,
                                          rmcf->max_decoded_size,
                                          ngx_http_reductrai_segment_write,
                                          &w->seg, &rec->decoded)
           != NGX_HTTP_REDUCTRAI_OK)
    {
        w->error = errno ? errno : EIO;
        return;
    }

    ngx_http_reductrai_segment_record(&w->seg, rec->ts_ms);
    w->archived += rec->decoded;
    w->body_bytes += rec->decoded;
}


static int
ngx_http_reductrai_job_body(ngx_http_reductrai_writer_t *w,
    ngx_http_reductrai_record_t *rec, const u_char **raw)
{
    size_t                       done;
    ssize_t                      n;
    ngx_uint_t                   i;
    ngx_http_reductrai_piece_t  *pc;

    if (rec->npieces == 0) {
        *raw = rec->body;
        return 0;
    }

    w->raw.len = 0;

    if (ngx_http_reductrai_buf_reserve(&w->raw, rec->size)
        != NGX_HTTP_REDUCTRAI_OK)
    {
        return -1;
    }

    for (i = 0; i < rec->npieces; i++) {
        pc = &rec->pieces[i];

        if (!pc->in_file) {
            ngx_memcpy(w->raw.data + w->raw.len, rec->body + pc->offset,
                       pc->len);
            w->raw.len += pc->len;
            continue;
        }

        for (done = 0; done < pc->len; done += n) {
            n = pread(rec->fd, w->raw.data + w->raw.len + done,
                      pc->len - done, pc->offset + done);

            if (n == -1 && errno == EINTR) {
                n = 0;
                continue;
            }

            if (n <= 0) {
                return -1;
            }
        }

        w->raw.len += pc->len;
    }

    *raw = w->raw.data;

    return 0;
}


static int
ngx_http_reductrai_job_open(ngx_http_reductrai_writer_t *w,
    ngx_http_reductrai_main_conf_t *rmcf, int64_t ts_ms)
{
    char                             path[NGX_MAX_PATH];
    size_t                           len;
    ngx_http_reductrai_worker_t     *wk;
    ngx_http_reductrai_segment_id_t  id;

    wk = &ngx_http_reductrai_worker;

    ngx_memzero(&id, sizeof(ngx_http_reductrai_segment_id_t));
    ngx_cpystrn((u_char *) id.stream, w->name, sizeof(id.stream));
    ngx_cpystrn((u_char *) id.instance, rmcf->instance.data,
                ngx_min(rmcf->instance.len + 1, sizeof(id.instance)));

    id.hour = ts_ms / NGX_HTTP_REDUCTRAI_HOUR_MS;
    id.pid = wk->pid;
    id.start_ms = wk->start_ms;
    id.seq = w->seq + 1;
    id.first_ms = ts_ms;

    len = ngx_sprintf((u_char *) path, "%V/", &rmcf->spool) - (u_char *) path;

    if (ngx_http_reductrai_spool_name(path + len, sizeof(path) - len, &id,
                                      NGX_HTTP_REDUCTRAI_SPOOL_OPEN)
        == 0)
    {
        w->error = ENAMETOOLONG;
        return -1;
    }

    if (ngx_http_reductrai_segment_open(&w->seg, path,
                                        (int) rmcf->compression_level)
        != NGX_HTTP_REDUCTRAI_OK)
    {
        w->error = errno;
        return -1;
    }

    /* a number is used only once a file holds it: gaps mean lost data */
    w->seq = id.seq;
    w->id = id;
    w->open = 1;
    w->accounted = 0;
    w->flushed = 0;
    w->body_bytes = 0;

    /* with "fsync", the new file's name must survive a power loss too */

    if (rmcf->durability == NGX_HTTP_REDUCTRAI_FSYNC
        && ngx_http_reductrai_sync_dir((char *) rmcf->spool.data) != 0)
    {
        w->error = errno;
        ngx_http_reductrai_job_abandon(w);
        return -1;
    }

    return 0;
}


static int
ngx_http_reductrai_job_seal(ngx_http_reductrai_writer_t *w,
    ngx_http_reductrai_main_conf_t *rmcf)
{
    char    path[NGX_MAX_PATH];
    size_t  len, dir;

    dir = ngx_sprintf((u_char *) path, "%V/", &rmcf->spool) - (u_char *) path;

    len = ngx_http_reductrai_spool_name(path + dir, sizeof(path) - dir,
                                        &w->id,
                                        NGX_HTTP_REDUCTRAI_SPOOL_SEALED);

    if (len == 0
        || ngx_http_reductrai_segment_seal(&w->seg, path,
                                   rmcf->durability == NGX_HTTP_REDUCTRAI_FSYNC)
           != NGX_HTTP_REDUCTRAI_OK)
    {
        w->error = len ? errno : ENAMETOOLONG;
        ngx_http_reductrai_job_abandon(w);
        return -1;
    }

    ngx_http_reductrai_job_account(w);

    /* hand the name and size to the shipper */

    if (ngx_http_reductrai_buf_reserve(&w->sealed, len + 32)
        == NGX_HTTP_REDUCTRAI_OK)
    {
        w->sealed.len += ngx_sprintf(w->sealed.data + w->sealed.len,
                                     "%s%Z%uL%Z", path + dir,
                                     w->seg.file_bytes)
                         - (w->sealed.data + w->sealed.len);
    }

    /*
     * The compression context (about 10 MiB with the segment window) goes
     * too: a stream that is quiet until its next segment holds none.
     */

    ngx_http_reductrai_segment_free(&w->seg);
    w->open = 0;

    return 0;
}


/*
 * After a write error the segment is left as it is and unlocked: a spool
 * scan recovers what it holds, cut at its last complete record.  One that
 * never held a committed record is not data: it goes, and its number is
 * used again, so that a full disk does not leave a trail of empty objects.
 */

static void
ngx_http_reductrai_job_abandon(ngx_http_reductrai_writer_t *w)
{
    ngx_http_reductrai_job_account(w);

    if (w->flushed == 0 && unlink(w->seg.path) == 0) {
        w->spool_delta -= (int64_t) w->accounted;
        w->seq = w->id.seq - 1;
    }

    ngx_http_reductrai_segment_close(&w->seg);
    w->open = 0;
}


static void
ngx_http_reductrai_job_account(ngx_http_reductrai_writer_t *w)
{
    w->spool_delta += (int64_t) (w->seg.file_bytes - w->accounted);
    w->accounted = w->seg.file_bytes;
}


static void
ngx_http_reductrai_job_done(ngx_event_t *ev)
{
    u_char                       *p, *end;
    size_t                        mem;
    ngx_int_t                     ok;
    ngx_http_reductrai_shm_t     *sh;
    ngx_http_reductrai_writer_t  *w;
    ngx_http_reductrai_record_t  *rec, *next, *batch;

    w = ev->data;
    sh = ngx_http_reductrai_shm();

    batch = w->batch;
    w->batch = NULL;
    w->busy = 0;
    ok = (w->error == 0);

    ngx_http_reductrai_spool_result(ev->log, w->error ? w->error
                                                     : w->seal_error);

    (void) ngx_atomic_fetch_add(&sh->bytes_archived, w->archived);

    /*
     * An abandoned segment takes back all its bytes, which a scan that
     * reset the gauge meanwhile may have counted smaller: never wrap.
     */

    if (w->spool_delta >= 0) {
        (void) ngx_atomic_fetch_add(&sh->spool_bytes, w->spool_delta);

    } else {
        ngx_http_reductrai_gauge_sub(&sh->spool_bytes,
                                     (ngx_atomic_uint_t) -w->spool_delta);
    }

    p = w->sealed.data;
    end = p + w->sealed.len;

    while (p < end) {
        u_char  *size = p + ngx_strlen(p) + 1;

        ngx_http_reductrai_shipper_add((char *) p,
                                       ngx_atoof(size, ngx_strlen(size)));
        p = size + ngx_strlen(size) + 1;
    }

    mem = 0;

    for (rec = batch; rec; rec = rec->next) {
        mem += rec->cost;

        /* answered before it was written, and then not written: lost */
        if (rec->waiter == NULL && rec->acked && !(ok && !rec->failed)) {
            (void) ngx_atomic_fetch_add(&sh->dropped, 1);
        }
    }

    ngx_http_reductrai_worker.buffered -= mem;

    /* the writer is consistent again before any request runs */

    if (w->pending != NULL || w->seal_requested) {
        (void) ngx_http_reductrai_job_start(w);
    }

    for (rec = batch; rec; rec = next) {
        next = rec->next;
        ngx_http_reductrai_commit_done(rec, ok && !rec->failed);
        ngx_http_reductrai_record_free(rec);
    }
}


/*
 * A spool that cannot be written (a full disk, an I/O error) is logged once
 * per episode; meanwhile requests are refused for a second at a time
 * rather than each trying, failing and logging.
 */

static void
ngx_http_reductrai_spool_result(ngx_log_t *log, int error)
{
    ngx_http_reductrai_worker_t  *wk;

    wk = &ngx_http_reductrai_worker;

    if (error == 0) {
        if (wk->spool_failing) {
            wk->spool_failing = 0;
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "reductrai: the spool \"%s\" is writable again",
                          ngx_http_reductrai_spool_path());
        }

        return;
    }

    wk->spool_retry_ms = ngx_http_reductrai_now_ms() + 1000;

    if (!wk->spool_failing) {
        wk->spool_failing = 1;
        ngx_log_error(NGX_LOG_CRIT, log, error,
                      "reductrai: writing to the spool \"%s\" failed",
                      ngx_http_reductrai_spool_path());
    }
}


ngx_uint_t
ngx_http_reductrai_spool_failing(void)
{
    ngx_http_reductrai_worker_t  *wk;

    wk = &ngx_http_reductrai_worker;

    return wk->spool_failing
           && ngx_http_reductrai_now_ms() < wk->spool_retry_ms;
}


static void
ngx_http_reductrai_writer_tick(ngx_int_t exiting)
{
    int64_t                          now;
    ngx_uint_t                       i;
    ngx_http_reductrai_writer_t     *w;
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_reductrai_worker_conf();
    now = ngx_http_reductrai_now_ms();

    for (i = 0; i < NGX_HTTP_REDUCTRAI_SLOTS; i++) {
        w = &ngx_http_reductrai_worker.writers[i];

        if (w->busy) {
            continue;
        }

        if (w->open
            && (exiting
                || now - w->id.first_ms >= (int64_t) rmcf->segment_age
                || now / NGX_HTTP_REDUCTRAI_HOUR_MS != w->id.hour))
        {
            w->seal_requested = 1;
        }

        if (w->pending != NULL || w->seal_requested) {
            (void) ngx_http_reductrai_job_start(w);
        }
    }
}


static ngx_uint_t
ngx_http_reductrai_writer_idle(void)
{
    ngx_uint_t                    i;
    ngx_http_reductrai_writer_t  *w;

    for (i = 0; i < NGX_HTTP_REDUCTRAI_SLOTS; i++) {
        w = &ngx_http_reductrai_worker.writers[i];

        if (w->busy || w->open || w->pending != NULL) {
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_reductrai_tick(ngx_event_t *ev)
{
    int64_t                       now;
    ngx_core_conf_t              *ccf;
    ngx_http_reductrai_worker_t  *wk;

    wk = ev->data;
    now = ngx_http_reductrai_now_ms();

    if (ngx_exiting && !wk->exiting) {
        ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                               ngx_core_module);
        wk->exiting = 1;
        wk->exit_deadline = now + (ccf->shutdown_timeout
                                   ? (int64_t) ccf->shutdown_timeout
                                   : NGX_HTTP_REDUCTRAI_EXIT_TIMEOUT);

        ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                      "reductrai: sealing and shipping the spool before "
                      "exit");
    }

    ngx_http_reductrai_writer_tick(wk->exiting);
    ngx_http_reductrai_shipper_tick(wk->exiting);

    /*
     * Past the deadline a job stuck in I/O may be cut off: its segment is
     * recovered at the next start.
     */

    if (wk->exiting
        && ((ngx_http_reductrai_writer_idle()
             && ngx_http_reductrai_shipper_idle(now >= wk->exit_deadline))
            || now >= wk->exit_deadline + NGX_HTTP_REDUCTRAI_EXIT_GRACE))
    {
        ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                      "reductrai: spool done, worker may exit");
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_REDUCTRAI_TICK);
}
