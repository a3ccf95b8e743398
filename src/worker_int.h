/* SPDX-License-Identifier: Apache-2.0
 *
 * worker_int.h - the worker's state, shared by worker.c (loop, Kafka side)
 * and worker_sync.c (batches and Marketo side).
 */
#ifndef MLS_WORKER_INT_H
#define MLS_WORKER_INT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "mlsync/batch.h"
#include "mlsync/config.h"
#include "mlsync/marketo.h"
#include "mlsync/offsets.h"

struct worker;
struct wobs;
struct mls_budget;
struct mls_ctl;

/* One assigned partition. */
struct wpart {
        char *topic;
        int32_t partition;
        struct mls_ptrack *pt;
        int64_t committed; /* last offset we asked Kafka to commit, or -1 */
        bool paused;
        struct wmsg *live;  /* messages not done, newest first */
        struct wpart *next;
};

/* One consumed message that is not done yet. */
struct wmsg {
        struct wpart *part; /* NULL once orphaned by a revoke */
        uint64_t seq;       /* handle in part->pt */
        int64_t offset;
        char *key;
        size_t key_len;
        char *value;
        size_t value_len;
        int refs;           /* batches holding it */
        bool dlq_pending;   /* produced to the dead-letter topic */
        char reject_code[16];
        char reject_reason[256]; /* first Marketo rejection; "" if none */
        char dlq_stage[16];      /* decode, route, marketo */
        struct wmsg *next;  /* in the dead-letter retry queue */
        struct wmsg *lprev; /* in part->live */
        struct wmsg *lnext;
};

/* A call given up before its answer, still counted by the budget. */
struct wb_late {
        int64_t sent_ms;
        int64_t due_ms;
        struct wb_late *next;
};

/* One Marketo instance. */
struct winst {
        struct worker *w;
        const struct mls_cfg_instance *cfg;
        struct mls_mkto *mk;
        int64_t hold_until;    /* no batch starts before (fatal, quota) */
        struct mls_budget *bud; /* our part of the shared budget */
        uint64_t gate_overdraft; /* calls sent the budget did not grant */
        int flights;           /* its lists' batches out at Marketo */
        struct wb_late *late;  /* abandoned calls in their grace */
        int64_t last_warn_ms;  /* rate limit for repeated warnings */
};

struct wbatch;

struct wjob {
        struct wbatch *batch;
        enum mls_batch_action op;
};

/* A batch being gathered, in flight, or waiting to be sent again. */
struct wbatch {
        struct wlist *list;
        struct mls_batch *b;
        struct wmsg **msgs;
        size_t msg_cnt;
        size_t msg_cap;
        int64_t first_ms;      /* when its first change arrived */
        /* Snapshot sent to Marketo, one per action; borrowed from b. */
        const char **emails[2];
        void **origins[2];
        size_t n[2];
        bool op_done[2];
        struct wjob jobs[2];
        int running;           /* jobs out at Marketo */
        unsigned attempt;
        int64_t next_try_ms;   /* waiting to be sent again after this */
        bool waiting;
        enum mls_err last_err;
};

/* One (instance, list): at most one batch in flight, one gathering. */
struct wlist {
        struct winst *inst;
        char *name;
        struct wbatch *open;
        struct wbatch *flight;
        struct wlist *hnext;
};

struct wstats {
        uint64_t consumed;
        uint64_t applied;       /* messages whose changes Marketo accepted */
        uint64_t no_email;
        uint64_t dead_lettered;
        uint64_t batches;
        uint64_t batch_retries;
        uint64_t commits;
        uint64_t commit_errors;
};

struct worker {
        const struct mls_cfg *cfg;
        rd_kafka_t *rk;        /* consumer */
        rd_kafka_t *prod;      /* dead-letter producer */
        rd_kafka_queue_t *cq;  /* consumer queue */
        int wake_fds[2];       /* consumer queue event pipe */
        struct mls_mkto_loop *loop;
        struct winst *insts;
        size_t inst_cnt;
        struct wpart *parts;
        size_t part_cnt;
        struct wlist **lists;  /* hash table */
        size_t list_cap;
        size_t list_cnt;
        struct wmsg *dlq_retry;     /* failed dead-letter deliveries */
        int64_t dlq_retry_at;
        size_t pending;        /* messages consumed, not done */
        size_t in_flight;      /* batches out at Marketo */
        bool abandoning;       /* results are being thrown away */
        bool draining;         /* flush everything now */
        int64_t last_commit_ms;
        int64_t last_full_commit_ms;
        int64_t last_stats_ms;
        char worker_id[96];
        struct wstats st;
        struct wobs *obs;      /* metrics and probes; NULL when off */
        struct mls_ctl *ctl;   /* control topic of the shared budget */
        struct mls_ctl *ctlq;  /* its daily-quota topic (<control>.quota) */
        bool bud_started;      /* control history read */
        int64_t ctl_warn_ms;   /* last "unhealthy" warning; 0 = healthy */
        long bud_day;          /* Marketo day the budgets were told */
        struct wlist **ready;  /* scratch: lists with a batch to start */
        size_t ready_cap;
};

/* worker_sync.c */
enum mls_err mls_wsync_route(struct worker *w, struct wmsg *m,
                             struct winst *inst, const char *list_name,
                             enum mls_batch_action action,
                             char *const *emails, size_t email_cnt);
int64_t mls_wsync_tick(struct worker *w, int64_t now);
void mls_wsync_abandon_all(struct worker *w);
size_t mls_wsync_busy(const struct worker *w);
void mls_wsync_destroy_lists(struct worker *w);

/* worker_obs.c: metrics and probes on worker.http_addr */
int mls_wobs_start(struct worker *w);
void mls_wobs_ready(struct worker *w);
void mls_wobs_draining(struct worker *w);
void mls_wobs_tick(struct worker *w, int64_t now);
void mls_wobs_stop(struct worker *w);

/* worker_budget.c: the shared Marketo budget */
int mls_wbud_setup(struct worker *w);
int mls_wbud_tick(struct worker *w, int64_t now);
void mls_wbud_teardown(struct worker *w);

/* worker.c, used by worker_sync.c */
void mls_worker_msg_release(struct worker *w, struct wmsg *m);

#endif
