/* Reference kernels: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ArgMax.
 *
 * Every reduction converts its input once into a double buffer (float
 * dtypes: f32/f16/bf16 accumulate in double) or an int64 buffer (integer
 * and bool dtypes, exact for all of int64), reduces there with a loop chosen
 * once per call, and converts the result back. Dims of the same kind
 * (reduced / kept) that are adjacent are merged first, so the innermost loop
 * is a contiguous run. */
#include "ref/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- conversions: the dtype switch sits outside the element loop */

static bool is_float(kiln_dtype t) { return t == KILN_F32 || t == KILN_F64 || t == KILN_F16 || t == KILN_BF16; }



static void load_i64(kiln_dtype t, const void *src, int64_t n, int64_t *dst)
{
    switch (t) {
    case KILN_I64: memcpy(dst, src, (size_t)n * sizeof(int64_t)); break;
    case KILN_I32:
        for (int64_t i = 0; i < n; i++) dst[i] = ((const int32_t *)src)[i];
        break;
    case KILN_I8:
        for (int64_t i = 0; i < n; i++) dst[i] = ((const int8_t *)src)[i];
        break;
    case KILN_U8:
        for (int64_t i = 0; i < n; i++) dst[i] = ((const uint8_t *)src)[i];
        break;
    case KILN_BOOL:
        for (int64_t i = 0; i < n; i++) dst[i] = ((const uint8_t *)src)[i] != 0;
        break;
    default: break;
    }
}

/* Narrowing keeps the low bits (two's complement wrap, as onnxruntime's
 * integer accumulators do). */
static void store_i64(kiln_dtype t, void *dst, const int64_t *src, int64_t n)
{
    switch (t) {
    case KILN_I64: memcpy(dst, src, (size_t)n * sizeof(int64_t)); break;
    case KILN_I32:
        for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int32_t)(uint32_t)(uint64_t)src[i];
        break;
    case KILN_I8:
        for (int64_t i = 0; i < n; i++) ((int8_t *)dst)[i] = (int8_t)(uint8_t)(uint64_t)src[i];
        break;
    case KILN_U8:
        for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)(uint64_t)src[i];
        break;
    case KILN_BOOL:
        for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = src[i] != 0;
        break;
    default: break;
    }
}

/* Smallest / largest value of an integer dtype: ReduceMax / ReduceMin of an
 * empty set give these (ONNX ReduceMax-18: "minus infinity (if supported by
 * the datatype) or the minimum value of the data type otherwise"). */
static int64_t int_lowest(kiln_dtype t)
{
    switch (t) {
    case KILN_I32: return INT32_MIN;
    case KILN_I8: return INT8_MIN;
    case KILN_U8:
    case KILN_BOOL: return 0;
    default: return INT64_MIN;
    }
}

static int64_t int_highest(kiln_dtype t)
{
    switch (t) {
    case KILN_I32: return INT32_MAX;
    case KILN_I8: return INT8_MAX;
    case KILN_U8: return UINT8_MAX;
    case KILN_BOOL: return 1;
    default: return INT64_MAX;
    }
}

/* ---- which axes a Reduce* node reduces (data is always known here) */

static kiln_status reduce_axes(const kiln_node *n, kiln_value *v, int rank, bool red[KILN_MAX_RANK], bool *noop)
{
    int64_t axes[KILN_MAX_RANK];
    int n_axes = 0;
    kiln_status st;
    const kiln_reduce_params *p = &n->params.reduce;
    if (p->axes_from_input) {
        kiln_value *a = kiln_in(n, v, 1);
        if (a && (st = kiln_value_ints(a, axes, KILN_MAX_RANK, &n_axes)) != KILN_OK) return st;
    } else {
        n_axes = p->n_axes;
        for (int i = 0; i < n_axes; i++) axes[i] = p->axes[i];
    }
    for (int i = 0; i < rank; i++) red[i] = n_axes == 0;
    *noop = n_axes == 0 && p->noop_with_empty_axes;
    for (int i = 0; i < n_axes; i++) {
        int ax;
        if ((st = kiln_axis(axes[i], rank, &ax)) != KILN_OK) return st;
        red[ax] = true;
    }
    return KILN_OK;
}

/* ---- the walk: input in memory order, output offset kept alongside */

typedef struct red_plan {
    int rank;
    int64_t d[KILN_MAX_RANK];
    bool red[KILN_MAX_RANK];
    int64_t ostride[KILN_MAX_RANK]; /* 0 for reduced dims */
} red_plan;

static void plan_build(const kiln_shape *s, const bool *red, red_plan *p)
{
    p->rank = 0;
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i] == 1) continue; /* reducing a dim of 1 changes nothing */
        if (p->rank > 0 && p->red[p->rank - 1] == red[i])
            p->d[p->rank - 1] *= s->d[i];
        else {
            p->d[p->rank] = s->d[i];
            p->red[p->rank++] = red[i];
        }
    }
    int64_t st = 1;
    for (int i = p->rank - 1; i >= 0; i--) {
        p->ostride[i] = p->red[i] ? 0 : st;
        if (!p->red[i]) st *= p->d[i];
    }
}

/* inner(acc, x, n, reduced): folds the contiguous run x[0..n) into acc[0]
 * (reduced) or acc[0..n) elementwise (kept). */
typedef void (*red_inner)(void *acc, const void *x, int64_t n, bool reduced);

static void plan_walk(const red_plan *p, const void *x, size_t xsz, void *acc, size_t asz, red_inner f)
{
    if (p->rank == 0) {
        f(acc, x, 1, true);
        return;
    }
    int last = p->rank - 1;
    int64_t run = p->d[last], outer = 1, idx[KILN_MAX_RANK] = {0}, ofs = 0;
    for (int i = 0; i < last; i++) outer *= p->d[i];
    for (int64_t o = 0; o < outer; o++) {
        f((char *)acc + (size_t)ofs * asz, (const char *)x + (size_t)(o * run) * xsz, run, p->red[last]);
        for (int k = last - 1; k >= 0; k--) {
            ofs += p->ostride[k];
            if (++idx[k] < p->d[k]) break;
            ofs -= p->ostride[k] * p->d[k];
            idx[k] = 0;
        }
    }
}

static void sum_f64(void *acc, const void *xv, int64_t n, bool reduced)
{
    double *a = acc;
    const double *x = xv;
    if (reduced) {
        double s = a[0];
        for (int64_t j = 0; j < n; j++) s += x[j];
        a[0] = s;
    } else
        for (int64_t j = 0; j < n; j++) a[j] += x[j];
}

/* NaN propagates, as numpy's maximum.reduce (the ONNX reference) does */
static inline double max_nan(double a, double b) { return (b > a || isnan(b)) && !isnan(a) ? b : a; }
static inline double min_nan(double a, double b) { return (b < a || isnan(b)) && !isnan(a) ? b : a; }

static void max_f64(void *acc, const void *xv, int64_t n, bool reduced)
{
    double *a = acc;
    const double *x = xv;
    if (reduced) {
        double m = a[0];
        for (int64_t j = 0; j < n; j++) m = max_nan(m, x[j]);
        a[0] = m;
    } else
        for (int64_t j = 0; j < n; j++) a[j] = max_nan(a[j], x[j]);
}

static void min_f64(void *acc, const void *xv, int64_t n, bool reduced)
{
    double *a = acc;
    const double *x = xv;
    if (reduced) {
        double m = a[0];
        for (int64_t j = 0; j < n; j++) m = min_nan(m, x[j]);
        a[0] = m;
    } else
        for (int64_t j = 0; j < n; j++) a[j] = min_nan(a[j], x[j]);
}

/* integer sums wrap (in unsigned arithmetic: signed overflow is undefined) */
static void sum_i64(void *acc, const void *xv, int64_t n, bool reduced)
{
    int64_t *a = acc;
    const int64_t *x = xv;
    if (reduced) {
        uint64_t s = (uint64_t)a[0];
        for (int64_t j = 0; j < n; j++) s += (uint64_t)x[j];
        a[0] = (int64_t)s;
    } else
        for (int64_t j = 0; j < n; j++) a[j] = (int64_t)((uint64_t)a[j] + (uint64_t)x[j]);
}

static void max_i64(void *acc, const void *xv, int64_t n, bool reduced)
{
    int64_t *a = acc;
    const int64_t *x = xv;
    if (reduced) {
        int64_t m = a[0];
        for (int64_t j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
        a[0] = m;
    } else
        for (int64_t j = 0; j < n; j++) a[j] = x[j] > a[j] ? x[j] : a[j];
}

static void min_i64(void *acc, const void *xv, int64_t n, bool reduced)
{
    int64_t *a = acc;
    const int64_t *x = xv;
    if (reduced) {
        int64_t m = a[0];
        for (int64_t j = 0; j < n; j++) m = x[j] < m ? x[j] : m;
        a[0] = m;
    } else
        for (int64_t j = 0; j < n; j++) a[j] = x[j] < a[j] ? x[j] : a[j];
}

enum red_op { OP_SUM, OP_MEAN, OP_MAX, OP_MIN };

static kiln_status run_reduce(const kiln_node *n, kiln_value *v, enum red_op op)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    bool red[KILN_MAX_RANK], noop = false;
    kiln_status st = reduce_axes(n, v, x->shape.rank, red, &noop);
    if (st != KILN_OK) return st;
    int64_t nin = kiln_shape_numel(&x->shape), nout = kiln_shape_numel(&y->shape);
    if (noop) { /* ONNX: empty axes with noop_with_empty_axes=1 is Identity */
        memcpy(y->data, x->data, kiln_value_bytes(x));
        return KILN_OK;
    }
    int64_t count = 1; /* elements folded into each output */
    for (int i = 0; i < x->shape.rank; i++)
        if (red[i]) count *= x->shape.d[i];
    red_plan p;
    plan_build(&x->shape, red, &p);
    bool fl = is_float(x->dtype);
    size_t esz = fl ? sizeof(double) : sizeof(int64_t);
    void *xin = malloc((size_t)(nin > 0 ? nin : 1) * esz), *acc = malloc((size_t)(nout > 0 ? nout : 1) * esz);
    if (!xin || !acc) {
        free(xin);
        free(acc);
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory reducing '%s'", x->name);
    }
    red_inner inner;
    if (fl) {
        double *a = acc, init = op == OP_MAX ? -INFINITY : op == OP_MIN ? INFINITY : 0.0;
        for (int64_t i = 0; i < nout; i++) a[i] = init;
        inner = op == OP_MAX ? max_f64 : op == OP_MIN ? min_f64 : sum_f64;
        kiln_widen_f64(x->dtype, x->data, xin, nin);
    } else {
        int64_t *a = acc, init = op == OP_MAX ? int_lowest(x->dtype) : op == OP_MIN ? int_highest(x->dtype) : 0;
        for (int64_t i = 0; i < nout; i++) a[i] = init;
        inner = op == OP_MAX ? max_i64 : op == OP_MIN ? min_i64 : sum_i64;
        load_i64(x->dtype, x->data, nin, xin);
    }
    if (nin > 0) plan_walk(&p, xin, esz, acc, esz, inner);
    if (fl) {
        double *a = acc;
        /* the mean of an empty set is undefined in ONNX; 0/0 gives NaN */
        if (op == OP_MEAN)
            for (int64_t i = 0; i < nout; i++) a[i] = count ? a[i] / (double)count : NAN;
        kiln_narrow_f64(y->dtype, a, y->data, nout);
    } else {
        int64_t *a = acc;
        /* integer mean truncates toward zero (numpy mean cast back to int) */
        if (op == OP_MEAN)
            for (int64_t i = 0; i < nout; i++) a[i] = count ? a[i] / count : 0;
        store_i64(y->dtype, y->data, a, nout);
    }
    free(xin);
    free(acc);
    return KILN_OK;
}

kiln_status kiln_ref_ReduceMean(const kiln_node *n, kiln_value *v) { return run_reduce(n, v, OP_MEAN); }
kiln_status kiln_ref_ReduceSum(const kiln_node *n, kiln_value *v) { return run_reduce(n, v, OP_SUM); }
kiln_status kiln_ref_ReduceMax(const kiln_node *n, kiln_value *v) { return run_reduce(n, v, OP_MAX); }
kiln_status kiln_ref_ReduceMin(const kiln_node *n, kiln_value *v) { return run_reduce(n, v, OP_MIN); }

/* ---- ArgMax-13 */

/* NaN counts as larger than any number (numpy argmax returns the first NaN) */
static inline bool gt_f64(double a, double b) { return isnan(a) ? !isnan(b) : !isnan(b) && a > b; }

static void argmax_f64(const double *x, int64_t outer, int64_t len, int64_t inner, bool last, int64_t *y)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const double *p = x + o * len * inner + i;
            int64_t best = 0;
            for (int64_t j = 1; j < len; j++)
                if (last ? !gt_f64(p[best * inner], p[j * inner]) : gt_f64(p[j * inner], p[best * inner])) best = j;
            y[o * inner + i] = best;
        }
}

static void argmax_i64(const int64_t *x, int64_t outer, int64_t len, int64_t inner, bool last, int64_t *y)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t *p = x + o * len * inner + i;
            int64_t best = 0;
            for (int64_t j = 1; j < len; j++)
                if (last ? p[j * inner] >= p[best * inner] : p[j * inner] > p[best * inner]) best = j;
            y[o * inner + i] = best;
        }
}

kiln_status kiln_ref_ArgMax(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    int axis;
    kiln_status st = kiln_axis(n->params.argmax.axis, x->shape.rank, &axis);
    if (st != KILN_OK) return st;
    bool last = n->params.argmax.select_last_index;
    int64_t outer = 1, len = x->shape.d[axis], inner = 1, nin = kiln_shape_numel(&x->shape);
    for (int i = 0; i < axis; i++) outer *= x->shape.d[i];
    for (int i = axis + 1; i < x->shape.rank; i++) inner *= x->shape.d[i];
    if (len == 0) {
        if (outer * inner == 0) return KILN_OK; /* no output elements either */
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "input '%s' has 0 elements along axis %d: ArgMax of nothing",
                         x->name, axis);
    }
    bool fl = is_float(x->dtype);
    void *keys = malloc((size_t)(nin > 0 ? nin : 1) * 8);
    if (!keys) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory in ArgMax of '%s'", x->name);
    if (fl) {
        kiln_widen_f64(x->dtype, x->data, keys, nin);
        argmax_f64(keys, outer, len, inner, last, y->data);
    } else {
        load_i64(x->dtype, x->data, nin, keys);
        argmax_i64(keys, outer, len, inner, last, y->data);
    }
    free(keys);
    return KILN_OK;
}
