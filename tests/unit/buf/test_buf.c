#include "support/test.h"

#include "buf/buf.h"
#include "err/err.h"

#include <stdlib.h>
#include <string.h>

static void append_grows_and_terminates(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(isd_buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3000);
    assert_int_equal(b.data[3000], '\0');
    assert_memory_equal(b.data + 2997, "abc", 3);
    isd_buf_release(&b);
    assert_null(b.data);
}

static void ceiling_refuses_without_change(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, 10);
    assert_int_equal(isd_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(isd_buf_append(&b, "x", 1), -ISD_E_TOO_LARGE);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    assert_int_equal(isd_buf_reserve(&b, SIZE_MAX), -ISD_E_TOO_LARGE);
    isd_buf_release(&b);
}

static void printf_and_detach(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, 100);
    assert_int_equal(isd_buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_int_equal(isd_buf_printf(&b, "%0200d", 1), -ISD_E_TOO_LARGE);
    size_t n;
    char *p = isd_buf_detach(&b, &n);
    assert_int_equal(n, 4);
    assert_string_equal(p, "42-x");
    assert_null(b.data);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_grows_and_terminates),
        cmocka_unit_test(ceiling_refuses_without_change),
        cmocka_unit_test(printf_and_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
