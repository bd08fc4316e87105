#!/usr/bin/env bash
# `npm run build:cuda`: builds the addon with candle's CUDA backend into
# binding/tsbert-cuda.linux-x64-gnu.node, next to the CPU addon (src/native.ts loads the CUDA
# one when it can and falls back to the CPU one). Uses the toolkit of scripts/setup-cuda.sh.
# Compute capability 90 (H100/H200) unless CUDA_COMPUTE_CAP says otherwise. The addon links
# the driver, cuBLAS, cuRAND and NVRTC; NCCL (several GPUs) is opened when first used, never
# linked (checked below). Incremental: its own target folder, target-cuda/, is kept between
# builds.
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
cargo build --release -p tsbert-node --features cuda --target-dir target-cuda
addon=binding/tsbert-cuda.linux-x64-gnu.node
cp target-cuda/release/libtsbert_node.so "$addon"
# The driver must be a needed library (crates/tsbert-node/build.rs says why); a single-GPU
# user needs no NCCL, so it must not be.
needed=$(readelf -d "$addon" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p')
if ! grep -qx 'libcuda.so.1' <<<"$needed"; then
  echo "$addon does not name libcuda.so.1 as needed: its driver calls would be unbound" >&2
  exit 1
fi
if grep -q '^libnccl' <<<"$needed"; then
  echo "$addon links libnccl; it must open it at run time (crates/tsbert-core/src/nccl.rs)" >&2
  exit 1
fi
echo "built $addon (compute capability $CUDA_COMPUTE_CAP); needs:" $needed
