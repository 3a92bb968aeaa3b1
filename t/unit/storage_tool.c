
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * A thin command line over the storage interface, so the integration tests
 * can drive each backend's put, get, head, list and probe against real
 * protocol servers, and time an upload:
 *
 *   rdx-storage-tool URI [name=value ...] -- put KEY FILE
 *                                         -- get KEY [OFFSET [LENGTH]]
 *                                         -- head KEY
 *                                         -- list PREFIX
 *                                         -- probe
 *
 * get writes the bytes to stdout, head the size, list "KEY SIZE" lines;
 * put prints "bytes seconds MB/s".  Exit codes: 0 OK, 1 RETRY, 2 FATAL,
 * 3 NOT_FOUND, 4 usage or configuration; the reason goes to stderr.
 */


#include "ngx_http_reductrai_storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>


static int
sink(void *data, const u_char *p, size_t len)
{
    return fwrite(p, 1, len, stdout) == len ? 0 : -1;
}


static int
lister(void *data, const char *key, int64_t size)
{
    printf("%s %lld\n", key, (long long) size);
    return 0;
}


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


int
main(int argc, char **argv)
{
    int                                sep, fd;
    char                               err[256], cwd[4096];
    double                             t0;
    int64_t                            size, off, len;
    struct stat                        sb;
    const char                        *cmd;
    ngx_http_reductrai_storage_t      *st;
    ngx_http_reductrai_storage_rc_e    rc;
    ngx_http_reductrai_storage_err_t   e;

    for (sep = 1; sep < argc && strcmp(argv[sep], "--") != 0; sep++) {
        /* void */
    }

    if (sep < 2 || sep + 1 >= argc) {
        fprintf(stderr, "usage: %s URI [name=value ...] -- COMMAND ...\n",
                argv[0]);
        return 4;
    }

    if (ngx_http_reductrai_storage_global_init() != 0) {
        fprintf(stderr, "curl_global_init() failed\n");
        return 4;
    }

    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        strcpy(cwd, "/");
    }

    st = ngx_http_reductrai_storage_create(argv[1], sep - 2, argv + 2, cwd,
                                           err, sizeof(err));
    if (st == NULL || ngx_http_reductrai_storage_init(st, err, sizeof(err))
                      != 0)
    {
        fprintf(stderr, "%s\n", err);
        return 4;
    }

    cmd = argv[sep + 1];
    argv += sep + 2;
    argc -= sep + 2;

    memset(&e, 0, sizeof(e));
    rc = NGX_HTTP_REDUCTRAI_STORAGE_FATAL;

    if (strcmp(cmd, "put") == 0 && argc == 2) {
        fd = open(argv[1], O_RDONLY);
        if (fd == -1 || fstat(fd, &sb) == -1) {
            fprintf(stderr, "open(\"%s\") failed: %s\n", argv[1],
                    strerror(errno));
            return 4;
        }

        t0 = now();
        rc = st->backend->put(st, argv[0], fd, sb.st_size, &e);
        t0 = now() - t0;

        if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            printf("%lld %.3f %.1f\n", (long long) sb.st_size, t0,
                   sb.st_size / 1048576.0 / (t0 > 0 ? t0 : 1e-9));
        }

        close(fd);

    } else if (strcmp(cmd, "get") == 0 && argc >= 1 && argc <= 3) {
        off = argc > 1 ? strtoll(argv[1], NULL, 10) : 0;
        len = argc > 2 ? strtoll(argv[2], NULL, 10) : -1;
        rc = st->backend->get(st, argv[0], off, len, sink, NULL, &e);
        fflush(stdout);

    } else if (strcmp(cmd, "head") == 0 && argc == 1) {
        rc = st->backend->head(st, argv[0], &size, &e);

        if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            printf("%lld\n", (long long) size);
        }

    } else if (strcmp(cmd, "list") == 0 && argc == 1) {
        rc = st->backend->list(st, argv[0], lister, NULL, &e);

    } else if (strcmp(cmd, "probe") == 0 && argc == 0) {
        rc = st->backend->probe(st, &e);

        if (rc == NGX_HTTP_REDUCTRAI_STORAGE_OK) {
            printf("ok\n");
        }

    } else {
        fprintf(stderr, "unknown command or arguments: %s\n", cmd);
        ngx_http_reductrai_storage_destroy(st);
        return 4;
    }

    if (rc != NGX_HTTP_REDUCTRAI_STORAGE_OK) {
        fprintf(stderr, "%s\n", e.message);
    }

    ngx_http_reductrai_storage_destroy(st);

    return rc == NGX_HTTP_REDUCTRAI_STORAGE_OK ? 0
           : rc == NGX_HTTP_REDUCTRAI_STORAGE_RETRY ? 1
           : rc == NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND ? 3 : 2;
}
