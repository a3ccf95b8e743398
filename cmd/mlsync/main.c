/* SPDX-License-Identifier: Apache-2.0
 *
 * mlsync - keeps Marketo static lists in step with audience membership
 * changes read from Kafka. This file is only the command line: it parses
 * the subcommand, loads the configuration and hands over to the worker.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <yaml.h>

#include "budget_view.h"
#include "mlsync/config.h"
#include "mlsync/log.h"
#include "mlsync/worker.h"

static const char usage_text[] =
        "usage: mlsync COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  run -c FILE            run the worker until SIGTERM/SIGINT\n"
        "  config check -c FILE   validate FILE; print every error as\n"
        "                         file:line:column and exit 78 if any\n"
        "  config print -c FILE   print the resolved config, secrets redacted\n"
        "  budget -c FILE         show the shared Marketo budget as the\n"
        "                         control topic has it (read-only)\n"
        "  version [--json]       print the version and library versions\n"
        "  help, --help           print this text\n"
        "\n"
        "options:\n"
        "  -c, --config FILE      the YAML configuration (default: the\n"
        "                         MLSYNC_CONFIG environment variable)\n"
        "\n"
        "exit codes: 0 ok, 1 failure, 64 usage, 69 Kafka unavailable,\n"
        "            70 internal error, 78 configuration invalid\n";

static int usage(FILE *fp, int rc)
{
        fputs(usage_text, fp);
        return rc;
}

/* Parse "-c FILE" after the subcommand words; falls back to MLSYNC_CONFIG. */
static const char *config_arg(int argc, char **argv, int *bad)
{
        static const struct option longopts[] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        const char *path = getenv("MLSYNC_CONFIG");
        int c;

        *bad = 0;
        optind = 1;
        while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        path = optarg;
                        break;
                case 'h':
                        *bad = 2;
                        return NULL;
                default:
                        *bad = 1;
                        return NULL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "mlsync: unexpected argument '%s'\n",
                        argv[optind]);
                *bad = 1;
                return NULL;
        }
        if (!path || !*path) {
                fprintf(stderr, "mlsync: no configuration: give -c FILE "
                                "or set MLSYNC_CONFIG\n");
                *bad = 1;
                return NULL;
        }
        return path;
}

static struct mls_cfg *load_or_report(const char *path)
{
        struct mls_cfg *cfg = NULL;
        char *errs = NULL;

        if (mls_cfg_load(path, &cfg, &errs) != MLS_OK) {
                fputs(errs ? errs : "configuration invalid\n", stderr);
                if (errs && errs[0] && errs[strlen(errs) - 1] != '\n')
                        fputc('\n', stderr);
                free(errs);
                return NULL;
        }
        return cfg;
}

static int cmd_version(int argc, char **argv)
{
        int json = argc > 1 && !strcmp(argv[1], "--json");

        if (argc > 1 && !json)
                return usage(stderr, EX_USAGE);
        if (json) {
                printf("{\"mlsync\":\"%s\",\"librdkafka\":\"%s\","
                       "\"libcurl\":\"%s\",\"json-c\":\"%s\","
                       "\"libyaml\":\"%s\"}\n",
                       MLS_VERSION, rd_kafka_version_str(),
                       curl_version_info(CURLVERSION_NOW)->version,
                       json_c_version(), yaml_get_version_string());
        } else {
                printf("mlsync %s (librdkafka %s, libcurl %s, json-c %s, "
                       "libyaml %s)\n",
                       MLS_VERSION, rd_kafka_version_str(),
                       curl_version_info(CURLVERSION_NOW)->version,
                       json_c_version(), yaml_get_version_string());
        }
        return 0;
}

static int cmd_config(int argc, char **argv)
{
        struct mls_cfg *cfg;
        const char *path;
        int bad;

        if (argc < 2 || (strcmp(argv[1], "check") && strcmp(argv[1], "print")))
                return usage(stderr, EX_USAGE);
        path = config_arg(argc - 1, argv + 1, &bad);
        if (!path)
                return bad == 2 ? usage(stdout, 0) : usage(stderr, EX_USAGE);
        cfg = load_or_report(path);
        if (!cfg)
                return EX_CONFIG;
        if (!strcmp(argv[1], "print"))
                mls_cfg_print(cfg, stdout);
        else
                printf("%s: ok (%zu instance%s)\n", path,
                       cfg->marketo.instance_cnt,
                       cfg->marketo.instance_cnt == 1 ? "" : "s");
        mls_cfg_destroy(cfg);
        return 0;
}

static int cmd_run(int argc, char **argv)
{
        struct mls_cfg *cfg;
        const char *path;
        int bad, rc;

        path = config_arg(argc, argv, &bad);
        if (!path)
                return bad == 2 ? usage(stdout, 0) : usage(stderr, EX_USAGE);
        cfg = load_or_report(path);
        if (!cfg)
                return EX_CONFIG;
        /* The loader already refused unknown level and format names. */
        mls_log_setup((enum mls_log_level)mls_log_level_parse(cfg->log.level),
                      (enum mls_log_format)mls_log_format_parse(
                              cfg->log.format));
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                mls_cfg_destroy(cfg);
                return EX_SOFTWARE;
        }
        rc = mls_worker_main(cfg);
        curl_global_cleanup();
        mls_cfg_destroy(cfg);
        return rc;
}

static int cmd_budget(int argc, char **argv)
{
        struct mls_cfg *cfg;
        const char *path;
        int bad, rc;

        path = config_arg(argc, argv, &bad);
        if (!path)
                return bad == 2 ? usage(stdout, 0) : usage(stderr, EX_USAGE);
        cfg = load_or_report(path);
        if (!cfg)
                return EX_CONFIG;
        /* librdkafka's own warnings only; the view goes to stdout. */
        mls_log_setup(MLS_LOG_ERROR, MLS_LOG_TEXT);
        rc = mls_budget_view(cfg);
        mls_cfg_destroy(cfg);
        return rc;
}

int main(int argc, char **argv)
{
        const char *cmd = argc > 1 ? argv[1] : NULL;

        if (!cmd)
                return usage(stderr, EX_USAGE);
        if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
            !strcmp(cmd, "help"))
                return usage(stdout, 0);
        if (!strcmp(cmd, "version") || !strcmp(cmd, "--version"))
                return cmd_version(argc - 1, argv + 1);
        if (!strcmp(cmd, "config"))
                return cmd_config(argc - 1, argv + 1);
        if (!strcmp(cmd, "run"))
                return cmd_run(argc - 1, argv + 1);
        if (!strcmp(cmd, "budget"))
                return cmd_budget(argc - 1, argv + 1);
        fprintf(stderr, "mlsync: unknown command '%s'\n", cmd);
        return usage(stderr, EX_USAGE);
}
