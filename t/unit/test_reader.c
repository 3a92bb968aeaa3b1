
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Unit tests of the streaming object reader and the record view.
 */


#include "unit.h"

#include "ngx_http_reductrai_reader.h"
#include "ngx_http_reductrai_segment.h"

#include <openssl/evp.h>
#include <zstd.h>


typedef struct {
    size_t   lines;
    size_t   bytes;
    size_t   stop_after;
    char     last[256];
    size_t   longest;
} lines_t;


static size_t trailer_frame(u_char *frame, const char *json);


static int
on_line(void *data, const u_char *line, size_t len)
{
    lines_t  *l = data;

    l->lines++;
    l->bytes += len + 1;
    l->longest = len > l->longest ? len : l->longest;
    snprintf(l->last, sizeof(l->last), "%.*s", (int) (len < 200 ? len : 200),
             (const char *) line);

    return l->stop_after && l->lines >= l->stop_after;
}


/* an object as the module seals it: zstd frame with checksum, trailer */

static size_t
make_object(u_char *out, size_t size, const char *ndjson, int checksum)
{
    size_t                        n, t, len;
    unsigned int                  dlen;
    ZSTD_CCtx                    *c;
    EVP_MD_CTX                   *sha;
    ngx_http_reductrai_trailer_t  tr;

    len = strlen(ndjson);

    c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum);
    n = ZSTD_compress2(c, out, size, ndjson, len);
    ZSTD_freeCCtx(c);

    if (ZSTD_isError(n)) {
        return 0;
    }

    memset(&tr, 0, sizeof(tr));
    tr.count = 0;

    for (t = 0; t < len; t++) {
        tr.count += ndjson[t] == '\n';
    }

    tr.raw_bytes = len;
    tr.first_ms = 1764066600000;
    tr.last_ms = 1764066601000;

    sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    EVP_DigestUpdate(sha, ndjson, len);
    EVP_DigestFinal_ex(sha, tr.sha256, &dlen);
    EVP_MD_CTX_free(sha);
    tr.has_sha256 = 1;          /* a version 1 trailer, as older archives */

    t = ngx_http_reductrai_trailer_build(out + n, size - n, &tr);

    return t ? n + t : 0;
}


static ngx_http_reductrai_read_result_t
read_chunks(const u_char *p, size_t len, size_t chunk, lines_t *l,
    unsigned flags)
{
    size_t                            i, n;
    ngx_http_reductrai_reader_t       r;
    ngx_http_reductrai_read_result_t  res;

    static char  error[160];

    memset(l, 0, sizeof(lines_t));

    if (ngx_http_reductrai_reader_init(&r, flags, on_line, l) != 0) {
        memset(&res, 0, sizeof(res));
        res.rc = NGX_HTTP_REDUCTRAI_READ_NOMEM;
        return res;
    }

    for (i = 0; i < len; i += n) {
        n = len - i < chunk ? len - i : chunk;

        if (ngx_http_reductrai_reader_feed(&r, p + i, n) != 0) {
            break;
        }
    }

    ngx_http_reductrai_reader_finish(&r, &res);

    /* the error text lives in the reader: copy what the tests look at */
    snprintf(error, sizeof(error), "%s", res.error);
    res.error = error;

    ngx_http_reductrai_reader_free(&r);

    return res;
}


static void
test_reader(void)
{
    int                                i;
    char                              *ndjson, *big;
    u_char                            *obj;
    size_t                             len, olen, pos;
    lines_t                            l;
    unsigned int                       dlen;
    u_char                             sha[32];
    EVP_MD_CTX                        *ctx;
    ngx_http_reductrai_read_result_t   res;

    ndjson = malloc(1 << 20);
    obj = malloc(1 << 21);
    pos = 0;

    for (i = 0; i < 2000; i++) {
        pos += (size_t) sprintf(ndjson + pos,
                                "{\"id\":\"w-1-2-%d\",\"ts\":\"2025-11-25T10:"
                                "30:00.000Z\",\"n\":%d,\"pad\":\"%0*d\"}\n",
                                i + 1, i, i % 97, 0);
    }

    len = pos;
    olen = make_object(obj, 1 << 21, ndjson, 1);
    ok(olen > 0, "object built (%zu bytes for %zu raw)", olen, len);

    ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, ndjson, len);
    EVP_DigestFinal_ex(ctx, sha, &dlen);
    EVP_MD_CTX_free(ctx);

    res = read_chunks(obj, olen, olen, &l, NGX_HTTP_REDUCTRAI_READ_SHA256);
    is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_OK, "whole object: ok (%s)",
           res.error);
    is_int(l.lines, 2000, "2000 lines delivered");
    is_int(res.lines, 2000, "2000 lines counted");
    is_int(l.bytes, len, "line bytes + newlines = raw bytes");
    is_int(res.raw_bytes, len, "raw bytes");
    is_int(res.in_bytes, olen, "compressed bytes");
    ok(res.has_trailer, "trailer found in the tail");
    is_int(res.trailer.count, 2000, "trailer count");
    is_int(res.trailer.raw_bytes, len, "trailer raw_bytes");
    ok(memcmp(res.sha256, sha, 32) == 0, "sha256 of decompressed bytes");
    ok(memcmp(res.trailer.sha256, sha, 32) == 0, "trailer sha256");
    is_int(res.no_checksum, 0, "frame has a checksum");
    ok(strstr(l.last, "w-1-2-2000") != NULL, "last line: %s", l.last);

    res = read_chunks(obj, olen, 1, &l, NGX_HTTP_REDUCTRAI_READ_SHA256);
    is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_OK, "byte by byte: ok");
    is_int(l.lines, 2000, "byte by byte: 2000 lines");
    ok(res.has_trailer && memcmp(res.sha256, sha, 32) == 0,
       "byte by byte: trailer and sha256");

    res = read_chunks(obj, olen, 777, &l, 0);
    is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_OK, "777-byte pieces: ok");
    is_int(l.lines, 2000, "777-byte pieces: 2000 lines");

    /* truncated anywhere, in the frame or in the trailer: truncated */
    for (pos = 1; pos < olen; pos += olen / 7) {
        res = read_chunks(obj, pos, 4096, &l, 0);
        is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_TRUNCATED,
               "cut at %zu of %zu: truncated (%s)", pos, olen, res.error);
    }

    res = read_chunks(obj, olen - 1, 4096, &l, 0);
    is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_TRUNCATED,
           "last byte of the trailer cut: truncated (%s)", res.error);

    res = read_chunks(obj, olen - 200, 4096, &l, 0);
    is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_TRUNCATED,
           "cut inside the frame: truncated (%s)", res.error);
    ok(strstr(res.error, "truncated") != NULL, "message says truncated");

    res = read_chunks(obj, 0, 4096, &l, 0);
    is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_TRUNCATED, "empty: truncated");

    /* a flipped byte in the middle */
    obj[olen / 2] ^= 0x5a;
    res = read_chunks(obj, olen, 4096, &l, 0);
    is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_CORRUPT,
           "byte flipped in the middle: corrupt (%s)", res.error);
    ok(strstr(res.error, "zstd: ") == res.error, "zstd's reason given");
    obj[olen / 2] ^= 0x5a;

    /* anywhere after the frame header, before the trailer: corrupt */
    {
        size_t  bad, tlen;
        int     corrupt;

        tlen = ngx_http_reductrai_trailer_parse(obj, olen, &res.trailer);
        bad = 0;
        corrupt = 0;

        for (pos = 20; pos < olen - tlen; pos += 29) {
            obj[pos] ^= 0x01;
            res = read_chunks(obj, olen, 4096, &l, 0);
            obj[pos] ^= 0x01;

            corrupt++;

            if (res.rc != NGX_HTTP_REDUCTRAI_READ_CORRUPT) {
                bad++;
                printf("# flip at %zu: rc %d (%s)\n", pos, res.rc,
                       res.error);
            }
        }

        is_int(bad, 0, "%d single-bit flips in the frame: all corrupt",
               corrupt);
    }

    /* the handler stops */
    memset(&l, 0, sizeof(l));
    {
        ngx_http_reductrai_reader_t  r;

        l.stop_after = 10;
        ngx_http_reductrai_reader_init(&r, 0, on_line, &l);
        is_int(ngx_http_reductrai_reader_feed(&r, obj, olen), -1,
               "feed fails once the handler stops");
        ngx_http_reductrai_reader_finish(&r, &res);
        is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_STOPPED, "stopped");
        is_int(l.lines, 10, "10 lines, then stopped");

        /* reset: the same reader reads the next object */
        l.stop_after = 0;
        l.lines = 0;
        ok(ngx_http_reductrai_reader_reset(&r) == 0, "reset");
        ngx_http_reductrai_reader_feed(&r, obj, olen);
        ngx_http_reductrai_reader_finish(&r, &res);
        is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_OK, "after reset: ok");
        is_int(l.lines, 2000, "after reset: 2000 lines");
        ngx_http_reductrai_reader_free(&r);
    }

    /* no checksum, no trailing newline */
    olen = make_object(obj, 1 << 21, "{\"a\":1}\n{\"b\":2}", 0);
    res = read_chunks(obj, olen, 3, &l, 0);
    is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_PARTIAL_LINE,
           "data after the last newline: partial line (%s)", res.error);
    is_int(l.lines, 1, "one complete line");
    is_int(res.no_checksum, 1, "frame without checksum noticed");

    /* a line longer than any piece */
    big = malloc((3 << 20) + 1);
    memset(big, 'x', 3 << 20);
    memcpy(big, "{\"body\":\"", 9);
    memcpy(big + (3 << 20) - 3, "\"}\n", 3);
    big[3 << 20] = '\0';

    olen = make_object(obj, 1 << 21, big, 1);
    ok(olen > 0, "3 MB line compressed to %zu bytes", olen);
    res = read_chunks(obj, olen, 1000, &l, 0);
    is_int(res.rc, NGX_HTTP_REDUCTRAI_READ_OK, "3 MB line: ok");
    is_int(l.longest, (3 << 20) - 1, "3 MB line delivered whole");

    free(big);
    free(ndjson);
    free(obj);
}


/*
 * Trailer versions: 2 (what the module writes) may leave out sha256, 1 must
 * carry it; both parse.
 */
static void
test_trailer_versions(void)
{
    size_t                        n;
    char                          json[NGX_HTTP_REDUCTRAI_TRAILER_MAX];
    u_char                        frame[NGX_HTTP_REDUCTRAI_TRAILER_MAX];
    const char                   *v1_bare;
    ngx_http_reductrai_trailer_t  tr, back;

    memset(&tr, 0, sizeof(tr));
    tr.count = 3;
    tr.raw_bytes = 120;
    tr.first_ms = 1764066600000;
    tr.last_ms = 1764066601000;

    n = ngx_http_reductrai_trailer_build(frame, sizeof(frame), &tr);
    ok(n > 0, "version 2 trailer built");
    ok(memcmp(frame + 8, "{\"v\":2,", 7) == 0, "it says version 2");
    snprintf(json, sizeof(json), "%.*s", (int) (n - 16), frame + 8);
    ok(strstr(json, "sha256") == NULL, "without sha256: %s", json);
    is_int(ngx_http_reductrai_trailer_parse(frame, n, &back), n,
           "version 2 parsed");
    is_int(back.count, 3, "count");
    is_int(back.raw_bytes, 120, "raw_bytes");
    is_int(back.has_sha256, 0, "no digest");

    memset(tr.sha256, 0xab, 32);
    tr.has_sha256 = 1;
    n = ngx_http_reductrai_trailer_build(frame, sizeof(frame), &tr);
    ok(memcmp(frame + 8, "{\"v\":1,", 7) == 0, "with a digest: version 1");
    is_int(ngx_http_reductrai_trailer_parse(frame, n, &back), n,
           "version 1 parsed");
    ok(back.has_sha256 && memcmp(back.sha256, tr.sha256, 32) == 0,
       "its digest read back");

    /* version 1 without its digest, and a digest that is not hex */
    v1_bare = "{\"v\":1,\"count\":3,\"first_ts\":\"2025-11-25T10:30:00.000Z\","
              "\"last_ts\":\"2025-11-25T10:30:01.000Z\",\"raw_bytes\":120}";
    n = trailer_frame(frame, v1_bare);
    is_int(ngx_http_reductrai_trailer_parse(frame, n, &back), 0,
           "version 1 without sha256: rejected");

    n = trailer_frame(frame, "{\"v\":2,\"count\":3,\"first_ts\":"
                      "\"2025-11-25T10:30:00.000Z\",\"last_ts\":"
                      "\"2025-11-25T10:30:01.000Z\",\"raw_bytes\":120,"
                      "\"sha256\":\"zz\"}");
    is_int(ngx_http_reductrai_trailer_parse(frame, n, &back), 0,
           "a malformed sha256: rejected");

    n = trailer_frame(frame, "{\"v\":3,\"count\":3,\"first_ts\":"
                      "\"2025-11-25T10:30:00.000Z\",\"last_ts\":"
                      "\"2025-11-25T10:30:01.000Z\",\"raw_bytes\":120}");
    is_int(ngx_http_reductrai_trailer_parse(frame, n, &back), 0,
           "an unknown version: rejected");
}


/* a trailer frame around the given JSON, laid out as DESIGN.md says */
static size_t
trailer_frame(u_char *frame, const char *json)
{
    size_t  len, total;

    len = strlen(json);
    total = 8 + len + 8;

    ngx_http_reductrai_put_le32(frame, NGX_HTTP_REDUCTRAI_TRAILER_MAGIC);
    ngx_http_reductrai_put_le32(frame + 4, (uint32_t) (total - 8));
    memcpy(frame + 8, json, len);
    ngx_http_reductrai_put_le32(frame + 8 + len, (uint32_t) total);
    memcpy(frame + total - 4, NGX_HTTP_REDUCTRAI_FOOTER_MAGIC, 4);

    return total;
}


static void
test_view(void)
{
    const char                        *err;
    ngx_http_reductrai_record_view_t   v;

    static const char  line[] =
        "{\"id\":\"web-1-42-1764066600000-7\","
        "\"ts\":\"2025-11-25T10:30:00.250Z\","
        "\"stream\":\"metrics\",\"method\":\"POST\","
        "\"uri\":\"/api/v1/series?api_key=REDACTED&a=\\\"b\\\"\","
        "\"host\":\"h\",\"client\":\"127.0.0.1\",\"request_id\":\"r\","
        "\"content_type\":\"application/json\",\"content_encoding\":null,"
        "\"user_agent\":null,\"api_key_fp\":\"ba7816bf\",\"forwarded\":true,"
        "\"size\":42,\"body\":{\"s\":[\"}\\\\\",{\"x\":\"]\"}],\"n\":-1.5e3}}";

    static const char  b64[] =
        "{\"id\":\"a-1-2-3\",\"ts\":\"2025-11-25T10:30:00.000Z\","
        "\"forwarded\":false,\"size\":3,\"body_b64\":\"AAEC\","
        "\"decode_error\":\"invalid_gzip\"}";

    ok(ngx_http_reductrai_record_view((u_char *) line, sizeof(line) - 1, &v,
                                      &err)
       == 0, "a record line is viewed");
    is_mem(v.id.data, v.id.len, "web-1-42-1764066600000-7", 24, "id");
    is_int(v.ts_ms, 1764066600250LL, "ts parsed");
    is_mem(v.stream.data, v.stream.len, "metrics", 7, "stream");
    is_mem(v.uri.data, v.uri.len,
           "/api/v1/series?api_key=REDACTED&a=\\\"b\\\"",
           strlen("/api/v1/series?api_key=REDACTED&a=\\\"b\\\""),
           "uri still escaped");
    ok(v.content_encoding.data == NULL, "null is absent");
    ok(v.user_agent.data == NULL, "null user_agent");
    is_mem(v.api_key_fp.data, v.api_key_fp.len, "ba7816bf", 8, "api_key_fp");
    is_int(v.forwarded, 1, "forwarded");
    is_int(v.size, 42, "size");
    is_mem(v.body.data, v.body.len,
           "{\"s\":[\"}\\\\\",{\"x\":\"]\"}],\"n\":-1.5e3}",
           strlen("{\"s\":[\"}\\\\\",{\"x\":\"]\"}],\"n\":-1.5e3}"),
           "body: the raw JSON value, strings with brackets skipped");
    ok(v.body_b64.data == NULL, "no body_b64");
    ok(v.decode_error.data == NULL, "no decode_error");

    ok(ngx_http_reductrai_record_view((u_char *) b64, sizeof(b64) - 1, &v,
                                      &err)
       == 0, "a body_b64 record is viewed");
    is_mem(v.body_b64.data, v.body_b64.len, "AAEC", 4, "body_b64");
    is_mem(v.decode_error.data, v.decode_error.len, "invalid_gzip", 12,
           "decode_error after the body");
    is_int(v.forwarded, 0, "forwarded false");
    ok(v.uri.data == NULL && v.method.data == NULL, "absent fields");

    ok(ngx_http_reductrai_record_view((u_char *) "[1]", 3, &v, &err) == -1,
       "an array is not a record: %s", err);
    ok(ngx_http_reductrai_record_view((u_char *) "{\"a\":1} x", 9, &v, &err)
       == -1, "data after the object: %s", err);
    ok(ngx_http_reductrai_record_view((u_char *) "{\"uri\":5}", 9, &v, &err)
       == -1, "a string field with a number: %s", err);
    ok(ngx_http_reductrai_record_view((u_char *) "{\"a\":\"x}", 8, &v, &err)
       == -1, "unterminated string: %s", err);
    ok(ngx_http_reductrai_record_view((u_char *) "{\"a\":}", 6, &v, &err)
       == -1, "missing value: %s", err);
    ok(ngx_http_reductrai_record_view((u_char *) "{\"body\":{\"a\":[}", 15,
                                      &v, &err)
       == -1, "unbalanced body: %s", err);
    ok(ngx_http_reductrai_record_view((u_char *) "{}", 2, &v, &err) == 0
       && v.id.data == NULL && v.size == -1, "empty object");
}


static void
test_unescape(void)
{
    u_char   out[64];
    ssize_t  n;

    n = ngx_http_reductrai_json_unescape(out, (u_char *) "a\\\"b\\\\c\\/d",
                                         10);
    is_mem(out, (size_t) n, "a\"b\\c/d", 7, "simple escapes");

    n = ngx_http_reductrai_json_unescape(out, (u_char *) "\\n\\t\\u0001", 10);
    is_mem(out, (size_t) n, "\n\t\x01", 3, "control characters");

    n = ngx_http_reductrai_json_unescape(out, (u_char *) "x\\u00ffy", 8);
    is_mem(out, (size_t) n, "x\xffy", 3,
           "\\u00XX is the raw byte (the encoder's invalid UTF-8)");

    n = ngx_http_reductrai_json_unescape(out, (u_char *) "\\u20ac", 6);
    is_mem(out, (size_t) n, "\xe2\x82\xac", 3, "\\u20ac is UTF-8");

    n = ngx_http_reductrai_json_unescape(out, (u_char *) "\\ud83d\\ude00",
                                         12);
    is_mem(out, (size_t) n, "\xf0\x9f\x98\x80", 4, "surrogate pair");

    is_int(ngx_http_reductrai_json_unescape(out, (u_char *) "\\x", 2), -1,
           "unknown escape");
    is_int(ngx_http_reductrai_json_unescape(out, (u_char *) "\\u12", 4), -1,
           "short \\u");
    is_int(ngx_http_reductrai_json_unescape(out, (u_char *) "\\ud83d", 6), -1,
           "lone high surrogate");
    is_int(ngx_http_reductrai_json_unescape(out, (u_char *) "a\\", 2), -1,
           "backslash at the end");
}


static void
test_base64(void)
{
    u_char   out[16];
    ssize_t  n;

    static const char  *v[][2] = {
        { "", "" }, { "Zg==", "f" }, { "Zm8=", "fo" }, { "Zm9v", "foo" },
        { "Zm9vYg==", "foob" }, { "Zm9vYmE=", "fooba" },
        { "Zm9vYmFy", "foobar" }, { "AAEC/w==", "\x00\x01\x02\xff" }
    };
    static const size_t  vlen[] = { 0, 1, 2, 3, 4, 5, 6, 4 };

    size_t  i;

    for (i = 0; i < sizeof(vlen) / sizeof(vlen[0]); i++) {
        n = ngx_http_reductrai_body_b64_decode(out, (u_char *) v[i][0],
                                             strlen(v[i][0]));
        is_int(n, vlen[i], "base64 \"%s\" length", v[i][0]);
        is_mem(out, n < 0 ? 0 : (size_t) n, v[i][1], vlen[i],
               "base64 \"%s\"", v[i][0]);
    }

    is_int(ngx_http_reductrai_body_b64_decode(out, (u_char *) "Zm9", 3), -1,
           "length not a multiple of 4");
    is_int(ngx_http_reductrai_body_b64_decode(out, (u_char *) "Zm-v", 4), -1,
           "invalid character");
    is_int(ngx_http_reductrai_body_b64_decode(out, (u_char *) "Z===", 4), -1,
           "too much padding");
}


int
main(void)
{
    test_reader();
    test_trailer_versions();
    test_view();
    test_unescape();
    test_base64();

    return done_testing();
}
