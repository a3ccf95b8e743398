/* SPDX-License-Identifier: Apache-2.0
 *
 * limiter.h - local gate for one Marketo instance's calls: a rolling 20 s
 * window, a cap on calls in flight and a daily allowance.
 *
 * A call occupies a window slot from the moment it is sent until 20 s after
 * its reply: whenever Marketo actually counted it, that is inside this
 * span, so no rolling 20 s window at Marketo can ever see more than
 * calls_per_20s of ours. All times are caller-supplied monotonic
 * milliseconds so that tests drive the clock.
 *
 * Not thread-safe: one thread owns a limiter.
 */
#ifndef MLS_LIMITER_H
#define MLS_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

#define MLS_LIMITER_WINDOW_MS 20000

struct mls_limiter;

/** @returns a new limiter, or NULL on allocation failure. */
struct mls_limiter *mls_limiter_new(int calls_per_20s, int concurrent_calls,
                                    long daily_calls);
void mls_limiter_destroy(struct mls_limiter *lim);

/**
 * Ask to start one call at now_ms.
 * @returns 0 when granted (the call now counts), or the number of
 *          milliseconds after which asking again may succeed (> 0). When
 *          only the in-flight cap blocks, returns 1 and the caller waits
 *          for a release instead of a timer.
 */
int64_t mls_limiter_acquire(struct mls_limiter *lim, int64_t now_ms);

/** A granted call finished (reply or failure) at now_ms. */
void mls_limiter_release(struct mls_limiter *lim, int64_t now_ms);

/**
 * Grant nothing before until_ms (after a 606, 615 or 607). Only ever
 * extends an existing hold.
 */
void mls_limiter_hold(struct mls_limiter *lim, int64_t until_ms);

/** Change the limits at run time (the shared budget moves them). */
void mls_limiter_set(struct mls_limiter *lim, int calls_per_20s,
                     int concurrent_calls);

/** Calls counted in the window ending at now_ms, in flight included. */
int mls_limiter_window_used(struct mls_limiter *lim, int64_t now_ms);
int mls_limiter_in_flight(const struct mls_limiter *lim);
/** Calls granted since the daily counter was last reset. */
long mls_limiter_daily_used(const struct mls_limiter *lim);
/** Start a new Marketo day (at midnight US Central). */
void mls_limiter_daily_reset(struct mls_limiter *lim);

#endif
