
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_http.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/hmac.h>


#define NGX_HTTP_REDUCTRAI_HTTP_PART_TRIES  3


static void ngx_http_reductrai_http_free(ngx_http_reductrai_http_t *h);
static int ngx_http_reductrai_http_progress(void *data, curl_off_t dltotal,
    curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_run(
    ngx_http_reductrai_http_t *h, ngx_http_reductrai_storage_err_t *err);
static size_t ngx_http_reductrai_http_read(char *buf, size_t size,
    size_t nitems, void *data);
static int ngx_http_reductrai_http_seek(void *data, curl_off_t offset,
    int origin);
static size_t ngx_http_reductrai_http_write(char *p, size_t size,
    size_t nmemb, void *data);
static size_t ngx_http_reductrai_http_header_in(char *p, size_t size,
    size_t nitems, void *data);
static int ngx_http_reductrai_http_window_in(ngx_http_reductrai_http_t *h,
    const u_char *p, size_t n);
static void ngx_http_reductrai_http_reason(ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_storage_err_t *err);
static int64_t ngx_http_reductrai_http_atoll(const char *p, const char *end,
    const char **next);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_fetch(
    ngx_http_reductrai_storage_t *st, const char *key,
    ngx_http_reductrai_window_t *w, ngx_http_reductrai_storage_err_t *err);
static void ngx_http_reductrai_http_range(char *buf, size_t size,
    const char *name, ngx_http_reductrai_window_t *w);
static int ngx_http_reductrai_http_code_in(ngx_http_reductrai_http_t *h,
    const char *const *codes);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_exists(
    ngx_http_reductrai_storage_t *st, const char *key,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_put_file(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    char *sha256_hex, char *md5_b64, EVP_MD_CTX *whole,
    ngx_http_reductrai_storage_err_t *err);
static int ngx_http_reductrai_http_list_items(
    const ngx_http_reductrai_http_store_t *store, const char *page,
    size_t len, ngx_http_reductrai_list_pt handler, void *data);


/*
 * Every handle made, for freeing them when the last HTTP storage goes.
 * Not a thread-specific key with a destructor: nginx does not join its
 * pool's threads on exit, so a destructor (code of this module) could
 * still run in an exiting thread while the main thread unloads the module.
 */
static pthread_mutex_t             ngx_http_reductrai_http_lock =
                                       PTHREAD_MUTEX_INITIALIZER;
static ngx_http_reductrai_http_t  *ngx_http_reductrai_http_all;
static unsigned                    ngx_http_reductrai_http_users;
static unsigned                    ngx_http_reductrai_http_generation;

/*
 * Set by an exiting worker past its shutdown timeout, read by transfers in
 * its threads: a stalled upload must not hold the worker for the storage's
 * timeout (the segment stays in the spool for the next worker).
 */
static volatile sig_atomic_t       ngx_http_reductrai_http_cancelled;

static __thread ngx_http_reductrai_http_t  *ngx_http_reductrai_http_mine;
static __thread unsigned                    ngx_http_reductrai_http_mine_gen;


void
ngx_http_reductrai_http_cancel(void)
{
    ngx_http_reductrai_http_cancelled = 1;
}


/* libcurl calls it at least once a second, even while nothing moves */

static int
ngx_http_reductrai_http_progress(void *data, curl_off_t dltotal,
    curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    return ngx_http_reductrai_http_cancelled ? 1 : 0;
}


ngx_http_reductrai_http_t *
ngx_http_reductrai_http_begin(const ngx_http_reductrai_storage_conf_t *conf,
    const char *method, const char *url,
    ngx_http_reductrai_storage_err_t *err)
{
    long                        verify;
    CURL                       *c;
    ngx_http_reductrai_http_t  *h;

    /*
     * One handle per thread, kept between requests: libcurl keeps the
     * connections (and TLS sessions) of a handle open for the next
     * request.
     */

    h = ngx_http_reductrai_http_mine;

    if (h != NULL
        && ngx_http_reductrai_http_mine_gen
           != __atomic_load_n(&ngx_http_reductrai_http_generation,
                              __ATOMIC_ACQUIRE))
    {
        /* freed with the storage it served */
        h = NULL;
    }

    if (h == NULL) {
        h = calloc(1, sizeof(ngx_http_reductrai_http_t));
        if (h == NULL) {
            ngx_http_reductrai_storage_error(err, 0, "out of memory");
            return NULL;
        }

        h->curl = curl_easy_init();
        if (h->curl == NULL) {
            free(h);
            ngx_http_reductrai_storage_error(err, 0, "curl_easy_init() "
                                             "failed");
            return NULL;
        }

        (void) pthread_mutex_lock(&ngx_http_reductrai_http_lock);

        h->next = ngx_http_reductrai_http_all;
        ngx_http_reductrai_http_all = h;
        ngx_http_reductrai_http_mine_gen = ngx_http_reductrai_http_generation;

        (void) pthread_mutex_unlock(&ngx_http_reductrai_http_lock);

        ngx_http_reductrai_http_mine = h;
    }

    c = h->curl;

    /* what the previous request left */
    curl_slist_free_all(h->headers);
    h->headers = NULL;
    curl_easy_reset(c);

    h->conf = conf;
    h->errbuf[0] = '\0';
    h->fd = -1;
    h->offset = 0;
    h->length = 0;
    h->sent = 0;
    h->mem = NULL;
    h->status = 0;
    h->content_length = -1;
    h->range_start = -1;
    h->range_total = -1;
    h->etag[0] = '\0';
    h->body.len = 0;
    h->body_truncated = 0;
    h->window = NULL;
    memset(h->secrets, 0, sizeof(h->secrets));

    if (h->body.cap > 1024 * 1024) {
        /* a large listing once must not stay in memory for good */
        ngx_http_reductrai_buf_free(&h->body);
    }

    verify = conf->tls_verify ? 1L : 0L;

    if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf) != CURLE_OK
#if LIBCURL_VERSION_NUM >= 0x075500
        || curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https")
           != CURLE_OK
#else
        || curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                            (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS))
           != CURLE_OK
#endif
        || curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
                            (long) CURL_HTTP_VERSION_1_1) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                            conf->connect_timeout) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                            conf->timeout >= 1000 ? conf->timeout / 1000
                                                  : 1L) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L)
           != CURLE_OK
        || (conf->ca_file != NULL
            && curl_easy_setopt(c, CURLOPT_CAINFO, conf->ca_file)
               != CURLE_OK)
        || curl_easy_setopt(c, CURLOPT_USERAGENT,
                            "reductrai/" NGX_HTTP_REDUCTRAI_VERSION)
           != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_WRITEFUNCTION,
                            ngx_http_reductrai_http_write) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_WRITEDATA, h) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_HEADERFUNCTION,
                            ngx_http_reductrai_http_header_in) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_HEADERDATA, h) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION,
                            ngx_http_reductrai_http_progress) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) != CURLE_OK)
    {
        ngx_http_reductrai_storage_error(err, 0, "curl_easy_setopt() "
                                         "failed");
        return NULL;
    }

    if (strcmp(method, "HEAD") == 0) {
        (void) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);

    } else if (strcmp(method, "PUT") == 0) {
        (void) curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        (void) curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                                (curl_off_t) 0);

    } else if (strcmp(method, "POST") == 0) {
        (void) curl_easy_setopt(c, CURLOPT_POST, 1L);
        (void) curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                                (curl_off_t) 0);

    } else if (strcmp(method, "GET") != 0) {
        (void) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }

    (void) curl_easy_setopt(c, CURLOPT_READFUNCTION,
                            ngx_http_reductrai_http_read);
    (void) curl_easy_setopt(c, CURLOPT_READDATA, h);
    (void) curl_easy_setopt(c, CURLOPT_SEEKFUNCTION,
                            ngx_http_reductrai_http_seek);
    (void) curl_easy_setopt(c, CURLOPT_SEEKDATA, h);

    return h;
}


int
ngx_http_reductrai_http_header(ngx_http_reductrai_http_t *h,
    const char *fmt, ...)
{
    int                 n;
    char                line[4096];
    va_list             args;
    struct curl_slist  *l;

    va_start(args, fmt);
    n = vsnprintf(line, sizeof(line), fmt, args);
    va_end(args);

    if (n < 0 || (size_t) n >= sizeof(line)) {
        return -1;
    }

    l = curl_slist_append(h->headers, line);
    if (l == NULL) {
        return -1;
    }

    h->headers = l;

    return 0;
}


void
ngx_http_reductrai_http_body_fd(ngx_http_reductrai_http_t *h, int fd,
    int64_t offset, int64_t length)
{
    h->fd = fd;
    h->offset = offset;
    h->length = length;
    h->mem = NULL;

    (void) curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE,
                            (curl_off_t) length);
    (void) curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t) length);
}


void
ngx_http_reductrai_http_body_mem(ngx_http_reductrai_http_t *h,
    const u_char *p, size_t len)
{
    h->fd = -1;
    h->mem = p;
    h->offset = 0;
    h->length = (int64_t) len;

    (void) curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE,
                            (curl_off_t) len);
    (void) curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t) len);
}


/* an OAuth2 or STS request: a form in memory, which h does not copy */

int
ngx_http_reductrai_http_form(ngx_http_reductrai_http_t *h, const char *body,
    size_t len, ngx_http_reductrai_storage_err_t *err)
{
    if (ngx_http_reductrai_http_header(h, "Content-Type: "
                                       "application/x-www-form-urlencoded")
        != 0)
    {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return -1;
    }

    ngx_http_reductrai_http_body_mem(h, (const u_char *) body, len);

    return 0;
}


void
ngx_http_reductrai_http_secret(ngx_http_reductrai_http_t *h,
    const char *secret)
{
    size_t  i;

    for (i = 0; i < sizeof(h->secrets) / sizeof(h->secrets[0]); i++) {
        if (h->secrets[i] == NULL) {
            h->secrets[i] = secret;
            return;
        }
    }
}


ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_perform(ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_storage_rc_e  rc;

    rc = ngx_http_reductrai_http_run(h, err);

    /* the secrets' memory may go (or be wiped) once the request is done */
    memset(h->secrets, 0, sizeof(h->secrets));

    return rc;
}


void
ngx_http_reductrai_http_body_wipe(ngx_http_reductrai_http_t *h)
{
    ngx_http_reductrai_wipe(h->body.data, h->body.len);
    h->body.len = 0;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_run(ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_storage_err_t *err)
{
    long      status;
    CURLcode  rc;

    if (h->headers != NULL
        && curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers)
           != CURLE_OK)
    {
        ngx_http_reductrai_storage_error(err, 0, "curl_easy_setopt() "
                                         "failed");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    rc = curl_easy_perform(h->curl);

    status = 0;
    (void) curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    h->status = status;

    if (h->window != NULL && h->window->failed) {
        ngx_http_reductrai_storage_error(err, status, "output failed");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    if (rc == CURLE_ABORTED_BY_CALLBACK && ngx_http_reductrai_http_cancelled)
    {
        ngx_http_reductrai_storage_error(err, 0, "cancelled: the worker is "
                                         "exiting");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    if (rc != CURLE_OK) {
        ngx_http_reductrai_storage_error(err, 0, "%s",
                                         h->errbuf[0] ? h->errbuf
                                         : curl_easy_strerror(rc));
        ngx_http_reductrai_http_scrub_all(h, err);

        /*
         * A refused or reset connection, a timeout, a DNS failure: all may
         * heal.  TLS verification failures are configuration, but they
         * also heal when the store's certificate is fixed.
         */
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    if (status >= 200 && status < 300) {
        err->status = status;
        err->message[0] = '\0';
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    ngx_http_reductrai_http_reason(h, err);

    if (status == 404) {
        return NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND;
    }

    if (status >= 500 || status == 429 || status == 408 || status == 307) {
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
}


int
ngx_http_reductrai_http_window_next(ngx_http_reductrai_window_t *w,
    int64_t *from, int64_t *to)
{
    if (w->empty || (w->end >= 0 && w->start + w->done >= w->end)) {
        return 0;
    }

    *from = w->start + w->done;
    *to = w->end >= 0 ? w->end - 1 : -1;

    return 1;
}


ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_open(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, const char *origin, const char *base,
    const char *extra, char *path, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err)
{
    int   n;
    char  ekey[NGX_HTTP_REDUCTRAI_HTTP_URL_MAX];
    char  url[NGX_HTTP_REDUCTRAI_HTTP_URL_MAX];

    *hp = NULL;

    if (req->key != NULL) {
        if (ngx_http_reductrai_http_uri_encode(ekey, sizeof(ekey), req->key, 1)
            == 0)
        {
            ngx_http_reductrai_storage_error(err, 0, "key too long");
            return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
        }

        n = snprintf(path, NGX_HTTP_REDUCTRAI_HTTP_URL_MAX, "%s/%s", base,
                     ekey);

    } else {
        n = snprintf(path, NGX_HTTP_REDUCTRAI_HTTP_URL_MAX, "%s",
                     base[0] ? base : "/");
    }

    if (n < 0 || n >= NGX_HTTP_REDUCTRAI_HTTP_URL_MAX
        || snprintf(url, sizeof(url), "%s%s%s%s%s%s", origin, path,
                    req->query[0] || extra ? "?" : "", req->query,
                    req->query[0] && extra ? "&" : "", extra ? extra : "")
           >= (int) sizeof(url))
    {
        ngx_http_reductrai_storage_error(err, 0, "URL too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    *hp = ngx_http_reductrai_http_begin(&st->conf, req->method, url, err);

    return *hp != NULL ? NGX_HTTP_REDUCTRAI_STORAGE_OK
                       : NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
}


void
ngx_http_reductrai_http_lines_init(ngx_http_reductrai_http_lines_t *l)
{
    l->n = 0;
    l->pos = l->pool;
    l->overflow = 0;
}


void
ngx_http_reductrai_http_line(ngx_http_reductrai_http_lines_t *l,
    const char *fmt, ...)
{
    int      n;
    size_t   room;
    va_list  args;

    if (l->overflow) {
        return;
    }

    room = (size_t) (l->pool + sizeof(l->pool) - l->pos);

    va_start(args, fmt);
    n = vsnprintf(l->pos, room, fmt, args);
    va_end(args);

    if (n < 0 || (size_t) n >= room || l->n >= NGX_HTTP_REDUCTRAI_HTTP_LINES) {
        /* said once, when the lines are sent */
        l->overflow = 1;
        return;
    }

    l->line[l->n++] = l->pos;
    l->pos += n + 1;
}


ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_send(ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_http_lines_t *l, ngx_http_reductrai_http_req_t *req,
    ngx_http_reductrai_storage_err_t *err)
{
    size_t  i;

    if (l->overflow) {
        ngx_http_reductrai_storage_error(err, 0, "headers too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    for (i = 0; i < l->n; i++) {
        if (ngx_http_reductrai_http_header(h, "%s", l->line[i]) != 0) {
            ngx_http_reductrai_storage_error(err, 0, "out of memory");
            return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        }
    }

    if (req->body && req->mem != NULL) {
        ngx_http_reductrai_http_body_mem(h, req->mem, (size_t) req->length);

    } else if (req->body) {
        ngx_http_reductrai_http_body_fd(h, req->fd, req->offset, req->length);
    }

    h->window = req->window;

    return ngx_http_reductrai_http_perform(h, err);
}


void
ngx_http_reductrai_http_hint(ngx_http_reductrai_storage_err_t *err,
    const char *hint)
{
    size_t  len;

    len = strlen(err->message);

    snprintf(err->message + len, sizeof(err->message) - len, " (%s)", hint);
}


ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_plain(ngx_http_reductrai_storage_t *st,
    const char *method, const char *key, const char *query,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_http_req_t  req;

    memset(&req, 0, sizeof(req));

    req.method = method;
    req.key = key;
    req.query = query;

    return st->http->request(st, &req, hp, err);
}


ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_put(ngx_http_reductrai_storage_t *st,
    const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err)
{
    char                             sha[65], md5[25];
    ngx_http_reductrai_http_req_t    req;
    ngx_http_reductrai_storage_rc_e  rc;

    rc = ngx_http_reductrai_http_exists(st, key, err);
    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND) {
        return rc;
    }

    if (size > st->conf.multipart_threshold) {
        return st->http->put_parts(st, key, fd, size, err);
    }

    memset(&req, 0, sizeof(req));

    req.key = key;
    req.query = "";
    req.fd = fd;
    req.length = size;

    rc = ngx_http_reductrai_http_put_file(st, &req, sha, md5, NULL, err);
    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        return rc;
    }

    return st->http->put_object(st, &req, err);
}


ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_head(ngx_http_reductrai_storage_t *st,
    const char *key, int64_t *size, ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    rc = ngx_http_reductrai_http_plain(st, "HEAD", key, "", &h, err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        *size = h->content_length;
    }

    return rc;
}


ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_get(ngx_http_reductrai_storage_t *st,
    const char *key, int64_t offset, int64_t length,
    ngx_http_reductrai_sink_pt sink, void *data,
    ngx_http_reductrai_storage_err_t *err)
{
    int64_t                          size;
    ngx_http_reductrai_window_t      w;
    ngx_http_reductrai_storage_rc_e  rc;

    if (length == 0) {
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    if (offset < 0 && !st->http->suffix) {
        /* the range header has no suffix form: the size first */

        rc = ngx_http_reductrai_http_head(st, key, &size, err);
        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            return rc;
        }

        offset = size + offset < 0 ? 0 : size + offset;
        length = size - offset;

        if (length == 0) {
            return NGX_HTTP_REDUCTRAI_STORAGE_OK;
        }
    }

    memset(&w, 0, sizeof(w));
    w.sink = sink;
    w.data = data;
    w.total = -1;

    if (offset < 0) {
        /* the trailer: one request, whatever the object's size */
        w.suffix = -offset;
        w.end = -1;

    } else {
        w.start = offset;
        w.end = length < 0 ? -1 : offset + length;
    }

    return ngx_http_reductrai_http_fetch(st, key, &w, err);
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_fetch(ngx_http_reductrai_storage_t *st,
    const char *key, ngx_http_reductrai_window_t *w,
    ngx_http_reductrai_storage_err_t *err)
{
    int                              tries;
    char                             range[80];
    int64_t                          from, to;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_http_req_t    req;
    ngx_http_reductrai_storage_rc_e  rc;

    ngx_http_reductrai_http_range(range, sizeof(range), st->http->range, w);

    for (tries = 0; tries < 3; tries++) {
        memset(&req, 0, sizeof(req));

        req.method = "GET";
        req.key = key;
        req.query = "";
        req.window = w;

        if (range[0]) {
            req.headers[req.nheaders++] = range;
        }

        w->started = 0;

        rc = st->http->request(st, &req, &h, err);

        if (rc == NGX_HTTP_REDUCTRAI_STORAGE_FATAL && h != NULL
            && h->status == 416)
        {
            /* the range starts past the end: nothing to give */
            err->status = 0;
            err->message[0] = '\0';
            return NGX_HTTP_REDUCTRAI_STORAGE_OK;
        }

        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            return rc;
        }

        if (w->end < 0 || !ngx_http_reductrai_http_window_next(w, &from, &to))
        {
            return NGX_HTTP_REDUCTRAI_STORAGE_OK;
        }

        /* the store sent less than asked, or not the part asked for */
        snprintf(range, sizeof(range), "%s: bytes=%lld-%lld", st->http->range,
                 (long long) from, (long long) to);
    }

    ngx_http_reductrai_storage_error(err, 0, "incomplete ranged response");

    return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
}


/* the range header of a window's first request, "" for a whole object */

static void
ngx_http_reductrai_http_range(char *buf, size_t size, const char *name,
    ngx_http_reductrai_window_t *w)
{
    buf[0] = '\0';

    if (w->suffix > 0) {
        snprintf(buf, size, "%s: bytes=-%lld", name, (long long) w->suffix);

    } else if (w->end >= 0) {
        snprintf(buf, size, "%s: bytes=%lld-%lld", name,
                 (long long) w->start, (long long) w->end - 1);

    } else if (w->start > 0) {
        snprintf(buf, size, "%s: bytes=%lld-", name, (long long) w->start);
    }
}


/*
 * Before a put: OK when an object is under the key already, NOT_FOUND
 * (err cleared) when it is to be written, else the failure.  An object
 * there was completed by an earlier attempt (whose spool removal a crash
 * cut off): it is never written again.  Without the right to read, a HEAD
 * gives 403; the conditional write then still refuses to overwrite.
 */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_exists(ngx_http_reductrai_storage_t *st,
    const char *key, ngx_http_reductrai_storage_err_t *err)
{
    int64_t                          have;
    ngx_http_reductrai_storage_rc_e  rc;

    rc = ngx_http_reductrai_http_head(st, key, &have, err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_FATAL && err->status == 403) {
        rc = NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND;
    }

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND) {
        err->status = 0;
        err->message[0] = '\0';
    }

    return rc;
}


/*
 * Makes req the PUT of its range of req->fd, with the range's digests
 * (into sha256_hex, when the store wants it, and md5_b64; the MD5 also to
 * whole, may be NULL).
 */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_put_file(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, char *sha256_hex, char *md5_b64,
    EVP_MD_CTX *whole, ngx_http_reductrai_storage_err_t *err)
{
    if (!st->http->sha256) {
        sha256_hex = NULL;
    }

    if (ngx_http_reductrai_http_hash_fd(req->fd, req->offset, req->length,
                                        sha256_hex, md5_b64, whole)
        != 0)
    {
        ngx_http_reductrai_storage_error(err, 0, "reading the spool segment "
                                         "failed (%d: %s)", errno,
                                         strerror(errno));
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    req->method = "PUT";
    req->body = 1;
    req->sha256 = sha256_hex;
    req->md5 = md5_b64;

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


int64_t
ngx_http_reductrai_http_part_size(int64_t part, int64_t size, int64_t max,
    int64_t align)
{
    if ((size + part - 1) / part <= max) {
        return part;
    }

    part = (size + max - 1) / max;

    return (part + align - 1) / align * align;
}


ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_put_part(ngx_http_reductrai_storage_t *st,
    const char *key, const char *query, int fd, int64_t offset,
    int64_t length, EVP_MD_CTX *whole, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err)
{
    int                              tries;
    char                             sha[65], md5[25];
    ngx_http_reductrai_http_req_t    req;
    ngx_http_reductrai_storage_rc_e  rc;

    memset(&req, 0, sizeof(req));

    req.key = key;
    req.query = query;
    req.fd = fd;
    req.offset = offset;
    req.length = length;

    /* the part is read twice: once for its digests, once to send */

    rc = ngx_http_reductrai_http_put_file(st, &req, sha, md5, whole, err);
    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        return rc;
    }

    for (tries = 0; /* void */; tries++) {
        rc = st->http->request(st, &req, hp, err);

        /* a part that failed on the way is sent again, a few times */
        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_RETRY
            || tries + 1 >= NGX_HTTP_REDUCTRAI_HTTP_PART_TRIES)
        {
            return rc;
        }

        (void) usleep(200000 * (tries + 1));
    }
}


ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_probe(ngx_http_reductrai_storage_t *st,
    const char *query, const char *const *codes,
    ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    rc = ngx_http_reductrai_http_plain(st, "GET", NULL, query, &h, err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_FATAL && h != NULL
        && h->status == 403 && ngx_http_reductrai_http_code_in(h, codes))
    {
        /*
         * The credentials were accepted, only listing is not allowed: a
         * writer needs no more (s3:PutObject, a write-only SAS).
         */
        err->status = 0;
        err->message[0] = '\0';
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND) {
        /* no such bucket or container: will not heal by itself */
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    return rc;
}


static int
ngx_http_reductrai_http_code_in(ngx_http_reductrai_http_t *h,
    const char *const *codes)
{
    char  code[64];

    if (ngx_http_reductrai_http_error_code(h, code, sizeof(code)) != 0) {
        return 0;
    }

    for ( /* void */ ; *codes != NULL; codes++) {
        if (strcmp(code, *codes) == 0) {
            return 1;
        }
    }

    return 0;
}


/* the next request on this thread's handle reuses its body */

char *
ngx_http_reductrai_http_body_copy(ngx_http_reductrai_http_t *h, size_t *len,
    ngx_http_reductrai_storage_err_t *err)
{
    char  *p;

    *len = h->body.len;

    p = malloc(*len + 1);
    if (p == NULL) {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return NULL;
    }

    if (*len > 0) {
        memcpy(p, h->body.data, *len);
    }

    p[*len] = '\0';

    return p;
}


int
ngx_http_reductrai_http_error_code(ngx_http_reductrai_http_t *h, char *code,
    size_t size)
{
    const char  *p;

    p = (char *) h->body.data;

    if (h->body.len == 0
        || ngx_http_reductrai_http_xml_text(p, p + h->body.len, "Code", code,
                                            size)
           < 0)
    {
        return -1;
    }

    return 0;
}


ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_http_list(ngx_http_reductrai_storage_t *st,
    const char *prefix, ngx_http_reductrai_list_pt handler, void *data,
    ngx_http_reductrai_storage_err_t *err)
{
    int                              stop;
    char                             eprefix[4096], emarker[6200];
    char                            *query, *page;
    size_t                           len, size;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    if (ngx_http_reductrai_http_uri_encode(eprefix, sizeof(eprefix), prefix, 0)
        == 0 && prefix[0] != '\0')
    {
        ngx_http_reductrai_storage_error(err, 0, "prefix too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    size = sizeof(eprefix) + sizeof(emarker) + 96;

    query = malloc(size);
    if (query == NULL) {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    emarker[0] = '\0';

    for ( ;; ) {
        st->http->query(query, size, eprefix, emarker);

        rc = ngx_http_reductrai_http_plain(st, "GET", NULL, query, &h, err);
        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            break;
        }

        /* a page cut short loses its marker: the listing would end early */

        if (h->body_truncated) {
            ngx_http_reductrai_storage_error(err, h->status, "listing too "
                                             "large");
            rc = NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
            break;
        }

        /* the handler may make requests on this thread's handle */

        page = ngx_http_reductrai_http_body_copy(h, &len, err);
        if (page == NULL) {
            rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
            break;
        }

        stop = ngx_http_reductrai_http_list_items(st->http, page, len, handler,
                                                  data);
        if (!stop) {
            rc = st->http->next(page, len, emarker, sizeof(emarker), err);
        }

        free(page);

        if (stop || rc != NGX_HTTP_REDUCTRAI_STORAGE_OK || emarker[0] == '\0')
        {
            break;
        }
    }

    free(query);

    return rc;
}


/*
 * Calls handler with the name and size of each entry of a listing page;
 * returns non-zero when the handler stopped.
 */

static int
ngx_http_reductrai_http_list_items(
    const ngx_http_reductrai_http_store_t *store, const char *page,
    size_t len, ngx_http_reductrai_list_pt handler, void *data)
{
    char         key[1024], num[32];
    ssize_t      n;
    const char  *pos, *end, *t, *te;

    pos = page;
    end = page + len;

    while (ngx_http_reductrai_http_xml_next(&pos, end, store->item, &t, &te)
           == 0)
    {
        n = ngx_http_reductrai_http_xml_text(t, te, store->name, key,
                                             sizeof(key));

        if (n < 0 || (size_t) n >= sizeof(key)) {
            continue;
        }

        (void) ngx_http_reductrai_http_xml_text(t, te, store->size, num,
                                                sizeof(num));

        if (handler(data, key, num[0] ? strtoll(num, NULL, 10) : -1) != 0) {
            return 1;
        }
    }

    return 0;
}


size_t
ngx_http_reductrai_http_xml_reason(const char *xml, size_t len, char *buf,
    size_t size)
{
    char         code[64], msg[200];
    size_t       n;
    const char  *pos, *end, *t, *te, *nl;

    pos = xml;
    end = xml + len;
    code[0] = '\0';
    msg[0] = '\0';

    if (ngx_http_reductrai_http_xml_next(&pos, end, "Code", &t, &te) == 0) {
        (void) ngx_http_reductrai_http_xml_unescape(t, te, code, sizeof(code));
    }

    pos = xml;

    if (ngx_http_reductrai_http_xml_next(&pos, end, "Message", &t, &te) == 0) {
        /* Azure appends "\nRequestId:...\nTime:..." */
        nl = memchr(t, '\n', (size_t) (te - t));
        (void) ngx_http_reductrai_http_xml_unescape(t, nl ? nl : te, msg,
                                                    sizeof(msg));
    }

    if (code[0] == '\0' && msg[0] == '\0') {
        buf[0] = '\0';
        return 0;
    }

    n = (size_t) snprintf(buf, size, "%s%s%s", code,
                          code[0] && msg[0] ? ": " : "", msg);

    return n < size ? n : size - 1;
}


int
ngx_http_reductrai_http_xml_next(const char **pos, const char *end,
    const char *tag, const char **text, const char **text_end)
{
    size_t       tlen;
    const char  *p, *gt, *close;

    tlen = strlen(tag);
    p = *pos;

    for ( ;; ) {
        p = memchr(p, '<', (size_t) (end - p));
        if (p == NULL || (size_t) (end - p) < tlen + 2) {
            return -1;
        }

        if (strncmp(p + 1, tag, tlen) == 0
            && (p[tlen + 1] == '>' || p[tlen + 1] == ' '
                || p[tlen + 1] == '/'))
        {
            break;
        }

        p++;
    }

    gt = memchr(p, '>', (size_t) (end - p));
    if (gt == NULL) {
        return -1;
    }

    if (gt[-1] == '/') {
        /* <tag/>: empty */
        *text = gt + 1;
        *text_end = gt + 1;
        *pos = gt + 1;
        return 0;
    }

    for (close = gt + 1; ; close++) {
        close = memchr(close, '<', (size_t) (end - close));
        if (close == NULL || (size_t) (end - close) < tlen + 3) {
            return -1;
        }

        if (close[1] == '/' && strncmp(close + 2, tag, tlen) == 0
            && close[tlen + 2] == '>')
        {
            break;
        }
    }

    *text = gt + 1;
    *text_end = close;
    *pos = close + tlen + 3;

    return 0;
}


size_t
ngx_http_reductrai_http_xml_unescape(const char *p, const char *end, char *buf,
    size_t size)
{
    int            hex, v;
    size_t         n, i;
    const char    *semi, *d;
    unsigned long  cp;

    static const struct {
        const char  *name;
        size_t       len;
        char         c;
    } entities[] = {
        { "&amp;", 5, '&' }, { "&lt;", 4, '<' }, { "&gt;", 4, '>' },
        { "&quot;", 6, '"' }, { "&apos;", 6, '\'' }
    };

    n = 0;

    while (p < end && n + 1 < size) {

        if (*p != '&') {
            buf[n++] = *p++;
            continue;
        }

        for (i = 0; i < sizeof(entities) / sizeof(entities[0]); i++) {
            if ((size_t) (end - p) >= entities[i].len
                && strncmp(p, entities[i].name, entities[i].len) == 0)
            {
                break;
            }
        }

        if (i < sizeof(entities) / sizeof(entities[0])) {
            buf[n++] = entities[i].c;
            p += entities[i].len;
            continue;
        }

        /*
         * &#N; and &#xN; by hand: strtoul() would read past end (the text
         * is a slice of the answer, not a string) and take "&# +65;"
         */

        if ((size_t) (end - p) > 3 && p[1] == '#') {
            hex = (p[2] == 'x');
            semi = (char *) p + (hex ? 3 : 2);
            cp = 0;

            for (d = semi; d < end; d++) {
                v = (*d >= '0' && *d <= '9') ? *d - '0'
                    : (hex && (*d | 0x20) >= 'a' && (*d | 0x20) <= 'f')
                      ? (*d | 0x20) - 'a' + 10 : -1;

                if (v < 0) {
                    break;
                }

                cp = cp * (hex ? 16 : 10) + (unsigned long) v;

                if (cp >= 0x80) {
                    cp = 0x80;  /* not decoded; and no overflow */
                }
            }

            if (d > semi && d < end && *d == ';' && cp > 0 && cp < 0x80) {
                buf[n++] = (char) cp;
                p = d + 1;
                continue;
            }
        }

        buf[n++] = *p++;
    }

    buf[n] = '\0';

    return n;
}


ssize_t
ngx_http_reductrai_http_xml_text(const char *pos, const char *end,
    const char *tag, char *buf, size_t size)
{
    const char  *t, *te;

    if (ngx_http_reductrai_http_xml_next(&pos, end, tag, &t, &te) != 0) {
        buf[0] = '\0';
        return -1;
    }

    (void) ngx_http_reductrai_http_xml_unescape(t, te, buf, size);

    return te - t;
}


int ngx_libc_cdecl
ngx_http_reductrai_http_header_cmp(const void *a, const void *b)
{
    int          rc;
    size_t       la, lb;
    const char  *sa, *sb;

    sa = *(const char **) a;
    sb = *(const char **) b;

    la = strcspn(sa, ":");
    lb = strcspn(sb, ":");

    rc = strncmp(sa, sb, la < lb ? la : lb);

    if (rc != 0) {
        return rc;
    }

    return la < lb ? -1 : (la > lb ? 1 : 0);
}


void
ngx_http_reductrai_http_scrub(char *msg, const char *secret)
{
    char    *p;
    size_t   slen, mlen;

    if (secret == NULL) {
        return;
    }

    slen = strlen(secret);

    /* too short to be a secret, and would mangle any message */
    if (slen < 4) {
        return;
    }

    while ((p = strstr(msg, secret)) != NULL) {
        mlen = strlen(p + slen);
        memcpy(p, "***", 3);
        memmove(p + 3, p + slen, mlen + 1);
    }
}


void
ngx_http_reductrai_http_sha256_hex(const void *p, size_t len, char *hex)
{
    u_char  md[32];

    (void) EVP_Digest(p, len, md, NULL, EVP_sha256(), NULL);
    *ngx_http_reductrai_hex((u_char *) hex, md, 32) = '\0';
}


int
ngx_http_reductrai_http_hmac_sha256(const void *key, size_t klen, const void *p,
    size_t len, u_char *out)
{
    unsigned int  n;

    n = 32;

    return HMAC(EVP_sha256(), key, (int) klen, p, len, out, &n) != NULL
           ? 0 : -1;
}


int
ngx_http_reductrai_http_hash_fd(int fd, int64_t offset, int64_t length,
    char *sha256_hex, char *md5_b64, EVP_MD_CTX *whole)
{
    int          rc;
    u_char      *buf, sha[32], md5[16];
    size_t       want;
    ssize_t      n;
    EVP_MD_CTX  *s, *m;

    rc = -1;
    buf = malloc(256 * 1024);
    s = sha256_hex != NULL ? EVP_MD_CTX_new() : NULL;
    m = EVP_MD_CTX_new();

    if (buf == NULL || m == NULL
        || (sha256_hex != NULL
            && (s == NULL || EVP_DigestInit_ex(s, EVP_sha256(), NULL) != 1))
        || EVP_DigestInit_ex(m, EVP_md5(), NULL) != 1)
    {
        errno = ENOMEM;
        goto failed;
    }

    while (length > 0) {
        want = length < 256 * 1024 ? (size_t) length : 256 * 1024;

        n = pread(fd, buf, want, (off_t) offset);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }

            goto failed;
        }

        if ((s != NULL && EVP_DigestUpdate(s, buf, (size_t) n) != 1)
            || EVP_DigestUpdate(m, buf, (size_t) n) != 1
            || (whole != NULL && EVP_DigestUpdate(whole, buf, (size_t) n)
                                 != 1))
        {
            errno = EINVAL;
            goto failed;
        }

        offset += n;
        length -= n;
    }

    if ((s != NULL && EVP_DigestFinal_ex(s, sha, NULL) != 1)
        || EVP_DigestFinal_ex(m, md5, NULL) != 1)
    {
        errno = EINVAL;
        goto failed;
    }

    if (s != NULL) {
        *ngx_http_reductrai_hex((u_char *) sha256_hex, sha, 32) = '\0';
    }

    (void) ngx_http_reductrai_http_base64(md5_b64, md5, 16, 0);

    rc = 0;

failed:

    EVP_MD_CTX_free(s);
    EVP_MD_CTX_free(m);
    free(buf);

    return rc;
}


size_t
ngx_http_reductrai_http_base64(char *dst, const u_char *src, size_t len,
    int url)
{
    char          *d;
    const char    *alphabet;
    unsigned int   v;

    static const char  std[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char  safe[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    alphabet = url ? safe : std;
    d = dst;

    while (len >= 3) {
        v = (unsigned int) src[0] << 16 | (unsigned int) src[1] << 8
            | src[2];
        *d++ = alphabet[v >> 18];
        *d++ = alphabet[(v >> 12) & 0x3f];
        *d++ = alphabet[(v >> 6) & 0x3f];
        *d++ = alphabet[v & 0x3f];
        src += 3;
        len -= 3;
    }

    if (len > 0) {
        v = (unsigned int) src[0] << 16
            | (len > 1 ? (unsigned int) src[1] << 8 : 0);
        *d++ = alphabet[v >> 18];
        *d++ = alphabet[(v >> 12) & 0x3f];

        if (len > 1) {
            *d++ = alphabet[(v >> 6) & 0x3f];
        }

        /* JWTs (base64url) are unpadded */
        if (!url) {
            if (len == 1) {
                *d++ = '=';
            }

            *d++ = '=';
        }
    }

    *d = '\0';

    return (size_t) (d - dst);
}


ssize_t
ngx_http_reductrai_http_base64_decode(u_char *dst, const char *src, size_t len)
{
    int           c, bits;
    u_char       *d;
    unsigned int  acc;

    d = dst;
    acc = 0;
    bits = 0;

    while (len > 0 && (src[len - 1] == '=' || src[len - 1] == '\n'
                       || src[len - 1] == '\r' || src[len - 1] == ' '))
    {
        len--;
    }

    while (len--) {
        c = (u_char) *src++;

        if (c >= 'A' && c <= 'Z') {
            c -= 'A';

        } else if (c >= 'a' && c <= 'z') {
            c = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            c = c - '0' + 52;

        } else if (c == '+' || c == '-') {
            c = 62;

        } else if (c == '/' || c == '_') {
            c = 63;

        } else {
            return -1;
        }

        acc = (acc << 6) | (unsigned int) c;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *d++ = (u_char) (acc >> bits);
        }
    }

    return (ssize_t) (d - dst);
}


size_t
ngx_http_reductrai_http_uri_encode(char *dst, size_t size, const char *src,
    int keep_slash)
{
    u_char   c;
    size_t   n;

    static const char  hex[] = "0123456789ABCDEF";

    n = 0;

    for ( /* void */ ; *src; src++) {
        c = (u_char) *src;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~' || (c == '/' && keep_slash))
        {
            if (n + 1 >= size) {
                return 0;
            }

            dst[n++] = (char) c;
            continue;
        }

        if (n + 3 >= size) {
            return 0;
        }

        dst[n++] = '%';
        dst[n++] = hex[c >> 4];
        dst[n++] = hex[c & 0xf];
    }

    dst[n] = '\0';

    return n;
}


void
ngx_http_reductrai_http_date(char *buf, size_t size, time_t t)
{
    struct tm  tm;

    static const char  *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri",
                                   "Sat" };
    static const char  *months[] = { "Jan", "Feb", "Mar", "Apr", "May",
                                     "Jun", "Jul", "Aug", "Sep", "Oct",
                                     "Nov", "Dec" };

    /* not strftime(): its names follow the locale */
    (void) gmtime_r(&t, &tm);

    (void) snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}


void
ngx_http_reductrai_http_amz_date(char *buf, size_t size, time_t t)
{
    struct tm  tm;

    (void) gmtime_r(&t, &tm);

    (void) snprintf(buf, size, "%04d%02d%02dT%02d%02d%02dZ",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                    tm.tm_hour, tm.tm_min, tm.tm_sec);
}


void
ngx_http_reductrai_http_use(int delta)
{
    ngx_http_reductrai_http_t  *h, *next;

    (void) pthread_mutex_lock(&ngx_http_reductrai_http_lock);

    if (delta > 0) {
        ngx_http_reductrai_http_users++;
        (void) pthread_mutex_unlock(&ngx_http_reductrai_http_lock);
        return;
    }

    if (ngx_http_reductrai_http_users > 0) {
        ngx_http_reductrai_http_users--;
    }

    if (ngx_http_reductrai_http_users > 0) {
        (void) pthread_mutex_unlock(&ngx_http_reductrai_http_lock);
        return;
    }

    /* the last storage is gone, and no request can be running */

    h = ngx_http_reductrai_http_all;
    ngx_http_reductrai_http_all = NULL;

    __atomic_add_fetch(&ngx_http_reductrai_http_generation, 1,
                       __ATOMIC_RELEASE);

    (void) pthread_mutex_unlock(&ngx_http_reductrai_http_lock);

    for ( /* void */ ; h != NULL; h = next) {
        next = h->next;
        ngx_http_reductrai_http_free(h);
    }
}


static void
ngx_http_reductrai_http_free(ngx_http_reductrai_http_t *h)
{
    curl_slist_free_all(h->headers);
    curl_easy_cleanup(h->curl);
    ngx_http_reductrai_buf_free(&h->body);
    free(h);
}


static size_t
ngx_http_reductrai_http_read(char *buf, size_t size, size_t nitems,
    void *data)
{
    ngx_http_reductrai_http_t  *h = data;

    size_t   want;
    ssize_t  n;

    want = size * nitems;

    if ((int64_t) want > h->length - h->sent) {
        want = (size_t) (h->length - h->sent);
    }

    if (want == 0) {
        return 0;
    }

    if (h->mem != NULL) {
        memcpy(buf, h->mem + h->sent, want);
        h->sent += (int64_t) want;
        return want;
    }

    for ( ;; ) {
        n = pread(h->fd, buf, want, (off_t) (h->offset + h->sent));

        if (n == -1 && errno == EINTR) {
            continue;
        }

        break;
    }

    if (n <= 0) {
        /* the spool file shrank or failed under us */
        snprintf(h->errbuf, sizeof(h->errbuf), "pread() of the spool "
                 "segment failed (%d: %s)", n == 0 ? EIO : errno,
                 strerror(n == 0 ? EIO : errno));
        return CURL_READFUNC_ABORT;
    }

    h->sent += n;

    return (size_t) n;
}


static int
ngx_http_reductrai_http_seek(void *data, curl_off_t offset, int origin)
{
    ngx_http_reductrai_http_t  *h = data;

    /* libcurl rewinds to resend a body (after a 100-continue refusal) */

    if (origin != SEEK_SET || offset < 0 || offset > h->length) {
        return CURL_SEEKFUNC_CANTSEEK;
    }

    h->sent = offset;

    return CURL_SEEKFUNC_OK;
}


static size_t
ngx_http_reductrai_http_write(char *p, size_t size, size_t nmemb,
    void *data)
{
    ngx_http_reductrai_http_t  *h = data;

    long    status;
    size_t  n, room;

    n = size * nmemb;
    status = 0;
    (void) curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);

    if (h->window != NULL && status >= 200 && status < 300) {
        h->status = status;
        return ngx_http_reductrai_http_window_in(h, (u_char *) p, n) == 0
               ? n : 0;
    }

    /* an error body, a listing, an XML answer: kept up to a cap */

    room = NGX_HTTP_REDUCTRAI_HTTP_BODY_MAX - h->body.len;

    if (n > room) {
        h->body_truncated = 1;
        n = room;
    }

    if (n > 0) {
        if (ngx_http_reductrai_buf_reserve(&h->body, n + 1) != 0) {
            return 0;
        }

        memcpy(h->body.data + h->body.len, p, n);
        h->body.len += n;
        h->body.data[h->body.len] = '\0';
    }

    return size * nmemb;
}


static size_t
ngx_http_reductrai_http_header_in(char *p, size_t size, size_t nitems,
    void *data)
{
    ngx_http_reductrai_http_t  *h = data;

    size_t       n, len;
    const char  *end, *v, *next;

    n = size * nitems;
    end = p + n;

    while (end > p && (end[-1] == '\r' || end[-1] == '\n')) {
        end--;
    }

    len = (size_t) (end - p);

    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new response (after "100 Continue", say): forget the last */
        h->content_length = -1;
        h->range_start = -1;
        h->range_total = -1;
        h->etag[0] = '\0';
        return n;
    }

    v = memchr(p, ':', len);
    if (v == NULL) {
        return n;
    }

    v++;

    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }

#define ngx_http_reductrai_is_header(name)                                  \
    ((size_t) (v - p) > sizeof(name) - 1                                     \
     && strncasecmp(p, name ":", sizeof(name)) == 0)

    if (ngx_http_reductrai_is_header("Content-Length")) {
        h->content_length = ngx_http_reductrai_http_atoll(v, end, NULL);

    } else if (ngx_http_reductrai_is_header("ETag")) {
        len = (size_t) (end - v);

        if (len < sizeof(h->etag)) {
            memcpy(h->etag, v, len);
            h->etag[len] = '\0';
        }

    } else if (ngx_http_reductrai_is_header("Content-Range")) {
        /* "bytes 0-9/1234" */

        if (end - v > 6 && strncmp(v, "bytes ", 6) == 0) {
            h->range_start = ngx_http_reductrai_http_atoll(v + 6, end, &next);

            next = memchr(v, '/', (size_t) (end - v));
            if (next != NULL && next[1] != '*') {
                h->range_total = ngx_http_reductrai_http_atoll(next + 1, end,
                                                               NULL);
            }
        }
    }

#undef ngx_http_reductrai_is_header

    return n;
}


static int
ngx_http_reductrai_http_window_in(ngx_http_reductrai_http_t *h, const u_char *p,
    size_t n)
{
    int64_t                       a, b, next;
    ngx_http_reductrai_window_t  *w;

    w = h->window;

    if (!w->started) {
        w->started = 1;

        if (h->status == 206 && h->range_start >= 0) {
            w->pos = h->range_start;
            w->total = h->range_total;

        } else {
            w->pos = 0;
            w->total = h->content_length;
        }

        if (w->suffix > 0) {
            if (w->total < 0) {
                w->failed = 1;
                return -1;
            }

            w->start = w->total > w->suffix ? w->total - w->suffix : 0;
            w->end = w->total;
            w->suffix = 0;
        }

        if (w->total >= 0 && (w->end < 0 || w->end > w->total)) {
            w->end = w->total;
        }
    }

    next = w->start + w->done;
    a = w->pos > next ? w->pos : next;
    b = w->pos + (int64_t) n;

    if (w->end >= 0 && b > w->end) {
        b = w->end;
    }

    /* only contiguous bytes; a gap is fetched again afterwards */

    if (a == next && a < b) {
        if (w->sink(w->data, p + (a - w->pos), (size_t) (b - a)) != 0) {
            w->failed = 1;
            return -1;
        }

        w->done += b - a;
    }

    w->pos += (int64_t) n;

    return 0;
}


static void
ngx_http_reductrai_http_reason(ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_storage_err_t *err)
{
    char  reason[256];

    reason[0] = '\0';

    if (h->body.len > 0) {
        (void) ngx_http_reductrai_http_xml_reason((char *) h->body.data,
                                                  h->body.len, reason,
                                                  sizeof(reason));
    }

    if (reason[0]) {
        ngx_http_reductrai_storage_error(err, h->status, "HTTP %ld %s",
                                         h->status, reason);

    } else {
        ngx_http_reductrai_storage_error(err, h->status, "HTTP %ld",
                                         h->status);
    }

    ngx_http_reductrai_http_scrub_all(h, err);
}


void
ngx_http_reductrai_http_scrub_all(ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_storage_err_t *err)
{
    size_t  i;

    ngx_http_reductrai_http_scrub(err->message, h->conf->secret_key);
    ngx_http_reductrai_http_scrub(err->message, h->conf->session_token);
    ngx_http_reductrai_http_scrub(err->message, h->conf->account_key);
    ngx_http_reductrai_http_scrub(err->message, h->conf->sas);

    for (i = 0; i < sizeof(h->secrets) / sizeof(h->secrets[0]); i++) {
        ngx_http_reductrai_http_scrub(err->message, h->secrets[i]);
    }
}


static int64_t
ngx_http_reductrai_http_atoll(const char *p, const char *end, const char **next)
{
    int64_t  v;

    v = 0;

    if (p >= end || *p < '0' || *p > '9') {
        if (next) {
            *next = p;
        }

        return -1;
    }

    while (p < end && *p >= '0' && *p <= '9' && v < INT64_MAX / 10 - 10) {
        v = v * 10 + (*p++ - '0');
    }

    if (next) {
        *next = p;
    }

    return v;
}
