/* SPDX-License-Identifier: Apache-2.0
 *
 * event.h - decode one audience-membership Kafka message (native mlsync
 * JSON or a Segment Engage audience event) into a membership change.
 */
#ifndef MLS_EVENT_H
#define MLS_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "mlsync/err.h"

enum mls_event_action {
        MLS_EVENT_ADD = 0,
        MLS_EVENT_REMOVE,
};

enum mls_event_format {
        MLS_EVENT_NATIVE = 0,
        MLS_EVENT_SEGMENT,
};

struct mls_event {
        enum mls_event_format format;
        enum mls_event_action action;
        char *munchkin_id; /* from the key, else the body */
        char *audience_id; /* may be NULL */
        char *list_name;   /* audience name, else its key/id */
        char *user_id;     /* may be NULL */
        char **emails;     /* lower-case, deduplicated; may be empty */
        size_t email_cnt;
};

/**
 * Decode one message. The key (may be NULL) names the instance; when the
 * body names one too, both must agree (case-insensitively).
 *
 * @param ev  Filled on MLS_OK; release with mls_event_fini. Zeroed and
 *            holding nothing on error.
 * @returns MLS_OK, MLS_ERR_BAD_MESSAGE with errstr set (the reason that
 *          goes to the dead-letter topic), or MLS_ERR_NOMEM.
 */
enum mls_err mls_event_decode(const void *key, size_t key_len,
                              const void *payload, size_t len,
                              struct mls_event *ev, char *errstr,
                              size_t errstr_size);

void mls_event_fini(struct mls_event *ev);

#endif
