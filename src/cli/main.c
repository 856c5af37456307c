/*
 * imagesd: the command line. `imagesd serve` runs the server; more commands join as they are
 * built. Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#include "cli/cli.h"
#include "config/config.h"
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define IMAGESD_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f, "usage: imagesd <command> [options]\n"
               "\n"
               "commands:\n"
               "  serve      run the OpenAI-compatible Images API server\n"
               "  keys       create, list and revoke API keys (imagesd keys for help)\n"
               "  usage      totals from the usage ledger (--since, --by key|model|day, --json)\n"
               "  engine     run the diffusion engine directly (imagesd engine txt2img --help)\n"
               "  version    print the version\n"
               "  help       this text; `imagesd serve --help` lists the server options\n");
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

static int cmd_serve(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        struct isd_buf b;
        isd_buf_init(&b, 1 << 20);
        isd_config_help(&b);
        printf("usage: imagesd serve [options]\n\n"
               "Every option is also read from the environment variable shown and from the\n"
               "config file (--config, INI: `name = value`); precedence flag > env > file >\n"
               "default.\n\n%s",
               b.data ? b.data : "");
        isd_buf_release(&b);
        return 0;
    }
    struct isd_config cfg;
    struct isd_error err;
    int first_arg = 0;
    if (isd_config_load(&cfg, argc, argv, environ, &first_arg, &err) < 0) {
        fprintf(stderr, "imagesd: %s\n", err.message);
        isd_config_release(&cfg);
        return 2;
    }
    if (first_arg < argc) {
        fprintf(stderr, "imagesd serve: unexpected argument '%s' (see --help)\n", argv[first_arg]);
        isd_config_release(&cfg);
        return 2;
    }
    int rc = isd_server_run(&cfg, &err);
    if (rc < 0)
        fprintf(stderr, "imagesd: %s\n", err.message);
    isd_config_release(&cfg);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return isd_cli_keys(argc - 1, argv + 1);
    if (strcmp(cmd, "usage") == 0)
        return isd_cli_usage(argc - 1, argv + 1);
    if (strcmp(cmd, "engine") == 0)
        return isd_cli_engine(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("imagesd %s\n", IMAGESD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "imagesd: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
