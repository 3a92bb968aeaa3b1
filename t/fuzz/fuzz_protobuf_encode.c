
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * libFuzzer target for the JSON-to-protobuf re-encoder (what replay runs
 * on an archived body with body_format):
 *
 *   make fuzz FUZZ_TARGETS=fuzz_protobuf_encode   (t/fuzz.mk)
 *
 * The first byte picks the body format; the rest is the JSON.  Seeds:
 * t/fuzz/corpus/fuzz_protobuf_encode/.
 *
 * Checks: no access out of bounds (the JSON is copied into a buffer of its
 * exact size); a failure leaves the output as it was and gives a reason;
 * output never passes its cap; a success decodes with the printer unless
 * the JSON carried unknown fields (their bytes may be anything the wire
 * format allows), and then printing and encoding again gives the same
 * bytes: the encoder's output is canonical.
 */


#include "ngx_http_reductrai_body_format.h"
#include "ngx_http_reductrai_protobuf_encode.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define FUZZ_MAX  (256 * 1024)


static ngx_http_reductrai_pb_t   pb;


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                                  *in;
    size_t                                   len;
    unsigned                                 format, unknown;
    const char                              *err;
    ngx_http_reductrai_buf_t                 wire, text, again;
    ngx_http_reductrai_pb_rc_e               rc;
    const ngx_http_reductrai_body_format_t  *bf;

    if (size == 0) {
        return 0;
    }

    format = 1 + data[0] % (NGX_HTTP_REDUCTRAI_FORMAT_LAST - 1);
    bf = ngx_http_reductrai_body_format(format);

    len = size - 1;
    in = malloc(len ? len : 1);
    memcpy(in, data + 1, len);

    /* "_unknown", or the old "Unknown", possibly escaped: be generous */
    unknown = (memmem(in, len, "nknown", 6) != NULL
               || memmem(in, len, "\\u", 2) != NULL);

    memset(&wire, 0, sizeof(wire));
    memset(&text, 0, sizeof(text));
    memset(&again, 0, sizeof(again));

    /* something before: it must stay */
    fuzz_assert(ngx_http_reductrai_buf_reserve(&wire, 1) == 0);
    wire.data[0] = 'x';
    wire.len = 1;
    err = NULL;

    rc = ngx_http_reductrai_pb_encode(bf->descriptor, bf->style, in, len,
                                      FUZZ_MAX, &wire, &err);

    fuzz_assert(wire.len >= 1 && wire.data[0] == 'x');
    fuzz_assert(wire.len <= FUZZ_MAX);

    if (rc != NGX_HTTP_REDUCTRAI_PB_OK) {
        fuzz_assert(wire.len == 1 && err != NULL);
        goto done;
    }

    rc = ngx_http_reductrai_pb_json(&pb, bf->descriptor, bf->style,
                                    wire.data + 1, wire.len - 1, &text);

    if (rc != NGX_HTTP_REDUCTRAI_PB_OK) {
        fuzz_assert(unknown || rc == NGX_HTTP_REDUCTRAI_PB_LIMIT);
        goto done;
    }

    rc = ngx_http_reductrai_pb_encode(bf->descriptor, bf->style, text.data,
                                      text.len, FUZZ_MAX, &again, &err);
    fuzz_assert(rc == NGX_HTTP_REDUCTRAI_PB_OK);

    if (!unknown) {
        fuzz_assert(again.len == wire.len - 1);
        fuzz_assert(again.len == 0
                    || memcmp(again.data, wire.data + 1, again.len) == 0);
    }

done:

    ngx_http_reductrai_pb_trim(&pb, 4 * 1024 * 1024);

    ngx_http_reductrai_buf_free(&wire);
    ngx_http_reductrai_buf_free(&text);
    ngx_http_reductrai_buf_free(&again);
    free(in);

    return 0;
}
