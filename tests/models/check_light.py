#!/usr/bin/env python3
"""Runs onnx's "light" models on kiln's reference backend at their own opset
and compares with onnxruntime.

usage: check_light.py KILN_BIN [--tol 1e-4] [--only NAME] [--keep DIR] [-j N]

The onnx wheel ships small versions of classic vision models
(onnx/backend/test/data/light/light_*.onnx: AlexNet, DenseNet-121,
Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512),
exported at opset 9 with their weights replaced by ConstantOfShape nodes.
They exercise the import adapters of old op versions (Softmax-1, Dropout-7,
Unsqueeze-1, ...): each model is loaded as it is, with no conversion.

Every weight of these models is the same constant, so their final output
is uniform whatever the convolutions compute. The check therefore also
compares probes: the output of the first and the last node of each op type
(ConstantOfShape aside), made graph outputs of a copy of the model (same
opset, nodes untouched) that both runtimes run.

For each model: inputs random and non-zero (uniform in +-[0.1, 1.1], fixed
seed), saved as .npy; onnxruntime (CPU) computes the reference; kiln runs
  KILN_BIN run MODEL --backend ref --input NAME=FILE.npy ... --output-dir DIR
Per output and probe: rel = max|kiln - ort| / max(max|ort|, 1e-6) must be
<= --tol (default 1e-4), dtype and shape equal. Prints one row per model
(its worst output), then "N passed, N failed"; exits 1 on a failure.
"""
import argparse
import concurrent.futures
import glob
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

# per model: VGG-19 (39 GFLOP) takes 5 CPU minutes on a debug + sanitizer build
TIMEOUT = 2400
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def out_file(d, name):
    return os.path.join(d, re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".npy")


def rel_error(a, b):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if not np.all(np.isfinite(a64)):
        return float("inf")
    d = np.abs(a64 - b64)
    return float(d.max() / max(float(np.abs(b64).max()), 1e-6)) if d.size else 0.0


def with_probes(m):
    """A copy of m whose graph outputs also include the first and last
    float output of each op type; the number of probes."""
    inferred = onnx.shape_inference.infer_shapes(m)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    have = {o.name for o in m.graph.output}
    by_op = {}
    for n in m.graph.node:
        if n.op_type != "ConstantOfShape" and n.output and types.get(n.output[0]) == onnx.TensorProto.FLOAT:
            by_op.setdefault(n.op_type, []).append(n.output[0])
    probes = []
    for outs in by_op.values():
        for name in dict.fromkeys([outs[0], outs[-1]]):
            if name not in have:
                probes.append(name)
    c = onnx.ModelProto()
    c.CopyFrom(m)
    for name in probes:
        c.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return c, len(probes)


def check(kiln, path, tol, work):
    """Rows (model, output, status, rel, note)."""
    base = os.path.basename(path)
    m, n_probes = with_probes(onnx.load(path, load_external_data=False))
    path = os.path.join(work, base)
    onnx.save(m, path)
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(7)
    feeds, args = {}, []
    for v in m.graph.input:
        if v.name in inits:
            continue
        tt = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim]
        dt = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        x = (rng.uniform(0.1, 1.1, shape) * rng.choice([-1.0, 1.0], shape)).astype(dt)
        feeds[v.name] = x
        f = out_file(work, "in_" + v.name)
        np.save(f, x)
        args += ["--input", f"{v.name}={f}"]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    refs = dict(zip(names, sess.run(None, feeds)))
    odir = os.path.join(work, "out")
    os.makedirs(odir, exist_ok=True)
    cmd = [kiln, "run", path, "--backend", "ref", *args, "--output-dir", odir]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, errors="replace")
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        rc, err = "timeout", f"timed out after {TIMEOUT} s"
    tag = f"{base} (opset {opset})"
    if rc != 0:
        why = f"crashed (signal {-rc})" if isinstance(rc, int) and rc < 0 else f"exit {rc}"
        last = " ".join(err.split())
        return [(tag, "-", "FAIL", None, f"kiln run {why}: {last[-300:]}")]
    worst, worst_name, bad = 0.0, "-", []
    for name in names:
        ref, f = refs[name], out_file(odir, name)
        if not os.path.exists(f):
            bad.append(f"kiln wrote no {os.path.basename(f)}")
            continue
        got = np.load(f)
        if got.dtype != ref.dtype or got.shape != ref.shape:
            bad.append(f"{name}: kiln {got.dtype}{list(got.shape)} vs ort {ref.dtype}{list(ref.shape)}")
            continue
        rel = rel_error(got, ref)
        if rel > tol:
            bad.append(f"{name}: rel {rel:.3g} > {tol:g}")
        if rel >= worst:
            worst, worst_name = rel, name
    what = f"{len(names) - n_probes} outputs + {n_probes} probes; worst {worst_name}"
    return [(tag, what, "FAIL" if bad else "ok", worst, "; ".join(bad[:4]))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kiln")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--only", help="only models whose file name contains this")
    ap.add_argument("--keep", help="keep inputs/outputs under this folder")
    ap.add_argument("-j", type=int, default=1, help="models run at once")
    a = ap.parse_args()
    # the heaviest first, so that with -j 2 it runs beside all the others
    models = sorted(glob.glob(os.path.join(LIGHT, "light_*.onnx")), key=lambda p: ("vgg19" not in p, p))
    if a.only:
        models = [m for m in models if a.only in os.path.basename(m)]
    if not models:
        sys.exit(f"no light_*.onnx models under {LIGHT}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = a.keep or tmp

        def one(path):
            work = os.path.join(root, os.path.splitext(os.path.basename(path))[0])
            os.makedirs(work, exist_ok=True)
            try:
                return check(a.kiln, path, a.tol, work)
            except Exception as e:  # a broken reference run is a failure too, not a crash
                return [(os.path.basename(path), "-", "FAIL", None, f"{type(e).__name__}: {e}")]

        with concurrent.futures.ThreadPoolExecutor(max(1, a.j)) as ex:
            for r in ex.map(one, models):
                rows += r
    w = max(len(r[0]) for r in rows)
    print(f"{'model':<{w}}  status  {'max rel':>9}  compared / note")
    for model, out, st, rel, note in sorted(rows):
        r = "-" if rel is None else f"{rel:9.2e}"
        print(f"{model:<{w}}  {st:<6}  {r:>9}  {out}{'; ' + note if note else ''}")
    failed = sum(r[2] != "ok" for r in rows)
    print(f"{len(rows) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
