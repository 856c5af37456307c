/*
 * test: what every unit test includes: cmocka plus a few helpers.
 *
 * Each tests/unit/<module>/test_*.c is one binary with a main() that calls
 * cmocka_run_group_tests(); tests/run.sh runs it with CMOCKA_MESSAGE_OUTPUT=TAP and counts
 * the "ok"/"not ok" lines. Helpers here make temporary directories and read fixture files.
 */
#ifndef ISD_TEST_H
#define ISD_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// clang-format off
#include <cmocka.h>
// clang-format on

/* Creates a fresh directory under $TMPDIR (or /tmp) and returns its path (static storage,
 * valid until the next call). Removed at exit. */
const char *isd_test_tmpdir(void);

#endif
