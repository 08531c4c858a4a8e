/* Reference kernel of Slice: the input read through a strided view that
 * starts at the first selected element and steps `steps[i]` (possibly
 * negative) along each axis. kiln_slice_resolve is shared with the shape
 * rule, so the kernel reads exactly the elements the output was sized for. */
#include "ir/shape_tensor.h"
#include "ref/ref.h"
#include "ref/strided.h"

kiln_status kiln_ref_Slice(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    int r = x->shape.rank;
    int64_t start[KILN_MAX_RANK], step[KILN_MAX_RANK], count[KILN_MAX_RANK], in_st[KILN_MAX_RANK],
        st[KILN_MAX_RANK];
    kiln_status s = kiln_slice_resolve(n, v, start, step, count);
    if (s != KILN_OK) return s;
    size_t es = kiln_dtype_size(x->dtype);
    kiln_dense_strides(r, x->shape.d, in_st);
    int64_t off = 0;
    for (int i = 0; i < r; i++) {
        if (count[i] != o->shape.d[i])
            return kiln_fail(KILN_ERR_INTERNAL, "output '%s' dim %d does not match the slice", o->name, i);
        if (count[i] == 0) return KILN_OK;
        off += start[i] * in_st[i];
        st[i] = count[i] == 1 ? 0 : step[i] * in_st[i] * (int64_t)es; /* |step| < dim whenever count > 1 */
    }
    kiln_strided_copy(o->data, (const char *)x->data + off * (int64_t)es, r, count, st, es);
    return KILN_OK;
}
