/* Error helpers of the cuda backend and the device's architecture name. */
#include <pthread.h>
#include <stdio.h>

#include "cuda/kc.h"

kiln_status kc_fail_cuda(cudaError_t e, const char *what)
{
    if (e == cudaErrorMemoryAllocation)
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY,
                         "out of GPU memory (%s); lower the profile's max shapes, the workspace, or the number of "
                         "contexts",
                         what);
    return kiln_fail(KILN_ERR_DEVICE, "CUDA error in %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

kiln_status kc_check_launch(const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return KILN_OK;
    return kiln_fail(KILN_ERR_DEVICE, "launching %s failed: %s", kernel, cudaGetErrorString(e));
}

static pthread_once_t arch_once = PTHREAD_ONCE_INIT;
static char arch_name[16];

static void find_arch(void)
{
    int n = 0, dev = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError(); /* the "no device" error is sticky otherwise */
        return;
    }
    if (cudaGetDevice(&dev) != cudaSuccess) dev = 0;
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    snprintf(arch_name, sizeof arch_name, "sm_%d%d", prop.major, prop.minor);
}

const char *kiln_cuda_arch(void)
{
    pthread_once(&arch_once, find_arch);
    return arch_name[0] ? arch_name : NULL;
}
