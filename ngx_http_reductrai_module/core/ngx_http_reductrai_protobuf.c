
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_protobuf.h"
#include "ngx_http_reductrai_json.h"
#include "ngx_http_reductrai_record.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define NGX_HTTP_REDUCTRAI_PB_ALIGN       16
/* a block's header, rounded up to the alignment */
#define NGX_HTTP_REDUCTRAI_PB_HEADER                                         \
    ((sizeof(ngx_http_reductrai_pb_block_t) + NGX_HTTP_REDUCTRAI_PB_ALIGN - 1) \
     & ~((size_t) NGX_HTTP_REDUCTRAI_PB_ALIGN - 1))
#define NGX_HTTP_REDUCTRAI_PB_BLOCK_MIN   (64 * 1024)
#define NGX_HTTP_REDUCTRAI_PB_BLOCK_MAX   (8 * 1024 * 1024)
/* repeated fields are counted for messages of at most this many fields */
#define NGX_HTTP_REDUCTRAI_PB_COUNTED     64
/*
 * per byte of a word: the high bit, and 1 (a byte with the high bit set,
 * minus 1, keeps it unless its low 7 bits were all zero)
 */
#define NGX_HTTP_REDUCTRAI_PB_HIGH        0x8080808080808080ULL
#define NGX_HTTP_REDUCTRAI_PB_LOW         0x0101010101010101ULL
/* the most one scalar, key or punctuation can add to the output */
#define NGX_HTTP_REDUCTRAI_PB_SCALAR_LEN  64


struct ngx_http_reductrai_pb_block_s {
    ngx_http_reductrai_pb_block_t  *next;
    size_t                          size;
    size_t                          pos;
    /* the block's memory follows at NGX_HTTP_REDUCTRAI_PB_HEADER */
};


typedef struct {
    ngx_http_reductrai_pb_t       *pb;
    ngx_http_reductrai_pb_rc_e     failed;   /* why the allocator said no */
} ngx_http_reductrai_pb_alloc_t;


typedef struct {
    ngx_http_reductrai_buf_t      *out;
    size_t                         limit;    /* of out->len */
    unsigned                       style;
    ngx_http_reductrai_pb_key_t   *keys;
} ngx_http_reductrai_pb_print_t;


static void *ngx_http_reductrai_pb_alloc(void *data, size_t size);
static void ngx_http_reductrai_pb_free(void *data, void *p);
static ngx_http_reductrai_pb_rc_e ngx_http_reductrai_pb_scan(
    const ProtobufCMessageDescriptor *desc, const u_char *p,
    const u_char *end, unsigned depth);
static int ngx_http_reductrai_pb_utf8(const u_char *p, const u_char *end);
static int ngx_http_reductrai_pb_message(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCMessage *msg);
static int ngx_http_reductrai_pb_field(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCFieldDescriptor *f, const void *member, unsigned always);
static int ngx_http_reductrai_pb_repeated(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCFieldDescriptor *f, const void *array, size_t n);
static int ngx_http_reductrai_pb_map(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCFieldDescriptor *f, ProtobufCMessage **entries, size_t n);
static int ngx_http_reductrai_pb_value(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCFieldDescriptor *f, const void *v);
static int ngx_http_reductrai_pb_is_default(const ProtobufCFieldDescriptor *f,
    const void *v);
static int ngx_http_reductrai_pb_key(ngx_http_reductrai_pb_print_t *pr,
    const char *name, unsigned comma);
static int ngx_http_reductrai_pb_unknown(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCMessage *msg, unsigned comma);
static int ngx_http_reductrai_pb_reserve(ngx_http_reductrai_pb_print_t *pr,
    size_t n);
static int ngx_http_reductrai_pb_char(ngx_http_reductrai_pb_print_t *pr,
    u_char c);
static u_char *ngx_http_reductrai_pb_int(u_char *p, int64_t v, unsigned big);
static u_char *ngx_http_reductrai_pb_uint(u_char *p, uint64_t v, unsigned big);
static u_char *ngx_http_reductrai_pb_double(u_char *p, double v,
    unsigned style);
static u_char *ngx_http_reductrai_pb_decimal(u_char *p, double v);
static u_char *ngx_http_reductrai_pb_exact(u_char *p, double v);
static size_t ngx_http_reductrai_pb_tag(u_char *p, uint32_t id,
    unsigned wire_type);


#define ngx_http_reductrai_pb_cpystr(p, s)                                   \
    ((u_char *) memcpy(p, s, sizeof(s) - 1) + sizeof(s) - 1)

#define ngx_http_reductrai_pb_member(msg, off)                               \
    ((const u_char *) (msg) + (off))

/* the one-byte varints that most tags and lengths are, inline */
#define ngx_http_reductrai_pb_varint1(pp, end, v)                            \
    ((*(pp) < (end) && **(pp) < 0x80)                                       \
     ? (*(v) = *(*(pp))++, 0) : ngx_http_reductrai_pb_varint(pp, end, v))


static const u_char  ngx_http_reductrai_pb_hex[] = "0123456789abcdef";

/* "00" to "99" */
static const u_char  ngx_http_reductrai_pb_digits2[] =
    "000102030405060708091011121314151617181920212223242526272829"
    "303132333435363738394041424344454647484950515253545556575859"
    "606162636465666768697071727374757677787980818283848586878889"
    "90919293949596979899";


ngx_http_reductrai_pb_rc_e
ngx_http_reductrai_pb_json(ngx_http_reductrai_pb_t *pb,
    const ProtobufCMessageDescriptor *desc, unsigned style,
    const u_char *in, size_t len, ngx_http_reductrai_buf_t *out)
{
    size_t                          start;
    ProtobufCMessage               *msg;
    ProtobufCAllocator              allocator;
    ngx_http_reductrai_pb_rc_e      rc;
    ngx_http_reductrai_pb_block_t  *b;
    ngx_http_reductrai_pb_alloc_t   a;
    ngx_http_reductrai_pb_print_t   pr;

    if (len == 0) {
        /* an empty body is the empty message; its pointer may be NULL */
        in = (const u_char *) "";
    }

    /* the walk checks what protobuf-c does not: depth, counts, UTF-8 */

    rc = ngx_http_reductrai_pb_scan(desc, in, in + len, 1);
    if (rc != NGX_HTTP_REDUCTRAI_PB_OK) {
        return rc;
    }

    for (b = pb->blocks; b != NULL; b = b->next) {
        b->pos = 0;
    }

    pb->current = pb->blocks;
    pb->used = 0;
    pb->limit = (len < (NGX_HTTP_REDUCTRAI_PB_MEM_MAX
                        - NGX_HTTP_REDUCTRAI_PB_MEM_EXTRA)
                       / NGX_HTTP_REDUCTRAI_PB_MEM_RATIO)
                ? len * NGX_HTTP_REDUCTRAI_PB_MEM_RATIO
                  + NGX_HTTP_REDUCTRAI_PB_MEM_EXTRA
                : NGX_HTTP_REDUCTRAI_PB_MEM_MAX;

    a.pb = pb;
    a.failed = NGX_HTTP_REDUCTRAI_PB_INVALID;

    allocator.alloc = ngx_http_reductrai_pb_alloc;
    allocator.free = ngx_http_reductrai_pb_free;
    allocator.allocator_data = &a;

    msg = protobuf_c_message_unpack(desc, &allocator, len, in);
    if (msg == NULL) {
        return a.failed;
    }

    start = out->len;

    pr.out = out;
    pr.limit = out->len + pb->limit;
    pr.style = style;
    pr.keys = pb->keys;

    if (ngx_http_reductrai_pb_message(&pr, msg) != 0) {
        out->len = start;
        return (pr.limit == 0) ? NGX_HTTP_REDUCTRAI_PB_LIMIT
                               : NGX_HTTP_REDUCTRAI_PB_NOMEM;
    }

    /* nothing to free: the arena is reset by the next body */

    return NGX_HTTP_REDUCTRAI_PB_OK;
}


const char *
ngx_http_reductrai_pb_error(ngx_http_reductrai_pb_rc_e rc)
{
    switch (rc) {

    case NGX_HTTP_REDUCTRAI_PB_OK:
        return NULL;

    case NGX_HTTP_REDUCTRAI_PB_LIMIT:
        return "protobuf_limit";

    case NGX_HTTP_REDUCTRAI_PB_NOMEM:
        return "out_of_memory";

    default:
        return "invalid_protobuf";
    }
}


void
ngx_http_reductrai_pb_trim(ngx_http_reductrai_pb_t *pb, size_t keep)
{
    ngx_http_reductrai_pb_block_t  *b, *next;

    if (keep && pb->held <= keep) {
        return;
    }

    for (b = pb->blocks; b != NULL; b = next) {
        next = b->next;
        free(b);
    }

    pb->blocks = NULL;
    pb->current = NULL;
    pb->used = 0;
    pb->held = 0;
}


/*
 * A bump allocator over blocks kept from body to body; free() is a no-op.
 * It refuses (protobuf-c then fails the unpack) once the body's limit is
 * reached, and says why in failed.
 */

static void *
ngx_http_reductrai_pb_alloc(void *data, size_t size)
{
    size_t                          bsize;
    u_char                         *p;
    ngx_http_reductrai_pb_t        *pb;
    ngx_http_reductrai_pb_block_t  *b, *prev;
    ngx_http_reductrai_pb_alloc_t  *a;

    a = data;
    pb = a->pb;

    size = (size + NGX_HTTP_REDUCTRAI_PB_ALIGN - 1)
           & ~((size_t) NGX_HTTP_REDUCTRAI_PB_ALIGN - 1);

    if (size > pb->limit - pb->used) {
        a->failed = NGX_HTTP_REDUCTRAI_PB_LIMIT;
        return NULL;
    }

    prev = NULL;

    for (b = pb->current; b != NULL; b = b->next) {
        if (b->size - b->pos >= size) {
            break;
        }

        prev = b;
    }

    if (b == NULL) {
        bsize = (pb->held < NGX_HTTP_REDUCTRAI_PB_BLOCK_MIN)
                ? NGX_HTTP_REDUCTRAI_PB_BLOCK_MIN : pb->held;

        if (bsize > NGX_HTTP_REDUCTRAI_PB_BLOCK_MAX) {
            bsize = NGX_HTTP_REDUCTRAI_PB_BLOCK_MAX;
        }

        if (bsize < size) {
            bsize = size;
        }

        b = malloc(NGX_HTTP_REDUCTRAI_PB_HEADER + bsize);
        if (b == NULL) {
            a->failed = NGX_HTTP_REDUCTRAI_PB_NOMEM;
            return NULL;
        }

        b->next = NULL;
        b->size = bsize;
        b->pos = 0;

        pb->held += bsize;

        if (prev != NULL) {
            prev->next = b;

        } else {
            pb->blocks = b;
        }
    }

    /* blocks passed over keep their free tail; few are, and only once */

    pb->current = b;

    p = (u_char *) b + NGX_HTTP_REDUCTRAI_PB_HEADER + b->pos;
    b->pos += size;
    pb->used += size;

    return p;
}


static void
ngx_http_reductrai_pb_free(void *data, void *p)
{
    /* the arena is reset as a whole */
}


/*
 * One pass over the wire format, before protobuf-c allocates anything:
 * every tag, length and nested message must be well formed, messages nest at
 * most NGX_HTTP_REDUCTRAI_PB_MAX_DEPTH deep, a repeated field of one message
 * holds at most NGX_HTTP_REDUCTRAI_PB_MAX_REPEATED elements, and strings are
 * UTF-8 without NUL.  Fields the descriptor does not know are only skipped.
 */

static ngx_http_reductrai_pb_rc_e
ngx_http_reductrai_pb_scan(const ProtobufCMessageDescriptor *desc,
    const u_char *p, const u_char *end, unsigned depth)
{
    size_t                           idx;
    uint32_t                         counts[NGX_HTTP_REDUCTRAI_PB_COUNTED];
    uint32_t                         id;
    uint64_t                         key, v, n, seen;
    const u_char                    *sub;
    ngx_http_reductrai_pb_rc_e       rc;
    const ProtobufCFieldDescriptor  *f;

    if (depth > NGX_HTTP_REDUCTRAI_PB_MAX_DEPTH) {
        return NGX_HTTP_REDUCTRAI_PB_LIMIT;
    }

    f = NULL;

    /*
     * a count is zeroed when its field is first seen: a memset of them all
     * per nested message cost a third of the scan
     */

    seen = 0;

    while (p < end) {
        if (ngx_http_reductrai_pb_varint1(&p, end, &key) != 0
            || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        {
            return NGX_HTTP_REDUCTRAI_PB_INVALID;
        }

        /*
         * fields come in number order, repeated ones in a row: the last
         * field and the next are tried before a search
         */

        id = (uint32_t) (key >> 3);

        if (f != NULL && f->id == id) {
            /* the same field again */

        } else if (f != NULL && f + 1 < desc->fields + desc->n_fields
                   && f[1].id == id)
        {
            f++;

        } else {
            f = protobuf_c_message_descriptor_get_field(desc, id);
        }

        n = 1;

        switch (key & 7) {

        case 0:
            if (ngx_http_reductrai_pb_varint1(&p, end, &v) != 0) {
                return NGX_HTTP_REDUCTRAI_PB_INVALID;
            }

            break;

        case 1:
            if (end - p < 8) {
                return NGX_HTTP_REDUCTRAI_PB_INVALID;
            }

            p += 8;
            break;

        case 5:
            if (end - p < 4) {
                return NGX_HTTP_REDUCTRAI_PB_INVALID;
            }

            p += 4;
            break;

        case 2:
            if (ngx_http_reductrai_pb_varint1(&p, end, &v) != 0
                || v > (uint64_t) (end - p))
            {
                return NGX_HTTP_REDUCTRAI_PB_INVALID;
            }

            sub = p;
            p += v;

            if (f == NULL) {
                break;
            }

            switch (f->type) {

            case PROTOBUF_C_TYPE_MESSAGE:
                rc = ngx_http_reductrai_pb_scan(f->descriptor, sub, p,
                                                depth + 1);
                if (rc != NGX_HTTP_REDUCTRAI_PB_OK) {
                    return rc;
                }

                break;

            case PROTOBUF_C_TYPE_STRING:
                if (ngx_http_reductrai_pb_utf8(sub, p) != 0) {
                    return NGX_HTTP_REDUCTRAI_PB_INVALID;
                }

                break;

            case PROTOBUF_C_TYPE_BYTES:
                break;

            case PROTOBUF_C_TYPE_DOUBLE:
            case PROTOBUF_C_TYPE_FIXED64:
            case PROTOBUF_C_TYPE_SFIXED64:
                n = v / 8;
                break;

            case PROTOBUF_C_TYPE_FLOAT:
            case PROTOBUF_C_TYPE_FIXED32:
            case PROTOBUF_C_TYPE_SFIXED32:
                n = v / 4;
                break;

            default:
                /* packed varints: one ends at each byte below 0x80 */
                for (n = 0; sub < p; sub++) {
                    n += (*sub < 0x80);
                }
            }

            break;

        default:
            /* groups (deprecated, absent from proto3) and bad wire types */
            return NGX_HTTP_REDUCTRAI_PB_INVALID;
        }

        if (f != NULL && f->label == PROTOBUF_C_LABEL_REPEATED) {
            idx = f - desc->fields;

            if (idx < NGX_HTTP_REDUCTRAI_PB_COUNTED) {
                if (!(seen & ((uint64_t) 1 << idx))) {
                    seen |= (uint64_t) 1 << idx;
                    counts[idx] = 0;
                }

                if (n > NGX_HTTP_REDUCTRAI_PB_MAX_REPEATED - counts[idx]) {
                    return NGX_HTTP_REDUCTRAI_PB_LIMIT;
                }

                counts[idx] += n;
            }
        }
    }

    return NGX_HTTP_REDUCTRAI_PB_OK;
}


int
ngx_http_reductrai_pb_varint(const u_char **pp, const u_char *end,
    uint64_t *v)
{
    unsigned       shift;
    uint64_t       r;
    const u_char  *p;

    p = *pp;
    r = 0;

    for (shift = 0; shift < 64; shift += 7) {
        if (p == end) {
            return -1;
        }

        r |= (uint64_t) (*p & 0x7f) << shift;

        if (*p++ < 0x80) {
            *pp = p;
            *v = r;
            return 0;
        }
    }

    return -1;
}


/* RFC 3629 UTF-8, and no NUL */

static int
ngx_http_reductrai_pb_utf8(const u_char *p, const u_char *end)
{
    u_char    c;
    size_t    n;
    uint32_t  cp, min;
    uint64_t  w;

    while (p < end) {

        /* eight ASCII bytes at a time: no high bit and no zero byte */

        if (end - p >= 8) {
            memcpy(&w, p, 8);

            if (((w | ~((w | NGX_HTTP_REDUCTRAI_PB_HIGH)
                        - NGX_HTTP_REDUCTRAI_PB_LOW))
                 & NGX_HTTP_REDUCTRAI_PB_HIGH)
                == 0)
            {
                p += 8;
                continue;
            }
        }

        c = *p++;

        if (c >= 0x01 && c < 0x80) {
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
            min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
            min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;

        } else {
            return -1;
        }

        if ((size_t) (end - p) < n) {
            return -1;
        }

        while (n--) {
            if ((*p & 0xc0) != 0x80) {
                return -1;
            }

            cp = (cp << 6) | (*p++ & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return -1;
        }
    }

    return 0;
}


/*
 * Fields in the descriptor's order (by number).  A proto3 field without
 * presence is printed when it is not its zero value, or always with
 * NGX_HTTP_REDUCTRAI_PB_DEFAULTS (scalars only); the member of a oneof that
 * is set is always printed, even when zero.
 */

static int
ngx_http_reductrai_pb_message(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCMessage *msg)
{
    size_t                             n;
    unsigned                           comma, always;
    const void                        *member;
    const ProtobufCFieldDescriptor    *f, *end;
    const ProtobufCMessageDescriptor  *desc;

    desc = msg->descriptor;

    if (ngx_http_reductrai_pb_char(pr, '{') != 0) {
        return -1;
    }

    comma = 0;
    end = desc->fields + desc->n_fields;

    for (f = desc->fields; f < end; f++) {
        member = ngx_http_reductrai_pb_member(msg, f->offset);

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)
                    ngx_http_reductrai_pb_member(msg, f->quantifier_offset);

            if (n == 0) {
                continue;
            }

            if (ngx_http_reductrai_pb_key(pr, f->name, comma) != 0
                || ngx_http_reductrai_pb_repeated(pr, f,
                                                  *(void * const *) member, n)
                   != 0)
            {
                return -1;
            }

            comma = 1;
            continue;
        }

        always = 0;

        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)
                    ngx_http_reductrai_pb_member(msg, f->quantifier_offset)
                != f->id)
            {
                continue;
            }

            always = 1;

        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL
                   && f->quantifier_offset != 0)
        {
            /* proto2 "optional" scalars carry has_ flags */

            if (!*(const protobuf_c_boolean *)
                    ngx_http_reductrai_pb_member(msg, f->quantifier_offset))
            {
                continue;
            }

            always = 1;
        }

        switch (ngx_http_reductrai_pb_field(pr, f, member,
                                            always | comma << 1))
        {
        case -1:
            return -1;

        case 1:
            comma = 1;
        }
    }

    if (msg->n_unknown_fields) {
        if (ngx_http_reductrai_pb_unknown(pr, msg, comma) != 0) {
            return -1;
        }
    }

    if (ngx_http_reductrai_pb_char(pr, '}') != 0) {
        return -1;
    }

    return 0;
}


/*
 * flags: bit 0 "print even the zero value", bit 1 "a comma goes first";
 * returns 1 when the field was printed, 0 when skipped, -1 on failure
 */

static int
ngx_http_reductrai_pb_field(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCFieldDescriptor *f, const void *member, unsigned flags)
{
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (*(void * const *) member == NULL) {
            return 0;
        }

    } else if (!(flags & 1)
               && ngx_http_reductrai_pb_is_default(f, member)
               && !((pr->style & NGX_HTTP_REDUCTRAI_PB_DEFAULTS)
                    && f->type != PROTOBUF_C_TYPE_BYTES))
    {
        return 0;
    }

    if (ngx_http_reductrai_pb_key(pr, f->name, flags >> 1) != 0
        || ngx_http_reductrai_pb_value(pr, f, member) != 0)
    {
        return -1;
    }

    return 1;
}


static int
ngx_http_reductrai_pb_repeated(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCFieldDescriptor *f, const void *array, size_t n)
{
    size_t        i, size;
    const u_char  *p;

    if (ngx_http_reductrai_pb_is_map(f)) {
        return ngx_http_reductrai_pb_map(pr, f, (ProtobufCMessage **) array,
                                         n);
    }

    switch (f->type) {

    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        size = 8;
        break;

    case PROTOBUF_C_TYPE_BOOL:
        size = sizeof(protobuf_c_boolean);
        break;

    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        size = sizeof(void *);
        break;

    case PROTOBUF_C_TYPE_BYTES:
        size = sizeof(ProtobufCBinaryData);
        break;

    default:
        size = 4;
    }

    if (ngx_http_reductrai_pb_char(pr, '[') != 0) {
        return -1;
    }

    for (i = 0, p = array; i < n; i++, p += size) {
        if (i) {
            if (ngx_http_reductrai_pb_char(pr, ',') != 0) {
                return -1;
            }
        }

        if (ngx_http_reductrai_pb_value(pr, f, p) != 0) {
            return -1;
        }
    }

    if (ngx_http_reductrai_pb_char(pr, ']') != 0) {
        return -1;
    }

    return 0;
}


/*
 * map<K, V> is a repeated "…Entry" message of key = 1 and value = 2 on the
 * wire; in JSON it is an object (keys as strings), as proto3 JSON has it.
 * Entries are printed in wire order, all of them.
 */

static int
ngx_http_reductrai_pb_map(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCFieldDescriptor *f, ProtobufCMessage **entries, size_t n)
{
    size_t                             i, start;
    u_char                            *p;
    const ProtobufCFieldDescriptor    *k, *v;
    const ProtobufCMessageDescriptor  *desc;

    desc = f->descriptor;
    k = &desc->fields[0];
    v = &desc->fields[1];

    if (ngx_http_reductrai_pb_char(pr, '{') != 0) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (i && ngx_http_reductrai_pb_char(pr, ',') != 0) {
            return -1;
        }

        start = pr->out->len;

        if (ngx_http_reductrai_pb_value(pr, k,
                ngx_http_reductrai_pb_member(entries[i], k->offset))
            != 0)
        {
            return -1;
        }

        if (pr->out->data[start] != '"') {
            /* a number or bool key: JSON keys are strings */

            if (ngx_http_reductrai_pb_reserve(pr, 2) != 0) {
                return -1;
            }

            p = pr->out->data + start;
            memmove(p + 1, p, pr->out->len - start);
            *p = '"';
            pr->out->data[++pr->out->len] = '"';
            pr->out->len++;
        }

        if (ngx_http_reductrai_pb_char(pr, ':') != 0) {
            return -1;
        }

        if (v->type == PROTOBUF_C_TYPE_MESSAGE
            && *(void * const *)
                   ngx_http_reductrai_pb_member(entries[i], v->offset)
               == NULL)
        {
            if (ngx_http_reductrai_pb_reserve(pr, 2) != 0) {
                return -1;
            }

            pr->out->data[pr->out->len++] = '{';
            pr->out->data[pr->out->len++] = '}';
            continue;
        }

        if (ngx_http_reductrai_pb_value(pr, v,
                ngx_http_reductrai_pb_member(entries[i], v->offset))
            != 0)
        {
            return -1;
        }
    }

    if (ngx_http_reductrai_pb_char(pr, '}') != 0) {
        return -1;
    }

    return 0;
}


int
ngx_http_reductrai_pb_is_hex(const ProtobufCFieldDescriptor *f,
    unsigned style)
{
    return (style & NGX_HTTP_REDUCTRAI_PB_HEX_IDS)
           && f->type == PROTOBUF_C_TYPE_BYTES
           && (strcmp(f->name, "trace_id") == 0
               || strcmp(f->name, "span_id") == 0
               || strcmp(f->name, "parent_span_id") == 0);
}


u_char *
ngx_http_reductrai_pb_camel(u_char *dst, const char *name)
{
    unsigned  up;

    for (up = 0; *name; name++) {
        if (*name == '_') {
            up = 1;
            continue;
        }

        *dst++ = (up && *name >= 'a' && *name <= 'z') ? *name - 'a' + 'A'
                                                      : *name;
        up = 0;
    }

    return dst;
}


int
ngx_http_reductrai_pb_is_map(const ProtobufCFieldDescriptor *f)
{
    size_t                             len;
    const ProtobufCMessageDescriptor  *d;

    if (f->type != PROTOBUF_C_TYPE_MESSAGE
        || f->label != PROTOBUF_C_LABEL_REPEATED)
    {
        return 0;
    }

    d = f->descriptor;
    len = strlen(d->name);

    return d->n_fields == 2
           && len > 5 && strcmp(d->name + len - 5, "Entry") == 0
           && d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0
           && d->fields[1].id == 2 && strcmp(d->fields[1].name, "value") == 0
           && d->fields[0].label != PROTOBUF_C_LABEL_REPEATED
           && d->fields[1].label != PROTOBUF_C_LABEL_REPEATED;
}


static int
ngx_http_reductrai_pb_value(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCFieldDescriptor *f, const void *v)
{
    size_t                     n, len;
    u_char                    *p;
    unsigned                   big, hex;
    const char                *s;
    const ProtobufCBinaryData  *bin;

    if (ngx_http_reductrai_pb_reserve(pr, NGX_HTTP_REDUCTRAI_PB_SCALAR_LEN)
        != 0)
    {
        return -1;
    }

    p = pr->out->data + pr->out->len;
    big = (pr->style & NGX_HTTP_REDUCTRAI_PB_INT64_STRING) ? 1 : 0;

    switch (f->type) {

    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        p = ngx_http_reductrai_pb_int(p, *(const int32_t *) v, 0);
        break;

    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        p = ngx_http_reductrai_pb_uint(p, *(const uint32_t *) v, 0);
        break;

    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        p = ngx_http_reductrai_pb_int(p, *(const int64_t *) v, big);
        break;

    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        p = ngx_http_reductrai_pb_uint(p, *(const uint64_t *) v, big);
        break;

    case PROTOBUF_C_TYPE_FLOAT:
        p = ngx_http_reductrai_pb_double(p, *(const float *) v, pr->style);
        break;

    case PROTOBUF_C_TYPE_DOUBLE:
        p = ngx_http_reductrai_pb_double(p, *(const double *) v, pr->style);
        break;

    case PROTOBUF_C_TYPE_BOOL:
        if (*(const protobuf_c_boolean *) v) {
            p = ngx_http_reductrai_pb_cpystr(p, "true");

        } else {
            p = ngx_http_reductrai_pb_cpystr(p, "false");
        }

        break;

    case PROTOBUF_C_TYPE_STRING:
        s = *(char * const *) v;
        len = (s != NULL) ? strlen(s) : 0;

        /*
         * room for the longest escape (\u00XX per byte) saves a pass that
         * counts, unless only the exact size fits under the limit
         */

        n = (len < (pr->limit - pr->out->len) / 6) ? len * 6
            : ngx_http_reductrai_json_escape_len((const u_char *) s, len);

        if (ngx_http_reductrai_pb_reserve(pr, n + 2) != 0) {
            return -1;
        }

        p = pr->out->data + pr->out->len;
        *p++ = '"';
        p = ngx_http_reductrai_json_escape(p, (const u_char *) s, len);
        *p++ = '"';
        break;

    case PROTOBUF_C_TYPE_BYTES:
        bin = v;

        hex = ngx_http_reductrai_pb_is_hex(f, pr->style);

        n = hex ? bin->len * 2 : (bin->len + 2) / 3 * 4;

        if (ngx_http_reductrai_pb_reserve(pr, n + 2) != 0) {
            return -1;
        }

        p = pr->out->data + pr->out->len;
        *p++ = '"';

        if (hex) {
            p = ngx_http_reductrai_hex(p, bin->data, bin->len);

        } else {
            p += ngx_http_reductrai_base64_encode(p, bin->data, bin->len);
        }

        *p++ = '"';
        break;

    case PROTOBUF_C_TYPE_MESSAGE:
        return ngx_http_reductrai_pb_message(pr,
                                             *(ProtobufCMessage * const *) v);

    default:
        return -1;
    }

    pr->out->len = p - pr->out->data;

    return 0;
}


static int
ngx_http_reductrai_pb_is_default(const ProtobufCFieldDescriptor *f,
    const void *v)
{
    const char  *s;

    switch (f->type) {

    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *) v == 0;

    case PROTOBUF_C_TYPE_DOUBLE:
        /* -0.0 is not the default: its bits are not zero */
        return *(const uint64_t *) v == 0;

    case PROTOBUF_C_TYPE_FLOAT:
        return *(const uint32_t *) v == 0;

    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *) v == 0;

    case PROTOBUF_C_TYPE_STRING:
        s = *(char * const *) v;
        return s == NULL || *s == '\0';

    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *) v)->len == 0;

    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void * const *) v == NULL;

    default:
        return *(const uint32_t *) v == 0;
    }
}


/* '"name":', lowerCamelCase when the style asks (proto3 JSON's json_name) */

static int
ngx_http_reductrai_pb_key(ngx_http_reductrai_pb_print_t *pr,
    const char *name, unsigned comma)
{
    u_char                       *p, *start;
    size_t                        len;
    ngx_http_reductrai_pb_key_t  *k;

    /*
     * names are the descriptors' (static): their address identifies them;
     * a hit copies the whole entry (a constant size is a few moves, a
     * variable one a slow "rep movs"), len tells what counts
     */

    k = &pr->keys[((uint64_t) (uintptr_t) name * 0x9e3779b97f4a7c15ULL)
                  >> (64 - NGX_HTTP_REDUCTRAI_PB_KEYS_LOG)];

    if (k->name == name
        && k->style == (pr->style & NGX_HTTP_REDUCTRAI_PB_CAMEL)
        && pr->out->len + sizeof(k->data) + 1 <= pr->limit)
    {
        if (ngx_http_reductrai_pb_reserve(pr, sizeof(k->data) + 1) != 0) {
            return -1;
        }

        p = pr->out->data + pr->out->len;

        if (comma) {
            *p++ = ',';
        }

        memcpy(p, k->data, sizeof(k->data));
        pr->out->len = p + k->len - pr->out->data;

        return 0;
    }

    len = strlen(name);

    if (ngx_http_reductrai_pb_reserve(pr, len + 4) != 0) {
        return -1;
    }

    p = pr->out->data + pr->out->len;

    if (comma) {
        *p++ = ',';
    }

    start = p;
    *p++ = '"';

    if (pr->style & NGX_HTTP_REDUCTRAI_PB_CAMEL) {
        p = ngx_http_reductrai_pb_camel(p, name);

    } else {
        p = (u_char *) memcpy(p, name, len) + len;
    }

    *p++ = '"';
    *p++ = ':';

    if ((size_t) (p - start) <= NGX_HTTP_REDUCTRAI_PB_KEY_LEN) {
        k->name = name;
        k->style = pr->style & NGX_HTTP_REDUCTRAI_PB_CAMEL;
        k->len = p - start;
        memcpy(k->data, start, k->len);
    }

    pr->out->len = p - pr->out->data;

    return 0;
}


/*
 * "_unknown": the base64 of the unknown fields' wire bytes (tag, then the
 * field as protobuf-c kept it, length prefix included), in wire order, so a
 * re-encoder can append them as they came.
 */

static int
ngx_http_reductrai_pb_unknown(ngx_http_reductrai_pb_print_t *pr,
    const ProtobufCMessage *msg, unsigned comma)
{
    int                                  rc;
    size_t                               i, n, raw, t;
    u_char                              *wire, *w;
    unsigned                             style;
    const ProtobufCMessageUnknownField  *u;

    raw = 0;

    for (i = 0; i < msg->n_unknown_fields; i++) {
        raw += 10 + msg->unknown_fields[i].len;
    }

    wire = malloc(raw ? raw : 1);
    if (wire == NULL) {
        return -1;
    }

    w = wire;

    for (i = 0; i < msg->n_unknown_fields; i++) {
        u = &msg->unknown_fields[i];

        t = ngx_http_reductrai_pb_tag(w, u->tag, u->wire_type);
        w += t;

        if (u->len) {
            memcpy(w, u->data, u->len);
            w += u->len;
        }
    }

    raw = w - wire;
    n = (raw + 2) / 3 * 4;

    /* the key is ours, not the schema's: never camel-cased */

    style = pr->style;
    pr->style &= ~NGX_HTTP_REDUCTRAI_PB_CAMEL;

    rc = ngx_http_reductrai_pb_key(pr, NGX_HTTP_REDUCTRAI_PB_UNKNOWN, comma);

    pr->style = style;

    if (rc != 0 || ngx_http_reductrai_pb_reserve(pr, n + 2) != 0) {
        free(wire);
        return -1;
    }

    w = pr->out->data + pr->out->len;
    *w++ = '"';
    w += ngx_http_reductrai_base64_encode(w, wire, raw);
    *w++ = '"';

    pr->out->len = w - pr->out->data;

    free(wire);

    return 0;
}


static size_t
ngx_http_reductrai_pb_tag(u_char *p, uint32_t id, unsigned wire_type)
{
    size_t    n;
    uint64_t  v;

    v = ((uint64_t) id << 3) | wire_type;

    for (n = 0; v >= 0x80; n++) {
        p[n] = (u_char) (v | 0x80);
        v >>= 7;
    }

    p[n++] = (u_char) v;

    return n;
}


/*
 * Room for n more bytes of output.  A zero limit afterwards tells the
 * caller the output cap was hit rather than memory.
 */

static int
ngx_http_reductrai_pb_reserve(ngx_http_reductrai_pb_print_t *pr, size_t n)
{
    if (pr->out->len + n <= pr->out->cap) {
        return 0;
    }

    if (pr->out->len + n > pr->limit) {
        pr->limit = 0;
        return -1;
    }

    return ngx_http_reductrai_buf_reserve(pr->out, n);
}


static int
ngx_http_reductrai_pb_char(ngx_http_reductrai_pb_print_t *pr, u_char c)
{
    if (ngx_http_reductrai_pb_reserve(pr, 1) != 0) {
        return -1;
    }

    pr->out->data[pr->out->len++] = c;

    return 0;
}


/* 64-bit values beyond 2^53 are not exact as JSON numbers: "big" quotes */

#define NGX_HTTP_REDUCTRAI_PB_EXACT  ((uint64_t) 1 << 53)


static u_char *
ngx_http_reductrai_pb_int(u_char *p, int64_t v, unsigned big)
{
    uint64_t  u;
    unsigned  quote;

    u = (v < 0) ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
    quote = big || u > NGX_HTTP_REDUCTRAI_PB_EXACT;

    if (quote) {
        *p++ = '"';
    }

    if (v < 0) {
        *p++ = '-';
    }

    p = ngx_http_reductrai_pb_uint(p, u, 2);

    if (quote) {
        *p++ = '"';
    }

    return p;
}


/* big: 1 quote always, 0 quote when inexact, 2 never (a digits-only call) */

static u_char *
ngx_http_reductrai_pb_uint(u_char *p, uint64_t v, unsigned big)
{
    u_char    tmp[24], *t;
    unsigned  quote;

    quote = (big == 1) || (big == 0 && v > NGX_HTTP_REDUCTRAI_PB_EXACT);

    t = tmp + sizeof(tmp);

    /* two digits per division */

    while (v >= 100) {
        t -= 2;
        memcpy(t, &ngx_http_reductrai_pb_digits2[(v % 100) * 2], 2);
        v /= 100;
    }

    if (v >= 10) {
        t -= 2;
        memcpy(t, &ngx_http_reductrai_pb_digits2[v * 2], 2);

    } else {
        *--t = (u_char) ('0' + v);
    }

    if (quote) {
        *p++ = '"';
    }

    memcpy(p, t, tmp + sizeof(tmp) - t);
    p += tmp + sizeof(tmp) - t;

    if (quote) {
        *p++ = '"';
    }

    return p;
}


/*
 * The shortest decimal that reads back as the same double.  Integral values
 * (the common case of metrics) take a fast path.  NaN and infinities are
 * the strings of proto3 JSON; a NaN other than the usual one (Prometheus'
 * stale marker is 0x7ff0000000000002) keeps its bits as "NaN:0x…" outside
 * the OTLP style, whose readers accept only "NaN".
 */

static u_char *
ngx_http_reductrai_pb_double(u_char *p, double v, unsigned style)
{
    int       n, prec;
    char      buf[40];
    u_char   *q;
    uint64_t  bits;

    if (isnan(v)) {
        memcpy(&bits, &v, sizeof(double));

        if ((style & NGX_HTTP_REDUCTRAI_PB_HEX_IDS)
            || (bits & ~((uint64_t) 1 << 63)) == 0x7ff8000000000000ULL)
        {
            return ngx_http_reductrai_pb_cpystr(p, "\"NaN\"");
        }

        p = ngx_http_reductrai_pb_cpystr(p, "\"NaN:0x");

        for (n = 60; n >= 0; n -= 4) {
            *p++ = ngx_http_reductrai_pb_hex[(bits >> n) & 0xf];
        }

        *p++ = '"';

        return p;
    }

    if (isinf(v)) {
        return (v > 0) ? ngx_http_reductrai_pb_cpystr(p, "\"Infinity\"")
                       : ngx_http_reductrai_pb_cpystr(p, "\"-Infinity\"");
    }

    if (v == 0 && signbit(v)) {
        /* "-0" would read back as the integer 0 */
        return ngx_http_reductrai_pb_cpystr(p, "-0.0");
    }

    if (v >= -9007199254740992.0 && v <= 9007199254740992.0
        && v == (double) (int64_t) v)
    {
        return ngx_http_reductrai_pb_int(p, (int64_t) v, 0);
    }

    q = ngx_http_reductrai_pb_decimal(p, v);
    if (q != NULL) {
        return q;
    }

    q = ngx_http_reductrai_pb_exact(p, v);
    if (q != NULL) {
        return q;
    }

    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof(buf), "%.*g", prec, v);

        if (prec == 17 || strtod(buf, NULL) == v) {
            break;
        }
    }

    memcpy(p, buf, n);

    return p + n;
}


/*
 * What "%.15g" prints for v when that reads back as v, without printf:
 * the fewest decimals k (1 to 19) for which the integer d = v * 10^k has
 * at most 15 digits and d / 10^k, both exact doubles, divides back to v
 * (the division rounds as strtod() does).  A decimal of at most 15
 * significant digits is then the 15-digit rounding of v, as printf()
 * would make it; 1e-4 <= |v| < 1e14 keeps %g in fixed notation.  NULL
 * otherwise (and for integers, which have their own path).
 */

static u_char *
ngx_http_reductrai_pb_decimal(u_char *p, double v)
{
    int            k, n, i;
    u_char         digits[24];
    double         a, s;
    uint64_t       d;
    static const double  pow10[] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19
    };

    a = fabs(v);

    if (!(a >= 1e-4 && a < 1e14)) {
        return NULL;
    }

    for (k = 1; k < 20; k++) {
        s = a * pow10[k];

        if (s >= 1e15) {
            return NULL;
        }

        d = (uint64_t) (s + 0.5);

        if ((double) d / pow10[k] == a) {
            break;
        }
    }

    if (k == 20) {
        return NULL;
    }

    n = 0;

    do {
        digits[n++] = (u_char) ('0' + d % 10);
        d /= 10;
    } while (d);

    if (v < 0) {
        *p++ = '-';
    }

    if (n <= k) {
        *p++ = '0';
        *p++ = '.';

        for (i = k - n; i > 0; i--) {
            *p++ = '0';
        }

    } else {
        while (n > k) {
            *p++ = digits[--n];
        }

        *p++ = '.';
    }

    while (n > 0) {
        *p++ = digits[--n];
    }

    return p;
}


typedef unsigned __int128  ngx_http_reductrai_pb_u128_t;


/*
 * The same loop as printf's "%.15g", "%.16g", then "%.17g", stopping at the
 * first that reads back as v, in exact integer arithmetic for
 * 1e-4 <= |v| < 1e14, where v = m / 2^s with s in [6, 67]: the P digits
 * are q = m * 10^k / 2^s rounded half to even (as glibc rounds), with
 * k = P - 1 - X and X the decimal exponent (10^k <= 10^20 keeps the
 * product within 128 bits).  q / 10^k reads back as v when it lies inside
 * v's rounding interval: half an ulp either side (a quarter below a power
 * of two), its ends included when m is even (strtod() rounds ties to
 * even).  Printed in %g's fixed notation, trailing zeros removed.  NULL
 * outside that range.
 */

static u_char *
ngx_http_reductrai_pb_exact(u_char *p, double v)
{
    int                            x, k, s, prec, n, i, z;
    u_char                         digits[24];
    double                         a;
    uint64_t                       bits, m, q;
    ngx_http_reductrai_pb_u128_t   num, r, half, d, bound;

    static const uint64_t  pow10[] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
        10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
        100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL,
        10000000000000000000ULL
    };

    a = fabs(v);

    if (!(a >= 1e-4 && a < 1e14)) {
        return NULL;
    }

    memcpy(&bits, &a, sizeof(double));

    m = (bits & (((uint64_t) 1 << 52) - 1)) | ((uint64_t) 1 << 52);
    s = 1075 - (int) (bits >> 52);

    /* the decimal exponent, from a guess that the digit count corrects */

    for (x = 0; x < 13 && a >= (double) pow10[x + 1]; x++) { /* void */ }

    if (a < 1) {
        for (x = -1; x > -4 && a * (double) pow10[-x] < 1; x--) {
            /* void */
        }
    }

    for (prec = 15; prec <= 17; prec++) {

        for ( ;; ) {
            k = prec - 1 - x;

            if (k < 0 || k > 20) {
                return NULL;
            }

            num = (ngx_http_reductrai_pb_u128_t) m
                  * ((k == 20) ? (ngx_http_reductrai_pb_u128_t) pow10[19] * 10
                               : pow10[k]);
            q = (uint64_t) (num >> s);

            if (q < pow10[prec - 1]) {
                x--;
                continue;
            }

            if (q >= pow10[prec]) {
                x++;
                continue;
            }

            break;
        }

        r = num - ((ngx_http_reductrai_pb_u128_t) q << s);
        half = (ngx_http_reductrai_pb_u128_t) 1 << (s - 1);

        if (r > half || (r == half && (q & 1))) {
            q++;
        }

        /* q / 10^k against v, times 2^(s + 2) * 10^k */

        if (prec < 17) {
            d = (ngx_http_reductrai_pb_u128_t) q << (s + 2);
            num <<= 2;
            bound = ((k == 20) ? (ngx_http_reductrai_pb_u128_t) pow10[19] * 10
                               : pow10[k]) * 2;

            if (d >= num) {
                d -= num;

            } else {
                d = num - d;

                if (m == ((uint64_t) 1 << 52)) {
                    bound /= 2;
                }
            }

            if (!(d < bound || (d == bound && (m & 1) == 0))) {
                continue;
            }
        }

        break;
    }

    if (q == pow10[prec]) {
        /* rounded up to the next power of ten */
        q /= 10;
        x++;
    }

    n = 0;

    for (i = 0; i < prec; i++) {
        digits[n++] = (u_char) ('0' + q % 10);
        q /= 10;
    }

    /* digits[] holds the prec digits, least significant first */

    /* z: the trailing zeros that %g leaves out */

    z = 0;

    while (z < n && digits[z] == '0') {
        z++;
    }

    if (v < 0) {
        *p++ = '-';
    }

    if (x >= 0) {
        for (i = n - 1; i >= n - 1 - x; i--) {
            *p++ = digits[i];
        }

        if (n - 1 - x > z) {
            *p++ = '.';

            for ( /* void */ ; i >= z; i--) {
                *p++ = digits[i];
            }
        }

    } else {
        *p++ = '0';
        *p++ = '.';

        for (i = -1; i > x; i--) {
            *p++ = '0';
        }

        for (i = n - 1; i >= z; i--) {
            *p++ = digits[i];
        }
    }

    return p;
}
