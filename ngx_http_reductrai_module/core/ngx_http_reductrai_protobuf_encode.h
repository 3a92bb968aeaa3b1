
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The inverse of ngx_http_reductrai_pb_json(): a body archived as JSON
 * (body_format set) back to protobuf wire bytes, by walking the same
 * protobuf-c descriptors, so that replay sends what the client sent.
 * Serves the CLI; the module does not link it.
 */


#ifndef _NGX_HTTP_REDUCTRAI_PROTOBUF_ENCODE_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_PROTOBUF_ENCODE_H_INCLUDED_


#include "ngx_http_reductrai_core.h"
#include "ngx_http_reductrai_protobuf.h"


/*
 * Encodes json[0..len), one JSON object as the printer writes it for desc
 * in style (NGX_HTTP_REDUCTRAI_PB_* flags), appending the serialized
 * message to out, never beyond max bytes of it.  Accepted, besides the
 * printer's own output: keys by schema name or in lowerCamelCase, 64-bit
 * integers as numbers or decimal strings, doubles as numbers or strings,
 * enums by number or name, null for an absent field; "_unknown" (and
 * "Unknown", as old OTLP-style archives have it) holds the base64 of wire
 * bytes appended after the known fields.  Fields are written in field
 * number order, repeated scalars packed as the descriptor says, map entries
 * with both key and value.  A proto3 field without presence at its zero
 * value is left out; a oneof member is always written.
 *
 * Returns OK; INVALID when the text is not JSON or does not fit the schema
 * (a key it does not know, a wrong type, a value out of range); LIMIT when
 * the output would pass max or messages nest deeper than
 * NGX_HTTP_REDUCTRAI_PB_MAX_DEPTH; NOMEM.  On failure out->len is back
 * where it was and *err (when not NULL) says why in a few words.
 */
ngx_http_reductrai_pb_rc_e ngx_http_reductrai_pb_encode(
    const ProtobufCMessageDescriptor *desc, unsigned style,
    const u_char *json, size_t len, size_t max,
    ngx_http_reductrai_buf_t *out, const char **err);


#endif /* _NGX_HTTP_REDUCTRAI_PROTOBUF_ENCODE_H_INCLUDED_ */
