"""Fixtures of the kiln Python tests (ref backend unless marked gpu).

The package under test is this checkout's python/kiln (put first on
sys.path); the library is $KILN_LIBRARY or the repository's build/libkiln.so,
and the CLI ($KILN_CLI, else the `kiln` next to the library) is the C side
the results are compared with.
"""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "python"))

import kiln  # noqa: E402

TINYNET = os.path.join(REPO, "models", "tinynet.onnx")


@pytest.fixture(autouse=True)
def _no_remote_cache(monkeypatch):
    """No test talks to a remote engine store, whatever the environment says."""
    monkeypatch.delenv("KILN_REMOTE_URL", raising=False)


@pytest.fixture(scope="session")
def tinynet_path():
    return TINYNET


@pytest.fixture(scope="session")
def engine():
    """tinynet on the ref backend, shared by the tests that only run it."""
    e, source = kiln.build(TINYNET, backend="ref", cache=False)
    assert source == "built"
    yield e
    e.close()


@pytest.fixture(scope="session")
def kiln_cli():
    path = os.environ.get("KILN_CLI") or os.path.join(os.path.dirname(kiln.library_path), "kiln")
    if not os.path.exists(path):
        pytest.skip(f"no kiln CLI at {path} (set $KILN_CLI)")
    return path


def _images(batch=1, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, 3, 64, 64)).astype(np.float32)


@pytest.fixture(scope="session")
def images():
    """images(batch=1, seed=0): a seeded random tinynet input."""
    return _images


@pytest.fixture(scope="session")
def two_io_path(tmp_path_factory):
    """A model with two inputs (f32 x, i64 k, both [batch,4]) and two outputs:
    y = x + float(k) (f32), z = k * k (i64)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto as T, helper
    nodes = [helper.make_node("Cast", ["k"], ["kf"], name="cast", to=T.FLOAT),
             helper.make_node("Add", ["x", "kf"], ["y"], name="add"),
             helper.make_node("Mul", ["k", "k"], ["z"], name="mul")]
    g = helper.make_graph(nodes, "two_io",
                          [helper.make_tensor_value_info("x", T.FLOAT, ["batch", 4]),
                           helper.make_tensor_value_info("k", T.INT64, ["batch", 4])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["batch", 4]),
                           helper.make_tensor_value_info("z", T.INT64, ["batch", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-python-tests")
    m.ir_version = 8
    path = tmp_path_factory.mktemp("models") / "two_io.onnx"
    onnx.save(m, str(path))
    return str(path)


@pytest.fixture(scope="session")
def fixed_batch_path(tmp_path_factory):
    """Relu over a fixed [2,4] input (no symbolic dim 0: no batching)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto as T, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "fixed",
                          [helper.make_tensor_value_info("x", T.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [2, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-python-tests")
    m.ir_version = 8
    path = tmp_path_factory.mktemp("models") / "fixed.onnx"
    onnx.save(m, str(path))
    return str(path)
