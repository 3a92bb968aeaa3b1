
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The binary body formats the archive turns into JSON: their names (the
 * record's "body_format" and the reductrai_body_format directive), which
 * request carries which, and how each is printed.
 */


#ifndef _NGX_HTTP_REDUCTRAI_BODY_FORMAT_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_BODY_FORMAT_H_INCLUDED_


#include "ngx_http_reductrai_core.h"
#include "ngx_http_reductrai_protobuf.h"


/*
 * 0 is "no binary format": the body is archived as JSON or body_b64.  The
 * values are stored in spool-log frames: append, never renumber.
 */
typedef enum {
    NGX_HTTP_REDUCTRAI_FORMAT_NONE = 0,
    NGX_HTTP_REDUCTRAI_FORMAT_DD_METRICS,     /* datadog.MetricPayload */
    NGX_HTTP_REDUCTRAI_FORMAT_DD_SKETCHES,    /* datadog.SketchPayload */
    NGX_HTTP_REDUCTRAI_FORMAT_DD_TRACES,      /* datadog.trace.AgentPayload */
    NGX_HTTP_REDUCTRAI_FORMAT_OTLP_TRACES,    /* otlp.ExportTraceService… */
    NGX_HTTP_REDUCTRAI_FORMAT_OTLP_METRICS,
    NGX_HTTP_REDUCTRAI_FORMAT_OTLP_LOGS,
    NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE,     /* prometheus.WriteRequest */
    NGX_HTTP_REDUCTRAI_FORMAT_PROM_WRITE_V2,  /* prometheus.write.v2.Request */
    NGX_HTTP_REDUCTRAI_FORMAT_LAST
} ngx_http_reductrai_body_format_e;

/* the directive's "auto" (detect per request); never passed to record_body */
#define NGX_HTTP_REDUCTRAI_FORMAT_AUTO  0xff


typedef struct {
    const char                        *name;
    const ProtobufCMessageDescriptor  *descriptor;
    unsigned                           style;     /* NGX_HTTP_REDUCTRAI_PB_* */
} ngx_http_reductrai_body_format_t;


/*
 * The format of a request body from its path (the query is ignored) and
 * Content-Type: a protobuf media type (application/x-protobuf,
 * application/protobuf, application/vnd.google.protobuf) on
 *   …/api/v2/series            datadog.MetricPayload
 *   …/api/beta/sketches        datadog.SketchPayload
 *   …/api/v0.2/traces          datadog.trace.AgentPayload
 *   …/v1/traces, /v1/metrics, /v1/logs   otlp.Export*ServiceRequest
 *   …/write, /api/v1/push, /api/prom/push, /api/v1/receive
 *                              prometheus.WriteRequest (Prometheus, Mimir,
 *                              Cortex, Thanos), or
 *                              prometheus.write.v2.Request when the type
 *                              says proto=io.prometheus.write.v2.Request
 * A "proto=" parameter naming a known message wins over the path.  NONE
 * for anything else (JSON bodies among them).
 */
ngx_http_reductrai_body_format_e ngx_http_reductrai_body_format_detect(
    const u_char *uri, size_t uri_len, const u_char *content_type,
    size_t ct_len);

/* "datadog.MetricPayload" etc.; NONE for an unknown name */
ngx_http_reductrai_body_format_e ngx_http_reductrai_body_format_lookup(
    const u_char *name, size_t len);

/* the table row of a format other than NONE; NULL for NONE or unknown */
const ngx_http_reductrai_body_format_t *ngx_http_reductrai_body_format(
    unsigned format);

/*
 * The body in[0..len) of the given format as one JSON value appended to
 * out (see ngx_http_reductrai_pb_json()).
 */
ngx_http_reductrai_pb_rc_e ngx_http_reductrai_body_format_json(
    ngx_http_reductrai_pb_t *pb, unsigned format, const u_char *in,
    size_t len, ngx_http_reductrai_buf_t *out);


#endif /* _NGX_HTTP_REDUCTRAI_BODY_FORMAT_H_INCLUDED_ */
