/* net.h — socket plumbing shared by the connector (net.c) and listener (accept.c).
 * The prototypes live in session.h (they take the session); this header only documents
 * the module boundary so includes stay one-way. */
#ifndef ESCP_NET_H
#define ESCP_NET_H
#include "session.h"

/* Listener pending table: unauthenticated connections waiting for their HELLO. A new
 * connection always gets a slot: if its source address already holds
 * ESCP_PENDING_PER_SOURCE(nstreams) of them, that source's oldest is closed; else if the
 * table is full, the oldest overall is closed (both counted rejected). 256 >= 4 x 65. */
#define ESCP_MAX_PENDING 256
#define ESCP_PENDING_PER_SOURCE(nstreams) (2 * (nstreams) + 8)
/* A pending connection must deliver its whole HELLO within min(timeout, this) ms of accept. */
#define ESCP_HELLO_DEADLINE_MS 5000

#endif
