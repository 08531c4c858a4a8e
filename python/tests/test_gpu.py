"""The device path on the GPU machine: PyTorch CUDA tensors (and
__cuda_array_interface__ / DLPack objects) in, torch tensors on the same
device out, through kiln_context_enqueue on the caller's stream. Skipped,
with the reason, where PyTorch, a CUDA device or kiln's cuda backend is
missing."""
import threading

import numpy as np
import pytest

import kiln

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the GPU tests need it")
pytestmark = pytest.mark.gpu
if not torch.cuda.is_available():
    pytest.skip("no CUDA device visible to PyTorch", allow_module_level=True)


@pytest.fixture(scope="module")
def cuda_engine(tinynet_path):
    try:
        e, _ = kiln.build(tinynet_path, backend="cuda", precision="fp32", cache=False)
    except kiln.KilnError as err:
        pytest.skip(f"this libkiln cannot build for the cuda backend: {err}")
    yield e
    e.close()


@pytest.fixture(scope="module")
def ref_engine(tinynet_path):
    e, _ = kiln.build(tinynet_path, backend="ref", cache=False)
    yield e
    e.close()


def _x(batch=1, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, 3, 64, 64)).astype(np.float32)


def _close(a, b):
    a = a.cpu().numpy() if isinstance(a, torch.Tensor) else a
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_cuda_tensor_in_cuda_tensor_out(cuda_engine, ref_engine):
    x = _x(2, seed=1)
    xt = torch.from_numpy(x).cuda()
    y = cuda_engine(xt)
    assert isinstance(y, torch.Tensor) and y.is_cuda and y.device == xt.device
    assert y.dtype == torch.float32 and tuple(y.shape) == (2, 10)
    _close(y, ref_engine(x))
    res = cuda_engine.infer({"images": xt})
    assert list(res) == ["probs"] and res["probs"].is_cuda


def test_runs_on_the_callers_stream(cuda_engine, ref_engine):
    """Input produced, engine run and output consumed on a side stream,
    synchronized only at the end: correct only if kiln ran on that stream."""
    x = _x(4, seed=2)
    s = torch.cuda.Stream()
    host = torch.from_numpy(x).pin_memory()
    with torch.cuda.stream(s):
        xt = host.to("cuda", non_blocking=True) * 1.0
        y = cuda_engine(xt)
        y2 = y * 2
    s.synchronize()
    _close(y2 / 2, ref_engine(x))


def test_numpy_on_cuda_engine(cuda_engine, ref_engine):
    x = _x(1, seed=3)
    y = cuda_engine(x)
    assert isinstance(y, np.ndarray)
    _close(y, ref_engine(x))


def test_device_input_errors(cuda_engine):
    with pytest.raises(TypeError, match="input 'images' must be f32.*float64"):
        cuda_engine(torch.zeros((1, 3, 64, 64), dtype=torch.float64, device="cuda"))
    with pytest.raises(ValueError, match="input 'images' is not contiguous"):
        cuda_engine(torch.zeros((1, 3, 64, 128), device="cuda")[..., ::2])
    with pytest.raises(ValueError, match="input 'images' must be"):
        cuda_engine(torch.zeros((1, 3, 32, 64), device="cuda"))
    prof = cuda_engine.inputs[0].profile
    if prof is not None and prof[2][0] < 4096:  # the default profile: up to 32 rows
        with pytest.raises(ValueError, match="outside the engine's profile"):
            cuda_engine(torch.zeros((prof[2][0] + 1, 3, 64, 64), device="cuda"))


def test_cuda_array_interface_object(cuda_engine, ref_engine):
    x = _x(1, seed=4)
    xt = torch.from_numpy(x).cuda()

    class CAI:  # what CuPy or Numba hand over
        def __init__(self, t):
            self.t = t
            self.__cuda_array_interface__ = t.__cuda_array_interface__

    y = cuda_engine(CAI(xt))
    assert isinstance(y, torch.Tensor) and y.is_cuda
    _close(y, ref_engine(x))


def test_dlpack_object(cuda_engine, ref_engine):
    x = _x(1, seed=5)
    xt = torch.from_numpy(x).cuda()

    class DL:
        def __dlpack__(self, **kw):
            return xt.__dlpack__(**kw)

        def __dlpack_device__(self):
            return xt.__dlpack_device__()

    _close(cuda_engine(DL()), ref_engine(x))


def test_out_buffers_on_device(cuda_engine, ref_engine):
    x = _x(2, seed=6)
    out = torch.full((2, 10), float("nan"), device="cuda")
    res = cuda_engine.infer(torch.from_numpy(x).cuda(), out={"probs": out})
    assert res["probs"].data_ptr() == out.data_ptr()
    _close(out, ref_engine(x))


def test_threads_with_their_own_streams(cuda_engine):
    xs = [torch.from_numpy(_x(1 + i % 2, seed=50 + i)).cuda() for i in range(6)]
    expect = [cuda_engine(x).clone() for x in xs]
    torch.cuda.synchronize()
    errors = []

    def client(t):
        try:
            with torch.cuda.stream(torch.cuda.Stream()):
                for i in range(10):
                    v = (t + i) % len(xs)
                    y = cuda_engine(xs[v])
                    torch.cuda.current_stream().synchronize()
                    if not torch.allclose(y, expect[v], rtol=1e-5, atol=1e-6):
                        errors.append((t, i))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors


def test_infer_async_with_device_tensors(cuda_engine, ref_engine):
    x = _x(1, seed=7)
    f = cuda_engine.infer_async({"images": torch.from_numpy(x).cuda()})
    y = f.result(60)["probs"]
    assert y.is_cuda
    _close(y, ref_engine(x))


def test_infer_async_host_on_cuda_engine(cuda_engine, ref_engine):
    xs = [_x(1, seed=80 + i) for i in range(8)]
    with cuda_engine.scheduler(workers=2) as s:
        futures = [s.infer_async(x) for x in xs]
        for f, x in zip(futures, xs):
            _close(f.result(60)["probs"], ref_engine(x))


def test_graphs_off(tinynet_path, ref_engine):
    try:
        e, _ = kiln.build(tinynet_path, backend="cuda", precision="fp32", cache=False)
    except kiln.KilnError as err:
        pytest.skip(f"no cuda backend: {err}")
    with e:
        e.set_graphs(False)
        x = _x(1, seed=9)
        _close(e(torch.from_numpy(x).cuda()), ref_engine(x))


def test_default_precision_is_fp16(tinynet_path, ref_engine):
    try:
        e, _ = kiln.build(tinynet_path, backend="cuda", cache=False)
    except kiln.KilnError as err:
        pytest.skip(f"no cuda backend: {err}")
    with e:
        assert e.identity.precision == "fp16"
        x = _x(1, seed=10)
        dt = e.inputs[0].torch_dtype
        y = e(torch.from_numpy(x).cuda().to(dt))
        np.testing.assert_allclose(y.float().cpu().numpy(), ref_engine(x), rtol=5e-2, atol=5e-3)
