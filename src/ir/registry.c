/* The op registry: the one table that lists every op kiln knows, with its
 * ONNX versions, shape rule, reference kernel and cost. An op is found under
 * its own name everywhere: kiln_shape_<Op> (src/ir/shape_<family>.c), kiln_ref_<Op>
 * (src/ref/<family>.c), kiln_flops_<Op>. */
#include "ir/ops.h"
#include "ref/ref.h"

#include <stdio.h>
#include <string.h>

/* name, versions kiln implements, all since_versions reachable from opset
 * 13..KILN_MAX_OPSET (scripts/gen-op-versions.py 25); opset 25 only added int2/uint2 types, shape, ref, flops, flags,
 * and the input/output counts ONNX allows (min_in, max_in, min_out, max_out) */
static const kiln_op_def OPS[] = {
    /* ---- conv: shapes in src/ir/shape_conv.c, kernels in src/ref/{conv,pool,matmul}.c */
    {"Conv", {11, 22}, {11, 22}, kiln_shape_Conv, kiln_ref_Conv, kiln_flops_Conv, 0, 2, 3, 1, 1},
    {"ConvTranspose", {11, 22}, {11, 22}, kiln_shape_ConvTranspose, kiln_ref_ConvTranspose, kiln_flops_ConvTranspose, 0, 2, 3, 1, 1},
    {"BatchNormalization", {9, 14, 15}, {9, 14, 15}, kiln_shape_BatchNormalization, kiln_ref_BatchNormalization, kiln_flops_BatchNormalization, 0, 5, 5, 1, 5},
    {"Gemm", {13}, {13}, kiln_shape_Gemm, kiln_ref_Gemm, kiln_flops_Gemm, 0, 2, 3, 1, 1},
    {"MatMul", {13}, {13}, kiln_shape_MatMul, kiln_ref_MatMul, kiln_flops_MatMul, 0, 2, 2, 1, 1},
    {"MaxPool", {12, 22}, {12, 22}, kiln_shape_MaxPool, kiln_ref_MaxPool, kiln_flops_MaxPool, 0, 1, 1, 1, 2},
    {"AveragePool", {11, 19, 22}, {11, 19, 22}, kiln_shape_AveragePool, kiln_ref_AveragePool, kiln_flops_AveragePool, 0, 1, 1, 1, 1},
    {"GlobalAveragePool", {1, 22}, {1, 22}, kiln_shape_GlobalAveragePool, kiln_ref_GlobalAveragePool, kiln_flops_GlobalAveragePool, 0, 1, 1, 1, 1},
    {"GlobalMaxPool", {1, 22}, {1, 22}, kiln_shape_GlobalMaxPool, kiln_ref_GlobalMaxPool, kiln_flops_GlobalMaxPool, 0, 1, 1, 1, 1},
    /* ---- elementwise: shapes in src/ir/shape_elementwise.c, kernels in src/ref/{activation,binary,cast}.c */
    {"Relu", {13, 14}, {13, 14}, kiln_shape_Relu, kiln_ref_Relu, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"LeakyRelu", {6, 16}, {6, 16}, kiln_shape_LeakyRelu, kiln_ref_LeakyRelu, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"PRelu", {9, 16}, {9, 16}, kiln_shape_PRelu, kiln_ref_PRelu, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Sigmoid", {13}, {13}, kiln_shape_Sigmoid, kiln_ref_Sigmoid, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"HardSigmoid", {6, 22}, {6, 22}, kiln_shape_HardSigmoid, kiln_ref_HardSigmoid, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"HardSwish", {14, 22}, {14, 22}, kiln_shape_HardSwish, kiln_ref_HardSwish, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Tanh", {13}, {13}, kiln_shape_Tanh, kiln_ref_Tanh, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Erf", {13}, {13}, kiln_shape_Erf, kiln_ref_Erf, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Gelu", {20}, {20}, kiln_shape_Gelu, kiln_ref_Gelu, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Clip", {13}, {13}, kiln_shape_Clip, kiln_ref_Clip, kiln_flops_elementwise, 0, 1, 3, 1, 1},
    {"Add", {13, 14}, {13, 14}, kiln_shape_Add, kiln_ref_Add, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Sub", {13, 14}, {13, 14}, kiln_shape_Sub, kiln_ref_Sub, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Mul", {13, 14}, {13, 14}, kiln_shape_Mul, kiln_ref_Mul, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Div", {13, 14}, {13, 14}, kiln_shape_Div, kiln_ref_Div, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Pow", {13, 15}, {13, 15}, kiln_shape_Pow, kiln_ref_Pow, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Sqrt", {13}, {13}, kiln_shape_Sqrt, kiln_ref_Sqrt, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Exp", {13}, {13}, kiln_shape_Exp, kiln_ref_Exp, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Log", {13}, {13}, kiln_shape_Log, kiln_ref_Log, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Neg", {13}, {13}, kiln_shape_Neg, kiln_ref_Neg, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Abs", {13}, {13}, kiln_shape_Abs, kiln_ref_Abs, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Reciprocal", {13}, {13}, kiln_shape_Reciprocal, kiln_ref_Reciprocal, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Floor", {13}, {13}, kiln_shape_Floor, kiln_ref_Floor, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Ceil", {13}, {13}, kiln_shape_Ceil, kiln_ref_Ceil, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Equal", {13, 19}, {13, 19}, kiln_shape_Equal, kiln_ref_Equal, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Greater", {13}, {13}, kiln_shape_Greater, kiln_ref_Greater, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Less", {13}, {13}, kiln_shape_Less, kiln_ref_Less, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Not", {1}, {1}, kiln_shape_Not, kiln_ref_Not, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"And", {7}, {7}, kiln_shape_And, kiln_ref_And, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Where", {9, 16}, {9, 16}, kiln_shape_Where, kiln_ref_Where, kiln_flops_elementwise, 0, 3, 3, 1, 1},
    {"Cast", {13, 19, 21, 23, 24, 25}, {13, 19, 21, 23, 24, 25}, kiln_shape_Cast, kiln_ref_Cast, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Identity", {13, 14, 16, 19, 21, 23, 24, 25}, {13, 14, 16, 19, 21, 23, 24, 25}, kiln_shape_Identity, kiln_ref_Identity, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Dropout", {13, 22}, {13, 22}, kiln_shape_Dropout, kiln_ref_Dropout, kiln_flops_elementwise, 0, 1, 3, 1, 2},
    /* ---- reduce: shapes in src/ir/shape_reduce.c, kernels in src/ref/{reduce,softmax,topk}.c */
    {"Softmax", {13}, {13}, kiln_shape_Softmax, kiln_ref_Softmax, kiln_flops_Softmax, 0, 1, 1, 1, 1},
    {"LogSoftmax", {13}, {13}, kiln_shape_LogSoftmax, kiln_ref_LogSoftmax, kiln_flops_LogSoftmax, 0, 1, 1, 1, 1},
    {"LayerNormalization", {17}, {17}, kiln_shape_LayerNormalization, kiln_ref_LayerNormalization, kiln_flops_LayerNormalization, 0, 2, 3, 1, 3},
    {"ReduceMean", {13, 18}, {13, 18}, kiln_shape_ReduceMean, kiln_ref_ReduceMean, kiln_flops_elementwise, 0, 1, 2, 1, 1},
    {"ReduceSum", {13}, {13}, kiln_shape_ReduceSum, kiln_ref_ReduceSum, kiln_flops_elementwise, 0, 1, 2, 1, 1},
    {"ReduceMax", {13, 18, 20}, {13, 18, 20}, kiln_shape_ReduceMax, kiln_ref_ReduceMax, kiln_flops_elementwise, 0, 1, 2, 1, 1},
    {"ReduceMin", {13, 18, 20}, {13, 18, 20}, kiln_shape_ReduceMin, kiln_ref_ReduceMin, kiln_flops_elementwise, 0, 1, 2, 1, 1},
    {"ArgMax", {13}, {13}, kiln_shape_ArgMax, kiln_ref_ArgMax, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"TopK", {11, 24}, {11, 24}, kiln_shape_TopK, kiln_ref_TopK, kiln_flops_elementwise, 0, 1, 2, 2, 2},
    /* ---- tensor: shapes in src/ir/shape_tensor.c, kernels in src/ref/{reshape,transpose,expand,concat,slice,gather,constant}.c */
    {"Flatten", {13, 21, 23, 24, 25}, {13, 21, 23, 24, 25}, kiln_shape_Flatten, kiln_ref_Flatten, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Reshape", {13, 14, 19, 21, 23, 24, 25}, {13, 14, 19, 21, 23, 24, 25}, kiln_shape_Reshape, kiln_ref_Reshape, kiln_flops_elementwise, 0, 1, 2, 1, 1},
    {"Transpose", {13, 21, 23, 24, 25}, {13, 21, 23, 24, 25}, kiln_shape_Transpose, kiln_ref_Transpose, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Concat", {13}, {13}, kiln_shape_Concat, kiln_ref_Concat, kiln_flops_elementwise, 0, 1, 1048576, 1, 1},
    {"Split", {13, 18}, {13, 18}, kiln_shape_Split, kiln_ref_Split, kiln_flops_elementwise, 0, 1, 2, 1, 1048576},
    {"Slice", {13}, {13}, kiln_shape_Slice, kiln_ref_Slice, kiln_flops_elementwise, 0, 1, 5, 1, 1},
    {"Gather", {13}, {13}, kiln_shape_Gather, kiln_ref_Gather, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"GatherElements", {13}, {13}, kiln_shape_GatherElements, kiln_ref_GatherElements, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Squeeze", {13, 21, 23, 24, 25}, {13, 21, 23, 24, 25}, kiln_shape_Squeeze, kiln_ref_Squeeze, kiln_flops_elementwise, 0, 1, 2, 1, 1},
    {"Unsqueeze", {13, 21, 23, 24, 25}, {13, 21, 23, 24, 25}, kiln_shape_Unsqueeze, kiln_ref_Unsqueeze, kiln_flops_elementwise, 0, 1, 2, 1, 1},
    {"Expand", {13}, {13}, kiln_shape_Expand, kiln_ref_Expand, kiln_flops_elementwise, 0, 2, 2, 1, 1},
    {"Tile", {13}, {13}, kiln_shape_Tile, kiln_ref_Tile, kiln_flops_elementwise, 0, 2, 3, 1, 1},
    {"Pad", {13, 18, 19, 21, 23, 24, 25}, {13, 18, 19, 21, 23, 24, 25}, kiln_shape_Pad, kiln_ref_Pad, kiln_flops_elementwise, 0, 1, 4, 1, 1},
    {"Resize", {13, 18, 19}, {13, 18, 19}, kiln_shape_Resize, kiln_ref_Resize, kiln_flops_Resize, 0, 1, 4, 1, 1},
    {"Shape", {13, 15, 19, 21, 23, 24, 25}, {13, 15, 19, 21, 23, 24, 25}, kiln_shape_Shape, kiln_ref_Shape, kiln_flops_elementwise, KILN_OP_SHAPE_ONLY, 1, 1, 1, 1},
    {"Size", {13, 19, 21, 23, 24, 25}, {13, 19, 21, 23, 24, 25}, kiln_shape_Size, kiln_ref_Size, kiln_flops_elementwise, KILN_OP_SHAPE_ONLY, 1, 1, 1, 1},
    {"Constant", {13, 19, 21, 23, 24, 25}, {13, 19, 21, 23, 24, 25}, kiln_shape_Constant, kiln_ref_Constant, kiln_flops_elementwise, 0, 0, 0, 1, 1},
    {"ConstantOfShape", {9, 20, 21, 23, 24, 25}, {9, 20, 21, 23, 24, 25}, kiln_shape_ConstantOfShape, kiln_ref_ConstantOfShape, kiln_flops_elementwise, 0, 1, 1, 1, 1},
    {"Range", {11}, {11}, kiln_shape_Range, kiln_ref_Range, kiln_flops_elementwise, 0, 3, 3, 1, 1},
};

#define N_OPS ((int)(sizeof OPS / sizeof OPS[0]))

int kiln_op_count(void) { return N_OPS; }
const kiln_op_def *kiln_op_at(int i) { return i >= 0 && i < N_OPS ? &OPS[i] : NULL; }

const kiln_op_def *kiln_op_find(const char *domain, const char *op_type)
{
    if (domain && domain[0] && strcmp(domain, "ai.onnx")) return NULL;
    for (int i = 0; i < N_OPS; i++)
        if (!strcmp(OPS[i].name, op_type)) return &OPS[i];
    return NULL;
}

void kiln_op_resolve(kiln_node *n)
{
    static _Thread_local char why[160];
    const kiln_op_def *op = kiln_op_find(n->domain, n->op_type);
    n->op = op;
    n->version = 0;
    n->unsupported = NULL;
    if (!op) {
        if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
            n->unsupported = "op of a domain kiln does not implement";
        else
            n->unsupported = "op kiln does not implement";
        return;
    }
    for (int i = 0; i < KILN_OP_MAX_VERSIONS && op->all_versions[i]; i++)
        if (op->all_versions[i] <= n->opset) n->version = op->all_versions[i];
    if (!n->version) {
        n->unsupported = "op version older than any kiln implements";
        return;
    }
    bool have = false;
    for (int i = 0; i < KILN_OP_MAX_VERSIONS && op->versions[i]; i++)
        if (op->versions[i] == n->version) have = true;
    if (!have) {
        snprintf(why, sizeof why, "version %d of %s is not implemented", n->version, op->name);
        n->unsupported = why; /* copied by the caller into the graph's arena */
        return;
    }
    if (n->n_inputs < op->min_in || n->n_inputs > op->max_in || n->n_outputs < op->min_out ||
        n->n_outputs > op->max_out) {
        snprintf(why, sizeof why, "has %d inputs and %d outputs; ONNX's %s takes %d to %d and %d to %d", n->n_inputs,
                 n->n_outputs, op->name, op->min_in, op->max_in, op->min_out, op->max_out);
        n->unsupported = why;
        return;
    }
    for (int i = 0; i < op->min_in; i++)
        if (n->inputs[i] < 0) {
            snprintf(why, sizeof why, "required input #%d is empty", i);
            n->unsupported = why;
            return;
        }
    for (int i = 0; i < op->min_out; i++)
        if (n->outputs[i] < 0) {
            snprintf(why, sizeof why, "required output #%d is empty", i);
            n->unsupported = why;
            return;
        }
    if (!op->shape) n->unsupported = "no shape rule for this op yet";
    else if (!op->ref) n->unsupported = "no reference kernel for this op yet";
}
