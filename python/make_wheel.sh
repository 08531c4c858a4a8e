#!/usr/bin/env bash
# Builds a wheel of the kiln package that bundles a libkiln.so and the
# libraries it links that a machine may lack (libprotobuf-c.so.1, found next
# to it through its $ORIGIN rpath), tagged py3-none-<platform>: one wheel
# for every Python 3. setup.py does the bundling (it is what
# `pip install ./python` runs too); this names the library and the folder.
#   python/make_wheel.sh [LIBKILN.so] [OUT_DIR]   default: build/libkiln.so, python/dist
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lib=$(realpath "${1:-$here/../build/libkiln.so}")
out=$(realpath -m "${2:-$here/dist}")
[ -f "$lib" ] || { echo "make_wheel: no $lib; build kiln first (ninja -C build)" >&2; exit 1; }
# setuptools builds in the source folder: leave it as it was
trap 'rm -rf "$here/build" "$here/kiln.egg-info"' EXIT
# offline when this Python can build wheels itself, else in pip's build environment
isolation=()
if python3 -c 'import setuptools.command.bdist_wheel' 2>/dev/null || python3 -c 'import wheel' 2>/dev/null; then
  isolation=(--no-build-isolation)
fi
KILN_LIBRARY="$lib" python3 -m pip wheel --no-deps "${isolation[@]}" -w "$out" "$here"
ls -1 "$out"/kiln-*.whl
