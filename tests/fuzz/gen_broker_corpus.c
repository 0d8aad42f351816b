// SPDX-License-Identifier: MIT
/*
 * gen_broker_corpus.c — writes the seed corpus of fuzz_broker into a directory:
 *   fuzz_gen_broker_corpus tests/fuzz/corpus/broker
 * Each file is [op byte][payload] (see fuzz_broker.c): every request ferryd decodes and
 * every packet the library reads, valid ones (edge lengths and values included) and
 * broken ones (short, trailing bytes, a NUL inside a string, a string over its buffer,
 * too many ids); and whole packets (frame header + payload, some with a descriptor) for
 * the ferry__brecv path, valid and not. The files are committed; rerun this only to
 * change the seed set.
 */
#include "broker/proto.h"
#include "core/frame.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;
static uint8_t buf[FERRY__BMSG_MAX + 64];

static void put(const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, n, fp) != n || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
}

/* A writer for a payload after the op byte. */
static ferry__bw start(uint8_t op)
{
    buf[0] = op;
    return (ferry__bw){.p = buf + 1, .cap = sizeof buf - 1};
}

/* Write [op][payload]; `cut` drops bytes from the end, `extra` adds that many zeros. */
static void done(const char *name, const ferry__bw *w, size_t cut, size_t extra)
{
    if (w->err) {
        fprintf(stderr, "%s: encoding failed (%d)\n", name, w->err);
        exit(1);
    }
    memset(w->p + w->len, 0, extra);
    put(name, buf, 1 + w->len + extra - cut);
}

/* A raw string: u16 length, then the bytes (for what ferry__bw_str refuses). */
static void raw_str(ferry__bw *w, const char *s, size_t n)
{
    uint8_t b[2] = {(uint8_t)n, (uint8_t)(n >> 8)};
    memcpy(w->p + w->len, b, 2);
    memcpy(w->p + w->len + 2, s, n);
    w->len += 2 + n;
}

/* A whole packet: header (op, seq, nfds, flags) and the payload of w; `len_delta` makes
 * the header's length lie. */
static void packet(const char *name, int64_t op, uint8_t nfds, uint8_t flags, const ferry__bw *w,
                   int len_delta)
{
    static uint8_t pk[FERRY__FRAME_HDR + sizeof buf];
    ferry__frame f = {.flags = flags,
                      .nfds = nfds,
                      .type = op,
                      .seq = 42,
                      .len = (uint32_t)((int64_t)w->len + len_delta)};
    ferry__frame_encode(&f, pk);
    memcpy(pk + FERRY__FRAME_HDR, w->p, w->len);
    put(name, pk, FERRY__FRAME_HDR + w->len);
}

static void info(ferry__bw *w, const char *name, uint64_t connects)
{
    ferry_name_info in = {.uid = 1000, .gid = 100, .pid = 4242, .mode = 0640};
    snprintf(in.name, sizeof in.name, "%s", name);
    in.connects = connects;
    ferry__bw_info(w, &in);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];

    /* A 255-byte name (four 63-byte parts), one byte more, and "<255>.*" (257 bytes). */
    char longest[256], toolong[257], pat257[258];
    for (int i = 0; i < 255; i++) longest[i] = i % 64 == 63 ? '.' : (char)('a' + i % 26);
    longest[255] = '\0';
    memcpy(toolong, longest, 255);
    memcpy(toolong + 255, "a", 2);
    memcpy(pat257, longest, 255);
    memcpy(pat257 + 255, ".*", 3);

    ferry_policy defp, allp;
    ferry_policy_init(&defp);
    ferry_policy_init(&allp);
    allp.mode = 0660;
    allp.gid = 100;
    allp.flags = FERRY_TAKEOVER;
    allp.n_uids = FERRY_POLICY_MAX_IDS;
    for (uint32_t i = 0; i < allp.n_uids; i++) allp.allow_uids[i] = 1000 + i;
    allp.n_gids = 3;
    for (uint32_t i = 0; i < allp.n_gids; i++) allp.allow_gids[i] = 10 + i;

    ferry__bw w;

    /* REGISTER */
    w = start(FERRY__OP_REGISTER);
    ferry__bw_register(&w, "org.example.echo", &defp);
    done("req_register_default", &w, 0, 0);
    done("req_register_trailing", &w, 0, 1);
    done("req_register_short", &w, 3, 0);
    w = start(FERRY__OP_REGISTER);
    ferry__bw_register(&w, longest, &allp);
    done("req_register_allow_lists", &w, 0, 0);
    w = start(FERRY__OP_REGISTER);
    ferry__bw_str(&w, "a.b");
    ferry__bw_u32(&w, 0600);
    ferry__bw_u32(&w, UINT32_MAX);
    ferry__bw_u32(&w, 0);
    ferry__bw_u32(&w, FERRY_POLICY_MAX_IDS + 1);
    for (int i = 0; i < FERRY_POLICY_MAX_IDS + 1; i++) ferry__bw_u32(&w, (uint32_t)i);
    ferry__bw_u32(&w, 0);
    done("req_register_bad_17_uids", &w, 0, 0);
    w = start(FERRY__OP_REGISTER);
    ferry_policy badp = defp;
    badp.mode = 01777;
    badp.flags = 0x80000000u;
    ferry__bw_register(&w, "bad..name", &badp);
    done("req_register_bad_name_policy", &w, 0, 0);

    /* UNREGISTER, LOOKUP: a name */
    w = start(FERRY__OP_UNREGISTER);
    ferry__bw_str(&w, "org.example.echo");
    done("req_unregister", &w, 0, 0);
    w = start(FERRY__OP_LOOKUP);
    ferry__bw_str(&w, longest);
    done("req_lookup_255", &w, 0, 0);
    done("req_lookup_truncated", &w, 100, 0);
    w = start(FERRY__OP_LOOKUP);
    raw_str(&w, toolong, strlen(toolong));
    done("req_lookup_bad_257", &w, 0, 0);
    w = start(FERRY__OP_LOOKUP);
    raw_str(&w, "a.b\0c", 5);
    done("req_lookup_bad_nul", &w, 0, 0);
    w = start(FERRY__OP_LOOKUP);
    ferry__bw_str(&w, "");
    done("req_lookup_empty", &w, 0, 0);
    w = start(FERRY__OP_LOOKUP);
    ferry__bw_str(&w, "-a.b_c.x-1.*");
    done("req_lookup_pattern", &w, 0, 0);

    /* CONNECT: name, kind */
    w = start(FERRY__OP_CONNECT);
    ferry__bw_str(&w, "org.example.echo");
    ferry__bw_u32(&w, FERRY_KIND_SHM);
    done("req_connect_shm", &w, 0, 0);
    done("req_connect_short", &w, 1, 0);
    w = start(FERRY__OP_CONNECT);
    ferry__bw_str(&w, "org.example.echo");
    ferry__bw_u32(&w, FERRY_KIND_UNIX);
    done("req_connect_unix", &w, 0, 0);
    w = start(FERRY__OP_CONNECT);
    ferry__bw_str(&w, "x");
    ferry__bw_u32(&w, 0xdeadbeef);
    done("req_connect_bad_kind", &w, 0, 0);

    /* LIST: after, max */
    w = start(FERRY__OP_LIST);
    ferry__bw_str(&w, "");
    ferry__bw_u32(&w, 100);
    done("req_list_first", &w, 0, 0);
    w = start(FERRY__OP_LIST);
    ferry__bw_str(&w, "org.example.echo");
    ferry__bw_u32(&w, UINT32_MAX);
    done("req_list_after", &w, 0, 0);

    /* WATCH: a pattern */
    w = start(FERRY__OP_WATCH);
    ferry__bw_str(&w, "*");
    done("req_watch_all", &w, 0, 0);
    w = start(FERRY__OP_WATCH);
    ferry__bw_str(&w, "org.example.*");
    done("req_watch_prefix", &w, 0, 0);
    w = start(FERRY__OP_WATCH);
    raw_str(&w, pat257, strlen(pat257));
    done("req_watch_prefix_257", &w, 0, 0);
    w = start(FERRY__OP_WATCH);
    raw_str(&w, "a.b.c.d.e.f.**", 14);
    done("req_watch_bad_stars", &w, 0, 0);
    w = start(FERRY__OP_WATCH);
    ferry__bw_str(&w, "a..*");
    done("req_watch_bad_prefix", &w, 0, 0);

    /* ACCEPTED: id */
    w = start(FERRY__OP_ACCEPTED);
    ferry__bw_u64(&w, 0x0123456789abcdefull);
    done("req_accepted", &w, 0, 0);
    done("req_accepted_short", &w, 4, 0);

    /* REPLY in every shape */
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, 0);
    done("rep_ok", &w, 0, 0);
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, (uint32_t)-ENOENT);
    done("rep_enoent", &w, 0, 0);
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, 0);
    ferry__bw_cred(&w, &(ferry_cred){.uid = 1000, .gid = 1000, .pid = 77});
    done("rep_connect", &w, 0, 0);
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, 0);
    ferry__bw_open_reply(&w, FERRY__OPEN_TRUSTED);
    done("rep_open_trusted", &w, 0, 0);
    done("rep_open_short", &w, 1, 0);
    done("rep_open_trailing", &w, 0, 1);
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, 0);
    ferry__bw_open_reply(&w, 0);
    done("rep_open_untrusted", &w, 0, 0);
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, 0);
    ferry__bw_u32(&w, FERRY__OPEN_TRUSTED | 0x80000002u);
    done("rep_open_bad_bits", &w, 0, 0);
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, 0);
    info(&w, "org.example.echo", 12);
    done("rep_lookup", &w, 0, 0);
    done("rep_lookup_trailing", &w, 0, 2);
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, 0);
    ferry__bw_u32(&w, 3);
    info(&w, "a", 0);
    info(&w, longest, UINT64_MAX);
    info(&w, "org.example.echo", 5);
    done("rep_list_3", &w, 0, 0);
    done("rep_list_3_short", &w, 5, 0);
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, 0);
    ferry__bw_u32(&w, 0);
    done("rep_list_0", &w, 0, 0);
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, 0);
    ferry__bw_u32(&w, UINT32_MAX);
    info(&w, "a", 0);
    done("rep_list_bad_count", &w, 0, 0);

    /* OPEN: name, kind */
    w = start(FERRY__OP_OPEN);
    ferry__bw_str(&w, "org.example.mutex");
    ferry__bw_u32(&w, FERRY_OBJ_MUTEX);
    done("req_open", &w, 0, 0);
    /* OPEN of a region with want (FERRY__WANT_WRITE), and a bad want */
    w = start(FERRY__OP_OPEN);
    ferry__bw_str(&w, "org.example.frame");
    ferry__bw_u32(&w, FERRY_OBJ_REGION);
    ferry__bw_u32(&w, FERRY__WANT_WRITE);
    done("req_open_region_write", &w, 0, 0);
    done("req_open_region_want_short", &w, 2, 0);

    /* PUBLISH of a region: the register body, the kind, the write lists */
    ferry_policy regp;
    ferry_policy_init(&regp);
    regp.mode = 0660;
    regp.flags = FERRY_WRITE_ANYONE;
    regp.n_write_uids = 2;
    regp.write_uids[0] = 1001;
    regp.write_uids[1] = 1002;
    regp.n_write_gids = 1;
    regp.write_gids[0] = 100;
    w = start(FERRY__OP_PUBLISH);
    ferry__bw_register(&w, "org.example.frame", &regp);
    ferry__bw_u32(&w, FERRY_OBJ_REGION);
    ferry__bw_write_lists(&w, &regp);
    done("req_publish_region", &w, 0, 0);
    done("req_publish_region_short", &w, 3, 0);
    w = start(FERRY__OP_PUBLISH);
    ferry__bw_register(&w, "org.example.cfg", &defp);
    ferry__bw_u32(&w, FERRY_OBJ_STATE);
    done("req_publish_state", &w, 0, 0);
    /* PUBLISH of a kept mailbox (FERRY_POLICY_KEEP: an orphan when its publisher dies) */
    ferry_policy keepp;
    ferry_policy_init(&keepp);
    keepp.flags = FERRY_POLICY_KEEP | FERRY_TAKEOVER;
    w = start(FERRY__OP_PUBLISH);
    ferry__bw_register(&w, "org.example.kept", &keepp);
    ferry__bw_u32(&w, FERRY_OBJ_MAILBOX);
    done("req_publish_kept", &w, 0, 0);
    w = start(FERRY__OP_REGISTER);
    ferry__bw_register(&w, "org.example.kept", &keepp);
    done("req_register_kept", &w, 0, 0);

    /* LOOKUP's reply for a region: the info with size, dev, ino */
    w = start(FERRY__OP_REPLY);
    ferry__bw_u32(&w, 0);
    ferry_name_info rin = {.uid = 1000,
                           .gid = 100,
                           .pid = 4242,
                           .mode = 0660,
                           .kind = FERRY_OBJ_REGION,
                           .size = 1 << 20,
                           .dev = 5,
                           .ino = 77};
    snprintf(rin.name, sizeof rin.name, "org.example.frame");
    ferry__bw_info(&w, &rin);
    done("rep_lookup_region", &w, 0, 0);
    done("rep_lookup_region_short", &w, 8, 0);

    /* INTRO, EVENT, LOST */
    w = start(FERRY__OP_INTRO);
    ferry__bw_u64(&w, 7);
    ferry__bw_u32(&w, FERRY_KIND_UNIX);
    ferry__bw_cred(&w, &(ferry_cred){.uid = 0, .gid = 0, .pid = 1});
    done("intro", &w, 0, 0);
    w = start(FERRY__OP_EVENT);
    ferry__bw_u32(&w, FERRY_EV_DIED);
    info(&w, "org.example.echo", 3);
    done("event_died", &w, 0, 0);
    w = start(FERRY__OP_LOST);
    ferry__bw_str(&w, "org.example.echo");
    done("lost", &w, 0, 0);

    /* any other op byte: every decoder */
    w = start(0xff);
    ferry__bw_str(&w, "a.b");
    ferry__bw_u32(&w, 1);
    done("any_op", &w, 0, 0);

    /* Whole packets (the first byte is the frame magic's: every decoder, then brecv). */
    static uint8_t pl[FERRY__BMSG_MAX + 1];
    ferry__bw p = {.p = pl, .cap = sizeof pl};
    ferry__bw_register(&p, "org.example.echo", &allp);
    packet("pkt_register", FERRY__OP_REGISTER, 0, 0, &p, 0);
    packet("pkt_register_len_lies", FERRY__OP_REGISTER, 0, 0, &p, -1);
    packet("pkt_register_crc_flag", FERRY__OP_REGISTER, 0, FERRY__F_CRC, &p, 0);
    packet("pkt_register_nfds_2", FERRY__OP_REGISTER, 2, 0, &p, 0);
    p.len = 0;
    ferry__bw_u32(&p, 0);
    ferry__bw_cred(&p, &(ferry_cred){.uid = 1000, .gid = 1000, .pid = 77});
    packet("pkt_reply_connect_fd", FERRY__OP_REPLY, 1, 0, &p, 0);
    packet("pkt_reply_connect_nfds_5", FERRY__OP_REPLY, 5, 0, &p, 0);
    p.len = 0;
    ferry__bw_u32(&p, 0);
    ferry__bw_open_reply(&p, FERRY__OPEN_TRUSTED);
    packet("pkt_reply_open_fd", FERRY__OP_REPLY, 1, 0, &p, 0);
    p.len = 0;
    ferry__bw_u64(&p, 9);
    ferry__bw_u32(&p, FERRY_KIND_SHM);
    ferry__bw_cred(&p, &(ferry_cred){.uid = 1000, .gid = 1000, .pid = 78});
    packet("pkt_intro_fd", FERRY__OP_INTRO, 1, 0, &p, 0);
    p.len = 0;
    ferry__bw_register(&p, "org.example.frame", &regp);
    ferry__bw_u32(&p, FERRY_OBJ_REGION);
    ferry__bw_write_lists(&p, &regp);
    packet("pkt_publish_region_2fds", FERRY__OP_PUBLISH, 2, 0, &p, 0);
    p.len = 0;
    packet("pkt_empty", FERRY__OP_ACCEPTED, 0, 0, &p, 0);
    memset(pl, 'z', sizeof pl);
    p.len = FERRY__BMSG_MAX;
    packet("pkt_largest", FERRY__OP_LOST, 0, 0, &p, 0);
    p.len = FERRY__BMSG_MAX + 1;
    packet("pkt_bad_too_large", FERRY__OP_LOST, 0, 0, &p, 0);
    return 0;
}
