#!/usr/bin/env bash
# Builds the GPU check's binaries here (--config=cuda, against the torch wheel's CUDA
# LibTorch) and packs them, with the shared libraries a GPU machine may lack (gRPC,
# Protobuf, Abseil, glog, Gloo, tcmalloc, ...), the WikiText-2 files and upstream's
# word_language_model scripts, into one archive, .gpu_bundle.tar.xz, for tests/gpu/run.sh.
# LibTorch, CUDA and NCCL are not packed: the GPU machine's own torch (the same version,
# checked by run.sh) provides them. Neither are glibc, libstdc++, libgcc_s, zlib or
# OpenSSL: the GPU machine (Ubuntu 24.04) has them, newer (run.sh fails clearly when its
# libstdc++ is too old for the binaries).
#
#   tests/gpu/bundle.sh [--no_build] [--data DIR] [--reference DIR]
#
# --no_build skips `bazel build` and `bazel info` and packs the binaries bazel-bin holds
# as they are (a quick repack, or a CPU build for a dry run). --data (default
# ../shared/data/wikitext-2) and --reference (upstream word_language_model, default
# ../shared/reference/word_language_model) are copied in for the benchmark. .gpu_bundle/
# (the staging directory) and .gpu_bundle.tar.xz are git-ignored and never committed.
# Fails when the archive is over 60 MiB (the GPU machine takes 64 MiB of carried files).
set -euo pipefail
cd "$(dirname "$0")/../.."
data=../shared/data/wikitext-2
reference=../shared/reference/word_language_model
build=1
max_mib=60
while [ $# -gt 0 ]; do
  case "$1" in
    --no_build) build=0; shift ;;
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
if [ "$build" = 1 ]; then
  bazel build --config=cuda "${targets[@]}"
  bin=$(bazel info --config=cuda bazel-bin)
else
  bin=$(readlink -f bazel-bin) || { echo "bundle: no bazel-bin here" >&2; exit 1; }
  echo "bundle: --no_build: packing the binaries in $bin as they are"
fi
for t in "${targets[@]}"; do
  path=${t#//}
  [ -x "$bin/${path%%:*}/${path##*:}" ] || { echo "bundle: $bin/${path%%:*}/${path##*:} is missing (build $t)" >&2; exit 1; }
done

out=.gpu_bundle
archive=.gpu_bundle.tar.xz
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
for t in "${targets[@]}"; do
  path=${t#//}
  pkg=${path%%:*}
  name=${path##*:}
  mkdir -p "$out/bin/$pkg"
  cp "$bin/$pkg/$name" "$out/bin/$pkg/$name"
  chmod u+w "$out/bin/$pkg/$name"
  strip --strip-all "$out/bin/$pkg/$name"
done

# Shared libraries: everything ldd resolves here except what the GPU machine has: glibc's
# own, libstdc++ and libgcc_s, zlib and OpenSSL (its python3 needs them), and LibTorch,
# CUDA and NCCL (from the torch wheel: the GPU machine's torch has them).
sites=(/opt/ddlm/torch-*/lib/python3*/site-packages)
torch_site=${sites[0]}
[ -d "$torch_site" ] || { echo "bundle: no torch venv under /opt/ddlm (./setup.sh)" >&2; exit 1; }
# ldd on the binaries where Bazel built them: tests link the project's own libraries
# as shared objects (_solib_k8/) through a relative rpath that resolves only there.
for t in "${targets[@]}"; do
  path=${t#//}
  ldd "$bin/${path%%:*}/${path##*:}" | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
  case "$lib" in
    "$torch_site"/*) ;;
    */libc.so.*|*/libm.so.*|*/libpthread.so.*|*/libdl.so.*|*/librt.so.*|*/libutil.so.*|*/libresolv.so.*) ;;
    */libanl.so.*|*/libmvec.so.*|*/libnss_*.so.*|*/libthread_db.so.*|*/ld-linux*) ;;
    */libstdc++.so.*|*/libgcc_s.so.*) ;;
    */libz.so.1|*/libssl.so.3|*/libcrypto.so.3) ;;
    # The NVIDIA driver's own (a CUDA stub here would hide the GPU machine's driver).
    */libcuda.so*|*/libnvidia-*.so*) ;;
    # One LibTorch, one CUDA runtime, one NCCL per process: the torch wheel's, never a copy.
    */libtorch*.so*|*/libc10*.so*|*/libcudart.so*|*/libnccl.so*|*/libcublas*.so*|*/libcudnn*.so*)
      echo "bundle: $lib resolves outside $torch_site: the binaries must load the torch wheel's" >&2
      exit 1 ;;
    *) cp -L "$lib" "$out/lib/" ;;
  esac
done
chmod -R u+w "$out/lib"
strip --strip-unneeded "$out"/lib/*.so* 2>/dev/null || true

# What the GPU machine must provide.
glibc=$(find "$out/bin" "$out/lib" -type f | while read -r f; do objdump -T "$f" 2>/dev/null; done |
        grep -o 'GLIBC_2\.[0-9]*' | sort -uV | tail -1)
glibcxx=$(find "$out/bin" "$out/lib" -type f | while read -r f; do objdump -T "$f" 2>/dev/null; done |
          grep -o 'GLIBCXX_3\.4\.[0-9]*' | sort -uV | tail -1)
torch_python="$(dirname "$(dirname "$(dirname "$torch_site")")")/bin/python3"
if ! torch_facts=$("$torch_python" -W ignore -c 'import torch; print(torch.__version__.split("+")[0], torch.version.cuda)'); then
  echo "bundle: $torch_python cannot import torch (the wheel the --config=cuda build links): run ./setup.sh --cuda" >&2
  exit 1
fi
read -r torch_version torch_cuda <<< "$torch_facts"
cat > "$out/MANIFEST" <<MANIFEST
torch_version=$torch_version
torch_cuda=$torch_cuda
glibc_needed=${glibc#GLIBC_}
glibcxx_needed=${glibcxx#GLIBCXX_}
built_on=$(. /etc/os-release; echo "$PRETTY_NAME") glibc $(ldd --version | head -1 | awk '{print $NF}')
built_from=$(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)$([ "$build" = 1 ] || echo " (--no_build)")
MANIFEST

# The side-by-side benchmark's inputs (not part of the repository). Without them the
# bf16 and bench steps would fail on the GPU machine, wasting its one run: no archive.
if [ -f "$data/train.txt" ] && [ -f "$data/valid.txt" ] && [ -f "$data/test.txt" ]; then
  mkdir -p "$out/data/wikitext-2" && cp "$data"/{train,valid,test}.txt "$out/data/wikitext-2/"
else
  echo "bundle: no WikiText-2 (train.txt, valid.txt, test.txt) in $data: the bf16 and bench steps need it (--data DIR)" >&2
  exit 1
fi
if [ -f "$reference/main.py" ] && [ -f "$reference/model.py" ] && [ -f "$reference/data.py" ]; then
  mkdir -p "$out/upstream" && cp "$reference"/{main.py,model.py,data.py} "$out/upstream/"
else
  echo "bundle: no upstream main.py, model.py, data.py in $reference: the bench step needs them (--reference DIR)" >&2
  exit 1
fi
cat "$out/MANIFEST"
du -sh "$out"

# One archive (what the GPU machine is given).
start=$(date +%s.%N)
tmp=.gpu_bundle.tmp.tar.xz
rm -f "$tmp"
tar -C "$out" -cf - . | xz -T0 -6 > "$tmp"
mv -f "$tmp" "$archive"
end=$(date +%s.%N)
bytes=$(stat -c %s "$archive")
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "$archive: $mib MiB ($bytes bytes), packed in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s"
if [ "$bytes" -gt $((max_mib * 1048576)) ]; then
  echo "bundle: $archive is $mib MiB, over the $max_mib MiB limit" >&2
  exit 1
fi
