// SPDX-License-Identifier: MIT
/*
 * main.c — the `ferry` command-line tool: dispatch to a subcommand.
 *   ferry bench [options]   measure ferry against baselines (see `ferry bench --help`)
 *   ferry ls [options]      ferryd's names and the kernel objects ferry made (ls.c)
 *   ferry rm OBJECT|--stale remove ferry-made kernel objects (ls.c)
 *   ferry help [command]    this help, or a command's help
 *   ferry --version
 * An unknown command prints the usage on stderr and exits 2.
 */
#include <stdio.h>
#include <string.h>

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

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "bench") == 0) return bench_main(argc - 1, argv + 1);
    if (strcmp(cmd, "ls") == 0) return ls_main(argc - 1, argv + 1);
    if (strcmp(cmd, "rm") == 0) return rm_main(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        static int (*const mains[])(int, char **) = {bench_main, ls_main, rm_main};
        static const char *const names[] = {"bench", "ls", "rm"};
        for (int i = 0; argc > 2 && i < 3; i++) {
            if (strcmp(argv[2], names[i]) != 0) continue;
            char *args[] = {(char *)names[i], "--help", NULL};
            return mains[i](2, args);
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
