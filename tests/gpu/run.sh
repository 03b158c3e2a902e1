#!/usr/bin/env bash
# shellcheck disable=SC2317  # The steps are called indirectly: "step_$name".
# The GPU check, on a machine with an NVIDIA GPU and PyTorch (the accelerator machine: no
# Bazel, no gRPC), from the archive tests/gpu/bundle.sh built on a Debian 12 machine with
# --config=cuda. Two commands, each within 7 minutes:
#
#   tests/gpu/run.sh check [--bundle .gpu_bundle.tar.xz|DIR] [--only STEP[,STEP...]]
#   tests/gpu/run.sh bench [--bundle .gpu_bundle.tar.xz|DIR]
#
# check: machine (facts, library checks, the torch version: a missing torch or another
# version stops everything at once), tests (the GPU tests), job (a 2-epoch job through
# coordinator + worker with checkpoints and a resume), tworanks (two ranks sharing one GPU
# through Gloo), bf16 (one WikiText-2 epoch of the default LSTM, BF16 vs FP32 perplexity).
# bench: machine, then ddlm against upstream word_language_model's main.py on the same GPU
# and a truncated WikiText-2, as a table (ratios reported, not gated).
#
# Each step runs under `timeout` in its own process group (killed whole on timeout, and
# then a FAIL naming the limit); prints "step NAME: PASS|FAIL in S s"; the last line is
# "N passed, N failed" (steps); exits non-zero on any failure. Logs, a summary and the
# benchmark table go to $OUT when set, else to the work directory.
#
# The archive is extracted once under /tmp (reused for the same archive); --bundle DIR
# takes an extracted tree. LD_LIBRARY_PATH (the bundle's libraries, then torch's, then
# the wheel's CUDA libraries) is set for ddlm's binaries only, never for python.
#
# Environment: PYTHON (default python3: the python with torch), DDLM_GPU_CHECK_DEVICE
# (default cuda:0; cpu: a dry run of the script on a machine without a GPU, where the GPU
# tests skip and the data is cut short), DDLM_GPU_CHECK_DIR (the work directory),
# DDLM_BENCH_TRAIN_LINES (bench: train.txt lines, default 9000; 60 on cpu),
# DDLM_BF16_TRAIN_LINES (bf16: train.txt lines, default all; 200 on cpu),
# DDLM_GPU_CHECK_TIME_SCALE and DDLM_GPU_CHECK_LIMITS (see the limits below),
# DDLM_GPU_CHECK_BUDGET_S (the whole command's seconds, when the device has less left).
set -uo pipefail
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY grpc_proxy
# NCCL's cuMem allocations fail in some sandboxes (gVisor); plain cudaMalloc works anywhere.
export NCCL_CUMEM_ENABLE=0
# One host: NCCL's bootstrap on loopback, not an interface it guesses (sandboxed networks).
export NCCL_SOCKET_IFNAME=lo
cd "$(dirname "$0")/../.." || exit 2
repo=$(pwd)
self=$repo/tests/gpu/run.sh
# shellcheck source=tests/gpu/gates.sh
source "$repo/tests/gpu/gates.sh"

# Seconds on a GPU. Each command's limits, its extraction's and each step's kill grace
# included, add up to 420 (7 minutes): check 15 + 60 + 100 + 90 + 40 + 90 + 5 x 5,
# bench 15 + 60 + 335 + 2 x 5. The machine step's 60 s leave a cold first import of torch
# and CUDA (several GB of libraries) room for one retry. DDLM_GPU_CHECK_LIMITS=step=seconds,... overrides some.
# A CPU dry run multiplies the steps' limits (and the limits of the runs inside them) by
# DDLM_GPU_CHECK_TIME_SCALE (default 3 there, 1 on a GPU): the same work is slower there.
kill_grace=5
extract_limit=15
declare -A limits=([machine]=60 [tests]=100 [job]=90 [tworanks]=40 [bf16]=90 [bench]=335)

# ---------------------------------------------------------------- helpers (steps)
failures=0
ok() { echo "PASS $*"; }
bad() { echo "FAIL $*"; failures=$((failures + 1)); }
now() { date +%s; }
seconds_since() { LC_ALL=C awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# $OUT/logs.tar.gz: every log under the work directory so far (replaced whole, never half
# written).
publish_logs() {
  (cd "$work" && shopt -s nullglob && tar -czf "$OUT/logs.tar.gz.partial" logs step-*.log 2>/dev/null &&
    mv "$OUT/logs.tar.gz.partial" "$OUT/logs.tar.gz") || rm -f "$OUT/logs.tar.gz.partial"
}

# $OUT/benchmark.md: the table so far, if any (replaced whole, never half written).
publish_benchmark() {
  [ -f "$work/benchmark.md" ] || return 0
  { cp "$work/benchmark.md" "$OUT/benchmark.md.partial" && mv "$OUT/benchmark.md.partial" "$OUT/benchmark.md"; } ||
    rm -f "$OUT/benchmark.md.partial"
}

# The environment of ddlm's binaries (and of nothing else): the bundle's, torch's and
# CUDA's libraries first.
set_ddlm_env() { ddlm_env=(env "LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"); }

# ddlm_bin NAME ARGS...: one of ddlm's binaries, in that environment.
ddlm_bin() {
  local name=$1; shift
  "${ddlm_env[@]}" "$bin/$name" "$@"
}

# limited SECONDS LOG COMMAND...: COMMAND (or `ddlm_bin NAME ARGS...`) under timeout,
# output to LOG, for at most SECONDS and never past the step's own limit. Sets
# limited_note to why it failed ("timed out after 60 s", "exit 1"), limited_secs to how
# long it ran.
limited() {
  local want=$(($1 * time_scale)) log=$2 left rc t0=$EPOCHREALTIME; shift 2
  limited_secs=0
  left=$((step_deadline - $(now) - 3))
  [ "$left" -lt "$want" ] && want=$left
  limited_note=""
  if [ "$want" -lt 2 ]; then
    limited_note="not started: the step's time limit was reached"
    echo "$limited_note" > "$log"
    return 124
  fi
  if [ "$1" = ddlm_bin ]; then
    local name=$2; shift 2
    set -- "${ddlm_env[@]}" "$bin/$name" "$@"
  fi
  timeout -k 2 "$want" "$@" > "$log" 2>&1 < /dev/null
  rc=$?
  limited_secs=$(seconds_since "$t0")
  case $rc in
    0) ;;
    124|137) limited_note="timed out after $want s" ;;
    *) limited_note="exit $rc" ;;
  esac
  return "$rc"
}

# First lines of WikiText-2 into DIR: N of train.txt, N/10 (at least 20) of valid and test.
cut_corpus() {  # DIR N
  local dir=$1 n=$2 eval_n=$(($2 / 10))
  [ "$eval_n" -lt 20 ] && eval_n=20
  mkdir -p "$dir"
  head -n "$n" "$data/train.txt" > "$dir/train.txt" &&
    head -n "$eval_n" "$data/valid.txt" > "$dir/valid.txt" &&
    head -n "$eval_n" "$data/test.txt" > "$dir/test.txt" &&
    [ -s "$dir/train.txt" ] && [ -s "$dir/valid.txt" ] && [ -s "$dir/test.txt" ]
}

# Fails naming each WikiText-2 file the bundle lacks.
have_data() {
  local f missing=0
  for f in train valid test; do
    [ -s "$data/$f.txt" ] || { bad "missing input: WikiText-2 $f.txt (bundle's data/wikitext-2/$f.txt; bundle.sh --data)"; missing=1; }
  done
  return "$missing"
}

# ---------------------------------------------------------------- machine
step_machine() {
  uname -srm
  (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
  local glibc; glibc=$(ldd --version | head -1 | awk '{print $NF}')
  echo "glibc $glibc, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "NCCL_CUMEM_ENABLE=$NCCL_CUMEM_ENABLE NCCL_SOCKET_IFNAME=$NCCL_SOCKET_IFNAME; proxies unset; device $device"
  if [ ! -f "$bundle/MANIFEST" ]; then
    echo "ABORT: $bundle has no MANIFEST: not a bundle from tests/gpu/bundle.sh"
    exit 3
  fi
  cat "$bundle/MANIFEST"
  local want_torch want_cuda want_glibc facts
  want_torch=$(sed -n 's/^torch_version=//p' "$bundle/MANIFEST")
  want_glibc=$(sed -n 's/^glibc_needed=//p' "$bundle/MANIFEST")
  local import_limit=$(((step_deadline - $(now) - 10) / 2)) rc attempt
  for attempt in 1 2; do  # Twice: a cold page cache can make the first import slow.
  facts=$(timeout "$import_limit" "$python" -c '
import os, torch
print(os.path.dirname(torch.__file__))
print(torch.__version__)
print(torch.version.cuda)
print(torch.cuda.is_available())
print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")
' 2> "$logs/python-torch.log")
  rc=$?
  [ "$rc" = 124 ] && [ "$attempt" = 1 ] && { echo "importing torch took over $import_limit s; once more"; continue; }
  break
  done
  if [ "$rc" != 0 ]; then
    tail -3 "$logs/python-torch.log"
    if [ "$rc" = 124 ]; then
      echo "ABORT: '$python' did not import torch within $import_limit s"
    else
      echo "ABORT: '$python' cannot import torch: the check needs a python3 with torch $want_torch (set PYTHON=)"
    fi
    exit 3
  fi
  local torch_dir torch_version torch_cuda cuda_ok gpu_name
  { read -r torch_dir; read -r torch_version; read -r torch_cuda; read -r cuda_ok; read -r gpu_name; } <<< "$facts"
  # After the import (whose time is worked out from the step's): a slow nvidia-smi here
  # costs the import nothing.
  timeout 10 nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi, or it took over 10 s)"
  echo "python $("$python" -c 'import sys; print(sys.version.split()[0])'), torch $torch_version at $torch_dir, $gpu_name"
  if [ -z "$want_torch" ] || [ "${torch_version%%+*}" != "$want_torch" ]; then
    echo "ABORT: torch $torch_version here, the bundle was built against '$want_torch' (one LibTorch per process: rebuild with the matching wheel)"
    exit 3
  fi
  # The same version for another CUDA (a +cu126 wheel) has other libraries under the
  # same names: on a GPU the CUDA version must match too.
  want_cuda=$(sed -n 's/^torch_cuda=//p' "$bundle/MANIFEST")
  if [ "$device" != cpu ] && [ "$torch_cuda" != "$want_cuda" ]; then
    echo "ABORT: torch here is built for CUDA $torch_cuda, the bundle's for '$want_cuda' (rebuild with the matching wheel)"
    exit 3
  fi
  local site; site=$(dirname "$torch_dir")
  libpath="$bundle/lib:$torch_dir/lib"
  local d
  for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && libpath="$libpath:$d"; done
  declare -p torch_dir torch_version site libpath gpu_name > "$work/machine.env"
  set_ddlm_env

  if [ "$device" != cpu ] && [ "$cuda_ok" != True ]; then
    bad "machine: torch sees no CUDA device (device $device)"
  fi
  if [ -z "$want_glibc" ]; then
    bad "machine: the bundle's MANIFEST names no glibc_needed"
  elif [ "$(printf '%s\n%s\n' "$want_glibc" "$glibc" | sort -V | head -1)" != "$want_glibc" ]; then
    bad "machine: glibc $glibc is older than the bundle's $want_glibc: build here with CMake instead"
  fi
  local f out versions="" missing=""
  while read -r f; do
    out=$("${ddlm_env[@]}" ldd "$f" 2>&1)
    versions="$versions $(sed -n "s/.*version \`\([^']*\)' not found.*/\1/p" <<< "$out")"
    missing="$missing $(awk '/=> not found/ {print $1}' <<< "$out")"
  done < <(find "$bin" -type f)
  local glibcxx other
  glibcxx=$(tr ' ' '\n' <<< "$versions" | grep -E '^(GLIBCXX|CXXABI)_' | sort -uV | paste -sd ' ')
  other=$(tr ' ' '\n' <<< "$versions" | grep . | grep -vE '^(GLIBCXX|CXXABI)_' | sort -uV | paste -sd ' ')
  missing=$(tr ' ' '\n' <<< "$missing" | grep . | sort -u | paste -sd ' ')
  if [ -n "$glibcxx" ]; then
    bad "machine: this machine's libstdc++ is older than the binaries need: $glibcxx not found (the bundle carries no libstdc++; $(sed -n 's/^glibcxx_needed=/needs GLIBCXX_/p' "$bundle/MANIFEST"))"
  fi
  if [ -n "$other" ]; then
    bad "machine: symbol versions not found: $other"
  fi
  if [ -n "$missing" ]; then
    bad "machine: libraries not found: $missing"
  fi
  # One LibTorch, one CUDA runtime, one NCCL: every copy the worker loads comes from torch.
  local loaded
  loaded=$("${ddlm_env[@]}" ldd "$bin/worker/ddlm_worker" |
           grep -E "libtorch|libc10|libcudart|libnccl" || true)
  echo "$loaded"
  if [ -z "$loaded" ] || echo "$loaded" | grep "=>" | grep -v "=> $site/" | grep -q .; then
    bad "machine: LibTorch/cudart/NCCL not all from $site"
  fi
  [ "$failures" = 0 ] && ok "machine: every library resolves; LibTorch, cudart and NCCL come from $site"
}

# ---------------------------------------------------------------- tests
# A gtest binary: passes when it ran, nothing failed and (on a GPU) nothing skipped.
gtest() {
  local name=$1; shift
  local log; log="$logs/$(basename "$name").log"
  limited 120 "$log" ddlm_bin "$name" "$@"
  local rc=$?
  grep -E "^(rel|[A-Z_]+:|.*: (step|validation|largest)|.*workers x batch|NCCL world|out-of-memory|.*ran in )" "$log" | grep -v "^\[" | head -40
  local skipped; skipped=$(grep -c "^\[  SKIPPED \]" "$log")
  local summary; summary=$(grep -E "^\[  (PASSED|FAILED) " "$log" | tr '\n' ' ')
  local ran; ran=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  # On a GPU every test must run and pass: none skipped, and at least one (a filter that
  # matches nothing passes vacuously).
  if [ "$rc" = 0 ] && { [ "$device" = cpu ] || { [ "$skipped" = 0 ] && [ "${ran:-0}" -gt 0 ]; }; }; then
    ok "$name $summary(skipped: $skipped)"
  else
    grep -E "Failure|Expected|Which is|actual|SKIPPED" "$log" | head -30
    tail -5 "$log"
    bad "$name (${limited_note:-exit 0}) $summary skipped: $skipped"
  fi
}

step_tests() {
  # cuBLAS is deterministic only with a fixed workspace (set before its first handle):
  # the exact-resume test compares bits.
  export CUBLAS_WORKSPACE_CONFIG=:4096:8
  export TEST_TMPDIR=$work/tmp
  mkdir -p "$TEST_TMPDIR"
  gtest common/training/device_test
  gtest tests/gpu/gpu_training_test
  gtest tests/gpu/nccl_collective_test
  gtest worker/data_parallel_equivalence_test --gtest_filter='*Gpu*'
}

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
step_job() {
  echo "2-epoch job through coordinator + $device worker, checkpoints, resume"
  pids=()  # Global: the EXIT trap runs after this function has returned.
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done' EXIT
  job_config 2 60 20 > "$work/job.textproto"
  "${ddlm_env[@]}" "$bin/coordinator/ddlm_coordinator" \
    --port 0 --host 127.0.0.1 --state_dir "$work/state" --insecure > "$logs/coordinator.log" 2>&1 < /dev/null &
  pids+=($!)
  local address="" t0=$EPOCHREALTIME until=$(($(now) + 120))
  [ "$until" -gt $((step_deadline - 5)) ] && until=$((step_deadline - 5))  # Within the step's limit.
  while [ "$(now)" -lt "$until" ] && kill -0 "${pids[0]}" 2>/dev/null; do  # Up to 120 s.
    address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$logs/coordinator.log" | head -1)
    [ -n "$address" ] && break
    sleep 0.1
  done
  if [ -z "$address" ]; then
    tail -20 "$logs/coordinator.log"
    bad "the coordinator did not print 'listening on' within 120 s (or exited)"
    return
  fi
  echo "coordinator listening on $address after $(seconds_since "$t0") s"
  "${ddlm_env[@]}" "$bin/worker/ddlm_worker" \
    --coordinator "$address" --host 127.0.0.1 --device "$device" --insecure --worker_id gpu-check \
    > "$logs/worker.log" 2>&1 < /dev/null &
  pids+=($!)
  if limited 300 "$logs/submit.log" ddlm_bin coordinator/cli/ddlm --coordinator "$address" --insecure \
      submit --config "$work/job.textproto" --watch; then
    local job; job=$(sed -n 's/^submitted \([^ ]*\).*/\1/p' "$logs/submit.log")
    grep -E "end of epoch|checkpoint|End of training" "$logs/submit.log"
    ok "job $job: 2 epochs on $device, SUCCEEDED"
    if limited 300 "$logs/resume.log" ddlm_bin coordinator/cli/ddlm --coordinator "$address" --insecure \
        resume "$job" --epochs 3 --watch; then
      grep -E "resumed|end of epoch|End of training" "$logs/resume.log"
      ok "job $job: resumed from its last checkpoint to a 3rd epoch"
    else
      tail -20 "$logs/resume.log"; bad "resume of $job ($limited_note)"
    fi
    limited 30 "$logs/checkpoints.log" ddlm_bin coordinator/cli/ddlm --coordinator "$address" --insecure \
      checkpoints "$job"
    tail -5 "$logs/checkpoints.log"
    if limited 60 "$logs/generate.log" ddlm_bin coordinator/cli/ddlm --coordinator "$address" --insecure \
        generate "$job" --words 12; then
      cat "$logs/generate.log"; ok "generate from the checkpoint trained on $device"
    else
      tail -5 "$logs/generate.log"; bad "generate ($limited_note)"
    fi
    grep -m1 "connected on" "$logs/worker.log"
  else
    tail -30 "$logs/submit.log" "$logs/worker.log"; bad "2-epoch job on $device ($limited_note)"
  fi
}

# ---------------------------------------------------------------- tworanks
step_tworanks() {
  echo "two ranks on one device ($device), gradients through Gloo"
  job_config 1 0 10 > "$work/two.textproto"
  cd "$work" || return
  if limited 300 "$logs/two.log" ddlm_bin coordinator/cli/ddlm launch --config "$work/two.textproto" --workers 2 \
      --device "$device" --collective gloo --state_dir "$work/two-state" --insecure; then
    grep -E "end of epoch|End of training" "$logs/two.log"
    ok "2 ranks on $device with Gloo: job SUCCEEDED"
  else
    tail -20 "$logs/two.log"; tail -20 "$work"/two-state/logs/worker-*.log
    bad "2 ranks on $device ($limited_note)"
  fi
  local f
  for f in "$work"/two-state/logs/*.log; do [ -f "$f" ] && cp "$f" "$logs/two-$(basename "$f")"; done
  cd "$repo" || return
}

# ---------------------------------------------------------------- bf16
step_bf16() {
  have_data || return
  local lines=${DDLM_BF16_TRAIN_LINES:-}
  [ -z "$lines" ] && [ "$device" = cpu ] && lines=200
  local corpus=$data
  if [ -n "$lines" ]; then
    corpus=$work/bf16-data
    cut_corpus "$corpus" "$lines" || { bad "cannot write the first $lines lines of WikiText-2 to $corpus"; return; }
  fi
  echo "one WikiText-2 epoch (${lines:-all} train lines) of the default LSTM on $device: FP32, then BF16"
  local p per ppl_fp32="" ppl_bf16=""
  for p in fp32 bf16; do
    per=$(((step_deadline - $(now)) / time_scale))
    [ "$p" = fp32 ] && per=$((per / 2))  # Half the step's time left for FP32, the rest for BF16.
    if limited "$per" "$logs/epoch-$p.log" ddlm_bin worker/ddlm_train --data "$corpus" --epochs 1 --device "$device" \
        --precision "$p" --save "$work/$p.pt" --log_interval 1000 --token_cache "$work/token-cache"; then
      grep -E "end of epoch|End of training" "$logs/epoch-$p.log"
    else
      tail -5 "$logs/epoch-$p.log"; bad "the $p run ($limited_note)"
    fi
    printf -v "ppl_$p" '%s' "$(gate_valid_ppl "$logs/epoch-$p.log")"
  done
  local fig=0
  gate_figure "FP32 valid ppl" "$ppl_fp32" || fig=1
  gate_figure "BF16 valid ppl" "$ppl_bf16" || fig=1
  if [ "$fig" = 1 ]; then
    failures=$((failures + 1))
  elif ! gate_within 0.02 "$ppl_fp32" "$ppl_bf16"; then
    bad "BF16 valid ppl $ppl_bf16 is more than 2% from FP32's $ppl_fp32"
  elif ! gate_differ "$ppl_fp32" "$ppl_bf16"; then
    bad "BF16 valid ppl $ppl_bf16 equals FP32's $ppl_fp32: autocast changed nothing"
  else
    ok "BF16 valid ppl $ppl_bf16 within 2% of FP32's $ppl_fp32, and not identical"
  fi
}

# ---------------------------------------------------------------- bench
step_bench() {
  local upstream=$bundle/upstream missing=0 f
  have_data || missing=1
  for f in main.py model.py data.py; do
    [ -s "$upstream/$f" ] || { bad "missing input: upstream $f (bundle's upstream/$f; bundle.sh --reference)"; missing=1; }
  done
  [ "$missing" = 0 ] || return
  # On a CPU (a dry run): a few batches, logged often enough for a median, and a small
  # matmul peak (a 2048-cube in emulated bfloat16 takes minutes there).
  local lines=${DDLM_BENCH_TRAIN_LINES:-} interval warmup batches peak=()
  if [ "$device" = cpu ]; then
    lines=${lines:-60}; interval=1; warmup=1; batches=3; peak=(--peak_size 256)
  else
    lines=${lines:-9000}; interval=50; warmup=20; batches=200
  fi
  local corpus=$work/bench-data
  cut_corpus "$corpus" "$lines" || { bad "cannot write the first $lines lines of WikiText-2 to $corpus"; return; }
  local accel=(--accel); [ "$device" = cpu ] && accel=()
  echo "benchmark: ddlm vs upstream word_language_model on $device, first $lines lines of train.txt," \
       "1 epoch each, log interval $interval; no-sync: train_throughput --warmup $warmup --batches $batches"
  local table="| model | precision | upstream epoch s | ddlm epoch s | upstream tok/s | ddlm tok/s | ddlm/upstream (tok/s) | ddlm no-sync tok/s |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  local rows=0 at_goal=0 m label config flags p tag ulog dlog nlog u_note d_note n_note
  local u_epoch d_epoch u_tok d_tok ratio nosync n_batches runner=() took
  cd "$work" || return
  for m in "LSTM 200/200|lstm200|configs/lstm.textproto|--model LSTM" \
           "LSTM 650/650|lstm650|configs/lstm_650.textproto|--model LSTM --emsize 650 --nhid 650 --dropout 0.5" \
           "Transformer|transformer|configs/transformer.textproto|--model Transformer --lr 5"; do
    IFS='|' read -r label tag config flags <<< "$m"
    for p in fp32 bf16; do
      ulog=$logs/bench-$tag-$p-upstream.log; dlog=$logs/bench-$tag-$p-ddlm.log; nlog=$logs/bench-$tag-$p-nosync.log
      # Upstream as it is (FP32), or under tests/gpu/upstream_bf16.py (BF16 forward passes).
      runner=("$upstream/main.py")
      [ "$p" = bf16 ] && runner=("$repo/tests/gpu/upstream_bf16.py" "$upstream")
      # shellcheck disable=SC2086  # $flags: main.py's model flags, word by word.
      limited 90 "$ulog" "$python" -u "${runner[@]}" "${accel[@]}" --data "$corpus" --epochs 1 --log-interval "$interval" \
        --save "$work/upstream.pt" $flags
      u_note=${limited_note:+upstream main.py: $limited_note}
      [ -z "$u_note" ] || bad "$label $p: $u_note (log $ulog)"
      took="upstream $limited_secs s"
      limited 60 "$dlog" ddlm_bin worker/ddlm_train --config "$repo/$config" --data "$corpus" --epochs 1 \
        --log_interval "$interval" --device "$device" --precision "$p" --save "$work/ddlm.pt" \
        --token_cache "$work/token-cache"
      d_note=${limited_note:+ddlm_train: $limited_note}
      [ -z "$d_note" ] || bad "$label $p: $d_note (log $dlog)"
      took="$took, ddlm $limited_secs s"
      n_batches=$(gate_train_batches "$dlog")
      if gate_is_number "$n_batches" && [ "$n_batches" -lt $((warmup + batches)) ]; then
        n_note="an epoch of $n_batches batches is shorter than --warmup $warmup + --batches $batches"
        echo "not run: $n_note" > "$nlog"
      else
        limited 45 "$nlog" ddlm_bin common/benchmarks/train_throughput --device "$device" --precision "$p" \
          --config "$repo/$config" --data "$corpus" --warmup "$warmup" --batches "$batches" "${peak[@]}"
        n_note=${limited_note:+train_throughput: $limited_note}
        [ -z "$n_note" ] || bad "$label $p: $n_note (log $nlog)"
        took="$took, no-sync $limited_secs s"
      fi
      u_epoch=$(gate_epoch_seconds "$ulog"); d_epoch=$(gate_epoch_seconds "$dlog")
      u_tok=$(gate_tokens_per_s "$ulog"); d_tok=$(gate_tokens_per_s "$dlog")
      nosync=$(gate_nosync_tokens_per_s "$nlog")
      gate_figure "$label $p: upstream epoch s${u_note:+ ($u_note)}" "$u_epoch" || { failures=$((failures + 1)); u_epoch=$GATE_MISSING; }
      gate_figure "$label $p: ddlm epoch s${d_note:+ ($d_note)}" "$d_epoch" || { failures=$((failures + 1)); d_epoch=$GATE_MISSING; }
      gate_figure "$label $p: upstream tok/s${u_note:+ ($u_note)}" "$u_tok" || { failures=$((failures + 1)); u_tok=$GATE_MISSING; }
      gate_figure "$label $p: ddlm tok/s${d_note:+ ($d_note)}" "$d_tok" || { failures=$((failures + 1)); d_tok=$GATE_MISSING; }
      gate_figure "$label $p: ddlm no-sync tok/s${n_note:+ ($n_note)}" "$nosync" || { failures=$((failures + 1)); nosync=$GATE_MISSING; }
      ratio=$(gate_ratio "$d_tok" "$u_tok")  # MISSING where a figure is: a FAIL above.
      rows=$((rows + 1))
      gate_at_least "$ratio" 1.3 && at_goal=$((at_goal + 1))
      [ "$ratio" = "$GATE_MISSING" ] || ratio="${ratio}x"
      echo "$label $p: epoch ${u_epoch} s vs ${d_epoch} s; tok/s ${u_tok} vs ${d_tok} -> ${ratio}; no-sync ${nosync} (runs: $took)"
      table="$table
| $label | $p | $u_epoch | $d_epoch | $u_tok | $d_tok | $ratio | $nosync |"
      write_benchmark  # Row by row: a step cut short keeps the rows it measured.
    done
  done
  cd "$repo" || return
  write_benchmark
  cat "$work/benchmark.md"
  [ "$failures" = 0 ] && ok "benchmark: every figure present (see the table)"
}

# The benchmark table so far, to $work/benchmark.md (the caller's table, lines, rows, at_goal).
write_benchmark() {
  {
    printf 'On %s (%s), torch %s, WikiText-2 cut to its first %s train lines, one epoch per run,\n' \
      "${gpu_name:-$device}" "$device" "$torch_version" "$lines"
    printf 'upstream then ddlm, interleaved; tok/s = 20 x 35 x 1000 / median ms/batch of the log lines after the first.\n\n'
    printf '%s\n\n' "$table"
    printf 'Ratios are reported, not gated: the goal is ddlm/upstream >= 1.3x tok/s (met in %s of %s rows).\n' "$at_goal" "$rows"
  } > "$work/benchmark.md"
  # Straight to $OUT too (and the logs so far), so a command the device tool cuts short
  # still brings back every row measured.
  [ -n "${OUT:-}" ] && mkdir -p "$OUT" || return 0
  publish_benchmark
  publish_logs
}

# ---------------------------------------------------------------- one step (internal)
if [ "${1:-}" = __step ]; then  # __step NAME ENV_FILE DEADLINE: in its own process group.
  # shellcheck source=/dev/null
  source "$3"
  # shellcheck source=/dev/null
  [ -f "$work/machine.env" ] && source "$work/machine.env"
  step_deadline=$4
  set_ddlm_env
  "step_$2"
  [ "$failures" = 0 ]
  exit $?
fi

# ---------------------------------------------------------------- main
usage() { echo "usage: tests/gpu/run.sh check|bench [--bundle ARCHIVE.tar.xz|DIR] [--only STEP,...]" >&2; exit 2; }
cmd=${1:-}
case "$cmd" in
  check) steps=(tests job tworanks bf16) ;;
  bench) steps=(bench) ;;
  *) usage ;;
esac
shift
bundle_arg=.gpu_bundle.tar.xz
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) [ $# -ge 2 ] || usage; bundle_arg=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for s in ${only//,/ }; do
  [[ " machine ${steps[*]} " == *" $s "* ]] || { echo "run.sh: no step '$s' in '$cmd' (steps: machine ${steps[*]})" >&2; exit 2; }
done
device=${DDLM_GPU_CHECK_DEVICE:-cuda:0}
python=${PYTHON:-python3}
time_scale=${DDLM_GPU_CHECK_TIME_SCALE:-1}
[ -z "${DDLM_GPU_CHECK_TIME_SCALE:-}" ] && [ "$device" = cpu ] && time_scale=3
[[ "$time_scale" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: DDLM_GPU_CHECK_TIME_SCALE must be a whole number >= 1" >&2; exit 2; }
overrides=${DDLM_GPU_CHECK_LIMITS:-}
for s in ${overrides//,/ }; do
  [[ "$s" =~ ^([a-z0-9]+)=([1-9][0-9]*)$ && -n "${limits[${BASH_REMATCH[1]}]:-}" ]] ||
    { echo "run.sh: DDLM_GPU_CHECK_LIMITS: '$s' is not STEP=SECONDS (steps: ${!limits[*]})" >&2; exit 2; }
  limits[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done
for s in "${!limits[@]}"; do limits[$s]=$((limits[$s] * time_scale)); done
# DDLM_GPU_CHECK_BUDGET_S: the whole command's time (extraction, every step and its kill
# grace), for a device call with less than 450 s of device time left: each step's limit
# is cut to what is left of it, and a step with under 10 s left fails unrun. Unset: the
# steps' own limits.
budget=${DDLM_GPU_CHECK_BUDGET_S:-}
[ -z "$budget" ] || [[ "$budget" =~ ^[1-9][0-9]*$ ]] ||
  { echo "run.sh: DDLM_GPU_CHECK_BUDGET_S must be a whole number of seconds, not '$budget'" >&2; exit 2; }
budget_deadline=$(( $(date +%s) + ${budget:-1000000} ))
work=${DDLM_GPU_CHECK_DIR:-$(mktemp -d /tmp/ddlm-gpu-check.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
# Everything is written under the work directory; $OUT (what the device tool brings back:
# at most 8 files) gets three: summary.txt, benchmark.md and logs.tar.gz (every step's
# log and every run's), refreshed after each step, so a command cut short still returns
# what it did.
outdir=$work
mkdir -p "$outdir/logs"
logs=$outdir/logs
summary=$outdir/summary.txt
: > "$summary"
passed=0
failed=0
say() { echo "$*" | tee -a "$summary"; }
publish() {
  [ -n "${OUT:-}" ] || return 0
  mkdir -p "$OUT" || return 0
  cp "$summary" "$OUT/summary.txt" 2>/dev/null
  publish_benchmark
  publish_logs
}
finish() {
  say "$passed passed, $failed failed (logs in $outdir${OUT:+; summary.txt, benchmark.md, logs.tar.gz in \$OUT})"
  publish
  [ "$failed" = 0 ]
  exit $?
}

# The bundle: an archive (extracted once per archive under /tmp) or an extracted tree.
start=$EPOCHREALTIME
if [ -d "$bundle_arg" ]; then
  bundle=$(cd "$bundle_arg" && pwd)
elif [ -f "$bundle_arg" ]; then
  key=$(timeout "$extract_limit" sha256sum "$bundle_arg" | cut -c1-16)
  bundle=${TMPDIR:-/tmp}/ddlm-gpu-bundle-$key
  if [ -n "$key" ] && [ -f "$bundle/.extracted" ]; then
    say "bundle: $bundle_arg already extracted in $bundle"
  elif [ -n "$key" ]; then
    rm -rf "$bundle" "$bundle.partial"
    mkdir -p "$bundle.partial"
    if command -v xz > /dev/null; then
      extract=(tar -xJf "$bundle_arg" -C "$bundle.partial")
    else  # Minimal images may lack xz; Python's tarfile reads .tar.xz itself.
      extract=("$python" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$bundle_arg" "$bundle.partial")
    fi
    if timeout -k "$kill_grace" "$extract_limit" "${extract[@]}"; then
      touch "$bundle.partial/.extracted" && mv "$bundle.partial" "$bundle"
      say "bundle: $bundle_arg extracted in $bundle in $(seconds_since "$start") s"
    else
      say "FAIL bundle: cannot extract $bundle_arg (broken archive, or over ${extract_limit} s)"
      failed=1; finish
    fi
  else
    say "FAIL bundle: cannot read $bundle_arg"; failed=1; finish
  fi
else
  say "FAIL bundle: no $bundle_arg (run tests/gpu/bundle.sh first, and carry .gpu_bundle.tar.xz)"
  failed=1; finish
fi
bin=$bundle/bin
data=$bundle/data/wikitext-2
if [ ! -d "$bin" ]; then
  say "FAIL bundle: $bundle has no bin/ (not a bundle from tests/gpu/bundle.sh)"; failed=1; finish
fi
find "$bin" -type f -exec chmod a+x {} + 2>/dev/null  # Carried files may lose their exec bits.
libpath=$bundle/lib  # The machine step adds torch's and CUDA's.
env_file=$work/env.sh
declare -p repo bundle bin data work outdir logs device python libpath time_scale > "$env_file"
say "run.sh $cmd on $device ($(hostname)); bundle built from $(sed -n 's/^built_from=//p' "$bundle/MANIFEST" 2>/dev/null)"
echo "work dir $work; output in $outdir; time limits x$time_scale"

# run_step NAME: the step in its own process group under timeout; the group is killed on
# timeout and whatever it left behind is killed after it.
run_step() {
  local name=$1 limit=${limits[$1]} log="$outdir/step-$1.log" t0=$EPOCHREALTIME pid rc
  local left=$((budget_deadline - $(now) - kill_grace))
  if [ "$left" -lt "$limit" ]; then
    if [ "$left" -lt 10 ]; then
      say "step $name: FAIL in 0 s (not run: DDLM_GPU_CHECK_BUDGET_S=$budget is spent)"
      failed=$((failed + 1)); publish; return
    fi
    limit=$left
  fi
  printf '\n== %s (limit %s s)\n' "$name" "$limit"
  : > "$log"
  timeout -k "$kill_grace" "$limit" bash "$self" __step "$name" "$env_file" $(($(now) + limit)) \
    > "$log" 2>&1 < /dev/null &
  pid=$!
  tail -n +1 -s 0.5 -f --pid="$pid" "$log" 2>/dev/null &
  local tail_pid=$!
  wait "$pid"
  rc=$?
  kill -KILL -- "-$pid" 2>/dev/null  # timeout's process group: anything the step left running.
  wait "$tail_pid" 2>/dev/null
  local took; took=$(seconds_since "$t0")
  case $rc in
    0) say "step $name: PASS in $took s"; passed=$((passed + 1)) ;;
    124|137) say "step $name: FAIL in $took s (timed out: over its $limit s limit; killed)"; failed=$((failed + 1)) ;;
    3) say "step $name: FAIL in $took s: aborted: $(grep '^ABORT' "$log" | tail -1)"; failed=$((failed + 1)); finish ;;
    *) say "step $name: FAIL in $took s ($(grep -c '^FAIL' "$log") failure(s): $(grep '^FAIL' "$log" | head -3 | cut -c6- | tr '\n' ';'))"
       failed=$((failed + 1)) ;;
  esac
  publish
}

run_step machine
if [ ! -f "$work/machine.env" ]; then  # No torch facts, no library path: nothing else can run.
  say "ABORT: the machine step found no torch (see $outdir/step-machine.log)"
  finish
fi
for s in "${steps[@]}"; do
  if [ -z "$only" ] || [[ ",$only," == *",$s,"* ]]; then run_step "$s"; fi
done
finish
