/* Shape rules and costs of the conv family: Conv, ConvTranspose,
 * BatchNormalization, Gemm, MatMul and the pools, plus the window geometry
 * (shape_conv.h) the ref kernels share. */
#include "ir/shape_conv.h"

#include "ir/ops.h"

#include <inttypes.h>
#include <string.h>

/* ---- window geometry: Conv and ConvTranspose from their parameters
 * (n->params.conv), the pools from theirs (n->params.pool) */

typedef kiln_auto_pad auto_pad;
#define PAD_NOTSET KILN_AUTO_PAD_NOTSET
#define PAD_SAME_UPPER KILN_AUTO_PAD_SAME_UPPER
#define PAD_SAME_LOWER KILN_AUTO_PAD_SAME_LOWER
#define PAD_VALID KILN_AUTO_PAD_VALID

/* A parameter list of `cnt` values (0: the attribute is absent) as `want`
 * values, `def` everywhere when absent (the parser checked the values). */
static kiln_status take_ints(const char *name, const int64_t *p, int cnt, int want, int64_t def, int64_t *out)
{
    if (!cnt) {
        for (int i = 0; i < want; i++) out[i] = def;
        return KILN_OK;
    }
    if (cnt != want) return kiln_fail(KILN_ERR_SHAPE, "attribute '%s' has %d values, expected %d", name, cnt, want);
    memcpy(out, p, (size_t)want * sizeof *out);
    return KILN_OK;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }
static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

static kiln_status window_rank(const kiln_shape *x, kiln_window *w)
{
    if (x->rank < 3 || x->rank > KILN_MAX_RANK)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has rank %d, expected N x C x spatial (rank 3..%d)",
                         "X", x->rank, KILN_MAX_RANK);
    w->nsp = x->rank - 2;
    for (int i = 0; i < w->nsp; i++) w->in[i] = x->d[i + 2];
    return KILN_OK;
}

/* Conv and ConvTranspose: rank, strides, dilations and pads from
 * n->params.conv (src/ir/params_conv.c: values checked), the lengths
 * checked here against the input's spatial dims. */
static kiln_status window_common(const kiln_node *n, const kiln_shape *x, kiln_window *w, int64_t *pads)
{
    const kiln_conv_params *p = &n->params.conv;
    kiln_status st = window_rank(x, w);
    if (st == KILN_OK) st = take_ints("strides", p->strides, p->n_strides, w->nsp, 1, w->stride);
    if (st == KILN_OK) st = take_ints("dilations", p->dilations, p->n_dilations, w->nsp, 1, w->dilation);
    if (st == KILN_OK) st = take_ints("pads", p->pads, p->n_pads, 2 * w->nsp, 0, pads);
    return st;
}

/* Pads from `pads` (explicit, 2 * nsp values) or auto_pad. ONNX (Conv,
 * MaxPool, AveragePool):
 *   NOTSET: out = floor((in + pad_begin + pad_end - eff_kernel) / stride) + 1,
 *           ceil instead of floor under ceil_mode (pools);
 *   VALID:  no padding, out = ceil((in - eff_kernel + 1) / stride);
 *   SAME_*: out = ceil(in / stride), total pad = (out - 1) * stride + eff_kernel - in
 *           (clamped at 0), the odd pixel at the end for SAME_UPPER and at the
 *           beginning for SAME_LOWER.
 * with eff_kernel = (kernel - 1) * dilation + 1. Under ceil_mode, a window
 * that would start in the end padding is dropped (the spec's "sliding
 * windows that would start in the right padded region are ignored"). */
static kiln_status window_forward(auto_pad ap, const int64_t *pads, bool ceil_mode, kiln_window *w)
{
    for (int i = 0; i < w->nsp; i++) {
        int64_t in = w->in[i], k = w->kernel[i], s = w->stride[i];
        w->out[i] = KILN_DIM_UNKNOWN;
        w->pad_begin[i] = ap == PAD_NOTSET ? pads[i] : 0;
        w->pad_end[i] = ap == PAD_NOTSET ? pads[i + w->nsp] : 0;
        if (!kiln_dim_known(k)) continue;
        int64_t ek = (k - 1) * w->dilation[i] + 1;
        if (!kiln_dim_known(in)) {
            /* a symbolic size passes through a window that maps it onto itself */
            bool same = s == 1 && (ap == PAD_SAME_UPPER || ap == PAD_SAME_LOWER ||
                                   (ap == PAD_NOTSET && w->pad_begin[i] + w->pad_end[i] == ek - 1) ||
                                   (ap == PAD_VALID && ek == 1));
            if (same) w->out[i] = in;
            continue;
        }
        int64_t out;
        if (ap == PAD_SAME_UPPER || ap == PAD_SAME_LOWER) {
            out = ceil_div(in, s);
            int64_t total = (out - 1) * s + ek - in;
            if (total < 0) total = 0;
            w->pad_begin[i] = ap == PAD_SAME_UPPER ? total / 2 : total - total / 2;
            w->pad_end[i] = total - w->pad_begin[i];
        } else {
            int64_t span = in + w->pad_begin[i] + w->pad_end[i] - ek;
            if (span < 0)
                return kiln_fail(KILN_ERR_SHAPE,
                                 "spatial axis %d: input size %" PRId64 " + pads %" PRId64 "+%" PRId64
                                 " is smaller than the (dilated) kernel %" PRId64,
                                 i, in, w->pad_begin[i], w->pad_end[i], ek);
            if (ceil_mode && ap == PAD_NOTSET) {
                out = ceil_div(span, s) + 1;
                if ((out - 1) * s >= in + w->pad_begin[i]) out--;
            } else {
                out = span / s + 1;
            }
        }
        w->out[i] = out;
    }
    return KILN_OK;
}

kiln_status kiln_window_conv(const kiln_node *n, const kiln_shape *x, const int64_t *kernel, kiln_window *w)
{
    int64_t pads[2 * KILN_MAX_SPATIAL];
    kiln_status st = window_common(n, x, w, pads);
    if (st != KILN_OK) return st;
    memcpy(w->kernel, kernel, (size_t)w->nsp * sizeof *kernel);
    return window_forward(n->params.conv.auto_pad, pads, false, w);
}

/* The pools' geometry from n->params.pool (src/ir/params_pool.c: values
 * checked, VALID already NOTSET with pads of 0); the lengths are checked
 * here, against the input's spatial dims. */
kiln_status kiln_window_pool(const kiln_node *n, const kiln_shape *x, kiln_window *w)
{
    const kiln_pool_params *p = &n->params.pool;
    int64_t pads[2 * KILN_MAX_SPATIAL];
    kiln_status st = window_rank(x, w);
    if (st == KILN_OK) st = take_ints("strides", p->strides, p->n_strides, w->nsp, 1, w->stride);
    if (st == KILN_OK) st = take_ints("dilations", p->dilations, p->n_dilations, w->nsp, 1, w->dilation);
    if (st == KILN_OK && !p->n_kernel) st = kiln_fail(KILN_ERR_SHAPE, "attribute 'kernel_shape' is required");
    if (st == KILN_OK) st = take_ints("kernel_shape", p->kernel, p->n_kernel, w->nsp, 1, w->kernel);
    if (st == KILN_OK) st = take_ints("pads", p->pads, p->n_pads, 2 * w->nsp, 0, pads);
    if (st != KILN_OK) return st;
    return window_forward(p->auto_pad, pads, p->ceil_mode, w);
}

/* ONNX ConvTranspose:
 *   out = stride * (in - 1) + output_padding + eff_kernel - pad_begin - pad_end
 * unless output_shape is given (then pads are ignored) or auto_pad is SAME_*
 * (then out = in * stride); in both cases
 *   total = stride * (in - 1) + output_padding + eff_kernel - out,
 *   SAME_UPPER: pad_begin = total / 2, otherwise pad_begin = total - total / 2
 * (floor division, as the ONNX reference: total may be negative when
 * output_shape asks for more than the natural size). */
kiln_status kiln_window_convtranspose(const kiln_node *n, const kiln_shape *x, const int64_t *kernel,
                                      kiln_window *w)
{
    const kiln_conv_params *p = &n->params.conv;
    int64_t pads[2 * KILN_MAX_SPATIAL], opad[KILN_MAX_SPATIAL], oshape[KILN_MAX_SPATIAL];
    kiln_status st = window_common(n, x, w, pads);
    if (st != KILN_OK) return st;
    memcpy(w->kernel, kernel, (size_t)w->nsp * sizeof *kernel);
    auto_pad ap = p->auto_pad;
    st = take_ints("output_padding", p->output_padding, p->n_output_padding, w->nsp, 0, opad);
    if (st != KILN_OK) return st;
    int nos = p->n_output_shape;
    bool os = nos > 0;
    if (os) {
        /* output_shape may also be given with the batch and channel dims
         * (values >= 0: checked by the parser) */
        if (nos != w->nsp && nos != w->nsp + 2)
            return kiln_fail(KILN_ERR_SHAPE, "attribute 'output_shape' has %d values, expected %d", nos, w->nsp);
        for (int i = 0; i < w->nsp; i++) oshape[i] = p->output_shape[i + nos - w->nsp];
    }
    for (int i = 0; i < w->nsp; i++) {
        int64_t in = w->in[i], k = w->kernel[i], s = w->stride[i];
        w->out[i] = KILN_DIM_UNKNOWN;
        w->pad_begin[i] = ap == PAD_NOTSET ? pads[i] : 0;
        w->pad_end[i] = ap == PAD_NOTSET ? pads[i + w->nsp] : 0;
        if (!kiln_dim_known(in) || !kiln_dim_known(k)) {
            if (os) w->out[i] = oshape[i];
            continue;
        }
        int64_t full = s * (in - 1) + opad[i] + (k - 1) * w->dilation[i] + 1;
        if (os || ap == PAD_SAME_UPPER || ap == PAD_SAME_LOWER) {
            int64_t out = os ? oshape[i] : in * s;
            int64_t total = full - out;
            int64_t half = floor_div(total, 2);
            w->pad_begin[i] = ap == PAD_SAME_UPPER ? half : total - half;
            w->pad_end[i] = total - w->pad_begin[i];
            w->out[i] = out;
        } else {
            w->out[i] = full - w->pad_begin[i] - w->pad_end[i];
            if (w->out[i] <= 0)
                return kiln_fail(KILN_ERR_SHAPE, "spatial axis %d: pads %" PRId64 "+%" PRId64
                                 " leave no output (full size %" PRId64 ")", i, w->pad_begin[i], w->pad_end[i], full);
        }
    }
    return KILN_OK;
}

/* ---- helpers */

static bool is_float(kiln_dtype t) { return t == KILN_F32 || t == KILN_F16 || t == KILN_BF16 || t == KILN_F64; }

static kiln_status need_float(const kiln_value *x, const char *role)
{
    if (!is_float(x->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' (%s) is %s; kiln implements f32, f16, bf16 and f64",
                         x->name, role, kiln_dtype_name(x->dtype));
    return KILN_OK;
}

static kiln_status same_dtype(const kiln_value *a, const kiln_value *b)
{
    if (a->dtype != b->dtype)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' is %s but '%s' is %s", b->name, kiln_dtype_name(b->dtype),
                         a->name, kiln_dtype_name(a->dtype));
    return KILN_OK;
}

static void set_unknown_rank(kiln_value *o, kiln_dtype t)
{
    o->dtype = t;
    o->shape.rank = -1;
}

static double numel(const kiln_value *x)
{
    int64_t c = kiln_shape_numel(&x->shape);
    return c < 0 ? 0.0 : (double)c;
}

static double dims_product(const kiln_shape *s, int from, int to)
{
    double p = 1;
    for (int i = from; i < to; i++) p *= (double)(s->d[i] > 0 ? s->d[i] : 0);
    return p;
}

/* ---- Conv */

static kiln_status check_bias(const kiln_value *b, const kiln_value *x, int64_t m)
{
    if (!b) return KILN_OK;
    kiln_status st = same_dtype(x, b);
    if (st != KILN_OK) return st;
    if (b->shape.rank >= 0 && b->shape.rank != 1)
        return kiln_fail(KILN_ERR_SHAPE, "bias '%s' has rank %d, expected 1", b->name, b->shape.rank);
    if (b->shape.rank == 1 && kiln_dim_known(b->shape.d[0]) && kiln_dim_known(m) && b->shape.d[0] != m)
        return kiln_fail(KILN_ERR_SHAPE, "bias '%s' has %" PRId64 " values, expected %" PRId64 " (output channels)",
                         b->name, b->shape.d[0], m);
    return KILN_OK;
}

/* Kernel spatial sizes from W (dims 2..) and the optional kernel_shape attribute. */
static kiln_status kernel_dims(const kiln_node *n, const kiln_value *w, int nsp, int64_t *k)
{
    for (int i = 0; i < nsp; i++) k[i] = w->shape.rank == nsp + 2 ? w->shape.d[i + 2] : KILN_DIM_UNKNOWN;
    const int64_t *ks = n->params.conv.kernel;
    int nks = n->params.conv.n_kernel;
    if (!nks) return KILN_OK;
    if (nks != nsp) return kiln_fail(KILN_ERR_SHAPE, "attribute 'kernel_shape' has %d values, expected %d", nks, nsp);
    for (int i = 0; i < nsp; i++) {
        if (kiln_dim_known(k[i]) && k[i] != ks[i])
            return kiln_fail(KILN_ERR_SHAPE, "attribute 'kernel_shape' says %" PRId64 " on axis %d, weight '%s' has %" PRId64,
                             ks[i], i, w->name, k[i]);
        k[i] = ks[i];
    }
    return KILN_OK;
}

/* Shared by Conv and ConvTranspose: dtypes, ranks, group. */
static kiln_status conv_inputs(const kiln_node *n, kiln_value *v, kiln_value **x, kiln_value **w, int64_t *group)
{
    *x = kiln_in(n, v, 0);
    *w = kiln_in(n, v, 1);
    if (!*x || !*w) return kiln_fail(KILN_ERR_SHAPE, "inputs 'X' and 'W' are required");
    kiln_status st = need_float(*x, "X");
    if (st == KILN_OK) st = same_dtype(*x, *w);
    if (st != KILN_OK) return st;
    *group = n->params.conv.group; /* >= 1: checked by the parser */
    int xr = (*x)->shape.rank, wr = (*w)->shape.rank;
    if (xr >= 0 && xr < 3) return kiln_fail(KILN_ERR_SHAPE, "input '%s' has rank %d, expected >= 3", (*x)->name, xr);
    if (xr >= 0 && wr >= 0 && xr != wr)
        return kiln_fail(KILN_ERR_SHAPE, "weight '%s' has rank %d, input '%s' rank %d", (*w)->name, wr, (*x)->name, xr);
    return KILN_OK;
}

/* The output of Conv and ConvTranspose: [N, m, spatial dims by `window`]. */
static kiln_status conv_output(const kiln_node *n, kiln_value *v, const kiln_value *x, const kiln_value *w, int64_t m,
                               kiln_status (*window)(const kiln_node *, const kiln_shape *, const int64_t *,
                                                     kiln_window *))
{
    kiln_value *y = kiln_out(n, v, 0);
    kiln_status st = check_bias(kiln_in(n, v, 2), x, m);
    if (st != KILN_OK) return st;
    if (!y) return KILN_OK;
    if (x->shape.rank < 0) {
        set_unknown_rank(y, x->dtype);
        return KILN_OK;
    }
    int64_t k[KILN_MAX_SPATIAL];
    kiln_window win;
    if ((st = kernel_dims(n, w, x->shape.rank - 2, k)) != KILN_OK) return st;
    if ((st = window(n, &x->shape, k, &win)) != KILN_OK) return st;
    y->dtype = x->dtype;
    y->shape.rank = x->shape.rank;
    y->shape.d[0] = x->shape.d[0];
    y->shape.d[1] = m;
    for (int i = 0; i < win.nsp; i++) y->shape.d[i + 2] = win.out[i];
    return KILN_OK;
}

kiln_status kiln_shape_Conv(const kiln_node *n, kiln_value *v)
{
    kiln_value *x, *w;
    int64_t group = 1;
    kiln_status st = conv_inputs(n, v, &x, &w, &group);
    if (st != KILN_OK) return st;
    int64_t m = w->shape.rank >= 1 ? w->shape.d[0] : KILN_DIM_UNKNOWN;
    if (kiln_dim_known(m) && m % group)
        return kiln_fail(KILN_ERR_SHAPE, "weight '%s' has %" PRId64 " output channels, not a multiple of group %" PRId64,
                         w->name, m, group);
    if (x->shape.rank >= 2 && w->shape.rank >= 2 && kiln_dim_known(x->shape.d[1]) &&
        kiln_dim_known(w->shape.d[1]) && x->shape.d[1] != w->shape.d[1] * group)
        return kiln_fail(KILN_ERR_SHAPE,
                         "input '%s' has %" PRId64 " channels, weight '%s' expects %" PRId64 " x group %" PRId64,
                         x->name, x->shape.d[1], w->name, w->shape.d[1], group);
    return conv_output(n, v, x, w, m, kiln_window_conv);
}

kiln_status kiln_shape_ConvTranspose(const kiln_node *n, kiln_value *v)
{
    kiln_value *x, *w;
    int64_t group = 1;
    kiln_status st = conv_inputs(n, v, &x, &w, &group);
    if (st != KILN_OK) return st;
    /* W is C x M/group x kernel */
    if (x->shape.rank >= 2 && w->shape.rank >= 1 && kiln_dim_known(x->shape.d[1]) && kiln_dim_known(w->shape.d[0]) &&
        x->shape.d[1] != w->shape.d[0])
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has %" PRId64 " channels, weight '%s' %" PRId64, x->name,
                         x->shape.d[1], w->name, w->shape.d[0]);
    if (w->shape.rank >= 1 && kiln_dim_known(w->shape.d[0]) && w->shape.d[0] % group)
        return kiln_fail(KILN_ERR_SHAPE, "weight '%s' has %" PRId64 " input channels, not a multiple of group %" PRId64,
                         w->name, w->shape.d[0], group);
    int64_t m = w->shape.rank >= 2 && kiln_dim_known(w->shape.d[1]) ? w->shape.d[1] * group : KILN_DIM_UNKNOWN;
    return conv_output(n, v, x, w, m, kiln_window_convtranspose);
}

/* ---- pools */

static kiln_status pool_shape(const kiln_node *n, kiln_value *v, bool allow_int)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    if (!x) return kiln_fail(KILN_ERR_SHAPE, "input 'X' is required");
    bool ok = is_float(x->dtype) || (allow_int && (x->dtype == KILN_I8 || x->dtype == KILN_U8));
    if (!ok)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' is %s; kiln implements f32, f16, bf16, f64%s", x->name,
                         kiln_dtype_name(x->dtype), allow_int ? ", i8 and u8" : "");
    kiln_shape out = {.rank = -1};
    if (x->shape.rank >= 0) {
        kiln_window win;
        kiln_status st = kiln_window_pool(n, &x->shape, &win);
        if (st != KILN_OK) return st;
        out = x->shape;
        for (int i = 0; i < win.nsp; i++) out.d[i + 2] = win.out[i];
    }
    if (y) {
        y->dtype = x->dtype;
        y->shape = out;
    }
    kiln_value *idx = kiln_out(n, v, 1);
    if (idx) { /* storage_order: checked by the parser (src/ir/params_pool.c) */
        idx->dtype = KILN_I64;
        idx->shape = out;
    }
    return KILN_OK;
}

kiln_status kiln_shape_MaxPool(const kiln_node *n, kiln_value *v) { return pool_shape(n, v, true); }

kiln_status kiln_shape_AveragePool(const kiln_node *n, kiln_value *v) { return pool_shape(n, v, false); }

static kiln_status global_pool_shape(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    if (!x) return kiln_fail(KILN_ERR_SHAPE, "input 'X' is required");
    kiln_status st = need_float(x, "X");
    if (st != KILN_OK) return st;
    if (x->shape.rank >= 0 && x->shape.rank < 2)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has rank %d, expected N x C x spatial", x->name, x->shape.rank);
    if (!y) return KILN_OK;
    y->dtype = x->dtype;
    y->shape = x->shape;
    for (int i = 2; i < x->shape.rank; i++) y->shape.d[i] = 1;
    return KILN_OK;
}

kiln_status kiln_shape_GlobalAveragePool(const kiln_node *n, kiln_value *v) { return global_pool_shape(n, v); }
kiln_status kiln_shape_GlobalMaxPool(const kiln_node *n, kiln_value *v) { return global_pool_shape(n, v); }

/* ---- BatchNormalization (inference only) */

kiln_status kiln_shape_BatchNormalization(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    if (n->params.batchnorm.training_mode)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "training_mode=1 is not supported (inference only)");
    /* opset 9 has no training_mode: the extra outputs are what asks for it */
    for (int i = 1; i < n->n_outputs; i++)
        if (kiln_out(n, v, i))
            return kiln_fail(KILN_ERR_UNSUPPORTED,
                             "output %d (running/saved statistics) exists only in training mode, which kiln does not support", i);
    if (!x) return kiln_fail(KILN_ERR_SHAPE, "input 'X' is required");
    kiln_status st = need_float(x, "X");
    if (st != KILN_OK) return st;
    if (x->shape.rank >= 0 && x->shape.rank < 2)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has rank %d, expected N x C x ...", x->name, x->shape.rank);
    int64_t c = x->shape.rank >= 2 ? x->shape.d[1] : KILN_DIM_UNKNOWN;
    static const char *const role[] = {"", "scale", "B", "input_mean", "input_var"};
    for (int i = 1; i <= 4; i++) {
        kiln_value *p = kiln_in(n, v, i);
        if (!p) return kiln_fail(KILN_ERR_SHAPE, "input '%s' is required", role[i]);
        if ((st = need_float(p, role[i])) != KILN_OK) return st;
        if (p->shape.rank >= 0 && p->shape.rank != 1)
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' (%s) has rank %d, expected 1", p->name, role[i], p->shape.rank);
        if (p->shape.rank == 1 && kiln_dim_known(p->shape.d[0]) && kiln_dim_known(c) && p->shape.d[0] != c)
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' (%s) has %" PRId64 " values, input '%s' %" PRId64 " channels",
                             p->name, role[i], p->shape.d[0], x->name, c);
    }
    if (y) {
        y->dtype = x->dtype;
        y->shape = x->shape;
    }
    return KILN_OK;
}

/* ---- Gemm */

kiln_status kiln_shape_Gemm(const kiln_node *n, kiln_value *v)
{
    kiln_value *a = kiln_in(n, v, 0), *b = kiln_in(n, v, 1), *c = kiln_in(n, v, 2), *y = kiln_out(n, v, 0);
    if (!a || !b) return kiln_fail(KILN_ERR_SHAPE, "inputs 'A' and 'B' are required");
    kiln_status st = need_float(a, "A");
    if (st == KILN_OK) st = same_dtype(a, b);
    if (st == KILN_OK && c) st = same_dtype(a, c);
    if (st != KILN_OK) return st;
    if (a->shape.rank >= 0 && a->shape.rank != 2)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' (A) has rank %d, expected 2", a->name, a->shape.rank);
    if (b->shape.rank >= 0 && b->shape.rank != 2)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' (B) has rank %d, expected 2", b->name, b->shape.rank);
    bool ta = n->params.gemm.trans_a, tb = n->params.gemm.trans_b;
    int64_t m = KILN_DIM_UNKNOWN, ka = KILN_DIM_UNKNOWN, kb = KILN_DIM_UNKNOWN, nn = KILN_DIM_UNKNOWN;
    if (a->shape.rank == 2) {
        m = a->shape.d[ta ? 1 : 0];
        ka = a->shape.d[ta ? 0 : 1];
    }
    if (b->shape.rank == 2) {
        kb = b->shape.d[tb ? 1 : 0];
        nn = b->shape.d[tb ? 0 : 1];
    }
    if (kiln_dim_known(ka) && kiln_dim_known(kb) && ka != kb)
        return kiln_fail(KILN_ERR_SHAPE, "inner dimensions differ: '%s' has K=%" PRId64 ", '%s' K=%" PRId64, a->name, ka,
                         b->name, kb);
    /* C broadcasts unidirectionally to M x N */
    if (c && c->shape.rank >= 0) {
        if (c->shape.rank > 2)
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' (C) has rank %d, expected at most 2", c->name, c->shape.rank);
        int64_t target[2] = {m, nn};
        for (int i = 0; i < c->shape.rank; i++) {
            int64_t d = c->shape.d[i], t = target[2 - c->shape.rank + i];
            if (kiln_dim_known(d) && d != 1 && kiln_dim_known(t) && d != t)
                return kiln_fail(KILN_ERR_SHAPE, "input '%s' (C) dim %d is %" PRId64 ", cannot broadcast to %" PRId64,
                                 c->name, i, d, t);
        }
    }
    if (y) {
        y->dtype = a->dtype;
        y->shape.rank = 2;
        y->shape.d[0] = m;
        y->shape.d[1] = nn;
    }
    return KILN_OK;
}

/* ---- MatMul: numpy.matmul. A 1-D operand is promoted to a matrix by
 * prepending (A) or appending (B) a 1, which is removed from the result;
 * the leading (batch) dims broadcast. */

kiln_status kiln_shape_MatMul(const kiln_node *n, kiln_value *v)
{
    kiln_value *a = kiln_in(n, v, 0), *b = kiln_in(n, v, 1), *y = kiln_out(n, v, 0);
    if (!a || !b) return kiln_fail(KILN_ERR_SHAPE, "inputs 'A' and 'B' are required");
    if (!is_float(a->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "MatMul on %s ('%s') is not supported; kiln implements f32, f16, bf16 and f64",
                         kiln_dtype_name(a->dtype), a->name);
    kiln_status st = same_dtype(a, b);
    if (st != KILN_OK) return st;
    int ra = a->shape.rank, rb = b->shape.rank;
    if (ra == 0 || rb == 0) return kiln_fail(KILN_ERR_SHAPE, "MatMul operands must have rank >= 1");
    if (!y) return KILN_OK;
    y->dtype = a->dtype;
    if (ra < 0 || rb < 0) {
        y->shape.rank = -1;
        return KILN_OK;
    }
    int64_t ka = a->shape.d[ra - 1], kb = b->shape.d[rb == 1 ? 0 : rb - 2];
    if (kiln_dim_known(ka) && kiln_dim_known(kb) && ka != kb)
        return kiln_fail(KILN_ERR_SHAPE, "inner dimensions differ: '%s' has K=%" PRId64 ", '%s' K=%" PRId64, a->name, ka,
                         b->name, kb);
    kiln_shape ba = {.rank = ra > 2 ? ra - 2 : 0}, bb = {.rank = rb > 2 ? rb - 2 : 0}, batch;
    memcpy(ba.d, a->shape.d, (size_t)ba.rank * sizeof(int64_t));
    memcpy(bb.d, b->shape.d, (size_t)bb.rank * sizeof(int64_t));
    if ((st = kiln_broadcast(&ba, &bb, &batch)) != KILN_OK) return st;
    kiln_shape out = batch;
    if (ra >= 2) out.d[out.rank++] = a->shape.d[ra - 2];
    if (rb >= 2) out.d[out.rank++] = b->shape.d[rb - 1];
    if (out.rank > KILN_MAX_RANK) return kiln_fail(KILN_ERR_SHAPE, "result rank exceeds %d", KILN_MAX_RANK);
    y->shape = out;
    return KILN_OK;
}

/* ---- costs (FLOPs, a multiply-add counts 2) */

double kiln_flops_Conv(const kiln_node *n, const kiln_value *v)
{
    const kiln_value *w = &v[n->inputs[1]], *y = &v[n->outputs[0]];
    /* every output element is a dot product over C/group x kernel */
    return 2.0 * numel(y) * dims_product(&w->shape, 1, w->shape.rank);
}

double kiln_flops_ConvTranspose(const kiln_node *n, const kiln_value *v)
{
    const kiln_value *x = &v[n->inputs[0]], *w = &v[n->inputs[1]];
    /* every input element scatters into M/group x kernel outputs */
    return 2.0 * numel(x) * dims_product(&w->shape, 1, w->shape.rank);
}

double kiln_flops_Gemm(const kiln_node *n, const kiln_value *v)
{
    const kiln_value *a = &v[n->inputs[0]], *y = &v[n->outputs[0]];
    int64_t k = a->shape.d[n->params.gemm.trans_a ? 0 : 1];
    return 2.0 * numel(y) * (double)(k > 0 ? k : 0);
}

double kiln_flops_MatMul(const kiln_node *n, const kiln_value *v)
{
    const kiln_value *a = &v[n->inputs[0]], *y = &v[n->outputs[0]];
    int64_t k = a->shape.rank >= 1 ? a->shape.d[a->shape.rank - 1] : 0;
    return 2.0 * numel(y) * (double)(k > 0 ? k : 0);
}

static double pool_flops(const kiln_node *n, const kiln_value *v)
{
    const kiln_pool_params *p = &n->params.pool;
    double window = 1;
    for (int i = 0; i < p->n_kernel; i++) window *= (double)p->kernel[i];
    return numel(&v[n->outputs[0]]) * window;
}

double kiln_flops_MaxPool(const kiln_node *n, const kiln_value *v) { return pool_flops(n, v); }
double kiln_flops_AveragePool(const kiln_node *n, const kiln_value *v) { return pool_flops(n, v); }
double kiln_flops_GlobalAveragePool(const kiln_node *n, const kiln_value *v) { return numel(&v[n->inputs[0]]); }
double kiln_flops_GlobalMaxPool(const kiln_node *n, const kiln_value *v) { return numel(&v[n->inputs[0]]); }
/* a multiply and an add per element, the per-channel factors folded once */
double kiln_flops_BatchNormalization(const kiln_node *n, const kiln_value *v) { return 2.0 * numel(&v[n->inputs[0]]); }
