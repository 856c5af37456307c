#include "support/clipvocab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Training text: prompt-like English plus a little of everything the tokenizer tests use.
 * (clang-format miscounts the width of the RTL/emoji line and would keep splitting it.) */
/* clang-format off */
static const char corpus[] =
    "a photograph of an astronaut riding a horse on the moon, highly detailed, sharp focus, "
    "8k, trending on artstation. a painting of a fox sitting in a field at sunrise, oil on "
    "canvas, by a master painter. portrait of a young woman with red hair, soft light, "
    "cinematic lighting, depth of field, bokeh. a cute cat wearing a tiny hat, studio photo. "
    "a castle on a hill above the sea, fantasy landscape, matte painting, volumetric light. "
    "an old man reading a book by the fireplace, warm colors, realistic, detailed face. "
    "the quick brown fox jumps over the lazy dog. the city at night, neon lights, rain, "
    "reflections on the street, cyberpunk style, wide angle lens. a bowl of fruit on a wooden "
    "table, still life, natural light, watercolor. mountains covered in snow under a blue sky "
    "with white clouds, photorealistic, high resolution, masterpiece, best quality. "
    "a dog running on the beach, golden hour, motion blur. ultra realistic render of a robot "
    "in a forest, moss, ferns, morning mist, octane render, unreal engine. an illustration of "
    "a dragon flying over a village, epic, dramatic sky, concept art, digital painting. "
    "black and white photo of a street in paris, film grain, vintage. close up of a flower "
    "with water drops, macro photography. a spaceship landing in the desert, science fiction, "
    "matte painting. children playing in the park in spring, cherry blossoms, happy, bright. "
    "a cozy cabin in the woods in winter, smoke from the chimney, stars in the night sky. "
    "there is nothing either good or bad, but thinking makes it so. it was the best of times, "
    "it was the worst of times, it was the age of wisdom, it was the age of foolishness. "
    "we shall fight on the beaches, we shall fight on the landing grounds. to be or not to be, "
    "that is the question. all happy families are alike; every unhappy family is unhappy in "
    "its own way. call me ishmael. it is a truth universally acknowledged that a single man in "
    "possession of a good fortune must be in want of a wife. they're sure it's what we've "
    "said i'm sure you'll see he'd do it. don't can't won't isn't aren't wasn't. "
    "café crème brûlée naïve façade über straße señor niño élan déjà vu résumé piñata. "
    "東京 日本 猫 犬 山 川 花 東京タワー こんにちは 世界 서울 한국 привет мир γειά σου κόσμε "
    "مرحبا שלום 🐱 🐶 🌸 ✨ 🎨 🚀 ❤️ 👍 emoji. numbers 0 1 2 3 4 5 6 7 8 9 10 100 1024 2023 3.14 "
    "(masterpiece:1.2) [blurry] {detailed} <lora:style:0.8> best_quality, highres, 1girl, "
    "solo, looking at viewer, smile, outdoors, sky, day, tree, grass, water, ocean, beach.";
/* clang-format on */

#define N_BYTE_TOKENS 512
#define TOKEN_MAX     64 /* bytes of one synthetic token string */

enum cv_class { CV_OTHER = 0, CV_LETTER, CV_HIGH }; /* what the token's bytes are */

struct cv_token {
    uint32_t off, len;
    uint8_t cls; /* enum cv_class */
};

/* Growing vocabulary with a string -> id hash. */
struct cv_vocab {
    char *pool;
    size_t pool_len, pool_cap;
    struct cv_token *tok;
    int32_t n, cap;
    int32_t *slots; /* hash slots of ids, -1 empty */
    size_t n_slots;
    int32_t (*merges)[2];
    int32_t n_merges;
};

static uint64_t cv_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int32_t *cv_slot(const struct cv_vocab *v, const char *s, size_t n)
{
    size_t mask = v->n_slots - 1;
    for (size_t i = cv_hash(s, n) & mask;; i = (i + 1) & mask) {
        int32_t id = v->slots[i];
        if (id < 0 || (v->tok[id].len == n && memcmp(v->pool + v->tok[id].off, s, n) == 0))
            return &v->slots[i];
    }
}

static int32_t cv_find(const struct cv_vocab *v, const char *s, size_t n)
{
    return *cv_slot(v, s, n);
}

static const char *cv_str(const struct cv_vocab *v, int32_t id)
{
    return v->pool + v->tok[id].off;
}

/* Adds a new string (must not exist); returns its id or -1 on allocation failure. */
static int32_t cv_add(struct cv_vocab *v, const char *s, size_t n)
{
    if (v->n == v->cap)
        return -1;
    if (v->pool_len + n + 1 > v->pool_cap) {
        size_t cap = v->pool_cap * 2 + n + 1;
        char *p = realloc(v->pool, cap);
        if (!p)
            return -1;
        v->pool = p;
        v->pool_cap = cap;
    }
    memcpy(v->pool + v->pool_len, s, n);
    v->pool[v->pool_len + n] = '\0';
    v->tok[v->n] = (struct cv_token){(uint32_t)v->pool_len, (uint32_t)n, CV_OTHER};
    v->pool_len += n + 1;
    *cv_slot(v, s, n) = v->n;
    return v->n++;
}

static int cv_init(struct cv_vocab *v, int32_t cap)
{
    memset(v, 0, sizeof *v);
    v->cap = cap;
    v->n_slots = 1;
    while (v->n_slots < (size_t)cap * 2)
        v->n_slots <<= 1;
    v->tok = malloc((size_t)cap * sizeof *v->tok);
    v->slots = malloc(v->n_slots * sizeof *v->slots);
    v->merges = malloc((size_t)cap * sizeof *v->merges);
    v->pool_cap = (size_t)cap * 8;
    v->pool = malloc(v->pool_cap);
    if (!v->tok || !v->slots || !v->merges || !v->pool)
        return -1;
    memset(v->slots, 0xff, v->n_slots * sizeof *v->slots);
    return 0;
}

static void cv_release(struct cv_vocab *v)
{
    free(v->pool);
    free(v->tok);
    free(v->slots);
    free(v->merges);
}

static size_t utf8_put(uint32_t c, char *o)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    o[0] = (char)(0xc0 | c >> 6); /* byte characters are all below U+0800 */
    o[1] = (char)(0x80 | (c & 0x3f));
    return 2;
}

static int printable_byte(int b)
{
    return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

/* bytes_to_unicode() in its dict order: printable bytes first, then the others as U+0100.. */
static int add_byte_tokens(struct cv_vocab *v, int32_t byte_id[256], int32_t byte_end_id[256])
{
    int order[256], k = 0;
    uint32_t cp[256];
    for (int b = 0; b < 256; b++)
        if (printable_byte(b)) {
            order[k] = b;
            cp[k++] = (uint32_t)b;
        }
    int extra = 0;
    for (int b = 0; b < 256; b++)
        if (!printable_byte(b)) {
            order[k] = b;
            cp[k++] = 256u + (uint32_t)extra++;
        }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 256; i++) {
            char s[8];
            size_t n = utf8_put(cp[i], s);
            if (pass) {
                memcpy(s + n, "</w>", 4);
                n += 4;
            }
            int32_t id = cv_add(v, s, n);
            if (id < 0)
                return -1;
            int b = order[i];
            v->tok[id].cls = b >= 'a' && b <= 'z' ? CV_LETTER : b >= 0x80 ? CV_HIGH : CV_OTHER;
            (pass ? byte_end_id : byte_id)[b] = id;
        }
    }
    return 0;
}

/* ---- BPE training on the corpus --------------------------------------------------------- */

struct cv_word {
    int32_t *sym;
    int32_t n;
    int32_t count;
};

struct cv_words {
    struct cv_word *w;
    int32_t n, cap;
};

static int words_add(struct cv_words *ws, const unsigned char *s, size_t n, const int32_t *byte_id,
                     const int32_t *byte_end_id)
{
    for (int32_t i = 0; i < ws->n; i++) {
        struct cv_word *w = &ws->w[i];
        if ((size_t)w->n != n)
            continue;
        int same = 1;
        for (size_t j = 0; j < n && same; j++)
            same = w->sym[j] == (j + 1 == n ? byte_end_id[s[j]] : byte_id[s[j]]);
        if (same) {
            w->count++;
            return 0;
        }
    }
    if (ws->n == ws->cap) {
        int32_t cap = ws->cap ? ws->cap * 2 : 256;
        struct cv_word *p = realloc(ws->w, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        ws->w = p;
        ws->cap = cap;
    }
    struct cv_word *w = &ws->w[ws->n];
    w->sym = malloc(n * sizeof *w->sym);
    if (!w->sym)
        return -1;
    for (size_t j = 0; j < n; j++)
        w->sym[j] = j + 1 == n ? byte_end_id[s[j]] : byte_id[s[j]];
    w->n = (int32_t)n;
    w->count = 1;
    ws->n++;
    return 0;
}

/* A rough CLIP pre-tokenizer: runs of letters (ASCII or any non-ASCII byte), single digits,
 * runs of other non-space characters; lowercase. */
static int split_corpus(struct cv_words *ws, const int32_t *byte_id, const int32_t *byte_end_id)
{
    const unsigned char *s = (const unsigned char *)corpus;
    size_t n = sizeof corpus - 1, i = 0;
    unsigned char word[256];
    while (i < n) {
        unsigned char c = s[i];
        if (c == ' ') {
            i++;
            continue;
        }
        size_t k = 0;
        int letter = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
        if (letter || c >= 0x80) {
            while (i < n && k < sizeof word &&
                   (s[i] >= 0x80 || ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z')))
                word[k++] = (unsigned char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]), i++;
        } else if (c >= '0' && c <= '9') {
            word[k++] = c, i++;
        } else {
            while (i < n && k < sizeof word && s[i] != ' ' && s[i] < 0x80 &&
                   !((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z') && !(s[i] >= '0' && s[i] <= '9'))
                word[k++] = s[i++];
        }
        if (words_add(ws, word, k, byte_id, byte_end_id) < 0)
            return -1;
    }
    return 0;
}

struct cv_pair {
    int32_t a, b;
    int64_t freq;
};

/* One greedy step: the most frequent adjacent pair whose concatenation is new (ties: smaller
 * ids). Returns 0 and the pair, or -1 when none is left. */
static int best_pair(const struct cv_vocab *v, const struct cv_words *ws, struct cv_pair *table,
                     size_t n_table, struct cv_pair *best)
{
    size_t mask = n_table - 1;
    for (size_t i = 0; i < n_table; i++)
        table[i].freq = 0;
    for (int32_t i = 0; i < ws->n; i++) {
        const struct cv_word *w = &ws->w[i];
        for (int32_t j = 0; j + 1 < w->n; j++) {
            uint64_t key = (uint64_t)(uint32_t)w->sym[j] << 32 | (uint32_t)w->sym[j + 1];
            size_t h = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & mask;
            while (table[h].freq && (table[h].a != w->sym[j] || table[h].b != w->sym[j + 1]))
                h = (h + 1) & mask;
            table[h].a = w->sym[j];
            table[h].b = w->sym[j + 1];
            table[h].freq += w->count;
        }
    }
    int found = 0;
    for (size_t i = 0; i < n_table; i++) {
        const struct cv_pair *p = &table[i];
        if (!p->freq)
            continue;
        if (found &&
            (p->freq < best->freq ||
             (p->freq == best->freq && (p->a > best->a || (p->a == best->a && p->b > best->b)))))
            continue;
        char s[2 * TOKEN_MAX];
        size_t la = v->tok[p->a].len, lb = v->tok[p->b].len;
        if (la + lb > TOKEN_MAX)
            continue;
        memcpy(s, cv_str(v, p->a), la);
        memcpy(s + la, cv_str(v, p->b), lb);
        if (cv_find(v, s, la + lb) >= 0)
            continue;
        *best = *p;
        found = 1;
    }
    return found ? 0 : -1;
}

static void apply_merge(struct cv_words *ws, int32_t a, int32_t b, int32_t ab)
{
    for (int32_t i = 0; i < ws->n; i++) {
        struct cv_word *w = &ws->w[i];
        int32_t k = 0;
        for (int32_t j = 0; j < w->n; j++) {
            if (j + 1 < w->n && w->sym[j] == a && w->sym[j + 1] == b) {
                w->sym[k++] = ab;
                j++;
            } else {
                w->sym[k++] = w->sym[j];
            }
        }
        w->n = k;
    }
}

static int32_t merge(struct cv_vocab *v, int32_t a, int32_t b)
{
    char s[2 * TOKEN_MAX];
    size_t la = v->tok[a].len, lb = v->tok[b].len;
    memcpy(s, cv_str(v, a), la);
    memcpy(s + la, cv_str(v, b), lb);
    int32_t ab = cv_add(v, s, la + lb);
    if (ab >= 0) {
        v->tok[ab].cls = v->tok[a].cls == v->tok[b].cls ? v->tok[a].cls : CV_OTHER;
        v->merges[v->n_merges][0] = a;
        v->merges[v->n_merges][1] = b;
        v->n_merges++;
    }
    return ab;
}

static int train(struct cv_vocab *v, int32_t target, const int32_t *byte_id,
                 const int32_t *byte_end_id)
{
    struct cv_words ws = {0};
    int rc = split_corpus(&ws, byte_id, byte_end_id);
    size_t n_table = 1 << 15; /* > 2x the corpus's symbols */
    struct cv_pair *table = rc == 0 ? malloc(n_table * sizeof *table) : NULL;
    if (!table)
        rc = -1;
    struct cv_pair best = {0};
    while (rc == 0 && v->n_merges < target && best_pair(v, &ws, table, n_table, &best) == 0) {
        int32_t ab = merge(v, best.a, best.b);
        if (ab < 0)
            rc = -1;
        else
            apply_merge(&ws, best.a, best.b, ab);
    }
    for (int32_t i = 0; i < ws.n; i++)
        free(ws.w[i].sym);
    free(ws.w);
    free(table);
    return rc;
}

/* ---- synthetic fill --------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A number in [0, n), biased towards small ones (u^2). */
static int32_t pick(uint64_t *rng, int32_t n)
{
    double u = (double)(splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0);
    int32_t i = (int32_t)(u * u * n);
    return i < n ? i : n - 1;
}

static int ends_word(const struct cv_vocab *v, int32_t id)
{
    const struct cv_token *t = &v->tok[id];
    return t->len >= 4 && memcmp(v->pool + t->off + t->len - 4, "</w>", 4) == 0;
}

/* Ids of the tokens of each class, in id order (short, early tokens first). */
struct cv_classes {
    int32_t *ids[3];
    int32_t n[3];
};

static void classes_add(struct cv_classes *c, const struct cv_vocab *v, int32_t id)
{
    int k = v->tok[id].cls;
    c->ids[k][c->n[k]++] = id;
}

/* Merges of existing tokens until `target`: 60% between lowercase-letter tokens, 20% between
 * tokens of non-ASCII bytes (pieces of UTF-8 characters), 20% between any tokens; the left
 * side never ends a word, the result is new and at most 24 bytes. */
static int fill(struct cv_vocab *v, int32_t target, uint64_t seed)
{
    uint64_t rng = seed ^ 0x636c697076636162ull; /* "clipvcab" */
    struct cv_classes cls = {0};
    int rc = 0;
    for (int k = 0; k < 3; k++)
        if (!(cls.ids[k] = malloc((size_t)v->cap * sizeof(int32_t))))
            rc = -1;
    for (int32_t id = 0; rc == 0 && id < v->n; id++)
        classes_add(&cls, v, id);
    long misses = 0;
    while (rc == 0 && v->n_merges < target) {
        uint64_t r = splitmix64(&rng) % 10;
        int k = r < 6 ? CV_LETTER : r < 8 ? CV_HIGH : -1;
        int32_t a, b;
        if (k >= 0) {
            a = cls.ids[k][pick(&rng, cls.n[k])];
            b = cls.ids[k][pick(&rng, cls.n[k])];
        } else {
            a = pick(&rng, v->n);
            b = pick(&rng, v->n);
        }
        char s[2 * TOKEN_MAX];
        size_t la = v->tok[a].len, lb = v->tok[b].len;
        int usable = !ends_word(v, a) && la + lb <= 24;
        if (usable) {
            memcpy(s, cv_str(v, a), la);
            memcpy(s + la, cv_str(v, b), lb);
            usable = cv_find(v, s, la + lb) < 0;
        }
        if (!usable) {
            if (++misses > 100000000L)
                rc = -1; /* cannot happen for the presets; never loop forever */
            continue;
        }
        int32_t ab = merge(v, a, b);
        if (ab < 0)
            rc = -1;
        else
            classes_add(&cls, v, ab);
    }
    for (int k = 0; k < 3; k++)
        free(cls.ids[k]);
    return rc;
}

/* ---- output ----------------------------------------------------------------------------- */

static int write_json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            fputc('\\', f);
        fputc(s[i], f);
    }
    return fputc('"', f) == EOF ? -1 : 0;
}

static int write_files(const struct cv_vocab *v, const char *dir, struct isd_eng_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: %s", path, strerror(errno));
    fputc('{', f);
    for (int32_t id = 0; id < v->n; id++) {
        if (id)
            fputs(", ", f);
        write_json_string(f, cv_str(v, id), v->tok[id].len);
        fprintf(f, ": %d", (int)id);
    }
    fputs("}\n", f);
    if (ferror(f) | fclose(f))
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: write error", path);

    snprintf(path, sizeof path, "%s/merges.txt", dir);
    f = fopen(path, "wb");
    if (!f)
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: %s", path, strerror(errno));
    fputs("#version: 0.2\n", f);
    for (int32_t i = 0; i < v->n_merges; i++)
        fprintf(f, "%s %s\n", cv_str(v, v->merges[i][0]), cv_str(v, v->merges[i][1]));
    if (ferror(f) | fclose(f))
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: write error", path);
    return 0;
}

int isd_cv_vocab_size(enum isd_cv_size size)
{
    return size == ISD_CV_FULL ? 49408 : size == ISD_CV_SMALL ? 2048 : 0;
}

int isd_cv_write(const char *dir, enum isd_cv_size size, uint64_t seed, struct isd_eng_error *err)
{
    int32_t total = isd_cv_vocab_size(size);
    if (total == 0)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "clipvocab: unknown size preset %d", (int)size);
    int32_t n_merges = total - N_BYTE_TOKENS - 2;
    struct cv_vocab v;
    int32_t byte_id[256], byte_end_id[256];
    int rc = 0;
    if (cv_init(&v, total) < 0 || add_byte_tokens(&v, byte_id, byte_end_id) < 0 ||
        train(&v, n_merges, byte_id, byte_end_id) < 0 || fill(&v, n_merges, seed) < 0 ||
        cv_add(&v, "<|startoftext|>", 15) < 0 || cv_add(&v, "<|endoftext|>", 13) < 0)
        rc = isd_eng_fail(err, ISD_ENG_ENOMEM, "clipvocab: out of memory");
    if (rc == 0)
        rc = write_files(&v, dir, err);
    cv_release(&v);
    return rc;
}
