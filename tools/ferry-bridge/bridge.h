// SPDX-License-Identifier: MIT
/*
 * bridge.h — ferry-bridge: names across hosts over NATS (docs/cluster.md, "Names across
 * hosts"). The bridge is a client of the local ferryd and of a NATS server; it exports
 * local names to the other bridges of its cluster and imports theirs as local proxies.
 * Its one entry point is ferry__bridge_main, so a test can fork and run a bridge without
 * exec (as another uid, in another network namespace).
 */
#ifndef FERRY_BRIDGE_H
#define FERRY_BRIDGE_H

#include <stddef.h>

/* Run a bridge with the command line argv (argv[0] the program name) until SIGTERM or
 * SIGINT. Returns the exit status: 0 clean stop, 1 an error at run time, 2 usage. Call
 * it from a single-threaded process (it blocks SIGTERM/SIGINT before making threads). */
int ferry__bridge_main(int argc, char **argv);

/* Log one line to stderr ("ferry-bridge: ..."; with --verbose, pid and time too), every
 * control character replaced so that nothing logged (names, NATS headers) can forge a
 * line. Thread-safe (one fprintf). */
void ferry__bridge_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Is s[0..n) an identity token (NATS user name, cluster name): 1..63 of [A-Za-z0-9_-]?
 * 1 or 0. */
int ferry__bridge_id_valid(const char *s, size_t n);

#endif
