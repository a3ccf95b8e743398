/* SPDX-License-Identifier: Apache-2.0
 *
 * endpoint.c - turn the "Endpoint" a user pastes from Marketo's admin page
 * into the identity, REST and bulk base URLs, refusing anything unsafe.
 */
#include "mlsync/endpoint.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The pieces of an accepted URL; pointers borrow from the input. */
struct url_parts {
        const char *scheme; /* "https" or "http", lower case */
        const char *auth;   /* host[:port] as written */
        size_t auth_len;
        const char *host;   /* IPv6 literals keep their brackets */
        size_t host_len;
        const char *path;   /* prefix before /rest or /identity, or "" */
        size_t path_len;
};

/* Printf into errstr; always returns MLS_ERR_CONFIG. */
static enum mls_err fail(char *errstr, size_t errstr_size, const char *fmt,
                         ...)
{
        va_list ap;

        if (errstr && errstr_size) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return MLS_ERR_CONFIG;
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* True for "127.a.b.c" written as four decimal octets. */
static bool is_loopback_v4(const char *h, size_t len)
{
        size_t i = 0;
        int octets = 0;

        while (i < len) {
                unsigned v = 0;
                size_t digits = 0;

                while (i < len && is_digit(h[i]) && digits < 4) {
                        v = v * 10 + (unsigned)(h[i] - '0');
                        i++;
                        digits++;
                }
                if (!digits || digits > 3 || v > 255)
                        return false;
                if (octets == 0 && v != 127)
                        return false;
                octets++;
                if (i == len)
                        break;
                if (h[i] != '.' || octets == 4)
                        return false;
                i++;
                if (i == len)
                        return false;
        }
        return octets == 4;
}

static bool is_loopback(const char *h, size_t len)
{
        if (len == 9 && !strncasecmp(h, "localhost", 9))
                return true;
        if (len == 5 && !memcmp(h, "[::1]", 5))
                return true;
        return is_loopback_v4(h, len);
}

/* Splits host[:port]; checks the characters of each. */
static enum mls_err parse_authority(struct url_parts *u, char *errstr,
                                    size_t errstr_size)
{
        const char *a = u->auth, *end = u->auth + u->auth_len, *p;

        if (!u->auth_len)
                return fail(errstr, errstr_size, "endpoint has no host");

        if (a[0] == '[') {
                p = memchr(a, ']', u->auth_len);
                if (!p || p == a + 1)
                        return fail(errstr, errstr_size,
                                    "endpoint has a malformed IPv6 host");
                for (const char *q = a + 1; q < p; q++)
                        if (!is_hex(*q) && *q != ':' && *q != '.')
                                return fail(errstr, errstr_size,
                                            "endpoint has a malformed IPv6 host");
                p++;
        } else {
                for (p = a; p < end && *p != ':'; p++)
                        if (!is_alnum(*p) && *p != '-' && *p != '.' &&
                            *p != '_')
                                return fail(errstr, errstr_size,
                                            "endpoint host contains an invalid character");
                if (p == a)
                        return fail(errstr, errstr_size,
                                    "endpoint has no host");
        }
        u->host = a;
        u->host_len = (size_t)(p - a);
        if (p == end)
                return MLS_OK;

        if (*p != ':')
                return fail(errstr, errstr_size,
                            "endpoint has a malformed IPv6 host");
        p++;
        {
                unsigned long port = 0;
                size_t digits = 0;

                for (; p < end && is_digit(*p) && digits < 6; p++, digits++)
                        port = port * 10 + (unsigned long)(*p - '0');
                if (p != end || !digits || port < 1 || port > 65535)
                        return fail(errstr, errstr_size,
                                    "endpoint has an invalid port");
        }
        return MLS_OK;
}

/* RFC 3986 path characters, with '%' checked by the caller. */
static bool is_path_char(char c)
{
        return is_alnum(c) || strchr("-._~!$&'()*+,;=:@/%", c);
}

static bool segment_is(const char *seg, size_t len, const char *name)
{
        return len == strlen(name) && !strncasecmp(seg, name, len);
}

/* Checks the path and cuts trailing slashes and a final /rest, /identity
 * or /bulk, leaving the prefix in u->path. */
static enum mls_err parse_path(struct url_parts *u, const char *path,
                               char *errstr, size_t errstr_size)
{
        size_t len = strlen(path);
        const char *seg, *last = NULL;
        size_t last_len = 0;

        while (len > 0 && path[len - 1] == '/')
                len--;

        for (size_t i = 0; i < len; i++) {
                if (!is_path_char(path[i]))
                        return fail(errstr, errstr_size,
                                    "endpoint path contains an invalid character");
                if (path[i] == '%' &&
                    (i + 2 >= len || !is_hex(path[i + 1]) ||
                     !is_hex(path[i + 2])))
                        return fail(errstr, errstr_size,
                                    "endpoint path has a malformed %%-escape");
                if (path[i] == '/' && i + 1 < len && path[i + 1] == '/')
                        return fail(errstr, errstr_size,
                                    "endpoint path must not contain '//'");
        }

        /* Walk the segments: no dot segments, and Marketo's own base names
         * only at the very end (".../rest/v1/leads.json" was pasted whole). */
        seg = path;
        while (seg < path + len) {
                const char *next;
                size_t n;

                seg++; /* the '/' */
                next = memchr(seg, '/', (size_t)(path + len - seg));
                if (!next)
                        next = path + len;
                n = (size_t)(next - seg);
                if (segment_is(seg, n, ".") || segment_is(seg, n, ".."))
                        return fail(errstr, errstr_size,
                                    "endpoint path must not contain '.' or '..' segments");
                if (next != path + len &&
                    (segment_is(seg, n, "rest") ||
                     segment_is(seg, n, "identity") ||
                     segment_is(seg, n, "bulk")))
                        return fail(errstr, errstr_size,
                                    "endpoint must end at /rest or /identity; drop what follows");
                last = seg;
                last_len = n;
                seg = next;
        }

        if (last && (segment_is(last, last_len, "rest") ||
                     segment_is(last, last_len, "identity") ||
                     segment_is(last, last_len, "bulk")))
                len = (size_t)(last - 1 - path);
        u->path = path;
        u->path_len = len;
        return MLS_OK;
}

static enum mls_err compose(const struct url_parts *u, const char *base,
                            char *out, size_t out_size, char *errstr,
                            size_t errstr_size)
{
        int n = snprintf(out, out_size, "%s://%.*s%.*s/%s", u->scheme,
                         (int)u->auth_len, u->auth, (int)u->path_len, u->path,
                         base);

        if (n < 0 || (size_t)n >= out_size)
                return fail(errstr, errstr_size, "endpoint is too long");
        return MLS_OK;
}

enum mls_err mls_endpoint_parse(const char *url, struct mls_endpoint *ep,
                                char *errstr, size_t errstr_size)
{
        struct url_parts u = { 0 };
        const char *rest, *sep;
        enum mls_err err;

        if (!url || !*url)
                return fail(errstr, errstr_size, "endpoint is empty");
        for (const unsigned char *p = (const unsigned char *)url; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f)
                        return fail(errstr, errstr_size,
                                    "endpoint must be plain ASCII without spaces or control characters");

        if (!strncasecmp(url, "https://", 8)) {
                u.scheme = "https";
                rest = url + 8;
        } else if (!strncasecmp(url, "http://", 7)) {
                u.scheme = "http";
                rest = url + 7;
        } else if (strstr(url, "://")) {
                return fail(errstr, errstr_size,
                            "endpoint scheme must be https://");
        } else {
                return fail(errstr, errstr_size,
                            "endpoint must start with https://");
        }

        /* The authority ends at the first '/', '?' or '#'; credentials
         * in it are refused without repeating them. */
        u.auth = rest;
        u.auth_len = strcspn(rest, "/?#");
        if (memchr(u.auth, '@', u.auth_len))
                return fail(errstr, errstr_size,
                            "endpoint must not contain credentials (user:password@)");
        if (strchr(rest, '?'))
                return fail(errstr, errstr_size,
                            "endpoint must not contain a query ('?')");
        if (strchr(rest, '#'))
                return fail(errstr, errstr_size,
                            "endpoint must not contain a fragment ('#')");

        err = parse_authority(&u, errstr, errstr_size);
        if (err)
                return err;
        if (!strcmp(u.scheme, "http") && !is_loopback(u.host, u.host_len))
                return fail(errstr, errstr_size,
                            "endpoint must use https:// (http:// is allowed only for loopback hosts)");

        sep = rest + u.auth_len;
        err = parse_path(&u, sep, errstr, errstr_size);
        if (err)
                return err;

        err = compose(&u, "identity", ep->identity, sizeof(ep->identity),
                      errstr, errstr_size);
        if (!err)
                err = compose(&u, "rest", ep->rest, sizeof(ep->rest), errstr,
                              errstr_size);
        if (!err)
                err = compose(&u, "bulk", ep->bulk, sizeof(ep->bulk), errstr,
                              errstr_size);
        return err;
}
