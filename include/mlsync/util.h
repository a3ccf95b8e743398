/* SPDX-License-Identifier: Apache-2.0
 *
 * util.h - small helpers every module uses: clocks, strings, jitter.
 */
#ifndef MLS_UTIL_H
#define MLS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define MLS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/** Monotonic clock in milliseconds; never goes back. */
int64_t mls_now_ms(void);

/** Wall clock in milliseconds since the Unix epoch. */
int64_t mls_wall_ms(void);

/** Sleep for ms milliseconds (restarts after signals only if done is 0). */
void mls_sleep_ms(int64_t ms);

/**
 * Uniform random number in [0, n) from a per-thread generator; n > 0.
 * @thread any
 */
uint32_t mls_rand_below(uint32_t n);

/**
 * Exponential back-off with full jitter: a random delay in
 * [base/2, min(cap, base * 2^attempt)] milliseconds.
 */
int64_t mls_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms);

/** strdup that returns NULL for NULL. Caller owns the copy. */
char *mls_strdup0(const char *s);

/** ASCII lower-case copy of s. Caller owns it (free). */
char *mls_strdup_lower(const char *s);

/**
 * Short non-reversible tag for personal data in logs: the first 12 hex
 * digits of a 64-bit FNV-1a hash, written to out (at least 13 bytes).
 */
const char *mls_redact_tag(const char *s, char *out, size_t out_size);

/**
 * Read a whole file. On success *bufp is NUL-terminated, caller owns it.
 * @returns 0, or -1 with errno set.
 */
int mls_read_file(const char *path, char **bufp, size_t *lenp);

#endif
