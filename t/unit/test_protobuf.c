
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Protobuf bodies as JSON: the mapping of each payload type, unknown
 * fields, the caps of the bounded allocator, format detection, and the
 * record line with body_format.
 */


#include "ngx_http_reductrai_record.h"
#include "ngx_http_reductrai_body_format.h"

#include "unit.h"

#include <errno.h>
#include <math.h>
#include <jansson.h>
#include <snappy-c.h>


typedef struct {
    u_char  *p;
    u_char   data[4096];
} wire_t;


static void w_varint(wire_t *w, uint64_t v);
static void w_tag(wire_t *w, unsigned id, unsigned wt);
static void w_uint(wire_t *w, unsigned id, uint64_t v);
static void w_double(wire_t *w, unsigned id, double v);
static void w_fixed64(wire_t *w, unsigned id, uint64_t v);
static void w_bytes(wire_t *w, unsigned id, const void *p, size_t len);
static void w_str(wire_t *w, unsigned id, const char *s);
static void w_msg(wire_t *w, unsigned id, wire_t *sub);
static void w_init(wire_t *w);
static size_t w_len(wire_t *w);
static const char *json(unsigned format, const u_char *in, size_t len,
    ngx_http_reductrai_pb_rc_e *rc);
static int is_json(const char *s);
static int record_sink(void *data, const u_char *p, size_t len);
static void test_datadog(void);
static void test_datadog_trace(void);
static void test_otlp(void);
static void test_prometheus(void);
static void test_unknown(void);
static void test_bad(void);
static void test_limits(void);
static void test_detect(void);
static void test_record(void);


static ngx_http_reductrai_pb_t   pb;
static ngx_http_reductrai_buf_t  out;


static void
w_init(wire_t *w)
{
    w->p = w->data;
}


static size_t
w_len(wire_t *w)
{
    return w->p - w->data;
}


static void
w_varint(wire_t *w, uint64_t v)
{
    while (v >= 0x80) {
        *w->p++ = (u_char) (v | 0x80);
        v >>= 7;
    }

    *w->p++ = (u_char) v;
}


static void
w_tag(wire_t *w, unsigned id, unsigned wt)
{
    w_varint(w, ((uint64_t) id << 3) | wt);
}


static void
w_uint(wire_t *w, unsigned id, uint64_t v)
{
    w_tag(w, id, 0);
    w_varint(w, v);
}


static void
w_double(wire_t *w, unsigned id, double v)
{
    w_tag(w, id, 1);
    memcpy(w->p, &v, 8);
    w->p += 8;
}


static void
w_fixed64(wire_t *w, unsigned id, uint64_t v)
{
    w_tag(w, id, 1);
    memcpy(w->p, &v, 8);
    w->p += 8;
}


static void
w_bytes(wire_t *w, unsigned id, const void *p, size_t len)
{
    w_tag(w, id, 2);
    w_varint(w, len);
    memcpy(w->p, p, len);
    w->p += len;
}


static void
w_str(wire_t *w, unsigned id, const char *s)
{
    w_bytes(w, id, s, strlen(s));
}


static void
w_msg(wire_t *w, unsigned id, wire_t *sub)
{
    w_bytes(w, id, sub->data, w_len(sub));
}


/* the JSON of a body, NUL-terminated, or NULL with *rc set */

#define str(s)  ((s) != NULL ? (s) : "(null)")


static const char *
json(unsigned format, const u_char *in, size_t len,
    ngx_http_reductrai_pb_rc_e *rc)
{
    out.len = 0;

    *rc = ngx_http_reductrai_body_format_json(&pb, format, in, len, &out);

    if (*rc != NGX_HTTP_REDUCTRAI_PB_OK
        || ngx_http_reductrai_buf_reserve(&out, 1) != 0)
    {
        return NULL;
    }

    out.data[out.len] = '\0';

    return (const char *) out.data;
}


static int
is_json(const char *s)
{
    json_t  *j;

    if (s == NULL) {
        return 0;
    }

    j = json_loads(s, JSON_DECODE_ANY, NULL);
    if (j == NULL) {
        return 0;
    }

    json_decref(j);

    return 1;
}


static void
test_datadog(void)
{
    wire_t                      series, point, res, payload, sk, dist;
    const char                 *got;
    ngx_http_reductrai_pb_rc_e  rc;

    w_init(&res);
    w_str(&res, 1, "host");
    w_str(&res, 2, "web-1");

    w_init(&point);
    w_double(&point, 1, 0.7);
    w_uint(&point, 2, 1764100000);

    w_init(&series);
    w_msg(&series, 1, &res);
    w_str(&series, 2, "system.load.1");
    w_str(&series, 3, "env:prod");
    w_str(&series, 3, "service:web");
    w_msg(&series, 4, &point);
    w_uint(&series, 5, 3);
    w_uint(&series, 8, 10);

    w_init(&payload);
    w_msg(&payload, 1, &series);

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_DD_METRICS, payload.data,
               w_len(&payload), &rc);

    is_str(str(got),
           "{\"series\":[{\"resources\":[{\"type\":\"host\","
           "\"name\":\"web-1\"}],"
           "\"metric\":\"system.load.1\",\"tags\":[\"env:prod\","
           "\"service:web\"],\"points\":[{\"value\":0.7,"
           "\"timestamp\":1764100000}],\"type\":3,\"unit\":\"\","
           "\"source_type_name\":\"\",\"interval\":10}]}",
           "datadog.MetricPayload: schema names, zero scalars printed");

    ok(is_json(got), "datadog.MetricPayload JSON parses");

    /* a sketch: packed repeated sint32 and uint32 */

    w_init(&dist);
    w_uint(&dist, 1, 1764100000);
    w_uint(&dist, 2, 3);
    w_double(&dist, 3, -1.5);
    w_double(&dist, 4, 2.25);
    w_double(&dist, 5, 0.5);
    w_double(&dist, 6, 1.5);
    w_bytes(&dist, 7, "\x01\x02\x81\x01", 4);  /* sint32 -1, 1, -65 */
    w_bytes(&dist, 8, "\x01\x02", 2);

    w_init(&sk);
    w_str(&sk, 1, "request.latency");
    w_str(&sk, 2, "web-1");
    w_msg(&sk, 7, &dist);

    w_init(&payload);
    w_msg(&payload, 1, &sk);

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_DD_SKETCHES, payload.data,
               w_len(&payload), &rc);

    is_str(str(got),
           "{\"sketches\":[{\"metric\":\"request.latency\",\"host\":\"web-1\","
           "\"dogsketches\":[{\"ts\":1764100000,\"cnt\":3,\"min\":-1.5,"
           "\"max\":2.25,\"avg\":0.5,\"sum\":1.5,\"k\":[-1,1,-65],"
           "\"n\":[1,2]}]}]}",
           "datadog.SketchPayload: packed sint32 and uint32");
}


static void
test_datadog_trace(void)
{
    wire_t                      span, e1, e2, e3, chunk, tp, payload;
    const char                 *got;
    ngx_http_reductrai_pb_rc_e  rc;

    w_init(&e1);
    w_str(&e1, 1, "http.method");
    w_str(&e1, 2, "GET");

    w_init(&e2);
    w_str(&e2, 1, "_sampling_priority_v1");
    w_double(&e2, 2, 1);

    w_init(&e3);
    w_str(&e3, 1, "appsec");
    w_bytes(&e3, 2, "\x01\x02\xff", 3);

    w_init(&span);
    w_str(&span, 1, "web");
    w_str(&span, 2, "http.request");
    w_str(&span, 3, "GET /");
    w_uint(&span, 4, 0xfedcba9876543210ULL);     /* above 2^53 */
    w_uint(&span, 5, 42);
    w_uint(&span, 7, 1764100000123456789ULL);
    w_uint(&span, 8, 1500);
    w_msg(&span, 10, &e1);
    w_msg(&span, 11, &e2);
    w_msg(&span, 13, &e3);

    w_init(&chunk);
    w_uint(&chunk, 1, 1);
    w_msg(&chunk, 3, &span);

    w_init(&tp);
    w_str(&tp, 2, "go");
    w_msg(&tp, 6, &chunk);

    w_init(&payload);
    w_str(&payload, 1, "agent-host");
    w_str(&payload, 2, "prod");
    w_msg(&payload, 5, &tp);

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_DD_TRACES, payload.data,
               w_len(&payload), &rc);

    ok(got != NULL && strstr(got, "\"traceID\":\"18364758544493064720\","
                                  "\"spanID\":42,\"parentID\":0,"
                                  "\"start\":\"1764100000123456789\","
                                  "\"duration\":1500,\"error\":0,"
                                  "\"meta\":{\"http.method\":\"GET\"},"
                                  "\"metrics\":{\"_sampling_priority_v1\":1},"
                                  "\"type\":\"\","
                                  "\"meta_struct\":{\"appsec\":\"AQL/\"}")
               != NULL,
       "datadog.trace: maps as objects, 64-bit beyond 2^53 as strings");

    ok(got != NULL && strncmp(got, "{\"hostName\":\"agent-host\","
                                   "\"env\":\"prod\",\"tracerPayloads\":[{",
                              39 + 6) == 0,
       "datadog.trace.AgentPayload: schema names (camelCase as declared)");

    ok(is_json(got), "datadog.trace.AgentPayload JSON parses");
}


static void
test_otlp(void)
{
    wire_t                      span, ss, rs, req, kv, any, res, lr, sl, rl;
    const char                 *got;
    ngx_http_reductrai_pb_rc_e  rc;

    static const u_char  tid[16] = {
        0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
        0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c };
    static const u_char  sid[8] = {
        0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74 };

    w_init(&any);
    w_str(&any, 1, "checkout");

    w_init(&kv);
    w_str(&kv, 1, "service.name");
    w_msg(&kv, 2, &any);

    w_init(&res);
    w_msg(&res, 1, &kv);

    w_init(&any);
    w_uint(&any, 3, 0);                       /* intValue 0: oneof, set */

    w_init(&kv);
    w_str(&kv, 1, "retries");
    w_msg(&kv, 2, &any);

    w_init(&span);
    w_bytes(&span, 1, tid, 16);
    w_bytes(&span, 2, sid, 8);
    w_str(&span, 5, "GET /cart");
    w_uint(&span, 6, 2);
    w_fixed64(&span, 7, 1764100000000000000ULL);
    w_fixed64(&span, 8, 1764100000250000000ULL);
    w_msg(&span, 9, &kv);

    w_init(&ss);
    w_msg(&ss, 2, &span);

    w_init(&rs);
    w_msg(&rs, 1, &res);
    w_msg(&rs, 2, &ss);

    w_init(&req);
    w_msg(&req, 1, &rs);

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_OTLP_TRACES, req.data, w_len(&req),
               &rc);

    is_str(str(got),
           "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
           "\"service.name\",\"value\":{\"stringValue\":\"checkout\"}}]},"
           "\"scopeSpans\":[{\"spans\":[{\"traceId\":"
           "\"5b8efff798038103d269b633813fc60c\",\"spanId\":"
           "\"eee19b7ec3c1b174\",\"name\":\"GET /cart\",\"kind\":2,"
           "\"startTimeUnixNano\":\"1764100000000000000\","
           "\"endTimeUnixNano\":\"1764100000250000000\",\"attributes\":"
           "[{\"key\":\"retries\",\"value\":{\"intValue\":\"0\"}}]}]}]}]}",
           "otlp traces: OTLP/JSON (camelCase, hex ids, int64 strings, "
           "enum numbers, set oneof printed at zero)");

    ok(is_json(got), "otlp traces JSON parses");

    /* logs: severity, body, trace context on a log record */

    w_init(&any);
    w_str(&any, 1, "payment failed");

    w_init(&lr);
    w_fixed64(&lr, 1, 1764100000000000001ULL);
    w_uint(&lr, 2, 17);
    w_str(&lr, 3, "ERROR");
    w_msg(&lr, 5, &any);
    w_bytes(&lr, 9, tid, 16);

    w_init(&sl);
    w_msg(&sl, 2, &lr);

    w_init(&rl);
    w_msg(&rl, 2, &sl);

    w_init(&req);
    w_msg(&req, 1, &rl);

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_OTLP_LOGS, req.data, w_len(&req),
               &rc);

    is_str(str(got),
           "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{"
           "\"timeUnixNano\":\"1764100000000000001\",\"severityNumber\":17,"
           "\"severityText\":\"ERROR\",\"body\":{\"stringValue\":"
           "\"payment failed\"},\"traceId\":"
           "\"5b8efff798038103d269b633813fc60c\"}]}]}]}",
           "otlp logs: OTLP/JSON");
}


static void
test_prometheus(void)
{
    double                      stale;
    wire_t                      l1, l2, s1, s2, s3, ts, req, v2s, v2ts;
    uint64_t                    bits;
    const char                 *got;
    ngx_http_reductrai_pb_rc_e  rc;

    bits = 0x7ff0000000000002ULL;
    memcpy(&stale, &bits, 8);

    w_init(&l1);
    w_str(&l1, 1, "__name__");
    w_str(&l1, 2, "up");

    w_init(&l2);
    w_str(&l2, 1, "job");
    w_str(&l2, 2, "node");

    w_init(&s1);
    w_double(&s1, 1, 1);
    w_uint(&s1, 2, 1764100000000ULL);

    w_init(&s2);
    w_double(&s2, 1, 0);                      /* zero value: printed */
    w_uint(&s2, 2, 1764100015000ULL);

    w_init(&s3);
    w_double(&s3, 1, stale);
    w_uint(&s3, 2, 1764100030000ULL);

    w_init(&ts);
    w_msg(&ts, 1, &l1);
    w_msg(&ts, 1, &l2);
    w_msg(&ts, 2, &s1);
    w_msg(&ts, 2, &s2);
    w_msg(&ts, 2, &s3);

    w_init(&req);
    w_msg(&req, 1, &ts);

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE, req.data, w_len(&req),
               &rc);

    is_str(str(got),
           "{\"timeseries\":[{\"labels\":[{\"name\":\"__name__\",\"value\":"
           "\"up\"},{\"name\":\"job\",\"value\":\"node\"}],\"samples\":["
           "{\"value\":1,\"timestamp\":1764100000000},"
           "{\"value\":0,\"timestamp\":1764100015000},"
           "{\"value\":\"NaN:0x7ff0000000000002\",\"timestamp\":"
           "1764100030000}]}]}",
           "prometheus.WriteRequest: labels, samples, stale marker kept");

    ok(is_json(got), "prometheus.WriteRequest JSON parses");

    /* 2.0: symbols and label references */

    w_init(&v2s);
    w_double(&v2s, 1, 0.25);
    w_uint(&v2s, 2, 1764100000000ULL);

    w_init(&v2ts);
    w_tag(&v2ts, 1, 2);
    w_varint(&v2ts, 2);
    w_varint(&v2ts, 1);
    w_varint(&v2ts, 2);
    w_msg(&v2ts, 2, &v2s);

    w_init(&req);
    w_str(&req, 4, "");
    w_str(&req, 4, "__name__");
    w_str(&req, 4, "up");
    w_msg(&req, 5, &v2ts);

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE_V2, req.data,
               w_len(&req), &rc);

    is_str(str(got),
           "{\"symbols\":[\"\",\"__name__\",\"up\"],\"timeseries\":[{"
           "\"labels_refs\":[1,2],\"samples\":[{\"value\":0.25,"
           "\"timestamp\":1764100000000,\"start_timestamp\":0}]}]}",
           "prometheus.write.v2.Request: symbols and labels_refs");

    /* doubles that are not integers: shortest form; infinities */

    w_init(&s1);
    w_double(&s1, 1, 0.1 + 0.2);
    w_uint(&s1, 2, 1);

    w_init(&s2);
    w_double(&s2, 1, -INFINITY);

    w_init(&ts);
    w_msg(&ts, 2, &s1);
    w_msg(&ts, 2, &s2);

    w_init(&req);
    w_msg(&req, 1, &ts);

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE, req.data, w_len(&req),
               &rc);

    is_str(str(got),
           "{\"timeseries\":[{\"samples\":[{\"value\":0.30000000000000004,"
           "\"timestamp\":1},{\"value\":\"-Infinity\",\"timestamp\":0}]}]}",
           "doubles: the shortest exact form, infinities as strings");
}


static void
test_unknown(void)
{
    wire_t                      series, payload, extra;
    const char                 *got;
    ngx_http_reductrai_pb_rc_e  rc;

    /* unknown fields at the top and inside a series */

    w_init(&series);
    w_str(&series, 2, "m");
    w_uint(&series, 50, 7);

    w_init(&payload);
    w_msg(&payload, 1, &series);

    w_init(&extra);
    w_uint(&extra, 99, 300);
    w_str(&extra, 100, "hi");
    memcpy(payload.p, extra.data, w_len(&extra));
    payload.p += w_len(&extra);

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_DD_METRICS, payload.data,
               w_len(&payload), &rc);

    /* 99:varint 300 = 98 06 ac 02; 100:"hi" = a2 06 02 68 69 */

    ok(got != NULL && strstr(got, "\"_unknown\":\"mAasAqIGAmhp\"}") != NULL,
       "unknown top-level fields kept as base64 of their wire bytes");

    /* 50:varint 7 = 90 03 07 */

    ok(got != NULL && strstr(got, "\"interval\":0,\"_unknown\":\"kAMH\"}")
                      != NULL,
       "unknown fields of a nested message kept");

    ok(is_json(got), "JSON with _unknown parses");
}


static void
test_bad(void)
{
    u_char                      buf[64];
    wire_t                      w, any, kv;
    const char                 *got;
    ngx_http_reductrai_pb_rc_e  rc;

    w_init(&w);
    w_str(&w, 1, "abc");

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE, w.data, w_len(&w) - 1,
               &rc);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_INVALID, "truncated body is invalid");
    ok(got == NULL, "truncated body prints nothing");

    /* a string field holding a message: "abc" is no Label */

    w_init(&w);
    w_str(&kv, 1, "x");
    w_init(&any);
    w_str(&any, 1, "\xff\xfe");
    w_msg(&w, 1, &any);

    json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE, w.data, w_len(&w), &rc);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_INVALID, "bytes that are no message");

    w_init(&kv);
    w_str(&kv, 1, "bad\xc3(");
    w_init(&w);
    w_msg(&w, 1, &kv);
    w_init(&any);
    w_msg(&any, 1, &w);

    json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE, any.data, w_len(&any), &rc);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_INVALID, "invalid UTF-8 in a string");

    w_init(&kv);
    w_bytes(&kv, 1, "a\0b", 3);
    w_init(&w);
    w_msg(&w, 1, &kv);
    w_init(&any);
    w_msg(&any, 1, &w);

    json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE, any.data, w_len(&any), &rc);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_INVALID, "NUL in a string");

    buf[0] = 0x0b;  /* field 1, wire type 3: a group */
    buf[1] = 0x0c;
    json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE, buf, 2, &rc);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_INVALID, "groups are refused");

    buf[0] = 0x00;  /* field 0 */
    buf[1] = 0x01;
    json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE, buf, 2, &rc);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_INVALID, "field number 0 is refused");

    memset(buf, 0xff, 11);
    buf[0] = 0x08;
    json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE, buf, 12, &rc);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_INVALID, "an 11-byte varint is refused");

    got = json(NGX_HTTP_REDUCTRAI_FORMAT_OTLP_LOGS, buf, 0, &rc);
    is_str(str(got), "{}", "an empty body is the empty message");

    is_str(ngx_http_reductrai_pb_error(NGX_HTTP_REDUCTRAI_PB_INVALID),
           "invalid_protobuf", "decode_error of a bad message");
    is_str(ngx_http_reductrai_pb_error(NGX_HTTP_REDUCTRAI_PB_LIMIT),
           "protobuf_limit", "decode_error of a capped message");
}


static void
test_limits(void)
{
    int                         i;
    u_char                     *big, *p, *q;
    size_t                      n, len;
    ngx_http_reductrai_pb_rc_e  rc;

    /*
     * depth: AnyValue{kvlistValue{values[KeyValue{value: AnyValue{…}}]}},
     * 3 messages a level, built from the inside out with 2-byte lengths
     */

    big = malloc(1024 * 1024);

    q = big + 1024 * 1024;
    len = 0;

    for (i = 0; i < 200; i++) {
        q -= 3;
        q[0] = 0x12;
        q[1] = (u_char) (0x80 | (len & 0x7f));
        q[2] = (u_char) (len >> 7);
        len += 3;

        q -= 3;
        q[0] = 0x0a;
        q[1] = (u_char) (0x80 | (len & 0x7f));
        q[2] = (u_char) (len >> 7);
        len += 3;

        q -= 3;
        q[0] = 0x32;
        q[1] = (u_char) (0x80 | (len & 0x7f));
        q[2] = (u_char) (len >> 7);
        len += 3;
    }

    /* the same nesting as an AnyValue body of a log record */

    n = len;

    q -= 3;
    q[0] = 0x2a;                                   /* LogRecord.body */
    q[1] = (u_char) (0x80 | (n & 0x7f));
    q[2] = (u_char) (n >> 7);
    n += 3;

    for (i = 0; i < 3; i++) {
        q -= 4;
        q[0] = (i == 2) ? 0x0a : 0x12;   /* records, scope_logs, resource */
        q[1] = (u_char) (0x80 | (n & 0x7f));
        q[2] = (u_char) (0x80 | ((n >> 7) & 0x7f));
        q[3] = (u_char) (n >> 14);
        n += 4;
    }

    json(NGX_HTTP_REDUCTRAI_FORMAT_OTLP_LOGS, q, n, &rc);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_LIMIT,
           "600 levels of nesting hit the depth cap");

    free(big);

    /* repeated count: 4 Mi + 1 packed label refs */

    n = NGX_HTTP_REDUCTRAI_PB_MAX_REPEATED + 1;
    big = malloc(n + 32);
    p = big;
    *p++ = 0x2a;                                   /* Request.timeseries */
    len = n + 5;
    for (i = 0; i < 4; i++) {
        *p++ = (u_char) (0x80 | (len >> (7 * i)));
    }
    *p++ = (u_char) (len >> 28);
    *p++ = 0x0a;                                   /* labels_refs, packed */
    for (i = 0; i < 3; i++) {
        *p++ = (u_char) (0x80 | (n >> (7 * i)));
    }
    *p++ = (u_char) (n >> 21);
    memset(p, 0, n);
    p += n;

    json(NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE_V2, big, p - big, &rc);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_LIMIT,
           "4 Mi + 1 elements of one repeated field hit the count cap");

    free(big);

    /*
     * memory: 2 Mi empty NumberDataPoints cost far more unpacked than the
     * 32 x 4 MiB + 1 MiB the body may use
     */

    n = 2 * 1024 * 1024;
    big = malloc(2 * n + 64);
    p = big + 32;
    for (i = 0; i < (int) n; i++) {
        *p++ = 0x0a;                               /* Gauge.data_points */
        *p++ = 0x00;
    }
    len = 2 * n;

    /* Metric.gauge (5), ScopeMetrics.metrics (2), ResourceMetrics (2),
     * ExportMetricsServiceRequest (1) */
    q = big + 32;
    {
        static const u_char  tags[] = { 0x0a, 0x2a, 0x12, 0x12, 0x0a };

        for (i = 1; i < 5; i++) {
            *--q = (u_char) (len >> 21);
            *--q = (u_char) (0x80 | ((len >> 14) & 0x7f));
            *--q = (u_char) (0x80 | ((len >> 7) & 0x7f));
            *--q = (u_char) (0x80 | (len & 0x7f));
            *--q = tags[i];
            len += 5;
        }
    }

    json(NGX_HTTP_REDUCTRAI_FORMAT_OTLP_METRICS, q, len, &rc);
    is_int(rc, NGX_HTTP_REDUCTRAI_PB_LIMIT,
           "2 Mi empty data points hit the memory cap");

    ok(pb.held <= NGX_HTTP_REDUCTRAI_PB_MEM_RATIO * len
                  + NGX_HTTP_REDUCTRAI_PB_MEM_EXTRA
                  + NGX_HTTP_REDUCTRAI_PB_MEM_EXTRA * 8,
       "the arena stayed near its cap (%zu bytes)", pb.held);

    free(big);

    ngx_http_reductrai_pb_trim(&pb, 0);
    is_int(pb.held, 0, "trim(0) frees every block");
}


static void
test_detect(void)
{
    size_t  i;

    static const struct {
        const char  *uri;
        const char  *ct;
        unsigned     want;
    } cases[] = {
        { "/api/v2/series", "application/x-protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_DD_METRICS },
        { "/api/v2/series?api_key=x", "application/x-protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_DD_METRICS },
        { "/api/v2/series", "application/json",
          NGX_HTTP_REDUCTRAI_FORMAT_NONE },
        { "/api/v2/series", NULL, NGX_HTTP_REDUCTRAI_FORMAT_NONE },
        { "/api/beta/sketches", "application/x-protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_DD_SKETCHES },
        { "/api/v0.2/traces", "Application/X-Protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_DD_TRACES },
        { "/v1/traces", "application/x-protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_OTLP_TRACES },
        { "/otel/v1/metrics", "application/protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_OTLP_METRICS },
        { "/v1/logs", " application/x-protobuf ; charset=binary",
          NGX_HTTP_REDUCTRAI_FORMAT_OTLP_LOGS },
        { "/v1/logs", "application/json",
          NGX_HTTP_REDUCTRAI_FORMAT_NONE },
        { "/api/v1/write", "application/x-protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE },
        { "/api/v1/write",
          "application/x-protobuf;proto=io.prometheus.write.v2.Request",
          NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE_V2 },
        { "/anything",
          "application/x-protobuf; proto=\"prometheus.WriteRequest\"",
          NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE },
        { "/api/v1/push", "application/x-protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE },
        { "/loki/api/v1/push", "application/x-protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_NONE },
        { "/v1/traces/x", "application/x-protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_NONE },
        { "/v1/tracesx", "application/x-protobuf",
          NGX_HTTP_REDUCTRAI_FORMAT_NONE },
        { "/v1/traces", "application/x-protobufx",
          NGX_HTTP_REDUCTRAI_FORMAT_NONE },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        is_int(ngx_http_reductrai_body_format_detect(
                   (const u_char *) cases[i].uri, strlen(cases[i].uri),
                   (const u_char *) cases[i].ct,
                   cases[i].ct ? strlen(cases[i].ct) : 0),
               cases[i].want, "detect(%s, %s)", cases[i].uri,
               cases[i].ct ? cases[i].ct : "(none)");
    }

    for (i = 1; i < NGX_HTTP_REDUCTRAI_FORMAT_LAST; i++) {
        const char  *name = ngx_http_reductrai_body_format(i)->name;

        is_int(ngx_http_reductrai_body_format_lookup((const u_char *) name,
                                                     strlen(name)),
               i, "lookup(%s)", name);
    }

    is_int(ngx_http_reductrai_body_format_lookup((const u_char *) "json", 4),
           NGX_HTTP_REDUCTRAI_FORMAT_NONE, "lookup of an unknown name");
    ok(ngx_http_reductrai_body_format(NGX_HTTP_REDUCTRAI_FORMAT_NONE) == NULL
       && ngx_http_reductrai_body_format(NGX_HTTP_REDUCTRAI_FORMAT_LAST)
          == NULL,
       "no table row for NONE or beyond the last");
}


static int
record_sink(void *data, const u_char *p, size_t len)
{
    ngx_http_reductrai_buf_t  *b;

    b = data;

    if (ngx_http_reductrai_buf_reserve(b, len + 1) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';

    return 0;
}


static void
test_record(void)
{
    char                                  packed[256];
    size_t                                size, plen;
    wire_t                                l, s, ts, req;
    ngx_http_reductrai_buf_t              line;
    ngx_http_reductrai_record_encoder_t   enc;

    memset(&enc, 0, sizeof(enc));
    memset(&line, 0, sizeof(line));

    w_init(&l);
    w_str(&l, 1, "__name__");
    w_str(&l, 2, "up");
    w_init(&s);
    w_double(&s, 1, 1);
    w_uint(&s, 2, 1764100000000ULL);
    w_init(&ts);
    w_msg(&ts, 1, &l);
    w_msg(&ts, 2, &s);
    w_init(&req);
    w_msg(&req, 1, &ts);

    plen = sizeof(packed);
    ok(snappy_compress((char *) req.data, w_len(&req), packed, &plen)
       == SNAPPY_OK, "snappy_compress");

    ok(ngx_http_reductrai_record_body(&enc, NGX_HTTP_REDUCTRAI_ENC_SNAPPY,
                                      NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE,
                                      (u_char *) packed, plen, 1024,
                                      record_sink, &line, &size) == 0,
       "record_body(snappy, prometheus.WriteRequest)");

    is_str((char *) line.data,
           "\"size\":36,\"body_format\":\"prometheus.WriteRequest\","
           "\"body\":{\"timeseries\":[{\"labels\":[{\"name\":\"__name__\","
           "\"value\":\"up\"}],\"samples\":[{\"value\":1,\"timestamp\":"
           "1764100000000}]}]}}\n",
           "record: body_format then the message as JSON");
    is_int(size, w_len(&req), "size is the decoded protobuf size");

    /* the same bytes declared as OTLP traces: not such a message */

    line.len = 0;
    ok(ngx_http_reductrai_record_body(&enc, NGX_HTTP_REDUCTRAI_ENC_SNAPPY,
                                      NGX_HTTP_REDUCTRAI_FORMAT_DD_METRICS,
                                      (u_char *) packed, plen, 1024,
                                      record_sink, &line, &size) == 0,
       "record_body(snappy, wrong format)");
    ok(strstr((char *) line.data, "\"body_b64\":\"") != NULL
       && strstr((char *) line.data,
                 "\",\"decode_error\":\"invalid_protobuf\"}\n") != NULL
       && strstr((char *) line.data, "body_format") == NULL,
       "a body that is no such message: body_b64 and decode_error");

    /* format 0: today's behaviour, protobuf bytes go to body_b64 */

    line.len = 0;
    ok(ngx_http_reductrai_record_body(&enc, NGX_HTTP_REDUCTRAI_ENC_SNAPPY, 0,
                                      (u_char *) packed, plen, 1024,
                                      record_sink, &line, &size) == 0
       && strstr((char *) line.data, "\"body_b64\":\"") != NULL
       && strstr((char *) line.data, "decode_error") == NULL,
       "format 0 keeps the bytes, with no error");

    /* a JSON body with format 0 is unchanged */

    line.len = 0;
    ok(ngx_http_reductrai_record_body(&enc, NGX_HTTP_REDUCTRAI_ENC_IDENTITY,
                                      0, (u_char *) "{ \"a\": 1 }", 10, 1024,
                                      record_sink, &line, &size) == 0,
       "record_body(JSON, 0)");
    is_str((char *) line.data, "\"size\":10,\"body\":{\"a\":1}}\n",
           "format 0: JSON as before");

    /* a bad snappy block with a format: invalid_snappy, nothing decoded */

    line.len = 0;
    ok(ngx_http_reductrai_record_body(&enc, NGX_HTTP_REDUCTRAI_ENC_SNAPPY,
                                      NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE,
                                      (u_char *) packed, plen - 3, 1024,
                                      record_sink, &line, &size) == 0
       && strstr((char *) line.data,
                 "\"decode_error\":\"invalid_snappy\"}\n") != NULL,
       "bad snappy: decode_error invalid_snappy");

    ngx_http_reductrai_record_encoder_free(&enc);
    ngx_http_reductrai_buf_free(&line);
}


int
main(void)
{
    test_datadog();
    test_datadog_trace();
    test_otlp();
    test_prometheus();
    test_unknown();
    test_bad();
    test_limits();
    test_detect();
    test_record();

    ngx_http_reductrai_pb_trim(&pb, 0);
    ngx_http_reductrai_buf_free(&out);

    return done_testing();
}
