
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Protobuf bodies as JSON: a message is checked against its protobuf-c
 * descriptor, unpacked with a bounded allocator and printed by walking the
 * descriptors, so a new payload type needs a .proto file and nothing else
 * here.  The JSON mapping is described in docs/QUERY.md.
 */


#ifndef _NGX_HTTP_REDUCTRAI_PROTOBUF_H_INCLUDED_
#define _NGX_HTTP_REDUCTRAI_PROTOBUF_H_INCLUDED_


#include "ngx_http_reductrai_core.h"

#include <protobuf-c/protobuf-c.h>


/* nesting of messages (OTLP's AnyValue nests itself) */
#define NGX_HTTP_REDUCTRAI_PB_MAX_DEPTH     64
/* elements of one repeated field of one message */
#define NGX_HTTP_REDUCTRAI_PB_MAX_REPEATED  (4 * 1024 * 1024)
/* unpacked size: this many times the input, plus the constant below */
#define NGX_HTTP_REDUCTRAI_PB_MEM_RATIO     32
#define NGX_HTTP_REDUCTRAI_PB_MEM_EXTRA     (1024 * 1024)
/* and never more than this in all */
#define NGX_HTTP_REDUCTRAI_PB_MEM_MAX       ((size_t) 1024 * 1024 * 1024)


/* how a message becomes JSON (flags) */
#define NGX_HTTP_REDUCTRAI_PB_CAMEL         0x01  /* lowerCamelCase keys */
#define NGX_HTTP_REDUCTRAI_PB_INT64_STRING  0x02  /* 64-bit ints as "…" */
#define NGX_HTTP_REDUCTRAI_PB_HEX_IDS       0x04  /* OTLP trace/span ids */
#define NGX_HTTP_REDUCTRAI_PB_DEFAULTS      0x08  /* print zero scalars */

#define NGX_HTTP_REDUCTRAI_PB_OTLP                                           \
    (NGX_HTTP_REDUCTRAI_PB_CAMEL|NGX_HTTP_REDUCTRAI_PB_INT64_STRING          \
     |NGX_HTTP_REDUCTRAI_PB_HEX_IDS)


typedef enum {
    NGX_HTTP_REDUCTRAI_PB_OK = 0,
    NGX_HTTP_REDUCTRAI_PB_INVALID,      /* not a message of this type */
    NGX_HTTP_REDUCTRAI_PB_LIMIT,        /* depth, count or memory cap hit */
    NGX_HTTP_REDUCTRAI_PB_NOMEM
} ngx_http_reductrai_pb_rc_e;


typedef struct ngx_http_reductrai_pb_block_s  ngx_http_reductrai_pb_block_t;


/* keys as printed ('"name":'), by the address of the name and the style */
#define NGX_HTTP_REDUCTRAI_PB_KEYS_LOG 8
#define NGX_HTTP_REDUCTRAI_PB_KEYS     (1 << NGX_HTTP_REDUCTRAI_PB_KEYS_LOG)
#define NGX_HTTP_REDUCTRAI_PB_KEY_LEN  46

typedef struct {
    const char                     *name;
    u_char                          style;
    u_char                          len;
    u_char                          data[NGX_HTTP_REDUCTRAI_PB_KEY_LEN];
} ngx_http_reductrai_pb_key_t;

/*
 * Scratch space of one encoder: the arena that unpacked messages live in,
 * reused from body to body.  All zero is a valid empty state.
 */
typedef struct {
    ngx_http_reductrai_pb_block_t  *blocks;
    ngx_http_reductrai_pb_block_t  *current;
    size_t                          used;      /* bytes handed out */
    size_t                          limit;     /* of this body */
    size_t                          held;      /* bytes of all blocks */
    ngx_http_reductrai_pb_key_t     keys[NGX_HTTP_REDUCTRAI_PB_KEYS];
} ngx_http_reductrai_pb_t;


/*
 * Prints in[0..len), a serialized message of type desc, as one JSON object
 * in UTF-8 on one line, appended to out (grown with realloc()).  style is
 * a set of NGX_HTTP_REDUCTRAI_PB_* flags.  Strings must be valid UTF-8
 * without NUL bytes (proto3 requires UTF-8; protobuf-c would cut them at a
 * NUL), else the body is INVALID and the caller keeps its bytes.  Fields the
 * descriptor does not know are kept under "_unknown" (base64 of their wire
 * bytes).  On failure out->len is back where it was.
 */
ngx_http_reductrai_pb_rc_e ngx_http_reductrai_pb_json(
    ngx_http_reductrai_pb_t *pb, const ProtobufCMessageDescriptor *desc,
    unsigned style, const u_char *in, size_t len,
    ngx_http_reductrai_buf_t *out);

/*
 * The key of fields the descriptor does not know, in every style (archives
 * written before it was fixed have "Unknown" in the OTLP style).
 */
#define NGX_HTTP_REDUCTRAI_PB_UNKNOWN  "_unknown"

/*
 * What the printer and the re-encoder (ngx_http_reductrai_protobuf_encode.h)
 * agree on: a map<K, V> field, printed as an object; a bytes field printed
 * as lowercase hex in the style (OTLP's trace and span ids); a name in
 * lowerCamelCase (proto3 JSON's json_name), written at dst without a NUL.
 */
int ngx_http_reductrai_pb_is_map(const ProtobufCFieldDescriptor *f);
int ngx_http_reductrai_pb_is_hex(const ProtobufCFieldDescriptor *f,
    unsigned style);
u_char *ngx_http_reductrai_pb_camel(u_char *dst, const char *name);

/* a varint at *pp (moved past it); -1 when truncated or over 10 bytes */
int ngx_http_reductrai_pb_varint(const u_char **pp, const u_char *end,
    uint64_t *v);

/* the archive's decode_error for a failed print */
const char *ngx_http_reductrai_pb_error(ngx_http_reductrai_pb_rc_e rc);

/* releases arena blocks beyond keep bytes, or all of them (keep == 0) */
void ngx_http_reductrai_pb_trim(ngx_http_reductrai_pb_t *pb, size_t keep);


#endif /* _NGX_HTTP_REDUCTRAI_PROTOBUF_H_INCLUDED_ */
