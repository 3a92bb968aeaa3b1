
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * What the HTTP storage backends (s3://, gs://, azure://) share: a libcurl
 * easy handle per thread, reused so connections stay open between uploads,
 * with the storage's timeouts and TLS settings; request bodies streamed
 * from a file range; responses mapped to the storage result codes with a
 * one-line reason and never a secret; the object operations (put, in
 * one request or in parts, ranged get, head, paged list, probe), made of
 * each backend's own requests; and the signing helpers (SigV4, Azure
 * Shared Key, the RS256 JWT of a Google service account), exposed here so
 * the unit tests can check them against published examples.
 */


#ifndef _NGX_HTTP_REDUCTRAI_HTTP_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_HTTP_H_INCLUDED_


#include "ngx_http_reductrai_storage.h"

#include <time.h>
#include <curl/curl.h>
#include <openssl/evp.h>


/* hex SHA-256 of no bytes: the payload hash of a request without a body */
#define NGX_HTTP_REDUCTRAI_EMPTY_SHA256                                      \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* error and listing bodies kept in memory, at most */
#define NGX_HTTP_REDUCTRAI_HTTP_BODY_MAX  (8 * 1024 * 1024)

/* the longest path or URL of a request */
#define NGX_HTTP_REDUCTRAI_HTTP_URL_MAX   8192

/* header lines of one request, at most */
#define NGX_HTTP_REDUCTRAI_HTTP_LINES     16

#ifndef ngx_libc_cdecl
#define ngx_libc_cdecl
#endif


/*
 * A wanted byte range of a GET, and what has been delivered of it.  Servers
 * may answer a range with more than asked (200 with the whole object, or a
 * suffix range taken as "bytes=0-N"): only the wanted bytes reach the sink,
 * and what is missing is fetched again with an absolute range.
 */
typedef struct {
    int64_t                      start;     /* wanted first byte */
    int64_t                      end;       /* wanted end, -1: object end */
    int64_t                      suffix;    /* > 0: the last suffix bytes */
    int64_t                      done;      /* delivered from start */
    int64_t                      pos;       /* offset of the next byte in */
    int64_t                      total;     /* object size, -1 unknown */
    ngx_http_reductrai_sink_pt   sink;
    void                        *data;
    unsigned                     started:1;
    unsigned                     failed:1;  /* the sink refused */
    unsigned                     empty:1;   /* 416: nothing there */
} ngx_http_reductrai_window_t;


typedef struct ngx_http_reductrai_http_s  ngx_http_reductrai_http_t;

struct ngx_http_reductrai_http_s {
    CURL                                     *curl;
    struct curl_slist                        *headers;
    const ngx_http_reductrai_storage_conf_t  *conf;
    char                                      errbuf[CURL_ERROR_SIZE];

    /* the request body: a file range, or memory */
    int                                       fd;
    int64_t                                   offset;
    int64_t                                   length;
    int64_t                                   sent;
    const u_char                             *mem;

    /* the response */
    long                                      status;
    int64_t                                   content_length;
    int64_t                                   range_start;
    int64_t                                   range_total;
    char                                      etag[128];
    ngx_http_reductrai_buf_t                  body;
    unsigned                                  body_truncated:1;
    ngx_http_reductrai_window_t              *window;

    /* secrets that must never reach an error message */
    const char                               *secrets[4];

    ngx_http_reductrai_http_t                *next;
};


/* a request to an object store, as the backends' request functions take it */
typedef struct {
    const char                     *method;
    const char                     *key;        /* NULL: the bucket */
    const char                     *query;      /* encoded, or "" */
    const char                     *headers[8]; /* "Name: value" */
    size_t                          nheaders;
    unsigned                        body:1;     /* mem, or the range of fd */
    int                             fd;
    int64_t                         offset;
    int64_t                         length;
    const u_char                   *mem;
    const char                     *sha256;     /* hex; NULL: of no body */
    const char                     *md5;        /* base64 */
    ngx_http_reductrai_window_t    *window;
} ngx_http_reductrai_http_req_t;


/* sends req; *hp is the handle (status, body) or NULL */
typedef ngx_http_reductrai_storage_rc_e (*ngx_http_reductrai_http_request_pt)(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err);


/*
 * What the object operations shared below need to know of an HTTP
 * backend, which points st->http at it.
 */
struct ngx_http_reductrai_http_store_s {
    ngx_http_reductrai_http_request_pt   request;
    /* do bodies go with their SHA-256 (req->sha256)? */
    int                                  sha256;

    /* a whole object (req: the PUT of the file), or in parts */
    ngx_http_reductrai_storage_rc_e
                       (*put_object)(ngx_http_reductrai_storage_t *st,
                                     ngx_http_reductrai_http_req_t *req,
                                     ngx_http_reductrai_storage_err_t *err);
    ngx_http_reductrai_storage_rc_e
                       (*put_parts)(ngx_http_reductrai_storage_t *st,
                                    const char *key, int fd, int64_t size,
                                    ngx_http_reductrai_storage_err_t *err);

    /* ranged GETs: the header's name; does "bytes=-N" work? */
    const char          *range;
    int                  suffix;

    /* listings: the tags of an entry, its name and size */
    const char          *item;
    const char          *name;
    const char          *size;
    /* the query of the page at emarker ("" for the first) */
    void               (*query)(char *buf, size_t size, const char *eprefix,
                                const char *emarker);
    /* emarker of the page after this one, "" after the last */
    ngx_http_reductrai_storage_rc_e
                       (*next)(const char *page, size_t len, char *emarker,
                               size_t size,
                               ngx_http_reductrai_storage_err_t *err);
};


/* the header lines of a request, kept to be signed before they are sent */
typedef struct {
    /* two to spare: S3 checks their order with two lines more */
    const char                 *line[NGX_HTTP_REDUCTRAI_HTTP_LINES + 2];
    size_t                      n;
    char                       *pos;
    unsigned                    overflow:1;
    char                        pool[12288];
} ngx_http_reductrai_http_lines_t;


/*
 * A storage using HTTP counts itself in (+1) when made and out (-1) when
 * destroyed; the handles are freed with the last one.
 */
void ngx_http_reductrai_http_use(int delta);


/*
 * Starts a request on the calling thread's handle ("GET", "PUT", "POST",
 * "HEAD", "DELETE"); NULL with err set when libcurl fails.  Headers are
 * "Name: value".
 */
/* from now on every transfer of this process fails at once, as a retry */
void ngx_http_reductrai_http_cancel(void);
ngx_http_reductrai_http_t *ngx_http_reductrai_http_begin(
    const ngx_http_reductrai_storage_conf_t *conf, const char *method,
    const char *url, ngx_http_reductrai_storage_err_t *err);
int ngx_http_reductrai_http_header(ngx_http_reductrai_http_t *h,
    const char *fmt, ...);
void ngx_http_reductrai_http_body_fd(ngx_http_reductrai_http_t *h, int fd,
    int64_t offset, int64_t length);
void ngx_http_reductrai_http_body_mem(ngx_http_reductrai_http_t *h,
    const u_char *p, size_t len);
/* a form body (Content-Type application/x-www-form-urlencoded) */
int ngx_http_reductrai_http_form(ngx_http_reductrai_http_t *h,
    const char *body, size_t len, ngx_http_reductrai_storage_err_t *err);
/*
 * A secret to scrub from messages: the handle keeps the pointer until
 * perform() returns.
 */
void ngx_http_reductrai_http_secret(ngx_http_reductrai_http_t *h,
    const char *secret);

/*
 * Runs the request.  2xx gives OK, 404 NOT_FOUND, network errors, 408,
 * 429 and 5xx RETRY, other statuses FATAL, each with a reason in err
 * ("HTTP 403 SignatureDoesNotMatch: ...").  h->status, h->body (error and
 * listing bodies), h->etag stay readable until the next begin.
 */
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_perform(
    ngx_http_reductrai_http_t *h, ngx_http_reductrai_storage_err_t *err);

/*
 * Takes the secrets of h's configuration (and those given to h for a
 * request still running) out of a message that quotes an answer.
 */
void ngx_http_reductrai_http_scrub_all(ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_storage_err_t *err);

/* an answer that held a secret (keys, a token): wiped, not kept */
void ngx_http_reductrai_http_body_wipe(ngx_http_reductrai_http_t *h);

/* the window's next range; returns 0 when nothing is left to fetch */
int ngx_http_reductrai_http_window_next(ngx_http_reductrai_window_t *w,
    int64_t *from, int64_t *to);


/* what the backends' request functions share */

/*
 * Begins req on this thread's handle: the URL is origin, the path (base,
 * "/" and the encoded key; without a key base, or "/"), "?", the query
 * and extra, "&"-joined.  path (NGX_HTTP_REDUCTRAI_HTTP_URL_MAX bytes)
 * gets the path, for signing.
 */
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_open(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_http_req_t *req,
    const char *origin, const char *base, const char *extra, char *path,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err);
void ngx_http_reductrai_http_lines_init(ngx_http_reductrai_http_lines_t *l);
/* adds a line; one that does not fit marks the lines overflowed */
void ngx_http_reductrai_http_line(ngx_http_reductrai_http_lines_t *l,
    const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sends the lines as headers and req's body, and runs the request */
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_send(
    ngx_http_reductrai_http_t *h, ngx_http_reductrai_http_lines_t *l,
    ngx_http_reductrai_http_req_t *req,
    ngx_http_reductrai_storage_err_t *err);
/* appends " (hint)" to the message of a failure */
void ngx_http_reductrai_http_hint(ngx_http_reductrai_storage_err_t *err,
    const char *hint);
/* "name:value" lines by name; a name sorts before its longer extensions */
int ngx_libc_cdecl ngx_http_reductrai_http_header_cmp(const void *a,
    const void *b);


/* object operations over the backend's requests (st->http) */

/* put, get, head and list of ngx_http_reductrai_storage_backend_t */
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_put(
    ngx_http_reductrai_storage_t *st, const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err);
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_get(
    ngx_http_reductrai_storage_t *st, const char *key, int64_t offset,
    int64_t length, ngx_http_reductrai_sink_pt sink, void *data,
    ngx_http_reductrai_storage_err_t *err);
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_head(
    ngx_http_reductrai_storage_t *st, const char *key, int64_t *size,
    ngx_http_reductrai_storage_err_t *err);
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_list(
    ngx_http_reductrai_storage_t *st, const char *prefix,
    ngx_http_reductrai_list_pt handler, void *data,
    ngx_http_reductrai_storage_err_t *err);
/* a request without a body or headers of its own */
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_plain(
    ngx_http_reductrai_storage_t *st, const char *method, const char *key,
    const char *query, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err);
/* part bytes, or more where that makes more than max parts (align them) */
int64_t ngx_http_reductrai_http_part_size(int64_t part, int64_t size,
    int64_t max, int64_t align);
/*
 * PUTs bytes [offset, offset + length) of fd as the part of an upload
 * that query names; their MD5 also goes to whole (may be NULL).
 */
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_put_part(
    ngx_http_reductrai_storage_t *st, const char *key, const char *query,
    int fd, int64_t offset, int64_t length, EVP_MD_CTX *whole,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err);
/*
 * The probe of ngx_http_reductrai_storage_backend_t: a listing (query),
 * where a 403 with one of codes (NULL-terminated) is a success.
 */
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_http_probe(
    ngx_http_reductrai_storage_t *st, const char *query,
    const char *const *codes, ngx_http_reductrai_storage_err_t *err);


/* answers */

/* a NUL-terminated copy of the response body, its length in *len */
char *ngx_http_reductrai_http_body_copy(ngx_http_reductrai_http_t *h,
    size_t *len, ngx_http_reductrai_storage_err_t *err);
/* the <Code> of an XML error answer; -1 when there is none */
int ngx_http_reductrai_http_error_code(ngx_http_reductrai_http_t *h,
    char *code, size_t size);

/* "<Code>" and "<Message>" of an XML error body, as one line */
size_t ngx_http_reductrai_http_xml_reason(const char *xml, size_t len,
    char *buf, size_t size);

/*
 * Finds the next <tag>...</tag> (or <tag attr...>) in [*pos, end); on
 * success points text and text_end at its content and moves pos past it.
 */
int ngx_http_reductrai_http_xml_next(const char **pos, const char *end,
    const char *tag, const char **text, const char **text_end);
/* XML text with the five predefined entities and &#N; decoded */
size_t ngx_http_reductrai_http_xml_unescape(const char *p, const char *end,
    char *buf, size_t size);
/*
 * The text of the first <tag> in [pos, end), unescaped into buf (cut to
 * fit; "" when there is none); returns its length as sent, or -1.
 */
ssize_t ngx_http_reductrai_http_xml_text(const char *pos, const char *end,
    const char *tag, char *buf, size_t size);

/* replaces each occurrence of secret in msg with "***" */
void ngx_http_reductrai_http_scrub(char *msg, const char *secret);


/* digests, encodings */

void ngx_http_reductrai_http_sha256_hex(const void *p, size_t len, char *hex);
int ngx_http_reductrai_http_hmac_sha256(const void *key, size_t klen,
    const void *p, size_t len, u_char *out);
/*
 * SHA-256 (hex; sha256_hex NULL: none) and MD5 (base64) of a file range
 * in one pass; the MD5 is also fed to whole (may be NULL), for a digest of
 * the whole object.
 */
int ngx_http_reductrai_http_hash_fd(int fd, int64_t offset, int64_t length,
    char *sha256_hex, char *md5_b64, EVP_MD_CTX *whole);
size_t ngx_http_reductrai_http_base64(char *dst, const u_char *src,
    size_t len, int url);
/* returns the decoded length, or -1 */
ssize_t ngx_http_reductrai_http_base64_decode(u_char *dst, const char *src,
    size_t len);
/*
 * Percent-encodes everything but A-Z a-z 0-9 - . _ ~ (and '/' when
 * keep_slash), as SigV4 and the object stores want; returns the length,
 * or 0 when it does not fit.
 */
size_t ngx_http_reductrai_http_uri_encode(char *dst, size_t size,
    const char *src, int keep_slash);
/* RFC 1123 ("Sun, 06 Nov 1994 08:49:37 GMT"), ISO 8601 basic */
void ngx_http_reductrai_http_date(char *buf, size_t size, time_t t);
void ngx_http_reductrai_http_amz_date(char *buf, size_t size, time_t t);


/* AWS Signature Version 4 */

typedef struct {
    const char          *method;
    const char          *path;          /* canonical URI, encoded */
    const char          *query;         /* canonical query string */
    const char         **headers;       /* "Name: value", host included */
    size_t               nheaders;
    const char          *payload_hash;  /* hex */
    const char          *access_key;
    const char          *secret_key;
    const char          *region;
    const char          *service;
    const char          *timestamp;     /* "20130524T000000Z" */
    ngx_http_reductrai_buf_t  *canonical;  /* the canonical request, or NULL */
} ngx_http_reductrai_sigv4_t;

/* writes the Authorization header value; returns 0 or -1 */
int ngx_http_reductrai_sigv4_sign(const ngx_http_reductrai_sigv4_t *in,
    char *auth, size_t size);

/*
 * libcurl 7.88 sorts the signed headers as whole "name:value" lines, SigV4
 * by name: the two orders differ when one header name is the prefix of
 * another followed by '-' ("x-amz-server-side-encryption" and
 * "...-aws-kms-key-id").  Returns 1 when libcurl's signature is right.
 */
int ngx_http_reductrai_sigv4_curl_order_ok(const char **headers, size_t n);


/* Azure Shared Key */

/*
 * The string to sign of a Blob service request (version 2015-02-21 and
 * later): headers are "Name: value", path is the encoded URL path, query
 * the raw (encoded) query string or "".
 */
int ngx_http_reductrai_azure_string_to_sign(ngx_http_reductrai_buf_t *out,
    const char *method, const char **headers, size_t nheaders,
    const char *account, const char *path, const char *query);
/* base64 HMAC-SHA256 with the decoded account key */
int ngx_http_reductrai_azure_signature(const u_char *key, size_t klen,
    const char *sts, size_t len, char *sig, size_t size);


/* Google service accounts */

typedef struct ngx_http_reductrai_gcs_key_s  ngx_http_reductrai_gcs_key_t;

/* parses a service-account JSON key file's content */
ngx_http_reductrai_gcs_key_t *ngx_http_reductrai_gcs_key_parse(
    const char *json, char *err, size_t errlen);
void ngx_http_reductrai_gcs_key_free(ngx_http_reductrai_gcs_key_t *key);
const char *ngx_http_reductrai_gcs_key_token_uri(
    ngx_http_reductrai_gcs_key_t *key);
/* the RS256-signed assertion for the token endpoint; free() it */
char *ngx_http_reductrai_gcs_jwt(ngx_http_reductrai_gcs_key_t *key,
    time_t now, const char *scope);


/*
 * AWS temporary credentials (ngx_http_reductrai_aws_creds.c): a web identity
 * (EKS IRSA), the container endpoint (ECS, EKS Pod Identity), else with
 * imds the EC2 instance metadata service.  create() returns NULL with
 * err "" when the environment names none; cs gets each fetch's outcome.
 */

typedef struct ngx_http_reductrai_aws_creds_s  ngx_http_reductrai_aws_creds_t;

typedef struct {
    char                 access_key[128];
    char                 secret_key[128];
    char                 session_token[4096];     /* "" if none */
} ngx_http_reductrai_aws_keys_t;

ngx_http_reductrai_aws_creds_t *ngx_http_reductrai_aws_creds_create(
    const ngx_http_reductrai_storage_conf_t *conf,
    ngx_http_reductrai_creds_state_t *cs, int imds, char *err,
    size_t errlen);
/* where the keys come from, for messages */
const char *ngx_http_reductrai_aws_creds_source(
    ngx_http_reductrai_aws_creds_t *c);
/* a copy of the current keys; thread-safe, fetches them when due */
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_aws_creds_get(
    ngx_http_reductrai_aws_creds_t *c, ngx_http_reductrai_aws_keys_t *keys,
    ngx_http_reductrai_storage_err_t *err);
/* the store refused them: fetch again before the next request */
void ngx_http_reductrai_aws_creds_expire(ngx_http_reductrai_aws_creds_t *c);
void ngx_http_reductrai_aws_creds_free(ngx_http_reductrai_aws_creds_t *c);
void ngx_http_reductrai_aws_keys_clear(ngx_http_reductrai_aws_keys_t *keys);


/*
 * OAuth2 access tokens (ngx_http_reductrai_token.c), cached for all the
 * upload threads: fetch() gets a new one and its lifetime in seconds.
 */

typedef struct ngx_http_reductrai_token_s  ngx_http_reductrai_token_t;

typedef ngx_http_reductrai_storage_rc_e (*ngx_http_reductrai_token_fetch_pt)(
    void *data, char *token, size_t size, long *lifetime,
    ngx_http_reductrai_storage_err_t *err);

/* cleanup(data) runs when the cache is freed; cs gets each outcome */
ngx_http_reductrai_token_t *ngx_http_reductrai_token_create(
    ngx_http_reductrai_token_fetch_pt fetch, void *data,
    void (*cleanup)(void *data), ngx_http_reductrai_creds_state_t *cs);
/* an ngx_http_reductrai_bearer_pt over a token_t; token NULL: forget it */
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_token_bearer(void *data,
    char *token, size_t size, ngx_http_reductrai_storage_err_t *err);
void ngx_http_reductrai_token_free(void *data);
/*
 * The token of an OAuth2 answer (rc: of its request), with expires_in or
 * expires_on; on failure the reason of an error answer in err, without
 * the secret the request carried (sent: an assertion, a header; or NULL),
 * should the endpoint quote it.
 */
ngx_http_reductrai_storage_rc_e ngx_http_reductrai_token_parse(
    ngx_http_reductrai_http_t *h, ngx_http_reductrai_storage_rc_e rc,
    const char *sent, char *token, size_t size, long *lifetime,
    ngx_http_reductrai_storage_err_t *err);

/*
 * The identity endpoints of Google's metadata server and of Azure (with
 * on_cloud, the platform's default address is asked without an override in
 * the environment); NULL with err "" when there is none to ask.
 */
ngx_http_reductrai_token_t *ngx_http_reductrai_token_gce(
    const ngx_http_reductrai_storage_conf_t *conf,
    ngx_http_reductrai_creds_state_t *cs, int on_cloud, char *err,
    size_t errlen);
ngx_http_reductrai_token_t *ngx_http_reductrai_token_azure(
    const ngx_http_reductrai_storage_conf_t *conf,
    ngx_http_reductrai_creds_state_t *cs, int on_cloud, const char **source,
    char *err, size_t errlen);

/* https://, or http:// on a loopback address or one of hosts (or NULL) */
int ngx_http_reductrai_uri_trusted(const char *uri, const char *const *hosts);
/* a variable of the environment; NULL when unset or empty */
char *ngx_http_reductrai_env(const char *name);


/* backends for the table in ngx_http_reductrai_storage.c */

extern const ngx_http_reductrai_storage_backend_t
    ngx_http_reductrai_storage_s3;
extern const ngx_http_reductrai_storage_backend_t
    ngx_http_reductrai_storage_gcs;
extern const ngx_http_reductrai_storage_backend_t
    ngx_http_reductrai_storage_azure;


/* the S3 protocol with another authorization (GCS with OAuth2 tokens) */

typedef ngx_http_reductrai_storage_rc_e (*ngx_http_reductrai_bearer_pt)(
    void *data, char *token, size_t size,
    ngx_http_reductrai_storage_err_t *err);

int ngx_http_reductrai_s3_setup(ngx_http_reductrai_storage_t *st, int gcs,
    ngx_http_reductrai_bearer_pt bearer, void *data,
    void (*cleanup)(void *data), char *err, size_t errlen);


#endif /* _NGX_HTTP_REDUCTRAI_HTTP_H_INCLUDED_ */
