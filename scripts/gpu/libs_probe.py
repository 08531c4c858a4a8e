#!/usr/bin/env python3
"""Which cuDNN / cuBLASLt a process holds when kiln and PyTorch share it, and
whether the order of their imports matters (python/bench_overhead.py --torch
crashed when kiln came first). Each order runs in a child process, so that
a crash is reported as a signal instead of ending the probe.

    libs_probe.py PLAN        (a cuda plan with one float input)
"""
import os
import subprocess
import sys

CHILD = r'''
import os, sys
order, plan = sys.argv[1], sys.argv[2]
def maps():
    seen = set()
    for line in open("/proc/self/maps"):
        p = line.split()[-1]
        if ("cudnn" in p or "cublas" in p) and p not in seen and "libcudnn_" not in p:
            seen.add(p); print("   ", p)
if order == "torch-first":
    import torch
import numpy as np
import kiln
e = kiln.load(plan)
t = e.inputs[0]
shape = tuple(d if isinstance(d, int) else 1 for d in t.shape)
x = np.random.default_rng(0).uniform(-1, 1, shape).astype(t.numpy_dtype)
y0 = e(x)
print("  kiln numpy ok")
if order == "kiln-first":
    import torch
c = torch.nn.Conv2d(3, 16, 3).cuda().half()
z = c(torch.randn(4, 3, 32, 32, device="cuda", dtype=torch.half)); torch.cuda.synchronize()
print("  torch conv ok, cudnn", torch.backends.cudnn.version())
m = torch.randn(256, 256, device="cuda", dtype=torch.half); (m @ m).sum().item()
print("  torch matmul ok")
y1 = e(torch.from_numpy(x).cuda()); torch.cuda.synchronize()
print("  kiln torch tensor ok")
maps()
'''


def main():
    plan = sys.argv[1]
    from importlib import metadata
    for pkg in ("torch", "nvidia-cudnn-cu13", "nvidia-cublas"):
        try:
            print(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            print(f"{pkg}: not installed")
    for order in ("torch-first", "kiln-first"):
        print(f"-- {order}")
        r = subprocess.run([sys.executable, "-c", CHILD, order, plan], capture_output=True, text=True, timeout=120)
        sys.stdout.write(r.stdout)
        tail = r.stderr.strip().splitlines()[-3:]
        status = "ok" if r.returncode == 0 else (f"killed by signal {-r.returncode}" if r.returncode < 0
                                                  else f"exit {r.returncode}")
        print(f"  => {status}")
        for line in tail if r.returncode else []:
            print("   ", line)


if __name__ == "__main__":
    main()
