/* Version adapters of the conv / normalization family. Each cites the ONNX
 * changelog (docs/Changelog.md) difference it bridges.
 *
 * Conv-1 and ConvTranspose-1 are native: Conv-11's text is Conv-1's, and
 * ConvTranspose-11 only corrected the documented pads of SAME_UPPER /
 * SAME_LOWER under output_shape (ONNX's version converter registers both
 * 10 -> 11 steps as compatible; onnxruntime runs them with one kernel).
 * Gemm-7/9/11 (C became optional in 11), MaxPool-1/8/10/11 (storage_order
 * and Indices in 8, dilations and ceil_mode in 10, all with defaults that
 * are the older behaviour) and AveragePool-7/10 (ceil_mode in 10) are the
 * native forms restricted: native too. */
#include "ir/adapt_util.h"

#include <string.h>

/* BatchNormalization-7 -> 9: the attribute 'spatial' was removed. spatial=1
 * (the default) is BatchNormalization-9 exactly: one mean, variance, scale
 * and bias per channel. spatial=0 normalizes every element of a C x D1 x ..
 * x Dn sample on its own: the parameters have that shape and broadcast
 * against X (N x C x D1 ..), so in inference it is
 *   Y = (X - mean) * (scale / sqrt(var + epsilon)) + B
 * written as elementwise ops (BatchNormalization-9's text suggests
 * flattening to N x C*D1*.. for it). The extra outputs exist only in
 * training, which kiln does not do. (is_test went in 7, consumed_inputs in
 * 6: dropped if a file still carries them.) */
kiln_status kiln_adapt_BatchNormalization(kiln_graph *g, kiln_node *n)
{
    int64_t spatial = kiln_attr_int(n, "spatial", 1);
    kiln_adapt_drop_attr(n, "spatial");
    kiln_adapt_drop_attr(n, "is_test");
    kiln_adapt_drop_attr(n, "consumed_inputs");
    if (spatial) {
        n->opset = 9;
        return KILN_OK;
    }
    if (n->n_inputs != 5 || n->n_outputs < 1 || n->outputs[0] < 0)
        return kiln_fail(KILN_ERR_FORMAT, "BatchNormalization takes 5 inputs and output Y");
    for (int i = 1; i < n->n_outputs; i++)
        if (kiln_adapt_output_used(g, n, i))
            return kiln_fail(KILN_ERR_UNSUPPORTED,
                             "spatial=0 with output %d (running/saved statistics, training mode) is not supported", i);
    for (int i = 0; i < 5; i++)
        if (n->inputs[i] < 0) return kiln_fail(KILN_ERR_FORMAT, "input %d is empty", i);
    int node = kiln_adapt_index(g, n);
    int x = n->inputs[0], scale = n->inputs[1], bias = n->inputs[2], mean = n->inputs[3], var = n->inputs[4];
    int y = n->outputs[0];
    float eps = kiln_attr_float(n, "epsilon", 1e-5f);
    kiln_dtype dt = kiln_adapt_dtype(g, var);
    if (!dt) dt = kiln_adapt_dtype(g, x);
    if (!dt) dt = KILN_F32; /* BatchNormalization-7 takes only float types */
    int e = kiln_adapt_const_scalar(g, node, "epsilon", dt, eps);
    int t_var = kiln_adapt_value(g, node, "var_eps"), t_std = kiln_adapt_value(g, node, "std");
    int t_mul = kiln_adapt_value(g, node, "multiplier"), t_cen = kiln_adapt_value(g, node, "centered");
    int t_scl = kiln_adapt_value(g, node, "scaled");
    if (e < 0 || t_var < 0 || t_std < 0 || t_mul < 0 || t_cen < 0 || t_scl < 0) return KILN_ERR_OUT_OF_MEMORY;
    int a1[2] = {var, e}, a2[2] = {scale, t_std}, a3[2] = {x, mean}, a4[2] = {t_cen, t_mul}, a5[2] = {t_scl, bias};
    if (kiln_adapt_node(g, node, "Add", 14, "add_eps", a1, 2, &t_var, 1) < 0 ||
        kiln_adapt_node(g, node, "Sqrt", 13, "sqrt", &t_var, 1, &t_std, 1) < 0 ||
        kiln_adapt_node(g, node, "Div", 14, "div", a2, 2, &t_mul, 1) < 0 ||
        kiln_adapt_node(g, node, "Sub", 14, "sub", a3, 2, &t_cen, 1) < 0 ||
        kiln_adapt_node(g, node, "Mul", 14, "mul", a4, 2, &t_scl, 1) < 0)
        return KILN_ERR_OUT_OF_MEMORY;
    /* the node itself adds the bias: it keeps its name and output */
    n = &g->nodes[node];
    kiln_status st = kiln_adapt_set_inputs(g, n, a5, 2);
    if (st == KILN_OK) st = kiln_adapt_set_outputs(g, n, &y, 1);
    if (st != KILN_OK) return st;
    n->n_attrs = 0;
    n->op_type = "Add";
    n->opset = 14;
    return KILN_OK;
}
