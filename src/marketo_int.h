/* SPDX-License-Identifier: Apache-2.0
 *
 * marketo_int.h - internals of the Marketo client shared by its source
 * files and its unit tests: buffers, request builders, reply parsers and
 * the pure reply classification.
 */
#ifndef MLS_MARKETO_INT_H
#define MLS_MARKETO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* ---- growable string ---- */

/** A NUL-terminated growable string; oom sticks once set. */
struct mkto_buf {
        char *data;
        size_t len;
        size_t cap;
        bool oom;
};

void mkto_buf_init(struct mkto_buf *b);
/** Free the storage, wiping it first (buffers may hold secrets). */
void mkto_buf_fini(struct mkto_buf *b);
void mkto_buf_add(struct mkto_buf *b, const char *s, size_t n);
void mkto_buf_adds(struct mkto_buf *b, const char *s);
void mkto_buf_addf(struct mkto_buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/** Append s percent-encoded: only A-Z a-z 0-9 - . _ ~ stay as they are. */
void mkto_buf_urlenc(struct mkto_buf *b, const char *s);
/**
 * @returns the string (caller owns it, free) and resets b, or NULL when
 *          an allocation failed (b is then reset too).
 */
char *mkto_buf_take(struct mkto_buf *b);

/* ---- request builders (caller owns the result, free; NULL = no memory) */

/** createOrUpdate keyed on email: {"action":...,"input":[{"email":..}]} */
char *mkto_body_sync(const char *const *emails, size_t cnt);
/** {"input":[{"id":N},...]} for list membership calls. */
char *mkto_body_ids(const int64_t *ids, size_t cnt);
/** Form body for POST leads.json?_method=GET by email; page may be NULL. */
char *mkto_form_lookup(const char *const *emails, size_t cnt,
                       const char *page_token);
/** Form body of the client_credentials grant. Holds the secret: wipe. */
char *mkto_form_token(const char *client_id, const char *client_secret);
/** Form body creating a static list in folder {id, type}. */
char *mkto_form_create_list(const char *name, int64_t folder_id,
                            const char *folder_type);

/* ---- reply envelope ---- */

/** A parsed Marketo reply. */
struct mkto_env {
        json_object *root;   /* owned; mkto_env_fini drops it */
        bool json_ok;        /* a JSON object with a boolean "success" */
        bool success;
        char code[16];       /* first errors[] code, "" when none */
        char message[192];   /* its message, emails scrubbed */
        json_object *result; /* borrowed from root; NULL when absent */
};

/** Parse body (len bytes, need not be NUL-terminated). Never fails:
 *  an unusable body leaves json_ok false. */
void mkto_env_parse(struct mkto_env *env, const char *body, size_t len);
void mkto_env_fini(struct mkto_env *env);

/* ---- classification (pure) ---- */

/** What to do with one reply as a whole. */
enum mkto_class {
        MKTO_C_OK = 0, /* executed; records may still be skipped */
        MKTO_C_REAUTH, /* 600/601/602: new token, resend once */
        MKTO_C_RETRY,  /* back off and resend: 5xx, 604, transport ... */
        MKTO_C_RATE,   /* 606: hold the instance until the window clears */
        MKTO_C_CONC,   /* 615: short hold, then resend */
        MKTO_C_QUOTA,  /* 607: nothing until the daily reset */
        MKTO_C_FATAL,  /* needs a fix on the instance or in config */
};

const char *mkto_class_name(enum mkto_class cls);

/**
 * Classify a REST reply.
 * @param http_status  HTTP status, 0 when no reply arrived.
 * @param transport    libcurl result (0 = CURLE_OK).
 * @param env          The parsed body (may be unusable).
 * @param code         Set to the short code for reports: "606",
 *                     "http_502", "curl_28", "bad_reply".
 * @thread any; no shared state.
 */
enum mkto_class mkto_classify(long http_status, int transport,
                              const struct mkto_env *env, char *code,
                              size_t code_size);

/**
 * Classify an identity (oauth/token) reply and, on MKTO_C_OK, extract
 * the token and its remaining lifetime. Only OK, RETRY or FATAL result.
 * @param token  Receives the access token (never logged).
 * @param code   "http_401", "curl_7", "bad_reply" ...
 */
enum mkto_class mkto_classify_identity(long http_status, int transport,
                                       const char *body, size_t len,
                                       char *token, size_t token_size,
                                       int64_t *expires_in_s, char *code,
                                       size_t code_size);

/** The call a record result came from. */
enum mkto_rec_op {
        MKTO_OP_SYNC = 0, /* createOrUpdate */
        MKTO_OP_ADD,      /* add to list */
        MKTO_OP_REMOVE,   /* remove from list */
};

/** What one record of a reply means for its email. */
enum mkto_rec {
        MKTO_REC_DONE = 0,  /* applied (or nothing to do) */
        MKTO_REC_REJECT,    /* refused: report it with its reason */
        MKTO_REC_DUP,       /* 1007: several leads share the email */
        MKTO_REC_VANISHED,  /* 1004 on add: lead gone, retry the job */
};

enum mkto_rec mkto_classify_record(enum mkto_rec_op op, const char *status,
                                   const char *reason_code);

/* ---- reply parsers ---- */

/** One entry of result[]; strings are borrowed from the reply. */
struct mkto_rec_item {
        int64_t id;          /* 0 when absent */
        const char *status;  /* "" when absent */
        const char *code;    /* first reason code, "" when none */
        const char *message; /* first reason message, "" when none */
        char code_buf[16];   /* storage when the code is a number */
};

/** @returns 0, or -1 when result[i] is missing or not an object. */
int mkto_rec_get(json_object *result, size_t i, struct mkto_rec_item *it);

/**
 * Choose the folder for static lists among byName results: Lead Database
 * list folders first (folderType "List" or path under "/Lead Database"),
 * then any other Folder or Program; lowest id within the first non-empty
 * group.
 * @param type       Receives "Folder" or "Program".
 * @param cand_cnt   Receives how many results were in the chosen group.
 * @returns 0, or -1 when nothing usable matched.
 */
int mkto_pick_folder(json_object *result, int64_t *idp, char *type,
                     size_t type_size, size_t *cand_cnt);

/**
 * Read the static list of a byName or create reply.
 * @returns 0 with id and folder filled, or -1 when result holds none.
 */
int mkto_parse_list(json_object *result, int64_t *idp, int64_t *folder_idp,
                    char *folder_type, size_t folder_type_size);

/** Copy s into out, each whitespace/quote-delimited word holding '@'
 *  replaced by "<email>", so Marketo messages can be reported safely. */
void mkto_scrub(const char *s, char *out, size_t out_size);

/* ---- daily reset ---- */

/**
 * Next midnight America/Chicago after wall_ms (ms since the epoch),
 * by the US rule since 2007: CDT (UTC-5) from the second Sunday of March
 * 02:00 to the first Sunday of November 02:00, CST (UTC-6) otherwise.
 */
int64_t mkto_next_reset_wall_ms(int64_t wall_ms);

#endif
