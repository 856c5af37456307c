/*
 * mksdmodel: writes a random-weight Stable Diffusion model (real architecture) for tests,
 * benchmarks and the PyTorch reference.
 *
 *   mksdmodel --preset tiny-sd1|tiny-sd2|tiny-inpaint|sd15|sd21 --layout single|diffusers
 *             --dtype f32|f16|bf16 [--seed N] [--exact] [--legacy-vae-attn] -o PATH
 *   mksdmodel --preset NAME --count      prints the parameter count of each part
 *
 * A single-file model is one .safetensors file; a diffusers model is a folder. See
 * tests/unit/support/sdmodel.h for what is written.
 */
#include "support/sdmodel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: mksdmodel --preset tiny-sd1|tiny-sd2|tiny-inpaint|sd15|sd21\n"
                    "                 --layout single|diffusers --dtype f32|f16|bf16\n"
                    "                 [--seed N] [--exact] [--legacy-vae-attn] -o PATH\n"
                    "       mksdmodel --preset NAME --count\n");
    return 2;
}

static int pick(const char *v, const char *const *words, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, words[i]) == 0)
            return i;
    return -1;
}

static int print_counts(const struct isd_sdm_config *cfg)
{
    static const char *const parts[] = {"unet", "text_encoder", "vae_encoder", "vae_decoder"};
    uint64_t total = 0;
    for (int p = 0; p < ISD_SDM_PARTS; p++) {
        uint64_t n = isd_sdm_param_count(cfg, p);
        printf("%-13s %llu\n", parts[p], (unsigned long long)n);
        total += n;
    }
    printf("%-13s %llu\n", "total", (unsigned long long)total);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const layouts[] = {"single", "diffusers"};
    static const char *const dtypes[] = {"f32", "f16", "bf16"};
    struct isd_sdm_config cfg;
    struct isd_sdm_options o;
    const char *preset = NULL, *out = NULL;
    int count = 0;
    isd_sdm_options_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--exact") == 0) {
            o.exact = 1;
        } else if (strcmp(a, "--legacy-vae-attn") == 0) {
            o.legacy_vae_attn = 1;
        } else if (strcmp(a, "--count") == 0) {
            count = 1;
        } else if (!v) {
            return usage();
        } else if (strcmp(a, "--preset") == 0) {
            preset = v, i++;
        } else if (strcmp(a, "-o") == 0) {
            out = v, i++;
        } else if (strcmp(a, "--layout") == 0) {
            if ((o.layout = pick(v, layouts, 2)) < 0)
                return usage();
            i++;
        } else if (strcmp(a, "--dtype") == 0) {
            if ((o.dtype = pick(v, dtypes, 3)) < 0)
                return usage();
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            o.seed = strtoull(v, &end, 10);
            if (errno || end == v || *end)
                return usage();
            i++;
        } else {
            return usage();
        }
    }
    if (!preset || isd_sdm_preset(preset, &cfg) < 0) {
        fprintf(stderr, "mksdmodel: unknown or missing --preset\n");
        return usage();
    }
    if (count)
        return print_counts(&cfg);
    if (!out)
        return usage();
    char msg[512];
    if (isd_sdm_write(&cfg, &o, out, msg, sizeof msg) < 0) {
        fprintf(stderr, "mksdmodel: %s\n", msg);
        return 1;
    }
    return 0;
}
