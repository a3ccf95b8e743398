/* SPDX-License-Identifier: Apache-2.0
 *
 * main.c - the Marketo emulator program: command line, loopback listening
 * socket, signal handling and the bulk-import tick. The behaviour itself
 * lives in http.c, limits.c, store.c and the handler files.
 */
#include "emu.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "mlsync/util.h"

#define TICK_MS 200

static const char usage[] =
        "usage: marketo-emulator --listen 127.0.0.1:PORT --instance SPEC [options]\n"
        "\n"
        "A local stand-in for Marketo's REST API (identity, lead database,\n"
        "assets, bulk import) with its limits and faults, for tests.\n"
        "\n"
        "  --listen 127.0.0.1:PORT   loopback address; PORT 0 picks a free port.\n"
        "                            The first stdout line is \"listening on ADDR:PORT\".\n"
        "  --instance M:ID:SECRET[:FOLDER[,FOLDER...]]\n"
        "                            an instance (munchkin, client id, secret) with\n"
        "                            list folders under /Lead Database/Default;\n"
        "                            repeatable. Served at http://ADDR:PORT/M/...\n"
        "  --token-ttl S             token lifetime in seconds (3600)\n"
        "  --calls-per-20s N         rolling rate limit per instance, 606 (100)\n"
        "  --concurrency N           in-flight calls per instance, 615 (10)\n"
        "  --daily-quota N           calls per America/Chicago day, 607 (50000)\n"
        "  --latency-ms MIN-MAX      added to every call (0-0)\n"
        "  --fault KIND=P[@SUBSTR]   inject a fault with probability P on paths\n"
        "                            containing SUBSTR; KIND is http502, http503,\n"
        "                            timeout604, drop or slow; repeatable\n"
        "  --reject-query-token      answer 601 to an access_token parameter\n"
        "  --seed N                  random seed (tokens, faults, latency)\n"
        "  --help                    this text\n"
        "\n"
        "Admin (never counted): GET /_admin/state, /_admin/counters,\n"
        "/_admin/calls?instance=M, GET|POST /_admin/faults, POST /_admin/reset,\n"
        "/_admin/expire-tokens, /_admin/seed. Stops on SIGTERM or SIGINT.\n";

struct opts {
        const char *listen;
        bool seeded;
        uint64_t seed;
};

static int parse_count(const char *flag, const char *v, int64_t min,
                       int64_t *out)
{
        if (!v || !emu_parse_i64(v, out) || *out < min) {
                fprintf(stderr, "marketo-emulator: %s wants a number >= %lld\n",
                        flag, (long long)min);
                return -1;
        }
        return 0;
}

static int parse_latency(const char *v, struct emu_config *cfg)
{
        char lo[32], *dash;

        if (!v || strlen(v) >= sizeof(lo))
                goto bad;
        snprintf(lo, sizeof(lo), "%s", v);
        dash = strchr(lo, '-');
        if (dash)
                *dash = '\0';
        if (!emu_parse_i64(lo, &cfg->latency_min_ms))
                goto bad;
        cfg->latency_max_ms = cfg->latency_min_ms;
        if (dash && !emu_parse_i64(dash + 1, &cfg->latency_max_ms))
                goto bad;
        if (cfg->latency_min_ms < 0 ||
            cfg->latency_max_ms < cfg->latency_min_ms ||
            cfg->latency_max_ms > 600000)
                goto bad;
        return 0;
bad:
        fprintf(stderr, "marketo-emulator: --latency-ms wants MIN-MAX in ms\n");
        return -1;
}

static int add_instance(struct emu *e, const char *spec)
{
        char errstr[256];
        struct emu_instance *in, **ni;

        in = emu_instance_new(spec, errstr, sizeof(errstr));
        if (!in) {
                fprintf(stderr, "marketo-emulator: %s\n", errstr);
                return -1;
        }
        if (emu_instance_find(e, in->munchkin)) {
                fprintf(stderr, "marketo-emulator: instance given twice\n");
                emu_instance_destroy(in);
                return -1;
        }
        ni = realloc(e->inst, (e->inst_cnt + 1) * sizeof(*ni));
        if (!ni) {
                emu_instance_destroy(in);
                return -1;
        }
        e->inst = ni;
        e->inst[e->inst_cnt++] = in;
        return 0;
}

/* @returns 0 to run, 1 after --help, -1 on a bad command line. */
static int parse_args(int argc, char **argv, struct emu *e, struct opts *o)
{
        struct emu_config *cfg = &e->cfg;
        char errstr[256];
        int64_t n;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;
                int rc = 0;

                if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                        fputs(usage, stdout);
                        return 1;
                } else if (!strcmp(a, "--reject-query-token")) {
                        cfg->reject_query_token = true;
                        continue;
                }
                if (!v) {
                        fprintf(stderr, "marketo-emulator: %s needs a value (see --help)\n", a);
                        return -1;
                }
                i++;
                if (!strcmp(a, "--listen")) {
                        o->listen = v;
                } else if (!strcmp(a, "--instance")) {
                        rc = add_instance(e, v);
                } else if (!strcmp(a, "--token-ttl")) {
                        rc = parse_count(a, v, 1, &cfg->token_ttl_s);
                } else if (!strcmp(a, "--calls-per-20s")) {
                        rc = parse_count(a, v, 1, &cfg->calls_per_20s);
                } else if (!strcmp(a, "--concurrency")) {
                        rc = parse_count(a, v, 1, &cfg->concurrency);
                } else if (!strcmp(a, "--daily-quota")) {
                        rc = parse_count(a, v, 0, &cfg->daily_quota);
                } else if (!strcmp(a, "--latency-ms")) {
                        rc = parse_latency(v, cfg);
                } else if (!strcmp(a, "--fault")) {
                        rc = emu_fault_parse_arg(cfg, v, errstr,
                                                 sizeof(errstr));
                        if (rc)
                                fprintf(stderr, "marketo-emulator: %s\n",
                                        errstr);
                } else if (!strcmp(a, "--seed")) {
                        rc = parse_count(a, v, 0, &n);
                        o->seeded = true;
                        o->seed = (uint64_t)n;
                } else {
                        fprintf(stderr, "marketo-emulator: unknown option %s (see --help)\n", a);
                        rc = -1;
                }
                if (rc)
                        return -1;
        }
        if (!o->listen || !e->inst_cnt) {
                fprintf(stderr, "marketo-emulator: --listen and at least one --instance are required (see --help)\n");
                return -1;
        }
        return 0;
}

/* Bind a loopback IPv4 address; anything else is refused, since the
 * emulator accepts any client and holds test secrets. */
static int listen_loopback(const char *spec, char *addr, size_t addr_size,
                           unsigned *port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t sl = sizeof(sa);
        char host[64];
        const char *colon = strrchr(spec, ':');
        int64_t p;
        int fd, one = 1;

        if (!colon || (size_t)(colon - spec) >= sizeof(host) ||
            !emu_parse_i64(colon + 1, &p) || p < 0 || p > 65535) {
                fprintf(stderr, "marketo-emulator: --listen wants 127.0.0.1:PORT\n");
                return -1;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
        if (!strcmp(host, "localhost"))
                snprintf(host, sizeof(host), "127.0.0.1");
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
            (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
                fprintf(stderr, "marketo-emulator: refusing to listen on a non-loopback address\n");
                return -1;
        }
        sa.sin_port = htons((uint16_t)p);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                goto fail;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(fd, 256) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
                goto fail;
        inet_ntop(AF_INET, &sa.sin_addr, addr, (socklen_t)addr_size);
        *port = ntohs(sa.sin_port);
        return fd;
fail:
        fprintf(stderr, "marketo-emulator: cannot listen on %s: %s\n", spec,
                strerror(errno));
        if (fd >= 0)
                close(fd);
        return -1;
}

static void emu_fini(struct emu *e)
{
        for (size_t i = 0; i < e->inst_cnt; i++)
                emu_instance_destroy(e->inst[i]);
        free(e->inst);
        emu_faults_clear(&e->cfg);
        pthread_mutex_destroy(&e->lock);
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
        stop_requested = 1;
}

/* Tick bulk jobs every TICK_MS until SIGTERM or SIGINT. The handler
 * only sets a flag, whichever thread the signal lands on. */
static void run_until_signal(struct emu *e)
{
        while (!stop_requested) {
                mls_sleep_ms(TICK_MS);
                pthread_mutex_lock(&e->lock);
                emu_bulk_tick_locked(e);
                pthread_mutex_unlock(&e->lock);
        }
}

int main(int argc, char **argv)
{
        struct emu e = { 0 };
        struct opts o = { 0 };
        struct MHD_Daemon *d;
        struct sigaction sa = { .sa_handler = on_stop_signal,
                                .sa_flags = SA_RESTART };
        char errstr[256], addr[64];
        unsigned port = 0;
        int rc, fd;

        pthread_mutex_init(&e.lock, NULL);
        e.cfg.token_ttl_s = 3600;
        e.cfg.calls_per_20s = 100;
        e.cfg.concurrency = 10;
        e.cfg.daily_quota = 50000;
        e.epoch_ms = mls_now_ms();
        rc = parse_args(argc, argv, &e, &o);
        if (rc) {
                emu_fini(&e);
                return rc > 0 ? 0 : 2;
        }
        e.rng = o.seeded ? o.seed : (uint64_t)mls_wall_ms() ^
                                            ((uint64_t)getpid() << 32);

        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        fd = listen_loopback(o.listen, addr, sizeof(addr), &port);
        if (fd < 0) {
                emu_fini(&e);
                return 1;
        }
        d = emu_http_start(&e, fd, errstr, sizeof(errstr));
        if (!d) {
                fprintf(stderr, "marketo-emulator: %s\n", errstr);
                close(fd);
                emu_fini(&e);
                return 1;
        }
        printf("listening on %s:%u\n", addr, port);
        fflush(stdout);
        fprintf(stderr, "marketo-emulator: %zu instance(s), calls_per_20s=%lld concurrency=%lld daily_quota=%lld token_ttl_s=%lld faults=%zu\n",
                e.inst_cnt, (long long)e.cfg.calls_per_20s,
                (long long)e.cfg.concurrency, (long long)e.cfg.daily_quota,
                (long long)e.cfg.token_ttl_s, e.cfg.fault_cnt);

        run_until_signal(&e);
        MHD_stop_daemon(d); /* also closes the listening socket */
        emu_fini(&e);
        return 0;
}
