/* SPDX-License-Identifier: Apache-2.0
 *
 * kafka-mock - librdkafka's mock cluster as a process of its own, so that
 * tests and demos can point separate programs at one loopback Kafka and
 * break its brokers from a script through a control FIFO.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "mlsync/log.h"

#define KM_EXIT_USAGE 64 /* sysexits.h EX_USAGE */
#define KM_EXIT_FAIL 1

#define KM_MAX_BROKERS 9
#define KM_MAX_PARTITIONS 1000
#define KM_MAX_TOPICS 64
#define KM_TOPIC_NAME_MAX 249 /* Kafka's own limit */
#define KM_CMD_LINE_MAX 512
#define KM_CMD_ARGS_MAX 6
#define KM_ERR_CNT_MAX 1000
#define KM_RTT_MAX_MS 600000

static const char *const component = "kafka-mock";

struct km_topic {
        char name[KM_TOPIC_NAME_MAX + 1];
        int partitions;
};

struct km_opts {
        int brokers;
        struct km_topic topics[KM_MAX_TOPICS];
        size_t topic_cnt;
        const char *bootstrap_file;
        const char *fifo_path;
        bool verbose;
};

struct km_mock {
        rd_kafka_t *rk;
        rd_kafka_mock_cluster_t *mc;
        int brokers;
};

/* Read side of the self-pipe: the handler writes one byte, the main loop
 * sleeps in poll() on it, so an idle mock uses no CPU. */
static int sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t stop_requested;

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: kafka-mock [--brokers N] [--topic NAME:PARTITIONS]...\n"
                "                  [--bootstrap-file F] [--control-fifo F]"
                " [--verbose]\n"
                "\n"
                "Runs librdkafka's mock Kafka cluster on 127.0.0.1 until"
                " SIGTERM or SIGINT.\n"
                "The first line on stdout is the bootstrap server list.\n"
                "\n"
                "  --brokers N           brokers 1..%d (default 3)\n"
                "  --topic NAME:PARTS    create a topic with 1..%d"
                " partitions and\n"
                "                        replication factor min(3, brokers);"
                " repeatable\n"
                "  --bootstrap-file F    also write the list to F (atomic"
                " rename); removed\n"
                "                        again on a clean exit\n"
                "  --control-fifo F      create FIFO F and read commands from"
                " it, one a line:\n"
                "                          down N | up N | rtt N MS |"
                " leader TOPIC PART N\n"
                "                          topic NAME PARTS [RF] |"
                " topicerr NAME ERRCODE\n"
                "                          coord group|transaction KEY N |"
                " err APIKEY CNT ERRCODE\n"
                "                          clear APIKEY\n"
                "                        (N = broker id, -1 = all brokers"
                " or leaderless)\n"
                "  --verbose             librdkafka logs at debug level,"
                " mock debugging on\n"
                "  --help                this text\n"
                "\n"
                "Exit status: 0 after a signal, 64 on a usage error, 1 on"
                " a start-up failure.\n",
                KM_MAX_BROKERS, KM_MAX_PARTITIONS);
}

/**
 * Parse a whole decimal integer within [min, max].
 * @returns 0, or -1 when s is empty, has trailing bytes or is out of range.
 */
static int parse_int(const char *s, long min, long max, long *out)
{
        char *end;
        long v;

        if (!s || !*s || isspace((unsigned char)*s))
                return -1;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

/**
 * Check a topic name against Kafka's rules: 1..249 bytes of
 * [A-Za-z0-9._-], and neither "." nor "..".
 * @returns NULL when valid, else a static reason.
 */
static const char *topic_name_problem(const char *name)
{
        size_t len = strlen(name);

        if (len == 0)
                return "is empty";
        if (len > KM_TOPIC_NAME_MAX)
                return "is longer than 249 characters";
        if (!strcmp(name, ".") || !strcmp(name, ".."))
                return "may not be \".\" or \"..\"";
        for (const char *p = name; *p; p++) {
                if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' &&
                    *p != '-')
                        return "may only contain A-Z a-z 0-9 . _ -";
        }
        return NULL;
}

/* Kafka refuses two topics whose names differ only in '.' versus '_',
 * because both map to the same metric name. */
static bool topic_names_collide(const char *a, const char *b)
{
        for (; *a && *b; a++, b++) {
                char ca = *a == '.' ? '_' : *a;
                char cb = *b == '.' ? '_' : *b;

                if (ca != cb)
                        return false;
        }
        return *a == *b;
}

/**
 * Parse one --topic NAME:PARTITIONS argument and append it to o.
 * @returns 0, or -1 with a message on stderr.
 */
static int add_topic_arg(struct km_opts *o, const char *arg)
{
        const char *colon = strrchr(arg, ':');
        struct km_topic *t;
        const char *problem;
        long parts;
        size_t len;

        if (o->topic_cnt == KM_MAX_TOPICS) {
                fprintf(stderr, "kafka-mock: at most %d --topic options\n",
                        KM_MAX_TOPICS);
                return -1;
        }
        if (!colon) {
                fprintf(stderr,
                        "kafka-mock: --topic '%s': expected NAME:PARTITIONS\n",
                        arg);
                return -1;
        }
        len = (size_t)(colon - arg);
        t = &o->topics[o->topic_cnt];
        if (len > KM_TOPIC_NAME_MAX) {
                fprintf(stderr,
                        "kafka-mock: --topic: name is longer than 249 characters\n");
                return -1;
        }
        memcpy(t->name, arg, len);
        t->name[len] = '\0';
        problem = topic_name_problem(t->name);
        if (problem) {
                fprintf(stderr, "kafka-mock: --topic '%s': topic name %s\n",
                        arg, problem);
                return -1;
        }
        if (parse_int(colon + 1, 1, KM_MAX_PARTITIONS, &parts) < 0) {
                fprintf(stderr,
                        "kafka-mock: --topic '%s': partitions must be 1..%d\n",
                        arg, KM_MAX_PARTITIONS);
                return -1;
        }
        for (size_t i = 0; i < o->topic_cnt; i++) {
                if (topic_names_collide(o->topics[i].name, t->name)) {
                        fprintf(stderr,
                                "kafka-mock: --topic '%s' collides with topic '%s'\n",
                                t->name, o->topics[i].name);
                        return -1;
                }
        }
        t->partitions = (int)parts;
        o->topic_cnt++;
        return 0;
}

/**
 * Parse argv into o.
 * @returns 0 to run, 1 when --help was printed, -1 on a usage error
 *          (already reported on stderr).
 */
static int parse_args(int argc, char **argv, struct km_opts *o)
{
        static const struct option longopts[] = {
                { "brokers", required_argument, NULL, 'b' },
                { "topic", required_argument, NULL, 't' },
                { "bootstrap-file", required_argument, NULL, 'f' },
                { "control-fifo", required_argument, NULL, 'c' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        long v;
        int c;

        o->brokers = 3;
        opterr = 0;
        for (;;) {
                /* Leading ':' makes a missing value return ':'. */
                c = getopt_long(argc, argv, ":", longopts, NULL);
                if (c == -1)
                        break;
                switch (c) {
                case 'b':
                        if (parse_int(optarg, 1, KM_MAX_BROKERS, &v) < 0) {
                                fprintf(stderr,
                                        "kafka-mock: --brokers must be 1..%d\n",
                                        KM_MAX_BROKERS);
                                return -1;
                        }
                        o->brokers = (int)v;
                        break;
                case 't':
                        if (add_topic_arg(o, optarg) < 0)
                                return -1;
                        break;
                case 'f':
                        if (!*optarg) {
                                fprintf(stderr,
                                        "kafka-mock: --bootstrap-file is empty\n");
                                return -1;
                        }
                        o->bootstrap_file = optarg;
                        break;
                case 'c':
                        if (!*optarg) {
                                fprintf(stderr,
                                        "kafka-mock: --control-fifo is empty\n");
                                return -1;
                        }
                        o->fifo_path = optarg;
                        break;
                case 'v':
                        o->verbose = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                case ':':
                        fprintf(stderr, "kafka-mock: %s needs a value\n",
                                argv[optind - 1]);
                        return -1;
                default:
                        fprintf(stderr,
                                "kafka-mock: unknown option '%s' (see --help)\n",
                                argv[optind - 1]);
                        return -1;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "kafka-mock: unexpected argument '%s'\n",
                        argv[optind]);
                return -1;
        }
        return 0;
}

/* librdkafka calls this from its own threads; mls_log_write is safe there. */
static void rdk_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                       const char *buf)
{
        mls_log(mls_log_level_from_syslog(level), component, "librdkafka", MLS_KV_STR("fac", fac),
                MLS_KV_STR("detail", buf));
}

static void on_signal(int sig)
{
        int saved = errno;
        char b = (char)sig;
        ssize_t n;

        stop_requested = 1;
        n = write(sig_pipe[1], &b, 1);
        (void)n; /* a full pipe already holds a wake-up */
        errno = saved;
}

/**
 * Create the self-pipe and install the SIGTERM/SIGINT handlers; ignore
 * SIGPIPE so a reader that went away cannot kill the cluster.
 * @returns 0, or -1 with errno set.
 */
static int signals_setup(void)
{
        struct sigaction sa;

        if (pipe(sig_pipe) < 0)
                return -1;
        for (int i = 0; i < 2; i++) {
                int fl = fcntl(sig_pipe[i], F_GETFL);

                if (fl < 0 || fcntl(sig_pipe[i], F_SETFL, fl | O_NONBLOCK) < 0)
                        return -1;
                if (fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC) < 0)
                        return -1;
        }
        memset(&sa, 0, sizeof(sa));
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = on_signal;
        if (sigaction(SIGTERM, &sa, NULL) < 0 ||
            sigaction(SIGINT, &sa, NULL) < 0)
                return -1;
        sa.sa_handler = SIG_IGN;
        return sigaction(SIGPIPE, &sa, NULL);
}

/**
 * Every broker address must be on 127.0.0.1: the mock has no
 * authentication, so it must never listen on a reachable interface.
 */
static bool bootstraps_are_loopback(const char *bs)
{
        static const char prefix[] = "127.0.0.1:";
        const char *p = bs;

        if (!*p)
                return false;
        while (*p) {
                if (strncmp(p, prefix, sizeof(prefix) - 1) != 0)
                        return false;
                p += sizeof(prefix) - 1;
                if (!isdigit((unsigned char)*p))
                        return false;
                while (isdigit((unsigned char)*p))
                        p++;
                if (*p == ',')
                        p++;
                else if (*p)
                        return false;
        }
        return true;
}

/**
 * Create the producer handle the mock needs for bookkeeping, the cluster
 * and the requested topics.
 * @returns 0, or -1 after logging why (m holds what was created).
 */
static int mock_start(struct km_mock *m, const struct km_opts *o)
{
        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        int rf = o->brokers < 3 ? o->brokers : 3;

        rd_kafka_conf_set_log_cb(conf, rdk_log_cb);
        if (rd_kafka_conf_set(conf, "log_level", o->verbose ? "7" : "4",
                              errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
            (o->verbose && rd_kafka_conf_set(conf, "debug", "mock", errstr,
                                             sizeof(errstr)) !=
                                   RD_KAFKA_CONF_OK)) {
                mls_log(MLS_LOG_ERROR, component, "config rejected",
                        MLS_KV_STR("detail", errstr));
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        /* No bootstrap.servers on purpose: this handle never connects. */
        m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!m->rk) {
                mls_log(MLS_LOG_ERROR, component, "client create failed",
                        MLS_KV_STR("detail", errstr));
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        m->brokers = o->brokers;
        m->mc = rd_kafka_mock_cluster_new(m->rk, o->brokers);
        if (!m->mc) {
                mls_log(MLS_LOG_ERROR, component, "cluster create failed");
                return -1;
        }
        for (size_t i = 0; i < o->topic_cnt; i++) {
                const struct km_topic *t = &o->topics[i];
                rd_kafka_resp_err_t err;

                err = rd_kafka_mock_topic_create(m->mc, t->name, t->partitions,
                                                 rf);
                if (err) {
                        mls_log(MLS_LOG_ERROR, component,
                                "topic create failed",
                                MLS_KV_STR("topic", t->name),
                                MLS_KV_STR("error", rd_kafka_err2str(err)));
                        return -1;
                }
        }
        return 0;
}

static void mock_stop(struct km_mock *m)
{
        if (m->mc)
                rd_kafka_mock_cluster_destroy(m->mc);
        if (m->rk)
                rd_kafka_destroy(m->rk);
        m->mc = NULL;
        m->rk = NULL;
}

static int write_all(int fd, const char *s, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, s, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                s += n;
                len -= (size_t)n;
        }
        return 0;
}

/**
 * Write "bs\n" to path through a temporary file in the same directory and
 * rename(2), so a reader sees either nothing or the whole line.
 * @returns 0, or -1 with errno set.
 */
static int write_bootstrap_file(const char *path, const char *bs)
{
        char tmp[PATH_MAX];
        int fd, rc, saved;

        rc = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
        if (rc < 0 || (size_t)rc >= sizeof(tmp)) {
                errno = ENAMETOOLONG;
                return -1;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -1;
        rc = write_all(fd, bs, strlen(bs));
        if (rc == 0)
                rc = write_all(fd, "\n", 1);
        saved = errno;
        if (close(fd) < 0 && rc == 0) {
                rc = -1;
                saved = errno;
        }
        if (rc == 0 && rename(tmp, path) < 0) {
                rc = -1;
                saved = errno;
        }
        if (rc < 0) {
                unlink(tmp);
                errno = saved;
        }
        return rc;
}

/**
 * Create (or reuse) the FIFO and open it read-write: holding a write end
 * ourselves means the read side never sees EOF when a writer closes.
 * @param createdp  Set to true when this call created the FIFO.
 * @returns the descriptor, or -1 after logging why.
 */
static int fifo_open(const char *path, bool *createdp)
{
        struct stat st;
        int fd;

        *createdp = false;
        if (mkfifo(path, 0600) == 0) {
                *createdp = true;
        } else if (errno != EEXIST) {
                mls_log(MLS_LOG_ERROR, component, "control fifo create failed",
                        MLS_KV_STR("path", path),
                        MLS_KV_STR("error", strerror(errno)));
                return -1;
        }
        if (stat(path, &st) < 0 || !S_ISFIFO(st.st_mode)) {
                mls_log(MLS_LOG_ERROR, component, "control path is not a fifo",
                        MLS_KV_STR("path", path));
                return -1;
        }
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                mls_log(MLS_LOG_ERROR, component, "control fifo open failed",
                        MLS_KV_STR("path", path),
                        MLS_KV_STR("error", strerror(errno)));
                if (*createdp)
                        unlink(path);
        }
        return fd;
}

static void cmd_bad(const char *line, const char *why)
{
        mls_log(MLS_LOG_WARN, component, "bad control command",
                MLS_KV_STR("command", line), MLS_KV_STR("reason", why));
}

/* Broker ids are 1..brokers; -1 addresses every broker. */
static int parse_broker(const struct km_mock *m, const char *s, int32_t *out)
{
        long v;

        if (parse_int(s, -1, m->brokers, &v) < 0 || v == 0)
                return -1;
        *out = (int32_t)v;
        return 0;
}

static int parse_errcode(const char *s, rd_kafka_resp_err_t *out)
{
        long v;

        if (parse_int(s, RD_KAFKA_RESP_ERR__BEGIN, RD_KAFKA_RESP_ERR_END_ALL,
                      &v) < 0)
                return -1;
        *out = (rd_kafka_resp_err_t)v;
        return 0;
}

/**
 * Push cnt copies of one error onto the cluster's stack for an API key.
 * @returns NULL, or a static reason the command was refused.
 */
static const char *cmd_err(struct km_mock *m, char **av)
{
        rd_kafka_resp_err_t code, *errs;
        long apikey, cnt;

        if (parse_int(av[1], 0, INT16_MAX, &apikey) < 0)
                return "APIKEY must be 0..32767";
        if (parse_int(av[2], 1, KM_ERR_CNT_MAX, &cnt) < 0)
                return "CNT must be 1..1000";
        if (parse_errcode(av[3], &code) < 0)
                return "ERRCODE is not a librdkafka error code";
        errs = malloc((size_t)cnt * sizeof(*errs));
        if (!errs)
                return "out of memory";
        for (long i = 0; i < cnt; i++)
                errs[i] = code;
        rd_kafka_mock_push_request_errors_array(m->mc, (int16_t)apikey,
                                                (size_t)cnt, errs);
        free(errs);
        return NULL;
}

static const char *cmd_topic(struct km_mock *m, char **av, int ac,
                             rd_kafka_resp_err_t *errp)
{
        long parts, rf = m->brokers < 3 ? m->brokers : 3;

        if (topic_name_problem(av[1]))
                return "invalid topic name";
        if (parse_int(av[2], 1, KM_MAX_PARTITIONS, &parts) < 0)
                return "PARTS must be 1..1000";
        if (ac == 4 && parse_int(av[3], 1, m->brokers, &rf) < 0)
                return "RF must be 1..brokers";
        *errp = rd_kafka_mock_topic_create(m->mc, av[1], (int)parts, (int)rf);
        return NULL;
}

static const char *cmd_leader(struct km_mock *m, char **av,
                              rd_kafka_resp_err_t *errp)
{
        long part;
        int32_t broker;

        if (topic_name_problem(av[1]))
                return "invalid topic name";
        if (parse_int(av[2], 0, KM_MAX_PARTITIONS - 1, &part) < 0)
                return "PART must be 0..999";
        if (parse_broker(m, av[3], &broker) < 0)
                return "N must be a broker id or -1";
        *errp = rd_kafka_mock_partition_set_leader(m->mc, av[1], (int32_t)part,
                                                   broker);
        return NULL;
}

static const char *cmd_coord(struct km_mock *m, char **av,
                             rd_kafka_resp_err_t *errp)
{
        int32_t broker;

        if (strcmp(av[1], "group") != 0 && strcmp(av[1], "transaction") != 0)
                return "TYPE must be group or transaction";
        if (parse_broker(m, av[3], &broker) < 0 || broker < 1)
                return "N must be a broker id";
        *errp = rd_kafka_mock_coordinator_set(m->mc, av[1], av[2], broker);
        return NULL;
}

static const char *cmd_broker(struct km_mock *m, char **av, int ac,
                              rd_kafka_resp_err_t *errp)
{
        int32_t broker;
        long rtt;

        if (parse_broker(m, av[1], &broker) < 0)
                return "N must be a broker id or -1";
        if (!strcmp(av[0], "down")) {
                *errp = rd_kafka_mock_broker_set_down(m->mc, broker);
                return NULL;
        }
        if (!strcmp(av[0], "up")) {
                *errp = rd_kafka_mock_broker_set_up(m->mc, broker);
                return NULL;
        }
        if (ac != 3 || parse_int(av[2], 0, KM_RTT_MAX_MS, &rtt) < 0)
                return "MS must be 0..600000";
        *errp = rd_kafka_mock_broker_set_rtt(m->mc, broker, (int)rtt);
        return NULL;
}

struct km_cmd_def {
        const char *verb;
        int min_args; /* including the verb */
        int max_args;
};

static const struct km_cmd_def cmd_defs[] = {
        { "down", 2, 2 },     { "up", 2, 2 },       { "rtt", 3, 3 },
        { "leader", 4, 4 },   { "topic", 3, 4 },    { "topicerr", 3, 3 },
        { "coord", 4, 4 },    { "err", 4, 4 },      { "clear", 2, 2 },
};

/**
 * Run one command line. Problems are logged and the command is ignored;
 * nothing a writer sends can stop the cluster.
 */
static void run_command(struct km_mock *m, char *line)
{
        char copy[KM_CMD_LINE_MAX];
        char *av[KM_CMD_ARGS_MAX + 1], *save = NULL, *tok;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        const struct km_cmd_def *def = NULL;
        const char *why = NULL;
        int ac = 0;
        long v;

        snprintf(copy, sizeof(copy), "%s", line);
        for (tok = strtok_r(line, " \t\r", &save); tok;
             tok = strtok_r(NULL, " \t\r", &save)) {
                if (ac == KM_CMD_ARGS_MAX) {
                        cmd_bad(copy, "too many words");
                        return;
                }
                av[ac++] = tok;
        }
        if (ac == 0 || av[0][0] == '#')
                return;
        for (size_t i = 0; i < sizeof(cmd_defs) / sizeof(cmd_defs[0]); i++)
                if (!strcmp(av[0], cmd_defs[i].verb))
                        def = &cmd_defs[i];
        if (!def) {
                cmd_bad(copy, "unknown command");
                return;
        }
        if (ac < def->min_args || ac > def->max_args) {
                cmd_bad(copy, "wrong number of arguments");
                return;
        }

        if (!strcmp(def->verb, "err")) {
                why = cmd_err(m, av);
        } else if (!strcmp(def->verb, "clear")) {
                if (parse_int(av[1], 0, INT16_MAX, &v) < 0)
                        why = "APIKEY must be 0..32767";
                else
                        rd_kafka_mock_clear_request_errors(m->mc, (int16_t)v);
        } else if (!strcmp(def->verb, "topic")) {
                why = cmd_topic(m, av, ac, &err);
        } else if (!strcmp(def->verb, "topicerr")) {
                if (topic_name_problem(av[1]))
                        why = "invalid topic name";
                else if (parse_errcode(av[2], &err) < 0)
                        why = "ERRCODE is not a librdkafka error code";
                else
                        rd_kafka_mock_topic_set_error(m->mc, av[1], err);
                err = RD_KAFKA_RESP_ERR_NO_ERROR; /* the injected code */
        } else if (!strcmp(def->verb, "leader")) {
                why = cmd_leader(m, av, &err);
        } else if (!strcmp(def->verb, "coord")) {
                why = cmd_coord(m, av, &err);
        } else {
                why = cmd_broker(m, av, ac, &err);
        }

        if (!why && err)
                why = rd_kafka_err2str(err);
        if (why) {
                cmd_bad(copy, why);
                return;
        }
        mls_log(MLS_LOG_INFO, component, "control command applied",
                MLS_KV_STR("command", copy));
}

struct km_fifo {
        int fd;
        char buf[KM_CMD_LINE_MAX];
        size_t len;
        bool discarding; /* inside an over-long line */
};

/**
 * Drain the FIFO and run every complete line. An over-long line is
 * reported once and skipped up to its newline.
 */
static void fifo_read(struct km_fifo *f, struct km_mock *m)
{
        char chunk[4096];

        for (;;) {
                ssize_t n = read(f->fd, chunk, sizeof(chunk));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                for (ssize_t i = 0; i < n; i++) {
                        char c = chunk[i];

                        if (c == '\n') {
                                f->buf[f->len] = '\0';
                                if (!f->discarding)
                                        run_command(m, f->buf);
                                f->len = 0;
                                f->discarding = false;
                        } else if (f->discarding) {
                                continue;
                        } else if (f->len == sizeof(f->buf) - 1) {
                                f->buf[f->len] = '\0';
                                cmd_bad(f->buf, "line too long");
                                f->len = 0;
                                f->discarding = true;
                        } else {
                                f->buf[f->len++] = c;
                        }
                }
        }
}

/**
 * Sleep in poll() until a signal arrives, serving FIFO commands meanwhile.
 * @returns 0 on a stop request, -1 if poll itself fails.
 */
static int serve(struct km_mock *m, struct km_fifo *f)
{
        while (!stop_requested) {
                struct pollfd pfd[2] = {
                        { .fd = sig_pipe[0], .events = POLLIN },
                        { .fd = f ? f->fd : -1, .events = POLLIN },
                };
                int n = poll(pfd, 2, -1);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        mls_log(MLS_LOG_ERROR, component, "poll failed",
                                MLS_KV_STR("error", strerror(errno)));
                        return -1;
                }
                if (f && (pfd[1].revents & POLLIN))
                        fifo_read(f, m);
        }
        return 0;
}

int main(int argc, char **argv)
{
        static struct km_opts o;
        struct km_mock m = { 0 };
        struct km_fifo fifo = { .fd = -1 };
        bool fifo_created = false, bs_written = false;
        const char *bs;
        int rc, exit_code = KM_EXIT_FAIL;

        rc = parse_args(argc, argv, &o);
        if (rc != 0)
                return rc > 0 ? 0 : KM_EXIT_USAGE;
        mls_log_setup(o.verbose ? MLS_LOG_DEBUG : MLS_LOG_INFO,
                      isatty(STDERR_FILENO) ? MLS_LOG_TEXT : MLS_LOG_JSON);

        if (signals_setup() < 0) {
                mls_log(MLS_LOG_ERROR, component, "signal setup failed",
                        MLS_KV_STR("error", strerror(errno)));
                goto out;
        }
        if (o.fifo_path) {
                fifo.fd = fifo_open(o.fifo_path, &fifo_created);
                if (fifo.fd < 0)
                        goto out;
        }
        if (mock_start(&m, &o) < 0)
                goto out;

        bs = rd_kafka_mock_cluster_bootstraps(m.mc);
        if (!bs || !bootstraps_are_loopback(bs)) {
                mls_log(MLS_LOG_ERROR, component,
                        "mock listens beyond loopback, refusing to run",
                        MLS_KV_STR("bootstrap", bs ? bs : ""));
                goto out;
        }
        if (o.bootstrap_file) {
                if (write_bootstrap_file(o.bootstrap_file, bs) < 0) {
                        mls_log(MLS_LOG_ERROR, component,
                                "bootstrap file write failed",
                                MLS_KV_STR("path", o.bootstrap_file),
                                MLS_KV_STR("error", strerror(errno)));
                        goto out;
                }
                bs_written = true;
        }
        if (printf("%s\n", bs) < 0 || fflush(stdout) != 0) {
                mls_log(MLS_LOG_ERROR, component, "stdout write failed",
                        MLS_KV_STR("error", strerror(errno)));
                goto out;
        }
        mls_log(MLS_LOG_INFO, component, "started",
                MLS_KV_STR("bootstrap", bs), MLS_KV_INT("brokers", o.brokers),
                MLS_KV_INT("topics", o.topic_cnt));

        if (serve(&m, fifo.fd >= 0 ? &fifo : NULL) == 0)
                exit_code = 0;
        mls_log(MLS_LOG_INFO, component, "stopping");
out:
        mock_stop(&m);
        if (fifo.fd >= 0)
                close(fifo.fd);
        if (fifo_created)
                unlink(o.fifo_path);
        if (bs_written)
                unlink(o.bootstrap_file);
        return exit_code;
}
