
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Throughput of the encode path on a ~64 KiB Datadog /api/v2/series JSON
 * payload.  Not run by the tests; build it by hand:
 *
 *   D=ngx_http_reductrai_module/core
 *   cc -std=gnu11 -O2 -I$D -o objs/bench_encode t/unit/bench_encode.c \
 *       $D/ngx_http_reductrai_{core,json,decode,record}.c \
 *       -lzstd -lz -lcrypto
 *   objs/bench_encode
 */


#include "ngx_http_reductrai_json.h"
#include "ngx_http_reductrai_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>
#include <zstd.h>


#define PAYLOAD_MAX  (80 * 1024)
#define SECONDS      1.5

/*
 * distinct payloads cycled through, 4 MiB in all: more than the window of
 * zstd -3, so the compressor cannot just match the previous copy
 */
#define VARIANTS     64


typedef struct {
    ZSTD_CCtx       *cctx;
    u_char          *out;
    size_t           out_size;
    size_t           total;
} zsink_t;


static size_t payload(u_char *p, size_t want, int pretty, uint32_t seed);
static uint32_t lcg(uint32_t *r);
static double now(void);
static int null_sink(void *data, const u_char *p, size_t len);
static int zstd_sink(void *data, const u_char *p, size_t len);
static void report(const char *name, size_t bytes, double secs);
static void bench(const char *name, int pretty);


static const char  *services[] = { "web-api", "web-front", "checkout",
                                   "payments", "search", "auth" };
static const char  *metrics[] = { "system.cpu.user", "system.cpu.system",
                                  "system.mem.used", "system.load.1",
                                  "trace.http.request.hits",
                                  "trace.http.request.duration",
                                  "nginx.net.request_per_s",
                                  "kubernetes.cpu.usage.total" };


/* a series payload as the v2 API documents it, near want bytes */

static size_t
payload(u_char *p, size_t want, int pretty, uint32_t seed)
{
    int          i, j;
    u_char      *start;
    uint32_t     r;
    const char  *nl, *in1, *in2;

    nl = pretty ? "\n" : "";
    in1 = pretty ? "  " : "";
    in2 = pretty ? "    " : "";

    r = seed;
    start = p;
    p += sprintf((char *) p, "{%s%s\"series\":%s[%s", nl, in1,
                 pretty ? " " : "", nl);

    for (i = 0; (size_t) (p - start) < want - 1200; i++) {
        p += sprintf((char *) p,
            "%s%s{%s%s%s\"metric\":%s\"%s\",%s%s%s\"type\":%s%d,%s"
            "%s%s\"points\":%s[",
            i ? "," : "", in2, nl, in2, in1, pretty ? " " : "",
            metrics[i % 8], nl, in2, in1, pretty ? " " : "", i % 4, nl,
            in2, in1, pretty ? " " : "");

        for (j = 0; j < 4; j++) {
            p += sprintf((char *) p,
                         "%s{\"timestamp\":%s%d,%s\"value\":%s%d.%03d}",
                         j ? "," : "", pretty ? " " : "",
                         1764098100 + (int) (seed * 60) + j * 15,
                         pretty ? " " : "", pretty ? " " : "",
                         (int) (lcg(&r) % 1000), (int) (lcg(&r) % 1000));
        }

        p += sprintf((char *) p,
            "],%s%s%s\"resources\":%s[{\"name\":%s\"ip-10-0-%d-%d.ec2."
            "internal\",%s\"type\":%s\"host\"}],%s%s%s\"tags\":%s["
            "\"env:prod\",%s\"service:%s\",%s\"version:1.%d.%d\",%s"
            "\"region:us-east-1\",%s\"availability-zone:us-east-1%c\",%s"
            "\"kube_namespace:default\",%s\"pod_name:%s-%x\"],%s"
            "%s%s\"unit\":%s\"%s\"%s%s}",
            nl, in2, in1, pretty ? " " : "", pretty ? " " : "",
            (int) (lcg(&r) % 16), (int) (lcg(&r) % 251),
            pretty ? " " : "", pretty ? " " : "",
            nl, in2, in1, pretty ? " " : "", pretty ? " " : "",
            services[i % 6], pretty ? " " : "", i % 9, i % 31,
            pretty ? " " : "", pretty ? " " : "", 'a' + i % 3,
            pretty ? " " : "", pretty ? " " : "", services[i % 6],
            lcg(&r), nl, in2, in1, pretty ? " " : "",
            (i % 2) ? "percent" : "request", nl, in2);
    }

    p += sprintf((char *) p, "%s%s]%s}%s", nl, in1, nl, nl);

    return p - start;
}


static uint32_t
lcg(uint32_t *r)
{
    *r = *r * 1664525u + 1013904223u;

    return *r >> 8;
}


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static int
null_sink(void *data, const u_char *p, size_t len)
{
    *(size_t *) data += len;

    return 0;
}


/* what the segment writer does with a record: one zstd stream */

static int
zstd_sink(void *data, const u_char *p, size_t len)
{
    size_t          rc;
    zsink_t        *z;
    ZSTD_inBuffer   in = { p, len, 0 };
    ZSTD_outBuffer  out;

    z = data;

    while (in.pos < in.size) {
        out.dst = z->out;
        out.size = z->out_size;
        out.pos = 0;

        rc = ZSTD_compressStream2(z->cctx, &out, &in, ZSTD_e_continue);
        if (ZSTD_isError(rc)) {
            return -1;
        }

        z->total += out.pos;
    }

    return 0;
}


static void
report(const char *name, size_t bytes, double secs)
{
    printf("  %-44s %8.0f MB/s\n", name, bytes / secs / 1e6);
}


static void
bench(const char *name, int pretty)
{
    u_char                              *in[VARIANTS], *gz[VARIANTS], *out;
    size_t                               len[VARIANTS], gzlen[VARIANTS];
    size_t                               iters, i, size, total, bytes, raw;
    double                               t0, t;
    ssize_t                              n;
    uint32_t                             v;
    z_stream                             zs;
    zsink_t                              z;
    ngx_http_reductrai_record_encoder_t  enc;

    out = malloc(PAYLOAD_MAX);
    memset(&enc, 0, sizeof(enc));
    raw = 0;
    total = 0;

    for (v = 0; v < VARIANTS; v++) {
        in[v] = malloc(PAYLOAD_MAX);
        gz[v] = malloc(PAYLOAD_MAX);
        len[v] = payload(in[v], 64 * 1024, pretty, v + 1);

        memset(&zs, 0, sizeof(z_stream));
        deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY);
        zs.next_in = in[v];
        zs.avail_in = len[v];
        zs.next_out = gz[v];
        zs.avail_out = PAYLOAD_MAX;
        deflate(&zs, Z_FINISH);
        gzlen[v] = zs.total_out;
        deflateEnd(&zs);

        raw += len[v];
        total += gzlen[v];
    }

    n = ngx_http_reductrai_json_minify(out, in[0], len[0]);
    printf("%s: %d payloads of ~%zu bytes (first minifies to %zd), "
           "gzip -6 ratio %.1f\n", name, VARIANTS, len[0], n,
           (double) raw / total);

    if (n < 0) {
        exit(1);
    }

    /* calibrate: run for about SECONDS */

    iters = VARIANTS;

    for ( ;; ) {
        t0 = now();

        for (i = 0; i < iters; i++) {
            n = ngx_http_reductrai_json_minify(out, in[i % VARIANTS],
                                               len[i % VARIANTS]);
        }

        t = now() - t0;

        if (t > 0.2) {
            iters = ((size_t) (iters * SECONDS / t) / VARIANTS + 1)
                    * VARIANTS;
            break;
        }

        iters *= 4;
    }

    bytes = raw * (iters / VARIANTS);

    t0 = now();

    for (i = 0; i < iters; i++) {
        n = ngx_http_reductrai_json_minify(out, in[i % VARIANTS],
                                           len[i % VARIANTS]);
    }

    report("json_minify (out != in)", bytes, now() - t0);

    t0 = now();

    for (i = 0; i < iters; i++) {
        memcpy(out, in[i % VARIANTS], len[i % VARIANTS]);
        n = ngx_http_reductrai_json_minify(out, out, len[i % VARIANTS]);
    }

    report("json_minify in place (incl. memcpy)", bytes, now() - t0);

    total = 0;
    t0 = now();

    for (i = 0; i < iters; i++) {
        ngx_http_reductrai_record_body(&enc, NGX_HTTP_REDUCTRAI_ENC_IDENTITY,
                                       in[i % VARIANTS], len[i % VARIANTS],
                                       64 << 20, null_sink, &total, &size);
    }

    report("record_body identity, null sink", bytes, now() - t0);

    t0 = now();

    for (i = 0; i < iters; i++) {
        ngx_http_reductrai_record_body(&enc, NGX_HTTP_REDUCTRAI_ENC_GZIP,
                                       gz[i % VARIANTS], gzlen[i % VARIANTS],
                                       64 << 20, null_sink, &total, &size);
    }

    report("record_body gzip (inflate + minify)", bytes, now() - t0);

    /* the whole path: record_body into a zstd level 3 stream */

    z.cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(z.cctx, ZSTD_c_compressionLevel, 3);
    ZSTD_CCtx_setParameter(z.cctx, ZSTD_c_checksumFlag, 1);
    z.out_size = ZSTD_CStreamOutSize();
    z.out = malloc(z.out_size);
    z.total = 0;

    t0 = now();

    for (i = 0; i < iters; i++) {
        ngx_http_reductrai_record_body(&enc, NGX_HTTP_REDUCTRAI_ENC_IDENTITY,
                                       in[i % VARIANTS], len[i % VARIANTS],
                                       64 << 20, zstd_sink, &z, &size);
    }

    report("record_body identity + zstd -3", bytes, now() - t0);

    printf("  %-44s %8.1f\n", "  zstd -3 ratio on the minified records",
           (double) bytes / z.total);

    t0 = now();

    for (i = 0; i < iters; i++) {
        ngx_http_reductrai_record_body(&enc, NGX_HTTP_REDUCTRAI_ENC_GZIP,
                                       gz[i % VARIANTS], gzlen[i % VARIANTS],
                                       64 << 20, zstd_sink, &z, &size);
    }

    report("record_body gzip + zstd -3 (agent path)", bytes, now() - t0);

    ZSTD_freeCCtx(z.cctx);
    free(z.out);
    ngx_http_reductrai_record_encoder_free(&enc);

    for (v = 0; v < VARIANTS; v++) {
        free(in[v]);
        free(gz[v]);
    }

    free(out);
}


int
main(void)
{
    u_char  *buf;
    size_t   len;

    bench("compact /api/v2/series", 0);
    bench("pretty-printed /api/v2/series", 1);

    if (getenv("BENCH_DUMP") != NULL) {
        buf = malloc(PAYLOAD_MAX);
        len = payload(buf, 64 * 1024, 1, 1);
        fwrite(buf, 1, len, stderr);
        free(buf);
    }

    return 0;
}
