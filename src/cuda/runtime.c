/* Error helpers of the cuda backend and the devices' architecture names. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include <cublasLt.h>
#include <cudnn.h>

#include "cuda/kc.h"

/* The versions a cuda plan's tactics belong to, major.minor (what cu_load
 * compares): part of the plan's cache key, so that processes with other
 * libraries (the CLI on the system's cuDNN, Python on PyTorch's) keep
 * their own plans instead of replacing each other's. */
void kiln_cuda_lib_versions(unsigned *cudnn, unsigned *cublaslt)
{
    *cudnn = (unsigned)(cudnnGetVersion() / 100);
    *cublaslt = (unsigned)(cublasLtGetVersion() / 100);
}

bool kc_error_sticky(cudaError_t e)
{
    /* the errors the CUDA runtime documents as leaving the context unusable
     * ("any further CUDA work will return the same error ... the process
     * must be terminated"), and hardware ones that do the same */
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
#if CUDART_VERSION >= 13000
    case cudaErrorTensorMemoryLeak:
#endif
    case cudaErrorExternalDevice:
    case cudaErrorECCUncorrectable:
    case cudaErrorNvlinkUncorrectable:
    case cudaErrorContextIsDestroyed:
    case cudaErrorCudartUnloading: return true;
    default: return false;
    }
}

/* What a caller can expect after error e, for the messages. */
static const char *error_kind(cudaError_t e)
{
    return kc_error_sticky(e) ? "sticky: the GPU's context is lost and every later CUDA call on it fails; restart "
                                "the process"
                              : "not sticky: this call failed, the GPU keeps working";
}

kiln_status kc_fail_cuda(cudaError_t e, const char *what)
{
    /* a failed call also sets this thread's last error, which the next
     * kernel launch check would report as its own: clear it (a sticky
     * error stays whatever is done) */
    cudaGetLastError();
    if (e == cudaErrorMemoryAllocation)
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY,
                         "out of GPU memory (%s); lower the profile's max shapes, the workspace, or the number of "
                         "contexts",
                         what);
    return kiln_fail(KILN_ERR_DEVICE, "CUDA error in %s: %s (%s; %s)", what, cudaGetErrorString(e),
                     cudaGetErrorName(e), error_kind(e));
}

kiln_status kc_check_launch(const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return KILN_OK;
    return kiln_fail(KILN_ERR_DEVICE, "launching %s failed: %s (%s; %s)", kernel, cudaGetErrorString(e),
                     cudaGetErrorName(e), error_kind(e));
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
