/* SPDX-License-Identifier: Apache-2.0
 *
 * bulk.c - the emulator's bulk lead import: multipart upload, the FIFO
 * job queue (2 importing, 10 unfinished at most), the Queued -> Importing
 * -> Complete|Failed state machine driven by the main loop's tick, and
 * the failures and warnings files.
 *
 * Choices where marketo-api.md is UNCERTAIN or silent:
 * - format, lookupField and listId may come as query parameters or as
 *   multipart fields; the query wins. Missing format is 1002, an unknown
 *   one 1003; lookupField other than email or id is 1011; a bad listId
 *   1003, an unknown one 1013. A body that is not multipart/form-data
 *   with a boundary, or that cannot be parsed, is 613; no file part 1002.
 * - A file of only blanks is 1003 "Empty File"; a file over 10,000,000
 *   bytes is HTTP 413.
 * - The 11th unfinished job is 1016 "Too many imports"; a second import
 *   into a list with an unfinished import is 1019.
 * - A job waits at least QUEUED_MS queued and IMPORT_MS (plus a little
 *   per byte) importing; rows are applied when it completes.
 * - A header without the lookup column fails the whole job. Rows: wrong
 *   column count, no lookup value, a bad or unknown id are failures; an
 *   invalid email is imported with a warning. Several leads with one
 *   email: the most recently updated one is updated, as list imports do.
 *   Empty cells leave a field unchanged. Columns other than email, id,
 *   firstName and lastName are accepted and ignored.
 * - Status, failures or warnings of an unknown batch id are 1003; the
 *   failures and warnings files of an unfinished job are 1003 too.
 */
#include "emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlsync/util.h"

#define QUEUE_MAX 10
#define RUNNING_MAX 2
#define QUEUED_MS 200
#define IMPORT_MS 300
#define IMPORT_BYTES_PER_MS 10000
#define COLS_MAX 256
#define DUP_SCAN 64

void emu_job_destroy(struct emu_job *j)
{
        if (!j)
                return;
        free(j->data);
        free(j->failures);
        free(j->warnings);
        free(j->message);
        free(j);
}

static bool job_open(const struct emu_job *j)
{
        return j->status == EMU_JOB_QUEUED || j->status == EMU_JOB_IMPORTING;
}

bool emu_bulk_list_busy_locked(struct emu_instance *in, int64_t list_id)
{
        for (size_t i = 0; i < in->job_cnt; i++)
                if (job_open(in->jobs[i]) && in->jobs[i]->list_id == list_id)
                        return true;
        return false;
}

static struct emu_job *job_find(struct emu_instance *in, int64_t batch_id)
{
        for (size_t i = 0; i < in->job_cnt; i++)
                if (in->jobs[i]->batch_id == batch_id)
                        return in->jobs[i];
        return NULL;
}

/* ---- multipart ---------------------------------------------------------- */

struct part {
        char name[64];
        bool is_file;
        const char *data;
        size_t len;
};

struct upload {
        struct part parts[16];
        size_t cnt;
};

static const char *find_bytes(const char *hay, size_t hlen, const char *needle,
                              size_t nlen)
{
        if (nlen == 0 || hlen < nlen)
                return NULL;
        for (size_t i = 0; i + nlen <= hlen; i++)
                if (hay[i] == needle[0] && !memcmp(hay + i, needle, nlen))
                        return hay + i;
        return NULL;
}

/* The boundary parameter of a multipart/form-data Content-Type. */
static bool boundary_get(const char *ctype, char *out, size_t size)
{
        const char *p;
        size_t n;

        if (!emu_ctype_is(ctype, "multipart/form-data"))
                return false;
        for (p = ctype; *p && strncasecmp(p, "boundary=", 9); p++)
                ;
        if (!*p)
                return false;
        p += 9;
        if (*p == '"') {
                p++;
                n = strcspn(p, "\"");
        } else {
                n = strcspn(p, "; \t");
        }
        if (n == 0 || n + 3 > size)
                return false;
        snprintf(out, size, "--%.*s", (int)n, p);
        return true;
}

/* Value of attr="..." in a Content-Disposition header line. */
static bool disp_attr(const char *line, size_t len, const char *attr,
                      char *out, size_t size)
{
        size_t alen = strlen(attr);

        for (size_t i = 0; i + alen + 2 <= len; i++) {
                size_t n = 0;

                if (strncasecmp(line + i, attr, alen) ||
                    line[i + alen] != '=' ||
                    (i > 0 && line[i - 1] != ' ' && line[i - 1] != ';'))
                        continue;
                i += alen + 1;
                if (line[i] == '"') {
                        i++;
                        while (i + n < len && line[i + n] != '"')
                                n++;
                } else {
                        while (i + n < len && line[i + n] != ';')
                                n++;
                }
                snprintf(out, size, "%.*s", (int)n, line + i);
                return true;
        }
        return false;
}

/* Headers of one part, up to the blank line; fills name and is_file.
 * @returns the start of the content or NULL when malformed. */
static const char *part_headers(const char *p, const char *end,
                                struct part *pt)
{
        char fname[8];

        for (;;) {
                const char *eol = find_bytes(p, (size_t)(end - p), "\r\n", 2);
                size_t len;

                if (!eol)
                        return NULL;
                len = (size_t)(eol - p);
                if (len == 0)
                        return eol + 2;
                if (len > 20 &&
                    !strncasecmp(p, "Content-Disposition:", 20)) {
                        disp_attr(p, len, "name", pt->name, sizeof(pt->name));
                        pt->is_file = disp_attr(p, len, "filename", fname,
                                                sizeof(fname));
                }
                p = eol + 2;
        }
}

static bool multipart_parse(const struct emu_req *rq, struct upload *up)
{
        char bnd[96];
        char delim[100];
        const char *body = rq->body;
        const char *end = body + rq->body_len;
        const char *p;
        size_t blen, dlen;

        memset(up, 0, sizeof(*up));
        if (!boundary_get(rq->ctype, bnd, sizeof(bnd)))
                return false;
        blen = strlen(bnd);
        snprintf(delim, sizeof(delim), "\r\n%s", bnd);
        dlen = blen + 2;
        p = find_bytes(body, rq->body_len, bnd, blen);
        if (!p)
                return false;
        p += blen;
        while (p + 2 <= end && !(p[0] == '-' && p[1] == '-')) {
                struct part *pt = &up->parts[up->cnt];
                const char *content, *next;

                if (p[0] != '\r' || p[1] != '\n' || up->cnt == 16)
                        return false;
                memset(pt, 0, sizeof(*pt));
                content = part_headers(p + 2, end, pt);
                if (!content)
                        return false;
                next = find_bytes(content, (size_t)(end - content), delim,
                                  dlen);
                if (!next)
                        return false;
                pt->data = content;
                pt->len = (size_t)(next - content);
                up->cnt++;
                p = next + dlen;
        }
        return p + 2 <= end;
}

static const struct part *part_get(const struct upload *up, const char *name)
{
        for (size_t i = 0; i < up->cnt; i++)
                if (!strcmp(up->parts[i].name, name))
                        return &up->parts[i];
        return NULL;
}

/* A query parameter, else a small multipart field; buf holds a copy. */
static const char *opt_get(struct emu_ctx *c, const struct upload *up,
                           const char *key, char *buf, size_t size)
{
        const char *v = emu_param(c->rq, key);
        const struct part *pt;

        if (v)
                return v;
        pt = part_get(up, key);
        if (!pt || pt->is_file || pt->len >= size)
                return NULL;
        memcpy(buf, pt->data, pt->len);
        buf[pt->len] = '\0';
        return buf;
}

/* ---- submit ------------------------------------------------------------- */

struct job_opts {
        char delim;
        bool lookup_id;
        int64_t list_id;
};

static bool opts_read(struct emu_ctx *c, const struct upload *up,
                      struct job_opts *o)
{
        char fmt_b[16], lf_b[32], list_b[32];
        const char *fmt = opt_get(c, up, "format", fmt_b, sizeof(fmt_b));
        const char *lf = opt_get(c, up, "lookupField", lf_b, sizeof(lf_b));
        const char *list = opt_get(c, up, "listId", list_b, sizeof(list_b));

        memset(o, 0, sizeof(*o));
        if (!fmt || !*fmt) {
                emu_fail(c, 1002, "Missing value for required parameter 'format'");
                return false;
        }
        if (!strcasecmp(fmt, "csv")) {
                o->delim = ',';
        } else if (!strcasecmp(fmt, "tsv")) {
                o->delim = '\t';
        } else if (!strcasecmp(fmt, "ssv")) {
                o->delim = ' ';
        } else {
                emu_fail(c, 1003, "Invalid format '%.16s', expected csv, tsv or ssv", fmt);
                return false;
        }
        if (lf && *lf && !strcasecmp(lf, "id")) {
                o->lookup_id = true;
        } else if (lf && *lf && strcasecmp(lf, "email")) {
                emu_fail(c, 1011, "Field '%.32s' not supported for lookup", lf);
                return false;
        }
        if (list && *list &&
            (!emu_parse_i64(list, &o->list_id) || o->list_id <= 0)) {
                emu_fail(c, 1003, "Invalid value for listId");
                return false;
        }
        if (o->list_id && !emu_list_find(c->in, o->list_id)) {
                emu_fail(c, 1013, "Static list not found");
                return false;
        }
        return true;
}

static bool blank(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' &&
                    s[i] != '\n')
                        return false;
        return true;
}

/* Make room for one more job, dropping the oldest finished one. */
static bool jobs_room(struct emu_instance *in)
{
        if (in->job_cnt >= EMU_JOBS_KEPT) {
                for (size_t i = 0; i < in->job_cnt; i++) {
                        if (job_open(in->jobs[i]))
                                continue;
                        emu_job_destroy(in->jobs[i]);
                        memmove(&in->jobs[i], &in->jobs[i + 1],
                                (in->job_cnt - i - 1) * sizeof(in->jobs[0]));
                        in->job_cnt--;
                        break;
                }
        }
        if (in->job_cnt == in->job_cap) {
                size_t n = in->job_cap ? in->job_cap * 2 : 16;
                struct emu_job **nj = realloc(in->jobs, n * sizeof(*nj));

                if (!nj)
                        return false;
                in->jobs = nj;
                in->job_cap = n;
        }
        return true;
}

static json_object *job_json(const struct emu_job *j)
{
        static const char *const names[] = { "Queued", "Importing",
                                             "Complete", "Failed" };
        json_object *o = json_object_new_object();
        char id[24];

        snprintf(id, sizeof(id), "%lld", (long long)j->batch_id);
        json_object_object_add(o, "batchId",
                               json_object_new_int64(j->batch_id));
        json_object_object_add(o, "importId", json_object_new_string(id));
        json_object_object_add(o, "status",
                               json_object_new_string(names[j->status]));
        if (j->status == EMU_JOB_QUEUED)
                return o;
        json_object_object_add(o, "numOfLeadsProcessed",
                               json_object_new_int64(j->processed));
        json_object_object_add(o, "numOfRowsFailed",
                               json_object_new_int64(j->failed));
        json_object_object_add(o, "numOfRowsWithWarning",
                               json_object_new_int64(j->warned));
        json_object_object_add(o, "message",
                               json_object_new_string(j->message ?
                                                              j->message :
                                                              "Import in progress"));
        return o;
}

static size_t open_jobs(const struct emu_instance *in)
{
        size_t n = 0;

        for (size_t i = 0; i < in->job_cnt; i++)
                n += job_open(in->jobs[i]);
        return n;
}

static void fail_413(struct emu_ctx *c)
{
        static const char msg[] = "Request Entity Too Large\n";

        c->raw_body = strdup(msg);
        c->raw_len = c->raw_body ? strlen(msg) : 0;
        c->raw_status = 413;
        c->raw_ctype = "text/plain";
        c->err_code = EMU_CODE_HTTP(413);
}

void emu_bulk_import(struct emu_ctx *c)
{
        struct upload up;
        const struct part *file;
        struct job_opts o;
        struct emu_job *j;

        if (!multipart_parse(c->rq, &up)) {
                emu_fail(c, 613, "Invalid multipart request");
                return;
        }
        file = part_get(&up, "file");
        if (!file) {
                emu_fail(c, 1002, "Missing value for required parameter 'file'");
                return;
        }
        if (file->len > EMU_BULK_FILE_MAX) {
                fail_413(c);
                return;
        }
        if (blank(file->data, file->len)) {
                emu_fail(c, 1003, "Empty File");
                return;
        }
        if (!opts_read(c, &up, &o))
                return;
        if (open_jobs(c->in) >= QUEUE_MAX) {
                emu_fail(c, 1016, "Too many imports");
                return;
        }
        if (o.list_id && emu_bulk_list_busy_locked(c->in, o.list_id)) {
                emu_fail(c, 1019, "Import in progress");
                return;
        }

        j = calloc(1, sizeof(*j));
        if (j)
                j->data = malloc(file->len + 1);
        if (!j || !j->data || !jobs_room(c->in)) {
                emu_job_destroy(j);
                emu_fail(c, 611, "System error");
                return;
        }
        memcpy(j->data, file->data, file->len);
        j->data[file->len] = '\0';
        j->data_len = file->len;
        j->batch_id = c->in->next_batch_id++;
        j->status = EMU_JOB_QUEUED;
        j->delim = o.delim;
        j->lookup_id = o.lookup_id;
        j->list_id = o.list_id;
        j->queued_ms = c->now_ms;
        c->in->jobs[c->in->job_cnt++] = j;
        emu_result_add(c, job_json(j));
}

static struct emu_job *job_need(struct emu_ctx *c)
{
        struct emu_job *j = job_find(c->in, c->path_id);

        if (!j)
                emu_fail(c, 1003, "Invalid batchId %lld", (long long)c->path_id);
        return j;
}

void emu_bulk_status(struct emu_ctx *c)
{
        struct emu_job *j = job_need(c);

        if (j)
                emu_result_add(c, job_json(j));
}

void emu_bulk_file(struct emu_ctx *c)
{
        struct emu_job *j = job_need(c);
        bool warn = c->route == EMU_RT_BULK_WARNINGS;
        const char *src;
        size_t len;

        if (!j)
                return;
        if (job_open(j)) {
                emu_fail(c, 1003, "Import %lld is not finished", (long long)j->batch_id);
                return;
        }
        src = warn ? j->warnings : j->failures;
        len = warn ? j->warnings_len : j->failures_len;
        c->raw_body = malloc(len + 1);
        if (!c->raw_body) {
                emu_fail(c, 611, "System error");
                return;
        }
        if (len)
                memcpy(c->raw_body, src, len);
        c->raw_body[len] = '\0';
        c->raw_len = len;
        c->raw_status = 200;
        c->raw_ctype = "text/csv;charset=UTF-8";
}

/* ---- processing --------------------------------------------------------- */

struct buf {
        char *p;
        size_t len, cap;
};

static int buf_put(struct buf *b, const char *s, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                char *np;

                while (cap < b->len + n + 1)
                        cap *= 2;
                np = realloc(b->p, cap);
                if (!np)
                        return -1;
                b->p = np;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

/* One parsed row: cells as NUL-separated strings in cells.p. */
struct row {
        const char *raw;  /* the row as it is in the file */
        size_t raw_len;
        struct buf cells;
        size_t off[COLS_MAX];
        size_t cnt;
        bool too_wide;
};

/* Parse the row at p (quotes as in RFC 4180, for every delimiter).
 * @returns the start of the next row. */
static const char *row_parse(const char *p, const char *end, char delim,
                             struct row *r)
{
        bool quoted = false;

        r->raw = p;
        r->cells.len = 0;
        r->cnt = 0;
        r->too_wide = false;
        r->off[r->cnt++] = 0;
        while (p < end) {
                if (quoted) {
                        if (*p == '"' && p + 1 < end && p[1] == '"') {
                                buf_put(&r->cells, "\"", 1);
                                p += 2;
                                continue;
                        }
                        if (*p == '"')
                                quoted = false;
                        else
                                buf_put(&r->cells, p, 1);
                        p++;
                        continue;
                }
                if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'))
                        break;
                if (*p == '"') {
                        quoted = true;
                } else if (*p == delim) {
                        buf_put(&r->cells, "", 1); /* NUL ends the cell */
                        if (r->cnt == COLS_MAX)
                                r->too_wide = true;
                        else
                                r->off[r->cnt++] = r->cells.len;
                } else {
                        buf_put(&r->cells, p, 1);
                }
                p++;
        }
        buf_put(&r->cells, "", 0);
        r->raw_len = (size_t)(p - r->raw);
        if (p < end && *p == '\r')
                p++;
        return p < end ? p + 1 : p;
}

static const char *cell(const struct row *r, int col)
{
        if (col < 0 || (size_t)col >= r->cnt || !r->cells.p)
                return "";
        return r->cells.p + r->off[col];
}

struct proc {
        struct emu_instance *in;
        struct emu_job *j;
        struct emu_list *list;
        int64_t wall_ms;
        int col_email, col_id, col_first, col_last;
        size_t cols;
        struct buf fail, warn;
};

/* Append a cell to out, quoted only when it holds the delimiter, a
 * quote or a line break. */
static void cell_put(struct buf *out, const char *s, char delim)
{
        if (!strchr(s, delim) && !strpbrk(s, "\"\r\n")) {
                buf_put(out, s, strlen(s));
                return;
        }
        buf_put(out, "\"", 1);
        for (; *s; s++) {
                buf_put(out, s, 1);
                if (*s == '"')
                        buf_put(out, "\"", 1); /* doubled inside quotes */
        }
        buf_put(out, "\"", 1);
}

/* Append a row as it was in the file plus a reason column to out. */
static void note(struct proc *pr, struct buf *out, const struct row *r,
                 const char *reason)
{
        char d = pr->j->delim;

        buf_put(out, r->raw, r->raw_len);
        buf_put(out, &d, 1);
        cell_put(out, reason, d);
        buf_put(out, "\n", 1);
}

/* The lead a row with this email updates: the most recently updated
 * match, or -1 for none. */
static int64_t pick_lead(struct emu_instance *in, const char *email)
{
        int64_t idx[DUP_SCAN];
        size_t n = emu_lead_find_locked(in, email, idx, DUP_SCAN);
        int64_t best = -1;

        if (n > DUP_SCAN)
                n = DUP_SCAN;
        for (size_t i = 0; i < n; i++)
                if (best < 0 || in->leads[idx[i]].updated_wall_ms >=
                                        in->leads[best].updated_wall_ms)
                        best = idx[i];
        return best;
}

static const char *nonempty(const char *s)
{
        return *s ? s : NULL;
}

/* Apply one data row. @returns the failure reason or NULL. */
static const char *row_apply(struct proc *pr, const struct row *r)
{
        const char *first = nonempty(cell(r, pr->col_first));
        const char *last = nonempty(cell(r, pr->col_last));
        int64_t idx, id;

        if (r->cnt != pr->cols || r->too_wide)
                return "Column count does not match the header";
        if (pr->j->lookup_id) {
                if (!emu_parse_i64(cell(r, pr->col_id), &id))
                        return "Value for lookup field 'id' not found";
                idx = emu_lead_index(pr->in, id);
                if (idx < 0)
                        return "Lead not found";
                emu_lead_update_locked(pr->in, idx, first, last, pr->wall_ms);
        } else {
                const char *email = cell(r, pr->col_email);

                if (!*email)
                        return "Value for lookup field 'email' not found";
                if (!emu_email_valid(email)) {
                        note(pr, &pr->warn, r, "Invalid email address");
                        pr->j->warned++;
                }
                idx = pick_lead(pr->in, email);
                if (idx >= 0)
                        emu_lead_update_locked(pr->in, idx, first, last,
                                               pr->wall_ms);
                else
                        idx = emu_lead_add_locked(pr->in, email, first, last,
                                                  pr->wall_ms);
                if (idx < 0)
                        return "System error";
        }
        pr->j->processed++;
        if (pr->list && emu_idset_add(&pr->list->members, (size_t)idx) == 0)
                pr->j->members++;
        return NULL;
}

static void header_map(struct proc *pr, const struct row *h)
{
        pr->col_email = pr->col_id = pr->col_first = pr->col_last = -1;
        pr->cols = h->cnt;
        for (size_t i = 0; i < h->cnt; i++) {
                const char *name = cell(h, (int)i);

                /* A byte-order mark may precede the first name. */
                if (i == 0 && !strncmp(name, "\xEF\xBB\xBF", 3))
                        name += 3;
                if (!strcasecmp(name, "email"))
                        pr->col_email = (int)i;
                else if (!strcasecmp(name, "id"))
                        pr->col_id = (int)i;
                else if (!strcasecmp(name, "firstName"))
                        pr->col_first = (int)i;
                else if (!strcasecmp(name, "lastName"))
                        pr->col_last = (int)i;
        }
}

static void job_finish(struct emu_job *j, struct proc *pr, const char *why)
{
        char members[48] = "";
        char msg[256];

        if (j->list_id)
                snprintf(members, sizeof(members), " (%lld members)",
                         (long long)j->members);
        if (why) {
                j->status = EMU_JOB_FAILED;
                snprintf(msg, sizeof(msg), "%s", why);
        } else if (j->failed) {
                j->status = EMU_JOB_COMPLETE;
                snprintf(msg, sizeof(msg),
                         "Import completed with errors, %lld records imported%s, %lld failed",
                         (long long)j->processed, members,
                         (long long)j->failed);
        } else {
                j->status = EMU_JOB_COMPLETE;
                snprintf(msg, sizeof(msg),
                         "Import succeeded, %lld records imported%s",
                         (long long)j->processed, members);
        }
        free(j->message);
        j->message = strdup(msg);
        j->failures = pr->fail.p;
        j->failures_len = pr->fail.len;
        j->warnings = pr->warn.p;
        j->warnings_len = pr->warn.len;
        free(j->data);
        j->data = NULL;
        j->data_len = 0;
}

/* Start a reason file: the header row plus the reason column. */
static void file_start(struct proc *pr, struct buf *b, const struct row *h,
                       const char *col)
{
        note(pr, b, h, col);
}

static void job_run(struct emu_instance *in, struct emu_job *j,
                    int64_t wall_ms)
{
        struct proc pr = { .in = in, .j = j, .wall_ms = wall_ms };
        struct row r = { .raw = NULL };
        const char *p = j->data;
        const char *end = j->data + j->data_len;
        const char *why = NULL;

        pr.list = j->list_id ? emu_list_find(in, j->list_id) : NULL;
        p = row_parse(p, end, j->delim, &r);
        header_map(&pr, &r);
        file_start(&pr, &pr.fail, &r, "Import Failure Reason");
        file_start(&pr, &pr.warn, &r, "Import Warning Reason");
        if (j->lookup_id ? pr.col_id < 0 : pr.col_email < 0) {
                why = j->lookup_id ?
                              "Lookup field 'id' not found in the header" :
                              "Lookup field 'email' not found in the header";
                goto out;
        }
        while (p < end) {
                const char *reason;

                p = row_parse(p, end, j->delim, &r);
                if (r.raw_len == 0)
                        continue; /* blank line */
                reason = row_apply(&pr, &r);
                if (reason) {
                        note(&pr, &pr.fail, &r, reason);
                        j->failed++;
                }
        }
out:
        if (pr.list && j->members)
                pr.list->updated_wall_ms = wall_ms;
        free(r.cells.p);
        job_finish(j, &pr, why);
}

void emu_bulk_tick_locked(struct emu *e)
{
        int64_t now = emu_now_ms(e);
        int64_t wall = 0;

        for (size_t k = 0; k < e->inst_cnt; k++) {
                struct emu_instance *in = e->inst[k];
                size_t running = 0;

                for (size_t i = 0; i < in->job_cnt; i++) {
                        struct emu_job *j = in->jobs[i];
                        int64_t need = IMPORT_MS + (int64_t)(j->data_len /
                                                             IMPORT_BYTES_PER_MS);

                        if (j->status != EMU_JOB_IMPORTING)
                                continue;
                        if (now - j->started_ms < need) {
                                running++;
                                continue;
                        }
                        if (!wall)
                                wall = mls_wall_ms();
                        job_run(in, j, wall);
                }
                /* FIFO: jobs sit in submission order. */
                for (size_t i = 0; i < in->job_cnt && running < RUNNING_MAX;
                     i++) {
                        struct emu_job *j = in->jobs[i];

                        if (j->status != EMU_JOB_QUEUED ||
                            now - j->queued_ms < QUEUED_MS)
                                continue;
                        j->status = EMU_JOB_IMPORTING;
                        j->started_ms = now;
                        running++;
                }
        }
}
