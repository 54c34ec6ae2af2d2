#!/usr/bin/env bash
# Validate and benchmark the CUDA kernels on a GPU machine, in one command:
#
#   bash benchmarks/gpu_check.sh                 # every phase, in this order
#   bash benchmarks/gpu_check.sh build test      # some phases
#
# Phases:
#   build         compile the CPU + CUDA kernels for this GPU (TORCH_CUDA_ARCH_LIST = its
#                 compute capability unless set), then `i2i-fast info`
#   test          first the GPU regression tests of issue 23 (tests/test_gpu_kernel_regressions.py:
#                 multi-team blocks, idle teams, constant samples, a second GPU if present; and
#                 the Triton normalization's constant-sample tests on CUDA tensors), then the CUDA
#                 and GPU Triton tests (tests/test_cuda_*.py, the GAN-loss Triton tests on CUDA
#                 tensors) and the compile test, then the whole suite
#   sanitize      compute-sanitizer memcheck, racecheck and synccheck (barriers every thread of
#                 a block reaches) over every kernel variant (if present)
#   bench-large   `i2i-fast bench ops --device cuda --shapes large`, bfloat16 and float32, with the
#                 issue's GPU floors checked (copy-bandwidth fraction, vs eager, vs compile)
#   bench-method  the same at the methods' shapes
#   bench-train   `i2i-fast bench method` (whole training iterations) at the official
#                 configurations, batch 8, 256x256, fused bf16 + channels-last against the eager
#                 fp32 reference, with the GPU floors checked (>= 2x eager fp32, >= 1.2x
#                 compiled): MUNIT edges2shoes, then StarGAN v2 AFHQ
#   bench-losses  `i2i-fast bench losses --device cuda`: eager vs compile vs fused vs cuda vs triton
#                 on MUNIT's 3-scale D and G losses, StarGAN v2's K=3 D loss with R1, and R1 alone
#                 on (8, 3, 256, 256); float32 and bfloat16
#   profile       torch.profiler of the AdaIN kernels at the benchmark shapes; ncu if present
#
# Everything lands in $OUT (default ./gpu-out): summary.md (versions, each phase's outcome, the
# tables), build.log, test.log, sanitize.log, bench.log, bench-losses.log, bench-results.tar.gz
# (the JSON/CSV files for benchmarks/results/), profile.md, ncu.txt.
#
# Written for the device tool's bare H100/H200 machines (python3 with torch + CUDA, nvcc at
# /usr/local/cuda, no network): no installation, the repository is used in place. The build is
# cached in .gpu-cache/ (I2I_FAST_CACHE_DIR), so later phases on the same machine reuse it; on a
# fresh machine every phase rebuilds first. The device tool limits one command to 10 minutes:
# there, run the phases in separate calls (see benchmarks/NOTES.md for the expected durations).
set -uo pipefail  # no -e: a failing phase is recorded and the others still run
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export I2I_FAST_CACHE_DIR=${I2I_FAST_CACHE_DIR:-$ROOT/.gpu-cache}
export I2I_FAST_REQUIRE_EXT=1
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
  TORCH_CUDA_ARCH_LIST=$($PY -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
  export TORCH_CUDA_ARCH_LIST
fi
RESULTS=$ROOT/.gpu-cache/results
mkdir -p "$RESULTS"
SUMMARY=$OUT/summary.md
status=0

if [ "$#" -gt 0 ]; then phases=("$@"); else
  phases=(build test sanitize bench-large bench-method bench-train bench-losses profile); fi

note() { echo "$*" | tee -a "$SUMMARY"; }
# run_phase NAME LOG COMMAND...: runs, records the outcome and the duration in the summary.
run_phase() {
  local name=$1 log=$2
  shift 2
  local start=$SECONDS
  echo "=== $name: $*" | tee -a "$log"
  "$@" >>"$log" 2>&1
  local rc=$?
  note "- $name: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - start)) s (log: $(basename "$log"))"
  [ $rc -eq 0 ] || status=1
  return $rc
}

if [ ! -f "$SUMMARY" ]; then
  {
    echo "# GPU check of i2i_fast"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); git: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "- gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo '?')"
    echo "- $($PY -c 'import torch, triton; print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}")' 2>/dev/null || $PY -c 'import torch; print(f"torch {torch.__version__} (CUDA {torch.version.cuda})")')"
    echo "- nvcc: $("${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" --version 2>/dev/null | grep -o 'release [0-9.]*' || echo '?'); TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST; $(nproc) CPU cores"
    echo
  } >"$SUMMARY"
fi

built=0  # 1: built; -1: the build failed (not retried by every phase)
ensure_built() {
  [ $built -ne 0 ] && return $((built == 1 ? 0 : 1))
  if run_phase build "$OUT/build.log" env I2I_FAST_VERBOSE_BUILD=1 $PY -m i2i_fast.cli build; then
    built=1
    $PY -m i2i_fast.cli info >>"$OUT/build.log" 2>&1
    grep -E "^GPU|CUDA kernels|^  cuda " "$OUT/build.log" | sed 's/^/    /' >>"$SUMMARY"
    return 0
  fi
  built=-1
  return 1
}

bench() {  # bench SHAPES DTYPE [--check-floors]
  # The engine's default providers on a GPU: eager, compile, fused (the automatic choice: the
  # CUDA kernels), torch_native, and the forced backends (cuda, triton) where the engine has them.
  $PY -m i2i_fast.cli bench ops --device cuda --shapes "$1" --dtype "$2" \
      --repeats "${BENCH_REPEATS:-20}" --out "$RESULTS" "${@:3}"
}

for phase in "${phases[@]}"; do
  case $phase in
    build)
      ensure_built
      ;;
    test)
      ensure_built || continue
      run_phase "test (GPU regressions, issue 23)" "$OUT/test.log" \
        $PY -m pytest tests/test_gpu_kernel_regressions.py tests/test_triton_normalization.py \
        -k "test_gpu_kernel_regressions or constant or tiny_spread" -q -ra -p no:cacheprovider
      grep -E "passed|failed" "$OUT/test.log" | tail -1 | sed 's/^/    /' >>"$SUMMARY"
      run_phase "test (CUDA)" "$OUT/test.log" \
        $PY -m pytest tests/test_cuda_normalization.py tests/test_cuda_gan_loss.py \
        tests/test_triton_gan_loss.py tests/test_cuda_build.py -q -ra -p no:cacheprovider
      grep -E "^[0-9]+ (passed|failed)|passed|failed" "$OUT/test.log" | tail -1 | sed 's/^/    /' >>"$SUMMARY"
      run_phase "test (whole suite)" "$OUT/test.log" $PY -m pytest tests -q -ra -p no:cacheprovider
      grep -E "passed|failed" "$OUT/test.log" | tail -1 | sed 's/^/    /' >>"$SUMMARY"
      ;;
    sanitize)
      ensure_built || continue
      if command -v compute-sanitizer >/dev/null; then
        for tool in memcheck racecheck synccheck; do
          run_phase "sanitize ($tool)" "$OUT/sanitize.log" compute-sanitizer --tool "$tool" \
            --error-exitcode 1 --target-processes all $PY benchmarks/cuda_kernels.py exercise
        done
        grep -E "ERROR SUMMARY|RACECHECK SUMMARY|exercise:" "$OUT/sanitize.log" | sed 's/^/    /' >>"$SUMMARY"
      else
        note "- sanitize: skipped (compute-sanitizer not found)"
      fi
      ;;
    bench-large|bench-method)
      ensure_built || continue
      shapes=${phase#bench-}
      floors=()
      [ "$shapes" = large ] && floors=(--check-floors)  # the issue's GPU floors are at these shapes
      for dtype in bfloat16 float32; do
        run_phase "$phase $dtype" "$OUT/bench.log" bench "$shapes" "$dtype" "${floors[@]}"
      done
      tar czf "$OUT/bench-results.tar.gz" -C "$RESULTS" . 2>/dev/null
      ;;
    bench-train)
      ensure_built || continue
      # MUNIT's official config runs batch 1; the issue's GPU floor is at batch 8.
      for run in "munit edges2shoes" "stargan_v2 afhq"; do
        read -r method config <<<"$run"
        run_phase "bench-train $method $config" "$OUT/bench-train.log" \
          $PY -m i2i_fast.cli bench method "$method" --config "$config" --set batch_size=8 \
          --set image_size=256 --device cuda --precision bf16 --reference-precision fp32 \
          --channels-last --iterations "${TRAIN_ITERATIONS:-20}" --out "$RESULTS" --check-floors
        grep -E "ms/iteration|PASS|FAIL|no floor" "$OUT/bench-train.log" | tail -8 | sed 's/^/    /' >>"$SUMMARY"
      done
      tar czf "$OUT/bench-results.tar.gz" -C "$RESULTS" . 2>/dev/null
      ;;
    bench-losses)
      ensure_built || continue
      for dtype in float32 bfloat16; do
        run_phase "bench-losses $dtype" "$OUT/bench-losses.log" $PY -m i2i_fast.cli bench losses \
          --device cuda --cases munit_d,munit_g,stargan_v2_d,r1 --dtype "$dtype" \
          --repeats "${BENCH_REPEATS:-50}" --out "$RESULTS" --no-overhead
      done
      tar czf "$OUT/bench-results.tar.gz" -C "$RESULTS" . 2>/dev/null
      ;;
    profile)
      ensure_built || continue
      run_phase "profile (torch.profiler)" "$OUT/profile.md" $PY benchmarks/cuda_kernels.py profile
      if command -v ncu >/dev/null; then
        # --clock-control none: measure the card as it is (never lock its clocks).
        run_phase "profile (ncu)" "$OUT/ncu.txt" ncu --target-processes all --clock-control none \
          --kernel-name-base demangled --kernel-name "regex:i2i_fast" --launch-count 40 \
          --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
          --section LaunchStats $PY benchmarks/cuda_kernels.py ncu-target
      else
        note "- profile (ncu): skipped (ncu not found)"
      fi
      ;;
    *)
      note "- unknown phase '$phase' (expected build, test, sanitize, bench-large, bench-method, bench-train, bench-losses, profile)"
      status=1
      ;;
  esac
done

if [ -f "$OUT/bench.log" ]; then
  # The tables and the floor verdicts of every bench phase so far, from the log.
  {
    echo
    echo "## Benchmark tables and floors"
    echo
    awk '/^# i2i-fast bench ops/{print; print ""} /^\| op \| shape/{p=1} p&&/^\|/{print}
         p&&!/^\|/{p=0} /^(PASS|FAIL) /{print "    " $0}' "$OUT/bench.log"
  } >>"$SUMMARY"
fi
if [ -f "$OUT/bench-losses.log" ]; then
  {
    echo
    echo "## Loss benchmark tables"
    echo
    awk '/^# i2i-fast bench losses/{print; print ""} /^\| case \| mode/{p=1} p&&/^\|/{print}
         p&&!/^\|/{p=0} / skipped \(/{print "    " $0}' "$OUT/bench-losses.log"
  } >>"$SUMMARY"
fi
echo
cat "$SUMMARY"
exit $status
