#!/usr/bin/env bash
# Installs everything ddlm needs on Debian 12: Debian's packages, and LibTorch from the
# torch wheel on Python's package index (idempotent; run as root or with sudo available).
# Bazel builds offline.
#
#   ./setup.sh          the CPU build: the torch wheel (pinned below) without its CUDA
#                       dependencies, plus the two small CUDA runtime wheels its
#                       libtorch_cpu.so loads (~545 MB of downloads), in a venv at
#                       /opt/ddlm/torch-<version>
#   ./setup.sh --cuda   also the GPU build's libraries: the wheel's CUDA dependencies
#                       (cuDNN, cuBLAS, NCCL, ...; ~4.5 GB installed) in the same venv. It
#                       also makes the venv a working `python3 -c 'import torch'`, which
#                       the side-by-side benchmark against upstream's main.py needs.
#
# Both also put the tensorboard package (pinned below) in a venv at /opt/ddlm/tools: the
# tests read ddlm's event files back with it, and it is the `tensorboard` to run.
set -euo pipefail

# The accelerator machine's torch; both builds use its LibTorch.
TORCH_VERSION=2.11.0
TORCH_VENV=${DDLM_TORCH_VENV:-/opt/ddlm/torch-$TORCH_VERSION}
CUDA_TOOLKIT_VERSION=13.0.2  # The version torch $TORCH_VERSION pins (checked below).
TENSORBOARD_VERSION=2.21.0
TOOLS_VENV=${DDLM_TOOLS_VENV:-/opt/ddlm/tools}

cuda=0
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "setup: unknown argument '$arg' (expected --cuda)" >&2; exit 2 ;;
  esac
done

packages=(
  bazel-bootstrap            # Bazel 4.2.3
  g++ pkg-config zlib1g-dev
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
  python3-venv python3-pip   # the torch and tensorboard packages, in venvs
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

pip_install() {
  $sudo "$TORCH_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "$@"
}
if [ ! -x "$TORCH_VENV/bin/python3" ]; then
  $sudo mkdir -p "$(dirname "$TORCH_VENV")"
  # Debian's own python3, whatever python3 comes first on PATH.
  $sudo /usr/bin/python3 -m venv "$TORCH_VENV"
fi
site=$("$TORCH_VENV/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# libtorch_cpu.so loads libcudart and libcupti (for its profiler) even on a machine
# without a GPU: the cudart and cupti extras of the cuda-toolkit meta-package that this
# torch pins (checked against its metadata below). Installed before torch, so that pip
# sees no torch whose other dependencies are missing.
if [ ! -f "$site/nvidia/cu13/lib/libcudart.so.13" ] || [ ! -f "$site/nvidia/cu13/lib/libcupti.so.13" ]; then
  echo "setup: installing cuda-toolkit[cudart,cupti]==$CUDA_TOOLKIT_VERSION (the CUDA runtime libraries libtorch_cpu.so loads)"
  pip_install "cuda-toolkit[cudart,cupti]==$CUDA_TOOLKIT_VERSION"
fi
installed=$("$TORCH_VENV/bin/python3" -m pip show torch 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ "$installed" != "$TORCH_VERSION" ] || [ ! -f "$site/torch/lib/libtorch_cpu.so" ]; then
  echo "setup: installing torch==$TORCH_VERSION (LibTorch with MKL and oneDNN; no CUDA dependencies) in $TORCH_VENV"
  pip_install --no-deps "torch==$TORCH_VERSION"
fi
pinned=$(sed -n 's/^Requires-Dist: cuda-toolkit\[[^]]*\] *==\([^;]*\);.*/\1/p' \
  "$site/torch-$TORCH_VERSION.dist-info/METADATA" | tr -d ' ')
if [ "$pinned" != "$CUDA_TOOLKIT_VERSION" ]; then
  echo "setup: torch $TORCH_VERSION pins cuda-toolkit '${pinned:-nothing}', not $CUDA_TOOLKIT_VERSION: update CUDA_TOOLKIT_VERSION in $0" >&2
  exit 1
fi

if [ "$cuda" = 1 ]; then
  if [ -d "$site/nvidia/cudnn/lib" ] && "$TORCH_VENV/bin/python3" -c 'import torch' 2>/dev/null; then
    echo "setup: torch $TORCH_VERSION with its CUDA libraries already in $TORCH_VENV"
  else
    echo "setup: installing torch==$TORCH_VERSION's CUDA dependencies (cuDNN, NCCL, ...; ~4.5 GB) in $TORCH_VENV"
    pip_install "torch==$TORCH_VERSION"
  fi
fi

echo "setup: ok ($(bazel --version 2>/dev/null | head -1), LibTorch $TORCH_VERSION from $site/torch)"
