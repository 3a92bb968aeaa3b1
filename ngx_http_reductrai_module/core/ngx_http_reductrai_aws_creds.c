
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Temporary AWS credentials for s3:// when neither the directive nor the
 * environment gives keys, looked up as the AWS SDKs do:
 *
 *   a web identity (EKS IAM roles for service accounts): with
 *   AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, the token in the file
 *   (read at every fetch: the kubelet rotates it) is exchanged by an
 *   unsigned STS AssumeRoleWithWebIdentity for the role's keys; STS is
 *   AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else the regional
 *   endpoint of AWS_REGION (the global one for the regions that had it
 *   when AWS_STS_REGIONAL_ENDPOINTS is "legacy");
 *
 *   the container endpoint (ECS task roles, EKS Pod Identity):
 *   AWS_CONTAINER_CREDENTIALS_FULL_URI, or
 *   AWS_CONTAINER_CREDENTIALS_RELATIVE_URI under http://169.254.170.2,
 *   with the Authorization value of AWS_CONTAINER_AUTHORIZATION_TOKEN or
 *   of the file AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read at every
 *   fetch: EKS rotates it);
 *
 *   else, on AWS itself (no endpoint=) or when
 *   AWS_EC2_METADATA_SERVICE_ENDPOINT names it, the EC2 instance metadata
 *   service with IMDSv2 session tokens (http://169.254.169.254 by
 *   default), unless AWS_EC2_METADATA_DISABLED is "true".
 *
 * The keys are cached, shared by the upload threads, and fetched again
 * five minutes before they expire or when the store refuses them.  The
 * environment is read by each worker as it starts (nginx's "env" directive
 * passes the variables), the token file by the worker at each fetch.
 */


#include "ngx_http_reductrai_http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>


#define NGX_HTTP_REDUCTRAI_AWS_ECS_HOST   "http://169.254.170.2"
#define NGX_HTTP_REDUCTRAI_AWS_IMDS_HOST  "http://169.254.169.254"
#define NGX_HTTP_REDUCTRAI_AWS_IMDS_CREDS                                    \
    "/latest/meta-data/iam/security-credentials/"
/* off AWS the metadata address answers nothing: give up quickly there */
#define NGX_HTTP_REDUCTRAI_AWS_IMDS_CONNECT_MS  1000
/* a whole request to either endpoint, at most */
#define NGX_HTTP_REDUCTRAI_AWS_FETCH_MS         5000
#define NGX_HTTP_REDUCTRAI_AWS_REFRESH_EARLY    300
/* after a failed refresh, keys still valid are used this long */
#define NGX_HTTP_REDUCTRAI_AWS_RETRY            10
#define NGX_HTTP_REDUCTRAI_AWS_STS_GLOBAL  "https://sts.amazonaws.com"


struct ngx_http_reductrai_aws_creds_s {
    const ngx_http_reductrai_storage_conf_t  *conf;
    pthread_mutex_t                           lock;

    char                                     *uri;        /* container */
    char                                     *auth;       /* its token */
    char                                     *auth_file;
    char                                     *imds;       /* or this */
    char                                     *role_arn;   /* or STS */
    char                                     *token_file;
    char                                     *session;
    char                                     *sts;
    ngx_http_reductrai_creds_state_t         *cs;

    ngx_http_reductrai_aws_keys_t             keys;
    time_t                                    expires;
    time_t                                    refresh;
};


static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_aws_fetch(
    ngx_http_reductrai_aws_creds_t *c, ngx_http_reductrai_aws_keys_t *keys,
    time_t *expires, ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_aws_container(
    ngx_http_reductrai_aws_creds_t *c, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_aws_sts(
    ngx_http_reductrai_aws_creds_t *c, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_aws_keys_t *keys, time_t *expires,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_aws_sts_parse(
    ngx_http_reductrai_http_t *h, ngx_http_reductrai_aws_keys_t *keys,
    time_t *expires, ngx_http_reductrai_storage_err_t *err);
static int ngx_http_reductrai_aws_web_identity(
    ngx_http_reductrai_aws_creds_t *c,
    const ngx_http_reductrai_storage_conf_t *conf);
static char *ngx_http_reductrai_aws_sts_url(
    const ngx_http_reductrai_storage_conf_t *conf);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_aws_imds(
    ngx_http_reductrai_aws_creds_t *c, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_http_t *ngx_http_reductrai_aws_begin(
    ngx_http_reductrai_aws_creds_t *c, const char *method, const char *url,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_aws_imds_get(
    ngx_http_reductrai_aws_creds_t *c, const char *method, const char *url,
    const char *header, ngx_http_reductrai_http_t **hp,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_aws_parse(
    ngx_http_reductrai_http_t *h, ngx_http_reductrai_aws_keys_t *keys,
    time_t *expires, ngx_http_reductrai_storage_err_t *err);


ngx_http_reductrai_aws_creds_t *
ngx_http_reductrai_aws_creds_create(
    const ngx_http_reductrai_storage_conf_t *conf,
    ngx_http_reductrai_creds_state_t *cs, int imds, char *err,
    size_t errlen)
{
    int                              web;
    char                            *full, *relative, *disabled, *ep;
    ngx_http_reductrai_aws_creds_t  *c;

    err[0] = '\0';

    web = ngx_http_reductrai_env("AWS_ROLE_ARN") != NULL
          && ngx_http_reductrai_env("AWS_WEB_IDENTITY_TOKEN_FILE") != NULL;
    full = ngx_http_reductrai_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    relative = ngx_http_reductrai_env(
                                   "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    disabled = ngx_http_reductrai_env("AWS_EC2_METADATA_DISABLED");
    ep = ngx_http_reductrai_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");

    /* a metadata endpoint named explicitly is wanted whatever the store */
    imds = imds || ep != NULL;

    if (!web && full == NULL && relative == NULL
        && (!imds || (disabled != NULL && strcasecmp(disabled, "true") == 0)))
    {
        return NULL;
    }

    c = calloc(1, sizeof(ngx_http_reductrai_aws_creds_t));
    if (c == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    c->conf = conf;
    c->cs = cs;

    /* the SDKs' order: a web identity before the container endpoint */

    if (web) {
        if (ngx_http_reductrai_aws_web_identity(c, conf) != 0) {
            ngx_http_reductrai_aws_creds_free(c);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }

        return c;
    }

    if (full != NULL) {
        c->uri = strdup(full);

    } else if (relative != NULL) {
        c->uri = malloc(sizeof(NGX_HTTP_REDUCTRAI_AWS_ECS_HOST)
                        + strlen(relative));
        if (c->uri != NULL) {
            sprintf(c->uri, "%s%s", NGX_HTTP_REDUCTRAI_AWS_ECS_HOST,
                    relative);
        }

    } else {
        c->imds = strdup(ep ? ep : NGX_HTTP_REDUCTRAI_AWS_IMDS_HOST);

        if (c->imds != NULL) {
            /* "http://[fd00:ec2::254]/" and the like: no trailing slash */
            while (c->imds[0] && c->imds[strlen(c->imds) - 1] == '/') {
                c->imds[strlen(c->imds) - 1] = '\0';
            }
        }
    }

    if (c->uri != NULL) {
        c->auth = ngx_http_reductrai_env(
                                        "AWS_CONTAINER_AUTHORIZATION_TOKEN");
        c->auth = c->auth ? strdup(c->auth) : NULL;
        c->auth_file = ngx_http_reductrai_env(
                                   "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        c->auth_file = c->auth_file ? strdup(c->auth_file) : NULL;
    }

    if (c->uri == NULL && c->imds == NULL) {
        ngx_http_reductrai_aws_creds_free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    return c;
}


const char *
ngx_http_reductrai_aws_creds_source(ngx_http_reductrai_aws_creds_t *c)
{
    return c->role_arn ? "web identity (AWS_ROLE_ARN)"
           : c->uri ? "container endpoint" : "instance metadata";
}


/* a copy of the current keys, fetched first when they are due */

ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_aws_creds_get(ngx_http_reductrai_aws_creds_t *c,
    ngx_http_reductrai_aws_keys_t *keys, ngx_http_reductrai_storage_err_t *err)
{
    time_t                           now, expires;
    ngx_http_reductrai_storage_rc_e  rc;

    (void) pthread_mutex_lock(&c->lock);

    now = time(NULL);
    rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;

    if (c->keys.access_key[0] == '\0' || now >= c->refresh) {
        rc = ngx_http_reductrai_aws_fetch(c, keys, &expires, err);

        ngx_http_reductrai_storage_creds_result(c->cs,
                                   rc == NGX_HTTP_REDUCTRAI_STORAGE_OK
                                   ? NULL : err);

        if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            c->keys = *keys;
            c->expires = expires;
            c->refresh = expires - NGX_HTTP_REDUCTRAI_AWS_REFRESH_EARLY;

            if (c->refresh < now + 60) {
                /* short-lived keys: use them for at most a minute */
                c->refresh = now + 60 < expires ? now + 60 : expires;
            }

        } else if (c->keys.access_key[0] != '\0' && now + 10 < c->expires) {
            /*
             * Keys that have not expired yet still work meanwhile; the
             * endpoint is asked again in a while, not at every request
             * (each waiting for it under the lock).
             */
            c->refresh = now + NGX_HTTP_REDUCTRAI_AWS_RETRY;
            rc = NGX_HTTP_REDUCTRAI_STORAGE_OK;
        }
    }

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        *keys = c->keys;
    }

    (void) pthread_mutex_unlock(&c->lock);

    return rc;
}


/* the store refused the keys (rotated, revoked): fetch them at next use */

void
ngx_http_reductrai_aws_creds_expire(ngx_http_reductrai_aws_creds_t *c)
{
    (void) pthread_mutex_lock(&c->lock);
    c->refresh = 0;
    (void) pthread_mutex_unlock(&c->lock);
}


void
ngx_http_reductrai_aws_creds_free(ngx_http_reductrai_aws_creds_t *c)
{
    if (c == NULL) {
        return;
    }

    (void) pthread_mutex_destroy(&c->lock);
    free(c->uri);
    ngx_http_reductrai_free_secret(c->auth);
    free(c->auth_file);
    free(c->imds);
    free(c->role_arn);
    free(c->token_file);
    free(c->session);
    free(c->sts);
    ngx_http_reductrai_aws_keys_clear(&c->keys);
    free(c);
}


void
ngx_http_reductrai_aws_keys_clear(ngx_http_reductrai_aws_keys_t *keys)
{
    ngx_http_reductrai_wipe(keys, sizeof(ngx_http_reductrai_aws_keys_t));
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_aws_fetch(ngx_http_reductrai_aws_creds_t *c,
    ngx_http_reductrai_aws_keys_t *keys, time_t *expires,
    ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    h = NULL;

    if (c->role_arn != NULL) {
        rc = ngx_http_reductrai_aws_sts(c, &h, keys, expires, err);

    } else {
        rc = c->uri ? ngx_http_reductrai_aws_container(c, &h, err)
                    : ngx_http_reductrai_aws_imds(c, &h, err);

        if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            rc = ngx_http_reductrai_aws_parse(h, keys, expires, err);
        }
    }

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        ngx_http_reductrai_storage_error_prefix(err, "credentials");
    }

    if (h != NULL) {
        /* the answer held the secret key */
        ngx_http_reductrai_http_body_wipe(h);
    }

    return rc;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_aws_container(ngx_http_reductrai_aws_creds_t *c,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err)
{
    char                            *token, ferr[128];
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    static const char  *ecs[] = { "169.254.170.2", "169.254.170.23",
                                  "[fd00:ec2::23]", NULL };

    if (!ngx_http_reductrai_uri_trusted(c->uri, ecs)) {
        ngx_http_reductrai_storage_error(err, 0, "an http:// container "
                                         "endpoint must be on a loopback or "
                                         "the ECS/EKS link-local address "
                                         "(else use https://)");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    token = NULL;

    if (c->auth_file != NULL) {
        token = ngx_http_reductrai_read_secret_file(c->auth_file, ferr,
                                                    sizeof(ferr));
        if (token == NULL) {
            ngx_http_reductrai_storage_error(err, 0, "%s", ferr);
            return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        }
    }

    h = ngx_http_reductrai_aws_begin(c, "GET", c->uri, err);
    if (h == NULL) {
        ngx_http_reductrai_free_secret(token);
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    *hp = h;

    if (token != NULL || c->auth != NULL) {
        ngx_http_reductrai_http_secret(h, token ? token : c->auth);

        if (ngx_http_reductrai_http_header(h, "Authorization: %s",
                                           token ? token : c->auth)
            != 0)
        {
            ngx_http_reductrai_free_secret(token);
            ngx_http_reductrai_storage_error(err, 0, "out of memory");
            return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        }
    }

    rc = ngx_http_reductrai_http_perform(h, err);

    ngx_http_reductrai_free_secret(token);

    /* an endpoint that refuses us now may take us later: keep trying */
    return rc == NGX_HTTP_REDUCTRAI_STORAGE_OK ? rc
                                               : NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_aws_imds(ngx_http_reductrai_aws_creds_t *c,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err)
{
    char                             url[1024], header[256], role[256];
    char                            *nl;
    size_t                           len;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    /* IMDSv2: a session token first, sent with every read */

    snprintf(url, sizeof(url), "%s/latest/api/token", c->imds);

    rc = ngx_http_reductrai_aws_imds_get(c, "PUT", url,
                                         "X-aws-ec2-metadata-token-ttl-seconds:"
                                         " 300", hp, err);
    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        return rc;
    }

    h = *hp;
    len = h->body.len;

    if (len == 0 || len + sizeof("X-aws-ec2-metadata-token: ") > sizeof(header))
    {
        ngx_http_reductrai_storage_error(err, h->status, "instance metadata "
                                         "gave no session token");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    snprintf(header, sizeof(header), "X-aws-ec2-metadata-token: %.*s",
             (int) len, (char *) h->body.data);

    /* the instance's role */

    snprintf(url, sizeof(url), "%s" NGX_HTTP_REDUCTRAI_AWS_IMDS_CREDS,
             c->imds);

    rc = ngx_http_reductrai_aws_imds_get(c, "GET", url, header, hp, err);
    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        if ((*hp)->status == 404) {
            ngx_http_reductrai_storage_error(err, 404, "the instance has no "
                                             "IAM role");
        }

        goto done;
    }

    h = *hp;
    len = h->body.len < sizeof(role) ? h->body.len : sizeof(role) - 1;
    memcpy(role, h->body.data, len);
    role[len] = '\0';

    nl = strpbrk(role, "\r\n");
    if (nl != NULL) {
        *nl = '\0';
    }

    if (role[0] == '\0' || strchr(role, '/') != NULL) {
        ngx_http_reductrai_storage_error(err, h->status, "instance metadata "
                                         "named no IAM role");
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        goto done;
    }

    /* and its keys */

    snprintf(url, sizeof(url), "%s" NGX_HTTP_REDUCTRAI_AWS_IMDS_CREDS "%s",
             c->imds, role);

    rc = ngx_http_reductrai_aws_imds_get(c, "GET", url, header, hp, err);

done:

    ngx_http_reductrai_wipe(header, sizeof(header));

    return rc;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_aws_imds_get(ngx_http_reductrai_aws_creds_t *c,
    const char *method, const char *url, const char *header,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    h = ngx_http_reductrai_aws_begin(c, method, url, err);
    if (h == NULL) {
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    *hp = h;

    if (ngx_http_reductrai_http_header(h, "%s", header) != 0) {
        ngx_http_reductrai_storage_error(err, 0, "out of memory");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    rc = ngx_http_reductrai_http_perform(h, err);

    return rc == NGX_HTTP_REDUCTRAI_STORAGE_OK ? rc
                                               : NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
}


/*
 * A request to a credentials endpoint.  Every upload thread waits for it
 * (under the lock): a hung endpoint must not hold them for the storage's
 * low-speed timeout of minutes.
 */

static ngx_http_reductrai_http_t *
ngx_http_reductrai_aws_begin(ngx_http_reductrai_aws_creds_t *c,
    const char *method, const char *url, ngx_http_reductrai_storage_err_t *err)
{
    ngx_http_reductrai_http_t  *h;

    h = ngx_http_reductrai_http_begin(c->conf, method, url, err);
    if (h == NULL) {
        return NULL;
    }

    (void) curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS,
                            (long) NGX_HTTP_REDUCTRAI_AWS_FETCH_MS);

    if (c->imds != NULL) {
        (void) curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS,
                                (long) NGX_HTTP_REDUCTRAI_AWS_IMDS_CONNECT_MS);
    }

    return h;
}


/*
 * {"AccessKeyId":"ASIA...","SecretAccessKey":"...","Token":"...",
 *  "Expiration":"2026-11-25T23:59:59Z"}: both endpoints answer so.
 */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_aws_parse(ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_aws_keys_t *keys, time_t *expires,
    ngx_http_reductrai_storage_err_t *err)
{
    int            ok;
    json_t        *j;
    struct tm      tm;
    const char    *ak, *sk, *token, *exp, *end;
    json_error_t   jerr;

    j = json_loadb((char *) h->body.data, h->body.len, 0, &jerr);

    ak = json_string_value(json_object_get(j, "AccessKeyId"));
    sk = json_string_value(json_object_get(j, "SecretAccessKey"));
    token = json_string_value(json_object_get(j, "Token"));
    exp = json_string_value(json_object_get(j, "Expiration"));

    memset(&tm, 0, sizeof(tm));
    end = exp ? strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;

    ok = ak != NULL && sk != NULL && ak[0] != '\0' && sk[0] != '\0'
         && strlen(ak) < sizeof(keys->access_key)
         && strlen(sk) < sizeof(keys->secret_key)
         && (token == NULL || strlen(token) < sizeof(keys->session_token))
         && end != NULL;

    if (ok) {
        ngx_http_reductrai_aws_keys_clear(keys);
        strcpy(keys->access_key, ak);
        strcpy(keys->secret_key, sk);

        if (token != NULL) {
            strcpy(keys->session_token, token);
        }

        *expires = timegm(&tm);
    }

    json_decref(j);

    if (!ok) {
        ngx_http_reductrai_storage_error(err, h->status, "no usable "
                                         "AccessKeyId, SecretAccessKey and "
                                         "Expiration in the answer");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


/* the role, its token file, the session name and STS of a web identity */

static int
ngx_http_reductrai_aws_web_identity(ngx_http_reductrai_aws_creds_t *c,
    const ngx_http_reductrai_storage_conf_t *conf)
{
    char  *session;

    session = ngx_http_reductrai_env("AWS_ROLE_SESSION_NAME");

    c->role_arn = strdup(ngx_http_reductrai_env("AWS_ROLE_ARN"));
    c->token_file = strdup(ngx_http_reductrai_env(
                                            "AWS_WEB_IDENTITY_TOKEN_FILE"));
    c->sts = ngx_http_reductrai_aws_sts_url(conf);

    if (session != NULL) {
        c->session = strdup(session);

    } else {
        /* as the SDKs make one: unique enough for CloudTrail */
        c->session = malloc(64);

        if (c->session != NULL) {
            snprintf(c->session, 64, "reductrai-%ld-%ld", (long) getpid(),
                     (long) time(NULL));
        }
    }

    return (c->role_arn && c->token_file && c->sts && c->session) ? 0 : -1;
}


/*
 * The SDKs' endpoint overrides first; else the region's own STS, but the
 * global one for the regions that had only it when "legacy" is asked for
 * (regional is the SDKs' default since 2022).
 */

static char *
ngx_http_reductrai_aws_sts_url(const ngx_http_reductrai_storage_conf_t *conf)
{
    char        *url, *mode;
    size_t       len;
    const char  *region, *const *r;

    static const char  *legacy[] = {
        "ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
        "aws-global", "ca-central-1", "eu-central-1", "eu-north-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1", "us-east-1",
        "us-east-2", "us-west-1", "us-west-2", NULL
    };

    url = ngx_http_reductrai_env("AWS_ENDPOINT_URL_STS");

    if (url == NULL) {
        url = ngx_http_reductrai_env("AWS_ENDPOINT_URL");
    }

    if (url != NULL) {
        url = strdup(url);
        len = url ? strlen(url) : 0;

        while (len > 0 && url[len - 1] == '/') {
            url[--len] = '\0';
        }

        return url;
    }

    region = ngx_http_reductrai_env("AWS_REGION");
    region = region ? region : ngx_http_reductrai_env("AWS_DEFAULT_REGION");
    region = region ? region : conf->region;

    mode = ngx_http_reductrai_env("AWS_STS_REGIONAL_ENDPOINTS");

    if (region == NULL || strcmp(region, "aws-global") == 0) {
        return strdup(NGX_HTTP_REDUCTRAI_AWS_STS_GLOBAL);
    }

    if (mode != NULL && strcasecmp(mode, "legacy") == 0) {
        for (r = legacy; *r; r++) {
            if (strcmp(region, *r) == 0) {
                return strdup(NGX_HTTP_REDUCTRAI_AWS_STS_GLOBAL);
            }
        }
    }

    url = malloc(strlen(region) + 40);

    if (url != NULL) {
        sprintf(url, "https://sts.%s.amazonaws.com%s", region,
                strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    }

    return url;
}


/*
 * AssumeRoleWithWebIdentity: unsigned, the token is the credential.  A
 * form POST, so that neither the token nor the role lands in an access log.
 */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_aws_sts(ngx_http_reductrai_aws_creds_t *c,
    ngx_http_reductrai_http_t **hp, ngx_http_reductrai_aws_keys_t *keys,
    time_t *expires, ngx_http_reductrai_storage_err_t *err)
{
    char                            *token, *etoken, *body, ferr[160];
    char                             erole[1024], esession[256];
    size_t                           len;
    ngx_http_reductrai_http_t       *h;
    ngx_http_reductrai_storage_rc_e  rc;

    token = ngx_http_reductrai_read_secret_file(c->token_file, ferr,
                                                sizeof(ferr));
    if (token == NULL) {
        ngx_http_reductrai_storage_error(err, 0, "web identity token: %s",
                                         ferr);
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    len = strlen(token) * 3 + 1;
    etoken = malloc(len);
    body = malloc(len + sizeof(erole) + sizeof(esession) + 128);

    if (etoken == NULL || body == NULL
        || ngx_http_reductrai_http_uri_encode(etoken, len, token, 0) == 0
        || ngx_http_reductrai_http_uri_encode(erole, sizeof(erole),
                                              c->role_arn, 0) == 0
        || ngx_http_reductrai_http_uri_encode(esession, sizeof(esession),
                                              c->session, 0) == 0)
    {
        ngx_http_reductrai_storage_error(err, 0, "web identity token or "
                                         "role too long");
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        goto done;
    }

    len = (size_t) sprintf(body, "Action=AssumeRoleWithWebIdentity"
                           "&RoleArn=%s&RoleSessionName=%s"
                           "&Version=2011-06-15&WebIdentityToken=%s",
                           erole, esession, etoken);

    h = ngx_http_reductrai_aws_begin(c, "POST", c->sts, err);
    if (h == NULL) {
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        goto done;
    }

    *hp = h;

    ngx_http_reductrai_http_secret(h, token);

    if (ngx_http_reductrai_http_form(h, body, len, err) != 0) {
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
        goto done;
    }

    rc = ngx_http_reductrai_http_perform(h, err);

    if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        rc = ngx_http_reductrai_aws_sts_parse(h, keys, expires, err);

    } else {
        /* a refused token may be rotated by the kubelet: keep trying */
        ngx_http_reductrai_storage_error_prefix(err, "STS");
        rc = NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

done:

    ngx_http_reductrai_free_secret(token);
    ngx_http_reductrai_free_secret(etoken);
    ngx_http_reductrai_free_secret(body);

    return rc;
}


/*
 * <AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>
 * <Credentials><AccessKeyId/><SecretAccessKey/><SessionToken/>
 * <Expiration>2026-11-25T23:59:59Z</Expiration></Credentials>...
 */

static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_aws_sts_parse(ngx_http_reductrai_http_t *h,
    ngx_http_reductrai_aws_keys_t *keys, time_t *expires,
    ngx_http_reductrai_storage_err_t *err)
{
    char        exp[64];
    struct tm   tm;
    const char *p, *end;

    p = (const char *) h->body.data;
    end = p + h->body.len;

    ngx_http_reductrai_aws_keys_clear(keys);
    memset(&tm, 0, sizeof(tm));

    if (ngx_http_reductrai_http_xml_text(p, end, "AccessKeyId",
                                         keys->access_key,
                                         sizeof(keys->access_key)) <= 0
        || ngx_http_reductrai_http_xml_text(p, end, "SecretAccessKey",
                                            keys->secret_key,
                                            sizeof(keys->secret_key)) <= 0
        || ngx_http_reductrai_http_xml_text(p, end, "SessionToken",
                                            keys->session_token,
                                            sizeof(keys->session_token)) <= 0
        || ngx_http_reductrai_http_xml_text(p, end, "Expiration", exp,
                                            sizeof(exp)) <= 0
        || strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm) == NULL
        || strlen(keys->access_key) + 1 >= sizeof(keys->access_key)
        || strlen(keys->secret_key) + 1 >= sizeof(keys->secret_key)
        || strlen(keys->session_token) + 1 >= sizeof(keys->session_token))
    {
        ngx_http_reductrai_aws_keys_clear(keys);
        ngx_http_reductrai_storage_error(err, h->status, "STS: no usable "
                                         "Credentials in the answer");
        return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
    }

    *expires = timegm(&tm);

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}
