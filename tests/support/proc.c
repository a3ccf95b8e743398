/* SPDX-License-Identifier: Apache-2.0
 *
 * proc.c - start, read from and stop the programs an integration test uses.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlsync/util.h"

int mls_proc_spawn(struct mls_proc *p, const char *const argv[],
                   const char *stderr_path)
{
        int fds[2];
        pid_t pid;

        memset(p, 0, sizeof(*p));
        snprintf(p->name, sizeof(p->name), "%s", argv[0]);
        if (pipe(fds) < 0) {
                perror("pipe");
                return -1;
        }
        pid = fork();
        if (pid < 0) {
                perror("fork");
                close(fds[0]);
                close(fds[1]);
                return -1;
        }
        if (pid == 0) {
                setpgid(0, 0);
                /* Never outlive the test that started us. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(fds[1], STDOUT_FILENO);
                close(fds[0]);
                close(fds[1]);
                if (stderr_path) {
                        int fd = open(stderr_path,
                                      O_WRONLY | O_CREAT | O_APPEND, 0644);

                        if (fd >= 0) {
                                dup2(fd, STDERR_FILENO);
                                close(fd);
                        }
                }
                execv(argv[0], (char *const *)argv);
                fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        close(fds[1]);
        p->pid = pid;
        p->out_fd = fds[0];
        return 0;
}

int mls_proc_read_line(struct mls_proc *p, char *line, size_t size,
                       int timeout_ms)
{
        int64_t deadline = mls_now_ms() + timeout_ms;

        for (;;) {
                char *nl = memchr(p->buf, '\n', p->buf_len);
                struct pollfd pfd = { .fd = p->out_fd, .events = POLLIN };
                int64_t left;
                ssize_t n;

                if (nl) {
                        size_t len = (size_t)(nl - p->buf);

                        snprintf(line, size, "%.*s", (int)len, p->buf);
                        p->buf_len -= len + 1;
                        memmove(p->buf, nl + 1, p->buf_len);
                        return 0;
                }
                left = deadline - mls_now_ms();
                if (left <= 0 || p->out_fd < 0)
                        return -1;
                if (poll(&pfd, 1, (int)left) <= 0)
                        continue;
                if (p->buf_len == sizeof(p->buf))
                        p->buf_len = 0; /* an endless line: drop it */
                n = read(p->out_fd, p->buf + p->buf_len,
                         sizeof(p->buf) - p->buf_len);
                if (n <= 0)
                        return -1;
                p->buf_len += (size_t)n;
        }
}

void mls_proc_signal(struct mls_proc *p, int sig)
{
        if (p->pid > 0)
                kill(p->pid, sig);
}

int mls_proc_wait(struct mls_proc *p, int timeout_ms)
{
        int64_t deadline = mls_now_ms() + timeout_ms;
        int status;

        if (p->pid <= 0)
                return -1;
        for (;;) {
                pid_t r = waitpid(p->pid, &status, WNOHANG);

                if (r == p->pid)
                        break;
                if (r < 0 || mls_now_ms() >= deadline)
                        return -1;
                mls_sleep_ms(20);
        }
        p->pid = 0;
        if (p->out_fd >= 0)
                close(p->out_fd);
        p->out_fd = -1;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
}

void mls_proc_stop(struct mls_proc *p)
{
        if (p->pid <= 0)
                return;
        mls_proc_signal(p, SIGTERM);
        if (mls_proc_wait(p, 5000) >= 0)
                return;
        mls_proc_signal(p, SIGKILL);
        mls_proc_wait(p, 5000);
}

static const char *top_dir(void)
{
        static char dir[1024];
        const char *env = getenv("MLS_TOP");

        if (!dir[0])
                snprintf(dir, sizeof(dir), "%s", env ? env : ".");
        return dir;
}

const char *mls_bin(const char *name)
{
        static char path[4][1100];
        static int next;
        char *out = path[next++ % 4];

        const char *bin = getenv("MLS_BIN");

        if (bin && bin[0] == '/')
                snprintf(out, sizeof(path[0]), "%s/%s", bin, name);
        else
                snprintf(out, sizeof(path[0]), "%s/%s/%s", top_dir(),
                         bin ? bin : "bin", name);
        return out;
}

const char *mls_fixture_path(const char *rel)
{
        static char path[1200];

        snprintf(path, sizeof(path), "%s/tests/fixtures/%s", top_dir(), rel);
        return path;
}

char *mls_fixture_load(const char *rel, size_t *lenp)
{
        char *buf;

        if (mls_read_file(mls_fixture_path(rel), &buf, lenp) < 0) {
                fprintf(stderr, "fixture %s: %s\n", mls_fixture_path(rel),
                        strerror(errno));
                return NULL;
        }
        return buf;
}

const char *mls_tmpdir(const char *tag)
{
        static char dir[1200];
        static unsigned serial; /* two calls in one millisecond differ */
        char parent[1100];

        snprintf(parent, sizeof(parent), "%s/tests/out", top_dir());
        mkdir(parent, 0755);
        snprintf(dir, sizeof(dir), "%s/%s.%d.%lld.%u", parent, tag,
                 (int)getpid(), (long long)mls_wall_ms(), serial++);
        mkdir(dir, 0755);
        return dir;
}

int mls_emulator_start(struct mls_proc *p, char *base, size_t base_size,
                       const char *const extra_args[])
{
        const char *argv[64];
        size_t n = 0;
        char line[256];
        const char *port;

        argv[n++] = mls_bin("marketo-emulator");
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1:0";
        for (size_t i = 0; extra_args && extra_args[i] && n < 62; i++)
                argv[n++] = extra_args[i];
        argv[n] = NULL;
        if (mls_proc_spawn(p, argv, getenv("MLS_TEST_VERBOSE") ? NULL :
                                            "/dev/null") < 0)
                return -1;
        /* The emulator prints "listening on 127.0.0.1:PORT" first. */
        if (mls_proc_read_line(p, line, sizeof(line), 10000) < 0) {
                fprintf(stderr, "emulator printed no address\n");
                mls_proc_stop(p);
                return -1;
        }
        port = strrchr(line, ':');
        if (!port) {
                fprintf(stderr, "emulator said: %s\n", line);
                mls_proc_stop(p);
                return -1;
        }
        snprintf(base, base_size, "http://127.0.0.1:%s", port + 1);
        return 0;
}
