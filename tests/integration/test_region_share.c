// SPDX-License-Identifier: MIT
/*
 * test_region_share — regions and states shared by name through a real ferryd, and the
 * read-only right the kernel enforces (docs/region-sharing.md). Root only (it changes
 * uids; without root it says SKIP). ferryd runs as an unprivileged uid of its own, as its
 * systemd unit runs it (DynamicUser=), on a listening socket root made (socket
 * activation): so the read-only descriptor must come from the publisher, never from a
 * reopen by ferryd. The uids:
 *   OWNER  publishes region org.rg.a (mode 0660: the owner's uid and group GRP may open
 *          it read-only; write_uids {WRITER}), the same region as org.rg.b (0664: others
 *          see it only) and a state org.rg.s (0606: anyone may read it).
 *   READER (group GRP: the connect right on org.rg.a) gets a read-only handle whose
 *          descriptor is O_RDONLY: mmap(PROT_WRITE, MAP_SHARED) EACCES, mprotect to
 *          PROT_WRITE EACCES, pwrite EBADF, ftruncate EINVAL, fallocate EBADF, a reopen
 *          of /proc/self/fd/N O_RDWR EACCES, F_ADD_SEALS EPERM, fchmod EPERM;
 *          ferry_region_map(WRITE) -EACCES, ferry_region_open(WRITE) -EACCES; a child of
 *          it that scribbles on its read-only mapping dies of SIGSEGV, and nothing else
 *          changes. It waits by name for the writer's notification and sees its bytes.
 *   WRITER (write_uids) opens org.rg.a writable, writes, notifies.
 *   OTHER  (no right on org.rg.a) -ENOENT; org.rg.b (see only) -EACCES, writable
 *          -EACCES; wrong kinds -EPROTOTYPE; unknown -ENOENT; the state read-only.
 * Persistent regions: a file whose mode lets group or others write is refused (-EPERM);
 * a 0644 one is published with its size and inode, and its owner's uid opens it by name
 * (writable too, granted); another uid's open is -EBADMSG (ferry_region_adopt takes only
 * the caller's own files), and its writable open -EACCES from ferryd even with a grant
 * (a file's read-write descriptor could truncate it under every mapper).
 * And what ferryd refuses at publish: a region whose inode lets group or others write
 * (-EPERM; the library drops those bits of a memfd before it publishes), write rights on
 * a state (-EINVAL), a read-only region handle (-EACCES), a descriptor of another kind
 * (-EBADMSG); in raw PUBLISH packets two read-only
 * descriptors, two read-write ones, or descriptors of two inodes (-EINVAL), a region with
 * one descriptor (dropped: -EBADMSG). ferry_list shows a region's size, dev and inode.
 * A region's two descriptors are charged to its publisher (quota fds 3: -EDQUOT where a
 * semaphore fits).
 */
#include "testutil.h"

#include "brokerutil.h"
#include "daemonutil.h"
#include "secutil.h"

#include <ferry/ferry.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define FERRYD_UID 60341
#define OWNER_UID  60342
#define READER_UID 60343
#define WRITER_UID 60344
#define OTHER_UID  60345
#define QUOTA_UID  60346 /* may have ferryd hold 3 descriptors (policy.conf) */
#define GRP        60350

/* expr fails: it is failed (-1, MAP_FAILED) and errno is err. */
#define CHECK_ERRNO(expr, failed, err)                                                             \
    do {                                                                                           \
        errno = 0;                                                                                 \
        CHECK((expr) == (failed));                                                                 \
        CHECK_EQ(errno, err);                                                                      \
    } while (0)

#define RSIZE  8192u
#define HDR_SZ 4096u /* the region header in front of the user's bytes (region.h) */

static const ident OWNER = {OWNER_UID, OWNER_UID, 0, {0}};
static const ident READER = {READER_UID, GRP, 0, {0}};
static const ident WRITER = {WRITER_UID, WRITER_UID, 0, {0}};
static const ident OTHER = {OTHER_UID, OTHER_UID, 0, {0}};
static const ident QUOTA = {QUOTA_UID, QUOTA_UID, 0, {0}};

static test_broker b;
static char ferryd_dir[] = "/tmp/ferry-rgshare-XXXXXX";
static char ferryd_copy[sizeof ferryd_dir + 8];
static int to_owner[2], from_owner[2]; /* OWNER waits for a byte on to_owner, says on from_owner */
/* OWNER's, for persistent regions: on tmpfs (ferryd takes tmpfs and hugetlbfs files
 * alone), and on the disk /var/tmp is on (refused unread). */
static char file_dir[] = "/dev/shm/ferry-rgfile-XXXXXX";
static char disk_dir[] = "/var/tmp/ferry-rgfile-XXXXXX";
static char file_ok[sizeof file_dir + 16], file_loose[sizeof file_dir + 16];
static char file_disk[sizeof disk_dir + 16];

static pid_t main_pid;
static void remove_copy(void) /* also when a CHECK fails */
{
    if (getpid() != main_pid) return;
    unlink(ferryd_copy);
    rmdir(ferryd_dir);
    if (file_ok[0]) unlink(file_ok);
    if (file_loose[0]) unlink(file_loose);
    if (file_disk[0]) unlink(file_disk);
    if (strcmp(file_dir + sizeof file_dir - 7, "XXXXXX") != 0) rmdir(file_dir);
    if (strcmp(disk_dir + sizeof disk_dir - 7, "XXXXXX") != 0) rmdir(disk_dir);
}

static void copy_ferryd(void)
{
    main_pid = getpid();
    atexit(remove_copy); /* a template not made yet is nothing to remove */
    copy_program(FERRYD_PATH, ferryd_dir, "ferryd", ferryd_copy, sizeof ferryd_copy);
}

/* ferryd as an unprivileged uid with no capability, serving lfd (socket activation). */
static pid_t start_ferryd(int lfd)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid != 0) return pid;
    if (setgroups(0, NULL) < 0 || setresgid(FERRYD_UID, FERRYD_UID, FERRYD_UID) < 0 ||
        setresuid(FERRYD_UID, FERRYD_UID, FERRYD_UID) < 0)
        _exit(121);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    activation_env(lfd, 123);
    execl(ferryd_copy, "ferryd", "--foreground", "--policy", b.policy, (char *)NULL);
    _exit(127);
}

static void say(int fd, char c)
{
    CHECK(write(fd, &c, 1) == 1);
}

static char hear(int fd)
{
    char c = 0;
    CHECK(read(fd, &c, 1) == 1);
    return c;
}

/* ------------------------------------------------------------------ OWNER */

static ferry_pub *publish_region(ferry_region *r, const char *name, unsigned mode)
{
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = mode;
    pol.gid = GRP;
    pol.write_uids[0] = WRITER_UID;
    pol.n_write_uids = 1;
    ferry_pub *p = NULL;
    CHECK_EQ(ferry_publish(name, ferry_region_fd(r), FERRY_OBJ_REGION, &pol, &p, 5 * SEC), 0);
    return p;
}

static int raw_publish(const int *fds, int nfds);

/* What ferryd (and the library before it) refuses to publish. */
static void publish_refusals(ferry_region *r, ferry_state *s)
{
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = 0644;
    ferry_pub *p = NULL;
    /* a memfd whose inode others could write (a reader could reopen it writable): the
     * library drops the group's and others' write bits before it publishes */
    ferry_region *loose;
    CHECK_EQ(ferry_region_create(4096, NULL, &loose), 0);
    CHECK(fchmod(ferry_region_fd(loose), 0666) == 0);
    CHECK_EQ(
        ferry_publish("org.rg.loose", ferry_region_fd(loose), FERRY_OBJ_REGION, &pol, &p, 5 * SEC),
        0);
    struct stat sb;
    CHECK(fstat(ferry_region_fd(loose), &sb) == 0);
    CHECK_EQ(sb.st_mode & 07777, 0644);
    ferry_pub_close(p);
    CHECK(fchmod(ferry_region_fd(loose), 0620) == 0); /* the owner's own bits are its business */
    CHECK_EQ(
        ferry_publish("org.rg.loose", ferry_region_fd(loose), FERRY_OBJ_REGION, &pol, &p, 5 * SEC),
        0);
    CHECK(fstat(ferry_region_fd(loose), &sb) == 0);
    CHECK_EQ(sb.st_mode & 07777, 0600);
    ferry_pub_close(p);
    /* ferryd refuses such an inode itself (a publisher that skips the library) */
    CHECK(fchmod(ferry_region_fd(loose), 0606) == 0);
    int lro;
    CHECK_EQ(ferry_region_fd_readonly(loose, &lro), 0);
    CHECK_EQ(raw_publish((int[]){ferry_region_fd(loose), lro}, 2), -EPERM);
    CHECK(fchmod(ferry_region_fd(loose), 0660) == 0);
    CHECK_EQ(raw_publish((int[]){ferry_region_fd(loose), lro}, 2), -EPERM);
    close(lro);
    ferry_region_close(loose);
    /* write rights mean something for a region only */
    ferry_policy w = pol;
    w.flags = FERRY_WRITE_ANYONE;
    CHECK_EQ(ferry_publish("org.rg.x", ferry_state_fd(s), FERRY_OBJ_STATE, &w, &p, 5 * SEC),
             -EINVAL);
    w.flags = 0;
    w.write_gids[0] = GRP;
    w.n_write_gids = 1;
    CHECK_EQ(ferry_publish("org.rg.x", ferry_state_fd(s), FERRY_OBJ_STATE, &w, &p, 5 * SEC),
             -EINVAL);
    ferry_sem *sem;
    CHECK_EQ(ferry_sem_create(0, 0, &sem), 0);
    CHECK_EQ(ferry_publish("org.rg.x", ferry_sem_fd(sem), FERRY_OBJ_SEM, &w, &p, 5 * SEC), -EINVAL);
    ferry_listener *srv; /* a server: no write right to grant either */
    CHECK_EQ(ferry_register("org.rg.x", &w, NULL, &srv, 5 * SEC), -EINVAL);
    /* the wrong kind of descriptor */
    CHECK_EQ(ferry_publish("org.rg.x", ferry_sem_fd(sem), FERRY_OBJ_REGION, &pol, &p, 5 * SEC),
             -EBADMSG);
    CHECK_EQ(ferry_publish("org.rg.x", ferry_state_fd(s), FERRY_OBJ_REGION, &pol, &p, 5 * SEC),
             -EBADMSG);
    CHECK_EQ(ferry_publish("org.rg.x", ferry_region_fd(r), FERRY_OBJ_STATE, &pol, &p, 5 * SEC),
             -EBADMSG);
    CHECK_EQ(ferry_publish("org.rg.x", ferry_region_fd(r), FERRY_OBJ_SEM, &pol, &p, 5 * SEC),
             -EBADMSG);
    ferry_sem_close(sem);
    /* a read-only handle has no write right to pass on */
    int rofd;
    CHECK_EQ(ferry_region_fd_readonly(r, &rofd), 0);
    ferry_region *ro;
    CHECK_EQ(ferry_region_adopt(rofd, &ro), 0);
    CHECK_EQ(ferry_region_writable(ro), 0);
    CHECK_EQ(ferry_publish("org.rg.x", ferry_region_fd(ro), FERRY_OBJ_REGION, &pol, &p, 5 * SEC),
             -EACCES);
    ferry_region_close(ro);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.rg.x", &in, 5 * SEC), -ENOENT);
}

/* A raw PUBLISH of a region with the given descriptors: the reply's status, or -EPIPE
 * when ferryd hung up instead (a malformed request). */
static int raw_publish(const int *fds, int nfds)
{
    int s = raw_dial(&b);
    uint8_t req[512], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = 0644;
    ferry__bw_register(&w, "org.rg.raw", &pol);
    ferry__bw_u32(&w, FERRY_OBJ_REGION);
    ferry__bw_write_lists(&w, &pol);
    CHECK_EQ(ferry__bsendn(s, FERRY__OP_PUBLISH, 7, w.p, w.len, fds, nfds), 0);
    int64_t op;
    uint64_t seq;
    size_t len;
    int fd;
    int rc = raw_next(s, buf, &op, &seq, &len, &fd, 5000);
    if (rc == 1) {
        CHECK_EQ(op, FERRY__OP_REPLY);
        CHECK_EQ(fd, -1);
        ferry__br r = {.p = buf, .len = len};
        rc = (int)ferry__br_u32(&r);
    }
    close(s);
    return rc;
}

static void raw_refusals(ferry_region *r)
{
    ferry_region *r2;
    CHECK_EQ(ferry_region_create(4096, NULL, &r2), 0);
    int rw = ferry_region_fd(r), ro, ro2;
    CHECK_EQ(ferry_region_fd_readonly(r, &ro), 0);
    CHECK_EQ(ferry_region_fd_readonly(r2, &ro2), 0);
    CHECK_EQ(raw_publish((int[]){ro, ro}, 2), -EINVAL);                  /* no writable one */
    CHECK_EQ(raw_publish((int[]){rw, rw}, 2), -EINVAL);                  /* no read-only one */
    CHECK_EQ(raw_publish((int[]){ro, rw}, 2), -EINVAL);                  /* the wrong order */
    CHECK_EQ(raw_publish((int[]){rw, ro2}, 2), -EINVAL);                 /* two inodes */
    CHECK_EQ(raw_publish((int[]){ferry_region_fd(r2), ro}, 2), -EINVAL); /* two inodes */
    CHECK_EQ(raw_publish((int[]){rw}, 1), -EPIPE);                       /* malformed */
    CHECK_EQ(raw_publish((int[]){rw, ro}, 2), 0);                        /* the real thing */
    close(ro);
    close(ro2);
    ferry_region_close(r2);
}

/* Persistent regions: the file's own mode is what stands between a read-only opener and
 * a writable reopen; one that grants group or others write is refused (-EPERM). One
 * that does not is published, with its size. */
static ferry_pub *publish_file_region(void)
{
    ferry_region_opts o;
    ferry_region_opts_init(&o);
    o.flags = FERRY_REGION_FILE;
    o.mode = 0664;
    o.path = file_loose;
    ferry_region *loose, *r;
    CHECK_EQ(ferry_region_create(4096, &o, &loose), 0);
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = 0666;
    pol.write_uids[0] = WRITER_UID; /* granted, and still refused: a file can be truncated */
    pol.write_uids[1] = OWNER_UID;
    pol.n_write_uids = 2;
    ferry_pub *p = NULL;
    CHECK_EQ(
        ferry_publish("org.rg.file", ferry_region_fd(loose), FERRY_OBJ_REGION, &pol, &p, 5 * SEC),
        -EPERM);
    ferry_region_close(loose);
    /* A file on a disk file system: ferryd asks nothing of it (on FUSE even an fstat
     * would wait on the file system's server), -EINVAL; shared by path or descriptor. */
    o.mode = 0644;
    o.path = file_disk;
    ferry_region *disk;
    CHECK_EQ(ferry_region_create(4096, &o, &disk), 0);
    CHECK_EQ(
        ferry_publish("org.rg.file", ferry_region_fd(disk), FERRY_OBJ_REGION, &pol, &p, 5 * SEC),
        -EINVAL);
    ferry_region_close(disk);
    o.path = file_ok;
    CHECK_EQ(ferry_region_create(4096, &o, &r), 0);
    char *u;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&u), 0);
    memcpy(u, "persistent", 11);
    CHECK_EQ(ferry_publish("org.rg.file", ferry_region_fd(r), FERRY_OBJ_REGION, &pol, &p, 5 * SEC),
             0);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.rg.file", &in, 5 * SEC), 0);
    CHECK_EQ(in.size, 4096);
    struct stat sb;
    CHECK(stat(file_ok, &sb) == 0);
    CHECK(in.dev == (uint64_t)sb.st_dev && in.ino == (uint64_t)sb.st_ino);
    /* its owner's uid opens it by name, read-only and (granted) writable */
    ferry_region *mine;
    CHECK_EQ(
        ferry_region_open("org.rg.file", FERRY_REGION_READ | FERRY_REGION_WRITE, &mine, 5 * SEC),
        0);
    CHECK_EQ(fcntl(ferry_region_fd(mine), F_GETFL) & O_ACCMODE, O_RDWR);
    ferry_region_close(mine);
    CHECK_EQ(ferry_region_open("org.rg.file", FERRY_REGION_READ, &mine, 5 * SEC), 0);
    CHECK_EQ(fcntl(ferry_region_fd(mine), F_GETFL) & O_ACCMODE, O_RDONLY);
    const char *m;
    CHECK_EQ(ferry_region_map(mine, FERRY_REGION_READ, (void **)&m), 0);
    CHECK(memcmp(m, "persistent", 11) == 0);
    ferry_region_close(mine);
    ferry_region_close(r); /* the name keeps the file's descriptors in ferryd */
    return p;
}

static void owner_main(void *arg)
{
    (void)arg;
    ferry_region *r;
    CHECK_EQ(ferry_region_create(RSIZE, NULL, &r), 0);
    char *u;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&u), 0);
    memcpy(u, "hello from the owner", 21);
    ferry_state *s;
    CHECK_EQ(ferry_state_create(64, NULL, &s), 0);
    CHECK_EQ(ferry_state_write(s, "v1", 2), 0);

    publish_refusals(r, s);
    raw_refusals(r);

    ferry_pub *pf = publish_file_region();
    ferry_pub *pa = publish_region(r, "org.rg.a", 0660);
    ferry_pub *pb = publish_region(r, "org.rg.b", 0664);
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = 0606;
    ferry_pub *ps;
    CHECK_EQ(ferry_publish("org.rg.s", ferry_state_fd(s), FERRY_OBJ_STATE, &pol, &ps, 5 * SEC), 0);
    /* the publisher's own uid may open its region writable only with a grant */
    ferry_region *mine;
    CHECK_EQ(ferry_region_open("org.rg.a", FERRY_REGION_READ | FERRY_REGION_WRITE, &mine, 5 * SEC),
             -EACCES);
    CHECK_EQ(ferry_region_open("org.rg.a", FERRY_REGION_READ, &mine, 5 * SEC), 0);
    ferry_region_close(mine);
    say(from_owner[1], 'p'); /* published */

    for (;;) {
        char c = hear(to_owner[0]);
        if (c == 'w') { /* a state write, for a reader waiting on it */
            CHECK_EQ(ferry_state_write(s, "v2-next", 7), 0);
            say(from_owner[1], 'w');
        } else if (c == 'u') { /* unpublish org.rg.a */
            ferry_pub_close(pa);
            pa = NULL;
            say(from_owner[1], 'u');
        } else {
            break;
        }
    }
    ferry_pub_close(pa);
    ferry_pub_close(pb);
    ferry_pub_close(ps);
    ferry_pub_close(pf);
    ferry_state_close(s);
    ferry_region_close(r);
}

/* ------------------------------------------------------------------ READER */

static int reader_report[2]; /* READER (in the notification round) tells main it waits */

/* Every write path through a read-only descriptor fails in the kernel, exactly. */
static void kernel_refuses(int fd)
{
    CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
    size_t len = HDR_SZ + RSIZE;
    CHECK_ERRNO(mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED, EACCES);
    CHECK_ERRNO(mmap(NULL, len, PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED, EACCES);
    char *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    CHECK_ERRNO(mprotect(m, len, PROT_READ | PROT_WRITE), -1, EACCES);
    CHECK(memcmp(m + HDR_SZ, "hello from the owner", 21) == 0);
    CHECK(munmap(m, len) == 0);
    CHECK_ERRNO(pwrite(fd, "x", 1, HDR_SZ), -1, EBADF);
    CHECK_ERRNO(write(fd, "x", 1), -1, EBADF);
    CHECK_ERRNO(ftruncate(fd, 0), -1, EINVAL);
    CHECK_ERRNO(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), -1, EBADF);
    CHECK_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1, EPERM);
    CHECK_ERRNO(fchmod(fd, 0666), -1, EPERM);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    CHECK_ERRNO(open(path, O_RDWR | O_CLOEXEC), -1, EACCES);
    CHECK_ERRNO(open(path, O_WRONLY | O_CLOEXEC), -1, EACCES);
    int again = open(path, O_RDONLY | O_CLOEXEC); /* reading it again is fine */
    CHECK(again >= 0);
    close(again);
    /* A private writable mapping is the caller's own copy: nobody else sees it. */
    char *priv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(priv != MAP_FAILED);
    memcpy(priv + HDR_SZ, "mine only", 9);
    CHECK(munmap(priv, len) == 0);
}

static void reader_main(void *arg)
{
    (void)arg;
    ferry_region *r;
    CHECK_EQ(ferry_region_open("org.rg.a", FERRY_REGION_READ | FERRY_REGION_WRITE, &r, 5 * SEC),
             -EACCES);
    CHECK_EQ(ferry_region_open("org.rg.a", FERRY_REGION_READ, &r, 5 * SEC), 0);
    CHECK_EQ(ferry_region_writable(r), 0);
    CHECK_EQ(ferry_region_size(r), RSIZE);
    kernel_refuses(ferry_region_fd(r));
    void *w;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, &w), -EACCES);
    CHECK_EQ(ferry_region_notify(r), -EACCES);
    const char *u;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ, (void **)&u), 0);
    CHECK(memcmp(u, "hello from the owner", 21) == 0);

    /* A scribbler dies of SIGSEGV in its own process; nothing else changes. */
    fflush(NULL);
    pid_t k = fork();
    CHECK(k >= 0);
    if (k == 0) {
        signal(SIGSEGV, SIG_DFL);
        ((volatile char *)u)[0] = 'X';
        _exit(0); /* not reached */
    }
    int st;
    CHECK(waitpid(k, &st, 0) == k);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    CHECK(memcmp(u, "hello from the owner", 21) == 0);

    /* ferry_list shows the region's size and its inode */
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.rg.a", &in, 5 * SEC), 0);
    CHECK_EQ(in.kind, FERRY_OBJ_REGION);
    CHECK_EQ(in.size, RSIZE);
    CHECK_EQ(in.uid, OWNER_UID);
    struct stat sb;
    CHECK(fstat(ferry_region_fd(r), &sb) == 0);
    CHECK(in.dev == (uint64_t)sb.st_dev && in.ino == (uint64_t)sb.st_ino);
    CHECK_EQ(in.connects, 2); /* the owner's own open and this one (refusals do not count) */

    ferry_region *x;
    /* The state: a reader only; its descriptor read-only too. */
    ferry_state *s;
    CHECK_EQ(ferry_state_open("org.rg.s", &s, 5 * SEC), 0);
    CHECK_EQ(fcntl(ferry_state_fd(s), F_GETFL) & O_ACCMODE, O_RDONLY);
    char v[64];
    size_t n;
    uint64_t ver;
    CHECK_EQ(ferry_state_read(s, v, sizeof v, &n, &ver), 0);
    CHECK(n == 2 && memcmp(v, "v1", 2) == 0);
    CHECK_EQ(ferry_state_write(s, "no", 2), -EACCES);
    CHECK_EQ(ferry_lookup("org.rg.s", &in, 5 * SEC), 0);
    CHECK_EQ(in.kind, FERRY_OBJ_STATE);
    ferry_state_close(s);

    /* A persistent region of another uid's: ferry_region_adopt takes files of the
     * caller's own euid only (whoever may write a file can truncate it under its
     * mappers), so by name too: -EBADMSG. */
    CHECK_EQ(ferry_region_open("org.rg.file", FERRY_REGION_READ, &x, 5 * SEC), -EBADMSG);

    /* Wrong kinds. */
    CHECK_EQ(ferry_state_open("org.rg.a", &s, 5 * SEC), -EPROTOTYPE);
    CHECK_EQ(ferry_region_open("org.rg.s", FERRY_REGION_READ, &x, 5 * SEC), -EPROTOTYPE);
    ferry_sem *sem;
    CHECK_EQ(ferry_sem_open("org.rg.a", &sem, 5 * SEC), -EPROTOTYPE);
    CHECK_EQ(ferry_region_open("org.rg.a", FERRY_REGION_WRITE, &x, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_region_open("org.rg.a", 0, &x, 5 * SEC), -EINVAL);
    ferry_region_close(r);
}

/* The reader of the notification round: opens by name, says it is ready, waits for the
 * writer's notify, and sees the writer's bytes; then the state's next version. */
static void waiter_main(void *arg)
{
    (void)arg;
    ferry_region *r;
    CHECK_EQ(ferry_region_open("org.rg.a", FERRY_REGION_READ, &r, 5 * SEC), 0);
    const char *u;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ, (void **)&u), 0);
    uint64_t v0 = ferry_region_version(r);
    ferry_state *s;
    CHECK_EQ(ferry_state_open("org.rg.s", &s, 5 * SEC), 0);
    uint64_t sv0 = ferry_state_version(s);
    say(reader_report[1], 'r');
    CHECK_EQ(ferry_region_wait(r, v0, 20 * SEC), 0);
    CHECK(ferry_region_version(r) != v0);
    CHECK(memcmp(u + 100, "written by the writer", 22) == 0);
    CHECK_EQ(ferry_state_wait(s, sv0, 20 * SEC), 0);
    char v[64];
    size_t n;
    CHECK_EQ(ferry_state_read(s, v, sizeof v, &n, NULL), 0);
    CHECK(n == 7 && memcmp(v, "v2-next", 7) == 0);
    ferry_state_close(s);
    ferry_region_close(r);
}

/* ------------------------------------------------------------------ WRITER, OTHER */

static void writer_main(void *arg)
{
    (void)arg;
    ferry_region *r;
    CHECK_EQ(ferry_region_open("org.rg.a", FERRY_REGION_READ | FERRY_REGION_WRITE, &r, 5 * SEC), 0);
    CHECK_EQ(ferry_region_writable(r), 1);
    CHECK_EQ(fcntl(ferry_region_fd(r), F_GETFL) & O_ACCMODE, O_RDWR);
    char *u;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&u), 0);
    memcpy(u + 100, "written by the writer", 22);
    CHECK_EQ(ferry_region_notify(r), 0);
    /* A persistent region's read-write descriptor goes to its owner's uid only, whatever
     * the policy grants (its holder could truncate the file under every mapper): ferryd
     * refuses (-EACCES, not the adopter's -EBADMSG). */
    ferry_region *rf;
    CHECK_EQ(ferry_region_open("org.rg.file", FERRY_REGION_READ | FERRY_REGION_WRITE, &rf, 5 * SEC),
             -EACCES);
    /* org.rg.b grants WRITER the write right too (the same write_uids) */
    ferry_region *rb;
    CHECK_EQ(ferry_region_open("org.rg.b", FERRY_REGION_READ | FERRY_REGION_WRITE, &rb, 5 * SEC),
             0);
    ferry_region_close(rb);
    ferry_region_close(r);
}

/* A state's read-only descriptor: the same kernel refusals (a state is a region). */
static void kernel_refuses_state(int fd)
{
    CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
    CHECK_ERRNO(mmap(NULL, HDR_SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED, EACCES);
    CHECK_ERRNO(pwrite(fd, "x", 1, 0), -1, EBADF);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    CHECK_ERRNO(open(path, O_RDWR | O_CLOEXEC), -1, EACCES);
}

static void other_main(void *arg)
{
    (void)arg;
    ferry_region *r;
    ferry_state *s;
    ferry_name_info in;
    /* org.rg.a: no right at all, so not even the name */
    CHECK_EQ(ferry_region_open("org.rg.a", FERRY_REGION_READ, &r, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_lookup("org.rg.a", &in, 5 * SEC), -ENOENT);
    /* org.rg.b: may see it, may not open it */
    CHECK_EQ(ferry_lookup("org.rg.b", &in, 5 * SEC), 0);
    CHECK_EQ(ferry_region_open("org.rg.b", FERRY_REGION_READ, &r, 5 * SEC), -EACCES);
    CHECK_EQ(ferry_region_open("org.rg.b", FERRY_REGION_READ | FERRY_REGION_WRITE, &r, 5 * SEC),
             -EACCES);
    CHECK_EQ(ferry_region_open("org.rg.none", FERRY_REGION_READ, &r, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_state_open("org.rg.none", &s, 5 * SEC), -ENOENT);
    /* the state is open to others (0606), read-only */
    CHECK_EQ(ferry_state_open("org.rg.s", &s, 5 * SEC), 0);
    kernel_refuses_state(ferry_state_fd(s));
    ferry_state_close(s);
}

/* A region costs ferryd two descriptors, charged to the publisher: with a quota of 3
 * (its connection, its pidfd, the object) a region is -EDQUOT where a semaphore fits —
 * and the refused publish left nothing charged. */
static void quota_main(void *arg)
{
    (void)arg;
    ferry_region *r;
    CHECK_EQ(ferry_region_create(4096, NULL, &r), 0);
    ferry_pub *p;
    CHECK_EQ(ferry_publish("org.rg.q", ferry_region_fd(r), FERRY_OBJ_REGION, NULL, &p, 5 * SEC),
             -EDQUOT);
    ferry_sem *sem;
    CHECK_EQ(ferry_sem_create(0, 0, &sem), 0);
    CHECK_EQ(ferry_publish("org.rg.q", ferry_sem_fd(sem), FERRY_OBJ_SEM, NULL, &p, 5 * SEC), 0);
    ferry_pub_close(p);
    ferry_sem_close(sem);
    ferry_region_close(r);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    require_root();
    test_deadline(120);
    signal(SIGPIPE, SIG_IGN);
    broker_init(&b); /* FERRY_BROKER = b.sock, FERRY_NO_AUTOSPAWN=1 */
    copy_ferryd();
    write_file(b.policy, "quota fds 3 60346\n");
    CHECK(chmod(b.policy, 0644) == 0);

    /* systemd's part: the listening socket, root's, 0666; ferryd runs unprivileged. */
    int lfd = activation_socket(b.sock, 0666, 64);
    b.pid = start_ferryd(lfd);
    close(lfd);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.rg.none", &in, 10 * SEC), -ENOENT); /* it serves */

    CHECK(mkdtemp(file_dir) != NULL);
    CHECK(chown(file_dir, OWNER_UID, OWNER_UID) == 0 && chmod(file_dir, 0755) == 0);
    snprintf(file_ok, sizeof file_ok, "%s/ok.rgn", file_dir);
    snprintf(file_loose, sizeof file_loose, "%s/loose.rgn", file_dir);
    CHECK(mkdtemp(disk_dir) != NULL);
    CHECK(chown(disk_dir, OWNER_UID, OWNER_UID) == 0 && chmod(disk_dir, 0755) == 0);
    snprintf(file_disk, sizeof file_disk, "%s/disk.rgn", disk_dir);
    CHECK(pipe2(to_owner, O_CLOEXEC) == 0 && pipe2(from_owner, O_CLOEXEC) == 0);
    pid_t owner = spawn_as(&OWNER, owner_main, NULL);
    close(to_owner[0]); /* so that an owner that failed reads as an end, not a hang */
    close(from_owner[1]);
    CHECK_EQ(hear(from_owner[0]), 'p');

    run_as(&READER, reader_main, NULL);
    run_as(&OTHER, other_main, NULL);
    run_as(&QUOTA, quota_main, NULL);

    /* Notification across processes by name: a reader waits, the writer writes. */
    CHECK(pipe2(reader_report, O_CLOEXEC) == 0);
    pid_t waiter = spawn_as(&READER, waiter_main, NULL);
    close(reader_report[1]);
    CHECK_EQ(hear(reader_report[0]), 'r');
    run_as(&WRITER, writer_main, NULL);
    say(to_owner[1], 'w');
    CHECK_EQ(hear(from_owner[0]), 'w');
    wait_ok(waiter);

    /* Unpublished: the name is gone, handles already open keep working (none here). */
    say(to_owner[1], 'u');
    CHECK_EQ(hear(from_owner[0]), 'u');
    CHECK_EQ(ferry_lookup("org.rg.a", &in, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_lookup("org.rg.b", &in, 5 * SEC), 0);
    say(to_owner[1], 'q');
    wait_ok(owner);
    CHECK_EQ(ferry_lookup("org.rg.b", &in, 5 * SEC), -ENOENT); /* with its publisher */

    broker_stop(&b);
    remove_copy();
    CHECK(access(ferryd_dir, F_OK) < 0 && access(file_dir, F_OK) < 0);
    puts("test_region_share: ok");
    return 0;
}
