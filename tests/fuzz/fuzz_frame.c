// SPDX-License-Identifier: MIT
/*
 * fuzz_frame.c — libFuzzer harness for the frame header decoder (src/core/frame.c).
 *
 * The first 32 bytes of the input are a header, the rest its payload. The harness
 * aborts when an invariant breaks:
 *  - decode returns 0 or exactly -EBADMSG;
 *  - a header that decodes passes ferry__frame_validate and re-encodes to the same bytes;
 *  - when the whole payload is present, ferry__frame_crc (dispatching crc32c) equals a
 *    software-only computation, and ferry__frame_check_crc agrees with it.
 * Built with -fsanitize=fuzzer as `fuzz_frame`, and with replay_main.c as
 * `fuzz_frame_replay`, which CTest runs over corpus/frame.
 */
#include "core/crc32c.h"
#include "core/frame.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEN (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ferry__frame f;
    uint8_t h[FERRY__FRAME_HDR];

    if (size < FERRY__FRAME_HDR) return 0;
    int rc = ferry__frame_decode(data, MAX_LEN, &f);
    if (rc == -EBADMSG) return 0;
    if (rc != 0) abort();
    if (ferry__frame_validate(&f, MAX_LEN) != 0) abort();

    ferry__frame_encode(&f, h);
    if (memcmp(h, data, FERRY__FRAME_HDR) != 0) abort();

    const uint8_t *payload = data + FERRY__FRAME_HDR;
    if (size - FERRY__FRAME_HDR < f.len) return 0;
    memcpy(h + 28, "\0\0\0\0", 4);
    uint32_t want = ferry__crc32c_sw(ferry__crc32c_sw(0, h, sizeof h), payload, f.len);
    if (ferry__frame_crc(&f, payload) != want) abort();
    int crc_rc = ferry__frame_check_crc(&f, payload);
    int expect = (f.flags & FERRY__F_CRC) && f.crc != want ? -EBADMSG : 0;
    if (crc_rc != expect) abort();
    return 0;
}
