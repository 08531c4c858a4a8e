"""Runs the kiln CLI for the GPU checks: every call with a time limit and a
log file, never raising, so one failure costs one row of a table."""
import os
import subprocess
import time

import onnx


def call(cmd, timeout, log):
    """Runs cmd; returns (exit status, seconds, stdout, stderr). 124: timed
    out, 127: could not start. Writes the command and its output to log."""
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        rc, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = 124, _text(e.stdout), _text(e.stderr) + f"\ntimed out after {timeout} s"
    except OSError as e:
        rc, out, err = 127, "", f"cannot run {cmd[0]}: {e}"
    dt = time.time() - t0
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as f:
        f.write(f"$ {' '.join(cmd)}\nexit {rc} after {dt:.1f} s\n--- stdout\n{out}\n--- stderr\n{err}\n")
    return rc, dt, out, err


def _text(b):
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def tail(text, n=3):
    """The last n non-empty lines, on one line: what a table shows of an error."""
    return " | ".join([l.strip() for l in text.splitlines() if l.strip()][-n:])


def input_dims(onnx_path):
    """The first input's name and dims (None where symbolic), read without the weights."""
    i = onnx.load(onnx_path, load_external_data=False).graph.input[0]
    return i.name, [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]


def shape(name, dims, batch):
    return f"{name}:" + "x".join(str(batch if d is None else d) for d in dims)


def build(kiln, onnx_path, plan, precision, batches, log, timeout=300):
    """Builds a cuda plan for batch profile batches = (min, opt, max) (one
    fixed shape when min == max), with the per-layer report in the log.
    Returns {"ok", "build_s", "plan_mb", "error", "cmd"}."""
    name, dims = input_dims(onnx_path)
    lo, opt, hi = batches
    if lo == hi:
        prof = ["--shapes", shape(name, dims, lo)]
    else:
        prof = ["--minShapes", shape(name, dims, lo), "--optShapes", shape(name, dims, opt),
                "--maxShapes", shape(name, dims, hi)]
    if os.path.exists(plan):
        os.remove(plan)  # never judge or time a stale plan
    cmd = [kiln, "build", onnx_path, "--backend", "cuda", "--precision", precision, *prof, "-o", plan, "--report"]
    rc, dt, out, err = call(cmd, timeout, log)
    if rc == 2 and "--report" in err:  # a CLI without the report: build without it
        cmd = cmd[:-1]
        rc, dt, out, err = call(cmd, timeout, log)
    ok = rc == 0 and os.path.exists(plan)
    return {"ok": ok, "build_s": round(dt, 2), "plan_mb": round(os.path.getsize(plan) / 1e6, 2) if ok else None,
            "error": "" if ok else f"exit {rc}: " + tail(err or out), "cmd": " ".join(cmd)}
