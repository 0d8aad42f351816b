// SPDX-License-Identifier: MIT
/*
 * fuzz_shm_ring.c — libFuzzer harness for the shm record reader (ferry__shm_rx_next in
 * src/transport/shm_rx.c, its fast path ferry__shm_rx_fast and the stream gather
 * ferry__shm_rx_gather when the input's mode asks)
 * on ring memory written as a hostile producer would.
 *
 * The input (fuzz_shm_ring.h) sets the channel's shape and the consumer's position, and
 * its tail is the ring's bytes, indices and all; an FDS message and a SEG message (a real
 * sealed ring) may wait on a real control link. The ring lives in a heap block of exactly
 * its size, so ASan sees any read past its end. The harness aborts when an invariant
 * breaks:
 *  - rx_next returns 1 (a message), 0 (nothing), FERRY__RX_BLOCKED, or exactly -EBADMSG,
 *    -EPIPE or -ENOMEM;
 *  - a message lies inside its ring: 64-aligned, header and payload before the ring's
 *    end, len <= max_msg, nfds <= 16 with that many fds held (none at capacity 0);
 *  - the number of messages read is bounded by the rings' records (no endless loop);
 *  - no fd leaks (checked per input).
 * Built with -fsanitize=fuzzer as `fuzz_shm_ring`, and with replay_main.c as
 * `fuzz_shm_ring_replay`, which CTest runs over corpus/shm_ring.
 */
#define _GNU_SOURCE
#include "fuzz_shm_ring.h"

#include "core/frame.h"
#include "shm/ring.h"
#include "shm/segment.h"
#include "transport/shm_chan.h"
#include "transport/shm_link.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) abort();
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static const uint32_t caps[4] = {FERRY_CAP_RING, 0, FERRY_UNBOUNDED, 4};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ring_hdr h;
    if (size < sizeof h) return 0;
    memcpy(&h, data, sizeof h);
    int before = fd_count();
    uint64_t ring = (uint64_t)4096 << (h.ring_log % 4);

    shm_chan *c = calloc(1, sizeof *c);
    uint8_t *block = malloc(FERRY__RING_CTL_BYTES + ring); /* exactly: ASan guards its end */
    if (!c || !block) abort();
    memset(block, 0, FERRY__RING_CTL_BYTES + ring);
    size_t n = size - sizeof h < ring ? size - sizeof h : ring;
    memcpy(block + FERRY__RING_CTL_BYTES, data + sizeof h, n);

    c->capacity = caps[(h.mode >> 1) & 3];
    c->flags = h.mode & 1 ? FERRY_CHECKSUM : 0;
    c->ring_bytes = ring;
    uint64_t most = ferry__ring_max_msg(ring);
    c->max_msg = h.max_msg && (uint64_t)h.max_msg * 64 < most ? (uint64_t)h.max_msg * 64 : most;
    c->mem_cap = 4 * ring;
    c->seg_rx.base = block;
    c->seg_rx.size = 0; /* not a mapping of ours to undo */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) abort();
    c->link = sv[0];
    if (ferry__shm_rx_init(c) < 0) abort();
    c->rx.scan = h.scan & ~(uint64_t)(FERRY__REC_ALIGN - 1);
    c->rx.expect = h.expect & FERRY__SEQ_MASK ? h.expect & FERRY__SEQ_MASK : 1;
    c->rx.max_skipped = h.max_skipped;

    /* What a producer may have queued on the link. */
    if (h.mode & 8) {
        int fd;
        ferry__seg seg;
        if (ferry__seg_create(2 * ring, &fd, &seg) == 0) {
            ferry__link_msg m = {.magic = FERRY__SETUP_MAGIC,
                                 .kind = FERRY__LINK_SEG,
                                 .seq = c->rx.expect + h.seg_seq % 8,
                                 .ring_bytes = 2 * ring};
            (void)ferry__link_send(sv[1], &m, &fd, 1, 0);
            close(fd);
            ferry__seg_unmap(&seg);
        }
    }
    if (h.nfds % 17) {
        int fds[16], k = h.nfds % 17;
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nul < 0) abort();
        for (int i = 0; i < k; i++) fds[i] = nul;
        ferry__link_msg m = {.magic = FERRY__SETUP_MAGIC,
                             .kind = FERRY__LINK_FDS,
                             .seq = c->rx.expect + h.fds_seq % 4};
        (void)ferry__link_send(sv[1], &m, fds, (unsigned)k, 0);
        close(nul);
    }

    int64_t filter = h.filter_kind % 3 == 0   ? 0
                     : h.filter_kind % 3 == 1 ? (int64_t)h.filter_type
                                              : -(int64_t)h.filter_type - 1;
    /* A ring of `ring` bytes holds at most ring / 64 records per lap, and a record's seq
     * can match only once; a SEG adds one ring twice the size. */
    long limit = (long)(3 * ring / FERRY__REC_ALIGN) + 2;
    for (long records = 0;; records++) {
        if (records > limit) abort();
        if ((h.mode & 16) && filter == 0 && c->capacity != 0 && c->rx.qlen == 0 &&
            !atomic_load_explicit(&c->dead, memory_order_relaxed)) {
            /* The fast path: a message whose payload fits the buffer, or -1 (untouched:
             * rx_next below reads the same record), or -EBADMSG (a bad crc). */
            static uint8_t buf[1 << 16];
            ferry_msg fm = {.data = buf, .cap = sizeof buf};
            ssize_t fr = ferry__shm_rx_fast(c, &fm, 1);
            if (getenv("FUZZ_SHM_VERBOSE")) fprintf(stderr, "rx_fast: %zd\n", fr);
            if (fr == -EBADMSG) break;
            if (fr != -1) {
                if (fr < 0 || (size_t)fr != fm.len || fm.len > c->max_msg || fm.nfds != 0 ||
                    fm.type < 0)
                    abort();
                if (h.mode & 32) { /* the probe ahead stays in the ring (ASan) */
                    ferry__when w = ferry__when_in(1000);
                    ferry__shm_rx_gather(c, &w);
                }
                continue;
            }
        }
        rx_entry e;
        memset(&e, 0, sizeof e);
        int rc = ferry__shm_rx_next(c, &e, filter, records & 1);
        if (getenv("FUZZ_SHM_VERBOSE")) fprintf(stderr, "rx_next: %d\n", rc);
        if (rc == 0 || rc == FERRY__RX_BLOCKED) break;
        if (rc < 0) {
            if (rc != -EBADMSG && rc != -EPIPE && rc != -ENOMEM) abort();
            break;
        }
        if (rc != 1) abort();
        const rx_map *m = e.map;
        uint64_t off = e.pos & (m->size - 1);
        if (off % FERRY__REC_ALIGN || off + FERRY__FRAME_HDR + e.len > m->size ||
            e.len > c->max_msg || e.nfds > FERRY_MAX_FDS)
            abort();
        if (c->capacity == 0 ? e.fds != NULL : (e.nfds != 0) != (e.fds != NULL)) abort();
        /* Read every payload byte, as a receive would (ASan checks the bounds). */
        const uint8_t *payload = m->data + off + FERRY__FRAME_HDR;
        ferry__frame f = {.flags = e.flags,
                          .nfds = e.nfds,
                          .type = e.type,
                          .seq = e.seq,
                          .len = e.len,
                          .crc = e.crc};
        (void)ferry__frame_check_crc(&f, payload);
        if (e.fds) {
            for (uint32_t i = 0; i < e.nfds; i++) close(e.fds[i]);
            free(e.fds);
        }
        /* As if rx_find had queued it (skipped): the budget fills up. */
        if (!ferry__filter_match(filter, e.type)) c->rx.qfds += e.nfds;
    }
    c->rx.qfds = 0;
    ferry__shm_rx_free(c);
    close(sv[0]);
    close(sv[1]);
    free(block);
    free(c);
    if (fd_count() != before) abort();
    return 0;
}
