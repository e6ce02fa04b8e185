#!/usr/bin/env bash
# The GPU check: every CUDA path of the library and its GPU figures, in one run on a machine
# with a CUDA GPU, within a time budget; ends with one summary table.
#
#   bash benchmarks/gpu_check.sh [tests|bench|all]        (default: all)
#
#   tests: pytest -m cuda, then the rest of the test suite on the GPU machine (pytest-xdist's
#          -n when installed), where device="auto" means the GPU
#   bench: bench_compile.py (compile=True against the eager hand loop, 32x32x3, batch 512),
#          bench_throughput.py --device cuda, bench_transfer.py --device cuda
#
# Environment: GPU_CHECK_BUDGET (seconds for the whole run, default 900: a step that would
# start with under a minute left is skipped and says so), PYTHON (default python3), OUT (the
# folder for the logs and summary.md, default /tmp/gpu_check). Wheels in .whl/ (packages the
# machine lacks, e.g. skorch) are installed to /tmp/site first, without a network.
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
PY=$(command -v "${PYTHON:-python3}")
[[ $PY == /* ]] || PY="$PWD/$PY"
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
budget=${GPU_CHECK_BUDGET:-900}
started=$SECONDS
summary="$OUT/summary.md"
printf '| step | exit | seconds | result |\n|---|---|---|---|\n' >"$summary"

if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export MPLBACKEND=Agg

"$PY" - <<'EOF' | tee "$OUT/machine.txt"
import importlib.metadata as m, platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA",
      torch.version.cuda, "|", torch.cuda.get_device_name() if torch.cuda.is_available()
      else "NO GPU")
print(" | ".join(f"{p} {m.version(p)}" for p in ["scikit-learn", "skorch", "torchvision",
      "timm", "numpy", "onnxruntime", "skl2onnx", "distributed"]))
EOF

# step NAME CAP_SECONDS RESULT_PATTERN COMMAND...: runs COMMAND with a timeout of CAP_SECONDS
# or what is left of the budget, logs to $OUT/NAME.log, and adds a row to the summary.
step() {
    local name=$1 cap=$2 pattern=$3
    shift 3
    local left=$((budget - (SECONDS - started)))
    if ((left < 60)); then
        echo "| $name | skipped | 0 | out of time (budget ${budget} s) |" >>"$summary"
        return
    fi
    local limit=$((cap < left ? cap : left)) t0=$SECONDS
    echo "=== $name (up to $limit s): $*"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 40 "$OUT/$name.log"
    local result
    result=$(grep -E "$pattern" "$OUT/$name.log" | tail -n 1 | tr '|' '/' | cut -c1-150)
    if ((rc == 124 || rc == 137)); then  # killed: count the outcomes printed so far
        result="timed out after $limit s; so far $(grep -c ' PASSED' "$OUT/$name.log") passed,"
        result+=" $(grep -c ' FAILED' "$OUT/$name.log") failed,"
        result+=" $(grep -c ' ERROR' "$OUT/$name.log") errors"
    fi
    echo "| $name | $rc | $((SECONDS - t0)) | ${result:-see $name.log} |" >>"$summary"
}

xdist=()
if "$PY" -c "import xdist" 2>/dev/null; then
    xdist=(-n "$(($(nproc) / 2 > 8 ? 8 : $(nproc) / 2))")
fi

wants() { [[ $what == all || $what == "$1" ]]; }
# The order spends a short budget on what matters most: the CUDA tests, the compile figure,
# the rest of the suite, then the throughput tables.
if wants tests; then
    step cuda-tests 300 "passed|failed|error" \
        "$PY" -m pytest -m cuda -q -p no:cacheprovider -rfEs tests
fi
if wants bench; then
    (cd benchmarks && step bench_compile 300 "compile=True\*\*" \
        "$PY" bench_compile.py --device cuda)
fi
if wants tests; then
    # -v: each test's outcome is logged as it finishes, also when the budget cuts the run.
    step test-suite 600 "passed|failed|error" \
        env OMP_NUM_THREADS=2 "$PY" -m pytest -m "not cuda" -v --tb=short -p no:cacheprovider \
        -rfE "${xdist[@]}"
fi
if wants bench; then
    cd benchmarks
    step bench_throughput 300 "CNNClassifier.fit\*\*" "$PY" bench_throughput.py --device cuda
    step bench_transfer 300 "freeze=" "$PY" bench_transfer.py --device cuda
    cd ..
fi
echo
cat "$summary"
