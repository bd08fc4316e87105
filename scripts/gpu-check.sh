#!/usr/bin/env bash
# The GPU checks in one device call. Here: `bash scripts/gpu-check.sh pack` builds the CUDA
# and CPU addons, bundles bench/gpu-check.ts with the library into one file, and packs into
# .gpu/ (git-ignored) what the GPU machine needs: the addons and their loader, the bundle,
# pure-rand, a node binary (xz) and the PyTorch reference. Then, with the device tool: run
# `bash scripts/gpu-check.sh run` with carry [".gpu"]. It unpacks node, points the loader at
# PyTorch's CUDA 13 libraries, runs the checks (parity, the API, data parallel, throughput),
# times the PyTorch reference on the same weights and batches, and leaves the JSON reports
# in $OUT. `TSBERT_GPU_CHECK_DEVICE=cpu npx tsx bench/gpu-check.ts` dry-runs the checks here.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
pack)
  bash scripts/build-cuda.sh
  npm run build:native
  rm -rf .gpu && mkdir -p .gpu/binding .gpu/node_modules .gpu/bench/reference
  cp binding/index.cjs binding/tsbert.linux-x64-gnu.node binding/tsbert-cuda.linux-x64-gnu.node .gpu/binding/
  npx tsup bench/gpu-check.ts --no-config --format esm --target node20 --out-dir .gpu/bench
  cp -r node_modules/pure-rand .gpu/node_modules/
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
  /tmp/node bench/gpu-check.js | tee "$OUT/gpu-check.json"
  # the PyTorch reference on the same GPU, weights and batches (written by the checks), for
  # the throughput ratio
  for dir in "$OUT"/step-*; do
    python3 bench/reference/bench_step.py --dir "$dir" --device cuda
    cat "$dir/torch.json"
  done
  # where the time goes: kernels of a few B = 512 steps, if nsys is on the machine
  if command -v nsys >/dev/null; then
    TSBERT_GPU_PROFILE=1 nsys profile -o "$OUT/tsbert" --force-overwrite true /tmp/node bench/gpu-check.js >/dev/null 2>&1 || true
    nsys stats --report cuda_gpu_kern_sum "$OUT/tsbert.nsys-rep" 2>/dev/null | head -40 | tee "$OUT/kernels.txt" || true
  fi
  ;;
*)
  echo "usage: scripts/gpu-check.sh pack|run" >&2
  exit 2
  ;;
esac
