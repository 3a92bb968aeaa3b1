
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Archived JSON back to protobuf: the bytes of small messages, the round
 * trip JSON -> protobuf -> JSON of each payload type (the printer's output
 * must come back as it was), and JSON the encoder must refuse.
 */


#include "ngx_http_reductrai_body_format.h"
#include "ngx_http_reductrai_protobuf_encode.h"

#include "unit.h"


static void roundtrip(unsigned format, const char *json, const char *name);
static void bytes(unsigned format, const char *json, const char *want,
    size_t len, const char *name);
static void bad(unsigned format, const char *json, size_t max,
    ngx_http_reductrai_pb_rc_e want, const char *name);
static void test_bytes(void);
static void test_roundtrip(void);
static void test_bad(void);


static ngx_http_reductrai_pb_t   pb;
static ngx_http_reductrai_buf_t  wire;
static ngx_http_reductrai_buf_t  text;


static void
roundtrip(unsigned format, const char *json, const char *name)
{
    const char                              *err;
    ngx_http_reductrai_pb_rc_e               rc;
    const ngx_http_reductrai_body_format_t  *bf;

    bf = ngx_http_reductrai_body_format(format);

    wire.len = 0;
    text.len = 0;
    err = NULL;

    rc = ngx_http_reductrai_pb_encode(bf->descriptor, bf->style,
                                      (const u_char *) json, strlen(json),
                                      1024 * 1024, &wire, &err);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_OK, "%s: encoded", name);

    if (rc != NGX_HTTP_REDUCTRAI_PB_OK) {
        printf("#   %s\n", err ? err : "?");
        return;
    }

    rc = ngx_http_reductrai_pb_json(&pb, bf->descriptor, bf->style,
                                    wire.data, wire.len, &text);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_OK, "%s: the bytes decode", name);
    is_mem(text.data, text.len, json, strlen(json),
           "%s: printed again, the same JSON", name);
}


static void
bytes(unsigned format, const char *json, const char *want, size_t len,
    const char *name)
{
    ngx_http_reductrai_pb_rc_e               rc;
    const ngx_http_reductrai_body_format_t  *bf;

    bf = ngx_http_reductrai_body_format(format);

    wire.len = 0;

    rc = ngx_http_reductrai_pb_encode(bf->descriptor, bf->style,
                                      (const u_char *) json, strlen(json),
                                      1024 * 1024, &wire, NULL);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_OK, "%s: encoded", name);
    ok(wire.len == len && memcmp(wire.data, want, len) == 0,
       "%s: the expected %zu bytes (got %zu)", name, len, wire.len);
}


static void
bad(unsigned format, const char *json, size_t max,
    ngx_http_reductrai_pb_rc_e want, const char *name)
{
    const char                              *err;
    ngx_http_reductrai_pb_rc_e               rc;
    const ngx_http_reductrai_body_format_t  *bf;

    bf = ngx_http_reductrai_body_format(format);

    /* what the buffer held before stays */
    wire.len = 0;
    (void) ngx_http_reductrai_buf_reserve(&wire, 3);
    memcpy(wire.data, "abc", 3);
    wire.len = 3;
    err = NULL;

    rc = ngx_http_reductrai_pb_encode(bf->descriptor, bf->style,
                                      (const u_char *) json, strlen(json),
                                      max, &wire, &err);
    is_int(rc, want, "%s: refused (%s)", name, err ? err : "no reason");
    ok(wire.len == 3 && memcmp(wire.data, "abc", 3) == 0 && err != NULL,
       "%s: output as it was, with a reason", name);
}


static void
test_bytes(void)
{
    char    want[400], *p;
    char    json[400];
    size_t  i;

    /* series { metric "m" points { value 1.0 timestamp 2 } }, zeros out */

    bytes(NGX_HTTP_REDUCTRAI_FORMAT_DD_METRICS,
          "{\"series\":[{\"resources\":[],\"metric\":\"m\",\"tags\":[],"
          "\"points\":[{\"value\":1,\"timestamp\":2}],\"type\":0,"
          "\"unit\":\"\",\"source_type_name\":\"\",\"interval\":0}]}",
          "\x0a\x10\x12\x01m\x22\x0b\x09\0\0\0\0\0\0\xf0\x3f\x10\x02", 18,
          "MetricPayload");

    /* packed sint32 (zigzag) and uint32 */

    bytes(NGX_HTTP_REDUCTRAI_FORMAT_DD_SKETCHES,
          "{\"sketches\":[{\"dogsketches\":[{\"k\":[-1,1,300],"
          "\"n\":[\"7\"]}]}]}",
          "\x0a\x0b\x3a\x09\x3a\x04\x01\x02\xd8\x04\x42\x01\x07", 13,
          "SketchPayload, packed");

    /* a value of 200 bytes: its length takes two bytes */

    p = stpcpy(json, "{\"sketches\":[{\"metric\":\"");
    for (i = 0; i < 200; i++) {
        *p++ = 'x';
    }
    strcpy(p, "\"}]}");

    memcpy(want, "\x0a\xcb\x01\x0a\xc8\x01", 6);
    memset(want + 6, 'x', 200);

    bytes(NGX_HTTP_REDUCTRAI_FORMAT_DD_SKETCHES, json, want, 206,
          "a length of two bytes");

    /* OTLP: hex ids, 64-bit strings, "_unknown" and the old "Unknown" */

    bytes(NGX_HTTP_REDUCTRAI_FORMAT_OTLP_TRACES,
          "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
          "\"traceId\":\"00FF\",\"startTimeUnixNano\":\"1\"}]}]}],"
          "\"_unknown\":\"mAYs\"}",
          "\x0a\x11\x12\x0f\x12\x0d\x0a\x02\x00\xff"
          "\x39\x01\0\0\0\0\0\0\0" "\x98\x06\x2c", 22,
          "OTLP trace");

    bytes(NGX_HTTP_REDUCTRAI_FORMAT_OTLP_LOGS, "{\"Unknown\":\"mAYs\"}",
          "\x98\x06\x2c", 3, "OTLP: the printer's old \"Unknown\"");

    /* a map entry has its key and value even when they are zero */

    bytes(NGX_HTTP_REDUCTRAI_FORMAT_DD_TRACES, "{\"tags\":{\"\":\"\"}}",
          "\x32\x04\x0a\x00\x12\x00", 6, "AgentPayload map");
}


static void
test_roundtrip(void)
{
    roundtrip(NGX_HTTP_REDUCTRAI_FORMAT_DD_METRICS,
        "{\"series\":[{\"resources\":[{\"type\":\"host\",\"name\":\"web-1\"}],"
        "\"metric\":\"system.load.1\",\"tags\":[\"env:prod\",\"role:db\"],"
        "\"points\":[{\"value\":0.5,\"timestamp\":1764066600},"
        "{\"value\":-0.0,\"timestamp\":\"9007199254740993\"},"
        "{\"value\":1e+300,\"timestamp\":-3},{\"value\":0.1,\"timestamp\":1},"
        "{\"value\":\"NaN:0x7ff0000000000002\",\"timestamp\":0},"
        "{\"value\":\"-Infinity\",\"timestamp\":\"-9223372036854775808\"}],"
        "\"type\":3,\"unit\":\"\",\"source_type_name\":\"System\","
        "\"interval\":10,\"metadata\":{\"origin\":{\"origin_product\":10,"
        "\"origin_category\":0,\"origin_service\":4294967295}}}]}",
        "datadog.MetricPayload");

    roundtrip(NGX_HTTP_REDUCTRAI_FORMAT_DD_SKETCHES,
        "{\"sketches\":[{\"metric\":\"lat\",\"host\":\"h\","
        "\"tags\":[\"a:b\"],\"dogsketches\":[{\"ts\":1764066600,\"cnt\":3,"
        "\"min\":0.25,\"max\":2,\"avg\":1,\"sum\":3,\"k\":[-5,0,1338],"
        "\"n\":[1,1,1]}]}]}",
        "datadog.SketchPayload");

    roundtrip(NGX_HTTP_REDUCTRAI_FORMAT_DD_TRACES,
        "{\"hostName\":\"h\",\"env\":\"prod\",\"tracerPayloads\":[{"
        "\"containerID\":\"\",\"languageName\":\"go\","
        "\"languageVersion\":\"\",\"tracerVersion\":\"\",\"runtimeID\":\"\","
        "\"chunks\":[{\"priority\":1,\"origin\":\"\",\"spans\":[{"
        "\"service\":\"web\",\"name\":\"http.request\",\"resource\":\"GET /\","
        "\"traceID\":\"12345678901234567890\",\"spanID\":42,\"parentID\":0,"
        "\"start\":\"1764066600000000000\",\"duration\":1500,\"error\":0,"
        "\"meta\":{\"http.method\":\"GET\",\"\":\"\"},"
        "\"metrics\":{\"_sampling_priority_v1\":1,\"x\":-0.5},"
        "\"type\":\"web\",\"meta_struct\":{\"k\":\"AAEC\"}}],"
        "\"tags\":{\"_dd.p.dm\":\"-1\"},\"droppedTrace\":false}],"
        "\"env\":\"\",\"hostname\":\"\",\"appVersion\":\"\",\"APMMode\":\"\"}],"
        "\"agentVersion\":\"7.62.0\",\"targetTPS\":10,\"errorTPS\":10,"
        "\"rareSamplerEnabled\":true,\"APMMode\":\"\"}",
        "datadog.trace.AgentPayload");

    roundtrip(NGX_HTTP_REDUCTRAI_FORMAT_OTLP_TRACES,
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{"
        "\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}}]},"
        "\"scopeSpans\":[{\"scope\":{\"name\":\"t\"},\"spans\":[{"
        "\"traceId\":\"5b8efff798038103d269b633813fc60c\","
        "\"spanId\":\"eee19b7ec3c1b174\",\"parentSpanId\":\"0102030405060708\","
        "\"name\":\"GET /\",\"kind\":2,"
        "\"startTimeUnixNano\":\"1764066600000000000\","
        "\"endTimeUnixNano\":\"18446744073709551615\","
        "\"attributes\":[{\"key\":\"n\",\"value\":{\"intValue\":\"0\"}},"
        "{\"key\":\"b\",\"value\":{\"bytesValue\":\"\"}},"
        "{\"key\":\"d\",\"value\":{\"doubleValue\":\"NaN\"}},"
        "{\"key\":\"a\",\"value\":{\"arrayValue\":{\"values\":[{"
        "\"boolValue\":false},{\"kvlistValue\":{}}]}}}],"
        "\"status\":{},\"flags\":257,\"_unknown\":\"mAYs\"}]}]}]}",
        "otlp.ExportTraceServiceRequest");

    roundtrip(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE,
        "{\"timeseries\":[{\"labels\":[{\"name\":\"__name__\","
        "\"value\":\"up\"}],\"samples\":[{\"value\":1,"
        "\"timestamp\":1764066600000},{\"value\":\"NaN:0x7ff0000000000002\","
        "\"timestamp\":1764066615000}]}]}",
        "prometheus.WriteRequest");
}


static void
test_bad(void)
{
    int     i;
    char    deep[2048], *p;
    size_t  k;

#define dd  NGX_HTTP_REDUCTRAI_FORMAT_DD_METRICS
#define dt  NGX_HTTP_REDUCTRAI_FORMAT_DD_TRACES
#define ot  NGX_HTTP_REDUCTRAI_FORMAT_OTLP_TRACES
#define no  NGX_HTTP_REDUCTRAI_PB_INVALID
#define lim  NGX_HTTP_REDUCTRAI_PB_LIMIT

    static const struct {
        unsigned                     format;
        const char                  *json;
        size_t                       max;
        ngx_http_reductrai_pb_rc_e   rc;
        const char                  *name;
    } cases[] = {
        { dd, "", 1024, no, "no JSON" },
        { dd, "{\"series\":[", 1024, no, "truncated JSON" },
        { dd, "[1]", 1024, no, "an array" },
        { dd, "{\"series\":1}", 1024, no, "a repeated field as a number" },
        { dd, "{\"series\":[null]}", 1024, no, "null in a repeated field" },
        { dd, "{\"serie\":[]}", 1024, no, "a key the schema does not know" },
        { dd, "{\"series\":[{\"metric\":7}]}", 1024, no,
          "a number as string" },
        { dd, "{\"series\":[{\"type\":2147483648}]}", 1024, no,
          "an enum out of range" },
        { dd, "{\"series\":[{\"interval\":\"12x\"}]}", 1024, no,
          "a 64-bit string with a letter" },
        { dd, "{\"series\":[{\"interval\":\"9223372036854775808\"}]}", 1024,
          no, "int64 overflow" },
        { dd, "{\"series\":[{\"interval\":1.5}]}", 1024, no,
          "a fraction in an integer" },
        { dd, "{\"series\":[{\"points\":[{\"value\":\"lots\"}]}]}", 1024, no,
          "a double as a word" },
        { dd, "{\"series\":[{\"points\":[{\"value\":true}]}]}", 1024, no,
          "a double as a boolean" },
        { dd, "{\"series\":[{\"metric\":\"a\\u0000b\"}]}", 1024, no,
          "NUL in a string" },
        { dd, "{\"series\":[{\"metric\":\"\xff\"}]}", 1024, no,
          "invalid UTF-8" },
        { dd, "{\"series\":[{\"resources\":{}}]}", 1024, no,
          "a repeated field as an object" },
        { dd, "{\"_unknown\":\"/w==\"}", 1024, no, "_unknown not protobuf" },
        { dd, "{\"_unknown\":\"mAYs!\"}", 1024, no, "_unknown not base64" },
        { dd, "{\"_unknown\":3}", 1024, no, "_unknown not a string" },
        { dd, "{\"series\":[{\"metric\":\"abcdefgh\"}]}", 8, lim,
          "larger than max" },
        { dt, "{\"tags\":[]}", 1024, no, "a map as an array" },
        { dt, "{\"tracerPayloads\":[{\"chunks\":[{\"spans\":[{"
              "\"meta_struct\":{\"k\":\"AA=\"}}]}]}]}", 1024, no,
          "bytes not base64" },
        { ot, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
              "\"traceId\":\"abc\"}]}]}]}", 1024, no, "an odd hex id" },
        { ot, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
              "\"spanId\":\"zz\"}]}]}]}", 1024, no, "a hex id with a letter" },
        { ot, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{"
              "\"key\":\"k\",\"value\":{\"stringValue\":\"a\","
              "\"intValue\":\"1\"}}]}}]}", 1024, no,
          "two members of a oneof" },
        { ot, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
              "\"startTimeUnixNano\":\"-1\"}]}]}]}", 1024, no,
          "a negative fixed64" },
    };

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        bad(cases[k].format, cases[k].json, cases[k].max, cases[k].rc,
            cases[k].name);
    }

    /* AnyValue in ArrayValue, 40 times: 80 levels, deeper than the cap */

    p = stpcpy(deep, "{\"resourceSpans\":[{\"resource\":{\"attributes\":"
                     "[{\"value\":");

    for (i = 0; i < 40; i++) {
        p = stpcpy(p, "{\"arrayValue\":{\"values\":[");
    }

    for (i = 0; i < 40; i++) {
        p = stpcpy(p, "]}}");
    }

    strcpy(p, "}]}}]}");

    bad(ot, deep, 1024 * 1024, lim, "nested deeper than the cap");

#undef dd
#undef dt
#undef ot
#undef no
#undef lim
}


int
main(void)
{
    test_bytes();
    test_roundtrip();
    test_bad();

    ngx_http_reductrai_pb_trim(&pb, 0);
    ngx_http_reductrai_buf_free(&wire);
    ngx_http_reductrai_buf_free(&text);

    return done_testing();
}
