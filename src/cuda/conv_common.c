/* What the convolution paths share (conv_common.h): cuDNN's errors and
 * dtypes, the layouts cuDNN is told, the operands' checks, the geometry, the
 * elementwise epilogue and the timing of a candidate. It sits below cuDNN's
 * legacy API path (conv_legacy.c), its graph API path (conv_graph.c) and the
 * cuBLASLt matmul path (conv_gemm.c), and calls none of them.
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
 * combinations are refused (KILN_ERR_UNSUPPORTED), naming the axis. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "cuda/conv_common.h"
#include "cuda/kc.h"
#include "ir/shape_conv.h"

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
bool kc_conv_view_channels_last(const kc_view *v)
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
    if (cl != cf || !cl) return kc_conv_view_channels_last(&c->y);
    return kc_conv_view_channels_last(&c->x);
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

/* (kc_conv_geom is in conv_common.h: every path shares it) */

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

    int64_t group = c->n->params.conv.group;
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
        kc_dense_strides(r, g->xp.d, kc_conv_view_channels_last(&c->x), g->xp.s);
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

/* ---- operands */

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

/* ---- epilogue */

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

/* ---- timing */

#define WARMUP_RUNS KC_CONV_WARMUP_RUNS
#define TIMED_RUNS KC_CONV_TIMED_RUNS

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

kiln_status kc_conv_time(const kc_conv_timer *tm, kc_handles *h, const kc_conv *c, kc_conv_run_fn run, void *state,
                         float *ms, char *why, size_t why_cap)
{
    *ms = -1.0f;
    kiln_status st = KILN_OK;
    for (int i = 0; i < WARMUP_RUNS && st == KILN_OK; i++) st = run(state, h, c, tm->ws, tm->ws_limit, tm->s);
    if (st == KILN_OK) KC_CHECK(cudaEventRecord(tm->ev[0], tm->s));
    for (int i = 0; i < TIMED_RUNS && st == KILN_OK; i++) {
        st = run(state, h, c, tm->ws, tm->ws_limit, tm->s);
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
