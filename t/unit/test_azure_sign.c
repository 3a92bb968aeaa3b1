
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Azure Shared Key: the string to sign of Blob service requests, checked
 * against the canonicalized-resource examples of Microsoft's "Authorize
 * with Shared Key" page and its rules (a zero Content-Length signed as
 * empty, x-ms-* headers lowercased and sorted, query parameters decoded,
 * sorted, multiple values joined); the signature checked against RFC 4231
 * and against the openssl tool.
 */


#include "ngx_http_reductrai_http.h"
#include "unit.h"

#include <unistd.h>


/* Azurite's well-known development key */
#define DEVKEY  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4" \
                "I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

#define XMSDATE  "x-ms-date: Sun, 11 Oct 2009 21:49:13 GMT"


static void
sts(ngx_http_reductrai_buf_t *b, const char *method, const char **headers,
    size_t n, const char *path, const char *query)
{
    b->len = 0;

    ok(ngx_http_reductrai_azure_string_to_sign(b, method, headers, n,
                                               "myaccount", path, query)
       == 0, "string to sign: %s %s?%s", method, path, query);

    if (ngx_http_reductrai_buf_reserve(b, 1) == 0) {
        b->data[b->len] = '\0';
    }
}


static void
test_string_to_sign(void)
{
    ngx_http_reductrai_buf_t  b;

    const char  *plain[] = { XMSDATE, "x-ms-version: 2009-09-19" };
    const char  *put[] = { "x-ms-version: 2021-08-06",
                           "Content-Length: 11", "Content-MD5: bWQ1",
                           "Content-Type: application/zstd",
                           "X-MS-Blob-Type:   BlockBlob",
                           "If-None-Match: *", XMSDATE };
    const char  *empty[] = { XMSDATE, "Content-Length: 0",
                             "x-ms-range: bytes=0-9" };

    memset(&b, 0, sizeof(b));

    /* Microsoft's examples of canonicalized resources */

    sts(&b, "GET", plain, 2, "/mycontainer",
        "restype=container&comp=metadata");
    is_str(b.data, "GET\n\n\n\n\n\n\n\n\n\n\n\n"
           "x-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\n"
           "x-ms-version:2009-09-19\n"
           "/myaccount/mycontainer\ncomp:metadata\nrestype:container",
           "container metadata");

    sts(&b, "GET", plain, 2, "/mycontainer",
        "restype=container&comp=list&include=snapshots&include=metadata"
        "&include=uncommittedblobs");
    ok(strstr((char *) b.data, "\n/myaccount/mycontainer\ncomp:list\n"
              "include:metadata,snapshots,uncommittedblobs\n"
              "restype:container") != NULL
       && b.data[b.len - 1] == 'r', "multiple values sorted and joined");

    sts(&b, "GET", plain, 2, "/mycontainer/myblob", "");
    is_str(b.data, "GET\n\n\n\n\n\n\n\n\n\n\n\n"
           "x-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\n"
           "x-ms-version:2009-09-19\n/myaccount/mycontainer/myblob",
           "blob without a query");

    /* the twelve standard fields in order, x-ms-* sorted and trimmed */

    sts(&b, "PUT", put, 7, "/c/stream%3Dm/a.zst",
        "blockid=MDAwMDAwMDE%3D&comp=block");
    is_str(b.data, "PUT\n\n\n11\nbWQ1\napplication/zstd\n\n\n\n*\n\n\n"
           "x-ms-blob-type:BlockBlob\n"
           "x-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\n"
           "x-ms-version:2021-08-06\n"
           "/myaccount/c/stream%3Dm/a.zst\nblockid:MDAwMDAwMDE=\ncomp:block",
           "Put Block: fields, headers, decoded query");

    sts(&b, "GET", empty, 3, "/c/b", "");
    is_str(b.data, "GET\n\n\n\n\n\n\n\n\n\n\n\n"
           "x-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\n"
           "x-ms-range:bytes=0-9\n/myaccount/c/b",
           "zero Content-Length is signed empty; x-ms-range is a header");

    ngx_http_reductrai_buf_free(&b);
}


static void
test_signature(void)
{
    int      fd;
    FILE    *p;
    char     sig[64], want[64], hex[129], cmd[512];
    char     path[] = "/tmp/rdx-unit-azure-XXXXXX";
    u_char   key[64], mac[32];
    ssize_t  klen;

    static const char  text[] =
        "PUT\n\n\n11\n\napplication/zstd\n\n\n\n*\n\n\n"
        "x-ms-blob-type:BlockBlob\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\n"
        "x-ms-version:2021-08-06\n/devstoreaccount1/c/k";

    /* RFC 4231, test case 2 */
    ok(ngx_http_reductrai_http_hmac_sha256("Jefe", 4,
                                           "what do ya want for nothing?", 28,
                                           mac) == 0, "HMAC-SHA256");
    *ngx_http_reductrai_hex((u_char *) hex, mac, 32) = '\0';
    is_str(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b9"
           "64ec3843", "HMAC-SHA256 matches RFC 4231");

    klen = ngx_http_reductrai_http_base64_decode(key, DEVKEY, strlen(DEVKEY));
    is_int(klen, 64, "the account key decodes to 64 bytes");

    ok(ngx_http_reductrai_azure_signature(key, (size_t) klen, text,
                                          sizeof(text) - 1, sig, sizeof(sig))
       == 0, "sign");

    /* the same with the openssl tool, from the key's base64 */

    fd = mkstemp(path);
    if (fd == -1) {
        ok(0, "temp file");
        return;
    }

    (void) write(fd, text, sizeof(text) - 1);
    close(fd);

    *ngx_http_reductrai_hex((u_char *) hex, key, 64) = '\0';

    snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -mac HMAC -macopt "
             "hexkey:%s -binary < %s | base64", hex, path);

    want[0] = '\0';
    p = popen(cmd, "r");

    if (p != NULL) {
        if (fgets(want, sizeof(want), p) != NULL) {
            want[strcspn(want, "\n")] = '\0';
        }

        pclose(p);
    }

    unlink(path);

    ok(strlen(want) == 44, "openssl computed a signature");
    is_str(sig, want, "Shared Key signature matches openssl");

    ok(ngx_http_reductrai_azure_signature(key, (size_t) klen, text, 5, sig,
                                          10) != 0,
       "a short output buffer is refused");
}


int
main(void)
{
    test_string_to_sign();
    test_signature();

    return done_testing();
}
