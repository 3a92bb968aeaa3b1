
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Selecting objects and records: time arguments, listing with the
 * narrowest prefixes and pruning by the key's partitions before anything
 * is fetched, reading an object through the streaming reader, and the
 * record filters of cat and replay.
 */


#include "ngx_http_reductrai_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>


#define NGX_HTTP_REDUCTRAI_DAY_MS  (24 * (int64_t) NGX_HTTP_REDUCTRAI_HOUR_MS)

/* listing day by day beats listing a whole stream up to this many days */
#define NGX_HTTP_REDUCTRAI_CLI_MAX_DAY_LISTS  62


typedef struct {
    ngx_http_reductrai_cli_t          *cli;
    ngx_http_reductrai_cli_object_t   *objects;
    size_t                             n;
    size_t                             cap;
    size_t                             prefix_len;    /* storage prefix */
    int                                failed;
} ngx_http_reductrai_cli_list_ctx_t;


typedef struct {
    u_char                             buf[NGX_HTTP_REDUCTRAI_TRAILER_MAX];
    size_t                             len;
} ngx_http_reductrai_cli_tail_t;


static int ngx_http_reductrai_cli_digits(const char **p, int n, int *v);
static int ngx_http_reductrai_cli_relative(const char *s, int64_t *ms);
static int ngx_http_reductrai_cli_add_prefix(char ***prefixes, int *n,
    const char *s);
static void ngx_http_reductrai_cli_prefixes_free(char **prefixes, int n);
static int ngx_http_reductrai_cli_list_handler(void *data, const char *key,
    int64_t size);
static int ngx_http_reductrai_cli_key_cmp(const void *a, const void *b);
static int ngx_http_reductrai_cli_tail_sink(void *data, const u_char *p,
    size_t len);
static int ngx_http_reductrai_cli_fd_sink(void *data, const u_char *p,
    size_t len);
static void ngx_http_reductrai_cli_storage_failed(
    ngx_http_reductrai_cli_read_t *out, ngx_http_reductrai_storage_err_t *err);


void
ngx_http_reductrai_cli_error(ngx_http_reductrai_cli_t *cli, const char *fmt,
    ...)
{
    char     *p;
    char      buf[1024];
    va_list   args;

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    /* one line, whatever a storage message held */
    for (p = buf; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }

    fflush(stdout);
    fprintf(stderr, "reductrai: %s: %s\n", cli->command, buf);
}


/*
 * Parses a time argument into milliseconds since the epoch.  With end set
 * the result is the exclusive end of the value's precision: "2026-11-25"
 * gives the start of the 26th, "…T10:30" gives 10:31:00.000.
 */

int
ngx_http_reductrai_cli_parse_time(const char *s, int64_t now_ms, int end,
    int64_t *ms)
{
    int          year, mon, mday, hour, min, sec, frac, digits, oh, om, exact;
    char        *e;
    int64_t      unit, t, off;
    const char  *p;
    long double  secs;

    if (strcmp(s, "now") == 0) {
        *ms = now_ms;
        return 0;
    }

    if (s[0] == '-') {
        if (ngx_http_reductrai_cli_relative(s + 1, &t) != 0) {
            return -1;
        }

        *ms = now_ms - t;
        return 0;
    }

    if (s[0] == '@') {
        errno = 0;
        secs = strtold(s + 1, &e);

        if (errno != 0 || e == s + 1 || *e != '\0' || secs < 0
            || secs > 1e13)
        {
            return -1;
        }

        *ms = (int64_t) (secs * 1000);
        return 0;
    }

    p = s;
    hour = 0;
    min = 0;
    sec = 0;
    frac = 0;

    if (ngx_http_reductrai_cli_digits(&p, 4, &year) != 0 || *p++ != '-'
        || ngx_http_reductrai_cli_digits(&p, 2, &mon) != 0 || *p++ != '-'
        || ngx_http_reductrai_cli_digits(&p, 2, &mday) != 0)
    {
        return -1;
    }

    unit = NGX_HTTP_REDUCTRAI_DAY_MS;

    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;

        if (ngx_http_reductrai_cli_digits(&p, 2, &hour) != 0) {
            return -1;
        }

        unit = NGX_HTTP_REDUCTRAI_HOUR_MS;

        if (*p == ':') {
            p++;

            if (ngx_http_reductrai_cli_digits(&p, 2, &min) != 0) {
                return -1;
            }

            unit = 60000;

            if (*p == ':') {
                p++;

                if (ngx_http_reductrai_cli_digits(&p, 2, &sec) != 0) {
                    return -1;
                }

                unit = 1000;

                if (*p == '.') {
                    p++;

                    for (digits = 0; *p >= '0' && *p <= '9'; p++, digits++)
                    {
                        if (digits < 3) {
                            frac = frac * 10 + (*p - '0');
                        }
                    }

                    if (digits == 0) {
                        return -1;
                    }

                    for (unit = 1000; digits > 0 && unit > 1; digits--) {
                        unit /= 10;
                    }

                    frac *= (int) unit;
                }
            }
        }
    }

    off = 0;

    if (*p == 'Z' || *p == 'z') {
        p++;

    } else if (*p == '+' || *p == '-') {
        int  sign = *p++ == '-' ? -1 : 1;

        if (ngx_http_reductrai_cli_digits(&p, 2, &oh) != 0) {
            return -1;
        }

        if (*p == ':') {
            p++;
        }

        if (ngx_http_reductrai_cli_digits(&p, 2, &om) != 0 || oh > 23
            || om > 59)
        {
            return -1;
        }

        off = sign * ((int64_t) oh * 3600000 + (int64_t) om * 60000);
    }

    if (*p != '\0' || mon < 1 || mon > 12 || mday < 1 || mday > 31
        || hour > 23 || min > 59 || sec > 59)
    {
        return -1;
    }

    t = ngx_http_reductrai_utc(year, mon, mday, hour, min, sec, &exact);

    /* no 2026-02-30, which timegm() would make March 2nd */
    if (!exact) {
        return -1;
    }

    t = t * 1000 + frac - off;

    *ms = end ? t + unit : t;

    return 0;
}


static int
ngx_http_reductrai_cli_digits(const char **p, int n, int *v)
{
    if (ngx_http_reductrai_digits((const u_char *) *p, (size_t) n, v) != 0) {
        return -1;
    }

    *p += n;

    return 0;
}


/* "1h30m", "2d", "90s", "1w", "500ms" */

static int
ngx_http_reductrai_cli_relative(const char *s, int64_t *ms)
{
    int64_t  n, unit;

    *ms = 0;

    if (*s == '\0') {
        return -1;
    }

    while (*s) {
        if (*s < '0' || *s > '9') {
            return -1;
        }

        for (n = 0; *s >= '0' && *s <= '9'; s++) {
            n = n * 10 + (*s - '0');

            if (n > 1000000000) {
                return -1;
            }
        }

        if (s[0] == 'm' && s[1] == 's') {
            unit = 1;
            s++;

        } else {
            switch (*s) {
            case 's': unit = 1000; break;
            case 'm': unit = 60000; break;
            case 'h': unit = NGX_HTTP_REDUCTRAI_HOUR_MS; break;
            case 'd': unit = NGX_HTTP_REDUCTRAI_DAY_MS; break;
            case 'w': unit = 7 * NGX_HTTP_REDUCTRAI_DAY_MS; break;
            default: return -1;
            }
        }

        s++;
        *ms += n * unit;
    }

    return 0;
}


int64_t
ngx_http_reductrai_cli_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


double
ngx_http_reductrai_cli_mono(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


/*
 * The prefixes to list: the storage prefix; under it "stream=S/" for each
 * stream asked for; under that one "dt=D/" per day when the time range
 * spans few days, and "dt=D/hour=H/" when it falls in one hour.  Without a
 * stream the whole prefix is listed: streams are not known in advance.
 */

int
ngx_http_reductrai_cli_list_prefixes(ngx_http_reductrai_cli_t *cli,
    char ***prefixes, int *n)
{
    int      i;
    char     rel[NGX_HTTP_REDUCTRAI_NAME_MAX], path[1024];
    size_t   len;
    int64_t  first, last, day, h0, h1;

    *prefixes = NULL;
    *n = 0;

    if (cli->nstreams == 0) {
        if (ngx_http_reductrai_storage_path(cli->st, path, sizeof(path) - 1,
                                            "")
            == 0 && cli->st->prefix[0] != '\0')
        {
            return -1;
        }

        len = strlen(path);

        if (len > 0) {
            path[len++] = '/';
            path[len] = '\0';
        }

        return ngx_http_reductrai_cli_add_prefix(prefixes, n, path);
    }

    first = cli->from;
    last = cli->to == NGX_HTTP_REDUCTRAI_CLI_TIME_MAX ? cli->to : cli->to - 1;

    for (i = 0; i < cli->nstreams; i++) {

        if (first != NGX_HTTP_REDUCTRAI_CLI_TIME_MIN
            && last != NGX_HTTP_REDUCTRAI_CLI_TIME_MAX
            && first >= 0 && last >= first
            && last / NGX_HTTP_REDUCTRAI_DAY_MS - first
               / NGX_HTTP_REDUCTRAI_DAY_MS
               < NGX_HTTP_REDUCTRAI_CLI_MAX_DAY_LISTS)
        {
            h0 = first / NGX_HTTP_REDUCTRAI_HOUR_MS;
            h1 = last / NGX_HTTP_REDUCTRAI_HOUR_MS;

            for (day = first / NGX_HTTP_REDUCTRAI_DAY_MS;
                 day <= last / NGX_HTTP_REDUCTRAI_DAY_MS;
                 day++)
            {
                len = ngx_http_reductrai_object_dir(rel, sizeof(rel), "",
                                                    cli->streams[i],
                                                    h0 == h1 ? h0 : day * 24);
                if (len == 0) {
                    return -1;
                }

                /* "stream=S/dt=D/hour=H/": keep the hour only if it is one */
                if (h0 != h1) {
                    rel[len - sizeof("hour=HH/") + 1] = '\0';
                }

                if (ngx_http_reductrai_storage_path(cli->st, path,
                                                    sizeof(path), rel)
                    == 0
                    || ngx_http_reductrai_cli_add_prefix(prefixes, n, path)
                       != 0)
                {
                    return -1;
                }
            }

            continue;
        }

        snprintf(rel, sizeof(rel), "stream=%s/", cli->streams[i]);

        if (ngx_http_reductrai_storage_path(cli->st, path, sizeof(path), rel)
            == 0
            || ngx_http_reductrai_cli_add_prefix(prefixes, n, path) != 0)
        {
            return -1;
        }
    }

    return 0;
}


static int
ngx_http_reductrai_cli_add_prefix(char ***prefixes, int *n, const char *s)
{
    char  **p;

    /*
     * the strings live in the array, which stays in *prefixes when realloc()
     * fails; the caller frees both with cli_prefixes_free(), on failure too.
     * The analyzer does not follow the array's elements and calls them leaked
     */
NGX_HTTP_REDUCTRAI_ANALYZER_IGNORE("-Wanalyzer-malloc-leak")
    p = realloc(*prefixes, sizeof(char *) * (size_t) (*n + 1));
    if (p == NULL) {
        return -1;
    }

    *prefixes = p;

    p[*n] = strdup(s);
    if (p[*n] == NULL) {
        return -1;
    }
NGX_HTTP_REDUCTRAI_ANALYZER_END

    (*n)++;

    return 0;
}


static void
ngx_http_reductrai_cli_prefixes_free(char **prefixes, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        free(prefixes[i]);
    }

    free(prefixes);
}


/*
 * Lists the objects the selectors may concern, sorted by key: pruned by
 * stream (prefix), day (prefix) and hour (key) before anything is fetched.
 * Returns an exit code.
 */

int
ngx_http_reductrai_cli_select(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_cli_object_t **objects, size_t *n)
{
    int                                 i, nprefixes, rc;
    char                              **prefixes;
    struct stat                         sb;
    ngx_http_reductrai_storage_rc_e     src;
    ngx_http_reductrai_storage_err_t    err;
    ngx_http_reductrai_cli_list_ctx_t   ctx;

    *objects = NULL;
    *n = 0;

    /* listing a missing directory is not an error for the backend */
    if (strcmp(cli->st->backend->scheme, "file") == 0
        && (stat(cli->st->bucket, &sb) == -1 || !S_ISDIR(sb.st_mode)))
    {
        ngx_http_reductrai_cli_error(cli, "storage %s: no such directory",
                                     cli->st->uri);
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    if (ngx_http_reductrai_cli_list_prefixes(cli, &prefixes, &nprefixes)
        != 0)
    {
        /* a failure part way leaves the prefixes listed before it */
        ngx_http_reductrai_cli_prefixes_free(prefixes, nprefixes);
        ngx_http_reductrai_cli_error(cli, "out of memory or prefix too long");
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    memset(&ctx, 0, sizeof(ngx_http_reductrai_cli_list_ctx_t));
    ctx.cli = cli;
    ctx.prefix_len = strlen(cli->st->prefix);

    rc = NGX_HTTP_REDUCTRAI_CLI_OK;

    for (i = 0; i < nprefixes; i++) {
        memset(&err, 0, sizeof(ngx_http_reductrai_storage_err_t));

        if (cli->verbose > 1) {
            fprintf(stderr, "reductrai: %s: listing \"%s\"\n", cli->command,
                    prefixes[i]);
        }

        cli->lists++;

        src = cli->st->backend->list(cli->st, prefixes[i],
                                     ngx_http_reductrai_cli_list_handler,
                                     &ctx, &err);

        if (ctx.failed) {
            ngx_http_reductrai_cli_error(cli, "out of memory");
            rc = NGX_HTTP_REDUCTRAI_CLI_STORAGE;
            break;
        }

        if (src != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            ngx_http_reductrai_cli_error(cli, "storage %s: listing failed: "
                                         "%s", cli->st->uri,
                                         err.message[0] ? err.message
                                                        : "unknown error");
            rc = NGX_HTTP_REDUCTRAI_CLI_STORAGE;
            break;
        }
    }

    ngx_http_reductrai_cli_prefixes_free(prefixes, nprefixes);

    if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
        ngx_http_reductrai_cli_objects_free(ctx.objects, ctx.n);
        return rc;
    }

    if (ctx.n > 1) {
        qsort(ctx.objects, ctx.n, sizeof(ngx_http_reductrai_cli_object_t),
              ngx_http_reductrai_cli_key_cmp);
    }

    if (cli->verbose) {
        fprintf(stderr, "reductrai: %s: %llu list request(s), %llu keys "
                "listed, %llu not archive objects, %llu pruned by hour, "
                "%zu selected\n", cli->command,
                (unsigned long long) cli->lists,
                (unsigned long long) cli->listed,
                (unsigned long long) cli->ignored,
                (unsigned long long) cli->pruned, ctx.n);
    }

    *objects = ctx.objects;
    *n = ctx.n;

    return NGX_HTTP_REDUCTRAI_CLI_OK;
}


static int
ngx_http_reductrai_cli_list_handler(void *data, const char *key,
    int64_t size)
{
    ngx_http_reductrai_cli_list_ctx_t *ctx = data;

    int                                i, slashes;
    size_t                             len;
    const char                        *s;
    ngx_http_reductrai_cli_t          *cli;
    ngx_http_reductrai_cli_object_t   *o;
    ngx_http_reductrai_segment_id_t    id;

    cli = ctx->cli;
    cli->listed++;

    len = strlen(key);

    if (ngx_http_reductrai_object_key_parse(key, len, &id) != 0) {
        cli->ignored++;
        return 0;
    }

    /*
     * What precedes "stream=" (the fourth component from the right) must
     * be the storage prefix: objects under a deeper prefix are not ours.
     */

    for (s = key + len, slashes = 0; s > key; s--) {
        if (s[-1] == '/' && ++slashes == 4) {
            break;
        }
    }

    if ((size_t) (s - key) != (ctx->prefix_len ? ctx->prefix_len + 1 : 0)
        || (ctx->prefix_len
            && memcmp(key, cli->st->prefix, ctx->prefix_len) != 0))
    {
        cli->ignored++;
        return 0;
    }

    if (cli->nstreams) {
        for (i = 0; i < cli->nstreams; i++) {
            if (strcmp(cli->streams[i], id.stream) == 0) {
                break;
            }
        }

        if (i == cli->nstreams) {
            cli->pruned++;
            return 0;
        }
    }

    if (!ngx_http_reductrai_cli_overlaps(cli,
                                         id.hour * NGX_HTTP_REDUCTRAI_HOUR_MS,
                                         (id.hour + 1)
                                         * NGX_HTTP_REDUCTRAI_HOUR_MS - 1))
    {
        cli->pruned++;
        return 0;
    }

    if (ctx->n == ctx->cap) {
        ctx->cap = ctx->cap ? ctx->cap * 2 : 256;

        o = realloc(ctx->objects,
                    ctx->cap * sizeof(ngx_http_reductrai_cli_object_t));
        if (o == NULL) {
            ctx->failed = 1;
            return 1;
        }

        ctx->objects = o;
    }

    o = &ctx->objects[ctx->n];

    /*
     * the key belongs to ctx->objects, freed by cli_objects_free() (by the
     * caller's caller once the listing is done, or on failure); the analyzer
     * does not follow the array element and calls it leaked
     */
NGX_HTTP_REDUCTRAI_ANALYZER_IGNORE("-Wanalyzer-malloc-leak")
    o->key = strdup(key);
    if (o->key == NULL) {
        ctx->failed = 1;
        return 1;
    }
NGX_HTTP_REDUCTRAI_ANALYZER_END

    o->size = size;
    o->id = id;
    ctx->n++;

    return 0;
}


static int
ngx_http_reductrai_cli_key_cmp(const void *a, const void *b)
{
    const ngx_http_reductrai_cli_object_t  *x = a, *y = b;

    return strcmp(x->key, y->key);
}


void
ngx_http_reductrai_cli_objects_free(ngx_http_reductrai_cli_object_t *o,
    size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(o[i].key);
    }

    free(o);
}


/* the whole hour lies inside the selected time range */

int
ngx_http_reductrai_cli_hour_inside(ngx_http_reductrai_cli_t *cli,
    int64_t hour)
{
    return hour * NGX_HTTP_REDUCTRAI_HOUR_MS >= cli->from
           && (hour + 1) * NGX_HTTP_REDUCTRAI_HOUR_MS <= cli->to;
}


/* [first_ms, last_ms] (inclusive) meets [from, to) */

int
ngx_http_reductrai_cli_overlaps(ngx_http_reductrai_cli_t *cli,
    int64_t first_ms, int64_t last_ms)
{
    return last_ms >= cli->from && first_ms < cli->to;
}


/*
 * An object of an hour the range cuts may hold no selected record: its
 * trailer (a 1 KB ranged GET) can spare reading all of it.
 */

int
ngx_http_reductrai_cli_excluded(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_cli_object_t *o)
{
    int                               found;
    ngx_http_reductrai_trailer_t      t;
    ngx_http_reductrai_storage_err_t  err;

    if (!cli->time_limited
        || ngx_http_reductrai_cli_hour_inside(cli, o->id.hour))
    {
        return 0;
    }

    memset(&err, 0, sizeof(ngx_http_reductrai_storage_err_t));

    return ngx_http_reductrai_cli_get_trailer(cli, o->key, &t, &found, &err)
           == NGX_HTTP_REDUCTRAI_STORAGE_OK
           && found
           && !ngx_http_reductrai_cli_overlaps(cli, t.first_ms, t.last_ms);
}


/* "INSTANCE-PID-STARTMS": the writing worker */

size_t
ngx_http_reductrai_cli_worker(char *buf, size_t size,
    const ngx_http_reductrai_segment_id_t *id)
{
    int  n;

    n = snprintf(buf, size, "%s-%lld-%lld", id->instance,
                 (long long) id->pid, (long long) id->start_ms);

    return (n < 0 || (size_t) n >= size) ? 0 : (size_t) n;
}


/* one ranged GET of the object's last bytes */

ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_cli_get_trailer(ngx_http_reductrai_cli_t *cli,
    const char *key, ngx_http_reductrai_trailer_t *t, int *found,
    ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_storage_rc_e  rc;
    ngx_http_reductrai_cli_tail_t    tail;

    tail.len = 0;
    *found = 0;

    __atomic_add_fetch(&cli->trailer_gets, 1, __ATOMIC_RELAXED);

    rc = cli->st->backend->get(cli->st, key,
                               -(int64_t) NGX_HTTP_REDUCTRAI_TRAILER_MAX, -1,
                               ngx_http_reductrai_cli_tail_sink, &tail, err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK
        && ngx_http_reductrai_trailer_parse(tail.buf, tail.len, t) != 0)
    {
        *found = 1;
    }

    return rc;
}


/* keeps the last TRAILER_MAX bytes, whatever a backend sends */

static int
ngx_http_reductrai_cli_tail_sink(void *data, const u_char *p, size_t len)
{
    ngx_http_reductrai_cli_tail_t *t = data;

    ngx_http_reductrai_keep_tail(t->buf, sizeof(t->buf), &t->len, p, len);

    return 0;
}


/*
 * Copies an object to an unlinked temporary file, so that it can be read
 * more than once and a slow consumer (replay's rate limit) never holds a
 * storage connection open.  Returns an exit code.
 */

int
ngx_http_reductrai_cli_fetch(ngx_http_reductrai_cli_t *cli, const char *key,
    int *fd, ngx_http_reductrai_cli_read_t *out)
{
    char                               path[PATH_MAX];
    const char                        *tmpdir;
    ngx_http_reductrai_storage_err_t   err;

    memset(out, 0, sizeof(ngx_http_reductrai_cli_read_t));
    memset(&err, 0, sizeof(ngx_http_reductrai_storage_err_t));

    tmpdir = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/reductrai-XXXXXX",
             tmpdir && tmpdir[0] ? tmpdir : "/tmp");

    *fd = mkstemp(path);
    if (*fd == -1) {
        snprintf(out->storage_error, sizeof(out->storage_error),
                 "mkstemp(\"%.200s\") failed: %s", path, strerror(errno));
        out->storage_rc = NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    (void) unlink(path);

    __atomic_add_fetch(&cli->object_gets, 1, __ATOMIC_RELAXED);

    out->storage_rc = cli->st->backend->get(cli->st, key, 0, -1,
                                            ngx_http_reductrai_cli_fd_sink,
                                            fd, &err);

    if (out->storage_rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        ngx_http_reductrai_cli_storage_failed(out, &err);
        (void) close(*fd);
        *fd = -1;
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    return NGX_HTTP_REDUCTRAI_CLI_OK;
}


/*
 * Reads one object through the reader: from fd when it is not -1 (a copy
 * made by fetch()), else with a storage get().  Returns an exit code for
 * storage trouble, else 0 (the reader's verdict is in out->res).
 */

int
ngx_http_reductrai_cli_read_object(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_reader_t *r, const char *key, int fd,
    ngx_http_reductrai_cli_read_t *out)
{
    u_char                             buf[65536];
    off_t                              off;
    ssize_t                            n;
    ngx_http_reductrai_storage_err_t   err;

    memset(out, 0, sizeof(ngx_http_reductrai_cli_read_t));
    memset(&err, 0, sizeof(ngx_http_reductrai_storage_err_t));

    if (ngx_http_reductrai_reader_reset(r) != 0) {
        snprintf(out->storage_error, sizeof(out->storage_error),
                 "zstd reset failed");
        out->storage_rc = NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    if (fd == -1) {
        __atomic_add_fetch(&cli->object_gets, 1, __ATOMIC_RELAXED);

        out->storage_rc = cli->st->backend->get(cli->st, key, 0, -1,
                                                ngx_http_reductrai_reader_feed,
                                                r, &err);

        if (out->storage_rc != NGX_HTTP_REDUCTRAI_STORAGE_OK
            && r->rc == NGX_HTTP_REDUCTRAI_READ_OK)
        {
            ngx_http_reductrai_cli_storage_failed(out, &err);
            return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
        }

        /* a reader that stopped made the get fail: that is not storage */
        out->storage_rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;
        ngx_http_reductrai_reader_finish(r, &out->res);

        return NGX_HTTP_REDUCTRAI_CLI_OK;
    }

    for (off = 0; /* void */; off += n) {
        n = pread(fd, buf, sizeof(buf), off);

        if (n == -1 && errno == EINTR) {
            n = 0;
            continue;
        }

        if (n == -1) {
            snprintf(out->storage_error, sizeof(out->storage_error),
                     "reading the temporary copy failed: %s",
                     strerror(errno));
            out->storage_rc = NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
            return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
        }

        if (n == 0 || ngx_http_reductrai_reader_feed(r, buf, (size_t) n) != 0)
        {
            break;
        }
    }

    ngx_http_reductrai_reader_finish(r, &out->res);

    return NGX_HTTP_REDUCTRAI_CLI_OK;
}


static int
ngx_http_reductrai_cli_fd_sink(void *data, const u_char *p, size_t len)
{
    return ngx_http_reductrai_fd_write(*(int *) data, p, len);
}


/* a failed get's message, never empty */

static void
ngx_http_reductrai_cli_storage_failed(ngx_http_reductrai_cli_read_t *out,
    ngx_http_reductrai_storage_err_t *err)
{
    memcpy(out->storage_error, err->message, sizeof(out->storage_error));

    if (out->storage_error[0] == '\0') {
        strcpy(out->storage_error, "unknown error");
    }
}


/*
 * The record filters of cat and replay.  Returns 1 to take the record, 0
 * to skip it, -1 when the line is not a record (v->ts_ms etc. unset).
 * scratch holds the unescaped uri for --uri.
 */

int
ngx_http_reductrai_cli_match(ngx_http_reductrai_cli_t *cli,
    const u_char *line, size_t len, ngx_http_reductrai_record_view_t *v,
    ngx_http_reductrai_buf_t *scratch)
{
    size_t       mlen;
    ssize_t      n;
    const char  *err;

    if (cli->grep != NULL
        && memmem(line, len, cli->grep, strlen(cli->grep)) == NULL)
    {
        return 0;
    }

    if (ngx_http_reductrai_record_view(line, len, v, &err) != 0) {
        return -1;
    }

    if (cli->time_limited && (v->ts_ms < cli->from || v->ts_ms >= cli->to)) {
        return 0;
    }

    if (cli->api_key_fp != NULL
        && (v->api_key_fp.data == NULL
            || v->api_key_fp.len != NGX_HTTP_REDUCTRAI_FP_LEN
            || memcmp(v->api_key_fp.data, cli->api_key_fp,
                      NGX_HTTP_REDUCTRAI_FP_LEN) != 0))
    {
        return 0;
    }

    if (cli->uri_match != NULL) {
        if (v->uri.data == NULL) {
            return 0;
        }

        scratch->len = 0;

        if (ngx_http_reductrai_buf_reserve(scratch, v->uri.len + 1) != 0) {
            return -1;
        }

        n = ngx_http_reductrai_json_unescape(scratch->data, v->uri.data,
                                             v->uri.len);
        if (n < 0) {
            return -1;
        }

        if (cli->uri_glob) {
            /* a NUL inside the uri ends the match early: no false hit */
            scratch->data[n] = '\0';

            if (fnmatch(cli->uri_match, (char *) scratch->data, 0) != 0) {
                return 0;
            }

        } else {
            mlen = strlen(cli->uri_match);

            if ((size_t) n < mlen
                || memcmp(scratch->data, cli->uri_match, mlen) != 0)
            {
                return 0;
            }
        }
    }

    return 1;
}
