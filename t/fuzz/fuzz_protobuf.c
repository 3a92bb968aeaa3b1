
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * libFuzzer target for the protobuf-to-JSON printer, its bounded allocator
 * and the snappy decoder:
 *
 *   make fuzz FUZZ_TARGETS=fuzz_protobuf   (t/fuzz.mk)
 *
 * The first byte picks the body format (and whether the rest is a snappy
 * block); the rest is the body.  Seeds: t/fuzz/corpus/fuzz_protobuf/.
 *
 * Checks: no access out of bounds (the body is copied into a buffer of its
 * exact size); every success is one JSON value that jansson accepts; a
 * failure leaves the output as it was; the arena never holds more than its
 * cap allows; record_body() always ends its line with "}\n".
 */


#include "ngx_http_reductrai_record.h"
#include "ngx_http_reductrai_body_format.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>


static ngx_http_reductrai_pb_t              pb;
static ngx_http_reductrai_record_encoder_t  enc;


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                         *in;
    size_t                          len, rsize;
    json_t                         *j;
    unsigned                        format;
    ngx_http_reductrai_buf_t        out, line;
    ngx_http_reductrai_pb_rc_e      rc;
    ngx_http_reductrai_encoding_e   coding;

    if (size == 0) {
        return 0;
    }

    format = 1 + data[0] % (NGX_HTTP_REDUCTRAI_FORMAT_LAST - 1);
    coding = (data[0] & 0x80) ? NGX_HTTP_REDUCTRAI_ENC_SNAPPY
                              : NGX_HTTP_REDUCTRAI_ENC_IDENTITY;

    len = size - 1;
    in = malloc(len ? len : 1);
    memcpy(in, data + 1, len);

    memset(&out, 0, sizeof(out));

    if (coding == NGX_HTTP_REDUCTRAI_ENC_IDENTITY) {
        rc = ngx_http_reductrai_body_format_json(&pb, format, in, len, &out);

        fuzz_assert(pb.used <= pb.limit);

        if (rc == NGX_HTTP_REDUCTRAI_PB_OK) {
            fuzz_assert(out.len >= 2 && out.data[0] == '{'
                        && out.data[out.len - 1] == '}');
            fuzz_assert(memchr(out.data, '\n', out.len) == NULL);

            j = json_loadb((char *) out.data, out.len, JSON_DECODE_ANY,
                           NULL);
            fuzz_assert(j != NULL);
            json_decref(j);

        } else {
            fuzz_assert(out.len == 0);
        }
    }

    memset(&line, 0, sizeof(line));

    fuzz_assert(ngx_http_reductrai_record_body(&enc, coding, format, in, len,
                                               1024 * 1024, fuzz_buf_sink,
                                               &line, &rsize)
                == 0);
    fuzz_assert(line.len >= 2 && line.data[line.len - 2] == '}'
                && line.data[line.len - 1] == '\n');

    ngx_http_reductrai_record_encoder_trim(&enc, 4 * 1024 * 1024);
    ngx_http_reductrai_pb_trim(&pb, 4 * 1024 * 1024);

    ngx_http_reductrai_buf_free(&out);
    ngx_http_reductrai_buf_free(&line);
    free(in);

    return 0;
}
