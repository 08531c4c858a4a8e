#!/usr/bin/env python3
"""Checks the op table's ONNX versions against the installed onnx package.

usage: gen-op-versions.py [--min N] [--max N] [--ops-def PATH] [-v]

For every row of src/ir/ops.def (KILN_OP and KILN_OP_ADAPTED), V(onnx) must
be exactly the since_versions of the op's ONNX definitions that a model of
opset MIN..MAX can resolve to (onnx.defs.get_schema(op, opset).since_version
for each opset, less a deprecated last definition: the op's removal; MIN
and MAX default to KILN_MIN_OPSET and KILN_MAX_OPSET of src/onnx/onnx.h).
A KILN_OP row's V(native) must be a subset of its V(onnx), and a row with a
version outside V(native) should name an adapter (AD_Y); one that does not
is listed (its older versions are refused at import).

Prints each row that is wrong with the versions it should have (with -v,
every row), and exits 1 when any is wrong: run it again when onnx or
KILN_MAX_OPSET moves, and paste the printed versions into the rows.
"""
import argparse
import os
import re
import sys

import onnx.defs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW = re.compile(r"^KILN_OP(_ADAPTED)?\((\w+),(.*)$", re.M)


def split_args(text):
    """Top-level comma-separated arguments of a row (after its name)."""
    out, depth, cur, quote = [], 0, "", False
    for ch in text:
        if ch == '"':
            quote = not quote
        if not quote:
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    out.append(cur.strip())
                    return out
                depth -= 1
            elif ch == "," and depth == 0:
                out.append(cur.strip())
                cur = ""
                continue
        cur += ch
    raise ValueError("unterminated row")


def versions(arg):
    m = re.fullmatch(r"V\(([\d,\s]*)\)", arg)
    if not m:
        raise ValueError(f"not a V(...) list: {arg}")
    return [int(x) for x in m.group(1).replace(" ", "").split(",") if x]


def rows(path):
    src = open(path).read()
    for m in ROW.finditer(src):
        adapted, name = bool(m.group(1)), m.group(2)
        args = split_args(m.group(3))
        if adapted:
            yield name, True, versions(args[0]), [], "AD_Y"
        else:
            # min_in, max_in, min_out, max_out, V(onnx), V(native), flops, flags, cuda, adapt, params
            yield name, False, versions(args[4]), versions(args[5]), args[9]


def onnx_versions(op, lo, hi):
    """since_versions of op a model of opset lo..hi resolves to. A deprecated
    last definition (Upsample-10, Scatter-11) is the op's removal, not a
    version a valid model can use; a deprecated one that a newer version
    follows (GroupNormalization-18) is still used."""
    vs = set()
    for opset in range(lo, hi + 1):
        try:
            s = onnx.defs.get_schema(op, opset)
        except Exception:
            continue
        if s.deprecated and s.since_version == onnx.defs.get_schema(op).since_version:
            continue
        vs.add(s.since_version)
    return sorted(vs)


def opset_range():
    src = open(os.path.join(ROOT, "src", "onnx", "onnx.h")).read()
    lo = re.search(r"#define\s+KILN_MIN_OPSET\s+(\d+)", src)
    hi = re.search(r"#define\s+KILN_MAX_OPSET\s+(\d+)", src)
    return int(lo.group(1)), int(hi.group(1))


def main():
    lo, hi = opset_range()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min", type=int, default=lo)
    ap.add_argument("--max", type=int, default=hi)
    ap.add_argument("--ops-def", default=os.path.join(ROOT, "src", "ir", "ops.def"))
    ap.add_argument("-v", action="store_true", help="print every row")
    a = ap.parse_args()

    bad, refused, n = 0, [], 0
    for name, adapted, onnx_v, native, adapt in rows(a.ops_def):
        n += 1
        want = onnx_versions(name, a.min, a.max)
        problems = []
        if not want:
            problems.append(f"onnx {onnx.__version__} defines no {name} at opsets {a.min}..{a.max}")
        elif onnx_v != want:
            problems.append(f"V(onnx) is V({', '.join(map(str, onnx_v))}), onnx {onnx.__version__} says "
                            f"V({', '.join(map(str, want))})")
        if not set(native) <= set(onnx_v):
            problems.append(f"V(native) has versions outside V(onnx): {sorted(set(native) - set(onnx_v))}")
        if native != sorted(native) or onnx_v != sorted(onnx_v):
            problems.append("versions are not ascending")
        older = [v for v in onnx_v if v not in native]
        if older and adapt != "AD_Y":
            refused.append(f"{name} {older}")
        if problems:
            bad += 1
            for p in problems:
                print(f"{name}: {p}")
        elif a.v:
            kind = "adapted" if adapted else f"native {native}"
            print(f"{name}: {onnx_v} ({kind}{', adapter' if older and adapt == 'AD_Y' else ''})", flush=True)
    if refused:
        print(f"versions refused at import (no adapter): {'; '.join(refused)}")
    print(f"{n} rows of {os.path.relpath(a.ops_def, ROOT)} checked against onnx {onnx.__version__} "
          f"(opsets {a.min}..{a.max}): {bad} wrong")
    sys.exit(1 if bad or n == 0 else 0)


if __name__ == "__main__":
    main()
