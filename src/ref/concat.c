/* Reference kernels of Concat and Split: row-major blocks along an axis.
 * With outer = product of the dims before the axis and inner = bytes of
 * the dims after it, each part is one contiguous block per outer index. */
#include "ref/ref.h"

#include <string.h>

static int64_t outer_count(const kiln_shape *s, int axis)
{
    int64_t p = 1;
    for (int i = 0; i < axis; i++) p *= s->d[i];
    return p;
}

static int64_t inner_bytes(const kiln_shape *s, int axis, kiln_dtype dt)
{
    int64_t p = (int64_t)kiln_dtype_size(dt);
    for (int i = axis + 1; i < s->rank; i++) p *= s->d[i];
    return p;
}

kiln_status kiln_ref_Concat(const kiln_node *n, kiln_value *v)
{
    kiln_value *o = kiln_out(n, v, 0);
    int axis;
    kiln_status st = kiln_axis(n->params.axis.axis, o->shape.rank, &axis);
    if (st != KILN_OK) return st;
    int64_t outer = outer_count(&o->shape, axis), inner = inner_bytes(&o->shape, axis, o->dtype);
    int64_t out_row = o->shape.d[axis] * inner, pos = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        const kiln_value *x = kiln_in(n, v, i);
        if (!x || x->shape.rank != o->shape.rank) continue;
        int64_t row = x->shape.d[axis] * inner;
        if (pos + row > out_row) return kiln_fail(KILN_ERR_INTERNAL, "Concat inputs exceed output '%s'", o->name);
        if (row == 0) continue;
        for (int64_t k = 0; k < outer; k++)
            memcpy((char *)o->data + k * out_row + pos, (const char *)x->data + k * row, (size_t)row);
        pos += row;
    }
    if (pos != out_row) return kiln_fail(KILN_ERR_INTERNAL, "Concat inputs do not fill output '%s'", o->name);
    return KILN_OK;
}

kiln_status kiln_ref_Split(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    int axis;
    kiln_status st = kiln_axis(n->params.split.axis, x->shape.rank, &axis);
    if (st != KILN_OK) return st;
    int64_t outer = outer_count(&x->shape, axis), inner = inner_bytes(&x->shape, axis, x->dtype);
    int64_t in_row = x->shape.d[axis] * inner, pos = 0;
    /* the parts' sizes are the outputs' dims on the axis (from the shape rule) */
    for (int i = 0; i < n->n_outputs; i++) {
        kiln_value *o = kiln_out(n, v, i);
        if (!o) return kiln_fail(KILN_ERR_SHAPE, "Split output %d is omitted; its part's size is unknown", i);
        int64_t row = o->shape.d[axis] * inner;
        if (pos + row > in_row) return kiln_fail(KILN_ERR_INTERNAL, "Split outputs exceed input '%s'", x->name);
        if (row > 0)
            for (int64_t k = 0; k < outer; k++)
                memcpy((char *)o->data + k * row, (const char *)x->data + k * in_row + pos, (size_t)row);
        pos += row;
    }
    return KILN_OK;
}
