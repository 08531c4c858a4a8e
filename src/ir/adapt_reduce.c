/* Version adapters of the reduce / softmax / topk family. Each cites the
 * ONNX changelog (docs/Changelog.md) difference it bridges. */
#include "ir/adapt_util.h"

#include <string.h>

/* ReduceSum-1 -> 11: negative axes allowed. ReduceSum-11 -> 13: attribute
 * 'axes' became the optional input 'axes', and noop_with_empty_axes
 * (default 0: no axes reduces everything, as before) was added. The other
 * reductions keep the attribute until 18 and are native before it. */
kiln_status kiln_adapt_ReduceSum(kiln_graph *g, kiln_node *n)
{
    kiln_status st = kiln_adapt_ints_to_input(g, n, "axes", 1, false);
    if (st != KILN_OK) return st;
    n->opset = 13;
    return KILN_OK;
}

/* TopK-1 -> TopK-10: the required attribute 'k' became the input 'K' (a
 * 1-D i64 tensor of one element). TopK-10 is native: 11 adds 'largest' and
 * 'sorted', whose defaults (1) are TopK-10's behaviour. */
kiln_status kiln_adapt_TopK(kiln_graph *g, kiln_node *n)
{
    const kiln_attr *a = kiln_attr_find(n, "k");
    if (!a || a->type != KILN_ATTR_INT)
        return kiln_fail(KILN_ERR_FORMAT, "the required attribute 'k' (int) is missing");
    if (n->n_inputs != 1) return kiln_fail(KILN_ERR_FORMAT, "TopK-1 takes 1 input, the node has %d", n->n_inputs);
    int64_t k = a->i;
    int c = kiln_adapt_const_i64(g, kiln_adapt_index(g, n), "K", &k, 1);
    if (c < 0) return KILN_ERR_OUT_OF_MEMORY;
    kiln_adapt_drop_attr(n, "k");
    int ins[2] = {n->inputs[0], c};
    kiln_status st = kiln_adapt_set_inputs(g, n, ins, 2);
    if (st != KILN_OK) return st;
    n->opset = 11;
    return KILN_OK;
}

/* Softmax-1 and 11 (LogSoftmax the same) coerce the input into 2-D at
 * `axis` (default 1): [a_0 * .. * a_{k-1}, a_k * .. * a_{n-1}], and
 * normalize each row; Softmax-13 normalizes along the one axis `axis`
 * (default -1). (11 only allowed a negative axis.) When the axis is the last
 * one, the two agree: the node becomes Softmax-13 with that axis. Otherwise
 *   Flatten(x, axis) -> Softmax-13(axis=-1) -> Reshape(., Shape(x)),
 * the original node being the Softmax. */
static kiln_status adapt_softmax(kiln_graph *g, kiln_node *n)
{
    if (n->n_inputs != 1 || n->n_outputs != 1 || n->inputs[0] < 0 || n->outputs[0] < 0)
        return kiln_fail(KILN_ERR_FORMAT, "%s-%d takes 1 input and 1 output", n->op_type, n->opset < 11 ? 1 : 11);
    int64_t axis = kiln_attr_int(n, "axis", 1);
    int rank = kiln_adapt_rank(g, n->inputs[0]);
    kiln_status st;
    if (axis == -1 || (rank > 0 && (axis == rank - 1))) {
        if ((st = kiln_adapt_attr_int(g, n, "axis", -1)) != KILN_OK) return st;
        n->opset = 13;
        return KILN_OK;
    }
    int node = kiln_adapt_index(g, n);
    int x = n->inputs[0], y = n->outputs[0];
    int flat = kiln_adapt_value(g, node, "flat");
    int norm = kiln_adapt_value(g, node, "rows");
    int shape = kiln_adapt_value(g, node, "shape");
    if (flat < 0 || norm < 0 || shape < 0) return KILN_ERR_OUT_OF_MEMORY;
    if ((st = kiln_adapt_attr_int(g, n, "axis", -1)) != KILN_OK ||
        (st = kiln_adapt_set_inputs(g, n, &flat, 1)) != KILN_OK ||
        (st = kiln_adapt_set_outputs(g, n, &norm, 1)) != KILN_OK)
        return st;
    n->opset = 13;
    int f = kiln_adapt_node(g, node, "Flatten", 13, "flatten", &x, 1, &flat, 1);
    if (f < 0) return KILN_ERR_OUT_OF_MEMORY;
    if ((st = kiln_adapt_attr_int(g, &g->nodes[f], "axis", axis)) != KILN_OK) return st;
    int r_in[2] = {norm, shape};
    if (kiln_adapt_node(g, node, "Shape", 13, "shape", &x, 1, &shape, 1) < 0 ||
        kiln_adapt_node(g, node, "Reshape", 13, "reshape", r_in, 2, &y, 1) < 0)
        return KILN_ERR_OUT_OF_MEMORY;
    return KILN_OK;
}

kiln_status kiln_adapt_Softmax(kiln_graph *g, kiln_node *n) { return adapt_softmax(g, n); }
kiln_status kiln_adapt_LogSoftmax(kiln_graph *g, kiln_node *n) { return adapt_softmax(g, n); }
