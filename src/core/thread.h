// SPDX-License-Identifier: MIT
/*
 * thread.h — the signal mask of the library's own threads (the region poll thread,
 * region.c; the link watcher, shm/watch.c).
 *
 * Rules: such a thread is created with this mask in force (it inherits the mask it is
 * created with) and takes no signal: a process-directed signal the application blocks in
 * its own threads, to take it with sigwait or a signalfd, must not land here instead. The
 * signals of a fault stay open (blocked, the kernel would deliver them with the default
 * action, past the application's handler). Files that use it define _GNU_SOURCE or
 * _POSIX_C_SOURCE (sigset_t).
 */
#ifndef FERRY_CORE_THREAD_H
#define FERRY_CORE_THREAD_H

#include <signal.h>

/* Fill *s with every signal but those of a fault: the mask for a library thread. */
static inline void ferry__thread_sigmask(sigset_t *s)
{
    sigfillset(s);
    sigdelset(s, SIGSEGV);
    sigdelset(s, SIGBUS);
    sigdelset(s, SIGFPE);
    sigdelset(s, SIGILL);
}

#endif
