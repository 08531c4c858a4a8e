/* Shape rules and costs of the quantization ops: QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear, QLinearConv, ConvInteger,
 * QLinearMatMul, MatMulInteger (kernels in src/ref/quant.c).
 *
 * Quantized tensors are kiln's u8, i8 and (QuantizeLinear and
 * DequantizeLinear from version 19) f8e4m3fn. ONNX's int16, uint16, int4,
 * uint4, int2, uint2, float8e5m2, the fnuz float8s and float4e2m1 have no
 * kiln dtype: a model using them fails at import, or here for an
 * output_dtype attribute, naming the dtype.
 *
 * A scale and its zero point say how many elements share one pair of
 * them. The rules check that granularity against the inputs' shapes when
 * the dims are known; at run time the ref executor runs them again on the
 * concrete shapes, so the kernels can trust what they checked. */
#include "ir/shape_conv.h"
#include "ir/shape_tensor.h"
#include "ir/ops.h"

#include <inttypes.h>

/* ---- helpers */

static kiln_status need(const kiln_node *n, kiln_value *v, int i, const char *role, kiln_value **out)
{
    *out = kiln_in(n, v, i);
    if (!*out) return kiln_fail(KILN_ERR_SHAPE, "%s needs input '%s'", n->op_type, role);
    return KILN_OK;
}

/* An ONNX TensorProto.DataType by name, for messages: kiln's name when
 * kiln has it, else ONNX's (kiln_dtype_name knows only kiln's) */
static const char *onnx_dtype_name(int t)
{
    static const char *const other[] = {[4] = "uint16", [5] = "int16", [12] = "uint32", [13] = "uint64",
                                        [14] = "complex64", [15] = "complex128", [18] = "float8e4m3fnuz",
                                        [19] = "float8e5m2", [20] = "float8e5m2fnuz", [21] = "uint4", [22] = "int4",
                                        [23] = "float4e2m1", [24] = "float8e8m0", [25] = "uint2", [26] = "int2"};
    if (kiln_dtype_valid((kiln_dtype)t)) return kiln_dtype_name((kiln_dtype)t);
    return t > 0 && t < (int)(sizeof other / sizeof other[0]) && other[t] ? other[t] : "unknown";
}

static bool is_q8(kiln_dtype t) { return t == KILN_U8 || t == KILN_I8; }
static bool is_scale(kiln_dtype t) { return t == KILN_F32 || t == KILN_F16 || t == KILN_BF16; }

static kiln_status need_q8(const kiln_value *x, const char *role)
{
    if (!is_q8(x->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' (%s) is %s; kiln implements uint8 and int8 here", x->name,
                         role, kiln_dtype_name(x->dtype));
    return KILN_OK;
}

static kiln_status need_scale(const kiln_value *s, const char *role)
{
    if (!is_scale(s->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "scale '%s' (%s) is %s; kiln implements float, float16 and bfloat16 scales",
                         s->name, role, kiln_dtype_name(s->dtype));
    return KILN_OK;
}

/* A zero point has its tensor's dtype (ONNX: "must have same type") */
static kiln_status same_dtype(const kiln_value *zp, const kiln_value *x)
{
    if (zp && zp->dtype != x->dtype)
        return kiln_fail(KILN_ERR_SHAPE, "zero point '%s' is %s but '%s' is %s; they must have the same type", zp->name,
                         kiln_dtype_name(zp->dtype), x->name, kiln_dtype_name(x->dtype));
    return KILN_OK;
}

/* Every dim concrete and 1: one value for the whole tensor (per tensor).
 * ONNX says "a scalar"; its reference takes any one-element tensor. */
static bool one_value(const kiln_shape *s)
{
    if (s->rank < 0) return false;
    for (int i = 0; i < s->rank; i++)
        if (s->d[i] != 1) return false;
    return true;
}

static bool same_shape(const kiln_shape *a, const kiln_shape *b)
{
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (kiln_dim_known(a->d[i]) && kiln_dim_known(b->d[i]) && a->d[i] != b->d[i]) return false;
    return true;
}

/* A scale and its zero point: ONNX says the same shape. One zero point
 * for per-axis scales (symmetric per-channel weights, zero point 0) is
 * taken too, as onnxruntime and ONNX's reference do. */
static kiln_status pair_shapes(const kiln_value *s, const kiln_value *zp)
{
    char a[128], b[128];
    if (!zp || s->shape.rank < 0 || zp->shape.rank < 0) return KILN_OK;
    if (same_shape(&s->shape, &zp->shape) || one_value(&zp->shape)) return KILN_OK;
    return kiln_fail(KILN_ERR_SHAPE, "zero point '%s' has shape %s but its scale '%s' has %s; they must be the same",
                     zp->name, kiln_shape_str(NULL, &zp->shape, a, sizeof a), s->name,
                     kiln_shape_str(NULL, &s->shape, b, sizeof b));
}

/* A one-value input (y_scale, QLinearConv's x_zero_point, ...) */
static kiln_status need_one(const kiln_value *p, const char *role)
{
    char a[128];
    if (p && p->shape.rank >= 0 && !one_value(&p->shape) && kiln_shape_numel(&p->shape) >= 0)
        return kiln_fail(KILN_ERR_SHAPE, "'%s' (%s) has shape %s; it must be a scalar (one value per tensor)", p->name,
                         role, kiln_shape_str(NULL, &p->shape, a, sizeof a));
    return KILN_OK;
}

/* ---- QuantizeLinear, DequantizeLinear */

/* The granularity the scale's shape picks (ONNX QuantizeLinear-21):
 *  - one value: per tensor;
 *  - 1-D: per axis, one value per index along `axis` (version 10 says
 *    scalars only and has no axis; ONNX's reference and onnxruntime read a
 *    1-D scale there along axis 1, the later default, and so does kiln);
 *  - x's rank, x's dims except ceil(D / block_size) along `axis`: blocked,
 *    block_size consecutive indices along the axis share a value (from 21).
 * The zero point has the scale's shape, or one value (pair_shapes). */
static kiln_status granularity(const kiln_node *n, const kiln_value *x, const kiln_value *s, const kiln_value *zp)
{
    const kiln_quant_params *q = &n->params.quant;
    char a[128];
    kiln_status st = pair_shapes(s, zp);
    if (st != KILN_OK || s->shape.rank < 0 || one_value(&s->shape)) return st;
    int r = x->shape.rank, ax = 0;
    if (q->block_size == 0 && s->shape.rank != 1)
        return kiln_fail(KILN_ERR_SHAPE,
                         "scale '%s' has shape %s; without block_size it must be a scalar (per tensor) or 1-D (per axis)",
                         s->name, kiln_shape_str(NULL, &s->shape, a, sizeof a));
    if (r < 0) return KILN_OK;
    if ((st = kiln_axis(q->axis, r, &ax)) != KILN_OK)
        return kiln_fail_prefix(st, "attribute 'axis' of per-axis quantization of '%s': ", x->name);
    int64_t d = x->shape.d[ax];
    if (q->block_size == 0) {
        int64_t sd = s->shape.d[0];
        if (kiln_dim_known(d) && kiln_dim_known(sd) && d != sd)
            return kiln_fail(KILN_ERR_SHAPE, "scale '%s' has %" PRId64 " values but axis %d of '%s' has %" PRId64, s->name,
                             sd, ax, x->name, d);
        return KILN_OK;
    }
    int64_t b = q->block_size;
    if (s->shape.rank != r)
        return kiln_fail(KILN_ERR_SHAPE, "scale '%s' has rank %d; blocked quantization (block_size %" PRId64
                         ") needs the rank of '%s', %d", s->name, s->shape.rank, b, x->name, r);
    for (int i = 0; i < r; i++) {
        int64_t xd = x->shape.d[i], sd = s->shape.d[i];
        if (!kiln_dim_known(xd) || !kiln_dim_known(sd)) continue;
        int64_t want = i == ax ? (xd + b - 1) / b : xd;
        if (sd != want)
            return kiln_fail(KILN_ERR_SHAPE, "scale '%s' has %" PRId64 " values along axis %d; '%s' with %" PRId64
                             " there needs %" PRId64 "%s", s->name, sd, i, x->name, xd, want,
                             i == ax ? " blocks of block_size" : " (only the quantization axis is blocked)");
    }
    return KILN_OK;
}

/* y = saturate(round(x / y_scale) + y_zero_point): y is y_zero_point's
 * dtype, else output_dtype (21 on), else uint8 */
kiln_status kiln_shape_QuantizeLinear(const kiln_node *n, kiln_value *v)
{
    kiln_value *x, *s, *zp = kiln_in(n, v, 2);
    const kiln_quant_params *q = &n->params.quant;
    kiln_status st = need(n, v, 0, "x", &x);
    if (st == KILN_OK) st = need(n, v, 1, "y_scale", &s);
    if (st != KILN_OK) return st;
    if (!is_scale(x->dtype) && x->dtype != KILN_I32)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' is %s; QuantizeLinear takes float, float16, bfloat16 or int32",
                         x->name, kiln_dtype_name(x->dtype));
    if ((st = need_scale(s, "y_scale")) != KILN_OK) return st;
    kiln_dtype out = zp ? zp->dtype : q->output_dtype ? (kiln_dtype)q->output_dtype : KILN_U8;
    if (zp && q->output_dtype && q->output_dtype != (int)zp->dtype)
        return kiln_fail(KILN_ERR_SHAPE, "attribute 'output_dtype' is %d (%s) but zero point '%s' is %s",
                         q->output_dtype, onnx_dtype_name(q->output_dtype), zp->name, kiln_dtype_name(zp->dtype));
    if (!is_q8(out) && !(out == KILN_F8E4M3 && n->version >= 19))
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "QuantizeLinear-%d to ONNX dtype %d (%s) is not supported; kiln quantizes to uint8, int8 and "
                         "(from version 19) float8e4m3fn", n->version, (int)out, onnx_dtype_name((int)out));
    if (q->precision && !is_scale((kiln_dtype)q->precision))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "attribute 'precision' is ONNX dtype %d (%s); kiln divides in float, "
                         "float16 or bfloat16", q->precision, onnx_dtype_name(q->precision));
    if ((st = granularity(n, x, s, zp)) != KILN_OK) return st;
    return set_out(n, v, 0, out, &x->shape);
}

/* y = (x - x_zero_point) * x_scale: y is output_dtype (23 on), else the
 * scale's dtype */
kiln_status kiln_shape_DequantizeLinear(const kiln_node *n, kiln_value *v)
{
    kiln_value *x, *s, *zp = kiln_in(n, v, 2);
    const kiln_quant_params *q = &n->params.quant;
    kiln_status st = need(n, v, 0, "x", &x);
    if (st == KILN_OK) st = need(n, v, 1, "x_scale", &s);
    if (st != KILN_OK) return st;
    if (!is_q8(x->dtype) && x->dtype != KILN_I32 && !(x->dtype == KILN_F8E4M3 && n->version >= 19))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' is %s; kiln dequantizes uint8, int8, int32 and (from version "
                         "19) float8e4m3fn", x->name, kiln_dtype_name(x->dtype));
    if ((st = need_scale(s, "x_scale")) != KILN_OK || (st = same_dtype(zp, x)) != KILN_OK) return st;
    kiln_dtype out = q->output_dtype ? (kiln_dtype)q->output_dtype : s->dtype;
    if (!is_scale(out))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "attribute 'output_dtype' is ONNX dtype %d (%s); DequantizeLinear gives "
                         "float, float16 or bfloat16", q->output_dtype, onnx_dtype_name(q->output_dtype));
    if ((st = granularity(n, x, s, zp)) != KILN_OK) return st;
    return set_out(n, v, 0, out, &x->shape);
}

/* x (float) -> y (uint8, x's shape), y_scale (float) and y_zero_point
 * (uint8), both scalars */
kiln_status kiln_shape_DynamicQuantizeLinear(const kiln_node *n, kiln_value *v)
{
    kiln_value *x;
    kiln_status st = need(n, v, 0, "x", &x);
    if (st != KILN_OK) return st;
    if (x->dtype != KILN_F32)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' is %s; DynamicQuantizeLinear takes float", x->name,
                         kiln_dtype_name(x->dtype));
    kiln_shape scalar = {.rank = 0};
    set_out(n, v, 0, KILN_U8, &x->shape);
    set_out(n, v, 1, KILN_F32, &scalar);
    return set_out(n, v, 2, KILN_U8, &scalar);
}

/* ---- QLinearConv, ConvInteger */

/* x and w (uint8 / int8, N x C x spatial and M x C/group x kernel), their
 * zero points (x: one value; w: one, or one per output channel, as w's
 * scale), an optional int32 bias of M: the output [N, M, spatial] by
 * Conv's window (kiln_window_conv: strides, dilations, pads, auto_pad) */
static kiln_status qconv_shape(const kiln_node *n, kiln_value *v, const kiln_value *x, const kiln_value *w,
                               const kiln_value *xzp, const kiln_value *wscale, const kiln_value *wzp,
                               const kiln_value *bias, kiln_dtype out)
{
    kiln_status st = need_q8(x, "x");
    if (st == KILN_OK) st = need_q8(w, "w");
    if (st == KILN_OK) st = same_dtype(xzp, x);
    if (st == KILN_OK) st = same_dtype(wzp, w);
    if (st == KILN_OK) st = need_one(xzp, "x_zero_point");
    if (st != KILN_OK) return st;
    int xr = x->shape.rank, wr = w->shape.rank;
    int64_t group = n->params.conv.group; /* >= 1: checked by the parser */
    if (xr >= 0 && xr < 3) return kiln_fail(KILN_ERR_SHAPE, "input '%s' has rank %d, expected >= 3", x->name, xr);
    if (xr >= 0 && wr >= 0 && xr != wr)
        return kiln_fail(KILN_ERR_SHAPE, "weight '%s' has rank %d, input '%s' rank %d", w->name, wr, x->name, xr);
    int64_t m = wr >= 1 ? w->shape.d[0] : KILN_DIM_UNKNOWN;
    if (kiln_dim_known(m) && m % group)
        return kiln_fail(KILN_ERR_SHAPE, "weight '%s' has %" PRId64 " output channels, not a multiple of group %" PRId64,
                         w->name, m, group);
    if (xr >= 2 && wr >= 2 && kiln_dim_known(x->shape.d[1]) && kiln_dim_known(w->shape.d[1]) &&
        x->shape.d[1] != w->shape.d[1] * group)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has %" PRId64 " channels, weight '%s' expects %" PRId64
                         " x group %" PRId64, x->name, x->shape.d[1], w->name, w->shape.d[1], group);
    /* w's scale and zero point, and B: one value per output channel (the
     * scale and zero point may also be one value for all) */
    static const char *const role[3] = {"w_scale", "w_zero_point", "B"};
    const kiln_value *per_m[3] = {wscale, wzp, bias};
    for (int i = 0; i < 3; i++) {
        const kiln_value *p = per_m[i];
        char a[128];
        if (!p || p->shape.rank < 0 || (i < 2 && one_value(&p->shape))) continue;
        if (p->shape.rank != 1 || (kiln_dim_known(p->shape.d[0]) && kiln_dim_known(m) && p->shape.d[0] != m))
            return kiln_fail(KILN_ERR_SHAPE, "'%s' (%s) has shape %s; it must be 1-D, one value per output channel of '%s'",
                             p->name, role[i], kiln_shape_str(NULL, &p->shape, a, sizeof a), w->name);
    }
    if (bias && bias->dtype != KILN_I32)
        return kiln_fail(KILN_ERR_SHAPE, "bias '%s' is %s; QLinearConv's bias is int32 (quantized with scale x_scale * "
                         "w_scale and zero point 0)", bias->name, kiln_dtype_name(bias->dtype));
    if (xr < 0) return set_out(n, v, 0, out, &x->shape);
    int nsp = xr - 2;
    int64_t k[KILN_MAX_SPATIAL];
    const kiln_conv_params *p = &n->params.conv;
    for (int i = 0; i < nsp; i++) k[i] = wr == xr ? w->shape.d[i + 2] : KILN_DIM_UNKNOWN;
    if (p->n_kernel && p->n_kernel != nsp)
        return kiln_fail(KILN_ERR_SHAPE, "attribute 'kernel_shape' has %d values, expected %d", p->n_kernel, nsp);
    for (int i = 0; i < p->n_kernel; i++) {
        if (kiln_dim_known(k[i]) && k[i] != p->kernel[i])
            return kiln_fail(KILN_ERR_SHAPE, "attribute 'kernel_shape' says %" PRId64 " on axis %d, weight '%s' has %" PRId64,
                             p->kernel[i], i, w->name, k[i]);
        k[i] = p->kernel[i];
    }
    kiln_window win;
    if ((st = kiln_window_conv(n, &x->shape, k, &win)) != KILN_OK) return st;
    kiln_shape o = {.rank = xr};
    o.d[0] = x->shape.d[0];
    o.d[1] = m;
    for (int i = 0; i < nsp; i++) o.d[i + 2] = win.out[i];
    return set_out(n, v, 0, out, &o);
}

/* inputs x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
 * y_zero_point, B: y has y_zero_point's dtype */
kiln_status kiln_shape_QLinearConv(const kiln_node *n, kiln_value *v)
{
    static const char *const role[8] = {"x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale",
                                        "y_zero_point"};
    kiln_value *in[8];
    kiln_status st = KILN_OK;
    for (int i = 0; i < 8 && st == KILN_OK; i++) st = need(n, v, i, role[i], &in[i]);
    if (st != KILN_OK) return st;
    static const int scale[3] = {1, 4, 6};
    for (int i = 0; i < 3 && st == KILN_OK; i++) st = need_scale(in[scale[i]], role[scale[i]]);
    if (st == KILN_OK) st = need_one(in[1], role[1]);
    if (st == KILN_OK) st = need_one(in[6], role[6]);
    if (st == KILN_OK) st = need_one(in[7], role[7]);
    if (st == KILN_OK) st = need_q8(in[7], role[7]);
    if (st == KILN_OK) st = pair_shapes(in[4], in[5]);
    if (st != KILN_OK) return st;
    return qconv_shape(n, v, in[0], in[3], in[2], in[4], in[5], kiln_in(n, v, 8), in[7]->dtype);
}

/* inputs x, w, x_zero_point, w_zero_point (both optional): y is int32 */
kiln_status kiln_shape_ConvInteger(const kiln_node *n, kiln_value *v)
{
    kiln_value *x, *w;
    kiln_status st = need(n, v, 0, "x", &x);
    if (st == KILN_OK) st = need(n, v, 1, "w", &w);
    if (st != KILN_OK) return st;
    return qconv_shape(n, v, x, w, kiln_in(n, v, 2), NULL, kiln_in(n, v, 3), NULL, KILN_I32);
}

double kiln_flops_QLinearConv(const kiln_node *n, const kiln_value *v)
{
    const kiln_value *w = &v[n->inputs[3]], *y = &v[n->outputs[0]];
    double per = 2.0, cnt = (double)kiln_shape_numel(&y->shape);
    for (int i = 1; i < w->shape.rank; i++) per *= (double)(w->shape.d[i] > 0 ? w->shape.d[i] : 0);
    return cnt > 0 ? cnt * per : 0.0;
}

/* w is input 1, as Conv's */
double kiln_flops_ConvInteger(const kiln_node *n, const kiln_value *v) { return kiln_flops_Conv(n, v); }

/* ---- QLinearMatMul, MatMulInteger */

/* numpy.matmul's shape, as MatMul's (src/ir/shape_conv.c) */
static kiln_status matmul_shape(const kiln_value *a, const kiln_value *b, kiln_shape *out)
{
    int ra = a->shape.rank, rb = b->shape.rank;
    if (ra == 0 || rb == 0) return kiln_fail(KILN_ERR_SHAPE, "matrix operands must have rank >= 1");
    if (ra < 0 || rb < 0) {
        *out = unknown_rank();
        return KILN_OK;
    }
    int64_t ka = a->shape.d[ra - 1], kb = b->shape.d[rb == 1 ? 0 : rb - 2];
    if (kiln_dim_known(ka) && kiln_dim_known(kb) && ka != kb)
        return kiln_fail(KILN_ERR_SHAPE, "inner dimensions differ: '%s' has K=%" PRId64 ", '%s' K=%" PRId64, a->name, ka,
                         b->name, kb);
    kiln_shape ba = {.rank = ra > 2 ? ra - 2 : 0}, bb = {.rank = rb > 2 ? rb - 2 : 0};
    for (int i = 0; i < ba.rank; i++) ba.d[i] = a->shape.d[i];
    for (int i = 0; i < bb.rank; i++) bb.d[i] = b->shape.d[i];
    kiln_status st = kiln_broadcast(&ba, &bb, out);
    if (st != KILN_OK) return st;
    if (ra >= 2) out->d[out->rank++] = a->shape.d[ra - 2];
    if (rb >= 2) out->d[out->rank++] = b->shape.d[rb - 1];
    if (out->rank > KILN_MAX_RANK) return kiln_fail(KILN_ERR_SHAPE, "result rank exceeds %d", KILN_MAX_RANK);
    return KILN_OK;
}

/* A scale or zero point of matrix operand x: one value (per tensor), or
 * one per row of A (row) / per column of B: 1-D of M / N values, or x's
 * [..., M, 1] / [..., 1, N] with leading dims that broadcast to x's */
static kiln_status rowcol_shape(const kiln_value *p, const kiln_value *x, bool row)
{
    char a[128];
    int r = x->shape.rank, pr = p ? p->shape.rank : -1;
    if (pr < 0 || one_value(&p->shape) || r < 0) return KILN_OK;
    const char *what = row ? "per row of" : "per column of";
    if (r < 2)
        return kiln_fail(KILN_ERR_SHAPE, "'%s' has shape %s; '%s' is 1-D, so it takes one value (per tensor)", p->name,
                         kiln_shape_str(NULL, &p->shape, a, sizeof a), x->name);
    int64_t want = x->shape.d[row ? r - 2 : r - 1];
    if (pr == 1) {
        if (kiln_dim_known(want) && kiln_dim_known(p->shape.d[0]) && p->shape.d[0] != want)
            return kiln_fail(KILN_ERR_SHAPE, "'%s' has %" PRId64 " values; one %s '%s' is %" PRId64, p->name,
                             p->shape.d[0], what, x->name, want);
        return KILN_OK;
    }
    if (pr > r)
        return kiln_fail(KILN_ERR_SHAPE, "'%s' has rank %d, more than '%s' (%d)", p->name, pr, x->name, r);
    for (int i = 0; i < pr; i++) {
        int64_t pd = p->shape.d[i], xd = x->shape.d[r - pr + i];
        bool unit = row ? i == pr - 1 : i == pr - 2; /* the axis the values do not vary along */
        if (kiln_dim_known(pd) && pd != 1 && (unit || (kiln_dim_known(xd) && pd != xd)))
            return kiln_fail(KILN_ERR_SHAPE, "'%s' has shape %s; values %s '%s' have shape %s", p->name,
                             kiln_shape_str(NULL, &p->shape, a, sizeof a), what, x->name,
                             row ? "[M] or [..., M, 1]" : "[N] or [..., 1, N]");
    }
    return KILN_OK;
}

/* inputs a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
 * y_zero_point: y has y_zero_point's dtype and MatMul's shape */
kiln_status kiln_shape_QLinearMatMul(const kiln_node *n, kiln_value *v)
{
    static const char *const role[8] = {"a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale",
                                        "y_zero_point"};
    kiln_value *in[8];
    kiln_status st = KILN_OK;
    for (int i = 0; i < 8 && st == KILN_OK; i++) st = need(n, v, i, role[i], &in[i]);
    for (int i = 0; i < 8 && st == KILN_OK; i++) {
        /* version 21's float8 operands: kiln quantizes to float8 only in
         * QuantizeLinear so far */
        if (i == 1 || i == 4 || i == 6) st = need_scale(in[i], role[i]);
        else st = need_q8(in[i], role[i]);
    }
    if (st == KILN_OK) st = same_dtype(in[2], in[0]);
    if (st == KILN_OK) st = same_dtype(in[5], in[3]);
    if (st == KILN_OK) st = pair_shapes(in[1], in[2]);
    if (st == KILN_OK) st = pair_shapes(in[4], in[5]);
    if (st == KILN_OK) st = rowcol_shape(in[1], in[0], true);
    if (st == KILN_OK) st = rowcol_shape(in[4], in[3], false);
    if (st == KILN_OK) st = need_one(in[6], role[6]);
    if (st == KILN_OK) st = need_one(in[7], role[7]);
    kiln_shape o;
    if (st == KILN_OK) st = matmul_shape(in[0], in[3], &o);
    if (st != KILN_OK) return st;
    return set_out(n, v, 0, in[7]->dtype, &o);
}

/* inputs A, B, a_zero_point, b_zero_point (optional): Y is int32 */
kiln_status kiln_shape_MatMulInteger(const kiln_node *n, kiln_value *v)
{
    kiln_value *a, *b, *za = kiln_in(n, v, 2), *zb = kiln_in(n, v, 3);
    kiln_status st = need(n, v, 0, "A", &a);
    if (st == KILN_OK) st = need(n, v, 1, "B", &b);
    if (st == KILN_OK) st = need_q8(a, "A");
    if (st == KILN_OK) st = need_q8(b, "B");
    if (st == KILN_OK) st = same_dtype(za, a);
    if (st == KILN_OK) st = same_dtype(zb, b);
    if (st == KILN_OK) st = rowcol_shape(za, a, true);
    if (st == KILN_OK) st = rowcol_shape(zb, b, false);
    kiln_shape o;
    if (st == KILN_OK) st = matmul_shape(a, b, &o);
    if (st != KILN_OK) return st;
    return set_out(n, v, 0, KILN_I32, &o);
}

/* a is input 0 and y output 0, as MatMul's */
double kiln_flops_QLinearMatMul(const kiln_node *n, const kiln_value *v) { return kiln_flops_MatMul(n, v); }
double kiln_flops_MatMulInteger(const kiln_node *n, const kiln_value *v) { return kiln_flops_MatMul(n, v); }
