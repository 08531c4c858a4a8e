"""kiln.build (kiln_build_or_load) and the engine cache, plan save/load."""

import numpy as np
import pytest

import kiln
from kiln import engine as _engine


def test_cache_twice_then_local_cache(tinynet_path, tmp_path, images):
    cache = tmp_path / "cache"
    e1, s1 = kiln.build(tinynet_path, backend="ref", cache=True, cache_dir=str(cache))
    e2, s2 = kiln.build(tinynet_path, backend="ref", cache=True, cache_dir=str(cache))
    assert (s1, s2) == ("built", "local_cache")
    assert e1.source == "built" and e2.source == "local_cache"
    plan = cache / e1.identity.file_name
    assert plan.exists()
    assert e2.identity == e1.identity
    x = images(2, seed=1)
    assert np.array_equal(e1(x), e2(x))
    e3, s3 = kiln.build(tinynet_path, backend="ref", cache=True, force_rebuild=True, cache_dir=str(cache))
    assert s3 == "built"
    for e in (e1, e2, e3):
        e.close()


def test_cache_false_writes_nothing(tinynet_path, tmp_path):
    cache = tmp_path / "cache"
    e, source = kiln.build(tinynet_path, backend="ref", cache=False, cache_dir=str(cache))
    e.close()
    assert source == "built"
    assert not cache.exists() or not any(p.suffix == ".plan" for p in cache.iterdir())


def test_cache_dir_from_environment(tinynet_path, tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "env-cache"))
    assert kiln.cache_dir() == str(tmp_path / "env-cache")
    _, s1 = kiln.build(tinynet_path, backend="ref")
    _, s2 = kiln.build(tinynet_path, backend="ref")
    assert (s1, s2) == ("built", "local_cache")
    ident = kiln.model_identity(tinynet_path, backend="ref")
    assert (tmp_path / "env-cache" / ident.file_name).exists()


def test_save_load_round_trip(engine, tmp_path, images):
    path = tmp_path / "tiny.plan"
    engine.save(path)
    loaded = kiln.Engine.load(path)
    assert loaded.source == "plan" and loaded.backend == "ref"
    assert loaded.inputs == engine.inputs and loaded.outputs == engine.outputs
    assert loaded.identity == engine.identity
    x = images(3, seed=2)
    assert np.array_equal(loaded(x), engine(x))
    loaded.close()
    again = kiln.load(str(path))  # str paths too
    assert np.array_equal(again(x), engine(x))
    again.close()


def test_fixed_shapes(tinynet_path, tmp_path, images):
    e, _ = kiln.build(tinynet_path, backend="ref", shapes={"images": (2, 3, 64, 64)}, cache_dir=str(tmp_path))
    with e:
        assert e.inputs[0].shape == (2, 3, 64, 64) and e.outputs[0].shape == (2, 10)
        assert e.identity.options_hash != ""
        with pytest.raises(ValueError, match="dim 0 must be 2"):
            e(images(1))
        assert e(images(2)).shape == (2, 10)


def test_build_errors_name_the_input(tinynet_path):
    with pytest.raises(kiln.KilnError, match="no input named 'foo'"):
        kiln.build(tinynet_path, backend="ref", shapes={"foo": (1, 3, 64, 64)}, cache=False)
    with pytest.raises(kiln.KilnError, match="'images'.*65"):
        kiln.build(tinynet_path, backend="ref", shapes={"images": (1, 3, 65, 64)}, cache=False)
    with pytest.raises(TypeError, match="shapes must be a dict"):
        kiln.build(tinynet_path, backend="ref", shapes=[1, 3, 64, 64], cache=False)


def test_shapes_and_profile_strings():
    assert _engine._shapes_text({"images": (1, 3, 224, 224), "mask": [1, 224]}, "shapes") == \
        "images:1x3x224x224,mask:1x224"
    assert _engine._shapes_text({"scalar": ()}, "shapes") == "scalar:"
    prof = dict(min={"images": (1, 3, 640, 640)}, opt={"images": (8, 3, 640, 640)}, max={"images": (32, 3, 640, 640)})
    assert _engine._profile_text(prof) == \
        "min:images:1x3x640x640;opt:images:8x3x640x640;max:images:32x3x640x640"
    assert _engine._profile_text(dict(max={"images": (16, 3, 64, 64)})) == "max:images:16x3x64x64"
    assert _engine._profile_text("min:a:1;max:a:4") == "min:a:1;max:a:4"
    with pytest.raises(ValueError, match="unknown key 'mid'"):
        _engine._profile_text(dict(mid={"images": (1, 3, 64, 64)}))
    with pytest.raises(ValueError, match="negative"):
        _engine._shapes_text({"images": (-1, 3)}, "shapes")


def test_profile_reaches_the_library(tinynet_path, tmp_path):
    """The ref backend ignores a profile; the build must still accept it."""
    prof = dict(min={"images": (1, 3, 64, 64)}, opt={"images": (4, 3, 64, 64)}, max={"images": (8, 3, 64, 64)})
    e, source = kiln.build(tinynet_path, backend="ref", profile=prof, cache=False)
    assert source == "built"
    e.close()


def test_precision_names(tinynet_path):
    e, _ = kiln.build(tinynet_path, backend="ref", precision="fp32", cache=False)
    assert e.identity.precision == "fp32"
    e.close()
    assert set(_engine._lib.PRECISIONS) >= {"fp32", "tf32", "fp16", "bf16", "int8", "fp8"}


def test_pool_limits(engine, images):
    engine.set_pool_limits(1, 4)
    assert engine(images(1)).shape == (1, 10)
    with pytest.raises(kiln.KilnError, match="KILN_ERR_INVALID_ARGUMENT"):
        engine.set_pool_limits(3, 2)
    engine.set_pool_limits(0, 16)
