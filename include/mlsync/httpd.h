/* SPDX-License-Identifier: Apache-2.0
 *
 * httpd.h - the probe and metrics server (libmicrohttpd, its own thread):
 * GET /livez, /readyz and /metrics, as ops.md section 2.6 describes.
 *
 *   /livez    200 "ok" unless the worker's loop heartbeat is older than
 *             stall_ms (503 and the reason). Never depends on Kafka or
 *             Marketo being reachable: restarting pods in an outage only
 *             makes it worse.
 *   /readyz   200 "ok" when ready and not draining, else 503 and the
 *             reason. Gates rollouts and PDB accounting.
 *   /metrics  text/plain; version=0.0.4; charset=utf-8.
 *   ?verbose  on /livez and /readyz lists every check, [+] or [-].
 *
 * Other paths get 404; methods other than GET and HEAD get 405. Handlers
 * only read what the worker publishes in struct mls_health and the
 * registry; they never call Kafka or Marketo.
 */
#ifndef MLS_HTTPD_H
#define MLS_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "mlsync/metrics.h"

struct mls_httpd;

/* Written by the worker thread, read by the HTTP thread. */
struct mls_health {
        _Atomic int64_t heartbeat_ms; /* mls_now_ms() of the last loop turn;
                                       * 0 = none yet (counted from start) */
        _Atomic int ready;            /* 1 once assigned/connected */
        _Atomic int draining;         /* 1 from the first SIGTERM on */
        /* Why not ready, shown by /readyz: a string literal (static
         * storage) such as "waiting for partition assignment", or NULL. */
        _Atomic(const char *) not_ready_reason;
};

/** Set every field to zero/NULL before the threads share it. */
void mls_health_init(struct mls_health *h);

/**
 * Start serving on addr.
 *
 * @param addr      "127.0.0.1:8080", ":8080" or "0.0.0.0:8080" (all
 *                  interfaces, what pods need), "[::1]:8080"; port 0 picks
 *                  a free port (see mls_httpd_port).
 * @param m         Registry for /metrics, borrowed until mls_httpd_stop;
 *                  NULL makes /metrics a 404.
 * @param h         Health state, borrowed until mls_httpd_stop; not NULL.
 * @param stall_ms  /livez fails once the heartbeat is older than this
 *                  (ops.md: below max.poll.interval.ms, e.g. 120000);
 *                  0 or less turns the stall check off.
 * @returns a handle the caller owns (mls_httpd_stop); NULL with errstr set
 *          on a bad address, a port in use, or OOM.
 * @thread owner
 */
struct mls_httpd *mls_httpd_start(const char *addr, struct mls_metrics *m,
                                  struct mls_health *h, int64_t stall_ms,
                                  char *errstr, size_t errstr_size);

/** The TCP port actually bound (useful after asking for port 0). */
int mls_httpd_port(const struct mls_httpd *d);

/**
 * Stop the server thread, close the socket and free d; NULL is a no-op.
 * ops.md: stop it last in the drain, so /livez answers until the end.
 * @thread owner
 */
void mls_httpd_stop(struct mls_httpd *d);

#endif
