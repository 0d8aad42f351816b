// SPDX-License-Identifier: MIT
/*
 * commands.h — the subcommands of the `ferry` tool. Each takes the arguments that follow
 * the command name (argv[0] is the command name itself) and returns the process exit
 * status: 0 success, 1 the work failed, 2 bad usage; the shell commands (send, recv,
 * call, ...) also 3..7, one per cause (io.h, CLI_EX_*; ferry(1) EXIT STATUS).
 */
#ifndef FERRY_TOOL_COMMANDS_H
#define FERRY_TOOL_COMMANDS_H

int ls_main(int argc, char **argv); /* ls.c: `ferry ls` */
int rm_main(int argc, char **argv); /* ls.c: `ferry rm` */

int send_main(int argc, char **argv);    /* cmd_msg.c: `ferry send` */
int recv_main(int argc, char **argv);    /* cmd_msg.c: `ferry recv` */
int call_main(int argc, char **argv);    /* cmd_rpc.c: `ferry call` */
int serve_main(int argc, char **argv);   /* cmd_rpc.c: `ferry serve` */
int watch_main(int argc, char **argv);   /* cmd_watch.c: `ferry watch` */
int mailbox_main(int argc, char **argv); /* cmd_obj.c: `ferry mailbox` */
int sub_main(int argc, char **argv);     /* cmd_obj.c: `ferry sub` */
int pub_main(int argc, char **argv);     /* cmd_obj.c: `ferry pub` */
int event_main(int argc, char **argv);   /* cmd_obj.c: `ferry event` */
int sem_main(int argc, char **argv);     /* cmd_obj.c: `ferry sem` */
int stat_main(int argc, char **argv);    /* cmd_obj.c: `ferry stat` */
int kill_main(int argc, char **argv);    /* cmd_obj.c: `ferry kill` */

/* cmd_msg.c, for cmd_obj.c: send to / receive from a URL or name as `ferry send|recv`
 * do; want -1 takes any kind, else the FERRY_OBJ_* the name must be (7 otherwise).
 * payload (may be NULL) is a message given on the command line. */
struct cli_opts;
int msg_send(const char *cmd, const struct cli_opts *o, const char *spec, const char *payload,
             int want);
int msg_recv(const char *cmd, const struct cli_opts *o, const char *spec, int want);

#endif /* FERRY_TOOL_COMMANDS_H */
