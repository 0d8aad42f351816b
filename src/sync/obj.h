// SPDX-License-Identifier: MIT
/*
 * obj.h — what the synchronization objects (src/sync) share: the object segment
 * (shm/obj.h: making, mapping and checking an object's memfd, carriers), opening one by
 * name through ferryd (broker/client.h), and the mutex's trusted adopt.
 */
#ifndef FERRY_SYNC_OBJ_H
#define FERRY_SYNC_OBJ_H

#include "broker/client.h"
#include "shm/obj.h"

/* ferry_mutex_adopt for a descriptor whose provider may not be trusted with a plain
 * mutex (mutex.c): trusted 0 refuses, -EPERM, what its single read of the flags word
 * says is a plain one. ferry_mutex_open is ferry__obj_open_trust then this. Ownership
 * and other errors as ferry_mutex_adopt (fd is consumed in every case). */
struct ferry_mutex;
int ferry__mutex_adopt_trust(int fd, int trusted, struct ferry_mutex **out);

#endif
