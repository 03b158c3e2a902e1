#!/usr/bin/env bash
# Fuzzes every target in tests/fuzz for a bounded time with libFuzzer: builds them with
# clang, AddressSanitizer and UndefinedBehaviorSanitizer (--config=fuzz) in an output
# base of their own, then runs each from a copy of its seed corpus (the repository's
# stays as it is). Each run ends with libFuzzer's coverage report (-print_coverage=1),
# from which reached_functions.sh counts the ddlm functions it reached and checks those
# tests/fuzz/reached/<target>.txt requires. Prints one line per target and "fuzz: N
# passed, N failed"; exits 1 if any target crashed, leaked, hit a sanitizer report or
# missed a required function (its log, and a crashing input, are kept and named).
# DDLM_FUZZ_REACHED_DIR, if set, receives each target's reached functions (<target>.txt).
#
#   tests/fuzz/run_fuzzers.sh [SECONDS_PER_TARGET (default 30)]
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-30}
# One output base per checkout, as Bazel keys its own by the workspace's path: a base
# shared by two clones keeps runfiles links into the first one (a fuzzer then finds no
# corpus where its data should be).
output_base=${DDLM_FUZZ_OUTPUT_BASE:-$HOME/.cache/ddlm-fuzz-$(pwd -P | md5sum | cut -c1-16)}
targets=(job_spec checkpoint token_codec corpus tokens_file services)
labels=()
for t in "${targets[@]}"; do labels+=("//tests/fuzz:${t}_fuzzer"); done

# --symlink_prefix=/: leave the workspace's bazel-* links to the main build.
if ! bazel --output_base="$output_base" build --config=fuzz --symlink_prefix=/ "${labels[@]}"; then
  echo "fuzz: the targets did not build"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi
bin=$(bazel --output_base="$output_base" info --config=fuzz bazel-bin 2>/dev/null)
# The fuzz build's server is not needed once the binaries exist.
bazel --output_base="$output_base" shutdown 2>/dev/null
out=$(mktemp -d /tmp/ddlm-fuzz.XXXXXX)
# The coverage report names functions and files through the symbolizer.
for s in llvm-symbolizer /usr/lib/llvm-14/bin/llvm-symbolizer; do
  if command -v "$s" > /dev/null; then export ASAN_SYMBOLIZER_PATH=$(command -v "$s"); break; fi
done
reached_dir=${DDLM_FUZZ_REACHED_DIR:-}
[ -n "$reached_dir" ] && mkdir -p "$reached_dir"
passed=0
failed=0
for t in "${targets[@]}"; do
  work="$out/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
  # From its runfiles, so that the services target finds the quickstart corpus.
  (cd "$bin/tests/fuzz/${t}_fuzzer.runfiles/ddlm" &&
     "$bin/tests/fuzz/${t}_fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
       -print_final_stats=1 -print_coverage=1 -artifact_prefix="$work/artifacts/" "$work/corpus") > "$work/log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  cov=$(grep -ao 'cov: [0-9]*' "$work/log" | tail -1)
  reached=$(tests/fuzz/reached_functions.sh "$work/log" "tests/fuzz/reached/$t.txt" \
              "${reached_dir:+$reached_dir/$t.txt}")
  reached_rc=$?
  if [ "$rc" -eq 0 ] && [ "$reached_rc" -eq 0 ]; then
    echo "fuzz: $t: ${runs:-?} inputs in ${seconds} s, ${cov:-cov: ?}, $(echo "$reached" | head -1); nothing found"
    passed=$((passed + 1))
  elif [ "$rc" -eq 0 ]; then
    echo "fuzz: $t: FAILED: a required function was not reached (log $work/log):"
    echo "$reached"
    failed=$((failed + 1))
  else
    echo "fuzz: $t: FAILED (exit $rc): log $work/log, inputs in $work/artifacts/"
    grep -a -m5 -E 'ERROR|SUMMARY|runtime error|_fuzzer: ' "$work/log"
    failed=$((failed + 1))
  fi
done
[ "$failed" -eq 0 ] && rm -rf "$out"  # Kept when something was found.
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
