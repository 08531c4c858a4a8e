#!/usr/bin/env bash
# The concurrency stress of issue #6 on the GPU: 64 client threads x 1000
# batch-1 requests on one yolov8n fp16 engine, every result compared with a
# single-threaded run (kiln bench --verify), without and with dynamic
# batching. Runs on the GPU machine after scripts/gpu-check has exported the
# zoo (or exports yolov8n itself).
# usage: scripts/gpu/stress.sh [ITERATIONS]   (default 1000 per thread)
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000}
K=/tmp/kiln
kiln=$PWD/build-gpu/kiln
export LD_LIBRARY_PATH="$PWD/build-gpu/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
mkdir -p $K/models $K/stress
# the carried wheels (ultralytics), as scripts/gpu-check's setup installs them
if [ ! -d /tmp/site ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
[ -s $K/models/yolov8n.onnx ] || python3 scripts/gpu/export_models.py $K/models yolov8n >/dev/null 2>&1
plan=$K/stress/yolov8n_fp16.plan
[ -s $plan ] || python3 - "$kiln" $K/models/yolov8n.onnx $plan <<'PY'
import sys; sys.path.insert(0, "scripts/gpu"); import kilncli, zoo
r = kilncli.build(sys.argv[1], sys.argv[2], sys.argv[3], "fp16", zoo.PROFILE, sys.argv[3] + ".log")
print("built" if r["ok"] else "build failed: " + r["error"])
PY
for mode in plain batch; do
  extra=""
  [ $mode = batch ] && extra="--max-batch 16 --batch-delay-us 2000"
  "$kiln" bench $plan --threads 64 --streams 4 $extra --iterations $n --warmup 5 --verify \
    --json $K/stress/$mode.json >$K/stress/$mode.log 2>&1
  echo "== 64 threads x $n requests, 4 streams${extra:+, $extra}: exit $?"
  grep -E "^requests|^latency|^throughput|^batches|^verify" $K/stress/$mode.log
done
