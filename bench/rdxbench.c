
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The benchmark's measuring tool, linked with the module's nginx-free core
 * (the same decoders, minifier, record encoder and segment writer as the
 * module):
 *
 *   rdxbench encode [-b BATCH] [-l LEVEL] [-w WLOG] [-m 0|1] [-r RATE]
 *                   [-s STAGE] [-k KIND] [-t SECONDS] CORPUS
 *       the encode path of one writer on one core, as the module runs it:
 *       record head, decode, minify, zstd, SHA-256, write() to a spool
 *       segment, a flush per batch (-b bytes, 1 MiB), a seal every 8 MiB;
 *       then each stage alone (-s: only that one).  -l, -w, -m, -r: zstd
 *       level, window log, long-distance matching and its hash rate log
 *       (segment defaults otherwise).  MB/s of decoded body per CPU
 *       second.
 *
 *   rdxbench oneshot [-l LEVEL] [-w WLOG] [-m 0|1] [-r RATE] [-t SECONDS]
 *                    CORPUS
 *       zstd's own cost for each request alone: the request's NDJSON line,
 *       built as the module builds it (head, decoded and minified body),
 *       compressed in one ZSTD_compress2() call (a context reused, as a
 *       thread would) at LEVEL with the given window and long-distance
 *       matching (level 3 and zstd's defaults otherwise).  CPU µs per
 *       request, averaged over whole passes.
 *
 *   rdxbench sizes [-f BYTES] [-z SPEC] OBJECT...
 *       for archive objects: the NDJSON inside, the decoded body bytes,
 *       and that same batch compressed with gzip -6 and each zstd setting
 *       of SPEC ("3,19" by default; "3w23" is level 3 with a 2^23 window,
 *       "9l27" level 9 with a 2^27 window and long-distance matching, "s"
 *       adds zstd's block splitter, "f1024" flushes every 1024 KiB and
 *       "f0" after every line, as a stream that is sent one request at a
 *       time is written by a per-batch flush).  -f: compress as a segment
 *       is written, size unknown and a flush every BYTES, for every SPEC.
 *
 *   rdxbench wire CORPUS
 *       per kind: decoded bytes, wire bytes, and per-request gzip -6.
 *
 *   rdxbench zmem LEVEL
 *       the memory of a segment's zstd stream at LEVEL (with the segment's
 *       window and long-distance matching), in bytes.
 *
 *   rdxbench protobuf [-l LEVEL] [-w WLOG] [-m 0|1] [-r RATE] [-k KIND]
 *                     [-t SECONDS] CORPUS
 *       per protobuf kind (pb_*, the format from path and
 *       application/x-protobuf as the module detects it): MB/s of
 *       protobuf bytes (after the Content-Encoding) decoded and printed
 *       as JSON per CPU second, one core (over all passes, and of the
 *       median and the fastest pass); then the kind's records written
 *       to spool segments at LEVEL etc. as the encode path does, their
 *       sealed size against gzip -6 of all its protobuf bytes in one
 *       member.
 *
 *   rdxbench snappy FILE...
 *       each FILE compressed to FILE.sz (snappy's block format, as
 *       Prometheus remote write sends it), FILE removed; for corpus.pl.
 *
 * Output is one "key=value ..." line per result, for bench/bench.pl.
 */


#include "ngx_http_reductrai_body_format.h"
#include "ngx_http_reductrai_decode.h"
#include "ngx_http_reductrai_json.h"
#include "ngx_http_reductrai_record.h"
#include "ngx_http_reductrai_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <openssl/evp.h>
#include <snappy-c.h>
#include <zlib.h>
/* ZSTD_estimateCStreamSize(), ZSTD_c_useBlockSplitter (zstd >= 1.5.1) */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>


#define SEGMENT_BYTES  (8 * 1024 * 1024)
#define MAX_DECODED    (64 * 1024 * 1024)
#define KINDS          8
#define PB_TYPE        "application/x-protobuf"
#define PASSES         1024


typedef struct {
    char             kind[16];
    char             uri[64];
    char             enc[16];
    unsigned         format;     /* ngx_http_reductrai_body_format_e */
    u_char          *body;
    size_t           len;
    size_t           decoded;
} req_t;


typedef struct {
    req_t           *reqs;
    size_t           n;
    u_char          *data;
} corpus_t;


static void corpus_load(corpus_t *c, const char *path);
static void corpus_arg(corpus_t *c, int argc, char **argv);
static double cpu_now(void);
static u_char *slurp(const char *path, size_t *len);
static int cmd_encode(int argc, char **argv);
static int cmd_oneshot(int argc, char **argv);
static int cmd_sizes(int argc, char **argv);
static int cmd_wire(int argc, char **argv);
static int cmd_zmem(int argc, char **argv);
static int cmd_protobuf(int argc, char **argv);
static int cmd_snappy(int argc, char **argv);
static int cmd_append(int argc, char **argv);
static double append_pass(int fd, u_char *rec, size_t size, int per_call,
    int n);
static int cmp_double(const void *a, const void *b);
static size_t gzip6(const u_char *p, size_t len);
static int keep(const req_t *r, const char *kind);
static int null_sink(void *data, const u_char *p, size_t len);
static int buf_sink(void *data, const u_char *p, size_t len);
static void record_meta(ngx_http_reductrai_record_meta_t *m, const req_t *r,
    uint64_t n, u_char *id, u_char *ts);


static void
usage(void)
{
    fprintf(stderr,
            "usage: rdxbench encode [-b BATCH] [-l LEVEL] [-w WLOG] [-m LDM] "
            "[-r RATE] [-s STAGE] [-k KIND] [-t SECONDS] CORPUS\n"
            "       rdxbench oneshot [-l LEVEL] [-w WLOG] [-m LDM] [-r RATE] "
            "[-t SECONDS] CORPUS\n"
            "       rdxbench sizes [-f BYTES] [-z SPEC] OBJECT...\n"
            "       rdxbench wire CORPUS\n"
            "       rdxbench zmem LEVEL\n"
            "       rdxbench protobuf [-l LEVEL] [-w WLOG] [-m LDM] [-r RATE] "
            "[-k KIND] [-t SECONDS] CORPUS\n"
            "       rdxbench snappy FILE...\n"
            "       rdxbench append [-n RECORDS] [-s BYTES] [-b PER_CALL] "
            "DIR\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
    }

    if (strcmp(argv[1], "encode") == 0) {
        return cmd_encode(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "oneshot") == 0) {
        return cmd_oneshot(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "sizes") == 0) {
        return cmd_sizes(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "wire") == 0) {
        return cmd_wire(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "zmem") == 0) {
        return cmd_zmem(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "protobuf") == 0) {
        return cmd_protobuf(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "snappy") == 0) {
        return cmd_snappy(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "append") == 0) {
        return cmd_append(argc - 1, argv + 1);
    }

    usage();

    return 2;
}


/* ------------------------------------------------------------ corpus */

static void
corpus_load(corpus_t *c, const char *path)
{
    u_char  *p, *end, *nl;
    size_t   len, cap;
    req_t   *r;

    c->data = slurp(path, &len);
    c->n = 0;
    c->reqs = NULL;
    cap = 0;

    p = c->data;
    end = p + len;

    while (p < end) {
        nl = memchr(p, '\n', end - p);
        if (nl == NULL) {
            break;
        }

        *nl = '\0';

        if (c->n == cap) {
            cap = cap ? cap * 2 : 1024;
            c->reqs = realloc(c->reqs, cap * sizeof(req_t));
            if (c->reqs == NULL) {
                perror("realloc");
                exit(1);
            }
        }

        r = &c->reqs[c->n];

        if (sscanf((char *) p, "%15s %63s %15s %zu %zu", r->kind, r->uri,
                   r->enc, &r->len, &r->decoded)
            != 5
            || (size_t) (end - nl - 1) < r->len)
        {
            fprintf(stderr, "%s: bad request header \"%s\"\n", path, p);
            exit(1);
        }

        /* the corpus's protobuf kinds are sent as application/x-protobuf */

        r->format = (strncmp(r->kind, "pb_", 3) == 0)
                    ? ngx_http_reductrai_body_format_detect(
                          (u_char *) r->uri, strlen(r->uri),
                          (u_char *) PB_TYPE, sizeof(PB_TYPE) - 1)
                    : NGX_HTTP_REDUCTRAI_FORMAT_NONE;

        r->body = nl + 1;
        p = r->body + r->len;
        c->n++;
    }
}


/* the corpus named by the one argument after the options */

static void
corpus_arg(corpus_t *c, int argc, char **argv)
{
    if (optind != argc - 1) {
        usage();
    }

    corpus_load(c, argv[optind]);
}


static int
keep(const req_t *r, const char *kind)
{
    return kind == NULL || strcmp(kind, "all") == 0
           || strcmp(kind, r->kind) == 0;
}


static ngx_http_reductrai_encoding_e
coding(const req_t *r)
{
    if (strcmp(r->enc, "-") == 0 || strcmp(r->enc, "identity") == 0) {
        return NGX_HTTP_REDUCTRAI_ENC_IDENTITY;
    }

    return ngx_http_reductrai_encoding_parse((u_char *) r->enc,
                                             strlen(r->enc));
}


/* ------------------------------------------------------------ encode */
/*
 * the options encode, oneshot and protobuf share: zstd's -l -w -m -r (-1:
 * the segment's setting), -t, and -k
 */

typedef struct {
    int     level;
    int     wlog;
    int     ldm;
    int     rate;
    double  secs;
    char   *kind;
} zopt_t;


static void
zopt_init(zopt_t *o)
{
    o->level = 3;
    o->wlog = -1;
    o->ldm = -1;
    o->rate = -1;
    o->secs = 2.0;
    o->kind = NULL;
}


static int
zopt_set(zopt_t *o, int ch, const char *arg)
{
    switch (ch) {
    case 'l':
        o->level = atoi(arg);
        return 1;
    case 'w':
        o->wlog = atoi(arg);
        return 1;
    case 'm':
        o->ldm = atoi(arg);
        return 1;
    case 'r':
        o->rate = atoi(arg);
        return 1;
    case 't':
        o->secs = atof(arg);
        return 1;
    case 'k':
        o->kind = (char *) arg;
        return 1;
    }

    return 0;
}



typedef struct {
    ngx_http_reductrai_segment_t         seg;
    ngx_http_reductrai_record_encoder_t  enc;
    char                                 dir[64];
    unsigned                             seq;
    int                                  open;
    size_t                               batch;
    int                                  level;
    size_t                               batch_bytes;
    uint64_t                             stored;    /* bytes sealed */
} writer_t;


/* a writer at the zstd options z, in a directory of its own */

static void
writer_init(writer_t *w, const zopt_t *z, size_t batch)
{
    char  tmpl[] = "/tmp/rdxbench-XXXXXX";

    memset(w, 0, sizeof(writer_t));
    ngx_http_reductrai_segment_init(&w->seg);
    w->level = z->level;
    w->batch_bytes = batch;

    if (z->wlog >= 0) {
        w->seg.window_log = z->wlog;
    }

    if (z->ldm >= 0) {
        w->seg.long_distance = z->ldm;
    }

    if (z->rate >= 0) {
        w->seg.ldm_rate = z->rate;
    }

    if (mkdtemp(tmpl) == NULL) {
        perror("mkdtemp");
        exit(1);
    }

    snprintf(w->dir, sizeof(w->dir), "%s", tmpl);
}


static void
writer_seal(writer_t *w)
{
    char  path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/seg-%u.ndjson.zst", w->dir, w->seq);

    if (ngx_http_reductrai_segment_seal(&w->seg, path, 0) != 0) {
        perror("segment_seal");
        exit(1);
    }

    w->stored += w->seg.file_bytes;

    ngx_http_reductrai_segment_close(&w->seg);
    (void) unlink(path);
    w->open = 0;
}


/* the metadata of a record, as the module fills it for an agent's request */

static void
record_meta(ngx_http_reductrai_record_meta_t *m, const req_t *r, uint64_t n,
    u_char *id, u_char *ts)
{
    memset(m, 0, sizeof(ngx_http_reductrai_record_meta_t));

#define set(field, s)                                                        \
    m->field.data = (u_char *) (s); m->field.len = strlen((char *) (s))

    snprintf((char *) id, 64, "bench-1234-1735689600000-%llu",
             (unsigned long long) n);
    ngx_http_reductrai_format_ts(ts, 1735689600000LL + (int64_t) n * 7);
    ts[NGX_HTTP_REDUCTRAI_TS_LEN] = '\0';

    set(id, id);
    set(ts, ts);
    set(stream, r->kind);
    set(method, "POST");
    set(uri, r->uri);
    set(host, "intake.example.com");
    set(client, "10.1.2.3");
    set(request_id, "4f1c2a9e8b7d6c5b4a39281706f5e4d3");
    if (r->format != NGX_HTTP_REDUCTRAI_FORMAT_NONE) {
        set(content_type, PB_TYPE);

    } else {
        set(content_type, "application/json");
    }

    if (coding(r) != NGX_HTTP_REDUCTRAI_ENC_IDENTITY) {
        set(content_encoding, r->enc);
    }
    set(user_agent, "datadog-agent/7.52.0");
    set(api_key_fp, "3f9a1c2b");
    m->forwarded = 1;

#undef set
}


/* one record, as ngx_http_reductrai_job_record() writes it */

static void
writer_record(writer_t *w, const req_t *r, uint64_t n)
{
    u_char                            head[1024], id[64], ts[32], *p;
    char                              path[PATH_MAX];
    size_t                            size;
    ngx_http_reductrai_record_meta_t  m;

    if (w->open && w->seg.stats.raw_bytes >= SEGMENT_BYTES) {
        writer_seal(w);
    }

    if (!w->open) {
        snprintf(path, sizeof(path), "%s/open-%u.ndjson.zst", w->dir,
                 ++w->seq);

        if (ngx_http_reductrai_segment_open(&w->seg, path, w->level) != 0) {
            perror("segment_open");
            exit(1);
        }

        w->open = 1;
    }

    record_meta(&m, r, n, id, ts);

    p = ngx_http_reductrai_record_head(head, &m);

    if (ngx_http_reductrai_segment_write(&w->seg, head, p - head) != 0
        || ngx_http_reductrai_record_body(&w->enc, coding(r), r->format,
                                          r->body, r->len, MAX_DECODED,
                                          ngx_http_reductrai_segment_write,
                                          &w->seg, &size)
           != 0)
    {
        perror("record");
        exit(1);
    }

    ngx_http_reductrai_segment_record(&w->seg, 1735689600000LL);

    /* the group commit: one flush per batch */

    w->batch += r->len;

    if (w->batch >= w->batch_bytes) {
        if (ngx_http_reductrai_segment_flush(&w->seg, 0) != 0) {
            perror("segment_flush");
            exit(1);
        }

        w->batch = 0;
    }
}


typedef struct {
    const char  *name;
    int          stage;
} stage_t;


enum { ST_PATH = 0, ST_DECODE, ST_MINIFY, ST_ZSTD, ST_SHA, ST_BODY };


static const stage_t  stages[] = {
    { "path", ST_PATH },            /* everything, as the module does */
    { "decode", ST_DECODE },        /* inflate / zstd decode only */
    { "minify", ST_MINIFY },        /* minify of decoded bodies only */
    { "zstd", ST_ZSTD },            /* zstd stream of decoded bodies only */
    { "sha256", ST_SHA },           /* SHA-256 of decoded bodies only */
    { "record_body", ST_BODY },     /* decode + minify into a null sink */
    { NULL, 0 }
};


static int
cmd_encode(int argc, char **argv)
{
    int                                   ch;
    char                                 *kind, *only;
    double                                t0, t, mbps;
    size_t                                i, pass, decoded, size, sink;
    size_t                                batch;
    uint64_t                              n;
    zopt_t                                z;
    corpus_t                              c;
    writer_t                              w;
    ZSTD_CCtx                            *cctx;
    EVP_MD_CTX                           *sha;
    const stage_t                        *st;
    ngx_http_reductrai_buf_t              dec, min, zout;
    ngx_http_reductrai_record_encoder_t   enc;

    zopt_init(&z);
    batch = 1024 * 1024;
    only = NULL;

    while ((ch = getopt(argc, argv, "b:l:k:t:w:m:r:s:")) != -1) {
        switch (ch) {
        case 's':
            only = optarg;
            break;
        case 'b':
            batch = strtoul(optarg, NULL, 10);
            break;
        default:
            if (!zopt_set(&z, ch, optarg)) {
                usage();
            }
        }
    }

    corpus_arg(&c, argc, argv);
    kind = z.kind;

    decoded = 0;
    for (i = 0; i < c.n; i++) {
        if (keep(&c.reqs[i], kind)) {
            decoded += c.reqs[i].decoded;
        }
    }

    if (decoded == 0) {
        fprintf(stderr, "no requests of kind %s\n", kind);
        return 1;
    }

    writer_init(&w, &z, batch);

    memset(&enc, 0, sizeof(enc));
    memset(&dec, 0, sizeof(dec));
    memset(&min, 0, sizeof(min));
    memset(&zout, 0, sizeof(zout));

    cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, z.level);
    sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    zout.cap = ZSTD_CStreamOutSize();
    zout.data = malloc(zout.cap);

    for (st = stages; st->name; st++) {

        if (only != NULL && strcmp(only, st->name) != 0) {
            continue;
        }

        /* whole passes over the corpus until secs have gone by */

        t0 = cpu_now();
        n = 0;
        sink = 0;

        for (pass = 0; pass == 0 || cpu_now() - t0 < z.secs; pass++) {
            for (i = 0; i < c.n; i++) {
                req_t  *r = &c.reqs[i];

                if (!keep(r, kind)) {
                    continue;
                }

                switch (st->stage) {

                case ST_PATH:
                    writer_record(&w, r, ++n);
                    break;

                case ST_BODY:
                    ngx_http_reductrai_record_body(&enc, coding(r), r->format,
                                                   r->body, r->len,
                                                   MAX_DECODED, null_sink,
                                                   &sink, &size);
                    break;

                default:
                    if (coding(r) == NGX_HTTP_REDUCTRAI_ENC_IDENTITY) {
                        if (st->stage == ST_DECODE) {
                            break;
                        }

                        dec.len = 0;
                        ngx_http_reductrai_buf_reserve(&dec, r->len);
                        memcpy(dec.data, r->body, r->len);
                        dec.len = r->len;

                    } else if (ngx_http_reductrai_decode(coding(r), r->body,
                                                         r->len, MAX_DECODED,
                                                         &dec)
                               != NGX_HTTP_REDUCTRAI_DECODE_OK)
                    {
                        fprintf(stderr, "decode failed\n");
                        return 1;
                    }

                    if (st->stage == ST_MINIFY) {
                        min.len = 0;
                        ngx_http_reductrai_buf_reserve(&min, dec.len);
                        sink += ngx_http_reductrai_json_minify(min.data,
                                                               dec.data,
                                                               dec.len);

                    } else if (st->stage == ST_ZSTD) {
                        ZSTD_inBuffer   in = { dec.data, dec.len, 0 };
                        ZSTD_outBuffer  out;

                        while (in.pos < in.size) {
                            out.dst = zout.data;
                            out.size = zout.cap;
                            out.pos = 0;
                            ZSTD_compressStream2(cctx, &out, &in,
                                                 ZSTD_e_continue);
                            sink += out.pos;
                        }

                    } else if (st->stage == ST_SHA) {
                        EVP_DigestUpdate(sha, dec.data, dec.len);
                    }
                }
            }
        }

        if (st->stage == ST_PATH && w.open) {
            writer_seal(&w);
        }

        t = cpu_now() - t0;

        /*
         * decode/minify/zstd/sha256 include the decode (or copy) that
         * gives them their input: subtract the decode stage to get their
         * own cost (bench.pl does)
         */

        mbps = (double) decoded * pass / t / 1e6;

        printf("encode kind=%s level=%d wlog=%d ldm=%d rate=%d batch=%zu "
               "stage=%s passes=%zu decoded=%zu cpu=%.3f mbps=%.1f "
               "stored=%llu\n",
               kind ? kind : "all", z.level, w.seg.window_log,
               w.seg.long_distance, w.seg.ldm_rate, batch, st->name, pass,
               decoded * pass, t, mbps, (unsigned long long) w.stored);
        fflush(stdout);
    }

    ngx_http_reductrai_segment_free(&w.seg);
    (void) rmdir(w.dir);

    return 0;
}


static int
null_sink(void *data, const u_char *p, size_t len)
{
    *(size_t *) data += len;

    return 0;
}


static int
buf_sink(void *data, const u_char *p, size_t len)
{
    ngx_http_reductrai_buf_t  *b = data;

    if (ngx_http_reductrai_buf_reserve(b, len) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, p, len);
    b->len += len;

    return 0;
}


/* ------------------------------------------------------------ oneshot */

/*
 * The reference the module's CPU per request is held to: what zstd itself
 * spends on that request's NDJSON line in one call.  The lines are built
 * first (decode and minify are not zstd's cost), then compressed in turn,
 * one frame each, with the frame checksum on as in a segment.
 */

static int
cmd_oneshot(int argc, char **argv)
{
    int                                   ch;
    u_char                                id[64], ts[32], *p;
    void                                 *out;
    double                                t0, t;
    size_t                                i, pass, size, bound, n, *off;
    uint64_t                              stored;
    zopt_t                                z;
    corpus_t                              c;
    ZSTD_CCtx                            *cctx;
    ngx_http_reductrai_buf_t              nd;
    ngx_http_reductrai_record_meta_t      m;
    ngx_http_reductrai_record_encoder_t   enc;

    /* bench.pl passes the module's settings: none assumed here */

    zopt_init(&z);
    z.wlog = 0;
    z.ldm = 0;
    z.rate = 0;
    z.secs = 1.0;

    while ((ch = getopt(argc, argv, "l:w:m:r:t:")) != -1) {
        if (!zopt_set(&z, ch, optarg)) {
            usage();
        }
    }

    corpus_arg(&c, argc, argv);

    if (c.n == 0) {
        fprintf(stderr, "%s: no requests\n", argv[optind]);
        return 1;
    }

    /* every request's line, back to back; off[i] is where line i starts */

    memset(&nd, 0, sizeof(nd));
    memset(&enc, 0, sizeof(enc));
    off = malloc((c.n + 1) * sizeof(size_t));
    if (off == NULL) {
        perror("malloc");
        return 1;
    }

    bound = 0;

    for (i = 0; i < c.n; i++) {
        off[i] = nd.len;
        record_meta(&m, &c.reqs[i], i + 1, id, ts);

        if (ngx_http_reductrai_buf_reserve(&nd,
                                ngx_http_reductrai_record_head_len(&m))
            != 0)
        {
            perror("buf");
            return 1;
        }

        p = ngx_http_reductrai_record_head(nd.data + nd.len, &m);
        nd.len = p - nd.data;

        if (ngx_http_reductrai_record_body(&enc, coding(&c.reqs[i]),
                                           c.reqs[i].format,
                                           c.reqs[i].body, c.reqs[i].len,
                                           MAX_DECODED, buf_sink, &nd, &size)
            != 0)
        {
            perror("record");
            return 1;
        }

        n = ZSTD_compressBound(nd.len - off[i]);
        bound = n > bound ? n : bound;
    }

    off[c.n] = nd.len;

    out = malloc(bound);
    cctx = ZSTD_createCCtx();

    if (out == NULL || cctx == NULL
        || ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel,
                                               z.level))
        || ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1))
        || (z.wlog && ZSTD_isError(ZSTD_CCtx_setParameter(cctx,
                                               ZSTD_c_windowLog, z.wlog)))
        || (z.ldm && ZSTD_isError(ZSTD_CCtx_setParameter(cctx,
                                   ZSTD_c_enableLongDistanceMatching, 1)))
        || (z.ldm && z.rate && ZSTD_isError(ZSTD_CCtx_setParameter(cctx,
                                           ZSTD_c_ldmHashRateLog, z.rate))))
    {
        fprintf(stderr, "zstd parameters refused\n");
        return 1;
    }

    /* whole passes until secs of CPU have gone by */

    t0 = cpu_now();
    stored = 0;

    for (pass = 0; pass == 0 || cpu_now() - t0 < z.secs; pass++) {
        for (i = 0; i < c.n; i++) {
            n = ZSTD_compress2(cctx, out, bound, nd.data + off[i],
                               off[i + 1] - off[i]);
            if (ZSTD_isError(n)) {
                fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(n));
                return 1;
            }

            stored += n;
        }
    }

    t = cpu_now() - t0;

    printf("oneshot requests=%zu level=%d wlog=%d ldm=%d rate=%d "
           "ndjson=%.0f stored=%.0f passes=%zu cpu=%.3f us=%.2f\n",
           c.n, z.level, z.wlog, z.ldm, z.rate, (double) nd.len / c.n,
           (double) stored / pass / c.n, pass, t, t / pass / c.n * 1e6);

    ZSTD_freeCCtx(cctx);
    ngx_http_reductrai_record_encoder_free(&enc);
    ngx_http_reductrai_buf_free(&nd);
    free(out);
    free(off);

    return 0;
}


/* ------------------------------------------------------------ sizes */

typedef struct {
    int     level;
    int     wlog;
    int     ldm;
    int     hlog;
    int     clog;
    int     mml;
    int     ldm_mml;
    int     ldm_rate;
    int     ldm_bucket;
    int     ldm_hlog;
    int     splitter;       /* ZSTD_c_useBlockSplitter forced on */
    long    flush;          /* -1: -f's; 0: after every line; else bytes */
    char    name[32];
} zspec_t;


static size_t  flush_every;


static size_t
zstd_batch(const u_char *p, size_t len, zspec_t *z, double *secs)
{
    void       *out;
    size_t      bound, n, every;
    double      t0;
    ZSTD_CCtx  *cctx;

    bound = ZSTD_compressBound(len);
    out = malloc(bound);
    cctx = ZSTD_createCCtx();

    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, z->level);

    if (z->wlog) {
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, z->wlog);
    }

    if (z->ldm) {
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_enableLongDistanceMatching, 1);
    }

    if (z->hlog) {
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_hashLog, z->hlog);
    }

    if (z->clog) {
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_chainLog, z->clog);
    }

    if (z->mml) {
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_minMatch, z->mml);
    }

    if (z->ldm_mml) {
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_ldmMinMatch, z->ldm_mml);
    }

    if (z->ldm_rate) {
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_ldmHashRateLog, z->ldm_rate);
    }

    if (z->ldm_bucket) {
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_ldmBucketSizeLog, z->ldm_bucket);
    }

    if (z->ldm_hlog) {
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_ldmHashLog, z->ldm_hlog);
    }

    if (z->splitter
        && ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_useBlockSplitter,
                                               ZSTD_ps_enable)))
    {
        fprintf(stderr, "zstd: ZSTD_c_useBlockSplitter refused\n");
        exit(1);
    }

    every = z->flush >= 0 ? (size_t) z->flush : flush_every;

    t0 = cpu_now();

    if (z->flush < 0 && flush_every == 0) {
        n = ZSTD_compress2(cctx, out, bound, p, len);

    } else {
        /*
         * as a segment is written: size unknown, a flush per batch (every
         * bytes, or every line when 0: a stream sent one request at a time)
         */

        u_char         *nl;
        size_t          off, chunk, rc = 0;
        ZSTD_inBuffer   in;
        ZSTD_outBuffer  ob = { out, bound, 0 };

        for (off = 0; off < len; off += chunk) {
            if (every == 0) {
                nl = memchr(p + off, '\n', len - off);
                chunk = nl ? (size_t) (nl + 1 - (p + off)) : len - off;

            } else {
                chunk = len - off < every ? len - off : every;
            }
            in.src = p + off;
            in.size = chunk;
            in.pos = 0;

            do {
                rc = ZSTD_compressStream2(cctx, &ob, &in,
                                          off + chunk == len ? ZSTD_e_end
                                                             : ZSTD_e_flush);
                if (ZSTD_isError(rc)) {
                    break;
                }
            } while (rc != 0);
        }

        n = ZSTD_isError(rc) ? rc : ob.pos;
    }

    *secs = cpu_now() - t0;

    if (ZSTD_isError(n)) {
        fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(n));
        exit(1);
    }

    ZSTD_freeCCtx(cctx);
    free(out);

    return n;
}


static int
cmd_sizes(int argc, char **argv)
{
    int             ch, i, nz;
    char           *spec, *s, *tok;
    u_char         *file, *p, *end, *nl, *q;
    size_t          flen, rc, body, records;
    double          secs;
    zspec_t         z[16];
    ZSTD_DCtx      *dctx;
    ZSTD_inBuffer   in;
    ZSTD_outBuffer  out;
    ngx_http_reductrai_buf_t  nd;

    spec = "3,19";

    while ((ch = getopt(argc, argv, "f:z:")) != -1) {
        switch (ch) {
        case 'f':
            flush_every = strtoul(optarg, NULL, 10);
            break;
        case 'z':
            spec = optarg;
            break;
        default:
            usage();
        }
    }

    nz = 0;
    s = strdup(spec);

    for (tok = strtok(s, ","); tok && nz < 16; tok = strtok(NULL, ",")) {
        char  *p;
        long   v;

        memset(&z[nz], 0, sizeof(zspec_t));
        z[nz].flush = -1;
        z[nz].level = (int) strtol(tok, &p, 10);
        snprintf(z[nz].name, sizeof(z[nz].name), "zstd%s", tok);

        /* letters and numbers: w23 window, l23 window + LDM, h hashLog,
         * c chainLog, m minMatch, M ldmMinMatch, r ldmHashRateLog,
         * b ldmBucketSizeLog, H ldmHashLog, s the block splitter, f a
         * flush every N KiB (f0: every line) */

        while (*p) {
            char  c = *p++;

            v = strtol(p, &p, 10);

            switch (c) {
            case 'l':
                z[nz].ldm = 1;
                /* fall through */
            case 'w':
                z[nz].wlog = (int) v;
                break;
            case 'h':
                z[nz].hlog = (int) v;
                break;
            case 'c':
                z[nz].clog = (int) v;
                break;
            case 'm':
                z[nz].mml = (int) v;
                break;
            case 'M':
                z[nz].ldm_mml = (int) v;
                break;
            case 'r':
                z[nz].ldm_rate = (int) v;
                break;
            case 'b':
                z[nz].ldm_bucket = (int) v;
                break;
            case 'H':
                z[nz].ldm_hlog = (int) v;
                break;
            case 's':
                z[nz].splitter = 1;
                break;
            case 'f':
                z[nz].flush = v * 1024;
                break;
            default:
                usage();
            }
        }

        nz++;
    }

    dctx = ZSTD_createDCtx();
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 31);
    memset(&nd, 0, sizeof(nd));

    for (i = optind; i < argc; i++) {
        file = slurp(argv[i], &flen);

        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
        nd.len = 0;

        in.src = file;
        in.size = flen;
        in.pos = 0;

        do {
            if (ngx_http_reductrai_buf_reserve(&nd, 1024 * 1024) != 0) {
                perror("buf");
                return 1;
            }

            out.dst = nd.data + nd.len;
            out.size = nd.cap - nd.len;
            out.pos = 0;

            rc = ZSTD_decompressStream(dctx, &out, &in);
            if (ZSTD_isError(rc)) {
                fprintf(stderr, "%s: %s\n", argv[i], ZSTD_getErrorName(rc));
                return 1;
            }

            nd.len += out.pos;

        } while (in.pos < in.size || out.pos == out.size);

        /* the decoded body bytes: the "size" of every record */

        body = 0;
        records = 0;
        p = nd.data;
        end = p + nd.len;

        while (p < end) {
            nl = memchr(p, '\n', end - p);
            if (nl == NULL) {
                nl = end;
            }

            q = memmem(p, nl - p, "\"forwarded\":", 12);
            q = q ? memmem(q, nl - q, ",\"size\":", 8) : NULL;

            if (q != NULL) {
                body += strtoull((char *) q + 8, NULL, 10);
            }

            records++;
            p = nl + 1;
        }

        printf("object file=%s stored=%zu ndjson=%zu body=%zu records=%zu "
               "gzip6=%zu", argv[i], flen, nd.len, body, records,
               gzip6(nd.data, nd.len));

        for (ch = 0; ch < nz; ch++) {
            size_t  n = zstd_batch(nd.data, nd.len, &z[ch], &secs);

            printf(" %s=%zu %s_cpu=%.3f", z[ch].name, n, z[ch].name, secs);
        }

        printf("\n");
        fflush(stdout);

        free(file);
    }

    ZSTD_freeDCtx(dctx);
    ngx_http_reductrai_buf_free(&nd);
    free(s);

    return 0;
}


/* gzip -6 of one buffer, as one member */

static size_t
gzip6(const u_char *p, size_t len)
{
    u_char    buf[65536];
    size_t    total;
    z_stream  zs;

    memset(&zs, 0, sizeof(zs));

    if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        exit(1);
    }

    zs.next_in = (u_char *) p;
    zs.avail_in = len;
    total = 0;

    do {
        zs.next_out = buf;
        zs.avail_out = sizeof(buf);
        deflate(&zs, Z_FINISH);
        total += sizeof(buf) - zs.avail_out;
    } while (zs.avail_out == 0);

    deflateEnd(&zs);

    return total;
}


/* ------------------------------------------------------------ wire */

static int
cmd_wire(int argc, char **argv)
{
    int                       k, nk;
    char                      names[KINDS][16];
    size_t                    i, wire[KINDS], dec[KINDS], gz[KINDS], n[KINDS];
    corpus_t                  c;
    ngx_http_reductrai_buf_t  d;

    if (argc != 2) {
        usage();
    }

    corpus_load(&c, argv[1]);
    memset(&d, 0, sizeof(d));
    nk = 0;

    for (i = 0; i < c.n; i++) {
        req_t  *r = &c.reqs[i];

        for (k = 0; k < nk; k++) {
            if (strcmp(names[k], r->kind) == 0) {
                break;
            }
        }

        if (k == nk) {
            if (nk == KINDS) {
                continue;
            }

            snprintf(names[nk], sizeof(names[0]), "%s", r->kind);
            wire[nk] = dec[nk] = gz[nk] = n[nk] = 0;
            nk++;
        }

        if (coding(r) == NGX_HTTP_REDUCTRAI_ENC_IDENTITY) {
            d.len = 0;
            ngx_http_reductrai_buf_reserve(&d, r->len);
            memcpy(d.data, r->body, r->len);
            d.len = r->len;

        } else if (ngx_http_reductrai_decode(coding(r), r->body, r->len,
                                             MAX_DECODED, &d)
                   != NGX_HTTP_REDUCTRAI_DECODE_OK)
        {
            fprintf(stderr, "decode failed\n");
            return 1;
        }

        n[k]++;
        wire[k] += r->len;
        dec[k] += d.len;
        gz[k] += gzip6(d.data, d.len);
    }

    for (k = 0; k < nk; k++) {
        printf("wire kind=%s requests=%zu decoded=%zu wire=%zu gzip6=%zu\n",
               names[k], n[k], dec[k], wire[k], gz[k]);
    }

    return 0;
}


static int
cmd_zmem(int argc, char **argv)
{
    if (argc != 2) {
        usage();
    }

    ZSTD_CCtx_params  *params;

    /* as ngx_http_reductrai_segment_open() sets it up */

    params = ZSTD_createCCtxParams();

    if (params == NULL
        || ZSTD_isError(ZSTD_CCtxParams_init(params, atoi(argv[1])))
        || ZSTD_isError(ZSTD_CCtxParams_setParameter(params,
                                       ZSTD_c_windowLog,
                                       NGX_HTTP_REDUCTRAI_SEGMENT_WLOG))
        || ZSTD_isError(ZSTD_CCtxParams_setParameter(params,
                                       ZSTD_c_enableLongDistanceMatching, 1))
        || ZSTD_isError(ZSTD_CCtxParams_setParameter(params,
                                       ZSTD_c_ldmHashRateLog,
                                       NGX_HTTP_REDUCTRAI_SEGMENT_LDM_RATE))

        /*
         * zstd's own defaults for this window, set here because its
         * estimate (1.5.4) divides by them before choosing them
         */
        || ZSTD_isError(ZSTD_CCtxParams_setParameter(params,
                                       ZSTD_c_ldmHashLog,
                                       NGX_HTTP_REDUCTRAI_SEGMENT_WLOG - 7))
        || ZSTD_isError(ZSTD_CCtxParams_setParameter(params,
                                       ZSTD_c_ldmMinMatch, 64))
        || ZSTD_isError(ZSTD_CCtxParams_setParameter(params,
                                       ZSTD_c_ldmBucketSizeLog, 3)))
    {
        fprintf(stderr, "zstd parameters refused\n");
        return 1;
    }

    printf("%zu\n", ZSTD_estimateCStreamSize_usingCCtxParams(params));

    ZSTD_freeCCtxParams(params);

    return 0;
}


/* ------------------------------------------------------------ protobuf */

/*
 * The decode-and-print speed of each protobuf kind (issue 12: >= 200 MB/s
 * of protobuf input per core) and its archive against gzip -6 of the
 * protobuf bytes (<= 1.0x).
 */

static int
cmd_protobuf(int argc, char **argv)
{
    int                                   ch, k, nk;
    char                                  names[KINDS][16], *kind;
    double                                t0, t, times[PASSES];
    size_t                                i, j, pass, np, n, pb, json, gz;
    zopt_t                                z;
    corpus_t                              c;
    writer_t                              w;
    ngx_http_reductrai_buf_t              out, all, *bodies;
    ngx_http_reductrai_pb_t               scratch;
    ngx_http_reductrai_pb_rc_e            rc;
    const ngx_http_reductrai_body_format_t  *bf;

    zopt_init(&z);

    while ((ch = getopt(argc, argv, "l:k:t:w:m:r:")) != -1) {
        if (!zopt_set(&z, ch, optarg)) {
            usage();
        }
    }

    corpus_arg(&c, argc, argv);
    kind = z.kind;

    nk = 0;

    for (i = 0; i < c.n; i++) {
        if (c.reqs[i].format == NGX_HTTP_REDUCTRAI_FORMAT_NONE
            || !keep(&c.reqs[i], kind))
        {
            continue;
        }

        for (k = 0; k < nk; k++) {
            if (strcmp(names[k], c.reqs[i].kind) == 0) {
                break;
            }
        }

        if (k == nk && nk < KINDS) {
            snprintf(names[nk++], sizeof(names[0]), "%s", c.reqs[i].kind);
        }
    }

    bodies = calloc(c.n, sizeof(ngx_http_reductrai_buf_t));
    if (bodies == NULL) {
        perror("calloc");
        return 1;
    }

    memset(&scratch, 0, sizeof(scratch));
    memset(&out, 0, sizeof(out));
    memset(&all, 0, sizeof(all));

    for (k = 0; k < nk; k++) {

        /* the protobuf bytes of the kind, decoded from the wire first */

        n = 0;
        pb = 0;
        json = 0;
        all.len = 0;
        bf = NULL;

        for (i = 0; i < c.n; i++) {
            req_t  *r = &c.reqs[i];

            if (strcmp(r->kind, names[k]) != 0) {
                continue;
            }

            bf = ngx_http_reductrai_body_format(r->format);

            if (coding(r) == NGX_HTTP_REDUCTRAI_ENC_IDENTITY) {
                bodies[i].data = r->body;
                bodies[i].len = r->len;

            } else if (ngx_http_reductrai_decode(coding(r), r->body, r->len,
                                                 MAX_DECODED, &bodies[i])
                       != NGX_HTTP_REDUCTRAI_DECODE_OK)
            {
                fprintf(stderr, "%s: decode failed\n", r->kind);
                return 1;
            }

            if (buf_sink(&all, bodies[i].data, bodies[i].len) != 0) {
                perror("buf_sink");
                return 1;
            }

            out.len = 0;
            rc = ngx_http_reductrai_body_format_json(&scratch, r->format,
                                                     bodies[i].data,
                                                     bodies[i].len, &out);
            if (rc != NGX_HTTP_REDUCTRAI_PB_OK) {
                fprintf(stderr, "%s: request %zu: %s\n", r->kind, i,
                        ngx_http_reductrai_pb_error(rc));
                return 1;
            }

            n++;
            pb += bodies[i].len;
            json += out.len;
        }

        /*
         * decode and print, whole passes until secs have gone by; each
         * pass timed too: on a shared machine the median pass is the
         * steadier figure
         */

        t0 = cpu_now();

        for (pass = 0; pass == 0 || cpu_now() - t0 < z.secs; pass++) {
            if (pass < PASSES) {
                times[pass] = cpu_now();
            }

            for (i = 0; i < c.n; i++) {
                if (strcmp(c.reqs[i].kind, names[k]) != 0) {
                    continue;
                }

                out.len = 0;
                (void) ngx_http_reductrai_body_format_json(&scratch,
                                                           c.reqs[i].format,
                                                           bodies[i].data,
                                                           bodies[i].len,
                                                           &out);
            }

            if (pass < PASSES) {
                times[pass] = cpu_now() - times[pass];
            }
        }

        t = cpu_now() - t0;
        np = (pass < PASSES) ? pass : PASSES;
        qsort(times, np, sizeof(double), cmp_double);

        /* the kind's archive, written as the module writes it */

        writer_init(&w, &z, 1024 * 1024);

        for (i = 0, j = 0; i < c.n; i++) {
            if (strcmp(c.reqs[i].kind, names[k]) == 0) {
                writer_record(&w, &c.reqs[i], ++j);
            }
        }

        if (w.open) {
            writer_seal(&w);
        }

        ngx_http_reductrai_segment_free(&w.seg);
        ngx_http_reductrai_record_encoder_free(&w.enc);
        (void) rmdir(w.dir);

        gz = gzip6(all.data, all.len);

        printf("protobuf kind=%s format=%s requests=%zu pb=%zu json=%zu "
               "passes=%zu cpu=%.3f mbps=%.1f median=%.1f best=%.1f "
               "level=%d stored=%llu gzip6=%zu ratio=%.3f\n",
               names[k], bf->name, n, pb, json, pass, t,
               (double) pb * pass / t / 1e6,
               (double) pb / times[np / 2] / 1e6,
               (double) pb / times[0] / 1e6, z.level,
               (unsigned long long) w.stored, gz,
               (double) w.stored / gz);
        fflush(stdout);

        for (i = 0; i < c.n; i++) {
            if (bodies[i].data != c.reqs[i].body) {
                free(bodies[i].data);
            }

            bodies[i].data = NULL;
        }
    }

    free(bodies);
    free(out.data);
    free(all.data);
    ngx_http_reductrai_pb_trim(&scratch, 0);

    return 0;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


/* ------------------------------------------------------------ snappy */

static int
cmd_snappy(int argc, char **argv)
{
    int      i, fd;
    char     path[PATH_MAX];
    u_char  *in;
    char    *out;
    size_t   len, n;

    for (i = 1; i < argc; i++) {
        in = slurp(argv[i], &len);
        n = snappy_max_compressed_length(len);

        out = malloc(n);
        if (out == NULL) {
            perror("malloc");
            return 1;
        }

        if (snappy_compress((char *) in, len, out, &n) != SNAPPY_OK) {
            fprintf(stderr, "%s: snappy_compress failed\n", argv[i]);
            return 1;
        }

        snprintf(path, sizeof(path), "%s.sz", argv[i]);

        fd = open(path, O_WRONLY|O_CREAT|O_TRUNC, 0644);
        if (fd == -1 || write(fd, out, n) != (ssize_t) n || close(fd) != 0) {
            fprintf(stderr, "%s: %s\n", path, strerror(errno));
            return 1;
        }

        (void) unlink(argv[i]);
        free(in);
        free(out);
    }

    return 0;
}


/* ------------------------------------------------------------- append */

/*
 * What the spool's append costs the kernel, without nginx: records of the
 * size of a 4 KiB request's (head and body) appended to a new file in DIR,
 * PER_CALL to a pwritev() as in one pass of the event loop, then the same
 * range written again, into pages the first pass left in the page cache.
 * CPU µs per record of each (this thread's user + system time).
 */

static int
cmd_append(int argc, char **argv)
{
    int      c, fd, n, per_call;
    char     path[PATH_MAX];
    size_t   size;
    u_char  *rec;
    double   grow, rewrite;

    n = 100000;
    size = 4400;
    per_call = 2;

    while ((c = getopt(argc, argv, "n:s:b:")) != -1) {
        switch (c) {

        case 'n':
            n = atoi(optarg);
            break;

        case 's':
            size = (size_t) atol(optarg);
            break;

        case 'b':
            per_call = atoi(optarg);
            break;

        default:
            usage();
        }
    }

    if (optind != argc - 1 || n <= 0 || size == 0 || per_call <= 0
        || per_call > 64)
    {
        usage();
    }

    snprintf(path, sizeof(path), "%s/rdxbench-append.%d", argv[optind],
             (int) getpid());

    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    rec = malloc(size);

    if (fd == -1 || rec == NULL) {
        perror(path);
        return 1;
    }

    memset(rec, 'x', size);

    grow = append_pass(fd, rec, size, per_call, n);
    rewrite = append_pass(fd, rec, size, per_call, n);

    printf("append size=%zu per_call=%d records=%d grow_us=%.2f "
           "rewrite_us=%.2f\n", size, per_call, n, grow, rewrite);

    (void) unlink(path);
    close(fd);
    free(rec);

    return 0;
}


/* one pass from offset 0; CPU µs per record */

static double
append_pass(int fd, u_char *rec, size_t size, int per_call, int n)
{
    int           i, j;
    off_t         off;
    double        t0;
    struct iovec  iov[64];

    for (j = 0; j < per_call; j++) {
        iov[j].iov_base = rec;
        iov[j].iov_len = size;
    }

    off = 0;
    t0 = cpu_now();

    for (i = 0; i < n; i += per_call) {
        if (pwritev(fd, iov, per_call, off) != (ssize_t) (size * per_call)) {
            perror("pwritev");
            exit(1);
        }

        off += (off_t) (size * per_call);
    }

    return (cpu_now() - t0) * 1e6 / n;
}


/* ------------------------------------------------------------ helpers */

static double
cpu_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static u_char *
slurp(const char *path, size_t *len)
{
    int          fd;
    u_char      *p;
    ssize_t      n;
    size_t       done;
    struct stat  st;

    fd = open(path, O_RDONLY);
    if (fd == -1 || fstat(fd, &st) == -1) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }

    p = malloc(st.st_size + 1);
    if (p == NULL) {
        perror("malloc");
        exit(1);
    }

    for (done = 0; done < (size_t) st.st_size; done += n) {
        n = read(fd, p + done, st.st_size - done);
        if (n <= 0) {
            fprintf(stderr, "%s: short read\n", path);
            exit(1);
        }
    }

    close(fd);
    *len = st.st_size;

    return p;
}
