/* SPDX-License-Identifier: Apache-2.0
 *
 * endpoint.h - turn what a user pastes as "Endpoint" into Marketo's bases.
 */
#ifndef MLS_ENDPOINT_H
#define MLS_ENDPOINT_H

#include <stddef.h>

#include "mlsync/err.h"

#define MLS_ENDPOINT_MAX 512

/* Each base has no trailing slash; append "/v1/leads.json" and so on. */
struct mls_endpoint {
        char identity[MLS_ENDPOINT_MAX]; /* .../identity */
        char rest[MLS_ENDPOINT_MAX];     /* .../rest */
        char bulk[MLS_ENDPOINT_MAX];     /* .../bulk */
};

/**
 * Parse an endpoint such as "https://123-ABC-456.mktorest.com/rest",
 * with or without "/rest" or "/identity" and trailing slashes, possibly
 * behind a path prefix ("http://127.0.0.1:8080/123-ABC-456/rest").
 * https is required; http only for loopback hosts (127.0.0.0/8,
 * localhost, [::1]). No base ever contains "//" in its path.
 *
 * @returns MLS_OK, or MLS_ERR_CONFIG with errstr set.
 */
enum mls_err mls_endpoint_parse(const char *url, struct mls_endpoint *ep,
                                char *errstr, size_t errstr_size);

#endif
