#!/usr/bin/env python3
"""Writes models/tinynet.onnx, the small model bundled for scripts/quickstart:
a 64x64 image classifier with the shapes of a real CNN (Conv+BN+SiLU stem,
a residual block, a MaxPool, an upsample+concat neck, global pooling, Gemm,
Softmax) and a symbolic batch dim. Random weights from a fixed seed."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)
inits, nodes = [], []


def const(name, arr):
    inits.append(numpy_helper.from_array(np.asarray(arr), name))
    return name


def conv_bn(x, cin, cout, k, s, name, act):
    w = const(f"{name}.w", (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32))
    nodes.append(helper.make_node("Conv", [x, w], [f"{name}.conv"], name=f"{name}.conv",
                                  kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4))
    g = const(f"{name}.bn.g", rng.uniform(0.5, 1.5, cout).astype(np.float32))
    b = const(f"{name}.bn.b", rng.uniform(-0.1, 0.1, cout).astype(np.float32))
    m = const(f"{name}.bn.m", rng.uniform(-0.1, 0.1, cout).astype(np.float32))
    v = const(f"{name}.bn.v", rng.uniform(0.5, 1.5, cout).astype(np.float32))
    nodes.append(helper.make_node("BatchNormalization", [f"{name}.conv", g, b, m, v], [f"{name}.bn"], name=f"{name}.bn"))
    y = f"{name}.out"
    if act == "silu":
        nodes.append(helper.make_node("Sigmoid", [f"{name}.bn"], [f"{name}.sig"], name=f"{name}.sig"))
        nodes.append(helper.make_node("Mul", [f"{name}.bn", f"{name}.sig"], [y], name=f"{name}.silu"))
    else:
        nodes.append(helper.make_node("Relu", [f"{name}.bn"], [y], name=f"{name}.relu"))
    return y


x = conv_bn("images", 3, 16, 3, 2, "stem", "silu")                 # 32x32
x = conv_bn(x, 16, 32, 3, 2, "down1", "silu")                       # 16x16
r = conv_bn(x, 32, 32, 3, 1, "res.a", "relu")
r = conv_bn(r, 32, 32, 3, 1, "res.b", "relu")
nodes.append(helper.make_node("Add", [x, r], ["res.add"], name="res.add"))
nodes.append(helper.make_node("MaxPool", ["res.add"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))  # 8x8
p = conv_bn("pool", 32, 32, 1, 1, "lat", "silu")
scales = const("up.scales", np.array([1, 1, 2, 2], dtype=np.float32))
nodes.append(helper.make_node("Resize", [p, "", scales], ["up"], name="up", mode="nearest"))  # 16x16
nodes.append(helper.make_node("Concat", ["up", "res.add"], ["neck"], name="neck", axis=1))
y = conv_bn("neck", 64, 64, 3, 1, "head", "silu")
nodes.append(helper.make_node("GlobalAveragePool", [y], ["gap"], name="gap"))
nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flat", axis=1))
fw = const("fc.w", (rng.standard_normal((10, 64)) * 0.1).astype(np.float32))
fb = const("fc.b", (rng.standard_normal(10) * 0.1).astype(np.float32))
nodes.append(helper.make_node("Gemm", ["flat", fw, fb], ["logits"], name="fc", transB=1))
nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1))

graph = helper.make_graph(
    nodes, "tinynet",
    [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 64, 64])],
    [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
    inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln make-tinynet")
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "models", "tinynet.onnx")
onnx.save(model, out)
print(f"wrote {out} ({os.path.getsize(out)} bytes)")
