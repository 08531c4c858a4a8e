/* The op registry: the one table that lists every op kiln knows, with its
 * ONNX versions, shape rule, reference kernel and cost. An op is found under
 * its own name everywhere: kiln_shape_<Op> (src/ir/shape_<family>.c), kiln_ref_<Op>
 * (src/ref/<family>.c), kiln_flops_<Op>. */
#include "ir/ops.h"
#include "ref/ref.h"

#include <stdio.h>
#include <string.h>

/* name, versions kiln implements, all since_versions reachable from opset
 * 13..KILN_MAX_OPSET (scripts/gen-op-versions.py), shape, ref, flops, flags */
static const kiln_op_def OPS[] = {
    /* ---- conv: shapes in src/ir/shape_conv.c, kernels in src/ref/conv.c */
    {"Conv", {11, 22}, {11, 22}, NULL, NULL, NULL, 0},
    {"ConvTranspose", {11, 22}, {11, 22}, NULL, NULL, NULL, 0},
    {"BatchNormalization", {9, 14, 15}, {9, 14, 15}, NULL, NULL, NULL, 0},
    {"Gemm", {13}, {13}, NULL, NULL, NULL, 0},
    {"MatMul", {13}, {13}, NULL, NULL, NULL, 0},
    {"MaxPool", {12, 22}, {12, 22}, NULL, NULL, NULL, 0},
    {"AveragePool", {11, 19, 22}, {11, 19, 22}, NULL, NULL, NULL, 0},
    {"GlobalAveragePool", {1, 22}, {1, 22}, NULL, NULL, NULL, 0},
    {"GlobalMaxPool", {1, 22}, {1, 22}, NULL, NULL, NULL, 0},
    /* ---- elementwise: shapes in src/ir/shape_elementwise.c, kernels in src/ref/elementwise.c */
    {"Relu", {13, 14}, {13, 14}, NULL, NULL, NULL, 0},
    {"LeakyRelu", {6, 16}, {6, 16}, NULL, NULL, NULL, 0},
    {"PRelu", {9, 16}, {9, 16}, NULL, NULL, NULL, 0},
    {"Sigmoid", {13}, {13}, NULL, NULL, NULL, 0},
    {"HardSigmoid", {6, 22}, {6, 22}, NULL, NULL, NULL, 0},
    {"HardSwish", {14, 22}, {14, 22}, NULL, NULL, NULL, 0},
    {"Tanh", {13}, {13}, NULL, NULL, NULL, 0},
    {"Erf", {13}, {13}, NULL, NULL, NULL, 0},
    {"Gelu", {20}, {20}, NULL, NULL, NULL, 0},
    {"Clip", {13}, {13}, NULL, NULL, NULL, 0},
    {"Add", {13, 14}, {13, 14}, NULL, NULL, NULL, 0},
    {"Sub", {13, 14}, {13, 14}, NULL, NULL, NULL, 0},
    {"Mul", {13, 14}, {13, 14}, NULL, NULL, NULL, 0},
    {"Div", {13, 14}, {13, 14}, NULL, NULL, NULL, 0},
    {"Pow", {13, 15}, {13, 15}, NULL, NULL, NULL, 0},
    {"Sqrt", {13}, {13}, NULL, NULL, NULL, 0},
    {"Exp", {13}, {13}, NULL, NULL, NULL, 0},
    {"Log", {13}, {13}, NULL, NULL, NULL, 0},
    {"Neg", {13}, {13}, NULL, NULL, NULL, 0},
    {"Abs", {13}, {13}, NULL, NULL, NULL, 0},
    {"Reciprocal", {13}, {13}, NULL, NULL, NULL, 0},
    {"Floor", {13}, {13}, NULL, NULL, NULL, 0},
    {"Ceil", {13}, {13}, NULL, NULL, NULL, 0},
    {"Equal", {13, 19}, {13, 19}, NULL, NULL, NULL, 0},
    {"Greater", {13}, {13}, NULL, NULL, NULL, 0},
    {"Less", {13}, {13}, NULL, NULL, NULL, 0},
    {"Not", {1}, {1}, NULL, NULL, NULL, 0},
    {"And", {7}, {7}, NULL, NULL, NULL, 0},
    {"Where", {9, 16}, {9, 16}, NULL, NULL, NULL, 0},
    {"Cast", {13, 19, 21, 23, 24}, {13, 19, 21, 23, 24}, NULL, NULL, NULL, 0},
    {"Identity", {13, 14, 16, 19, 21, 23, 24}, {13, 14, 16, 19, 21, 23, 24}, NULL, NULL, NULL, 0},
    {"Dropout", {13, 22}, {13, 22}, NULL, NULL, NULL, 0},
    /* ---- reduce: shapes in src/ir/shape_reduce.c, kernels in src/ref/reduce.c */
    {"Softmax", {13}, {13}, NULL, NULL, NULL, 0},
    {"LogSoftmax", {13}, {13}, NULL, NULL, NULL, 0},
    {"LayerNormalization", {17}, {17}, NULL, NULL, NULL, 0},
    {"ReduceMean", {13, 18}, {13, 18}, NULL, NULL, NULL, 0},
    {"ReduceSum", {13}, {13}, NULL, NULL, NULL, 0},
    {"ReduceMax", {13, 18, 20}, {13, 18, 20}, NULL, NULL, NULL, 0},
    {"ReduceMin", {13, 18, 20}, {13, 18, 20}, NULL, NULL, NULL, 0},
    {"ArgMax", {13}, {13}, NULL, NULL, NULL, 0},
    {"TopK", {11, 24}, {11, 24}, NULL, NULL, NULL, 0},
    /* ---- tensor: shapes in src/ir/shape_tensor.c, kernels in src/ref/tensor.c */
    {"Flatten", {13, 21, 23, 24}, {13, 21, 23, 24}, NULL, NULL, NULL, 0},
    {"Reshape", {13, 14, 19, 21, 23, 24}, {13, 14, 19, 21, 23, 24}, NULL, NULL, NULL, 0},
    {"Transpose", {13, 21, 23, 24}, {13, 21, 23, 24}, NULL, NULL, NULL, 0},
    {"Concat", {13}, {13}, NULL, NULL, NULL, 0},
    {"Split", {13, 18}, {13, 18}, NULL, NULL, NULL, 0},
    {"Slice", {13}, {13}, NULL, NULL, NULL, 0},
    {"Gather", {13}, {13}, NULL, NULL, NULL, 0},
    {"GatherElements", {13}, {13}, NULL, NULL, NULL, 0},
    {"Squeeze", {13, 21, 23, 24}, {13, 21, 23, 24}, NULL, NULL, NULL, 0},
    {"Unsqueeze", {13, 21, 23, 24}, {13, 21, 23, 24}, NULL, NULL, NULL, 0},
    {"Expand", {13}, {13}, NULL, NULL, NULL, 0},
    {"Tile", {13}, {13}, NULL, NULL, NULL, 0},
    {"Pad", {13, 18, 19, 21, 23, 24}, {13, 18, 19, 21, 23, 24}, NULL, NULL, NULL, 0},
    {"Resize", {13, 18, 19}, {13, 18, 19}, NULL, NULL, NULL, 0},
    {"Shape", {13, 15, 19, 21, 23, 24}, {13, 15, 19, 21, 23, 24}, NULL, NULL, NULL, KILN_OP_SHAPE_ONLY},
    {"Size", {13, 19, 21, 23, 24}, {13, 19, 21, 23, 24}, NULL, NULL, NULL, KILN_OP_SHAPE_ONLY},
    {"Constant", {13, 19, 21, 23, 24}, {13, 19, 21, 23, 24}, NULL, NULL, NULL, 0},
    {"ConstantOfShape", {9, 20, 21, 23, 24}, {9, 20, 21, 23, 24}, NULL, NULL, NULL, 0},
    {"Range", {11}, {11}, NULL, NULL, NULL, 0},
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
    if (!op->shape) n->unsupported = "no shape rule for this op yet";
    else if (!op->ref) n->unsupported = "no reference kernel for this op yet";
}
