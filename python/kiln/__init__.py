"""kiln: ONNX inference from Python, over libkiln.so (ctypes; no compiled
extension, so one build of the library serves every Python version).

    import kiln
    engine, source = kiln.build("model.onnx", backend="cuda")   # or "ref"
    probs = engine(images)                      # numpy in, numpy out
    out = engine.infer({"images": x})           # {output name: array}
    fut = engine.infer_async({"images": x})     # concurrent.futures.Future

Errors from libkiln raise KilnError (status, status_name, message); a wrong
dtype is a TypeError and a wrong shape or layout a ValueError, naming the
tensor. See docs/python.md.
"""
from ._lib import KilnError, cuda_libs as _cuda_libs, lib as _l
from .engine import (Engine, Identity, Scheduler, TensorInfo, build, cache_dir, empty_pinned, inspect, load,
                     model_identity)

__version__ = "0.1.0"

#: the path of the libkiln.so in use
library_path = _l.path

_LOG_LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3}


def version():
    """The version of the loaded libkiln ("0.1.0")."""
    return _l.version_string().decode()


def cuda_libraries():
    """{soname: path} of the cuDNN / cuBLASLt kiln shares with this process
    instead of the ones the library path gives: pip's packages (PyTorch's
    copies), loaded by kiln before libkiln.so, or another copy the process
    held already when kiln was imported. Empty: libkiln found them the usual
    way, as the CLI does (no such packages, $KILN_SYSTEM_CUDA_LIBS=1, or a
    library without CUDA)."""
    return dict(_cuda_libs.in_use)


def cuda_library_dirs():
    """The folders of cuda_libraries(): put them first on LD_LIBRARY_PATH for
    a kiln CLI that must load plans this process builds (a plan records its
    cuDNN version), or build the plans this process loads."""
    return _cuda_libs.dirs()


def set_log_level(level):
    """kiln's log level, process-wide: "error", "warn" (default), "info",
    "debug". Messages go to stderr."""
    if level not in _LOG_LEVELS:
        raise ValueError(f"unknown log level '{level}' ({', '.join(_LOG_LEVELS)})")
    _l.set_log_level(_LOG_LEVELS[level])


__all__ = ["Engine", "Identity", "KilnError", "Scheduler", "TensorInfo", "build", "cache_dir", "cuda_libraries",
           "empty_pinned", "cuda_library_dirs", "inspect", "load", "model_identity", "library_path", "set_log_level", "version"]
