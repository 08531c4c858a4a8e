/* Shape rules of the tensor family: ops that move bytes (Reshape, Transpose,
 * Concat, Slice, Gather, ...) and ops that make shape tensors (Shape, Size,
 * Constant, ConstantOfShape, Range).
 *
 * These rules are what folds torch's shape subgraphs
 * (Shape -> Gather -> Unsqueeze -> Concat -> Reshape): every shape-determining
 * input is read when its data is known, and symbolic dims are carried through
 * wherever ONNX semantics make the result provably that symbol
 * (Reshape [batch,512,1,1] by [0,-1] gives [batch,512]). */
#include "ir/shape_tensor.h"
#include "ir/ops.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* ---- small helpers (set_out, unknown_rank, unknown_dims: ir/shape_tensor.h) */

/* Known data of an index-like input (i32/i64, 0-D or 1-D) into out[max].
 * Longer than `max` is a rank kiln cannot represent: unsupported. */
static kiln_status read_ints(const kiln_value *x, int64_t *out, int max, int *cnt)
{
    if (x->dtype != KILN_I64 && x->dtype != KILN_I32)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' must be int64, is %s", x->name, kiln_dtype_name(x->dtype));
    if (x->shape.rank > 1)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' must be 0-D or 1-D, has rank %d", x->name, x->shape.rank);
    int64_t k = kiln_shape_numel(&x->shape);
    if (k < 0) return kiln_fail(KILN_ERR_SHAPE, "input '%s' has data but no known shape", x->name);
    if (k > max)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' has %" PRId64 " elements; kiln supports at most %d",
                         x->name, k, max);
    for (int64_t i = 0; i < k; i++) out[i] = kiln_load_i64(x->dtype, x->data, i);
    *cnt = (int)k;
    return KILN_OK;
}

/* Length of a 1-D input whose data is unknown, or -1. */
static int known_len(const kiln_value *x)
{
    if (!x || x->shape.rank != 1 || !kiln_dim_known(x->shape.d[0]) || x->shape.d[0] > KILN_MAX_RANK) return -1;
    return (int)x->shape.d[0];
}

/* Product of dims that keeps a lone symbol: [batch,1,1] -> batch, and a 0
 * anywhere makes 0 whatever the symbols are. */
static int64_t dims_product(const int64_t *d, int n)
{
    int64_t p = 1, sym = 1;
    int n_sym = 0;
    for (int i = 0; i < n; i++)
        if (d[i] == 0) return 0;
    for (int i = 0; i < n; i++) {
        if (d[i] >= 0) {
            if (__builtin_mul_overflow(p, d[i], &p)) return KILN_DIM_UNKNOWN;
        } else {
            n_sym++;
            sym = d[i];
        }
    }
    if (!n_sym) return p;
    return n_sym == 1 && p == 1 ? sym : KILN_DIM_UNKNOWN;
}

static kiln_status check_index_dtype(const kiln_value *x)
{
    if (x->dtype != KILN_I64 && x->dtype != KILN_I32)
        return kiln_fail(KILN_ERR_SHAPE, "indices '%s' must be int32 or int64, is %s", x->name,
                         kiln_dtype_name(x->dtype));
    return KILN_OK;
}

/* ---- Flatten: [d0..d(a-1)] x [da..] -> 2-D (Flatten-13: axis in [-r, r]) */

kiln_status kiln_shape_Flatten(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    int64_t axis = n->params.axis.axis;
    kiln_shape o = unknown_dims(2);
    if (x->shape.rank >= 0) {
        int r = x->shape.rank;
        if (axis < -(int64_t)r || axis > r)
            return kiln_fail(KILN_ERR_SHAPE, "axis %" PRId64 " is out of range for input '%s' of rank %d", axis,
                             x->name, r);
        int a = (int)(axis < 0 ? axis + r : axis);
        o.d[0] = dims_product(x->shape.d, a);
        o.d[1] = dims_product(x->shape.d + a, r - a);
    }
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---- Reshape (Reshape-14: 0 copies the input dim unless allowzero=1, one -1
 * is inferred from the element count) */

/* The -1 dim: input elements / the output's given dims. Dims copied by 0
 * cancel against the same input dims, and symbols given in the target
 * (symvals, from a symbolic shape value) against the same input symbols, so
 * symbols there do not matter; one remaining input symbol survives when the
 * concrete parts are equal. */
static int64_t reshape_infer_dim(const kiln_shape *in, const int64_t *t, int k, bool allowzero)
{
    bool copied[KILN_MAX_RANK] = {false}, used[KILN_MAX_RANK] = {false};
    int64_t p_out = 1, out_sym[KILN_MAX_RANK];
    int n_out_sym = 0;
    for (int i = 0; i < k; i++) {
        if (!kiln_symval_known(t[i])) {
            if (t[i] == KILN_SYMVAL_UNKNOWN) return KILN_DIM_UNKNOWN;
            out_sym[n_out_sym++] = kiln_symval_dim(t[i]);
        } else if (t[i] == 0 && !allowzero)
            copied[i] = true;
        else if (t[i] != -1 && __builtin_mul_overflow(p_out, t[i], &p_out))
            return KILN_DIM_UNKNOWN;
    }
    int64_t p_in = 1, sym = KILN_DIM_UNKNOWN;
    int n_sym = 0;
    for (int i = 0; i < in->rank; i++) {
        int64_t d = in->d[i];
        if (copied[i]) continue;
        if (d == 0) return 0; /* no elements: p_out > 0 here, as 0 and -1 never meet */
        if (d > 0) {
            if (__builtin_mul_overflow(p_in, d, &p_in)) return KILN_DIM_UNKNOWN;
            continue;
        }
        bool cancelled = false;
        for (int j = 0; j < n_out_sym && !cancelled; j++)
            if (!used[j] && kiln_dim_equal(out_sym[j], d)) cancelled = used[j] = true;
        if (cancelled) continue;
        n_sym++;
        sym = d;
    }
    for (int j = 0; j < n_out_sym; j++)
        if (!used[j]) return KILN_DIM_UNKNOWN; /* a target symbol the input does not have */
    if (n_sym == 0) return p_out <= 0 || p_in % p_out ? -2 : p_in / p_out; /* -2: contradiction */
    return n_sym == 1 && p_in == p_out ? sym : KILN_DIM_UNKNOWN;
}

kiln_status kiln_shape_Reshape(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *sh = kiln_in(n, v, 1);
    if (!sh) return kiln_fail(KILN_ERR_SHAPE, "Reshape needs input 'shape'");
    bool allowzero = n->params.reshape.allowzero; /* false before Reshape-14 */
    int64_t t[KILN_MAX_RANK]; /* symvals: concrete, or a symbol from a symbolic shape value */
    int k;
    if (!sh->data && !kiln_value_symvals(sh, t, KILN_MAX_RANK, &k)) {
        k = known_len(sh);
        kiln_shape o = k >= 0 ? unknown_dims(k) : unknown_rank();
        return set_out(n, v, 0, x->dtype, &o);
    }
    if (sh->data) {
        kiln_status st = read_ints(sh, t, KILN_MAX_RANK, &k);
        if (st != KILN_OK) return st;
    }
    int n_infer = 0;
    bool has_zero = false;
    for (int i = 0; i < k; i++) {
        if (!kiln_symval_known(t[i]) && !sh->data) continue;
        if (t[i] < -1)
            return kiln_fail(KILN_ERR_SHAPE, "shape '%s' has invalid value %" PRId64 " at %d", sh->name, t[i], i);
        n_infer += t[i] == -1;
        has_zero |= t[i] == 0;
    }
    if (n_infer > 1) return kiln_fail(KILN_ERR_SHAPE, "shape '%s' has more than one -1", sh->name);
    if (allowzero && has_zero && n_infer)
        return kiln_fail(KILN_ERR_SHAPE, "shape '%s' has both 0 and -1 with allowzero=1", sh->name);
    kiln_shape o = {.rank = k};
    for (int i = 0; i < k; i++) {
        if (!kiln_symval_known(t[i]) && !sh->data) {
            o.d[i] = kiln_symval_dim(t[i]);
        } else if (t[i] == 0 && !allowzero) {
            if (x->shape.rank < 0)
                o.d[i] = KILN_DIM_UNKNOWN;
            else if (i >= x->shape.rank)
                return kiln_fail(KILN_ERR_SHAPE, "shape '%s' copies dim %d (value 0) of input '%s' of rank %d",
                                 sh->name, i, x->name, x->shape.rank);
            else
                o.d[i] = x->shape.d[i];
        } else {
            o.d[i] = t[i];
        }
    }
    int64_t in_n = kiln_shape_numel(&x->shape);
    for (int i = 0; i < k; i++) {
        if (t[i] != -1) continue; /* no symval is -1 */
        o.d[i] = x->shape.rank < 0 ? KILN_DIM_UNKNOWN : reshape_infer_dim(&x->shape, t, k, allowzero);
        if (o.d[i] == -2)
            return kiln_fail(KILN_ERR_SHAPE, "cannot reshape input '%s' (%" PRId64 " elements) by shape '%s'",
                             x->name, in_n, sh->name);
    }
    int64_t out_n = kiln_shape_numel(&o);
    if (in_n >= 0 && out_n >= 0 && in_n != out_n)
        return kiln_fail(KILN_ERR_SHAPE, "cannot reshape input '%s' of %" PRId64 " elements into %" PRId64
                         " elements (shape '%s')", x->name, in_n, out_n, sh->name);
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---- Transpose (default perm reverses the dims) */

kiln_status kiln_shape_Transpose(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    const int64_t *perm = n->params.transpose.perm;
    int np = n->params.transpose.n_perm;
    bool pa = n->params.transpose.has_perm;
    int r = x->shape.rank;
    if (r < 0) {
        kiln_shape o = pa ? unknown_dims(np) : unknown_rank(); /* np <= KILN_MAX_RANK: the parser's */
        return set_out(n, v, 0, x->dtype, &o);
    }
    kiln_shape o = {.rank = r};
    if (!pa) {
        for (int i = 0; i < r; i++) o.d[i] = x->shape.d[r - 1 - i];
        return set_out(n, v, 0, x->dtype, &o);
    }
    if (np != r) return kiln_fail(KILN_ERR_SHAPE, "perm has %d entries, input '%s' has rank %d", np, x->name, r);
    bool seen[KILN_MAX_RANK] = {false};
    for (int i = 0; i < r; i++) {
        if (perm[i] < 0 || perm[i] >= r || seen[perm[i]])
            return kiln_fail(KILN_ERR_SHAPE, "perm is not a permutation of 0..%d (entry %d is %" PRId64 ")", r - 1,
                             i, perm[i]);
        seen[perm[i]] = true;
        o.d[i] = x->shape.d[perm[i]];
    }
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---- Concat */

kiln_status kiln_shape_Concat(const kiln_node *n, kiln_value *v)
{
    const kiln_value *first = NULL; /* axis: required, checked by the parser */
    int r = -1;
    for (int i = 0; i < n->n_inputs; i++) {
        const kiln_value *x = kiln_in(n, v, i);
        if (!x) continue;
        if (!first) first = x;
        if (x->dtype != first->dtype)
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' is %s, input '%s' is %s", x->name,
                             kiln_dtype_name(x->dtype), first->name, kiln_dtype_name(first->dtype));
        if (x->shape.rank < 0) continue;
        if (r >= 0 && x->shape.rank != r)
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' has rank %d, expected %d", x->name, x->shape.rank, r);
        r = x->shape.rank;
    }
    if (!first) return kiln_fail(KILN_ERR_SHAPE, "Concat needs at least one input");
    if (r < 0) {
        kiln_shape o = unknown_rank();
        return set_out(n, v, 0, first->dtype, &o);
    }
    if (r == 0) return kiln_fail(KILN_ERR_SHAPE, "Concat of 0-D tensors (input '%s')", first->name);
    int axis;
    kiln_status st = kiln_axis(n->params.axis.axis, r, &axis);
    if (st != KILN_OK) return st;
    kiln_shape o = unknown_dims(r);
    int64_t sum = 0, lone = 0;
    int n_sym = 0;
    bool all_ranked = true;
    for (int i = 0; i < n->n_inputs; i++) {
        const kiln_value *x = kiln_in(n, v, i);
        if (!x) continue;
        if (x->shape.rank < 0) {
            all_ranked = false;
            continue;
        }
        for (int k = 0; k < r; k++) {
            int64_t d = x->shape.d[k];
            if (k == axis) {
                if (d >= 0)
                    sum += d;
                else {
                    n_sym++;
                    lone = d;
                }
            } else if (d >= 0) {
                if (o.d[k] >= 0 && o.d[k] != d)
                    return kiln_fail(KILN_ERR_SHAPE, "input '%s' has dim %d = %" PRId64 ", another input has %" PRId64,
                                     x->name, k, d, o.d[k]);
                o.d[k] = d;
            } else if (o.d[k] == KILN_DIM_UNKNOWN) {
                o.d[k] = d;
            }
        }
    }
    if (all_ranked) o.d[axis] = n_sym == 0 ? sum : n_sym == 1 && sum == 0 ? lone : KILN_DIM_UNKNOWN;
    return set_out(n, v, 0, first->dtype, &o);
}

/* ---- Split (13: optional input 'split', else equal parts; 18: or attribute
 * num_outputs, ceil-sized parts with a smaller last one, as ONNX's reference
 * implementation splits) */

kiln_status kiln_shape_Split(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *sp = kiln_in(n, v, 1);
    int n_out = n->n_outputs;
    if (n_out < 1) return kiln_fail(KILN_ERR_SHAPE, "Split has no outputs");
    if (sp && sp->shape.rank == 1 && sp->shape.d[0] == 0) sp = NULL; /* an empty 'split' means none */
    int64_t na = n->params.split.num_outputs; /* 0: absent (and before Split-18) */
    if (sp && na) return kiln_fail(KILN_ERR_SHAPE, "Split has both input 'split' and attribute num_outputs");
    if (na && na != n_out)
        return kiln_fail(KILN_ERR_SHAPE, "num_outputs is %" PRId64 " but the node has %d outputs", na, n_out);
    if (x->shape.rank < 0) {
        kiln_shape o = unknown_rank();
        for (int i = 0; i < n_out; i++) set_out(n, v, i, x->dtype, &o);
        return KILN_OK;
    }
    int axis;
    kiln_status st = kiln_axis(n->params.split.axis, x->shape.rank, &axis);
    if (st != KILN_OK) return st;
    int64_t dim = x->shape.d[axis];
    for (int i = 0; i < n_out; i++) {
        kiln_shape o = x->shape;
        if (sp && sp->data) {
            if (sp->shape.rank != 1 || sp->shape.d[0] != n_out)
                return kiln_fail(KILN_ERR_SHAPE, "split '%s' must have one entry per output (%d)", sp->name, n_out);
            int64_t s = kiln_load_i64(sp->dtype, sp->data, i);
            if (s < 0) return kiln_fail(KILN_ERR_SHAPE, "split '%s' has negative entry %" PRId64, sp->name, s);
            o.d[axis] = s;
            if (i == 0 && dim >= 0) {
                int64_t sum = 0;
                bool over = false;
                for (int k = 0; k < n_out; k++) over |= __builtin_add_overflow(sum, kiln_load_i64(sp->dtype, sp->data, k), &sum);
                if (over || sum != dim)
                    return kiln_fail(KILN_ERR_SHAPE, "split '%s' sums to %" PRId64 ", input '%s' dim %d is %" PRId64,
                                     sp->name, sum, x->name, axis, dim);
            }
        } else if (sp) {
            o.d[axis] = KILN_DIM_UNKNOWN;
        } else if (dim >= 0) {
            int64_t part = dim % n_out == 0 ? dim / n_out : dim / n_out + 1;
            int64_t last = dim - part * (n_out - 1);
            if (last < 0)
                return kiln_fail(KILN_ERR_SHAPE, "cannot split dim %d (%" PRId64 ") of input '%s' into %d parts",
                                 axis, dim, x->name, n_out);
            o.d[axis] = i == n_out - 1 ? last : part;
        } else {
            o.d[axis] = n_out == 1 ? dim : KILN_DIM_UNKNOWN;
        }
        set_out(n, v, i, x->dtype, &o);
    }
    return KILN_OK;
}

/* ---- Slice (Slice-13) */

/* True when a slice in this direction reads a whole axis of any length:
 * start before the first element and end past the last, as exporters write
 * "to the end" with INT64_MAX (torch) or INT32_MAX (tf2onnx). A dim that
 * large is not a real tensor, so the threshold is safe. */
static bool slice_covers_axis(int64_t start, int64_t end, int64_t step)
{
    const int64_t big = INT32_MAX;
    if (step == 1) return start == 0 || start <= -big ? end >= big : false;
    if (step == -1) return start == -1 || start >= big ? end <= -big : false;
    return false;
}

kiln_status kiln_slice_resolve(const kiln_node *n, kiln_value *v, int64_t start[KILN_MAX_RANK],
                               int64_t step[KILN_MAX_RANK], int64_t count[KILN_MAX_RANK])
{
    const kiln_value *x = kiln_in(n, v, 0), *vs = kiln_in(n, v, 1), *ve = kiln_in(n, v, 2);
    const kiln_value *va = kiln_in(n, v, 3), *vst = kiln_in(n, v, 4);
    int r = x->shape.rank;
    int64_t starts[KILN_MAX_RANK], ends[KILN_MAX_RANK], axes[KILN_MAX_RANK], steps[KILN_MAX_RANK];
    int k, ke, ka, kst;
    if (!vs || !ve) return kiln_fail(KILN_ERR_SHAPE, "Slice needs inputs 'starts' and 'ends'");
    kiln_status st = read_ints(vs, starts, KILN_MAX_RANK, &k);
    if (st == KILN_OK) st = read_ints(ve, ends, KILN_MAX_RANK, &ke);
    if (st != KILN_OK) return st;
    if (ke != k) return kiln_fail(KILN_ERR_SHAPE, "starts '%s' has %d entries, ends '%s' has %d", vs->name, k, ve->name, ke);
    if (k > r) return kiln_fail(KILN_ERR_SHAPE, "starts '%s' has %d entries for input '%s' of rank %d", vs->name, k, x->name, r);
    if (va) {
        if ((st = read_ints(va, axes, KILN_MAX_RANK, &ka)) != KILN_OK) return st;
        if (ka != k) return kiln_fail(KILN_ERR_SHAPE, "axes '%s' has %d entries, starts has %d", va->name, ka, k);
    } else {
        for (int i = 0; i < k; i++) axes[i] = i;
    }
    if (vst) {
        if ((st = read_ints(vst, steps, KILN_MAX_RANK, &kst)) != KILN_OK) return st;
        if (kst != k) return kiln_fail(KILN_ERR_SHAPE, "steps '%s' has %d entries, starts has %d", vst->name, kst, k);
    } else {
        for (int i = 0; i < k; i++) steps[i] = 1;
    }
    bool seen[KILN_MAX_RANK] = {false};
    for (int a = 0; a < r; a++) {
        start[a] = 0;
        step[a] = 1;
        count[a] = x->shape.d[a];
    }
    for (int i = 0; i < k; i++) {
        int a;
        if ((st = kiln_axis(axes[i], r, &a)) != KILN_OK) return st;
        if (seen[a]) return kiln_fail(KILN_ERR_SHAPE, "axes '%s' repeats axis %d", va ? va->name : "", a);
        seen[a] = true;
        int64_t s = starts[i], e = ends[i], dt = steps[i], dim = x->shape.d[a];
        if (dt == 0) return kiln_fail(KILN_ERR_SHAPE, "steps '%s' has a 0 step", vst ? vst->name : "");
        step[a] = dt;
        if (!kiln_dim_known(dim)) {
            count[a] = slice_covers_axis(s, e, dt) ? dim : KILN_DIM_UNKNOWN;
            continue;
        }
        /* Slice-13: negative starts/ends have dim added; then starts clamp to
         * [0, dim] (step > 0) or [0, dim-1] (step < 0), ends to [0, dim] or
         * [-1, dim-1]; count = max(0, ceil((end - start) / step)). */
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (dt > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            count[a] = e > s ? (e - s - 1) / dt + 1 : 0;
        } else {
            int64_t mag = dt == INT64_MIN ? INT64_MAX : -dt; /* only ever divides a span < dim */
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            count[a] = s > e ? (s - e - 1) / mag + 1 : 0;
        }
        start[a] = s;
    }
    return KILN_OK;
}

kiln_status kiln_shape_Slice(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *vs = kiln_in(n, v, 1), *ve = kiln_in(n, v, 2);
    const kiln_value *va = kiln_in(n, v, 3), *vst = kiln_in(n, v, 4);
    int r = x->shape.rank;
    if (r < 0) {
        kiln_shape o = unknown_rank();
        return set_out(n, v, 0, x->dtype, &o);
    }
    bool known = vs && ve && vs->data && ve->data && (!va || va->data) && (!vst || vst->data);
    kiln_shape o = {.rank = r};
    if (known) {
        int64_t start[KILN_MAX_RANK], step[KILN_MAX_RANK];
        kiln_status st = kiln_slice_resolve(n, v, start, step, o.d);
        if (st != KILN_OK) return st;
        return set_out(n, v, 0, x->dtype, &o);
    }
    /* Parameters unknown: only axes that are provably not sliced keep their dim. */
    o = unknown_dims(r);
    if (va && va->data) {
        int64_t axes[KILN_MAX_RANK];
        int ka;
        kiln_status st = read_ints(va, axes, KILN_MAX_RANK, &ka);
        if (st != KILN_OK) return st;
        o = x->shape;
        for (int i = 0; i < ka; i++) {
            int a;
            if ((st = kiln_axis(axes[i], r, &a)) != KILN_OK) return st;
            o.d[a] = KILN_DIM_UNKNOWN;
        }
    } else if (!va && vs) {
        int k = known_len(vs);
        if (k >= 0 && k <= r) {
            o = x->shape;
            for (int i = 0; i < k; i++) o.d[i] = KILN_DIM_UNKNOWN;
        }
    }
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---- Gather: data[:axis] + indices + data[axis+1:] */

kiln_status kiln_shape_Gather(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *ix = kiln_in(n, v, 1);
    kiln_status st = check_index_dtype(ix);
    if (st != KILN_OK) return st;
    int r = x->shape.rank, q = ix->shape.rank;
    if (r < 0 || q < 0) {
        kiln_shape o = unknown_rank();
        return set_out(n, v, 0, x->dtype, &o);
    }
    if (r == 0) return kiln_fail(KILN_ERR_SHAPE, "input '%s' is 0-D; Gather needs rank >= 1", x->name);
    int axis;
    if ((st = kiln_axis(n->params.axis.axis, r, &axis)) != KILN_OK) return st;
    if (r + q - 1 > KILN_MAX_RANK)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Gather output rank %d exceeds kiln's maximum %d", r + q - 1,
                         KILN_MAX_RANK);
    kiln_shape o = {.rank = r + q - 1};
    int p = 0;
    for (int i = 0; i < axis; i++) o.d[p++] = x->shape.d[i];
    for (int i = 0; i < q; i++) o.d[p++] = ix->shape.d[i];
    for (int i = axis + 1; i < r; i++) o.d[p++] = x->shape.d[i];
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---- GatherElements: output has the indices' shape */

kiln_status kiln_shape_GatherElements(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *ix = kiln_in(n, v, 1);
    kiln_status st = check_index_dtype(ix);
    if (st != KILN_OK) return st;
    int r = x->shape.rank;
    if (r >= 0 && ix->shape.rank >= 0) {
        if (ix->shape.rank != r)
            return kiln_fail(KILN_ERR_SHAPE, "indices '%s' has rank %d, input '%s' has rank %d", ix->name,
                             ix->shape.rank, x->name, r);
        if (r == 0) return kiln_fail(KILN_ERR_SHAPE, "input '%s' is 0-D; GatherElements needs rank >= 1", x->name);
        int axis;
        if ((st = kiln_axis(n->params.axis.axis, r, &axis)) != KILN_OK) return st;
        for (int i = 0; i < r; i++) {
            int64_t di = ix->shape.d[i], dx = x->shape.d[i];
            if (i != axis && di >= 0 && dx >= 0 && di > dx)
                return kiln_fail(KILN_ERR_SHAPE, "indices '%s' dim %d is %" PRId64 ", larger than input '%s' (%" PRId64 ")",
                                 ix->name, i, di, x->name, dx);
        }
    }
    return set_out(n, v, 0, x->dtype, &ix->shape);
}

/* ---- Squeeze (13: axes as optional input) */

kiln_status kiln_shape_Squeeze(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *ax = kiln_in(n, v, 1);
    int r = x->shape.rank;
    if (ax && ax->shape.rank == 1 && ax->shape.d[0] == 0) ax = NULL; /* empty 'axes': as if not given */
    if (r < 0) {
        kiln_shape o = unknown_rank();
        return set_out(n, v, 0, x->dtype, &o);
    }
    kiln_shape o = {.rank = 0};
    if (!ax) {
        /* no axes: every dim of 1 goes, so a symbolic dim (which may be 1)
         * leaves the rank unknown */
        for (int i = 0; i < r; i++) {
            if (!kiln_dim_known(x->shape.d[i])) {
                o = unknown_rank();
                return set_out(n, v, 0, x->dtype, &o);
            }
            if (x->shape.d[i] != 1) o.d[o.rank++] = x->shape.d[i];
        }
        return set_out(n, v, 0, x->dtype, &o);
    }
    if (!ax->data) {
        int k = known_len(ax);
        o = k >= 0 && k <= r ? unknown_dims(r - k) : unknown_rank();
        return set_out(n, v, 0, x->dtype, &o);
    }
    int64_t axes[KILN_MAX_RANK];
    int k;
    kiln_status st = read_ints(ax, axes, KILN_MAX_RANK, &k);
    if (st != KILN_OK) return st;
    bool drop[KILN_MAX_RANK] = {false};
    for (int i = 0; i < k; i++) {
        int a;
        if ((st = kiln_axis(axes[i], r, &a)) != KILN_OK) return st;
        if (drop[a]) return kiln_fail(KILN_ERR_SHAPE, "axes '%s' repeats axis %d", ax->name, a);
        if (kiln_dim_known(x->shape.d[a]) && x->shape.d[a] != 1)
            return kiln_fail(KILN_ERR_SHAPE, "cannot squeeze dim %d of input '%s': it is %" PRId64 ", not 1", a,
                             x->name, x->shape.d[a]);
        drop[a] = true;
    }
    for (int i = 0; i < r; i++)
        if (!drop[i]) o.d[o.rank++] = x->shape.d[i];
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---- Unsqueeze (13: axes as input, normalized against the output rank) */

kiln_status kiln_shape_Unsqueeze(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *ax = kiln_in(n, v, 1);
    if (!ax) return kiln_fail(KILN_ERR_SHAPE, "Unsqueeze needs input 'axes'");
    int r = x->shape.rank;
    if (!ax->data) {
        int k = known_len(ax);
        kiln_shape o = r >= 0 && k >= 0 && r + k <= KILN_MAX_RANK ? unknown_dims(r + k) : unknown_rank();
        return set_out(n, v, 0, x->dtype, &o);
    }
    int64_t axes[KILN_MAX_RANK];
    int k;
    kiln_status st = read_ints(ax, axes, KILN_MAX_RANK, &k);
    if (st != KILN_OK) return st;
    if (r < 0) {
        kiln_shape o = unknown_rank();
        return set_out(n, v, 0, x->dtype, &o);
    }
    int ro = r + k;
    if (ro > KILN_MAX_RANK)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Unsqueeze output rank %d exceeds kiln's maximum %d", ro, KILN_MAX_RANK);
    bool ins[KILN_MAX_RANK] = {false};
    for (int i = 0; i < k; i++) {
        int a;
        if ((st = kiln_axis(axes[i], ro, &a)) != KILN_OK) return st;
        if (ins[a]) return kiln_fail(KILN_ERR_SHAPE, "axes '%s' repeats axis %d", ax->name, a);
        ins[a] = true;
    }
    kiln_shape o = {.rank = ro};
    for (int i = 0, j = 0; i < ro; i++) o.d[i] = ins[i] ? 1 : x->shape.d[j++];
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---- Expand: bidirectional (numpy) broadcast of the input and 'shape' */

kiln_status kiln_shape_Expand(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *sh = kiln_in(n, v, 1);
    if (!sh) return kiln_fail(KILN_ERR_SHAPE, "Expand needs input 'shape'");
    int64_t sv[KILN_MAX_RANK];
    int ks;
    if (!sh->data && kiln_value_symvals(sh, sv, KILN_MAX_RANK, &ks) && sh->shape.rank == 1) {
        /* a symbolic shape value: its symbols are dims like any other */
        kiln_shape t = {.rank = ks};
        for (int i = 0; i < ks; i++) {
            if (kiln_symval_known(sv[i]) && sv[i] < 0)
                return kiln_fail(KILN_ERR_SHAPE, "shape '%s' has negative dim %" PRId64, sh->name, sv[i]);
            t.d[i] = kiln_symval_known(sv[i]) ? sv[i] : kiln_symval_dim(sv[i]);
        }
        kiln_shape o;
        kiln_status st = kiln_broadcast(&x->shape, &t, &o);
        if (st != KILN_OK)
            return kiln_fail_prefix(st, "input '%s' cannot expand to shape '%s': ", x->name, sh->name);
        return set_out(n, v, 0, x->dtype, &o);
    }
    if (!sh->data) {
        int k = known_len(sh);
        if (k < 0 || x->shape.rank < 0) {
            kiln_shape o = unknown_rank();
            return set_out(n, v, 0, x->dtype, &o);
        }
        /* a concrete dim > 1 of the input survives any broadcast partner */
        int r = k > x->shape.rank ? k : x->shape.rank;
        kiln_shape o = unknown_dims(r);
        for (int i = 0; i < x->shape.rank; i++) {
            int64_t d = x->shape.d[i];
            if (d >= 0 && d != 1) o.d[r - x->shape.rank + i] = d;
        }
        return set_out(n, v, 0, x->dtype, &o);
    }
    kiln_shape t;
    kiln_status st = read_ints(sh, t.d, KILN_MAX_RANK, &t.rank);
    if (st != KILN_OK) return st;
    for (int i = 0; i < t.rank; i++)
        if (t.d[i] < 0) return kiln_fail(KILN_ERR_SHAPE, "shape '%s' has negative dim %" PRId64, sh->name, t.d[i]);
    kiln_shape o;
    st = kiln_broadcast(&x->shape, &t, &o);
    if (st != KILN_OK)
        return kiln_fail_prefix(st, "input '%s' cannot expand to shape '%s': ", x->name, sh->name);
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---- Tile: dim i times repeats[i] */

kiln_status kiln_shape_Tile(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *rp = kiln_in(n, v, 1);
    if (!rp) return kiln_fail(KILN_ERR_SHAPE, "Tile needs input 'repeats'");
    int r = x->shape.rank;
    int64_t rep[KILN_MAX_RANK]; /* symvals when 'repeats' is a symbolic shape value */
    int k;
    if (r >= 0 && !rp->data && kiln_value_symvals(rp, rep, KILN_MAX_RANK, &k) && k == r) {
        kiln_shape o = {.rank = r};
        for (int i = 0; i < r; i++) {
            int64_t d = x->shape.d[i], pair[2] = {d, rep[i]};
            if (kiln_symval_known(rep[i]) && rep[i] < 0)
                return kiln_fail(KILN_ERR_SHAPE, "repeats '%s' has negative entry %" PRId64, rp->name, rep[i]);
            if (!kiln_symval_known(rep[i])) pair[1] = kiln_symval_dim(rep[i]);
            o.d[i] = dims_product(pair, 2);
        }
        return set_out(n, v, 0, x->dtype, &o);
    }
    if (r < 0 || !rp->data) {
        kiln_shape o = r >= 0 ? unknown_dims(r) : unknown_rank();
        return set_out(n, v, 0, x->dtype, &o);
    }
    kiln_status st = read_ints(rp, rep, KILN_MAX_RANK, &k);
    if (st != KILN_OK) return st;
    if (k != r) return kiln_fail(KILN_ERR_SHAPE, "repeats '%s' has %d entries, input '%s' has rank %d", rp->name, k, x->name, r);
    kiln_shape o = {.rank = r};
    for (int i = 0; i < r; i++) {
        if (rep[i] < 0) return kiln_fail(KILN_ERR_SHAPE, "repeats '%s' has negative entry %" PRId64, rp->name, rep[i]);
        int64_t d = x->shape.d[i], pair[2] = {d, rep[i]};
        o.d[i] = dims_product(pair, 2);
    }
    return set_out(n, v, 0, x->dtype, &o);
}

/* ---- Shape (15: start/end select a range of dims, clamped like slicing) */

void kiln_shape_op_range(const kiln_node *n, int r, int *s, int *e)
{
    /* n->params.shape: start 0 and no end before Shape-15 */
    int64_t a = n->params.shape.start, b = n->params.shape.has_end ? n->params.shape.end : r;
    if (a < 0) a += r;
    if (b < 0) b += r;
    a = a < 0 ? 0 : a > r ? r : a;
    b = b < 0 ? 0 : b > r ? r : b;
    *s = (int)a;
    *e = (int)(b > a ? b : a);
}

kiln_status kiln_shape_Shape(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_shape o = {.rank = 1, .d = {KILN_DIM_UNKNOWN}};
    if (x->shape.rank >= 0) {
        int s, e;
        kiln_shape_op_range(n, x->shape.rank, &s, &e);
        o.d[0] = e - s;
    }
    return set_out(n, v, 0, KILN_I64, &o);
}

kiln_status kiln_shape_Size(const kiln_node *n, kiln_value *v)
{
    kiln_shape o = {.rank = 0};
    return set_out(n, v, 0, KILN_I64, &o);
}

/* ---- Constant: one value attribute (n->params.constant: the parser
 * picked it and checked the tensor) */

kiln_status kiln_shape_Constant(const kiln_node *n, kiln_value *v)
{
    const kiln_constant_params *c = &n->params.constant;
    kiln_shape o = {.rank = 0};
    switch (c->kind) {
    case KILN_CONSTANT_TENSOR: return set_out(n, v, 0, c->tensor->dtype, &c->tensor->shape);
    case KILN_CONSTANT_FLOAT: return set_out(n, v, 0, KILN_F32, &o);
    case KILN_CONSTANT_INT: return set_out(n, v, 0, KILN_I64, &o);
    case KILN_CONSTANT_FLOATS:
    case KILN_CONSTANT_INTS:
        o.rank = 1;
        o.d[0] = c->n;
        return set_out(n, v, 0, c->kind == KILN_CONSTANT_FLOATS ? KILN_F32 : KILN_I64, &o);
    }
    return kiln_fail(KILN_ERR_INTERNAL, "Constant of an unknown kind %d", (int)c->kind);
}

/* ---- ConstantOfShape: 'value' (one element, default f32 0) over 'input' dims */

kiln_status kiln_shape_ConstantOfShape(const kiln_node *n, kiln_value *v)
{
    const kiln_value *sh = kiln_in(n, v, 0);
    /* 'value': one element of a dtype kiln has (the parser checked it), f32 0 when absent */
    const kiln_value *val = n->params.constant_of_shape.value;
    kiln_dtype dt = val ? val->dtype : KILN_F32;
    int64_t sv[KILN_MAX_RANK];
    int ks;
    if (!sh->data && kiln_value_symvals(sh, sv, KILN_MAX_RANK, &ks) && sh->shape.rank == 1) {
        kiln_shape o = {.rank = ks};
        for (int i = 0; i < ks; i++) {
            if (kiln_symval_known(sv[i]) && sv[i] < 0)
                return kiln_fail(KILN_ERR_SHAPE, "input '%s' has negative dim %" PRId64, sh->name, sv[i]);
            o.d[i] = kiln_symval_known(sv[i]) ? sv[i] : kiln_symval_dim(sv[i]);
        }
        return set_out(n, v, 0, dt, &o);
    }
    if (!sh->data) {
        int k = known_len(sh);
        kiln_shape o = k >= 0 ? unknown_dims(k) : unknown_rank();
        return set_out(n, v, 0, dt, &o);
    }
    kiln_shape o;
    kiln_status st = read_ints(sh, o.d, KILN_MAX_RANK, &o.rank);
    if (st != KILN_OK) return st;
    if (sh->shape.rank != 1) return kiln_fail(KILN_ERR_SHAPE, "input '%s' must be 1-D", sh->name);
    for (int i = 0; i < o.rank; i++)
        if (o.d[i] < 0) return kiln_fail(KILN_ERR_SHAPE, "input '%s' has negative dim %" PRId64, sh->name, o.d[i]);
    return set_out(n, v, 0, dt, &o);
}

/* ---- Range (11): count = max(ceil((limit - start) / delta), 0) */

kiln_status kiln_shape_Range(const kiln_node *n, kiln_value *v)
{
    const kiln_value *in[3] = {kiln_in(n, v, 0), kiln_in(n, v, 1), kiln_in(n, v, 2)};
    for (int i = 0; i < 3; i++) {
        if (!in[i]) return kiln_fail(KILN_ERR_SHAPE, "Range needs inputs start, limit and delta");
        if (in[i]->dtype != in[0]->dtype)
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' is %s, input '%s' is %s", in[i]->name,
                             kiln_dtype_name(in[i]->dtype), in[0]->name, kiln_dtype_name(in[0]->dtype));
        if (in[i]->shape.rank > 1 || (in[i]->shape.rank == 1 && in[i]->shape.d[0] != 1))
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' must be a scalar", in[i]->name);
    }
    kiln_dtype dt = in[0]->dtype;
    if (dt == KILN_BOOL) return kiln_fail(KILN_ERR_SHAPE, "Range of bool (input '%s')", in[0]->name);
    kiln_shape o = {.rank = 1, .d = {KILN_DIM_UNKNOWN}};
    if (in[0]->data && in[1]->data && in[2]->data) {
        int64_t cnt;
        if (kiln_dtype_is_float(dt)) {
            double s = kiln_load_f64(dt, in[0]->data, 0), l = kiln_load_f64(dt, in[1]->data, 0);
            double d = kiln_load_f64(dt, in[2]->data, 0);
            if (d == 0 || d != d) return kiln_fail(KILN_ERR_SHAPE, "delta '%s' is 0 or NaN", in[2]->name);
            double c = ceil((l - s) / d);
            if (c != c || c > 9.0e15)
                return kiln_fail(KILN_ERR_SHAPE, "Range from '%s' to '%s' has no finite element count", in[0]->name,
                                 in[1]->name);
            cnt = c > 0 ? (int64_t)c : 0;
        } else {
            int64_t s = kiln_load_i64(dt, in[0]->data, 0), l = kiln_load_i64(dt, in[1]->data, 0);
            int64_t d = kiln_load_i64(dt, in[2]->data, 0), span;
            if (d == 0) return kiln_fail(KILN_ERR_SHAPE, "delta '%s' is 0", in[2]->name);
            if (__builtin_sub_overflow(l, s, &span))
                return kiln_fail(KILN_ERR_SHAPE, "Range from '%s' to '%s' overflows", in[0]->name, in[1]->name);
            /* exact integer ceil of span / d */
            int64_t q = span / d;
            if (span % d != 0 && ((span < 0) == (d < 0))) q++;
            cnt = q > 0 ? q : 0;
        }
        o.d[0] = cnt;
    }
    return set_out(n, v, 0, dt, &o);
}
