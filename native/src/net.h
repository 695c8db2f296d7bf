/* net.h — socket plumbing shared by the connector (net.c) and listener (accept.c).
 * The prototypes live in session.h (they take the session); this header only documents
 * the module boundary so includes stay one-way. */
#ifndef ESCP_NET_H
#define ESCP_NET_H
#include "session.h"

/* Poll slots per connector/listener loop: wake fd + listener + up to this many pending
 * unauthenticated connections (extra ones are closed at once and counted rejected). */
#define ESCP_MAX_PENDING 64

#endif
