#!/usr/bin/env python3
"""Many images through one kiln engine, three ways:
  1. calls on whole batches (the batch dim is symbolic in the model),
  2. requests from several Python threads on one engine (thread-safe; the
     GIL is released while kiln runs),
  3. futures from a scheduler with dynamic batching (engine.scheduler with
     max_batch / max_delay_us), which joins single requests into batches.
Every way gives the same probabilities.

    python3 examples/python/batch_inference.py [--backend ref|cuda] [--images 64]
"""
import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
try:
    import kiln
except ImportError:  # not pip-installed: use this checkout's package (and its build/libkiln.so)
    sys.path.insert(0, os.path.join(REPO, "python"))
    import kiln


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(REPO, "models", "tinynet.onnx"))
    ap.add_argument("--backend", default="ref", choices=("ref", "cuda"))
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--max-batch", type=int, default=8)
    args = ap.parse_args()

    engine, source = kiln.build(args.model, backend=args.backend)
    inp, outp = engine.inputs[0], engine.outputs[0]
    print(f"engine {engine.backend} from {source}: {inp} -> {outp}")
    if isinstance(inp.shape[0], int):
        sys.exit(f"{args.model}: input '{inp.name}' has a fixed dim 0; this example needs a symbolic batch")

    rng = np.random.default_rng(0)
    item = tuple(d if isinstance(d, int) else 1 for d in inp.shape[1:])
    images = rng.uniform(-1, 1, (args.images,) + item).astype(inp.numpy_dtype)

    # 1. whole batches, as large as the engine's profile allows (a cuda
    #    engine is built for up to 32 rows of a symbolic batch by default;
    #    kiln.build(..., profile=dict(max={...})) raises that)
    max_rows = inp.profile[2][0] if inp.profile else args.images
    t = time.perf_counter()
    batched = np.concatenate([engine(images[i:i + max_rows]) for i in range(0, args.images, max_rows)])
    dt = time.perf_counter() - t
    n_calls = -(-args.images // max_rows)
    print(f"{n_calls} call{'s' if n_calls > 1 else ' '} of <= {min(max_rows, args.images):3d} images:  "
          f"{dt * 1e3:8.1f} ms  ({args.images / dt:7.1f} images/s)")

    # A row of a batch vs the same image alone: equal up to rounding. Other
    # batch sizes run other kernels on a GPU, which round differently; how
    # much depends on the precision (kiln bench --verify uses the same rule).
    tol = 1e-4 if engine.identity.precision in ("fp32", "") else 1e-2

    def tol_equal(a, b):
        return float(np.max(np.abs(a - b))) <= tol * max(float(np.max(np.abs(b))), 1e-30)

    # 2. one image per call, from several threads
    singles = [images[i:i + 1] for i in range(args.images)]
    t = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        per_image = list(pool.map(engine, singles))
    dt = time.perf_counter() - t
    ok = all(tol_equal(p[0], batched[i]) for i, p in enumerate(per_image))
    print(f"{args.threads} threads, 1 image/call: {dt * 1e3:8.1f} ms  ({args.images / dt:7.1f} images/s)  "
          f"same as the batch: {ok}")

    # 3. futures through a dynamically batching scheduler
    with engine.scheduler(workers=2, max_batch=args.max_batch, max_delay_us=2000) as sched:
        t = time.perf_counter()
        futures = [sched.infer_async({inp.name: x}) for x in singles]
        results = [f.result()[outp.name] for f in futures]
        dt = time.perf_counter() - t
        stats = sched.stats()
        while stats["rows"] < args.images:  # a batch is counted just after its futures complete
            time.sleep(0.001)
            stats = sched.stats()
    ok = all(tol_equal(r[0], batched[i]) for i, r in enumerate(results))
    print(f"scheduler, max batch {args.max_batch}:  {dt * 1e3:8.1f} ms  ({args.images / dt:7.1f} images/s)  "
          f"same as the batch: {ok}; {stats['runs']} runs, {stats['rows'] / max(stats['runs'], 1):.1f} "
          "images per run")

    classes = batched.argmax(axis=1)
    print("classes of the first 16:", " ".join(str(c) for c in classes[:16]))
    engine.close()


if __name__ == "__main__":
    main()
