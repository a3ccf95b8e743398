/* SPDX-License-Identifier: Apache-2.0
 *
 * marketo.h - asynchronous Marketo REST client for static-list membership.
 *
 * One struct mls_mkto_loop (a libcurl multi handle plus timers) drives the
 * calls of every instance from one thread. One struct mls_mkto per Marketo
 * instance owns that instance's token, folder, list-id cache and limiter.
 *
 * A sync job ("add these emails to list L", "remove these from L") is a
 * small state machine: resolve the folder, find or create the list, then
 * upsert or look up the leads and change membership, 300 records per call.
 * Each call passes the instance's limiter, re-authenticates once on
 * 601/602, backs off with jitter on retryable failures, and reports one
 * result when the whole job is done or has failed.
 *
 * @thread everything here runs on the thread that calls mls_mkto_loop_run.
 */
#ifndef MLS_MARKETO_H
#define MLS_MARKETO_H

#include <stddef.h>
#include <stdint.h>

#include "mlsync/config.h"
#include "mlsync/err.h"

#define MLS_MKTO_BATCH_MAX 300

struct mls_mkto_loop;
struct mls_mkto;
struct mls_limiter;

enum mls_mkto_op {
        MLS_MKTO_ADD = 0,
        MLS_MKTO_REMOVE,
};

/** One email Marketo refused, with its reason. */
struct mls_mkto_reject {
        size_t index;      /* into the emails given to mls_mkto_sync */
        char code[16];     /* Marketo reason code, e.g. "1003" */
        char message[192]; /* Marketo's reason text */
};

struct mls_mkto_result {
        enum mls_err err;   /* MLS_OK: every email applied or rejected */
        char code[16];      /* on error: Marketo code or "http_502" ... */
        char errstr[256];   /* on error: what happened, no personal data */
        int64_t retry_at_ms; /* TRANSIENT/QUOTA: earliest sensible retry
                              * (monotonic ms), else 0 */
        int64_t list_id;
        size_t applied;     /* emails Marketo accepted */
        const struct mls_mkto_reject *rejects; /* borrowed during callback */
        size_t reject_cnt;
};

typedef void mls_mkto_done_cb(const struct mls_mkto_result *res,
                              void *opaque);

/** Per-instance counters, cumulative since mls_mkto_new. */
struct mls_mkto_stats {
        uint64_t calls;            /* REST calls sent (identity excluded) */
        uint64_t token_calls;      /* identity calls */
        uint64_t retries;          /* calls sent again after a failure */
        uint64_t errors_606;
        uint64_t errors_615;
        uint64_t errors_607;
        uint64_t errors_other;     /* any other failed call */
        uint64_t jobs_ok;
        uint64_t jobs_failed;
        uint64_t emails_applied;
        uint64_t emails_rejected;
        int in_flight;
        int window_used;           /* calls counted in the current window */
};

/* ---- loop ---- */

struct mls_mkto_loop *mls_mkto_loop_new(void);

/**
 * Destroy the loop. Every client on it must be destroyed first.
 */
void mls_mkto_loop_destroy(struct mls_mkto_loop *loop);

/**
 * Also wake mls_mkto_loop_run when fd becomes readable (for example the
 * librdkafka queue's event fd). The fd stays the caller's.
 */
void mls_mkto_loop_watch_fd(struct mls_mkto_loop *loop, int fd);

/**
 * Wait up to timeout_ms for sockets, timers or a watched fd, then make
 * progress and run completion callbacks.
 * @returns the number of jobs still pending across all clients.
 */
int mls_mkto_loop_run(struct mls_mkto_loop *loop, int timeout_ms);

/* ---- client ---- */

/**
 * Create the client for one instance. Nothing is sent until a job needs
 * it. The instance is borrowed and must outlive the client.
 * @returns the client, or NULL with errstr set (bad endpoint, no memory).
 */
struct mls_mkto *mls_mkto_new(struct mls_mkto_loop *loop,
                              const struct mls_cfg_instance *inst,
                              char *errstr, size_t errstr_size);

/**
 * Cancel pending jobs (their callbacks run with MLS_ERR_CANCELLED before
 * this returns) and free the client.
 */
void mls_mkto_destroy(struct mls_mkto *mk);

/**
 * Tunables for tests and the worker; 0 keeps the current value.
 * @param call_timeout_ms  HTTP timeout of one call (default 120000, above
 *                         Marketo's 90 s server-side limit).
 * @param max_attempts     tries of one call before the job fails with
 *                         MLS_ERR_TRANSIENT (default 5).
 * @param backoff_base_ms  first back-off step (default 500); capped at 30 s.
 */
void mls_mkto_set_tuning(struct mls_mkto *mk, int call_timeout_ms,
                         int max_attempts, int backoff_base_ms);

/**
 * Start a job: make emails members (ADD) or non-members (REMOVE) of the
 * static list called list_name in the instance's folder.
 *
 * @param emails  Copied; compared case-insensitively.
 * @param cb      Called exactly once, from mls_mkto_loop_run (or from
 *                mls_mkto_destroy / mls_mkto_cancel_all).
 * @returns MLS_OK when queued; MLS_ERR_NOMEM.
 */
enum mls_err mls_mkto_sync(struct mls_mkto *mk, const char *list_name,
                           enum mls_mkto_op op, const char *const *emails,
                           size_t email_cnt, mls_mkto_done_cb *cb,
                           void *opaque);

/** Cancel every pending job of this client (callbacks run now). */
void mls_mkto_cancel_all(struct mls_mkto *mk);

/** Jobs queued or running on this client. */
size_t mls_mkto_pending(const struct mls_mkto *mk);

void mls_mkto_get_stats(const struct mls_mkto *mk,
                        struct mls_mkto_stats *stats);

/** The instance's limiter, borrowed; the shared budget adjusts it. */
struct mls_limiter *mls_mkto_limiter(struct mls_mkto *mk);

/**
 * A second gate in front of every REST call (identity calls excluded, as
 * Marketo does not count them): the budget shared with other workers.
 * allow() is asked before a call is started (0: go; otherwise ms to wait,
 * a poll of the loop is enough); spent() is told when it is sent and
 * ended() exactly once when it is over, with Marketo's code (606, 615,
 * 607), MLS_MKTO_GATE_ABANDONED when the client gave the call up before
 * its answer (the request may still reach Marketo), or 0 for any other
 * outcome, and the spent() time.
 */
#define MLS_MKTO_GATE_ABANDONED (-1)

struct mls_mkto_gate {
        int64_t (*allow)(void *opaque, int64_t now_ms);
        void (*spent)(void *opaque, int64_t now_ms);
        void (*ended)(void *opaque, int code, int64_t sent_ms,
                      int64_t now_ms);
        void *opaque;
};

/** Install (or with NULL remove) the gate; copied. */
void mls_mkto_set_gate(struct mls_mkto *mk, const struct mls_mkto_gate *g);

/** The munchkin id this client serves. Borrowed. */
const char *mls_mkto_instance(const struct mls_mkto *mk);

#endif
