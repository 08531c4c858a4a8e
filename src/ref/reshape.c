/* Reference kernels of the ops that only relabel a tensor's shape: Flatten,
 * Reshape, Squeeze, Unsqueeze. Row-major order is unchanged, so the output
 * is the input's bytes (the shape rule computed the new shape). */
#include "ref/ref.h"

#include <string.h>

static kiln_status copy_bytes(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    if (kiln_shape_numel(&x->shape) != kiln_shape_numel(&o->shape) || x->dtype != o->dtype)
        return kiln_fail(KILN_ERR_INTERNAL, "output '%s' does not match input '%s' in size or dtype", o->name, x->name);
    size_t bytes = kiln_value_bytes(o);
    if (bytes && o->data != x->data) memmove(o->data, x->data, bytes); /* memmove: a planner may alias them */
    return KILN_OK;
}

kiln_status kiln_ref_Flatten(const kiln_node *n, kiln_value *v) { return copy_bytes(n, v); }
kiln_status kiln_ref_Reshape(const kiln_node *n, kiln_value *v) { return copy_bytes(n, v); }
kiln_status kiln_ref_Squeeze(const kiln_node *n, kiln_value *v) { return copy_bytes(n, v); }
kiln_status kiln_ref_Unsqueeze(const kiln_node *n, kiln_value *v) { return copy_bytes(n, v); }
