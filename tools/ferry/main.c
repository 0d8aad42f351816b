/*
 * main.c — the `ferry` command-line tool: dispatch to a subcommand.
 *   ferry bench [options]   measure ferry against baselines (see `ferry bench --help`)
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
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc > 2 && strcmp(argv[2], "bench") == 0) {
            char *args[] = {"bench", "--help", NULL};
            return bench_main(2, args);
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
