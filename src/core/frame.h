// SPDX-License-Identifier: MIT
/*
 * frame.h — the 32-byte ferry frame header (docs/architecture.md): its layout, encoder and strict
 * decoder. Used by every byte-stream transport and as the record header of a shm ring.
 *
 *   off  0  u32 magic 'FRY1' (0x31595246 little-endian: bytes 'F','R','Y','1')
 *   off  4  u8 version (1) | u8 flags | u8 nfds | u8 reserved (0)
 *   off  8  i64 type
 *   off 16  u64 seq
 *   off 24  u32 payload_len
 *   off 28  u32 crc32c over (the header with crc = 0, then the payload), when
 *           FERRY__F_CRC is set; 0 otherwise
 *
 * Rules: all fields little-endian. The decoder works on a private copy of the 32 bytes
 * (never on memory a peer can still change) and rejects anything not exactly valid with
 * -EBADMSG: wrong magic or version, reserved != 0, unknown flag bits, nfds > 16,
 * payload_len > the caller's maximum, type < 0.
 */
#ifndef FERRY_CORE_FRAME_H
#define FERRY_CORE_FRAME_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY__FRAME_MAGIC   0x31595246u /* "FRY1" */
#define FERRY__FRAME_VERSION 1u
#define FERRY__FRAME_HDR     32u

/* Header flags. */
#define FERRY__F_CRC  0x01u /* crc field is valid and must be checked */
#define FERRY__F_WRAP 0x02u /* shm ring: padding to the ring's end; continue at offset 0 */
#define FERRY__F_JUMP                                                                              \
    0x04u /* shm ring: continue in the next segment (sent on the control link)                     \
           */
#define FERRY__F_ALL 0x07u

/* The decoded header. */
typedef struct ferry__frame {
    uint8_t flags;
    uint8_t nfds;
    int64_t type;
    uint64_t seq;
    uint32_t len;
    uint32_t crc;
} ferry__frame;

/* Write f as 32 bytes to out. The crc field is written as f->crc (use
 * ferry__frame_seal to compute it). */
void ferry__frame_encode(const ferry__frame *f, uint8_t out[FERRY__FRAME_HDR]);

/* Decode 32 bytes from in into *f and validate them (rules above) against max_len.
 * Returns 0 or -EBADMSG. Does not check the crc (it needs the payload): see
 * ferry__frame_check_crc. */
int ferry__frame_decode(const uint8_t in[FERRY__FRAME_HDR], uint32_t max_len, ferry__frame *f);

/* Validate an already-decoded header (the same rules as decode, minus magic/version,
 * which the caller checked). Returns 0 or -EBADMSG. Inline: the shm ring runs it on
 * every record. */
static inline int ferry__frame_validate(const ferry__frame *f, uint32_t max_len)
{
    if ((f->flags & ~FERRY__F_ALL) != 0 || f->nfds > 16 /* FERRY_MAX_FDS */ || f->len > max_len ||
        f->type < 0)
        return -EBADMSG;
    return 0;
}

/* crc32c of the header (encoded with crc = 0) followed by payload[0..f->len). */
uint32_t ferry__frame_crc(const ferry__frame *f, const void *payload);

/* If f carries FERRY__F_CRC, check it against payload: 0 or -EBADMSG. */
int ferry__frame_check_crc(const ferry__frame *f, const void *payload);

#endif
