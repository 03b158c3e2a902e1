#!/usr/bin/env bash
# Installs everything ddlm needs on Debian 12 from Debian's archive (idempotent; run as
# root or with sudo available). Nothing else is downloaded: Bazel builds offline.
set -euo pipefail

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
echo "setup: ok ($(bazel --version 2>/dev/null | head -1), BLAS $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3))"
