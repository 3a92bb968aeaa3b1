
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The storage interface: where sealed segments go.  One backend is one
 * file (file://, s3://, gs://, azure://).  Objects are written once under a
 * deterministic key and are never half-visible: a backend either completes
 * an object or leaves nothing under its key.  Calls block; the module makes
 * them only in its upload thread pool, the CLI in its own threads.
 */


#ifndef _NGX_HTTP_REDUCTRAI_STORAGE_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_STORAGE_H_INCLUDED_


#include "ngx_http_reductrai_core.h"

#include <pthread.h>


typedef enum {
    NGX_HTTP_REDUCTRAI_STORAGE_OK = 0,
    NGX_HTTP_REDUCTRAI_STORAGE_RETRY,       /* may heal: network, 5xx, 429 */
    NGX_HTTP_REDUCTRAI_STORAGE_FATAL,       /* will not heal by retrying */
    NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND
} ngx_http_reductrai_storage_rc_e;


typedef struct {
    long                 status;            /* HTTP status, 0 if none */
    char                 message[256];      /* one line, never a secret */
} ngx_http_reductrai_storage_err_t;


typedef struct {
    char                *region;
    char                *endpoint;
    char                *style;             /* "path" or "virtual" */
    char                *access_key;
    char                *secret_key;
    char                *session_token;
    char                *credentials_file;  /* GCS service account JSON */
    char                *credentials;       /* its content, read at start */
    char                *account_key;       /* Azure Shared Key */
    char                *sas;               /* Azure SAS token */
    char                *sse;
    char                *kms_key_id;
    char                *storage_class;
    char                *ca_file;
    char                *anonymous;         /* "on": send unsigned */
    int                  tls_verify;
    int                  insecure_http;     /* tokens over http:// */
    int                  file_mode;         /* file:// objects */
    long                 connect_timeout;   /* ms */
    long                 timeout;           /* ms, for one request */
    int64_t              multipart_threshold;
    int64_t              part_size;
} ngx_http_reductrai_storage_conf_t;


typedef struct ngx_http_reductrai_storage_s  ngx_http_reductrai_storage_t;


/*
 * Where a storage's credentials come from, for /health and the log: the
 * source is a constant string set by init(), the failure the reason the
 * last lookup failed ("" after one succeeded), written by upload threads.
 */
typedef struct {
    pthread_mutex_t      lock;
    const char          *source;
    char                 failure[256];
} ngx_http_reductrai_creds_state_t;

/* what the HTTP backends share (ngx_http_reductrai_http.h) */
typedef struct ngx_http_reductrai_http_store_s
    ngx_http_reductrai_http_store_t;

/* called for every object; returns 0 to go on, non-zero to stop */
typedef int (*ngx_http_reductrai_list_pt)(void *data, const char *key,
    int64_t size);


typedef struct {
    const char          *scheme;

    /* configuration time: validate, no I/O but reading key files */
    int                (*create)(ngx_http_reductrai_storage_t *st,
                                 char *err, size_t errlen);
    /* in each process that uses it: credentials from the environment */
    int                (*init)(ngx_http_reductrai_storage_t *st,
                               char *err, size_t errlen);

    ngx_http_reductrai_storage_rc_e
                       (*put)(ngx_http_reductrai_storage_t *st,
                              const char *key, int fd, int64_t size,
                              ngx_http_reductrai_storage_err_t *err);
    /* offset < 0 asks for the last -offset bytes; length < 0 to the end */
    ngx_http_reductrai_storage_rc_e
                       (*get)(ngx_http_reductrai_storage_t *st,
                              const char *key, int64_t offset,
                              int64_t length, ngx_http_reductrai_sink_pt sink,
                              void *data,
                              ngx_http_reductrai_storage_err_t *err);
    ngx_http_reductrai_storage_rc_e
                       (*head)(ngx_http_reductrai_storage_t *st,
                               const char *key, int64_t *size,
                               ngx_http_reductrai_storage_err_t *err);
    /* keys under prefix, in no particular order */
    ngx_http_reductrai_storage_rc_e
                       (*list)(ngx_http_reductrai_storage_t *st,
                               const char *prefix,
                               ngx_http_reductrai_list_pt handler,
                               void *data,
                               ngx_http_reductrai_storage_err_t *err);
    /* can we write? (a cheap request, for /health while idle) */
    ngx_http_reductrai_storage_rc_e
                       (*probe)(ngx_http_reductrai_storage_t *st,
                                ngx_http_reductrai_storage_err_t *err);

    void               (*cleanup)(ngx_http_reductrai_storage_t *st);
} ngx_http_reductrai_storage_backend_t;


struct ngx_http_reductrai_storage_s {
    const ngx_http_reductrai_storage_backend_t  *backend;
    const ngx_http_reductrai_http_store_t       *http;    /* HTTP backends */
    char                                        *uri;     /* no secrets */
    char                                        *bucket;  /* file: dir */
    char                                        *account; /* azure */
    char                                        *prefix;  /* no '/' at end */
    ngx_http_reductrai_storage_conf_t            conf;
    ngx_http_reductrai_creds_state_t             creds;
    void                                        *data;
};


/*
 * Parses "scheme://…" and "name=value" parameters (as in the
 * reductrai_storage directive).  A relative file:// path is taken relative
 * to base.  On failure returns NULL with a message in err.
 */
ngx_http_reductrai_storage_t *ngx_http_reductrai_storage_create(
    const char *uri, int nparams, char *const *params, const char *base,
    char *err, size_t errlen);
int ngx_http_reductrai_storage_init(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen);
void ngx_http_reductrai_storage_destroy(ngx_http_reductrai_storage_t *st);

/*
 * The credential source in use ("web identity", "metadata server", ...;
 * NULL when the storage needs none) and, in failure (size bytes), why
 * its last lookup failed, "" when it did not.  Never a secret.
 */
const char *ngx_http_reductrai_storage_credentials(
    ngx_http_reductrai_storage_t *st, char *failure, size_t size);
/* the backends report their source and each lookup's outcome */
void ngx_http_reductrai_storage_creds_source(ngx_http_reductrai_storage_t *st,
    const char *source);
void ngx_http_reductrai_storage_creds_result(
    ngx_http_reductrai_creds_state_t *cs,
    const ngx_http_reductrai_storage_err_t *err);

/* libcurl's global state, once per process before any thread uses it */
int ngx_http_reductrai_storage_global_init(void);

/* a key under the storage's prefix, e.g. for listing one stream */
size_t ngx_http_reductrai_storage_path(ngx_http_reductrai_storage_t *st,
    char *buf, size_t size, const char *rel);

void ngx_http_reductrai_storage_error(ngx_http_reductrai_storage_err_t *err,
    long status, const char *fmt, ...);
/* puts "what: " before the message, which says what failed */
void ngx_http_reductrai_storage_error_prefix(
    ngx_http_reductrai_storage_err_t *err, const char *what);

/*
 * Reads a whole small file (a key or a secret), trailing newline dropped.
 * Only a regular file: a FIFO or a directory is refused at once (never
 * waited on); a symbolic link only when it stays within its own directory
 * (Kubernetes mounts secrets as key -> ..data/key).  A file that group or
 * others may read is read, and a warning is kept for the calling thread:
 * secret_warning() copies it into buf and forgets it (returns 0 if none).
 */
char *ngx_http_reductrai_read_secret_file(const char *path, char *err,
    size_t errlen);
int ngx_http_reductrai_secret_warning(char *buf, size_t size);
/* zeroes memory that held a secret, in a way the compiler keeps */
void ngx_http_reductrai_wipe(void *p, size_t n);
/* wipes a secret (NUL-terminated, or NULL), then frees it */
void ngx_http_reductrai_free_secret(char *secret);


extern const ngx_http_reductrai_storage_backend_t
    ngx_http_reductrai_storage_file;


#endif /* _NGX_HTTP_REDUCTRAI_STORAGE_H_INCLUDED_ */
