/* Conv and ConvTranspose through cuDNN's legacy convolution API
 * (conv_legacy.c). Above conv_common.c, below conv.c: conv.c's tuner and
 * dispatcher call these; nothing here calls conv.c. */
#ifndef KILN_CUDA_CONV_LEGACY_H
#define KILN_CUDA_CONV_LEGACY_H

#include "cuda/conv_common.h"

/* A legacy plan: cuDNN descriptors for a conv's dims and strides, its
 * geometry and its tactic. Its first member is KC_CONV_STATE_LEGACY. */
typedef struct kc_legacy_plan kc_legacy_plan;

/* ---- per shape (kc_conv_prepare, kc_conv_run, kc_conv_release) */

/* A state for tactic t (fused 0 or 1) at c's dims, *ws_bytes its
 * workspace; cuDNN's heuristic choice where t does not run at these dims
 * or wants more workspace than the context has. */
kiln_status kc_legacy_prepare(kc_handles *h, const kc_conv *c, const kc_conv_tactic *t, void **state, size_t *ws_bytes);
/* A state of cuDNN's heuristic choice: where a tuned tactic does not run at
 * the shape being prepared. */
kiln_status kc_legacy_prepare_heuristic(kc_handles *h, const kc_conv *c, void **state, size_t *ws_bytes);
/* Enqueues the plan on s: the padded copy (if any), the conv, the epilogue. */
kiln_status kc_legacy_run(void *state, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes, cudaStream_t s);
void kc_legacy_release(void *state);

/* ---- tuning (kc_conv_tune) */

/* Geometry, descriptors and epilogue of c; the tactic comes after
 * (kc_legacy_use). want_fused: the fused call's descriptors too, where it
 * can express c. The plan is the caller's (kc_legacy_release). */
kiln_status kc_legacy_create(kc_handles *h, const kc_conv *c, bool transpose, bool want_fused, kc_legacy_plan **out);
/* y has no elements: the plan does nothing. */
bool kc_legacy_empty(const kc_legacy_plan *p);
/* f32 without TF32: FMA math only. */
bool kc_legacy_strict(const kc_legacy_plan *p);
/* The plan's tactic: the math type as kc_legacy_use settled it (after
 * kc_legacy_create, the dtype's base math type). */
const kc_conv_tactic *kc_legacy_tactic(const kc_legacy_plan *p);
/* Workspace before cuDNN's own: the padded input, the staged output. */
size_t kc_legacy_fixed(const kc_legacy_plan *p);
/* Makes t the plan's tactic; fails when cuDNN cannot run the algorithm here. */
kiln_status kc_legacy_use(kc_handles *h, const kc_conv *c, kc_legacy_plan *p, const kc_conv_tactic *t);
/* Times cuDNN's legacy candidates on p (from kc_legacy_create with
 * want_fused): *best and *best_ms become the fastest (*best_ms < 0 when none
 * ran); KILN_ERR_UNSUPPORTED when none runs within tm->ws_limit. */
kiln_status kc_legacy_tune(kc_legacy_plan *p, kc_handles *h, const kc_conv *c, const kc_conv_timer *tm,
                           kc_conv_tactic *best, float *best_ms);

/* ---- op kernels (kiln_cuda_Conv, kiln_cuda_ConvTranspose): cuDNN's
 * heuristics on every launch */

/* Runs c with cuDNN's first heuristic choice that fits ws_bytes. */
kiln_status kc_legacy_op_run(kc_handles *h, const kc_conv *c, bool transpose, void *ws, size_t ws_bytes,
                             cudaStream_t s);
/* The workspace kc_legacy_op_run asks for; 0 on an error (cleared). */
size_t kc_legacy_op_ws(kc_handles *h, const kc_conv *c, bool transpose);

#endif
