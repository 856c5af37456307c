/*
 * text: UTF-8 validation and decoding, base64 (standard and URL-safe) against RFC 4648 §10,
 * hex, and the string-view helpers.
 */
#include "support/test.h"

#include "buf/buf.h"
#include "err/err.h"
#include "text/text.h"

#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ---- */

struct utf8_case {
    const char *what;
    const char *bytes;
    size_t n;
    bool valid;
    size_t count; /* code points when valid */
};

#define S(lit) lit, sizeof(lit) - 1

static const struct utf8_case utf8_cases[] = {
    {"empty", S(""), true, 0},
    {"ascii", S("abc"), true, 3},
    {"NUL is a code point", S("a\0b"), true, 3},
    {"2 bytes U+00E9", S("\xC3\xA9"), true, 1},
    {"lowest 2-byte U+0080", S("\xC2\x80"), true, 1},
    {"3 bytes U+20AC", S("\xE2\x82\xAC"), true, 1},
    {"lowest 3-byte U+0800", S("\xE0\xA0\x80"), true, 1},
    {"U+D7FF below surrogates", S("\xED\x9F\xBF"), true, 1},
    {"U+E000 above surrogates", S("\xEE\x80\x80"), true, 1},
    {"literal U+FFFD", S("\xEF\xBF\xBD"), true, 1},
    {"U+FFFD between letters",
     S("a\xEF\xBF\xBD"
       "b"),
     true, 3},
    {"U+FFFF", S("\xEF\xBF\xBF"), true, 1},
    {"4 bytes U+1D11E", S("\xF0\x9D\x84\x9E"), true, 1},
    {"lowest 4-byte U+10000", S("\xF0\x90\x80\x80"), true, 1},
    {"highest U+10FFFF", S("\xF4\x8F\xBF\xBF"), true, 1},
    {"mixed", S("a\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E!"), true, 5},
    /* overlongs */
    {"overlong NUL C0 80", S("\xC0\x80"), false, 0},
    {"overlong C1 BF", S("\xC1\xBF"), false, 0},
    {"overlong 3-byte '/'", S("\xE0\x80\xAF"), false, 0},
    {"overlong 3-byte U+07FF", S("\xE0\x9F\xBF"), false, 0},
    {"overlong 4-byte '/'", S("\xF0\x80\x80\xAF"), false, 0},
    {"overlong 4-byte U+FFFF", S("\xF0\x8F\xBF\xBF"), false, 0},
    /* surrogates */
    {"high surrogate U+D800", S("\xED\xA0\x80"), false, 0},
    {"low surrogate U+DFFF", S("\xED\xBF\xBF"), false, 0},
    {"surrogate pair (CESU-8)", S("\xED\xA0\xBD\xED\xB8\x80"), false, 0},
    /* beyond U+10FFFF */
    {"U+110000", S("\xF4\x90\x80\x80"), false, 0},
    {"F5 lead", S("\xF5\x80\x80\x80"), false, 0},
    {"F7 BF BF BF", S("\xF7\xBF\xBF\xBF"), false, 0},
    {"5-byte lead F8", S("\xF8\x88\x80\x80\x80"), false, 0},
    {"6-byte lead FC", S("\xFC\x84\x80\x80\x80\x80"), false, 0},
    {"FE", S("\xFE"), false, 0},
    {"FF", S("\xFF"), false, 0},
    /* stray continuation bytes */
    {"lone 80", S("\x80"), false, 0},
    {"lone BF after ascii", S("a\xBF"), false, 0},
    {"extra continuation", S("\xC3\xA9\xA9"), false, 0},
    /* truncated sequences, at the end and before more text */
    {"truncated 2 of 2 at end", S("\xC3"), false, 0},
    {"truncated 3: 1 byte", S("\xE2"), false, 0},
    {"truncated 3: 2 bytes", S("\xE2\x82"), false, 0},
    {"truncated 4: 3 bytes", S("\xF0\x9D\x84"), false, 0},
    {"truncated 3 then ascii",
     S("\xE2\x82"
       "A"),
     false, 0},
    {"truncated U+FFFD", S("\xEF\xBF"), false, 0},
    {"truncated U+FFFD then ascii",
     S("\xEF\xBF"
       "A"),
     false, 0},
    {"2-byte lead then ascii",
     S("\xC3"
       "A"),
     false, 0},
};

static void utf8_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
        const struct utf8_case *c = &utf8_cases[i];
        size_t count = 12345;
        bool ok = isd_utf8_count(c->bytes, c->n, &count);
        if (ok != c->valid) {
            print_error("case '%s': expected %s\n", c->what, c->valid ? "valid" : "invalid");
            fail();
        }
        if (c->valid && count != c->count) {
            print_error("case '%s': count %zu, expected %zu\n", c->what, count, c->count);
            fail();
        }
        /* count may be NULL */
        assert_int_equal(isd_utf8_count(c->bytes, c->n, NULL), c->valid);
    }
}

/* A valid prefix never reads past n: a truncated buffer (exact allocation) stays in bounds. */
static void utf8_respects_length(void **state)
{
    (void)state;
    const char full[] = "\xF0\x9D\x84\x9E";
    for (size_t n = 1; n < 4; n++) {
        char *p = malloc(n);
        memcpy(p, full, n);
        size_t count;
        assert_false(isd_utf8_count(p, n, &count));
        size_t i = 0;
        assert_int_equal(isd_utf8_next(p, n, &i), 0xFFFD);
        assert_int_equal(i, 1);
        free(p);
    }
}

static void utf8_next_decodes_and_advances(void **state)
{
    (void)state;
    const char s[] = "A\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E\xEF\xBF\xBD\xFF\xC0\x80"
                     "z";
    size_t n = sizeof s - 1, i = 0;
    static const struct {
        uint32_t cp;
        size_t next;
    } want[] = {
        {'A', 1},     {0xE9, 3},    {0x20AC, 6}, {0x1D11E, 10}, {0xFFFD, 13}, /* literal U+FFFD */
        {0xFFFD, 14},                                                         /* FF: one byte */
        {0xFFFD, 15}, {0xFFFD, 16}, /* C0 80: byte by byte */
        {'z', 17},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        assert_int_equal(isd_utf8_next(s, n, &i), want[k].cp);
        assert_int_equal(i, want[k].next);
    }
    assert_int_equal(i, n);
}

/* ---- base64 ---- */

struct b64_vector {
    const char *plain;
    const char *std;
    const char *url;
};

/* RFC 4648 §10, plus bytes that use the two alphabet-specific characters. */
static const struct b64_vector b64_vectors[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
    {"\xFB\xFF", "+/8=", "-_8"},
    {"\xFB\xEF\xBE", "++++", "----"},
    {"\xFF\xFF\xFF", "////", "____"},
};

static void base64_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof b64_vectors / sizeof b64_vectors[0]; i++) {
        const struct b64_vector *v = &b64_vectors[i];
        size_t n = strlen(v->plain);
        struct isd_buf b;

        isd_buf_init(&b, 1024);
        assert_int_equal(isd_base64_encode(&b, v->plain, n), 0);
        assert_string_equal(b.data, v->std);
        assert_int_equal(b.len, strlen(v->std));
        assert_int_equal(isd_base64_encoded_len(n), strlen(v->std));
        isd_buf_release(&b);

        isd_buf_init(&b, 1024);
        assert_int_equal(isd_base64url_encode(&b, v->plain, n), 0);
        assert_string_equal(b.data, v->url);
        isd_buf_release(&b);

        char dst[64];
        memset(dst, '#', sizeof dst);
        assert_int_equal(isd_base64_encode_to(dst, v->plain, n), strlen(v->std));
        assert_memory_equal(dst, v->std, strlen(v->std));
        assert_int_equal(dst[strlen(v->std)], '#'); /* writes exactly the encoded length */

        /* decode both forms, with and without padding */
        const char *forms[] = {v->std, v->url};
        for (int f = 0; f < 2; f++) {
            isd_buf_init(&b, 1024);
            assert_int_equal(isd_base64_decode(&b, forms[f], strlen(forms[f])), 0);
            assert_int_equal(b.len, n);
            if (n)
                assert_memory_equal(b.data, v->plain, n);
            isd_buf_release(&b);
        }
    }
}

static void base64_round_trips(void **state)
{
    (void)state;
    unsigned char data[300];
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof data; i++) {
        seed = seed * 1103515245u + 12345u;
        data[i] = (unsigned char)(seed >> 16);
    }
    for (size_t n = 0; n <= sizeof data; n++) {
        for (int url = 0; url < 2; url++) {
            struct isd_buf enc, dec;
            isd_buf_init(&enc, 1 << 16);
            isd_buf_init(&dec, 1 << 16);
            int rc = url ? isd_base64url_encode(&enc, data, n) : isd_base64_encode(&enc, data, n);
            assert_int_equal(rc, 0);
            if (!url)
                assert_int_equal(enc.len, isd_base64_encoded_len(n));
            else
                assert_int_equal(enc.len, (n * 4 + 2) / 3);
            for (size_t k = 0; k < enc.len; k++) {
                char c = enc.data[k];
                bool common =
                    (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                assert_true(common ||
                            (url ? (c == '-' || c == '_') : (c == '+' || c == '/' || c == '=')));
            }
            assert_int_equal(isd_base64_decode(&dec, enc.data ? enc.data : "", enc.len), 0);
            assert_int_equal(dec.len, n);
            if (n)
                assert_memory_equal(dec.data, data, n);
            isd_buf_release(&enc);
            isd_buf_release(&dec);
        }
    }
}

/* Decoding appends to what the buffer already holds; encoders too. */
static void base64_appends(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, 100);
    assert_int_equal(isd_buf_append_str(&b, "x:"), 0);
    assert_int_equal(isd_base64_decode(&b, "Zm9vYmFy", 8), 0);
    assert_string_equal(b.data, "x:foobar");
    assert_int_equal(isd_base64_encode(&b, "f", 1), 0);
    assert_string_equal(b.data, "x:foobarZg==");
    assert_int_equal(isd_hex_encode(&b, "\x01", 1), 0);
    assert_string_equal(b.data, "x:foobarZg==01");
    isd_buf_release(&b);
}

static void base64_bad_characters(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zm9v!", "Zm 9v", "Zm9v\n",  " Zm9v",        "Zm9v\tYmFy", "Zm.v",     "Zg=a",
        "Z=g=",  "=Zg=",  "Zm9\x80", "Zm9v\xC3\xA9", "Zm9v*Y==",   "Zm9v\0Yg", "Zm9vYg=\0",
    };
    static const size_t len[] = {5, 5, 5, 5, 9, 4, 4, 4, 4, 4, 6, 8, 7, 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct isd_buf b;
        isd_buf_init(&b, 100);
        assert_int_equal(isd_buf_append_str(&b, "keep"), 0);
        if (isd_base64_decode(&b, bad[i], len[i]) != -ISD_E_INVALID_VALUE) {
            print_error("bad base64 #%zu accepted\n", i);
            fail();
        }
        assert_int_equal(b.len, 4); /* length unchanged on failure */
        assert_memory_equal(b.data, "keep", 4);
        isd_buf_release(&b);
    }
}

/* Regression test (fixed): a failed isd_base64_decode leaves the bytes it decoded before the bad
 * character in out->data[len...] without restoring the terminating NUL (src/text/text.c: the loop
 * writes d[w++] and returns -ISD_E_INVALID_VALUE without `out->data[out->len] = '\0'`). isd_buf
 * promises data is always NUL-terminated and a failed append leaves the buffer unchanged;
 * here b.data reads "keepfoo..." past len 4 and, as a C string, runs off the allocation
 * (ASan: heap-buffer-overflow in strlen/printf). */
static void base64_failure_keeps_buffer_terminated(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, 100);
    assert_int_equal(isd_buf_append_str(&b, "keep"), 0);
    int rc = isd_base64_decode(&b, "Zm9vYmFy!A", 10);
    size_t len = b.len;
    char after = b.data[4];
    isd_buf_release(&b);
    assert_int_equal(rc, -ISD_E_INVALID_VALUE);
    assert_int_equal(len, 4);
    assert_int_equal(after, '\0');
}

static void base64_bad_lengths(void **state)
{
    (void)state;
    /* one character left over in the last quantum can never be base64 */
    static const char *const bad[] = {"Z", "Zm9vY", "Zm9vY=", "Zm9vY==", "Zm9vYmFyZ", "Z==="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct isd_buf b;
        isd_buf_init(&b, 100);
        if (isd_base64_decode(&b, bad[i], strlen(bad[i])) != -ISD_E_INVALID_VALUE) {
            print_error("bad length '%s' accepted\n", bad[i]);
            fail();
        }
        isd_buf_release(&b);
    }
}

/* Regression test (fixed): isd_base64_decode strips every trailing '=' (src/text/text.c, the loop
 * `while (n > 0 && s[n - 1] == '=') n--;`), so padding that does not belong to the last quantum
 * is accepted: "Zm9v=" (5 chars), "Zm9v====", "Zg===" and "Zm8==" decode as if well formed.
 * The header promises -ISD_E_INVALID_VALUE "on a bad character or length"; padding is
 * optional, but when present it must complete the last 4-character group (RFC 4648 §3.2:
 * 2 '=' after 2 characters, 1 after 3, none after a full group). */
static void base64_padding_must_fit_the_last_quantum(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zm9v=", "Zm9v==", "Zm9v====", "Zg===", "Zm8==", "Zg=", "===="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct isd_buf b;
        isd_buf_init(&b, 100);
        int rc = isd_base64_decode(&b, bad[i], strlen(bad[i]));
        isd_buf_release(&b);
        if (rc != -ISD_E_INVALID_VALUE) {
            print_error("misplaced padding '%s' accepted\n", bad[i]);
            fail();
        }
    }
}

static void base64_ceiling(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, 7);
    assert_int_equal(isd_base64_encode(&b, "foobar", 6), -ISD_E_TOO_LARGE);
    assert_int_equal(b.len, 0);
    assert_int_equal(isd_base64_encode(&b, "fooba", 5), -ISD_E_TOO_LARGE); /* needs 8 */
    assert_int_equal(isd_base64_encode(&b, "foo", 3), 0);
    isd_buf_release(&b);
    isd_buf_init(&b, 4);
    assert_int_equal(isd_base64_decode(&b, "Zm9vYmFyZm9v", 12), -ISD_E_TOO_LARGE);
    isd_buf_release(&b);
}

/* Regression test (fixed): isd_base64_decode reserves n / 4 * 3 + 3 bytes before decoding
 * (src/text/text.c, `isd_buf_reserve(out, n / 4 * 3 + 3)`), up to 3 more than the output, so a
 * decode whose result fits the buffer's ceiling exactly is refused with -ISD_E_TOO_LARGE: 6 bytes
 * from "Zm9vYmFy" into a buffer with max 6 (or 8). isd_buf's contract is that only appends that
 * would pass `max` fail. Reserving (n * 3) / 4 (what the loop can write) would fix it. */
static void base64_decode_fills_ceiling_exactly(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, 6);
    int rc6 = isd_base64_decode(&b, "Zm9vYmFy", 8);
    size_t len6 = b.len;
    isd_buf_release(&b);
    isd_buf_init(&b, 4);
    int rc4 = isd_base64_decode(&b, "Zm9vYg", 6);
    size_t len4 = b.len;
    isd_buf_release(&b);
    assert_int_equal(rc6, 0);
    assert_int_equal(len6, 6);
    assert_int_equal(rc4, 0);
    assert_int_equal(len4, 4);
}

/* ---- hex and views ---- */

static void hex_encodes_lowercase(void **state)
{
    (void)state;
    char dst[2 * 5 + 1];
    memset(dst, '#', sizeof dst);
    isd_hex_to(dst, "\x00\x01\xAB\xFF\x7E", 5);
    assert_string_equal(dst, "0001abff7e");
    isd_hex_to(dst, "", 0);
    assert_string_equal(dst, "");

    struct isd_buf b;
    isd_buf_init(&b, 100);
    unsigned char all[16];
    for (int i = 0; i < 16; i++)
        all[i] = (unsigned char)(i * 17);
    assert_int_equal(isd_hex_encode(&b, all, 16), 0);
    assert_string_equal(b.data, "00112233445566778899aabbccddeeff");
    assert_int_equal(b.len, 32);
    isd_buf_release(&b);

    isd_buf_init(&b, 5);
    assert_int_equal(isd_hex_encode(&b, "abc", 3), -ISD_E_TOO_LARGE);
    assert_int_equal(b.len, 0);
    isd_buf_release(&b);
}

static void str_views(void **state)
{
    (void)state;
    struct isd_str a = {"Content-Type: x", 12};
    assert_true(isd_str_ieq(a, "content-type"));
    assert_true(isd_str_ieq(a, "CONTENT-TYPE"));
    assert_false(isd_str_ieq(a, "content-typ"));
    assert_false(isd_str_ieq(a, "content-types"));
    assert_true(isd_str_eq(a, "Content-Type"));
    assert_false(isd_str_eq(a, "content-type"));
    /* no locale: only ASCII letters fold */
    struct isd_str e = {"\xC3\xA9", 2};
    assert_false(isd_str_ieq(e, "\xC3\x89"));

    struct isd_str t = isd_str_trim((struct isd_str){" \t a b \t", 8});
    assert_int_equal(t.n, 3);
    assert_memory_equal(t.p, "a b", 3);
    t = isd_str_trim((struct isd_str){" \t \t", 4});
    assert_int_equal(t.n, 0);
    t = isd_str_trim((struct isd_str){"\nx\n", 3}); /* only spaces and tabs */
    assert_int_equal(t.n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_table),
        cmocka_unit_test(utf8_respects_length),
        cmocka_unit_test(utf8_next_decodes_and_advances),
        cmocka_unit_test(base64_rfc4648_vectors),
        cmocka_unit_test(base64_round_trips),
        cmocka_unit_test(base64_appends),
        cmocka_unit_test(base64_bad_characters),
        cmocka_unit_test(base64_failure_keeps_buffer_terminated),
        cmocka_unit_test(base64_bad_lengths),
        cmocka_unit_test(base64_padding_must_fit_the_last_quantum),
        cmocka_unit_test(base64_ceiling),
        cmocka_unit_test(base64_decode_fills_ceiling_exactly),
        cmocka_unit_test(hex_encodes_lowercase),
        cmocka_unit_test(str_views),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
