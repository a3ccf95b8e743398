/* SPDX-License-Identifier: Apache-2.0
 *
 * log.h - structured logging: one event per line on stderr, JSON or logfmt.
 *
 * A call names the level, the component and a fixed phrase; everything
 * variable goes in typed key/value fields, so the phrase can be grepped and
 * alerted on:
 *
 *   mls_log(MLS_LOG_WARN, "mkto", "batch retry",
 *           MLS_KV_STR("instance", id), MLS_KV_INT("attempt", n));
 *
 * Never pass a secret, a token or an email as a value; use mls_redact_tag().
 */
#ifndef MLS_LOG_H
#define MLS_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum mls_log_level {
        MLS_LOG_ERROR = 0,
        MLS_LOG_WARN,
        MLS_LOG_INFO,
        MLS_LOG_DEBUG,
};

enum mls_log_format {
        MLS_LOG_JSON = 0,
        MLS_LOG_TEXT,
};

enum mls_kv_type {
        MLS_KV_T_END = 0,
        MLS_KV_T_STR,
        MLS_KV_T_INT,
        MLS_KV_T_DBL,
        MLS_KV_T_BOOL,
};

struct mls_kv {
        const char *key;
        enum mls_kv_type type;
        const char *s;
        int64_t i;
        double d;
};

#define MLS_KV_STR(k, v) \
        ((struct mls_kv){ .key = (k), .type = MLS_KV_T_STR, .s = (v) })
#define MLS_KV_INT(k, v) \
        ((struct mls_kv){ .key = (k), .type = MLS_KV_T_INT, .i = (int64_t)(v) })
#define MLS_KV_DBL(k, v) \
        ((struct mls_kv){ .key = (k), .type = MLS_KV_T_DBL, .d = (double)(v) })
#define MLS_KV_BOOL(k, v) \
        ((struct mls_kv){ .key = (k), .type = MLS_KV_T_BOOL, .i = !!(v) })
#define MLS_KV_END ((struct mls_kv){ .key = 0, .type = MLS_KV_T_END })

/* The phrase is the first variadic argument so a call may carry no fields. */
#define mls_log(level, component, ...) \
        mls_log_write((level), (component), __VA_ARGS__, MLS_KV_END)

/** Set the threshold and the format. @thread start-up only. */
void mls_log_setup(enum mls_log_level level, enum mls_log_format format);

/** Parse "error|warn|info|debug"; returns -1 when unknown. */
int mls_log_level_parse(const char *s);

/** Map a syslog level (librdkafka's log callback uses them) to ours. */
enum mls_log_level mls_log_level_from_syslog(int level);

/** Parse "json|text"; returns -1 when unknown. */
int mls_log_format_parse(const char *s);

/** True when an event at this level would be written. */
bool mls_log_enabled(enum mls_log_level level);

/**
 * Write one event. Variadic arguments are struct mls_kv values ended by
 * MLS_KV_END (the mls_log macro adds it). One write(2) per event, so lines
 * from several threads never interleave.
 * @thread any
 */
void mls_log_write(enum mls_log_level level, const char *component,
                   const char *msg, ...);

#endif
