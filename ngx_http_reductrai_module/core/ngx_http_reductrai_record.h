
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * One archived request is one NDJSON line.  The event loop writes the head
 * (metadata, known when the body has been read); a thread writes the rest
 * (decoded size and body), so that decoding and minifying never run in the
 * event loop.
 */


#ifndef _NGX_HTTP_REDUCTRAI_RECORD_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_RECORD_H_INCLUDED_


#include "ngx_http_reductrai_core.h"
#include "ngx_http_reductrai_decode.h"
#include "ngx_http_reductrai_body_format.h"


#define NGX_HTTP_REDUCTRAI_FP_LEN  8


typedef struct {
    ngx_http_reductrai_str_t   id;
    ngx_http_reductrai_str_t   ts;
    ngx_http_reductrai_str_t   stream;
    ngx_http_reductrai_str_t   method;
    ngx_http_reductrai_str_t   uri;               /* already redacted */
    ngx_http_reductrai_str_t   host;
    ngx_http_reductrai_str_t   client;
    ngx_http_reductrai_str_t   request_id;
    ngx_http_reductrai_str_t   content_type;
    ngx_http_reductrai_str_t   content_encoding;
    ngx_http_reductrai_str_t   user_agent;
    ngx_http_reductrai_str_t   api_key_fp;
    unsigned                   forwarded:1;
} ngx_http_reductrai_record_meta_t;


/* scratch space of one writer, reused from record to record */
typedef struct {
    ngx_http_reductrai_buf_t   decoded;
    ngx_http_reductrai_buf_t   minified;
    ngx_http_reductrai_buf_t   text;
    ngx_http_reductrai_pb_t    pb;
} ngx_http_reductrai_record_encoder_t;


/*
 * The head of a record: '{"id":"…","ts":"…",…,"forwarded":true,' in the
 * archive's field order; absent fields are null.  head_len() is an upper
 * bound of what head() writes.
 */
size_t ngx_http_reductrai_record_head_len(
    const ngx_http_reductrai_record_meta_t *meta);
u_char *ngx_http_reductrai_record_head(u_char *p,
    const ngx_http_reductrai_record_meta_t *meta);

/*
 * The rest of a record: '"size":N,' then '"body":<JSON>' when the decoded
 * body is one valid JSON value (whitespace outside strings removed), else
 * '"body_b64":"…"'; then ',"decode_error":"…"' when decoding failed (the raw
 * bytes are kept); then "}\n".  raw[0..len) is the body exactly as received
 * and coding its Content-Encoding.  format (ngx_http_reductrai_body_format_e)
 * names a binary format: 0 (NONE) archives the body as above; any other
 * prints the decoded body as JSON in "body", after '"body_format":"NAME",',
 * or, when it is not a valid message of that type, keeps it in body_b64 with
 * decode_error "invalid_protobuf" or "protobuf_limit".  Output goes to sink
 * in pieces; base64 is produced in bounded chunks.  *size receives the "size" value (decoded
 * bytes, or raw bytes when decoding failed).  Returns 0, or -1 when the sink
 * failed or memory ran out (errno tells which).
 */
int ngx_http_reductrai_record_body(ngx_http_reductrai_record_encoder_t *enc,
    ngx_http_reductrai_encoding_e coding, unsigned format, const u_char *raw,
    size_t len, size_t max_decoded, ngx_http_reductrai_sink_pt sink,
    void *data, size_t *size);

/* releases scratch buffers larger than keep bytes (bounds a writer's RSS) */
void ngx_http_reductrai_record_encoder_trim(
    ngx_http_reductrai_record_encoder_t *enc, size_t keep);
void ngx_http_reductrai_record_encoder_free(
    ngx_http_reductrai_record_encoder_t *enc);

/*
 * Copies a request target, replacing with "REDACTED" the values of
 * credential query parameters (api_key, apikey, api-key, dd-api-key,
 * dd_api_key, application_key, dd-application-key, app_key, token,
 * access_token, auth_token, x-api-key, license_key, password, secret, sig,
 * signature; case insensitive, compared after percent-decoding, separated
 * by '&' or ';') and the path segment after an "input" segment (Datadog's
 * logs intake v1: /v1/input/<API_KEY>).  redact_uri_len() is an upper bound
 * of the output size.
 */
size_t ngx_http_reductrai_redact_uri_len(const u_char *uri, size_t len);
size_t ngx_http_reductrai_redact_uri(u_char *dst, const u_char *uri,
    size_t len);

/*
 * the first API key in a request target, for api_key_fp: the path key of
 * /v1/input/<KEY>, else the first api_key-like query parameter
 */
ngx_http_reductrai_str_t ngx_http_reductrai_uri_credential(const u_char *uri,
    size_t len);

/* first 8 hex digits of SHA-256 of a credential */
void ngx_http_reductrai_api_key_fp(u_char out[NGX_HTTP_REDUCTRAI_FP_LEN],
    const u_char *key, size_t len);

/* the credential in an Authorization value: the text after the scheme */
ngx_http_reductrai_str_t ngx_http_reductrai_authorization_token(
    const u_char *value, size_t len);

size_t ngx_http_reductrai_base64_encode(u_char *dst, const u_char *src,
    size_t len);


#endif /* _NGX_HTTP_REDUCTRAI_RECORD_H_INCLUDED_ */
