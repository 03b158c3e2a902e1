#!/usr/bin/env bash
# Counts test cases from Bazel's test reports, for .ci/run's "N passed, N failed" line.
#
#   count_reports.sh TESTLOGS BAZEL_OUTPUT TARGET...
#
# TESTLOGS: `bazel info bazel-testlogs`; BAZEL_OUTPUT: what `bazel test` printed (its
# per-target status lines: PASSED, FAILED, FAILED TO BUILD, TIMEOUT, FLAKY, NO STATUS,
# INCOMPLETE); the
# targets to count. Prints "passed=N failed=N skipped=N" on stdout and, on stderr, one
# line per failing target saying why, and one per target with skipped cases.
#
# Per target:
#   - no test.xml: 1 failure (it did not build, or Bazel killed it before any report);
#   - gtest's report (<testsuites tests= failures= errors= disabled=>): its cases, less
#     the failed, errored, disabled and skipped ones, pass; failures and errors fail;
#   - Bazel's own report (<testsuites> without attributes, written when the binary died
#     before gtest could write one: a crash, a timeout's SIGTERM, an exit code): 1
#     failure if it holds an <error> or <failure>, else 1 pass (a test that is not gtest);
#   - whatever the report says, a target Bazel called FAILED, FAILED TO BUILD, TIMEOUT,
#     NO STATUS or INCOMPLETE counts at least 1 failure (a stale report of a target that
#     no longer builds, (a crash after gtest wrote a clean report, a
#     sanitizer's exit code).
set -uo pipefail

if [ $# -lt 2 ]; then
  echo "usage: count_reports.sh TESTLOGS BAZEL_OUTPUT TARGET..." >&2
  exit 2
fi
testlogs=$1
bazel_output=$2
shift 2

passed=0
failed=0
skipped=0
attribute() {  # attribute NAME LINE: the number in NAME="N" of LINE, or empty.
  sed -n "s/.*[[:space:]]$1=\"\([0-9]*\)\".*/\1/p" <<<"$2"
}
for target in "$@"; do
  # The target's own status line (compared as a string, not a pattern).
  status=$(awk -v t="$target" '$1 == t' "$bazel_output" 2>/dev/null |
           sed -nE 's/.*[[:space:]](PASSED|FAILED TO BUILD|FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE)( in .*)?$/\1/p' | tail -1)
  bazel_failed=0
  case "$status" in FAILED | "FAILED TO BUILD" | TIMEOUT | "NO STATUS" | INCOMPLETE) bazel_failed=1 ;; esac
  path=${target#//}
  path=${path/://}
  xml="$testlogs/$path/test.xml"
  if [ ! -f "$xml" ]; then
    echo "FAILED $target: no test report${status:+ (bazel: $status)}" >&2
    failed=$((failed + 1))
    continue
  fi
  line=$(grep -m1 '<testsuites[[:space:]>]' "$xml" || true)
  tests=$(attribute tests "$line")
  if [ -z "$tests" ]; then
    # Bazel's own report.
    # The test's own output (<system-out>) may say anything: look only outside it.
    report=$(sed '/<system-out>/,/<\/system-out>/d' "$xml")
    why=$(grep -o -m1 '<\(error\|failure\) message="[^"]*"' <<<"$report" | sed 's/.*message="\([^"]*\)"/\1/')
    if [ -n "$why" ] || grep -q '<\(error\|failure\)[[:space:]>]' <<<"$report" || [ "$bazel_failed" = 1 ]; then
      echo "FAILED $target: ${why:-failed}${status:+ (bazel: $status)}" >&2
      failed=$((failed + 1))
    else
      passed=$((passed + 1))
    fi
    continue
  fi
  fails=$(attribute failures "$line")
  errors=$(attribute errors "$line")
  disabled=$(attribute disabled "$line")
  bad=$((${fails:-0} + ${errors:-0}))
  skips=$(grep -c '<skipped' "$xml" || true)
  if [ "${skips:-0}" -gt 0 ]; then
    echo "$target: $skips test(s) skipped: $(grep -o -m1 '<skipped message="[^"]*"' "$xml")" >&2
    skipped=$((skipped + skips))
  fi
  passed=$((passed + tests - bad - ${disabled:-0} - ${skips:-0}))
  if [ "$bad" -gt 0 ]; then
    echo "FAILED $target: $bad of $tests case(s) failed" >&2
  elif [ "$bazel_failed" = 1 ]; then
    echo "FAILED $target: bazel says $status though its report shows no failed case" >&2
    bad=1
  fi
  failed=$((failed + bad))
done
echo "passed=$passed failed=$failed skipped=$skipped"
