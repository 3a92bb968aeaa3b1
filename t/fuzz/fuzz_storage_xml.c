
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * libFuzzer target for what the storage backends read in answers: the XML
 * of S3 and Azure error bodies (<Code>, <Message>) and of listing pages
 * (entries, sizes, the next page's marker, through each backend's own
 * next() as the listing loop calls it).  Backends are made with
 * storage_create(), which does no I/O.
 *
 * The first byte picks the backend; the rest is the body, in a buffer of
 * its exact size with no NUL after it.  Checks: no access out of bounds;
 * every string handed on is NUL-terminated within its buffer; a marker is
 * either empty or a printable line.
 */


#include "ngx_http_reductrai_http.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void fuzz_page(ngx_http_reductrai_storage_t *st, const char *page,
    size_t len);


static ngx_http_reductrai_storage_t  *fuzz_backends[3];


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char  err[256];
    int   i;

    static char  *s3[] = { "endpoint=https://s3.example", "region=eu-west-1",
                           "access_key=AKIDFUZZ", "secret_key=fuzz" };
    static char  *az[] = { "key=ZnV6eg==" };
    static char  *gs[] = { "endpoint=https://gcs.example",
                           "access_key=GOOGFUZZ", "secret_key=fuzz" };

    fuzz_backends[0] = ngx_http_reductrai_storage_create("s3://bucket/p", 4,
                                                         s3, "/", err,
                                                         sizeof(err));
    fuzz_backends[1] = ngx_http_reductrai_storage_create(
                                                    "azure://acct/cont/p", 1,
                                                    az, "/", err, sizeof(err));
    fuzz_backends[2] = ngx_http_reductrai_storage_create("gs://bucket/p", 3,
                                                         gs, "/", err,
                                                         sizeof(err));

    for (i = 0; i < 3; i++) {
        if (fuzz_backends[i] == NULL || fuzz_backends[i]->http == NULL) {
            fprintf(stderr, "storage_create %d: %s\n", i, err);
            abort();
        }
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    *page, buf[256], code[64];
    size_t   len, n;

    if (size == 0) {
        return 0;
    }

    len = size - 1;

    page = malloc(len ? len : 1);
    if (page == NULL) {
        return 0;
    }

    memcpy(page, data + 1, len);

    /* error answers, as every backend logs them */

    n = ngx_http_reductrai_http_xml_reason(page, len, buf, sizeof(buf));
    fuzz_assert(n < sizeof(buf) && strlen(buf) == n);

    (void) ngx_http_reductrai_http_xml_text(page, page + len, "Code", code,
                                            sizeof(code));
    fuzz_assert(strlen(code) < sizeof(code));

    fuzz_page(fuzz_backends[data[0] % 3], page, len);

    free(page);

    return 0;
}


static void
fuzz_page(ngx_http_reductrai_storage_t *st, const char *page, size_t len)
{
    char                              key[1024], num[32], marker[6200];
    ssize_t                           n;
    const char                       *pos, *end, *t, *te;
    ngx_http_reductrai_storage_err_t  err;

    const ngx_http_reductrai_http_store_t  *store = st->http;

    pos = page;
    end = page + len;

    while (ngx_http_reductrai_http_xml_next(&pos, end, store->item, &t, &te)
           == 0)
    {
        fuzz_assert(t >= page && te <= end && t <= te && pos <= end);

        n = ngx_http_reductrai_http_xml_text(t, te, store->name, key,
                                             sizeof(key));
        fuzz_assert(strlen(key) < sizeof(key));
        fuzz_assert(n <= te - t);

        (void) ngx_http_reductrai_http_xml_text(t, te, store->size, num,
                                                sizeof(num));
        fuzz_assert(strlen(num) < sizeof(num));
    }

    memset(&err, 0, sizeof(err));
    marker[0] = '\0';

    if (store->next(page, len, marker, sizeof(marker), &err)
        == NGX_HTTP_REDUCTRAI_STORAGE_OK)
    {
        fuzz_assert(strlen(marker) < sizeof(marker));
    }

    fuzz_assert(strlen(err.message) < sizeof(err.message));
}
