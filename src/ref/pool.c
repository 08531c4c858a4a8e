/* Reference kernels: MaxPool (with its optional Indices), AveragePool,
 * GlobalAveragePool, GlobalMaxPool, over 1-D..6-D spatial inputs.
 *
 * Pools are memory-bound and a small part of a network's time, so they are
 * written once, on f64: the input is widened (exactly, for every dtype a
 * pool takes) and the result narrowed back with round-to-nearest-even for
 * f16/bf16 and saturation for i8/u8. The conversion is chosen once per call,
 * not per element. */
#include "ref/ref.h"

#include "ir/shape_conv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- widening / narrowing */


static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

static void narrow(kiln_dtype t, const double *src, void *dst, int64_t n)
{
    switch (t) {
    /* max of integers is an integer: only the empty window (-inf) needs the clamp */
    case KILN_I8: for (int64_t i = 0; i < n; i++) ((int8_t *)dst)[i] = (int8_t)clampd(src[i], -128, 127); break;
    case KILN_U8: for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)clampd(src[i], 0, 255); break;
    default: kiln_narrow_f64(t, src, dst, n); break;
    }
}

/* f64 views of input 0 and output 0; *xbuf / *ybuf are the allocations to
 * free (NULL when the tensor is f64 and is used in place). */
static kiln_status stage(const kiln_value *x, const kiln_value *y, const double **xd, double **yd, double **xbuf,
                         double **ybuf)
{
    int64_t nx = kiln_shape_numel(&x->shape), ny = kiln_shape_numel(&y->shape);
    *xbuf = *ybuf = NULL;
    if (x->dtype == KILN_F64) {
        *xd = x->data;
        *yd = y->data;
        return KILN_OK;
    }
    *xbuf = kiln_xmalloc((size_t)(nx > 0 ? nx : 1) * sizeof(double));
    *ybuf = kiln_xmalloc((size_t)(ny > 0 ? ny : 1) * sizeof(double));
    if (!*xbuf || !*ybuf) return KILN_ERR_OUT_OF_MEMORY;
    kiln_widen_f64(x->dtype, x->data, *xbuf, nx);
    *xd = *xbuf;
    *yd = *ybuf;
    return KILN_OK;
}

static void unstage(const kiln_value *y, double *xbuf, double *ybuf, kiln_status st)
{
    if (st == KILN_OK && ybuf) narrow(y->dtype, ybuf, y->data, kiln_shape_numel(&y->shape));
    free(xbuf);
    free(ybuf);
}

/* ---- windowed pools */

typedef enum { POOL_MAX, POOL_AVG } pool_kind;

typedef struct pool_args {
    pool_kind kind;
    bool count_include_pad;
    int64_t *indices;  /* MaxPool's second output, NULL when absent */
    bool column_major; /* storage_order = 1 */
} pool_args;

static void pool_planes(const kiln_window *w, int64_t planes, const double *x, double *y, const pool_args *a)
{
    int nsp = w->nsp;
    int64_t in_sp = 1, out_sp = 1, ksz = 1;
    int64_t rm_stride[KILN_MAX_SPATIAL], cm_stride[KILN_MAX_SPATIAL]; /* input strides, row / column major */
    for (int i = nsp - 1; i >= 0; i--) {
        rm_stride[i] = in_sp;
        in_sp *= w->in[i];
    }
    for (int i = 0, s = 1; i < nsp; i++) {
        cm_stride[i] = s;
        s *= (int)w->in[i];
    }
    for (int i = 0; i < nsp; i++) {
        out_sp *= w->out[i];
        ksz *= w->kernel[i];
    }
    for (int64_t p = 0; p < planes; p++) {
        const double *xp = x + p * in_sp;
        for (int64_t o = 0; o < out_sp; o++) {
            int64_t start[KILN_MAX_SPATIAL], rem = o;
            for (int i = nsp - 1; i >= 0; i--) {
                start[i] = (rem % w->out[i]) * w->stride[i] - w->pad_begin[i];
                rem /= w->out[i];
            }
            double acc = a->kind == POOL_MAX ? -INFINITY : 0.0;
            int64_t valid = 0, counted = 0, best = -1;
            for (int64_t k = 0; k < ksz; k++) {
                int64_t krem = k, off = 0, cm_off = 0;
                bool inside = true, in_padded = true;
                for (int i = nsp - 1; i >= 0; i--) {
                    int64_t pos = start[i] + (krem % w->kernel[i]) * w->dilation[i];
                    krem /= w->kernel[i];
                    if (pos < 0 || pos >= w->in[i]) inside = false;
                    /* the padded extent: windows that ceil_mode lets run past
                     * it do not count those positions, even with
                     * count_include_pad (ONNX reference, onnxruntime) */
                    if (pos >= w->in[i] + w->pad_end[i]) in_padded = false;
                    off += pos * rm_stride[i];
                    cm_off += pos * cm_stride[i];
                }
                counted += in_padded;
                if (!inside) continue;
                double v = xp[off];
                valid++;
                if (a->kind == POOL_AVG) {
                    acc += v;
                } else if (v > acc || best < 0) {
                    /* strict >: the first maximum in row-major window order wins */
                    acc = v;
                    best = a->column_major ? cm_off : off;
                }
            }
            if (a->kind == POOL_AVG) {
                int64_t div = a->count_include_pad ? counted : valid;
                acc = div > 0 ? acc / (double)div : NAN;
            }
            y[p * out_sp + o] = acc;
            if (a->indices) a->indices[p * out_sp + o] = p * in_sp + (best < 0 ? 0 : best);
        }
    }
}

static kiln_status pool_run(const kiln_node *n, kiln_value *v, pool_args *a)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    kiln_window w;
    kiln_status st = kiln_window_pool(n, &x->shape, &w);
    if (st != KILN_OK) return st;
    int64_t planes = x->shape.d[0] * x->shape.d[1];
    if (!y) {
        /* only Indices wanted: the maxima go to a scratch buffer */
        int64_t ny = planes;
        for (int i = 0; i < w.nsp; i++) ny *= w.out[i];
        double *xbuf = kiln_xmalloc((size_t)(kiln_shape_numel(&x->shape) + 1) * sizeof(double));
        double *ybuf = kiln_xmalloc((size_t)(ny + 1) * sizeof(double));
        bool ok = xbuf && ybuf;
        if (ok) {
            kiln_widen_f64(x->dtype, x->data, xbuf, kiln_shape_numel(&x->shape));
            pool_planes(&w, planes, xbuf, ybuf, a);
        }
        free(xbuf);
        free(ybuf);
        return ok ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
    }
    const double *xd;
    double *yd, *xbuf, *ybuf;
    st = stage(x, y, &xd, &yd, &xbuf, &ybuf);
    if (st == KILN_OK) pool_planes(&w, planes, xd, yd, a);
    unstage(y, xbuf, ybuf, st);
    return st;
}

kiln_status kiln_ref_MaxPool(const kiln_node *n, kiln_value *v)
{
    kiln_value *idx = kiln_out(n, v, 1);
    pool_args a = {.kind = POOL_MAX,
                   .indices = idx ? idx->data : NULL,
                   .column_major = n->params.pool.column_major};
    return pool_run(n, v, &a);
}

kiln_status kiln_ref_AveragePool(const kiln_node *n, kiln_value *v)
{
    pool_args a = {.kind = POOL_AVG, .count_include_pad = n->params.pool.count_include_pad};
    return pool_run(n, v, &a);
}

/* ---- global pools: one value per (n, c) plane, accumulated in f64 */

static kiln_status global_run(const kiln_node *n, kiln_value *v, pool_kind kind)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    int64_t planes = x->shape.d[0] * x->shape.d[1], sp = 1;
    for (int i = 2; i < x->shape.rank; i++) sp *= x->shape.d[i];
    const double *xd;
    double *yd, *xbuf, *ybuf;
    kiln_status st = stage(x, y, &xd, &yd, &xbuf, &ybuf);
    if (st == KILN_OK)
        for (int64_t p = 0; p < planes; p++) {
            const double *xp = xd + p * sp;
            double acc = kind == POOL_MAX ? -INFINITY : 0.0;
            if (kind == POOL_MAX)
                for (int64_t i = 0; i < sp; i++) acc = xp[i] > acc ? xp[i] : acc;
            else
                for (int64_t i = 0; i < sp; i++) acc += xp[i];
            yd[p] = kind == POOL_MAX ? acc : sp > 0 ? acc / (double)sp : NAN;
        }
    unstage(y, xbuf, ybuf, st);
    return st;
}

kiln_status kiln_ref_GlobalAveragePool(const kiln_node *n, kiln_value *v) { return global_run(n, v, POOL_AVG); }
kiln_status kiln_ref_GlobalMaxPool(const kiln_node *n, kiln_value *v) { return global_run(n, v, POOL_MAX); }
