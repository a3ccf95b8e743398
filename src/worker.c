/* SPDX-License-Identifier: Apache-2.0
 *
 * worker.c - the consumer loop: read membership changes, route them into
 * list batches, dead-letter what cannot be applied, and commit each
 * partition up to the lowest offset that is not yet done.
 *
 * Everything runs on one thread. librdkafka's consumer queue wakes the
 * Marketo loop through a pipe, so the thread sleeps in one place
 * (mls_mkto_loop_run) whether it waits for Kafka, Marketo or a timer.
 */
#include "mlsync/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mlsync/event.h"
#include "mlsync/log.h"
#include "mlsync/util.h"
#include "worker_int.h"

#define POLL_BATCH 500          /* messages taken per loop turn */
#define LOOP_MAX_WAIT_MS 200    /* longest sleep; bounds shutdown latency */
#define REVOKE_DRAIN_MAX_MS 10000
#define STATS_EVERY_MS 30000
#define DLQ_RETRY_MS 2000
#define FULL_COMMIT_EVERY_MS 60000
#define EXIT_SOFTWARE 70
#define EXIT_UNAVAILABLE 69
#define EXIT_CONFIG 78

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
        if (stop_signal)
                _exit(128 + sig); /* second signal: leave at once */
        stop_signal = sig;
}

static void install_signals(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

/* ---- messages and partitions ---- */

static struct wpart *part_find(struct worker *w, const char *topic,
                               int32_t partition)
{
        for (struct wpart *p = w->parts; p; p = p->next)
                if (p->partition == partition && !strcmp(p->topic, topic))
                        return p;
        return NULL;
}

static void msg_free(struct wmsg *m)
{
        free(m->key);
        free(m->value);
        free(m);
}

static void msg_unlink(struct wmsg *m)
{
        struct wpart *p = m->part;

        if (m->lprev)
                m->lprev->lnext = m->lnext;
        else
                p->live = m->lnext;
        if (m->lnext)
                m->lnext->lprev = m->lprev;
        m->lprev = m->lnext = NULL;
}

/* The message is applied, dead-lettered or had nothing to apply. */
static void msg_done(struct worker *w, struct wmsg *m)
{
        if (m->part) {
                mls_ptrack_done(m->part->pt, m->seq);
                msg_unlink(m);
                w->pending--;
        }
        msg_free(m);
}

static void dlq_send(struct worker *w, struct wmsg *m, const char *stage,
                     const char *code, const char *reason);

void mls_worker_msg_release(struct worker *w, struct wmsg *m)
{
        if (--m->refs > 0)
                return;
        if (m->reject_reason[0]) {
                dlq_send(w, m, "marketo", m->reject_code, m->reject_reason);
                return;
        }
        msg_done(w, m);
}

/* ---- dead-letter topic ---- */

static void fmt_time(char *buf, size_t size)
{
        time_t now = time(NULL);
        struct tm tm;

        gmtime_r(&now, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void dlq_queue_retry(struct worker *w, struct wmsg *m)
{
        m->next = w->dlq_retry;
        w->dlq_retry = m;
        if (!w->dlq_retry_at)
                w->dlq_retry_at = mls_now_ms() + DLQ_RETRY_MS;
}

/* Headers carry where the message came from and why it is here; the value
 * and key are the original bytes, so a fixed message can be replayed. */
static void dlq_produce(struct worker *w, struct wmsg *m)
{
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
        char part_s[16], off_s[32], when[40];
        const char *topic = m->part ? m->part->topic : "";
        rd_kafka_resp_err_t err;

        snprintf(part_s, sizeof(part_s), "%d",
                 m->part ? (int)m->part->partition : -1);
        snprintf(off_s, sizeof(off_s), "%lld", (long long)m->offset);
        fmt_time(when, sizeof(when));
        rd_kafka_header_add(hdrs, "mlsync.error.reason", -1, m->reject_reason,
                            -1);
        rd_kafka_header_add(hdrs, "mlsync.error.stage", -1, m->dlq_stage, -1);
        if (m->reject_code[0])
                rd_kafka_header_add(hdrs, "mlsync.error.code", -1,
                                    m->reject_code, -1);
        rd_kafka_header_add(hdrs, "mlsync.source.topic", -1, topic, -1);
        rd_kafka_header_add(hdrs, "mlsync.source.partition", -1, part_s, -1);
        rd_kafka_header_add(hdrs, "mlsync.source.offset", -1, off_s, -1);
        rd_kafka_header_add(hdrs, "mlsync.error.time", -1, when, -1);
        rd_kafka_header_add(hdrs, "mlsync.worker", -1, w->worker_id, -1);

        err = rd_kafka_producev(
                w->prod, RD_KAFKA_V_TOPIC(w->cfg->kafka.dead_letter_topic),
                RD_KAFKA_V_KEY(m->key, m->key_len),
                RD_KAFKA_V_VALUE(m->value, m->value_len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(m),
                RD_KAFKA_V_END);
        if (err) {
                rd_kafka_headers_destroy(hdrs);
                mls_log(MLS_LOG_WARN, "dlq", "dead-letter produce failed",
                        MLS_KV_STR("err", rd_kafka_err2str(err)));
                dlq_queue_retry(w, m);
        }
}

/* The message cannot be applied: send it to the dead-letter topic. It is
 * done (and its offset may be committed) only once Kafka has acked it. */
static void dlq_send(struct worker *w, struct wmsg *m, const char *stage,
                     const char *code, const char *reason)
{
        m->dlq_pending = true;
        snprintf(m->dlq_stage, sizeof(m->dlq_stage), "%s", stage);
        if (code != m->reject_code)
                snprintf(m->reject_code, sizeof(m->reject_code), "%s",
                         code ? code : "");
        if (reason != m->reject_reason)
                snprintf(m->reject_reason, sizeof(m->reject_reason), "%s",
                         reason);
        mls_log(MLS_LOG_INFO, "dlq", "message dead-lettered",
                MLS_KV_STR("topic", m->part ? m->part->topic : ""),
                MLS_KV_INT("partition", m->part ? m->part->partition : -1),
                MLS_KV_INT("offset", m->offset), MLS_KV_STR("stage", stage),
                MLS_KV_STR("reason", m->reject_reason));
        dlq_produce(w, m);
}

static void dlq_retry_due(struct worker *w, int64_t now)
{
        struct wmsg *m = w->dlq_retry;

        if (!m || now < w->dlq_retry_at)
                return;
        w->dlq_retry = NULL;
        w->dlq_retry_at = 0;
        while (m) {
                struct wmsg *next = m->next;

                m->next = NULL;
                dlq_produce(w, m);
                m = next;
        }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque)
{
        struct worker *w = opaque;
        struct wmsg *m = rkm->_private;

        if (rkm->err) {
                mls_log(MLS_LOG_WARN, "dlq", "dead-letter delivery failed",
                        MLS_KV_STR("err", rd_kafka_err2str(rkm->err)));
                dlq_queue_retry(w, m);
                return;
        }
        w->st.dead_lettered++;
        msg_done(w, m);
}

/* ---- consuming ---- */

static struct winst *inst_find(struct worker *w, const char *id)
{
        for (size_t i = 0; i < w->inst_cnt; i++)
                if (!strcasecmp(w->insts[i].cfg->munchkin_id, id))
                        return &w->insts[i];
        return NULL;
}

static struct wmsg *msg_new(struct wpart *p, const rd_kafka_message_t *rkm)
{
        struct wmsg *m = calloc(1, sizeof(*m));

        if (!m)
                return NULL;
        m->part = p;
        m->offset = rkm->offset;
        m->key_len = rkm->key_len;
        m->value_len = rkm->len;
        m->key = malloc(rkm->key_len + 1);
        m->value = malloc(rkm->len + 1);
        if (!m->key || !m->value) {
                msg_free(m);
                return NULL;
        }
        if (rkm->key_len)
                memcpy(m->key, rkm->key, rkm->key_len);
        if (rkm->len)
                memcpy(m->value, rkm->payload, rkm->len);
        m->key[rkm->key_len] = '\0';
        m->value[rkm->len] = '\0';
        return m;
}

/* Decode one message and route it: to a list batch, to the dead-letter
 * topic, or straight to done when it carries no email. */
static enum mls_err handle_message(struct worker *w, struct wmsg *m)
{
        struct mls_event ev;
        struct winst *inst;
        char errstr[256];
        enum mls_err err;

        err = mls_event_decode(m->key_len ? m->key : NULL, m->key_len,
                               m->value, m->value_len, &ev, errstr,
                               sizeof(errstr));
        if (err == MLS_ERR_NOMEM)
                return err;
        if (err) {
                dlq_send(w, m, "decode", "", errstr);
                return MLS_OK;
        }
        inst = inst_find(w, ev.munchkin_id);
        if (!inst) {
                snprintf(errstr, sizeof(errstr),
                         "unknown instance '%.64s': not in the config",
                         ev.munchkin_id);
                dlq_send(w, m, "route", "", errstr);
                mls_event_fini(&ev);
                return MLS_OK;
        }
        if (ev.email_cnt == 0) {
                w->st.no_email++;
                mls_log(MLS_LOG_DEBUG, "worker", "no email to apply",
                        MLS_KV_STR("instance", inst->cfg->munchkin_id),
                        MLS_KV_INT("partition", m->part->partition),
                        MLS_KV_INT("offset", m->offset));
                mls_event_fini(&ev);
                msg_done(w, m);
                return MLS_OK;
        }
        m->refs++; /* held while routing, so it cannot complete early */
        err = mls_wsync_route(w, m, inst, ev.list_name,
                              ev.action == MLS_EVENT_ADD ? MLS_BATCH_ADD :
                                                           MLS_BATCH_REMOVE,
                              ev.emails, ev.email_cnt);
        mls_event_fini(&ev);
        mls_worker_msg_release(w, m);
        return err;
}

static enum mls_err consume_one(struct worker *w, rd_kafka_message_t *rkm)
{
        const char *topic = rd_kafka_topic_name(rkm->rkt);
        struct wpart *p = part_find(w, topic, rkm->partition);
        struct wmsg *m;

        if (!p) {
                /* A message of a partition we no longer own: its next
                 * owner reads it again. */
                return MLS_OK;
        }
        m = msg_new(p, rkm);
        if (!m)
                return MLS_ERR_NOMEM;
        if (mls_ptrack_add(p->pt, rkm->offset, &m->seq) != MLS_OK) {
                msg_free(m);
                return MLS_OK; /* delivered twice after a seek: skip */
        }
        m->lnext = p->live;
        if (p->live)
                p->live->lprev = m;
        p->live = m;
        w->pending++;
        w->st.consumed++;
        return handle_message(w, m);
}

static void consumer_error(struct worker *w, rd_kafka_message_t *rkm)
{
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                return;
        mls_log(rkm->err == RD_KAFKA_RESP_ERR__FATAL ? MLS_LOG_ERROR :
                                                       MLS_LOG_WARN,
                "kafka", "consumer error",
                MLS_KV_STR("err", rd_kafka_err2name(rkm->err)),
                MLS_KV_STR("detail", rd_kafka_message_errstr(rkm)));
}

/* Take what the consumer has, without blocking. Returns -1 on a fatal
 * consumer error, else the number of messages taken. */
static int poll_kafka(struct worker *w)
{
        char drain[64];
        int n = 0;

        while (read(w->wake_fds[0], drain, sizeof(drain)) > 0)
                ;
        while (n < POLL_BATCH) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(w->rk, 0);
                enum mls_err err;

                if (!rkm)
                        break;
                if (rkm->err) {
                        bool fatal = rkm->err == RD_KAFKA_RESP_ERR__FATAL;

                        consumer_error(w, rkm);
                        rd_kafka_message_destroy(rkm);
                        if (fatal)
                                return -1;
                        continue;
                }
                err = consume_one(w, rkm);
                rd_kafka_message_destroy(rkm);
                if (err == MLS_ERR_NOMEM)
                        return -1;
                n++;
        }
        return n;
}

/* ---- commits and back-pressure ---- */

/* Commit, for every owned partition, the lowest offset not yet done. Only
 * partitions that moved are sent; sync waits for the broker's answer. */
static void commit_done(struct worker *w, bool sync)
{
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;

        list = rd_kafka_topic_partition_list_new((int)w->part_cnt + 1);
        for (struct wpart *p = w->parts; p; p = p->next) {
                int64_t off = mls_ptrack_committable(p->pt);

                if (off < 0 || off == p->committed)
                        continue;
                rd_kafka_topic_partition_list_add(list, p->topic,
                                                  p->partition)->offset = off;
                p->committed = off;
                mls_log(MLS_LOG_DEBUG, "kafka", "commit",
                        MLS_KV_STR("topic", p->topic),
                        MLS_KV_INT("partition", p->partition),
                        MLS_KV_INT("offset", off), MLS_KV_BOOL("sync", sync));
        }
        w->last_commit_ms = mls_now_ms();
        if (list->cnt == 0) {
                rd_kafka_topic_partition_list_destroy(list);
                return;
        }
        err = rd_kafka_commit(w->rk, list, sync ? 0 : 1);
        if (sync && err) {
                w->st.commit_errors++;
                mls_log(MLS_LOG_WARN, "kafka", "commit failed",
                        MLS_KV_STR("err", rd_kafka_err2name(err)));
                /* Let the next commit try these offsets again. */
                for (struct wpart *p = w->parts; p; p = p->next)
                        p->committed = -1;
        } else {
                w->st.commits++;
        }
        rd_kafka_topic_partition_list_destroy(list);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
        struct worker *w = opaque;

        if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
                return;
        w->st.commit_errors++;
        mls_log(MLS_LOG_WARN, "kafka", "commit failed",
                MLS_KV_STR("err", rd_kafka_err2name(err)));
        for (struct wpart *p = w->parts; p; p = p->next)
                p->committed = -1;
}

static void set_paused(struct worker *w, struct wpart *p, bool pause)
{
        rd_kafka_topic_partition_list_t *list;

        if (p->paused == pause)
                return;
        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, p->topic, p->partition);
        if (pause)
                rd_kafka_pause_partitions(w->rk, list);
        else
                rd_kafka_resume_partitions(w->rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        p->paused = pause;
        mls_log(MLS_LOG_DEBUG, "worker",
                pause ? "partition paused" : "partition resumed",
                MLS_KV_STR("topic", p->topic),
                MLS_KV_INT("partition", p->partition),
                MLS_KV_INT("pending", mls_ptrack_pending(p->pt)));
}

/* Memory stays bounded: a partition holding more than its share of
 * batch.max_pending stops fetching until half of that is done. Polling
 * goes on, so the group never evicts us. */
static void apply_backpressure(struct worker *w)
{
        size_t cap = (size_t)w->cfg->batch.max_pending;
        size_t share = w->part_cnt ? cap / w->part_cnt : cap;
        bool over_all = w->pending >= cap;

        if (share < 100)
                share = 100;
        for (struct wpart *p = w->parts; p; p = p->next) {
                size_t n = mls_ptrack_pending(p->pt);

                if (w->draining || over_all || n >= share)
                        set_paused(w, p, true);
                else if (n <= share / 2 && w->pending <= cap / 2)
                        set_paused(w, p, false);
        }
}

/* ---- rebalances ---- */

static void parts_clear(struct worker *w)
{
        struct wpart *p = w->parts;

        while (p) {
                struct wpart *next = p->next;
                struct wmsg *m = p->live;

                while (m) {
                        struct wmsg *mn = m->lnext;

                        if (m->dlq_pending) {
                                /* Kafka still owns a copy in flight: the
                                 * delivery report frees it. */
                                m->part = NULL;
                                m->lprev = m->lnext = NULL;
                        } else {
                                msg_free(m);
                        }
                        m = mn;
                }
                mls_ptrack_destroy(p->pt);
                free(p->topic);
                free(p);
                p = next;
        }
        w->parts = NULL;
        w->part_cnt = 0;
        w->pending = 0;
        /* Dead-letter retries of dropped partitions are dropped too. */
        while (w->dlq_retry) {
                struct wmsg *m = w->dlq_retry;

                w->dlq_retry = m->next;
                if (!m->part)
                        msg_free(m);
        }
}

static int run_loop_once(struct worker *w, int max_wait_ms);

/* Finish what can be finished within max_ms: flush gathering batches,
 * wait for Marketo and the dead-letter acks. */
static void drain(struct worker *w, int64_t max_ms)
{
        int64_t deadline = mls_now_ms() + max_ms;
        bool was = w->draining;

        w->draining = true;
        while (mls_now_ms() < deadline) {
                int64_t left = deadline - mls_now_ms();

                if (mls_wsync_busy(w) == 0 && rd_kafka_outq_len(w->prod) == 0)
                        break;
                run_loop_once(w, left < 100 ? (int)left : 100);
        }
        w->draining = was;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        struct worker *w = opaque;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                for (int i = 0; i < parts->cnt; i++) {
                        struct wpart *p = calloc(1, sizeof(*p));

                        if (!p)
                                break;
                        p->topic = strdup(parts->elems[i].topic);
                        p->partition = parts->elems[i].partition;
                        p->pt = mls_ptrack_new();
                        p->committed = -1;
                        p->next = w->parts;
                        w->parts = p;
                        w->part_cnt++;
                }
                mls_log(MLS_LOG_INFO, "kafka", "partitions assigned",
                        MLS_KV_INT("count", parts->cnt));
                rd_kafka_assign(rk, parts);
                /* librdkafka keeps an application pause across a
                 * rebalance; the drain on revoke paused these, so a
                 * partition given back would otherwise never be read. */
                rd_kafka_resume_partitions(rk, parts);
                mls_wobs_ready(w);
                return;
        }
        if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                bool lost = rd_kafka_assignment_lost(rk);
                int64_t budget = w->cfg->worker.shutdown_timeout_ms;

                mls_log(MLS_LOG_INFO, "kafka", "partitions revoked",
                        MLS_KV_INT("count", parts->cnt),
                        MLS_KV_BOOL("lost", lost));
                if (!lost) {
                        drain(w, budget < REVOKE_DRAIN_MAX_MS ?
                                         budget : REVOKE_DRAIN_MAX_MS);
                        commit_done(w, true);
                }
                mls_wsync_abandon_all(w);
                parts_clear(w);
                rd_kafka_assign(rk, NULL);
                return;
        }
        mls_log(MLS_LOG_ERROR, "kafka", "rebalance failed",
                MLS_KV_STR("err", rd_kafka_err2name(err)));
        mls_wsync_abandon_all(w);
        parts_clear(w);
        rd_kafka_assign(rk, NULL);
}

/* ---- the loop ---- */

static void log_stats(struct worker *w, const char *msg)
{
        struct mls_mkto_stats ms;
        uint64_t calls = 0, e606 = 0, e615 = 0, other = 0;

        for (size_t i = 0; i < w->inst_cnt; i++) {
                mls_mkto_get_stats(w->insts[i].mk, &ms);
                calls += ms.calls;
                e606 += ms.errors_606;
                e615 += ms.errors_615;
                other += ms.errors_other + ms.errors_607;
        }
        mls_log(MLS_LOG_INFO, "worker", msg,
                MLS_KV_INT("consumed", w->st.consumed),
                MLS_KV_INT("applied", w->st.applied),
                MLS_KV_INT("no_email", w->st.no_email),
                MLS_KV_INT("dead_lettered", w->st.dead_lettered),
                MLS_KV_INT("pending", w->pending),
                MLS_KV_INT("batches", w->st.batches),
                MLS_KV_INT("batch_retries", w->st.batch_retries),
                MLS_KV_INT("marketo_calls", calls),
                MLS_KV_INT("marketo_606", e606),
                MLS_KV_INT("marketo_615", e615),
                MLS_KV_INT("marketo_errors", other),
                MLS_KV_INT("commit_errors", w->st.commit_errors));
}

/* One turn: take messages, start due batches, retry dead-letters,
 * commit, then sleep until something happens (at most max_wait_ms).
 * Returns -1 on a fatal Kafka error. */
static int run_loop_once(struct worker *w, int max_wait_ms)
{
        int64_t now = mls_now_ms();
        int64_t next;
        int taken = 0;
        int wait;

        /* While draining the consumer is not polled: this may run inside
         * the rebalance callback, and librdkafka keeps the membership
         * alive from its own threads for max.poll.interval.ms. */
        if (!w->draining) {
                taken = poll_kafka(w);
                if (taken < 0)
                        return -1;
        }
        rd_kafka_poll(w->prod, 0);
        if (mls_wbud_tick(w, now) < 0)
                return -1;
        dlq_retry_due(w, now);
        next = mls_wsync_tick(w, now);
        apply_backpressure(w);
        if (now - w->last_full_commit_ms >= FULL_COMMIT_EVERY_MS) {
                /* Re-commit unchanged offsets now and then, so an idle
                 * group's offsets never age out of the broker. */
                w->last_full_commit_ms = now;
                for (struct wpart *p = w->parts; p; p = p->next)
                        p->committed = -1;
        }
        if (now - w->last_commit_ms >= w->cfg->worker.commit_interval_ms)
                commit_done(w, false);
        if (now - w->last_stats_ms >= STATS_EVERY_MS) {
                w->last_stats_ms = now;
                log_stats(w, "stats");
        }
        mls_wobs_tick(w, now);

        wait = max_wait_ms;
        if (taken >= POLL_BATCH)
                wait = 0;
        else if (next != INT64_MAX && next - now < wait)
                wait = next - now > 0 ? (int)(next - now) : 0;
        mls_mkto_loop_run(w->loop, wait);
        return 0;
}

static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
        enum mls_log_level lvl = mls_log_level_from_syslog(level);

        /* The consumer and the dead-letter producer share the user's
         * properties, so each warns about the other kind's: expected, not
         * actionable. */
        if (strstr(buf, "is a consumer property") ||
            strstr(buf, "is a producer property"))
                lvl = MLS_LOG_DEBUG;
        mls_log(lvl, "librdkafka", "client log", MLS_KV_STR("facility", fac),
                MLS_KV_STR("detail", buf));
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val,
                    const char *who)
{
        char errstr[256];

        if (rd_kafka_conf_set(conf, key, val, errstr, sizeof(errstr)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        mls_log(MLS_LOG_ERROR, "kafka", "bad kafka property",
                MLS_KV_STR("client", who), MLS_KV_STR("property", key),
                MLS_KV_STR("detail", errstr));
        return -1;
}

/* User properties first are applied after our defaults, so any librdkafka
 * property can be tuned; the few that would break the delivery guarantee
 * are set last and cannot be overridden. */
static rd_kafka_conf_t *make_conf(struct worker *w, bool consumer)
{
        const struct mls_cfg *cfg = w->cfg;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        const char *who = consumer ? "consumer" : "producer";
        int bad = 0;

        rd_kafka_conf_set_log_cb(conf, on_kafka_log);
        bad |= conf_set(conf, "bootstrap.servers", cfg->kafka.brokers, who);
        bad |= conf_set(conf, "client.id", "mlsync", who);
        if (consumer) {
                bad |= conf_set(conf, "auto.offset.reset", "earliest", who);
                /* librdkafka's prefetch is memory we hold too: 16 MiB
                 * instead of its 64 MiB default, unless the user says. */
                bad |= conf_set(conf, "queued.max.messages.kbytes", "16384",
                                who);
                bad |= conf_set(conf, "partition.assignment.strategy",
                                "range,roundrobin", who);
        } else {
                bad |= conf_set(conf, "enable.idempotence", "true", who);
                bad |= conf_set(conf, "acks", "all", who);
                bad |= conf_set(conf, "linger.ms", "5", who);
        }
        for (size_t i = 0; i < cfg->kafka.prop_cnt; i++) {
                const char *k = cfg->kafka.props[i].key;
                const char *v = cfg->kafka.props[i].value;
                char errstr[256];
                rd_kafka_conf_res_t r;

                /* Both clients get every property; librdkafka ignores
                 * the other kind's (its warning is logged at debug). */
                r = rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr));
                if (r == RD_KAFKA_CONF_INVALID) {
                        mls_log(MLS_LOG_ERROR, "kafka", "bad kafka property",
                                MLS_KV_STR("property", k),
                                MLS_KV_STR("detail", errstr));
                        bad = -1;
                }
        }
        if (consumer) {
                char grp[256];
                size_t n = sizeof(grp);

                bad |= conf_set(conf, "group.id", cfg->kafka.group, who);
                bad |= conf_set(conf, "enable.auto.commit", "false", who);
                bad |= conf_set(conf, "enable.auto.offset.store", "false", who);
                if (rd_kafka_conf_get(conf, "partition.assignment.strategy",
                                      grp, &n) == RD_KAFKA_CONF_OK &&
                    strstr(grp, "cooperative") &&
                    rd_kafka_version() < 0x020a0000) {
                        /* LIMIT: no cooperative-sticky before librdkafka
                         * 2.10; 2.0.2 loses assignments on commit races. */
                        mls_log(MLS_LOG_ERROR, "kafka",
                                "cooperative assignment needs librdkafka 2.10",
                                MLS_KV_STR("version", rd_kafka_version_str()));
                        bad = -1;
                }
                rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
                rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
        } else {
                rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        }
        rd_kafka_conf_set_opaque(conf, w);
        if (bad) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        return conf;
}

static int setup_kafka(struct worker *w)
{
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_conf_t *conf;
        char errstr[512];
        rd_kafka_resp_err_t err;

        conf = make_conf(w, false);
        if (!conf)
                return EXIT_CONFIG;
        w->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                               sizeof(errstr));
        if (!w->prod) {
                mls_log(MLS_LOG_ERROR, "kafka", "producer not created",
                        MLS_KV_STR("detail", errstr));
                return EXIT_CONFIG;
        }
        conf = make_conf(w, true);
        if (!conf)
                return EXIT_CONFIG;
        w->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!w->rk) {
                mls_log(MLS_LOG_ERROR, "kafka", "consumer not created",
                        MLS_KV_STR("detail", errstr));
                return EXIT_CONFIG;
        }
        rd_kafka_poll_set_consumer(w->rk);
        w->cq = rd_kafka_queue_get_consumer(w->rk);
        rd_kafka_queue_io_event_enable(w->cq, w->wake_fds[1], "1", 1);
        mls_mkto_loop_watch_fd(w->loop, w->wake_fds[0]);

        topics = rd_kafka_topic_partition_list_new((int)w->cfg->kafka.topic_cnt);
        for (size_t i = 0; i < w->cfg->kafka.topic_cnt; i++)
                rd_kafka_topic_partition_list_add(topics,
                                                  w->cfg->kafka.topics[i],
                                                  RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(w->rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err) {
                mls_log(MLS_LOG_ERROR, "kafka", "subscribe failed",
                        MLS_KV_STR("err", rd_kafka_err2name(err)));
                return EXIT_UNAVAILABLE;
        }
        return 0;
}

static int setup_marketo(struct worker *w)
{
        char errstr[256];

        w->loop = mls_mkto_loop_new();
        if (!w->loop)
                return EXIT_SOFTWARE;
        w->insts = calloc(w->cfg->marketo.instance_cnt, sizeof(*w->insts));
        if (!w->insts)
                return EXIT_SOFTWARE;
        for (size_t i = 0; i < w->cfg->marketo.instance_cnt; i++) {
                struct winst *inst = &w->insts[w->inst_cnt];

                inst->w = w;
                inst->cfg = &w->cfg->marketo.instances[i];
                inst->mk = mls_mkto_new(w->loop, inst->cfg, errstr,
                                        sizeof(errstr));
                if (!inst->mk) {
                        mls_log(MLS_LOG_ERROR, "worker",
                                "marketo client not created",
                                MLS_KV_STR("instance", inst->cfg->munchkin_id),
                                MLS_KV_STR("detail", errstr));
                        return EXIT_CONFIG;
                }
                w->inst_cnt++;
        }
        return 0;
}

static void teardown(struct worker *w)
{
        mls_wsync_destroy_lists(w);
        parts_clear(w);
        if (w->cq)
                rd_kafka_queue_destroy(w->cq);
        if (w->rk)
                rd_kafka_destroy(w->rk);
        if (w->prod) {
                rd_kafka_flush(w->prod, 2000);
                rd_kafka_destroy(w->prod);
        }
        mls_wbud_teardown(w);
        /* Dead-letter messages Kafka never acked were orphaned or are in
         * the retry queue; both are freed by now or owned by Kafka. */
        for (size_t i = 0; i < w->inst_cnt; i++)
                mls_mkto_destroy(w->insts[i].mk);
        free(w->insts);
        mls_mkto_loop_destroy(w->loop);
        if (w->wake_fds[0] >= 0)
                close(w->wake_fds[0]);
        if (w->wake_fds[1] >= 0)
                close(w->wake_fds[1]);
        /* Last, so /livez answers until the very end of the drain. */
        mls_wobs_stop(w);
}

/**
 * The drain after SIGTERM/SIGINT, in this order:
 *  1. stop taking messages (partitions paused, polling goes on);
 *  2. send every gathering batch and wait for Marketo and the
 *     dead-letter acks, until worker.shutdown_timeout_ms;
 *  3. commit what is done, synchronously;
 *  4. abandon what is left (it stays uncommitted and is read again);
 *  5. close the consumer (leaves the group), then destroy everything.
 */
static void shutdown_drain(struct worker *w)
{
        int64_t budget = w->cfg->worker.shutdown_timeout_ms;
        int64_t start = mls_now_ms();

        mls_log(MLS_LOG_INFO, "worker", "draining",
                MLS_KV_INT("pending", w->pending),
                MLS_KV_INT("timeout_ms", budget));
        w->draining = true;
        mls_wobs_draining(w);
        apply_backpressure(w);
        /* Keep a little of the budget for the commit and the close. */
        drain(w, budget > 3000 ? budget - 2000 : budget * 2 / 3);
        commit_done(w, true);
        mls_wsync_abandon_all(w);
        log_stats(w, "stopped");
        mls_log(MLS_LOG_INFO, "worker", "drained",
                MLS_KV_INT("abandoned", w->pending),
                MLS_KV_DBL("duration_s", (mls_now_ms() - start) / 1000.0));
        rd_kafka_consumer_close(w->rk);
}

int mls_worker_main(const struct mls_cfg *cfg)
{
        struct worker w;
        char host[64] = "unknown";
        int rc;

        memset(&w, 0, sizeof(w));
        w.cfg = cfg;
        w.wake_fds[0] = w.wake_fds[1] = -1;
        gethostname(host, sizeof(host) - 1);
        snprintf(w.worker_id, sizeof(w.worker_id), "%s/%d", host,
                 (int)getpid());
        if (pipe(w.wake_fds) < 0) {
                mls_log(MLS_LOG_ERROR, "worker", "pipe failed",
                        MLS_KV_STR("err", strerror(errno)));
                return EXIT_SOFTWARE;
        }
        fcntl(w.wake_fds[0], F_SETFL, O_NONBLOCK);
        fcntl(w.wake_fds[1], F_SETFL, O_NONBLOCK);
        install_signals();

        rc = setup_marketo(&w);
        if (!rc)
                rc = setup_kafka(&w);
        /* Probes first: opening the control topics may take seconds. */
        if (!rc && mls_wobs_start(&w) < 0)
                rc = EXIT_CONFIG;
        if (!rc && mls_wbud_setup(&w) < 0)
                rc = EXIT_UNAVAILABLE;
        if (rc) {
                teardown(&w);
                return rc;
        }
        mls_log(MLS_LOG_INFO, "worker", "started",
                MLS_KV_STR("version", MLS_VERSION),
                MLS_KV_STR("group", cfg->kafka.group),
                MLS_KV_STR("worker", w.worker_id),
                MLS_KV_INT("instances", w.inst_cnt),
                MLS_KV_STR("librdkafka", rd_kafka_version_str()));
        w.last_stats_ms = mls_now_ms();

        while (!stop_signal) {
                if (run_loop_once(&w, LOOP_MAX_WAIT_MS) < 0) {
                        rc = EXIT_UNAVAILABLE;
                        break;
                }
        }
        shutdown_drain(&w);
        teardown(&w);
        return rc;
}
