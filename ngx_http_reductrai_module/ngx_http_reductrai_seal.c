
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The seal job: a spool log, closed to appends, becomes an archive object
 * in the thread pool (decode, NDJSON, one zstd stream, trailer, rename),
 * then the log goes.  The same work recovers the log of a worker that died
 * (the spool scan, in its own thread).  A finished job comes back through
 * the handler its caller set.
 */


#include "ngx_http_reductrai_module.h"
#include "ngx_http_reductrai_transcode.h"


static void ngx_http_reductrai_seal_thread(void *data, ngx_log_t *log);
static void ngx_http_reductrai_seal_done(ngx_event_t *ev);
static int ngx_http_reductrai_seal_quarantine(const char *path,
    const char *name);


ngx_int_t
ngx_http_reductrai_seal_post(ngx_http_reductrai_seal_t *job, ngx_log_t *log)
{
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_reductrai_worker_conf();

    ngx_memzero(&job->res, sizeof(ngx_http_reductrai_seal_result_t));

    ngx_http_reductrai_task_init(&job->task, ngx_http_reductrai_seal_thread,
                                 ngx_http_reductrai_seal_done, job, log);

    return ngx_thread_task_post(rmcf->thread_pool, &job->task);
}


static void
ngx_http_reductrai_seal_thread(void *data, ngx_log_t *log)
{
    ngx_http_reductrai_seal_t  *job = data;

    ngx_http_reductrai_seal_file(job->fd, job->name, job->seg, &job->res);
}


static void
ngx_http_reductrai_seal_done(ngx_event_t *ev)
{
    ngx_http_reductrai_seal_t  *job = ev->data;

    job->handler(job);
}


/*
 * Runs in a thread.  fd is the log, open and locked; it is closed here,
 * after the log has left the spool (or, on an error, left for a spool scan
 * to try again).  A log whose object exists already is the leftover of a
 * seal that was cut short before it could remove the log.
 */

void
ngx_http_reductrai_seal_file(int fd, const char *name,
    ngx_http_reductrai_segment_t *seg, ngx_http_reductrai_seal_result_t *res)
{
    char                                  path[NGX_MAX_PATH];
    char                                  sealed[NGX_MAX_PATH];
    char                                  tmp[NGX_MAX_PATH];
    size_t                                dir;
    const char                           *spool;
    struct stat                           sb;
    ngx_http_reductrai_segment_id_t       id;
    ngx_http_reductrai_spool_state_e      state;
    ngx_http_reductrai_transcode_t        tr;
    ngx_http_reductrai_main_conf_t       *rmcf;
    ngx_http_reductrai_transcode_conf_t   conf;

    rmcf = ngx_http_reductrai_worker_conf();
    spool = (const char *) rmcf->spool.data;

    ngx_memzero(res, sizeof(ngx_http_reductrai_seal_result_t));

    dir = ngx_sprintf((u_char *) sealed, "%s/", spool) - (u_char *) sealed;

    if (ngx_http_reductrai_spool_name_parse(name, &id, &state) != 0
        || ngx_http_reductrai_spool_name(res->sealed, sizeof(res->sealed),
                                         &id, NGX_HTTP_REDUCTRAI_SPOOL_SEALED)
           == 0
        || dir + ngx_strlen(res->sealed) + sizeof(".recover.")
           >= sizeof(sealed))
    {
        res->error = ENAMETOOLONG;
        goto done;
    }

    ngx_sprintf((u_char *) path, "%s/%s%Z", spool, name);
    ngx_sprintf((u_char *) sealed + dir, "%s%Z", res->sealed);
    ngx_sprintf((u_char *) tmp, "%s/.recover.%s%Z", spool, res->sealed);

    if (stat(sealed, &sb) == 0) {
        res->leftover = 1;
        (void) unlink(path);
        goto done;
    }

    conf.level = (int) rmcf->compression_level;
    conf.max_decoded = rmcf->max_decoded_size;
    conf.sync = (rmcf->durability == NGX_HTTP_REDUCTRAI_FSYNC);
    conf.seg = seg;

    if (ngx_http_reductrai_transcode(fd, tmp, sealed, &conf, &tr) != 0) {
        res->error = errno ? errno : EIO;
        goto done;
    }

    res->written = tr.written;
    res->file_bytes = tr.file_bytes;
    res->decoded = tr.decoded;
    res->records = tr.trailer.count;

    if (tr.end == NGX_HTTP_REDUCTRAI_FRAME_CORRUPT) {
        /* what could not be read is kept for an operator, never deleted */
        res->quarantined = 1;

        if (ngx_http_reductrai_seal_quarantine(path, name) != 0) {
            res->error = errno;
        }

        goto done;
    }

    if (unlink(path) == -1) {
        res->error = errno;
    }

done:

    (void) close(fd);
}


static int
ngx_http_reductrai_seal_quarantine(const char *path, const char *name)
{
    char         to[NGX_MAX_PATH];
    const char  *spool;

    spool = ngx_http_reductrai_spool_path();

    ngx_sprintf((u_char *) to, "%s/%s%Z", spool, NGX_HTTP_REDUCTRAI_QUARANTINE);

    if (mkdir(to, 0700) == -1 && errno != EEXIST) {
        return -1;
    }

    ngx_sprintf((u_char *) to, "%s/%s/%s%Z", spool,
                NGX_HTTP_REDUCTRAI_QUARANTINE, name);

    return rename(path, to);
}


/* in the event loop: what a seal (or a recovery) did, in the error log */

void
ngx_http_reductrai_seal_report(ngx_http_reductrai_seal_t *job,
    ngx_log_t *log)
{
    ngx_http_reductrai_seal_result_t  *res;

    res = &job->res;

    if (res->error) {
        ngx_log_error(NGX_LOG_CRIT, log, res->error,
                      "reductrai: sealing \"%s\" failed, a spool scan "
                      "tries again", job->name);
        return;
    }

    if (res->quarantined) {
        (void) ngx_atomic_fetch_add(&ngx_http_reductrai_shm()->quarantined,
                                    1);
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "reductrai: \"%s\" is damaged after %uL record(s): "
                      "the rest is kept in \"%s/%s\"", job->name,
                      res->records, ngx_http_reductrai_spool_path(),
                      NGX_HTTP_REDUCTRAI_QUARANTINE);
    }
}
