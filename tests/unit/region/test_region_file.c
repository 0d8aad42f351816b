// SPDX-License-Identifier: MIT
/*
 * test_region_file — persistent regions (FERRY_REGION_FILE) in a private temporary
 * directory, removed at the end. A region (and a state) written by one process is there,
 * with its version, for the next process after the first has exited; the file has the
 * requested mode exactly (whatever the umask); an existing file is validated (size,
 * header, owner, kind: -EBADMSG), EXCL gives -EEXIST, RDONLY a read-only handle (-ENOENT
 * when there is no file); a symlink at the path is refused (-ELOOP) even when it points
 * at a good region file; a fifo at the path neither blocks nor is taken.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"

#include <fcntl.h>
#include <sys/stat.h>

static char dir[64], path[128];

static ferry_region_opts fopts(uint32_t flags, const char *p)
{
    ferry_region_opts o;
    ferry_region_opts_init(&o);
    o.flags = FERRY_REGION_FILE | flags;
    o.path = p;
    o.mode = 0640;
    return o;
}

static void child_create(void)
{
    ferry_region_opts o = fopts(FERRY_REGION_EXCL, path);
    ferry_region *r;
    CHECK_EQ(ferry_region_create(10000, &o, &r), 0);
    char *p;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&p), 0);
    strcpy(p, "persisted");
    p[9999] = 'z';
    CHECK_EQ(ferry_region_notify(r), 0);
    CHECK_EQ(ferry_region_sync(r), 0);
    ferry_region_close(r);
    ferry_state *s;
    char sp[160];
    snprintf(sp, sizeof sp, "%s/state", dir);
    o = fopts(0, sp);
    CHECK_EQ(ferry_state_create(100, &o, &s), 0);
    CHECK_EQ(ferry_state_write(s, "config v1", 10), 0);
    CHECK_EQ(ferry_state_write(s, "config v2", 10), 0);
    ferry_state_close(s);
}

static void child_reopen(void)
{
    int fds0 = fd_count();
    ferry_region_opts o = fopts(0, path);
    ferry_region *r;
    CHECK_EQ(ferry_region_create(10000, &o, &r), 0); /* exists: opened, validated */
    CHECK_EQ(ferry_region_version(r), 1);
    CHECK_EQ(ferry_region_writable(r), 1);
    char *p;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ, (void **)&p), 0);
    CHECK(strcmp(p, "persisted") == 0);
    CHECK_EQ(p[9999], 'z');
    /* by descriptor: a file of our own uid adopts */
    ferry_region *r2;
    CHECK_EQ(ferry_region_adopt(fcntl(ferry_region_fd(r), F_DUPFD_CLOEXEC, 0), &r2), 0);
    ferry_region_close(r2);
    ferry_region_close(r);
    o = fopts(FERRY_REGION_RDONLY, path);
    CHECK_EQ(ferry_region_create(0, &o, &r), 0); /* 0: as it is */
    CHECK_EQ(ferry_region_writable(r), 0);
    CHECK_EQ(ferry_region_size(r), 10000);
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&p), -EACCES);
    CHECK_EQ(ferry_region_notify(r), -EACCES);
    ferry_region_close(r);
    ferry_state *s;
    char sp[160], buf[100];
    snprintf(sp, sizeof sp, "%s/state", dir);
    o = fopts(FERRY_REGION_RDONLY, sp);
    CHECK_EQ(ferry_state_create(100, &o, &s), 0);
    size_t len;
    uint64_t ver;
    CHECK_EQ(ferry_state_read(s, buf, sizeof buf, &len, &ver), 0);
    CHECK_EQ(len, 10);
    CHECK_EQ(ver, 2);
    CHECK(strcmp(buf, "config v2") == 0);
    CHECK_EQ(ferry_state_write(s, "x", 1), -EACCES);
    ferry_state_close(s);
    o = fopts(0, sp);
    CHECK_EQ(ferry_state_create(99, &o, &s), -EBADMSG); /* another max_len */
    CHECK_EQ(fd_count(), fds0);
}

int main(void)
{
    int fds0 = fd_count();
    umask(077);
    strcpy(dir, "/tmp/ferry-region-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/data", dir);

    ferry_region_opts o = fopts(0, NULL);
    ferry_region *r;
    CHECK_EQ(ferry_region_create(100, &o, &r), -EINVAL); /* FILE without a path */
    o = fopts(0, path);
    o.flags = 0;
    CHECK_EQ(ferry_region_create(100, &o, &r), -EINVAL); /* a path without FILE */
    o = fopts(FERRY_REGION_EXCL, path);
    CHECK_EQ(ferry_region_create(0, &o, &r), -EINVAL);
    o = fopts(FERRY_REGION_RDONLY | FERRY_REGION_GROWABLE, path);
    CHECK_EQ(ferry_region_create(0, &o, &r), -EINVAL);
    o = fopts(0, path);
    o.mode = 01777;
    CHECK_EQ(ferry_region_create(100, &o, &r), -EINVAL);
    o = fopts(FERRY_REGION_RDONLY, path);
    CHECK_EQ(ferry_region_create(0, &o, &r), -ENOENT);
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/none/data", dir);
    o = fopts(0, nodir);
    CHECK_EQ(ferry_region_create(100, &o, &r), -ENOENT);

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        child_create();
        _exit(0);
    }
    wait_ok(pid); /* the creator is gone */
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0640); /* exactly, despite umask 077 */
    CHECK_EQ(st.st_size, 4096 + 10000);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        child_reopen();
        _exit(0);
    }
    wait_ok(pid);

    o = fopts(FERRY_REGION_EXCL, path);
    CHECK_EQ(ferry_region_create(10000, &o, &r), -EEXIST);
    o = fopts(0, path);
    CHECK_EQ(ferry_region_create(9999, &o, &r), -EBADMSG); /* another size */
    o = fopts(FERRY_REGION_GROWABLE, path);
    CHECK_EQ(ferry_region_create(10000, &o, &r), -EBADMSG); /* not growable */
    ferry_state *s;
    o = fopts(0, path);
    CHECK_EQ(ferry_state_create(100, &o, &s), -EBADMSG); /* a region, not a state */

    /* a symlink at the path: refused, even to a good region file */
    char link[160];
    snprintf(link, sizeof link, "%s/link", dir);
    CHECK(symlink(path, link) == 0);
    o = fopts(0, link);
    CHECK_EQ(ferry_region_create(10000, &o, &r), -ELOOP);
    CHECK_EQ(ferry_region_create(0, &o, &r), -ELOOP);
    o = fopts(FERRY_REGION_RDONLY, link);
    CHECK_EQ(ferry_region_create(0, &o, &r), -ELOOP);
    char dangling[160];
    snprintf(dangling, sizeof dangling, "%s/dangling", dir);
    CHECK(symlink("/tmp/ferry-region-nonexistent-target", dangling) == 0);
    o = fopts(0, dangling);
    CHECK_EQ(ferry_region_create(100, &o, &r), -ELOOP); /* and creates nothing there */
    CHECK(access("/tmp/ferry-region-nonexistent-target", F_OK) < 0);

    /* a fifo: no block, no region */
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    CHECK(mkfifo(fifo, 0600) == 0);
    o = fopts(0, fifo);
    CHECK_EQ(ferry_region_create(100, &o, &r), -EBADMSG);
    /* a regular file of ours that is no region */
    char junk[160];
    snprintf(junk, sizeof junk, "%s/junk", dir);
    int jf = open(junk, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK(jf >= 0);
    char zeros[8192] = {0};
    CHECK_EQ(write(jf, zeros, sizeof zeros), (long)sizeof zeros);
    close(jf);
    o = fopts(0, junk);
    CHECK_EQ(ferry_region_create(0, &o, &r), -EBADMSG);
    CHECK_EQ(ferry_region_create(4096, &o, &r), -EBADMSG);

    /* a good region file owned by another uid: refused (its owner could truncate it) */
    if (geteuid() == 0) {
        CHECK(chown(path, 61719, 61719) == 0);
        o = fopts(0, path);
        CHECK_EQ(ferry_region_create(10000, &o, &r), -EBADMSG);
        o = fopts(FERRY_REGION_RDONLY, path);
        CHECK_EQ(ferry_region_create(0, &o, &r), -EBADMSG);
    }

    /* a growable file region grows, and is found grown by the next opener */
    char gp[160];
    snprintf(gp, sizeof gp, "%s/growable", dir);
    o = fopts(FERRY_REGION_GROWABLE, gp);
    CHECK_EQ(ferry_region_create(100, &o, &r), 0);
    CHECK_EQ(ferry_region_resize(r, 5000), 0);
    char *g;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&g), 0);
    g[4999] = 'g';
    CHECK_EQ(ferry_region_sync(r), 0);
    ferry_region_close(r);
    CHECK_EQ(ferry_region_create(100, &o, &r), 0); /* at least 100: fine */
    CHECK_EQ(ferry_region_size(r), 5000);
    CHECK_EQ(ferry_region_version(r), 1); /* the resize notified */
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ, (void **)&g), 0);
    CHECK_EQ(g[4999], 'g');
    ferry_region_close(r);
    CHECK_EQ(ferry_region_create(6000, &o, &r), -EBADMSG); /* smaller than asked */

    /* an existing file in a directory we may not write: opened (nothing to create) */
    char rod[160], rof[200];
    snprintf(rod, sizeof rod, "%s/rodir", dir);
    snprintf(rof, sizeof rof, "%s/data", rod);
    CHECK(mkdir(rod, 0700) == 0);
    o = fopts(0, rof);
    CHECK_EQ(ferry_region_create(100, &o, &r), 0);
    ferry_region_close(r);
    CHECK(chmod(rod, 0500) == 0);
    CHECK_EQ(ferry_region_create(100, &o, &r), 0);
    ferry_region_close(r);
    CHECK(chmod(rod, 0700) == 0);
    CHECK(unlink(rof) == 0 && rmdir(rod) == 0);

    char sp[160];
    snprintf(sp, sizeof sp, "%s/state", dir);
    const char *rm[] = {path, link, dangling, fifo, junk, sp, gp};
    for (size_t i = 0; i < sizeof rm / sizeof rm[0]; i++) CHECK(unlink(rm[i]) == 0);
    CHECK(rmdir(dir) == 0);
    CHECK_EQ(fd_count(), fds0);
    puts("ok");
    return 0;
}
