// SPDX-License-Identifier: MIT
/*
 * notify.c — sd_notify(3)'s wire protocol, by hand (see notify.h for the rules).
 */
#define _GNU_SOURCE /* secure_getenv */
#include "daemon/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int ferry__notify(const char *state)
{
    const char *addr = secure_getenv("NOTIFY_SOCKET");
    if (!addr || !*addr) return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(addr);
    if ((addr[0] != '/' && addr[0] != '@') || n < 2 || n > sizeof sa.sun_path) return -EINVAL;
    socklen_t len;
    if (addr[0] == '@') { /* abstract: a leading NUL, and exactly n bytes (no terminator) */
        memcpy(sa.sun_path + 1, addr + 1, n - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        if (n == sizeof sa.sun_path) return -EINVAL; /* no room for the NUL */
        memcpy(sa.sun_path, addr, n);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct timeval tv = {.tv_sec = 2};
    (void)setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ssize_t w;
    while ((w = sendto(s, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len)) < 0 &&
           errno == EINTR) {
    }
    int rc = w < 0 ? -errno : 1;
    close(s);
    return rc;
}
