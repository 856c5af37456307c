#include "api/api_int.h"

#include <string.h>

static const char *const gpt_qualities[] = {"low", "medium", "high", "auto", NULL};
static const char *const dalle2_qualities[] = {"standard", NULL};
static const char *const dalle3_qualities[] = {"standard", "hd", NULL};
static const char *const gpt_sizes[] = {"1024x1024", "1536x1024", "1024x1536", "auto", NULL};
static const char *const dalle2_sizes[] = {"256x256", "512x512", "1024x1024", NULL};
static const char *const dalle3_sizes[] = {"1024x1024", "1792x1024", "1024x1792", NULL};

#define MB (1024L * 1024L)

/* §4.1. `quality_auto` follows the recorded resolutions (gpt-image-1 → medium,
 * gpt-image-1-mini → high, gpt-image-2 → medium); gpt-image-1.5 was not recorded and
 * resolves to medium like its predecessor. */
static const struct isd_profile profiles[ISD_PROFILE__COUNT] = {
    [ISD_PROFILE_DALL_E_2] =
        {
            .id = ISD_PROFILE_DALL_E_2,
            .name = "dall-e-2",
            .gpt = false,
            .max_prompt_chars = 1000,
            .max_n = 10,
            .qualities = dalle2_qualities,
            .quality_auto = "standard",
            .size_rule = ISD_SIZES_LISTED_INVALID_VALUE,
            .sizes = dalle2_sizes,
            .size_auto = "1024x1024",
            .usage = ISD_USAGE_NONE,
            .edits = true,
            .variations = true,
            .max_edit_images = 1,
            .max_image_bytes = 4 * MB,
        },
    [ISD_PROFILE_DALL_E_3] =
        {
            .id = ISD_PROFILE_DALL_E_3,
            .name = "dall-e-3",
            .gpt = false,
            .max_prompt_chars = 4000,
            .max_n = 1,
            .qualities = dalle3_qualities,
            .quality_auto = "standard",
            .size_rule = ISD_SIZES_LISTED_INVALID_SIZE,
            .sizes = dalle3_sizes,
            .size_auto = "1024x1024",
            .usage = ISD_USAGE_NONE,
        },
    [ISD_PROFILE_GPT_IMAGE_1] =
        {
            .id = ISD_PROFILE_GPT_IMAGE_1,
            .name = "gpt-image-1",
            .gpt = true,
            .max_prompt_chars = 32000,
            .max_n = 10,
            .qualities = gpt_qualities,
            .quality_auto = "medium",
            .size_rule = ISD_SIZES_LISTED_INVALID_VALUE,
            .sizes = gpt_sizes,
            .size_auto = "1024x1024",
            .transparency = true,
            .streaming = true,
            .input_fidelity = true,
            .usage = ISD_USAGE_GPT_IMAGE_1_TABLE,
            .edits = true,
            .max_edit_images = 16,
            .max_image_bytes = 50 * MB,
        },
    [ISD_PROFILE_GPT_IMAGE_1_MINI] =
        {
            .id = ISD_PROFILE_GPT_IMAGE_1_MINI,
            .name = "gpt-image-1-mini",
            .gpt = true,
            .max_prompt_chars = 32000,
            .max_n = 10,
            .qualities = gpt_qualities,
            .quality_auto = "high",
            .size_rule = ISD_SIZES_LISTED_INVALID_VALUE,
            .sizes = gpt_sizes,
            .size_auto = "1024x1024",
            .transparency = true,
            .streaming = true,
            .input_fidelity = false,
            .usage = ISD_USAGE_GPT_IMAGE_1_TABLE,
            .edits = true,
            .max_edit_images = 16,
            .max_image_bytes = 50 * MB,
        },
    [ISD_PROFILE_GPT_IMAGE_1_5] =
        {
            .id = ISD_PROFILE_GPT_IMAGE_1_5,
            .name = "gpt-image-1.5",
            .gpt = true,
            .max_prompt_chars = 32000,
            .max_n = 10,
            .qualities = gpt_qualities,
            .quality_auto = "medium",
            .size_rule = ISD_SIZES_LISTED_INVALID_VALUE,
            .sizes = gpt_sizes,
            .size_auto = "1024x1024",
            .transparency = true,
            .streaming = true,
            .input_fidelity = true,
            .usage = ISD_USAGE_GPT_IMAGE_1_TABLE,
            .edits = true,
            .max_edit_images = 16,
            .max_image_bytes = 50 * MB,
        },
    [ISD_PROFILE_GPT_IMAGE_2] =
        {
            .id = ISD_PROFILE_GPT_IMAGE_2,
            .name = "gpt-image-2",
            .gpt = true,
            .max_prompt_chars = 32000,
            .max_n = 10,
            .qualities = gpt_qualities,
            .quality_auto = "medium",
            .size_rule = ISD_SIZES_FREE,
            .sizes = NULL,
            .size_auto = "1024x1024",
            .transparency = false,
            .streaming = true,
            .input_fidelity = false,
            .usage = ISD_USAGE_GPT_IMAGE_2,
            .output_tokens_details = true,
            .edits = true,
            .max_edit_images = 16,
            .max_image_bytes = 50 * MB,
        },
};

const struct isd_profile *isd_api_profile(enum isd_profile_id id)
{
    if ((unsigned)id >= ISD_PROFILE__COUNT)
        return NULL;
    return &profiles[id];
}

const struct isd_profile *isd_api_profile_by_name(const char *name)
{
    for (int i = 0; i < ISD_PROFILE__COUNT; i++)
        if (strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    return NULL;
}
