/* SPDX-License-Identifier: Apache-2.0
 *
 * metrics.h - a small Prometheus registry (counters, gauges, histograms)
 * rendered in text exposition format 0.0.4; Debian 12 has no C client.
 *
 * Threads: one owner thread creates series (mls_metric_get) and updates
 * them; any other thread (the HTTP server) may render at the same time.
 * Values are atomics; the family and series lists are under a mutex.
 *
 * Naming follows docs ops.md section 3: prefix mlsync_, base units spelled
 * out (_seconds, _bytes, never _ms), counters end in _total. Labels carry
 * low-cardinality values only: topic, partition, instance (configured
 * Marketo instance id), endpoint, code, result. Never an email, a lead id
 * or a list id (lists come from events, so they are unbounded). As a last
 * guard a label value containing '@' is refused.
 *
 * Series the worker is meant to register (labels in braces; H = histogram
 * with the bucket set named after it):
 *
 *   Process / build
 *     mlsync_build_info{version,revision,librdkafka}    gauge, always 1
 *     process_start_time_seconds, process_resident_memory_bytes,
 *     process_cpu_seconds_total, process_open_fds       /proc, see
 *                                                 mls_metrics_enable_process
 *     mlsync_ready, mlsync_draining                      gauges 0/1
 *     mlsync_poll_loop_last_iteration_timestamp_seconds  gauge (/livez's input)
 *
 *   Kafka
 *     mlsync_records_consumed_total{topic}
 *     mlsync_consumer_lag_records{topic,partition}       gauge (librdkafka)
 *     mlsync_assigned_partitions                         gauge
 *     mlsync_rebalances_total{kind=assign|revoke|lost}
 *     mlsync_offset_commits_total{result=ok|error}
 *     mlsync_offset_commit_duration_seconds              H seconds
 *     mlsync_last_commit_timestamp_seconds               gauge
 *     mlsync_kafka_errors_total{code}                    librdkafka error name
 *     mlsync_pending_records                             gauge, not done yet
 *
 *   Sync outcome (one record = one audience event)
 *     mlsync_records_processed_total{result=applied|no_email|dead_lettered}
 *     mlsync_membership_changes_total{instance,action=add|remove,
 *                                     result=applied|skipped|failed|dlq}
 *     mlsync_dlq_records_total{stage=decode|route|marketo}
 *     mlsync_dlq_produce_errors_total
 *     mlsync_batch_size_records{action}                  H records
 *     mlsync_batch_duration_seconds{instance,action}     H seconds
 *     mlsync_batch_retries_total{instance}
 *     mlsync_end_to_end_latency_seconds                  H seconds, Kafka
 *                                                        record to Marketo ack
 *     mlsync_inflight_batches                            gauge
 *     mlsync_last_success_timestamp_seconds              gauge
 *
 *   Marketo API (endpoint is a fixed short name: token, list_add,
 *   list_remove, lead_lookup, ...; never a URL with ids in it)
 *     mlsync_api_requests_total{instance,endpoint,http_status}
 *     mlsync_api_errors_total{instance,endpoint,code}    6xx/7xx codes, or
 *                                                        "transport"
 *     mlsync_api_request_duration_seconds{instance,endpoint}   H seconds
 *     mlsync_api_retries_total{instance,endpoint,reason}
 *     mlsync_token_refreshes_total{instance,result=ok|error}
 *     mlsync_token_expiry_timestamp_seconds{instance}    gauge
 *     mlsync_circuit_open{instance}                      gauge 0/1
 *
 *   Rate budget
 *     mlsync_rate_budget_allocated_calls{instance}       gauge, per 20 s
 *     mlsync_rate_budget_used_calls{instance}            gauge, this window
 *     mlsync_rate_limit_waits_total{instance}
 *     mlsync_rate_limit_wait_seconds_total{instance}
 *     mlsync_daily_quota_used_calls{instance}            gauge, if polled
 *
 *   Replay
 *     mlsync_replay_target_records{partition}, mlsync_replay_remaining_records
 *     {partition}, mlsync_replay_progress_ratio, mlsync_replay_eta_seconds
 *
 * Bucket sets (upper bounds; +Inf is always added):
 *   seconds: MLS_METRIC_BUCKETS_SECONDS, 0.005 ... 60
 *   records: MLS_METRIC_BUCKETS_RECORDS, 1 ... 300 (Marketo's batch cap)
 */
#ifndef MLS_METRICS_H
#define MLS_METRICS_H

#include <stddef.h>

struct mls_metrics;
struct mls_metric;

enum mls_metric_type {
        MLS_COUNTER,
        MLS_GAUGE,
        MLS_HISTOGRAM, /* default bucket set: MLS_METRIC_BUCKETS_SECONDS */
};

/* Most bucket bounds one histogram may have (+Inf not counted). */
#define MLS_METRIC_MAX_BUCKETS 32

/* Latencies in seconds: Kafka commits, Marketo calls (timeout 30 s). */
#define MLS_METRIC_BUCKETS_SECONDS \
        { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }

/* Batch sizes in records; Marketo takes at most 300 leads per call. */
#define MLS_METRIC_BUCKETS_RECORDS \
        { 1, 5, 10, 25, 50, 100, 200, 300 }

/**
 * A new, empty registry.
 * @returns caller owns it (mls_metrics_destroy); NULL on OOM.
 */
struct mls_metrics *mls_metrics_new(void);

/**
 * Free the registry and every series in it; NULL is a no-op. No thread may
 * be rendering or updating (stop the HTTP server first).
 */
void mls_metrics_destroy(struct mls_metrics *m);

/**
 * Find or create the series name{labels}.
 *
 * @param type    Kind of the family; a histogram gets the seconds buckets.
 * @param name    Family name, [a-zA-Z_:][a-zA-Z0-9_:]*.
 * @param help    HELP text, kept from the first call for the family.
 * @param labels  "k=v,k2=v2" or NULL/"" for none. Order does not matter
 *                ("b=1,a=2" is the series "a=2,b=1"). A value may hold any
 *                byte but ',' and '@'; it is escaped when rendered.
 * @returns a pointer owned by the registry, valid until
 *          mls_metrics_destroy; the same pointer for the same series on
 *          every call. NULL on OOM, or when the name or labels are invalid
 *          or the family exists with another type: a caller bug, and update
 *          calls on NULL are no-ops so it never crashes the worker.
 * @thread owner
 */
struct mls_metric *mls_metric_get(struct mls_metrics *m,
                                  enum mls_metric_type type, const char *name,
                                  const char *help, const char *labels);

/**
 * mls_metric_get for a histogram with its own bucket bounds.
 *
 * @param bounds     Strictly increasing finite upper bounds, copied; the
 *                   first call for a family fixes them for all its series.
 * @param bound_cnt  1 .. MLS_METRIC_MAX_BUCKETS.
 * @returns as mls_metric_get.
 * @thread owner
 */
struct mls_metric *mls_metric_get_histogram(struct mls_metrics *m,
                                            const char *name,
                                            const char *help,
                                            const char *labels,
                                            const double *bounds,
                                            size_t bound_cnt);

/**
 * Add v to a counter or gauge. A counter ignores negative and NaN values
 * (counters never go down); a histogram ignores the call.
 * @thread owner (any single writer per series)
 */
void mls_metric_add(struct mls_metric *s, double v);

/**
 * Set a gauge to v. On a counter, set only ever raises the value, so an
 * external total (librdkafka statistics) can be mirrored. A histogram
 * ignores the call.
 * @thread owner (any single writer per series)
 */
void mls_metric_set(struct mls_metric *s, double v);

/**
 * Record one observation in a histogram; ignored on other types and for
 * NaN.
 * @thread owner (any single writer per series)
 */
void mls_metric_observe(struct mls_metric *s, double v);

/** Current value of a counter or gauge (a histogram: its count). */
double mls_metric_value(const struct mls_metric *s);

/**
 * Also export the standard process_* families (start time, resident
 * memory, CPU seconds, open fds), read from /proc at each render.
 * @returns 0, or -1 on OOM.
 * @thread owner
 */
int mls_metrics_enable_process(struct mls_metrics *m);

/**
 * Render every family in text format 0.0.4: "# HELP" and "# TYPE" once per
 * family, families sorted by name, series sorted by labels, '\n' line
 * endings. An empty registry renders as "".
 *
 * @param lenp  If not NULL, set to the length (without the NUL).
 * @returns a NUL-terminated string the caller owns (free); NULL on OOM.
 * @thread any, concurrently with updates and mls_metric_get.
 */
char *mls_metrics_render(struct mls_metrics *m, size_t *lenp);

#endif
