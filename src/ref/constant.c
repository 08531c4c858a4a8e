/* Reference kernels of the ops that make tensors from shapes and attributes:
 * Shape, Size, Constant, ConstantOfShape, Range. Shape and Size are
 * KILN_OP_SHAPE_ONLY: folding runs them when the input's shape is known but
 * its data is not, so they read nothing but the shape. */
#include "ir/shape_tensor.h"
#include "ref/ref.h"

#include <string.h>

kiln_status kiln_ref_Shape(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    int s, e;
    kiln_shape_op_range(n, x->shape.rank, &s, &e);
    if (o->dtype != KILN_I64 || o->shape.rank != 1 || o->shape.d[0] != e - s)
        return kiln_fail(KILN_ERR_INTERNAL, "output '%s' is not int64 [%d]", o->name, e - s);
    int64_t *out = o->data;
    for (int i = s; i < e; i++) {
        if (!kiln_dim_known(x->shape.d[i]))
            return kiln_fail(KILN_ERR_INTERNAL, "input '%s' dim %d is not known", x->name, i);
        out[i - s] = x->shape.d[i];
    }
    return KILN_OK;
}

kiln_status kiln_ref_Size(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *o = kiln_out(n, v, 0);
    int64_t cnt = kiln_shape_numel(&x->shape);
    if (cnt < 0) return kiln_fail(KILN_ERR_INTERNAL, "input '%s' has no known shape", x->name);
    *(int64_t *)o->data = cnt;
    return KILN_OK;
}

kiln_status kiln_ref_Constant(const kiln_node *n, kiln_value *v)
{
    kiln_value *o = kiln_out(n, v, 0);
    const kiln_constant_params *c = &n->params.constant;
    size_t bytes = kiln_value_bytes(o);
    switch (c->kind) {
    case KILN_CONSTANT_TENSOR:
        if (c->tensor->dtype != o->dtype || kiln_value_bytes(c->tensor) != bytes)
            return kiln_fail(KILN_ERR_INTERNAL, "output '%s' does not match the Constant's tensor", o->name);
        if (bytes && !c->tensor->data) return kiln_fail(KILN_ERR_FORMAT, "Constant tensor '%s' has no data", o->name);
        if (bytes) memcpy(o->data, c->tensor->data, bytes);
        break;
    case KILN_CONSTANT_FLOAT: *(float *)o->data = c->f; break;
    case KILN_CONSTANT_INT: *(int64_t *)o->data = c->i; break;
    case KILN_CONSTANT_FLOATS:
        if (bytes != (size_t)c->n * sizeof(float)) return kiln_fail(KILN_ERR_INTERNAL, "Constant size mismatch");
        if (bytes) memcpy(o->data, c->floats, bytes);
        break;
    case KILN_CONSTANT_INTS:
        if (bytes != (size_t)c->n * sizeof(int64_t)) return kiln_fail(KILN_ERR_INTERNAL, "Constant size mismatch");
        if (bytes) memcpy(o->data, c->ints, bytes);
        break;
    default: return kiln_fail(KILN_ERR_UNSUPPORTED, "Constant has no value attribute kiln supports");
    }
    return KILN_OK;
}

kiln_status kiln_ref_ConstantOfShape(const kiln_node *n, kiln_value *v)
{
    kiln_value *o = kiln_out(n, v, 0);
    const kiln_value *val = n->params.constant_of_shape.value;
    size_t es = kiln_dtype_size(o->dtype);
    int64_t cnt = kiln_shape_numel(&o->shape);
    unsigned char elem[16] = {0}; /* default: f32 0, all bytes zero */
    if (val && val->data) {
        if (val->dtype != o->dtype) return kiln_fail(KILN_ERR_INTERNAL, "ConstantOfShape dtype mismatch");
        memcpy(elem, val->data, es);
    }
    char *out = o->data;
    for (int64_t i = 0; i < cnt; i++) memcpy(out + i * (int64_t)es, elem, es);
    return KILN_OK;
}

/* Range-11: output[i] = start + i * delta (computed per element, not
 * accumulated, so that rounding does not drift along long float ranges). */
kiln_status kiln_ref_Range(const kiln_node *n, kiln_value *v)
{
    const kiln_value *vs = kiln_in(n, v, 0), *vd = kiln_in(n, v, 2);
    kiln_value *o = kiln_out(n, v, 0);
    kiln_dtype dt = o->dtype;
    int64_t cnt = o->shape.d[0];
    if (kiln_dtype_is_float(dt)) {
        double s = kiln_load_f64(dt, vs->data, 0), d = kiln_load_f64(dt, vd->data, 0);
        for (int64_t i = 0; i < cnt; i++) kiln_store_f64(dt, o->data, i, s + (double)i * d);
    } else if (dt == KILN_I64) {
        int64_t s = kiln_load_i64(dt, vs->data, 0), d = kiln_load_i64(dt, vd->data, 0);
        int64_t *out = o->data;
        /* unsigned arithmetic: the last value is in range, intermediate
         * products of a huge delta must not be signed overflow */
        for (int64_t i = 0; i < cnt; i++) out[i] = (int64_t)((uint64_t)s + (uint64_t)i * (uint64_t)d);
    } else {
        int64_t s = kiln_load_i64(dt, vs->data, 0), d = kiln_load_i64(dt, vd->data, 0);
        for (int64_t i = 0; i < cnt; i++) kiln_store_f64(dt, o->data, i, (double)(s + i * d));
    }
    return KILN_OK;
}
