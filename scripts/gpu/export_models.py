#!/usr/bin/env python3
"""Exports the zoo (zoo.py) from PyTorch on the GPU machine, with random
weights from a fixed seed (no weights can be downloaded): torchvision
resnet50, mobilenet_v3_large, efficientnet_b0, and Ultralytics YOLOv8n built
from its YAML. ONNX opset 17, batch dim symbolic ("batch").
usage: export_models.py OUT_DIR [NAME ...]"""
import os
import sys
import time

import torch

import zoo

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

for name in sys.argv[2:] or list(zoo.MODELS):
    path = os.path.join(out, f"{name}.onnx")
    if os.path.exists(path):
        continue
    try:  # one failed export must not hide the others
        shape, out_names = zoo.MODELS[name]
        model = zoo.make(name)
        t0 = time.time()
        dyn = {zoo.INPUT: {0: "batch"}, **{o: {0: "batch"} for o in out_names}}
        torch.onnx.export(model, (torch.randn(1, *shape),), path, input_names=[zoo.INPUT], output_names=out_names,
                          dynamic_axes=dyn, opset_version=17, dynamo=False)
        print(f"exported {name}: {os.path.getsize(path) / 1e6:.1f} MB in {time.time() - t0:.1f}s", flush=True)
    except Exception as e:
        print(f"export {name} FAILED: {type(e).__name__}: {e}", flush=True)
        if os.path.exists(path):  # no half-written file that the next run would take as done
            os.remove(path)
