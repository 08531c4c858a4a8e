/* Shape rules of the normalizations over channels and spatial dims (LRN,
 * InstanceNormalization, GroupNormalization) and of CumSum; kernels in
 * src/ref/norm.c and src/cuda/norm.cu. Each output has its input's dtype and
 * shape, symbols included; what is checked is what the kernels rely on:
 * the layout [N, C, D1, ...], parameters of C (or num_groups) elements, the
 * attributes' ranges. */
#include "ir/ops.h"

#include <inttypes.h>
#include <string.h>

static bool is_float(kiln_dtype t) { return t == KILN_F32 || t == KILN_F64 || t == KILN_F16 || t == KILN_BF16; }

static kiln_status need_float(const kiln_node *n, const kiln_value *x)
{
    if (is_float(x->dtype)) return KILN_OK;
    return kiln_fail(KILN_ERR_UNSUPPORTED, "%s does not take input '%s' of dtype %s (f32, f16, bf16, f64)", n->op_type,
                     x->name, kiln_dtype_name(x->dtype));
}

static void set_like(const kiln_node *n, kiln_value *v, const kiln_value *x)
{
    kiln_value *y = kiln_out(n, v, 0);
    if (!y) return;
    y->dtype = x->dtype;
    y->shape = x->shape;
}

/* X of rank >= min_rank (when known). */
static kiln_status need_rank(const kiln_node *n, const kiln_value *x, int min_rank)
{
    if (x->shape.rank < 0 || x->shape.rank >= min_rank) return KILN_OK;
    return kiln_fail(KILN_ERR_SHAPE, "%s input '%s' has rank %d; it must be [N, C, ...] (rank %d or more)", n->op_type,
                     x->name, x->shape.rank, min_rank);
}

/* A 1-D parameter p of `want` elements (want < 0: unknown) and X's dtype. */
static kiln_status check_param(const kiln_value *p, const kiln_value *x, int64_t want, const char *what)
{
    if (p->dtype != x->dtype)
        return kiln_fail(KILN_ERR_SHAPE, "%s '%s' (%s) must have the dtype of '%s' (%s)", what, p->name,
                         kiln_dtype_name(p->dtype), x->name, kiln_dtype_name(x->dtype));
    if (p->shape.rank < 0) return KILN_OK;
    if (p->shape.rank != 1)
        return kiln_fail(KILN_ERR_SHAPE, "%s '%s' must be 1-D, has rank %d", what, p->name, p->shape.rank);
    if (want >= 0 && p->shape.d[0] >= 0 && p->shape.d[0] != want)
        return kiln_fail(KILN_ERR_SHAPE, "%s '%s' has %" PRId64 " elements, must have %" PRId64, what, p->name,
                         p->shape.d[0], want);
    return KILN_OK;
}

/* LRN-1/13: across the channels of [N, C, D1, ...]; size (required, >= 1)
 * is checked by the parser. */
kiln_status kiln_shape_LRN(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0);
    kiln_status st = need_float(n, x);
    if (st == KILN_OK) st = need_rank(n, x, 2);
    if (st != KILN_OK) return st;
    set_like(n, v, x);
    return KILN_OK;
}

/* InstanceNormalization-6/22: scale and B are [C]. */
kiln_status kiln_shape_InstanceNormalization(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *s = kiln_in(n, v, 1), *b = kiln_in(n, v, 2);
    kiln_status st = need_float(n, x);
    if (st == KILN_OK) st = need_rank(n, x, 2);
    if (st != KILN_OK) return st;
    int64_t c = x->shape.rank >= 2 && x->shape.d[1] >= 0 ? x->shape.d[1] : -1;
    if ((st = check_param(s, x, c, "scale")) != KILN_OK || (st = check_param(b, x, c, "B")) != KILN_OK) return st;
    set_like(n, v, x);
    return KILN_OK;
}

/* GroupNormalization: num_groups (required, >= 1: the parser's) divides C.
 * Version 18 has scale and bias of [num_groups] (one per group), version 21
 * of [C] (one per channel), and a stash_type for the statistics (a float
 * type, f32 by default: the parser's; the ref computes them in f64 whatever
 * it says). */
kiln_status kiln_shape_GroupNormalization(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *s = kiln_in(n, v, 1), *b = kiln_in(n, v, 2);
    kiln_status st = need_float(n, x);
    if (st == KILN_OK) st = need_rank(n, x, 2);
    if (st != KILN_OK) return st;
    const int64_t groups = n->params.norm.num_groups;
    int64_t c = x->shape.rank >= 2 && x->shape.d[1] >= 0 ? x->shape.d[1] : -1;
    if (c >= 0 && c % groups)
        return kiln_fail(KILN_ERR_SHAPE, "GroupNormalization: %" PRId64 " channels of '%s' do not split into %" PRId64
                         " groups", c, x->name, groups);
    int64_t want = n->version >= 21 ? c : groups;
    if ((st = check_param(s, x, want, "scale")) != KILN_OK || (st = check_param(b, x, want, "bias")) != KILN_OK)
        return st;
    set_like(n, v, x);
    return KILN_OK;
}

/* CumSum-11/14: axis is a scalar (or one-element 1-D) i32/i64 input in
 * [-rank, rank). */
kiln_status kiln_shape_CumSum(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *ax = kiln_in(n, v, 1);
    kiln_dtype t = x->dtype;
    if (!is_float(t) && t != KILN_I32 && t != KILN_I64)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "CumSum does not take input '%s' of dtype %s", x->name,
                         kiln_dtype_name(t));
    if (ax->dtype != KILN_I32 && ax->dtype != KILN_I64)
        return kiln_fail(KILN_ERR_SHAPE, "CumSum axis '%s' must be i32 or i64, is %s", ax->name,
                         kiln_dtype_name(ax->dtype));
    if (ax->shape.rank > 1 || (ax->shape.rank == 1 && ax->shape.d[0] >= 0 && ax->shape.d[0] != 1))
        return kiln_fail(KILN_ERR_SHAPE, "CumSum axis '%s' must be a scalar", ax->name);
    if (ax->data && x->shape.rank >= 0 && kiln_shape_numel(&ax->shape) == 1) {
        int a;
        kiln_status st = kiln_axis(kiln_load_i64(ax->dtype, ax->data, 0), x->shape.rank, &a);
        if (st != KILN_OK) return kiln_fail_prefix(st, "CumSum axis of '%s': ", x->name);
    }
    if (x->shape.rank == 0) return kiln_fail(KILN_ERR_SHAPE, "CumSum of a scalar '%s' has no axis", x->name);
    set_like(n, v, x);
    return KILN_OK;
}

/* LRN: size squares and adds per element, then the power and division. */
double kiln_flops_LRN(const kiln_node *n, const kiln_value *v)
{
    double size = (double)n->params.lrn.size;
    return kiln_flops_elementwise(n, v) * (2.0 * size + 3.0);
}

/* Two passes of statistics, then scale and shift: as LayerNormalization. */
double kiln_flops_InstanceNormalization(const kiln_node *n, const kiln_value *v)
{
    return 8.0 * kiln_flops_elementwise(n, v);
}

double kiln_flops_GroupNormalization(const kiln_node *n, const kiln_value *v)
{
    return 8.0 * kiln_flops_elementwise(n, v);
}
