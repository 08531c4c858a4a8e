#!/usr/bin/env python3
"""Exports the zoo from PyTorch on the GPU machine, with random weights from
a fixed seed (no weights can be downloaded): torchvision resnet50,
mobilenet_v3_large, efficientnet_b0, and Ultralytics YOLOv8n built from its
YAML. ONNX opset 17, batch dim symbolic ("batch").
usage: export_models.py OUT_DIR [NAME ...]"""
import os
import sys
import time

import torch

out = sys.argv[1]
want = set(sys.argv[2:])
os.makedirs(out, exist_ok=True)


def export(name, model, shape, out_names):
    path = os.path.join(out, f"{name}.onnx")
    if os.path.exists(path):
        return path
    model.eval()
    x = torch.randn(*shape)
    t0 = time.time()
    dyn = {"images": {0: "batch"}}
    for o in out_names:
        dyn[o] = {0: "batch"}
    torch.onnx.export(model, (x,), path, input_names=["images"], output_names=out_names,
                      dynamic_axes=dyn, opset_version=17, dynamo=False)
    print(f"exported {name}: {os.path.getsize(path) / 1e6:.1f} MB in {time.time() - t0:.1f}s", flush=True)
    return path


def torchvision_model(arch):
    import torchvision
    torch.manual_seed(0)
    return getattr(torchvision.models, arch)(weights=None)


def yolov8n():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "stubs"))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO
    torch.manual_seed(0)
    m = YOLO("yolov8n.yaml").model
    m.eval()
    for mod in m.modules():  # the export wrapper's settings, as ultralytics' own exporter sets them
        if hasattr(mod, "export"):
            mod.export = True
            mod.format = "onnx"
    return m


jobs = [
    ("resnet50", lambda: torchvision_model("resnet50"), (1, 3, 224, 224), ["logits"]),
    ("mobilenet_v3_large", lambda: torchvision_model("mobilenet_v3_large"), (1, 3, 224, 224), ["logits"]),
    ("efficientnet_b0", lambda: torchvision_model("efficientnet_b0"), (1, 3, 224, 224), ["logits"]),
    ("yolov8n", yolov8n, (1, 3, 640, 640), ["output0"]),
]
for name, make, shape, outs in jobs:
    if want and name not in want:
        continue
    try:
        export(name, make(), shape, outs)
    except Exception as e:  # one failed export must not hide the others
        print(f"export {name} FAILED: {type(e).__name__}: {e}", flush=True)
