/* Reference kernels of Expand and Tile: the input read through a strided
 * view, with stride 0 where Expand broadcasts a dim and on Tile's repeats
 * (each axis seen as repeats x dim). */
#include "ref/ref.h"
#include "ref/strided.h"

kiln_status kiln_ref_Expand(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    int r = o->shape.rank, rx = x->shape.rank;
    size_t es = kiln_dtype_size(x->dtype);
    int64_t in_st[KILN_MAX_RANK], st[KILN_MAX_RANK];
    if (rx > r) return kiln_fail(KILN_ERR_INTERNAL, "output '%s' has lower rank than input '%s'", o->name, x->name);
    kiln_dense_strides(rx, x->shape.d, in_st);
    /* ONNX broadcasting: align dims on the right; a dim of 1 repeats */
    for (int i = 0; i < r; i++) {
        int k = i - (r - rx);
        if (k < 0 || x->shape.d[k] == 1)
            st[i] = 0;
        else if (x->shape.d[k] == o->shape.d[i])
            st[i] = in_st[k] * (int64_t)es;
        else
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' dim %d (%lld) cannot expand to %lld", x->name, k,
                             (long long)x->shape.d[k], (long long)o->shape.d[i]);
    }
    if (kiln_shape_numel(&o->shape) > 0) kiln_strided_copy(o->data, x->data, r, o->shape.d, st, es);
    return KILN_OK;
}

kiln_status kiln_ref_Tile(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    int r = x->shape.rank;
    size_t es = kiln_dtype_size(x->dtype);
    int64_t in_st[KILN_MAX_RANK], dims[KILN_STRIDED_MAX_RANK], st[KILN_STRIDED_MAX_RANK];
    if (o->shape.rank != r) return kiln_fail(KILN_ERR_INTERNAL, "output '%s' rank differs from input", o->name);
    kiln_dense_strides(r, x->shape.d, in_st);
    /* output index along axis i is rep * d_i + j: dims (repeats_i, d_i) */
    for (int i = 0; i < r; i++) {
        int64_t d = x->shape.d[i];
        if (d == 0) return KILN_OK; /* nothing to copy; the output is empty too */
        if (o->shape.d[i] % d)
            return kiln_fail(KILN_ERR_INTERNAL, "output '%s' dim %d is not a multiple of the input's", o->name, i);
        dims[2 * i] = o->shape.d[i] / d;
        st[2 * i] = 0;
        dims[2 * i + 1] = d;
        st[2 * i + 1] = in_st[i] * (int64_t)es;
    }
    if (kiln_shape_numel(&o->shape) > 0) kiln_strided_copy(o->data, x->data, 2 * r, dims, st, es);
    return KILN_OK;
}
