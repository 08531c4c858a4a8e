"""What pyproject.toml cannot say: the package carries the libkiln.so that
cmake built, with the libraries it links that a machine may lack.

The package is ctypes over libkiln.so, so an installed copy is only useful
with the library inside it. Every wheel or sdist built from here therefore
bundles one, found in this order:

  1. $KILN_LIBRARY, when set (and only there);
  2. build/libkiln.so of the kiln checkout this folder sits in
     (`ninja -C build` before `pip install ./python`);
  3. kiln/libkiln.so beside this file (an unpacked sdist of this package).

When none is there the build fails, saying how to make one, rather than
install a package that cannot load. The libraries libkiln.so links (its
DT_NEEDED) go in beside it (it finds them through its $ORIGIN rpath),
except the C/C++ runtime of every Linux system and the CUDA libraries
(cuDNN, cuBLASLt: the system's, or PyTorch's pip packages, which the
package loads itself; docs/python.md). A sanitizer build of libkiln.so is
refused: a Python that is not built with the sanitizer cannot load it.

The wheel is tagged for the platform (py3-none-linux_x86_64), not as pure
Python: ctypes only, so one wheel serves every Python 3.
"""
import importlib.util
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = "libkiln.so"

# never bundled: the C and C++ runtime every Linux system has
SYSTEM = ("libc.so", "libm.so", "libdl.so", "librt.so", "libpthread.so", "libresolv.so", "libutil.so", "libmvec.so",
          "ld-linux", "libgcc_s.so", "libstdc++.so", "linux-vdso.so")
# never bundled: CUDA's, found on the system or preloaded from PyTorch's nvidia pip packages
CUDA = ("libcudnn", "libcublas", "libcudart", "libcuda.so", "libnvrtc", "libnvJitLink", "libnccl", "libcufft",
        "libcurand", "libcusparse", "libcusolver")
SANITIZERS = ("libasan.so", "libubsan.so", "libtsan.so", "liblsan.so", "libclang_rt")

HOW_TO_BUILD = ("build it first, in the kiln checkout: cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "
                "&& ninja -C build (then pip install ./python), or set KILN_LIBRARY=/path/to/libkiln.so "
                "for the install")


def _elf_needed():
    """kiln/_elf.py's reader, loaded without importing the package (which
    would load libkiln.so)."""
    spec = importlib.util.spec_from_file_location("_kiln_elf", os.path.join(HERE, "kiln", "_elf.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.elf_needed


def find_library():
    """(path, where) of the libkiln.so to bundle; raises with what was tried."""
    env = os.environ.get("KILN_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise SystemExit(f"kiln: $KILN_LIBRARY is {env}, which is no file; {HOW_TO_BUILD}")
        return os.path.abspath(env), "$KILN_LIBRARY"
    tried = []
    repo = os.path.dirname(HERE)
    built = os.path.join(repo, "build", LIB)
    if os.path.isfile(os.path.join(repo, "include", "kiln.h")):
        if os.path.isfile(built):
            return built, "the checkout's build/ folder"
        tried.append(f"{built} (the checkout's build/)")
    packaged = os.path.join(HERE, "kiln", LIB)
    if os.path.isfile(packaged):
        return packaged, "the package folder (an sdist)"
    tried.append(f"{packaged} (an sdist's)")
    raise SystemExit("kiln: no libkiln.so to put in the package; tried " + ", ".join(tried) + "; " + HOW_TO_BUILD)


def _resolved(lib):
    """{soname: path} as the dynamic linker resolves lib's libraries (ldd
    honours its $ORIGIN rpath); names it cannot find are left out."""
    try:
        out = subprocess.run(["ldd", lib], capture_output=True, text=True, check=False).stdout
    except OSError:
        return {}
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
            found[parts[0]] = parts[2]
    return found


def bundle():
    """[(source path, file name in the package)]: libkiln.so and the
    libraries it (and those, in turn) link that are neither the system's
    runtime nor CUDA's."""
    lib, where = find_library()
    elf_needed = _elf_needed()
    files = [(lib, LIB)]
    todo, seen = [lib], {LIB}
    while todo:
        path = todo.pop()
        needed = elf_needed(path)
        if needed is None:
            raise SystemExit(f"kiln: {path} (from {where}) is not a 64-bit little-endian ELF shared library")
        resolved = _resolved(path)
        for name in needed:
            if name in seen or name.startswith(SYSTEM) or name.startswith(CUDA):
                continue
            if name.startswith(SANITIZERS):
                raise SystemExit(f"kiln: {lib} (from {where}) is a sanitizer build (it links {name}), which "
                                 f"Python cannot load; bundle a Release build: {HOW_TO_BUILD}")
            dep = resolved.get(name)
            if dep is None:
                raise SystemExit(f"kiln: {path} links {name}, which is not found on this machine; install it "
                                 f"or rebuild libkiln.so")
            seen.add(name)
            files.append((dep, name))
            todo.append(dep)
    return files


def _copy_bundle(folder):
    os.makedirs(folder, exist_ok=True)
    for src, name in bundle():
        dst = os.path.join(folder, name)
        if os.path.lexists(dst):
            if os.path.exists(dst) and os.path.samefile(src, dst):
                continue
            os.remove(dst)  # a link (sdists hard-link their files) must not be written through
        shutil.copy2(src, dst)  # follows links: the file itself
        print(f"kiln: bundling {src} as kiln/{name}")


class BuildPy(build_py):
    """The package's modules, then the library and its dependencies."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "kiln")
        # libraries of an earlier build of another libkiln.so must not ride along
        for old in os.listdir(target) if os.path.isdir(target) else []:
            if old.endswith(".so") or ".so." in old:
                os.remove(os.path.join(target, old))
        _copy_bundle(target)


class Sdist(sdist):
    """An sdist carries the library too: installing it builds nothing."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        _copy_bundle(os.path.join(base_dir, "kiln"))


cmdclass = {"build_py": BuildPy, "sdist": Sdist}
try:
    from setuptools.command.bdist_wheel import bdist_wheel  # setuptools >= 70.1
except ImportError:
    try:
        from wheel.bdist_wheel import bdist_wheel
    except ImportError:  # no wheels can be built here at all (pip's build environment has them)
        bdist_wheel = None

if bdist_wheel is not None:
    class PlatformWheel(bdist_wheel):
        """A wheel with a native library in it: platform-tagged, any Python 3."""

        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = PlatformWheel


class BinaryDistribution(Distribution):
    """Has a native library: built and installed as platform files (platlib,
    a wheel that is not pure), though there is nothing to compile."""

    def has_ext_modules(self):
        return True


setup(cmdclass=cmdclass, distclass=BinaryDistribution)
