#!/usr/bin/env python3
"""Checks kiln's shape and dtype inference against ONNX's, and its refusals.

usage: check_shapes.py KILN_BIN MODEL_DIR      (MODEL_DIR written by gen.py)

1. Inference. For every valid model of MODEL_DIR/manifest.json (importer
   models and zoo), twice: as written (symbolic batch) and with every
   symbolic input dim fixed to 2 (`inspect --shapes NAME:2x...`), it runs
   `KILN_BIN inspect MODEL --json --values` and
   onnx.shape_inference.infer_shapes(strict_mode=True, data_prop=True) on the
   same model (inputs fixed the same way). For every tensor that ONNX types
   (graph inputs, value_info, graph outputs):
     - kiln must list it in "values"; its dtype must be the same;
     - where ONNX knows the rank, kiln's rank must be the same;
     - each dim, ONNX's against kiln's:
         ONNX int N              kiln must say N (an int);
         ONNX dim_param P, where P is a name the model itself uses on a graph
         input or output ("batch")   kiln must say "P" (the same name);
         ONNX dim_param it made up itself ("unk__0") or no value at all:
                                 not checked (ONNX does not know either);
       so kiln may know more than ONNX, never less or something else.
2. Refusals. For every bad model in the manifest, `KILN_BIN inspect MODEL`
   must exit 1 (not crash, not 0, not 2) with a message on stderr naming the
   file (its base name) and at least one of the manifest's "expect_any"
   strings (the node or tensor at fault). Models whose fault is an op kiln
   cannot run ("at": "build") may instead load (kiln.h: a load does not fail
   on unsupported nodes) provided `inspect` lists the node by name; then
   `KILN_BIN run MODEL --backend ref` must exit 1 naming the node.
   A model marked "escape" (external data at ../../etc/passwd) is also copied
   to T/a/b/ with a T/etc/passwd big enough to hold the tensors: kiln must
   refuse it there too, where the file it points at exists (a location must
   stay inside the model's folder, ONNX external data spec).

Prints one line per check, a diff for each mismatch, then "N passed, N failed";
exits 1 if anything failed.
"""
import json
import os
import subprocess
import sys
import tempfile

import onnx
from onnx import shape_inference

TIMEOUT = 120

DTYPE_NAMES = {  # ONNX TensorProto.DataType -> names kiln may use for it
    1: {"f32", "float32", "float"}, 2: {"u8", "uint8"}, 3: {"i8", "int8"},
    4: {"u16", "uint16"}, 5: {"i16", "int16"}, 6: {"i32", "int32"}, 7: {"i64", "int64"},
    9: {"bool"}, 10: {"f16", "float16"}, 11: {"f64", "float64", "double"},
    16: {"bf16", "bfloat16"}, 17: {"f8e4m3", "float8e4m3fn"},
}


def run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, errors="replace")
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return "timeout", "", f"timed out after {TIMEOUT} s"


def describe_rc(rc):
    if rc == "timeout":
        return "timed out"
    if isinstance(rc, int) and rc < 0:
        return f"crashed (signal {-rc})"
    return f"exit {rc}"


def model_dim_names(m):
    names = set()
    for v in list(m.graph.input) + list(m.graph.output):
        for d in v.type.tensor_type.shape.dim:
            # '?' (and an empty name) is anonymous: each such dim is its own
            # unknown, which kiln names ?1, ?2, ... and ONNX calls '?'
            if d.HasField("dim_param") and d.dim_param not in ("", "?"):
                names.add(d.dim_param)
    return names


def fix_inputs(m, value=2):
    """Model copy with every symbolic input dim set to `value`; the --shapes args."""
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    inits = {i.name for i in m2.graph.initializer}
    args = []
    for v in m2.graph.input:
        if v.name in inits:
            continue
        dims = v.type.tensor_type.shape.dim
        # no value, a name, or a negative value (-1, as exporters write a free dim)
        if any(not d.HasField("dim_value") or d.dim_value < 0 for d in dims):
            for d in dims:
                if not d.HasField("dim_value") or d.dim_value < 0:
                    d.dim_value = value
            args += ["--shapes", f"{v.name}:" + "x".join(str(d.dim_value) for d in dims)]
    # outputs keep their declared symbolic dims out of the way of inference
    for v in m2.graph.output:
        for d in v.type.tensor_type.shape.dim:
            if d.HasField("dim_param") or (d.HasField("dim_value") and d.dim_value < 0):
                d.Clear()
    return m2, args


def onnx_types(m):
    """name -> (elem_type, dims or None); dims: int, str (dim_param) or None."""
    inf = shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    inits = {i.name for i in inf.graph.initializer}
    out = {}
    for v in list(inf.graph.input) + list(inf.graph.value_info) + list(inf.graph.output):
        if v.name in inits or not v.type.HasField("tensor_type"):
            continue
        tt = v.type.tensor_type
        if not tt.elem_type:
            continue
        dims = None
        if tt.HasField("shape"):
            # a negative value (-1) is an anonymous unknown, as '?' is
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value >= 0
                    else (d.dim_param if d.HasField("dim_param") and d.dim_param != "?" else None)
                    for d in tt.shape.dim]
        out[v.name] = (tt.elem_type, dims)
    return out


def compare(expected, kiln_values, user_names):
    """Mismatch lines, empty when kiln agrees with ONNX under the rule above."""
    kv = {v.get("name"): v for v in kiln_values}
    diffs = []
    for name, (et, dims) in expected.items():
        k = kv.get(name)
        if k is None:
            diffs.append(f"  {name}: onnx {fmt(et, dims)}, kiln does not list it")
            continue
        if str(k.get("dtype")).lower() not in DTYPE_NAMES.get(et, {str(et)}) and k.get("dtype") != et:
            diffs.append(f"  {name}: dtype onnx {onnx.helper.tensor_dtype_to_np_dtype(et)}, kiln {k.get('dtype')}")
        if dims is None:
            continue
        ks = k.get("shape")
        if not isinstance(ks, list) or len(ks) != len(dims):
            diffs.append(f"  {name}: shape onnx {fmt(et, dims)}, kiln {ks}")
            continue
        bad = []
        for i, (o, kd) in enumerate(zip(dims, ks)):
            if isinstance(o, int) and not (isinstance(kd, int) and not isinstance(kd, bool) and kd == o):
                bad.append(i)
            elif isinstance(o, str) and o in user_names and kd != o:
                bad.append(i)
        if bad:
            diffs.append(f"  {name}: shape onnx {dims_str(dims)}, kiln {dims_str(ks)} (dims {bad} differ)")
    return diffs


def dims_str(dims):
    return "[" + ",".join("?" if d is None else str(d) for d in dims) + "]"


def fmt(et, dims):
    return f"{onnx.helper.tensor_dtype_to_np_dtype(et)}{'' if dims is None else dims_str(dims)}"


class Tally:
    def __init__(self):
        self.passed = self.failed = 0

    def ok(self, what):
        self.passed += 1
        print(f"PASS  {what}")

    def fail(self, what, detail):
        self.failed += 1
        print(f"FAIL  {what}")
        for line in detail:
            print(line)


def check_inference(kiln, path, t):
    base = os.path.basename(path)
    m = onnx.load(path, load_external_data=False)
    user_names = model_dim_names(m)
    variants = [("symbolic", m, [])]
    fixed, args = fix_inputs(m)
    if args:
        variants.append(("batch=2", fixed, args))
    for label, mv, args in variants:
        what = f"infer {base} [{label}]"
        try:
            expected = onnx_types(mv)
        except Exception as e:  # the generator's models are valid: this is a test bug
            t.fail(what, [f"  onnx shape inference failed: {e}"])
            continue
        rc, out, err = run([kiln, "inspect", path, "--json", "--values"] + args)
        if rc != 0:
            t.fail(what, [f"  kiln inspect: {describe_rc(rc)}: {err.strip()[:500]}"])
            continue
        try:
            values = json.loads(out)["values"]
        except Exception as e:
            t.fail(what, [f"  kiln's JSON has no readable \"values\" ({e}): {out[:300]!r}"])
            continue
        diffs = compare(expected, values, user_names if label == "symbolic" else set())
        if diffs:
            t.fail(what + f": {len(diffs)} of {len(expected)} tensors differ", diffs)
        else:
            t.ok(what + f": {len(expected)} tensors agree")


def check_refusal(kiln, path, spec, t):
    base = os.path.basename(path)
    what = f"refuse {base}"
    expect = spec["expect_any"]

    def names_it(text):
        return base in text and (not expect or any(s in text for s in expect))

    want = f"'{base}'" + (f" and one of {expect}" if expect else "")
    rc, out, err = run([kiln, "inspect", path])
    if rc == 1:
        if names_it(err):
            t.ok(what + ": inspect exit 1, message names it")
        else:
            t.fail(what, [f"  inspect exit 1 but stderr does not name {want}:", f"  stderr: {err.strip()[:500]}"])
        return
    if rc == 0 and spec["at"] == "build":
        if not any(s in out for s in expect):
            t.fail(what, [f"  inspect exit 0 and its report does not list {expect}", f"  stdout: {out[:500]}"])
            return
        with tempfile.TemporaryDirectory() as d:
            rc, out, err = run([kiln, "run", path, "--backend", "ref", "--seed", "0", "--output-dir", d])
        if rc == 1 and names_it(err):
            t.ok(what + ": inspect lists the node, run refuses it by name")
        else:
            t.fail(what, [f"  inspect lists the node, but run: {describe_rc(rc)}, stderr must name {want}:",
                          f"  stderr: {err.strip()[:500]}"])
        return
    t.fail(what, [f"  inspect: {describe_rc(rc)} (expected exit 1)", f"  stderr: {err.strip()[:500]}"])


def check_escape(kiln, path, t):
    base = os.path.basename(path)
    what = f"refuse {base} where the escaped-to file exists"
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "a", "b"))
        os.makedirs(os.path.join(d, "etc"))
        with open(os.path.join(d, "etc", "passwd"), "wb") as f:
            f.write(b"\0" * 65536)
        copy = os.path.join(d, "a", "b", base)
        with open(path, "rb") as src, open(copy, "wb") as dst:
            dst.write(src.read())
        rc, out, err = run([kiln, "inspect", copy])
    if rc == 1 and base in err:
        t.ok(what + ": inspect exit 1")
    else:
        t.fail(what, [f"  inspect: {describe_rc(rc)} (expected exit 1: kiln read a file outside the model's folder)",
                      f"  stderr: {err.strip()[:500]}"])


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_shapes.py KILN_BIN MODEL_DIR")
    kiln, mdir = sys.argv[1], sys.argv[2]
    with open(os.path.join(mdir, "manifest.json")) as f:
        man = json.load(f)
    t = Tally()
    for name in man["valid"] + man["zoo"]:
        check_inference(kiln, os.path.join(mdir, name), t)
    for name, spec in man["bad"].items():
        check_refusal(kiln, os.path.join(mdir, name), spec, t)
        if spec.get("escape"):
            check_escape(kiln, os.path.join(mdir, name), t)
    print(f"{t.passed} passed, {t.failed} failed")
    sys.exit(1 if t.failed else 0)


if __name__ == "__main__":
    main()
