"""kiln.empty_pinned: numpy arrays in kiln_host_alloc memory (page-locked
with a GPU, aligned host memory without one) work as inputs and outputs,
and their memory goes back to kiln when the last view dies."""
import gc

import numpy as np
import pytest

import kiln
from kiln import _lib


def test_shape_dtype_and_alignment():
    a = kiln.empty_pinned((2, 3, 64, 64))
    assert a.shape == (2, 3, 64, 64) and a.dtype == np.float32
    assert a.flags.c_contiguous and a.flags.writeable
    assert a.ctypes.data % 64 == 0
    a[...] = 1.5
    assert float(a.sum()) == 1.5 * a.size
    b = kiln.empty_pinned(7, np.int64)
    assert b.shape == (7,) and b.dtype == np.int64
    assert kiln.empty_pinned((0, 3)).size == 0
    with pytest.raises(ValueError, match="negative"):
        kiln.empty_pinned((2, -1))


def test_freed_when_the_last_view_dies():
    a = kiln.empty_pinned((1024,))
    ptr = a.ctypes.data
    view = a[10:20]
    del a
    gc.collect()
    # a view still holds the buffer: freeing it by hand would be a double free later
    assert view.base is not None
    del view
    gc.collect()
    # freed: kiln no longer knows the pointer
    assert _lib.lib.host_free(ptr) == _lib.ERR_INVALID_ARGUMENT


def test_engine_on_pinned_arrays(engine):
    x = np.random.default_rng(3).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    want = engine(x)
    xp = kiln.empty_pinned(x.shape)
    xp[...] = x
    np.testing.assert_array_equal(engine(xp), want)
    out = kiln.empty_pinned(want.shape, want.dtype)
    engine.infer({engine.inputs[0].name: xp}, out=[out])
    np.testing.assert_array_equal(out, want)
