/* Parameter parsers of the reduce family: Softmax, LogSoftmax,
 * LayerNormalization, ReduceMean/Sum/Max/Min, ArgMax, TopK (see
 * src/ir/params.h). Axes are kept as given: the shape rule checks them
 * against the input's rank. */
#include "ir/ops.h"

#include <inttypes.h>
#include <string.h>

static kiln_status softmax_like(const kiln_node *n, kiln_params *p)
{
    return kiln_pa_int(n, "axis", -1, &p->softmax.axis);
}

kiln_status kiln_params_Softmax(const kiln_node *n, kiln_params *p) { return softmax_like(n, p); }
kiln_status kiln_params_LogSoftmax(const kiln_node *n, kiln_params *p) { return softmax_like(n, p); }

kiln_status kiln_params_LayerNormalization(const kiln_node *n, kiln_params *p)
{
    kiln_layernorm_params *l = &p->layernorm;
    int64_t stash;
    kiln_status st = kiln_pa_int(n, "axis", -1, &l->axis);
    if (st == KILN_OK) st = kiln_pa_float(n, "epsilon", 1e-5f, &l->epsilon);
    if (st == KILN_OK) st = kiln_pa_int(n, "stash_type", KILN_F32, &stash);
    if (st != KILN_OK) return st;
    /* a TensorProto data type: the ONNX shape inference gives Mean and
     * InvStdDev that element type */
    if (stash != KILN_F32 && stash != KILN_F64 && stash != KILN_BF16 && stash != KILN_F16)
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "LayerNormalization attribute 'stash_type' is %" PRId64 ", not a float type kiln implements",
                         stash);
    l->stash_type = (kiln_dtype)stash;
    return KILN_OK;
}

static kiln_status reduce(const kiln_node *n, kiln_params *p)
{
    kiln_reduce_params *r = &p->reduce;
    kiln_status st = kiln_pa_bool(n, "keepdims", true, &r->keepdims);
    if (st == KILN_OK) st = kiln_pa_bool(n, "noop_with_empty_axes", false, &r->noop_with_empty_axes);
    if (st != KILN_OK) return st;
    r->axes_from_input = n->version >= 18 || !strcmp(n->op_type, "ReduceSum");
    if (r->axes_from_input) return KILN_OK;
    return kiln_pa_ints(n, "axes", KILN_MAX_RANK, r->axes, &r->n_axes);
}

kiln_status kiln_params_ReduceMean(const kiln_node *n, kiln_params *p) { return reduce(n, p); }
kiln_status kiln_params_ReduceSum(const kiln_node *n, kiln_params *p) { return reduce(n, p); }
kiln_status kiln_params_ReduceMax(const kiln_node *n, kiln_params *p) { return reduce(n, p); }
kiln_status kiln_params_ReduceMin(const kiln_node *n, kiln_params *p) { return reduce(n, p); }

kiln_status kiln_params_ArgMax(const kiln_node *n, kiln_params *p)
{
    kiln_argmax_params *a = &p->argmax;
    kiln_status st = kiln_pa_int(n, "axis", 0, &a->axis);
    if (st == KILN_OK) st = kiln_pa_bool(n, "keepdims", true, &a->keepdims);
    if (st == KILN_OK) st = kiln_pa_bool(n, "select_last_index", false, &a->select_last_index);
    return st;
}

kiln_status kiln_params_TopK(const kiln_node *n, kiln_params *p)
{
    kiln_topk_params *t = &p->topk;
    kiln_status st = kiln_pa_int(n, "axis", -1, &t->axis);
    if (st == KILN_OK) st = kiln_pa_bool(n, "largest", true, &t->largest);
    if (st == KILN_OK) st = kiln_pa_bool(n, "sorted", true, &t->sorted);
    return st;
}
