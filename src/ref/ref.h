/* Reference kernels of the `ref` backend, by op name (see src/ir/registry.c). */
#ifndef KILN_REF_H
#define KILN_REF_H

#include "ir/ir.h"

kiln_status kiln_ref_Conv(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_ConvTranspose(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_BatchNormalization(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Gemm(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_MatMul(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_MaxPool(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_AveragePool(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_GlobalAveragePool(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_GlobalMaxPool(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Relu(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_LeakyRelu(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_PRelu(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Sigmoid(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_HardSigmoid(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_HardSwish(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Tanh(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Erf(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Gelu(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Clip(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Add(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Sub(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Mul(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Div(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Pow(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Sqrt(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Exp(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Log(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Neg(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Abs(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Reciprocal(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Floor(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Ceil(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Equal(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Greater(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Less(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Not(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_And(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Where(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Cast(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Identity(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Dropout(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Softmax(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_LogSoftmax(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_LayerNormalization(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_ReduceMean(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_ReduceSum(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_ReduceMax(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_ReduceMin(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_ArgMax(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_TopK(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Flatten(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Reshape(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Transpose(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Concat(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Split(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Slice(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Gather(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_GatherElements(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Squeeze(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Unsqueeze(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Expand(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Tile(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Pad(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Resize(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Shape(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Size(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Constant(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_ConstantOfShape(const kiln_node *n, kiln_value *v);
kiln_status kiln_ref_Range(const kiln_node *n, kiln_value *v);

#endif
