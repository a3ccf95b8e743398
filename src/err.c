/* SPDX-License-Identifier: Apache-2.0
 *
 * err.c - names for mlsync's error values.
 */
#include "mlsync/err.h"

const char *mls_err_name(enum mls_err err)
{
        switch (err) {
        case MLS_OK:
                return "ok";
        case MLS_ERR_NOMEM:
                return "out_of_memory";
        case MLS_ERR_CONFIG:
                return "config";
        case MLS_ERR_TRANSIENT:
                return "transient";
        case MLS_ERR_AUTH:
                return "auth";
        case MLS_ERR_REJECTED:
                return "rejected";
        case MLS_ERR_BAD_MESSAGE:
                return "bad_message";
        case MLS_ERR_QUOTA:
                return "daily_quota";
        case MLS_ERR_FATAL:
                return "fatal";
        case MLS_ERR_IO:
                return "io";
        case MLS_ERR_CANCELLED:
                return "cancelled";
        }
        return "unknown";
}

bool mls_err_is_retryable(enum mls_err err)
{
        return err == MLS_ERR_TRANSIENT || err == MLS_ERR_AUTH ||
               err == MLS_ERR_QUOTA;
}
