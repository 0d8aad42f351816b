// SPDX-License-Identifier: MIT
/*
 * hot.h — FERRY__HOT marks the functions every message runs through (a channel's send
 * and receive, their shm halves, the wait and the wake-up). GCC and clang put them in
 * .text.hot, which the linker lays out together: a send and a receive then touch one or
 * two pages of the library's code instead of one per source file. With more processes
 * than CPUs every process starts its turn with cold TLBs and caches, and each page a
 * hand-off touches costs a page walk (performance.md, "Pages per hand-off").
 */
#ifndef FERRY_CORE_HOT_H
#define FERRY_CORE_HOT_H

#if defined(__GNUC__)
#define FERRY__HOT __attribute__((hot))
/* The rare parts of those functions (a full ring, a rendezvous, a large copy, the general
 * receive), out of line and out of .text.hot (into .text.unlikely): the hot text then
 * fits in fewer pages. */
#define FERRY__COLD __attribute__((cold, noinline))
/* The few globals those functions read (in .data, which is small: not among the
 * kilobytes of .bss tables, a page or more away). */
#define FERRY__HOT_DATA __attribute__((section(".data.ferry_hot")))
#else
#define FERRY__HOT
#define FERRY__COLD
#define FERRY__HOT_DATA
#endif

#endif
