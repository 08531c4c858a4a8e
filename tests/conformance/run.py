#!/usr/bin/env python3
"""ONNX backend node tests on kiln's reference backend.

usage: run.py --kiln KILN_BIN [--data DIR] [--ops Conv,Relu] [-k REGEX]
              [--expected-failures FILE] [-j N] [-v]

Data. The onnx wheel does not ship the node test data, so it is generated
from onnx.backend.test.case.node.collect_testcases() into DIR/node/<test>/
(model.onnx, test_data_set_0/input_K.pb, output_K.pb: the layout of onnx's
own backend/test/data, see onnx/backend/test/cmd_tools.py). DIR defaults to
build/onnx-node-tests; it is generated once (DIR/.complete marks it done) and
reused. A DIR that already holds onnx's data (DIR/node/...) works as is.

Which tests run. The tests of every opset kiln reads (KILN_MIN_OPSET ..
KILN_MAX_OPSET, src/onnx/onnx.h) are this run; those of other opsets (onnx
ships tests of newer opsets than kiln reads, and a few of opset 1) are only
counted, on a line of their own. A test runs when every node of its model
(subgraphs included) is an op of kiln's core set, the rows of the op table
src/ir/ops.def, in the default domain, and every graph input and output is
a tensor of a dtype kiln has and .npy can carry (f32 f16 f64 i8 u8 i32 i64
bool). Others are "skipped" with the reason. A test is filed under its op:
the op of its single node; for X_expanded (the function body of op X) the
op of X's test.

How it runs. Inputs become .npy files;
  KILN_BIN run model.onnx --backend ref --input NAME=FILE.npy ... --output-dir D
(--shapes NAME:DxD.. too where the model leaves an input dim open) and kiln
writes D/<output name, chars outside [A-Za-z0-9._-] as '_'>.npy. Each output
must have the expected dtype and shape, and pass
numpy.testing.assert_allclose(out, ref, rtol, atol) with the backend test
runner's defaults rtol=1e-3, atol=1e-7 (onnx/backend/test/runner: the node
cases carry no overrides of their own; TOLERANCE below holds ours, if any).
kiln reads every op version of opsets KILN_MIN_OPSET..KILN_MAX_OPSET
(natively or through an import adapter), so a refusal of a version is a
failure like any other.

Result. A per-op table (op, passed, failed, skipped), the failures with a
one-line reason, how many tests of other opsets were left out, the core-op
pass rate (of the core-op tests whose inputs and outputs have dtypes kiln
has), and last exactly "node tests of opsets MIN-MAX: T; N passed, N failed,
N skipped" (T = N + N + N). Exit status 1 when a failure is not listed
in the expected-failures file (lines "test_name  # reason"); expected
failures that now pass are listed so the file can shrink.
"""
import argparse
import collections
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TIMEOUT = 120
RTOL, ATOL = 1e-3, 1e-7
TOLERANCE = {}  # test name -> (rtol, atol), for a test that needs looser ones (none yet)
# tests no implementation can pass: their reference comes from numpy's RNG
SKIP = {r"^test_training_dropout(?!_zero_ratio)": "training-mode Dropout is random"}

# dtypes kiln has (include/kiln.h) that a .npy file can carry without ml_dtypes
NPY_DTYPES = {TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32,
              TensorProto.INT64, TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.DOUBLE}
# kiln dtypes NumPy has no dtype for: `kiln run` reads and writes them as
# float32, which holds every value of theirs exactly (docs/cli.md)
F32_CARRIED = {TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN}
CARRIED_NAMES = {"bfloat16", "float8_e4m3fn"}


def core_ops():
    """The ops of kiln's op table: every KILN_OP / KILN_OP_ADAPTED row of src/ir/ops.def."""
    src = open(os.path.join(ROOT, "src", "ir", "ops.def")).read()
    return set(re.findall(r"^KILN_OP(?:_ADAPTED)?\((\w+),", src, re.M))


def opset_range():
    """(KILN_MIN_OPSET, KILN_MAX_OPSET) from src/onnx/onnx.h."""
    src = open(os.path.join(ROOT, "src", "onnx", "onnx.h")).read()
    lo = re.search(r"#define\s+KILN_MIN_OPSET\s+(\d+)", src)
    hi = re.search(r"#define\s+KILN_MAX_OPSET\s+(\d+)", src)
    return int(lo.group(1)), int(hi.group(1))


# ------------------------------------------------------------------ data

def generate(data_dir):
    """Writes the node test cases in onnx's layout (after cmd_tools.generate_data)."""
    import warnings

    import onnx.backend.test.case.node as node_cases

    warnings.simplefilter("ignore")  # the case generators overflow on purpose
    node_dir = os.path.join(data_dir, "node")
    shutil.rmtree(node_dir, ignore_errors=True)
    with np.errstate(all="ignore"):
        cases = node_cases.collect_testcases()
    print(f"generating {len(cases)} ONNX node tests into {node_dir} ...", flush=True)

    def proto(value, vinfo):
        t = vinfo.type
        if t.HasField("map_type"):
            return numpy_helper.from_dict(value, vinfo.name)
        if t.HasField("sequence_type"):
            return numpy_helper.from_list(value, vinfo.name)
        if t.HasField("optional_type"):
            return numpy_helper.from_optional(value, vinfo.name)
        if isinstance(value, TensorProto):
            return value
        return numpy_helper.from_array(value, vinfo.name)

    for case in cases:
        out = os.path.join(node_dir, case.name)
        os.makedirs(out)
        with open(os.path.join(out, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(out, f"test_data_set_{i}")
            os.makedirs(ds)
            for kind, values, infos in (("input", inputs, case.model.graph.input),
                                        ("output", outputs, case.model.graph.output)):
                for j, v in enumerate(values):
                    with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(proto(v, infos[j]).SerializeToString())
    open(os.path.join(data_dir, ".complete"), "w").write(f"onnx {onnx.__version__}\n")


def ensure_data(data_dir):
    node_dir = os.path.join(data_dir, "node")
    if os.path.exists(os.path.join(data_dir, ".complete")) or (
            os.path.isdir(node_dir) and not os.path.exists(os.path.join(data_dir, ".generating"))
            and os.listdir(node_dir)):
        return node_dir
    os.makedirs(data_dir, exist_ok=True)
    open(os.path.join(data_dir, ".generating"), "w").close()
    generate(data_dir)
    os.remove(os.path.join(data_dir, ".generating"))
    return node_dir


# ------------------------------------------------------------- selection

def all_nodes(graph):
    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from all_nodes(a.g)
            for g in a.graphs:
                yield from all_nodes(g)


def opset_of(m):
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)


class Test:
    def __init__(self, name, path):
        self.name, self.path = name, path
        self.model = onnx.load(os.path.join(path, "model.onnx"), load_external_data=False)
        self.ops = [(n.domain, n.op_type) for n in all_nodes(self.model.graph)]
        self.op = None
        self.skip = None


def own_op(t):
    """The op a non-expanded test is about."""
    ops = [op for dom, op in t.ops]
    if len(set(ops)) == 1:
        return ops[0]
    key = t.name[len("test_"):].replace("_", "").lower()
    best = [op for op in ops if key.startswith(op.lower())]
    return max(best, key=len) if best else (ops[0] if ops else "?")


def select(node_dir, core, ops_filter, pattern, opsets):
    """(tests of opsets in `opsets`, number of tests of other opsets left out)."""
    names = sorted(d for d in os.listdir(node_dir) if os.path.isdir(os.path.join(node_dir, d)))
    tests = {n: Test(n, os.path.join(node_dir, n)) for n in names if not pattern or re.search(pattern, n)}
    lo, hi = opsets
    # a model without a default-domain opset has no ai.onnx op: kept (skipped as not core)
    outside = {n for n, t in tests.items() if opset_of(t.model) is not None and not lo <= opset_of(t.model) <= hi}
    for t in tests.values():
        base = re.sub(r"_expanded(_ver\d+)?$", "", t.name)
        if base != t.name:
            if base not in tests and os.path.isdir(os.path.join(node_dir, base)):
                tests_base = Test(base, os.path.join(node_dir, base))
            else:
                tests_base = tests.get(base)
            t.op = own_op(tests_base) if tests_base else own_op(t)
        else:
            t.op = own_op(t)
    out = []
    for t in tests.values():
        if ops_filter and t.op not in ops_filter:
            continue
        if t.name in outside:
            continue
        foreign = sorted({f"{d}:{o}" if d not in ("", "ai.onnx") else o for d, o in t.ops
                          if d not in ("", "ai.onnx") or o not in core})
        if foreign:
            t.skip = "not core: " + ",".join(foreign)
        elif any(re.search(p, t.name) for p in SKIP):
            t.skip = next(why for p, why in SKIP.items() if re.search(p, t.name))
        else:
            t.skip = io_problem(t.model)
        out.append(t)
    n_outside = sum(1 for n in outside if not ops_filter or tests[n].op in ops_filter)
    return out, n_outside


def io_problem(m):
    inits = {i.name for i in m.graph.initializer}
    for v in list(m.graph.input) + list(m.graph.output):
        if v.name in inits:
            continue
        if not v.type.HasField("tensor_type"):
            return f"{v.name} is a {v.type.WhichOneof('value')}, not a tensor"
        et = v.type.tensor_type.elem_type
        if et not in NPY_DTYPES and et not in F32_CARRIED:
            return f"dtype {TensorProto.DataType.Name(et)}: not a kiln dtype"
    return None


# ------------------------------------------------------------------ running

def sanitize(name):
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def load_pb(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


BACKEND = ["--backend", "ref"]
UNSUPPORTED = re.compile(r"not supported|unsupported|no kernel|cannot run|does not support", re.I)


def run_test(kiln, t):
    """(status, reason): status in pass, fail, skip."""
    if t.skip:
        return "skip", t.skip
    m = t.model
    inits = {i.name for i in m.graph.initializer}
    inputs = [v for v in m.graph.input if v.name not in inits]
    sets = sorted(d for d in os.listdir(t.path) if d.startswith("test_data_set_"))
    rtol, atol = TOLERANCE.get(t.name, (RTOL, ATOL))
    with tempfile.TemporaryDirectory(prefix="kiln-conf-") as tmp:
        for ds in sets:
            dsp = os.path.join(t.path, ds)
            args = []
            for k, v in enumerate(inputs):
                pb = os.path.join(dsp, f"input_{k}.pb")
                if not os.path.exists(pb):
                    continue
                x = load_pb(pb)
                if x.dtype.name in CARRIED_NAMES:
                    x = x.astype(np.float32)
                f = os.path.join(tmp, f"in{k}.npy")
                np.save(f, x)
                args += ["--input", f"{v.name}={f}"]
                dims = v.type.tensor_type.shape.dim
                if x.ndim and (len(dims) != x.ndim or any(not d.HasField("dim_value") for d in dims)):
                    args += ["--shapes", f"{v.name}:" + "x".join(map(str, x.shape))]
            odir = os.path.join(tmp, "out_" + ds)
            os.makedirs(odir)
            cmd = [kiln, "run", os.path.join(t.path, "model.onnx"), *BACKEND, *args, "--output-dir", odir]
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, errors="replace")
            except subprocess.TimeoutExpired:
                return "fail", f"timed out after {TIMEOUT} s"
            err = " ".join(p.stderr.split())
            if p.returncode < 0:
                return "fail", f"kiln crashed (signal {-p.returncode}) {err[:150]}"
            if p.returncode == 1 and BACKEND[1] != "ref" and UNSUPPORTED.search(err):
                return "skip", "unsupported on " + BACKEND[1] + ": " + err[:150]
            if p.returncode != 0:
                return "fail", f"kiln exit {p.returncode}: {err[:200]}"
            for k, o in enumerate(m.graph.output):
                pb = os.path.join(dsp, f"output_{k}.pb")
                if not os.path.exists(pb):
                    continue
                ref = load_pb(pb)
                if ref.dtype.name in CARRIED_NAMES:
                    ref = ref.astype(np.float32)
                f = os.path.join(odir, sanitize(o.name) + ".npy")
                if not os.path.exists(f):
                    return "fail", f"no output file for '{o.name}'"
                try:
                    got = np.load(f)
                except Exception as e:
                    return "fail", f"output '{o.name}' unreadable: {e}"
                if got.dtype != ref.dtype:
                    return "fail", f"output '{o.name}' dtype {got.dtype}, expected {ref.dtype}"
                if got.shape != ref.shape:
                    return "fail", f"output '{o.name}' shape {list(got.shape)}, expected {list(ref.shape)}"
                try:
                    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)
                except AssertionError as e:
                    return "fail", f"output '{o.name}': " + mismatch(e, got, ref)
    return "pass", ""


def mismatch(e, got, ref):
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip().startswith(("Mismatched", "Max abs", "Max rel"))]
    worst = ""
    try:
        d = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        if d.size:
            i = np.unravel_index(np.nanargmax(np.where(np.isnan(d), np.inf, d)), d.shape)
            worst = f"; at {list(map(int, i))}: got {got[i]!r}, want {ref[i]!r}"
    except Exception:
        pass
    return "; ".join(lines) + worst


def read_expected(path):
    exp = {}
    if path and os.path.exists(path):
        for line in open(path):
            name, _, why = line.partition("#")
            if name.strip():
                exp[name.strip()] = why.strip()
    return exp


def main():
    ap = argparse.ArgumentParser(description="ONNX backend node tests on kiln's ref backend")
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--data", default=os.path.join(ROOT, "build", "onnx-node-tests"))
    ap.add_argument("--ops", help="only tests of these ops, comma-separated")
    ap.add_argument("-k", dest="pattern", help="only tests whose name matches this regex")
    ap.add_argument("--expected-failures", default=os.path.join(HERE, "expected_failures.txt"))
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("-v", action="store_true", help="print every test's result")
    ap.add_argument("--backend", default="ref", help="ref (default) or cuda: the GPU engine, built per test")
    ap.add_argument("--precision", default="fp32", help="the cuda engine's precision (fp32 is held to the same "
                    "tolerance as ref)")
    a = ap.parse_args()
    BACKEND[:] = ["--backend", a.backend] + (["--precision", a.precision] if a.backend != "ref" else [])

    node_dir = ensure_data(a.data)
    core = core_ops()
    lo, hi = opset_range()
    tests, n_outside = select(node_dir, core, set(a.ops.split(",")) if a.ops else None, a.pattern, (lo, hi))
    expected = read_expected(a.expected_failures)

    results = {}
    with concurrent.futures.ThreadPoolExecutor(max(1, a.j)) as ex:
        futs = {ex.submit(run_test, a.kiln, t): t for t in tests}
        for fu in concurrent.futures.as_completed(futs):
            t = futs[fu]
            try:
                results[t.name] = fu.result()
            except Exception as e:  # a bug in this script or unreadable data
                results[t.name] = ("fail", f"runner error: {type(e).__name__}: {e}")
            if a.v:
                st, why = results[t.name]
                print(f"{st:4}  {t.name}  {why}", flush=True)

    per_op = collections.defaultdict(lambda: [0, 0, 0])
    idx = {"pass": 0, "fail": 1, "skip": 2}
    for t in tests:
        st, _ = results[t.name]
        if st == "skip" and t.skip and t.skip.startswith("not core"):
            continue  # the table is about kiln's ops; these are only counted below
        per_op[t.op][idx[st]] += 1
    print(f"{'op':<24} {'passed':>6} {'failed':>6} {'skipped':>7}")
    for op in sorted(per_op):
        p, f, s = per_op[op]
        print(f"{op:<24} {p:>6} {f:>6} {s:>7}")

    failed = sorted(n for n, (st, _) in results.items() if st == "fail")
    unexpected = [n for n in failed if n not in expected]
    xfail = [n for n in failed if n in expected]
    xpass = sorted(n for n, (st, _) in results.items() if st == "pass" and n in expected)
    if failed:
        print(f"\nfailures ({len(unexpected)} unexpected, {len(xfail)} expected):")
        for n in failed:
            print(f"  {'' if n in expected else 'NEW '}{n}: {results[n][1]}")
    if xpass:
        print(f"\nexpected failures that now pass (remove them from {a.expected_failures}):")
        for n in xpass:
            print(f"  {n}")

    n_pass = sum(st == "pass" for st, _ in results.values())
    n_skip = sum(st == "skip" for st, _ in results.values())
    skip_why = collections.Counter(
        ("not core op" if why.startswith("not core") else "dtype" if why.startswith("dtype")
         else "unsupported on the backend" if why.startswith("unsupported on")
         else "random" if why in SKIP.values() else "input/output type")
        for st, why in results.values() if st == "skip")
    core_tests = [t for t in tests if not (t.skip and t.skip.startswith("not core"))]
    # the tests kiln could pass: core ops, and inputs/outputs of dtypes it has
    # (the random ones count: no implementation passes them)
    typed = [t for t in core_tests if not (t.skip and (t.skip.startswith("dtype") or " is a " in t.skip))]
    ran = n_pass + len(failed)
    print("\nskipped: " + (", ".join(f"{v} {k}" for k, v in sorted(skip_why.items())) or "none"))
    if n_outside:
        print(f"not run: {n_outside} node tests of opsets outside {lo}-{hi} (kiln reads opsets {lo} to {hi})")
    if core_tests:
        print(f"core-op tests: {len(core_tests)}, {len(typed)} of them with dtypes kiln has; pass rate "
              f"{n_pass}/{len(typed)} = {100.0 * n_pass / max(len(typed), 1):.1f}% (of those run: {n_pass}/{ran} = "
              f"{100.0 * n_pass / max(ran, 1):.1f}%)")
    print(f"node tests of opsets {lo}-{hi}: {len(results)}; {n_pass} passed, {len(failed)} failed, {n_skip} skipped")
    sys.exit(1 if unexpected else 0)


if __name__ == "__main__":
    main()
