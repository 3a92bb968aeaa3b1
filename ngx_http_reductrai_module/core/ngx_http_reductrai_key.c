
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static void ngx_http_reductrai_hour_parts(int64_t hour, char *date,
    int *hh);
static int ngx_http_reductrai_parse_hour(const char *date, size_t dlen,
    const char *hh, size_t hlen, int64_t *hour);
static int ngx_http_reductrai_parse_segment_name(const char *p, size_t len,
    ngx_http_reductrai_segment_id_t *id);
static int ngx_http_reductrai_parse_uint(const char *p, size_t len,
    uint64_t *value);


/* by ngx_http_reductrai_spool_state_e */
static const char  *ngx_http_reductrai_spool_suffixes[] = {
    NGX_HTTP_REDUCTRAI_OPEN_SUFFIX,
    NGX_HTTP_REDUCTRAI_SEALED_SUFFIX,
    NGX_HTTP_REDUCTRAI_LOG_SUFFIX
};


int
ngx_http_reductrai_valid_stream(const u_char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_REDUCTRAI_STREAM_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_' || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


int
ngx_http_reductrai_valid_instance(const u_char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_REDUCTRAI_INSTANCE_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_' || s[i] == '-' || s[i] == '.'))
        {
            return 0;
        }
    }

    /* "." and ".." would be path components */
    if (s[0] == '.') {
        return 0;
    }

    return 1;
}


size_t
ngx_http_reductrai_spool_name(char *buf, size_t size,
    const ngx_http_reductrai_segment_id_t *id,
    ngx_http_reductrai_spool_state_e state)
{
    int   n, hh;
    char  date[16];

    ngx_http_reductrai_hour_parts(id->hour, date, &hh);

    n = snprintf(buf, size, "%s,%s,%02d,%s-%lld-%lld-%0*llu,%lld%s",
                 id->stream, date, hh, id->instance, (long long) id->pid,
                 (long long) id->start_ms, NGX_HTTP_REDUCTRAI_SEQ_DIGITS,
                 (unsigned long long) id->seq, (long long) id->first_ms,
                 ngx_http_reductrai_spool_suffixes[state]);

    if (n < 0 || (size_t) n >= size) {
        return 0;
    }

    return (size_t) n;
}


int
ngx_http_reductrai_spool_name_parse(const char *name,
    ngx_http_reductrai_segment_id_t *id,
    ngx_http_reductrai_spool_state_e *state)
{
    size_t       len, slen;
    uint64_t     first;
    const char  *f[5], *p, *end;
    size_t       flen[5];
    int          i, s;

    len = strlen(name);
    end = NULL;

    for (s = 0; s < NGX_HTTP_REDUCTRAI_SPOOL_STATES; s++) {
        slen = strlen(ngx_http_reductrai_spool_suffixes[s]);

        if (len > slen
            && memcmp(name + len - slen, ngx_http_reductrai_spool_suffixes[s],
                      slen)
               == 0)
        {
            *state = (ngx_http_reductrai_spool_state_e) s;
            end = name + len - slen;
            break;
        }
    }

    if (end == NULL) {
        return -1;
    }

    p = name;

    for (i = 0; i < 5; i++) {
        f[i] = p;

        while (p < end && *p != ',') {
            p++;
        }

        flen[i] = (size_t) (p - f[i]);

        if (i < 4) {
            if (p == end) {
                return -1;
            }

            p++;
        }
    }

    if (p != end) {
        return -1;
    }

    if (!ngx_http_reductrai_valid_stream((const u_char *) f[0], flen[0])) {
        return -1;
    }

    memset(id, 0, sizeof(ngx_http_reductrai_segment_id_t));
    memcpy(id->stream, f[0], flen[0]);

    if (ngx_http_reductrai_parse_hour(f[1], flen[1], f[2], flen[2],
                                      &id->hour)
        != 0
        || ngx_http_reductrai_parse_segment_name(f[3], flen[3], id) != 0
        || ngx_http_reductrai_parse_uint(f[4], flen[4], &first) != 0)
    {
        return -1;
    }

    id->first_ms = (int64_t) first;

    return 0;
}


size_t
ngx_http_reductrai_object_dir(char *buf, size_t size, const char *prefix,
    const char *stream, int64_t hour)
{
    int   n, hh;
    char  date[16];

    ngx_http_reductrai_hour_parts(hour, date, &hh);

    n = snprintf(buf, size, "%s%sstream=%s/dt=%s/hour=%02d/",
                 prefix, prefix[0] ? "/" : "", stream, date, hh);

    if (n < 0 || (size_t) n >= size) {
        return 0;
    }

    return (size_t) n;
}


size_t
ngx_http_reductrai_object_key(char *buf, size_t size, const char *prefix,
    const ngx_http_reductrai_segment_id_t *id)
{
    int     n;
    size_t  len;

    len = ngx_http_reductrai_object_dir(buf, size, prefix, id->stream,
                                        id->hour);
    if (len == 0) {
        return 0;
    }

    n = snprintf(buf + len, size - len, "%s-%lld-%lld-%0*llu%s",
                 id->instance, (long long) id->pid, (long long) id->start_ms,
                 NGX_HTTP_REDUCTRAI_SEQ_DIGITS, (unsigned long long) id->seq,
                 NGX_HTTP_REDUCTRAI_KEY_SUFFIX);

    if (n < 0 || (size_t) n >= size - len) {
        return 0;
    }

    return len + (size_t) n;
}


int
ngx_http_reductrai_object_key_parse(const char *key, size_t len,
    ngx_http_reductrai_segment_id_t *id)
{
    size_t       klen, n;
    const char  *p, *end, *name, *hour, *dt, *stream;

    klen = sizeof(NGX_HTTP_REDUCTRAI_KEY_SUFFIX) - 1;

    if (len <= klen
        || memcmp(key + len - klen, NGX_HTTP_REDUCTRAI_KEY_SUFFIX, klen) != 0)
    {
        return -1;
    }

    end = key + len - klen;

    /* walk back over the four last path components */

    for (p = end; p > key && p[-1] != '/'; p--) { /* void */ }
    name = p;

    if (p == key) {
        return -1;
    }

    for (p--; p > key && p[-1] != '/'; p--) { /* void */ }
    hour = p;

    if (p == key) {
        return -1;
    }

    for (p--; p > key && p[-1] != '/'; p--) { /* void */ }
    dt = p;

    if (p == key) {
        return -1;
    }

    for (p--; p > key && p[-1] != '/'; p--) { /* void */ }
    stream = p;

    if (strncmp(stream, "stream=", 7) != 0
        || strncmp(dt, "dt=", 3) != 0
        || strncmp(hour, "hour=", 5) != 0)
    {
        return -1;
    }

    memset(id, 0, sizeof(ngx_http_reductrai_segment_id_t));

    n = (size_t) (dt - 1 - (stream + 7));

    if (!ngx_http_reductrai_valid_stream((const u_char *) stream + 7, n)) {
        return -1;
    }

    memcpy(id->stream, stream + 7, n);

    if (ngx_http_reductrai_parse_hour(dt + 3, (size_t) (hour - 1 - (dt + 3)),
                                      hour + 5,
                                      (size_t) (name - 1 - (hour + 5)),
                                      &id->hour)
        != 0)
    {
        return -1;
    }

    return ngx_http_reductrai_parse_segment_name(name,
                                                 (size_t) (end - name), id);
}


static void
ngx_http_reductrai_hour_parts(int64_t hour, char *date, int *hh)
{
    time_t     sec;
    struct tm  tm;

    sec = (time_t) (hour * 3600);
    gmtime_r(&sec, &tm);

    strftime(date, 16, "%Y-%m-%d", &tm);
    *hh = tm.tm_hour;
}


static int
ngx_http_reductrai_parse_hour(const char *date, size_t dlen, const char *hh,
    size_t hlen, int64_t *hour)
{
    int64_t   ms;
    uint64_t  h;

    if (dlen != 10 || hlen != 2
        || ngx_http_reductrai_parse_uint(hh, 2, &h) != 0 || h > 23)
    {
        return -1;
    }

    ms = ngx_http_reductrai_parse_ts((const u_char *) date, 10);
    if (ms < 0) {
        return -1;
    }

    *hour = ms / NGX_HTTP_REDUCTRAI_HOUR_MS + (int64_t) h;

    return 0;
}


/* "INSTANCE-PID-STARTMS-SEQ", parsed from the right */

static int
ngx_http_reductrai_parse_segment_name(const char *p, size_t len,
    ngx_http_reductrai_segment_id_t *id)
{
    int          i;
    uint64_t     v[3];
    const char  *end, *q;

    end = p + len;

    for (i = 2; i >= 0; i--) {
        for (q = end; q > p && q[-1] != '-'; q--) { /* void */ }

        if (q == p
            || ngx_http_reductrai_parse_uint(q, (size_t) (end - q), &v[i])
               != 0)
        {
            return -1;
        }

        end = q - 1;
    }

    if (v[2] == 0
        || !ngx_http_reductrai_valid_instance((const u_char *) p,
                                              (size_t) (end - p)))
    {
        return -1;
    }

    memcpy(id->instance, p, (size_t) (end - p));
    id->instance[end - p] = '\0';
    id->pid = (int64_t) v[0];
    id->start_ms = (int64_t) v[1];
    id->seq = v[2];

    return 0;
}


static int
ngx_http_reductrai_parse_uint(const char *p, size_t len, uint64_t *value)
{
    size_t  i;

    if (len == 0 || len > 19) {
        return -1;
    }

    *value = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        *value = *value * 10 + (uint64_t) (p[i] - '0');
    }

    return 0;
}
