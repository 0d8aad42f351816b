// SPDX-License-Identifier: MIT
/*
 * fuzz_shm_setup.c — libFuzzer harness for the SETUP handshake a shm adopter receives
 * (setup_adopt in src/transport/shm.c, reached through ferry__shm_from_link as in a
 * brokered connect, and ferry__link_recv in shm_link.c).
 *
 * Input: the creator's link message as raw bytes (48, or fewer or more: a truncated or
 * oversized datagram), then how many fds ride with it and what each is (a sealed memfd
 * of the announced size or of another size, an unsealed memfd, an eventfd, a pipe,
 * /dev/null), then the adopter's max_map. The harness aborts when an invariant breaks:
 *  - the result is 0 or exactly -EBADMSG, -E2BIG, -EAGAIN (nothing queued) or -ENOMEM;
 *  - an adopted channel works: a send and an empty receive (FERRY_NOW) behave;
 *  - no fd leaks, whatever was refused.
 * Built with -fsanitize=fuzzer as `fuzz_shm_setup`, and with replay_main.c as
 * `fuzz_shm_setup_replay`, which CTest runs over corpus/shm_setup.
 */
#define _GNU_SOURCE
#include "shm/ring.h"
#include "transport/shm_link.h"
#include "transport/transport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MSG 48 /* sizeof(ferry__link_msg) */
_Static_assert(sizeof(ferry__link_msg) == MSG, "link message layout");

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) abort();
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static int memfd(size_t size, int seal)
{
    int fd = memfd_create("fz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) abort();
    if (ftruncate(fd, (off_t)size) < 0) abort();
    if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) abort();
    return fd;
}

/* One fd of the kind k; pipe_w gets a pipe's other end (closed by the caller). */
static int make_fd(uint8_t k, uint8_t arg, size_t right, int *pipe_w)
{
    switch (k % 6) {
    case 0:
        return memfd(right, 1);
    case 1:
        return memfd(FERRY__RING_CTL_BYTES + (size_t)arg * 4096, 1);
    case 2:
        return memfd(right, 0);
    case 3:
        return eventfd(0, EFD_CLOEXEC);
    case 4: {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) abort();
        *pipe_w = p[1];
        return p[0];
    }
    default:
        return open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < MSG + 4) return 0;
    int before = fd_count();
    ferry__link_msg m;
    memcpy(&m, data, MSG);
    const uint8_t *p = data + MSG, *end = data + size;
    uint8_t nfds = *p++ % 6, len_sel = *p++, map_sel = *p++, flags = *p++;
    /* The size a creator would have made: only small rings get real ones. */
    uint64_t r = m.ring_bytes;
    size_t right =
        r >= 4096 && r <= (1u << 20) && !(r & (r - 1)) ? FERRY__RING_CTL_BYTES + r : 2 * 4096;
    int fds[5], pw[5];
    for (int i = 0; i < nfds; i++) {
        uint8_t k = p < end ? *p++ : 0, arg = p < end ? *p++ : 0;
        pw[i] = -1;
        fds[i] = make_fd(k, arg, right, &pw[i]);
        if (fds[i] < 0) abort();
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) abort();
    if (!(flags & 1)) { /* bit 0 set: the creator sends nothing */
        uint8_t buf[MSG + 16];
        memset(buf, 0, sizeof buf);
        memcpy(buf, &m, MSG);
        size_t len = len_sel < 200 ? MSG : (size_t)(len_sel - 200) % (sizeof buf + 1);
        union {
            struct cmsghdr align;
            char b[CMSG_SPACE(sizeof(int) * 5)];
        } ctrl;
        memset(&ctrl, 0, sizeof ctrl);
        struct iovec iov = {.iov_base = buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (nfds) {
            mh.msg_control = ctrl.b;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
        }
        if (sendmsg(sv[0], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) abort();
    }
    for (int i = 0; i < nfds; i++) {
        close(fds[i]);
        if (pw[i] >= 0) close(pw[i]);
    }
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.max_map = map_sel ? (size_t)1 << (map_sel % 40) : 0;
    ferry_chan *ch = NULL;
    int rc = ferry__shm_from_link(sv[1], 0, &o, NULL, 0, &ch); /* owns sv[1] */
    if (getenv("FUZZ_SHM_VERBOSE")) fprintf(stderr, "setup: %d\n", rc);
    if (rc == 0) {
        char b[8];
        int s = ferry_send(ch, "x", 1, FERRY_NOW);
        if (s != 0 && s != -EAGAIN && s != -EPIPE && s != -EBADMSG && s != -EMSGSIZE) abort();
        ssize_t g = ferry_recv(ch, b, sizeof b, FERRY_NOW);
        if (g != -EAGAIN && g != -EPIPE) abort();
        ferry_chan_close(ch);
    } else if (rc != -EBADMSG && rc != -E2BIG && rc != -EAGAIN && rc != -ENOMEM) {
        abort();
    }
    close(sv[0]);
    if (fd_count() != before) abort();
    return 0;
}
