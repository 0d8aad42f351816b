// SPDX-License-Identifier: MIT
/*
 * fuzz_shm_ring.h — the input layout of fuzz_shm_ring, shared by the harness and the
 * seed generator (gen_shm_corpus.c). An input is a 32-byte header, then the ring's
 * bytes as a hostile producer left them (zero-filled up to the ring size).
 */
#ifndef FERRY_FUZZ_SHM_RING_H
#define FERRY_FUZZ_SHM_RING_H

#include <stdint.h>

typedef struct fuzz_ring_hdr {
    uint8_t ring_log;    /* ring = 4096 << (ring_log % 4) */
    uint8_t mode;        /* bit 0 FERRY_CHECKSUM; bits 1-2 capacity (ring, 0, unbounded, 4);
                            bit 3: a SEG (a real ring twice the size) waits on the link;
                            bit 4: with filter 0, try the receive fast path first
                            (ferry__shm_rx_fast), as ferry_recv does;
                            bit 5: after each message it takes, the stream gather
                            (ferry__shm_rx_gather) with a 1 us deadline */
    uint8_t max_skipped; /* the consumer's fd budget */
    uint8_t nfds;        /* fds of an FDS message waiting on the link (% 17; 0 = none) */
    uint8_t fds_seq;     /* that message's seq: expect + (fds_seq % 4) */
    uint8_t filter_kind; /* % 3: 0 any, 1 exactly filter_type, 2 lowest <= filter_type */
    uint8_t filter_type;
    uint8_t max_msg;  /* 0: what the ring carries; else max_msg * 64, at most that */
    uint64_t scan;    /* the consumer's position (rounded down to 64) */
    uint64_t expect;  /* the seq it expects there (masked; 0 counts as 1) */
    uint64_t seg_seq; /* the SEG message's seq: expect + (seg_seq % 8) */
} fuzz_ring_hdr;

_Static_assert(sizeof(fuzz_ring_hdr) == 32, "fuzz_shm_ring header is 32 bytes");

#endif
