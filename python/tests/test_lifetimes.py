"""What a kiln_tensor points at must outlive the C call that reads or writes
it: a struct's data field is a bare address, which keeps nothing alive. For
each place that fills structs ahead of a call (bench_overhead's prepared
structs, queued requests), every address is checked to lie in an array still
reachable from whatever holds the structs, after a garbage collection."""
import ctypes
import gc

import numpy as np
import pytest

from kiln import _lib, engine as _engine


def _reachable(root):
    """Objects reachable from root through closures and containers (not
    through modules, classes or engines)."""
    seen, todo, out = set(), [root], []
    while todo:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        out.append(o)
        if callable(o) and getattr(o, "__closure__", None):
            todo.extend(c.cell_contents for c in o.__closure__ if c.cell_contents is not None)
        elif isinstance(o, dict):
            todo.extend(o.values())
        elif isinstance(o, (list, tuple)):
            todo.extend(o)
    return out


def _dangling(root):
    """The addresses in kiln_tensor arrays reachable from root that no
    reachable numpy array holds."""
    objs = _reachable(root)
    spans = []
    for a in objs:
        if isinstance(a, np.ndarray):
            while isinstance(a.base, np.ndarray):  # a view keeps its base alive
                spans.append((a.ctypes.data, a.nbytes))
                a = a.base
            spans.append((a.ctypes.data, a.nbytes))
    bad = []
    for t in objs:
        if isinstance(t, ctypes.Array) and t._type_ is _lib.Tensor:
            for k in range(len(t)):
                p = t[k].data
                if p and not any(lo <= p < lo + max(n, 1) for lo, n in spans):
                    bad.append(hex(p))
    return bad


def test_bench_overhead_prepared_structs_keep_their_arrays(engine):
    """bench_overhead's bare-ctypes baseline prepares structs once per input;
    its output arrays used to be referenced only by those structs' addresses,
    freed when raw_ctypes_fn returned: kiln then wrote into freed memory
    ('corrupted double-linked list')."""
    bench = pytest.importorskip("bench_overhead")
    sets = bench.batch1_inputs(engine)
    fn = bench.raw_ctypes_fn(engine, sets)
    gc.collect()
    assert _dangling(fn) == []
    # and the arrays it writes hold the engine's results
    junk = [np.ones(1 << 16, np.float32) for _ in range(64)]  # reuse what was freed, if anything was
    del junk
    for v in (0, 5, 15):
        fn(sets[v])
        expect = engine(*sets[v])
        arrays = [o for o in _reachable(fn) if isinstance(o, np.ndarray) and o.shape == expect.shape
                  and o.dtype == expect.dtype]
        assert any(np.array_equal(a, expect) for a in arrays)


def test_bench_overhead_cli_env(monkeypatch):
    bench = pytest.importorskip("bench_overhead")
    st = _lib.CudaLibs()
    st.in_use = {"libcublasLt.so.13": "/p/cu13/lib/libcublasLt.so.13", "libcudnn.so.9": "/p/cudnn/lib/libcudnn.so.9"}
    monkeypatch.setattr(bench.kiln, "_cuda_libs", st)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/usr/local/cuda/lib64")
    assert bench.cli_env()["LD_LIBRARY_PATH"] == "/p/cu13/lib:/p/cudnn/lib:/usr/local/cuda/lib64"
    monkeypatch.delenv("LD_LIBRARY_PATH")
    assert bench.cli_env()["LD_LIBRARY_PATH"] == "/p/cu13/lib:/p/cudnn/lib"
    monkeypatch.setattr(bench.kiln, "_cuda_libs", _lib.CudaLibs())
    assert "LD_LIBRARY_PATH" not in bench.cli_env()


def test_queued_requests_keep_their_inputs(engine, images):
    """Inputs nobody else holds, queued behind each other on one worker: the
    pending requests hold them until kiln is done, and the results are right.
    (Their outputs are kiln's to allocate: data stays NULL until the run.)"""
    xs = [images(1, seed=500 + i) for i in range(16)]
    expect = [engine(x) for x in xs]
    with engine.scheduler(workers=1) as s:
        futures = [s.infer_async({"images": x.copy()}) for x in xs]  # the copies die here
        gc.collect()
        for req in list(_engine._pending.values()):
            assert _dangling((req.arrays, req.ins)) == []
        junk = [np.full((1, 3, 64, 64), 7, np.float32) for _ in range(64)]  # reuse what was freed, if anything
        for f, e in zip(futures, expect):
            assert np.array_equal(f.result(60)["probs"], e)
        del junk


def test_failed_output_wrap_frees_the_rest(monkeypatch):
    """A completion whose output wrapping fails part way fails the future
    and frees the kiln-allocated outputs no array took (no leak)."""
    import types
    from concurrent.futures import Future

    from kiln import engine as eng

    freed = []
    monkeypatch.setattr(eng, "lib", types.SimpleNamespace(free=lambda p: freed.append(p)))
    calls = []

    def wrap(t, dtype):
        calls.append(t.data)
        if len(calls) == 2:
            raise MemoryError("no memory for the second output")
        t.data = None  # taken, as _wrap_kiln_output does
        return np.zeros(1, dtype)

    monkeypatch.setattr(eng, "_wrap_kiln_output", wrap)
    outs = (eng.Tensor * 3)()
    for i in range(3):
        outs[i].data = 0x1000 * (i + 1)
    req = types.SimpleNamespace(outs=outs, out_np=[np.float32] * 3, out_names=["a", "b", "c"], torch_cpu=False,
                                future=Future())
    eng._pending[12345] = req
    eng._on_done(0, 3, None, 12345)
    assert isinstance(req.future.exception(timeout=1), MemoryError)
    # the first was taken by its array; the second and third are freed once each
    assert sorted(freed) == [0x2000, 0x3000]
    assert all(not outs[i].data for i in range(3))
