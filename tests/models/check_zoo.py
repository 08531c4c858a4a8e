#!/usr/bin/env python3
"""Runs every zoo model on kiln's reference backend and compares with onnxruntime.

usage: check_zoo.py KILN_BIN MODEL_DIR [--tol 1e-5] [--keep DIR]

For each zoo model of MODEL_DIR/manifest.json (written by gen.py) and batch
sizes 1 and 2: inputs are random, non-zero (uniform in ±[0.1, 1.1], fixed
seed), saved as .npy; onnxruntime (CPU) computes the reference; kiln runs
  KILN_BIN run MODEL --backend ref --input NAME=FILE.npy ... --shapes NAME:2x...
      --output-dir DIR
and writes DIR/<output name, chars outside [A-Za-z0-9._-] replaced by '_'>.npy.

Per output:  rel = max|kiln - ort| / max(max|ort|, 1e-6)  must be <= --tol
(default 1e-5); the table also shows the worst elementwise relative error
|kiln - ort| / max(|ort|, 1e-6) for information. Shapes and dtypes must
match exactly. Prints a table, then "N passed, N failed"; exits 1 on failure.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

TIMEOUT = 300
BATCHES = (1, 2)


def out_file(d, name):
    return os.path.join(d, re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".npy")


def input_specs(m, batch):
    inits = {i.name for i in m.graph.initializer}
    specs = []
    for v in m.graph.input:
        if v.name in inits:
            continue
        tt = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else batch for d in tt.shape.dim]
        specs.append((v.name, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type), shape))
    return specs


def rel_errors(a, b):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    diff = np.abs(a64 - b64)
    if not np.all(np.isfinite(a64)):
        return float("inf"), float("inf")
    rel = float(diff.max() / max(float(np.abs(b64).max()), 1e-6)) if diff.size else 0.0
    elem = float((diff / np.maximum(np.abs(b64), 1e-6)).max()) if diff.size else 0.0
    return rel, elem


def check_one(kiln, path, batch, tol, work):
    """Rows (model, batch, output, status, rel, elem, note) for one run."""
    base = os.path.basename(path)
    m = onnx.load(path, load_external_data=False)
    rng = np.random.default_rng(1000 + batch)
    feeds, args = {}, []
    for name, dt, shape in input_specs(m, batch):
        mag = rng.uniform(0.1, 1.1, shape)
        x = (mag * rng.choice([-1.0, 1.0], shape)).astype(dt)
        feeds[name] = x
        f = out_file(work, "in_" + name)
        np.save(f, x)
        args += ["--input", f"{name}={f}", "--shapes", f"{name}:" + "x".join(map(str, shape))]
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
    if rc != 0:
        why = f"crashed (signal {-rc})" if isinstance(rc, int) and rc < 0 else f"exit {rc}"
        last = err.strip().splitlines()[-1] if err.strip() else ""
        return [(base, batch, "-", "FAIL", None, None, f"kiln run {why}: {last[:160]}")]
    rows = []
    for name in names:
        ref, f = refs[name], out_file(odir, name)
        if not os.path.exists(f):
            rows.append((base, batch, name, "FAIL", None, None, f"kiln wrote no {os.path.basename(f)}"))
            continue
        got = np.load(f)
        if got.dtype != ref.dtype or got.shape != ref.shape:
            rows.append((base, batch, name, "FAIL", None, None,
                         f"kiln {got.dtype}{list(got.shape)} vs ort {ref.dtype}{list(ref.shape)}"))
            continue
        rel, elem = rel_errors(got, ref)
        ok = rel <= tol
        rows.append((base, batch, name, "ok" if ok else "FAIL", rel, elem, "" if ok else f"rel {rel:.3g} > {tol:g}"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kiln")
    ap.add_argument("model_dir")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--keep", help="keep inputs/outputs under this folder")
    a = ap.parse_args()
    with open(os.path.join(a.model_dir, "manifest.json")) as f:
        zoo = json.load(f)["zoo"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = a.keep or tmp
        for name in zoo:
            for b in BATCHES:
                work = os.path.join(root, f"{os.path.splitext(name)[0]}_b{b}")
                os.makedirs(work, exist_ok=True)
                try:
                    rows += check_one(a.kiln, os.path.join(a.model_dir, name), b, a.tol, work)
                except Exception as e:  # a broken reference run is a failure too, not a crash
                    rows.append((name, b, "-", "FAIL", None, None, f"{type(e).__name__}: {e}"))
    w = max(len(r[0]) for r in rows)
    print(f"{'model':<{w}}  batch  {'output':<12} status  {'max rel':>9}  {'elem rel':>9}  note")
    for model, b, out, st, rel, elem, note in rows:
        r = "-" if rel is None else f"{rel:9.2e}"
        e = "-" if elem is None else f"{elem:9.2e}"
        print(f"{model:<{w}}  {b:>5}  {out:<12} {st:<6}  {r:>9}  {e:>9}  {note}")
    failed = sum(r[3] != "ok" for r in rows)
    print(f"{len(rows) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
