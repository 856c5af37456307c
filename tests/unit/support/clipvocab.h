/*
 * clipvocab: writes a synthetic but well-formed CLIP tokenizer (HF layout: vocab.json and
 * merges.txt) for tests, since the real CLIP vocabulary is not downloadable here.
 *
 * Layout as openai/CLIP builds its vocabulary: ids 0..255 the byte characters of
 * bytes_to_unicode() (in its order), 256..511 the same with "</w>", then one token per merge
 * (the concatenation of its two parts), then "<|startoftext|>" and "<|endoftext|>" last.
 * Merges are learned by greedy BPE on a small built-in English/prompt corpus (most frequent
 * pair first, ties by the smaller ids), then filled up to the preset's count with
 * pseudo-random but valid merges of existing tokens (a seeded splitmix64 chooses them: mostly
 * lowercase-letter tokens, some pieces of UTF-8 characters, some anything; biased towards
 * short, early tokens so that many fire on real text). The same (preset, seed) always gives
 * byte-identical files.
 *
 *   ISD_CV_FULL   49408 tokens (48894 merges): the real size; BOS 49406, EOS 49407
 *   ISD_CV_SMALL   2048 tokens  (1534 merges): for fast tests; BOS 2046, EOS 2047
 *
 * Errors: ISD_ENG_EIO (cannot write), ISD_ENG_ENOMEM, ISD_ENG_EINVAL (bad preset).
 *
 *     struct isd_eng_error err = {0};
 *     if (isd_cv_write(dir, ISD_CV_FULL, 0, &err) < 0) ... // dir/vocab.json, dir/merges.txt
 */
#ifndef ISD_TEST_CLIPVOCAB_H
#define ISD_TEST_CLIPVOCAB_H

#include "engine/core/core.h"

#include <stdint.h>

enum isd_cv_size {
    ISD_CV_FULL = 0,
    ISD_CV_SMALL = 1,
};

/* Number of tokens (vocab.json entries) a preset writes; 0 for an unknown preset. */
int isd_cv_vocab_size(enum isd_cv_size size);
/* Writes dir/vocab.json and dir/merges.txt (dir must exist). */
int isd_cv_write(const char *dir, enum isd_cv_size size, uint64_t seed, struct isd_eng_error *err);

#endif
