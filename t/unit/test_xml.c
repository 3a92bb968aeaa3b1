
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * XML of storage answers: character references are decoded only when
 * well formed and only within the slice given (issue 13: found by
 * t/fuzz/fuzz_storage_xml's review, strtoul() read past the slice).
 */


#include "ngx_http_reductrai_http.h"
#include "unit.h"


int
main(void)
{
    char    buf[64], *p;
    size_t  i, n;

    static const char  *cases[][2] = {
        { "a&#65;b", "aAb" },
        { "&#x41;&#X41;", "A&#X41;" },
        { "&#x4a;", "J" },
        { "&# 65;", "&# 65;" },
        { "&#+65;", "&#+65;" },
        { "&#-1;", "&#-1;" },
        { "&#;", "&#;" },
        { "&#0;", "&#0;" },
        { "&#128;", "&#128;" },
        { "&#0000000065;", "A" },
        { "&#99999999999999999999999;", "&#99999999999999999999999;" },
        { "&amp;&lt;&gt;&quot;&apos;", "&<>\"'" },
        { "&amp", "&amp" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = ngx_http_reductrai_http_xml_unescape(cases[i][0],
                                                 cases[i][0]
                                                 + strlen(cases[i][0]),
                                                 buf, sizeof(buf));
        is_mem(buf, n, cases[i][1], strlen(cases[i][1]),
               "xml_unescape(\"%s\")", cases[i][0]);
    }

    /* a slice: the digits after its end are not its own */

    p = "&#65;";
    n = ngx_http_reductrai_http_xml_unescape(p, p + 3, buf, sizeof(buf));
    is_mem(buf, n, "&#6", 3, "xml_unescape stops at the slice's end");

    n = ngx_http_reductrai_http_xml_reason("<Error><Code>NoSuchKey</Code>"
                                           "<Message>a &#60;b&#62;\nRequest"
                                           "Id:x</Message></Error>", 73,
                                           buf, sizeof(buf));
    is_mem(buf, n, "NoSuchKey: a <b>", 16, "xml_reason");

    return done_testing();
}
