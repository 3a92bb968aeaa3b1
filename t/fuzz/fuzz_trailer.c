
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * libFuzzer target for the trailer parser (the JSON index in a zstd
 * skippable frame at the end of every archive object, fetched with one
 * ranged GET from storage the module does not control).
 *
 * The input is an object's last bytes.  Checks: no access out of bounds;
 * a parsed trailer's frame fits in the input; what parses builds back into
 * a trailer that parses to the same values.
 */


#include "ngx_http_reductrai_segment.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                        *in, buf[NGX_HTTP_REDUCTRAI_TRAILER_MAX];
    size_t                         n, m;
    ngx_http_reductrai_trailer_t   t, again;

    in = malloc(size ? size : 1);
    if (in == NULL) {
        return 0;
    }

    memcpy(in, data, size);

    n = ngx_http_reductrai_trailer_parse(in, size, &t);
    fuzz_assert(n <= size);

    if (n != 0) {
        m = ngx_http_reductrai_trailer_build(buf, sizeof(buf), &t);

        if (m != 0) {
            fuzz_assert(m <= sizeof(buf));
            fuzz_assert(ngx_http_reductrai_trailer_parse(buf, m, &again)
                        == m);
            fuzz_assert(again.count == t.count);
            fuzz_assert(again.raw_bytes == t.raw_bytes);
            fuzz_assert(t.first_ms < 0 || again.first_ms == t.first_ms);
            fuzz_assert(t.last_ms < 0 || again.last_ms == t.last_ms);
        }
    }

    free(in);

    return 0;
}
