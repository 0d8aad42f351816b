// SPDX-License-Identifier: MIT
/*
 * main.c — the `ferry` command-line tool: dispatch to a subcommand.
 *   ferry bench [options]   measure ferry against baselines (see `ferry bench --help`)
 *   ferry ls [options]      ferryd's names and the kernel objects ferry made (ls.c)
 *   ferry rm OBJECT|--stale remove ferry-made kernel objects (ls.c)
 *   ferry send|recv TARGET  messages to / from a URL or a name (cmd_msg.c)
 *   ferry call|serve NAME   RPC from the shell (cmd_rpc.c)
 *   ferry watch [PATTERN]   ferryd's name events (cmd_watch.c)
 *   ferry mailbox|sub|pub|event|sem|stat|kill   named objects (cmd_obj.c)
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
          "  send       send messages to a URL or a name: send TARGET [--data S]\n"
          "  recv       receive and print messages: recv TARGET [--listen] [--count N]\n"
          "  call       call an RPC service: call NAME [PAYLOAD]\n"
          "  serve      serve NAME from the shell: serve NAME --exec CMD | --echo\n"
          "  watch      print name events (owned, changed, released, died): watch [PATTERN]\n"
          "  mailbox    send|recv|create NAME: a published mailbox\n"
          "  sub        subscribe to a broadcast and print it: sub NAME\n"
          "  pub        publish a broadcast from the input: pub NAME\n"
          "  event      post|next|create NAME: event queues\n"
          "  sem        post|wait|value|create NAME: semaphores\n"
          "  stat       what a name is and what its object holds: stat NAME\n"
          "  kill       signal a name's owner through ferryd: kill NAME SIGNAL\n"
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
    static int (*const mains[])(int, char **) = {
        bench_main,   ls_main,  rm_main,  send_main,  recv_main, call_main, serve_main, watch_main,
        mailbox_main, sub_main, pub_main, event_main, sem_main,  stat_main, kill_main};
    static const char *const names[] = {"bench", "ls",    "rm",    "send",    "recv",
                                        "call",  "serve", "watch", "mailbox", "sub",
                                        "pub",   "event", "sem",   "stat",    "kill"};
    enum { NCMDS = sizeof names / sizeof *names };
    for (int i = 0; i < NCMDS; i++)
        if (strcmp(cmd, names[i]) == 0) return mains[i](argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        for (int i = 0; argc > 2 && i < NCMDS; i++) {
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
