/* SPDX-License-Identifier: Apache-2.0
 *
 * marketo.c - the asynchronous Marketo client: one libcurl multi handle
 * drives every instance's calls; each client keeps its instance's token,
 * folder, list ids and limiter, and runs sync jobs as small state machines
 * (folder -> list -> 300-record chunks of upsert/lookup and membership).
 *
 * Every REST call passes the instance's limiter, is re-sent once with a
 * fresh token on 601/602, backs off with jitter on retryable failures,
 * waits out the whole rate window after a 606, pauses briefly after a 615
 * and stops the instance until Marketo's daily reset after a 607. The
 * I/O-free half (bodies, parsing, classification) is in marketo_util.c.
 */
#include "mlsync/marketo.h"

#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "marketo_int.h"
#include "mlsync/endpoint.h"
#include "mlsync/limiter.h"
#include "mlsync/log.h"
#include "mlsync/util.h"

#define MK_WATCH_MAX 8
#define MK_TOKEN_MAX 512
#define MK_REPLY_MAX (64 * 1024 * 1024)
#define MK_BACKOFF_CAP_MS 30000
/* After a 606 nothing goes out until the window that holds the refused
 * call (Marketo counts it too) has passed, plus this much for clock and
 * transit differences. */
#define MK_RATE_MARGIN_MS 750
/* 615: a short pause, jittered, growing with repeats. */
#define MK_CONC_BASE_MS 250
#define MK_CONC_CAP_MS 4000
/* Resends of one call after 606/615 before its job gives up. */
#define MK_LIMIT_WAITS_MAX 12
/* Restarts of a job after a vanished lead, a lost list or a 709 that
 * pointed nowhere. */
#define MK_REDO_MAX 3
/* A fatal job suggests its retry this much later (the worker holds): slow
 * enough to cost nothing, quick enough that a folder an operator creates
 * or a secret rotated back is picked up within a minute. */
#define MK_FATAL_RETRY_MS 60000
/* Token lifetime kept in reserve: refresh this early, at most 60 s. */
#define MK_TOKEN_MARGIN_MAX_MS 60000
#define MK_CONNECT_TIMEOUT_MS 15000

#define MK_DEFAULT_TIMEOUT_MS 120000
#define MK_DEFAULT_ATTEMPTS 5
#define MK_DEFAULT_BACKOFF_MS 500

enum call_kind {
        K_TOKEN = 0,
        K_FOLDER,
        K_LIST_FIND,
        K_LIST_CREATE,
        K_SYNC,
        K_LOOKUP,
        K_ADD,
        K_REMOVE,
};

static const char *const kind_names[] = {
        [K_TOKEN] = "identity",          [K_FOLDER] = "folder.byName",
        [K_LIST_FIND] = "staticList.byName",
        [K_LIST_CREATE] = "staticList.create",
        [K_SYNC] = "leads.sync",         [K_LOOKUP] = "leads.lookup",
        [K_ADD] = "list.add",            [K_REMOVE] = "list.remove",
};

struct mjob;

/* One HTTP call, re-sent as it is until it succeeds or its job gives up. */
struct mcall {
        struct mls_mkto *mk;
        struct mjob *job;       /* NULL for the token call */
        enum call_kind kind;
        const char *method;     /* "GET", "POST" or "DELETE" */
        char *url;
        char *body;             /* NULL for GET; wiped when freed */
        const char *ctype;
        bool active;            /* prepared and not yet answered for good */
        bool in_flight;
        bool reauthed;          /* already re-sent after 601/602 */
        int64_t not_before_ms;
        unsigned attempts;      /* retryable failures so far */
        unsigned limit_waits;   /* 606/615 so far */
        uint64_t token_gen;
        CURL *easy;
        struct curl_slist *hdrs;
        struct mkto_buf reply;
        bool reply_too_big;
        bool gated;             /* spent() told, ended() not yet */
        int64_t sent_ms;
};

enum jstep {
        S_FOLDER = 0,
        S_LIST_FIND,
        S_LIST_CREATE,
        S_CHUNK,
        S_SYNC,
        S_LOOKUP,
        S_MEMBERS,
};

/* A lead id and the unique email it belongs to. */
struct idref {
        int64_t id;
        size_t u;
};

/* A sorting/dedup helper: a lower-cased email and where it came from. */
struct epair {
        const char *email;
        size_t orig;
};

struct mjob {
        struct mjob *prev, *next;
        struct mls_mkto *mk;
        enum mls_mkto_op op;
        char *list_name;         /* as given */
        char *list_key;          /* lower case: the cache key */
        char **emails;           /* lower-case copies, input order */
        size_t email_cnt;
        size_t *uidx;            /* input index -> unique index */
        const char **uniq;       /* sorted distinct emails (borrowed) */
        struct mls_mkto_reject *urej; /* per unique; code[0] = rejected */
        size_t uniq_cnt;

        enum jstep step;
        bool waiting;            /* on a folder/list another job resolves */
        bool resolving_folder;
        bool resolving_list;
        bool after_709;
        unsigned redo;
        int64_t list_id;

        size_t chunk_off, chunk_len;
        struct idref *ids;
        size_t id_cnt, id_cap, id_off, id_batch;
        size_t *lk;              /* unique indexes being looked up */
        size_t lk_cnt;
        bool lk_dups;            /* the lookup is for 1007 records */
        char page_token[256];

        struct mcall call;
        struct mls_mkto_result res;
        struct mls_mkto_reject *rejects;
        mls_mkto_done_cb *cb;
        void *opaque;
        bool finished;
};

/* A resolved (or being resolved) list of this instance. */
struct lcache {
        char *key;
        int64_t id;     /* 0 while resolving */
        bool resolving;
};

enum folder_state {
        F_UNKNOWN = 0,
        F_RESOLVING,
        F_OK,
};

struct mls_mkto {
        struct mls_mkto_loop *loop;
        const struct mls_cfg_instance *inst;
        struct mls_endpoint ep;
        struct mls_limiter *lim;
        struct mls_mkto_gate gate;  /* shared budget; allow NULL = none */
        int gate_code;              /* Marketo code of the reply at hand */

        int call_timeout_ms;
        unsigned max_attempts;
        int backoff_base_ms;

        char token[MK_TOKEN_MAX];
        uint64_t token_gen;
        int64_t token_exp_ms;
        int64_t token_refresh_ms;
        struct mcall tcall;

        enum folder_state folder_state;
        int64_t folder_id;
        char folder_type[16];

        struct lcache *lists;
        size_t list_cnt, list_cap;

        struct mjob *jobs_head, *jobs_tail;  /* running */
        struct mjob *done_head, *done_tail;  /* waiting for their callback */
        size_t job_cnt;                      /* both lists */
        bool jobs_changed;

        int64_t quota_until_ms;
        int64_t next_reset_ms;
        bool destroying;

        struct mls_mkto_stats st;
};

struct mls_mkto_loop {
        CURLM *multi;
        struct mls_mkto **clients;
        size_t client_cnt, client_cap;
        int watch[MK_WATCH_MAX];
        size_t watch_cnt;
};

/* ---- small helpers ---- */

static int64_t min64(int64_t a, int64_t b)
{
        return a < b ? a : b;
}

static const char *mk_id(const struct mls_mkto *mk)
{
        return mk->inst->munchkin_id;
}

static char *str_printf(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));

static char *str_printf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return NULL;
        s = malloc((size_t)n + 1);
        if (!s)
                return NULL;
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return s;
}

/* URL = base + path + name percent-encoded. */
static char *url_with_name(const char *base, const char *path,
                           const char *name)
{
        struct mkto_buf b;

        mkto_buf_init(&b);
        mkto_buf_adds(&b, base);
        mkto_buf_adds(&b, path);
        mkto_buf_urlenc(&b, name);
        return mkto_buf_take(&b);
}

static void wipe_free(char *s)
{
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

/* ---- calls ---- */

static void call_clear(struct mcall *c)
{
        free(c->url);
        wipe_free(c->body);
        c->url = NULL;
        c->body = NULL;
        c->active = false;
}

/* Drop the transfer of a call (answered or abandoned). */
static void call_detach(struct mcall *c)
{
        if (c->easy) {
                curl_multi_remove_handle(c->mk->loop->multi, c->easy);
                curl_easy_cleanup(c->easy);
                c->easy = NULL;
        }
        if (c->hdrs) {
                for (struct curl_slist *h = c->hdrs; h; h = h->next)
                        explicit_bzero(h->data, strlen(h->data));
                curl_slist_free_all(c->hdrs);
                c->hdrs = NULL;
        }
        mkto_buf_fini(&c->reply);
        c->reply_too_big = false;
}

/* Abandon a call, giving back its limiter slot if it was sent. */
static void gate_ended(struct mcall *c, int code, int64_t now)
{
        struct mls_mkto *mk = c->mk;

        if (!c->gated)
                return;
        c->gated = false;
        if (mk->gate.ended)
                mk->gate.ended(mk->gate.opaque, code, c->sent_ms, now);
}

static void call_abort(struct mcall *c, int64_t now)
{
        if (c->in_flight) {
                mls_limiter_release(c->mk->lim, now);
                c->in_flight = false;
        }
        /* Abandoned, not answered: the request may still be on its way
         * to Marketo, which counts it when it arrives. */
        gate_ended(c, MLS_MKTO_GATE_ABANDONED, now);
        call_detach(c);
        call_clear(c);
}

/* Prepare the job's next call; url and body are taken over (NULL = out of
 * memory, reported by the caller's check). */
static int call_prepare(struct mcall *c, enum call_kind kind,
                        const char *method, char *url, char *body,
                        const char *ctype, int64_t now)
{
        call_clear(c);
        if (!url || (strcmp(method, "GET") && !body)) {
                free(url);
                wipe_free(body);
                return -1;
        }
        c->kind = kind;
        c->method = method;
        c->url = url;
        c->body = body;
        c->ctype = ctype;
        c->active = true;
        c->in_flight = false;
        c->reauthed = false;
        c->attempts = 0;
        c->limit_waits = 0;
        c->not_before_ms = now;
        return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        struct mcall *c = userdata;
        size_t n = size * nmemb;

        if (c->reply.len + n > MK_REPLY_MAX) {
                c->reply_too_big = true;
                return 0;
        }
        mkto_buf_add(&c->reply, ptr, n);
        return c->reply.oom ? 0 : n;
}

/* Hand the call to libcurl. @returns 0, or -1 (no memory). */
static int call_send(struct mcall *c)
{
        struct mls_mkto *mk = c->mk;
        struct curl_slist *h;
        char line[MK_TOKEN_MAX + 32];
        CURL *e = curl_easy_init();

        if (!e)
                return -1;
        c->easy = e;
        mkto_buf_init(&c->reply);
        c->hdrs = curl_slist_append(NULL, "Accept: application/json");
        if (!c->hdrs)
                goto fail;
        /* No 100-continue round trip for large bodies. */
        h = curl_slist_append(c->hdrs, "Expect:");
        if (!h)
                goto fail;
        if (c->ctype) {
                snprintf(line, sizeof(line), "Content-Type: %s", c->ctype);
                if (!curl_slist_append(c->hdrs, line))
                        goto fail;
        }
        if (c->kind != K_TOKEN) {
                snprintf(line, sizeof(line), "Authorization: Bearer %s",
                         mk->token);
                h = curl_slist_append(c->hdrs, line);
                explicit_bzero(line, sizeof(line));
                if (!h)
                        goto fail;
                c->token_gen = mk->token_gen;
        }
        curl_easy_setopt(e, CURLOPT_URL, c->url);
        curl_easy_setopt(e, CURLOPT_PRIVATE, c);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)mk->call_timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)min64(MK_CONNECT_TIMEOUT_MS,
                                     mk->call_timeout_ms));
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
        if (c->body) {
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
                                 (long)strlen(c->body));
                if (!strcmp(c->method, "DELETE"))
                        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        }
        if (curl_multi_add_handle(mk->loop->multi, e) != CURLM_OK)
                goto fail;
        c->in_flight = true;
        if (c->kind == K_TOKEN)
                mk->st.token_calls++;
        else
                mk->st.calls++;
        if (c->attempts || c->limit_waits || c->reauthed)
                mk->st.retries++;
        return 0;
fail:
        call_detach(c);
        return -1;
}

/* ---- job bookkeeping ---- */

static void list_unlink(struct mjob **head, struct mjob **tail,
                        struct mjob *j)
{
        if (j->prev)
                j->prev->next = j->next;
        else
                *head = j->next;
        if (j->next)
                j->next->prev = j->prev;
        else
                *tail = j->prev;
        j->prev = j->next = NULL;
}

static void list_append(struct mjob **head, struct mjob **tail,
                        struct mjob *j)
{
        j->next = NULL;
        j->prev = *tail;
        if (*tail)
                (*tail)->next = j;
        else
                *head = j;
        *tail = j;
}

static void job_free(struct mjob *j)
{
        for (size_t i = 0; i < j->email_cnt; i++)
                wipe_free(j->emails[i]);
        free(j->emails);
        free(j->uidx);
        free(j->uniq);
        free(j->urej);
        free(j->ids);
        free(j->lk);
        free(j->rejects);
        free(j->list_name);
        free(j->list_key);
        call_clear(&j->call);
        free(j);
}

static struct lcache *lcache_find(struct mls_mkto *mk, const char *key)
{
        for (size_t i = 0; i < mk->list_cnt; i++) {
                if (!strcmp(mk->lists[i].key, key))
                        return &mk->lists[i];
        }
        return NULL;
}

static void lcache_drop(struct mls_mkto *mk, const char *key)
{
        struct lcache *l = lcache_find(mk, key);

        if (!l)
                return;
        free(l->key);
        *l = mk->lists[--mk->list_cnt];
}

/* @returns the entry (new or existing), or NULL without memory. */
static struct lcache *lcache_get(struct mls_mkto *mk, const char *key)
{
        struct lcache *l = lcache_find(mk, key);

        if (l)
                return l;
        if (mk->list_cnt == mk->list_cap) {
                size_t n = mk->list_cap ? mk->list_cap * 2 : 8;
                struct lcache *nl = realloc(mk->lists, n * sizeof(*nl));

                if (!nl)
                        return NULL;
                mk->lists = nl;
                mk->list_cap = n;
        }
        l = &mk->lists[mk->list_cnt];
        memset(l, 0, sizeof(*l));
        l->key = strdup(key);
        if (!l->key)
                return NULL;
        mk->list_cnt++;
        return l;
}

static void job_finish(struct mjob *j, int64_t now);
static void wake_waiters(struct mls_mkto *mk, bool folder, const char *key);

/* Build the input-order reject list and count applied emails. */
static void job_collect(struct mjob *j)
{
        size_t n = 0;

        for (size_t i = 0; i < j->email_cnt; i++) {
                if (j->urej[j->uidx[i]].code[0])
                        n++;
        }
        j->res.applied = j->email_cnt - n;
        if (!n)
                return;
        j->rejects = calloc(n, sizeof(*j->rejects));
        if (!j->rejects) {
                /* LIMIT: without memory the rejects are counted but their
                 * details are lost; the emails still count as refused. */
                return;
        }
        for (size_t i = 0; i < j->email_cnt; i++) {
                const struct mls_mkto_reject *r = &j->urej[j->uidx[i]];

                if (!r->code[0])
                        continue;
                j->rejects[j->res.reject_cnt] = *r;
                j->rejects[j->res.reject_cnt].index = i;
                j->res.reject_cnt++;
        }
        j->res.rejects = j->rejects;
}

/* Release what the job was resolving; when it failed, the jobs waiting
 * for that folder or list share its fate (they would ask the same). */
static void job_release_resolution(struct mjob *j, int64_t now)
{
        struct mls_mkto *mk = j->mk;
        bool folder = j->resolving_folder;
        bool list = j->resolving_list;
        struct mjob *w;

        if (folder) {
                j->resolving_folder = false;
                if (mk->folder_state == F_RESOLVING)
                        mk->folder_state = F_UNKNOWN;
        }
        if (list) {
                struct lcache *l = lcache_find(mk, j->list_key);

                j->resolving_list = false;
                if (l && l->resolving)
                        lcache_drop(mk, j->list_key);
        }
        if (!folder && !list)
                return;
        if (j->res.err == MLS_OK) {
                /* Done without resolving it (a removal from a list that
                 * does not exist): the waiters look for themselves. */
                if (folder)
                        wake_waiters(mk, true, NULL);
                if (list)
                        wake_waiters(mk, false, j->list_key);
                return;
        }
again:
        for (w = mk->jobs_head; w; w = w->next) {
                if (!w->waiting || w->finished)
                        continue;
                if ((folder && w->step == S_FOLDER) ||
                    (list && w->step == S_LIST_FIND &&
                     !strcmp(w->list_key, j->list_key))) {
                        w->waiting = false;
                        w->res = j->res;
                        w->res.rejects = NULL;
                        w->res.reject_cnt = 0;
                        w->res.applied = 0;
                        job_finish(w, now);
                        goto again;
                }
        }
}

/* Move a job to the done list; its callback runs from the loop. */
static void job_finish(struct mjob *j, int64_t now)
{
        struct mls_mkto *mk = j->mk;

        if (j->finished)
                return;
        j->finished = true;
        call_abort(&j->call, now);
        if (j->res.err == MLS_OK) {
                j->res.list_id = j->list_id;
                job_collect(j);
                mk->st.jobs_ok++;
                mk->st.emails_applied += j->res.applied;
                mk->st.emails_rejected += j->res.reject_cnt;
        } else {
                mk->st.jobs_failed++;
                mls_log(j->res.err == MLS_ERR_CANCELLED ? MLS_LOG_DEBUG :
                                                          MLS_LOG_WARN,
                        "mkto", "job failed", MLS_KV_STR("instance", mk_id(mk)),
                        MLS_KV_STR("list", j->list_name),
                        MLS_KV_STR("err", mls_err_name(j->res.err)),
                        MLS_KV_STR("code", j->res.code),
                        MLS_KV_STR("detail", j->res.errstr));
        }
        list_unlink(&mk->jobs_head, &mk->jobs_tail, j);
        list_append(&mk->done_head, &mk->done_tail, j);
        mk->jobs_changed = true;
        job_release_resolution(j, now);
}

static void job_fail(struct mjob *j, enum mls_err err, const char *code,
                     int64_t retry_at, int64_t now, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));

static void job_fail(struct mjob *j, enum mls_err err, const char *code,
                     int64_t retry_at, int64_t now, const char *fmt, ...)
{
        va_list ap;

        j->res.err = err;
        snprintf(j->res.code, sizeof(j->res.code), "%s", code ? code : "");
        va_start(ap, fmt);
        vsnprintf(j->res.errstr, sizeof(j->res.errstr), fmt, ap);
        va_end(ap);
        j->res.retry_at_ms = retry_at;
        j->res.list_id = j->list_id;
        job_finish(j, now);
}

static void job_nomem(struct mjob *j, int64_t now)
{
        job_fail(j, MLS_ERR_NOMEM, "nomem", now + 1000, now,
                 "out of memory on instance %s", mk_id(j->mk));
}

/* Mark unique email u refused (first reason wins). */
static void job_reject(struct mjob *j, size_t u, const char *code,
                       const char *message)
{
        struct mls_mkto_reject *r = &j->urej[u];

        if (r->code[0])
                return;
        snprintf(r->code, sizeof(r->code), "%s",
                 code && *code ? code : "skipped");
        mkto_scrub(message ? message : "", r->message, sizeof(r->message));
}

static int job_add_id(struct mjob *j, int64_t id, size_t u)
{
        if (j->id_cnt == j->id_cap) {
                size_t n = j->id_cap ? j->id_cap * 2 : 64;
                struct idref *ni = realloc(j->ids, n * sizeof(*ni));

                if (!ni)
                        return -1;
                j->ids = ni;
                j->id_cap = n;
        }
        j->ids[j->id_cnt].id = id;
        j->ids[j->id_cnt].u = u;
        j->id_cnt++;
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_pair(const void *a, const void *b)
{
        const struct epair *x = a, *y = b;
        int c = strcmp(x->email, y->email);

        if (c)
                return c;
        return x->orig < y->orig ? -1 : x->orig > y->orig;
}

/* Unique index of a lower-cased email, or -1. */
static long job_find_email(const struct mjob *j, const char *email)
{
        const char **hit = bsearch(&email, j->uniq, j->uniq_cnt,
                                   sizeof(*j->uniq), cmp_str);

        return hit ? (long)(hit - j->uniq) : -1;
}

/* ---- job steps: prepare the next call ---- */

static int prep_folder(struct mjob *j, int64_t now)
{
        struct mls_mkto *mk = j->mk;

        return call_prepare(&j->call, K_FOLDER, "GET",
                            url_with_name(mk->ep.rest,
                                          "/asset/v1/folder/byName.json?name=",
                                          mk->inst->folder),
                            NULL, NULL, now);
}

static int prep_list_find(struct mjob *j, int64_t now)
{
        return call_prepare(&j->call, K_LIST_FIND, "GET",
                            url_with_name(j->mk->ep.rest,
                                          "/asset/v1/staticList/byName.json?name=",
                                          j->list_name),
                            NULL, NULL, now);
}

static int prep_list_create(struct mjob *j, int64_t now)
{
        struct mls_mkto *mk = j->mk;

        return call_prepare(&j->call, K_LIST_CREATE, "POST",
                            str_printf("%s/asset/v1/staticLists.json",
                                       mk->ep.rest),
                            mkto_form_create_list(j->list_name,
                                                  mk->folder_id,
                                                  mk->folder_type),
                            "application/x-www-form-urlencoded", now);
}

static int prep_sync(struct mjob *j, int64_t now)
{
        return call_prepare(&j->call, K_SYNC, "POST",
                            str_printf("%s/v1/leads.json", j->mk->ep.rest),
                            mkto_body_sync(j->uniq + j->chunk_off,
                                           j->chunk_len),
                            "application/json", now);
}

/* Look up lk[0..lk_cnt) by email: a form body, so 300 long addresses
 * never meet the 8 KB URI limit. */
static int prep_lookup(struct mjob *j, int64_t now)
{
        const char *em[MLS_MKTO_BATCH_MAX];

        for (size_t i = 0; i < j->lk_cnt; i++)
                em[i] = j->uniq[j->lk[i]];
        return call_prepare(&j->call, K_LOOKUP, "POST",
                            str_printf("%s/v1/leads.json?_method=GET",
                                       j->mk->ep.rest),
                            mkto_form_lookup(em, j->lk_cnt,
                                             j->page_token[0] ?
                                                     j->page_token : NULL),
                            "application/x-www-form-urlencoded", now);
}

static int prep_members(struct mjob *j, int64_t now)
{
        int64_t ids[MLS_MKTO_BATCH_MAX];
        size_t n = j->id_cnt - j->id_off;
        bool add = j->op == MLS_MKTO_ADD;

        if (n > MLS_MKTO_BATCH_MAX)
                n = MLS_MKTO_BATCH_MAX;
        for (size_t i = 0; i < n; i++)
                ids[i] = j->ids[j->id_off + i].id;
        j->id_batch = n;
        return call_prepare(&j->call, add ? K_ADD : K_REMOVE,
                            add ? "POST" : "DELETE",
                            str_printf("%s/v1/lists/%lld/leads.json",
                                       j->mk->ep.rest,
                                       (long long)j->list_id),
                            mkto_body_ids(ids, n), "application/json", now);
}

/* Start the lookup of every email of the current chunk (remove). */
static int start_chunk_lookup(struct mjob *j, int64_t now)
{
        j->lk_cnt = j->chunk_len;
        for (size_t i = 0; i < j->chunk_len; i++)
                j->lk[i] = j->chunk_off + i;
        j->lk_dups = false;
        j->page_token[0] = '\0';
        j->step = S_LOOKUP;
        return prep_lookup(j, now);
}

/* Members call for the resolved ids, or on to the next chunk. */
static int start_members(struct mjob *j, int64_t now)
{
        if (j->id_off >= j->id_cnt) {
                j->chunk_off += j->chunk_len;
                j->step = S_CHUNK;
                return 0;
        }
        j->step = S_MEMBERS;
        return prep_members(j, now);
}

/*
 * Bring a job that has no call to its next call, to a wait, or to its
 * end. Only called for jobs that are neither waiting nor finished.
 */
static void job_advance(struct mjob *j, int64_t now)
{
        struct mls_mkto *mk = j->mk;
        struct lcache *l;
        int rc = 0;

        while (!j->finished && !j->waiting && !j->call.active && rc == 0) {
                switch (j->step) {
                case S_FOLDER:
                        if (mk->folder_state == F_OK) {
                                j->step = S_LIST_FIND;
                                break;
                        }
                        if (mk->folder_state == F_RESOLVING) {
                                j->waiting = true;
                                break;
                        }
                        mk->folder_state = F_RESOLVING;
                        j->resolving_folder = true;
                        rc = prep_folder(j, now);
                        break;
                case S_LIST_FIND:
                        l = lcache_find(mk, j->list_key);
                        if (l && l->id > 0) {
                                j->list_id = l->id;
                                j->step = S_CHUNK;
                                break;
                        }
                        if (l && l->resolving && !j->resolving_list) {
                                j->waiting = true;
                                break;
                        }
                        l = lcache_get(mk, j->list_key);
                        if (!l) {
                                rc = -1;
                                break;
                        }
                        l->resolving = true;
                        j->resolving_list = true;
                        rc = prep_list_find(j, now);
                        break;
                case S_LIST_CREATE:
                        rc = prep_list_create(j, now);
                        break;
                case S_CHUNK:
                        if (j->chunk_off >= j->uniq_cnt) {
                                j->res.err = MLS_OK;
                                job_finish(j, now);
                                return;
                        }
                        j->chunk_len = j->uniq_cnt - j->chunk_off;
                        if (j->chunk_len > MLS_MKTO_BATCH_MAX)
                                j->chunk_len = MLS_MKTO_BATCH_MAX;
                        j->id_cnt = j->id_off = 0;
                        if (j->op == MLS_MKTO_ADD) {
                                j->step = S_SYNC;
                                rc = prep_sync(j, now);
                        } else {
                                rc = start_chunk_lookup(j, now);
                        }
                        break;
                default:
                        /* S_SYNC/S_LOOKUP/S_MEMBERS always hold a call. */
                        job_fail(j, MLS_ERR_FATAL, "internal", 0, now,
                                 "job on instance %s lost its call",
                                 mk_id(mk));
                        return;
                }
        }
        if (rc < 0)
                job_nomem(j, now);
}

/* Let the jobs waiting for the folder or this list go on. */
static void wake_waiters(struct mls_mkto *mk, bool folder, const char *key)
{
        for (struct mjob *w = mk->jobs_head; w; w = w->next) {
                if (!w->waiting)
                        continue;
                if ((folder && w->step == S_FOLDER) ||
                    (!folder && w->step == S_LIST_FIND &&
                     !strcmp(w->list_key, key)))
                        w->waiting = false;
        }
}

/* ---- job steps: replies ---- */

static void on_folder(struct mjob *j, const struct mkto_env *env,
                      int64_t now)
{
        struct mls_mkto *mk = j->mk;
        size_t cand = 0;

        if (mkto_pick_folder(env->result, &mk->folder_id, mk->folder_type,
                             sizeof(mk->folder_type), &cand) < 0) {
                job_fail(j, MLS_ERR_FATAL, "folder_missing",
                         now + MK_FATAL_RETRY_MS, now,
                         "folder \"%.80s\" not found on instance %s; create it (a Lead Database list folder) or fix marketo.folder",
                         mk->inst->folder, mk_id(mk));
                return;
        }
        mk->folder_state = F_OK;
        j->resolving_folder = false;
        mls_log(MLS_LOG_INFO, "mkto", "folder chosen",
                MLS_KV_STR("instance", mk_id(mk)),
                MLS_KV_STR("folder", mk->inst->folder),
                MLS_KV_INT("folder_id", mk->folder_id),
                MLS_KV_STR("type", mk->folder_type),
                MLS_KV_INT("candidates", cand));
        wake_waiters(mk, true, NULL);
        j->step = S_LIST_FIND;
}

static void list_resolved(struct mjob *j, int64_t id)
{
        struct mls_mkto *mk = j->mk;
        struct lcache *l = lcache_find(mk, j->list_key);

        if (l) {
                l->id = id;
                l->resolving = false;
        }
        j->resolving_list = false;
        j->list_id = id;
        j->after_709 = false;
        wake_waiters(mk, false, j->list_key);
        j->step = S_CHUNK;
}

static bool same_folder(const struct mls_mkto *mk, int64_t fid,
                        const char *ftype)
{
        return fid == mk->folder_id &&
               (!ftype[0] || !strcasecmp(ftype, mk->folder_type));
}

static void on_list_find(struct mjob *j, const struct mkto_env *env,
                         int64_t now)
{
        struct mls_mkto *mk = j->mk;
        int64_t id = 0, fid = 0;
        char ftype[16];

        if (mkto_parse_list(env->result, &id, &fid, ftype,
                            sizeof(ftype)) == 0) {
                if (!same_folder(mk, fid, ftype)) {
                        job_fail(j, MLS_ERR_FATAL, "list_elsewhere",
                                 now + MK_FATAL_RETRY_MS, now,
                                 "static list \"%.60s\" (id %lld) exists outside folder \"%.60s\" (folder id %lld) on instance %s; rename or move it",
                                 j->list_name, (long long)id,
                                 mk->inst->folder, (long long)fid,
                                 mk_id(mk));
                        return;
                }
                if (j->after_709)
                        mls_log(MLS_LOG_INFO, "mkto", "list adopted",
                                MLS_KV_STR("instance", mk_id(mk)),
                                MLS_KV_STR("list", j->list_name),
                                MLS_KV_INT("list_id", id));
                list_resolved(j, id);
                return;
        }
        if (j->op == MLS_MKTO_REMOVE) {
                /* No list, so no member to remove: nothing to create. */
                j->chunk_off = j->uniq_cnt;
                j->step = S_CHUNK;
                return;
        }
        if (j->after_709 && ++j->redo > MK_REDO_MAX) {
                job_fail(j, MLS_ERR_FATAL, "709",
                         now + MK_FATAL_RETRY_MS, now,
                         "static list \"%.80s\" cannot be created (name taken) nor found on instance %s",
                         j->list_name, mk_id(mk));
                return;
        }
        j->step = S_LIST_CREATE;
}

static void on_list_create(struct mjob *j, const struct mkto_env *env,
                           int64_t now)
{
        struct mls_mkto *mk = j->mk;
        int64_t id = 0, fid = 0;
        char ftype[16];

        if (mkto_parse_list(env->result, &id, &fid, ftype,
                            sizeof(ftype)) < 0) {
                /* Created or not: find out by name. */
                j->after_709 = true;
                j->step = S_LIST_FIND;
                return;
        }
        mls_log(MLS_LOG_INFO, "mkto", "list created",
                MLS_KV_STR("instance", mk_id(mk)),
                MLS_KV_STR("list", j->list_name), MLS_KV_INT("list_id", id),
                MLS_KV_INT("folder_id", mk->folder_id));
        list_resolved(j, id);
}

/* The reply does not match what was sent: retry the call as if the
 * transfer had failed. */
static bool result_len_ok(const struct mkto_env *env, size_t want)
{
        return env->result && json_object_array_length(env->result) == want;
}

/* @returns 0, 1 when the reply must be treated as unusable, -1 no memory */
static int on_sync(struct mjob *j, const struct mkto_env *env, int64_t now)
{
        struct mkto_rec_item it;

        if (!result_len_ok(env, j->chunk_len))
                return 1;
        j->id_cnt = j->id_off = 0;
        j->lk_cnt = 0;
        for (size_t i = 0; i < j->chunk_len; i++) {
                size_t u = j->chunk_off + i;

                if (mkto_rec_get(env->result, i, &it) < 0)
                        return 1;
                switch (mkto_classify_record(MKTO_OP_SYNC, it.status,
                                             it.code)) {
                case MKTO_REC_DONE:
                        if (it.id > 0) {
                                if (job_add_id(j, it.id, u) < 0)
                                        return -1;
                                break;
                        }
                        /* Applied but no id given: find it. */
                        j->lk[j->lk_cnt++] = u;
                        break;
                case MKTO_REC_DUP:
                        /* Several leads share the address: every one of
                         * them joins the list. */
                        j->lk[j->lk_cnt++] = u;
                        break;
                default:
                        job_reject(j, u, it.code, it.message);
                        break;
                }
        }
        if (j->lk_cnt) {
                j->lk_dups = true;
                j->page_token[0] = '\0';
                j->step = S_LOOKUP;
                return prep_lookup(j, now) < 0 ? -1 : 0;
        }
        return start_members(j, now) < 0 ? -1 : 0;
}

static int on_lookup(struct mjob *j, const struct mkto_env *env,
                     int64_t now)
{
        json_object *tok = NULL;
        size_t n = env->result ? json_object_array_length(env->result) : 0;

        if (!env->result)
                return 1;
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(env->result, i);
                json_object *v = NULL;
                struct mkto_rec_item it;
                char *lc;
                long u;

                if (mkto_rec_get(env->result, i, &it) < 0 || it.id <= 0 ||
                    !json_object_object_get_ex(o, "email", &v) ||
                    !json_object_is_type(v, json_type_string))
                        continue;
                lc = mls_strdup_lower(json_object_get_string(v));
                if (!lc)
                        return -1;
                u = job_find_email(j, lc);
                wipe_free(lc);
                if (u < 0)
                        continue;
                if (job_add_id(j, it.id, (size_t)u) < 0)
                        return -1;
        }
        if (n > 0 &&
            json_object_object_get_ex(env->root, "nextPageToken", &tok) &&
            json_object_is_type(tok, json_type_string) &&
            json_object_get_string_len(tok) > 0 &&
            (size_t)json_object_get_string_len(tok) <
                    sizeof(j->page_token)) {
                snprintf(j->page_token, sizeof(j->page_token), "%s",
                         json_object_get_string(tok));
                return prep_lookup(j, now) < 0 ? -1 : 0;
        }
        j->page_token[0] = '\0';
        if (j->lk_dups) {
                /* A 1007 email whose leads the lookup did not show. */
                for (size_t k = 0; k < j->lk_cnt; k++) {
                        bool found = false;

                        for (size_t i = 0; i < j->id_cnt && !found; i++)
                                found = j->ids[i].u == j->lk[k];
                        if (!found)
                                job_reject(j, j->lk[k], "1007",
                                           "Multiple lead match lookup criteria");
                }
        }
        return start_members(j, now) < 0 ? -1 : 0;
}

static int on_members(struct mjob *j, const struct mkto_env *env,
                      int64_t now)
{
        enum mkto_rec_op op = j->op == MLS_MKTO_ADD ? MKTO_OP_ADD :
                                                      MKTO_OP_REMOVE;
        struct mkto_rec_item it;
        bool vanished = false;

        if (!result_len_ok(env, j->id_batch))
                return 1;
        for (size_t i = 0; i < j->id_batch; i++) {
                const struct idref *r = &j->ids[j->id_off + i];

                if (mkto_rec_get(env->result, i, &it) < 0)
                        return 1;
                switch (mkto_classify_record(op, it.status, it.code)) {
                case MKTO_REC_DONE:
                        break;
                case MKTO_REC_VANISHED:
                        vanished = true;
                        break;
                default:
                        job_reject(j, r->u, it.code, it.message);
                        break;
                }
        }
        j->id_off += j->id_batch;
        if (vanished) {
                /* A lead was merged or deleted between upsert and add:
                 * upsert the chunk again for fresh ids. */
                if (++j->redo > MK_REDO_MAX) {
                        job_fail(j, MLS_ERR_TRANSIENT, "1004",
                                 now + MK_BACKOFF_CAP_MS, now,
                                 "leads kept vanishing while adding to list \"%.80s\" on instance %s",
                                 j->list_name, mk_id(j->mk));
                        return 0;
                }
                j->step = S_CHUNK;
                return 0;
        }
        return start_members(j, now) < 0 ? -1 : 0;
}

/* A successful envelope for the job's call. */
static void job_on_reply(struct mjob *j, const struct mkto_env *env,
                         int64_t now, bool *unusable)
{
        int rc = 0;

        *unusable = false;
        switch (j->call.kind) {
        case K_FOLDER:
                call_clear(&j->call);
                on_folder(j, env, now);
                return;
        case K_LIST_FIND:
                call_clear(&j->call);
                on_list_find(j, env, now);
                return;
        case K_LIST_CREATE:
                call_clear(&j->call);
                on_list_create(j, env, now);
                return;
        case K_SYNC:
                rc = on_sync(j, env, now);
                break;
        case K_LOOKUP:
                rc = on_lookup(j, env, now);
                break;
        case K_ADD:
        case K_REMOVE:
                rc = on_members(j, env, now);
                break;
        case K_TOKEN:
                break;
        }
        if (rc > 0) {
                *unusable = true;
                return;
        }
        if (rc < 0) {
                job_nomem(j, now);
                return;
        }
        /* Every step but S_CHUNK has just prepared its next call; at
         * S_CHUNK the answered call is done with. */
        if (!j->finished && j->step == S_CHUNK)
                call_clear(&j->call);
}

/* Envelope codes with a meaning for this step. @returns true if handled */
static bool job_on_code(struct mjob *j, const char *code, int64_t now)
{
        struct mls_mkto *mk = j->mk;

        if (j->call.kind == K_LIST_CREATE && !strcmp(code, "709")) {
                /* Someone else created it first: adopt it if it is in
                 * our folder. */
                call_clear(&j->call);
                j->after_709 = true;
                j->step = S_LIST_FIND;
                return true;
        }
        if ((j->call.kind == K_ADD || j->call.kind == K_REMOVE ||
             j->call.kind == K_LIST_CREATE) &&
            (!strcmp(code, "1013") || !strcmp(code, "710")) &&
            ++j->redo <= MK_REDO_MAX) {
                /* The list (or folder) is gone: resolve again. */
                call_clear(&j->call);
                lcache_drop(mk, j->list_key);
                j->resolving_list = false;
                j->list_id = 0;
                if (!strcmp(code, "710")) {
                        mk->folder_state = F_UNKNOWN;
                        j->step = S_FOLDER;
                } else {
                        j->step = S_LIST_FIND;
                }
                return true;
        }
        return false;
}

/* ---- token ---- */

static bool token_usable(const struct mls_mkto *mk, int64_t now)
{
        return mk->token[0] && now < mk->token_exp_ms;
}

static bool token_wanted(const struct mls_mkto *mk, int64_t now)
{
        return !token_usable(mk, now) || now >= mk->token_refresh_ms;
}

/* The secret, re-read from its file when one is configured. Caller
 * wipes and frees. */
static char *token_secret(const struct mls_mkto *mk)
{
        const struct mls_cfg_instance *in = mk->inst;
        char *buf = NULL;
        size_t len = 0;

        if (in->client_secret_file &&
            mls_read_file(in->client_secret_file, &buf, &len) == 0) {
                while (len > 0 && (buf[len - 1] == '\n' ||
                                   buf[len - 1] == '\r' ||
                                   buf[len - 1] == ' ' ||
                                   buf[len - 1] == '\t'))
                        buf[--len] = '\0';
                if (len > 0)
                        return buf;
                wipe_free(buf);
        }
        return in->client_secret ? strdup(in->client_secret) : NULL;
}

static int token_prepare(struct mls_mkto *mk, int64_t now)
{
        char *secret = token_secret(mk);
        char *body;
        int64_t keep = mk->tcall.not_before_ms;
        unsigned attempts = mk->tcall.attempts;
        int rc;

        if (!secret)
                return -1;
        body = mkto_form_token(mk->inst->client_id ? mk->inst->client_id :
                                                     "",
                               secret);
        wipe_free(secret);
        rc = call_prepare(&mk->tcall, K_TOKEN, "POST",
                          str_printf("%s/oauth/token", mk->ep.identity), body,
                          "application/x-www-form-urlencoded", now);
        mk->tcall.not_before_ms = keep;
        mk->tcall.attempts = attempts;
        return rc;
}

/* Fail every job that waits to send (they all need a token or a slot). */
static void fail_waiting(struct mls_mkto *mk, enum mls_err err,
                         const char *code, int64_t retry_at, int64_t now,
                         const char *detail)
{
again:
        for (struct mjob *j = mk->jobs_head; j; j = j->next) {
                if (!j->call.active || j->call.in_flight)
                        continue;
                mk->jobs_changed = false;
                job_fail(j, err, code, retry_at, now, "%s", detail);
                goto again;
        }
}

static void token_done(struct mls_mkto *mk, long status, int transport,
                       int64_t now)
{
        struct mcall *c = &mk->tcall;
        char token[MK_TOKEN_MAX];
        char code[32] = "";
        char detail[256];
        int64_t exp_s = 0;
        enum mkto_class cls;

        cls = mkto_classify_identity(status, transport, c->reply.data,
                                     c->reply.len, token, sizeof(token),
                                     &exp_s, code, sizeof(code));
        call_detach(c);
        call_clear(c);
        if (cls == MKTO_C_OK) {
                int64_t ttl = exp_s * 1000;

                c->attempts = 0;
                c->not_before_ms = 0;
                if (!strcmp(token, mk->token)) {
                        /* Identity hands out the same token until it dies;
                         * use it to the end, then ask for a new one. */
                        mk->token_exp_ms = now + ttl;
                        mk->token_refresh_ms = mk->token_exp_ms;
                } else {
                        snprintf(mk->token, sizeof(mk->token), "%s", token);
                        mk->token_gen++;
                        mk->token_exp_ms = now + ttl;
                        mk->token_refresh_ms =
                                mk->token_exp_ms -
                                min64(MK_TOKEN_MARGIN_MAX_MS, ttl / 10);
                }
                explicit_bzero(token, sizeof(token));
                mls_log(MLS_LOG_DEBUG, "mkto", "token fetched",
                        MLS_KV_STR("instance", mk_id(mk)),
                        MLS_KV_INT("expires_in_s", exp_s));
                return;
        }
        explicit_bzero(token, sizeof(token));
        c->attempts++;
        mk->st.errors_other++;
        mls_log(MLS_LOG_WARN, "mkto", "token fetch failed",
                MLS_KV_STR("instance", mk_id(mk)), MLS_KV_STR("code", code),
                MLS_KV_STR("class", mkto_class_name(cls)),
                MLS_KV_INT("attempt", c->attempts));
        if (cls == MKTO_C_FATAL && !token_usable(mk, now)) {
                c->not_before_ms =
                        now + mls_backoff_ms(c->attempts, mk->backoff_base_ms,
                                             MK_BACKOFF_CAP_MS);
                snprintf(detail, sizeof(detail),
                         "identity refused the credentials of instance %s (%s)",
                         mk_id(mk), code);
                fail_waiting(mk, MLS_ERR_FATAL, code,
                             now + MK_FATAL_RETRY_MS, now, detail);
                return;
        }
        c->not_before_ms = now + mls_backoff_ms(c->attempts - 1,
                                                mk->backoff_base_ms,
                                                MK_BACKOFF_CAP_MS);
        if (c->attempts >= mk->max_attempts && !token_usable(mk, now)) {
                snprintf(detail, sizeof(detail),
                         "no access token for instance %s after %u tries (%s)",
                         mk_id(mk), c->attempts, code);
                c->attempts = 0;
                fail_waiting(mk, MLS_ERR_TRANSIENT, code, c->not_before_ms,
                             now, detail);
        }
}

/* ---- replies ---- */

static void log_retry(struct mjob *j, const char *code, int64_t delay)
{
        mls_log(MLS_LOG_WARN, "mkto", "call retry",
                MLS_KV_STR("instance", mk_id(j->mk)),
                MLS_KV_STR("call", kind_names[j->call.kind]),
                MLS_KV_STR("code", code),
                MLS_KV_INT("attempt", j->call.attempts),
                MLS_KV_INT("delay_ms", delay));
}

/* Back off and resend, or give up after max_attempts. */
static void job_retry(struct mjob *j, const char *code, int64_t now)
{
        struct mls_mkto *mk = j->mk;
        struct mcall *c = &j->call;
        int64_t delay = mls_backoff_ms(c->attempts, mk->backoff_base_ms,
                                       MK_BACKOFF_CAP_MS);

        c->attempts++;
        if (c->attempts >= mk->max_attempts) {
                job_fail(j, MLS_ERR_TRANSIENT, code, now + delay, now,
                         "%s on instance %s failed %u times (last %s)",
                         kind_names[c->kind], mk_id(mk), c->attempts, code);
                return;
        }
        c->not_before_ms = now + delay;
        log_retry(j, code, delay);
}

static void job_reply(struct mjob *j, long status, int transport,
                      int64_t now)
{
        struct mls_mkto *mk = j->mk;
        struct mcall *c = &j->call;
        struct mkto_env env;
        char code[32] = "";
        enum mkto_class cls;
        int64_t until, wall;
        bool unusable = false;

        mkto_env_parse(&env, c->reply.data, c->reply.len);
        cls = mkto_classify(status, transport, &env, code, sizeof(code));
        if (c->reply_too_big)
                snprintf(code, sizeof(code), "reply_too_big");
        call_detach(c);
        mls_log(MLS_LOG_DEBUG, "mkto", "call done",
                MLS_KV_STR("instance", mk_id(mk)),
                MLS_KV_STR("call", kind_names[c->kind]),
                MLS_KV_INT("status", status),
                MLS_KV_STR("code", code[0] ? code : "ok"));
        switch (cls) {
        case MKTO_C_OK:
                c->reauthed = false;
                job_on_reply(j, &env, now, &unusable);
                if (unusable) {
                        mk->st.errors_other++;
                        job_retry(j, "bad_reply", now);
                }
                break;
        case MKTO_C_REAUTH:
                mk->st.errors_other++;
                if (c->token_gen == mk->token_gen)
                        mk->token_exp_ms = 0;
                if (!c->reauthed) {
                        c->reauthed = true;
                        c->not_before_ms = now;
                        break;
                }
                job_retry(j, code, now);
                break;
        case MKTO_C_RETRY:
                mk->st.errors_other++;
                job_retry(j, code, now);
                break;
        case MKTO_C_RATE:
                mk->gate_code = 606;
                /* Marketo counted the refused call as well, so its window
                 * is sure to have room only 20 s after it. */
                mk->st.errors_606++;
                until = now + MLS_LIMITER_WINDOW_MS + MK_RATE_MARGIN_MS;
                mls_limiter_hold(mk->lim, until);
                c->not_before_ms = until;
                if (++c->limit_waits > MK_LIMIT_WAITS_MAX) {
                        job_fail(j, MLS_ERR_TRANSIENT, code, until, now,
                                 "%s on instance %s kept hitting the rate limit",
                                 kind_names[c->kind], mk_id(mk));
                        break;
                }
                mls_log(MLS_LOG_WARN, "mkto", "rate limited",
                        MLS_KV_STR("instance", mk_id(mk)),
                        MLS_KV_STR("call", kind_names[c->kind]),
                        MLS_KV_STR("code", code),
                        MLS_KV_INT("hold_ms", until - now));
                break;
        case MKTO_C_CONC:
                mk->gate_code = 615;
                mk->st.errors_615++;
                until = now + mls_backoff_ms(c->limit_waits, MK_CONC_BASE_MS,
                                             MK_CONC_CAP_MS);
                mls_limiter_hold(mk->lim, until);
                c->not_before_ms = until;
                if (++c->limit_waits > MK_LIMIT_WAITS_MAX) {
                        job_fail(j, MLS_ERR_TRANSIENT, code, until, now,
                                 "%s on instance %s kept hitting the concurrency limit",
                                 kind_names[c->kind], mk_id(mk));
                        break;
                }
                mls_log(MLS_LOG_DEBUG, "mkto", "concurrency limited",
                        MLS_KV_STR("instance", mk_id(mk)),
                        MLS_KV_STR("call", kind_names[c->kind]),
                        MLS_KV_INT("hold_ms", until - now));
                break;
        case MKTO_C_QUOTA:
                mk->gate_code = 607;
                mk->st.errors_607++;
                wall = mls_wall_ms();
                until = now + (mkto_next_reset_wall_ms(wall) - wall);
                mls_limiter_hold(mk->lim, until);
                mk->quota_until_ms = until;
                job_fail(j, MLS_ERR_QUOTA, code, until, now,
                         "daily API quota of instance %s is spent (%s); nothing is sent until Marketo's reset",
                         mk_id(mk), code);
                break;
        case MKTO_C_FATAL:
                mk->st.errors_other++;
                if (job_on_code(j, code, now))
                        break;
                job_fail(j, MLS_ERR_FATAL, code, now + MK_FATAL_RETRY_MS,
                         now, "%s on instance %s refused: %s %s",
                         kind_names[c->kind], mk_id(mk), code, env.message);
                break;
        }
        mkto_env_fini(&env);
}

static void on_transfer_done(struct mcall *c, CURLcode rc, int64_t now)
{
        struct mls_mkto *mk = c->mk;
        long status = 0;
        int64_t sent;
        bool gated;

        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        c->in_flight = false;
        mls_limiter_release(mk->lim, now);
        if (c->kind == K_TOKEN) {
                token_done(mk, status, (int)rc, now);
                return;
        }
        /* job_reply may re-arm or finish this call: take what the gate
         * needs first; the classification leaves Marketo's code in
         * gate_code. */
        gated = c->gated;
        sent = c->sent_ms;
        c->gated = false;
        mk->gate_code = 0;
        job_reply(c->job, status, (int)rc, now);
        if (gated && mk->gate.ended)
                mk->gate.ended(mk->gate.opaque, mk->gate_code, sent, now);
}

/* ---- the pump: advance jobs, fetch tokens, send calls ---- */

static int64_t reset_after(int64_t now)
{
        int64_t wall = mls_wall_ms();

        return now + (mkto_next_reset_wall_ms(wall) - wall);
}

/* Quota checks: Marketo said 607, or our own daily allowance is spent. */
static void check_quota(struct mls_mkto *mk, int64_t now)
{
        long daily = mk->inst->budget.daily_calls;
        char detail[256];

        if (now >= mk->next_reset_ms) {
                mls_limiter_daily_reset(mk->lim);
                mk->next_reset_ms = reset_after(now);
        }
        if (daily > 0 && mls_limiter_daily_used(mk->lim) >= daily &&
            mk->quota_until_ms < mk->next_reset_ms)
                mk->quota_until_ms = mk->next_reset_ms;
        if (now >= mk->quota_until_ms)
                return;
        snprintf(detail, sizeof(detail),
                 "daily API quota of instance %s is spent; waiting for Marketo's reset",
                 mk_id(mk));
        fail_waiting(mk, MLS_ERR_QUOTA, "607", mk->quota_until_ms, now,
                     detail);
}

static int64_t client_pump(struct mls_mkto *mk, int64_t now)
{
        int64_t wake = INT64_MAX;
        bool need_token = false;
        int64_t wait;

again:
        mk->jobs_changed = false;
        for (struct mjob *j = mk->jobs_head; j; j = j->next) {
                if (j->waiting || j->call.active)
                        continue;
                job_advance(j, now);
                if (mk->jobs_changed)
                        goto again;
        }
        check_quota(mk, now);

        for (struct mjob *j = mk->jobs_head; j; j = j->next) {
                if (j->call.active && !j->call.in_flight)
                        need_token = true;
        }
        if (need_token && token_wanted(mk, now) && !mk->tcall.in_flight) {
                /* LIMIT: the limiter has no concurrency-only grant, so an
                 * identity call (about two per token) also takes a local
                 * window slot that Marketo would not count. */
                wait = now < mk->tcall.not_before_ms ?
                               mk->tcall.not_before_ms - now :
                               mls_limiter_acquire(mk->lim, now);
                if (wait > 1)
                        wake = min64(wake, now + wait);
                if (wait > 0) {
                        /* wait for the timer or a release */
                } else if (token_prepare(mk, now) < 0) {
                        mls_limiter_release(mk->lim, now);
                        mk->tcall.not_before_ms = now + MK_BACKOFF_CAP_MS;
                        wake = min64(wake, mk->tcall.not_before_ms);
                        fail_waiting(mk, MLS_ERR_FATAL, "no_secret",
                                     now + MK_FATAL_RETRY_MS, now,
                                     "no client secret for the instance (file unreadable or out of memory)");
                } else if (call_send(&mk->tcall) < 0) {
                        mls_limiter_release(mk->lim, now);
                        call_clear(&mk->tcall);
                        mk->tcall.not_before_ms = now + 1000;
                        wake = min64(wake, now + 1000);
                }
        }
        if (need_token && token_usable(mk, now) && !mk->tcall.in_flight)
                wake = min64(wake, mk->token_refresh_ms);
        if (!token_usable(mk, now))
                return wake;

        for (struct mjob *j = mk->jobs_head; j; j = j->next) {
                struct mcall *c = &j->call;

                if (!c->active || c->in_flight)
                        continue;
                if (c->not_before_ms > now) {
                        wake = min64(wake, c->not_before_ms);
                        continue;
                }
                if (mk->gate.allow) {
                        wait = mk->gate.allow(mk->gate.opaque, now);
                        if (wait > 0) {
                                wake = min64(wake, now + wait);
                                break;
                        }
                }
                wait = mls_limiter_acquire(mk->lim, now);
                if (wait > 0) {
                        if (wait > 1)
                                wake = min64(wake, now + wait);
                        break;
                }
                if (call_send(c) < 0) {
                        mls_limiter_release(mk->lim, now);
                        c->not_before_ms = now + 1000;
                        wake = min64(wake, now + 1000);
                } else if (mk->gate.allow) {
                        c->gated = true;
                        c->sent_ms = now;
                        if (mk->gate.spent)
                                mk->gate.spent(mk->gate.opaque, now);
                }
        }
        return wake;
}

/* Run the callbacks of finished jobs, one at a time (a callback may add
 * or cancel jobs). */
static void client_flush(struct mls_mkto *mk)
{
        struct mjob *j;

        while ((j = mk->done_head) != NULL) {
                list_unlink(&mk->done_head, &mk->done_tail, j);
                mk->job_cnt--;
                if (j->cb)
                        j->cb(&j->res, j->opaque);
                job_free(j);
        }
}

/* ---- loop ---- */

struct mls_mkto_loop *mls_mkto_loop_new(void)
{
        struct mls_mkto_loop *loop = calloc(1, sizeof(*loop));

        if (!loop)
                return NULL;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                free(loop);
                return NULL;
        }
        loop->multi = curl_multi_init();
        if (!loop->multi) {
                curl_global_cleanup();
                free(loop);
                return NULL;
        }
        return loop;
}

void mls_mkto_loop_destroy(struct mls_mkto_loop *loop)
{
        if (!loop)
                return;
        while (loop->client_cnt > 0)
                mls_mkto_destroy(loop->clients[loop->client_cnt - 1]);
        curl_multi_cleanup(loop->multi);
        free(loop->clients);
        free(loop);
        curl_global_cleanup();
}

void mls_mkto_loop_watch_fd(struct mls_mkto_loop *loop, int fd)
{
        if (fd < 0 || loop->watch_cnt >= MK_WATCH_MAX)
                return;
        for (size_t i = 0; i < loop->watch_cnt; i++) {
                if (loop->watch[i] == fd)
                        return;
        }
        loop->watch[loop->watch_cnt++] = fd;
}

static int64_t loop_pump(struct mls_mkto_loop *loop, int64_t now)
{
        int64_t wake = INT64_MAX;

        for (size_t i = 0; i < loop->client_cnt; i++)
                wake = min64(wake, client_pump(loop->clients[i], now));
        return wake;
}

static void loop_reap(struct mls_mkto_loop *loop)
{
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(loop->multi, &left)) != NULL) {
                struct mcall *c = NULL;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &c);
                if (!c)
                        continue;
                on_transfer_done(c, msg->data.result, mls_now_ms());
        }
}

int mls_mkto_loop_run(struct mls_mkto_loop *loop, int timeout_ms)
{
        struct curl_waitfd fds[MK_WATCH_MAX];
        int64_t now = mls_now_ms();
        int64_t wake = loop_pump(loop, now);
        int running = 0;
        int wait = timeout_ms < 0 ? 0 : timeout_ms;
        int pending = 0;

        curl_multi_perform(loop->multi, &running);
        for (size_t i = 0; i < loop->client_cnt; i++) {
                if (loop->clients[i]->done_head)
                        wait = 0;
        }
        if (wake != INT64_MAX && wake - now < wait)
                wait = wake <= now ? 0 : (int)(wake - now);
        for (size_t i = 0; i < loop->watch_cnt; i++) {
                fds[i].fd = loop->watch[i];
                fds[i].events = CURL_WAIT_POLLIN;
                fds[i].revents = 0;
        }
        curl_multi_poll(loop->multi, fds, (unsigned)loop->watch_cnt, wait,
                        NULL);
        curl_multi_perform(loop->multi, &running);
        loop_reap(loop);
        loop_pump(loop, mls_now_ms());
        curl_multi_perform(loop->multi, &running);
        loop_reap(loop);
        for (size_t i = 0; i < loop->client_cnt; i++)
                client_flush(loop->clients[i]);
        for (size_t i = 0; i < loop->client_cnt; i++)
                pending += (int)loop->clients[i]->job_cnt;
        return pending;
}

/* ---- client ---- */

struct mls_mkto *mls_mkto_new(struct mls_mkto_loop *loop,
                              const struct mls_cfg_instance *inst,
                              char *errstr, size_t errstr_size)
{
        struct mls_mkto *mk;
        const struct mls_budget *b = &inst->budget;

        if (!inst->munchkin_id || !inst->endpoint || !inst->client_id ||
            !inst->folder || !*inst->folder ||
            (!inst->client_secret && !inst->client_secret_file)) {
                snprintf(errstr, errstr_size,
                         "instance %s: endpoint, client_id, client secret and folder are required",
                         inst->munchkin_id ? inst->munchkin_id : "?");
                return NULL;
        }
        mk = calloc(1, sizeof(*mk));
        if (!mk)
                goto nomem;
        if (mls_endpoint_parse(inst->endpoint, &mk->ep, errstr,
                               errstr_size) != MLS_OK) {
                free(mk);
                return NULL;
        }
        mk->lim = mls_limiter_new(b->calls_per_20s, b->concurrent_calls,
                                  b->daily_calls);
        if (!mk->lim)
                goto nomem;
        if (loop->client_cnt == loop->client_cap) {
                size_t n = loop->client_cap ? loop->client_cap * 2 : 4;
                struct mls_mkto **nc =
                        realloc(loop->clients, n * sizeof(*nc));

                if (!nc)
                        goto nomem;
                loop->clients = nc;
                loop->client_cap = n;
        }
        mk->loop = loop;
        mk->inst = inst;
        mk->call_timeout_ms = MK_DEFAULT_TIMEOUT_MS;
        mk->max_attempts = MK_DEFAULT_ATTEMPTS;
        mk->backoff_base_ms = MK_DEFAULT_BACKOFF_MS;
        mk->tcall.mk = mk;
        mk->next_reset_ms = reset_after(mls_now_ms());
        loop->clients[loop->client_cnt++] = mk;
        return mk;
nomem:
        if (mk)
                mls_limiter_destroy(mk->lim);
        free(mk);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
}

void mls_mkto_cancel_all(struct mls_mkto *mk)
{
        int64_t now = mls_now_ms();
        struct mjob *j;

        while ((j = mk->jobs_head) != NULL) {
                j->res.err = MLS_ERR_CANCELLED;
                snprintf(j->res.code, sizeof(j->res.code), "cancelled");
                snprintf(j->res.errstr, sizeof(j->res.errstr),
                         "job on instance %s cancelled", mk_id(mk));
                job_finish(j, now);
        }
        client_flush(mk);
}

void mls_mkto_destroy(struct mls_mkto *mk)
{
        struct mls_mkto_loop *loop;

        if (!mk)
                return;
        loop = mk->loop;
        mk->destroying = true;
        mls_mkto_cancel_all(mk);
        call_abort(&mk->tcall, mls_now_ms());
        for (size_t i = 0; i < loop->client_cnt; i++) {
                if (loop->clients[i] == mk) {
                        loop->clients[i] = loop->clients[--loop->client_cnt];
                        break;
                }
        }
        for (size_t i = 0; i < mk->list_cnt; i++)
                free(mk->lists[i].key);
        free(mk->lists);
        mls_limiter_destroy(mk->lim);
        explicit_bzero(mk->token, sizeof(mk->token));
        free(mk);
}

void mls_mkto_set_tuning(struct mls_mkto *mk, int call_timeout_ms,
                         int max_attempts, int backoff_base_ms)
{
        if (call_timeout_ms > 0)
                mk->call_timeout_ms = call_timeout_ms;
        if (max_attempts > 0)
                mk->max_attempts = (unsigned)max_attempts;
        if (backoff_base_ms > 0)
                mk->backoff_base_ms = backoff_base_ms > MK_BACKOFF_CAP_MS ?
                                              MK_BACKOFF_CAP_MS :
                                              backoff_base_ms;
}

/* Lower-case, dedupe and sort the emails of a new job. */
static int job_emails(struct mjob *j, const char *const *emails, size_t n)
{
        struct epair *p;
        size_t u = 0;

        j->emails = calloc(n ? n : 1, sizeof(*j->emails));
        j->uidx = calloc(n ? n : 1, sizeof(*j->uidx));
        j->uniq = calloc(n ? n : 1, sizeof(*j->uniq));
        j->urej = calloc(n ? n : 1, sizeof(*j->urej));
        j->lk = calloc(MLS_MKTO_BATCH_MAX, sizeof(*j->lk));
        p = calloc(n ? n : 1, sizeof(*p));
        if (!j->emails || !j->uidx || !j->uniq || !j->urej || !j->lk || !p)
                goto fail;
        for (size_t i = 0; i < n; i++) {
                j->emails[i] = mls_strdup_lower(emails[i] ? emails[i] : "");
                if (!j->emails[i])
                        goto fail;
                j->email_cnt = i + 1;
                p[i].email = j->emails[i];
                p[i].orig = i;
        }
        qsort(p, n, sizeof(*p), cmp_pair);
        for (size_t i = 0; i < n; i++) {
                if (i == 0 || strcmp(p[i].email, p[i - 1].email))
                        j->uniq[u++] = p[i].email;
                j->uidx[p[i].orig] = u - 1;
        }
        j->uniq_cnt = u;
        free(p);
        return 0;
fail:
        free(p);
        return -1;
}

enum mls_err mls_mkto_sync(struct mls_mkto *mk, const char *list_name,
                           enum mls_mkto_op op, const char *const *emails,
                           size_t email_cnt, mls_mkto_done_cb *cb,
                           void *opaque)
{
        struct mjob *j;

        if (mk->destroying)
                return MLS_ERR_CANCELLED;
        j = calloc(1, sizeof(*j));
        if (!j)
                return MLS_ERR_NOMEM;
        j->mk = mk;
        j->op = op;
        j->cb = cb;
        j->opaque = opaque;
        j->call.mk = mk;
        j->call.job = j;
        j->list_name = strdup(list_name ? list_name : "");
        j->list_key = mls_strdup_lower(list_name ? list_name : "");
        if (!j->list_name || !j->list_key ||
            job_emails(j, emails, email_cnt) < 0) {
                job_free(j);
                return MLS_ERR_NOMEM;
        }
        /* Nothing to change: no call needed, not even the list. */
        j->step = email_cnt ? S_FOLDER : S_CHUNK;
        list_append(&mk->jobs_head, &mk->jobs_tail, j);
        mk->job_cnt++;
        return MLS_OK;
}

size_t mls_mkto_pending(const struct mls_mkto *mk)
{
        return mk->job_cnt;
}

void mls_mkto_get_stats(const struct mls_mkto *mk,
                        struct mls_mkto_stats *stats)
{
        *stats = mk->st;
        stats->in_flight = mls_limiter_in_flight(mk->lim);
        stats->window_used = mls_limiter_window_used(mk->lim, mls_now_ms());
}

struct mls_limiter *mls_mkto_limiter(struct mls_mkto *mk)
{
        return mk->lim;
}

const char *mls_mkto_instance(const struct mls_mkto *mk)
{
        return mk->inst->munchkin_id;
}

void mls_mkto_set_gate(struct mls_mkto *mk, const struct mls_mkto_gate *g)
{
        if (g)
                mk->gate = *g;
        else
                memset(&mk->gate, 0, sizeof(mk->gate));
}
