#include "support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmp_path[4096];

static void remove_tmpdir(void)
{
    if (tmp_path[0]) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_path);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp_path);
    }
}

const char *isd_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    if (tmp_path[0])
        remove_tmpdir();
    else
        atexit(remove_tmpdir);
    snprintf(tmp_path, sizeof tmp_path, "%s/imagesd-test-XXXXXX", base);
    if (!mkdtemp(tmp_path)) {
        perror("mkdtemp");
        abort();
    }
    return tmp_path;
}
