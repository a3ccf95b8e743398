/* SPDX-License-Identifier: Apache-2.0
 *
 * marketo_util.c - the I/O-free half of the Marketo client: growable
 * strings, request bodies, reply parsing and the mapping of Marketo's
 * answers (HTTP status, envelope codes, per-record reasons) to actions.
 *
 * Codes and their treatment follow docs/marketo-api.md section 3.3; where
 * that table is unsure, the reading that cannot lose or duplicate data and
 * cannot hammer the instance is taken, and the spot says so.
 */
#include "marketo_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

/* ---- growable string ---- */

#define BUF_MIN_CAP 64

void mkto_buf_init(struct mkto_buf *b)
{
        memset(b, 0, sizeof(*b));
}

void mkto_buf_fini(struct mkto_buf *b)
{
        if (b->data) {
                explicit_bzero(b->data, b->cap);
                free(b->data);
        }
        mkto_buf_init(b);
}

/* Make room for extra more bytes plus the NUL. The old storage is wiped
 * before it is freed (no realloc) because buffers carry secrets.
 * @returns 0, or -1 with oom set. */
static int buf_reserve(struct mkto_buf *b, size_t extra)
{
        size_t need;
        size_t ncap;
        char *n;

        if (b->oom)
                return -1;
        if (extra > SIZE_MAX - b->len - 1)
                goto oom;
        need = b->len + extra + 1;
        if (need <= b->cap)
                return 0;
        ncap = b->cap ? b->cap : BUF_MIN_CAP;
        while (ncap < need)
                ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
        n = malloc(ncap);
        if (!n)
                goto oom;
        if (b->data) {
                memcpy(n, b->data, b->len + 1);
                explicit_bzero(b->data, b->cap);
                free(b->data);
        } else {
                n[0] = '\0';
        }
        b->data = n;
        b->cap = ncap;
        return 0;
oom:
        b->oom = true;
        return -1;
}

void mkto_buf_add(struct mkto_buf *b, const char *s, size_t n)
{
        if (buf_reserve(b, n) < 0)
                return;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
}

void mkto_buf_adds(struct mkto_buf *b, const char *s)
{
        mkto_buf_add(b, s, strlen(s));
}

void mkto_buf_addf(struct mkto_buf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        if (buf_reserve(b, (size_t)n) < 0)
                return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
}

static bool url_unreserved(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
               c == '~';
}

void mkto_buf_urlenc(struct mkto_buf *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                char esc[3];

                if (url_unreserved(c)) {
                        mkto_buf_add(b, s, 1);
                        continue;
                }
                esc[0] = '%';
                esc[1] = hex[c >> 4];
                esc[2] = hex[c & 15];
                mkto_buf_add(b, esc, 3);
        }
}

char *mkto_buf_take(struct mkto_buf *b)
{
        char *s;

        if (b->oom) {
                mkto_buf_fini(b);
                return NULL;
        }
        s = b->data ? b->data : calloc(1, 1);
        mkto_buf_init(b);
        return s;
}

/* ---- request builders ---- */

/* Serialise root compactly. @returns a copy the caller owns, or NULL. */
static char *json_dup(json_object *root)
{
        const char *text;

        text = json_object_to_json_string_ext(
                root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        return text ? strdup(text) : NULL;
}

/* Add {key: value} as a new object to arr. @returns 0, or -1 (no memory). */
static int add_item(json_object *arr, const char *key, json_object *val)
{
        json_object *item;

        if (!val)
                return -1;
        item = json_object_new_object();
        if (!item) {
                json_object_put(val);
                return -1;
        }
        if (json_object_object_add(item, key, val) < 0) {
                json_object_put(val);
                json_object_put(item);
                return -1;
        }
        if (json_object_array_add(arr, item) < 0) {
                json_object_put(item);
                return -1;
        }
        return 0;
}

/* Attach a fresh "input" array to root. @returns it (borrowed) or NULL. */
static json_object *add_input(json_object *root)
{
        json_object *arr = json_object_new_array();

        if (!arr)
                return NULL;
        if (json_object_object_add(root, "input", arr) < 0) {
                json_object_put(arr);
                return NULL;
        }
        return arr;
}

static int add_str(json_object *obj, const char *key, const char *val)
{
        json_object *s = json_object_new_string(val);

        if (!s)
                return -1;
        if (json_object_object_add(obj, key, s) < 0) {
                json_object_put(s);
                return -1;
        }
        return 0;
}

char *mkto_body_sync(const char *const *emails, size_t cnt)
{
        json_object *root = json_object_new_object();
        json_object *arr;
        char *body = NULL;

        if (!root)
                return NULL;
        if (add_str(root, "action", "createOrUpdate") < 0 ||
            add_str(root, "lookupField", "email") < 0)
                goto out;
        arr = add_input(root);
        if (!arr)
                goto out;
        for (size_t i = 0; i < cnt; i++) {
                if (add_item(arr, "email",
                             json_object_new_string(emails[i])) < 0)
                        goto out;
        }
        body = json_dup(root);
out:
        json_object_put(root);
        return body;
}

char *mkto_body_ids(const int64_t *ids, size_t cnt)
{
        json_object *root = json_object_new_object();
        json_object *arr;
        char *body = NULL;

        if (!root)
                return NULL;
        arr = add_input(root);
        if (!arr)
                goto out;
        for (size_t i = 0; i < cnt; i++) {
                if (add_item(arr, "id", json_object_new_int64(ids[i])) < 0)
                        goto out;
        }
        body = json_dup(root);
out:
        json_object_put(root);
        return body;
}

/*
 * filterValues is one comma-separated list: the commas between values stay
 * literal, everything inside a value is encoded (a '+' left raw would read
 * as a space and miss the lead; a ',' inside an address must not split it).
 * _method=GET rides in the body too, next to the one in the URL, so the
 * form means the same whichever of the two the server reads.
 */
char *mkto_form_lookup(const char *const *emails, size_t cnt,
                       const char *page_token)
{
        struct mkto_buf b;

        mkto_buf_init(&b);
        mkto_buf_adds(&b, "_method=GET&filterType=email&filterValues=");
        for (size_t i = 0; i < cnt; i++) {
                if (i > 0)
                        mkto_buf_adds(&b, ",");
                mkto_buf_urlenc(&b, emails[i]);
        }
        mkto_buf_adds(&b, "&fields=id,email");
        if (page_token && *page_token) {
                mkto_buf_adds(&b, "&nextPageToken=");
                mkto_buf_urlenc(&b, page_token);
        }
        return mkto_buf_take(&b);
}

char *mkto_form_token(const char *client_id, const char *client_secret)
{
        struct mkto_buf b;

        mkto_buf_init(&b);
        mkto_buf_adds(&b, "grant_type=client_credentials&client_id=");
        mkto_buf_urlenc(&b, client_id);
        mkto_buf_adds(&b, "&client_secret=");
        mkto_buf_urlenc(&b, client_secret);
        return mkto_buf_take(&b);
}

char *mkto_form_create_list(const char *name, int64_t folder_id,
                            const char *folder_type)
{
        json_object *folder = json_object_new_object();
        json_object *id = json_object_new_int64(folder_id);
        const char *text = NULL;
        struct mkto_buf b;

        mkto_buf_init(&b);
        if (!folder || !id) {
                json_object_put(folder);
                json_object_put(id);
                return NULL;
        }
        if (json_object_object_add(folder, "id", id) < 0) {
                json_object_put(id);
                json_object_put(folder);
                return NULL;
        }
        if (add_str(folder, "type", folder_type) == 0)
                text = json_object_to_json_string_ext(
                        folder, JSON_C_TO_STRING_PLAIN |
                                        JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text) {
                json_object_put(folder);
                return NULL;
        }
        mkto_buf_adds(&b, "name=");
        mkto_buf_urlenc(&b, name);
        mkto_buf_adds(&b, "&folder=");
        mkto_buf_urlenc(&b, text);
        json_object_put(folder);
        return mkto_buf_take(&b);
}

/* ---- reply envelope ---- */

/* Copy a code that may be a JSON string or integer into out ("" if
 * neither). @returns out. */
static const char *code_text(json_object *v, char *out, size_t out_size)
{
        out[0] = '\0';
        if (json_object_is_type(v, json_type_string))
                snprintf(out, out_size, "%s", json_object_get_string(v));
        else if (json_object_is_type(v, json_type_int))
                snprintf(out, out_size, "%lld",
                         (long long)json_object_get_int64(v));
        return out;
}

/* Parse exactly body[0..len), allowing only trailing whitespace.
 * @returns the value (caller owns it), or NULL. */
static json_object *parse_all(const char *body, size_t len)
{
        json_tokener *tok;
        json_object *root;
        size_t end;

        if (!body || len == 0 || len > INT_MAX)
                return NULL;
        tok = json_tokener_new();
        if (!tok)
                return NULL;
        root = json_tokener_parse_ex(tok, body, (int)len);
        if (root && json_tokener_get_error(tok) == json_tokener_success) {
                end = json_tokener_get_parse_end(tok);
                while (end < len && isspace((unsigned char)body[end]))
                        end++;
                if (end != len) {
                        json_object_put(root);
                        root = NULL;
                }
        } else {
                json_object_put(root);
                root = NULL;
        }
        json_tokener_free(tok);
        return root;
}

/* Fill code and message from errors[0]; an absent or odd entry leaves
 * them empty. */
static void env_first_error(struct mkto_env *env)
{
        json_object *errs = NULL;
        json_object *e;
        json_object *v = NULL;

        if (!json_object_object_get_ex(env->root, "errors", &errs) ||
            !json_object_is_type(errs, json_type_array) ||
            json_object_array_length(errs) == 0)
                return;
        e = json_object_array_get_idx(errs, 0);
        if (!json_object_is_type(e, json_type_object))
                return;
        if (json_object_object_get_ex(e, "code", &v))
                code_text(v, env->code, sizeof(env->code));
        if (json_object_object_get_ex(e, "message", &v) &&
            json_object_is_type(v, json_type_string))
                mkto_scrub(json_object_get_string(v), env->message,
                           sizeof(env->message));
}

void mkto_env_parse(struct mkto_env *env, const char *body, size_t len)
{
        json_object *v = NULL;

        memset(env, 0, sizeof(*env));
        env->root = parse_all(body, len);
        if (!json_object_is_type(env->root, json_type_object))
                return;
        if (!json_object_object_get_ex(env->root, "success", &v) ||
            !json_object_is_type(v, json_type_boolean))
                return;
        env->json_ok = true;
        env->success = json_object_get_boolean(v);
        env_first_error(env);
        /* Only an array is handed out, so callers can index it blindly;
         * the asset API's "nothing found" has no result key at all. */
        if (json_object_object_get_ex(env->root, "result", &v) &&
            json_object_is_type(v, json_type_array))
                env->result = v;
}

void mkto_env_fini(struct mkto_env *env)
{
        json_object_put(env->root);
        memset(env, 0, sizeof(*env));
}

/* ---- classification ---- */

const char *mkto_class_name(enum mkto_class cls)
{
        switch (cls) {
        case MKTO_C_OK:
                return "ok";
        case MKTO_C_REAUTH:
                return "reauth";
        case MKTO_C_RETRY:
                return "retry";
        case MKTO_C_RATE:
                return "rate";
        case MKTO_C_CONC:
                return "concurrency";
        case MKTO_C_QUOTA:
                return "quota";
        case MKTO_C_FATAL:
                return "fatal";
        }
        return "unknown";
}

static void set_code(char *code, size_t code_size, const char *text)
{
        if (code && code_size > 0)
                snprintf(code, code_size, "%s", text);
}

static void set_code_num(char *code, size_t code_size, const char *prefix,
                         long v)
{
        if (code && code_size > 0)
                snprintf(code, code_size, "%s_%ld", prefix, v);
}

/*
 * A failed transfer. Most curl failures are network trouble and are
 * retried (the doc: network errors and timeouts, curl_28, are retryable;
 * whether the call ran is unknown, which membership calls tolerate). The
 * few that can only come from our own build or URL never heal by waiting.
 */
static enum mkto_class classify_transport(int transport, char *code,
                                          size_t code_size)
{
        set_code_num(code, code_size, "curl", transport);
        switch (transport) {
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_NOT_BUILT_IN:
                return MKTO_C_FATAL;
        default:
                return MKTO_C_RETRY;
        }
}

/* Statuses other than 2xx on a REST call (errors normally ride on 200). */
static enum mkto_class classify_http(long http_status)
{
        if (http_status >= 500 || http_status == 408)
                return MKTO_C_RETRY; /* 500/502: doc class R (bounded) */
        if (http_status == 429)
                return MKTO_C_RATE; /* undocumented; a gateway throttle */
        if (http_status == 401)
                return MKTO_C_REAUTH; /* token refused at the gateway */
        /* 413/414 (class S) cannot happen with our 300-record batches and
         * form-body lookups; if one does, resending would fail the same
         * way, so it is fatal. 403, 404 and other 4xx need a fix too. */
        return MKTO_C_FATAL;
}

struct code_class {
        const char *code;
        enum mkto_class cls;
};

/*
 * Envelope codes that are not fatal (docs/marketo-api.md 3.3). Every code
 * not listed is fatal: 603, 605, 609, 610, 612, 613, 616, 7xx except 713
 * and 719 (709 "list name exists" is told apart by its code), 1xxx except
 * those below (1013 "list not found": the code lets the caller forget the
 * list id).
 */
static const struct code_class code_table[] = {
        /* 600 is only known from old libraries (UNCERTAIN); re-auth once
         * is harmless if it never occurs. */
        { "600", MKTO_C_REAUTH },
        { "601", MKTO_C_REAUTH },
        { "602", MKTO_C_REAUTH },
        { "604", MKTO_C_RETRY },
        { "606", MKTO_C_RATE },
        { "607", MKTO_C_QUOTA },
        { "608", MKTO_C_RETRY },
        /* 611: "R a few times, then F": the caller's attempt cap gives
         * exactly that. */
        { "611", MKTO_C_RETRY },
        { "614", MKTO_C_RETRY },
        { "615", MKTO_C_CONC },
        { "713", MKTO_C_RETRY },
        { "719", MKTO_C_RETRY },
        /* 1014 "failed to create object": one library retries, the table
         * also says F. Retry, bounded: a lasting failure still ends fatal
         * after the attempts, a passing one does not stop the instance. */
        { "1014", MKTO_C_RETRY },
        { "1016", MKTO_C_RETRY },
        { "1019", MKTO_C_RETRY },
};

/* 1029 means three things told apart only by the message: the export
 * daily quota waits for the reset, a full queue or an already queued job
 * is retried (the latter is harmless to resend). */
static enum mkto_class classify_1029(const char *message)
{
        for (const char *p = message; *p; p++) {
                if (!strncasecmp(p, "quota", 5))
                        return MKTO_C_QUOTA;
        }
        return MKTO_C_RETRY;
}

static enum mkto_class classify_env(const struct mkto_env *env, char *code,
                                    size_t code_size)
{
        if (!env || !env->json_ok) {
                /* A 2xx we cannot read (a proxy page, a cut body). Whether
                 * it ran is unknown, like a timeout; retry, bounded. */
                set_code(code, code_size, "bad_reply");
                return MKTO_C_RETRY;
        }
        if (env->success) {
                set_code(code, code_size, "");
                return MKTO_C_OK;
        }
        if (!env->code[0]) {
                set_code(code, code_size, "bad_reply");
                return MKTO_C_RETRY;
        }
        set_code(code, code_size, env->code);
        if (!strcmp(env->code, "1029"))
                return classify_1029(env->message);
        for (size_t i = 0; i < sizeof(code_table) / sizeof(code_table[0]);
             i++) {
                if (!strcmp(env->code, code_table[i].code))
                        return code_table[i].cls;
        }
        return MKTO_C_FATAL;
}

enum mkto_class mkto_classify(long http_status, int transport,
                              const struct mkto_env *env, char *code,
                              size_t code_size)
{
        if (transport != 0)
                return classify_transport(transport, code, code_size);
        if (http_status == 0) {
                set_code(code, code_size, "no_reply");
                return MKTO_C_RETRY;
        }
        if (http_status < 200 || http_status > 299) {
                set_code_num(code, code_size, "http", http_status);
                return classify_http(http_status);
        }
        return classify_env(env, code, code_size);
}

/* Read a non-negative integer given as a JSON number or digit string.
 * @returns 0, or -1. */
static int get_count(json_object *v, int64_t *out)
{
        const char *s;
        char *end;
        long long n;

        if (json_object_is_type(v, json_type_int)) {
                *out = json_object_get_int64(v);
                return *out >= 0 ? 0 : -1;
        }
        if (!json_object_is_type(v, json_type_string))
                return -1;
        s = json_object_get_string(v);
        if (!isdigit((unsigned char)s[0]))
                return -1;
        n = strtoll(s, &end, 10);
        if (*end)
                return -1;
        *out = n;
        return 0;
}

/* A 200 identity reply. An OAuth "error" member is a refusal (fatal); a
 * body without a usable token is unreadable (retry). The token is copied
 * only on success. */
static enum mkto_class identity_body(json_object *root, char *token,
                                     size_t token_size, int64_t *expires_in_s,
                                     char *code, size_t code_size)
{
        json_object *v = NULL;
        const char *tk;
        size_t tk_len;
        int64_t exp = 0;

        if (json_object_object_get_ex(root, "error", &v)) {
                set_code(code, code_size, "auth_error");
                return MKTO_C_FATAL;
        }
        if (!json_object_object_get_ex(root, "access_token", &v) ||
            !json_object_is_type(v, json_type_string) ||
            json_object_get_string_len(v) == 0)
                goto bad;
        tk = json_object_get_string(v);
        tk_len = (size_t)json_object_get_string_len(v);
        if (!json_object_object_get_ex(root, "expires_in", &v) ||
            get_count(v, &exp) < 0)
                goto bad;
        if (exp == 0) {
                /* The same dying token comes back until it has expired;
                 * ask again after a back-off rather than use it. */
                set_code(code, code_size, "token_expiring");
                return MKTO_C_RETRY;
        }
        if (!token || tk_len >= token_size) {
                /* Our buffer is too small: no wait will fix that. */
                set_code(code, code_size, "token_too_long");
                return MKTO_C_FATAL;
        }
        memcpy(token, tk, tk_len + 1);
        *expires_in_s = exp;
        set_code(code, code_size, "");
        return MKTO_C_OK;
bad:
        set_code(code, code_size, "bad_reply");
        return MKTO_C_RETRY;
}

enum mkto_class mkto_classify_identity(long http_status, int transport,
                                       const char *body, size_t len,
                                       char *token, size_t token_size,
                                       int64_t *expires_in_s, char *code,
                                       size_t code_size)
{
        enum mkto_class cls;
        json_object *root;

        if (token && token_size > 0)
                token[0] = '\0';
        *expires_in_s = 0;
        if (transport != 0)
                return classify_transport(transport, code, code_size);
        if (http_status == 0) {
                set_code(code, code_size, "no_reply");
                return MKTO_C_RETRY;
        }
        if (http_status != 200) {
                set_code_num(code, code_size, "http", http_status);
                /* 401 (bad credentials), 400, 403, 404: needs a fix. */
                return http_status >= 500 || http_status == 408 ||
                                       http_status == 429 ?
                               MKTO_C_RETRY :
                               MKTO_C_FATAL;
        }
        root = parse_all(body, len);
        if (!json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                set_code(code, code_size, "bad_reply");
                return MKTO_C_RETRY;
        }
        cls = identity_body(root, token, token_size, expires_in_s, code,
                            code_size);
        json_object_put(root);
        return cls;
}

/* ---- records ---- */

/* Statuses that mean the record was applied (or already so). */
static const char *const done_statuses[] = {
        "created", "updated", "deleted",  "added",
        "removed", "memberof", "notmemberof",
};

static enum mkto_rec classify_skip(enum mkto_rec_op op, const char *reason)
{
        if (!strcmp(reason, "1007"))
                return MKTO_REC_DUP;
        if (!strcmp(reason, "1004")) {
                /* A lead that is gone is not a member: removal is done.
                 * For an add it means the id we resolved vanished since
                 * the lookup; the job resolves again. Sync never looks
                 * ids up (createOrUpdate), so there it is a refusal. */
                if (op == MKTO_OP_REMOVE)
                        return MKTO_REC_DONE;
                if (op == MKTO_OP_ADD)
                        return MKTO_REC_VANISHED;
                return MKTO_REC_REJECT;
        }
        if (!strcmp(reason, "1015") && op == MKTO_OP_REMOVE)
                return MKTO_REC_DONE; /* not in the list: goal reached */
        /* 1003 invalid value, 1006, a skip without a reason, ... */
        return MKTO_REC_REJECT;
}

enum mkto_rec mkto_classify_record(enum mkto_rec_op op, const char *status,
                                   const char *reason_code)
{
        if (!status)
                status = "";
        if (!reason_code)
                reason_code = "";
        for (size_t i = 0;
             i < sizeof(done_statuses) / sizeof(done_statuses[0]); i++) {
                if (!strcmp(status, done_statuses[i]))
                        return MKTO_REC_DONE;
        }
        /* Anything but a known status (also a missing one) is treated as
         * skipped: reporting a record as refused is safe, counting an
         * unconfirmed one as applied is not. */
        return classify_skip(op, reason_code);
}

/* Read a lead or list id given as a JSON number or digit string; 0 when
 * absent or unusable. */
static int64_t get_id(json_object *obj, const char *key)
{
        json_object *v = NULL;
        int64_t id = 0;

        if (!json_object_object_get_ex(obj, key, &v))
                return 0;
        if (get_count(v, &id) < 0)
                return 0;
        return id;
}

/* Borrowed string member, or "" when absent or not a string. */
static const char *get_str(json_object *obj, const char *key)
{
        json_object *v = NULL;

        if (!json_object_object_get_ex(obj, key, &v) ||
            !json_object_is_type(v, json_type_string))
                return "";
        return json_object_get_string(v);
}

int mkto_rec_get(json_object *result, size_t i, struct mkto_rec_item *it)
{
        json_object *item;
        json_object *reasons = NULL;
        json_object *r;
        json_object *v = NULL;

        memset(it, 0, sizeof(*it));
        it->status = it->code = it->message = "";
        if (!json_object_is_type(result, json_type_array) ||
            i >= json_object_array_length(result))
                return -1;
        item = json_object_array_get_idx(result, i);
        if (!json_object_is_type(item, json_type_object))
                return -1;
        it->id = get_id(item, "id");
        it->status = get_str(item, "status");
        if (!json_object_object_get_ex(item, "reasons", &reasons) ||
            !json_object_is_type(reasons, json_type_array) ||
            json_object_array_length(reasons) == 0)
                return 0;
        r = json_object_array_get_idx(reasons, 0);
        if (!json_object_is_type(r, json_type_object))
                return 0;
        if (json_object_object_get_ex(r, "code", &v)) {
                if (json_object_is_type(v, json_type_string))
                        it->code = json_object_get_string(v);
                else
                        it->code = code_text(v, it->code_buf,
                                             sizeof(it->code_buf));
        }
        it->message = get_str(r, "message");
        return 0;
}

/* ---- folders and lists ---- */

/* "Folder" or "Program" for a folderId/folder type in any casing, or NULL
 * for anything else. */
static const char *norm_type(const char *t)
{
        if (!strcasecmp(t, "Folder"))
                return "Folder";
        if (!strcasecmp(t, "Program"))
                return "Program";
        return NULL;
}

static bool under_lead_db(const char *path)
{
        static const char root[] = "/Lead Database";
        size_t n = sizeof(root) - 1;

        return !strncasecmp(path, root, n) &&
               (path[n] == '\0' || path[n] == '/');
}

enum folder_rank {
        RANK_LIST_FOLDER = 0, /* a Lead Database list folder */
        RANK_OTHER,           /* any other folder or program */
        RANK_ARCHIVED,        /* archived: only when nothing else exists */
        RANK_CNT,
};

/* Rank one byName result. @returns its rank, or -1 when unusable. */
static int rank_folder(json_object *f, int64_t *idp, const char **typep)
{
        json_object *fid = NULL;
        json_object *v = NULL;
        const char *type;

        if (!json_object_is_type(f, json_type_object) ||
            !json_object_object_get_ex(f, "folderId", &fid) ||
            !json_object_is_type(fid, json_type_object))
                return -1;
        type = norm_type(get_str(fid, "type"));
        *idp = get_id(fid, "id");
        if (!type || *idp <= 0)
                return -1;
        *typep = type;
        if (json_object_object_get_ex(f, "isArchive", &v) &&
            json_object_is_type(v, json_type_boolean) &&
            json_object_get_boolean(v))
                return RANK_ARCHIVED;
        if (!strcmp(type, "Folder") &&
            (!strcasecmp(get_str(f, "folderType"), "List") ||
             under_lead_db(get_str(f, "path"))))
                return RANK_LIST_FOLDER;
        return RANK_OTHER;
}

int mkto_pick_folder(json_object *result, int64_t *idp, char *type,
                     size_t type_size, size_t *cand_cnt)
{
        int64_t best_id[RANK_CNT] = { 0 };
        const char *best_type[RANK_CNT] = { NULL };
        size_t cnt[RANK_CNT] = { 0 };
        size_t n;

        if (!json_object_is_type(result, json_type_array))
                return -1;
        n = json_object_array_length(result);
        for (size_t i = 0; i < n; i++) {
                int64_t id = 0;
                const char *t = NULL;
                int rank = rank_folder(json_object_array_get_idx(result, i),
                                       &id, &t);

                if (rank < 0)
                        continue;
                cnt[rank]++;
                if (!best_type[rank] || id < best_id[rank]) {
                        best_id[rank] = id;
                        best_type[rank] = t;
                }
        }
        for (int r = 0; r < RANK_CNT; r++) {
                if (!cnt[r])
                        continue;
                *idp = best_id[r];
                snprintf(type, type_size, "%s", best_type[r]);
                if (cand_cnt)
                        *cand_cnt = cnt[r];
                return 0;
        }
        return -1;
}

int mkto_parse_list(json_object *result, int64_t *idp, int64_t *folder_idp,
                    char *folder_type, size_t folder_type_size)
{
        size_t n;

        if (!json_object_is_type(result, json_type_array))
                return -1;
        n = json_object_array_length(result);
        for (size_t i = 0; i < n; i++) {
                json_object *l = json_object_array_get_idx(result, i);
                json_object *f = NULL;
                const char *t = "";
                int64_t id;

                if (!json_object_is_type(l, json_type_object))
                        continue;
                id = get_id(l, "id");
                if (id <= 0)
                        continue;
                *idp = id;
                *folder_idp = 0;
                if (json_object_object_get_ex(l, "folder", &f) &&
                    json_object_is_type(f, json_type_object)) {
                        *folder_idp = get_id(f, "id");
                        t = get_str(f, "type");
                        t = norm_type(t) ? norm_type(t) : t;
                }
                snprintf(folder_type, folder_type_size, "%s", t);
                return 0;
        }
        return -1;
}

/* ---- scrubbing ---- */

static bool word_delim(unsigned char c)
{
        return isspace(c) || c == '"' || c == '\'' || c == '`' || c == ',' ||
               c == ';' || c == '(' || c == ')' || c == '<' || c == '>' ||
               c == '[' || c == ']' || c == '{' || c == '}' || c == '\0';
}

/* Does s[0..n) look like an address: an '@' or an encoded one? */
static bool word_is_email(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '@')
                        return true;
                if (s[i] == '%' && i + 2 < n && s[i + 1] == '4' &&
                    s[i + 2] == '0')
                        return true;
        }
        return false;
}

/* Append n bytes of s to out[*pos] while they fit (one byte kept for the
 * NUL); a cut never lets part of an email through since emails are never
 * copied. */
static void put(char *out, size_t out_size, size_t *pos, const char *s,
                size_t n)
{
        size_t room = out_size - 1 - *pos;

        if (n > room)
                n = room;
        memcpy(out + *pos, s, n);
        *pos += n;
}

/*
 * Words are also split at , ; ( ) < > [ ] { } besides the documented
 * whitespace and quotes, so "a@x,b@y" keeps its shape; a word holding
 * "%40" (an encoded '@') is hidden as well.
 */
void mkto_scrub(const char *s, char *out, size_t out_size)
{
        size_t pos = 0;

        if (!out || out_size == 0)
                return;
        if (!s)
                s = "";
        while (*s) {
                size_t n = 0;

                if (word_delim((unsigned char)*s)) {
                        put(out, out_size, &pos, s, 1);
                        s++;
                        continue;
                }
                while (!word_delim((unsigned char)s[n]))
                        n++;
                if (word_is_email(s, n))
                        put(out, out_size, &pos, "<email>", 7);
                else
                        put(out, out_size, &pos, s, n);
                s += n;
        }
        out[pos] = '\0';
}

/* ---- daily reset ---- */

#define DAY_MS (86400LL * 1000)
#define HOUR_MS (3600LL * 1000)

/* Days since 1970-01-01 of a proleptic Gregorian date (UTC, no zone). */
static int64_t days_of(int year, int month, int day)
{
        struct tm tm;

        memset(&tm, 0, sizeof(tm));
        tm.tm_year = year - 1900;
        tm.tm_mon = month - 1;
        tm.tm_mday = day;
        return (int64_t)timegm(&tm) / 86400;
}

static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;

        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Day number of the n-th Sunday of a month (1970-01-01 was a Thursday). */
static int64_t nth_sunday(int year, int month, int nth)
{
        int64_t first = days_of(year, month, 1);
        int64_t wday = (first + 4) % 7; /* 0 = Sunday */

        if (wday < 0)
                wday += 7;
        return first + (7 - wday) % 7 + 7 * (nth - 1);
}

/* Year of a day number. */
static int year_of(int64_t day)
{
        time_t t = (time_t)(day * 86400);
        struct tm tm;

        gmtime_r(&t, &tm);
        return tm.tm_year + 1900;
}

/*
 * Is Chicago on daylight time at the instant t (UTC ms)? Daylight time
 * runs from 02:00 CST (08:00 UTC) on the second Sunday of March to 02:00
 * CDT (07:00 UTC) on the first Sunday of November.
 */
static bool cdt_at(int64_t t_ms)
{
        int year = year_of(floor_div(t_ms, DAY_MS));
        int64_t start = nth_sunday(year, 3, 2) * DAY_MS + 8 * HOUR_MS;
        int64_t end = nth_sunday(year, 11, 1) * DAY_MS + 7 * HOUR_MS;

        return t_ms >= start && t_ms < end;
}

/* Is local midnight starting day d (a local date) on daylight time? The
 * switches happen at 02:00, so the midnight of a switch day still has the
 * previous day's offset. */
static bool cdt_midnight(int64_t d)
{
        int year = year_of(d);

        return d > nth_sunday(year, 3, 2) && d <= nth_sunday(year, 11, 1);
}

int64_t mkto_next_reset_wall_ms(int64_t wall_ms)
{
        int64_t off = (cdt_at(wall_ms) ? -5 : -6) * HOUR_MS;
        int64_t local_day = floor_div(wall_ms + off, DAY_MS);
        int64_t next = local_day + 1;
        int64_t next_off = (cdt_midnight(next) ? -5 : -6) * HOUR_MS;

        return next * DAY_MS - next_off;
}
