/* Reference kernels of the quantization ops: QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear, QLinearConv, ConvInteger,
 * QLinearMatMul, MatMulInteger (shape rules in src/ir/shape_quant.c, which
 * the executor runs on the concrete shapes first: the geometry here is
 * trusted).
 *
 * These are the oracle for the GPU's int8 / fp8 kernels, so the integer
 * parts are exact and the float parts are rounded where ONNX says:
 *  - products and sums of (value - zero point) are integers, accumulated
 *    in 64 bits and wrapped to int32 at the end: the same as int32
 *    accumulation, which ONNX lets overflow ("accumulation may overflow if
 *    and only if in 32 bits");
 *  - quantization is saturate(round(v) + zero_point) with round half to
 *    even (rint under the default rounding mode, which every kiln kernel
 *    assumes), then clamped to [0, 255] / [-128, 127]; float8e4m3fn uses
 *    Cast-19's table (kiln_ref_f32_to_f8e4m3: round to nearest even, out of
 *    range +-448 with saturate, NaN without);
 *  - NaN has no quantized integer in ONNX; kiln gives the zero point (NaN
 *    read as 0), where numpy's reference leaves whatever its cast gives.
 * Requantizing an accumulator (QLinearConv, QLinearMatMul) multiplies it
 * by x_scale * w_scale / y_scale, that factor rounded to f32 at each step
 * (scales are float tensors; f16 / bf16 scales are widened exactly), the
 * product in f64 as ONNX's reference does (int32 * float32 is float64 in
 * numpy). */
#include "ref/ref.h"

#include "ir/shape_conv.h"
#include "ref/broadcast.h"
#include "ref/elementwise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t numel(const kiln_value *x) { return kiln_shape_numel(&x->shape); }

static int64_t prod(const int64_t *d, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* The integer range of a quantized dtype (u8 or i8) */
static void q8_range(kiln_dtype t, double *lo, double *hi)
{
    *lo = t == KILN_I8 ? -128.0 : 0.0;
    *hi = t == KILN_I8 ? 127.0 : 255.0;
}

/* saturate(round(q) + zp) into [lo, hi], round half to even */
static double quantize_int(double q, double zp, double lo, double hi)
{
    double r = rint(q);
    if (r != r) r = 0.0;
    r += zp;
    return r < lo ? lo : r > hi ? hi : r;
}

/* n elements of a u8 / i8 tensor as int32 (the dtype switch outside the loop) */
static void load_q8(kiln_dtype t, const void *src, int32_t *dst, int64_t n)
{
    if (t == KILN_I8)
        for (int64_t i = 0; i < n; i++) dst[i] = ((const int8_t *)src)[i];
    else
        for (int64_t i = 0; i < n; i++) dst[i] = ((const uint8_t *)src)[i];
}

static void store_q8(kiln_dtype t, void *dst, int64_t i, double q)
{
    if (t == KILN_I8) ((int8_t *)dst)[i] = (int8_t)q;
    else ((uint8_t *)dst)[i] = (uint8_t)q;
}

/* Element i of a zero point or scale that has one value or one per index
 * (absent: 0) */
static double param_at(const kiln_value *p, int64_t i)
{
    if (!p) return 0.0;
    return kiln_load_f64(p->dtype, p->data, numel(p) == 1 ? 0 : i);
}

/* ---------------------------------------------------------------- QuantizeLinear, DequantizeLinear */

/* x read as [outer, dim, inner] around the quantization axis; the scale
 * and zero point of element (o, d, i) are at o * so + (d / block) * sd +
 * i * si: all strides 0 per tensor, sd = 1 per axis, the blocked scale's
 * C order [outer, ceil(dim / block), inner] when blocked. */
typedef struct qgeom {
    int64_t outer, dim, inner, block, so, sd, si;
} qgeom;

static void quant_geom(const kiln_node *n, const kiln_value *x, const kiln_value *s, qgeom *g)
{
    memset(g, 0, sizeof *g);
    g->block = 1;
    if (numel(s) == 1) { /* per tensor: one long row */
        g->outer = 1;
        g->dim = 1;
        g->inner = numel(x);
        return;
    }
    int r = x->shape.rank, ax = 0;
    (void)kiln_axis(n->params.quant.axis, r, &ax); /* checked by the shape rule */
    g->outer = prod(x->shape.d, 0, ax);
    g->dim = x->shape.d[ax];
    g->inner = prod(x->shape.d, ax + 1, r);
    if (n->params.quant.block_size == 0) {
        g->sd = 1;
        return;
    }
    g->block = n->params.quant.block_size;
    g->sd = g->inner;
    g->si = 1;
    g->so = (g->dim + g->block - 1) / g->block * g->inner;
}

/* The scale and the zero point (0 when absent) as f64, one per scale:
 * exact for every dtype they can have. One allocation, freed by the
 * caller. */
static double *load_scale_zp(const kiln_value *s, const kiln_value *zp, double **zpv)
{
    int64_t ns = numel(s);
    double *sc = kiln_xmalloc((size_t)(2 * ns + 1) * sizeof *sc);
    if (!sc) return NULL;
    kiln_widen_f64(s->dtype, s->data, sc, ns);
    *zpv = sc + ns;
    if (zp && numel(zp) == ns) {
        kiln_widen_f64(zp->dtype, zp->data, *zpv, ns);
    } else { /* absent, or one for all (src/ir/shape_quant.c) */
        double z = param_at(zp, 0);
        for (int64_t i = 0; i < ns; i++) (*zpv)[i] = z;
    }
    return sc;
}

/* q rounded to the division's precision (QuantizeLinear-23: `precision`,
 * else the scale's dtype): the quotient was formed in f64 from exact
 * operands, and f64 -> f32 -> f16/bf16 gives the correctly rounded
 * quotient (f32 has more than twice their bits, so rounding twice is
 * innocuous for a division of such operands) */
static void round_to(kiln_dtype t, double *q, int64_t n)
{
    switch (t) {
    case KILN_F16:
        for (int64_t i = 0; i < n; i++) q[i] = kiln_f16_to_f32(kiln_f32_to_f16((float)q[i]));
        break;
    case KILN_BF16:
        for (int64_t i = 0; i < n; i++) q[i] = kiln_bf16_to_f32(kiln_f32_to_bf16((float)q[i]));
        break;
    default:
        for (int64_t i = 0; i < n; i++) q[i] = (float)q[i];
        break;
    }
}

/* y = saturate(round(x / y_scale) + y_zero_point), a run of KILN_EW_CHUNK
 * elements at a time */
kiln_status kiln_ref_QuantizeLinear(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *s = kiln_in(n, v, 1), *zp = kiln_in(n, v, 2);
    kiln_value *y = kiln_out(n, v, 0);
    const kiln_quant_params *p = &n->params.quant;
    qgeom g;
    quant_geom(n, x, s, &g);
    double *zpv, *sc = load_scale_zp(s, zp, &zpv);
    if (!sc) return KILN_ERR_OUT_OF_MEMORY;
    kiln_dtype prec = p->precision ? (kiln_dtype)p->precision : s->dtype;
    double lo = 0, hi = 0;
    if (y->dtype != KILN_F8E4M3) q8_range(y->dtype, &lo, &hi);
    size_t xes = kiln_dtype_size(x->dtype);
    double q[KILN_EW_CHUNK];
    int64_t k[KILN_EW_CHUNK];
    for (int64_t o = 0; o < g.outer; o++)
        for (int64_t d = 0; d < g.dim; d++) {
            int64_t row = (o * g.dim + d) * g.inner, kr = o * g.so + d / g.block * g.sd;
            for (int64_t c0 = 0; c0 < g.inner; c0 += KILN_EW_CHUNK) {
                int64_t len = g.inner - c0 < KILN_EW_CHUNK ? g.inner - c0 : KILN_EW_CHUNK;
                kiln_widen_f64(x->dtype, (const char *)x->data + (size_t)(row + c0) * xes, q, len);
                for (int64_t j = 0; j < len; j++) {
                    k[j] = kr + (c0 + j) * g.si;
                    q[j] /= sc[k[j]];
                }
                round_to(prec, q, len);
                if (y->dtype == KILN_F8E4M3) {
                    /* a zero point of 0 is not added: -0 keeps its sign, as x / scale */
                    uint8_t *dst = (uint8_t *)y->data + row + c0;
                    for (int64_t j = 0; j < len; j++)
                        dst[j] = kiln_ref_f32_to_f8e4m3((float)(zpv[k[j]] != 0 ? q[j] + zpv[k[j]] : q[j]), p->saturate);
                } else {
                    for (int64_t j = 0; j < len; j++)
                        store_q8(y->dtype, y->data, row + c0 + j, quantize_int(q[j], zpv[k[j]], lo, hi));
                }
            }
        }
    free(sc);
    return KILN_OK;
}

/* y = (x - x_zero_point) * x_scale: the difference (exact in f64) as f32
 * times the scale in f32, then rounded to the output dtype. For 8-bit x
 * the f32 product is exact, so y is correctly rounded in any output dtype;
 * an int32 x beyond 2^24 is rounded to f32 first, as ONNX's reference
 * (and a GPU's int-to-float conversion) does. */
kiln_status kiln_ref_DequantizeLinear(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *s = kiln_in(n, v, 1), *zp = kiln_in(n, v, 2);
    kiln_value *y = kiln_out(n, v, 0);
    qgeom g;
    quant_geom(n, x, s, &g);
    double *zpv, *sc = load_scale_zp(s, zp, &zpv);
    if (!sc) return KILN_ERR_OUT_OF_MEMORY;
    size_t xes = kiln_dtype_size(x->dtype), yes = kiln_dtype_size(y->dtype);
    double q[KILN_EW_CHUNK];
    float f[KILN_EW_CHUNK];
    for (int64_t o = 0; o < g.outer; o++)
        for (int64_t d = 0; d < g.dim; d++) {
            int64_t row = (o * g.dim + d) * g.inner, kr = o * g.so + d / g.block * g.sd;
            for (int64_t c0 = 0; c0 < g.inner; c0 += KILN_EW_CHUNK) {
                int64_t len = g.inner - c0 < KILN_EW_CHUNK ? g.inner - c0 : KILN_EW_CHUNK;
                kiln_widen_f64(x->dtype, (const char *)x->data + (size_t)(row + c0) * xes, q, len);
                for (int64_t j = 0; j < len; j++) {
                    int64_t kj = kr + (c0 + j) * g.si;
                    f[j] = (float)(q[j] - zpv[kj]) * (float)sc[kj];
                }
                kiln_ref_convert(y->dtype, (char *)y->data + (size_t)(row + c0) * yes, KILN_F32, f, len, true);
            }
        }
    free(sc);
    return KILN_OK;
}

/* ---------------------------------------------------------------- DynamicQuantizeLinear */

/* uint8 over the range of x widened to include 0, in f32 arithmetic as
 * ONNX writes it:
 *   y_scale = (max(0, max x) - min(0, min x)) / 255   (1/255 when x is all 0)
 *   y_zero_point = round(saturate(0 - min(0, min x) / y_scale))
 *   y = saturate(round(x / y_scale) + y_zero_point)
 * NaNs are left out of the range (numpy's would make everything NaN). */
kiln_status kiln_ref_DynamicQuantizeLinear(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *y = kiln_out(n, v, 0), *ys = kiln_out(n, v, 1), *yz = kiln_out(n, v, 2);
    const float *xf = x->data;
    int64_t cnt = numel(x);
    float mx = 0.0f, mn = 0.0f;
    for (int64_t i = 0; i < cnt; i++) {
        if (xf[i] > mx) mx = xf[i];
        if (xf[i] < mn) mn = xf[i];
    }
    float scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;
    float zf = 0.0f - mn / scale;
    double zp = rint(zf < 0.0f ? 0.0f : zf > 255.0f ? 255.0f : zf);
    uint8_t *yd = y->data;
    for (int64_t i = 0; i < cnt; i++) {
        float q = xf[i] / scale; /* f32, as the formula */
        yd[i] = (uint8_t)quantize_int(q, zp, 0.0, 255.0);
    }
    if (ys) *(float *)ys->data = scale;
    if (yz) *(uint8_t *)yz->data = (uint8_t)zp;
    return KILN_OK;
}

/* ---------------------------------------------------------------- QLinearConv, ConvInteger */

typedef struct qconv {
    kiln_window w;
    int64_t batch, c, m, group, cg, mg; /* C/group, M/group */
    int64_t in_sp, out_sp, ksz;         /* spatial sizes, kernel size */
} qconv;

static void qconv_init(const kiln_node *n, const kiln_value *x, const kiln_value *w, const kiln_value *y, qconv *g)
{
    int nsp = x->shape.rank - 2;
    int64_t k[KILN_MAX_SPATIAL];
    for (int i = 0; i < nsp; i++) k[i] = w->shape.d[i + 2];
    (void)kiln_window_conv(n, &x->shape, k, &g->w); /* the shape rule ran it on these shapes */
    g->batch = x->shape.d[0];
    g->c = x->shape.d[1];
    g->m = w->shape.d[0];
    g->group = n->params.conv.group;
    g->cg = g->c / g->group;
    g->mg = g->m / g->group;
    g->in_sp = prod(x->shape.d, 2, x->shape.rank);
    g->out_sp = prod(y->shape.d, 2, y->shape.rank);
    g->ksz = prod(k, 0, nsp);
}

/* col[(ci * ksz + kidx) * out_sp + o] = x[ci][o * stride + k * dilation -
 * pad], 0 in the padding: x here is already x - x_zero_point, so the
 * padding is the zero point, as ONNX's reference pads */
static void im2col(const qconv *g, const int32_t *x, int32_t *col)
{
    const kiln_window *w = &g->w;
    int nsp = w->nsp;
    for (int64_t ci = 0; ci < g->cg; ci++)
        for (int64_t kidx = 0; kidx < g->ksz; kidx++) {
            int64_t kk[KILN_MAX_SPATIAL], o[KILN_MAX_SPATIAL] = {0}, rest = kidx;
            for (int i = nsp - 1; i >= 0; i--) { /* kidx is row-major over the kernel */
                kk[i] = rest % w->kernel[i];
                rest /= w->kernel[i];
            }
            const int32_t *xc = x + ci * g->in_sp;
            int32_t *dst = col + (ci * g->ksz + kidx) * g->out_sp;
            for (int64_t p = 0; p < g->out_sp; p++) {
                int64_t off = 0;
                bool inside = true;
                for (int i = 0; i < nsp && inside; i++) {
                    int64_t pos = o[i] * w->stride[i] + kk[i] * w->dilation[i] - w->pad_begin[i];
                    inside = pos >= 0 && pos < w->in[i];
                    off = off * w->in[i] + pos;
                }
                dst[p] = inside ? xc[off] : 0;
                for (int i = nsp - 1; i >= 0; i--) {
                    if (++o[i] < w->out[i]) break;
                    o[i] = 0;
                }
            }
        }
}

/* acc[b, oc, o] = sum over the group's input channels and kernel taps of
 * (x - x_zero_point) * (w - w_zero_point[oc]), plus bias[oc] when given,
 * wrapped to int32 */
static kiln_status qconv_acc(const qconv *g, const int32_t *x, const int32_t *w, const int32_t *bias, int32_t *acc)
{
    int64_t kdim = g->cg * g->ksz;
    int32_t *col = kiln_xmalloc((size_t)(kdim * g->out_sp + 1) * sizeof *col);
    int64_t *row = kiln_xmalloc((size_t)(g->out_sp + 1) * sizeof *row);
    if (!col || !row) {
        free(col);
        free(row);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t grp = 0; grp < g->group; grp++) {
            im2col(g, x + (b * g->c + grp * g->cg) * g->in_sp, col);
            for (int64_t ol = 0; ol < g->mg; ol++) {
                int64_t oc = grp * g->mg + ol;
                const int32_t *wr = w + oc * kdim;
                int64_t b0 = bias ? bias[oc] : 0;
                for (int64_t o = 0; o < g->out_sp; o++) row[o] = b0;
                for (int64_t r = 0; r < kdim; r++) {
                    int64_t wv = wr[r];
                    const int32_t *cr = col + r * g->out_sp;
                    if (wv)
                        for (int64_t o = 0; o < g->out_sp; o++) row[o] += wv * cr[o];
                }
                int32_t *dst = acc + (b * g->m + oc) * g->out_sp;
                for (int64_t o = 0; o < g->out_sp; o++) dst[o] = (int32_t)(uint32_t)(uint64_t)row[o];
            }
        }
    free(col);
    free(row);
    return KILN_OK;
}

/* x - x_zero_point and w - w_zero_point[oc] as int32 (w's zero point: one
 * value, or one per output channel); one allocation, *wq inside it */
static int32_t *qconv_operands(const qconv *g, const kiln_value *x, const kiln_value *xzp, const kiln_value *w,
                               const kiln_value *wzp, int32_t **wq)
{
    int64_t nx = numel(x), nw = numel(w), per = nw / g->m;
    int32_t *xq = kiln_xmalloc((size_t)(nx + nw + 1) * sizeof *xq);
    if (!xq) return NULL;
    *wq = xq + nx;
    load_q8(x->dtype, x->data, xq, nx);
    load_q8(w->dtype, w->data, *wq, nw);
    int32_t xz = (int32_t)param_at(xzp, 0);
    for (int64_t i = 0; i < nx; i++) xq[i] -= xz;
    for (int64_t oc = 0; oc < g->m; oc++) {
        int32_t wz = (int32_t)param_at(wzp, oc);
        for (int64_t i = 0; i < per; i++) (*wq)[oc * per + i] -= wz;
    }
    return xq;
}

kiln_status kiln_ref_ConvInteger(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *w = kiln_in(n, v, 1);
    kiln_value *y = kiln_out(n, v, 0);
    qconv g;
    qconv_init(n, x, w, y, &g);
    if (numel(y) == 0) return KILN_OK;
    int32_t *wq, *xq = qconv_operands(&g, x, kiln_in(n, v, 2), w, kiln_in(n, v, 3), &wq);
    if (!xq) return KILN_ERR_OUT_OF_MEMORY;
    kiln_status st = qconv_acc(&g, xq, wq, NULL, y->data);
    free(xq);
    return st;
}

/* The requantizing factor x_scale * w_scale / y_scale, rounded to f32 at
 * each step (see the top of the file) */
static double requant_factor(double xs, double ws, double ys) { return (float)((float)(xs * ws) / ys); }

/* inputs x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
 * y_zero_point, B: y = saturate(round(acc * x_scale * w_scale[oc] /
 * y_scale) + y_zero_point), w's scale per tensor or per output channel */
kiln_status kiln_ref_QLinearConv(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *w = kiln_in(n, v, 3), *bias = kiln_in(n, v, 8);
    const kiln_value *ws = kiln_in(n, v, 4), *yzp = kiln_in(n, v, 7);
    kiln_value *y = kiln_out(n, v, 0);
    qconv g;
    qconv_init(n, x, w, y, &g);
    int64_t ny = numel(y);
    if (ny == 0) return KILN_OK;
    int32_t *wq, *xq = qconv_operands(&g, x, kiln_in(n, v, 2), w, kiln_in(n, v, 5), &wq);
    int32_t *acc = kiln_xmalloc((size_t)(ny + g.m + 1) * sizeof *acc);
    if (!xq || !acc) {
        free(xq);
        free(acc);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    int32_t *bq = NULL;
    if (bias) {
        bq = acc + ny;
        for (int64_t oc = 0; oc < g.m; oc++) bq[oc] = ((const int32_t *)bias->data)[oc];
    }
    kiln_status st = qconv_acc(&g, xq, wq, bq, acc);
    if (st == KILN_OK) {
        double xs = param_at(kiln_in(n, v, 1), 0), ys = param_at(kiln_in(n, v, 6), 0), zp = param_at(yzp, 0), lo, hi;
        q8_range(y->dtype, &lo, &hi);
        for (int64_t b = 0; b < g.batch; b++)
            for (int64_t oc = 0; oc < g.m; oc++) {
                double f = requant_factor(xs, param_at(ws, oc), ys);
                int64_t base = (b * g.m + oc) * g.out_sp;
                for (int64_t o = 0; o < g.out_sp; o++)
                    store_q8(y->dtype, y->data, base + o, quantize_int((double)acc[base + o] * f, zp, lo, hi));
            }
    }
    free(xq);
    free(acc);
    return st;
}

/* ---------------------------------------------------------------- QLinearMatMul, MatMulInteger */

/* numpy.matmul of A [..., M, K] and B [..., K, N] (a 1-D A is [1, K], a
 * 1-D B [K, 1]); the batch dims broadcast. For output matrix ob, A's
 * matrix is aoff[ob] and B's boff[ob]. */
typedef struct qmm {
    int64_t m, k, n, batch, na, nb;
    kiln_shape a, b;      /* the operands' shapes, 1-D promoted to 2-D */
    int64_t *aoff, *boff; /* batch entries each */
} qmm;

static kiln_status qmm_init(const kiln_value *a, const kiln_value *b, qmm *q)
{
    memset(q, 0, sizeof *q);
    q->a = a->shape;
    q->b = b->shape;
    if (q->a.rank == 1) {
        q->a.d[1] = q->a.d[0];
        q->a.d[0] = 1;
        q->a.rank = 2;
    }
    if (q->b.rank == 1) {
        q->b.d[1] = 1;
        q->b.rank = 2;
    }
    int ra = q->a.rank, rb = q->b.rank;
    q->m = q->a.d[ra - 2];
    q->k = q->a.d[ra - 1];
    q->n = q->b.d[rb - 1];
    kiln_shape ba = {.rank = ra - 2}, bb = {.rank = rb - 2}, bo;
    memcpy(ba.d, q->a.d, (size_t)ba.rank * sizeof(int64_t));
    memcpy(bb.d, q->b.d, (size_t)bb.rank * sizeof(int64_t));
    int64_t sa[KILN_MAX_RANK], sb[KILN_MAX_RANK];
    kiln_status st = kiln_broadcast(&ba, &bb, &bo);
    if (st == KILN_OK) st = kiln_bcast_strides(&ba, &bo, sa);
    if (st == KILN_OK) st = kiln_bcast_strides(&bb, &bo, sb);
    if (st != KILN_OK) return st;
    q->batch = prod(bo.d, 0, bo.rank);
    q->na = prod(ba.d, 0, ba.rank);
    q->nb = prod(bb.d, 0, bb.rank);
    q->aoff = kiln_xmalloc((size_t)(2 * q->batch + 1) * sizeof *q->aoff);
    if (!q->aoff) return KILN_ERR_OUT_OF_MEMORY;
    q->boff = q->aoff + q->batch;
    int64_t idx[KILN_MAX_RANK] = {0};
    for (int64_t ob = 0; ob < q->batch; ob++) {
        int64_t ai = 0, bi = 0;
        for (int d = 0; d < bo.rank; d++) {
            ai += idx[d] * sa[d];
            bi += idx[d] * sb[d];
        }
        q->aoff[ob] = ai;
        q->boff[ob] = bi;
        for (int d = bo.rank - 1; d >= 0; d--) {
            if (++idx[d] < bo.d[d]) break;
            idx[d] = 0;
        }
    }
    return KILN_OK;
}

/* A scale or zero point p of operand x (promoted shape xs) as one value
 * per (matrix, row) of A (row) or per (matrix, column) of B, in f64 (exact
 * for both): p is one value, 1-D (M rows / N columns), or [..., M, 1] /
 * [..., 1, N] broadcasting to x's batch dims (checked by the shape rule).
 * Absent: 0. */
static kiln_status rowcol(const kiln_value *p, const kiln_shape *xs, bool row, double *out)
{
    int r = xs->rank;
    kiln_shape t = *xs, ps;
    t.d[row ? r - 1 : r - 2] = 1;
    int64_t cnt = prod(t.d, 0, r);
    if (!p || numel(p) == 1) {
        double c = param_at(p, 0);
        for (int64_t i = 0; i < cnt; i++) out[i] = c;
        return KILN_OK;
    }
    ps = p->shape;
    if (ps.rank == 1) {
        ps.rank = 2;
        ps.d[row ? 0 : 1] = p->shape.d[0];
        ps.d[row ? 1 : 0] = 1;
    }
    int64_t st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    kiln_status s = kiln_bcast_strides(&ps, &t, st);
    if (s != KILN_OK) return kiln_fail_prefix(s, "'%s': ", p->name);
    for (int64_t i = 0; i < cnt; i++) {
        int64_t off = 0;
        for (int d = 0; d < r; d++) off += idx[d] * st[d];
        out[i] = kiln_load_f64(p->dtype, p->data, off);
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < t.d[d]) break;
            idx[d] = 0;
        }
    }
    return KILN_OK;
}

/* acc[ob, m, n] = sum_k (A - a_zero_point) * (B - b_zero_point), wrapped to
 * int32; za has one value per (A matrix, row), zb per (B matrix, column) */
static kiln_status qmm_acc(const qmm *q, const kiln_value *a, const double *za, const kiln_value *b, const double *zb,
                           int32_t *acc)
{
    int64_t sa = q->m * q->k, sb = q->k * q->n;
    int32_t *aq = kiln_xmalloc((size_t)(q->na * sa + q->nb * sb + 1) * sizeof *aq);
    int64_t *row = kiln_xmalloc((size_t)(q->n + 1) * sizeof *row);
    if (!aq || !row) {
        free(aq);
        free(row);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    int32_t *bq = aq + q->na * sa;
    load_q8(a->dtype, a->data, aq, q->na * sa);
    load_q8(b->dtype, b->data, bq, q->nb * sb);
    for (int64_t r = 0; r < q->na * q->m; r++) /* A's rows */
        for (int64_t k = 0; k < q->k; k++) aq[r * q->k + k] -= (int32_t)za[r];
    for (int64_t mat = 0; mat < q->nb; mat++) /* B's columns */
        for (int64_t k = 0; k < q->k; k++)
            for (int64_t c = 0; c < q->n; c++) bq[(mat * q->k + k) * q->n + c] -= (int32_t)zb[mat * q->n + c];
    for (int64_t ob = 0; ob < q->batch; ob++) {
        const int32_t *am = aq + q->aoff[ob] * sa, *bm = bq + q->boff[ob] * sb;
        for (int64_t i = 0; i < q->m; i++) {
            memset(row, 0, (size_t)q->n * sizeof *row);
            for (int64_t k = 0; k < q->k; k++) {
                int64_t av = am[i * q->k + k];
                const int32_t *br = bm + k * q->n;
                if (av)
                    for (int64_t c = 0; c < q->n; c++) row[c] += av * br[c];
            }
            int32_t *dst = acc + (ob * q->m + i) * q->n;
            for (int64_t c = 0; c < q->n; c++) dst[c] = (int32_t)(uint32_t)(uint64_t)row[c];
        }
    }
    free(aq);
    free(row);
    return KILN_OK;
}

/* The zero points (and, for QLinearMatMul, the scales) of both operands
 * per row / column, in one allocation: za, sa (A's rows), zb, sb (B's
 * columns) */
static double *qmm_params(const qmm *q, const kiln_value *za, const kiln_value *sa, const kiln_value *zb,
                          const kiln_value *sb, double *out[4])
{
    int64_t ra = q->na * q->m, cb = q->nb * q->n;
    double *buf = kiln_xmalloc((size_t)(2 * (ra + cb) + 1) * sizeof *buf);
    if (!buf) return NULL;
    out[0] = buf;
    out[1] = buf + ra;
    out[2] = buf + 2 * ra;
    out[3] = buf + 2 * ra + cb;
    kiln_status st = rowcol(za, &q->a, true, out[0]);
    if (st == KILN_OK) st = rowcol(sa, &q->a, true, out[1]);
    if (st == KILN_OK) st = rowcol(zb, &q->b, false, out[2]);
    if (st == KILN_OK) st = rowcol(sb, &q->b, false, out[3]);
    if (st != KILN_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

kiln_status kiln_ref_MatMulInteger(const kiln_node *n, kiln_value *v)
{
    const kiln_value *a = kiln_in(n, v, 0), *b = kiln_in(n, v, 1);
    kiln_value *y = kiln_out(n, v, 0);
    if (numel(y) == 0) return KILN_OK;
    qmm q;
    double *p[4];
    kiln_status st = qmm_init(a, b, &q);
    if (st != KILN_OK) return st;
    double *buf = qmm_params(&q, kiln_in(n, v, 2), NULL, kiln_in(n, v, 3), NULL, p);
    st = buf ? qmm_acc(&q, a, p[0], b, p[2], y->data) : KILN_ERR_OUT_OF_MEMORY;
    free(buf);
    free(q.aoff);
    return st;
}

/* inputs a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
 * y_zero_point: y = saturate(round(acc * a_scale[row] * b_scale[col] /
 * y_scale) + y_zero_point) */
kiln_status kiln_ref_QLinearMatMul(const kiln_node *n, kiln_value *v)
{
    const kiln_value *a = kiln_in(n, v, 0), *b = kiln_in(n, v, 3);
    kiln_value *y = kiln_out(n, v, 0);
    int64_t ny = numel(y);
    if (ny == 0) return KILN_OK;
    qmm q;
    double *p[4];
    kiln_status st = qmm_init(a, b, &q);
    if (st != KILN_OK) return st;
    double *buf = qmm_params(&q, kiln_in(n, v, 2), kiln_in(n, v, 1), kiln_in(n, v, 5), kiln_in(n, v, 4), p);
    int32_t *acc = kiln_xmalloc((size_t)(ny + 1) * sizeof *acc);
    st = buf && acc ? qmm_acc(&q, a, p[0], b, p[2], acc) : KILN_ERR_OUT_OF_MEMORY;
    if (st == KILN_OK) {
        double ys = param_at(kiln_in(n, v, 6), 0), zp = param_at(kiln_in(n, v, 7), 0), lo, hi;
        q8_range(y->dtype, &lo, &hi);
        for (int64_t ob = 0; ob < q.batch; ob++)
            for (int64_t i = 0; i < q.m; i++) {
                double sa = p[1][q.aoff[ob] * q.m + i];
                for (int64_t c = 0; c < q.n; c++) {
                    int64_t at = (ob * q.m + i) * q.n + c;
                    double f = requant_factor(sa, p[3][q.boff[ob] * q.n + c], ys);
                    store_q8(y->dtype, y->data, at, quantize_int((double)acc[at] * f, zp, lo, hi));
                }
            }
    }
    free(buf);
    free(acc);
    free(q.aoff);
    return st;
}
