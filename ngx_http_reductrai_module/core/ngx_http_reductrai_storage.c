
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_storage.h"
#include "ngx_http_reductrai_http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#include <curl/curl.h>


typedef struct {
    const char  *name;
    size_t       offset;
    unsigned     secret:1;
    unsigned     backends:4;
} ngx_http_reductrai_param_t;


#define NGX_HTTP_REDUCTRAI_B_FILE   0x1
#define NGX_HTTP_REDUCTRAI_B_S3     0x2
#define NGX_HTTP_REDUCTRAI_B_GS     0x4
#define NGX_HTTP_REDUCTRAI_B_AZURE  0x8
#define NGX_HTTP_REDUCTRAI_B_HTTP   0xe

#define ngx_http_reductrai_conf_field(f)                                     \
    offsetof(ngx_http_reductrai_storage_conf_t, f)


static int ngx_http_reductrai_storage_split(ngx_http_reductrai_storage_t *st,
    const char *uri, const char *base, unsigned *mask, char *err,
    size_t errlen);
static int ngx_http_reductrai_storage_param(ngx_http_reductrai_storage_t *st,
    const char *param, unsigned mask, char *err, size_t errlen);
static int ngx_http_reductrai_secret_open(const char *path, char *err,
    size_t errlen);
static int ngx_http_reductrai_storage_cleartext(
    ngx_http_reductrai_storage_t *st, char *err, size_t errlen);
static int64_t ngx_http_reductrai_parse_size(const char *s);
static long ngx_http_reductrai_parse_msec(const char *s);
static void ngx_http_reductrai_conf_free(
    ngx_http_reductrai_storage_conf_t *conf);


/* the last secret file warning of this thread (read_secret_file) */
static __thread char  ngx_http_reductrai_secret_warn[320];


static const ngx_http_reductrai_param_t  ngx_http_reductrai_params[] = {
    { "region", ngx_http_reductrai_conf_field(region), 0,
      NGX_HTTP_REDUCTRAI_B_S3 | NGX_HTTP_REDUCTRAI_B_GS },
    { "endpoint", ngx_http_reductrai_conf_field(endpoint), 0,
      NGX_HTTP_REDUCTRAI_B_HTTP },
    { "style", ngx_http_reductrai_conf_field(style), 0,
      NGX_HTTP_REDUCTRAI_B_S3 | NGX_HTTP_REDUCTRAI_B_GS },
    { "access_key", ngx_http_reductrai_conf_field(access_key), 1,
      NGX_HTTP_REDUCTRAI_B_S3 | NGX_HTTP_REDUCTRAI_B_GS },
    { "secret_key", ngx_http_reductrai_conf_field(secret_key), 1,
      NGX_HTTP_REDUCTRAI_B_S3 | NGX_HTTP_REDUCTRAI_B_GS },
    { "session_token", ngx_http_reductrai_conf_field(session_token), 1,
      NGX_HTTP_REDUCTRAI_B_S3 },
    { "credentials_file", ngx_http_reductrai_conf_field(credentials_file), 0,
      NGX_HTTP_REDUCTRAI_B_GS },
    { "key", ngx_http_reductrai_conf_field(account_key), 1,
      NGX_HTTP_REDUCTRAI_B_AZURE },
    { "sas", ngx_http_reductrai_conf_field(sas), 1,
      NGX_HTTP_REDUCTRAI_B_AZURE },
    { "sse", ngx_http_reductrai_conf_field(sse), 0,
      NGX_HTTP_REDUCTRAI_B_S3 },
    { "kms_key_id", ngx_http_reductrai_conf_field(kms_key_id), 0,
      NGX_HTTP_REDUCTRAI_B_S3 },
    { "storage_class", ngx_http_reductrai_conf_field(storage_class), 0,
      NGX_HTTP_REDUCTRAI_B_S3 | NGX_HTTP_REDUCTRAI_B_GS
      | NGX_HTTP_REDUCTRAI_B_AZURE },
    { "ca_file", ngx_http_reductrai_conf_field(ca_file), 0,
      NGX_HTTP_REDUCTRAI_B_HTTP },
    { "anonymous", ngx_http_reductrai_conf_field(anonymous), 0,
      NGX_HTTP_REDUCTRAI_B_HTTP },
    { NULL, 0, 0, 0 }
};


static const struct {
    const char                                  *scheme;
    unsigned                                     mask;
    const ngx_http_reductrai_storage_backend_t  *backend;
} ngx_http_reductrai_backends[] = {
    { "file", NGX_HTTP_REDUCTRAI_B_FILE, &ngx_http_reductrai_storage_file },
    { "s3", NGX_HTTP_REDUCTRAI_B_S3, &ngx_http_reductrai_storage_s3 },
    { "gs", NGX_HTTP_REDUCTRAI_B_GS, &ngx_http_reductrai_storage_gcs },
    { "azure", NGX_HTTP_REDUCTRAI_B_AZURE,
      &ngx_http_reductrai_storage_azure },
    { NULL, 0, NULL }
};


ngx_http_reductrai_storage_t *
ngx_http_reductrai_storage_create(const char *uri, int nparams,
    char *const *params, const char *base, char *err, size_t errlen)
{
    int                            i;
    unsigned                       mask;
    ngx_http_reductrai_storage_t  *st;

    st = calloc(1, sizeof(ngx_http_reductrai_storage_t));
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    if (pthread_mutex_init(&st->creds.lock, NULL) != 0) {
        free(st);
        snprintf(err, errlen, "pthread_mutex_init() failed");
        return NULL;
    }

    st->conf.tls_verify = 1;
    st->conf.connect_timeout = 5000;
    st->conf.timeout = 300000;
    st->conf.multipart_threshold = 64 * 1024 * 1024;
    st->conf.part_size = 16 * 1024 * 1024;
    st->conf.file_mode = 0640;

    if (ngx_http_reductrai_storage_split(st, uri, base, &mask, err, errlen)
        != 0)
    {
        goto failed;
    }

    for (i = 0; i < nparams; i++) {
        if (ngx_http_reductrai_storage_param(st, params[i], mask, err, errlen)
            != 0)
        {
            goto failed;
        }
    }

    if (st->conf.anonymous != NULL
        && strcmp(st->conf.anonymous, "on") != 0
        && strcmp(st->conf.anonymous, "off") != 0)
    {
        snprintf(err, errlen, "anonymous must be \"on\" or \"off\"");
        goto failed;
    }

    if (st->backend->create(st, err, errlen) != 0
        || ngx_http_reductrai_storage_cleartext(st, err, errlen) != 0)
    {
        goto failed;
    }

    return st;

failed:

    ngx_http_reductrai_storage_destroy(st);

    return NULL;
}


/*
 * An Azure SAS travels in the query of every request, a GCS OAuth token in
 * its Authorization header: over http:// anyone on the path may take and
 * use them, so that needs insecure_http=on.  Loopback is allowed without
 * it: what goes to 127.0.0.0/8 or ::1 never leaves this host, and who can
 * read loopback traffic can read the secret files too (a local TLS proxy,
 * the test servers).  S3 and Azure Shared Key sign requests and never send
 * the secret itself.
 */

static int
ngx_http_reductrai_storage_cleartext(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen)
{
    size_t       n;
    const char  *ep, *host, *what;

    ep = st->conf.endpoint;

    if (ep == NULL || strncasecmp(ep, "http://", 7) != 0
        || st->conf.insecure_http)
    {
        return 0;
    }

    if (st->conf.sas != NULL) {
        what = "an Azure SAS";

    } else if (strcmp(st->backend->scheme, "s3") == 0
               && st->bucket != NULL && st->conf.access_key == NULL
               && strncmp(st->uri, "gs://", 5) == 0)
    {
        what = "a GCS OAuth token";

    } else {
        return 0;
    }

    host = ep + 7;
    n = strcspn(host, ":/?");

    if (host[0] == '[') {
        n = strcspn(host, "]") + 1;
    }

    if ((n == 9 && strncasecmp(host, "localhost", 9) == 0)
        || (n >= 9 && strncmp(host, "127.", 4) == 0)
        || (n == 5 && strncmp(host, "[::1]", 5) == 0))
    {
        return 0;
    }

    snprintf(err, errlen, "endpoint \"%s\" is http://: %s would be sent "
             "in clear text (use https://, or insecure_http=on if you mean "
             "it)", ep, what);

    return -1;
}


int
ngx_http_reductrai_storage_init(ngx_http_reductrai_storage_t *st, char *err,
    size_t errlen)
{
    return st->backend->init ? st->backend->init(st, err, errlen) : 0;
}


void
ngx_http_reductrai_storage_destroy(ngx_http_reductrai_storage_t *st)
{
    if (st == NULL) {
        return;
    }

    if (st->backend != NULL && st->backend->cleanup != NULL) {
        st->backend->cleanup(st);
    }

    ngx_http_reductrai_conf_free(&st->conf);
    (void) pthread_mutex_destroy(&st->creds.lock);

    free(st->uri);
    free(st->bucket);
    free(st->account);
    free(st->prefix);
    free(st);
}


const char *
ngx_http_reductrai_storage_credentials(ngx_http_reductrai_storage_t *st,
    char *failure, size_t size)
{
    if (size > 0) {
        (void) pthread_mutex_lock(&st->creds.lock);
        snprintf(failure, size, "%s", st->creds.failure);
        (void) pthread_mutex_unlock(&st->creds.lock);
    }

    return st->creds.source;
}


void
ngx_http_reductrai_storage_creds_source(ngx_http_reductrai_storage_t *st,
    const char *source)
{
    (void) pthread_mutex_lock(&st->creds.lock);
    st->creds.source = source;
    st->creds.failure[0] = '\0';
    (void) pthread_mutex_unlock(&st->creds.lock);
}


/* err NULL: the lookup succeeded */

void
ngx_http_reductrai_storage_creds_result(ngx_http_reductrai_creds_state_t *cs,
    const ngx_http_reductrai_storage_err_t *err)
{
    if (cs == NULL) {
        return;
    }

    (void) pthread_mutex_lock(&cs->lock);
    snprintf(cs->failure, sizeof(cs->failure), "%s",
             err ? err->message : "");
    (void) pthread_mutex_unlock(&cs->lock);
}


int
ngx_http_reductrai_storage_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}


size_t
ngx_http_reductrai_storage_path(ngx_http_reductrai_storage_t *st, char *buf,
    size_t size, const char *rel)
{
    int  n;

    n = snprintf(buf, size, "%s%s%s", st->prefix,
                 st->prefix[0] && rel[0] ? "/" : "", rel);

    if (n < 0 || (size_t) n >= size) {
        return 0;
    }

    return (size_t) n;
}


void
ngx_http_reductrai_storage_error(ngx_http_reductrai_storage_err_t *err,
    long status, const char *fmt, ...)
{
    char     *p;
    va_list   args;

    err->status = status;

    va_start(args, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);

    /* the message goes into one log line */
    for (p = err->message; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }
}


char *
ngx_http_reductrai_read_secret_file(const char *path, char *err,
    size_t errlen)
{
    int          fd;
    char        *buf;
    size_t       len;
    ssize_t      n;
    struct stat  sb;

    fd = ngx_http_reductrai_secret_open(path, err, errlen);
    if (fd == -1) {
        return NULL;
    }

    if (fstat(fd, &sb) == -1) {
        snprintf(err, errlen, "fstat() \"%s\" failed (%d: %s)", path,
                 errno, strerror(errno));
        (void) close(fd);
        return NULL;
    }

    if (!S_ISREG(sb.st_mode) || sb.st_size > 1024 * 1024) {
        snprintf(err, errlen, "\"%s\" is not a small regular file", path);
        (void) close(fd);
        return NULL;
    }

    if (sb.st_mode & (S_IRGRP | S_IROTH)) {
        snprintf(ngx_http_reductrai_secret_warn,
                 sizeof(ngx_http_reductrai_secret_warn),
                 "the secret file \"%s\" may be read by %s (mode %04o): "
                 "make it readable by its owner only", path,
                 (sb.st_mode & S_IROTH) ? "anyone" : "its group",
                 (unsigned) (sb.st_mode & 07777));
    }

    buf = malloc((size_t) sb.st_size + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        (void) close(fd);
        return NULL;
    }

    len = 0;

    while (len < (size_t) sb.st_size) {
        n = read(fd, buf + len, (size_t) sb.st_size - len);
        if (n <= 0) {
            break;
        }

        len += (size_t) n;
    }

    (void) close(fd);

    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }

    buf[len] = '\0';

    return buf;
}


/*
 * O_NONBLOCK: opening a FIFO without a writer must not wait (nginx -t would
 * hang); O_NOFOLLOW: a link is followed only into its own directory.
 */

static int
ngx_http_reductrai_secret_open(const char *path, char *err, size_t errlen)
{
    int     fd;
    char   *real, *dir, *rdir, *slash;
    size_t  len;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (fd != -1 || errno != ELOOP) {
        if (fd == -1) {
            snprintf(err, errlen, "open() \"%s\" failed (%d: %s)", path,
                     errno, strerror(errno));
        }

        return fd;
    }

    real = realpath(path, NULL);
    dir = strdup(path);
    rdir = NULL;

    if (dir != NULL) {
        slash = strrchr(dir, '/');

        if (slash == NULL) {
            strcpy(dir, ".");

        } else {
            slash[slash == dir ? 1 : 0] = '\0';
        }

        rdir = realpath(dir, NULL);
    }

    len = rdir ? strlen(rdir) : 0;

    if (real != NULL && rdir != NULL && strncmp(real, rdir, len) == 0
        && (real[len] == '/' || (len == 1 && rdir[0] == '/')))
    {
        fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

        if (fd == -1) {
            snprintf(err, errlen, "open() \"%s\" failed (%d: %s)", real,
                     errno, strerror(errno));
        }

    } else {
        snprintf(err, errlen, "\"%s\" is a symbolic link out of its "
                 "directory", path);
    }

    free(real);
    free(dir);
    free(rdir);

    return fd;
}


int
ngx_http_reductrai_secret_warning(char *buf, size_t size)
{
    if (ngx_http_reductrai_secret_warn[0] == '\0') {
        return 0;
    }

    snprintf(buf, size, "%s", ngx_http_reductrai_secret_warn);
    ngx_http_reductrai_secret_warn[0] = '\0';

    return 1;
}


void
ngx_http_reductrai_storage_error_prefix(ngx_http_reductrai_storage_err_t *err,
    const char *what)
{
    size_t  w, len, room;

    w = strlen(what) + 2;
    room = sizeof(err->message) - 1;

    if (w >= room) {
        return;
    }

    /* the message's tail gives way, as snprintf() would cut it */

    len = strnlen(err->message, room);
    len = len < room - w ? len : room - w;

    memmove(err->message + w, err->message, len);
    memcpy(err->message, what, w - 2);
    memcpy(err->message + w - 2, ": ", 2);
    err->message[w + len] = '\0';
}


void
ngx_http_reductrai_wipe(void *p, size_t n)
{
    volatile u_char  *v;

    /* volatile: a memset() before free() or return may be optimized out */

    for (v = p; n; n--) {
        *v++ = 0;
    }
}


/* wiped before its memory goes back to the allocator */

void
ngx_http_reductrai_free_secret(char *secret)
{
    if (secret != NULL) {
        ngx_http_reductrai_wipe(secret, strlen(secret));
        free(secret);
    }
}


static int
ngx_http_reductrai_storage_split(ngx_http_reductrai_storage_t *st,
    const char *uri, const char *base, unsigned *mask, char *err,
    size_t errlen)
{
    int          i;
    size_t       len;
    const char  *sep, *rest, *slash, *second;

    sep = strstr(uri, "://");
    if (sep == NULL) {
        snprintf(err, errlen, "\"%s\" is not a storage URI "
                 "(file://, s3://, gs:// or azure://)", uri);
        return -1;
    }

    for (i = 0; ngx_http_reductrai_backends[i].scheme; i++) {
        len = strlen(ngx_http_reductrai_backends[i].scheme);

        if ((size_t) (sep - uri) == len
            && strncasecmp(uri, ngx_http_reductrai_backends[i].scheme, len)
               == 0)
        {
            break;
        }
    }

    if (ngx_http_reductrai_backends[i].scheme == NULL) {
        snprintf(err, errlen, "unknown storage scheme in \"%s\" "
                 "(file://, s3://, gs:// or azure://)", uri);
        return -1;
    }

    if (ngx_http_reductrai_backends[i].backend == NULL) {
        snprintf(err, errlen, "the %s:// backend is not available in this "
                 "build", ngx_http_reductrai_backends[i].scheme);
        return -1;
    }

    st->backend = ngx_http_reductrai_backends[i].backend;
    *mask = ngx_http_reductrai_backends[i].mask;
    rest = sep + 3;

    if (*mask == NGX_HTTP_REDUCTRAI_B_FILE) {
        if (rest[0] == '\0') {
            snprintf(err, errlen, "no directory in \"%s\"", uri);
            return -1;
        }

        if (rest[0] == '/' || base == NULL) {
            st->bucket = strdup(rest);

        } else {
            st->bucket = malloc(strlen(base) + strlen(rest) + 2);
            if (st->bucket != NULL) {
                sprintf(st->bucket, "%s%s%s", base,
                        base[0] && base[strlen(base) - 1] != '/' ? "/" : "",
                        rest);
            }
        }

        st->prefix = strdup("");

        if (st->bucket == NULL || st->prefix == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }

        /* the directory itself is the root: no trailing slash */
        len = strlen(st->bucket);
        while (len > 1 && st->bucket[len - 1] == '/') {
            st->bucket[--len] = '\0';
        }

        st->uri = malloc(len + 8);
        if (st->uri == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }

        sprintf(st->uri, "file://%s", st->bucket);

        return 0;
    }

    /* bucket[/prefix], or account/container[/prefix] for Azure */

    slash = strchr(rest, '/');

    if (*mask == NGX_HTTP_REDUCTRAI_B_AZURE) {
        if (slash == NULL || slash == rest || slash[1] == '\0'
            || slash[1] == '/')
        {
            snprintf(err, errlen, "\"%s\" must be "
                     "azure://account/container[/prefix]", uri);
            return -1;
        }

        st->account = strndup(rest, (size_t) (slash - rest));
        rest = slash + 1;
        slash = strchr(rest, '/');

        if (st->account == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    len = slash ? (size_t) (slash - rest) : strlen(rest);

    if (len == 0) {
        snprintf(err, errlen, "no bucket in \"%s\"", uri);
        return -1;
    }

    st->bucket = strndup(rest, len);

    second = slash ? slash + 1 : "";
    st->prefix = strdup(second);

    if (st->bucket == NULL || st->prefix == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    len = strlen(st->prefix);
    while (len > 0 && st->prefix[len - 1] == '/') {
        st->prefix[--len] = '\0';
    }

    st->uri = strdup(uri);
    if (st->uri == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    return 0;
}


static int
ngx_http_reductrai_storage_param(ngx_http_reductrai_storage_t *st,
    const char *param, unsigned mask, char *err, size_t errlen)
{
    int          i;
    char       **field, *value;
    size_t       nlen;
    const char  *eq, *name;

    eq = strchr(param, '=');
    if (eq == NULL || eq == param) {
        snprintf(err, errlen, "invalid parameter \"%s\" (name=value)", param);
        return -1;
    }

    nlen = (size_t) (eq - param);
    value = (char *) eq + 1;

#define ngx_http_reductrai_is(n)                                             \
    (nlen == sizeof(n) - 1 && strncmp(param, n, nlen) == 0)

    if (ngx_http_reductrai_is("tls_verify")) {
        if (strcmp(value, "on") == 0) {
            st->conf.tls_verify = 1;

        } else if (strcmp(value, "off") == 0) {
            st->conf.tls_verify = 0;

        } else {
            snprintf(err, errlen, "tls_verify must be \"on\" or \"off\"");
            return -1;
        }

        return (mask & NGX_HTTP_REDUCTRAI_B_HTTP) ? 0
               : (snprintf(err, errlen, "\"tls_verify\" does not apply to "
                           "this storage"), -1);
    }

    if (ngx_http_reductrai_is("insecure_http")) {
        if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0) {
            snprintf(err, errlen, "insecure_http must be \"on\" or \"off\"");
            return -1;
        }

        st->conf.insecure_http = (value[1] == 'n');

        return (mask & NGX_HTTP_REDUCTRAI_B_HTTP) ? 0
               : (snprintf(err, errlen, "\"insecure_http\" does not apply "
                           "to this storage"), -1);
    }

    if (ngx_http_reductrai_is("mode")) {
        char  *end;
        long   mode;

        mode = strtol(value, &end, 8);

        if (*value == '\0' || *end != '\0' || mode < 0 || mode > 0777
            || (mode & 0600) != 0600)
        {
            snprintf(err, errlen, "invalid mode \"%s\" (octal, 0600 to "
                     "0777, readable and writable by the owner)", value);
            return -1;
        }

        st->conf.file_mode = (int) mode;

        return (mask & NGX_HTTP_REDUCTRAI_B_FILE) ? 0
               : (snprintf(err, errlen, "\"mode\" does not apply to this "
                           "storage"), -1);
    }

    if (ngx_http_reductrai_is("connect_timeout")
        || ngx_http_reductrai_is("timeout"))
    {
        long  ms = ngx_http_reductrai_parse_msec(value);

        if (ms <= 0) {
            snprintf(err, errlen, "invalid time \"%s\" in \"%.*s\"", value,
                     (int) nlen, param);
            return -1;
        }

        if (nlen == 7) {
            st->conf.timeout = ms;

        } else {
            st->conf.connect_timeout = ms;
        }

        return 0;
    }

    if (ngx_http_reductrai_is("multipart_threshold")
        || ngx_http_reductrai_is("part_size"))
    {
        int64_t  size = ngx_http_reductrai_parse_size(value);

        /* S3 parts other than the last must be 5 MiB at least */
        if (size < 5 * 1024 * 1024) {
            snprintf(err, errlen, "\"%.*s\" must be a size of 5m or more",
                     (int) nlen, param);
            return -1;
        }

        if (nlen == 9) {
            st->conf.part_size = size;

        } else {
            st->conf.multipart_threshold = size;
        }

        return (mask & NGX_HTTP_REDUCTRAI_B_HTTP) ? 0
               : (snprintf(err, errlen, "\"%.*s\" does not apply to this "
                           "storage", (int) nlen, param), -1);
    }

    if (ngx_http_reductrai_is("secret_key_file")
        || ngx_http_reductrai_is("key_file"))
    {
        /*
         * Read now, in the master process, which may read files the
         * worker user cannot; the secret never appears in "nginx -T".
         */

        field = nlen == 8 ? &st->conf.account_key : &st->conf.secret_key;
        name = nlen == 8 ? "key_file" : "secret_key_file";

        if ((nlen == 8 && !(mask & NGX_HTTP_REDUCTRAI_B_AZURE))
            || (nlen != 8
                && !(mask & (NGX_HTTP_REDUCTRAI_B_S3
                             | NGX_HTTP_REDUCTRAI_B_GS))))
        {
            snprintf(err, errlen, "\"%s\" does not apply to this storage",
                     name);
            return -1;
        }

        if (*field != NULL) {
            snprintf(err, errlen, "duplicate \"%s\"", name);
            return -1;
        }

        *field = ngx_http_reductrai_read_secret_file(value, err, errlen);

        return *field != NULL ? 0 : -1;
    }

#undef ngx_http_reductrai_is

    for (i = 0; ngx_http_reductrai_params[i].name; i++) {
        name = ngx_http_reductrai_params[i].name;

        if (strlen(name) == nlen && strncmp(param, name, nlen) == 0) {
            break;
        }
    }

    if (ngx_http_reductrai_params[i].name == NULL) {
        snprintf(err, errlen, "unknown parameter \"%.*s\"", (int) nlen,
                 param);
        return -1;
    }

    if (!(ngx_http_reductrai_params[i].backends & mask)) {
        snprintf(err, errlen, "\"%.*s\" does not apply to this storage",
                 (int) nlen, param);
        return -1;
    }

    field = (char **) ((u_char *) &st->conf
                       + ngx_http_reductrai_params[i].offset);

    if (*field != NULL) {
        snprintf(err, errlen, "duplicate \"%.*s\"", (int) nlen, param);
        return -1;
    }

    if (value[0] == '\0') {
        snprintf(err, errlen, "empty \"%.*s\"", (int) nlen, param);
        return -1;
    }

    /*
     * field points into st->conf (the parameter table's offset), which
     * ngx_http_reductrai_conf_free() frees with st; the analyzer cannot
     * follow the offset and calls the copy leaked
     */
NGX_HTTP_REDUCTRAI_ANALYZER_IGNORE("-Wanalyzer-malloc-leak")
    *field = strdup(value);
    if (*field == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
NGX_HTTP_REDUCTRAI_ANALYZER_END

    return 0;
}


static int64_t
ngx_http_reductrai_parse_size(const char *s)
{
    char     *end;
    int64_t   v, scale;

    v = strtoll(s, &end, 10);
    if (end == s || v < 0) {
        return -1;
    }

    scale = 1;

    switch (*end) {
    case 'k': case 'K':
        scale = 1024;
        end++;
        break;
    case 'm': case 'M':
        scale = 1024 * 1024;
        end++;
        break;
    case 'g': case 'G':
        scale = 1024 * 1024 * 1024;
        end++;
        break;
    }

    if (*end != '\0' || v > INT64_MAX / scale) {
        return -1;
    }

    return v * scale;
}


static long
ngx_http_reductrai_parse_msec(const char *s)
{
    char  *end;
    long   v;

    v = strtol(s, &end, 10);
    if (end == s || v < 0 || v > 86400000) {
        return -1;
    }

    if (strcmp(end, "ms") == 0) {
        return v;
    }

    if (*end == '\0' || strcmp(end, "s") == 0) {
        return v * 1000;
    }

    if (strcmp(end, "m") == 0) {
        return v * 60000;
    }

    return -1;
}


static void
ngx_http_reductrai_conf_free(ngx_http_reductrai_storage_conf_t *conf)
{
    free(conf->region);
    free(conf->endpoint);
    free(conf->style);
    free(conf->access_key);
    ngx_http_reductrai_free_secret(conf->secret_key);
    ngx_http_reductrai_free_secret(conf->session_token);
    free(conf->credentials_file);
    ngx_http_reductrai_free_secret(conf->credentials);
    ngx_http_reductrai_free_secret(conf->account_key);
    ngx_http_reductrai_free_secret(conf->sas);
    free(conf->sse);
    free(conf->kms_key_id);
    free(conf->storage_class);
    free(conf->ca_file);
    free(conf->anonymous);
}
