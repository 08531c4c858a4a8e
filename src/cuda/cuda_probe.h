/* Toolchain probe (probe.cu): callable from C. */
#ifndef KILN_CUDA_PROBE_H
#define KILN_CUDA_PROBE_H
#ifdef __cplusplus
extern "C" {
#endif
/* Number of CUDA devices the runtime sees; 0 without a GPU or driver. */
int kiln_cuda_device_count(void);
/* y = a*x + y on the GPU; 0 on success, -1 if the GPU could not run it. */
int kiln_cuda_probe_axpy(int n, float a, const float *x, float *y);
#ifdef __cplusplus
}
#endif
#endif
