/* SPDX-License-Identifier: Apache-2.0
 *
 * limiter.c - per-instance call gate: an exact sliding log of slot end
 * times, an in-flight counter and a daily allowance; no I/O, no clock.
 */
#include "mlsync/limiter.h"

#include <stdlib.h>
#include <string.h>

/* When no slot can be granted at all (a limit of 0 pauses the instance),
 * the caller is told to ask again after this long rather than waiting for a
 * release that may never come. */
#define LIM_PAUSED_RETRY_MS 1000

struct mls_limiter {
        int calls_per_20s;
        int concurrent_calls;
        long daily_calls; /* 0: no local daily cap */
        long daily_used;
        int in_flight;
        int64_t hold_until_ms;
        /* Ring of slot end times (reply + window) of finished calls, in
         * release order. Releases come with a non-decreasing clock, so the
         * ring is sorted and expired slots leave from the head. */
        int64_t *ends;
        size_t head;
        size_t cnt;
        size_t cap;
};

struct mls_limiter *mls_limiter_new(int calls_per_20s, int concurrent_calls,
                                    long daily_calls)
{
        struct mls_limiter *lim = calloc(1, sizeof(*lim));

        if (!lim)
                return NULL;
        lim->cap = 64;
        lim->ends = calloc(lim->cap, sizeof(*lim->ends));
        if (!lim->ends) {
                free(lim);
                return NULL;
        }
        lim->calls_per_20s = calls_per_20s;
        lim->concurrent_calls = concurrent_calls;
        lim->daily_calls = daily_calls;
        return lim;
}

void mls_limiter_destroy(struct mls_limiter *lim)
{
        if (!lim)
                return;
        free(lim->ends);
        free(lim);
}

static int64_t ring_at(const struct mls_limiter *lim, size_t i)
{
        return lim->ends[(lim->head + i) % lim->cap];
}

/* Drop slots whose window has passed: a slot ending at e is free at e. */
static void expire(struct mls_limiter *lim, int64_t now_ms)
{
        while (lim->cnt > 0 && lim->ends[lim->head] <= now_ms) {
                lim->head = (lim->head + 1) % lim->cap;
                lim->cnt--;
        }
}

/* Double the ring, keeping order. @returns 0, or -1 when out of memory.
 * Invariant kept by acquire: cap >= cnt + in_flight. */
static int ring_grow(struct mls_limiter *lim)
{
        size_t ncap = lim->cap * 2;
        int64_t *n = malloc(ncap * sizeof(*n));

        if (!n)
                return -1;
        for (size_t i = 0; i < lim->cnt; i++)
                n[i] = ring_at(lim, i);
        free(lim->ends);
        lim->ends = n;
        lim->head = 0;
        lim->cap = ncap;
        return 0;
}

int64_t mls_limiter_acquire(struct mls_limiter *lim, int64_t now_ms)
{
        int64_t wait = 0;
        size_t used;

        expire(lim, now_ms);
        if (lim->hold_until_ms > now_ms)
                wait = lim->hold_until_ms - now_ms;
        if (lim->calls_per_20s <= 0 || lim->concurrent_calls <= 0 ||
            (lim->daily_calls > 0 && lim->daily_used >= lim->daily_calls))
                return wait > LIM_PAUSED_RETRY_MS ? wait : LIM_PAUSED_RETRY_MS;

        used = lim->cnt + (size_t)lim->in_flight;
        if (used >= (size_t)lim->calls_per_20s) {
                /* Slots that must end before one more call fits. */
                size_t need = used - (size_t)lim->calls_per_20s + 1;
                int64_t w = 1; /* only in-flight calls fill it: a release */

                if (need <= lim->cnt)
                        w = ring_at(lim, need - 1) - now_ms;
                if (w > wait)
                        wait = w;
        }
        if (lim->in_flight >= lim->concurrent_calls && wait < 1)
                wait = 1;
        if (wait > 0)
                return wait;

        /* Reserve the ring slot this call will need at its release now, so
         * that a release never allocates and never loses a slot. */
        if (lim->cnt + (size_t)lim->in_flight + 1 > lim->cap &&
            ring_grow(lim) < 0)
                return LIM_PAUSED_RETRY_MS;
        lim->in_flight++;
        lim->daily_used++;
        return 0;
}

void mls_limiter_release(struct mls_limiter *lim, int64_t now_ms)
{
        if (lim->in_flight <= 0)
                return;
        lim->in_flight--;
        expire(lim, now_ms);
        lim->ends[(lim->head + lim->cnt) % lim->cap] =
                now_ms + MLS_LIMITER_WINDOW_MS;
        lim->cnt++;
}

void mls_limiter_hold(struct mls_limiter *lim, int64_t until_ms)
{
        if (until_ms > lim->hold_until_ms)
                lim->hold_until_ms = until_ms;
}

void mls_limiter_set(struct mls_limiter *lim, int calls_per_20s,
                     int concurrent_calls)
{
        lim->calls_per_20s = calls_per_20s;
        lim->concurrent_calls = concurrent_calls;
}

int mls_limiter_window_used(struct mls_limiter *lim, int64_t now_ms)
{
        expire(lim, now_ms);
        return (int)lim->cnt + lim->in_flight;
}

int mls_limiter_in_flight(const struct mls_limiter *lim)
{
        return lim->in_flight;
}

long mls_limiter_daily_used(const struct mls_limiter *lim)
{
        return lim->daily_used;
}

void mls_limiter_daily_reset(struct mls_limiter *lim)
{
        lim->daily_used = 0;
}
