
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Counters of the whole instance, in a shared memory zone that every worker
 * updates with atomic operations; the zone is kept across reloads, so the
 * counters are too.  The slab mutex guards only additions to the stream
 * name registry.
 */


#include "ngx_http_reductrai_module.h"


#define NGX_HTTP_REDUCTRAI_SHM_SIZE  (64 * 1024)


static ngx_int_t ngx_http_reductrai_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_uint_t ngx_http_reductrai_add_slot(ngx_http_reductrai_shm_t *sh,
    ngx_str_t *name, ngx_uint_t max);
static ngx_int_t ngx_http_reductrai_find_slot(ngx_http_reductrai_shm_t *sh,
    ngx_str_t *name);


static ngx_http_reductrai_shm_t  *ngx_http_reductrai_sh;


ngx_int_t
ngx_http_reductrai_shm_add(ngx_conf_t *cf,
    ngx_http_reductrai_main_conf_t *rmcf)
{
    ngx_str_t  name;

    ngx_str_set(&name, "reductrai");

    rmcf->shm_zone = ngx_shared_memory_add(cf, &name,
                                           NGX_HTTP_REDUCTRAI_SHM_SIZE,
                                           &ngx_http_reductrai_module);
    if (rmcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    rmcf->shm_zone->init = ngx_http_reductrai_init_zone;
    rmcf->shm_zone->data = rmcf;

    return NGX_OK;
}


static ngx_int_t
ngx_http_reductrai_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_str_t                       *name;
    ngx_uint_t                       i;
    ngx_slab_pool_t                 *shpool;
    ngx_http_reductrai_shm_t        *sh;
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data != NULL) {
        /* a reload: keep counting where the old configuration stopped */
        sh = data;

    } else {
        sh = ngx_slab_calloc(shpool, sizeof(ngx_http_reductrai_shm_t));
        if (sh == NULL) {
            return NGX_ERROR;
        }

        sh->start_time = ngx_time();

        ngx_memcpy(sh->streams[NGX_HTTP_REDUCTRAI_OTHER].name, "other", 6);
        sh->streams[NGX_HTTP_REDUCTRAI_OTHER].ready = 1;
    }

    shm_zone->data = sh;

    /*
     * The configured names first, in the master, so that names clients
     * choose never take their slots; on a reload, the old workers may be
     * adding names meanwhile: under the lock.
     */

    if (rmcf->streams == NULL) {
        return NGX_OK;
    }

    name = rmcf->streams->elts;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < rmcf->streams->nelts; i++) {
        if (ngx_http_reductrai_add_slot(sh, &name[i],
                                        NGX_HTTP_REDUCTRAI_STREAMS)
            == NGX_HTTP_REDUCTRAI_OTHER
            && !(name[i].len == 5
                 && ngx_strncmp(name[i].data, "other", 5) == 0))
        {
            ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                          "reductrai stream \"%V\" is counted as \"other\": "
                          "the %d stream slots are taken (names stay until "
                          "nginx restarts)", &name[i],
                          NGX_HTTP_REDUCTRAI_STREAMS);
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return NGX_OK;
}


void
ngx_http_reductrai_shm_init_process(ngx_cycle_t *cycle)
{
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_reductrai_module);

    if (rmcf != NULL && rmcf->shm_zone != NULL) {
        ngx_http_reductrai_sh = rmcf->shm_zone->data;
    }
}


ngx_http_reductrai_shm_t *
ngx_http_reductrai_shm(void)
{
    return ngx_http_reductrai_sh;
}


/*
 * Streams get one of 16 slots in the order they first appear in this
 * instance, the configured names first (init_zone); a name that only a
 * variable gives takes one of the first NGX_HTTP_REDUCTRAI_DYNAMIC.  Names
 * beyond that, and invalid ones, count as "other", and as an overflow.
 * Names are written once, before "ready", and slots fill in order, so
 * lookups need no lock, and once the last slot a new name may take is
 * ready, no request takes the lock again: a client sending a new name with
 * every request costs a scan of 16 names, not the cross-worker mutex.
 */

ngx_uint_t
ngx_http_reductrai_stream_slot(ngx_str_t *name)
{
    ngx_int_t                  slot;
    ngx_uint_t                 added;
    ngx_slab_pool_t           *shpool;
    ngx_http_reductrai_shm_t  *sh;

    sh = ngx_http_reductrai_sh;

    if (name->len == 5 && ngx_strncmp(name->data, "other", 5) == 0) {
        return NGX_HTTP_REDUCTRAI_OTHER;
    }

    if (!ngx_http_reductrai_valid_stream(name->data, name->len)) {
        goto overflow;
    }

    slot = ngx_http_reductrai_find_slot(sh, name);
    if (slot >= 0) {
        return slot;
    }

    if (sh->streams[NGX_HTTP_REDUCTRAI_DYNAMIC - 1].ready) {
        goto overflow;
    }

    shpool = (ngx_slab_pool_t *) ngx_http_reductrai_worker_conf()
                                 ->shm_zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    added = ngx_http_reductrai_add_slot(sh, name, NGX_HTTP_REDUCTRAI_DYNAMIC);

    ngx_shmtx_unlock(&shpool->mutex);

    if (added != NGX_HTTP_REDUCTRAI_OTHER) {
        return added;
    }

overflow:

    (void) ngx_atomic_fetch_add(&sh->stream_overflow, 1);

    return NGX_HTTP_REDUCTRAI_OTHER;
}


/* the slot of name, added among the first max when new; under the lock */

static ngx_uint_t
ngx_http_reductrai_add_slot(ngx_http_reductrai_shm_t *sh, ngx_str_t *name,
    ngx_uint_t max)
{
    ngx_int_t   slot;
    ngx_uint_t  i;

    slot = ngx_http_reductrai_find_slot(sh, name);
    if (slot >= 0) {
        return slot;
    }

    for (i = 0; i < max; i++) {
        if (!sh->streams[i].ready) {
            ngx_memcpy(sh->streams[i].name, name->data, name->len);
            sh->streams[i].name[name->len] = '\0';
            ngx_memory_barrier();
            sh->streams[i].ready = 1;
            return i;
        }
    }

    return NGX_HTTP_REDUCTRAI_OTHER;
}


static ngx_int_t
ngx_http_reductrai_find_slot(ngx_http_reductrai_shm_t *sh, ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_REDUCTRAI_STREAMS; i++) {
        if (!sh->streams[i].ready) {
            return -1;
        }

        if (ngx_strncmp(sh->streams[i].name, name->data, name->len) == 0
            && sh->streams[i].name[name->len] == '\0')
        {
            return i;
        }
    }

    return -1;
}


/*
 * Storage state changes are logged once, by the worker that saw the change
 * first, with the reason (never a secret: backends keep them out); while
 * disconnected, a new kind of failure (another HTTP status) is logged too,
 * so that a network error turning into a 403 does not go unseen.
 */

void
ngx_http_reductrai_storage_state(ngx_uint_t state, ngx_log_t *log,
    ngx_http_reductrai_storage_err_t *err)
{
    ngx_uint_t                 changed;
    ngx_atomic_uint_t          old, status;
    ngx_http_reductrai_shm_t  *sh;

    sh = ngx_http_reductrai_sh;
    changed = 0;

    for ( ;; ) {
        old = sh->storage_state;

        if (old == state) {
            break;
        }

        if (ngx_atomic_cmp_set(&sh->storage_state, old, state)) {
            changed = 1;
            break;
        }
    }

    status = err ? (ngx_atomic_uint_t) err->status : 0;
    old = sh->storage_status;

    if (old != status && ngx_atomic_cmp_set(&sh->storage_status, old, status)
        && state == NGX_HTTP_REDUCTRAI_STORAGE_DISCONNECTED)
    {
        changed = 1;
    }

    if (!changed) {
        return;
    }

    if (state == NGX_HTTP_REDUCTRAI_STORAGE_CONNECTED) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "reductrai storage \"%s\" is reachable",
                      ngx_http_reductrai_worker_conf()->storage->uri);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "reductrai storage \"%s\" failed: %s; segments stay in "
                  "the spool and are retried",
                  ngx_http_reductrai_worker_conf()->storage->uri,
                  err ? err->message : "unknown error");
}


ngx_uint_t
ngx_http_reductrai_spool_full(void)
{
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_reductrai_worker_conf();

    return (off_t) ngx_http_reductrai_sh->spool_bytes >= rmcf->spool_max_size;
}


/*
 * A gauge corrected by spool scans may meet a late decrement for a file the
 * scan already missed: never let it wrap below zero.
 */

void
ngx_http_reductrai_gauge_sub(ngx_atomic_t *gauge, ngx_atomic_uint_t value)
{
    ngx_atomic_uint_t  old;

    do {
        old = *gauge;
    } while (!ngx_atomic_cmp_set(gauge, old, old > value ? old - value : 0));
}


/* age in seconds of the oldest record not yet in storage */

int64_t
ngx_http_reductrai_lag(void)
{
    int64_t                    lag;
    ngx_http_reductrai_shm_t  *sh;

    sh = ngx_http_reductrai_sh;

    if (sh->spool_segments == 0 || sh->oldest_ms == 0) {
        return 0;
    }

    lag = (ngx_http_reductrai_now_ms() - (int64_t) sh->oldest_ms) / 1000;

    return lag > 0 ? lag : 0;
}
