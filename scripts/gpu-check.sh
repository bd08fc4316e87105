#!/usr/bin/env bash
# GPU checks in one device call (issue 7). Here: `bash scripts/gpu-check.sh pack` builds the
# CUDA and CPU addons and dist/, and packs into .gpu/ (git-ignored) what the GPU machine
# needs: the addons and loader, dist/, pure-rand, a node binary (xz), the check script and
# the PyTorch reference. Then, with the device tool: run `bash scripts/gpu-check.sh run`
# with carry [".gpu"]. It unpacks node, points the loader at PyTorch's CUDA 13 libraries,
# runs bench/gpu-check.mjs (parity, throughput) and the PyTorch reference benchmark, and
# leaves the JSON reports in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
pack)
  bash scripts/build-cuda.sh
  npm run build:native
  npm run build:ts
  rm -rf .gpu && mkdir -p .gpu/binding .gpu/node_modules .gpu/bench/reference
  cp binding/index.cjs binding/tsbert.linux-x64-gnu.node binding/tsbert-cuda.linux-x64-gnu.node .gpu/binding/
  cp -r dist .gpu/dist
  cp -r node_modules/pure-rand .gpu/node_modules/
  cp bench/gpu-check.mjs .gpu/bench/
  cp bench/reference/*.py .gpu/bench/reference/
  echo '{ "type": "module" }' > .gpu/package.json
  xz -T2 -c "$(command -v node)" > .gpu/node.xz
  du -sh .gpu
  ;;
run)
  cd .gpu
  xz -dc node.xz > /tmp/node && chmod +x /tmp/node
  site=$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))')/nvidia
  export LD_LIBRARY_PATH=$site/cu13/lib:$site/cublas/lib:$site/curand/lib:$site/cuda_nvrtc/lib:$site/cuda_runtime/lib:$site/nccl/lib:${LD_LIBRARY_PATH:-}
  nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/gpu.txt"
  /tmp/node bench/gpu-check.mjs | tee "$OUT/gpu-check.json"
  # the PyTorch reference on the same GPU, same configuration, for the throughput ratio
  for b in 512 1; do
    python3 bench/reference/bench_step.py --synthetic "$b" --device cuda --out "$OUT/torch-$b.json"
  done
  # where the time goes: kernels of a few B = 512 steps, if nsys is on the machine
  if command -v nsys >/dev/null; then
    TSBERT_GPU_PROFILE=1 nsys profile -o "$OUT/tsbert" --force-overwrite true /tmp/node bench/gpu-check.mjs >/dev/null 2>&1 || true
    nsys stats --report cuda_gpu_kern_sum "$OUT/tsbert.nsys-rep" 2>/dev/null | head -40 | tee "$OUT/kernels.txt" || true
  fi
  ;;
*)
  echo "usage: scripts/gpu-check.sh pack|run" >&2
  exit 2
  ;;
esac
