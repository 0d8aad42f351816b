// SPDX-License-Identifier: MIT
/*
 * main.c — the ferry-bridge program: names across hosts over NATS (bridge.c does it all;
 * docs/cluster.md has the design and the options).
 */
#include "bridge.h"

int main(int argc, char **argv)
{
    return ferry__bridge_main(argc, argv);
}
