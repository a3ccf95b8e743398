/* SPDX-License-Identifier: Apache-2.0
 *
 * rig.h - a whole mlsync deployment on loopback for integration tests and
 * the demo: kafka-mock, the Marketo emulator, N workers, and an oracle
 * that replays the input topic to say what every list must hold.
 */
#ifndef MLS_TEST_RIG_H
#define MLS_TEST_RIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "support.h"

#define MLS_RIG_MAX_WORKERS 8
#define MLS_RIG_TOPIC "audience-membership"
#define MLS_RIG_DLQ "audience-membership.dlq"
#define MLS_RIG_GROUP "mlsync-rig"

/* The three instances every rig serves, with their credentials. */
extern const char *const mls_rig_instances[3];

struct mls_rig {
        char dir[1024];        /* logs, config and files of this run */
        char config[1100];
        char bootstrap[512];
        char emu_base[128];
        int partitions;
        struct mls_proc kafka;
        struct mls_proc emu;
        struct mls_proc gen;   /* audience-gen, when started in background */
        struct mls_proc workers[MLS_RIG_MAX_WORKERS];
        bool quiet;            /* demo: fewer progress lines */
};

struct mls_rig_opts {
        int partitions;              /* input topic partitions (default 6) */
        const char *const *emu_args; /* extra emulator flags, NULL-ended */
        int batch_max_wait_ms;       /* default 200 */
        int batch_max_pending;       /* default: the worker's (20000) */
        int shutdown_timeout_ms;     /* default 15000 */
        const char *log_level;       /* default "info" */
        int no_folder;               /* 1-based index of an instance whose
                                      * folder is missing at start; 0 none */
        bool http;                   /* serve probes and metrics on a free
                                      * loopback port (see below) */
};

/** Start kafka-mock and the emulator, write the worker config. */
int mls_rig_start(struct mls_rig *r, const char *tag,
                  const struct mls_rig_opts *opts);

/** Start (or restart) worker i; its log is <dir>/worker-<i>.log. */
int mls_rig_worker_start(struct mls_rig *r, int i);

/**
 * The port worker i serves /livez, /readyz and /metrics on (opts.http),
 * read from its log. @returns the port, or -1 after timeout_ms.
 */
int mls_rig_worker_http_port(struct mls_rig *r, int i, int timeout_ms);

/** Signal worker i and wait for its exit. @returns its exit code. */
int mls_rig_worker_stop(struct mls_rig *r, int i, int sig, int timeout_ms);

/**
 * Run audience-gen against the rig's topic with extra arguments
 * (NULL-ended). @returns its exit code.
 */
int mls_rig_generate(struct mls_rig *r, const char *const args[]);

/** The same, in the background (use --rate to spread it over time). */
int mls_rig_generate_start(struct mls_rig *r, const char *const args[]);

/** Wait for a background generator. @returns its exit code. */
int mls_rig_generate_wait(struct mls_rig *r, int timeout_ms);

/**
 * Wait until the group's committed offsets reach the high watermarks of
 * the input topic. @returns 0, or -1 on timeout (lag printed).
 */
int mls_rig_wait_caught_up(struct mls_rig *r, int timeout_ms);

/** Per-partition committed offsets of the group (-1: none). */
int mls_rig_committed(struct mls_rig *r, int64_t *committed, int n);

/** The emulator's /_admin/<what> reply; caller frees. */
char *mls_rig_admin(struct mls_rig *r, const char *what);

/**
 * Replay the input topic and compare with the emulator. With committed
 * NULL every change must be visible in Marketo. With committed offsets,
 * only emails whose last change lies below their partition's committed
 * offset are checked: what was committed must have been accepted.
 * @returns 0 when they agree, else the number of differences (the first
 *          ones printed).
 */
int mls_rig_check_lists(struct mls_rig *r, const int64_t *committed);

/** Like mls_rig_check_lists with every change claimed, for one instance
 *  only; members of other instances are not looked at. */
int mls_rig_check_instance(struct mls_rig *r, const char *instance);

struct facts;

/* Dead-letter records, each source message counted once. */
struct mls_rig_dlq {
        int total;           /* records, duplicates included */
        int decode;
        int route;
        int marketo;
        int other;           /* any other stage: must stay 0 */
        int missing_headers; /* records without reason/source headers */
        struct facts *seen;  /* private */
};

/** Read the dead-letter topic and count records by stage. */
int mls_rig_read_dlq(struct mls_rig *r, struct mls_rig_dlq *d);

/** Stop every process (workers with SIGTERM, then the services). */
void mls_rig_stop(struct mls_rig *r);

#endif
