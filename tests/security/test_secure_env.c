// SPDX-License-Identifier: MIT
/*
 * test_secure_env.c — libferry reads its environment with secure_getenv (src/broker/
 * client.c): a privileged caller ignores FERRY_BROKER, XDG_RUNTIME_DIR, FERRY_FERRYD and
 * FERRY_NO_AUTOSPAWN, and searches no PATH for ferryd, so whoever starts a set-uid
 * program cannot point it at their own broker or make it run their program.
 *
 * A probe (this program run as "probe") prints ferry_broker_path() and, when no ferryd is
 * installed at the library's built-in path, makes one ferry_lookup (1 s) that autospawns.
 * Fake ferryd programs (FERRY_FERRYD, and "ferryd" in a PATH directory) only leave a mark
 * and exit 1. Each probe runs in a private mount namespace with an empty tmpfs on /run,
 * so no system ferryd is reached and nothing is left there.
 *  - control, no privilege: FERRY_BROKER is the path and FERRY_FERRYD runs; without them,
 *    XDG_RUNTIME_DIR makes the path and the PATH's ferryd runs;
 *  - secure: the probe is exec'd with real uid 65534 and effective uid 0, which makes the
 *    kernel mark the exec AT_SECURE (what a set-uid program gets): the path is
 *    /run/ferry/ferryd.sock whatever the variables say, and neither fake runs.
 * Needs root (SKIP otherwise).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include <ferry/ferry.h>

#include <sched.h>
#include <sys/auxv.h>
#include <sys/mount.h>
#include <sys/stat.h>

static char dir[] = "/tmp/ferry-test-secenv-XXXXXX";

static int probe(void)
{
    char path[256];
    ssize_t n = ferry_broker_path(path, sizeof path);
    printf("secure %lu\npath %s\n", getauxval(AT_SECURE), n < 0 ? "(error)" : path);
    if (access(FERRY_FERRYD_INSTALL, X_OK) == 0) {
        printf("lookup skipped: a ferryd is installed at %s\n", FERRY_FERRYD_INSTALL);
        return 0;
    }
    ferry_name_info info;
    int rc = ferry_lookup("org.test.secenv", &info, SEC);
    printf("lookup %d\n", rc);
    return 0;
}

/* Run the probe with env (NULL-terminated "K=V" list), as ruid 65534 / euid 0 if
 * secure, and its output in out. */
static void run_probe(int secure, char *const env[], char *out, size_t cap)
{
    char log[128];
    snprintf(log, sizeof log, "%s/probe.out", dir);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        CHECK(unshare(CLONE_NEWNS) == 0);
        CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
        CHECK(mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") == 0);
        FILE *f = freopen(log, "w", stdout);
        CHECK(f != NULL);
        if (secure) CHECK(setresuid(65534, 0, 0) == 0);
        char *argv[] = {"test_secure_env", "probe", NULL};
        execve("/proc/self/exe", argv, env);
        _exit(127);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    FILE *f = fopen(log, "r");
    CHECK(f != NULL);
    size_t got = fread(out, 1, cap - 1, f);
    out[got] = 0;
    fclose(f);
    unlink(log);
    printf("--- probe (secure=%d):\n%s", secure, out);
}

static int marked(const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int there = access(p, F_OK) == 0;
    unlink(p);
    return there;
}

static void fake(const char *prog, const char *mark)
{
    FILE *f = fopen(prog, "w");
    CHECK(f != NULL);
    fprintf(f, "#!/bin/sh\n: >%s/%s\nexit 1\n", dir, mark); /* no PATH needed */
    CHECK(fclose(f) == 0);
    CHECK(chmod(prog, 0755) == 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "probe") == 0) return probe();
    require_root();
    test_deadline(60);
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(mkdtemp(dir) != NULL);
    CHECK(chmod(dir, 01777) == 0); /* a fake run as uid 65534 can leave its mark */
    char bin[96], prog[128], pathprog[128], broker[128], xdg[96];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    CHECK(mkdir(bin, 0755) == 0);
    snprintf(prog, sizeof prog, "%s/fake-ferryd", dir);
    snprintf(pathprog, sizeof pathprog, "%s/ferryd", bin);
    fake(prog, "ran-env");
    fake(pathprog, "ran-path");
    snprintf(xdg, sizeof xdg, "%s/xdg", dir);
    CHECK(mkdir(xdg, 0700) == 0);
    int installed = access(FERRY_FERRYD_INSTALL, X_OK) == 0;

    char e_broker[160], e_ferryd[160], e_path[160], e_xdg[160], want[160], out[1024];
    snprintf(broker, sizeof broker, "%s/broker.sock", dir);
    snprintf(e_broker, sizeof e_broker, "FERRY_BROKER=%s", broker);
    snprintf(e_ferryd, sizeof e_ferryd, "FERRY_FERRYD=%s", prog);
    snprintf(e_path, sizeof e_path, "PATH=%s", bin);
    snprintf(e_xdg, sizeof e_xdg, "XDG_RUNTIME_DIR=%s", xdg);
    char *with_vars[] = {e_broker, e_ferryd, e_path, e_xdg, "FERRY_NO_AUTOSPAWN=0", NULL};
    char *xdg_path[] = {e_path, e_xdg, NULL};

    /* Control: the variables count. */
    run_probe(0, with_vars, out, sizeof out);
    snprintf(want, sizeof want, "path %s\n", broker);
    CHECK(strstr(out, "secure 0\n") && strstr(out, want));
    if (!installed) CHECK(marked("ran-env") && !marked("ran-path"));
    run_probe(0, xdg_path, out, sizeof out);
    snprintf(want, sizeof want, "path %s/ferry/ferryd.sock\n", xdg);
    CHECK(strstr(out, want));
    if (!installed) CHECK(marked("ran-path") && !marked("ran-env"));

    /* Secure: none of them. */
    run_probe(1, with_vars, out, sizeof out);
    CHECK(strstr(out, "secure 1\n") && strstr(out, "path /run/ferry/ferryd.sock\n"));
    if (!installed) CHECK(strstr(out, "lookup -") && !marked("ran-env") && !marked("ran-path"));
    run_probe(1, xdg_path, out, sizeof out);
    CHECK(strstr(out, "path /run/ferry/ferryd.sock\n"));
    if (!installed) CHECK(!marked("ran-env") && !marked("ran-path"));

    unlink(prog);
    unlink(pathprog);
    rmdir(bin);
    rmdir(xdg);
    CHECK(rmdir(dir) == 0);
    printf("ok\n");
    return 0;
}
