#include "config/config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum opt_type { OPT_STRING, OPT_INT, OPT_SIZE, OPT_SECONDS, OPT_CHOICE, OPT_BOOL };

struct option_def {
    const char *name;    /* flag and file name; env is IMAGESD_ + upper(name) */
    enum opt_type type;  /* how the text is parsed */
    size_t offset;       /* field in struct isd_config (char * or long) */
    const char *def;     /* default as text, or NULL (unset) */
    long min, max;       /* bounds for numbers */
    const char *choices; /* '|'-separated for OPT_CHOICE */
    const char *help;    /* one line for --help */
};

#define F(field) offsetof(struct isd_config, field)

static const struct option_def options[] = {
    {"listen", OPT_STRING, F(listen), "127.0.0.1:8080", 0, 0, NULL,
     "address to listen on, HOST:PORT; port 0 picks a free port"},
    {"data-dir", OPT_STRING, F(data_dir), "./imagesd-data", 0, 0, NULL,
     "data directory: database, secret, stored images (created if missing)"},
    {"config", OPT_STRING, F(config_file), NULL, 0, 0, NULL, "INI config file to read"},
    {"public-url", OPT_STRING, F(public_url), NULL, 0, 0, NULL,
     "base URL of returned image links (default http://LISTEN)"},
    {"workers", OPT_INT, F(workers), "0", 0, 256, NULL,
     "generation worker threads; 0 = one per online CPU"},
    {"queue-size", OPT_INT, F(queue_size), "64", 0, 100000, NULL,
     "jobs that may wait for a worker; beyond it requests get 429"},
    {"max-body", OPT_SIZE, F(max_body_bytes), "1M", 1024, 1L << 30, NULL,
     "largest JSON request body (bytes; k/M/G suffixes)"},
    {"max-upload", OPT_SIZE, F(max_upload_bytes), "900M", 1024, 1L << 40, NULL,
     "largest multipart request body (bytes; k/M/G suffixes)"},
    {"request-timeout", OPT_SECONDS, F(request_timeout), "600", 1, 86400, NULL,
     "seconds a job may run before it fails with a timeout"},
    {"drain-timeout", OPT_SECONDS, F(drain_timeout), "30", 0, 3600, NULL,
     "seconds SIGTERM waits for running jobs before exiting"},
    {"url-ttl", OPT_SECONDS, F(url_ttl), "3600", 1, 86400 * 30, NULL,
     "seconds a signed image link stays valid"},
    {"sse-keepalive", OPT_SECONDS, F(sse_keepalive), "15", 1, 3600, NULL,
     "seconds without events before a stream gets a \": keep-alive\" comment"},
    {"sweep-interval", OPT_SECONDS, F(sweep_interval), "60", 1, 86400, NULL,
     "seconds between sweeps that delete expired images"},
    {"default-model", OPT_STRING, F(default_model), "dall-e-2", 0, 0, NULL,
     "model used when a generation request names none"},
    {"default-gpt-model", OPT_STRING, F(default_gpt_model), "gpt-image-1", 0, 0, NULL,
     "model used when a request names none but uses a GPT-only parameter"},
    {"default-edit-model", OPT_STRING, F(default_edit_model), "gpt-image-1.5", 0, 0, NULL,
     "model used when an edit request names none"},
    {"remote-images", OPT_BOOL, F(remote_images), "false", 0, 1, NULL,
     "let JSON edits name http(s) image URLs, which the server then fetches"},
    {"remote-images-private", OPT_BOOL, F(remote_images_private), "false", 0, 1, NULL,
     "allow fetching from loopback, private and link-local addresses (off: SSRF guard)"},
    {"remote-image-max", OPT_SIZE, F(remote_image_max_bytes), "50M", 1024, 1L << 30, NULL,
     "largest remote image fetched (bytes)"},
    {"remote-image-timeout", OPT_SECONDS, F(remote_image_timeout), "10", 1, 600, NULL,
     "seconds a remote image fetch may take"},
    {"mock-seed", OPT_INT, F(mock_seed), "0", 0, LONG_MAX, NULL,
     "request seed of the mock generator (same request + seed = same image)"},
    {"mock-delay-ms", OPT_INT, F(mock_delay_ms), "0", 0, 60000, NULL,
     "mock generator: pause (ms) after each render stage, to test clients' progress and "
     "cancellation"},
    {"font", OPT_STRING, F(font), "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0, 0, NULL,
     "TrueType font the mock generator draws text with"},
    {"ledger", OPT_BOOL, F(ledger), "true", 0, 1, NULL,
     "record one usage row per image request (imagesd usage reads them)"},
    {"rate-window", OPT_SECONDS, F(rate_window), "60", 1, 3600, NULL,
     "seconds per-key rate limits refill over (60: requests/images per minute)"},
    {"insecure-no-auth", OPT_BOOL, F(insecure_no_auth), "false", 0, 1, NULL,
     "serve a non-loopback address even when no API key exists"},
    {"metrics-listen", OPT_STRING, F(metrics_listen), NULL, 0, 0, NULL,
     "HOST:PORT serving /metrics without a key (keep it private)"},
    {"log-level", OPT_CHOICE, F(log_level), "info", 0, 0, "debug|info|warn|error",
     "least severe log level written"},
    {"log-format", OPT_CHOICE, F(log_format), "logfmt", 0, 0, "logfmt|json", "log line format"},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

enum source { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };

static char **str_field(struct isd_config *cfg, const struct option_def *o)
{
    return (char **)((char *)cfg + o->offset);
}

static long *long_field(struct isd_config *cfg, const struct option_def *o)
{
    return (long *)((char *)cfg + o->offset);
}

/* "data_dir" and "data-dir" both name the option "data-dir". */
static const struct option_def *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *o = options[i].name;
        if (strlen(o) != len)
            continue;
        size_t k = 0;
        while (k < len && (o[k] == name[k] || (o[k] == '-' && name[k] == '_')))
            k++;
        if (k == len)
            return &options[i];
    }
    return NULL;
}

long isd_config_parse_size(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0)
        return -1;
    long long mul = 1;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mul = 1LL << 10;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1LL << 20;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1LL << 30;
        end++;
        break;
    default:
        return -1;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != '\0' || v > LONG_MAX / mul)
        return -1;
    return (long)(v * mul);
}

static long parse_seconds(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0)
        return -1;
    long long mul = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mul = 60, end++;
    else if (*end == 'h')
        mul = 3600, end++;
    if (*end != '\0' || v > LONG_MAX / mul)
        return -1;
    return (long)(v * mul);
}

static bool choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, v, n) == 0)
            return true;
        p += len + (bar ? 1 : 0);
    }
    return false;
}

/* Parses `value` for option `o` into cfg; `where` names the source for messages. */
static int set_option(struct isd_config *cfg, const struct option_def *o, const char *value,
                      const char *where, struct isd_error *err)
{
    long v = 0;
    switch (o->type) {
    case OPT_STRING: {
        char *copy = strdup(value);
        if (!copy)
            return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
        free(*str_field(cfg, o));
        *str_field(cfg, o) = copy;
        return 0;
    }
    case OPT_CHOICE:
        if (!choice_ok(o->choices, value))
            return isd_err_set(err, ISD_E_INVALID_VALUE, o->name,
                               "%s: %s: expected one of %s, got '%s'", where, o->name, o->choices,
                               value);
        char *copy = strdup(value);
        if (!copy)
            return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
        free(*str_field(cfg, o));
        *str_field(cfg, o) = copy;
        return 0;
    case OPT_INT: {
        char *end;
        errno = 0;
        long long ll = strtoll(value, &end, 10);
        v = (errno || end == value || *end || ll < LONG_MIN || ll > LONG_MAX) ? LONG_MIN : (long)ll;
        break;
    }
    case OPT_SIZE:
        v = isd_config_parse_size(value);
        if (v < 0)
            v = LONG_MIN;
        break;
    case OPT_SECONDS:
        v = parse_seconds(value);
        if (v < 0)
            v = LONG_MIN;
        break;
    case OPT_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") ||
            !strcmp(value, "1"))
            v = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off") ||
                 !strcmp(value, "0"))
            v = 0;
        else
            return isd_err_set(err, ISD_E_INVALID_VALUE, o->name,
                               "%s: %s: expected true or false, got '%s'", where, o->name, value);
        break;
    }
    if (v == LONG_MIN || v < o->min || v > o->max) {
        const char *what = o->type == OPT_SIZE      ? "a size in bytes"
                           : o->type == OPT_SECONDS ? "a number of seconds"
                                                    : "an integer";
        return isd_err_set(err, ISD_E_INVALID_VALUE, o->name,
                           "%s: %s: expected %s in %ld..%ld, got '%s'", where, o->name, what,
                           o->min, o->max, value);
    }
    *long_field(cfg, o) = v;
    return 0;
}

struct file_ctx {
    struct isd_config *cfg;
    struct isd_error *err;
    const char *path;
    FILE *file;             /* the file being read */
    int line;               /* lines read so far = line of the entry being handled */
    unsigned char seen[64]; /* top-level options already set in this file */
    bool failed;            /* an error was recorded: the first one wins, reading stops */
};

/* Records the first error only, prefixed with the file and line. */
static int file_fail(struct file_ctx *fc, enum isd_err_id id, const char *param, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));
static int file_fail(struct file_ctx *fc, enum isd_err_id id, const char *param, const char *fmt,
                     ...)
{
    if (fc->failed)
        return -(int)fc->err->id;
    fc->failed = true;
    char msg[ISD_ERR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return isd_err_set(fc->err, id, param, "config file %s line %d: %s", fc->path, fc->line, msg);
}

static char *trimmed_dup(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return strndup(s, n);
}

/* `model "sd15"` → kind "model", name "sd15". */
static int split_section(const char *section, char **kind, char **name)
{
    const char *sp = strchr(section, ' ');
    if (!sp)
        return -1;
    const char *q1 = strchr(sp, '"');
    const char *q2 = q1 ? strrchr(q1 + 1, '"') : NULL;
    if (!q1 || !q2 || q2[1] != '\0' || q2 == q1 + 1)
        return -1;
    for (const char *p = sp; p < q1; p++)
        if (*p != ' ')
            return -1;
    *kind = strndup(section, (size_t)(sp - section));
    *name = strndup(q1 + 1, (size_t)(q2 - q1 - 1));
    return (*kind && *name) ? 0 : -1;
}

/* The section named by a `[kind "name"]` header, created on its header line. */
static struct isd_config_section *section_for(struct file_ctx *fc, const char *section)
{
    struct isd_config *cfg = fc->cfg;
    char *kind = NULL, *name = NULL;
    if (split_section(section, &kind, &name) < 0) {
        free(kind);
        free(name);
        file_fail(fc, ISD_E_INVALID_VALUE, NULL,
                  "section [%s]: expected [kind \"name\"], e.g. [model \"sd15\"]", section);
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_sections; i++) {
        struct isd_config_section *s = &cfg->sections[i];
        if (strcmp(s->kind, kind) == 0 && strcmp(s->name, name) == 0) {
            free(kind);
            free(name);
            return s;
        }
    }
    struct isd_config_section *grown =
        realloc(cfg->sections, sizeof *grown * (cfg->n_sections + 1));
    if (!grown) {
        free(kind);
        free(name);
        file_fail(fc, ISD_E_NOMEM, NULL, "out of memory");
        return NULL;
    }
    cfg->sections = grown;
    struct isd_config_section *s = &cfg->sections[cfg->n_sections++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->name = name;
    s->line = fc->line;
    return s;
}

static int file_entry(void *user, const char *section, const char *name, const char *value)
{
    struct file_ctx *fc = user;
    if (fc->failed)
        return 1; /* the first error stands; inih keeps calling until the reader stops */
    char where[64];
    snprintf(where, sizeof where, "line %d", fc->line);
    if (section[0] == '\0') {
        const struct option_def *o = find_option(name, strlen(name));
        if (!o || o->offset == F(config_file))
            return file_fail(fc, ISD_E_INVALID_VALUE, name, "unknown option '%s'", name), 0;
        size_t idx = (size_t)(o - options);
        if (fc->seen[idx])
            return file_fail(fc, ISD_E_INVALID_VALUE, name, "option '%s' is set twice", name), 0;
        fc->seen[idx] = 1;
        struct isd_error e;
        if (set_option(fc->cfg, o, value, where, &e) < 0) {
            /* set_option's message starts with "line N: "; keep the rest */
            const char *rest = strchr(e.message, ':');
            file_fail(fc, e.id, e.param, "%s", rest ? rest + 2 : e.message);
            return 0;
        }
        return 1;
    }
    struct isd_config_section *s = section_for(fc, section);
    if (!s)
        return 0;
    struct isd_config_entry *grown = realloc(s->entries, sizeof *grown * (s->n_entries + 1));
    if (!grown)
        return file_fail(fc, ISD_E_NOMEM, NULL, "out of memory"), 0;
    s->entries = grown;
    struct isd_config_entry *e = &s->entries[s->n_entries];
    e->key = strdup(name);
    e->value = trimmed_dup(value);
    e->line = fc->line;
    if (!e->key || !e->value) {
        free(e->key);
        free(e->value);
        return file_fail(fc, ISD_E_NOMEM, NULL, "out of memory"), 0;
    }
    for (char *p = e->key; *p; p++)
        if (*p == '-')
            *p = '_';
    s->n_entries++;
    return 1;
}

/* inih's reader hook: fgets that counts lines (so entries know where they were written),
 * refuses lines longer than inih's buffer instead of letting inih split them, creates sections
 * on their header line (so empty ones exist and carry that line), and stops after an error. */
static char *counting_reader(char *str, int num, void *stream)
{
    struct file_ctx *fc = stream;
    if (fc->failed)
        return NULL;
    char *r = fgets(str, num, fc->file);
    if (!r)
        return NULL;
    fc->line++;
    size_t n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(fc->file)) {
        file_fail(fc, ISD_E_INVALID_VALUE, NULL, "line too long (at most %d characters)", num - 2);
        return NULL;
    }
    const char *p = str;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (end) {
            char *section = strndup(p + 1, (size_t)(end - p - 1));
            if (!section) {
                file_fail(fc, ISD_E_NOMEM, NULL, "out of memory");
                return NULL;
            }
            char *t = trimmed_dup(section);
            free(section);
            if (t && t[0] && !section_for(fc, t)) {
                free(t);
                return NULL;
            }
            free(t);
        }
    }
    return r;
}

static int load_file(struct isd_config *cfg, const char *path, struct isd_error *err)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    if (!f)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "config", "config file %s: %s", path,
                           strerror(errno));
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return isd_err_set(err, ISD_E_INVALID_VALUE, "config", "config file %s: not a regular file",
                           path);
    }
    struct file_ctx fc = {.cfg = cfg, .err = err, .path = path, .file = f};
    isd_err_clear(err);
    int line = ini_parse_stream(counting_reader, &fc, file_entry, &fc);
    bool read_error = ferror(f);
    fclose(f);
    if (fc.failed)
        return -(int)err->id;
    if (read_error || line < 0)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "config", "config file %s: cannot read", path);
    if (line > 0)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "config",
                           "config file %s line %d: syntax error (expected name = value, "
                           "[kind \"name\"] or a comment)",
                           path, line);
    return 0;
}

static void env_name(const struct option_def *o, char *out, size_t cap)
{
    int n = snprintf(out, cap, "IMAGESD_");
    for (const char *p = o->name; *p && (size_t)n + 1 < cap; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

static const char *env_lookup(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Finds `--name VALUE` / `--name=VALUE` for one option in argv; NULL if absent. Every option
 * takes a value, so `--x VALUE` skips VALUE, exactly as apply_flags() reads the line. */
static const char *flag_lookup(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0 || a[0] != '-')
            break;
        bool inline_value = strchr(a, '=') != NULL;
        if (strncmp(a, "--", 2) == 0 && strncmp(a + 2, name, n) == 0) {
            if (a[2 + n] == '=')
                return a + 3 + n;
            if (a[2 + n] == '\0' && i + 1 < argc)
                return argv[i + 1];
        }
        if (!inline_value)
            i++; /* its value */
    }
    return NULL;
}

static int apply_flags(struct isd_config *cfg, int argc, char **argv, int *first_arg,
                       struct isd_error *err)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;
        if (strncmp(a, "--", 2) != 0)
            return isd_err_set(err, ISD_E_INVALID_VALUE, NULL, "unknown option '%s' (see --help)",
                               a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct option_def *o = find_option(name, len);
        if (!o)
            return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                               "unknown option '--%.*s' (see --help)", (int)len, name);
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc)
                return isd_err_set(err, ISD_E_INVALID_VALUE, o->name, "option '--%s' needs a value",
                                   o->name);
            value = argv[++i];
        }
        char where[64];
        snprintf(where, sizeof where, "flag --%s", o->name);
        int rc = set_option(cfg, o, value, where, err);
        if (rc < 0)
            return rc;
    }
    if (first_arg)
        *first_arg = i;
    return 0;
}

int isd_config_load(struct isd_config *cfg, int argc, char **argv, char **envp, int *first_arg,
                    struct isd_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (!options[i].def)
            continue;
        int rc = set_option(cfg, &options[i], options[i].def, "default", err);
        if (rc < 0)
            return rc;
    }
    const char *file = flag_lookup(argc, argv, "config");
    if (!file)
        file = env_lookup(envp, "IMAGESD_CONFIG");
    if (file && *file) {
        int rc = load_file(cfg, file, err);
        if (rc < 0)
            return rc;
        cfg->config_file = strdup(file);
        if (!cfg->config_file)
            return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char name[64];
        env_name(&options[i], name, sizeof name);
        const char *v = env_lookup(envp, name);
        if (!v || options[i].offset == F(config_file))
            continue;
        char where[96];
        snprintf(where, sizeof where, "environment %s", name);
        int rc = set_option(cfg, &options[i], v, where, err);
        if (rc < 0)
            return rc;
    }
    return apply_flags(cfg, argc, argv, first_arg, err);
}

void isd_config_release(struct isd_config *cfg)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].type == OPT_STRING || options[i].type == OPT_CHOICE)
            free(*str_field(cfg, &options[i]));
    for (size_t i = 0; i < cfg->n_sections; i++) {
        struct isd_config_section *s = &cfg->sections[i];
        for (size_t k = 0; k < s->n_entries; k++) {
            free(s->entries[k].key);
            free(s->entries[k].value);
        }
        free(s->entries);
        free(s->kind);
        free(s->name);
    }
    free(cfg->sections);
    memset(cfg, 0, sizeof *cfg);
}

int isd_config_help(struct isd_buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < N_OPTIONS && rc == 0; i++) {
        const struct option_def *o = &options[i];
        char env[64];
        env_name(o, env, sizeof env);
        rc = isd_buf_printf(out, "  --%-18s %s\n  %-20s env %s%s%s\n", o->name, o->help, "", env,
                            o->def ? ", default " : "", o->def ? o->def : "");
    }
    return rc;
}
