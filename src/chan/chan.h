// SPDX-License-Identifier: MIT
/*
 * chan.h — the generic channel's internal entry points, for the areas above it (the
 * broker, direct): what the public API (ferry.h) does not offer but a layer above needs,
 * always through the transports' tables (transport/transport.h), never by naming a
 * transport.
 */
#ifndef FERRY_CHAN_CHAN_H
#define FERRY_CHAN_CHAN_H

#include "ferry/ferry.h"

#include <stdint.h>

/* A channel end of the transport of kind (FERRY_KIND_*) on a connected SOCK_SEQPACKET
 * socket s that someone else made (the broker's socket pairs): the transport's
 * from_sock door (transport.h says creator, o and peer). s is consumed in every case.
 * -EINVAL: no transport serves that kind; else its errors. */
int ferry__chan_from_sock(int kind, int s, int creator, const ferry_chan_opts *o,
                          const ferry_cred *peer, int64_t deadline, ferry_chan **out);

/* The caller's options in (NULL: none) as a full struct of this version in *o (core/abi.h:
 * min(in->size, sizeof) bytes over the defaults). 0, -EINVAL (in->size 0, too small, too
 * large; relay_for not a valid identity) or -E2BIG (fields this version does not know,
 * set). Every public function that
 * takes a ferry_chan_opts calls it first, then passes o on. */
int ferry__chan_opts_in(const ferry_chan_opts *in, ferry_chan_opts *o);

/* A remote identity as ferry_chan_opts.relay_for must be: 1..FERRY_REMOTE_ID_MAX bytes
 * 0x21..0x7e, NUL-terminated. 0 or -EINVAL. */
int ferry__remote_id_valid(const char *id);

/* 1 if some transport serves kind through the broker (from_sock), else 0. */
int ferry__chan_kind_ok(int kind);

/* Is ch's peer still there: 0 yes or cannot tell, -EPIPE gone, -EBADMSG broken. One
 * poll, never blocks (the transport's alive op). ch must be non-NULL. */
int ferry__chan_alive(ferry_chan *ch);

#endif
