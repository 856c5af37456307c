/*
 * mkclipvocab: writes a synthetic CLIP tokenizer (vocab.json + merges.txt) into a directory,
 * for tests and the reference scripts (tests/reference/gen_tokenizer.py).
 *
 *   mkclipvocab DIR [full|small] [SEED]      (defaults: full, seed 0)
 */
#include "support/clipvocab.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s DIR [full|small] [SEED]\n", argv[0]);
        return 2;
    }
    enum isd_cv_size size = ISD_CV_FULL;
    if (argc > 2) {
        if (strcmp(argv[2], "small") == 0)
            size = ISD_CV_SMALL;
        else if (strcmp(argv[2], "full") != 0) {
            fprintf(stderr, "%s: size must be full or small\n", argv[0]);
            return 2;
        }
    }
    uint64_t seed = 0;
    if (argc > 3) {
        char *end;
        errno = 0;
        seed = strtoull(argv[3], &end, 0);
        if (errno || *end || end == argv[3]) {
            fprintf(stderr, "%s: bad seed '%s'\n", argv[0], argv[3]);
            return 2;
        }
    }
    if (mkdir(argv[1], 0777) < 0 && errno != EEXIST) {
        fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1], strerror(errno));
        return 1;
    }
    struct isd_eng_error err = {0};
    if (isd_cv_write(argv[1], size, seed, &err) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        return 1;
    }
    return 0;
}
