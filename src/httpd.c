/* SPDX-License-Identifier: Apache-2.0
 *
 * httpd.c - /livez, /readyz and /metrics over libmicrohttpd's internal
 * polling thread; handlers read only published atomics and the registry.
 */
#include "mlsync/httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mlsync/log.h"
#include "mlsync/util.h"

#define HTTPD_CONN_LIMIT 32      /* probes and one scraper need a few */
#define HTTPD_CONN_TIMEOUT_S 10  /* drops idle and slow clients */
#define HTTPD_BACKLOG 64

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct mls_httpd {
        struct MHD_Daemon *mhd;
        struct mls_metrics *m;
        struct mls_health *h;
        int64_t stall_ms;
        int64_t started_ms;
        int port;
};

/* One probe answer, built in a fixed buffer. */
struct reply {
        unsigned status;
        char body[512];
        size_t len;
};

void mls_health_init(struct mls_health *h)
{
        atomic_init(&h->heartbeat_ms, 0);
        atomic_init(&h->ready, 0);
        atomic_init(&h->draining, 0);
        atomic_init(&h->not_ready_reason, NULL);
}

__attribute__((format(printf, 2, 3)))
static void reply_printf(struct reply *r, const char *fmt, ...)
{
        size_t room = sizeof(r->body) - r->len;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(r->body + r->len, room, fmt, ap);
        va_end(ap);
        if (n > 0)
                r->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* One check: verbose form "[+]name ok" / "[-]name failed: why"; short
 * form only the first failure's reason. Any failure makes it a 503. */
static void reply_check(struct reply *r, bool verbose, const char *name,
                        const char *why)
{
        if (verbose && why)
                reply_printf(r, "[-]%s failed: %s\n", name, why);
        else if (verbose)
                reply_printf(r, "[+]%s ok\n", name);
        else if (why && r->status == MHD_HTTP_OK)
                reply_printf(r, "%s\n", why);
        if (why)
                r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
}

static void reply_end(struct reply *r, bool verbose, const char *probe)
{
        bool ok = r->status == MHD_HTTP_OK;

        if (verbose)
                reply_printf(r, "%s check %s\n", probe,
                             ok ? "passed" : "failed");
        else if (ok)
                reply_printf(r, "ok\n");
}

static void livez(const struct mls_httpd *d, bool verbose, struct reply *r)
{
        int64_t hb = atomic_load(&d->h->heartbeat_ms);
        int64_t age;
        char why[160];

        if (hb == 0)
                hb = d->started_ms; /* no turn yet: count from start */
        age = mls_now_ms() - hb;
        if (d->stall_ms > 0 && age > d->stall_ms) {
                snprintf(why, sizeof(why),
                         "poll loop stalled: no turn for %lld ms (limit %lld ms)",
                         (long long)age, (long long)d->stall_ms);
                reply_check(r, verbose, "poll-loop", why);
        } else {
                reply_check(r, verbose, "poll-loop", NULL);
        }
        reply_end(r, verbose, "livez");
}

static void readyz(const struct mls_httpd *d, bool verbose, struct reply *r)
{
        const char *reason = atomic_load(&d->h->not_ready_reason);
        char why[160];

        if (atomic_load(&d->h->draining)) {
                reply_check(r, verbose, "not-draining", "draining");
        } else {
                reply_check(r, verbose, "not-draining", NULL);
        }
        if (!atomic_load(&d->h->ready)) {
                snprintf(why, sizeof(why), "not ready: %s",
                         reason ? reason : "starting");
                reply_check(r, verbose, "ready", why);
        } else {
                reply_check(r, verbose, "ready", NULL);
        }
        reply_end(r, verbose, "readyz");
}

static enum MHD_Result find_verbose(void *cls, enum MHD_ValueKind kind,
                                    const char *key, const char *value)
{
        bool *found = cls;

        if (strcmp(key, "verbose") == 0) {
                *found = true;
                return MHD_NO; /* stop iterating */
        }
        return MHD_YES;
}

static enum MHD_Result queue_reply(struct MHD_Connection *c, unsigned status,
                            struct MHD_Response *resp, const char *ctype)
{
        enum MHD_Result ret;

        if (!resp)
                return MHD_NO; /* OOM: MHD closes the connection */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "no-store");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                        "GET, HEAD");
        ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status,
                                 const char *body, size_t len)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(
                len, (void *)body, MHD_RESPMEM_MUST_COPY);

        return queue_reply(c, status, resp, CT_TEXT);
}

static enum MHD_Result send_metrics(struct MHD_Connection *c,
                                    struct mls_metrics *m)
{
        struct MHD_Response *resp;
        size_t len = 0;
        char *text = mls_metrics_render(m, &len);

        if (!text)
                return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory\n", 14);
        /* MUST_FREE: MHD calls free() on text once the reply is sent. */
        resp = MHD_create_response_from_buffer(len, text,
                                               MHD_RESPMEM_MUST_FREE);
        if (!resp)
                free(text);
        return queue_reply(c, MHD_HTTP_OK, resp, CT_METRICS);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        struct mls_httpd *d = cls;
        struct reply r = { .status = MHD_HTTP_OK };
        bool verbose = false;

        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
            strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                                 "method not allowed\n", 19);
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, find_verbose,
                                  &verbose);

        if (strcmp(url, "/livez") == 0)
                livez(d, verbose, &r);
        else if (strcmp(url, "/readyz") == 0)
                readyz(d, verbose, &r);
        else if (strcmp(url, "/metrics") == 0 && d->m)
                return send_metrics(c, d->m);
        else
                return send_text(c, MHD_HTTP_NOT_FOUND, "not found\n", 10);
        return send_text(c, r.status, r.body, r.len);
}

/* libmicrohttpd's own error messages, through mlsync's logger. */
__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        char line[256];
        size_t n;

        vsnprintf(line, sizeof(line), fmt, ap);
        n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
        mls_log(MLS_LOG_WARN, "http", "libmicrohttpd error",
                MLS_KV_STR("err", line));
}

/* Split "host:port" / ":port" / "[v6]:port"; host "" means all. */
static int split_addr(const char *addr, char *host, size_t host_size,
                      char *port, size_t port_size)
{
        const char *colon, *h = addr;
        size_t hlen;

        if (addr[0] == '[') {
                const char *rb = strchr(addr, ']');

                if (!rb || rb[1] != ':')
                        return -1;
                h = addr + 1;
                hlen = (size_t)(rb - h);
                colon = rb + 1;
        } else {
                colon = strrchr(addr, ':');
                if (!colon)
                        return -1;
                hlen = (size_t)(colon - addr);
        }
        if (hlen >= host_size || strlen(colon + 1) >= port_size ||
            colon[1] == '\0' || strspn(colon + 1, "0123456789") !=
                                        strlen(colon + 1) ||
            atol(colon + 1) > 65535)
                return -1;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        strcpy(port, colon + 1);
        if (strcmp(host, "localhost") == 0)
                strcpy(host, "127.0.0.1");
        return 0;
}

/* Bind and listen; returns the socket or -1 with errstr set. */
static int listen_on(const char *addr, int *familyp, int *portp,
                     char *errstr, size_t errstr_size)
{
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_PASSIVE | AI_NUMERICHOST |
                                              AI_NUMERICSERV };
        struct addrinfo *ai = NULL;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[64], port[8];
        int fd = -1, one = 1, rc;

        if (split_addr(addr, host, sizeof(host), port, sizeof(port)) != 0) {
                snprintf(errstr, errstr_size,
                         "http address \"%s\": want host:port, :port or [v6]:port",
                         addr);
                return -1;
        }
        /* LIMIT: ":port" listens on IPv4 only; "[::]:port" serves IPv6. */
        if (!*host)
                hints.ai_family = AF_INET;
        rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
        if (rc != 0) {
                snprintf(errstr, errstr_size, "http address \"%s\": %s",
                         addr, gai_strerror(rc));
                return -1;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) ||
            listen(fd, HTTPD_BACKLOG) ||
            fcntl(fd, F_SETFL, O_NONBLOCK) ||
            getsockname(fd, (struct sockaddr *)&ss, &sl)) {
                snprintf(errstr, errstr_size, "http listen on %s: %s", addr,
                         strerror(errno));
                if (fd >= 0)
                        close(fd);
                freeaddrinfo(ai);
                return -1;
        }
        *familyp = ai->ai_family;
        *portp = ss.ss_family == AF_INET6
                         ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
        freeaddrinfo(ai);
        return fd;
}

struct mls_httpd *mls_httpd_start(const char *addr, struct mls_metrics *m,
                                  struct mls_health *h, int64_t stall_ms,
                                  char *errstr, size_t errstr_size)
{
        struct mls_httpd *d;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                         MHD_USE_ERROR_LOG;
        int fd, family = AF_INET;

        if (!addr || !h) {
                snprintf(errstr, errstr_size, "http: no address or health");
                return NULL;
        }
        d = calloc(1, sizeof(*d));
        if (!d) {
                snprintf(errstr, errstr_size, "http: out of memory");
                return NULL;
        }
        d->m = m;
        d->h = h;
        d->stall_ms = stall_ms;
        d->started_ms = mls_now_ms();

        fd = listen_on(addr, &family, &d->port, errstr, errstr_size);
        if (fd < 0) {
                free(d);
                return NULL;
        }
        if (family == AF_INET6)
                flags |= MHD_USE_IPv6;
        /* The logger goes first so start-up messages use it too. */
        d->mhd = MHD_start_daemon(
                flags, 0, NULL, NULL, on_request, d,
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, d,
                MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPD_CONN_LIMIT,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPD_CONN_TIMEOUT_S,
                MHD_OPTION_END);
        if (!d->mhd) {
                snprintf(errstr, errstr_size,
                         "http: libmicrohttpd did not start on %s", addr);
                close(fd);
                free(d);
                return NULL;
        }
        mls_log(MLS_LOG_INFO, "http", "listening", MLS_KV_STR("addr", addr),
                MLS_KV_INT("port", d->port));
        return d;
}

int mls_httpd_port(const struct mls_httpd *d)
{
        return d ? d->port : -1;
}

void mls_httpd_stop(struct mls_httpd *d)
{
        if (!d)
                return;
        /* Joins the server thread and closes the listening socket. */
        MHD_stop_daemon(d->mhd);
        free(d);
}
