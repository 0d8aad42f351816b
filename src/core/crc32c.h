// SPDX-License-Identifier: MIT
/*
 * crc32c.h — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by the frame.
 * ferry__crc32c picks the SSE4.2 instruction when the CPU has it (checked once) and a
 * portable table-driven version otherwise; both are exposed so tests can check each
 * against the standard vector: crc32c("123456789") == 0xE3069283.
 * Pure functions; thread-safe.
 */
#ifndef FERRY_CORE_CRC32C_H
#define FERRY_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc is the running value: start with 0, feed the result back to continue. */
uint32_t ferry__crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t ferry__crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* Returns 0 when the CPU lacks SSE4.2 (then ferry__crc32c_hw must not be called). */
int ferry__crc32c_hw_available(void);
uint32_t ferry__crc32c_hw(uint32_t crc, const void *buf, size_t len);

#endif
