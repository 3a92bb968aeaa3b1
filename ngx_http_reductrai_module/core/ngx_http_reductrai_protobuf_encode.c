
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_protobuf_encode.h"
#include "ngx_http_reductrai_reader.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>


/* a field name in lowerCamelCase fits here, or is only looked up as is */
#define NGX_HTTP_REDUCTRAI_PBE_NAME  128


typedef struct {
    ngx_http_reductrai_buf_t      *out;
    size_t                         max;      /* of out->len */
    unsigned                       style;
    ngx_http_reductrai_pb_rc_e     rc;
    const char                    *err;
} ngx_http_reductrai_pbe_t;


static int ngx_http_reductrai_pbe_message(ngx_http_reductrai_pbe_t *e,
    const ProtobufCMessageDescriptor *desc, json_t *obj, unsigned depth);
static json_t *ngx_http_reductrai_pbe_lookup(json_t *obj,
    const ProtobufCFieldDescriptor *f);
static int ngx_http_reductrai_pbe_field(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, json_t *v, unsigned depth);
static int ngx_http_reductrai_pbe_map(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, json_t *obj, unsigned depth);
static int ngx_http_reductrai_pbe_one(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, uint32_t id, json_t *v,
    unsigned depth, unsigned always);
static int ngx_http_reductrai_pbe_binary(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, json_t *v);
static int ngx_http_reductrai_pbe_unknown(ngx_http_reductrai_pbe_t *e,
    json_t *v);
static int ngx_http_reductrai_pbe_scalar(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, json_t *v, uint64_t *bits);
static int ngx_http_reductrai_pbe_int(json_t *v, int64_t *r);
static int ngx_http_reductrai_pbe_uint(json_t *v, uint64_t *r);
static int ngx_http_reductrai_pbe_decimal(const char *s, size_t len,
    int *neg, uint64_t *mag);
static int ngx_http_reductrai_pbe_double(json_t *v, double *r);
static unsigned ngx_http_reductrai_pbe_wire_type(
    const ProtobufCFieldDescriptor *f);
static int ngx_http_reductrai_pbe_put(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, uint64_t bits);
static int ngx_http_reductrai_pbe_tag(ngx_http_reductrai_pbe_t *e,
    uint32_t id, unsigned wire_type);
static int ngx_http_reductrai_pbe_varint(ngx_http_reductrai_pbe_t *e,
    uint64_t v);
static int ngx_http_reductrai_pbe_open(ngx_http_reductrai_pbe_t *e,
    size_t *at);
static int ngx_http_reductrai_pbe_close(ngx_http_reductrai_pbe_t *e,
    size_t at);
static int ngx_http_reductrai_pbe_reserve(ngx_http_reductrai_pbe_t *e,
    size_t n);
static int ngx_http_reductrai_pbe_fail(ngx_http_reductrai_pbe_t *e,
    ngx_http_reductrai_pb_rc_e rc, const char *err);
static int ngx_http_reductrai_pbe_wire_valid(const u_char *p,
    const u_char *end);


ngx_http_reductrai_pb_rc_e
ngx_http_reductrai_pb_encode(const ProtobufCMessageDescriptor *desc,
    unsigned style, const u_char *json, size_t len, size_t max,
    ngx_http_reductrai_buf_t *out, const char **err)
{
    size_t                    start;
    json_t                   *root;
    json_error_t              jerr;
    ngx_http_reductrai_pbe_t  e;

    e.out = out;
    e.max = max;
    e.style = style;
    e.rc = NGX_HTTP_REDUCTRAI_PB_OK;
    e.err = NULL;

    start = out->len;

    /* jansson refuses NUL in strings, invalid UTF-8, and nests 2048 deep */

    root = json_loadb((const char *) json, len, 0, &jerr);

    if (root == NULL) {
        (void) ngx_http_reductrai_pbe_fail(&e, NGX_HTTP_REDUCTRAI_PB_INVALID,
                                           "invalid JSON");

    } else if (!json_is_object(root)) {
        (void) ngx_http_reductrai_pbe_fail(&e, NGX_HTTP_REDUCTRAI_PB_INVALID,
                                           "not a JSON object");

    } else {
        (void) ngx_http_reductrai_pbe_message(&e, desc, root, 1);
    }

    json_decref(root);

    if (e.rc != NGX_HTTP_REDUCTRAI_PB_OK) {
        out->len = start;

        if (err != NULL) {
            *err = e.err;
        }
    }

    return e.rc;
}


/*
 * The fields in the descriptor's order (by number), then the unknown ones.
 * Every key must be used: a key the schema does not know would be lost.
 */

static int
ngx_http_reductrai_pbe_message(ngx_http_reductrai_pbe_t *e,
    const ProtobufCMessageDescriptor *desc, json_t *obj, unsigned depth)
{
    size_t                           used;
    json_t                          *v, *other;
    unsigned                         always;
    const ProtobufCFieldDescriptor  *f, *g, *end;

    if (depth > NGX_HTTP_REDUCTRAI_PB_MAX_DEPTH) {
        return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_LIMIT,
                                           "messages nest too deep");
    }

    used = 0;
    end = desc->fields + desc->n_fields;

    for (f = desc->fields; f < end; f++) {
        v = ngx_http_reductrai_pbe_lookup(obj, f);
        if (v == NULL) {
            continue;
        }

        used++;

        if (json_is_null(v)) {
            continue;
        }

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (ngx_http_reductrai_pbe_field(e, f, v, depth) != 0) {
                return -1;
            }

            continue;
        }

        always = 0;

        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* two members of one oneof: the message has only one */

            for (g = desc->fields; g < f; g++) {
                if (!(g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
                    || g->quantifier_offset != f->quantifier_offset)
                {
                    continue;
                }

                other = ngx_http_reductrai_pbe_lookup(obj, g);

                if (other != NULL && !json_is_null(other)) {
                    return ngx_http_reductrai_pbe_fail(e,
                                             NGX_HTTP_REDUCTRAI_PB_INVALID,
                                             "two members of one oneof");
                }
            }

            always = 1;

        } else if (f->label == PROTOBUF_C_LABEL_REQUIRED
                   || (f->label == PROTOBUF_C_LABEL_OPTIONAL
                       && f->quantifier_offset != 0))
        {
            /* proto2 presence: written even at zero */
            always = 1;
        }

        if (ngx_http_reductrai_pbe_one(e, f, f->id, v, depth, always) != 0) {
            return -1;
        }
    }

    v = json_object_get(obj, NGX_HTTP_REDUCTRAI_PB_UNKNOWN);

    if (v == NULL && (e->style & NGX_HTTP_REDUCTRAI_PB_CAMEL)) {
        /* what the printer wrote in the OTLP style before it was fixed */
        v = json_object_get(obj, "Unknown");
    }

    if (v != NULL) {
        used++;

        if (ngx_http_reductrai_pbe_unknown(e, v) != 0) {
            return -1;
        }
    }

    if (used != json_object_size(obj)) {
        return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_INVALID,
                                           "a key the schema does not know");
    }

    return 0;
}


/* the member of a field: by its name, or its name in lowerCamelCase */

static json_t *
ngx_http_reductrai_pbe_lookup(json_t *obj, const ProtobufCFieldDescriptor *f)
{
    u_char  *p, name[NGX_HTTP_REDUCTRAI_PBE_NAME];
    json_t  *v;

    v = json_object_get(obj, f->name);

    if (v != NULL
        || strchr(f->name, '_') == NULL
        || strlen(f->name) >= NGX_HTTP_REDUCTRAI_PBE_NAME)
    {
        return v;
    }

    p = ngx_http_reductrai_pb_camel(name, f->name);
    *p = '\0';

    return json_object_get(obj, (char *) name);
}


static int
ngx_http_reductrai_pbe_field(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, json_t *v, unsigned depth)
{
    size_t    i, n, at;
    json_t   *elt;
    uint64_t  bits;

    if (ngx_http_reductrai_pb_is_map(f)) {
        if (!json_is_object(v)) {
            return ngx_http_reductrai_pbe_fail(e,
                                               NGX_HTTP_REDUCTRAI_PB_INVALID,
                                               "a map is not an object");
        }

        return ngx_http_reductrai_pbe_map(e, f, v, depth);
    }

    if (!json_is_array(v)) {
        return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_INVALID,
                                           "a repeated field is not an array");
    }

    n = json_array_size(v);

    if (n == 0) {
        return 0;
    }

    if ((f->flags & PROTOBUF_C_FIELD_FLAG_PACKED)
        && ngx_http_reductrai_pbe_wire_type(f) != 2)
    {
        if (ngx_http_reductrai_pbe_tag(e, f->id, 2) != 0
            || ngx_http_reductrai_pbe_open(e, &at) != 0)
        {
            return -1;
        }

        for (i = 0; i < n; i++) {
            if (ngx_http_reductrai_pbe_scalar(e, f, json_array_get(v, i),
                                              &bits)
                != 0
                || ngx_http_reductrai_pbe_put(e, f, bits) != 0)
            {
                return -1;
            }
        }

        return ngx_http_reductrai_pbe_close(e, at);
    }

    for (i = 0; i < n; i++) {
        elt = json_array_get(v, i);

        if (json_is_null(elt)) {
            return ngx_http_reductrai_pbe_fail(e,
                                               NGX_HTTP_REDUCTRAI_PB_INVALID,
                                               "null in a repeated field");
        }

        if (ngx_http_reductrai_pbe_one(e, f, f->id, elt, depth, 1) != 0) {
            return -1;
        }
    }

    return 0;
}


/*
 * An object's members as entries of key = 1 and value = 2, both always
 * written (as protobuf's own serializers do); keys that are numbers or
 * booleans in the schema are strings in JSON.
 */

static int
ngx_http_reductrai_pbe_map(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, json_t *obj, unsigned depth)
{
    int                                rc;
    size_t                             at;
    json_t                            *v, *k;
    const char                        *key;
    const ProtobufCFieldDescriptor    *kf, *vf;
    const ProtobufCMessageDescriptor  *entry;

    entry = f->descriptor;
    kf = &entry->fields[0];
    vf = &entry->fields[1];

    if (depth + 1 > NGX_HTTP_REDUCTRAI_PB_MAX_DEPTH) {
        return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_LIMIT,
                                           "messages nest too deep");
    }

    json_object_foreach(obj, key, v) {

        if (ngx_http_reductrai_pbe_tag(e, f->id, 2) != 0
            || ngx_http_reductrai_pbe_open(e, &at) != 0)
        {
            return -1;
        }

        if (kf->type == PROTOBUF_C_TYPE_STRING) {
            k = json_string(key);

        } else if (kf->type == PROTOBUF_C_TYPE_BOOL) {
            k = (strcmp(key, "true") == 0) ? json_true()
                : (strcmp(key, "false") == 0) ? json_false() : NULL;

            if (k == NULL) {
                return ngx_http_reductrai_pbe_fail(e,
                                             NGX_HTTP_REDUCTRAI_PB_INVALID,
                                             "a map key is not a boolean");
            }

        } else {
            /* numbers as decimal strings: what scalar() reads anyway */
            k = json_string(key);
        }

        if (k == NULL) {
            return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_NOMEM,
                                               "out of memory");
        }

        rc = ngx_http_reductrai_pbe_one(e, kf, 1, k, depth + 1, 1);

        json_decref(k);

        if (rc != 0) {
            return -1;
        }

        if (vf->type == PROTOBUF_C_TYPE_MESSAGE && json_is_null(v)) {
            if (ngx_http_reductrai_pbe_tag(e, 2, 2) != 0
                || ngx_http_reductrai_pbe_varint(e, 0) != 0)
            {
                return -1;
            }

        } else if (ngx_http_reductrai_pbe_one(e, vf, 2, v, depth + 1, 1)
                   != 0)
        {
            return -1;
        }

        if (ngx_http_reductrai_pbe_close(e, at) != 0) {
            return -1;
        }
    }

    return 0;
}


/*
 * One value with its tag (field number id).  Unless always, a zero value
 * is left out: a proto3 field without presence is not on the wire then.
 */

static int
ngx_http_reductrai_pbe_one(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, uint32_t id, json_t *v,
    unsigned depth, unsigned always)
{
    size_t    at, start;
    uint64_t  bits;

    start = e->out->len;

    switch (f->type) {

    case PROTOBUF_C_TYPE_MESSAGE:
        if (!json_is_object(v)) {
            return ngx_http_reductrai_pbe_fail(e,
                                               NGX_HTTP_REDUCTRAI_PB_INVALID,
                                               "a message is not an object");
        }

        if (ngx_http_reductrai_pbe_tag(e, id, 2) != 0
            || ngx_http_reductrai_pbe_open(e, &at) != 0
            || ngx_http_reductrai_pbe_message(e, f->descriptor, v, depth + 1)
               != 0)
        {
            return -1;
        }

        return ngx_http_reductrai_pbe_close(e, at);

    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
        if (ngx_http_reductrai_pbe_tag(e, id, 2) != 0
            || ngx_http_reductrai_pbe_open(e, &at) != 0
            || ngx_http_reductrai_pbe_binary(e, f, v) != 0)
        {
            return -1;
        }

        if (!always && e->out->len == at + 1) {
            e->out->len = start;
            return 0;
        }

        return ngx_http_reductrai_pbe_close(e, at);

    default:
        if (ngx_http_reductrai_pbe_scalar(e, f, v, &bits) != 0) {
            return -1;
        }

        if (!always && bits == 0) {
            return 0;
        }

        if (ngx_http_reductrai_pbe_tag(e, id,
                                       ngx_http_reductrai_pbe_wire_type(f))
            != 0)
        {
            return -1;
        }

        return ngx_http_reductrai_pbe_put(e, f, bits);
    }
}


/* a string as it is; bytes from base64, or from hex (OTLP's ids) */

static int
ngx_http_reductrai_pbe_binary(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, json_t *v)
{
    size_t         len;
    ssize_t        n;
    const u_char  *s;

    if (!json_is_string(v)) {
        return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_INVALID,
                                           "a string field holds another "
                                           "type");
    }

    s = (const u_char *) json_string_value(v);
    len = json_string_length(v);

    if (f->type == PROTOBUF_C_TYPE_STRING) {
        if (ngx_http_reductrai_pbe_reserve(e, len) != 0) {
            return -1;
        }

        if (len) {
            memcpy(e->out->data + e->out->len, s, len);
            e->out->len += len;
        }

        return 0;
    }

    if (ngx_http_reductrai_pb_is_hex(f, e->style)) {
        if (len % 2 != 0) {
            return ngx_http_reductrai_pbe_fail(e,
                                               NGX_HTTP_REDUCTRAI_PB_INVALID,
                                               "an id is not hex");
        }

        if (ngx_http_reductrai_pbe_reserve(e, len / 2) != 0) {
            return -1;
        }

        if (ngx_http_reductrai_unhex(e->out->data + e->out->len,
                                     (const u_char *) s, len)
            != 0)
        {
            return ngx_http_reductrai_pbe_fail(e,
                                               NGX_HTTP_REDUCTRAI_PB_INVALID,
                                               "an id is not hex");
        }

        e->out->len += len / 2;

        return 0;
    }

    if (ngx_http_reductrai_pbe_reserve(e, len / 4 * 3) != 0) {
        return -1;
    }

    n = ngx_http_reductrai_body_b64_decode(e->out->data + e->out->len, s, len);
    if (n < 0) {
        return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_INVALID,
                                           "bytes are not base64");
    }

    e->out->len += n;

    return 0;
}


/* the base64 of wire bytes, appended when they are well formed */

static int
ngx_http_reductrai_pbe_unknown(ngx_http_reductrai_pbe_t *e, json_t *v)
{
    u_char        *p;
    size_t         len;
    ssize_t        n;
    const u_char  *s;

    if (!json_is_string(v)) {
        return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_INVALID,
                                           "unknown fields are not a string");
    }

    s = (const u_char *) json_string_value(v);
    len = json_string_length(v);

    if (ngx_http_reductrai_pbe_reserve(e, len / 4 * 3) != 0) {
        return -1;
    }

    p = e->out->data + e->out->len;

    n = ngx_http_reductrai_body_b64_decode(p, s, len);

    if (n < 0 || ngx_http_reductrai_pbe_wire_valid(p, p + n) != 0) {
        return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_INVALID,
                                           "unknown fields are not "
                                           "protobuf");
    }

    e->out->len += n;

    return 0;
}


/*
 * A scalar's wire value: the varint before encoding (sign-extended for
 * int32 and enums, zigzag for sint), or the bits of a fixed-size value.
 */

static int
ngx_http_reductrai_pbe_scalar(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, json_t *v, uint64_t *bits)
{
    float                         fv;
    double                        d;
    int64_t                       i;
    uint32_t                      u32;
    uint64_t                      u;
    const ProtobufCEnumValue     *ev;

    switch (f->type) {

    case PROTOBUF_C_TYPE_ENUM:
        if (json_is_string(v)) {
            ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor,
                                                     json_string_value(v));
            if (ev != NULL) {
                *bits = (uint64_t) (int64_t) ev->value;
                return 0;
            }
        }

        /* fall through */

    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (ngx_http_reductrai_pbe_int(v, &i) != 0
            || i < INT32_MIN || i > INT32_MAX)
        {
            break;
        }

        if (f->type == PROTOBUF_C_TYPE_SINT32) {
            u32 = ((uint32_t) i << 1) ^ (uint32_t) (i < 0 ? -1 : 0);
            *bits = u32;

        } else if (f->type == PROTOBUF_C_TYPE_SFIXED32) {
            *bits = (uint32_t) i;

        } else {
            *bits = (uint64_t) i;
        }

        return 0;

    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (ngx_http_reductrai_pbe_uint(v, &u) != 0 || u > UINT32_MAX) {
            break;
        }

        *bits = u;
        return 0;

    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (ngx_http_reductrai_pbe_int(v, &i) != 0) {
            break;
        }

        if (f->type == PROTOBUF_C_TYPE_SINT64) {
            *bits = ((uint64_t) i << 1) ^ (uint64_t) (i < 0 ? -1 : 0);

        } else {
            *bits = (uint64_t) i;
        }

        return 0;

    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (ngx_http_reductrai_pbe_uint(v, &u) != 0) {
            break;
        }

        *bits = u;
        return 0;

    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v)) {
            break;
        }

        *bits = json_is_true(v) ? 1 : 0;
        return 0;

    case PROTOBUF_C_TYPE_FLOAT:
        if (ngx_http_reductrai_pbe_double(v, &d) != 0) {
            break;
        }

        fv = (float) d;
        memcpy(&u32, &fv, sizeof(float));
        *bits = u32;
        return 0;

    case PROTOBUF_C_TYPE_DOUBLE:
        if (ngx_http_reductrai_pbe_double(v, &d) != 0) {
            break;
        }

        memcpy(bits, &d, sizeof(double));
        return 0;

    default:
        break;
    }

    return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_INVALID,
                                       "a value does not fit its field");
}


/* a number, an integral real, or a decimal string (64-bit values) */

static int
ngx_http_reductrai_pbe_int(json_t *v, int64_t *r)
{
    int       neg;
    double    d;
    uint64_t  mag;

    if (json_is_integer(v)) {
        *r = json_integer_value(v);
        return 0;
    }

    if (json_is_real(v)) {
        d = json_real_value(v);

        if (d != floor(d) || d < -9223372036854775808.0
            || d >= 9223372036854775808.0)
        {
            return -1;
        }

        *r = (int64_t) d;
        return 0;
    }

    if (!json_is_string(v)
        || ngx_http_reductrai_pbe_decimal(json_string_value(v),
                                          json_string_length(v), &neg, &mag)
           != 0)
    {
        return -1;
    }

    if (neg) {
        if (mag > (uint64_t) INT64_MAX + 1) {
            return -1;
        }

        *r = (mag == (uint64_t) INT64_MAX + 1) ? INT64_MIN
                                               : -(int64_t) mag;
        return 0;
    }

    if (mag > INT64_MAX) {
        return -1;
    }

    *r = (int64_t) mag;

    return 0;
}


static int
ngx_http_reductrai_pbe_uint(json_t *v, uint64_t *r)
{
    int     neg;
    double  d;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) {
            return -1;
        }

        *r = (uint64_t) json_integer_value(v);
        return 0;
    }

    if (json_is_real(v)) {
        d = json_real_value(v);

        if (d != floor(d) || d < 0 || d >= 18446744073709551616.0) {
            return -1;
        }

        *r = (uint64_t) d;
        return 0;
    }

    if (!json_is_string(v)
        || ngx_http_reductrai_pbe_decimal(json_string_value(v),
                                          json_string_length(v), &neg, r)
           != 0
        || (neg && *r != 0))
    {
        return -1;
    }

    return 0;
}


/* "-"? digits, nothing else, within 64 bits */

static int
ngx_http_reductrai_pbe_decimal(const char *s, size_t len, int *neg,
    uint64_t *mag)
{
    size_t    i;
    unsigned  d;
    uint64_t  m;

    *neg = (len > 0 && s[0] == '-');
    i = *neg ? 1 : 0;

    if (i == len) {
        return -1;
    }

    for (m = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        d = s[i] - '0';

        if (m > (UINT64_MAX - d) / 10) {
            return -1;
        }

        m = m * 10 + d;
    }

    *mag = m;

    return 0;
}


/*
 * A number, or a string: "NaN", "Infinity", "-Infinity", the printer's
 * "NaN:0x…" (a NaN's 16 hex digits of bits), or a decimal as proto3 JSON
 * allows.
 */

static int
ngx_http_reductrai_pbe_double(json_t *v, double *r)
{
    int          c;
    char        *end;
    size_t       i, len;
    uint64_t     bits;
    const char  *s;

    if (json_is_number(v)) {
        *r = json_number_value(v);
        return 0;
    }

    if (!json_is_string(v)) {
        return -1;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    if (strcmp(s, "NaN") == 0) {
        bits = 0x7ff8000000000000ULL;
        memcpy(r, &bits, sizeof(double));
        return 0;
    }

    if (strcmp(s, "Infinity") == 0) {
        *r = INFINITY;
        return 0;
    }

    if (strcmp(s, "-Infinity") == 0) {
        *r = -INFINITY;
        return 0;
    }

    if (len == 22 && memcmp(s, "NaN:0x", 6) == 0) {
        bits = 0;

        for (i = 6; i < len; i++) {
            c = ngx_http_reductrai_hexval((u_char) s[i]);
            if (c < 0) {
                return -1;
            }

            bits = bits << 4 | (uint64_t) c;
        }

        memcpy(r, &bits, sizeof(double));

        return isnan(*r) ? 0 : -1;
    }

    if (len == 0 || s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r')) {
        return -1;
    }

    *r = strtod(s, &end);

    return (end == s + len) ? 0 : -1;
}


static unsigned
ngx_http_reductrai_pbe_wire_type(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {

    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;

    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;

    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;

    default:
        return 0;
    }
}


static int
ngx_http_reductrai_pbe_put(ngx_http_reductrai_pbe_t *e,
    const ProtobufCFieldDescriptor *f, uint64_t bits)
{
    switch (ngx_http_reductrai_pbe_wire_type(f)) {

    case 5:
        if (ngx_http_reductrai_pbe_reserve(e, 4) != 0) {
            return -1;
        }

        ngx_http_reductrai_put_le32(e->out->data + e->out->len,
                                    (uint32_t) bits);
        e->out->len += 4;
        return 0;

    case 1:
        if (ngx_http_reductrai_pbe_reserve(e, 8) != 0) {
            return -1;
        }

        ngx_http_reductrai_put_le64(e->out->data + e->out->len, bits);
        e->out->len += 8;
        return 0;

    default:
        return ngx_http_reductrai_pbe_varint(e, bits);
    }
}


static int
ngx_http_reductrai_pbe_tag(ngx_http_reductrai_pbe_t *e, uint32_t id,
    unsigned wire_type)
{
    return ngx_http_reductrai_pbe_varint(e,
                                         (uint64_t) id << 3 | wire_type);
}


static int
ngx_http_reductrai_pbe_varint(ngx_http_reductrai_pbe_t *e, uint64_t v)
{
    u_char  *p;

    if (ngx_http_reductrai_pbe_reserve(e, 10) != 0) {
        return -1;
    }

    p = e->out->data + e->out->len;

    while (v >= 0x80) {
        *p++ = (u_char) (v | 0x80);
        v >>= 7;
    }

    *p++ = (u_char) v;

    e->out->len = p - e->out->data;

    return 0;
}


/*
 * A length-delimited value: one byte is kept for its length, which most
 * values fit; close() moves a longer value up to make room.
 */

static int
ngx_http_reductrai_pbe_open(ngx_http_reductrai_pbe_t *e, size_t *at)
{
    if (ngx_http_reductrai_pbe_reserve(e, 1) != 0) {
        return -1;
    }

    *at = e->out->len;
    e->out->data[e->out->len++] = 0;

    return 0;
}


static int
ngx_http_reductrai_pbe_close(ngx_http_reductrai_pbe_t *e, size_t at)
{
    u_char    *p;
    size_t     n, vlen;
    uint64_t   v;

    n = e->out->len - at - 1;

    for (vlen = 1, v = n; v >= 0x80; v >>= 7) {
        vlen++;
    }

    if (vlen > 1) {
        if (ngx_http_reductrai_pbe_reserve(e, vlen - 1) != 0) {
            return -1;
        }

        p = e->out->data + at;
        memmove(p + vlen, p + 1, n);
        e->out->len += vlen - 1;
    }

    p = e->out->data + at;

    for (v = n; v >= 0x80; v >>= 7) {
        *p++ = (u_char) (v | 0x80);
    }

    *p = (u_char) v;

    return 0;
}


static int
ngx_http_reductrai_pbe_reserve(ngx_http_reductrai_pbe_t *e, size_t n)
{
    if (n > e->max || e->out->len > e->max - n) {
        return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_LIMIT,
                                           "the message is too large");
    }

    if (ngx_http_reductrai_buf_reserve(e->out, n) != 0) {
        return ngx_http_reductrai_pbe_fail(e, NGX_HTTP_REDUCTRAI_PB_NOMEM,
                                           "out of memory");
    }

    return 0;
}


static int
ngx_http_reductrai_pbe_fail(ngx_http_reductrai_pbe_t *e,
    ngx_http_reductrai_pb_rc_e rc, const char *err)
{
    e->rc = rc;
    e->err = err;

    return -1;
}


/* tags and values of the wire format, groups excepted (as the printer) */

static int
ngx_http_reductrai_pbe_wire_valid(const u_char *p, const u_char *end)
{
    uint64_t  key, v;

    while (p < end) {
        if (ngx_http_reductrai_pb_varint(&p, end, &key) != 0
            || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        {
            return -1;
        }

        switch (key & 7) {

        case 0:
            if (ngx_http_reductrai_pb_varint(&p, end, &v) != 0) {
                return -1;
            }

            break;

        case 1:
            if (end - p < 8) {
                return -1;
            }

            p += 8;
            break;

        case 2:
            if (ngx_http_reductrai_pb_varint(&p, end, &v) != 0
                || v > (uint64_t) (end - p))
            {
                return -1;
            }

            p += v;
            break;

        case 5:
            if (end - p < 4) {
                return -1;
            }

            p += 4;
            break;

        default:
            return -1;
        }
    }

    return 0;
}

