"""The GPU-tensor plumbing that can be checked without a GPU: what counts as
device memory, the __cuda_array_interface__ checks, the stream handed to
kiln, and DLPack producers in host memory."""
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
