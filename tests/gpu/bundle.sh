#!/usr/bin/env bash
# Builds the GPU check's binaries here (--config=cuda, against the torch wheel's CUDA
# LibTorch) and packs them, with the shared libraries a GPU machine may lack (gRPC,
# Protobuf, Abseil, glog, Gloo, tcmalloc, ...), into .gpu_bundle/ for tests/gpu/run.sh.
# LibTorch, CUDA and NCCL are not packed: the GPU machine's own torch (the same version,
# checked by run.sh) provides them.
#
#   tests/gpu/bundle.sh [--data DIR] [--reference DIR]
#
# --data (default ../shared/data/wikitext-2) and --reference (upstream
# word_language_model, default ../shared/reference/word_language_model) are copied in
# for the benchmark; .gpu_bundle/ is git-ignored and never committed.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=../shared/data/wikitext-2
reference=../shared/reference/word_language_model
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --reference) reference=$2; shift 2 ;;
    *) echo "bundle: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

targets=(
  //coordinator/cli:ddlm //coordinator:ddlm_coordinator
  //worker:ddlm_worker //worker:ddlm_train
  //common/benchmarks:train_throughput
  //common/training:device_test //tests/gpu:gpu_training_test //tests/gpu:nccl_collective_test
  //worker:data_parallel_equivalence_test
)
bazel build --config=cuda "${targets[@]}"
bin=$(bazel info --config=cuda bazel-bin)

out=.gpu_bundle
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/lib-fallback"
for t in "${targets[@]}"; do
  path=${t#//}
  pkg=${path%%:*}
  name=${path##*:}
  mkdir -p "$out/bin/$pkg"
  cp "$bin/$pkg/$name" "$out/bin/$pkg/$name"
  chmod u+w "$out/bin/$pkg/$name"
  strip --strip-debug "$out/bin/$pkg/$name"
done

# Shared libraries: everything ldd resolves here except glibc's own, and LibTorch, CUDA
# and NCCL (from the torch wheel: the GPU machine's torch has them).
torch_site=$(ls -d /opt/ddlm/torch-*/lib/python3*/site-packages | head -1)
# ldd on the binaries where Bazel built them: tests link the project's own libraries
# as shared objects (_solib_k8/) through a relative rpath that resolves only there.
for t in "${targets[@]}"; do
  path=${t#//}
  ldd "$bin/${path%%:*}/${path##*:}" | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
  case "$lib" in
    "$torch_site"/*) ;;
    */libc.so.*|*/libm.so.*|*/libpthread.so.*|*/libdl.so.*|*/librt.so.*|*/ld-linux*) ;;
    */libstdc++.so.*|*/libgcc_s.so.*) cp -L "$lib" "$out/lib-fallback/" ;;
    *) cp -L "$lib" "$out/lib/" ;;
  esac
done
chmod -R u+w "$out/lib" "$out/lib-fallback"
strip --strip-unneeded "$out"/lib/*.so* 2>/dev/null || true

# What the GPU machine must provide.
glibc=$(find "$out/bin" "$out/lib" -type f | while read -r f; do objdump -T "$f" 2>/dev/null; done |
        grep -o 'GLIBC_2\.[0-9]*' | sort -uV | tail -1)
torch_version=$("$(dirname "$(dirname "$(dirname "$torch_site")")")/bin/python3" -c \
  'import torch; print(torch.__version__.split("+")[0])')
cat > "$out/MANIFEST" <<MANIFEST
torch_version=$torch_version
glibc_needed=${glibc#GLIBC_}
built_on=$(. /etc/os-release; echo "$PRETTY_NAME") glibc $(ldd --version | head -1 | awk '{print $NF}')
built_from=$(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)
MANIFEST

# The side-by-side benchmark's inputs (not part of the repository).
if [ -f "$data/train.txt" ]; then
  mkdir -p "$out/data/wikitext-2" && cp "$data"/{train,valid,test}.txt "$out/data/wikitext-2/"
fi
if [ -f "$reference/main.py" ]; then
  mkdir -p "$out/upstream" && cp "$reference"/{main.py,model.py,data.py} "$out/upstream/"
fi
cat "$out/MANIFEST"
du -sh "$out"
