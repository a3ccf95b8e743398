/* SPDX-License-Identifier: Apache-2.0
 *
 * store.c - the emulator's in-memory instances: folders, static lists,
 * leads with a case-insensitive email index, and list membership sets.
 *
 * Folder tree of a fresh instance (ids 1-6 are system folders):
 *   1 /Lead Database                  (List)
 *   2 /Lead Database/Default          (List)
 *   3 /Marketing Activities           (Marketing Folder)
 *   4 /Marketing Activities/Default   (Marketing Folder)
 *   5 /Design Studio                  (Email)
 *   6 /Design Studio/Default          (Email)
 * Command-line folders go under 2; seeded folders under their parent or
 * the Default folder of their kind (programs under 4).
 */
#include "emu.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlsync/util.h"

#define IDSET_PAGE_BITS 4096
#define IDSET_PAGE_WORDS (IDSET_PAGE_BITS / 64)

static const char *const kind_names[EMU_FK_COUNT] = {
        "List", "Marketing Folder", "Program", "Email",
};

static const char *const kind_keys[EMU_FK_COUNT] = {
        "list", "marketing", "program", "email",
};

/* Default parent folder id for each kind. */
static const int64_t kind_home[EMU_FK_COUNT] = { 2, 4, 4, 6 };

const char *emu_folder_kind_name(enum emu_folder_kind k)
{
        return kind_names[k];
}

int emu_folder_kind_parse(const char *s)
{
        for (int i = 0; i < EMU_FK_COUNT; i++)
                if (!strcasecmp(s, kind_keys[i]) ||
                    !strcasecmp(s, kind_names[i]))
                        return i;
        return -1;
}

bool emu_folder_is_program(const struct emu_folder *f)
{
        return f->kind == EMU_FK_PROGRAM;
}

bool emu_folder_holds_lists(const struct emu_folder *f)
{
        return f->kind != EMU_FK_EMAIL;
}

/* ---- id sets --------------------------------------------------------- */

bool emu_idset_has(const struct emu_idset *s, size_t i)
{
        size_t pg = i / IDSET_PAGE_BITS;
        size_t bit = i % IDSET_PAGE_BITS;

        if (pg >= s->page_cnt || !s->pages[pg])
                return false;
        return (s->pages[pg][bit / 64] >> (bit % 64)) & 1;
}

int emu_idset_add(struct emu_idset *s, size_t i)
{
        size_t pg = i / IDSET_PAGE_BITS;
        size_t bit = i % IDSET_PAGE_BITS;
        uint64_t mask = (uint64_t)1 << (bit % 64);

        if (pg >= s->page_cnt) {
                size_t n = pg + 1 > s->page_cnt * 2 ? pg + 1 :
                                                      s->page_cnt * 2;
                uint64_t **np = realloc(s->pages, n * sizeof(*np));

                if (!np)
                        return -1;
                memset(np + s->page_cnt, 0,
                       (n - s->page_cnt) * sizeof(*np));
                s->pages = np;
                s->page_cnt = n;
        }
        if (!s->pages[pg]) {
                s->pages[pg] = calloc(IDSET_PAGE_WORDS, sizeof(uint64_t));
                if (!s->pages[pg])
                        return -1;
        }
        if (!(s->pages[pg][bit / 64] & mask)) {
                s->pages[pg][bit / 64] |= mask;
                s->count++;
        }
        return 0;
}

void emu_idset_del(struct emu_idset *s, size_t i)
{
        size_t pg = i / IDSET_PAGE_BITS;
        size_t bit = i % IDSET_PAGE_BITS;
        uint64_t mask = (uint64_t)1 << (bit % 64);

        if (pg >= s->page_cnt || !s->pages[pg])
                return;
        if (s->pages[pg][bit / 64] & mask) {
                s->pages[pg][bit / 64] &= ~mask;
                s->count--;
        }
}

int64_t emu_idset_next(const struct emu_idset *s, size_t from)
{
        size_t pg = from / IDSET_PAGE_BITS;
        size_t w = (from % IDSET_PAGE_BITS) / 64;
        uint64_t first_mask = ~(uint64_t)0 << (from % 64);

        for (; pg < s->page_cnt; pg++, w = 0, first_mask = ~(uint64_t)0) {
                if (!s->pages[pg])
                        continue;
                for (; w < IDSET_PAGE_WORDS; w++) {
                        uint64_t bits = s->pages[pg][w] & first_mask;

                        first_mask = ~(uint64_t)0;
                        if (bits)
                                return (int64_t)(pg * IDSET_PAGE_BITS +
                                                 w * 64) +
                                       __builtin_ctzll(bits);
                }
        }
        return -1;
}

void emu_idset_fini(struct emu_idset *s)
{
        for (size_t i = 0; i < s->page_cnt; i++)
                free(s->pages[i]);
        free(s->pages);
        memset(s, 0, sizeof(*s));
}

/* ---- folders --------------------------------------------------------- */

struct emu_folder *emu_folder_find(struct emu_instance *in, int64_t id)
{
        for (size_t i = 0; i < in->folder_cnt; i++)
                if (in->folders[i].id == id)
                        return &in->folders[i];
        return NULL;
}

struct emu_folder *emu_folder_add_locked(struct emu_instance *in,
                                         const char *name,
                                         enum emu_folder_kind kind,
                                         int64_t parent_id, bool is_system,
                                         bool from_cli, int64_t wall_ms)
{
        struct emu_folder *parent = NULL;
        struct emu_folder *f;
        size_t len;

        if (in->folder_cnt == in->folder_cap) {
                size_t n = in->folder_cap ? in->folder_cap * 2 : 16;
                struct emu_folder *nf = realloc(in->folders,
                                                n * sizeof(*nf));

                if (!nf)
                        return NULL;
                in->folders = nf;
                in->folder_cap = n;
        }
        if (parent_id)
                parent = emu_folder_find(in, parent_id);
        f = &in->folders[in->folder_cnt];
        memset(f, 0, sizeof(*f));
        len = strlen(name) + (parent ? strlen(parent->path) : 0) + 2;
        f->name = strdup(name);
        f->path = malloc(len);
        if (!f->name || !f->path) {
                free(f->name);
                free(f->path);
                return NULL;
        }
        snprintf(f->path, len, "%s/%s", parent ? parent->path : "", name);
        f->id = in->next_folder_id++;
        f->kind = kind;
        f->parent_id = parent ? parent->id : 0;
        f->is_system = is_system;
        f->from_cli = from_cli;
        f->created_wall_ms = wall_ms;
        in->folder_cnt++;
        return f;
}

static int add_system_folders(struct emu_instance *in, int64_t wall_ms)
{
        static const struct {
                const char *name;
                enum emu_folder_kind kind;
                int64_t parent;
        } sys[] = {
                { "Lead Database", EMU_FK_LIST, 0 },
                { "Default", EMU_FK_LIST, 1 },
                { "Marketing Activities", EMU_FK_MARKETING, 0 },
                { "Default", EMU_FK_MARKETING, 3 },
                { "Design Studio", EMU_FK_EMAIL, 0 },
                { "Default", EMU_FK_EMAIL, 5 },
        };

        in->next_folder_id = 1;
        for (size_t i = 0; i < MLS_ARRAY_LEN(sys); i++)
                if (!emu_folder_add_locked(in, sys[i].name, sys[i].kind,
                                           sys[i].parent, true, true,
                                           wall_ms))
                        return -1;
        in->next_folder_id = EMU_FOLDER_ID_FIRST;
        return 0;
}

int64_t emu_folder_home(enum emu_folder_kind kind)
{
        return kind_home[kind];
}

/* ---- lists ----------------------------------------------------------- */

struct emu_list *emu_list_find(struct emu_instance *in, int64_t id)
{
        for (size_t i = 0; i < in->list_cnt; i++)
                if (in->lists[i]->id == id)
                        return in->lists[i];
        return NULL;
}

struct emu_list *emu_list_find_name(struct emu_instance *in,
                                    const char *name)
{
        for (size_t i = 0; i < in->list_cnt; i++)
                if (!strcasecmp(in->lists[i]->name, name))
                        return in->lists[i];
        return NULL;
}

static void list_destroy(struct emu_list *l)
{
        if (!l)
                return;
        free(l->name);
        free(l->description);
        emu_idset_fini(&l->members);
        free(l);
}

struct emu_list *emu_list_add_locked(struct emu_instance *in,
                                     const char *name, int64_t folder_id,
                                     const char *description,
                                     int64_t wall_ms)
{
        struct emu_list *l;

        if (in->list_cnt == in->list_cap) {
                size_t n = in->list_cap ? in->list_cap * 2 : 16;
                struct emu_list **nl = realloc(in->lists, n * sizeof(*nl));

                if (!nl)
                        return NULL;
                in->lists = nl;
                in->list_cap = n;
        }
        l = calloc(1, sizeof(*l));
        if (!l)
                return NULL;
        l->name = strdup(name);
        l->description = mls_strdup0(description);
        if (!l->name || (description && !l->description)) {
                list_destroy(l);
                return NULL;
        }
        l->id = in->next_list_id++;
        l->folder_id = folder_id;
        l->created_wall_ms = wall_ms;
        l->updated_wall_ms = wall_ms;
        in->lists[in->list_cnt++] = l;
        return l;
}

void emu_list_delete_locked(struct emu_instance *in, int64_t id)
{
        for (size_t i = 0; i < in->list_cnt; i++) {
                if (in->lists[i]->id != id)
                        continue;
                list_destroy(in->lists[i]);
                memmove(&in->lists[i], &in->lists[i + 1],
                        (in->list_cnt - i - 1) * sizeof(in->lists[0]));
                in->list_cnt--;
                return;
        }
}

/* ---- leads ----------------------------------------------------------- */

bool emu_email_valid(const char *email)
{
        const char *at = NULL;
        size_t len = strlen(email);

        if (len == 0 || len > EMU_NAME_MAX)
                return false;
        for (const char *p = email; *p; p++) {
                unsigned char ch = (unsigned char)*p;

                if (ch <= 0x20 || ch >= 0x7f)
                        return false;
                if (ch == '@') {
                        if (at)
                                return false;
                        at = p;
                }
        }
        return at && at != email && at[1] != '\0';
}

static uint32_t hash_lc(const char *s)
{
        uint32_t h = 2166136261u;

        for (; *s; s++) {
                h ^= (unsigned char)tolower((unsigned char)*s);
                h *= 16777619u;
        }
        return h;
}

static int rehash(struct emu_instance *in, size_t n)
{
        int64_t *nb = malloc(n * sizeof(*nb));

        if (!nb)
                return -1;
        for (size_t i = 0; i < n; i++)
                nb[i] = -1;
        for (size_t i = 0; i < in->lead_cnt; i++) {
                struct emu_lead *ld = &in->leads[i];
                size_t b = ld->hash & (n - 1);

                ld->hash_next = nb[b];
                nb[b] = (int64_t)i;
        }
        free(in->buckets);
        in->buckets = nb;
        in->bucket_cnt = n;
        return 0;
}

int64_t emu_lead_add_locked(struct emu_instance *in, const char *email,
                            const char *first_name, const char *last_name,
                            int64_t wall_ms)
{
        struct emu_lead *ld;
        size_t b;

        if (in->lead_cnt == in->lead_cap) {
                size_t n = in->lead_cap ? in->lead_cap * 2 : 1024;
                struct emu_lead *nl = realloc(in->leads, n * sizeof(*nl));

                if (!nl)
                        return -1;
                in->leads = nl;
                in->lead_cap = n;
        }
        if (in->lead_cnt + 1 > in->bucket_cnt &&
            rehash(in, in->bucket_cnt ? in->bucket_cnt * 2 : 1024) < 0)
                return -1;
        ld = &in->leads[in->lead_cnt];
        memset(ld, 0, sizeof(*ld));
        ld->email = strdup(email);
        ld->email_lc = mls_strdup_lower(email);
        ld->first_name = mls_strdup0(first_name);
        ld->last_name = mls_strdup0(last_name);
        if (!ld->email || !ld->email_lc) {
                free(ld->email);
                free(ld->email_lc);
                free(ld->first_name);
                free(ld->last_name);
                return -1;
        }
        ld->created_wall_ms = wall_ms;
        ld->updated_wall_ms = wall_ms;
        ld->hash = hash_lc(email);
        b = ld->hash & (in->bucket_cnt - 1);
        ld->hash_next = in->buckets[b];
        in->buckets[b] = (int64_t)in->lead_cnt;
        return (int64_t)in->lead_cnt++;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a;
        int64_t y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

size_t emu_lead_find_locked(struct emu_instance *in, const char *email,
                            int64_t *idx, size_t max)
{
        uint32_t h = hash_lc(email);
        size_t n = 0;

        if (!in->bucket_cnt)
                return 0;
        for (int64_t i = in->buckets[h & (in->bucket_cnt - 1)]; i >= 0;
             i = in->leads[i].hash_next) {
                if (in->leads[i].hash != h ||
                    strcasecmp(in->leads[i].email_lc, email))
                        continue;
                if (n < max)
                        idx[n] = i;
                n++;
        }
        /* Chains hold the newest first; callers want creation order. */
        qsort(idx, n < max ? n : max, sizeof(*idx), cmp_i64);
        return n;
}

int64_t emu_lead_index(const struct emu_instance *in, int64_t id)
{
        int64_t i = id - in->lead_id_base;

        if (i < 0 || i >= (int64_t)in->lead_cnt)
                return -1;
        return i;
}

int64_t emu_lead_id(const struct emu_instance *in, int64_t idx)
{
        return in->lead_id_base + idx;
}

static void replace_str(char **dst, const char *src)
{
        char *copy;

        if (!src)
                return;
        copy = strdup(src);
        if (!copy)
                return;
        free(*dst);
        *dst = copy;
}

void emu_lead_update_locked(struct emu_instance *in, int64_t idx,
                            const char *first_name, const char *last_name,
                            int64_t wall_ms)
{
        struct emu_lead *ld = &in->leads[idx];

        replace_str(&ld->first_name, first_name);
        replace_str(&ld->last_name, last_name);
        ld->updated_wall_ms = wall_ms;
}

/* ---- instances ------------------------------------------------------- */

static void clear_data(struct emu_instance *in)
{
        size_t keep = 0;

        for (size_t i = 0; i < in->lead_cnt; i++) {
                free(in->leads[i].email);
                free(in->leads[i].email_lc);
                free(in->leads[i].first_name);
                free(in->leads[i].last_name);
        }
        /* New leads get fresh ids, so stale ids from before stay unknown. */
        in->lead_id_base += (int64_t)in->lead_cnt;
        in->lead_cnt = 0;
        for (size_t i = 0; i < in->bucket_cnt; i++)
                in->buckets[i] = -1;
        for (size_t i = 0; i < in->list_cnt; i++)
                list_destroy(in->lists[i]);
        in->list_cnt = 0;
        for (size_t i = 0; i < in->folder_cnt; i++) {
                if (in->folders[i].from_cli) {
                        in->folders[keep++] = in->folders[i];
                        continue;
                }
                free(in->folders[i].name);
                free(in->folders[i].path);
        }
        in->folder_cnt = keep;
        for (size_t i = 0; i < in->job_cnt; i++)
                emu_job_destroy(in->jobs[i]);
        in->job_cnt = 0;
}

void emu_instance_reset_locked(struct emu_instance *in)
{
        clear_data(in);
        in->token_cnt = 0;
        in->token_head = 0;
        in->win_head = 0;
        in->win_len = 0;
        in->quota_used = 0;
        memset(&in->cnt, 0, sizeof(in->cnt));
        in->cnt.last_606_ms = -1;
        in->cnt.first_606_ms = -1;
        in->log_head = 0;
        in->log_len = 0;
        in->log_dropped = 0;
}

void emu_instance_destroy(struct emu_instance *in)
{
        if (!in)
                return;
        clear_data(in);
        for (size_t i = 0; i < in->folder_cnt; i++) {
                free(in->folders[i].name);
                free(in->folders[i].path);
        }
        free(in->folders);
        free(in->lists);
        free(in->leads);
        free(in->buckets);
        free(in->window);
        free(in->log);
        free(in->jobs);
        free(in->munchkin);
        free(in->client_id);
        free(in->secret);
        free(in);
}

static int add_cli_folders(struct emu_instance *in, char *list,
                           int64_t wall_ms, char *errstr, size_t errstr_size)
{
        char *save = NULL;

        for (char *name = strtok_r(list, ",", &save); name;
             name = strtok_r(NULL, ",", &save)) {
                if (!*name || strlen(name) > EMU_NAME_MAX) {
                        snprintf(errstr, errstr_size, "bad folder name");
                        return -1;
                }
                if (!emu_folder_add_locked(in, name, EMU_FK_LIST,
                                           kind_home[EMU_FK_LIST], false,
                                           true, wall_ms)) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
        }
        return 0;
}

struct emu_instance *emu_instance_new(const char *spec, char *errstr,
                                      size_t errstr_size)
{
        struct emu_instance *in = NULL;
        char *copy = strdup(spec);
        char *parts[4] = { NULL, NULL, NULL, NULL };
        char *p = copy;
        int64_t wall = mls_wall_ms();

        if (!copy)
                goto nomem;
        /* The folder list is the rest after the third ':'. */
        for (int i = 0; i < 4 && p; i++) {
                parts[i] = p;
                p = i < 3 ? strchr(p, ':') : NULL;
                if (p)
                        *p++ = '\0';
        }
        if (!parts[0] || !parts[1] || !parts[2] || !*parts[0] ||
            !*parts[1] || !*parts[2] || strchr(parts[0], '/')) {
                snprintf(errstr, errstr_size,
                         "--instance wants MUNCHKIN:CLIENT_ID:SECRET[:FOLDER,...]");
                goto fail;
        }
        in = calloc(1, sizeof(*in));
        if (!in)
                goto nomem;
        in->munchkin = strdup(parts[0]);
        in->client_id = strdup(parts[1]);
        in->secret = strdup(parts[2]);
        in->log = malloc(EMU_CALL_LOG_MAX * sizeof(*in->log));
        if (!in->munchkin || !in->client_id || !in->secret || !in->log)
                goto nomem;
        in->next_list_id = EMU_LIST_ID_FIRST;
        in->lead_id_base = EMU_LEAD_ID_FIRST;
        in->next_batch_id = EMU_BATCH_ID_FIRST;
        in->cnt.last_606_ms = -1;
        in->cnt.first_606_ms = -1;
        in->quota_day = emu_central_day(wall);
        if (add_system_folders(in, wall) < 0)
                goto nomem;
        if (parts[3] && add_cli_folders(in, parts[3], wall, errstr,
                                        errstr_size) < 0)
                goto fail;
        free(copy);
        return in;
nomem:
        snprintf(errstr, errstr_size, "out of memory");
fail:
        free(copy);
        emu_instance_destroy(in);
        return NULL;
}

struct emu_instance *emu_instance_find(struct emu *e, const char *munchkin)
{
        for (size_t i = 0; i < e->inst_cnt; i++)
                if (!strcmp(e->inst[i]->munchkin, munchkin))
                        return e->inst[i];
        return NULL;
}
