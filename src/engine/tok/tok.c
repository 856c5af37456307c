/*
 * CLIP BPE tokenizer (see tok.h): loading vocab.json/merges.txt, the PCRE2 pre-tokenizer and
 * the byte-pair merge loop.
 *
 * BPE: simple_tokenizer.bpe repeatedly takes the adjacent pair of lowest merge rank and merges
 * all its occurrences left to right, then recomputes the pairs. This does the same in
 * O(n log n) with a heap of (rank, position) candidates: the candidates of one rank are
 * merged in position order, pairs created meanwhile wait in `pending` until that rank is
 * done, and stale candidates are recognised by their symbol ids.
 */
#include "engine/tok/tok.h"
#include "engine/tok/tok_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CLIP pre-tokenizer on cleaned, lowercased text. Python's pattern ends with
 * [^\s\p{L}\p{N}]+; here \s is a plain space, because the cleaned text has no other
 * whitespace (PCRE2 would also take U+180E as \s, which Python's regex does not), and U+0345
 * is excluded because Python's regex, with IGNORECASE, matches it with neither class (it
 * case-folds to a letter) and so skips it. */
static const char clip_pattern[] = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|"
                                   "[\\p{L}]+|[\\p{N}]|[^ \\p{L}\\p{N}\\x{345}]+";

static const char bos_token[] = "<|startoftext|>";
static const char eos_token[] = "<|endoftext|>";

struct vocab_slot {
    uint32_t off; /* into pool */
    uint32_t len;
    int32_t id; /* -1: empty */
};

struct merge_slot {
    uint64_t key; /* left id << 32 | right id; UINT64_MAX: empty */
    int32_t rank;
    int32_t merged;
};

struct isd_tok {
    char *pool; /* vocabulary strings, each NUL-terminated */
    size_t pool_len;
    struct vocab_slot *vocab; /* open addressing, vocab_cap slots */
    size_t vocab_cap;
    uint32_t *id_off; /* [n_ids] pool offset of each id's string, UINT32_MAX if unused */
    uint32_t *id_len;
    int32_t n_ids;             /* max id + 1 */
    struct merge_slot *merges; /* open addressing, merge_cap slots */
    size_t merge_cap;
    int32_t byte_id[256];     /* byte character */
    int32_t byte_end_id[256]; /* byte character + "</w>" */
    int32_t bos, eos;
    pcre2_code *re;
};

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* ---- vocabulary hash -------------------------------------------------------------------- */

static struct vocab_slot *vocab_find(const struct isd_tok *t, const char *s, size_t len)
{
    size_t mask = t->vocab_cap - 1;
    for (size_t i = fnv1a(s, len, 0xcbf29ce484222325ull) & mask;; i = (i + 1) & mask) {
        struct vocab_slot *v = &t->vocab[i];
        if (v->id < 0 || (v->len == len && memcmp(t->pool + v->off, s, len) == 0))
            return v;
    }
}

int32_t isd_tok_id(const struct isd_tok *tok, const char *token, size_t len)
{
    return vocab_find(tok, token, len)->id;
}

const char *isd_tok_token(const struct isd_tok *tok, int32_t id, size_t *len)
{
    if (id < 0 || id >= tok->n_ids || tok->id_off[id] == UINT32_MAX)
        return NULL;
    if (len)
        *len = tok->id_len[id];
    return tok->pool + tok->id_off[id];
}

/* ---- merges hash ------------------------------------------------------------------------ */

static struct merge_slot *merge_find(const struct isd_tok *t, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t mask = t->merge_cap - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask)
        if (t->merges[i].key == key || t->merges[i].key == UINT64_MAX)
            return &t->merges[i];
}

/* ---- loading ---------------------------------------------------------------------------- */

static int read_file(const char *path, char **data, size_t *len, struct isd_eng_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: %s", path, strerror(errno));
    char *buf = malloc(ISD_TOK_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, ISD_TOK_FILE_MAX + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: read error", path);
    }
    if (n > ISD_TOK_FILE_MAX) {
        free(buf);
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: larger than %d bytes", path,
                            ISD_TOK_FILE_MAX);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

static int load_vocab(struct isd_tok *t, const char *path, struct isd_eng_error *err)
{
    char *text;
    size_t text_len;
    int rc = read_file(path, &text, &text_len, err);
    if (rc < 0)
        return rc;
    json_error_t je;
    json_t *root = json_loadb(text, text_len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!root)
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s:%d:%d: %s", path, je.line, je.column,
                            je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: not a JSON object", path);
    }
    size_t count = json_object_size(root), pool = 0;
    const char *key;
    json_t *value;
    rc = 0;
    json_object_foreach(root, key, value)
    {
        json_int_t id = json_is_integer(value) ? json_integer_value(value) : -1;
        if (id < 0 || id >= ISD_TOK_VOCAB_MAX) {
            rc = isd_eng_fail(err, ISD_ENG_EFORMAT,
                              "%s: \"%.64s\": id must be an integer in "
                              "[0, %d)",
                              path, key, ISD_TOK_VOCAB_MAX);
            break;
        }
        if (id + 1 > t->n_ids)
            t->n_ids = (int32_t)id + 1;
        pool += strlen(key) + 1;
    }
    if (rc == 0 && count == 0)
        rc = isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: empty vocabulary", path);
    if (rc == 0) {
        t->vocab_cap = pow2_at_least(count * 2);
        t->vocab = malloc(t->vocab_cap * sizeof *t->vocab);
        t->pool = malloc(pool ? pool : 1);
        t->id_off = malloc((size_t)t->n_ids * sizeof *t->id_off);
        t->id_len = malloc((size_t)t->n_ids * sizeof *t->id_len);
        if (!t->vocab || !t->pool || !t->id_off || !t->id_len)
            rc = isd_eng_fail(err, ISD_ENG_ENOMEM, "%s: out of memory", path);
    }
    if (rc == 0) {
        for (size_t i = 0; i < t->vocab_cap; i++)
            t->vocab[i].id = -1;
        memset(t->id_off, 0xff, (size_t)t->n_ids * sizeof *t->id_off);
        json_object_foreach(root, key, value)
        {
            int32_t id = (int32_t)json_integer_value(value);
            size_t len = strlen(key);
            if (t->id_off[id] != UINT32_MAX) {
                rc = isd_eng_fail(err, ISD_ENG_EFORMAT,
                                  "%s: id %d is given to \"%.64s\" and "
                                  "\"%.64s\"",
                                  path, id, t->pool + t->id_off[id], key);
                break;
            }
            struct vocab_slot *v = vocab_find(t, key, len);
            v->off = (uint32_t)t->pool_len;
            v->len = (uint32_t)len;
            v->id = id;
            t->id_off[id] = v->off;
            t->id_len[id] = v->len;
            memcpy(t->pool + t->pool_len, key, len + 1);
            t->pool_len += len + 1;
        }
    }
    json_decref(root);
    return rc;
}

/* openai/CLIP bytes_to_unicode(): the code point that stands for byte b */
static uint32_t byte_char(int b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
        return (uint32_t)b;
    int n = 0; /* bytes below b that are not printable get 256, 257, ... in order */
    for (int k = 0; k < b; k++)
        if (!((k >= '!' && k <= '~') || (k >= 0xa1 && k <= 0xac) || (k >= 0xae && k <= 0xff)))
            n++;
    return 256u + (uint32_t)n;
}

static int find_base_tokens(struct isd_tok *t, const char *path, struct isd_eng_error *err)
{
    for (int b = 0; b < 256; b++) {
        char s[16];
        size_t n = isd_tok_utf8_put(byte_char(b), s);
        t->byte_id[b] = isd_tok_id(t, s, n);
        memcpy(s + n, "</w>", 4);
        t->byte_end_id[b] = isd_tok_id(t, s, n + 4);
        if (t->byte_id[b] < 0 || t->byte_end_id[b] < 0)
            return isd_eng_fail(err, ISD_ENG_EFORMAT,
                                "%s: no token for byte 0x%02x (\"%.*s\" and \"%.*s\" needed)", path,
                                b, (int)n, s, (int)n + 4, s);
    }
    t->bos = isd_tok_id(t, bos_token, sizeof bos_token - 1);
    t->eos = isd_tok_id(t, eos_token, sizeof eos_token - 1);
    if (t->bos < 0 || t->eos < 0)
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: lacks %s or %s", path, bos_token, eos_token);
    return 0;
}

/* Parses one merges.txt line "a b" (a, b non-empty, one space) into ids. */
static int merge_line(struct isd_tok *t, const char *line, size_t len, const char *path,
                      size_t lineno, int32_t rank, struct isd_eng_error *err)
{
    const char *sp = memchr(line, ' ', len);
    if (!sp || sp == line || sp == line + len - 1 ||
        memchr(sp + 1, ' ', len - (size_t)(sp + 1 - line)) || memchr(line, '\t', len))
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s:%zu: expected \"a b\", got \"%.*s\"", path,
                            lineno, (int)(len > 64 ? 64 : len), line);
    size_t la = (size_t)(sp - line), lb = len - la - 1;
    char joined[512];
    if (la + lb >= sizeof joined)
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s:%zu: token too long", path, lineno);
    int32_t a = isd_tok_id(t, line, la), b = isd_tok_id(t, sp + 1, lb);
    memcpy(joined, line, la);
    memcpy(joined + la, sp + 1, lb);
    int32_t ab = isd_tok_id(t, joined, la + lb);
    if (a < 0 || b < 0 || ab < 0) {
        const char *missing = a < 0 ? line : b < 0 ? sp + 1 : joined;
        size_t n = a < 0 ? la : b < 0 ? lb : la + lb;
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s:%zu: \"%.*s\" is not in the vocabulary", path,
                            lineno, (int)n, missing);
    }
    struct merge_slot *m = merge_find(t, a, b);
    if (m->key != UINT64_MAX)
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s:%zu: duplicate merge \"%.*s\" (line %d)",
                            path, lineno, (int)len, line, m->rank + 2);
    m->key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    m->rank = rank;
    m->merged = ab;
    return 0;
}

static int load_merges(struct isd_tok *t, const char *path, struct isd_eng_error *err)
{
    char *text;
    size_t len;
    int rc = read_file(path, &text, &len, err);
    if (rc < 0)
        return rc;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    t->merge_cap = pow2_at_least(2 * (lines < ISD_TOK_MERGES_MAX ? lines : ISD_TOK_MERGES_MAX));
    t->merges = malloc(t->merge_cap * sizeof *t->merges);
    if (!t->merges) {
        free(text);
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < t->merge_cap; i++)
        t->merges[i].key = UINT64_MAX;
    size_t end = len; /* trailing newlines and spaces end the file, as HF's strip() */
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == ' '))
        end--;
    size_t pos = 0, lineno = 0;
    int32_t rank = 0;
    while (pos < end && rank < ISD_TOK_MERGES_MAX) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', end - pos);
        size_t n = nl ? (size_t)(nl - line) : end - pos;
        pos += n + 1;
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (memchr(line, '\0', n)) {
            rc = isd_eng_fail(err, ISD_ENG_EFORMAT, "%s:%zu: NUL byte", path, lineno);
            break;
        }
        if (lineno == 1) {
            if (n < 8 || memcmp(line, "#version", 8) != 0) {
                rc = isd_eng_fail(err, ISD_ENG_EFORMAT, "%s:1: expected a \"#version\" header line",
                                  path);
                break;
            }
            continue;
        }
        rc = merge_line(t, line, n, path, lineno, rank++, err);
        if (rc < 0)
            break;
    }
    if (rc == 0 && lineno == 0)
        rc = isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: empty file", path);
    free(text);
    return rc;
}

int isd_tok_load(struct isd_tok **out, const char *vocab_json, const char *merges_txt,
                 struct isd_eng_error *err)
{
    *out = NULL;
    struct isd_tok *t = calloc(1, sizeof *t);
    if (!t)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "tokenizer: out of memory");
    int rc = load_vocab(t, vocab_json, err);
    if (rc == 0)
        rc = find_base_tokens(t, vocab_json, err);
    if (rc == 0)
        rc = load_merges(t, merges_txt, err);
    if (rc == 0) {
        int code;
        PCRE2_SIZE offset;
        t->re = pcre2_compile((PCRE2_SPTR)clip_pattern, PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &code, &offset, NULL);
        if (!t->re)
            rc = isd_eng_fail(err, ISD_ENG_EUNSUPPORTED,
                              "tokenizer: PCRE2 refused the pattern (error %d at %zu)", code,
                              (size_t)offset);
    }
    if (rc < 0) {
        isd_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void isd_tok_free(struct isd_tok *tok)
{
    if (!tok)
        return;
    pcre2_code_free(tok->re);
    free(tok->pool);
    free(tok->vocab);
    free(tok->id_off);
    free(tok->id_len);
    free(tok->merges);
    free(tok);
}

int32_t isd_tok_bos(const struct isd_tok *tok)
{
    return tok->bos;
}

int32_t isd_tok_eos(const struct isd_tok *tok)
{
    return tok->eos;
}

int32_t isd_tok_vocab_size(const struct isd_tok *tok)
{
    return tok->n_ids;
}

/* ---- encoding --------------------------------------------------------------------------- */

struct cand {
    int32_t rank, pos; /* heap order */
    int32_t left, right, merged;
};

struct bpe_work {
    size_t cap; /* symbols the arrays below hold */
    int32_t *sym, *next, *prev;
    struct cand *heap, *pending; /* 3 cap and 2 cap entries */
    size_t n_heap, n_pending;
};

struct emitter {
    int32_t *ids;
    size_t cap, n;
};

static void emit(struct emitter *e, int32_t id)
{
    if (e->n < e->cap)
        e->ids[e->n] = id;
    e->n++;
}

static int cand_less(const struct cand *a, const struct cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(struct bpe_work *w, struct cand c)
{
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[parent]))
            break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = c;
}

static struct cand heap_pop(struct bpe_work *w)
{
    struct cand top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && cand_less(&w->heap[child + 1], &w->heap[child]))
            child++;
        if (!cand_less(&w->heap[child], &last))
            break;
        w->heap[i] = w->heap[child];
        i = child;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

/* Makes a candidate for the pair starting at node `pos`, if the pair has a merge. */
static int make_cand(const struct isd_tok *t, const struct bpe_work *w, int32_t pos, struct cand *c)
{
    int32_t nx = w->next[pos];
    if (nx < 0)
        return 0;
    const struct merge_slot *m = merge_find(t, w->sym[pos], w->sym[nx]);
    if (m->key == UINT64_MAX)
        return 0;
    *c = (struct cand){m->rank, pos, w->sym[pos], w->sym[nx], m->merged};
    return 1;
}

static int work_reserve(struct bpe_work *w, size_t n)
{
    if (n <= w->cap)
        return 0;
    size_t cap = pow2_at_least(n);
    int32_t *sym = realloc(w->sym, cap * sizeof *sym);
    if (sym)
        w->sym = sym;
    int32_t *next = realloc(w->next, cap * sizeof *next);
    if (next)
        w->next = next;
    int32_t *prev = realloc(w->prev, cap * sizeof *prev);
    if (prev)
        w->prev = prev;
    struct cand *heap = realloc(w->heap, 3 * cap * sizeof *heap);
    if (heap)
        w->heap = heap;
    struct cand *pending = realloc(w->pending, 2 * cap * sizeof *pending);
    if (pending)
        w->pending = pending;
    if (!sym || !next || !prev || !heap || !pending)
        return -1;
    w->cap = cap;
    return 0;
}

static void work_release(struct bpe_work *w)
{
    free(w->sym);
    free(w->next);
    free(w->prev);
    free(w->heap);
    free(w->pending);
}

/* BPE of one pre-tokenized piece (its UTF-8 bytes), emitting the token ids. */
static void bpe_piece(const struct isd_tok *t, struct bpe_work *w, const unsigned char *b,
                      size_t len, struct emitter *out)
{
    int32_t n = (int32_t)len;
    for (int32_t i = 0; i < n; i++) {
        w->sym[i] = i == n - 1 ? t->byte_end_id[b[i]] : t->byte_id[b[i]];
        w->prev[i] = i - 1;
        w->next[i] = i + 1 < n ? i + 1 : -1;
    }
    w->n_heap = 0;
    struct cand c;
    for (int32_t i = 0; i + 1 < n; i++)
        if (make_cand(t, w, i, &c))
            heap_push(w, c);
    while (w->n_heap > 0) {
        int32_t rank = w->heap[0].rank;
        w->n_pending = 0;
        while (w->n_heap > 0 && w->heap[0].rank == rank) {
            c = heap_pop(w);
            int32_t p = c.pos, q = w->next[p];
            if (w->sym[p] != c.left || q < 0 || w->sym[q] != c.right)
                continue; /* stale: one side was merged since */
            w->sym[p] = c.merged;
            w->sym[q] = -1;
            w->next[p] = w->next[q];
            if (w->next[q] >= 0)
                w->prev[w->next[q]] = p;
            struct cand nc;
            if (w->prev[p] >= 0 && make_cand(t, w, w->prev[p], &nc))
                w->pending[w->n_pending++] = nc;
            if (make_cand(t, w, p, &nc))
                w->pending[w->n_pending++] = nc;
        }
        for (size_t i = 0; i < w->n_pending; i++)
            heap_push(w, w->pending[i]);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i])
        emit(out, w->sym[i]);
}

int isd_tok_encode(const struct isd_tok *tok, const char *text, size_t len, int32_t *ids,
                   size_t cap, size_t *n, struct isd_eng_error *err)
{
    *n = 0;
    if (len > ISD_TOK_TEXT_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "prompt: %zu bytes (at most %d)", len,
                            ISD_TOK_TEXT_MAX);
    uint32_t *cps = malloc((len + 1) * sizeof *cps);
    uint32_t *clean = malloc((2 * len + 1) * sizeof *clean);
    char *utf8 = NULL;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(tok->re, NULL);
    struct bpe_work work = {0};
    int rc = 0;
    if (!cps || !clean || !md) {
        rc = isd_eng_fail(err, ISD_ENG_ENOMEM, "prompt: out of memory");
        goto out;
    }
    size_t m;
    size_t bad = isd_tok_utf8_decode(text, len, cps, &m);
    if (bad) {
        rc = isd_eng_fail(err, ISD_ENG_EINVAL, "prompt: invalid UTF-8 at byte %zu", bad - 1);
        goto out;
    }
    size_t k = isd_tok_clean(cps, m, clean);
    utf8 = malloc(4 * k + 1);
    if (!utf8) {
        rc = isd_eng_fail(err, ISD_ENG_ENOMEM, "prompt: out of memory");
        goto out;
    }
    size_t ulen = 0;
    for (size_t i = 0; i < k; i++)
        ulen += isd_tok_utf8_put(clean[i], utf8 + ulen);
    struct emitter em = {ids, cap, 0};
    PCRE2_SIZE offset = 0;
    while (offset < ulen) {
        int mrc =
            pcre2_match(tok->re, (PCRE2_SPTR)utf8, ulen, offset, PCRE2_NO_UTF_CHECK, md, NULL);
        if (mrc == PCRE2_ERROR_NOMATCH)
            break;
        if (mrc < 0) {
            rc = isd_eng_fail(err, ISD_ENG_EINVAL, "prompt: pattern matching failed (%d)", mrc);
            goto out;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        const unsigned char *piece = (const unsigned char *)utf8 + ov[0];
        size_t plen = ov[1] - ov[0];
        offset = ov[1];
        if (plen == sizeof bos_token - 1 && memcmp(piece, bos_token, plen) == 0) {
            emit(&em, tok->bos);
        } else if (plen == sizeof eos_token - 1 && memcmp(piece, eos_token, plen) == 0) {
            emit(&em, tok->eos);
        } else if (plen > 0) {
            if (work_reserve(&work, plen) < 0) {
                rc = isd_eng_fail(err, ISD_ENG_ENOMEM, "prompt: out of memory");
                goto out;
            }
            bpe_piece(tok, &work, piece, plen, &em);
        } else {
            offset++; /* cannot happen with this pattern; never loop forever */
        }
    }
    *n = em.n;
out:
    work_release(&work);
    pcre2_match_data_free(md);
    free(utf8);
    free(clean);
    free(cps);
    return rc;
}

void isd_tok_sequence(const struct isd_tok *tok, const int32_t *ids, size_t n, int32_t pad_id,
                      int32_t out[ISD_TOK_CONTEXT])
{
    if (pad_id == ISD_TOK_PAD_EOS)
        pad_id = tok->eos;
    size_t k = 0;
    out[k++] = tok->bos;
    for (size_t i = 0; i < n && i < ISD_TOK_CHUNK; i++)
        out[k++] = ids[i];
    out[k++] = tok->eos;
    while (k < ISD_TOK_CONTEXT)
        out[k++] = pad_id;
}

int isd_tok_encode_padded(const struct isd_tok *tok, const char *text, size_t len, int32_t pad_id,
                          int32_t out[ISD_TOK_CONTEXT], size_t *n_tokens, struct isd_eng_error *err)
{
    int32_t ids[ISD_TOK_CHUNK];
    size_t n;
    int rc = isd_tok_encode(tok, text, len, ids, ISD_TOK_CHUNK, &n, err);
    if (rc < 0)
        return rc;
    if (n_tokens)
        *n_tokens = n;
    isd_tok_sequence(tok, ids, n < ISD_TOK_CHUNK ? n : ISD_TOK_CHUNK, pad_id, out);
    return 0;
}

size_t isd_tok_chunk_count(size_t n)
{
    return n == 0 ? 1 : (n + ISD_TOK_CHUNK - 1) / ISD_TOK_CHUNK;
}
