
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Unit tests of the reductrai tool's own code: time arguments, list
 * prefixes (pruning), record filters, pruning by trailer, checkpoint
 * ranges.
 */


#include "unit.h"

#include "ngx_http_reductrai_cli.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>


/* 2025-11-25T10:30:00Z */
#define T0  1764066600000LL
#define NOW 1764070000000LL


static int64_t
t(const char *s, int end)
{
    int64_t  ms;

    return ngx_http_reductrai_cli_parse_time(s, NOW, end, &ms) == 0 ? ms : -1;
}


static void
test_time(void)
{
    is_int(t("2025-11-25T10:30:00Z", 0), T0, "RFC 3339 with Z");
    is_int(t("2025-11-25T10:30:00.250Z", 0), T0 + 250, "milliseconds");
    is_int(t("2025-11-25T10:30:00.25", 0), T0 + 250, "two fraction digits");
    is_int(t("2025-11-25T10:30:00.123456Z", 0), T0 + 123,
           "microseconds are cut to ms");
    is_int(t("2025-11-25 10:30", 0), T0, "space and minutes");
    is_int(t("2025-11-25T10", 0), T0 - 30 * 60000, "an hour");
    is_int(t("2025-11-25", 0), T0 - 10 * 3600000LL - 30 * 60000,
           "a day");
    is_int(t("2025-11-25T12:30:00+02:00", 0), T0, "offset +02:00");
    is_int(t("2025-11-25T08:00:00-0230", 0), T0, "offset -0230");
    is_int(t("@1764066600", 0), T0, "@unix seconds");
    is_int(t("@1764066600.5", 0), T0 + 500, "@unix seconds with fraction");
    is_int(t("now", 0), NOW, "now");
    is_int(t("-1h", 0), NOW - 3600000, "-1h");
    is_int(t("-1h30m", 0), NOW - 5400000, "-1h30m");
    is_int(t("-2d", 0), NOW - 2 * 86400000LL, "-2d");
    is_int(t("-90s", 0), NOW - 90000, "-90s");
    is_int(t("-500ms", 0), NOW - 500, "-500ms");

    /* --to: the exclusive end of the precision given */
    is_int(t("2025-11-25", 1), T0 - 10 * 3600000LL - 30 * 60000
                               + 86400000LL, "--to a day: its end");
    is_int(t("2025-11-25T10", 1), T0 + 30 * 60000, "--to an hour");
    is_int(t("2025-11-25T10:30", 1), T0 + 60000, "--to a minute");
    is_int(t("2025-11-25T10:30:00", 1), T0 + 1000, "--to a second");
    is_int(t("2025-11-25T10:30:00.250Z", 1), T0 + 251, "--to a ms");
    is_int(t("2025-11-25T10:30:00.2Z", 1), T0 + 300, "--to a tenth");
    is_int(t("-1h", 1), NOW - 3600000, "--to -1h is an instant");

    is_int(t("2025-02-30", 0), -1, "February 30 refused");
    is_int(t("2025-13-01", 0), -1, "month 13 refused");
    is_int(t("2025-11-25T24:00", 0), -1, "hour 24 refused");
    is_int(t("2025-11-25T10:30:00.Z", 0), -1, "empty fraction refused");
    is_int(t("2025-11-25X", 0), -1, "junk refused");
    is_int(t("yesterday", 0), -1, "words refused");
    is_int(t("-1y", 0), -1, "unknown unit refused");
    is_int(t("-", 0), -1, "bare minus refused");
    is_int(t("@abc", 0), -1, "bad @ refused");
    is_int(t("", 0), -1, "empty refused");
}


static ngx_http_reductrai_cli_t *
cli_new(const char *uri)
{
    char                       err[256];
    ngx_http_reductrai_cli_t  *cli;

    cli = calloc(1, sizeof(ngx_http_reductrai_cli_t));
    cli->command = "test";
    cli->from = NGX_HTTP_REDUCTRAI_CLI_TIME_MIN;
    cli->to = NGX_HTTP_REDUCTRAI_CLI_TIME_MAX;
    cli->st = ngx_http_reductrai_storage_create(uri, 0, NULL, "/", err,
                                                sizeof(err));
    if (cli->st == NULL) {
        printf("# %s\n", err);
    }

    return cli;
}


static void
cli_free(ngx_http_reductrai_cli_t *cli)
{
    ngx_http_reductrai_storage_destroy(cli->st);
    free(cli);
}


static void
prefixes(ngx_http_reductrai_cli_t *cli, char *out, size_t size)
{
    int     i, n;
    char  **p;
    size_t  len;

    out[0] = '\0';

    if (ngx_http_reductrai_cli_list_prefixes(cli, &p, &n) != 0) {
        snprintf(out, size, "ERROR");
        return;
    }

    for (i = 0, len = 0; i < n; i++) {
        len += (size_t) snprintf(out + len, size - len, "%s[%s]",
                                 i ? " " : "", p[i]);
        free(p[i]);
    }

    free(p);
}


static void
test_prefixes(void)
{
    char                       out[4096];
    ngx_http_reductrai_cli_t  *cli;

    cli = cli_new("file:///tmp/archive");
    ok(cli->st != NULL, "file storage");

    prefixes(cli, out, sizeof(out));
    is_str(out, "[]", "no stream: the whole archive");

    cli->streams[cli->nstreams++] = "metrics";
    prefixes(cli, out, sizeof(out));
    is_str(out, "[stream=metrics/]", "a stream");

    cli->from = T0;
    cli->to = T0 + 60000;
    prefixes(cli, out, sizeof(out));
    is_str(out, "[stream=metrics/dt=2025-11-25/hour=10/]",
           "a range inside one hour: that hour");

    cli->to = T0 + 3600000;
    prefixes(cli, out, sizeof(out));
    is_str(out, "[stream=metrics/dt=2025-11-25/]",
           "a range inside one day: that day");

    cli->from = T0;
    cli->to = T0 + 2 * 86400000LL;
    cli->streams[cli->nstreams++] = "logs";
    prefixes(cli, out, sizeof(out));
    is_str(out, "[stream=metrics/dt=2025-11-25/] "
                "[stream=metrics/dt=2025-11-26/] "
                "[stream=metrics/dt=2025-11-27/] "
                "[stream=logs/dt=2025-11-25/] [stream=logs/dt=2025-11-26/] "
                "[stream=logs/dt=2025-11-27/]",
           "three days, two streams: one prefix per day and stream");

    cli->from = T0 - 86400000LL;
    cli->to = T0;
    cli->nstreams = 1;
    prefixes(cli, out, sizeof(out));
    is_str(out, "[stream=metrics/dt=2025-11-24/] "
                "[stream=metrics/dt=2025-11-25/]",
           "--to at 10:30 on the 25th reaches into it");

    cli->to = T0 - 10 * 3600000LL - 30 * 60000;
    prefixes(cli, out, sizeof(out));
    is_str(out, "[stream=metrics/dt=2025-11-24/]",
           "--to at midnight (exclusive) stays on the 24th");

    cli->from = T0 - 365 * 86400000LL;
    cli->to = T0;
    prefixes(cli, out, sizeof(out));
    is_str(out, "[stream=metrics/]", "a year: the stream, pruned by key");

    cli->from = NGX_HTTP_REDUCTRAI_CLI_TIME_MIN;
    prefixes(cli, out, sizeof(out));
    is_str(out, "[stream=metrics/]", "only --to: the stream");

    ok(ngx_http_reductrai_cli_overlaps(cli, T0 - 1, T0 - 1),
       "a record just before --to is in");
    ok(!ngx_http_reductrai_cli_overlaps(cli, T0, T0 + 5),
       "a record at --to is out");

    cli->from = T0 - 30 * 60000;
    cli->to = T0 + 30 * 60000;
    ok(ngx_http_reductrai_cli_hour_inside(cli, T0 / 3600000),
       "an hour inside the range");
    ok(!ngx_http_reductrai_cli_hour_inside(cli, T0 / 3600000 + 1),
       "the next hour is not");

    cli_free(cli);
}


static int
match(ngx_http_reductrai_cli_t *cli, const char *line)
{
    int                                rc;
    ngx_http_reductrai_buf_t           scratch;
    ngx_http_reductrai_record_view_t   v;

    memset(&scratch, 0, sizeof(scratch));

    rc = ngx_http_reductrai_cli_match(cli, (u_char *) line, strlen(line), &v,
                                      &scratch);
    ngx_http_reductrai_buf_free(&scratch);

    return rc;
}


static void
test_match(void)
{
    ngx_http_reductrai_cli_t  *cli;

    static const char  rec[] =
        "{\"id\":\"w-1-2-3\",\"ts\":\"2025-11-25T10:30:00.000Z\","
        "\"uri\":\"/api/v2/series?x=\\u00e9&q=a%20b\","
        "\"api_key_fp\":\"ba7816bf\",\"size\":2,\"body\":{}}";

    cli = cli_new("file:///tmp/archive");

    is_int(match(cli, rec), 1, "no filter: taken");
    is_int(match(cli, "{\"id\":"), -1, "not a record");

    cli->grep = "series?x";
    is_int(match(cli, rec), 1, "--grep hit");
    cli->grep = "nope";
    is_int(match(cli, rec), 0, "--grep miss");
    cli->grep = NULL;

    cli->uri_match = "/api/v2/";
    is_int(match(cli, rec), 1, "--uri prefix hit");
    cli->uri_match = "/api/v1/";
    is_int(match(cli, rec), 0, "--uri prefix miss");
    cli->uri_match = "/api/*/series*";
    cli->uri_glob = 1;
    is_int(match(cli, rec), 1, "--uri glob hit");
    cli->uri_match = "*x=\xe9*";
    is_int(match(cli, rec), 1, "--uri glob on the unescaped uri");
    cli->uri_match = "/api/v2/logs*";
    is_int(match(cli, rec), 0, "--uri glob miss");
    cli->uri_match = NULL;
    cli->uri_glob = 0;

    cli->api_key_fp = "ba7816bf";
    is_int(match(cli, rec), 1, "--api-key-fp hit");
    cli->api_key_fp = "00000000";
    is_int(match(cli, rec), 0, "--api-key-fp miss");
    cli->api_key_fp = NULL;

    cli->time_limited = 1;
    cli->from = T0;
    cli->to = T0 + 1;
    is_int(match(cli, rec), 1, "ts inside [from, to)");
    cli->from = T0 + 1;
    cli->to = T0 + 1000;
    is_int(match(cli, rec), 0, "ts before --from");
    cli->from = T0 - 1000;
    cli->to = T0;
    is_int(match(cli, rec), 0, "ts at --to (exclusive)");

    cli_free(cli);
}


/*
 * Pruning by trailer (cat, replay): an object of an hour that the range
 * cuts is skipped when its trailer puts every record outside the range; an
 * object of an hour inside the range is read without asking.  The object
 * here is its trailer alone, which is all a ranged GET of the tail sees.
 */

static void
test_excluded(void)
{
    int                               fd;
    char                              dir[64], uri[96], path[256], *p;
    u_char                            frame[NGX_HTTP_REDUCTRAI_TRAILER_MAX];
    size_t                            len;
    ngx_http_reductrai_cli_t         *cli;
    ngx_http_reductrai_trailer_t      tr;
    ngx_http_reductrai_cli_object_t   o;

    static const char  key[] = "stream=metrics/dt=2025-11-25/hour=10/"
                               "web-1-42-1000-00000001.ndjson.zst";

    /* records from 10:30:00 to 10:40:00 */
    memset(&tr, 0, sizeof(tr));
    tr.count = 2;
    tr.raw_bytes = 100;
    tr.first_ms = T0;
    tr.last_ms = T0 + 600000;
    len = ngx_http_reductrai_trailer_build(frame, sizeof(frame), &tr);

    snprintf(dir, sizeof(dir), "/tmp/rdx-unit-excl-%d", (int) getpid());
    snprintf(uri, sizeof(uri), "file://%s", dir);
    snprintf(path, sizeof(path), "%s/%s", dir, key);

    for (p = strchr(path + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
        *p = '\0';
        (void) mkdir(path, 0755);
        *p = '/';
    }

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ok(len > 0 && fd != -1
       && ngx_http_reductrai_fd_write(fd, frame, len) == 0,
       "an object holding a trailer");
    (void) close(fd);

    cli = cli_new(uri);
    memset(&o, 0, sizeof(o));
    o.key = (char *) key;
    ok(ngx_http_reductrai_object_key_parse(key, strlen(key), &o.id) == 0,
       "the key parses");

    ok(!ngx_http_reductrai_cli_excluded(cli, &o), "no range: read");
    is_int(cli->trailer_gets, 0, "no range: no trailer GET");

    cli->time_limited = 1;
    cli->from = T0 - 30 * 60000;
    cli->to = T0 + 30 * 60000;
    ok(!ngx_http_reductrai_cli_excluded(cli, &o), "the whole hour: read");
    is_int(cli->trailer_gets, 0, "the whole hour: no trailer GET");

    cli->from = T0 + 600001;
    ok(ngx_http_reductrai_cli_excluded(cli, &o),
       "--from after the last record: skipped");
    is_int(cli->trailer_gets, 1, "decided by one trailer GET");

    cli->from = T0 + 600000;
    ok(!ngx_http_reductrai_cli_excluded(cli, &o),
       "--from at the last record: read");

    cli->from = T0 - 60000;
    cli->to = T0;
    ok(ngx_http_reductrai_cli_excluded(cli, &o),
       "--to at the first record (exclusive): skipped");

    o.key = "stream=metrics/dt=2025-11-25/hour=10/"
            "web-1-42-1000-00000002.ndjson.zst";
    ok(!ngx_http_reductrai_cli_excluded(cli, &o),
       "no such object: left for the read to report");

    cli_free(cli);

    (void) unlink(path);

    while ((p = strrchr(path, '/')) != NULL && p >= path + strlen(dir)) {
        *p = '\0';
        (void) rmdir(path);
    }
}


static void
test_checkpoint(void)
{
    FILE                           *f;
    char                            path[64], err[256], text[4096];
    size_t                          n;
    ngx_http_reductrai_cli_ckpt_t  *ck;

#define id(s)  (u_char *) s, strlen(s)

    snprintf(path, sizeof(path), "/tmp/rdx-unit-ckpt-%d", (int) getpid());
    (void) unlink(path);

    ck = ngx_http_reductrai_cli_ckpt_open(path, err, sizeof(err));
    ok(ck != NULL, "a new checkpoint");
    is_int(ngx_http_reductrai_cli_ckpt_count(ck), 0, "empty");
    ok(!ngx_http_reductrai_cli_ckpt_done(ck, id("web-1-42-1000-5")),
       "nothing done");

    ok(ngx_http_reductrai_cli_ckpt_mark(ck, id("web-1-42-1000-5")) == 0,
       "mark 5");
    ngx_http_reductrai_cli_ckpt_mark(ck, id("web-1-42-1000-3"));
    ngx_http_reductrai_cli_ckpt_mark(ck, id("web-1-42-1000-4"));
    ngx_http_reductrai_cli_ckpt_mark(ck, id("web-1-42-1000-9"));
    ngx_http_reductrai_cli_ckpt_mark(ck, id("web-1-42-1000-7"));
    ngx_http_reductrai_cli_ckpt_mark(ck, id("web-1-42-1000-8"));
    ngx_http_reductrai_cli_ckpt_mark(ck, id("web-1-42-1000-4"));
    ngx_http_reductrai_cli_ckpt_mark(ck, id("other-7-1-1"));
    is_int(ngx_http_reductrai_cli_ckpt_count(ck), 7, "7 distinct ids");

    ok(ngx_http_reductrai_cli_ckpt_done(ck, id("web-1-42-1000-3")), "3 done");
    ok(ngx_http_reductrai_cli_ckpt_done(ck, id("web-1-42-1000-5")), "5 done");
    ok(!ngx_http_reductrai_cli_ckpt_done(ck, id("web-1-42-1000-6")),
       "6 not done");
    ok(ngx_http_reductrai_cli_ckpt_done(ck, id("web-1-42-1000-8")), "8 done");
    ok(!ngx_http_reductrai_cli_ckpt_done(ck, id("web-1-42-1000-10")),
       "10 not done");
    ok(!ngx_http_reductrai_cli_ckpt_done(ck, id("web-1-42-1001-5")),
       "another worker's 5 not done");
    ok(ngx_http_reductrai_cli_ckpt_done(ck, id("other-7-1-1")),
       "another worker's 1 done");
    ok(ngx_http_reductrai_cli_ckpt_mark(ck, id("no-number-")) != 0,
       "an id without a number cannot be marked");

    /* appended lines survive without a save (a kill -9) */
    f = fopen(path, "r");
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    ok(strstr(text, "web-1-42-1000 5\nweb-1-42-1000 3\n") != NULL,
       "each delivery appended as a line");

    ngx_http_reductrai_cli_ckpt_mark(ck, id("web-1-42-1000-6"));
    ngx_http_reductrai_cli_ckpt_close(ck);

    /* a torn last line (killed mid-write) is not taken as done */
    f = fopen(path, "a");
    fputs("web-1-42-1000 1", f);
    fclose(f);

    ck = ngx_http_reductrai_cli_ckpt_open(path, err, sizeof(err));
    ok(ck != NULL, "reopened");
    is_int(ngx_http_reductrai_cli_ckpt_count(ck), 8, "8 ids read back");
    ok(!ngx_http_reductrai_cli_ckpt_done(ck, id("web-1-42-1000-1")),
       "the torn line is ignored");
    ok(ngx_http_reductrai_cli_ckpt_done(ck, id("web-1-42-1000-6")),
       "6 done after reopening");

    f = fopen(path, "r");
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    ok(strstr(text, "web-1-42-1000 3-9\n") != NULL,
       "compacted to a range");
    ok(strstr(text, "other-7-1 1\n") != NULL, "one line per worker");
    ok(strncmp(text, "# reductrai replay checkpoint v1\n", 33) == 0,
       "header line");

    ngx_http_reductrai_cli_ckpt_mark(ck, id("web-1-42-1000-1"));
    ngx_http_reductrai_cli_ckpt_save(ck);
    ngx_http_reductrai_cli_ckpt_close(ck);

    f = fopen(path, "r");
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    ok(strstr(text, "web-1-42-1000 1,3-9\n") != NULL, "ranges after a save");

    f = fopen(path, "w");
    fputs("web-1-42-1000 1-x\n", f);
    fclose(f);
    ck = ngx_http_reductrai_cli_ckpt_open(path, err, sizeof(err));
    ok(ck == NULL && strstr(err, "line 1") != NULL,
       "a damaged checkpoint is refused: %s", err);

    ck = ngx_http_reductrai_cli_ckpt_open("/nonexistent/dir/ckpt", err,
                                          sizeof(err));
    ok(ck == NULL, "an unwritable checkpoint is refused: %s", err);

    (void) unlink(path);

#undef id
}


static void
test_window(void)
{
    char                            buf[32], err[256];
    int64_t                         w[NGX_HTTP_REDUCTRAI_KIND_N];
    ngx_http_reductrai_cli_times_t  tm;

#define kind(s)  ngx_http_reductrai_cli_kind((u_char *) s, strlen(s))
#define H        3600000LL

    is_int(kind("/api/v1/series"), NGX_HTTP_REDUCTRAI_KIND_METRICS,
           "v1 series: metrics");
    is_int(kind("/api/v2/series?api_key=REDACTED"),
           NGX_HTTP_REDUCTRAI_KIND_METRICS, "v2 series with a query");
    is_int(kind("/api/beta/sketches"), NGX_HTTP_REDUCTRAI_KIND_METRICS,
           "sketches: metrics");
    is_int(kind("/api/v1/check_run"), NGX_HTTP_REDUCTRAI_KIND_METRICS,
           "check_run: metrics");
    is_int(kind("/api/v2/logs"), NGX_HTTP_REDUCTRAI_KIND_LOGS, "logs");
    is_int(kind("/v1/input/abc"), NGX_HTTP_REDUCTRAI_KIND_LOGS,
           "/v1/input/KEY: logs");
    is_int(kind("/api/v0.2/traces"), NGX_HTTP_REDUCTRAI_KIND_TRACES,
           "traces");
    is_int(kind("/api/v1/events"), NGX_HTTP_REDUCTRAI_KIND_EVENTS, "events");
    is_int(kind("/api/v1/seriesx"), NGX_HTTP_REDUCTRAI_KIND_OTHER,
           "a longer name is not the path");
    is_int(kind("/other"), NGX_HTTP_REDUCTRAI_KIND_OTHER, "other");

    ngx_http_reductrai_cli_window_defaults(w);
    is_int(w[NGX_HTTP_REDUCTRAI_KIND_METRICS], H, "metrics: 1h");
    is_int(w[NGX_HTTP_REDUCTRAI_KIND_LOGS], 18 * H, "logs: 18h");
    is_int(w[NGX_HTTP_REDUCTRAI_KIND_EVENTS], 18 * H, "events: 18h");
    is_int(w[NGX_HTTP_REDUCTRAI_KIND_TRACES], -1, "traces: none");

    is_int(ngx_http_reductrai_cli_window_parse(w, "metrics=90m,logs=none",
                                               err, sizeof(err)), 0,
           "metrics=90m,logs=none");
    is_int(w[NGX_HTTP_REDUCTRAI_KIND_METRICS], 90 * 60000LL, "90m");
    is_int(w[NGX_HTTP_REDUCTRAI_KIND_LOGS], -1, "logs=none");
    is_int(w[NGX_HTTP_REDUCTRAI_KIND_EVENTS], 18 * H, "events untouched");
    is_int(ngx_http_reductrai_cli_window_parse(w, "traces=1h30m", err,
                                               sizeof(err)), 0, "1h30m");
    is_int(w[NGX_HTTP_REDUCTRAI_KIND_TRACES], 90 * 60000LL, "1h30m in ms");
    is_int(ngx_http_reductrai_cli_window_parse(w, "none", err, sizeof(err)),
           0, "none");
    is_int(w[NGX_HTTP_REDUCTRAI_KIND_METRICS], -1, "none: metrics");
    is_int(w[NGX_HTTP_REDUCTRAI_KIND_EVENTS], -1, "none: events");
    ok(ngx_http_reductrai_cli_window_parse(w, "logs=-1h", err, sizeof(err))
       != 0, "a negative duration is refused");
    ok(ngx_http_reductrai_cli_window_parse(w, "logs=0s", err, sizeof(err))
       != 0, "a zero window is refused");
    ok(ngx_http_reductrai_cli_window_parse(w, "log=1h", err, sizeof(err))
       != 0, "an unknown kind is refused");
    ok(strstr(err, "unknown kind \"log\"") != NULL, "and named");

    is_str(ngx_http_reductrai_cli_window_format(buf, sizeof(buf), 18 * H),
           "18h", "format 18h");
    is_str(ngx_http_reductrai_cli_window_format(buf, sizeof(buf), 5400000),
           "90m", "format 90m");
    is_str(ngx_http_reductrai_cli_window_format(buf, sizeof(buf), -1),
           "none", "format none");

    /* the verdict: newest older than now - window is outside */
    is_int(ngx_http_reductrai_cli_window_judge(H, NOW, NOW - 2 * H,
                                               NOW - 2 * H),
           NGX_HTTP_REDUCTRAI_WINDOW_OUTSIDE, "2h old, 1h window: outside");
    is_int(ngx_http_reductrai_cli_window_judge(H, NOW, NOW - 2 * H,
                                               NOW - 10 * 60000),
           NGX_HTTP_REDUCTRAI_WINDOW_PARTLY, "2h to 10m old: partly");
    is_int(ngx_http_reductrai_cli_window_judge(H, NOW, NOW - H, NOW - H),
           NGX_HTTP_REDUCTRAI_WINDOW_INSIDE, "exactly 1h old: inside");
    is_int(ngx_http_reductrai_cli_window_judge(H, NOW, NOW - H - 1,
                                               NOW - H - 1),
           NGX_HTTP_REDUCTRAI_WINDOW_OUTSIDE, "1h and 1 ms: outside");
    is_int(ngx_http_reductrai_cli_window_judge(-1, NOW, 0, 0),
           NGX_HTTP_REDUCTRAI_WINDOW_INSIDE, "no window: inside");

    /* timestamps of bodies */

#define times(k, s)                                                          \
    ngx_http_reductrai_cli_body_times(k, (u_char *) s, strlen(s), &tm)

    times(NGX_HTTP_REDUCTRAI_KIND_METRICS,
          "{\"series\":[{\"points\":[[1764066600,1],[1764066000,2]]},"
          "{\"points\":[[\"1764067000\",1]]}]}");
    is_int(tm.count, 3, "v1 points: 3");
    is_int(tm.oldest, 1764066000000LL, "v1: oldest");
    is_int(tm.newest, 1764067000000LL, "v1: newest (a string, as protobuf's "
           "JSON writes int64)");

    times(NGX_HTTP_REDUCTRAI_KIND_METRICS,
          "{\"series\":[{\"points\":[{\"timestamp\":1764066600,"
          "\"value\":1}]}]}");
    is_int(tm.count, 1, "v2 points");
    is_int(tm.oldest, T0, "v2: seconds");

    times(NGX_HTTP_REDUCTRAI_KIND_METRICS,
          "{\"sketches\":[{\"dogsketches\":[{\"ts\":1764066600}]}]}");
    is_int(tm.count, 1, "sketches");

    times(NGX_HTTP_REDUCTRAI_KIND_METRICS,
          "[{\"check\":\"x\",\"timestamp\":1764066600}]");
    is_int(tm.count, 1, "check_run");

    times(NGX_HTTP_REDUCTRAI_KIND_LOGS,
          "[{\"timestamp\":1764066600000},{\"date\":1764066000},"
          "{\"timestamp\":\"2025-11-25T10:40:00Z\"},{\"message\":1}]");
    is_int(tm.count, 3, "logs: ms, seconds, RFC 3339; one without");
    is_int(tm.oldest, 1764066000000LL, "logs: seconds");
    is_int(tm.newest, T0 + 600000, "logs: RFC 3339");

    times(NGX_HTTP_REDUCTRAI_KIND_EVENTS, "{\"date_happened\":1764066600}");
    is_int(tm.oldest, T0, "events: date_happened");

    times(NGX_HTTP_REDUCTRAI_KIND_METRICS, "{\"series\":[]}");
    is_int(tm.count, 0, "no points: none");
    times(NGX_HTTP_REDUCTRAI_KIND_LOGS, "not json");
    is_int(tm.count, 0, "not JSON: none");
    times(NGX_HTTP_REDUCTRAI_KIND_TRACES, "{\"timestamp\":1}");
    is_int(tm.count, 0, "traces: not read");

#undef times
#undef kind
#undef H
}


int
main(void)
{
    test_time();
    test_prefixes();
    test_match();
    test_excluded();
    test_checkpoint();
    test_window();

    return done_testing();
}
