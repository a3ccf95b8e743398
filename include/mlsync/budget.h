/* SPDX-License-Identifier: Apache-2.0
 *
 * budget.h - the deterministic core of the shared Marketo rate budget: one
 * state per (worker, Marketo instance) that reads the instance's control
 * records in log order and decides how many calls this worker may make so
 * that all workers together stay within the instance's budget.
 *
 * The module does no I/O and keeps no clock. The caller feeds it every
 * control record of the instance (its own included) in partition order with
 * the record's log-append time, publishes what mls_budget_next_record()
 * returns, and asks mls_budget_try_spend() before every Marketo call. The
 * protocol, its assumptions and the record schema are in docs/rate-budget.md.
 *
 * Two clocks: log_ms is the broker's LogAppendTime of a record (footprints,
 * leases, AIMD and targets run on it, so every worker agrees); now_ms is the
 * worker's monotonic clock (its own call log, the fence, pacing).
 *
 * Not thread-safe: one thread owns a state.
 */
#ifndef MLS_BUDGET_H
#define MLS_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlsync/err.h"

/** Version of the control record schema this module writes and reads. */
#define MLS_BUDGET_RECORD_VERSION 1

/** Largest control record accepted, in bytes. */
#define MLS_BUDGET_RECORD_MAX 4096

/** Tunables; see docs/rate-budget.md for the relations safety needs. */
struct mls_budget_params {
        int window_ms;    /* W: Marketo's rolling window (20000) */
        int margin_ms;    /* broker clock skew and arrival jitter (1000) */
        int ttl_ms;       /* lease others grant a silent worker (5000) */
        int ttl_self_ms;  /* we stop calling after this without a read-back
                             of our own record (4000); must be <= ttl_ms */
        int heartbeat_ms; /* record cadence while active (1000) */
        int claim_gap_ms; /* least time between two claims (250) */
        int reserve;      /* calls per window kept out of fair shares (0) */
        int block_calls;  /* daily quota block size (50) */
};

/** Where a record from mls_budget_next_record() must be published. */
enum mls_budget_topic {
        MLS_BUDGET_TOPIC_RATE,  /* time-retained rate/lease topic */
        MLS_BUDGET_TOPIC_QUOTA, /* compacted daily quota topic */
};

/** What the module knows, for metrics and an operator view. */
struct mls_budget_stats {
        int conf;            /* confirmed calls per window we may use */
        int target;          /* our advisory fair share */
        int others;          /* sum of other workers' footprints */
        int beff;            /* shared budget after AIMD (calls/window) */
        int ceff;            /* shared concurrency after AIMD */
        int64_t beff_milli;  /* beff in thousandths of a call */
        int64_t aimd_t0_ms;  /* log time of the last rate decrease, -1 */
        int cc;              /* our in-flight cap */
        int window_calls;    /* our calls still counted in the window */
        int in_flight;
        int want;            /* demand we announce */
        int members;         /* other workers with a live lease */
        bool started;
        bool fenced;
        bool doubt;          /* an unreadable record holds our raises */
        bool stopped_607;
        long day;
        long daily_confirmed; /* quota calls confirmed to us today */
        long daily_used;
        uint64_t records_in;
        uint64_t records_out;
        uint64_t records_bad;       /* unparseable or invalid */
        uint64_t records_version;   /* unknown schema version */
        uint64_t records_foreign;   /* another instance: ignored */
        uint64_t claims_confirmed;  /* read-backs that raised conf */
        uint64_t claims_clipped;    /* read-backs that raised less */
        uint64_t fences;
        uint64_t rate_decreases;
        uint64_t conc_decreases;
};

struct mls_budget;

/** Fill p with the defaults listed beside the fields. */
void mls_budget_params_default(struct mls_budget_params *p);

/**
 * Create the state of one worker incarnation for one Marketo instance.
 *
 * @param instance     Munchkin id. Copied.
 * @param worker_id    Stable worker name (pod name). Copied.
 * @param incarnation  Random per process start, >= 0; with worker_id it
 *                     names this member (a restart is a new member).
 * @param calls_per_20s     Our budget B per window, > 0.
 * @param concurrent_calls  Our share C of Marketo's concurrent calls, > 0.
 * @param daily_calls  Our share of the daily quota; 0 turns daily blocks
 *                     off.
 * @param p            Tunables, copied; NULL for the defaults.
 * @returns a new state, or NULL on bad arguments or allocation failure.
 */
struct mls_budget *mls_budget_new(const char *instance, const char *worker_id,
                                  int64_t incarnation, int calls_per_20s,
                                  int concurrent_calls, long daily_calls,
                                  const struct mls_budget_params *p);

/** Free a state; NULL is a no-op. */
void mls_budget_destroy(struct mls_budget *bud);

/**
 * Say that the history has been replayed (at least ttl + window + margin
 * of log time of the rate topic, and the whole day of the quota topic).
 * Until then the state publishes nothing and allows no call.
 */
void mls_budget_start(struct mls_budget *bud, int64_t now_ms);

/**
 * Set the Marketo day (days since an epoch, in Marketo's time zone). A new
 * day drops the old day's blocks and 607 stop; daily blocks are claimed
 * only once a day is set.
 */
void mls_budget_set_day(struct mls_budget *bud, long day);

/**
 * Process one control record of this instance, in partition order.
 *
 * @param json    Record value, not necessarily NUL-terminated. Borrowed.
 * @param log_ms  The record's log-append time.
 * @returns MLS_OK (also for a record of another instance, which is
 *          counted and ignored); MLS_ERR_BAD_MESSAGE for an unparseable or
 *          invalid record or an unknown version: counted, skipped, and our
 *          raises are held until the footprint it might carry has aged
 *          out; MLS_ERR_NOMEM.
 */
enum mls_err mls_budget_on_record(struct mls_budget *bud, const char *json,
                                  size_t len, int64_t log_ms, int64_t now_ms);

/**
 * The next record to publish now, if any; call until NULL.
 *
 * @param topicp  Set to the topic the record belongs to.
 * @returns a NUL-terminated JSON string the caller owns and frees with
 *          free(), or NULL when nothing is due (or out of memory).
 */
char *mls_budget_next_record(struct mls_budget *bud, int64_t now_ms,
                             enum mls_budget_topic *topicp);

/** Calls waiting to be made (the caller's queue), for our demand. */
void mls_budget_set_demand(struct mls_budget *bud, long queued,
                           int64_t now_ms);

/** @returns how many calls we may start at now_ms (0 when none). */
int mls_budget_allowance(struct mls_budget *bud, int64_t now_ms);

/**
 * Take one call from the allowance. On true the call counts as started;
 * report its end with mls_budget_on_reply() exactly once.
 */
bool mls_budget_try_spend(struct mls_budget *bud, int64_t now_ms);

/**
 * A call ended (reply, error or timeout).
 *
 * @param code     Marketo reason code (606, 615, 607) or 0 for any other
 *                 outcome.
 * @param sent_ms  now_ms of the mls_budget_try_spend() that started it.
 */
void mls_budget_on_reply(struct mls_budget *bud, int code, int64_t sent_ms,
                         int64_t now_ms);

/** Snapshot the state at now_ms into st. */
void mls_budget_get_stats(struct mls_budget *bud, int64_t now_ms,
                          struct mls_budget_stats *st);

#endif
