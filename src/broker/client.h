// SPDX-License-Identifier: MIT
/*
 * client.h — the broker client's internal entry points, for the areas above the broker
 * (sync, mailbox, bcast, direct): opening an object published in ferryd by name. The
 * public ones (ferry_connect, ferry_register, ferry_publish, ...) are in ferry.h.
 */
#ifndef FERRY_BROKER_CLIENT_H
#define FERRY_BROKER_CLIENT_H

#include <stdint.h>

/* A descriptor for the object published under name in ferryd (broker/client.c): the
 * caller owns *fd. Errors as ferry_connect, and -EPROTOTYPE (a name of another kind),
 * -EBADMSG (a malformed reply). */
int ferry__obj_open(const char *name, int kind, int *fd, int64_t timeout_ns);

/* The same, also saying (*trusted 1 or 0) whether ferryd trusts the caller with the
 * object's sharers: the publisher's policy has FERRY_POLICY_TRUSTED_SHARERS, or the
 * caller's uid is the publisher's (broker/proto.h, FERRY__OPEN_TRUSTED). A plain mutex
 * is made from the descriptor only when it is 1 (ferry__mutex_adopt_trust). */
int ferry__obj_open_trust(const char *name, int kind, int *fd, int *trusted, int64_t timeout_ns);

/* The same with OPEN's want (broker/proto.h): FERRY__WANT_WRITE asks for a region's
 * writable descriptor (the write right), 0 for what the kind hands everyone (a region's
 * or state's read-only one). -EINVAL for other bits. */
int ferry__obj_open_want(const char *name, int kind, uint32_t want, int *fd, int *trusted,
                         int64_t timeout_ns);

#endif
