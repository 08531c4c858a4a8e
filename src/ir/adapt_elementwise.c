/* Version adapters of the elementwise family (Clip, Dropout). Each cites
 * the ONNX changelog (docs/Changelog.md) difference it bridges. */
#include "ir/adapt_util.h"

#include <float.h>
#include <string.h>

/* Clip-6 -> Clip-11: the float attributes 'min' and 'max' (defaults: the
 * type's lowest and largest) became the optional inputs 'min' and 'max',
 * scalars of the input's type. Clip-11 and 12 are native (12 and 13 only
 * add types; 13 documents min > max, which every version computes as
 * Min(max, Max(x, min))). */
kiln_status kiln_adapt_Clip(kiln_graph *g, kiln_node *n)
{
    if (n->n_inputs != 1) return kiln_fail(KILN_ERR_FORMAT, "Clip-6 takes 1 input, the node has %d", n->n_inputs);
    const kiln_attr *lo = kiln_attr_find(n, "min"), *hi = kiln_attr_find(n, "max");
    /* Clip-6 takes only float types; f32 when the graph does not tell */
    kiln_dtype dt = kiln_adapt_dtype(g, n->inputs[0]);
    if (!dt) dt = KILN_F32;
    int node = kiln_adapt_index(g, n);
    int ins[3] = {n->inputs[0], -1, -1};
    /* a bound at the attribute's default (FLT_MAX) is no bound: on f16 it
     * would not be representable, and leaving it out means the same */
    if (lo && !(lo->type == KILN_ATTR_FLOAT && lo->f <= -FLT_MAX) &&
        (ins[1] = kiln_adapt_const_scalar(g, node, "min", dt, kiln_attr_float(n, "min", 0))) < 0)
        return KILN_ERR_OUT_OF_MEMORY;
    if (hi && !(hi->type == KILN_ATTR_FLOAT && hi->f >= FLT_MAX) &&
        (ins[2] = kiln_adapt_const_scalar(g, node, "max", dt, kiln_attr_float(n, "max", 0))) < 0)
        return KILN_ERR_OUT_OF_MEMORY;
    n = &g->nodes[node];
    kiln_adapt_drop_attr(n, "min");
    kiln_adapt_drop_attr(n, "max");
    int cnt = ins[2] >= 0 ? 3 : ins[1] >= 0 ? 2 : 1;
    kiln_status st = kiln_adapt_set_inputs(g, n, ins, cnt);
    if (st != KILN_OK) return st;
    n->opset = 13;
    return KILN_OK;
}

/* Dropout-7 and 10 take the attribute 'ratio'; Dropout-12 made it the
 * optional input 'ratio' and added 'training_mode' (default false) and
 * 'seed'. Inference is the same in all: Y = X, the mask all ones (every
 * version scales only while training). Dropout-7's mask has X's type T,
 * Dropout-10's is bool: a used Dropout-7 mask is cast back to T. ratio only
 * matters while training: dropped. Dropout-12 is native (13 adds bf16). */
kiln_status kiln_adapt_Dropout(kiln_graph *g, kiln_node *n)
{
    if (n->n_inputs != 1) return kiln_fail(KILN_ERR_FORMAT, "Dropout-%d takes 1 input, the node has %d",
                                           n->opset < 10 ? 7 : 10, n->n_inputs);
    kiln_adapt_drop_attr(n, "ratio");
    kiln_adapt_drop_attr(n, "is_test");
    int node = kiln_adapt_index(g, n);
    if (n->opset < 10 && kiln_adapt_output_used(g, n, 1)) {
        kiln_dtype dt = kiln_adapt_dtype(g, n->inputs[0]);
        if (!dt) dt = KILN_F32; /* Dropout-7 takes only float types */
        int mask = kiln_adapt_value(g, node, "mask_bool");
        if (mask < 0) return KILN_ERR_OUT_OF_MEMORY;
        int outs[2] = {n->outputs[0], mask}, orig = n->outputs[1];
        kiln_status st = kiln_adapt_set_outputs(g, n, outs, 2);
        if (st != KILN_OK) return st;
        int c = kiln_adapt_node(g, node, "Cast", 13, "mask_cast", &mask, 1, &orig, 1);
        if (c < 0) return KILN_ERR_OUT_OF_MEMORY;
        if ((st = kiln_adapt_attr_int(g, &g->nodes[c], "to", dt)) != KILN_OK) return st;
        n = &g->nodes[node];
    }
    n->opset = 13;
    return KILN_OK;
}
