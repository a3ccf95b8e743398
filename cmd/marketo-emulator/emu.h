/* SPDX-License-Identifier: Apache-2.0
 *
 * emu.h - internals shared by the files of the Marketo emulator: the
 * in-memory instances, the request context handlers work on, and the
 * functions each file offers the others.
 *
 * Locking: one mutex (struct emu.lock) guards every instance, the config
 * and the random generator. Functions named *_locked expect the caller to
 * hold it; handlers (emu_handler_cb) always run with it held. Only the
 * HTTP plumbing sleeps (latency, slow faults), and never while holding it.
 */
#ifndef MLS_EMU_H
#define MLS_EMU_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMU_WINDOW_MS 20000
/* Calls arriving this soon after an episode's first 606 left were sent
 * before the client could have read it: not counted as repeats. */
#define EMU_606_GRACE_MS 250
#define EMU_BATCH_MAX 300
#define EMU_BODY_MAX 1048576                   /* lead DB and asset: 1 MB */
#define EMU_URI_MAX 8192
#define EMU_BULK_FILE_MAX 10000000
#define EMU_BULK_BODY_MAX (EMU_BULK_FILE_MAX + 1048576)
#define EMU_ADMIN_BODY_MAX (64 * 1048576)
#define EMU_CALL_LOG_MAX 200000
#define EMU_TOKENS_KEPT 16
#define EMU_JOBS_KEPT 100
#define EMU_SLOW_MS 3000
#define EMU_LOOKUP_MATCH_MAX 1000
#define EMU_BROWSE_MAX 200
#define EMU_NAME_MAX 255

/* Result codes kept in counters and the call log: Marketo codes as they
 * are, HTTP-level outcomes offset so one int holds both. */
#define EMU_CODE_OK 0
#define EMU_CODE_HTTP(status) (10000 + (status))
#define EMU_CODE_DROP 20000

/* Ids start in different ranges so a client mixing them up gets a miss. */
#define EMU_FOLDER_ID_FIRST 11
#define EMU_LIST_ID_FIRST 1001
#define EMU_LEAD_ID_FIRST 100001
#define EMU_BATCH_ID_FIRST 4001

enum emu_route {
        EMU_RT_UNKNOWN = 0,
        EMU_RT_IDENTITY,
        EMU_RT_FOLDER_BYNAME,
        EMU_RT_FOLDER_GET,
        EMU_RT_SL_BYNAME,
        EMU_RT_SL_GET,
        EMU_RT_SL_BROWSE,
        EMU_RT_SL_CREATE,
        EMU_RT_SL_DELETE,
        EMU_RT_LEADS_SYNC,
        EMU_RT_LEADS_LOOKUP,
        EMU_RT_LIST_ADD,
        EMU_RT_LIST_REMOVE,
        EMU_RT_LIST_MEMBERS,
        EMU_RT_LIST_ISMEMBER,
        EMU_RT_LIST_GET,
        EMU_RT_LISTS_QUERY,
        EMU_RT_USAGE,
        EMU_RT_BULK_IMPORT,
        EMU_RT_BULK_STATUS,
        EMU_RT_BULK_FAILURES,
        EMU_RT_BULK_WARNINGS,
        EMU_RT_COUNT,
};

enum emu_dialect {
        EMU_DIALECT_LEADDB = 0, /* empty errors/warnings omitted */
        EMU_DIALECT_ASSET,      /* errors:[] and warnings:[] always */
};

enum emu_fault {
        EMU_FAULT_NONE = 0,
        EMU_FAULT_HTTP502,
        EMU_FAULT_HTTP503,
        EMU_FAULT_TIMEOUT604,
        EMU_FAULT_DROP,
        EMU_FAULT_SLOW,
        EMU_FAULT_COUNT,
};

enum emu_folder_kind {
        EMU_FK_LIST = 0,  /* Lead Database list folder, type Folder */
        EMU_FK_MARKETING, /* Marketing Activities folder, type Folder */
        EMU_FK_PROGRAM,   /* a program, type Program */
        EMU_FK_EMAIL,     /* Design Studio email folder: no lists */
        EMU_FK_COUNT,
};

struct emu_fault_rule {
        enum emu_fault kind;
        double p;
        char *path; /* substring the path must contain; NULL = any */
};

/* Settings that /_admin/faults may change at run time. */
struct emu_config {
        int64_t token_ttl_s;
        int64_t calls_per_20s;
        int64_t concurrency;
        int64_t daily_quota;
        int64_t latency_min_ms;
        int64_t latency_max_ms;
        struct emu_fault_rule *faults;
        size_t fault_cnt;
        bool reject_query_token; /* access_token parameter -> 601 */
};

/* A set of small non-negative integers (lead indexes): lazily allocated
 * 4096-bit pages, so membership costs O(1) and paging in id order only
 * walks pages that hold members. */
struct emu_idset {
        uint64_t **pages;
        size_t page_cnt;
        size_t count;
};

struct emu_folder {
        int64_t id;
        char *name;
        char *path;
        enum emu_folder_kind kind;
        int64_t parent_id; /* 0 = a root */
        bool is_system;
        bool from_cli;     /* survives /_admin/reset */
        int64_t created_wall_ms;
};

struct emu_list {
        int64_t id;
        char *name;
        char *description;
        int64_t folder_id;
        int64_t created_wall_ms;
        int64_t updated_wall_ms;
        struct emu_idset members; /* lead indexes */
};

struct emu_lead {
        char *email;
        char *email_lc;
        char *first_name;
        char *last_name;
        int64_t created_wall_ms;
        int64_t updated_wall_ms;
        uint32_t hash;
        int64_t hash_next; /* next lead index in the bucket, -1 = end */
};

struct emu_token {
        char value[48];
        int64_t expires_ms; /* emulator clock */
};

struct emu_call {
        int64_t t_ms;  /* arrival, emulator clock */
        int32_t code;  /* EMU_CODE_* or a Marketo code */
        uint16_t route;
        bool counted;  /* took a slot in the rate window */
};

struct emu_code_count {
        int32_t code;
        uint64_t n;
};

#define EMU_CODE_SLOTS 64

struct emu_counters {
        uint64_t total_calls;
        uint64_t by_route[EMU_RT_COUNT];
        struct emu_code_count errors[EMU_CODE_SLOTS];
        size_t error_cnt;
        struct emu_code_count skips[EMU_CODE_SLOTS];
        size_t skip_cnt;
        int64_t max_calls_in_20s;
        int64_t max_concurrency;
        int64_t repeat_606;
        int64_t last_606_ms; /* when the last 606 reply left; -1 = none */
        int64_t first_606_ms; /* first 606 of the current episode; -1 */
};

enum emu_job_status {
        EMU_JOB_QUEUED = 0,
        EMU_JOB_IMPORTING,
        EMU_JOB_COMPLETE,
        EMU_JOB_FAILED,
};

struct emu_job {
        int64_t batch_id;
        enum emu_job_status status;
        char delim;
        bool lookup_id;       /* lookupField=id, else email */
        int64_t list_id;      /* 0 = none */
        char *data;           /* the file; freed once processed */
        size_t data_len;
        int64_t queued_ms;
        int64_t started_ms;
        int64_t processed;
        int64_t failed;
        int64_t warned;
        int64_t members;
        char *failures;       /* file text, header + reason column */
        size_t failures_len;
        char *warnings;
        size_t warnings_len;
        char *message;
};

struct emu_instance {
        char *munchkin;
        char *client_id;
        char *secret;

        struct emu_folder *folders;
        size_t folder_cnt, folder_cap;
        int64_t next_folder_id;

        struct emu_list **lists;
        size_t list_cnt, list_cap;
        int64_t next_list_id;

        struct emu_lead *leads;      /* index = id - lead_id_base */
        size_t lead_cnt, lead_cap;
        int64_t lead_id_base;
        int64_t *buckets;            /* email hash -> first lead index */
        size_t bucket_cnt;

        struct emu_token tokens[EMU_TOKENS_KEPT];
        size_t token_cnt;            /* ring: newest at token_cnt - 1 */
        size_t token_head;

        int64_t *window;             /* arrival times, ring */
        size_t win_head, win_len, win_cap;
        int64_t in_flight;
        int64_t quota_day;
        int64_t quota_used;

        struct emu_counters cnt;
        struct emu_call *log;        /* ring of EMU_CALL_LOG_MAX */
        size_t log_head, log_len;
        uint64_t log_dropped;

        struct emu_job **jobs;
        size_t job_cnt, job_cap;
        int64_t next_batch_id;
};

struct emu {
        pthread_mutex_t lock;
        struct emu_config cfg;
        struct emu_instance **inst;
        size_t inst_cnt;
        uint64_t rng;
        int64_t epoch_ms; /* mls_now_ms() at start */
};

struct emu_param {
        char *key;
        char *val;
};

/* One HTTP request as the plumbing collected it. */
struct emu_req {
        char *uri;              /* raw request target, owned */
        char method[16];        /* after a _method=GET override */
        const char *ctype;      /* Content-Type, "" when absent */
        const char *authz;      /* Authorization, NULL when absent */
        char *body;             /* NUL-terminated, owned */
        size_t body_len, body_cap, body_limit;
        bool too_big;
        bool started;
        struct emu_param *params; /* query first, then a form body */
        size_t param_cnt, param_cap;
};

/* What a handler sees and fills in. Outputs start zeroed. */
struct emu_ctx {
        struct emu *e;
        struct emu_instance *in;
        struct emu_req *rq;
        enum emu_route route;
        enum emu_dialect dialect;
        const char *path;      /* decoded, after /<munchkin>: "/rest/v1/..." */
        int64_t path_id;       /* the {id} in the path, 0 if none */
        int64_t now_ms;        /* emulator clock */
        int64_t wall_ms;

        int err_code;          /* request-level error, 0 = success */
        char err_msg[256];
        json_object *result;   /* owned; NULL = no result key */
        json_object *warnings; /* asset dialect: array of strings */
        char next_page_token[64];

        /* A reply that is not an envelope (CSV, plain text). */
        int raw_status;
        char *raw_body;
        size_t raw_len;
        const char *raw_ctype;
};

typedef void emu_handler_cb(struct emu_ctx *c);

/* ---- http.c ---------------------------------------------------------- */

/** Start libmicrohttpd on an already bound listening socket.
 *  @returns the daemon, or NULL with errstr set. */
struct MHD_Daemon *emu_http_start(struct emu *e, int listen_fd,
                                  char *errstr, size_t errstr_size);

/** First value of key among the query and form parameters, or NULL.
 *  Borrowed; valid for the request. */
const char *emu_param(const struct emu_req *rq, const char *key);

/* Optional integer parameter key (dflt when absent or empty); fails the
 * call with 1003 on junk or a value outside [lo, hi]. */
bool emu_int_param(struct emu_ctx *c, const char *key, int64_t dflt,
                   int64_t lo, int64_t hi, int64_t *out);

/** Set a request-level error on c (HTTP 200, success:false). */
void emu_fail(struct emu_ctx *c, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/** Add an asset-dialect warning string. */
void emu_warn(struct emu_ctx *c, const char *msg);

/** Append a record to c->result, creating the array. Takes ownership. */
void emu_result_add(struct emu_ctx *c, json_object *item);

/** Parse a whole JSON document; NULL when malformed. Caller owns it. */
json_object *emu_json_parse(const char *buf, size_t len);

/** True when the Content-Type's media type equals type (no params). */
bool emu_ctype_is(const char *ctype, const char *type);

/** Strict decimal parse; false on junk, overflow or an empty string. */
bool emu_parse_i64(const char *s, int64_t *out);

/** Percent-decode n bytes of s; plus_space turns '+' into ' '.
 *  @returns a new string (caller frees) or NULL on allocation failure. */
char *emu_url_decode(const char *s, size_t n, bool plus_space);

/** Parse "k=v&k2=v2" (form encoding) and append to rq's parameters. */
int emu_params_parse(struct emu_req *rq, const char *s, size_t n);

/* ---- limits.c: clock, randomness, auth, limits, faults, counters ----- */

int64_t emu_now_ms(const struct emu *e);
uint64_t emu_rand_locked(struct emu *e);
double emu_rand_unit_locked(struct emu *e);

/** Day number (days since 1970-01-01) of America/Chicago local time. */
int64_t emu_central_day(int64_t wall_ms);

/** "YYYY-MM-DD" of a day number. buf >= 11 bytes. */
void emu_day_str(int64_t day, char *buf, size_t size);

/** Dates in each dialect: asset "...Z+0000", lead DB "...Z". */
void emu_date_str(int64_t wall_ms, bool asset, char *buf, size_t size);

/** Handle /identity/oauth/token; fills a raw reply. */
void emu_identity(struct emu_ctx *c);

/** 0 when the Authorization header names a live token of c->in, else
 *  600/601/602 with c's error set. query_token: access_token was in the
 *  query string or form (rejected with 601). */
int emu_auth_check_locked(struct emu_ctx *c, bool query_token);

/** Rate, quota and concurrency gate for one REST call arriving at now.
 *  @returns 0 (call admitted, in flight) or 606/607/615 with c's error
 *  set. *counted tells whether the call took a rate-window slot. */
int emu_admit_locked(struct emu_ctx *c, bool *counted);

/** The admitted call has finished. */
void emu_release_locked(struct emu_instance *in);

/** Draw the faults for one call on path. *slow: hold the reply;
 *  *apply: run the operation (false only for some failure faults). */
enum emu_fault emu_fault_draw_locked(struct emu *e, const char *path,
                                     bool identity, bool *slow,
                                     bool *apply);

/** Random latency for one REST call, in ms. */
int64_t emu_latency_draw_locked(struct emu *e);

/** Parse a --fault KIND=P[@SUBSTRING] argument into cfg. */
int emu_fault_parse_arg(struct emu_config *cfg, const char *arg,
                        char *errstr, size_t errstr_size);

/** Name of a fault kind ("http502"...). */
const char *emu_fault_name(enum emu_fault f);

/** Look up a fault kind by name; EMU_FAULT_NONE when unknown. */
enum emu_fault emu_fault_by_name(const char *name);

/** Free every fault rule of cfg. */
void emu_faults_clear(struct emu_config *cfg);

/** Record one finished call in counters and the call log. */
void emu_count_call_locked(struct emu_instance *in, enum emu_route route,
                           int code, int64_t t_ms, bool counted);

/** Count a record-level skip reason (1004, 1015...). */
void emu_count_skip_locked(struct emu_instance *in, int code);

/** Counter key of a result code: "606", "http_502", "drop". */
void emu_code_str(int code, char *buf, size_t size);

/** Route names for counters: "leads.sync"... */
const char *emu_route_name(enum emu_route rt);

/* ---- store.c: instances, folders, lists, leads, id sets ------------- */

/** Parse MUNCHKIN:CLIENT_ID:SECRET[:FOLDER[,FOLDER...]] into a new
 *  instance with its system and command-line folders. Caller owns it. */
struct emu_instance *emu_instance_new(const char *spec, char *errstr,
                                      size_t errstr_size);
void emu_instance_destroy(struct emu_instance *in);
struct emu_instance *emu_instance_find(struct emu *e, const char *munchkin);

/** Clear leads, lists, seeded folders, tokens, counters, quota, jobs. */
void emu_instance_reset_locked(struct emu_instance *in);

bool emu_idset_has(const struct emu_idset *s, size_t i);
int emu_idset_add(struct emu_idset *s, size_t i);
void emu_idset_del(struct emu_idset *s, size_t i);
/** Smallest member >= from; -1 when none. */
int64_t emu_idset_next(const struct emu_idset *s, size_t from);
void emu_idset_fini(struct emu_idset *s);

/** Add a folder; path is built from the parent or the kind's root.
 *  @returns the folder (borrowed) or NULL on allocation failure. */
struct emu_folder *emu_folder_add_locked(struct emu_instance *in,
                                         const char *name,
                                         enum emu_folder_kind kind,
                                         int64_t parent_id, bool is_system,
                                         bool from_cli, int64_t wall_ms);
struct emu_folder *emu_folder_find(struct emu_instance *in, int64_t id);
const char *emu_folder_kind_name(enum emu_folder_kind k);
/** "list", "marketing", "program", "email"; -1 when unknown. */
int emu_folder_kind_parse(const char *s);
bool emu_folder_is_program(const struct emu_folder *f);
bool emu_folder_holds_lists(const struct emu_folder *f);
/** Parent folder id for a new folder of kind when none is given. */
int64_t emu_folder_home(enum emu_folder_kind kind);

struct emu_list *emu_list_add_locked(struct emu_instance *in,
                                     const char *name, int64_t folder_id,
                                     const char *description,
                                     int64_t wall_ms);
struct emu_list *emu_list_find(struct emu_instance *in, int64_t id);
/** Case-insensitive name match (names are unique per instance). */
struct emu_list *emu_list_find_name(struct emu_instance *in,
                                    const char *name);
void emu_list_delete_locked(struct emu_instance *in, int64_t id);

/** True for an email Marketo would accept: ASCII, one '@', no spaces. */
bool emu_email_valid(const char *email);

/** Create a lead. @returns its index, or -1 on allocation failure. */
int64_t emu_lead_add_locked(struct emu_instance *in, const char *email,
                            const char *first_name, const char *last_name,
                            int64_t wall_ms);
/** Indexes of leads whose email matches case-insensitively, oldest
 *  first, at most max stored. @returns the total match count. */
size_t emu_lead_find_locked(struct emu_instance *in, const char *email,
                            int64_t *idx, size_t max);
/** Index of a lead id, -1 when unknown. */
int64_t emu_lead_index(const struct emu_instance *in, int64_t id);
int64_t emu_lead_id(const struct emu_instance *in, int64_t idx);
/** Set a name field (takes a copy; NULL leaves it). */
void emu_lead_update_locked(struct emu_instance *in, int64_t idx,
                            const char *first_name, const char *last_name,
                            int64_t wall_ms);

/* ---- assets.c, leads.c, bulk.c: handlers ---------------------------- */

void emu_folder_by_name(struct emu_ctx *c);
void emu_folder_get(struct emu_ctx *c);
void emu_sl_by_name(struct emu_ctx *c);
void emu_sl_get(struct emu_ctx *c);
void emu_sl_browse(struct emu_ctx *c);
void emu_sl_create(struct emu_ctx *c);
void emu_sl_delete(struct emu_ctx *c);
/** Parse a JSON folder reference {"id":N,"type":"Folder|Program"}.
 *  @returns the folder or NULL (*bad set when the text is malformed). */
struct emu_folder *emu_folder_ref_locked(struct emu_instance *in,
                                         const char *text, bool *bad);

void emu_leads_sync(struct emu_ctx *c);
void emu_leads_lookup(struct emu_ctx *c);
void emu_list_addrm(struct emu_ctx *c);
void emu_list_members(struct emu_ctx *c);
void emu_list_ismember(struct emu_ctx *c);
void emu_list_get(struct emu_ctx *c);
void emu_lists_query(struct emu_ctx *c);
void emu_usage(struct emu_ctx *c);

void emu_bulk_import(struct emu_ctx *c);
void emu_bulk_status(struct emu_ctx *c);
void emu_bulk_file(struct emu_ctx *c);
/** Advance every import job (Queued -> Importing -> done). */
void emu_bulk_tick_locked(struct emu *e);
void emu_job_destroy(struct emu_job *j);
/** True when an unfinished import targets list_id. */
bool emu_bulk_list_busy_locked(struct emu_instance *in, int64_t list_id);

/* ---- admin.c --------------------------------------------------------- */

/** Serve /_admin/<what>. Fills status, body (caller frees) and type. */
void emu_admin(struct emu *e, struct emu_req *rq, const char *what,
               int *status, char **body, size_t *len);

#endif
