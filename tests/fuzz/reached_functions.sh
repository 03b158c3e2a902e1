#!/usr/bin/env bash
# Which of ddlm's functions a libFuzzer run reached, from its -print_coverage=1 output
# (COVERED_FUNC / UNCOVERED_FUNC lines; the fuzz build keeps line tables, so each names
# its file), and whether it reached every function a list requires.
#
#   tests/fuzz/reached_functions.sh LOG REQUIRED_LIST [REACHED_OUT]
#
# ddlm's functions are those defined under common/, coordinator/ or worker/. A name is
# the function's qualified name without its arguments, "(anonymous namespace)" written
# {anonymous} and "[abi:cxx11]" dropped: ddlm::{anonymous}::TensorBytes. REQUIRED_LIST
# holds one name per line (# comments). Prints
#
#   reached R of T ddlm functions, N of M required
#
# and, for each required one not reached, "not reached: NAME"; exits 1 if any, or if the
# log has no coverage report at all. REACHED_OUT, if given, receives the reached names.
set -uo pipefail
log=$1
required=$2
reached_out=${3:-}

names() {  # COVERED_FUNC or UNCOVERED_FUNC lines of ddlm's files -> sorted unique names.
  grep -a "^$1: " "$log" |
    sed -n 's/^[A-Z_]*: hits: [0-9]* edges: [0-9]*\/[0-9]* \(.*\) \([^ ]*\)$/\1\t\2/p' |
    awk -F'\t' '$2 ~ /^(\/proc\/self\/cwd\/|\.\/)?(\.\/)?(common|coordinator|worker)\// { print $1 }' |
    sed 's/(anonymous namespace)/{anonymous}/g; s/\[abi:cxx11\]//g; s/(.*//' |
    sort -u
}

if ! grep -aq '^COVERED_FUNC: ' "$log"; then
  echo "no coverage report in $log (run the fuzzer with -print_coverage=1)"
  exit 1
fi
reached=$(names COVERED_FUNC)
uncovered=$(names UNCOVERED_FUNC)
total=$(printf '%s\n%s\n' "$reached" "$uncovered" | grep -v '^$' | sort -u | wc -l)
reached_count=$(printf '%s\n' "$reached" | grep -vc '^$')
[ -n "$reached_out" ] && printf '%s\n' "$reached" > "$reached_out"

missing=()
wanted=0
while IFS= read -r line; do
  line=${line%%#*}
  line=$(printf '%s' "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')  # The ends only.
  [ -z "$line" ] && continue
  wanted=$((wanted + 1))
  printf '%s\n' "$reached" | grep -qxF -- "$line" || missing+=("$line")
done < "$required"
echo "reached $reached_count of $total ddlm functions, $((wanted - ${#missing[@]})) of $wanted required"
if [ "$total" -eq 0 ]; then
  echo "no function of ddlm's code in the report: was it symbolized (llvm-symbolizer, ASAN_SYMBOLIZER_PATH)?"
fi
for m in "${missing[@]}"; do echo "not reached: $m"; done
[ "${#missing[@]}" -eq 0 ]
