// SPDX-License-Identifier: MIT
/*
 * test_ferryd_cli — ferryd's command line, with the ferryd this build made:
 *  - --version (and -V) prints "ferryd VERSION" on stdout and exits 0; --help (and -h)
 *    prints the usage and the options on stdout and exits 0; neither starts a daemon
 *    (no socket or lock file appears).
 *  - Bad usage exits 2 with a first line on stderr naming the cause, then the usage, and
 *    nothing on stdout: an unknown long or short option, an option without its value,
 *    a bad number (--idle-ms abc / 0, --exit-idle -1 / too large), an empty --socket, a
 *    stray argument.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "daemonutil.h"

#include <ferry/ferry.h>
#include <signal.h>

static void expect_ok(const char *const *args, const char *out_prefix, const char *needle)
{
    run_out r;
    ferryd_run(args, NULL, &r);
    if (r.status != 0 || strncmp(r.out, out_prefix, strlen(out_prefix)) != 0 ||
        (needle && !strstr(r.out, needle)) || r.err[0])
        fprintf(stderr, "ferryd %s: status %d\nstdout: %s\nstderr: %s\n", args[0], r.status, r.out,
                r.err);
    CHECK_EQ(r.status, 0);
    CHECK(strncmp(r.out, out_prefix, strlen(out_prefix)) == 0);
    CHECK(!needle || strstr(r.out, needle));
    CHECK(r.err[0] == '\0');
}

/* Exit 2, stderr's first line is want, then the usage; stdout empty. */
static void expect_usage(const char *const *args, const char *want)
{
    run_out r;
    ferryd_run(args, NULL, &r);
    char *nl = strchr(r.err, '\n');
    int first_ok =
        nl && (size_t)(nl - r.err) == strlen(want) && !strncmp(r.err, want, strlen(want));
    if (r.status != 2 || !first_ok || !strstr(r.err, "\nusage: ferryd") || r.out[0])
        fprintf(stderr, "ferryd %s: status %d (want 2)\nstdout: %s\nstderr: %s(want first: %s)\n",
                args[0], r.status, r.out, r.err, want);
    CHECK_EQ(r.status, 2);
    CHECK(first_ok);
    CHECK(strstr(r.err, "\nusage: ferryd") != NULL);
    CHECK(r.out[0] == '\0');
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_init(&b); /* FERRY_BROKER = b.sock: where a daemon would appear */
    char lock[120];
    snprintf(lock, sizeof lock, "%s.lock", b.sock);

    const char *version[] = {"--version", NULL}, *v[] = {"-V", NULL};
    expect_ok(version, "ferryd " FERRY_VERSION_STRING "\n", NULL);
    expect_ok(v, "ferryd " FERRY_VERSION_STRING "\n", NULL);
    run_out r;
    ferryd_run(version, NULL, &r);
    CHECK(strcmp(r.out, "ferryd " FERRY_VERSION_STRING "\n") == 0); /* one line, nothing else */

    const char *help[] = {"--help", NULL}, *h[] = {"-h", NULL};
    const char *help_more[] = {"--foreground", "--help", NULL}; /* --help wins: no daemon */
    expect_ok(help, "usage: ferryd", "--version");
    expect_ok(h, "usage: ferryd", "--syslog");
    expect_ok(help_more, "usage: ferryd", "Exit status");
    CHECK(access(b.sock, F_OK) < 0 && access(lock, F_OK) < 0);

    const char *a1[] = {"--nosuch", NULL};
    expect_usage(a1, "ferryd: unknown option --nosuch");
    const char *a2[] = {"-z", NULL};
    expect_usage(a2, "ferryd: unknown option -z");
    const char *a3[] = {"--foreground", "--socket", NULL};
    expect_usage(a3, "ferryd: option --socket needs a value");
    const char *a4[] = {"--idle-ms", "abc", NULL};
    expect_usage(a4, "ferryd: --idle-ms: not a number of milliseconds >= 1: 'abc'");
    const char *a5[] = {"--idle-ms", "0", NULL};
    expect_usage(a5, "ferryd: --idle-ms: not a number of milliseconds >= 1: '0'");
    const char *a6[] = {"--exit-idle", "-1", NULL};
    expect_usage(a6, "ferryd: --exit-idle: not a number of seconds: '-1'");
    const char *a7[] = {"--exit-idle", "99999999999999999999", NULL};
    expect_usage(a7, "ferryd: --exit-idle: not a number of seconds: '99999999999999999999'");
    const char *a8[] = {"--socket", "", NULL};
    expect_usage(a8, "ferryd: --socket: empty");
    const char *a9[] = {"--foreground", "stray", NULL};
    expect_usage(a9, "ferryd: unexpected argument 'stray'");
    const char *a10[] = {"--version=1", NULL};
    expect_usage(a10, "ferryd: option --version=1 takes no value");
    const char *a11[] = {"--nosuch=1", NULL};
    expect_usage(a11, "ferryd: unknown option --nosuch=1");
    CHECK(access(b.sock, F_OK) < 0 && access(lock, F_OK) < 0);

    broker_stop(&b); /* removes the directory */
    printf("test_ferryd_cli: ok\n");
    return 0;
}
