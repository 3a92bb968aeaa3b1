
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * azure://account/container[/prefix]: Azure Blob Storage.  A segment goes
 * up with Put Blob, or, above multipart_threshold, as blocks (Put Block,
 * each streamed from the spool file) committed by one Put Block List: the
 * blob appears whole at the commit or not at all, and blocks that are
 * never committed are discarded by the service.  Requests are signed with
 * Shared Key (HMAC-SHA256 of the canonical string, with the account key),
 * or carry a SAS token.  endpoint= points elsewhere than
 * https://ACCOUNT.blob.core.windows.net: Azurite, sovereign clouds.
 */


#include "ngx_http_reductrai_http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>


#define NGX_HTTP_REDUCTRAI_AZURE_VERSION     "2021-08-06"
#define NGX_HTTP_REDUCTRAI_AZURE_MAX_BLOCKS  50000
#define NGX_HTTP_REDUCTRAI_AZURE_TRIES       3
#define NGX_HTTP_REDUCTRAI_AZURE_URL_MAX     8192
#define NGX_HTTP_REDUCTRAI_AZURE_LINES       16

#ifndef ngx_libc_cdecl
#define ngx_libc_cdecl
#endif


typedef struct {
    char                           *origin;     /* scheme://host[:port] */
    char                           *base_path;  /* "" or "/account" */
    u_char                          key[128];
    size_t                          key_len;
    const char                     *sas;
    char                           *env_sas;
    const char                     *hint;       /* why there is no key */
} ngx_http_reductrai_azure_t;


typedef struct {
    const char                     *method;
    const char                     *key;        /* NULL: the container */
    const char                     *query;      /* raw, or "" */
    const char                     *headers[8];
    size_t                          nheaders;
    int                             fd;
    int64_t                         offset;
    int64_t                         length;
    const u_char                   *mem;
    const char                     *md5;
    ngx_http_reductrai_window_t    *window;
    unsigned                        body:1;
} ngx_http_reductrai_azure_req_t;


typedef struct {
    char                           *name;
    char                           *value;
} ngx_http_reductrai_azure_param_t;


static int ngx_http_reductrai_azure_create(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen);
static int ngx_http_reductrai_azure_init(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_put(
    ngx_http_reductrai_storage_t *st, const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_blocks(
    ngx_http_reductrai_storage_t *st, const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_get(
    ngx_http_reductrai_storage_t *st, const char *key, int64_t offset,
    int64_t length, ngx_http_reductrai_sink_pt sink, void *data,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_head(
    ngx_http_reductrai_storage_t *st, const char *key, int64_t *size,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_list(
    ngx_http_reductrai_storage_t *st, const char *prefix,
    ngx_http_reductrai_list_pt handler, void *data,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_probe(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_storage_err_t *err);
static void ngx_http_reductrai_azure_cleanup(
    ngx_http_reductrai_storage_t *st);

static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_request(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_azure_req_t *req,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err);
static int ngx_http_reductrai_azure_exists(ngx_http_reductrai_http_t *h);
static int ngx_http_reductrai_azure_code(ngx_http_reductrai_http_t *h,
    char *code, size_t size);
static size_t ngx_http_reductrai_azure_decode(char *dst, const char *src,
    size_t len);
static int ngx_libc_cdecl ngx_http_reductrai_azure_param_cmp(const void *a,
    const void *b);
static int ngx_libc_cdecl ngx_http_reductrai_azure_header_cmp(const void *a,
    const void *b);
static const char *ngx_http_reductrai_azure_find(const char **headers,
    size_t n, const char *name);


const ngx_http_reductrai_storage_backend_t
    ngx_http_reductrai_storage_azure =
{
    "azure",
    ngx_http_reductrai_azure_create,
    ngx_http_reductrai_azure_init,
    ngx_http_reductrai_azure_put,
    ngx_http_reductrai_azure_get,
    ngx_http_reductrai_azure_head,
    ngx_http_reductrai_azure_list,
    ngx_http_reductrai_azure_probe,
    ngx_http_reductrai_azure_cleanup
};


static int
ngx_http_reductrai_azure_create(ngx_http_reductrai_storage_t *st, char *err,
    size_t errlen)
{
    char                        *origin;
    size_t                       len;
    ssize_t                      n;
    const char                  *p, *ep, *host, *slash;
    ngx_http_reductrai_azure_t  *az;

    for (p = st->account; *p; p++) {
        if (!islower((u_char) *p) && !isdigit((u_char) *p)) {
            snprintf(err, errlen, "invalid storage account name \"%s\"",
                     st->account);
            return -1;
        }
    }

    for (p = st->bucket; *p; p++) {
        if (!islower((u_char) *p) && !isdigit((u_char) *p) && *p != '-') {
            snprintf(err, errlen, "invalid container name \"%s\"",
                     st->bucket);
            return -1;
        }
    }

    if (st->conf.account_key != NULL && st->conf.sas != NULL) {
        snprintf(err, errlen, "key= (or key_file=) and sas= exclude each "
                 "other");
        return -1;
    }

    az = calloc(1, sizeof(ngx_http_reductrai_azure_t));
    if (az == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    st->data = az;
    ngx_http_reductrai_http_use(1);

    if (st->conf.account_key != NULL) {
        len = strlen(st->conf.account_key);

        n = (len / 4 * 3 + 3 <= sizeof(az->key))
            ? ngx_http_reductrai_http_base64_decode(az->key,
                                                    st->conf.account_key,
                                                    len)
            : -1;

        if (n <= 0) {
            snprintf(err, errlen, "the account key is not base64");
            return -1;
        }

        az->key_len = (size_t) n;
    }

    if (st->conf.sas != NULL) {
        az->sas = st->conf.sas[0] == '?' ? st->conf.sas + 1 : st->conf.sas;
    }

    ep = st->conf.endpoint;

    if (ep == NULL) {
        origin = malloc(strlen(st->account) + 40);
        if (origin == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }

        sprintf(origin, "https://%s.blob.core.windows.net", st->account);
        az->origin = origin;
        az->base_path = strdup("");

    } else {
        p = strstr(ep, "://");

        if (p == NULL
            || !(((size_t) (p - ep) == 4 && strncasecmp(ep, "http", 4) == 0)
                 || ((size_t) (p - ep) == 5
                     && strncasecmp(ep, "https", 5) == 0)))
        {
            snprintf(err, errlen, "endpoint \"%s\" must be http:// or "
                     "https://", ep);
            return -1;
        }

        host = p + 3;
        slash = strchr(host, '/');
        len = slash ? (size_t) (slash - ep) : strlen(ep);

        if (host[0] == '\0' || host[0] == '/') {
            snprintf(err, errlen, "invalid endpoint \"%s\"", ep);
            return -1;
        }

        az->origin = strndup(ep, len);
        az->base_path = strdup(slash ? slash : "");

        if (az->base_path != NULL) {
            len = strlen(az->base_path);

            while (len > 0 && az->base_path[len - 1] == '/') {
                az->base_path[--len] = '\0';
            }
        }
    }

    if (az->origin == NULL || az->base_path == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    return 0;
}


static int
ngx_http_reductrai_azure_init(ngx_http_reductrai_storage_t *st, char *err,
    size_t errlen)
{
    char                        *v;
    ssize_t                      n;
    ngx_http_reductrai_azure_t  *az;

    az = st->data;

    if (az->key_len > 0 || az->sas != NULL) {
        return 0;
    }

    /* from the environment nginx's "env" directive passed to us */

    v = getenv("AZURE_STORAGE_KEY");

    if (v != NULL && v[0] != '\0') {
        n = (strlen(v) / 4 * 3 + 3 <= sizeof(az->key))
            ? ngx_http_reductrai_http_base64_decode(az->key, v, strlen(v)) : -1;

        if (n > 0) {
            az->key_len = (size_t) n;
            return 0;
        }

        /* no reason to stop the worker: say it with each failure */
        az->hint = "AZURE_STORAGE_KEY is not base64";
        return 0;
    }

    v = getenv("AZURE_STORAGE_SAS_TOKEN");

    if (v != NULL && v[0] != '\0') {
        az->env_sas = strdup(v[0] == '?' ? v + 1 : v);
        az->sas = az->env_sas;
        return 0;
    }

    az->hint = "no key or SAS token configured";

    return 0;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_put(ngx_http_reductrai_storage_t *st,
    const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err)
{
    char                             sha[65], md5[25], tier[96];
    int64_t                          have;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_azure_req_t   req;
    ngx_http_reductrai_storage_rc_e  rc;

    /* complete already (an earlier attempt): never written again */

    rc = ngx_http_reductrai_azure_head(st, key, &have, err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND
        && !(rc == NGX_HTTP_REDUCTRAI_STORAGE_FATAL && err->status == 403))
    {
        return rc;
    }

    err->status = 0;
    err->message[0] = '\0';

    if (size > st->conf.multipart_threshold) {
        return ngx_http_reductrai_azure_blocks(st, key, fd, size, err);
    }

    if (ngx_http_reductrai_http_hash_fd(fd, 0, size, sha, md5, NULL) != 0) {
        ngx_http_reductrai_storage_error(err, 0, "reading the spool segment "
                                         "failed (%d: %s)", errno,
                                         strerror(errno));
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    memset(&req, 0, sizeof(req));

    req.method = "PUT";
    req.key = key;
    req.query = "";
    req.fd = fd;
    req.length = size;
    req.md5 = md5;
    req.body = 1;

    req.headers[req.nheaders++] = "x-ms-blob-type: BlockBlob";
    req.headers[req.nheaders++] = "Content-Type: application/zstd";
    req.headers[req.nheaders++] = "If-None-Match: *";

    if (st->conf.storage_class != NULL) {
        snprintf(tier, sizeof(tier), "x-ms-access-tier: %.60s",
                 st->conf.storage_class);
        req.headers[req.nheaders++] = tier;
    }

    rc = ngx_http_reductrai_azure_request(st, &req, &h, err);

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK
        && ngx_http_reductrai_azure_exists(h))
    {
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    return rc;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_blocks(ngx_http_reductrai_storage_t *st,
    const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err)
{
    int                              n, tries;
    u_char                           md[16];
    char                             sha[65], md5[25], whole_md5[25];
    char                             id[16], eid[48], query[80], num[16];
    char                             tier[96];
    char                             blob_md5[80];
    size_t                           len;
    int64_t                          part, off;
    EVP_MD_CTX                      *whole;
    ngx_http_reductrai_buf_t         xml;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_azure_req_t   req;
    ngx_http_reductrai_storage_rc_e  rc;

    part = st->conf.part_size;

    if ((size + part - 1) / part > NGX_HTTP_REDUCTRAI_AZURE_MAX_BLOCKS) {
        part = (size + NGX_HTTP_REDUCTRAI_AZURE_MAX_BLOCKS - 1)
               / NGX_HTTP_REDUCTRAI_AZURE_MAX_BLOCKS;
    }

    memset(&xml, 0, sizeof(xml));

    whole = EVP_MD_CTX_new();

    if (whole == NULL || EVP_DigestInit_ex(whole, EVP_md5(), NULL) != 1
        || ngx_http_reductrai_buf_reserve(&xml, 128) != 0)
    {
        EVP_MD_CTX_free(whole);
        ngx_http_reductrai_buf_free(&xml);
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    xml.len = (size_t) sprintf((char *) xml.data,
                               "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                               "<BlockList>");

    rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;

    for (n = 1, off = 0; off < size; n++, off += part) {
        len = (size_t) (size - off < part ? size - off : part);

        if (ngx_http_reductrai_http_hash_fd(fd, off, (int64_t) len, sha, md5,
                                            whole)
            != 0)
        {
            ngx_http_reductrai_storage_error(err, 0, "reading the spool "
                                             "segment failed (%d: %s)",
                                             errno, strerror(errno));
            rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
            goto done;
        }

        /*
         * Block ids of one blob must have one length; deterministic ones
         * make a retry replace, not add to, the uncommitted blocks.
         */

        snprintf(num, sizeof(num), "%08d", n);
        (void) ngx_http_reductrai_http_base64(id, (u_char *) num, 8, 0);
        (void) ngx_http_reductrai_http_uri_encode(eid, sizeof(eid), id, 0);

        snprintf(query, sizeof(query), "blockid=%s&comp=block", eid);

        for (tries = 0; /* void */; tries++) {
            memset(&req, 0, sizeof(req));

            req.method = "PUT";
            req.key = key;
            req.query = query;
            req.fd = fd;
            req.offset = off;
            req.length = (int64_t) len;
            req.md5 = md5;
            req.body = 1;

            rc = ngx_http_reductrai_azure_request(st, &req, &h, err);

            if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
                break;
            }

            if (rc != NGX_HTTP_REDUCTRAI_STORAGE_RETRY
                || tries + 1 >= NGX_HTTP_REDUCTRAI_AZURE_TRIES)
            {
                goto done;
            }

            (void) usleep(200000 * (tries + 1));
        }

        if (ngx_http_reductrai_buf_reserve(&xml, 64) != 0) {
            ngx_http_reductrai_storage_error(err, 0, "out of memory");
            rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
            goto done;
        }

        xml.len += (size_t) sprintf((char *) xml.data + xml.len,
                                    "<Latest>%s</Latest>", id);
    }

    if (ngx_http_reductrai_buf_reserve(&xml, 32) != 0
        || EVP_DigestFinal_ex(whole, md, NULL) != 1)
    {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        goto done;
    }

    xml.len += (size_t) sprintf((char *) xml.data + xml.len, "</BlockList>");

    (void) ngx_http_reductrai_http_base64(whole_md5, md, 16, 0);
    snprintf(blob_md5, sizeof(blob_md5), "x-ms-blob-content-md5: %s",
             whole_md5);

    (void) EVP_Digest(xml.data, xml.len, md, NULL, EVP_md5(), NULL);
    (void) ngx_http_reductrai_http_base64(md5, md, 16, 0);

    /* the commit: the blob appears now, whole */

    memset(&req, 0, sizeof(req));

    req.method = "PUT";
    req.key = key;
    req.query = "comp=blocklist";
    req.mem = xml.data;
    req.length = (int64_t) xml.len;
    req.md5 = md5;
    req.body = 1;

    req.headers[req.nheaders++] = "Content-Type: application/xml";
    req.headers[req.nheaders++] = "x-ms-blob-content-type: application/zstd";
    req.headers[req.nheaders++] = blob_md5;
    req.headers[req.nheaders++] = "If-None-Match: *";

    if (st->conf.storage_class != NULL) {
        snprintf(tier, sizeof(tier), "x-ms-access-tier: %.60s",
                 st->conf.storage_class);
        req.headers[req.nheaders++] = tier;
    }

    rc = ngx_http_reductrai_azure_request(st, &req, &h, err);

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK
        && ngx_http_reductrai_azure_exists(h))
    {
        rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

done:

    EVP_MD_CTX_free(whole);
    ngx_http_reductrai_buf_free(&xml);

    return rc;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_get(ngx_http_reductrai_storage_t *st,
    const char *key, int64_t offset, int64_t length,
    ngx_http_reductrai_sink_pt sink, void *data,
    ngx_http_reductrai_storage_err_t *err)
{
    int                              tries;
    char                             range[80];
    int64_t                          size, from, to;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_window_t      w;
    ngx_http_reductrai_azure_req_t   req;
    ngx_http_reductrai_storage_rc_e  rc;

    if (length == 0) {
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    if (offset < 0) {
        /* x-ms-range has no suffix form: the size first */

        rc = ngx_http_reductrai_azure_head(st, key, &size, err);
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
    w.start = offset;
    w.end = length < 0 ? -1 : offset + length;

    range[0] = '\0';

    if (w.end >= 0) {
        snprintf(range, sizeof(range), "x-ms-range: bytes=%lld-%lld",
                 (long long) offset, (long long) w.end - 1);

    } else if (offset > 0) {
        snprintf(range, sizeof(range), "x-ms-range: bytes=%lld-",
                 (long long) offset);
    }

    for (tries = 0; tries < 3; tries++) {
        memset(&req, 0, sizeof(req));

        req.method = "GET";
        req.key = key;
        req.query = "";
        req.window = &w;

        if (range[0]) {
            req.headers[req.nheaders++] = range;
        }

        w.started = 0;

        rc = ngx_http_reductrai_azure_request(st, &req, &h, err);

        if (rc == NGX_HTTP_REDUCTRAI_STORAGE_FATAL && h != NULL
            && h->status == 416)
        {
            err->status = 0;
            err->message[0] = '\0';
            return NGX_HTTP_REDUCTRAI_STORAGE_OK;
        }

        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            return rc;
        }

        if (w.end < 0 || !ngx_http_reductrai_http_window_next(&w, &from, &to)) {
            return NGX_HTTP_REDUCTRAI_STORAGE_OK;
        }

        snprintf(range, sizeof(range), "x-ms-range: bytes=%lld-%lld",
                 (long long) from, (long long) to);
    }

    ngx_http_reductrai_storage_error(err, 0, "incomplete ranged response");

    return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_head(ngx_http_reductrai_storage_t *st,
    const char *key, int64_t *size, ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_azure_req_t   req;
    ngx_http_reductrai_storage_rc_e  rc;

    memset(&req, 0, sizeof(req));

    req.method = "HEAD";
    req.key = key;
    req.query = "";

    rc = ngx_http_reductrai_azure_request(st, &req, &h, err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        *size = h->content_length;
    }

    return rc;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_list(ngx_http_reductrai_storage_t *st,
    const char *prefix, ngx_http_reductrai_list_pt handler, void *data,
    ngx_http_reductrai_storage_err_t *err)
{
    int                              stop;
    char                             eprefix[4096], *query, *page;
    char                             name[1024], num[32], marker[2048];
    char                             emarker[6200];
    size_t                           len;
    const char                      *pos, *end, *t, *te, *p, *q, *qe;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_azure_req_t   req;
    ngx_http_reductrai_storage_rc_e  rc;

    if (ngx_http_reductrai_http_uri_encode(eprefix, sizeof(eprefix), prefix, 0)
        == 0 && prefix[0] != '\0')
    {
        ngx_http_reductrai_storage_error(err, 0, "prefix too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    query = malloc(sizeof(eprefix) + sizeof(emarker) + 96);
    if (query == NULL) {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    emarker[0] = '\0';
    rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;

    for ( ;; ) {
        sprintf(query, "comp=list%s%s&maxresults=1000&prefix=%s"
                "&restype=container", emarker[0] ? "&marker=" : "", emarker,
                eprefix);

        memset(&req, 0, sizeof(req));

        req.method = "GET";
        req.query = query;

        rc = ngx_http_reductrai_azure_request(st, &req, &h, err);
        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            break;
        }

        len = h->body.len;
        page = malloc(len + 1);

        if (page == NULL) {
            ngx_http_reductrai_storage_error(err, 0, "out of memory");
            rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
            break;
        }

        if (len > 0) {
            memcpy(page, h->body.data, len);
        }

        page[len] = '\0';

        pos = page;
        end = page + len;
        stop = 0;

        while (!stop
               && ngx_http_reductrai_http_xml_next(&pos, end, "Blob", &t, &te)
                  == 0)
        {
            p = t;

            if (ngx_http_reductrai_http_xml_next(&p, te, "Name", &q, &qe) != 0
                || (size_t) (qe - q) >= sizeof(name))
            {
                continue;
            }

            (void) ngx_http_reductrai_http_xml_unescape(q, qe, name,
                                                        sizeof(name));

            num[0] = '\0';
            p = t;

            if (ngx_http_reductrai_http_xml_next(&p, te, "Content-Length", &q,
                                                 &qe)
                == 0)
            {
                (void) ngx_http_reductrai_http_xml_unescape(q, qe, num,
                                                            sizeof(num));
            }

            stop = handler(data, name, num[0] ? strtoll(num, NULL, 10) : -1);
        }

        marker[0] = '\0';
        pos = page;

        if (ngx_http_reductrai_http_xml_next(&pos, end, "NextMarker", &t, &te)
            == 0 && (size_t) (te - t) < sizeof(marker))
        {
            (void) ngx_http_reductrai_http_xml_unescape(t, te, marker,
                                                        sizeof(marker));
        }

        free(page);

        if (stop || marker[0] == '\0') {
            break;
        }

        if (ngx_http_reductrai_http_uri_encode(emarker, sizeof(emarker),
                                               marker, 0)
            == 0)
        {
            ngx_http_reductrai_storage_error(err, 0, "NextMarker too long");
            rc = NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
            break;
        }
    }

    free(query);

    return rc;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_probe(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_storage_err_t *err)
{
    char                             eprefix[4096], query[4200], code[64];
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_azure_req_t   req;
    ngx_http_reductrai_storage_rc_e  rc;

    (void) ngx_http_reductrai_http_uri_encode(eprefix, sizeof(eprefix),
                                              st->prefix, 0);
    snprintf(query, sizeof(query), "comp=list&maxresults=1&prefix=%s"
             "&restype=container", eprefix);

    memset(&req, 0, sizeof(req));

    req.method = "GET";
    req.query = query;

    rc = ngx_http_reductrai_azure_request(st, &req, &h, err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_FATAL && h != NULL
        && h->status == 403
        && ngx_http_reductrai_azure_code(h, code, sizeof(code)) == 0
        && (strcmp(code, "AuthorizationPermissionMismatch") == 0
            || strcmp(code, "AuthorizationResourceTypeMismatch") == 0))
    {
        /* authenticated; a write-only SAS may not list */
        err->status = 0;
        err->message[0] = '\0';
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND) {
        /* ContainerNotFound will not heal by itself */
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    return rc;
}


static void
ngx_http_reductrai_azure_cleanup(ngx_http_reductrai_storage_t *st)
{
    ngx_http_reductrai_azure_t  *az;

    az = st->data;

    if (az == NULL) {
        return;
    }

    memset(az->key, 0, sizeof(az->key));

    if (az->env_sas != NULL) {
        memset(az->env_sas, 0, strlen(az->env_sas));
        free(az->env_sas);
    }

    free(az->origin);
    free(az->base_path);
    free(az);

    st->data = NULL;

    ngx_http_reductrai_http_use(-1);
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_request(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_azure_req_t *req, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err)
{
    int                              n;
    char                             url[NGX_HTTP_REDUCTRAI_AZURE_URL_MAX];
    char                             path[NGX_HTTP_REDUCTRAI_AZURE_URL_MAX];
    char                             ekey[NGX_HTTP_REDUCTRAI_AZURE_URL_MAX];
    char                             pool[8192], date[40], sig[64], *p;
    char                            *last;
    size_t                           nlines, i, len;
    const char                      *lines[NGX_HTTP_REDUCTRAI_AZURE_LINES];
    ngx_http_reductrai_buf_t         sts;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_azure_t      *az;
    ngx_http_reductrai_storage_rc_e  rc;

    az = st->data;
    *hp = NULL;

    if (req->key != NULL) {
        if (ngx_http_reductrai_http_uri_encode(ekey, sizeof(ekey), req->key, 1)
            == 0)
        {
            ngx_http_reductrai_storage_error(err, 0, "key too long");
            return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
        }

        n = snprintf(path, sizeof(path), "%s/%s/%s", az->base_path,
                     st->bucket, ekey);

    } else {
        n = snprintf(path, sizeof(path), "%s/%s", az->base_path, st->bucket);
    }

    if (n < 0 || (size_t) n >= sizeof(path)
        || snprintf(url, sizeof(url), "%s%s%s%s%s%s", az->origin, path,
                    req->query[0] || az->sas ? "?" : "", req->query,
                    req->query[0] && az->sas ? "&" : "",
                    az->sas ? az->sas : "")
           >= (int) sizeof(url))
    {
        ngx_http_reductrai_storage_error(err, 0, "URL too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    h = ngx_http_reductrai_http_begin(&st->conf, req->method, url, err);
    if (h == NULL) {
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    *hp = h;
    ngx_http_reductrai_http_secret(h, az->sas);

    p = pool;
    last = pool + sizeof(pool);
    nlines = 0;

#define ngx_http_reductrai_azure_line(...)                                   \
    do {                                                                     \
        n = snprintf(p, (size_t) (last - p), __VA_ARGS__);                   \
        if (n < 0 || n >= last - p                                           \
            || nlines >= NGX_HTTP_REDUCTRAI_AZURE_LINES - 1)                 \
        {                                                                    \
            ngx_http_reductrai_storage_error(err, 0, "headers too long");    \
            return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;                         \
        }                                                                    \
        lines[nlines++] = p;                                                 \
        p += n + 1;                                                          \
    } while (0)

    ngx_http_reductrai_http_date(date, sizeof(date), time(NULL));

    ngx_http_reductrai_azure_line("x-ms-date: %s", date);
    ngx_http_reductrai_azure_line("x-ms-version: %s",
                                  NGX_HTTP_REDUCTRAI_AZURE_VERSION);

    if (req->body) {
        /* signed, so sent explicitly (libcurl would add the same) */
        ngx_http_reductrai_azure_line("Content-Length: %lld",
                                      (long long) req->length);
    }

    if (req->md5 != NULL) {
        ngx_http_reductrai_azure_line("Content-MD5: %s", req->md5);
    }

    for (i = 0; i < req->nheaders; i++) {
        ngx_http_reductrai_azure_line("%s", req->headers[i]);
    }

    if (az->key_len > 0) {
        memset(&sts, 0, sizeof(sts));

        if (ngx_http_reductrai_azure_string_to_sign(&sts, req->method, lines,
                                                    nlines, st->account,
                                                    path, req->query)
            != 0
            || ngx_http_reductrai_azure_signature(az->key, az->key_len,
                                                  (char *) sts.data, sts.len,
                                                  sig, sizeof(sig))
               != 0)
        {
            ngx_http_reductrai_buf_free(&sts);
            ngx_http_reductrai_storage_error(err, 0, "signing failed");
            return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
        }

        ngx_http_reductrai_buf_free(&sts);

        ngx_http_reductrai_azure_line("Authorization: SharedKey %s:%s",
                                      st->account, sig);
    }

#undef ngx_http_reductrai_azure_line

    for (i = 0; i < nlines; i++) {
        if (ngx_http_reductrai_http_header(h, "%s", lines[i]) != 0) {
            ngx_http_reductrai_storage_error(err, 0, "out of memory");
            return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        }
    }

    if (req->body) {
        if (req->mem != NULL) {
            ngx_http_reductrai_http_body_mem(h, req->mem,
                                             (size_t) req->length);

        } else {
            ngx_http_reductrai_http_body_fd(h, req->fd, req->offset,
                                            req->length);
        }
    }

    h->window = req->window;

    rc = ngx_http_reductrai_http_perform(h, err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_FATAL && h->status == 403
        && az->hint != NULL)
    {
        len = strlen(err->message);
        snprintf(err->message + len, sizeof(err->message) - len, " (%s)",
                 az->hint);
    }

    return rc;
}


/* 409 BlobAlreadyExists, 412: If-None-Match kept a complete blob */

static int
ngx_http_reductrai_azure_exists(ngx_http_reductrai_http_t *h)
{
    char  code[64];

    if (h == NULL) {
        return 0;
    }

    if (h->status == 412) {
        return 1;
    }

    return h->status == 409
           && ngx_http_reductrai_azure_code(h, code, sizeof(code)) == 0
           && strcmp(code, "BlobAlreadyExists") == 0;
}


static int
ngx_http_reductrai_azure_code(ngx_http_reductrai_http_t *h, char *code,
    size_t size)
{
    const char  *pos, *t, *te;

    pos = (char *) h->body.data;

    if (h->body.len == 0
        || ngx_http_reductrai_http_xml_next(&pos, pos + h->body.len, "Code", &t,
                                            &te)
           != 0)
    {
        return -1;
    }

    (void) ngx_http_reductrai_http_xml_unescape(t, te, code, size);

    return 0;
}


int
ngx_http_reductrai_azure_string_to_sign(ngx_http_reductrai_buf_t *out,
    const char *method, const char **headers, size_t nheaders,
    const char *account, const char *path, const char *query)
{
    int                                 rc;
    char                               *s, **xms, *q, *amp, *eq;
    size_t                              i, j, nxms, nparams, len, n;
    const char                         *v;
    ngx_http_reductrai_azure_param_t   *params;

    static const char  *standard[] = {
        "Content-Encoding", "Content-Language", "Content-Length",
        "Content-MD5", "Content-Type", "Date", "If-Modified-Since",
        "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"
    };

    rc = -1;
    q = NULL;
    nparams = 0;
    nxms = 0;

    xms = calloc(nheaders + 1, sizeof(char *));
    params = calloc(strlen(query) / 2 + 2,
                    sizeof(ngx_http_reductrai_azure_param_t));

    len = strlen(method) + strlen(account) + strlen(path) + 64;

    for (i = 0; i < nheaders; i++) {
        len += strlen(headers[i]) + 2;
    }

    len += 2 * strlen(query) + 16;

    if (xms == NULL || params == NULL
        || ngx_http_reductrai_buf_reserve(out, len) != 0)
    {
        goto failed;
    }

    s = (char *) out->data;
    s += sprintf(s, "%s\n", method);

    for (i = 0; i < sizeof(standard) / sizeof(standard[0]); i++) {
        v = ngx_http_reductrai_azure_find(headers, nheaders, standard[i]);

        /* since 2015-02-21, a zero Content-Length is signed as empty */
        if (v != NULL && i == 2 && strcmp(v, "0") == 0) {
            v = NULL;
        }

        s += sprintf(s, "%s\n", v ? v : "");
    }

    /* x-ms-*: lowercased, sorted, "name:value" with trimmed values */

    for (i = 0; i < nheaders; i++) {
        if (strncasecmp(headers[i], "x-ms-", 5) != 0) {
            continue;
        }

        n = strlen(headers[i]);

        xms[nxms] = malloc(n + 1);
        if (xms[nxms] == NULL) {
            goto failed;
        }

        for (j = 0; headers[i][j] && headers[i][j] != ':'; j++) {
            xms[nxms][j] = (char) tolower((u_char) headers[i][j]);
        }

        v = headers[i] + j + (headers[i][j] == ':');

        while (*v == ' ' || *v == '\t') {
            v++;
        }

        sprintf(xms[nxms] + j, ":%s", v);
        nxms++;
    }

    qsort(xms, nxms, sizeof(char *), ngx_http_reductrai_azure_header_cmp);

    for (i = 0; i < nxms; i++) {
        s += sprintf(s, "%s\n", xms[i]);
    }

    s += sprintf(s, "/%s%s", account, path);

    /* the query: decoded, names lowercased and sorted, values joined */

    if (query[0] != '\0') {
        q = strdup(query);
        if (q == NULL) {
            goto failed;
        }

        for (v = q; v != NULL; v = amp ? amp + 1 : NULL) {
            amp = strchr(v, '&');

            if (amp != NULL) {
                *amp = '\0';
            }

            if (*v == '\0') {
                continue;
            }

            eq = strchr(v, '=');

            params[nparams].name = (char *) v;
            params[nparams].value = eq ? eq + 1 : (char *) "";

            if (eq != NULL) {
                *eq = '\0';
            }

            len = ngx_http_reductrai_azure_decode(params[nparams].name,
                                                  params[nparams].name,
                                                  strlen(v));
            for (j = 0; j < len; j++) {
                params[nparams].name[j] =
                    (char) tolower((u_char) params[nparams].name[j]);
            }

            if (eq != NULL) {
                (void) ngx_http_reductrai_azure_decode(eq + 1, eq + 1,
                                                       strlen(eq + 1));
            }

            nparams++;
        }

        qsort(params, nparams, sizeof(ngx_http_reductrai_azure_param_t),
              ngx_http_reductrai_azure_param_cmp);

        for (i = 0; i < nparams; i++) {
            if (i > 0 && strcmp(params[i].name, params[i - 1].name) == 0) {
                s += sprintf(s, ",%s", params[i].value);
                continue;
            }

            s += sprintf(s, "\n%s:%s", params[i].name, params[i].value);
        }
    }

    out->len = (size_t) (s - (char *) out->data);
    rc = 0;

failed:

    if (xms != NULL) {
        for (i = 0; i < nxms; i++) {
            free(xms[i]);
        }
    }

    free(xms);
    free(params);
    free(q);

    return rc;
}


int
ngx_http_reductrai_azure_signature(const u_char *key, size_t klen,
    const char *sts, size_t len, char *sig, size_t size)
{
    u_char  mac[32];

    if (size < 45
        || ngx_http_reductrai_http_hmac_sha256(key, klen, sts, len, mac) != 0)
    {
        return -1;
    }

    (void) ngx_http_reductrai_http_base64(sig, mac, 32, 0);

    return 0;
}


static size_t
ngx_http_reductrai_azure_decode(char *dst, const char *src, size_t len)
{
    int          hi, lo;
    size_t       n;
    const char  *end;

    end = src + len;
    n = 0;

    while (src < end) {
        if (*src == '%' && end - src >= 3
            && (hi = isxdigit((u_char) src[1]) ? src[1] : 0)
            && (lo = isxdigit((u_char) src[2]) ? src[2] : 0))
        {
            hi = isdigit(hi) ? hi - '0' : (tolower(hi) - 'a' + 10);
            lo = isdigit(lo) ? lo - '0' : (tolower(lo) - 'a' + 10);
            dst[n++] = (char) (hi << 4 | lo);
            src += 3;
            continue;
        }

        dst[n++] = (*src == '+') ? ' ' : *src;
        src++;
    }

    dst[n] = '\0';

    return n;
}


/* query parameters: by name, then value (values of one name are joined) */

static int ngx_libc_cdecl
ngx_http_reductrai_azure_param_cmp(const void *a, const void *b)
{
    int                                      rc;
    const ngx_http_reductrai_azure_param_t  *pa, *pb;

    pa = a;
    pb = b;

    rc = strcmp(pa->name, pb->name);

    if (rc != 0) {
        return rc;
    }

    return strcmp(pa->value, pb->value);
}


/* "name:value" lines by name; a name sorts before its longer extensions */

static int ngx_libc_cdecl
ngx_http_reductrai_azure_header_cmp(const void *a, const void *b)
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


static const char *
ngx_http_reductrai_azure_find(const char **headers, size_t n,
    const char *name)
{
    size_t       i, len;
    const char  *v;

    len = strlen(name);

    for (i = 0; i < n; i++) {
        if (strncasecmp(headers[i], name, len) == 0 && headers[i][len] == ':')
        {
            v = headers[i] + len + 1;

            while (*v == ' ' || *v == '\t') {
                v++;
            }

            return v;
        }
    }

    return NULL;
}
