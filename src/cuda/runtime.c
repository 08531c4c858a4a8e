/* Error helpers of the cuda backend, and what its table tells the rest of
 * kiln about the devices outside any engine: which GPUs there are, their
 * architectures, the libraries' versions, device buffers and timing
 * (declared in cuda_probe.h). */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cublasLt.h>
#include <cudnn.h>

#include "cuda/cuda_probe.h"
#include "cuda/kc.h"

/* The versions a cuda plan's tactics belong to, major.minor (what cu_load
 * compares): part of the plan's cache key, so that processes with other
 * libraries (the CLI on the system's cuDNN, Python on PyTorch's) keep
 * their own plans instead of replacing each other's. The text is part of
 * every cached plan's name: keep it as it is. */
void kiln_cuda_lib_versions(char *buf, size_t cap)
{
    snprintf(buf, cap, "cudnn=%u;cublaslt=%u", (unsigned)(cudnnGetVersion() / 100),
             (unsigned)(cublasLtGetVersion() / 100));
}

kiln_status kiln_cuda_check_device(int device)
{
    int n = kiln_cuda_device_count();
    if (n == 0)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "the cuda backend needs an NVIDIA GPU and the CUDA runtime sees none; "
                                               "use the ref backend explicitly (--backend ref) on machines without one");
    if (device < 0 || device >= n)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "device %d: the CUDA runtime sees no such GPU; this machine has %d "
                         "(0..%d)", device, n, n - 1);
    return KILN_OK;
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

/* ---- device buffers and timing (kiln bench's device time) */

kiln_status kiln_cuda_device_alloc(int device, size_t bytes, void **ptr)
{
    *ptr = NULL;
    KC_CHECK(cudaSetDevice(device));
    cudaError_t ce = cudaMalloc(ptr, bytes ? bytes : 1);
    if (ce == cudaSuccess) return KILN_OK;
    *ptr = NULL;
    return kc_fail_cuda(ce, "cudaMalloc");
}

void kiln_cuda_device_free(void *ptr)
{
    if (ptr && cudaFree(ptr) != cudaSuccess) cudaGetLastError(); /* keep the next check clean */
}

kiln_status kiln_cuda_copy_to_device(void *dst, const void *src, size_t bytes)
{
    KC_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
    return KILN_OK;
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

kiln_status kiln_cuda_time_runs(int device, int n, kiln_status (*run)(void *arg, void *stream), void *arg, double *ms,
                                double *wall_s)
{
    KC_CHECK(cudaSetDevice(device));
    cudaStream_t s = NULL;
    cudaEvent_t *ev = ms && n > 0 ? calloc((size_t)n * 2, sizeof *ev) : NULL;
    if (ms && n > 0 && !ev) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory for %d CUDA events", 2 * n);
    kiln_status st = KILN_OK;
    cudaError_t ce = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (ce != cudaSuccess) st = kc_fail_cuda(ce, "cudaStreamCreateWithFlags");
    /* every event made before the first run, so that none is made between runs */
    for (int i = 0; ev && i < 2 * n && st == KILN_OK; i++)
        if ((ce = cudaEventCreate(&ev[i])) != cudaSuccess) st = kc_fail_cuda(ce, "cudaEventCreate");
    double t0 = seconds();
    for (int i = 0; i < n && st == KILN_OK; i++) {
        if (ev) cudaEventRecord(ev[2 * i], s);
        st = run(arg, s);
        if (ev) cudaEventRecord(ev[2 * i + 1], s);
    }
    if (st == KILN_OK && (ce = cudaStreamSynchronize(s)) != cudaSuccess) st = kc_fail_cuda(ce, "cudaStreamSynchronize");
    if (wall_s) *wall_s = seconds() - t0;
    for (int i = 0; ev && i < n && st == KILN_OK; i++) {
        float t = 0;
        cudaEventElapsedTime(&t, ev[2 * i], ev[2 * i + 1]);
        ms[i] = t;
    }
    for (int i = 0; ev && i < 2 * n; i++)
        if (ev[i]) cudaEventDestroy(ev[i]);
    free(ev);
    if (s) cudaStreamDestroy(s);
    return st;
}
