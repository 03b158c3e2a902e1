#!/usr/bin/env bash
# `bazel run //common/benchmarks:side_by_side -- --rounds=3`: runs side_by_side.py (with
# Debian's python3; upstream runs on the torch venv's) next to the ddlm_train it was built
# with. See side_by_side.py.
set -euo pipefail
here=$(dirname "$0")
runfiles=${RUNFILES_DIR:-$0.runfiles}
script=$runfiles/ddlm/common/benchmarks/side_by_side.py
train=$runfiles/ddlm/worker/ddlm_train
ddlm=$runfiles/ddlm/coordinator/cli/ddlm
[ -f "$script" ] || script=$here/side_by_side.py
exec /usr/bin/python3 "$script" --ddlm_train="$train" --ddlm="$ddlm" "$@"
