#!/usr/bin/env python3
"""Runs each exported model on kiln's ref backend and on onnxruntime (CPU,
float32) with the same random non-zero inputs, and prints the max relative
error and the wall time of one kiln run (process start to end).
usage: check_ref.py KILN MODEL_DIR WORK_DIR BATCH [CPUS]"""
import glob
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

kiln, model_dir, work, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cpus = sys.argv[5] if len(sys.argv) > 5 else None
os.makedirs(work, exist_ok=True)
rows = []
for path in sorted(glob.glob(os.path.join(model_dir, "*.onnx"))):
    name = os.path.basename(path)[:-5]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [batch if not isinstance(d, int) else d for d in inp.shape]
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    x[x == 0] = 0.5
    xf = os.path.join(work, f"{name}_in.npy")
    np.save(xf, x)
    ref = sess.run(None, {inp.name: x})
    od = os.path.join(work, f"{name}_out")
    cmd = [kiln, "run", path, "--backend", "ref", "--input", f"{inp.name}={xf}", "--output-dir", od, "--quiet"]
    if cpus:
        cmd = ["taskset", "-c", cpus] + cmd
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.time() - t0
    if r.returncode != 0:
        rows.append((name, batch, "FAIL", r.stderr.strip()[-200:], dt))
        continue
    errs = []
    for o, want in zip(sess.get_outputs(), ref):
        got = np.load(os.path.join(od, "".join(c if c.isalnum() or c in "._-" else "_" for c in o.name) + ".npy"))
        errs.append(float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-6)))
    rows.append((name, batch, "ok" if max(errs) <= 1e-4 else "MISMATCH", f"{max(errs):.2e}", dt))
print(f"\n{'model':<22} {'batch':>5} {'status':<9} {'max rel err':<12} {'kiln ref wall s':>15}")
for r in rows:
    print(f"{r[0]:<22} {r[1]:>5} {r[2]:<9} {r[3]:<12} {r[4]:>15.2f}")
