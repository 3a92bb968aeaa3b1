
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * libFuzzer target for whole storage answers, as the backends receive them
 * from a server: a loopback HTTP server in a thread answers every request
 * with the fuzzer's status and body, and the real backends (through
 * libcurl) list, put, get and, for GCS, fetch a token with them.  This
 * reaches the parsers that live inside the request code: S3 and Azure
 * error bodies and listing pages, the GCS token endpoint's JSON
 * ({"access_token":…,"expires_in":…} or {"error":…}).
 *
 * Byte 0 picks the operation, byte 1 the status; the rest is the body.
 * The storages are built once (a GCS one signs with a key of its own),
 * and their connections stay open between inputs; the GCS token is
 * forgotten before each input that uses it, so that each fetches it.
 * Checks: no access out of bounds, no leak, no hang (libFuzzer's -timeout);
 * an error message is one line without the secret the backend holds:
 * libFuzzer learns the string from the check (it intercepts strstr) and
 * has the server echo it, which the backend must scrub.
 */


#include "ngx_http_reductrai_storage.h"
#include "fuzz.h"

/* its private struct: the bearer, to forget the GCS token */
#include "ngx_http_reductrai_storage_s3.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>


static void *fuzz_server(void *arg);
static void *fuzz_conn(void *arg);
static void fuzz_serve(int c);
static int fuzz_sink(void *data, const u_char *p, size_t len);
static int fuzz_list(void *data, const char *key, int64_t size);
static ngx_http_reductrai_storage_t *fuzz_create(const char *uri,
    const char *p1, const char *p2, const char *p3);
static void fuzz_check(const ngx_http_reductrai_storage_err_t *err,
    const char *secret);


#define FUZZ_SECRET     "fuzzsecretkey0123456789"
/* base64 of "fuzzazurekey0123456789" */
#define FUZZ_AZURE_KEY  "ZnV6emF6dXJla2V5MDEyMzQ1Njc4OQ=="


static pthread_mutex_t                fuzz_lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t                 *fuzz_body;
static size_t                         fuzz_len;
static int                            fuzz_status;
static int                            fuzz_port;
static ngx_http_reductrai_storage_t  *fuzz_s3, *fuzz_azure, *fuzz_gcs;


static const int  fuzz_statuses[] = {
    200, 201, 204, 206, 301, 304, 400, 401, 403, 404, 409, 412, 416, 429,
    500, 503
};


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int                 s, one;
    int                 fd;
    FILE               *f;
    char                endpoint[64], token_uri[64], cred[96], path[64];
    char               *pem, *json, *q;
    BIO                *bio;
    size_t              n;
    EVP_PKEY           *pkey;
    pthread_t           tid;
    socklen_t           len;
    struct sockaddr_in  sin;

    s = socket(AF_INET, SOCK_STREAM, 0);
    one = 1;
    (void) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    len = sizeof(sin);

    if (bind(s, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || listen(s, 16) != 0
        || getsockname(s, (struct sockaddr *) &sin, &len) != 0)
    {
        perror("fuzz server");
        abort();
    }

    fuzz_port = ntohs(sin.sin_port);

    if (pthread_create(&tid, NULL, fuzz_server, (void *) (intptr_t) s) != 0) {
        abort();
    }

    fuzz_assert(ngx_http_reductrai_storage_global_init() == 0);

    snprintf(endpoint, sizeof(endpoint), "endpoint=http://127.0.0.1:%d",
             fuzz_port);

    fuzz_s3 = fuzz_create("s3://bucket/p", endpoint, "access_key=AKIDFUZZ",
                          "secret_key=" FUZZ_SECRET);
    fuzz_azure = fuzz_create("azure://acct/cont/p", endpoint,
                             "key=" FUZZ_AZURE_KEY, NULL);

    /* a service account of our own, whose token endpoint is the server */

    pkey = EVP_RSA_gen(2048);
    bio = BIO_new(BIO_s_mem());
    fuzz_assert(pkey != NULL && bio != NULL);
    fuzz_assert(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
                == 1);

    n = BIO_get_mem_data(bio, &pem);
    json = malloc(n * 2 + 512);
    fuzz_assert(json != NULL);

    snprintf(token_uri, sizeof(token_uri), "http://127.0.0.1:%d/token",
             fuzz_port);

    q = json + sprintf(json, "{\"type\":\"service_account\",\"client_email\":"
                       "\"f@p.iam.gserviceaccount.com\",\"token_uri\":\"%s\","
                       "\"private_key\":\"", token_uri);

    for (; n > 0; n--, pem++) {
        if (*pem == '\n') {
            *q++ = '\\';
            *q++ = 'n';

        } else {
            *q++ = *pem;
        }
    }

    strcpy(q, "\"}");

    strcpy(path, "/tmp/fuzz-gcs-XXXXXX");
    fd = mkstemp(path);
    f = fdopen(fd, "w");
    fuzz_assert(f != NULL);
    fputs(json, f);
    fclose(f);

    free(json);

    /* the storage keeps the parsed key: the file is read once */

    snprintf(cred, sizeof(cred), "credentials_file=%s", path);
    fuzz_gcs = fuzz_create("gs://bucket/p", endpoint, cred, NULL);
    (void) unlink(path);
    BIO_free(bio);
    EVP_PKEY_free(pkey);

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                               fd;
    char                              path[64];
    int64_t                           n;
    ngx_http_reductrai_s3_t          *s3;
    ngx_http_reductrai_storage_t     *st;
    ngx_http_reductrai_storage_err_t  err;

    if (size < 2) {
        return 0;
    }

    pthread_mutex_lock(&fuzz_lock);
    fuzz_status = fuzz_statuses[data[1] % (sizeof(fuzz_statuses)
                                           / sizeof(fuzz_statuses[0]))];
    fuzz_body = data + 2;
    fuzz_len = size - 2;
    pthread_mutex_unlock(&fuzz_lock);

    memset(&err, 0, sizeof(err));

    switch (data[0] % 6) {

    case 0:
        (void) fuzz_s3->backend->list(fuzz_s3, "p/", fuzz_list, NULL, &err);
        fuzz_check(&err, FUZZ_SECRET);
        break;

    case 1:
    case 3:
        st = (data[0] % 6 == 1) ? fuzz_s3 : fuzz_azure;

        strcpy(path, "/tmp/fuzz-put-XXXXXX");
        fd = mkstemp(path);
        fuzz_assert(fd != -1);
        (void) unlink(path);
        fuzz_assert(write(fd, "{\"a\":1}\n", 8) == 8);

        (void) st->backend->put(st, "k/x.ndjson.zst", fd, 8, &err);
        close(fd);
        fuzz_check(&err, st == fuzz_s3 ? FUZZ_SECRET : FUZZ_AZURE_KEY);
        break;

    case 2:
        (void) fuzz_azure->backend->list(fuzz_azure, "p/", fuzz_list, NULL,
                                         &err);
        fuzz_check(&err, FUZZ_AZURE_KEY);
        break;

    case 4:
        /* the token is fetched again for each input */
        s3 = fuzz_gcs->data;
        (void) s3->bearer(s3->bearer_data, NULL, 0, NULL);

        /* its secrets (the key, each JWT) are not known here */
        (void) fuzz_gcs->backend->head(fuzz_gcs, "k", &n, &err);
        fuzz_check(&err, NULL);
        memset(&err, 0, sizeof(err));
        (void) fuzz_gcs->backend->probe(fuzz_gcs, &err);
        fuzz_check(&err, NULL);
        break;

    default:
        (void) fuzz_s3->backend->get(fuzz_s3, "k", -1024, -1, fuzz_sink, NULL,
                                     &err);
        fuzz_check(&err, FUZZ_SECRET);
        memset(&err, 0, sizeof(err));
        (void) fuzz_azure->backend->head(fuzz_azure, "k", &n, &err);
        fuzz_check(&err, FUZZ_AZURE_KEY);
        break;
    }

    return 0;
}


static ngx_http_reductrai_storage_t *
fuzz_create(const char *uri, const char *p1, const char *p2, const char *p3)
{
    char                           err[256], *params[4];
    int                            n;
    ngx_http_reductrai_storage_t  *st;

    n = 0;
    params[n++] = (char *) p1;
    params[n++] = (char *) p2;

    if (p3 != NULL) {
        params[n++] = (char *) p3;
    }

    params[n++] = (char *) "timeout=5s";

    st = ngx_http_reductrai_storage_create(uri, n, params, "/", err,
                                           sizeof(err));
    if (st == NULL || ngx_http_reductrai_storage_init(st, err, sizeof(err))
                      != 0)
    {
        fprintf(stderr, "storage %s: %s\n", uri, err);
        abort();
    }

    return st;
}


static void
fuzz_check(const ngx_http_reductrai_storage_err_t *err, const char *secret)
{
    size_t  len;

    len = strnlen(err->message, sizeof(err->message));

    fuzz_assert(len < sizeof(err->message));
    fuzz_assert(strchr(err->message, '\n') == NULL);
    fuzz_assert(secret == NULL || strstr(err->message, secret) == NULL);
}


static int
fuzz_sink(void *data, const u_char *p, size_t len)
{
    return 0;
}


static int
fuzz_list(void *data, const char *key, int64_t size)
{
    fuzz_assert(strlen(key) < 1024);
    return 0;
}


static void *
fuzz_server(void *arg)
{
    int        s, c;
    pthread_t  tid;

    s = (int) (intptr_t) arg;

    /* a thread per connection: libcurl may keep one idle and open another */

    for ( ;; ) {
        c = accept(s, NULL, NULL);
        if (c == -1) {
            continue;
        }

        if (pthread_create(&tid, NULL, fuzz_conn, (void *) (intptr_t) c)
            != 0)
        {
            close(c);
            continue;
        }

        (void) pthread_detach(tid);
    }

    return NULL;
}


static void *
fuzz_conn(void *arg)
{
    int  c;

    c = (int) (intptr_t) arg;

    fuzz_serve(c);
    close(c);

    return NULL;
}


/* answers requests on one connection until the client closes it */

static void
fuzz_serve(int c)
{
    int      one, expect;
    char     req[16384], head[256], *end, *cl, *out;
    size_t   have, want, hl, body;
    ssize_t  n;

    have = 0;
    one = 1;
    (void) setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    for ( ;; ) {
        req[have] = '\0';
        end = strstr(req, "\r\n\r\n");

        if (end == NULL) {
            if (have == sizeof(req) - 1) {
                return;
            }

            n = read(c, req + have, sizeof(req) - 1 - have);
            if (n <= 0) {
                return;
            }

            have += n;
            continue;
        }

        want = 0;
        expect = 0;

        for (cl = req; cl < end; cl++) {
            if (strncasecmp(cl, "\r\ncontent-length:", 17) == 0) {
                want = strtoul(cl + 17, NULL, 10);

            } else if (strncasecmp(cl, "\r\nexpect: 100-continue", 22) == 0)
            {
                expect = 1;
            }
        }

        hl = end + 4 - req;

        /*
         * libcurl asks before it sends a PUT body, and waits a second for
         * an answer that real stores give at once
         */

        if (expect && write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 25) {
            return;
        }

        /* the request body: read and dropped */

        while (have - hl < want) {
            if (have == sizeof(req) - 1) {
                memmove(req + hl, req + have - 1, 1);
                want -= have - hl - 1;
                have = hl + 1;
            }

            n = read(c, req + have, sizeof(req) - 1 - have);
            if (n <= 0) {
                return;
            }

            have += n;
        }

        pthread_mutex_lock(&fuzz_lock);

        body = (strncmp(req, "HEAD ", 5) != 0 && fuzz_status != 204
                && fuzz_status != 304) ? fuzz_len : 0;

        n = snprintf(head, sizeof(head), "HTTP/1.1 %d Fuzz\r\n"
                     "Content-Length: %zu\r\nContent-Type: application/xml"
                     "\r\nx-ms-request-id: 1\r\n\r\n", fuzz_status,
                     body);

        /* one write: two would wait for a delayed ACK */

        out = malloc(n + body);
        if (out == NULL) {
            pthread_mutex_unlock(&fuzz_lock);
            return;
        }

        memcpy(out, head, n);
        memcpy(out + n, fuzz_body, body);

        pthread_mutex_unlock(&fuzz_lock);

        if (write(c, out, n + body) != (ssize_t) (n + body)) {
            free(out);
            return;
        }

        free(out);

        /* the next request, if it came with this one */

        memmove(req, req + hl + want, have - hl - want);
        have -= hl + want;
    }
}
