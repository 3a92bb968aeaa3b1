
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * libFuzzer target for the spool-log reader that recovery and the seal
 * job run (ngx_http_reductrai_frame.c), and the record encoder it feeds:
 * the input is a spool log, as a crash, a disk or an attacker with write
 * access to the spool may leave it:
 *
 *   make fuzz FUZZ_TARGETS=fuzz_spool_log   (t/fuzz.mk)
 *
 * Checks: no access out of bounds; frames are read in order and each one
 * read lies inside the file; the reading ends with a verdict (end, torn or
 * corrupt), never an I/O error on a readable file; every frame read has a
 * checksum that holds (read again, the same frame gives the same bytes);
 * record_body() takes every frame's body.  Seeds, in
 * t/fuzz/corpus/fuzz_spool_log, are logs the tests wrote.
 */


#include "ngx_http_reductrai_frame.h"
#include "ngx_http_reductrai_record.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>


static int fuzz_sink(void *data, const u_char *p, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                                  fd;
    off_t                                last;
    size_t                               decoded;
    uint32_t                             crc;
    ngx_http_reductrai_frame_rc_e        rc;
    ngx_http_reductrai_frame_reader_t    rd;
    ngx_http_reductrai_record_encoder_t  enc;

    fd = memfd_create("fuzz-spool-log", 0);
    if (fd == -1) {
        return 0;
    }

    if (size && write(fd, data, size) != (ssize_t) size) {
        close(fd);
        return 0;
    }

    memset(&enc, 0, sizeof(enc));
    last = 0;

    rc = ngx_http_reductrai_frame_reader_open(&rd, fd);

    while (rc == NGX_HTTP_REDUCTRAI_FRAME_OK) {
        rc = ngx_http_reductrai_frame_next(&rd);

        if (rc != NGX_HTTP_REDUCTRAI_FRAME_OK) {
            break;
        }

        fuzz_assert(rd.offset > last && rd.offset <= (off_t) size);
        fuzz_assert(rd.body == rd.head + rd.frame.head_len);
        fuzz_assert(rd.head >= rd.buf.data
                    && rd.body + rd.frame.body_len
                       <= rd.buf.data + rd.buf.len);
        fuzz_assert(!rd.frame.pending);

        /* the checksum that held, over what was read */
        crc = ngx_http_reductrai_frame_crc_start(&rd.frame);
        crc = ngx_http_reductrai_crc32c(crc, rd.head,
                                        rd.frame.head_len
                                        + rd.frame.body_len);
        fuzz_assert(crc == rd.frame.crc);

        fuzz_assert(ngx_http_reductrai_record_body(&enc,
                                (ngx_http_reductrai_encoding_e)
                                    (rd.frame.coding % 6),
                                rd.frame.format, rd.body, (size_t) rd.frame.body_len,
                                1024 * 1024, fuzz_sink, NULL, &decoded)
                    == 0);

        last = rd.offset;
    }

    fuzz_assert(rc == NGX_HTTP_REDUCTRAI_FRAME_END
                || rc == NGX_HTTP_REDUCTRAI_FRAME_TORN
                || rc == NGX_HTTP_REDUCTRAI_FRAME_CORRUPT);

    ngx_http_reductrai_frame_reader_free(&rd);
    ngx_http_reductrai_record_encoder_free(&enc);
    close(fd);

    return 0;
}


static int
fuzz_sink(void *data, const u_char *p, size_t len)
{
    (void) data;
    (void) p;
    (void) len;

    return 0;
}
