/* Shape rules of the reduce family: Softmax, LogSoftmax, LayerNormalization,
 * ReduceMean/Sum/Max/Min, ArgMax, TopK. Reductions keep every dim they do
 * not reduce as it is, symbols included (ReduceMean over axis 1 of
 * [batch,C,H,W] is [batch,1,H,W]). */
#include "ir/ops.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

static bool is_float(kiln_dtype t) { return t == KILN_F32 || t == KILN_F64 || t == KILN_F16 || t == KILN_BF16; }

static bool is_int(kiln_dtype t) { return t == KILN_I32 || t == KILN_I64 || t == KILN_I8 || t == KILN_U8; }

static kiln_status need_float(const kiln_value *x)
{
    if (is_float(x->dtype)) return KILN_OK;
    return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' has dtype %s; kiln implements f32, f64, f16 and bf16 here",
                     x->name, kiln_dtype_name(x->dtype));
}

/* Softmax-13 and LogSoftmax-13: one axis (default -1), output like input. */
static kiln_status shape_softmax_like(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    kiln_status st = need_float(x);
    if (st != KILN_OK) return st;
    if (x->shape.rank >= 0) {
        int axis;
        st = kiln_axis(n->params.softmax.axis, x->shape.rank, &axis);
        if (st != KILN_OK) return kiln_fail_prefix(st, "input '%s': ", x->name);
    }
    if (y) {
        y->dtype = x->dtype;
        y->shape = x->shape;
    }
    return KILN_OK;
}

kiln_status kiln_shape_Softmax(const kiln_node *n, kiln_value *v) { return shape_softmax_like(n, v); }

kiln_status kiln_shape_LogSoftmax(const kiln_node *n, kiln_value *v) { return shape_softmax_like(n, v); }

/* Scale and B must broadcast (numpy, right-aligned) to X without changing X. */
static kiln_status check_unidirectional(const kiln_value *p, const kiln_value *x)
{
    if (!p || p->shape.rank < 0 || x->shape.rank < 0) return KILN_OK;
    if (p->shape.rank > x->shape.rank)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has rank %d, more than the rank %d of '%s'", p->name,
                         p->shape.rank, x->shape.rank, x->name);
    for (int i = 0; i < p->shape.rank; i++) {
        int64_t dp = p->shape.d[i], dx = x->shape.d[i + x->shape.rank - p->shape.rank];
        if (dp >= 0 && dx >= 0 && dp != 1 && dp != dx)
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' dim %d is %" PRId64 ", cannot broadcast to %" PRId64
                             " of '%s'", p->name, i, dp, dx, x->name);
    }
    return KILN_OK;
}

kiln_status kiln_shape_LayerNormalization(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0);
    kiln_status st = need_float(x);
    if (st != KILN_OK) return st;
    /* stash_type (checked by the parser): Mean and InvStdDev's dtype */
    kiln_dtype stash = n->params.layernorm.stash_type;
    for (int i = 1; i <= 2; i++) {
        kiln_value *p = kiln_in(n, v, i);
        if (p && p->dtype != x->dtype)
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' is %s, expected %s like '%s'", p->name,
                             kiln_dtype_name(p->dtype), kiln_dtype_name(x->dtype), x->name);
        if ((st = check_unidirectional(p, x)) != KILN_OK) return st;
    }
    int axis = 0;
    if (x->shape.rank >= 0) {
        st = kiln_axis(n->params.layernorm.axis, x->shape.rank, &axis);
        if (st != KILN_OK) return kiln_fail_prefix(st, "input '%s': ", x->name);
    }
    kiln_value *y = kiln_out(n, v, 0);
    if (y) {
        y->dtype = x->dtype;
        y->shape = x->shape;
    }
    /* Mean and InvStdDev: X's dims before axis, 1 for the normalized ones */
    for (int k = 1; k <= 2; k++) {
        kiln_value *o = kiln_out(n, v, k);
        if (!o) continue;
        o->dtype = stash;
        o->shape = x->shape;
        for (int i = axis; i < x->shape.rank; i++) o->shape.d[i] = 1;
    }
    return KILN_OK;
}

/* ---- ReduceMean / ReduceSum / ReduceMax / ReduceMin */

enum reduce_kind { RED_MEAN, RED_SUM, RED_MINMAX };

static kiln_status reduce_dtype_ok(const kiln_value *x, enum reduce_kind kind, int version)
{
    kiln_dtype t = x->dtype;
    bool ok = is_float(t) || t == KILN_I32 || t == KILN_I64;
    /* ReduceMax/Min take int8/uint8 (since 12) and bool (since 20) */
    if (kind == RED_MINMAX && (t == KILN_I8 || t == KILN_U8)) ok = true;
    if (kind == RED_MINMAX && t == KILN_BOOL && version >= 20) ok = true;
    if (ok) return KILN_OK;
    return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' has dtype %s, which kiln does not reduce", x->name,
                     kiln_dtype_name(t));
}

static kiln_status shape_reduce(const kiln_node *n, kiln_value *v, enum reduce_kind kind)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    kiln_status st = reduce_dtype_ok(x, kind, n->version);
    if (st != KILN_OK) return st;
    const kiln_reduce_params *p = &n->params.reduce;
    bool keepdims = p->keepdims;
    bool noop = p->noop_with_empty_axes;
    int64_t axes[KILN_MAX_RANK];
    int n_axes = 0;
    bool axes_known = true;
    int r = x->shape.rank;
    /* ReduceSum-13 and every Reduce* since 18 take axes as optional input 1;
     * ReduceMean/Max/Min-13 take the `axes` attribute */
    if (p->axes_from_input) {
        kiln_value *a = kiln_in(n, v, 1);
        if (a && a->dtype != KILN_I64)
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' (axes) is %s, expected i64", a->name, kiln_dtype_name(a->dtype));
        if (a && a->data) {
            if ((st = kiln_value_ints(a, axes, KILN_MAX_RANK, &n_axes)) != KILN_OK) return st;
        } else if (a) {
            /* axes computed at run time: an empty axes tensor means "all" or
             * "none", so only its known length tells us anything */
            axes_known = false;
            if (a->shape.rank == 1 && a->shape.d[0] == 0) axes_known = true; /* known to be empty */
            if (a->shape.rank == 1 && a->shape.d[0] > 0) n_axes = (int)(a->shape.d[0] > KILN_MAX_RANK ? KILN_MAX_RANK : a->shape.d[0]);
        }
    } else {
        n_axes = p->n_axes;
        for (int i = 0; i < n_axes; i++) axes[i] = p->axes[i];
    }
    if (!y) return KILN_OK;
    y->dtype = x->dtype;
    if (axes_known && n_axes == 0 && noop) { /* ONNX: empty axes with noop_with_empty_axes is Identity */
        y->shape = x->shape;
        return KILN_OK;
    }
    if (r < 0) {
        y->shape.rank = -1;
        if (axes_known && n_axes == 0 && !keepdims) y->shape.rank = 0; /* all reduced */
        return KILN_OK;
    }
    if (!axes_known) {
        /* which dims go is unknown: keepdims keeps the rank, a known axes
         * length (unique axes) gives it otherwise */
        y->shape.rank = keepdims ? r : (n_axes > 0 && n_axes <= r ? r - n_axes : -1);
        for (int i = 0; i < y->shape.rank; i++) y->shape.d[i] = KILN_DIM_UNKNOWN;
        return KILN_OK;
    }
    bool red[KILN_MAX_RANK] = {false};
    for (int i = 0; i < n_axes; i++) {
        int ax;
        if ((st = kiln_axis(axes[i], r, &ax)) != KILN_OK) return kiln_fail_prefix(st, "axes of '%s': ", x->name);
        if (red[ax]) return kiln_fail(KILN_ERR_SHAPE, "axes of '%s' name axis %d twice", x->name, ax);
        red[ax] = true;
    }
    if (n_axes == 0)
        for (int i = 0; i < r; i++) red[i] = true; /* empty axes: reduce all */
    kiln_shape s = {.rank = 0};
    for (int i = 0; i < r; i++) {
        if (!red[i])
            s.d[s.rank++] = x->shape.d[i];
        else if (keepdims)
            s.d[s.rank++] = 1;
    }
    y->shape = s;
    return KILN_OK;
}

kiln_status kiln_shape_ReduceMean(const kiln_node *n, kiln_value *v) { return shape_reduce(n, v, RED_MEAN); }
kiln_status kiln_shape_ReduceSum(const kiln_node *n, kiln_value *v) { return shape_reduce(n, v, RED_SUM); }
kiln_status kiln_shape_ReduceMax(const kiln_node *n, kiln_value *v) { return shape_reduce(n, v, RED_MINMAX); }
kiln_status kiln_shape_ReduceMin(const kiln_node *n, kiln_value *v) { return shape_reduce(n, v, RED_MINMAX); }

/* ---- ArgMax-13: one axis, i64 indices */
kiln_status kiln_shape_ArgMax(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    if (!is_float(x->dtype) && !is_int(x->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' has dtype %s, which ArgMax does not take in kiln", x->name,
                         kiln_dtype_name(x->dtype));
    bool keepdims = n->params.argmax.keepdims;
    if (!y) return KILN_OK;
    y->dtype = KILN_I64;
    if (x->shape.rank < 0) {
        y->shape.rank = -1;
        return KILN_OK;
    }
    int axis;
    kiln_status st = kiln_axis(n->params.argmax.axis, x->shape.rank, &axis);
    if (st != KILN_OK) return kiln_fail_prefix(st, "input '%s': ", x->name);
    if (x->shape.d[axis] == 0)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has 0 elements along axis %d: ArgMax of nothing", x->name, axis);
    kiln_shape s = {.rank = 0};
    for (int i = 0; i < x->shape.rank; i++) {
        if (i != axis)
            s.d[s.rank++] = x->shape.d[i];
        else if (keepdims)
            s.d[s.rank++] = 1;
    }
    y->shape = s;
    return KILN_OK;
}

/* ---- TopK-11/24: K is a 1-D tensor of one int64 */
kiln_status kiln_shape_TopK(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *kv = kiln_in(n, v, 1);
    if (!is_float(x->dtype) && !is_int(x->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' has dtype %s, which TopK does not take in kiln", x->name,
                         kiln_dtype_name(x->dtype));
    if (!kv) return kiln_fail(KILN_ERR_SHAPE, "TopK needs input K");
    if (kv->dtype != KILN_I64)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' (K) is %s, expected i64", kv->name, kiln_dtype_name(kv->dtype));
    if (kv->shape.rank > 1 || (kv->shape.rank == 1 && kv->shape.d[0] >= 0 && kv->shape.d[0] != 1))
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' (K) must hold one value", kv->name);
    int64_t k = KILN_DIM_UNKNOWN;
    if (kv->data) {
        int64_t kk[1];
        int cnt;
        kiln_status st = kiln_value_ints(kv, kk, 1, &cnt);
        if (st != KILN_OK) return st;
        if (cnt != 1 || kk[0] < 0) return kiln_fail(KILN_ERR_SHAPE, "input '%s' (K) must be one value >= 0", kv->name);
        k = kk[0];
    }
    kiln_shape s = x->shape;
    if (s.rank >= 0) {
        int axis;
        kiln_status st = kiln_axis(n->params.topk.axis, s.rank, &axis);
        if (st != KILN_OK) return kiln_fail_prefix(st, "input '%s': ", x->name);
        if (k >= 0 && s.d[axis] >= 0 && k > s.d[axis])
            return kiln_fail(KILN_ERR_SHAPE, "K = %" PRId64 " is larger than dim %d (%" PRId64 ") of '%s'", k, axis,
                             s.d[axis], x->name);
        s.d[axis] = k; /* KILN_DIM_UNKNOWN when K is computed at run time */
    }
    kiln_value *vals = kiln_out(n, v, 0), *idx = kiln_out(n, v, 1);
    if (vals) {
        vals->dtype = x->dtype;
        vals->shape = s;
    }
    if (idx) {
        idx->dtype = KILN_I64;
        idx->shape = s;
    }
    return KILN_OK;
}

/* ---- cost: per element, Softmax is max, sub, exp, sum, div; LogSoftmax
 * the same with a sub for the div; LayerNormalization is two sums, a
 * sub, a square, the normalizing mul, and the scale and bias. */
double kiln_flops_Softmax(const kiln_node *n, const kiln_value *v)
{
    const kiln_value *x = kiln_in(n, (kiln_value *)v, 0);
    int64_t c = kiln_shape_numel(&x->shape);
    return c > 0 ? 5.0 * (double)c : 0;
}

double kiln_flops_LogSoftmax(const kiln_node *n, const kiln_value *v) { return kiln_flops_Softmax(n, v); }

double kiln_flops_LayerNormalization(const kiln_node *n, const kiln_value *v)
{
    const kiln_value *x = kiln_in(n, (kiln_value *)v, 0);
    int64_t c = kiln_shape_numel(&x->shape);
    return c > 0 ? 8.0 * (double)c : 0;
}
