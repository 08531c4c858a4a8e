/* Core: errors, dtypes, f16/bf16 conversion, version. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "core/core.h"

static void test_error_is_thread_local_message(void **state)
{
    (void)state;
    kiln_status s = kiln_fail(KILN_ERR_IO, "cannot open '%s'", "x.onnx");
    assert_int_equal(s, KILN_ERR_IO);
    assert_string_equal(kiln_last_error(), "cannot open 'x.onnx'");
    kiln_fail_prefix(s, "model: ");
    assert_string_equal(kiln_last_error(), "model: cannot open 'x.onnx'");
    assert_string_equal(kiln_status_name(KILN_ERR_SHAPE), "KILN_ERR_SHAPE");
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(kiln_version(), KILN_VERSION_MAJOR * 10000 + KILN_VERSION_MINOR * 100 + KILN_VERSION_PATCH);
    assert_non_null(strchr(kiln_version_string(), '.'));
}

static void test_f16_roundtrip(void **state)
{
    (void)state;
    /* values exactly representable in f16 come back unchanged */
    const float exact[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f, 0.333251953125f};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        assert_true(kiln_f16_to_f32(kiln_f32_to_f16(exact[i])) == exact[i]);
    /* ties round to even: 1 + 2^-11 lies between 1 and 1 + 2^-10 */
    assert_int_equal(kiln_f32_to_f16(1.0f + 0.00048828125f), 0x3c00);
    assert_int_equal(kiln_f32_to_f16(1.0f + 3 * 0.00048828125f), 0x3c02);
    assert_int_equal(kiln_f32_to_f16(1e6f), 0x7c00);
    assert_true(isnan(kiln_f16_to_f32(kiln_f32_to_f16(NAN))));
}

static void test_bf16_and_f8(void **state)
{
    (void)state;
    assert_true(kiln_bf16_to_f32(kiln_f32_to_bf16(1.5f)) == 1.5f);
    assert_int_equal(kiln_f32_to_bf16(1.0f + 1.0f / 256), 0x3f80); /* tie to even */
    assert_true(kiln_f8e4m3_to_f32(kiln_f32_to_f8e4m3(448.0f)) == 448.0f);
    assert_true(kiln_f8e4m3_to_f32(kiln_f32_to_f8e4m3(1000.0f)) == 448.0f); /* saturates */
    assert_true(kiln_f8e4m3_to_f32(kiln_f32_to_f8e4m3(0.875f)) == 0.875f);
    assert_true(kiln_f8e4m3_to_f32(kiln_f32_to_f8e4m3(-0.001953125f)) == -0.001953125f); /* smallest subnormal */
}

static void test_dtype_names(void **state)
{
    (void)state;
    assert_string_equal(kiln_dtype_name(KILN_F16), "f16");
    assert_int_equal(kiln_dtype_size(KILN_I64), 8);
    assert_int_equal(kiln_dtype_size((kiln_dtype)99), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_is_thread_local_message),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_f16_roundtrip),
        cmocka_unit_test(test_bf16_and_f8),
        cmocka_unit_test(test_dtype_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
