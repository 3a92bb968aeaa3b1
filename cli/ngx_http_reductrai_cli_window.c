
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The vendor's clock: an intake drops data older than its window (Datadog:
 * metric points older than 1 hour unless historical metrics ingestion is
 * enabled, logs and events older than 18 hours) while it still answers
 * 202.  Here: the kind of data a record's path carries, the windows and
 * their --window syntax, the timestamps a JSON body holds, and the verdict
 * of a record against a window.  docs/CLI.md cites the sources.
 */


#include "ngx_http_reductrai_cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
    const char                        *path;
    ngx_http_reductrai_cli_kind_e      kind;
} ngx_http_reductrai_cli_path_kind_t;


static void ngx_http_reductrai_cli_times_add(json_t *v, int64_t unit_ms,
    ngx_http_reductrai_cli_times_t *t);
static void ngx_http_reductrai_cli_times_log(json_t *log,
    ngx_http_reductrai_cli_times_t *t);


static const char  *ngx_http_reductrai_cli_kind_names[] = {
    "metrics", "logs", "traces", "events", "other"
};


/* Datadog's intake paths (and OTLP's), matched up to '/', '?' or the end */

static const ngx_http_reductrai_cli_path_kind_t
    ngx_http_reductrai_cli_paths[] =
{
    { "/api/v1/series", NGX_HTTP_REDUCTRAI_KIND_METRICS },
    { "/api/v2/series", NGX_HTTP_REDUCTRAI_KIND_METRICS },
    { "/api/beta/sketches", NGX_HTTP_REDUCTRAI_KIND_METRICS },
    { "/api/v1/sketches", NGX_HTTP_REDUCTRAI_KIND_METRICS },
    { "/api/v1/check_run", NGX_HTTP_REDUCTRAI_KIND_METRICS },
    { "/api/v1/distribution_points", NGX_HTTP_REDUCTRAI_KIND_METRICS },
    { "/v1/metrics", NGX_HTTP_REDUCTRAI_KIND_METRICS },
    { "/api/v2/logs", NGX_HTTP_REDUCTRAI_KIND_LOGS },
    { "/v1/input", NGX_HTTP_REDUCTRAI_KIND_LOGS },
    { "/v1/logs", NGX_HTTP_REDUCTRAI_KIND_LOGS },
    { "/api/v0.2/traces", NGX_HTTP_REDUCTRAI_KIND_TRACES },
    { "/api/v0.2/stats", NGX_HTTP_REDUCTRAI_KIND_TRACES },
    { "/v1/traces", NGX_HTTP_REDUCTRAI_KIND_TRACES },
    { "/api/v1/events", NGX_HTTP_REDUCTRAI_KIND_EVENTS },
    { NULL, NGX_HTTP_REDUCTRAI_KIND_OTHER }
};


const char *
ngx_http_reductrai_cli_kind_name(ngx_http_reductrai_cli_kind_e kind)
{
    return ngx_http_reductrai_cli_kind_names[kind];
}


ngx_http_reductrai_cli_kind_e
ngx_http_reductrai_cli_kind(const u_char *uri, size_t len)
{
    size_t                                     n;
    const ngx_http_reductrai_cli_path_kind_t  *p;

    for (p = ngx_http_reductrai_cli_paths; p->path != NULL; p++) {
        n = strlen(p->path);

        if (len >= n && memcmp(uri, p->path, n) == 0
            && (len == n || uri[n] == '/' || uri[n] == '?'))
        {
            return p->kind;
        }
    }

    return NGX_HTTP_REDUCTRAI_KIND_OTHER;
}


/* Datadog's documented windows; traces and other: none documented */

void
ngx_http_reductrai_cli_window_defaults(int64_t *window)
{
    window[NGX_HTTP_REDUCTRAI_KIND_METRICS] = 3600 * 1000LL;
    window[NGX_HTTP_REDUCTRAI_KIND_LOGS] = 18 * 3600 * 1000LL;
    window[NGX_HTTP_REDUCTRAI_KIND_TRACES] = -1;
    window[NGX_HTTP_REDUCTRAI_KIND_EVENTS] = 18 * 3600 * 1000LL;
    window[NGX_HTTP_REDUCTRAI_KIND_OTHER] = -1;
}


/*
 * --window none | KIND=DURATION|none[,KIND=...]: DURATION as in --from
 * without its "-" (90m, 1h, 18h, 2d, 1h30m).  Returns 0, or -1 with err.
 */

int
ngx_http_reductrai_cli_window_parse(int64_t *window, const char *spec,
    char *err, size_t errlen)
{
    int      k;
    char     buf[64], *eq, *item, *save, *copy;
    int64_t  ms;

    if (strcmp(spec, "none") == 0) {
        for (k = 0; k < NGX_HTTP_REDUCTRAI_KIND_N; k++) {
            window[k] = -1;
        }

        return 0;
    }

    if (spec[0] == '\0') {
        snprintf(err, errlen, "--window takes none or KIND=DURATION,...");
        return -1;
    }

    copy = strdup(spec);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    for (item = strtok_r(copy, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save))
    {
        eq = strchr(item, '=');

        if (eq == NULL) {
            snprintf(err, errlen, "--window takes none or KIND=DURATION "
                     "(KIND: metrics, logs, traces, events, other), not "
                     "\"%s\"", item);
            goto failed;
        }

        *eq++ = '\0';

        for (k = 0; k < NGX_HTTP_REDUCTRAI_KIND_N; k++) {
            if (strcmp(item, ngx_http_reductrai_cli_kind_names[k]) == 0) {
                break;
            }
        }

        if (k == NGX_HTTP_REDUCTRAI_KIND_N) {
            snprintf(err, errlen, "--window: unknown kind \"%s\" (metrics, "
                     "logs, traces, events, other)", item);
            goto failed;
        }

        if (strcmp(eq, "none") == 0) {
            window[k] = -1;
            continue;
        }

        /* a duration is a relative time without its sign */
        if (snprintf(buf, sizeof(buf), "-%s", eq) >= (int) sizeof(buf)
            || eq[0] == '-' || eq[0] == '\0'
            || ngx_http_reductrai_cli_parse_time(buf, 0, 0, &ms) != 0
            || ms >= 0)
        {
            snprintf(err, errlen, "--window: invalid duration \"%s\" for %s "
                     "(e.g. 1h, 90m, 18h, 2d, or none)", eq, item);
            goto failed;
        }

        window[k] = -ms;
    }

    free(copy);
    return 0;

failed:

    free(copy);
    return -1;
}


/* "1h", "18h", "90m", "45s", "1500ms", or "none" */

char *
ngx_http_reductrai_cli_window_format(char *buf, size_t size, int64_t ms)
{
    if (ms < 0) {
        snprintf(buf, size, "none");

    } else if (ms % 3600000 == 0) {
        snprintf(buf, size, "%lldh", (long long) (ms / 3600000));

    } else if (ms % 60000 == 0) {
        snprintf(buf, size, "%lldm", (long long) (ms / 60000));

    } else if (ms % 1000 == 0) {
        snprintf(buf, size, "%llds", (long long) (ms / 1000));

    } else {
        snprintf(buf, size, "%lldms", (long long) ms);
    }

    return buf;
}


/*
 * The oldest and newest timestamps a JSON body holds where the intake
 * looks for them:
 *   metrics: series[].points[] as [ts, value] (v1, seconds) or
 *            {"timestamp": ts} (v2, seconds); sketches[].dogsketches[].ts
 *            (seconds); check_run's [{"timestamp": ts}] (seconds);
 *   logs:    each log's "timestamp" or "date": a number (milliseconds, or
 *            seconds when it is below 1e11) or an RFC 3339 string;
 *   events:  "date_happened" (seconds).
 * Numbers may be JSON strings (protobuf's JSON form of int64).  t->count is
 * 0 when none was found (a body of another shape, traces, not JSON).
 */

void
ngx_http_reductrai_cli_body_times(ngx_http_reductrai_cli_kind_e kind,
    const u_char *body, size_t len, ngx_http_reductrai_cli_times_t *t)
{
    size_t        i, j;
    json_t       *root, *a, *e, *p, *s;
    json_error_t  error;

    t->count = 0;
    t->oldest = INT64_MAX;
    t->newest = INT64_MIN;

    if (kind != NGX_HTTP_REDUCTRAI_KIND_METRICS
        && kind != NGX_HTTP_REDUCTRAI_KIND_LOGS
        && kind != NGX_HTTP_REDUCTRAI_KIND_EVENTS)
    {
        return;
    }

    root = json_loadb((const char *) body, len,
                      JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (root == NULL) {
        return;
    }

    switch (kind) {

    case NGX_HTTP_REDUCTRAI_KIND_METRICS:
        json_array_foreach(json_object_get(root, "series"), i, s) {
            json_array_foreach(json_object_get(s, "points"), j, p) {
                if (json_is_array(p)) {
                    ngx_http_reductrai_cli_times_add(json_array_get(p, 0),
                                                     1000, t);

                } else {
                    ngx_http_reductrai_cli_times_add(
                        json_object_get(p, "timestamp"), 1000, t);
                }
            }
        }

        json_array_foreach(json_object_get(root, "sketches"), i, s) {
            json_array_foreach(json_object_get(s, "dogsketches"), j, p) {
                ngx_http_reductrai_cli_times_add(json_object_get(p, "ts"),
                                                 1000, t);
            }
        }

        /* check_run: an array of checks */
        json_array_foreach(root, i, e) {
            ngx_http_reductrai_cli_times_add(json_object_get(e, "timestamp"),
                                             1000, t);
        }

        break;

    case NGX_HTTP_REDUCTRAI_KIND_LOGS:
        if (json_is_object(root)) {
            ngx_http_reductrai_cli_times_log(root, t);
        }

        json_array_foreach(root, i, a) {
            ngx_http_reductrai_cli_times_log(a, t);
        }

        break;

    default: /* events */
        ngx_http_reductrai_cli_times_add(json_object_get(root,
                                                         "date_happened"),
                                         1000, t);
        break;
    }

    json_decref(root);

    if (t->count == 0) {
        t->oldest = -1;
        t->newest = -1;
    }
}


/* unit_ms: what a number counts (1000: seconds); 0: ms or s by size */

static void
ngx_http_reductrai_cli_times_add(json_t *v, int64_t unit_ms,
    ngx_http_reductrai_cli_times_t *t)
{
    char         *end;
    double        d;
    int64_t       ms;
    const char   *s;

    if (json_is_number(v)) {
        d = json_number_value(v);

    } else if (json_is_string(v)) {
        s = json_string_value(v);

        if (ngx_http_reductrai_cli_parse_time(s, 0, 0, &ms) == 0
            && strchr(s, '-') != NULL)
        {
            /* a date: 2026-11-25T10:30:00Z */
            goto found;
        }

        d = strtod(s, &end);

        if (end == s || *end != '\0') {
            return;
        }

    } else {
        return;
    }

    if (d != d || d <= 0 || d > 1e15) {
        return;
    }

    if (unit_ms == 0) {
        unit_ms = d < 1e11 ? 1000 : 1;
    }

    ms = (int64_t) (d * (double) unit_ms);

found:

    t->count++;
    t->oldest = ms < t->oldest ? ms : t->oldest;
    t->newest = ms > t->newest ? ms : t->newest;
}


static void
ngx_http_reductrai_cli_times_log(json_t *log,
    ngx_http_reductrai_cli_times_t *t)
{
    json_t  *v;

    v = json_object_get(log, "timestamp");

    if (v == NULL) {
        v = json_object_get(log, "date");
    }

    ngx_http_reductrai_cli_times_add(v, 0, t);
}


/*
 * A record against a window: OUTSIDE when even its newest timestamp is
 * older than now - window (the intake keeps nothing of it), PARTLY when
 * only its oldest is (it keeps the rest), else INSIDE.
 */

ngx_http_reductrai_cli_verdict_e
ngx_http_reductrai_cli_window_judge(int64_t window, int64_t now_ms,
    int64_t oldest, int64_t newest)
{
    if (window < 0) {
        return NGX_HTTP_REDUCTRAI_WINDOW_INSIDE;
    }

    if (newest < now_ms - window) {
        return NGX_HTTP_REDUCTRAI_WINDOW_OUTSIDE;
    }

    if (oldest < now_ms - window) {
        return NGX_HTTP_REDUCTRAI_WINDOW_PARTLY;
    }

    return NGX_HTTP_REDUCTRAI_WINDOW_INSIDE;
}
