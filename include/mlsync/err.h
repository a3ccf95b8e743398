/* SPDX-License-Identifier: Apache-2.0
 *
 * err.h - the one error enum of mlsync, grouped by what the caller should do.
 */
#ifndef MLS_ERR_H
#define MLS_ERR_H

#include <stdbool.h>

enum mls_err {
        MLS_OK = 0,
        MLS_ERR_NOMEM,       /* stop: we cannot make progress */
        MLS_ERR_CONFIG,      /* stop at start-up, never at run time */
        MLS_ERR_TRANSIENT,   /* retry after back-off: network, 5xx, rate */
        MLS_ERR_AUTH,        /* refresh the token once, then retry */
        MLS_ERR_REJECTED,    /* remote refused this input: never retry */
        MLS_ERR_BAD_MESSAGE, /* malformed Kafka message: dead-letter it */
        MLS_ERR_QUOTA,       /* daily quota spent: wait for Marketo's reset */
        MLS_ERR_FATAL,       /* this instance cannot work until fixed */
        MLS_ERR_IO,          /* local I/O: file, socket */
        MLS_ERR_CANCELLED,   /* abandoned on purpose (shutdown, revoke) */
};

const char *mls_err_name(enum mls_err err);
bool mls_err_is_retryable(enum mls_err err);

#endif
