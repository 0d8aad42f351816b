// SPDX-License-Identifier: MIT
/*
 * io.h — what the shell commands of `ferry` share (io.c): one option parser for the common
 * input/output convention, payload formats, timeouts, exit codes and stop signals.
 *
 * The convention (ferry(1), man/ferry.1.scd, has it for users):
 *   --format raw|text|hex|json|base64   how payloads are printed (and read: hex, base64 and
 *                                       json decode their input; raw and text take bytes)
 *   --data STRING | --file PATH | stdin one message; --lines: one per line (file or stdin)
 *   --type N (>= 0), --type-filter N    typed messages; System V msgrcv rules on receive
 *   --timeout 2.5s|250ms|forever|now    how long each wait may take
 *   --count N, --interval T             how many messages; the pause between sends
 *   --fd PATH                           send an open PATH (read-only) with each message
 * Exit codes (CLI_EX_*) are one per cause, from the negative errno of the failed call
 * (cli_exit); each failure prints one line on stderr naming the command, the object and
 * the cause (cli_fail).
 * Rules: nothing here exits the process; every input is bounded (CLI_MAX_INPUT); the
 * helpers return -errno like the library.
 */
#ifndef FERRY_TOOL_IO_H
#define FERRY_TOOL_IO_H

#include <ferry/ferry.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of the shell commands (ferry(1), EXIT STATUS). */
enum {
    CLI_EX_OK = 0,
    CLI_EX_FAIL = 1,    /* anything else that failed */
    CLI_EX_USAGE = 2,   /* bad option, value, format, URL or name */
    CLI_EX_TIMEOUT = 3, /* the timeout passed (-ETIMEDOUT; -EAGAIN with --timeout now) */
    CLI_EX_NOENT = 4,   /* no such name (or one the caller may not see), nobody listens at
                           the URL, no ferryd (-ENOENT, -ECONNREFUSED) */
    CLI_EX_PERM = 5,    /* permission denied (-EACCES, -EPERM) */
    CLI_EX_PEER = 6,    /* the peer is gone: died or closed (-EPIPE, -ECONNRESET, -ESRCH) */
    CLI_EX_KIND = 7,    /* the name is of another kind than the command needs (-EPROTOTYPE) */
};

enum { CLI_FMT_TEXT, CLI_FMT_RAW, CLI_FMT_HEX, CLI_FMT_JSON, CLI_FMT_BASE64 };

/* Which options a command takes (cli_parse's `allowed`). */
enum {
    CLI_O_IN = 1u << 0,      /* --data --file --lines --type --fd --interval */
    CLI_O_OUT = 1u << 1,     /* --type-filter --quiet */
    CLI_O_FORMAT = 1u << 2,  /* --format */
    CLI_O_COUNT = 1u << 3,   /* --count */
    CLI_O_TIMEOUT = 1u << 4, /* --timeout */
    CLI_O_LISTEN = 1u << 5,  /* --listen */
    CLI_O_JSON = 1u << 6,    /* --json */
    CLI_O_SERVE = 1u << 7,   /* --exec --echo --threads */
    CLI_O_MODE = 1u << 8,    /* --mode (the policy of a name this command owns) */
    CLI_O_OBJ = 1u << 9,     /* --capacity --max-msg --value --coalesce --drop-oldest */
    CLI_O_UNIX = 1u << 10,   /* --unix (a unix channel instead of shm, on a name) */
};

#define CLI_MAX_INPUT ((size_t)64 << 20) /* the most read for one message */
#define CLI_MAX_POS   4

typedef struct cli_opts {
    int format;
    const char *data, *file, *fd_path, *exec;
    int lines, listen, json, quiet, echo, coalesce, drop_oldest, unix_kind;
    int has_type;
    int64_t type, type_filter;
    int64_t timeout_ns; /* FERRY_FOREVER unless --timeout */
    int has_timeout;    /* --timeout was given */
    long count;         /* -1: no --count */
    int64_t interval_ns;
    unsigned mode; /* --mode, default 0600 */
    unsigned threads;
    uint32_t capacity; /* 0: not given */
    int has_capacity;
    size_t max_msg; /* 0: not given */
    long value;
    char *pos[CLI_MAX_POS];
    int npos;
} cli_opts;

/* Parse argv (argv[0] the command's words, e.g. "send") into *o. Positional arguments
 * go to o->pos (between min_pos and max_pos of them). Returns -1 to go on, else the exit
 * code to return now: 0 after --help (usage printed on stdout), 2 after a usage error
 * (one line naming it, then the usage, on stderr). */
int cli_parse(const char *cmd, int argc, char **argv, unsigned allowed, int min_pos, int max_pos,
              void (*usage)(FILE *), cli_opts *o);

/* "2.5s", "250ms", "10us", "5ns", "1m", "3" (seconds), "forever", "now" -> ns. -EINVAL. */
int cli_parse_duration(const char *s, int64_t *out);
/* A decimal or 0x hex integer in [lo, hi]. -EINVAL. */
int cli_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* The exit code for a library error (negative errno). */
int cli_exit(int err);
/* Print "ferry CMD: WHAT: CAUSE (ferry_strerror)" on stderr; return cli_exit(err). */
int cli_fail(const char *cmd, const char *what, int err);

/* Stop signals: SIGINT, SIGTERM and SIGHUP set cli_stop (no SA_RESTART); long waits are
 * made in slices of at most 100 ms that look at it. */
extern volatile sig_atomic_t cli_stop;
void cli_signals(void);
/* A deadline for timeout_ns (FERRY_FOREVER: none), and the next slice to wait under it:
 * FERRY_NOW for a timeout of now, else min(left, 100 ms); -ETIMEDOUT once it passed (or
 * right away for now, after one FERRY_NOW slice was given), -EINTR once stopped. */
typedef struct cli_deadline {
    int64_t at; /* CLOCK_MONOTONIC ns, or -1: none */
    int now, used;
} cli_deadline;
void cli_deadline_set(cli_deadline *d, int64_t timeout_ns);
int64_t cli_slice(cli_deadline *d);
int64_t cli_now_ns(void);
void cli_sleep_ns(int64_t ns); /* returns early when stopped */

/* Messages to send, as the options say: --data, --file, stdin (--lines: one per line),
 * each decoded by --format, repeated or bounded by --count. */
typedef struct cli_input {
    const cli_opts *o;
    FILE *in;
    char *whole; /* --data/--file/all of stdin, decoded */
    size_t whole_len;
    char *line;
    size_t line_cap;
    long sent;
    int done;
    int64_t type; /* the current message's type: --type, or a JSON input's "type" */
} cli_input;
int cli_input_open(cli_input *in, const cli_opts *o, const char *arg_payload);
/* The next message: 1 (*data, *len valid until the next call), 0 (no more), -errno
 * (-EINVAL: it does not decode as --format says; -EMSGSIZE: over CLI_MAX_INPUT). */
int cli_input_next(cli_input *in, const void **data, size_t *len);
void cli_input_close(cli_input *in);

/* Decode text per format (hex, base64; json: a string, or an object with "data" or
 * "base64" and "type", as `ferry recv --format json` prints; raw and text: a copy) into a
 * new buffer (*out, caller frees; at most n bytes). *type (may be NULL) gets a JSON
 * object's type. -EINVAL when it does not decode, -ENOMEM. */
int cli_decode(int format, const char *s, size_t n, char **out, size_t *outlen, int64_t *type);

/* What is known of a received message besides its bytes. */
typedef struct cli_meta {
    int has_type;
    int64_t type;
    int has_cred;
    ferry_cred cred;
    int nfds;
    const int *fds;
    int has_lost;
    uint64_t lost;
} cli_meta;
/* Print one message as --format says (and, unless --quiet or raw, its meta). */
void cli_print_msg(FILE *f, const cli_opts *o, const void *data, size_t len, const cli_meta *m);
/* A JSON string of len bytes (invalid UTF-8 as \ufffd). */
void cli_json_str(FILE *f, const char *s, size_t len);
int cli_utf8_valid(const unsigned char *p, size_t n);
/* ISO 8601 UTC of a CLOCK_REALTIME ns value into buf. */
void cli_time_str(uint64_t ns, char *buf, size_t cap);
/* "server", "semaphore", "mutex", "barrier", "event", "mailbox", "broadcast", "?" */
const char *cli_kind_name(uint32_t kind);
/* Is s a URL (has "://")? */
int cli_is_url(const char *s);

#endif /* FERRY_TOOL_IO_H */
