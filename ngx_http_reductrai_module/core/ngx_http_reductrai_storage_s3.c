
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * s3://bucket[/prefix]: Amazon S3 and the stores that speak its protocol
 * (MinIO, Ceph RGW, Cloudflare R2, Wasabi), and gs:// through the XML API
 * of Google Cloud Storage, with HMAC keys (SigV4) or OAuth2 tokens.
 *
 * Requests are signed by libcurl (CURLOPT_AWS_SIGV4), which in 7.88 needs
 * help: x-amz-content-sha256 is set here to the payload's real SHA-256,
 * and queries are given sorted with '=' on every parameter.  Every body
 * carries Content-MD5, which Object Lock buckets require.
 *
 * An object is never half-visible and never rewritten: a HEAD first, and
 * a conditional PUT (If-None-Match: *, x-goog-if-generation-match: 0).
 * Segments above multipart_threshold go up part by part from the spool
 * file; a failed multipart upload is aborted, and one left behind by a
 * crash is found (ListMultipartUploads on the key) and aborted before the
 * next attempt.
 */


#include "ngx_http_reductrai_http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#define NGX_HTTP_REDUCTRAI_S3_MAX_PARTS     10000


typedef struct {
    char                           *endpoint_scheme;  /* "https" */
    char                           *endpoint_host;    /* host[:port] */
    char                           *endpoint_path;    /* "" or "/x" */

    /* derived in init: where requests go */
    char                           *origin;           /* scheme://host */
    char                           *host;             /* the Host header */
    char                           *path;             /* "/bucket" or "" */
    char                           *region;
    char                           *sigv4;            /* aws:amz:R:s3 */

    const char                     *access_key;
    const char                     *secret_key;
    const char                     *session_token;
    char                           *env_access_key;
    char                           *env_secret_key;
    char                           *env_session_token;
    ngx_http_reductrai_aws_creds_t *creds;            /* or temporary */
    ngx_http_reductrai_token_t     *gce;              /* gs:// metadata */

    unsigned                        gcs:1;
    unsigned                        virtual_style:1;
    unsigned                        style_set:1;
    unsigned                        no_creds:1;       /* nothing found */
    int                             no_conditional;   /* atomic */

    ngx_http_reductrai_bearer_pt    bearer;
    void                           *bearer_data;
    void                          (*bearer_cleanup)(void *data);
} ngx_http_reductrai_s3_t;


static int ngx_http_reductrai_s3_create(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen);
static int ngx_http_reductrai_s3_init(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_probe(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_storage_err_t *err);
static void ngx_http_reductrai_s3_cleanup(ngx_http_reductrai_storage_t *st);

static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_put_object(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_multipart(
    ngx_http_reductrai_storage_t *st, const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_parts(
    ngx_http_reductrai_storage_t *st, const char *key, const char *id,
    int fd, int64_t size, ngx_http_reductrai_buf_t *xml,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_complete(
    ngx_http_reductrai_storage_t *st, const char *key, const char *id,
    ngx_http_reductrai_buf_t *xml, int *exists,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_abort(
    ngx_http_reductrai_storage_t *st, const char *key, const char *id,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_abort_stale(
    ngx_http_reductrai_storage_t *st, const char *key,
    ngx_http_reductrai_storage_err_t *err);
static void ngx_http_reductrai_s3_list_query(char *buf, size_t size,
    const char *eprefix, const char *emarker);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_list_next(
    const char *page, size_t len, char *emarker, size_t size,
    ngx_http_reductrai_storage_err_t *err);
static size_t ngx_http_reductrai_s3_object_headers(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    char *buf, size_t size);
static const char *ngx_http_reductrai_s3_conditional(
    ngx_http_reductrai_s3_t *s3);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_write(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_request(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_keys(
    ngx_http_reductrai_s3_t *s3, ngx_http_reductrai_aws_keys_t *keys,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_request_keyed(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    ngx_http_reductrai_aws_keys_t *keys, char *token,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_s3_sign(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_http_req_t *req, const char *path,
    ngx_http_reductrai_aws_keys_t *keys, ngx_http_reductrai_http_lines_t *l,
    ngx_http_reductrai_storage_err_t *err);
static int ngx_http_reductrai_s3_endpoint(ngx_http_reductrai_s3_t *s3,
    const char *endpoint, char *err, size_t errlen);
static int ngx_http_reductrai_s3_identity(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen);
static void ngx_http_reductrai_s3_no_creds(ngx_http_reductrai_s3_t *s3,
    ngx_http_reductrai_storage_err_t *err);
static char *ngx_http_reductrai_s3_strdup_env(const char *name);
static void ngx_http_reductrai_s3_free_derived(ngx_http_reductrai_s3_t *s3);
static size_t ngx_http_reductrai_sigv4_line(char *dst, size_t size,
    const char *line);


const ngx_http_reductrai_storage_backend_t  ngx_http_reductrai_storage_s3 = {
    "s3",
    ngx_http_reductrai_s3_create,
    ngx_http_reductrai_s3_init,
    ngx_http_reductrai_http_put,
    ngx_http_reductrai_http_get,
    ngx_http_reductrai_http_head,
    ngx_http_reductrai_http_list,
    ngx_http_reductrai_s3_probe,
    ngx_http_reductrai_s3_cleanup
};


static const ngx_http_reductrai_http_store_t  ngx_http_reductrai_s3_store = {
    ngx_http_reductrai_s3_request,
    1,                                      /* x-amz-content-sha256 */
    ngx_http_reductrai_s3_put_object,
    ngx_http_reductrai_s3_multipart,
    "Range",
    1,                                      /* "bytes=-N" works */
    "Contents",
    "Key",
    "Size",
    ngx_http_reductrai_s3_list_query,
    ngx_http_reductrai_s3_list_next
};


static int
ngx_http_reductrai_s3_create(ngx_http_reductrai_storage_t *st, char *err,
    size_t errlen)
{
    return ngx_http_reductrai_s3_setup(st, 0, NULL, NULL, NULL, err, errlen);
}


int
ngx_http_reductrai_s3_setup(ngx_http_reductrai_storage_t *st, int gcs,
    ngx_http_reductrai_bearer_pt bearer, void *data,
    void (*cleanup)(void *data), char *err, size_t errlen)
{
    const char                         *p;
    ngx_http_reductrai_s3_t            *s3;
    ngx_http_reductrai_storage_conf_t  *conf;

    conf = &st->conf;

    s3 = calloc(1, sizeof(ngx_http_reductrai_s3_t));
    if (s3 == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    st->data = s3;
    ngx_http_reductrai_http_use(1);

    st->http = &ngx_http_reductrai_s3_store;

    s3->gcs = gcs ? 1 : 0;
    s3->bearer = bearer;
    s3->bearer_data = data;
    s3->bearer_cleanup = cleanup;

    if (conf->style != NULL) {
        if (strcmp(conf->style, "path") == 0) {
            s3->virtual_style = 0;

        } else if (strcmp(conf->style, "virtual") == 0) {
            s3->virtual_style = 1;

        } else {
            snprintf(err, errlen, "style must be \"path\" or \"virtual\"");
            return -1;
        }

        s3->style_set = 1;
    }

    for (p = st->bucket; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '-' || *p == '.' || *p == '_'
              || (*p >= 'A' && *p <= 'Z')))
        {
            snprintf(err, errlen, "invalid bucket name \"%s\"", st->bucket);
            return -1;
        }
    }

    if (s3->virtual_style && strchr(st->bucket, '.') != NULL
        && conf->endpoint == NULL)
    {
        /* "a.b.s3.amazonaws.com" does not match the wildcard certificate */
        snprintf(err, errlen, "bucket \"%s\" has dots: use style=path",
                 st->bucket);
        return -1;
    }

    if (conf->sse != NULL
        && strcmp(conf->sse, "AES256") != 0
        && strcmp(conf->sse, "aws:kms") != 0
        && strcmp(conf->sse, "aws:kms:dsse") != 0)
    {
        snprintf(err, errlen, "sse must be \"AES256\", \"aws:kms\" or "
                 "\"aws:kms:dsse\"");
        return -1;
    }

    if (conf->kms_key_id != NULL
        && (conf->sse == NULL || strncmp(conf->sse, "aws:kms", 7) != 0))
    {
        snprintf(err, errlen, "kms_key_id= needs sse=aws:kms");
        return -1;
    }

    if ((conf->access_key == NULL) != (conf->secret_key == NULL)) {
        snprintf(err, errlen, "access_key= and secret_key= (or "
                 "secret_key_file=) go together");
        return -1;
    }

    if (conf->session_token != NULL && conf->access_key == NULL) {
        snprintf(err, errlen, "session_token= needs access_key= and "
                 "secret_key=");
        return -1;
    }

    if (conf->endpoint != NULL
        && ngx_http_reductrai_s3_endpoint(s3, conf->endpoint, err, errlen)
           != 0)
    {
        return -1;
    }

    return 0;
}


static int
ngx_http_reductrai_s3_init(ngx_http_reductrai_storage_t *st, char *err,
    size_t errlen)
{
    int                       port_default;
    char                     *host, *colon;
    size_t                    len;
    const char               *region, *scheme, *authority;
    ngx_http_reductrai_s3_t  *s3;

    s3 = st->data;

    ngx_http_reductrai_s3_free_derived(s3);

    /*
     * Credentials: the directive's, else the environment nginx's "env"
     * directive passed to this worker, else a platform's identity.
     * Requests go unsigned only with anonymous=on.
     */

    s3->access_key = st->conf.access_key;
    s3->secret_key = st->conf.secret_key;
    s3->session_token = st->conf.session_token;

    if (s3->bearer == NULL && s3->access_key == NULL) {
        s3->env_access_key = ngx_http_reductrai_s3_strdup_env(
                                                       "AWS_ACCESS_KEY_ID");
        s3->env_secret_key = ngx_http_reductrai_s3_strdup_env(
                                                   "AWS_SECRET_ACCESS_KEY");

        if (s3->env_access_key != NULL && s3->env_secret_key != NULL) {
            s3->access_key = s3->env_access_key;
            s3->secret_key = s3->env_secret_key;

            if (!s3->gcs) {
                s3->env_session_token = ngx_http_reductrai_s3_strdup_env(
                                                       "AWS_SESSION_TOKEN");
                s3->session_token = s3->env_session_token;
            }
        }
    }

    /*
     * Else temporary keys, as the AWS SDKs find them: a container's
     * endpoint, or on AWS itself (no endpoint=) the instance's role.
     */

    if (ngx_http_reductrai_s3_identity(st, err, errlen) != 0) {
        return -1;
    }

    if (s3->gcs) {
        region = st->conf.region ? st->conf.region : "auto";

    } else {
        region = st->conf.region;

        if (region == NULL) {
            region = getenv("AWS_REGION");
        }

        if (region == NULL || region[0] == '\0') {
            region = getenv("AWS_DEFAULT_REGION");
        }

        if (region == NULL || region[0] == '\0') {
            region = "us-east-1";
        }
    }

    s3->region = strdup(region);

    if (s3->endpoint_host != NULL) {
        scheme = s3->endpoint_scheme;
        authority = s3->endpoint_host;

        if (!s3->style_set) {
            /* MinIO and friends rarely have a wildcard DNS name */
            s3->virtual_style = 0;
        }

    } else {
        scheme = "https";
        authority = s3->gcs ? "storage.googleapis.com" : NULL;

        if (!s3->style_set) {
            s3->virtual_style = !s3->gcs && strchr(st->bucket, '.') == NULL;
        }
    }

    len = strlen(st->bucket) + strlen(s3->region) + 64
          + (authority ? strlen(authority) : 0);

    host = malloc(len);
    s3->origin = malloc(len + 16);
    s3->sigv4 = malloc(strlen(s3->region) + 16);
    s3->path = malloc(strlen(st->bucket)
                      + (s3->endpoint_path ? strlen(s3->endpoint_path) : 0)
                      + 2);

    if (host == NULL || s3->origin == NULL || s3->sigv4 == NULL
        || s3->path == NULL || s3->region == NULL)
    {
        free(host);
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    if (authority != NULL) {
        snprintf(host, len, "%s%s%s", s3->virtual_style ? st->bucket : "",
                 s3->virtual_style ? "." : "", authority);

    } else {
        snprintf(host, len, "%s%ss3.%s.amazonaws.com",
                 s3->virtual_style ? st->bucket : "",
                 s3->virtual_style ? "." : "", s3->region);
    }

    /* the Host header carries the port only when it is not the default */

    colon = strrchr(host, ':');
    port_default = 0;

    if (colon != NULL && strchr(colon, ']') == NULL) {
        port_default = (strcmp(scheme, "https") == 0
                        && strcmp(colon, ":443") == 0)
                       || (strcmp(scheme, "http") == 0
                           && strcmp(colon, ":80") == 0);
    }

    snprintf(s3->origin, len + 16, "%s://%s", scheme, host);

    if (port_default) {
        *colon = '\0';
    }

    s3->host = host;

    sprintf(s3->path, "%s%s%s", s3->endpoint_path ? s3->endpoint_path : "",
            s3->virtual_style ? "" : "/",
            s3->virtual_style ? "" : st->bucket);

    sprintf(s3->sigv4, "aws:amz:%s:s3", s3->region);

    return 0;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_put_object(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, ngx_http_reductrai_storage_err_t *err)
{
    char                             hbuf[1024];
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    if (ngx_http_reductrai_s3_object_headers(st, req, hbuf, sizeof(hbuf))
        == 0)
    {
        ngx_http_reductrai_storage_error(err, 0, "headers too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    rc = ngx_http_reductrai_s3_write(st, req, &h, err);

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK && h != NULL && h->status == 412) {
        /* completed meanwhile: the condition kept it as it was */
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    return rc;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_multipart(ngx_http_reductrai_storage_t *st,
    const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err)
{
    int                               exists;
    char                              id[1024], hbuf[1024];
    ssize_t                           n;
    const char                       *body;
    ngx_http_reductrai_buf_t          xml;
    ngx_http_reductrai_http_t        *h;
    ngx_http_reductrai_http_req_t     req;
    ngx_http_reductrai_storage_rc_e   rc;
    ngx_http_reductrai_storage_err_t  aerr;

    rc = ngx_http_reductrai_s3_abort_stale(st, key, err);
    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        return rc;
    }

    /* CreateMultipartUpload: the object's headers go here, not on parts */

    memset(&req, 0, sizeof(req));

    req.method = "POST";
    req.key = key;
    req.query = "uploads=";
    req.body = 1;
    req.mem = (u_char *) "";
    req.sha256 = NGX_HTTP_REDUCTRAI_EMPTY_SHA256;

    if (ngx_http_reductrai_s3_object_headers(st, &req, hbuf, sizeof(hbuf))
        == 0)
    {
        ngx_http_reductrai_storage_error(err, 0, "headers too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    rc = ngx_http_reductrai_s3_request(st, &req, &h, err);
    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        return rc;
    }

    body = (char *) h->body.data;
    n = h->body.len == 0 ? -1
        : ngx_http_reductrai_http_xml_text(body, body + h->body.len,
                                           "UploadId", id, sizeof(id));

    if (n <= 0 || (size_t) n >= sizeof(id)) {
        ngx_http_reductrai_storage_error(err, h->status, "no UploadId in "
                                         "the CreateMultipartUpload answer");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    memset(&xml, 0, sizeof(xml));
    exists = 0;

    rc = ngx_http_reductrai_s3_parts(st, key, id, fd, size, &xml, err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        rc = ngx_http_reductrai_s3_complete(st, key, id, &xml, &exists, err);
    }

    ngx_http_reductrai_buf_free(&xml);

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK || exists) {
        /* parts of a failed upload must not linger (and cost) */
        (void) ngx_http_reductrai_s3_abort(st, key, id, &aerr);
    }

    return rc;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_parts(ngx_http_reductrai_storage_t *st,
    const char *key, const char *id, int fd, int64_t size,
    ngx_http_reductrai_buf_t *xml, ngx_http_reductrai_storage_err_t *err)
{
    int                              n;
    char                             query[1200], eid[1100], etag[128];
    int64_t                          part, off, len;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    part = ngx_http_reductrai_http_part_size(st->conf.part_size, size,
                                             NGX_HTTP_REDUCTRAI_S3_MAX_PARTS,
                                             1024 * 1024);

    if (ngx_http_reductrai_http_uri_encode(eid, sizeof(eid), id, 0) == 0) {
        ngx_http_reductrai_storage_error(err, 0, "UploadId too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    if (ngx_http_reductrai_buf_reserve(xml, 64) != 0) {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    xml->len = (size_t) sprintf((char *) xml->data,
                                "<CompleteMultipartUpload>");

    for (n = 1, off = 0; off < size; n++, off += part) {
        len = size - off < part ? size - off : part;

        /* parameters in canonical order: partNumber < uploadId */
        snprintf(query, sizeof(query), "partNumber=%d&uploadId=%s", n, eid);

        rc = ngx_http_reductrai_http_put_part(st, key, query, fd, off, len,
                                              NULL, &h, err);
        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            return rc;
        }

        if (h->etag[0] == '\0') {
            ngx_http_reductrai_storage_error(err, h->status, "no ETag for "
                                             "part %d", n);
            return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        }

        /* ETags are quoted strings of hex digits: nothing to escape */
        snprintf(etag, sizeof(etag), "%s", h->etag);

        if (ngx_http_reductrai_buf_reserve(xml, 128 + strlen(etag)) != 0) {
            ngx_http_reductrai_storage_error(err, 0, "out of memory");
            return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        }

        xml->len += (size_t) sprintf((char *) xml->data + xml->len,
                                     "<Part><PartNumber>%d</PartNumber>"
                                     "<ETag>%s</ETag></Part>", n, etag);
    }

    if (ngx_http_reductrai_buf_reserve(xml, 32) != 0) {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    xml->len += (size_t) sprintf((char *) xml->data + xml->len,
                                 "</CompleteMultipartUpload>");

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_complete(ngx_http_reductrai_storage_t *st,
    const char *key, const char *id, ngx_http_reductrai_buf_t *xml,
    int *exists, ngx_http_reductrai_storage_err_t *err)
{
    char                             sha[65], md5[25], query[1200];
    char                             eid[1100], reason[256];
    u_char                           md[16];
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_http_req_t    req;
    ngx_http_reductrai_storage_rc_e  rc;

    (void) ngx_http_reductrai_http_uri_encode(eid, sizeof(eid), id, 0);
    snprintf(query, sizeof(query), "uploadId=%s", eid);

    ngx_http_reductrai_http_sha256_hex(xml->data, xml->len, sha);
    (void) EVP_Digest(xml->data, xml->len, md, NULL, EVP_md5(), NULL);
    (void) ngx_http_reductrai_http_base64(md5, md, 16, 0);

    memset(&req, 0, sizeof(req));

    req.method = "POST";
    req.key = key;
    req.query = query;
    req.body = 1;
    req.mem = xml->data;
    req.length = (int64_t) xml->len;
    req.sha256 = sha;
    req.md5 = md5;
    req.headers[req.nheaders++] = "Content-Type: application/xml";

    rc = ngx_http_reductrai_s3_write(st, &req, &h, err);

    if (h != NULL && h->status == 412) {
        /* the object exists: ours is not needed (and is aborted) */
        *exists = 1;
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        return rc;
    }

    /* S3 may answer 200 and report the failure in the body */

    if (h->body.len > 0
        && strstr((char *) h->body.data, "<Error>") != NULL)
    {
        (void) ngx_http_reductrai_http_xml_reason((char *) h->body.data,
                                                  h->body.len, reason,
                                                  sizeof(reason));
        ngx_http_reductrai_storage_error(err, h->status,
                                         "CompleteMultipartUpload: %s",
                                         reason);
        ngx_http_reductrai_http_scrub_all(h, err);
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_abort(ngx_http_reductrai_storage_t *st,
    const char *key, const char *id, ngx_http_reductrai_storage_err_t *err)
{
    char                             eid[1100], query[1200];
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    if (ngx_http_reductrai_http_uri_encode(eid, sizeof(eid), id, 0) == 0) {
        ngx_http_reductrai_storage_error(err, 0, "UploadId too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    snprintf(query, sizeof(query), "uploadId=%s", eid);

    rc = ngx_http_reductrai_http_plain(st, "DELETE", key, query, &h, err);

    /* NoSuchUpload: gone already */
    return rc == NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND
           ? NGX_HTTP_REDUCTRAI_STORAGE_OK : rc;
}


/*
 * A crash during a multipart upload leaves its parts behind, invisible but
 * stored (and billed).  The key is ours alone (it names this instance and
 * worker, and the segment's lock is held), so any upload in progress for
 * it is such a leftover.
 */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_abort_stale(ngx_http_reductrai_storage_t *st,
    const char *key, ngx_http_reductrai_storage_err_t *err)
{
    char                             ekey[4096], query[4200], name[1024];
    char                             id[1024], *list;
    size_t                           len;
    ssize_t                          n;
    const char                      *pos, *end, *t, *te;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    if (ngx_http_reductrai_http_uri_encode(ekey, sizeof(ekey), key, 0) == 0) {
        ngx_http_reductrai_storage_error(err, 0, "key too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    snprintf(query, sizeof(query), "prefix=%s&uploads=", ekey);

    rc = ngx_http_reductrai_http_plain(st, "GET", NULL, query, &h, err);

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        if (h != NULL
            && (h->status == 501 || h->status == 403 || h->status == 405))
        {
            /*
             * Not implemented by this store, or not allowed by the policy
             * (s3:ListBucketMultipartUploads): go on, as a lifecycle rule
             * (AbortIncompleteMultipartUpload) must clean up then.
             */
            err->status = 0;
            err->message[0] = '\0';
            return NGX_HTTP_REDUCTRAI_STORAGE_OK;
        }

        return rc;
    }

    list = ngx_http_reductrai_http_body_copy(h, &len, err);
    if (list == NULL) {
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    pos = list;
    end = list + len;
    rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;

    while (ngx_http_reductrai_http_xml_next(&pos, end, "Upload", &t, &te)
           == 0)
    {
        n = ngx_http_reductrai_http_xml_text(t, te, "Key", name, sizeof(name));

        if (n < 0 || (size_t) n >= sizeof(name) || strcmp(name, key) != 0) {
            continue;
        }

        n = ngx_http_reductrai_http_xml_text(t, te, "UploadId", id, sizeof(id));

        if (n < 0 || (size_t) n >= sizeof(id)) {
            continue;
        }

        rc = ngx_http_reductrai_s3_abort(st, key, id, err);

        if (rc == NGX_HTTP_REDUCTRAI_STORAGE_RETRY) {
            break;
        }

        /* without s3:AbortMultipartUpload: the upload itself goes on */
        rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    free(list);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        err->status = 0;
        err->message[0] = '\0';
    }

    return rc;
}


/* ListObjectsV2, its parameters in canonical order */

static void
ngx_http_reductrai_s3_list_query(char *buf, size_t size, const char *eprefix,
    const char *emarker)
{
    snprintf(buf, size, "%s%s%slist-type=2&prefix=%s",
             emarker[0] ? "continuation-token=" : "", emarker,
             emarker[0] ? "&" : "", eprefix);
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_list_next(const char *page, size_t len, char *emarker,
    size_t size, ngx_http_reductrai_storage_err_t *err)
{
    char  flag[8], token[2048];

    emarker[0] = '\0';

    if (ngx_http_reductrai_http_xml_text(page, page + len, "IsTruncated",
                                         flag, sizeof(flag))
        != 4
        || strcmp(flag, "true") != 0)
    {
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    if (ngx_http_reductrai_http_xml_text(page, page + len,
                                         "NextContinuationToken", token,
                                         sizeof(token))
        >= (ssize_t) sizeof(token))
    {
        token[0] = '\0';
    }

    if (token[0] == '\0'
        || ngx_http_reductrai_http_uri_encode(emarker, size, token, 0) == 0)
    {
        ngx_http_reductrai_storage_error(err, 0, "truncated listing without "
                                         "a usable NextContinuationToken");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_probe(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_storage_err_t *err)
{
    char  eprefix[4096], query[4200];

    /* the policy only lacks s3:ListBucket */
    static const char  *codes[] = { "AccessDenied", NULL };

    (void) ngx_http_reductrai_http_uri_encode(eprefix, sizeof(eprefix),
                                              st->prefix, 0);
    snprintf(query, sizeof(query), "list-type=2&max-keys=1&prefix=%s",
             eprefix);

    return ngx_http_reductrai_http_probe(st, query, codes, err);
}


static void
ngx_http_reductrai_s3_cleanup(ngx_http_reductrai_storage_t *st)
{
    ngx_http_reductrai_s3_t  *s3;

    s3 = st->data;

    if (s3 == NULL) {
        return;
    }

    ngx_http_reductrai_s3_free_derived(s3);

    if (s3->bearer_cleanup != NULL) {
        s3->bearer_cleanup(s3->bearer_data);
    }

    free(s3->endpoint_scheme);
    free(s3->endpoint_host);
    free(s3->endpoint_path);
    free(s3);

    st->data = NULL;

    ngx_http_reductrai_http_use(-1);
}


static size_t
ngx_http_reductrai_s3_object_headers(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, char *buf, size_t size)
{
    int                       n;
    char                     *p, *last;
    ngx_http_reductrai_s3_t  *s3;

    s3 = st->data;
    p = buf;
    last = buf + size;

    req->headers[req->nheaders++] = "Content-Type: application/zstd";

    if (st->conf.sse != NULL) {
        n = snprintf(p, (size_t) (last - p),
                     "x-amz-server-side-encryption: %s", st->conf.sse);
        if (n < 0 || n >= last - p) {
            return 0;
        }

        req->headers[req->nheaders++] = p;
        p += n + 1;
    }

    if (st->conf.kms_key_id != NULL) {
        n = snprintf(p, (size_t) (last - p),
                     "x-amz-server-side-encryption-aws-kms-key-id: %s",
                     st->conf.kms_key_id);
        if (n < 0 || n >= last - p) {
            return 0;
        }

        req->headers[req->nheaders++] = p;
        p += n + 1;
    }

    if (st->conf.storage_class != NULL) {
        n = snprintf(p, (size_t) (last - p), "%s: %s",
                     s3->gcs ? "x-goog-storage-class" : "x-amz-storage-class",
                     st->conf.storage_class);
        if (n < 0 || n >= last - p) {
            return 0;
        }

        req->headers[req->nheaders++] = p;
        p += n + 1;
    }

    return (size_t) (p - buf) + 1;
}


static const char *
ngx_http_reductrai_s3_conditional(ngx_http_reductrai_s3_t *s3)
{
    if (s3->gcs) {
        return "x-goog-if-generation-match: 0";
    }

    if (__atomic_load_n(&s3->no_conditional, __ATOMIC_RELAXED)) {
        return NULL;
    }

    return "If-None-Match: *";
}


/* a write that must not replace an object, conditional where it can be */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_write(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err)
{
    size_t                           n;
    const char                      *cond;
    ngx_http_reductrai_s3_t         *s3;
    ngx_http_reductrai_storage_rc_e  rc;

    s3 = st->data;
    n = req->nheaders;

    for ( ;; ) {
        cond = ngx_http_reductrai_s3_conditional(s3);
        req->nheaders = n;

        if (cond != NULL) {
            req->headers[req->nheaders++] = cond;
        }

        rc = ngx_http_reductrai_s3_request(st, req, hp, err);

        if (*hp != NULL && (*hp)->status == 501 && cond != NULL && !s3->gcs) {
            /* a store that does not know conditional writes */
            __atomic_store_n(&s3->no_conditional, 1, __ATOMIC_RELAXED);
            continue;
        }

        return rc;
    }
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_request(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err)
{
    char                             token[4096];
    ngx_http_reductrai_s3_t         *s3;
    ngx_http_reductrai_aws_keys_t    keys;
    ngx_http_reductrai_storage_rc_e  rc;

    s3 = st->data;
    *hp = NULL;

    if (s3->no_creds) {
        ngx_http_reductrai_s3_no_creds(s3, err);
        ngx_http_reductrai_storage_creds_result(&st->creds, err);
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    if (s3->bearer != NULL) {
        /* before the handle is taken: the token fetch uses it too */
        rc = s3->bearer(s3->bearer_data, token, sizeof(token), err);
        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            return rc;
        }
    }

    rc = ngx_http_reductrai_s3_keys(s3, &keys, err);
    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        return rc;
    }

    rc = ngx_http_reductrai_s3_request_keyed(st, req, &keys, token, hp, err);

    ngx_http_reductrai_aws_keys_clear(&keys);

    if (s3->bearer != NULL) {
        ngx_http_reductrai_wipe(token, sizeof(token));
    }

    return rc;
}


/* the keys of this request: the configured ones, or the current temporary */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_keys(ngx_http_reductrai_s3_t *s3,
    ngx_http_reductrai_aws_keys_t *keys, ngx_http_reductrai_storage_err_t *err)
{
    if (s3->creds != NULL) {
        /* also before the handle is taken */
        return ngx_http_reductrai_aws_creds_get(s3->creds, keys, err);
    }

    keys->access_key[0] = '\0';
    keys->secret_key[0] = '\0';
    keys->session_token[0] = '\0';

    if (s3->access_key != NULL
        && (strlen(s3->access_key) >= sizeof(keys->access_key)
            || strlen(s3->secret_key) >= sizeof(keys->secret_key)
            || (s3->session_token != NULL
                && strlen(s3->session_token)
                   >= sizeof(keys->session_token))))
    {
        ngx_http_reductrai_storage_error(err, 0, "access key, secret key "
                                         "or session token too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    if (s3->access_key != NULL) {
        strcpy(keys->access_key, s3->access_key);
        strcpy(keys->secret_key, s3->secret_key);
    }

    if (s3->session_token != NULL) {
        strcpy(keys->session_token, s3->session_token);
    }

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_request_keyed(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, ngx_http_reductrai_aws_keys_t *keys,
    char *token, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err)
{
    char                             path[NGX_HTTP_REDUCTRAI_HTTP_URL_MAX];
    size_t                           i;
    ngx_http_reductrai_s3_t         *s3;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_http_lines_t  lines;
    ngx_http_reductrai_storage_rc_e  rc;

    s3 = st->data;

    rc = ngx_http_reductrai_http_open(st, req, s3->origin, s3->path, NULL,
                                      path, hp, err);
    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        return rc;
    }

    h = *hp;

    ngx_http_reductrai_http_secret(h, keys->secret_key);
    ngx_http_reductrai_http_secret(h, keys->session_token);

    /* the header lines, kept for our own signature when libcurl's fails */

    ngx_http_reductrai_http_lines_init(&lines);

    if (s3->bearer == NULL) {
        ngx_http_reductrai_http_line(&lines, "x-amz-content-sha256: %s",
                                     req->sha256 ? req->sha256
                                     : NGX_HTTP_REDUCTRAI_EMPTY_SHA256);
    }

    if (req->md5 != NULL) {
        ngx_http_reductrai_http_line(&lines, "Content-MD5: %s", req->md5);
    }

    if (s3->bearer == NULL && keys->session_token[0] != '\0') {
        ngx_http_reductrai_http_line(&lines, "x-amz-security-token: %s",
                                     keys->session_token);
    }

    for (i = 0; i < req->nheaders; i++) {
        ngx_http_reductrai_http_line(&lines, "%s", req->headers[i]);
    }

    if (s3->bearer != NULL) {
        ngx_http_reductrai_http_secret(h, token);
        ngx_http_reductrai_http_line(&lines, "Authorization: Bearer %s",
                                     token);

    } else if (keys->access_key[0] != '\0') {
        rc = ngx_http_reductrai_s3_sign(st, h, req, path, keys, &lines, err);
        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            return rc;
        }
    }

    rc = ngx_http_reductrai_http_send(h, &lines, req, err);

    if (s3->bearer != NULL && h->status == 401) {
        /* revoked or expired early: the next attempt gets a new token */
        (void) s3->bearer(s3->bearer_data, NULL, 0, NULL);
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    if (s3->creds != NULL && h->status == 403) {
        /* rotated or revoked: the next attempt fetches them again */
        ngx_http_reductrai_aws_creds_expire(s3->creds);
    }

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_FATAL && h->status == 403
        && s3->bearer == NULL && keys->access_key[0] == '\0')
    {
        ngx_http_reductrai_http_hint(err, "no credentials configured");
    }

    return rc;
}


/*
 * libcurl signs (CURLOPT_AWS_SIGV4) where it orders the signed headers
 * right; the other requests are signed here.
 */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_s3_sign(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_t *h, ngx_http_reductrai_http_req_t *req,
    const char *path, ngx_http_reductrai_aws_keys_t *keys,
    ngx_http_reductrai_http_lines_t *l, ngx_http_reductrai_storage_err_t *err)
{
    char                        date[32], auth[512];
    ngx_http_reductrai_s3_t    *s3;
    ngx_http_reductrai_sigv4_t  sig;

    s3 = st->data;

    if (l->overflow) {
        /* sending says so */
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    l->line[l->n] = "host: h";
    l->line[l->n + 1] = "x-amz-date: 0";

    if (ngx_http_reductrai_sigv4_curl_order_ok(l->line, l->n + 2)) {
        if (curl_easy_setopt(h->curl, CURLOPT_AWS_SIGV4, s3->sigv4)
            != CURLE_OK
            || curl_easy_setopt(h->curl, CURLOPT_USERNAME, keys->access_key)
               != CURLE_OK
            || curl_easy_setopt(h->curl, CURLOPT_PASSWORD, keys->secret_key)
               != CURLE_OK)
        {
            ngx_http_reductrai_storage_error(err, 0, "libcurl has no AWS "
                                             "SigV4 support");
            return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
        }

        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    /* libcurl 7.88 would order these headers wrong */

    ngx_http_reductrai_http_amz_date(date, sizeof(date), time(NULL));
    ngx_http_reductrai_http_line(l, "Host: %s", s3->host);
    ngx_http_reductrai_http_line(l, "x-amz-date: %s", date);

    memset(&sig, 0, sizeof(sig));
    sig.method = req->method;
    sig.path = path;
    sig.query = req->query;
    sig.headers = l->line;
    sig.nheaders = l->n;
    sig.payload_hash = req->sha256 ? req->sha256
                                   : NGX_HTTP_REDUCTRAI_EMPTY_SHA256;
    sig.access_key = keys->access_key;
    sig.secret_key = keys->secret_key;
    sig.region = s3->region;
    sig.service = "s3";
    sig.timestamp = date;

    if (ngx_http_reductrai_sigv4_sign(&sig, auth, sizeof(auth)) != 0) {
        ngx_http_reductrai_storage_error(err, 0, "signing failed");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    ngx_http_reductrai_http_line(l, "Authorization: %s", auth);

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static int
ngx_http_reductrai_s3_endpoint(ngx_http_reductrai_s3_t *s3,
    const char *endpoint, char *err, size_t errlen)
{
    size_t       len;
    const char  *p, *host, *slash;

    p = strstr(endpoint, "://");

    if (p != NULL) {
        len = (size_t) (p - endpoint);

        if (!(len == 4 && strncasecmp(endpoint, "http", 4) == 0)
            && !(len == 5 && strncasecmp(endpoint, "https", 5) == 0))
        {
            snprintf(err, errlen, "endpoint \"%s\" must be http:// or "
                     "https://", endpoint);
            return -1;
        }

        s3->endpoint_scheme = strndup(endpoint, len);
        host = p + 3;

    } else {
        s3->endpoint_scheme = strdup("https");
        host = endpoint;
    }

    slash = strchr(host, '/');
    len = slash ? (size_t) (slash - host) : strlen(host);

    if (len == 0 || memchr(host, '@', len) != NULL
        || memchr(host, '?', len) != NULL)
    {
        snprintf(err, errlen, "invalid endpoint \"%s\"", endpoint);
        return -1;
    }

    s3->endpoint_host = strndup(host, len);
    s3->endpoint_path = strdup(slash ? slash : "");

    if (s3->endpoint_scheme == NULL || s3->endpoint_host == NULL
        || s3->endpoint_path == NULL)
    {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    for (len = 0; s3->endpoint_scheme[len]; len++) {
        s3->endpoint_scheme[len] = (char) tolower(
                                      (u_char) s3->endpoint_scheme[len]);
    }

    len = strlen(s3->endpoint_path);
    while (len > 0 && s3->endpoint_path[len - 1] == '/') {
        s3->endpoint_path[--len] = '\0';
    }

    return 0;
}


/*
 * Else temporary keys, as the AWS SDKs find them (a web identity, a
 * container's endpoint, or on AWS itself, without endpoint=, the
 * instance's role); for gs://, a token of the metadata server.  Then
 * says where the credentials come from.
 */

static int
ngx_http_reductrai_s3_identity(ngx_http_reductrai_storage_t *st, char *err,
    size_t errlen)
{
    int                       anonymous, on_cloud;
    const char               *source;
    ngx_http_reductrai_s3_t  *s3;

    s3 = st->data;

    anonymous = st->conf.anonymous && strcmp(st->conf.anonymous, "on") == 0;
    on_cloud = st->conf.endpoint == NULL;

    if (!anonymous && s3->bearer == NULL && s3->access_key == NULL) {
        if (s3->gcs) {
            s3->gce = ngx_http_reductrai_token_gce(&st->conf, &st->creds,
                                                   on_cloud, err, errlen);
            if (s3->gce == NULL && err[0] != '\0') {
                return -1;
            }

            if (s3->gce != NULL) {
                s3->bearer = ngx_http_reductrai_token_bearer;
                s3->bearer_data = s3->gce;
            }

        } else {
            s3->creds = ngx_http_reductrai_aws_creds_create(&st->conf,
                                                            &st->creds,
                                                            on_cloud, err,
                                                            errlen);
            if (s3->creds == NULL && err[0] != '\0') {
                return -1;
            }
        }
    }

    s3->no_creds = 0;

    if (s3->gce != NULL) {
        source = "metadata server";

    } else if (s3->bearer != NULL) {
        /* the only bearer set up at configuration time */
        source = "service account key";

    } else if (s3->creds != NULL) {
        source = ngx_http_reductrai_aws_creds_source(s3->creds);

    } else if (s3->env_access_key != NULL) {
        source = s3->gcs ? "HMAC keys (environment)"
                         : "environment (AWS_ACCESS_KEY_ID)";

    } else if (s3->access_key != NULL) {
        source = s3->gcs ? "HMAC keys (access_key=)"
                         : "static keys (access_key=)";

    } else if (anonymous) {
        source = "anonymous";

    } else {
        source = "none";
        s3->no_creds = 1;
    }

    ngx_http_reductrai_storage_creds_source(st, source);

    return 0;
}


/* says what would have given credentials, in the SDKs' order */

static void
ngx_http_reductrai_s3_no_creds(ngx_http_reductrai_s3_t *s3,
    ngx_http_reductrai_storage_err_t *err)
{
    if (s3->gcs) {
        ngx_http_reductrai_storage_error(err, 0, "no credentials: no "
                         "credentials_file= or GOOGLE_APPLICATION_CREDENTIALS,"
                         " no HMAC keys, no metadata server (GCE_METADATA_HOST)"
                         "; anonymous=on sends requests unsigned");
        return;
    }

    ngx_http_reductrai_storage_error(err, 0, "no credentials: no access_key=,"
                     " AWS_ACCESS_KEY_ID, AWS_ROLE_ARN with "
                     "AWS_WEB_IDENTITY_TOKEN_FILE, container endpoint or "
                     "instance metadata (passed with nginx's \"env\"?); "
                     "anonymous=on sends requests unsigned");
}


static char *
ngx_http_reductrai_s3_strdup_env(const char *name)
{
    char  *v;

    v = getenv(name);

    return (v != NULL && v[0] != '\0') ? strdup(v) : NULL;
}


static void
ngx_http_reductrai_s3_free_derived(ngx_http_reductrai_s3_t *s3)
{
    free(s3->origin);
    free(s3->host);
    free(s3->path);
    free(s3->region);
    free(s3->sigv4);
    free(s3->env_access_key);
    ngx_http_reductrai_free_secret(s3->env_secret_key);
    ngx_http_reductrai_free_secret(s3->env_session_token);
    ngx_http_reductrai_aws_creds_free(s3->creds);

    if (s3->gce != NULL) {
        /* the bearer was the metadata server's, made by init */
        ngx_http_reductrai_token_free(s3->gce);
        s3->gce = NULL;
        s3->bearer = NULL;
        s3->bearer_data = NULL;
    }

    s3->origin = NULL;
    s3->host = NULL;
    s3->path = NULL;
    s3->region = NULL;
    s3->sigv4 = NULL;
    s3->env_access_key = NULL;
    s3->env_secret_key = NULL;
    s3->env_session_token = NULL;
    s3->creds = NULL;
}


int
ngx_http_reductrai_sigv4_sign(const ngx_http_reductrai_sigv4_t *in,
    char *auth, size_t size)
{
    int                        rc;
    char                     **canon, *s, hash[65], sigs[65], *sts;
    char                       secret[256], day[9];
    u_char                     k1[32], k2[32];
    size_t                     i, n, len;
    ngx_http_reductrai_buf_t   b;

    rc = -1;
    memset(&b, 0, sizeof(b));

    canon = calloc(in->nheaders + 1, sizeof(char *));
    if (canon == NULL) {
        return -1;
    }

    for (i = 0; i < in->nheaders; i++) {
        len = strlen(in->headers[i]) + 1;

        canon[i] = malloc(len);
        if (canon[i] == NULL) {
            goto failed;
        }

        (void) ngx_http_reductrai_sigv4_line(canon[i], len, in->headers[i]);
    }

    /* by name; a name sorts before its longer extensions */
    qsort(canon, in->nheaders, sizeof(char *),
          ngx_http_reductrai_http_header_cmp);

    len = strlen(in->method) + strlen(in->path) + strlen(in->query)
          + strlen(in->payload_hash) + 8;

    for (i = 0; i < in->nheaders; i++) {
        len += 2 * strlen(canon[i]) + 2;
    }

    if (ngx_http_reductrai_buf_reserve(&b, len + 1) != 0) {
        goto failed;
    }

    s = (char *) b.data;
    s += sprintf(s, "%s\n%s\n%s\n", in->method, in->path, in->query);

    for (i = 0; i < in->nheaders; i++) {
        s += sprintf(s, "%s\n", canon[i]);
    }

    *s++ = '\n';

    for (i = 0; i < in->nheaders; i++) {
        n = strcspn(canon[i], ":");
        s += sprintf(s, "%s%.*s", i ? ";" : "", (int) n, canon[i]);
    }

    s += sprintf(s, "\n%s", in->payload_hash);
    b.len = (size_t) (s - (char *) b.data);

    if (in->canonical != NULL) {
        if (ngx_http_reductrai_buf_reserve(in->canonical, b.len + 1) != 0) {
            goto failed;
        }

        memcpy(in->canonical->data, b.data, b.len);
        in->canonical->len = b.len;
        in->canonical->data[b.len] = '\0';
    }

    ngx_http_reductrai_http_sha256_hex(b.data, b.len, hash);

    memcpy(day, in->timestamp, 8);
    day[8] = '\0';

    sts = malloc(strlen(in->timestamp) + strlen(in->region)
                 + strlen(in->service) + 128);
    if (sts == NULL) {
        goto failed;
    }

    n = (size_t) sprintf(sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n"
                         "%s", in->timestamp, day, in->region, in->service,
                         hash);

    if (snprintf(secret, sizeof(secret), "AWS4%s", in->secret_key)
        >= (int) sizeof(secret))
    {
        free(sts);
        goto failed;
    }

    if (ngx_http_reductrai_http_hmac_sha256(secret, strlen(secret), day, 8, k1)
        != 0
        || ngx_http_reductrai_http_hmac_sha256(k1, 32, in->region,
                                               strlen(in->region), k2) != 0
        || ngx_http_reductrai_http_hmac_sha256(k2, 32, in->service,
                                               strlen(in->service), k1) != 0
        || ngx_http_reductrai_http_hmac_sha256(k1, 32, "aws4_request", 12, k2)
           != 0
        || ngx_http_reductrai_http_hmac_sha256(k2, 32, sts, n, k1) != 0)
    {
        ngx_http_reductrai_wipe(secret, sizeof(secret));
        free(sts);
        goto failed;
    }

    ngx_http_reductrai_wipe(secret, sizeof(secret));
    ngx_http_reductrai_wipe(k2, sizeof(k2));
    free(sts);

    *ngx_http_reductrai_hex((u_char *) sigs, k1, 32) = '\0';

    /* the signed header names again, for the Authorization header */

    s = (char *) b.data;
    len = 0;

    for (i = 0; i < in->nheaders; i++) {
        n = strcspn(canon[i], ":");
        len += (size_t) sprintf(s + len, "%s%.*s", i ? ";" : "", (int) n,
                                canon[i]);
    }

    n = (size_t) snprintf(auth, size, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/"
                          "%s/aws4_request, SignedHeaders=%s, Signature=%s",
                          in->access_key, day, in->region, in->service, s,
                          sigs);

    rc = n < size ? 0 : -1;

failed:

    for (i = 0; i < in->nheaders; i++) {
        free(canon[i]);
    }

    free(canon);
    ngx_http_reductrai_buf_free(&b);

    return rc;
}


int
ngx_http_reductrai_sigv4_curl_order_ok(const char **headers, size_t n)
{
    int      ok;
    char   **lines;
    size_t   i, a, b, len;

    lines = calloc(n + 1, sizeof(char *));
    if (lines == NULL) {
        return 0;
    }

    ok = 1;

    for (i = 0; i < n; i++) {
        len = strlen(headers[i]) + 1;

        lines[i] = malloc(len);
        if (lines[i] == NULL) {
            ok = 0;
            goto done;
        }

        (void) ngx_http_reductrai_sigv4_line(lines[i], len, headers[i]);
    }

    /* as libcurl does it: whole lines, byte order */

    for (a = 1; a < n; a++) {
        for (b = a; b > 0 && strcmp(lines[b - 1], lines[b]) > 0; b--) {
            char  *t = lines[b];

            lines[b] = lines[b - 1];
            lines[b - 1] = t;
        }
    }

    for (i = 1; i < n; i++) {
        if (ngx_http_reductrai_http_header_cmp(&lines[i - 1], &lines[i]) > 0) {
            ok = 0;
            break;
        }
    }

done:

    for (i = 0; i < n; i++) {
        free(lines[i]);
    }

    free(lines);

    return ok;
}


/* "Name:  a  b " becomes "name:a b", as SigV4 canonicalizes headers */

static size_t
ngx_http_reductrai_sigv4_line(char *dst, size_t size, const char *line)
{
    size_t       n;
    const char  *p;

    n = 0;

    for (p = line; *p && *p != ':' && n + 1 < size; p++) {
        dst[n++] = (char) tolower((u_char) *p);
    }

    if (*p == ':' && n + 1 < size) {
        dst[n++] = *p++;
    }

    while (*p == ' ' || *p == '\t') {
        p++;
    }

    while (*p && n + 1 < size) {
        if (*p == ' ' || *p == '\t') {
            while (*p == ' ' || *p == '\t') {
                p++;
            }

            if (*p) {
                dst[n++] = ' ';
            }

            continue;
        }

        dst[n++] = *p++;
    }

    dst[n] = '\0';

    return n;
}
