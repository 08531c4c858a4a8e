/* What the three convolution paths of the cuda backend share, and what sits
 * below all of them (conv_common.c): cuDNN errors and dtypes, layouts,
 * operand checks, the geometry, the elementwise epilogue and the timing of
 * one candidate. The paths are cuDNN's legacy API (conv_legacy.c), its graph
 * API (conv_graph.c) and cuBLASLt matmuls (conv_gemm.c); conv.c, above them,
 * tunes, prepares, runs and releases (kc.h), dispatching on the tactic.
 * Nothing here calls a path or conv.c. */
#ifndef KILN_CUDA_CONV_COMMON_H
#define KILN_CUDA_CONV_COMMON_H

#include <cudnn.h>

#include "cuda/kc.h"
#include "ir/shape_conv.h"

/* workspace pieces (the padded input copy, cuDNN's scratch) start at this */
#define KC_CONV_WS_ALIGN 256
/* workspace a conv asks for at most when it falls back to a heuristic choice
 * at a shape its tuned tactic does not run at */
#define KC_CONV_OP_WS_CAP ((size_t)64 << 20)
/* timing of one candidate: warm-up runs, then timed runs, the median kept */
#define KC_CONV_WARMUP_RUNS 2
#define KC_CONV_TIMED_RUNS 5

/* kc_conv_tactic.fused of a tactic that runs through the graph API (0 and 1
 * are the legacy API's unfused and fused calls) */
#define KC_CONV_GRAPH 2
/* ... and of a pointwise conv run as one cuBLASLt matmul (conv_gemm.c) */
#define KC_CONV_GEMM 3
/* kc_conv_tactic.math of a graph tactic: the heuristic mode in the low byte,
 * this bit when bias, residual and activation are ops of the graph */
#define KC_CONV_GRAPH_MODE_A 0
#define KC_CONV_GRAPH_MODE_FALLBACK 1
#define KC_CONV_GRAPH_POINTWISE 0x100

/* The first member of every state kc_conv_prepare returns, saying whose it is. */
enum { KC_CONV_STATE_LEGACY = 0x4c474359, KC_CONV_STATE_GRAPH = 0x47524148, KC_CONV_STATE_GEMM = 0x47454d4d };

static inline size_t kc_conv_align(size_t n)
{
    return (n + KC_CONV_WS_ALIGN - 1) / KC_CONV_WS_ALIGN * KC_CONV_WS_ALIGN;
}

/* ---- errors and dtypes (conv_common.c) */
/* KILN_OK, or KILN_ERR_DEVICE naming `what`, cuDNN's status and its last error text. */
kiln_status kc_dnn_check(cudnnStatus_t s, const char *what);
bool kc_dnn_dtype(kiln_dtype t, cudnnDataType_t *out);
/* $KILN_CONV_TRACE set (and not "0"): the tuners log every candidate at WARN. */
bool kc_conv_trace(void);

/* ---- layouts (conv_common.c) */
/* Channels-last: dense that way only, or not dense at all (a concat's
 * input written in place: a channel slice of a wider tensor) with unit
 * channel stride. */
bool kc_conv_view_channels_last(const kc_view *v);
/* The layout cuDNN is told for tensors dense in both (an axis of extent 1):
 * the output's, else the input's. */
bool kc_conv_channels_last(const kc_conv *c);
/* The view as cuDNN takes it: rank 3 (1-D conv) becomes rank 4 with a height
 * of 1; a tensor dense in one layout gets that layout's strides (preferring
 * `cl`), *layout = 1 channels last, 0 NCHW, -1 neither. False when a dim or
 * stride does not fit cuDNN's int. */
bool kc_dnn_shape(const kc_view *v, bool cl, int *nd, int *di, int *si, int *layout);
/* The strides of a dense tensor of dims d in NCHW order or channels-last. */
void kc_dense_strides(int r, const int64_t *d, bool cl, int64_t *s);

/* ---- operands (conv_common.c) */
/* c is something cuDNN convolves: one float dtype throughout, a [K] bias
 * and a residual of y's dims where present (*has_bias, *has_z say so). */
kiln_status kc_conv_check(const kc_handles *h, const kc_conv *c, bool *has_bias, bool *has_z);

/* At run: the workspace (ws may be NULL when need is 0) holds `need`
 * bytes, x, w and y are on the device, and bias and residual are there
 * exactly when they were at prepare. KILN_ERR_INTERNAL otherwise. */
kiln_status kc_conv_run_check(const kc_conv *c, const void *ws, size_t ws_bytes, size_t need, bool has_bias,
                              bool has_z);

/* ---- geometry (conv_common.c) */
typedef struct kc_conv_geom {
    int nsp;                      /* spatial axes of the node: 1, 2 or 3 */
    int dnn_nsp;                  /* as cuDNN sees them: a 1-D conv is 2-D */
    int group;
    int pad[KILN_MAX_SPATIAL];    /* cuDNN's (symmetric), per dnn_nsp axis */
    int stride[KILN_MAX_SPATIAL];
    int dil[KILN_MAX_SPATIAL];
    bool prepad;                  /* x goes through a zero-padded copy */
    kc_view xp;                   /* that copy (p unset: it lives at the workspace's head) */
    int64_t xp_off;               /* elements from the copy's start to x's first element */
    size_t xp_bytes;              /* workspace the copy takes, aligned */
} kc_conv_geom;

/* The geometry of c from its node's attributes; transpose: ConvTranspose. */
kiln_status kc_conv_geom_init(const kc_conv *c, bool transpose, kc_conv_geom *g);
/* The same for a conv whose output is not empty: an empty input or
 * weights then is KILN_ERR_UNSUPPORTED. */
kiln_status kc_conv_geom_nonempty(const kc_conv *c, bool transpose, kc_conv_geom *g);
/* g->prepad: zero the copy at ws's head and copy x into it, on s. */
kiln_status kc_conv_prepad(const kc_conv_geom *g, const kc_view *x, void *ws, cudaStream_t s);

/* ---- epilogue (conv_common.c) */
/* y = act(y + bias + z) as an elementwise program over inputs (y, [bias], [z]). */
void kc_conv_epilogue_prog(kc_ew_prog *p, bool bias, bool z, kc_act act, float a, float b);
/* A [K] bias as a tensor of y's dims: stride 0 but along the channels. */
kc_view kc_conv_bias_over(const kc_view *bias, const kc_view *y);
/* Runs prog (from kc_conv_epilogue_prog with these bias and z) in place on
 * c->y, through kc_bias_act where y's layout allows. */
kiln_status kc_conv_epilogue_run(const kc_conv *c, bool bias, bool z, const kc_ew_prog *prog, cudaStream_t s);

/* ---- timing (conv_common.c) */

/* What kc_conv_tune lends the paths' tuners: a private stream, events,
 * the workspace and its limit. */
typedef struct kc_conv_timer {
    cudaStream_t s;
    cudaEvent_t *ev; /* KC_CONV_TIMED_RUNS + 1 */
    void *ws;
    size_t ws_limit;
} kc_conv_timer;

/* A path's run of its own state (kc_legacy_run, kc_graph_run, kc_gemm_conv_run). */
typedef kiln_status (*kc_conv_run_fn)(void *state, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes,
                                      cudaStream_t s);

/* Times run(state) on tm->s as every conv tuner does: warm-up runs, then
 * KC_CONV_TIMED_RUNS back to back between events; *ms is the median, or < 0
 * when the run was refused (its message into why[why_cap] when why is given
 * and still empty; the error cleared, the device fine). A failure that broke
 * the device is returned. The path's tuner passes its own run, so that
 * nothing here calls back up into conv.c's dispatch. */
kiln_status kc_conv_time(const kc_conv_timer *tm, kc_handles *h, const kc_conv *c, kc_conv_run_fn run, void *state,
                         float *ms, char *why, size_t why_cap);

#endif
