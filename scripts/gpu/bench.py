#!/usr/bin/env python3
"""kiln's fp16 plans against PyTorch fp16 on the same GPU in the same call,
with the same weights (zoo.make). kiln: `kiln bench --json`, its "gpu_ms"
median (CUDA events around each enqueue, inputs on the device); the plans
are check_cuda.py's WORK_DIR/<model>_fp16.plan (batch 1..32), built here when
missing, and a fixed-batch plan for batches over 32. PyTorch: eager
(channels_last, cudnn.benchmark) and torch.compile(mode="reduce-overhead",
i.e. CUDA graphs), under inference_mode, inputs on the GPU; each run timed
by its own pair of CUDA events after a warm-up; the median is reported.
torch.compile costs about a minute per model and batch, so by default only
resnet50 is compiled (--compile-all: every model).
Prints a table last (also WORK_DIR/bench.txt); all numbers in WORK_DIR/bench.json.
usage: bench.py KILN MODEL_DIR WORK_DIR [--models a,b] [--big] [--compile-all] [--max-autotune]
                [--no-compile] [--no-graph] [--iters N] [--warmup N] [--budget SECONDS]"""
import argparse
import json
import os
import signal
import sys
import time
import traceback

import kilncli
import zoo

ENTRIES = [("resnet50", 1), ("resnet50", 32), ("mobilenet_v3_large", 32), ("efficientnet_b0", 32),
           ("yolov8n", 1), ("yolov8n", 16)]
BIG = [("resnet50", 128)]  # --big
COMPILED = {"resnet50"}  # compiled without --compile-all

ap = argparse.ArgumentParser(usage=__doc__.split("usage: ")[1])
ap.add_argument("kiln")
ap.add_argument("model_dir")
ap.add_argument("work")
ap.add_argument("--models", help="comma-separated (default $KILN_GPU_MODELS, else all)")
ap.add_argument("--big", action="store_true", help="also resnet50 at batch 128")
ap.add_argument("--compile-all", action="store_true", help="torch.compile every model, not only resnet50")
ap.add_argument("--max-autotune", action="store_true", help='also torch.compile(mode="max-autotune") (slow)')
ap.add_argument("--no-compile", action="store_true")
ap.add_argument("--no-graph", action="store_true", help="kiln bench --no-graph")
ap.add_argument("--iters", type=int, default=100)
ap.add_argument("--warmup", type=int, default=20)
ap.add_argument("--budget", type=float, default=1e9, help="start no new build or compile after this many seconds")
ap.add_argument("--device", default="cuda", help="cpu: test this script's logic without a GPU (float32)")
a = ap.parse_args()
os.makedirs(a.work, exist_ok=True)
logs = os.path.join(a.work, "logs")
t_start = time.time()
models = zoo.selected(a.models)
rows = [{"model": m, "batch": b} for m, b in ENTRIES + (BIG if a.big else []) if m in models]
info = {"iters": a.iters, "warmup": a.warmup}


def left():
    return a.budget - (time.time() - t_start)


def save():
    with open(os.path.join(a.work, "bench.json"), "w") as f:
        json.dump({**info, "rows": rows, "elapsed_s": round(time.time() - t_start, 1)}, f, indent=1)


# ---- kiln, one `kiln bench` process per row
def kiln_bench(r):
    model, batch = r["model"], r["batch"]
    onnx = os.path.join(a.model_dir, f"{model}.onnx")
    if not os.path.exists(onnx):
        return f"{onnx} missing"
    plan, prof = zoo.plan_path(a.work, model, "fp16"), zoo.PROFILE
    if batch > zoo.PROFILE[2]:
        plan, prof = os.path.join(a.work, f"{model}_fp16_b{batch}.plan"), (batch, batch, batch)
    if not os.path.exists(plan):
        if left() < 0:
            return "skipped (time)"
        b = kilncli.build(a.kiln, onnx, plan, "fp16", prof, os.path.join(logs, f"bench_{model}_b{batch}_build.txt"),
                          timeout=max(60, min(300, left())))
        r["kiln_build_s"] = b["build_s"]
        if not b["ok"]:
            return "build " + b["error"]
    name, dims = kilncli.input_dims(onnx)
    jf = os.path.join(a.work, f"bench_{model}_b{batch}.json")
    if os.path.exists(jf):
        os.remove(jf)
    cmd = [a.kiln, "bench", plan, "--shapes", kilncli.shape(name, dims, batch), "--iterations", str(a.iters),
           "--warmup", str(a.warmup), "--json", jf] + (["--no-graph"] if a.no_graph else [])
    rc, dt, out, err = kilncli.call(cmd, 300, os.path.join(logs, f"bench_{model}_b{batch}.txt"))
    if rc != 0 or not os.path.exists(jf):
        return f"exit {rc}: " + kilncli.tail(err or out)
    j = json.load(open(jf))
    r["kiln_json"] = j
    if "gpu_ms" in j:
        r["kiln_ms"] = j["gpu_ms"]["median"]
        return ""
    r["kiln_ms"] = j["latency_ms"]["median"]  # a CLI without gpu_ms: host wall time, marked in the table
    return "no gpu_ms: host latency"


# ---- PyTorch, in this process
try:
    import torch
    dev = a.device
    dtype = torch.float16 if dev == "cuda" else torch.float32
    torch.backends.cudnn.benchmark = True
    info.update(torch=torch.__version__, device=torch.cuda.get_device_name() if dev == "cuda" else dev,
                dtype=str(dtype))
except Exception as e:
    torch, info["torch_error"] = None, f"{type(e).__name__}: {e}"
    print("no PyTorch: " + info["torch_error"], file=sys.stderr)


def timed(fn, x):
    """ms of a.iters runs after a.warmup, each between its own CUDA event pair."""
    for _ in range(a.warmup):
        fn(x)
    if dev != "cuda":
        ts = []
        for _ in range(a.iters):
            t = time.perf_counter()
            fn(x)
            ts.append((time.perf_counter() - t) * 1e3)
    else:
        torch.cuda.synchronize()
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(a.iters)]
        for s, e in ev:
            s.record()
            fn(x)
            e.record()
        torch.cuda.synchronize()
        ts = [s.elapsed_time(e) for s, e in ev]
    ts.sort()
    return {"median": ts[len(ts) // 2], "p90": ts[int(0.9 * (len(ts) - 1))], "min": ts[0]}


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


def run_torch(model, batches):
    """Eager and compiled timings of one model, into its rows; failures land in the rows' notes."""
    m = zoo.make(model).to(dev, dtype).to(memory_format=torch.channels_last)
    shape = zoo.MODELS[model][0]
    xs = {b: torch.randn(b, *shape, device=dev, dtype=dtype).contiguous(memory_format=torch.channels_last)
          for b in batches}
    for b, r in batches.items():
        try:
            r["eager"] = timed(m, xs[b])
        except Exception as e:
            r["eager_error"] = f"{type(e).__name__}: {e}"[:300]
            traceback.print_exc()
    if a.no_compile or not (a.compile_all or model in COMPILED):
        return
    for mode in ["reduce-overhead"] + (["max-autotune"] if a.max_autotune else []):
        torch._dynamo.reset()
        cm = torch.compile(m, mode=mode, dynamic=False)  # one static graph per batch, as kiln's timing at opt
        for b, r in batches.items():
            if left() < 0:
                r[mode + "_error"] = "skipped (time)"
                continue
            try:
                t0 = time.time()
                cm(xs[b])
                sync()
                r[mode + "_compile_s"] = round(time.time() - t0, 1)
                r[mode] = timed(cm, xs[b])
            except Exception as e:
                r[mode + "_error"] = f"{type(e).__name__}: {e}"[:300]
                traceback.print_exc()
            save()


def torch_all():
    for model in models:
        batches = {r["batch"]: r for r in rows if r["model"] == model}
        if not batches:
            continue
        try:
            with torch.inference_mode():
                run_torch(model, batches)
        except Exception as e:  # the model itself failed: note it in every row
            for r in batches.values():
                r.setdefault("eager_error", f"{type(e).__name__}: {e}"[:300])
            traceback.print_exc()
        if dev == "cuda":
            torch.cuda.empty_cache()
        save()


def on_sigterm(*_):  # timeout(1) in gpu-check: stop, and still print the table
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, on_sigterm)
stopped = ""
try:
    for r in rows:
        r["kiln_note"] = kiln_bench(r)
        save()
    if torch:
        torch_all()
except KeyboardInterrupt:
    stopped = "; STOPPED EARLY (interrupted or time limit)"


# ---- the table
def ms(r, key):
    v = r.get(key)
    return v["median"] if isinstance(v, dict) else v


def ratio(x, y):
    return f"{x / y:.2f}x" if x and y else "-"


def cell(v, f, w):
    return f"{'-' if v is None else format(v, f):>{w}}"


modes = ["reduce-overhead"] + (["max-autotune"] if a.max_autotune else [])
head = f"{'model':<19} {'batch':>5} {'kiln ms':>8} {'eager ms':>8} {'compile':>8}"
head += f" {'autotune':>8}" if a.max_autotune else ""
head += f" {'eager/kiln':>10} {'compile/kiln':>12}  notes"
lines = [head]
for r in rows:
    k, e, c = ms(r, "kiln_ms"), ms(r, "eager"), ms(r, "reduce-overhead")
    line = f"{r['model']:<19} {r['batch']:>5} {cell(k, '.3f', 8)} {cell(e, '.3f', 8)} {cell(c, '.3f', 8)}"
    if a.max_autotune:
        line += " " + cell(ms(r, "max-autotune"), ".3f", 8)
    line += f" {ratio(e, k):>10} {ratio(c, k):>12}"
    notes = [f"kiln: {r['kiln_note']}"] if r.get("kiln_note") else []
    notes += [f"{m}: {r[m + '_error']}" for m in ["eager"] + modes if r.get(m + "_error")]
    lines.append(line + "  " + "; ".join(notes)[:200])
lines.append(f"fp16 median ms; kiln: `kiln bench` gpu_ms; torch {info.get('torch', '-')} on {info.get('device', '-')}; "
             f"compile = torch.compile reduce-overhead; {time.time() - t_start:.0f} s{stopped}")
if "torch_error" in info:
    lines.append("no PyTorch: " + info["torch_error"][:200])
save()
table = "\n".join(lines)
open(os.path.join(a.work, "bench.txt"), "w").write(table + "\n")
print("\n" + table)
