/* SPDX-License-Identifier: Apache-2.0
 *
 * log.c - structured event lines (JSON or logfmt) written with one write(2).
 */
#include "mlsync/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static enum mls_log_level log_level = MLS_LOG_INFO;
static enum mls_log_format log_format = MLS_LOG_JSON;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void mls_log_setup(enum mls_log_level level, enum mls_log_format format)
{
        log_level = level;
        log_format = format;
}

int mls_log_level_parse(const char *s)
{
        for (size_t i = 0; i < 4; i++)
                if (!strcmp(s, level_names[i]))
                        return (int)i;
        return -1;
}

enum mls_log_level mls_log_level_from_syslog(int level)
{
        if (level <= 3)
                return MLS_LOG_ERROR;
        if (level == 4)
                return MLS_LOG_WARN;
        if (level <= 6)
                return MLS_LOG_INFO;
        return MLS_LOG_DEBUG;
}

int mls_log_format_parse(const char *s)
{
        if (!strcmp(s, "json"))
                return MLS_LOG_JSON;
        if (!strcmp(s, "text"))
                return MLS_LOG_TEXT;
        return -1;
}

bool mls_log_enabled(enum mls_log_level level)
{
        return level <= log_level;
}

struct line {
        char buf[LOG_LINE_MAX];
        size_t len;
};

static void put_raw(struct line *l, const char *s, size_t n)
{
        /* Keep room for the final newline; a cut line stays one line. */
        if (n > sizeof(l->buf) - 2 - l->len)
                n = sizeof(l->buf) - 2 - l->len;
        memcpy(l->buf + l->len, s, n);
        l->len += n;
}

static void put_str(struct line *l, const char *s)
{
        put_raw(l, s, strlen(s));
}

/* Escapes quotes, backslashes and control bytes; bytes >= 0x80 that do not
 * form valid UTF-8 become '?', so the output is always valid JSON. */
static void put_escaped(struct line *l, const char *s)
{
        const unsigned char *p = (const unsigned char *)s;

        while (*p) {
                char tmp[8];
                unsigned char c = *p;
                size_t need = 0;

                if (c == '"' || c == '\\') {
                        tmp[0] = '\\';
                        tmp[1] = (char)c;
                        put_raw(l, tmp, 2);
                        p++;
                        continue;
                }
                if (c < 0x20) {
                        snprintf(tmp, sizeof(tmp), "\\u%04x", c);
                        put_raw(l, tmp, 6);
                        p++;
                        continue;
                }
                if (c < 0x80) {
                        put_raw(l, (const char *)p, 1);
                        p++;
                        continue;
                }
                if ((c & 0xe0) == 0xc0)
                        need = 1;
                else if ((c & 0xf0) == 0xe0)
                        need = 2;
                else if ((c & 0xf8) == 0xf0)
                        need = 3;
                for (size_t k = 1; need && k <= need; k++)
                        if ((p[k] & 0xc0) != 0x80)
                                need = 0;
                if (!need) {
                        put_raw(l, "?", 1);
                        p++;
                        continue;
                }
                put_raw(l, (const char *)p, need + 1);
                p += need + 1;
        }
}

static bool needs_quotes(const char *s)
{
        if (!*s)
                return true;
        for (; *s; s++)
                if (*s == ' ' || *s == '"' || *s == '=' || *s == '\\' ||
                    (unsigned char)*s < 0x20)
                        return true;
        return false;
}

static void put_text_value(struct line *l, const char *s)
{
        if (!needs_quotes(s)) {
                put_escaped(l, s);
                return;
        }
        put_raw(l, "\"", 1);
        put_escaped(l, s);
        put_raw(l, "\"", 1);
}

static void put_field(struct line *l, const struct mls_kv *kv)
{
        char num[64];
        const char *val = num;
        bool quoted = false;

        switch (kv->type) {
        case MLS_KV_T_STR:
                val = kv->s ? kv->s : "";
                quoted = true;
                break;
        case MLS_KV_T_INT:
                snprintf(num, sizeof(num), "%lld", (long long)kv->i);
                break;
        case MLS_KV_T_DBL:
                snprintf(num, sizeof(num), "%.3f", kv->d);
                break;
        case MLS_KV_T_BOOL:
                val = kv->i ? "true" : "false";
                break;
        case MLS_KV_T_END:
                return;
        }
        if (log_format == MLS_LOG_JSON) {
                put_raw(l, ",\"", 2);
                put_escaped(l, kv->key);
                put_raw(l, "\":", 2);
                if (quoted)
                        put_raw(l, "\"", 1);
                put_escaped(l, val);
                if (quoted)
                        put_raw(l, "\"", 1);
                return;
        }
        put_raw(l, " ", 1);
        put_str(l, kv->key);
        put_raw(l, "=", 1);
        put_text_value(l, val);
}

static void put_timestamp(struct line *l)
{
        struct timespec ts;
        struct tm tm;
        char buf[40];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        put_str(l, buf);
        snprintf(buf, sizeof(buf), ".%03ldZ", ts.tv_nsec / 1000000);
        put_str(l, buf);
}

void mls_log_write(enum mls_log_level level, const char *component,
                   const char *msg, ...)
{
        struct line l;
        struct mls_kv kv;
        va_list ap;

        if (!mls_log_enabled(level))
                return;
        l.len = 0;
        if (log_format == MLS_LOG_JSON) {
                put_str(&l, "{\"ts\":\"");
                put_timestamp(&l);
                put_str(&l, "\",\"level\":\"");
                put_str(&l, level_names[level]);
                put_str(&l, "\",\"component\":\"");
                put_escaped(&l, component);
                put_str(&l, "\",\"msg\":\"");
                put_escaped(&l, msg);
                put_str(&l, "\"");
        } else {
                put_str(&l, "ts=");
                put_timestamp(&l);
                put_str(&l, " level=");
                put_str(&l, level_names[level]);
                put_str(&l, " component=");
                put_text_value(&l, component);
                put_str(&l, " msg=");
                put_text_value(&l, msg);
        }

        va_start(ap, msg);
        for (;;) {
                kv = va_arg(ap, struct mls_kv);
                if (kv.type == MLS_KV_T_END)
                        break;
                put_field(&l, &kv);
        }
        va_end(ap);

        if (log_format == MLS_LOG_JSON)
                l.buf[l.len++] = '}';
        l.buf[l.len++] = '\n';
        /* One write per event; a short write to stderr is not retried. */
        if (write(STDERR_FILENO, l.buf, l.len) < 0)
                return;
}
