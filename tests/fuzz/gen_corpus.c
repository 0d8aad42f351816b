// SPDX-License-Identifier: MIT
/*
 * gen_corpus.c — writes the seed corpus of fuzz_frame into a directory:
 *   fuzz_gen_corpus tests/fuzz/corpus/frame
 * Valid frames (with and without crc and payload, every flag, 16 fds, extreme values)
 * and broken ones (one bad field each, a bad crc, short and truncated inputs). The files
 * are committed; rerun this only to change the seed set.
 */
#include "core/frame.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

/* Write header h followed by plen bytes of payload; `cut` drops bytes from the end. */
static void put(const char *name, const uint8_t *h, const uint8_t *payload, size_t plen, size_t cut)
{
    uint8_t buf[FERRY__FRAME_HDR + 256];
    char path[4096];
    size_t n = FERRY__FRAME_HDR + plen - cut;
    memcpy(buf, h, FERRY__FRAME_HDR);
    if (plen) memcpy(buf + FERRY__FRAME_HDR, payload, plen);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(buf, 1, n, fp) != n || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
}

/* Encode f (sealing the crc when FERRY__F_CRC is set), optionally change one byte of the
 * header, and write it with its payload (none when payload is NULL). */
static void frame(const char *name, ferry__frame f, const uint8_t *payload, int off, uint8_t v,
                  size_t cut)
{
    uint8_t h[FERRY__FRAME_HDR];
    if (f.flags & FERRY__F_CRC) f.crc = ferry__frame_crc(&f, payload);
    ferry__frame_encode(&f, h);
    if (off >= 0) h[off] = v;
    put(name, h, payload, payload ? f.len : 0, cut);
}

int main(int argc, char **argv)
{
    static const uint8_t text[] = "hello, ferry: a payload of some bytes";
    uint8_t bin[200];
    for (size_t i = 0; i < sizeof bin; i++) bin[i] = (uint8_t)(i * 37 + 11);
    const uint32_t tl = sizeof text - 1;
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];

    ferry__frame empty = {.type = 0, .seq = 1};
    ferry__frame msg = {.type = 7, .seq = 2, .len = tl};
    ferry__frame crc_empty = {.flags = FERRY__F_CRC, .type = 1, .seq = 3};
    ferry__frame crc_msg = {.flags = FERRY__F_CRC, .nfds = 2, .type = 42, .seq = 4, .len = tl};
    ferry__frame crc_bin = {.flags = FERRY__F_CRC, .type = 9, .seq = 5, .len = sizeof bin};
    ferry__frame wrap = {.flags = FERRY__F_WRAP, .seq = 6, .len = 64};
    ferry__frame jump = {.flags = FERRY__F_JUMP | FERRY__F_CRC, .seq = 7};
    ferry__frame fds = {.nfds = 16, .type = 3, .seq = 8};
    ferry__frame big = {.type = INT64_MAX, .seq = UINT64_MAX, .len = 1u << 20};

    frame("valid_empty", empty, NULL, -1, 0, 0);
    frame("valid_payload", msg, text, -1, 0, 0);
    frame("valid_crc_empty", crc_empty, NULL, -1, 0, 0);
    frame("valid_crc_payload", crc_msg, text, -1, 0, 0);
    frame("valid_crc_binary", crc_bin, bin, -1, 0, 0);
    frame("valid_wrap", wrap, bin, -1, 0, 0);
    frame("valid_jump_crc", jump, NULL, -1, 0, 0);
    frame("valid_16fds", fds, NULL, -1, 0, 0);
    frame("valid_header_only_max", big, NULL, -1, 0, 0); /* payload absent: no crc check */
    frame("bad_magic", crc_msg, text, 0, 'X', 0);
    frame("bad_version", msg, text, 4, 2, 0);
    frame("bad_reserved", msg, text, 7, 1, 0);
    frame("bad_flags", msg, text, 5, 0x08, 0);
    frame("bad_nfds17", msg, text, 6, 17, 0);
    frame("bad_len", msg, text, 26, 0x10, 0); /* len > 1 MiB */
    frame("bad_type_negative", msg, text, 15, 0x80, 0);
    frame("bad_crc", crc_msg, text, 28, 0x00, 0);
    frame("bad_crc_payload", crc_msg, text, 29, 0x55, 0);
    frame("truncated_payload", crc_bin, bin, -1, 0, 100);
    frame("short_header", crc_msg, text, -1, 0, tl + 10);
    return 0;
}
