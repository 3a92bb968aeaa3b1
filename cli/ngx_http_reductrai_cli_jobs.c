
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Work on each selected object, on up to --jobs threads: ls fetches the
 * trailers, verify reads the objects.  Each thread takes the next object
 * until none is left, and puts what it learns in the object's item.
 */


#include "ngx_http_reductrai_cli.h"

#include <stdlib.h>
#include <string.h>


int
ngx_http_reductrai_cli_jobs_init(ngx_http_reductrai_cli_jobs_t *jobs,
    ngx_http_reductrai_cli_t *cli, size_t size)
{
    int  rc;

    memset(jobs, 0, sizeof(ngx_http_reductrai_cli_jobs_t));
    jobs->cli = cli;

    rc = ngx_http_reductrai_cli_select(cli, &jobs->objects, &jobs->n);
    if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
        return rc;
    }

    jobs->items = calloc(jobs->n ? jobs->n : 1, size);
    if (jobs->items == NULL) {
        ngx_http_reductrai_cli_error(cli, "out of memory");
        ngx_http_reductrai_cli_objects_free(jobs->objects, jobs->n);
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    return NGX_HTTP_REDUCTRAI_CLI_OK;
}


void
ngx_http_reductrai_cli_jobs_start(ngx_http_reductrai_cli_jobs_t *jobs,
    void *(*handler)(void *data), void *data)
{
    int  want;

    want = (size_t) jobs->cli->jobs < jobs->n ? jobs->cli->jobs
                                              : (int) jobs->n;

    for (jobs->nthreads = 0; jobs->nthreads < want; jobs->nthreads++) {
        if (pthread_create(&jobs->tids[jobs->nthreads], NULL, handler, data)
            != 0)
        {
            break;
        }
    }

    if (jobs->nthreads == 0 && jobs->n > 0) {
        /* no thread could start: do the work here */
        (void) handler(data);
    }
}


int
ngx_http_reductrai_cli_jobs_next(ngx_http_reductrai_cli_jobs_t *jobs,
    size_t *i)
{
    *i = __atomic_fetch_add(&jobs->next, 1, __ATOMIC_RELAXED);

    return *i < jobs->n;
}


void
ngx_http_reductrai_cli_jobs_join(ngx_http_reductrai_cli_jobs_t *jobs)
{
    int  t;

    for (t = 0; t < jobs->nthreads; t++) {
        (void) pthread_join(jobs->tids[t], NULL);
    }
}


void
ngx_http_reductrai_cli_jobs_free(ngx_http_reductrai_cli_jobs_t *jobs)
{
    free(jobs->items);
    ngx_http_reductrai_cli_objects_free(jobs->objects, jobs->n);
}
