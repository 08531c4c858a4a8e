#!/usr/bin/env bash
# Builds a wheel of the kiln package that bundles a libkiln.so (and the
# libprotobuf-c.so.1 it links, which it finds next to itself through its
# $ORIGIN rpath), tagged py3-none-<platform>: one wheel for every Python 3.
#   python/make_wheel.sh [LIBKILN.so] [OUT_DIR]   default: build/libkiln.so, python/dist
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lib=$(realpath "${1:-$here/../build/libkiln.so}")
out=$(realpath -m "${2:-$here/dist}")
[ -f "$lib" ] || { echo "make_wheel: no $lib; build kiln first (ninja -C build)" >&2; exit 1; }
copied=("$here/kiln/libkiln.so")
trap 'rm -f "${copied[@]}"; rm -rf "$here/build" "$here/kiln.egg-info"' EXIT
cp "$lib" "$here/kiln/libkiln.so"
pb=$(ldd "$lib" | awk '$1 == "libprotobuf-c.so.1" { print $3 }')
if [ -n "$pb" ] && [ -f "$pb" ]; then
  cp "$pb" "$here/kiln/libprotobuf-c.so.1"
  copied+=("$here/kiln/libprotobuf-c.so.1")
fi
python3 -m pip wheel --no-deps --no-build-isolation -w "$out" "$here"
ls -1 "$out"/kiln-*.whl
