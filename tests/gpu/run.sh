#!/usr/bin/env bash
# The whole GPU check, in one command, on a machine with an NVIDIA GPU and PyTorch
# (the accelerator machine: no Bazel, no gRPC), from the bundle tests/gpu/bundle.sh
# built on a Debian 12 machine with --config=cuda:
#
#   tests/gpu/run.sh [--bundle DIR] [--only STEP[,STEP...]]
#
# Steps: machine (facts and library checks), tests (the GPU tests), job (a 2-epoch job
# through coordinator + GPU worker with checkpoints and a resume), tworanks (two ranks
# sharing one GPU through Gloo), bf16 (one WikiText-2 epoch, BF16 vs FP32 perplexity),
# bench (ddlm against upstream word_language_model's main.py on the same GPU).
# Prints each step's result, the benchmark table, and a final "N passed, N failed" line;
# exits non-zero on any failure. DDLM_GPU_CHECK_DEVICE=cpu runs the same script on a
# machine without a GPU (a dry run of the script itself: GPU tests then skip).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
bundle=.gpu_bundle
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
bundle=$(cd "$bundle" 2>/dev/null && pwd) || { echo "run.sh: no bundle (run tests/gpu/bundle.sh first)" >&2; exit 2; }
device=${DDLM_GPU_CHECK_DEVICE:-cuda:0}
work=${DDLM_GPU_CHECK_DIR:-$(mktemp -d /tmp/ddlm-gpu-check.XXXXXX)}
mkdir -p "$work"
bin=$bundle/bin
data=$bundle/data/wikitext-2
passed=0
failed=0
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
wanted() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }
ok() { echo "PASS $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
section() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------- machine
section "machine"
uname -srm
(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
glibc=$(ldd --version | head -1 | awk '{print $NF}')
echo "glibc $glibc"
nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
cat "$bundle/MANIFEST"
python=${PYTHON:-python3}
torch_dir=$($python -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)
torch_version=$($python -c 'import torch; print(torch.__version__)' 2>/dev/null)
echo "torch $torch_version at $torch_dir"
want_torch=$(sed -n 's/^torch_version=//p' "$bundle/MANIFEST")
want_glibc=$(sed -n 's/^glibc_needed=//p' "$bundle/MANIFEST")
if [ -z "$torch_dir" ]; then
  bad "machine: python3 has no torch (set PYTHON=)"; echo "0 passed, 1 failed"; exit 1
fi
if [ "${torch_version%%+*}" != "$want_torch" ]; then
  bad "machine: torch $torch_version here, the bundle was built against $want_torch (one LibTorch per process: rebuild with the matching wheel)"
fi
if [ "$(printf '%s\n%s\n' "$want_glibc" "$glibc" | sort -V | head -1)" != "$want_glibc" ]; then
  bad "machine: glibc $glibc is older than the bundle's $want_glibc: build here with CMake instead"
fi
site=$(dirname "$torch_dir")
libpath="$bundle/lib:$torch_dir/lib"
for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && libpath="$libpath:$d"; done
export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Debian 12's libstdc++ only where this machine's is older than what the binaries need.
if ldd "$bin/worker/ddlm_worker" 2>&1 | grep -q "GLIBCXX.*not found"; then
  export LD_LIBRARY_PATH="$bundle/lib-fallback:$LD_LIBRARY_PATH"
  echo "using the bundled libstdc++"
fi
missing=0
while read -r f; do
  if ldd "$f" 2>&1 | grep -E "not found" >/dev/null; then
    echo "$f:"; ldd "$f" | grep "not found"; missing=1
  fi
done < <(find "$bin" -type f)
# One LibTorch, one CUDA runtime, one NCCL: every copy the worker loads comes from torch.
loaded=$(ldd "$bin/worker/ddlm_worker" | grep -E "libtorch|libc10|libcudart|libnccl" || true)
echo "$loaded"
if [ "$missing" = 0 ] && ! echo "$loaded" | grep -v "$site" | grep -q "=>"; then
  ok "machine: every library resolves; LibTorch, cudart and NCCL come from $site"
else
  bad "machine: unresolved libraries, or LibTorch/cudart/NCCL from outside $site"
fi
export TEST_TMPDIR=$work/tmp
mkdir -p "$TEST_TMPDIR"

# A gtest binary: passes when it ran, nothing failed and (on a GPU) nothing skipped.
gtest() {
  local name=$1; shift
  local log="$work/$(basename "$name").log"
  "$bin/$name" "$@" > "$log" 2>&1
  local rc=$?
  grep -E "^(rel|[A-Z_]+:|.*: (step|validation|largest)|.*workers x batch|NCCL world|out-of-memory)" "$log" | grep -v "^\[" | head -40
  local skipped; skipped=$(grep -c "^\[  SKIPPED \]" "$log" || true)
  local summary; summary=$(grep -E "^\[  (PASSED|FAILED) " "$log" | tr '\n' ' ')
  if [ "$rc" = 0 ] && { [ "$device" = cpu ] || [ "$skipped" = 0 ]; }; then
    ok "$name $summary"
  else
    grep -E "Failure|Expected|Which is|actual|SKIPPED" "$log" | head -30
    bad "$name (exit $rc) $summary skipped: $skipped"
  fi
}

# ---------------------------------------------------------------- tests
if wanted tests; then
  section "GPU tests"
  gtest common/training/device_test
  gtest tests/gpu/gpu_training_test
  gtest tests/gpu/nccl_collective_test
  gtest worker/data_parallel_equivalence_test --gtest_filter='*Gpu*'
fi

# A quickstart job spec for the job steps.
job_config() {  # epochs, every_n_steps, batch
  cat <<CFG
name: "gpu-check"
data { path: "$repo/configs/quickstart_data" batch_size: $3 }
model { type: LSTM emsize: 128 nhid: 128 nlayers: 2 dropout: 0.2 }
optimizer { lr: 20 }
schedule { epochs: $1 log_interval: 40 }
checkpoint { path: "$work/best.pt" every_n_steps: $2 keep_last: 2 }
CFG
}

# ---------------------------------------------------------------- job
if wanted job; then
  section "2-epoch job through coordinator + $device worker, checkpoints, resume"
  job_config 2 60 20 > "$work/job.textproto"
  "$bin/coordinator/ddlm_coordinator" --port 0 --host 127.0.0.1 --state_dir "$work/state" --insecure \
    > "$work/coordinator.log" 2>&1 &
  pids+=($!)
  address=""
  for _ in $(seq 100); do
    address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$work/coordinator.log" | head -1)
    [ -n "$address" ] && break
    sleep 0.1
  done
  "$bin/worker/ddlm_worker" --coordinator "$address" --host 127.0.0.1 --device "$device" --insecure \
    --worker_id gpu-check > "$work/worker.log" 2>&1 &
  pids+=($!)
  ddlm() { "$bin/coordinator/cli/ddlm" --coordinator "$address" --insecure "$@"; }
  if ddlm submit --config "$work/job.textproto" --watch > "$work/submit.log" 2>&1; then
    job=$(sed -n 's/^submitted \([^ ]*\).*/\1/p' "$work/submit.log")
    grep -E "end of epoch|checkpoint|End of training" "$work/submit.log"
    ok "job $job: 2 epochs on $device, SUCCEEDED"
    if ddlm resume "$job" --epochs 3 --watch > "$work/resume.log" 2>&1; then
      grep -E "resumed|end of epoch|End of training" "$work/resume.log"
      ok "job $job: resumed from its last checkpoint to a 3rd epoch"
    else
      tail -20 "$work/resume.log"; bad "resume of $job"
    fi
    ddlm checkpoints "$job" | tail -5
    ddlm generate "$job" --words 12 && ok "generate from the GPU-trained checkpoint" || bad "generate"
    grep -m1 "connected on" "$work/worker.log"
  else
    tail -30 "$work/submit.log" "$work/worker.log"; bad "2-epoch job on $device"
  fi
  cleanup; pids=()
fi

# ---------------------------------------------------------------- tworanks
if wanted tworanks; then
  section "two ranks on one GPU ($device), gradients through Gloo"
  job_config 1 0 10 > "$work/two.textproto"
  if (cd "$work" && "$bin/coordinator/cli/ddlm" launch --config "$work/two.textproto" --workers 2 \
        --device "$device" --collective gloo --state_dir "$work/two-state" --insecure) > "$work/two.log" 2>&1; then
    grep -E "end of epoch|End of training" "$work/two.log"
    ok "2 ranks on $device with Gloo: job SUCCEEDED"
  else
    tail -20 "$work/two.log"; tail -20 "$work"/two-state/logs/worker-*.log; bad "2 ranks on $device"
  fi
fi

# ---------------------------------------------------------------- bf16
if wanted bf16 && [ -f "$data/train.txt" ]; then
  section "one WikiText-2 epoch of the default LSTM: BF16 vs FP32"
  declare -A ppl
  for p in fp32 bf16; do
    "$bin/worker/ddlm_train" --data "$data" --epochs 1 --device "$device" --precision "$p" \
      --save "$work/$p.pt" --log_interval 1000 > "$work/epoch-$p.log" 2>&1
    ppl[$p]=$(sed -n 's/.*end of epoch.*valid ppl *\([0-9.]*\).*/\1/p' "$work/epoch-$p.log" | head -1)
    grep -E "end of epoch|End of training" "$work/epoch-$p.log"
  done
  if [ -n "${ppl[fp32]}" ] && [ -n "${ppl[bf16]}" ] &&
     awk -v a="${ppl[fp32]}" -v b="${ppl[bf16]}" 'BEGIN { d = (b - a) / a; if (d < 0) d = -d; exit !(d <= 0.02) }'; then
    ok "BF16 valid ppl ${ppl[bf16]} within 2% of FP32 ${ppl[fp32]}"
  else
    bad "BF16 valid ppl '${ppl[bf16]}' vs FP32 '${ppl[fp32]}' (more than 2% apart, or a run failed)"
  fi
fi

# ---------------------------------------------------------------- bench
if wanted bench && [ -f "$data/train.txt" ] && [ -f "$bundle/upstream/main.py" ]; then
  section "benchmark: ddlm vs upstream word_language_model on $device"
  rounds=${DDLM_BENCH_ROUNDS:-2}
  # Upstream's tokens/s: batch 20 x bptt 35 over the median ms/batch of its log lines
  # after the first (warm-up) interval, from one epoch with log interval 100.
  upstream() {  # precision, then main.py's model flags
    local precision=$1; shift
    local accel=--accel; [ "$device" = cpu ] && accel=""
    local prelude="import sys, runpy"
    # BF16: upstream has no flag; run it under a global autocast (its forward passes).
    [ "$precision" = bf16 ] && prelude="$prelude; import torch; torch.autocast('cuda', dtype=torch.bfloat16).__enter__()"
    (cd "$bundle/upstream" && timeout 600 $python -c "$prelude; sys.argv = ['main.py'] + sys.argv[1:]; runpy.run_path('main.py', run_name='__main__')" \
      $accel --data "$data" --epochs 1 --log-interval 100 --save "$work/upstream.pt" "$@" 2>&1) |
      sed -n 's/.*ms\/batch *\([0-9.]*\).*/\1/p' | tail -n +2 | sort -n |
      awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; m = v[int((NR + 1) / 2)]; printf "%.0f\n", 20 * 35 * 1000 / m }'
  }
  ddlm_bench() {  # precision, config
    "$bin/common/benchmarks/train_throughput" --device "$device" --precision "$1" --config "$repo/$2" \
      --data "$data" --warmup 50 --batches 500 2>&1 | sed -n 's/.*ms\/batch, \([0-9]*\) tokens\/s.*/\1/p'
  }
  median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
  device_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  table="| model | precision | upstream tokens/s | ddlm tokens/s | ddlm / upstream |\n| --- | --- | ---: | ---: | ---: |\n"
  below=0
  for m in "LSTM 200/200|configs/lstm.textproto|--model LSTM" \
           "LSTM 650/650|configs/lstm_650.textproto|--model LSTM --emsize 650 --nhid 650 --dropout 0.5" \
           "Transformer|configs/transformer.textproto|--model Transformer --lr 5"; do
    IFS='|' read -r label config flags <<<"$m"
    for p in fp32 bf16; do
      u_all=""; d_all=""
      for _ in $(seq "$rounds"); do  # Interleaved: upstream, ddlm, upstream, ddlm.
        u_all="$u_all $(upstream "$p" $flags)"
        d_all="$d_all $(ddlm_bench "$p" "$config")"
      done
      u=$(echo "$u_all" | median); d=$(echo "$d_all" | median)
      ratio=$(awk -v a="$u" -v b="$d" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "n/a" }')
      echo "$label $p: upstream [$u_all ] ddlm [$d_all ] -> ${ratio}x"
      table="$table| $label | $p | $u | $d | ${ratio}x |\n"
      awk -v r="$ratio" 'BEGIN { exit !(r >= 1.3) }' || below=$((below + 1))
    done
  done
  printf '\nOn %s (%s), torch %s, %s round(s) each, medians:\n\n' "${device_name:-$device}" "$device" "$torch_version" "$rounds"
  printf '%b\n' "$table" | tee "$work/benchmark.md"
  if [ "$below" = 0 ]; then ok "ddlm >= 1.3x upstream for every model and precision"; else bad "$below row(s) below 1.3x upstream"; fi
fi

section "summary (logs in $work)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
