
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_record.h"
#include "ngx_http_reductrai_json.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>


/*
 * base64 is produced from this much input at a time (a multiple of 3, so
 * only the last chunk is padded): 64 KiB of text per sink call
 */
#define NGX_HTTP_REDUCTRAI_B64_CHUNK  (48 * 1024)

#define NGX_HTTP_REDUCTRAI_REDACTED   "REDACTED"


#define ngx_http_reductrai_cpymem(dst, src, n)                               \
    (((u_char *) memcpy(dst, src, n)) + (n))

#define ngx_http_reductrai_cpystr(dst, s)                                    \
    ngx_http_reductrai_cpymem(dst, s, sizeof(s) - 1)


typedef struct {
    const char                *name;      /* "\"id\":" */
    size_t                     len;
    size_t                     offset;
} ngx_http_reductrai_record_field_t;


typedef struct {
    const char                *name;
    size_t                     len;
    unsigned                   api_key:1;  /* a source of api_key_fp */
} ngx_http_reductrai_credential_t;


typedef struct {
    const u_char              *p;         /* where the scan resumes */
    const u_char              *query;     /* the '?', or end */
    const u_char              *end;
    unsigned                   input:1;   /* the last segment was "input" */
} ngx_http_reductrai_scan_t;


static u_char *ngx_http_reductrai_sprint_size(u_char *p, size_t n);
static int ngx_http_reductrai_scan_secret(ngx_http_reductrai_scan_t *scan,
    const u_char **start, const u_char **end, unsigned *api_key);
static void ngx_http_reductrai_scan_init(ngx_http_reductrai_scan_t *scan,
    const u_char *uri, size_t len);
static size_t ngx_http_reductrai_redact(u_char *dst, const u_char *uri,
    size_t len);
static unsigned ngx_http_reductrai_is_pct_slash(const u_char *p,
    const u_char *end);
static unsigned ngx_http_reductrai_name_eq(const u_char *p,
    const u_char *end, const char *name, size_t len);
static const ngx_http_reductrai_credential_t *
    ngx_http_reductrai_credential(const u_char *name, size_t len);


#define ngx_http_reductrai_field(name, field)                                \
    { "\"" name "\":", sizeof("\"" name "\":") - 1,                          \
      offsetof(ngx_http_reductrai_record_meta_t, field) }

static const ngx_http_reductrai_record_field_t
    ngx_http_reductrai_record_fields[] =
{
    ngx_http_reductrai_field("id", id),
    ngx_http_reductrai_field("ts", ts),
    ngx_http_reductrai_field("stream", stream),
    ngx_http_reductrai_field("method", method),
    ngx_http_reductrai_field("uri", uri),
    ngx_http_reductrai_field("host", host),
    ngx_http_reductrai_field("client", client),
    ngx_http_reductrai_field("request_id", request_id),
    ngx_http_reductrai_field("content_type", content_type),
    ngx_http_reductrai_field("content_encoding", content_encoding),
    ngx_http_reductrai_field("user_agent", user_agent),
    ngx_http_reductrai_field("api_key_fp", api_key_fp),
    { NULL, 0, 0 }
};


#define ngx_http_reductrai_credential_name(name, api_key)                    \
    { name, sizeof(name) - 1, api_key }

static const ngx_http_reductrai_credential_t
    ngx_http_reductrai_credentials[] =
{
    ngx_http_reductrai_credential_name("api_key", 1),
    ngx_http_reductrai_credential_name("apikey", 1),
    ngx_http_reductrai_credential_name("api-key", 1),
    ngx_http_reductrai_credential_name("dd-api-key", 1),
    ngx_http_reductrai_credential_name("dd_api_key", 1),
    ngx_http_reductrai_credential_name("application_key", 0),
    ngx_http_reductrai_credential_name("dd-application-key", 0),
    ngx_http_reductrai_credential_name("app_key", 0),
    ngx_http_reductrai_credential_name("token", 0),
    ngx_http_reductrai_credential_name("access_token", 0),
    ngx_http_reductrai_credential_name("auth_token", 0),
    ngx_http_reductrai_credential_name("x-api-key", 0),
    ngx_http_reductrai_credential_name("license_key", 0),
    ngx_http_reductrai_credential_name("password", 0),
    ngx_http_reductrai_credential_name("secret", 0),
    ngx_http_reductrai_credential_name("sig", 0),
    ngx_http_reductrai_credential_name("signature", 0),
    { NULL, 0, 0 }
};


static const u_char  ngx_http_reductrai_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


size_t
ngx_http_reductrai_record_head_len(
    const ngx_http_reductrai_record_meta_t *meta)
{
    size_t                                    len;
    const ngx_http_reductrai_str_t           *s;
    const ngx_http_reductrai_record_field_t  *f;

    len = sizeof("{\"forwarded\":false,") - 1;

    for (f = ngx_http_reductrai_record_fields; f->name != NULL; f++) {
        s = (const ngx_http_reductrai_str_t *)
                ((const u_char *) meta + f->offset);

        len += f->len + sizeof(",") - 1;

        if (s->data == NULL) {
            len += sizeof("null") - 1;

        } else {
            len += sizeof("\"\"") - 1
                   + ngx_http_reductrai_json_escape_len(s->data, s->len);
        }
    }

    return len;
}


u_char *
ngx_http_reductrai_record_head(u_char *p,
    const ngx_http_reductrai_record_meta_t *meta)
{
    const ngx_http_reductrai_str_t           *s;
    const ngx_http_reductrai_record_field_t  *f;

    *p++ = '{';

    for (f = ngx_http_reductrai_record_fields; f->name != NULL; f++) {
        s = (const ngx_http_reductrai_str_t *)
                ((const u_char *) meta + f->offset);

        p = ngx_http_reductrai_cpymem(p, f->name, f->len);

        if (s->data == NULL) {
            p = ngx_http_reductrai_cpystr(p, "null");

        } else {
            *p++ = '"';
            p = ngx_http_reductrai_json_escape(p, s->data, s->len);
            *p++ = '"';
        }

        *p++ = ',';
    }

    if (meta->forwarded) {
        p = ngx_http_reductrai_cpystr(p, "\"forwarded\":true,");

    } else {
        p = ngx_http_reductrai_cpystr(p, "\"forwarded\":false,");
    }

    return p;
}


int
ngx_http_reductrai_record_body(ngx_http_reductrai_record_encoder_t *enc,
    ngx_http_reductrai_encoding_e coding, unsigned format, const u_char *raw,
    size_t len, size_t max_decoded, ngx_http_reductrai_sink_pt sink,
    void *data, size_t *size)
{
    u_char                                  *p, buf[128];
    size_t                                   blen, n, chunk, elen;
    ssize_t                                  m;
    const char                              *err;
    const u_char                            *body;
    ngx_http_reductrai_pb_rc_e               pbrc;
    ngx_http_reductrai_decode_rc_e           rc;
    const ngx_http_reductrai_body_format_t  *bf;

    err = NULL;
    body = raw;
    blen = len;

    if (coding == NGX_HTTP_REDUCTRAI_ENC_UNSUPPORTED) {
        err = ngx_http_reductrai_decode_error(coding,
                                        NGX_HTTP_REDUCTRAI_DECODE_UNSUPPORTED);

    } else if (coding != NGX_HTTP_REDUCTRAI_ENC_IDENTITY) {
        rc = ngx_http_reductrai_decode(coding, raw, len, max_decoded,
                                       &enc->decoded);

        if (rc == NGX_HTTP_REDUCTRAI_DECODE_OK) {
            body = enc->decoded.data;
            blen = enc->decoded.len;

        } else {
            /* the raw bytes are archived as they came */
            err = ngx_http_reductrai_decode_error(coding, rc);
        }
    }

    *size = blen;

    p = ngx_http_reductrai_cpystr(buf, "\"size\":");
    p = ngx_http_reductrai_sprint_size(p, blen);

    bf = ngx_http_reductrai_body_format(format);

    if (err == NULL && bf != NULL) {
        enc->minified.len = 0;

        pbrc = ngx_http_reductrai_pb_json(&enc->pb, bf->descriptor,
                                          bf->style, body, blen,
                                          &enc->minified);

        if (pbrc == NGX_HTTP_REDUCTRAI_PB_OK) {
            /* the names are our own: they never need escaping */

            p = ngx_http_reductrai_cpystr(p, ",\"body_format\":\"");
            n = strlen(bf->name);
            p = ngx_http_reductrai_cpymem(p, bf->name, n);
            p = ngx_http_reductrai_cpystr(p, "\",\"body\":");

            if (sink(data, buf, p - buf) != 0
                || sink(data, enc->minified.data, enc->minified.len) != 0
                || sink(data, (u_char *) "}\n", 2) != 0)
            {
                return -1;
            }

            return 0;
        }

        /* not a message of that type: its bytes are kept as they are */
        err = ngx_http_reductrai_pb_error(pbrc);

    } else if (err == NULL && blen) {
        enc->minified.len = 0;

        if (ngx_http_reductrai_buf_reserve(&enc->minified, blen) != 0) {
            return -1;
        }

        m = ngx_http_reductrai_json_minify(enc->minified.data, body, blen);

        if (m >= 0) {
            p = ngx_http_reductrai_cpystr(p, ",\"body\":");

            if (sink(data, buf, p - buf) != 0
                || sink(data, enc->minified.data, m) != 0
                || sink(data, (u_char *) "}\n", 2) != 0)
            {
                return -1;
            }

            return 0;
        }
    }

    p = ngx_http_reductrai_cpystr(p, ",\"body_b64\":\"");

    if (sink(data, buf, p - buf) != 0) {
        return -1;
    }

    if (blen) {
        enc->text.len = 0;

        if (ngx_http_reductrai_buf_reserve(&enc->text,
                                    NGX_HTTP_REDUCTRAI_B64_CHUNK / 3 * 4)
            != 0)
        {
            return -1;
        }

        for (n = 0; n < blen; n += chunk) {
            chunk = blen - n;

            if (chunk > NGX_HTTP_REDUCTRAI_B64_CHUNK) {
                chunk = NGX_HTTP_REDUCTRAI_B64_CHUNK;
            }

            elen = ngx_http_reductrai_base64_encode(enc->text.data, body + n,
                                                    chunk);

            if (sink(data, enc->text.data, elen) != 0) {
                return -1;
            }
        }
    }

    /* err is one of our own names: it never needs escaping */

    p = buf;
    *p++ = '"';

    if (err != NULL) {
        p = ngx_http_reductrai_cpystr(p, ",\"decode_error\":\"");
        n = strlen(err);
        p = ngx_http_reductrai_cpymem(p, err, n);
        *p++ = '"';
    }

    *p++ = '}';
    *p++ = '\n';

    if (sink(data, buf, p - buf) != 0) {
        return -1;
    }

    return 0;
}


void
ngx_http_reductrai_record_encoder_trim(
    ngx_http_reductrai_record_encoder_t *enc, size_t keep)
{
    if (enc->decoded.cap > keep) {
        ngx_http_reductrai_buf_free(&enc->decoded);
    }

    if (enc->minified.cap > keep) {
        ngx_http_reductrai_buf_free(&enc->minified);
    }

    if (enc->text.cap > keep) {
        ngx_http_reductrai_buf_free(&enc->text);
    }

    ngx_http_reductrai_pb_trim(&enc->pb, keep);
}


void
ngx_http_reductrai_record_encoder_free(
    ngx_http_reductrai_record_encoder_t *enc)
{
    ngx_http_reductrai_buf_free(&enc->decoded);
    ngx_http_reductrai_buf_free(&enc->minified);
    ngx_http_reductrai_buf_free(&enc->text);
    ngx_http_reductrai_pb_trim(&enc->pb, 0);
}


size_t
ngx_http_reductrai_redact_uri_len(const u_char *uri, size_t len)
{
    return ngx_http_reductrai_redact(NULL, uri, len);
}


size_t
ngx_http_reductrai_redact_uri(u_char *dst, const u_char *uri, size_t len)
{
    return ngx_http_reductrai_redact(dst, uri, len);
}


/*
 * Credentials hide in three places of a request target: the value of a
 * query parameter whose name is a credential name, however it is spelled
 * ("api%5Fkey", parameters separated by ';' as well as '&'), and the path
 * segment after an "input" segment (Datadog's logs intake v1 takes its API
 * key as /v1/input/<KEY>).  The scanner returns them one at a time, in
 * order; redaction and api_key_fp both use it, so what one finds the other
 * cannot miss.  Names are compared after percent-decoding, case
 * insensitively; "%2F" separates path segments as '/' does, and empty,
 * "." and ".." segments are skipped, so /v1//input/./KEY, /v1/input/../
 * input/KEY and /v1%2Finput%2FKEY are all caught.  The path rule does not
 * require "v1" before "input": a false positive only hides a harmless path
 * segment, a false negative archives a key.
 */

static int
ngx_http_reductrai_scan_secret(ngx_http_reductrai_scan_t *scan,
    const u_char **start, const u_char **end, unsigned *api_key)
{
    const u_char                           *p, *e, *seg, *stop, *eq;
    const ngx_http_reductrai_credential_t  *c;

    p = scan->p;

    /* the path: segments separated by '/' or "%2F" */

    while (p < scan->query) {
        seg = p;

        while (p < scan->query && *p != '/'
               && !ngx_http_reductrai_is_pct_slash(p, scan->query))
        {
            p++;
        }

        e = p;

        if (p < scan->query) {
            p += (*p == '/') ? 1 : 3;
        }

        stop = memchr(seg, ';', e - seg);
        if (stop == NULL) {
            stop = e;
        }

        if (ngx_http_reductrai_name_eq(seg, stop, "", 0)
            || ngx_http_reductrai_name_eq(seg, stop, ".", 1)
            || ngx_http_reductrai_name_eq(seg, stop, "..", 2))
        {
            continue;
        }

        if (ngx_http_reductrai_name_eq(seg, stop, "input", 5)) {
            scan->input = 1;
            continue;
        }

        if (scan->input) {
            scan->input = 0;
            scan->p = p;
            *start = seg;
            *end = e;
            *api_key = 1;
            return 1;
        }
    }

    if (p == scan->query && p < scan->end) {
        p++;  /* the '?' */
    }

    /* the query: name=value pairs separated by '&' or ';' */

    while (p < scan->end) {
        seg = p;

        while (p < scan->end && *p != '&' && *p != ';') {
            p++;
        }

        e = p;

        if (p < scan->end) {
            p++;
        }

        eq = memchr(seg, '=', e - seg);

        if (eq == NULL || eq + 1 == e) {
            continue;
        }

        c = ngx_http_reductrai_credential(seg, eq - seg);

        if (c != NULL) {
            scan->p = p;
            *start = eq + 1;
            *end = e;
            *api_key = c->api_key;
            return 1;
        }
    }

    scan->p = scan->end;

    return 0;
}


static void
ngx_http_reductrai_scan_init(ngx_http_reductrai_scan_t *scan,
    const u_char *uri, size_t len)
{
    const u_char  *q;

    q = (len != 0) ? memchr(uri, '?', len) : NULL;

    scan->p = uri;
    scan->end = uri + len;
    scan->query = (q != NULL) ? q : scan->end;
    scan->input = 0;
}


/*
 * Walks the target once, either writing (dst != NULL) or only counting, so
 * the length is exact and both always agree.  An empty value is left as it
 * is: there is nothing to hide, and "REDACTED" would suggest a credential.
 */

static size_t
ngx_http_reductrai_redact(u_char *dst, const u_char *uri, size_t len)
{
    size_t                     size;
    unsigned                   api_key;
    const u_char              *p, *start, *end;
    ngx_http_reductrai_scan_t  scan;

    if (len == 0) {
        return 0;
    }

    ngx_http_reductrai_scan_init(&scan, uri, len);

    p = uri;
    size = 0;

    while (ngx_http_reductrai_scan_secret(&scan, &start, &end, &api_key)) {
        size += (start - p) + sizeof(NGX_HTTP_REDUCTRAI_REDACTED) - 1;

        if (dst != NULL) {
            dst = ngx_http_reductrai_cpymem(dst, p, start - p);
            dst = ngx_http_reductrai_cpystr(dst,
                                            NGX_HTTP_REDUCTRAI_REDACTED);
        }

        p = end;
    }

    size += (uri + len) - p;

    if (dst != NULL) {
        (void) ngx_http_reductrai_cpymem(dst, p, (uri + len) - p);
    }

    return size;
}


ngx_http_reductrai_str_t
ngx_http_reductrai_uri_credential(const u_char *uri, size_t len)
{
    unsigned                   api_key;
    const u_char              *start, *end;
    ngx_http_reductrai_str_t   value;
    ngx_http_reductrai_scan_t  scan;

    value.data = NULL;
    value.len = 0;

    ngx_http_reductrai_scan_init(&scan, uri, len);

    while (ngx_http_reductrai_scan_secret(&scan, &start, &end, &api_key)) {
        if (api_key) {
            value.data = start;
            value.len = end - start;
            break;
        }
    }

    return value;
}


static unsigned
ngx_http_reductrai_is_pct_slash(const u_char *p, const u_char *end)
{
    return end - p >= 3 && p[0] == '%' && p[1] == '2'
           && (p[2] == 'F' || p[2] == 'f');
}


/*
 * Whether [p, end) percent-decodes to name (ASCII, case insensitive).  A
 * malformed escape is compared as the literal '%' it stands for.
 */

static unsigned
ngx_http_reductrai_name_eq(const u_char *p, const u_char *end,
    const char *name, size_t len)
{
    int     hi, lo;
    u_char  c;
    size_t  i;

    for (i = 0; p < end; i++) {
        c = *p++;

        if (c == '%' && end - p >= 2) {
            hi = ngx_http_reductrai_hexval(p[0]);
            lo = ngx_http_reductrai_hexval(p[1]);

            if (hi >= 0 && lo >= 0) {
                c = (u_char) (hi * 16 + lo);
                p += 2;
            }
        }

        if (i == len) {
            return 0;
        }

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != (u_char) name[i]) {
            return 0;
        }
    }

    return i == len;
}


static const ngx_http_reductrai_credential_t *
ngx_http_reductrai_credential(const u_char *name, size_t len)
{
    const ngx_http_reductrai_credential_t  *c;

    for (c = ngx_http_reductrai_credentials; c->name != NULL; c++) {
        if (ngx_http_reductrai_name_eq(name, name + len, c->name, c->len)) {
            return c;
        }
    }

    return NULL;
}


void
ngx_http_reductrai_api_key_fp(u_char out[NGX_HTTP_REDUCTRAI_FP_LEN],
    const u_char *key, size_t len)
{
    u_char  md[SHA256_DIGEST_LENGTH];

    SHA256(key, len, md);

    ngx_http_reductrai_hex(out, md, NGX_HTTP_REDUCTRAI_FP_LEN / 2);
}


/*
 * "Bearer abc" and "Splunk abc" give "abc"; a value without a scheme is
 * the credential itself.  Nothing (data == NULL) when no token is left,
 * as in "Bearer ".
 */

ngx_http_reductrai_str_t
ngx_http_reductrai_authorization_token(const u_char *value, size_t len)
{
    const u_char              *p, *end;
    ngx_http_reductrai_str_t   token;

    token.data = NULL;
    token.len = 0;

    if (value == NULL || len == 0) {
        return token;
    }

    end = value + len;

    while (value < end && (*value == ' ' || *value == '\t')) {
        value++;
    }

    for (p = value; p < end; p++) {
        if (*p == ' ' || *p == '\t') {
            break;
        }
    }

    if (p == end) {
        p = value;

    } else {
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }
    }

    if (p < end) {
        token.data = p;
        token.len = end - p;
    }

    return token;
}


size_t
ngx_http_reductrai_base64_encode(u_char *dst, const u_char *src, size_t len)
{
    u_char        *d;
    uint32_t       v;
    const u_char  *end;

    d = dst;

    if (len == 0) {
        /* an empty bytes field of protobuf-c has no data pointer */
        return 0;
    }

    end = src + len - len % 3;

    while (src < end) {
        v = ((uint32_t) src[0] << 16) | ((uint32_t) src[1] << 8) | src[2];

        d[0] = ngx_http_reductrai_b64[v >> 18];
        d[1] = ngx_http_reductrai_b64[(v >> 12) & 0x3f];
        d[2] = ngx_http_reductrai_b64[(v >> 6) & 0x3f];
        d[3] = ngx_http_reductrai_b64[v & 0x3f];

        src += 3;
        d += 4;
    }

    switch (len % 3) {

    case 1:
        v = (uint32_t) src[0] << 16;

        *d++ = ngx_http_reductrai_b64[v >> 18];
        *d++ = ngx_http_reductrai_b64[(v >> 12) & 0x3f];
        *d++ = '=';
        *d++ = '=';
        break;

    case 2:
        v = ((uint32_t) src[0] << 16) | ((uint32_t) src[1] << 8);

        *d++ = ngx_http_reductrai_b64[v >> 18];
        *d++ = ngx_http_reductrai_b64[(v >> 12) & 0x3f];
        *d++ = ngx_http_reductrai_b64[(v >> 6) & 0x3f];
        *d++ = '=';
        break;
    }

    return d - dst;
}


static u_char *
ngx_http_reductrai_sprint_size(u_char *p, size_t n)
{
    u_char  tmp[24], *t;

    t = tmp + sizeof(tmp);

    do {
        *--t = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return ngx_http_reductrai_cpymem(p, t, tmp + sizeof(tmp) - t);
}
