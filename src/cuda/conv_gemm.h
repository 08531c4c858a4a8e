/* Pointwise convs as one cuBLASLt matmul (conv_gemm.c). Above
 * conv_common.c, below conv.c: conv.c's tuner and dispatcher call these;
 * nothing here calls conv.c. A gemm tactic has fused == KC_CONV_GEMM; its
 * state's first member is KC_CONV_STATE_GEMM. */
#ifndef KILN_CUDA_CONV_GEMM_H
#define KILN_CUDA_CONV_GEMM_H

#include "cuda/conv_common.h"

/* c is a 1x1, stride-1, unpadded, ungrouped 2-D conv on dense
 * channels-last tensors of one float dtype: one matmul computes it. */
bool kc_gemm_conv_fits(const kc_conv *c);
/* Times cuBLASLt's candidates for c, as kc_graph_tune does (nothing when c
 * does not fit). */
kiln_status kc_gemm_conv_tune(kc_handles *h, const kc_conv *c, const kc_conv_timer *tm, kc_conv_tactic *best,
                              float *best_ms);
kiln_status kc_gemm_conv_prepare(kc_handles *h, const kc_conv *c, const kc_conv_tactic *t, void **state,
                                 size_t *ws_bytes);
kiln_status kc_gemm_conv_run(void *state, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes, cudaStream_t s);
void kc_gemm_conv_release(void *state);

#endif
