// SPDX-License-Identifier: MIT
/*
 * region.c — ferry_region: shared memory as an object (ferry.h "regions and states",
 * region.h for the layout and rules, docs/region.md for the reasons).
 *
 * A region is a memfd (volatile) or a file (FERRY_REGION_FILE) starting with the
 * library's 4096-byte header. This file makes, validates, maps, grows and syncs it, and
 * keeps its version word: ferry_region_notify bumps it with a sequentially consistent
 * read-modify-write and then wakes every futex waiter on its low half; waiters (and the
 * poll thread behind ferry_region_poll_fd) re-read the whole word when woken. Nothing the
 * sharers can write steers a size or a loop here: sizes come from fstat and from the
 * handle's private copy of the header taken once at adoption.
 */
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS, O_TMPFILE, O_PATH, eventfd, syscall, statx */
#include "region/region.h"

#include "core/abi.h"
#include "core/futex.h"
#include "core/thread.h"
#include "core/time.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HDR ((size_t)FERRY__REGION_HDR)

/* ---- options */

static void opts_defaults(ferry_region_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->mode = 0600;
}

void ferry_region_opts_init_sized(ferry_region_opts *o, size_t size)
{
    ferry_region_opts d;
    opts_defaults(&d);
    ferry__sized_init(o, size, &d, sizeof d);
}

/* ---- small helpers */

static int proc_path(int fd, char *buf, size_t n)
{
    int k = snprintf(buf, n, "/proc/self/fd/%d", fd);
    return k > 0 && (size_t)k < n ? 0 : -EINVAL;
}

int ferry__region_reopen_ro(int fd)
{
    char p[64];
    if (fd < 0 || proc_path(fd, p, sizeof p) < 0) return -EINVAL;
    int ro = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    return ro < 0 ? -errno : ro;
}

static int full_pread(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -EBADMSG;
        got += (size_t)k;
    }
    return 0;
}

static int full_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    size_t put = 0;
    while (put < n) {
        ssize_t k = pwrite(fd, (const char *)buf + put, n - put, off + (off_t)put);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -errno;
        if (k == 0) return -EIO;
        put += (size_t)k;
    }
    return 0;
}

/* The header's write-once part as a creator writes it (live words zero). */
static void hdr_init(ferry__region_hdr *h, uint32_t kind, uint32_t hflags, uint64_t size,
                     uint64_t max_len)
{
    memset(h, 0, sizeof *h);
    h->magic = FERRY__REGION_MAGIC;
    h->layout = FERRY__REGION_LAYOUT;
    h->kind = kind;
    h->flags = hflags;
    h->max_len = max_len;
    atomic_init(&h->size, size);
    atomic_init(&h->version, 0);
    atomic_init(&h->seq, 0);
    atomic_init(&h->len, 0);
}

/* Judge a private copy of a header (read once) against the file's user bytes `usize`
 * and the kind wanted; the live size word may lag a growing resize but never exceed. */
static int hdr_judge(const ferry__region_hdr *h, uint32_t kind, uint64_t usize, int sealed_size)
{
    if (h->magic != FERRY__REGION_MAGIC || h->layout != FERRY__REGION_LAYOUT || h->kind != kind)
        return -EBADMSG;
    if (h->flags & ~(uint32_t)FERRY__REGION_HF_GROWABLE) return -EBADMSG;
    uint64_t hs = atomic_load_explicit(&h->size, memory_order_relaxed); /* a private copy */
    if (sealed_size ? hs != usize : hs > usize) return -EBADMSG;
    if (kind == FERRY_OBJ_STATE) {
        /* The payload is max_len rounded up to 8 bytes and must fit the user bytes. */
        if (h->max_len == 0 || h->max_len > FERRY_STATE_MAX_LEN) return -EBADMSG;
        if (((h->max_len + 7) & ~(uint64_t)7) > usize) return -EBADMSG;
        if (h->flags & FERRY__REGION_HF_GROWABLE) return -EBADMSG;
    } else if (h->max_len != 0) {
        return -EBADMSG;
    }
    return 0;
}

/* What fd is, validated (the body of ferry__region_check and of adoption): *hdr gets the
 * private copy of its header, *usize its user bytes, *sealed_size whether its size is
 * sealed, *writable whether fd was opened for writing, *file whether it is a file. */
static int inspect(int fd, uint32_t kind, uid_t uid, ferry__region_hdr *hdr, uint64_t *usize,
                   int *sealed_size, int *writable, int *file)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -EBADMSG;
    int acc = fl & O_ACCMODE;
    if (acc != O_RDONLY && acc != O_RDWR) return -EBADMSG; /* O_WRONLY, O_PATH: unreadable */
    if (fl & O_PATH) return -EBADMSG;
    /* F_GET_SEALS first: it answers for tmpfs and hugetlbfs files alone, asking no file
     * system. Any other file must be the caller's own, and that is checked from the
     * attributes the kernel has cached (AT_STATX_DONT_SYNC) before anything asks its file
     * system: an fstat or pread of a FUSE file (which another user can mount in a user
     * namespace) waits on that file system's server, so a stranger's such file is refused
     * without waiting. */
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0) {
        struct statx sx;
        if (errno != EINVAL ||
            statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_UID, &sx) < 0 ||
            !(sx.stx_mask & STATX_UID) || sx.stx_uid != uid)
            return -EBADMSG;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return -EBADMSG;
    if (st.st_size <= (off_t)HDR || (uint64_t)st.st_size - HDR > FERRY_REGION_MAX_SIZE)
        return -EBADMSG;
    uint64_t us = (uint64_t)st.st_size - HDR;
    int isfile = 0;
    if (seals < 0 || seals == F_SEAL_SEAL) {
        /* Not a memfd of ours: a plain file, trusted only when the caller owns it
         * (whoever can write it can truncate it under every mapper). tmpfs answers
         * F_GET_SEALS for its files too, with F_SEAL_SEAL alone (as for a memfd made
         * without sealing): that is such a file, under the same rule. */
        if (st.st_uid != uid) return -EBADMSG;
        isfile = 1;
    } else {
        int need = F_SEAL_SHRINK | F_SEAL_SEAL;
        if ((seals & need) != need) return -EBADMSG;
        /* A write seal would make writable mappings fail: not something we make. */
        if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) return -EBADMSG;
    }
    if (full_pread(fd, hdr, sizeof *hdr, 0) < 0) return -EBADMSG;
    int growable = (hdr->flags & FERRY__REGION_HF_GROWABLE) != 0;
    if (!isfile && growable != !(seals & F_SEAL_GROW)) return -EBADMSG;
    int sealed = !growable;
    int rc = hdr_judge(hdr, kind, us, sealed);
    if (rc < 0) return rc;
    *usize = us;
    *sealed_size = sealed;
    *writable = acc == O_RDWR;
    *file = isfile;
    return 0;
}

int ferry__region_check(int fd, uid_t uid, uint32_t *kind, int *writable, uint64_t *size,
                        int *persistent)
{
    if (fd < 0) return -EBADMSG;
    ferry__region_hdr h;
    uint64_t us;
    int sealed, w, f;
    int rc = inspect(fd, FERRY_OBJ_REGION, uid, &h, &us, &sealed, &w, &f);
    uint32_t k = FERRY_OBJ_REGION;
    if (rc < 0) {
        rc = inspect(fd, FERRY_OBJ_STATE, uid, &h, &us, &sealed, &w, &f);
        k = FERRY_OBJ_STATE;
    }
    if (rc < 0) return -EBADMSG;
    if (kind) *kind = k;
    if (writable) *writable = w;
    if (size) *size = us;
    if (persistent) *persistent = f;
    return 0;
}

/* ---- handles */

/* A handle on fd (validated: h is the private header copy). Maps the header page. */
static int handle_make(int fd, const ferry__region_hdr *h, uint64_t usize, int sealed, int writable,
                       ferry_region **out)
{
    ferry_region *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    void *p = mmap(NULL, HDR, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        /* ENOMEM is ours; anything else (EINVAL: a hugetlbfs memfd, ENODEV, EACCES) says
         * the descriptor is not what it claims. */
        int e = errno;
        free(r);
        return e == ENOMEM ? -ENOMEM : -EBADMSG;
    }
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        munmap(p, HDR);
        free(r);
        return -ENOMEM;
    }
    r->fd = fd;
    r->writable = writable;
    r->sealed_size = sealed;
    r->kind = h->kind;
    r->hflags = h->flags;
    r->max_len = h->max_len;
    r->size0 = (size_t)usize;
    r->hdr = p;
    r->poll_efd = -1;
    atomic_init(&r->poll_stop, 0);
    *out = r;
    return 0;
}

int ferry__region_adopt_kind(int fd, uint32_t kind, ferry_region **out)
{
    if (!out) {
        if (fd >= 0) close(fd);
        return -EINVAL;
    }
    *out = NULL;
    if (fd < 0) return -EINVAL;
    ferry__region_hdr h;
    uint64_t us;
    int sealed, w, f;
    int rc = inspect(fd, kind, geteuid(), &h, &us, &sealed, &w, &f);
    if (rc == 0) rc = handle_make(fd, &h, us, sealed, w, out);
    if (rc < 0) close(fd);
    return rc;
}

int ferry_region_adopt(int fd, ferry_region **out)
{
    return ferry__region_adopt_kind(fd, FERRY_OBJ_REGION, out);
}

/* A new volatile region: a sealed memfd holding the header. */
static int make_memfd(uint32_t kind, uint32_t hflags, uint64_t usize, uint64_t max_len, int *fdout)
{
    int fd = memfd_create(kind == FERRY_OBJ_STATE ? "ferry-state" : "ferry-region",
                          MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -errno;
    int rc = 0;
    if (ftruncate(fd, (off_t)(HDR + usize)) < 0) rc = -errno;
    ferry__region_hdr h;
    hdr_init(&h, kind, hflags, usize, max_len);
    if (rc == 0) rc = full_pwrite(fd, &h, sizeof h, 0);
    int seals = F_SEAL_SHRINK | F_SEAL_SEAL;
    if (!(hflags & FERRY__REGION_HF_GROWABLE)) seals |= F_SEAL_GROW;
    if (rc == 0 && fcntl(fd, F_ADD_SEALS, seals) < 0) rc = -errno;
    /* r--r--r--: no other uid holding a read-only descriptor can reopen it writable
     * through /proc/PID/fd (the owner could chmod it back: one uid is one domain). */
    if (rc == 0 && fchmod(fd, 0444) < 0) rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc == -EFBIG ? -ENOSPC : rc == -EINVAL ? -ENOMEM : rc;
    }
    *fdout = fd;
    return 0;
}

/* Split path into its directory (opened, O_PATH | O_DIRECTORY) and last component. */
static int open_parent(const char *path, int *dfd, char **base)
{
    size_t n = strnlen(path, PATH_MAX);
    if (n == 0 || n >= PATH_MAX) return -EINVAL;
    char *copy = strdup(path);
    if (!copy) return -ENOMEM;
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    char *b = copy;
    if (slash) {
        *slash = '\0';
        dir = slash == copy ? "/" : copy;
        b = slash + 1;
    }
    if (*b == '\0' || strcmp(b, ".") == 0 || strcmp(b, "..") == 0) {
        free(copy);
        return -EINVAL;
    }
    int d = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) {
        int e = -errno;
        free(copy);
        return e;
    }
    char *bb = strdup(b);
    free(copy);
    if (!bb) {
        close(d);
        return -ENOMEM;
    }
    *dfd = d;
    *base = bb;
    return 0;
}

/* Build a complete region file in directory dfd, unnamed where the filesystem allows
 * (O_TMPFILE, then linked in: the name appears complete or not at all); else created
 * O_EXCL under its name and filled (an opener racing with us may then see it short and
 * get -EBADMSG). 0, -EEXIST (the name exists), or -errno. */
static int file_create(int dfd, const char *base, uint32_t mode, uint32_t kind, uint32_t hflags,
                       uint64_t usize, uint64_t max_len, int *fdout)
{
    ferry__region_hdr h;
    hdr_init(&h, kind, hflags, usize, max_len);
    int fd = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    int named = 0;
    if (fd < 0) {
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return -errno;
        fd = openat(dfd, base, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) return -errno;
        named = 1;
    }
    int rc = 0;
    if (fchmod(fd, mode) < 0) rc = -errno;
    if (rc == 0 && ftruncate(fd, (off_t)(HDR + usize)) < 0) rc = errno == EFBIG ? -ENOSPC : -errno;
    if (rc == 0) rc = full_pwrite(fd, &h, sizeof h, 0);
    if (rc == 0 && !named) {
        char p[64];
        proc_path(fd, p, sizeof p);
        if (linkat(AT_FDCWD, p, dfd, base, AT_SYMLINK_FOLLOW) < 0) rc = -errno;
    }
    if (rc < 0) {
        if (named) unlinkat(dfd, base, 0);
        close(fd);
        return rc;
    }
    *fdout = fd;
    return 0;
}

/* Open an existing region file at base in dfd, never through a symlink. */
static int file_open(int dfd, const char *base, int rdonly, int *fdout)
{
    int fd = openat(dfd, base,
                    (rdonly ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return -errno; /* a symlink: ELOOP; a fifo never blocks us (O_NONBLOCK) */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fdout = fd;
    return 0;
}

int ferry__region_make(uint32_t kind, size_t size, uint64_t max_len, const ferry_region_opts *opts,
                       ferry_region **out)
{
    if (!out) return -EINVAL;
    *out = NULL;
    ferry_region_opts o;
    opts_defaults(&o);
    int rc = ferry__sized_in(&o, sizeof o, opts, FERRY__REGION_OPTS_V0); /* core/abi.h */
    if (rc < 0) return rc;
    uint32_t known =
        FERRY_REGION_GROWABLE | FERRY_REGION_FILE | FERRY_REGION_EXCL | FERRY_REGION_RDONLY;
    int file = (o.flags & FERRY_REGION_FILE) != 0;
    if ((o.flags & ~known) || o.mode > 0777 || file != (o.path != NULL)) return -EINVAL;
    if (!file && (o.flags & (FERRY_REGION_EXCL | FERRY_REGION_RDONLY))) return -EINVAL;
    if ((o.flags & FERRY_REGION_GROWABLE) && (o.flags & FERRY_REGION_RDONLY)) return -EINVAL;
    if ((uint64_t)size > FERRY_REGION_MAX_SIZE) return -EINVAL;
    /* size 0 only opens an existing file as it is. */
    if (size == 0 && (!file || (o.flags & FERRY_REGION_EXCL))) return -EINVAL;
    uint32_t hflags = (o.flags & FERRY_REGION_GROWABLE) ? FERRY__REGION_HF_GROWABLE : 0;

    int fd = -1;
    if (!file) {
        rc = make_memfd(kind, hflags, size, max_len, &fd);
        if (rc < 0) return rc;
    } else {
        int dfd = -1;
        char *base = NULL;
        rc = open_parent(o.path, &dfd, &base);
        if (rc < 0) return rc;
        int rdonly = (o.flags & FERRY_REGION_RDONLY) != 0;
        if (rdonly) {
            rc = file_open(dfd, base, 1, &fd);
        } else {
            /* An existing file is opened first (so a directory we may not write is fine
             * for a file that is there); then, when there is none, created; a creator
             * that loses a race to another opens the winner's. size 0 only opens, and
             * EXCL only creates. */
            int excl = (o.flags & FERRY_REGION_EXCL) != 0;
            rc = excl ? -ENOENT : file_open(dfd, base, 0, &fd);
            if (rc == -ENOENT && size != 0) {
                rc = file_create(dfd, base, o.mode, kind, hflags, size, max_len, &fd);
                if (rc == -EEXIST && !excl) rc = file_open(dfd, base, 0, &fd);
            }
        }
        free(base);
        close(dfd);
        if (rc < 0) return rc;
    }
    ferry__region_hdr h;
    uint64_t us;
    int sealed, w, f;
    rc = inspect(fd, kind, geteuid(), &h, &us, &sealed, &w, &f);
    if (rc == 0 && file && size != 0) {
        /* An existing file must be the region asked for. */
        int growable = (h.flags & FERRY__REGION_HF_GROWABLE) != 0;
        if (growable != ((o.flags & FERRY_REGION_GROWABLE) != 0))
            rc = -EBADMSG;
        else if (growable ? us < size : us != size)
            rc = -EBADMSG;
        else if (kind == FERRY_OBJ_STATE && h.max_len != max_len)
            rc = -EBADMSG;
    }
    if (rc == 0) rc = handle_make(fd, &h, us, sealed, w, out);
    if (rc < 0) close(fd);
    return rc;
}

int ferry_region_create(size_t size, const ferry_region_opts *opts, ferry_region **out)
{
    return ferry__region_make(FERRY_OBJ_REGION, size, 0, opts, out);
}

int ferry_region_fd(const ferry_region *r)
{
    return r ? r->fd : -EINVAL;
}

int ferry_region_fd_readonly(const ferry_region *r, int *fd)
{
    if (!r || !fd) return -EINVAL;
    int ro = ferry__region_reopen_ro(r->fd);
    if (ro < 0) return ro;
    *fd = ro;
    return 0;
}

int ferry_region_writable(const ferry_region *r)
{
    return r ? r->writable : -EINVAL;
}

/* The user bytes now: fixed, or fstat's (a region never shrinks: at least size0). */
static size_t size_now(const ferry_region *r)
{
    if (r->sealed_size) return r->size0;
    struct stat st;
    if (fstat(r->fd, &st) < 0 || st.st_size <= (off_t)HDR) return r->size0;
    uint64_t us = (uint64_t)st.st_size - HDR;
    if (us > FERRY_REGION_MAX_SIZE) us = FERRY_REGION_MAX_SIZE;
    /* A file region may have been truncated by its owner: never report less than we
     * know was there (the mappings then fault: files are the owner's to keep whole). */
    return us < r->size0 ? r->size0 : (size_t)us;
}

size_t ferry_region_size(const ferry_region *r)
{
    return r ? size_now(r) : 0;
}

int ferry_region_map(ferry_region *r, uint32_t prot, void **addr)
{
    if (!r || !addr) return -EINVAL;
    *addr = NULL;
    if (prot != FERRY_REGION_READ && prot != (FERRY_REGION_READ | FERRY_REGION_WRITE))
        return -EINVAL;
    if ((prot & FERRY_REGION_WRITE) && !r->writable) return -EACCES;
    size_t us = size_now(r);
    long pg = sysconf(_SC_PAGESIZE);
    /* Map from the user bytes themselves where the header is a whole number of pages,
     * else from the start of the object (the header then shares the mapping). */
    size_t off = (pg > 0 && HDR % (size_t)pg == 0) ? HDR : 0;
    size_t len = us + (HDR - off);
    int mprot = PROT_READ | ((prot & FERRY_REGION_WRITE) ? PROT_WRITE : 0);
    pthread_mutex_lock(&r->lock);
    if (r->nmaps == r->capmaps) {
        size_t nc = r->capmaps ? r->capmaps * 2 : 4;
        ferry__rmap *nm = realloc(r->maps, nc * sizeof *nm);
        if (!nm) {
            pthread_mutex_unlock(&r->lock);
            return -ENOMEM;
        }
        r->maps = nm;
        r->capmaps = nc;
    }
    void *p = mmap(NULL, len, mprot, MAP_SHARED, r->fd, (off_t)off);
    if (p == MAP_FAILED) {
        int e = errno;
        pthread_mutex_unlock(&r->lock);
        return e == EACCES || e == EPERM ? -EACCES : -ENOMEM;
    }
    ferry__rmap m = {.base = p, .len = len, .user = (char *)p + (HDR - off)};
    r->maps[r->nmaps++] = m;
    pthread_mutex_unlock(&r->lock);
    *addr = m.user;
    return 0;
}

int ferry_region_unmap(ferry_region *r, void *addr)
{
    if (!r || !addr) return -EINVAL;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nmaps; i++) {
        if (r->maps[i].user == addr) {
            munmap(r->maps[i].base, r->maps[i].len);
            r->maps[i] = r->maps[--r->nmaps];
            pthread_mutex_unlock(&r->lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return -EINVAL;
}

int ferry_region_notify(ferry_region *r)
{
    if (!r) return -EINVAL;
    if (!r->writable) return -EACCES;
    /* seq_cst RMW: orders every write of this thread before it (release) and is in the
     * single total order with the waiters' seq_cst loads of the word, so a waiter that
     * read the old value before sleeping is either refused by the kernel's compare or
     * woken by the wake below, which comes after. */
    atomic_fetch_add_explicit(&r->hdr->version, 1, memory_order_seq_cst);
    ferry__futex_wake(ferry__region_vword(r->hdr), INT32_MAX);
    return 0;
}

uint64_t ferry_region_version(const ferry_region *r)
{
    if (!r) return 0;
    /* acquire: pairs with the notifier's RMW, so its earlier writes are visible. */
    return atomic_load_explicit(&r->hdr->version, memory_order_acquire);
}

int ferry__region_wait_until(ferry_region *r, int (*check)(ferry_region *, uint64_t), uint64_t seen,
                             int64_t deadline)
{
    _Atomic uint32_t *w = ferry__region_vword(r->hdr);
    for (;;) {
        /* seq_cst loads: the word's low half first (what we will sleep on), then the
         * condition; see ferry_region_notify for why no wake-up is lost. */
        uint32_t lo = atomic_load_explicit(w, memory_order_seq_cst);
        int done = check ? check(r, seen)
                         : atomic_load_explicit(&r->hdr->version, memory_order_seq_cst) != seen;
        if (done) return 0;
        if (deadline == 0) return -EAGAIN;
        int64_t left = ferry__remaining(deadline);
        if (left <= 0) return -ETIMEDOUT;
        (void)ferry__futex_wait(w, lo, left); /* woken, changed, EINTR, timeout: re-check */
    }
}

int ferry_region_wait(ferry_region *r, uint64_t seen, int64_t timeout_ns)
{
    int64_t deadline;
    if (!r || ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    return ferry__region_wait_until(r, NULL, seen, deadline);
}

int ferry_region_resize(ferry_region *r, size_t new_size)
{
    if (!r || (uint64_t)new_size > FERRY_REGION_MAX_SIZE) return -EINVAL;
    if (r->sealed_size) return -EPERM;
    if (!r->writable) return -EACCES;
    if (new_size <= size_now(r)) return 0;
    if (ftruncate(r->fd, (off_t)(HDR + new_size)) < 0) {
        int e = errno;
        if (e == EPERM && size_now(r) >= new_size) return 0; /* another grew it further */
        return e == EFBIG ? -ENOSPC : -e; /* EFBIG: larger than the filesystem allows */
    }
    /* relaxed: informational only (readers trust fstat); the notify orders it. */
    uint64_t cur = atomic_load_explicit(&r->hdr->size, memory_order_relaxed);
    if (cur < new_size) atomic_store_explicit(&r->hdr->size, new_size, memory_order_relaxed);
    return ferry_region_notify(r);
}

int ferry_region_sync(ferry_region *r)
{
    if (!r) return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nmaps; i++)
        if (msync(r->maps[i].base, r->maps[i].len, MS_SYNC) < 0 && rc == 0) rc = -errno;
    pthread_mutex_unlock(&r->lock);
    if (msync(r->hdr, HDR, MS_SYNC) < 0 && rc == 0) rc = -errno;
    if (fsync(r->fd) < 0 && rc == 0 && errno != EINVAL && errno != EROFS) rc = -errno;
    return rc == 0 ? 0 : rc == -ENOMEM ? -EINVAL : -EIO;
}

/* ---- the poll descriptor: an eventfd signalled by a thread asleep on the futex */

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* Sleep until the version's low half differs from lo or the stop word is set: one
 * futex_waitv on both (the stop word is private to this process). Without futex_waitv
 * (kernel < 5.16): 50 ms slices on the version alone, checking the stop word between. */
static void poll_sleep(ferry_region *r, uint32_t lo)
{
    static _Atomic int no_waitv;
    if (!atomic_load_explicit(&no_waitv, memory_order_relaxed)) {
        struct futex_waitv v[2];
        memset(v, 0, sizeof v);
        v[0].uaddr = (uintptr_t)ferry__region_vword(r->hdr);
        v[0].val = lo;
        v[0].flags = FUTEX_32;
        v[1].uaddr = (uintptr_t)&r->poll_stop;
        v[1].val = 0;
        v[1].flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
        long rc = syscall(SYS_futex_waitv, v, 2, 0, NULL, CLOCK_MONOTONIC);
        if (rc >= 0 || errno != ENOSYS) return;
        atomic_store_explicit(&no_waitv, 1, memory_order_relaxed);
    }
    (void)ferry__futex_wait(ferry__region_vword(r->hdr), lo, 50 * 1000 * 1000);
}

static void *poll_main(void *arg)
{
    ferry_region *r = arg;
    /* Read by ferry_region_poll_fd before the thread started (a notify between that
     * call and our first load is then not lost). */
    uint64_t seen = r->poll_seen;
    for (;;) {
        /* acquire: pairs with the stopper's release store (nothing else to order). */
        if (atomic_load_explicit(&r->poll_stop, memory_order_acquire)) break;
        uint32_t lo = atomic_load_explicit(ferry__region_vword(r->hdr), memory_order_seq_cst);
        uint64_t v = atomic_load_explicit(&r->hdr->version, memory_order_seq_cst);
        if (v != seen) {
            seen = v;
            uint64_t one = 1;
            ssize_t k;
            do k = write(r->poll_efd, &one, sizeof one);
            while (k < 0 && errno == EINTR);
            continue;
        }
        poll_sleep(r, lo);
    }
    return NULL;
}

static void poll_stop(ferry_region *r)
{
    if (!r->poll_running) return;
    /* release: the thread sees the flag; then wake its private futex word. */
    atomic_store_explicit(&r->poll_stop, 1, memory_order_release);
    syscall(SYS_futex, (uint32_t *)&r->poll_stop, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
    pthread_join(r->poll_thr, NULL);
    r->poll_running = 0;
    atomic_store_explicit(&r->poll_stop, 0, memory_order_relaxed);
}

int ferry_region_poll_fd(ferry_region *r)
{
    if (!r) return -EINVAL;
    pthread_mutex_lock(&r->lock);
    pid_t me = getpid();
    if (r->poll_efd >= 0 && r->poll_pid != me) {
        /* A child after fork: the thread stayed in the parent, and the eventfd is the
         * parent's too (reading it would steal the parent's readiness). Make our own. */
        close(r->poll_efd);
        r->poll_efd = -1;
        r->poll_running = 0;
    }
    int rc = r->poll_efd;
    if (rc < 0) {
        int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0) {
            rc = -errno;
        } else {
            r->poll_efd = efd;
            r->poll_pid = me;
            atomic_store_explicit(&r->poll_stop, 0, memory_order_relaxed);
            /* seq_cst as the loads of ferry__region_wait_until: a notify after this load
             * is seen by the thread's first compare (or wakes its first sleep). */
            r->poll_seen = atomic_load_explicit(&r->hdr->version, memory_order_seq_cst);
            /* The thread takes no signal (core/thread.h: why). */
            sigset_t all, old;
            ferry__thread_sigmask(&all);
            pthread_sigmask(SIG_SETMASK, &all, &old);
            int e = pthread_create(&r->poll_thr, NULL, poll_main, r);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            if (e != 0) {
                close(efd);
                r->poll_efd = -1;
                rc = e == ENOMEM ? -ENOMEM : -EAGAIN;
            } else {
                r->poll_running = 1;
                rc = efd;
            }
        }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int ferry_region_poll_ack(ferry_region *r)
{
    if (!r) return -EINVAL;
    pthread_mutex_lock(&r->lock);
    int efd = r->poll_efd >= 0 && r->poll_pid == getpid() ? r->poll_efd : -1;
    pthread_mutex_unlock(&r->lock);
    if (efd < 0) return -EINVAL;
    uint64_t n;
    ssize_t k;
    do k = read(efd, &n, sizeof n); /* non-blocking: EAGAIN when not readable */
    while (k < 0 && errno == EINTR);
    return 0;
}

void ferry_region_close(ferry_region *r)
{
    if (!r) return;
    if (r->poll_pid == getpid()) poll_stop(r);
    if (r->poll_efd >= 0) close(r->poll_efd);
    for (size_t i = 0; i < r->nmaps; i++) munmap(r->maps[i].base, r->maps[i].len);
    free(r->maps);
    munmap(r->hdr, HDR);
    close(r->fd);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
