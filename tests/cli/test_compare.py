#!/usr/bin/env python3
"""kiln compare (issue #18): two engines on the same inputs, per-output
error; --bisect finds a layer planted to be wrong (ref vs ref with a fault,
$KILN_REF_FAULT through --fault) and names its node and op; onnxruntime as
the reference where it is installed; --save keeps the tensors. Also the
error measure of kiln bench --verify (a model that mixes the batch gives
wrong answers under the dynamic batcher: the requests are listed), and a
loaded plan's run-time errors naming the plan file, not the ONNX file.
Prints ok/FAIL/skip per case; exit 1 if any failed.
usage: test_compare.py KILN_BIN MODEL.onnx"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

KILN, MODEL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
TMP = tempfile.mkdtemp(prefix="kiln-compare-")
passed = failed = skipped = 0


def kiln(*args, env=None):
    e = dict(os.environ)
    e.pop("KILN_REF_FAULT", None)
    e.update(env or {})
    p = subprocess.run([KILN, *args], capture_output=True, text=True, cwd=TMP, timeout=300, env=e)
    return p.returncode, p.stdout, p.stderr


def check(label, ok, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {label}" + ("" if ok else f"\n     {detail.strip()[:900]}"))


def skip(label, why):
    global skipped
    skipped += 1
    print(f"skip {label}: {why}")


def expect(label, args, rc, out=(), err=(), not_out=(), env=None):
    code, so, se = kiln(*args, env=env)
    missing = [w for w in out if w not in so] + [w for w in err if w not in se]
    unwanted = [w for w in not_out if w in so]
    check(label, code == rc and not missing and not unwanted,
          f"exit {code} (want {rc}); missing {missing}; unwanted {unwanted}\n     stdout: {so[-600:]}\n"
          f"     stderr: {se[-400:]}")
    return code, so, se


def has(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


# ---- usage
expect("compare --help", ("compare", "--help"), 0, out=["usage: kiln compare", "--bisect"])
expect("compare without a model", ("compare",), 2, err=["no model given"])
expect("compare --a with an unknown backend", ("compare", MODEL, "--a", "tpu:fp16"), 2, err=["--a 'tpu:fp16'"])
expect("compare --b with an unknown precision", ("compare", MODEL, "--b", "cuda:fp12"), 2,
       err=["unknown precision 'fp12'"])
expect("compare --fault needs b on ref", ("compare", MODEL, "--a", "ref", "--b", "onnxruntime", "--fault", "x"), 2,
       err=["--fault"])
expect("compare --limit abc", ("compare", MODEL, "--a", "ref", "--limit", "abc"), 2, err=["--limit 'abc'"])

# ---- ref against itself: every output equal
expect("compare ref vs ref: within the limit, exit 0", ("compare", MODEL, "--a", "ref", "--b", "ref"), 0,
       out=["probs", "0.00e+00", "every output within the limit"])

# ---- a fault planted in b: the outputs differ, bisect names the layer
code, so, se = expect("compare with a fault: output over the limit, exit 1",
                      ("compare", MODEL, "--a", "ref", "--b", "ref", "--fault", "res.b.bn"), 1,
                      out=["OVER", "some output exceeds the limit"])
check("the planted fault is announced", "fault planted" in se, se[-300:])
code, so, se = expect("compare --bisect finds the planted layer",
                      ("compare", MODEL, "--a", "ref", "--b", "ref", "--fault", "res.b.bn", "--bisect"), 1,
                      out=["first layer over the limit: node 'res.b.bn' (BatchNormalization)",
                           "input 'res.b.conv': error 0.000e+00"])
# a fault further down, larger: still the first layer it touches, not a later one
expect("compare --bisect: a fault in the Gemm is found there",
       ("compare", MODEL, "--a", "ref", "--b", "ref", "--fault", "logits:1.5", "--bisect"), 1,
       out=["first layer over the limit: node 'fc' (Gemm)"])
expect("compare --bisect without a fault: every tensor within the limit",
       ("compare", MODEL, "--a", "ref", "--b", "ref", "--bisect"), 0, out=["every tensor is within the limit"],
       not_out=["first layer over"])
expect("compare --fault on a tensor the model lacks", ("compare", MODEL, "--a", "ref", "--fault", "nope", "--b", "ref"),
       1, err=["nope"])

# ---- --save: the tensors of both sides and the error table
save = os.path.join(TMP, "saved")
expect("compare --bisect --save", ("compare", MODEL, "--a", "ref", "--b", "ref", "--fault", "res.b.bn", "--bisect",
                                   "--save", save), 1, out=["saved"])
try:
    a = np.load(os.path.join(save, "a", "res.b.bn.npy"))
    b = np.load(os.path.join(save, "b", "res.b.bn.npy"))
    rel = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
    # b = 1.01 a: the relative difference is 0.01/1.01
    check("saved tensors hold the planted error (b = 1.01 a)", abs(rel - 0.01 / 1.01) < 1e-5, f"rel {rel}")
    rows = open(os.path.join(save, "errors.tsv")).read().splitlines()
    conv = [r for r in rows if r.startswith("res.b.conv\t")]
    check("errors.tsv lists every tensor with its node and op", len(rows) == 31 and conv and
          conv[0].split("\t")[2] == "Conv", f"{len(rows)} rows; {conv}")
except (OSError, ValueError) as e:
    check("saved tensors readable", False, str(e))

# ---- onnxruntime as the reference
if has("onnxruntime") and has("onnx"):
    expect("compare ref vs onnxruntime: within 1e-4", ("compare", MODEL, "--a", "ref", "--b", "onnxruntime"), 0,
           out=["onnxruntime", "every output within the limit"])
    expect("compare --bisect against onnxruntime: intermediates fetched",
           ("compare", MODEL, "--a", "ref", "--b", "onnxruntime", "--bisect"), 0,
           out=["30 tensors in execution order", "every tensor is within the limit"])
else:
    skip("compare against onnxruntime", "onnxruntime or onnx is not installed")
# an interpreter without onnxruntime: refused naming the package
fake = os.path.join(TMP, "nopython")
with open(fake, "w") as f:
    # -S: without site-packages, where numpy and onnxruntime live
    f.write("#!/bin/sh\nexec %s -S \"$@\"\n" % sys.executable)
os.chmod(fake, 0o755)
expect("compare --b onnxruntime without it: names the pip package",
       ("compare", MODEL, "--a", "ref", "--b", "onnxruntime", "--python", fake), 1, err=["pip install"])
expect("compare --python that does not exist", ("compare", MODEL, "--a", "ref", "--b", "onnxruntime", "--python",
                                                 os.path.join(TMP, "no-such-python")), 1, err=["cannot start"])

# ---- without a GPU, the default a (cuda:fp16) is refused with the hint
code, so, se = kiln("compare", MODEL)
if code == 1 and "--backend ref" in se:
    check("compare without a GPU: the --backend ref hint", True)
elif code == 0 or "OVER" in so:
    skip("compare's default cuda:fp16 refusal", "a GPU is present")
else:
    check("compare without a GPU: the --backend ref hint", False, f"exit {code} {se[-300:]}")

# ---- models made here: a batch-mixing model for bench --verify, a reshape that fails at run time
try:
    import onnx
    from onnx import TensorProto, helper

    # y = x - mean over the batch: a request's answer depends on the batch it rides in
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["m"], keepdims=1, axes=[0]), helper.make_node("Sub", ["x", "m"], ["y"])],
        "mix", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    mix = os.path.join(TMP, "mix.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), mix)
    # reshape to [5, -1]: fine at build (the batch is symbolic), impossible for a [1, 4] input
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [5, -1])
    g = helper.make_graph([helper.make_node("Reshape", ["x", "s"], ["y"], name="bad_reshape")], "rs",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    rs = os.path.join(TMP, "reshape.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), rs)
except ImportError:
    mix = rs = None
    skip("bench --verify and plan errors", "the onnx package is not installed")

if mix:
    args = ("bench", mix, "--backend", "ref", "--threads", "8", "--streams", "1", "--max-batch", "8",
            "--batch-delay-us", "20000", "--iterations", "6", "--warmup", "0", "--verify")
    code, so, se = expect("bench --verify: batched answers of a batch-mixing model are caught", args, 1,
                          out=["results over the limit 1.0e-04", "thread ", "request ", "output 'y' error"])
    expect("bench --verify on a correct model: passes", ("bench", MODEL, "--backend", "ref", "--threads", "4",
                                                         "--streams", "1", "--max-batch", "4", "--iterations", "5",
                                                         "--verify"), 0, out=["0 of 20 results over the limit"])
if rs:
    plan = os.path.join(TMP, "reshape.plan")
    code, so, se = kiln("build", rs, "--backend", "ref", "-o", plan)
    check("build the reshape plan", code == 0, se)
    np.save(os.path.join(TMP, "x.npy"), np.ones((1, 4), np.float32))
    code, so, se = kiln("run", plan, "--input", "x=" + os.path.join(TMP, "x.npy"))
    check("a loaded plan's run-time error names the plan file, not the ONNX file",
          code == 1 and "reshape.plan" in se and "reshape.onnx" not in se and "bad_reshape" in se, se[-400:])

# ---- on a GPU: cuda fp16 against cuda fp32 finds a layer fp16 cannot carry.
# y = conv_identity(x + 1000) - 1000: the conv reads and writes fp16 in an
# fp16 engine, whose spacing at 1000 is 0.5, so x's digits are lost there
# (its output is within fp16's limit relative to ~1000); the Sub after it is
# the first tensor over the limit.
code, so, se = kiln("compare", MODEL, "--a", "cuda:fp32", "--b", "ref")
if code == 1 and "--backend ref" in se:
    skip("compare on cuda (fp16 vs fp32 bisect, cuda vs ref)", "no GPU here")
elif rs is None:
    skip("compare on cuda", "the onnx package is not installed")
else:
    check("compare cuda:fp32 vs ref on tinynet: within 1e-4", code == 0 and "every output within the limit" in so,
          f"exit {code}\n{so[-500:]}\n{se[-300:]}")
    c1000 = helper.make_tensor("c", TensorProto.FLOAT, [], [1000.0])
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 8, 1, 1], np.eye(8, dtype=np.float32).ravel().tolist())
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "c"], ["big"], name="add_big"),
         helper.make_node("Conv", ["big", "w"], ["conv"], name="conv_identity"),
         helper.make_node("Sub", ["conv", "c"], ["y"], name="sub_back")],
        "fp16hostile", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], [c1000, w])
    hostile = os.path.join(TMP, "fp16hostile.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), hostile)
    expect("compare --bisect cuda:fp16 vs cuda:fp32 names the layer fp16 cannot carry",
           ("compare", hostile, "--a", "cuda:fp16", "--b", "cuda:fp32", "--bisect"), 1,
           out=["first layer over the limit: node 'sub_back' (Sub)", "cuda fp16", "cuda fp32"])

print(f"compare: {passed} passed, {failed} failed, {skipped} skipped")
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(1 if failed else 0)
