/*
 * config: defaults, precedence flag > environment > file > default for each source, every
 * option type, error messages naming the source and the entry, sections of the file,
 * --config / IMAGESD_CONFIG. isd_config_release() follows every load, failed or not (as
 * src/cli does), so LSan sees every leak.
 */
#include "support/test.h"

#include "config/config.h"
#include "err/err.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGV(...) ((char *[]){"imagesd", __VA_ARGS__, NULL})
#define ENV(...)  ((char *[]){__VA_ARGS__, NULL})

static int argc_of(char **argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return n;
}

static char no_env_end[] = "";
static char *no_env[] = {NULL};

/* Writes `text` to <tmpdir>/<name> and returns the path (static storage per slot). */
static const char *write_file(const char *dir, const char *name, const char *text)
{
    static char paths[4][4200];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, 4200, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return p;
}

static int load(struct isd_config *cfg, char **argv, char **envp, struct isd_error *err)
{
    memset(err, 0, sizeof *err);
    return isd_config_load(cfg, argc_of(argv), argv, envp, NULL, err);
}

static void defaults(void **state)
{
    (void)state;
    (void)no_env_end;
    struct isd_config cfg;
    struct isd_error err;
    char *argv[] = {"imagesd", NULL};
    int first = -1;
    assert_int_equal(isd_config_load(&cfg, 1, argv, no_env, &first, &err), 0);
    assert_int_equal(first, 1);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_string_equal(cfg.data_dir, "./imagesd-data");
    assert_null(cfg.config_file);
    assert_null(cfg.public_url);
    assert_int_equal(cfg.workers, 0);
    assert_int_equal(cfg.queue_size, 64);
    assert_int_equal(cfg.max_body_bytes, 1L << 20);
    assert_int_equal(cfg.max_upload_bytes, 900L << 20);
    assert_int_equal(cfg.request_timeout, 600);
    assert_int_equal(cfg.drain_timeout, 30);
    assert_int_equal(cfg.url_ttl, 3600);
    assert_int_equal(cfg.sse_keepalive, 15);
    assert_int_equal(cfg.sweep_interval, 60);
    assert_string_equal(cfg.default_model, "dall-e-2");
    assert_string_equal(cfg.default_gpt_model, "gpt-image-1");
    assert_int_equal(cfg.mock_seed, 0);
    assert_int_equal(cfg.mock_delay_ms, 0);
    assert_string_equal(cfg.font, "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    assert_string_equal(cfg.log_level, "info");
    assert_string_equal(cfg.log_format, "logfmt");
    assert_int_equal(cfg.n_sections, 0);
    isd_config_release(&cfg);
    assert_null(cfg.listen);
    isd_config_release(&cfg); /* twice is harmless */
    /* a NULL environment is allowed */
    assert_int_equal(isd_config_load(&cfg, 1, argv, NULL, NULL, &err), 0);
    isd_config_release(&cfg);
}

/* flag > env > file > default, for an integer and a string option, each source alone and
 * in every combination. */
static void precedence(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    const char *file = write_file(dir, "a.ini", "workers = 3\nlisten = file:1\n");
    char file_flag[4300];
    snprintf(file_flag, sizeof file_flag, "--config=%s", file);
    for (int mask = 0; mask < 8; mask++) {
        bool use_file = mask & 1, use_env = mask & 2, use_flag = mask & 4;
        char *argv[8];
        int argc = 0;
        argv[argc++] = "imagesd";
        if (use_file)
            argv[argc++] = file_flag;
        if (use_flag) {
            argv[argc++] = "--workers";
            argv[argc++] = "7";
            argv[argc++] = "--listen=flag:3";
        }
        argv[argc] = NULL;
        char *envp[4] = {"PATH=/bin", NULL, NULL, NULL};
        if (use_env) {
            envp[1] = "IMAGESD_WORKERS=5";
            envp[2] = "IMAGESD_LISTEN=env:2";
        }
        struct isd_config cfg;
        struct isd_error err;
        int rc = isd_config_load(&cfg, argc, argv, envp, NULL, &err);
        if (rc < 0)
            print_error("mask %d: %s\n", mask, err.message);
        assert_int_equal(rc, 0);
        long want = use_flag ? 7 : use_env ? 5 : use_file ? 3 : 0;
        const char *want_listen = use_flag   ? "flag:3"
                                  : use_env  ? "env:2"
                                  : use_file ? "file:1"
                                             : "127.0.0.1:8080";
        assert_int_equal(cfg.workers, want);
        assert_string_equal(cfg.listen, want_listen);
        if (use_file)
            assert_string_equal(cfg.config_file, file);
        else
            assert_null(cfg.config_file);
        isd_config_release(&cfg);
    }
}

struct value_case {
    const char *option; /* flag name */
    const char *value;
    long want; /* for numbers; LONG_MIN: refused */
};

static long number_field(const struct isd_config *c, const char *option)
{
    if (strcmp(option, "workers") == 0)
        return c->workers;
    if (strcmp(option, "queue-size") == 0)
        return c->queue_size;
    if (strcmp(option, "max-body") == 0)
        return c->max_body_bytes;
    if (strcmp(option, "max-upload") == 0)
        return c->max_upload_bytes;
    if (strcmp(option, "request-timeout") == 0)
        return c->request_timeout;
    if (strcmp(option, "drain-timeout") == 0)
        return c->drain_timeout;
    if (strcmp(option, "url-ttl") == 0)
        return c->url_ttl;
    if (strcmp(option, "mock-seed") == 0)
        return c->mock_seed;
    return -999;
}

/* Integers with bounds, sizes with k/M/G, seconds with s/m/h. */
static void number_types(void **state)
{
    (void)state;
    static const struct value_case cases[] = {
        {"workers", "0", 0},
        {"workers", "256", 256},
        {"workers", "257", LONG_MIN},
        {"workers", "-1", LONG_MIN},
        {"workers", "x", LONG_MIN},
        {"workers", "5x", LONG_MIN},
        {"workers", "", LONG_MIN},
        {"workers", "1.5", LONG_MIN},
        {"workers", "99999999999999999999999", LONG_MIN},
        {"queue-size", "100000", 100000},
        {"queue-size", "100001", LONG_MIN},
        {"mock-seed", "9223372036854775807", LONG_MAX},
        {"mock-seed", "9223372036854775808", LONG_MIN},
        {"max-body", "1024", 1024},
        {"max-body", "1023", LONG_MIN},
        {"max-body", "512k", 512L << 10},
        {"max-body", "512K", 512L << 10},
        {"max-body", "20M", 20L << 20},
        {"max-body", "20m", 20L << 20},
        {"max-body", "1G", 1L << 30},
        {"max-body", "2G", LONG_MIN},
        {"max-body", "2kB", 2048},
        {"max-body", "1.5M", LONG_MIN},
        {"max-body", "10T", LONG_MIN},
        {"max-body", "M", LONG_MIN},
        {"max-body", "-1k", LONG_MIN},
        {"max-body", "1 M", LONG_MIN},
        {"max-upload", "900M", 900L << 20},
        {"max-upload", "1024G", 1L << 40},
        {"max-upload", "99999999999G", LONG_MIN},
        {"request-timeout", "90", 90},
        {"request-timeout", "90s", 90},
        {"request-timeout", "5m", 300},
        {"request-timeout", "2h", 7200},
        {"request-timeout", "24h", 86400},
        {"request-timeout", "25h", LONG_MIN},
        {"request-timeout", "0", LONG_MIN},
        {"request-timeout", "1d", LONG_MIN},
        {"request-timeout", "1.5h", LONG_MIN},
        {"request-timeout", "s", LONG_MIN},
        {"drain-timeout", "0", 0},
        {"url-ttl", "720h", 2592000},
        {"url-ttl", "721h", LONG_MIN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct value_case *c = &cases[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", c->option);
        char *argv[] = {"imagesd", flag, (char *)c->value, NULL};
        struct isd_config cfg;
        struct isd_error err;
        int rc = load(&cfg, argv, no_env, &err);
        bool ok = c->want == LONG_MIN ? rc == -ISD_E_INVALID_VALUE
                                      : rc == 0 && number_field(&cfg, c->option) == c->want;
        if (ok && rc < 0)
            ok = strcmp(err.param, c->option) == 0 && strstr(err.message, c->value) != NULL;
        if (!ok)
            print_error("--%s '%s': rc %d value %ld (%s)\n", c->option, c->value, rc,
                        rc == 0 ? number_field(&cfg, c->option) : 0, rc < 0 ? err.message : "");
        isd_config_release(&cfg);
        assert_true(ok);
    }
    assert_int_equal(isd_config_parse_size("0"), 0);
    assert_int_equal(isd_config_parse_size("3k"), 3072);
    assert_int_equal(isd_config_parse_size("3kb"), 3072);
    assert_int_equal(isd_config_parse_size("1G"), 1L << 30);
    assert_int_equal(isd_config_parse_size(""), -1);
    assert_int_equal(isd_config_parse_size("k"), -1);
    assert_int_equal(isd_config_parse_size("-5"), -1);
    assert_int_equal(isd_config_parse_size("9223372036854775807"), LONG_MAX);
    assert_int_equal(isd_config_parse_size("9223372036854775807k"), -1);
    assert_int_equal(isd_config_parse_size("8796093022208M"), -1);
}

static void choices_and_strings(void **state)
{
    (void)state;
    struct isd_config cfg;
    struct isd_error err;
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        char *argv[] = {"imagesd", "--log-level", (char *)levels[i], NULL};
        assert_int_equal(load(&cfg, argv, no_env, &err), 0);
        assert_string_equal(cfg.log_level, levels[i]);
        isd_config_release(&cfg);
    }
    assert_int_equal(load(&cfg, ARGV("--log-format=json"), no_env, &err), 0);
    assert_string_equal(cfg.log_format, "json");
    isd_config_release(&cfg);

    static const char *const bad[] = {"verbose", "INFO", "", "info ", "deb"};
    for (int i = 0; i < 5; i++) {
        char *argv[] = {"imagesd", "--log-level", (char *)bad[i], NULL};
        assert_int_equal(load(&cfg, argv, no_env, &err), -ISD_E_INVALID_VALUE);
        char want[200];
        snprintf(want, sizeof want,
                 "flag --log-level: log-level: expected one of debug|info|warn|error, got '%s'",
                 bad[i]);
        assert_string_equal(err.message, want);
        assert_string_equal(err.param, "log-level");
        isd_config_release(&cfg);
    }
    /* strings are taken as written, '=' inside a value included */
    assert_int_equal(
        load(&cfg, ARGV("--public-url=http://h/x?a=b", "--data-dir", "/d d"), no_env, &err), 0);
    assert_string_equal(cfg.public_url, "http://h/x?a=b");
    assert_string_equal(cfg.data_dir, "/d d");
    isd_config_release(&cfg);
    /* the same option twice on the command line: the last wins, nothing leaks */
    assert_int_equal(load(&cfg, ARGV("--listen", "a:1", "--listen", "b:2"), no_env, &err), 0);
    assert_string_equal(cfg.listen, "b:2");
    isd_config_release(&cfg);
}

/* Error messages name the source and the entry. */
static void messages_name_the_source(void **state)
{
    (void)state;
    struct isd_config cfg;
    struct isd_error err;

    assert_int_equal(load(&cfg, ARGV("--workers", "x"), no_env, &err), -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message,
                        "flag --workers: workers: expected an integer in 0..256, got 'x'");
    assert_string_equal(err.param, "workers");
    isd_config_release(&cfg);

    assert_int_equal(load(&cfg, ARGV("--max_body=3"), no_env, &err), -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message,
                        "flag --max-body: max-body: expected a size in bytes in 1024..1073741824, "
                        "got '3'");
    isd_config_release(&cfg);

    assert_int_equal(load(&cfg, ARGV("--drain-timeout=1w"), no_env, &err), -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message, "flag --drain-timeout: drain-timeout: expected a number of "
                                     "seconds in 0..3600, got '1w'");
    isd_config_release(&cfg);

    assert_int_equal(load(&cfg, ARGV("x"), ENV("IMAGESD_WORKERS=many"), &err),
                     -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message,
                        "environment IMAGESD_WORKERS: workers: expected an integer in 0..256, "
                        "got 'many'");
    isd_config_release(&cfg);

    assert_int_equal(load(&cfg, ARGV("x"), ENV("IMAGESD_LOG_FORMAT=xml"), &err),
                     -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message, "environment IMAGESD_LOG_FORMAT: log-format: expected one "
                                     "of logfmt|json, got 'xml'");
    isd_config_release(&cfg);

    const char *dir = isd_test_tmpdir();
    const char *file = write_file(dir, "bad.ini", "; comment\n\nlisten = x:1\nworkers = lots\n");
    char flag[4300];
    snprintf(flag, sizeof flag, "--config=%s", file);
    char *argv[] = {"imagesd", flag, NULL};
    assert_int_equal(load(&cfg, argv, no_env, &err), -ISD_E_INVALID_VALUE);
    char want[4600];
    snprintf(want, sizeof want,
             "config file %s line 4: workers: expected an integer in 0..256, got 'lots'", file);
    assert_string_equal(err.message, want);
    isd_config_release(&cfg);

    /* a missing flag value */
    assert_int_equal(load(&cfg, ARGV("--workers"), no_env, &err), -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message, "option '--workers' needs a value");
    isd_config_release(&cfg);
}

static void unknown_options(void **state)
{
    (void)state;
    struct isd_config cfg;
    struct isd_error err;
    assert_int_equal(load(&cfg, ARGV("--bogus", "1"), no_env, &err), -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message, "unknown option '--bogus' (see --help)");
    isd_config_release(&cfg);
    assert_int_equal(load(&cfg, ARGV("--bogus=1"), no_env, &err), -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message, "unknown option '--bogus' (see --help)");
    isd_config_release(&cfg);
    assert_int_equal(load(&cfg, ARGV("-w", "1"), no_env, &err), -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message, "unknown option '-w' (see --help)");
    isd_config_release(&cfg);
    assert_int_equal(load(&cfg, ARGV("--work", "1"), no_env, &err), -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message, "unknown option '--work' (see --help)");
    isd_config_release(&cfg);
    /* an unknown IMAGESD_ variable is not an option: ignored */
    assert_int_equal(load(&cfg, ARGV("x"), ENV("IMAGESD_BOGUS=1", "IMAGESD_=2"), &err), 0);
    isd_config_release(&cfg);

    const char *dir = isd_test_tmpdir();
    const char *file = write_file(dir, "u.ini", "listen = a:1\n\nbogus = 1\n");
    char flag[4300];
    snprintf(flag, sizeof flag, "--config=%s", file);
    char *argv[] = {"imagesd", flag, NULL};
    assert_int_equal(load(&cfg, argv, no_env, &err), -ISD_E_INVALID_VALUE);
    char want[4600];
    snprintf(want, sizeof want, "config file %s line 3: unknown option 'bogus'", file);
    assert_string_equal(err.message, want);
    isd_config_release(&cfg);

    /* `config` itself cannot be set from the file */
    file = write_file(dir, "c.ini", "config = /etc/other.ini\n");
    snprintf(flag, sizeof flag, "--config=%s", file);
    assert_int_equal(load(&cfg, argv, no_env, &err), -ISD_E_INVALID_VALUE);
    snprintf(want, sizeof want, "config file %s line 1: unknown option 'config'", file);
    assert_string_equal(err.message, want);
    isd_config_release(&cfg);
}

static void first_argument(void **state)
{
    (void)state;
    struct isd_config cfg;
    struct isd_error err;
    int first = -1;
    char **argv = ARGV("--workers", "2", "extra", "--listen", "x");
    assert_int_equal(isd_config_load(&cfg, argc_of(argv), argv, no_env, &first, &err), 0);
    assert_int_equal(first, 3);
    assert_int_equal(cfg.workers, 2);
    assert_string_equal(cfg.listen, "127.0.0.1:8080"); /* after the first argument: not parsed */
    isd_config_release(&cfg);

    argv = ARGV("--workers=2", "--", "--listen");
    assert_int_equal(isd_config_load(&cfg, argc_of(argv), argv, no_env, &first, &err), 0);
    assert_int_equal(first, 3);
    isd_config_release(&cfg);

    argv = ARGV("--data_dir", "/x"); /* '_' for '-' in flags too */
    assert_int_equal(isd_config_load(&cfg, argc_of(argv), argv, no_env, &first, &err), 0);
    assert_string_equal(cfg.data_dir, "/x");
    assert_int_equal(first, 3);
    isd_config_release(&cfg);
}

static void file_entries(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    const char *file = write_file(dir, "ok.ini",
                                  "# a comment\n"
                                  "; another\n"
                                  "data_dir = /var/lib/imagesd   \n"
                                  "max-body=2M\n"
                                  "request-timeout :  5m\n"
                                  "log-level = debug ; inline comment\n");
    struct isd_config cfg;
    struct isd_error err;
    char *envp[] = {"IMAGESD_CONFIG=", NULL};
    char flag[4300];
    snprintf(flag, sizeof flag, "--config=%s", file);
    char *argv[] = {"imagesd", flag, NULL};
    int rc = load(&cfg, argv, envp, &err);
    if (rc < 0)
        print_error("%s\n", err.message);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.data_dir, "/var/lib/imagesd");
    assert_int_equal(cfg.max_body_bytes, 2L << 20);
    assert_int_equal(cfg.request_timeout, 300);
    assert_string_equal(cfg.log_level, "debug");
    isd_config_release(&cfg);
}

/* Regression test (fixed): errors from the file lose their `param`: load_file() re-sets the error
 * with isd_err_set(err, err->id, err->param, ...) to add the line number, and isd_err_setv()
 * (src/err/err.c) clears e->param before copying `param` into it, which is the same buffer,
 * so the copy is empty. Flag and environment errors keep it ("workers"). Fix: copy the param
 * to a local first in load_file (or make isd_err_setv tolerate param == e->param). */
static void file_errors_keep_their_param(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    static const struct {
        const char *text, *param;
    } cases[] = {
        {"workers = lots\n", "workers"},
        {"bogus = 1\n", "bogus"},
        {"log-level = loud\n", "log-level"},
    };
    for (int i = 0; i < 3; i++) {
        const char *file = write_file(dir, "p.ini", cases[i].text);
        char flag[4300];
        snprintf(flag, sizeof flag, "--config=%s", file);
        char *argv[] = {"imagesd", flag, NULL};
        struct isd_config cfg;
        struct isd_error err;
        int rc = load(&cfg, argv, no_env, &err);
        isd_config_release(&cfg);
        assert_int_equal(rc, -ISD_E_INVALID_VALUE);
        if (strcmp(err.param, cases[i].param) != 0)
            print_error("%s: param '%s', message %s\n", cases[i].text, err.param, err.message);
        assert_string_equal(err.param, cases[i].param);
    }
}

static void duplicate_file_entry(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    static const struct {
        const char *text;
        int line;
        const char *name;
    } cases[] = {
        {"workers = 1\nworkers = 2\n", 2, "workers"},
        {"data-dir = /a\n# c\ndata_dir = /b\n", 3, "data_dir"},
    };
    for (int i = 0; i < 2; i++) {
        const char *file = write_file(dir, "dup.ini", cases[i].text);
        char flag[4300];
        snprintf(flag, sizeof flag, "--config=%s", file);
        char *argv[] = {"imagesd", flag, NULL};
        struct isd_config cfg;
        struct isd_error err;
        assert_int_equal(load(&cfg, argv, no_env, &err), -ISD_E_INVALID_VALUE);
        char want[4600];
        snprintf(want, sizeof want, "config file %s line %d: option '%s' is set twice", file,
                 cases[i].line, cases[i].name);
        assert_string_equal(err.message, want);
        isd_config_release(&cfg);
    }
}

static const struct isd_config_section *find_section(const struct isd_config *c, const char *kind,
                                                     const char *name)
{
    for (size_t i = 0; i < c->n_sections; i++)
        if (strcmp(c->sections[i].kind, kind) == 0 && strcmp(c->sections[i].name, name) == 0)
            return &c->sections[i];
    return NULL;
}

static void sections_kept(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    const char *file = write_file(dir, "s.ini",
                                  "listen = 0.0.0.0:1\n"         /* 1 */
                                  "[model \"sd15\"]\n"           /* 2 */
                                  "path = /m/sd15.safetensors\n" /* 3 */
                                  "default-steps =   20  \n"     /* 4 */
                                  "\n"                           /* 5 */
                                  "[model \"tiny one\"]\n"       /* 6 */
                                  "path = x\n"                   /* 7 */
                                  "[model \"sd15\"]\n"           /* 8 */
                                  "extra = a = b\n"              /* 9 */
                                  "[key  \"k1\"]\n"              /* 10 */
                                  "workers = 99999\n");          /* 11: not an option here */
    char flag[4300];
    snprintf(flag, sizeof flag, "--config=%s", file);
    char *argv[] = {"imagesd", flag, NULL};
    struct isd_config cfg;
    struct isd_error err;
    int rc = load(&cfg, argv, no_env, &err);
    if (rc < 0)
        print_error("%s\n", err.message);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.listen, "0.0.0.0:1");
    assert_int_equal(cfg.workers, 0);
    assert_int_equal(cfg.n_sections, 3);

    const struct isd_config_section *s = find_section(&cfg, "model", "sd15");
    assert_non_null(s);
    assert_int_equal(s->n_entries, 3);
    assert_string_equal(s->entries[0].key, "path");
    assert_string_equal(s->entries[0].value, "/m/sd15.safetensors");
    assert_int_equal(s->entries[0].line, 3);
    assert_string_equal(s->entries[1].key, "default_steps"); /* '-' normalised */
    assert_string_equal(s->entries[1].value, "20");
    assert_int_equal(s->entries[1].line, 4);
    assert_string_equal(s->entries[2].key, "extra");
    assert_string_equal(s->entries[2].value, "a = b");
    assert_int_equal(s->entries[2].line, 9);

    s = find_section(&cfg, "model", "tiny one");
    assert_non_null(s);
    assert_int_equal(s->n_entries, 1);
    assert_int_equal(s->entries[0].line, 7);

    s = find_section(&cfg, "key", "k1");
    assert_non_null(s);
    assert_string_equal(s->entries[0].key, "workers");
    assert_string_equal(s->entries[0].value, "99999");
    isd_config_release(&cfg);
}

/* Regression test (fixed): a section's `line` is documented as "line of the section header"
 * (config.h) but is the line of its first entry: section_for() runs from the entry handler and
 * stores fc->line (inih calls the handler only for name = value lines). Here [model "sd15"] is on
 * line 2 and isd_config_section.line is 4. Relatedly, a section without entries is dropped (it
 * never reaches the handler). Either compile inih's INI_CALL_HANDLER_ON_NEW_SECTION behaviour in
 * (Debian's libinih has it off) or track headers in counting_reader. */
static void section_line_is_the_header_line(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    const char *file = write_file(dir, "h.ini",
                                  "# models\n"         /* 1 */
                                  "[model \"sd15\"]\n" /* 2 */
                                  "; its path\n"       /* 3 */
                                  "path = /m/sd15\n"); /* 4 */
    char flag[4300];
    snprintf(flag, sizeof flag, "--config=%s", file);
    char *argv[] = {"imagesd", flag, NULL};
    struct isd_config cfg;
    struct isd_error err;
    assert_int_equal(load(&cfg, argv, no_env, &err), 0);
    int line = cfg.n_sections == 1 ? cfg.sections[0].line : -1;
    isd_config_release(&cfg);
    assert_int_equal(line, 2);
}

static void bad_section_header(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    static const char *const headers[] = {"[model]",      "[model sd15]", "[model \"sd15\" x]",
                                          "[model \"\"]", "[\"sd15\"]",   "[model \"sd15]"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "%s\npath = x\n", headers[i]);
        const char *file = write_file(dir, "bad.ini", text);
        char flag[4300];
        snprintf(flag, sizeof flag, "--config=%s", file);
        char *argv[] = {"imagesd", flag, NULL};
        struct isd_config cfg;
        struct isd_error err;
        int rc = load(&cfg, argv, no_env, &err);
        char want[4600];
        /* the name inih saw: the header without its brackets */
        snprintf(want, sizeof want,
                 "section [%.*s]: expected [kind \"name\"], e.g. [model \"sd15\"]",
                 (int)strlen(headers[i]) - 2, headers[i] + 1);
        char prefix[4400];
        snprintf(prefix, sizeof prefix, "config file %s line ", file);
        bool ok = rc == -ISD_E_INVALID_VALUE && strncmp(err.message, prefix, strlen(prefix)) == 0 &&
                  strstr(err.message, want) != NULL;
        if (!ok)
            print_error("header %s: rc %d: %s\n", headers[i], rc, err.message);
        isd_config_release(&cfg);
        assert_true(ok);
    }
}

static void syntax_error(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    const char *file = write_file(dir, "syn.ini", "listen = a:1\nworkers 5\n");
    char flag[4300];
    snprintf(flag, sizeof flag, "--config=%s", file);
    char *argv[] = {"imagesd", flag, NULL};
    struct isd_config cfg;
    struct isd_error err;
    assert_int_equal(load(&cfg, argv, no_env, &err), -ISD_E_INVALID_VALUE);
    char want[4600];
    snprintf(want, sizeof want,
             "config file %s line 2: syntax error (expected name = value, [kind \"name\"] or a "
             "comment)",
             file);
    assert_string_equal(err.message, want);
    assert_string_equal(err.param, "config");
    isd_config_release(&cfg);
}

/* Regression test (fixed): with two bad entries, the message pairs the FIRST bad line's number with
 * the LAST bad entry's text. inih (Debian's libinih, INI_STOP_ON_FIRST_ERROR off) keeps parsing
 * after a handler error and returns the first error line, but file_entry() overwrites `err` at
 * every later error (src/config/config.c, file_entry / load_file). Here line 2 has an unknown
 * option and line 4 a bad integer; the message says "line 2: workers: expected an integer
 * ...". Expected the first error, whole: "line 2: unknown option 'bogus'" (e.g. keep the
 * first error in file_ctx and stop handling once one is set). */
static void first_file_error_wins(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    const char *file = write_file(dir, "two.ini", "listen = a:1\nbogus = 1\n\nworkers = lots\n");
    char flag[4300];
    snprintf(flag, sizeof flag, "--config=%s", file);
    char *argv[] = {"imagesd", flag, NULL};
    struct isd_config cfg;
    struct isd_error err;
    int rc = load(&cfg, argv, no_env, &err);
    isd_config_release(&cfg);
    char want[4600];
    snprintf(want, sizeof want, "config file %s line 2: unknown option 'bogus'", file);
    assert_int_equal(rc, -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message, want);
}

/* Regression test (fixed): a value on a line longer than inih's 200-byte line buffer is silently
 * cut (inih hands the first ~195 bytes to the handler, which accepts them), and the rest of the
 * line is then parsed as a new line: the error reads "line 2: syntax error" for a file whose line 1
 * is the only line. A long data-dir or model path is plausible. Expected: the whole value, or an
 * error naming line 1 (e.g. read lines with getline and parse with ini_parse_string per line, or
 * use a larger INI_MAX_LINE via ini_parse_stream with a bigger buffer). */
static void long_line_kept_or_refused_on_its_line(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    char text[400] = "data-dir = /";
    size_t n = strlen(text);
    memset(text + n, 'd', 300);
    text[n + 300] = '\n';
    text[n + 301] = '\0';
    const char *file = write_file(dir, "long.ini", text);
    char flag[4300];
    snprintf(flag, sizeof flag, "--config=%s", file);
    char *argv[] = {"imagesd", flag, NULL};
    struct isd_config cfg;
    struct isd_error err;
    int rc = load(&cfg, argv, no_env, &err);
    bool whole = rc == 0 && strlen(cfg.data_dir) == 301;
    bool named = rc < 0 && strstr(err.message, " line 1: ") != NULL;
    if (!whole && !named)
        print_error("rc %d, data_dir %zu bytes: %s\n", rc, rc == 0 ? strlen(cfg.data_dir) : 0,
                    rc < 0 ? err.message : "");
    isd_config_release(&cfg);
    assert_true(whole || named);
}

static void config_from_flag_and_env(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    const char *a = write_file(dir, "a.ini", "listen = from-a:1\n");
    const char *b = write_file(dir, "b.ini", "listen = from-b:2\n");
    char env_a[4300], flag_b[4300];
    snprintf(env_a, sizeof env_a, "IMAGESD_CONFIG=%s", a);
    struct isd_config cfg;
    struct isd_error err;

    /* IMAGESD_CONFIG */
    char *envp[] = {env_a, NULL};
    assert_int_equal(load(&cfg, ARGV("x"), envp, &err), 0);
    assert_string_equal(cfg.listen, "from-a:1");
    assert_string_equal(cfg.config_file, a);
    isd_config_release(&cfg);

    /* --config FILE (separate value) beats the environment */
    char *argv[] = {"imagesd", "--config", (char *)b, NULL};
    assert_int_equal(load(&cfg, argv, envp, &err), 0);
    assert_string_equal(cfg.listen, "from-b:2");
    assert_string_equal(cfg.config_file, b);
    isd_config_release(&cfg);

    /* --config=FILE */
    snprintf(flag_b, sizeof flag_b, "--config=%s", b);
    char *argv2[] = {"imagesd", flag_b, NULL};
    assert_int_equal(load(&cfg, argv2, no_env, &err), 0);
    assert_string_equal(cfg.listen, "from-b:2");
    isd_config_release(&cfg);

    /* an empty IMAGESD_CONFIG means none */
    assert_int_equal(load(&cfg, ARGV("x"), ENV("IMAGESD_CONFIG="), &err), 0);
    assert_null(cfg.config_file);
    isd_config_release(&cfg);

    /* a flag after the file still wins over it */
    char *argv3[] = {"imagesd", flag_b, "--listen", "flag:3", NULL};
    assert_int_equal(load(&cfg, argv3, no_env, &err), 0);
    assert_string_equal(cfg.listen, "flag:3");
    isd_config_release(&cfg);
}

/* Regression test (fixed): `--config FILE` is ignored when it comes after an option written with a
 * separate value: `imagesd serve --workers 2 --config /etc/imagesd.ini` never reads the file.
 * flag_lookup() (src/config/config.c) stops at the first argument not starting with '-',
 * and "2" (the value of --workers) is such an argument. apply_flags() then stores the path in
 * cfg->config_file, so the server even reports a config file it did not read. Expected: the
 * file is loaded wherever --config appears among the options (skip option values in
 * flag_lookup as apply_flags does). */
static void config_flag_after_other_options(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    const char *b = write_file(dir, "b.ini", "listen = from-b:2\nqueue-size = 5\n");
    char *argv[] = {"imagesd", "--workers", "2", "--config", (char *)b, NULL};
    struct isd_config cfg;
    struct isd_error err;
    int rc = load(&cfg, argv, no_env, &err);
    long queue = rc == 0 ? cfg.queue_size : -1;
    char listen[64] = "";
    if (rc == 0)
        snprintf(listen, sizeof listen, "%s", cfg.listen);
    isd_config_release(&cfg);
    assert_int_equal(rc, 0);
    assert_string_equal(listen, "from-b:2");
    assert_int_equal(queue, 5);
}

static void unreadable_config(void **state)
{
    (void)state;
    struct isd_config cfg;
    struct isd_error err;
    char *argv[] = {"imagesd", "--config", "/nonexistent/imagesd.ini", NULL};
    assert_int_equal(load(&cfg, argv, no_env, &err), -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message,
                        "config file /nonexistent/imagesd.ini: No such file or directory");
    assert_string_equal(err.param, "config");
    isd_config_release(&cfg);

    assert_int_equal(load(&cfg, ARGV("x"), ENV("IMAGESD_CONFIG=/nonexistent/env.ini"), &err),
                     -ISD_E_INVALID_VALUE);
    assert_string_equal(err.message, "config file /nonexistent/env.ini: No such file or directory");
    isd_config_release(&cfg);
}

/* Regression test (fixed): a directory given as the config file is accepted as an empty file:
 * fopen(dir, "r") succeeds on Linux, the first fgets() fails with EISDIR, inih sees end of input
 * and returns 0, and load_file() reports success (src/config/config.c, load_file: `if (line == 0)
 * return 0;` without checking ferror()). Expected: refused like an unreadable file, naming it. */
static void directory_as_config_refused(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    char *argv[] = {"imagesd", "--config", (char *)dir, NULL};
    struct isd_config cfg;
    struct isd_error err;
    int rc = load(&cfg, argv, no_env, &err);
    bool names = rc < 0 && strstr(err.message, dir) != NULL;
    isd_config_release(&cfg);
    assert_int_equal(rc, -ISD_E_INVALID_VALUE);
    assert_true(names);
}

static void help_lists_every_option(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, 1 << 16);
    assert_int_equal(isd_config_help(&b), 0);
    static const char *const must[] = {
        "--listen",     "IMAGESD_LISTEN", "--data-dir",      "IMAGESD_DATA_DIR", "--workers",
        "--queue-size", "default 64",     "--max-body",      "default 1M",       "--log-level",
        "--config",     "IMAGESD_CONFIG", "--sse-keepalive", "--mock-delay-ms"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (!strstr(b.data, must[i])) {
            print_error("--help lacks '%s'\n", must[i]);
            fail();
        }
    isd_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(precedence),
        cmocka_unit_test(number_types),
        cmocka_unit_test(choices_and_strings),
        cmocka_unit_test(messages_name_the_source),
        cmocka_unit_test(unknown_options),
        cmocka_unit_test(first_argument),
        cmocka_unit_test(file_entries),
        cmocka_unit_test(file_errors_keep_their_param),
        cmocka_unit_test(duplicate_file_entry),
        cmocka_unit_test(sections_kept),
        cmocka_unit_test(section_line_is_the_header_line),
        cmocka_unit_test(bad_section_header),
        cmocka_unit_test(syntax_error),
        cmocka_unit_test(first_file_error_wins),
        cmocka_unit_test(long_line_kept_or_refused_on_its_line),
        cmocka_unit_test(config_from_flag_and_env),
        cmocka_unit_test(config_flag_after_other_options),
        cmocka_unit_test(unreadable_config),
        cmocka_unit_test(directory_as_config_refused),
        cmocka_unit_test(help_lists_every_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
