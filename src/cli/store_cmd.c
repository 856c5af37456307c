/*
 * Commands that administer the data directory's store: `imagesd keys` and `imagesd usage`.
 * They open the same SQLite database as the server (safe while it runs: WAL), find it through
 * --data-dir / --config / IMAGESD_DATA_DIR like `serve` does, and never print a key except the
 * new one at creation.
 */
#include "cli/cli.h"

#include "config/config.h"
#include "store/store.h"
#include "sys/sys.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

/* Splits argv into this command's options (listed in `own`, each taking a value except the
 * ones in `flags`) and the store options (--data-dir, --config) for isd_config_load. */
struct opts {
    const char *values[16]; /* by index in `own` */
    bool set[16];
    char *cfg_argv[8];
    int cfg_argc;
};

static int parse_opts(int argc, char **argv, int first, const char *const *own,
                      const char *const *flags, struct opts *o, const char *cmd)
{
    memset(o, 0, sizeof *o);
    o->cfg_argv[o->cfg_argc++] = (char *)cmd;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (strncmp(a, "--data-dir", len) == 0 || strncmp(a, "--config", len) == 0) {
            if (len < 3 || o->cfg_argc > 5)
                goto unknown;
            o->cfg_argv[o->cfg_argc++] = argv[i];
            if (!eq && i + 1 < argc)
                o->cfg_argv[o->cfg_argc++] = argv[++i];
            continue;
        }
        int k = 0;
        for (; own[k]; k++)
            if (strlen(own[k]) == len && strncmp(a, own[k], len) == 0)
                break;
        if (!own[k])
            goto unknown;
        bool is_flag = false;
        for (int f = 0; flags && flags[f]; f++)
            is_flag |= strcmp(flags[f], own[k]) == 0;
        o->set[k] = true;
        if (is_flag)
            continue;
        if (eq)
            o->values[k] = eq + 1;
        else if (i + 1 < argc)
            o->values[k] = argv[++i];
        else {
            fprintf(stderr, "imagesd %s: %s needs a value\n", cmd, own[k]);
            return -1;
        }
        continue;
    unknown:
        fprintf(stderr, "imagesd %s: unknown option '%s'\n", cmd, a);
        return -1;
    }
    return 0;
}

static struct isd_store *open_store(struct opts *o, const char *cmd)
{
    struct isd_config cfg;
    struct isd_error err;
    if (isd_config_load(&cfg, o->cfg_argc, o->cfg_argv, environ, NULL, &err) < 0) {
        fprintf(stderr, "imagesd %s: %s\n", cmd, err.message);
        isd_config_release(&cfg);
        return NULL;
    }
    struct isd_store *st = isd_store_open(cfg.data_dir, &err);
    if (!st)
        fprintf(stderr, "imagesd %s: %s\n", cmd, err.message);
    isd_config_release(&cfg);
    return st;
}

static int parse_count(const char *s, long *out, const char *what)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || *end || v < 0 || v > 1000000000L) {
        fprintf(stderr, "imagesd keys create: %s: expected a number >= 0, got '%s'\n", what,
                s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

static void format_time(int64_t t, char *out, size_t cap)
{
    if (t == 0) {
        snprintf(out, cap, "-");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int keys_create(int argc, char **argv)
{
    static const char *const own[] = {"--name",  "--rpm",  "--ipm", "--max-concurrent",
                                      "--admin", "--json", NULL};
    static const char *const flags[] = {"--admin", "--json", NULL};
    struct opts o;
    if (parse_opts(argc, argv, 2, own, flags, &o, "keys create") < 0)
        return 2;
    if (!o.values[0] || !o.values[0][0]) {
        fprintf(stderr, "imagesd keys create: --name NAME is required\n");
        return 2;
    }
    long rpm = 0, ipm = 0, maxc = 0;
    if ((o.set[1] && parse_count(o.values[1], &rpm, "--rpm") < 0) ||
        (o.set[2] && parse_count(o.values[2], &ipm, "--ipm") < 0) ||
        (o.set[3] && parse_count(o.values[3], &maxc, "--max-concurrent") < 0))
        return 2;
    struct isd_store *st = open_store(&o, "keys create");
    if (!st)
        return 1;
    struct isd_key k;
    char secret[ISD_KEY_SECRET_LEN + 1];
    struct isd_error err;
    int rc = isd_store_key_create(st, o.values[0], rpm, ipm, maxc, o.set[4], &k, secret, &err);
    isd_store_close(st);
    if (rc < 0) {
        fprintf(stderr, "imagesd keys create: %s\n", err.message);
        return 1;
    }
    if (o.set[5]) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b}", "id", k.id, "name", k.name,
                              "key", secret, "rpm", (json_int_t)rpm, "ipm", (json_int_t)ipm,
                              "max_concurrent", (json_int_t)maxc, "admin", k.admin);
        char *text = json_dumps(j, JSON_INDENT(2));
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(j);
    } else {
        printf("%s\n", secret);
        fprintf(stderr, "created %s \"%s\"%s. The key above is shown only now: store it safely.\n",
                k.id, k.name, k.admin ? " (admin)" : "");
    }
    memset(secret, 0, sizeof secret);
    return 0;
}

static void limit_text(long v, char *out, size_t cap)
{
    if (v == 0)
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%ld", v);
}

static int keys_list(int argc, char **argv)
{
    static const char *const own[] = {"--json", NULL};
    struct opts o;
    if (parse_opts(argc, argv, 2, own, own, &o, "keys list") < 0)
        return 2;
    struct isd_store *st = open_store(&o, "keys list");
    if (!st)
        return 1;
    struct isd_key *keys;
    size_t n;
    struct isd_error err;
    int rc = isd_store_key_list(st, &keys, &n, &err);
    isd_store_close(st);
    if (rc < 0) {
        fprintf(stderr, "imagesd keys list: %s\n", err.message);
        return 1;
    }
    if (o.set[0]) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(
                arr,
                json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:b}", "id", keys[i].id,
                          "name", keys[i].name, "rpm", (json_int_t)keys[i].rpm, "ipm",
                          (json_int_t)keys[i].ipm, "max_concurrent",
                          (json_int_t)keys[i].max_concurrent, "admin", keys[i].admin, "created",
                          (json_int_t)keys[i].created, "last_used", (json_int_t)keys[i].last_used,
                          "revoked", (json_int_t)keys[i].revoked, "active", keys[i].revoked == 0));
        char *text = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", text ? text : "[]");
        free(text);
        json_decref(arr);
    } else {
        printf("%-21s %-20s %6s %6s %10s %5s %-20s %-20s %s\n", "ID", "NAME", "RPM", "IPM",
               "CONCURRENT", "ADMIN", "CREATED", "LAST USED", "STATUS");
        for (size_t i = 0; i < n; i++) {
            char rpm[24], ipm[24], maxc[24], created[32], used[32];
            limit_text(keys[i].rpm, rpm, sizeof rpm);
            limit_text(keys[i].ipm, ipm, sizeof ipm);
            limit_text(keys[i].max_concurrent, maxc, sizeof maxc);
            format_time(keys[i].created, created, sizeof created);
            format_time(keys[i].last_used, used, sizeof used);
            printf("%-21s %-20s %6s %6s %10s %5s %-20s %-20s %s\n", keys[i].id, keys[i].name, rpm,
                   ipm, maxc, keys[i].admin ? "yes" : "no", created, used,
                   keys[i].revoked ? "revoked" : "active");
        }
    }
    free(keys);
    return 0;
}

static int keys_revoke(int argc, char **argv)
{
    static const char *const none[] = {NULL};
    if (argc < 3 || argv[2][0] == '-') {
        fprintf(stderr, "usage: imagesd keys revoke ID [--data-dir DIR]\n");
        return 2;
    }
    struct opts o;
    if (parse_opts(argc, argv, 3, none, none, &o, "keys revoke") < 0)
        return 2;
    struct isd_store *st = open_store(&o, "keys revoke");
    if (!st)
        return 1;
    struct isd_error err;
    int rc = isd_store_key_revoke(st, argv[2], &err);
    isd_store_close(st);
    if (rc < 0) {
        fprintf(stderr, "imagesd keys revoke: %s\n", err.message);
        return 1;
    }
    fprintf(stderr, "revoked %s\n", argv[2]);
    return 0;
}

/* True when --help or -h comes before any "--". */
static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

static void keys_usage(FILE *f)
{
    fprintf(f, "usage: imagesd keys create --name NAME [--rpm N] [--ipm N] "
               "[--max-concurrent N] [--admin] [--json] [--data-dir DIR]\n"
               "       imagesd keys list [--json] [--data-dir DIR]\n"
               "       imagesd keys revoke ID [--data-dir DIR]\n");
}

int isd_cli_keys(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        keys_usage(stdout);
        return 0;
    }
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "create") == 0)
        return keys_create(argc, argv);
    if (strcmp(sub, "list") == 0)
        return keys_list(argc, argv);
    if (strcmp(sub, "revoke") == 0)
        return keys_revoke(argc, argv);
    keys_usage(stderr);
    return 2;
}

/* "2026-11-21", "2026-11-21T09:30:00Z" (UTC), or a span back from now: "90m", "24h", "7d". */
static int parse_since(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!errno && end != s && (!strcmp(end, "m") || !strcmp(end, "h") || !strcmp(end, "d"))) {
        long mul = *end == 'm' ? 60 : *end == 'h' ? 3600 : 86400;
        *ms = (isd_time_unix() - v * mul) * 1000;
        return 0;
    }
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%d", &tm);
    if (!rest)
        return -1;
    if (*rest == 'T' || *rest == ' ') {
        rest = strptime(rest + 1, "%H:%M", &tm);
        if (rest && *rest == ':')
            rest = strptime(rest + 1, "%S", &tm);
        if (rest && *rest == 'Z')
            rest++;
    }
    if (!rest || *rest)
        return -1;
    *ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

int isd_cli_usage(int argc, char **argv)
{
    static const char *const own[] = {"--since", "--by", "--json", NULL};
    static const char *const flags[] = {"--json", NULL};
    if (wants_help(argc, argv)) {
        printf("usage: imagesd usage [--since DATE|SPAN] [--by key|model|day] [--json] "
               "[--data-dir DIR] [--config FILE]\n"
               "  --since  YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]Z (UTC), or a span back from now: "
               "90m, 24h, 7d\n"
               "  --by     one row per key, model or day (UTC) instead of one total\n"
               "  --json   print JSON instead of a table\n");
        return 0;
    }
    struct opts o;
    if (parse_opts(argc, argv, 1, own, flags, &o, "usage") < 0)
        return 2;
    int64_t since = 0;
    if (o.set[0] && parse_since(o.values[0], &since) < 0) {
        fprintf(stderr,
                "imagesd usage: --since: expected YYYY-MM-DD[THH:MM[:SS]Z] or a span "
                "like 24h or 7d, got '%s'\n",
                o.values[0]);
        return 2;
    }
    enum isd_usage_group by = ISD_USAGE_ALL;
    if (o.set[1]) {
        const char *b = o.values[1];
        if (!strcmp(b, "key"))
            by = ISD_USAGE_BY_KEY;
        else if (!strcmp(b, "model"))
            by = ISD_USAGE_BY_MODEL;
        else if (!strcmp(b, "day"))
            by = ISD_USAGE_BY_DAY;
        else {
            fprintf(stderr, "imagesd usage: --by: expected key, model or day, got '%s'\n", b);
            return 2;
        }
    }
    struct isd_store *st = open_store(&o, "usage");
    if (!st)
        return 1;
    struct isd_usage_total *t;
    size_t n;
    struct isd_error err;
    int rc = isd_store_usage_totals(st, since, by, &t, &n, &err);
    isd_store_close(st);
    if (rc < 0) {
        fprintf(stderr, "imagesd usage: %s\n", err.message);
        return 1;
    }
    static const char *const group_names[] = {"all", "key", "model", "day"};
    if (o.set[2]) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(
                arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:f}",
                               group_names[by], t[i].group, "requests", (json_int_t)t[i].requests,
                               "errors", (json_int_t)t[i].errors, "images", (json_int_t)t[i].images,
                               "input_tokens", (json_int_t)t[i].input_tokens, "output_tokens",
                               (json_int_t)t[i].output_tokens, "bytes_out",
                               (json_int_t)t[i].bytes_out, "seconds", t[i].ms_total / 1000.0,
                               "steps", (json_int_t)t[i].steps, "megapixels", t[i].megapixels));
        char *text = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", text ? text : "[]");
        free(text);
        json_decref(arr);
    } else {
        printf("%-24s %9s %7s %7s %13s %13s %14s %10s %8s %10s\n", group_names[by], "REQUESTS",
               "ERRORS", "IMAGES", "INPUT_TOKENS", "OUTPUT_TOKENS", "BYTES_OUT", "SECONDS", "STEPS",
               "MEGAPIXELS");
        for (size_t i = 0; i < n; i++)
            printf("%-24s %9ld %7ld %7ld %13ld %13ld %14llu %10.1f %8ld %10.2f\n", t[i].group,
                   t[i].requests, t[i].errors, t[i].images, t[i].input_tokens, t[i].output_tokens,
                   (unsigned long long)t[i].bytes_out, t[i].ms_total / 1000.0, t[i].steps,
                   t[i].megapixels);
    }
    free(t);
    return 0;
}
