"""GPU tensors in, GPU tensors out: PyTorch CUDA tensors, any object with
__cuda_array_interface__ (CuPy, Numba, ...) and DLPack producers, without a
copy and without a host round trip.

PyTorch is optional and imported only when a GPU tensor shows up. Outputs
are allocated with torch.empty on the input's device (the caching allocator,
on the stream the run is enqueued on), so a caller without PyTorch passes
`out=` buffers of its own.
"""
import ctypes
import sys
import threading

import numpy as np

from . import _lib
from ._lib import Tensor, check, lib

# __cuda_array_interface__ "stream" values with a meaning of their own
# (CUDA runtime: cudaStreamLegacy = 0x1, cudaStreamPerThread = 0x2).
_STREAM_LEGACY = 1


def torch_module():
    """PyTorch when the caller has it (imported lazily), else None."""
    t = sys.modules.get("torch")
    if t is not None:
        return t
    try:
        import torch
        return torch
    except ImportError:
        return None


def current_device():
    """This thread's current CUDA device as PyTorch sees it (which kiln's
    CUDA runtime shares through the driver), 0 without PyTorch."""
    t = sys.modules.get("torch")
    try:
        if t is not None and t.cuda.is_available():
            return t.cuda.current_device()
    except Exception:
        pass
    return 0


_TORCH_DTYPES = None


def torch_dtype(code):
    """The torch dtype of a kiln dtype code (None when torch has none)."""
    global _TORCH_DTYPES
    if _TORCH_DTYPES is None:
        torch = torch_module()
        if torch is None:
            return None
        m = {1: torch.float32, 2: torch.uint8, 3: torch.int8, 6: torch.int32, 7: torch.int64, 9: torch.bool,
             10: torch.float16, 11: torch.float64, 16: torch.bfloat16}
        if hasattr(torch, "float8_e4m3fn"):
            m[17] = torch.float8_e4m3fn
        _TORCH_DTYPES = m
    return _TORCH_DTYPES.get(code)


def kiln_stream(s):
    """The cudaStream_t to hand kiln for a CUDA stream handle. NULL means the
    context's own stream to kiln_context_enqueue, but the legacy default
    stream to CUDA and PyTorch (torch's default stream has cuda_stream == 0),
    so 0 and "no stream given" become cudaStreamLegacy."""
    return _STREAM_LEGACY if not s else int(s)


class DeviceTensor:
    """One GPU input or output as kiln sees it."""
    __slots__ = ("name", "ptr", "shape", "dtype_desc", "device", "stream", "obj", "is_torch")

    def __init__(self, name, ptr, shape, dtype_desc, device, stream, obj, is_torch):
        self.name, self.ptr, self.shape, self.dtype_desc = name, ptr, shape, dtype_desc
        self.device, self.stream, self.obj, self.is_torch = device, stream, obj, is_torch


def is_device_object(x):
    """Whether x lives in GPU memory (torch CUDA tensor, CUDA array interface,
    DLPack on a CUDA device)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.is_cuda
    if hasattr(x, "__cuda_array_interface__"):
        return True
    dev = getattr(x, "__dlpack_device__", None)
    if dev is not None and not isinstance(x, np.ndarray):
        try:
            return dev()[0] in (2, 13)  # kDLCUDA, kDLCUDAManaged
        except Exception:
            return False
    return False


def _c_contiguous(shape, strides, itemsize):
    expect = itemsize
    for d, s in zip(reversed(shape), reversed(strides)):
        if d != 1 and s != expect:
            return False
        expect *= d
    return True


def from_object(name, x, what="input"):
    """A DeviceTensor for GPU object x, or TypeError/ValueError naming it."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        if not x.is_contiguous():
            raise ValueError(f"{what} '{name}' is not contiguous (shape {tuple(x.shape)}, strides "
                             f"{tuple(x.stride())}); pass x.contiguous()")
        dev = x.device.index if x.device.index is not None else torch.cuda.current_device()
        return DeviceTensor(name, x.data_ptr(), tuple(x.shape), x.dtype, dev,
                            torch.cuda.current_stream(x.device).cuda_stream, x, True)
    cai = getattr(x, "__cuda_array_interface__", None)
    if cai is not None:
        shape = tuple(int(d) for d in cai["shape"])
        dt = np.dtype(cai["typestr"])
        strides = cai.get("strides")
        if strides is not None and not _c_contiguous(shape, strides, dt.itemsize):
            raise ValueError(f"{what} '{name}' is not C-contiguous (shape {shape}, strides {tuple(strides)}); "
                             "pass a contiguous copy")
        if cai.get("mask") is not None:
            raise ValueError(f"{what} '{name}' is a masked array; kiln takes dense tensors")
        t = torch_module()
        dev = t.cuda.current_device() if t is not None and t.cuda.is_available() else 0
        # "stream" (interface v3): the stream the producer's work on the data
        # is ordered on; kiln's run goes on that stream
        return DeviceTensor(name, int(cai["data"][0]), shape, dt, dev, cai.get("stream"), x, False)
    if hasattr(x, "__dlpack__"):
        t = torch_module()
        if t is None:
            raise TypeError(f"{what} '{name}' is a DLPack tensor on a GPU; kiln reads DLPack through PyTorch, "
                            "which is not installed (or pass an object with __cuda_array_interface__)")
        return from_object(name, t.from_dlpack(x), what)
    raise TypeError(f"{what} '{name}': {type(x).__name__} is not a GPU tensor")


class DeviceRunner:
    """Runs an engine on GPU tensors with kiln_context_enqueue.

    kiln runs a context's work on that context's own stream, ordered after
    the caller's stream (an event) and before whatever the caller enqueues
    next on it. Contexts are pooled per (device, caller stream): runs from
    one stream reuse one context (its activation memory and the CUDA graphs
    it captured per input shape), and runs from different streams get
    different contexts, so they can overlap on the GPU. A context is taken
    out of the pool for the duration of one enqueue call, so two threads
    never use one at once."""

    def __init__(self, engine):
        self.engine = engine
        self.lock = threading.Lock()
        self.free = {}
        self.contexts = []
        self.out_shapes = {}  # input shapes -> output shapes (engine.shape_static only)

    def close(self):
        with self.lock:
            ctxs, self.contexts, self.free = self.contexts, [], {}
        for c in ctxs:
            lib.context_destroy(c)

    def _acquire(self, key):
        with self.lock:
            lst = self.free.get(key)
            if lst:
                return lst.pop()
        c = ctypes.c_void_p()
        check(lib.context_create(self.engine._handle(), ctypes.byref(c)))
        with self.lock:
            self.contexts.append(c.value)
        return c.value

    def _release(self, key, ctx):
        with self.lock:
            if ctx in self.contexts:  # not closed meanwhile
                self.free.setdefault(key, []).append(ctx)

    def run(self, tensors, out):
        """tensors: DeviceTensors in the engine's input order, checked.
        out: None, or DeviceTensors in the engine's output order."""
        e = self.engine
        torch = torch_module()
        first = tensors[0] if tensors else None
        dev = first.device if first else 0
        stream = kiln_stream(first.stream if first else 0)
        for t in tensors[1:]:
            if t.device != dev:
                raise ValueError(f"inputs '{first.name}' and '{t.name}' are on different GPUs (cuda:{dev}, "
                                 f"cuda:{t.device}); kiln runs one engine on one device")
        enqueue = lib.require("context_enqueue")
        n_in, n_out = len(tensors), e._n_out
        ins = (Tensor * max(n_in, 1))()
        for i, t in enumerate(tensors):
            d = ins[i]
            d.name, d.dtype, d.rank = e._in_name_ptr[i], e._in_code[i], len(t.shape)
            d.dims[:len(t.shape)] = t.shape
            d.data = t.ptr
        outs = (Tensor * max(n_out, 1))()
        sig = tuple(t.shape for t in tensors)
        with _on_device(torch, dev):
            key = (dev, stream)
            ctx = self._acquire(key)
            try:
                if out is None:
                    shapes = self.out_shapes.get(sig)
                    if shapes is None:
                        check(lib.require("context_output_shapes")(ctx, n_in, ins, n_out, outs))
                        shapes = [tuple(outs[i].dims[:outs[i].rank]) for i in range(n_out)]
                        if e._shape_static and len(self.out_shapes) < 256:
                            self.out_shapes[sig] = shapes
                    if torch is None:
                        raise TypeError("allocating GPU outputs needs PyTorch, which is not installed; pass "
                                        "out= buffers (objects with __cuda_array_interface__)")
                    results = _allocate(torch, e, shapes, dev, stream)
                    out = [from_object(e._out_names[i], r, "output") for i, r in enumerate(results)]
                else:
                    results = [o.obj for o in out]
                for i, o in enumerate(out):
                    d = outs[i]
                    d.name, d.dtype, d.rank = e._out_name_ptr[i], e._out_code[i], len(o.shape)
                    d.dims[:len(o.shape)] = o.shape
                    d.data = o.ptr
                check(enqueue(ctx, n_in, ins, n_out, outs, ctypes.c_void_p(stream)))
            finally:
                self._release(key, ctx)
        # kiln wrote the result shapes: a caller's larger buffer holds a prefix
        final = []
        for i, r in enumerate(results):
            shape = tuple(outs[i].dims[:outs[i].rank])
            if out[i].shape != shape:
                r = r.reshape(-1)[:int(np.prod(shape, dtype=np.int64))].reshape(shape)
            final.append(r)
        return final


class _on_device:
    """Makes `dev` the current CUDA device of this thread for a block, when
    PyTorch is there and it is not already."""
    __slots__ = ("torch", "dev", "prev")

    def __init__(self, torch, dev):
        self.torch, self.dev, self.prev = torch, dev, None

    def __enter__(self):
        t = self.torch
        if t is not None:
            cur = t.cuda.current_device()
            if cur != self.dev:
                self.prev = cur
                t.cuda.set_device(self.dev)

    def __exit__(self, *exc):
        if self.prev is not None:
            self.torch.cuda.set_device(self.prev)


def _allocate(torch, e, shapes, dev, stream):
    """torch.empty outputs on `dev`, allocated on the stream kiln writes on
    (so the caching allocator orders their reuse after the run)."""
    cur = torch.cuda.current_stream(dev)
    if kiln_stream(cur.cuda_stream) == stream:
        return [torch.empty(s, dtype=_out_torch_dtype(e, i), device=f"cuda:{dev}") for i, s in enumerate(shapes)]
    ext = torch.cuda.ExternalStream(stream, device=f"cuda:{dev}")
    with torch.cuda.stream(ext):
        return [torch.empty(s, dtype=_out_torch_dtype(e, i), device=f"cuda:{dev}") for i, s in enumerate(shapes)]


def _out_torch_dtype(e, i):
    dt = torch_dtype(e._out_code[i])
    if dt is None:
        raise TypeError(f"output '{e._out_names[i]}' is {_lib.DTYPE_NAMES.get(e._out_code[i])}, which this "
                        "PyTorch has no dtype for")
    return dt
