/* Page-locked host memory of the cuda backend, behind kiln_host_alloc and
 * kiln_host_register (src/runtime/host_memory.c keeps the table of
 * buffers and the plain-memory fallback). Portable flags: one buffer
 * serves the engines of every GPU of the process. */
#include "cuda/kc.h"

static bool have_device(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* the "no device" error is sticky otherwise */
        return false;
    }
    return n > 0;
}

kiln_status kc_host_alloc(size_t bytes, void **ptr)
{
    *ptr = NULL;
    if (!have_device()) return kiln_fail(KILN_ERR_UNSUPPORTED, "the CUDA runtime sees no GPU");
    cudaError_t ce = cudaHostAlloc(ptr, bytes, cudaHostAllocPortable);
    if (ce == cudaSuccess) return KILN_OK;
    *ptr = NULL;
    cudaGetLastError();
    if (ce == cudaErrorMemoryAllocation)
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY,
                         "kiln_host_alloc: cannot page-lock %zu bytes (cudaHostAlloc: %s); page-locked memory comes "
                         "out of RAM the system cannot swap (and `ulimit -l` in some containers): ask for less, or use "
                         "plain memory for this buffer",
                         bytes, cudaGetErrorString(ce));
    return kc_fail_cuda(ce, "cudaHostAlloc (kiln_host_alloc)");
}

void kc_host_free(void *ptr)
{
    if (cudaFreeHost(ptr) != cudaSuccess) cudaGetLastError(); /* nothing to do about it; keep the next check clean */
}

kiln_status kc_host_register(void *ptr, size_t bytes)
{
    if (!have_device()) return kiln_fail(KILN_ERR_UNSUPPORTED, "the CUDA runtime sees no GPU");
    cudaError_t ce = cudaHostRegister(ptr, bytes, cudaHostRegisterPortable);
    if (ce == cudaSuccess) return KILN_OK;
    cudaGetLastError();
    if (ce == cudaErrorHostMemoryAlreadyRegistered)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_host_register: %p (%zu bytes) is page-locked already (cudaHostAlloc or "
                         "cudaHostRegister outside kiln); it needs no registration",
                         ptr, bytes);
    if (ce == cudaErrorMemoryAllocation)
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY,
                         "kiln_host_register: cannot page-lock %zu bytes (cudaHostRegister: %s); register less",
                         bytes, cudaGetErrorString(ce));
    return kc_fail_cuda(ce, "cudaHostRegister (kiln_host_register)");
}

kiln_status kc_host_unregister(void *ptr)
{
    cudaError_t ce = cudaHostUnregister(ptr);
    if (ce == cudaSuccess) return KILN_OK;
    cudaGetLastError();
    if (ce == cudaErrorHostMemoryNotRegistered) {
        /* unlocked already (cudaHostUnregister outside kiln): what the
         * caller asked for holds, and kiln forgets the range */
        kiln_log(KILN_LOG_WARN, "kiln_host_unregister: %p was not registered with CUDA any more (unregistered outside "
                 "kiln?)", ptr);
        return KILN_OK;
    }
    return kc_fail_cuda(ce, "cudaHostUnregister (kiln_host_unregister)");
}

bool kc_host_pinned(const void *p)
{
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        /* runtimes before CUDA 11 fail on memory they do not know */
        cudaGetLastError();
        return false;
    }
    return a.type == cudaMemoryTypeHost;
}
