
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * What the libFuzzer targets share: the entry points, an assertion that
 * aborts, so that libFuzzer keeps the input, and a sink that collects what
 * the record encoder writes.
 */


#ifndef _NGX_HTTP_REDUCTRAI_FUZZ_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_FUZZ_H_INCLUDED_


#include "ngx_http_reductrai_core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "assertion failed at %s:%d: %s\n",              \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)


/* an ngx_http_reductrai_sink_pt appending to the buf_t in data */
static inline int
fuzz_buf_sink(void *data, const u_char *p, size_t len)
{
    ngx_http_reductrai_buf_t  *b;

    b = data;

    if (ngx_http_reductrai_buf_reserve(b, len) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, p, len);
    b->len += len;

    return 0;
}


#endif /* _NGX_HTTP_REDUCTRAI_FUZZ_H_INCLUDED_ */
