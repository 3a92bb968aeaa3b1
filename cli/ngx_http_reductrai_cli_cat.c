
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * reductrai cat: the selected records, streamed object by object in key
 * order.  Nothing is held but the line being looked at (and, for --body, its
 * decoded bytes), so memory does not grow with the archive.
 */


#include "ngx_http_reductrai_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
    ngx_http_reductrai_cli_t          *cli;
    ngx_http_reductrai_buf_t           scratch;
    uint64_t                           printed;
    uint64_t                           not_records;
    int                                write_failed;
} ngx_http_reductrai_cli_cat_ctx_t;


static int ngx_http_reductrai_cli_cat_line(void *data, const u_char *line,
    size_t len);


int
ngx_http_reductrai_cli_cat(ngx_http_reductrai_cli_t *cli)
{
    int                                rc, corrupt;
    size_t                             i, n;
    uint64_t                           skipped;
    ngx_http_reductrai_reader_t        r;
    ngx_http_reductrai_cli_read_t      rd;
    ngx_http_reductrai_cli_object_t   *objects, *o;
    ngx_http_reductrai_cli_cat_ctx_t   ctx;

    static char  out[1 << 16];

    rc = ngx_http_reductrai_cli_select(cli, &objects, &n);
    if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
        return rc;
    }

    memset(&ctx, 0, sizeof(ngx_http_reductrai_cli_cat_ctx_t));
    ctx.cli = cli;

    if (ngx_http_reductrai_reader_init(&r, 0, ngx_http_reductrai_cli_cat_line,
                                       &ctx)
        != 0)
    {
        ngx_http_reductrai_cli_error(cli, "out of memory");
        ngx_http_reductrai_cli_objects_free(objects, n);
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    (void) setvbuf(stdout, out, _IOFBF, sizeof(out));

    corrupt = 0;
    skipped = 0;

    for (i = 0; i < n; i++) {
        o = &objects[i];

        if (ngx_http_reductrai_cli_excluded(cli, o)) {
            skipped++;
            continue;
        }

        rc = ngx_http_reductrai_cli_read_object(cli, &r, o->key, -1, &rd);

        if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
            if (rd.storage_rc == NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND) {
                /* deleted since the listing */
                rc = NGX_HTTP_REDUCTRAI_CLI_OK;
                continue;
            }

            ngx_http_reductrai_cli_error(cli, "%s: reading failed: %s",
                                         o->key, rd.storage_error);
            break;
        }

        if (ctx.write_failed) {
            rc = NGX_HTTP_REDUCTRAI_CLI_OK;
            break;
        }

        if (rd.res.rc == NGX_HTTP_REDUCTRAI_READ_STOPPED) {
            /* --limit reached */
            break;
        }

        if (rd.res.rc != NGX_HTTP_REDUCTRAI_READ_OK) {
            ngx_http_reductrai_cli_error(cli, "%s: corrupt object: %s",
                                         o->key, rd.res.error);
            corrupt++;
        }
    }

    if (cli->verbose) {
        fflush(stdout);
        fprintf(stderr, "reductrai: cat: %llu records printed, %llu objects "
                "read, %llu skipped by their trailer (%llu trailer GETs)\n",
                (unsigned long long) ctx.printed,
                (unsigned long long) cli->object_gets,
                (unsigned long long) skipped,
                (unsigned long long) cli->trailer_gets);
    }

    if (ctx.not_records) {
        ngx_http_reductrai_cli_error(cli, "%llu line(s) were not records and "
                                     "were left out",
                                     (unsigned long long) ctx.not_records);
        corrupt++;
    }

    ngx_http_reductrai_reader_free(&r);
    ngx_http_reductrai_buf_free(&ctx.scratch);
    ngx_http_reductrai_cli_objects_free(objects, n);

    if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
        return rc;
    }

    if (fflush(stdout) != 0) {
        ngx_http_reductrai_cli_error(cli, "writing the output failed: %s",
                                     strerror(errno));
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    return corrupt ? NGX_HTTP_REDUCTRAI_CLI_CORRUPT
                   : NGX_HTTP_REDUCTRAI_CLI_OK;
}


static int
ngx_http_reductrai_cli_cat_line(void *data, const u_char *line, size_t len)
{
    ngx_http_reductrai_cli_cat_ctx_t *ctx = data;

    int                                m;
    ssize_t                            n;
    ngx_http_reductrai_cli_t          *cli;
    ngx_http_reductrai_record_view_t   v;

    cli = ctx->cli;

    if (cli->time_limited || cli->uri_match || cli->api_key_fp || cli->body
        || cli->grep)
    {
        m = ngx_http_reductrai_cli_match(cli, line, len, &v, &ctx->scratch);

        if (m == 0) {
            return 0;
        }

        if (m < 0) {
            ctx->not_records++;
            return 0;
        }
    }

    if (!cli->body) {
        if (fwrite(line, 1, len, stdout) != len || putchar('\n') == EOF) {
            ctx->write_failed = 1;
            return 1;
        }

    } else if (v.body.data != NULL) {
        if (fwrite(v.body.data, 1, v.body.len, stdout) != v.body.len
            || putchar('\n') == EOF)
        {
            ctx->write_failed = 1;
            return 1;
        }

    } else if (v.body_b64.data != NULL) {
        ctx->scratch.len = 0;

        if (ngx_http_reductrai_buf_reserve(&ctx->scratch,
                                           v.body_b64.len / 4 * 3 + 1)
            != 0)
        {
            ctx->not_records++;
            return 0;
        }

        n = ngx_http_reductrai_body_b64_decode(ctx->scratch.data,
                                             v.body_b64.data,
                                             v.body_b64.len);
        if (n < 0) {
            ctx->not_records++;
            return 0;
        }

        if (fwrite(ctx->scratch.data, 1, (size_t) n, stdout) != (size_t) n
            || putchar('\n') == EOF)
        {
            ctx->write_failed = 1;
            return 1;
        }

    } else {
        /* a record without a body: an empty line keeps records aligned */
        if (putchar('\n') == EOF) {
            ctx->write_failed = 1;
            return 1;
        }
    }

    ctx->printed++;

    if (cli->limit && ctx->printed >= cli->limit) {
        return 1;
    }

    return 0;
}
