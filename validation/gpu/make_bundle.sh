#!/usr/bin/env bash
# Builds the GPU validation bundle on a machine with nvcc and the project's dev packages, for a GPU
# machine that has only the CUDA runtime libraries (cuBLAS), python3 and no network:
#   bash validation/gpu/make_bundle.sh [BUNDLE_DIR] [BUILD_DIR]
# BUNDLE_DIR defaults to ./gpu-bundle (git-ignored), BUILD_DIR to ./build-gpu-bundle.
# The program links libstdc++ and yaml-cpp statically; the bundle then holds it, run.sh, and any
# other non-system, non-CUDA shared library it still needs (lib/). Run it with
#   bash gpu-bundle/run.sh OUT_DIR
set -eu
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUNDLE="${1:-$REPO/gpu-bundle}"
BUILD="${2:-$REPO/build-gpu-bundle}"
cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSCALEPLAN_BUILD_BENCH=OFF -DSCALEPLAN_WITH_MPI=OFF \
  -DSCALEPLAN_WITH_GUI=OFF -DSCALEPLAN_WITH_SIMGRID=OFF -DSCALEPLAN_WITH_CUDA=ON -DSCALEPLAN_GPU_BUNDLE=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" >/dev/null
cmake --build "$BUILD" -j"${JOBS:-2}" --target scaleplan_gpu_validate test_cuda_backend scaleplan scaleplan_cuda_module
BIN="$BUILD/executor/cuda/validation_gpu/scaleplan_gpu_validate"
TEST="$BUILD/tests/test_cuda_backend"
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/lib"
CLI="$BUILD/cli/scaleplan"
MODULE="$BUILD/executor/cuda/libscaleplan_cuda.so"  # `scaleplan run --backend cuda` loads it from its own folder
cp "$BIN" "$TEST" "$CLI" "$MODULE" "$BUNDLE/"
cp "$REPO/executor/data/corpus.txt" "$BUNDLE/corpus.txt" 2>/dev/null || true
strip --strip-debug "$BUNDLE/scaleplan_gpu_validate" "$BUNDLE/test_cuda_backend" "$BUNDLE/scaleplan" "$BUNDLE/libscaleplan_cuda.so" || true
cp "$REPO/validation/gpu/run.sh" "$BUNDLE/run.sh"
# Copy what ldd resolves outside glibc/libgcc/libstdc++ and outside CUDA (the GPU machine has its
# own CUDA 13; the validation program links libstdc++ statically, the GPU unit tests use the
# machine's libstdc++).
for b in "$BIN" "$TEST" "$CLI" "$MODULE"; do
  ldd "$b" | awk '/=> \// {print $1, $3}' | while read -r name path; do
    case "$name" in
      libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libgcc_s.so*|libstdc++.so*|ld-linux*|libcuda.so*|libcublas*|libcudart*|libnccl*) ;;
      *) [ -f "$BUNDLE/lib/$name" ] || { cp -L "$path" "$BUNDLE/lib/" && echo "bundled $name"; } ;;
    esac
  done
done
{
  echo "scaleplan GPU validation bundle"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "nvcc: $(nvcc --version 2>/dev/null | tail -1)"
  echo "CUDA architectures: ${CUDA_ARCH:-90}"
  echo "highest glibc symbol version needed: $(objdump -T "$BUNDLE/scaleplan_gpu_validate" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
  echo "run: bash run.sh OUT_DIR   (or OUT=dir bash run.sh)"
  echo "needs on the GPU machine: NVIDIA driver for CUDA 13, libcublas.so.13 + libcublasLt.so.13 (found under /usr/local/cuda/lib64 or via LD_LIBRARY_PATH), bash, timeout; python3 optional (results.json)"
  echo
  echo "ldd:"
  ldd "$BUNDLE/scaleplan_gpu_validate"
} >"$BUNDLE/BUNDLE_INFO.txt"
du -sh "$BUNDLE"
