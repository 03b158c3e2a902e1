# shellcheck shell=bash
# The GPU check's figures and gates (sourced by tests/gpu/run.sh; tested by
# tests/gpu/gates_test.cc). Every figure is a decimal number or it is missing, and a
# missing figure fails: nothing here compares strings where numbers are meant.
#
# Each function prints its result on stdout and returns 0, or prints nothing (or a
# FAIL line naming what is missing) and returns 1.

GATE_MISSING=MISSING  # What a table shows where a figure is missing.

# gate_is_number VALUE: VALUE is a plain decimal number (digits, one point, a sign, an
# exponent); not empty, not "n/a", not "nan", not "12 s".
gate_is_number() {
  [[ "${1-}" =~ ^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$ ]]
}

# gate_figure NAME VALUE: passes when VALUE is a number above 0; otherwise prints
# "FAIL NAME: missing (...)" and returns 1.
gate_figure() {
  local name=$1 value=${2-}
  if [ -z "$value" ]; then
    echo "FAIL $name: missing (empty)"
    return 1
  fi
  if ! gate_is_number "$value"; then
    echo "FAIL $name: missing (not a number: '$value')"
    return 1
  fi
  if ! LC_ALL=C awk -v v="$value" 'BEGIN { exit !(v + 0 > 0) }'; then
    echo "FAIL $name: missing (not above 0: $value)"
    return 1
  fi
}

# gate_median < numbers (one or more per line): their median (the mean of the middle two
# for an even count). Fails on no numbers or on anything that is not a number.
gate_median() {
  local values=() v
  while read -r -a line || [ "${#line[@]}" -gt 0 ]; do
    for v in "${line[@]}"; do
      gate_is_number "$v" || return 1
      values+=("$v")
    done
  done
  [ "${#values[@]}" -gt 0 ] || return 1
  printf '%s\n' "${values[@]}" | LC_ALL=C sort -g |
    LC_ALL=C awk '{ v[NR] = $1 + 0 } END { if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.6g\n", m }'
}

# gate_ms_per_batch LOG: the ms/batch of each "| epoch ... | ms/batch X |" line (upstream's
# main.py and ddlm_train both print them), one per line, in order.
gate_ms_per_batch() {
  sed -n 's/^| *epoch .*| *ms\/batch *\([0-9][0-9.]*\) *|.*/\1/p' "$1"
}

# gate_epoch_seconds LOG: the time of the first "| end of epoch N | time: Xs |" line.
gate_epoch_seconds() {
  sed -n 's/^| *end of epoch .*| *time: *\([0-9][0-9.]*\)s *|.*/\1/p' "$1" | head -1 | grep .
}

# gate_valid_ppl LOG: the validation perplexity of the first "| end of epoch" line.
gate_valid_ppl() {
  sed -n 's/^| *end of epoch .*| *valid ppl *\([0-9][0-9.]*\).*/\1/p' "$1" | head -1 | grep .
}

# gate_train_batches LOG: the batches in an epoch, from "| epoch 1 | 50/ 731 batches |".
gate_train_batches() {
  sed -n 's/^| *epoch .*| *[0-9]*\/ *\([0-9][0-9]*\) batches *|.*/\1/p' "$1" | head -1 | grep .
}

# gate_tokens_per_s LOG [TOKENS_PER_BATCH]: tokens per batch (default 20 x 35) x 1000 over
# the median ms/batch of the log lines after the first (which holds the warm-up). Fails
# with fewer than two such lines.
gate_tokens_per_s() {
  local per_batch=${2:-700} median
  median=$(gate_ms_per_batch "$1" | tail -n +2 | gate_median) || return 1
  LC_ALL=C awk -v t="$per_batch" -v m="$median" 'BEGIN { if (m + 0 <= 0) exit 1; printf "%.0f\n", t * 1000 / m }'
}

# gate_nosync_tokens_per_s LOG: train_throughput's "... X ms/batch, N tokens/s" figure.
gate_nosync_tokens_per_s() {
  sed -n 's/^train .* ms\/batch, *\([0-9][0-9.]*\) tokens\/s.*/\1/p' "$1" | head -1 | grep .
}

# gate_ratio NUMERATOR DENOMINATOR: NUMERATOR / DENOMINATOR to 2 decimals; prints
# $GATE_MISSING and fails unless both are numbers above 0.
gate_ratio() {
  if gate_figure numerator "${1-}" > /dev/null && gate_figure denominator "${2-}" > /dev/null; then
    LC_ALL=C awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", (a + 0) / (b + 0) }'
  else
    echo "$GATE_MISSING"
    return 1
  fi
}

# gate_at_least VALUE BOUND: VALUE >= BOUND, as numbers (both must be numbers).
gate_at_least() {
  gate_is_number "${1-}" && gate_is_number "${2-}" &&
    LC_ALL=C awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'
}

# gate_within FRACTION REFERENCE VALUE: |VALUE - REFERENCE| <= FRACTION x REFERENCE.
gate_within() {
  gate_is_number "${1-}" && gate_is_number "${2-}" && gate_is_number "${3-}" &&
    LC_ALL=C awk -v f="$1" -v a="$2" -v b="$3" \
      'BEGIN { a += 0; b += 0; d = b - a; if (d < 0) d = -d; exit !(a > 0 && d <= (f + 0) * a) }'
}

# gate_differ A B: both numbers, and not equal as numbers.
gate_differ() {
  gate_is_number "${1-}" && gate_is_number "${2-}" && LC_ALL=C awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 != b + 0) }'
}
