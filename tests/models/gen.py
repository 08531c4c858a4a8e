#!/usr/bin/env python3
"""Writes kiln's test models into OUT_DIR, deterministically (fixed seeds).

usage: gen.py OUT_DIR

Two families:
  * importer models (add.onnx, symbolic.onnx, ...): tiny graphs for the
    importer, shape inference and error paths; the bad ones are what kiln must
    refuse with a message naming the file and the node or tensor;
  * the zoo (zoo_*.onnx): small but real-shaped blocks of the vision and
    transformer models kiln is for, f32, random weights, batch dim "batch".

A manifest.json in OUT_DIR lists which file is which, and for each bad model
the strings of which kiln's error message must contain at least one
(tests/models/check_shapes.py reads it). Run it twice and the files are
byte-identical.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32 = TensorProto.FLOAT
I64 = TensorProto.INT64
OPSET = 17
IR_VERSION = {6: 3, 9: 4, 17: 8, 20: 9}


def model(nodes, inputs, outputs, inits=(), opset=OPSET, name="g", extra_opsets=(), value_info=()):
    g = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(inits),
                          value_info=list(value_info))
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(g, opset_imports=ops, producer_name="kiln-tests-gen")
    m.ir_version = IR_VERSION[opset]
    return m


def vi(name, shape, dtype=F32):
    return helper.make_tensor_value_info(name, dtype, shape)


class Weights:
    """Initializers from one seeded generator, in creation order."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.inits = []

    def add(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.array(arr, order="C"), name))
        return name

    def rand(self, name, shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
        s = scale if scale is not None else 1.0 / np.sqrt(max(fan_in, 1))
        return self.add(name, (self.rng.standard_normal(shape) * s).astype(np.float32))

    def const(self, name, values, dtype=np.int64):
        return self.add(name, np.array(values, dtype=dtype))


# ------------------------------------------------------------ importer models

def m_add():
    return model([helper.make_node("Add", ["A", "B"], ["C"], name="add")],
                 [vi("A", [2, 3]), vi("B", [2, 3])], [vi("C", [2, 3])])


def m_symbolic():
    w = Weights(1)
    nodes = [
        helper.make_node("Conv", ["input", w.rand("conv.w", [8, 3, 3, 3]), w.rand("conv.b", [8], 0.1)],
                         ["conv"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", w.rand("fc.w", [10, 8]), w.rand("fc.b", [10], 0.1)],
                         ["output"], name="fc", transB=1),
    ]
    return model(nodes, [vi("input", ["batch", 3, 8, 8])], [vi("output", ["batch", 10])], w.inits)


def m_anonymous_dims():
    """An input declared [-1, 3, '?', '?'], as exporters write free dims:
    each is its own unknown, so H and W need not be equal. A 1x1 conv with
    small exact weights (tests/unit/test_symbolic.c recomputes it)."""
    w = Weights(3)
    wt = np.array([[1, 2, 3], [-1, 0.5, 0]], np.float32).reshape(2, 3, 1, 1)
    nodes = [
        helper.make_node("Conv", ["x", w.add("anon.w", wt), w.add("anon.b", np.array([0.25, -0.5], np.float32))],
                         ["conv"], name="conv", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["conv"], ["y"], name="relu"),
    ]
    return model(nodes, [vi("x", [-1, 3, "?", "?"])], [vi("y", [-1, 2, "?", "?"])], w.inits)


def m_shape_subgraph():
    """The pattern torch.onnx writes for x.view(x.size(0), -1), plus a branch
    that depends on no input at all (constant folding must take it whole)."""
    w = Weights(2)
    nodes = [
        helper.make_node("Shape", ["x"], ["x_shape"], name="shape"),
        helper.make_node("Gather", ["x_shape", w.const("idx0", 0)], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", w.const("axes0", [0])], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", w.const("minus1", [-1])], ["new_shape"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "new_shape"], ["flat"], name="reshape"),
        # input-independent: Range(0, 24) -> Cast f32 -> Mul 0.5 -> Add to flat
        helper.make_node("Range", [w.const("r_start", 0), w.const("r_limit", 24), w.const("r_delta", 1)],
                         ["range"], name="range"),
        helper.make_node("Cast", ["range"], ["range_f"], name="cast", to=F32),
        helper.make_node("Mul", ["range_f", w.add("half", np.array(0.5, np.float32))], ["bias"], name="scale"),
        helper.make_node("Add", ["flat", "bias"], ["biased"], name="add_bias"),
    ]
    return model(nodes, [vi("x", ["batch", 4, 6])], [vi("flat", ["batch", 24]), vi("biased", ["batch", 24])],
                 w.inits)


def m_symbolic_head():
    """YOLOv8's detect head as torch exports it with a dynamic batch: each
    scale reshaped by Concat(Shape(x)[0], 144, -1), so the batch only
    survives through symbolic shape values; plus Shape(x, start=1), whose
    dims are all known though x's batch is not, and ConstantOfShape of a
    symbolic shape value."""
    w = Weights(3)
    one, minus1, c144 = w.const("one", [1]), w.const("minus1", [-1]), w.const("c144", [144])
    w.const("idx0", 0)
    w.const("axes0", [0])
    nodes, flats, inputs = [], [], []
    for i, hw in enumerate([8, 4, 2]):
        x = f"x{i}"
        inputs.append(vi(x, ["batch", 144, hw, hw]))
        nodes += [
            helper.make_node("Shape", [x], [f"s{i}"], name=f"shape{i}"),
            helper.make_node("Gather", [f"s{i}", "idx0"], [f"b{i}"], name=f"gather{i}", axis=0),
            helper.make_node("Unsqueeze", [f"b{i}", "axes0"], [f"bu{i}"], name=f"unsqueeze{i}"),
            helper.make_node("Concat", [f"bu{i}", c144, minus1], [f"t{i}"], name=f"concat{i}", axis=0),
            helper.make_node("Reshape", [x, f"t{i}"], [f"flat{i}"], name=f"reshape{i}"),
        ]
        flats.append(f"flat{i}")
    nodes += [
        helper.make_node("Concat", flats, ["cat"], name="cat", axis=2),
        helper.make_node("Split", ["cat", w.const("split", [64, 80])], ["box", "cls"], name="split", axis=1),
        helper.make_node("Slice", ["box", w.const("slice_start", [0]), w.const("slice_end", [4]), one], ["box4"], name="slice"),
        helper.make_node("Sigmoid", ["cls"], ["cls_sig"], name="sigmoid"),
        helper.make_node("Concat", ["box4", "cls_sig"], ["output"], name="out_cat", axis=1),
        # Shape(x0, start=1) = [144, 8, 8] whatever the batch
        helper.make_node("Shape", ["x0"], ["tail"], name="shape_tail", start=1),
        helper.make_node("Concat", [minus1, "tail"], ["t_tail"], name="concat_tail", axis=0),
        helper.make_node("Reshape", ["x0", "t_tail"], ["same"], name="reshape_tail"),
        helper.make_node("Concat", ["bu0", w.const("c2", [2])], ["t_zeros"], name="concat_zeros", axis=0),
        helper.make_node("ConstantOfShape", ["t_zeros"], ["zeros"], name="zeros"),
    ]
    # declared without dims: "batch" in kiln's answer must come from inference
    outputs = [vi("output", [None, None, None]), vi("same", [None, None, None, None]), vi("zeros", [None, None])]
    return model(nodes, inputs, outputs, w.inits)


EXT_OFFSET_BIAS = 64
EXT_OFFSET_WEIGHT = 96


def ext_tensor(name, shape, location, offset, length):
    t = TensorProto(name=name, data_type=F32, dims=shape)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def m_external(location="external.bin"):
    """Conv whose weight and bias live in external.bin at non-zero offsets."""
    wshape, bshape = [8, 4, 3, 3], [8]
    inits = [ext_tensor("conv.w", wshape, location, EXT_OFFSET_WEIGHT, 4 * int(np.prod(wshape))),
             ext_tensor("conv.b", bshape, location, EXT_OFFSET_BIAS, 4 * 8)]
    nodes = [helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["y"], name="conv",
                              pads=[1, 1, 1, 1], kernel_shape=[3, 3])]
    return model(nodes, [vi("x", [1, 4, 8, 8])], [vi("y", [1, 8, 8, 8])], inits)


def external_bin():
    rng = np.random.default_rng(3)
    w = (rng.standard_normal([8, 4, 3, 3]) / 6).astype("<f4")
    b = (rng.standard_normal([8]) * 0.1).astype("<f4")
    head = b"KILN external data test: bytes before the first tensor\n".ljust(EXT_OFFSET_BIAS, b"#")
    data = head + b.tobytes()
    assert len(data) == EXT_OFFSET_WEIGHT
    return data + w.tobytes() + b"trailing bytes after the last tensor\n"


def m_cast_f64():
    """An f64 graph input: the ref backend runs it, the cuda backend refuses it by name."""
    return model([helper.make_node("Cast", ["x"], ["y"], name="to_f32", to=TensorProto.FLOAT)],
                 [vi("x", [2, 3], TensorProto.DOUBLE)], [vi("y", [2, 3])])


def m_old_opset():
    """Opset 6: below the oldest opset kiln reads (7), refused at load."""
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [1, 4])], [vi("y", [1, 4])],
                 opset=6)


def m_unknown_op():
    return model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                  helper.make_node("FooBar", ["r"], ["y"], name="mystery_node")],
                 [vi("x", [1, 4])], [vi("y", [1, 4])])


def m_contradiction():
    w = Weights(4)
    nodes = [helper.make_node("Gemm", ["x", w.rand("fc.w", [10, 8]), w.rand("fc.b", [10])], ["logits"],
                              name="fc", transB=1)]
    return model(nodes, [vi("x", [1, 8])], [vi("logits", [1, 5])], w.inits)


def m_cycle():
    return model([helper.make_node("Add", ["x", "b"], ["a"], name="cycle_add"),
                  helper.make_node("Relu", ["a"], ["b"], name="cycle_relu")],
                 [vi("x", [1, 4])], [vi("a", [1, 4])])


def m_custom_domain():
    return model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                  helper.make_node("MyOp", ["r"], ["y"], name="custom_node", domain="com.example")],
                 [vi("x", [1, 4])], [vi("y", [1, 4])], extra_opsets=[("com.example", 1)])


# ------------------------------------------------------------------ the zoo

class Builder:
    """Node list + seeded initializers; every node gets a readable unique name."""

    def __init__(self, seed):
        self.w = Weights(seed)
        self.nodes = []
        self.count = {}

    def uid(self, base):
        self.count[base] = self.count.get(base, -1) + 1
        return f"{base}{self.count[base]}" if self.count[base] else base

    def node(self, op, inputs, name=None, n_out=1, **attrs):
        name = self.uid(name or op.lower())
        outs = [name] if n_out == 1 else [f"{name}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x, cin, cout, k=1, stride=1, group=1, bias=True, name="conv"):
        name = self.uid(name)
        ins = [x, self.w.rand(f"{name}.w", [cout, cin // group, k, k])]
        if bias:
            ins.append(self.w.rand(f"{name}.b", [cout], 0.1))
        self.nodes.append(helper.make_node("Conv", ins, [name], name=name, kernel_shape=[k, k],
                                           strides=[stride, stride], pads=[k // 2] * 4, group=group))
        return name

    def bn(self, x, c, name="bn"):
        name = self.uid(name)
        r = self.w.rng
        ins = [x,
               self.w.add(f"{name}.scale", (1 + 0.1 * r.standard_normal(c)).astype(np.float32)),
               self.w.add(f"{name}.bias", (0.1 * r.standard_normal(c)).astype(np.float32)),
               self.w.add(f"{name}.mean", (0.1 * r.standard_normal(c)).astype(np.float32)),
               self.w.add(f"{name}.var", (0.5 + r.random(c)).astype(np.float32))]
        self.nodes.append(helper.make_node("BatchNormalization", ins, [name], name=name, epsilon=1e-5))
        return name

    def conv_bn(self, x, cin, cout, k=1, stride=1, group=1, act="relu"):
        y = self.bn(self.conv(x, cin, cout, k, stride, group, bias=False), cout)
        if act == "relu":
            y = self.node("Relu", [y])
        elif act == "hardswish":
            y = self.node("HardSwish", [y])
        return y

    def silu(self, x):
        return self.node("Mul", [x, self.node("Sigmoid", [x])], name="silu")

    def conv_silu(self, x, cin, cout, k=1, stride=1):
        """YOLOv8's Conv module as exported: Conv (BN folded) + SiLU."""
        return self.silu(self.conv(x, cin, cout, k, stride))

    def model(self, inputs, outputs, opset=OPSET, name="g"):
        return model(self.nodes, inputs, outputs, self.w.inits, opset=opset, name=name)


def z_resnet_basic():
    b = Builder(10)
    y = b.conv_bn("x", 16, 16, 3)
    y = b.conv_bn(y, 16, 16, 3, act=None)
    y = b.node("Relu", [b.node("Add", [y, "x"], name="residual")], name="out_relu")
    b.nodes[-1].output[0] = "y"
    return b.model([vi("x", ["batch", 16, 16, 16])], [vi("y", ["batch", 16, 16, 16])], name="resnet_basic")


def z_resnet_bottleneck():
    b = Builder(11)
    y = b.conv_bn("x", 16, 8, 1)
    y = b.conv_bn(y, 8, 8, 3, stride=2)
    y = b.conv_bn(y, 8, 32, 1, act=None)
    sc = b.conv_bn("x", 16, 32, 1, stride=2, act=None)  # projection shortcut
    b.node("Relu", [b.node("Add", [y, sc], name="residual")], name="out_relu")
    b.nodes[-1].output[0] = "y"
    return b.model([vi("x", ["batch", 16, 16, 16])], [vi("y", ["batch", 32, 8, 8])], name="resnet_bottleneck")


def z_mobilenetv3():
    b = Builder(12)
    c, e, s = 16, 48, 12
    y = b.conv_bn("x", c, e, 1, act="hardswish")                  # 1x1 expand
    y = b.conv_bn(y, e, e, 3, group=e, act="hardswish")           # depthwise 3x3
    # squeeze-excite, as torchvision exports it (Hardsigmoid alpha 1/6)
    se = b.node("GlobalAveragePool", [y], name="se_pool")
    se = b.node("Relu", [b.conv(se, e, s, name="se_fc1")], name="se_relu")
    se = b.node("HardSigmoid", [b.conv(se, s, e, name="se_fc2")], name="se_gate", alpha=1.0 / 6, beta=0.5)
    y = b.node("Mul", [y, se], name="se_scale")
    y = b.conv_bn(y, e, c, 1, act=None)                           # 1x1 project
    b.node("Add", [y, "x"], name="residual")
    b.nodes[-1].output[0] = "y"
    return b.model([vi("x", ["batch", c, 16, 16])], [vi("y", ["batch", c, 16, 16])], name="mobilenetv3_block")


def c2f(b, x, cin, cout, n=2):
    c = cout // 2
    y = b.conv_silu(x, cin, 2 * c)
    parts = b.node("Split", [y, b.w.const(b.uid("split_sizes"), [c, c])], name="split", n_out=2, axis=1)
    outs = list(parts)
    cur = parts[1]
    for _ in range(n):                                            # Bottleneck(shortcut=True)
        t = b.conv_silu(b.conv_silu(cur, c, c, 3), c, c, 3)
        cur = b.node("Add", [cur, t], name="bottleneck_add")
        outs.append(cur)
    cat = b.node("Concat", outs, name="c2f_concat", axis=1)
    return b.conv_silu(cat, (2 + n) * c, cout)


def z_c2f():
    b = Builder(13)
    c2f(b, "x", 16, 32)
    b.nodes[-1].output[0] = "y"
    return b.model([vi("x", ["batch", 16, 16, 16])], [vi("y", ["batch", 32, 16, 16])], name="yolov8_c2f")


def z_sppf():
    b = Builder(14)
    y = b.conv_silu("x", 32, 16)
    pools = [y]
    for _ in range(3):
        pools.append(b.node("MaxPool", [pools[-1]], name="pool", kernel_shape=[5, 5], strides=[1, 1],
                            pads=[2, 2, 2, 2]))
    cat = b.node("Concat", pools, name="sppf_concat", axis=1)
    b.conv_silu(cat, 64, 32)
    b.nodes[-1].output[0] = "y"
    return b.model([vi("x", ["batch", 32, 8, 8])], [vi("y", ["batch", 32, 8, 8])], name="yolov8_sppf")


def z_neck():
    b = Builder(15)
    scales = b.w.add("up_scales", np.array([1, 1, 2, 2], np.float32))
    up = b.node("Resize", ["p5", "", scales], name="upsample", mode="nearest",
                coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    cat = b.node("Concat", [up, "p4"], name="neck_concat", axis=1)
    c2f(b, cat, 48, 16, n=1)
    b.nodes[-1].output[0] = "y"
    return b.model([vi("p5", ["batch", 32, 4, 4]), vi("p4", ["batch", 16, 8, 8])],
                   [vi("y", ["batch", 16, 8, 8])], name="yolov8_neck")


def anchors_for(sizes, strides):
    pts, st = [], []
    for (h, w), s in zip(sizes, strides):
        sy, sx = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
        pts.append(np.stack([sx.ravel(), sy.ravel()], 0))
        st.append(np.full(h * w, s))
    return (np.concatenate(pts, 1)[None].astype(np.float32),
            np.concatenate(st)[None, None].astype(np.float32))


def z_detect_head():
    """YOLOv8 Detect: per scale box (4*reg_max) + class branches, DFL, dist2bbox."""
    b = Builder(16)
    reg_max, nc, c = 16, 4, 16
    feats = [("p3", 8, 8, 8), ("p4", 4, 4, 16)]
    flat = []
    for name, h, w, s in feats:
        box = b.conv(b.conv_silu(b.conv_silu(name, c, c, 3), c, c, 3), c, 4 * reg_max)
        cls = b.conv(b.conv_silu(b.conv_silu(name, c, c, 3), c, c, 3), c, nc)
        cat = b.node("Concat", [box, cls], name="head_concat", axis=1)
        flat.append(b.node("Reshape", [cat, b.w.const(b.uid("flat_shape"), [0, 4 * reg_max + nc, -1])],
                           name="head_flatten"))
    x = b.node("Concat", flat, name="scales_concat", axis=2)                  # [N, 68, A]
    box, cls = b.node("Split", [x, b.w.const("split_box_cls", [4 * reg_max, nc])], name="split",
                      n_out=2, axis=1)
    # DFL: softmax over reg_max bins, expectation via a 1x1 conv with arange weights
    d = b.node("Reshape", [box, b.w.const("dfl_shape", [0, 4, reg_max, -1])], name="dfl_reshape")
    d = b.node("Transpose", [d], name="dfl_transpose", perm=[0, 2, 1, 3])   # [N, 16, 4, A]
    d = b.node("Softmax", [d], name="dfl_softmax", axis=1)
    d = b.node("Conv", [d, b.w.add("dfl.w", np.arange(reg_max, dtype=np.float32).reshape(1, reg_max, 1, 1))],
               name="dfl_conv", kernel_shape=[1, 1])
    d = b.node("Reshape", [d, b.w.const("dist_shape", [0, 4, -1])], name="dfl_out")   # [N, 4, A]
    # dist2bbox (xywh) with anchors, then * strides
    anchors, strides = anchors_for([(h, w) for _, h, w, _ in feats], [s for *_, s in feats])
    b.w.add("anchors", anchors)
    b.w.add("strides", strides)
    st2, en2, ax = b.w.const("s0", [0]), b.w.const("s2", [2]), b.w.const("ax1", [1])
    en4 = b.w.const("s4", [4])
    lt = b.node("Slice", [d, st2, en2, ax], name="slice_lt")
    rb = b.node("Slice", [d, en2, en4, ax], name="slice_rb")
    x1y1 = b.node("Sub", ["anchors", lt], name="x1y1")
    x2y2 = b.node("Add", ["anchors", rb], name="x2y2")
    cxy = b.node("Div", [b.node("Add", [x1y1, x2y2], name="sum_xy"),
                         b.w.add("two", np.array(2.0, np.float32))], name="c_xy")
    wh = b.node("Sub", [x2y2, x1y1], name="wh")
    dbox = b.node("Mul", [b.node("Concat", [cxy, wh], name="box_concat", axis=1), "strides"], name="dbox")
    b.node("Concat", [dbox, b.node("Sigmoid", [cls], name="cls_sigmoid")], name="detections", axis=1)
    n_anchors = sum(h * w for _, h, w, _ in feats)
    return b.model([vi(n, ["batch", c, h, w]) for n, h, w, _ in feats],
                   [vi("detections", ["batch", 4 + nc, n_anchors])], name="yolov8_detect_head")


def z_transformer():
    """Pre-LN encoder layer (ViT-style), written as the torch exporter does."""
    b = Builder(17)
    seq, d, heads, ff = 8, 32, 4, 64
    dh = d // heads

    def ln(x, name):
        return b.node("LayerNormalization",
                      [x, b.w.add(f"{name}.g", (1 + 0.1 * b.w.rng.standard_normal(d)).astype(np.float32)),
                       b.w.add(f"{name}.b", (0.1 * b.w.rng.standard_normal(d)).astype(np.float32))],
                      name=name, axis=-1, epsilon=1e-5)

    def linear(x, cin, cout, name):
        return b.node("Add", [b.node("MatMul", [x, b.w.rand(f"{name}.w", [cin, cout], 1 / np.sqrt(cin))],
                                     name=f"{name}_matmul"),
                              b.w.rand(f"{name}.b", [cout], 0.1)], name=f"{name}_bias")

    heads_shape = b.w.const("heads_shape", [0, 0, heads, dh])
    h = ln("x", "ln1")

    def split_heads(t, perm, name):
        return b.node("Transpose", [b.node("Reshape", [t, heads_shape], name=f"{name}_reshape")],
                      name=f"{name}_transpose", perm=perm)

    q = split_heads(linear(h, d, d, "q"), [0, 2, 1, 3], "q")            # [N, H, S, dh]
    k = split_heads(linear(h, d, d, "k"), [0, 2, 3, 1], "k")            # [N, H, dh, S]
    v = split_heads(linear(h, d, d, "v"), [0, 2, 1, 3], "v")
    att = b.node("MatMul", [q, k], name="qk")
    att = b.node("Div", [att, b.w.add("sqrt_dh", np.array(np.sqrt(dh), np.float32))], name="scale")
    att = b.node("Softmax", [att], name="softmax", axis=-1)
    o = b.node("MatMul", [att, v], name="av")
    o = b.node("Transpose", [o], name="merge_transpose", perm=[0, 2, 1, 3])
    o = b.node("Reshape", [o, b.w.const("merge_shape", [0, 0, d])], name="merge_reshape")
    x1 = b.node("Add", ["x", linear(o, d, d, "proj")], name="residual1")
    m = linear(ln(x1, "ln2"), d, ff, "fc1")
    m = b.node("Gelu", [m], name="gelu")
    b.node("Add", [x1, linear(m, ff, d, "fc2")], name="residual2")
    b.nodes[-1].output[0] = "y"
    return b.model([vi("x", ["batch", seq, d])], [vi("y", ["batch", seq, d])], opset=20,
                   name="transformer_encoder")


# --------------------------------------------------------------------- main

VALID = {
    "add.onnx": m_add,
    "symbolic.onnx": m_symbolic,
    "anonymous_dims.onnx": m_anonymous_dims,
    "shape_subgraph.onnx": m_shape_subgraph,
    "symbolic_head.onnx": m_symbolic_head,
    "external.onnx": m_external,
    "cast_f64.onnx": m_cast_f64,
}

ZOO = {
    "zoo_resnet_basic.onnx": z_resnet_basic,
    "zoo_resnet_bottleneck.onnx": z_resnet_bottleneck,
    "zoo_mobilenetv3_block.onnx": z_mobilenetv3,
    "zoo_yolov8_c2f.onnx": z_c2f,
    "zoo_yolov8_sppf.onnx": z_sppf,
    "zoo_yolov8_neck.onnx": z_neck,
    "zoo_yolov8_detect_head.onnx": z_detect_head,
    "zoo_transformer_encoder.onnx": z_transformer,
}

# Bad models: kiln must refuse them (exit 1); "expect_any": its message must
# contain at least one of these strings besides the file's name. "at": whether
# the refusal may come only when an engine is built (kiln.h: a load does not
# fail on ops kiln cannot run; `inspect` lists them, `run` refuses them).
BAD = {
    "external_escape.onnx": {"make": lambda: m_external("../../etc/passwd"),
                             "expect_any": ["../../etc/passwd", "conv.w", "conv.b"], "at": "load",
                             "escape": True},
    "external_missing.onnx": {"make": lambda: m_external("no_such_file.bin"),
                              "expect_any": ["no_such_file.bin", "conv.w", "conv.b"], "at": "load"},
    "old_opset.onnx": {"make": m_old_opset, "expect_any": ["opset"], "at": "load"},
    "unknown_op.onnx": {"make": m_unknown_op, "expect_any": ["mystery_node"], "at": "build"},
    "contradiction.onnx": {"make": m_contradiction, "expect_any": ["logits", "fc"], "at": "load"},
    "truncated.onnx": {"make": None, "expect_any": [], "at": "load"},
    "not_onnx.onnx": {"make": None, "expect_any": [], "at": "load"},
    "cycle.onnx": {"make": m_cycle, "expect_any": ["cycle_add", "cycle_relu", "cycle"], "at": "load"},
    "custom_domain.onnx": {"make": m_custom_domain, "expect_any": ["custom_node"], "at": "build"},
}


def save(out, name, m, check=True):
    if check:
        onnx.checker.check_model(m, full_check=True)
    data = m.SerializeToString()
    write(out, name, data)
    return data


def write(out, name, data):
    path = os.path.join(out, name)
    with open(path, "wb") as f:
        f.write(data)
    print(f"wrote {path} ({len(data)} bytes)")
    assert len(data) < 1 << 20, f"{name} is over 1 MB"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write(out, "external.bin", external_bin())
    for name, make in {**VALID, **ZOO}.items():
        m = make()
        if name == "external.onnx":
            # the checker resolves external data against the model's folder
            write(out, name, m.SerializeToString())
            onnx.checker.check_model(os.path.join(out, name), full_check=True)
        else:
            save(out, name, m)
    manifest = {"valid": list(VALID), "zoo": list(ZOO), "bad": {}}
    for name, spec in BAD.items():
        if name == "truncated.onnx":
            full = m_symbolic().SerializeToString()
            write(out, name, full[: len(full) // 2])
        elif name == "not_onnx.onnx":
            write(out, name, b"This is a text file, not an ONNX model.\nkiln must say so, not crash.\n")
        else:
            write(out, name, spec["make"]().SerializeToString())
        manifest["bad"][name] = {k: v for k, v in spec.items() if k != "make"}
    write(out, "manifest.json", (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())


# --------------------------------------------- old op versions (import adapters)
# Pairs: adapt_<case>.onnx holds an op version older than kiln implements,
# which import rewrites into a native form (src/ir/adapt_*.c);
# adapt_<case>_new.onnx computes the same with the newer form ONNX gives
# for it. tests/unit/test_adapt.c runs both on the same input and compares.
# Every input is "x", f32.

ADAPT_IR = {7: 3, 9: 4, 10: 5, 11: 6, 13: 7}


def adapt_model(nodes, x_shape, outputs, opset, inits=()):
    g = helper.make_graph(list(nodes), "adapt", [vi("x", x_shape)], list(outputs), list(inits))
    if ADAPT_IR[opset] < 4:  # IR 3: initializers are graph inputs too
        g.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="kiln-tests-gen")
    m.ir_version = ADAPT_IR[opset]
    return m


def i64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def f32(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.float32), name)


def m_adapt_split2():
    return adapt_model([helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=1, split=[2, 4])],
                       [2, 6], [vi("a", [2, 2]), vi("b", [2, 4])], 9)


def m_adapt_split2_new():
    return adapt_model([helper.make_node("Split", ["x", "s"], ["a", "b"], name="split", axis=1)],
                       [2, 6], [vi("a", [2, 2]), vi("b", [2, 4])], 13, [i64("s", [2, 4])])


def m_adapt_unsqueeze11():
    return adapt_model([helper.make_node("Unsqueeze", ["x"], ["y"], name="unsq", axes=[0, -1])],
                       [3, 4], [vi("y", [1, 3, 4, 1])], 11)


def m_adapt_unsqueeze11_new():
    return adapt_model([helper.make_node("Unsqueeze", ["x", "axes"], ["y"], name="unsq")],
                       [3, 4], [vi("y", [1, 3, 4, 1])], 13, [i64("axes", [0, -1])])


def m_adapt_squeeze1():
    return adapt_model([helper.make_node("Squeeze", ["x"], ["y"], name="sq", axes=[0, 2])],
                       [1, 3, 1, 4], [vi("y", [3, 4])], 9)


def m_adapt_squeeze1_new():
    return adapt_model([helper.make_node("Squeeze", ["x", "axes"], ["y"], name="sq")],
                       [1, 3, 1, 4], [vi("y", [3, 4])], 13, [i64("axes", [0, 2])])


def m_adapt_reducesum11():
    return adapt_model([helper.make_node("ReduceSum", ["x"], ["y"], name="rsum", axes=[-1, 0], keepdims=0),
                        helper.make_node("ReduceSum", ["x"], ["z"], name="rsum_all")],
                       [2, 3, 4], [vi("y", [3]), vi("z", [1, 1, 1])], 11)


def m_adapt_reducesum11_new():
    return adapt_model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="rsum", keepdims=0),
                        helper.make_node("ReduceSum", ["x"], ["z"], name="rsum_all")],
                       [2, 3, 4], [vi("y", [3]), vi("z", [1, 1, 1])], 13, [i64("axes", [-1, 0])])


def m_adapt_pad2():
    return adapt_model([helper.make_node("Pad", ["x"], ["y"], name="pad", pads=[0, 0, 1, 2, 0, 0, 2, 1], value=1.5),
                        helper.make_node("Pad", ["x"], ["z"], name="pad_reflect", mode="reflect",
                                         pads=[0, 0, 1, 1, 0, 0, 2, 1])],
                       [1, 2, 3, 3], [vi("y", [1, 2, 6, 6]), vi("z", [1, 2, 6, 5])], 9)


def m_adapt_pad2_new():
    return adapt_model([helper.make_node("Pad", ["x", "pads", "value"], ["y"], name="pad"),
                        helper.make_node("Pad", ["x", "pads_r"], ["z"], name="pad_reflect", mode="reflect")],
                       [1, 2, 3, 3], [vi("y", [1, 2, 6, 6]), vi("z", [1, 2, 6, 5])], 13,
                       [i64("pads", [0, 0, 1, 2, 0, 0, 2, 1]), f32("value", 1.5), i64("pads_r", [0, 0, 1, 1, 0, 0, 2, 1])])


def m_adapt_clip6():
    return adapt_model([helper.make_node("Clip", ["x"], ["y"], name="clip", min=-0.5, max=0.5),
                        helper.make_node("Clip", ["x"], ["z"], name="clip_max", max=0.25)],
                       [2, 8], [vi("y", [2, 8]), vi("z", [2, 8])], 9)


def m_adapt_clip6_new():
    return adapt_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip"),
                        helper.make_node("Clip", ["x", "", "hi2"], ["z"], name="clip_max")],
                       [2, 8], [vi("y", [2, 8]), vi("z", [2, 8])], 13,
                       [f32("lo", -0.5), f32("hi", 0.5), f32("hi2", 0.25)])


def m_adapt_slice1():
    return adapt_model([helper.make_node("Slice", ["x"], ["y"], name="slice", starts=[1, -3], ends=[3, 100], axes=[0, 2]),
                        helper.make_node("Slice", ["x"], ["z"], name="slice_all", starts=[0, 1, 0], ends=[1, -1, 2])],
                       [3, 5, 4], [vi("y", [2, 5, 3]), vi("z", [1, 3, 2])], 9)


def m_adapt_slice1_new():
    return adapt_model([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"], name="slice"),
                        helper.make_node("Slice", ["x", "s2", "e2"], ["z"], name="slice_all")],
                       [3, 5, 4], [vi("y", [2, 5, 3]), vi("z", [1, 3, 2])], 13,
                       [i64("s", [1, -3]), i64("e", [3, 100]), i64("a", [0, 2]), i64("s2", [0, 1, 0]), i64("e2", [1, -1, 2])])


def m_adapt_upsample9():
    return adapt_model([helper.make_node("Upsample", ["x", "scales"], ["y"], name="up", mode="nearest")],
                       [1, 2, 3, 4], [vi("y", [1, 2, 6, 12])], 9, [f32("scales", [1, 1, 2, 3])])


def m_adapt_upsample9_new():
    return adapt_model([helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="nearest",
                                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
                       [1, 2, 3, 4], [vi("y", [1, 2, 6, 12])], 13, [f32("scales", [1, 1, 2, 3])])


def m_adapt_upsample7():
    return adapt_model([helper.make_node("Upsample", ["x"], ["y"], name="up", mode="linear", scales=[1.0, 1.0, 2.0, 2.0])],
                       [1, 2, 3, 4], [vi("y", [1, 2, 6, 8])], 7)


def m_adapt_upsample7_new():
    return adapt_model([helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="linear",
                                         coordinate_transformation_mode="asymmetric")],
                       [1, 2, 3, 4], [vi("y", [1, 2, 6, 8])], 13, [f32("scales", [1, 1, 2, 2])])


def m_adapt_resize10():
    return adapt_model([helper.make_node("Resize", ["x", "down"], ["y"], name="down", mode="nearest"),
                        helper.make_node("Resize", ["x", "up"], ["z"], name="up", mode="linear")],
                       [1, 1, 4, 6], [vi("y", [1, 1, 2, 3]), vi("z", [1, 1, 8, 12])], 10,
                       [f32("down", [1, 1, 0.5, 0.5]), f32("up", [1, 1, 2, 2])])


def m_adapt_resize10_new():
    return adapt_model([helper.make_node("Resize", ["x", "", "down"], ["y"], name="down", mode="nearest",
                                         coordinate_transformation_mode="asymmetric", nearest_mode="ceil"),
                        helper.make_node("Resize", ["x", "", "up"], ["z"], name="up", mode="linear",
                                         coordinate_transformation_mode="asymmetric")],
                       [1, 1, 4, 6], [vi("y", [1, 1, 2, 3]), vi("z", [1, 1, 8, 12])], 13,
                       [f32("down", [1, 1, 0.5, 0.5]), f32("up", [1, 1, 2, 2])])


def m_adapt_softmax11():
    """Softmax-11 on a 3-D input with axis=1: each [3 x 4] sample is one row."""
    return adapt_model([helper.make_node("Softmax", ["x"], ["y"], name="softmax", axis=1),
                        helper.make_node("LogSoftmax", ["x"], ["z"], name="logsoftmax", axis=1)],
                       [2, 3, 4], [vi("y", [2, 3, 4]), vi("z", [2, 3, 4])], 11)


def m_adapt_softmax11_new():
    return adapt_model([helper.make_node("Flatten", ["x"], ["f"], name="flatten", axis=1),
                        helper.make_node("Softmax", ["f"], ["sf"], name="softmax", axis=-1),
                        helper.make_node("LogSoftmax", ["f"], ["lf"], name="logsoftmax", axis=-1),
                        helper.make_node("Reshape", ["sf", "shape"], ["y"], name="reshape_y"),
                        helper.make_node("Reshape", ["lf", "shape"], ["z"], name="reshape_z")],
                       [2, 3, 4], [vi("y", [2, 3, 4]), vi("z", [2, 3, 4])], 13, [i64("shape", [2, 3, 4])])


def m_adapt_softmax1():
    """Softmax-1 (default axis 1) on a 2-D input: the axis is the last one."""
    return adapt_model([helper.make_node("Softmax", ["x"], ["y"], name="softmax")], [3, 5], [vi("y", [3, 5])], 9)


def m_adapt_softmax1_new():
    return adapt_model([helper.make_node("Softmax", ["x"], ["y"], name="softmax", axis=-1)], [3, 5], [vi("y", [3, 5])], 13)


def bn_params(shape):
    r = np.random.default_rng(11)
    return [f32("scale", r.uniform(0.5, 1.5, shape)), f32("bias", r.uniform(-1, 1, shape)),
            f32("mean", r.uniform(-1, 1, shape)), f32("var", r.uniform(0.5, 2, shape))]


def m_adapt_bn7():
    return adapt_model([helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], name="bn",
                                         epsilon=1e-3)],
                       [2, 3, 4, 4], [vi("y", [2, 3, 4, 4])], 7, bn_params([3]))


def m_adapt_bn7_new():
    return adapt_model([helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], name="bn",
                                         epsilon=1e-3)],
                       [2, 3, 4, 4], [vi("y", [2, 3, 4, 4])], 9, bn_params([3]))


def m_adapt_bn7_spatial0():
    """spatial=0: one mean/var/scale/bias per element of a sample."""
    return adapt_model([helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], name="bn",
                                         epsilon=1e-3, spatial=0)],
                       [2, 3, 2, 2], [vi("y", [2, 3, 2, 2])], 7, bn_params([3, 2, 2]))


def m_adapt_bn7_spatial0_new():
    """What BatchNormalization-9's text suggests for it: flatten to N x C*D1*D2."""
    p = bn_params([12])
    return adapt_model([helper.make_node("Reshape", ["x", "flat"], ["xf"], name="flatten"),
                        helper.make_node("BatchNormalization", ["xf", "scale", "bias", "mean", "var"], ["yf"], name="bn",
                                         epsilon=1e-3),
                        helper.make_node("Reshape", ["yf", "back"], ["y"], name="unflatten")],
                       [2, 3, 2, 2], [vi("y", [2, 3, 2, 2])], 13, p + [i64("flat", [2, 12]), i64("back", [2, 3, 2, 2])])


def m_adapt_dropout7():
    """Dropout-7 at inference: Y = X; its mask has X's type (all ones)."""
    return adapt_model([helper.make_node("Dropout", ["x"], ["y", "mask"], name="dropout", ratio=0.3)],
                       [2, 3], [vi("y", [2, 3]), vi("mask", [2, 3])], 7)


def m_adapt_dropout7_new():
    return adapt_model([helper.make_node("Dropout", ["x"], ["y", "m"], name="dropout"),
                        helper.make_node("Cast", ["m"], ["mask"], name="cast", to=F32)],
                       [2, 3], [vi("y", [2, 3]), vi("mask", [2, 3])], 13)


def m_adapt_topk1():
    return adapt_model([helper.make_node("TopK", ["x"], ["v", "i"], name="topk", k=2, axis=1)],
                       [3, 5], [vi("v", [3, 2]), vi("i", [3, 2], I64)], 9)


def m_adapt_topk1_new():
    return adapt_model([helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk", axis=1)],
                       [3, 5], [vi("v", [3, 2]), vi("i", [3, 2], I64)], 11, [i64("k", [2])])


def m_adapt_refused():
    """Resize-11's tf_half_pixel_for_nn with round_prefer_ceil has no Resize-13 form: refused naming it."""
    return adapt_model([helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="rs_tf", mode="nearest",
                                         coordinate_transformation_mode="tf_half_pixel_for_nn",
                                         nearest_mode="round_prefer_ceil")],
                       [1, 1, 2, 2], [vi("y", [1, 1, 4, 4])], 11, [f32("roi", []), f32("scales", [1, 1, 2, 2])])


ADAPT = ["split2", "unsqueeze11", "squeeze1", "reducesum11", "pad2", "clip6", "slice1", "upsample9", "upsample7",
         "resize10", "softmax11", "softmax1", "bn7", "bn7_spatial0", "dropout7", "topk1"]
for _case in ADAPT:
    VALID[f"adapt_{_case}.onnx"] = globals()[f"m_adapt_{_case}"]
    VALID[f"adapt_{_case}_new.onnx"] = globals()[f"m_adapt_{_case}_new"]
BAD["adapt_refused.onnx"] = {"make": m_adapt_refused, "expect_any": ["rs_tf"], "at": "load"}


if __name__ == "__main__":
    main()
