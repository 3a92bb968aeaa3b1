
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * The spool log (ngx_http_reductrai_frame.h) and sealing it into an archive
 * object (ngx_http_reductrai_transcode.h): CRC-32C, frames written as the
 * module writes them and read back, a torn tail, a bad checksum in the
 * middle, zeros after the end, and the object each of them becomes.
 */


#include "unit.h"

#include "ngx_http_reductrai_frame.h"
#include "ngx_http_reductrai_transcode.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>


typedef struct {
    const char  *head;
    const char  *body;
    size_t       body_len;
    unsigned     coding;
    int64_t      ts_ms;
} frame_spec_t;


static char  dir[] = "/tmp/rdx-unit-frame-XXXXXX";

/* the object test_transcode()'s log becomes: each body after its head */
static const char  expected_object[] =
    "{\"id\":\"a\",\"forwarded\":true,\"size\":21,"
    "\"body\":{\"points\":[1,2]}}\n"
    "{\"id\":\"b\",\"forwarded\":true,\"size\":21,"
    "\"body\":{\"points\":[1,2]}}\n"
    "{\"id\":\"c\",\"forwarded\":false,\"size\":8,"
    "\"body_b64\":\"bm90IGpzb24=\"}\n";


static void
write_frame(int fd, const frame_spec_t *s)
{
    u_char                      hdr[NGX_HTTP_REDUCTRAI_FRAME_HEADER];
    uint32_t                    crc;
    ngx_http_reductrai_frame_t  f;

    f.head_len = (uint32_t) strlen(s->head);
    f.coding = s->coding;
    f.format = 0;
    f.pending = 0;
    f.body_len = s->body_len;
    f.ts_ms = s->ts_ms;

    /* as the event loop does: the header's fields, the head, the body */
    crc = ngx_http_reductrai_frame_crc_start(&f);
    crc = ngx_http_reductrai_crc32c(crc, (const u_char *) s->head,
                                    f.head_len);
    crc = ngx_http_reductrai_crc32c(crc, (const u_char *) s->body,
                                    s->body_len);

    ngx_http_reductrai_frame_header(hdr, &f, crc);

    if (write(fd, hdr, sizeof(hdr)) != sizeof(hdr)
        || write(fd, s->head, f.head_len) != (ssize_t) f.head_len
        || write(fd, s->body, s->body_len) != (ssize_t) s->body_len)
    {
        perror("write");
        exit(2);
    }
}


static int
new_log(const char *name, const frame_spec_t *specs, int n)
{
    int     fd, i;
    u_char  header[NGX_HTTP_REDUCTRAI_LOG_HEADER];
    char    path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd == -1) {
        perror(path);
        exit(2);
    }

    ngx_http_reductrai_log_header(header);

    if (write(fd, header, sizeof(header)) != sizeof(header)) {
        exit(2);
    }

    for (i = 0; i < n; i++) {
        write_frame(fd, &specs[i]);
    }

    return fd;
}


static int
count_frames(int fd, ngx_http_reductrai_frame_rc_e *end, off_t *valid)
{
    int                                n;
    ngx_http_reductrai_frame_reader_t  rd;

    n = 0;
    *end = ngx_http_reductrai_frame_reader_open(&rd, fd);

    while (*end == NGX_HTTP_REDUCTRAI_FRAME_OK) {
        *valid = rd.offset;
        *end = ngx_http_reductrai_frame_next(&rd);
        if (*end == NGX_HTTP_REDUCTRAI_FRAME_OK) {
            n++;
            *valid = rd.offset;
        }
    }

    ngx_http_reductrai_frame_reader_free(&rd);

    return n;
}


/* the decompressed object, NUL-terminated, or NULL */

static char *
object_text(const char *path)
{
    char    cmd[512], *buf;
    size_t  n;
    FILE   *p;

    snprintf(cmd, sizeof(cmd), "zstd -dcq '%s'", path);

    p = popen(cmd, "r");
    if (p == NULL) {
        return NULL;
    }

    buf = calloc(1, 1 << 20);
    n = fread(buf, 1, (1 << 20) - 1, p);
    buf[n] = '\0';

    return pclose(p) == 0 ? buf : (free(buf), NULL);
}


static void test_crc_lanes(void);


static void
test_crc(void)
{
    u_char    big[1000];
    uint32_t  one, split;
    size_t    i;

    /* the check value of CRC-32C */
    is_int(ngx_http_reductrai_crc32c(0, (const u_char *) "123456789", 9),
           0xE3069283, "crc32c(\"123456789\")");

    for (i = 0; i < sizeof(big); i++) {
        big[i] = (u_char) (i * 7 + 3);
    }

    one = ngx_http_reductrai_crc32c(0, big, sizeof(big));
    split = ngx_http_reductrai_crc32c(0, big, 333);
    split = ngx_http_reductrai_crc32c(split, big + 333, sizeof(big) - 333);

    is_int(split, one, "crc32c continues across pieces");

    test_crc_lanes();
}


/* the bit-at-a-time definition, against which the fast paths are held */
static uint32_t
crc32c_reference(uint32_t crc, const u_char *p, size_t len)
{
    int  j;

    crc = ~crc;

    while (len--) {
        crc ^= *p++;

        for (j = 0; j < 8; j++) {
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
        }
    }

    return ~crc;
}


static void
test_crc_lanes(void)
{
    u_char         *buf;
    size_t          i, k, off, bad;
    static size_t   lens[] = { 0, 1, 7, 8, 9, 255, 767, 768, 769, 1535,
                               1536, 1537, 2304, 4096, 4444, 65536 + 13 };

    buf = malloc(65536 + 64);
    if (buf == NULL) {
        abort();
    }

    for (i = 0; i < 65536 + 64; i++) {
        buf[i] = (u_char) ((i * 2654435761u) >> 13);
    }

    /* lengths around the 3-lane blocks, at every alignment mod 8 */

    bad = 0;

    for (k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        for (off = 0; off < 8; off++) {
            if (ngx_http_reductrai_crc32c(0x12345678, buf + off, lens[k])
                != crc32c_reference(0x12345678, buf + off, lens[k]))
            {
                bad++;
            }
        }
    }

    is_int(bad, 0, "crc32c equals the bitwise definition at 128 lengths "
           "and alignments");

    free(buf);
}


static void
test_reader(void)
{
    int                            fd, n;
    off_t                          valid, size;
    struct stat                    sb;
    frame_spec_t                   specs[3] = {
        { "{\"id\":\"a\",", "{\"x\":1}", 7, 0, 1000 },
        { "{\"id\":\"b\",", "{\"x\":2}", 7, 0, 2000 },
        { "{\"id\":\"c\",", "{\"x\":3}", 7, 0, 3000 }
    };
    ngx_http_reductrai_frame_rc_e  end;

    fd = new_log("reader.log", specs, 3);
    n = count_frames(fd, &end, &valid);
    is_int(n, 3, "three frames read back");
    is_int(end, NGX_HTTP_REDUCTRAI_FRAME_END, "and a clean end");

    fstat(fd, &sb);
    size = sb.st_size;

    /* a write cut short: the last frame is torn, the others stand */
    if (ftruncate(fd, size - 2) != 0) {
        exit(2);
    }

    n = count_frames(fd, &end, &valid);
    is_int(n, 2, "a torn tail keeps the frames before it");
    is_int(end, NGX_HTTP_REDUCTRAI_FRAME_TORN, "and says torn");

    /* a flipped byte in the last frame, whose extent is whole: corrupt */
    if (ftruncate(fd, size) != 0 || pwrite(fd, "9", 1, size - 3) != 1) {
        exit(2);
    }

    n = count_frames(fd, &end, &valid);
    is_int(n, 2, "a bad checksum stops the reading");
    is_int(end, NGX_HTTP_REDUCTRAI_FRAME_CORRUPT, "and says corrupt");

    /* a last frame still pending: a thread's append cut short, torn */
    if (pwrite(fd, "\1", 1, size - (32 + 10 + 7) + 14) != 1) {
        exit(2);
    }

    n = count_frames(fd, &end, &valid);
    is_int(n, 2, "a pending last frame is not read");
    is_int(end, NGX_HTTP_REDUCTRAI_FRAME_TORN, "and says torn");

    close(fd);

    fd = new_log("notalog.log", specs, 0);
    if (pwrite(fd, "NOTASPOOL", 9, 0) != 9) {
        exit(2);
    }
    n = count_frames(fd, &end, &valid);
    is_int(end, NGX_HTTP_REDUCTRAI_FRAME_CORRUPT, "a file that is no log");
    close(fd);
}


static void
test_transcode(void)
{
    int                                   fd;
    char                                  sealed[256], tmp[256], *text;
    u_char                                gz[256];
    uLongf                                gzlen;
    struct stat                           sb;
    frame_spec_t                          specs[3];
    ngx_http_reductrai_transcode_t        res;
    ngx_http_reductrai_segment_t          kept;
    ngx_http_reductrai_transcode_conf_t   conf = { 3, 1 << 20, 0, NULL };
    static const char                     body[] = "{ \"points\" : [1, 2] }";

    /* a deflate body (zlib-wrapped) as it came on the wire */
    gzlen = sizeof(gz);
    if (compress(gz, &gzlen, (const u_char *) body, sizeof(body) - 1) != Z_OK)
    {
        exit(2);
    }

    specs[0] = (frame_spec_t) { "{\"id\":\"a\",\"forwarded\":true,",
                                body, sizeof(body) - 1, 0, 1000 };
    specs[1] = (frame_spec_t) { "{\"id\":\"b\",\"forwarded\":true,",
                                (const char *) gz, gzlen,
                                NGX_HTTP_REDUCTRAI_ENC_DEFLATE, 3000 };
    specs[2] = (frame_spec_t) { "{\"id\":\"c\",\"forwarded\":false,",
                                "not json", 8, 0, 2000 };

    fd = new_log("t.log", specs, 3);

    snprintf(sealed, sizeof(sealed), "%s/t.zst", dir);
    snprintf(tmp, sizeof(tmp), "%s/.recover.t.zst", dir);

    ok(ngx_http_reductrai_transcode(fd, tmp, sealed, &conf, &res) == 0,
       "a log is transcoded");
    ok(res.written, "into an object");
    is_int(res.trailer.count, 3, "of three records");
    is_int(res.trailer.first_ms, 1000, "first_ts from the earliest");
    is_int(res.trailer.last_ms, 3000, "last_ts from the latest");
    is_int(res.decoded, 2 * (sizeof(body) - 1) + 8, "decoded body bytes");
    is_int(res.end, NGX_HTTP_REDUCTRAI_FRAME_END, "read to its end");
    ok(stat(tmp, &sb) == -1, "no temporary left");
    ok(stat(sealed, &sb) == 0 && (uint64_t) sb.st_size == res.file_bytes,
       "the object has the size reported");

    text = object_text(sealed);
    ok(text != NULL, "zstd reads the object");
    is_str(text ? text : "",
           expected_object,
           "each body decoded and printed after its head");
    free(text);

    /* a segment kept between calls (the module's seal job) gives the same */
    unlink(sealed);
    ngx_http_reductrai_segment_init(&kept);
    conf.seg = &kept;

    ok(ngx_http_reductrai_transcode(fd, tmp, sealed, &conf, &res) == 0
       && res.trailer.count == 3,
       "with a kept segment, once");
    unlink(sealed);
    ok(ngx_http_reductrai_transcode(fd, tmp, sealed, &conf, &res) == 0
       && res.trailer.count == 3,
       "and again, its context reused");
    ok(kept.cctx != NULL && kept.fd == -1,
       "the kept segment keeps its context and no file");

    text = object_text(sealed);
    is_str(text ? text : "",
           expected_object,
           "the same object");
    free(text);

    ngx_http_reductrai_segment_free(&kept);
    conf.seg = NULL;

    /* zeros after the end (a power loss before the sync): torn, not lost */
    unlink(sealed);
    fstat(fd, &sb);
    if (ftruncate(fd, sb.st_size + 4096) != 0) {
        exit(2);
    }

    ok(ngx_http_reductrai_transcode(fd, tmp, sealed, &conf, &res) == 0
       && res.trailer.count == 3
       && res.end == NGX_HTTP_REDUCTRAI_FRAME_TORN,
       "a tail of zeros is a torn tail: all three kept");

    /* a bad checksum in the middle: the first record, the log is corrupt */
    unlink(sealed);
    if (ftruncate(fd, sb.st_size) != 0
        || pwrite(fd, "X", 1, NGX_HTTP_REDUCTRAI_LOG_HEADER
                              + NGX_HTTP_REDUCTRAI_FRAME_HEADER
                              + strlen(specs[0].head) + specs[0].body_len
                              + NGX_HTTP_REDUCTRAI_FRAME_HEADER
                              + strlen(specs[1].head) + 2)
           != 1)
    {
        exit(2);
    }

    ok(ngx_http_reductrai_transcode(fd, tmp, sealed, &conf, &res) == 0,
       "a corrupt log is transcoded as far as it reads");
    is_int(res.trailer.count, 1, "one record before the bad one");
    is_int(res.end, NGX_HTTP_REDUCTRAI_FRAME_CORRUPT, "and says corrupt");
    close(fd);

    /* an empty log still becomes an object: no sequence number goes */
    unlink(sealed);
    fd = new_log("empty.log", specs, 0);
    if (ftruncate(fd, 0) != 0) {
        exit(2);
    }

    ok(ngx_http_reductrai_transcode(fd, tmp, sealed, &conf, &res) == 0
       && res.written && res.trailer.count == 0,
       "an empty log becomes an empty object");
    close(fd);

    /* garbage is not: nothing is written, the caller keeps it aside */
    unlink(sealed);
    fd = new_log("garbage.log", specs, 0);
    if (pwrite(fd, "garbage, not a spool log", 24, 0) != 24) {
        exit(2);
    }

    ok(ngx_http_reductrai_transcode(fd, tmp, sealed, &conf, &res) == 0
       && !res.written && res.end == NGX_HTTP_REDUCTRAI_FRAME_CORRUPT,
       "garbage makes no object and says corrupt");
    ok(stat(sealed, &sb) == -1 && stat(tmp, &sb) == -1, "and leaves no file");
    close(fd);
}


int
main(void)
{
    char  cmd[64];

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }

    test_crc();
    test_reader();
    test_transcode();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);

    if (system(cmd) != 0) {
        /* a leftover directory in /tmp is all it costs */
    }

    return done_testing();
}
