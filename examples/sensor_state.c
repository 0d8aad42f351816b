// SPDX-License-Identifier: MIT
/*
 * sensor_state — the "latest sensor reading" pattern with a ferry_state: a sensor process
 * publishes a reading 2000 times; a display process, given only a read-only descriptor
 * (the kernel will not let it write), waits in poll(2) on the state's poll descriptor the
 * way an event loop would and shows the newest reading each time it wakes. It may skip
 * readings (it wants the latest, not every one), but every copy it takes is whole: the
 * reading carries a checksum of itself. It ends when it sees the last reading.
 */
#define _GNU_SOURCE
#include <ferry/ferry.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define READINGS 2000

struct reading {
    uint64_t seq;
    double celsius;
    double humidity;
    uint64_t check; /* seq ^ the bits of both values: a torn copy would not match */
};

static uint64_t check_of(const struct reading *r)
{
    uint64_t a, b;
    memcpy(&a, &r->celsius, 8);
    memcpy(&b, &r->humidity, 8);
    return r->seq ^ a ^ (b << 1);
}

static int display(int rofd)
{
    ferry_state *s;
    int rc = ferry_state_adopt(rofd, &s);
    if (rc < 0) return fprintf(stderr, "adopt: %s\n", ferry_strerror(rc)), 1;
    ferry_region *reg = ferry_state_region(s);
    int pfd = ferry_region_poll_fd(reg);
    if (pfd < 0) return fprintf(stderr, "poll_fd: %s\n", ferry_strerror(pfd)), 1;
    if (ferry_state_write(s, "x", 1) != -EACCES) return fprintf(stderr, "wrote!\n"), 1;
    uint64_t last = 0, shown = 0;
    double celsius = 0;
    /* Read first, then sleep: the poll descriptor reports the writes made after it was
     * created, so the readings before it (perhaps all of them) are found by this read. */
    for (int first = 1; last < READINGS; first = 0) {
        if (!first) {
            struct pollfd p = {.fd = pfd, .events = POLLIN};
            if (poll(&p, 1, 10000) != 1) return fprintf(stderr, "no reading for 10 s\n"), 1;
            ferry_region_poll_ack(reg); /* first acknowledge, then read the newest */
        }
        struct reading r;
        size_t len;
        rc = ferry_state_read(s, &r, sizeof r, &len, NULL);
        if (rc == -EAGAIN || (rc == 0 && len == 0))
            continue; /* not yet written: the next poll comes */
        if (rc < 0 || len != sizeof r) return fprintf(stderr, "read: %s\n", ferry_strerror(rc)), 1;
        if (r.check != check_of(&r)) return fprintf(stderr, "a torn reading!\n"), 1;
        if (r.seq < last) return fprintf(stderr, "went back in time\n"), 1;
        if (r.seq != last) shown++;
        last = r.seq;
        celsius = r.celsius;
    }
    printf("display: showed %llu of %d readings, the last %.1f C\n", (unsigned long long)shown,
           READINGS, celsius);
    fflush(stdout);
    ferry_state_close(s);
    return 0;
}

int main(void)
{
    ferry_state *s;
    int rc = ferry_state_create(sizeof(struct reading), NULL, &s);
    if (rc < 0) return fprintf(stderr, "create: %s\n", ferry_strerror(rc)), 1;
    int rofd;
    if ((rc = ferry_state_fd_readonly(s, &rofd)) < 0)
        return fprintf(stderr, "fd_readonly: %s\n", ferry_strerror(rc)), 1;
    pid_t pid = fork();
    if (pid == 0) {
        ferry_state_close(s); /* the display keeps only its read-only capability */
        _exit(display(rofd));
    }
    close(rofd);
    for (uint64_t i = 1; i <= READINGS; i++) {
        struct reading r = {i, (double)(i % 40), 40.0 + (double)(i % 20), 0};
        r.check = check_of(&r);
        if ((rc = ferry_state_write(s, &r, sizeof r)) < 0)
            return fprintf(stderr, "write: %s\n", ferry_strerror(rc)), 1;
        if (i % 100 == 0) usleep(1000);
    }
    int st;
    waitpid(pid, &st, 0);
    ferry_state_close(s);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;
    puts("sensor_state: ok");
    return 0;
}
