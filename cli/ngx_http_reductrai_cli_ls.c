
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * reductrai ls: one line per object, from its key and its trailer (one
 * ranged GET of the last NGX_HTTP_REDUCTRAI_TRAILER_MAX bytes each, several
 * in parallel: with object storage the latency, not the bytes, is the cost).
 */


#include "ngx_http_reductrai_cli.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>


typedef struct {
    ngx_http_reductrai_storage_rc_e    rc;
    int                                found;
    ngx_http_reductrai_trailer_t       trailer;
    char                               error[256];
} ngx_http_reductrai_cli_ls_item_t;


static void *ngx_http_reductrai_cli_ls_thread(void *data);
static void ngx_http_reductrai_cli_ls_text(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_cli_object_t *o, ngx_http_reductrai_cli_ls_item_t *it,
    int width);
static void ngx_http_reductrai_cli_ls_json(ngx_http_reductrai_cli_object_t *o,
    ngx_http_reductrai_cli_ls_item_t *it);


int
ngx_http_reductrai_cli_ls(ngx_http_reductrai_cli_t *cli)
{
    int                                rc, width, storage_failed;
    size_t                             i, n, shown, no_trailer, len;
    uint64_t                           records, bytes, raw;
    ngx_http_reductrai_cli_jobs_t      jobs;
    ngx_http_reductrai_cli_object_t   *objects;
    ngx_http_reductrai_cli_ls_item_t  *items;

    rc = ngx_http_reductrai_cli_jobs_init(&jobs, cli, sizeof(*items));
    if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
        return rc;
    }

    ngx_http_reductrai_cli_jobs_start(&jobs, ngx_http_reductrai_cli_ls_thread,
                                      &jobs);
    ngx_http_reductrai_cli_jobs_join(&jobs);

    objects = jobs.objects;
    items = jobs.items;
    n = jobs.n;

    width = 3;

    for (i = 0; i < n; i++) {
        len = strlen(objects[i].key);
        width = (int) len > width ? (int) len : width;
    }

    if (!cli->json) {
        printf("%-*s  %8s  %-24s  %-24s  %10s  %11s  %6s\n", width, "KEY",
               "RECORDS", "FIRST_TS", "LAST_TS", "BYTES", "RAW_BYTES",
               "RATIO");
    }

    shown = 0;
    no_trailer = 0;
    records = 0;
    bytes = 0;
    raw = 0;
    storage_failed = 0;

    for (i = 0; i < n; i++) {
        if (items[i].rc == NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND) {
            /* deleted between listing and reading */
            continue;
        }

        if (items[i].rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            ngx_http_reductrai_cli_error(cli, "%s: reading the trailer "
                                         "failed: %s", objects[i].key,
                                         items[i].error);
            storage_failed = 1;
            continue;
        }

        if (items[i].found && cli->time_limited
            && !ngx_http_reductrai_cli_overlaps(cli,
                                                items[i].trailer.first_ms,
                                                items[i].trailer.last_ms))
        {
            cli->pruned++;
            continue;
        }

        shown++;
        bytes += (uint64_t) objects[i].size;

        if (items[i].found) {
            records += items[i].trailer.count;
            raw += items[i].trailer.raw_bytes;

        } else {
            no_trailer++;
        }

        if (cli->json) {
            ngx_http_reductrai_cli_ls_json(&objects[i], &items[i]);

        } else {
            ngx_http_reductrai_cli_ls_text(cli, &objects[i], &items[i],
                                           width);
        }
    }

    if (!cli->json) {
        printf("total: %zu objects, %llu records, %llu bytes, %llu raw "
               "bytes, ratio %.2f\n", shown, (unsigned long long) records,
               (unsigned long long) bytes, (unsigned long long) raw,
               bytes ? (double) raw / (double) bytes : 0.0);
    }

    if (cli->verbose) {
        fflush(stdout);
        fprintf(stderr, "reductrai: ls: %llu trailer GETs (ranged, last %d "
                "bytes), %llu whole-object GETs, %zu shown\n",
                (unsigned long long) cli->trailer_gets,
                NGX_HTTP_REDUCTRAI_TRAILER_MAX,
                (unsigned long long) cli->object_gets, shown);
    }

    ngx_http_reductrai_cli_jobs_free(&jobs);

    if (storage_failed) {
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    if (no_trailer) {
        ngx_http_reductrai_cli_error(cli, "%zu object(s) without a valid "
                                     "trailer: truncated or not sealed "
                                     "(reductrai verify tells more)",
                                     no_trailer);
        return NGX_HTTP_REDUCTRAI_CLI_CORRUPT;
    }

    return NGX_HTTP_REDUCTRAI_CLI_OK;
}


static void *
ngx_http_reductrai_cli_ls_thread(void *data)
{
    ngx_http_reductrai_cli_jobs_t *jobs = data;

    size_t                             i;
    ngx_http_reductrai_storage_err_t   err;
    ngx_http_reductrai_cli_ls_item_t  *it;

    while (ngx_http_reductrai_cli_jobs_next(jobs, &i)) {
        it = (ngx_http_reductrai_cli_ls_item_t *) jobs->items + i;
        memset(&err, 0, sizeof(ngx_http_reductrai_storage_err_t));

        it->rc = ngx_http_reductrai_cli_get_trailer(jobs->cli,
                                                    jobs->objects[i].key,
                                                    &it->trailer, &it->found,
                                                    &err);

        if (it->rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            memcpy(it->error, err.message, sizeof(it->error));

            if (it->error[0] == '\0') {
                strcpy(it->error, "unknown error");
            }
        }
    }

    return NULL;
}


static void
ngx_http_reductrai_cli_ls_text(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_cli_object_t *o, ngx_http_reductrai_cli_ls_item_t *it,
    int width)
{
    u_char  first[NGX_HTTP_REDUCTRAI_TS_LEN + 1];
    u_char  last[NGX_HTTP_REDUCTRAI_TS_LEN + 1];

    if (!it->found) {
        printf("%-*s  %8s  %-24s  %-24s  %10lld  %11s  %6s  (no trailer)\n",
               width, o->key, "-", "-", "-", (long long) o->size, "-", "-");
        return;
    }

    *ngx_http_reductrai_format_ts(first, it->trailer.first_ms) = '\0';
    *ngx_http_reductrai_format_ts(last, it->trailer.last_ms) = '\0';

    printf("%-*s  %8llu  %-24s  %-24s  %10lld  %11llu  %6.2f\n", width,
           o->key, (unsigned long long) it->trailer.count, first, last,
           (long long) o->size, (unsigned long long) it->trailer.raw_bytes,
           o->size ? (double) it->trailer.raw_bytes / (double) o->size : 0.0);
}


static void
ngx_http_reductrai_cli_ls_json(ngx_http_reductrai_cli_object_t *o,
    ngx_http_reductrai_cli_ls_item_t *it)
{
    char    *s;
    u_char   ts[NGX_HTTP_REDUCTRAI_TS_LEN + 1];
    json_t  *j;

    j = json_object();
    if (j == NULL) {
        return;
    }

    json_object_set_new(j, "key", json_string(o->key));
    json_object_set_new(j, "stream", json_string(o->id.stream));
    json_object_set_new(j, "instance", json_string(o->id.instance));
    json_object_set_new(j, "pid", json_integer(o->id.pid));
    json_object_set_new(j, "start_ms", json_integer(o->id.start_ms));
    json_object_set_new(j, "seq", json_integer((json_int_t) o->id.seq));
    json_object_set_new(j, "size", json_integer(o->size));
    json_object_set_new(j, "trailer", json_boolean(it->found));

    if (it->found) {
        json_object_set_new(j, "records",
                            json_integer((json_int_t) it->trailer.count));

        *ngx_http_reductrai_format_ts(ts, it->trailer.first_ms) = '\0';
        json_object_set_new(j, "first_ts", json_string((char *) ts));

        *ngx_http_reductrai_format_ts(ts, it->trailer.last_ms) = '\0';
        json_object_set_new(j, "last_ts", json_string((char *) ts));

        json_object_set_new(j, "raw_bytes",
                            json_integer((json_int_t) it->trailer.raw_bytes));
        json_object_set_new(j, "ratio",
                            json_real(o->size
                                      ? (double) it->trailer.raw_bytes
                                        / (double) o->size
                                      : 0.0));

    } else {
        json_object_set_new(j, "records", json_null());
        json_object_set_new(j, "first_ts", json_null());
        json_object_set_new(j, "last_ts", json_null());
        json_object_set_new(j, "raw_bytes", json_null());
        json_object_set_new(j, "ratio", json_null());
    }

    s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER
                      | JSON_REAL_PRECISION(4));

    if (s != NULL) {
        printf("%s\n", s);
        free(s);
    }

    json_decref(j);
}
