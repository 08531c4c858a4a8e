"""`pip install ./python` gives a package that works on its own (issue #18):
wheels and sdists built from python/ carry libkiln.so (the one cmake built)
and the libraries it links that are not the system's, so the installed
package loads its own copy, with no $KILN_LIBRARY and no checkout around.

Each test works on a copy of the checkout's layout in a temporary folder
(python/, include/kiln.h, build/libkiln.so: the library under test,
$KILN_LIBRARY) and a venv (with the system's site packages, for numpy);
nothing is written into the checkout. pip builds offline when this Python
can build wheels itself (setuptools >= 70.1 or `wheel`), else in its own
build environment, which fetches setuptools. Skipped only where no venv can
be made.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import numpy as np
import pytest

import kiln
from kiln import _lib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
LIB = os.path.realpath(os.environ.get("KILN_LIBRARY") or kiln.library_path)

RUN = r"""
import json, sys
import numpy as np
import kiln, kiln._lib
x = np.load(sys.argv[2])
e, source = kiln.build(sys.argv[1], backend="ref", cache=False)
np.save(sys.argv[3], e(x))
print(json.dumps({"package": kiln.__file__, "library": kiln._lib.lib.path, "source": source}))
"""


def _env(**extra):
    """The environment without what would point at the checkout or a library."""
    env = {k: v for k, v in os.environ.items() if k not in ("KILN_LIBRARY", "PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.update(extra)
    return env


def _can_build_wheels_offline():
    try:
        import setuptools.command.bdist_wheel  # noqa: F401  setuptools >= 70.1
        return True
    except ImportError:
        pass
    try:
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
        return True
    except ImportError:
        return False


ISOLATION = ["--no-build-isolation"] if _can_build_wheels_offline() else []


def _pip(venv_py, *args, env=None, cwd=None):
    p = subprocess.run([venv_py, "-m", "pip", *args, *ISOLATION], capture_output=True, text=True,
                       env=env or _env(), cwd=cwd, timeout=600)
    return p.returncode, p.stdout + p.stderr


@pytest.fixture(scope="module")
def venv_py(tmp_path_factory):
    d = tmp_path_factory.mktemp("venv")
    p = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(d)], capture_output=True,
                       text=True, timeout=300)
    py = os.path.join(d, "bin", "python")
    if p.returncode != 0 or not os.path.exists(py):
        pytest.skip(f"cannot create a venv here: {p.stderr.strip()[-300:]}")
    if subprocess.run([py, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("the venv has no pip (ensurepip missing)")
    return py


def _checkout(root, with_library=True):
    """root/python (the package's sources), root/include/kiln.h and, with
    with_library, root/build/libkiln.so: what `pip install ./python` sees
    in a built checkout."""
    src = os.path.join(REPO, "python")
    dst = os.path.join(root, "python")
    os.makedirs(dst)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(src, name), dst)
    shutil.copytree(os.path.join(src, "kiln"), os.path.join(dst, "kiln"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.so.*"))
    os.makedirs(os.path.join(root, "include"))
    shutil.copy2(os.path.join(REPO, "include", "kiln.h"), os.path.join(root, "include"))
    if with_library:
        os.makedirs(os.path.join(root, "build"))
        shutil.copy2(LIB, os.path.join(root, "build", "libkiln.so"))
    return dst


def _bundled_deps():
    """The libraries setup.py must put beside libkiln.so: those it links that
    are neither the system's runtime nor CUDA's (libprotobuf-c.so.1)."""
    system = ("libc.so", "libm.so", "libdl.so", "librt.so", "libpthread.so", "ld-linux", "libgcc_s.so",
              "libstdc++.so", "libcudnn", "libcublas", "libcudart", "libcuda.so")
    return [n for n in (_lib.elf_needed(LIB) or []) if not n.startswith(system)]


def _run_installed(venv_py, tmp, engine, images):
    """tinynet on ref through the installed package, from a folder outside
    any checkout, without $KILN_LIBRARY: the same numbers as this process."""
    x = images(1, seed=3)
    xin, yout = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xin, x)
    p = subprocess.run([venv_py, "-c", RUN, os.path.join(REPO, "models", "tinynet.onnx"), xin, yout],
                       capture_output=True, text=True, cwd=tmp, env=_env(), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    import json
    info = json.loads(p.stdout.strip().splitlines()[-1])
    site = os.path.dirname(os.path.dirname(info["package"]))
    assert site.startswith(os.path.dirname(os.path.dirname(venv_py))), info  # the venv's copy
    assert info["library"] == os.path.join(site, "kiln", "libkiln.so"), info  # the library it carries
    assert info["source"] == "built"
    np.testing.assert_array_equal(np.load(yout), engine(x))


def test_pip_install_from_a_built_checkout(venv_py, tmp_path, engine, images):
    """`pip install ./python` after `ninja -C build`: the package carries the
    library and works once the checkout's build/ is gone."""
    pkg = _checkout(tmp_path)
    rc, out = _pip(venv_py, "install", pkg)
    assert rc == 0, out
    shutil.rmtree(tmp_path / "build")
    site = os.path.join(os.path.dirname(os.path.dirname(venv_py)), "lib")
    installed = [os.path.relpath(os.path.join(d, f), site) for d, _, fs in os.walk(site) for f in fs
                 if os.sep + "kiln" + os.sep in os.path.join(d, f) and ".so" in f]
    for name in ["libkiln.so"] + _bundled_deps():
        assert any(p.endswith(os.path.join("kiln", name)) for p in installed), (name, installed)
    _run_installed(venv_py, str(tmp_path), engine, images)


def test_wheel_carries_the_library(venv_py, tmp_path):
    """A wheel (also make_wheel.sh's): platform-tagged, with libkiln.so and
    the libraries it links that a machine may lack."""
    pkg = _checkout(tmp_path, with_library=False)
    rc, out = _pip(venv_py, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), pkg,
                   env=_env(KILN_LIBRARY=LIB))
    assert rc == 0, out
    wheels = os.listdir(tmp_path / "dist")
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert len(wheels) == 1 and wheels[0].endswith(f"-py3-none-{plat}.whl"), wheels
    names = zipfile.ZipFile(tmp_path / "dist" / wheels[0]).namelist()
    for name in ["libkiln.so"] + _bundled_deps():
        assert f"kiln/{name}" in names, (name, names)


def test_sdist_carries_the_library(venv_py, tmp_path, engine, images):
    """An sdist holds the library too, so installing it (unpacked elsewhere
    by pip, no checkout beside it) gives a working package."""
    pkg = _checkout(tmp_path)
    have = subprocess.run([venv_py, "-c", "import setuptools.build_meta"], capture_output=True)
    if have.returncode != 0:
        rc, out = _pip(venv_py, "install", "setuptools>=61")
        assert rc == 0, out
    dist = tmp_path / "sdist"
    p = subprocess.run([venv_py, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})"],
                       capture_output=True, text=True, cwd=pkg, env=_env(), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    (tarball,) = os.listdir(dist)
    with tarfile.open(dist / tarball) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    for name in ["libkiln.so"] + _bundled_deps():
        assert f"kiln/{name}" in names, (name, names)
    shutil.rmtree(tmp_path / "build")
    rc, out = _pip(venv_py, "install", "--force-reinstall", "--no-deps", str(dist / tarball))
    assert rc == 0, out
    _run_installed(venv_py, str(tmp_path), engine, images)


def test_no_library_no_package(venv_py, tmp_path):
    """Without a built library the build fails, saying how to make one,
    instead of installing a package that cannot load."""
    pkg = _checkout(tmp_path, with_library=False)
    rc, out = _pip(venv_py, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), pkg)
    assert rc != 0, out
    assert "no libkiln.so" in out and "ninja -C build" in out, out
    assert not os.path.exists(tmp_path / "dist") or not os.listdir(tmp_path / "dist")
