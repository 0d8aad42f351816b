// SPDX-License-Identifier: MIT
/*
 * main.c — the `ferry` command-line tool: dispatch to a subcommand.
 *   ferry bench [options]   measure ferry against baselines: execs ferry-bench (bench/),
 *                           found next to this program, else in the installed bindir,
 *                           else on PATH; 127 when there is none
 *   ferry ls [options]      ferryd's names and the kernel objects ferry made (ls.c)
 *   ferry rm OBJECT|--stale remove ferry-made kernel objects (ls.c)
 *   ferry help [command]    this help, or a command's help
 *   ferry --version
 * An unknown command prints the usage on stderr and exits 2; so does an unknown help topic
 * (one line on stderr).
 */
#define _POSIX_C_SOURCE 200809L /* readlink */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

#ifndef FERRY_TOOL_VERSION
#define FERRY_TOOL_VERSION "unknown"
#endif

static void usage(FILE *f)
{
    fputs("usage: ferry <command> [options]\n"
          "\n"
          "commands:\n"
          "  bench      measure ferry against baselines, in one run on this machine\n"
          "  ls         list ferryd's names and the IPC objects ferry made (stale ones too)\n"
          "  rm         remove ferry-made IPC objects: rm OBJECT..., rm --stale\n"
          "  help [cmd] show this help, or the help of a command\n"
          "\n"
          "  ferry --version   print the version\n",
          f);
}

/* `ferry bench ARGS`: replace this process by ferry-bench ARGS (its output and exit code
 * are the command's). Returns only when there is none to run: 127, with a message. */
static int bench_exec(int argc, char **argv)
{
    (void)argc;
    argv[0] = "ferry-bench"; /* argv[argc] is NULL: the list execv wants */
    char self[4096] = "", next[4096 + sizeof "/ferry-bench"];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = n > 0 ? (self[n] = '\0', strrchr(self, '/')) : NULL;
    if (slash) {
        *slash = '\0'; /* self: this program's directory */
        snprintf(next, sizeof next, "%s/ferry-bench", self);
        execv(next, argv); /* returns only on failure: not there, not runnable */
    }
#ifdef FERRY_TOOL_BINDIR
    execv(FERRY_TOOL_BINDIR "/ferry-bench", argv);
#endif
    execvp("ferry-bench", argv);
    fprintf(stderr,
            "ferry bench: cannot run ferry-bench: none in %s"
#ifdef FERRY_TOOL_BINDIR
            ", " FERRY_TOOL_BINDIR
#endif
            " or on PATH (%s)\n",
            slash ? self : "this program's directory", strerror(errno));
    return 127;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "bench") == 0) return bench_exec(argc - 1, argv + 1);
    if (strcmp(cmd, "ls") == 0) return ls_main(argc - 1, argv + 1);
    if (strcmp(cmd, "rm") == 0) return rm_main(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        static int (*const mains[])(int, char **) = {bench_exec, ls_main, rm_main};
        static const char *const names[] = {"bench", "ls", "rm"};
        for (int i = 0; argc > 2 && i < 3; i++) {
            if (strcmp(argv[2], names[i]) != 0) continue;
            char *args[] = {(char *)names[i], "--help", NULL};
            return mains[i](2, args);
        }
        if (argc > 2) {
            fprintf(stderr, "ferry: no help on '%s' (see `ferry help`)\n", argv[2]);
            return 2;
        }
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("ferry %s\n", FERRY_TOOL_VERSION);
        return 0;
    }
    fprintf(stderr, "ferry: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
