#!/usr/bin/env bash
# Installs a CUDA 13.0 toolkit (nvcc, headers, cudart, cuBLAS, cuRAND, NVRTC, NCCL) from
# PyPI's nvidia-* wheels into .cuda/ in this repository, and lays it out as a CUDA_ROOT
# (.cuda/root/{bin,include,lib64,nvvm}). CUDA 13.0 to match the GPU machines' 13.0 driver:
# PTX from a newer nvcc would not load there. Idempotent; needs only python3 with pip.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$PWD/.cuda
stamp=$prefix/.installed-13.0.88
if [ -f "$stamp" ]; then echo "CUDA toolkit ready in $prefix/root"; exit 0; fi
rm -rf "$prefix"
python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$prefix/site" \
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
  'nvidia-cublas==13.0.*' 'nvidia-curand==10.4.0.*' 'nvidia-nccl-cu13==2.27.*'
root=$prefix/root
mkdir -p "$root/bin" "$root/include" "$root/lib64"
for pkg in "$prefix"/site/nvidia/cu13 "$prefix"/site/nvidia/*/; do
  [ -d "$pkg" ] || continue
  [ -d "$pkg/bin" ] && cp -rs "$pkg/bin/." "$root/bin/" 2>/dev/null || true
  [ -d "$pkg/include" ] && cp -rs "$pkg/include/." "$root/include/" 2>/dev/null || true
  [ -d "$pkg/lib" ] && cp -rs "$pkg/lib/." "$root/lib64/" 2>/dev/null || true
  [ -d "$pkg/nvvm" ] && cp -rs "$pkg/nvvm" "$root/" 2>/dev/null || true
done
# unversioned names for the linker
for lib in "$root"/lib64/lib*.so.*; do
  base=${lib%%.so.*}.so
  [ -e "$base" ] || ln -s "$(basename "$lib")" "$base"
done
chmod +x "$root"/bin/* "$root"/nvvm/bin/* 2>/dev/null || true
"$root/bin/nvcc" --version | tail -2
touch "$stamp"
echo "CUDA toolkit ready in $root"
