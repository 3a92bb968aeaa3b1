
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * One archived record: head, body, redaction, credential fingerprints.
 */


#include "ngx_http_reductrai_record.h"

#include "unit.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>


#define S(s)  { (const u_char *) (s), sizeof(s) - 1 }
#define NIL   { NULL, 0 }


typedef struct {
    ngx_http_reductrai_buf_t   buf;
    size_t                     calls;
    size_t                     largest;
    int                        fail_at;     /* fail this call, 1-based */
} sink_t;


static int sink(void *data, const u_char *p, size_t len);
static const char *body(ngx_http_reductrai_record_encoder_t *enc,
    ngx_http_reductrai_encoding_e coding, const void *raw, size_t len,
    size_t max, size_t *size);
static size_t gzip_pack(const void *in, size_t len, u_char *out,
    size_t size);
static void test_head(void);
static void test_body(void);
static void test_big(void);
static void test_line(void);
static void test_base64(void);
static void test_redact(void);
static void test_credentials(void);


static sink_t  out;


static int
sink(void *data, const u_char *p, size_t len)
{
    sink_t  *s;

    s = data;
    s->calls++;

    if (s->fail_at && (int) s->calls == s->fail_at) {
        errno = EIO;
        return -1;
    }

    if (len > s->largest) {
        s->largest = len;
    }

    if (ngx_http_reductrai_buf_reserve(&s->buf, len + 1) != 0) {
        return -1;
    }

    memcpy(s->buf.data + s->buf.len, p, len);
    s->buf.len += len;
    s->buf.data[s->buf.len] = '\0';

    return 0;
}


/* record_body() into the global sink; returns what it wrote, or NULL */

static const char *
body(ngx_http_reductrai_record_encoder_t *enc,
    ngx_http_reductrai_encoding_e coding, const void *raw, size_t len,
    size_t max, size_t *size)
{
    out.buf.len = 0;
    out.calls = 0;
    out.largest = 0;
    out.fail_at = 0;

    if (ngx_http_reductrai_buf_reserve(&out.buf, 1) != 0) {
        return NULL;
    }

    out.buf.data[0] = '\0';

    if (ngx_http_reductrai_record_body(enc, coding, 0, raw, len, max, sink,
                                       &out, size)
        != 0)
    {
        return NULL;
    }

    return (const char *) out.buf.data;
}


static size_t
gzip_pack(const void *in, size_t len, u_char *buf, size_t size)
{
    z_stream  z;

    memset(&z, 0, sizeof(z_stream));
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);

    z.next_in = (u_char *) in;
    z.avail_in = len;
    z.next_out = buf;
    z.avail_out = size;

    deflate(&z, Z_FINISH);
    size = z.total_out;
    deflateEnd(&z);

    return size;
}


static void
test_head(void)
{
    u_char                            buf[4096], *p;
    size_t                            len;
    const char                       *want;
    ngx_http_reductrai_record_meta_t  meta = {
        S("web-1-4242-1764098183000-7"),
        S("2025-11-25T19:16:23.123Z"),
        S("metrics"),
        S("POST"),
        S("/api/v2/series?api_key=REDACTED"),
        S("intake.example.com"),
        S("10.0.0.7"),
        S("5f0c1e"),
        S("application/json"),
        S("gzip"),
        S("datadog-agent/7.50.0"),
        S("3eb1bd43"),
        1
    };

    want = "{\"id\":\"web-1-4242-1764098183000-7\","
           "\"ts\":\"2025-11-25T19:16:23.123Z\",\"stream\":\"metrics\","
           "\"method\":\"POST\",\"uri\":\"/api/v2/series?api_key=REDACTED\","
           "\"host\":\"intake.example.com\",\"client\":\"10.0.0.7\","
           "\"request_id\":\"5f0c1e\",\"content_type\":\"application/json\","
           "\"content_encoding\":\"gzip\","
           "\"user_agent\":\"datadog-agent/7.50.0\","
           "\"api_key_fp\":\"3eb1bd43\",\"forwarded\":true,";

    len = ngx_http_reductrai_record_head_len(&meta);
    p = ngx_http_reductrai_record_head(buf, &meta);

    is_mem(buf, p - buf, want, strlen(want), "head with every field");
    ok(len >= (size_t) (p - buf), "head_len %zu >= %zu", len,
       (size_t) (p - buf));

    /* absent fields are null, present but empty ones "" */

    memset(&meta, 0, sizeof(meta));
    meta.id = (ngx_http_reductrai_str_t) S("i-1-2-3");
    meta.ts = (ngx_http_reductrai_str_t) S("2025-11-25T19:16:23.123Z");
    meta.stream = (ngx_http_reductrai_str_t) S("logs");
    meta.method = (ngx_http_reductrai_str_t) S("PUT");
    meta.uri = (ngx_http_reductrai_str_t) S("/");
    meta.host = (ngx_http_reductrai_str_t) { (u_char *) "", 0 };

    want = "{\"id\":\"i-1-2-3\",\"ts\":\"2025-11-25T19:16:23.123Z\","
           "\"stream\":\"logs\",\"method\":\"PUT\",\"uri\":\"/\","
           "\"host\":\"\",\"client\":null,\"request_id\":null,"
           "\"content_type\":null,\"content_encoding\":null,"
           "\"user_agent\":null,\"api_key_fp\":null,\"forwarded\":false,";

    len = ngx_http_reductrai_record_head_len(&meta);
    p = ngx_http_reductrai_record_head(buf, &meta);

    is_mem(buf, p - buf, want, strlen(want), "head with absent fields");
    ok(len >= (size_t) (p - buf), "head_len %zu >= %zu", len,
       (size_t) (p - buf));

    /* what a client controls is escaped */

    meta.uri = (ngx_http_reductrai_str_t) S("/a\"b\\c?x=\x01");
    meta.user_agent = (ngx_http_reductrai_str_t) S("bad\xff\xfe agent\n");
    meta.request_id = (ngx_http_reductrai_str_t) S("caf\xc3\xa9");

    want = "{\"id\":\"i-1-2-3\",\"ts\":\"2025-11-25T19:16:23.123Z\","
           "\"stream\":\"logs\",\"method\":\"PUT\","
           "\"uri\":\"/a\\\"b\\\\c?x=\\u0001\","
           "\"host\":\"\",\"client\":null,\"request_id\":\"caf\xc3\xa9\","
           "\"content_type\":null,\"content_encoding\":null,"
           "\"user_agent\":\"bad\\u00ff\\u00fe agent\\n\","
           "\"api_key_fp\":null,\"forwarded\":false,";

    len = ngx_http_reductrai_record_head_len(&meta);
    p = ngx_http_reductrai_record_head(buf, &meta);

    is_mem(buf, p - buf, want, strlen(want), "head fields escaped");
    ok(len >= (size_t) (p - buf), "head_len %zu >= %zu", len,
       (size_t) (p - buf));
}


static void
test_body(void)
{
    int                                  i;
    u_char                               gz[4096], zs[4096], big[1000];
    size_t                               size, n;
    const char                          *got;
    ngx_http_reductrai_record_encoder_t  enc;

    static const struct {
        const char  *name;
        const char  *body;
    } paths[] = {
        { "JSON", "[1]" },
        { "base64", "abc" },
    };

    memset(&enc, 0, sizeof(enc));

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_IDENTITY, "{ \"a\" : 1 }", 11,
               1024, &size);
    is_str(got, "\"size\":11,\"body\":{\"a\":1}}\n", "JSON body minified");
    is_int(size, 11, "size is the decoded size, not the minified one");

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_IDENTITY, "hello", 5, 1024,
               &size);
    is_str(got, "\"size\":5,\"body_b64\":\"aGVsbG8=\"}\n",
           "non-JSON body in base64");
    is_int(size, 5, "size of non-JSON body");

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_IDENTITY, "", 0, 1024, &size);
    is_str(got, "\"size\":0,\"body_b64\":\"\"}\n", "empty body");
    is_int(size, 0, "size of empty body");

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_IDENTITY, "{\"a\":1} x", 9,
               1024, &size);
    is_str(got, "\"size\":9,\"body_b64\":\"eyJhIjoxfSB4\"}\n",
           "JSON with trailing garbage in base64");

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_IDENTITY, "\"caf\xc3\xa9\"", 7,
               1024, &size);
    is_str(got, "\"size\":7,\"body\":\"caf\xc3\xa9\"}\n",
           "a JSON string body");

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_IDENTITY, "\"\xc3\"", 3,
               1024, &size);
    is_str(got, "\"size\":3,\"body_b64\":\"IsMi\"}\n",
           "invalid UTF-8 in JSON goes to base64");

    /* gzip */

    n = gzip_pack("[1, 2]", 6, gz, sizeof(gz));
    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_GZIP, gz, n, 1024, &size);
    is_str(got, "\"size\":6,\"body\":[1,2]}\n", "gzip JSON body decoded");
    is_int(size, 6, "size of decoded gzip body");

    n = gzip_pack("hello", 5, gz, sizeof(gz));
    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_GZIP, gz, n, 1024, &size);
    is_str(got, "\"size\":5,\"body_b64\":\"aGVsbG8=\"}\n",
           "gzip non-JSON body decoded, then base64");

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_GZIP, "notgzip", 7, 1024, &size);
    is_str(got, "\"size\":7,\"body_b64\":\"bm90Z3ppcA==\","
           "\"decode_error\":\"invalid_gzip\"}\n", "invalid gzip kept raw");
    is_int(size, 7, "size of invalid gzip is the raw size");

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_GZIP, "{}", 2, 1024, &size);
    is_str(got, "\"size\":2,\"body_b64\":\"e30=\","
           "\"decode_error\":\"invalid_gzip\"}\n",
           "JSON labelled gzip is kept raw with the error");

    /* too large: the raw (compressed) bytes are kept */

    memset(big, ' ', sizeof(big));
    big[0] = '[';
    big[sizeof(big) - 1] = ']';
    n = gzip_pack(big, sizeof(big), gz, sizeof(gz));

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_GZIP, gz, n, 999, &size);
    ok(got != NULL && strstr(got, ",\"decode_error\":\"too_large\"}\n")
                      != NULL,
       "gzip over the cap: too_large");
    is_int(size, n, "size of too_large is the raw size");

    {
        u_char  b64[4096], line[4096];
        int     l;

        l = EVP_EncodeBlock(b64, gz, n);
        snprintf((char *) line, sizeof(line), "\"size\":%zu,\"body_b64\":\"%.*s"
                 "\",\"decode_error\":\"too_large\"}\n", n, l, b64);
        is_str(got, (char *) line, "too_large line exactly");
    }

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_GZIP, gz, n, 1000, &size);
    is_str(got, "\"size\":1000,\"body\":[]}\n",
           "the same gzip at the cap decodes");

    /* unsupported */

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_UNSUPPORTED, "{}", 2, 1024,
               &size);
    is_str(got, "\"size\":2,\"body_b64\":\"e30=\","
           "\"decode_error\":\"unsupported_encoding\"}\n",
           "unsupported coding kept raw");

    /* zstd and deflate */

    n = ZSTD_compress(zs, sizeof(zs), "{\"z\": [true, null]}", 19, 3);
    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_ZSTD, zs, n, 1024, &size);
    is_str(got, "\"size\":19,\"body\":{\"z\":[true,null]}}\n",
           "zstd JSON body decoded");

    zs[n - 1] ^= 0xff;
    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_ZSTD, zs, n - 2, 1024, &size);
    ok(got != NULL && strstr(got, ",\"decode_error\":\"invalid_zstd\"}\n")
                      != NULL,
       "truncated zstd: invalid_zstd");

    {
        uLongf  zl;

        zl = sizeof(gz);
        compress(gz, &zl, (u_char *) "{\"d\":1}", 7);
        got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_DEFLATE, gz, zl, 1024,
                   &size);
        is_str(got, "\"size\":7,\"body\":{\"d\":1}}\n",
               "deflate JSON body decoded");

        got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_DEFLATE, "xx", 2, 1024,
                   &size);
        is_str(got, "\"size\":2,\"body_b64\":\"eHg=\","
               "\"decode_error\":\"invalid_deflate\"}\n", "invalid deflate");
    }

    /* a failing sink fails the call at every step (each path makes 3) */

    for (n = 1; n <= 3; n++) {
        for (i = 0; i < 2; i++) {
            out.buf.len = 0;
            out.calls = 0;
            out.fail_at = n;
            errno = 0;

            ok(ngx_http_reductrai_record_body(&enc,
                                              NGX_HTTP_REDUCTRAI_ENC_IDENTITY, 0,
                                              (u_char *) paths[i].body, 3,
                                              1024, sink, &out, &size)
               == -1 && errno == EIO,
               "%s path: sink failing at call %zu fails the call",
               paths[i].name, n);
        }
    }

    out.fail_at = 0;

    ngx_http_reductrai_record_encoder_free(&enc);
    ok(enc.decoded.data == NULL && enc.minified.data == NULL
       && enc.text.data == NULL, "encoder freed");
}


/* a body larger than several base64 chunks, against OpenSSL's base64 */

static void
test_big(void)
{
    int                                  l;
    u_char                              *raw, *want, *gz;
    size_t                               len, size, n, i;
    const char                          *got;
    ngx_http_reductrai_record_encoder_t  enc;

    memset(&enc, 0, sizeof(enc));

    len = 3 * 48 * 1024 + 7;
    raw = malloc(len);
    want = malloc(len * 2 + 256);
    gz = malloc(len * 2);

    for (i = 0; i < len; i++) {
        raw[i] = (u_char) (i * 7 + (i >> 8));
    }

    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_IDENTITY, raw, len, len, &size);

    n = sprintf((char *) want, "\"size\":%zu,\"body_b64\":\"", len);
    l = EVP_EncodeBlock(want + n, raw, len);
    n += l;
    n += sprintf((char *) want + n, "\"}\n");

    is_mem(got, got ? strlen(got) : 0, want, n,
           "%zu bytes of binary in base64, as OpenSSL encodes them", len);
    ok(out.calls >= 6 && out.largest <= 65536,
       "base64 went out in %zu pieces of at most %zu bytes", out.calls,
       out.largest);

    /* the same through gzip: decoded, then base64 */

    n = gzip_pack(raw, len, gz, len * 2);
    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_GZIP, gz, n, len, &size);
    is_mem(got, got ? strlen(got) : 0, want, strlen((char *) want),
           "gzip of binary: decoded bytes in base64");
    is_int(size, len, "size of decoded binary");

    ok(enc.decoded.cap >= len && enc.text.cap >= 65536,
       "scratch buffers kept (%zu, %zu)", enc.decoded.cap, enc.text.cap);

    ngx_http_reductrai_record_encoder_trim(&enc, 1024 * 1024);
    ok(enc.decoded.data != NULL && enc.text.data != NULL,
       "trim above the caps keeps them");

    ngx_http_reductrai_record_encoder_trim(&enc, 4096);
    ok(enc.decoded.data == NULL && enc.decoded.cap == 0
       && enc.text.data == NULL && enc.text.cap == 0,
       "trim below the caps frees them");

    ngx_http_reductrai_record_encoder_free(&enc);
    free(raw);
    free(want);
    free(gz);
}


/* head + body is one line of valid JSON with the right values */

static void
test_line(void)
{
    u_char                               *line, *p, gz[1024];
    size_t                                len, size, n;
    json_t                               *j, *b;
    const char                           *got;
    json_error_t                          err;
    ngx_http_reductrai_record_encoder_t   enc;
    ngx_http_reductrai_record_meta_t      meta;

    static const char  payload[] =
        "{\n  \"series\": [\n    {\"metric\": \"system.load.1\",\n"
        "     \"points\": [[1700000000, 0.75]],\n"
        "     \"tags\": [\"env:prod\", \"service:web-\xc3\xa9\"]}\n  ]\n}\n";

    memset(&enc, 0, sizeof(enc));
    memset(&meta, 0, sizeof(meta));

    meta.id = (ngx_http_reductrai_str_t) S("web-1-4242-1764098183000-7");
    meta.ts = (ngx_http_reductrai_str_t) S("2025-11-25T19:16:23.123Z");
    meta.stream = (ngx_http_reductrai_str_t) S("metrics");
    meta.method = (ngx_http_reductrai_str_t) S("POST");
    meta.uri = (ngx_http_reductrai_str_t) S("/api/v1/series");
    meta.user_agent = (ngx_http_reductrai_str_t) S("agent \"x\"\t\xff");
    meta.content_encoding = (ngx_http_reductrai_str_t) S("gzip");
    meta.forwarded = 1;

    n = gzip_pack(payload, sizeof(payload) - 1, gz, sizeof(gz));
    got = body(&enc, NGX_HTTP_REDUCTRAI_ENC_GZIP, gz, n, 1 << 20, &size);

    len = ngx_http_reductrai_record_head_len(&meta) + strlen(got);
    line = malloc(len + 1);
    p = ngx_http_reductrai_record_head(line, &meta);
    p = memcpy(p, got, strlen(got));
    p += strlen(got);

    ok(p[-1] == '\n' && memchr(line, '\n', p - line) == p - 1,
       "the record is one line");

    j = json_loadb((char *) line, p - line, 0, &err);
    ok(j != NULL, "the record is valid JSON (%s)", j ? "ok" : err.text);

    if (j == NULL) {
        free(line);
        ngx_http_reductrai_record_encoder_free(&enc);
        return;
    }

    is_str(json_string_value(json_object_get(j, "id")),
           "web-1-4242-1764098183000-7", "id");
    is_str(json_string_value(json_object_get(j, "user_agent")),
           "agent \"x\"\t\xc3\xbf", "user_agent unescaped by jansson");
    ok(json_is_null(json_object_get(j, "host")), "host is null");
    ok(json_is_true(json_object_get(j, "forwarded")), "forwarded is true");
    is_int(json_integer_value(json_object_get(j, "size")),
           sizeof(payload) - 1, "size");

    b = json_loads(payload, 0, &err);
    ok(b != NULL && json_equal(b, json_object_get(j, "body")),
       "body equals the payload");
    ok(json_object_get(j, "body_b64") == NULL
       && json_object_get(j, "decode_error") == NULL,
       "no body_b64, no decode_error");

    json_decref(b);
    json_decref(j);
    free(line);
    ngx_http_reductrai_record_encoder_free(&enc);
}


static void
test_base64(void)
{
    u_char  buf[64];
    size_t  n;

    static const char  *vectors[][2] = {
        { "", "" },
        { "f", "Zg==" },
        { "fo", "Zm8=" },
        { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" },
        { "fooba", "Zm9vYmE=" },
        { "foobar", "Zm9vYmFy" },
        { "\xff\xfe\xfd", "//79" },
        { "\xfb\xff", "+/8=" },
    };

    for (n = 0; n < sizeof(vectors) / sizeof(vectors[0]); n++) {
        is_mem(buf,
               ngx_http_reductrai_base64_encode(buf,
                                            (u_char *) vectors[n][0],
                                            strlen(vectors[n][0])),
               vectors[n][1], strlen(vectors[n][1]),
               "base64(\"%s\") (RFC 4648)", vectors[n][1]);
    }
}


static void
test_redact(void)
{
    u_char   buf[512];
    size_t   i, len, n;

    static const char  *cases[][2] = {
        { "/api/v1/series?api_key=abc&x=1",
          "/api/v1/series?api_key=REDACTED&x=1" },
        { "/api/v1/series?x=1&api_key=abc",
          "/api/v1/series?x=1&api_key=REDACTED" },
        { "/p?Api_Key=abc", "/p?Api_Key=REDACTED" },
        { "/p?DD-API-KEY=k&dd_api_key=k2&APIKEY=k3&api-key=k4",
          "/p?DD-API-KEY=REDACTED&dd_api_key=REDACTED&APIKEY=REDACTED"
          "&api-key=REDACTED" },
        { "/p?token=t0k3n", "/p?token=REDACTED" },
        { "/p?access_token=a&auth_token=b&x-api-key=c&license_key=d",
          "/p?access_token=REDACTED&auth_token=REDACTED&x-api-key=REDACTED"
          "&license_key=REDACTED" },
        { "/p?application_key=a&dd-application-key=b&app_key=c",
          "/p?application_key=REDACTED&dd-application-key=REDACTED"
          "&app_key=REDACTED" },
        { "/p?password=p&secret=s&sig=x&signature=y&Signature=z",
          "/p?password=REDACTED&secret=REDACTED&sig=REDACTED"
          "&signature=REDACTED&Signature=REDACTED" },
        { "/api/v1/series", "/api/v1/series" },
        { "/", "/" },
        { "", "" },
        { "/p?", "/p?" },
        { "/p?api_key=", "/p?api_key=" },
        { "/p?api_key=&x=1", "/p?api_key=&x=1" },
        { "/p?api_key", "/p?api_key" },
        { "/p?api_key&x=1", "/p?api_key&x=1" },
        { "/p?api_key=a=b", "/p?api_key=REDACTED" },
        { "/p?x=api_key=abc", "/p?x=api_key=abc" },
        { "/p?my_api_key=abc&api_keys=x", "/p?my_api_key=abc&api_keys=x" },
        { "/p?&&api_key=abc&", "/p?&&api_key=REDACTED&" },
        { "/api_key=abc/x?y=1", "/api_key=abc/x?y=1" },
        { "/p?a=1?api_key=b", "/p?a=1?api_key=b" },
        { "/p?q=1&api_key=abc?def", "/p?q=1&api_key=REDACTED" },
        { "/p?tokens=1&token=2", "/p?tokens=1&token=REDACTED" },

        /* issue 13: the Datadog logs intake v1 key in the path */
        { "/v1/input/0123456789abcdef0123456789abcdef",
          "/v1/input/REDACTED" },
        { "/v1/input/k3y?ddsource=nginx&api_key=k",
          "/v1/input/REDACTED?ddsource=nginx&api_key=REDACTED" },
        { "/v1/input/k3y/", "/v1/input/REDACTED/" },
        { "/v1/input/k3y;x=1?y=2", "/v1/input/REDACTED?y=2" },
        { "/api/v1/INPUT/k3y", "/api/v1/INPUT/REDACTED" },
        { "/v1//input//k3y", "/v1//input//REDACTED" },
        { "/v1/input/./k3y", "/v1/input/./REDACTED" },
        { "/v1/input/../input/k3y", "/v1/input/../input/REDACTED" },
        { "/v1%2Finput%2fk3y", "/v1%2Finput%2fREDACTED" },
        { "/v1/%69nput/k3y", "/v1/%69nput/REDACTED" },
        { "/v1/input;p=1/k3y", "/v1/input;p=1/REDACTED" },
        { "/v1/input", "/v1/input" },
        { "/v1/input/", "/v1/input/" },
        { "/v1/input?api_key=k", "/v1/input?api_key=REDACTED" },
        { "/v1/inputs/k3y", "/v1/inputs/k3y" },
        { "/v1/x?input/k3y", "/v1/x?input/k3y" },

        /* issue 13: percent-encoded names, ';' separators */
        { "/p?api%5Fkey=abc", "/p?api%5Fkey=REDACTED" },
        { "/p?%61pi_key=abc&x=1", "/p?%61pi_key=REDACTED&x=1" },
        { "/p?DD%2DAPI%2dKEY=abc", "/p?DD%2DAPI%2dKEY=REDACTED" },
        { "/p?x=1;api_key=abc;y=2", "/p?x=1;api_key=REDACTED;y=2" },
        { "/p?x=1;token=t&api_key=k",
          "/p?x=1;token=REDACTED&api_key=REDACTED" },
        { "/p?api%5key=abc", "/p?api%5key=abc" },
        { "/p?api_key%=abc", "/p?api_key%=abc" },
        { "/p?%", "/p?%" },
        { "/p?api_key=%", "/p?api_key=REDACTED" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = ngx_http_reductrai_redact_uri_len((u_char *) cases[i][0],
                                                strlen(cases[i][0]));
        n = ngx_http_reductrai_redact_uri(buf, (u_char *) cases[i][0],
                                          strlen(cases[i][0]));

        is_mem(buf, n, cases[i][1], strlen(cases[i][1]), "redact \"%s\"",
               cases[i][0]);
        ok(len >= n, "redact_uri_len %zu >= %zu", len, n);
    }
}


static void
test_credentials(void)
{
    u_char                    fp[NGX_HTTP_REDUCTRAI_FP_LEN];
    size_t                    i;
    ngx_http_reductrai_str_t  s;

    static const char  *uris[][2] = {
        { "/x?a=1&API_KEY=abc&dd-api-key=def", "abc" },
        { "/x?dd-api-key=def&api_key=abc", "def" },
        { "/x?token=t&dd_api_key=k", "k" },
        { "/x?apikey=z", "z" },
        { "/x?Api-Key=z", "z" },
        { "/x?api_key=&apikey=z", "z" },
        { "/x?api_key&apikey=z", "z" },
        { "/v1/input/pathkey?api_key=abc", "pathkey" },
        { "/v1/input/pathkey", "pathkey" },
        { "/v1%2Finput%2Fpathkey", "pathkey" },
        { "/x?token=t;api%5Fkey=k", "k" },
        { "/x?x=1;dd-api-key=k", "k" },
    };

    static const char  *none[] = {
        "/x", "/x?", "/x?token=t", "/x?application_key=a", "/x?api_key=",
        "/api_key=abc", "", "/v1/input", "/v1/input/", "/v1/inputs/k",
    };

    static const char  *auth[][2] = {
        { "Bearer abc", "abc" },
        { "Splunk 1234-5678", "1234-5678" },
        { "Bearer   abc", "abc" },
        { "Bearer\tabc", "abc" },
        { " Bearer abc ", "abc" },
        { "abc", "abc" },
        { "GenieKey a b", "a b" },
    };

    for (i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        s = ngx_http_reductrai_uri_credential((u_char *) uris[i][0],
                                              strlen(uris[i][0]));
        is_mem(s.data ? (char *) s.data : "(null)", s.data ? s.len : 6,
               uris[i][1], strlen(uris[i][1]), "uri_credential(\"%s\")",
               uris[i][0]);
    }

    for (i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        s = ngx_http_reductrai_uri_credential((u_char *) none[i],
                                              strlen(none[i]));
        ok(s.data == NULL, "no uri_credential in \"%s\"", none[i]);
    }

    for (i = 0; i < sizeof(auth) / sizeof(auth[0]); i++) {
        s = ngx_http_reductrai_authorization_token((u_char *) auth[i][0],
                                                   strlen(auth[i][0]));
        is_mem(s.data ? (char *) s.data : "(null)", s.data ? s.len : 6,
               auth[i][1], strlen(auth[i][1]),
               "authorization_token(\"%s\")", auth[i][0]);
    }

    s = ngx_http_reductrai_authorization_token((u_char *) "Bearer ", 7);
    ok(s.data == NULL, "no token in \"Bearer \"");

    s = ngx_http_reductrai_authorization_token((u_char *) "", 0);
    ok(s.data == NULL, "no token in \"\"");

    s = ngx_http_reductrai_authorization_token(NULL, 0);
    ok(s.data == NULL, "no token in an absent header");

    /* expected values from: printf %s KEY | sha256sum */

    ngx_http_reductrai_api_key_fp(fp,
                             (u_char *) "0123456789abcdef0123456789abcdef",
                             32);
    is_mem(fp, sizeof(fp), "3eb1bd43", 8, "api_key_fp of a 32-hex key");

    ngx_http_reductrai_api_key_fp(fp, (u_char *) "abc", 3);
    is_mem(fp, sizeof(fp), "ba7816bf", 8, "api_key_fp(\"abc\")");

    ngx_http_reductrai_api_key_fp(fp, (u_char *) "", 0);
    is_mem(fp, sizeof(fp), "e3b0c442", 8, "api_key_fp(\"\")");
}


int
main(void)
{
    test_head();
    test_body();
    test_big();
    test_line();
    test_base64();
    test_redact();
    test_credentials();

    ngx_http_reductrai_buf_free(&out.buf);

    return done_testing();
}
