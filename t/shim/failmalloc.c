
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * LD_PRELOAD for tests: malloc() of exactly $RDX_FAIL_SIZE bytes fails
 * with ENOMEM; every other size goes to glibc's.  A test picks a size only
 * the allocation it aims at asks for (a variable's value of that length).
 */


#include <errno.h>
#include <stdlib.h>


extern void *__libc_malloc(size_t size);


static size_t  fail_size;


__attribute__((constructor)) static void
init(void)
{
    const char  *s;

    s = getenv("RDX_FAIL_SIZE");
    fail_size = s ? strtoul(s, NULL, 10) : 0;
}


void *
malloc(size_t size)
{
    if (fail_size && size == fail_size) {
        errno = ENOMEM;
        return NULL;
    }

    return __libc_malloc(size);
}
