"""The examples in examples/python run as written: each as its own process,
on this checkout's package and library, with a private engine cache. The
ref runs go everywhere; the cuda runs need PyTorch with a CUDA device (the
GPU machine, whose libkiln has the cuda backend) and skip elsewhere."""
import os
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLES = os.path.join(REPO, "examples", "python")


def _run(script, tmp_path, *args):
    env = dict(os.environ, KILN_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.path.join(REPO, "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args], capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, f"{script} {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_basic_inference_ref(tmp_path):
    out = _run("basic_inference.py", tmp_path)
    assert "top-3 classes" in out
    # the example shows the error a float64 input gets
    assert "must be f32" in out


def test_batch_inference_ref(tmp_path):
    out = _run("batch_inference.py", tmp_path, "--images", "16")
    # every way of running gives the batch call's probabilities
    assert out.count("same as the batch: True") == 2, out


def _cuda_ready():
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device visible to PyTorch"
    return None


@pytest.mark.gpu
@pytest.mark.parametrize("script,args", [("basic_inference.py", ()), ("batch_inference.py", ("--images", "64"))])
def test_examples_cuda(tmp_path, script, args):
    why = _cuda_ready()
    if why:
        pytest.skip(why)
    out = _run(script, tmp_path, "--backend", "cuda", *args)
    if script == "batch_inference.py":
        assert out.count("same as the batch: True") == 2, out
