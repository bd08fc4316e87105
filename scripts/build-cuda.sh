#!/usr/bin/env bash
# `npm run build:cuda`: builds the addon with candle's CUDA backend into
# binding/tsbert-cuda.linux-x64-gnu.node, next to the CPU addon (src/native.ts loads the CUDA
# one when it can and falls back to the CPU one). Uses the toolkit of scripts/setup-cuda.sh.
# Compute capability 90 (H100/H200) unless CUDA_COMPUTE_CAP says otherwise. With NCCL for
# multi-GPU gradient sums (libnccl.so.2 needed at run time, as PyTorch's CUDA wheels have it)
# unless TSBERT_NCCL=0. Incremental:
# its own target folder, target-cuda/, is kept between builds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-cuda.sh
root=$PWD/.cuda/root
# cudarc links libcuda (the driver) dynamically; linking needs a libcuda.so, which the wheels
# do not ship. An empty stub with the driver's soname satisfies the linker; the real driver
# is what loads at run time.
stubs=$PWD/.cuda/stubs
if [ ! -f "$stubs/libcuda.so" ]; then
  mkdir -p "$stubs"
  echo 'void tsbert_libcuda_stub(void) {}' > "$stubs/stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/stub.c"
fi
export CUDA_ROOT=$root CUDA_PATH=$root CUDA_HOME=$root
export PATH=$root/bin:$PATH
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH=$root/lib64:$stubs${LIBRARY_PATH:+:$LIBRARY_PATH}
export RUSTFLAGS="${RUSTFLAGS:-} -L $root/lib64 -L $stubs"
features=cuda
[ "${TSBERT_NCCL:-1}" = 0 ] || features=nccl
cargo build --release -p tsbert-node --features "$features" --target-dir target-cuda
cp target-cuda/release/libtsbert_node.so binding/tsbert-cuda.linux-x64-gnu.node
echo "built binding/tsbert-cuda.linux-x64-gnu.node (features $features, compute capability $CUDA_COMPUTE_CAP)"
