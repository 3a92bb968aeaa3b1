
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * LD_PRELOAD for tests: the $RDX_READDIR_FAIL-th call of readdir() in the
 * process, and every one after it, fails with EIO, as a directory on a
 * failing disk or a stale NFS handle would.
 */


#define _GNU_SOURCE

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>


static long  calls, fail_at;


static struct dirent *(*real_readdir)(DIR *dir);


__attribute__((constructor)) static void
init(void)
{
    const char  *s;

    s = getenv("RDX_READDIR_FAIL");
    fail_at = s ? strtol(s, NULL, 10) : 0;
    real_readdir = (struct dirent *(*)(DIR *)) dlsym(RTLD_NEXT, "readdir");
}


struct dirent *
readdir(DIR *dir)
{
    if (fail_at && ++calls >= fail_at) {
        errno = EIO;
        return NULL;
    }

    return real_readdir(dir);
}
