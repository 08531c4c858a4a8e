/* Reference kernels of the index family: GatherND, ScatterND, NonZero,
 * Trilu, DepthToSpace, SpaceToDepth, OneHot (Einsum is in einsum.c).
 *
 * Elements move as bytes, so every kiln dtype works; ScatterND's
 * reductions compute in double (float dtypes, rounded once into the
 * data's dtype per update, as ONNX applies updates one after another) or
 * in wrapping 64-bit integers (integer dtypes, truncated to their width).
 * Indices may be negative (counting from the end); one outside
 * [-dim, dim-1] is bad data and fails naming the index tensor. */
#include "ref/ref.h"
#include "ref/strided.h"
#include "ir/shape_index.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* v into element i of an integer (or bool) buffer, keeping the low bits */
static void store_i64(kiln_dtype t, void *p, int64_t i, int64_t v)
{
    switch (t) {
    case KILN_I64: ((int64_t *)p)[i] = v; break;
    case KILN_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)(uint64_t)v; break;
    case KILN_I8: ((int8_t *)p)[i] = (int8_t)(uint8_t)(uint64_t)v; break;
    case KILN_U8: ((uint8_t *)p)[i] = (uint8_t)(uint64_t)v; break;
    case KILN_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: kiln_store_f64(t, p, i, (double)v); break;
    }
}

/* Index element i of `ix` made non-negative and checked against dim. */
static kiln_status load_index(const kiln_value *ix, int64_t i, int64_t dim, const kiln_value *x, int axis, int64_t *out)
{
    int64_t k = kiln_load_i64(ix->dtype, ix->data, i);
    if (k < -dim || k >= dim)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "indices '%s' has %" PRId64 " at position %" PRId64 ", outside [%" PRId64 ", %" PRId64
                         "] for axis %d of '%s'",
                         ix->name, k, i, -dim, dim - 1, axis, x->name);
    *out = k < 0 ? k + dim : k;
    return KILN_OK;
}

static int64_t prod(const int64_t *d, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* ---------------------------------------------------------------- GatherND */

/* out[b.., r..] = data[b.., indices[b.., r.., :], ...]: each index row of
 * k entries picks a slice of data's trailing dims within its batch */
kiln_status kiln_ref_GatherND(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *ix = kiln_in(n, v, 1);
    kiln_value *o = kiln_out(n, v, 0);
    int r = x->shape.rank, q = ix->shape.rank, b = (int)n->params.gathernd.batch_dims;
    int k = (int)ix->shape.d[q - 1];
    int64_t xst[KILN_MAX_RANK];
    kiln_dense_strides(r, x->shape.d, xst);
    int64_t nb = prod(x->shape.d, 0, b), rows = prod(ix->shape.d, b, q - 1), slice = prod(x->shape.d, b + k, r);
    int64_t bstride = prod(x->shape.d, b, r);
    size_t es = kiln_dtype_size(x->dtype), block = (size_t)slice * es;
    if (nb * rows == 0 || slice == 0) return KILN_OK;
    const char *src = x->data;
    char *dst = o->data;
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t ri = 0; ri < rows; ri++, dst += block) {
            int64_t row = bi * rows + ri, off = bi * bstride;
            for (int m = 0; m < k; m++) {
                int64_t id = 0;
                kiln_status st = load_index(ix, row * k + m, x->shape.d[b + m], x, b + m, &id);
                if (st != KILN_OK) return st;
                off += id * xst[b + m];
            }
            memcpy(dst, src + (size_t)off * es, block);
        }
    return KILN_OK;
}

/* ---------------------------------------------------------------- ScatterND */

static double red_f64(kiln_scatter_red red, double a, double b)
{
    switch (red) {
    case KILN_RED_ADD: return a + b;
    case KILN_RED_MUL: return a * b;
    case KILN_RED_MAX: return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
    case KILN_RED_MIN: return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
    default: return b;
    }
}

static int64_t red_i64(kiln_scatter_red red, int64_t a, int64_t b)
{
    switch (red) {
    case KILN_RED_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case KILN_RED_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case KILN_RED_MAX: return a > b ? a : b;
    case KILN_RED_MIN: return a < b ? a : b;
    default: return b;
    }
}

/* output = data; then, in order, each index row of k entries names a slice
 * of the output that its row of updates replaces (or reduces into) */
kiln_status kiln_ref_ScatterND(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *ix = kiln_in(n, v, 1), *up = kiln_in(n, v, 2);
    kiln_value *o = kiln_out(n, v, 0);
    kiln_scatter_red red = n->params.scatternd.reduction;
    kiln_status st;
    int r = x->shape.rank, q = ix->shape.rank;
    int k = (int)ix->shape.d[q - 1];
    size_t es = kiln_dtype_size(x->dtype);
    int64_t total = kiln_shape_numel(&x->shape);
    if (o->data != x->data && total > 0) memcpy(o->data, x->data, (size_t)total * es);
    int64_t xst[KILN_MAX_RANK];
    kiln_dense_strides(r, x->shape.d, xst);
    int64_t rows = prod(ix->shape.d, 0, q - 1), slice = prod(x->shape.d, k, r);
    if (kiln_shape_numel(&up->shape) != rows * slice)
        return kiln_fail(KILN_ERR_SHAPE, "updates '%s' has %" PRId64 " elements, expected %" PRId64, up->name,
                         kiln_shape_numel(&up->shape), rows * slice);
    bool isf = kiln_dtype_is_float(x->dtype);
    char *dst = o->data;
    const char *src = up->data;
    for (int64_t u = 0; u < rows; u++) {
        int64_t off = 0;
        for (int m = 0; m < k; m++) {
            int64_t id = 0;
            if ((st = load_index(ix, u * k + m, x->shape.d[m], x, m, &id)) != KILN_OK) return st;
            off += id * xst[m];
        }
        if (red == KILN_RED_NONE) {
            memcpy(dst + (size_t)off * es, src + (size_t)(u * slice) * es, (size_t)slice * es);
            continue;
        }
        for (int64_t j = 0; j < slice; j++) {
            int64_t oi = off + j, ui = u * slice + j;
            if (isf)
                kiln_store_f64(x->dtype, dst, oi,
                               red_f64(red, kiln_load_f64(x->dtype, dst, oi), kiln_load_f64(x->dtype, src, ui)));
            else
                store_i64(x->dtype, dst, oi, red_i64(red, kiln_load_i64(x->dtype, dst, oi), kiln_load_i64(x->dtype, src, ui)));
        }
    }
    return KILN_OK;
}

/* ---------------------------------------------------------------- NonZero */

/* [rank, count] int64: the coordinates of the nonzero elements (NaN is
 * nonzero) in row-major order, one row per dim */
kiln_status kiln_ref_NonZero(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    int r = x->shape.rank;
    int64_t total = kiln_shape_numel(&x->shape), cnt = o->shape.d[1], j = 0, pos[KILN_MAX_RANK] = {0};
    int64_t *out = o->data;
    for (int64_t i = 0; i < total; i++) {
        if (kiln_load_f64(x->dtype, x->data, i) != 0) {
            if (j >= cnt) return kiln_fail(KILN_ERR_INTERNAL, "NonZero: more nonzero elements than the shape rule counted");
            if (r == 0) out[j] = 0;
            for (int d = 0; d < r; d++) out[d * cnt + j] = pos[d];
            j++;
        }
        for (int d = r - 1; d >= 0; d--) {
            if (++pos[d] < x->shape.d[d]) break;
            pos[d] = 0;
        }
    }
    if (j != cnt) return kiln_fail(KILN_ERR_INTERNAL, "NonZero: %" PRId64 " nonzero elements, the shape says %" PRId64, j, cnt);
    return KILN_OK;
}

/* ---------------------------------------------------------------- Trilu */

/* The diagonal offset k of Trilu (input 1, default 0). */
static kiln_status trilu_k(const kiln_node *n, kiln_value *v, int64_t *k)
{
    const kiln_value *kv = kiln_in(n, v, 1);
    *k = 0;
    if (!kv) return KILN_OK;
    if (!kv->data || kiln_shape_numel(&kv->shape) != 1)
        return kiln_fail(KILN_ERR_SHAPE, "k '%s' must be a scalar with data", kv->name);
    *k = kiln_load_i64(kv->dtype, kv->data, 0);
    return KILN_OK;
}

/* upper (default): keep [.., i, j] where j - i >= k; lower: where j - i <= k;
 * zero elsewhere */
kiln_status kiln_ref_Trilu(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    int64_t k;
    kiln_status st = trilu_k(n, v, &k);
    if (st != KILN_OK) return st;
    bool upper = n->params.trilu.upper;
    int r = x->shape.rank;
    int64_t rows = x->shape.d[r - 2], cols = x->shape.d[r - 1], batch = prod(x->shape.d, 0, r - 2);
    size_t es = kiln_dtype_size(x->dtype);
    const char *src = x->data;
    char *dst = o->data;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < rows; i++) {
            size_t row = (size_t)((b * rows + i) * cols) * es;
            for (int64_t j = 0; j < cols; j++) {
                bool keep = upper ? j - i >= k : j - i <= k;
                if (keep)
                    memcpy(dst + row + (size_t)j * es, src + row + (size_t)j * es, es);
                else
                    memset(dst + row + (size_t)j * es, 0, es); /* every kiln dtype's zero is all-zero bits */
            }
        }
    return KILN_OK;
}

/* ---------------------------------------------------------------- DepthToSpace, SpaceToDepth */

/* Both are a reshape, a transpose and a reshape: the output read as 6-D in
 * C order is the input through a strided view. */
static kiln_status block_copy(const kiln_value *x, kiln_value *o, const int64_t dims[6], const int64_t el_strides[6])
{
    if (kiln_shape_numel(&o->shape) <= 0) return KILN_OK;
    size_t es = kiln_dtype_size(x->dtype);
    int64_t bytes[6];
    for (int i = 0; i < 6; i++) bytes[i] = el_strides[i] * (int64_t)es;
    kiln_strided_copy(o->data, x->data, 6, dims, bytes, es);
    return KILN_OK;
}

/* out [N, C/b², H*b, W*b] read as [N, C', H, b1, W, b2]; the input channel
 * is (b1*b + b2)*C' + c' (DCR) or c'*b*b + b1*b + b2 (CRD) */
kiln_status kiln_ref_DepthToSpace(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    int64_t b = n->params.block.blocksize, N = x->shape.d[0], C = x->shape.d[1], H = x->shape.d[2],
            W = x->shape.d[3], Cp = C / (b * b), hw = H * W;
    int64_t dims[6] = {N, Cp, H, b, W, b};
    int64_t dcr[6] = {C * hw, hw, W, b * Cp * hw, 1, Cp * hw};
    int64_t crd[6] = {C * hw, b * b * hw, W, b * hw, 1, hw};
    return block_copy(x, o, dims, n->params.block.crd ? crd : dcr);
}

/* out [N, C*b², H/b, W/b] read as [N, b1, b2, C, H', W'] is
 * x[n, c, h'*b + b1, w'*b + b2] */
kiln_status kiln_ref_SpaceToDepth(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    int64_t b = n->params.block.blocksize, N = x->shape.d[0], C = x->shape.d[1], H = x->shape.d[2],
            W = x->shape.d[3];
    int64_t dims[6] = {N, b, b, C, H / b, W / b};
    int64_t st[6] = {C * H * W, W, 1, H * W, b * W, b};
    return block_copy(x, o, dims, st);
}

/* ---------------------------------------------------------------- OneHot */

/* out[.., d, ..] (d on `axis`) = on_value where the index there equals d,
 * else off_value. OneHot-11: an index in [-depth, -1] counts from the end;
 * OneHot-9 and anything outside the range: a row of off_value. Float
 * indices truncate toward zero. */
kiln_status kiln_ref_OneHot(const kiln_node *n, kiln_value *v)
{
    const kiln_value *ix = kiln_in(n, v, 0), *vals = kiln_in(n, v, 2);
    kiln_value *o = kiln_out(n, v, 0);
    int64_t depth;
    kiln_status st = kiln_onehot_depth(n, v, &depth);
    if (st != KILN_OK) return st;
    if (kiln_shape_numel(&vals->shape) != 2 || !vals->data)
        return kiln_fail(KILN_ERR_SHAPE, "values '%s' must be [off_value, on_value]", vals->name);
    int r = ix->shape.rank, axis;
    if ((st = kiln_axis(n->params.axis.axis, r + 1, &axis)) != KILN_OK) return st;
    int64_t outer = prod(ix->shape.d, 0, axis), inner = prod(ix->shape.d, axis, r);
    size_t es = kiln_dtype_size(o->dtype);
    const char *off_v = vals->data, *on_v = (const char *)vals->data + es;
    char *dst = o->data;
    int64_t total = outer * depth * inner;
    for (int64_t i = 0; i < total; i++) memcpy(dst + (size_t)i * es, off_v, es);
    bool isf = kiln_dtype_is_float(ix->dtype);
    for (int64_t a = 0; a < outer; a++)
        for (int64_t c = 0; c < inner; c++) {
            int64_t i = a * inner + c, id;
            if (isf) {
                double f = kiln_load_f64(ix->dtype, ix->data, i);
                if (!(f > -KILN_DIM_MAX && f < KILN_DIM_MAX)) continue; /* NaN, inf: outside any range */
                id = (int64_t)f;
            } else {
                id = kiln_load_i64(ix->dtype, ix->data, i);
            }
            if (id < 0 && n->version >= 11) id += depth;
            if (id < 0 || id >= depth) continue;
            memcpy(dst + (size_t)((a * depth + id) * inner + c) * es, on_v, es);
        }
    return KILN_OK;
}
