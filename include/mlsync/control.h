/* SPDX-License-Identifier: Apache-2.0
 *
 * control.h - the Kafka plumbing of the shared Marketo budget: one producer
 * that appends this worker's control records, each instance's records to
 * one fixed partition, and one group-less reader that replays enough
 * history of every partition and then tails it (rate-budget.md §3.2, §3.16).
 *
 * The protocol itself (what a record says, claims, leases) lives in the
 * budget module; this one only moves bytes, reports acks and read-backs,
 * and says whether the control topic can be trusted right now.
 *
 * Not thread-safe: one thread (the worker's event loop) owns a handle. Only
 * mls_ctl_new blocks (bounded); everything else returns at once.
 */
#ifndef MLS_CONTROL_H
#define MLS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlsync/config.h"
#include "mlsync/err.h"

/** Used when kafka.control_topic is not set. */
#define MLS_CTL_DEFAULT_TOPIC "mlsync.control"
/** Longest instance id (record key) accepted, in bytes. */
#define MLS_CTL_KEY_MAX 127
/** Most records one mls_ctl_poll hands out; see mls_ctl_poll. */
#define MLS_CTL_POLL_MAX 1000

struct mls_ctl;

/** Tuning; zero in a field means its default. */
struct mls_ctl_opts {
        /* Record time the bootstrap must reach back (default 30000). */
        int64_t history_ms;
        /* Records per partition the first bootstrap step starts behind the
         * end; doubled until history_ms is covered (default 1024). */
        int64_t tail_records;
        /* A published record unacked this long is unhealthy (default
         * 5000). */
        int64_t ack_timeout_ms;
        /* Reader errors with no progress, or an acked own record not read
         * back, for this long are unhealthy (default 10000). */
        int64_t reader_timeout_ms;
        /* Bound on the start-up metadata and watermark queries (default
         * 10000). */
        int start_timeout_ms;
        /* Bound on flushing unsent records in mls_ctl_destroy (default
         * 2000). */
        int close_timeout_ms;
};

enum mls_ctl_ts_type {
        MLS_CTL_TS_NONE = 0,   /* the broker gave no timestamp */
        MLS_CTL_TS_CREATE,     /* set by the producer (CreateTime) */
        MLS_CTL_TS_LOG_APPEND, /* set by the broker (LogAppendTime) */
};

/** One consumed control record. Every pointer is borrowed for the
 *  duration of the callback only. */
struct mls_ctl_record {
        const char *instance; /* the key, NUL-terminated */
        const void *val;      /* may be NULL when len is 0 */
        size_t len;
        int32_t partition;
        int64_t offset;
        int64_t ts_ms;        /* Unix epoch milliseconds */
        enum mls_ctl_ts_type ts_type;
        bool own;             /* published by this very handle */
        bool history;         /* below the end offset seen at start */
};

/** Called by mls_ctl_poll for each record, in offset order per partition. */
typedef void mls_ctl_record_cb(void *opaque, const struct mls_ctl_record *rec);

/** Counters since mls_ctl_new, for metrics and tests. */
struct mls_ctl_stats {
        uint64_t published;  /* accepted by mls_ctl_publish */
        uint64_t acked;      /* delivery reports without error */
        uint64_t failed;     /* delivery reports with an error */
        uint64_t consumed;   /* records handed to the callback */
        uint64_t own_read;   /* ...of which published by this handle */
        uint64_t dropped;    /* records without a usable key */
        uint64_t rewinds;    /* bootstrap steps further back */
        uint64_t reader_errors;
};

/**
 * Create the producer and the reader of cfg->kafka.control_topic on
 * cfg->kafka.brokers (cfg->kafka.props passed through), read the partition
 * count and every partition's watermarks, and assign the reader to each
 * partition far enough back; the history itself is read by mls_ctl_poll.
 *
 * Blocks up to opts->start_timeout_ms.
 *
 * @param cfg        Borrowed; only read during the call.
 * @param worker_id  This worker's name (pod name); borrowed. Names the
 *                   clients and tags own records.
 * @param opts       Borrowed; NULL for all defaults.
 * @returns a handle the caller owns (mls_ctl_destroy), or NULL with errstr
 *          set (bad property, topic missing, Kafka unreachable).
 */
struct mls_ctl *mls_ctl_new_opts(const struct mls_cfg *cfg,
                                 const char *worker_id,
                                 const struct mls_ctl_opts *opts,
                                 char *errstr, size_t errstr_size);

/** mls_ctl_new_opts with every default. */
struct mls_ctl *mls_ctl_new(const struct mls_cfg *cfg, const char *worker_id,
                            char *errstr, size_t errstr_size);

/**
 * Flush unsent records for at most close_timeout_ms, drop the rest, close
 * the reader (no commit: it never had any) and free everything. NULL is a
 * no-op.
 */
void mls_ctl_destroy(struct mls_ctl *ctl);

/**
 * The partition of instance among partition_cnt partitions: Kafka's
 * murmur2 (Java-compatible) of the id, made positive, mod the count.
 * Stable across processes, versions and clients.
 * @returns 0..partition_cnt-1, or -1 when partition_cnt < 1.
 */
int32_t mls_ctl_partition_of(const char *instance, int32_t partition_cnt);

/** Partition count of the control topic, read at start. */
int32_t mls_ctl_partition_cnt(const struct mls_ctl *ctl);

/**
 * Append one record for instance (the key) without waiting; the delivery
 * report is served by a later mls_ctl_poll.
 *
 * @param instance  Munchkin id, 1..MLS_CTL_KEY_MAX bytes; borrowed.
 * @param val       Copied; may be NULL when len is 0.
 * @param now_ms    Monotonic time of the send (mls_now_ms()); remembered
 *                  for mls_ctl_last_ack_ms.
 * @returns MLS_OK; MLS_ERR_REJECTED for an empty or too long instance
 *          (or a NULL val with len > 0);
 *          MLS_ERR_TRANSIENT when the local queue is full; MLS_ERR_FATAL
 *          after a fatal producer error; MLS_ERR_NOMEM.
 */
enum mls_err mls_ctl_publish(struct mls_ctl *ctl, const char *instance,
                             const void *val, size_t len, int64_t now_ms);

/**
 * Serve delivery reports and hand every consumed record to cb. Never
 * waits. Drains the wake fd.
 *
 * Hands out at most MLS_CTL_POLL_MAX records; when it returns that many,
 * more may be queued and the wake fd will not fire for them: call again.
 *
 * @param now_ms  Monotonic time (same clock as mls_ctl_publish).
 * @param cb      Called in partition offset order; may be NULL to drop.
 * @returns records handed to cb, or -1 after a fatal error (the idempotent
 *          producer lost its guarantee); see mls_ctl_status.
 */
int mls_ctl_poll(struct mls_ctl *ctl, int64_t now_ms, mls_ctl_record_cb *cb,
                 void *opaque);

/**
 * True once every partition has been read up to the end offset it had
 * when mls_ctl_new ran, starting far enough back to cover history_ms of
 * record time (or from the oldest record kept).
 */
bool mls_ctl_caught_up(const struct mls_ctl *ctl);

/**
 * The now_ms given to mls_ctl_publish for the newest record that Kafka has
 * acked, or -1 when none was. The send time, not the ack time: the lease
 * counts from when the record was written (rate-budget.md §3.10, Lemma 3),
 * and an ack arriving late must not stretch it.
 */
int64_t mls_ctl_last_ack_ms(const struct mls_ctl *ctl);

/**
 * Whether the control topic can be relied on at now_ms: false after a
 * fatal error, when a published record has waited more than
 * ack_timeout_ms for its ack or the latest delivery failed, when the
 * reader has had errors and no progress for reader_timeout_ms, or when an
 * own record acked more than reader_timeout_ms ago has not been read back.
 * An idle handle (nothing published) is healthy. Updates mls_ctl_status.
 * While this is false the worker must not call Marketo (§3.11).
 */
bool mls_ctl_healthy(struct mls_ctl *ctl, int64_t now_ms);

/**
 * A short reason for logs, as of the latest mls_ctl_healthy call:
 * "ok", "bootstrapping", or what is wrong. Borrowed; valid until the next
 * call on ctl.
 */
const char *mls_ctl_status(const struct mls_ctl *ctl);

/**
 * A descriptor that becomes readable when mls_ctl_poll has work (a
 * record, a delivery report, an error). Owned by ctl; do not close.
 */
int mls_ctl_wake_fd(const struct mls_ctl *ctl);

/** Copy the counters into *st. */
void mls_ctl_stats(const struct mls_ctl *ctl, struct mls_ctl_stats *st);

#endif
