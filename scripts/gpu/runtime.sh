#!/usr/bin/env bash
# The concurrent runtime and the Python package on the GPU (scripts/gpu-check's
# runtime phase): multi-stream throughput and dynamic batching of one fp16
# plan (every result checked against a single-threaded run: --verify), the
# Python package's GPU tests, and its overhead at batch 1 against the C API.
# usage: runtime.sh KILN MODEL_DIR WORK_DIR   (KILN_GPU_RUNTIME_MODEL, default yolov8n)
set -uo pipefail
kiln=$1 models=$2 work=$3
m=${KILN_GPU_RUNTIME_MODEL:-yolov8n}
plan=$work/${m}_fp16.plan
mkdir -p $work/runtime
if [ ! -s "$plan" ]; then
  python3 - "$kiln" "$models/$m.onnx" "$plan" <<'PY'
import sys; sys.path.insert(0, "scripts/gpu"); import kilncli, zoo
r = kilncli.build(sys.argv[1], sys.argv[2], sys.argv[3], "fp16", zoo.PROFILE, sys.argv[3] + ".log")
print("built" if r["ok"] else "build failed: " + r["error"])
PY
fi
row() { # label json
  python3 -c "import json,sys; j=json.load(open('$2')); print(f\"%-34s %9.1f %8.3f %8.3f %6d %6d\" % ('$1', j['throughput_rps'], j['latency_ms']['median'], j['latency_ms']['p99'], j.get('failed',0), j.get('mismatches',0)))" 2>/dev/null || echo "$1: failed (see $2.log)"
}
out=$work/runtime.txt
# resnet50 fp16 with cuDNN's runtime-compiled engines allowed (kiln build
# --runtime-compile): slower to build and to load, faster to run
rtc=$work/resnet50_fp16_rtc.plan
if [ -s "$models/resnet50.onnx" ] && [ "${KILN_GPU_RTC:-1}" = 1 ]; then
  t0=$SECONDS
  timeout 150 "$kiln" build "$models/resnet50.onnx" --fp16 --runtime-compile --minShapes images:1x3x224x224 \
    --optShapes images:8x3x224x224 --maxShapes images:32x3x224x224 -o $rtc --report >$work/runtime/rtc_build.log 2>&1
  echo "resnet50 fp16 --runtime-compile: build $((SECONDS - t0)) s (exit $?)" >$work/runtime_rtc.txt
  for b in 1 32; do
    t0=$SECONDS
    timeout 60 "$kiln" bench $rtc --shapes images:${b}x3x224x224 --iterations 200 --warmup 20 \
      --json $work/runtime/rtc_b$b.json >$work/runtime/rtc_b$b.log 2>&1
    python3 -c "import json; j=json.load(open('$work/runtime/rtc_b$b.json')); g=j['gpu_ms']; print(f'  batch $b: gpu median {g[\"median\"]:.3f} ms p90 {g[\"p90\"]:.3f} ms (process incl. load + first run: $((SECONDS - t0)) s)')" \
      >>$work/runtime_rtc.txt 2>&1 || echo "  batch $b: failed, see rtc_b$b.log" >>$work/runtime_rtc.txt
  done
  cat $work/runtime_rtc.txt
fi
{
  echo "model $m fp16, batch-1 requests, host buffers, --verify on every result"
  printf '%-34s %9s %8s %8s %6s %6s\n' "mode" "req/s" "p50 ms" "p99 ms" "failed" "mism"
} >$out
for s in 1 2 4 8; do
  j=$work/runtime/streams$s.json
  timeout 60 "$kiln" bench "$plan" --threads $((2 * s)) --streams $s --iterations 300 --warmup 20 --verify --json $j >$j.log 2>&1
  row "streams $s (threads $((2 * s)))" $j >>$out
done
j=$work/runtime/streams4_pinned.json
timeout 60 "$kiln" bench "$plan" --threads 8 --streams 4 --iterations 300 --warmup 20 --pinned --verify --json $j >$j.log 2>&1
row "streams 4 (threads 8), pinned" $j >>$out
j=$work/runtime/closed64.json
timeout 90 "$kiln" bench "$plan" --threads 64 --streams 4 --iterations 200 --warmup 5 --verify --json $j >$j.log 2>&1
row "64 callers, 4 streams, no batching" $j >>$out
j=$work/runtime/batch64.json
timeout 90 "$kiln" bench "$plan" --threads 64 --streams 4 --max-batch 16 --batch-delay-us 2000 --iterations 200 --warmup 5 --verify --json $j >$j.log 2>&1
row "64 callers, 4 streams, batch<=16 2ms" $j >>$out
python3 -c "import json; j=json.load(open('$j')); print('  batched runs', j.get('runs'))" >>$out 2>/dev/null
j=$work/runtime/batch64_pinned.json
timeout 90 "$kiln" bench "$plan" --threads 64 --streams 4 --max-batch 16 --batch-delay-us 2000 --iterations 200 --warmup 5 --pinned --verify --json $j >$j.log 2>&1
row "64 callers, batch<=16 2ms, pinned" $j >>$out
# several GPUs: one engine per device from the same plan, one scheduler
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
if [ "$ngpu" -ge 2 ]; then
  for d in 0 0,1; do
    j=$work/runtime/devices_${d/,/_}.json
    timeout 90 "$kiln" bench "$plan" --devices $d --streams 4 --threads 32 --iterations 200 --warmup 10 --verify --json $j >$j.log 2>&1
    row "devices $d, 4 streams each, 32 thr" $j >>$out
    python3 -c "import json; j=json.load(open('$j')); print('  runs per device', j.get('device_runs'))" >>$out 2>/dev/null
  done
else
  echo "(one GPU: multi-GPU rows need the nvidia-h200-x2 kind)" >>$out
fi
cat $work/runtime_rtc.txt >>$out 2>/dev/null
cat $out
# The Python package runs kiln on the cuDNN/cuBLASLt of PyTorch's pip
# packages when they are installed (docs/python.md), and a plan loads only
# under the cuDNN it was built with: the plan of the Python steps is then
# built by the CLI on those libraries, their folders first on its path.
export KILN_LIBRARY=$PWD/build-gpu/libkiln.so
pylibs=$(PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH} python3 -c 'import kiln; print(":".join(kiln.cuda_library_dirs()))' 2>/dev/null)
pm=$m
[ -s "$models/resnet50.onnx" ] && pm=resnet50
pyplan=$work/${pm}_fp16.plan
if [ -z "$pylibs" ]; then
  [ -s "$pyplan" ] || { pm=$m; pyplan=$plan; }  # the bench phase's, else this script's
else
  echo "== python: kiln shares PyTorch's cuDNN/cuBLASLt ($pylibs); building $pm fp16 on them"
  pyplan=$work/runtime/${pm}_fp16_py.plan
  LD_LIBRARY_PATH=$pylibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} python3 - "$kiln" "$models/$pm.onnx" "$pyplan" <<'PY'
import sys; sys.path.insert(0, "scripts/gpu"); import kilncli, zoo
r = kilncli.build(sys.argv[1], sys.argv[2], sys.argv[3], "fp16", zoo.PROFILE, sys.argv[3] + ".log", timeout=120)
print(f"built in {r['build_s']} s" if r["ok"] else "build failed: " + r["error"])
PY
fi
echo "== cuDNN/cuBLASLt of kiln and PyTorch in one process"
PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH} timeout 200 python3 scripts/gpu/libs_probe.py "$pyplan" 2>&1 | tee $work/libs_probe.txt
echo "== python package on the GPU"
timeout 120 python3 -m pytest -q -x python/tests/test_gpu.py python/tests/test_cuda_libs.py 2>&1 | tail -5
echo "== python overhead at batch 1 ($pm fp16 plan)"
if [ -s "$pyplan" ]; then
  timeout 150 python3 python/bench_overhead.py "$pyplan" --kiln "$kiln" --iterations 1000 --rounds 7 --torch \
    --json $work/overhead.json 2>&1 | tail -12
else
  echo "no $pyplan"
fi
