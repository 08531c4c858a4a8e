#!/usr/bin/env python3
"""kiln convert (issue #18): --help and usage errors, a missing model, a
missing interpreter, a missing framework (through a Python whose torch,
tensorflow, tf2onnx and ultralytics fail to import, so that path runs
everywhere), and, where torch imports, real conversions checked by running
them: a TorchScript Conv+ReLU+Flatten+Linear against torch's output on the
ref backend, --dynamic-batch (a symbolic batch that runs at batch 2),
--opset 11 recorded, a pickled module, a checkpoint dict, --loader, a
state_dict refused, and no file left behind by a failed export. Every case
prints ok/FAIL/skip; exit 1 if any failed.
usage: test_convert.py KILN_BIN    ($KILN_PYTHON: the interpreter with torch, default this one)"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

KILN = os.path.abspath(sys.argv[1])
TORCH_PY = os.environ.get("KILN_PYTHON") or sys.executable
TMP = tempfile.mkdtemp(prefix="kiln-convert-")
passed = failed = skipped = 0
ENV = {k: v for k, v in os.environ.items() if k != "KILN_PYTHON"}


def kiln(*args, cwd=TMP, env=None):
    p = subprocess.run([KILN, *args], capture_output=True, text=True, cwd=cwd, timeout=600, env=env or ENV)
    return p.returncode, p.stdout, p.stderr


def check(label, ok, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {label}" + ("" if ok else f"\n     {detail.strip()[:1500]}"))


def skip(label, why):
    global skipped
    skipped += 1
    print(f"skip {label}: {why}")


def expect(label, args, rc, err=(), out=(), not_err=(), cwd=TMP, env=None):
    """kiln ARGS exits rc, with every string of err in stderr (and none of
    not_err), every one of out in stdout."""
    code, so, se = kiln(*args, cwd=cwd, env=env)
    missing = [w for w in err if w not in se] + [w for w in out if w not in so]
    unwanted = [w for w in not_err if w in se]
    check(label, code == rc and not missing and not unwanted,
          f"exit {code} (want {rc}); missing {missing}; unwanted {unwanted}\n     stdout: {so[-600:]}\n"
          f"     stderr: {se[-900:]}")
    return code, so, se


def leftovers(folder):
    """temporary files kiln convert may have left"""
    return [n for n in os.listdir(folder) if ".tmp." in n or n.startswith(".kiln-convert-")]


# ---- .npy without numpy: float32, C order
def write_npy(path, shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join(f"{d}, " for d in shape)
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack(f"<{len(values)}f", *values))


def read_npy(path):
    data = open(path, "rb").read()
    n = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + n].decode()
    assert "'<f4'" in header and "False" in header, header
    body = data[10 + n:]
    return list(struct.unpack(f"<{len(body) // 4}f", body))


def rel_err(got, want):
    if len(got) != len(want):
        return float("inf")
    return max(abs(a - b) for a, b in zip(got, want)) / max(max(abs(b) for b in want), 1e-30)


# ---- --help, usage errors: exit 2, one message and the usage
for flag in ("--help", "-h"):
    code, so, se = kiln("convert", flag)
    check(f"convert {flag}", code == 0 and so.startswith("usage: kiln convert") and "pip install torch" in so and
          not se, f"exit {code}\n     stdout: {so[:200]}\n     stderr: {se[:200]}")
code, so, se = kiln("help", "convert")
check("help convert", code == 0 and so.startswith("usage: kiln convert"), f"exit {code} {se[:200]}")
expect("no model: usage error", ("convert",), 2, err=["no model given", "usage: kiln convert"])
code, so, se = kiln("convert", "m.pt", "--bogus")
check("unknown option: one error, one usage", code == 2 and se.count("unexpected argument") == 1 and
      se.count("usage:") == 1 and "--bogus" in se, f"exit {code}\n     stderr: {se[:500]}")
for args, word in ((("--opset", "abc"), "not a number"), (("--opset", "99"), "out of range"),
                   (("--opset", "6"), "out of range"), (("--opset", "-1"), "out of range")):
    expect(f"convert m.pt {' '.join(args)}: refused ({word})", ("convert", "m.pt", *args), 2, err=["--opset", word])
for args, word in ((("-o",), "needs a value"), (("--python",), "needs a value"),
                   (("--input-shape", "1xfoo"), "--input-shape"), (("--input-shape", "1x0x3"), "--input-shape"),
                   (("--loader", "nocolon"), "MODULE:FUNCTION")):
    expect(f"convert m.pt {' '.join(args)}: usage error ({word})", ("convert", "m.pt", *args), 2,
           err=[word, "usage: kiln convert"])
code, so, se = kiln("convert", "m.pt", "m2.pt")
check("two models: usage error", code == 2 and "m.pt" in se and "m2.pt" in se, se)

# ---- the model must be there
expect("missing model: exit 1 naming it", ("convert", os.path.join(TMP, "nope.pt")), 1,
       err=["nope.pt", "No such file"], not_err=["usage:"])
not_saved = os.path.join(TMP, "just-a-folder")
os.makedirs(not_saved)
expect("a folder that is no SavedModel: refused", ("convert", not_saved), 1, err=["SavedModel", "saved_model.pb"])
saved = os.path.join(TMP, "saved model")
os.makedirs(saved)
open(os.path.join(saved, "saved_model.pb"), "wb").write(b"\x08\x01")
expect("a SavedModel with --input-shape: usage error", ("convert", saved, "--input-shape", "1x3"), 2,
       err=["--input-shape", "SavedModel"])
dummy = os.path.join(TMP, "dir with 'quotes' and spaces", "m.pt")
os.makedirs(os.path.dirname(dummy))
open(dummy, "wb").write(b"not a pickle")
expect("-o onto the model itself: usage error", ("convert", dummy, "-o", dummy), 2, err=["model itself"])

# ---- a missing interpreter
folder = os.path.dirname(dummy)
expect("--python that does not exist: exit 1, named", ("convert", dummy, "--python", "/nonexistent/python3"), 1,
       err=["/nonexistent/python3", "Python interpreter", "--python"])
check("  and nothing written", not os.path.exists(dummy[:-3] + ".onnx") and not leftovers(folder),
      str(os.listdir(folder)))
env = dict(ENV, KILN_PYTHON="no-such-python-for-kiln")
expect("$KILN_PYTHON that does not exist: exit 1, named", ("convert", dummy), 1, err=["no-such-python-for-kiln"],
       env=env)

# ---- a missing framework, the same on every machine: a Python where the
# frameworks fail to import (as when they are not installed)
fake = os.path.join(TMP, "no-frameworks")
for mod in ("torch", "tensorflow", "tf2onnx", "ultralytics"):
    os.makedirs(os.path.join(fake, mod))
    open(os.path.join(fake, mod, "__init__.py"), "w").write(
        f"raise ModuleNotFoundError(\"No module named '{mod}'\", name={mod!r})\n")
fake_py = os.path.join(TMP, "python without frameworks")
open(fake_py, "w").write(f"#!/bin/sh\nPYTHONPATH='{fake}' exec '{sys.executable}' \"$@\"\n")
os.chmod(fake_py, 0o755)
expect("no torch: 'pip install torch', exit 1", ("convert", dummy, "--python", fake_py), 1,
       err=["pip install torch", "m.pt"])
check("  and nothing written", not os.path.exists(dummy[:-3] + ".onnx") and not leftovers(folder),
      str(os.listdir(folder)))
expect("no torch, through $KILN_PYTHON", ("convert", dummy, "-o", os.path.join(TMP, "k.onnx")), 1,
       err=["pip install torch"], env=dict(ENV, KILN_PYTHON=fake_py))
expect("no tf2onnx: 'pip install tf2onnx tensorflow', exit 1", ("convert", saved, "--python", fake_py), 1,
       err=["pip install tf2onnx tensorflow"])
check("  and nothing written", not os.path.exists(saved + ".onnx") and not leftovers(TMP), str(os.listdir(TMP)))
# an Ultralytics checkpoint is a zip whose pickle names ultralytics' classes
ul = os.path.join(TMP, "yolo.pt")
import zipfile  # noqa: E402
with zipfile.ZipFile(ul, "w") as z:
    z.writestr("yolo/data.pkl", b"\x80\x02cultralytics.nn.tasks\nDetectionModel\nq\x00.")
    z.writestr("yolo/version", "3\n")
expect("no ultralytics: 'pip install ultralytics', exit 1", ("convert", ul, "--python", fake_py), 1,
       err=["pip install ultralytics"])

# ---- the default interpreter without torch says so too
has_torch = subprocess.run([TORCH_PY, "-c", "import torch"], capture_output=True).returncode == 0
if subprocess.run(["python3", "-c", "import torch"], capture_output=True).returncode == 0:
    skip("python3 without torch: the refusal", "torch is installed for python3")
else:
    expect("python3 without torch: 'pip install torch', exit 1", ("convert", dummy), 1, err=["pip install torch"])
    check("  and nothing written", not os.path.exists(dummy[:-3] + ".onnx") and not leftovers(folder),
          str(os.listdir(folder)))

# ---- real conversions, where torch imports
MAKE = r'''
import struct, sys, torch, torch.nn as nn
sys.path.insert(0, sys.argv[1])
from tinynet import Net
torch.manual_seed(0)
m = Net().eval()
x1, x2 = torch.randn(1, 3, 8, 8), torch.randn(2, 3, 8, 8)
torch.jit.trace(m, x1).save(sys.argv[1] + "/net.pt")
torch.save(m, sys.argv[1] + "/pickled.pt")
torch.save({"model": m, "epoch": 3}, sys.argv[1] + "/checkpoint.pt")
torch.save(m.state_dict(), sys.argv[1] + "/weights.pt")
with torch.no_grad():
    for name, t in (("x1", x1), ("y1", m(x1)), ("x2", x2), ("y2", m(x2))):
        open(sys.argv[1] + "/" + name + ".f32", "wb").write(struct.pack("%df" % t.numel(), *t.flatten().tolist()))
'''
TINYNET = '''import torch, torch.nn as nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)
    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))
def load(path):
    m = Net()
    m.load_state_dict(torch.load(path, map_location="cpu"))
    return m
'''

if not has_torch:
    skip("conversions with torch", f"{TORCH_PY} cannot import torch (set $KILN_PYTHON to one that can)")
else:
    work = os.path.join(TMP, "torch work 'q'")
    os.makedirs(work)
    open(os.path.join(work, "tinynet.py"), "w").write(TINYNET)
    p = subprocess.run([TORCH_PY, "-c", MAKE, work], capture_output=True, text=True, timeout=600)
    check("made a TorchScript module with torch", p.returncode == 0, p.stderr)
    raw = {n: list(struct.unpack(f"<{os.path.getsize(os.path.join(work, n + '.f32')) // 4}f",
                                 open(os.path.join(work, n + ".f32"), "rb").read())) for n in ("x1", "y1", "x2", "y2")}
    write_npy(os.path.join(work, "x1.npy"), (1, 3, 8, 8), raw["x1"])
    write_npy(os.path.join(work, "x2.npy"), (2, 3, 8, 8), raw["x2"])
    py = ("--python", TORCH_PY)

    def run_ref(onnx, x, tag):
        d = os.path.join(work, "out-" + tag)
        code, so, se = kiln("run", onnx, "--backend", "ref", "--input", "x=" + os.path.join(work, x),
                            "--output-dir", d, "--quiet")
        f = os.path.join(d, "output.npy")
        return read_npy(f) if code == 0 and os.path.exists(f) else (so + se)

    # TorchScript, without -o: net.onnx beside net.pt
    net = os.path.join(work, "net.pt")
    code, so, se = expect("TorchScript: converted", ("convert", net, *py, "--input-shape", "1x3x8x8"), 0,
                          out=["framework torch", "exporter", "opset     17", "wrote", "inputs:", "outputs:"])
    onnx = os.path.join(work, "net.onnx")
    check("  written beside the model as net.onnx", os.path.exists(onnx) and not leftovers(work), str(os.listdir(work)))
    got = run_ref(onnx, "x1.npy", "ts")
    err = rel_err(got, raw["y1"]) if isinstance(got, list) else float("inf")
    check(f"  kiln run --backend ref matches torch (max|d|/max|ref| = {err:.2e})", err < 1e-4, str(got)[:600])

    # --dynamic-batch: a symbolic batch that runs at batch 2
    dyn = os.path.join(work, "dyn.onnx")
    expect("--dynamic-batch: converted", ("convert", net, "-o", dyn, *py, "--input-shape", "1x3x8x8",
                                          "--dynamic-batch"), 0, out=["batch dynamic", "[batch,3,8,8]"])
    code, so, se = kiln("inspect", dyn, "--json")
    try:
        rep = json.loads(so)
        dim0 = [rep["inputs"][0]["shape"][0], rep["outputs"][0]["shape"][0]]
    except (ValueError, KeyError, IndexError, TypeError):
        dim0 = None
    check("  kiln inspect: batch dims are symbolic", dim0 is not None and all(isinstance(d, str) for d in dim0),
          f"{dim0} {so[:400]} {se[:200]}")
    got = run_ref(dyn, "x2.npy", "dyn")
    err = rel_err(got, raw["y2"]) if isinstance(got, list) else float("inf")
    check(f"  runs at batch 2, matches torch ({err:.2e})", err < 1e-4, str(got)[:600])

    # --opset 11 is recorded
    o11 = os.path.join(work, "o11.onnx")
    code, so, se = expect("--opset 11: converted, prints it", ("convert", net, "-o", o11, *py, "--input-shape",
                                                               "1x3x8x8", "--opset", "11"), 0, out=["opset     11"])
    code, so2, _ = kiln("inspect", o11, "--json")
    try:
        opset = json.loads(so2)["model"]["opset"]
    except (ValueError, KeyError):
        opset = None
    check("  kiln inspect: opset 11", opset == 11, so2[:300])
    for checker in (sys.executable, TORCH_PY):
        p = subprocess.run([checker, "-c", "import onnx, sys; m = onnx.load(sys.argv[1]); "
                            "print([o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')])", o11],
                           capture_output=True, text=True)
        if p.returncode == 0:
            check("  onnx: opset_import says 11", p.stdout.strip() == "[11]", p.stdout + p.stderr)
            break
    else:
        skip("  onnx: opset_import", "onnx is not installed")

    # pickled modules: the module itself, a checkpoint dict, a --loader; a state_dict is refused
    for label, args in (("a pickled nn.Module", ("pickled.pt",)), ("a checkpoint {'model': m}", ("checkpoint.pt",)),
                        ("a state_dict through --loader", ("weights.pt", "--loader", "tinynet:load")),
                        ("--loader FILE.py:F", ("weights.pt", "--loader", os.path.join(work, "tinynet.py:load")))):
        out = os.path.join(work, "p.onnx")
        if os.path.exists(out):
            os.remove(out)
        code, so, se = expect(f"{label}: converted", ("convert", *args, "-o", out, *py, "--input-shape",
                                                      "1x3x8x8"), 0, out=["wrote"], cwd=work)
        got = run_ref(out, "x1.npy", "p")
        err = rel_err(got, raw["y1"]) if isinstance(got, list) else float("inf")
        check(f"  matches torch ({err:.2e})", err < 1e-4, str(got)[:600])
    expect("a state_dict without --loader: refused", ("convert", "weights.pt", *py, "--input-shape", "1x3x8x8"), 1,
           err=["state_dict", "--loader"], cwd=work)

    # an export that fails leaves nothing behind: the guessed 224x224 input does not fit the Linear layer
    stale = os.path.join(work, "guess.onnx")
    code, so, se = expect("a shape that does not fit: exit 1, says --input-shape",
                          ("convert", net, "-o", stale, *py), 1, err=["--input-shape"])
    check("  and nothing written", not os.path.exists(stale) and not leftovers(work), str(os.listdir(work)))
    # an existing output is replaced whole, not touched when the export fails
    open(stale, "w").write("old")
    kiln("convert", net, "-o", stale, *py)
    check("  an existing output is left as it was", open(stale).read() == "old" and not leftovers(work),
          str(os.listdir(work)))
    expect("  and replaced by a successful one", ("convert", net, "-o", stale, *py, "--input-shape", "1x3x8x8"), 0)
    check("  (an ONNX file now)", open(stale, "rb").read(4) != b"old", "")

# ---- an Ultralytics checkpoint (built from its yaml: nothing to download), where ultralytics imports
UL_MAKE = r'''
import sys
from ultralytics import YOLO
YOLO("yolov8n.yaml").save(sys.argv[1])
'''
if not has_torch or subprocess.run([TORCH_PY, "-c", "import ultralytics"], capture_output=True).returncode:
    skip("an Ultralytics checkpoint", f"{TORCH_PY} cannot import ultralytics")
else:
    ul_env = dict(ENV, YOLO_OFFLINE="1")
    ul = os.path.join(TMP, "tiny yolo.pt")
    p = subprocess.run([TORCH_PY, "-c", UL_MAKE, ul], capture_output=True, text=True, cwd=TMP, env=ul_env,
                       timeout=600)
    check("made an Ultralytics checkpoint", p.returncode == 0 and os.path.exists(ul), p.stdout + p.stderr)
    out = os.path.join(TMP, "yolo.onnx")
    expect("Ultralytics: converted by its exporter", ("convert", ul, "-o", out, "--python", TORCH_PY,
                                                      "--input-shape", "1x3x64x64", "--opset", "12"), 0,
           out=["ultralytics", "opset     12", "[1,3,64,64]", "wrote"], env=ul_env)
    check("  nothing left beside it", not leftovers(TMP) and not os.path.exists(ul[:-3] + ".onnx"),
          str(os.listdir(TMP)))
    expect("  and it runs on ref", ("run", out, "--backend", "ref", "--quiet"), 0)

# ---- a TensorFlow SavedModel, where tensorflow and tf2onnx import ($KILN_TF_PYTHON, else as for torch)
TF_PY = os.environ.get("KILN_TF_PYTHON") or TORCH_PY
TF_MAKE = r'''
import struct, sys, keras, numpy as np
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(3, activation="tanh")])
m.export(sys.argv[1] + "/saved dense")
x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
for name, t in (("tx", x), ("ty", np.asarray(m(x)))):
    open(sys.argv[1] + "/" + name + ".f32", "wb").write(t.astype("<f4").tobytes())
'''
if subprocess.run([TF_PY, "-c", "import tensorflow, tf2onnx, keras"], capture_output=True).returncode:
    skip("a TensorFlow SavedModel", f"{TF_PY} cannot import tensorflow, tf2onnx and keras (set $KILN_TF_PYTHON)")
else:
    p = subprocess.run([TF_PY, "-c", TF_MAKE, TMP], capture_output=True, text=True, timeout=600)
    check("made a SavedModel with keras", p.returncode == 0, p.stderr[-1500:])
    sm = os.path.join(TMP, "saved dense")
    expect("SavedModel: converted by tf2onnx, without -o beside it", ("convert", sm + "/", "--python", TF_PY,
                                                                      "--opset", "13"), 0,
           out=["tensorflow", "tf2onnx", "opset     13", "wrote"])
    onnx = sm + ".onnx"
    check("  written as 'saved dense.onnx'", os.path.exists(onnx) and not leftovers(TMP), str(os.listdir(TMP)))
    tx = list(struct.unpack("<8f", open(os.path.join(TMP, "tx.f32"), "rb").read()))
    ty = list(struct.unpack("<6f", open(os.path.join(TMP, "ty.f32"), "rb").read()))
    write_npy(os.path.join(TMP, "tx.npy"), (2, 4), tx)
    d = os.path.join(TMP, "tf-out")
    code, so, se = kiln("run", onnx, "--backend", "ref", "--input", "x=" + os.path.join(TMP, "tx.npy"),
                        "--output-dir", d, "--quiet")
    outs = os.listdir(d) if code == 0 and os.path.isdir(d) else []
    err = rel_err(read_npy(os.path.join(d, outs[0])), ty) if len(outs) == 1 else float("inf")
    check(f"  kiln run --backend ref at batch 2 matches keras ({err:.2e})", err < 1e-4, f"{code} {outs} {se[-400:]}")

print(f"{passed} passed, {failed} failed, {skipped} skipped")
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(1 if failed else 0)
