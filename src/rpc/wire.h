// SPDX-License-Identifier: MIT
/*
 * wire.h — the RPC framing on a ferry channel (internal). Each message's ferry type is
 * (kind << 56) | id: kind 1 request, 2 reply, 3 one-way (id 0), 4 cancel (no payload:
 * the client no longer waits for id's reply); ids are 1 .. 2^56-1,
 * per client connection, never reused in its life. The payload and fds are the user's,
 * untouched. Anything else is dropped by the receiving side (never a crash).
 */
#ifndef FERRY_RPC_WIRE_H
#define FERRY_RPC_WIRE_H

#include <stdint.h>

#define FERRY__RPC_REQUEST 1
#define FERRY__RPC_REPLY   2
#define FERRY__RPC_ONEWAY  3
#define FERRY__RPC_CANCEL  4 /* the client gave up on id: no reply wanted */

#define FERRY__RPC_ID_BITS 56
#define FERRY__RPC_ID_MASK ((UINT64_C(1) << FERRY__RPC_ID_BITS) - 1)

static inline int64_t ferry__rpc_type(int kind, uint64_t id)
{
    return (int64_t)(((uint64_t)kind << FERRY__RPC_ID_BITS) | (id & FERRY__RPC_ID_MASK));
}

static inline int ferry__rpc_kind(int64_t type)
{
    return (int)((uint64_t)type >> FERRY__RPC_ID_BITS);
}

static inline uint64_t ferry__rpc_id(int64_t type)
{
    return (uint64_t)type & FERRY__RPC_ID_MASK;
}

#endif
