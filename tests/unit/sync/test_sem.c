// SPDX-License-Identifier: MIT
/*
 * test_sem.c — ferry_sem basics: values, timeouts, overflow, adopting garbage, and
 * sharing across fork, across exec (the descriptor number on the command line) and by
 * name through a real ferryd. Every case runs in its own process and leaves no
 * descriptor behind.
 */
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
#include "testutil.h"
#include "brokerutil.h"

#include <ferry/ferry.h>

#include "sync/obj.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#define SEC ((int64_t)1000000000)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static void run(const char *name, void (*fn)(void))
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int before = fd_count();
        fn();
        CHECK_EQ(fd_count(), before);
        _exit(0);
    }
    wait_ok(pid);
    printf("ok %s\n", name);
}

static void t_basics(void)
{
    ferry_sem *s;
    CHECK_EQ(ferry_sem_create((uint32_t)INT32_MAX + 1, 0, &s), -EINVAL);
    CHECK_EQ(ferry_sem_create(0, 1u << 5, &s), -EINVAL);
    CHECK_EQ(ferry_sem_create(0, 0, NULL), -EINVAL);
    for (uint32_t flags = 0; flags <= FERRY_SEM_UNDO; flags++) {
        CHECK_EQ(ferry_sem_create(2, flags, &s), 0);
        CHECK(ferry_sem_fd(s) >= 0);
        CHECK(fcntl(ferry_sem_fd(s), F_GETFD) & FD_CLOEXEC);
        CHECK_EQ(ferry_sem_value(s), 2);
        CHECK_EQ(ferry_sem_trywait(s), 0);
        CHECK_EQ(ferry_sem_wait(s, FERRY_NOW), 0);
        CHECK_EQ(ferry_sem_value(s), 0);
        CHECK_EQ(ferry_sem_trywait(s), -EAGAIN);
        CHECK_EQ(ferry_sem_wait(s, FERRY_NOW), -EAGAIN);
        int64_t t0 = now_ns();
        CHECK_EQ(ferry_sem_wait(s, 200 * 1000 * 1000), -ETIMEDOUT);
        int64_t dt = now_ns() - t0;
        CHECK(dt >= 200 * 1000 * 1000 && dt < 200 * 1000 * 1000 + SEC);
        CHECK_EQ(ferry_sem_post(s), 0);
        CHECK_EQ(ferry_sem_value(s), 1);
        CHECK_EQ(ferry_sem_wait(s, FERRY_FOREVER), 0);
        CHECK_EQ(ferry_sem_value(s), 0);
        for (int i = 0; i < 5; i++) CHECK_EQ(ferry_sem_post(s), 0);
        CHECK_EQ(ferry_sem_value(s), 5);
        ferry_sem_close(s);
    }
    ferry_sem_close(NULL);
    CHECK_EQ(ferry_sem_post(NULL), -EINVAL);
    CHECK_EQ(ferry_sem_wait(NULL, 0), -EINVAL);
}

static void t_overflow(void)
{
    for (uint32_t flags = 0; flags <= FERRY_SEM_UNDO; flags++) {
        ferry_sem *s;
        CHECK_EQ(ferry_sem_create(INT32_MAX - 1, flags, &s), 0);
        CHECK_EQ(ferry_sem_post(s), 0);
        CHECK_EQ(ferry_sem_value(s), INT32_MAX);
        CHECK_EQ(ferry_sem_post(s), -EOVERFLOW);
        CHECK_EQ(ferry_sem_value(s), INT32_MAX);
        if (!flags) {
            ferry_sem_close(s);
            continue;
        }
        /* With UNDO, a refused post leaves what the process holds as it was: take one
         * (held 1), a child posts (the value is full again), our post fails: held is
         * still 1 (the table, read through a mapping: 64-byte head, 32-byte slots with
         * held at +16). */
        CHECK_EQ(ferry_sem_wait(s, FERRY_NOW), 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) _exit(ferry_sem_post(s) == 0 ? 0 : 1);
        wait_ok(pid);
        CHECK_EQ(ferry_sem_post(s), -EOVERFLOW);
        CHECK_EQ(ferry_sem_value(s), INT32_MAX);
        uint8_t *m = mmap(NULL, 32768, PROT_READ, MAP_SHARED, ferry_sem_fd(s), 0);
        CHECK(m != MAP_FAILED);
        uint32_t nslots, held = 0;
        memcpy(&nslots, m + 20, 4);
        CHECK(nslots > 0 && 64 + (size_t)nslots * 32 <= 32768);
        for (uint32_t i = 0; i < nslots; i++) {
            uint32_t h;
            memcpy(&h, m + 64 + (size_t)i * 32 + 16, 4);
            held += h;
        }
        CHECK_EQ(held, 1);
        munmap(m, 32768);
        ferry_sem_close(s);
    }
}

/* A memfd that looks like an object: header (kind, version, hdr_size), then words at
 * offset 16.., file_size bytes, sealed or not. */
static int fake_obj(uint32_t kind, uint32_t version, uint32_t hdr_size, size_t file_size, int seal,
                    const uint32_t *words, int nwords)
{
    int fd = memfd_create("fake", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)file_size) == 0);
    uint32_t buf[16] = {FERRY__OBJ_MAGIC, kind, version, hdr_size};
    for (int i = 0; i < nwords; i++) buf[4 + i] = words[i];
    CHECK(pwrite(fd, buf, sizeof buf, 0) == (ssize_t)sizeof buf);
    if (seal) CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    return fd;
}

static void expect_bad(int fd)
{
    ferry_sem *s = NULL;
    CHECK_EQ(ferry_sem_adopt(fd, &s), -EBADMSG);
    CHECK(s == NULL);
    CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF); /* adopt closed it */
}

static void t_adopt_garbage(void)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    expect_bad(p[0]);
    close(p[1]);
    ferry_sem *s;
    CHECK_EQ(ferry_sem_adopt(-1, &s), -EBADMSG);
    /* words at 16: flags, nslots, value, waiters */
    uint32_t ok[] = {0, 0, 3, 0};
    /* A well-formed one first: the fakes below differ from it in one thing each. */
    int fd = fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION, 4096, 4096, 1, ok, 4);
    CHECK_EQ(ferry_sem_adopt(fd, &s), 0);
    CHECK_EQ(ferry_sem_value(s), 3);
    ferry_sem_close(s);
    expect_bad(fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION, 4096, 4096, 0, ok, 4)); /* unsealed */
    expect_bad(fake_obj(FERRY_OBJ_MUTEX, FERRY__OBJ_VERSION, 4096, 4096, 1, ok, 4));
    expect_bad(fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION + 1, 4096, 4096, 1, ok, 4));
    expect_bad(fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION, 8192, 4096, 1, ok, 4)); /* size */
    expect_bad(fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION, 32, 32, 1, ok, 4));     /* too small */
    uint32_t big[] = {0, 0, 0x80000000u, 0};
    expect_bad(fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION, 4096, 4096, 1, big, 4));
    uint32_t flags[] = {1u << 7, 0, 0, 0};
    expect_bad(fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION, 4096, 4096, 1, flags, 4));
    uint32_t slots_no_undo[] = {0, 4, 0, 0};
    expect_bad(fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION, 4096, 4096, 1, slots_no_undo, 4));
    uint32_t undo_no_slots[] = {FERRY_SEM_UNDO, 0, 0, 0};
    expect_bad(fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION, 4096, 4096, 1, undo_no_slots, 4));
    uint32_t too_many[] = {FERRY_SEM_UNDO, 127, 0, 0}; /* 64 + 127 * 32 > 4096 */
    expect_bad(fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION, 4096, 4096, 1, too_many, 4));
    uint32_t just_fit[] = {FERRY_SEM_UNDO, 126, 1, 0};
    fd = fake_obj(FERRY_OBJ_SEM, FERRY__OBJ_VERSION, 4096, 4096, 1, just_fit, 4);
    CHECK_EQ(ferry_sem_adopt(fd, &s), 0);
    CHECK_EQ(ferry_sem_wait(s, FERRY_NOW), 0);
    CHECK_EQ(ferry_sem_post(s), 0);
    ferry_sem_close(s);
    /* Another kind of real object. */
    ferry_barrier *b;
    CHECK_EQ(ferry_barrier_create(2, &b), 0);
    expect_bad(fcntl(ferry_barrier_fd(b), F_DUPFD_CLOEXEC, 0));
    ferry_barrier_close(b);
}

/* A sharer writes garbage into the value word after adopt: -EBADMSG, nothing worse. */
static void t_corrupt_later(void)
{
    ferry_sem *s;
    CHECK_EQ(ferry_sem_create(1, FERRY_SEM_UNDO, &s), 0);
    uint32_t *words = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ferry_sem_fd(s), 0);
    CHECK(words != MAP_FAILED);
    words[6] = 0xfffffff0u; /* value */
    CHECK_EQ(ferry_sem_value(s), -EBADMSG);
    CHECK_EQ(ferry_sem_trywait(s), -EBADMSG);
    CHECK_EQ(ferry_sem_wait(s, 1000 * 1000), -EBADMSG);
    CHECK_EQ(ferry_sem_post(s), -EBADMSG);
    words[6] = 0;
    CHECK_EQ(ferry_sem_post(s), 0);
    CHECK_EQ(ferry_sem_value(s), 1);
    munmap(words, 4096);
    ferry_sem_close(s);
}

/* Across fork, both ways: the child waits for the parent's post, then posts back. */
static void t_fork(void)
{
    for (uint32_t flags = 0; flags <= FERRY_SEM_UNDO; flags++) {
        ferry_sem *ping, *pong;
        CHECK_EQ(ferry_sem_create(0, flags, &ping), 0);
        CHECK_EQ(ferry_sem_create(0, flags, &pong), 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            for (int i = 0; i < 1000; i++) {
                CHECK_EQ(ferry_sem_wait(ping, 5 * SEC), 0);
                CHECK_EQ(ferry_sem_post(pong), 0);
            }
            _exit(0);
        }
        for (int i = 0; i < 1000; i++) {
            CHECK_EQ(ferry_sem_post(ping), 0);
            CHECK_EQ(ferry_sem_wait(pong, 5 * SEC), 0);
        }
        wait_ok(pid);
        CHECK_EQ(ferry_sem_value(ping), 0);
        CHECK_EQ(ferry_sem_value(pong), 0);
        ferry_sem_close(ping);
        ferry_sem_close(pong);
    }
}

/* Across exec: the child gets the descriptor number on its command line, adopts it,
 * takes the unit the parent posted and posts two. */
static void t_exec(void)
{
    ferry_sem *s;
    CHECK_EQ(ferry_sem_create(0, FERRY_SEM_UNDO, &s), 0);
    int fd = fcntl(ferry_sem_fd(s), F_DUPFD, 0); /* without FD_CLOEXEC: inherited */
    CHECK(fd >= 0);
    CHECK_EQ(ferry_sem_post(s), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char num[16];
        snprintf(num, sizeof num, "%d", fd);
        execl("/proc/self/exe", "test_sem", "exec-child", num, (char *)NULL);
        _exit(127);
    }
    close(fd);
    wait_ok(pid);
    CHECK_EQ(ferry_sem_value(s), 2);
    ferry_sem_close(s);
}

static int exec_child(const char *num)
{
    ferry_sem *s;
    int fd = atoi(num);
    CHECK_EQ(ferry_sem_adopt(fd, &s), 0);
    CHECK_EQ(ferry_sem_wait(s, 5 * SEC), 0);
    CHECK_EQ(ferry_sem_post(s), 0);
    CHECK_EQ(ferry_sem_post(s), 0);
    ferry_sem_close(s);
    return 0;
}

/* By name through ferryd. */
static void t_named(void)
{
    test_broker b;
    broker_start(&b);
    ferry_sem *s;
    ferry_pub *pub;
    CHECK_EQ(ferry_sem_create(0, 0, &s), 0);
    CHECK_EQ(ferry_publish("test.sem", ferry_sem_fd(s), FERRY_OBJ_SEM, NULL, &pub, 5 * SEC), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_sem *c = NULL;
        CHECK_EQ(ferry_sem_open("test.sem", &c, 5 * SEC), 0);
        CHECK_EQ(ferry_sem_post(c), 0);
        ferry_sem_close(c);
        _exit(0);
    }
    CHECK_EQ(ferry_sem_wait(s, 5 * SEC), 0);
    wait_ok(pid);
    CHECK_EQ(ferry_sem_value(s), 0);

    ferry_sem *c = NULL;
    CHECK_EQ(ferry_sem_open("test.nonesuch", &c, 5 * SEC), -ENOENT);
    CHECK(c == NULL);
    int fd = -1;
    CHECK_EQ(ferry__obj_open("test.sem", FERRY_OBJ_MUTEX, &fd, 5 * SEC), -EPROTOTYPE);
    CHECK_EQ(fd, -1);
    ferry_barrier *bar = NULL;
    CHECK_EQ(ferry_barrier_open("test.sem", &bar, 5 * SEC), -EPROTOTYPE);
    /* Opened objects outlive the name. */
    CHECK_EQ(ferry_sem_open("test.sem", &c, 5 * SEC), 0);
    ferry_pub_close(pub);
    CHECK_EQ(ferry_sem_post(c), 0);
    CHECK_EQ(ferry_sem_value(s), 1);
    ferry_sem_close(c);
    for (int i = 0; i < 100; i++) {
        if (ferry_sem_open("test.sem", &c, 5 * SEC) == -ENOENT) break;
        ferry_sem_close(c);
        sleep_ms(10);
    }
    CHECK_EQ(ferry_sem_open("test.sem", &c, 5 * SEC), -ENOENT);
    ferry_sem_close(s);
    broker_stop(&b);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "exec-child") == 0) return exec_child(argv[2]);
    setvbuf(stdout, NULL, _IONBF, 0); /* no buffered output duplicated by fork */
    run("basics", t_basics);
    run("overflow", t_overflow);
    run("adopt_garbage", t_adopt_garbage);
    run("corrupt_later", t_corrupt_later);
    run("fork", t_fork);
    run("exec", t_exec);
    run("named", t_named);
    return 0;
}
