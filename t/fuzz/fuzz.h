
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * What the libFuzzer targets share: the entry points and an assertion that
 * aborts, so that libFuzzer keeps the input.
 */


#ifndef _NGX_HTTP_REDUCTRAI_FUZZ_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_FUZZ_H_INCLUDED_


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>


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


#endif /* _NGX_HTTP_REDUCTRAI_FUZZ_H_INCLUDED_ */
