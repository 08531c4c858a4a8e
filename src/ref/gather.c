/* Reference kernels of Gather and GatherElements. Indices may be negative
 * (counting from the end of the axis, ONNX Gather-13); any index outside
 * [-dim, dim-1] is bad data and fails naming the index tensor. */
#include "ref/ref.h"
#include "ref/strided.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Index i of `ix`, made non-negative and checked against the axis length. */
static kiln_status load_index(const kiln_value *ix, int64_t i, int64_t dim, const kiln_value *x, int axis,
                              int64_t *out)
{
    int64_t k = kiln_load_i64(ix->dtype, ix->data, i);
    if (k < -dim || k >= dim)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "indices '%s' has %" PRId64 " at position %" PRId64 ", outside [%" PRId64 ", %" PRId64
                         "] for axis %d of input '%s'",
                         ix->name, k, i, -dim, dim - 1, axis, x->name);
    *out = k < 0 ? k + dim : k;
    return KILN_OK;
}

kiln_status kiln_ref_Gather(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *ix = kiln_in(n, v, 1);
    kiln_value *o = kiln_out(n, v, 0);
    int axis;
    kiln_status st = kiln_axis(n->params.axis.axis, x->shape.rank, &axis);
    if (st != KILN_OK) return st;
    size_t es = kiln_dtype_size(x->dtype);
    int64_t dim = x->shape.d[axis], outer = 1, inner = 1, nidx = kiln_shape_numel(&ix->shape);
    for (int i = 0; i < axis; i++) outer *= x->shape.d[i];
    for (int i = axis + 1; i < x->shape.rank; i++) inner *= x->shape.d[i];
    if (nidx <= 0 || outer == 0 || inner == 0) return KILN_OK; /* empty output */
    int64_t *idx = malloc((size_t)nidx * sizeof *idx);
    if (!idx) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "Gather: no memory for %" PRId64 " indices", nidx);
    for (int64_t i = 0; i < nidx && st == KILN_OK; i++) st = load_index(ix, i, dim, x, axis, &idx[i]);
    if (st == KILN_OK && inner == 1) {
        /* single elements (e.g. Gather on the last axis): one typed gather */
        int64_t *off = malloc((size_t)(outer * nidx) * sizeof *off);
        if (!off) {
            free(idx);
            return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "Gather: no memory for offsets");
        }
        for (int64_t k = 0; k < outer; k++)
            for (int64_t j = 0; j < nidx; j++) off[k * nidx + j] = k * dim + idx[j];
        kiln_gather_elems(o->data, x->data, off, outer * nidx, es);
        free(off);
    } else if (st == KILN_OK) {
        size_t block = (size_t)inner * es;
        char *dst = o->data;
        const char *src = x->data;
        for (int64_t k = 0; k < outer; k++)
            for (int64_t j = 0; j < nidx; j++, dst += block) memcpy(dst, src + (k * dim + idx[j]) * (int64_t)block, block);
    }
    free(idx);
    return st;
}

/* out[i..] = data[i.. with i_axis replaced by indices[i..]] (ONNX GatherElements-13) */
kiln_status kiln_ref_GatherElements(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *ix = kiln_in(n, v, 1);
    kiln_value *o = kiln_out(n, v, 0);
    int r = x->shape.rank, axis;
    kiln_status st = kiln_axis(n->params.axis.axis, r, &axis);
    if (st != KILN_OK) return st;
    if (ix->shape.rank != r)
        return kiln_fail(KILN_ERR_SHAPE, "indices '%s' has rank %d, input '%s' has rank %d", ix->name, ix->shape.rank,
                         x->name, r);
    for (int k = 0; k < r; k++)
        if (k != axis && ix->shape.d[k] > x->shape.d[k])
            return kiln_fail(KILN_ERR_SHAPE, "indices '%s' dim %d exceeds input '%s'", ix->name, k, x->name);
    int64_t total = kiln_shape_numel(&ix->shape), xst[KILN_MAX_RANK], pos[KILN_MAX_RANK] = {0};
    if (total <= 0) return KILN_OK;
    kiln_dense_strides(r, x->shape.d, xst);
    int64_t *off = malloc((size_t)total * sizeof *off);
    if (!off) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "GatherElements: no memory for offsets");
    int64_t base = 0, dim = x->shape.d[axis];
    for (int64_t i = 0; i < total; i++) {
        int64_t k = 0;
        st = load_index(ix, i, dim, x, axis, &k);
        if (st != KILN_OK) break;
        off[i] = base + k * xst[axis];
        /* odometer over the indices' shape; `base` skips the axis itself */
        for (int d = r - 1; d >= 0; d--) {
            if (d != axis) base += xst[d];
            if (++pos[d] < ix->shape.d[d]) break;
            if (d != axis) base -= xst[d] * pos[d];
            pos[d] = 0;
        }
    }
    if (st == KILN_OK) kiln_gather_elems(o->data, x->data, off, total, kiln_dtype_size(x->dtype));
    free(off);
    return st;
}
