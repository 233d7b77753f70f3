#!/usr/bin/env bash
# One prepared run of evoaug's GPU checks and benchmarks, writing its tables to a results folder.
#
#   bench/gpu.sh [RESULTS_DIR]          # default: bench/results/gpu (ignored by git)
#
# Steps (STEPS, default "tests throughput search_cost overhead", in this order); each has its own
# time limit, so one slow step cannot starve the rest, and each writes its log to RESULTS_DIR as
# it goes. The default steps' limits sum to 590 s, and no step runs past BUDGET (default 590 s)
# from the script's start: the whole run fits in 10 minutes.
#   tests       (60 s)  the CUDA tests (kernels on CUDA agree with the CPU; evaluator isolation);
#   throughput  (70 s)  bench/throughput.py --device cuda, kornia's rows included (the `bench`
#                       extra: installed from WHEELS or the package index when missing; without
#                       it the kornia rows are skipped with a note);
#   search_cost (110 s) bench/search_cost.py --device cuda (one-by-one and vectorized look-ahead);
#   overhead    (350 s) bench/callback_overhead.py: fit time with the callback over fixed
#                       TrivialAugment, ResNet-18 on 10k CIFAR-10 images, 20 epochs, medians of
#                       3 repeats (goal: <= 1.25x); each fit stopped after 100 s;
#   quality     (only by name, STEPS=quality: over 10 minutes) bench/quality.py on CIFAR-10 and
#               UTKFace, 3 seeds x 6 arms, one process per dataset and seed, sharing the GPU.
# Every script writes its section into RESULTS_DIR/benchmarks.md (a copy of docs/benchmarks.md);
# bench/merge_sections.py copies chosen sections from there into docs/benchmarks.md.
#
# Environment: PYTHON (default .venv/bin/python when it exists, else python3), CIFAR_TAR and
# UTKFACE_TAR (the archives; default ../shared/data/...), CACHE (where they are extracted),
# WHEELS (a folder of wheels to install first, for a machine without a package index; put
# kornia's and kornia_rs's wheels for the machine's Python there for the kornia rows),
# QUICK=1 (a short smoke run), DEVICE=cpu (a dry run of the plumbing on a machine without GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${1:-bench/results/gpu}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
CIFAR_TAR=${CIFAR_TAR:-../shared/data/cifar10_jpg.tar.gz}
UTKFACE_TAR=${UTKFACE_TAR:-../shared/data/utkface_crop_part1_jpg.tar.gz}
CACHE=${CACHE:-$HOME/.cache/evoaug-bench}
QUICK=${QUICK:-0}
STEPS=${STEPS:-tests throughput search_cost overhead}
BUDGET=${BUDGET:-590}  # seconds from the start that the steps may use, all together
if [[ ${DEVICE:-cuda} == cpu ]]; then DEV=cpu ACCEL=cpu; else DEV=cuda ACCEL=gpu; fi
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1 JSONARGPARSE_DEPRECATION_WARNINGS=off
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [[ -n "${WHEELS:-}" ]]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/evoaug-site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/evoaug-site"
fi

[[ -f "$RESULTS/benchmarks.md" ]] || cp docs/benchmarks.md "$RESULTS/benchmarks.md"
DOCS=(--docs "$RESULTS/benchmarks.md")
status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to RESULTS/NAME.log
    local name=$1 limit=$2 left=$((BUDGET - SECONDS))
    shift 2
    if ((left < limit)); then limit=$left; fi
    if ((limit < 10)); then
        echo "=== $name: skipped, ${left}s left of the ${BUDGET}s budget"
        status=1
        return
    fi
    echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s)"
    timeout "$limit" "$@" >"$RESULTS/$name.log" 2>&1
    local rc=$?
    tail -n 20 "$RESULTS/$name.log"
    echo "=== $name: exit $rc ($(date -u +%H:%M:%S))"
    [[ $rc -eq 0 ]] || status=1
}
wants() { [[ " $STEPS " == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

if [[ $QUICK == 1 ]]; then
    EPOCHS=(--epochs 2) REPEATS=1 SEEDS=(0) LIMIT=(--limit-train 1000 --limit-test 500)
    SMALL=(--quick) COST=(--repeats 1 --population 4 --skip-resnet)
else
    EPOCHS=() REPEATS=3 SEEDS=(0 1 2) LIMIT=(--limit-train 10000 --limit-test 2000)
    SMALL=() COST=()
fi

# kornia, a peer in the throughput step: the `bench` extra's requirement, read from pyproject.
if wants throughput && ! "$PYTHON" -c "import kornia" 2>/dev/null; then
    read -ra bench_extra < <("$PYTHON" - 2>/dev/null <<'PY'
import tomllib
with open("pyproject.toml", "rb") as f:
    print(*tomllib.load(f)["project"]["optional-dependencies"]["bench"])
PY
    )
    echo "installing the bench extra: ${bench_extra[*]:-(not found in pyproject.toml)}"
    if ((${#bench_extra[@]} == 0)) || ! timeout 30 "$PYTHON" -m pip install -q --retries 0 \
        --timeout 10 "${bench_extra[@]}"; then
        echo "note: kornia (the bench extra) is not installed; the throughput step skips its rows"
    fi
fi

if wants tests; then
    step cuda_tests 60 "$PYTHON" -m pytest -q -x -p no:cacheprovider -o addopts="-ra" \
        tests/ops/test_kernels.py tests/evaluate/test_evaluator_isolation.py tests/test_pipeline.py \
        tests/evaluate/test_evaluator_vectorized.py tests/ops/test_uint8.py \
        tests/ops/test_nearest.py tests/evaluate/test_evaluator_layout.py
fi
if wants throughput; then
    step throughput 70 "$PYTHON" bench/throughput.py --device "$DEV" "${SMALL[@]}" --write-docs "${DOCS[@]}"
fi
if wants search_cost; then
    step search_cost 110 "$PYTHON" bench/search_cost.py --device "$DEV" "${COST[@]}" --write-docs "${DOCS[@]}"
fi
if wants overhead; then
    step callback_overhead 350 "$PYTHON" bench/callback_overhead.py --dataset cifar10 \
        --cifar-tar "$CIFAR_TAR" --cache "$CACHE" "${LIMIT[@]}" \
        --epochs "$([[ $QUICK == 1 ]] && echo 2 || echo 20)" --model resnet18 --batch-size 128 \
        --lr 0.1 --repeats "$REPEATS" --fit-timeout 100 --accelerator "$ACCEL" \
        --write-docs "${DOCS[@]}"
fi
if wants quality; then
    "$PYTHON" - "$CIFAR_TAR" "$UTKFACE_TAR" "$CACHE" <<'PY' || status=1
import sys
sys.path.insert(0, "bench")
from _common import extract_archive
cifar, utkface, cache = sys.argv[1:]
print(extract_archive(cifar, cache, contains="train"))
print(extract_archive(utkface, cache, contains="crop_part1"))
PY
    pids=()
    for dataset in cifar10 utkface; do  # one process per dataset and seed, sharing the GPU
        for seed in "${SEEDS[@]}"; do
            timeout 300 "$PYTHON" bench/quality.py --datasets "$dataset" --seeds "$seed" \
                --cifar-tar "$CIFAR_TAR" --utkface-tar "$UTKFACE_TAR" --cache "$CACHE" \
                "${LIMIT[@]}" "${EPOCHS[@]}" --accelerator "$ACCEL" \
                --results "$RESULTS/quality.jsonl" >"$RESULTS/quality_${dataset}_$seed.log" 2>&1 &
            pids+=($!)
        done
    done
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    step quality_table 60 "$PYTHON" bench/quality.py --table-only --datasets cifar10 utkface \
        --seeds "${SEEDS[@]}" "${LIMIT[@]}" "${EPOCHS[@]}" --results "$RESULTS/quality.jsonl" \
        --accelerator "$ACCEL" --section quality_gpu --write-docs "${DOCS[@]}"
fi
echo "results in $RESULTS (status $status, ${SECONDS}s)"
exit $status
