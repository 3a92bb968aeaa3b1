
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * AWS Signature Version 4: the worked examples of the Amazon S3 API
 * reference ("Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk"; access key AKIAIOSFODNN7EXAMPLE,
 * 20130524, us-east-1), signed twice: by libcurl through the module's
 * request plumbing (requests caught by a one-shot local server), and by
 * our own signer, used when libcurl 7.88 would order the headers wrong.
 * Also the helpers around them: payload digests, URI encoding, error
 * reasons, secret scrubbing, base64.
 */


#include "ngx_http_reductrai_http.h"
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>


#define AK     "AKIAIOSFODNN7EXAMPLE"
#define SK     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST   "examplebucket.s3.amazonaws.com"
#define DATE   "20130524T000000Z"
#define EMPTY  NGX_HTTP_REDUCTRAI_EMPTY_SHA256
#define BODY   "Welcome to Amazon S3."
#define BODY_SHA                                                             \
    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"

#define SIG_GET        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd9"  \
                       "1039c6036bdb41"
#define SIG_PUT        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5"  \
                       "971af0ece108bd"
#define SIG_LIFECYCLE  "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a"  \
                       "200a0136783543"
#define SIG_LIST       "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670e"  \
                       "d5711ef69dc6f7"


typedef struct {
    int     fd;
    int     n;
    char    req[8][8192];
} server_t;


static void *
serve(void *data)
{
    server_t *s = data;

    int      c, i;
    char    *buf, *end, *cl;
    size_t   len, want;
    ssize_t  r;

    for (i = 0; i < s->n; i++) {
        c = accept(s->fd, NULL, NULL);
        if (c == -1) {
            return NULL;
        }

        buf = s->req[i];
        len = 0;
        end = NULL;

        while (end == NULL && len < sizeof(s->req[i]) - 1) {
            r = read(c, buf + len, sizeof(s->req[i]) - 1 - len);
            if (r <= 0) {
                break;
            }

            len += (size_t) r;
            buf[len] = '\0';
            end = strstr(buf, "\r\n\r\n");
        }

        want = 0;
        cl = strcasestr(buf, "\ncontent-length:");

        if (cl != NULL) {
            want = (size_t) strtoul(cl + 16, NULL, 10);
        }

        if (end != NULL && strcasestr(buf, "\nexpect: 100-continue")) {
            (void) write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        }

        while (end != NULL
               && len - (size_t) (end + 4 - buf) < want
               && len < sizeof(s->req[i]) - 1)
        {
            r = read(c, buf + len, sizeof(s->req[i]) - 1 - len);
            if (r <= 0) {
                break;
            }

            len += (size_t) r;
            buf[len] = '\0';
        }

        (void) write(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n", 56);
        close(c);
    }

    return NULL;
}


static int
listen_local(int *port)
{
    int                 fd, one;
    socklen_t           len;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    one = 1;
    (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        || listen(fd, 8) == -1)
    {
        return -1;
    }

    len = sizeof(sin);
    (void) getsockname(fd, (struct sockaddr *) &sin, &len);
    *port = ntohs(sin.sin_port);

    return fd;
}


/* the value of "Signature=" in a captured request */

static void
signature_of(const char *req, char *sig, size_t size)
{
    const char  *p;
    size_t       n;

    sig[0] = '\0';

    p = strstr(req, "Signature=");
    if (p == NULL) {
        return;
    }

    p += 10;
    n = strspn(p, "0123456789abcdef");

    if (n < size) {
        memcpy(sig, p, n);
        sig[n] = '\0';
    }
}


static void
curl_request(ngx_http_reductrai_storage_conf_t *conf, int port,
    const char *method, const char *url, const char **headers,
    const char *body)
{
    char                              connect_to[128];
    struct curl_slist                *ct;
    ngx_http_reductrai_http_t        *h;
    ngx_http_reductrai_storage_err_t  err;

    h = ngx_http_reductrai_http_begin(conf, method, url, &err);
    if (h == NULL) {
        ok(0, "http_begin: %s", err.message);
        return;
    }

    while (*headers) {
        (void) ngx_http_reductrai_http_header(h, "%s", *headers++);
    }

    if (body != NULL) {
        ngx_http_reductrai_http_body_mem(h, (u_char *) body, strlen(body));
    }

    snprintf(connect_to, sizeof(connect_to), HOST ":80:127.0.0.1:%d", port);
    ct = curl_slist_append(NULL, connect_to);

    (void) curl_easy_setopt(h->curl, CURLOPT_CONNECT_TO, ct);
    (void) curl_easy_setopt(h->curl, CURLOPT_PROXY, "");
    (void) curl_easy_setopt(h->curl, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    (void) curl_easy_setopt(h->curl, CURLOPT_USERNAME, AK);
    (void) curl_easy_setopt(h->curl, CURLOPT_PASSWORD, SK);

    ok(ngx_http_reductrai_http_perform(h, &err)
       == NGX_HTTP_REDUCTRAI_STORAGE_OK, "%s %s: %s", method, url,
       err.message);

    curl_slist_free_all(ct);
}


static void
test_libcurl_examples(void)
{
    int                                port = 0;
    char                               sig[80];
    server_t                           srv;
    pthread_t                          tid;
    ngx_http_reductrai_storage_conf_t  conf;

    const char  *get[] = { "Range: bytes=0-9",
                           "x-amz-content-sha256: " EMPTY,
                           "x-amz-date: " DATE, NULL };
    const char  *put[] = { "Date: Fri, 24 May 2013 00:00:00 GMT",
                           "x-amz-storage-class: REDUCED_REDUNDANCY",
                           "x-amz-content-sha256: " BODY_SHA,
                           "x-amz-date: " DATE, NULL };
    const char  *bucket[] = { "x-amz-content-sha256: " EMPTY,
                              "x-amz-date: " DATE, NULL };

    memset(&conf, 0, sizeof(conf));
    conf.tls_verify = 1;
    conf.connect_timeout = 5000;
    conf.timeout = 10000;

    memset(&srv, 0, sizeof(srv));
    srv.n = 4;
    srv.fd = listen_local(&port);

    ok(srv.fd != -1, "local server listens");
    if (srv.fd == -1) {
        return;
    }

    pthread_create(&tid, NULL, serve, &srv);

    curl_request(&conf, port, "GET", "http://" HOST "/test.txt", get, NULL);
    curl_request(&conf, port, "PUT", "http://" HOST "/test%24file.text", put,
                 BODY);

    /* libcurl 7.88 signs the query as given: sorted, '=' on each */
    curl_request(&conf, port, "GET", "http://" HOST "/?lifecycle=", bucket,
                 NULL);
    curl_request(&conf, port, "GET", "http://" HOST "/?max-keys=2&prefix=J",
                 bucket, NULL);

    pthread_join(tid, NULL);
    close(srv.fd);

    signature_of(srv.req[0], sig, sizeof(sig));
    is_str(sig, SIG_GET, "libcurl: GET Object example signature");
    ok(strstr(srv.req[0], "SignedHeaders=host;range;x-amz-content-sha256;"
              "x-amz-date") != NULL, "libcurl: GET Object signed headers");

    signature_of(srv.req[1], sig, sizeof(sig));
    is_str(sig, SIG_PUT, "libcurl: PUT Object example signature");
    ok(strstr(srv.req[1], "\r\n\r\n" BODY) != NULL, "libcurl: body sent");

    signature_of(srv.req[2], sig, sizeof(sig));
    is_str(sig, SIG_LIFECYCLE, "libcurl: GET Bucket Lifecycle example");

    signature_of(srv.req[3], sig, sizeof(sig));
    is_str(sig, SIG_LIST, "libcurl: GET Bucket (List Objects) example");

    ok(strstr(srv.req[3], "Credential=" AK "/20130524/us-east-1/s3/"
              "aws4_request") != NULL, "libcurl: credential scope");
}


static void
sign(const char *method, const char *path, const char *query,
    const char **headers, size_t n, const char *payload, char *auth,
    ngx_http_reductrai_buf_t *canonical)
{
    ngx_http_reductrai_sigv4_t  in;

    memset(&in, 0, sizeof(in));
    in.method = method;
    in.path = path;
    in.query = query;
    in.headers = headers;
    in.nheaders = n;
    in.payload_hash = payload;
    in.access_key = AK;
    in.secret_key = SK;
    in.region = "us-east-1";
    in.service = "s3";
    in.timestamp = DATE;
    in.canonical = canonical;

    ok(ngx_http_reductrai_sigv4_sign(&in, auth, 512) == 0, "sign %s %s",
       method, path);
}


static void
test_own_signer(void)
{
    char                      auth[512], sig[80], hash[65];
    ngx_http_reductrai_buf_t  canonical;

    const char  *get[] = { "Host: " HOST, "Range: bytes=0-9",
                           "x-amz-content-sha256: " EMPTY,
                           "x-amz-date: " DATE };
    const char  *put[] = { "Host: " HOST,
                           "Date: Fri, 24 May 2013 00:00:00 GMT",
                           "x-amz-storage-class: REDUCED_REDUNDANCY",
                           "x-amz-content-sha256: " BODY_SHA,
                           "x-amz-date: " DATE };
    const char  *bucket[] = { "Host: " HOST, "x-amz-content-sha256: " EMPTY,
                              "x-amz-date: " DATE };
    const char  *kms[] = { "Host: h",
                           "x-amz-server-side-encryption-aws-kms-key-id: k",
                           "x-amz-server-side-encryption: aws:kms",
                           "x-amz-date: " DATE };

    memset(&canonical, 0, sizeof(canonical));

    sign("GET", "/test.txt", "", get, 4, EMPTY, auth, NULL);
    signature_of(auth, sig, sizeof(sig));
    is_str(sig, SIG_GET, "own signer: GET Object example");
    ok(strncmp(auth, "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/"
               "s3/aws4_request, SignedHeaders=host;range;"
               "x-amz-content-sha256;x-amz-date, Signature=", 129) == 0,
       "own signer: Authorization layout");

    sign("PUT", "/test%24file.text", "", put, 5, BODY_SHA, auth, &canonical);
    signature_of(auth, sig, sizeof(sig));
    is_str(sig, SIG_PUT, "own signer: PUT Object example");

    /* the canonical request's hash, as published in the example */
    ngx_http_reductrai_http_sha256_hex(canonical.data, canonical.len, hash);
    is_str(hash, "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b415"
           "8342019d", "own signer: PUT canonical request hash");

    sign("GET", "/", "lifecycle=", bucket, 3, EMPTY, auth, NULL);
    signature_of(auth, sig, sizeof(sig));
    is_str(sig, SIG_LIFECYCLE, "own signer: GET Bucket Lifecycle example");

    sign("GET", "/", "max-keys=2&prefix=J", bucket, 3, EMPTY, auth, NULL);
    signature_of(auth, sig, sizeof(sig));
    is_str(sig, SIG_LIST, "own signer: GET Bucket (List Objects) example");

    /* a name sorts before its longer extensions, whatever the values */
    sign("PUT", "/k", "", kms, 4, EMPTY, auth, &canonical);
    ok(strstr((char *) canonical.data,
              "x-amz-server-side-encryption:aws:kms\n"
              "x-amz-server-side-encryption-aws-kms-key-id:k\n") != NULL,
       "own signer: SSE headers in SigV4 order");
    ok(strstr(auth, "SignedHeaders=host;x-amz-date;"
              "x-amz-server-side-encryption;"
              "x-amz-server-side-encryption-aws-kms-key-id,") != NULL,
       "own signer: SSE signed headers in order");

    /* values trimmed, inner runs of blanks collapsed */
    {
        const char  *blanks[] = { "Host:   " HOST "  ",
                                  "My-Header:  a   b  c ",
                                  "x-amz-date: " DATE };

        sign("GET", "/", "", blanks, 3, EMPTY, auth, &canonical);
        ok(strstr((char *) canonical.data, "\nmy-header:a b c\n") != NULL,
           "own signer: header values canonicalized");
    }

    ngx_http_reductrai_buf_free(&canonical);
}


static void
test_curl_order(void)
{
    const char  *plain[] = { "x-amz-content-sha256: " EMPTY,
                             "Content-MD5: abc", "Content-Type: x",
                             "x-amz-security-token: t",
                             "x-amz-storage-class: STANDARD",
                             "If-None-Match: *", "host: h",
                             "x-amz-date: 0" };
    const char  *sse[] = { "x-amz-content-sha256: " EMPTY,
                           "x-amz-server-side-encryption: AES256",
                           "host: h", "x-amz-date: 0" };
    const char  *kms[] = { "x-amz-content-sha256: " EMPTY,
                           "x-amz-server-side-encryption: aws:kms",
                           "x-amz-server-side-encryption-aws-kms-key-id: k",
                           "host: h", "x-amz-date: 0" };

    is_int(ngx_http_reductrai_sigv4_curl_order_ok(plain, 8), 1,
           "libcurl orders the usual headers right");
    is_int(ngx_http_reductrai_sigv4_curl_order_ok(sse, 4), 1,
           "libcurl orders SSE-S3 right");
    is_int(ngx_http_reductrai_sigv4_curl_order_ok(kms, 5), 0,
           "libcurl would order SSE-KMS with a key id wrong");
}


static void
test_payload_digests(void)
{
    int    fd;
    char   path[] = "/tmp/rdx-unit-sigv4-XXXXXX", sha[65], md5[25];
    char   md5_only[25];
    char   want[64], cmd[256];
    FILE  *p;

    fd = mkstemp(path);
    ok(fd != -1, "temp file");
    if (fd == -1) {
        return;
    }

    (void) write(fd, "xx" BODY "yy", sizeof(BODY) + 3);

    /* a range of the spool file, as a part of a multipart upload */
    ok(ngx_http_reductrai_http_hash_fd(fd, 2, sizeof(BODY) - 1, sha, md5,
                                       NULL)
       == 0, "hash a file range");
    is_str(sha, BODY_SHA, "x-amz-content-sha256 of the PUT example body");

    /* Content-MD5, computed independently by the openssl tool */
    snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | openssl dgst -md5 "
             "-binary | base64", BODY);
    p = popen(cmd, "r");
    want[0] = '\0';

    if (p != NULL) {
        if (fgets(want, sizeof(want), p) != NULL) {
            want[strcspn(want, "\n")] = '\0';
        }

        pclose(p);
    }

    is_str(md5, want, "Content-MD5 matches openssl");

    /* a store that takes no SHA-256 (Azure): the MD5 alone */
    ok(ngx_http_reductrai_http_hash_fd(fd, 2, sizeof(BODY) - 1, NULL,
                                       md5_only, NULL)
       == 0, "hash a file range without the SHA-256");
    is_str(md5_only, want, "... the same Content-MD5");

    ok(ngx_http_reductrai_http_hash_fd(fd, 0, 0, sha, md5, NULL) == 0
       && strcmp(sha, EMPTY) == 0, "hash of no bytes");

    ok(ngx_http_reductrai_http_hash_fd(fd, 10, 1000, sha, md5, NULL) != 0,
       "a range past the end fails");

    close(fd);
    unlink(path);
}


static void
test_uri_encode(void)
{
    char  buf[128];

    ngx_http_reductrai_http_uri_encode(buf, sizeof(buf), "test$file.text", 1);
    is_str(buf, "test%24file.text", "uri_encode: $");

    ngx_http_reductrai_http_uri_encode(buf, sizeof(buf),
                                       "p/stream=m/dt=2026-01-02/A.zst", 1);
    is_str(buf, "p/stream%3Dm/dt%3D2026-01-02/A.zst",
           "uri_encode: key keeps '/', encodes '='");

    ngx_http_reductrai_http_uri_encode(buf, sizeof(buf), "a/b c~_.-+", 0);
    is_str(buf, "a%2Fb%20c~_.-%2B", "uri_encode: query value");

    ngx_http_reductrai_http_uri_encode(buf, sizeof(buf), "\xc3\xa9", 0);
    is_str(buf, "%C3%A9", "uri_encode: UTF-8, upper-case hex");

    is_int(ngx_http_reductrai_http_uri_encode(buf, 4, "abcd", 0), 0,
           "uri_encode: too small");
}


static void
test_reasons(void)
{
    char  buf[256], msg[256];

    static const char  s3[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
        "<Code>SignatureDoesNotMatch</Code><Message>The request signature "
        "we calculated does not match the signature you provided. Check "
        "your key and signing method.</Message><AWSAccessKeyId>AKIA"
        "</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n...</StringToSign>"
        "</Error>";
    static const char  azure[] =
        "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>"
        "AuthenticationFailed</Code><Message>Server failed to authenticate "
        "the request &amp; more.\nRequestId:1\nTime:2</Message>"
        "<AuthenticationErrorDetail>The MAC signature found</Authentication"
        "ErrorDetail></Error>";

    ngx_http_reductrai_http_xml_reason(s3, sizeof(s3) - 1, buf, sizeof(buf));
    is_str(buf, "SignatureDoesNotMatch: The request signature we calculated "
           "does not match the signature you provided. Check your key and "
           "signing method.", "S3 error reason: code and message only");

    ngx_http_reductrai_http_xml_reason(azure, sizeof(azure) - 1, buf,
                                       sizeof(buf));
    is_str(buf, "AuthenticationFailed: Server failed to authenticate the "
           "request & more.", "Azure error reason: one line, unescaped");

    is_int(ngx_http_reductrai_http_xml_reason("<html>", 6, buf, sizeof(buf)), 0,
           "no reason in a non-XML body");

    snprintf(msg, sizeof(msg), "bad key " SK " and again " SK ".");
    ngx_http_reductrai_http_scrub(msg, SK);
    is_str(msg, "bad key *** and again ***.", "scrub removes secrets");

    snprintf(msg, sizeof(msg), "abc");
    ngx_http_reductrai_http_scrub(msg, NULL);
    is_str(msg, "abc", "scrub without a secret");
}


static void
test_base64(void)
{
    u_char   bin[64];
    char     out[64];
    ssize_t  n;

    ngx_http_reductrai_http_base64(out, (u_char *) "00000001", 8, 0);
    is_str(out, "MDAwMDAwMDE=", "base64 with padding");

    ngx_http_reductrai_http_base64(out, (u_char *) "\xfb\xff", 2, 1);
    is_str(out, "-_8", "base64url without padding");

    n = ngx_http_reductrai_http_base64_decode(bin, "SGVsbG8sIHdvcmxk", 16);
    is_mem(bin, (size_t) (n < 0 ? 0 : n), "Hello, world", 12,
           "base64 decode");

    n = ngx_http_reductrai_http_base64_decode(bin, "-_8", 3);
    is_mem(bin, (size_t) (n < 0 ? 0 : n), "\xfb\xff", 2,
           "base64url decode");

    is_int(ngx_http_reductrai_http_base64_decode(bin, "a*b", 3), -1,
           "base64 decode rejects junk");
}


static void
test_window(void)
{
    int64_t                      from, to;
    ngx_http_reductrai_window_t  w;

    memset(&w, 0, sizeof(w));
    w.start = 100;
    w.end = 200;
    w.done = 40;

    ok(ngx_http_reductrai_http_window_next(&w, &from, &to) == 1
       && from == 140 && to == 199, "window: the rest of a short answer");

    w.done = 100;
    is_int(ngx_http_reductrai_http_window_next(&w, &from, &to), 0,
           "window: complete");

    w.done = 0;
    w.empty = 1;
    is_int(ngx_http_reductrai_http_window_next(&w, &from, &to), 0,
           "window: 416 means nothing to fetch");
}


int
main(void)
{
    if (ngx_http_reductrai_storage_global_init() != 0) {
        printf("Bail out! curl_global_init() failed\n");
        return 1;
    }

    /* as a storage does: the handles are freed with the last user */
    ngx_http_reductrai_http_use(1);

    test_own_signer();
    test_libcurl_examples();
    test_curl_order();
    test_payload_digests();
    test_uri_encode();
    test_reasons();
    test_base64();
    test_window();

    ngx_http_reductrai_http_use(-1);

    return done_testing();
}
