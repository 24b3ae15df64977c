#!/usr/bin/env bash
# One prepared run on a GPU machine (the device tool): GPU tests, timm tests, the CLI on CUDA, the probe's
# and the Monitor's overhead on the GPU, the Monitor's overhead on 2 pinned CPU cores (an idle stand-in
# for a 2-core machine, run alongside on other cores), calibration, and the whole suite on that torch.
# Usage there: bash benchmarks/gpu_check.sh   (writes logs under $OUT when set)
set -uo pipefail
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/resdiag-gpu}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, typer, rich, pydantic; print('torch', torch.__version__, 'typer', typer.__version__)"
(OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 taskset -c 0,1 timeout "${CPU_TIMEOUT:-300}" \
  python3 benchmarks/bench_monitor.py --device cpu --repeats 5 --batch-size 8 > "$OUT/bench_monitor_cpu2.log" 2>&1) &
CPU_JOB=$!
G="taskset -c 2-7"
echo "== GPU and timm tests"
timeout 150 $G python3 -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py tests/models/test_timm.py 2>&1 \
  | tee "$OUT/gpu_tests.log" | tail -8
echo "== CLI on CUDA"
timeout 60 $G python3 -m resdiag grad-flow --arch resnet110 --device cuda --rows 4 2>&1 | tail -6
echo "== probe overhead"
timeout 150 $G python3 benchmarks/bench_probe.py --device cuda 2>&1 | tee "$OUT/bench_probe.log"
timeout 100 $G python3 benchmarks/bench_probe_parts.py --device cuda --repeats 25 2>&1 | tee -a "$OUT/bench_probe.log"
echo "== Monitor overhead on CUDA"
timeout 150 $G python3 benchmarks/bench_monitor.py --device cuda --repeats 15 --batch-size 32 2>&1 | grep -v loss_type \
  | tee "$OUT/bench_monitor_cuda.log"
timeout 100 $G python3 benchmarks/bench_monitor.py --device cuda --repeats 15 --batch-size 64 --image-size 224 \
  --models resnet18 2>&1 | tail -1 | tee -a "$OUT/bench_monitor_cuda.log"
echo "== where the Monitor's recorded step spends its time on CUDA (host clock; then synchronised per phase)"
timeout 120 $G python3 benchmarks/profile_monitor.py --device cuda --batch-size 32 --repeats 15 2>&1 \
  | grep -v loss_type | tee "$OUT/profile_monitor.log" | grep -A8 "^=="
timeout 120 $G python3 benchmarks/profile_monitor.py --device cuda --batch-size 32 --repeats 15 --sync 2>&1 \
  | grep -v loss_type | tee -a "$OUT/profile_monitor.log" | grep -A8 "^=="
echo "== the suite on this torch (background), calibration"
(taskset -c 8-15 timeout "${SUITE_TIMEOUT:-240}" python3 -m pytest -q -x -n 8 -p no:cacheprovider \
  > "$OUT/suite.log" 2>&1) &
SUITE_JOB=$!
timeout "${CAL_TIMEOUT:-300}" $G python3 benchmarks/calibrate.py --device cuda --seeds 2 --out "$OUT/calibration.md" \
  > "$OUT/calibration.log" 2>&1
tail -3 "$OUT/calibration.log"
wait $SUITE_JOB; tail -5 "$OUT/suite.log"
echo "== Monitor overhead on 2 CPU cores"
wait $CPU_JOB
cat "$OUT/bench_monitor_cpu2.log"
