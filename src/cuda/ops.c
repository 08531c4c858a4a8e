/* The cuda backend's op table: every kernel kiln_cuda_<Op> by op name, with
 * its scratch-size function and whether it takes any strides (so that NHWC
 * tensors reach it without a layout change). Conv, BatchNormalization and
 * the float elementwise ops are normally lowered by the builder into fused
 * steps (src/builder/lower.c); their entries here serve the cases it does
 * not fuse (non-constant weights, integer tensors). */
#include <string.h>

#include "cuda/kc.h"

#define K(op) kiln_status kiln_cuda_##op(const kc_launch *L);
#define W(op) size_t kiln_cuda_##op##_ws(const kc_launch *L);
/* elementwise.cu */
K(Relu) K(LeakyRelu) K(PRelu) K(Sigmoid) K(HardSigmoid) K(HardSwish) K(Tanh) K(Erf) K(Gelu) K(Clip)
K(Add) K(Sub) K(Mul) K(Div) K(Pow) K(Sqrt) K(Exp) K(Log) K(Neg) K(Abs) K(Reciprocal) K(Floor) K(Ceil)
K(Equal) K(Greater) K(Less) K(Not) K(And) K(Where) K(Cast) K(Identity) K(Dropout)
/* pool.cu, resize.cu, reduce.cu, softmax.cu, pad.cu */
K(MaxPool) K(AveragePool) K(GlobalAveragePool) K(GlobalMaxPool) K(Resize) W(Resize)
K(ReduceMean) K(ReduceSum) K(ReduceMax) K(ReduceMin) K(ArgMax) K(TopK)
K(Softmax) K(LogSoftmax) K(LayerNormalization) K(Pad)
/* tensor.cu */
K(Transpose) K(Concat) K(Split) K(Slice) K(Gather) K(GatherElements) K(Expand) K(Tile)
K(Flatten) K(Reshape) K(Squeeze) K(Unsqueeze) K(ConstantOfShape) K(Range)
/* conv.c, gemm.c */
K(Conv) W(Conv) K(ConvTranspose) W(ConvTranspose) K(Gemm) W(Gemm) K(MatMul) W(MatMul)
#undef K
#undef W

#define S KC_OP_NHWC
static const kc_op OPS[] = {
    {"Relu", kiln_cuda_Relu, NULL, S},
    {"LeakyRelu", kiln_cuda_LeakyRelu, NULL, S},
    {"PRelu", kiln_cuda_PRelu, NULL, S},
    {"Sigmoid", kiln_cuda_Sigmoid, NULL, S},
    {"HardSigmoid", kiln_cuda_HardSigmoid, NULL, S},
    {"HardSwish", kiln_cuda_HardSwish, NULL, S},
    {"Tanh", kiln_cuda_Tanh, NULL, S},
    {"Erf", kiln_cuda_Erf, NULL, S},
    {"Gelu", kiln_cuda_Gelu, NULL, S},
    {"Clip", kiln_cuda_Clip, NULL, S},
    {"Add", kiln_cuda_Add, NULL, S},
    {"Sub", kiln_cuda_Sub, NULL, S},
    {"Mul", kiln_cuda_Mul, NULL, S},
    {"Div", kiln_cuda_Div, NULL, S},
    {"Pow", kiln_cuda_Pow, NULL, S},
    {"Sqrt", kiln_cuda_Sqrt, NULL, S},
    {"Exp", kiln_cuda_Exp, NULL, S},
    {"Log", kiln_cuda_Log, NULL, S},
    {"Neg", kiln_cuda_Neg, NULL, S},
    {"Abs", kiln_cuda_Abs, NULL, S},
    {"Reciprocal", kiln_cuda_Reciprocal, NULL, S},
    {"Floor", kiln_cuda_Floor, NULL, S},
    {"Ceil", kiln_cuda_Ceil, NULL, S},
    {"Equal", kiln_cuda_Equal, NULL, S},
    {"Greater", kiln_cuda_Greater, NULL, S},
    {"Less", kiln_cuda_Less, NULL, S},
    {"Not", kiln_cuda_Not, NULL, S},
    {"And", kiln_cuda_And, NULL, S},
    {"Where", kiln_cuda_Where, NULL, S},
    {"Cast", kiln_cuda_Cast, NULL, S},
    {"Identity", kiln_cuda_Identity, NULL, S | KC_OP_ALIAS},
    {"Dropout", kiln_cuda_Dropout, NULL, S},
    {"MaxPool", kiln_cuda_MaxPool, NULL, S},
    {"AveragePool", kiln_cuda_AveragePool, NULL, S},
    {"GlobalAveragePool", kiln_cuda_GlobalAveragePool, NULL, S},
    {"GlobalMaxPool", kiln_cuda_GlobalMaxPool, NULL, S},
    {"Resize", kiln_cuda_Resize, kiln_cuda_Resize_ws, S},
    {"ReduceMean", kiln_cuda_ReduceMean, NULL, 0},
    {"ReduceSum", kiln_cuda_ReduceSum, NULL, 0},
    {"ReduceMax", kiln_cuda_ReduceMax, NULL, 0},
    {"ReduceMin", kiln_cuda_ReduceMin, NULL, 0},
    {"ArgMax", kiln_cuda_ArgMax, NULL, 0},
    {"TopK", kiln_cuda_TopK, NULL, 0},
    {"Softmax", kiln_cuda_Softmax, NULL, 0},
    {"LogSoftmax", kiln_cuda_LogSoftmax, NULL, 0},
    {"LayerNormalization", kiln_cuda_LayerNormalization, NULL, 0},
    {"Pad", kiln_cuda_Pad, NULL, S},
    {"Transpose", kiln_cuda_Transpose, NULL, 0},
    {"Concat", kiln_cuda_Concat, NULL, S},
    {"Split", kiln_cuda_Split, NULL, S},
    {"Slice", kiln_cuda_Slice, NULL, S},
    {"Gather", kiln_cuda_Gather, NULL, 0},
    {"GatherElements", kiln_cuda_GatherElements, NULL, 0},
    {"Expand", kiln_cuda_Expand, NULL, 0},
    {"Tile", kiln_cuda_Tile, NULL, 0},
    {"Flatten", kiln_cuda_Flatten, NULL, KC_OP_ALIAS},
    {"Reshape", kiln_cuda_Reshape, NULL, KC_OP_ALIAS},
    {"Squeeze", kiln_cuda_Squeeze, NULL, KC_OP_ALIAS},
    {"Unsqueeze", kiln_cuda_Unsqueeze, NULL, KC_OP_ALIAS},
    {"ConstantOfShape", kiln_cuda_ConstantOfShape, NULL, 0},
    {"Range", kiln_cuda_Range, NULL, 0},
    {"Conv", kiln_cuda_Conv, kiln_cuda_Conv_ws, 0},
    {"ConvTranspose", kiln_cuda_ConvTranspose, kiln_cuda_ConvTranspose_ws, 0},
    {"Gemm", kiln_cuda_Gemm, kiln_cuda_Gemm_ws, 0},
    {"MatMul", kiln_cuda_MatMul, kiln_cuda_MatMul_ws, 0},
};
#undef S

const kc_op *kc_op_find(const char *op_type)
{
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (!strcmp(OPS[i].name, op_type)) return &OPS[i];
    return NULL;
}
