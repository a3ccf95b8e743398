/* SPDX-License-Identifier: Apache-2.0
 *
 * support.h - shared test code: child processes, fixtures, tiny HTTP client.
 */
#ifndef MLS_TEST_SUPPORT_H
#define MLS_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct mls_proc {
        pid_t pid;
        int out_fd;      /* read end of the child's stdout */
        char name[64];
        char buf[8192];  /* unread stdout bytes */
        size_t buf_len;
};

/**
 * Start argv[0] (a path) with stdout on a pipe and stderr appended to
 * stderr_path (NULL: inherit). The child gets its own process group.
 * @returns 0, or -1 with a message printed.
 */
int mls_proc_spawn(struct mls_proc *p, const char *const argv[],
                   const char *stderr_path);

/**
 * Read one line of the child's stdout (without the newline) within
 * timeout_ms. @returns 0, or -1 on timeout or EOF.
 */
int mls_proc_read_line(struct mls_proc *p, char *line, size_t size,
                       int timeout_ms);

/** Send sig to the child. */
void mls_proc_signal(struct mls_proc *p, int sig);

/**
 * Wait for the child to exit within timeout_ms.
 * @returns its exit code (128+signal when killed), or -1 on timeout.
 */
int mls_proc_wait(struct mls_proc *p, int timeout_ms);

/** SIGTERM, wait up to 5 s, then SIGKILL; safe on a stopped child. */
void mls_proc_stop(struct mls_proc *p);

/** Path of a built program, e.g. mls_bin("marketo-emulator"). Static. */
const char *mls_bin(const char *name);

/**
 * Load tests/fixtures/<rel>. Caller owns the buffer (free).
 * @returns NULL (and fails the calling test with a message) if missing.
 */
char *mls_fixture_load(const char *rel, size_t *lenp);

/** Path of tests/fixtures/<rel> in a static buffer. */
const char *mls_fixture_path(const char *rel);

/** A fresh temporary directory under tests/out/. Static buffer. */
const char *mls_tmpdir(const char *tag);

/**
 * Blocking HTTP call for tests (libcurl easy). body may be NULL.
 * @param respp  Set to the response body; caller owns it (free).
 * @returns the HTTP status, or -1 on transport error.
 */
long mls_http_req(const char *method, const char *url, const char *ctype,
                  const char *body, char **respp);

/** Start the emulator on a free port with the given extra arguments,
 *  fill *base with "http://127.0.0.1:PORT". @returns 0 or -1. */
int mls_emulator_start(struct mls_proc *p, char *base, size_t base_size,
                       const char *const extra_args[]);

#endif
