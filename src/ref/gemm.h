/* The ref backend's internal matrix multiply, shared by Conv, ConvTranspose,
 * Gemm and MatMul, and the f32 staging of 16-bit float tensors those kernels
 * compute through. Not part of any public API. */
#ifndef KILN_REF_GEMM_H
#define KILN_REF_GEMM_H

#include "ir/ir.h"

/* C = alpha * A * B + beta * C, f32.
 * A is m x k with element (i, p) at A[i * rsa + p * csa]; B is k x n with
 * element (p, j) at B[p * rsb + j * csb]: any layout or transpose is a choice
 * of strides. C is row-major with row stride ldc. beta == 0 means C is not
 * read (it may hold garbage or NaN, as the BLAS convention). Cache-blocked
 * (packed panels, register-blocked micro-kernel) and split over a few
 * threads when the product is large. Returns KILN_ERR_OUT_OF_MEMORY when the
 * packing buffers cannot be allocated. */
kiln_status kiln_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t rsa, int64_t csa,
                       const float *B, int64_t rsb, int64_t csb, float beta, float *C, int64_t ldc);

/* The same contract in f64, unblocked: f64 models are rare and small. */
void kiln_dgemm(int64_t m, int64_t n, int64_t k, double alpha, const double *A, int64_t rsa, int64_t csa,
                const double *B, int64_t rsb, int64_t csb, double beta, double *C, int64_t ldc);

/* Threads kiln_sgemm may use (1 + the online CPUs it may run on, capped). */
int kiln_gemm_threads(void);

/* ---- f32 staging: f16 / bf16 tensors compute in f32 and are rounded back
 * once at the end (round to nearest even), as onnxruntime's CPU kernels do. */

/* True for the dtypes that compute through f32: f32, f16, bf16. */
bool kiln_f32_computable(kiln_dtype t);
/* `count` elements of `data` (dtype t, one of kiln_f32_computable) as f32.
 * For f32 returns `data` itself; otherwise a malloc'd copy that the caller
 * frees with kiln_f32_release. NULL on OOM (reported). */
float *kiln_f32_acquire(kiln_dtype t, const void *data, int64_t count);
void kiln_f32_release(const void *data, float *f);
/* An f32 buffer for an output of dtype t: `out` itself for f32, else malloc'd
 * (NULL on OOM). kiln_f32_commit rounds it into `out` and frees it. */
float *kiln_f32_scratch(kiln_dtype t, void *out, int64_t count);
void kiln_f32_commit(kiln_dtype t, void *out, float *f, int64_t count);

#endif
