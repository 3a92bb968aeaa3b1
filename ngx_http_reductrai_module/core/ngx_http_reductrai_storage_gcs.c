
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * gs://bucket[/prefix]: Google Cloud Storage through its XML API, which
 * speaks the S3 protocol, so requests are made by the S3 backend.  Two
 * ways to authenticate:
 *
 *   access_key=/secret_key= (HMAC keys): SigV4 with region "auto";
 *   credentials_file= (a service-account JSON key, or the file named by
 *   GOOGLE_APPLICATION_CREDENTIALS): an RS256-signed JWT is exchanged at
 *   the key's token_uri for an OAuth2 access token, sent as "Authorization:
 *   Bearer", cached and refreshed before it expires.
 *
 * The key file is read at configuration time, by the master process,
 * which may read what the worker user cannot.
 */


#include "ngx_http_reductrai_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>


#define NGX_HTTP_REDUCTRAI_GCS_SCOPE                                         \
    "https://www.googleapis.com/auth/devstorage.read_write"
#define NGX_HTTP_REDUCTRAI_GCS_TOKEN_URI                                     \
    "https://oauth2.googleapis.com/token"
#define NGX_HTTP_REDUCTRAI_GCS_JWT_LIFETIME  3600
/* a whole token request, at most (the storage's timeout is for uploads) */
#define NGX_HTTP_REDUCTRAI_GCS_FETCH_MS      30000


struct ngx_http_reductrai_gcs_key_s {
    EVP_PKEY                            *pkey;
    char                                *client_email;
    char                                *key_id;
    char                                *token_uri;
};


typedef struct {
    ngx_http_reductrai_gcs_key_t        *key;
    ngx_http_reductrai_storage_conf_t   *conf;
} ngx_http_reductrai_gcs_t;


static int ngx_http_reductrai_gcs_create(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_gcs_fetch(
    void *data, char *token, size_t size, long *lifetime,
    ngx_http_reductrai_storage_err_t *err);
static void ngx_http_reductrai_gcs_cleanup(void *data);
static char *ngx_http_reductrai_gcs_b64url_json(json_t *j);


/*
 * Only create() is ever called through this table: it hands the storage
 * over to the S3 backend, set up for GCS.
 */

const ngx_http_reductrai_storage_backend_t  ngx_http_reductrai_storage_gcs = {
    "gs",
    ngx_http_reductrai_gcs_create,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL
};


static int
ngx_http_reductrai_gcs_create(ngx_http_reductrai_storage_t *st, char *err,
    size_t errlen)
{
    const char                  *file;
    ngx_http_reductrai_gcs_t    *g;
    ngx_http_reductrai_token_t  *t;

    file = st->conf.credentials_file;

    if (file != NULL && st->conf.access_key != NULL) {
        snprintf(err, errlen, "credentials_file= and access_key= exclude "
                 "each other");
        return -1;
    }

    if (file == NULL && st->conf.access_key == NULL) {
        /* as Google's libraries do; read now, by the master */
        file = getenv("GOOGLE_APPLICATION_CREDENTIALS");

        if (file != NULL && file[0] == '\0') {
            file = NULL;
        }
    }

    st->backend = &ngx_http_reductrai_storage_s3;

    if (file == NULL) {
        /* HMAC keys, from the directive or AWS_* in the environment */
        return ngx_http_reductrai_s3_setup(st, 1, NULL, NULL, NULL, err,
                                           errlen);
    }

    if (st->conf.credentials == NULL) {
        st->conf.credentials = ngx_http_reductrai_read_secret_file(file, err,
                                                                  errlen);
        if (st->conf.credentials == NULL) {
            return -1;
        }
    }

    g = calloc(1, sizeof(ngx_http_reductrai_gcs_t));
    if (g == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    g->conf = &st->conf;

    g->key = ngx_http_reductrai_gcs_key_parse(st->conf.credentials, err,
                                              errlen);

    /* the parsed key is all we need: the file's text goes now */
    ngx_http_reductrai_free_secret(st->conf.credentials);
    st->conf.credentials = NULL;

    if (g->key == NULL) {
        ngx_http_reductrai_gcs_cleanup(g);
        return -1;
    }

    t = ngx_http_reductrai_token_create(ngx_http_reductrai_gcs_fetch, g,
                                        ngx_http_reductrai_gcs_cleanup,
                                        &st->creds);
    if (t == NULL) {
        ngx_http_reductrai_gcs_cleanup(g);
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    if (ngx_http_reductrai_s3_setup(st, 1, ngx_http_reductrai_token_bearer,
                                    t, ngx_http_reductrai_token_free,
                                    err, errlen)
        != 0)
    {
        if (st->data == NULL) {
            ngx_http_reductrai_token_free(t);
        }

        return -1;
    }

    return 0;
}


ngx_http_reductrai_gcs_key_t *
ngx_http_reductrai_gcs_key_parse(const char *text, char *err, size_t errlen)
{
    BIO                           *bio;
    json_t                        *j, *v;
    const char                    *type, *pem;
    json_error_t                   jerr;
    ngx_http_reductrai_gcs_key_t  *key;

    j = json_loads(text, 0, &jerr);
    if (j == NULL || !json_is_object(j)) {
        /* no jerr.text: it may quote the file */
        snprintf(err, errlen, "the credentials file is not JSON (line %d)",
                 jerr.line);
        json_decref(j);
        return NULL;
    }

    type = json_string_value(json_object_get(j, "type"));

    if (type != NULL && strcmp(type, "service_account") != 0) {
        snprintf(err, errlen, "the credentials file is a \"%.40s\" key, "
                 "not a service-account key", type);
        json_decref(j);
        return NULL;
    }

    key = calloc(1, sizeof(ngx_http_reductrai_gcs_key_t));
    if (key == NULL) {
        snprintf(err, errlen, "out of memory");
        json_decref(j);
        return NULL;
    }

    v = json_object_get(j, "client_email");
    key->client_email = json_is_string(v) ? strdup(json_string_value(v))
                                          : NULL;

    v = json_object_get(j, "private_key_id");
    key->key_id = json_is_string(v) ? strdup(json_string_value(v)) : NULL;

    v = json_object_get(j, "token_uri");
    key->token_uri = strdup(json_is_string(v)
                            ? json_string_value(v)
                            : NGX_HTTP_REDUCTRAI_GCS_TOKEN_URI);

    pem = json_string_value(json_object_get(j, "private_key"));

    if (key->client_email == NULL || pem == NULL || key->token_uri == NULL) {
        snprintf(err, errlen, "the credentials file has no client_email or "
                 "private_key");
        goto failed;
    }

    bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL) {
        snprintf(err, errlen, "BIO_new_mem_buf() failed");
        goto failed;
    }

    key->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (key->pkey == NULL || EVP_PKEY_get_base_id(key->pkey) != EVP_PKEY_RSA)
    {
        snprintf(err, errlen, "the private_key of the credentials file is "
                 "not an RSA key in PEM");
        goto failed;
    }

    /* the PEM text goes back to jansson's allocator wiped */
    ngx_http_reductrai_wipe((char *) pem, strlen(pem));
    json_decref(j);

    return key;

failed:

    if (pem != NULL) {
        ngx_http_reductrai_wipe((char *) pem, strlen(pem));
    }

    json_decref(j);
    ngx_http_reductrai_gcs_key_free(key);

    return NULL;
}


void
ngx_http_reductrai_gcs_key_free(ngx_http_reductrai_gcs_key_t *key)
{
    if (key == NULL) {
        return;
    }

    EVP_PKEY_free(key->pkey);
    free(key->client_email);
    free(key->key_id);
    free(key->token_uri);
    free(key);
}


const char *
ngx_http_reductrai_gcs_key_token_uri(ngx_http_reductrai_gcs_key_t *key)
{
    return key->token_uri;
}


char *
ngx_http_reductrai_gcs_jwt(ngx_http_reductrai_gcs_key_t *key, time_t now,
    const char *scope)
{
    char        *head, *claims, *out;
    u_char      *sig;
    size_t       siglen, len;
    json_t      *jh, *jc;
    EVP_MD_CTX  *md;

    out = NULL;
    sig = NULL;
    md = NULL;

    jh = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
    jc = json_pack("{s:s, s:s, s:s, s:I, s:I}",
                   "iss", key->client_email, "scope", scope,
                   "aud", key->token_uri, "iat", (json_int_t) now,
                   "exp",
                   (json_int_t) now + NGX_HTTP_REDUCTRAI_GCS_JWT_LIFETIME);

    if (jh != NULL && key->key_id != NULL) {
        (void) json_object_set_new(jh, "kid", json_string(key->key_id));
    }

    head = jh ? ngx_http_reductrai_gcs_b64url_json(jh) : NULL;
    claims = jc ? ngx_http_reductrai_gcs_b64url_json(jc) : NULL;

    json_decref(jh);
    json_decref(jc);

    if (head == NULL || claims == NULL) {
        goto failed;
    }

    siglen = (size_t) EVP_PKEY_get_size(key->pkey);
    len = strlen(head) + strlen(claims) + 2 + (siglen + 2) / 3 * 4 + 1;

    out = malloc(len);
    sig = malloc(siglen);
    md = EVP_MD_CTX_new();

    if (out == NULL || sig == NULL || md == NULL) {
        goto failed;
    }

    len = (size_t) sprintf(out, "%s.%s", head, claims);

    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1
        || EVP_DigestSign(md, sig, &siglen, (u_char *) out, len) != 1)
    {
        goto failed;
    }

    out[len++] = '.';
    (void) ngx_http_reductrai_http_base64(out + len, sig, siglen, 1);

    free(head);
    free(claims);
    free(sig);
    EVP_MD_CTX_free(md);

    return out;

failed:

    free(head);
    free(claims);
    free(out);
    free(sig);
    EVP_MD_CTX_free(md);

    return NULL;
}


/* an RS256-signed assertion for an access token */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_gcs_fetch(void *data, char *token, size_t size,
    long *lifetime, ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_gcs_t *g = data;

    char                            *jwt, *body;
    size_t                           len;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    static const char  grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth"
                                 "%3Agrant-type%3Ajwt-bearer&assertion=";

    jwt = ngx_http_reductrai_gcs_jwt(g->key, time(NULL),
                                     NGX_HTTP_REDUCTRAI_GCS_SCOPE);
    if (jwt == NULL) {
        ngx_http_reductrai_storage_error(err, 0, "signing the token request "
                                         "failed");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    len = sizeof(grant) - 1 + strlen(jwt);

    body = malloc(len + 1);
    if (body == NULL) {
        free(jwt);
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    /* base64url and '.' need no form encoding */
    sprintf(body, "%s%s", grant, jwt);

    h = ngx_http_reductrai_http_begin(g->conf, "POST", g->key->token_uri,
                                      err);
    if (h == NULL) {
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        goto done;
    }

    /* every upload thread waits on the lock held meanwhile: not for long */
    (void) curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS,
                            (long) NGX_HTTP_REDUCTRAI_GCS_FETCH_MS);

    ngx_http_reductrai_http_secret(h, jwt);

    if (ngx_http_reductrai_http_header(h, "Accept: application/json") != 0
        || ngx_http_reductrai_http_form(h, body, len, err) != 0)
    {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        goto done;
    }

    rc = ngx_http_reductrai_http_perform(h, err);

    /* {"error":"invalid_grant","error_description":"..."} on failure */
    rc = ngx_http_reductrai_token_parse(h, rc, jwt, token, size, lifetime,
                                        err);

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        ngx_http_reductrai_storage_error_prefix(err, "token endpoint");
    }

done:

    if (h != NULL) {
        /* the answer held the access token */
        ngx_http_reductrai_http_body_wipe(h);
    }

    ngx_http_reductrai_free_secret(jwt);
    ngx_http_reductrai_free_secret(body);

    return rc;
}


static void
ngx_http_reductrai_gcs_cleanup(void *data)
{
    ngx_http_reductrai_gcs_t *g = data;

    ngx_http_reductrai_gcs_key_free(g->key);
    free(g);
}


static char *
ngx_http_reductrai_gcs_b64url_json(json_t *j)
{
    char    *s, *out;
    size_t   len;

    s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s == NULL) {
        return NULL;
    }

    len = strlen(s);

    out = malloc((len + 2) / 3 * 4 + 1);
    if (out != NULL) {
        (void) ngx_http_reductrai_http_base64(out, (u_char *) s, len, 1);
    }

    free(s);

    return out;
}
