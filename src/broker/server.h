// SPDX-License-Identifier: MIT
/*
 * server.h — ferryd's event loop: the registry of names, the policy checks, the quotas,
 * introductions, watches and death notices (docs/architecture.md, docs/broker.md).
 *
 * Rules: one thread, one epoll set, no blocking call anywhere (every socket is
 * non-blocking; a reply that does not fit in a client's socket is queued, within the
 * uid's byte quota). ferryd names, checks and introduces; no data flows through it.
 * Identity is what the kernel says (SO_PEERCRED, SO_PEERGROUPS, SO_PEERPIDFD), never a
 * payload. A connection that breaks the protocol, or stays silent without a role (not a
 * server, not a watcher) for idle_ms, is dropped; the others are not disturbed.
 * ferryd lends no privilege (a signal follows kill(2) unless a policy grants it); every
 * descriptor it holds is charged to a uid and budgeted against RLIMIT_NOFILE, with
 * reserves for root and for existing clients; what a client asks of another is charged
 * to the asker; what clients can make it log is rate-limited.
 */
#ifndef FERRY_BROKER_SERVER_H
#define FERRY_BROKER_SERVER_H

#include <stdint.h>

typedef struct ferry__broker_cfg {
    int listen_fd;           /* a listening, non-blocking SOCK_SEQPACKET socket; not owned */
    int signal_fd;           /* a signalfd for SIGTERM/SIGINT (stop) and SIGHUP (reload) */
    const char *policy_path; /* the system policy file (a missing file: the defaults) */
    int idle_ms;             /* silent connections without a role are dropped after this */
    int exit_idle_s;         /* > 0: return once no connection was open for this long
                                and no orphaned kept name is held (FERRY_POLICY_KEEP) */
    int verbose;             /* log every request (LOG_DEBUG) and every drop (LOG_INFO) */
    /* Told the service state (sd_notify(3) words), or NULL: "READY=1" once serving (the
     * policy loaded, the listener polled), "RELOADING=1" then "READY=1" around a SIGHUP
     * reload, "STOPPING=1" when the loop ends. state_arg is passed along; not owned. */
    void (*on_state)(void *state_arg, const char *state);
    void *state_arg;
} ferry__broker_cfg;

/*
 * Serve until SIGTERM or SIGINT arrives on cfg->signal_fd. Logs through
 * src/broker/log.h (the caller picks the sink). Also returns, after a clean
 * shutdown, when exit_idle_s is set and no connection was open that long (nor an orphaned
 * kept name held: those are lost on return). Returns 0 after a clean
 * shutdown (every connection closed, everything freed), or -errno if the policy file
 * cannot be read at start or the loop cannot be set up. On SIGHUP the policy file is read
 * again; a file with an error is reported and the old policy kept.
 */
int ferry__broker_run(const ferry__broker_cfg *cfg);

#endif
