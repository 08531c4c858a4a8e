/* Reference kernels: Softmax, LogSoftmax (opset 13: along one axis) and
 * LayerNormalization (opset 17). The input is converted once into doubles
 * (f32/f16/bf16 all compute in double), the result rounded once into the
 * output dtype. */
#include "ref/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>



static double *load_all(const kiln_value *x, int64_t *n)
{
    *n = kiln_shape_numel(&x->shape);
    double *b = malloc((size_t)(*n > 0 ? *n : 1) * sizeof(double));
    if (b) kiln_widen_f64(x->dtype, x->data, b, *n);
    else kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory converting '%s'", x->name);
    return b;
}

/* ---- Softmax / LogSoftmax-13: x viewed as [outer, len, inner], normalized
 * along len. Subtracting the max first keeps exp() from overflowing; the
 * result is mathematically the same. */
static kiln_status softmax_like(const kiln_node *n, kiln_value *v, bool log_out)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    int axis;
    kiln_status st = kiln_axis(n->params.softmax.axis, x->shape.rank, &axis);
    if (st != KILN_OK) return st;
    int64_t outer = 1, len = x->shape.d[axis], inner = 1, cnt;
    for (int i = 0; i < axis; i++) outer *= x->shape.d[i];
    for (int i = axis + 1; i < x->shape.rank; i++) inner *= x->shape.d[i];
    double *b = load_all(x, &cnt);
    if (!b) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double *p = b + o * len * inner + i;
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < len; j++) m = p[j * inner] > m ? p[j * inner] : m;
            for (int64_t j = 0; j < len; j++) s += exp(p[j * inner] - m);
            if (log_out) {
                double ls = log(s);
                for (int64_t j = 0; j < len; j++) p[j * inner] = p[j * inner] - m - ls;
            } else
                for (int64_t j = 0; j < len; j++) p[j * inner] = exp(p[j * inner] - m) / s;
        }
    kiln_narrow_f64(y->dtype, b, y->data, cnt);
    free(b);
    return KILN_OK;
}

kiln_status kiln_ref_Softmax(const kiln_node *n, kiln_value *v) { return softmax_like(n, v, false); }
kiln_status kiln_ref_LogSoftmax(const kiln_node *n, kiln_value *v) { return softmax_like(n, v, true); }

/* ---- LayerNormalization-17 */

/* Scale / B broadcast (numpy, right-aligned) against X. They repeat with a
 * period of prod(X.d[from:]) where `from` is where their non-1 dims start
 * (at most `axis`): expanded once into that block, indexed by i % block. */
static double *expand_param(const kiln_value *p, const kiln_shape *xs, int axis, int64_t *block)
{
    int lead = 0; /* leading 1s of p can be dropped */
    while (lead < p->shape.rank && p->shape.d[lead] == 1) lead++;
    int from = xs->rank - (p->shape.rank - lead);
    if (from > axis) from = axis;
    int64_t m = 1;
    for (int i = from; i < xs->rank; i++) m *= xs->d[i];
    double *src = malloc((size_t)(kiln_shape_numel(&p->shape) + 1) * sizeof(double));
    double *out = malloc((size_t)(m > 0 ? m : 1) * sizeof(double));
    if (!src || !out) {
        free(src);
        free(out);
        kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory expanding '%s'", p->name);
        return NULL;
    }
    kiln_widen_f64(p->dtype, p->data, src, kiln_shape_numel(&p->shape));
    /* strides of p seen as a tensor of X's rank (0 where p broadcasts) */
    int64_t pstride[KILN_MAX_RANK] = {0}, st = 1;
    for (int i = p->shape.rank - 1; i >= 0; i--) {
        int xi = i + xs->rank - p->shape.rank;
        pstride[xi] = p->shape.d[i] == 1 ? 0 : st;
        st *= p->shape.d[i];
    }
    for (int64_t k = 0; k < m; k++) {
        int64_t rem = k, off = 0;
        for (int i = xs->rank - 1; i >= from; i--) {
            off += (rem % xs->d[i]) * pstride[i];
            rem /= xs->d[i];
        }
        out[k] = src[off];
    }
    free(src);
    *block = m;
    return out;
}

kiln_status kiln_ref_LayerNormalization(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *sc = kiln_in(n, v, 1), *bi = kiln_in(n, v, 2);
    kiln_value *y = kiln_out(n, v, 0), *mo = kiln_out(n, v, 1), *io = kiln_out(n, v, 2);
    int axis;
    kiln_status st = kiln_axis(n->params.layernorm.axis, x->shape.rank, &axis);
    if (st != KILN_OK) return st;
    double eps = n->params.layernorm.epsilon;
    int64_t outer = 1, len = 1, cnt, sblock = 1, bblock = 1;
    for (int i = 0; i < axis; i++) outer *= x->shape.d[i];
    for (int i = axis; i < x->shape.rank; i++) len *= x->shape.d[i];
    double *b = load_all(x, &cnt), *s = NULL, *bb = NULL;
    double *mean = malloc((size_t)(outer + 1) * sizeof(double)), *inv = malloc((size_t)(outer + 1) * sizeof(double));
    if (b && mean && inv && sc) s = expand_param(sc, &x->shape, axis, &sblock);
    if (b && mean && inv && bi) bb = expand_param(bi, &x->shape, axis, &bblock);
    if (!b || !mean || !inv || (sc && !s) || (bi && !bb)) {
        free(b), free(mean), free(inv), free(s), free(bb);
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory in LayerNormalization of '%s'", x->name);
    }
    for (int64_t o = 0; o < outer; o++) {
        double *p = b + o * len, m = 0, var = 0;
        for (int64_t j = 0; j < len; j++) m += p[j];
        m = len ? m / (double)len : NAN;
        for (int64_t j = 0; j < len; j++) var += (p[j] - m) * (p[j] - m);
        var = len ? var / (double)len : NAN;
        double r = 1.0 / sqrt(var + eps);
        mean[o] = m;
        inv[o] = r;
        for (int64_t j = 0; j < len; j++) {
            int64_t gi = o * len + j;
            double z = (p[j] - m) * r;
            if (s) z *= s[gi % sblock];
            if (bb) z += bb[gi % bblock];
            p[j] = z;
        }
    }
    if (y) kiln_narrow_f64(y->dtype, b, y->data, cnt);
    if (mo) kiln_narrow_f64(mo->dtype, mean, mo->data, outer);
    if (io) kiln_narrow_f64(io->dtype, inv, io->data, outer);
    free(b), free(mean), free(inv), free(s), free(bb);
    return KILN_OK;
}
