// SPDX-License-Identifier: MIT
/*
 * notify.h — the service manager's readiness protocol (sd_notify(3)) without libsystemd:
 * one datagram "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=..." (newline-separated
 * assignments) to the AF_UNIX datagram socket $NOTIFY_SOCKET names: a path ("/run/...")
 * or an abstract name ("@name": sun_path[0] = 0, the rest without a trailing NUL).
 *
 * Rules: $NOTIFY_SOCKET is read with secure_getenv; anything that is not "/..." or "@..."
 * or does not fit in sun_path is ignored (-EINVAL). The send is bounded (SO_SNDTIMEO
 * 2 s) so a manager that does not read cannot stall ferryd for long. The kernel attaches
 * ferryd's credentials; nothing else is trusted on either side.
 */
#ifndef FERRY_DAEMON_NOTIFY_H
#define FERRY_DAEMON_NOTIFY_H

/* Send state to $NOTIFY_SOCKET. 1 sent, 0 no $NOTIFY_SOCKET (nothing to do), -errno
 * (-EINVAL a malformed address; the socket or send error otherwise). */
int ferry__notify(const char *state);

#endif
