/* SPDX-License-Identifier: Apache-2.0
 *
 * assets.c - the emulator's asset API: folders by name and id, and static
 * list create, find, browse and delete, in the asset envelope dialect.
 *
 * Choices where marketo-api.md is UNCERTAIN:
 * - A search that finds nothing (by name, by id, browse, past the end) is
 *   success with the warning "No assets found for the given search
 *   criteria." and no result key, also for an unknown root or folder.
 * - A missing required parameter is 701 "<param> cannot be blank".
 * - Static list names are unique per instance, compared case-insensitively.
 * - Creating a list in an unknown folder is 710, in a folder that cannot
 *   hold lists (Design Studio) 711; a folder reference that is not JSON
 *   {"id":N,"type":"Folder|Program"} (a bare number, say) is 1003.
 * - Deleting an unknown list is 702; deleting a list that an unfinished
 *   bulk import targets is 1022 "Object in use".
 * - maxReturn outside 1..200 or a negative offset is 1003.
 */
#include "emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NO_ASSETS "No assets found for the given search criteria."
#define WORKSPACE "Default"
#define BROWSE_DEFAULT 20

static const char *folder_type(const struct emu_folder *f)
{
        return emu_folder_is_program(f) ? "Program" : "Folder";
}

static json_object *ref_json(const struct emu_folder *f)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_int64(f->id));
        json_object_object_add(o, "type",
                               json_object_new_string(folder_type(f)));
        return o;
}

static void add_date(json_object *o, const char *key, int64_t wall_ms)
{
        char buf[40];

        emu_date_str(wall_ms, true, buf, sizeof(buf));
        json_object_object_add(o, key, json_object_new_string(buf));
}

/* One FolderResponse record. */
static json_object *folder_json(struct emu_instance *in,
                                const struct emu_folder *f)
{
        json_object *o = json_object_new_object();
        struct emu_folder *parent = f->parent_id ?
                                            emu_folder_find(in, f->parent_id) :
                                            NULL;

        json_object_object_add(o, "id", json_object_new_int64(f->id));
        json_object_object_add(o, "name", json_object_new_string(f->name));
        json_object_object_add(o, "description", NULL);
        add_date(o, "createdAt", f->created_wall_ms);
        add_date(o, "updatedAt", f->created_wall_ms);
        json_object_object_add(o, "url", NULL);
        json_object_object_add(o, "folderId", ref_json(f));
        json_object_object_add(o, "folderType",
                               json_object_new_string(
                                       emu_folder_kind_name(f->kind)));
        json_object_object_add(o, "parent",
                               parent ? ref_json(parent) : NULL);
        json_object_object_add(o, "path", json_object_new_string(f->path));
        json_object_object_add(o, "isArchive",
                               json_object_new_boolean(false));
        json_object_object_add(o, "isSystem",
                               json_object_new_boolean(f->is_system));
        json_object_object_add(o, "accessZoneId", json_object_new_int(1));
        json_object_object_add(o, "workspace",
                               json_object_new_string(WORKSPACE));
        return o;
}

/* One StaticListResponse record. */
static json_object *list_json(struct emu_instance *in,
                              const struct emu_list *l)
{
        json_object *o = json_object_new_object();
        struct emu_folder *f = emu_folder_find(in, l->folder_id);
        char url[160];

        json_object_object_add(o, "id", json_object_new_int64(l->id));
        json_object_object_add(o, "name", json_object_new_string(l->name));
        json_object_object_add(o, "description",
                               l->description ?
                                       json_object_new_string(l->description) :
                                       NULL);
        add_date(o, "createdAt", l->created_wall_ms);
        add_date(o, "updatedAt", l->updated_wall_ms);
        json_object_object_add(o, "url", NULL);
        if (f) {
                json_object_object_add(o, "folder", ref_json(f));
        } else {
                json_object *ref = json_object_new_object();

                json_object_object_add(ref, "id",
                                       json_object_new_int64(l->folder_id));
                json_object_object_add(ref, "type",
                                       json_object_new_string("Folder"));
                json_object_object_add(o, "folder", ref);
        }
        snprintf(url, sizeof(url), "https://app-%s.marketo.invalid/#ST%lldA1",
                 in->munchkin, (long long)l->id);
        json_object_object_add(o, "computedUrl",
                               json_object_new_string(url));
        json_object_object_add(o, "workspace",
                               json_object_new_string(WORKSPACE));
        return o;
}

/* Required parameter, 701 when missing or empty. */
static const char *need_param(struct emu_ctx *c, const char *key)
{
        const char *v = emu_param(c->rq, key);

        if (!v || !*v) {
                emu_fail(c, 701, "%s cannot be blank", key);
                return NULL;
        }
        return v;
}

/* "Folder" or "Program" (any case): 0 folder, 1 program, -1 neither. */
static int parse_type(const char *s)
{
        if (!strcasecmp(s, "Folder"))
                return 0;
        if (!strcasecmp(s, "Program"))
                return 1;
        return -1;
}

struct emu_folder *emu_folder_ref_locked(struct emu_instance *in,
                                         const char *text, bool *bad)
{
        json_object *o = text ? emu_json_parse(text, strlen(text)) : NULL;
        json_object *jid, *jtype;
        struct emu_folder *f = NULL;
        int64_t id;
        int type;

        *bad = true;
        if (!o || !json_object_is_type(o, json_type_object))
                goto out;
        if (!json_object_object_get_ex(o, "id", &jid) ||
            !json_object_object_get_ex(o, "type", &jtype) ||
            !json_object_is_type(jtype, json_type_string))
                goto out;
        if (json_object_is_type(jid, json_type_int))
                id = json_object_get_int64(jid);
        else if (!json_object_is_type(jid, json_type_string) ||
                 !emu_parse_i64(json_object_get_string(jid), &id))
                goto out;
        type = parse_type(json_object_get_string(jtype));
        if (type < 0)
                goto out;
        *bad = false;
        f = emu_folder_find(in, id);
        if (f && emu_folder_is_program(f) != (type == 1))
                f = NULL;
out:
        json_object_put(o);
        return f;
}

/* True when f is anc or lies below it. */
static bool folder_under(struct emu_instance *in, const struct emu_folder *f,
                         int64_t anc)
{
        for (int depth = 0; f && depth < 64; depth++) {
                if (f->id == anc)
                        return true;
                f = f->parent_id ? emu_folder_find(in, f->parent_id) : NULL;
        }
        return false;
}

static bool workspace_ok(struct emu_ctx *c)
{
        const char *ws = emu_param(c->rq, "workSpace");

        if (!ws)
                ws = emu_param(c->rq, "workspace");
        return !ws || !*ws || !strcasecmp(ws, WORKSPACE);
}

void emu_folder_by_name(struct emu_ctx *c)
{
        const char *name = need_param(c, "name");
        const char *type_s = emu_param(c->rq, "type");
        const char *root_s = emu_param(c->rq, "root");
        struct emu_folder *root = NULL;
        int type = -1;
        bool bad;

        if (!name)
                return;
        if (type_s && *type_s) {
                type = parse_type(type_s);
                if (type < 0) {
                        emu_fail(c, 1003, "Invalid type '%s', expected Folder or Program", type_s);
                        return;
                }
        }
        if (root_s && *root_s) {
                if (type < 0) {
                        emu_fail(c, 701, "type cannot be blank when root is given");
                        return;
                }
                root = emu_folder_ref_locked(c->in, root_s, &bad);
                if (bad) {
                        emu_fail(c, 1003, "Invalid root folder reference");
                        return;
                }
                if (!root)
                        goto none;
        }
        if (!workspace_ok(c))
                goto none;

        for (size_t i = 0; i < c->in->folder_cnt; i++) {
                struct emu_folder *f = &c->in->folders[i];

                if (strcmp(f->name, name))
                        continue;
                if (type >= 0 && emu_folder_is_program(f) != (type == 1))
                        continue;
                if (root && !folder_under(c->in, f, root->id))
                        continue;
                emu_result_add(c, folder_json(c->in, f));
        }
none:
        if (!c->result)
                emu_warn(c, NO_ASSETS);
}

void emu_folder_get(struct emu_ctx *c)
{
        const char *type_s = need_param(c, "type");
        struct emu_folder *f;
        int type;

        if (!type_s)
                return;
        type = parse_type(type_s);
        if (type < 0) {
                emu_fail(c, 1003, "Invalid type '%s', expected Folder or Program", type_s);
                return;
        }
        f = emu_folder_find(c->in, c->path_id);
        if (!f || emu_folder_is_program(f) != (type == 1)) {
                emu_warn(c, NO_ASSETS);
                return;
        }
        emu_result_add(c, folder_json(c->in, f));
}

void emu_sl_by_name(struct emu_ctx *c)
{
        const char *name = need_param(c, "name");
        struct emu_list *l;

        if (!name)
                return;
        l = emu_list_find_name(c->in, name);
        if (!l) {
                emu_warn(c, NO_ASSETS);
                return;
        }
        emu_result_add(c, list_json(c->in, l));
}

void emu_sl_get(struct emu_ctx *c)
{
        struct emu_list *l = emu_list_find(c->in, c->path_id);

        if (!l) {
                emu_warn(c, NO_ASSETS);
                return;
        }
        emu_result_add(c, list_json(c->in, l));
}

/* ISO-8601 "YYYY-MM-DDTHH:MM:SS" with an optional "Z" and/or a "+hh:mm"
 * or "+hhmm" offset (so the asset dialect's own dates parse), to wall ms. */
static bool parse_iso(const char *s, int64_t *out)
{
        struct tm tm;
        const char *p;
        int off = 0, used = 0;

        memset(&tm, 0, sizeof(tm));
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                   &used) != 6 || used != 19)
                return false;
        if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
            tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
            tm.tm_sec > 60)
                return false;
        tm.tm_year -= 1900;
        tm.tm_mon--;
        p = s + used;
        if (*p == 'Z')
                p++;
        if (*p == '+' || *p == '-') {
                int sign = *p == '-' ? -1 : 1;
                int hh, mm, n = 0;

                if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 &&
                    sscanf(p + 1, "%2d%2d%n", &hh, &mm, &n) != 2)
                        return false;
                p += 1 + n;
                off = sign * (hh * 60 + mm) * 60;
        }
        if (*p)
                return false;
        *out = ((int64_t)timegm(&tm) - off) * 1000;
        return true;
}

static bool date_param(struct emu_ctx *c, const char *key, int64_t *out)
{
        const char *v = emu_param(c->rq, key);

        if (!v || !*v)
                return true;
        if (!parse_iso(v, out)) {
                emu_fail(c, 1003, "Invalid date for %s", key);
                return false;
        }
        return true;
}

void emu_sl_browse(struct emu_ctx *c)
{
        const char *folder_s = emu_param(c->rq, "folder");
        struct emu_folder *folder = NULL;
        int64_t offset, max, earliest = INT64_MIN, latest = INT64_MAX;
        int64_t seen = 0;
        bool bad;

        if (!emu_int_param(c, "offset", 0, 0, INT64_MAX, &offset) ||
            !emu_int_param(c, "maxReturn", BROWSE_DEFAULT, 1, EMU_BROWSE_MAX,
                       &max) ||
            !date_param(c, "earliestUpdatedAt", &earliest) ||
            !date_param(c, "latestUpdatedAt", &latest))
                return;
        if (folder_s && *folder_s) {
                folder = emu_folder_ref_locked(c->in, folder_s, &bad);
                if (bad) {
                        emu_fail(c, 1003, "Invalid folder reference");
                        return;
                }
                if (!folder)
                        goto none;
        }

        /* Lists are kept in creation order, which is id order. */
        for (size_t i = 0; i < c->in->list_cnt && max > 0; i++) {
                struct emu_list *l = c->in->lists[i];

                if (folder && l->folder_id != folder->id)
                        continue;
                if (l->updated_wall_ms < earliest ||
                    l->updated_wall_ms > latest)
                        continue;
                if (seen++ < offset)
                        continue;
                emu_result_add(c, list_json(c->in, l));
                max--;
        }
none:
        if (!c->result)
                emu_warn(c, NO_ASSETS);
}

void emu_sl_create(struct emu_ctx *c)
{
        const char *name = need_param(c, "name");
        const char *folder_s = name ? need_param(c, "folder") : NULL;
        const char *desc = emu_param(c->rq, "description");
        struct emu_folder *f;
        struct emu_list *l;
        bool bad;

        if (!name || !folder_s)
                return;
        if (strlen(name) > EMU_NAME_MAX) {
                emu_fail(c, 701, "name is longer than %d characters", EMU_NAME_MAX);
                return;
        }
        f = emu_folder_ref_locked(c->in, folder_s, &bad);
        if (bad) {
                emu_fail(c, 1003, "Invalid folder reference, expected {\"id\":N,\"type\":\"Folder\"}");
                return;
        }
        if (!f) {
                emu_fail(c, 710, "Folder not found");
                return;
        }
        if (!emu_folder_holds_lists(f)) {
                emu_fail(c, 711, "Incompatible folder type");
                return;
        }
        if (emu_list_find_name(c->in, name)) {
                emu_fail(c, 709, "Static List with the same name already exists");
                return;
        }

        l = emu_list_add_locked(c->in, name, f->id, desc && *desc ? desc : NULL,
                                c->wall_ms);
        if (!l) {
                emu_fail(c, 611, "System error");
                return;
        }
        emu_result_add(c, list_json(c->in, l));
}

void emu_sl_delete(struct emu_ctx *c)
{
        struct emu_list *l = emu_list_find(c->in, c->path_id);
        json_object *o;

        if (!l) {
                emu_fail(c, 702, "Static List not found");
                return;
        }
        if (emu_bulk_list_busy_locked(c->in, l->id)) {
                emu_fail(c, 1022, "Object in use: a bulk import targets this list");
                return;
        }
        o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(l->id));
        emu_list_delete_locked(c->in, l->id);
        emu_result_add(c, o);
}
