
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_body_format.h"

#include <string.h>
#include <strings.h>

#include "datadog_metrics.pb-c.h"
#include "datadog_trace.pb-c.h"
#include "otlp_trace.pb-c.h"
#include "otlp_metrics.pb-c.h"
#include "otlp_logs.pb-c.h"
#include "prometheus_remote.pb-c.h"
#include "prometheus_write_v2.pb-c.h"


typedef struct {
    const char                        *suffix;
    size_t                             len;
    ngx_http_reductrai_body_format_e   format;
} ngx_http_reductrai_body_path_t;


static int ngx_http_reductrai_body_format_protobuf(const u_char *ct,
    size_t len, ngx_http_reductrai_body_format_e *proto);
static int ngx_http_reductrai_body_format_is(const u_char *s, size_t len,
    const char *name);


#define ngx_http_reductrai_otlp_request(pkg, msg)                            \
    &opentelemetry__proto__ ## pkg ## __v1__export_ ## msg                   \
    ## _service_request__descriptor


/* a new payload type: its .proto in proto/, a row here and in the paths */

static const ngx_http_reductrai_body_format_t
    ngx_http_reductrai_body_formats[] =
{
    { NULL, NULL, 0 },

    { "datadog.MetricPayload",
      &datadog__agentpayload__metric_payload__descriptor,
      NGX_HTTP_REDUCTRAI_PB_DEFAULTS },

    { "datadog.SketchPayload",
      &datadog__agentpayload__sketch_payload__descriptor,
      NGX_HTTP_REDUCTRAI_PB_DEFAULTS },

    { "datadog.trace.AgentPayload",
      &datadog__trace__agent_payload__descriptor,
      NGX_HTTP_REDUCTRAI_PB_DEFAULTS },

    { "otlp.ExportTraceServiceRequest",
      ngx_http_reductrai_otlp_request(trace, trace),
      NGX_HTTP_REDUCTRAI_PB_OTLP },

    { "otlp.ExportMetricsServiceRequest",
      ngx_http_reductrai_otlp_request(metrics, metrics),
      NGX_HTTP_REDUCTRAI_PB_OTLP },

    { "otlp.ExportLogsServiceRequest",
      ngx_http_reductrai_otlp_request(logs, logs),
      NGX_HTTP_REDUCTRAI_PB_OTLP },

    { "prometheus.WriteRequest",
      &prometheus__write_request__descriptor,
      NGX_HTTP_REDUCTRAI_PB_DEFAULTS },

    { "prometheus.write.v2.Request",
      &io__prometheus__write__v2__request__descriptor,
      NGX_HTTP_REDUCTRAI_PB_DEFAULTS }
};


#define ngx_http_reductrai_body_path(s, f)  { s, sizeof(s) - 1, f }

static const ngx_http_reductrai_body_path_t  ngx_http_reductrai_body_paths[] =
{
    ngx_http_reductrai_body_path("/api/v2/series",
                                 NGX_HTTP_REDUCTRAI_FORMAT_DD_METRICS),
    ngx_http_reductrai_body_path("/api/beta/sketches",
                                 NGX_HTTP_REDUCTRAI_FORMAT_DD_SKETCHES),
    ngx_http_reductrai_body_path("/api/v0.2/traces",
                                 NGX_HTTP_REDUCTRAI_FORMAT_DD_TRACES),
    ngx_http_reductrai_body_path("/v1/traces",
                                 NGX_HTTP_REDUCTRAI_FORMAT_OTLP_TRACES),
    ngx_http_reductrai_body_path("/v1/metrics",
                                 NGX_HTTP_REDUCTRAI_FORMAT_OTLP_METRICS),
    ngx_http_reductrai_body_path("/v1/logs",
                                 NGX_HTTP_REDUCTRAI_FORMAT_OTLP_LOGS),
    ngx_http_reductrai_body_path("/write",
                                 NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE),
    ngx_http_reductrai_body_path("/api/v1/push",
                                 NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE),
    ngx_http_reductrai_body_path("/api/prom/push",
                                 NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE),
    ngx_http_reductrai_body_path("/api/v1/receive",
                                 NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE),
    { NULL, 0, NGX_HTTP_REDUCTRAI_FORMAT_NONE }
};


ngx_http_reductrai_body_format_e
ngx_http_reductrai_body_format_detect(const u_char *uri, size_t uri_len,
    const u_char *content_type, size_t ct_len)
{
    const u_char                            *q;
    ngx_http_reductrai_body_format_e         proto;
    const ngx_http_reductrai_body_path_t    *path;

    if (content_type == NULL
        || !ngx_http_reductrai_body_format_protobuf(content_type, ct_len,
                                                    &proto))
    {
        return NGX_HTTP_REDUCTRAI_FORMAT_NONE;
    }

    if (proto != NGX_HTTP_REDUCTRAI_FORMAT_NONE) {
        return proto;
    }

    if (uri == NULL) {
        return NGX_HTTP_REDUCTRAI_FORMAT_NONE;
    }

    q = memchr(uri, '?', uri_len);
    if (q != NULL) {
        uri_len = q - uri;
    }

    /* Loki's push API is protobuf too, but another message */

    if (memmem(uri, uri_len, "/loki/", 6) != NULL) {
        return NGX_HTTP_REDUCTRAI_FORMAT_NONE;
    }

    for (path = ngx_http_reductrai_body_paths; path->suffix != NULL; path++) {
        if (uri_len >= path->len
            && memcmp(uri + uri_len - path->len, path->suffix, path->len)
               == 0)
        {
            return path->format;
        }
    }

    return NGX_HTTP_REDUCTRAI_FORMAT_NONE;
}


ngx_http_reductrai_body_format_e
ngx_http_reductrai_body_format_lookup(const u_char *name, size_t len)
{
    unsigned     i;
    const char  *s;

    for (i = 1; i < NGX_HTTP_REDUCTRAI_FORMAT_LAST; i++) {
        s = ngx_http_reductrai_body_formats[i].name;

        if (ngx_http_reductrai_body_format_is(name, len, s)) {
            return i;
        }
    }

    return NGX_HTTP_REDUCTRAI_FORMAT_NONE;
}


const ngx_http_reductrai_body_format_t *
ngx_http_reductrai_body_format(unsigned format)
{
    if (format == NGX_HTTP_REDUCTRAI_FORMAT_NONE
        || format >= NGX_HTTP_REDUCTRAI_FORMAT_LAST)
    {
        return NULL;
    }

    return &ngx_http_reductrai_body_formats[format];
}


ngx_http_reductrai_pb_rc_e
ngx_http_reductrai_body_format_json(ngx_http_reductrai_pb_t *pb,
    unsigned format, const u_char *in, size_t len,
    ngx_http_reductrai_buf_t *out)
{
    const ngx_http_reductrai_body_format_t  *bf;

    bf = ngx_http_reductrai_body_format(format);
    if (bf == NULL) {
        return NGX_HTTP_REDUCTRAI_PB_INVALID;
    }

    return ngx_http_reductrai_pb_json(pb, bf->descriptor, bf->style, in, len,
                                      out);
}


/*
 * Whether a Content-Type is a protobuf media type; *proto is the format its
 * "proto=" parameter names (Prometheus remote write 2.0 sends
 * "application/x-protobuf;proto=io.prometheus.write.v2.Request"), else NONE.
 */

static int
ngx_http_reductrai_body_format_protobuf(const u_char *ct, size_t len,
    ngx_http_reductrai_body_format_e *proto)
{
    const u_char  *p, *end, *semi, *v;

    *proto = NGX_HTTP_REDUCTRAI_FORMAT_NONE;

    end = ct + len;

    semi = memchr(ct, ';', len);
    if (semi == NULL) {
        semi = end;
    }

    while (ct < semi && (*ct == ' ' || *ct == '\t')) {
        ct++;
    }

    p = semi;

    while (p > ct && (p[-1] == ' ' || p[-1] == '\t')) {
        p--;
    }

    if (!ngx_http_reductrai_body_format_is(ct, p - ct,
                                           "application/x-protobuf")
        && !ngx_http_reductrai_body_format_is(ct, p - ct,
                                              "application/protobuf")
        && !ngx_http_reductrai_body_format_is(ct, p - ct,
                                         "application/vnd.google.protobuf"))
    {
        return 0;
    }

    for (p = semi; p < end; p = semi) {
        p++;

        semi = memchr(p, ';', end - p);
        if (semi == NULL) {
            semi = end;
        }

        while (p < semi && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (semi - p < 6 || strncasecmp((const char *) p, "proto=", 6) != 0) {
            continue;
        }

        v = p + 6;
        p = semi;

        while (p > v && (p[-1] == ' ' || p[-1] == '\t')) {
            p--;
        }

        if (p - v >= 2 && *v == '"' && p[-1] == '"') {
            v++;
            p--;
        }

        if (ngx_http_reductrai_body_format_is(v, p - v,
                                            "io.prometheus.write.v2.Request"))
        {
            *proto = NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE_V2;

        } else if (ngx_http_reductrai_body_format_is(v, p - v,
                                                    "prometheus.WriteRequest"))
        {
            *proto = NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE;
        }
    }

    return 1;
}


static int
ngx_http_reductrai_body_format_is(const u_char *s, size_t len,
    const char *name)
{
    return strlen(name) == len
           && strncasecmp((const char *) s, name, len) == 0;
}
