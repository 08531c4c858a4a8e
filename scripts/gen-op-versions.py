#!/usr/bin/env python3
"""Prints, for each op of kiln's core set, the since_versions of its ONNX
definitions that a model of opset 13..MAX can resolve to. Used to write the
`all_versions` column of src/ir/registry.c; run it again when MAX moves."""
import sys
import onnx.defs

MAX = int(sys.argv[1]) if len(sys.argv) > 1 else 25
OPS = """Conv ConvTranspose BatchNormalization Relu LeakyRelu PRelu Sigmoid HardSigmoid
HardSwish Tanh Erf Gelu Clip Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Reciprocal Floor Ceil
Equal Greater Less Not And Where MaxPool AveragePool GlobalAveragePool GlobalMaxPool Gemm
MatMul Flatten Reshape Transpose Concat Split Slice Gather GatherElements Squeeze Unsqueeze
Expand Tile Pad Resize Softmax LogSoftmax LayerNormalization ReduceMean ReduceSum ReduceMax
ReduceMin ArgMax TopK Shape Size Constant ConstantOfShape Range Cast Identity Dropout""".split()

for op in OPS:
    vs = set()
    for opset in range(13, MAX + 1):
        try:
            vs.add(onnx.defs.get_schema(op, opset).since_version)
        except Exception:
            pass
    print(f'{op}: {sorted(vs)}')
