#!/usr/bin/env python3
"""How much error fp16 storage alone costs a zoo model, on the CPU in
float64: the reference runs the model in float64; each variant rounds one
thing to fp16 and keeps everything else in float64:
  input    the image (every fp16 engine stores its input in fp16),
  weights  the conv/linear weights and biases after BatchNorm folding (as
           kiln's plans store them),
  acts     every activation a layer writes (conv, BN, ReLU, add outputs),
  all      the three together: an fp16 engine with exact f32 arithmetic.
Error as scripts/gpu/check_cuda.py measures it: max|d| / max|ref| over the
output, on the same input (uniform(-1, 1), seed 1).

    scripts/gpu/fp16_floor.py [MODEL] [--batch 1,8]
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo  # noqa: E402


def rel(got, want):
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))


def fold_bn(m):
    """Conv+BN pairs folded, as kiln's builder folds them (weights then rounded once)."""
    mods = list(m.named_modules())
    for (n1, a), (n2, b) in zip(mods, mods[1:]):
        if isinstance(a, torch.nn.Conv2d) and isinstance(b, torch.nn.BatchNorm2d):
            s = b.weight / torch.sqrt(b.running_var + b.eps)
            a.weight.data = a.weight.data * s.reshape(-1, 1, 1, 1)
            bias = a.bias.data if a.bias is not None else torch.zeros_like(b.running_mean)
            a.bias = torch.nn.Parameter((bias - b.running_mean) * s + b.bias)
            b.weight.data.fill_(1)
            b.bias.data.zero_()
            b.running_mean.zero_()
            b.running_var.fill_(1 - b.eps)
    return m


def r16(t):
    return t.to(torch.float16).to(t.dtype)


def run(name, batch, what):
    m = fold_bn(zoo.make(name)).double().eval()
    if what in ("weights", "all"):
        for p in m.parameters():
            p.data = r16(p.data)
    hooks = []
    if what in ("acts", "all"):
        for mod in m.modules():
            if len(list(mod.children())) == 0:
                hooks.append(mod.register_forward_hook(lambda _m, _i, o: r16(o) if torch.is_tensor(o) else o))
    shape = (batch,) + zoo.MODELS[name][0]
    x = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)).double()
    if what in ("input", "all"):
        x = r16(x)
    with torch.no_grad():
        y = m(x)
    for h in hooks:
        h.remove()
    return (y[0] if isinstance(y, (tuple, list)) else y).numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="resnet50")
    ap.add_argument("--batch", default="1,8")
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"{'model':<20} {'batch':>5} {'input':>9} {'weights':>9} {'acts':>9} {'all':>9}")
    for b in map(int, a.batch.split(",")):
        ref = run(a.model, b, "none")
        errs = [rel(run(a.model, b, w), ref) for w in ("input", "weights", "acts", "all")]
        print(f"{a.model:<20} {b:>5} " + " ".join(f"{e:9.2e}" for e in errs), flush=True)


if __name__ == "__main__":
    main()
