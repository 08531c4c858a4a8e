/* Conv and ConvTranspose through cuDNN's legacy convolution API (libcudnn_cnn).
 *
 * A conv is a "plan": cuDNN descriptors for the views' dims and strides, the
 * geometry (conv_common.c), and the tactic (algorithm, math type, fused or
 * not). conv.c's tuner times this path's candidates (kc_legacy_tune) next to
 * the graph API's and cuBLASLt's, and prepares a legacy tactic here; the op
 * kernels kiln_cuda_Conv / kiln_cuda_ConvTranspose instead ask cuDNN's
 * heuristics on every launch (kc_legacy_op_run). Where another path's tactic
 * does not run at a shape, this path's heuristic choice runs it
 * (kc_legacy_prepare_heuristic).
 *
 * ConvTranspose runs as cuDNN's backward-data pass (conv_common.c says why
 * that is ConvTranspose, and which pads cuDNN takes for it).
 *
 * Precision: f32 convs run with CUDNN_FMA_MATH (no TF32) unless the engine
 * is a TF32 one; f16 and bf16 store in their dtype and accumulate in f32
 * (cuDNN's PSEUDO_HALF configurations) on tensor cores. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "cuda/conv_common.h"
#include "cuda/conv_legacy.h"
#include "cuda/kc.h"

/* at least CUDNN_CONVOLUTION_FWD_ALGO_COUNT and _BWD_DATA_ALGO_COUNT */
#define MAX_ALGOS 8
/* fused candidates timed: the fastest few algorithms of the unfused search */
#define FUSED_TRIES 3
/* workspace the op kernels ask for at most (the builder's default limit is
 * 256 MiB for everything): the algorithms that want more have others
 * nearly as fast that need less */
#define OP_WS_CAP KC_CONV_OP_WS_CAP
/* algorithms whose workspace the op kernels' size query considers */
#define OP_WS_ALGOS 4

/* ---- plans */

typedef struct conv_desc {
    cudnnTensorDescriptor_t x, y;     /* for ConvTranspose: dy and dx of the backward pass */
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnTensorDescriptor_t bias;     /* bias and act: only when the fused call can express the conv */
    cudnnActivationDescriptor_t act;
} conv_desc;

struct kc_legacy_plan {
    int kind;          /* KC_CONV_STATE_LEGACY: kc_conv_run tells the paths' states apart */
    bool transpose;
    bool empty;        /* y has no elements: nothing to do */
    bool strict;       /* f32 without TF32: FMA math only */
    bool fusable;      /* cudnnConvolutionBiasActivationForward can compute it */
    bool has_bias, has_z;
    bool epilogue;     /* unfused: prog runs on y after the conv */
    kc_conv_geom g;
    conv_desc d;
    kc_conv_tactic t;
    size_t algo_ws;    /* cuDNN's workspace for t, aligned */
    kc_view ys;        /* y not dense (a concat's input written in place): the dense copy cuDNN writes */
    size_t ys_bytes;   /* ... in the workspace after the padded input, aligned; 0: cuDNN writes y */
    kc_ew_prog prog;   /* y = act(y + bias + z), the unfused epilogue */
};
typedef struct kc_legacy_plan conv_plan;

static void plan_free(conv_plan *p)
{
    if (!p) return;
    if (p->d.x) cudnnDestroyTensorDescriptor(p->d.x);
    if (p->d.y) cudnnDestroyTensorDescriptor(p->d.y);
    if (p->d.bias) cudnnDestroyTensorDescriptor(p->d.bias);
    if (p->d.w) cudnnDestroyFilterDescriptor(p->d.w);
    if (p->d.conv) cudnnDestroyConvolutionDescriptor(p->d.conv);
    if (p->d.act) cudnnDestroyActivationDescriptor(p->d.act);
    free(p);
}

static cudnnMathType_t base_math(const kc_handles *h, kiln_dtype dt)
{
    if (dt != KILN_F32) return CUDNN_TENSOR_OP_MATH;
    return h->precision == KILN_PRECISION_TF32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

/* What cudnnConvolutionBiasActivationForward can express: a bias of y's
 * dtype with unit stride, ReLU or no activation, and a residual z (if any)
 * described exactly as y (cuDNN requires zDesc == yDesc). */
static bool fusable(const kc_conv *c)
{
    const kc_view *b = &c->bias, *z = &c->z, *y = &c->y;
    if (!b->p || b->dt != y->dt || b->rank != 1 || b->d[0] != y->d[1] || (b->s[0] != 1 && b->d[0] != 1))
        return false;
    if (c->act != KC_ACT_NONE && c->act != KC_ACT_RELU) return false;
    if (z->p) {
        if (z->dt != y->dt || z->rank != y->rank) return false;
        for (int k = 0; k < y->rank; k++)
            if (z->d[k] != y->d[k] || (z->s[k] != y->s[k] && z->d[k] != 1)) return false;
    }
    return true;
}

/* role: "input", "output" */
static kiln_status set_tensor(cudnnTensorDescriptor_t t, const kc_view *v, bool cl, const char *role)
{
    int nd, d[KILN_MAX_RANK], s[KILN_MAX_RANK], layout;
    cudnnDataType_t dt = CUDNN_DATA_FLOAT;
    if (!kc_dnn_dtype(v->dt, &dt))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "the %s is %s; cuDNN convolves f32, f16 and bf16", role,
                         kiln_dtype_name(v->dt));
    if (!kc_dnn_shape(v, cl, &nd, d, s, &layout))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "the %s has a dim or stride beyond cuDNN's int", role);
    char what[64];
    snprintf(what, sizeof what, "describing the %s", role);
    return kc_dnn_check(cudnnSetTensorNdDescriptor(t, dt, nd, d, s), what);
}

static kiln_status set_filter(cudnnFilterDescriptor_t f, const kc_view *w, bool cl)
{
    int nd, d[KILN_MAX_RANK], s[KILN_MAX_RANK], layout;
    cudnnDataType_t dt = CUDNN_DATA_FLOAT;
    if (!kc_dnn_dtype(w->dt, &dt))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "the weights are %s; cuDNN convolves f32, f16 and bf16",
                         kiln_dtype_name(w->dt));
    if (!kc_dnn_shape(w, cl, &nd, d, s, &layout))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "the weights have a dim beyond cuDNN's int");
    if (layout < 0)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "the weights are neither KCRS- nor KRSC-dense; cuDNN takes one of the two");
    cudnnTensorFormat_t fmt = layout ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    return kc_dnn_check(cudnnSetFilterNdDescriptor(f, dt, fmt, nd, d), "describing the weights");
}

static kiln_status desc_create(kc_handles *h, const kc_conv *c, conv_plan *p, bool want_fused)
{
    conv_desc *d = &p->d;
    const kc_conv_geom *g = &p->g;
    bool cl = kc_conv_channels_last(c);
    kiln_status st;
    if ((st = kc_dnn_check(cudnnCreateTensorDescriptor(&d->x), "cudnnCreateTensorDescriptor")) != KILN_OK ||
        (st = kc_dnn_check(cudnnCreateTensorDescriptor(&d->y), "cudnnCreateTensorDescriptor")) != KILN_OK ||
        (st = kc_dnn_check(cudnnCreateFilterDescriptor(&d->w), "cudnnCreateFilterDescriptor")) != KILN_OK ||
        (st = kc_dnn_check(cudnnCreateConvolutionDescriptor(&d->conv), "cudnnCreateConvolutionDescriptor")) != KILN_OK)
        return st;
    if ((st = set_tensor(d->x, g->prepad ? &g->xp : &c->x, cl, "input")) != KILN_OK ||
        (st = set_tensor(d->y, p->ys_bytes ? &p->ys : &c->y, cl, "output")) != KILN_OK ||
        (st = set_filter(d->w, &c->w, cl)) != KILN_OK)
        return st;
    st = kc_dnn_check(cudnnSetConvolutionNdDescriptor(d->conv, g->dnn_nsp, g->pad, g->stride, g->dil,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                      "describing the convolution");
    if (st == KILN_OK)
        st = kc_dnn_check(cudnnSetConvolutionGroupCount(d->conv, g->group), "cudnnSetConvolutionGroupCount");
    if (st == KILN_OK)
        st = kc_dnn_check(cudnnSetConvolutionMathType(d->conv, base_math(h, c->x.dt)), "cudnnSetConvolutionMathType");
    if (st != KILN_OK || !want_fused || p->transpose || p->ys_bytes || !fusable(c)) return st;

    /* bias as [1, K, 1, 1(, 1)] with unit stride on K, in y's dtype: cuDNN's
     * type table for this call gives HALF data a HALF bias (FLOAT only for
     * the int8 configurations) */
    int nd = g->dnn_nsp + 2, bd[KILN_MAX_RANK], bs[KILN_MAX_RANK];
    cudnnDataType_t dt = CUDNN_DATA_FLOAT;
    kc_dnn_dtype(c->y.dt, &dt);
    for (int k = 0; k < nd; k++) bd[k] = bs[k] = 1;
    bd[1] = (int)c->y.d[1];
    bs[0] = bd[1];
    /* the fused call refuses CUDNN_PROPAGATE_NAN */
    cudnnActivationMode_t mode = c->act == KC_ACT_RELU ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY;
    if ((st = kc_dnn_check(cudnnCreateTensorDescriptor(&d->bias), "cudnnCreateTensorDescriptor")) != KILN_OK ||
        (st = kc_dnn_check(cudnnSetTensorNdDescriptor(d->bias, dt, nd, bd, bs), "describing the bias")) != KILN_OK ||
        (st = kc_dnn_check(cudnnCreateActivationDescriptor(&d->act), "cudnnCreateActivationDescriptor")) != KILN_OK ||
        (st = kc_dnn_check(cudnnSetActivationDescriptor(d->act, mode, CUDNN_NOT_PROPAGATE_NAN, 0.0),
                           "describing the activation")) != KILN_OK)
        return st;
    p->fusable = true;
    return KILN_OK;
}

/* Geometry, descriptors and epilogue of c; the tactic comes after
 * (plan_use). Views' pointers may be NULL (a workspace query): a NULL bias
 * or residual is an absent one. */
static kiln_status plan_create(kc_handles *h, const kc_conv *c, bool transpose, bool want_fused, conv_plan **out)
{
    *out = NULL;
    bool has_bias, has_z;
    kiln_status cst = kc_conv_check(h, c, &has_bias, &has_z);
    if (cst != KILN_OK) return cst;
    conv_plan *p = kiln_xcalloc(1, sizeof *p);
    if (!p) return KILN_ERR_OUT_OF_MEMORY;
    p->kind = KC_CONV_STATE_LEGACY;
    p->transpose = transpose;
    p->strict = c->x.dt == KILN_F32 && h->precision != KILN_PRECISION_TF32;
    p->has_bias = has_bias;
    p->has_z = has_z;
    p->t.math = base_math(h, c->x.dt);
    if (kc_view_numel(&c->y) == 0) {
        p->empty = true;
        *out = p;
        return KILN_OK;
    }
    kiln_status st = kc_conv_geom_nonempty(c, transpose, &p->g);
    if (st == KILN_OK && !kc_view_is_dense(&c->y, true) && !kc_view_is_dense(&c->y, false)) {
        /* the legacy API's algorithms want packed outputs: cuDNN writes a
         * dense copy in the workspace, then it is copied into y */
        p->ys = c->y;
        p->ys.p = NULL;
        kc_dense_strides(c->y.rank, c->y.d, kc_conv_view_channels_last(&c->y), p->ys.s);
        p->ys_bytes = kc_conv_align((size_t)kc_view_numel(&c->y) * kiln_dtype_size(c->y.dt));
    }
    if (st == KILN_OK) st = desc_create(h, c, p, want_fused);
    if (st != KILN_OK) {
        plan_free(p);
        return st;
    }
    p->epilogue = has_bias || has_z || c->act != KC_ACT_NONE;
    kc_conv_epilogue_prog(&p->prog, has_bias, has_z, c->act, c->act_a, c->act_b);
    *out = p;
    return KILN_OK;
}

/* Makes t the plan's tactic: math type on the descriptor and cuDNN's
 * workspace for it. Fails when cuDNN cannot run the algorithm here. */
static kiln_status plan_use(kc_handles *h, const kc_conv *c, conv_plan *p, const kc_conv_tactic *t)
{
    p->t = *t;
    p->algo_ws = 0;
    if (p->empty) return KILN_OK;
    int count = p->transpose ? CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT : CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    if (t->algo < 0 || t->algo >= count || t->math < CUDNN_DEFAULT_MATH || t->math > CUDNN_FMA_MATH)
        return kiln_fail(KILN_ERR_INTERNAL, "tactic with algorithm %d and math type %d", (int)t->algo, (int)t->math);
    if (t->fused && !p->fusable)
        return kiln_fail(KILN_ERR_INTERNAL,
                         "the tactic fuses bias and activation, which cuDNN's fused call cannot express here");
    if (t->fused && c->act == KC_ACT_NONE && t->algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
        return kiln_fail(KILN_ERR_INTERNAL, "a fused conv without activation runs with IMPLICIT_PRECOMP_GEMM only");
    /* FMA only for strict f32: other math types let cuDNN round f32 to
     * TF32; and never ALLOW_CONVERSION, which may round f32 to f16 */
    cudnnMathType_t math = p->strict ? CUDNN_FMA_MATH : (cudnnMathType_t)t->math;
    if (math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) math = base_math(h, c->x.dt);
    p->t.math = (int32_t)math;
    kiln_status st = kc_dnn_check(cudnnSetConvolutionMathType(p->d.conv, math), "cudnnSetConvolutionMathType");
    if (st != KILN_OK) return st;
    cudnnHandle_t dnn = (cudnnHandle_t)h->cudnn;
    size_t bytes = 0;
    if (p->transpose)
        st = kc_dnn_check(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn, p->d.w, p->d.x, p->d.conv, p->d.y,
                                                                       (cudnnConvolutionBwdDataAlgo_t)t->algo, &bytes),
                          "cudnnGetConvolutionBackwardDataWorkspaceSize");
    else
        st = kc_dnn_check(cudnnGetConvolutionForwardWorkspaceSize(dnn, p->d.x, p->d.w, p->d.conv, p->d.y,
                                                                  (cudnnConvolutionFwdAlgo_t)t->algo, &bytes),
                          "cudnnGetConvolutionForwardWorkspaceSize");
    if (st != KILN_OK) return st;
    p->algo_ws = kc_conv_align(bytes);
    return KILN_OK;
}

/* workspace before cuDNN's own: the padded input, the staged output */
static size_t plan_fixed(const conv_plan *p) { return p->g.xp_bytes + p->ys_bytes; }

static size_t plan_ws(const conv_plan *p) { return p->empty ? 0 : plan_fixed(p) + p->algo_ws; }

/* Enqueues the plan on s: the padded copy (if any), the conv, the epilogue. */
static kiln_status plan_enqueue(const conv_plan *p, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes,
                                cudaStream_t s)
{
    if (p->empty) return KILN_OK;
    size_t need = plan_ws(p);
    kiln_status st = kc_conv_run_check(c, ws, ws_bytes, need, p->has_bias, p->has_z);
    if (st != KILN_OK) return st;
    cudnnHandle_t dnn = (cudnnHandle_t)h->cudnn;
    if ((st = kc_dnn_check(cudnnSetStream(dnn, s), "cudnnSetStream")) != KILN_OK) return st;

    const void *x = c->x.p;
    if (p->g.prepad) {
        if ((st = kc_conv_prepad(&p->g, &c->x, ws, s)) != KILN_OK) return st;
        x = ws;
    }
    void *cws = ws ? (char *)ws + plan_fixed(p) : NULL;
    size_t cws_bytes = ws_bytes - plan_fixed(p);
    void *y = p->ys_bytes ? (char *)ws + p->g.xp_bytes : c->y.p;
    const float one = 1.0f, zero = 0.0f;

    if (p->transpose) {
        st = kc_dnn_check(cudnnConvolutionBackwardData(dnn, &one, p->d.w, c->w.p, p->d.x, x, p->d.conv,
                                                       (cudnnConvolutionBwdDataAlgo_t)p->t.algo, cws, cws_bytes, &zero,
                                                       p->d.y, y),
                          "cudnnConvolutionBackwardData");
    } else if (p->t.fused) {
        /* without a residual, z is y scaled by 0 (the call wants a z) */
        const float alpha2 = p->has_z ? 1.0f : 0.0f;
        const void *z = p->has_z ? c->z.p : c->y.p;
        return kc_dnn_check(cudnnConvolutionBiasActivationForward(
                                dnn, &one, p->d.x, x, p->d.w, c->w.p, p->d.conv, (cudnnConvolutionFwdAlgo_t)p->t.algo,
                                cws, cws_bytes, &alpha2, p->d.y, z, p->d.bias, c->bias.p, p->d.act, p->d.y, c->y.p),
                            "cudnnConvolutionBiasActivationForward");
    } else {
        st = kc_dnn_check(cudnnConvolutionForward(dnn, &one, p->d.x, x, p->d.w, c->w.p, p->d.conv,
                                                  (cudnnConvolutionFwdAlgo_t)p->t.algo, cws, cws_bytes, &zero, p->d.y,
                                                  y),
                          "cudnnConvolutionForward");
    }
    if (st == KILN_OK && p->ys_bytes) {
        kc_view staged = p->ys;
        staged.p = y;
        st = kc_copy(&staged, &c->y, s);
    }
    if (st != KILN_OK || !p->epilogue) return st;
    return kc_conv_epilogue_run(c, p->has_bias, p->has_z, &p->prog, s);
}

/* ---- cuDNN's heuristic choice */

/* cuDNN's heuristic ranking (no timing) as (algorithm, math type) pairs. */
static kiln_status heuristic_algos(kc_handles *h, const conv_plan *p, int *algo, int *math, int *n)
{
    cudnnHandle_t dnn = (cudnnHandle_t)h->cudnn;
    int got = 0;
    kiln_status st;
    *n = 0;
    if (p->transpose) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_ALGOS];
        st = kc_dnn_check(
            cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn, p->d.w, p->d.x, p->d.conv, p->d.y, MAX_ALGOS, &got, perf),
            "cudnnGetConvolutionBackwardDataAlgorithm_v7");
        for (int i = 0; st == KILN_OK && i < got; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS) {
                algo[*n] = perf[i].algo;
                math[(*n)++] = perf[i].mathType;
            }
    } else {
        cudnnConvolutionFwdAlgoPerf_t perf[MAX_ALGOS];
        st = kc_dnn_check(
            cudnnGetConvolutionForwardAlgorithm_v7(dnn, p->d.x, p->d.w, p->d.conv, p->d.y, MAX_ALGOS, &got, perf),
            "cudnnGetConvolutionForwardAlgorithm_v7");
        for (int i = 0; st == KILN_OK && i < got; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS) {
                algo[*n] = perf[i].algo;
                math[(*n)++] = perf[i].mathType;
            }
    }
    return st;
}

/* Makes the plan's tactic cuDNN's first heuristic choice whose workspace
 * fits ws_bytes; algorithm 0 when none does. */
static kiln_status pick_heuristic(kc_handles *h, const kc_conv *c, conv_plan *p, size_t ws_bytes)
{
    if (ws_bytes < plan_fixed(p))
        return kiln_fail(KILN_ERR_INTERNAL, "%zu bytes of workspace, the input and output copies need %zu", ws_bytes,
                         plan_fixed(p));
    size_t avail = ws_bytes - plan_fixed(p);
    int algo[MAX_ALGOS], math[MAX_ALGOS], na = 0;
    kiln_status st = heuristic_algos(h, p, algo, math, &na);
    if (st != KILN_OK) return st;
    for (int i = 0; i < na; i++) {
        kc_conv_tactic t = {.algo = algo[i], .math = math[i]};
        if (plan_use(h, c, p, &t) == KILN_OK && p->algo_ws <= avail) return KILN_OK;
        kiln_clear_error();
    }
    /* IMPLICIT_GEMM forward, ALGO_0 backward-data: any geometry, (almost)
     * no workspace */
    kc_conv_tactic t = {.algo = 0, .math = base_math(h, c->x.dt)};
    st = plan_use(h, c, p, &t);
    if (st == KILN_OK && p->algo_ws > avail)
        st = kiln_fail(KILN_ERR_UNSUPPORTED, "no cuDNN algorithm runs within %zu bytes of workspace", avail);
    return st;
}

/* ---- per shape (kc_conv_prepare, kc_conv_run, kc_conv_release) */

/* A legacy plan of cuDNN's heuristic choice: where a tuned tactic does not
 * run at the shape being prepared. */
kiln_status kc_legacy_prepare_heuristic(kc_handles *h, const kc_conv *c, void **state, size_t *ws_bytes)
{
    conv_plan *p;
    kiln_status st = plan_create(h, c, false, false, &p);
    if (st != KILN_OK) return st;
    if (!p->empty) st = pick_heuristic(h, c, p, kc_ws_within(h, plan_fixed(p) + OP_WS_CAP));
    if (st != KILN_OK) {
        plan_free(p);
        return st;
    }
    *state = p;
    *ws_bytes = plan_ws(p);
    return KILN_OK;
}

kiln_status kc_legacy_prepare(kc_handles *h, const kc_conv *c, const kc_conv_tactic *t, void **state, size_t *ws_bytes)
{
    kiln_status st;
    conv_plan *p;
    if ((st = plan_create(h, c, false, t->fused != 0, &p)) != KILN_OK) return st;
    if ((st = plan_use(h, c, p, t)) != KILN_OK) {
        /* a tactic tuned at one shape may be refused at another (the FFT
         * algorithms' size limits): cuDNN's heuristic choice instead */
        kiln_log(KILN_LOG_INFO, "conv '%s': algorithm %d does not run at this shape (%s); using cuDNN's heuristic choice",
                 c->n->name, (int)t->algo, kiln_last_error());
        kiln_clear_error();
        st = pick_heuristic(h, c, p, kc_ws_within(h, plan_fixed(p) + OP_WS_CAP));
    } else if (plan_ws(p) > h->ws_cap) {
        /* the workspace was sized at the profile's min, opt and max; at a
         * shape between them the tuned algorithm may want more */
        kiln_log(KILN_LOG_INFO,
                 "conv '%s': algorithm %d wants %zu bytes of workspace at this shape, the context has %zu; using "
                 "cuDNN's heuristic choice within it",
                 c->n->name, (int)t->algo, plan_ws(p), h->ws_cap);
        st = pick_heuristic(h, c, p, h->ws_cap);
    }
    if (st != KILN_OK) {
        plan_free(p);
        return st;
    }
    *state = p;
    *ws_bytes = plan_ws(p);
    return KILN_OK;
}

kiln_status kc_legacy_run(void *state, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes, cudaStream_t s)
{
    return plan_enqueue(state, h, c, ws, ws_bytes, s);
}

void kc_legacy_release(void *state) { plan_free(state); }

/* ---- tuning (kc_conv_tune) */

typedef struct tuner {
    kc_handles *h;
    const kc_conv *c;
    conv_plan *p;
    void *ws;
    size_t ws_limit;
    const kc_conv_timer *tm; /* conv.c's stream, events and workspace */
    char why[512]; /* the first refusal, for the message when all are refused */
} tuner;

/* Times tactic t; *ms < 0: skipped, because cuDNN refused the tactic or it
 * needs more workspace than allowed. */
static kiln_status time_tactic(tuner *tu, const kc_conv_tactic *t, float *ms)
{
    *ms = -1.0f;
    kiln_status st = plan_use(tu->h, tu->c, tu->p, t);
    if (st == KILN_OK && plan_ws(tu->p) > tu->ws_limit) return KILN_OK;
    if (st != KILN_OK) {
        if (!tu->why[0]) snprintf(tu->why, sizeof tu->why, "%s", kiln_last_error());
        kiln_clear_error();
        return KILN_OK;
    }
    return kc_conv_time(tu->tm, tu->h, tu->c, kc_legacy_run, tu->p, ms, tu->why, sizeof tu->why);
}

static bool has_tactic(const kc_conv_tactic *list, int n, const kc_conv_tactic *t)
{
    for (int i = 0; i < n; i++)
        if (list[i].algo == t->algo && list[i].fused == t->fused && list[i].math == t->math) return true;
    return false;
}

/* The candidates: every algorithm cuDNN's timed search ran within the
 * workspace, unfused (conv, then the epilogue program), and, when the fused
 * call can express the conv, the fastest few of them fused (without
 * activation only IMPLICIT_PRECOMP_GEMM, cuDNN's rule for IDENTITY). Every
 * candidate is then timed here the same way, epilogue included, so that
 * fused and unfused compare fairly; cuDNN's own times only order them. */
static int tune_candidates(tuner *tu, kc_conv_tactic *cand)
{
    conv_plan *p = tu->p;
    cudnnHandle_t dnn = (cudnnHandle_t)tu->h->cudnn;
    int math0 = base_math(tu->h, tu->c->x.dt);
    int nc = 0;
    cudnnConvolutionFwdAlgoPerf_t perf[MAX_ALGOS];
    int found = 0;
    /* the padded copy's contents do not matter for timing */
    void *x = p->g.prepad ? tu->ws : tu->c->x.p;
    void *cws = tu->ws ? (char *)tu->ws + plan_fixed(p) : NULL;
    size_t cws_limit = tu->ws_limit - plan_fixed(p);
    void *y = p->ys_bytes ? (char *)tu->ws + p->g.xp_bytes : tu->c->y.p;
    cudnnStatus_t fs = cudnnFindConvolutionForwardAlgorithmEx(dnn, p->d.x, x, p->d.w, tu->c->w.p, p->d.conv, p->d.y,
                                                              y, MAX_ALGOS, &found, perf, cws, cws_limit);
    if (fs == CUDNN_STATUS_SUCCESS) {
        for (int i = 0; i < found; i++) {
            if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > cws_limit) continue;
            kc_conv_tactic t = {.algo = perf[i].algo, .math = p->strict ? CUDNN_FMA_MATH : perf[i].mathType};
            if (!has_tactic(cand, nc, &t)) cand[nc++] = t;
        }
    } else {
        /* no search: every algorithm, each tried below (refusals skipped) */
        kiln_log(KILN_LOG_DEBUG, "conv '%s': cudnnFindConvolutionForwardAlgorithmEx: %s; timing every algorithm",
                 tu->c->n->name, cudnnGetErrorString(fs));
        for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; a++)
            cand[nc++] = (kc_conv_tactic){.algo = a, .math = math0};
    }
    if (!p->fusable) return nc;
    int unfused = nc;
    if (tu->c->act == KC_ACT_NONE) {
        kc_conv_tactic t = {.algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, .fused = 1, .math = math0};
        for (int i = 0; i < unfused; i++)
            if (cand[i].algo == t.algo) {
                t.math = cand[i].math;
                break;
            }
        cand[nc++] = t;
    } else {
        for (int i = 0; i < unfused && nc - unfused < FUSED_TRIES; i++) {
            kc_conv_tactic t = cand[i];
            t.fused = 1;
            if (!has_tactic(cand, nc, &t)) cand[nc++] = t;
        }
    }
    return nc;
}

static kiln_status tune_run(tuner *tu, kc_conv_tactic *best, float *best_ms)
{
    kc_conv_tactic cand[MAX_ALGOS + FUSED_TRIES + 1];
    bool trace = kc_conv_trace();
    int nc = tune_candidates(tu, cand);
    *best_ms = -1.0f;
    for (int i = 0; i < nc; i++) {
        float ms;
        kiln_status st = time_tactic(tu, &cand[i], &ms);
        if (st != KILN_OK) return st;
        if (ms >= 0)
            kiln_log(trace ? KILN_LOG_WARN : KILN_LOG_DEBUG, "conv '%s': legacy algo %d%s, math type %d: %.4f ms",
                     tu->c->n->name, (int)cand[i].algo, cand[i].fused ? " fused" : "", (int)tu->p->t.math, ms);
        else
            kiln_log(trace ? KILN_LOG_WARN : KILN_LOG_DEBUG,
                     "conv '%s': legacy algo %d%s, math type %d: skipped (refused, or over the workspace limit)",
                     tu->c->n->name, (int)cand[i].algo, cand[i].fused ? " fused" : "", (int)cand[i].math);
        if (ms >= 0 && (*best_ms < 0 || ms < *best_ms)) {
            *best_ms = ms;
            *best = tu->p->t; /* the math type as plan_use settled it */
        }
    }
    if (*best_ms < 0)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "none of %d cuDNN tactics runs this conv within %zu bytes of workspace%s%s",
                         nc, tu->ws_limit, tu->why[0] ? "; the first refusal: " : "", tu->why);
    return KILN_OK;
}

kiln_status kc_legacy_tune(kc_legacy_plan *p, kc_handles *h, const kc_conv *c, const kc_conv_timer *tm,
                           kc_conv_tactic *best, float *best_ms)
{
    tuner tu = {.h = h, .c = c, .p = p, .ws = tm->ws, .ws_limit = tm->ws_limit, .tm = tm};
    return tune_run(&tu, best, best_ms);
}

kiln_status kc_legacy_create(kc_handles *h, const kc_conv *c, bool transpose, bool want_fused, kc_legacy_plan **out)
{
    return plan_create(h, c, transpose, want_fused, out);
}

bool kc_legacy_empty(const kc_legacy_plan *p) { return p->empty; }

bool kc_legacy_strict(const kc_legacy_plan *p) { return p->strict; }

const kc_conv_tactic *kc_legacy_tactic(const kc_legacy_plan *p) { return &p->t; }

size_t kc_legacy_fixed(const kc_legacy_plan *p) { return plan_fixed(p); }

kiln_status kc_legacy_use(kc_handles *h, const kc_conv *c, kc_legacy_plan *p, const kc_conv_tactic *t)
{
    return plan_use(h, c, p, t);
}

/* ---- op kernels: Conv and ConvTranspose with cuDNN's heuristics per launch */

kiln_status kc_legacy_op_run(kc_handles *h, const kc_conv *c, bool transpose, void *ws, size_t ws_bytes,
                             cudaStream_t s)
{
    kiln_status st;
    conv_plan *p;
    if ((st = plan_create(h, c, transpose, false, &p)) != KILN_OK) return st;
    if (!p->empty) {
        st = pick_heuristic(h, c, p, ws ? ws_bytes : 0);
        if (st == KILN_OK) st = plan_enqueue(p, h, c, ws, ws_bytes, s);
    }
    plan_free(p);
    return st;
}

/* The padded copy and the largest workspace among cuDNN's first few
 * choices, capped: the run takes the first choice that fits what it gets.
 * A size cannot carry an error: on one this asks for nothing, and the run
 * reports it. */
size_t kc_legacy_op_ws(kc_handles *h, const kc_conv *c, bool transpose)
{
    conv_plan *p = NULL;
    if (plan_create(h, c, transpose, false, &p) != KILN_OK) {
        kiln_clear_error();
        return 0;
    }
    size_t most = 0;
    int algo[MAX_ALGOS], math[MAX_ALGOS], na = 0;
    if (!p->empty && heuristic_algos(h, p, algo, math, &na) == KILN_OK) {
        for (int i = 0, used = 0; i < na && used < OP_WS_ALGOS; i++) {
            kc_conv_tactic t = {.algo = algo[i], .math = math[i]};
            if (plan_use(h, c, p, &t) != KILN_OK) continue;
            used++;
            if (p->algo_ws > most) most = p->algo_ws;
        }
    }
    kiln_clear_error();
    if (most > OP_WS_CAP) most = OP_WS_CAP;
    size_t total = p->empty ? 0 : plan_fixed(p) + most;
    plan_free(p);
    return total;
}
