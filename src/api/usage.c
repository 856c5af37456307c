/*
 * Token usage (§9). Output image tokens follow the published gpt-image-1 table and the
 * gpt-image-2 formula exactly; text tokens are an estimate (no o200k vocabulary ships with
 * imagesd): see isd_api_text_tokens() in api.h and docs/api.md.
 */
#include "api/api_int.h"

#include "text/text.h"

#include <string.h>

static bool is_ascii_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

long isd_api_text_tokens(const char *text, size_t len)
{
    long tokens = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        size_t start = i;
        if (c == ' ' && i + 1 < len && is_ascii_letter((unsigned char)text[i + 1]))
            i++; /* a word carries its leading space, as in o200k */
        c = (unsigned char)text[i];
        if (is_ascii_letter(c)) {
            while (i < len && (is_ascii_letter((unsigned char)text[i]) || text[i] == '\''))
                i++;
            size_t word = i - start;
            tokens += word <= 8 ? 1 : (long)((word + 5) / 6);
        } else if (is_digit(c)) {
            size_t run = 0;
            while (i < len && is_digit((unsigned char)text[i]))
                i++, run++;
            tokens += (long)((run + 2) / 3);
        } else if (is_space(c)) {
            while (i < len && is_space((unsigned char)text[i]))
                i++;
            tokens += (i - start > 1 || text[start] != ' ') ? 1 : 0;
        } else if (c < 0x80) {
            while (i < len && (unsigned char)text[i] < 0x80 && !is_space((unsigned char)text[i]) &&
                   !is_ascii_letter((unsigned char)text[i]) && !is_digit((unsigned char)text[i]))
                i++;
            tokens += (long)((i - start + 2) / 3);
        } else {
            size_t chars = 0;
            while (i < len && (unsigned char)text[i] >= 0x80) {
                isd_utf8_next(text, len, &i);
                chars++;
            }
            tokens += (long)((chars + 1) / 2);
        }
    }
    return tokens;
}

/* §9.1, identical for gpt-image-1, -1-mini and -1.5. */
static long gpt_image_1_tokens(const char *quality, int w, int h)
{
    static const struct {
        const char *quality;
        long square, portrait, landscape;
    } table[] = {
        {"low", 272, 408, 400},
        {"medium", 1056, 1584, 1568},
        {"high", 4160, 6240, 6208},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].quality, quality) != 0)
            continue;
        if (w == h)
            return table[i].square;
        return w < h ? table[i].portrait : table[i].landscape;
    }
    return 0;
}

/* §9.2: the gpt-image-2 formula, reproducing the recorded 1254x1254 medium → 2058. */
static long gpt_image_2_tokens(const char *quality, int w, int h)
{
    long f = strcmp(quality, "low") == 0 ? 16 : strcmp(quality, "high") == 0 ? 96 : 48;
    long long L = w > h ? w : h, S = w > h ? h : w;
    long long short_axis = (2 * f * S + L) / (2 * L);
    long long num = f * short_axis * (2000000LL + (long long)w * h);
    return (long)((num + 3999999) / 4000000);
}

long isd_api_image_output_tokens(const struct isd_profile *p, const char *quality, int w, int h)
{
    switch (p->usage) {
    case ISD_USAGE_GPT_IMAGE_1_TABLE:
        return gpt_image_1_tokens(quality, w, h);
    case ISD_USAGE_GPT_IMAGE_2:
        return gpt_image_2_tokens(quality, w, h);
    case ISD_USAGE_NONE:
        break;
    }
    return 0;
}

long isd_api_image_input_tokens(int w, int h, bool high_fidelity)
{
    double sw = w, sh = h;
    if (sw > 2048 || sh > 2048) { /* fit within 2048 x 2048 first, as GPT-4o tiling does */
        double s = 2048.0 / (sw > sh ? sw : sh);
        sw *= s;
        sh *= s;
    }
    double shortest = sw < sh ? sw : sh;
    if (shortest > 512) { /* then the shortest side to 512 px */
        double s = 512.0 / shortest;
        sw *= s;
        sh *= s;
    }
    long tw = (long)((sw + 511.999) / 512), th = (long)((sh + 511.999) / 512);
    if (tw < 1)
        tw = 1;
    if (th < 1)
        th = 1;
    long tokens = 65 + 129 * tw * th;
    if (high_fidelity)
        tokens += w == h ? 4160 : 6240;
    return tokens;
}

void isd_api_usage(const struct isd_images_request *r, long input_image_tokens, int partials_sent,
                   struct isd_usage *out)
{
    memset(out, 0, sizeof *out);
    if (r->profile->usage == ISD_USAGE_NONE)
        return;
    out->input_text_tokens = isd_api_text_tokens(r->prompt ? r->prompt : "", r->prompt_len);
    out->input_image_tokens = input_image_tokens;
    out->output_image_tokens =
        (long)r->n * isd_api_image_output_tokens(r->profile, r->quality, r->width, r->height) +
        100L * partials_sent;
}
