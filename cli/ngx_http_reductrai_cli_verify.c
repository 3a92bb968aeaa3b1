
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * reductrai verify: the audit.  Per object: the zstd stream decodes to its
 * end with a good frame checksum, every line is a record whose stream, hour
 * and worker match the key, and the trailer's count, raw bytes, SHA-256 and
 * time range match what was read.  Across objects: each worker's segment
 * numbers (per stream) have no gap.  Objects are checked in parallel and
 * reported in key order.
 */


#include "ngx_http_reductrai_cli.h"
#include "ngx_http_reductrai_json.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


#define NGX_HTTP_REDUCTRAI_CLI_PROBLEM_MAX  512


typedef struct {
    unsigned                           done:1;
    unsigned                           storage_failed:1;
    unsigned                           vanished:1;
    uint64_t                           records;
    uint64_t                           bytes;
    int                                problems;
    char                              *text;    /* "; "-separated problems */
    size_t                             text_len;
} ngx_http_reductrai_cli_verify_item_t;


typedef struct {
    ngx_http_reductrai_cli_jobs_t          jobs;
    pthread_mutex_t                        lock;
    pthread_cond_t                         cond;
} ngx_http_reductrai_cli_verify_ctx_t;


/* what one thread learns of the lines of one object */
typedef struct {
    ngx_http_reductrai_cli_object_t       *object;
    char                                   worker[NGX_HTTP_REDUCTRAI_NAME_MAX];
    size_t                                 worker_len;
    int64_t                                min_ts;
    int64_t                                max_ts;
    uint64_t                               line;
    uint64_t                               bad_lines;
    char                                   first_bad[200];
} ngx_http_reductrai_cli_verify_lines_t;


static void *ngx_http_reductrai_cli_verify_thread(void *data);
static void ngx_http_reductrai_cli_verify_object(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_reader_t *r, ngx_http_reductrai_cli_object_t *o,
    ngx_http_reductrai_cli_verify_item_t *it);
static int ngx_http_reductrai_cli_verify_line(void *data, const u_char *line,
    size_t len);
static void ngx_http_reductrai_cli_verify_bad(
    ngx_http_reductrai_cli_verify_lines_t *vl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ngx_http_reductrai_cli_problem(
    ngx_http_reductrai_cli_verify_item_t *it, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static uint64_t ngx_http_reductrai_cli_verify_gaps(
    ngx_http_reductrai_cli_t *cli, ngx_http_reductrai_cli_object_t *objects,
    size_t n);
static int ngx_http_reductrai_cli_worker_cmp(const void *a, const void *b);
static int ngx_http_reductrai_cli_seq_cmp(const void *a, const void *b);


int
ngx_http_reductrai_cli_verify(ngx_http_reductrai_cli_t *cli)
{
    int                                     rc;
    size_t                                  i, n, bad_objects, checked;
    uint64_t                                records, bytes, problems, gaps;
    ngx_http_reductrai_cli_object_t        *objects;
    ngx_http_reductrai_cli_verify_item_t   *items, *it;
    ngx_http_reductrai_cli_verify_ctx_t     ctx;

    rc = ngx_http_reductrai_cli_jobs_init(&ctx.jobs, cli, sizeof(*items));
    if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
        return rc;
    }

    objects = ctx.jobs.objects;
    items = ctx.jobs.items;
    n = ctx.jobs.n;

    pthread_mutex_init(&ctx.lock, NULL);
    pthread_cond_init(&ctx.cond, NULL);

    ngx_http_reductrai_cli_jobs_start(&ctx.jobs,
                                      ngx_http_reductrai_cli_verify_thread,
                                      &ctx);

    /* report in key order as results come in */

    records = 0;
    bytes = 0;
    problems = 0;
    bad_objects = 0;
    checked = 0;

    for (i = 0; i < n; i++) {
        it = &items[i];

        pthread_mutex_lock(&ctx.lock);

        while (!it->done) {
            pthread_cond_wait(&ctx.cond, &ctx.lock);
        }

        pthread_mutex_unlock(&ctx.lock);

        if (it->vanished) {
            continue;
        }

        if (it->storage_failed) {
            ngx_http_reductrai_cli_error(cli, "%s: %s", objects[i].key,
                                         it->text ? it->text : "failed");
            rc = NGX_HTTP_REDUCTRAI_CLI_STORAGE;
            free(it->text);
            it->text = NULL;
            continue;
        }

        checked++;
        records += it->records;
        bytes += it->bytes;

        if (it->problems) {
            printf("FAIL %s: %s\n", objects[i].key, it->text);
            problems += (uint64_t) it->problems;
            bad_objects++;

        } else if (cli->verbose) {
            printf("ok   %s: %llu records\n", objects[i].key,
                   (unsigned long long) it->records);
        }

        fflush(stdout);
        free(it->text);
        it->text = NULL;
    }

    ngx_http_reductrai_cli_jobs_join(&ctx.jobs);

    gaps = ngx_http_reductrai_cli_verify_gaps(cli, objects, n);
    problems += gaps;

    if (problems == 0 && rc == NGX_HTTP_REDUCTRAI_CLI_OK) {
        printf("verify: %zu objects, %llu records, %llu bytes: OK\n",
               checked, (unsigned long long) records,
               (unsigned long long) bytes);

    } else {
        printf("verify: %zu objects, %llu records, %llu bytes: %llu "
               "problem(s): %zu bad object(s), %llu missing segment "
               "range(s)%s\n", checked, (unsigned long long) records,
               (unsigned long long) bytes, (unsigned long long) problems,
               bad_objects, (unsigned long long) gaps,
               rc != NGX_HTTP_REDUCTRAI_CLI_OK
               ? ", some objects could not be read" : "");
    }

    pthread_mutex_destroy(&ctx.lock);
    pthread_cond_destroy(&ctx.cond);
    ngx_http_reductrai_cli_jobs_free(&ctx.jobs);

    if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
        return rc;
    }

    return problems ? NGX_HTTP_REDUCTRAI_CLI_PROBLEMS
                    : NGX_HTTP_REDUCTRAI_CLI_OK;
}


static void *
ngx_http_reductrai_cli_verify_thread(void *data)
{
    ngx_http_reductrai_cli_verify_ctx_t *ctx = data;

    int                                    ready;
    size_t                                 i;
    ngx_http_reductrai_reader_t            r;
    ngx_http_reductrai_cli_verify_lines_t  vl;
    ngx_http_reductrai_cli_verify_item_t  *it;

    ready = ngx_http_reductrai_reader_init(&r, NGX_HTTP_REDUCTRAI_READ_SHA256,
                                           ngx_http_reductrai_cli_verify_line,
                                           &vl)
            == 0;

    while (ngx_http_reductrai_cli_jobs_next(&ctx->jobs, &i)) {
        it = (ngx_http_reductrai_cli_verify_item_t *) ctx->jobs.items + i;

        if (ready) {
            memset(&vl, 0, sizeof(ngx_http_reductrai_cli_verify_lines_t));
            vl.object = &ctx->jobs.objects[i];

            ngx_http_reductrai_cli_verify_object(ctx->jobs.cli, &r,
                                                 vl.object, it);

        } else {
            /* still marked done: the report waits for every object */
            it->storage_failed = 1;
            ngx_http_reductrai_cli_problem(it, "out of memory");
        }

        pthread_mutex_lock(&ctx->lock);
        it->done = 1;
        pthread_cond_broadcast(&ctx->cond);
        pthread_mutex_unlock(&ctx->lock);
    }

    if (ready) {
        ngx_http_reductrai_reader_free(&r);
    }

    return NULL;
}


static void
ngx_http_reductrai_cli_verify_object(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_reader_t *r, ngx_http_reductrai_cli_object_t *o,
    ngx_http_reductrai_cli_verify_item_t *it)
{
    u_char                                  hex[65], want[65];
    u_char                                  a[NGX_HTTP_REDUCTRAI_TS_LEN + 1];
    u_char                                  b[NGX_HTTP_REDUCTRAI_TS_LEN + 1];
    ngx_http_reductrai_cli_read_t           rd;
    ngx_http_reductrai_trailer_t           *t;
    ngx_http_reductrai_read_result_t       *res;
    ngx_http_reductrai_cli_verify_lines_t  *vl;

    vl = r->data;
    vl->worker_len = ngx_http_reductrai_cli_worker(vl->worker,
                                                   sizeof(vl->worker) - 1,
                                                   &o->id);
    vl->worker[vl->worker_len++] = '-';
    vl->min_ts = INT64_MAX;
    vl->max_ts = INT64_MIN;

    if (ngx_http_reductrai_cli_read_object(cli, r, o->key, -1, &rd)
        != NGX_HTTP_REDUCTRAI_CLI_OK)
    {
        if (rd.storage_rc == NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND) {
            it->vanished = 1;
            return;
        }

        it->storage_failed = 1;
        ngx_http_reductrai_cli_problem(it, "reading failed: %s",
                                       rd.storage_error);
        return;
    }

    res = &rd.res;
    t = &res->trailer;

    it->records = res->lines;
    it->bytes = res->in_bytes;

    if (res->rc != NGX_HTTP_REDUCTRAI_READ_OK) {
        ngx_http_reductrai_cli_problem(it, "%s: %s",
            res->rc == NGX_HTTP_REDUCTRAI_READ_TRUNCATED ? "truncated"
            : res->rc == NGX_HTTP_REDUCTRAI_READ_CORRUPT ? "corrupt"
            : res->rc == NGX_HTTP_REDUCTRAI_READ_PARTIAL_LINE ? "partial line"
            : "unreadable", res->error);
    }

    if (res->no_checksum) {
        ngx_http_reductrai_cli_problem(it, "the zstd frame has no content "
                                       "checksum");
    }

    if (vl->bad_lines) {
        ngx_http_reductrai_cli_problem(it, "%llu bad line(s), first: %s",
                                       (unsigned long long) vl->bad_lines,
                                       vl->first_bad);
    }

    if (!res->has_trailer) {
        ngx_http_reductrai_cli_problem(it, "no valid trailer at the end of "
                                       "the object (%llu bytes)",
                                       (unsigned long long) res->in_bytes);
        return;
    }

    /* a stream that broke off makes these comparisons say nothing more */
    if (res->rc != NGX_HTTP_REDUCTRAI_READ_OK) {
        return;
    }

    if (res->lines != t->count) {
        ngx_http_reductrai_cli_problem(it, "%llu records, the trailer says "
                                       "%llu",
                                       (unsigned long long) res->lines,
                                       (unsigned long long) t->count);
    }

    if (res->raw_bytes != t->raw_bytes) {
        ngx_http_reductrai_cli_problem(it, "%llu raw bytes, the trailer says "
                                       "%llu",
                                       (unsigned long long) res->raw_bytes,
                                       (unsigned long long) t->raw_bytes);
    }

    /* a version 2 trailer leaves the digest to zstd's checksum */

    if (t->has_sha256 && memcmp(res->sha256, t->sha256, 32) != 0) {
        *ngx_http_reductrai_hex(hex, res->sha256, 32) = '\0';
        *ngx_http_reductrai_hex(want, t->sha256, 32) = '\0';
        ngx_http_reductrai_cli_problem(it, "sha256 %s, the trailer says %s",
                                       hex, want);
    }

    if (res->lines > 0 && vl->bad_lines == 0
        && (vl->min_ts != t->first_ms || vl->max_ts != t->last_ms))
    {
        *ngx_http_reductrai_format_ts(a, vl->min_ts) = '\0';
        *ngx_http_reductrai_format_ts(b, vl->max_ts) = '\0';
        *ngx_http_reductrai_format_ts(hex, t->first_ms) = '\0';
        *ngx_http_reductrai_format_ts(want, t->last_ms) = '\0';
        ngx_http_reductrai_cli_problem(it, "records span %s..%s, the trailer "
                                       "says %s..%s", a, b, hex, want);
    }
}


static int
ngx_http_reductrai_cli_verify_line(void *data, const u_char *line,
    size_t len)
{
    ngx_http_reductrai_cli_verify_lines_t *vl = data;

    size_t                             slen;
    ssize_t                            n;
    const char                        *err;
    ngx_http_reductrai_cli_object_t   *o;
    ngx_http_reductrai_record_view_t   v;

    o = vl->object;
    vl->line++;

    /*
     * The line is ours until we return: validating it in place is safe,
     * and a line without whitespace outside strings stays as it is.
     */

    n = ngx_http_reductrai_json_minify((u_char *) line, line, len);

    if (n < 0) {
        ngx_http_reductrai_cli_verify_bad(vl, "line %llu is not valid JSON",
                                          (unsigned long long) vl->line);
        return 0;
    }

    if (ngx_http_reductrai_record_view(line, (size_t) n, &v, &err) != 0) {
        ngx_http_reductrai_cli_verify_bad(vl, "line %llu: %s",
                                          (unsigned long long) vl->line,
                                          err);
        return 0;
    }

#define ngx_http_reductrai_need(f)                                           \
    if (v.f.data == NULL) {                                                  \
        ngx_http_reductrai_cli_verify_bad(vl, "line %llu has no \"%s\"",     \
                                          (unsigned long long) vl->line, #f); \
        return 0;                                                            \
    }

    ngx_http_reductrai_need(id);
    ngx_http_reductrai_need(ts);
    ngx_http_reductrai_need(stream);
    ngx_http_reductrai_need(method);
    ngx_http_reductrai_need(uri);

#undef ngx_http_reductrai_need

    if (v.size < 0 || v.forwarded < 0) {
        ngx_http_reductrai_cli_verify_bad(vl, "line %llu has no \"%s\"",
                                          (unsigned long long) vl->line,
                                          v.size < 0 ? "size" : "forwarded");
        return 0;
    }

    if ((v.body.data == NULL) == (v.body_b64.data == NULL)) {
        ngx_http_reductrai_cli_verify_bad(vl, "line %llu has %s",
                                          (unsigned long long) vl->line,
                                          v.body.data ? "both body and "
                                          "body_b64" : "no body");
        return 0;
    }

    if (v.ts_ms < 0) {
        ngx_http_reductrai_cli_verify_bad(vl, "line %llu: invalid ts "
                                          "\"%.*s\"",
                                          (unsigned long long) vl->line,
                                          (int) (v.ts.len < 40 ? v.ts.len
                                                               : 40),
                                          v.ts.data);
        return 0;
    }

    if (v.ts_ms / NGX_HTTP_REDUCTRAI_HOUR_MS != o->id.hour) {
        ngx_http_reductrai_cli_verify_bad(vl, "line %llu: ts %.*s is outside "
                                          "the key's hour",
                                          (unsigned long long) vl->line,
                                          (int) v.ts.len, v.ts.data);
        return 0;
    }

    slen = strlen(o->id.stream);

    if (v.stream.len != slen || memcmp(v.stream.data, o->id.stream, slen)
                                != 0)
    {
        ngx_http_reductrai_cli_verify_bad(vl, "line %llu: stream \"%.*s\" "
                                          "in a stream=%s object",
                                          (unsigned long long) vl->line,
                                          (int) (v.stream.len < 40
                                                 ? v.stream.len : 40),
                                          v.stream.data, o->id.stream);
        return 0;
    }

    if (v.id.len <= vl->worker_len
        || memcmp(v.id.data, vl->worker, vl->worker_len) != 0)
    {
        ngx_http_reductrai_cli_verify_bad(vl, "line %llu: id \"%.*s\" is not "
                                          "from the key's worker",
                                          (unsigned long long) vl->line,
                                          (int) (v.id.len < 100 ? v.id.len
                                                                : 100),
                                          v.id.data);
        return 0;
    }

    vl->min_ts = v.ts_ms < vl->min_ts ? v.ts_ms : vl->min_ts;
    vl->max_ts = v.ts_ms > vl->max_ts ? v.ts_ms : vl->max_ts;

    return 0;
}


static void
ngx_http_reductrai_cli_verify_bad(ngx_http_reductrai_cli_verify_lines_t *vl,
    const char *fmt, ...)
{
    va_list  args;

    if (vl->bad_lines++ > 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(vl->first_bad, sizeof(vl->first_bad), fmt, args);
    va_end(args);
}


static void
ngx_http_reductrai_cli_problem(ngx_http_reductrai_cli_verify_item_t *it,
    const char *fmt, ...)
{
    int       n;
    char     *p;
    va_list   args;

    it->problems++;

    if (it->text == NULL) {
        /*
         * it is an element of the jobs' item array; the reporting loop of
         * cli_verify() frees it->text of every item (a vanished object has
         * no problem, so no text).  The analyzer does not follow the element
         * and calls the buffer leaked
         */
NGX_HTTP_REDUCTRAI_ANALYZER_IGNORE("-Wanalyzer-malloc-leak")
        it->text = malloc(NGX_HTTP_REDUCTRAI_CLI_PROBLEM_MAX);
        if (it->text == NULL) {
            return;
        }
NGX_HTTP_REDUCTRAI_ANALYZER_END

        it->text_len = 0;

    } else if (it->text_len + 3 < NGX_HTTP_REDUCTRAI_CLI_PROBLEM_MAX) {
        memcpy(it->text + it->text_len, "; ", 3);
        it->text_len += 2;
    }

    p = it->text + it->text_len;

    va_start(args, fmt);
    n = vsnprintf(p, NGX_HTTP_REDUCTRAI_CLI_PROBLEM_MAX - it->text_len, fmt,
                  args);
    va_end(args);

    if (n > 0) {
        it->text_len += (size_t) n;

        if (it->text_len >= NGX_HTTP_REDUCTRAI_CLI_PROBLEM_MAX) {
            it->text_len = NGX_HTTP_REDUCTRAI_CLI_PROBLEM_MAX - 1;
        }
    }
}


/*
 * Each worker numbers its segments per stream from 1, a number being used
 * only once a file holds it: a gap is a lost object.  Without a time limit
 * the selection holds every segment, so the first must be 1; with one, a
 * worker's earlier or later segments are legitimately outside it.
 */

static uint64_t
ngx_http_reductrai_cli_verify_gaps(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_cli_object_t *objects, size_t n)
{
    char                              worker[NGX_HTTP_REDUCTRAI_NAME_MAX];
    size_t                            i;
    uint64_t                          gaps, expect;
    ngx_http_reductrai_cli_object_t  *sorted, *o;

    if (n == 0) {
        return 0;
    }

    sorted = malloc(n * sizeof(ngx_http_reductrai_cli_object_t));
    if (sorted == NULL) {
        ngx_http_reductrai_cli_error(cli, "out of memory");
        return 1;
    }

    memcpy(sorted, objects, n * sizeof(ngx_http_reductrai_cli_object_t));
    qsort(sorted, n, sizeof(ngx_http_reductrai_cli_object_t),
          ngx_http_reductrai_cli_seq_cmp);

    gaps = 0;
    expect = 0;

    for (i = 0; i < n; i++) {
        o = &sorted[i];

        if (i == 0 || ngx_http_reductrai_cli_worker_cmp(o, o - 1) != 0) {
            /* the first segment of a worker and stream */
            expect = cli->time_limited ? o->id.seq : 1;
        }

        if (o->id.seq > expect) {
            (void) ngx_http_reductrai_cli_worker(worker, sizeof(worker),
                                                 &o->id);

            if (o->id.seq - expect == 1) {
                printf("MISSING stream=%s worker %s: segment %0*llu",
                       o->id.stream, worker, NGX_HTTP_REDUCTRAI_SEQ_DIGITS,
                       (unsigned long long) expect);

            } else {
                printf("MISSING stream=%s worker %s: segments %0*llu..%0*llu",
                       o->id.stream, worker, NGX_HTTP_REDUCTRAI_SEQ_DIGITS,
                       (unsigned long long) expect,
                       NGX_HTTP_REDUCTRAI_SEQ_DIGITS,
                       (unsigned long long) o->id.seq - 1);
            }

            if (i == 0 || ngx_http_reductrai_cli_worker_cmp(o, o - 1) != 0) {
                printf(" (before %s)\n", o->key);

            } else {
                printf(" (between %s and %s)\n", (o - 1)->key, o->key);
            }

            gaps++;
        }

        expect = o->id.seq + 1;
    }

    free(sorted);

    return gaps;
}


/* by stream, worker, then segment number */

static int
ngx_http_reductrai_cli_worker_cmp(const void *a, const void *b)
{
    int                                     c;
    const ngx_http_reductrai_cli_object_t  *x = a, *y = b;

    c = strcmp(x->id.stream, y->id.stream);
    if (c != 0) {
        return c;
    }

    c = strcmp(x->id.instance, y->id.instance);
    if (c != 0) {
        return c;
    }

    if (x->id.pid != y->id.pid) {
        return x->id.pid < y->id.pid ? -1 : 1;
    }

    if (x->id.start_ms != y->id.start_ms) {
        return x->id.start_ms < y->id.start_ms ? -1 : 1;
    }

    return 0;
}


static int
ngx_http_reductrai_cli_seq_cmp(const void *a, const void *b)
{
    int                                     c;
    const ngx_http_reductrai_cli_object_t  *x = a, *y = b;

    c = ngx_http_reductrai_cli_worker_cmp(a, b);
    if (c != 0) {
        return c;
    }

    return x->id.seq < y->id.seq ? -1 : (x->id.seq > y->id.seq);
}
