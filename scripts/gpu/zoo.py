"""The zoo of the GPU checks: real architectures with random weights from a
fixed seed (no weights can be downloaded on the GPU machine). One place for
export_models.py (ONNX), check_cuda.py and bench.py (plans, PyTorch), so that
kiln and PyTorch run the same weights. torch is imported only by make()."""
import os
import sys

INPUT = "images"
# name: (input shape without the batch dim, output names), in the order the checks run
MODELS = {
    "resnet50": ((3, 224, 224), ["logits"]),
    "mobilenet_v3_large": ((3, 224, 224), ["logits"]),
    "efficientnet_b0": ((3, 224, 224), ["logits"]),
    "yolov8n": ((3, 640, 640), ["output0"]),
}
# The batch profile (min, opt, max) of the plans check_cuda.py builds and bench.py reuses.
PROFILE = (1, 8, 32)


def plan_path(work, name, precision):
    return os.path.join(work, f"{name}_{precision}.plan")


def selected(arg=None):
    """The models named by arg or $KILN_GPU_MODELS (comma-separated), else all; unknown names fail."""
    names = [n for n in (arg or os.environ.get("KILN_GPU_MODELS", "")).split(",") if n]
    bad = [n for n in names if n not in MODELS]
    if bad:
        sys.exit(f"unknown model(s) {bad}: the zoo has {list(MODELS)}")
    return names or list(MODELS)


def make(name):
    """A fresh model in eval mode, float32 on the CPU; the same weights on every call."""
    import torch
    if name == "yolov8n":
        m = _yolov8n()
    else:
        import torchvision
        torch.manual_seed(0)
        m = getattr(torchvision.models, name)(weights=None).eval()
    _calibrate_batchnorm(m, MODELS[name][0])
    return m


def _calibrate_batchnorm(m, shape):
    """Sets every BatchNorm's running statistics from random inputs, as training
    would: with the init's statistics (mean 0, var 1) activations shrink layer
    by layer, and mobilenet_v3_large's and efficientnet_b0's logits (1e-10 and
    1e-14) are below fp16's smallest number, so no fp16 engine, PyTorch's
    included, could be checked on them. Only the BatchNorms run in train mode
    (dropout and stochastic depth stay off)."""
    import torch
    bns = [b for b in m.modules() if isinstance(b, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [b.momentum for b in bns]
    for b in bns:
        b.reset_running_stats()
        b.momentum = None  # a plain average over the calibration batches
        b.train()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(2):
            m(torch.rand(4, *shape, generator=g) * 2 - 1)
    for b, mom in zip(bns, momenta):
        b.momentum = mom
        b.eval()


def _yolov8n():
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs"))  # cv2 stand-in
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
