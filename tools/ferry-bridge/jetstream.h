// SPDX-License-Identifier: MIT
/*
 * jetstream.h — ferry-bridge's at-least-once mailboxes across hosts on NATS JetStream
 * (docs/cluster.md, "Mailboxes through JetStream"). The exporter of a mailbox named by
 * --jetstream keeps a durable pull consumer on its stream (ferry_<cluster>_<user>, subjects
 * ferry.<cluster>.mq.<user>.>) and delivers what it fetches into the local mailbox,
 * acknowledging each message only after ferry_mailbox_send succeeded; an importer takes
 * what local senders put into its proxy mailbox and publishes it into that stream with a
 * window of unacknowledged publishes and a Nats-Msg-Id, sent again until the stream
 * acknowledges it. Each mailbox has its own thread here: nothing in this file touches the
 * bridge's loop state (bridge.c), which only starts, signals and stops the threads.
 */
#ifndef FERRY_BRIDGE_JETSTREAM_H
#define FERRY_BRIDGE_JETSTREAM_H

#include <ferry/ferry.h>
#include <nats/nats.h>

#include <stddef.h>
#include <stdint.h>

typedef struct ferry__js ferry__js;
typedef struct ferry__js_imp ferry__js_imp;

/* May caller (a NATS user token, already validated) send into the exported mailbox name?
 * Called from the consumer threads: it must read immutable configuration only. */
typedef int (*ferry__js_allow_fn)(void *ctx, const char *name, const char *caller);

typedef struct ferry__js_conf {
    natsConnection *nc;  /* the bridge's connection (shared, thread-safe in cnats) */
    const char *cluster; /* validated identity tokens */
    const char *user;
    size_t max_msg;    /* largest payload delivered or published */
    int64_t max_bytes; /* the stream's limits (exporter) */
    int64_t max_msgs;
    int replicas; /* the stream's replicas (1: R1 on one server) */
    ferry__js_allow_fn allow;
    void *allow_ctx;
    /* NULL, or: the caller reads the connection itself (an external event loop), so a
     * stop or close that waits for a thread calls pump(pump_ctx) in a loop until the
     * thread ends (it reads and writes the connection, waiting at most a few ms): what
     * the thread waits for from NATS comes only that way */
    void (*pump)(void *ctx);
    void *pump_ctx;
} ferry__js_conf;

/* What the threads counted (a snapshot; ferry__js_counters). */
typedef struct ferry__js_stats {
    uint64_t delivered;   /* exporter: messages put into local mailboxes and acknowledged */
    uint64_t redelivered; /* exporter: of those, ones the stream had delivered before
                             (the bridge before us died or its acknowledgement was lost:
                             possible duplicates) */
    uint64_t refused;     /* exporter: senders the export policy does not allow, malformed
                             messages (terminated: never delivered) */
    uint64_t published;   /* importer: messages the stream acknowledged */
    uint64_t duplicates;  /* importer: of those, resends the stream had already stored */
    uint64_t resent;      /* importer: publishes sent again (no acknowledgement in time) */
    uint64_t lost;        /* importer: taken from a local mailbox and never stored (the
                             import stopped, or the stream refused it for good) */
} ferry__js_stats;

/* Set up the JetStream side of a bridge (nothing is sent yet). The caller owns *out and
 * keeps conf's strings and connection alive until ferry__js_close. -ENOMEM, -EIO. */
int ferry__js_open(const ferry__js_conf *conf, ferry__js **out);

/* Stop every thread (imports finish their publishes in flight for up to 2 s) and free
 * js. NULL is a no-op. Call before the NATS connection is closed. */
void ferry__js_close(ferry__js *js);

/* The exporter: make sure the consumer thread of the exported mailbox name runs (cheap
 * when it does; at most 256 names). 0, -ENOSPC, -ENOMEM. */
int ferry__js_export(ferry__js *js, const char *name);

/* The exporter: the local mailbox under name was released, died or is new: the consumer
 * thread opens it again before its next delivery. */
void ferry__js_reopen(ferry__js *js, const char *name);

/* The importer: start publishing what arrives in mb (the bridge's proxy mailbox, made
 * FERRY_MAILBOX_AT_LEAST_ONCE; the caller keeps it open until ferry__js_import_stop) into
 * exporter's stream, as messages for name. Each message is peeked, and released only once
 * the stream acknowledged it, through one of JS_WIN handles of mb (duplicates of its
 * descriptor) that the import owns. NULL on failure (logged by the caller). */
ferry__js_imp *ferry__js_import(ferry__js *js, ferry_mailbox *mb, const char *exporter,
                                const char *name);

/* Stop an import: publishes in flight get up to 2 s to be acknowledged. The rest: keep
 * (the bridge exits and leaves the mailbox's name kept) leaves them peeked, their handles
 * open until the process exits, so that the mailbox gives them back to the next bridge;
 * otherwise they are released and counted lost. NULL is a no-op. */
void ferry__js_import_stop(ferry__js_imp *imp, int keep);

/* A snapshot of the counters. */
void ferry__js_counters(ferry__js *js, ferry__js_stats *out);

#endif
