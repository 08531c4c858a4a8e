#!/usr/bin/env python3
"""Checks kiln's cuda backend on the zoo against onnxruntime (CPU, float32).
For each model and precision: one plan with the batch profile zoo.PROFILE
(min 1, opt 8, max 32), saved as WORK_DIR/<model>_<precision>.plan (bench.py
reuses it); then for each batch, random non-zero inputs (fixed seed) through
`kiln run` and onnxruntime. Per output, rel err = max|kiln - ort| / max|ort|;
every output must be within the precision's threshold. yolov8n's output0
mixes box pixels (0..640) with class scores (0..1): the table also shows
the rel err of each part, for information.
Random weights make deep nets sensitive to rounding (resnet50 with fp16
activations and fp32 sums lands near 3e-2, emulated on a CPU), so each row
also shows PyTorch's rel err at the same precision on the same input and GPU
("torch"): a row above the threshold but within 2x PyTorch's own error is
"ok~torch", not a mismatch.
Prints a table last (also WORK_DIR/check_cuda.txt); all of it goes to
WORK_DIR/check_cuda.json, the logs of every kiln call to WORK_DIR/logs/.
usage: check_cuda.py KILN MODEL_DIR WORK_DIR [--models a,b] [--precisions fp32,fp16]
                     [--batches 1,8] [--budget SECONDS] [--no-torch]"""
import argparse
import copy
import json
import os
import shutil
import signal
import sys
import time

import numpy as np
import onnxruntime as ort

import kilncli
import zoo

THRESHOLD = {"fp32": 1e-4, "tf32": 1e-2, "fp16": 1e-2, "bf16": 5e-2}
# output name: (axis, [(part, start, stop)]): parts reported besides the whole output
PARTS = {"output0": (1, [("boxes", 0, 4), ("scores", 4, None)])}

ap = argparse.ArgumentParser(usage=__doc__.split("usage: ")[1])
ap.add_argument("kiln")
ap.add_argument("model_dir")
ap.add_argument("work")
ap.add_argument("--models", help="comma-separated (default $KILN_GPU_MODELS, else all)")
ap.add_argument("--precisions", default="fp32,fp16")
ap.add_argument("--batches", default="1,8")
ap.add_argument("--budget", type=float, default=1e9, help="start no new build after this many seconds")
ap.add_argument("--no-torch", action="store_true", help="no PyTorch baseline")
a = ap.parse_args()
os.makedirs(a.work, exist_ok=True)
logs = os.path.join(a.work, "logs")
t_start = time.time()
rows = []


def safe(name):  # the output file name kiln run gives an output (tools/kiln/run.c)
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def rel(got, want):
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-12))


def compare(od, names, refs, limit):
    """Per-output errors and the row's status."""
    outs, status = [], "ok"
    for name, want in zip(names, refs):
        o = {"name": name, "shape": list(want.shape)}
        outs.append(o)
        f = os.path.join(od, safe(name) + ".npy")
        if not os.path.exists(f):
            o["error"], status = "no output file", "NO OUTPUT"
            continue
        got = np.load(f).astype(np.float64)
        want = want.astype(np.float64)
        if got.shape != want.shape:
            o["error"], status = f"shape {list(got.shape)}, want {list(want.shape)}", "SHAPE"
            continue
        if not np.isfinite(got).all():
            o["error"] = f"{int(np.size(got) - np.isfinite(got).sum())} non-finite values"
            status = "NONFINITE"
            continue
        o["rel_err"], o["max_abs_err"] = rel(got, want), float(np.max(np.abs(got - want)))
        o["max_abs_ref"] = float(np.max(np.abs(want)))
        if name in PARTS and got.ndim > PARTS[name][0]:
            axis, parts = PARTS[name]
            o["parts"] = {p: rel(np.take(got, range(got.shape[axis])[s:e], axis),
                                 np.take(want, range(want.shape[axis])[s:e], axis)) for p, s, e in parts}
        if o["rel_err"] > limit and status == "ok":
            status = "MISMATCH"
    return outs, status


torch_model = {}  # the model torch_rel_err last made: name -> float32 module


def torch_rel_err(model, prec, x, refs):
    """PyTorch's rel err on this machine's GPU at this precision, same input and
    weights (zoo.make); None where it cannot run."""
    try:
        import torch
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        if model not in torch_model:
            torch_model.clear()
            torch_model[model] = zoo.make(model).to(dev)
        dt = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(prec, torch.float32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = prec == "tf32"
        with torch.inference_mode():
            y = copy.deepcopy(torch_model[model]).to(dt)(torch.from_numpy(x).to(dev, dt))
        ys = [y] if isinstance(y, torch.Tensor) else list(y)
        return max(rel(t.double().cpu().numpy(), r.astype(np.float64)) for t, r in zip(ys, refs))
    except Exception as e:
        print(f"torch baseline {model} {prec}: {type(e).__name__}: {e}", file=sys.stderr)
        return None


def save():
    with open(os.path.join(a.work, "check_cuda.json"), "w") as f:
        json.dump({"kiln": a.kiln, "profile": zoo.PROFILE, "thresholds": THRESHOLD, "rows": rows,
                   "elapsed_s": round(time.time() - t_start, 1)}, f, indent=1)


def check_model(model):
    path = os.path.join(a.model_dir, f"{model}.onnx")
    if not os.path.exists(path):
        rows.append({"model": model, "precision": "-", "batch": "-", "status": "NO MODEL",
                     "error": f"{path} missing (export failed?)"})
        return
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp, out_names = sess.get_inputs()[0], [o.name for o in sess.get_outputs()]
    cases = {}  # batch: (input file, input, reference outputs), shared by the precisions
    for prec in a.precisions.split(","):
        row0 = {"model": model, "precision": prec}
        if time.time() - t_start > a.budget:
            rows.append({**row0, "batch": "-", "status": "SKIP (time)"})
            continue
        plan = zoo.plan_path(a.work, model, prec)
        b = kilncli.build(a.kiln, path, plan, prec, zoo.PROFILE, os.path.join(logs, f"{model}_{prec}_build.txt"))
        row0.update(build_s=b["build_s"], plan_mb=b["plan_mb"], build_cmd=b["cmd"])
        if not b["ok"]:
            rows.append({**row0, "batch": "-", "status": "BUILD FAIL", "error": b["error"]})
            save()
            continue
        for batch in map(int, a.batches.split(",")):
            if batch not in cases:
                shape = [batch if not isinstance(d, int) else d for d in inp.shape]
                x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
                x[x == 0] = 0.5
                xf = os.path.join(a.work, "inputs", f"{model}_b{batch}.npy")
                os.makedirs(os.path.dirname(xf), exist_ok=True)
                np.save(xf, x)
                cases[batch] = (xf, x, sess.run(None, {inp.name: x}))
            xf, x, refs = cases[batch]
            od = os.path.join(a.work, "out", f"{model}_{prec}_b{batch}")
            shutil.rmtree(od, ignore_errors=True)  # no stale output can pass for this run's
            os.makedirs(os.path.dirname(od), exist_ok=True)  # kiln run creates od itself, not its parents
            cmd = [a.kiln, "run", plan, "--input", f"{inp.name}={xf}", "--output-dir", od, "--quiet"]
            rc, dt, out, err = kilncli.call(cmd, 180, os.path.join(logs, f"{model}_{prec}_b{batch}_run.txt"))
            row = {**row0, "batch": batch, "run_s": round(dt, 2)}
            if rc != 0:
                row.update(status="RUN FAIL", error=f"exit {rc}: " + kilncli.tail(err or out))
            else:
                outs, status = compare(od, out_names, refs, THRESHOLD.get(prec, 1e-2))
                errs = [o["rel_err"] for o in outs if "rel_err" in o]
                tr = None if a.no_torch else torch_rel_err(model, prec, x, refs)
                if status == "MISMATCH" and tr is not None and max(errs) <= 2 * tr:
                    status = "ok~torch"
                row.update(status=status, outputs=outs, rel_err=max(errs) if errs else None, torch_rel_err=tr,
                           max_abs_err=max((o["max_abs_err"] for o in outs if "max_abs_err" in o), default=None),
                           error="; ".join(f"{o['name']}: {o['error']}" for o in outs if "error" in o))
            rows.append(row)
            save()


def fmt(v, w, f):
    return f"{'-' if v is None else format(v, f):>{w}}"


def report(note):
    lines = [f"{'model':<19} {'prec':<5} {'batch':>5} {'build s':>7} {'plan MB':>7} {'run s':>6} {'rel err':>9} "
             f"{'max abs':>9} {'torch':>9} {'limit':>7}  status"]
    for r in rows:
        parts = "; ".join(f"{o['name']} " + ", ".join(f"{p} {v:.1e}" for p, v in o["parts"].items())
                          for o in r.get("outputs", []) if "parts" in o)
        note_r = r.get("error") or parts
        lines.append(f"{r['model']:<19} {r['precision']:<5} {r['batch']:>5} {fmt(r.get('build_s'), 7, '.1f')} "
                     f"{fmt(r.get('plan_mb'), 7, '.1f')} {fmt(r.get('run_s'), 6, '.2f')} "
                     f"{fmt(r.get('rel_err'), 9, '.2e')} {fmt(r.get('max_abs_err'), 9, '.2e')} "
                     f"{fmt(r.get('torch_rel_err'), 9, '.2e')} {fmt(THRESHOLD.get(r['precision']), 7, '.0e')}  "
                     f"{r['status']}{('  ' + note_r)[:160] if note_r else ''}")
    ok = sum(r["status"].startswith("ok") for r in rows)
    lines.append(f"{ok} of {len(rows)} ok, {time.time() - t_start:.0f} s{note}")
    save()
    table = "\n".join(lines)
    open(os.path.join(a.work, "check_cuda.txt"), "w").write(table + "\n")
    print("\n" + table, flush=True)
    return ok == len(rows) and rows and not note


def on_sigterm(*_):  # timeout(1) in gpu-check: stop, and still print the table
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, on_sigterm)
note = ""
try:
    for model in zoo.selected(a.models):
        try:
            check_model(model)
        except Exception as e:  # onnxruntime or numpy failed on this model: the others still run
            rows.append({"model": model, "precision": "-", "batch": "-", "status": "ERROR",
                         "error": f"{type(e).__name__}: {e}"})
except KeyboardInterrupt:
    note = "; STOPPED EARLY (interrupted or time limit)"
raise SystemExit(0 if report(note) else 1)
