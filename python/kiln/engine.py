"""Engines: build or load one, read what it takes and gives, run it on numpy
arrays or GPU tensors, synchronously from any number of threads or through a
scheduler that returns concurrent.futures.Future objects.

Host arrays go through kiln_engine_infer (the engine's context pool: any
thread, no per-thread setup); GPU tensors through kiln_context_enqueue on the
tensor's stream (see _device.py). Inputs are checked here first so that a
wrong dtype, shape or layout is a TypeError/ValueError naming the tensor;
whatever kiln itself refuses is a KilnError with its message.
"""
import atexit
import ctypes
import itertools
import os
import sys
import threading
import weakref
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from . import _device, _lib
from ._lib import KilnError, Tensor, TensorDesc, check, cstr, lib

_DIM_UNKNOWN = -(2 ** 63)  # an anonymous unknown dim (KILN_DIM_UNKNOWN)

# kiln dtype code -> numpy dtype. NumPy has no bf16 or f8e4m3: those travel
# as their raw bits (uint16, uint8); ml_dtypes' bfloat16 / float8_e4m3fn
# arrays are accepted as inputs too.
_NP_DTYPES = {1: np.dtype(np.float32), 2: np.dtype(np.uint8), 3: np.dtype(np.int8), 6: np.dtype(np.int32),
              7: np.dtype(np.int64), 9: np.dtype(np.bool_), 10: np.dtype(np.float16), 11: np.dtype(np.float64),
              16: np.dtype(np.uint16), 17: np.dtype(np.uint8)}
_RAW_NAMES = {16: "bfloat16", 17: "float8_e4m3fn"}
_NP_CAST_NAMES = {1: "np.float32", 2: "np.uint8", 3: "np.int8", 6: "np.int32", 7: "np.int64", 9: "bool",
                  10: "np.float16", 11: "np.float64", 16: "np.uint16", 17: "np.uint8"}


def _dim_str(d):
    return "?" if d is None else str(d)


def _shape_str(shape):
    return "[" + ",".join(_dim_str(d) for d in shape) + "]"


@dataclass(frozen=True)
class TensorInfo:
    """An input or output of an engine.

    dtype: kiln's name ("f32", "f16", "bf16", "i64", ...).
    shape: a tuple of ints; a symbolic dim is its name ("batch"), or None
    when the model left it unnamed.
    profile: inputs only, (min, opt, max) shapes the engine accepts, when
    the library reports them (kiln_engine_input_profile), else None.
    """
    name: str
    dtype: str
    shape: tuple
    profile: tuple = None

    @property
    def numpy_dtype(self):
        """The numpy dtype of host arrays (bf16: uint16 bits, f8e4m3: uint8 bits)."""
        return _NP_DTYPES[_lib.DTYPE_CODES[self.dtype]]

    @property
    def torch_dtype(self):
        """The torch dtype of GPU tensors (imports torch)."""
        return _device.torch_dtype(_lib.DTYPE_CODES[self.dtype])

    def __str__(self):
        return f"{self.name}: {self.dtype} {_shape_str(self.shape)}"


@dataclass(frozen=True)
class Identity:
    """Who an engine is: what must match for a plan to be reused
    (docs/cache.md). file_name is the plan's name in the cache."""
    model: str
    version: str
    precision: str
    arch: str
    kiln_version: str
    options_hash: str
    file_name: str


def _identity_from(c):
    buf = ctypes.create_string_buffer(512)
    name = buf.value.decode() if lib.identity_file_name(ctypes.byref(c), buf, len(buf)) == 0 else ""
    return Identity(c.model.decode(), c.version.decode(), c.precision.decode(), c.arch.decode(),
                    c.kiln_version.decode(), c.options_hash.decode(), name)


class _KilnBuffer:
    """Memory kiln allocated, seen by numpy without a copy: the array's base,
    released when the last view dies: a buffer kiln allocated for an output
    (data == NULL) goes back through kiln_free, pinned memory of
    kiln_host_alloc (pinned=True) through kiln_host_free."""
    __slots__ = ("__array_interface__", "__weakref__", "_pinned")

    def __init__(self, ptr, shape, dtype, pinned=False):
        self.__array_interface__ = {"data": (ptr, False), "shape": shape, "typestr": dtype.str, "version": 3}
        self._pinned = pinned

    def __del__(self):
        ptr = self.__array_interface__["data"][0]
        if ptr:
            (lib.host_free if self._pinned else lib.free)(ptr)


def empty_pinned(shape, dtype=np.float32):
    """An uninitialized numpy array in page-locked host memory
    (kiln_host_alloc): inputs and outputs in such arrays move between host
    and GPU without a staging copy (docs/runtime.md, "pinned buffers");
    elsewhere (no GPU, or the ref backend) it is ordinary aligned memory.
    Page-locked memory cannot be swapped: allocate once, reuse."""
    shape = (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    dt = np.dtype(dtype)
    if any(d < 0 for d in shape):
        raise ValueError(f"empty_pinned: negative dim in {shape}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    ptr = ctypes.c_void_p()
    check(lib.require("host_alloc")(max(nbytes, 1), ctypes.byref(ptr)))
    return np.asarray(_KilnBuffer(ptr.value, shape, dt, pinned=True))


def _wrap_kiln_output(t, dtype):
    """The numpy array of an output tensor kiln allocated (takes ownership)."""
    shape = tuple(t.dims[:t.rank])
    ptr = t.data
    t.data = None
    if not ptr:  # nothing to own (cannot happen on success, but be safe)
        return np.empty(shape, dtype)
    return np.asarray(_KilnBuffer(ptr, shape, dtype))


def _as_host(name, v, what, code=None):
    """A host-memory value as a numpy array (no copy), and whether it was a
    PyTorch tensor; TypeError/ValueError naming it otherwise."""
    if isinstance(v, np.ndarray):
        return (v if type(v) is np.ndarray else np.asarray(v)), False
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(v, torch.Tensor):
        if v.device.type != "cpu":
            raise ValueError(f"{what} '{name}' is on {v.device}; kiln takes CUDA tensors or host memory")
        return v.detach().numpy(), True
    if hasattr(v, "__dlpack__") and hasattr(v, "__dlpack_device__"):
        return np.from_dlpack(v), False
    tip = f" (np.asarray(x, dtype={_NP_CAST_NAMES[code]}))" if code in _NP_CAST_NAMES else ""
    raise TypeError(f"{what} '{name}' is a {type(v).__name__}; kiln takes numpy arrays, PyTorch tensors or GPU "
                    f"arrays{tip}")


_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


def _addr(a):
    """The address of a C-contiguous array's data (x.ctypes.data costs three
    times as much; from_buffer needs a writeable, non-empty buffer)."""
    try:
        return _addressof(_from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


class _Prepared:
    """Per thread and input-shape signature: the kiln_tensor arrays of one
    call, reused by the next call of the same shapes on the same thread."""
    __slots__ = ("ins", "outs", "in_t", "out_t", "out_set")

    def __init__(self, e, shapes):
        self.ins = (Tensor * max(e._n_in, 1))()
        for i, s in enumerate(shapes):
            t = self.ins[i]
            t.name, t.dtype, t.rank = e._in_name_ptr[i], e._in_code[i], len(s)
            t.dims[:len(s)] = s
        self.outs = (Tensor * max(e._n_out, 1))()
        # element views, made once (indexing a ctypes array builds a new one)
        self.in_t = [self.ins[i] for i in range(e._n_in)]
        self.out_t = [self.outs[i] for i in range(e._n_out)]
        self.out_set = None  # the output shapes outs describes, or None: data = NULL


class _Closable:
    """close() on leaving a `with` block, and when garbage-collected while
    still open (_finalize: on another thread where closing could block)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_h", None):
            _finalize(self)


class Engine(_Closable):
    """A built or loaded kiln engine. Make one with kiln.build(...) or
    Engine.load(plan_path); release it with close() (or a `with` block, or
    let it be collected).

    Run it with engine(x) (one output: the array; several: a tuple in
    output order), engine(a, b), engine(images=x), or engine.infer({...})
    (a dict name -> output). numpy arrays in, numpy arrays out; GPU tensors
    in, torch tensors out on the same device. Thread-safe: any number of
    threads may call one engine at once.
    """

    def __init__(self, handle, source=None, _path=None):
        """Internal: takes ownership of a kiln_engine * (use build/load)."""
        self._h = handle
        try:
            self._init(source, _path)
        except BaseException:
            self._h = None
            lib.engine_destroy(handle)
            raise

    def _init(self, source, _path):
        handle = self._h
        self.source = source
        self.path = _path
        self._closed = False
        self._tls = threading.local()
        self._lock = threading.Lock()
        self._schedulers = weakref.WeakSet()
        self._default_scheduler = None
        self._runner = None
        self._out_shapes = {}  # input shapes -> output shapes, when _shape_static
        self.backend = lib.engine_backend_name(handle).decode()
        # The GPU a cuda engine lives on: the CUDA device current on this
        # thread when it was built or loaded (kiln.h has no getter for it).
        self.device = _device.current_device() if self.backend == "cuda" else None
        self._n_in = lib.engine_num_inputs(handle)
        self._n_out = lib.engine_num_outputs(handle)
        ins = [self._describe(lib.engine_input, i, True) for i in range(self._n_in)]
        outs = [self._describe(lib.engine_output, i, False) for i in range(self._n_out)]
        self.inputs = tuple(t for t, _ in ins)
        self.outputs = tuple(t for t, _ in outs)
        self._in_raw = [raw for _, raw in ins]  # dims as kiln gives them: < 0 symbolic
        self._out_raw = [raw for _, raw in outs]
        self._in_names = [t.name for t in self.inputs]
        self._out_names = [t.name for t in self.outputs]
        self._in_index = {n: i for i, n in enumerate(self._in_names)}
        self._in_code = [_lib.DTYPE_CODES.get(t.dtype, 0) for t in self.inputs]
        self._out_code = [_lib.DTYPE_CODES.get(t.dtype, 0) for t in self.outputs]
        self._in_np = [_NP_DTYPES.get(c) for c in self._in_code]
        self._out_np = [_NP_DTYPES.get(c) for c in self._out_code]
        # NUL-terminated names whose addresses go into kiln_tensor.name
        self._names_keep = [ctypes.create_string_buffer(n.encode()) for n in self._in_names + self._out_names]
        addrs = [ctypes.addressof(b) for b in self._names_keep]
        self._in_name_ptr, self._out_name_ptr = addrs[:self._n_in], addrs[self._n_in:]
        # the shapes checked so far (input shapes tuple -> None), shared by threads
        self._checked = {}
        # Output shapes that follow from the input shapes alone (every dim
        # fixed, or a symbol that some input carries) are learned once per
        # input shape and preallocated afterwards; others (data-dependent)
        # are allocated by kiln on every run.
        in_syms = {d for dims in self._in_raw for d in dims if d < 0 and d != _DIM_UNKNOWN}
        self._shape_static = all(d >= 0 or (d != _DIM_UNKNOWN and d in in_syms)
                                 for dims in self._out_raw for d in dims)

    def _describe(self, fn, i, is_input):
        d = TensorDesc()
        check(fn(self._h, i, ctypes.byref(d)))
        raw = tuple(d.dims[:d.rank])
        shape = tuple(int(x) if x >= 0 else (d.dim_names[k].decode() if d.dim_names[k] else None)
                      for k, x in enumerate(raw))
        profile = None
        if is_input and lib.has("engine_input_profile"):
            lo, opt, hi = (ctypes.c_int64 * 8)(), (ctypes.c_int64 * 8)(), (ctypes.c_int64 * 8)()
            if lib.engine_input_profile(self._h, i, lo, opt, hi) == 0:
                profile = (tuple(lo[:d.rank]), tuple(opt[:d.rank]), tuple(hi[:d.rank]))
        return TensorInfo(d.name.decode(), _lib.DTYPE_NAMES.get(d.dtype, f"dtype{d.dtype}"), shape, profile), raw

    # ------------------------------------------------------------ lifetime

    @classmethod
    def load(cls, path):
        """Loads a plan file (kiln_engine_save / `kiln build -o`); the
        backend is the plan's."""
        h = ctypes.c_void_p()
        # onto the current GPU (a ref plan ignores it: only device 0 exists there)
        dev = _device.current_device()
        load_dev = lib.engine_load_device if dev else None
        if load_dev is not None and _lib.is_cuda_plan(path):
            check(load_dev(cstr(path), dev, ctypes.byref(h)))
        else:
            check(lib.engine_load(cstr(path), ctypes.byref(h)))
        return cls(h.value, source="plan", _path=os.fspath(path))

    def save(self, path):
        """Writes the engine as a plan file (atomically)."""
        check(lib.engine_save(self._handle(), cstr(path)))

    def close(self):
        """Stops this engine's schedulers (queued requests still run), frees
        its GPU contexts and the engine. Idempotent. No other thread may be
        running it."""
        if getattr(_in_worker, "active", False) and list(self._schedulers):
            raise RuntimeError("a kiln engine with schedulers cannot be closed from a future's callback, which "
                               "runs on a scheduler's worker; close it from another thread")
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for s in list(self._schedulers):
            s.close()
        if self._runner is not None:
            self._runner.close()
        h, self._h = self._h, None
        if h:
            lib.engine_destroy(h)


    def _handle(self):
        if self._h is None:
            raise ValueError("this kiln engine is closed")
        return self._h

    def __repr__(self):
        ins = ", ".join(str(t) for t in self.inputs)
        outs = ", ".join(str(t) for t in self.outputs)
        return f"<kiln.Engine {self.backend} ({ins}) -> ({outs})>"

    # ------------------------------------------------------------ metadata

    @property
    def identity(self):
        """The engine's Identity (model, version, precision, arch, ...)."""
        c = _lib.Identity()
        check(lib.engine_identity(self._handle(), ctypes.byref(c)))
        return _identity_from(c)

    @property
    def input_names(self):
        return list(self._in_names)

    @property
    def output_names(self):
        return list(self._out_names)

    @property
    def profile(self):
        """{input name: (min, opt, max)} as the engine reports it, or None
        when the library cannot say."""
        if any(t.profile is None for t in self.inputs):
            return None
        return {t.name: t.profile for t in self.inputs}

    def report(self, json=False):
        """The per-layer report (kiln_engine_report): a str, or a dict when
        json=True."""
        out = ctypes.c_void_p()
        check(lib.require("engine_report")(self._handle(), 1 if json else 0, ctypes.byref(out)))
        text = _lib.take_string(out)
        if json:
            import json as _json
            return _json.loads(text)
        return text

    def set_pool_limits(self, min_contexts=0, max_contexts=16):
        """Bounds the context pool behind synchronous calls on host arrays
        (kiln_engine_set_pool_limits): max_contexts runs at once."""
        check(lib.engine_set_pool_limits(self._handle(), int(min_contexts), int(max_contexts)))

    def set_graphs(self, enabled):
        """Whether GPU contexts capture and replay CUDA graphs (cuda backend;
        set before the first run on GPU tensors)."""
        check(lib.require("engine_set_graphs")(self._handle(), 1 if enabled else 0))

    # ------------------------------------------------------------ running

    def __call__(self, *args, **kwargs):
        """engine(x), engine(a, b), engine(images=x): the output (one) or a
        tuple of outputs in engine order."""
        if len(args) == 1 and not kwargs and self._n_in == 1 and type(args[0]) is np.ndarray:
            x = args[0]
            # The fast path: a shape this thread has run before, whose input
            # was checked and whose outputs are known. It repeats only the
            # checks that depend on the array itself (dtype, layout).
            fast = self._tls.__dict__.get(x.shape)
            if fast is not None and x.dtype is self._in_np[0]:
                prep, shapes = fast
                f = x.flags
                if f.c_contiguous and f.aligned and prep.out_set is shapes and self._h:
                    try:
                        prep.in_t[0].data = _addressof(_from_buffer(x))
                    except (TypeError, ValueError, BufferError):  # read-only or empty
                        prep.in_t[0].data = x.ctypes.data
                    if self._n_out == 1:
                        r = np.empty(shapes[0], self._out_np[0])
                        prep.out_t[0].data = _addressof(_from_buffer(r))
                        if lib.engine_infer(self._h, 1, prep.ins, 1, prep.outs) == 0:
                            return r
                    else:
                        res = [np.empty(s, dt) for s, dt in zip(shapes, self._out_np)]
                        for t, r in zip(prep.out_t, res):
                            t.data = _addressof(_from_buffer(r))
                        if lib.engine_infer(self._h, 1, prep.ins, self._n_out, prep.outs) == 0:
                            return tuple(res)
                    # failed: the general path below runs it again and
                    # reports (or recovers from) what went wrong
                    prep.out_set = None
            res = self._run_host([x], None)
        else:
            res = self._run(self._gather(args, kwargs), None)
        return res[0] if len(res) == 1 else tuple(res)

    def infer(self, inputs=None, out=None, **kwargs):
        """Runs once; returns {output name: array}. inputs: {name: array},
        a list/tuple in input order, or one array for a one-input engine
        (or the inputs as keywords). out: optional buffers for the outputs
        ({name: array} or a list), filled in place: the allocation-free path.
        """
        if inputs is None:
            arrays = self._gather((), kwargs)
        elif kwargs:
            raise TypeError("pass the inputs either as one dict/list or as keywords, not both")
        elif isinstance(inputs, (list, tuple)):
            arrays = self._gather(tuple(inputs), {})
        else:
            arrays = self._gather((inputs,), {})
        res = self._run(arrays, self._gather_out(out))
        return dict(zip(self._out_names, res))

    def infer_async(self, inputs=None, **kwargs):
        """Queues one run on the engine's default scheduler (one worker, no
        batching; see scheduler()) and returns a concurrent.futures.Future
        of {output name: array}. The input arrays must stay unchanged until
        the future is done."""
        s = self._default_scheduler
        if s is None or s._closed:
            with self._lock:
                s = self._default_scheduler
                if s is None or s._closed:
                    s = self._default_scheduler = Scheduler(self, _owned=True)
        return s.infer_async(inputs, **kwargs)

    def scheduler(self, workers=1, max_batch=0, max_delay_us=0, preferred=(), device=0):
        """A new Scheduler: `workers` threads (each with its own context;
        cuda: its own stream) behind one queue, and with max_batch > 1 the
        dynamic batcher, which joins requests along dim 0 (every input's dim
        0 must be symbolic) for up to max_delay_us. Close it when done (or
        use `with`)."""
        return Scheduler(self, workers=workers, max_batch=max_batch, max_delay_us=max_delay_us,
                         preferred=preferred, device=device)

    # ------------------------------------------------------------ internals

    def _gather(self, args, kwargs):
        """The inputs in engine order, from positional values, one dict, or
        keywords."""
        n = self._n_in
        if len(args) == 1 and not kwargs and isinstance(args[0], dict):
            kwargs, args = args[0], ()
        if args and kwargs:
            raise TypeError("pass the inputs either by position or by name, not both")
        if not kwargs:
            if len(args) != n:
                raise ValueError(f"the engine takes {n} input{'s' if n != 1 else ''} ({self._names_text()}), "
                                 f"{len(args)} given")
            return list(args)
        arrays = [kwargs.get(k) for k in self._in_names]
        if len(kwargs) == n and not any(a is None for a in arrays):
            return arrays
        for k in kwargs:
            if k not in self._in_index:
                raise ValueError(f"unknown input '{k}': the engine's inputs are {self._names_text()}")
        missing = [self._in_names[i] for i in range(n) if arrays[i] is None]
        raise ValueError(f"input '{missing[0]}' is missing: the engine's inputs are {self._names_text()}")

    def _names_text(self):
        return ", ".join(f"'{x}'" for x in self._in_names)

    def _gather_out(self, out):
        if out is None:
            return None
        if isinstance(out, dict):
            unknown = [k for k in out if k not in self._out_names]
            if unknown:
                raise ValueError(f"unknown output '{unknown[0]}' in out=: the engine's outputs are "
                                 + ", ".join(f"'{x}'" for x in self._out_names))
            res = [out.get(n) for n in self._out_names]
        else:
            res = list(out) if isinstance(out, (list, tuple)) else [out]
        if len(res) != self._n_out or any(r is None for r in res):
            raise ValueError(f"out= must hold a buffer for each of the {self._n_out} outputs "
                             f"({', '.join(self._out_names)})")
        return res

    def _run(self, values, out):
        """Dispatches on where the inputs live."""
        for v in values:
            if type(v) is not np.ndarray:
                break
        else:
            return self._run_host(values, out)
        host, dev, torch_cpu = self._split(values)
        if dev:
            return self._run_device(dev, out)
        if out is not None:
            out = [o if isinstance(o, np.ndarray) else _as_host(self._out_names[i], o, "output")[0]
                   for i, o in enumerate(out)]
        res = self._run_host(host, out)
        if torch_cpu:
            torch = sys.modules["torch"]
            res = [torch.from_numpy(r) for r in res]
        return res

    def _split(self, values):
        """(host arrays, None, torch_cpu) or (None, DeviceTensors, False):
        inputs all in host memory or all on the GPU, else an error naming
        the first one on the other side."""
        host, dev, torch_cpu = [], [], False
        for i, v in enumerate(values):
            name = self._in_names[i]
            if type(v) is not np.ndarray and _device.is_device_object(v):
                dev.append(_device.from_object(name, v))
            else:
                a, was_torch = _as_host(name, v, "input", self._in_code[i])
                host.append(a)
                torch_cpu |= was_torch
        if dev and host:
            raise ValueError(f"input '{dev[0].name}' is on the GPU but the others are in host memory; pass all "
                             "inputs on the same device")
        return (None, dev, False) if dev else (host, None, torch_cpu)

    def _check_host(self, arrays):
        """TypeError/ValueError naming the first input that kiln would refuse;
        shapes are checked once per distinct set of shapes. Returns the
        shapes (the key of the per-shape caches)."""
        in_np = self._in_np
        for i, a in enumerate(arrays):
            dt = a.dtype
            if dt is not in_np[i] and dt != in_np[i]:
                self._bad_dtype(i, a)
            f = a.flags
            if not (f.c_contiguous and f.aligned):
                self._bad_layout(i, a)
        key = tuple([a.shape for a in arrays])
        if key not in self._checked:
            self._check_shapes(key)
            if len(self._checked) < 1024:
                self._checked[key] = None
        return key

    def _bad_dtype(self, i, a):
        code = self._in_code[i]
        if code in _RAW_NAMES and a.dtype.name == _RAW_NAMES[code]:
            return  # ml_dtypes' bfloat16 / float8_e4m3fn: the same bits
        want = self._in_np[i]
        tip = ""
        if a.dtype.kind in "fiub" and want is not None:
            tip = f"; convert it with x.astype({_NP_CAST_NAMES[code]})"
        raise TypeError(f"input '{self._in_names[i]}' must be {self.inputs[i].dtype} ({want}), "
                        f"{a.dtype} was given{tip}")

    def _bad_layout(self, i, a):
        if not a.flags.c_contiguous:
            raise ValueError(f"input '{self._in_names[i]}' is not C-contiguous (shape {a.shape}, strides "
                             f"{a.strides}); pass np.ascontiguousarray(x)")
        raise ValueError(f"input '{self._in_names[i]}' is not aligned to its dtype; pass a copy (x.copy())")

    def _check_shapes(self, shapes, what="input"):
        seen = {}
        for i, s in enumerate(shapes):
            info, raw = self.inputs[i], self._in_raw[i]
            if len(s) != len(raw):
                raise ValueError(f"{what} '{info.name}' must have rank {len(raw)} {_shape_str(info.shape)}, "
                                 f"shape {tuple(s)} was given")
            for k, (d, got) in enumerate(zip(raw, s)):
                if d >= 0 and d != got:
                    raise ValueError(f"{what} '{info.name}' must be {_shape_str(info.shape)}: dim {k} must be {d}, "
                                     f"shape {tuple(s)} was given")
                if d < 0 and d != _DIM_UNKNOWN:
                    if d in seen and seen[d][0] != got:
                        raise ValueError(f"dim '{_dim_str(info.shape[k])}' is {seen[d][0]} in input '{seen[d][1]}' "
                                         f"but {got} in input '{info.name}'")
                    seen[d] = (got, info.name)
                if d < 0 and info.profile is not None:
                    lo, hi = info.profile[0][k], info.profile[2][k]
                    if not lo <= got <= hi:
                        raise ValueError(f"{what} '{info.name}': dim {k} ('{_dim_str(info.shape[k])}') is {got}, "
                                         f"outside the engine's profile {lo}..{hi}; build it with "
                                         f"profile=dict(max={{'{info.name}': (...)}}) to run larger shapes")

    def _run_host(self, arrays, out):
        key = self._check_host(arrays)
        tls = self._tls.__dict__
        prep = tls.get(key)
        if prep is None:
            if len(tls) > 64:
                tls.clear()
            prep = tls[key] = _Prepared(self, key)
        ins, outs, out_t = prep.ins, prep.outs, prep.out_t
        if len(arrays) == 1:
            prep.in_t[0].data = _addr(arrays[0])
        else:
            for t, a in zip(prep.in_t, arrays):
                t.data = _addr(a)
        n_out = self._n_out
        shapes = None
        if out is not None:
            results = self._bind_host_out(outs, out)
            prep.out_set = None
        else:
            shapes = self._out_shapes.get(key)
            if shapes is not None:
                if prep.out_set is not shapes:
                    for i, s in enumerate(shapes):
                        t = out_t[i]
                        t.dtype, t.rank = self._out_code[i], len(s)
                        t.dims[:len(s)] = s
                    prep.out_set = shapes
                if n_out == 1:
                    r = np.empty(shapes[0], self._out_np[0])
                    out_t[0].data = _addr(r)
                    results = [r]
                else:
                    results = [np.empty(s, dt) for s, dt in zip(shapes, self._out_np)]
                    for t, r in zip(out_t, results):
                        t.data = _addr(r)
            else:
                results = None
                for t in out_t:
                    t.data = None
                prep.out_set = None
        st = lib.engine_infer(self._h or self._handle(), len(arrays), ins, n_out, outs)
        if st != 0:
            prep.out_set = None
            if st == _lib.ERR_SHAPE and shapes is not None:
                # a result larger than its input shapes promised: learn no more
                self._shape_static = False
                self._out_shapes.clear()
                return self._run_host(arrays, None)
            raise _lib.last_error(st)
        if results is None:
            results = [_wrap_kiln_output(outs[i], self._out_np[i]) for i in range(n_out)]
            if self._shape_static and len(self._out_shapes) < 256:
                self._out_shapes[key] = [r.shape for r in results]
            return results
        if shapes is not None and len(arrays) == 1 and self._shape_static:
            tls[arrays[0].shape] = (prep, shapes)  # __call__'s fast path from now on
        if shapes is None or not self._shape_static:
            # kiln wrote the result's shape: in a larger buffer it is a prefix
            for i, r in enumerate(results):
                t = outs[i]
                shape = tuple(t.dims[:t.rank])
                if shape != r.shape:
                    prep.out_set = None
                    results[i] = r.reshape(-1)[:int(np.prod(shape, dtype=np.int64))].reshape(shape)
        return results

    def _bind_host_out(self, outs, out):
        for i, o in enumerate(out):
            name = self._out_names[i]
            if not isinstance(o, np.ndarray):
                raise TypeError(f"out buffer for output '{name}' is a {type(o).__name__}, not a numpy array")
            if o.dtype != self._out_np[i]:
                raise TypeError(f"out buffer for output '{name}' must be {self.outputs[i].dtype} "
                                f"({self._out_np[i]}), {o.dtype} was given")
            if not o.flags.c_contiguous or not o.flags.writeable:
                raise ValueError(f"out buffer for output '{name}' must be C-contiguous and writeable")
            t = outs[i]
            t.dtype, t.rank = self._out_code[i], o.ndim
            t.dims[:o.ndim] = o.shape
            t.data = _addr(o)
        return list(out)

    def _run_device(self, tensors, out):
        if self.backend == "ref":
            raise ValueError(f"input '{tensors[0].name}' is on the GPU, but this engine runs on the ref backend "
                             "(host memory): pass numpy arrays (x.cpu().numpy()) or build for backend='cuda'")
        for i, t in enumerate(tensors):
            if self.device is not None and t.device != self.device:
                raise ValueError(f"input '{t.name}' is on cuda:{t.device}, but this engine was built for "
                                 f"cuda:{self.device}; move it (x.to('cuda:{self.device}')) or build the engine "
                                 f"with that GPU current (torch.cuda.set_device({t.device}))")
            self._check_device_dtype(t, i, self.inputs[i], self._in_code[i])
        self._check_shapes([t.shape for t in tensors])
        if out is not None:
            out = [_device.from_object(self._out_names[i], o, "output") for i, o in enumerate(out)]
            for i, o in enumerate(out):
                self._check_device_dtype(o, i, self.outputs[i], self._out_code[i], "output")
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    self._runner = _device.DeviceRunner(self)
        return self._runner.run(tensors, out)

    @staticmethod
    def _check_device_dtype(t, i, info, code, what="input"):
        if t.is_torch:
            want = _device.torch_dtype(code)
            ok = t.dtype_desc == want
        else:
            want = _NP_DTYPES.get(code)
            ok = t.dtype_desc == want or (code in _RAW_NAMES and t.dtype_desc.name == _RAW_NAMES[code])
        if not ok:
            raise TypeError(f"{what} '{info.name}' must be {info.dtype} ({want}), {t.dtype_desc} was given"
                            + ("; convert it with x.to(" + str(want) + ")" if t.is_torch and want is not None else ""))


# ---------------------------------------------------------------- scheduler

# Requests in flight, by the id passed to kiln as `user`; the callback looks
# its request up here. The entry keeps the inputs, the kiln_tensor arrays and
# the Future alive until kiln is done with them.
_pending = {}
_ids = itertools.count(1)


class _Request:
    """One queued request: what kiln reads and writes until it is done, and
    what the callback needs to make its result (without the engine, which
    may be closing while the queue drains)."""
    __slots__ = ("future", "arrays", "ins", "outs", "out_np", "out_names", "torch_cpu")


# set on a kiln worker thread while it runs Python (the Future's callbacks):
# closing a scheduler there would join the very thread that is closing it
_in_worker = threading.local()


def _on_done(status, n_outputs, outputs, user):
    """kiln_infer_done_fn: runs on a kiln worker thread (ctypes takes the GIL)."""
    req = _pending.pop(user, None)
    if req is None:
        return
    _in_worker.active = True
    try:
        if status == 0:
            res = [_wrap_kiln_output(req.outs[i], dt) for i, dt in enumerate(req.out_np)]
            if req.torch_cpu:
                torch = sys.modules["torch"]
                res = [torch.from_numpy(r) for r in res]
            req.future.set_result(dict(zip(req.out_names, res)))
        else:
            # kiln_last_error() on this worker thread holds the message
            exc = _lib.last_error(status)
            _free_unowned(req)  # kiln leaves nothing allocated on failure; be sure
            req.future.set_exception(exc)
    except BaseException as exc:  # never let an exception escape into C
        try:
            _free_unowned(req)  # outputs not yet wrapped when the wrapping failed
            req.future.set_exception(exc)
        except Exception:
            pass
    finally:
        _in_worker.active = False


def _free_unowned(req):
    """Frees the kiln-allocated outputs of req that no array owns yet
    (_wrap_kiln_output clears .data of those it took)."""
    for i in range(len(req.out_np)):
        if req.outs[i].data:
            lib.free(req.outs[i].data)
            req.outs[i].data = None


def _finalize(obj):
    """__del__ of an Engine or Scheduler: close it, on another thread when
    this is a kiln worker (the last reference dropped in a callback)."""
    if sys.is_finalizing():
        return
    try:
        if getattr(_in_worker, "active", False):
            threading.Thread(target=obj.close, daemon=True).start()
        else:
            obj.close()
    except Exception:
        pass


_DONE = _lib.DONE_FN(_on_done)  # one C function pointer for every request, alive for the process


class Scheduler(_Closable):
    """A queue in front of worker threads running one engine
    (kiln_scheduler), with the dynamic batcher when max_batch > 1.
    infer_async() returns concurrent.futures.Future objects; their
    callbacks (add_done_callback) run on a kiln worker: keep them short.
    Use Engine.scheduler(...) to make one; close() drains the queue."""

    def __init__(self, engine, workers=1, max_batch=0, max_delay_us=0, preferred=(), device=0, _owned=False):
        # The engine must outlive the scheduler. A scheduler the caller holds
        # keeps its engine alive; the engine's own default scheduler refers
        # back weakly, so that dropping the engine frees both at once (close()
        # drains the queue first).
        self._engine = weakref.ref(engine) if _owned else (lambda e=engine: e)
        self._closed = False
        self._lock = threading.Lock()
        o = _lib.SchedulerOptions()
        lib.scheduler_options_init(ctypes.byref(o))
        preferred = list(preferred)
        if len(preferred) > _lib.MAX_PREFERRED_BATCH:
            raise ValueError(f"at most {_lib.MAX_PREFERRED_BATCH} preferred batch sizes")
        o.n_workers, o.max_batch, o.max_delay_us = int(workers), int(max_batch), int(max_delay_us)
        o.n_preferred, o.device = len(preferred), int(device)
        for i, p in enumerate(preferred):
            o.preferred[i] = int(p)
        self.options = dict(workers=int(workers), max_batch=int(max_batch), max_delay_us=int(max_delay_us),
                            preferred=tuple(preferred), device=int(device))
        h = ctypes.c_void_p()
        check(lib.scheduler_create(engine._handle(), ctypes.byref(o), ctypes.byref(h)))
        self._h = h.value
        engine._schedulers.add(self)
        _live_schedulers.add(self)

    @property
    def engine(self):
        e = self._engine()
        if e is None:
            raise ValueError("the engine of this scheduler is gone")
        return e

    def infer_async(self, inputs=None, **kwargs):
        """Queues one run; returns a Future of {output name: array}. A
        request kiln refuses at once (bad name, dtype, shape, rows over
        max_batch, scheduler shut down) raises here; a failed run sets the
        Future's exception (KilnError). GPU tensors are enqueued on their
        stream right away and the Future is already done."""
        e = self.engine
        if inputs is None:
            values = e._gather((), kwargs)
        elif kwargs:
            raise TypeError("pass the inputs either as one dict/list or as keywords, not both")
        elif isinstance(inputs, (list, tuple)):
            values = e._gather(tuple(inputs), {})
        else:
            values = e._gather((inputs,), {})
        torch_cpu = False
        if any(type(v) is not np.ndarray for v in values):
            values, dev, torch_cpu = e._split(values)
            if dev:
                # enqueued on the tensors' stream now: the GPU runs it
                # asynchronously already, the future is done at once
                f = Future()
                f.set_running_or_notify_cancel()
                f.set_result(dict(zip(e._out_names, e._run_device(dev, None))))
                return f
        key = e._check_host(values)
        req = _Request()
        req.future = Future()
        req.future.set_running_or_notify_cancel()  # queued in C: it cannot be cancelled from Python
        req.arrays, req.torch_cpu, req.out_np, req.out_names = values, torch_cpu, e._out_np, e._out_names
        ins = req.ins = (Tensor * max(e._n_in, 1))()
        for i, (a, s) in enumerate(zip(values, key)):
            t = ins[i]
            t.name, t.dtype, t.rank = e._in_name_ptr[i], e._in_code[i], len(s)
            t.dims[:len(s)] = s
            t.data = _addr(a)
        # outputs: data = NULL, kiln allocates them, the arrays take them
        # over without a copy (_KilnBuffer)
        req.outs = (Tensor * max(e._n_out, 1))()
        rid = next(_ids)
        _pending[rid] = req  # before submitting: the callback may run before kiln_infer_async returns
        with self._lock:  # against a concurrent close()
            if self._closed:
                del _pending[rid]
                raise KilnError(_lib.ERR_CANCELLED, "this scheduler is closed")
            st = lib.infer_async(self._h, e._n_in, ins, e._n_out, req.outs, _DONE, rid, None)
        if st != 0:
            _pending.pop(rid, None)
            raise _lib.last_error(st)
        return req.future

    def submit(self, inputs=None, **kwargs):
        """Alias of infer_async, as in concurrent.futures.Executor."""
        return self.infer_async(inputs, **kwargs)

    def stats(self):
        """Counters: submitted, completed, failed, cancelled, runs, rows."""
        s = _lib.SchedulerStats()
        with self._lock:
            if self._closed:
                raise ValueError("this scheduler is closed")
            check(lib.scheduler_stats_get(self._h, ctypes.byref(s)))
        return {k: int(getattr(s, k)) for k in ("submitted", "completed", "failed", "cancelled", "runs", "rows")}

    def shutdown(self, cancel=False):
        """Stops taking requests; queued ones still run (cancel=False) or
        fail at once with KILN_ERR_CANCELLED. Returns at once."""
        with self._lock:
            if not self._closed:
                lib.scheduler_shutdown(self._h, 1 if cancel else 0)

    def close(self, cancel=False):
        """Shuts down (draining, unless cancel), waits for the workers and
        frees the scheduler: every future is done when this returns. Not
        from a future's callback (it runs on one of the workers)."""
        if getattr(_in_worker, "active", False):
            raise RuntimeError("a kiln scheduler cannot be closed from a future's callback, which runs on one of "
                               "its workers; shut it down there (shutdown()) and close it from another thread")
        with self._lock:
            if self._closed:
                return
            self._closed = True
            h, self._h = self._h, None
        if cancel:
            lib.scheduler_shutdown(h, 1)
        lib.scheduler_destroy(h)  # GIL released: the workers' callbacks can take it
        _live_schedulers.discard(self)



_live_schedulers = weakref.WeakSet()


@atexit.register
def _drain_at_exit():
    """Completes queued requests while the interpreter can still run their
    callbacks. Engines are left to the OS: a daemon thread may still be in
    one."""
    for s in list(_live_schedulers):
        try:
            s.close()
        except Exception:
            pass


# ---------------------------------------------------------------- build

def _shapes_text(shapes, what):
    """{"images": (1, 3, 224, 224)} -> "images:1x3x224x224" (str passes through)."""
    if shapes is None:
        return None
    if isinstance(shapes, str):
        return shapes
    if not isinstance(shapes, dict):
        raise TypeError(f"{what} must be a dict {{input name: shape tuple}}, e.g. {{'images': (1, 3, 224, 224)}}")
    parts = []
    for name, dims in shapes.items():
        if isinstance(dims, int):
            dims = (dims,)
        try:
            dims = [int(d) for d in dims]
        except (TypeError, ValueError):
            raise TypeError(f"{what}: the shape of '{name}' must be a tuple of ints, {dims!r} was given") from None
        if any(d < 0 for d in dims):
            raise ValueError(f"{what}: the shape of '{name}' has a negative dim: {tuple(dims)}")
        if any(c in str(name) for c in ",:;"):
            raise ValueError(f"{what}: input name '{name}' contains one of ',:;', which the shapes string cannot carry")
        parts.append(f"{name}:" + "x".join(str(d) for d in dims))
    return ",".join(parts)


def _profile_text(profile):
    """dict(min=..., opt=..., max=...) with {name: shape} each ->
    "min:...;opt:...;max:..." (str passes through)."""
    if profile is None or isinstance(profile, str):
        return profile
    if not isinstance(profile, dict):
        raise TypeError("profile must be dict(min={...}, opt={...}, max={...}) with {input name: shape} each")
    unknown = [k for k in profile if k not in ("min", "opt", "max")]
    if unknown:
        raise ValueError(f"profile: unknown key '{unknown[0]}' (min, opt, max)")
    return ";".join(f"{k}:{_shapes_text(profile[k], f'profile[{k!r}]')}" for k in ("min", "opt", "max")
                    if profile.get(k) is not None)


def _options(backend, precision, shapes, profile, cache_dir, model_name, model_version, workspace_bytes, flags):
    o = _lib.BuildOptions()
    lib.build_options_init(ctypes.byref(o))
    if backend not in ("cuda", "ref"):
        raise ValueError(f"unknown backend '{backend}' (cuda or ref)")
    o.backend = _lib.BACKEND_CUDA if backend == "cuda" else _lib.BACKEND_REF
    if precision is None:
        precision = "fp16" if backend == "cuda" else "default"
    if precision not in _lib.PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' ({', '.join(p for p in _lib.PRECISIONS if p != 'default')})")
    o.precision = _lib.PRECISIONS[precision]
    o.flags = flags
    # a cuda engine is built on the GPU current for this thread (PyTorch's
    # current device), where Engine.device says it is
    o.device = _device.current_device() if backend == "cuda" else 0
    keep = [cstr(model_name), cstr(model_version), cstr(cache_dir), cstr(_shapes_text(shapes, "shapes")),
            cstr(_profile_text(profile))]
    o.model_name, o.model_version, o.cache_dir, o.input_shapes, o.profile = keep
    o.workspace_bytes = int(workspace_bytes or 0)
    return o, keep


def build(onnx_path, precision=None, backend="cuda", shapes=None, profile=None, cache=True, force_rebuild=False,
          cache_dir=None, model_name=None, model_version=None, workspace_bytes=0, remote=True, upload=True):
    """Builds an engine for an ONNX model, or loads it from the engine cache.

    precision: "fp32", "tf32", "fp16", "bf16", "int8", "fp8"; None: fp16 on
      cuda, fp32 on ref (the ref backend computes in the model's dtypes).
    backend: "cuda" (the GPU engine) or "ref" (the plain-C reference).
    shapes: {input: shape} fixing symbolic dims at build time.
    profile: dict(min={input: shape}, opt=..., max=...) for the symbolic dims
      of a cuda engine (or the "min:...;opt:...;max:..." string).
    cache: look in the local cache folder (cache_dir, else $KILN_CACHE_DIR,
      ~/.cache/kiln/engines) and the remote store ($KILN_REMOTE_URL; remote=
      False skips it, upload=False never uploads), else build and store.
      cache=False only builds. force_rebuild: build and refresh the caches.
    Returns (Engine, source), source in "local_cache", "remote", "built".
    """
    flags = 0
    if force_rebuild:
        flags |= _lib.BUILD_FORCE_REBUILD
    if not cache:
        flags |= _lib.BUILD_NO_CACHE
    if not remote:
        flags |= _lib.BUILD_NO_REMOTE
    if not upload:
        flags |= _lib.BUILD_NO_UPLOAD
    o, keep = _options(backend, precision, shapes, profile, cache_dir, model_name, model_version, workspace_bytes,
                       flags)
    h, src = ctypes.c_void_p(), ctypes.c_int(0)
    check(lib.build_or_load(cstr(onnx_path), ctypes.byref(o), ctypes.byref(h), ctypes.byref(src)))
    del keep
    source = _lib.SOURCES.get(src.value, str(src.value))
    return Engine(h.value, source=source, _path=os.fspath(onnx_path)), source


def load(path):
    """Loads a plan file: Engine.load(path)."""
    return Engine.load(path)


def model_identity(onnx_path, precision=None, backend="cuda", shapes=None, profile=None, model_name=None,
                   model_version=None, workspace_bytes=0):
    """The Identity an engine built with these options would have (hashes
    the model file): where build() would look in the cache."""
    o, keep = _options(backend, precision, shapes, profile, None, model_name, model_version, workspace_bytes, 0)
    c = _lib.Identity()
    check(lib.model_identity(cstr(onnx_path), ctypes.byref(o), ctypes.byref(c)))
    del keep
    return _identity_from(c)


def cache_dir(cache_dir=None):
    """The engine cache folder build() uses (created if missing)."""
    o, keep = _options("ref", None, None, None, cache_dir, None, None, 0, 0)
    out = ctypes.c_void_p()
    check(lib.cache_dir(ctypes.byref(o), ctypes.byref(out)))
    return _lib.take_string(out)


def inspect(onnx_path, shapes=None):
    """What `kiln inspect --json` says about a model, as a dict (inputs,
    outputs, op histogram, FLOPs, unsupported nodes; docs/inspect-json.md)."""
    import json
    m = ctypes.c_void_p()
    check(lib.model_load(cstr(onnx_path), ctypes.byref(m)))
    try:
        for name, dims in (shapes or {}).items():
            dims = [int(d) for d in dims]
            check(lib.model_set_input_shape(m, cstr(name), len(dims), (ctypes.c_int64 * max(len(dims), 1))(*dims)))
        out = ctypes.c_void_p()
        check(lib.model_report(m, 1, ctypes.byref(out)))
        return json.loads(_lib.take_string(out))
    finally:
        lib.model_destroy(m)
