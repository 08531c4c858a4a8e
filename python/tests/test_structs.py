"""The ctypes mirrors in kiln/_lib.py against include/kiln.h, as a C
compiler lays the structs out: every size and every field offset."""
import ctypes
import os
import shutil
import subprocess

import pytest

from kiln import _lib

HEADER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include")

MIRRORS = {
    "kiln_tensor": _lib.Tensor,
    "kiln_tensor_desc": _lib.TensorDesc,
    "kiln_build_options": _lib.BuildOptions,
    "kiln_identity": _lib.Identity,
    "kiln_scheduler_options": _lib.SchedulerOptions,
    "kiln_scheduler_stats": _lib.SchedulerStats,
}


def test_promised_sizes():
    # kiln.h: "The struct keeps its size (64 / 128 bytes) across versions"
    assert ctypes.sizeof(_lib.BuildOptions) == 64
    assert ctypes.sizeof(_lib.SchedulerOptions) == 128
    assert _lib.BuildOptions._fields_[-1][0] == "profile"


def test_layout_matches_the_header(tmp_path):
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if not cc or not os.path.exists(os.path.join(HEADER_DIR, "kiln.h")):
        pytest.skip("needs a C compiler and include/kiln.h")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include \"kiln.h\"", "int main(void) {"]
    for cname, py in MIRRORS.items():
        lines.append(f'printf("{cname} %zu\\n", sizeof({cname}));')
        for fname, _ in py._fields_:
            lines.append(f'printf("{cname}.{fname} %zu\\n", offsetof({cname}, {fname}));')
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-I", HEADER_DIR, str(src), "-o", str(exe)], check=True)
    c = dict(line.rsplit(" ", 1) for line in subprocess.run([str(exe)], check=True, capture_output=True,
                                                            text=True).stdout.splitlines())
    for cname, py in MIRRORS.items():
        assert int(c[cname]) == ctypes.sizeof(py), cname
        for fname, _ in py._fields_:
            assert int(c[f"{cname}.{fname}"]) == getattr(py, fname).offset, f"{cname}.{fname}"
