
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_json.h"

#include <string.h>


#define NGX_HTTP_REDUCTRAI_JSON_ONES  0x0101010101010101ULL
#define NGX_HTTP_REDUCTRAI_JSON_HIGH  0x8080808080808080ULL


static inline uint64_t ngx_http_reductrai_json_special(uint64_t v);
static const u_char *ngx_http_reductrai_json_string(const u_char *p,
    const u_char *end);
static const u_char *ngx_http_reductrai_json_number(const u_char *p,
    const u_char *end);
static size_t ngx_http_reductrai_utf8_len(const u_char *p, const u_char *end);
static u_char ngx_http_reductrai_json_short_escape(u_char c);


/*
 * 1 for the bytes that may stand for themselves inside a JSON string:
 * printable ASCII except '"' and '\\'.  Bytes of 0x80 and above need the
 * UTF-8 check and are not plain.
 */

static const u_char  ngx_http_reductrai_json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
    /* 0x80 - 0xff: 0 */
};


/* the four insignificant whitespace bytes of RFC 8259 */
#define ngx_http_reductrai_json_ws(c)                                        \
    ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

#define ngx_http_reductrai_json_digit(c)  ((u_char) ((c) - '0') < 10)

/*
 * Eight bytes (a word) are all plain: none is 0x80 or above, below 0x20,
 * '"' or '\\'.  A byte b < 0x80 is below n when b - n borrows into the high
 * bit, and equal to c when b ^ c is below 1.
 */
#define NGX_HTTP_REDUCTRAI_JSON_LO  0x0101010101010101ULL
#define NGX_HTTP_REDUCTRAI_JSON_HI  0x8080808080808080ULL

#define ngx_http_reductrai_json_below(w, n)                                  \
    (((w) - NGX_HTTP_REDUCTRAI_JSON_LO * (n)) & ~(w)                          \
     & NGX_HTTP_REDUCTRAI_JSON_HI)

#define ngx_http_reductrai_json_plain8(w)                                    \
    (((w) & NGX_HTTP_REDUCTRAI_JSON_HI) == 0                                 \
     && !ngx_http_reductrai_json_below(w, 0x20)                              \
     && !ngx_http_reductrai_json_below((w) ^ (NGX_HTTP_REDUCTRAI_JSON_LO      \
                                              * '"'), 1)                    \
     && !ngx_http_reductrai_json_below((w) ^ (NGX_HTTP_REDUCTRAI_JSON_LO      \
                                              * '\\'), 1))

#define ngx_http_reductrai_json_xdigit(c)                                    \
    (ngx_http_reductrai_json_digit(c)                                        \
     || (u_char) (((c) | 0x20) - 'a') < 6)


/*
 * One pass: a state machine over tokens with an explicit stack of one bit
 * per level (1 = object), so hostile nesting costs no C stack.  Output is
 * not written token by token: the bytes between two runs of whitespace are
 * moved in one memmove() when a run is met, so a compact body costs a single
 * copy (none in place).  Output never overtakes input, hence in place works;
 * but on failure an in-place buffer holds a partly squeezed copy.
 */

ssize_t
ngx_http_reductrai_json_minify(u_char *out, const u_char *in, size_t len)
{
    u_char         c, *o;
    size_t         n, depth, top;
    uint64_t       stack[(NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH + 63) / 64];
    const u_char  *p, *s, *end;

    enum {
        sw_value = 0,
        sw_array,
        sw_object,
        sw_key,
        sw_colon,
        sw_after,
        sw_done
    } state;

    if (len == 0) {
        return -1;
    }

    p = in;
    s = in;
    end = in + len;
    o = out;
    depth = 0;
    state = sw_value;

    for ( ;; ) {

        if (p < end && ngx_http_reductrai_json_ws(*p)) {
            n = p - s;

            if (n) {
                if ((const u_char *) o != s) {
                    memmove(o, s, n);
                }

                o += n;
            }

            do {
                p++;
            } while (p < end && ngx_http_reductrai_json_ws(*p));

            s = p;
        }

        if (p == end) {
            break;
        }

        c = *p;

        switch (state) {

        case sw_array:
            if (c == ']') {
                p++;
                depth--;
                state = depth ? sw_after : sw_done;
                break;
            }

            /* fall through */

        case sw_value:
            if (c == '"') {
                p = ngx_http_reductrai_json_string(p + 1, end);

            } else if (c == '{' || c == '[') {
                if (depth == NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH) {
                    return -1;
                }

                if (c == '{') {
                    stack[depth >> 6] |= (uint64_t) 1 << (depth & 63);
                    state = sw_object;

                } else {
                    stack[depth >> 6] &= ~((uint64_t) 1 << (depth & 63));
                    state = sw_array;
                }

                p++;
                depth++;
                break;

            } else if (c == '-' || ngx_http_reductrai_json_digit(c)) {
                p = ngx_http_reductrai_json_number(p, end);

            } else if (c == 't') {
                p = (end - p >= 4 && memcmp(p, "true", 4) == 0)
                    ? p + 4 : NULL;

            } else if (c == 'f') {
                p = (end - p >= 5 && memcmp(p, "false", 5) == 0)
                    ? p + 5 : NULL;

            } else if (c == 'n') {
                p = (end - p >= 4 && memcmp(p, "null", 4) == 0)
                    ? p + 4 : NULL;

            } else {
                return -1;
            }

            if (p == NULL) {
                return -1;
            }

            state = depth ? sw_after : sw_done;
            break;

        case sw_object:
            if (c == '}') {
                p++;
                depth--;
                state = depth ? sw_after : sw_done;
                break;
            }

            /* fall through */

        case sw_key:
            if (c != '"') {
                return -1;
            }

            p = ngx_http_reductrai_json_string(p + 1, end);
            if (p == NULL) {
                return -1;
            }

            state = sw_colon;
            break;

        case sw_colon:
            if (c != ':') {
                return -1;
            }

            p++;
            state = sw_value;
            break;

        case sw_after:
            top = (stack[(depth - 1) >> 6] >> ((depth - 1) & 63)) & 1;

            if (c == ',') {
                p++;
                state = top ? sw_key : sw_value;
                break;
            }

            if (c != (top ? '}' : ']')) {
                return -1;
            }

            p++;
            depth--;
            state = depth ? sw_after : sw_done;
            break;

        default: /* sw_done: trailing garbage */
            return -1;
        }
    }

    if (state != sw_done) {
        return -1;
    }

    n = end - s;

    if (n) {
        if ((const u_char *) o != s) {
            memmove(o, s, n);
        }

        o += n;
    }

    return o - out;
}


/*
 * Nonzero when one of the 8 bytes in v needs a closer look in a string:
 * below 0x20, '"', '\\', or 0x80 and above.  Borrows can flag a byte above
 * a true hit, never miss one, which is all the caller needs.
 */

static inline uint64_t
ngx_http_reductrai_json_special(uint64_t v)
{
    uint64_t  q, b;

    q = v ^ (NGX_HTTP_REDUCTRAI_JSON_ONES * '"');
    b = v ^ (NGX_HTTP_REDUCTRAI_JSON_ONES * '\\');

    return (((v - NGX_HTTP_REDUCTRAI_JSON_ONES * 0x20) & ~v)
            | ((q - NGX_HTTP_REDUCTRAI_JSON_ONES) & ~q)
            | ((b - NGX_HTTP_REDUCTRAI_JSON_ONES) & ~b)
            | v)
           & NGX_HTTP_REDUCTRAI_JSON_HIGH;
}


/* p is just past the opening quote; returns just past the closing one */

static const u_char *
ngx_http_reductrai_json_string(const u_char *p, const u_char *end)
{
    u_char    c;
    size_t    n;
    uint64_t  v, m;

    for ( ;; ) {

        while (end - p >= 8) {
            memcpy(&v, p, 8);

            m = ngx_http_reductrai_json_special(v);

            if (m) {
#if (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
                /* borrows run upwards: the lowest flag is a true hit */
                p += __builtin_ctzll(m) >> 3;
#endif
                break;
            }

            p += 8;
        }

        while (p < end && ngx_http_reductrai_json_plain[*p]) {
            p++;
        }

        if (p == end) {
            return NULL;
        }

        c = *p;

        if (c == '"') {
            return p + 1;
        }

        if (c == '\\') {
            if (end - p < 2) {
                return NULL;
            }

            switch (p[1]) {

            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p += 2;
                continue;

            case 'u':
                /*
                 * any four hex digits: the grammar of RFC 8259 allows a
                 * lone surrogate escape, and it is copied, not decoded
                 */

                if (end - p < 6
                    || !ngx_http_reductrai_json_xdigit(p[2])
                    || !ngx_http_reductrai_json_xdigit(p[3])
                    || !ngx_http_reductrai_json_xdigit(p[4])
                    || !ngx_http_reductrai_json_xdigit(p[5]))
                {
                    return NULL;
                }

                p += 6;
                continue;

            default:
                return NULL;
            }
        }

        if (c < 0x20) {
            return NULL;
        }

        n = ngx_http_reductrai_utf8_len(p, end);
        if (n == 0) {
            return NULL;
        }

        p += n;
    }
}


/* the number grammar of RFC 8259; what follows is checked by the caller */

static const u_char *
ngx_http_reductrai_json_number(const u_char *p, const u_char *end)
{
    if (*p == '-') {
        p++;

        if (p == end) {
            return NULL;
        }
    }

    if (*p == '0') {
        p++;

    } else if (ngx_http_reductrai_json_digit(*p)) {
        do {
            p++;
        } while (p < end && ngx_http_reductrai_json_digit(*p));

    } else {
        return NULL;
    }

    if (p < end && *p == '.') {
        p++;

        if (p == end || !ngx_http_reductrai_json_digit(*p)) {
            return NULL;
        }

        do {
            p++;
        } while (p < end && ngx_http_reductrai_json_digit(*p));
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == end || !ngx_http_reductrai_json_digit(*p)) {
            return NULL;
        }

        do {
            p++;
        } while (p < end && ngx_http_reductrai_json_digit(*p));
    }

    return p;
}


/*
 * The length of the well-formed UTF-8 sequence at p (lead byte 0x80 or
 * above), or 0: no overlong forms, no encoded surrogates, nothing above
 * U+10FFFF (the table of Unicode 15, section 3.9).
 */

static size_t
ngx_http_reductrai_utf8_len(const u_char *p, const u_char *end)
{
    u_char  c, lo, hi;
    size_t  n;

    c = p[0];
    n = end - p;

    if (c < 0xc2) {
        return 0;
    }

    if (c < 0xe0) {
        return (n >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
    }

    lo = 0x80;
    hi = 0xbf;

    if (c < 0xf0) {
        if (c == 0xe0) {
            lo = 0xa0;

        } else if (c == 0xed) {
            hi = 0x9f;
        }

        return (n >= 3 && p[1] >= lo && p[1] <= hi
                && (p[2] & 0xc0) == 0x80)
               ? 3 : 0;
    }

    if (c > 0xf4) {
        return 0;
    }

    if (c == 0xf0) {
        lo = 0x90;

    } else if (c == 0xf4) {
        hi = 0x8f;
    }

    return (n >= 4 && p[1] >= lo && p[1] <= hi
            && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80)
           ? 4 : 0;
}


size_t
ngx_http_reductrai_json_escape_len(const u_char *s, size_t len)
{
    u_char         c;
    size_t         size, n;
    const u_char  *end;

    size = 0;
    end = s + len;

    while (s < end) {
        c = *s;

        if (c >= 0x80) {
            n = ngx_http_reductrai_utf8_len(s, end);

            if (n) {
                size += n;
                s += n;
                continue;
            }

            size += sizeof("\\u00XX") - 1;

        } else if (ngx_http_reductrai_json_plain[c]) {
            size++;

        } else {
            size += ngx_http_reductrai_json_short_escape(c)
                    ? 2 : sizeof("\\u00XX") - 1;
        }

        s++;
    }

    return size;
}


u_char *
ngx_http_reductrai_json_escape(u_char *dst, const u_char *s, size_t len)
{
    u_char         c, e;
    size_t         n;
    uint64_t       w;
    const u_char  *end;

    end = s + len;

    while (s < end) {
        c = *s;

        if (c >= 0x80) {
            n = ngx_http_reductrai_utf8_len(s, end);

            if (n) {
                memcpy(dst, s, n);
                dst += n;
                s += n;
                continue;
            }

            /* each byte of an invalid sequence on its own */

            e = 0;

        } else if (ngx_http_reductrai_json_plain[c]) {
            /* the run of plain bytes that most strings are */

            while (end - s >= 8) {
                memcpy(&w, s, 8);

                if (!ngx_http_reductrai_json_plain8(w)) {
                    break;
                }

                memcpy(dst, s, 8);
                dst += 8;
                s += 8;
            }

            while (s < end && ngx_http_reductrai_json_plain[*s]) {
                *dst++ = *s++;
            }

            continue;

        } else {
            e = ngx_http_reductrai_json_short_escape(c);
        }

        *dst++ = '\\';

        if (e) {
            *dst++ = e;

        } else {
            *dst++ = 'u';
            *dst++ = '0';
            *dst++ = '0';
            dst = ngx_http_reductrai_hex(dst, s, 1);
        }

        s++;
    }

    return dst;
}


/* the letter of a two-character escape for c, or 0 for \u00XX */

static u_char
ngx_http_reductrai_json_short_escape(u_char c)
{
    switch (c) {

    case '"':
    case '\\':
        return c;

    case '\n':
        return 'n';

    case '\r':
        return 'r';

    case '\t':
        return 't';

    case '\b':
        return 'b';

    case '\f':
        return 'f';

    default:
        return 0;
    }
}
