/* SPDX-License-Identifier: Apache-2.0
 *
 * util.c - clocks, jittered back-off, string helpers and file reading.
 */
#include "mlsync/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t mls_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mls_wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mls_sleep_ms(int64_t ms)
{
        struct timespec ts;

        if (ms <= 0)
                return;
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (ms % 1000) * 1000000;
        nanosleep(&ts, NULL);
}

/* xorshift64*, seeded per thread from the clock and the thread's stack
 * address; jitter needs spread between workers, not cryptographic quality. */
uint32_t mls_rand_below(uint32_t n)
{
        static _Thread_local uint64_t state;
        uint64_t x;

        if (!state) {
                int local;

                state = (uint64_t)mls_wall_ms() * 6364136223846793005ULL ^
                        (uint64_t)(uintptr_t)&local ^ (uint64_t)getpid();
                if (!state)
                        state = 88172645463325252ULL;
        }
        x = state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state = x;
        return (uint32_t)((x * 2685821657736338717ULL) >> 32) % n;
}

int64_t mls_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms)
{
        int64_t hi = base_ms;
        int64_t lo;

        while (attempt-- > 0 && hi < cap_ms)
                hi *= 2;
        if (hi > cap_ms)
                hi = cap_ms;
        lo = base_ms / 2;
        if (hi <= lo)
                return hi;
        return lo + mls_rand_below((uint32_t)(hi - lo + 1));
}

char *mls_strdup0(const char *s)
{
        return s ? strdup(s) : NULL;
}

char *mls_strdup_lower(const char *s)
{
        char *out = strdup(s);

        if (!out)
                return NULL;
        for (char *p = out; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        return out;
}

const char *mls_redact_tag(const char *s, char *out, size_t out_size)
{
        uint64_t h = 1469598103934665603ULL;

        for (; s && *s; s++) {
                h ^= (unsigned char)tolower((unsigned char)*s);
                h *= 1099511628211ULL;
        }
        snprintf(out, out_size, "%012llx",
                 (unsigned long long)(h >> 16) & 0xffffffffffffULL);
        return out;
}

int mls_read_file(const char *path, char **bufp, size_t *lenp)
{
        FILE *fp = fopen(path, "rb");
        char *buf = NULL;
        size_t len = 0, cap = 0;

        if (!fp)
                return -1;
        for (;;) {
                size_t n;

                if (cap - len < 4096) {
                        char *nb = realloc(buf, cap ? cap * 2 : 8192);

                        if (!nb) {
                                free(buf);
                                fclose(fp);
                                errno = ENOMEM;
                                return -1;
                        }
                        buf = nb;
                        cap = cap ? cap * 2 : 8192;
                }
                n = fread(buf + len, 1, cap - len - 1, fp);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(fp)) {
                int e = errno;

                free(buf);
                fclose(fp);
                errno = e ? e : EIO;
                return -1;
        }
        fclose(fp);
        buf[len] = '\0';
        *bufp = buf;
        if (lenp)
                *lenp = len;
        return 0;
}
