"""Which cuDNN / cuBLASLt kiln loads: the pip packages PyTorch uses, found
without importing anything, preloaded before libkiln.so so that kiln and
PyTorch share one copy whatever the import order; $KILN_SYSTEM_CUDA_LIBS=1
opts out. Checked on a fake `nvidia` tree (its libraries need not load) and
with an injected loader; the real thing only where the library is a cuda
build and PyTorch's packages are installed."""
import os
import subprocess
import sys

import pytest

import kiln
from kiln import _lib

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CUDNN, CUBLASLT = "libcudnn.so.9", "libcublasLt.so.13"


def _touch(path, data=b"not a library\n"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


@pytest.fixture
def fake_site(tmp_path):
    """site/nvidia/{cudnn,cu13,nccl}/lib as pip lays them out, with decoys
    (sub-libraries of cuDNN, other packages, a cuBLASLt of another major)."""
    nv = tmp_path / "site" / "nvidia"
    paths = {CUDNN: _touch(nv / "cudnn" / "lib" / CUDNN), CUBLASLT: _touch(nv / "cu13" / "lib" / CUBLASLT)}
    _touch(nv / "cudnn" / "lib" / "libcudnn_graph.so.9")
    _touch(nv / "cublas" / "lib" / "libcublasLt.so.12")
    _touch(nv / "nccl" / "lib" / "libnccl.so.2")
    _touch(nv / "cudnn" / "include" / "cudnn.h")
    return tmp_path / "site", paths


class Loader:
    """Records the paths it is asked to load; fails those in `fail`."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], set(fail)

    def __call__(self, path):
        self.calls.append(path)
        if path in self.fail:
            raise OSError(f"{path}: invalid ELF header")


def _not_loaded(soname):
    return None


# ------------------------------------------------------------ discovery

def test_find_in_a_fake_tree(fake_site):
    site, paths = fake_site
    assert _lib.find_cuda_libraries([str(site / "nvidia")]) == paths
    assert _lib.find_cuda_libraries([str(site / "nvidia")], [CUDNN]) == {CUDNN: paths[CUDNN]}


def test_first_root_wins_and_missing_roots_are_fine(fake_site, tmp_path):
    site, paths = fake_site
    other = _touch(tmp_path / "other" / "nvidia" / "cudnn" / "lib" / CUDNN)
    roots = [str(tmp_path / "absent"), str(tmp_path / "other" / "nvidia"), str(site / "nvidia")]
    assert _lib.find_cuda_libraries(roots) == {CUDNN: other, CUBLASLT: paths[CUBLASLT]}
    assert _lib.find_cuda_libraries([str(tmp_path / "absent")]) == {}
    assert _lib.find_cuda_libraries([]) == {}


def test_root_with_glob_characters(tmp_path):
    p = _touch(tmp_path / "si[te]*" / "nvidia" / "cudnn" / "lib" / CUDNN)
    assert _lib.find_cuda_libraries([str(tmp_path / "si[te]*" / "nvidia")]) == {CUDNN: p}


def test_nvidia_namespace_found_without_importing(fake_site):
    """find_spec on the namespace package: neither it nor torch is imported."""
    site, _ = fake_site
    code = ("import sys; from kiln import _lib; d = _lib.nvidia_package_dirs(); "
            "print(repr((d, 'nvidia' in sys.modules, 'torch' in sys.modules)))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.path.join(REPO, "python")]),
               KILN_SYSTEM_CUDA_LIBS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    dirs, nvidia_imported, torch_imported = eval(r.stdout.strip())
    assert dirs and os.path.samefile(dirs[0], site / "nvidia")
    assert not nvidia_imported and not torch_imported


def test_elf_needed(tmp_path):
    needed = _lib.elf_needed(kiln.library_path)
    assert needed and "libc.so.6" in needed
    assert _lib.elf_needed(_touch(tmp_path / "garbage.so")) is None
    assert _lib.elf_needed(_touch(tmp_path / "short.so", b"\x7fELF\x02\x01")) is None
    assert _lib.elf_needed(str(tmp_path / "absent.so")) is None


def test_loaded_path():
    assert _lib._loaded_path("libkiln-no-such-library.so.7") is None
    libc = _lib._loaded_path("libc.so.6")
    assert libc is None or os.path.exists(libc)  # None where the C library has no dlinfo


# ------------------------------------------------------------ preloading

def test_preloads_what_the_library_needs_in_order(fake_site):
    site, paths = fake_site
    load = Loader()
    st = _lib.preload_cuda_libraries(None, [str(site / "nvidia")], environ={}, load=load, loaded_path=_not_loaded)
    assert load.calls == [paths[CUBLASLT], paths[CUDNN]]  # cuDNN's engines need cuBLASLt
    assert st.preloaded == st.in_use == paths and not st.failed and not st.disabled
    assert st.dirs() == [os.path.dirname(paths[CUBLASLT]), os.path.dirname(paths[CUDNN])]
    # idempotent: a second library needing the same loads nothing again
    _lib.preload_cuda_libraries([CUDNN], [str(site / "nvidia")], st, environ={}, load=load,
                                loaded_path=_not_loaded)
    assert len(load.calls) == 2


def test_cublaslt_first_whatever_root_holds_it(tmp_path):
    cudnn = _touch(tmp_path / "a" / "nvidia" / "cudnn" / "lib" / CUDNN)
    lt = _touch(tmp_path / "b" / "nvidia" / "cu13" / "lib" / CUBLASLT)
    load = Loader()
    _lib.preload_cuda_libraries(None, [str(tmp_path / "a" / "nvidia"), str(tmp_path / "b" / "nvidia")], environ={},
                                load=load, loaded_path=_not_loaded)
    assert load.calls == [lt, cudnn]


def test_only_the_sonames_needed(fake_site):
    site, paths = fake_site
    load = Loader()
    st = _lib.preload_cuda_libraries(["libc.so.6", CUDNN], [str(site / "nvidia")], environ={}, load=load,
                                     loaded_path=_not_loaded)
    assert load.calls == [paths[CUDNN]] and st.in_use == {CUDNN: paths[CUDNN]}
    load = Loader()  # a build without CUDA: nothing
    st = _lib.preload_cuda_libraries(["libc.so.6", "libm.so.6"], [str(site / "nvidia")], environ={}, load=load,
                                     loaded_path=_not_loaded)
    assert load.calls == [] and st.in_use == {} and st.dirs() == []


def test_opt_out(fake_site):
    site, paths = fake_site
    load = Loader()
    st = _lib.preload_cuda_libraries(None, [str(site / "nvidia")], environ={"KILN_SYSTEM_CUDA_LIBS": "1"},
                                     load=load, loaded_path=_not_loaded)
    assert load.calls == [] and st.disabled and st.in_use == {}
    st = _lib.preload_cuda_libraries(None, [str(site / "nvidia")], environ={"KILN_SYSTEM_CUDA_LIBS": "0"},
                                     load=load, loaded_path=_not_loaded)
    assert not st.disabled and st.in_use == paths


def test_a_candidate_that_fails_is_reported_and_skipped(fake_site):
    site, paths = fake_site
    load = Loader(fail={paths[CUDNN]})
    with pytest.warns(RuntimeWarning, match=r"cannot preload .*libcudnn\.so\.9.*KILN_SYSTEM_CUDA_LIBS=1"):
        st = _lib.preload_cuda_libraries(None, [str(site / "nvidia")], environ={}, load=load,
                                         loaded_path=_not_loaded)
    assert st.in_use == {CUBLASLT: paths[CUBLASLT]}
    assert list(st.failed) == [CUDNN] and "invalid ELF header" in st.failed[CUDNN]
    # not tried again for the next library
    _lib.preload_cuda_libraries(None, [str(site / "nvidia")], st, environ={}, load=load, loaded_path=_not_loaded)
    assert load.calls.count(paths[CUDNN]) == 1


def test_the_real_loader_on_files_that_are_not_libraries(fake_site):
    site, paths = fake_site
    with pytest.warns(RuntimeWarning, match="cannot preload"):
        st = _lib.preload_cuda_libraries(None, [str(site / "nvidia")], environ={}, loaded_path=_not_loaded)
    assert set(st.failed) == {CUDNN, CUBLASLT} and st.in_use == {}


def test_a_copy_already_loaded_elsewhere_is_kept(fake_site, tmp_path):
    """e.g. PyTorch imported first from other packages: a second copy would
    not be the one kiln binds to, so kiln reports the one it will share."""
    site, paths = fake_site
    other = _touch(tmp_path / "elsewhere" / CUDNN)
    load = Loader()
    st = _lib.preload_cuda_libraries(None, [str(site / "nvidia")], environ={}, load=load,
                                     loaded_path=lambda s: other if s == CUDNN else None)
    assert load.calls == [paths[CUBLASLT]]
    assert st.in_use == {CUBLASLT: paths[CUBLASLT], CUDNN: other} and st.preloaded == {CUBLASLT: paths[CUBLASLT]}
    # the same file loaded already (PyTorch first, same packages): loading it again is harmless, and reported
    load = Loader()
    st = _lib.preload_cuda_libraries(None, [str(site / "nvidia")], environ={}, load=load,
                                     loaded_path=lambda s: paths[s])
    assert load.calls == [paths[CUBLASLT], paths[CUDNN]] and st.in_use == paths


def test_public_view(monkeypatch):
    st = _lib.CudaLibs()
    st.in_use = {CUBLASLT: "/p/cu13/lib/" + CUBLASLT, CUDNN: "/p/cudnn/lib/" + CUDNN}
    monkeypatch.setattr(_lib, "cuda_libs", st)
    monkeypatch.setattr(kiln, "_cuda_libs", st)
    assert kiln.cuda_libraries() == st.in_use and kiln.cuda_libraries() is not st.in_use
    assert kiln.cuda_library_dirs() == ["/p/cu13/lib", "/p/cudnn/lib"]


def test_opt_out_at_import():
    code = "import kiln; from kiln import _lib; print(repr((kiln.cuda_library_dirs(), _lib.cuda_libs.disabled)))"
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "python"), KILN_SYSTEM_CUDA_LIBS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert eval(r.stdout.strip()) == ([], True)


# ------------------------------------------------------------ with PyTorch's packages

ORDER_PROBE = r'''
import sys
if sys.argv[1] == "torch":
    import torch
import kiln
import torch
v = torch.backends.cudnn.version()
maps = sorted({l.split()[-1] for l in open("/proc/self/maps") if "/libcudnn.so" in l or "/libcublasLt.so" in l})
print(repr((v, maps, kiln.cuda_libraries())))
'''


@pytest.mark.parametrize("first", ["kiln", "torch"])
def test_one_copy_whichever_comes_first(first):
    """Needs no GPU: loading the libraries and PyTorch's cuDNN version check
    run without one."""
    needed = _lib.elf_needed(kiln.library_path) or []
    if CUDNN not in needed:
        pytest.skip(f"{kiln.library_path} is not a cuda build (it does not link {CUDNN})")
    if not _lib.find_cuda_libraries(_lib.nvidia_package_dirs(), [CUDNN]):
        pytest.skip("PyTorch's pip-installed cuDNN (nvidia-cudnn-*) is not installed")
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "python"))
    env.pop("KILN_SYSTEM_CUDA_LIBS", None)
    r = subprocess.run([sys.executable, "-c", ORDER_PROBE, first], capture_output=True, text=True, env=env,
                       timeout=120)
    if r.returncode != 0 and "No module named 'torch'" in r.stderr:
        pytest.skip("PyTorch is not installed")
    assert r.returncode == 0, r.stderr[-2000:]
    version, maps, shared = eval(r.stdout.strip().splitlines()[-1])
    assert version and maps
    assert sorted(os.path.realpath(p) for p in maps) == sorted(os.path.realpath(p) for p in shared.values())
