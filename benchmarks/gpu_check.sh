#!/usr/bin/env bash
# One prepared run on a GPU machine (the device tool): GPU tests, the CLI on CUDA, the probe's and the
# Monitor's overhead on the GPU, the Monitor's overhead on 2 pinned CPU cores (an idle stand-in for a
# 2-core machine, run alongside on other cores), timm models, and calibration.
# Usage there: bash benchmarks/gpu_check.sh   (writes logs under $OUT when set)
set -uo pipefail
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/resdiag-gpu}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nproc
python3 -c "import torch, typer, rich, pydantic; print('torch', torch.__version__, 'typer', typer.__version__)"
(OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 taskset -c 0,1 timeout "${CPU_TIMEOUT:-400}" \
  python3 benchmarks/bench_monitor.py --device cpu --repeats 5 --batch-size 8 > "$OUT/bench_monitor_cpu2.log" 2>&1) &
CPU_JOB=$!
G="taskset -c 2-15"
echo "== GPU tests"
timeout 150 $G python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -15
echo "== CLI on CUDA"
timeout 60 $G python3 -m resdiag grad-flow --arch resnet110 --device cuda --rows 6 --json "$OUT/resnet110_gf.json" 2>&1 | tail -12
echo "== probe overhead"
timeout 150 $G python3 benchmarks/bench_probe.py --device cuda 2>&1 | tee "$OUT/bench_probe.log"
echo "== Monitor overhead on CUDA"
timeout 150 $G python3 benchmarks/bench_monitor.py --device cuda --repeats 15 --batch-size 32 2>&1 | grep -v loss_type | tee "$OUT/bench_monitor_cuda.log"
echo "== norms on CUDA"
timeout 30 $G python3 benchmarks/bench_norms.py --device cuda 2>&1 | tee "$OUT/bench_norms_cuda.log"
echo "== timm"
timeout 90 $G python3 benchmarks/timm_smoke.py --device cuda 2>&1 | grep -v Warning | tee "$OUT/timm.log"
echo "== calibration"
timeout "${CAL_TIMEOUT:-300}" $G python3 benchmarks/calibrate.py --device cuda --seeds 2 --out "$OUT/calibration.md" 2>&1 | tee "$OUT/calibration.log"
echo "== Monitor overhead on 2 CPU cores (waiting for it)"
wait $CPU_JOB
cat "$OUT/bench_monitor_cpu2.log"
