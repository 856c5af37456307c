/*
 * config: every server option, declared once in a table (name, type, default, limits, help)
 * that drives command-line flags, environment variables, the config file and --help.
 *
 * Sources and precedence: flag > environment > file > built-in default.
 *   flag   --name VALUE or --name=VALUE (booleans: true/false, yes/no, on/off, 1/0)
 *   env    IMAGESD_NAME (upper case, '-' -> '_'), e.g. IMAGESD_DATA_DIR
 *   file   INI parsed by inih: top-level `name = value` (either '-' or '_' in names), and named
 *          sections `[kind "name"]` kept as raw key/value lists for the modules that own them
 *          (the model catalogue reads `[model "..."]`); comments start with ; or #.
 * Validation happens at load; an error names the source and the bad entry, e.g.
 *   config file /etc/imagesd.ini line 4: workers: expected an integer in 1..256, got 'x'
 *
 * Ownership: isd_config_load() fills a caller-owned struct isd_config; strings inside belong to
 * it until isd_config_release(). The option table is constant. Not thread-safe while loading;
 * read-only afterwards.
 *
 *     struct isd_config cfg;
 *     if (isd_config_load(&cfg, argc, argv, environ, &err) < 0) { print err.message; exit 2; }
 *     ... cfg.listen, cfg.workers ...
 *     isd_config_release(&cfg);
 */
#ifndef ISD_CONFIG_H
#define ISD_CONFIG_H

#include "buf/buf.h"
#include "err/err.h"

#include <stdbool.h>
#include <stddef.h>

/* A `[kind "name"]` section of the config file, kept verbatim for its owner module. */
struct isd_config_entry {
    char *key;   /* as written, '-' normalised to '_' */
    char *value; /* as written, surrounding spaces trimmed */
    int line;    /* line in the file */
};

struct isd_config_section {
    char *kind; /* e.g. "model" */
    char *name; /* e.g. "sd15" */
    int line;   /* line of the section header */
    struct isd_config_entry *entries;
    size_t n_entries;
};

struct isd_config {
    /* server */
    char *listen;                /* HOST:PORT to listen on; port 0 picks a free one */
    char *data_dir;              /* data directory (created if missing) */
    char *config_file;           /* the config file read, or NULL */
    char *public_url;            /* base of returned links; NULL derives it from listen */
    long workers;                /* generation worker threads */
    long queue_size;             /* jobs waiting beyond the running ones */
    long max_body_bytes;         /* JSON request body ceiling */
    long max_upload_bytes;       /* multipart request body ceiling */
    long request_timeout;        /* seconds a job may run before it is failed */
    long drain_timeout;          /* seconds SIGTERM waits for running jobs */
    long url_ttl;                /* seconds a signed image link stays valid */
    long sse_keepalive;          /* seconds without events before a ": keep-alive" comment */
    long sweep_interval;         /* seconds between expired-image sweeps */
    char *default_model;         /* model used when a request names none */
    char *default_gpt_model;     /* ... when it names none but uses GPT-only parameters */
    char *default_edit_model;    /* model used when an edit request names none */
    long remote_images;          /* JSON edits may name http(s) image URLs (0/1) */
    long remote_images_private;  /* ... even on loopback/private/link-local addresses (0/1) */
    long remote_image_max_bytes; /* ceiling on a fetched image */
    long remote_image_timeout;   /* seconds a fetch may take */
    long mock_seed;              /* request seed for the mock generator */
    long mock_delay_ms;          /* mock: pause after each render stage (testing progress) */
    char *font;                  /* TTF for the mock generator's text */
    long ledger;                 /* write the usage ledger (0/1) */
    long rate_window;            /* seconds over which per-key rate limits refill */
    long insecure_no_auth;       /* allow serving a non-loopback address without API keys (0/1) */
    char *metrics_listen;        /* HOST:PORT serving /metrics without a key, or NULL */
    char *log_level;             /* debug|info|warn|error */
    char *log_format;            /* logfmt|json */
    /* sections from the file */
    struct isd_config_section *sections;
    size_t n_sections;
};

/* Loads defaults, then the file named by --config / IMAGESD_CONFIG (if any), then the
 * environment, then argv (options only; argv[0] is skipped; the first non-option argument
 * or "--" stops parsing and its index is stored in *first_arg when first_arg is not NULL).
 * -ISD_E_INVALID_VALUE with a message naming the entry on any problem. --help is not handled
 * here: callers check for it and call isd_config_help(). */
int isd_config_load(struct isd_config *cfg, int argc, char **argv, char **envp, int *first_arg,
                    struct isd_error *err);
void isd_config_release(struct isd_config *cfg);

/* Appends the option reference (flags, env names, defaults, help) to `out`. */
int isd_config_help(struct isd_buf *out);

/* Parses a size like "1048576", "512k", "20M", "1G" into bytes; -1 on error. */
long isd_config_parse_size(const char *s);

#endif
