"""The GPU-tensor plumbing that can be checked without a GPU: what counts as
device memory, the __cuda_array_interface__ checks, the stream handed to
kiln, and DLPack producers in host memory."""
import ctypes

import numpy as np
import pytest

from kiln import _device


class FakeCAI:
    def __init__(self, shape=(2, 3), typestr="<f4", strides=None, stream=None, mask=None):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (0x7f0000001000, False),
                                         "version": 3, "strides": strides, "stream": stream, "mask": mask}


class HostDLPack:
    """Only the DLPack protocol, over a numpy array (device: CPU)."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kw):
        return self.a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def test_stream_for_kiln():
    # NULL would mean "the context's own stream" to kiln_context_enqueue;
    # PyTorch's default stream (0) and "no stream" are the legacy default
    assert _device.kiln_stream(0) == 1
    assert _device.kiln_stream(None) == 1
    assert _device.kiln_stream(2) == 2
    assert _device.kiln_stream(0x55aa00) == 0x55aa00


def test_what_is_device_memory():
    assert _device.is_device_object(FakeCAI())
    assert not _device.is_device_object(np.zeros(3))
    assert not _device.is_device_object(HostDLPack(np.zeros(3)))
    assert not _device.is_device_object([1, 2])


def test_cuda_array_interface_checks():
    t = _device.from_object("x", FakeCAI(shape=(2, 3), stream=7))
    assert (t.shape, t.ptr, t.stream, t.dtype_desc) == ((2, 3), 0x7f0000001000, 7, np.dtype(np.float32))
    assert not t.is_torch
    # C-contiguous strides given explicitly are fine; size-1 dims are free
    _device.from_object("x", FakeCAI(shape=(2, 1, 3), strides=(12, 999, 4)))
    with pytest.raises(ValueError, match="input 'x' is not C-contiguous"):
        _device.from_object("x", FakeCAI(shape=(2, 3), strides=(4, 8)))
    with pytest.raises(ValueError, match="'m' is a masked array"):
        _device.from_object("m", FakeCAI(mask=object()))


def test_host_dlpack_producer_runs_on_ref(engine, images):
    x = images(1, seed=11)
    assert np.array_equal(engine(HostDLPack(x)), engine(x))


def test_device_runner_plumbing_with_a_fake_library(tinynet_path, monkeypatch):
    """The device path down to kiln_context_enqueue, with the library's
    context calls replaced: which stream kiln is given, which context each
    stream gets, what the kiln_tensor structs hold, and that close() frees
    every context. (The real thing runs in test_gpu.py on a GPU.)"""
    import kiln
    from kiln import _lib

    lib = _lib.lib
    created, destroyed, enqueued = [], [], []

    def context_create(engine, out):
        out._obj.value = 0x1000 + len(created)
        created.append(out._obj.value)
        return 0

    def context_output_shapes(ctx, n_in, ins, n_out, outs):
        outs[0].rank, outs[0].dims[0], outs[0].dims[1] = 2, ins[0].dims[0], 10
        return 0

    def context_enqueue(ctx, n_in, ins, n_out, outs, stream):
        t, o = ins[0], outs[0]
        enqueued.append(dict(ctx=ctx, stream=stream.value, dims=tuple(t.dims[:t.rank]), data=t.data,
                             dtype=t.dtype, name=ctypes.string_at(t.name).decode(), out=o.data,
                             out_dims=tuple(o.dims[:o.rank])))
        return 0

    monkeypatch.setattr(lib, "context_create", context_create)
    monkeypatch.setattr(lib, "context_destroy", destroyed.append)
    monkeypatch.setattr(lib, "context_output_shapes", context_output_shapes)
    monkeypatch.setattr(lib, "context_enqueue", context_enqueue)
    monkeypatch.setattr(_device, "torch_module", lambda: None)

    e, _ = kiln.build(tinynet_path, backend="ref", cache=False)
    e.backend, e.device = "cuda", 0  # as a cuda engine on GPU 0 would be

    def x(stream, batch=1):
        return FakeCAI(shape=(batch, 3, 64, 64), stream=stream)

    def out(batch=1):
        return FakeCAI(shape=(batch, 10))

    res = e.infer(x(7), out={"probs": out()})
    assert isinstance(res["probs"], FakeCAI)
    e.infer(x(7, batch=2), out=[out(2)])
    e.infer(x(None), out=[out()])
    e.infer(x(7), out=[out()])
    streams = [c["stream"] for c in enqueued]
    assert streams == [7, 7, 1, 7]  # "no stream" -> cudaStreamLegacy, never NULL (kiln's own stream)
    ctxs = [c["ctx"] for c in enqueued]
    assert ctxs[0] == ctxs[1] == ctxs[3] != ctxs[2]  # one context per stream, reused
    assert enqueued[1]["dims"] == (2, 3, 64, 64) and enqueued[1]["out_dims"] == (2, 10)
    assert {c["name"] for c in enqueued} == {"images"} and {c["dtype"] for c in enqueued} == {1}
    assert enqueued[0]["data"] == 0x7f0000001000 == enqueued[0]["out"]

    with pytest.raises(TypeError, match="'images' must be f32"):
        e(FakeCAI(shape=(1, 3, 64, 64), typestr="<f8"))
    with pytest.raises(ValueError, match="'images' must be"):
        e(FakeCAI(shape=(1, 3, 32, 64)))
    with pytest.raises(TypeError, match="allocating GPU outputs needs PyTorch"):
        e(x(7))  # no out= and no torch to allocate with
    e.close()
    assert sorted(destroyed) == sorted(created) and len(created) == 2


def test_host_and_gpu_inputs_mixed(two_io_path):
    import kiln
    e, _ = kiln.build(two_io_path, backend="ref", cache=False)
    with e:
        gpu_x = FakeCAI(shape=(1, 4))
        k = np.zeros((1, 4), np.int64)
        with pytest.raises(ValueError, match="input 'x' is on the GPU but the others are in host memory"):
            e(gpu_x, k)
        with pytest.raises(ValueError, match="input 'x' is on the GPU but the others"):
            e.infer_async({"x": gpu_x, "k": k})
