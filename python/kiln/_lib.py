"""ctypes view of libkiln.so: the structs of include/kiln.h, the functions the
package calls, and the status -> KilnError translation.

Every struct here mirrors one in include/kiln.h field by field; the sizes the
header promises are asserted at import (tests/test_structs.py also compares
every offset with a C compiler's). Calls go through ctypes.CDLL, which drops
the GIL for the duration of each call, so Python threads really run in
parallel inside kiln.
"""
import ctypes
import glob
import importlib.util
import os
import sys
import warnings
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_int, c_int64, c_size_t, c_uint,
                    c_uint32, c_uint64, c_void_p)

from ._elf import elf_needed

MAX_RANK = 8
MAX_PREFERRED_BATCH = 8

# kiln_status
OK = 0
ERR_INVALID_ARGUMENT = 1
ERR_SHAPE = 5
ERR_CANCELLED = 11

# kiln_backend
BACKEND_CUDA = 0
BACKEND_REF = 1

# kiln_build_options.flags
BUILD_FORCE_REBUILD = 1 << 0
BUILD_NO_REMOTE = 1 << 1
BUILD_NO_UPLOAD = 1 << 2
BUILD_NO_CACHE = 1 << 3

# kiln_precision, by the names `kiln build --precision` and plan names use.
# "tf32" (6) is KILN_PRECISION_TF32; a library that predates it refuses it.
PRECISIONS = {"default": 0, "fp32": 1, "fp16": 2, "bf16": 3, "int8": 4, "fp8": 5, "tf32": 6}

# kiln_engine_source
SOURCES = {0: "built", 1: "local_cache", 2: "remote"}

# kiln_dtype values (ONNX TensorProto.DataType) -> kiln's names
DTYPE_NAMES = {1: "f32", 2: "u8", 3: "i8", 6: "i32", 7: "i64", 9: "bool", 10: "f16", 11: "f64", 16: "bf16",
               17: "f8e4m3"}
DTYPE_CODES = {v: k for k, v in DTYPE_NAMES.items()}


class TensorDesc(Structure):
    """kiln_tensor_desc"""
    _fields_ = [("name", c_char_p), ("dtype", c_int), ("rank", c_int), ("dims", c_int64 * MAX_RANK),
                ("dim_names", c_char_p * MAX_RANK)]


class Tensor(Structure):
    """kiln_tensor (name as a raw pointer: kiln writes engine-owned names back)"""
    _fields_ = [("name", c_void_p), ("dtype", c_int), ("rank", c_int), ("dims", c_int64 * MAX_RANK),
                ("data", c_void_p)]


class BuildOptions(Structure):
    """kiln_build_options (64 bytes in every version)"""
    _fields_ = [("backend", c_int), ("precision", c_int), ("flags", c_uint), ("device", c_int),
                ("model_name", c_char_p), ("model_version", c_char_p), ("cache_dir", c_char_p),
                ("input_shapes", c_char_p), ("workspace_bytes", c_uint64), ("profile", c_char_p)]


class Identity(Structure):
    """kiln_identity"""
    _fields_ = [("model", c_char * 64), ("version", c_char * 32), ("precision", c_char * 16),
                ("arch", c_char * 16), ("kiln_version", c_char * 16), ("options_hash", c_char * 16)]


class SchedulerOptions(Structure):
    """kiln_scheduler_options (128 bytes in every version)"""
    _fields_ = [("n_workers", c_int), ("max_batch", c_int), ("max_delay_us", c_int), ("n_preferred", c_int),
                ("preferred", c_int * MAX_PREFERRED_BATCH), ("device", c_int), ("reserved", c_int * 19)]


class SchedulerStats(Structure):
    """kiln_scheduler_stats"""
    _fields_ = [("submitted", c_uint64), ("completed", c_uint64), ("failed", c_uint64), ("cancelled", c_uint64),
                ("runs", c_uint64), ("rows", c_uint64), ("reserved", c_uint64 * 2)]


# The sizes kiln.h promises across versions, and the others as the header
# lays them out on LP64.
assert ctypes.sizeof(BuildOptions) == 64, ctypes.sizeof(BuildOptions)
assert ctypes.sizeof(SchedulerOptions) == 128, ctypes.sizeof(SchedulerOptions)
assert ctypes.sizeof(Tensor) == 88, ctypes.sizeof(Tensor)
assert ctypes.sizeof(TensorDesc) == 144, ctypes.sizeof(TensorDesc)
assert ctypes.sizeof(Identity) == 160, ctypes.sizeof(Identity)
assert ctypes.sizeof(SchedulerStats) == 64, ctypes.sizeof(SchedulerStats)

# void (*kiln_infer_done_fn)(kiln_status, int n_outputs, kiln_tensor *outputs, void *user)
DONE_FN = CFUNCTYPE(None, c_int, c_int, POINTER(Tensor), c_void_p)

_P = POINTER
_TP = _P(Tensor)
# name: (restype, argtypes). Every function the package calls.
_REQUIRED = {
    "kiln_status_name": (c_char_p, [c_int]),
    "kiln_last_error": (c_char_p, []),
    "kiln_version": (c_uint32, []),
    "kiln_version_string": (c_char_p, []),
    "kiln_set_log_level": (None, [c_int]),
    "kiln_dtype_name": (c_char_p, [c_int]),
    "kiln_dtype_size": (c_size_t, [c_int]),
    "kiln_free": (None, [c_void_p]),
    "kiln_model_load": (c_int, [c_char_p, _P(c_void_p)]),
    "kiln_model_destroy": (None, [c_void_p]),
    "kiln_model_report": (c_int, [c_void_p, c_int, _P(c_void_p)]),
    "kiln_model_set_input_shape": (c_int, [c_void_p, c_char_p, c_int, _P(c_int64)]),
    "kiln_build_options_init": (None, [_P(BuildOptions)]),
    "kiln_engine_build": (c_int, [c_void_p, _P(BuildOptions), _P(c_void_p)]),
    "kiln_engine_destroy": (None, [c_void_p]),
    "kiln_engine_num_inputs": (c_int, [c_void_p]),
    "kiln_engine_num_outputs": (c_int, [c_void_p]),
    "kiln_engine_input": (c_int, [c_void_p, c_int, _P(TensorDesc)]),
    "kiln_engine_output": (c_int, [c_void_p, c_int, _P(TensorDesc)]),
    "kiln_engine_backend_name": (c_char_p, [c_void_p]),
    "kiln_context_create": (c_int, [c_void_p, _P(c_void_p)]),
    "kiln_context_destroy": (None, [c_void_p]),
    "kiln_engine_identity": (c_int, [c_void_p, _P(Identity)]),
    "kiln_identity_file_name": (c_int, [_P(Identity), c_char_p, c_size_t]),
    "kiln_model_identity": (c_int, [c_char_p, _P(BuildOptions), _P(Identity)]),
    "kiln_engine_save": (c_int, [c_void_p, c_char_p]),
    "kiln_engine_load": (c_int, [c_char_p, _P(c_void_p)]),
    "kiln_is_plan_file": (c_int, [c_char_p]),
    "kiln_build_or_load": (c_int, [c_char_p, _P(BuildOptions), _P(c_void_p), _P(c_int)]),
    "kiln_cache_dir": (c_int, [_P(BuildOptions), _P(c_void_p)]),
    "kiln_engine_set_pool_limits": (c_int, [c_void_p, c_int, c_int]),
    "kiln_engine_infer": (c_int, [c_void_p, c_int, _TP, c_int, _TP]),
    "kiln_scheduler_options_init": (None, [_P(SchedulerOptions)]),
    "kiln_scheduler_create": (c_int, [c_void_p, _P(SchedulerOptions), _P(c_void_p)]),
    "kiln_scheduler_shutdown": (None, [c_void_p, c_int]),
    "kiln_scheduler_destroy": (None, [c_void_p]),
    "kiln_scheduler_stats_get": (c_int, [c_void_p, _P(SchedulerStats)]),
    "kiln_infer_async": (c_int, [c_void_p, c_int, _TP, c_int, _TP, DONE_FN, c_void_p, _P(c_void_p)]),
}
# Declared in kiln.h but newer than some builds of the library: bound when
# present, and a call to a missing one raises KilnError(KILN_ERR_UNSUPPORTED).
_OPTIONAL = {
    "kiln_engine_input_profile": (c_int, [c_void_p, c_int, _P(c_int64), _P(c_int64), _P(c_int64)]),
    "kiln_context_output_shapes": (c_int, [c_void_p, c_int, _TP, c_int, _TP]),
    "kiln_context_enqueue": (c_int, [c_void_p, c_int, _TP, c_int, _TP, c_void_p]),
    "kiln_engine_set_graphs": (c_int, [c_void_p, c_int]),
    "kiln_engine_report": (c_int, [c_void_p, c_int, _P(c_void_p)]),
    "kiln_engine_load_device": (c_int, [c_char_p, c_int, _P(c_void_p)]),
    "kiln_host_alloc": (c_int, [c_size_t, _P(c_void_p)]),
    "kiln_host_free": (c_int, [c_void_p]),
}


def is_cuda_plan(path):
    """Whether the file is a plan of the cuda backend (docs/plan-format.md:
    magic at 0, u32 backend at 56, 0 = cuda)."""
    try:
        with open(path, "rb") as f:
            head = f.read(60)
    except OSError:
        return False
    return len(head) == 60 and head[:8] == b"KILNPLAN" and int.from_bytes(head[56:60], "little") == 0

_BUILD_HINT = ("build it with: cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build "
               "(in the kiln repository), then pip install ./python (the package then carries build/libkiln.so) "
               "or point $KILN_LIBRARY at build/libkiln.so")


def _candidates():
    """Where libkiln.so is looked for, in order, with why."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = os.environ.get("KILN_LIBRARY")
    if env:
        return [(env, "$KILN_LIBRARY")]  # named explicitly: no silent fallback
    found = [(os.path.join(here, "libkiln.so"), "bundled with the package")]
    repo = os.path.normpath(os.path.join(here, "..", ".."))
    if os.path.exists(os.path.join(repo, "include", "kiln.h")):  # python/kiln in a kiln checkout
        found.append((os.path.join(repo, "build", "libkiln.so"), "the repository's build/ folder"))
    return found + [("libkiln.so", "the system library path")]


# ------------------------------------------------------------ CUDA libraries
#
# A process holds one cuDNN: whichever libcudnn.so.9 is loaded first serves
# every later user of that soname. PyTorch's wheels ship cuDNN and cuBLASLt
# as pip packages (nvidia/cudnn/lib, nvidia/cu13/lib) and load them by path;
# libkiln.so names them by soname, which the dynamic linker finds on the
# system path, often another version. Whoever loads first then imposes its
# copy on the other: kiln first, and PyTorch refuses the older cuDNN; PyTorch
# first, and kiln runs on a cuDNN its plans were not built with (they record
# the version, KILN_ERR_VERSION). So when those packages are installed, kiln
# loads them itself, by path, before libkiln.so: the same copy either way.

# In load order: cuDNN's engines link cuBLASLt by soname.
CUDA_SONAMES = ("libcublasLt.so.13", "libcudnn.so.9")
NO_PRELOAD_ENV = "KILN_SYSTEM_CUDA_LIBS"


def nvidia_package_dirs():
    """The folders of the `nvidia` namespace package (pip's CUDA libraries),
    found without importing it or PyTorch."""
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return []
    return list(spec.submodule_search_locations or []) if spec is not None else []


def find_cuda_libraries(roots, sonames=CUDA_SONAMES):
    """{soname: path} of the libraries found as ROOT/<package>/lib/<soname>
    (nvidia/cudnn/lib/libcudnn.so.9, nvidia/cu13/lib/libcublasLt.so.13),
    the first root that has one winning."""
    found = {}
    for root in roots:
        for name in sonames:
            if name not in found:
                hits = sorted(glob.glob(os.path.join(glob.escape(os.fspath(root)), "*", "lib", name)))
                if hits:
                    found[name] = hits[0]
    return found


def _loaded_path(soname):
    """The file of the library with this soname already in the process, else
    None (also when the C library cannot say)."""
    try:
        h = ctypes.CDLL(soname, mode=os.RTLD_NOLOAD)
    except (OSError, AttributeError):
        return None

    class LinkMap(Structure):
        _fields_ = [("l_addr", c_void_p), ("l_name", c_char_p)]

    try:
        dlinfo = ctypes.CDLL(None).dlinfo
        lm = POINTER(LinkMap)()
        if dlinfo(c_void_p(h._handle), 2, ctypes.byref(lm)) != 0 or not lm:  # RTLD_DI_LINKMAP
            return None
        name = lm.contents.l_name
        return os.fsdecode(name) if name else None
    except (AttributeError, OSError, ValueError):
        return None


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class CudaLibs:
    """What preload_cuda_libraries did. in_use: {soname: path} of the copies
    kiln binds to instead of what its own lookup would find: the pip
    packages' it preloaded, or, where the process held another copy already,
    that one; preloaded: those kiln loaded itself; failed: {soname: why} of
    packages that would not load; disabled: the opt-out variable is set."""

    def __init__(self):
        self.in_use, self.preloaded, self.failed, self.disabled = {}, {}, {}, False

    def dirs(self):
        """The folders of in_use, once each, in load order."""
        out = []
        for path in self.in_use.values():
            d = os.path.dirname(path)
            if d not in out:
                out.append(d)
        return out


def preload_cuda_libraries(needed, roots, state=None, environ=None, load=None, loaded_path=_loaded_path):
    """Loads (RTLD_GLOBAL) the pip-installed libraries among CUDA_SONAMES that
    the library to be loaded needs (needed: its DT_NEEDED names, None:
    unknown, all), unless $KILN_SYSTEM_CUDA_LIBS=1. A library the process
    holds already, from anywhere, is left as it is: loading a second copy
    would not change which one kiln binds to. A candidate that fails to load
    is reported (warning, state.failed) and skipped: kiln then falls back to
    the system's copy. Records into and returns `state` (a CudaLibs)."""
    state = state if state is not None else CudaLibs()
    environ = os.environ if environ is None else environ
    load = load or (lambda p: ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL))
    if environ.get(NO_PRELOAD_ENV, "") not in ("", "0"):
        state.disabled = True
        return state
    wanted = [s for s in CUDA_SONAMES if (needed is None or s in needed)
              and s not in state.in_use and s not in state.failed]
    if not wanted:
        return state
    found = find_cuda_libraries(roots, wanted)
    for soname in wanted:
        path = found.get(soname)
        if path is None:  # not pip-installed: libkiln finds the system's, as the CLI does
            continue
        have = loaded_path(soname)
        if have is not None and not _same_file(have, path):
            state.in_use[soname] = have
            continue
        try:
            load(path)
        except OSError as e:
            state.failed[soname] = f"{path}: {e}"
            warnings.warn(f"kiln: cannot preload {path} ({e}); kiln falls back to the system's {soname}, which "
                          f"may differ from PyTorch's (set {NO_PRELOAD_ENV}=1 to skip the preload)", RuntimeWarning,
                          stacklevel=2)
            continue
        state.in_use[soname] = state.preloaded[soname] = path
    return state


cuda_libs = CudaLibs()


def _load():
    tried = []
    for path, why in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(f"{path} ({why}): no such file")
            continue
        # before the library: its sonames then resolve to what is preloaded
        preload_cuda_libraries(elf_needed(path) if os.sep in path else None, nvidia_package_dirs(), cuda_libs)
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{path} ({why}): {e}")
    raise ImportError("kiln: cannot load libkiln.so; tried:\n  " + "\n  ".join(tried) + "\n" + _BUILD_HINT)


class Lib:
    """The loaded library: one attribute per kiln_* function (None for an
    optional one the library lacks)."""

    def __init__(self):
        self.cdll, self.path = _load()
        for name, (res, args) in _REQUIRED.items():
            try:
                fn = getattr(self.cdll, name)
            except AttributeError:
                raise ImportError(f"kiln: {self.path} has no {name}: it is older than this Python package; "
                                  + _BUILD_HINT) from None
            fn.restype, fn.argtypes = res, args
            setattr(self, name[5:], fn)
        for name, (res, args) in _OPTIONAL.items():
            fn = getattr(self.cdll, name, None)
            if fn is not None:
                fn.restype, fn.argtypes = res, args
            setattr(self, name[5:], fn)

    def has(self, name):
        return getattr(self, name, None) is not None

    def require(self, name):
        fn = getattr(self, name, None)
        if fn is None:
            raise KilnError(4, f"kiln_{name} is not in {self.path}: this build of libkiln predates it; rebuild "
                               "kiln from a current checkout", "KILN_ERR_UNSUPPORTED")
        return fn


class KilnError(RuntimeError):
    """An error reported by libkiln: `status` (the kiln_status number),
    `status_name` ("KILN_ERR_SHAPE") and `message` (kiln_last_error())."""

    def __init__(self, status, message, status_name=None):
        self.status = int(status)
        self.status_name = status_name or _status_name(self.status)
        self.message = message
        super().__init__(f"{self.status_name}: {message}" if message else self.status_name)


def _status_name(status):
    try:
        return lib.status_name(status).decode()
    except Exception:  # during interpreter shutdown, or before the library loaded
        return f"kiln_status {status}"


def last_error(status):
    """The KilnError for a failed call on this thread."""
    msg = lib.last_error()
    return KilnError(status, msg.decode("utf-8", "replace") if msg else "")


def check(status):
    if status != OK:
        raise last_error(status)


def take_string(ptr):
    """A char * kiln handed over (kiln_free'd here) as str."""
    if not ptr.value:
        return ""
    try:
        return ctypes.string_at(ptr.value).decode("utf-8", "replace")
    finally:
        lib.free(ptr.value)


def cstr(s):
    return None if s is None else os.fsencode(s) if isinstance(s, os.PathLike) else str(s).encode()


lib = Lib()

if sys.byteorder != "little":  # kiln's plans and tensors are little-endian
    raise ImportError("kiln: big-endian hosts are not supported")
