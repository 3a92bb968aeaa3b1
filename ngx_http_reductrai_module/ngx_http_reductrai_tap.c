
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The tap: a PRECONTENT phase handler.  For a tapped location it decides
 * forward-or-answer, reads the body (as the mirror module does), appends a
 * record to the spool, and resumes the phases (forward) or answers with
 * reductrai_ack once the record is committed at the configured durability.
 */


#include "ngx_http_reductrai_module.h"

#include <openssl/rand.h>


typedef struct {
    ngx_table_elt_t                 *content_encoding;
    ngx_table_elt_t                 *request_id;
    ngx_table_elt_t                 *api_key;
} ngx_http_reductrai_headers_t;


static ngx_int_t ngx_http_reductrai_handler(ngx_http_request_t *r);
static ngx_http_reductrai_ctx_t *ngx_http_reductrai_get_ctx(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_reductrai_redirected(ngx_http_request_t *r,
    ngx_http_reductrai_ctx_t *ctx);
static ngx_int_t ngx_http_reductrai_forwards(ngx_http_request_t *r,
    ngx_http_reductrai_loc_conf_t *rlcf, ngx_uint_t *forward);
static ngx_int_t ngx_http_reductrai_decide(ngx_http_request_t *r,
    ngx_http_reductrai_loc_conf_t *rlcf, ngx_http_reductrai_ctx_t *ctx);
static ngx_int_t ngx_http_reductrai_tap_failed(ngx_http_request_t *r,
    ngx_http_reductrai_loc_conf_t *rlcf, ngx_http_reductrai_ctx_t *ctx);
static ngx_uint_t ngx_http_reductrai_policy(
    ngx_http_reductrai_loc_conf_t *rlcf, ngx_uint_t forward);
static void ngx_http_reductrai_body_handler(ngx_http_request_t *r);
static ngx_http_reductrai_record_t *ngx_http_reductrai_record_create(
    ngx_http_request_t *r, ngx_http_reductrai_ctx_t *ctx);
static void ngx_http_reductrai_committed(ngx_http_reductrai_record_t *rec,
    ngx_int_t rc);
static ngx_int_t ngx_http_reductrai_record_meta(ngx_http_request_t *r,
    ngx_http_reductrai_ctx_t *ctx, ngx_http_reductrai_record_meta_t *meta,
    ngx_http_reductrai_headers_t *h, u_char *ts, u_char *fp);
static ngx_int_t ngx_http_reductrai_record_body_copy(ngx_http_request_t *r,
    ngx_http_reductrai_record_t *rec, u_char *body,
    ngx_http_reductrai_piece_t *pieces);
static ngx_http_variable_value_t *ngx_http_reductrai_request_id(
    ngx_http_request_t *r, ngx_int_t index);
static uint64_t ngx_http_reductrai_mix64(uint64_t x);
static void ngx_http_reductrai_key_fp(u_char *fp, ngx_str_t *key);
static void ngx_http_reductrai_find_headers(ngx_http_request_t *r,
    ngx_http_reductrai_headers_t *h);
static ngx_str_t ngx_http_reductrai_api_key(ngx_http_request_t *r,
    ngx_http_reductrai_headers_t *h);
static void ngx_http_reductrai_proceed(ngx_http_request_t *r,
    ngx_http_reductrai_ctx_t *ctx);
static void ngx_http_reductrai_refuse(ngx_http_request_t *r,
    ngx_http_reductrai_ctx_t *ctx);
static ngx_uint_t ngx_http_reductrai_client_gone(ngx_http_request_t *r);
static void ngx_http_reductrai_cleanup(void *data);
static ngx_int_t ngx_http_reductrai_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body, ngx_uint_t retry);
static ngx_int_t ngx_http_reductrai_record_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_reductrai_log_handler(ngx_http_request_t *r);


static ngx_str_t  ngx_http_reductrai_refused_body =
    ngx_string("{\"errors\":[\"archive unavailable, retry later\"]}");


/* refusals are counted each, and logged once a minute per worker */
static int64_t  ngx_http_reductrai_spool_full_logged;
static int64_t  ngx_http_reductrai_buffer_full_logged;


static ngx_http_variable_t  ngx_http_reductrai_vars[] = {

    { ngx_string("reductrai_record_id"), NULL,
      ngx_http_reductrai_record_id_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_reductrai_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_reductrai_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_reductrai_tap_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_reductrai_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_reductrai_log_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_reductrai_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_pool_cleanup_t             *cln;
    ngx_http_reductrai_ctx_t       *ctx;
    ngx_http_reductrai_loc_conf_t  *rlcf;

    ctx = ngx_http_reductrai_get_ctx(r);

    if (ctx != NULL) {
        if (r->internal
            && (ctx->phase_rc == NGX_DECLINED || !ctx->body_read))
        {
            return ngx_http_reductrai_redirected(r, ctx);
        }

        /* the phases resumed after the commit */
        return ctx->phase_rc;
    }

    if (r != r->main) {
        return NGX_DECLINED;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_reductrai_module);

    if (!rlcf->enable
        || !(r->method & (NGX_HTTP_POST|NGX_HTTP_PUT|NGX_HTTP_PATCH))
        || ngx_http_reductrai_shm() == NULL)
    {
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_reductrai_ctx_t));
    if (ctx == NULL) {
        return ngx_http_reductrai_tap_failed(r, rlcf, NULL);
    }

    ctx->request = r;
    ctx->phase_rc = NGX_DONE;

    if (ngx_http_reductrai_decide(r, rlcf, ctx) != NGX_OK) {
        return ngx_http_reductrai_tap_failed(r, rlcf, ctx);
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return ngx_http_reductrai_tap_failed(r, rlcf, ctx);
    }

    cln->handler = ngx_http_reductrai_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_reductrai_module);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "reductrai tap: stream slot %ui, forward %ui",
                   ctx->slot, (ngx_uint_t) ctx->forward);

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_reductrai_body_handler);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;
}


/*
 * An internal redirect (error_page, X-Accel-Redirect, try_files) clears the
 * module contexts; the pool cleanup still holds ours, so that a body is
 * archived once and the vendor's answer is still counted.
 */

static ngx_http_reductrai_ctx_t *
ngx_http_reductrai_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_reductrai_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_reductrai_module);

    if (ctx != NULL || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_reductrai_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_reductrai_module);
            break;
        }
    }

    return ctx;
}


/*
 * A tapped request came back after an internal redirect (error_page,
 * X-Accel-Redirect, try_files).  Either reading its body failed (400, 408,
 * 413) and the body handler will never run: it is answered with the error
 * found, since what was read of the body is neither archived nor fit to
 * forward.  Or the tap let it through and its body is archived already: a
 * forwarding location forwards it, one that answers locally acknowledges.
 */

static ngx_int_t
ngx_http_reductrai_redirected(ngx_http_request_t *r,
    ngx_http_reductrai_ctx_t *ctx)
{
    ngx_uint_t                      forward;
    ngx_http_reductrai_loc_conf_t  *rlcf;

    if (!ctx->body_read) {
        ctx->phase_rc = NGX_DECLINED;
        return r->err_status >= NGX_HTTP_BAD_REQUEST
               ? (ngx_int_t) r->err_status : NGX_HTTP_BAD_REQUEST;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_reductrai_module);

    if (!rlcf->enable) {
        return NGX_DECLINED;
    }

    /* archived already: a decision that cannot be taken forwards */

    if (ngx_http_reductrai_forwards(r, rlcf, &forward) != NGX_OK || forward) {
        return NGX_DECLINED;
    }

    ngx_http_finalize_request(r, ngx_http_reductrai_send(r, rlcf->ack_status,
                                                         &rlcf->ack_body, 0));
    return NGX_DONE;
}


static ngx_int_t
ngx_http_reductrai_forwards(ngx_http_request_t *r,
    ngx_http_reductrai_loc_conf_t *rlcf, ngx_uint_t *forward)
{
    ngx_str_t  value;

    if (rlcf->forward != NGX_HTTP_REDUCTRAI_FORWARD_VAR) {
        *forward = rlcf->forward;
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, rlcf->forward_var, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    *forward = !(value.len == 0 || (value.len == 1 && value.data[0] == '0'));

    return NGX_OK;
}


/* forward or answer locally, and which stream */

static ngx_int_t
ngx_http_reductrai_decide(ngx_http_request_t *r,
    ngx_http_reductrai_loc_conf_t *rlcf, ngx_http_reductrai_ctx_t *ctx)
{
    ngx_str_t   value;
    ngx_uint_t  forward;

    /* what a failure leaves undecided: forwarded, and the stream "other" */

    ctx->forward = (rlcf->forward != 0);
    ctx->slot = NGX_HTTP_REDUCTRAI_OTHER;

    if (ngx_http_reductrai_forwards(r, rlcf, &forward) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->forward = forward;

    if (rlcf->stream == NULL) {
        ngx_str_set(&value, "default");

    } else if (ngx_http_complex_value(r, rlcf->stream, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->slot = ngx_http_reductrai_stream_slot(&value);

    return NGX_OK;
}


/*
 * The tap failed on its own before reading the body (no memory for its
 * state or for a variable's value): reductrai_spool_full decides, as when
 * the spool is full, rather than a 500.  Nothing is archived, so no record
 * id is set; nginx reads the body for the vendor, or discards it.
 */

static ngx_int_t
ngx_http_reductrai_tap_failed(ngx_http_request_t *r,
    ngx_http_reductrai_loc_conf_t *rlcf, ngx_http_reductrai_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_uint_t                 forward, slot, bypass;
    ngx_http_reductrai_shm_t  *sh;

    static int64_t  logged;

    sh = ngx_http_reductrai_shm();
    forward = ctx ? ctx->forward : (rlcf->forward != 0);
    slot = ctx ? ctx->slot : NGX_HTTP_REDUCTRAI_OTHER;

    if (ngx_http_reductrai_log_once(&logged)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "reductrai tap failed, reductrai_spool_full applies");
    }

    bypass = (ngx_http_reductrai_policy(rlcf, forward)
              == NGX_HTTP_REDUCTRAI_FULL_BYPASS);

    if (bypass) {
        (void) ngx_atomic_fetch_add(&sh->dropped, 1);
        (void) ngx_atomic_fetch_add(&sh->streams[slot].requests, 1);

        if (forward) {
            return NGX_DECLINED;
        }

    } else {
        (void) ngx_atomic_fetch_add(&sh->streams[slot].errors, 1);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (bypass) {
        rc = ngx_http_reductrai_send(r, rlcf->ack_status, &rlcf->ack_body, 0);

    } else {
        rc = ngx_http_reductrai_send(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     &ngx_http_reductrai_refused_body, 1);
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static void
ngx_http_reductrai_body_handler(ngx_http_request_t *r)
{
    off_t                            size;
    ngx_chain_t                     *cl;
    ngx_http_reductrai_shm_t        *sh;
    ngx_http_reductrai_ctx_t        *ctx;
    ngx_http_reductrai_record_t     *rec;
    ngx_http_reductrai_main_conf_t  *rmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_reductrai_module);
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_reductrai_module);
    sh = ngx_http_reductrai_shm();

    ctx->body_read = 1;
    size = 0;

    if (r->request_body != NULL) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            size += ngx_buf_size(cl->buf);
        }
    }

    (void) ngx_atomic_fetch_add(&sh->bytes_received, size);

    if (ngx_http_reductrai_spool_full()) {
        if (ngx_http_reductrai_log_once(&ngx_http_reductrai_spool_full_logged))
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "reductrai spool \"%V\" is full", &rmcf->spool);
        }

        ngx_http_reductrai_refuse(r, ctx);
        return;
    }

    if (ngx_http_reductrai_spool_failing()) {
        ngx_http_reductrai_refuse(r, ctx);
        return;
    }

    if (ngx_http_reductrai_buffer_full((size_t) size)) {
        if (ngx_http_reductrai_log_once(
                                     &ngx_http_reductrai_buffer_full_logged))
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "reductrai buffer is full "
                          "(reductrai_buffer_size %uz)", rmcf->buffer_size);
        }

        ngx_http_reductrai_refuse(r, ctx);
        return;
    }

    rec = ngx_http_reductrai_record_create(r, ctx);

    if (rec == NULL) {
        ngx_http_reductrai_refuse(r, ctx);
        return;
    }

    rec->handler = ngx_http_reductrai_committed;
    rec->data = ctx;
    ctx->record = rec;

    if (ngx_http_reductrai_spool_append(rec, ctx->slot) != NGX_OK) {
        ctx->record = NULL;

        if (rec->owned) {
            ngx_http_reductrai_record_free(rec);
        }

        ngx_http_reductrai_refuse(r, ctx);
        return;
    }

    /*
     * "async": a body in memory is appended at the end of this pass, from
     * nginx's buffers, so the request waits that long; one with its own
     * copy goes on at once.  Either way a failed write is a counted loss,
     * not a refusal.
     */

    if (rmcf->durability == NGX_HTTP_REDUCTRAI_ASYNC) {
        rec->acked = 1;

        if (rec->owned) {
            rec->handler = NULL;
            rec->data = NULL;
            ctx->record = NULL;
            ngx_http_reductrai_proceed(r, ctx);
        }
    }
}


/* the spool's answer: committed, failed, or late (reductrai_commit_timeout) */

static void
ngx_http_reductrai_committed(ngx_http_reductrai_record_t *rec, ngx_int_t rc)
{
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_reductrai_ctx_t        *ctx;
    ngx_http_reductrai_main_conf_t  *rmcf;

    ctx = rec->data;
    ctx->record = NULL;

    r = ctx->request;
    c = r->connection;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_reductrai_module);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "reductrai commit: %i", rc);

    if (ngx_http_reductrai_client_gone(r)) {
        /* archived (or not), but nobody to answer or forward for */

    } else if (rc == NGX_OK || rmcf->durability == NGX_HTTP_REDUCTRAI_ASYNC) {
        ngx_http_reductrai_proceed(r, ctx);

    } else {
        ngx_http_reductrai_refuse(r, ctx);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * A client that went away while its record was being committed (an HTTP/2
 * stream reset, a closed connection) is not forwarded for.
 */

static ngx_uint_t
ngx_http_reductrai_client_gone(ngx_http_request_t *r)
{
    if (!r->connection->error) {
        return 0;
    }

    ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);

    return 1;
}


static void
ngx_http_reductrai_proceed(ngx_http_request_t *r,
    ngx_http_reductrai_ctx_t *ctx)
{
    ngx_http_reductrai_shm_t       *sh;
    ngx_http_reductrai_loc_conf_t  *rlcf;

    sh = ngx_http_reductrai_shm();

    (void) ngx_atomic_fetch_add(&sh->streams[ctx->slot].requests, 1);

    if (ctx->forward) {
        ctx->phase_rc = NGX_DECLINED;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
        return;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_reductrai_module);

    ngx_http_finalize_request(r, ngx_http_reductrai_send(r, rlcf->ack_status,
                                                         &rlcf->ack_body, 0));
}


/*
 * The spool-full policy: reject (503, the agent retries) or bypass (go on
 * without the archive, and count the loss).  A record whose commit timed
 * out may yet be written: then the archive holds it once more than was
 * counted, which errs on the side of the at-least-once promise.
 */

static void
ngx_http_reductrai_refuse(ngx_http_request_t *r,
    ngx_http_reductrai_ctx_t *ctx)
{
    ngx_http_reductrai_shm_t       *sh;
    ngx_http_reductrai_loc_conf_t  *rlcf;

    sh = ngx_http_reductrai_shm();
    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_reductrai_module);

    if (ngx_http_reductrai_policy(rlcf, ctx->forward)
        == NGX_HTTP_REDUCTRAI_FULL_BYPASS)
    {
        ctx->bypassed = 1;
        (void) ngx_atomic_fetch_add(&sh->dropped, 1);
        ngx_http_reductrai_proceed(r, ctx);
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->streams[ctx->slot].errors, 1);

    /* the agent retries it: this id is no record of the archive */
    ctx->refused = 1;

    ngx_http_finalize_request(r,
                              ngx_http_reductrai_send(r,
                                             NGX_HTTP_SERVICE_UNAVAILABLE,
                                             &ngx_http_reductrai_refused_body,
                                             1));
}


/* reductrai_spool_full "auto": reject what is answered locally */

static ngx_uint_t
ngx_http_reductrai_policy(ngx_http_reductrai_loc_conf_t *rlcf,
    ngx_uint_t forward)
{
    if (rlcf->spool_full != NGX_HTTP_REDUCTRAI_FULL_AUTO) {
        return rlcf->spool_full;
    }

    return forward ? NGX_HTTP_REDUCTRAI_FULL_BYPASS
                   : NGX_HTTP_REDUCTRAI_FULL_REJECT;
}


static void
ngx_http_reductrai_cleanup(void *data)
{
    ngx_http_reductrai_ctx_t  *ctx = data;

    /* the request goes away: its record must not resume it */

    if (ctx->record != NULL) {
        ngx_http_reductrai_spool_cancel(ctx->record);
        ctx->record = NULL;
    }
}


static ngx_int_t
ngx_http_reductrai_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body, ngx_uint_t retry)
{
    ngx_buf_t        *b;
    ngx_str_t         type;
    ngx_table_elt_t  *h;

    if (retry) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        ngx_str_set(&h->key, "Retry-After");
        ngx_str_set(&h->value, NGX_HTTP_REDUCTRAI_RETRY_AFTER);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;

    if (body->len == 0) {
        r->header_only = 1;
    }

    ngx_str_set(&type, "application/json");

    return ngx_http_reductrai_status_send(r, status, &type, b);
}


static ngx_http_reductrai_record_t *
ngx_http_reductrai_record_create(ngx_http_request_t *r,
    ngx_http_reductrai_ctx_t *ctx)
{
    u_char                            *p, ts[NGX_HTTP_REDUCTRAI_TS_LEN];
    u_char                             fp[NGX_HTTP_REDUCTRAI_FP_LEN];
    size_t                             head, mem, len;
    ngx_buf_t                         *b;
    ngx_uint_t                         npieces, in_file;
    ngx_chain_t                       *cl;
    ngx_http_reductrai_headers_t       h;
    ngx_http_reductrai_record_t       *rec;
    ngx_http_reductrai_record_meta_t   meta;

    if (ngx_http_reductrai_record_meta(r, ctx, &meta, &h, ts, fp) != NGX_OK) {
        return NULL;
    }

    head = ngx_http_reductrai_record_head_len(&meta);

    mem = 0;
    npieces = 0;
    in_file = 0;

    if (r->request_body != NULL) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;

            if (b->in_file) {
                in_file = 1;

            } else {
                mem += b->last - b->pos;
            }

            npieces++;
        }
    }

    /*
     * A body in memory is written from nginx's buffers while the request
     * waits: the record is a few words in its pool.  One that spilled into
     * a temporary file is appended by a thread: the record owns copies; so
     * does one in more buffers than a write takes at once, which is rare.
     */

    if (!in_file && npieces <= NGX_HTTP_REDUCTRAI_BODY_IOVS) {
        rec = ngx_pcalloc(r->pool, sizeof(ngx_http_reductrai_record_t) + head);
        if (rec == NULL) {
            return NULL;
        }

        p = (u_char *) rec + sizeof(ngx_http_reductrai_record_t);
        rec->bufs = r->request_body ? r->request_body->bufs : NULL;
        rec->niovs = 2;

        for (cl = rec->bufs; cl; cl = cl->next) {
            rec->size += cl->buf->last - cl->buf->pos;
            rec->niovs += (cl->buf->last != cl->buf->pos);
        }

    } else {
        len = sizeof(ngx_http_reductrai_record_t)
              + npieces * sizeof(ngx_http_reductrai_piece_t) + head + mem;

        rec = ngx_calloc(len, r->connection->log);
        if (rec == NULL) {
            return NULL;
        }

        /*
         * The pieces come first: after the record they are aligned, after
         * the head and the body bytes they would not be (UBSan says so).
         */

        rec->owned = 1;
        rec->npieces = npieces;
        rec->pieces = (ngx_http_reductrai_piece_t *)
                          ((u_char *) rec
                           + sizeof(ngx_http_reductrai_record_t));
        p = (u_char *) (rec->pieces + npieces);
        rec->body = p + head;
    }

    rec->fd = NGX_INVALID_FILE;
    rec->ts_ms = (int64_t) r->start_sec * 1000 + r->start_msec;
    rec->coding = ngx_http_reductrai_encoding_parse(
                      h.content_encoding ? h.content_encoding->value.data
                                         : NULL,
                      h.content_encoding ? h.content_encoding->value.len : 0);
    rec->format = ngx_http_reductrai_request_format(r);

    rec->head = p;
    rec->head_len = ngx_http_reductrai_record_head(rec->head, &meta)
                    - rec->head;

    if (rec->owned
        && ngx_http_reductrai_record_body_copy(r, rec, rec->body, rec->pieces)
           != NGX_OK)
    {
        ngx_http_reductrai_record_free(rec);
        return NULL;
    }

    return rec;
}


/*
 * Copies the in-memory parts of the body and dup()s the temporary file:
 * nginx unlinks it at once and closes it with the request, while our copy
 * of the descriptor keeps the data readable for the encode job.
 */

static ngx_int_t
ngx_http_reductrai_record_body_copy(ngx_http_request_t *r,
    ngx_http_reductrai_record_t *rec, u_char *body,
    ngx_http_reductrai_piece_t *pieces)
{
    u_char       *p;
    ngx_buf_t    *b;
    ngx_uint_t    i;
    ngx_chain_t  *cl;

    if (r->request_body == NULL) {
        return NGX_OK;
    }

    p = body;
    i = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            if (rec->fd == NGX_INVALID_FILE) {
                rec->fd = dup(b->file->fd);

                if (rec->fd == NGX_INVALID_FILE) {
                    ngx_log_error(NGX_LOG_CRIT, r->connection->log,
                                  ngx_errno, "reductrai: dup() failed");
                    return NGX_ERROR;
                }
            }

            if (pieces != NULL) {
                pieces[i].offset = b->file_pos;
                pieces[i].len = (size_t) (b->file_last - b->file_pos);
                pieces[i].in_file = 1;
            }

            rec->size += (size_t) (b->file_last - b->file_pos);

        } else {
            if (pieces != NULL) {
                pieces[i].offset = p - body;
                pieces[i].len = b->last - b->pos;
                pieces[i].in_file = 0;
            }

            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            rec->size += b->last - b->pos;
        }

        i++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_reductrai_record_meta(ngx_http_request_t *r,
    ngx_http_reductrai_ctx_t *ctx, ngx_http_reductrai_record_meta_t *meta,
    ngx_http_reductrai_headers_t *h, u_char *ts, u_char *fp)
{
    u_char                          *uri;
    size_t                           len;
    ngx_str_t                        key;
    ngx_http_reductrai_shm_t        *sh;
    ngx_http_variable_value_t       *vv;
    ngx_http_reductrai_main_conf_t  *rmcf;

#define ngx_http_reductrai_set(field, str)                                   \
    meta->field.data = (str).data;                                           \
    meta->field.len = (str).len

#define ngx_http_reductrai_set_header(field, elt)                            \
    if ((elt) != NULL) {                                                     \
        ngx_http_reductrai_set(field, (elt)->value);                         \
    }

    ngx_memzero(meta, sizeof(ngx_http_reductrai_record_meta_t));

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_reductrai_module);
    sh = ngx_http_reductrai_shm();

    ngx_http_reductrai_find_headers(r, h);

    ctx->id.data = ngx_pnalloc(r->pool, NGX_HTTP_REDUCTRAI_ID_LEN);
    if (ctx->id.data == NULL) {
        return NGX_ERROR;
    }

    ctx->id.len = ngx_http_reductrai_next_id(ctx->id.data) - ctx->id.data;

    ngx_http_reductrai_format_ts(ts,
                                 (int64_t) r->start_sec * 1000
                                 + r->start_msec);

    ngx_http_reductrai_set(id, ctx->id);
    meta->ts.data = ts;
    meta->ts.len = NGX_HTTP_REDUCTRAI_TS_LEN;
    meta->stream.data = sh->streams[ctx->slot].name;
    meta->stream.len = ngx_strlen(sh->streams[ctx->slot].name);
    ngx_http_reductrai_set(method, r->method_name);

    /* credentials in the query never reach the archive */

    len = ngx_http_reductrai_redact_uri_len(r->unparsed_uri.data,
                                            r->unparsed_uri.len);
    uri = ngx_pnalloc(r->pool, len);
    if (uri == NULL) {
        return NGX_ERROR;
    }

    meta->uri.data = uri;
    meta->uri.len = ngx_http_reductrai_redact_uri(uri, r->unparsed_uri.data,
                                                  r->unparsed_uri.len);

    ngx_http_reductrai_set_header(host, r->headers_in.host);
    ngx_http_reductrai_set(client, r->connection->addr_text);

    if (h->request_id != NULL) {
        ngx_http_reductrai_set(request_id, h->request_id->value);

    } else {
        vv = ngx_http_reductrai_request_id(r, rmcf->request_id_index);

        if (vv != NULL && !vv->not_found) {
            meta->request_id.data = vv->data;
            meta->request_id.len = vv->len;
        }
    }

    ngx_http_reductrai_set_header(content_type, r->headers_in.content_type);
    ngx_http_reductrai_set_header(content_encoding, h->content_encoding);
    ngx_http_reductrai_set_header(user_agent, r->headers_in.user_agent);

    key = ngx_http_reductrai_api_key(r, h);

    if (key.data != NULL) {
        ngx_http_reductrai_key_fp(fp, &key);
        meta->api_key_fp.data = fp;
        meta->api_key_fp.len = NGX_HTTP_REDUCTRAI_FP_LEN;
    }

    meta->forwarded = ctx->forward;

#undef ngx_http_reductrai_set
#undef ngx_http_reductrai_set_header

    return NGX_OK;
}


/*
 * An agent sends the same key with every request, and a SHA-256 through
 * OpenSSL's provider layer costs more than the rest of the record's head:
 * the fingerprint of the last key is kept (in the worker's memory only).
 */

static void
ngx_http_reductrai_key_fp(u_char *fp, ngx_str_t *key)
{
    static size_t  last_len;
    static u_char  last_key[128];
    static u_char  last_fp[NGX_HTTP_REDUCTRAI_FP_LEN];

    if (last_len != 0 && key->len == last_len
        && ngx_memcmp(key->data, last_key, last_len) == 0)
    {
        ngx_memcpy(fp, last_fp, NGX_HTTP_REDUCTRAI_FP_LEN);
        return;
    }

    ngx_http_reductrai_api_key_fp(fp, key->data, key->len);

    if (key->len <= sizeof(last_key)) {
        ngx_memcpy(last_key, key->data, key->len);
        ngx_memcpy(last_fp, fp, NGX_HTTP_REDUCTRAI_FP_LEN);
        last_len = key->len;
    }
}


static void
ngx_http_reductrai_find_headers(ngx_http_request_t *r,
    ngx_http_reductrai_headers_t *h)
{
    ngx_uint_t        i, rank, best;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *e;

    ngx_memzero(h, sizeof(ngx_http_reductrai_headers_t));

    part = &r->headers_in.headers.part;
    e = part->elts;
    best = 0;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            e = part->elts;
            i = 0;
        }

        if (e[i].key.len == 16
            && ngx_strncasecmp(e[i].key.data, (u_char *) "Content-Encoding",
                               16) == 0)
        {
            h->content_encoding = &e[i];
            continue;
        }

        if (e[i].key.len == 12
            && ngx_strncasecmp(e[i].key.data, (u_char *) "X-Request-ID", 12)
               == 0)
        {
            h->request_id = &e[i];
            continue;
        }

        /* DD-API-KEY first, then the New Relic and generic key headers */

        rank = 0;

        if (e[i].key.len == 10
            && ngx_strncasecmp(e[i].key.data, (u_char *) "DD-API-KEY", 10)
               == 0)
        {
            rank = 3;

        } else if ((e[i].key.len == 9
                    && ngx_strncasecmp(e[i].key.data, (u_char *) "X-Api-Key",
                                       9) == 0)
                   || (e[i].key.len == 7
                       && ngx_strncasecmp(e[i].key.data,
                                          (u_char *) "Api-Key", 7) == 0)
                   || (e[i].key.len == 13
                       && ngx_strncasecmp(e[i].key.data,
                                          (u_char *) "X-License-Key", 13)
                          == 0))
        {
            rank = 2;
        }

        if (rank > best) {
            best = rank;
            h->api_key = &e[i];
        }
    }
}


static ngx_str_t
ngx_http_reductrai_api_key(ngx_http_request_t *r,
    ngx_http_reductrai_headers_t *h)
{
    ngx_str_t                 key;
    ngx_http_reductrai_str_t  s;

    if (h->api_key != NULL && h->api_key->value.len) {
        return h->api_key->value;
    }

    if (r->headers_in.authorization != NULL) {
        s = ngx_http_reductrai_authorization_token(
                r->headers_in.authorization->value.data,
                r->headers_in.authorization->value.len);

        if (s.data != NULL && s.len) {
            key.data = (u_char *) s.data;
            key.len = s.len;
            return key;
        }
    }

    s = ngx_http_reductrai_uri_credential(r->unparsed_uri.data,
                                          r->unparsed_uri.len);

    key.data = (u_char *) s.data;
    key.len = s.len;

    return key;
}


/*
 * $request_id, unless something evaluated it already: nginx's own draws 16
 * bytes from RAND_bytes() for every request, which perf showed costing
 * about 3 us of the event loop's time per record.  Ours has the same form
 * (32 lowercase hex digits) and, being stored as the variable's cached
 * value, is the one the access log and proxy_set_header see too: two
 * 64-bit halves, each a bijective mix of a per-worker random seed plus a
 * per-worker counter, so ids never repeat within a worker and look as
 * random as nginx's across workers.
 */

static ngx_http_variable_value_t *
ngx_http_reductrai_request_id(ngx_http_request_t *r, ngx_int_t index)
{
    u_char                     *p;
    uint64_t                    half[2];
    ngx_http_variable_value_t  *vv;

    static uint64_t             seed[2], counter;
    static ngx_uint_t           seeded;

    vv = &r->variables[index];

    if (vv->valid || vv->not_found) {
        return vv;
    }

    if (!seeded) {
        if (RAND_bytes((u_char *) seed, sizeof(seed)) != 1) {
            return ngx_http_get_indexed_variable(r, index);
        }

        seeded = 1;
    }

    p = ngx_pnalloc(r->pool, 32);
    if (p == NULL) {
        return NULL;
    }

    counter++;
    half[0] = ngx_http_reductrai_mix64(seed[0] + counter);
    half[1] = ngx_http_reductrai_mix64(seed[1] ^ counter);

    ngx_hex_dump(p, (u_char *) half, sizeof(half));

    vv->data = p;
    vv->len = 32;
    vv->valid = 1;
    vv->no_cacheable = 0;
    vv->not_found = 0;

    return vv;
}


/* splitmix64's finalizer: a bijection on 64 bits that scatters every bit */

static uint64_t
ngx_http_reductrai_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;

    return x;
}


static ngx_int_t
ngx_http_reductrai_record_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_reductrai_ctx_t  *ctx;

    ctx = ngx_http_reductrai_get_ctx(r->main);

    if (ctx == NULL || ctx->id.len == 0 || ctx->bypassed || ctx->refused) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ctx->id.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = ctx->id.data;

    return NGX_OK;
}


/* the vendor's answer to forwarded requests, by class */

static ngx_int_t
ngx_http_reductrai_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                  class, status, n;
    ngx_msec_t                  now;
    ngx_http_reductrai_shm_t   *sh;
    ngx_http_reductrai_ctx_t   *ctx;
    ngx_http_upstream_state_t  *state;

    ctx = ngx_http_reductrai_get_ctx(r);

    if (ctx == NULL || !ctx->forward || ctx->phase_rc != NGX_DECLINED) {
        return NGX_OK;
    }

    sh = ngx_http_reductrai_shm();
    status = 0;

    if (r->upstream_states != NULL && r->upstream_states->nelts > 0) {
        n = r->upstream_states->nelts;
        state = r->upstream_states->elts;
        state = &state[n - 1];

        /* no header from the vendor: nginx made up the 502 or 504 */
        if (state->peer != NULL && state->header_time != (ngx_msec_t) -1) {
            status = state->status;
        }

    } else if (r->upstream == NULL) {
        /* a content handler of another kind answered itself */
        status = r->headers_out.status;
    }

    class = status < 100 ? NGX_HTTP_REDUCTRAI_CLASS_ERROR
            : status < 300 ? NGX_HTTP_REDUCTRAI_CLASS_2XX
            : status < 400 ? NGX_HTTP_REDUCTRAI_CLASS_3XX
            : status < 500 ? NGX_HTTP_REDUCTRAI_CLASS_4XX
            : NGX_HTTP_REDUCTRAI_CLASS_5XX;

    (void) ngx_atomic_fetch_add(&sh->streams[ctx->slot].upstream[class], 1);

    now = (ngx_msec_t) ngx_http_reductrai_now_ms();

    if (class == NGX_HTTP_REDUCTRAI_CLASS_5XX
        || class == NGX_HTTP_REDUCTRAI_CLASS_ERROR)
    {
        (void) ngx_atomic_fetch_add(&sh->forward_errors, 1);
        (void) ngx_atomic_fetch_add(&sh->failing, 1);
        sh->last_err_ms = now;

    } else {
        sh->failing = 0;
        sh->last_ok_ms = now;
    }

    return NGX_OK;
}
