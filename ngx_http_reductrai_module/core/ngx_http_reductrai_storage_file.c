
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * file://DIR: a local or NFS-mounted directory.  An object is copied to a
 * temporary name beside its key, fsync()ed, renamed into place, and the
 * directory is fsync()ed: rename is atomic on local filesystems and on NFS,
 * so readers (and other instances sharing the mount) see a whole object or
 * none.  An object already present is never rewritten.
 */


#include "ngx_http_reductrai_storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>


static int ngx_http_reductrai_file_create(ngx_http_reductrai_storage_t *st,
    char *err, size_t errlen);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_file_put(
    ngx_http_reductrai_storage_t *st, const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_file_get(
    ngx_http_reductrai_storage_t *st, const char *key, int64_t offset,
    int64_t length, ngx_http_reductrai_sink_pt sink, void *data,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_file_head(
    ngx_http_reductrai_storage_t *st, const char *key, int64_t *size,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_file_list(
    ngx_http_reductrai_storage_t *st, const char *prefix,
    ngx_http_reductrai_list_pt handler, void *data,
    ngx_http_reductrai_storage_err_t *err);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_file_probe(
    ngx_http_reductrai_storage_t *st, ngx_http_reductrai_storage_err_t *err);

static int ngx_http_reductrai_file_path(ngx_http_reductrai_storage_t *st,
    char *buf, const char *key);
static int ngx_http_reductrai_file_mkdirs(char *path, size_t root,
    int mode);
static int ngx_http_reductrai_file_copy(int from, int to, int64_t size);
static int ngx_http_reductrai_file_walk(char *path, size_t root,
    size_t len, const char *prefix, ngx_http_reductrai_list_pt handler,
    void *data);
static ngx_http_reductrai_storage_rc_e ngx_http_reductrai_file_errno(
    ngx_http_reductrai_storage_err_t *err, const char *call,
    const char *path);


const ngx_http_reductrai_storage_backend_t  ngx_http_reductrai_storage_file = {
    "file",
    ngx_http_reductrai_file_create,
    NULL,
    ngx_http_reductrai_file_put,
    ngx_http_reductrai_file_get,
    ngx_http_reductrai_file_head,
    ngx_http_reductrai_file_list,
    ngx_http_reductrai_file_probe,
    NULL
};


static int
ngx_http_reductrai_file_create(ngx_http_reductrai_storage_t *st, char *err,
    size_t errlen)
{
    if (st->bucket[0] != '/') {
        snprintf(err, errlen, "file:// storage needs an absolute directory, "
                 "not \"%s\"", st->bucket);
        return -1;
    }

    if (strlen(st->bucket) > PATH_MAX / 2) {
        snprintf(err, errlen, "directory name too long");
        return -1;
    }

    return 0;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_file_put(ngx_http_reductrai_storage_t *st,
    const char *key, int fd, int64_t size,
    ngx_http_reductrai_storage_err_t *err)
{
    int          out;
    char         path[PATH_MAX], tmp[PATH_MAX];
    char        *slash;
    size_t       root;
    struct stat  sb;

    if (ngx_http_reductrai_file_path(st, path, key) != 0) {
        ngx_http_reductrai_storage_error(err, 0, "key too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    if (stat(path, &sb) == 0) {
        /* complete already (an upload whose spool removal was cut off) */
        return NGX_HTTP_REDUCTRAI_STORAGE_OK;
    }

    slash = strrchr(path, '/');
    root = strlen(st->bucket);

    /*
     * A temporary name derived from the key: only one uploader works on a
     * key at a time (it holds the segment's lock), and a retry after a
     * crash reuses, rather than leaves behind, the same file.
     */

    if (snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp", (int) (slash - path),
                 path, slash + 1)
        >= (int) sizeof(tmp))
    {
        ngx_http_reductrai_storage_error(err, 0, "key too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    *slash = '\0';

    if (ngx_http_reductrai_file_mkdirs(path, root,
                                       st->conf.file_mode) != 0) {
        return ngx_http_reductrai_file_errno(err, "mkdir()", path);
    }

    *slash = '/';

    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
               st->conf.file_mode);
    if (out == -1) {
        return ngx_http_reductrai_file_errno(err, "open()", tmp);
    }

    if (ngx_http_reductrai_file_copy(fd, out, size) != 0) {
        (void) close(out);
        (void) unlink(tmp);
        return ngx_http_reductrai_file_errno(err, "write()", tmp);
    }

    if (fsync(out) == -1) {
        (void) close(out);
        (void) unlink(tmp);
        return ngx_http_reductrai_file_errno(err, "fsync()", tmp);
    }

    if (close(out) == -1) {
        (void) unlink(tmp);
        return ngx_http_reductrai_file_errno(err, "close()", tmp);
    }

    if (rename(tmp, path) == -1) {
        (void) unlink(tmp);
        return ngx_http_reductrai_file_errno(err, "rename()", path);
    }

    if (ngx_http_reductrai_sync_parent(path) != 0) {
        return ngx_http_reductrai_file_errno(err, "fsync()", path);
    }

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_file_get(ngx_http_reductrai_storage_t *st,
    const char *key, int64_t offset, int64_t length,
    ngx_http_reductrai_sink_pt sink, void *data,
    ngx_http_reductrai_storage_err_t *err)
{
    int           fd;
    char          path[PATH_MAX];
    u_char        buf[65536];
    size_t        want;
    ssize_t       n;
    struct stat   sb;

    if (ngx_http_reductrai_file_path(st, path, key) != 0) {
        ngx_http_reductrai_storage_error(err, 0, "key too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return ngx_http_reductrai_file_errno(err, "open()", path);
    }

    if (fstat(fd, &sb) == -1) {
        (void) close(fd);
        return ngx_http_reductrai_file_errno(err, "fstat()", path);
    }

    if (offset < 0) {
        offset = sb.st_size + offset < 0 ? 0 : sb.st_size + offset;
        length = -1;
    }

    if (length < 0 || offset + length > sb.st_size) {
        length = offset < sb.st_size ? sb.st_size - offset : 0;
    }

    while (length > 0) {
        want = length < (int64_t) sizeof(buf) ? (size_t) length : sizeof(buf);

        n = pread(fd, buf, want, offset);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }

            (void) close(fd);
            return ngx_http_reductrai_file_errno(err, "pread()", path);
        }

        if (sink(data, buf, (size_t) n) != 0) {
            (void) close(fd);
            ngx_http_reductrai_storage_error(err, 0, "output failed");
            return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
        }

        offset += n;
        length -= n;
    }

    (void) close(fd);

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_file_head(ngx_http_reductrai_storage_t *st,
    const char *key, int64_t *size, ngx_http_reductrai_storage_err_t *err)
{
    char         path[PATH_MAX];
    struct stat  sb;

    if (ngx_http_reductrai_file_path(st, path, key) != 0) {
        ngx_http_reductrai_storage_error(err, 0, "key too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    if (stat(path, &sb) == -1) {
        return ngx_http_reductrai_file_errno(err, "stat()", path);
    }

    *size = sb.st_size;

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_file_list(ngx_http_reductrai_storage_t *st,
    const char *prefix, ngx_http_reductrai_list_pt handler, void *data,
    ngx_http_reductrai_storage_err_t *err)
{
    char    path[PATH_MAX];
    char   *slash;
    size_t  root, len;

    /*
     * Walk the deepest directory the prefix names whole, and filter on the
     * rest: "stream=metrics/dt=2026-11-2" walks "stream=metrics/".
     */

    if (ngx_http_reductrai_file_path(st, path, prefix) != 0) {
        ngx_http_reductrai_storage_error(err, 0, "prefix too long");
        return NGX_HTTP_REDUCTRAI_STORAGE_FATAL;
    }

    root = strlen(st->bucket);
    slash = strrchr(path + root, '/');
    len = (size_t) (slash - path);
    path[len] = '\0';

    if (ngx_http_reductrai_file_walk(path, root, len, prefix, handler, data)
        == -1)
    {
        if (errno == ENOENT) {
            return NGX_HTTP_REDUCTRAI_STORAGE_OK;
        }

        return ngx_http_reductrai_file_errno(err, "listing", path);
    }

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_file_probe(ngx_http_reductrai_storage_t *st,
    ngx_http_reductrai_storage_err_t *err)
{
    char  path[PATH_MAX];

    strcpy(path, st->bucket);

    if (ngx_http_reductrai_file_mkdirs(path, 1, st->conf.file_mode) != 0) {
        return ngx_http_reductrai_file_errno(err, "mkdir()", path);
    }

    if (access(path, W_OK | X_OK) == -1) {
        return ngx_http_reductrai_file_errno(err, "access()", path);
    }

    return NGX_HTTP_REDUCTRAI_STORAGE_OK;
}


static int
ngx_http_reductrai_file_path(ngx_http_reductrai_storage_t *st, char *buf,
    const char *key)
{
    int  n;

    /* keys are ours, but a ".." must never leave the directory */
    if (strstr(key, "..") != NULL) {
        errno = EINVAL;
        return -1;
    }

    n = snprintf(buf, PATH_MAX, "%s/%s", st->bucket, key);

    return (n < 0 || n >= PATH_MAX) ? -1 : 0;
}


/*
 * Creates the missing directories of path below its first root bytes; the
 * entry of each new directory is fsync()ed into its parent, so that a power
 * loss cannot take away a directory an object was then renamed into.
 */

static int
ngx_http_reductrai_file_mkdirs(char *path, size_t root, int mode)
{
    char        *p;
    struct stat  sb;

    if (stat(path, &sb) == 0) {
        return S_ISDIR(sb.st_mode) ? 0 : (errno = ENOTDIR, -1);
    }

    for (p = path + root; /* void */; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }

        if (p != path) {
            char  c = *p;

            *p = '\0';

            /* directories: x wherever the objects' mode has r */

            if (mkdir(path, mode | ((mode & 0444) >> 2)) == 0) {
                if (ngx_http_reductrai_sync_parent(path) != 0) {
                    *p = c;
                    return -1;
                }

            } else if (errno != EEXIST) {
                *p = c;
                return -1;
            }

            *p = c;
        }

        if (*p == '\0') {
            return 0;
        }
    }
}


static int
ngx_http_reductrai_file_copy(int from, int to, int64_t size)
{
    u_char   buf[65536];
    off_t    off;
    ssize_t  n;
    size_t   want;

    off = 0;

    while (off < size) {
        want = size - off < (int64_t) sizeof(buf) ? (size_t) (size - off)
                                                  : sizeof(buf);

        n = pread(from, buf, want, off);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }

            return -1;
        }

        if (ngx_http_reductrai_fd_write(to, buf, (size_t) n) != 0) {
            return -1;
        }

        off += n;
    }

    return 0;
}


static int
ngx_http_reductrai_file_walk(char *path, size_t root, size_t len,
    const char *prefix, ngx_http_reductrai_list_pt handler, void *data)
{
    int             rc, err;
    DIR            *dir;
    size_t          n, plen;
    struct stat     sb;
    struct dirent  *de;

    dir = opendir(path);
    if (dir == NULL) {
        return -1;
    }

    plen = strlen(prefix);
    rc = 0;
    err = 0;

    while (rc == 0) {

        /* readdir() says "the end" and "failed" alike, but for errno */
        errno = 0;

        de = readdir(dir);
        if (de == NULL) {
            /* a listing cut short must not pass for a complete one */
            err = errno;
            rc = err ? -1 : 0;
            break;
        }

        /* ".", "..", and temporary files of uploads in progress */
        if (de->d_name[0] == '.') {
            continue;
        }

        n = strlen(de->d_name);

        if (len + 1 + n >= PATH_MAX) {
            continue;
        }

        path[len] = '/';
        memcpy(path + len + 1, de->d_name, n + 1);

        /* an entry vanishing under the walk is not an error */
        if (stat(path, &sb) == -1) {
            if (errno != ENOENT) {
                err = errno;
                rc = -1;
            }

            continue;
        }

        if (S_ISDIR(sb.st_mode)) {
            /* prune subtrees the prefix rules out */
            if (strncmp(path + root + 1, prefix,
                        len + n - root < plen ? len + n - root : plen)
                != 0)
            {
                continue;
            }

            rc = ngx_http_reductrai_file_walk(path, root, len + 1 + n,
                                              prefix, handler, data);
            if (rc == -1) {
                if (errno == ENOENT) {
                    rc = 0;

                } else {
                    err = errno;
                }
            }

        } else if (S_ISREG(sb.st_mode)
                   && strncmp(path + root + 1, prefix, plen) == 0)
        {
            rc = handler(data, path + root + 1, (int64_t) sb.st_size) ? 1 : 0;
        }
    }

    path[len] = '\0';
    closedir(dir);

    if (rc == -1) {
        errno = err;
    }

    return rc;
}


static ngx_http_reductrai_storage_rc_e
ngx_http_reductrai_file_errno(ngx_http_reductrai_storage_err_t *err,
    const char *call, const char *path)
{
    int  e = errno;

    ngx_http_reductrai_storage_error(err, 0, "%s \"%s\" failed (%d: %s)",
                                     call, path, e, strerror(e));

    if (e == ENOENT) {
        return NGX_HTTP_REDUCTRAI_STORAGE_NOT_FOUND;
    }

    /* a full or read-only disk, a stale NFS handle: all may heal */
    return NGX_HTTP_REDUCTRAI_STORAGE_RETRY;
}
