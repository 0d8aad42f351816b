// SPDX-License-Identifier: MIT
/*
 * fuzz_region.c — libFuzzer harness for regions and states handed over by a hostile peer
 * (src/region/region.c, src/region/state.c), driven through the public API.
 *
 * Input: [kind][mode][shape][seals][ops...].
 *   kind % 2   0 a region, 1 a state.
 *   shape      a region's size (1 .. 3 pages), a state's max_len (1 .. 256).
 *   mode % 6   how the adopted descriptor is made:
 *     0  a real object (ferry_X_create), adopted through a writable duplicate; the ops'
 *        patches write its memory (a sharer scribbling while the victim works);
 *     1  the same, adopted through ferry_X_fd_readonly (a read-only handle);
 *     2  a raw image: a memfd of the object's size holding a valid header, then the
 *        ops' patches before the adopt, sealed as `seals` says (bits: shrink, grow, seal,
 *        write) — adopt must answer 0 or -EBADMSG;
 *     3  the same image unsealed, 4 a pipe: adopt must be -EBADMSG;
 *     5  the image in a regular file of ours (in $TMPDIR, unlinked at once): 0 or -EBADMSG.
 *   ops        each [op][arg][...]: op % 8 == 0 is a patch [0][arg][u16 off][u8 n][n bytes]
 *              (n % 17 bytes at off modulo the header page and first user page); the
 *              others read, write, wait (FERRY_NOW), map and unmap, resize, notify. At
 *              most 256 ops.
 * Invariants (abort when broken): no crash, no UB, no access outside a mapping
 * (ASan/UBSan); adopt answers 0 or -EBADMSG (modes 3, 4: -EBADMSG); ferry_state_read
 * answers 0 (a length within max_len and the buffer), -EAGAIN, -EBADMSG or -EMSGSIZE;
 * writes, waits, maps and notifies answer what ferry.h documents (a read-only handle:
 * -EACCES); no call takes longer than 10 s (the library's own waits are milliseconds;
 * the bound leaves room for a machine at load 60, where 2 s was once exceeded); after
 * closing everything, no descriptor is left.
 * Built with -fsanitize=fuzzer as `fuzz_region`, and with replay_main.c as
 * `fuzz_region_replay`, which CTest runs over corpus/region.
 */
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
#include "region/region.h"
#include "fuzzutil.h"

#include <ferry/ferry.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPS 256
#define HDRSZ   ((size_t)FERRY__REGION_HDR)

/* Apply a patch [u16 off][u8 n][bytes] to the image at img (len bytes mapped). */
static void patch(fuzz_in *s, unsigned char *img, size_t len)
{
    uint16_t off = 0;
    fuzz_take(s, &off, 2);
    uint8_t n = fuzz_byte(s) % 17;
    unsigned char b[16];
    if (!fuzz_take(s, b, n)) return;
    for (uint8_t i = 0; i < n; i++) img[((size_t)off + i) % len] = b[i];
}

/* A valid header image for kind, size and max_len, in a fresh buffer of HDR + usize. */
static unsigned char *image(uint32_t kind, size_t usize, uint64_t max_len)
{
    unsigned char *img = calloc(1, HDRSZ + usize);
    REQUIRE(img != NULL);
    ferry__region_hdr *h = (ferry__region_hdr *)(void *)img;
    h->magic = FERRY__REGION_MAGIC;
    h->layout = FERRY__REGION_LAYOUT;
    h->kind = kind;
    h->flags = 0;
    h->max_len = max_len;
    atomic_store_explicit(&h->size, usize, memory_order_relaxed);
    return img;
}

static int memfd_of(const unsigned char *img, size_t len)
{
    int fd = memfd_create("fuzz-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    REQUIRE(fd >= 0);
    REQUIRE(pwrite(fd, img, len, 0) == (ssize_t)len);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in s = {data, size};
    int fds0 = fuzz_fd_count();
    int is_state = fuzz_byte(&s) & 1;
    int mode = fuzz_byte(&s) % 6;
    uint8_t shape = fuzz_byte(&s);
    uint8_t seals = fuzz_byte(&s);
    uint32_t kind = is_state ? FERRY_OBJ_STATE : FERRY_OBJ_REGION;
    size_t max_len = is_state ? 1 + shape % 256 : 0;
    size_t usize = is_state ? (max_len + 7) & ~(size_t)7 : 1 + (size_t)(shape % 3) * 4096 + shape;

    ferry_region *owner_r = NULL;
    ferry_state *owner_s = NULL;
    unsigned char *live = MAP_FAILED; /* the object's memory, for patches (modes 0, 1) */
    size_t live_len = HDRSZ + usize;
    int fd = -1, want_bad = 0;

    if (mode <= 1) {
        int ofd;
        if (is_state) {
            REQUIRE(ferry_state_create(max_len, NULL, &owner_s) == 0);
            ofd = ferry_state_fd(owner_s);
            fd = mode == 0 ? fcntl(ofd, F_DUPFD_CLOEXEC, 0) : -1;
            if (mode == 1) REQUIRE(ferry_state_fd_readonly(owner_s, &fd) == 0);
        } else {
            REQUIRE(ferry_region_create(usize, NULL, &owner_r) == 0);
            ofd = ferry_region_fd(owner_r);
            fd = mode == 0 ? fcntl(ofd, F_DUPFD_CLOEXEC, 0) : -1;
            if (mode == 1) REQUIRE(ferry_region_fd_readonly(owner_r, &fd) == 0);
        }
        REQUIRE(fd >= 0);
        live = mmap(NULL, live_len, PROT_READ | PROT_WRITE, MAP_SHARED, ofd, 0);
        REQUIRE(live != MAP_FAILED);
    } else {
        unsigned char *img = image(kind, usize, max_len);
        /* the patches before the first call go into the image */
        while (s.n > 0 && s.p[0] % 8 == 0) {
            fuzz_byte(&s); /* the op */
            fuzz_byte(&s); /* its arg, unused */
            patch(&s, img, HDRSZ + usize);
        }
        if (mode == 2 || mode == 3) {
            fd = memfd_of(img, HDRSZ + usize);
            int sl = (seals & 1 ? F_SEAL_SHRINK : 0) | (seals & 2 ? F_SEAL_GROW : 0) |
                     (seals & 4 ? F_SEAL_SEAL : 0) | (seals & 8 ? F_SEAL_WRITE : 0);
            if (mode == 2 && sl) REQUIRE(fcntl(fd, F_ADD_SEALS, sl) == 0);
            want_bad = mode == 3;
        } else if (mode == 4) {
            int pp[2];
            REQUIRE(pipe2(pp, O_CLOEXEC) == 0);
            close(pp[1]);
            fd = pp[0];
            want_bad = 1;
        } else {
            const char *tmp = getenv("TMPDIR");
            char path[512];
            snprintf(path, sizeof path, "%s/fuzz-region-XXXXXX", tmp && *tmp ? tmp : "/tmp");
            fd = mkostemp(path, O_CLOEXEC);
            REQUIRE(fd >= 0);
            unlink(path);
            REQUIRE(pwrite(fd, img, HDRSZ + usize, 0) == (ssize_t)(HDRSZ + usize));
        }
        free(img);
    }

    ferry_region *r = NULL;
    ferry_state *st = NULL;
    int rc = is_state ? ferry_state_adopt(fd, &st) : ferry_region_adopt(fd, &r);
    REQUIRE(rc == 0 || rc == -EBADMSG);
    if (want_bad) REQUIRE(rc == -EBADMSG);
    if (rc == 0 && mode <= 1)
        REQUIRE(!!(is_state ? ferry_region_writable(ferry_state_region(st))
                            : ferry_region_writable(r)) == (mode == 0));
    ferry_region *reg = is_state && st ? ferry_state_region(st) : r;
    void *maps[4] = {0};
    int nmaps = 0;

    for (int op = 0; rc == 0 && op < MAX_OPS && s.n > 0; op++) {
        uint8_t o = fuzz_byte(&s) % 8;
        uint8_t arg = fuzz_byte(&s);
        int64_t t0 = fuzz_now_ns();
        int e;
        switch (o) {
        case 0:
            if (live != MAP_FAILED) patch(&s, live, HDRSZ + (usize < 4096 ? usize : 4096));
            break;
        case 1:
            if (st) {
                unsigned char buf[300];
                size_t cap = arg % 2 ? sizeof buf : arg % 300, len = 0;
                uint64_t v;
                e = ferry_state_read(st, buf, cap, &len, &v);
                REQUIRE(e == 0 || e == -EAGAIN || e == -EBADMSG || e == -EMSGSIZE);
                size_t ml = ferry_state_max_len(st); /* the adopted header's, judged */
                REQUIRE(ml >= 1 && ml <= 256 && (ml + 7) / 8 * 8 <= usize);
                if (e == 0) REQUIRE(len <= ml && len <= cap);
                if (e == -EMSGSIZE) REQUIRE(len <= ml && len > cap);
            } else {
                REQUIRE(ferry_region_size(r) >= usize);
            }
            break;
        case 2:
            if (st) {
                unsigned char buf[300];
                memset(buf, arg, sizeof buf);
                size_t len = (size_t)arg * 2 % 300;
                e = ferry_state_write(st, buf, len);
                if (mode == 1)
                    REQUIRE(e == -EACCES || e == -EMSGSIZE);
                else
                    REQUIRE(e == 0 || e == -EMSGSIZE || e == -EACCES);
                if (e == -EMSGSIZE) REQUIRE(len > ferry_state_max_len(st));
            }
            break;
        case 3:
            (void)ferry_region_version(reg);
            if (st) (void)ferry_state_version(st);
            break;
        case 4:
            e = st ? ferry_state_wait(st, arg, FERRY_NOW) : ferry_region_wait(r, arg, FERRY_NOW);
            REQUIRE(e == 0 || e == -EAGAIN);
            break;
        case 5:
            if (arg % 2 && nmaps < 4) {
                void *a;
                e = ferry_region_map(
                    reg, arg & 2 ? FERRY_REGION_READ | FERRY_REGION_WRITE : FERRY_REGION_READ, &a);
                REQUIRE(e == 0 || e == -EACCES);
                if (e == -EACCES) REQUIRE(arg & 2 && !ferry_region_writable(reg));
                if (e == 0) {
                    volatile unsigned char *u = a;
                    size_t n = ferry_region_size(reg);
                    (void)u[0];
                    (void)u[n - 1];
                    if (n > 4096) (void)u[4096];
                    maps[nmaps++] = a;
                }
            } else if (nmaps > 0) {
                REQUIRE(ferry_region_unmap(reg, maps[--nmaps]) == 0);
            }
            break;
        case 6:
            if (r) {
                e = ferry_region_resize(r, usize + (size_t)arg * 64);
                REQUIRE(e == 0 || e == -EPERM || e == -EACCES);
            }
            break;
        case 7:
            e = ferry_region_notify(reg);
            REQUIRE(e == 0 || (e == -EACCES && !ferry_region_writable(reg)));
            break;
        }
        REQUIRE(fuzz_now_ns() - t0 < 10000000000LL);
    }

    if (st) ferry_state_close(st);
    if (r) ferry_region_close(r);
    if (live != MAP_FAILED) munmap(live, live_len);
    ferry_state_close(owner_s);
    ferry_region_close(owner_r);
    REQUIRE(fuzz_fd_count() == fds0);
    return 0;
}
