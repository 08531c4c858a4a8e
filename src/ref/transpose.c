/* Reference kernel of Transpose: the input read through permuted strides. */
#include "ref/ref.h"
#include "ref/strided.h"

kiln_status kiln_ref_Transpose(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    int r = x->shape.rank;
    size_t es = kiln_dtype_size(x->dtype);
    int64_t in_st[KILN_MAX_RANK], st[KILN_MAX_RANK];
    kiln_dense_strides(r, x->shape.d, in_st);
    const kiln_transpose_params *tp = &n->params.transpose;
    if (tp->has_perm && tp->n_perm != r)
        return kiln_fail(KILN_ERR_SHAPE, "perm has %d entries, input '%s' has rank %d", tp->n_perm, x->name, r);
    for (int i = 0; i < r; i++) {
        int64_t p = tp->has_perm ? tp->perm[i] : r - 1 - i; /* default: reverse the dims */
        if (p < 0 || p >= r) return kiln_fail(KILN_ERR_SHAPE, "perm entry %d is out of range", i);
        st[i] = in_st[p] * (int64_t)es;
    }
    if (kiln_shape_numel(&o->shape) > 0) kiln_strided_copy(o->data, x->data, r, o->shape.d, st, es);
    return KILN_OK;
}
