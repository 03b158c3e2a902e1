#!/usr/bin/env bash
# Installs everything ddlm needs on Debian 12 from Debian's archive (idempotent; run as
# root or with sudo available). Bazel builds offline.
#
#   ./setup.sh          the CPU build (Debian's LibTorch 1.13)
#   ./setup.sh --cuda   also the GPU build's LibTorch: the torch wheel from Python's package
#                       index (pinned below, with the CUDA runtime, cuDNN and NCCL it
#                       depends on), in a venv at /opt/ddlm/torch-<version>
#
# Both also put the tensorboard package (pinned below) in a venv at /opt/ddlm/tools: the
# tests read ddlm's event files back with it, and it is the `tensorboard` to run.
set -euo pipefail

# The accelerator machine's torch; the GPU build must use the same LibTorch.
TORCH_VERSION=2.11.0
TORCH_VENV=${DDLM_TORCH_VENV:-/opt/ddlm/torch-$TORCH_VERSION}
TENSORBOARD_VERSION=2.21.0
TOOLS_VENV=${DDLM_TOOLS_VENV:-/opt/ddlm/tools}

cuda=0
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup: unknown argument '$arg' (expected --cuda)" >&2; exit 2 ;;
  esac
done

packages=(
  bazel-bootstrap            # Bazel 4.2.3
  g++ pkg-config zlib1g-dev
  libtorch-dev               # LibTorch 1.13.1 (CPU)
  libopenblas0-pthread       # fast BLAS for LibTorch (the reference BLAS is ~35x slower)
  libgoogle-perftools-dev    # tcmalloc (large tensors reuse memory, no page-fault storms)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libgoogle-glog-dev libgflags-dev
  libgloo-dev
  googletest libgtest-dev libgmock-dev
  openssl                    # `ddlm launch` makes its CA, certificates and tokens with it
  clang libclang-rt-14-dev   # the fuzz targets (libFuzzer, sanitizers): tests/fuzz/run_fuzzers.sh
  libmicrohttpd-dev          # the coordinator's /metrics page (--metrics_port)
  prometheus                 # tests: scrapes /metrics (tests:ecosystem_test)
  gnuplot-nox                # `ddlm plot`
  tmux                       # tests: `ddlm watch` in a terminal
  slurmctld slurmd slurm-client munge   # tests: configs/slurm/ddlm.sbatch under a one-host Slurm
  python3-venv python3-pip   # the tensorboard package (and torch for --cuda) in venvs
)

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch calls whatever libblas.so.3 is selected: make it OpenBLAS.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
case "$blas" in
  *openblas*) ;;
  *)
    echo "setup: selecting OpenBLAS as libblas.so.3 (was: ${blas:-none})"
    $sudo update-alternatives --set libblas.so.3-x86_64-linux-gnu \
      /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
    ;;
esac
installed=""
if [ -x "$TOOLS_VENV/bin/python3" ]; then
  installed=$("$TOOLS_VENV/bin/python3" -m pip show tensorboard 2>/dev/null | sed -n 's/^Version: //p')
fi
if [ "$installed" != "$TENSORBOARD_VERSION" ]; then
  echo "setup: installing tensorboard==$TENSORBOARD_VERSION in $TOOLS_VENV"
  $sudo mkdir -p "$(dirname "$TOOLS_VENV")"
  $sudo /usr/bin/python3 -m venv "$TOOLS_VENV"
  $sudo "$TOOLS_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check \
    "tensorboard==$TENSORBOARD_VERSION"
fi

if [ "$cuda" = 1 ]; then
  installed=""
  if [ -x "$TORCH_VENV/bin/python3" ]; then
    installed=$("$TORCH_VENV/bin/python3" -m pip show torch 2>/dev/null | sed -n 's/^Version: //p')
  fi
  if [ "$installed" = "$TORCH_VERSION" ]; then
    echo "setup: torch $TORCH_VERSION already in $TORCH_VENV"
  else
    echo "setup: installing torch==$TORCH_VERSION (CUDA LibTorch, cuDNN, NCCL; ~4.5 GB) in $TORCH_VENV"
    $sudo mkdir -p "$(dirname "$TORCH_VENV")"
    # Debian's own python3, whatever python3 comes first on PATH.
    $sudo /usr/bin/python3 -m venv "$TORCH_VENV"
    $sudo "$TORCH_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check \
      "torch==$TORCH_VERSION"
  fi
fi

echo "setup: ok ($(bazel --version 2>/dev/null | head -1), BLAS $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3))"
