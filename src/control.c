/* SPDX-License-Identifier: Apache-2.0
 *
 * control.c - control-topic plumbing for the shared budget: an idempotent
 * producer writing each instance to its own fixed partition, and an
 * assign()-only reader that finds enough history without offsets_for_times,
 * tails every partition and checks that our own records come back.
 */
#include "mlsync/control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "mlsync/log.h"
#include "mlsync/util.h"

#define CTL_COMPONENT "control"
/* Header carrying the publishing handle's tag, so read-backs are ours. */
#define CTL_HDR_SRC "mlsync-ctl-src"

#define CTL_DEF_HISTORY_MS 30000
#define CTL_DEF_TAIL_RECORDS 1024
#define CTL_DEF_ACK_TIMEOUT_MS 5000
#define CTL_DEF_READER_TIMEOUT_MS 10000
#define CTL_DEF_START_TIMEOUT_MS 10000
#define CTL_DEF_CLOSE_TIMEOUT_MS 2000

/* librdkafka 2.0.2 properties that only a consumer or only a producer
 * understands (CONFIGURATION.md, column C/P). kafka.properties is shared
 * with the data-topic clients, so each of our two clients skips the other
 * kind's keys instead of warning about them at every start. */
static const char *const consumer_only[] = {
        "auto.commit.enable", "auto.commit.interval.ms", "auto.offset.reset",
        "check.crcs", "consume.callback.max.messages",
        "coordinator.query.interval.ms", "enable.auto.commit",
        "enable.auto.offset.store", "enable.partition.eof",
        "fetch.error.backoff.ms", "fetch.max.bytes", "fetch.message.max.bytes",
        "fetch.min.bytes", "fetch.wait.max.ms", "group.id",
        "group.instance.id", "group.protocol.type", "heartbeat.interval.ms",
        "isolation.level", "max.partition.fetch.bytes", "max.poll.interval.ms",
        "offset.store.method", "offset.store.path",
        "offset.store.sync.interval.ms", "partition.assignment.strategy",
        "queued.max.messages.kbytes", "queued.min.messages",
        "session.timeout.ms",
};

static const char *const producer_only[] = {
        "acks", "batch.num.messages", "batch.size", "compression.codec",
        "compression.level", "compression.type", "delivery.report.only.error",
        "delivery.timeout.ms", "enable.gapless.guarantee", "enable.idempotence",
        "linger.ms", "message.send.max.retries", "message.timeout.ms",
        "partitioner", "produce.offset.report",
        "queue.buffering.backpressure.threshold", "queue.buffering.max.kbytes",
        "queue.buffering.max.messages", "queue.buffering.max.ms",
        "queuing.strategy", "request.required.acks", "request.timeout.ms",
        "retries", "retry.backoff.ms", "sticky.partitioning.linger.ms",
        "transaction.timeout.ms", "transactional.id",
};

struct part {
        int64_t low;      /* log start offset at start */
        int64_t hw0;      /* end offset at start: caught up = read to here */
        int64_t start;    /* where the reader was last told to begin */
        int64_t reach;    /* records behind hw0 the current start asked for */
        int64_t next;     /* last offset handed out + 1; -1 before the first */
        bool settled;     /* the history reach is decided */
        bool caught;      /* read up to hw0 */
        int64_t ack_off;  /* highest acked own offset; -1 none */
        int64_t unread_ms; /* when an acked own record not yet read back was
                            * acked; -1 none */
};

/* One published record waiting for its delivery report. */
struct pend {
        int64_t sent_ms;
        bool done;
};

struct mls_ctl {
        rd_kafka_t *prod;
        rd_kafka_t *rd;
        rd_kafka_queue_t *pq; /* producer main queue: delivery reports */
        rd_kafka_queue_t *rq; /* reader consumer queue */
        char *topic;
        char tag[192]; /* identifies this handle's records */
        struct mls_ctl_opts o;
        int wake[2];

        int32_t part_cnt;
        struct part *parts;
        int32_t caught_cnt;

        /* Ring of records in flight, by sequence number; the head is the
         * oldest not yet reported. */
        struct pend *ring;
        size_t ring_cap;
        size_t ring_head;
        size_t ring_cnt;
        uint64_t head_seq;
        uint64_t next_seq;

        int64_t now_ms; /* of the current mls_ctl_poll, for callbacks */
        int64_t last_ack_ms;
        bool dr_failed; /* the latest delivery report was an error */
        char dr_err[128];
        int64_t rerr_first_ms; /* reader error streak; -1 none */
        int64_t rerr_last_ms;
        char rerr[128];
        bool fatal;
        char fatal_msg[256];
        char status[384];
        struct mls_ctl_stats st;
};

/* ---- configuration ---- */

static bool in_list(const char *key, const char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (!strcmp(key, list[i]))
                        return true;
        }
        return false;
}

static int set1(rd_kafka_conf_t *conf, const char *key, const char *val,
                char *errstr, size_t errstr_size)
{
        char detail[256];

        if (rd_kafka_conf_set(conf, key, val, detail, sizeof(detail)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        snprintf(errstr, errstr_size, "kafka property %s: %s", key, detail);
        return -1;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
        mls_log(mls_log_level_from_syslog(level), "librdkafka", "client log",
                MLS_KV_STR("client", rd_kafka_name(rk)),
                MLS_KV_STR("facility", fac), MLS_KV_STR("detail", buf));
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque);
static void on_prod_error(rd_kafka_t *rk, int err, const char *reason,
                          void *opaque);
static void on_reader_error(rd_kafka_t *rk, int err, const char *reason,
                            void *opaque);

/* Our defaults first, then the user's properties (so most can be tuned),
 * then what the protocol depends on, which cannot be overridden. */
static rd_kafka_conf_t *make_conf(struct mls_ctl *ctl,
                                  const struct mls_cfg *cfg, bool reader,
                                  char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char group[256];
        int bad = 0;

        rd_kafka_conf_set_log_cb(conf, on_log);
        rd_kafka_conf_set_opaque(conf, ctl);
        bad |= set1(conf, "bootstrap.servers", cfg->kafka.brokers, errstr,
                    errstr_size);
        bad |= set1(conf, "client.id", reader ? "mlsync-ctl-reader" :
                    "mlsync-ctl", errstr, errstr_size);
        if (!reader) {
                bad |= set1(conf, "linger.ms", "5", errstr, errstr_size);
                /* A record stuck this long is stale for the protocol; it
                 * is better dropped (and reported) than piled up. */
                bad |= set1(conf, "message.timeout.ms", "30000", errstr,
                            errstr_size);
                /* A mistyped topic must fail, not appear with the
                 * cluster's default partition count. */
                bad |= set1(conf, "allow.auto.create.topics", "false", errstr,
                            errstr_size);
        }
        for (size_t i = 0; !bad && i < cfg->kafka.prop_cnt; i++) {
                const char *k = cfg->kafka.props[i].key;

                if (reader && in_list(k, producer_only,
                                      MLS_ARRAY_LEN(producer_only)))
                        continue;
                if (!reader && in_list(k, consumer_only,
                                       MLS_ARRAY_LEN(consumer_only)))
                        continue;
                bad |= set1(conf, k, cfg->kafka.props[i].value, errstr,
                            errstr_size);
        }
        if (reader) {
                snprintf(group, sizeof(group), "mlsync-ctl-%s", ctl->tag);
                bad |= set1(conf, "group.id", group, errstr, errstr_size);
                bad |= set1(conf, "enable.auto.commit", "false", errstr,
                            errstr_size);
                bad |= set1(conf, "enable.auto.offset.store", "false", errstr,
                            errstr_size);
                /* End-of-partition events tell us we caught up even when
                 * the history range was trimmed away under us. */
                bad |= set1(conf, "enable.partition.eof", "true", errstr,
                            errstr_size);
                /* A start before the log start must land on the oldest
                 * record kept: more history is harmless, less is not. */
                bad |= set1(conf, "auto.offset.reset", "earliest", errstr,
                            errstr_size);
                /* Without it, client-wide errors (brokers down) would only
                 * be logged by librdkafka, never seen by the health check. */
                rd_kafka_conf_set_error_cb(conf, on_reader_error);
        } else {
                /* The protocol needs every worker's records in the order
                 * it sent them (rate-budget.md §3.10, A2). */
                bad |= set1(conf, "enable.idempotence", "true", errstr,
                            errstr_size);
                bad |= set1(conf, "acks", "all", errstr, errstr_size);
                rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
                rd_kafka_conf_set_error_cb(conf, on_prod_error);
        }
        if (bad) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        return conf;
}

/* ---- partitioning ---- */

/* The partition is chosen here and given explicitly rather than left to
 * the producer's partitioner: every worker must put an instance's records
 * in the same partition or the replicas see different orders, and the
 * partitioner is a per-client setting (kafka.properties may change it,
 * librdkafka and Java clients default to different hashes). murmur2 is
 * what the design names and what Java producers use. */
int32_t mls_ctl_partition_of(const char *instance, int32_t partition_cnt)
{
        if (partition_cnt < 1 || !instance)
                return -1;
        return rd_kafka_msg_partitioner_murmur2(NULL, instance,
                                                strlen(instance),
                                                partition_cnt, NULL, NULL);
}

int32_t mls_ctl_partition_cnt(const struct mls_ctl *ctl)
{
        return ctl->part_cnt;
}

/* ---- start-up ---- */

/* LIMIT: start-up blocks up to start_timeout_ms; 2.0.2 has no async metadata or ListOffsets call. */
static int read_partition_cnt(struct mls_ctl *ctl, int64_t deadline,
                              char *errstr, size_t errstr_size)
{
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(ctl->prod, ctl->topic,
                                                   NULL);
        const char *why = "no reply";

        if (!rkt) {
                snprintf(errstr, errstr_size, "control topic handle: %s",
                         rd_kafka_err2str(rd_kafka_last_error()));
                return -1;
        }
        for (;;) {
                const struct rd_kafka_metadata *md = NULL;
                int64_t left = deadline - mls_now_ms();
                rd_kafka_resp_err_t err;

                if (left <= 0)
                        break;
                /* LIMIT: the partition count is read once; adding partitions needs the migration of rate-budget.md §3.2. */
                err = rd_kafka_metadata(ctl->prod, 0, rkt, &md, (int)left);
                if (!err && md->topic_cnt == 1 && !md->topics[0].err &&
                    md->topics[0].partition_cnt > 0) {
                        ctl->part_cnt = md->topics[0].partition_cnt;
                        rd_kafka_metadata_destroy(md);
                        rd_kafka_topic_destroy(rkt);
                        return 0;
                }
                if (!err && md->topic_cnt == 1 && md->topics[0].err)
                        err = md->topics[0].err;
                why = rd_kafka_err2str(err);
                if (md)
                        rd_kafka_metadata_destroy(md);
                /* A topic just created may not have reached every broker
                 * yet; ask again until the deadline. */
                mls_sleep_ms(100);
        }
        rd_kafka_topic_destroy(rkt);
        snprintf(errstr, errstr_size, "control topic %s: no metadata: %s",
                 ctl->topic, why);
        return -1;
}

static int read_watermarks(struct mls_ctl *ctl, int64_t deadline,
                           char *errstr, size_t errstr_size)
{
        for (int32_t p = 0; p < ctl->part_cnt; p++) {
                struct part *pt = &ctl->parts[p];
                rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
                int64_t left;

                for (;;) {
                        left = deadline - mls_now_ms();
                        if (left <= 0)
                                break;
                        err = rd_kafka_query_watermark_offsets(
                                ctl->rd, ctl->topic, p, &pt->low, &pt->hw0,
                                (int)left);
                        if (!err)
                                break;
                        mls_sleep_ms(100);
                }
                if (err) {
                        snprintf(errstr, errstr_size,
                                 "control topic %s [%d]: no watermarks: %s",
                                 ctl->topic, (int)p, rd_kafka_err2str(err));
                        return -1;
                }
        }
        return 0;
}

/* Start each partition reach records behind its end. Why a record count
 * and not a time: the mock (and 2.0.2 generally, for us) cannot map a
 * timestamp to an offset, see kafka.md §5.1; the first record read tells
 * whether the count reached back far enough (take_record). */
static int assign_all(struct mls_ctl *ctl, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *tpl;
        rd_kafka_resp_err_t err;

        tpl = rd_kafka_topic_partition_list_new(ctl->part_cnt);
        for (int32_t p = 0; p < ctl->part_cnt; p++) {
                struct part *pt = &ctl->parts[p];
                int64_t from = pt->hw0 - ctl->o.tail_records;

                pt->reach = ctl->o.tail_records;
                pt->start = from > pt->low ? from : pt->low;
                pt->next = -1;
                pt->ack_off = -1;
                pt->unread_ms = -1;
                if (pt->hw0 <= pt->low) {
                        pt->settled = true;
                        pt->caught = true;
                        ctl->caught_cnt++;
                }
                rd_kafka_topic_partition_list_add(tpl, ctl->topic, p)->offset =
                        pt->start;
        }
        err = rd_kafka_assign(ctl->rd, tpl);
        rd_kafka_topic_partition_list_destroy(tpl);
        if (err) {
                snprintf(errstr, errstr_size, "assign %s: %s", ctl->topic,
                         rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

static void make_tag(struct mls_ctl *ctl, const char *worker_id)
{
        snprintf(ctl->tag, sizeof(ctl->tag), "%.120s-%ld-%08" PRIx32
                 "%08" PRIx32, worker_id && *worker_id ? worker_id : "worker",
                 (long)getpid(), mls_rand_below(UINT32_MAX),
                 mls_rand_below(UINT32_MAX));
}

static void fill_opts(struct mls_ctl_opts *o, const struct mls_ctl_opts *in)
{
        if (in)
                *o = *in;
        if (o->history_ms <= 0)
                o->history_ms = CTL_DEF_HISTORY_MS;
        if (o->tail_records <= 0)
                o->tail_records = CTL_DEF_TAIL_RECORDS;
        if (o->ack_timeout_ms <= 0)
                o->ack_timeout_ms = CTL_DEF_ACK_TIMEOUT_MS;
        if (o->reader_timeout_ms <= 0)
                o->reader_timeout_ms = CTL_DEF_READER_TIMEOUT_MS;
        if (o->start_timeout_ms <= 0)
                o->start_timeout_ms = CTL_DEF_START_TIMEOUT_MS;
        if (o->close_timeout_ms <= 0)
                o->close_timeout_ms = CTL_DEF_CLOSE_TIMEOUT_MS;
}

static int make_clients(struct mls_ctl *ctl, const struct mls_cfg *cfg,
                        char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        char detail[512];

        conf = make_conf(ctl, cfg, false, errstr, errstr_size);
        if (!conf)
                return -1;
        ctl->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, detail,
                                 sizeof(detail));
        if (!ctl->prod) {
                rd_kafka_conf_destroy(conf);
                snprintf(errstr, errstr_size, "control producer: %s", detail);
                return -1;
        }
        conf = make_conf(ctl, cfg, true, errstr, errstr_size);
        if (!conf)
                return -1;
        ctl->rd = rd_kafka_new(RD_KAFKA_CONSUMER, conf, detail,
                               sizeof(detail));
        if (!ctl->rd) {
                rd_kafka_conf_destroy(conf);
                snprintf(errstr, errstr_size, "control reader: %s", detail);
                return -1;
        }
        /* Both queues wake the same pipe, so the loop watches one fd. */
        rd_kafka_poll_set_consumer(ctl->rd);
        ctl->rq = rd_kafka_queue_get_consumer(ctl->rd);
        ctl->pq = rd_kafka_queue_get_main(ctl->prod);
        if (!ctl->rq || !ctl->pq) {
                snprintf(errstr, errstr_size, "control: no client queues");
                return -1;
        }
        rd_kafka_queue_io_event_enable(ctl->rq, ctl->wake[1], "r", 1);
        rd_kafka_queue_io_event_enable(ctl->pq, ctl->wake[1], "p", 1);
        return 0;
}

static int make_pipe(struct mls_ctl *ctl, char *errstr, size_t errstr_size)
{
        if (pipe(ctl->wake) < 0) {
                ctl->wake[0] = ctl->wake[1] = -1;
                snprintf(errstr, errstr_size, "control: pipe: %s",
                         strerror(errno));
                return -1;
        }
        for (int i = 0; i < 2; i++) {
                int fl = fcntl(ctl->wake[i], F_GETFL);

                /* A full pipe must never block librdkafka's threads, and
                 * draining must never block ours. */
                if (fl < 0 ||
                    fcntl(ctl->wake[i], F_SETFL, fl | O_NONBLOCK) < 0 ||
                    fcntl(ctl->wake[i], F_SETFD, FD_CLOEXEC) < 0) {
                        snprintf(errstr, errstr_size, "control: fcntl: %s",
                                 strerror(errno));
                        return -1;
                }
        }
        return 0;
}

struct mls_ctl *mls_ctl_new_opts(const struct mls_cfg *cfg,
                                 const char *worker_id,
                                 const struct mls_ctl_opts *opts,
                                 char *errstr, size_t errstr_size)
{
        struct mls_ctl *ctl = calloc(1, sizeof(*ctl));
        const char *topic;
        int64_t deadline;

        if (!ctl) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        ctl->wake[0] = ctl->wake[1] = -1;
        ctl->last_ack_ms = -1;
        ctl->rerr_first_ms = -1;
        fill_opts(&ctl->o, opts);
        make_tag(ctl, worker_id);
        snprintf(ctl->status, sizeof(ctl->status), "bootstrapping");
        topic = cfg->kafka.control_topic && *cfg->kafka.control_topic ?
                cfg->kafka.control_topic : MLS_CTL_DEFAULT_TOPIC;
        ctl->topic = strdup(topic);
        ctl->ring_cap = 64;
        ctl->ring = calloc(ctl->ring_cap, sizeof(*ctl->ring));
        if (!ctl->topic || !ctl->ring) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (!cfg->kafka.brokers) {
                snprintf(errstr, errstr_size, "kafka.brokers is not set");
                goto fail;
        }
        if (make_pipe(ctl, errstr, errstr_size) < 0 ||
            make_clients(ctl, cfg, errstr, errstr_size) < 0)
                goto fail;

        deadline = mls_now_ms() + ctl->o.start_timeout_ms;
        if (read_partition_cnt(ctl, deadline, errstr, errstr_size) < 0)
                goto fail;
        ctl->parts = calloc((size_t)ctl->part_cnt, sizeof(*ctl->parts));
        if (!ctl->parts) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (read_watermarks(ctl, deadline, errstr, errstr_size) < 0 ||
            assign_all(ctl, errstr, errstr_size) < 0)
                goto fail;
        mls_log(MLS_LOG_INFO, CTL_COMPONENT, "control topic assigned",
                MLS_KV_STR("topic", ctl->topic),
                MLS_KV_INT("partitions", ctl->part_cnt),
                MLS_KV_INT("history_ms", ctl->o.history_ms));
        return ctl;
fail:
        mls_ctl_destroy(ctl);
        return NULL;
}

struct mls_ctl *mls_ctl_new(const struct mls_cfg *cfg, const char *worker_id,
                            char *errstr, size_t errstr_size)
{
        return mls_ctl_new_opts(cfg, worker_id, NULL, errstr, errstr_size);
}

/* ---- producing ---- */

static struct pend *pend_at(struct mls_ctl *ctl, uint64_t seq)
{
        uint64_t idx = seq - ctl->head_seq;

        if (seq < ctl->head_seq || idx >= ctl->ring_cnt)
                return NULL;
        return &ctl->ring[(ctl->ring_head + idx) % ctl->ring_cap];
}

static int ring_push(struct mls_ctl *ctl, int64_t sent_ms, uint64_t *seqp)
{
        struct pend *p;

        if (ctl->ring_cnt == ctl->ring_cap) {
                size_t ncap = ctl->ring_cap * 2;
                struct pend *n = malloc(ncap * sizeof(*n));

                if (!n)
                        return -1;
                for (size_t i = 0; i < ctl->ring_cnt; i++)
                        n[i] = ctl->ring[(ctl->ring_head + i) % ctl->ring_cap];
                free(ctl->ring);
                ctl->ring = n;
                ctl->ring_cap = ncap;
                ctl->ring_head = 0;
        }
        if (ctl->ring_cnt == 0)
                ctl->head_seq = ctl->next_seq;
        p = &ctl->ring[(ctl->ring_head + ctl->ring_cnt) % ctl->ring_cap];
        p->sent_ms = sent_ms;
        p->done = false;
        ctl->ring_cnt++;
        *seqp = ctl->next_seq++;
        return 0;
}

/* Undo the newest push (the produce call refused the record). */
static void ring_unpush(struct mls_ctl *ctl)
{
        ctl->ring_cnt--;
        ctl->next_seq--;
}

static void ring_pop_done(struct mls_ctl *ctl)
{
        while (ctl->ring_cnt > 0 && ctl->ring[ctl->ring_head].done) {
                ctl->ring_head = (ctl->ring_head + 1) % ctl->ring_cap;
                ctl->ring_cnt--;
                ctl->head_seq++;
        }
}

enum mls_err mls_ctl_publish(struct mls_ctl *ctl, const char *instance,
                             const void *val, size_t len, int64_t now_ms)
{
        size_t klen = instance ? strlen(instance) : 0;
        rd_kafka_resp_err_t err;
        uint64_t seq;

        if (ctl->fatal)
                return MLS_ERR_FATAL;
        if (klen == 0 || klen > MLS_CTL_KEY_MAX || (!val && len > 0))
                return MLS_ERR_REJECTED;
        if (ring_push(ctl, now_ms, &seq) < 0)
                return MLS_ERR_NOMEM;
        /* The sequence number rides as the message opaque; on a 32-bit
         * platform it wraps, which pend_at's range check tolerates only
         * while fewer than 2^32 records are in flight. */
        err = rd_kafka_producev(
                ctl->prod, RD_KAFKA_V_TOPIC(ctl->topic),
                RD_KAFKA_V_PARTITION(mls_ctl_partition_of(instance,
                                                          ctl->part_cnt)),
                RD_KAFKA_V_KEY(instance, klen),
                RD_KAFKA_V_VALUE((void *)val, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_HEADER(CTL_HDR_SRC, ctl->tag, -1),
                RD_KAFKA_V_OPAQUE((void *)(uintptr_t)seq), RD_KAFKA_V_END);
        if (err) {
                ring_unpush(ctl);
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        return MLS_ERR_TRANSIENT;
                if (err == RD_KAFKA_RESP_ERR__FATAL)
                        return MLS_ERR_FATAL;
                mls_log(MLS_LOG_WARN, CTL_COMPONENT, "publish refused",
                        MLS_KV_STR("err", rd_kafka_err2name(err)));
                return MLS_ERR_TRANSIENT;
        }
        ctl->st.published++;
        return MLS_OK;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque)
{
        struct mls_ctl *ctl = opaque;
        struct pend *p = pend_at(ctl, (uint64_t)(uintptr_t)rkm->_private);
        struct part *pt;

        if (!p)
                return;
        p->done = true;
        if (rkm->err) {
                ctl->st.failed++;
                ctl->dr_failed = true;
                snprintf(ctl->dr_err, sizeof(ctl->dr_err), "%s",
                         rd_kafka_err2str(rkm->err));
                ring_pop_done(ctl);
                return;
        }
        ctl->st.acked++;
        ctl->dr_failed = false;
        if (p->sent_ms > ctl->last_ack_ms)
                ctl->last_ack_ms = p->sent_ms;
        if (rkm->partition >= 0 && rkm->partition < ctl->part_cnt) {
                pt = &ctl->parts[rkm->partition];
                if (rkm->offset > pt->ack_off)
                        pt->ack_off = rkm->offset;
                /* The reader may already be past it: acks and records
                 * race through different queues. */
                if (pt->next <= rkm->offset && pt->unread_ms < 0)
                        pt->unread_ms = ctl->now_ms;
        }
        ring_pop_done(ctl);
}

static void on_prod_error(rd_kafka_t *rk, int err, const char *reason,
                          void *opaque)
{
        struct mls_ctl *ctl = opaque;
        char detail[200];

        if (err != RD_KAFKA_RESP_ERR__FATAL) {
                /* Broker outages show up as unacked records; the health
                 * check reports those, so this stays at debug. */
                mls_log(MLS_LOG_DEBUG, CTL_COMPONENT, "producer error",
                        MLS_KV_STR("err", rd_kafka_err2name(err)),
                        MLS_KV_STR("detail", reason));
                return;
        }
        rd_kafka_fatal_error(rk, detail, sizeof(detail));
        ctl->fatal = true;
        snprintf(ctl->fatal_msg, sizeof(ctl->fatal_msg), "%s", detail);
        mls_log(MLS_LOG_ERROR, CTL_COMPONENT, "control producer failed",
                MLS_KV_STR("detail", detail));
}

/* ---- reading ---- */

static void mark_caught(struct mls_ctl *ctl, struct part *pt)
{
        pt->settled = true;
        if (pt->caught)
                return;
        pt->caught = true;
        ctl->caught_cnt++;
        if (ctl->caught_cnt == ctl->part_cnt)
                mls_log(MLS_LOG_INFO, CTL_COMPONENT, "control topic caught up",
                        MLS_KV_STR("topic", ctl->topic),
                        MLS_KV_INT("records", ctl->st.consumed),
                        MLS_KV_INT("rewinds", ctl->st.rewinds));
}

/* LIMIT: record time is compared with the local wall clock; a worker clock off by s shifts the reach-back by s. */
static bool too_young(const struct mls_ctl *ctl, const rd_kafka_message_t *rkm)
{
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(rkm, &tt);

        if (tt == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
                return false;
        return ts > mls_wall_ms() - ctl->o.history_ms;
}

/* Step p twice as far back. The seek bumps librdkafka's version barrier
 * for the partition at once, so records fetched from the old position
 * are discarded before they reach consumer_poll. */
static void rewind_part(struct mls_ctl *ctl, int32_t p)
{
        struct part *pt = &ctl->parts[p];
        rd_kafka_topic_partition_list_t *tpl;
        rd_kafka_error_t *error;
        int64_t from;

        pt->reach = pt->reach > INT64_MAX / 2 ? INT64_MAX : pt->reach * 2;
        from = pt->hw0 - pt->reach;
        pt->start = from > pt->low ? from : pt->low;
        tpl = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tpl, ctl->topic, p)->offset =
                pt->start;
        error = rd_kafka_seek_partitions(ctl->rd, tpl, 0);
        rd_kafka_topic_partition_list_destroy(tpl);
        ctl->st.rewinds++;
        if (error) {
                /* Going on from here loses history, not order: say so and
                 * settle rather than stall the bootstrap. */
                mls_log(MLS_LOG_WARN, CTL_COMPONENT, "history seek failed",
                        MLS_KV_INT("partition", p),
                        MLS_KV_STR("detail", rd_kafka_error_string(error)));
                rd_kafka_error_destroy(error);
                pt->settled = true;
        }
}

static bool is_own(const struct mls_ctl *ctl, const rd_kafka_message_t *rkm)
{
        rd_kafka_headers_t *hdrs = NULL;
        const void *v = NULL;
        size_t n = 0;

        if (rd_kafka_message_headers(rkm, &hdrs) || !hdrs)
                return false;
        if (rd_kafka_header_get_last(hdrs, CTL_HDR_SRC, &v, &n) || !v)
                return false;
        return n == strlen(ctl->tag) && !memcmp(v, ctl->tag, n);
}

/* @returns true when the record was handed to cb. */
static bool take_record(struct mls_ctl *ctl, const rd_kafka_message_t *rkm,
                        mls_ctl_record_cb *cb, void *opaque)
{
        struct part *pt = &ctl->parts[rkm->partition];
        struct mls_ctl_record rec = { 0 };
        rd_kafka_timestamp_type_t tt;
        char key[MLS_CTL_KEY_MAX + 1];

        if (!pt->settled) {
                /* The first record after a (re)start shows whether the
                 * start reached history_ms back. */
                if (pt->start > pt->low && too_young(ctl, rkm)) {
                        rewind_part(ctl, rkm->partition);
                        return false;
                }
                pt->settled = true;
        }
        /* Never hand out an offset twice, whatever the fetcher does. */
        if (pt->next >= 0 && rkm->offset < pt->next)
                return false;
        pt->next = rkm->offset + 1;
        if (pt->ack_off >= 0 && rkm->offset >= pt->ack_off)
                pt->unread_ms = -1;
        if (pt->next >= pt->hw0)
                mark_caught(ctl, pt);

        if (!rkm->key || rkm->key_len == 0 || rkm->key_len > MLS_CTL_KEY_MAX ||
            memchr(rkm->key, '\0', rkm->key_len)) {
                ctl->st.dropped++;
                return false;
        }
        memcpy(key, rkm->key, rkm->key_len);
        key[rkm->key_len] = '\0';
        rec.instance = key;
        rec.val = rkm->payload;
        rec.len = rkm->len;
        rec.partition = rkm->partition;
        rec.offset = rkm->offset;
        rec.ts_ms = rd_kafka_message_timestamp(rkm, &tt);
        /* LIMIT: the mock cluster only stamps CreateTime; LogAppendTime handling is untested against it. */
        rec.ts_type = tt == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ?
                MLS_CTL_TS_LOG_APPEND : tt == RD_KAFKA_TIMESTAMP_CREATE_TIME ?
                MLS_CTL_TS_CREATE : MLS_CTL_TS_NONE;
        rec.own = is_own(ctl, rkm);
        rec.history = rkm->offset < pt->hw0;
        ctl->st.consumed++;
        if (rec.own)
                ctl->st.own_read++;
        if (cb)
                cb(opaque, &rec);
        return true;
}

/* Errors start or extend a streak; a record or an end-of-partition ends
 * it, and so does a quiet spell of twice the reader timeout (librdkafka
 * reports no "recovered" event, and an idle topic brings no records). */
static void reader_error(struct mls_ctl *ctl, rd_kafka_resp_err_t err,
                         const char *reason)
{
        bool quiet = ctl->rerr_first_ms >= 0 &&
                     ctl->now_ms - ctl->rerr_last_ms >=
                             2 * ctl->o.reader_timeout_ms;

        ctl->st.reader_errors++;
        if (ctl->rerr_first_ms < 0 || quiet) {
                ctl->rerr_first_ms = ctl->now_ms;
                mls_log(MLS_LOG_WARN, CTL_COMPONENT, "control reader error",
                        MLS_KV_STR("err", rd_kafka_err2name(err)),
                        MLS_KV_STR("detail", reason));
        }
        ctl->rerr_last_ms = ctl->now_ms;
        snprintf(ctl->rerr, sizeof(ctl->rerr), "%s", reason);
}

static void on_reader_error(rd_kafka_t *rk, int err, const char *reason,
                            void *opaque)
{
        reader_error(opaque, (rd_kafka_resp_err_t)err, reason);
}

/* @returns 1 when a record went to cb, 0 otherwise. */
static int reader_event(struct mls_ctl *ctl, const rd_kafka_message_t *rkm,
                        mls_ctl_record_cb *cb, void *opaque)
{
        bool ours = rkm->rkt && rkm->partition >= 0 &&
                    rkm->partition < ctl->part_cnt &&
                    !strcmp(rd_kafka_topic_name(rkm->rkt), ctl->topic);

        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                ctl->rerr_first_ms = -1;
                if (ours && rkm->offset >= ctl->parts[rkm->partition].hw0)
                        mark_caught(ctl, &ctl->parts[rkm->partition]);
                return 0;
        }
        if (rkm->err) {
                reader_error(ctl, rkm->err, rd_kafka_message_errstr(rkm));
                return 0;
        }
        if (!ours)
                return 0;
        ctl->rerr_first_ms = -1;
        return take_record(ctl, rkm, cb, opaque) ? 1 : 0;
}

static void drain_wake(struct mls_ctl *ctl)
{
        char buf[64];

        while (read(ctl->wake[0], buf, sizeof(buf)) > 0)
                ;
}

int mls_ctl_poll(struct mls_ctl *ctl, int64_t now_ms, mls_ctl_record_cb *cb,
                 void *opaque)
{
        int handled = 0;

        ctl->now_ms = now_ms;
        /* Drain first: a wake-up written while we serve stays for the
         * next loop turn instead of being lost. */
        drain_wake(ctl);
        rd_kafka_poll(ctl->prod, 0);
        while (handled < MLS_CTL_POLL_MAX) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(ctl->rd, 0);

                if (!rkm)
                        break;
                handled += reader_event(ctl, rkm, cb, opaque);
                rd_kafka_message_destroy(rkm);
        }
        if (ctl->fatal)
                return -1;
        return handled;
}

/* ---- state ---- */

bool mls_ctl_caught_up(const struct mls_ctl *ctl)
{
        return ctl->caught_cnt == ctl->part_cnt;
}

int64_t mls_ctl_last_ack_ms(const struct mls_ctl *ctl)
{
        return ctl->last_ack_ms;
}

/* The first problem found, in the order an operator should fix them;
 * NULL when there is none. Writes the reason into ctl->status. */
static const char *find_problem(struct mls_ctl *ctl, int64_t now_ms)
{
        char *s = ctl->status;
        size_t n = sizeof(ctl->status);

        if (ctl->fatal) {
                snprintf(s, n, "fatal producer error: %s", ctl->fatal_msg);
                return s;
        }
        if (ctl->ring_cnt > 0 && now_ms - ctl->ring[ctl->ring_head].sent_ms >
                                         ctl->o.ack_timeout_ms) {
                snprintf(s, n,
                         "no ack for %" PRId64 " ms (%zu records pending)",
                         now_ms - ctl->ring[ctl->ring_head].sent_ms,
                         ctl->ring_cnt);
                return s;
        }
        if (ctl->dr_failed) {
                snprintf(s, n, "delivery failed: %s", ctl->dr_err);
                return s;
        }
        if (ctl->rerr_first_ms >= 0 &&
            now_ms - ctl->rerr_first_ms >= ctl->o.reader_timeout_ms &&
            now_ms - ctl->rerr_last_ms < 2 * ctl->o.reader_timeout_ms) {
                snprintf(s, n, "reader failing for %" PRId64 " ms: %s",
                         now_ms - ctl->rerr_first_ms, ctl->rerr);
                return s;
        }
        for (int32_t p = 0; p < ctl->part_cnt; p++) {
                const struct part *pt = &ctl->parts[p];

                if (pt->unread_ms >= 0 &&
                    now_ms - pt->unread_ms > ctl->o.reader_timeout_ms) {
                        snprintf(s, n, "own record at partition %d offset %"
                                 PRId64 " not read back for %" PRId64 " ms",
                                 (int)p, pt->ack_off, now_ms - pt->unread_ms);
                        return s;
                }
        }
        return NULL;
}

bool mls_ctl_healthy(struct mls_ctl *ctl, int64_t now_ms)
{
        if (find_problem(ctl, now_ms))
                return false;
        if (!mls_ctl_caught_up(ctl))
                snprintf(ctl->status, sizeof(ctl->status),
                         "bootstrapping (%d of %d partitions caught up)",
                         (int)ctl->caught_cnt, (int)ctl->part_cnt);
        else
                snprintf(ctl->status, sizeof(ctl->status), "ok");
        return true;
}

const char *mls_ctl_status(const struct mls_ctl *ctl)
{
        return ctl->status;
}

int mls_ctl_wake_fd(const struct mls_ctl *ctl)
{
        return ctl->wake[0];
}

void mls_ctl_stats(const struct mls_ctl *ctl, struct mls_ctl_stats *st)
{
        *st = ctl->st;
}

/* ---- teardown ---- */

static void close_producer(struct mls_ctl *ctl)
{
        if (rd_kafka_flush(ctl->prod, ctl->o.close_timeout_ms)) {
                mls_log(MLS_LOG_WARN, CTL_COMPONENT,
                        "control records dropped at close",
                        MLS_KV_INT("records", rd_kafka_outq_len(ctl->prod)));
                rd_kafka_purge(ctl->prod, RD_KAFKA_PURGE_F_QUEUE |
                                                  RD_KAFKA_PURGE_F_INFLIGHT);
                /* Serve the purge reports so nothing refers to us after. */
                rd_kafka_flush(ctl->prod, 500);
        }
}

void mls_ctl_destroy(struct mls_ctl *ctl)
{
        if (!ctl)
                return;
        if (ctl->pq) {
                rd_kafka_queue_io_event_enable(ctl->pq, -1, NULL, 0);
                rd_kafka_queue_destroy(ctl->pq);
        }
        if (ctl->rq) {
                rd_kafka_queue_io_event_enable(ctl->rq, -1, NULL, 0);
                rd_kafka_queue_destroy(ctl->rq);
        }
        if (ctl->prod) {
                close_producer(ctl);
                rd_kafka_destroy(ctl->prod);
        }
        if (ctl->rd) {
                /* Assign-only with no commits: closing only stops the
                 * fetchers; there is no group to leave. */
                rd_kafka_consumer_close(ctl->rd);
                rd_kafka_destroy(ctl->rd);
        }
        for (int i = 0; i < 2; i++) {
                if (ctl->wake[i] >= 0)
                        close(ctl->wake[i]);
        }
        free(ctl->parts);
        free(ctl->ring);
        free(ctl->topic);
        free(ctl);
}
