/* Conv through cuDNN's graph (backend) API (conv_graph.c). Above
 * conv_common.c, below conv.c: conv.c's tuner and dispatcher call these;
 * nothing here calls conv.c. A graph tactic has fused == KC_CONV_GRAPH
 * (conv_graph.c says what its algo, math and reserved hold); its state's
 * first member is KC_CONV_STATE_GRAPH. */
#ifndef KILN_CUDA_CONV_GRAPH_H
#define KILN_CUDA_CONV_GRAPH_H

#include "cuda/conv_common.h"

/* Times graph API candidates for c; where one beats *best_ms (< 0: nothing
 * yet), *best and *best_ms become it. Candidates cuDNN refuses are skipped;
 * an error is returned only when the device broke. */
kiln_status kc_graph_tune(kc_handles *h, const kc_conv *c, const kc_conv_timer *tm, kc_conv_tactic *best,
                          float *best_ms);
/* A state for tactic t (fused == KC_CONV_GRAPH) at c's dims, *ws_bytes its
 * workspace; fails when no graph engine runs c at these dims. */
kiln_status kc_graph_prepare(kc_handles *h, const kc_conv *c, const kc_conv_tactic *t, void **state,
                             size_t *ws_bytes);
kiln_status kc_graph_run(void *state, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes, cudaStream_t s);
void kc_graph_release(void *state);

#endif
