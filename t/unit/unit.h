
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * A minimal TAP producer for the C unit tests of the nginx-free core.
 * t/00-unit.t runs every objs/unit/test_* binary under prove.
 */


#ifndef _NGX_HTTP_REDUCTRAI_UNIT_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_UNIT_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int  unit_n;
static int  unit_failed;


#define ok(cond, ...)                                                        \
    do {                                                                     \
        int  unit_c = (cond) ? 1 : 0;                                        \
        printf("%sok %d - ", unit_c ? "" : "not ", ++unit_n);                \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
        if (!unit_c) {                                                       \
            unit_failed++;                                                   \
            printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                    \
    } while (0)


#define is_int(got, want, ...)                                               \
    do {                                                                     \
        long long  unit_g = (long long) (got), unit_w = (long long) (want);  \
        ok(unit_g == unit_w, __VA_ARGS__);                                   \
        if (unit_g != unit_w) {                                              \
            printf("#   got %lld, want %lld\n", unit_g, unit_w);             \
        }                                                                    \
    } while (0)


#define is_mem(got, glen, want, wlen, ...)                                   \
    do {                                                                     \
        size_t  unit_gl = (glen), unit_wl = (wlen);                          \
        int     unit_eq = unit_gl == unit_wl                                 \
                          && memcmp((got), (want), unit_wl) == 0;            \
        ok(unit_eq, __VA_ARGS__);                                            \
        if (!unit_eq) {                                                      \
            printf("#   got  [%.*s]\n#   want [%.*s]\n",                     \
                   (int) unit_gl, (const char *) (got),                      \
                   (int) unit_wl, (const char *) (want));                    \
        }                                                                    \
    } while (0)


#define is_str(got, want, ...)                                               \
    is_mem(got, strlen((const char *) (got)), want,                          \
           strlen((const char *) (want)), __VA_ARGS__)


static int
done_testing(void)
{
    printf("1..%d\n", unit_n);
    return unit_failed ? 1 : 0;
}


#endif /* _NGX_HTTP_REDUCTRAI_UNIT_H_INCLUDED_ */
