
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * reductrai_health and reductrai_metrics: content handlers in the manner of
 * stub_status.  Both read the shared counters, so any worker answers for
 * the whole instance.
 */


#include "ngx_http_reductrai_module.h"


#define NGX_HTTP_REDUCTRAI_RECENT_MS  30000


static ngx_int_t ngx_http_reductrai_health_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_reductrai_metrics_handler(ngx_http_request_t *r);
static const char *ngx_http_reductrai_vendor_state(ngx_http_request_t *r,
    ngx_http_reductrai_loc_conf_t *rlcf);
static ngx_int_t ngx_http_reductrai_peers_state(
    ngx_http_upstream_srv_conf_t *uscf, ngx_uint_t *total,
    ngx_uint_t *failing);
static ngx_int_t ngx_http_reductrai_status_prologue(ngx_http_request_t *r);
static ngx_uint_t ngx_http_reductrai_ready(void);
static const char *ngx_http_reductrai_storage_name(ngx_uint_t state);
static u_char *ngx_http_reductrai_health_credentials(u_char *p,
    ngx_http_reductrai_storage_t *st);
static u_char *ngx_http_reductrai_metric(u_char *p, const char *name,
    const char *type, const char *help);


char *
ngx_http_reductrai_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_reductrai_loc_conf_t *rlcf = conf;

    ngx_str_t                 *value, *name;
    ngx_uint_t                 i;
    ngx_http_core_loc_conf_t  *clcf;

    if (rlcf->health_live != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    rlcf->health_live = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "live") == 0) {
            rlcf->health_live = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "upstream=", 9) == 0
            && value[i].len > 9)
        {
            if (rlcf->health_upstreams == NULL) {
                rlcf->health_upstreams = ngx_array_create(cf->pool, 2,
                                                          sizeof(ngx_str_t));
                if (rlcf->health_upstreams == NULL) {
                    return NGX_CONF_ERROR;
                }
            }

            name = ngx_array_push(rlcf->health_upstreams);
            if (name == NULL) {
                return NGX_CONF_ERROR;
            }

            name->data = value[i].data + 9;
            name->len = value[i].len - 9;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" (\"live\" or "
                           "\"upstream=NAME\")", &value[i]);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_reductrai_health_handler;

    return NGX_CONF_OK;
}


/* upstreams are all known once the http block has been parsed */

char *
ngx_http_reductrai_health_merge(ngx_conf_t *cf,
    ngx_http_reductrai_loc_conf_t *prev, ngx_http_reductrai_loc_conf_t *conf)
{
    ngx_str_t                       *name;
    ngx_uint_t                       i, j;
    ngx_http_upstream_srv_conf_t   **uscfp, **peer;
    ngx_http_upstream_main_conf_t   *umcf;

    if (conf->health_upstreams == NULL || conf->health_peers != NULL) {
        return NGX_CONF_OK;
    }

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;
    name = conf->health_upstreams->elts;

    conf->health_peers = ngx_array_create(cf->pool,
                                          conf->health_upstreams->nelts,
                                          sizeof(void *));
    if (conf->health_peers == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < conf->health_upstreams->nelts; i++) {

        for (j = 0; j < umcf->upstreams.nelts; j++) {
            if (uscfp[j]->host.len == name[i].len
                && ngx_strncasecmp(uscfp[j]->host.data, name[i].data,
                                   name[i].len) == 0
                && (uscfp[j]->flags & NGX_HTTP_UPSTREAM_CREATE))
            {
                break;
            }
        }

        if (j == umcf->upstreams.nelts) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"reductrai_health\": no upstream \"%V\"",
                          &name[i]);
            return NGX_CONF_ERROR;
        }

        if (uscfp[j]->shm_zone == NULL) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "\"reductrai_health\": upstream \"%V\" has no "
                          "\"zone\", so its peer state is per worker; the "
                          "vendor state comes from recent forwards instead",
                          &name[i]);
            continue;
        }

        peer = ngx_array_push(conf->health_peers);
        if (peer == NULL) {
            return NGX_CONF_ERROR;
        }

        *peer = uscfp[j];
    }

    return NGX_CONF_OK;
}


char *
ngx_http_reductrai_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_reductrai_metrics_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_reductrai_metrics_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_reductrai_health_handler(ngx_http_request_t *r)
{
    int64_t                          lag;
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_str_t                        type;
    ngx_uint_t                       ready, storage, status;
    const char                      *vendor, *state;
    ngx_http_reductrai_shm_t        *sh;
    ngx_http_reductrai_loc_conf_t   *rlcf;
    ngx_http_reductrai_main_conf_t  *rmcf;

    rc = ngx_http_reductrai_status_prologue(r);
    if (rc != NGX_OK) {
        return rc;
    }

    sh = ngx_http_reductrai_shm();
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_reductrai_module);
    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_reductrai_module);

    lag = ngx_http_reductrai_lag();

    storage = rmcf->storage ? sh->storage_state
                            : NGX_HTTP_REDUCTRAI_STORAGE_UNKNOWN;
    vendor = ngx_http_reductrai_vendor_state(r, rlcf);
    ready = ngx_http_reductrai_ready();

    /*
     * Readiness fails only when this instance would refuse requests now:
     * a shared storage outage hits every instance at once, and emptying
     * the load balancer over it would turn an archive delay into data loss.
     */

    if (!ready) {
        state = "unavailable";

    } else if (storage == NGX_HTTP_REDUCTRAI_STORAGE_DISCONNECTED
               || ngx_strcmp(vendor, "degraded") == 0
               || ngx_strcmp(vendor, "down") == 0)
    {
        state = "degraded";

    } else {
        state = "ok";
    }

    status = (ready || rlcf->health_live) ? NGX_HTTP_OK
                                          : NGX_HTTP_SERVICE_UNAVAILABLE;

    b = ngx_create_temp_buf(r->pool, 1024);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last,
                          "{\"status\":\"%s\",\"uptime\":%T,"
                          "\"version\":\"" NGX_HTTP_REDUCTRAI_VERSION "\","
                          "\"storage\":\"%s\",\"datadog\":\"%s\","
                          "\"spool\":{\"bytes\":%uA,\"max_bytes\":%O,"
                          "\"segments\":%uA},\"archive_lag_seconds\":%L",
                          state, ngx_time() - (time_t) sh->start_time,
                          ngx_http_reductrai_storage_name(storage), vendor,
                          sh->spool_bytes, rmcf->spool_max_size,
                          sh->spool_segments, lag);

    b->last = ngx_http_reductrai_health_credentials(b->last, rmcf->storage);
    *b->last++ = '}';
    *b->last++ = LF;

    ngx_str_set(&type, "application/json");

    return ngx_http_reductrai_status_send(r, status, &type, b);
}


/* ,"credentials":{"source":"...","error":"..."}: where, and why not */

static u_char *
ngx_http_reductrai_health_credentials(u_char *p,
    ngx_http_reductrai_storage_t *st)
{
    char         failure[256];
    size_t       len;
    const char  *source;

    source = st ? ngx_http_reductrai_storage_credentials(st, failure,
                                                         sizeof(failure))
                : NULL;
    if (source == NULL) {
        return p;
    }

    p = ngx_sprintf(p, ",\"credentials\":{\"source\":\"%s\"", source);

    len = ngx_strlen(failure);

    if (len) {
        p = ngx_cpymem(p, ",\"error\":\"", sizeof(",\"error\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, (u_char *) failure, len);
        *p++ = '"';
    }

    *p++ = '}';

    return p;
}


/* GET and HEAD only, as stub_status; the counters must be there */

static ngx_int_t
ngx_http_reductrai_status_prologue(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_reductrai_shm() ? NGX_OK : NGX_HTTP_SERVICE_UNAVAILABLE;
}


static ngx_uint_t
ngx_http_reductrai_ready(void)
{
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_reductrai_worker_conf();

    if (rmcf->storage == NULL || !rmcf->rejecting) {
        return 1;
    }

    return !ngx_http_reductrai_spool_full()
           && !ngx_http_reductrai_buffer_pressed()
           && !ngx_http_reductrai_spool_failing();
}


static const char *
ngx_http_reductrai_vendor_state(ngx_http_request_t *r,
    ngx_http_reductrai_loc_conf_t *rlcf)
{
    int64_t                         now;
    ngx_uint_t                      i, total, failing, known;
    ngx_http_reductrai_shm_t       *sh;
    ngx_http_upstream_srv_conf_t  **uscfp;

    if (rlcf->health_peers != NULL && rlcf->health_peers->nelts > 0) {
        uscfp = rlcf->health_peers->elts;
        total = 0;
        failing = 0;
        known = 0;

        for (i = 0; i < rlcf->health_peers->nelts; i++) {
            if (ngx_http_reductrai_peers_state(uscfp[i], &total, &failing)
                == NGX_OK)
            {
                known = 1;
            }
        }

        if (known) {
            return total == 0 || failing == total ? "down"
                   : failing ? "degraded" : "connected";
        }
    }

    /* without a zone: what recent forwards told us */

    sh = ngx_http_reductrai_shm();
    now = ngx_http_reductrai_now_ms();

    if (sh->last_ok_ms == 0 && sh->last_err_ms == 0) {
        return "unknown";
    }

    if (sh->failing >= 3 && sh->last_err_ms >= sh->last_ok_ms) {
        return "down";
    }

    if (sh->last_err_ms != 0
        && now - (int64_t) sh->last_err_ms < NGX_HTTP_REDUCTRAI_RECENT_MS)
    {
        return "degraded";
    }

    return "connected";
}


static ngx_int_t
ngx_http_reductrai_peers_state(ngx_http_upstream_srv_conf_t *uscf,
    ngx_uint_t *total, ngx_uint_t *failing)
{
    time_t                         now;
    ngx_http_upstream_rr_peer_t   *peer;
    ngx_http_upstream_rr_peers_t  *peers, *set;

    peers = uscf->peer.data;

    /*
     * The zone replaces peer.data at start: read it per request.  A lone
     * server is never marked failed by nginx, so it tells nothing.
     */

    if (peers == NULL || peers->shpool == NULL || peers->single) {
        return NGX_DECLINED;
    }

    now = ngx_time();

    ngx_http_upstream_rr_peers_rlock(peers);

    for (set = peers; set; set = set->next) {
        for (peer = set->peer; peer; peer = peer->next) {
            (*total)++;

            if (peer->down
                || (peer->max_fails && peer->fails >= peer->max_fails
                    && now - peer->checked <= peer->fail_timeout))
            {
                (*failing)++;
            }
        }
    }

    ngx_http_upstream_rr_peers_unlock(peers);

    return NGX_OK;
}


static const char *
ngx_http_reductrai_storage_name(ngx_uint_t state)
{
    switch (state) {
    case NGX_HTTP_REDUCTRAI_STORAGE_CONNECTED:
        return "connected";
    case NGX_HTTP_REDUCTRAI_STORAGE_DISCONNECTED:
        return "disconnected";
    default:
        return "unknown";
    }
}


static ngx_int_t
ngx_http_reductrai_metrics_handler(ngx_http_request_t *r)
{
    size_t                              size;
    ngx_int_t                           rc;
    ngx_buf_t                          *b;
    ngx_str_t                           type;
    ngx_uint_t                          i, c;
    ngx_http_reductrai_shm_t           *sh;
    ngx_http_reductrai_stream_stats_t  *st;
    ngx_http_reductrai_main_conf_t     *rmcf;

    static const char  *classes[] = { "2xx", "3xx", "4xx", "5xx", "error" };

    rc = ngx_http_reductrai_status_prologue(r);
    if (rc != NGX_OK) {
        return rc;
    }

    sh = ngx_http_reductrai_shm();
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_reductrai_module);

    size = 8192 + NGX_HTTP_REDUCTRAI_SLOTS * 1024;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

#define ngx_http_reductrai_streams(expr)                                     \
    for (i = 0; i < NGX_HTTP_REDUCTRAI_SLOTS; i++) {                         \
        st = &sh->streams[i];                                                \
        if (st->ready) {                                                     \
            expr;                                                            \
        }                                                                    \
    }

    b->last = ngx_http_reductrai_metric(b->last, "reductrai_requests_total",
                 "counter", "Tapped requests accepted (archived or bypassed).");
    ngx_http_reductrai_streams(
        b->last = ngx_sprintf(b->last,
                              "reductrai_requests_total{stream=\"%s\"} %uA\n",
                              st->name, st->requests));

    b->last = ngx_http_reductrai_metric(b->last,
                 "reductrai_requests_errors_total", "counter",
                 "Tapped requests that failed on our side (refused by the "
                 "spool-full policy).");
    ngx_http_reductrai_streams(
        b->last = ngx_sprintf(b->last,
                              "reductrai_requests_errors_total"
                              "{stream=\"%s\"} %uA\n",
                              st->name, st->errors));

    b->last = ngx_http_reductrai_metric(b->last,
                 "reductrai_upstream_responses_total", "counter",
                 "Forwarded requests by vendor status class.");
    ngx_http_reductrai_streams(
        for (c = 0; c < NGX_HTTP_REDUCTRAI_CLASSES; c++) {
            b->last = ngx_sprintf(b->last,
                                  "reductrai_upstream_responses_total"
                                  "{stream=\"%s\",class=\"%s\"} %uA\n",
                                  st->name, classes[c], st->upstream[c]);
        });

#undef ngx_http_reductrai_streams

#define ngx_http_reductrai_value(name, type, help, fmt, value)               \
    b->last = ngx_http_reductrai_metric(b->last, name, type, help);          \
    b->last = ngx_sprintf(b->last, name " " fmt "\n", value)

    ngx_http_reductrai_value("reductrai_datadog_forward_errors_total",
        "counter", "Forwarded requests that got a 5xx or no response.",
        "%uA", sh->forward_errors);
    ngx_http_reductrai_value("reductrai_bytes_received_total", "counter",
        "Request body bytes received by tapped locations, as sent.",
        "%uA", sh->bytes_received);
    ngx_http_reductrai_value("reductrai_bytes_archived_total", "counter",
        "Decoded body bytes written to the archive.",
        "%uA", sh->bytes_archived);
    ngx_http_reductrai_value("reductrai_storage_bytes_total", "counter",
        "Compressed bytes stored in storage.", "%uA", sh->storage_bytes);

    b->last = ngx_http_reductrai_metric(b->last,
                 "reductrai_compression_ratio", "gauge",
                 "Bytes received divided by bytes stored.");

    if (sh->storage_bytes) {
        b->last = ngx_sprintf(b->last, "reductrai_compression_ratio %.3f\n",
                              (double) sh->bytes_received
                              / (double) sh->storage_bytes);
    } else {
        b->last = ngx_sprintf(b->last, "reductrai_compression_ratio 0\n");
    }

    ngx_http_reductrai_value("reductrai_storage_uploads_total", "counter",
        "Segments stored.", "%uA", sh->uploads);
    ngx_http_reductrai_value("reductrai_storage_upload_errors_total",
        "counter", "Failed upload attempts.", "%uA", sh->upload_errors);

    if (sh->storage_state != NGX_HTTP_REDUCTRAI_STORAGE_UNKNOWN) {
        ngx_http_reductrai_value("reductrai_storage_connected", "gauge",
            "1 after the last upload or probe succeeded, 0 after it failed.",
            "%ui", (ngx_uint_t) (sh->storage_state
                                 == NGX_HTTP_REDUCTRAI_STORAGE_CONNECTED));
    }

    ngx_http_reductrai_value("reductrai_archive_lag_seconds", "gauge",
        "Age of the oldest record not yet in storage.", "%L",
        ngx_http_reductrai_lag());
    ngx_http_reductrai_value("reductrai_spool_bytes", "gauge",
        "Bytes in the spool.", "%uA", sh->spool_bytes);
    ngx_http_reductrai_value("reductrai_spool_max_bytes", "gauge",
        "The spool's max_size.", "%O", rmcf->spool_max_size);
    ngx_http_reductrai_value("reductrai_spool_segments", "gauge",
        "Segments in the spool, open or waiting to ship.", "%uA",
        sh->spool_segments);
    ngx_http_reductrai_value("reductrai_seal_jobs_running", "gauge",
        "Seal jobs at work, summed over workers (reductrai_seal_concurrency "
        "at most per worker).", "%uA", sh->seals_running);
    ngx_http_reductrai_value("reductrai_seal_jobs_queued", "gauge",
        "Closed spool logs waiting for a seal job.", "%uA",
        sh->seals_queued);
    ngx_http_reductrai_value("reductrai_spool_quarantined_total", "counter",
        "Unreadable spool files moved aside.", "%uA", sh->quarantined);
    ngx_http_reductrai_value("reductrai_archive_dropped_total", "counter",
        "Requests passed on without being archived (bypass policy).",
        "%uA", sh->dropped);
    ngx_http_reductrai_value("reductrai_stream_overflow_total", "counter",
        "Tapped requests counted as stream \"other\" because their stream "
        "name was invalid or no slot was left for it.",
        "%uA", sh->stream_overflow);
    ngx_http_reductrai_value("reductrai_health_status", "gauge",
        "1 when ready to accept requests, 0 when not.", "%ui",
        ngx_http_reductrai_ready());
    ngx_http_reductrai_value("reductrai_uptime_seconds", "gauge",
        "Seconds since the instance started.", "%T",
        ngx_time() - (time_t) sh->start_time);

#undef ngx_http_reductrai_value

    b->last = ngx_http_reductrai_metric(b->last, "reductrai_info", "gauge",
                                        "Version and instance name.");
    b->last = ngx_sprintf(b->last,
                          "reductrai_info{version=\""
                          NGX_HTTP_REDUCTRAI_VERSION "\",instance=\"%V\"} 1\n",
                          &rmcf->instance);

    ngx_str_set(&type, "text/plain; version=0.0.4");

    return ngx_http_reductrai_status_send(r, NGX_HTTP_OK, &type, b);
}


static u_char *
ngx_http_reductrai_metric(u_char *p, const char *name, const char *type,
    const char *help)
{
    return ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                       type);
}


/* the answer in one buffer, as stub_status sends it; also the tap's */

ngx_int_t
ngx_http_reductrai_status_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = b->last - b->pos;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
