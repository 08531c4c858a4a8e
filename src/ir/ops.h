/* Shape rules and cost functions of every op, by op name (see registry.c). */
#ifndef KILN_IR_OPS_H
#define KILN_IR_OPS_H

#include "ir/ir.h"

kiln_status kiln_shape_Conv(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_ConvTranspose(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_BatchNormalization(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Gemm(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_MatMul(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_MaxPool(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_AveragePool(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_GlobalAveragePool(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_GlobalMaxPool(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Relu(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_LeakyRelu(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_PRelu(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Sigmoid(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_HardSigmoid(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_HardSwish(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Tanh(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Erf(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Gelu(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Clip(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Add(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Sub(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Mul(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Div(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Pow(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Sqrt(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Exp(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Log(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Neg(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Abs(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Reciprocal(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Floor(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Ceil(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Equal(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Greater(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Less(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Not(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_And(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Where(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Cast(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Identity(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Dropout(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Softmax(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_LogSoftmax(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_LayerNormalization(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_ReduceMean(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_ReduceSum(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_ReduceMax(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_ReduceMin(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_ArgMax(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_TopK(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Flatten(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Reshape(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Transpose(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Concat(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Split(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Slice(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Gather(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_GatherElements(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Squeeze(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Unsqueeze(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Expand(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Tile(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Pad(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Resize(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Shape(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Size(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Constant(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_ConstantOfShape(const kiln_node *n, kiln_value *v);
kiln_status kiln_shape_Range(const kiln_node *n, kiln_value *v);

/* FLOPs (multiply-add = 2) for ops whose cost is not one per output element. */
double kiln_flops_Conv(const kiln_node *n, const kiln_value *v);
double kiln_flops_ConvTranspose(const kiln_node *n, const kiln_value *v);
double kiln_flops_Gemm(const kiln_node *n, const kiln_value *v);
double kiln_flops_MatMul(const kiln_node *n, const kiln_value *v);
double kiln_flops_MaxPool(const kiln_node *n, const kiln_value *v);
double kiln_flops_AveragePool(const kiln_node *n, const kiln_value *v);
double kiln_flops_GlobalAveragePool(const kiln_node *n, const kiln_value *v);
double kiln_flops_GlobalMaxPool(const kiln_node *n, const kiln_value *v);
double kiln_flops_BatchNormalization(const kiln_node *n, const kiln_value *v);
double kiln_flops_LayerNormalization(const kiln_node *n, const kiln_value *v);
double kiln_flops_Softmax(const kiln_node *n, const kiln_value *v);
double kiln_flops_LogSoftmax(const kiln_node *n, const kiln_value *v);
double kiln_flops_Resize(const kiln_node *n, const kiln_value *v);
/* One operation per output element: elementwise ops, reductions, copies. */
double kiln_flops_elementwise(const kiln_node *n, const kiln_value *v);

#endif
