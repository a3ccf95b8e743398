/* SPDX-License-Identifier: Apache-2.0
 *
 * kinspect.c - read-only Kafka inspection: a group's lag from OffsetFetch and
 * ListOffsets, and a bounded read of a topic by an assign-only consumer.
 */
#include "mlsync/kinspect.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlsync/log.h"
#include "mlsync/util.h"

#define KINSPECT_DEFAULT_TIMEOUT_MS 10000
#define KINSPECT_POLL_MS 100

/* The partitions of one topic, as the cluster's metadata lists them. */
struct topic_parts {
        int32_t *ids; /* ascending */
        size_t cnt;
};

int64_t mls_kinspect_part_lag(int64_t committed, int64_t low, int64_t high)
{
        int64_t from = committed;

        if (low < 0)
                low = 0;
        /* No commit, or one below the log start: the group starts over at
         * the log start (auto.offset.reset=earliest), so what it still has
         * to read is the whole retained log. */
        if (from < low)
                from = low;
        if (high <= from)
                return 0;
        return high - from;
}

static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac,
                           const char *buf)
{
        mls_log(mls_log_level_from_syslog(level), "kinspect", "librdkafka", MLS_KV_STR("facility", fac),
                MLS_KV_STR("detail", buf));
}

static int timeout_of(const struct mls_kinspect_conn *conn)
{
        return conn->timeout_ms > 0 ? conn->timeout_ms :
                                      KINSPECT_DEFAULT_TIMEOUT_MS;
}

/* Milliseconds left until deadline, at least 1 so a call still happens. */
static int ms_left(int64_t deadline)
{
        int64_t left = deadline - mls_now_ms();

        if (left < 1)
                return 1;
        return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static enum mls_err check_conn(const struct mls_kinspect_conn *conn,
                               char *errstr, size_t errstr_size)
{
        if (!conn || !conn->brokers || !conn->brokers[0]) {
                snprintf(errstr, errstr_size, "no brokers given");
                return MLS_ERR_CONFIG;
        }
        for (size_t i = 0; conn->props && conn->props[i]; i += 2) {
                if (!conn->props[i + 1]) {
                        snprintf(errstr, errstr_size,
                                 "property %s has no value", conn->props[i]);
                        return MLS_ERR_CONFIG;
                }
        }
        return MLS_OK;
}

static enum mls_err conf_set(rd_kafka_conf_t *conf, const char *name,
                             const char *value, char *errstr,
                             size_t errstr_size)
{
        char rd_err[256];

        if (rd_kafka_conf_set(conf, name, value, rd_err, sizeof(rd_err)) ==
            RD_KAFKA_CONF_OK)
                return MLS_OK;
        snprintf(errstr, errstr_size, "kafka property %s: %s", name, rd_err);
        return MLS_ERR_CONFIG;
}

/**
 * A consumer handle that never subscribes and never commits.
 * @param eof  Whether to report partition EOF events (the topic reader).
 * @returns the handle (caller owns: rd_kafka_destroy), or NULL with errstr.
 */
static rd_kafka_t *consumer_new(const struct mls_kinspect_conn *conn,
                                const char *group, bool eof, char *errstr,
                                size_t errstr_size)
{
        /* allow.auto.create.topics is left at its consumer default
         * (false): setting it explicitly makes 2.0.2 warn on every call
         * against brokers below Metadata v4, the mock among them. */
        static const char *const fixed[] = {
                "enable.auto.commit",      "false",
                "enable.auto.offset.store", "false",
                "auto.offset.reset",       "earliest",
        };
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk = NULL;
        char rd_err[256];
        enum mls_err err;

        err = conf_set(conf, "bootstrap.servers", conn->brokers, errstr,
                       errstr_size);
        for (size_t i = 0; !err && conn->props && conn->props[i]; i += 2)
                err = conf_set(conf, conn->props[i], conn->props[i + 1],
                               errstr, errstr_size);
        /* Our settings come last so a pass-through property cannot make
         * the inspector commit on the group's behalf. */
        for (size_t i = 0; !err && i < MLS_ARRAY_LEN(fixed); i += 2)
                err = conf_set(conf, fixed[i], fixed[i + 1], errstr,
                               errstr_size);
        if (!err)
                err = conf_set(conf, "group.id", group, errstr, errstr_size);
        if (!err)
                err = conf_set(conf, "enable.partition.eof",
                               eof ? "true" : "false", errstr, errstr_size);
        if (err) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);

        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rd_err, sizeof(rd_err));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                snprintf(errstr, errstr_size, "kafka client: %s", rd_err);
        }
        return rk;
}

static void consumer_destroy(rd_kafka_t *rk)
{
        if (!rk)
                return;
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

static int cmp_i32(const void *a, const void *b)
{
        int32_t x = *(const int32_t *)a;
        int32_t y = *(const int32_t *)b;

        return (x > y) - (x < y);
}

static enum mls_err copy_parts(const rd_kafka_metadata_topic_t *mt,
                               struct topic_parts *tp, char *errstr,
                               size_t errstr_size)
{
        if (mt->err) {
                snprintf(errstr, errstr_size, "topic %s: %s", mt->topic,
                         rd_kafka_err2str(mt->err));
                if (mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                        return MLS_ERR_CONFIG;
                return MLS_ERR_TRANSIENT;
        }
        if (mt->partition_cnt <= 0) {
                snprintf(errstr, errstr_size, "topic %s has no partitions",
                         mt->topic);
                return MLS_ERR_CONFIG;
        }
        tp->ids = calloc((size_t)mt->partition_cnt, sizeof(*tp->ids));
        if (!tp->ids) {
                snprintf(errstr, errstr_size, "out of memory");
                return MLS_ERR_NOMEM;
        }
        for (int i = 0; i < mt->partition_cnt; i++)
                tp->ids[i] = mt->partitions[i].id;
        tp->cnt = (size_t)mt->partition_cnt;
        qsort(tp->ids, tp->cnt, sizeof(*tp->ids), cmp_i32);
        return MLS_OK;
}

/**
 * The partitions of topic. Asks for all topics' metadata on purpose: a
 * request naming the topic would make a broker with auto-creation on (and
 * librdkafka's mock) create it.
 * @param tp  On MLS_OK, tp->ids is caller-owned (free).
 */
static enum mls_err topic_parts_get(rd_kafka_t *rk, const char *topic,
                                    int64_t deadline, struct topic_parts *tp,
                                    char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t rerr;
        enum mls_err err;

        rerr = rd_kafka_metadata(rk, 1, NULL, &md, ms_left(deadline));
        if (rerr) {
                snprintf(errstr, errstr_size, "metadata: %s",
                         rd_kafka_err2str(rerr));
                return MLS_ERR_TRANSIENT;
        }
        snprintf(errstr, errstr_size, "topic %s does not exist", topic);
        err = MLS_ERR_CONFIG;
        for (int i = 0; i < md->topic_cnt; i++) {
                if (strcmp(md->topics[i].topic, topic))
                        continue;
                err = copy_parts(&md->topics[i], tp, errstr, errstr_size);
                break;
        }
        rd_kafka_metadata_destroy(md);
        return err;
}

static enum mls_err watermarks_get(rd_kafka_t *rk, const char *topic,
                                   int32_t partition, int64_t deadline,
                                   int64_t *low, int64_t *high, char *errstr,
                                   size_t errstr_size)
{
        rd_kafka_resp_err_t rerr;

        rerr = rd_kafka_query_watermark_offsets(rk, topic, partition, low,
                                                high, ms_left(deadline));
        if (!rerr)
                return MLS_OK;
        snprintf(errstr, errstr_size, "watermarks of %s[%d]: %s", topic,
                 (int)partition, rd_kafka_err2str(rerr));
        return MLS_ERR_TRANSIENT;
}

void mls_kinspect_lag_fini(struct mls_kinspect_lag *lag)
{
        if (!lag)
                return;
        for (size_t i = 0; i < lag->part_cnt; i++)
                free(lag->parts[i].topic);
        free(lag->parts);
        memset(lag, 0, sizeof(*lag));
}

static enum mls_err check_lag_args(const struct mls_kinspect_conn *conn,
                                   const char *group,
                                   const char *const *topics,
                                   size_t topic_cnt, char *errstr,
                                   size_t errstr_size)
{
        enum mls_err err = check_conn(conn, errstr, errstr_size);

        if (err)
                return err;
        if (!group || !group[0]) {
                snprintf(errstr, errstr_size, "no consumer group given");
                return MLS_ERR_CONFIG;
        }
        if (!topics || !topic_cnt) {
                snprintf(errstr, errstr_size, "no topics given");
                return MLS_ERR_CONFIG;
        }
        for (size_t i = 0; i < topic_cnt; i++) {
                if (!topics[i] || !topics[i][0]) {
                        snprintf(errstr, errstr_size, "empty topic name");
                        return MLS_ERR_CONFIG;
                }
        }
        return MLS_OK;
}

/* Append the partitions of one topic to lag (committed not yet known). */
static enum mls_err lag_add_topic(rd_kafka_t *rk, const char *topic,
                                  int64_t deadline,
                                  struct mls_kinspect_lag *lag, char *errstr,
                                  size_t errstr_size)
{
        struct topic_parts tp = { NULL, 0 };
        struct mls_kinspect_part *np;
        enum mls_err err;

        err = topic_parts_get(rk, topic, deadline, &tp, errstr, errstr_size);
        if (err)
                return err;

        np = realloc(lag->parts, (lag->part_cnt + tp.cnt) * sizeof(*np));
        if (!np) {
                err = MLS_ERR_NOMEM;
                goto out;
        }
        lag->parts = np;
        for (size_t i = 0; i < tp.cnt; i++) {
                struct mls_kinspect_part *p = &lag->parts[lag->part_cnt];

                memset(p, 0, sizeof(*p));
                p->topic = strdup(topic);
                if (!p->topic) {
                        err = MLS_ERR_NOMEM;
                        goto out;
                }
                p->partition = tp.ids[i];
                p->committed = MLS_KINSPECT_NO_OFFSET;
                lag->part_cnt++;

                err = watermarks_get(rk, topic, p->partition, deadline,
                                     &p->low, &p->high, errstr, errstr_size);
                if (err)
                        goto out;
        }
out:
        if (err == MLS_ERR_NOMEM)
                snprintf(errstr, errstr_size, "out of memory");
        free(tp.ids);
        return err;
}

/* OffsetFetch for every partition in lag, then the lag arithmetic. */
static enum mls_err lag_fill_committed(rd_kafka_t *rk, int64_t deadline,
                                       struct mls_kinspect_lag *lag,
                                       char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t rerr;
        enum mls_err err = MLS_OK;

        list = rd_kafka_topic_partition_list_new((int)lag->part_cnt);
        for (size_t i = 0; i < lag->part_cnt; i++)
                rd_kafka_topic_partition_list_add(list, lag->parts[i].topic,
                                                  lag->parts[i].partition);

        rerr = rd_kafka_committed(rk, list, ms_left(deadline));
        if (rerr) {
                snprintf(errstr, errstr_size, "committed offsets: %s",
                         rd_kafka_err2str(rerr));
                err = MLS_ERR_TRANSIENT;
                goto out;
        }
        /* The list comes back in the order it was built. */
        for (size_t i = 0; i < lag->part_cnt; i++) {
                const rd_kafka_topic_partition_t *e = &list->elems[i];
                struct mls_kinspect_part *p = &lag->parts[i];

                if (e->err) {
                        snprintf(errstr, errstr_size,
                                 "committed offset of %s[%d]: %s", p->topic,
                                 (int)p->partition, rd_kafka_err2str(e->err));
                        err = MLS_ERR_TRANSIENT;
                        goto out;
                }
                if (e->offset >= 0)
                        p->committed = e->offset;
                p->lag = mls_kinspect_part_lag(p->committed, p->low, p->high);
                lag->total += p->lag;
        }
out:
        rd_kafka_topic_partition_list_destroy(list);
        return err;
}

enum mls_err mls_kinspect_lag_get(const struct mls_kinspect_conn *conn,
                                  const char *group,
                                  const char *const *topics, size_t topic_cnt,
                                  struct mls_kinspect_lag *lag, char *errstr,
                                  size_t errstr_size)
{
        rd_kafka_t *rk = NULL;
        int64_t deadline;
        enum mls_err err;

        memset(lag, 0, sizeof(*lag));
        err = check_lag_args(conn, group, topics, topic_cnt, errstr,
                             errstr_size);
        if (err)
                return err;
        deadline = mls_now_ms() + timeout_of(conn);

        rk = consumer_new(conn, group, false, errstr, errstr_size);
        if (!rk)
                return MLS_ERR_CONFIG;

        for (size_t i = 0; i < topic_cnt && !err; i++)
                err = lag_add_topic(rk, topics[i], deadline, lag, errstr,
                                    errstr_size);
        if (!err)
                err = lag_fill_committed(rk, deadline, lag, errstr,
                                         errstr_size);

        consumer_destroy(rk);
        if (err)
                mls_kinspect_lag_fini(lag);
        return err;
}

const struct mls_kinspect_hdr *
mls_kinspect_msg_header(const struct mls_kinspect_msg *m, const char *name)
{
        for (size_t i = 0; i < m->hdr_cnt; i++)
                if (!strcmp(m->hdrs[i].name, name))
                        return &m->hdrs[i];
        return NULL;
}

/* Progress of the topic reader, indexed by partition id. */
struct reader {
        const char *topic;
        int64_t *high;  /* stop mark per partition id; -1: not read */
        bool *done;
        size_t slot_cnt; /* max partition id + 1 */
        size_t pending;  /* partitions not yet read to their mark */
        size_t read_cnt;
        struct mls_kinspect_hdr *hdrs; /* reused between messages */
        size_t hdr_cap;
        char last_error[256];
};

static void reader_fini(struct reader *r)
{
        free(r->high);
        free(r->done);
        free(r->hdrs);
}

static void reader_mark_done(struct reader *r, int32_t partition)
{
        if (partition < 0 || (size_t)partition >= r->slot_cnt)
                return;
        if (r->high[partition] < 0 || r->done[partition])
                return;
        r->done[partition] = true;
        r->pending--;
}

/**
 * Take the marks and build the assignment: every partition that holds
 * messages, from its beginning.
 * @param listp  Set to the list (caller owns) on MLS_OK.
 */
static enum mls_err reader_plan(rd_kafka_t *rk, struct reader *r,
                                int64_t deadline,
                                rd_kafka_topic_partition_list_t **listp,
                                char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *list = NULL;
        struct topic_parts tp = { NULL, 0 };
        enum mls_err err;

        err = topic_parts_get(rk, r->topic, deadline, &tp, errstr,
                              errstr_size);
        if (err)
                return err;

        r->slot_cnt = (size_t)tp.ids[tp.cnt - 1] + 1;
        r->high = calloc(r->slot_cnt, sizeof(*r->high));
        r->done = calloc(r->slot_cnt, sizeof(*r->done));
        list = rd_kafka_topic_partition_list_new((int)tp.cnt);
        if (!r->high || !r->done) {
                snprintf(errstr, errstr_size, "out of memory");
                err = MLS_ERR_NOMEM;
                goto out;
        }
        for (size_t i = 0; i < r->slot_cnt; i++)
                r->high[i] = -1;

        for (size_t i = 0; i < tp.cnt; i++) {
                int64_t low, high;
                rd_kafka_topic_partition_t *e;

                err = watermarks_get(rk, r->topic, tp.ids[i], deadline, &low,
                                     &high, errstr, errstr_size);
                if (err)
                        goto out;
                if (high <= low)
                        continue;
                r->high[tp.ids[i]] = high;
                r->pending++;
                e = rd_kafka_topic_partition_list_add(list, r->topic,
                                                      tp.ids[i]);
                e->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        *listp = list;
        list = NULL;
out:
        if (list)
                rd_kafka_topic_partition_list_destroy(list);
        free(tp.ids);
        return err;
}

static enum mls_err reader_headers(struct reader *r,
                                   rd_kafka_message_t *rkm,
                                   struct mls_kinspect_msg *m)
{
        rd_kafka_headers_t *hdrs = NULL;
        size_t cnt;

        m->hdrs = NULL;
        m->hdr_cnt = 0;
        if (rd_kafka_message_headers(rkm, &hdrs) || !hdrs)
                return MLS_OK;
        cnt = rd_kafka_header_cnt(hdrs);
        if (cnt > r->hdr_cap) {
                struct mls_kinspect_hdr *nh;

                nh = realloc(r->hdrs, cnt * sizeof(*nh));
                if (!nh)
                        return MLS_ERR_NOMEM;
                r->hdrs = nh;
                r->hdr_cap = cnt;
        }
        for (size_t i = 0; i < cnt; i++) {
                struct mls_kinspect_hdr *h = &r->hdrs[i];

                rd_kafka_header_get_all(hdrs, i, &h->name, &h->value,
                                        &h->size);
        }
        m->hdrs = r->hdrs;
        m->hdr_cnt = cnt;
        return MLS_OK;
}

/**
 * Handle one polled message or event.
 * @returns MLS_OK to go on, MLS_ERR_CANCELLED when cb asked to stop, or
 *          MLS_ERR_NOMEM.
 */
static enum mls_err reader_take(struct reader *r, rd_kafka_message_t *rkm,
                                mls_kinspect_msg_cb *cb, void *opaque)
{
        struct mls_kinspect_msg m;
        int32_t p = rkm->partition;
        enum mls_err err;

        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                reader_mark_done(r, p);
                return MLS_OK;
        }
        if (rkm->err) {
                /* Mostly transient (broker down, leader moving); the client
                 * retries by itself, and the deadline bounds the wait. */
                snprintf(r->last_error, sizeof(r->last_error), "%s",
                         rd_kafka_message_errstr(rkm));
                return MLS_OK;
        }
        if (p < 0 || (size_t)p >= r->slot_cnt || r->high[p] < 0 ||
            r->done[p] || rkm->offset >= r->high[p])
                return MLS_OK;

        memset(&m, 0, sizeof(m));
        m.topic = r->topic;
        m.partition = p;
        m.offset = rkm->offset;
        m.key = rkm->key;
        m.key_len = rkm->key_len;
        m.value = rkm->payload;
        m.value_len = rkm->len;
        err = reader_headers(r, rkm, &m);
        if (err)
                return err;
        r->read_cnt++;
        if (rkm->offset + 1 >= r->high[p])
                reader_mark_done(r, p);
        return cb(&m, opaque) ? MLS_ERR_CANCELLED : MLS_OK;
}

static enum mls_err reader_loop(rd_kafka_t *rk, struct reader *r,
                                int64_t deadline, mls_kinspect_msg_cb *cb,
                                void *opaque, char *errstr,
                                size_t errstr_size)
{
        enum mls_err err = MLS_OK;

        while (r->pending > 0) {
                rd_kafka_message_t *rkm;
                int wait_ms = ms_left(deadline);

                if (mls_now_ms() >= deadline) {
                        snprintf(errstr, errstr_size,
                                 "timed out reading %s: %zu messages read, %zu partitions unfinished%s%s",
                                 r->topic, r->read_cnt, r->pending,
                                 r->last_error[0] ? "; last error: " : "",
                                 r->last_error);
                        return MLS_ERR_TRANSIENT;
                }
                rkm = rd_kafka_consumer_poll(
                        rk, wait_ms < KINSPECT_POLL_MS ? wait_ms :
                                                         KINSPECT_POLL_MS);
                if (!rkm)
                        continue;
                err = reader_take(r, rkm, cb, opaque);
                rd_kafka_message_destroy(rkm);
                if (err)
                        break;
        }
        if (err == MLS_ERR_NOMEM)
                snprintf(errstr, errstr_size, "out of memory");
        else if (err == MLS_ERR_CANCELLED)
                snprintf(errstr, errstr_size, "stopped by the callback");
        return err;
}

enum mls_err mls_kinspect_topic_read(const struct mls_kinspect_conn *conn,
                                     const char *topic,
                                     mls_kinspect_msg_cb *cb, void *opaque,
                                     size_t *read_cnt, char *errstr,
                                     size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *list = NULL;
        struct reader r;
        rd_kafka_t *rk = NULL;
        rd_kafka_resp_err_t rerr;
        char group[64];
        int64_t deadline;
        enum mls_err err;

        memset(&r, 0, sizeof(r));
        r.topic = topic;
        err = check_conn(conn, errstr, errstr_size);
        if (!err && (!topic || !topic[0] || !cb)) {
                snprintf(errstr, errstr_size, "no topic or no callback");
                err = MLS_ERR_CONFIG;
        }
        if (err)
                goto out;
        deadline = mls_now_ms() + timeout_of(conn);

        /* librdkafka 2.0.2 refuses assign() without a group id (kafka.md
         * 5.2); this one is never joined and never committed to. */
        snprintf(group, sizeof(group), "mlsync-inspect-%ld", (long)getpid());
        rk = consumer_new(conn, group, true, errstr, errstr_size);
        if (!rk) {
                err = MLS_ERR_CONFIG;
                goto out;
        }

        err = reader_plan(rk, &r, deadline, &list, errstr, errstr_size);
        if (err || r.pending == 0)
                goto out;

        rerr = rd_kafka_assign(rk, list);
        if (rerr) {
                snprintf(errstr, errstr_size, "assign %s: %s", topic,
                         rd_kafka_err2str(rerr));
                err = MLS_ERR_TRANSIENT;
                goto out;
        }
        err = reader_loop(rk, &r, deadline, cb, opaque, errstr, errstr_size);
out:
        if (read_cnt)
                *read_cnt = r.read_cnt;
        if (list)
                rd_kafka_topic_partition_list_destroy(list);
        consumer_destroy(rk);
        reader_fini(&r);
        return err;
}
