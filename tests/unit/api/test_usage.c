/*
 * api usage (§9): the gpt-image-1 output table, the gpt-image-2 formula against every value
 * the contract lists, input image tokens (§9.4), whole-request usage with n and partials, and
 * the properties of the text-token estimate.
 */
#include "support/test.h"

#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct isd_profile *prof(const char *name)
{
    const struct isd_profile *p = isd_api_profile_by_name(name);
    assert_non_null(p);
    return p;
}

/* §9.1, the same for gpt-image-1, -1-mini and -1.5: columns 1024x1024, 1024x1536, 1536x1024. */
static void gpt_image_1_table(void **state)
{
    (void)state;
    static const struct {
        const char *quality;
        long square, portrait, landscape;
    } table[] = {
        {"low", 272, 408, 400},
        {"medium", 1056, 1584, 1568},
        {"high", 4160, 6240, 6208},
    };
    static const char *const models[] = {"gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"};
    for (size_t m = 0; m < 3; m++) {
        const struct isd_profile *p = prof(models[m]);
        for (size_t q = 0; q < 3; q++) {
            assert_int_equal(isd_api_image_output_tokens(p, table[q].quality, 1024, 1024),
                             table[q].square);
            assert_int_equal(isd_api_image_output_tokens(p, table[q].quality, 1024, 1536),
                             table[q].portrait);
            assert_int_equal(isd_api_image_output_tokens(p, table[q].quality, 1536, 1024),
                             table[q].landscape);
        }
    }
}

/* §9.2: every value of the contract's table, the forum calculator figures and the recorded
 * 1254x1254 medium → 2058. */
static void gpt_image_2_formula(void **state)
{
    (void)state;
    static const struct {
        int w, h;
        long low, medium, high; /* 0 = not given */
    } table[] = {
        {1024, 1024, 196, 1756, 7024},  {1536, 1024, 158, 1372, 5488},
        {1024, 1536, 158, 1372, 5488},  {1254, 1254, 229, 2058, 8232},
        {2048, 2048, 397, 3568, 14272}, {2048, 1152, 157, 1413, 5650},
        {3840, 2160, 371, 3336, 13342}, {2160, 3840, 371, 3336, 13342},
        {1792, 1024, 0, 0, 5063},       {3584, 2048, 0, 0, 12329},
    };
    const struct isd_profile *p = prof("gpt-image-2");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *q[3] = {"low", "medium", "high"};
        long want[3] = {table[i].low, table[i].medium, table[i].high};
        for (int k = 0; k < 3; k++) {
            if (!want[k])
                continue;
            long got = isd_api_image_output_tokens(p, q[k], table[i].w, table[i].h);
            if (got != want[k]) {
                print_error("%dx%d %s: %ld, expected %ld\n", table[i].w, table[i].h, q[k], got,
                            want[k]);
                fail();
            }
        }
    }
}

/* Output tokens grow with quality and pixels, never reach 0 for a real size, and DALL·E has
 * none. */
static void output_tokens_properties(void **state)
{
    (void)state;
    const struct isd_profile *g2 = prof("gpt-image-2");
    for (int w = 256; w <= 3840; w += 16 * 7) {
        for (int h = 256; h <= 3840; h += 16 * 11) {
            long lo = isd_api_image_output_tokens(g2, "low", w, h);
            long me = isd_api_image_output_tokens(g2, "medium", w, h);
            long hi = isd_api_image_output_tokens(g2, "high", w, h);
            assert_true(lo >= 0 && lo <= me && me <= hi);
            assert_int_equal(isd_api_image_output_tokens(g2, "low", h, w), lo); /* symmetric */
        }
    }
    assert_true(isd_api_image_output_tokens(g2, "high", 2048, 2048) >
                isd_api_image_output_tokens(g2, "high", 1024, 1024));
    static const char *const dalle[] = {"dall-e-2", "dall-e-3"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(isd_api_image_output_tokens(prof(dalle[i]), "standard", 1024, 1024), 0);
        assert_int_equal(isd_api_image_output_tokens(prof(dalle[i]), "hd", 1024, 1792), 0);
    }
}

/* §9.4: 65 + 129 per 512-px tile after fitting in 2048² and scaling the shortest side to 512;
 * high fidelity adds 4160 (square) or 6240. */
static void input_image_tokens(void **state)
{
    (void)state;
    static const struct {
        int w, h;
        bool high;
        long want;
    } cases[] = {
        {1024, 1024, false, 194}, /* community check: 1 tile */
        {512, 513, false, 323},   /* community check: 2 tiles */
        {512, 512, false, 194},
        {100, 100, false, 194},            /* small images are 1 tile */
        {513, 513, false, 194},            /* scaled down to 512 */
        {1024, 1536, false, 65 + 129 * 2}, /* 512x768 */
        {1536, 1024, false, 65 + 129 * 2},
        {2048, 512, false, 65 + 129 * 4}, /* shortest already 512 */
        {1024, 1024, true, 194 + 4160},   /* high fidelity, square */
        {1024, 1536, true, 323 + 6240},   /* high fidelity, portrait */
        {1536, 1024, true, 323 + 6240},
        {512, 513, true, 323 + 6240},
        /* larger than 2048: fit in 2048x2048 first */
        {4096, 4096, false, 194},          /* 2048² → 512² */
        {4096, 1024, false, 65 + 129 * 4}, /* 2048x512 */
        {8192, 2048, false, 65 + 129 * 4}, /* 2048x512 */
        {4096, 2048, false, 65 + 129 * 2}, /* 2048x1024 → 1024x512 */
        {3000, 1000, false, 65 + 129 * 3}, /* 2048x682.7 → 1536x512 */
        {4096, 4096, true, 194 + 4160},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long got = isd_api_image_input_tokens(cases[i].w, cases[i].h, cases[i].high);
        if (got != cases[i].want) {
            print_error("%dx%d%s: %ld, expected %ld\n", cases[i].w, cases[i].h,
                        cases[i].high ? " high" : "", got, cases[i].want);
            fail();
        }
    }
}

static void make_request(struct isd_images_request *r, const char *model, const char *quality,
                         int w, int h, int n, const char *prompt)
{
    memset(r, 0, sizeof *r);
    r->profile = prof(model);
    r->quality = quality;
    r->width = w;
    r->height = h;
    r->n = n;
    r->prompt = (char *)prompt;
    r->prompt_len = strlen(prompt);
}

static void request_usage(void **state)
{
    (void)state;
    struct isd_images_request r;
    struct isd_usage u;
    const char *prompt = "A cat wearing a hat";
    long text = isd_api_text_tokens(prompt, strlen(prompt));
    assert_true(text > 0);

    make_request(&r, "gpt-image-1", "medium", 1024, 1024, 1, prompt);
    isd_api_usage(&r, 0, 0, &u);
    assert_int_equal(u.input_text_tokens, text);
    assert_int_equal(u.input_image_tokens, 0);
    assert_int_equal(u.output_image_tokens, 1056);

    /* n images: output per image; partials +100 each; the text once */
    make_request(&r, "gpt-image-1", "medium", 1024, 1024, 3, prompt);
    isd_api_usage(&r, 0, 2, &u);
    assert_int_equal(u.input_text_tokens, text);
    assert_int_equal(u.output_image_tokens, 3 * 1056 + 2 * 100);

    make_request(&r, "gpt-image-1-mini", "high", 1024, 1024, 1, prompt);
    isd_api_usage(&r, 194, 3, &u);
    assert_int_equal(u.input_image_tokens, 194);
    assert_int_equal(u.output_image_tokens, 4160 + 300);

    make_request(&r, "gpt-image-2", "medium", 1254, 1254, 2, prompt);
    isd_api_usage(&r, 0, 0, &u);
    assert_int_equal(u.output_image_tokens, 2 * 2058);

    make_request(&r, "gpt-image-1.5", "low", 1536, 1024, 10, prompt);
    isd_api_usage(&r, 0, 1, &u);
    assert_int_equal(u.output_image_tokens, 10 * 400 + 100);

    /* DALL·E: no usage at all */
    make_request(&r, "dall-e-3", "hd", 1024, 1024, 1, prompt);
    memset(&u, 0x55, sizeof u);
    isd_api_usage(&r, 0, 0, &u);
    assert_int_equal(u.input_text_tokens, 0);
    assert_int_equal(u.input_image_tokens, 0);
    assert_int_equal(u.output_image_tokens, 0);
}

/* The recorded request (maruel/genai, gpt-image-1-mini GenDoc-Image): its 1101-byte prompt was
 * billed 238 input text tokens. */
static const char recorded_prompt[] =
    "Generate one square, white-background doodle with smooth, vibrantly colored image depi"
    "cting A doodle animation on a white background of Cartoonish shiba inu with brown fur "
    "and a white belly, happily eating a pink ice-cream cone, subtle tail wag. Subtle motio"
    "n but nothing else moves..\n\n*Mandatory Requirements (Compacted):**\n\n**Style:** Sim"
    "ple, vibrant, varied-colored doodle/hand-drawn sketch.\n**Background:** Plain solid wh"
    "ite (no background colors/elements). Absolutely no black background.\n**Content & Moti"
    "on:** Clearly depict **A doodle animation on a white background of Cartoonish shiba in"
    "u with brown fur and a white belly, happily eating a pink ice-cream cone, subtle tail "
    "wag. Subtle motion but nothing else moves.** action with colored, moving subject (no s"
    "tatic images). If there's an action specified, it should be the main difference betwee"
    "n frames.\n**Format:** Square image (1:1 aspect ratio).\n**Cropping:** Absolutely no b"
    "lack bars/letterboxing; colorful doodle fully visible against white.\n**Output:** Actu"
    "al image file for a smooth, colorful doodle-style image on a white background.";

static void text_tokens_estimate(void **state)
{
    (void)state;
    assert_int_equal(strlen(recorded_prompt), 1101);
    long t = isd_api_text_tokens(recorded_prompt, strlen(recorded_prompt));
    print_message("recorded prompt: %ld tokens (recorded 238)\n", t);
    assert_true(t >= 238 * 7 / 10 && t <= 238 * 13 / 10);

    assert_int_equal(isd_api_text_tokens("", 0), 0);
    assert_int_equal(isd_api_text_tokens("abc", 0), 0); /* length is what counts */
    assert_true(isd_api_text_tokens("hello", 5) >= 1);
    assert_true(isd_api_text_tokens("a", 1) >= 1);

    /* CJK and other non-ASCII text counts */
    const char *cjk = "\xE4\xB8\x80\xE5\x8F\xAA\xE6\x88\xB4\xE5\xB8\xBD\xE5\xAD\x90\xE7\x9A\x84"
                      "\xE7\x8C\xAB\xE5\x9C\xA8\xE9\x9B\xAA\xE5\x9C\xB0\xE9\x87\x8C"; /* 11 chars */
    long c = isd_api_text_tokens(cjk, strlen(cjk));
    assert_true(c >= 11 / 3 && c <= 11 * 2);
    long many = 0;
    char big[3 * 300 + 1];
    for (int i = 0; i < 300; i++)
        memcpy(big + 3 * i, "\xE7\x8C\xAB", 3);
    many = isd_api_text_tokens(big, 900);
    assert_true(many >= 100 && many <= 600);
    assert_true(isd_api_text_tokens("caf\xC3\xA9", 5) >= 1);
}

/* Appending a word never lowers the count, and no prefix cut at any byte goes down by more than
 * a token; the count is never negative nor above the byte length. */
static void text_tokens_monotonic(void **state)
{
    (void)state;
    size_t n = strlen(recorded_prompt);
    long prev_word = 0;
    for (size_t i = 1; i <= n; i++) {
        long a = isd_api_text_tokens(recorded_prompt, i - 1);
        long b = isd_api_text_tokens(recorded_prompt, i);
        assert_true(b >= a - 1);
        assert_true(b >= 0 && b <= (long)i);
        if (i == n || recorded_prompt[i] == ' ') {
            assert_true(b >= prev_word);
            prev_word = b;
        }
    }
    /* more text of the same kind is more tokens */
    char buf[4096] = "";
    long last = 0;
    for (int k = 0; k < 50; k++) {
        strcat(buf, "the quick brown fox jumps over the lazy dog. ");
        long t = isd_api_text_tokens(buf, strlen(buf));
        assert_true(t > last);
        last = t;
    }
}

static void text_tokens_never_negative(void **state)
{
    (void)state;
    unsigned seed = 7;
    unsigned char buf[512];
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % 512);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (unsigned char)(seed >> 16);
        }
        long t = isd_api_text_tokens((const char *)buf, n);
        assert_true(t >= 0 && t <= (long)n);
    }
    /* long runs of one class */
    static char run[20000];
    const char classes[] = {'a', '7', ' ', '\n', '!', '\xE9'};
    for (size_t k = 0; k < sizeof classes; k++) {
        memset(run, classes[k], sizeof run);
        long t = isd_api_text_tokens(run, sizeof run);
        assert_true(t >= 0 && t <= (long)sizeof run);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpt_image_1_table),
        cmocka_unit_test(gpt_image_2_formula),
        cmocka_unit_test(output_tokens_properties),
        cmocka_unit_test(input_image_tokens),
        cmocka_unit_test(request_usage),
        cmocka_unit_test(text_tokens_estimate),
        cmocka_unit_test(text_tokens_monotonic),
        cmocka_unit_test(text_tokens_never_negative),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
