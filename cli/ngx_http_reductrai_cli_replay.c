
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * reductrai replay: re-sends archived records over HTTP.  One thread runs a
 * curl multi handle with --concurrency slots; the record reader's line
 * callback fills a slot and, when none is free, drives the transfers until
 * one is.  A token bucket spaces the starts (--rate), failed attempts wait
 * in their slot for a capped exponential backoff (or Retry-After), and each
 * record delivered is appended to the checkpoint.
 *
 * An object is copied and checked (zstd checksum, trailer count and
 * SHA-256) before any of its records is sent: a damaged object is never
 * half replayed with garbage in it.
 */


#include "ngx_http_reductrai_cli.h"
#include "ngx_http_reductrai_decode.h"
#include "ngx_http_reductrai_body_format.h"
#include "ngx_http_reductrai_protobuf_encode.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>


#define NGX_HTTP_REDUCTRAI_REPLAY_FREE     0
#define NGX_HTTP_REDUCTRAI_REPLAY_WAITING  1
#define NGX_HTTP_REDUCTRAI_REPLAY_RUNNING  2

#define NGX_HTTP_REDUCTRAI_REPLAY_BACKOFF  0.5     /* first retry, seconds */
#define NGX_HTTP_REDUCTRAI_REPLAY_SAVE     5.0     /* compaction period */
#define NGX_HTTP_REDUCTRAI_REPLAY_TICK     0.25    /* progress period */
#define NGX_HTTP_REDUCTRAI_REPLAY_FAILURES 20      /* shown one by one */
#define NGX_HTTP_REDUCTRAI_REPLAY_STATUSES 32      /* distinct, counted */


/* what became of an object */
typedef enum {
    NGX_HTTP_REDUCTRAI_REPLAY_NEXT = 0,     /* replayed, skipped or gone */
    NGX_HTTP_REDUCTRAI_REPLAY_READ,         /* read: go on with it */
    NGX_HTTP_REDUCTRAI_REPLAY_CORRUPT,
    NGX_HTTP_REDUCTRAI_REPLAY_STOP,         /* --limit, or a signal */
    NGX_HTTP_REDUCTRAI_REPLAY_STORAGE       /* said why */
} ngx_http_reductrai_replay_rc_e;


typedef struct {
    int                                state;
    CURL                              *easy;
    struct curl_slist                 *headers;
    ngx_http_reductrai_buf_t           body;
    ngx_http_reductrai_buf_t           url;
    char                              *id;
    char                               method[32];
    int                                attempts;
    double                             not_before;
    double                             started;
    double                             retry_after;     /* -1: none */
    char                               reply[160];      /* response start */
    size_t                             reply_len;
    char                               error[CURL_ERROR_SIZE];
} ngx_http_reductrai_replay_slot_t;


/* records of one kind against its window */
typedef struct {
    uint64_t                           records;
    uint64_t                           inside;
    uint64_t                           partly;
    uint64_t                           outside;
    uint64_t                           by_body;     /* judged by payload */
    uint64_t                           by_ts;       /* by arrival time */
} ngx_http_reductrai_replay_window_t;


typedef struct {
    long                               status;      /* 0: no answer */
    uint64_t                           n;
} ngx_http_reductrai_replay_status_t;


typedef struct {
    ngx_http_reductrai_cli_t          *cli;
    CURLM                             *multi;
    ngx_http_reductrai_replay_slot_t  *slots;
    int                                nslots;
    ngx_http_reductrai_cli_ckpt_t     *ckpt;

    /* the target: "scheme://authority" and a path without trailing '/' */
    char                              *base;

    /* headers of every request, and which the user chose */
    struct curl_slist                 *extra;
    unsigned                           user_agent:1;

    double                             tokens;
    double                             burst;
    double                             refilled;
    double                             start;
    double                             last_tick;
    double                             last_save;
    int                                progress;
    unsigned                           progress_shown:1;

    uint64_t                           sent;
    uint64_t                           ok;
    uint64_t                           failed;
    uint64_t                           skipped;
    uint64_t                           retries;
    uint64_t                           dropped;     /* interrupted */
    uint64_t                           not_records;
    uint64_t                           unsendable;  /* said why, one each */
    uint64_t                           ckpt_errors;

    /* the vendor's clock: one "now" for the count and the sending */
    int64_t                            now_ms;
    unsigned                           windowed:1;
    ngx_http_reductrai_replay_window_t survey[NGX_HTTP_REDUCTRAI_KIND_N];
    ngx_http_reductrai_replay_window_t object[NGX_HTTP_REDUCTRAI_KIND_N];
    uint64_t                  expired[NGX_HTTP_REDUCTRAI_KIND_N];

    /* what the target answered, per status of each record's last try */
    ngx_http_reductrai_replay_status_t
                           statuses[NGX_HTTP_REDUCTRAI_REPLAY_STATUSES];
    int                                nstatuses;

    /* per-record scratch */
    ngx_http_reductrai_buf_t           raw;
    ngx_http_reductrai_buf_t           proto;      /* re-encoded protobuf */
    char                               why[160];
    ngx_http_reductrai_buf_t           text;
    ngx_http_reductrai_buf_t           scratch;
} ngx_http_reductrai_replay_t;


static volatile sig_atomic_t  ngx_http_reductrai_replay_signal;


static void ngx_http_reductrai_replay_on_signal(int signo);
static int ngx_http_reductrai_replay_survey(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_cli_object_t *objects, size_t n,
    ngx_http_reductrai_reader_t *r);
static int ngx_http_reductrai_replay_count(void *data, const u_char *line,
    size_t len);
static ngx_http_reductrai_cli_verdict_e ngx_http_reductrai_replay_judge(
    ngx_http_reductrai_replay_t *rp, ngx_http_reductrai_record_view_t *v,
    ngx_http_reductrai_cli_kind_e *kind, int *by_body);
static void ngx_http_reductrai_replay_status(ngx_http_reductrai_replay_t *rp,
    long status);
static void ngx_http_reductrai_replay_report_windows(
    ngx_http_reductrai_replay_t *rp);
static ngx_http_reductrai_replay_rc_e ngx_http_reductrai_replay_object(
    ngx_http_reductrai_replay_t *rp, ngx_http_reductrai_cli_object_t *o,
    ngx_http_reductrai_reader_t *check, ngx_http_reductrai_reader_t *r);
static ngx_http_reductrai_replay_rc_e ngx_http_reductrai_replay_read(
    ngx_http_reductrai_replay_t *rp, ngx_http_reductrai_reader_t *r,
    ngx_http_reductrai_cli_object_t *o, int fd,
    ngx_http_reductrai_cli_read_t *rd);
static ngx_http_reductrai_replay_rc_e ngx_http_reductrai_replay_unread(
    ngx_http_reductrai_replay_t *rp, ngx_http_reductrai_cli_object_t *o,
    ngx_http_reductrai_cli_read_t *rd);
static const char *ngx_http_reductrai_replay_unsound(
    ngx_http_reductrai_read_result_t *res);
static void ngx_http_reductrai_replay_report(ngx_http_reductrai_replay_t *rp,
    double elapsed);
static void ngx_http_reductrai_replay_free(ngx_http_reductrai_replay_t *rp);
static int ngx_http_reductrai_replay_setup(ngx_http_reductrai_replay_t *rp);
static int ngx_http_reductrai_replay_add_header(
    ngx_http_reductrai_replay_t *rp, const char *h);
static int ngx_http_reductrai_replay_has_header(
    ngx_http_reductrai_replay_t *rp, const char *name);
static int ngx_http_reductrai_replay_ignore(void *data, const u_char *line,
    size_t len);
static int ngx_http_reductrai_replay_line(void *data, const u_char *line,
    size_t len);
static int ngx_http_reductrai_replay_prepare(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_replay_slot_t *s, ngx_http_reductrai_record_view_t *v,
    const char **why);
static int ngx_http_reductrai_replay_protobuf(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_record_view_t *v, const char **why);
static int ngx_http_reductrai_replay_decoded(
    ngx_http_reductrai_record_view_t *v);
static int ngx_http_reductrai_replay_string(ngx_http_reductrai_buf_t *b,
    ngx_http_reductrai_str_t *s, int header);
static int ngx_http_reductrai_replay_encode(ngx_http_reductrai_buf_t *out,
    ngx_http_reductrai_encoding_e enc, const u_char *p, size_t len);
static ngx_http_reductrai_replay_slot_t *ngx_http_reductrai_replay_slot(
    ngx_http_reductrai_replay_t *rp);
static void ngx_http_reductrai_replay_pump(ngx_http_reductrai_replay_t *rp,
    int wait);
static void ngx_http_reductrai_replay_done(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_replay_slot_t *s, CURLcode res);
static int ngx_http_reductrai_replay_retryable(CURLcode res, long status);
static int ngx_http_reductrai_replay_busy(ngx_http_reductrai_replay_t *rp);
static void ngx_http_reductrai_replay_drain(ngx_http_reductrai_replay_t *rp);
static void ngx_http_reductrai_replay_free_slot(
    ngx_http_reductrai_replay_slot_t *s);
static void ngx_http_reductrai_replay_tick(ngx_http_reductrai_replay_t *rp,
    int force);
static void ngx_http_reductrai_replay_say(ngx_http_reductrai_replay_t *rp,
    const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t ngx_http_reductrai_replay_header_cb(char *p, size_t size,
    size_t n, void *data);
static size_t ngx_http_reductrai_replay_write_cb(char *p, size_t size,
    size_t n, void *data);


int
ngx_http_reductrai_cli_replay(ngx_http_reductrai_cli_t *cli)
{
    int                                rc, corrupt, storage;
    char                               err[512];
    size_t                             i, n, nobjects;
    double                             elapsed;
    struct sigaction                   sa;
    ngx_http_reductrai_reader_t        check, r, count;
    ngx_http_reductrai_replay_t        rp;
    ngx_http_reductrai_replay_rc_e     result;
    ngx_http_reductrai_cli_object_t   *objects;

    memset(&rp, 0, sizeof(ngx_http_reductrai_replay_t));
    rp.cli = cli;

    rc = ngx_http_reductrai_replay_setup(&rp);
    if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
        return rc;
    }

    if (cli->checkpoint != NULL) {
        rp.ckpt = ngx_http_reductrai_cli_ckpt_open(cli->checkpoint, err,
                                                   sizeof(err));
        if (rp.ckpt == NULL) {
            ngx_http_reductrai_cli_error(cli, "%s", err);
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        if (cli->verbose) {
            fprintf(stderr, "reductrai: replay: checkpoint \"%s\" holds %llu "
                    "delivered record(s)\n", cli->checkpoint,
                    (unsigned long long)
                        ngx_http_reductrai_cli_ckpt_count(rp.ckpt));
        }
    }

    rc = ngx_http_reductrai_cli_select(cli, &objects, &n);
    if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
        ngx_http_reductrai_cli_ckpt_close(rp.ckpt);
        return rc;
    }

    nobjects = n;

    if (ngx_http_reductrai_reader_init(&check, NGX_HTTP_REDUCTRAI_READ_SHA256,
                                       ngx_http_reductrai_replay_ignore, NULL)
        != 0
        || ngx_http_reductrai_reader_init(&r, 0,
                                          ngx_http_reductrai_replay_line, &rp)
           != 0
        || ngx_http_reductrai_reader_init(&count,
                                          NGX_HTTP_REDUCTRAI_READ_SHA256,
                                          ngx_http_reductrai_replay_count,
                                          &rp)
           != 0)
    {
        ngx_http_reductrai_cli_error(cli, "out of memory");
        ngx_http_reductrai_cli_objects_free(objects, n);
        ngx_http_reductrai_cli_ckpt_close(rp.ckpt);
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    memset(&sa, 0, sizeof(struct sigaction));
    sa.sa_handler = ngx_http_reductrai_replay_on_signal;
    sigemptyset(&sa.sa_mask);
    (void) sigaction(SIGINT, &sa, NULL);
    (void) sigaction(SIGTERM, &sa, NULL);

    sa.sa_handler = SIG_IGN;
    (void) sigaction(SIGPIPE, &sa, NULL);

    srandom((unsigned) (getpid() ^ ngx_http_reductrai_cli_now_ms()));

    corrupt = 0;
    storage = 0;

    /* how many records the target's window would drop, before any is sent */

    rp.now_ms = ngx_http_reductrai_cli_now_ms();

    for (i = 0; i < NGX_HTTP_REDUCTRAI_KIND_N; i++) {
        rp.windowed |= cli->window[i] >= 0;
    }

    if (rp.windowed
        && ngx_http_reductrai_replay_survey(&rp, objects, n, &count) != 0)
    {
        storage = 1;
        n = 0;
    }

    rp.start = ngx_http_reductrai_cli_mono();
    rp.refilled = rp.start;
    rp.last_tick = rp.start;
    rp.last_save = rp.start;

    for (i = 0; i < n && !ngx_http_reductrai_replay_signal; i++) {
        result = ngx_http_reductrai_replay_object(&rp, &objects[i], &check,
                                                  &r);

        if (result == NGX_HTTP_REDUCTRAI_REPLAY_CORRUPT) {
            corrupt++;

        } else if (result == NGX_HTTP_REDUCTRAI_REPLAY_STORAGE) {
            storage = 1;
            break;

        } else if (result == NGX_HTTP_REDUCTRAI_REPLAY_STOP) {
            break;
        }
    }

    ngx_http_reductrai_replay_drain(&rp);

    if (rp.ckpt != NULL && ngx_http_reductrai_cli_ckpt_save(rp.ckpt) != 0) {
        ngx_http_reductrai_replay_say(&rp, "saving checkpoint \"%s\" failed: "
                                      "%s", cli->checkpoint,
                                      strerror(errno));
        rp.ckpt_errors++;
    }

    ngx_http_reductrai_replay_tick(&rp, 1);

    elapsed = ngx_http_reductrai_cli_mono() - rp.start;

    if (rp.not_records) {
        ngx_http_reductrai_replay_say(&rp, "%llu line(s) were not records "
                                      "and were not sent",
                                      (unsigned long long) rp.not_records);
        corrupt++;
    }

    if (rp.unsendable) {
        ngx_http_reductrai_replay_say(&rp, "%llu record(s) could not be "
                                      "sent as archived (see why above)",
                                      (unsigned long long) rp.unsendable);
        corrupt++;
    }

    ngx_http_reductrai_replay_report(&rp, elapsed);

    ngx_http_reductrai_reader_free(&check);
    ngx_http_reductrai_reader_free(&r);
    ngx_http_reductrai_reader_free(&count);
    ngx_http_reductrai_cli_objects_free(objects, nobjects);
    ngx_http_reductrai_replay_free(&rp);

    if (ngx_http_reductrai_replay_signal) {
        return NGX_HTTP_REDUCTRAI_CLI_INTERRUPTED;
    }

    if (storage) {
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    if (rp.failed || rp.ckpt_errors) {
        return NGX_HTTP_REDUCTRAI_CLI_UNDELIVERED;
    }

    return corrupt ? NGX_HTTP_REDUCTRAI_CLI_CORRUPT
                   : NGX_HTTP_REDUCTRAI_CLI_OK;
}


static void
ngx_http_reductrai_replay_on_signal(int signo)
{
    ngx_http_reductrai_replay_signal++;
}


/*
 * Counts, before anything is sent, the selected records each kind's window
 * would drop, and says so.  Each object is read once more for it (from
 * object storage: downloaded once more); an object that does not read
 * whole and match its trailer adds nothing, since it will not be sent.
 */

static int
ngx_http_reductrai_replay_survey(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_cli_object_t *objects, size_t n,
    ngx_http_reductrai_reader_t *r)
{
    int                                  k, fd, rc;
    char                                 w[32];
    size_t                               i;
    ngx_http_reductrai_cli_t            *cli;
    ngx_http_reductrai_cli_read_t        rd;
    ngx_http_reductrai_replay_window_t  *sv, *ob;

    cli = rp->cli;

    for (i = 0; i < n && !ngx_http_reductrai_replay_signal; i++) {
        if (ngx_http_reductrai_cli_excluded(cli, &objects[i])) {
            continue;
        }

        memset(rp->object, 0, sizeof(rp->object));
        fd = -1;

        if (strcmp(cli->st->backend->scheme, "file") != 0) {
            rc = ngx_http_reductrai_cli_fetch(cli, objects[i].key, &fd, &rd);

        } else {
            rc = NGX_HTTP_REDUCTRAI_CLI_OK;
        }

        if (rc == NGX_HTTP_REDUCTRAI_CLI_OK) {
            rc = ngx_http_reductrai_cli_read_object(cli, r, objects[i].key,
                                                    fd, &rd);
        }

        if (fd != -1) {
            (void) close(fd);
        }

        if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
            if (rd.storage_rc == NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND) {
                continue;
            }

            ngx_http_reductrai_replay_say(rp, "%s: reading failed: %s",
                                          objects[i].key, rd.storage_error);
            return -1;
        }

        if (ngx_http_reductrai_replay_unsound(&rd.res) != NULL) {
            continue;
        }

        for (k = 0; k < NGX_HTTP_REDUCTRAI_KIND_N; k++) {
            sv = &rp->survey[k];
            ob = &rp->object[k];

            sv->records += ob->records;
            sv->inside += ob->inside;
            sv->partly += ob->partly;
            sv->outside += ob->outside;
            sv->by_body += ob->by_body;
            sv->by_ts += ob->by_ts;
        }
    }

    for (k = 0; k < NGX_HTTP_REDUCTRAI_KIND_N; k++) {
        sv = &rp->survey[k];

        if (sv->records == 0) {
            continue;
        }

        if (cli->window[k] < 0) {
            fprintf(stderr, "replay: %s, no window: %llu record(s)\n",
                    ngx_http_reductrai_cli_kind_name(k),
                    (unsigned long long) sv->records);
            continue;
        }

        fprintf(stderr, "replay: %s, window %s: %llu record(s): %llu "
                "outside (%s), %llu partly outside (sent), %llu inside; "
                "judged by payload timestamps %llu, by arrival time %llu\n",
                ngx_http_reductrai_cli_kind_name(k),
                ngx_http_reductrai_cli_window_format(w, sizeof(w),
                                                     cli->window[k]),
                (unsigned long long) sv->records,
                (unsigned long long) sv->outside,
                cli->include_expired ? "sent: --include-expired"
                                     : "skipped",
                (unsigned long long) sv->partly,
                (unsigned long long) sv->inside,
                (unsigned long long) sv->by_body,
                (unsigned long long) sv->by_ts);
    }

    return 0;
}


/* the survey's line callback: the records replay_line() would consider */

static int
ngx_http_reductrai_replay_count(void *data, const u_char *line, size_t len)
{
    ngx_http_reductrai_replay_t *rp = data;

    int                                  m, by_body;
    ngx_http_reductrai_cli_kind_e        kind;
    ngx_http_reductrai_record_view_t     v;
    ngx_http_reductrai_cli_verdict_e     verdict;
    ngx_http_reductrai_replay_window_t  *ob;

    if (ngx_http_reductrai_replay_signal) {
        return 1;
    }

    m = ngx_http_reductrai_cli_match(rp->cli, line, len, &v, &rp->scratch);

    if (m <= 0 || v.id.data == NULL) {
        return 0;
    }

    if (rp->ckpt != NULL
        && ngx_http_reductrai_cli_ckpt_done(rp->ckpt, v.id.data, v.id.len))
    {
        return 0;
    }

    verdict = ngx_http_reductrai_replay_judge(rp, &v, &kind, &by_body);

    ob = &rp->object[kind];
    ob->records++;

    if (by_body) {
        ob->by_body++;

    } else {
        ob->by_ts++;
    }

    switch (verdict) {

    case NGX_HTTP_REDUCTRAI_WINDOW_OUTSIDE:
        ob->outside++;
        break;

    case NGX_HTTP_REDUCTRAI_WINDOW_PARTLY:
        ob->partly++;
        break;

    default:
        ob->inside++;
    }

    return 0;
}


/*
 * A record against its kind's window: by the timestamps in its JSON body
 * where the intake reads them, else by its arrival time (ts), which is
 * close to the points' own time for agents that flush every few seconds,
 * but not for data an agent buffered through an outage.
 */

static ngx_http_reductrai_cli_verdict_e
ngx_http_reductrai_replay_judge(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_record_view_t *v, ngx_http_reductrai_cli_kind_e *kind,
    int *by_body)
{
    int64_t                          window;
    ngx_http_reductrai_cli_times_t   t;

    *kind = ngx_http_reductrai_cli_kind(v->uri.data, v->uri.len);
    *by_body = 0;

    window = rp->cli->window[*kind];

    if (window < 0) {
        return NGX_HTTP_REDUCTRAI_WINDOW_INSIDE;
    }

    t.count = 0;

    if (v->body.data != NULL) {
        ngx_http_reductrai_cli_body_times(*kind, v->body.data, v->body.len,
                                          &t);
    }

    if (t.count > 0) {
        *by_body = 1;

    } else if (v->ts_ms >= 0) {
        t.oldest = v->ts_ms;
        t.newest = v->ts_ms;

    } else {
        /* no time at all: let the target judge */
        return NGX_HTTP_REDUCTRAI_WINDOW_INSIDE;
    }

    return ngx_http_reductrai_cli_window_judge(window, rp->now_ms, t.oldest,
                                               t.newest);
}


/*
 * An object is read twice: checked whole first, so that a damaged one is
 * never half replayed, then replayed.
 */

static ngx_http_reductrai_replay_rc_e
ngx_http_reductrai_replay_object(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_cli_object_t *o, ngx_http_reductrai_reader_t *check,
    ngx_http_reductrai_reader_t *r)
{
    int                             fd;
    const char                     *why;
    ngx_http_reductrai_cli_t       *cli;
    ngx_http_reductrai_cli_read_t   rd;
    ngx_http_reductrai_replay_rc_e  rc;

    cli = rp->cli;

    if (ngx_http_reductrai_cli_excluded(cli, o)) {
        return NGX_HTTP_REDUCTRAI_REPLAY_NEXT;
    }

    fd = -1;

    if (strcmp(cli->st->backend->scheme, "file") != 0
        && ngx_http_reductrai_cli_fetch(cli, o->key, &fd, &rd)
           != NGX_HTTP_REDUCTRAI_CLI_OK)
    {
        return ngx_http_reductrai_replay_unread(rp, o, &rd);
    }

    rc = ngx_http_reductrai_replay_read(rp, check, o, fd, &rd);

    if (rc == NGX_HTTP_REDUCTRAI_REPLAY_READ) {
        why = ngx_http_reductrai_replay_unsound(&rd.res);

        if (why != NULL) {
            ngx_http_reductrai_replay_say(rp, "%s: corrupt object not "
                                          "replayed: %s (reductrai verify "
                                          "tells more)", o->key, why);
            rc = NGX_HTTP_REDUCTRAI_REPLAY_CORRUPT;
        }
    }

    if (rc == NGX_HTTP_REDUCTRAI_REPLAY_READ) {
        rc = ngx_http_reductrai_replay_read(rp, r, o, fd, &rd);
    }

    if (fd != -1) {
        (void) close(fd);
    }

    if (rc != NGX_HTTP_REDUCTRAI_REPLAY_READ) {
        return rc;
    }

    if (rd.res.rc == NGX_HTTP_REDUCTRAI_READ_STOPPED) {
        /* --limit, or a signal */
        return NGX_HTTP_REDUCTRAI_REPLAY_STOP;
    }

    if (rd.res.rc != NGX_HTTP_REDUCTRAI_READ_OK) {
        ngx_http_reductrai_replay_say(rp, "%s: corrupt object: %s", o->key,
                                      rd.res.error);
        return NGX_HTTP_REDUCTRAI_REPLAY_CORRUPT;
    }

    return NGX_HTTP_REDUCTRAI_REPLAY_NEXT;
}


static ngx_http_reductrai_replay_rc_e
ngx_http_reductrai_replay_read(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_reader_t *r, ngx_http_reductrai_cli_object_t *o,
    int fd, ngx_http_reductrai_cli_read_t *rd)
{
    if (ngx_http_reductrai_cli_read_object(rp->cli, r, o->key, fd, rd)
        == NGX_HTTP_REDUCTRAI_CLI_OK)
    {
        return NGX_HTTP_REDUCTRAI_REPLAY_READ;
    }

    return ngx_http_reductrai_replay_unread(rp, o, rd);
}


/* gone since the listing, or unreadable */

static ngx_http_reductrai_replay_rc_e
ngx_http_reductrai_replay_unread(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_cli_object_t *o, ngx_http_reductrai_cli_read_t *rd)
{
    if (rd->storage_rc == NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND) {
        return NGX_HTTP_REDUCTRAI_REPLAY_NEXT;
    }

    ngx_http_reductrai_replay_say(rp, "%s: reading failed: %s", o->key,
                                  rd->storage_error);

    return NGX_HTTP_REDUCTRAI_REPLAY_STORAGE;
}


/* what is wrong with an object read whole, or NULL */

static const char *
ngx_http_reductrai_replay_unsound(ngx_http_reductrai_read_result_t *res)
{
    if (res->rc != NGX_HTTP_REDUCTRAI_READ_OK) {
        return res->error;
    }

    if (!res->has_trailer) {
        return "no trailer";
    }

    if (res->lines != res->trailer.count
        || res->raw_bytes != res->trailer.raw_bytes
        || (res->trailer.has_sha256
            && memcmp(res->sha256, res->trailer.sha256, 32) != 0))
    {
        return "it does not match its trailer";
    }

    return NULL;
}


static void
ngx_http_reductrai_replay_report(ngx_http_reductrai_replay_t *rp,
    double elapsed)
{
    int  i;

    ngx_http_reductrai_replay_report_windows(rp);

    if (rp->cli->dry_run) {
        fprintf(stderr, "replay (dry run): %llu would be sent, %llu "
                "skipped (checkpoint), %.2fs\n",
                (unsigned long long) rp->sent,
                (unsigned long long) rp->skipped, elapsed);
        return;
    }

    if (rp->nstatuses > 0) {
        fprintf(stderr, "replay: answers:");

        for (i = 0; i < rp->nstatuses; i++) {
            if (rp->statuses[i].status == 0) {
                fprintf(stderr, "%s no answer: %llu", i ? "," : "",
                        (unsigned long long) rp->statuses[i].n);

            } else {
                fprintf(stderr, "%s %ld: %llu", i ? "," : "",
                        rp->statuses[i].status,
                        (unsigned long long) rp->statuses[i].n);
            }
        }

        fprintf(stderr, "\n");
    }

    fprintf(stderr, "replay: %llu sent, %llu ok, %llu failed, %llu "
            "skipped, %llu retries, %.2fs (%.1f req/s)%s\n",
            (unsigned long long) rp->sent, (unsigned long long) rp->ok,
            (unsigned long long) rp->failed,
            (unsigned long long) rp->skipped,
            (unsigned long long) rp->retries, elapsed,
            elapsed > 0 ? (double) (rp->ok + rp->failed) / elapsed : 0.0,
            ngx_http_reductrai_replay_signal
            ? ", interrupted: rerun with the same --checkpoint to go on"
            : "");
}


/* "outside the window: 7 not sent (metrics 4, logs 3)" */

static void
ngx_http_reductrai_replay_report_windows(ngx_http_reductrai_replay_t *rp)
{
    int       k, first;
    uint64_t  total;

    total = 0;

    for (k = 0; k < NGX_HTTP_REDUCTRAI_KIND_N; k++) {
        total += rp->expired[k];
    }

    if (total == 0) {
        return;
    }

    fprintf(stderr, "replay: outside the window: %llu %s (",
            (unsigned long long) total,
            !rp->cli->include_expired ? "not sent"
            : rp->cli->dry_run ? "would be sent anyway" : "sent anyway");

    first = 1;

    for (k = 0; k < NGX_HTTP_REDUCTRAI_KIND_N; k++) {
        if (rp->expired[k]) {
            fprintf(stderr, "%s%s %llu", first ? "" : ", ",
                    ngx_http_reductrai_cli_kind_name(k),
                    (unsigned long long) rp->expired[k]);
            first = 0;
        }
    }

    fprintf(stderr, ")%s\n",
            rp->cli->include_expired
            ? ": a 2xx answer does not mean the intake kept them"
            : "; --include-expired sends them");
}


/* counts a record's final answer by status, in ascending order */

static void
ngx_http_reductrai_replay_status(ngx_http_reductrai_replay_t *rp,
    long status)
{
    int                                  i;
    ngx_http_reductrai_replay_status_t  *st;

    st = rp->statuses;

    for (i = 0; i < rp->nstatuses && st[i].status < status; i++) {
        /* void */
    }

    if (i < rp->nstatuses && st[i].status == status) {
        st[i].n++;
        return;
    }

    if (rp->nstatuses == NGX_HTTP_REDUCTRAI_REPLAY_STATUSES) {
        /* 32 distinct statuses: the rarest do not deserve a column */
        return;
    }

    memmove(&st[i + 1], &st[i],
            (rp->nstatuses - i) * sizeof(ngx_http_reductrai_replay_status_t));
    st[i].status = status;
    st[i].n = 1;
    rp->nstatuses++;
}


static void
ngx_http_reductrai_replay_free(ngx_http_reductrai_replay_t *rp)
{
    int  i;

    ngx_http_reductrai_cli_ckpt_close(rp->ckpt);

    for (i = 0; i < rp->nslots; i++) {
        ngx_http_reductrai_replay_free_slot(&rp->slots[i]);
        curl_easy_cleanup(rp->slots[i].easy);
        ngx_http_reductrai_buf_free(&rp->slots[i].body);
        ngx_http_reductrai_buf_free(&rp->slots[i].url);
    }

    free(rp->slots);
    curl_multi_cleanup(rp->multi);
    curl_slist_free_all(rp->extra);
    free(rp->base);
    ngx_http_reductrai_buf_free(&rp->raw);
    ngx_http_reductrai_buf_free(&rp->proto);
    ngx_http_reductrai_buf_free(&rp->text);
    ngx_http_reductrai_buf_free(&rp->scratch);
}


static int
ngx_http_reductrai_replay_setup(ngx_http_reductrai_replay_t *rp)
{
    int                        i;
    char                      *p, *q, *env, *copy, *save;
    size_t                     len;
    const char                *authority, *path;
    ngx_http_reductrai_cli_t  *cli;

    cli = rp->cli;

    /* scheme://authority[/path]: records append their own path and query */

    authority = strstr(cli->target, "://") + 3;
    path = authority + strcspn(authority, "/?#");

    if (path == authority || *path == '?' || *path == '#') {
        ngx_http_reductrai_cli_error(cli, "--to must be scheme://host[:port]"
                                     "[/path], without a query");
        return NGX_HTTP_REDUCTRAI_CLI_USAGE;
    }

    rp->base = strdup(cli->target);
    if (rp->base == NULL) {
        ngx_http_reductrai_cli_error(cli, "out of memory");
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    len = strlen(rp->base);

    while (len > 0 && rp->base[len - 1] == '/') {
        rp->base[--len] = '\0';
    }

    for (i = 0; i < cli->nheaders; i++) {
        if (ngx_http_reductrai_replay_add_header(rp, cli->headers[i])
            != 0)
        {
            return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
        }
    }

    /* REDUCTRAI_REPLAY_HEADER: "Name: value", one per line */

    env = getenv("REDUCTRAI_REPLAY_HEADER");

    if (env != NULL && env[0] != '\0') {
        copy = strdup(env);
        if (copy == NULL) {
            ngx_http_reductrai_cli_error(cli, "out of memory");
            return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
        }

        for (p = strtok_r(copy, "\r\n", &save); p != NULL;
             p = strtok_r(NULL, "\r\n", &save))
        {
            q = strchr(p, ':');

            if (q == NULL || q == p || strcspn(p, " \t") < (size_t) (q - p))
            {
                ngx_http_reductrai_cli_error(cli, "$REDUCTRAI_REPLAY_HEADER "
                                             "must hold \"Name: value\" "
                                             "lines");
                free(copy);
                return NGX_HTTP_REDUCTRAI_CLI_USAGE;
            }

            *q = '\0';

            if (!ngx_http_reductrai_replay_has_header(rp, p)) {
                *q = ':';

                if (ngx_http_reductrai_replay_add_header(rp, p) != 0) {
                    free(copy);
                    return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
                }

                if (cli->verbose) {
                    fprintf(stderr, "reductrai: replay: header %.*s from "
                            "$REDUCTRAI_REPLAY_HEADER\n", (int) (q - p), p);
                }
            }
        }

        free(copy);
    }

    env = getenv("DD_API_KEY");

    if (env != NULL && env[0] != '\0'
        && !ngx_http_reductrai_replay_has_header(rp, "DD-API-KEY"))
    {
        if (strpbrk(env, "\r\n") != NULL) {
            ngx_http_reductrai_cli_error(cli, "$DD_API_KEY holds a newline");
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        p = malloc(strlen(env) + sizeof("DD-API-KEY: "));
        if (p == NULL) {
            ngx_http_reductrai_cli_error(cli, "out of memory");
            return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
        }

        sprintf(p, "DD-API-KEY: %s", env);
        i = ngx_http_reductrai_replay_add_header(rp, p);

        /* the key leaves no copy behind */
        memset(p, 0, strlen(p));
        free(p);

        if (i != 0) {
            return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
        }

        if (cli->verbose) {
            fprintf(stderr, "reductrai: replay: header DD-API-KEY from "
                    "$DD_API_KEY\n");
        }
    }

    rp->user_agent = ngx_http_reductrai_replay_has_header(rp, "User-Agent");

    /* no "Expect: 100-continue" round trip before large bodies */
    if (ngx_http_reductrai_replay_add_header(rp, "Expect:") != 0) {
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    rp->progress = cli->progress >= 0 ? cli->progress : isatty(2);
    rp->nslots = cli->dry_run ? 0 : cli->concurrency;

    rp->burst = cli->rate / 20 > 1 ? cli->rate / 20 : 1;
    rp->tokens = 1;

    if (cli->dry_run) {
        return NGX_HTTP_REDUCTRAI_CLI_OK;
    }

    rp->multi = curl_multi_init();
    rp->slots = calloc((size_t) rp->nslots,
                       sizeof(ngx_http_reductrai_replay_slot_t));

    if (rp->multi == NULL || rp->slots == NULL) {
        ngx_http_reductrai_cli_error(cli, "out of memory");
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    (void) curl_multi_setopt(rp->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                             (long) rp->nslots);

    for (i = 0; i < rp->nslots; i++) {
        rp->slots[i].easy = curl_easy_init();

        if (rp->slots[i].easy == NULL) {
            ngx_http_reductrai_cli_error(cli, "curl_easy_init() failed");
            return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
        }
    }

    return NGX_HTTP_REDUCTRAI_CLI_OK;
}


static int
ngx_http_reductrai_replay_add_header(ngx_http_reductrai_replay_t *rp,
    const char *h)
{
    struct curl_slist  *l;

    l = curl_slist_append(rp->extra, h);
    if (l == NULL) {
        ngx_http_reductrai_cli_error(rp->cli, "out of memory");
        return -1;
    }

    rp->extra = l;

    return 0;
}


static int
ngx_http_reductrai_replay_has_header(ngx_http_reductrai_replay_t *rp,
    const char *name)
{
    size_t              len;
    struct curl_slist  *l;

    len = strlen(name);

    for (l = rp->extra; l != NULL; l = l->next) {
        if (strncasecmp(l->data, name, len) == 0 && l->data[len] == ':') {
            return 1;
        }
    }

    return 0;
}


/* the check reads for the reader's count and SHA-256 alone */

static int
ngx_http_reductrai_replay_ignore(void *data, const u_char *line, size_t len)
{
    return 0;
}


/* the reader's line callback: one record, perhaps one request */

static int
ngx_http_reductrai_replay_line(void *data, const u_char *line, size_t len)
{
    ngx_http_reductrai_replay_t *rp = data;

    int                                 m, by_body;
    const char                         *why;
    ngx_http_reductrai_cli_t           *cli;
    ngx_http_reductrai_cli_kind_e       kind;
    ngx_http_reductrai_record_view_t    v;
    ngx_http_reductrai_replay_slot_t   *s, dry;

    cli = rp->cli;

    if (ngx_http_reductrai_replay_signal) {
        return 1;
    }

    m = ngx_http_reductrai_cli_match(cli, line, len, &v, &rp->scratch);

    if (m == 0) {
        return 0;
    }

    if (m < 0 || v.id.data == NULL) {
        rp->not_records++;
        return 0;
    }

    /* records the checkpoint skips do not count: reruns go further */
    if (cli->limit && rp->sent >= cli->limit) {
        return 1;
    }

    if (rp->ckpt != NULL
        && ngx_http_reductrai_cli_ckpt_done(rp->ckpt, v.id.data, v.id.len))
    {
        rp->skipped++;
        return 0;
    }

    if (rp->windowed
        && ngx_http_reductrai_replay_judge(rp, &v, &kind, &by_body)
           == NGX_HTTP_REDUCTRAI_WINDOW_OUTSIDE)
    {
        rp->expired[kind]++;

        if (!cli->include_expired) {
            return 0;
        }
    }

    if (cli->dry_run) {
        memset(&dry, 0, sizeof(ngx_http_reductrai_replay_slot_t));
        s = &dry;

    } else {
        s = ngx_http_reductrai_replay_slot(rp);

        if (s == NULL) {
            /* interrupted while waiting */
            return 1;
        }
    }

    if (ngx_http_reductrai_replay_prepare(rp, s, &v, &why) != 0) {
        ngx_http_reductrai_replay_say(rp, "%.*s: not sent: %s",
                                      (int) v.id.len, v.id.data, why);
        ngx_http_reductrai_replay_free_slot(s);
        rp->unsendable++;

        if (cli->dry_run) {
            ngx_http_reductrai_buf_free(&dry.body);
            ngx_http_reductrai_buf_free(&dry.url);
        }

        return 0;
    }

    rp->sent++;

    if (cli->dry_run) {
        struct curl_slist  *l;

        printf("%s %.*s id=%s bytes=%zu", s->method, (int) s->url.len,
               s->url.data, s->id, s->body.len);

        /* names only: values may be credentials */
        for (l = s->headers; l != NULL; l = l->next) {
            const char  *colon = strchr(l->data, ':');

            if (colon != NULL && colon[1] != '\0') {
                printf(" %.*s", (int) (colon - l->data), l->data);
            }
        }

        printf("\n");

        ngx_http_reductrai_replay_free_slot(s);
        ngx_http_reductrai_buf_free(&dry.body);
        ngx_http_reductrai_buf_free(&dry.url);

        return 0;
    }

    s->state = NGX_HTTP_REDUCTRAI_REPLAY_WAITING;
    s->not_before = 0;

    /* start it now if a token allows: the pump may otherwise not run */
    ngx_http_reductrai_replay_pump(rp, 0);

    return 0;
}


static int
ngx_http_reductrai_replay_prepare(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_replay_slot_t *s, ngx_http_reductrai_record_view_t *v,
    const char **why)
{
    u_char                         *p;
    size_t                          i, hlen;
    ssize_t                         n;
    const u_char                   *body;
    struct curl_slist              *l;
    ngx_http_reductrai_buf_t       *t;
    ngx_http_reductrai_encoding_e   enc;

    static const char  hex[] = "0123456789ABCDEF";

    t = &rp->text;

    s->id = malloc(v->id.len + 1);
    if (s->id == NULL) {
        *why = "out of memory";
        return -1;
    }

    memcpy(s->id, v->id.data, v->id.len);
    s->id[v->id.len] = '\0';

    /* method */

    if (v->method.data == NULL) {
        strcpy(s->method, "POST");

    } else {
        if (v->method.len == 0 || v->method.len >= sizeof(s->method)) {
            *why = "bad method";
            return -1;
        }

        for (i = 0; i < v->method.len; i++) {
            if (v->method.data[i] < 'A' || v->method.data[i] > 'Z') {
                *why = "bad method";
                return -1;
            }
        }

        memcpy(s->method, v->method.data, v->method.len);
        s->method[v->method.len] = '\0';
    }

    /* URL: the target's, then the record's path and query */

    if (ngx_http_reductrai_replay_string(t, &v->uri, 0) != 0
        || t->len == 0 || t->data[0] != '/')
    {
        *why = "no usable uri";
        return -1;
    }

    s->url.len = 0;

    if (ngx_http_reductrai_buf_reserve(&s->url, strlen(rp->base) + t->len * 3
                                                + 1)
        != 0)
    {
        *why = "out of memory";
        return -1;
    }

    p = (u_char *) stpcpy((char *) s->url.data, rp->base);

    /* bytes a URL cannot carry as they are, and '#', are escaped */
    for (i = 0; i < t->len; i++) {
        if (t->data[i] <= 0x20 || t->data[i] >= 0x7f || t->data[i] == '#') {
            *p++ = '%';
            *p++ = (u_char) hex[t->data[i] >> 4];
            *p++ = (u_char) hex[t->data[i] & 0xf];

        } else {
            *p++ = t->data[i];
        }
    }

    *p = '\0';
    s->url.len = (size_t) (p - s->url.data);

    /* body */

    enc = NGX_HTTP_REDUCTRAI_ENC_IDENTITY;

    if (v->content_encoding.data != NULL) {
        if (ngx_http_reductrai_replay_string(t, &v->content_encoding, 1)
            != 0)
        {
            *why = "bad content_encoding";
            return -1;
        }

        enc = ngx_http_reductrai_encoding_parse(t->data, t->len);
    }

    if (v->body.data != NULL && v->body_format.data != NULL) {
        if (ngx_http_reductrai_replay_protobuf(rp, v, why) != 0) {
            return -1;
        }

        body = rp->proto.data;
        n = (ssize_t) rp->proto.len;

    } else if (v->body.data != NULL) {
        body = v->body.data;
        n = (ssize_t) v->body.len;

    } else if (v->body_b64.data != NULL) {
        rp->raw.len = 0;

        if (ngx_http_reductrai_buf_reserve(&rp->raw,
                                           v->body_b64.len / 4 * 3 + 1)
            != 0)
        {
            *why = "out of memory";
            return -1;
        }

        n = ngx_http_reductrai_body_b64_decode(rp->raw.data, v->body_b64.data,
                                             v->body_b64.len);
        if (n < 0) {
            *why = "invalid body_b64";
            return -1;
        }

        body = rp->raw.data;

    } else {
        *why = "no body";
        return -1;
    }

    s->body.len = 0;

    if (!ngx_http_reductrai_replay_decoded(v)
        || enc == NGX_HTTP_REDUCTRAI_ENC_IDENTITY
        || enc == NGX_HTTP_REDUCTRAI_ENC_UNSUPPORTED)
    {
        /* the bytes as received: never decoded, so never encoded again */
        if (ngx_http_reductrai_buf_reserve(&s->body, (size_t) n + 1) != 0) {
            *why = "out of memory";
            return -1;
        }

        memcpy(s->body.data, body, (size_t) n);
        s->body.len = (size_t) n;

    } else if (ngx_http_reductrai_replay_encode(&s->body, enc, body,
                                                (size_t) n)
               != 0)
    {
        *why = "encoding the body failed";
        return -1;
    }

    /* headers: the record's, then the user's (which may override) */

    l = NULL;

#define ngx_http_reductrai_replay_header(name, field)                        \
    if (v->field.data != NULL && v->field.len > 0) {                         \
        if (ngx_http_reductrai_replay_string(t, &v->field, 1) == 0) {        \
            hlen = sizeof(name ": ") - 1;                                    \
            if (ngx_http_reductrai_buf_reserve(t, hlen + 1) != 0) {          \
                *why = "out of memory";                                      \
                return -1;                                                   \
            }                                                                \
            memmove(t->data + hlen, t->data, t->len);                        \
            memcpy(t->data, name ": ", hlen);                                \
            t->data[hlen + t->len] = '\0';                                   \
            l = curl_slist_append(s->headers, (char *) t->data);             \
            if (l == NULL) {                                                 \
                *why = "out of memory";                                      \
                return -1;                                                   \
            }                                                                \
            s->headers = l;                                                  \
        }                                                                    \
    }

    if (!ngx_http_reductrai_replay_has_header(rp, "Content-Type")) {
        ngx_http_reductrai_replay_header("Content-Type", content_type);
    }

    ngx_http_reductrai_replay_header("Content-Encoding", content_encoding);

    if (!rp->user_agent) {
        ngx_http_reductrai_replay_header("User-Agent", user_agent);
    }

#undef ngx_http_reductrai_replay_header

    if (v->content_type.data == NULL
        && !ngx_http_reductrai_replay_has_header(rp, "Content-Type"))
    {
        /* else curl says application/x-www-form-urlencoded */
        l = curl_slist_append(s->headers, "Content-Type:");
        if (l == NULL) {
            *why = "out of memory";
            return -1;
        }

        s->headers = l;
    }

    if (!rp->user_agent && v->user_agent.data == NULL) {
        l = curl_slist_append(s->headers,
                              "User-Agent: reductrai-replay/"
                              NGX_HTTP_REDUCTRAI_VERSION);
        if (l == NULL) {
            *why = "out of memory";
            return -1;
        }

        s->headers = l;
    }

    rp->scratch.len = 0;

    if (ngx_http_reductrai_buf_reserve(&rp->scratch, v->id.len + 32) != 0) {
        *why = "out of memory";
        return -1;
    }

    snprintf((char *) rp->scratch.data, v->id.len + 32,
             "X-Reductrai-Record-Id: %s", s->id);

    l = curl_slist_append(s->headers, (char *) rp->scratch.data);
    if (l == NULL) {
        *why = "out of memory";
        return -1;
    }

    s->headers = l;

    for (l = rp->extra; l != NULL; l = l->next) {
        struct curl_slist  *nl = curl_slist_append(s->headers, l->data);

        if (nl == NULL) {
            *why = "out of memory";
            return -1;
        }

        s->headers = nl;
    }

    s->attempts = 0;
    s->retry_after = -1;

    if (s->easy == NULL) {
        /* a dry run */
        return 0;
    }

    curl_easy_reset(s->easy);

    if (curl_easy_setopt(s->easy, CURLOPT_URL, (char *) s->url.data)
        != CURLE_OK)
    {
        *why = "curl refuses the URL";
        return -1;
    }

    (void) curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    (void) curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    (void) curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST, s->method);
    (void) curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
    (void) curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body.data);
    (void) curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t) s->body.len);
    (void) curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    (void) curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS,
                            (long) (rp->cli->timeout * 1000));
    (void) curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS,
                            (long) (rp->cli->timeout < 10
                                    ? rp->cli->timeout * 1000 : 10000));
    (void) curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION,
                            ngx_http_reductrai_replay_header_cb);
    (void) curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, s);
    (void) curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION,
                            ngx_http_reductrai_replay_write_cb);
    (void) curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
    (void) curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->error);
    (void) curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http,https");

    if (rp->cli->insecure) {
        (void) curl_easy_setopt(s->easy, CURLOPT_SSL_VERIFYPEER, 0L);
        (void) curl_easy_setopt(s->easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }

    return 0;
}


/*
 * A body archived as JSON of a protobuf message (body_format) as the
 * message's wire bytes again, in rp->proto.  Decoding them gives the
 * message the client sent, though not always its exact bytes: fields come
 * in number order, repeated scalars packed, zero values left out.
 */

static int
ngx_http_reductrai_replay_protobuf(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_record_view_t *v, const char **why)
{
    const char                              *err;
    ngx_http_reductrai_pb_rc_e               rc;
    ngx_http_reductrai_buf_t                *t;
    const ngx_http_reductrai_body_format_t  *bf;

    t = &rp->text;

    if (ngx_http_reductrai_replay_string(t, &v->body_format, 0) != 0) {
        *why = "bad body_format";
        return -1;
    }

    bf = ngx_http_reductrai_body_format(
             ngx_http_reductrai_body_format_lookup(t->data, t->len));

    if (bf == NULL) {
        snprintf(rp->why, sizeof(rp->why), "unknown body_format \"%.64s\"",
                 (char *) t->data);
        *why = rp->why;
        return -1;
    }

    rp->proto.len = 0;
    err = "?";

    rc = ngx_http_reductrai_pb_encode(bf->descriptor, bf->style, v->body.data,
                                      v->body.len,
                                      NGX_HTTP_REDUCTRAI_LINE_MAX,
                                      &rp->proto, &err);

    if (rc != NGX_HTTP_REDUCTRAI_PB_OK) {
        snprintf(rp->why, sizeof(rp->why), "body is not a %s: %s", bf->name,
                 err);
        *why = rp->why;
        return -1;
    }

    return 0;
}


/*
 * Whether the archived body is the decoded one, to be encoded again: yes
 * unless decode_error says the Content-Encoding could not be undone.  A
 * protobuf body that failed to print was decoded first, and is kept so.
 * ("out_of_memory" is ambiguous; it is taken as the decoder's, the raw
 * bytes.)
 */

static int
ngx_http_reductrai_replay_decoded(ngx_http_reductrai_record_view_t *v)
{
    ngx_http_reductrai_str_t  *e;

    e = &v->decode_error;

    if (e->data == NULL) {
        return 1;
    }

#define ngx_http_reductrai_replay_error_is(s)                                \
    (e->len == sizeof(s) - 1 && memcmp(e->data, s, e->len) == 0)

    return ngx_http_reductrai_replay_error_is("invalid_protobuf")
           || ngx_http_reductrai_replay_error_is("protobuf_limit");

#undef ngx_http_reductrai_replay_error_is
}


/* a record's string field unescaped into b (NUL-terminated) */

static int
ngx_http_reductrai_replay_string(ngx_http_reductrai_buf_t *b,
    ngx_http_reductrai_str_t *s, int header)
{
    size_t   i;
    ssize_t  n;

    b->len = 0;

    if (ngx_http_reductrai_buf_reserve(b, s->len + 1) != 0) {
        return -1;
    }

    n = ngx_http_reductrai_json_unescape(b->data, s->data, s->len);
    if (n < 0) {
        return -1;
    }

    b->len = (size_t) n;
    b->data[n] = '\0';

    if (header) {
        /* a header value never carries a line break or a NUL */
        for (i = 0; i < b->len; i++) {
            if (b->data[i] < 0x20 && b->data[i] != '\t') {
                return -1;
            }
        }
    }

    return 0;
}


static int
ngx_http_reductrai_replay_encode(ngx_http_reductrai_buf_t *out,
    ngx_http_reductrai_encoding_e enc, const u_char *p, size_t len)
{
    int       rc;
    size_t    bound;
    z_stream  z;

    out->len = 0;

    if (enc == NGX_HTTP_REDUCTRAI_ENC_SNAPPY) {
        /* one block, as Prometheus remote write sends it */

        bound = snappy_max_compressed_length(len);

        if (ngx_http_reductrai_buf_reserve(out, bound) != 0
            || snappy_compress((const char *) p, len, (char *) out->data,
                               &bound)
               != SNAPPY_OK)
        {
            return -1;
        }

        out->len = bound;
        return 0;
    }

    if (enc == NGX_HTTP_REDUCTRAI_ENC_ZSTD) {
        bound = ZSTD_compressBound(len);

        if (ngx_http_reductrai_buf_reserve(out, bound) != 0) {
            return -1;
        }

        bound = ZSTD_compress(out->data, bound, p, len, 3);
        if (ZSTD_isError(bound)) {
            return -1;
        }

        out->len = bound;
        return 0;
    }

    /* gzip, or deflate as HTTP means it: the zlib format (RFC 9110) */

    memset(&z, 0, sizeof(z_stream));

    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                     enc == NGX_HTTP_REDUCTRAI_ENC_GZIP ? 31 : 15, 8,
                     Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        return -1;
    }

    bound = deflateBound(&z, (uLong) len);

    if (len > UINT32_MAX || ngx_http_reductrai_buf_reserve(out, bound) != 0) {
        deflateEnd(&z);
        return -1;
    }

    z.next_in = (Bytef *) p;
    z.avail_in = (uInt) len;
    z.next_out = out->data;
    z.avail_out = (uInt) bound;

    rc = deflate(&z, Z_FINISH);

    out->len = bound - z.avail_out;
    deflateEnd(&z);

    return rc == Z_STREAM_END ? 0 : -1;
}


/* a free slot, driving transfers until one is; NULL when interrupted */

static ngx_http_reductrai_replay_slot_t *
ngx_http_reductrai_replay_slot(ngx_http_reductrai_replay_t *rp)
{
    int  i;

    for ( ;; ) {
        for (i = 0; i < rp->nslots; i++) {
            if (rp->slots[i].state == NGX_HTTP_REDUCTRAI_REPLAY_FREE) {
                return &rp->slots[i];
            }
        }

        if (ngx_http_reductrai_replay_signal) {
            return NULL;
        }

        ngx_http_reductrai_replay_pump(rp, 1);
    }
}


/* starts what may start, collects what ended, and perhaps waits */

static void
ngx_http_reductrai_replay_pump(ngx_http_reductrai_replay_t *rp, int wait)
{
    int                                 i, running, left, done;
    long                                timeout;
    double                              now, next, t;
    CURLMsg                            *msg;
    ngx_http_reductrai_replay_slot_t   *s;

    now = ngx_http_reductrai_cli_mono();
    next = now + NGX_HTTP_REDUCTRAI_REPLAY_TICK;

    if (rp->cli->rate > 0) {
        rp->tokens += (now - rp->refilled) * rp->cli->rate;
        rp->tokens = rp->tokens > rp->burst ? rp->burst : rp->tokens;
    }

    rp->refilled = now;

    for (i = 0; i < rp->nslots; i++) {
        s = &rp->slots[i];

        if (s->state != NGX_HTTP_REDUCTRAI_REPLAY_WAITING) {
            continue;
        }

        if (s->not_before > now) {
            next = s->not_before < next ? s->not_before : next;
            continue;
        }

        if (rp->cli->rate > 0) {
            if (rp->tokens < 1) {
                t = now + (1 - rp->tokens) / rp->cli->rate;
                next = t < next ? t : next;
                continue;
            }

            rp->tokens -= 1;
        }

        if (s->attempts++ > 0) {
            rp->retries++;
        }

        s->retry_after = -1;
        s->reply_len = 0;
        s->error[0] = '\0';
        s->started = now;
        s->state = NGX_HTTP_REDUCTRAI_REPLAY_RUNNING;

        if (curl_multi_add_handle(rp->multi, s->easy) != CURLM_OK) {
            s->state = NGX_HTTP_REDUCTRAI_REPLAY_WAITING;
            s->not_before = now + 1;
        }
    }

    (void) curl_multi_perform(rp->multi, &running);

    done = 0;

    while ((msg = curl_multi_info_read(rp->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        s = NULL;
        (void) curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
                                 (char **) &s);

        if (s != NULL) {
            ngx_http_reductrai_replay_done(rp, s, msg->data.result);
            done++;
        }
    }

    ngx_http_reductrai_replay_tick(rp, 0);

    /* a slot just freed (or a retry to schedule) is work: do not sleep */
    if (!wait || done) {
        return;
    }

    now = ngx_http_reductrai_cli_mono();
    timeout = next > now ? (long) ((next - now) * 1000) + 1 : 0;

    (void) curl_multi_poll(rp->multi, NULL, 0, (int) timeout, NULL);
}


static void
ngx_http_reductrai_replay_done(ngx_http_reductrai_replay_t *rp,
    ngx_http_reductrai_replay_slot_t *s, CURLcode res)
{
    int                        i;
    long                       status;
    double                     now, delay;
    ngx_http_reductrai_cli_t  *cli;

    cli = rp->cli;
    now = ngx_http_reductrai_cli_mono();
    status = 0;

    (void) curl_multi_remove_handle(rp->multi, s->easy);

    if (res == CURLE_OK) {
        (void) curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    }

    if (cli->verbose) {
        ngx_http_reductrai_replay_say(rp, "%s %s %s -> %ld%s%s (attempt %d, "
                                      "%.0f ms)", s->id, s->method,
                                      (char *) s->url.data, status,
                                      res == CURLE_OK ? "" : " ",
                                      res == CURLE_OK ? ""
                                      : curl_easy_strerror(res),
                                      s->attempts,
                                      (now - s->started) * 1000);
    }

    if (res == CURLE_OK && status >= 200 && status < 300) {
        rp->ok++;
        ngx_http_reductrai_replay_status(rp, status);

        if (rp->ckpt != NULL
            && ngx_http_reductrai_cli_ckpt_mark(rp->ckpt,
                                                (u_char *) s->id,
                                                strlen(s->id))
               != 0)
        {
            if (rp->ckpt_errors++ == 0) {
                ngx_http_reductrai_replay_say(rp, "writing checkpoint "
                                              "\"%s\" failed: %s",
                                              cli->checkpoint,
                                              strerror(errno));
            }
        }

        ngx_http_reductrai_replay_free_slot(s);
        return;
    }

    if (ngx_http_reductrai_replay_retryable(res, status)
        && s->attempts <= cli->retries && !ngx_http_reductrai_replay_signal)
    {
        /* capped exponential backoff with jitter, or what the server asks */
        delay = NGX_HTTP_REDUCTRAI_REPLAY_BACKOFF;

        for (i = 1; i < s->attempts && delay < cli->retry_max; i++) {
            delay *= 2;
        }

        delay = delay > cli->retry_max ? cli->retry_max : delay;
        delay = delay / 2 + delay / 2 * ((double) random() / RAND_MAX);

        if (s->retry_after >= 0) {
            delay = s->retry_after > 3600 ? 3600 : s->retry_after;
        }

        s->not_before = now + delay;
        s->state = NGX_HTTP_REDUCTRAI_REPLAY_WAITING;
        return;
    }

    rp->failed++;
    ngx_http_reductrai_replay_status(rp, res == CURLE_OK ? status : 0);

    if (rp->failed <= NGX_HTTP_REDUCTRAI_REPLAY_FAILURES) {
        if (res != CURLE_OK) {
            ngx_http_reductrai_replay_say(rp, "%s: %s %s: %s (%d attempt%s)",
                                          s->id, s->method,
                                          (char *) s->url.data,
                                          s->error[0] ? s->error
                                          : curl_easy_strerror(res),
                                          s->attempts,
                                          s->attempts > 1 ? "s" : "");

        } else {
            ngx_http_reductrai_replay_say(rp, "%s: %s %s: HTTP %ld %.*s "
                                          "(%d attempt%s)", s->id, s->method,
                                          (char *) s->url.data, status,
                                          (int) s->reply_len, s->reply,
                                          s->attempts,
                                          s->attempts > 1 ? "s" : "");
        }

    } else if (rp->failed == NGX_HTTP_REDUCTRAI_REPLAY_FAILURES + 1) {
        ngx_http_reductrai_replay_say(rp, "more failures are counted but not "
                                      "shown");
    }

    ngx_http_reductrai_replay_free_slot(s);
}


static int
ngx_http_reductrai_replay_retryable(CURLcode res, long status)
{
    switch (res) {

    case CURLE_OK:
        return status >= 500 || status == 429 || status == 408;

    /* what retrying cannot mend */
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_FILESIZE_EXCEEDED:
        return 0;

    default:
        return 1;
    }
}


static int
ngx_http_reductrai_replay_busy(ngx_http_reductrai_replay_t *rp)
{
    int  i, n;

    n = 0;

    for (i = 0; i < rp->nslots; i++) {
        n += rp->slots[i].state != NGX_HTTP_REDUCTRAI_REPLAY_FREE;
    }

    return n;
}


/* lets every request end; on a signal, what waits is dropped */

static void
ngx_http_reductrai_replay_drain(ngx_http_reductrai_replay_t *rp)
{
    int                                i;
    ngx_http_reductrai_replay_slot_t  *s;

    while (ngx_http_reductrai_replay_busy(rp)) {

        if (ngx_http_reductrai_replay_signal) {
            for (i = 0; i < rp->nslots; i++) {
                s = &rp->slots[i];

                if (s->state == NGX_HTTP_REDUCTRAI_REPLAY_WAITING
                    || (s->state == NGX_HTTP_REDUCTRAI_REPLAY_RUNNING
                        && ngx_http_reductrai_replay_signal > 1))
                {
                    if (s->state == NGX_HTTP_REDUCTRAI_REPLAY_RUNNING) {
                        (void) curl_multi_remove_handle(rp->multi, s->easy);
                    }

                    rp->dropped++;
                    ngx_http_reductrai_replay_free_slot(s);
                }
            }

            if (!ngx_http_reductrai_replay_busy(rp)) {
                break;
            }
        }

        ngx_http_reductrai_replay_pump(rp, 1);
    }
}


static void
ngx_http_reductrai_replay_free_slot(ngx_http_reductrai_replay_slot_t *s)
{
    curl_slist_free_all(s->headers);
    s->headers = NULL;
    free(s->id);
    s->id = NULL;
    s->state = NGX_HTTP_REDUCTRAI_REPLAY_FREE;

    /* a huge body is not kept for the next record */
    if (s->body.cap > 1024 * 1024) {
        ngx_http_reductrai_buf_free(&s->body);
    }
}


static void
ngx_http_reductrai_replay_tick(ngx_http_reductrai_replay_t *rp, int force)
{
    double  now, elapsed;

    now = ngx_http_reductrai_cli_mono();

    if (rp->ckpt != NULL && now - rp->last_save
                            >= NGX_HTTP_REDUCTRAI_REPLAY_SAVE)
    {
        rp->last_save = now;

        if (ngx_http_reductrai_cli_ckpt_save(rp->ckpt) != 0
            && rp->ckpt_errors++ == 0)
        {
            ngx_http_reductrai_replay_say(rp, "saving checkpoint \"%s\" "
                                          "failed: %s", rp->cli->checkpoint,
                                          strerror(errno));
        }
    }

    if (!rp->progress) {
        return;
    }

    if (force) {
        if (rp->progress_shown) {
            fprintf(stderr, "\r\033[K");
            rp->progress_shown = 0;
        }

        return;
    }

    if (now - rp->last_tick < NGX_HTTP_REDUCTRAI_REPLAY_TICK) {
        return;
    }

    rp->last_tick = now;
    elapsed = now - rp->start;

    fprintf(stderr, "\r\033[Kreplay: %llu sent, %llu ok, %llu failed, %llu "
            "skipped, %llu retries, %d in flight, %.1f req/s",
            (unsigned long long) rp->sent, (unsigned long long) rp->ok,
            (unsigned long long) rp->failed,
            (unsigned long long) rp->skipped,
            (unsigned long long) rp->retries,
            ngx_http_reductrai_replay_busy(rp),
            elapsed > 0 ? (double) (rp->ok + rp->failed) / elapsed : 0.0);

    rp->progress_shown = 1;
}


static void
ngx_http_reductrai_replay_say(ngx_http_reductrai_replay_t *rp,
    const char *fmt, ...)
{
    char     buf[1024];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (rp->progress_shown) {
        fprintf(stderr, "\r\033[K");
        rp->progress_shown = 0;
    }

    ngx_http_reductrai_cli_error(rp->cli, "%s", buf);
}


static size_t
ngx_http_reductrai_replay_header_cb(char *p, size_t size, size_t n,
    void *data)
{
    ngx_http_reductrai_replay_slot_t *s = data;

    char    value[64];
    size_t  len, v;
    time_t  when;

    len = size * n;

    /* a new response (after a 100 Continue, say) */
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
        s->retry_after = -1;
        return len;
    }

    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        for (v = 12; v < len && (p[v] == ' ' || p[v] == '\t'); v++) {
            /* void */
        }

        n = 0;

        while (v < len && p[v] != '\r' && p[v] != '\n'
               && n < sizeof(value) - 1)
        {
            value[n++] = p[v++];
        }

        value[n] = '\0';

        if (n > 0 && strspn(value, "0123456789") == n) {
            s->retry_after = atof(value);

        } else {
            when = curl_getdate(value, NULL);

            if (when != -1) {
                s->retry_after = difftime(when, time(NULL));
                s->retry_after = s->retry_after < 0 ? 0 : s->retry_after;
            }
        }
    }

    return len;
}


/* keeps the start of the answer, for the message when it is a failure */

static size_t
ngx_http_reductrai_replay_write_cb(char *p, size_t size, size_t n,
    void *data)
{
    ngx_http_reductrai_replay_slot_t *s = data;

    size_t  len, i, room;

    len = size * n;
    room = sizeof(s->reply) - 1 - s->reply_len;

    for (i = 0; i < len && room > 0; i++, room--) {
        s->reply[s->reply_len++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : ' ';
    }

    return len;
}
