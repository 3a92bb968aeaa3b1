
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * OAuth2 access tokens for gs:// and azure://, cached and shared by the
 * upload threads, fetched again before they expire or when the store
 * refuses them; and the identity endpoints of the platforms that hand
 * them to a pod or a VM without a stored key, found as Google's and
 * Azure's SDKs find them:
 *
 *   Google: the metadata server, at GCE_METADATA_HOST or, on Google
 *   Cloud itself, metadata.google.internal ("Metadata-Flavor: Google");
 *
 *   Azure (DefaultAzureCredential's order): workload identity, when
 *   AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and AZURE_TENANT_ID are
 *   set (the projected token is read at each fetch, kubelet rotates it,
 *   and sent as a client assertion to AZURE_AUTHORITY_HOST); else a
 *   managed identity: App Service's IDENTITY_ENDPOINT with
 *   IDENTITY_HEADER, or the instance metadata service (on Azure itself,
 *   or at AZURE_POD_IDENTITY_AUTHORITY_HOST), for AZURE_CLIENT_ID when
 *   set.
 */


#include "ngx_http_reductrai_http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>


#define NGX_HTTP_REDUCTRAI_GCE_HOST       "metadata.google.internal"
#define NGX_HTTP_REDUCTRAI_GCE_TOKEN                                         \
    "/computeMetadata/v1/instance/service-accounts/default/token"
#define NGX_HTTP_REDUCTRAI_AZURE_IMDS     "http://169.254.169.254"
#define NGX_HTTP_REDUCTRAI_AZURE_AUTHORITY                                   \
    "https://login.microsoftonline.com/"
#define NGX_HTTP_REDUCTRAI_AZURE_ERESOURCE                                   \
    "https%3A%2F%2Fstorage.azure.com%2F"
/* a metadata address answers nothing off its cloud: give up quickly */
#define NGX_HTTP_REDUCTRAI_TOKEN_CONNECT_MS  1000
/* a whole token request, at most: every upload thread waits for it */
#define NGX_HTTP_REDUCTRAI_TOKEN_FETCH_MS    10000
/* after a failed fetch, a token still valid is used this long */
#define NGX_HTTP_REDUCTRAI_TOKEN_RETRY       10


typedef enum {
    NGX_HTTP_REDUCTRAI_ID_GCE = 0,
    NGX_HTTP_REDUCTRAI_ID_AZURE_WORKLOAD,
    NGX_HTTP_REDUCTRAI_ID_AZURE_APP_SERVICE,
    NGX_HTTP_REDUCTRAI_ID_AZURE_IMDS
} ngx_http_reductrai_id_e;


struct ngx_http_reductrai_token_s {
    ngx_http_reductrai_token_fetch_pt         fetch;
    void                                     *data;
    void                                    (*cleanup)(void *data);
    ngx_http_reductrai_creds_state_t         *cs;

    pthread_mutex_t                           lock;
    char                                      token[4096];
    time_t                                    expires;
    time_t                                    refresh;
};


/* an identity endpoint, as the fetch of a token cache */
typedef struct {
    ngx_http_reductrai_id_e                   id;
    const ngx_http_reductrai_storage_conf_t  *conf;
    char                                     *url;
    char                                     *secret;      /* a header */
    char                                     *client_id;
    char                                     *token_file;
} ngx_http_reductrai_identity_t;


static ngx_http_reductrai_token_t *ngx_http_reductrai_identity_create(
    ngx_http_reductrai_identity_t *idp, ngx_http_reductrai_creds_state_t *cs,
    char *err, size_t errlen);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_identity_fetch(
    void *data, char *token, size_t size, long *lifetime,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_identity_assertion(
    ngx_http_reductrai_identity_t *id, ngx_http_reductrai_http_t *h,
    char **body, char **assertion, ngx_http_reductrai_storage_err_t *err);
static void ngx_http_reductrai_identity_free(void *data);
static void ngx_http_reductrai_identity_destroy(void *data);


ngx_http_reductrai_token_t *
ngx_http_reductrai_token_create(ngx_http_reductrai_token_fetch_pt fetch,
    void *data, void (*cleanup)(void *data),
    ngx_http_reductrai_creds_state_t *cs)
{
    ngx_http_reductrai_token_t  *t;

    t = calloc(1, sizeof(ngx_http_reductrai_token_t));
    if (t == NULL) {
        return NULL;
    }

    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return NULL;
    }

    t->fetch = fetch;
    t->data = data;
    t->cleanup = cleanup;
    t->cs = cs;

    return t;
}


/*
 * The bearer of the S3 and Azure backends: a copy of the current token,
 * fetched first when it is due; token NULL: the store refused it (revoked,
 * clock skew), get a new one next time.
 */

ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_token_bearer(void *data, char *token, size_t size,
    ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_token_t *t = data;

    long                             lifetime, margin;
    time_t                           now;
    ngx_http_reductrai_storage_rc_e  rc;

    (void) pthread_mutex_lock(&t->lock);

    if (token == NULL) {
        t->refresh = 0;
        (void) pthread_mutex_unlock(&t->lock);
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    now = time(NULL);
    rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;

    if (t->token[0] == '\0' || now >= t->refresh) {
        lifetime = 0;
        rc = t->fetch(t->data, token, size < sizeof(t->token)
                                      ? size : sizeof(t->token),
                      &lifetime, err);

        ngx_http_reductrai_storage_creds_result(t->cs,
                                   rc == NGX_HTTP_REDUCTRAI_STORAGE_OK
                                   ? NULL : err);

        if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            if (lifetime <= 0) {
                lifetime = 3600;
            }

            /* refresh well before it expires: a quarter early, 5 min at most */
            margin = lifetime / 4 < 300 ? lifetime / 4 : 300;

            strcpy(t->token, token);
            t->expires = now + lifetime;
            t->refresh = t->expires - margin;

        } else if (t->token[0] != '\0' && now + 10 < t->expires) {
            /*
             * A token that has not expired yet still works meanwhile; the
             * endpoint is asked again in a while, not at every request.
             */
            t->refresh = now + NGX_HTTP_REDUCTRAI_TOKEN_RETRY;
            rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;
        }
    }

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        if (strlen(t->token) >= size) {
            ngx_http_reductrai_storage_error(err, 0, "access token too long");
            rc = NGX_HTTP_REDUCTRAI_STORAGE_FATAL;

        } else {
            strcpy(token, t->token);
        }
    }

    (void) pthread_mutex_unlock(&t->lock);

    return rc;
}


void
ngx_http_reductrai_token_free(void *data)
{
    ngx_http_reductrai_token_t *t = data;

    if (t == NULL) {
        return;
    }

    if (t->cleanup != NULL) {
        t->cleanup(t->data);
    }

    (void) pthread_mutex_destroy(&t->lock);
    ngx_http_reductrai_wipe(t->token, sizeof(t->token));
    free(t);
}


/* Google's metadata server; NULL with err "" when there is none to ask */

ngx_http_reductrai_token_t *
ngx_http_reductrai_token_gce(const ngx_http_reductrai_storage_conf_t *conf,
    ngx_http_reductrai_creds_state_t *cs, int on_cloud, char *err,
    size_t errlen)
{
    char                           *host;
    ngx_http_reductrai_identity_t   id;

    err[0] = '\0';

    host = ngx_http_reductrai_env("GCE_METADATA_HOST");

    if (host == NULL && !on_cloud) {
        return NULL;
    }

    memset(&id, 0, sizeof(id));
    id.id = NGX_HTTP_REDUCTRAI_ID_GCE;
    id.conf = conf;

    /* host[:port], always plain http, as Google's libraries take it */
    id.url = malloc(sizeof("http://" NGX_HTTP_REDUCTRAI_GCE_TOKEN)
                    + strlen(host ? host : NGX_HTTP_REDUCTRAI_GCE_HOST));
    if (id.url != NULL) {
        sprintf(id.url, "http://%s" NGX_HTTP_REDUCTRAI_GCE_TOKEN,
                host ? host : NGX_HTTP_REDUCTRAI_GCE_HOST);
    }

    return ngx_http_reductrai_identity_create(&id, cs, err, errlen);
}


/*
 * Azure's workload identity or managed identity; *source names the one
 * taken.  NULL with err "" when the environment names none.
 */

ngx_http_reductrai_token_t *
ngx_http_reductrai_token_azure(const ngx_http_reductrai_storage_conf_t *conf,
    ngx_http_reductrai_creds_state_t *cs, int on_cloud, const char **source,
    char *err, size_t errlen)
{
    char                           *file, *client, *tenant, *authority;
    char                           *endpoint, *header, *imds;
    size_t                          len;
    ngx_http_reductrai_identity_t   id;

    err[0] = '\0';

    file = ngx_http_reductrai_env("AZURE_FEDERATED_TOKEN_FILE");
    client = ngx_http_reductrai_env("AZURE_CLIENT_ID");
    tenant = ngx_http_reductrai_env("AZURE_TENANT_ID");
    authority = ngx_http_reductrai_env("AZURE_AUTHORITY_HOST");
    endpoint = ngx_http_reductrai_env("IDENTITY_ENDPOINT");
    header = ngx_http_reductrai_env("IDENTITY_HEADER");
    imds = ngx_http_reductrai_env("AZURE_POD_IDENTITY_AUTHORITY_HOST");

    memset(&id, 0, sizeof(id));
    id.conf = conf;
    id.client_id = client ? strdup(client) : NULL;

    if (file != NULL && client != NULL && tenant != NULL) {
        id.id = NGX_HTTP_REDUCTRAI_ID_AZURE_WORKLOAD;
        *source = "workload identity (AZURE_FEDERATED_TOKEN_FILE)";

        authority = authority ? authority : NGX_HTTP_REDUCTRAI_AZURE_AUTHORITY;
        len = strlen(authority);

        if (!ngx_http_reductrai_uri_trusted(authority, NULL)) {
            snprintf(err, errlen, "AZURE_AUTHORITY_HOST must be https:// "
                     "(http:// only on a loopback address)");
            ngx_http_reductrai_identity_free(&id);
            return NULL;
        }

        id.token_file = strdup(file);
        id.url = malloc(len + strlen(tenant) + 32);

        if (id.url != NULL) {
            sprintf(id.url, "%s%s%s/oauth2/v2.0/token", authority,
                    (len && authority[len - 1] == '/') ? "" : "/", tenant);
        }

    } else if (endpoint != NULL && header != NULL) {
        id.id = NGX_HTTP_REDUCTRAI_ID_AZURE_APP_SERVICE;
        *source = "managed identity (IDENTITY_ENDPOINT)";
        id.secret = strdup(header);
        id.url = strdup(endpoint);

    } else if (imds != NULL || on_cloud) {
        id.id = NGX_HTTP_REDUCTRAI_ID_AZURE_IMDS;
        *source = "managed identity (instance metadata)";
        id.url = strdup(imds ? imds : NGX_HTTP_REDUCTRAI_AZURE_IMDS);

        if (id.url != NULL) {
            len = strlen(id.url);

            while (len > 0 && id.url[len - 1] == '/') {
                id.url[--len] = '\0';
            }
        }

    } else {
        ngx_http_reductrai_identity_free(&id);
        return NULL;
    }

    return ngx_http_reductrai_identity_create(&id, cs, err, errlen);
}


/* takes over what idp holds, freed here on failure */

static ngx_http_reductrai_token_t *
ngx_http_reductrai_identity_create(ngx_http_reductrai_identity_t *idp,
    ngx_http_reductrai_creds_state_t *cs, char *err, size_t errlen)
{
    ngx_http_reductrai_token_t     *t;
    ngx_http_reductrai_identity_t  *id;

    id = malloc(sizeof(ngx_http_reductrai_identity_t));

    if (id == NULL || idp->url == NULL) {
        free(id);
        ngx_http_reductrai_identity_free(idp);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    *id = *idp;

    t = ngx_http_reductrai_token_create(ngx_http_reductrai_identity_fetch,
                                        id,
                                        ngx_http_reductrai_identity_destroy,
                                        cs);
    if (t == NULL) {
        ngx_http_reductrai_identity_free(id);
        free(id);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    return t;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_identity_fetch(void *data, char *token, size_t size,
    long *lifetime, ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_identity_t *id = data;

    char                             url[2048], *body, *assertion;
    const char                      *method, *what;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    body = NULL;
    assertion = NULL;

    switch (id->id) {

    case NGX_HTTP_REDUCTRAI_ID_GCE:
        what = "metadata server";
        method = "GET";
        snprintf(url, sizeof(url), "%s", id->url);
        break;

    case NGX_HTTP_REDUCTRAI_ID_AZURE_WORKLOAD:
        what = "workload identity";
        method = "POST";
        snprintf(url, sizeof(url), "%s", id->url);
        break;

    case NGX_HTTP_REDUCTRAI_ID_AZURE_APP_SERVICE:
        what = "managed identity";
        method = "GET";
        snprintf(url, sizeof(url), "%s%sapi-version=2019-08-01&resource=%s"
                 "%s%s", id->url, strchr(id->url, '?') ? "&" : "?",
                 NGX_HTTP_REDUCTRAI_AZURE_ERESOURCE,
                 id->client_id ? "&client_id=" : "",
                 id->client_id ? id->client_id : "");
        break;

    default: /* NGX_HTTP_REDUCTRAI_ID_AZURE_IMDS */
        what = "instance metadata";
        method = "GET";
        snprintf(url, sizeof(url), "%s/metadata/identity/oauth2/token"
                 "?api-version=2018-02-01&resource=%s%s%s", id->url,
                 NGX_HTTP_REDUCTRAI_AZURE_ERESOURCE,
                 id->client_id ? "&client_id=" : "",
                 id->client_id ? id->client_id : "");
        break;
    }

    h = ngx_http_reductrai_http_begin(id->conf, method, url, err);
    if (h == NULL) {
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        goto done;
    }

    (void) curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS,
                            (long) NGX_HTTP_REDUCTRAI_TOKEN_FETCH_MS);

    if (id->id != NGX_HTTP_REDUCTRAI_ID_AZURE_WORKLOAD) {
        (void) curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS,
                                (long) NGX_HTTP_REDUCTRAI_TOKEN_CONNECT_MS);
    }

    rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;

    switch (id->id) {

    case NGX_HTTP_REDUCTRAI_ID_GCE:
        if (ngx_http_reductrai_http_header(h, "Metadata-Flavor: Google") != 0)
        {
            rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        }

        break;

    case NGX_HTTP_REDUCTRAI_ID_AZURE_WORKLOAD:
        rc = ngx_http_reductrai_identity_assertion(id, h, &body, &assertion,
                                                   err);
        break;

    case NGX_HTTP_REDUCTRAI_ID_AZURE_APP_SERVICE:
        ngx_http_reductrai_http_secret(h, id->secret);

        if (ngx_http_reductrai_http_header(h, "X-IDENTITY-HEADER: %s",
                                           id->secret)
            != 0)
        {
            rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        }

        break;

    default:
        if (ngx_http_reductrai_http_header(h, "Metadata: true") != 0) {
            rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        }

        break;
    }

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        if (err->message[0] == '\0') {
            ngx_http_reductrai_storage_error(err, 0, "out of memory");
        }

        goto done;
    }

    rc = ngx_http_reductrai_http_perform(h, err);

    rc = ngx_http_reductrai_token_parse(h, rc,
                                        assertion ? assertion : id->secret,
                                        token, size, lifetime, err);

done:

    if (h != NULL) {
        /* the answer held the token */
        ngx_http_reductrai_http_body_wipe(h);
    }

    ngx_http_reductrai_free_secret(body);
    ngx_http_reductrai_free_secret(assertion);

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        ngx_http_reductrai_storage_error_prefix(err, what);

        /* an endpoint that refuses us now may take us later */
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    return rc;
}


/*
 * AKS workload identity: the service account token the kubelet projects
 * (read now: it rotates) goes to Entra ID as a client assertion.  The
 * caller frees *assertion after the request: until then error messages
 * are scrubbed of it.
 */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_identity_assertion(ngx_http_reductrai_identity_t *id,
    ngx_http_reductrai_http_t *h, char **body, char **assertion,
    ngx_http_reductrai_storage_err_t *err)
{
    char     ferr[160], eclient[512];
    size_t   len;

    static const char  fmt[] = "client_id=%s&client_assertion_type="
                               "urn%%3Aietf%%3Aparams%%3Aoauth%%3A"
                               "client-assertion-type%%3Ajwt-bearer"
                               "&client_assertion=%s"
                               "&grant_type=client_credentials"
                               "&scope=%s.default";

    *assertion = ngx_http_reductrai_read_secret_file(id->token_file, ferr,
                                                     sizeof(ferr));
    if (*assertion == NULL) {
        ngx_http_reductrai_storage_error(err, 0, "%s", ferr);
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    (void) ngx_http_reductrai_http_uri_encode(eclient, sizeof(eclient),
                                              id->client_id, 0);

    /* a JWT is base64url and dots: no form encoding needed */
    len = sizeof(fmt) + sizeof(NGX_HTTP_REDUCTRAI_AZURE_ERESOURCE)
          + strlen(eclient) + strlen(*assertion);

    *body = malloc(len);
    if (*body == NULL) {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    len = (size_t) snprintf(*body, len, fmt, eclient, *assertion,
                            NGX_HTTP_REDUCTRAI_AZURE_ERESOURCE);

    ngx_http_reductrai_http_secret(h, *assertion);

    return ngx_http_reductrai_http_form(h, *body, len, err) == 0
           ? NGX_HTTP_REDUCTRAI_STORAGE_OK : NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
}


/*
 * {"access_token":"...","expires_in":3599,...}, as every OAuth2 token
 * endpoint answers (the Azure managed identity endpoints give the numbers
 * as strings, App Service only "expires_on"); an error answer's "error"
 * and "error_description" make the reason.
 */

ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_token_parse(ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_storage_rc_e rc, const char *sent, char *token,
    size_t size, long *lifetime, ngx_http_reductrai_storage_err_t *err)
{
    long           in, on;
    char          *dc;
    json_t        *j, *v;
    const char    *t, *e, *d;
    json_error_t   jerr;

    j = h->body.len ? json_loadb((char *) h->body.data, h->body.len, 0, &jerr)
                    : NULL;

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        e = json_string_value(json_object_get(j, "error"));
        d = json_string_value(json_object_get(j, "error_description"));

        /*
         * The description may quote what was sent: scrubbed whole, before
         * the message cuts it short and leaves a piece no scrub would find.
         */
        dc = (d != NULL) ? strdup(d) : NULL;

        if (dc != NULL) {
            ngx_http_reductrai_http_scrub(dc, sent);
        }

        if (h->status != 0 && e != NULL) {
            ngx_http_reductrai_storage_error(err, h->status, "HTTP %ld "
                                             "%.60s%s%.120s", h->status, e,
                                             d ? ": " : "",
                                             dc ? dc : (d ? "..." : ""));
            ngx_http_reductrai_http_scrub(err->message, sent);
        }

        ngx_http_reductrai_free_secret(dc);

        json_decref(j);
        return rc;
    }

    t = json_string_value(json_object_get(j, "access_token"));

    if (t == NULL || t[0] == '\0' || strlen(t) >= size) {
        json_decref(j);
        ngx_http_reductrai_storage_error(err, h->status, "no usable "
                                         "access_token in the answer");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    v = json_object_get(j, "expires_in");
    in = json_is_integer(v) ? (long) json_integer_value(v)
         : json_is_string(v) ? atol(json_string_value(v)) : 0;

    v = json_object_get(j, "expires_on");
    on = json_is_integer(v) ? (long) json_integer_value(v)
         : json_is_string(v) ? atol(json_string_value(v)) : 0;

    if (in <= 0 && on > 0) {
        in = on - (long) time(NULL);
        in = in > 0 ? in : 1;
    }

    strcpy(token, t);
    *lifetime = in;

    json_decref(j);

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


/*
 * As the SDKs do: a plain http:// endpoint, which gets a token or returns
 * keys in clear, only on this host or at one of the link-local addresses
 * in hosts (NULL-terminated; NULL: none).
 */

int
ngx_http_reductrai_uri_trusted(const char *uri, const char *const *hosts)
{
    size_t              len;
    const char         *host, *end;
    const char *const  *t;

    static const char  *loopback[] = { "localhost", "[::1]", NULL };

    if (strncasecmp(uri, "https://", 8) == 0) {
        return 1;
    }

    if (strncasecmp(uri, "http://", 7) != 0) {
        return 0;
    }

    host = uri + 7;
    end = host[0] == '[' ? strchr(host, ']') : host + strcspn(host, ":/?#");

    if (end == NULL) {
        return 0;
    }

    len = (size_t) (end - host) + (host[0] == '[');

    if (len > 4 && strncmp(host, "127.", 4) == 0
        && strspn(host, "0123456789.") >= len)
    {
        return 1;
    }

    for (t = loopback; *t; t++) {
        if (strlen(*t) == len && strncasecmp(host, *t, len) == 0) {
            return 1;
        }
    }

    for (t = hosts; t != NULL && *t; t++) {
        if (strlen(*t) == len && strncasecmp(host, *t, len) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_reductrai_identity_free(void *data)
{
    ngx_http_reductrai_identity_t *id = data;

    free(id->url);
    ngx_http_reductrai_free_secret(id->secret);
    free(id->client_id);
    free(id->token_file);

    id->url = NULL;
    id->secret = NULL;
    id->client_id = NULL;
    id->token_file = NULL;
}


static void
ngx_http_reductrai_identity_destroy(void *data)
{
    ngx_http_reductrai_identity_free(data);
    free(data);
}


/* a variable of the environment; NULL when unset or empty */

char *
ngx_http_reductrai_env(const char *name)
{
    char  *v;

    v = getenv(name);

    return (v != NULL && v[0] != '\0') ? v : NULL;
}
