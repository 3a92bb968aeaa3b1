
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 */


#include "ngx_http_reductrai_frame.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#if (defined __x86_64__ && defined __GNUC__)
#include <nmmintrin.h>
#include <pthread.h>
#define NGX_HTTP_REDUCTRAI_CRC32C_SSE42  1

/*
 * The crc32 instruction takes 3 cycles and can start each cycle: three
 * lanes of a block run at once and are joined by shifting the register
 * over a lane of zeros (a linear map, kept as four byte tables).
 */
#define NGX_HTTP_REDUCTRAI_CRC32C_LANE   256
#endif


static uint32_t ngx_http_reductrai_crc32c_soft(uint32_t crc, const u_char *p,
    size_t len);
#if (NGX_HTTP_REDUCTRAI_CRC32C_SSE42)
static uint32_t ngx_http_reductrai_crc32c_sse42(uint32_t crc, const u_char *p,
    size_t len);
static void ngx_http_reductrai_crc32c_shift_init(void);
static inline uint32_t ngx_http_reductrai_crc32c_shift(uint32_t k);
#endif
static void ngx_http_reductrai_frame_fields(u_char *buf,
    const ngx_http_reductrai_frame_t *f);
static ngx_http_reductrai_frame_rc_e ngx_http_reductrai_frame_take(
    ngx_http_reductrai_frame_reader_t *rd, size_t len, const u_char **p);


static uint32_t  ngx_http_reductrai_crc32c_table[256];
static int       ngx_http_reductrai_crc32c_ready;
#if (NGX_HTTP_REDUCTRAI_CRC32C_SSE42)
static int       ngx_http_reductrai_crc32c_hw = -1;
/* the register after NGX_HTTP_REDUCTRAI_CRC32C_LANE zero bytes, by byte */
static uint32_t  ngx_http_reductrai_crc32c_lane[4][256];
static pthread_once_t  ngx_http_reductrai_crc32c_once = PTHREAD_ONCE_INIT;
#endif


uint32_t
ngx_http_reductrai_crc32c(uint32_t crc, const u_char *p, size_t len)
{
#if (NGX_HTTP_REDUCTRAI_CRC32C_SSE42)

    if (ngx_http_reductrai_crc32c_hw == -1) {
        ngx_http_reductrai_crc32c_hw = __builtin_cpu_supports("sse4.2");
    }

    if (ngx_http_reductrai_crc32c_hw) {
        return ngx_http_reductrai_crc32c_sse42(crc, p, len);
    }

#endif

    return ngx_http_reductrai_crc32c_soft(crc, p, len);
}


static uint32_t
ngx_http_reductrai_crc32c_soft(uint32_t crc, const u_char *p, size_t len)
{
    uint32_t  c, k;
    unsigned  i, j;

    if (!ngx_http_reductrai_crc32c_ready) {
        /* the reflected Castagnoli polynomial; races write equal values */
        for (i = 0; i < 256; i++) {
            c = i;

            for (j = 0; j < 8; j++) {
                c = (c & 1) ? (c >> 1) ^ 0x82F63B78 : c >> 1;
            }

            ngx_http_reductrai_crc32c_table[i] = c;
        }

        ngx_http_reductrai_crc32c_ready = 1;
    }

    k = ~crc;

    while (len--) {
        k = ngx_http_reductrai_crc32c_table[(k ^ *p++) & 0xff] ^ (k >> 8);
    }

    return ~k;
}


#if (NGX_HTTP_REDUCTRAI_CRC32C_SSE42)

__attribute__((target("sse4.2")))
static uint32_t
ngx_http_reductrai_crc32c_sse42(uint32_t crc, const u_char *p, size_t len)
{
    size_t         i;
    uint64_t       k, k1, k2, v;
    const u_char  *p1, *p2;

    k = (uint32_t) ~crc;

    if (len >= 3 * NGX_HTTP_REDUCTRAI_CRC32C_LANE) {
        (void) pthread_once(&ngx_http_reductrai_crc32c_once,
                            ngx_http_reductrai_crc32c_shift_init);
    }

    while (len >= 3 * NGX_HTTP_REDUCTRAI_CRC32C_LANE) {
        p1 = p + NGX_HTTP_REDUCTRAI_CRC32C_LANE;
        p2 = p1 + NGX_HTTP_REDUCTRAI_CRC32C_LANE;
        k1 = 0;
        k2 = 0;

        for (i = 0; i < NGX_HTTP_REDUCTRAI_CRC32C_LANE; i += 8) {
            memcpy(&v, p + i, 8);
            k = _mm_crc32_u64(k, v);
            memcpy(&v, p1 + i, 8);
            k1 = _mm_crc32_u64(k1, v);
            memcpy(&v, p2 + i, 8);
            k2 = _mm_crc32_u64(k2, v);
        }

        /* the register is linear: f(k, A B) = f(k, A 0..0) ^ f(0, B) */
        k = ngx_http_reductrai_crc32c_shift((uint32_t) k) ^ k1;
        k = ngx_http_reductrai_crc32c_shift((uint32_t) k) ^ k2;

        p += 3 * NGX_HTTP_REDUCTRAI_CRC32C_LANE;
        len -= 3 * NGX_HTTP_REDUCTRAI_CRC32C_LANE;
    }

    while (len >= 8) {
        memcpy(&v, p, 8);
        k = _mm_crc32_u64(k, v);
        p += 8;
        len -= 8;
    }

    while (len--) {
        k = _mm_crc32_u8((uint32_t) k, *p++);
    }

    return ~(uint32_t) k;
}


__attribute__((target("sse4.2")))
static void
ngx_http_reductrai_crc32c_shift_init(void)
{
    size_t    i;
    unsigned  bit, b, j;
    uint64_t  k;
    uint32_t  one[32];

    /* the image of each bit of the register over a lane of zeros */

    for (bit = 0; bit < 32; bit++) {
        k = (uint32_t) 1 << bit;

        for (i = 0; i < NGX_HTTP_REDUCTRAI_CRC32C_LANE; i += 8) {
            k = _mm_crc32_u64(k, 0);
        }

        one[bit] = (uint32_t) k;
    }

    for (j = 0; j < 4; j++) {
        for (b = 0; b < 256; b++) {
            k = 0;

            for (bit = 0; bit < 8; bit++) {
                if (b & (1u << bit)) {
                    k ^= one[j * 8 + bit];
                }
            }

            ngx_http_reductrai_crc32c_lane[j][b] = (uint32_t) k;
        }
    }
}


static inline uint32_t
ngx_http_reductrai_crc32c_shift(uint32_t k)
{
    return ngx_http_reductrai_crc32c_lane[0][k & 0xff]
           ^ ngx_http_reductrai_crc32c_lane[1][(k >> 8) & 0xff]
           ^ ngx_http_reductrai_crc32c_lane[2][(k >> 16) & 0xff]
           ^ ngx_http_reductrai_crc32c_lane[3][k >> 24];
}

#endif


void
ngx_http_reductrai_log_header(u_char *buf)
{
    memcpy(buf, NGX_HTTP_REDUCTRAI_LOG_MAGIC, 8);
    ngx_http_reductrai_put_le32(buf + 8, NGX_HTTP_REDUCTRAI_LOG_VERSION);
    ngx_http_reductrai_put_le32(buf + 12, 0);
}


uint32_t
ngx_http_reductrai_frame_crc_start(const ngx_http_reductrai_frame_t *f)
{
    u_char  buf[NGX_HTTP_REDUCTRAI_FRAME_HEADER];

    ngx_http_reductrai_frame_fields(buf, f);

    return ngx_http_reductrai_crc32c(0, buf + 8,
                                     NGX_HTTP_REDUCTRAI_FRAME_HEADER - 8);
}


void
ngx_http_reductrai_frame_header(u_char *buf,
    const ngx_http_reductrai_frame_t *f, uint32_t data_crc)
{
    ngx_http_reductrai_frame_fields(buf, f);
    ngx_http_reductrai_put_le32(buf + 4, data_crc);
}


static void
ngx_http_reductrai_frame_fields(u_char *buf,
    const ngx_http_reductrai_frame_t *f)
{
    ngx_http_reductrai_put_le32(buf, NGX_HTTP_REDUCTRAI_FRAME_MAGIC);
    ngx_http_reductrai_put_le32(buf + 4, 0);
    ngx_http_reductrai_put_le32(buf + 8, f->head_len);
    buf[12] = (u_char) f->coding;
    buf[13] = (u_char) f->format;
    buf[14] = (u_char) (f->pending ? 1 : 0);
    buf[15] = 0;
    ngx_http_reductrai_put_le64(buf + 16, f->body_len);
    ngx_http_reductrai_put_le64(buf + 24, (uint64_t) f->ts_ms);
}


int
ngx_http_reductrai_frame_parse(const u_char *buf,
    ngx_http_reductrai_frame_t *f)
{
    if (ngx_http_reductrai_get_le32(buf) != NGX_HTTP_REDUCTRAI_FRAME_MAGIC
        || buf[14] > 1 || buf[15] != 0)
    {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    f->crc = ngx_http_reductrai_get_le32(buf + 4);
    f->head_len = ngx_http_reductrai_get_le32(buf + 8);
    f->coding = buf[12];
    f->format = buf[13];
    f->pending = buf[14];
    f->body_len = ngx_http_reductrai_get_le64(buf + 16);
    f->ts_ms = (int64_t) ngx_http_reductrai_get_le64(buf + 24);

    if (f->head_len == 0 || f->head_len > NGX_HTTP_REDUCTRAI_FRAME_HEAD_MAX
        || f->body_len > (uint64_t) INT64_MAX / 2)
    {
        return NGX_HTTP_REDUCTRAI_ERROR;
    }

    return NGX_HTTP_REDUCTRAI_OK;
}


ngx_http_reductrai_frame_rc_e
ngx_http_reductrai_frame_reader_open(ngx_http_reductrai_frame_reader_t *rd,
    int fd)
{
    struct stat                    sb;
    const u_char                  *p;
    ngx_http_reductrai_frame_rc_e  rc;

    memset(rd, 0, sizeof(ngx_http_reductrai_frame_reader_t));
    rd->fd = fd;

    if (fstat(fd, &sb) == -1) {
        return NGX_HTTP_REDUCTRAI_FRAME_IO_ERROR;
    }

    rd->size = sb.st_size;

    if (rd->size == 0) {
        return NGX_HTTP_REDUCTRAI_FRAME_END;
    }

    rc = ngx_http_reductrai_frame_take(rd, NGX_HTTP_REDUCTRAI_LOG_HEADER, &p);
    if (rc != NGX_HTTP_REDUCTRAI_FRAME_OK) {
        return rc;
    }

    if (memcmp(p, NGX_HTTP_REDUCTRAI_LOG_MAGIC, 8) != 0
        || ngx_http_reductrai_get_le32(p + 8)
           != NGX_HTTP_REDUCTRAI_LOG_VERSION)
    {
        return NGX_HTTP_REDUCTRAI_FRAME_CORRUPT;
    }

    return NGX_HTTP_REDUCTRAI_FRAME_OK;
}


ngx_http_reductrai_frame_rc_e
ngx_http_reductrai_frame_next(ngx_http_reductrai_frame_reader_t *rd)
{
    u_char                         hdr[NGX_HTTP_REDUCTRAI_FRAME_HEADER];
    off_t                          start;
    size_t                         len;
    uint32_t                       crc;
    const u_char                  *p;
    ngx_http_reductrai_frame_t    *f;
    ngx_http_reductrai_frame_rc_e  rc;

    f = &rd->frame;
    start = rd->offset;

    if (rd->offset == rd->size) {
        return NGX_HTTP_REDUCTRAI_FRAME_END;
    }

    rc = ngx_http_reductrai_frame_take(rd, sizeof(hdr), &p);
    if (rc != NGX_HTTP_REDUCTRAI_FRAME_OK) {
        return rc;
    }

    /* a copy: taking the rest may move the window */
    memcpy(hdr, p, sizeof(hdr));

    if (ngx_http_reductrai_frame_parse(hdr, f) != NGX_HTTP_REDUCTRAI_OK) {
        rd->offset = start;
        return NGX_HTTP_REDUCTRAI_FRAME_CORRUPT;
    }

    /* a length past the end of the file: the write was cut short */

    if ((uint64_t) (rd->size - rd->offset) < f->head_len
        || (uint64_t) (rd->size - rd->offset) - f->head_len < f->body_len)
    {
        rd->offset = start;
        return NGX_HTTP_REDUCTRAI_FRAME_TORN;
    }

    len = f->head_len + (size_t) f->body_len;

    if (f->pending) {
        /* an append cut short; nothing may follow it */
        rd->offset = start;
        return (uint64_t) (rd->size - start)
               == NGX_HTTP_REDUCTRAI_FRAME_HEADER + (uint64_t) len
               ? NGX_HTTP_REDUCTRAI_FRAME_TORN
               : NGX_HTTP_REDUCTRAI_FRAME_CORRUPT;
    }

    rc = ngx_http_reductrai_frame_take(rd, len, &p);
    if (rc != NGX_HTTP_REDUCTRAI_FRAME_OK) {
        rd->offset = start;
        return rc;
    }

    crc = ngx_http_reductrai_crc32c(0, hdr + 8, sizeof(hdr) - 8);
    crc = ngx_http_reductrai_crc32c(crc, p, len);

    if (crc != f->crc) {
        rd->offset = start;
        return NGX_HTTP_REDUCTRAI_FRAME_CORRUPT;
    }

    rd->head = p;
    rd->body = p + f->head_len;

    return NGX_HTTP_REDUCTRAI_FRAME_OK;
}


void
ngx_http_reductrai_frame_reader_free(ngx_http_reductrai_frame_reader_t *rd)
{
    ngx_http_reductrai_buf_free(&rd->buf);
}


/*
 * The next len bytes of the file, at *p: from the window when they are in
 * it, else the window is read anew from there, a read-ahead at a time, so
 * that a log of small records costs a read per read-ahead, not two per
 * record.  TORN when the file ends first.
 */

static ngx_http_reductrai_frame_rc_e
ngx_http_reductrai_frame_take(ngx_http_reductrai_frame_reader_t *rd,
    size_t len, const u_char **p)
{
    size_t    want, got;
    ssize_t   n;

    if (rd->size - rd->offset < (off_t) len) {
        return NGX_HTTP_REDUCTRAI_FRAME_TORN;
    }

    if (rd->offset < rd->window_off
        || rd->offset + (off_t) len > rd->window_off + (off_t) rd->buf.len)
    {
        want = len > NGX_HTTP_REDUCTRAI_READ_AHEAD
               ? len : NGX_HTTP_REDUCTRAI_READ_AHEAD;

        if ((off_t) want > rd->size - rd->offset) {
            want = (size_t) (rd->size - rd->offset);
        }

        rd->buf.len = 0;

        if (ngx_http_reductrai_buf_reserve(&rd->buf, want)
            != NGX_HTTP_REDUCTRAI_OK)
        {
            return NGX_HTTP_REDUCTRAI_FRAME_IO_ERROR;
        }

        for (got = 0; got < want; got += n) {
            n = pread(rd->fd, rd->buf.data + got, want - got,
                      rd->offset + got);

            if (n == -1 && errno == EINTR) {
                n = 0;
                continue;
            }

            if (n == -1) {
                return NGX_HTTP_REDUCTRAI_FRAME_IO_ERROR;
            }

            if (n == 0) {
                /* truncated under us */
                return NGX_HTTP_REDUCTRAI_FRAME_TORN;
            }
        }

        rd->buf.len = want;
        rd->window_off = rd->offset;
    }

    *p = rd->buf.data + (rd->offset - rd->window_off);
    rd->offset += len;

    return NGX_HTTP_REDUCTRAI_FRAME_OK;
}

