/* SPDX-License-Identifier: Apache-2.0
 *
 * gen.h - audience-gen internals: the deterministic random source, the
 * simulated world (instances, audiences, users), the ordered plan of
 * messages, and rendering one plan entry into a Kafka key and payload.
 */
#ifndef MLS_AUDIENCE_GEN_H
#define MLS_AUDIENCE_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_MAX_INSTANCES 64
#define GEN_MAX_AUDIENCES 1000
#define GEN_MAX_EMAILS 3

/* Deterministic generator (splitmix64): the same seed gives the same
 * stream on every platform. */
struct gen_rng {
        uint64_t s;
};

void gen_rng_seed(struct gen_rng *g, uint64_t seed);
uint64_t gen_rng_next(struct gen_rng *g);
/** Uniform in [0, n); n > 0. */
uint32_t gen_rng_below(struct gen_rng *g, uint32_t n);
/** True with probability p. */
bool gen_rng_chance(struct gen_rng *g, double p);

struct gen_opts {
        const char *instances[GEN_MAX_INSTANCES];
        size_t instance_cnt;
        const char *unknown_instance;
        long audiences;
        long users;
        long events;
        uint64_t seed;
        double segment_share;
        double multi_email_share;
        double no_email_share;
        double invalid_email_share;
        double duplicate_share;
        long malformed;
        long unknown;
};

enum gen_user_kind {
        GEN_USER_REGULAR = 0,
        GEN_USER_NO_EMAIL, /* events carry no email at all */
        GEN_USER_INVALID,  /* one add event, holding an email Marketo rejects */
};

struct gen_user {
        uint32_t inst;
        uint8_t kind;
        uint8_t email_cnt; /* valid emails, 0..GEN_MAX_EMAILS */
};

struct gen_audience {
        char name[64];  /* "Churn Risk" */
        char key[64];   /* "churn_risk": Segment computation_key */
        char id[40];    /* "aud_..." : Segment computation_id */
        /* Named audiences carry their name in every format, so all land in
         * the list "<name>"; keyed ones never do, so all land in "<key>"
         * (native events then use the key as audience.id). */
        bool named;
};

enum gen_msg_kind {
        GEN_MSG_MEMBER = 0, /* a valid membership change */
        GEN_MSG_INVALID,    /* add holding an invalid email (Marketo DLQ) */
        GEN_MSG_MALFORMED,  /* undecodable (decode DLQ) */
        GEN_MSG_UNKNOWN,    /* valid, keyed by the unknown instance */
};

enum gen_fmt {
        GEN_FMT_NATIVE = 0,
        GEN_FMT_IDENTIFY,
        GEN_FMT_TRACK,
};

/* One message of the plan. Rendering depends only on these fields and the
 * world, so a duplicate (a copy of the entry) renders to the same bytes. */
struct gen_msg {
        uint64_t rseed;  /* per-message randomness for rendering */
        uint64_t order;  /* sort key while the plan is built */
        uint32_t serial; /* creation index: breaks ties in order */
        uint32_t user;   /* index; for GEN_MSG_UNKNOWN a serial number */
        uint32_t seq;    /* index of the original event: its timestamp */
        int32_t inst;    /* instance index; -1 for the unknown instance */
        uint16_t aud;
        uint8_t kind;
        uint8_t fmt;
        bool add;
        bool dup;        /* a second copy of an earlier message */
};

struct gen_world {
        const struct gen_opts *o;
        struct gen_audience *auds;
        size_t aud_cnt;
        struct gen_user *users;
        size_t user_cnt;
        struct gen_msg *plan; /* in produce order */
        size_t plan_cnt;
        /* Counts over the plan, for the --expect file. */
        long member_cnt, dup_cnt, invalid_cnt, malformed_cnt, unknown_cnt;
        long no_email_cnt;
        long by_instance[GEN_MAX_INSTANCES + 1]; /* last: unknown */
};

/**
 * Build the world and the whole ordered plan from o (borrowed; must
 * outlive w). @returns 0, or -1 on out of memory.
 */
int gen_world_build(struct gen_world *w, const struct gen_opts *o);

void gen_world_fini(struct gen_world *w);

/** Marketo list name that audience a lands in. Borrowed from w. */
const char *gen_list_name(const struct gen_world *w, uint16_t a);

/**
 * The valid email number k (0-based, canonical lower-case) of user u,
 * written to out. For GEN_USER_INVALID users, k 0 is their optional valid
 * address.
 */
void gen_user_email(const struct gen_world *w, uint32_t u, unsigned k,
                    char *out, size_t out_size);

/**
 * The invalid email of GEN_USER_INVALID user u (Marketo rejects it),
 * written to out.
 */
void gen_user_bad_email(const struct gen_world *w, uint32_t u, char *out,
                        size_t out_size);

/** Stable per-user number mixed from the seed (anonymous ids). */
uint64_t gen_user_hash(const struct gen_world *w, uint32_t u);

/**
 * Final membership after the whole plan, as a JSON object text
 * {"<instance>": {"<list>": [emails, sorted]}}. Caller owns it (free);
 * NULL on out of memory.
 */
char *gen_final_json(const struct gen_world *w);

/**
 * Render plan entry m: its key (borrowed from the options) and payload
 * (caller owns, free). @returns the payload, or NULL on out of memory.
 */
char *gen_render(const struct gen_world *w, const struct gen_msg *m,
                 const char **keyp, size_t *lenp);

#endif
