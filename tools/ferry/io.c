// SPDX-License-Identifier: MIT
/*
 * io.c — the input/output convention of `ferry`'s shell commands (io.h has the rules):
 * option parsing, durations, exit codes, stop signals and sliced waits, reading messages
 * to send (--data, --file, stdin, --lines; decoded by --format) and printing received
 * ones (raw, text, hex, json, base64, with type, size, sender and fds).
 */
#define _GNU_SOURCE
#include "io.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEC_NS   1000000000LL
#define SLICE_NS (100 * 1000000LL)

volatile sig_atomic_t cli_stop;

/* ------------------------------------------------------------------ options */

enum {
    OPT_FORMAT = 1000,
    OPT_DATA,
    OPT_FILE,
    OPT_LINES,
    OPT_TYPE,
    OPT_TYPE_FILTER,
    OPT_TIMEOUT,
    OPT_COUNT,
    OPT_INTERVAL,
    OPT_FD,
    OPT_LISTEN,
    OPT_JSON,
    OPT_QUIET,
    OPT_EXEC,
    OPT_ECHO,
    OPT_THREADS,
    OPT_MODE,
    OPT_CAPACITY,
    OPT_MAX_MSG,
    OPT_VALUE,
    OPT_COALESCE,
    OPT_DROP_OLDEST,
    OPT_UNIX,
    OPT_HELP,
};

static const struct {
    int id;
    unsigned group;
} opt_groups[] = {
    {OPT_FORMAT, CLI_O_FORMAT},   {OPT_DATA, CLI_O_IN},       {OPT_FILE, CLI_O_IN},
    {OPT_LINES, CLI_O_IN},        {OPT_TYPE, CLI_O_IN},       {OPT_TYPE_FILTER, CLI_O_OUT},
    {OPT_TIMEOUT, CLI_O_TIMEOUT}, {OPT_COUNT, CLI_O_COUNT},   {OPT_INTERVAL, CLI_O_IN},
    {OPT_FD, CLI_O_IN},           {OPT_LISTEN, CLI_O_LISTEN}, {OPT_JSON, CLI_O_JSON},
    {OPT_QUIET, CLI_O_OUT},       {OPT_EXEC, CLI_O_SERVE},    {OPT_ECHO, CLI_O_SERVE},
    {OPT_THREADS, CLI_O_SERVE},   {OPT_MODE, CLI_O_MODE},     {OPT_CAPACITY, CLI_O_OBJ},
    {OPT_MAX_MSG, CLI_O_OBJ},     {OPT_VALUE, CLI_O_OBJ},     {OPT_COALESCE, CLI_O_OBJ},
    {OPT_DROP_OLDEST, CLI_O_OBJ}, {OPT_UNIX, CLI_O_UNIX},
};

static const struct option lopts[] = {
    {"format", required_argument, 0, OPT_FORMAT},
    {"data", required_argument, 0, OPT_DATA},
    {"file", required_argument, 0, OPT_FILE},
    {"lines", no_argument, 0, OPT_LINES},
    {"type", required_argument, 0, OPT_TYPE},
    {"type-filter", required_argument, 0, OPT_TYPE_FILTER},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {"count", required_argument, 0, OPT_COUNT},
    {"interval", required_argument, 0, OPT_INTERVAL},
    {"fd", required_argument, 0, OPT_FD},
    {"listen", no_argument, 0, OPT_LISTEN},
    {"json", no_argument, 0, OPT_JSON},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"exec", required_argument, 0, OPT_EXEC},
    {"echo", no_argument, 0, OPT_ECHO},
    {"threads", required_argument, 0, OPT_THREADS},
    {"mode", required_argument, 0, OPT_MODE},
    {"capacity", required_argument, 0, OPT_CAPACITY},
    {"max-msg", required_argument, 0, OPT_MAX_MSG},
    {"value", required_argument, 0, OPT_VALUE},
    {"coalesce", no_argument, 0, OPT_COALESCE},
    {"drop-oldest", no_argument, 0, OPT_DROP_OLDEST},
    {"unix", no_argument, 0, OPT_UNIX},
    {"help", no_argument, 0, OPT_HELP},
    {0, 0, 0, 0},
};

int cli_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || !*s) return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || *end || v < lo || v > hi) return -EINVAL;
    *out = v;
    return 0;
}

int cli_parse_duration(const char *s, int64_t *out)
{
    if (!s || !*s) return -EINVAL;
    if (strcmp(s, "forever") == 0 || strcmp(s, "inf") == 0) {
        *out = FERRY_FOREVER;
        return 0;
    }
    if (strcmp(s, "now") == 0) {
        *out = FERRY_NOW;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0) || s[0] == '-') return -EINVAL;
    double mul;
    if (!*end || strcmp(end, "s") == 0)
        mul = 1e9;
    else if (strcmp(end, "ms") == 0)
        mul = 1e6;
    else if (strcmp(end, "us") == 0)
        mul = 1e3;
    else if (strcmp(end, "ns") == 0)
        mul = 1;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mul = 60e9;
    else if (strcmp(end, "h") == 0)
        mul = 3600e9;
    else
        return -EINVAL;
    double ns = v * mul;
    if (ns > 9.2e18) return -EINVAL;
    *out = (int64_t)ns;
    return 0;
}

static int parse_format(const char *s)
{
    static const char *const names[] = {"text", "raw", "hex", "json", "base64"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

/* One line on stderr naming the problem (the usage is a `ferry help CMD` away). */
static int usage_error(const char *cmd, void (*usage)(FILE *), const char *fmt, const char *arg)
{
    (void)usage;
    fprintf(stderr, "ferry %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'ferry help %.*s')\n", (int)strcspn(cmd, " "), cmd);
    return CLI_EX_USAGE;
}

int cli_parse(const char *cmd, int argc, char **argv, unsigned allowed, int min_pos, int max_pos,
              void (*usage)(FILE *), cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = CLI_FMT_TEXT;
    o->timeout_ns = FERRY_FOREVER;
    o->count = -1;
    o->mode = 0600;
    o->threads = 2;
    o->value = -1;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "hq", lopts, NULL)) != -1) {
        if (c == 'h' || c == OPT_HELP) {
            if (usage) usage(stdout);
            return CLI_EX_OK;
        }
        if (c == 'q') c = OPT_QUIET;
        if (c == '?' || c == ':') {
            const char *bad = argv[optind - 1];
            return usage_error(cmd, usage, "unknown option or missing value: %s", bad);
        }
        unsigned group = 0;
        for (size_t i = 0; i < sizeof opt_groups / sizeof *opt_groups; i++)
            if (opt_groups[i].id == c) group = opt_groups[i].group;
        if (!(group & allowed))
            return usage_error(cmd, usage, "option %s is not for this command", argv[optind - 1]);
        int64_t v;
        switch (c) {
        case OPT_FORMAT:
            if ((o->format = parse_format(optarg)) < 0)
                return usage_error(cmd, usage,
                                   "bad format '%s' (want raw, text, hex, json or base64)", optarg);
            break;
        case OPT_DATA:
            o->data = optarg;
            break;
        case OPT_FILE:
            o->file = optarg;
            break;
        case OPT_LINES:
            o->lines = 1;
            break;
        case OPT_TYPE:
            if (cli_parse_int(optarg, 0, INT64_MAX, &o->type) < 0)
                return usage_error(cmd, usage, "bad --type '%s' (an integer >= 0)", optarg);
            o->has_type = 1;
            break;
        case OPT_TYPE_FILTER:
            if (cli_parse_int(optarg, INT64_MIN + 1, INT64_MAX, &o->type_filter) < 0)
                return usage_error(cmd, usage, "bad --type-filter '%s' (an integer)", optarg);
            break;
        case OPT_TIMEOUT:
            if (cli_parse_duration(optarg, &o->timeout_ns) < 0)
                return usage_error(cmd, usage,
                                   "bad --timeout '%s' (e.g. 2.5s, 100ms, forever, now)", optarg);
            o->has_timeout = 1;
            break;
        case OPT_INTERVAL:
            if (cli_parse_duration(optarg, &o->interval_ns) < 0 || o->interval_ns < 0)
                return usage_error(cmd, usage, "bad --interval '%s' (e.g. 1s, 100ms)", optarg);
            break;
        case OPT_COUNT:
            if (cli_parse_int(optarg, 0, LONG_MAX, &v) < 0)
                return usage_error(cmd, usage, "bad --count '%s' (an integer >= 0)", optarg);
            o->count = (long)v;
            break;
        case OPT_FD:
            o->fd_path = optarg;
            break;
        case OPT_LISTEN:
            o->listen = 1;
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_QUIET:
            o->quiet = 1;
            break;
        case OPT_EXEC:
            o->exec = optarg;
            break;
        case OPT_ECHO:
            o->echo = 1;
            break;
        case OPT_THREADS:
            if (cli_parse_int(optarg, 1, 64, &v) < 0)
                return usage_error(cmd, usage, "bad --threads '%s' (1..64)", optarg);
            o->threads = (unsigned)v;
            break;
        case OPT_MODE: {
            char *end;
            errno = 0;
            unsigned long m = strtoul(optarg, &end, 8);
            if (errno || *end || !*optarg || m > 0777)
                return usage_error(cmd, usage, "bad --mode '%s' (octal, e.g. 0644)", optarg);
            o->mode = (unsigned)m;
            break;
        }
        case OPT_CAPACITY:
            if (cli_parse_int(optarg, 0, UINT32_MAX - 1, &v) < 0)
                return usage_error(cmd, usage, "bad --capacity '%s'", optarg);
            o->capacity = (uint32_t)v;
            o->has_capacity = 1;
            break;
        case OPT_MAX_MSG:
            if (cli_parse_int(optarg, 1, FERRY_MAX_MSG_LIMIT, &v) < 0)
                return usage_error(cmd, usage, "bad --max-msg '%s'", optarg);
            o->max_msg = (size_t)v;
            break;
        case OPT_VALUE:
            if (cli_parse_int(optarg, 0, INT32_MAX, &v) < 0)
                return usage_error(cmd, usage, "bad --value '%s' (0..2147483647)", optarg);
            o->value = (long)v;
            break;
        case OPT_COALESCE:
            o->coalesce = 1;
            break;
        case OPT_DROP_OLDEST:
            o->drop_oldest = 1;
            break;
        case OPT_UNIX:
            o->unix_kind = 1;
            break;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (o->npos >= max_pos || o->npos >= CLI_MAX_POS)
            return usage_error(cmd, usage, "unexpected argument '%s'", argv[i]);
        o->pos[o->npos++] = argv[i];
    }
    if (o->npos < min_pos) return usage_error(cmd, usage, "missing argument%s", "");
    int sources = (o->data != NULL) + (o->file != NULL);
    if (sources > 1) return usage_error(cmd, usage, "--data and --file exclude each other%s", "");
    if (o->lines && o->data)
        return usage_error(cmd, usage, "--lines reads stdin or --file: not --data%s", "");
    return -1;
}

/* ------------------------------------------------------------------ exit codes */

int cli_exit(int err)
{
    switch (err) {
    case 0:
        return CLI_EX_OK;
    case -ETIMEDOUT:
    case -EAGAIN:
        return CLI_EX_TIMEOUT;
    case -ENOENT:
    case -ECONNREFUSED:
        return CLI_EX_NOENT;
    case -EACCES:
    case -EPERM:
        return CLI_EX_PERM;
    case -EPIPE:
    case -ECONNRESET:
    case -ESRCH:
        return CLI_EX_PEER;
    case -EPROTOTYPE:
        return CLI_EX_KIND;
    case -EINVAL:
    case -EPROTONOSUPPORT:
    case -ENAMETOOLONG:
        return CLI_EX_USAGE;
    default:
        return CLI_EX_FAIL;
    }
}

static const char *cause(int err)
{
    switch (err) {
    case -ETIMEDOUT:
    case -EAGAIN:
        return "timed out";
    case -ENOENT:
        return "no such name (or not visible to you), or nobody listens there";
    case -EACCES:
    case -EPERM:
        return "permission denied";
    case -EPIPE:
    case -ECONNRESET:
        return "peer gone (closed or died)";
    case -ESRCH:
        return "owner is exiting";
    case -EPROTOTYPE:
        return "name is of another kind";
    case -ECONNREFUSED:
        return "nobody listens there (or no ferryd runs, and none could start)";
    case -EINVAL:
        return "invalid argument (URL, name or option)";
    case -EPROTONOSUPPORT:
        return "unknown URL scheme";
    case -EMSGSIZE:
        return "message too large";
    case -EEXIST:
        return "name already owned";
    default:
        return "failed";
    }
}

int cli_fail(const char *cmd, const char *what, int err)
{
    fprintf(stderr, "ferry %s: %s: %s (%s)\n", cmd, what, cause(err), ferry_strerror(err));
    return cli_exit(err);
}

/* ------------------------------------------------------------------ time and signals */

static void on_stop(int sig)
{
    (void)sig;
    cli_stop = 1;
}

void cli_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is a write error, not a death */
}

int64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC_NS + ts.tv_nsec;
}

void cli_deadline_set(cli_deadline *d, int64_t timeout_ns)
{
    d->now = timeout_ns == FERRY_NOW;
    d->used = 0;
    d->at = timeout_ns < 0 ? -1 : cli_now_ns() + timeout_ns;
}

int64_t cli_slice(cli_deadline *d)
{
    if (cli_stop) return -EINTR;
    if (d->now) {
        if (d->used) return -ETIMEDOUT;
        d->used = 1;
        return FERRY_NOW;
    }
    if (d->at < 0) return SLICE_NS;
    int64_t left = d->at - cli_now_ns();
    if (left <= 0) return -ETIMEDOUT;
    return left < SLICE_NS ? left : SLICE_NS;
}

void cli_sleep_ns(int64_t ns)
{
    int64_t end = cli_now_ns() + ns;
    while (!cli_stop) {
        int64_t left = end - cli_now_ns();
        if (left <= 0) return;
        if (left > SLICE_NS) left = SLICE_NS;
        struct timespec ts = {.tv_sec = left / SEC_NS, .tv_nsec = left % SEC_NS};
        nanosleep(&ts, NULL);
    }
}

void cli_time_str(uint64_t ns, char *buf, size_t cap)
{
    time_t s = (time_t)(ns / 1000000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03uZ", base, (unsigned)(ns % 1000000000u / 1000000u));
}

const char *cli_kind_name(uint32_t kind)
{
    static const char *const names[] = {"server",  "semaphore", "mutex",  "barrier", "event",
                                        "mailbox", "broadcast", "region", "state"};
    return kind < sizeof names / sizeof *names ? names[kind] : "?";
}

int cli_is_url(const char *s)
{
    return strstr(s, "://") != NULL;
}

/* ------------------------------------------------------------------ decoding input */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

static int is_space(int c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int read_u4(const char *s, size_t n, size_t i, uint32_t *out)
{
    if (i + 4 > n) return -EINVAL;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hexval((unsigned char)s[i + k]);
        if (h < 0) return -EINVAL;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* The JSON string at s[*i] (a '"') into UTF-8 bytes at o (room for n - *i bytes); *i
 * moves past it. */
static int json_string(const char *s, size_t n, size_t *ip, char *o, size_t *olen)
{
    size_t i = *ip, k = 0;
    if (i >= n || s[i++] != '"') return -EINVAL;
    for (;;) {
        if (i >= n) return -EINVAL;
        unsigned char c = (unsigned char)s[i++];
        if (c == '"') break;
        if (c < 0x20) return -EINVAL;
        if (c != '\\') {
            o[k++] = (char)c;
            continue;
        }
        if (i >= n) return -EINVAL;
        c = (unsigned char)s[i++];
        const char *esc = strchr("\"\\/bfnrt", c);
        if (c && esc) {
            o[k++] = "\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"];
            continue;
        }
        if (c != 'u') return -EINVAL;
        uint32_t cp, lo;
        if (read_u4(s, n, i, &cp) < 0) return -EINVAL;
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
            if (i + 2 > n || s[i] != '\\' || s[i + 1] != 'u' || read_u4(s, n, i + 2, &lo) < 0 ||
                lo < 0xdc00 || lo >= 0xe000)
                return -EINVAL;
            i += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            return -EINVAL;
        }
        k += put_utf8(o + k, cp); /* a \\uXXXX (6 bytes) makes at most 4 */
    }
    *ip = i;
    *olen = k;
    return 0;
}

static void skip_ws(const char *s, size_t n, size_t *i)
{
    while (*i < n && is_space((unsigned char)s[*i])) (*i)++;
}

/* Skip a JSON scalar (number, true, false, null) or a string, or a flat array of them. */
static int json_skip(const char *s, size_t n, size_t *i, char *scratch)
{
    size_t len;
    if (*i < n && s[*i] == '"') return json_string(s, n, i, scratch, &len);
    if (*i < n && s[*i] == '[') {
        (*i)++;
        skip_ws(s, n, i);
        if (*i < n && s[*i] == ']') {
            (*i)++;
            return 0;
        }
        for (;;) {
            skip_ws(s, n, i);
            if (*i < n && (s[*i] == '[' || s[*i] == '{')) return -EINVAL; /* flat only */
            if (json_skip(s, n, i, scratch) < 0) return -EINVAL;
            skip_ws(s, n, i);
            if (*i < n && s[*i] == ',') {
                (*i)++;
                continue;
            }
            if (*i < n && s[*i] == ']') {
                (*i)++;
                return 0;
            }
            return -EINVAL;
        }
    }
    size_t start = *i;
    while (*i < n && (isalnum((unsigned char)s[*i]) || strchr("+-.", s[*i]))) (*i)++;
    return *i > start ? 0 : -EINVAL;
}

/* JSON input: a string literal, or an object as `ferry recv --format json` prints it:
 * {"type": N, "data": "..."} or {"type": N, "base64": "..."} (other members, such as
 * size, uid, pid, fds, are skipped). o has room for n bytes; *type is set when given. */
static int json_decode(const char *s, size_t n, char *o, size_t *olen, int64_t *type)
{
    size_t i = 0;
    skip_ws(s, n, &i);
    if (i < n && s[i] == '"') {
        if (json_string(s, n, &i, o, olen) < 0) return -EINVAL;
        skip_ws(s, n, &i);
        return i == n ? 0 : -EINVAL;
    }
    if (i >= n || s[i++] != '{') return -EINVAL;
    char *scratch = malloc(n + 1);
    if (!scratch) return -ENOMEM;
    int rc = -EINVAL, have = 0;
    *olen = 0;
    skip_ws(s, n, &i);
    if (i < n && s[i] == '}') goto end;
    for (;;) {
        char key[16];
        size_t klen;
        skip_ws(s, n, &i);
        if (json_string(s, n, &i, scratch, &klen) < 0) goto out;
        snprintf(key, sizeof key, "%.*s", (int)(klen < sizeof key ? klen : sizeof key - 1),
                 scratch);
        if (klen >= sizeof key) key[0] = '\0';
        skip_ws(s, n, &i);
        if (i >= n || s[i++] != ':') goto out;
        skip_ws(s, n, &i);
        if (strcmp(key, "data") == 0) {
            if (have++ || json_string(s, n, &i, o, olen) < 0) goto out;
        } else if (strcmp(key, "base64") == 0) {
            size_t blen;
            char *dec;
            if (have++ || json_string(s, n, &i, scratch, &blen) < 0) goto out;
            if (cli_decode(CLI_FMT_BASE64, scratch, blen, &dec, olen, NULL) < 0) goto out;
            memcpy(o, dec, *olen);
            free(dec);
        } else if (strcmp(key, "type") == 0) {
            char *end;
            errno = 0;
            long long v = strtoll(s + i, &end, 10);
            if (errno || end == s + i || v < 0 || (size_t)(end - s) > n) goto out;
            i = (size_t)(end - s);
            if (type) *type = v;
        } else if (json_skip(s, n, &i, scratch) < 0) {
            goto out;
        }
        skip_ws(s, n, &i);
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        if (i < n && s[i] == '}') break;
        goto out;
    }
end:
    i++;
    skip_ws(s, n, &i);
    rc = i == n ? 0 : -EINVAL;
out:
    free(scratch);
    return rc;
}

int cli_decode(int format, const char *s, size_t n, char **out, size_t *outlen, int64_t *type)
{
    char *o = malloc(n + 1); /* every decoding is at most as long as its input */
    if (!o) return -ENOMEM;
    size_t k = 0;
    if (format == CLI_FMT_HEX) {
        int hi = -1;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (is_space(c)) continue;
            int h = hexval(c);
            if (h < 0) goto bad;
            if (hi < 0) {
                hi = h;
            } else {
                o[k++] = (char)(hi << 4 | h);
                hi = -1;
            }
        }
        if (hi >= 0) goto bad;
    } else if (format == CLI_FMT_BASE64) {
        uint32_t acc = 0;
        int bits = 0, pad = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (is_space(c)) continue;
            if (c == '=') {
                pad++;
                continue;
            }
            int v = b64val(c);
            if (v < 0 || pad) goto bad;
            acc = acc << 6 | (uint32_t)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                o[k++] = (char)(acc >> bits & 0xff);
            }
        }
        if (pad > 2 || bits >= 6) goto bad;
    } else if (format == CLI_FMT_JSON) {
        int rc = json_decode(s, n, o, &k, type);
        if (rc < 0) {
            free(o);
            return rc;
        }
    } else {
        memcpy(o, s, n);
        k = n;
    }
    *out = o;
    *outlen = k;
    return 0;
bad:
    free(o);
    return -EINVAL;
}

/* ------------------------------------------------------------------ reading input */

static int read_all(FILE *f, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b) return -ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap >= CLI_MAX_INPUT) {
                free(b);
                return -EMSGSIZE;
            }
            cap *= 2;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                return -ENOMEM;
            }
            b = nb;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(b);
        return -EIO;
    }
    if (n == cap) { /* room for a NUL: the JSON decoder's strtoll stops there */
        char *nb = realloc(b, cap + 1);
        if (!nb) {
            free(b);
            return -ENOMEM;
        }
        b = nb;
    }
    b[n] = '\0';
    *out = b;
    *len = n;
    return 0;
}

int cli_input_open(cli_input *in, const cli_opts *o, const char *arg_payload)
{
    memset(in, 0, sizeof *in);
    in->o = o;
    const char *src = arg_payload ? arg_payload : o->data;
    in->type = o->type;
    if (src) return cli_decode(o->format, src, strlen(src), &in->whole, &in->whole_len, &in->type);
    if (o->lines) {
        in->in = o->file ? fopen(o->file, "re") : stdin;
        return in->in ? 0 : -errno;
    }
    FILE *f = stdin;
    if (o->file && !(f = fopen(o->file, "re"))) return -errno;
    char *raw;
    size_t n;
    int rc = read_all(f, &raw, &n);
    if (f != stdin) fclose(f);
    if (rc < 0) return rc;
    rc = cli_decode(o->format, raw, n, &in->whole, &in->whole_len, &in->type);
    free(raw);
    return rc;
}

int cli_input_next(cli_input *in, const void **data, size_t *len)
{
    const cli_opts *o = in->o;
    long want = o->count < 0 ? 1 : o->count;
    if (in->in) { /* --lines: each line a message, at most --count of them */
        if (in->done || (o->count >= 0 && in->sent >= o->count)) return 0;
        ssize_t n = getline(&in->line, &in->line_cap, in->in);
        if (n < 0) {
            in->done = 1;
            return 0;
        }
        if (n > 0 && in->line[n - 1] == '\n') n--;
        if ((size_t)n > CLI_MAX_INPUT) return -EMSGSIZE;
        free(in->whole);
        in->whole = NULL;
        in->type = o->type;
        int rc = cli_decode(o->format, in->line, (size_t)n, &in->whole, &in->whole_len, &in->type);
        if (rc < 0) return rc;
        in->sent++;
        *data = in->whole;
        *len = in->whole_len;
        return 1;
    }
    if (in->sent >= want) return 0;
    in->sent++;
    *data = in->whole;
    *len = in->whole_len;
    return 1;
}

void cli_input_close(cli_input *in)
{
    if (in->in && in->in != stdin) fclose(in->in);
    free(in->whole);
    free(in->line);
    memset(in, 0, sizeof *in);
}

/* ------------------------------------------------------------------ printing */

int cli_utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = c >= 0xf0 && c <= 0xf4   ? 4
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xc2 && c < 0xe0  ? 2
                                              : 0;
        if (!len || i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80) return 0;
        if (len == 3 && c == 0xe0 && p[i + 1] < 0xa0) return 0;
        if (len == 3 && c == 0xed && p[i + 1] >= 0xa0) return 0;
        if (len == 4 && c == 0xf0 && p[i + 1] < 0x90) return 0;
        if (len == 4 && c == 0xf4 && p[i + 1] >= 0x90) return 0;
        i += len;
    }
    return 1;
}

void cli_json_str(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
            i++;
        } else if (c == '\n') {
            fputs("\\n", f);
            i++;
        } else if (c == '\t') {
            fputs("\\t", f);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            i++;
        } else {
            size_t l = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (i + l <= len && cli_utf8_valid(p + i, l)) {
                fwrite(p + i, 1, l, f);
                i += l;
            } else {
                fputs("\\ufffd", f);
                i++;
            }
        }
    }
    fputc('"', f);
}

static void put_base64(FILE *f, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        fputc(tab[v >> 18 & 63], f);
        fputc(tab[v >> 12 & 63], f);
        fputc(i + 1 < n ? tab[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? tab[v & 63] : '=', f);
    }
}

/* Where a received fd points (/proc/self/fd), into buf. */
static void fd_target(int fd, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, buf, cap - 1);
    if (n < 0) n = 0;
    buf[n] = '\0';
}

/* Bytes as text a terminal shows and cannot be steered by: printable ASCII, \n and \t
 * (when nl), and valid UTF-8 except the C1 controls (U+0080..U+009F, which some
 * terminals obey as escape sequences) as they are; every other byte as \xHH. */
static void put_safe(FILE *f, const unsigned char *p, size_t n, int nl)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if ((nl && (c == '\n' || c == '\t')) || (c >= 0x20 && c < 0x7f)) {
            fputc((int)c, f);
            i++;
            continue;
        }
        size_t l = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        int c1 = c == 0xc2 && i + 1 < n && p[i + 1] < 0xa0;
        if (c >= 0x80 && !c1 && i + l <= n && cli_utf8_valid(p + i, l)) {
            fwrite(p + i, 1, l, f);
            i += l;
        } else {
            fprintf(f, "\\x%02x", c);
            i++;
        }
    }
}

static void print_text(FILE *f, const unsigned char *p, size_t n)
{
    put_safe(f, p, n, 1);
    if (n == 0 || p[n - 1] != '\n') fputc('\n', f);
}

void cli_print_msg(FILE *f, const cli_opts *o, const void *data, size_t len, const cli_meta *m)
{
    const unsigned char *p = data;
    static const cli_meta none;
    if (!m) m = &none;
    char target[4096];
    if (o->format == CLI_FMT_RAW) {
        fwrite(p, 1, len, f);
        fflush(f);
        return;
    }
    if (o->format == CLI_FMT_JSON) {
        fputc('{', f);
        if (m->has_type) fprintf(f, "\"type\": %lld, ", (long long)m->type);
        fprintf(f, "\"size\": %zu", len);
        if (m->has_cred)
            fprintf(f, ", \"uid\": %u, \"gid\": %u, \"pid\": %d", (unsigned)m->cred.uid,
                    (unsigned)m->cred.gid, (int)m->cred.pid);
        if (m->has_lost) fprintf(f, ", \"lost\": %llu", (unsigned long long)m->lost);
        if (m->nfds > 0) {
            fputs(", \"fds\": [", f);
            for (int i = 0; i < m->nfds; i++) {
                fd_target(m->fds[i], target, sizeof target);
                if (i) fputs(", ", f);
                cli_json_str(f, target, strlen(target));
            }
            fputc(']', f);
        }
        if (cli_utf8_valid(p, len)) {
            fputs(", \"data\": ", f);
            cli_json_str(f, data, len);
        } else {
            fputs(", \"base64\": \"", f);
            put_base64(f, p, len);
            fputc('"', f);
        }
        fputs("}\n", f);
        fflush(f);
        return;
    }
    if (!o->quiet) {
        fputc('[', f);
        if (m->has_type) fprintf(f, "type %lld, ", (long long)m->type);
        fprintf(f, "%zu bytes", len);
        if (m->has_cred)
            fprintf(f, ", uid %u gid %u pid %d", (unsigned)m->cred.uid, (unsigned)m->cred.gid,
                    (int)m->cred.pid);
        if (m->has_lost) fprintf(f, ", lost %llu", (unsigned long long)m->lost);
        for (int i = 0; i < m->nfds; i++) { /* a path the sender chose: escaped */
            fd_target(m->fds[i], target, sizeof target);
            fputs(", fd ", f);
            put_safe(f, (const unsigned char *)target, strlen(target), 0);
        }
        fputs("] ", f);
    }
    if (o->format == CLI_FMT_HEX) {
        for (size_t i = 0; i < len; i++) fprintf(f, "%02x", p[i]);
        fputc('\n', f);
    } else if (o->format == CLI_FMT_BASE64) {
        put_base64(f, p, len);
        fputc('\n', f);
    } else {
        print_text(f, p, len);
    }
    fflush(f);
}
