#!/usr/bin/env python3
"""Models kiln must read as they are (issue #13), on both backends, against
onnxruntime CPU float32 on the same random non-zero inputs:
  - onnx's light_* models (opset 9, shipped in the onnx wheel), and
  - torchvision vit_b_16 and swin_t exported here at opset 17 (random
    weights, seed 0), unless --no-export.
For each model and backend: `kiln run MODEL --backend B [--precision fp32]`,
max|kiln - ort| / max|ort| per output (the worst is shown), the run's wall
time, and the number of nodes `kiln inspect --json` lists as unsupported.
usage: check_models.py KILN WORK_DIR [--backends ref,cuda] [--only NAME] [--no-export] [--tol 1e-4]
Prints a table last (also WORK_DIR/models.txt) and WORK_DIR/models.json."""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("kiln")
ap.add_argument("work")
ap.add_argument("--backends", default="ref,cuda")
ap.add_argument("--only")
ap.add_argument("--no-export", action="store_true")
ap.add_argument("--tol", type=float, default=1e-4)
ap.add_argument("--timeout", type=int, default=240)
a = ap.parse_args()
os.makedirs(a.work, exist_ok=True)

models = sorted(glob.glob(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                                       "light_*.onnx")))


def export_torchvision(name):
    path = os.path.join(a.work, f"{name}_r.onnx")
    if os.path.exists(path):
        return path
    import torch
    import torchvision
    torch.manual_seed(0)
    # the eval-mode fast path of nn.MultiheadAttention (aten::_native_multi_head_attention)
    # has no ONNX export: the plain ops export as MatMul/Softmax
    if hasattr(torch.backends, "mha"):
        torch.backends.mha.set_fastpath_enabled(False)
    m = getattr(torchvision.models, name)(weights=None).eval()
    # torchvision zero-initializes some layers (vit_b_16's classifier head):
    # the output would be constant and its comparison empty; random instead
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 1 and not p.any():
                p.normal_(0, 0.02)
    x = torch.randn(1, 3, 224, 224)
    kw = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    with torch.no_grad():
        torch.onnx.export(m, x, path, opset_version=17, input_names=["x"], output_names=["logits"], **kw)
    return path


if not a.no_export:
    for name in ("vit_b_16", "swin_t"):
        try:
            models.append(export_torchvision(name))
        except Exception as e:  # noqa: BLE001 - a row says what failed
            print(f"{name}: export failed: {e}")
if a.only:
    models = [m for m in models if a.only in os.path.basename(m)]


def safe(name):
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def unsupported(path):
    r = subprocess.run([a.kiln, "inspect", path, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"inspect exit {r.returncode}"
    try:
        return len(json.loads(r.stdout).get("unsupported", []))
    except ValueError:
        return "?"


rows = []
for path in models:
    name = os.path.basename(path)[:-5]
    m = onnx.load(path, load_external_data=False)
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0)
    inits = {i.name for i in m.graph.initializer}
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    feeds, args = {}, []
    for i in sess.get_inputs():
        if i.name in inits:
            continue
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        x = (rng.uniform(0.1, 1.1, shape) * rng.choice([-1, 1], shape)).astype(np.float32)
        f = os.path.join(a.work, f"{name}_{safe(i.name)}.npy")
        np.save(f, x)
        feeds[i.name] = x
        args += ["--input", f"{i.name}={f}"]
    ref = sess.run(None, feeds)
    uns = unsupported(path)
    for b in a.backends.split(","):
        od = os.path.join(a.work, f"{name}_{b}")
        cmd = [a.kiln, "run", path, "--backend", b, *args, "--output-dir", od, "--quiet"]
        if b != "ref":
            cmd += ["--precision", "fp32"]
        t0 = time.time()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
            rc, err = r.returncode, r.stderr
        except subprocess.TimeoutExpired:
            rc, err = 124, f"timed out after {a.timeout} s"
        dt = time.time() - t0
        if rc != 0:
            rows.append({"model": name, "opset": opset, "backend": b, "unsupported": uns, "status": "FAIL",
                         "err": None, "why": err.strip()[-200:], "s": dt})
            continue
        worst = 0.0
        for o, want in zip(sess.get_outputs(), ref):
            got = np.load(os.path.join(od, safe(o.name) + ".npy"))
            worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - want)) / max(np.max(np.abs(want)), 1e-6)))
        rows.append({"model": name, "opset": opset, "backend": b, "unsupported": uns,
                     "status": "ok" if worst <= a.tol else "MISMATCH", "err": worst, "why": "", "s": dt})
    sys.stdout.flush()

json.dump(rows, open(os.path.join(a.work, "models.json"), "w"), indent=1)
lines = [f"{'model':<22} {'opset':>5} {'backend':<7} {'unsupp':>6} {'status':<9} {'max rel err':>11} {'wall s':>7}"]
for r in rows:
    e = f"{r['err']:.2e}" if r["err"] is not None else "-"
    lines.append(f"{r['model']:<22} {r['opset']:>5} {r['backend']:<7} {str(r['unsupported']):>6} {r['status']:<9} "
                 f"{e:>11} {r['s']:>7.1f}" + (f"  {r['why']}" if r["why"] else ""))
open(os.path.join(a.work, "models.txt"), "w").write("\n".join(lines) + "\n")
print("\n" + "\n".join(lines))
sys.exit(0 if all(r["status"] == "ok" for r in rows) else 1)
