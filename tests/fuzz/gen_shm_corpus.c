// SPDX-License-Identifier: MIT
/*
 * gen_shm_corpus.c — writes the seed corpora of fuzz_shm_ring and fuzz_shm_setup:
 *   fuzz_gen_shm_corpus tests/fuzz/corpus/shm_ring tests/fuzz/corpus/shm_setup
 * Ring seeds are rings a real producer wrote (plain, checksummed, wrapped, with fds, a
 * rendezvous record), a JUMP to a waiting SEG, and a few broken ones; setup seeds are a
 * good handshake and ones refused for each reason. The files are committed; rerun this
 * only to change the seed set.
 */
#define _GNU_SOURCE
#include "fuzz_shm_ring.h"

#include "ferry/ferry.h"
#include "shm/ring.h"
#include "transport/shm_chan.h"
#include "transport/shm_link.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(int line)
{
    fprintf(stderr, "gen_shm_corpus: failed at line %d\n", line);
    exit(1);
}

static void put(const char *dir, const char *name, const void *a, size_t an, const void *b,
                size_t bn)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(a, 1, an, fp) != an || (bn && fwrite(b, 1, bn, fp) != bn) ||
        fclose(fp) != 0) {
        perror(path);
        die(__LINE__);
    }
}

/* A ring seed from what a real producer wrote: send `count` messages of `len` bytes
 * (each with nfds fds) after `skip` that the consumer already took. */
static void ring_seed(const char *dir, const char *name, uint32_t cap, uint32_t flags, int skip,
                      int count, size_t len, unsigned nfds)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.ring_bytes = 4096;
    o.capacity = cap == 0 ? FERRY_CAP_RING : cap; /* a rendezvous record is forged below */
    o.flags = flags;
    ferry_chan *a, *b;
    if (ferry_pair(&o, &a, &b) != 0) die(__LINE__);
    char buf[2048];
    memset(buf, 'p', sizeof buf);
    for (int i = 0; i < skip; i++) {
        if (ferry_send(a, buf, len, FERRY_NOW) != 0) die(__LINE__);
        if (ferry_recv(b, buf, sizeof buf, FERRY_NOW) < 0) die(__LINE__);
    }
    shm_chan *rc = (shm_chan *)b;
    fuzz_ring_hdr h = {.ring_log = 0,
                       .mode = (uint8_t)((flags & FERRY_CHECKSUM ? 1 : 0) | (cap == 0 ? 2 : 0)),
                       .max_skipped = 64,
                       .nfds = (uint8_t)nfds,
                       .fds_seq = 0,
                       .filter_kind = 1,
                       .filter_type = 7,
                       .scan = rc->rx.scan,
                       .expect = rc->rx.expect};
    for (int i = 0; i < count; i++) {
        ferry_msg m = {.type = i, .data = buf, .len = len, .nfds = i == 0 ? nfds : 0};
        for (unsigned k = 0; k < m.nfds; k++) m.fds[k] = 0;
        int s = ferry_sendmsg(a, &m, FERRY_NOW);
        if (s != 0) {
            fprintf(stderr, "%s: send %d: %d\n", name, i, s);
            die(__LINE__);
        }
    }
    shm_tx *t = &((shm_chan *)a)->tx;
    if (cap == 0) /* a producer that withdrew its first record */
        atomic_fetch_or(&((ferry__rec *)(t->data + (h.scan & 4095)))->seq, FERRY__SEQ_CANCELLED);
    put(dir, name, &h, sizeof h, t->data, 4096);
    if (cap != 0) { /* the same ring read by ferry_recv's fast path (filter 0) */
        char fast[64];
        snprintf(fast, sizeof fast, "%s_fast", name);
        h.mode |= 16;
        h.filter_kind = 0;
        put(dir, fast, &h, sizeof h, t->data, 4096);
        snprintf(fast, sizeof fast, "%s_gather", name); /* and the stream gather after each */
        h.mode |= 32;
        put(dir, fast, &h, sizeof h, t->data, 4096);
    }
    ferry_chan_close(a);
    ferry_chan_close(b);
}

static void ring_seeds(const char *dir)
{
    ring_seed(dir, "plain", FERRY_CAP_RING, 0, 0, 3, 5, 0);
    ring_seed(dir, "crc", FERRY_CAP_RING, FERRY_CHECKSUM, 0, 3, 100, 0);
    ring_seed(dir, "wrap", FERRY_CAP_RING, 0, 60, 10, 5, 0);
    ring_seed(dir, "wrap_crc_big", FERRY_CAP_RING, FERRY_CHECKSUM, 2, 1, 1500, 0);
    ring_seed(dir, "fds", FERRY_CAP_RING, 0, 0, 2, 8, 3);
    ring_seed(dir, "rendezvous_withdrawn", 0, 0, 0, 2, 8, 0);
    /* A JUMP at the start, the SEG waiting on the link. */
    uint8_t ring[4096] = {0};
    ferry__rec r = {
        .magic = FERRY__FRAME_MAGIC, .version = FERRY__FRAME_VERSION, .flags = FERRY__F_JUMP};
    atomic_store(&r.seq, 1);
    memcpy(ring, &r, sizeof r);
    fuzz_ring_hdr h = {.mode = 2 << 1 | 8, .expect = 1};
    put(dir, "jump", &h, sizeof h, ring, sizeof ring);
    /* Broken: a wrong seq, a length past the end, nothing at all. */
    r.flags = 0;
    r.len = 64;
    atomic_store(&r.seq, 5);
    memcpy(ring, &r, sizeof r);
    fuzz_ring_hdr h2 = {.expect = 1};
    put(dir, "bad_seq", &h2, sizeof h2, ring, sizeof ring);
    atomic_store(&r.seq, 1);
    r.len = 3000;
    memcpy(ring + 4096 - 64, &r, sizeof r);
    h2.scan = 4096 - 64;
    put(dir, "past_end", &h2, sizeof h2, ring, sizeof ring);
    fuzz_ring_hdr h3 = {.expect = 1};
    put(dir, "empty", &h3, sizeof h3, NULL, 0);
}

/* A setup seed: the link message, then nfds, len_sel, map_sel, flags, (kind, arg)... */
static void setup_seed(const char *dir, const char *name, ferry__link_msg m, uint8_t nfds,
                       uint8_t len_sel, uint8_t map_sel, uint8_t flags, const uint8_t *kinds)
{
    uint8_t tail[4 + 10] = {nfds, len_sel, map_sel, flags};
    for (int i = 0; i < nfds; i++) {
        tail[4 + 2 * i] = kinds[i];
        tail[5 + 2 * i] = 2; /* kind 1: a sealed memfd of 4096 + 2 * 4096 bytes */
    }
    put(dir, name, &m, sizeof m, tail, 4 + 2 * (size_t)nfds);
}

static void setup_seeds(const char *dir)
{
    ferry__link_msg good = {.magic = FERRY__SETUP_MAGIC,
                            .kind = FERRY__LINK_SETUP,
                            .ring_bytes = 4096,
                            .max_msg = ferry__ring_max_msg(4096),
                            .mem_cap = 4096,
                            .capacity = FERRY_CAP_RING};
    /* A SETUP carries the two segments (issue 15: the eventfds went; four fds, the old
     * handshake, is refused). */
    const uint8_t ok[4] = {0, 0, 3, 3}, unsealed[4] = {0, 2, 3, 3}, wrong_size[4] = {0, 1, 3, 3};
    setup_seed(dir, "good", good, 2, 0, 0, 0, ok);
    ferry__link_msg m = good;
    m.capacity = FERRY_UNBOUNDED;
    m.mem_cap = 1 << 20;
    setup_seed(dir, "good_unbounded", m, 2, 0, 0, 0, ok);
    m.mem_cap = (uint64_t)1 << 40;
    setup_seed(dir, "huge_mem_cap", m, 2, 0, 0, 0, ok);
    m = good;
    m.ring_bytes = (uint64_t)1 << 33;
    setup_seed(dir, "ring_8g", m, 2, 0, 0, 0, ok);
    setup_seed(dir, "small_max_map", good, 2, 0, 12, 0, ok);
    setup_seed(dir, "old_four_fds", good, 4, 0, 0, 0, ok);
    setup_seed(dir, "unsealed", good, 2, 0, 0, 0, unsealed);
    setup_seed(dir, "wrong_size", good, 2, 0, 0, 0, wrong_size);
    setup_seed(dir, "three_fds", good, 3, 0, 0, 0, ok);
    setup_seed(dir, "truncated", good, 2, 200 + 40, 0, 0, ok);
    setup_seed(dir, "nothing_sent", good, 0, 0, 0, 1, ok);
    m = good;
    m.kind = FERRY__LINK_FDS;
    setup_seed(dir, "wrong_kind", m, 2, 0, 0, 0, ok);
    m.kind = FERRY__LINK_READY;
    setup_seed(dir, "ready_not_setup", m, 0, 0, 0, 0, ok);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s RING_DIR SETUP_DIR\n", argv[0]);
        return 2;
    }
    ring_seeds(argv[1]);
    setup_seeds(argv[2]);
    return 0;
}
