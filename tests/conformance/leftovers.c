// SPDX-License-Identifier: MIT
/*
 * leftovers.c — the conformance suite's inventory of what a transport can leave behind,
 * taken before the first channel and after the last, and compared:
 *  - the run's temporary directory (socket files, FIFOs): must be empty again;
 *  - /dev/mqueue (POSIX queues; when it is not mounted, every queue name the run used is
 *    probed with mq_open instead, which must say ENOENT);
 *  - System V message queues, from /proc/sysvipc/msg (what ipcs -q shows), and every key
 *    the run used probed with msgget, which must say ENOENT;
 *  - /dev/shm entries named ferry (the library uses memfds: there must never be any);
 *  - abstract unix sockets named by this run (/proc/net/unix);
 *  - tcp listeners on ports this run used (/proc/net/tcp, tcp6).
 * Other processes (other test runs) may create and remove objects meanwhile: an object
 * that appeared is this run's when its name, key or port is one the run used or a
 * process of the run last sent to or received from it (System V lspid/lrpid); only those
 * fail the check, others are printed as notes.
 */
#include "conf.h"

#include <fcntl.h>
#include <mqueue.h>
#include <stdbool.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/stat.h>

#define MAX_ITEMS 4096
#define MAX_USED  1024

typedef struct item {
    char id[300];
    int pid1, pid2; /* System V: lspid, lrpid */
} item;

typedef struct snap {
    item *v;
    size_t n;
} snap;

static char dir[128];
static snap before;
static char mq_used[MAX_USED][256];
static long key_used[MAX_USED];
static unsigned port_used[MAX_USED];
static pid_t pid_used[MAX_USED];
static size_t n_mq, n_key, n_port, n_pid;
static bool mqueue_mounted;

static void add(snap *s, const char *id, int pid1, int pid2)
{
    CHECK(s->n < MAX_ITEMS);
    item *it = &s->v[s->n++];
    snprintf(it->id, sizeof it->id, "%s", id);
    it->pid1 = pid1;
    it->pid2 = pid2;
}

static void list_dir(snap *s, const char *path, const char *prefix, const char *must_contain)
{
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    char id[300];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (must_contain && !strstr(e->d_name, must_contain)) continue;
        snprintf(id, sizeof id, "%s%s", prefix, e->d_name);
        add(s, id, 0, 0);
    }
    closedir(d);
}

static void sysv_msg(snap *s)
{
    FILE *fp = fopen("/proc/sysvipc/msg", "r");
    if (!fp) return;
    char line[512], id[300];
    if (!fgets(line, sizeof line, fp)) { /* the header */
        fclose(fp);
        return;
    }
    while (fgets(line, sizeof line, fp)) {
        long key;
        int msqid, lspid, lrpid;
        unsigned perms;
        unsigned long cbytes, qnum;
        if (sscanf(line, "%ld %d %o %lu %lu %d %d", &key, &msqid, &perms, &cbytes, &qnum, &lspid,
                   &lrpid) != 7)
            continue;
        snprintf(id, sizeof id, "sysv msg key %ld id %d", key, msqid);
        add(s, id, lspid, lrpid);
    }
    fclose(fp);
}

/* Abstract unix sockets of this run: "@ferry-conf-PID-..." in /proc/net/unix. */
static void unix_abstract(snap *s)
{
    FILE *fp = fopen("/proc/net/unix", "r");
    if (!fp) return;
    char line[512], want[64], id[300];
    snprintf(want, sizeof want, "@ferry-conf-%d-", (int)getpid());
    while (fgets(line, sizeof line, fp)) {
        char *p = strstr(line, want);
        if (!p) continue;
        p[strcspn(p, " \n")] = 0;
        snprintf(id, sizeof id, "unix socket %s", p);
        add(s, id, 0, 0);
    }
    fclose(fp);
}

/* Listening tcp sockets (state 0A) by local port. */
static void tcp_listen(snap *s, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return;
    char line[512], local[128], id[300];
    unsigned st;
    while (fgets(line, sizeof line, fp)) {
        if (sscanf(line, " %*s %127s %*s %x", local, &st) != 2 || st != 0x0a) continue;
        char *colon = strrchr(local, ':');
        if (!colon) continue;
        snprintf(id, sizeof id, "tcp listener port %lu", strtoul(colon + 1, NULL, 16));
        add(s, id, 0, 0);
    }
    fclose(fp);
}

static void take(snap *s)
{
    s->v = calloc(MAX_ITEMS, sizeof *s->v);
    CHECK(s->v != NULL);
    s->n = 0;
    list_dir(s, dir, "file ", NULL);
    list_dir(s, "/dev/mqueue", "posix mq /", NULL);
    list_dir(s, "/dev/shm", "/dev/shm/", "ferry");
    sysv_msg(s);
    unix_abstract(s);
    tcp_listen(s, "/proc/net/tcp");
    tcp_listen(s, "/proc/net/tcp6");
}

static bool has(const snap *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].id, id) == 0) return true;
    return false;
}

static bool pid_ours(int pid)
{
    if (pid <= 0) return false;
    if (pid == (int)getpid()) return true;
    for (size_t i = 0; i < n_pid; i++)
        if (pid_used[i] == pid) return true;
    return false;
}

/* Is an object that appeared during the run this run's? */
static bool ours(const item *it)
{
    char want[64];
    long key;
    int msqid;
    unsigned long port;
    if (strncmp(it->id, "file ", 5) == 0) return true;
    if (strncmp(it->id, "/dev/shm/", 9) == 0) return true;
    if (strncmp(it->id, "unix socket ", 12) == 0) return true;
    snprintf(want, sizeof want, "posix mq /ferry-conf-%d-", (int)getpid());
    if (strncmp(it->id, want, strlen(want)) == 0) return true;
    if (sscanf(it->id, "sysv msg key %ld id %d", &key, &msqid) == 2) {
        for (size_t i = 0; i < n_key; i++)
            if (key >= key_used[i] && key < key_used[i] + 4) return true;
        return pid_ours(it->pid1) || pid_ours(it->pid2);
    }
    if (sscanf(it->id, "tcp listener port %lu", &port) == 1) {
        for (size_t i = 0; i < n_port; i++)
            if (port_used[i] == port) return true;
    }
    return false;
}

void leftovers_begin(const char *tmpdir)
{
    snprintf(dir, sizeof dir, "%s", tmpdir);
    struct stat st;
    mqueue_mounted = stat("/dev/mqueue", &st) == 0 && S_ISDIR(st.st_mode);
    take(&before);
}

void leftovers_note_addr(const addr *a)
{
    if (strncmp(a->url, "posixmq://", 10) == 0 && n_mq < MAX_USED)
        snprintf(mq_used[n_mq++], sizeof mq_used[0], "%s", a->path);
    if (a->key && n_key < MAX_USED) key_used[n_key++] = a->key;
    if (a->port && n_port < MAX_USED) port_used[n_port++] = a->port;
}

void leftovers_note_pid(pid_t pid)
{
    if (n_pid < MAX_USED) pid_used[n_pid++] = pid;
}

/* Probe the names and keys the run used: none may exist any more. Returns the number
 * that did (each removed, so that a failed run leaves nothing either). */
static int probe_used(void)
{
    int bad = 0;
    for (size_t i = 0; i < n_mq; i++) {
        mqd_t q = mq_open(mq_used[i], O_RDONLY);
        if (q != (mqd_t)-1) {
            fprintf(stderr, "left behind: posix mq %s\n", mq_used[i]);
            mq_close(q);
            mq_unlink(mq_used[i]);
            bad++;
        } else if (errno != ENOENT) {
            fprintf(stderr, "posix mq %s: mq_open: %s (want ENOENT)\n", mq_used[i],
                    strerror(errno));
            bad++;
        }
    }
    for (size_t i = 0; i < n_key; i++) {
        for (long k = key_used[i]; k < key_used[i] + 4; k++) {
            int id = msgget((key_t)k, 0);
            if (id >= 0) {
                fprintf(stderr, "left behind: sysv msg key %ld id %d\n", k, id);
                msgctl(id, IPC_RMID, NULL);
                bad++;
            }
        }
    }
    return bad;
}

void leftovers_end(void)
{
    snap after;
    take(&after);
    int bad = 0, notes = 0;
    for (size_t i = 0; i < after.n; i++) {
        if (has(&before, after.v[i].id)) continue;
        if (ours(&after.v[i])) {
            fprintf(stderr, "left behind: %s\n", after.v[i].id);
            bad++;
        } else if (notes++ < 10) {
            printf("note: appeared meanwhile, not this run's: %s\n", after.v[i].id);
        }
    }
    for (size_t i = 0; i < before.n; i++)
        if (!has(&after, before.v[i].id) && notes++ < 10)
            printf("note: went away meanwhile, not this run's: %s\n", before.v[i].id);
    bad += probe_used();
    printf("leftovers: %s (temporary directory, /dev/mqueue%s, System V queues, /dev/shm, "
           "abstract sockets, tcp listeners; %zu queue names, %zu keys, %zu ports probed)\n",
           bad ? "FOUND" : "none", mqueue_mounted ? "" : " not mounted", n_mq, n_key, n_port);
    free(after.v);
    free(before.v);
    before.v = NULL;
    CHECK_EQ(bad, 0);
}

int tmpdir_entries(void)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

int memfd_maps(void)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    CHECK(fp != NULL);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, fp))
        if (strstr(line, "/memfd:ferry")) n++;
    fclose(fp);
    return n;
}
