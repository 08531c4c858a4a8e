#!/usr/bin/env python3
"""The Python package's overhead at batch 1 against the C API, on one plan.

    python/bench_overhead.py MODEL.onnx|MODEL.plan [--backend cuda|ref] [--iterations N]
                             [--warmup N] [--rounds N] [--kiln build/kiln] [--torch] [--json FILE]

C:      `kiln bench PLAN --iterations N --warmup W --json ...`: one client
        thread calling kiln_engine_infer on host buffers, its median latency
        (LD_LIBRARY_PATH starting with kiln.cuda_library_dirs(), so that it
        runs on the same cuDNN as this process, under which the plan loads).
Python: engine(x) on a numpy array of the same shape (symbolic dims = 1, as
        kiln bench does), timed per call with perf_counter, its median.
Both cycle through 16 random inputs. The two alternate for --rounds rounds
and the median of each side's medians is compared: overhead % =
(python - c) / c * 100; the goal is <= 5 %. Also printed, for reading the
figure: a bare ctypes call of kiln_engine_infer on prepared structs (what
any Python binding pays at least) and, with --torch on a cuda plan, the
torch-CUDA-tensor path (kiln_context_enqueue, synchronized per call).

An .onnx model is built first (kiln.build, no cache) and saved as a plan in
a temporary folder, so that both sides run the very same plan.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

import kiln  # noqa: E402
from kiln import _lib  # noqa: E402

VARIANTS = 16


def find_cli(arg):
    if arg:
        return arg
    for p in (os.path.join(os.path.dirname(kiln.library_path), "kiln"), shutil.which("kiln")):
        if p and os.path.exists(p):
            return p
    sys.exit("bench_overhead: no kiln CLI found next to the library; pass --kiln build/kiln")


def cli_env():
    """The environment of the kiln CLI: the cuDNN / cuBLASLt this process
    uses (PyTorch's pip packages, which kiln preloads) first on its library
    path. A plan records its cuDNN version, so both sides must load the same
    copy to run the same plan."""
    env = dict(os.environ)
    dirs = kiln.cuda_library_dirs()
    if dirs:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(dirs + [p for p in [env.get("LD_LIBRARY_PATH")] if p])
    return env


def c_median(cli, plan, iterations, warmup, tmp):
    out = os.path.join(tmp, "c.json")
    r = subprocess.run([cli, "bench", plan, "--iterations", str(iterations), "--warmup", str(warmup),
                        "--json", out], capture_output=True, text=True, env=cli_env())
    if r.returncode != 0:
        sys.exit(f"bench_overhead: kiln bench failed:\n{r.stderr}")
    with open(out) as f:
        return json.load(f)["latency_ms"]["median"] * 1e3


def batch1_inputs(engine):
    rng = np.random.default_rng(1)
    sets = []
    for _ in range(VARIANTS):
        xs = []
        for t in engine.inputs:
            shape = tuple(d if isinstance(d, int) else 1 for d in t.shape)
            dt = t.numpy_dtype
            if dt.kind == "f":
                a = rng.uniform(-1, 1, shape).astype(dt)
            elif dt.kind == "b":
                a = rng.integers(0, 2, shape).astype(dt)
            else:
                a = rng.integers(0, 8, shape).astype(dt)
            xs.append(a)
        sets.append(xs)
    return sets


def timed(fn, sets, iterations, warmup):
    for i in range(warmup):
        fn(sets[i % VARIANTS])
    lat = []
    pc = time.perf_counter
    for i in range(iterations):
        xs = sets[i % VARIANTS]
        t = pc()
        fn(xs)
        lat.append(pc() - t)
    return statistics.median(lat) * 1e6


def raw_ctypes_fn(engine, sets):
    """kiln_engine_infer on structs prepared once per input variant: the
    floor of any ctypes binding."""
    n_in, n_out = len(engine.inputs), len(engine.outputs)
    first = engine.infer(list(sets[0]))
    outs_np = [np.empty_like(first[n]) for n in engine.output_names]
    # The structs hold bare addresses, which keep nothing alive: each entry
    # also holds the arrays its pointers point into, and fn holds the entries.
    prepared = {}
    for xs in sets:
        ins = (_lib.Tensor * n_in)()
        for i, a in enumerate(xs):
            ins[i].dtype, ins[i].rank = engine._in_code[i], a.ndim
            ins[i].dims[:a.ndim] = a.shape
            ins[i].data = a.ctypes.data
        outs = (_lib.Tensor * n_out)()
        for i, o in enumerate(outs_np):
            outs[i].dtype, outs[i].rank = engine._out_code[i], o.ndim
            outs[i].dims[:o.ndim] = o.shape
            outs[i].data = o.ctypes.data
        prepared[id(xs)] = (ins, outs, xs, outs_np)
    for ins, *_ in prepared.values():
        for i in range(n_in):
            ins[i].name = engine._in_name_ptr[i]  # the engine's buffers: alive while engine is
    infer, h = _lib.lib.engine_infer, engine._h

    def fn(xs):
        ins, outs, _, _ = prepared[id(xs)]
        if infer(h, n_in, ins, n_out, outs) != 0:
            raise _lib.last_error(1)
    return fn


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="an ONNX model (built first) or a plan")
    ap.add_argument("--backend", default="cuda", choices=("cuda", "ref"), help="for an ONNX model (default cuda)")
    ap.add_argument("--precision", default=None, help="for an ONNX model (default: fp16 on cuda, fp32 on ref)")
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kiln", help="the kiln CLI (default: next to libkiln.so)")
    ap.add_argument("--torch", action="store_true", help="also time torch CUDA tensors in and out (cuda plans)")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    cli = find_cli(a.kiln)

    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        if _lib.lib.is_plan_file(os.fsencode(a.model)):
            plan = a.model
            try:
                engine = kiln.load(plan)
            except kiln.KilnError as e:
                if e.status_name != "KILN_ERR_VERSION":
                    raise
                dirs = os.pathsep.join(kiln.cuda_library_dirs())
                sys.exit(f"bench_overhead: {e}\nPass the ONNX model instead, or rebuild the plan with the CLI on "
                         f"the libraries this process uses"
                         + (f":\n  LD_LIBRARY_PATH={dirs}:$LD_LIBRARY_PATH {cli} build MODEL.onnx ... -o {plan}"
                            if dirs else " (docs/python.md)"))
        else:
            engine, _ = kiln.build(a.model, backend=a.backend, precision=a.precision, cache=False)
            plan = os.path.join(tmp, "bench.plan")
            engine.save(plan)
        engine.set_pool_limits(1, 1)  # as kiln bench --threads 1
        sets = batch1_inputs(engine)
        py_fn = (lambda xs: engine(xs[0])) if len(sets[0]) == 1 else (lambda xs: engine(*xs))
        raw_fn = raw_ctypes_fn(engine, sets)

        c_runs, py_runs, raw_runs = [], [], []
        for r in range(a.rounds):
            c_runs.append(c_median(cli, plan, a.iterations, a.warmup, tmp))
            py_runs.append(timed(py_fn, sets, a.iterations, a.warmup))
            raw_runs.append(timed(raw_fn, sets, a.iterations, a.warmup))
            print(f"round {r + 1}: C {c_runs[-1]:.1f} us, Python {py_runs[-1]:.1f} us, bare ctypes "
                  f"{raw_runs[-1]:.1f} us", flush=True)
        c, py, raw = statistics.median(c_runs), statistics.median(py_runs), statistics.median(raw_runs)
        overhead = (py - c) / c * 100

        torch_us = None
        if a.torch and engine.backend == "cuda":
            import torch
            tsets = [[torch.from_numpy(x).cuda() for x in xs] for xs in sets]
            torch.cuda.synchronize()

            def torch_fn(xs):
                engine(*xs)
                torch.cuda.current_stream().synchronize()
            torch_us = timed(torch_fn, tsets, a.iterations, a.warmup)

        print(f"plan         {plan if plan == a.model else a.model} ({engine.backend}, "
              f"{engine.identity.precision}), batch 1, {a.iterations} iterations x {a.rounds} rounds")
        print(f"C API        median {c:9.1f} us   (kiln bench, kiln_engine_infer)")
        print(f"Python       median {py:9.1f} us   (engine(x), numpy)")
        print(f"bare ctypes  median {raw:9.1f} us   (kiln_engine_infer on prepared structs, for reference)")
        if torch_us is not None:
            print(f"torch CUDA   median {torch_us:9.1f} us   (engine(x_cuda) + stream synchronize)")
        print(f"overhead     {overhead:+.1f} %  ({py - c:+.1f} us per call; goal <= 5 %: "
              f"{'met' if overhead <= 5 else 'NOT met'})")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"model": a.model, "backend": engine.backend, "iterations": a.iterations,
                           "rounds": a.rounds, "c_median_us": c, "python_median_us": py,
                           "bare_ctypes_median_us": raw, "torch_cuda_median_us": torch_us,
                           "overhead_percent": overhead, "c_runs_us": c_runs, "python_runs_us": py_runs}, f,
                          indent=1)
        engine.close()


if __name__ == "__main__":
    main()
