/* SPDX-License-Identifier: Apache-2.0
 *
 * config.h - the YAML configuration: loading, validation, redacted printing.
 */
#ifndef MLS_CONFIG_H
#define MLS_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "mlsync/err.h"

/** A Marketo call budget; 0 in an override means "inherit". */
struct mls_budget {
        int calls_per_20s;
        int concurrent_calls;
        long daily_calls;
};

struct mls_cfg_instance {
        char *munchkin_id;        /* also the Kafka message key */
        char *endpoint;           /* as written by the user */
        char *client_id;
        char *client_secret;      /* resolved: inline or read from the file */
        char *client_secret_file; /* NULL when given inline; re-read on refresh */
        char *folder;             /* resolved: the instance's or the default */
        struct mls_budget budget; /* resolved: defaults plus overrides */
};

struct mls_cfg_prop {
        char *key;
        char *value;
};

struct mls_cfg {
        char *path; /* the file it was loaded from */
        struct {
                char *brokers;
                char *group;
                char **topics;
                size_t topic_cnt;
                char *dead_letter_topic;
                char *control_topic;
                struct mls_cfg_prop *props; /* librdkafka pass-through */
                size_t prop_cnt;
        } kafka;
        struct {
                char *folder;
                struct mls_budget budget;
                struct mls_cfg_instance *instances;
                size_t instance_cnt;
        } marketo;
        struct {
                int max_wait_ms;       /* default 1000 */
                int max_emails;        /* default 300: one Marketo call */
                int max_pending;       /* default 20000 changes held in memory */
        } batch;
        struct {
                int shutdown_timeout_ms; /* default 20000 */
                int commit_interval_ms;  /* default 1000 */
                char *http_addr;         /* /livez /readyz /metrics; NULL = off */
        } worker;
        struct {
                char *level;  /* error | warn | info | debug */
                char *format; /* json | text */
        } log;
};

/**
 * Load, expand (${VAR}, ${VAR:-default}, *_file) and validate a YAML file.
 *
 * @param path   The file to read.
 * @param cfgp   On MLS_OK, set to a config the caller owns
 *               (mls_cfg_destroy). Untouched on error.
 * @param errsp  On error, set to every problem found, one per line, each
 *               "file:line:column: message"; caller owns it (free).
 * @returns MLS_OK, MLS_ERR_CONFIG or MLS_ERR_NOMEM.
 */
enum mls_err mls_cfg_load(const char *path, struct mls_cfg **cfgp,
                          char **errsp);

/** The same as mls_cfg_load, from a buffer; name is used in messages. */
enum mls_err mls_cfg_load_buf(const char *name, const char *buf, size_t len,
                              struct mls_cfg **cfgp, char **errsp);

/** Print the resolved config as YAML, secrets replaced by "<redacted>". */
void mls_cfg_print(const struct mls_cfg *cfg, FILE *fp);

/** Instance by munchkin id (case-insensitive), or NULL. Borrowed. */
const struct mls_cfg_instance *
mls_cfg_instance_find(const struct mls_cfg *cfg, const char *munchkin_id);

void mls_cfg_destroy(struct mls_cfg *cfg);

#endif
