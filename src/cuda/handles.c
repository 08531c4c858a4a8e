/* The library handles of a cuda context: one cuDNN and one cuBLASLt handle,
 * created once per context because creating them costs milliseconds and
 * device memory. The kernels set the stream on every call (cheap), so a
 * handle never depends on which stream it was created under. */
#include <string.h>

#include <cublasLt.h>
#include <cudnn.h>

#include <stdint.h>

#include "cuda/kc.h"

kiln_status kc_handles_init(kc_handles *h, int precision)
{
    memset(h, 0, sizeof *h);
    h->precision = precision;
    h->ws_cap = SIZE_MAX;
    int dev = 0, major = 0, minor = 0;
    KC_CHECK(cudaGetDevice(&dev));
    KC_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    KC_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    h->sm = major * 10 + minor;

    /* a libcudnn of another major version than the headers has other
     * structs and enums: refuse it here rather than misbehave later */
    size_t ver = cudnnGetVersion();
    if (ver / 10000 != CUDNN_MAJOR)
        return kiln_fail(KILN_ERR_DEVICE, "libcudnn is version %zu, kiln was built against cuDNN %d.%d", ver,
                         CUDNN_MAJOR, CUDNN_MINOR);

    cudnnHandle_t dnn = NULL;
    cudnnStatus_t ds = cudnnCreate(&dnn);
    if (ds != CUDNN_STATUS_SUCCESS)
        return kiln_fail(KILN_ERR_DEVICE, "cudnnCreate failed: %s", cudnnGetErrorString(ds));
    h->cudnn = dnn;

    cublasLtHandle_t lt = NULL;
    cublasStatus_t ls = cublasLtCreate(&lt);
    if (ls != CUBLAS_STATUS_SUCCESS) {
        kc_handles_release(h);
        return kiln_fail(KILN_ERR_DEVICE, "cublasLtCreate failed: %s (%s)", cublasLtGetStatusName(ls),
                         cublasLtGetStatusString(ls));
    }
    h->cublaslt = lt;
    return KILN_OK;
}

void kc_handles_release(kc_handles *h)
{
    if (!h) return;
    if (h->cudnn) cudnnDestroy((cudnnHandle_t)h->cudnn);
    if (h->cublaslt) cublasLtDestroy((cublasLtHandle_t)h->cublaslt);
    h->cudnn = NULL;
    h->cublaslt = NULL;
}
