
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The JSON minifier and the string escaper.
 */


#include "ngx_http_reductrai_json.h"

#include "unit.h"


static ssize_t minify(const char *in, size_t len, char *out);
static void y(const char *in, const char *want);
static void yl(const char *in, size_t len, const char *want);
static void n(const char *in, const char *name);
static void nl(const char *in, size_t len, const char *name);
static int ref_utf8(const u_char *p, size_t len);
static int ref_string(const u_char *p, size_t len);
static void test_grammar(void);
static void test_utf8(void);
static void test_runs(void);
static void test_depth(void);
static void test_in_place(void);
static void test_escape(void);


static ssize_t
minify(const char *in, size_t len, char *out)
{
    ssize_t  rc;
    u_char  *copy;

    /* a copy of exactly len bytes, so ASan sees any read past the end */
    copy = malloc(len ? len : 1);
    memcpy(copy, in, len);

    rc = ngx_http_reductrai_json_minify((u_char *) out, copy, len);

    free(copy);

    return rc;
}


static void
y(const char *in, const char *want)
{
    yl(in, strlen(in), want);
}


static void
yl(const char *in, size_t len, const char *want)
{
    char     out[8192];
    ssize_t  rc;

    rc = minify(in, len, out);

    if (rc < 0) {
        ok(0, "y: %s", want);
        return;
    }

    is_mem(out, (size_t) rc, want, strlen(want), "y: %s", want);
}


static void
n(const char *in, const char *name)
{
    nl(in, strlen(in), name);
}


static void
nl(const char *in, size_t len, const char *name)
{
    char  out[8192];

    is_int(minify(in, len, out), -1, "n: %s", name);
}


static void
test_grammar(void)
{
    /* scalars at the top level (RFC 8259 allows any value) */

    y("0", "0");
    y("-0", "-0");
    y("1e5", "1e5");
    y("1E+2", "1E+2");
    y("1e-2", "1e-2");
    y("0.1", "0.1");
    y("-0.0e-0", "-0.0e-0");
    y("123456789012345678901234567890", "123456789012345678901234567890");
    y("1.0000000000000000000001", "1.0000000000000000000001");
    y("1E400", "1E400");
    y("-1.5E-0300", "-1.5E-0300");
    y(" 1 ", "1");
    y("\t\r\n 42\n", "42");
    y("true", "true");
    y("false", "false");
    y("null", "null");
    y("\"\"", "\"\"");
    y("\"a\"", "\"a\"");

    /* structure, whitespace squeezed out */

    y("[]", "[]");
    y("{}", "{}");
    y("[ ]", "[]");
    y("{ }", "{}");
    y("[[[]]]", "[[[]]]");
    y(" [ 1 , 2 ] ", "[1,2]");
    y("{\"a\" : [ true , false , null ] }", "{\"a\":[true,false,null]}");
    y("{\n  \"a\": {\n    \"b\": [\n      1,\n      {}\n    ]\n  }\n}\n",
      "{\"a\":{\"b\":[1,{}]}}");
    y("[1,[2,[3,{\"x\":[4]}]],5]", "[1,[2,[3,{\"x\":[4]}]],5]");
    y("[\"a\",\"b\"]", "[\"a\",\"b\"]");
    y("[0,-0,0.5,-1e1]", "[0,-0,0.5,-1e1]");
    y("{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}");
    y("[1e1 ,2]", "[1e1,2]");
    y("[true]", "[true]");
    y("{\"\":\"\"}", "{\"\":\"\"}");

    /* whitespace inside strings is data */

    y("\" a  b \"", "\" a  b \"");
    y("{ \"k y\" : \" v \\n \" }", "{\"k y\":\" v \\n \"}");

    /* escapes, copied as they are */

    y("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
    y("\"\\u00e9\\u00E9\\uFFFF\"", "\"\\u00e9\\u00E9\\uFFFF\"");
    y("\"\\ud800\"", "\"\\ud800\"");
    y("\"\\uDFFF\\ud800x\"", "\"\\uDFFF\\ud800x\"");
    y("\"\\uDBFF\\uDFFF\"", "\"\\uDBFF\\uDFFF\"");
    y("\"\\u0000\"", "\"\\u0000\"");
    y("\"\x7f\"", "\"\x7f\"");

    /* UTF-8 in strings */

    y("\"\xc3\xa9\"", "\"\xc3\xa9\"");
    y("\"\xe2\x82\xac\"", "\"\xe2\x82\xac\"");
    y("\"\xf0\x9d\x84\x9e\"", "\"\xf0\x9d\x84\x9e\"");
    y("\"\xf4\x8f\xbf\xbf\"", "\"\xf4\x8f\xbf\xbf\"");
    y("\"\xef\xbf\xbf\"", "\"\xef\xbf\xbf\"");
    y("\"\xee\x80\x80\"", "\"\xee\x80\x80\"");
    y("\"\xed\x9f\xbf\"", "\"\xed\x9f\xbf\"");
    y("\"\xe0\xa0\x80\"", "\"\xe0\xa0\x80\"");
    y("\"\xf0\x90\x80\x80\"", "\"\xf0\x90\x80\x80\"");
    y("\"\xc2\x80\"", "\"\xc2\x80\"");
    y("{\"\xe6\x97\xa5\xe6\x9c\xac\": \"\xd0\xbf\xd1\x80\xd0\xb8\"}",
      "{\"\xe6\x97\xa5\xe6\x9c\xac\":\"\xd0\xbf\xd1\x80\xd0\xb8\"}");

    /* not JSON */

    n("", "empty input");
    n(" \n\t\r", "whitespace only");
    n("\xef\xbb\xbf[]", "leading BOM");
    n("01", "leading zero");
    n("-01", "negative leading zero");
    n("[00]", "double zero");
    n("1.", "1.");
    n("1.e1", "1.e1");
    n(".1", ".1");
    n("+1", "+1");
    n("-", "lone minus");
    n("-a", "-a");
    n("[-]", "[-]");
    n("1e", "1e");
    n("1e+", "1e+");
    n("1E-", "1E-");
    n("[1e]", "[1e]");
    n("0x10", "hex number");
    n("Infinity", "Infinity");
    n("-Infinity", "-Infinity");
    n("NaN", "NaN");
    n("[1,]", "trailing comma in array");
    n("[,1]", "leading comma in array");
    n("[1,,2]", "double comma");
    n("{\"a\":1,}", "trailing comma in object");
    n("{,}", "{,}");
    n("{\"a\"}", "key without value");
    n("{\"a\":}", "colon without value");
    n("{\"a\" 1}", "missing colon");
    n("{\"a\"::1}", "double colon");
    n("{1:1}", "number key");
    n("{'a':1}", "single quotes");
    n("{a:1}", "bare key");
    n("[1 2]", "missing comma");
    n("[\"a\" \"b\"]", "missing comma between strings");
    n("[", "unclosed array");
    n("]", "lone close");
    n("{", "unclosed object");
    n("{\"a\":1", "unclosed object after value");
    n("[1}", "mismatched close");
    n("{\"a\":1]", "mismatched close in object");
    n("\"abc", "unterminated string");
    n("\"abc\\\"", "unterminated after escape");
    n("\"\\", "lone backslash at end");
    n("\"\\x\"", "bad escape \\x");
    n("\"\\'\"", "bad escape \\'");
    n("\"\\U0041\"", "uppercase U escape");
    n("\"\\u12\"", "short \\u");
    n("\"\\u12G4\"", "non-hex \\u");
    n("\"\\u", "\\u at end");
    n("\"\\u123", "\\u123 at end");
    n("\"\x01\"", "raw control 0x01");
    n("\"\x1f\"", "raw control 0x1f");
    n("\"a\tb\"", "raw tab in string");
    n("\"a\nb\"", "raw newline in string");
    nl("\"a\0b\"", 5, "raw NUL in string");
    nl("[1]\0", 4, "NUL after value");
    n("tru", "tru");
    n("truex", "truex");
    n("True", "True");
    n("nul", "nul");
    n("nulll", "nulll");
    n("fals", "fals");
    n("[true false]", "literals without comma");
    n("1 2", "two values");
    n("{} x", "trailing garbage");
    n("[]]", "extra close");
    n("[]{}", "two containers");
    n("\"a\"\"b\"", "two strings");
    n("[1]//", "comment");
    n("/**/[1]", "leading comment");
    n("[\f]", "form feed is not whitespace");
    n("[\v]", "vertical tab is not whitespace");
    n("[\xc2\xa0]", "no-break space is not whitespace");
    n("[\xc3\xa9]", "UTF-8 outside a string");
    n("'a'", "single-quoted string");
}


/*
 * An independent UTF-8 check by decoding: the code point must be in range,
 * not a surrogate, and need exactly as many bytes as it has.  Returns the
 * sequence length, or 0.
 */

static int
ref_utf8(const u_char *p, size_t len)
{
    int       i, n;
    uint32_t  cp, min;

    if (p[0] < 0x80) {
        return 1;

    } else if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1f;
        min = 0x80;

    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0f;
        min = 0x800;

    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if ((size_t) n > len) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        cp = (cp << 6) | (p[i] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }

    return n;
}


/* what a JSON string may hold, by the reference decoder above */

static int
ref_string(const u_char *p, size_t len)
{
    int  n;

    while (len) {
        if (*p < 0x20 || *p == '"' || *p == '\\') {
            return 0;
        }

        n = ref_utf8(p, len);
        if (n == 0) {
            return 0;
        }

        p += n;
        len -= n;
    }

    return 1;
}


/*
 * Every 2-byte string content with a high first byte, and 4-byte contents
 * with every high lead byte and the edge values of the ranges after it.
 */

static void
test_utf8(void)
{
    int            a, b, c, d, i, j, k, bad;
    char           in[8], out[8];
    static u_char  edges[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                               0xa0, 0xbf, 0xc0, 0xff };
    static u_char  tails[] = { 0x7f, 0x80, 0xbf, 0xc0 };

    bad = 0;

    for (a = 0x80; a <= 0xff; a++) {
        for (b = 0; b <= 0xff; b++) {
            in[0] = '"';
            in[1] = (char) a;
            in[2] = (char) b;
            in[3] = '"';

            if ((minify(in, 4, out) == 4) != ref_string((u_char *) in + 1, 2))
            {
                bad++;
                printf("# %02x %02x misjudged\n", a, b);
            }
        }
    }

    is_int(bad, 0, "every 2-byte content judged as the reference does");

    bad = 0;

    for (a = 0xc0; a <= 0xff; a++) {
        for (i = 0; i < (int) sizeof(edges); i++) {
            for (j = 0; j < (int) sizeof(tails); j++) {
                for (k = 0; k < (int) sizeof(tails); k++) {
                    b = edges[i];
                    c = tails[j];
                    d = tails[k];

                    in[0] = '"';
                    in[1] = (char) a;
                    in[2] = (char) b;
                    in[3] = (char) c;
                    in[4] = (char) d;
                    in[5] = '"';

                    if ((minify(in, 6, out) == 6)
                        != ref_string((u_char *) in + 1, 4))
                    {
                        bad++;
                        printf("# %02x %02x %02x %02x misjudged\n",
                               a, b, c, d);
                    }
                }
            }
        }
    }

    is_int(bad, 0, "3- and 4-byte sequences around the edges judged right");

    n("\"\x80\"", "lone continuation byte");
    n("\"\xc0\x80\"", "overlong NUL");
    n("\"\xc1\xbf\"", "overlong 2-byte");
    n("\"\xe0\x80\xaf\"", "overlong 3-byte");
    n("\"\xe0\x9f\xbf\"", "overlong 3-byte, top");
    n("\"\xf0\x8f\xbf\xbf\"", "overlong 4-byte");
    n("\"\xed\xa0\x80\"", "UTF-8 encoded surrogate U+D800");
    n("\"\xed\xbf\xbf\"", "UTF-8 encoded surrogate U+DFFF");
    n("\"\xed\xa0\xbd\xed\xb8\x80\"", "CESU-8 pair");
    n("\"\xf4\x90\x80\x80\"", "above U+10FFFF");
    n("\"\xf5\x80\x80\x80\"", "lead 0xf5");
    n("\"\xf8\x88\x80\x80\x80\"", "5-byte form");
    n("\"\xfe\"", "0xfe");
    n("\"\xff\"", "0xff");
    n("\"\xe2\x82\"", "truncated 3-byte before quote");
    n("\"\xe2\x82", "truncated 3-byte at end");
    n("\"\xc3", "truncated 2-byte at end");
    n("\"\xf0\x9d\x84\"", "truncated 4-byte before quote");
    n("{\"\xc3\":1}", "bad UTF-8 in a key");
}


/*
 * The string scanner looks at 8 bytes at a time; put the interesting byte
 * at every offset of a long string so each lane and the tail are covered.
 */

static void
test_runs(void)
{
    int     c, i, bad_ctl, bad_plain, bad_utf8, bad_esc, bad_quote;
    char    in[64], out[64];
    size_t  len;

    bad_ctl = 0;
    bad_plain = 0;
    bad_utf8 = 0;
    bad_esc = 0;
    bad_quote = 0;
    len = 40;

    for (i = 1; i < 39; i++) {
        for (c = 0; c < 0x100; c++) {
            memset(in, 'a', len);
            in[0] = '"';
            in[len - 1] = '"';
            in[i] = (char) c;

            if (c < 0x20 || c >= 0x80 || c == '\\') {
                if (minify(in, len, out) != -1) {
                    bad_ctl++;
                }

            } else if (c == '"') {
                if (minify(in, len, out) != -1) {
                    bad_quote++;
                }

            } else {
                if (minify(in, len, out) != (ssize_t) len
                    || memcmp(in, out, len) != 0)
                {
                    bad_plain++;
                }
            }
        }

        memset(in, 'a', len);
        in[0] = '"';
        in[len - 1] = '"';

        if (i + 3 < 39) {
            memcpy(in + i, "\xf0\x9f\x98\x80", 4);

            if (minify(in, len, out) != (ssize_t) len
                || memcmp(in, out, len) != 0)
            {
                bad_utf8++;
            }

            memset(in + i, 'a', 4);
            memcpy(in + i, "\\u20AC", 6 > 39 - i ? 39 - i : 6);

            if (minify(in, len, out) != (i + 6 <= 39 ? (ssize_t) len : -1)) {
                bad_esc++;
            }
        }
    }

    is_int(bad_ctl, 0, "control, high and backslash bytes rejected at "
           "every offset");
    is_int(bad_quote, 0, "a stray quote rejected at every offset");
    is_int(bad_plain, 0, "printable ASCII accepted at every offset");
    is_int(bad_utf8, 0, "4-byte UTF-8 accepted at every offset");
    is_int(bad_esc, 0, "\\u escapes accepted at every offset");

    /* a long pretty-printed document with long strings */

    {
        char     *big, *want, *p, *w;
        ssize_t   rc;

        big = malloc(1 << 20);
        want = malloc(1 << 20);
        p = big;
        w = want;

        p += sprintf(p, "[\n");
        w += sprintf(w, "[");

        for (i = 0; i < 2000; i++) {
            p += sprintf(p, "  {\"name\" : \"metric.%d.%s\",\t\"v\" : %d.5e-%d,"
                         " \"s\" : \"caf\xc3\xa9 \\\"q\\\" \\u00e9 %d\" }%s\n",
                         i, "abcdefghijklmnopqrstuvwxyz0123456789", i, i % 9,
                         i, i < 1999 ? "," : "");
            w += sprintf(w, "{\"name\":\"metric.%d.%s\",\"v\":%d.5e-%d,"
                         "\"s\":\"caf\xc3\xa9 \\\"q\\\" \\u00e9 %d\"}%s",
                         i, "abcdefghijklmnopqrstuvwxyz0123456789", i, i % 9,
                         i, i < 1999 ? "," : "");
        }

        p += sprintf(p, "]\n");
        w += sprintf(w, "]");

        rc = ngx_http_reductrai_json_minify((u_char *) big, (u_char *) big,
                                            p - big);
        is_mem(big, rc < 0 ? 0 : (size_t) rc, want, (size_t) (w - want),
               "a 2000-element pretty document minified in place");

        free(big);
        free(want);
    }
}


static void
test_depth(void)
{
    int      i;
    char    *in, *out;
    size_t   len;
    ssize_t  rc;

    in = malloc(8 * NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH + 16);
    out = malloc(8 * NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH + 16);

    /* arrays: exactly at the limit, then one more */

    len = 0;

    for (i = 0; i < NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH; i++) {
        in[len++] = '[';
    }

    for (i = 0; i < NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH; i++) {
        in[len++] = ']';
    }

    rc = minify(in, len, out);
    is_int(rc, len, "nesting of %d arrays accepted",
           NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH);

    len = 0;

    for (i = 0; i <= NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH; i++) {
        in[len++] = '[';
    }

    for (i = 0; i <= NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH; i++) {
        in[len++] = ']';
    }

    is_int(minify(in, len, out), -1, "nesting of %d arrays rejected",
           NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH + 1);

    /* objects and arrays mixed at the limit, with whitespace */

    len = 0;

    for (i = 0; i < NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH; i++) {
        if (i % 2) {
            memcpy(in + len, "[ ", 2);
            len += 2;

        } else {
            memcpy(in + len, "{\"k\": ", 6);
            len += 6;
        }
    }

    in[len++] = '1';

    for (i = NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH - 1; i >= 0; i--) {
        in[len++] = (i % 2) ? ']' : '}';
    }

    rc = minify(in, len, out);
    is_int(rc, len - NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH,
           "mixed nesting at the limit accepted, one space per level gone");

    /* the same document written compactly */

    len = 0;

    for (i = 0; i < NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH; i++) {
        if (i % 2) {
            in[len++] = '[';

        } else {
            memcpy(in + len, "{\"k\":", 5);
            len += 5;
        }
    }

    in[len++] = '1';

    for (i = NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH - 1; i >= 0; i--) {
        in[len++] = (i % 2) ? ']' : '}';
    }

    is_mem(out, rc < 0 ? 0 : (size_t) rc, in, len, "mixed nesting minified");

    /* deep and unclosed: rejected, and no stack overflow */

    memset(in, '[', 8 * NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH);
    is_int(minify(in, 8 * NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH, out), -1,
           "8192 unclosed arrays rejected");

    len = 0;

    for (i = 0; i < NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH; i++) {
        in[len++] = '[';
    }

    is_int(minify(in, len, out), -1, "unclosed nesting at the limit rejected");

    /* depth goes back down: siblings at the limit are fine */

    len = 0;
    in[len++] = '[';

    for (i = 0; i < NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH - 1; i++) {
        in[len++] = '[';
    }

    for (i = 0; i < NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH - 1; i++) {
        in[len++] = ']';
    }

    in[len++] = ',';

    for (i = 0; i < NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH - 1; i++) {
        in[len++] = '[';
    }

    for (i = 0; i < NGX_HTTP_REDUCTRAI_JSON_MAX_DEPTH - 1; i++) {
        in[len++] = ']';
    }

    in[len++] = ']';

    is_int(minify(in, len, out), len, "two siblings at the limit accepted");

    free(in);
    free(out);
}


static void
test_in_place(void)
{
    char     buf[256];
    ssize_t  rc;

    strcpy(buf, "  { \"a b\" : [ 1 ,\n 2.5e3 , \"x  y\" ] ,\t\"c\" : null }  ");
    rc = ngx_http_reductrai_json_minify((u_char *) buf, (u_char *) buf,
                                        strlen(buf));
    is_mem(buf, rc < 0 ? 0 : (size_t) rc,
           "{\"a b\":[1,2.5e3,\"x  y\"],\"c\":null}", 33,
           "minified in place");

    strcpy(buf, "{\"a\":[1,2,3]}");
    rc = ngx_http_reductrai_json_minify((u_char *) buf, (u_char *) buf,
                                        strlen(buf));
    is_mem(buf, rc < 0 ? 0 : (size_t) rc, "{\"a\":[1,2,3]}", 13,
           "compact input unchanged in place");

    strcpy(buf, "\n\n\n1");
    rc = ngx_http_reductrai_json_minify((u_char *) buf, (u_char *) buf,
                                        strlen(buf));
    is_mem(buf, rc < 0 ? 0 : (size_t) rc, "1", 1,
           "leading whitespace removed in place");

    /* the output of minify is a fixed point */

    strcpy(buf, "{\"a b\":[1,2.5e3,\"x  y\"],\"c\":null}");
    rc = ngx_http_reductrai_json_minify((u_char *) buf, (u_char *) buf,
                                        strlen(buf));
    is_int(rc, strlen("{\"a b\":[1,2.5e3,\"x  y\"],\"c\":null}"),
           "minified output minifies to itself");
}


static void
test_escape(void)
{
    int           i, j, bad_len, bad_valid;
    u_char        in[64], out[64 * 6 + 2];
    size_t        len, elen;
    ssize_t       rc;
    unsigned int  seed;

    static const struct {
        const char  *in;
        size_t       len;
        const char  *want;
    } cases[] = {
        { "", 0, "" },
        { "abc", 3, "abc" },
        { "a\"b\\c", 5, "a\\\"b\\\\c" },
        { "\n\r\t\b\f", 5, "\\n\\r\\t\\b\\f" },
        { "\x01\x1f", 2, "\\u0001\\u001f" },
        { "\0", 1, "\\u0000" },
        { "/\x7f", 2, "/\x7f" },
        { "caf\xc3\xa9", 5, "caf\xc3\xa9" },
        { "\xf0\x9d\x84\x9e", 4, "\xf0\x9d\x84\x9e" },
        { "\xff", 1, "\\u00ff" },
        { "a\xc3", 2, "a\\u00c3" },
        { "\xc3(", 2, "\\u00c3(" },
        { "\xed\xa0\x80", 3, "\\u00ed\\u00a0\\u0080" },
        { "\xc0\x80", 2, "\\u00c0\\u0080" },
        { "\xf4\x90\x80\x80", 4, "\\u00f4\\u0090\\u0080\\u0080" },
        { "\xe2\x82\xe2\x82\xac", 5, "\\u00e2\\u0082\xe2\x82\xac" },
        { "curl/8.0 \"x\"", 12, "curl/8.0 \\\"x\\\"" },
    };

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        elen = ngx_http_reductrai_json_escape_len((u_char *) cases[i].in,
                                                  cases[i].len);
        len = ngx_http_reductrai_json_escape(out, (u_char *) cases[i].in,
                                             cases[i].len) - out;

        is_int(elen, strlen(cases[i].want), "escape_len of case %d", i);
        is_mem(out, len, cases[i].want, strlen(cases[i].want),
               "escape of case %d", i);
    }

    /* random bytes: escape_len is exact and "<escaped>" is valid JSON */

    bad_len = 0;
    bad_valid = 0;
    seed = 12345;

    for (i = 0; i < 20000; i++) {
        len = rand_r(&seed) % sizeof(in);

        for (j = 0; j < (int) len; j++) {
            /* skew towards the interesting bytes */
            switch (rand_r(&seed) % 4) {
            case 0:
                in[j] = (u_char) (rand_r(&seed) % 0x20);
                break;
            case 1:
                in[j] = (u_char) (0x80 + rand_r(&seed) % 0x80);
                break;
            default:
                in[j] = (u_char) (rand_r(&seed) % 0x100);
            }
        }

        elen = ngx_http_reductrai_json_escape_len(in, len);

        out[0] = '"';
        len = ngx_http_reductrai_json_escape(out + 1, in, len) - (out + 1);
        out[len + 1] = '"';

        if (len != elen) {
            bad_len++;
        }

        rc = minify((char *) out, len + 2, (char *) out);
        if (rc != (ssize_t) len + 2) {
            bad_valid++;
        }
    }

    is_int(bad_len, 0, "escape_len exact on 20000 random strings");
    is_int(bad_valid, 0, "escaped random strings are valid JSON strings");
}


int
main(void)
{
    test_grammar();
    test_utf8();
    test_runs();
    test_depth();
    test_in_place();
    test_escape();

    return done_testing();
}
