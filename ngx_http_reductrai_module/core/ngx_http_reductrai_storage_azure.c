
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * azure://account/container[/prefix]: Azure Blob Storage.  A segment goes
 * up with Put Blob, or, above multipart_threshold, as blocks (Put Block,
 * each streamed from the spool file) committed by one Put Block List: the
 * blob appears whole at the commit or not at all, and blocks that are
 * never committed are discarded by the service.  Requests are signed with
 * Shared Key (HMAC-SHA256 of the canonical string, with the account key),
 * carry a SAS token, or an OAuth2 token of a workload or managed identity
 * ("Authorization: Bearer", which x-ms-version 2017-11-09 and later
 * take).  endpoint= points elsewhere than
 * https://ACCOUNT.blob.core.windows.net: Azurite, sovereign clouds.
 */


#include "ngx_http_reductrai_http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#define NGX_HTTP_REDUCTRAI_AZURE_VERSION     "2021-08-06"
#define NGX_HTTP_REDUCTRAI_AZURE_MAX_BLOCKS  50000


typedef struct {
    char                           *origin;     /* scheme://host[:port] */
    char                           *path;       /* [/account]/container */
    u_char                          key[128];
    size_t                          key_len;
    const char                     *sas;
    char                           *env_sas;
    const char                     *hint;       /* why there is no key */
    ngx_http_reductrai_token_t     *token;      /* or an identity's */
    unsigned                        no_creds:1;
} ngx_http_reductrai_azure_t;


typedef struct {
    char                           *name;
    char                           *value;
} ngx_http_reductrai_azure_param_t;


static int ngx_http_reductrai_azure_create(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen);
static int ngx_http_reductrai_azure_endpoint(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_azure_t *az, char *err, size_t errlen);
static int ngx_http_reductrai_azure_init(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen);
static int ngx_http_reductrai_azure_identity(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_azure_t *az, char *err, size_t errlen);
static int ngx_http_reductrai_azure_env(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_azure_t *az);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_put_blob(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_blocks(
    ngx_http_reductrai_storage_t *st, const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_put_blocks(
    ngx_http_reductrai_storage_t *st, const char *key, int fd, int64_t size,
    EVP_MD_CTX *whole, ngx_http_reductrai_buf_t *xml,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_commit(
    ngx_http_reductrai_storage_t *st, const char *key,
    ngx_http_reductrai_buf_t *xml, EVP_MD_CTX *whole,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_write(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_probe(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_storage_err_t *err);
static void ngx_http_reductrai_azure_cleanup(
    ngx_http_reductrai_storage_t *st);

static void ngx_http_reductrai_azure_list_query(char *buf, size_t size,
    const char *eprefix, const char *emarker);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_list_next(
    const char *page, size_t len, char *emarker, size_t size,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_request(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_azure_sign(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    const char *path, ngx_http_reductrai_http_lines_t *l,
    ngx_http_reductrai_storage_err_t *err);
static int ngx_http_reductrai_azure_exists(ngx_http_reductrai_http_t *h);
static size_t ngx_http_reductrai_azure_decode(char *dst, const char *src,
    size_t len);
static int ngx_libc_cdecl ngx_http_reductrai_azure_param_cmp(const void *a,
    const void *b);
static const char *ngx_http_reductrai_azure_find(const char **headers,
    size_t n, const char *name);


const ngx_http_reductrai_storage_backend_t
    ngx_http_reductrai_storage_azure =
{
    "azure",
    ngx_http_reductrai_azure_create,
    ngx_http_reductrai_azure_init,
    ngx_http_reductrai_http_put,
    ngx_http_reductrai_http_get,
    ngx_http_reductrai_http_head,
    ngx_http_reductrai_http_list,
    ngx_http_reductrai_azure_probe,
    ngx_http_reductrai_azure_cleanup
};


/* x-ms-range has no suffix form: a trailer's GET asks for the size first */

static const ngx_http_reductrai_http_store_t
    ngx_http_reductrai_azure_store =
{
    ngx_http_reductrai_azure_request,
    0,                                      /* Content-MD5 only */
    ngx_http_reductrai_azure_put_blob,
    ngx_http_reductrai_azure_blocks,
    "x-ms-range",
    0,                                      /* no "bytes=-N" */
    "Blob",
    "Name",
    "Content-Length",
    ngx_http_reductrai_azure_list_query,
    ngx_http_reductrai_azure_list_next
};


static int
ngx_http_reductrai_azure_create(ngx_http_reductrai_storage_t *st, char *err,
    size_t errlen)
{
    size_t                       len;
    ssize_t                      n;
    const char                  *p;
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

    st->http = &ngx_http_reductrai_azure_store;

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

    return ngx_http_reductrai_azure_endpoint(st, az, err, errlen);
}


/* where requests go: the origin, and the container's path there */

static int
ngx_http_reductrai_azure_endpoint(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_azure_t *az, char *err, size_t errlen)
{
    size_t       len;
    const char  *ep, *p, *host, *base;

    ep = st->conf.endpoint;

    if (ep == NULL) {
        az->origin = malloc(strlen(st->account) + 40);
        if (az->origin == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }

        sprintf(az->origin, "https://%s.blob.core.windows.net", st->account);
        base = "";

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

        if (host[0] == '\0' || host[0] == '/') {
            snprintf(err, errlen, "invalid endpoint \"%s\"", ep);
            return -1;
        }

        base = strchr(host, '/');
        base = base ? base : host + strlen(host);

        az->origin = strndup(ep, (size_t) (base - ep));
    }

    len = strlen(base);

    while (len > 0 && base[len - 1] == '/') {
        len--;
    }

    az->path = malloc(len + strlen(st->bucket) + 2);

    if (az->origin == NULL || az->path == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    sprintf(az->path, "%.*s/%s", (int) len, base, st->bucket);

    return 0;
}


static int
ngx_http_reductrai_azure_init(ngx_http_reductrai_storage_t *st, char *err,
    size_t errlen)
{
    ngx_http_reductrai_azure_t  *az;

    az = st->data;

    if (az->key_len > 0 || az->sas != NULL) {
        ngx_http_reductrai_storage_creds_source(st, az->key_len
                                                    ? "shared key (key=)"
                                                    : "SAS (sas=)");
        return 0;
    }

    if (ngx_http_reductrai_azure_env(st, az)) {
        return 0;
    }

    return ngx_http_reductrai_azure_identity(st, az, err, errlen);
}


/* as Azure's SDKs find them: after the environment, an identity */

static int
ngx_http_reductrai_azure_identity(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_azure_t *az, char *err, size_t errlen)
{
    const char  *source;

    if (st->conf.anonymous != NULL && strcmp(st->conf.anonymous, "on") == 0)
    {
        ngx_http_reductrai_storage_creds_source(st, "anonymous");
        return 0;
    }

    source = NULL;
    az->token = ngx_http_reductrai_token_azure(&st->conf, &st->creds,
                                               st->conf.endpoint == NULL,
                                               &source, err, errlen);
    if (az->token == NULL && err[0] != '\0') {
        return -1;
    }

    if (az->token == NULL) {
        az->no_creds = 1;
        source = "none";
    }

    ngx_http_reductrai_storage_creds_source(st, source);

    return 0;
}


/* AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN; returns 1 when found */

static int
ngx_http_reductrai_azure_env(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_azure_t *az)
{
    char     *v;
    ssize_t   n;

    /* from the environment nginx's "env" directive passed to us */

    v = getenv("AZURE_STORAGE_KEY");

    if (v != NULL && v[0] != '\0') {
        n = (strlen(v) / 4 * 3 + 3 <= sizeof(az->key))
            ? ngx_http_reductrai_http_base64_decode(az->key, v, strlen(v)) : -1;

        ngx_http_reductrai_storage_creds_source(st,
                                       "shared key (AZURE_STORAGE_KEY)");

        if (n > 0) {
            az->key_len = (size_t) n;
            return 1;
        }

        /* no reason to stop the worker: say it with each failure */
        az->hint = "AZURE_STORAGE_KEY is not base64";
        return 1;
    }

    v = getenv("AZURE_STORAGE_SAS_TOKEN");

    if (v != NULL && v[0] != '\0') {
        az->env_sas = strdup(v[0] == '?' ? v + 1 : v);
        az->sas = az->env_sas;
        ngx_http_reductrai_storage_creds_source(st,
                                         "SAS (AZURE_STORAGE_SAS_TOKEN)");
        return 1;
    }

    az->hint = "no key or SAS token configured";

    return 0;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_put_blob(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, ngx_http_reductrai_storage_err_t *err)
{
    req->headers[req->nheaders++] = "x-ms-blob-type: BlockBlob";
    req->headers[req->nheaders++] = "Content-Type: application/zstd";

    return ngx_http_reductrai_azure_write(st, req, err);
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_blocks(ngx_http_reductrai_storage_t *st,
    const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err)
{
    EVP_MD_CTX                      *whole;
    ngx_http_reductrai_buf_t         xml;
    ngx_http_reductrai_storage_rc_e  rc;

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

    rc = ngx_http_reductrai_azure_put_blocks(st, key, fd, size, whole, &xml,
                                             err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        rc = ngx_http_reductrai_azure_commit(st, key, &xml, whole, err);
    }

    EVP_MD_CTX_free(whole);
    ngx_http_reductrai_buf_free(&xml);

    return rc;
}


/* each block streamed from the spool file; xml gets the block list */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_put_blocks(ngx_http_reductrai_storage_t *st,
    const char *key, int fd, int64_t size, EVP_MD_CTX *whole,
    ngx_http_reductrai_buf_t *xml, ngx_http_reductrai_storage_err_t *err)
{
    int                              n;
    char                             id[16], eid[48], query[80], num[16];
    int64_t                          part, off, len;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    part = ngx_http_reductrai_http_part_size(st->conf.part_size, size,
                                          NGX_HTTP_REDUCTRAI_AZURE_MAX_BLOCKS,
                                          1);

    xml->len = (size_t) sprintf((char *) xml->data,
                                "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                                "<BlockList>");

    for (n = 1, off = 0; off < size; n++, off += part) {
        len = size - off < part ? size - off : part;

        /*
         * Block ids of one blob must have one length; deterministic ones
         * make a retry replace, not add to, the uncommitted blocks.
         */

        snprintf(num, sizeof(num), "%08d", n);
        (void) ngx_http_reductrai_http_base64(id, (u_char *) num, 8, 0);
        (void) ngx_http_reductrai_http_uri_encode(eid, sizeof(eid), id, 0);

        snprintf(query, sizeof(query), "blockid=%s&comp=block", eid);

        rc = ngx_http_reductrai_http_put_part(st, key, query, fd, off, len,
                                              whole, &h, err);
        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            return rc;
        }

        if (ngx_http_reductrai_buf_reserve(xml, 64) != 0) {
            ngx_http_reductrai_storage_error(err, 0, "out of memory");
            return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        }

        xml->len += (size_t) sprintf((char *) xml->data + xml->len,
                                     "<Latest>%s</Latest>", id);
    }

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


/* Put Block List: the blob appears now, whole */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_commit(ngx_http_reductrai_storage_t *st,
    const char *key, ngx_http_reductrai_buf_t *xml, EVP_MD_CTX *whole,
    ngx_http_reductrai_storage_err_t *err)
{
    char                            md5[25], whole_md5[25], blob_md5[80];
    u_char                          md[16];
    ngx_http_reductrai_http_req_t   req;

    if (ngx_http_reductrai_buf_reserve(xml, 32) != 0
        || EVP_DigestFinal_ex(whole, md, NULL) != 1)
    {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    xml->len += (size_t) sprintf((char *) xml->data + xml->len,
                                 "</BlockList>");

    (void) ngx_http_reductrai_http_base64(whole_md5, md, 16, 0);
    snprintf(blob_md5, sizeof(blob_md5), "x-ms-blob-content-md5: %s",
             whole_md5);

    (void) EVP_Digest(xml->data, xml->len, md, NULL, EVP_md5(), NULL);
    (void) ngx_http_reductrai_http_base64(md5, md, 16, 0);

    memset(&req, 0, sizeof(req));

    req.method = "PUT";
    req.key = key;
    req.query = "comp=blocklist";
    req.body = 1;
    req.mem = xml->data;
    req.length = (int64_t) xml->len;
    req.md5 = md5;

    req.headers[req.nheaders++] = "Content-Type: application/xml";
    req.headers[req.nheaders++] = "x-ms-blob-content-type: application/zstd";
    req.headers[req.nheaders++] = blob_md5;

    return ngx_http_reductrai_azure_write(st, &req, err);
}


/*
 * A blob is written once: If-None-Match keeps a complete one, and its
 * refusal means the blob is there.
 */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_write(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, ngx_http_reductrai_storage_err_t *err)
{
    char                             tier[96];
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    req->headers[req->nheaders++] = "If-None-Match: *";

    if (st->conf.storage_class != NULL) {
        snprintf(tier, sizeof(tier), "x-ms-access-tier: %.60s",
                 st->conf.storage_class);
        req->headers[req->nheaders++] = tier;
    }

    rc = ngx_http_reductrai_azure_request(st, req, &h, err);

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK
        && ngx_http_reductrai_azure_exists(h))
    {
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    return rc;
}


/* List Blobs, its parameters in canonical order */

static void
ngx_http_reductrai_azure_list_query(char *buf, size_t size,
    const char *eprefix, const char *emarker)
{
    snprintf(buf, size, "comp=list%s%s&maxresults=1000&prefix=%s"
             "&restype=container", emarker[0] ? "&marker=" : "", emarker,
             eprefix);
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_list_next(const char *page, size_t len,
    char *emarker, size_t size, ngx_http_reductrai_storage_err_t *err)
{
    char  marker[2048];

    emarker[0] = '\0';

    if (ngx_http_reductrai_http_xml_text(page, page + len, "NextMarker",
                                         marker, sizeof(marker))
        >= (ssize_t) sizeof(marker))
    {
        marker[0] = '\0';
    }

    if (marker[0] != '\0'
        && ngx_http_reductrai_http_uri_encode(emarker, size, marker, 0) == 0)
    {
        ngx_http_reductrai_storage_error(err, 0, "NextMarker too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_probe(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_storage_err_t *err)
{
    char  eprefix[4096], query[4200];

    /* authenticated; a write-only SAS may not list */
    static const char  *codes[] = { "AuthorizationPermissionMismatch",
                                    "AuthorizationResourceTypeMismatch",
                                    NULL };

    (void) ngx_http_reductrai_http_uri_encode(eprefix, sizeof(eprefix),
                                              st->prefix, 0);
    snprintf(query, sizeof(query), "comp=list&maxresults=1&prefix=%s"
             "&restype=container", eprefix);

    return ngx_http_reductrai_http_probe(st, query, codes, err);
}


static void
ngx_http_reductrai_azure_cleanup(ngx_http_reductrai_storage_t *st)
{
    ngx_http_reductrai_azure_t  *az;

    az = st->data;

    if (az == NULL) {
        return;
    }

    ngx_http_reductrai_wipe(az->key, sizeof(az->key));
    ngx_http_reductrai_free_secret(az->env_sas);
    ngx_http_reductrai_token_free(az->token);

    free(az->origin);
    free(az->path);
    free(az);

    st->data = NULL;

    ngx_http_reductrai_http_use(-1);
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_request(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err)
{
    char                             path[NGX_HTTP_REDUCTRAI_HTTP_URL_MAX];
    char                             date[40], token[4096];
    size_t                           i;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_azure_t      *az;
    ngx_http_reductrai_http_lines_t  lines;
    ngx_http_reductrai_storage_rc_e  rc;

    az = st->data;
    *hp = NULL;

    if (az->no_creds) {
        ngx_http_reductrai_storage_error(err, 0, "no credentials: no key=, "
                         "sas=, AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, "
                         "workload identity (AZURE_FEDERATED_TOKEN_FILE) or "
                         "managed identity (passed with nginx's \"env\"?); "
                         "anonymous=on sends requests unsigned");
        ngx_http_reductrai_storage_creds_result(&st->creds, err);
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    if (az->token != NULL) {
        /* before the handle is taken: the token fetch uses it too */
        rc = ngx_http_reductrai_token_bearer(az->token, token, sizeof(token),
                                             err);
        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            return rc;
        }
    }

    rc = ngx_http_reductrai_http_open(st, req, az->origin, az->path, az->sas,
                                      path, hp, err);
    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        goto done;
    }

    h = *hp;
    ngx_http_reductrai_http_secret(h, az->sas);

    ngx_http_reductrai_http_lines_init(&lines);
    ngx_http_reductrai_http_date(date, sizeof(date), time(NULL));

    ngx_http_reductrai_http_line(&lines, "x-ms-date: %s", date);
    ngx_http_reductrai_http_line(&lines, "x-ms-version: %s",
                                 NGX_HTTP_REDUCTRAI_AZURE_VERSION);

    if (req->body) {
        /* signed, so sent explicitly (libcurl would add the same) */
        ngx_http_reductrai_http_line(&lines, "Content-Length: %lld",
                                     (long long) req->length);
    }

    if (req->md5 != NULL) {
        ngx_http_reductrai_http_line(&lines, "Content-MD5: %s", req->md5);
    }

    for (i = 0; i < req->nheaders; i++) {
        ngx_http_reductrai_http_line(&lines, "%s", req->headers[i]);
    }

    if (az->key_len > 0) {
        rc = ngx_http_reductrai_azure_sign(st, req, path, &lines, err);
        if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            goto done;
        }

    } else if (az->token != NULL) {
        ngx_http_reductrai_http_secret(h, token);
        ngx_http_reductrai_http_line(&lines, "Authorization: Bearer %s",
                                     token);
    }

    rc = ngx_http_reductrai_http_send(h, &lines, req, err);

    if (az->token != NULL && (h->status == 401 || h->status == 403)) {
        /* revoked or expired early: the next attempt gets a new token */
        (void) ngx_http_reductrai_token_bearer(az->token, NULL, 0, NULL);
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_FATAL && h->status == 403
        && az->hint != NULL && az->token == NULL)
    {
        ngx_http_reductrai_http_hint(err, az->hint);
    }

done:

    ngx_http_reductrai_wipe(token, sizeof(token));

    return rc;
}


/* Shared Key: the Authorization line, from the lines so far */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_azure_sign(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_http_req_t *req, const char *path,
    ngx_http_reductrai_http_lines_t *l, ngx_http_reductrai_storage_err_t *err)
{
    int                          rc;
    char                         sig[64];
    ngx_http_reductrai_buf_t     sts;
    ngx_http_reductrai_azure_t  *az;

    az = st->data;

    if (l->overflow) {
        /* sending says so */
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    memset(&sts, 0, sizeof(sts));

    rc = ngx_http_reductrai_azure_string_to_sign(&sts, req->method, l->line,
                                                 l->n, st->account, path,
                                                 req->query);
    if (rc == 0) {
        rc = ngx_http_reductrai_azure_signature(az->key, az->key_len,
                                                (char *) sts.data, sts.len,
                                                sig, sizeof(sig));
    }

    ngx_http_reductrai_buf_free(&sts);

    if (rc != 0) {
        ngx_http_reductrai_storage_error(err, 0, "signing failed");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    ngx_http_reductrai_http_line(l, "Authorization: SharedKey %s:%s",
                                 st->account, sig);

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
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
           && ngx_http_reductrai_http_error_code(h, code, sizeof(code)) == 0
           && strcmp(code, "BlobAlreadyExists") == 0;
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

    qsort(xms, nxms, sizeof(char *), ngx_http_reductrai_http_header_cmp);

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
