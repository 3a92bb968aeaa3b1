
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * libFuzzer target for the JSON minifier and the string escaper:
 *
 *   make fuzz FUZZ_TARGETS=fuzz_json   (t/fuzz.mk)
 *
 * Checks: no access out of bounds (inputs are copied into buffers of their
 * exact size); what validates minifies to a fixed point that validates
 * again; in place gives the same answer; whatever jansson accepts (within
 * our depth limit) we accept; escaped bytes always form a valid string.
 */


#include "ngx_http_reductrai_json.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>


static size_t fuzz_depth(const u_char *p, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char        *in, *out, *again, *place, *esc;
    size_t         elen;
    ssize_t        n, m, k;
    json_t        *j;
    json_error_t   err;

    in = malloc(size ? size : 1);
    out = malloc(size ? size : 1);
    place = malloc(size ? size : 1);
    memcpy(in, data, size);
    memcpy(place, data, size);

    n = ngx_http_reductrai_json_minify(out, in, size);
    k = ngx_http_reductrai_json_minify(place, place, size);

    fuzz_assert(memcmp(in, data, size) == 0);
    fuzz_assert(n == k);

    if (n >= 0) {
        fuzz_assert((size_t) n <= size && n > 0);
        fuzz_assert(memcmp(place, out, n) == 0);

        again = malloc(n);
        memcpy(again, out, n);

        m = ngx_http_reductrai_json_minify(again, out, n);
        fuzz_assert(m == n);
        fuzz_assert(memcmp(again, out, n) == 0);

        free(again);

        /* nothing but whitespace was dropped */

        if ((size_t) n == size) {
            fuzz_assert(memcmp(out, data, size) == 0);
        }

    } else if (memchr(data, '\0', size) == NULL) {
        /*
         * jansson is stricter (big numbers, \u escapes), never looser,
         * except that it takes a NUL byte for the end of its input
         */

        j = json_loadb((const char *) data, size,
                       JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);

        if (j != NULL) {
            json_decref(j);
            fuzz_assert(fuzz_depth(data, size)
                        > NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH);
        }
    }

    /* "<escaped>" is a JSON string, and escape_len() is exact */

    elen = ngx_http_reductrai_json_escape_len(in, size);
    esc = malloc(elen + 2);

    esc[0] = '"';
    fuzz_assert(ngx_http_reductrai_json_escape(esc + 1, in, size)
                == esc + 1 + elen);
    esc[elen + 1] = '"';

    fuzz_assert(ngx_http_reductrai_json_minify(esc, esc, elen + 2)
                == (ssize_t) elen + 2);

    free(esc);
    free(in);
    free(out);
    free(place);

    return 0;
}


/* nesting depth of text that jansson accepted (so strings are well formed) */

static size_t
fuzz_depth(const u_char *p, size_t len)
{
    int     str;
    size_t  i, depth, max;

    str = 0;
    depth = 0;
    max = 0;

    for (i = 0; i < len; i++) {
        if (str) {
            if (p[i] == '\\') {
                i++;

            } else if (p[i] == '"') {
                str = 0;
            }

            continue;
        }

        switch (p[i]) {

        case '"':
            str = 1;
            break;

        case '[':
        case '{':
            if (++depth > max) {
                max = depth;
            }
            break;

        case ']':
        case '}':
            depth--;
            break;
        }
    }

    return max;
}
