"""Engine metadata and synchronous inference on numpy arrays (ref backend):
results against the kiln CLI on the same plan (bit-exact) and onnxruntime,
every way of passing inputs and outputs, and the errors for bad inputs."""
import os
import subprocess
import sys

import numpy as np
import pytest

import kiln


def test_metadata(engine):
    assert engine.backend == "ref"
    (i,), (o,) = engine.inputs, engine.outputs
    assert (i.name, i.dtype, i.shape) == ("images", "f32", ("batch", 3, 64, 64))
    assert (o.name, o.dtype, o.shape) == ("probs", "f32", ("batch", 10))
    assert i.numpy_dtype == np.float32
    assert engine.input_names == ["images"] and engine.output_names == ["probs"]
    ident = engine.identity
    assert (ident.model, ident.precision, ident.arch, ident.kiln_version) == ("tinynet", "fp32", "cpu", kiln.version())
    assert len(ident.version) == 8 and ident.options_hash == ""
    assert ident.file_name == f"tinynet_{ident.version}_fp32_cpu_{kiln.version()}.plan"
    assert "images: f32 [batch,3,64,64]" in repr(engine)


def test_profile_when_reported(engine):
    if engine.inputs[0].profile is None:
        pytest.skip("this libkiln has no kiln_engine_input_profile yet")
    lo, opt, hi = engine.profile["images"]
    assert lo[1:] == opt[1:] == hi[1:] == (3, 64, 64)
    assert lo[0] == 1 and hi[0] >= 1


def test_same_as_cli_on_the_same_plan(engine, kiln_cli, images, tmp_path):
    plan = tmp_path / "tinynet.plan"
    engine.save(plan)
    x = images(2, seed=3)
    np.save(tmp_path / "x.npy", x)
    subprocess.run([kiln_cli, "run", str(plan), "--input", f"images={tmp_path / 'x.npy'}", "--output-dir",
                    str(tmp_path / "out"), "--quiet"], check=True, capture_output=True)
    expect = np.load(tmp_path / "out" / "probs.npy")
    got = engine(x)
    assert got.dtype == expect.dtype and got.shape == expect.shape == (2, 10)
    assert np.array_equal(got, expect)


def test_close_to_onnxruntime(engine, tinynet_path, images):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(tinynet_path, providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = images(batch, seed=batch)
        expect = sess.run(None, {"images": x})[0]
        np.testing.assert_allclose(engine(x), expect, rtol=1e-4, atol=1e-5)


def test_call_forms_agree(engine, images):
    x = images(1, seed=7)
    a = engine(x)
    assert isinstance(a, np.ndarray) and a.shape == (1, 10)
    for res in (engine(images=x), engine.infer(x)["probs"], engine.infer({"images": x})["probs"],
                engine.infer(images=x)["probs"], engine.infer([x])["probs"]):
        assert np.array_equal(res, a)


def test_batch_sizes_and_repeats(engine, images):
    """Outputs of one input shape are preallocated after the first call: other
    shapes in between must not confuse that."""
    xs = {b: images(b, seed=b) for b in (1, 4, 2)}
    first = {b: engine(x) for b, x in xs.items()}
    for _ in range(3):
        for b, x in xs.items():
            y = engine(x)
            assert y.shape == (b, 10)
            assert np.array_equal(y, first[b])
    # rows are independent: row i of a batch is the batch-1 result of row i
    x4 = xs[4]
    for r in range(4):
        np.testing.assert_allclose(first[4][r], engine(x4[r:r + 1])[0], rtol=1e-6, atol=1e-7)


def test_results_are_fresh_arrays(engine, images):
    x = images(1, seed=1)
    a, b = engine(x), engine(x)
    assert a is not b and not np.shares_memory(a, b)
    a[:] = 0  # writable, and the next result is unaffected
    assert np.array_equal(engine(x), b)


def test_read_only_and_non_owning_inputs(engine, images):
    x = images(2, seed=5)
    expect = engine(x)
    ro = x.copy()
    ro.flags.writeable = False
    assert np.array_equal(engine(ro), expect)
    big = np.concatenate([x, x])  # a contiguous view into a larger array
    assert np.array_equal(engine(big[2:]), expect)


def test_out_buffers(engine, images):
    x = images(2, seed=9)
    expect = engine(x)
    buf = np.full((2, 10), np.nan, np.float32)
    res = engine.infer(x, out={"probs": buf})
    assert res["probs"] is buf and np.array_equal(buf, expect)
    # a larger buffer: the result is its prefix, as a view of it
    big = np.zeros(64, np.float32)
    res = engine.infer(x, out=[big])
    assert res["probs"].shape == (2, 10) and np.shares_memory(res["probs"], big)
    assert np.array_equal(res["probs"], expect)
    with pytest.raises(kiln.KilnError) as ei:
        engine.infer(x, out=[np.zeros(5, np.float32)])
    assert ei.value.status_name == "KILN_ERR_SHAPE" and "probs" in ei.value.message
    with pytest.raises(TypeError, match="probs"):
        engine.infer(x, out=[np.zeros((2, 10), np.float64)])
    with pytest.raises(ValueError, match="unknown output 'nope'"):
        engine.infer(x, out={"nope": buf})


def test_two_inputs_two_outputs(two_io_path):
    e, _ = kiln.build(two_io_path, backend="ref", cache=False)
    with e:
        assert [t.dtype for t in e.inputs] == ["f32", "i64"] and [t.dtype for t in e.outputs] == ["f32", "i64"]
        x = np.arange(12, dtype=np.float32).reshape(3, 4) / 4
        k = np.arange(12, dtype=np.int64).reshape(3, 4) - 5
        y, z = e(x, k)
        assert np.array_equal(y, x + k.astype(np.float32)) and np.array_equal(z, k * k)
        assert z.dtype == np.int64
        res = e.infer({"k": k, "x": x})  # any order by name
        assert list(res) == ["y", "z"] and np.array_equal(res["z"], z)
        y2, z2 = e(k=k, x=x)
        assert np.array_equal(y2, y)
        with pytest.raises(ValueError, match="dim 'batch' is 3 in input 'x' but 2 in input 'k'"):
            e(x, k[:2])
        with pytest.raises(ValueError, match="input 'k' is missing"):
            e.infer({"x": x})
        with pytest.raises(TypeError, match="input 'k' must be i64"):
            e(x, k.astype(np.int32))
        with pytest.raises(ValueError, match="takes 2 inputs"):
            e(x)


# ---------------------------------------------------------------- bad inputs

def test_wrong_dtype_names_tensor_and_suggests_astype(engine):
    with pytest.raises(TypeError) as ei:
        engine(np.zeros((1, 3, 64, 64)))  # float64
    msg = str(ei.value)
    assert "'images'" in msg and "f32" in msg and "float64" in msg and "astype(np.float32)" in msg


def test_wrong_shape(engine):
    with pytest.raises(ValueError, match=r"input 'images' must be \[batch,3,64,64\]: dim 2 must be 64"):
        engine(np.zeros((1, 3, 32, 64), np.float32))
    with pytest.raises(ValueError, match="input 'images' must have rank 4"):
        engine(np.zeros((3, 64, 64), np.float32))


def test_outside_the_profile(tinynet_path, images):
    e, _ = kiln.build(tinynet_path, backend="ref", cache=False)
    with e:
        info = e.inputs[0]
        if info.profile is None:
            pytest.skip("this libkiln has no kiln_engine_input_profile yet")
        # as a cuda engine built for at most 4 rows would report it
        object.__setattr__(info, "profile", ((1, 3, 64, 64), (1, 3, 64, 64), (4, 3, 64, 64)))
        with pytest.raises(ValueError, match=r"input 'images': dim 0 \('batch'\) is 5, outside the engine's "
                                             r"profile 1..4"):
            e(images(5))
        assert e(images(4)).shape == (4, 10)


def test_non_contiguous(engine):
    x = np.zeros((1, 3, 64, 128), np.float32)[..., ::2]
    with pytest.raises(ValueError, match="input 'images' is not C-contiguous.*ascontiguousarray"):
        engine(x)
    with pytest.raises(ValueError, match="not C-contiguous"):
        engine(np.zeros((64, 64, 3, 1), np.float32).T)


def test_wrong_names_and_types(engine):
    x = np.zeros((1, 3, 64, 64), np.float32)
    with pytest.raises(ValueError, match="unknown input 'imgs': the engine's inputs are 'images'"):
        engine.infer({"imgs": x})
    with pytest.raises(ValueError, match="takes 1 input"):
        engine(x, x)
    with pytest.raises(TypeError, match="input 'images' is a list"):
        engine(x.tolist())
    with pytest.raises(TypeError, match="by position or by name"):
        engine(x, images=x)


def test_gpu_array_on_ref_engine_is_wrong_device(engine):
    class FakeCudaArray:  # what CuPy/Numba arrays look like to kiln
        __cuda_array_interface__ = {"shape": (1, 3, 64, 64), "typestr": "<f4", "data": (0x7f0000000000, False),
                                    "version": 3, "strides": None, "stream": None}
    with pytest.raises(ValueError, match="'images' is on the GPU, but this engine runs on the ref backend"):
        engine(FakeCudaArray())


def test_torch_cpu_tensors(engine, images):
    torch = pytest.importorskip("torch")
    x = images(2, seed=4)
    y = engine(torch.from_numpy(x))
    assert isinstance(y, torch.Tensor) and y.device.type == "cpu"
    assert np.array_equal(y.numpy(), engine(x))
    with pytest.raises(TypeError, match="'images' must be f32"):
        engine(torch.zeros((1, 3, 64, 64), dtype=torch.float64))


# ---------------------------------------------------------------- kiln errors

def test_kiln_error_carries_status_and_message(tmp_path):
    with pytest.raises(kiln.KilnError) as ei:
        kiln.build(str(tmp_path / "missing.onnx"), backend="ref", cache=False)
    e = ei.value
    assert e.status_name == "KILN_ERR_NOT_FOUND" and e.status == 8
    assert "missing.onnx" in e.message and str(e).startswith("KILN_ERR_NOT_FOUND: ")


def test_kiln_error_from_build_options(tinynet_path):
    with pytest.raises(kiln.KilnError, match="KILN_ERR_UNSUPPORTED: .*fp16"):
        kiln.build(tinynet_path, backend="ref", precision="fp16", cache=False)
    with pytest.raises(ValueError, match="unknown precision 'fp12'"):
        kiln.build(tinynet_path, backend="ref", precision="fp12")
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        kiln.build(tinynet_path, backend="tpu")


def test_kiln_error_not_a_plan(tmp_path):
    p = tmp_path / "junk.plan"
    p.write_bytes(b"not a plan at all")
    with pytest.raises(kiln.KilnError) as ei:
        kiln.Engine.load(p)
    assert ei.value.status_name == "KILN_ERR_FORMAT" and "junk.plan" in ei.value.message


def test_closed_engine(tinynet_path, images):
    e, _ = kiln.build(tinynet_path, backend="ref", cache=False)
    e.close()
    e.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        e(images())


def test_inspect(tinynet_path):
    r = kiln.inspect(tinynet_path, shapes={"images": (1, 3, 64, 64)})
    assert r["inputs"][0]["name"] == "images" and r["unsupported"] == []


def test_library_lookup_error_is_clear(tmp_path):
    env = dict(os.environ, KILN_LIBRARY=str(tmp_path / "nowhere" / "libkiln.so"))
    pkg = os.path.dirname(os.path.dirname(kiln.__file__))
    r = subprocess.run([sys.executable, "-c", "import kiln"], env=dict(env, PYTHONPATH=pkg), capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "cannot load libkiln.so" in r.stderr and "$KILN_LIBRARY" in r.stderr and "ninja -C build" in r.stderr
