// SPDX-License-Identifier: MIT
/*
 * commands.h — the subcommands of the `ferry` tool. Each takes the arguments that follow
 * the command name (argv[0] is the command name itself) and returns the process exit
 * status: 0 success, 1 the work failed, 2 bad usage.
 */
#ifndef FERRY_TOOL_COMMANDS_H
#define FERRY_TOOL_COMMANDS_H

int ls_main(int argc, char **argv); /* ls.c: `ferry ls` */
int rm_main(int argc, char **argv); /* ls.c: `ferry rm` */

#endif /* FERRY_TOOL_COMMANDS_H */
