/* Parameter parsers of the tensor ops with attributes: Flatten, Reshape,
 * Transpose, Concat, Split, Gather, GatherElements, Shape, Constant,
 * ConstantOfShape (see src/ir/params.h). Axes and perm are kept as given:
 * the shape rules check them against the input's rank. */
#include "ir/ops.h"

#include <inttypes.h>

kiln_status kiln_params_Flatten(const kiln_node *n, kiln_params *p) { return kiln_pa_int(n, "axis", 1, &p->axis.axis); }

kiln_status kiln_params_Reshape(const kiln_node *n, kiln_params *p)
{
    p->reshape.allowzero = false;
    return n->version >= 14 ? kiln_pa_bool(n, "allowzero", false, &p->reshape.allowzero) : KILN_OK;
}

kiln_status kiln_params_Transpose(const kiln_node *n, kiln_params *p)
{
    kiln_transpose_params *t = &p->transpose;
    kiln_status st = kiln_pa_ints(n, "perm", KILN_MAX_RANK, t->perm, &t->n_perm);
    t->has_perm = st == KILN_OK && kiln_pa_has(n, "perm");
    return st;
}

kiln_status kiln_params_Concat(const kiln_node *n, kiln_params *p) { return kiln_pa_int_required(n, "axis", &p->axis.axis); }

kiln_status kiln_params_Split(const kiln_node *n, kiln_params *p)
{
    kiln_split_params *s = &p->split;
    kiln_status st = kiln_pa_int(n, "axis", 0, &s->axis);
    s->num_outputs = 0;
    if (st != KILN_OK || n->version < 18) return st;
    if ((st = kiln_pa_int(n, "num_outputs", 0, &s->num_outputs)) != KILN_OK) return st;
    if (kiln_pa_has(n, "num_outputs") && s->num_outputs < 1)
        return kiln_fail(KILN_ERR_FORMAT, "Split attribute 'num_outputs' is %" PRId64 ", must be >= 1", s->num_outputs);
    return KILN_OK;
}

kiln_status kiln_params_Gather(const kiln_node *n, kiln_params *p) { return kiln_pa_int(n, "axis", 0, &p->axis.axis); }

kiln_status kiln_params_GatherElements(const kiln_node *n, kiln_params *p)
{
    return kiln_pa_int(n, "axis", 0, &p->axis.axis);
}

/* Shape-15: start and end select a range of dims (kiln_shape_op_range) */
kiln_status kiln_params_Shape(const kiln_node *n, kiln_params *p)
{
    kiln_shape_params *s = &p->shape;
    s->start = s->end = 0;
    s->has_end = false;
    if (n->version < 15) return KILN_OK;
    kiln_status st = kiln_pa_int(n, "start", 0, &s->start);
    if (st == KILN_OK) st = kiln_pa_int(n, "end", 0, &s->end);
    s->has_end = st == KILN_OK && kiln_pa_has(n, "end");
    return st;
}

/* Constant: the first of value, value_float, value_int, value_floats,
 * value_ints it has (ONNX allows exactly one); the string and sparse
 * values are not supported. */
kiln_status kiln_params_Constant(const kiln_node *n, kiln_params *p)
{
    static const char *const unsupported[] = {"value_string", "value_strings", "sparse_value"};
    kiln_constant_params *c = &p->constant;
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (kiln_attr_find(n, unsupported[i]))
            return kiln_fail(KILN_ERR_UNSUPPORTED, "Constant with attribute '%s' is not supported", unsupported[i]);
    const kiln_attr *a;
    if ((a = kiln_attr_find(n, "value"))) {
        if (a->type != KILN_ATTR_TENSOR || !a->t)
            return kiln_fail(KILN_ERR_FORMAT, "Constant attribute 'value' is not a tensor");
        if (!kiln_dtype_valid(a->t->dtype))
            return kiln_fail(KILN_ERR_UNSUPPORTED, "Constant attribute 'value': tensor '%s' has a dtype kiln does not support",
                             a->t->name ? a->t->name : "value");
        if (!kiln_shape_known(&a->t->shape))
            return kiln_fail(KILN_ERR_FORMAT, "Constant attribute 'value': the tensor has no concrete shape");
        c->kind = KILN_CONSTANT_TENSOR;
        c->tensor = a->t;
        return KILN_OK;
    }
    if ((a = kiln_attr_find(n, "value_float"))) {
        c->kind = KILN_CONSTANT_FLOAT;
        return kiln_pa_float(n, "value_float", 0.0f, &c->f);
    }
    if ((a = kiln_attr_find(n, "value_int"))) {
        c->kind = KILN_CONSTANT_INT;
        return kiln_pa_int(n, "value_int", 0, &c->i);
    }
    if ((a = kiln_attr_find(n, "value_floats"))) {
        if (a->type != KILN_ATTR_FLOATS)
            return kiln_fail(KILN_ERR_FORMAT, "Constant attribute 'value_floats' is not a list of floats");
        c->kind = KILN_CONSTANT_FLOATS;
        c->n = a->n;
        c->floats = a->floats;
        return KILN_OK;
    }
    if ((a = kiln_attr_find(n, "value_ints"))) {
        if (a->type != KILN_ATTR_INTS)
            return kiln_fail(KILN_ERR_FORMAT, "Constant attribute 'value_ints' is not a list of ints");
        c->kind = KILN_CONSTANT_INTS;
        c->n = a->n;
        c->ints = a->ints;
        return KILN_OK;
    }
    return kiln_fail(KILN_ERR_FORMAT, "Constant has no value attribute");
}

kiln_status kiln_params_ConstantOfShape(const kiln_node *n, kiln_params *p)
{
    const kiln_attr *a = kiln_attr_find(n, "value");
    p->constant_of_shape.value = NULL;
    if (!a) return KILN_OK;
    if (a->type != KILN_ATTR_TENSOR || !a->t || kiln_shape_numel(&a->t->shape) != 1)
        return kiln_fail(KILN_ERR_FORMAT, "ConstantOfShape attribute 'value' must be a one-element tensor");
    if (!kiln_dtype_valid(a->t->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "ConstantOfShape attribute 'value' has a dtype kiln does not support");
    p->constant_of_shape.value = a->t;
    return KILN_OK;
}
