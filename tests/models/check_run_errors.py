#!/usr/bin/env python3
"""`kiln run` on bad data: each case must exit 1 (not crash) with a message
naming the tensor or file and, for shape/dtype, the expected and the given.
usage: check_run_errors.py KILN_BIN MODEL_DIR"""
import os
import subprocess
import sys
import tempfile

import numpy as np

kiln, models = sys.argv[1], sys.argv[2]
model = os.path.join(models, "symbolic.onnx")  # input [batch,3,8,8] f32 (tests/models/gen.py)
tmp = tempfile.mkdtemp(prefix="kiln-errors-")


def npy(name, arr, **kw):
    p = os.path.join(tmp, name)
    np.save(p, arr, **kw)
    return p


good = np.random.default_rng(0).uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
inp = subprocess.run([kiln, "inspect", model, "--json"], capture_output=True, text=True)
import json  # noqa: E402

name = json.loads(inp.stdout)["inputs"][0]["name"]
fortran = os.path.join(tmp, "fortran.npy")
np.save(fortran, np.asfortranarray(good))
truncated = os.path.join(tmp, "truncated.npy")
with open(npy("full.npy", good), "rb") as f:
    data = f.read()
with open(truncated, "wb") as f:
    f.write(data[: len(data) // 2])
objects = npy("objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)

cases = [
    ("wrong dim", [f"{name}={npy('wrongdim.npy', good[:, :2])}"], [name, "3", "2"]),
    ("wrong rank", [f"{name}={npy('rank.npy', good[0])}"], [name, "rank 4", "rank 3"]),
    ("wrong dtype", [f"{name}={npy('f64.npy', good.astype(np.float64))}"], [name, "f32", "f64"]),
    ("unknown input name", [f"nope={npy('x.npy', good)}"], ["nope"]),
    ("missing file", [f"{name}={tmp}/absent.npy"], ["absent.npy"]),
    ("truncated npy", [f"{name}={truncated}"], ["truncated.npy", "truncated"]),
    ("Fortran order", [f"{name}={fortran}"], ["fortran.npy", "Fortran"]),
    ("pickled objects", [f"{name}={objects}"], ["objects.npy", "pickle"]),
]
passed = failed = 0
for label, inputs, words in cases:
    args = [kiln, "run", model, "--backend", "ref"]
    for i in inputs:
        args += ["--input", i]
    p = subprocess.run(args, capture_output=True, text=True)
    missing = [w for w in words if w not in p.stderr]
    ok = p.returncode == 1 and not missing
    passed += ok
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {label:<20} exit {p.returncode}  {p.stderr.strip()[:160]}"
          + (f"  (missing: {missing})" if missing else ""))
# and the good input runs
p = subprocess.run([kiln, "run", model, "--backend", "ref", "--input", f"{name}={npy('good.npy', good)}"],
                   capture_output=True, text=True)
ok = p.returncode == 0
passed += ok
failed += not ok
print(f"{'ok  ' if ok else 'FAIL'} {'good input':<20} exit {p.returncode}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
