/* SPDX-License-Identifier: Apache-2.0
 *
 * config.c - load the YAML config with libyaml's document API, expand
 * ${VAR} and *_file secrets, check every key and report every problem as
 * "file:line:column: message".
 */
#include "mlsync/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "mlsync/endpoint.h"
#include "mlsync/log.h"
#include "mlsync/util.h"

#define CFG_PATH_MAX 160

/* Built-in defaults; the header and config.example.yaml repeat them. */
#define DEF_CALLS_PER_20S 80
#define DEF_CONCURRENT_CALLS 8
#define DEF_DAILY_CALLS 40000L
#define DEF_MAX_WAIT_MS 1000
#define DEF_MAX_EMAILS 300
#define DEF_MAX_PENDING 20000
#define DEF_SHUTDOWN_TIMEOUT_MS 20000
#define DEF_COMMIT_INTERVAL_MS 1000

struct cfg_msg {
        size_t line;   /* 1-based */
        size_t col;    /* 1-based */
        size_t seq;    /* order found, to keep the sort stable */
        char *text;
};

struct loader {
        const char *name;  /* file name used in messages */
        const char *buf;   /* the text, to place reader errors */
        size_t len;
        yaml_document_t doc;
        struct mls_cfg *cfg;
        struct cfg_msg *msgs; /* every problem found */
        size_t msg_cnt;
        size_t msg_cap;
        bool nomem;
};

/* The keys of each mapping; the enums index the found[] arrays. */
static const char *const root_keys[] = { "kafka", "marketo", "batch",
                                         "worker", "log" };
enum { R_KAFKA, R_MARKETO, R_BATCH, R_WORKER, R_LOG, R_CNT };

static const char *const kafka_keys[] = { "brokers", "group", "topics",
                                          "dead_letter_topic",
                                          "control_topic", "properties" };
enum { K_BROKERS, K_GROUP, K_TOPICS, K_DLQ, K_CONTROL, K_PROPS, K_CNT };

static const char *const marketo_keys[] = { "folder", "budget", "instances" };
enum { M_FOLDER, M_BUDGET, M_INSTANCES, M_CNT };

static const char *const budget_keys[] = { "calls_per_20s",
                                           "concurrent_calls", "daily_calls" };
enum { B_CALLS, B_CONCURRENT, B_DAILY, B_CNT };

static const char *const inst_keys[] = { "munchkin_id", "endpoint",
                                         "client_id", "client_secret",
                                         "client_secret_file", "folder",
                                         "budget" };
enum { I_MUNCHKIN, I_ENDPOINT, I_CLIENT_ID, I_SECRET, I_SECRET_FILE,
       I_FOLDER, I_BUDGET, I_CNT };

static const char *const batch_keys[] = { "max_wait_ms", "max_emails",
                                          "max_pending" };
enum { BA_WAIT, BA_EMAILS, BA_PENDING, BA_CNT };

static const char *const worker_keys[] = { "shutdown_timeout_ms",
                                           "commit_interval_ms",
                                           "http_addr" };
enum { W_SHUTDOWN, W_COMMIT, W_HTTP, W_CNT };

static const char *const log_keys[] = { "level", "format" };
enum { L_LEVEL, L_FORMAT, L_CNT };

/* librdkafka properties that mlsync's own keys or its commit-after-apply
 * guarantee decide; accepting them would silently break one or the other. */
static const struct {
        const char *key;
        const char *why;
} reserved_props[] = {
        { "bootstrap.servers", "set kafka.brokers instead" },
        { "metadata.broker.list", "set kafka.brokers instead" },
        { "group.id", "set kafka.group instead" },
        { "enable.auto.commit",
          "mlsync commits only what Marketo accepted" },
        { "enable.auto.offset.store",
          "mlsync commits only what Marketo accepted" },
};

/* Substrings of property names whose values are never printed. */
static const char *const secret_prop_words[] = { "password", "secret",
                                                 "sasl.jaas", "token" };

/* ---- error collection ---- */

/* Messages are kept apart and sorted by position at the end: the checks
 * run section by section, but a reader wants them in file order. */
static void vreport_at(struct loader *ld, size_t line, size_t col,
                       const char *fmt, va_list ap)
{
        char text[768];
        struct cfg_msg *m;

        if (ld->msg_cnt == ld->msg_cap) {
                size_t cap = ld->msg_cap ? ld->msg_cap * 2 : 16;

                m = realloc(ld->msgs, cap * sizeof(*m));
                if (!m) {
                        ld->nomem = true;
                        return;
                }
                ld->msgs = m;
                ld->msg_cap = cap;
        }
        vsnprintf(text, sizeof(text), fmt, ap);
        m = &ld->msgs[ld->msg_cnt];
        m->text = strdup(text);
        if (!m->text) {
                ld->nomem = true;
                return;
        }
        m->line = line;
        m->col = col;
        m->seq = ld->msg_cnt++;
}

static int msg_cmp(const void *a, const void *b)
{
        const struct cfg_msg *x = a, *y = b;

        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        if (x->col != y->col)
                return x->col < y->col ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/**
 * Sort the messages and join them as "name:line:column: text\n" lines.
 * @returns the text (caller owns it), or NULL on OOM.
 */
static char *join_msgs(struct loader *ld)
{
        size_t total = 1, used = 0;
        char *out;

        qsort(ld->msgs, ld->msg_cnt, sizeof(*ld->msgs), msg_cmp);
        for (size_t i = 0; i < ld->msg_cnt; i++)
                total += strlen(ld->name) + strlen(ld->msgs[i].text) + 48;
        out = malloc(total);
        if (!out)
                return NULL;
        out[0] = '\0';
        for (size_t i = 0; i < ld->msg_cnt; i++) {
                const struct cfg_msg *m = &ld->msgs[i];

                used += (size_t)snprintf(out + used, total - used,
                                         "%s:%zu:%zu: %s\n", ld->name,
                                         m->line, m->col, m->text);
        }
        return out;
}

static void free_msgs(struct loader *ld)
{
        for (size_t i = 0; i < ld->msg_cnt; i++)
                free(ld->msgs[i].text);
        free(ld->msgs);
}

static void report_at(struct loader *ld, size_t line, size_t col,
                      const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void report_at(struct loader *ld, size_t line, size_t col,
                      const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vreport_at(ld, line, col, fmt, ap);
        va_end(ap);
}

static void report(struct loader *ld, const yaml_node_t *n,
                   const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Reports at the start of node n (libyaml marks are 0-based). */
static void report(struct loader *ld, const yaml_node_t *n,
                   const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vreport_at(ld, n->start_mark.line + 1, n->start_mark.column + 1, fmt,
                   ap);
        va_end(ap);
}

/* ---- nodes ---- */

static yaml_node_t *node_at(struct loader *ld, int id)
{
        return yaml_document_get_node(&ld->doc, id);
}

static const char *kind_name(const yaml_node_t *n)
{
        switch (n->type) {
        case YAML_MAPPING_NODE:
                return "a mapping";
        case YAML_SEQUENCE_NODE:
                return "a list";
        default:
                return "a scalar";
        }
}

/* An empty plain scalar, "~" or "null": the value was left out. */
static bool is_null(const yaml_node_t *n)
{
        const char *v;

        if (n->type != YAML_SCALAR_NODE ||
            n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        v = (const char *)n->data.scalar.value;
        return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
               !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* "parent.key" for messages; a path cut at size still reads fine. */
static void join_path(char *out, size_t size, const char *parent,
                      const char *key)
{
        int n = snprintf(out, size, "%s%s%s", parent, *parent ? "." : "",
                         key);

        if (n < 0)
                out[0] = '\0';
}

/* "a, b, c" for an unknown-key message. */
static void key_list(char *out, size_t size, const char *const *keys,
                     size_t key_cnt)
{
        size_t used = 0;

        out[0] = '\0';
        for (size_t i = 0; i < key_cnt && used < size; i++) {
                int n = snprintf(out + used, size - used, "%s%s",
                                 i ? ", " : "", keys[i]);

                if (n < 0)
                        break;
                used += (size_t)n;
        }
}

/**
 * Check a mapping's keys against keys[]: unknown, duplicate and non-string
 * keys are reported; found[i] is set to the value of keys[i] or NULL.
 * A missing or null mapping counts as empty.
 *
 * @returns false when map is not a mapping at all.
 */
static bool walk_map(struct loader *ld, yaml_node_t *map, const char *path,
                     const char *const *keys, size_t key_cnt,
                     yaml_node_t **found)
{
        yaml_node_t *first_key[8] = { 0 };

        for (size_t i = 0; i < key_cnt; i++)
                found[i] = NULL;
        if (!map || is_null(map))
                return true;
        if (map->type != YAML_MAPPING_NODE) {
                report(ld, map, "%s: expected a mapping, got %s",
                       *path ? path : "config", kind_name(map));
                return false;
        }

        for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
             p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_at(ld, p->key);
                const char *name;
                size_t i;

                if (k->type != YAML_SCALAR_NODE) {
                        report(ld, k, "%s: keys must be plain strings",
                               *path ? path : "config");
                        continue;
                }
                name = (const char *)k->data.scalar.value;
                for (i = 0; i < key_cnt; i++)
                        if (!strcmp(name, keys[i]))
                                break;
                if (i == key_cnt) {
                        char list[256];

                        key_list(list, sizeof(list), keys, key_cnt);
                        report(ld, k,
                               "%s: unknown key '%.64s' (expected one of: %s)",
                               *path ? path : "config", name, list);
                        continue;
                }
                if (first_key[i]) {
                        report(ld, k,
                               "%s: duplicate key '%s' (first set at line %zu)",
                               *path ? path : "config", keys[i],
                               first_key[i]->start_mark.line + 1);
                        continue;
                }
                first_key[i] = k;
                found[i] = node_at(ld, p->value);
        }
        return true;
}

/* ---- values ---- */

static bool is_name_char(char c, bool first)
{
        if (c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
                return true;
        return !first && c >= '0' && c <= '9';
}

/* Appends n bytes to a growing string; false on OOM. */
static bool put_bytes(char **s, size_t *len, size_t *cap, const char *p,
                      size_t n)
{
        if (*len + n + 1 > *cap) {
                size_t nc = *cap ? *cap * 2 : 64;
                char *ns;

                while (nc < *len + n + 1)
                        nc *= 2;
                ns = realloc(*s, nc);
                if (!ns)
                        return false;
                *s = ns;
                *cap = nc;
        }
        memcpy(*s + *len, p, n);
        *len += n;
        (*s)[*len] = '\0';
        return true;
}

/**
 * Expand ${VAR} and ${VAR:-default} in a scalar; "$${" is a literal "${".
 * An unset variable without a default is an error, not an empty string.
 *
 * @returns the expanded copy (caller owns it), or NULL after reporting
 *          (or with ld->nomem set).
 */
static char *expand(struct loader *ld, const yaml_node_t *n,
                    const char *path)
{
        const char *s = (const char *)n->data.scalar.value;
        char *out = NULL;
        size_t len = 0, cap = 0;
        bool ok = put_bytes(&out, &len, &cap, "", 0);

        while (ok && *s) {
                const char *name, *end, *dflt = NULL;
                size_t name_len;
                const char *val;

                if (s[0] == '$' && s[1] == '$' && s[2] == '{') {
                        ok = put_bytes(&out, &len, &cap, "${", 2);
                        s += 3;
                        continue;
                }
                if (s[0] != '$' || s[1] != '{') {
                        ok = put_bytes(&out, &len, &cap, s, 1);
                        s++;
                        continue;
                }

                name = s + 2;
                end = strchr(name, '}');
                if (!end) {
                        report(ld, n, "%s: '${' without a closing '}'",
                               path);
                        free(out);
                        return NULL;
                }
                for (name_len = 0; name + name_len < end &&
                                   is_name_char(name[name_len], !name_len);
                     name_len++)
                        ;
                if (name + name_len + 1 < end && name[name_len] == ':' &&
                    name[name_len + 1] == '-')
                        dflt = name + name_len + 2;
                if (!name_len || (!dflt && name + name_len != end)) {
                        report(ld, n,
                               "%s: bad variable reference: write ${NAME} or ${NAME:-default}",
                               path);
                        free(out);
                        return NULL;
                }

                {
                        char var[128];

                        snprintf(var, sizeof(var), "%.*s", (int)name_len,
                                 name);
                        val = getenv(var);
                        if (!val && !dflt) {
                                report(ld, n,
                                       "%s: environment variable %s is not set (use ${%s:-default} for a default)",
                                       path, var, var);
                                free(out);
                                return NULL;
                        }
                }
                /* Shell semantics: ":-" also applies to an empty value. */
                if (dflt && (!val || !*val))
                        ok = put_bytes(&out, &len, &cap, dflt,
                                       (size_t)(end - dflt));
                else
                        ok = put_bytes(&out, &len, &cap, val, strlen(val));
                s = end + 1;
        }
        if (!ok) {
                ld->nomem = true;
                free(out);
                return NULL;
        }
        return out;
}

/**
 * The expanded string value of n.
 *
 * @param outp  Set to the value (caller owns it), or NULL when n is absent
 *              or null.
 * @returns false after reporting a problem.
 */
static bool get_str(struct loader *ld, const yaml_node_t *n,
                    const char *path, char **outp)
{
        *outp = NULL;
        if (!n || is_null(n))
                return true;
        if (n->type != YAML_SCALAR_NODE) {
                report(ld, n, "%s: expected a string, got %s", path,
                       kind_name(n));
                return false;
        }
        *outp = expand(ld, n, path);
        return *outp != NULL;
}

/**
 * A required, non-empty string: key of the mapping map (or of its parent
 * when the whole mapping is missing).
 */
static bool need_str(struct loader *ld, yaml_node_t *at, yaml_node_t *n,
                     const char *parent, const char *key, char **outp)
{
        char path[CFG_PATH_MAX];

        join_path(path, sizeof(path), parent, key);
        if (!n) {
                report(ld, at, "%s: missing required key '%s'",
                       *parent ? parent : "config", key);
                *outp = NULL;
                return false;
        }
        if (!get_str(ld, n, path, outp))
                return false;
        if (!*outp || !**outp) {
                report(ld, n, "%s: must not be empty", path);
                free(*outp);
                *outp = NULL;
                return false;
        }
        return true;
}

/* An optional string that, when given, must not be empty. */
static bool opt_str(struct loader *ld, yaml_node_t *n, const char *parent,
                    const char *key, char **outp)
{
        char path[CFG_PATH_MAX];

        join_path(path, sizeof(path), parent, key);
        if (!get_str(ld, n, path, outp))
                return false;
        if (*outp && !**outp) {
                report(ld, n, "%s: must not be empty", path);
                free(*outp);
                *outp = NULL;
                return false;
        }
        return true;
}

/**
 * An optional integer in [min, max]; *outp is left alone when absent.
 * @returns false after reporting a problem.
 */
static bool get_long(struct loader *ld, const yaml_node_t *n,
                     const char *parent, const char *key, long min,
                     long max, long *outp)
{
        char path[CFG_PATH_MAX];
        char *s, *end;
        long v;

        join_path(path, sizeof(path), parent, key);
        if (!get_str(ld, n, path, &s))
                return false;
        if (!s)
                return true;

        errno = 0;
        v = strtol(s, &end, 10);
        if (end == s || *end || errno == ERANGE) {
                report(ld, n, "%s: expected an integer, got '%.32s'", path,
                       s);
                free(s);
                return false;
        }
        free(s);
        if (v < min || v > max) {
                report(ld, n, "%s: must be between %ld and %ld (got %ld)",
                       path, min, max, v);
                return false;
        }
        *outp = v;
        return true;
}

static bool get_int(struct loader *ld, const yaml_node_t *n,
                    const char *parent, const char *key, int min, int max,
                    int *outp)
{
        long v = *outp;

        if (!get_long(ld, n, parent, key, min, max, &v))
                return false;
        *outp = (int)v;
        return true;
}

/* ---- sections ---- */

static void load_topics(struct loader *ld, yaml_node_t *kmap,
                        yaml_node_t *n)
{
        struct mls_cfg *cfg = ld->cfg;
        size_t cnt;

        if (!n) {
                report(ld, kmap, "kafka: missing required key 'topics'");
                return;
        }
        if (n->type != YAML_SEQUENCE_NODE || is_null(n)) {
                report(ld, n, "kafka.topics: expected a list of topic names, got %s",
                       is_null(n) ? "nothing" : kind_name(n));
                return;
        }
        cnt = (size_t)(n->data.sequence.items.top -
                       n->data.sequence.items.start);
        if (!cnt) {
                report(ld, n, "kafka.topics: must name at least one topic");
                return;
        }
        cfg->kafka.topics = calloc(cnt, sizeof(*cfg->kafka.topics));
        if (!cfg->kafka.topics) {
                ld->nomem = true;
                return;
        }

        for (size_t i = 0; i < cnt; i++) {
                yaml_node_t *item = node_at(ld, n->data.sequence.items.start[i]);
                char path[CFG_PATH_MAX], *t;

                snprintf(path, sizeof(path), "kafka.topics[%zu]", i);
                if (!get_str(ld, item, path, &t))
                        continue;
                if (!t || !*t) {
                        report(ld, item, "%s: must not be empty", path);
                        free(t);
                        continue;
                }
                for (size_t j = 0; j < cfg->kafka.topic_cnt; j++) {
                        if (!strcmp(cfg->kafka.topics[j], t)) {
                                report(ld, item, "%s: duplicate topic '%s'",
                                       path, t);
                                free(t);
                                t = NULL;
                                break;
                        }
                }
                if (t)
                        cfg->kafka.topics[cfg->kafka.topic_cnt++] = t;
        }
}

/* Case-insensitive "word occurs in key" (strcasestr is a GNU extension). */
static bool contains_nocase(const char *key, const char *word)
{
        size_t n = strlen(word);

        for (; *key; key++)
                if (!strncasecmp(key, word, n))
                        return true;
        return false;
}

static bool prop_is_secret(const char *key)
{
        for (size_t i = 0; i < MLS_ARRAY_LEN(secret_prop_words); i++)
                if (contains_nocase(key, secret_prop_words[i]))
                        return true;
        return false;
}

/* One kafka.properties entry: scalar key, scalar value, not reserved. */
static void load_prop(struct loader *ld, yaml_node_t *k, yaml_node_t *v)
{
        struct mls_cfg *cfg = ld->cfg;
        struct mls_cfg_prop *pr;
        char path[CFG_PATH_MAX];
        const char *key;
        char *val;

        if (k->type != YAML_SCALAR_NODE) {
                report(ld, k, "kafka.properties: keys must be plain strings");
                return;
        }
        key = (const char *)k->data.scalar.value;
        join_path(path, sizeof(path), "kafka.properties", key);
        for (size_t i = 0; i < MLS_ARRAY_LEN(reserved_props); i++) {
                if (!strcmp(key, reserved_props[i].key)) {
                        report(ld, k, "%s: may not be set here: %s", path,
                               reserved_props[i].why);
                        return;
                }
        }
        for (size_t i = 0; i < cfg->kafka.prop_cnt; i++) {
                if (!strcmp(cfg->kafka.props[i].key, key)) {
                        report(ld, k, "kafka.properties: duplicate key '%.64s'",
                               key);
                        return;
                }
        }
        if (v->type != YAML_SCALAR_NODE || is_null(v)) {
                report(ld, v,
                       "%s: expected a string, number or boolean, got %s",
                       path, is_null(v) ? "nothing" : kind_name(v));
                return;
        }
        val = expand(ld, v, path);
        if (!val)
                return;

        pr = &cfg->kafka.props[cfg->kafka.prop_cnt];
        pr->key = strdup(key);
        pr->value = val;
        if (!pr->key) {
                free(val);
                ld->nomem = true;
                return;
        }
        cfg->kafka.prop_cnt++;
}

static void load_props(struct loader *ld, yaml_node_t *n)
{
        yaml_node_pair_t *p;
        size_t cnt;

        if (!n || is_null(n))
                return;
        if (n->type != YAML_MAPPING_NODE) {
                report(ld, n, "kafka.properties: expected a mapping, got %s",
                       kind_name(n));
                return;
        }
        cnt = (size_t)(n->data.mapping.pairs.top -
                       n->data.mapping.pairs.start);
        if (!cnt)
                return;
        ld->cfg->kafka.props = calloc(cnt, sizeof(*ld->cfg->kafka.props));
        if (!ld->cfg->kafka.props) {
                ld->nomem = true;
                return;
        }
        for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++)
                load_prop(ld, node_at(ld, p->key), node_at(ld, p->value));
}

static void load_kafka(struct loader *ld, yaml_node_t *root, yaml_node_t *n)
{
        struct mls_cfg *cfg = ld->cfg;
        yaml_node_t *f[K_CNT];
        yaml_node_t *at = n;

        if (!n) {
                report(ld, root, "config: missing required section 'kafka'");
                return;
        }
        if (!walk_map(ld, n, "kafka", kafka_keys, K_CNT, f))
                return;

        need_str(ld, at, f[K_BROKERS], "kafka", "brokers", &cfg->kafka.brokers);
        need_str(ld, at, f[K_GROUP], "kafka", "group", &cfg->kafka.group);
        load_topics(ld, at, f[K_TOPICS]);
        need_str(ld, at, f[K_DLQ], "kafka", "dead_letter_topic",
                 &cfg->kafka.dead_letter_topic);
        need_str(ld, at, f[K_CONTROL], "kafka", "control_topic",
                 &cfg->kafka.control_topic);
        load_props(ld, f[K_PROPS]);

        /* Dead-lettering into an input topic would loop forever. */
        for (size_t i = 0; cfg->kafka.dead_letter_topic &&
                           i < cfg->kafka.topic_cnt; i++) {
                if (!strcmp(cfg->kafka.topics[i],
                            cfg->kafka.dead_letter_topic))
                        report(ld, f[K_DLQ],
                               "kafka.dead_letter_topic: must not be one of kafka.topics");
        }
}

/**
 * Read a budget mapping into b; keys left out stay as they were, so the
 * same function reads defaults and overrides.
 */
static void load_budget(struct loader *ld, yaml_node_t *n, const char *path,
                        struct mls_budget *b)
{
        yaml_node_t *f[B_CNT];

        if (!walk_map(ld, n, path, budget_keys, B_CNT, f))
                return;
        get_int(ld, f[B_CALLS], path, "calls_per_20s", 1, 100,
                &b->calls_per_20s);
        get_int(ld, f[B_CONCURRENT], path, "concurrent_calls", 1, 10,
                &b->concurrent_calls);
        get_long(ld, f[B_DAILY], path, "daily_calls", 1, 1000000000L,
                 &b->daily_calls);
}

/* NNN-AAA-NNN: three digits, three letters, three digits. */
static bool munchkin_ok(const char *s)
{
        static const char shape[] = "999-AAA-999";

        if (strlen(s) != sizeof(shape) - 1)
                return false;
        for (size_t i = 0; shape[i]; i++) {
                char c = s[i];

                if (shape[i] == '9' && !(c >= '0' && c <= '9'))
                        return false;
                if (shape[i] == 'A' &&
                    !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
                        return false;
                if (shape[i] == '-' && c != '-')
                        return false;
        }
        return true;
}

/**
 * Read the secret file: one trailing newline (LF or CRLF) is dropped; an
 * unreadable or empty file is an error. The content is never printed.
 */
static void read_secret(struct loader *ld, yaml_node_t *n, const char *path,
                        struct mls_cfg_instance *in)
{
        char *buf;
        size_t len;

        if (mls_read_file(in->client_secret_file, &buf, &len) < 0) {
                if (errno == ENOMEM)
                        ld->nomem = true;
                else
                        report(ld, n, "%s: cannot read %s: %s", path,
                               in->client_secret_file, strerror(errno));
                return;
        }
        if (len && buf[len - 1] == '\n')
                buf[--len] = '\0';
        if (len && buf[len - 1] == '\r')
                buf[--len] = '\0';
        if (!len || strlen(buf) != len) {
                report(ld, n, "%s: %s is %s", path, in->client_secret_file,
                       len ? "not text (contains a NUL byte)" : "empty");
                free(buf);
                return;
        }
        in->client_secret = buf;
}

/* Exactly one of client_secret and client_secret_file. */
static void load_secret(struct loader *ld, yaml_node_t *at, yaml_node_t **f,
                        const char *ipath, struct mls_cfg_instance *in)
{
        char path[CFG_PATH_MAX];

        if (f[I_SECRET] && f[I_SECRET_FILE]) {
                report(ld, f[I_SECRET_FILE],
                       "%s: set client_secret or client_secret_file, not both",
                       ipath);
                return;
        }
        if (!f[I_SECRET] && !f[I_SECRET_FILE]) {
                report(ld, at,
                       "%s: missing required key 'client_secret' or 'client_secret_file'",
                       ipath);
                return;
        }
        if (f[I_SECRET]) {
                need_str(ld, at, f[I_SECRET], ipath, "client_secret",
                         &in->client_secret);
                return;
        }
        join_path(path, sizeof(path), ipath, "client_secret_file");
        if (need_str(ld, at, f[I_SECRET_FILE], ipath, "client_secret_file",
                     &in->client_secret_file))
                read_secret(ld, f[I_SECRET_FILE], path, in);
}

static void load_instance(struct loader *ld, yaml_node_t *n, size_t idx,
                          struct mls_cfg_instance *in)
{
        struct mls_cfg *cfg = ld->cfg;
        yaml_node_t *f[I_CNT];
        char ipath[CFG_PATH_MAX], path[CFG_PATH_MAX], errstr[256];
        struct mls_endpoint ep;
        struct mls_budget over = { 0 };

        snprintf(ipath, sizeof(ipath), "marketo.instances[%zu]", idx);
        in->budget = cfg->marketo.budget;
        if (is_null(n) || n->type != YAML_MAPPING_NODE) {
                report(ld, n, "%s: expected a mapping, got %s", ipath,
                       is_null(n) ? "nothing" : kind_name(n));
                return;
        }
        walk_map(ld, n, ipath, inst_keys, I_CNT, f);

        join_path(path, sizeof(path), ipath, "munchkin_id");
        if (need_str(ld, n, f[I_MUNCHKIN], ipath, "munchkin_id",
                     &in->munchkin_id) &&
            !munchkin_ok(in->munchkin_id))
                report(ld, f[I_MUNCHKIN],
                       "%s: '%.32s' is not a munchkin id (NNN-AAA-NNN, e.g. 123-ABC-456)",
                       path, in->munchkin_id);

        join_path(path, sizeof(path), ipath, "endpoint");
        if (need_str(ld, n, f[I_ENDPOINT], ipath, "endpoint", &in->endpoint) &&
            mls_endpoint_parse(in->endpoint, &ep, errstr, sizeof(errstr)))
                report(ld, f[I_ENDPOINT], "%s: %s", path, errstr);

        need_str(ld, n, f[I_CLIENT_ID], ipath, "client_id", &in->client_id);
        load_secret(ld, n, f, ipath, in);

        if (opt_str(ld, f[I_FOLDER], ipath, "folder", &in->folder) &&
            !in->folder) {
                if (cfg->marketo.folder) {
                        in->folder = strdup(cfg->marketo.folder);
                        if (!in->folder)
                                ld->nomem = true;
                } else {
                        report(ld, n,
                               "%s: no folder: set marketo.folder or this instance's folder",
                               ipath);
                }
        }

        join_path(path, sizeof(path), ipath, "budget");
        load_budget(ld, f[I_BUDGET], path, &over);
        if (over.calls_per_20s)
                in->budget.calls_per_20s = over.calls_per_20s;
        if (over.concurrent_calls)
                in->budget.concurrent_calls = over.concurrent_calls;
        if (over.daily_calls)
                in->budget.daily_calls = over.daily_calls;
}

/* A munchkin id names one instance; Kafka keys are matched ignoring case. */
static void check_dup_instances(struct loader *ld, yaml_node_t *seq)
{
        const struct mls_cfg *cfg = ld->cfg;

        for (size_t i = 1; i < cfg->marketo.instance_cnt; i++) {
                const char *id = cfg->marketo.instances[i].munchkin_id;

                for (size_t j = 0; id && j < i; j++) {
                        const char *other =
                                cfg->marketo.instances[j].munchkin_id;
                        yaml_node_t *item = node_at(
                                ld, seq->data.sequence.items.start[i]);
                        yaml_node_t *first = node_at(
                                ld, seq->data.sequence.items.start[j]);

                        if (!other || strcasecmp(id, other))
                                continue;
                        report(ld, item,
                               "marketo.instances[%zu]: duplicate munchkin_id '%s' (first at line %zu)",
                               i, id, first->start_mark.line + 1);
                        break;
                }
        }
}

static void load_instances(struct loader *ld, yaml_node_t *at,
                           yaml_node_t *n)
{
        struct mls_cfg *cfg = ld->cfg;
        size_t cnt;

        if (!n) {
                report(ld, at, "marketo: missing required key 'instances'");
                return;
        }
        if (n->type != YAML_SEQUENCE_NODE) {
                report(ld, n, "marketo.instances: expected a list, got %s",
                       is_null(n) ? "nothing" : kind_name(n));
                return;
        }
        cnt = (size_t)(n->data.sequence.items.top -
                       n->data.sequence.items.start);
        if (!cnt) {
                report(ld, n, "marketo.instances: must list at least one instance");
                return;
        }
        cfg->marketo.instances = calloc(cnt, sizeof(*cfg->marketo.instances));
        if (!cfg->marketo.instances) {
                ld->nomem = true;
                return;
        }
        cfg->marketo.instance_cnt = cnt;
        for (size_t i = 0; i < cnt; i++)
                load_instance(ld, node_at(ld, n->data.sequence.items.start[i]),
                              i, &cfg->marketo.instances[i]);
        check_dup_instances(ld, n);
}

static void load_marketo(struct loader *ld, yaml_node_t *root,
                         yaml_node_t *n)
{
        struct mls_cfg *cfg = ld->cfg;
        yaml_node_t *f[M_CNT];

        if (!n) {
                report(ld, root, "config: missing required section 'marketo'");
                return;
        }
        if (!walk_map(ld, n, "marketo", marketo_keys, M_CNT, f))
                return;
        opt_str(ld, f[M_FOLDER], "marketo", "folder", &cfg->marketo.folder);
        load_budget(ld, f[M_BUDGET], "marketo.budget", &cfg->marketo.budget);
        load_instances(ld, n, f[M_INSTANCES]);
}

static void load_batch(struct loader *ld, yaml_node_t *n)
{
        struct mls_cfg *cfg = ld->cfg;
        yaml_node_t *f[BA_CNT];
        bool ok = true;

        if (!walk_map(ld, n, "batch", batch_keys, BA_CNT, f))
                return;
        get_int(ld, f[BA_WAIT], "batch", "max_wait_ms", 0, 3600000,
                &cfg->batch.max_wait_ms);
        ok &= get_int(ld, f[BA_EMAILS], "batch", "max_emails", 1, 300,
                      &cfg->batch.max_emails);
        ok &= get_int(ld, f[BA_PENDING], "batch", "max_pending", 1, 10000000,
                      &cfg->batch.max_pending);
        if (ok && cfg->batch.max_pending < cfg->batch.max_emails)
                report(ld, f[BA_PENDING] ? f[BA_PENDING] : n,
                       "batch.max_pending: must be at least batch.max_emails (%d)",
                       cfg->batch.max_emails);
}

/* host:port, [v6]:port or :port; the server reports what cannot bind. */
static bool http_addr_ok(const char *s)
{
        const char *colon = strrchr(s, ':'), *p;
        long port = 0;

        if (!colon || !colon[1])
                return false;
        for (p = colon + 1; *p; p++) {
                if (*p < '0' || *p > '9' || port > 65535)
                        return false;
                port = port * 10 + (*p - '0');
        }
        if (port > 65535)
                return false;
        if (s[0] == '[')
                return colon > s && colon[-1] == ']';
        return memchr(s, ':', (size_t)(colon - s)) == NULL;
}

static void load_worker(struct loader *ld, yaml_node_t *n)
{
        struct mls_cfg *cfg = ld->cfg;
        yaml_node_t *f[W_CNT];

        if (!walk_map(ld, n, "worker", worker_keys, W_CNT, f))
                return;
        get_int(ld, f[W_SHUTDOWN], "worker", "shutdown_timeout_ms", 1,
                3600000, &cfg->worker.shutdown_timeout_ms);
        get_int(ld, f[W_COMMIT], "worker", "commit_interval_ms", 1, 3600000,
                &cfg->worker.commit_interval_ms);
        if (opt_str(ld, f[W_HTTP], "worker", "http_addr",
                    &cfg->worker.http_addr) &&
            cfg->worker.http_addr && !http_addr_ok(cfg->worker.http_addr))
                report(ld, f[W_HTTP],
                       "worker.http_addr: expected host:port, [ipv6]:port or :port, got '%.64s'",
                       cfg->worker.http_addr);
}

static void load_log(struct loader *ld, yaml_node_t *n)
{
        struct mls_cfg *cfg = ld->cfg;
        yaml_node_t *f[L_CNT];
        char *s;

        if (!walk_map(ld, n, "log", log_keys, L_CNT, f))
                return;
        if (opt_str(ld, f[L_LEVEL], "log", "level", &s) && s) {
                if (mls_log_level_parse(s) < 0) {
                        report(ld, f[L_LEVEL],
                               "log.level: expected error, warn, info or debug, got '%.32s'",
                               s);
                        free(s);
                } else {
                        free(cfg->log.level);
                        cfg->log.level = s;
                }
        }
        if (opt_str(ld, f[L_FORMAT], "log", "format", &s) && s) {
                if (mls_log_format_parse(s) < 0) {
                        report(ld, f[L_FORMAT],
                               "log.format: expected json or text, got '%.32s'",
                               s);
                        free(s);
                } else {
                        free(cfg->log.format);
                        cfg->log.format = s;
                }
        }
}

static struct mls_cfg *cfg_new_defaults(void)
{
        struct mls_cfg *cfg = calloc(1, sizeof(*cfg));

        if (!cfg)
                return NULL;
        cfg->marketo.budget.calls_per_20s = DEF_CALLS_PER_20S;
        cfg->marketo.budget.concurrent_calls = DEF_CONCURRENT_CALLS;
        cfg->marketo.budget.daily_calls = DEF_DAILY_CALLS;
        cfg->batch.max_wait_ms = DEF_MAX_WAIT_MS;
        cfg->batch.max_emails = DEF_MAX_EMAILS;
        cfg->batch.max_pending = DEF_MAX_PENDING;
        cfg->worker.shutdown_timeout_ms = DEF_SHUTDOWN_TIMEOUT_MS;
        cfg->worker.commit_interval_ms = DEF_COMMIT_INTERVAL_MS;
        cfg->log.level = strdup("info");
        cfg->log.format = strdup("json");
        if (!cfg->log.level || !cfg->log.format) {
                mls_cfg_destroy(cfg);
                return NULL;
        }
        return cfg;
}

/* libyaml reader errors carry a byte offset rather than a mark. */
static void report_offset(struct loader *ld, size_t off, const char *msg)
{
        size_t line = 1, col = 1;

        for (size_t i = 0; i < off && i < ld->len; i++) {
                if (ld->buf[i] == '\n') {
                        line++;
                        col = 1;
                } else {
                        col++;
                }
        }
        report_at(ld, line, col, "%s", msg);
}

static void report_syntax(struct loader *ld, const yaml_parser_t *yp)
{
        const char *problem = yp->problem ? yp->problem : "syntax error";

        if (yp->error == YAML_MEMORY_ERROR) {
                ld->nomem = true;
        } else if (yp->error == YAML_READER_ERROR) {
                report_offset(ld, yp->problem_offset, problem);
        } else if (yp->context) {
                report_at(ld, yp->problem_mark.line + 1,
                          yp->problem_mark.column + 1,
                          "YAML syntax: %s (%s at line %zu)", problem,
                          yp->context, yp->context_mark.line + 1);
        } else {
                report_at(ld, yp->problem_mark.line + 1,
                          yp->problem_mark.column + 1, "YAML syntax: %s",
                          problem);
        }
}

/* Parse the text into ld->doc; false after reporting. */
static bool parse_doc(struct loader *ld)
{
        yaml_parser_t yp;
        yaml_document_t extra;
        bool ok = false;

        if (!yaml_parser_initialize(&yp)) {
                ld->nomem = true;
                return false;
        }
        yaml_parser_set_input_string(&yp, (const unsigned char *)ld->buf,
                                     ld->len);
        if (!yaml_parser_load(&yp, &ld->doc)) {
                report_syntax(ld, &yp);
                goto out;
        }
        if (!yaml_document_get_root_node(&ld->doc)) {
                report_at(ld, 1, 1, "config is empty");
                yaml_document_delete(&ld->doc);
                goto out;
        }

        /* A second document would be ignored silently; refuse it. */
        if (!yaml_parser_load(&yp, &extra)) {
                report_syntax(ld, &yp);
                yaml_document_delete(&ld->doc);
                goto out;
        }
        if (yaml_document_get_root_node(&extra)) {
                report_at(ld, extra.start_mark.line + 1,
                          extra.start_mark.column + 1,
                          "only one YAML document is allowed");
                yaml_document_delete(&extra);
                yaml_document_delete(&ld->doc);
                goto out;
        }
        yaml_document_delete(&extra);
        ok = true;
out:
        yaml_parser_delete(&yp);
        return ok;
}

/* LIMIT: YAML merge keys (<<) are not supported; libyaml leaves them to us. */
static void load_root(struct loader *ld)
{
        yaml_node_t *root = yaml_document_get_root_node(&ld->doc);
        yaml_node_t *f[R_CNT];

        if (!walk_map(ld, root, "", root_keys, R_CNT, f))
                return;
        load_kafka(ld, root, f[R_KAFKA]);
        load_marketo(ld, root, f[R_MARKETO]);
        load_batch(ld, f[R_BATCH]);
        load_worker(ld, f[R_WORKER]);
        load_log(ld, f[R_LOG]);
}

enum mls_err mls_cfg_load_buf(const char *name, const char *buf, size_t len,
                              struct mls_cfg **cfgp, char **errsp)
{
        struct loader ld = { 0 };

        *errsp = NULL;
        ld.name = name ? name : "<config>";
        ld.buf = buf;
        ld.len = len;
        ld.cfg = cfg_new_defaults();
        if (!ld.cfg)
                return MLS_ERR_NOMEM;
        ld.cfg->path = strdup(ld.name);
        if (!ld.cfg->path)
                ld.nomem = true;

        if (!ld.nomem && parse_doc(&ld)) {
                load_root(&ld);
                yaml_document_delete(&ld.doc);
        }

        if (!ld.nomem && ld.msg_cnt) {
                *errsp = join_msgs(&ld);
                if (!*errsp)
                        ld.nomem = true;
        }
        free_msgs(&ld);
        if (ld.nomem || ld.msg_cnt) {
                mls_cfg_destroy(ld.cfg);
                return ld.nomem ? MLS_ERR_NOMEM : MLS_ERR_CONFIG;
        }
        *cfgp = ld.cfg;
        return MLS_OK;
}

enum mls_err mls_cfg_load(const char *path, struct mls_cfg **cfgp,
                          char **errsp)
{
        char *buf, line[1200];
        size_t len;
        enum mls_err err;

        *errsp = NULL;
        if (mls_read_file(path, &buf, &len) < 0) {
                if (errno == ENOMEM)
                        return MLS_ERR_NOMEM;
                snprintf(line, sizeof(line), "%s: cannot read config: %s\n",
                         path, strerror(errno));
                *errsp = strdup(line);
                return *errsp ? MLS_ERR_CONFIG : MLS_ERR_NOMEM;
        }
        err = mls_cfg_load_buf(path, buf, len, cfgp, errsp);
        free(buf);
        return err;
}

/* ---- printing ---- */

/* A double-quoted YAML string; "${" is written as "$${" so that the
 * printed config loads back to the same values. */
static void print_str(FILE *fp, const char *s)
{
        fputc('"', fp);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        fprintf(fp, "\\%c", *p);
                else if (*p == '\n')
                        fputs("\\n", fp);
                else if (*p == '\t')
                        fputs("\\t", fp);
                else if (*p < 0x20 || *p == 0x7f)
                        fprintf(fp, "\\x%02x", *p);
                else if (p[0] == '$' && p[1] == '{')
                        fputs("$$", fp);
                else
                        fputc(*p, fp);
        }
        fputc('"', fp);
}

static void print_kv(FILE *fp, int indent, const char *key, const char *s)
{
        fprintf(fp, "%*s%s: ", indent, "", key);
        if (s)
                print_str(fp, s);
        else
                fputs("null", fp);
        fputc('\n', fp);
}

static void print_budget(FILE *fp, int indent, const struct mls_budget *b)
{
        fprintf(fp, "%*sbudget:\n", indent, "");
        fprintf(fp, "%*scalls_per_20s: %d\n", indent + 2, "",
                b->calls_per_20s);
        fprintf(fp, "%*sconcurrent_calls: %d\n", indent + 2, "",
                b->concurrent_calls);
        fprintf(fp, "%*sdaily_calls: %ld\n", indent + 2, "", b->daily_calls);
}

static void print_kafka(const struct mls_cfg *cfg, FILE *fp)
{
        fputs("kafka:\n", fp);
        print_kv(fp, 2, "brokers", cfg->kafka.brokers);
        print_kv(fp, 2, "group", cfg->kafka.group);
        fputs("  topics:\n", fp);
        for (size_t i = 0; i < cfg->kafka.topic_cnt; i++) {
                fputs("    - ", fp);
                print_str(fp, cfg->kafka.topics[i]);
                fputc('\n', fp);
        }
        print_kv(fp, 2, "dead_letter_topic", cfg->kafka.dead_letter_topic);
        print_kv(fp, 2, "control_topic", cfg->kafka.control_topic);
        fprintf(fp, "  properties:%s\n", cfg->kafka.prop_cnt ? "" : " {}");
        for (size_t i = 0; i < cfg->kafka.prop_cnt; i++) {
                const struct mls_cfg_prop *pr = &cfg->kafka.props[i];

                fputs("    ", fp);
                print_str(fp, pr->key);
                fputs(": ", fp);
                print_str(fp, prop_is_secret(pr->key) ? "<redacted>"
                                                      : pr->value);
                fputc('\n', fp);
        }
}

static void print_marketo(const struct mls_cfg *cfg, FILE *fp)
{
        fputs("marketo:\n", fp);
        if (cfg->marketo.folder)
                print_kv(fp, 2, "folder", cfg->marketo.folder);
        print_budget(fp, 2, &cfg->marketo.budget);
        fputs("  instances:\n", fp);
        for (size_t i = 0; i < cfg->marketo.instance_cnt; i++) {
                const struct mls_cfg_instance *in =
                        &cfg->marketo.instances[i];

                fputs("    - munchkin_id: ", fp);
                print_str(fp, in->munchkin_id);
                fputc('\n', fp);
                print_kv(fp, 6, "endpoint", in->endpoint);
                print_kv(fp, 6, "client_id", in->client_id);
                if (in->client_secret_file)
                        print_kv(fp, 6, "client_secret_file",
                                 in->client_secret_file);
                else
                        print_kv(fp, 6, "client_secret", "<redacted>");
                print_kv(fp, 6, "folder", in->folder);
                print_budget(fp, 6, &in->budget);
        }
}

void mls_cfg_print(const struct mls_cfg *cfg, FILE *fp)
{
        fputs("# resolved config; secrets redacted\n", fp);
        print_kafka(cfg, fp);
        print_marketo(cfg, fp);
        fputs("batch:\n", fp);
        fprintf(fp, "  max_wait_ms: %d\n", cfg->batch.max_wait_ms);
        fprintf(fp, "  max_emails: %d\n", cfg->batch.max_emails);
        fprintf(fp, "  max_pending: %d\n", cfg->batch.max_pending);
        fputs("worker:\n", fp);
        fprintf(fp, "  shutdown_timeout_ms: %d\n",
                cfg->worker.shutdown_timeout_ms);
        fprintf(fp, "  commit_interval_ms: %d\n",
                cfg->worker.commit_interval_ms);
        print_kv(fp, 2, "http_addr", cfg->worker.http_addr);
        fputs("log:\n", fp);
        print_kv(fp, 2, "level", cfg->log.level);
        print_kv(fp, 2, "format", cfg->log.format);
}

/* ---- lookup and teardown ---- */

const struct mls_cfg_instance *
mls_cfg_instance_find(const struct mls_cfg *cfg, const char *munchkin_id)
{
        if (!cfg || !munchkin_id)
                return NULL;
        for (size_t i = 0; i < cfg->marketo.instance_cnt; i++) {
                const struct mls_cfg_instance *in =
                        &cfg->marketo.instances[i];

                if (in->munchkin_id && !strcasecmp(in->munchkin_id,
                                                   munchkin_id))
                        return in;
        }
        return NULL;
}

/* Overwrite a secret before freeing it, so it does not linger in freed
 * heap that a core dump could show. */
static void free_secret(char *s)
{
        if (!s)
                return;
        for (volatile char *p = s; *p; p++)
                *p = '\0';
        free(s);
}

void mls_cfg_destroy(struct mls_cfg *cfg)
{
        if (!cfg)
                return;
        free(cfg->path);
        free(cfg->kafka.brokers);
        free(cfg->kafka.group);
        for (size_t i = 0; i < cfg->kafka.topic_cnt; i++)
                free(cfg->kafka.topics[i]);
        free(cfg->kafka.topics);
        free(cfg->kafka.dead_letter_topic);
        free(cfg->kafka.control_topic);
        for (size_t i = 0; i < cfg->kafka.prop_cnt; i++) {
                free(cfg->kafka.props[i].key);
                free_secret(cfg->kafka.props[i].value);
        }
        free(cfg->kafka.props);
        free(cfg->marketo.folder);
        for (size_t i = 0; i < cfg->marketo.instance_cnt; i++) {
                struct mls_cfg_instance *in = &cfg->marketo.instances[i];

                free(in->munchkin_id);
                free(in->endpoint);
                free(in->client_id);
                free_secret(in->client_secret);
                free(in->client_secret_file);
                free(in->folder);
        }
        free(cfg->marketo.instances);
        free(cfg->worker.http_addr);
        free(cfg->log.level);
        free(cfg->log.format);
        free(cfg);
}
