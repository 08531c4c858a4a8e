/* Reference kernels: LRN (across channels), InstanceNormalization,
 * GroupNormalization and CumSum. X is [N, C, D1, ...] (spatial dims
 * flattened into S = D1 * ...); floats are converted once into doubles
 * and the result rounded once into the output's dtype, as in softmax.c.
 * CumSum adds integers in i64 with two's-complement wrap-around. */
#include "ref/elementwise.h"
#include "ref/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double *widen_all(const kiln_value *x, int64_t *n)
{
    *n = kiln_shape_numel(&x->shape);
    double *b = malloc((size_t)(*n > 0 ? *n : 1) * sizeof(double));
    if (b) kiln_widen_f64(x->dtype, x->data, b, *n);
    return b;
}

/* N, C and S of X (rank >= 2). */
static void ncs(const kiln_value *x, int64_t *N, int64_t *C, int64_t *S)
{
    *N = x->shape.d[0];
    *C = x->shape.rank > 1 ? x->shape.d[1] : 1;
    *S = 1;
    for (int k = 2; k < x->shape.rank; k++) *S *= x->shape.d[k];
}

/* ---- LRN-1/13:
 *   square_sum[n,c,s] = sum of X[n,i,s]^2 for i from max(0, c - floor((size-1)/2))
 *                                              to min(C-1, c + ceil((size-1)/2))
 *   Y = X / (bias + alpha / size * square_sum)^beta */
kiln_status kiln_ref_LRN(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    const int64_t size = n->params.lrn.size;
    if (size < 1) return kiln_fail(KILN_ERR_UNSUPPORTED, "LRN size=%lld (must be 1 or more)", (long long)size);
    const double alpha = n->params.lrn.alpha, beta = n->params.lrn.beta;
    const double bias = n->params.lrn.bias;
    const int64_t before = (size - 1) / 2, after = size - 1 - before; /* floor and ceil of (size-1)/2 */
    int64_t N, C, S, cnt;
    ncs(x, &N, &C, &S);
    double *b = widen_all(x, &cnt), *o = malloc((size_t)(cnt > 0 ? cnt : 1) * sizeof(double));
    if (!b || !o) {
        free(b), free(o);
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory in LRN of '%s'", x->name);
    }
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < C; c++) {
            const int64_t lo = c - before < 0 ? 0 : c - before, hi = c + after > C - 1 ? C - 1 : c + after;
            const double *p = b + i * C * S;
            for (int64_t s = 0; s < S; s++) {
                double sq = 0;
                for (int64_t k = lo; k <= hi; k++) sq += p[k * S + s] * p[k * S + s];
                o[(i * C + c) * S + s] = p[c * S + s] / pow(bias + alpha / (double)size * sq, beta);
            }
        }
    kiln_narrow_f64(y->dtype, o, y->data, cnt);
    free(b), free(o);
    return KILN_OK;
}

/* ---- Instance and group normalization: X seen as [N, G, len] (len = C/G *
 * S), each of the N * G rows normalized by its own mean and (population)
 * variance, then Y = Xn * scale + bias per channel (per_group: per group,
 * GroupNormalization-18). */
static kiln_status group_norm(const kiln_node *n, kiln_value *v, int64_t G, bool per_group)
{
    kiln_value *x = kiln_in(n, v, 0), *sc = kiln_in(n, v, 1), *bi = kiln_in(n, v, 2), *y = kiln_out(n, v, 0);
    const double eps = n->params.norm.epsilon;
    int64_t N, C, S, cnt;
    ncs(x, &N, &C, &S);
    if (G < 1 || C % G)
        return kiln_fail(KILN_ERR_SHAPE, "%s: %lld channels of '%s' do not split into %lld groups", n->op_type,
                         (long long)C, x->name, (long long)G);
    const int64_t np = per_group ? G : C, cg = C / G, len = cg * S;
    if (kiln_shape_numel(&sc->shape) != np || kiln_shape_numel(&bi->shape) != np)
        return kiln_fail(KILN_ERR_SHAPE, "%s: scale '%s' and bias '%s' must have %lld elements", n->op_type, sc->name,
                         bi->name, (long long)np);
    double *b = widen_all(x, &cnt), *s = malloc((size_t)(np + 1) * sizeof(double));
    double *t = malloc((size_t)(np + 1) * sizeof(double));
    if (!b || !s || !t) {
        free(b), free(s), free(t);
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory in %s of '%s'", n->op_type, x->name);
    }
    kiln_widen_f64(sc->dtype, sc->data, s, np);
    kiln_widen_f64(bi->dtype, bi->data, t, np);
    for (int64_t r = 0; r < N * G; r++) {
        double *p = b + r * len, m = 0, var = 0;
        for (int64_t j = 0; j < len; j++) m += p[j];
        m = len ? m / (double)len : NAN;
        for (int64_t j = 0; j < len; j++) var += (p[j] - m) * (p[j] - m);
        var = len ? var / (double)len : NAN;
        const double inv = 1.0 / sqrt(var + eps);
        const int64_t g = r % G;
        for (int64_t j = 0; j < len; j++) {
            const int64_t k = per_group ? g : g * cg + j / S;
            p[j] = (p[j] - m) * inv * s[k] + t[k];
        }
    }
    kiln_narrow_f64(y->dtype, b, y->data, cnt);
    free(b), free(s), free(t);
    return KILN_OK;
}

/* InstanceNormalization-6/22: one group per channel. */
kiln_status kiln_ref_InstanceNormalization(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    return group_norm(n, v, x->shape.rank > 1 ? x->shape.d[1] : 1, false);
}

/* GroupNormalization-18 (scale and bias per group) and -21 (per channel;
 * stash_type only says the statistics' precision, here always f64). */
kiln_status kiln_ref_GroupNormalization(const kiln_node *n, kiln_value *v)
{
    return group_norm(n, v, n->params.norm.num_groups, n->version < 21);
}

/* ---- CumSum-11/14: along `axis` (input 1, may be negative); exclusive:
 * each element is the sum of those before it (0 first); reverse: sums run
 * from the end. X seen as [outer, len, inner]. */
kiln_status kiln_ref_CumSum(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *ax = kiln_in(n, v, 1), *y = kiln_out(n, v, 0);
    if (!ax->data || kiln_shape_numel(&ax->shape) != 1)
        return kiln_fail(KILN_ERR_SHAPE, "CumSum axis '%s' must be a scalar", ax->name);
    int axis;
    kiln_status st = kiln_axis(kiln_load_i64(ax->dtype, ax->data, 0), x->shape.rank, &axis);
    if (st != KILN_OK) return kiln_fail_prefix(st, "CumSum axis of '%s': ", x->name);
    const bool excl = n->params.cumsum.exclusive, rev = n->params.cumsum.reverse;
    const bool fl = kiln_dtype_is_float(x->dtype) && x->dtype != KILN_F8E4M3;
    if (!fl && x->dtype != KILN_I32 && x->dtype != KILN_I64)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "CumSum of '%s' (%s) is not supported", x->name,
                         kiln_dtype_name(x->dtype));
    const kiln_dtype dom = fl ? KILN_F64 : KILN_I64;
    int64_t outer = 1, len = x->shape.d[axis], inner = 1;
    for (int k = 0; k < axis; k++) outer *= x->shape.d[k];
    for (int k = axis + 1; k < x->shape.rank; k++) inner *= x->shape.d[k];
    const int64_t cnt = outer * len * inner;
    /* 8-byte elements of the compute dtype, converted in and out at once */
    void *b = malloc((size_t)(cnt > 0 ? cnt : 1) * 8);
    if (!b) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory in CumSum of '%s'", x->name);
    kiln_ref_convert(dom, b, x->dtype, x->data, cnt, true);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * len * inner + i;
            double fs = 0;
            uint64_t is = 0; /* wraps like the integer dtype */
            for (int64_t q = 0; q < len; q++) {
                const int64_t at = base + (rev ? len - 1 - q : q) * inner;
                if (fl) {
                    double *p = (double *)b + at, e = *p;
                    if (!excl) fs += e;
                    *p = fs;
                    if (excl) fs += e;
                } else {
                    int64_t *p = (int64_t *)b + at, e = *p;
                    if (!excl) is += (uint64_t)e;
                    *p = (int64_t)is;
                    if (excl) is += (uint64_t)e;
                }
            }
        }
    kiln_ref_convert(y->dtype, y->data, dom, b, cnt, true);
    free(b);
    return KILN_OK;
}
