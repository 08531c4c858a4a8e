"""Two kiln builds side by side on the same GPU in one call: each builds the
same fp16 plans of the zoo models, and `kiln bench --json` times them
(gpu_ms median) in alternating rounds, so that a refactor can show it changed
no speed (or how much a change gained). Prints a table last.
usage: ab.py KILN_A KILN_B MODEL_DIR WORK_DIR [--models resnet50,yolov8n] [--batches 1,16] [--rounds 3]
       [--precision fp16]
KILN_A is the baseline (e.g. the build of the previous commit), KILN_B the new one."""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kilncli  # noqa: E402
import zoo  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("kiln_a")
ap.add_argument("kiln_b")
ap.add_argument("models_dir")
ap.add_argument("work")
ap.add_argument("--models", default="resnet50,mobilenet_v3_large,efficientnet_b0,yolov8n")
ap.add_argument("--batches", default="1,16")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--precision", default="fp16")
a = ap.parse_args()
os.makedirs(a.work, exist_ok=True)
batches = [int(b) for b in a.batches.split(",")]
kilns = {"A": a.kiln_a, "B": a.kiln_b}

rows = []
for m in a.models.split(","):
    onnx_path = os.path.join(a.models_dir, m + ".onnx")
    if not os.path.exists(onnx_path):
        print(f"{m}: no {onnx_path}, skipped")
        continue
    name, dims = kilncli.input_dims(onnx_path)
    plans = {}
    for k, binary in kilns.items():
        plan = os.path.join(a.work, f"{m}_{k}.plan")
        r = kilncli.build(binary, onnx_path, plan, a.precision, zoo.PROFILE, plan + ".log")
        if not r["ok"]:
            print(f"{m} {k}: build failed: {r['error']}")
            continue
        plans[k] = plan
        print(f"{m} {k}: built in {r['build_s']} s, plan {os.path.getsize(plan) / 1e6:.1f} MB")
    if len(plans) < 2:
        continue
    for b in batches:
        t = {"A": [], "B": []}
        for _ in range(a.rounds):
            for k in ("A", "B"):
                jf = os.path.join(a.work, f"{m}_{k}_b{b}.json")
                cmd = [kilns[k], "bench", plans[k], "--shapes", kilncli.shape(name, dims, b), "--iterations", "200",
                       "--warmup", "20", "--json", jf]
                rc, _, out, err = kilncli.call(cmd, 120, jf + ".log")
                if rc == 0:
                    t[k].append(json.load(open(jf))["gpu_ms"]["median"])
                else:
                    print(f"{m} {k} b{b}: bench failed: {kilncli.tail(err or out)}")
        if t["A"] and t["B"]:
            rows.append((m, b, statistics.median(t["A"]), statistics.median(t["B"])))

with open(os.path.join(a.work, "ab.json"), "w") as f:
    json.dump([{"model": m, "batch": b, "a_ms": x, "b_ms": y} for m, b, x, y in rows], f, indent=1)
print(f"\nA/B, {a.precision}, kiln bench gpu_ms, median of {a.rounds} rounds' medians (A={a.kiln_a}, B={a.kiln_b})")
print(f"{'model':<20} {'batch':>5} {'A ms':>8} {'B ms':>8} {'B/A':>6}")
for m, b, x, y in rows:
    print(f"{m:<20} {b:>5} {x:>8.3f} {y:>8.3f} {y / x:>6.3f}")
