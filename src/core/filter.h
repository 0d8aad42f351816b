// SPDX-License-Identifier: MIT
/*
 * filter.h — the message-type filter of ferry_recvmsg, ferry_peek and the mailbox's
 * receive: 0 takes any message, > 0 only that type, < 0 the lowest type <= -filter
 * (ferry.h). The one copy of the rule: every transport and every pattern that selects
 * by type asks ferry__filter_match.
 */
#ifndef FERRY_CORE_FILTER_H
#define FERRY_CORE_FILTER_H

#include <stdint.h>

/* Does a message of this type pass the filter (ferry_recvmsg rules)? For filter < 0 this
 * says only "eligible" (type <= -filter); the caller picks the lowest eligible type. */
static inline int ferry__filter_match(int64_t filter, int64_t type)
{
    if (filter == 0) return 1;
    if (filter > 0) return type == filter;
    return type <= -filter;
}

#endif
