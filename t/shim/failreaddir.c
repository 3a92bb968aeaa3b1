
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * LD_PRELOAD for tests: readdir() fails with EIO, as a directory on a
 * failing disk or a stale NFS handle would.  Two ways to aim it:
 *
 *   RDX_READDIR_FAIL=N          the Nth call in the process, and every one
 *                               after it, fails (a short-lived CLI);
 *   RDX_READDIR_FAIL_PATH=DIR   only a stream of that directory fails, and
 *   RDX_READDIR_FAIL_FLAG=FILE  only while FILE exists, so a test chooses
 *                               the moment in a long-lived nginx, whatever
 *                               its forks and its threads have read before;
 *   RDX_READDIR_FAIL_AFTER=K    with the two above: each stream returns K
 *                               entries first ("." and ".." included), so
 *                               the listing breaks off part way.
 */


#define _GNU_SOURCE

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>


static long   calls, fail_at, fail_after;
static char  *fail_path, *fail_flag;

/* the stream being counted in this thread, and its entries so far */
static __thread DIR   *counted;
static __thread long   entries;


static struct dirent *(*real_readdir)(DIR *dir);
static struct dirent64 *(*real_readdir64)(DIR *dir);
static int (*real_closedir)(DIR *dir);


static int fail_now(DIR *dir);
static int fail_this(DIR *dir);


__attribute__((constructor)) static void
init(void)
{
    const char  *s;

    s = getenv("RDX_READDIR_FAIL");
    fail_at = s ? strtol(s, NULL, 10) : 0;

    s = getenv("RDX_READDIR_FAIL_AFTER");
    fail_after = s ? strtol(s, NULL, 10) : 0;

    /*
     * copies: nginx writes its process title over the environment it was
     * started with
     */
    s = getenv("RDX_READDIR_FAIL_PATH");
    fail_path = s ? strdup(s) : NULL;
    s = getenv("RDX_READDIR_FAIL_FLAG");
    fail_flag = s ? strdup(s) : NULL;

    real_readdir = (struct dirent *(*)(DIR *)) dlsym(RTLD_NEXT, "readdir");
    real_readdir64 = (struct dirent64 *(*)(DIR *)) dlsym(RTLD_NEXT,
                                                         "readdir64");
    real_closedir = (int (*)(DIR *)) dlsym(RTLD_NEXT, "closedir");
}


/* nginx's objects are built with 64-bit offsets: they call readdir64() */

struct dirent *
readdir(DIR *dir)
{
    if (fail_now(dir)) {
        errno = EIO;
        return NULL;
    }

    return real_readdir(dir);
}


struct dirent64 *
readdir64(DIR *dir)
{
    if (fail_now(dir)) {
        errno = EIO;
        return NULL;
    }

    return real_readdir64(dir);
}


static int
fail_now(DIR *dir)
{
    int  err, fail;

    if (fail_at && ++calls >= fail_at) {
        return 1;
    }

    if (fail_path == NULL) {
        return 0;
    }

    /* the checks must not leave an errno the end of a listing shows */
    err = errno;
    fail = fail_this(dir);
    errno = err;

    return fail;
}


/* a stream freed may come back at the same address: its count starts anew */

int
closedir(DIR *dir)
{
    if (dir == counted) {
        counted = NULL;
    }

    return real_closedir(dir);
}


static int
fail_this(DIR *dir)
{
    struct stat  want, sb;

    if (fail_flag != NULL && access(fail_flag, F_OK) != 0) {
        return 0;
    }

    /* the same directory, whichever name the program opened it by */

    if (stat(fail_path, &want) != 0 || fstat(dirfd(dir), &sb) != 0
        || want.st_dev != sb.st_dev || want.st_ino != sb.st_ino)
    {
        return 0;
    }

    if (dir != counted) {
        counted = dir;
        entries = 0;
    }

    return entries++ >= fail_after;
}
