/* What the CUDA runtime sees outside any engine, callable from C: the
 * devices (probe.cu), and what the cuda backend's table (backend.c) gives
 * the rest of kiln about them (runtime.c): their architectures, the
 * libraries' versions, device buffers and timing. */
#ifndef KILN_CUDA_PROBE_H
#define KILN_CUDA_PROBE_H

#include <stddef.h>

#include "kiln.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Number of CUDA devices the runtime sees; 0 without a GPU or driver. */
int kiln_cuda_device_count(void);
/* y = a*x + y on the GPU; 0 on success, -1 if the GPU could not run it. */
int kiln_cuda_probe_axpy(int n, float a, const float *x, float *y);

/* ---- runtime.c: the members of kiln_cuda_backend (src/runtime/backend.h
 * says what each does) */
kiln_status kiln_cuda_check_device(int device);
/* "sm_90" of GPU `device`, NULL without it */
const char *kiln_cuda_arch_of(int device);
/* "cudnn=9;cublaslt=12": major.minor of each, as cu_load compares them */
void kiln_cuda_lib_versions(char *buf, size_t cap);
kiln_status kiln_cuda_device_alloc(int device, size_t bytes, void **ptr);
void kiln_cuda_device_free(void *ptr);
kiln_status kiln_cuda_copy_to_device(void *dst, const void *src, size_t bytes);
kiln_status kiln_cuda_time_runs(int device, int n, kiln_status (*run)(void *arg, void *stream), void *arg, double *ms,
                                double *wall_s);
#ifdef __cplusplus
}
#endif
#endif
