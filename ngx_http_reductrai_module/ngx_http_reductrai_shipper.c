
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The shipper: moves sealed segments from the spool to storage, in the
 * upload thread pool, at most reductrai_upload_concurrency at a time.  A
 * segment is locked (flock) while it uploads and removed from the spool
 * only once storage has confirmed it, so overlapping workers (a reload, a
 * binary upgrade) never ship it twice and a crash never loses it.
 *
 * A periodic spool scan, in a thread too, finds segments this worker did
 * not seal (dead or exiting workers), recovers open segments whose writer
 * is gone, moves unreadable files aside, and measures the spool.  One
 * worker at a time scans (the scanner, named in shared memory), and only
 * after a pause ten times as long as its last scan took: a day of outage
 * lists 10^5 files, and every worker listing them every second starved
 * the event loops of CPU.  Segments a worker seals itself it knows
 * without a scan.
 */


#include "ngx_http_reductrai_module.h"

#include "ngx_http_reductrai_http.h"

#include <dirent.h>
#include <sys/file.h>


#define NGX_HTTP_REDUCTRAI_BACKOFF_BASE   500
#define NGX_HTTP_REDUCTRAI_BACKOFF_CAP    60000
#define NGX_HTTP_REDUCTRAI_FAILED_MAX    32
/* hidden files younger than this may belong to a live writer */
#define NGX_HTTP_REDUCTRAI_STALE_HIDDEN   60
/* a scan waits this many times as long as the last one took */
#define NGX_HTTP_REDUCTRAI_SCAN_PAUSE     10
/* a scanner that has not ticked for this long is taken over (ms) */
#define NGX_HTTP_REDUCTRAI_SCANNER_STALE  3000
/* segments known apart from the listing; more wait for the next scan */
#define NGX_HTTP_REDUCTRAI_ADDED_MAX      1024


typedef enum {
    NGX_HTTP_REDUCTRAI_SHIPPED = 0,
    NGX_HTTP_REDUCTRAI_FAILED,
    NGX_HTTP_REDUCTRAI_BUSY,            /* another process has it */
    NGX_HTTP_REDUCTRAI_GONE,            /* shipped by someone else */
    NGX_HTTP_REDUCTRAI_RECOVERED,       /* its trailer was bad: redone */
    NGX_HTTP_REDUCTRAI_QUARANTINED,
    NGX_HTTP_REDUCTRAI_LOCAL_ERROR      /* the spool itself failed */
} ngx_http_reductrai_upload_rc_e;


typedef struct {
    char                              name[NGX_HTTP_REDUCTRAI_NAME_MAX];
    int64_t                           size;
    int64_t                           first_ms;
    ngx_uint_t                        own;
    ngx_uint_t                        failures;
    ngx_uint_t                        taken;      /* out of the listing */
    ngx_uint_t                        generation; /* scans posted before */
} ngx_http_reductrai_candidate_t;


typedef struct {
    ngx_thread_task_t                *task;
    ngx_http_reductrai_candidate_t    seg;
    ngx_http_reductrai_upload_rc_e    rc;
    ngx_http_reductrai_storage_rc_e   storage_rc;
    ngx_http_reductrai_storage_err_t  err;
    int                               error;
    ngx_uint_t                        busy;
} ngx_http_reductrai_upload_t;


typedef struct {
    ngx_http_reductrai_buf_t          found;    /* candidates, sorted */
    char                              own[NGX_INT64_LEN + 3];  /* "-PID-" */
    int64_t                           bytes;
    ngx_uint_t                        files;
    int64_t                           oldest_ms;
    ngx_uint_t                        recovered;
    ngx_uint_t                        quarantined;
    int                               error;
    ngx_uint_t                        complete;   /* the listing worked */
    char                              failed[NGX_HTTP_REDUCTRAI_NAME_MAX];
} ngx_http_reductrai_scan_t;


typedef struct {
    ngx_log_t                        *log;

    /*
     * The queue: the last scan's listing, sorted in the scan thread and
     * shipped from its head, plus the few segments added since (sealed
     * here, rebuilt, failed), kept sorted.  No step of the event loop
     * walks or moves the whole listing: a day of outage lists 10^5.
     */
    ngx_http_reductrai_buf_t          listing;
    ngx_uint_t                        nlisted;
    ngx_uint_t                        head;
    ngx_uint_t                        nlive;      /* listed, still to ship */
    ngx_http_reductrai_buf_t          added;
    ngx_uint_t                        nadded;
    ngx_uint_t                        generation;
    ngx_http_reductrai_upload_t      *uploads;
    ngx_uint_t                        nuploads;
    ngx_uint_t                        inflight;

    ngx_thread_task_t                *scan_task;
    ngx_http_reductrai_scan_t         scan;
    ngx_uint_t                        scanning;
    int64_t                           scan_start_ms;
    int64_t                           next_scan_ms;
    int64_t                           next_wanted_ms;  /* asked by another */

    ngx_thread_task_t                *probe_task;
    ngx_http_reductrai_storage_rc_e   probe_rc;
    ngx_http_reductrai_storage_err_t  probe_err;
    ngx_uint_t                        probing;
    int64_t                           last_contact_ms;

    ngx_uint_t                        failures;
    int64_t                           next_try_ms;
    ngx_uint_t                        gave_up;
    int64_t                           scan_logged_ms;
    int64_t                           local_logged_ms;

    /* segments that failed, remembered across scans (a small ring) */
    ngx_http_reductrai_candidate_t    failed[NGX_HTTP_REDUCTRAI_FAILED_MAX];
    ngx_uint_t                        nfailed;
} ngx_http_reductrai_shipper_t;


static void ngx_http_reductrai_upload(void *data, ngx_log_t *log);
static ngx_http_reductrai_upload_rc_e ngx_http_reductrai_upload_locked(
    ngx_http_reductrai_upload_t *up, int fd, const char *path, int64_t size);
static void ngx_http_reductrai_upload_done(ngx_event_t *ev);
static void ngx_http_reductrai_scan(void *data, ngx_log_t *log);
static void ngx_http_reductrai_scan_open(ngx_http_reductrai_scan_t *scan,
    int dfd, const char *name, ngx_http_reductrai_segment_id_t *id,
    int64_t size);
static void ngx_http_reductrai_scan_log(ngx_http_reductrai_scan_t *scan,
    int dfd, const char *name, ngx_http_reductrai_segment_id_t *id,
    int64_t size);
static int ngx_http_reductrai_scan_lock(int dfd, const char *name);
static void ngx_http_reductrai_scan_hidden(int dfd, const char *name);
static void ngx_http_reductrai_scan_found(ngx_http_reductrai_scan_t *scan,
    const char *name, int64_t size, int64_t first_ms);
static void ngx_http_reductrai_scan_done(ngx_event_t *ev);
static ngx_int_t ngx_http_reductrai_quarantine(int dfd, const char *name);
static ngx_int_t ngx_http_reductrai_recover(int fd, const char *name,
    ngx_http_reductrai_segment_id_t *id, int *torn);
static ngx_uint_t ngx_http_reductrai_scanner(ngx_int_t exiting,
    int64_t now);
static void ngx_http_reductrai_probe(void *data, ngx_log_t *log);
static void ngx_http_reductrai_probe_done(ngx_event_t *ev);
static void ngx_http_reductrai_scan_sort(ngx_http_reductrai_scan_t *scan);
static void ngx_http_reductrai_queue_replace(ngx_http_reductrai_scan_t *scan);
static ngx_uint_t ngx_http_reductrai_queued(void);
static ngx_http_reductrai_candidate_t *ngx_http_reductrai_queue_next(
    ngx_uint_t *added);
static void ngx_http_reductrai_queue_pop(ngx_uint_t added);
static ngx_int_t ngx_http_reductrai_queue_push(
    ngx_http_reductrai_candidate_t *c);
static void ngx_http_reductrai_enqueue(ngx_http_reductrai_candidate_t *c,
    ngx_log_t *log);
static void ngx_http_reductrai_keep_added_since_scan(void);
static ngx_http_reductrai_candidate_t *ngx_http_reductrai_listed(
    const ngx_http_reductrai_candidate_t *key);
static void ngx_http_reductrai_take_listed(
    const ngx_http_reductrai_candidate_t *c);
static ngx_http_reductrai_candidate_t *ngx_http_reductrai_find(
    ngx_http_reductrai_candidate_t *list, ngx_uint_t n, const char *name);
static int ngx_libc_cdecl ngx_http_reductrai_candidate_cmp(const void *a,
    const void *b);
static int ngx_libc_cdecl ngx_http_reductrai_order_cmp(const void *a,
    const void *b);
static void ngx_http_reductrai_start_uploads(void);
static void ngx_http_reductrai_backoff(void);
static void ngx_http_reductrai_remember_failure(
    ngx_http_reductrai_candidate_t *c);


static ngx_http_reductrai_shipper_t  ngx_http_reductrai_shipper;


ngx_int_t
ngx_http_reductrai_shipper_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_thread_task_t               *task;
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_main_conf_t  *rmcf;

    sp = &ngx_http_reductrai_shipper;

    /*
     * the macro is NULL without an http block, but the one caller,
     * ngx_http_reductrai_init_process(), returns before calling us then;
     * the analyzer does not look at the caller
     */
NGX_HTTP_REDUCTRAI_ANALYZER_IGNORE("-Wanalyzer-null-dereference")
    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_reductrai_module);

    sp->log = cycle->log;
    sp->nuploads = rmcf->upload_concurrency;
NGX_HTTP_REDUCTRAI_ANALYZER_END

    sp->uploads = ngx_pcalloc(cycle->pool,
                         sp->nuploads * sizeof(ngx_http_reductrai_upload_t));
    if (sp->uploads == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < sp->nuploads; i++) {
        task = ngx_http_reductrai_task_create(cycle, ngx_http_reductrai_upload,
                                              ngx_http_reductrai_upload_done,
                                              &sp->uploads[i]);
        if (task == NULL) {
            return NGX_ERROR;
        }

        sp->uploads[i].task = task;
    }

    sp->scan_task = ngx_http_reductrai_task_create(cycle,
                                                 ngx_http_reductrai_scan,
                                                 ngx_http_reductrai_scan_done,
                                                 sp);
    sp->probe_task = ngx_http_reductrai_task_create(cycle,
                                                ngx_http_reductrai_probe,
                                                ngx_http_reductrai_probe_done,
                                                sp);

    if (sp->scan_task == NULL || sp->probe_task == NULL) {
        return NGX_ERROR;
    }

    /*
     * A new worker may replace one that crashed: the scanner (this one,
     * or another) recovers what it left at once.
     */
    sp->next_scan_ms = 0;
    ngx_http_reductrai_shm()->scan_wanted = 1;

    return NGX_OK;
}


void
ngx_http_reductrai_shipper_add(const char *name, int64_t size)
{
    ngx_http_reductrai_candidate_t   c;
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_segment_id_t  id;
    ngx_http_reductrai_spool_state_e state;

    sp = &ngx_http_reductrai_shipper;

    if (ngx_http_reductrai_spool_name_parse(name, &id, &state) != 0) {
        return;
    }

    ngx_cpystrn((u_char *) c.name, (u_char *) name, sizeof(c.name));
    c.size = size;
    c.first_ms = id.first_ms;
    c.own = 1;
    c.failures = 0;
    c.taken = 0;

    ngx_http_reductrai_enqueue(&c, sp->log);

    ngx_http_reductrai_start_uploads();
}


void
ngx_http_reductrai_shipper_tick(ngx_int_t exiting)
{
    int64_t                          now;
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_main_conf_t  *rmcf;

    sp = &ngx_http_reductrai_shipper;
    rmcf = ngx_http_reductrai_worker_conf();
    now = ngx_http_reductrai_now_ms();

    if (sp->scan_task == NULL) {
        return;
    }

    if (ngx_http_reductrai_scanner(exiting, now) && !sp->scanning
        && (now >= sp->next_scan_ms
            || (ngx_http_reductrai_shm()->scan_wanted
                && now >= sp->next_wanted_ms)))
    {
        if (ngx_thread_task_post(rmcf->thread_pool, sp->scan_task) == NGX_OK)
        {
            sp->scanning = 1;
            sp->scan_start_ms = now;
            sp->generation++;
            ngx_http_reductrai_shm()->scan_wanted = 0;
        }
    }

    ngx_http_reductrai_start_uploads();

    /* an idle instance still knows whether its storage works */

    if (!exiting && !sp->probing && sp->inflight == 0
        && ngx_http_reductrai_queued() == 0
        && now >= sp->next_try_ms
        && (ngx_http_reductrai_shm()->storage_state
            == NGX_HTTP_REDUCTRAI_STORAGE_UNKNOWN
            || now - sp->last_contact_ms >= NGX_HTTP_REDUCTRAI_PROBE_INTERVAL))
    {
        if (ngx_thread_task_post(rmcf->upload_thread_pool, sp->probe_task)
            == NGX_OK)
        {
            sp->probing = 1;
            sp->last_contact_ms = now;
        }
    }
}


/*
 * Whether this worker is the one that scans: it says so each tick; a
 * scanner that is gone, or stops ticking (stuck), is replaced by the next
 * worker that notices, and an exiting one steps down.  Two scanners for a
 * moment are harmless: a segment is shipped under its lock, once.
 */

static ngx_uint_t
ngx_http_reductrai_scanner(ngx_int_t exiting, int64_t now)
{
    ngx_atomic_uint_t              pid, scanner;
    ngx_http_reductrai_shm_t      *sh;
    ngx_http_reductrai_shipper_t  *sp;

    sh = ngx_http_reductrai_shm();
    sp = &ngx_http_reductrai_shipper;
    pid = (ngx_atomic_uint_t) ngx_pid;
    scanner = sh->scanner;

    if (exiting) {
        if (scanner == pid) {
            (void) ngx_atomic_cmp_set(&sh->scanner, pid, 0);
        }

        return 0;
    }

    if (scanner != pid) {
        /* a killed scanner's logs are recovered at once, not in 3 s */

        if (scanner != 0
            && now - (int64_t) sh->scanner_seen_ms
               < NGX_HTTP_REDUCTRAI_SCANNER_STALE
            && (kill((ngx_pid_t) scanner, 0) == 0 || ngx_errno != NGX_ESRCH))
        {
            return 0;
        }

        /* first, or a worker that comes between would find it stale too */
        sh->scanner_seen_ms = (ngx_atomic_uint_t) now;

        if (!ngx_atomic_cmp_set(&sh->scanner, scanner, pid)) {
            return 0;
        }

        /* the last scanner may have died: recover what it left at once */
        sp->next_scan_ms = 0;

        ngx_log_error(NGX_LOG_INFO, sp->log, 0,
                      "reductrai: this worker scans the spool now");
    }

    sh->scanner_seen_ms = (ngx_atomic_uint_t) now;

    return 1;
}


ngx_uint_t
ngx_http_reductrai_shipper_idle(ngx_int_t give_up)
{
    ngx_http_reductrai_shipper_t  *sp;

    sp = &ngx_http_reductrai_shipper;

    if (give_up && !sp->gave_up) {
        sp->gave_up = 1;

        /* a stalled transfer would hold the worker for its own timeout */
        ngx_http_reductrai_http_cancel();

        if (ngx_http_reductrai_queued() + sp->inflight > 0) {
            ngx_log_error(NGX_LOG_WARN, sp->log, 0,
                          "reductrai: %ui segment(s) left in the spool for "
                          "the next worker to ship",
                          ngx_http_reductrai_queued() + sp->inflight);
        }
    }

    return sp->inflight == 0 && !sp->scanning && !sp->probing
           && (ngx_http_reductrai_queued() == 0 || give_up
               || sp->failures > 0);
}


static void
ngx_http_reductrai_start_uploads(void)
{
    ngx_uint_t                       i, added;
    ngx_http_reductrai_upload_t     *up;
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_candidate_t  *next;
    ngx_http_reductrai_main_conf_t  *rmcf;

    sp = &ngx_http_reductrai_shipper;
    rmcf = ngx_http_reductrai_worker_conf();

    if (sp->uploads == NULL || sp->gave_up
        || ngx_http_reductrai_now_ms() < sp->next_try_ms)
    {
        return;
    }

    for (i = 0; i < sp->nuploads; i++) {
        up = &sp->uploads[i];

        if (up->busy) {
            continue;
        }

        next = ngx_http_reductrai_queue_next(&added);
        if (next == NULL) {
            return;
        }

        up->seg = *next;

        if (ngx_thread_task_post(rmcf->upload_thread_pool, up->task)
            != NGX_OK)
        {
            return;
        }

        ngx_http_reductrai_queue_pop(added);

        up->busy = 1;
        sp->inflight++;

        /* during a failure, one upload at a time tests the water */
        if (sp->failures > 0) {
            return;
        }
    }
}


/* runs in an upload thread */

static void
ngx_http_reductrai_upload(void *data, ngx_log_t *log)
{
    ngx_http_reductrai_upload_t *up = data;

    int          fd;
    char         path[NGX_MAX_PATH];
    struct stat  sb, sp;

    up->error = 0;
    up->storage_rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;
    up->err.status = 0;
    up->err.message[0] = '\0';

    ngx_sprintf((u_char *) path, "%s/%s%Z", ngx_http_reductrai_spool_path(),
                up->seg.name);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        up->error = errno;
        up->rc = (errno == ENOENT) ? NGX_HTTP_REDUCTRAI_GONE
                                   : NGX_HTTP_REDUCTRAI_LOCAL_ERROR;
        return;
    }

    if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        up->error = errno;
        up->rc = (errno == EWOULDBLOCK) ? NGX_HTTP_REDUCTRAI_BUSY
                                        : NGX_HTTP_REDUCTRAI_LOCAL_ERROR;
        (void) close(fd);
        return;
    }

    /* the lock is on what the name meant when we opened it: still so? */

    if (fstat(fd, &sb) == -1 || stat(path, &sp) == -1
        || sb.st_ino != sp.st_ino || sb.st_dev != sp.st_dev)
    {
        up->rc = NGX_HTTP_REDUCTRAI_GONE;
        (void) close(fd);
        return;
    }

    up->rc = ngx_http_reductrai_upload_locked(up, fd, path, sb.st_size);

    (void) close(fd);
}


static ngx_http_reductrai_upload_rc_e
ngx_http_reductrai_upload_locked(ngx_http_reductrai_upload_t *up, int fd,
    const char *path, int64_t size)
{
    int                               torn;
    char                              key[NGX_MAX_PATH];
    ngx_int_t                         rc;
    ngx_http_reductrai_trailer_t      trailer;
    ngx_http_reductrai_storage_t     *st;
    ngx_http_reductrai_segment_id_t   id;
    ngx_http_reductrai_spool_state_e  state;

    st = ngx_http_reductrai_worker_conf()->storage;

    if (ngx_http_reductrai_spool_name_parse(up->seg.name, &id, &state) != 0)
    {
        up->error = EINVAL;
        return NGX_HTTP_REDUCTRAI_LOCAL_ERROR;
    }

    /* a sealed segment always ends with a trailer; if not, redo it */

    if (ngx_http_reductrai_trailer_read_fd(fd, size, &trailer)
        != NGX_HTTP_REDUCTRAI_OK)
    {
        rc = ngx_http_reductrai_recover(fd, up->seg.name, &id, &torn);

        if (rc == NGX_DECLINED) {
            rc = ngx_http_reductrai_quarantine(AT_FDCWD, path);

            if (rc == NGX_OK) {
                return NGX_HTTP_REDUCTRAI_QUARANTINED;
            }
        }

        if (rc == NGX_OK) {
            return NGX_HTTP_REDUCTRAI_RECOVERED;
        }

        /* errno only now: a success leaves whatever a library call set */
        up->error = errno;

        return NGX_HTTP_REDUCTRAI_LOCAL_ERROR;
    }

    if (ngx_http_reductrai_object_key(key, sizeof(key), st->prefix, &id)
        == 0)
    {
        up->error = ENAMETOOLONG;
        return NGX_HTTP_REDUCTRAI_LOCAL_ERROR;
    }

    up->seg.size = size;
    up->storage_rc = st->backend->put(st, key, fd, size, &up->err);

    if (up->storage_rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        return NGX_HTTP_REDUCTRAI_FAILED;
    }

    /* confirmed by storage: only now may the spool let it go */

    if (unlink(path) == -1) {
        up->error = errno;
    }

    return NGX_HTTP_REDUCTRAI_SHIPPED;
}


static void
ngx_http_reductrai_upload_done(ngx_event_t *ev)
{
    ngx_http_reductrai_shm_t      *sh;
    ngx_http_reductrai_upload_t   *up;
    ngx_http_reductrai_shipper_t  *sp;

    up = ev->data;
    sp = &ngx_http_reductrai_shipper;
    sh = ngx_http_reductrai_shm();

    up->busy = 0;
    sp->inflight--;
    sp->last_contact_ms = ngx_http_reductrai_now_ms();

    switch (up->rc) {

    case NGX_HTTP_REDUCTRAI_SHIPPED:
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                       "reductrai shipped \"%s\", %L bytes",
                       up->seg.name, up->seg.size);

        (void) ngx_atomic_fetch_add(&sh->uploads, 1);
        (void) ngx_atomic_fetch_add(&sh->storage_bytes, up->seg.size);
        ngx_http_reductrai_gauge_sub(&sh->spool_bytes, up->seg.size);
        ngx_http_reductrai_gauge_sub(&sh->spool_segments, 1);

        /*
         * the lag and the counts settle with a scan as soon as idle,
         * by the scanner, whichever worker that is
         */
        if (ngx_http_reductrai_queued() == 0 && sp->inflight == 0) {
            sh->scan_wanted = 1;
        }

        if (up->error) {
            ngx_log_error(NGX_LOG_CRIT, ev->log, up->error,
                          "reductrai: unlink() \"%s\" failed after upload",
                          up->seg.name);
        }

        sp->failures = 0;
        sp->next_try_ms = 0;
        ngx_http_reductrai_storage_state(NGX_HTTP_REDUCTRAI_STORAGE_CONNECTED,
                                         ev->log, NULL);
        break;

    case NGX_HTTP_REDUCTRAI_FAILED:
        (void) ngx_atomic_fetch_add(&sh->upload_errors, 1);
        ngx_http_reductrai_storage_state(
                                    NGX_HTTP_REDUCTRAI_STORAGE_DISCONNECTED,
                                    ev->log, &up->err);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                       "reductrai upload of \"%s\" failed: %s",
                       up->seg.name, up->err.message);

        /* a segment that keeps failing must not hold up the others */
        up->seg.failures++;
        ngx_http_reductrai_remember_failure(&up->seg);
        ngx_http_reductrai_enqueue(&up->seg, ev->log);
        ngx_http_reductrai_backoff();
        break;

    case NGX_HTTP_REDUCTRAI_RECOVERED:
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "reductrai: spool segment \"%s\" had no valid trailer "
                      "and was rebuilt", up->seg.name);
        ngx_http_reductrai_enqueue(&up->seg, ev->log);
        break;

    case NGX_HTTP_REDUCTRAI_QUARANTINED:
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "reductrai: spool segment \"%s\" is unreadable and "
                      "was moved to \"%s\"", up->seg.name,
                      NGX_HTTP_REDUCTRAI_QUARANTINE);
        (void) ngx_atomic_fetch_add(&sh->quarantined, 1);
        break;

    case NGX_HTTP_REDUCTRAI_LOCAL_ERROR:
        if (ngx_http_reductrai_log_once(&sp->local_logged_ms)) {
            ngx_log_error(NGX_LOG_CRIT, ev->log, up->error,
                          "reductrai: reading spool segment \"%s\" failed",
                          up->seg.name);
        }

        break;

    default: /* BUSY, GONE */
        break;
    }

    ngx_http_reductrai_start_uploads();
}


static void
ngx_http_reductrai_remember_failure(ngx_http_reductrai_candidate_t *c)
{
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_candidate_t  *f;

    sp = &ngx_http_reductrai_shipper;

    f = ngx_http_reductrai_find(sp->failed,
                                ngx_min(sp->nfailed,
                                        NGX_HTTP_REDUCTRAI_FAILED_MAX),
                                c->name);
    if (f == NULL) {
        f = &sp->failed[sp->nfailed++ % NGX_HTTP_REDUCTRAI_FAILED_MAX];
    }

    *f = *c;
}


/* the same trouble every second is logged once a minute */

ngx_uint_t
ngx_http_reductrai_log_once(int64_t *last)
{
    int64_t  now;

    now = ngx_http_reductrai_now_ms();

    if (*last != 0 && now - *last < 60000) {
        return 0;
    }

    *last = now;

    return 1;
}


/* capped exponential backoff with jitter, so instances do not align */

static void
ngx_http_reductrai_backoff(void)
{
    ngx_msec_t                     delay;
    ngx_http_reductrai_shipper_t  *sp;

    sp = &ngx_http_reductrai_shipper;

    if (sp->failures < 20) {
        sp->failures++;
    }

    delay = NGX_HTTP_REDUCTRAI_BACKOFF_BASE << ngx_min(sp->failures, 10);
    delay = ngx_min(delay, NGX_HTTP_REDUCTRAI_BACKOFF_CAP);
    delay = delay / 2 + (ngx_msec_t) ngx_random() % (delay / 2 + 1);

    sp->next_try_ms = ngx_http_reductrai_now_ms() + delay;
}


static void
ngx_http_reductrai_probe(void *data, ngx_log_t *log)
{
    ngx_http_reductrai_shipper_t *sp = data;

    ngx_http_reductrai_storage_t  *st;

    st = ngx_http_reductrai_worker_conf()->storage;

    sp->probe_err.status = 0;
    sp->probe_err.message[0] = '\0';
    sp->probe_rc = st->backend->probe(st, &sp->probe_err);
}


static void
ngx_http_reductrai_probe_done(ngx_event_t *ev)
{
    ngx_http_reductrai_shipper_t  *sp;

    sp = ev->data;
    sp->probing = 0;

    if (sp->probe_rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        ngx_http_reductrai_storage_state(NGX_HTTP_REDUCTRAI_STORAGE_CONNECTED,
                                         ev->log, NULL);
        return;
    }

    ngx_http_reductrai_storage_state(NGX_HTTP_REDUCTRAI_STORAGE_DISCONNECTED,
                                     ev->log, &sp->probe_err);
    ngx_http_reductrai_backoff();
}


/* runs in a thread: walks the spool */

static void
ngx_http_reductrai_scan(void *data, ngx_log_t *log)
{
    ngx_http_reductrai_shipper_t  *sp = data;

    int                               fd;
    DIR                              *dir;
    struct stat                       sb;
    struct dirent                    *de;
    ngx_http_reductrai_segment_id_t   id;
    ngx_http_reductrai_spool_state_e  state;
    ngx_http_reductrai_scan_t        *scan;

    scan = &sp->scan;
    scan->found.len = 0;
    scan->bytes = 0;
    scan->files = 0;
    scan->oldest_ms = 0;
    scan->recovered = 0;
    scan->quarantined = 0;
    scan->error = 0;
    scan->complete = 0;
    scan->failed[0] = '\0';

    ngx_sprintf((u_char *) scan->own, "-%P-%Z", ngx_pid);

    dir = opendir(ngx_http_reductrai_spool_path());
    if (dir == NULL) {
        scan->error = errno;
        return;
    }

    fd = dirfd(dir);

    for ( ;; ) {
        /* readdir() says "the end" and "failed" alike, but for errno */
        errno = 0;

        de = readdir(dir);
        if (de == NULL) {
            break;
        }

        if (de->d_name[0] == '.') {
            ngx_http_reductrai_scan_hidden(fd, de->d_name);
            continue;
        }

        if (ngx_http_reductrai_spool_name_parse(de->d_name, &id, &state)
            != 0)
        {
            /* the quarantine directory, or files that are not ours */
            continue;
        }

        if (fstatat(fd, de->d_name, &sb, 0) == -1 || !S_ISREG(sb.st_mode))
        {
            continue;
        }

        if (state == NGX_HTTP_REDUCTRAI_SPOOL_LOG) {
            ngx_http_reductrai_scan_log(scan, fd, de->d_name, &id,
                                        sb.st_size);
            continue;
        }

        if (state == NGX_HTTP_REDUCTRAI_SPOOL_OPEN) {
            ngx_http_reductrai_scan_open(scan, fd, de->d_name, &id,
                                         sb.st_size);
            continue;
        }

        ngx_http_reductrai_scan_found(scan, de->d_name, sb.st_size,
                                      id.first_ms);
    }

    if (errno != 0) {
        /* a partial listing must not replace the queue */
        scan->error = errno;
        closedir(dir);
        return;
    }

    closedir(dir);

    ngx_http_reductrai_scan_sort(scan);

    scan->complete = 1;
}


/* here, in the thread: 10^5 segments take the event loop 50 ms to sort */

static void
ngx_http_reductrai_scan_sort(ngx_http_reductrai_scan_t *scan)
{
    size_t  n;

    n = scan->found.len / sizeof(ngx_http_reductrai_candidate_t);

    if (n > 1) {
        ngx_qsort(scan->found.data, n, sizeof(ngx_http_reductrai_candidate_t),
                  ngx_http_reductrai_candidate_cmp);
    }
}


/*
 * An open segment whose lock can be taken has no writer any more (it died,
 * or gave up after a write error): cut it at its last complete record and
 * seal it.  What cannot be read at all is moved aside, never deleted.
 */

static void
ngx_http_reductrai_scan_open(ngx_http_reductrai_scan_t *scan, int dfd,
    const char *name, ngx_http_reductrai_segment_id_t *id, int64_t size)
{
    int          fd, torn;
    char         sealed[NGX_HTTP_REDUCTRAI_NAME_MAX];
    ngx_int_t    rc;
    struct stat  sb;

    fd = ngx_http_reductrai_scan_lock(dfd, name);

    if (fd == -1) {
        /* a live writer: part of the spool, and of the lag */
        ngx_http_reductrai_scan_found(scan, NULL, size, id->first_ms);
        return;
    }

    rc = ngx_http_reductrai_recover(fd, name, id, &torn);

    if (rc == NGX_DECLINED) {
        if (ngx_http_reductrai_quarantine(dfd, name) == NGX_OK) {
            scan->quarantined++;
        }

        (void) close(fd);
        return;
    }

    if (rc != NGX_OK) {
        /* still in the spool, and still counted against max_size */
        scan->error = errno;
        ngx_cpystrn((u_char *) scan->failed, (u_char *) name,
                    sizeof(scan->failed));
        ngx_http_reductrai_scan_found(scan, NULL, size, id->first_ms);
        (void) close(fd);
        return;
    }

    (void) unlinkat(dfd, name, 0);
    (void) close(fd);

    scan->recovered++;

    if (ngx_http_reductrai_spool_name(sealed, sizeof(sealed), id,
                                      NGX_HTTP_REDUCTRAI_SPOOL_SEALED)
        != 0
        && fstatat(dfd, sealed, &sb, 0) == 0)
    {
        ngx_http_reductrai_scan_found(scan, sealed, sb.st_size,
                                      id->first_ms);
    }
}


/*
 * A spool log whose lock can be taken has no writer any more: sealed here,
 * as its seal job would have, up to its last intact record.
 */

static void
ngx_http_reductrai_scan_log(ngx_http_reductrai_scan_t *scan, int dfd,
    const char *name, ngx_http_reductrai_segment_id_t *id, int64_t size)
{
    int                               fd;
    struct stat                       sb;
    ngx_http_reductrai_seal_result_t  res;

    fd = ngx_http_reductrai_scan_lock(dfd, name);

    if (fd == -1) {
        /* a live writer: part of the spool, and of the lag */
        ngx_http_reductrai_scan_found(scan, NULL, size, id->first_ms);
        return;
    }

    ngx_http_reductrai_seal_file(fd, name, NULL, &res);

    if (res.error) {
        /* still in the spool, and still counted against max_size */
        scan->error = res.error;
        ngx_cpystrn((u_char *) scan->failed, (u_char *) name,
                    sizeof(scan->failed));
        ngx_http_reductrai_scan_found(scan, NULL, size, id->first_ms);
        return;
    }

    scan->recovered++;
    scan->quarantined += res.quarantined;

    if (!res.leftover && fstatat(dfd, res.sealed, &sb, 0) == 0) {
        ngx_http_reductrai_scan_found(scan, res.sealed, sb.st_size,
                                      id->first_ms);
    }
}


/* fd of the file, locked, or -1 when a live process holds it */

static int
ngx_http_reductrai_scan_lock(int dfd, const char *name)
{
    int          fd;
    struct stat  sb, sp;

    fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    /* the same file still: not renamed or sealed meanwhile */

    if (flock(fd, LOCK_EX | LOCK_NB) == -1
        || fstat(fd, &sb) == -1 || fstatat(dfd, name, &sp, 0) == -1
        || sb.st_ino != sp.st_ino)
    {
        (void) close(fd);
        return -1;
    }

    return fd;
}


/*
 * Re-encodes the readable prefix of a segment under its sealed name.
 * NGX_DECLINED: nothing readable.
 */

static ngx_int_t
ngx_http_reductrai_recover(int fd, const char *name,
    ngx_http_reductrai_segment_id_t *id, int *torn)
{
    char                          tmp[NGX_MAX_PATH], sealed[NGX_MAX_PATH];
    size_t                        len;
    ssize_t                       kept;
    const char                   *spool;
    ngx_http_reductrai_trailer_t  trailer;

    spool = ngx_http_reductrai_spool_path();

    len = ngx_sprintf((u_char *) sealed, "%s/", spool) - (u_char *) sealed;

    if (ngx_http_reductrai_spool_name(sealed + len, sizeof(sealed) - len, id,
                                      NGX_HTTP_REDUCTRAI_SPOOL_SEALED)
        == 0)
    {
        errno = ENAMETOOLONG;
        return NGX_ERROR;
    }

    ngx_sprintf((u_char *) tmp, "%s/.recover.%s%Z", spool, sealed + len);

    if (lseek(fd, 0, SEEK_SET) == -1) {
        return NGX_ERROR;
    }

    kept = ngx_http_reductrai_segment_recover(fd, tmp, sealed,
                   (int) ngx_http_reductrai_worker_conf()->compression_level,
                   &trailer, torn);

    if (kept == -1) {
        return NGX_ERROR;
    }

    if (kept == 0 && *torn) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_reductrai_quarantine(int dfd, const char *name)
{
    char         to[NGX_MAX_PATH];
    const char  *base, *spool;

    spool = ngx_http_reductrai_spool_path();
    base = strrchr(name, '/');
    base = base ? base + 1 : name;

    ngx_sprintf((u_char *) to, "%s/%s%Z", spool, NGX_HTTP_REDUCTRAI_QUARANTINE);

    if (mkdir(to, 0700) == -1 && errno != EEXIST) {
        return NGX_ERROR;
    }

    ngx_sprintf((u_char *) to, "%s/%s/%s%Z", spool,
                NGX_HTTP_REDUCTRAI_QUARANTINE, base);

    return renameat(dfd, name, AT_FDCWD, to) == 0 ? NGX_OK : NGX_ERROR;
}


/*
 * Hidden files are temporaries: a segment being created, or a recovery in
 * progress.  Once old and unlocked they are leftovers of a crash.
 */

static void
ngx_http_reductrai_scan_hidden(int dfd, const char *name)
{
    int          fd;
    struct stat  sb;

    if (ngx_strncmp(name, ".new.", 5) != 0
        && ngx_strncmp(name, ".recover.", 9) != 0)
    {
        return;
    }

    if (fstatat(dfd, name, &sb, 0) == -1
        || time(NULL) - sb.st_mtime < NGX_HTTP_REDUCTRAI_STALE_HIDDEN)
    {
        return;
    }

    fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return;
    }

    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        (void) unlinkat(dfd, name, 0);
    }

    (void) close(fd);
}


static void
ngx_http_reductrai_scan_found(ngx_http_reductrai_scan_t *scan,
    const char *name, int64_t size, int64_t first_ms)
{
    ngx_http_reductrai_candidate_t  *c;

    scan->bytes += size;
    scan->files++;

    if (scan->oldest_ms == 0 || first_ms < scan->oldest_ms) {
        scan->oldest_ms = first_ms;
    }

    if (name == NULL) {
        return;
    }

    if (ngx_http_reductrai_buf_reserve(&scan->found,
                                       sizeof(ngx_http_reductrai_candidate_t))
        != NGX_HTTP_REDUCTRAI_OK)
    {
        return;
    }

    c = (ngx_http_reductrai_candidate_t *) (scan->found.data
                                            + scan->found.len);
    scan->found.len += sizeof(ngx_http_reductrai_candidate_t);

    ngx_cpystrn((u_char *) c->name, (u_char *) name, sizeof(c->name));
    c->size = size;
    c->first_ms = first_ms;
    c->own = ngx_strstr(name, scan->own) != NULL;
    c->failures = 0;
    c->taken = 0;
    c->generation = 0;
}


static void
ngx_http_reductrai_scan_done(ngx_event_t *ev)
{
    int64_t                          now, pause;
    ngx_http_reductrai_shm_t        *sh;
    ngx_http_reductrai_scan_t       *scan;
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_main_conf_t  *rmcf;

    sp = ev->data;
    scan = &sp->scan;
    sh = ngx_http_reductrai_shm();
    rmcf = ngx_http_reductrai_worker_conf();

    sp->scanning = 0;

    /* scans take at most a tenth of the time, whatever the spool holds */

    now = ngx_http_reductrai_now_ms();
    pause = (now - sp->scan_start_ms) * NGX_HTTP_REDUCTRAI_SCAN_PAUSE;
    sp->next_wanted_ms = now + pause;
    sp->next_scan_ms = now + ngx_max(pause, NGX_HTTP_REDUCTRAI_SCAN_INTERVAL);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "reductrai spool scan: %ui files, %L ms, next in %L ms",
                   scan->files, now - sp->scan_start_ms,
                   sp->next_scan_ms - now);

    if (scan->error && ngx_http_reductrai_log_once(&sp->scan_logged_ms)) {
        ngx_log_error(NGX_LOG_CRIT, ev->log, scan->error,
                      "reductrai: spool scan of \"%V\" failed%s%s",
                      &rmcf->spool, scan->failed[0] ? " at " : "",
                      scan->failed);
    }

    if (!scan->complete) {
        /* what we knew of the spool is still better than nothing */
        return;
    }

    if (scan->recovered) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "reductrai: recovered %ui open segment(s) left in the "
                      "spool", scan->recovered);
    }

    if (scan->quarantined) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "reductrai: %ui unreadable spool file(s) moved to "
                      "\"%V/%s\"", scan->quarantined, &rmcf->spool,
                      NGX_HTTP_REDUCTRAI_QUARANTINE);
        (void) ngx_atomic_fetch_add(&sh->quarantined, scan->quarantined);
    }

    sh->spool_bytes = (ngx_atomic_uint_t) scan->bytes;
    sh->spool_segments = scan->files;
    sh->oldest_ms = (ngx_atomic_uint_t) scan->oldest_ms;

    ngx_http_reductrai_queue_replace(scan);

    ngx_http_reductrai_start_uploads();
}


/*
 * What the spool holds replaces what we knew, except uploads in flight,
 * segments added while the scan ran (it may have passed them by), and
 * remembered failures, which go last.  The sorted listing is taken over
 * whole (its buffer swapped, not copied) and each exception is a binary
 * search: a few dozen steps whatever the spool holds.
 */

static void
ngx_http_reductrai_queue_replace(ngx_http_reductrai_scan_t *scan)
{
    ngx_uint_t                       i;
    ngx_http_reductrai_buf_t         old;
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_candidate_t  *f, c;

    sp = &ngx_http_reductrai_shipper;

    old = sp->listing;
    sp->listing = scan->found;
    scan->found = old;          /* the next scan fills it again */

    sp->nlisted = sp->listing.len / sizeof(ngx_http_reductrai_candidate_t);
    sp->nlive = sp->nlisted;
    sp->head = 0;

    ngx_http_reductrai_keep_added_since_scan();

    for (i = 0; i < sp->nuploads; i++) {
        if (sp->uploads[i].busy) {
            ngx_http_reductrai_take_listed(&sp->uploads[i].seg);
        }
    }

    for (i = 0; i < ngx_min(sp->nfailed, NGX_HTTP_REDUCTRAI_FAILED_MAX); i++)
    {
        f = ngx_http_reductrai_listed(&sp->failed[i]);

        if (f != NULL) {
            c = *f;
            c.failures = sp->failed[i].failures;
            ngx_http_reductrai_enqueue(&c, sp->log);
        }
    }
}


static void
ngx_http_reductrai_keep_added_since_scan(void)
{
    ngx_uint_t                       i, n;
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_candidate_t  *added;

    sp = &ngx_http_reductrai_shipper;
    added = (ngx_http_reductrai_candidate_t *) sp->added.data;
    n = 0;

    for (i = 0; i < sp->nadded; i++) {
        if (added[i].generation != sp->generation) {
            continue;           /* listed, if still in the spool */
        }

        ngx_http_reductrai_take_listed(&added[i]);
        added[n++] = added[i];
    }

    sp->nadded = n;
    sp->added.len = n * sizeof(ngx_http_reductrai_candidate_t);
}


static ngx_uint_t
ngx_http_reductrai_queued(void)
{
    return ngx_http_reductrai_shipper.nlive
           + ngx_http_reductrai_shipper.nadded;
}


/* the first in shipping order; *added says which list holds it */

static ngx_http_reductrai_candidate_t *
ngx_http_reductrai_queue_next(ngx_uint_t *added)
{
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_candidate_t  *listed, *first;

    sp = &ngx_http_reductrai_shipper;
    listed = (ngx_http_reductrai_candidate_t *) sp->listing.data;

    while (sp->head < sp->nlisted && listed[sp->head].taken) {
        sp->head++;
    }

    listed = (sp->head < sp->nlisted) ? &listed[sp->head] : NULL;
    first = sp->nadded ? (ngx_http_reductrai_candidate_t *) sp->added.data
                       : NULL;

    *added = first != NULL
             && (listed == NULL
                 || ngx_http_reductrai_candidate_cmp(first, listed) < 0);

    return *added ? first : listed;
}


static void
ngx_http_reductrai_queue_pop(ngx_uint_t added)
{
    ngx_http_reductrai_shipper_t  *sp;

    sp = &ngx_http_reductrai_shipper;

    if (!added) {
        sp->head++;
        sp->nlive--;
        return;
    }

    sp->nadded--;
    sp->added.len -= sizeof(ngx_http_reductrai_candidate_t);
    ngx_memmove(sp->added.data,
                sp->added.data + sizeof(ngx_http_reductrai_candidate_t),
                sp->added.len);
}


/*
 * Into the short list of segments added since the last scan, in order; a
 * listed copy of the segment is taken out, so it ships once.
 */

static ngx_int_t
ngx_http_reductrai_queue_push(ngx_http_reductrai_candidate_t *c)
{
    ngx_uint_t                       i;
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_candidate_t  *added;

    sp = &ngx_http_reductrai_shipper;
    added = (ngx_http_reductrai_candidate_t *) sp->added.data;

    if (ngx_http_reductrai_find(added, sp->nadded, c->name) != NULL) {
        return NGX_OK;
    }

    /*
     * Bounded, since it is walked and moved: what sorts past a full list
     * stays in the spool, for the scanner's next listing.
     */

    if (sp->nadded == NGX_HTTP_REDUCTRAI_ADDED_MAX) {
        if (ngx_http_reductrai_candidate_cmp(&added[sp->nadded - 1], c)
            <= 0)
        {
            return NGX_OK;
        }

        sp->nadded--;
        sp->added.len -= sizeof(ngx_http_reductrai_candidate_t);
    }

    if (ngx_http_reductrai_buf_reserve(&sp->added,
                                       sizeof(ngx_http_reductrai_candidate_t))
        != NGX_HTTP_REDUCTRAI_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_reductrai_take_listed(c);

    added = (ngx_http_reductrai_candidate_t *) sp->added.data;

    for (i = sp->nadded; i > 0; i--) {
        if (ngx_http_reductrai_candidate_cmp(&added[i - 1], c) <= 0) {
            break;
        }

        added[i] = added[i - 1];
    }

    added[i] = *c;
    added[i].taken = 0;
    added[i].generation = sp->generation;

    sp->nadded++;
    sp->added.len += sizeof(ngx_http_reductrai_candidate_t);

    return NGX_OK;
}


static void
ngx_http_reductrai_enqueue(ngx_http_reductrai_candidate_t *c, ngx_log_t *log)
{
    if (ngx_http_reductrai_queue_push(c) != NGX_OK) {
        /* not lost: the next scan lists it again */
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "reductrai: queueing \"%s\" for upload failed",
                      c->name);
    }
}


/* the listed copy of a segment still to ship, by binary search */

static ngx_http_reductrai_candidate_t *
ngx_http_reductrai_listed(const ngx_http_reductrai_candidate_t *key)
{
    ngx_http_reductrai_shipper_t    *sp;
    ngx_http_reductrai_candidate_t  *c;

    sp = &ngx_http_reductrai_shipper;

    if (sp->nlisted == 0) {
        return NULL;
    }

    c = bsearch(key, sp->listing.data, sp->nlisted,
                sizeof(ngx_http_reductrai_candidate_t),
                ngx_http_reductrai_order_cmp);

    if (c == NULL || c->taken
        || c < (ngx_http_reductrai_candidate_t *) sp->listing.data + sp->head)
    {
        return NULL;
    }

    return c;
}


static void
ngx_http_reductrai_take_listed(const ngx_http_reductrai_candidate_t *c)
{
    ngx_http_reductrai_candidate_t  *listed;

    listed = ngx_http_reductrai_listed(c);

    if (listed != NULL) {
        listed->taken = 1;
        ngx_http_reductrai_shipper.nlive--;
    }
}


static ngx_http_reductrai_candidate_t *
ngx_http_reductrai_find(ngx_http_reductrai_candidate_t *list, ngx_uint_t n,
    const char *name)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (ngx_strcmp(list[i].name, name) == 0) {
            return &list[i];
        }
    }

    return NULL;
}


/* shipping order: failing segments last, own first, then the oldest */

static int ngx_libc_cdecl
ngx_http_reductrai_candidate_cmp(const void *a, const void *b)
{
    const ngx_http_reductrai_candidate_t  *x = a, *y = b;

    if (x->failures != y->failures) {
        return x->failures < y->failures ? -1 : 1;
    }

    return ngx_http_reductrai_order_cmp(a, b);
}


/* the order of a listing, where no segment has failed yet */

static int ngx_libc_cdecl
ngx_http_reductrai_order_cmp(const void *a, const void *b)
{
    const ngx_http_reductrai_candidate_t  *x = a, *y = b;

    if (x->own != y->own) {
        return x->own ? -1 : 1;
    }

    if (x->first_ms != y->first_ms) {
        return x->first_ms < y->first_ms ? -1 : 1;
    }

    return ngx_strcmp(x->name, y->name);
}
