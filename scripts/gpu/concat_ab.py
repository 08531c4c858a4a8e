"""What placing Concat inputs in place saves (src/builder/concat.c): the
same fp16 plan built with KILN_CONCAT_PLACE=0 (every Concat a kernel) and
by default, both checked against onnxruntime CPU f32 and timed with `kiln
bench --json` (gpu_ms median) in alternating rounds, in one process.
usage: concat_ab.py KILN MODEL_DIR WORK_DIR [--models yolov8n] [--batches 1,16] [--rounds 3]"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kilncli  # noqa: E402
import zoo  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("kiln")
ap.add_argument("models_dir")
ap.add_argument("work")
ap.add_argument("--models", default="yolov8n")
ap.add_argument("--batches", default="1,16")
ap.add_argument("--rounds", type=int, default=3)
a = ap.parse_args()
os.makedirs(a.work, exist_ok=True)
batches = [int(b) for b in a.batches.split(",")]


def report_line(log, key):
    try:
        for line in open(log):
            if line.startswith(key):
                return line.strip()
    except OSError:
        pass
    return ""


rows = []
for m in a.models.split(","):
    onnx_path = os.path.join(a.models_dir, m + ".onnx")
    name, dims = kilncli.input_dims(onnx_path)
    plans = {}
    for mode in ("copy", "place"):
        plan = os.path.join(a.work, f"{m}_{mode}.plan")
        log = plan + ".log"
        if mode == "copy":
            os.environ["KILN_CONCAT_PLACE"] = "0"
        else:
            os.environ.pop("KILN_CONCAT_PLACE", None)
        r = kilncli.build(a.kiln, onnx_path, plan, "fp16", zoo.PROFILE, log)
        os.environ.pop("KILN_CONCAT_PLACE", None)
        if not r["ok"]:
            print(f"{m} {mode}: build failed: {r['error']}")
            continue
        plans[mode] = plan
        print(f"{m} {mode}: built in {r['build_s']} s; {report_line(log, 'concat:') or 'no concat placed'}; "
              f"{report_line(log, 'memory:')}")
    if len(plans) < 2:
        continue
    for b in batches:
        t = {"copy": [], "place": []}
        for _ in range(a.rounds):
            for mode in ("copy", "place"):
                jf = os.path.join(a.work, f"{m}_{mode}_b{b}.json")
                cmd = [a.kiln, "bench", plans[mode], "--shapes", kilncli.shape(name, dims, b), "--iterations", "200",
                       "--warmup", "20", "--json", jf]
                rc, _, out, err = kilncli.call(cmd, 120, jf + ".log")
                if rc == 0:
                    t[mode].append(json.load(open(jf))["gpu_ms"]["median"])
                else:
                    print(f"{m} {mode} b{b}: bench failed: {kilncli.tail(err or out)}")
        if t["copy"] and t["place"]:
            c, p = statistics.median(t["copy"]), statistics.median(t["place"])
            rows.append((m, b, c, p))

print("\nconcat in place, fp16, kiln bench gpu_ms median of rounds' medians")
print(f"{'model':<12} {'batch':>5} {'copies ms':>10} {'in place ms':>12} {'saved':>7}")
for m, b, c, p in rows:
    print(f"{m:<12} {b:>5} {c:>10.3f} {p:>12.3f} {100 * (c - p) / c:>6.1f}%")
