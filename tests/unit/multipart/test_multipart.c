/* multipart parser: bodies as the real clients write them, in every chunking; the syntax we
 * tolerate; every error with its exact message; truncation at every byte; the limits. */
#include "support/test.h"

#include "mp_fixtures.h"

#include <stdlib.h>
#include <string.h>

struct expect {
    const char *name;
    const char *filename;     /* NULL for a text part */
    const char *content_type; /* NULL when absent */
    const char *data;
    size_t len;
};

#define TEXT(n, v)                                                                                 \
    {                                                                                              \
        n, NULL, NULL, v, sizeof v - 1                                                             \
    }
#define FILE_(n, f, t, d, l)                                                                       \
    {                                                                                              \
        n, f, t, d, l                                                                              \
    }

static void check_fields(const struct mp_result *r, const struct expect *e, size_t n)
{
    assert_int_equal(r->order_errors, 0);
    assert_int_equal(r->begins, (int)n);
    assert_int_equal(r->ends, (int)n);
    assert_int_equal(r->form.n_fields, n);
    for (size_t i = 0; i < n; i++) {
        const struct isd_form_field *f = &r->form.fields[i];
        assert_string_equal(f->name, e[i].name);
        if (e[i].filename) {
            assert_non_null(f->filename);
            assert_string_equal(f->filename, e[i].filename);
            assert_true(f->is_file);
        } else {
            assert_null(f->filename);
            assert_false(f->is_file);
        }
        if (e[i].content_type) {
            assert_non_null(f->content_type);
            assert_string_equal(f->content_type, e[i].content_type);
        } else {
            assert_null(f->content_type);
        }
        assert_false(f->overflow);
        assert_false(f->dropped);
        assert_int_equal(f->size, e[i].len);
        assert_int_equal(f->value.len, e[i].len);
        assert_non_null(f->value.data);
        assert_memory_equal(f->value.data, e[i].data, e[i].len);
    }
}

/* Parses in every chunking and checks the fields each time. */
static void expect_form(const char *ct, const void *body, size_t n, const struct expect *e,
                        size_t n_expect)
{
    for (size_t c = 0; c < MP_N_CHUNKINGS; c++) {
        struct mp_result r;
        if (mp_run(&r, ct, body, n, mp_chunkings[c], NULL) != 0)
            fail_msg("chunking %u: %s", mp_chunkings[c], r.err.message);
        check_fields(&r, e, n_expect);
        mp_done(&r);
    }
}

/* Parses in every chunking and checks the error id and exact message each time. */
static void expect_error(const char *ct, const void *body, size_t n, int rc, const char *message)
{
    for (size_t c = 0; c < MP_N_CHUNKINGS; c++) {
        struct mp_result r;
        int got = mp_run(&r, ct, body, n, mp_chunkings[c], NULL);
        if (got != rc || strcmp(r.err.message, message) != 0)
            fail_msg("chunking %u: got %d '%s', expected %d '%s'", mp_chunkings[c], got,
                     r.err.message, rc, message);
        assert_int_equal(r.err.id, -rc);
        assert_int_equal(r.order_errors, 0);
        mp_done(&r);
    }
}

/* Bytes that look like delimiters of `boundary` without being one, NULs, the boundary
 * without its CRLF, CRs and LFs in every arrangement; ends with '\r'. */
static size_t tricky_data(char *out, const char *boundary)
{
    struct mp_body b = {0};
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
    mp_add(&b, png, sizeof png);
    for (int i = 0; i < 256; i++) {
        char c = (char)i;
        mp_add(&b, &c, 1);
    }
    mp_adds(&b, "\r\n--");
    mp_adds(&b, "\r\r\n--");
    mp_add(&b, boundary, strlen(boundary) - 1); /* a delimiter missing its last byte */
    mp_adds(&b, "\r\n--");
    mp_adds(&b, boundary);
    mp_adds(&b, "X\r\n"); /* a whole delimiter followed by a non-padding byte is data */
    mp_adds(&b, "\r\n--");
    mp_adds(&b, boundary);
    mp_adds(&b, "-x"); /* ... and by "-" and not a second "-" */
    mp_adds(&b, "--");
    mp_adds(&b, boundary); /* the boundary line without CRLF before it */
    mp_adds(&b, "\r\n\n--");
    mp_adds(&b, boundary); /* bare LF before it */
    mp_adds(&b, "--\n\r");
    mp_add(&b, "\0\0\r\0", 4);
    mp_adds(&b, "\r\n-");
    mp_adds(&b, "\r");
    memcpy(out, b.p, b.n);
    size_t n = b.n;
    free(b.p);
    return n;
}

static char tricky_a[1024], tricky_b[1024];
static size_t tricky_a_len, tricky_b_len;

/* Node SDK's own streaming encoder (openai-node src/internal/uploads.ts): boundary
 * "openai-" + base36, text parts without Content-Type, files with the Blob's type. */
static void node_sdk_stream(void **state)
{
    (void)state;
    struct mp_body b = {0};
    mp_adds(&b, "--openai-k2x9q8w7e1h\r\n"
                "Content-Disposition: form-data; name=\"image[]\"; filename=\"otter.png\"\r\n"
                "Content-Type: image/png\r\n\r\n");
    mp_add(&b, tricky_a, tricky_a_len);
    mp_adds(&b, "\r\n--openai-k2x9q8w7e1h\r\n"
                "Content-Disposition: form-data; name=\"image[]\"; filename=\"unknown_file\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
                "\x89PNG\r\n\x1a\n"
                "\r\n--openai-k2x9q8w7e1h\r\n"
                "Content-Disposition: form-data; name=\"prompt\"\r\n\r\n"
                "A cute baby sea otter wearing a beret\r\n"
                "--openai-k2x9q8w7e1h\r\n"
                "Content-Disposition: form-data; name=\"n\"\r\n\r\n"
                "2\r\n"
                "--openai-k2x9q8w7e1h\r\n"
                "Content-Disposition: form-data; name=\"stream\"\r\n\r\n"
                "false\r\n"
                "--openai-k2x9q8w7e1h--\r\n");
    const struct expect e[] = {
        FILE_("image[]", "otter.png", "image/png", tricky_a, tricky_a_len),
        FILE_("image[]", "unknown_file", "application/octet-stream", "\x89PNG\r\n\x1a\n", 8),
        TEXT("prompt", "A cute baby sea otter wearing a beret"),
        TEXT("n", "2"),
        TEXT("stream", "false"),
    };
    expect_form("multipart/form-data; boundary=openai-k2x9q8w7e1h", b.p, b.n, e, 5);
    free(b.p);
}

/* Node's runtime FormData (undici): "----formdata-undici-0" + digits; quotes in names and
 * filenames are sent as %22 and kept as sent. */
static void node_formdata_undici(void **state)
{
    (void)state;
    struct mp_body b = {0};
    mp_adds(&b, "------formdata-undici-068719547513\r\n"
                "Content-Disposition: form-data; name=\"model\"\r\n\r\n"
                "gpt-image-1\r\n"
                "------formdata-undici-068719547513\r\n"
                "Content-Disposition: form-data; name=\"image\"; filename=\"my %22best%22.png\"\r\n"
                "Content-Type: image/png\r\n\r\n");
    mp_add(&b, tricky_b, tricky_b_len);
    mp_adds(&b, "\r\n------formdata-undici-068719547513\r\n"
                "Content-Disposition: form-data; name=\"mask\"; filename=\"mask.png\"\r\n"
                "Content-Type: image/png\r\n\r\n"
                "\r\n------formdata-undici-068719547513\r\n"
                "Content-Disposition: form-data; name=\"prompt\"\r\n\r\n"
                "line one\r\nline two\r\n"
                "------formdata-undici-068719547513--");
    const struct expect e[] = {
        TEXT("model", "gpt-image-1"),
        FILE_("image", "my %22best%22.png", "image/png", tricky_b, tricky_b_len),
        FILE_("mask", "mask.png", "image/png", "", 0),
        TEXT("prompt", "line one\r\nline two"),
    };
    expect_form("multipart/form-data; boundary=----formdata-undici-068719547513", b.p, b.n, e, 4);
    free(b.p);
}

/* Python SDK through httpx: 32 hex digits, text fields first, Content-Type from the
 * extension; backslashes in quoted values are doubled. */
static void python_httpx(void **state)
{
    (void)state;
    static const char body[] =
        "--6b0d1e9c2f5f4e2c8e0f0d6e3a5b7c9d\r\n"
        "Content-Disposition: form-data; name=\"prompt\"\r\n\r\n"
        "\xc3\xa9t\xc3\xa9 \xf0\x9f\xa6\xa6\r\n"
        "--6b0d1e9c2f5f4e2c8e0f0d6e3a5b7c9d\r\n"
        "Content-Disposition: form-data; name=\"size\"\r\n\r\n"
        "1024x1024\r\n"
        "--6b0d1e9c2f5f4e2c8e0f0d6e3a5b7c9d\r\n"
        "Content-Disposition: form-data; name=\"image[]\"; filename=\"a\\\\b.webp\"\r\n"
        "Content-Type: image/webp\r\n\r\n"
        "RIFF\0\0\0\0WEBP\r\n"
        "--6b0d1e9c2f5f4e2c8e0f0d6e3a5b7c9d\r\n"
        "Content-Disposition: form-data; name=\"image[]\"; filename=\"b.jpg\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n"
        "\xff\xd8\xff\xe0\r\n\r\n\r\n"
        "--6b0d1e9c2f5f4e2c8e0f0d6e3a5b7c9d--\r\n";
    const struct expect e[] = {
        TEXT("prompt", "\xc3\xa9t\xc3\xa9 \xf0\x9f\xa6\xa6"),
        TEXT("size", "1024x1024"),
        FILE_("image[]", "a\\b.webp", "image/webp", "RIFF\0\0\0\0WEBP", 12),
        FILE_("image[]", "b.jpg", "image/jpeg", "\xff\xd8\xff\xe0\r\n\r\n", 8),
    };
    expect_form("multipart/form-data; boundary=6b0d1e9c2f5f4e2c8e0f0d6e3a5b7c9d", body,
                sizeof body - 1, e, 4);
}

/* curl -F: 24 dashes + hex, file first; older curl escapes quotes with a backslash. */
static void curl_form(void **state)
{
    (void)state;
    struct mp_body b = {0};
    mp_adds(&b,
            "--------------------------d74496d66958873e\r\n"
            "Content-Disposition: form-data; name=\"image[]\"; filename=\"say \\\"hi\\\".png\"\r\n"
            "Content-Type: image/png\r\n\r\n");
    mp_add(&b, tricky_a, tricky_a_len);
    mp_adds(&b, "\r\n--------------------------d74496d66958873e\r\n"
                "Content-Disposition: form-data; name=\"prompt\"\r\n\r\n"
                "--------------------------d74496d66958873e\r\n"
                "--------------------------d74496d66958873e--\r\n");
    /* the prompt's value is the boundary line itself, without a CRLF before it: data */
    const struct expect e1[] = {
        FILE_("image[]", "say \"hi\".png", "image/png", tricky_a, tricky_a_len),
        TEXT("prompt", "--------------------------d74496d66958873e"),
    };
    expect_form("multipart/form-data; boundary=------------------------d74496d66958873e", b.p, b.n,
                e1, 2);
    const struct expect e[] = {
        FILE_("image[]", "say \"hi\".png", "image/png", tricky_a, tricky_a_len),
        TEXT("prompt", ""),
    };
    b.n = 0;
    mp_adds(&b,
            "--------------------------d74496d66958873e\r\n"
            "Content-Disposition: form-data; name=\"image[]\"; filename=\"say \\\"hi\\\".png\"\r\n"
            "Content-Type: image/png\r\n\r\n");
    mp_add(&b, tricky_a, tricky_a_len);
    mp_adds(&b, "\r\n--------------------------d74496d66958873e\r\n"
                "Content-Disposition: form-data; name=\"prompt\"\r\n\r\n"
                "\r\n--------------------------d74496d66958873e--\r\n");
    expect_form("multipart/form-data; boundary=------------------------d74496d66958873e", b.p, b.n,
                e, 2);
    free(b.p);
}

/* Syntax a strict client never sends but RFC 2046 or old clients allow. */
static void tolerated_syntax(void **state)
{
    (void)state;
    static const char body[] =
        "This is the preamble.\r\nIt is to be ignored.\r\n"
        "--simple boundary \t \r\n"
        "content-disposition: FORM-DATA ; NAME = first ;FileName=a.txt\n"
        "CONTENT-TYPE:   text/plain; charset=\"utf-8\"  \n"
        "X-Other: ignored\n"
        "\n"
        "one\r\n"
        "--simple boundary\t\n"
        "Content-Disposition: form-data;\r\n"
        "\tname=\"folded\"\r\n"
        "\r\n"
        "two\r\n"
        "--simple boundary\r\n"
        "Content-Disposition: form-data; name=\"unquoted value\"; filename=my file.png ;\r\n"
        "\r\n"
        "three\r\n"
        "--simple boundary-- trailing\r\nThis is the epilogue. --simple boundary\r\n";
    const struct expect e[] = {
        FILE_("first", "a.txt", "text/plain; charset=\"utf-8\"", "one", 3),
        TEXT("folded", "two"),
        FILE_("unquoted value", "my file.png", NULL, "three", 5),
    };
    expect_form("Multipart/Form-Data; BOUNDARY=\"simple boundary\"", body, sizeof body - 1, e, 3);
    /* a CRLF before the first boundary is not a preamble problem */
    static const char lead[] =
        "\r\n--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--";
    const struct expect e2[] = {TEXT("x", "1")};
    expect_form("multipart/form-data; boundary=b", lead, sizeof lead - 1, e2, 1);
    /* a form with no parts at all */
    expect_form("multipart/form-data; boundary=b", "--b--\r\n", 7, NULL, 0);
}

static void disposition_parameters(void **state)
{
    (void)state;
    static const char body[] =
        "--B\r\n"
        "Content-Disposition: form-data; name=\"a\\\"b\\\\c\\d\"; filename=\"x.png\"; "
        "filename*=UTF-8''%e2%82%ac%20rates.png\r\n"
        "Content-Type: image/png\r\n\r\n1\r\n"
        "--B\r\n"
        "Content-Disposition: form-data; filename*=iso-8859-1'en'caf%E9.png; name=\"latin\"\r\n"
        "\r\n2\r\n"
        "--B\r\n"
        "Content-Disposition: form-data; name=\"fallback\"; filename*=koi8-r''abc; "
        "filename=\"plain.png\"\r\n"
        "\r\n3\r\n"
        "--B\r\n"
        "Content-Disposition: form-data; name=\"empty filename\"; filename=\"\"\r\n"
        "\r\n\r\n"
        "--B\r\n"
        "Content-Disposition: form-data; name=\"\"; unknown=\"x;y\"; n2=z\r\n"
        "\r\n5\r\n"
        "--B\r\n"
        "Content-Disposition: form-data; name=\"image[]\"\r\n"
        "Content-Type: \r\n\r\n6\r\n"
        "--B\r\n"
        "Content-Disposition: form-data; name=\"end\\\\\"; filename=\"C:\\\\dir\\\\\"\r\n"
        "\r\n7\r\n"
        "--B--\r\n";
    const struct expect e[] = {
        FILE_("a\"b\\c\\d", "\xe2\x82\xac rates.png", "image/png", "1", 1),
        FILE_("latin", "caf\xc3\xa9.png", NULL, "2", 1),
        FILE_("fallback", "plain.png", NULL, "3", 1),
        FILE_("empty filename", "", NULL, "", 0),
        TEXT("", "5"),
        {"image[]", NULL, "", "6", 1},
        FILE_("end\\", "C:\\dir\\", NULL, "7", 1),
    };
    expect_form("multipart/form-data; boundary=B", body, sizeof body - 1, e, 7);
}

static void content_type_header(void **state)
{
    (void)state;
    static const char body[] = "--a'()+_,-./:=? z\r\n"
                               "Content-Disposition: form-data; name=x\r\n\r\nv\r\n"
                               "--a'()+_,-./:=? z--";
    const struct expect e[] = {TEXT("x", "v")};
    expect_form("multipart/form-data; charset=utf-8; boundary=\"a'()+_,-./:=? z\"", body,
                sizeof body - 1, e, 1);
    expect_form("multipart/form-data;boundary=\"a'()+_,-./:=? z\";", body, sizeof body - 1, e, 1);
    char ct[200], bd[80];
    memset(bd, 'q', 70);
    bd[70] = '\0';
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", bd);
    char body70[300];
    int n = snprintf(body70, sizeof body70,
                     "--%s\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--%s--", bd, bd);
    expect_form(ct, body70, (size_t)n, e, 1);

    struct {
        const char *ct;
        const char *message;
    } bad[] = {
        {NULL, "multipart body: the request has no Content-Type, so it is not "
               "multipart/form-data"},
        {"application/json", "multipart body: the Content-Type 'application/json' is not "
                             "multipart/form-data"},
        {"multipart/mixed; boundary=a", "multipart body: the Content-Type 'multipart/mixed; "
                                        "boundary=a' is not multipart/form-data"},
        {"multipart/form-datax; boundary=a", "multipart body: the Content-Type "
                                             "'multipart/form-datax; boundary=a' is not "
                                             "multipart/form-data"},
        {"multipart/form-data", "multipart body: missing boundary in Content-Type"},
        {"multipart/form-data; charset=utf-8", "multipart body: missing boundary in Content-Type"},
        {"multipart/form-data; boundary=", "multipart body: the boundary in Content-Type must be "
                                           "1 to 70 characters, not 0"},
        {"multipart/form-data; boundary=\"\"", "multipart body: the boundary in Content-Type "
                                               "must be 1 to 70 characters, not 0"},
        {"multipart/form-data; boundary=a; BOUNDARY=b", "multipart body: more than one boundary "
                                                        "in Content-Type"},
        {"multipart/form-data; boundary=\"abc", "multipart body: malformed parameters in "
                                                "Content-Type"},
        {"multipart/form-data; boundary=\"abc\"d", "multipart body: malformed parameters in "
                                                   "Content-Type"},
        {"multipart/form-data; flag; boundary=abc", "multipart body: malformed parameters in "
                                                    "Content-Type"},
        {"multipart/form-data; boundary=ab\x01", "multipart body: invalid boundary in "
                                                 "Content-Type: only printable ASCII"},
        {"multipart/form-data; boundary=ab\xc3\xa9", "multipart body: invalid boundary in "
                                                     "Content-Type: only printable ASCII"},
        {"multipart/form-data; boundary=\"ab \"", "multipart body: invalid boundary in "
                                                  "Content-Type: it ends with a space"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(bad[i].ct, "", 0, -ISD_E_BAD_BODY, bad[i].message);
    memset(bd, 'q', 71);
    bd[71] = '\0';
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", bd);
    expect_error(ct, "", 0, -ISD_E_BAD_BODY,
                 "multipart body: the boundary in Content-Type must be 1 to 70 characters, not "
                 "71");
    char huge[400];
    memset(huge, 'q', sizeof huge);
    memcpy(huge, "multipart/form-data; boundary=", 30);
    huge[sizeof huge - 1] = '\0';
    expect_error(huge, "", 0, -ISD_E_BAD_BODY,
                 "multipart body: the boundary in Content-Type must be 1 to 70 characters");
}

#define CT "multipart/form-data; boundary=XyZ"
#define CD "Content-Disposition: form-data; name=\"a\"\r\n"
#define TRUNCATED                                                                                  \
    "multipart body: the body ended before the closing boundary (truncated upload or a "           \
    "boundary that never closes)"

static void body_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *message;
    } cases[] = {
        {"hello world", "multipart body: the body does not start with the boundary"},
        {"-XyZ\r\n" CD "\r\nv", "multipart body: the body does not start with the boundary"},
        {"--XyZW\r\n" CD "\r\nv\r\n--XyZW--", "multipart body: the body does not start with "
                                              "the boundary"},
        {"--xyz\r\n" CD "\r\nv\r\n--xyz--", "multipart body: the body does not start with the "
                                            "boundary"},
        {"", TRUNCATED},
        {"--XyZ", TRUNCATED},
        {"--XyZ\r\n" CD "\r\nvalue", TRUNCATED},
        {"--XyZ\r\n" CD "\r\nvalue\r\n--XyZ\r\n", TRUNCATED},
        {"--XyZ\r\n" CD "\r\nvalue\r\n--XyZ-", TRUNCATED},
        {"--XyZ\r\n" CD "\r\nvalue\n--XyZ--", TRUNCATED},
        {"--XyZ\r\n" CD, TRUNCATED},
        {"--XyZ\r\nContent-Disposition: form-data; filename=\"a.png\"\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: no name in Content-Disposition"},
        {"--XyZ\r\nContent-Type: image/png\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: no name in Content-Disposition"},
        {"--XyZ\r\n\r\nv\r\n--XyZ--", "multipart body: part 1: no name in Content-Disposition"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ\r\nContent-Disposition: form-data\r\n\r\nw\r\n--XyZ--",
         "multipart body: part 2: no name in Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: Content-Disposition is not form-data"},
        {"--XyZ\r\nContent-Disposition form-data; name=\"a\"\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: malformed header line (expected 'Name: value')"},
        {"--XyZ\r\n" CD "x\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: malformed header line (expected 'Name: value')"},
        {"--XyZ\r\n: form-data\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: malformed header line (expected 'Name: value')"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: unterminated quoted string in Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"a\\\"\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: unterminated quoted string in Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: malformed Content-Disposition parameters"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"a\"b\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: malformed Content-Disposition parameters"},
        {"--XyZ\r\nContent-Disposition: form-data; =a\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: malformed Content-Disposition parameters"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a; Name=b\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: more than one Name parameter in Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a; filename=b; filename=c\r\n\r\nv\r\n"
         "--XyZ--",
         "multipart body: part 1: more than one filename parameter in Content-Disposition"},
        {"--XyZ\r\n" CD CD "\r\nv\r\n--XyZ--",
         "multipart body: part 1: more than one Content-Disposition"},
        {"--XyZ\r\n" CD "Content-Type: a\r\ncontent-type: b\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: more than one Content-Type"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"a\x01\"\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: control character in the part headers"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: control character in the part headers"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\x7f\r\n\r\nv\r\n--XyZ--",
         "multipart body: part 1: control character in the part headers"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a; filename*=utf-8''%zz\r\n\r\nv\r\n"
         "--XyZ--",
         "multipart body: part 1: unsupported or malformed filename* in Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a; filename*=utf-8''a%00b\r\n\r\nv\r\n"
         "--XyZ--",
         "multipart body: part 1: unsupported or malformed filename* in Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a; filename*=utf-8'a%4\r\n\r\nv\r\n"
         "--XyZ--",
         "multipart body: part 1: unsupported or malformed filename* in Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a; filename*=big5''x\r\n\r\nv\r\n"
         "--XyZ--",
         "multipart body: part 1: unsupported or malformed filename* in Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a; filename*=iso-8859-1''\xe9\r\n\r\nv"
         "\r\n--XyZ--",
         "multipart body: part 1: unsupported or malformed filename* in Content-Disposition"},
        {"--XyZ  x\r\n" CD "\r\nv\r\n--XyZ--",
         "multipart body: malformed boundary line before part 1 (only spaces may follow the "
         "boundary)"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ\rX",
         "multipart body: malformed boundary line before part 2 (only spaces may follow the "
         "boundary)"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ \r\r\n",
         "multipart body: malformed boundary line before part 2 (only spaces may follow the "
         "boundary)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("# case %zu\n", i);
        expect_error(CT, cases[i].body, strlen(cases[i].body), -ISD_E_BAD_BODY, cases[i].message);
    }
    static const char nul[] = "--XyZ\r\nContent-Disposition: form-data; name=\"a\0\"\r\n\r\nv\r\n"
                              "--XyZ--";
    expect_error(CT, nul, sizeof nul - 1, -ISD_E_BAD_BODY,
                 "multipart body: part 1: control character in the part headers");
}

/* The delimiter right after runs that make the scanner skip (CRs, CRLFs, prefixes of the
 * delimiter, the boundary's own characters), for boundaries of every length: the data comes
 * back exactly. */
static void delimiter_after_skippable_runs(void **state)
{
    (void)state;
    static const char chars[] = "0123456789abcdefghijklmnopqrstuvwxyz-'()+_,./:=? Z";
    for (size_t blen = 1; blen <= ISD_MP_BOUNDARY_MAX; blen++) {
        char bd[ISD_MP_BOUNDARY_MAX + 1], delim[ISD_MP_BOUNDARY_MAX + 5], ct[128];
        for (size_t i = 0; i < blen; i++)
            bd[i] = chars[(i * 7 + blen) % (sizeof chars - 2)];
        if (bd[blen - 1] == ' ')
            bd[blen - 1] = 'Z';
        bd[blen] = '\0';
        snprintf(delim, sizeof delim, "\r\n--%s", bd);
        snprintf(ct, sizeof ct, "multipart/form-data; boundary=\"%s\"", bd);
        size_t dlen = strlen(delim);
        for (int kind = 0; kind < 5; kind++) {
            struct mp_body data = {0};
            for (size_t i = 0; i < 3 * dlen + 7; i++) {
                switch (kind) {
                case 0:
                    mp_adds(&data, "\r");
                    break;
                case 1:
                    mp_adds(&data, "\r\n");
                    break;
                case 2:
                    mp_add(&data, delim, i % dlen);
                    break; /* prefixes, growing */
                case 3:
                    mp_add(&data, bd + i % blen, 1);
                    break;
                default:
                    mp_add(&data, delim, dlen - 1);
                    mp_adds(&data, "\r");
                    break;
                }
            }
            struct mp_body b = {0};
            mp_adds(&b, "--");
            mp_adds(&b, bd);
            mp_adds(&b, "\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\n");
            mp_add(&b, data.p, data.n);
            mp_add(&b, delim, dlen);
            mp_adds(&b, "--");
            for (size_t c = 0; c < 3; c++) {
                unsigned chunking = c == 0 ? MP_WHOLE : (unsigned)(blen * 10 + c);
                struct mp_result r;
                if (mp_run(&r, ct, b.p, b.n, chunking, NULL) != 0)
                    fail_msg("boundary length %zu, kind %d: %s", blen, kind, r.err.message);
                assert_int_equal(r.form.n_fields, 1);
                assert_int_equal(r.form.fields[0].value.len, data.n);
                assert_memory_equal(r.form.fields[0].value.data, data.p, data.n);
                mp_done(&r);
            }
            free(data.p);
            free(b.p);
        }
    }
}

/* Every proper prefix of a valid body that lacks part of its closing "--boundary--" fails
 * with the truncation error (never success, never another error), in every chunking. */
static void truncated_at_every_offset(void **state)
{
    (void)state;
    struct mp_body b = {0};
    mp_adds(&b, "--openai-k2x9q8w7e1h\r\n"
                "Content-Disposition: form-data; name=\"image[]\"; filename=\"otter.png\"\r\n"
                "Content-Type: image/png\r\n\r\n");
    mp_add(&b, tricky_a, tricky_a_len);
    mp_adds(&b, "\r\n--openai-k2x9q8w7e1h \t\r\n"
                "Content-Disposition: form-data; name=\"prompt\"\r\n\r\n"
                "otter\r\n"
                "--openai-k2x9q8w7e1h--");
    size_t closed = b.n;
    mp_adds(&b, "\r\nepilogue");
    struct mp_result r;
    assert_int_equal(
        mp_run(&r, "multipart/form-data; boundary=openai-k2x9q8w7e1h", b.p, b.n, MP_WHOLE, NULL),
        0);
    assert_int_equal(r.form.n_fields, 2);
    mp_done(&r);
    for (size_t k = 0; k < closed; k++) {
        for (size_t c = 0; c < 3; c++) {
            int rc = mp_run(&r, "multipart/form-data; boundary=openai-k2x9q8w7e1h", b.p, k,
                            mp_chunkings[c], NULL);
            if (rc != -ISD_E_BAD_BODY || strcmp(r.err.message, TRUNCATED) != 0)
                fail_msg("prefix of %zu bytes, chunking %zu: %d %s", k, c, rc, r.err.message);
            assert_int_equal(r.order_errors, 0);
            mp_done(&r);
        }
    }
    for (size_t k = closed; k <= b.n; k++) {
        assert_int_equal(
            mp_run(&r, "multipart/form-data; boundary=openai-k2x9q8w7e1h", b.p, k, MP_BYTES, NULL),
            0);
        mp_done(&r);
    }
    free(b.p);
}

static void part_count_limit(void **state)
{
    (void)state;
    struct mp_body b = {0};
    for (int i = 0; i < ISD_MP_MAX_PARTS; i++)
        mp_adds(&b, "--XyZ\r\n" CD "\r\nv\r\n");
    mp_adds(&b, "--XyZ--");
    struct isd_form_limits lim = {16, 100, 100, 1 << 20};
    struct mp_result r;
    assert_int_equal(mp_run(&r, CT, b.p, b.n, MP_WHOLE, &lim), 0);
    assert_int_equal(r.form.n_fields, ISD_MP_MAX_PARTS);
    mp_done(&r);
    b.n -= 7;
    mp_adds(&b, "--XyZ\r\n" CD "\r\nv\r\n--XyZ--");
    expect_error(CT, b.p, b.n, -ISD_E_BAD_BODY, "multipart body: more than 256 parts");
    free(b.p);
}

/* A header block of exactly ISD_MP_HEADER_MAX bytes (blank line included) passes; one more
 * byte fails, whatever the chunking. */
static void header_block_limit(void **state)
{
    (void)state;
    for (int extra = 0; extra <= 1; extra++) {
        struct mp_body b = {0};
        mp_adds(&b, "--XyZ\r\n");
        size_t start = b.n;
        mp_adds(&b, CD "X-Pad: ");
        size_t pad = ISD_MP_HEADER_MAX - (b.n - start) - 4 + (size_t)extra;
        char *fill = malloc(pad);
        memset(fill, 'p', pad);
        mp_add(&b, fill, pad);
        free(fill);
        mp_adds(&b, "\r\n\r\nv\r\n--XyZ--");
        if (extra) {
            expect_error(CT, b.p, b.n, -ISD_E_BAD_BODY,
                         "multipart body: part 1: part headers too large (over 16384 bytes)");
        } else {
            const struct expect e[] = {TEXT("a", "v")};
            expect_form(CT, b.p, b.n, e, 1);
        }
        free(b.p);
    }
    /* many short lines are counted together */
    struct mp_body b = {0};
    mp_adds(&b, "--XyZ\r\n" CD);
    for (int i = 0; i < 2100; i++)
        mp_adds(&b, "X-A: b\r\n");
    mp_adds(&b, "\r\nv\r\n--XyZ--");
    expect_error(CT, b.p, b.n, -ISD_E_BAD_BODY,
                 "multipart body: part 1: part headers too large (over 16384 bytes)");
    free(b.p);
}

static void preamble_limit(void **state)
{
    (void)state;
    for (int extra = 0; extra <= 1; extra++) {
        struct mp_body b = {0};
        size_t n = ISD_MP_PREAMBLE_MAX + (size_t)extra; /* the CRLF after it is not preamble */
        char *fill = malloc(n);
        memset(fill, '.', n);
        mp_add(&b, fill, n);
        free(fill);
        mp_adds(&b, "\r\n--XyZ\r\n" CD "\r\nv\r\n--XyZ--");
        if (extra) {
            expect_error(CT, b.p, b.n, -ISD_E_BAD_BODY,
                         "multipart body: the body does not start with the boundary (none in "
                         "the first 16384 bytes)");
        } else {
            const struct expect e[] = {TEXT("a", "v")};
            expect_form(CT, b.p, b.n, e, 1);
        }
        free(b.p);
    }
}

/* ---- callbacks that refuse, and the parser after an error ---- */

static int refuse_calls;

static int refuse_data(void *ctx, const void *data, size_t n)
{
    (void)ctx;
    (void)data;
    (void)n;
    refuse_calls++;
    return -ISD_E_TOO_LARGE;
}

static int nomem_begin(void *ctx, const struct isd_mp_part *part)
{
    (void)ctx;
    (void)part;
    return -ISD_E_NOMEM;
}

static int weird_end(void *ctx)
{
    (void)ctx;
    return -100000;
}

static void callback_errors(void **state)
{
    (void)state;
    static const char body[] = "--XyZ\r\n" CD "\r\nvalue\r\n--XyZ\r\n" CD "\r\nw\r\n--XyZ--";
    struct isd_error err = {0};
    struct isd_mp_parser *p = malloc(sizeof *p);
    const struct isd_mp_callbacks refuse = {NULL, refuse_data, NULL};
    assert_int_equal(isd_mp_parser_init(p, CT, &refuse, NULL, &err), 0);
    assert_int_equal(isd_mp_parser_feed(p, body, sizeof body - 1, &err), -ISD_E_TOO_LARGE);
    assert_string_equal(err.message,
                        "multipart body: part 1: refused by the receiver (ISD_E_TOO_LARGE)");
    assert_int_equal(refuse_calls, 1);
    /* the same error again, and no more callbacks */
    assert_int_equal(isd_mp_parser_feed(p, body, sizeof body - 1, &err), -ISD_E_TOO_LARGE);
    assert_int_equal(isd_mp_parser_finish(p, &err), -ISD_E_TOO_LARGE);
    assert_string_equal(err.message, "multipart body: the parser already failed on this body");
    assert_int_equal(refuse_calls, 1);
    isd_mp_parser_release(p);

    const struct isd_mp_callbacks nomem = {nomem_begin, NULL, NULL};
    assert_int_equal(isd_mp_parser_init(p, CT, &nomem, NULL, &err), 0);
    assert_int_equal(isd_mp_parser_feed(p, body, sizeof body - 1, &err), -ISD_E_NOMEM);
    assert_string_equal(err.message, "multipart body: part 1: out of memory");
    isd_mp_parser_release(p);

    const struct isd_mp_callbacks weird = {NULL, NULL, weird_end};
    assert_int_equal(isd_mp_parser_init(p, CT, &weird, NULL, &err), 0);
    assert_int_equal(isd_mp_parser_feed(p, body, sizeof body - 1, &err), -ISD_E_INTERNAL);
    assert_string_equal(err.message,
                        "multipart body: part 1: refused by the receiver (ISD_E_INTERNAL)");
    isd_mp_parser_release(p);

    /* no callbacks at all: parses and validates */
    assert_int_equal(isd_mp_parser_init(p, CT, NULL, NULL, &err), 0);
    assert_int_equal(isd_mp_parser_feed(p, body, sizeof body - 1, &err), 0);
    assert_int_equal(isd_mp_parser_finish(p, &err), 0);
    /* after the closing boundary, everything is epilogue */
    assert_int_equal(isd_mp_parser_feed(p, body, sizeof body - 1, &err), 0);
    assert_int_equal(isd_mp_parser_finish(p, &err), 0);
    isd_mp_parser_release(p);

    /* a parser whose init failed refuses to be fed */
    assert_int_equal(isd_mp_parser_init(p, "text/plain", NULL, NULL, &err), -ISD_E_BAD_BODY);
    assert_int_equal(isd_mp_parser_feed(p, body, 1, &err), -ISD_E_BAD_BODY);
    assert_int_equal(isd_mp_parser_finish(p, &err), -ISD_E_BAD_BODY);
    isd_mp_parser_release(p);
    free(p);
}

/* Part data reaches the callback straight from the caller's chunk: one call per chunk when
 * no '\r' is near the chunk's end. */
static int data_calls;
static const char *data_from;

static int count_data(void *ctx, const void *data, size_t n)
{
    (void)ctx;
    (void)n;
    if (data_calls++ == 0)
        data_from = data;
    return 0;
}

static void data_is_not_copied(void **state)
{
    (void)state;
    static const char head[] = "--XyZ\r\n" CD "\r\n";
    char chunk[65536];
    memset(chunk, 'd', sizeof chunk);
    struct isd_error err = {0};
    struct isd_mp_parser *p = malloc(sizeof *p);
    const struct isd_mp_callbacks cb = {NULL, count_data, NULL};
    assert_int_equal(isd_mp_parser_init(p, CT, &cb, NULL, &err), 0);
    assert_int_equal(isd_mp_parser_feed(p, head, sizeof head - 1, &err), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(isd_mp_parser_feed(p, chunk, sizeof chunk, &err), 0);
    assert_ptr_equal(data_from, chunk);
    assert_int_equal(data_calls, 10);
    assert_int_equal(isd_mp_parser_feed(p, "\r\n--XyZ--", 9, &err), 0);
    assert_int_equal(isd_mp_parser_finish(p, &err), 0);
    isd_mp_parser_release(p);
    free(p);
}

static int make_tricky(void **state)
{
    (void)state;
    tricky_a_len = tricky_data(tricky_a, "openai-k2x9q8w7e1h");
    tricky_b_len = tricky_data(tricky_b, "----formdata-undici-068719547513");
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(node_sdk_stream),
        cmocka_unit_test(node_formdata_undici),
        cmocka_unit_test(python_httpx),
        cmocka_unit_test(curl_form),
        cmocka_unit_test(tolerated_syntax),
        cmocka_unit_test(disposition_parameters),
        cmocka_unit_test(content_type_header),
        cmocka_unit_test(body_errors),
        cmocka_unit_test(delimiter_after_skippable_runs),
        cmocka_unit_test(truncated_at_every_offset),
        cmocka_unit_test(part_count_limit),
        cmocka_unit_test(header_block_limit),
        cmocka_unit_test(preamble_limit),
        cmocka_unit_test(callback_errors),
        cmocka_unit_test(data_is_not_copied),
    };
    return cmocka_run_group_tests(tests, make_tricky, NULL);
}
