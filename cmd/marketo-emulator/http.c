/* SPDX-License-Identifier: Apache-2.0
 *
 * http.c - the emulator's HTTP plumbing: libmicrohttpd with a thread per
 * connection, request collection with Marketo's size limits, parameter
 * parsing, routing to the handlers, faults and latency, and the two
 * response envelope dialects.
 *
 * One call to /<munchkin>/... goes: size checks (414, 413), route (605,
 * 610), token (600-602), admission (606, 607, 615), fault draw, latency
 * sleep with the concurrency slot held and the lock released, handler,
 * release, counting, reply. 413/414/605/610 and token failures are
 * counted in total_calls and errors but take no rate-window slot.
 * Choices where marketo-api.md is UNCERTAIN:
 * - Only _method=GET overrides a POST; any other _method value is 605,
 *   so a client that tries POST ?_method=DELETE sees it fail loudly
 *   instead of having its removals run as additions.
 * - A path with an empty segment ("//") is 610 "Requested resource not
 *   found": Adobe is deprecating double slashes at its gateway.
 * - Dot segments ("/rest/../bulk/v1") are resolved, as Marketo's front
 *   end evidently does for node-marketo-rest.
 */
#include "emu.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "mlsync/util.h"

/* libmicrohttpd's own header buffer: large enough that our 414 answers
 * URIs between 8 KB and this size. */
#define HTTP_CONN_MEMORY (256 * 1024)
#define HTTP_IDLE_TIMEOUT_S 120

enum target {
        TGT_NONE = 0, /* unknown: 404 */
        TGT_ADMIN,
        TGT_INSTANCE,
};

/* Per request state; the emu_req comes first so handlers see only it. */
struct conn_req {
        struct emu_req rq;
        struct emu *e;
        enum target target;
        struct emu_instance *in;
        char *path;           /* decoded, normalised, after the munchkin */
        const char *admin_what;
        enum emu_route route;
        int route_err;        /* 605 or 610 when the route is bad */
        char route_msg[128];
        int64_t path_id;
};

struct route_def {
        const char *method;
        const char *pattern; /* "{id}" matches a decimal id */
        enum emu_route route;
};

static const struct route_def routes[] = {
        { "GET", "/identity/oauth/token", EMU_RT_IDENTITY },
        { "POST", "/identity/oauth/token", EMU_RT_IDENTITY },
        { "GET", "/rest/asset/v1/folder/byName.json", EMU_RT_FOLDER_BYNAME },
        { "GET", "/rest/asset/v1/folder/{id}.json", EMU_RT_FOLDER_GET },
        { "GET", "/rest/asset/v1/staticList/byName.json", EMU_RT_SL_BYNAME },
        { "GET", "/rest/asset/v1/staticList/{id}.json", EMU_RT_SL_GET },
        { "POST", "/rest/asset/v1/staticList/{id}/delete.json",
          EMU_RT_SL_DELETE },
        { "GET", "/rest/asset/v1/staticLists.json", EMU_RT_SL_BROWSE },
        { "POST", "/rest/asset/v1/staticLists.json", EMU_RT_SL_CREATE },
        { "POST", "/rest/v1/leads.json", EMU_RT_LEADS_SYNC },
        { "GET", "/rest/v1/leads.json", EMU_RT_LEADS_LOOKUP },
        { "POST", "/rest/v1/lists/{id}/leads.json", EMU_RT_LIST_ADD },
        { "DELETE", "/rest/v1/lists/{id}/leads.json", EMU_RT_LIST_REMOVE },
        { "GET", "/rest/v1/lists/{id}/leads.json", EMU_RT_LIST_MEMBERS },
        { "GET", "/rest/v1/list/{id}/leads.json", EMU_RT_LIST_MEMBERS },
        { "GET", "/rest/v1/lists/{id}/leads/ismember.json",
          EMU_RT_LIST_ISMEMBER },
        { "GET", "/rest/v1/lists/{id}.json", EMU_RT_LIST_GET },
        { "GET", "/rest/v1/lists.json", EMU_RT_LISTS_QUERY },
        { "GET", "/rest/v1/stats/usage.json", EMU_RT_USAGE },
        { "GET", "/rest/v1/stats/usage/last7days.json", EMU_RT_USAGE },
        { "POST", "/bulk/v1/leads.json", EMU_RT_BULK_IMPORT },
        { "GET", "/bulk/v1/leads/batch/{id}.json", EMU_RT_BULK_STATUS },
        { "GET", "/bulk/v1/leads/batch/{id}/failures.json",
          EMU_RT_BULK_FAILURES },
        { "GET", "/bulk/v1/leads/batch/{id}/warnings.json",
          EMU_RT_BULK_WARNINGS },
};

static emu_handler_cb *const handlers[EMU_RT_COUNT] = {
        [EMU_RT_IDENTITY] = emu_identity,
        [EMU_RT_FOLDER_BYNAME] = emu_folder_by_name,
        [EMU_RT_FOLDER_GET] = emu_folder_get,
        [EMU_RT_SL_BYNAME] = emu_sl_by_name,
        [EMU_RT_SL_GET] = emu_sl_get,
        [EMU_RT_SL_BROWSE] = emu_sl_browse,
        [EMU_RT_SL_CREATE] = emu_sl_create,
        [EMU_RT_SL_DELETE] = emu_sl_delete,
        [EMU_RT_LEADS_SYNC] = emu_leads_sync,
        [EMU_RT_LEADS_LOOKUP] = emu_leads_lookup,
        [EMU_RT_LIST_ADD] = emu_list_addrm,
        [EMU_RT_LIST_REMOVE] = emu_list_addrm,
        [EMU_RT_LIST_MEMBERS] = emu_list_members,
        [EMU_RT_LIST_ISMEMBER] = emu_list_ismember,
        [EMU_RT_LIST_GET] = emu_list_get,
        [EMU_RT_LISTS_QUERY] = emu_lists_query,
        [EMU_RT_USAGE] = emu_usage,
        [EMU_RT_BULK_IMPORT] = emu_bulk_import,
        [EMU_RT_BULK_STATUS] = emu_bulk_status,
        [EMU_RT_BULK_FAILURES] = emu_bulk_file,
        [EMU_RT_BULK_WARNINGS] = emu_bulk_file,
};

/* ---- small helpers handlers use -------------------------------------- */

const char *emu_param(const struct emu_req *rq, const char *key)
{
        for (size_t i = 0; i < rq->param_cnt; i++)
                if (!strcmp(rq->params[i].key, key))
                        return rq->params[i].val;
        return NULL;
}

/* Optional integer parameter; 1003 on junk or outside [lo, hi]. */
bool emu_int_param(struct emu_ctx *c, const char *key, int64_t dflt,
                      int64_t lo, int64_t hi, int64_t *out)
{
        const char *v = emu_param(c->rq, key);

        *out = dflt;
        if (!v || !*v)
                return true;
        if (!emu_parse_i64(v, out) || *out < lo || *out > hi) {
                emu_fail(c, 1003, "Invalid value for %s, expected %lld to %lld", key, (long long)lo, (long long)hi);
                return false;
        }
        return true;
}

void emu_fail(struct emu_ctx *c, int code, const char *fmt, ...)
{
        va_list ap;

        c->err_code = code;
        va_start(ap, fmt);
        vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
        va_end(ap);
}

void emu_warn(struct emu_ctx *c, const char *msg)
{
        if (!c->warnings)
                c->warnings = json_object_new_array();
        if (c->warnings)
                json_object_array_add(c->warnings,
                                      json_object_new_string(msg));
}

void emu_result_add(struct emu_ctx *c, json_object *item)
{
        if (!c->result)
                c->result = json_object_new_array();
        if (!c->result) {
                json_object_put(item);
                return;
        }
        json_object_array_add(c->result, item);
}

json_object *emu_json_parse(const char *buf, size_t len)
{
        json_tokener *tok;
        json_object *o;
        size_t used;

        if (!buf || len > INT32_MAX)
                return NULL;
        tok = json_tokener_new();
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, buf, (int)len);
        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(o);
                json_tokener_free(tok);
                return NULL;
        }
        used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        for (; used < len; used++) {
                if (!isspace((unsigned char)buf[used])) {
                        json_object_put(o);
                        return NULL;
                }
        }
        return o;
}

bool emu_ctype_is(const char *ctype, const char *type)
{
        size_t n = strlen(type);

        if (!ctype)
                return false;
        while (*ctype == ' ' || *ctype == '\t')
                ctype++;
        if (strncasecmp(ctype, type, n))
                return false;
        ctype += n;
        return *ctype == '\0' || *ctype == ';' || *ctype == ' ' ||
               *ctype == '\t';
}

bool emu_parse_i64(const char *s, int64_t *out)
{
        bool neg = false;
        uint64_t v = 0;
        uint64_t lim;

        if (!s || !*s)
                return false;
        if (*s == '-') {
                neg = true;
                s++;
                if (!*s)
                        return false;
        }
        lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (; *s; s++) {
                unsigned d;

                if (*s < '0' || *s > '9')
                        return false;
                d = (unsigned)(*s - '0');
                if (v > (lim - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *out = neg ? (int64_t)(0 - v) : (int64_t)v;
        return true;
}

static int hex_val(char ch)
{
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

char *emu_url_decode(const char *s, size_t n, bool plus_space)
{
        char *out = malloc(n + 1);
        size_t j = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;

                if (s[i] == '+' && plus_space) {
                        out[j++] = ' ';
                        continue;
                }
                hi = s[i] == '%' && i + 2 < n ? hex_val(s[i + 1]) : -1;
                lo = hi >= 0 ? hex_val(s[i + 2]) : -1;
                if (lo >= 0) {
                        out[j++] = (char)(hi * 16 + lo);
                        i += 2;
                        continue;
                }
                out[j++] = s[i]; /* a stray '%' stays as it is */
        }
        out[j] = '\0';
        return out;
}

static int param_add(struct emu_req *rq, char *key, char *val)
{
        if (rq->param_cnt == rq->param_cap) {
                size_t n = rq->param_cap ? rq->param_cap * 2 : 16;
                struct emu_param *np = realloc(rq->params,
                                               n * sizeof(*np));

                if (!np)
                        return -1;
                rq->params = np;
                rq->param_cap = n;
        }
        rq->params[rq->param_cnt].key = key;
        rq->params[rq->param_cnt].val = val;
        rq->param_cnt++;
        return 0;
}

int emu_params_parse(struct emu_req *rq, const char *s, size_t n)
{
        size_t i = 0;

        while (i < n) {
                size_t end = i, eq;
                char *key, *val;

                while (end < n && s[end] != '&')
                        end++;
                eq = i;
                while (eq < end && s[eq] != '=')
                        eq++;
                if (end > i) {
                        key = emu_url_decode(s + i, eq - i, true);
                        val = eq < end ? emu_url_decode(s + eq + 1,
                                                        end - eq - 1, true) :
                                         strdup("");
                        if (!key || !val || param_add(rq, key, val) < 0) {
                                free(key);
                                free(val);
                                return -1;
                        }
                }
                i = end + 1;
        }
        return 0;
}

/* ---- paths and routes ------------------------------------------------ */

/* Resolve "." and ".." segments in place. @returns false when the path
 * has an empty segment ("//"), which is refused. */
static bool path_normalise(char *p)
{
        char *out = p;
        const char *in = p;
        bool ok = true;

        while (*in) {
                const char *seg;
                size_t len;

                if (*in == '/')
                        in++;
                seg = in;
                while (*in && *in != '/')
                        in++;
                len = (size_t)(in - seg);
                if (len == 0 && *in == '/') {
                        ok = false;
                        continue;
                }
                if (len == 1 && seg[0] == '.')
                        continue;
                if (len == 2 && seg[0] == '.' && seg[1] == '.') {
                        while (out > p && *--out != '/')
                                ;
                        continue;
                }
                if (len == 0)
                        continue; /* trailing slash */
                *out++ = '/';
                memmove(out, seg, len);
                out += len;
        }
        if (out == p)
                *out++ = '/';
        *out = '\0';
        return ok;
}

/* Match path against a pattern with at most one {id}. */
static bool pattern_match(const char *pat, const char *path, int64_t *id)
{
        const char *ph = strstr(pat, "{id}");
        size_t pre = ph ? (size_t)(ph - pat) : strlen(pat);
        char digits[24];
        size_t n = 0;

        if (strncmp(pat, path, pre))
                return false;
        if (!ph)
                return path[pre] == '\0';
        path += pre;
        while (path[n] >= '0' && path[n] <= '9' && n < sizeof(digits) - 1) {
                digits[n] = path[n];
                n++;
        }
        digits[n] = '\0';
        if (!n || !emu_parse_i64(digits, id))
                return false;
        return !strcmp(path + n, ph + 4);
}

static void route_resolve(struct conn_req *cr)
{
        bool path_known = false;

        for (size_t i = 0; i < MLS_ARRAY_LEN(routes); i++) {
                int64_t id = 0;

                if (!pattern_match(routes[i].pattern, cr->path, &id))
                        continue;
                path_known = true;
                if (strcmp(routes[i].method, cr->rq.method))
                        continue;
                cr->route = routes[i].route;
                cr->path_id = id;
                return;
        }
        cr->route = EMU_RT_UNKNOWN;
        cr->route_err = path_known ? 605 : 610;
        snprintf(cr->route_msg, sizeof(cr->route_msg),
                 path_known ? "HTTP method not supported" :
                              "Requested resource not found");
}

static bool route_is_asset(enum emu_route rt)
{
        return rt >= EMU_RT_FOLDER_BYNAME && rt <= EMU_RT_SL_DELETE;
}

/* Split the raw target into instance/admin and the rest of the path. */
static int target_parse(struct conn_req *cr)
{
        const char *uri = cr->rq.uri;
        size_t plen = strcspn(uri, "?#");
        char *dec = emu_url_decode(uri, plen, false);
        bool clean;
        char *slash;

        if (!dec)
                return -1;
        clean = path_normalise(dec);
        cr->target = TGT_NONE;
        if (!strncmp(dec, "/_admin/", 8) && dec[8]) {
                cr->target = TGT_ADMIN;
                cr->path = dec;
                cr->admin_what = dec + 8;
                cr->rq.body_limit = EMU_ADMIN_BODY_MAX;
                return 0;
        }
        slash = strchr(dec + 1, '/');
        cr->path = strdup(slash ? slash : "/");
        if (slash)
                *slash = '\0';
        cr->in = emu_instance_find(cr->e, dec + 1);
        free(dec);
        if (!cr->path)
                return -1;
        if (cr->in)
                cr->target = TGT_INSTANCE;
        cr->rq.body_limit = !strncmp(cr->path, "/bulk/", 6) ?
                                    EMU_BULK_BODY_MAX :
                                    EMU_BODY_MAX;
        if (!clean) {
                cr->route_err = 610;
                snprintf(cr->route_msg, sizeof(cr->route_msg),
                         "Requested resource not found (empty path segment)");
        }
        return 0;
}

/* ---- replies --------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *ctype, char *body, size_t len,
                             bool no_cache)
{
        struct MHD_Response *resp;
        enum MHD_Result ret;

        resp = MHD_create_response_from_buffer(len, body,
                                               MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        if (no_cache) {
                MHD_add_response_header(resp, "Cache-Control", "no-store");
                MHD_add_response_header(resp, "Pragma", "no-cache");
        }
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn,
                                  unsigned status, const char *ctype,
                                  const char *text)
{
        char *body = strdup(text);

        if (!body)
                return MHD_NO;
        return reply(conn, status, ctype, body, strlen(body), false);
}

static const char *status_phrase(int status)
{
        switch (status) {
        case 404: return "Not Found";
        case 413: return "Request Entity Too Large";
        case 414: return "Request-URI Too Long";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        default: return "Error";
        }
}

/* Gateway-style HTML, as Marketo's front end sends for HTTP errors. */
static enum MHD_Result reply_html(struct MHD_Connection *conn, int status)
{
        char buf[256];

        snprintf(buf, sizeof(buf),
                 "<html><head><title>%d %s</title></head><body><h1>%d %s</h1></body></html>\n",
                 status, status_phrase(status), status,
                 status_phrase(status));
        return reply_text(conn, (unsigned)status, "text/html", buf);
}

static void request_id(struct emu *e, char *buf, size_t size)
{
        uint64_t r = emu_rand_locked(e);

        snprintf(buf, size, "%llx#%llx", (unsigned long long)(r & 0xffff),
                 (unsigned long long)mls_wall_ms());
}

/* Build the envelope for c in its dialect. @returns a string the caller
 * frees, or NULL. */
static char *envelope(struct emu_ctx *c, const char *req_id, size_t *lenp)
{
        bool asset = c->dialect == EMU_DIALECT_ASSET;
        bool ok = c->err_code == 0;
        json_object *o = json_object_new_object();
        json_object *errs;
        const char *txt;
        char *out = NULL;

        if (!o)
                return NULL;
        json_object_object_add(o, "requestId",
                               json_object_new_string(req_id));
        if (ok && c->result) {
                json_object_object_add(o, "result", c->result);
                c->result = NULL;
        }
        json_object_object_add(o, "success", json_object_new_boolean(ok));
        if (!ok || asset) {
                errs = json_object_new_array();
                if (!ok) {
                        json_object *er = json_object_new_object();
                        char code[16];

                        snprintf(code, sizeof(code), "%d", c->err_code);
                        json_object_object_add(er, "code",
                                               json_object_new_string(code));
                        json_object_object_add(
                                er, "message",
                                json_object_new_string(c->err_msg));
                        json_object_array_add(errs, er);
                }
                json_object_object_add(o, "errors", errs);
        }
        if (asset) {
                json_object_object_add(o, "warnings",
                                       c->warnings ? c->warnings :
                                                     json_object_new_array());
                c->warnings = NULL;
        }
        if (ok && c->next_page_token[0]) {
                json_object_object_add(
                        o, "nextPageToken",
                        json_object_new_string(c->next_page_token));
                json_object_object_add(o, "moreResult",
                                       json_object_new_boolean(true));
        }
        txt = json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (txt) {
                *lenp = strlen(txt);
                out = strdup(txt);
        }
        json_object_put(o);
        return out;
}

static void ctx_fini(struct emu_ctx *c)
{
        json_object_put(c->result);
        json_object_put(c->warnings);
        free(c->raw_body);
        c->result = NULL;
        c->warnings = NULL;
        c->raw_body = NULL;
}

/* ---- one call to an instance ------------------------------------------ */

struct outcome {
        enum emu_fault fault;
        bool admitted;
        bool counted;
        bool slow;
        bool apply;
        int64_t delay_ms;
        int64_t arrival_ms;
};

/* Checks before the operation, under the lock. */
static void call_gate_locked(struct conn_req *cr, struct emu_ctx *c,
                             struct outcome *oc)
{
        struct emu *e = cr->e;
        const char *mo;

        oc->arrival_ms = c->now_ms;
        oc->delay_ms = emu_latency_draw_locked(e);
        mo = emu_param(&cr->rq, "_method");
        if (mo && strcasecmp(mo, "GET")) {
                emu_fail(c, 605, "HTTP method not supported (_method=%.32s)",
                         mo);
                return;
        }
        if (cr->route_err) {
                emu_fail(c, cr->route_err, "%s", cr->route_msg);
                return;
        }
        if (c->route == EMU_RT_IDENTITY) {
                oc->admitted = true;
                oc->fault = emu_fault_draw_locked(e, cr->path, true,
                                                  &oc->slow, &oc->apply);
                return;
        }
        if (emu_auth_check_locked(c, emu_param(&cr->rq, "access_token") !=
                                             NULL))
                return;
        if (emu_admit_locked(c, &oc->counted))
                return;
        oc->admitted = true;
        oc->fault = emu_fault_draw_locked(e, cr->path, false, &oc->slow,
                                          &oc->apply);
}

/* The code a call is counted under. */
static int outcome_code(const struct emu_ctx *c, const struct outcome *oc)
{
        switch (oc->fault) {
        case EMU_FAULT_HTTP502:
                return EMU_CODE_HTTP(502);
        case EMU_FAULT_HTTP503:
                return EMU_CODE_HTTP(503);
        case EMU_FAULT_TIMEOUT604:
                return 604;
        case EMU_FAULT_DROP:
                return EMU_CODE_DROP;
        default:
                break;
        }
        if (c->err_code)
                return c->err_code;
        if (c->raw_status && c->raw_status != 200 && c->raw_status != 206)
                return EMU_CODE_HTTP(c->raw_status);
        return EMU_CODE_OK;
}

static enum MHD_Result send_outcome(struct MHD_Connection *conn,
                                    struct emu_ctx *c,
                                    const struct outcome *oc,
                                    const char *req_id)
{
        char *body;
        size_t len = 0;

        switch (oc->fault) {
        case EMU_FAULT_HTTP502:
                return reply_html(conn, 502);
        case EMU_FAULT_HTTP503:
                return reply_html(conn, 503);
        case EMU_FAULT_DROP:
                return MHD_NO; /* close without a reply */
        case EMU_FAULT_TIMEOUT604:
                ctx_fini(c);
                c->next_page_token[0] = '\0';
                emu_fail(c, 604, "Request timed out");
                break;
        default:
                break;
        }
        /* A raw reply (identity JSON, CSV, plain text) unless a Marketo
         * error code replaced it; identity's 401 is an HTTP-level code. */
        if ((c->raw_body || c->raw_status) &&
            (!c->err_code || c->err_code >= EMU_CODE_HTTP(0))) {
                body = c->raw_body ? c->raw_body : strdup("");
                len = c->raw_body ? c->raw_len : 0;
                c->raw_body = NULL;
                if (!body)
                        return MHD_NO;
                return reply(conn, c->raw_status ? (unsigned)c->raw_status :
                                                   200,
                             c->raw_ctype ? c->raw_ctype : "text/plain", body,
                             len, c->route == EMU_RT_IDENTITY);
        }
        body = envelope(c, req_id, &len);
        if (!body)
                return MHD_NO;
        return reply(conn, 200, "application/json;charset=UTF-8", body, len,
                     false);
}

static enum MHD_Result serve_call(struct conn_req *cr,
                                  struct MHD_Connection *conn)
{
        struct emu *e = cr->e;
        struct emu_ctx c = { 0 };
        struct outcome oc = { .apply = true };
        char req_id[48];
        enum MHD_Result ret;
        int code;

        c.e = e;
        c.in = cr->in;
        c.rq = &cr->rq;
        c.route = cr->route;
        c.dialect = route_is_asset(cr->route) ? EMU_DIALECT_ASSET :
                                                EMU_DIALECT_LEADDB;
        c.path = cr->path;
        c.path_id = cr->path_id;

        pthread_mutex_lock(&e->lock);
        c.now_ms = emu_now_ms(e);
        c.wall_ms = mls_wall_ms();
        call_gate_locked(cr, &c, &oc);
        pthread_mutex_unlock(&e->lock);

        /* The slot (if admitted) stays taken while the call "runs". */
        mls_sleep_ms(oc.delay_ms + (oc.slow ? EMU_SLOW_MS : 0));

        pthread_mutex_lock(&e->lock);
        if (oc.admitted && oc.apply && handlers[c.route]) {
                c.now_ms = emu_now_ms(e);
                c.wall_ms = mls_wall_ms();
                handlers[c.route](&c);
        }
        code = outcome_code(&c, &oc);
        if (oc.admitted && c.route != EMU_RT_IDENTITY)
                emu_release_locked(c.in);
        if (code == 606) {
                int64_t now = emu_now_ms(e);
                struct emu_counters *k = &c.in->cnt;

                if (k->first_606_ms < 0 || k->last_606_ms < 0 ||
                    now - k->first_606_ms >= EMU_WINDOW_MS)
                        k->first_606_ms = now;
                k->last_606_ms = now;
        }
        emu_count_call_locked(c.in, c.route, code, oc.arrival_ms,
                              oc.counted);
        request_id(e, req_id, sizeof(req_id));
        pthread_mutex_unlock(&e->lock);

        ret = send_outcome(conn, &c, &oc, req_id);
        ctx_fini(&c);
        return ret;
}

/* Calls refused by size before any other check: counted, no slot. */
static enum MHD_Result serve_refusal(struct conn_req *cr,
                                     struct MHD_Connection *conn, int status)
{
        if (cr->target == TGT_INSTANCE) {
                struct emu *e = cr->e;

                if (!cr->route_err)
                        route_resolve(cr);
                pthread_mutex_lock(&e->lock);
                emu_count_call_locked(cr->in, cr->route,
                                      EMU_CODE_HTTP(status), emu_now_ms(e),
                                      false);
                pthread_mutex_unlock(&e->lock);
        }
        return reply_html(conn, status);
}

static enum MHD_Result serve_admin(struct conn_req *cr,
                                   struct MHD_Connection *conn)
{
        int status = 500;
        char *body = NULL;
        size_t len = 0;

        emu_admin(cr->e, &cr->rq, cr->admin_what, &status, &body, &len);
        if (!body)
                return reply_text(conn, 500, "application/json",
                                  "{\"error\":\"out of memory\"}");
        return reply(conn, (unsigned)status, "application/json", body, len,
                     false);
}

/* ---- libmicrohttpd callbacks ------------------------------------------ */

static void req_free(struct conn_req *cr)
{
        if (!cr)
                return;
        free(cr->rq.uri);
        free(cr->rq.body);
        for (size_t i = 0; i < cr->rq.param_cnt; i++) {
                free(cr->rq.params[i].key);
                free(cr->rq.params[i].val);
        }
        free(cr->rq.params);
        free(cr->path);
        free(cr);
}

/* Called with the raw request target before any parsing: the only place
 * the full URI with its query string is seen, so the 414 check and our
 * own query parsing start here. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
        struct conn_req *cr = calloc(1, sizeof(*cr));

        if (!cr)
                return NULL;
        cr->e = cls;
        cr->rq.uri = strdup(uri ? uri : "/");
        if (!cr->rq.uri) {
                free(cr);
                return NULL;
        }
        return cr;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
        req_free(*con_cls);
        *con_cls = NULL;
}

static int body_append(struct emu_req *rq, const char *data, size_t n)
{
        if (rq->too_big || rq->body_len + n > rq->body_limit) {
                rq->too_big = true;
                return 0;
        }
        if (rq->body_len + n + 1 > rq->body_cap) {
                size_t cap = rq->body_cap ? rq->body_cap : 4096;
                char *nb;

                while (cap < rq->body_len + n + 1)
                        cap *= 2;
                nb = realloc(rq->body, cap);
                if (!nb)
                        return -1;
                rq->body = nb;
                rq->body_cap = cap;
        }
        memcpy(rq->body + rq->body_len, data, n);
        rq->body_len += n;
        rq->body[rq->body_len] = '\0';
        return 0;
}

/* First call for a request: headers are in. @returns 0 to go on reading,
 * or an HTTP status to refuse with right away. */
static int request_begin(struct conn_req *cr, struct MHD_Connection *conn,
                         const char *method)
{
        struct emu_req *rq = &cr->rq;
        const char *cl, *q;
        int64_t len;

        rq->started = true;
        snprintf(rq->method, sizeof(rq->method), "%s", method);
        rq->ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!rq->ctype)
                rq->ctype = "";
        rq->authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
        if (target_parse(cr) < 0)
                return 500;
        if (cr->target == TGT_NONE)
                return 404;
        q = strchr(rq->uri, '?');
        if (q && emu_params_parse(rq, q + 1, strcspn(q + 1, "#")) < 0)
                return 500;
        if (cr->target == TGT_INSTANCE && strlen(rq->uri) > EMU_URI_MAX)
                return 414;
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && emu_parse_i64(cl, &len) && (uint64_t)len > rq->body_limit)
                return 413;
        return 0;
}

/* Whole body in: form parameters, the _method override, the route. */
static int request_complete(struct conn_req *cr)
{
        struct emu_req *rq = &cr->rq;
        const char *mo;

        if (!strcmp(rq->method, "POST") &&
            emu_ctype_is(rq->ctype, "application/x-www-form-urlencoded") &&
            rq->body_len &&
            emu_params_parse(rq, rq->body, rq->body_len) < 0)
                return -1;
        mo = emu_param(rq, "_method");
        if (!strcmp(rq->method, "POST") && mo && !strcasecmp(mo, "GET"))
                snprintf(rq->method, sizeof(rq->method), "GET");
        if (cr->target == TGT_INSTANCE && !cr->route_err)
                route_resolve(cr);
        return 0;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
        struct conn_req *cr = *con_cls;
        int status;

        if (!cr)
                return MHD_NO;
        if (!cr->rq.started) {
                status = request_begin(cr, conn, method);
                if (status == 404)
                        return reply_text(conn, 404, "text/plain",
                                          "Not Found\n");
                if (status)
                        return serve_refusal(cr, conn, status);
                return MHD_YES;
        }
        if (*upload_size) {
                if (body_append(&cr->rq, upload, *upload_size) < 0)
                        return MHD_NO;
                *upload_size = 0;
                return MHD_YES;
        }
        if (cr->rq.too_big)
                return serve_refusal(cr, conn, 413);
        if (request_complete(cr) < 0)
                return MHD_NO;
        if (cr->target == TGT_ADMIN)
                return serve_admin(cr, conn);
        return serve_call(cr, conn);
}

/* libmicrohttpd's messages, minus the one every drop fault causes. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (!strncmp(msg, "Application reported internal error", 35))
                return;
        fprintf(stderr, "marketo-emulator: libmicrohttpd: %s%s", msg,
                msg[0] && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
}

struct MHD_Daemon *emu_http_start(struct emu *e, int listen_fd,
                                  char *errstr, size_t errstr_size)
{
        struct MHD_Daemon *d;

        /* A thread per connection: latency and slow faults sleep in the
         * connection's own thread, so other calls (and concurrency
         * overlap) proceed meanwhile. */
        d = MHD_start_daemon(
                MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO |
                        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                0, NULL, NULL, on_access, e, MHD_OPTION_EXTERNAL_LOGGER,
                on_mhd_log, e, MHD_OPTION_LISTEN_SOCKET,
                listen_fd, MHD_OPTION_URI_LOG_CALLBACK, on_uri, e,
                MHD_OPTION_NOTIFY_COMPLETED, on_done, e,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
                MHD_OPTION_CONNECTION_TIMEOUT,
                (unsigned int)HTTP_IDLE_TIMEOUT_S, MHD_OPTION_END);
        if (!d)
                snprintf(errstr, errstr_size,
                         "libmicrohttpd failed to start");
        return d;
}
