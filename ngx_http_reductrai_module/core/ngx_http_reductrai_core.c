
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>


int
ngx_http_reductrai_buf_reserve(ngx_http_reductrai_buf_t *b, size_t size)
{
    size_t   cap;
    u_char  *p;

    if (b->len + size <= b->cap) {
        return NGX_HTTP_REDUCTRAI_OK;
    }

    if (b->len + size < b->len) {
        errno = ENOMEM;
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    cap = b->cap ? b->cap : 4096;

    while (cap < b->len + size) {
        cap = (cap > ((size_t) -1) / 2) ? b->len + size : cap * 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        errno = ENOMEM;
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    b->data = p;
    b->cap = cap;

    return NGX_HTTP_REDUCTRAI_OK;
}


void
ngx_http_reductrai_buf_free(ngx_http_reductrai_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


u_char *
ngx_http_reductrai_format_ts(u_char *p, int64_t ms)
{
    time_t     sec;
    struct tm  tm;

    sec = (time_t) (ms / 1000);
    gmtime_r(&sec, &tm);

    p += strftime((char *) p, 21, "%Y-%m-%dT%H:%M:%S", &tm);

    *p++ = '.';
    *p++ = (u_char) ('0' + (ms % 1000) / 100);
    *p++ = (u_char) ('0' + (ms % 100) / 10);
    *p++ = (u_char) ('0' + ms % 10);
    *p++ = 'Z';

    return p;
}


/*
 * Parses "YYYY-MM-DDTHH:MM:SS[.mmm]Z" (what the archive writes) and also a
 * bare date "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]" as UTC; returns
 * milliseconds since the epoch, or -1.
 */

int64_t
ngx_http_reductrai_parse_ts(const u_char *p, size_t len)
{
    int  year, mon, mday, hour, min, sec, msec;

    hour = 0;
    min = 0;
    sec = 0;
    msec = 0;

    if (len < 10
        || ngx_http_reductrai_digits(p, 4, &year) != 0 || p[4] != '-'
        || ngx_http_reductrai_digits(p + 5, 2, &mon) != 0 || p[7] != '-'
        || ngx_http_reductrai_digits(p + 8, 2, &mday) != 0)
    {
        return -1;
    }

    p += 10;
    len -= 10;

    if (len > 0) {
        if ((*p != 'T' && *p != ' ') || len < 6
            || ngx_http_reductrai_digits(p + 1, 2, &hour) != 0 || p[3] != ':'
            || ngx_http_reductrai_digits(p + 4, 2, &min) != 0)
        {
            return -1;
        }

        p += 6;
        len -= 6;

        if (len >= 3 && *p == ':') {
            if (ngx_http_reductrai_digits(p + 1, 2, &sec) != 0) {
                return -1;
            }

            p += 3;
            len -= 3;

            if (len >= 4 && *p == '.') {
                if (ngx_http_reductrai_digits(p + 1, 3, &msec) != 0) {
                    return -1;
                }

                p += 4;
                len -= 4;
            }
        }

        if (len == 1 && *p == 'Z') {
            len = 0;
        }

        if (len != 0) {
            return -1;
        }
    }

    if (mon < 1 || mon > 12 || mday < 1 || mday > 31 || hour > 23
        || min > 59 || sec > 60)
    {
        return -1;
    }

    return ngx_http_reductrai_utc(year, mon, mday, hour, min, sec, NULL) * 1000
           + msec;
}


int64_t
ngx_http_reductrai_utc(int year, int mon, int mday, int hour, int min,
    int sec, int *exact)
{
    int64_t    t;
    struct tm  tm;

    memset(&tm, 0, sizeof(struct tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = mday;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;

    t = (int64_t) timegm(&tm);

    if (exact != NULL) {
        *exact = tm.tm_mday == mday && tm.tm_mon == mon - 1;
    }

    return t;
}


int
ngx_http_reductrai_digits(const u_char *p, size_t n, int *value)
{
    size_t  i;

    *value = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        *value = *value * 10 + (p[i] - '0');
    }

    return 0;
}


u_char *
ngx_http_reductrai_hex(u_char *dst, const u_char *src, size_t len)
{
    static const u_char  hex[] = "0123456789abcdef";

    while (len--) {
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0xf];
    }

    return dst;
}


int
ngx_http_reductrai_unhex(u_char *dst, const u_char *src, size_t len)
{
    int  hi, lo;

    for ( /* void */ ; len >= 2; len -= 2, src += 2) {
        hi = ngx_http_reductrai_hexval(src[0]);
        lo = ngx_http_reductrai_hexval(src[1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        *dst++ = (u_char) (hi << 4 | lo);
    }

    return 0;
}


int
ngx_http_reductrai_hexval(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


int
ngx_http_reductrai_sync_dir(const char *dir)
{
    int  fd, rc, err;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    rc = fsync(fd);
    err = errno;
    (void) close(fd);
    errno = err;

    return rc;
}


int
ngx_http_reductrai_sync_parent(const char *path)
{
    char        dir[PATH_MAX];
    size_t      len;
    const char *slash;

    slash = strrchr(path, '/');

    if (slash == NULL) {
        return ngx_http_reductrai_sync_dir(".");
    }

    len = slash == path ? 1 : (size_t) (slash - path);

    if (len >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }

    memcpy(dir, path, len);
    dir[len] = '\0';

    return ngx_http_reductrai_sync_dir(dir);
}


int
ngx_http_reductrai_fd_write(int fd, const void *p, size_t len)
{
    ssize_t        n;
    const u_char  *pos;

    pos = p;

    while (len > 0) {
        n = write(fd, pos, len);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            return NGX_HTTP_REDUCTRAI_ERROR;
        }

        pos += n;
        len -= (size_t) n;
    }

    return NGX_HTTP_REDUCTRAI_OK;
}


void
ngx_http_reductrai_keep_tail(u_char *buf, size_t size, size_t *len,
    const u_char *p, size_t n)
{
    size_t  keep;

    if (n >= size) {
        memcpy(buf, p + n - size, size);
        *len = size;
        return;
    }

    if (*len + n > size) {
        keep = size - n;
        memmove(buf, buf + *len - keep, keep);
        *len = keep;
    }

    memcpy(buf + *len, p, n);
    *len += n;
}


int
ngx_http_reductrai_create_locked(const char *path, const u_char *head,
    size_t len)
{
    int          fd, err;
    char         hidden[PATH_MAX];
    size_t       plen, dirlen;
    const char  *slash;

    plen = strlen(path);

    if (plen + sizeof(".new.") > sizeof(hidden)) {
        errno = ENAMETOOLONG;
        return -1;
    }

    slash = strrchr(path, '/');
    dirlen = slash ? (size_t) (slash - path) + 1 : 0;

    memcpy(hidden, path, dirlen);
    memcpy(hidden + dirlen, ".new.", 5);
    memcpy(hidden + dirlen + 5, path + dirlen, plen - dirlen + 1);

    fd = open(hidden, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1) {
        return -1;
    }

    if (flock(fd, LOCK_EX | LOCK_NB) == -1
        || (len && ngx_http_reductrai_fd_write(fd, head, len) != 0)
        || rename(hidden, path) == -1)
    {
        err = errno;
        (void) close(fd);
        (void) unlink(hidden);
        errno = err;
        return -1;
    }

    return fd;
}


void
ngx_http_reductrai_put_le32(u_char *p, uint32_t v)
{
    p[0] = (u_char) v;
    p[1] = (u_char) (v >> 8);
    p[2] = (u_char) (v >> 16);
    p[3] = (u_char) (v >> 24);
}


void
ngx_http_reductrai_put_le64(u_char *p, uint64_t v)
{
    ngx_http_reductrai_put_le32(p, (uint32_t) v);
    ngx_http_reductrai_put_le32(p + 4, (uint32_t) (v >> 32));
}


uint32_t
ngx_http_reductrai_get_le32(const u_char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}


uint64_t
ngx_http_reductrai_get_le64(const u_char *p)
{
    return (uint64_t) ngx_http_reductrai_get_le32(p)
           | (uint64_t) ngx_http_reductrai_get_le32(p + 4) << 32;
}
