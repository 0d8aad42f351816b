// SPDX-License-Identifier: MIT
/*
 * signal.c — ferry_signal_poll_fd (ferry.h, "signals"): signals as readable descriptors.
 *
 * The signals of the mask are blocked in the calling thread (threads made later inherit
 * the mask), so that they stay pending instead of running a handler or the default
 * action, and a signalfd reports them: it polls readable while one is pending for the
 * thread or the process, and each read takes one (struct signalfd_siginfo). ferry_kill
 * (broker/client.c) is the other half: ferryd sends a signal to a name's owner.
 * Bits 32 and 33 (signals 32, 33) are glibc's own (thread cancellation, set*id): -EINVAL.
 */
#define _POSIX_C_SOURCE 200809L /* sigset_t, sigaddset, pthread_sigmask under -std=c11 */
#include "ferry/ferry.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

int ferry_signal_poll_fd(uint64_t mask)
{
    const uint64_t unblockable = (1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1));
    if (mask == 0 || (mask & unblockable)) return -EINVAL;
    sigset_t set, old;
    sigemptyset(&set);
    for (int sig = 1; sig <= 64; sig++)
        if ((mask & (1ull << (sig - 1))) && sigaddset(&set, sig) < 0)
            return -EINVAL; /* beyond SIGRTMAX, or one libc keeps for itself */
    int rc = pthread_sigmask(SIG_BLOCK, &set, &old);
    if (rc != 0) return -rc;
    int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL); /* leave the mask as it was */
        return rc;
    }
    return fd;
}
