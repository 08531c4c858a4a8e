/* The CUDA toolchain probe: compiled and linked in every CUDA build; run on
 * a GPU it must compute y = a*x + y. Without a GPU (CI) it says so and skips. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>

#ifdef KILN_HAVE_CUDA
#include "cuda/cuda_probe.h"
#endif

static void test_axpy_on_gpu(void **state)
{
    (void)state;
#ifdef KILN_HAVE_CUDA
    float x[1000], y[1000], want[1000];
    kt_fill_uniform(x, 1000, 1, -1, 1);
    kt_fill_uniform(y, 1000, 2, -1, 1);
    for (int i = 0; i < 1000; i++) want[i] = 2.5f * x[i] + y[i];
    assert_int_equal(kiln_cuda_probe_axpy(1000, 2.5f, x, y), 0);
    for (int i = 0; i < 1000; i++) assert_true(fabsf(y[i] - want[i]) <= 1e-6f * (1 + fabsf(want[i])));
    printf("ran on the GPU (%d device(s))\n", kiln_cuda_device_count());
#endif
}

int main(void)
{
    /* 77: CTest's SKIP_RETURN_CODE, so a machine without a GPU shows this
     * test as skipped with the reason, never as passed */
#ifndef KILN_HAVE_CUDA
    printf("SKIPPED: kiln was built without CUDA\n");
    return 77;
#else
    if (kiln_cuda_device_count() == 0) {
        printf("SKIPPED: no CUDA device on this machine\n");
        return 77;
    }
#endif
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_axpy_on_gpu)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
