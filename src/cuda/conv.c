/* Conv and ConvTranspose through cuDNN's legacy convolution API (libcudnn_cnn).
 *
 * A conv is a "plan": cuDNN descriptors for the views' dims and strides, the
 * geometry, and the tactic (algorithm, math type, fused or not). The builder
 * tunes a tactic once (kc_conv_tune) and keeps it in the plan file; the op
 * kernels kiln_cuda_Conv / kiln_cuda_ConvTranspose instead ask cuDNN's
 * heuristics on every launch.
 *
 * The tuner also times the engines of cuDNN's graph API (conv_graph.c) and
 * keeps whichever is fastest; a graph tactic (fused == KC_CONV_GRAPH) is
 * prepared and run there, and where no graph engine runs the conv at a
 * shape, the legacy API's heuristic choice runs it. KILN_CONV_TRACE=1 logs
 * every candidate and its time; KILN_CONV_GRAPH=0 leaves the graph API out;
 * KILN_CONV_CHECK=1 runs the graph API's choice once against the legacy
 * API's and refuses it when their outputs differ.
 *
 * Geometry. ONNX pads each end of an axis on its own (pads, auto_pad); cuDNN
 * pads both ends alike. When symmetric padding by the head pad gives ONNX's
 * output size, both read the same windows (the tail pad is equal, or never
 * reached, or more than ONNX's but never reached) and cuDNN simply gets the
 * head pad. Otherwise (SAME_UPPER with an odd total pad, common in models
 * exported from TensorFlow) x is first copied into a zero-padded buffer at
 * the head of the workspace and cuDNN convolves that without padding.
 *
 * ConvTranspose is cuDNN's backward-data pass of the forward conv whose input
 * has ConvTranspose's output shape: out[i*s + k*d - pad] += x[i] * w[k] is
 * exactly that pass with pad = ONNX's head pad. cuDNN accepts it when its
 * forward conv maps ConvTranspose's output size back onto the input size,
 * which covers symmetric pads with any output_padding below the stride; other
 * combinations are refused (KILN_ERR_UNSUPPORTED), naming the axis.
 *
 * Precision: f32 convs run with CUDNN_FMA_MATH (no TF32) unless the engine
 * is a TF32 one; f16 and bf16 store in their dtype and accumulate in f32
 * (cuDNN's PSEUDO_HALF configurations) on tensor cores. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "cuda/conv_geom.h"
#include "cuda/kc.h"
#include "ir/shape_conv.h"

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

/* ---- errors */

kiln_status kc_dnn_check(cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS) return KILN_OK;
    char detail[256] = "";
    cudnnGetLastErrorString(detail, sizeof detail);
    return kiln_fail(KILN_ERR_DEVICE, "%s failed: %s%s%s", what, cudnnGetErrorString(s), detail[0] ? ": " : "",
                     detail);
}

bool kc_dnn_dtype(kiln_dtype t, cudnnDataType_t *out)
{
    switch (t) {
    case KILN_F32: *out = CUDNN_DATA_FLOAT; return true;
    case KILN_F16: *out = CUDNN_DATA_HALF; return true;
    case KILN_BF16: *out = CUDNN_DATA_BFLOAT16; return true;
    default: return false;
    }
}

bool kc_conv_trace(void)
{
    const char *v = getenv("KILN_CONV_TRACE");
    return v && v[0] && strcmp(v, "0") != 0;
}

/* ---- layouts
 * A kiln tensor is logically NCHW; its strides say whether it is stored
 * NCHW-dense, channels-last-dense (NHWC, NWC, NDHWC) or something else. */

/* Axes from slowest to fastest in memory. */
static void layout_order(int r, bool cl, int *order)
{
    order[0] = 0;
    if (!cl) {
        for (int i = 1; i < r; i++) order[i] = i;
    } else {
        for (int i = 2; i < r; i++) order[i - 1] = i;
        order[r - 1] = 1;
    }
}

/* Dense in that layout; axes of extent 1 may have any stride. */
static bool dense_in(int r, const int64_t *d, const int64_t *s, bool cl)
{
    int order[KILN_MAX_RANK];
    layout_order(r, cl, order);
    int64_t want = 1;
    for (int i = r - 1; i >= 0; i--) {
        int k = order[i];
        if (d[k] != 1 && s[k] != want) return false;
        want *= d[k];
    }
    return true;
}

bool kc_view_is_dense(const kc_view *v, bool channels_last)
{
    return v->rank >= 2 && v->rank <= KILN_MAX_RANK && dense_in(v->rank, v->d, v->s, channels_last);
}

void kc_dense_strides(int r, const int64_t *d, bool cl, int64_t *s)
{
    int order[KILN_MAX_RANK];
    layout_order(r, cl, order);
    int64_t st = 1;
    for (int i = r - 1; i >= 0; i--) {
        int k = order[i];
        s[k] = st;
        st *= d[k] > 0 ? d[k] : 1;
    }
}

/* Channels-last: dense that way only, or not dense at all (a concat's
 * input written in place: a channel slice of a wider tensor) with unit
 * channel stride. */
static bool view_channels_last(const kc_view *v)
{
    bool cl = dense_in(v->rank, v->d, v->s, true), cf = dense_in(v->rank, v->d, v->s, false);
    if (cl || cf) return cl && !cf;
    return v->rank >= 3 && v->d[1] > 1 && v->s[1] == 1;
}

/* The layout cuDNN is told when a tensor is dense in both (some axes are
 * 1): the output's, else the input's. Telling cuDNN the layout the rest of
 * the conv has keeps it on that layout's kernels. */
bool kc_conv_channels_last(const kc_conv *c)
{
    bool cl = dense_in(c->y.rank, c->y.d, c->y.s, true), cf = dense_in(c->y.rank, c->y.d, c->y.s, false);
    if (cl != cf || !cl) return view_channels_last(&c->y);
    return view_channels_last(&c->x);
}

/* The legacy API takes 4-D and 5-D tensors only: a 1-D conv runs as a 2-D
 * one of height 1, the inserted axis placed as a dense tensor of either
 * layout would have it. Dense tensors get their layout's strides, so that
 * the arbitrary strides of size-1 axes cannot make cuDNN see another
 * layout. False when a dim or stride does not fit cuDNN's int. */
bool kc_dnn_shape(const kc_view *v, bool cl, int *nd, int *di, int *si, int *layout)
{
    int64_t d[KILN_MAX_RANK], s[KILN_MAX_RANK];
    int r = v->rank;
    if (r == 3) {
        d[0] = v->d[0], d[1] = v->d[1], d[2] = 1, d[3] = v->d[2];
        s[0] = v->s[0], s[1] = v->s[1], s[2] = v->s[2] * v->d[2], s[3] = v->s[2];
        r = 4;
    } else {
        memcpy(d, v->d, (size_t)r * sizeof *d);
        memcpy(s, v->s, (size_t)r * sizeof *s);
    }
    *layout = -1;
    if (dense_in(r, d, s, cl)) {
        kc_dense_strides(r, d, cl, s);
        *layout = cl;
    } else if (dense_in(r, d, s, !cl)) {
        kc_dense_strides(r, d, !cl, s);
        *layout = !cl;
    }
    for (int k = 0; k < r; k++) {
        if (d[k] < 1 || d[k] > INT_MAX || s[k] < 0 || s[k] > INT_MAX) return false;
        di[k] = (int)d[k];
        si[k] = (int)s[k];
    }
    *nd = r;
    return true;
}

/* ---- geometry */

/* (kc_conv_geom is in conv_geom.h: the graph path shares it) */

kiln_status kc_conv_geom_init(const kc_conv *c, bool transpose, kc_conv_geom *g)
{
    memset(g, 0, sizeof *g);
    int r = c->x.rank;
    if (r < 3 || r > 5 || c->w.rank != r || c->y.rank != r)
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "input of rank %d, weights of rank %d, output of rank %d: cuDNN runs 1-D, 2-D and 3-D "
                         "convolutions (rank 3 to 5, all alike)",
                         r, c->w.rank, c->y.rank);
    kiln_shape xs = {.rank = r};
    memcpy(xs.d, c->x.d, (size_t)r * sizeof *xs.d);
    int64_t kernel[KILN_MAX_SPATIAL];
    for (int i = 0; i < r - 2; i++) kernel[i] = c->w.d[i + 2];
    kiln_window win;
    kiln_status st = transpose ? kiln_window_convtranspose(c->n, &xs, kernel, &win)
                               : kiln_window_conv(c->n, &xs, kernel, &win);
    if (st != KILN_OK) return st;

    int64_t group = kiln_attr_int(c->n, "group", 1);
    int64_t cin = c->x.d[1], cout = c->y.d[1];
    int64_t wc = transpose ? c->w.d[0] : c->w.d[1] * group;
    int64_t wm = transpose ? c->w.d[1] * group : c->w.d[0];
    if (group < 1 || group > INT_MAX || wc != cin || wm != cout || cin % group || cout % group)
        return kiln_fail(KILN_ERR_SHAPE,
                         "input has %lld channels and output %lld; weights [%lld, %lld, ...] and group %lld disagree",
                         (long long)cin, (long long)cout, (long long)c->w.d[0], (long long)c->w.d[1],
                         (long long)group);
    g->nsp = r - 2;
    g->dnn_nsp = g->nsp == 1 ? 2 : g->nsp;
    g->group = (int)group;
    int off = g->dnn_nsp - g->nsp; /* the inserted height axis of a 1-D conv */
    for (int i = 0; i < g->dnn_nsp; i++) {
        g->pad[i] = 0;
        g->stride[i] = 1;
        g->dil[i] = 1;
    }
    for (int i = 0; i < g->nsp; i++) {
        int64_t in = win.in[i], out = win.out[i], s = win.stride[i], d = win.dilation[i], pb = win.pad_begin[i];
        if (out != c->y.d[i + 2])
            return kiln_fail(KILN_ERR_INTERNAL, "output axis %d is %lld, the attributes give %lld", i + 2,
                             (long long)c->y.d[i + 2], (long long)out);
        int64_t ek = (kernel[i] - 1) * d + 1;
        if (transpose) {
            /* cuDNN checks floor((out + 2 pb - ek) / s) + 1 == in */
            int64_t rem = out + 2 * pb - ek - s * (in - 1);
            if (pb < 0 || rem < 0 || rem >= s)
                return kiln_fail(KILN_ERR_UNSUPPORTED,
                                 "not supported on cuda: spatial axis %d: pads %lld+%lld for output size %lld (stride "
                                 "%lld, kernel %lld) have no cuDNN equivalent: cuDNN pads both ends alike and takes output padding "
                                 "below the stride only",
                                 i, (long long)pb, (long long)win.pad_end[i], (long long)out, (long long)s,
                                 (long long)kernel[i]);
        } else {
            int64_t span = in + 2 * pb - ek;
            if (span < 0 || span / s + 1 != out) g->prepad = true;
        }
        if (pb > INT_MAX || s > INT_MAX || d > INT_MAX)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "spatial axis %d: pad, stride or dilation beyond cuDNN's int", i);
        g->pad[off + i] = (int)pb;
        g->stride[off + i] = (int)s;
        g->dil[off + i] = (int)d;
    }
    if (g->prepad) {
        g->xp = c->x;
        g->xp.p = NULL;
        for (int i = 0; i < g->nsp; i++) {
            g->xp.d[i + 2] = win.in[i] + win.pad_begin[i] + win.pad_end[i];
            g->pad[off + i] = 0;
        }
        kc_dense_strides(r, g->xp.d, view_channels_last(&c->x), g->xp.s);
        g->xp_off = 0;
        for (int i = 0; i < g->nsp; i++) g->xp_off += win.pad_begin[i] * g->xp.s[i + 2];
        g->xp_bytes = kc_conv_align((size_t)kc_view_numel(&g->xp) * kiln_dtype_size(g->xp.dt));
    }
    return KILN_OK;
}

kiln_status kc_conv_geom_nonempty(const kc_conv *c, bool transpose, kc_conv_geom *g)
{
    if (kc_view_numel(&c->x) == 0 || kc_view_numel(&c->w) == 0)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "empty input or weights with a non-empty output");
    return kc_conv_geom_init(c, transpose, g);
}

kiln_status kc_conv_prepad(const kc_conv_geom *g, const kc_view *x, void *ws, cudaStream_t s)
{
    KC_CHECK(cudaMemsetAsync(ws, 0, g->xp_bytes, s));
    kc_view inner = g->xp;
    memcpy(inner.d, x->d, sizeof inner.d);
    inner.p = (char *)ws + (size_t)g->xp_off * kiln_dtype_size(inner.dt);
    return kc_copy(x, &inner, s);
}

/* ---- plans */

typedef struct conv_desc {
    cudnnTensorDescriptor_t x, y;     /* for ConvTranspose: dy and dx of the backward pass */
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnTensorDescriptor_t bias;     /* bias and act: only when the fused call can express the conv */
    cudnnActivationDescriptor_t act;
} conv_desc;

typedef struct conv_plan {
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
} conv_plan;

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

void kc_conv_epilogue_prog(kc_ew_prog *p, bool bias, bool z, kc_act act, float a, float b)
{
    memset(p, 0, sizeof *p);
    int in = 0, k = 0;
    p->ins[k++] = (kc_ew_ins){.op = KC_EW_LOAD, .dst = 0, .a = (uint8_t)in++};
    if (bias) {
        p->ins[k++] = (kc_ew_ins){.op = KC_EW_LOAD, .dst = 1, .a = (uint8_t)in++};
        p->ins[k++] = (kc_ew_ins){.op = KC_EW_ADD, .dst = 0, .a = 0, .b = 1};
    }
    if (z) {
        p->ins[k++] = (kc_ew_ins){.op = KC_EW_LOAD, .dst = 1, .a = (uint8_t)in++};
        p->ins[k++] = (kc_ew_ins){.op = KC_EW_ADD, .dst = 0, .a = 0, .b = 1};
    }
    if (act != KC_ACT_NONE)
        p->ins[k++] = (kc_ew_ins){.op = KC_EW_ACT, .dst = 0, .a = 0, .act = (uint8_t)act, .p0 = a, .p1 = b};
    p->n_in = in;
    p->n_ins = k;
    p->result = 0;
}

kiln_status kc_conv_epilogue_run(const kc_conv *c, bool bias, bool z, const kc_ew_prog *prog, cudaStream_t s)
{
    /* the program's activation, if it has one, is its last instruction */
    const kc_ew_ins *last = &prog->ins[prog->n_ins - 1];
    bool has_act = last->op == KC_EW_ACT;
    kiln_status st = kc_bias_act(&c->y, bias ? &c->bias : NULL, z ? &c->z : NULL, has_act ? last->act : KC_ACT_NONE,
                                 last->p0, last->p1, s);
    if (st != KILN_ERR_UNSUPPORTED) return st;
    kiln_clear_error();
    /* in place on y: each element is read, then written, by one thread */
    kc_view in[3];
    int k = 0;
    in[k++] = c->y;
    if (bias) in[k++] = kc_conv_bias_over(&c->bias, &c->y);
    if (z) in[k++] = c->z;
    return kc_ew_run(prog, in, &c->y, s);
}

/* A [K] bias as a tensor of y's dims: stride 0 but along the channels. */
kc_view kc_conv_bias_over(const kc_view *bias, const kc_view *y)
{
    kc_view v = *y;
    v.p = bias->p;
    v.dt = bias->dt;
    for (int k = 0; k < v.rank; k++) v.s[k] = 0;
    v.s[1] = bias->s[0];
    return v;
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

kiln_status kc_conv_check(const kc_handles *h, const kc_conv *c, bool *bias, bool *z)
{
    if (!h || !h->cudnn) return kiln_fail(KILN_ERR_INTERNAL, "no cuDNN handle");
    cudnnDataType_t dt;
    if (!kc_dnn_dtype(c->x.dt, &dt) || c->w.dt != c->x.dt || c->y.dt != c->x.dt)
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "input %s, weights %s, output %s: cuDNN convolves f32, f16 or bf16, one dtype throughout",
                         kiln_dtype_name(c->x.dt), kiln_dtype_name(c->w.dt), kiln_dtype_name(c->y.dt));
    bool has_bias = c->bias.p != NULL, has_z = c->z.p != NULL;
    if (has_bias && (c->bias.rank != 1 || c->bias.d[0] != c->y.d[1]))
        return kiln_fail(KILN_ERR_SHAPE, "the bias has rank %d and %lld values, the output %lld channels",
                         c->bias.rank, (long long)(c->bias.rank ? c->bias.d[0] : 1), (long long)c->y.d[1]);
    if (has_z) {
        bool same = c->z.rank == c->y.rank;
        for (int k = 0; same && k < c->y.rank; k++) same = c->z.d[k] == c->y.d[k];
        if (!same) return kiln_fail(KILN_ERR_SHAPE, "the residual does not have the output's shape");
    }
    *bias = has_bias;
    *z = has_z;
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
        kc_dense_strides(c->y.rank, c->y.d, view_channels_last(&c->y), p->ys.s);
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

kiln_status kc_conv_run_check(const kc_conv *c, const void *ws, size_t ws_bytes, size_t need, bool has_bias,
                              bool has_z)
{
    if (!ws) ws_bytes = 0;
    if (ws_bytes < need)
        return kiln_fail(KILN_ERR_INTERNAL, "%zu bytes of workspace given, %zu needed", ws_bytes, need);
    if (!c->x.p || !c->w.p || !c->y.p)
        return kiln_fail(KILN_ERR_INTERNAL, "a tensor of the conv is not on the device");
    if ((c->bias.p != NULL) != has_bias || (c->z.p != NULL) != has_z)
        return kiln_fail(KILN_ERR_INTERNAL, "a bias or residual at run that was not there at prepare, or the reverse");
    return KILN_OK;
}

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

/* ---- the builder's interface (kc.h) */

static kiln_status pick_heuristic(kc_handles *h, const kc_conv *c, conv_plan *p, size_t ws_bytes);

/* A legacy plan of cuDNN's heuristic choice: where a tuned tactic does not
 * run at the shape being prepared. */
static kiln_status prepare_heuristic(kc_handles *h, const kc_conv *c, void **state, size_t *ws_bytes)
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

kiln_status kc_conv_prepare(kc_handles *h, const kc_conv *c, const kc_conv_tactic *t, void **state, size_t *ws_bytes)
{
    *state = NULL;
    *ws_bytes = 0;
    kiln_status st;
    conv_plan *p;
    if (t->fused == KC_CONV_GEMM) {
        if ((st = kc_gemm_conv_prepare(h, c, t, state, ws_bytes)) == KILN_OK) return KILN_OK;
        /* the matmul does not run at this shape (an alignment, a dim): the
         * legacy API's heuristic choice keeps the conv running */
        kiln_log(kc_conv_trace() ? KILN_LOG_WARN : KILN_LOG_INFO,
                 "conv '%s': no cuBLASLt matmul at this shape (%s); using the legacy API's heuristic choice",
                 c->n->name, kiln_last_error());
        kiln_clear_error();
        return prepare_heuristic(h, c, state, ws_bytes);
    }
    if (t->fused == KC_CONV_GRAPH) {
        if ((st = kc_graph_prepare(h, c, t, state, ws_bytes)) == KILN_OK) return KILN_OK;
        /* no graph engine runs the conv at this shape: the legacy API's
         * heuristic choice keeps it running */
        kiln_log(kc_conv_trace() ? KILN_LOG_WARN : KILN_LOG_INFO,
                 "conv '%s': cuDNN graph engine %d does not run at this shape (%s); using the legacy API's heuristic "
                 "choice",
                 c->n->name, (int)t->reserved, kiln_last_error());
        kiln_clear_error();
        *state = NULL;
        *ws_bytes = 0;
        return prepare_heuristic(h, c, state, ws_bytes);
    }
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

kiln_status kc_conv_run(void *state, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes, cudaStream_t s)
{
    if (!state) return kiln_fail(KILN_ERR_INTERNAL, "conv run without prepare");
    if (*(const int *)state == KC_CONV_STATE_GRAPH) return kc_graph_run(state, h, c, ws, ws_bytes, s);
    if (*(const int *)state == KC_CONV_STATE_GEMM) return kc_gemm_conv_run(state, h, c, ws, ws_bytes, s);
    return plan_enqueue(state, h, c, ws, ws_bytes, s);
}

void kc_conv_release(void *state)
{
    if (state && *(const int *)state == KC_CONV_STATE_GRAPH)
        kc_graph_release(state);
    else if (state && *(const int *)state == KC_CONV_STATE_GEMM)
        kc_gemm_conv_release(state);
    else
        plan_free(state);
}

/* ---- tuning */

#define WARMUP_RUNS KC_CONV_WARMUP_RUNS
#define TIMED_RUNS KC_CONV_TIMED_RUNS

typedef struct tuner {
    kc_handles *h;
    const kc_conv *c;
    conv_plan *p;
    void *ws;
    size_t ws_limit;
    cudaStream_t s;
    cudaEvent_t ev[TIMED_RUNS + 1];
    char why[512]; /* the first refusal, for the message when all are refused */
} tuner;

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

kiln_status kc_conv_time(const kc_conv_timer *tm, kc_handles *h, const kc_conv *c, void *state, float *ms, char *why,
                         size_t why_cap)
{
    *ms = -1.0f;
    kiln_status st = KILN_OK;
    for (int i = 0; i < WARMUP_RUNS && st == KILN_OK; i++) st = kc_conv_run(state, h, c, tm->ws, tm->ws_limit, tm->s);
    if (st == KILN_OK) KC_CHECK(cudaEventRecord(tm->ev[0], tm->s));
    for (int i = 0; i < TIMED_RUNS && st == KILN_OK; i++) {
        st = kc_conv_run(state, h, c, tm->ws, tm->ws_limit, tm->s);
        if (st == KILN_OK) KC_CHECK(cudaEventRecord(tm->ev[i + 1], tm->s));
    }
    if (st != KILN_OK) {
        if (why && why_cap && !why[0]) snprintf(why, why_cap, "%s", kiln_last_error());
        /* the libraries refuse a configuration before they launch anything;
         * a launch error that is not sticky is cleared here, one that broke
         * the context shows on the stream */
        (void)cudaGetLastError();
        cudaError_t e = cudaStreamSynchronize(tm->s);
        if (e != cudaSuccess) return kc_fail_cuda(e, "cudaStreamSynchronize after a refused conv tactic");
        kiln_clear_error();
        return KILN_OK;
    }
    KC_CHECK(cudaEventSynchronize(tm->ev[TIMED_RUNS]));
    float t[TIMED_RUNS];
    for (int i = 0; i < TIMED_RUNS; i++) KC_CHECK(cudaEventElapsedTime(&t[i], tm->ev[i], tm->ev[i + 1]));
    qsort(t, TIMED_RUNS, sizeof *t, cmp_float);
    *ms = t[TIMED_RUNS / 2];
    return KILN_OK;
}

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
    kc_conv_timer tm = {.s = tu->s, .ev = tu->ev, .ws = tu->ws, .ws_limit = tu->ws_limit};
    return kc_conv_time(&tm, tu->h, tu->c, tu->p, ms, tu->why, sizeof tu->why);
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

/* $KILN_CONV_GRAPH=0: the tuner leaves the graph API out (a way around a
 * misbehaving engine). */
static bool graph_enabled(void)
{
    const char *v = getenv("KILN_CONV_GRAPH");
    return !(v && strcmp(v, "0") == 0);
}

/* $KILN_CONV_GEMM: "0", pointwise convs never run as cuBLASLt matmuls (0);
 * "force", they do wherever one runs, whatever the timings (2: the tests
 * use it to cover that path); else they compete on time (1) */
static int gemm_mode(void)
{
    const char *v = getenv("KILN_CONV_GEMM");
    if (v && strcmp(v, "0") == 0) return 0;
    return v && strcmp(v, "force") == 0 ? 2 : 1;
}

static int dims_text(const kc_view *v, char *buf, size_t cap)
{
    size_t l = 0;
    buf[0] = 0;
    for (int k = 0; k < v->rank && l < cap; k++)
        l += (size_t)snprintf(buf + l, cap - l, "%s%lld", k ? "x" : "", (long long)v->d[k]);
    return (int)l;
}

static float host_value(const void *p, kiln_dtype dt, size_t i)
{
    if (dt == KILN_F16) return kiln_f16_to_f32(((const uint16_t *)p)[i]);
    if (dt == KILN_BF16) return kiln_bf16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* y of tactic t into host memory. */
static kiln_status run_into(tuner *tu, const kc_conv_tactic *t, void *host, size_t bytes)
{
    kiln_status st;
    if (t->fused == KC_CONV_GRAPH || t->fused == KC_CONV_GEMM) {
        void *state = NULL;
        size_t need = 0;
        st = t->fused == KC_CONV_GRAPH ? kc_graph_prepare(tu->h, tu->c, t, &state, &need)
                                       : kc_gemm_conv_prepare(tu->h, tu->c, t, &state, &need);
        if (st == KILN_OK && need > tu->ws_limit)
            st = kiln_fail(KILN_ERR_INTERNAL, "the plan wants %zu bytes of workspace, over %zu", need, tu->ws_limit);
        if (st == KILN_OK) st = kc_conv_run(state, tu->h, tu->c, tu->ws, tu->ws_limit, tu->s);
        if (state) kc_conv_release(state);
    } else {
        st = plan_use(tu->h, tu->c, tu->p, t);
        if (st == KILN_OK) st = plan_enqueue(tu->p, tu->h, tu->c, tu->ws, tu->ws_limit, tu->s);
    }
    if (st != KILN_OK) return st;
    KC_CHECK(cudaStreamSynchronize(tu->s));
    const kc_view *y = &tu->c->y;
    if (kc_view_is_dense(y, true) || kc_view_is_dense(y, false)) {
        KC_CHECK(cudaMemcpy(host, y->p, bytes, cudaMemcpyDeviceToHost));
        return KILN_OK;
    }
    /* a slice of a wider tensor (a concat's input): gathered densely first */
    void *d = NULL;
    KC_CHECK(cudaMalloc(&d, bytes ? bytes : 1));
    kc_view dense = *y;
    kiln_shape sh = {.rank = y->rank};
    memcpy(sh.d, y->d, (size_t)y->rank * sizeof *sh.d);
    kc_view_dense(&dense, d, y->dt, &sh);
    st = kc_copy(y, &dense, tu->s);
    cudaError_t ce = st == KILN_OK ? cudaStreamSynchronize(tu->s) : cudaSuccess;
    if (st == KILN_OK && ce == cudaSuccess) ce = cudaMemcpy(host, d, bytes, cudaMemcpyDeviceToHost);
    cudaFree(d);
    if (st == KILN_OK && ce != cudaSuccess) st = kc_fail_cuda(ce, "copying a conv's output for the check");
    return st;
}

/* $KILN_CONV_CHECK=1: the graph API's choice runs once against the legacy
 * API's and is refused (*ok false) when their outputs differ by more than
 * rounding: a guard against an engine that computes something else. */
static kiln_status check_graph(tuner *tu, const kc_conv_tactic *legacy, const kc_conv_tactic *graph, bool *ok)
{
    const kc_conv *c = tu->c;
    *ok = true;
    const kc_view *y = &c->y;
    if (c->z.p && c->z.p == y->p) {
        kiln_log(KILN_LOG_WARN, "conv '%s': check: skipped (output written over the residual)", c->n->name);
        return KILN_OK;
    }
    size_t n = (size_t)kc_view_numel(y), bytes = n * kiln_dtype_size(y->dt);
    void *a = malloc(bytes ? bytes : 1), *b = malloc(bytes ? bytes : 1);
    kiln_status st = a && b ? KILN_OK : kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory checking a conv");
    if (st == KILN_OK) st = run_into(tu, legacy, a, bytes);
    if (st == KILN_OK) st = run_into(tu, graph, b, bytes);
    if (st == KILN_OK) {
        double diff = 0, ref = 0;
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            double u = host_value(a, y->dt, i), v = host_value(b, y->dt, i);
            if (isnan(v) != isnan(u) || isinf(v) != isinf(u)) {
                bad++;
                continue;
            }
            if (isnan(u) || isinf(u)) continue;
            if (fabs(u) > ref) ref = fabs(u);
            if (fabs(u - v) > diff) diff = fabs(u - v);
        }
        double tol = y->dt == KILN_F32 && tu->p->strict ? 1e-3 : 2e-2;
        *ok = bad == 0 && diff <= tol * (ref > 1 ? ref : 1);
        if (!*ok || kc_conv_trace())
        kiln_log(KILN_LOG_WARN,
                 "conv '%s': check: %s %d vs legacy algo %d: max |diff| %.3g, max |y| %.3g, %zu NaN/Inf "
                 "mismatches: %s",
                 c->n->name, graph->fused == KC_CONV_GEMM ? "cuBLASLt algorithm" : "graph engine",
                 graph->fused == KC_CONV_GEMM ? (int)graph->algo : (int)graph->reserved, (int)legacy->algo, diff, ref,
                 bad, *ok ? "agree" : "DIFFER, it is refused");
    }
    free(a);
    free(b);
    return st;
}

/* The conv being tuned, for KILN_CONV_TRACE. */
static void trace_conv(const kc_conv *c)
{
    char x[96], w[96], y[96];
    dims_text(&c->x, x, sizeof x);
    dims_text(&c->w, w, sizeof w);
    dims_text(&c->y, y, sizeof y);
    kiln_log(KILN_LOG_WARN, "conv '%s': x %s %s%s, w %s, y %s, group %lld%s%s, act %d: tuning", c->n->name, x,
             kiln_dtype_name(c->x.dt), kc_conv_channels_last(c) ? " channels-last" : "", w, y,
             (long long)kiln_attr_int(c->n, "group", 1), c->bias.p ? ", bias" : "", c->z.p ? ", residual" : "",
             (int)c->act);
}

kiln_status kc_conv_tune(kc_handles *h, const kc_conv *c, void *ws, size_t ws_limit, kc_conv_tactic *best, float *ms)
{
    memset(best, 0, sizeof *best);
    if (ms) *ms = 0.0f;
    tuner tu = {.h = h, .c = c, .ws = ws, .ws_limit = ws ? ws_limit : 0};
    kiln_status st = plan_create(h, c, false, true, &tu.p);
    if (st != KILN_OK) return st;
    best->math = tu.p->t.math;
    if (tu.p->empty) {
        plan_free(tu.p);
        return KILN_OK;
    }
    if (plan_fixed(tu.p) > tu.ws_limit) {
        st = kiln_fail(KILN_ERR_OUT_OF_MEMORY,
                       "the conv needs %zu bytes of workspace for a padded copy of its input (asymmetric pads) or a "
                       "dense copy of its output; the limit is %zu",
                       plan_fixed(tu.p), tu.ws_limit);
        plan_free(tu.p);
        return st;
    }
    /* a private stream, so that nothing else on the context's stream is timed */
    cudnnHandle_t dnn = (cudnnHandle_t)h->cudnn;
    cudaStream_t saved = NULL;
    bool stream_set = false;
    int n_ev = 0;
    cudaError_t e = cudaStreamCreateWithFlags(&tu.s, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        tu.s = NULL;
        st = kc_fail_cuda(e, "cudaStreamCreateWithFlags");
    }
    for (; st == KILN_OK && n_ev < TIMED_RUNS + 1; n_ev++)
        if ((e = cudaEventCreate(&tu.ev[n_ev])) != cudaSuccess) st = kc_fail_cuda(e, "cudaEventCreate");
    if (st == KILN_OK) st = kc_dnn_check(cudnnGetStream(dnn, &saved), "cudnnGetStream");
    if (st == KILN_OK) {
        st = kc_dnn_check(cudnnSetStream(dnn, tu.s), "cudnnSetStream");
        stream_set = st == KILN_OK;
    }
    bool trace = kc_conv_trace();
    if (trace) trace_conv(c);
    float best_ms = -1.0f;
    char legacy_why[512] = "";
    if (st == KILN_OK) {
        st = tune_run(&tu, best, &best_ms);
        if (st == KILN_ERR_UNSUPPORTED) {
            /* no legacy tactic runs it: the graph API may */
            snprintf(legacy_why, sizeof legacy_why, "%s", kiln_last_error());
            kiln_clear_error();
            best_ms = -1.0f;
            st = KILN_OK;
        }
    }
    kc_conv_tactic legacy = *best;
    float legacy_ms = best_ms;
    kc_conv_timer tm = {.s = tu.s, .ev = tu.ev, .ws = tu.ws, .ws_limit = tu.ws_limit};
    if (st == KILN_OK && graph_enabled()) st = kc_graph_tune(h, c, &tm, best, &best_ms);
    int gemm = gemm_mode();
    if (st == KILN_OK && gemm) {
        kc_conv_tactic g = *best;
        float g_ms = gemm == 2 ? -1.0f : best_ms;
        st = kc_gemm_conv_tune(h, c, &tm, &g, &g_ms);
        if (st == KILN_OK && g.fused == KC_CONV_GEMM && g_ms >= 0) {
            *best = g;
            best_ms = g_ms;
        }
    }
    if (st == KILN_OK && best_ms < 0)
        st = kiln_fail(KILN_ERR_UNSUPPORTED, "%s; nor does any engine of cuDNN's graph API",
                       legacy_why[0] ? legacy_why : "no cuDNN legacy tactic runs this conv");
    /* a graph engine's result is checked against the legacy winner's before
     * it is kept (off with KILN_CONV_CHECK=0): an engine that computes
     * something else at this shape loses to the legacy tactic */
    const char *check = getenv("KILN_CONV_CHECK");
    if (st == KILN_OK && !(check && strcmp(check, "0") == 0) &&
        (best->fused == KC_CONV_GRAPH || best->fused == KC_CONV_GEMM) && legacy_ms >= 0) {
        bool ok = true;
        st = check_graph(&tu, &legacy, best, &ok);
        if (st != KILN_OK) {
            /* the graph plan does not run again: keep the legacy tactic,
             * unless the device broke */
            kiln_log(KILN_LOG_WARN, "conv '%s': check: %s", c->n->name, kiln_last_error());
            kiln_clear_error();
            ok = false;
            e = cudaStreamSynchronize(tu.s);
            st = e == cudaSuccess ? KILN_OK : kc_fail_cuda(e, "cudaStreamSynchronize after checking a conv");
        }
        if (!ok) {
            *best = legacy;
            best_ms = legacy_ms;
        }
    }
    if (st == KILN_OK && trace) {
        if (best->fused == KC_CONV_GEMM)
            kiln_log(KILN_LOG_WARN, "conv '%s': chose cuBLASLt algorithm %d: %.4f ms", c->n->name, (int)best->algo,
                     best_ms);
        else if (best->fused == KC_CONV_GRAPH)
            kiln_log(KILN_LOG_WARN, "conv '%s': chose graph engine %d (cfg %d%s%s): %.4f ms", c->n->name,
                     (int)best->reserved, (int)best->algo,
                     best->math & KC_CONV_GRAPH_POINTWISE ? ", pointwise ops" : "",
                     (best->math & 0xff) == KC_CONV_GRAPH_MODE_FALLBACK ? ", fallback list" : "", best_ms);
        else
            kiln_log(KILN_LOG_WARN, "conv '%s': chose legacy algo %d%s, math type %d: %.4f ms", c->n->name,
                     (int)best->algo, best->fused ? " fused" : "", (int)best->math, best_ms);
    }
    if (tu.s) {
        e = cudaStreamSynchronize(tu.s);
        if (st == KILN_OK && e != cudaSuccess) st = kc_fail_cuda(e, "cudaStreamSynchronize");
    }
    if (stream_set) cudnnSetStream(dnn, saved);
    for (int i = 0; i < n_ev; i++)
        if (tu.ev[i]) cudaEventDestroy(tu.ev[i]);
    if (tu.s) cudaStreamDestroy(tu.s);
    plan_free(tu.p);
    if (st == KILN_OK && ms) *ms = best_ms;
    return st;
}

/* ---- op kernels: Conv and ConvTranspose with cuDNN's heuristics per launch */

static kiln_status conv_from_launch(const kc_launch *L, kc_conv *c)
{
    memset(c, 0, sizeof *c);
    c->n = L->n;
    if (L->n_in < 2 || L->n_out < 1)
        return kiln_fail(KILN_ERR_INTERNAL, "launched with %d inputs and %d outputs", L->n_in, L->n_out);
    c->x = L->in[0];
    c->w = L->in[1];
    if (L->n_in > 2) c->bias = L->in[2];
    c->y = L->out[0];
    c->act = KC_ACT_NONE;
    return KILN_OK;
}

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

static kiln_status op_run(const kc_launch *L, bool transpose)
{
    kc_conv c;
    kiln_status st = conv_from_launch(L, &c);
    if (st != KILN_OK) return st;
    conv_plan *p;
    if ((st = plan_create(L->h, &c, transpose, false, &p)) != KILN_OK) return st;
    if (!p->empty) {
        st = pick_heuristic(L->h, &c, p, L->ws ? L->ws_bytes : 0);
        if (st == KILN_OK) st = plan_enqueue(p, L->h, &c, L->ws, L->ws_bytes, L->stream);
    }
    plan_free(p);
    return st;
}

/* The padded copy and the largest workspace among cuDNN's first few
 * choices, capped: the run takes the first choice that fits what it gets.
 * A size cannot carry an error: on one this asks for nothing, and the run
 * reports it. */
static size_t op_ws(const kc_launch *L, bool transpose)
{
    kc_conv c;
    conv_plan *p = NULL;
    if (conv_from_launch(L, &c) != KILN_OK || plan_create(L->h, &c, transpose, false, &p) != KILN_OK) {
        kiln_clear_error();
        return 0;
    }
    size_t most = 0;
    int algo[MAX_ALGOS], math[MAX_ALGOS], na = 0;
    if (!p->empty && heuristic_algos(L->h, p, algo, math, &na) == KILN_OK) {
        for (int i = 0, used = 0; i < na && used < OP_WS_ALGOS; i++) {
            kc_conv_tactic t = {.algo = algo[i], .math = math[i]};
            if (plan_use(L->h, &c, p, &t) != KILN_OK) continue;
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

kiln_status kiln_cuda_Conv(const kc_launch *L) { return op_run(L, false); }

size_t kiln_cuda_Conv_ws(const kc_launch *L) { return op_ws(L, false); }

kiln_status kiln_cuda_ConvTranspose(const kc_launch *L) { return op_run(L, true); }

size_t kiln_cuda_ConvTranspose_ws(const kc_launch *L) { return op_ws(L, true); }
