
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The replay checkpoint: the ids of records delivered (2xx).  A record id
 * is WORKER-N, WORKER being INSTANCE-PID-STARTMS and N a per-worker counter,
 * so the ids of a replay collapse into a few ranges per worker:
 *
 *   # reductrai replay checkpoint v1
 *   web-1-4242-1764066600000 1-5000,5002-9000
 *   web-1-4242-1764066600000 5001
 *
 * Each delivery appends one "WORKER N" line with a single write(): the page
 * cache keeps it when the process is killed, so a rerun repeats at most the
 * requests that were in flight.  Now and then the file is compacted to one
 * line per worker, written to a temporary file, fsync()ed and renamed over
 * the old one, so it is never seen half-written.
 */


#include "ngx_http_reductrai_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define NGX_HTTP_REDUCTRAI_CKPT_HASH     1024
#define NGX_HTTP_REDUCTRAI_CKPT_HEADER   "# reductrai replay checkpoint v1\n"


typedef struct {
    uint64_t                              lo;
    uint64_t                              hi;
} ngx_http_reductrai_cli_range_t;


typedef struct ngx_http_reductrai_cli_cworker_s
    ngx_http_reductrai_cli_cworker_t;

struct ngx_http_reductrai_cli_cworker_s {
    ngx_http_reductrai_cli_cworker_t     *next;
    char                                 *name;
    size_t                                len;
    ngx_http_reductrai_cli_range_t       *ranges;
    size_t                                n;
    size_t                                cap;
};


struct ngx_http_reductrai_cli_ckpt_s {
    char                              *path;
    char                              *tmp;
    int                                fd;
    uint64_t                           count;
    ngx_http_reductrai_cli_cworker_t  *buckets[NGX_HTTP_REDUCTRAI_CKPT_HASH];
};


static int ngx_http_reductrai_cli_ckpt_split(const u_char *id, size_t len,
    size_t *wlen, uint64_t *n);
static ngx_http_reductrai_cli_cworker_t *ngx_http_reductrai_cli_ckpt_worker(
    ngx_http_reductrai_cli_ckpt_t *ck, const u_char *name, size_t len,
    int create);
static int ngx_http_reductrai_cli_ckpt_add(ngx_http_reductrai_cli_ckpt_t *ck,
    ngx_http_reductrai_cli_cworker_t *w, uint64_t lo, uint64_t hi);
static int ngx_http_reductrai_cli_ckpt_line(ngx_http_reductrai_cli_ckpt_t *ck,
    char *line);


ngx_http_reductrai_cli_ckpt_t *
ngx_http_reductrai_cli_ckpt_open(const char *path, char *err, size_t errlen)
{
    FILE                           *f;
    char                           *line;
    size_t                          cap, lineno;
    ssize_t                         len;
    ngx_http_reductrai_cli_ckpt_t  *ck;

    ck = calloc(1, sizeof(ngx_http_reductrai_cli_ckpt_t));
    if (ck == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    ck->fd = -1;
    ck->path = strdup(path);
    ck->tmp = malloc(strlen(path) + 5);

    if (ck->path == NULL || ck->tmp == NULL) {
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    sprintf(ck->tmp, "%s.tmp", path);

    f = fopen(path, "r");

    if (f == NULL && errno != ENOENT) {
        snprintf(err, errlen, "open() \"%s\" failed (%d: %s)", path,
                 errno, strerror(errno));
        goto failed;
    }

    if (f != NULL) {
        line = NULL;
        cap = 0;
        lineno = 0;

        while ((len = getline(&line, &cap, f)) != -1) {
            lineno++;

            /* a line cut by a kill has no newline: it was not done */
            if (line[len - 1] != '\n') {
                break;
            }

            line[len - 1] = '\0';

            if (ngx_http_reductrai_cli_ckpt_line(ck, line) != 0) {
                snprintf(err, errlen, "checkpoint \"%s\", line %zu: not a "
                         "reductrai replay checkpoint", path, lineno);
                free(line);
                fclose(f);
                goto failed;
            }
        }

        free(line);
        fclose(f);
    }

    /* start from a compact file that ends with a newline */
    if (ngx_http_reductrai_cli_ckpt_save(ck) != 0) {
        snprintf(err, errlen, "writing checkpoint \"%s\" failed: %s", path,
                 strerror(errno));
        goto failed;
    }

    return ck;

failed:

    ngx_http_reductrai_cli_ckpt_close(ck);

    return NULL;
}


int
ngx_http_reductrai_cli_ckpt_done(ngx_http_reductrai_cli_ckpt_t *ck,
    const u_char *id, size_t len)
{
    size_t                             wlen, lo, hi, mid;
    uint64_t                           n;
    ngx_http_reductrai_cli_cworker_t  *w;

    if (ngx_http_reductrai_cli_ckpt_split(id, len, &wlen, &n) != 0) {
        return 0;
    }

    w = ngx_http_reductrai_cli_ckpt_worker(ck, id, wlen, 0);
    if (w == NULL) {
        return 0;
    }

    lo = 0;
    hi = w->n;

    while (lo < hi) {
        mid = (lo + hi) / 2;

        if (w->ranges[mid].hi < n) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return lo < w->n && w->ranges[lo].lo <= n;
}


int
ngx_http_reductrai_cli_ckpt_mark(ngx_http_reductrai_cli_ckpt_t *ck,
    const u_char *id, size_t len)
{
    int                                n;
    char                               buf[NGX_HTTP_REDUCTRAI_NAME_MAX + 32];
    size_t                             wlen;
    uint64_t                           seq;
    ngx_http_reductrai_cli_cworker_t  *w;

    if (ngx_http_reductrai_cli_ckpt_split(id, len, &wlen, &seq) != 0
        || wlen > NGX_HTTP_REDUCTRAI_NAME_MAX)
    {
        errno = EINVAL;
        return -1;
    }

    w = ngx_http_reductrai_cli_ckpt_worker(ck, id, wlen, 1);
    if (w == NULL || ngx_http_reductrai_cli_ckpt_add(ck, w, seq, seq) != 0) {
        errno = ENOMEM;
        return -1;
    }

    n = snprintf(buf, sizeof(buf), "%.*s %llu\n", (int) wlen, (char *) id,
                 (unsigned long long) seq);

    return ngx_http_reductrai_fd_write(ck->fd, buf, (size_t) n);
}


uint64_t
ngx_http_reductrai_cli_ckpt_count(ngx_http_reductrai_cli_ckpt_t *ck)
{
    return ck->count;
}


int
ngx_http_reductrai_cli_ckpt_save(ngx_http_reductrai_cli_ckpt_t *ck)
{
    int                                fd, e;
    char                               num[48];
    size_t                             i, j;
    ngx_http_reductrai_cli_cworker_t  *w;

    fd = open(ck->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        return -1;
    }

    if (ngx_http_reductrai_fd_write(fd, NGX_HTTP_REDUCTRAI_CKPT_HEADER,
                                    sizeof(NGX_HTTP_REDUCTRAI_CKPT_HEADER) - 1)
        != 0)
    {
        goto failed;
    }

    for (i = 0; i < NGX_HTTP_REDUCTRAI_CKPT_HASH; i++) {
        for (w = ck->buckets[i]; w != NULL; w = w->next) {
            if (w->n == 0) {
                continue;
            }

            if (ngx_http_reductrai_fd_write(fd, w->name, w->len) != 0) {
                goto failed;
            }

            for (j = 0; j < w->n; j++) {
                if (w->ranges[j].lo == w->ranges[j].hi) {
                    snprintf(num, sizeof(num), "%c%llu", j ? ',' : ' ',
                             (unsigned long long) w->ranges[j].lo);

                } else {
                    snprintf(num, sizeof(num), "%c%llu-%llu", j ? ',' : ' ',
                             (unsigned long long) w->ranges[j].lo,
                             (unsigned long long) w->ranges[j].hi);
                }

                if (ngx_http_reductrai_fd_write(fd, num, strlen(num)) != 0) {
                    goto failed;
                }
            }

            if (ngx_http_reductrai_fd_write(fd, "\n", 1) != 0) {
                goto failed;
            }
        }
    }

    if (fsync(fd) == -1) {
        goto failed;
    }

    if (close(fd) == -1) {
        fd = -1;
        goto failed;
    }

    if (rename(ck->tmp, ck->path) == -1) {
        e = errno;
        (void) unlink(ck->tmp);
        errno = e;
        return -1;
    }

    /* appends now go to the new file */
    if (ck->fd != -1) {
        (void) close(ck->fd);
    }

    ck->fd = open(ck->path, O_WRONLY | O_APPEND | O_CLOEXEC);

    return ck->fd == -1 ? -1 : 0;

failed:

    e = errno;

    if (fd != -1) {
        (void) close(fd);
    }

    (void) unlink(ck->tmp);
    errno = e;

    return -1;
}


void
ngx_http_reductrai_cli_ckpt_close(ngx_http_reductrai_cli_ckpt_t *ck)
{
    size_t                             i;
    ngx_http_reductrai_cli_cworker_t  *w, *next;

    if (ck == NULL) {
        return;
    }

    if (ck->fd != -1) {
        (void) close(ck->fd);
    }

    for (i = 0; i < NGX_HTTP_REDUCTRAI_CKPT_HASH; i++) {
        for (w = ck->buckets[i]; w != NULL; w = next) {
            next = w->next;
            free(w->name);
            free(w->ranges);
            free(w);
        }
    }

    free(ck->path);
    free(ck->tmp);
    free(ck);
}


/* "WORKER-N": the worker is everything before the last '-' */

static int
ngx_http_reductrai_cli_ckpt_split(const u_char *id, size_t len, size_t *wlen,
    uint64_t *n)
{
    size_t  i, d;

    for (i = len; i > 0 && id[i - 1] != '-'; i--) { /* void */ }

    if (i < 2 || i == len || len - i > 19) {
        return -1;
    }

    *n = 0;

    for (d = i; d < len; d++) {
        if (id[d] < '0' || id[d] > '9') {
            return -1;
        }

        *n = *n * 10 + (uint64_t) (id[d] - '0');
    }

    *wlen = i - 1;

    return 0;
}


static ngx_http_reductrai_cli_cworker_t *
ngx_http_reductrai_cli_ckpt_worker(ngx_http_reductrai_cli_ckpt_t *ck,
    const u_char *name, size_t len, int create)
{
    size_t                             i;
    uint32_t                           h;
    ngx_http_reductrai_cli_cworker_t  *w;

    /* FNV-1a */
    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ name[i]) * 16777619u;
    }

    h %= NGX_HTTP_REDUCTRAI_CKPT_HASH;

    for (w = ck->buckets[h]; w != NULL; w = w->next) {
        if (w->len == len && memcmp(w->name, name, len) == 0) {
            return w;
        }
    }

    if (!create) {
        return NULL;
    }

    w = calloc(1, sizeof(ngx_http_reductrai_cli_cworker_t));
    if (w == NULL) {
        return NULL;
    }

    w->name = malloc(len + 1);
    if (w->name == NULL) {
        free(w);
        return NULL;
    }

    memcpy(w->name, name, len);
    w->name[len] = '\0';
    w->len = len;

    w->next = ck->buckets[h];
    ck->buckets[h] = w;

    return w;
}


/* adds [lo, hi] to a worker's sorted, disjoint, non-adjacent ranges */

static int
ngx_http_reductrai_cli_ckpt_add(ngx_http_reductrai_cli_ckpt_t *ck,
    ngx_http_reductrai_cli_cworker_t *w, uint64_t lo, uint64_t hi)
{
    size_t                           a, b, mid, k;
    uint64_t                         covered;
    ngx_http_reductrai_cli_range_t  *r;

    /* a: the first range that ends at lo - 1 or later (may merge) */
    a = 0;
    b = w->n;

    while (a < b) {
        mid = (a + b) / 2;

        if (w->ranges[mid].hi + 1 < lo) {
            a = mid + 1;

        } else {
            b = mid;
        }
    }

    /* k: one past the last range that starts at hi + 1 or earlier */
    for (k = a; k < w->n && w->ranges[k].lo <= hi + 1; k++) { /* void */ }

    if (k == a) {
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4;

            r = realloc(w->ranges,
                        w->cap * sizeof(ngx_http_reductrai_cli_range_t));
            if (r == NULL) {
                return -1;
            }

            w->ranges = r;
        }

        memmove(&w->ranges[a + 1], &w->ranges[a],
                (w->n - a) * sizeof(ngx_http_reductrai_cli_range_t));
        w->ranges[a].lo = lo;
        w->ranges[a].hi = hi;
        w->n++;
        ck->count += hi - lo + 1;

        return 0;
    }

    /* merge ranges a .. k-1 with [lo, hi] */

    covered = 0;

    for (mid = a; mid < k; mid++) {
        covered += w->ranges[mid].hi - w->ranges[mid].lo + 1;
    }

    lo = lo < w->ranges[a].lo ? lo : w->ranges[a].lo;
    hi = hi > w->ranges[k - 1].hi ? hi : w->ranges[k - 1].hi;

    w->ranges[a].lo = lo;
    w->ranges[a].hi = hi;

    memmove(&w->ranges[a + 1], &w->ranges[k],
            (w->n - k) * sizeof(ngx_http_reductrai_cli_range_t));
    w->n -= k - a - 1;

    ck->count += (hi - lo + 1) - covered;

    return 0;
}


static int
ngx_http_reductrai_cli_ckpt_line(ngx_http_reductrai_cli_ckpt_t *ck,
    char *line)
{
    char                              *sp, *p, *end;
    uint64_t                           lo, hi;
    ngx_http_reductrai_cli_cworker_t  *w;

    if (line[0] == '#' || line[0] == '\0') {
        return 0;
    }

    sp = strchr(line, ' ');
    if (sp == NULL || sp == line) {
        return -1;
    }

    w = ngx_http_reductrai_cli_ckpt_worker(ck, (u_char *) line,
                                           (size_t) (sp - line), 1);
    if (w == NULL) {
        return -1;
    }

    for (p = sp + 1; *p; /* void */) {
        if (*p < '0' || *p > '9') {
            return -1;
        }

        lo = strtoull(p, &end, 10);
        hi = lo;

        if (*end == '-') {
            p = end + 1;

            if (*p < '0' || *p > '9') {
                return -1;
            }

            hi = strtoull(p, &end, 10);
        }

        /*
         * w->ranges, grown by ckpt_add(), belongs to w, which hangs in
         * ck->buckets and is freed by ckpt_free(); the analyzer does not
         * follow the hash chain and calls the array leaked
         */
NGX_HTTP_REDUCTRAI_ANALYZER_IGNORE("-Wanalyzer-malloc-leak")
        if (hi < lo || ngx_http_reductrai_cli_ckpt_add(ck, w, lo, hi) != 0) {
            return -1;
        }
NGX_HTTP_REDUCTRAI_ANALYZER_END

        if (*end == ',') {
            end++;

        } else if (*end != '\0') {
            return -1;
        }

        p = end;
    }

    return 0;
}
