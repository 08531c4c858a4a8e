#!/usr/bin/env python3
"""Basic inference with kiln from Python: build (or load from the engine
cache) an engine for an ONNX model, look at its inputs and outputs, run it
on a numpy array, and, on the cuda backend with PyTorch, on a CUDA tensor.

    python3 examples/python/basic_inference.py                  # models/tinynet.onnx on ref
    python3 examples/python/basic_inference.py --backend cuda   # on the GPU
"""
import argparse
import os
import sys

import numpy as np

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
try:
    import kiln
except ImportError:  # not pip-installed: use this checkout's package (and its build/libkiln.so)
    sys.path.insert(0, os.path.join(REPO, "python"))
    import kiln


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(REPO, "models", "tinynet.onnx"))
    ap.add_argument("--backend", default="ref", choices=("ref", "cuda"))
    ap.add_argument("--no-cache", action="store_true", help="build without the engine cache")
    args = ap.parse_args()

    # Build once; later runs load the plan from the cache (~/.cache/kiln/engines).
    engine, source = kiln.build(args.model, backend=args.backend, cache=not args.no_cache)
    print(f"engine   {engine.backend}, {engine.identity.precision}, from {source}")
    print(f"identity {engine.identity.file_name}")
    for t in engine.inputs:
        print(f"input    {t}")
    for t in engine.outputs:
        print(f"output   {t}")

    # One input of the engine's dtype, symbolic dims (the batch) set to 1.
    inp = engine.inputs[0]
    shape = tuple(d if isinstance(d, int) else 1 for d in inp.shape)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(inp.numpy_dtype)

    probs = engine(x)  # numpy in, numpy out
    top = np.argsort(probs[0])[::-1][:3]
    print(f"result   {engine.outputs[0].name} {probs.shape} {probs.dtype}; top-3 classes:")
    for c in top:
        print(f"           class {c}: {probs[0, c]:.4f}")

    # The same through infer(): a dict in, a dict out.
    out = engine.infer({inp.name: x})
    assert np.array_equal(out[engine.outputs[0].name], probs)

    # A mistake is a clear error naming the tensor.
    try:
        engine(x.astype(np.float64))
    except TypeError as e:
        print(f"float64  TypeError: {e}")

    # GPU tensors stay on the GPU: torch in, torch out, on the tensor's stream.
    if engine.backend == "cuda":
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None and torch.cuda.is_available():
            xt = torch.from_numpy(x).cuda()
            yt = engine(xt)
            print(f"torch    {tuple(yt.shape)} on {yt.device}, max |cuda - numpy path| = "
                  f"{(yt.cpu().float() - torch.from_numpy(probs).float()).abs().max().item():.2e}")
    engine.close()


if __name__ == "__main__":
    main()
