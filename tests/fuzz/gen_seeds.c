// SPDX-License-Identifier: MIT
/*
 * gen_seeds.c — writes the seed corpora of fuzz_stream (DIR/stream) and fuzz_adopt
 * (DIR/adopt): `fuzz_gen_seeds tests/fuzz/corpus`. Each seed is one input in the format
 * its harness's header comment describes; together they reach every mode of each
 * harness (raw and framed streams, pipe and socket, crc, large and cut frames; each
 * object kind, image patches, raw images, broken carriers), so that a 60 s run starts
 * from deep states instead of rediscovering the formats.
 */
#define _GNU_SOURCE
#include "core/frame.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *root;
static uint8_t buf[1 << 20];
static size_t len;

static void add(const void *p, size_t n)
{
    memcpy(buf + len, p, n);
    len += n;
}

static void add8(uint8_t v)
{
    add(&v, 1);
}

static void add16(uint16_t v)
{
    add(&v, 2);
}

static void add32(uint32_t v)
{
    add(&v, 4);
}

static void save(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, dir);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    len = 0;
}

/* ------------------------------------------------------------------ fuzz_stream */

/* A framed-mode record: header bytes the harness fixes up as `fix` says, then payload
 * bytes (the harness pads to len with its pattern). */
static void rec(uint8_t fix, uint8_t flags, int64_t type, uint32_t plen, const char *payload)
{
    uint8_t h[32] = {0};
    h[5] = flags;
    h[7] = fix;
    memcpy(h + 8, &type, 8);
    memcpy(h + 24, &plen, 4);
    add(h, 32);
    if (payload) add(payload, strlen(payload));
}

/* The same, with the nfds byte set (kept when fix has bit 1). */
static void rec_nfds(uint8_t fix, uint8_t flags, int64_t type, uint32_t plen, const char *payload,
                     uint8_t nfds)
{
    size_t at = len;
    rec(fix, flags, type, plen, payload);
    buf[at + 6] = nfds;
}

/* A raw-mode frame, encoded here. */
static void raw_frame(uint8_t flags, int64_t type, uint64_t seq, const void *p, uint32_t n)
{
    ferry__frame f = {.flags = flags, .type = type, .seq = seq, .len = n};
    if (flags & FERRY__F_CRC) f.crc = ferry__frame_crc(&f, p);
    uint8_t h[32];
    ferry__frame_encode(&f, h);
    add(h, 32);
    add(p, n);
}

static void stream_head(uint8_t ctl, uint8_t max, uint16_t seed)
{
    add8(ctl);
    add8(max);
    add16(seed);
}

static void stream_seeds(void)
{
    /* framed, pipe, max 4096: three small messages of types 1, 2, 3 */
    stream_head(1, 3, 1);
    rec(0, 0, 1, 5, "hello");
    rec(0, 0, 2, 0, NULL);
    rec(0, 0, 3, 11, "third frame");
    save("stream", "framed_small");

    /* the same with crc, over a socket, ferry_chan_poll_fd armed */
    stream_head(1 | 2 | 4 | 8, 3, 2);
    rec(0, 1, 7, 4, "abcd");
    rec(0, 1, 3, 4, "efgh");
    rec(0, 1, 7, 4, "ijkl");
    save("stream", "framed_crc_sock");

    /* frames larger than the 64 KiB read buffer (max 200000), padded by the harness */
    stream_head(1, 6, 3);
    rec(0, 0, 5, 100000, "big");
    rec(0, 0, 6, 10, "small one!");
    rec(0, 0, 5, 150000, NULL);
    save("stream", "framed_large");

    /* a crc that does not match: -EBADMSG after the first message */
    stream_head(1 | 2, 3, 4);
    rec(0, 1, 1, 3, "one");
    rec(32, 1, 1, 3, "two");
    rec(0, 1, 1, 5, "three");
    save("stream", "framed_bad_crc");

    /* a wrong seq, and a frame cut short */
    stream_head(1, 3, 5);
    rec(0, 0, 1, 3, "one");
    rec(64, 0, 1, 3, "two");
    save("stream", "framed_bad_seq");
    stream_head(1, 3, 6);
    rec(0, 0, 1, 3, "one");
    rec(128, 0, 1, 1000, "cut");
    save("stream", "framed_cut");

    /* a frame longer than max_msg (max 16) */
    stream_head(1, 1, 7);
    rec(0, 0, 1, 3, "one");
    rec(16, 0, 1, 17, "seventeen bytes!!");
    save("stream", "framed_too_long");

    /* raw: a valid HELLO (max 4096, crc), two frames, then garbage */
    stream_head(0, 0, 8);
    uint32_t hello[2] = {4096, 2};
    raw_frame(FERRY__F_CRC, 0, 0, hello, 8);
    raw_frame(FERRY__F_CRC, 9, 1, "raw", 3);
    raw_frame(FERRY__F_CRC, 2, 2, "frame two", 9);
    add("garbage garbage garbage garbage garbage", 39);
    save("stream", "raw_hello_frames");

    /* raw: a HELLO only, without crc */
    stream_head(4, 0, 9);
    uint32_t hello2[2] = {65536, 0};
    raw_frame(0, 0, 0, hello2, 8);
    save("stream", "raw_hello_only");

    /* packet mode (a unix channel): framed, then with descriptors on the messages */
    stream_head(1 | 16, 3, 11);
    rec(0, 0, 1, 5, "hello");
    rec(0, 0, 2, 3, "two");
    rec(128, 0, 3, 100, "cut packet");
    save("stream", "packet_framed");
    stream_head(1 | 16 | 32, 3, 12);
    rec_nfds(2, 0, 1, 4, "fds!", 2);
    rec_nfds(2, 0, 2, 4, "none", 0);
    rec_nfds(2, 0, 3, 4, "one!", 1);
    rec_nfds(2, 0, 3, 4, "bad!", 5);
    save("stream", "packet_fds");
    stream_head(16, 0, 13);
    raw_frame(0, 0, 0, hello2, 8);
    raw_frame(0, 4, 1, "raw packet", 10);
    add("short", 5);
    save("stream", "packet_raw");

    /* raw: a cut HELLO */
    stream_head(0, 0, 10);
    add("FRY1\1\0\0\0", 8);
    save("stream", "raw_cut_hello");
}

/* ------------------------------------------------------------------ fuzz_adopt */

/* See fuzz_adopt.c for the format. */
static void adopt_head(uint8_t kind, uint8_t mode, uint8_t shape, uint8_t pre)
{
    add8(kind);
    add8(mode);
    add8(shape);
    add8(pre);
}

/* A patch: at offset off (from the image's start, modulo its size), n bytes. */
static void patch(uint32_t off, const void *p, uint8_t n)
{
    add8(0); /* op 0 (mod 16): patch */
    add32(off);
    add8(n);
    add(p, n);
}

static void op(uint8_t o, uint8_t arg)
{
    add8(o);
    add8(arg);
}

static void adopt_seeds(void)
{
    static const char *kinds[3] = {"mailbox", "event", "bcast"};
    char name[64];
    for (uint8_t k = 0; k < 3; k++) {
        /* a real object with a few messages, adopted as it is, then used */
        adopt_head(k, 0, 1, 3);
        for (uint8_t o = 1; o < 16; o++) op(o, (uint8_t)(o * 17));
        snprintf(name, sizeof name, "%s_plain", kinds[k]);
        save("adopt", name);

        /* the same with a few words scribbled before the adopt and between calls */
        adopt_head(k, 0, 2, 5);
        uint32_t big = 0xffffffffu, small = 3;
        uint64_t huge = UINT64_MAX - 5;
        patch(16, &big, 4);
        op(1, 1);
        op(2, 2);
        patch(64, &huge, 8);
        op(3, 3);
        patch(128, &huge, 8);
        op(4, 4);
        patch(4096 + 40, &small, 4);
        op(2, 5);
        op(5, 6);
        snprintf(name, sizeof name, "%s_scribbled", kinds[k]);
        save("adopt", name);

        /* a raw image: a valid object header, the rest from the input */
        adopt_head(k, 1, 0, 0);
        uint8_t img[512];
        for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)(i * 7);
        add(img, sizeof img);
        snprintf(name, sizeof name, "%s_raw", kinds[k]);
        save("adopt", name);

        /* a broadcast with gaps (ferry_bcast_skip, op 14: n = arg >> 3): a lossless and a
         * drop-oldest subscriber on a 4-slot ring, gaps taken and gaps dropped */
        if (k == 2) {
            adopt_head(k, 0, 1, 2);
            op(2, 0);       /* subscriber 0: lossless */
            op(2, 5);       /* subscriber 1: drop-oldest */
            op(1, 8);       /* publish */
            op(14, 3 << 3); /* a gap of 3 */
            op(1, 16);      /* publish */
            op(3, 8);       /* 0 receives the first */
            op(3, 8);       /* and the second over the gap */
            op(14, 1 << 3); /* a gap of 1 */
            op(1, 24);      /* 4 records past 1's start: */
            op(1, 32);      /* the ring drops 1's oldest (the gap of 3 too) */
            op(3, 8);
            op(3, 8);
            op(3, 8);  /* 0 caught up: its lost is the 4 skipped */
            op(4, 1);  /* 1 peeks */
            op(4, 1);  /* and releases */
            op(15, 1); /* 1 receives the rest */
            op(15, 1);
            op(15, 1);
            op(14, 0); /* n = 0: nothing */
            op(8, 1);
            op(13, 0x5a);   /* the end */
            op(14, 2 << 3); /* -EPIPE */
            op(15, 0);
            snprintf(name, sizeof name, "%s_gaps", kinds[k]);
            save("adopt", name);
        }

        /* broken carriers and memfds (modes 2..5) */
        for (uint8_t m = 2; m < 6; m++) {
            adopt_head(k, m, 0, 1);
            op(1, 0);
            snprintf(name, sizeof name, "%s_carrier%u", kinds[k], m);
            save("adopt", name);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR (writes CORPUS_DIR/stream and /adopt)\n", argv[0]);
        return 2;
    }
    root = argv[1];
    stream_seeds();
    adopt_seeds();
    return 0;
}
