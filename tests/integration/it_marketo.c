/* SPDX-License-Identifier: Apache-2.0
 *
 * it_marketo.c - the asynchronous Marketo client against the emulator
 * over loopback: tokens, folders, list creation races, 300-record
 * splitting, lookups, rejects, and Marketo's limits (606, 615) and faults.
 * Oracles are the emulator's /_admin/state and /_admin/counters, never
 * timings.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "../support/support.h"
#include "mlsync/log.h"
#include "mlsync/marketo.h"
#include "mlsync/util.h"

#define SECRET "s3cret-Value"
#define WAIT_MS 90000

/* ---- emulators ---- */

struct emu {
        struct mls_proc proc;
        char base[128];
        bool up;
};

/* The shared emulator and one started by the running test. */
static struct emu main_emu;
static struct emu own_emu;

static const char *const main_args[] = {
        "--instance", "101-AAA-001:cid1:" SECRET ":Audiences",
        "--instance", "101-AAA-002:cid2:" SECRET,
        "--instance", "101-AAA-003:cid3:" SECRET ":Audiences",
        "--instance", "101-AAA-004:cid4:" SECRET ":Audiences",
        "--instance", "101-AAA-005:cid5:" SECRET ":Audiences",
        "--instance", "101-AAA-006:cid6:" SECRET ":Audiences",
        "--latency-ms", "5-20", "--seed", "7", NULL
};

static int emu_up(struct emu *e, const char *const args[])
{
        if (mls_emulator_start(&e->proc, e->base, sizeof(e->base), args) < 0)
                return -1;
        e->up = true;
        return 0;
}

static void emu_down(struct emu *e)
{
        if (e->up)
                mls_proc_stop(&e->proc);
        e->up = false;
}

static int group_setup(void **state)
{
        mls_log_setup(getenv("MLS_TEST_VERBOSE") ? MLS_LOG_DEBUG :
                                                   MLS_LOG_ERROR,
                      MLS_LOG_TEXT);
        return emu_up(&main_emu, main_args);
}

static int group_teardown(void **state)
{
        emu_down(&main_emu);
        return 0;
}

static int test_teardown(void **state)
{
        emu_down(&own_emu);
        return 0;
}

/* ---- admin helpers ---- */

static json_object *admin_get(const struct emu *e, const char *what,
                              const char *munchkin)
{
        char url[256];
        char *resp = NULL;
        json_object *root, *insts, *in = NULL;
        long st;

        snprintf(url, sizeof(url), "%s/_admin/%s", e->base, what);
        st = mls_http_req("GET", url, NULL, NULL, &resp);
        assert_int_equal(st, 200);
        root = json_tokener_parse(resp);
        free(resp);
        assert_non_null(root);
        assert_true(json_object_object_get_ex(root, "instances", &insts));
        assert_true(json_object_object_get_ex(insts, munchkin, &in));
        json_object_get(in);
        json_object_put(root);
        return in;
}

static void admin_post(const struct emu *e, const char *what,
                       const char *body)
{
        char url[256];
        char *resp = NULL;
        long st;

        snprintf(url, sizeof(url), "%s/_admin/%s", e->base, what);
        st = mls_http_req("POST", url, "application/json", body ? body : "{}",
                          &resp);
        if (st != 200)
                fprintf(stderr, "admin %s: %ld %s\n", what, st,
                        resp ? resp : "");
        free(resp);
        assert_int_equal(st, 200);
}

/* counters.<a>[.<b>] of one instance; 0 when absent. */
static int64_t counter(const struct emu *e, const char *m, const char *a,
                       const char *b)
{
        json_object *in = admin_get(e, "counters", m);
        json_object *x = NULL, *y = NULL;
        int64_t v = 0;

        if (json_object_object_get_ex(in, a, &x)) {
                if (!b)
                        v = json_object_get_int64(x);
                else if (json_object_object_get_ex(x, b, &y))
                        v = json_object_get_int64(y);
        }
        json_object_put(in);
        return v;
}

struct list_info {
        int count;        /* lists with that name */
        int64_t id;
        int64_t members;
        char folder[64];
};

static bool member_has(json_object *members, const char *email)
{
        for (size_t i = 0; i < json_object_array_length(members); i++) {
                if (!strcasecmp(json_object_get_string(
                                        json_object_array_get_idx(members, i)),
                                email))
                        return true;
        }
        return false;
}

/* Look at the lists named name; when check is given, assert every one of
 * check[0..n) is a member (or, with absent, is not). */
static struct list_info list_state(const struct emu *e, const char *m,
                                   const char *name, const char *const *check,
                                   size_t n, bool absent)
{
        json_object *in = admin_get(e, "state", m);
        json_object *lists = NULL;
        struct list_info li = { 0 };

        assert_true(json_object_object_get_ex(in, "lists", &lists));
        for (size_t i = 0; i < json_object_array_length(lists); i++) {
                json_object *l = json_object_array_get_idx(lists, i);
                json_object *v = NULL, *mem = NULL;

                json_object_object_get_ex(l, "name", &v);
                if (strcasecmp(json_object_get_string(v), name))
                        continue;
                li.count++;
                json_object_object_get_ex(l, "id", &v);
                li.id = json_object_get_int64(v);
                if (json_object_object_get_ex(l, "folder", &v) && v)
                        snprintf(li.folder, sizeof(li.folder), "%s",
                                 json_object_get_string(v));
                json_object_object_get_ex(l, "members", &mem);
                li.members = (int64_t)json_object_array_length(mem);
                for (size_t k = 0; k < n; k++)
                        assert_true(member_has(mem, check[k]) != absent);
        }
        json_object_put(in);
        return li;
}

/* ---- client helpers ---- */

struct inst {
        struct mls_cfg_instance cfg;
        char munchkin[32];
        char endpoint[192];
        char client_id[32];
        char secret[32];
        char folder[64];
};

static void inst_init(struct inst *in, const struct emu *e, const char *m,
                      const char *cid, int per20, int conc)
{
        memset(in, 0, sizeof(*in));
        snprintf(in->munchkin, sizeof(in->munchkin), "%s", m);
        snprintf(in->endpoint, sizeof(in->endpoint), "%s/%s/rest/", e->base,
                 m);
        snprintf(in->client_id, sizeof(in->client_id), "%s", cid);
        snprintf(in->secret, sizeof(in->secret), "%s", SECRET);
        snprintf(in->folder, sizeof(in->folder), "Audiences");
        in->cfg.munchkin_id = in->munchkin;
        in->cfg.endpoint = in->endpoint;
        in->cfg.client_id = in->client_id;
        in->cfg.client_secret = in->secret;
        in->cfg.folder = in->folder;
        in->cfg.budget.calls_per_20s = per20;
        in->cfg.budget.concurrent_calls = conc;
        in->cfg.budget.daily_calls = 0;
}

#define REJ_MAX 8

struct outcome {
        bool done;
        int calls;
        struct mls_mkto_result res;
        struct mls_mkto_reject rej[REJ_MAX];
};

static void on_done(const struct mls_mkto_result *res, void *opaque)
{
        struct outcome *o = opaque;

        o->calls++;
        o->done = true;
        o->res = *res;
        for (size_t i = 0; i < res->reject_cnt && i < REJ_MAX; i++)
                o->rej[i] = res->rejects[i];
        o->res.rejects = NULL;
}

static struct mls_mkto *client_new(struct mls_mkto_loop *loop,
                                   struct inst *in)
{
        char err[256] = "";
        struct mls_mkto *mk = mls_mkto_new(loop, &in->cfg, err, sizeof(err));

        if (!mk)
                fprintf(stderr, "mls_mkto_new: %s\n", err);
        assert_non_null(mk);
        return mk;
}

static void sync_job(struct mls_mkto *mk, const char *list,
                     enum mls_mkto_op op, const char *const *emails,
                     size_t n, struct outcome *o)
{
        memset(o, 0, sizeof(*o));
        assert_int_equal(mls_mkto_sync(mk, list, op, emails, n, on_done, o),
                         MLS_OK);
}

/* Run the loop until nothing is pending (generous timeout). */
static void run_all(struct mls_mkto_loop *loop, int64_t max_ms)
{
        int64_t end = mls_now_ms() + max_ms;
        int pending = 1;

        while (pending > 0 && mls_now_ms() < end)
                pending = mls_mkto_loop_run(loop, 200);
        assert_int_equal(pending, 0);
}

static void expect_ok(const struct outcome *o)
{
        assert_true(o->done);
        assert_int_equal(o->calls, 1);
        if (o->res.err != MLS_OK)
                fprintf(stderr, "job failed: %s %s %s\n",
                        mls_err_name(o->res.err), o->res.code,
                        o->res.errstr);
        assert_int_equal(o->res.err, MLS_OK);
}

/* n emails "<tag>-<i>@example.com", the strings in one allocation. */
static const char **make_emails(const char *tag, size_t n, size_t pad)
{
        const char **v = calloc(n, sizeof(*v));
        char local[256];

        assert_non_null(v);
        for (size_t i = 0; i < n; i++) {
                char *s;

                snprintf(local, sizeof(local), "%s-%zu", tag, i);
                s = malloc(strlen(local) + pad + 32);
                assert_non_null(s);
                if (pad) {
                        /* A long, valid address: long local part and a
                         * long domain of short labels. */
                        size_t p = 0;

                        p += (size_t)sprintf(s, "%s.%.*s@", local, 50,
                                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
                        while (p < pad) {
                                memcpy(s + p, "dept.", 5);
                                p += 5;
                        }
                        strcpy(s + p, "example.com");
                } else {
                        sprintf(s, "%s@example.com", local);
                }
                v[i] = s;
        }
        return v;
}

static void free_emails(const char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free((void *)v[i]);
        free(v);
}

/* ---- tests ---- */

/* 1000 emails: ceil(1000/300) upserts and adds, all members; a removal of
 * some of them; emails compared case-insensitively. */
static void test_split_300(void **state)
{
        const char *m = "101-AAA-001";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o;
        const char **em = make_emails("split", 1000, 0);
        const char *upper[3] = { "SPLIT-1@EXAMPLE.COM", "Split-2@Example.com",
                                 "split-3@example.com" };
        struct list_info li;
        int64_t sync0 = counter(&main_emu, m, "calls", "leads.sync");
        int64_t add0 = counter(&main_emu, m, "calls", "list.add");

        inst_init(&in, &main_emu, m, "cid1", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Split Test", MLS_MKTO_ADD, em, 1000, &o);
        run_all(loop, WAIT_MS);
        expect_ok(&o);
        assert_int_equal(o.res.applied, 1000);
        assert_int_equal(o.res.reject_cnt, 0);
        assert_true(o.res.list_id > 0);
        assert_int_equal(counter(&main_emu, m, "calls", "leads.sync") - sync0,
                         4);
        assert_int_equal(counter(&main_emu, m, "calls", "list.add") - add0, 4);
        li = list_state(&main_emu, m, "Split Test", em, 1000, false);
        assert_int_equal(li.count, 1);
        assert_int_equal(li.members, 1000);
        assert_int_equal(li.id, o.res.list_id);
        assert_string_equal(li.folder, "Audiences");

        /* Remove three, named in other cases. */
        sync_job(mk, "split test", MLS_MKTO_REMOVE, upper, 3, &o);
        run_all(loop, WAIT_MS);
        expect_ok(&o);
        assert_int_equal(o.res.applied, 3);
        li = list_state(&main_emu, m, "Split Test", em + 1, 3, true);
        assert_int_equal(li.count, 1);
        assert_int_equal(li.members, 997);

        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
        free_emails(em, 1000);
}

/* Removing emails Marketo has never seen is done at once, never stuck:
 * from an existing list and from a list that does not exist. */
static void test_remove_unknown(void **state)
{
        const char *m = "101-AAA-001";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o, o2;
        const char **em = make_emails("ghost", 40, 0);
        const char *seed_one[1] = { "present@example.com" };
        struct list_info li;

        inst_init(&in, &main_emu, m, "cid1", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Ghost List", MLS_MKTO_ADD, seed_one, 1, &o);
        run_all(loop, WAIT_MS);
        expect_ok(&o);

        sync_job(mk, "Ghost List", MLS_MKTO_REMOVE, em, 40, &o);
        sync_job(mk, "No Such List", MLS_MKTO_REMOVE, em, 40, &o2);
        run_all(loop, WAIT_MS);
        expect_ok(&o);
        expect_ok(&o2);
        assert_int_equal(o.res.applied, 40);
        assert_int_equal(o2.res.applied, 40);
        li = list_state(&main_emu, m, "Ghost List", seed_one, 1, false);
        assert_int_equal(li.count, 1);
        assert_int_equal(li.members, 1);
        li = list_state(&main_emu, m, "No Such List", NULL, 0, false);
        assert_int_equal(li.count, 0);

        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
        free_emails(em, 40);
}

/* 300 addresses of about 200 characters: lookups go in a form body, so
 * no 414 even though a GET URL would be ~60 KB. */
static void test_long_emails(void **state)
{
        const char *m = "101-AAA-001";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o;
        const char **em = make_emails("long", 300, 190);
        int64_t look0 = counter(&main_emu, m, "calls", "leads.lookup");
        struct list_info li;

        assert_true(strlen(em[0]) >= 190);
        inst_init(&in, &main_emu, m, "cid1", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Long Emails", MLS_MKTO_ADD, em, 300, &o);
        run_all(loop, WAIT_MS);
        expect_ok(&o);
        li = list_state(&main_emu, m, "Long Emails", em, 300, false);
        assert_int_equal(li.members, 300);

        sync_job(mk, "Long Emails", MLS_MKTO_REMOVE, em, 300, &o);
        run_all(loop, WAIT_MS);
        expect_ok(&o);
        assert_int_equal(o.res.applied, 300);
        assert_int_equal(counter(&main_emu, m, "calls", "leads.lookup") -
                                 look0,
                         1);
        assert_int_equal(counter(&main_emu, m, "errors", "http_414"), 0);
        li = list_state(&main_emu, m, "Long Emails", em, 300, true);
        assert_int_equal(li.members, 0);

        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
        free_emails(em, 300);
}

/* An address Marketo refuses comes back as a reject with its index into
 * the job's emails and Marketo's code; the others are applied. */
static void test_invalid_email(void **state)
{
        const char *m = "101-AAA-001";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o;
        const char *em[4] = { "good-1@example.com", "not an email",
                              "good-2@example.com", "GOOD-1@example.com" };
        struct list_info li;

        inst_init(&in, &main_emu, m, "cid1", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Rejects", MLS_MKTO_ADD, em, 4, &o);
        run_all(loop, WAIT_MS);
        expect_ok(&o);
        assert_int_equal(o.res.reject_cnt, 1);
        assert_int_equal(o.rej[0].index, 1);
        assert_string_equal(o.rej[0].code, "1003");
        assert_int_equal(o.res.applied, 3);
        li = list_state(&main_emu, m, "Rejects", em, 1, false);
        assert_int_equal(li.members, 2);
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
}

static bool contains(const char *hay, const char *needle)
{
        return hay && strstr(hay, needle) != NULL;
}

/* No folder: a clear fatal error naming folder and instance, a slow
 * retry time, one lookup for all waiting jobs; once the folder exists
 * the retried job works. */
static void test_missing_folder(void **state)
{
        const char *m = "101-AAA-002";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o1, o2;
        const char *em[2] = { "f-1@example.com", "f-2@example.com" };
        int64_t now;
        struct list_info li;

        inst_init(&in, &main_emu, m, "cid2", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Folderless", MLS_MKTO_ADD, em, 2, &o1);
        sync_job(mk, "Folderless 2", MLS_MKTO_ADD, em, 2, &o2);
        run_all(loop, WAIT_MS);
        now = mls_now_ms();
        assert_int_equal(o1.res.err, MLS_ERR_FATAL);
        assert_int_equal(o2.res.err, MLS_ERR_FATAL);
        assert_true(contains(o1.res.errstr, "Audiences"));
        assert_true(contains(o1.res.errstr, m));
        assert_true(contains(o2.res.errstr, "Audiences"));
        assert_true(o1.res.retry_at_ms > now + 10000);
        assert_int_equal(counter(&main_emu, m, "calls", "folder.byName"), 1);
        assert_int_equal(counter(&main_emu, m, "calls", "staticList.create"),
                         0);

        admin_post(&main_emu, "seed",
                   "{\"instance\":\"101-AAA-002\",\"folders\":[{\"name\":\"Audiences\",\"kind\":\"list\"}]}");
        sync_job(mk, "Folderless", MLS_MKTO_ADD, em, 2, &o1);
        run_all(loop, WAIT_MS);
        expect_ok(&o1);
        li = list_state(&main_emu, m, "Folderless", em, 2, false);
        assert_int_equal(li.count, 1);
        assert_string_equal(li.folder, "Audiences");
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
}

/* Two clients of one instance create the same list at the same moment:
 * one gets 709, looks it up and adopts it; exactly one list results. */
static void test_create_race(void **state)
{
        const char *m = "101-AAA-003";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst ia, ib;
        struct mls_mkto *a, *b;
        struct outcome oa, ob;
        const char *ea[2] = { "ra-1@example.com", "ra-2@example.com" };
        const char *eb[2] = { "rb-1@example.com", "rb-2@example.com" };
        struct list_info li;

        inst_init(&ia, &main_emu, m, "cid3", 100, 5);
        inst_init(&ib, &main_emu, m, "cid3", 100, 5);
        a = client_new(loop, &ia);
        b = client_new(loop, &ib);
        /* Warm both up (token, folder) so the creates really overlap. */
        sync_job(a, "Warm A", MLS_MKTO_ADD, ea, 1, &oa);
        sync_job(b, "Warm B", MLS_MKTO_ADD, eb, 1, &ob);
        run_all(loop, WAIT_MS);
        expect_ok(&oa);
        expect_ok(&ob);

        for (int round = 0; round < 4; round++) {
                char name[32];

                snprintf(name, sizeof(name), "Race %d", round);
                sync_job(a, name, MLS_MKTO_ADD, ea, 2, &oa);
                sync_job(b, name, MLS_MKTO_ADD, eb, 2, &ob);
                run_all(loop, WAIT_MS);
                expect_ok(&oa);
                expect_ok(&ob);
                assert_int_equal(oa.res.list_id, ob.res.list_id);
                li = list_state(&main_emu, m, name, ea, 2, false);
                assert_int_equal(li.count, 1);
                assert_int_equal(li.members, 4);
                li = list_state(&main_emu, m, name, eb, 2, false);
        }
        /* Both lookups go out together; unless one is much slower than
         * the other's lookup and create, the second create meets 709. */
        assert_true(counter(&main_emu, m, "errors", "709") >= 1);
        mls_mkto_destroy(a);
        mls_mkto_destroy(b);
        mls_mkto_loop_destroy(loop);
}

/* A same-named list already in our folder is adopted (members kept, no
 * create); one in another folder is a clear fatal error. */
static void test_adopt_and_elsewhere(void **state)
{
        const char *m = "101-AAA-004";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o;
        const char *em[1] = { "adopt-new@example.com" };
        const char *old[1] = { "adopt-old@example.com" };
        struct list_info li, li0;

        admin_post(&main_emu, "seed",
                   "{\"instance\":\"101-AAA-004\","
                   "\"folders\":[{\"name\":\"Elsewhere\",\"kind\":\"list\"}],"
                   "\"lists\":[{\"name\":\"Adopt Me\",\"folder\":\"Audiences\",\"members\":[\"adopt-old@example.com\"]},"
                   "{\"name\":\"Misplaced\",\"folder\":\"Elsewhere\",\"members\":[]}]}");
        li0 = list_state(&main_emu, m, "Adopt Me", old, 1, false);
        assert_int_equal(li0.count, 1);

        inst_init(&in, &main_emu, m, "cid4", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "adopt me", MLS_MKTO_ADD, em, 1, &o);
        run_all(loop, WAIT_MS);
        expect_ok(&o);
        assert_int_equal(o.res.list_id, li0.id);
        li = list_state(&main_emu, m, "Adopt Me", em, 1, false);
        assert_int_equal(li.count, 1);
        assert_int_equal(li.members, 2);
        assert_int_equal(counter(&main_emu, m, "calls", "staticList.create"),
                         0);

        sync_job(mk, "Misplaced", MLS_MKTO_ADD, em, 1, &o);
        run_all(loop, WAIT_MS);
        assert_int_equal(o.res.err, MLS_ERR_FATAL);
        assert_true(contains(o.res.errstr, "Misplaced"));
        assert_true(contains(o.res.errstr, m));
        assert_true(contains(o.res.errstr, "Audiences"));
        assert_true(o.res.retry_at_ms > mls_now_ms());
        li = list_state(&main_emu, m, "Misplaced", NULL, 0, false);
        assert_int_equal(li.count, 1);
        assert_int_equal(li.members, 0);
        assert_string_equal(li.folder, "Elsewhere");
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
}

/* Destroying a client with jobs pending runs their callbacks with
 * MLS_ERR_CANCELLED, exactly once. */
static void test_cancel(void **state)
{
        const char *m = "101-AAA-005";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o;
        const char *em[1] = { "cancel@example.com" };

        inst_init(&in, &main_emu, m, "cid5", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Cancelled", MLS_MKTO_ADD, em, 1, &o);
        assert_int_equal(mls_mkto_pending(mk), 1);
        mls_mkto_loop_run(loop, 0);
        mls_mkto_destroy(mk);
        assert_true(o.done);
        assert_int_equal(o.calls, 1);
        assert_int_equal(o.res.err, MLS_ERR_CANCELLED);
        assert_int_equal(mls_mkto_loop_run(loop, 0), 0);
        mls_mkto_loop_destroy(loop);
}

/* With every event logged, the log holds no email, secret or token. */
static void test_no_pii_in_logs(void **state)
{
        const char *m = "101-AAA-005";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        const char *dir = mls_tmpdir("mkto-log");
        char path[512];
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o;
        const char *em[2] = { "secretperson@example.com", "bad address" };
        int saved, fd;
        char *buf = NULL;

        snprintf(path, sizeof(path), "%s/stderr.log", dir);
        fflush(stderr);
        saved = dup(2);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(saved >= 0 && fd >= 0);
        dup2(fd, 2);
        close(fd);
        mls_log_setup(MLS_LOG_DEBUG, MLS_LOG_TEXT);

        inst_init(&in, &main_emu, m, "cid5", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Logged", MLS_MKTO_ADD, em, 2, &o);
        run_all(loop, WAIT_MS);
        admin_post(&main_emu, "expire-tokens?instance=101-AAA-005", "{}");
        sync_job(mk, "Logged", MLS_MKTO_REMOVE, em, 2, &o);
        run_all(loop, WAIT_MS);
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);

        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        mls_log_setup(getenv("MLS_TEST_VERBOSE") ? MLS_LOG_DEBUG :
                                                   MLS_LOG_ERROR,
                      MLS_LOG_TEXT);
        expect_ok(&o);
        assert_int_equal(mls_read_file(path, &buf, NULL), 0);
        assert_true(contains(buf, "101-AAA-005")); /* it did log */
        assert_false(contains(buf, "secretperson"));
        assert_false(contains(buf, "example.com"));
        assert_false(contains(buf, SECRET));
        assert_false(contains(buf, ":em")); /* emulator token suffix */
        free(buf);
}

/* Tokens: a short TTL and forced expiry between jobs; every job works,
 * several identity calls, 602 handled by one re-authentication. */
static void test_token_expiry(void **state)
{
        static const char *const args[] = {
                "--instance", "201-TOK-001:tcid:" SECRET ":Audiences",
                "--token-ttl", "3", NULL
        };
        const char *m = "201-TOK-001";
        struct mls_mkto_loop *loop;
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o;
        const char **em = make_emails("tok", 20, 0);
        struct mls_mkto_stats st;
        int64_t end;

        assert_int_equal(emu_up(&own_emu, args), 0);
        loop = mls_mkto_loop_new();
        inst_init(&in, &own_emu, m, "tcid", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Tokens", MLS_MKTO_ADD, em, 5, &o);
        run_all(loop, WAIT_MS);
        expect_ok(&o);

        admin_post(&own_emu, "expire-tokens", "{}");
        sync_job(mk, "Tokens", MLS_MKTO_ADD, em + 5, 5, &o);
        run_all(loop, WAIT_MS);
        expect_ok(&o);
        assert_true(counter(&own_emu, m, "errors", "602") >= 1);

        /* Let the token run out on its own, then work across expiries. */
        end = mls_now_ms() + 3500;
        while (mls_now_ms() < end)
                mls_mkto_loop_run(loop, 100);
        for (int i = 0; i < 4; i++) {
                sync_job(mk, "Tokens", i % 2 ? MLS_MKTO_REMOVE : MLS_MKTO_ADD,
                         em + 10, 10, &o);
                run_all(loop, WAIT_MS);
                expect_ok(&o);
                end = mls_now_ms() + 1200;
                while (mls_now_ms() < end)
                        mls_mkto_loop_run(loop, 100);
        }
        mls_mkto_get_stats(mk, &st);
        assert_true(st.token_calls >= 3);
        assert_true(counter(&own_emu, m, "calls", "identity") >= 3);
        assert_int_equal(st.jobs_ok, 6);
        assert_int_equal(st.jobs_failed, 0);
        assert_int_equal(list_state(&own_emu, m, "Tokens", em, 10, false)
                                 .members,
                         10);
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
        free_emails(em, 20);
}

/* Marketo allows 8 calls per 20 s, our budget says 100: we get 606, wait
 * the window out and finish, and never send into a window that already
 * refused us (repeat_606 == 0). */
static void test_rate_606(void **state)
{
        static const char *const args[] = {
                "--instance", "202-RAT-001:rcid:" SECRET ":Audiences",
                "--calls-per-20s", "8", "--latency-ms", "2-10", NULL
        };
        const char *m = "202-RAT-001";
        struct mls_mkto_loop *loop;
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o[3];
        const char **em = make_emails("rate", 9, 0);
        struct mls_mkto_stats st;

        assert_int_equal(emu_up(&own_emu, args), 0);
        loop = mls_mkto_loop_new();
        inst_init(&in, &own_emu, m, "rcid", 100, 3);
        mk = client_new(loop, &in);
        for (int i = 0; i < 3; i++) {
                char name[32];

                snprintf(name, sizeof(name), "Rate %d", i);
                sync_job(mk, name, MLS_MKTO_ADD, em + 3 * i, 3, &o[i]);
        }
        run_all(loop, WAIT_MS);
        for (int i = 0; i < 3; i++) {
                char name[32];

                expect_ok(&o[i]);
                snprintf(name, sizeof(name), "Rate %d", i);
                assert_int_equal(
                        list_state(&own_emu, m, name, em + 3 * i, 3, false)
                                .members,
                        3);
        }
        mls_mkto_get_stats(mk, &st);
        assert_true(st.errors_606 >= 1);
        assert_true(counter(&own_emu, m, "errors", "606") >= 1);
        assert_int_equal(counter(&own_emu, m, "repeat_606", NULL), 0);
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
        free_emails(em, 9);
}

/* Marketo allows one call in flight (slow calls), we allow four: 615s
 * are waited out and every job finishes exactly. */
static void test_conc_615(void **state)
{
        static const char *const args[] = {
                "--instance", "203-CON-001:ccid:" SECRET ":Audiences",
                "--concurrency", "1", "--latency-ms", "30-60",
                "--calls-per-20s", "10000", NULL
        };
        const char *m = "203-CON-001";
        struct mls_mkto_loop *loop;
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o[4];
        const char **em = make_emails("conc", 12, 0);
        struct mls_mkto_stats st;

        assert_int_equal(emu_up(&own_emu, args), 0);
        loop = mls_mkto_loop_new();
        inst_init(&in, &own_emu, m, "ccid", 1000, 4);
        mk = client_new(loop, &in);
        for (int i = 0; i < 4; i++) {
                char name[32];

                snprintf(name, sizeof(name), "Conc %d", i);
                sync_job(mk, name, MLS_MKTO_ADD, em + 3 * i, 3, &o[i]);
        }
        run_all(loop, WAIT_MS);
        for (int i = 0; i < 4; i++) {
                char name[32];

                expect_ok(&o[i]);
                snprintf(name, sizeof(name), "Conc %d", i);
                assert_int_equal(
                        list_state(&own_emu, m, name, em + 3 * i, 3, false)
                                .members,
                        3);
        }
        mls_mkto_get_stats(mk, &st);
        assert_true(st.errors_615 >= 1);
        assert_true(counter(&own_emu, m, "errors", "615") >= 1);
        assert_int_equal(counter(&own_emu, m, "max_concurrency", NULL), 1);
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
        free_emails(em, 12);
}

/* About a fifth of all calls fail (502, 503, 604, dropped connections,
 * identity included): jobs still all succeed and the state is exact. */
static void test_faults(void **state)
{
        static const char *const args[] = {
                "--instance", "204-FLT-001:fcid:" SECRET ":Audiences",
                "--fault", "http502=0.06", "--fault", "http503=0.05",
                "--fault", "timeout604=0.05", "--fault", "drop=0.05",
                "--seed", "42", NULL
        };
        const char *m = "204-FLT-001";
        struct mls_mkto_loop *loop;
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o[4];
        const char **em = make_emails("fault", 700, 0);
        struct mls_mkto_stats st;
        struct list_info li;
        int64_t errs;

        assert_int_equal(emu_up(&own_emu, args), 0);
        loop = mls_mkto_loop_new();
        inst_init(&in, &own_emu, m, "fcid", 1000, 4);
        mk = client_new(loop, &in);
        mls_mkto_set_tuning(mk, 10000, 10, 20);
        sync_job(mk, "Faulty A", MLS_MKTO_ADD, em, 400, &o[0]);
        sync_job(mk, "Faulty B", MLS_MKTO_ADD, em + 400, 300, &o[1]);
        sync_job(mk, "Faulty C", MLS_MKTO_ADD, em, 50, &o[2]);
        run_all(loop, WAIT_MS);
        for (int i = 0; i < 3; i++)
                expect_ok(&o[i]);
        sync_job(mk, "Faulty A", MLS_MKTO_REMOVE, em + 100, 300, &o[3]);
        run_all(loop, WAIT_MS);
        expect_ok(&o[3]);

        li = list_state(&own_emu, m, "Faulty A", em, 100, false);
        assert_int_equal(li.count, 1);
        assert_int_equal(li.members, 100);
        list_state(&own_emu, m, "Faulty A", em + 100, 300, true);
        li = list_state(&own_emu, m, "Faulty B", em + 400, 300, false);
        assert_int_equal(li.count, 1);
        assert_int_equal(li.members, 300);
        li = list_state(&own_emu, m, "Faulty C", em, 50, false);
        assert_int_equal(li.count, 1);
        assert_int_equal(li.members, 50);
        errs = counter(&own_emu, m, "errors", "http_502") +
               counter(&own_emu, m, "errors", "http_503") +
               counter(&own_emu, m, "errors", "604") +
               counter(&own_emu, m, "errors", "drop");
        assert_true(errs >= 2);
        mls_mkto_get_stats(mk, &st);
        assert_true(st.retries >= 2);
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
        free_emails(em, 700);
}

/* Our budget (10 per 20 s) is below Marketo's (100): Marketo never sees
 * more than 10 calls in any 20 s window, and every job finishes. */
static void test_local_limiter(void **state)
{
        static const char *const args[] = {
                "--instance", "205-LIM-001:lcid:" SECRET ":Audiences",
                "--calls-per-20s", "100", NULL
        };
        const char *m = "205-LIM-001";
        struct mls_mkto_loop *loop;
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o[3];
        const char **em = make_emails("lim", 9, 0);

        assert_int_equal(emu_up(&own_emu, args), 0);
        loop = mls_mkto_loop_new();
        inst_init(&in, &own_emu, m, "lcid", 10, 5);
        mk = client_new(loop, &in);
        for (int i = 0; i < 3; i++) {
                char name[32];

                snprintf(name, sizeof(name), "Limited %d", i);
                sync_job(mk, name, MLS_MKTO_ADD, em + 3 * i, 3, &o[i]);
        }
        run_all(loop, WAIT_MS);
        for (int i = 0; i < 3; i++)
                expect_ok(&o[i]);
        /* 1 folder + 3 x (byName, create, sync, add) = 13 > 10. */
        assert_true(counter(&own_emu, m, "total_calls", NULL) >= 13);
        assert_true(counter(&own_emu, m, "max_calls_in_20s", NULL) <= 10);
        assert_int_equal(counter(&own_emu, m, "errors", "606"), 0);
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
        free_emails(em, 9);
}

/* Id of the folder called name whose folderType is kind. */
static int64_t folder_id_of(const struct emu *e, const char *m,
                            const char *name, const char *kind)
{
        json_object *in = admin_get(e, "state", m);
        json_object *folders = NULL;
        int64_t id = -1;

        assert_true(json_object_object_get_ex(in, "folders", &folders));
        for (size_t i = 0; i < json_object_array_length(folders); i++) {
                json_object *f = json_object_array_get_idx(folders, i);
                json_object *n = NULL, *k = NULL, *v = NULL;

                json_object_object_get_ex(f, "name", &n);
                json_object_object_get_ex(f, "folderType", &k);
                json_object_object_get_ex(f, "id", &v);
                if (!strcmp(json_object_get_string(n), name) &&
                    !strcasecmp(json_object_get_string(k), kind))
                        id = json_object_get_int64(v);
        }
        json_object_put(in);
        return id;
}

static int64_t list_folder_id(const struct emu *e, const char *m,
                              const char *name)
{
        json_object *in = admin_get(e, "state", m);
        json_object *lists = NULL;
        int64_t id = -1;

        assert_true(json_object_object_get_ex(in, "lists", &lists));
        for (size_t i = 0; i < json_object_array_length(lists); i++) {
                json_object *l = json_object_array_get_idx(lists, i);
                json_object *n = NULL, *v = NULL;

                json_object_object_get_ex(l, "name", &n);
                json_object_object_get_ex(l, "folder_id", &v);
                if (!strcasecmp(json_object_get_string(n), name))
                        id = json_object_get_int64(v);
        }
        json_object_put(in);
        return id;
}

/* Several folders share the configured name: the list lands in the Lead
 * Database list folder, not in the marketing folder or the program. */
static void test_folder_choice(void **state)
{
        const char *m = "101-AAA-006";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o;
        const char *em[1] = { "choice@example.com" };
        int64_t want;

        admin_post(&main_emu, "seed",
                   "{\"instance\":\"101-AAA-006\",\"folders\":["
                   "{\"name\":\"Audiences\",\"kind\":\"marketing\"},"
                   "{\"name\":\"Audiences\",\"kind\":\"program\"},"
                   "{\"name\":\"Audiences\",\"kind\":\"email\"}]}");
        want = folder_id_of(&main_emu, m, "Audiences", "list");
        assert_true(want > 0);
        inst_init(&in, &main_emu, m, "cid6", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Chosen", MLS_MKTO_ADD, em, 1, &o);
        run_all(loop, WAIT_MS);
        expect_ok(&o);
        assert_int_equal(list_folder_id(&main_emu, m, "Chosen"), want);
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
}

/* One email held by two leads (Marketo answers 1007 to the upsert): both
 * leads join the list and both leave it. Five jobs started at once share
 * one token fetch. */
static void test_duplicates_one_token(void **state)
{
        const char *m = "101-AAA-005";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o[5];
        const char *dup[2] = { "twice@example.com", "once@example.com" };
        const char **em = make_emails("par", 8, 0);
        int64_t id0 = counter(&main_emu, m, "calls", "identity");
        struct list_info li;

        admin_post(&main_emu, "seed",
                   "{\"instance\":\"101-AAA-005\",\"leads\":"
                   "[\"twice@example.com\",\"Twice@Example.com\"]}");
        inst_init(&in, &main_emu, m, "cid5", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Dups", MLS_MKTO_ADD, dup, 2, &o[0]);
        for (int i = 1; i < 5; i++) {
                char name[32];

                snprintf(name, sizeof(name), "Parallel %d", i);
                sync_job(mk, name, MLS_MKTO_ADD, em + 2 * (i - 1), 2, &o[i]);
        }
        run_all(loop, WAIT_MS);
        for (int i = 0; i < 5; i++)
                expect_ok(&o[i]);
        assert_int_equal(counter(&main_emu, m, "calls", "identity") - id0, 1);
        assert_int_equal(o[0].res.applied, 2);
        assert_true(counter(&main_emu, m, "skips", "1007") >= 1);
        li = list_state(&main_emu, m, "Dups", dup, 2, false);
        assert_int_equal(li.members, 3); /* two leads share one email */

        sync_job(mk, "Dups", MLS_MKTO_REMOVE, dup, 1, &o[0]);
        run_all(loop, WAIT_MS);
        expect_ok(&o[0]);
        li = list_state(&main_emu, m, "Dups", dup, 1, true);
        assert_int_equal(li.members, 1);
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
        free_emails(em, 8);
}

/* Wrong secret: identity answers 401; the job fails fatally, naming the
 * instance, never the secret. */
static void test_bad_credentials(void **state)
{
        const char *m = "101-AAA-005";
        struct mls_mkto_loop *loop = mls_mkto_loop_new();
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o;
        const char *em[1] = { "creds@example.com" };

        inst_init(&in, &main_emu, m, "cid5", 100, 5);
        snprintf(in.secret, sizeof(in.secret), "wrong-secret-xyz");
        mk = client_new(loop, &in);
        sync_job(mk, "Creds", MLS_MKTO_ADD, em, 1, &o);
        run_all(loop, WAIT_MS);
        assert_int_equal(o.res.err, MLS_ERR_FATAL);
        assert_string_equal(o.res.code, "http_401");
        assert_true(contains(o.res.errstr, m));
        assert_false(contains(o.res.errstr, "wrong-secret"));
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
}

/* Daily quota spent (607): the job fails with MLS_ERR_QUOTA and a retry
 * time at Marketo's reset, and later jobs fail the same way without
 * sending anything. */
static void test_quota_607(void **state)
{
        static const char *const args[] = {
                "--instance", "206-QUO-001:qcid:" SECRET ":Audiences",
                "--daily-quota", "3", NULL
        };
        const char *m = "206-QUO-001";
        struct mls_mkto_loop *loop;
        struct inst in;
        struct mls_mkto *mk;
        struct outcome o;
        const char *em[1] = { "quota@example.com" };
        int64_t calls, now;

        assert_int_equal(emu_up(&own_emu, args), 0);
        loop = mls_mkto_loop_new();
        inst_init(&in, &own_emu, m, "qcid", 100, 5);
        mk = client_new(loop, &in);
        sync_job(mk, "Quota", MLS_MKTO_ADD, em, 1, &o);
        run_all(loop, WAIT_MS);
        now = mls_now_ms();
        assert_int_equal(o.res.err, MLS_ERR_QUOTA);
        assert_string_equal(o.res.code, "607");
        assert_true(o.res.retry_at_ms > now);
        assert_true(o.res.retry_at_ms <= now + 26LL * 3600 * 1000);
        assert_int_equal(counter(&own_emu, m, "errors", "607"), 1);
        calls = counter(&own_emu, m, "total_calls", NULL);

        sync_job(mk, "Quota", MLS_MKTO_ADD, em, 1, &o);
        run_all(loop, WAIT_MS);
        assert_int_equal(o.res.err, MLS_ERR_QUOTA);
        assert_int_equal(counter(&own_emu, m, "total_calls", NULL), calls);
        mls_mkto_destroy(mk);
        mls_mkto_loop_destroy(loop);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_split_300, test_teardown),
                cmocka_unit_test_teardown(test_remove_unknown, test_teardown),
                cmocka_unit_test_teardown(test_long_emails, test_teardown),
                cmocka_unit_test_teardown(test_invalid_email, test_teardown),
                cmocka_unit_test_teardown(test_missing_folder, test_teardown),
                cmocka_unit_test_teardown(test_create_race, test_teardown),
                cmocka_unit_test_teardown(test_adopt_and_elsewhere,
                                          test_teardown),
                cmocka_unit_test_teardown(test_cancel, test_teardown),
                cmocka_unit_test_teardown(test_folder_choice, test_teardown),
                cmocka_unit_test_teardown(test_duplicates_one_token,
                                          test_teardown),
                cmocka_unit_test_teardown(test_bad_credentials,
                                          test_teardown),
                cmocka_unit_test_teardown(test_quota_607, test_teardown),
                cmocka_unit_test_teardown(test_no_pii_in_logs, test_teardown),
                cmocka_unit_test_teardown(test_token_expiry, test_teardown),
                cmocka_unit_test_teardown(test_rate_606, test_teardown),
                cmocka_unit_test_teardown(test_conc_615, test_teardown),
                cmocka_unit_test_teardown(test_faults, test_teardown),
                cmocka_unit_test_teardown(test_local_limiter, test_teardown),
        };

        return cmocka_run_group_tests_name("it_marketo", tests, group_setup,
                                           group_teardown);
}
