/* Error helpers of the cuda backend and the devices' architecture names. */
#include <pthread.h>
#include <stdbool.h>
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

/* "sm_XY" per GPU, looked up once each; a GPU past the table is not
 * cached (and gets NULL: kiln serves at most that many) */
#define ARCH_DEVICES 64
static pthread_mutex_t arch_mu = PTHREAD_MUTEX_INITIALIZER;
static char arch_name[ARCH_DEVICES][16];
static bool arch_known[ARCH_DEVICES];

const char *kiln_cuda_arch_of(int device)
{
    if (device < 0 || device >= ARCH_DEVICES) return NULL;
    pthread_mutex_lock(&arch_mu);
    if (!arch_known[device]) {
        int n = 0;
        struct cudaDeviceProp prop;
        if (cudaGetDeviceCount(&n) != cudaSuccess || device >= n ||
            cudaGetDeviceProperties(&prop, device) != cudaSuccess)
            cudaGetLastError(); /* the "no device" error is sticky otherwise */
        else
            snprintf(arch_name[device], sizeof arch_name[device], "sm_%d%d", prop.major, prop.minor);
        arch_known[device] = true;
    }
    const char *r = arch_name[device][0] ? arch_name[device] : NULL;
    pthread_mutex_unlock(&arch_mu);
    return r;
}

const char *kiln_cuda_arch(void)
{
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) {
        cudaGetLastError();
        dev = 0;
    }
    return kiln_cuda_arch_of(dev);
}
