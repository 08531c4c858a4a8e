/* Shape rules of the index family: ops that pick, place or contract
 * elements by index: Einsum, GatherND, ScatterND, NonZero, Trilu,
 * DepthToSpace, SpaceToDepth, OneHot (kernels in src/ref/index.c,
 * src/ref/einsum.c, src/cuda/index.cu, src/cuda/einsum.cu).
 *
 * Symbolic dims pass through wherever ONNX makes the result that symbol
 * (GatherND's leading index dims, DepthToSpace's batch, OneHot's depth
 * from a symbolic shape value); NonZero's count depends on the data and is
 * known only when the data is. */
#include "ir/shape_index.h"
#include "ir/shape_tensor.h"
#include "ir/ops.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* ---- small helpers (set_out, unknown_rank, unknown_dims: ir/shape_tensor.h) */

static kiln_status need(const kiln_node *n, kiln_value *v, int i, kiln_value **out)
{
    *out = kiln_in(n, v, i);
    if (!*out) return kiln_fail(KILN_ERR_SHAPE, "%s needs input %d", n->op_type, i);
    return KILN_OK;
}

static kiln_status check_index_dtype(const kiln_value *x)
{
    if (x->dtype != KILN_I64 && x->dtype != KILN_I32)
        return kiln_fail(KILN_ERR_SHAPE, "indices '%s' must be int64 (or int32), is %s", x->name,
                         kiln_dtype_name(x->dtype));
    return KILN_OK;
}

static bool numeric(kiln_dtype t) { return t != KILN_BOOL && t != KILN_F8E4M3 && kiln_dtype_valid(t); }

/* d * k (k > 0) keeping a symbol only when k is 1 */
static int64_t dim_mul(int64_t d, int64_t k)
{
    if (k == 1 || d == 0) return d;
    if (!kiln_dim_known(d)) return KILN_DIM_UNKNOWN;
    int64_t r;
    return __builtin_mul_overflow(d, k, &r) ? KILN_DIM_UNKNOWN : r;
}

/* ---------------------------------------------------------------- Einsum */

/* the extent of one dim seen along two axes of one operand (a diagonal):
 * must be equal */
static bool merge_strict(int64_t *acc, int64_t d)
{
    int64_t a = *acc;
    if (a == d) return true;
    if (kiln_dim_known(a) && kiln_dim_known(d)) return false;
    if (kiln_dim_known(d)) *acc = d;
    else if (!kiln_dim_known(a)) *acc = KILN_DIM_UNKNOWN; /* two different symbols, or unknown */
    return true;
}

/* across operands: numpy broadcasting, 1 stretches */
static bool merge_bcast(int64_t *acc, int64_t d)
{
    int64_t a = *acc;
    if (a == d || d == 1) return true;
    if (a == 1) {
        *acc = d;
        return true;
    }
    if (kiln_dim_known(a) && kiln_dim_known(d)) return false;
    if (kiln_dim_known(d)) *acc = d;
    else if (!kiln_dim_known(a)) *acc = KILN_DIM_UNKNOWN;
    return true;
}

kiln_status kiln_einsum_plan(const kiln_node *n, const kiln_value *v, kiln_einsum *e)
{
    int n_in = n->n_inputs;
    if (n_in < 1) return kiln_fail(KILN_ERR_SHAPE, "Einsum needs at least one input");
    if (n_in > KILN_EINSUM_MAX_IN)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Einsum of %d operands (kiln takes at most %d)", n_in, KILN_EINSUM_MAX_IN);
    const char *eq = n->params.einsum.equation;
    kiln_einsum_term in[KILN_EINSUM_MAX_IN], out;
    bool explicit_out;
    kiln_status st = kiln_einsum_terms(eq, n_in, in, &out, &explicit_out);
    if (st != KILN_OK) return st;
    memset(e, 0, sizeof *e);
    e->n_in = n_in;
    int E = 0, ell_n[KILN_EINSUM_MAX_IN];
    const kiln_value *x[KILN_EINSUM_MAX_IN];
    for (int i = 0; i < n_in; i++) {
        x[i] = kiln_in(n, (kiln_value *)v, i);
        if (!x[i]) return kiln_fail(KILN_ERR_SHAPE, "Einsum input %d is omitted", i);
        int r = x[i]->shape.rank;
        if (r < 0) return kiln_fail(KILN_ERR_INTERNAL, "Einsum input '%s' has no known rank", x[i]->name);
        if (in[i].ell < 0 ? in[i].n != r : in[i].n > r)
            return kiln_fail(KILN_ERR_SHAPE, "equation '%s' gives input '%s' %d letters%s; it has rank %d", eq,
                             x[i]->name, in[i].n, in[i].ell >= 0 ? " and '...'" : "", r);
        ell_n[i] = r - in[i].n;
        if (ell_n[i] > E) E = ell_n[i];
        e->rank[i] = r;
    }
    int count[128] = {0};
    for (int i = 0; i < n_in; i++)
        for (int j = 0; j < in[i].n; j++) count[(int)in[i].lab[j]]++;
    for (int j = 0; j < out.n; j++)
        if (!count[(int)out.lab[j]])
            return kiln_fail(KILN_ERR_SHAPE, "equation '%s' has output letter '%c' that no input has", eq, out.lab[j]);
    if (explicit_out && out.ell < 0 && E > 0)
        return kiln_fail(KILN_ERR_SHAPE, "equation '%s': the inputs' '...' stands for %d dims but the output has no '...'",
                         eq, E);
    int out_ell = out.ell >= 0 ? E : 0;
    e->out_rank = out.n + out_ell;
    if (e->out_rank > KILN_MAX_RANK)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Einsum output of rank %d (kiln's maximum is %d)", e->out_rank, KILN_MAX_RANK);
    int dim_of[128], ell_dim[KILN_MAX_RANK], nd = 0;
    for (int c = 0; c < 128; c++) dim_of[c] = -1;
    for (int p = 0; p <= out.n; p++) {
        if (p == out.ell)
            for (int j = 0; j < E; j++) ell_dim[j] = nd++;
        if (p < out.n) dim_of[(int)out.lab[p]] = nd++;
    }
    for (int i = 0; i < n_in; i++)
        for (int j = 0; j < in[i].n; j++)
            if (dim_of[(int)in[i].lab[j]] < 0) {
                if (nd >= KILN_EINSUM_MAX_DIMS)
                    return kiln_fail(KILN_ERR_UNSUPPORTED, "equation '%s' has more than %d distinct dims", eq,
                                     KILN_EINSUM_MAX_DIMS);
                dim_of[(int)in[i].lab[j]] = nd++;
            }
    if (nd > KILN_EINSUM_MAX_DIMS)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "equation '%s' has more than %d distinct dims", eq, KILN_EINSUM_MAX_DIMS);
    e->n_dims = nd;
    bool seen[KILN_EINSUM_MAX_DIMS] = {false};
    for (int i = 0; i < n_in; i++) {
        int a = 0;
        for (int p = 0; p <= in[i].n; p++) {
            if (p == in[i].ell)
                for (int j = 0; j < ell_n[i]; j++) e->map[i][a++] = (signed char)ell_dim[E - ell_n[i] + j];
            if (p < in[i].n) e->map[i][a++] = (signed char)dim_of[(int)in[i].lab[p]];
        }
        /* this operand's extent of each dim (a diagonal's axes must agree) */
        int64_t te[KILN_EINSUM_MAX_DIMS];
        bool has[KILN_EINSUM_MAX_DIMS] = {false};
        for (a = 0; a < e->rank[i]; a++) {
            int d = e->map[i][a];
            int64_t xd = x[i]->shape.d[a];
            if (!has[d]) {
                te[d] = xd;
                has[d] = true;
            } else if (!merge_strict(&te[d], xd)) {
                return kiln_fail(KILN_ERR_SHAPE, "equation '%s': input '%s' has a repeated letter over dims %" PRId64
                                 " and %" PRId64, eq, x[i]->name, te[d], xd);
            }
        }
        for (int d = 0; d < nd; d++) {
            if (!has[d]) continue;
            if (!seen[d]) {
                e->dim[d] = te[d];
                seen[d] = true;
            } else if (!merge_bcast(&e->dim[d], te[d])) {
                return kiln_fail(KILN_ERR_SHAPE, "equation '%s': input '%s' has %" PRId64 " along a dim another input has as %" PRId64,
                                 eq, x[i]->name, te[d], e->dim[d]);
            }
        }
    }
    for (int d = 0; d < nd; d++)
        if (!seen[d]) e->dim[d] = 1; /* a '...' dim no operand spans: cannot happen, kept safe */
    return KILN_OK;
}

kiln_status kiln_shape_Einsum(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x0 = kiln_in(n, v, 0);
    if (!x0) return kiln_fail(KILN_ERR_SHAPE, "Einsum needs at least one input");
    bool ranks = true;
    for (int i = 0; i < n->n_inputs; i++) {
        const kiln_value *x = kiln_in(n, v, i);
        if (!x) return kiln_fail(KILN_ERR_SHAPE, "Einsum input %d is omitted", i);
        if (x->dtype != x0->dtype)
            return kiln_fail(KILN_ERR_SHAPE, "inputs '%s' (%s) and '%s' (%s) must have the same dtype", x->name,
                             kiln_dtype_name(x->dtype), x0->name, kiln_dtype_name(x0->dtype));
        ranks &= x->shape.rank >= 0;
    }
    if (!numeric(x0->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Einsum does not take input '%s' of dtype %s", x0->name,
                         kiln_dtype_name(x0->dtype));
    if (n->n_inputs > KILN_EINSUM_MAX_IN)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Einsum of %d operands (kiln takes at most %d)", n->n_inputs,
                         KILN_EINSUM_MAX_IN);
    if (!ranks) {
        /* the output's rank is the equation's when no '...' reaches it */
        kiln_einsum_term in[KILN_EINSUM_MAX_IN], out;
        bool explicit_out;
        kiln_status st = kiln_einsum_terms(n->params.einsum.equation, n->n_inputs, in, &out, &explicit_out);
        if (st != KILN_OK) return st;
        kiln_shape o = out.ell < 0 && out.n <= KILN_MAX_RANK ? unknown_dims(out.n) : unknown_rank();
        return set_out(n, v, 0, x0->dtype, &o);
    }
    kiln_einsum e;
    kiln_status st = kiln_einsum_plan(n, v, &e);
    if (st != KILN_OK) return st;
    kiln_shape o = {.rank = e.out_rank};
    for (int d = 0; d < e.out_rank; d++) o.d[d] = e.dim[d];
    return set_out(n, v, 0, x0->dtype, &o);
}

/* One multiply per operand after the first and one add, per point of the
 * whole index space (output dims x summed dims): 2 x the contraction for
 * two operands. */
double kiln_flops_Einsum(const kiln_node *n, const kiln_value *v)
{
    kiln_einsum e;
    if (kiln_einsum_plan(n, v, &e) != KILN_OK) {
        kiln_clear_error();
        return 0;
    }
    double points = 1;
    for (int d = 0; d < e.n_dims; d++) points *= e.dim[d] > 0 ? (double)e.dim[d] : 0;
    return points * (e.n_in > 1 ? e.n_in : 1);
}

/* ---------------------------------------------------------------- GatherND */

/* GatherND: out = indices.shape[:-1] + data.shape[b + k:] with k the
 * indices' last dim and b batch_dims (the leading dims both share) */
kiln_status kiln_shape_GatherND(const kiln_node *n, kiln_value *v)
{
    kiln_value *x, *ix;
    kiln_status st = need(n, v, 0, &x);
    if (st == KILN_OK) st = need(n, v, 1, &ix);
    if (st == KILN_OK) st = check_index_dtype(ix);
    if (st != KILN_OK) return st;
    int64_t b = n->params.gathernd.batch_dims; /* 0 before GatherND-12 */
    int r = x->shape.rank, q = ix->shape.rank;
    if (r == 0 || q == 0)
        return kiln_fail(KILN_ERR_SHAPE, "GatherND needs data and indices of rank >= 1 ('%s' rank %d, '%s' rank %d)",
                         x->name, r, ix->name, q);
    if (r < 0 || q < 0 || !kiln_dim_known(ix->shape.d[q - 1])) {
        kiln_shape o = unknown_rank();
        return set_out(n, v, 0, x->dtype, &o);
    }
    if (r < 1 || q < 1)
        return kiln_fail(KILN_ERR_SHAPE, "GatherND needs data and indices of rank >= 1 ('%s' rank %d, '%s' rank %d)",
                         x->name, r, ix->name, q);
    if (b < 0 || b >= q || b >= r)
        return kiln_fail(KILN_ERR_SHAPE, "batch_dims %" PRId64 " must be below the ranks of '%s' (%d) and '%s' (%d)", b,
                         x->name, r, ix->name, q);
    int64_t k = ix->shape.d[q - 1];
    if (k < 1 || k > r - b)
        return kiln_fail(KILN_ERR_SHAPE, "indices '%s' last dim is %" PRId64 "; it must be in [1, %" PRId64 "] for data '%s' of rank %d",
                         ix->name, k, r - b, x->name, r);
    int ro = (int)(q - 1 + r - k - b);
    if (ro > KILN_MAX_RANK)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "GatherND output rank %d exceeds kiln's maximum %d", ro, KILN_MAX_RANK);
    kiln_shape o = {.rank = ro};
    int p = 0;
    for (int t = 0; t < q - 1; t++) {
        int64_t d = ix->shape.d[t];
        if (t < b) {
            int64_t dx = x->shape.d[t];
            if (kiln_dim_known(d) && kiln_dim_known(dx) && d != dx)
                return kiln_fail(KILN_ERR_SHAPE, "batch dim %d is %" PRId64 " in indices '%s' but %" PRId64 " in data '%s'",
                                 t, d, ix->name, dx, x->name);
            if (!kiln_dim_known(d) && (kiln_dim_known(dx) || d == KILN_DIM_UNKNOWN)) d = dx;
        }
        o.d[p++] = d;
    }
    for (int t = (int)(b + k); t < r; t++) o.d[p++] = x->shape.d[t];
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---------------------------------------------------------------- ScatterND */

/* ScatterND: output = data's shape; updates = indices.shape[:-1] + data.shape[k:] */
kiln_status kiln_shape_ScatterND(const kiln_node *n, kiln_value *v)
{
    kiln_value *x, *ix, *up;
    kiln_status st = need(n, v, 0, &x);
    if (st == KILN_OK) st = need(n, v, 1, &ix);
    if (st == KILN_OK) st = need(n, v, 2, &up);
    if (st == KILN_OK) st = check_index_dtype(ix);
    if (st != KILN_OK) return st;
    kiln_scatter_red red = n->params.scatternd.reduction; /* none before ScatterND-16 */
    if (up->dtype != x->dtype)
        return kiln_fail(KILN_ERR_SHAPE, "updates '%s' is %s, data '%s' is %s", up->name, kiln_dtype_name(up->dtype),
                         x->name, kiln_dtype_name(x->dtype));
    if (red != KILN_RED_NONE && !numeric(x->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "ScatterND reduction on %s data '%s'", kiln_dtype_name(x->dtype), x->name);
    int r = x->shape.rank, q = ix->shape.rank;
    if (q == 0) return kiln_fail(KILN_ERR_SHAPE, "indices '%s' is 0-D; ScatterND needs rank >= 1", ix->name);
    if (r == 0) return kiln_fail(KILN_ERR_SHAPE, "data '%s' is 0-D; ScatterND needs rank >= 1", x->name);
    if (r > 0 && q > 0 && kiln_dim_known(ix->shape.d[q - 1])) {
        int64_t k = ix->shape.d[q - 1];
        if (k < 1 || k > r)
            return kiln_fail(KILN_ERR_SHAPE, "indices '%s' last dim is %" PRId64 "; data '%s' has rank %d", ix->name, k,
                             x->name, r);
        int want = (int)(q - 1 + r - k);
        if (up->shape.rank >= 0) {
            if (up->shape.rank != want)
                return kiln_fail(KILN_ERR_SHAPE, "updates '%s' has rank %d, expected %d", up->name, up->shape.rank, want);
            for (int t = 0; t < want; t++) {
                int64_t du = up->shape.d[t], dw = t < q - 1 ? ix->shape.d[t] : x->shape.d[k + t - (q - 1)];
                if (kiln_dim_known(du) && kiln_dim_known(dw) && du != dw)
                    return kiln_fail(KILN_ERR_SHAPE, "updates '%s' dim %d is %" PRId64 ", expected %" PRId64, up->name, t,
                                     du, dw);
            }
        }
    }
    return set_out(n, v, 0, x->dtype, &x->shape);
}

/* ---------------------------------------------------------------- NonZero */

/* [rank, count] int64 (a 0-D input counts as 1-D, as numpy.nonzero); the
 * count is known only when the data is */
kiln_status kiln_shape_NonZero(const kiln_node *n, kiln_value *v)
{
    kiln_value *x;
    kiln_status st = need(n, v, 0, &x);
    if (st != KILN_OK) return st;
    kiln_shape o = {.rank = 2, .d = {x->shape.rank < 0 ? KILN_DIM_UNKNOWN : x->shape.rank > 0 ? x->shape.rank : 1,
                                     KILN_DIM_UNKNOWN}};
    int64_t cnt = kiln_shape_numel(&x->shape);
    if (x->data && cnt >= 0) {
        int64_t nz = 0;
        for (int64_t i = 0; i < cnt; i++) nz += kiln_load_f64(x->dtype, x->data, i) != 0;
        o.d[1] = nz;
    } else if (cnt == 0) {
        o.d[1] = 0;
    }
    return set_out(n, v, 0, KILN_I64, &o);
}

/* ---------------------------------------------------------------- Trilu */

kiln_status kiln_shape_Trilu(const kiln_node *n, kiln_value *v)
{
    kiln_value *x;
    kiln_status st = need(n, v, 0, &x);
    if (st != KILN_OK) return st;
    if (x->shape.rank >= 0 && x->shape.rank < 2)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has rank %d; Trilu needs rank >= 2", x->name, x->shape.rank);
    const kiln_value *k = kiln_in(n, v, 1);
    if (k) {
        if (k->dtype != KILN_I64 && k->dtype != KILN_I32)
            return kiln_fail(KILN_ERR_SHAPE, "k '%s' must be int64, is %s", k->name, kiln_dtype_name(k->dtype));
        if (kiln_shape_numel(&k->shape) > 1 || k->shape.rank > 1)
            return kiln_fail(KILN_ERR_SHAPE, "k '%s' must be a scalar", k->name);
    }
    return set_out(n, v, 0, x->dtype, &x->shape);
}

/* ---------------------------------------------------------------- DepthToSpace, SpaceToDepth */

/* blocksize: required, 1 .. 2^20 (checked by the parser) */
static kiln_status block_size(const kiln_node *n, const kiln_value *x, int64_t *b)
{
    *b = n->params.block.blocksize;
    if (x->shape.rank >= 0 && x->shape.rank != 4)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has rank %d; %s needs [N,C,H,W]", x->name, x->shape.rank, n->op_type);
    return KILN_OK;
}

/* d / k, which must divide; a symbol survives k == 1 only */
static kiln_status dim_div(const kiln_node *n, const kiln_value *x, int axis, int64_t k, int64_t *out)
{
    int64_t d = x->shape.d[axis];
    if (k == 1) {
        *out = d;
        return KILN_OK;
    }
    if (!kiln_dim_known(d)) {
        *out = KILN_DIM_UNKNOWN;
        return KILN_OK;
    }
    if (d % k)
        return kiln_fail(KILN_ERR_SHAPE, "dim %d of input '%s' (%" PRId64 ") is not a multiple of %" PRId64 " for %s", axis,
                         x->name, d, k, n->op_type);
    *out = d / k;
    return KILN_OK;
}

kiln_status kiln_shape_DepthToSpace(const kiln_node *n, kiln_value *v)
{
    kiln_value *x;
    int64_t b;
    kiln_status st = need(n, v, 0, &x);
    if (st == KILN_OK) st = block_size(n, x, &b);
    if (st != KILN_OK) return st;
    if (x->shape.rank < 0) {
        kiln_shape o = unknown_dims(4);
        return set_out(n, v, 0, x->dtype, &o);
    }
    kiln_shape o = {.rank = 4};
    o.d[0] = x->shape.d[0];
    if ((st = dim_div(n, x, 1, b * b, &o.d[1])) != KILN_OK) return st;
    o.d[2] = dim_mul(x->shape.d[2], b);
    o.d[3] = dim_mul(x->shape.d[3], b);
    return set_out(n, v, 0, x->dtype, &o);
}

kiln_status kiln_shape_SpaceToDepth(const kiln_node *n, kiln_value *v)
{
    kiln_value *x;
    int64_t b;
    kiln_status st = need(n, v, 0, &x);
    if (st == KILN_OK) st = block_size(n, x, &b);
    if (st != KILN_OK) return st;
    if (x->shape.rank < 0) {
        kiln_shape o = unknown_dims(4);
        return set_out(n, v, 0, x->dtype, &o);
    }
    kiln_shape o = {.rank = 4};
    o.d[0] = x->shape.d[0];
    o.d[1] = dim_mul(x->shape.d[1], b * b);
    if ((st = dim_div(n, x, 2, b, &o.d[2])) != KILN_OK || (st = dim_div(n, x, 3, b, &o.d[3])) != KILN_OK) return st;
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---------------------------------------------------------------- OneHot */

kiln_status kiln_onehot_depth(const kiln_node *n, const kiln_value *v, int64_t *depth)
{
    const kiln_value *d = kiln_in(n, (kiln_value *)v, 1);
    if (!d || !d->data)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "OneHot depth '%s' is not known (a constant or a value computed from shapes)",
                         d ? d->name : "");
    if (kiln_shape_numel(&d->shape) != 1 || d->shape.rank > 1)
        return kiln_fail(KILN_ERR_SHAPE, "depth '%s' must be a scalar or have one element", d->name);
    if (kiln_dtype_is_float(d->dtype)) {
        double x = kiln_load_f64(d->dtype, d->data, 0);
        if (!(x > -KILN_DIM_MAX && x < KILN_DIM_MAX))
            return kiln_fail(KILN_ERR_SHAPE, "depth '%s' is %g, not a usable depth", d->name, x);
        *depth = (int64_t)x;
    } else {
        *depth = kiln_load_i64(d->dtype, d->data, 0);
    }
    if (*depth < 0) return kiln_fail(KILN_ERR_SHAPE, "depth '%s' is negative (%" PRId64 ")", d->name, *depth);
    return KILN_OK;
}

/* OneHot: indices' dims with depth inserted at axis (-1: last); the
 * output has values' dtype */
kiln_status kiln_shape_OneHot(const kiln_node *n, kiln_value *v)
{
    kiln_value *ix, *dp, *vals;
    kiln_status st = need(n, v, 0, &ix);
    if (st == KILN_OK) st = need(n, v, 1, &dp);
    if (st == KILN_OK) st = need(n, v, 2, &vals);
    if (st != KILN_OK) return st;
    if (!numeric(ix->dtype) || !numeric(dp->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "OneHot indices '%s' (%s) and depth '%s' (%s) must be numeric", ix->name,
                         kiln_dtype_name(ix->dtype), dp->name, kiln_dtype_name(dp->dtype));
    if (vals->shape.rank >= 0 && (vals->shape.rank != 1 || (kiln_dim_known(vals->shape.d[0]) && vals->shape.d[0] != 2)))
        return kiln_fail(KILN_ERR_SHAPE, "values '%s' must be [off_value, on_value]", vals->name);
    if (dp->shape.rank > 1 || (dp->shape.rank == 1 && kiln_dim_known(dp->shape.d[0]) && dp->shape.d[0] != 1))
        return kiln_fail(KILN_ERR_SHAPE, "depth '%s' must be a scalar or have one element", dp->name);
    int r = ix->shape.rank;
    if (r < 0) {
        kiln_shape o = unknown_rank();
        return set_out(n, v, 0, vals->dtype, &o);
    }
    if (r + 1 > KILN_MAX_RANK)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "OneHot output rank %d exceeds kiln's maximum %d", r + 1, KILN_MAX_RANK);
    int axis;
    if ((st = kiln_axis(n->params.axis.axis, r + 1, &axis)) != KILN_OK) return st;
    int64_t depth = KILN_DIM_UNKNOWN, sv[1];
    int cnt;
    if (dp->data) {
        if ((st = kiln_onehot_depth(n, v, &depth)) != KILN_OK) return st;
    } else if (!kiln_dtype_is_float(dp->dtype) && kiln_value_symvals(dp, sv, 1, &cnt) && cnt == 1) {
        /* a symbolic shape value: a symbol, or a number */
        depth = kiln_symval_known(sv[0]) ? sv[0] : kiln_symval_dim(sv[0]);
        if (kiln_symval_known(sv[0]) && depth < 0)
            return kiln_fail(KILN_ERR_SHAPE, "depth '%s' is negative (%" PRId64 ")", dp->name, depth);
    }
    kiln_shape o = {.rank = r + 1};
    for (int i = 0, j = 0; i <= r; i++) o.d[i] = i == axis ? depth : ix->shape.d[j++];
    return set_out(n, v, 0, vals->dtype, &o);
}
