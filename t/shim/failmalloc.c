
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * LD_PRELOAD for tests: malloc() of exactly $RDX_FAIL_SIZE bytes fails
 * with ENOMEM; every other size goes to glibc's.  A test picks a size only
 * the allocation it aims at asks for (a variable's value of that length).
 *
 * realloc() to exactly $RDX_FAIL_REALLOC_SIZE bytes fails too, but only in
 * the process's main thread (nginx's event loop: the jobs of its thread
 * pools are spared).  With $RDX_FAIL_FLAG set, either fails only while
 * that file exists, so a test chooses the moment.
 */


#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>


extern void *__libc_malloc(size_t size);
extern void *__libc_realloc(void *ptr, size_t size);


static size_t  fail_size, fail_realloc_size;
static char   *fail_flag;


static int flagged(void);


__attribute__((constructor)) static void
init(void)
{
    const char  *s;

    /*
     * a copy: nginx writes its process title over its environment; made
     * before the sizes are set, so it cannot fail itself
     */
    s = getenv("RDX_FAIL_FLAG");
    fail_flag = s ? strdup(s) : NULL;

    s = getenv("RDX_FAIL_SIZE");
    fail_size = s ? strtoul(s, NULL, 10) : 0;

    s = getenv("RDX_FAIL_REALLOC_SIZE");
    fail_realloc_size = s ? strtoul(s, NULL, 10) : 0;
}


void *
malloc(size_t size)
{
    if (fail_size && size == fail_size && flagged()) {
        errno = ENOMEM;
        return NULL;
    }

    return __libc_malloc(size);
}


void *
realloc(void *ptr, size_t size)
{
    if (fail_realloc_size && size == fail_realloc_size
        && syscall(SYS_gettid) == getpid() && flagged())
    {
        errno = ENOMEM;
        return NULL;
    }

    return __libc_realloc(ptr, size);
}


static int
flagged(void)
{
    int  err, rc;

    if (fail_flag == NULL) {
        return 1;
    }

    /* the check must not leave an errno of its own */
    err = errno;
    rc = access(fail_flag, F_OK) == 0;
    errno = err;

    return rc;
}
