
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#ifndef _NGX_HTTP_REDUCTRAI_JSON_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_JSON_H_INCLUDED_


#include "ngx_http_reductrai_core.h"


/* deeper nesting is archived as body_b64 rather than risk the stack */
#define NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH  1024


/*
 * Checks that in[0..len) is exactly one JSON value (RFC 8259) in valid UTF-8,
 * optionally surrounded by whitespace, and copies it to out with every
 * whitespace byte outside strings removed.  Everything else is copied as it
 * is: numbers, escapes and duplicate keys are never rewritten.  out must hold
 * len bytes; out == in (in place) is allowed.  Returns the length written,
 * or -1 when the input is not exactly one such value.
 */
ssize_t ngx_http_reductrai_json_minify(u_char *out, const u_char *in,
    size_t len);

/*
 * Escapes a byte string for use inside a JSON string literal (no quotes are
 * added).  Valid UTF-8 is copied; '"', '\\' and control characters are
 * escaped; each byte of an invalid UTF-8 sequence becomes \u00XX, so the
 * output is always valid JSON in UTF-8.  escape_len() returns the exact
 * output size.
 */
size_t ngx_http_reductrai_json_escape_len(const u_char *s, size_t len);
u_char *ngx_http_reductrai_json_escape(u_char *dst, const u_char *s,
    size_t len);


#endif /* _NGX_HTTP_REDUCTRAI_JSON_H_INCLUDED_ */
