#!/bin/bash
# A corpus larger than memory through a real 2-worker job (issue 21's benchmark; prints
# figures, asserts nothing): a Zipf corpus of --tokens training tokens
# (//common/benchmarks:zipf_corpus, made once in --work and kept), a ddlm_coordinator
# and two ddlm_workers on this machine, a job of 20 batches (default LSTM, one epoch).
#
#   bazel run //tests/load:large_corpus_benchmark -- --tokens=1000000000
#   bazel run //tests/load:large_corpus_benchmark -- --tokens=100000000
#
# Three submissions of the same job, each timed from the submit to its answer, to the
# job leaving PREPARING (its corpus tokenized) and to the workers' first training step
# (a worker's "connected on" line, printed just before it):
#   cold      empty state directory and shard directories: the corpus is tokenized
#             and the shards downloaded;
#   warm      the same processes: the coordinator has the token files open, the
#             workers hold their shards;
#   restarted every process started again on the same directories: the token files
#             are opened and checked again, the workers find their shards on disk.
# Then each process's peak RSS (GNU time's maximum resident set size; the cold run's
# processes cover tokenizing and serving the shards) and the disk the token cache and
# the shards take. Needs about 12 bytes of disk per training token at 1B (text 5.5,
# token files 2, shards 4 + their page cache), and /usr/bin/time.
set -euo pipefail

tokens=100000000
work=${TMPDIR:-/tmp}/ddlm-large-corpus
for arg in "$@"; do
  case "$arg" in
    --tokens=*) tokens=${arg#--tokens=} ;;
    --work=*) work=${arg#--work=} ;;
    *) echo "large_corpus_benchmark: unknown flag $arg (--tokens=N, --work=DIR)" >&2; exit 2 ;;
  esac
done
[[ "$tokens" =~ ^[0-9]+$ ]] && [ "$tokens" -ge 100000 ] || { echo "--tokens must be >= 100000" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "large_corpus_benchmark: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

runfiles=$(pwd)  # bazel run starts it in its runfiles; bazel-bin/... --tokens=N works too.
if [ -d "$0.runfiles/ddlm" ]; then runfiles=$(cd "$0.runfiles/ddlm" && pwd); fi
zipf=$runfiles/common/benchmarks/zipf_corpus
coordinator_bin=$runfiles/coordinator/ddlm_coordinator
worker_bin=$runfiles/worker/ddlm_worker
ddlm_bin=$runfiles/coordinator/cli/ddlm
mkdir -p "$work"
corpus=$work/corpus-$tokens
logs=$work/logs
rm -rf "$logs"; mkdir -p "$logs"

now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b - a}'; }

if [ ! -f "$corpus/test.txt" ]; then
  "$zipf" --out="$corpus" --train_tokens="$tokens" --eval_tokens=100000 --seed=1
fi
text_bytes=$(cat "$corpus"/{train,valid,test}.txt | wc -c)

pids=()
cleanup() {  # SIGTERM to each program (time's child), so that time reports its peak.
  for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT

state=$work/state
start_processes() {  # $1: a name for this round's logs.
  local round=$1
  /usr/bin/time -f "%M" -o "$logs/$round-coordinator.rss" "$coordinator_bin" --port=0 --host=127.0.0.1 \
    --insecure --state_dir="$state" --data_root="$work" >"$logs/$round-coordinator.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 600); do grep -q "listening on" "$logs/$round-coordinator.log" && break; sleep 0.1; done
  address=$(grep -o "listening on [^ ]*" "$logs/$round-coordinator.log" | awk '{print $3}')
  [ -n "$address" ] || { cat "$logs/$round-coordinator.log"; exit 1; }
  for w in 0 1; do
    /usr/bin/time -f "%M" -o "$logs/$round-worker$w.rss" "$worker_bin" --coordinator="$address" --insecure \
      --host=127.0.0.1 --worker_id="bench-w$w" --shard_dir="$work/shards-w$w" >"$logs/$round-worker$w.log" 2>&1 &
    pids+=($!)
  done
  for w in 0 1; do
    for _ in $(seq 600); do grep -q "registered as" "$logs/$round-worker$w.log" && break; sleep 0.1; done
  done
}

cat >"$work/job.textproto" <<SPEC
name: "large-corpus"
num_workers: 2
data { path: "$corpus" batch_size: 20 eval_batch_size: 10 }
schedule { epochs: 1 max_batches_per_epoch: 20 log_interval: 5 threads: 1 }
SPEC

# The time a glog line was written ("I20261203 16:37:58.957401 ..."), as seconds.
logtime() { local d t; read -r d t _ <<<"$1"; date -d "${d:1:8} $t" +%s.%N; }

# Waits (without a bound: the corpus may be large) for a line matching $2 in file $1.
await_line() { until grep -qE -- "$2" "$1"; do sleep 0.05; done; grep -m1 -E -- "$2" "$1"; }

# Submits the job; prints "<submit s> <prepared s> <first step s>" once it SUCCEEDED,
# each from the processes' own log times (no polling error), and leaves a progress
# message seen while it was PREPARING in $logs/<round>.progress.
run_job() {  # $1: round name
  local round=$1 t0 t1 t2 t3 job coordinator_log=$logs/$1-coordinator.log status
  t0=$(now)
  job=$("$ddlm_bin" submit --config="$work/job.textproto" --coordinator="$address" --insecure | awk '{print $2}')
  t1=$(now)
  until grep -q "job $job: QUEUED" "$coordinator_log"; do
    if grep -q "job $job: FAILED" "$coordinator_log"; then grep "job $job" "$coordinator_log" >&2; exit 1; fi
    status=$("$ddlm_bin" status "$job" --json --coordinator="$address" --insecure)
    if grep -q '"PREPARING"' <<<"$status"; then grep -o '"message": *"[^"]*"' <<<"$status" >"$logs/$round.progress"; fi
    sleep 2  # A status call now and then: polling often would slow the tokenizer down.
  done
  t2=$(logtime "$(grep -m1 "job $job: QUEUED" "$coordinator_log")")
  t3=$(logtime "$(await_line "$logs/$round-worker0.log" "\[$job attempt .* connected on")")
  case "$(await_line "$coordinator_log" "job $job: (SUCCEEDED|FAILED|CANCELLED)")" in
    *SUCCEEDED*) ;;
    *) grep "job $job" "$coordinator_log" >&2; exit 1 ;;
  esac
  echo "$(seconds "$t0" "$t1") $(seconds "$t0" "$t2") $(seconds "$t0" "$t3")"
}

rm -rf "$state" "$work/shards-w0" "$work/shards-w1"
start_processes cold
read -r cold_submit cold_prepared cold_first < <(run_job cold)
read -r warm_submit warm_prepared warm_first < <(run_job cold)
cleanup
start_processes restarted
read -r restart_submit restart_prepared restart_first < <(run_job restarted)
cleanup

rss() { awk '{printf "%.0f", $1 / 1024}' "$logs/$1.rss"; }
cache_bytes=$(du -sb "$state/corpora" | awk '{print $1}')
shard_bytes=$(du -sbc "$work/shards-w0" "$work/shards-w1" | tail -1 | awk '{print $1}')
prepare_mb_s=$(awk -v b="$text_bytes" -v s="$cold_prepared" 'BEGIN{printf "%.1f", b / 1e6 / s}')
echo
echo "large_corpus_benchmark: $tokens training tokens, $(awk -v b="$text_bytes" 'BEGIN{printf "%.0f", b/1e6}') MB of text, 2 workers, 20 batches"
printf '| %-44s | %s |\n' "figure" "measured"
printf '| %-44s | %s |\n' "cold: SubmitJob answers (job PREPARING)" "$cold_submit s"
printf '| %-44s | %s |\n' "cold: tokenized (job QUEUED)" "$cold_prepared s ($prepare_mb_s MB/s of text, both passes)"
printf '| %-44s | %s |\n' "cold: submit to first step" "$cold_first s"
printf '| %-44s | %s |\n' "warm (same processes): submit to first step" "$warm_first s (QUEUED after $warm_prepared s)"
printf '| %-44s | %s |\n' "restarted processes: submit to first step" "$restart_first s (QUEUED after $restart_prepared s)"
printf '| %-44s | %s |\n' "coordinator peak RSS (cold; restarted)" "$(rss cold-coordinator) MB; $(rss restarted-coordinator) MB"
printf '| %-44s | %s |\n' "worker peak RSS (cold w0, w1; restarted)" "$(rss cold-worker0), $(rss cold-worker1) MB; $(rss restarted-worker0), $(rss restarted-worker1) MB"
printf '| %-44s | %s |\n' "token cache on disk" "$(awk -v b="$cache_bytes" 'BEGIN{printf "%.0f", b/1e6}') MB"
printf '| %-44s | %s |\n' "shards on the workers' disks (both)" "$(awk -v b="$shard_bytes" 'BEGIN{printf "%.0f", b/1e6}') MB"
echo "last progress seen while preparing (cold): $(cat "$logs/cold.progress" 2>/dev/null)"
echo "(logs in $logs)"
