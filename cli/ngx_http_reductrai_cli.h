
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The reductrai command-line tool: ls, cat, verify and replay over an
 * archive, through the same storage and format code as the module.
 */


#ifndef _NGX_HTTP_REDUCTRAI_CLI_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_CLI_H_INCLUDED_


#include "ngx_http_reductrai_core.h"
#include "ngx_http_reductrai_key.h"
#include "ngx_http_reductrai_reader.h"
#include "ngx_http_reductrai_record.h"
#include "ngx_http_reductrai_segment.h"
#include "ngx_http_reductrai_storage.h"

#include <pthread.h>
#include <stdio.h>


/* exit codes (documented in reductrai(1) and docs/CLI.md) */
#define NGX_HTTP_REDUCTRAI_CLI_OK           0
#define NGX_HTTP_REDUCTRAI_CLI_PROBLEMS     1   /* verify found problems */
#define NGX_HTTP_REDUCTRAI_CLI_USAGE        2
#define NGX_HTTP_REDUCTRAI_CLI_STORAGE      3   /* unreachable, auth, gone */
#define NGX_HTTP_REDUCTRAI_CLI_CORRUPT      4   /* a corrupt object was read */
#define NGX_HTTP_REDUCTRAI_CLI_UNDELIVERED  5   /* replay: records failed */
#define NGX_HTTP_REDUCTRAI_CLI_INTERRUPTED  130

#define NGX_HTTP_REDUCTRAI_CLI_TIME_MIN  INT64_MIN
#define NGX_HTTP_REDUCTRAI_CLI_TIME_MAX  INT64_MAX

#define NGX_HTTP_REDUCTRAI_CLI_MAX_STREAMS  64
#define NGX_HTTP_REDUCTRAI_CLI_MAX_HEADERS  64
#define NGX_HTTP_REDUCTRAI_CLI_MAX_JOBS     64


/* options a subcommand accepts */
#define NGX_HTTP_REDUCTRAI_CLI_O_SELECT   0x01  /* --stream --from --to */
#define NGX_HTTP_REDUCTRAI_CLI_O_FILTER   0x02  /* --grep --uri --limit … */
#define NGX_HTTP_REDUCTRAI_CLI_O_JSON     0x04
#define NGX_HTTP_REDUCTRAI_CLI_O_BODY     0x08
#define NGX_HTTP_REDUCTRAI_CLI_O_JOBS     0x10
#define NGX_HTTP_REDUCTRAI_CLI_O_REPLAY   0x20


typedef struct {
    char                              *key;
    int64_t                            size;
    ngx_http_reductrai_segment_id_t    id;
} ngx_http_reductrai_cli_object_t;


/* what an intake path carries, for its age window (replay) */
typedef enum {
    NGX_HTTP_REDUCTRAI_KIND_METRICS = 0,
    NGX_HTTP_REDUCTRAI_KIND_LOGS,
    NGX_HTTP_REDUCTRAI_KIND_TRACES,
    NGX_HTTP_REDUCTRAI_KIND_EVENTS,
    NGX_HTTP_REDUCTRAI_KIND_OTHER,
    NGX_HTTP_REDUCTRAI_KIND_N
} ngx_http_reductrai_cli_kind_e;


typedef enum {
    NGX_HTTP_REDUCTRAI_WINDOW_INSIDE = 0,
    NGX_HTTP_REDUCTRAI_WINDOW_PARTLY,
    NGX_HTTP_REDUCTRAI_WINDOW_OUTSIDE
} ngx_http_reductrai_cli_verdict_e;


/* the timestamps of a body, ms; count 0: none found */
typedef struct {
    int64_t                            oldest;
    int64_t                            newest;
    uint64_t                           count;
} ngx_http_reductrai_cli_times_t;


typedef struct {
    const char                        *command;

    /* storage */
    const char                        *uri;
    int                                nparams;
    char                             **params;
    ngx_http_reductrai_storage_t      *st;

    /* selection */
    int                                nstreams;
    char                *streams[NGX_HTTP_REDUCTRAI_CLI_MAX_STREAMS];
    int                                ncopies;
    char                *copies[NGX_HTTP_REDUCTRAI_CLI_MAX_STREAMS];
    int64_t                            from;        /* inclusive, ms */
    int64_t                            to;          /* exclusive, ms */
    unsigned                           time_limited:1;

    /* record filters */
    const char                        *grep;
    const char                        *uri_match;
    unsigned                           uri_glob:1;
    const char                        *api_key_fp;
    uint64_t                           limit;       /* 0: none */

    /* output */
    unsigned                           json:1;
    unsigned                           body:1;
    int                                verbose;
    int                                jobs;

    /* replay */
    const char                        *target;
    int                                nheaders;
    char                *headers[NGX_HTTP_REDUCTRAI_CLI_MAX_HEADERS];
    double                             rate;        /* 0: unlimited */
    int                                concurrency;
    int                                retries;
    double                             retry_max;   /* seconds */
    double                             timeout;     /* seconds */
    const char                        *checkpoint;
    unsigned                           dry_run:1;
    unsigned                           insecure:1;
    int                                progress;    /* -1 auto, 0, 1 */
    int64_t       window[NGX_HTTP_REDUCTRAI_KIND_N];  /* ms, -1: none */
    unsigned                           include_expired:1;

    /* counters for --verbose */
    uint64_t                           listed;
    uint64_t                           ignored;
    uint64_t                           pruned;
    uint64_t                           lists;
    uint64_t                           trailer_gets;
    uint64_t                           object_gets;
} ngx_http_reductrai_cli_t;


/* what read_object() makes of one object */
typedef struct {
    ngx_http_reductrai_storage_rc_e    storage_rc;
    char                               storage_error[256];
    ngx_http_reductrai_read_result_t   res;
} ngx_http_reductrai_cli_read_t;


/* ngx_http_reductrai_cli_select.c */
void ngx_http_reductrai_cli_error(ngx_http_reductrai_cli_t *cli,
    const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ngx_http_reductrai_cli_parse_time(const char *s, int64_t now_ms,
    int end, int64_t *ms);
int64_t ngx_http_reductrai_cli_now_ms(void);
double ngx_http_reductrai_cli_mono(void);
int ngx_http_reductrai_cli_list_prefixes(ngx_http_reductrai_cli_t *cli,
    char ***prefixes, int *n);
int ngx_http_reductrai_cli_select(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_cli_object_t **objects, size_t *n);
void ngx_http_reductrai_cli_objects_free(ngx_http_reductrai_cli_object_t *o,
    size_t n);
int ngx_http_reductrai_cli_hour_inside(ngx_http_reductrai_cli_t *cli,
    int64_t hour);
int ngx_http_reductrai_cli_overlaps(ngx_http_reductrai_cli_t *cli,
    int64_t first_ms, int64_t last_ms);
/* 1 when the object's trailer shows that it holds no selected record */
int ngx_http_reductrai_cli_excluded(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_cli_object_t *o);
size_t ngx_http_reductrai_cli_worker(char *buf, size_t size,
    const ngx_http_reductrai_segment_id_t *id);
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_cli_get_trailer(
    ngx_http_reductrai_cli_t *cli, const char *key,
    ngx_http_reductrai_trailer_t *t, int *found,
    ngx_http_reductrai_storage_err_t *err);
int ngx_http_reductrai_cli_fetch(ngx_http_reductrai_cli_t *cli,
    const char *key, int *fd, ngx_http_reductrai_cli_read_t *out);
int ngx_http_reductrai_cli_read_object(ngx_http_reductrai_cli_t *cli,
    ngx_http_reductrai_reader_t *r, const char *key, int fd,
    ngx_http_reductrai_cli_read_t *out);
int ngx_http_reductrai_cli_match(ngx_http_reductrai_cli_t *cli,
    const u_char *line, size_t len, ngx_http_reductrai_record_view_t *v,
    ngx_http_reductrai_buf_t *scratch);

/* ngx_http_reductrai_cli_jobs.c: work on each selected object, in threads */
typedef struct {
    ngx_http_reductrai_cli_t          *cli;
    ngx_http_reductrai_cli_object_t   *objects;
    size_t                             n;
    void                              *items;       /* one an object */
    size_t                             next;        /* atomic */
    int                                nthreads;
    pthread_t                          tids[NGX_HTTP_REDUCTRAI_CLI_MAX_JOBS];
} ngx_http_reductrai_cli_jobs_t;

/* selects the objects, with a zeroed item of size bytes each */
int ngx_http_reductrai_cli_jobs_init(ngx_http_reductrai_cli_jobs_t *jobs,
    ngx_http_reductrai_cli_t *cli, size_t size);
/* runs handler on up to --jobs threads (here when none starts) */
void ngx_http_reductrai_cli_jobs_start(ngx_http_reductrai_cli_jobs_t *jobs,
    void *(*handler)(void *data), void *data);
/* the next object a thread works on; returns 0 when none is left */
int ngx_http_reductrai_cli_jobs_next(ngx_http_reductrai_cli_jobs_t *jobs,
    size_t *i);
void ngx_http_reductrai_cli_jobs_join(ngx_http_reductrai_cli_jobs_t *jobs);
void ngx_http_reductrai_cli_jobs_free(ngx_http_reductrai_cli_jobs_t *jobs);

/* one file per subcommand */
int ngx_http_reductrai_cli_ls(ngx_http_reductrai_cli_t *cli);
int ngx_http_reductrai_cli_cat(ngx_http_reductrai_cli_t *cli);
int ngx_http_reductrai_cli_verify(ngx_http_reductrai_cli_t *cli);
int ngx_http_reductrai_cli_replay(ngx_http_reductrai_cli_t *cli);


/* ngx_http_reductrai_cli_window.c: the intake's age windows */
const char *ngx_http_reductrai_cli_kind_name(
    ngx_http_reductrai_cli_kind_e kind);
ngx_http_reductrai_cli_kind_e ngx_http_reductrai_cli_kind(const u_char *uri,
    size_t len);
void ngx_http_reductrai_cli_window_defaults(int64_t *window);
int ngx_http_reductrai_cli_window_parse(int64_t *window, const char *spec,
    char *err, size_t errlen);
char *ngx_http_reductrai_cli_window_format(char *buf, size_t size,
    int64_t ms);
void ngx_http_reductrai_cli_body_times(ngx_http_reductrai_cli_kind_e kind,
    const u_char *body, size_t len, ngx_http_reductrai_cli_times_t *t);
ngx_http_reductrai_cli_verdict_e ngx_http_reductrai_cli_window_judge(
    int64_t window, int64_t now_ms, int64_t oldest, int64_t newest);


/* ngx_http_reductrai_cli_checkpoint.c: record ids done, as ranges */
typedef struct ngx_http_reductrai_cli_ckpt_s  ngx_http_reductrai_cli_ckpt_t;

ngx_http_reductrai_cli_ckpt_t *ngx_http_reductrai_cli_ckpt_open(
    const char *path, char *err, size_t errlen);
int ngx_http_reductrai_cli_ckpt_done(ngx_http_reductrai_cli_ckpt_t *ck,
    const u_char *id, size_t len);
int ngx_http_reductrai_cli_ckpt_mark(ngx_http_reductrai_cli_ckpt_t *ck,
    const u_char *id, size_t len);
int ngx_http_reductrai_cli_ckpt_save(ngx_http_reductrai_cli_ckpt_t *ck);
uint64_t ngx_http_reductrai_cli_ckpt_count(ngx_http_reductrai_cli_ckpt_t *ck);
void ngx_http_reductrai_cli_ckpt_close(ngx_http_reductrai_cli_ckpt_t *ck);


#endif /* _NGX_HTTP_REDUCTRAI_CLI_H_INCLUDED_ */
