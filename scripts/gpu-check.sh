#!/usr/bin/env bash
# The GPU checks in one device call. Here: `bash scripts/gpu-check.sh pack` builds the CUDA
# and CPU addons, bundles bench/gpu-check.ts with the library into one file, installs the
# packed packages (tsbert, tsbert-linux-x64-gnu, tsbert-linux-x64-gnu-cuda) into an app folder
# as a user would, and packs into .gpu/ (git-ignored) what the GPU machine needs: the addons
# and their loader, the bundle, the app (whose packages the bundle uses), the PyTorch
# reference (all in one payload.tar.xz) and a node binary (xz). Then, with the device tool: run
# `bash scripts/gpu-check.sh run` with carry [".gpu"]. It unpacks, points the loader at
# PyTorch's CUDA 13 libraries, runs the API from the installed CUDA package without NCCL on the
# library path (bench/gpu-package.mjs), then the checks (parity, the API, data parallel,
# throughput, inference of MiniLM- and BERT-base-sized models), times the PyTorch reference on
# the same weights and batches, and leaves the JSON reports in $OUT.
# `TSBERT_GPU_CHECK_DEVICE=cpu npx tsx bench/gpu-check.ts` dry-runs the checks here.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
pack)
  bash scripts/build-cuda.sh
  npm run build:native
  npm run build:ts
  rm -rf .gpu && mkdir -p .gpu/payload/binding .gpu/payload/bench/reference .gpu/tarballs
  payload=.gpu/payload
  cp binding/index.cjs binding/tsbert.linux-x64-gnu.node binding/tsbert-cuda.linux-x64-gnu.node $payload/binding/
  npx tsup bench/gpu-check.ts --no-config --format esm --target node20 --out-dir $payload/bench
  cp bench/reference/*.py $payload/bench/reference/
  echo '{ "type": "module" }' > $payload/package.json
  # the packages as a user installs them, the CUDA one included
  npm pack --ignore-scripts --pack-destination .gpu/tarballs
  cp binding/tsbert.linux-x64-gnu.node npm/linux-x64-gnu/
  cp binding/tsbert-cuda.linux-x64-gnu.node npm/linux-x64-gnu-cuda/
  (cd npm/linux-x64-gnu && npm pack --pack-destination ../../.gpu/tarballs)
  (cd npm/linux-x64-gnu-cuda && npm pack --pack-destination ../../.gpu/tarballs)
  mkdir -p $payload/app && echo '{ "name": "gpu-app", "private": true }' > $payload/app/package.json
  (cd $payload/app && npm install --no-audit --no-fund --omit=dev "$PWD"/../../tarballs/*.tgz)
  cp bench/gpu-package.mjs $payload/app/
  # the bundle's packages (the library's dependencies: pure-rand, @huggingface/hub, ...) are
  # the installed app's
  ln -s app/node_modules $payload/node_modules
  tar -C $payload -cf - . | xz -T2 > .gpu/payload.tar.xz
  rm -rf $payload .gpu/tarballs
  xz -T2 -c "$(command -v node)" > .gpu/node.xz
  du -sh .gpu/*
  ;;
run)
  cd .gpu
  xz -dc node.xz > /tmp/node && chmod +x /tmp/node
  xz -dc payload.tar.xz | tar -xf -
  site=$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))')/nvidia
  cuda_libs=$site/cu13/lib:$site/cublas/lib:$site/curand/lib:$site/cuda_runtime/lib
  # $OUT gets the reports alone (the device tool brings back at most 8 files); the weights and
  # batches the checks hand to PyTorch stay in $work
  work=/tmp/gpu-work && rm -rf $work && mkdir -p $work
  nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/gpu.txt"
  # the API from the installed CUDA package, with no NCCL on the library path
  (cd app && LD_LIBRARY_PATH=$cuda_libs:${LD_LIBRARY_PATH:-} timeout 300 /tmp/node gpu-package.mjs | tee "$OUT/gpu-package.json") || true
  export LD_LIBRARY_PATH=$cuda_libs:$site/nccl/lib:${LD_LIBRARY_PATH:-}
  # the MiniLM- and BERT-base-sized models of the inference rows (random weights)
  timeout 300 python3 bench/reference/gpu_inference_ref.py prepare --dir $work/inference || true
  OUT=$work TSBERT_GPU_INFERENCE_DIR=$work/inference timeout 600 /tmp/node bench/gpu-check.js | tee "$OUT/gpu-check.json" || true
  # the PyTorch reference on the same GPU, weights and batches (written by the checks), for
  # the throughput ratio; then PyTorch's inference rows beside tsbert's
  for dir in "$work"/step-*; do
    timeout 300 python3 bench/reference/bench_step.py --dir "$dir" --device cuda && cat "$dir/torch.json"
  done | tee "$OUT/torch-steps.txt" || true
  timeout 300 python3 bench/reference/gpu_inference_ref.py run --dir $work/inference --device cuda | tee "$OUT/inference.json" || true
  # where the GPU's time goes, if Nsight Compute is on the machine (no nsys there): each
  # kernel's duration in 2 training steps at B = 512 and in 2 encodes of the BERT-base-sized
  # model at B = 32, summed by kernel
  if command -v ncu >/dev/null; then
    for job in train encode; do
      OUT=$work TSBERT_GPU_PROFILE=$job TSBERT_GPU_INFERENCE_DIR=$work/inference timeout 240 \
        ncu --metrics gpu__time_duration.sum --csv --print-units base --launch-count 5000 \
        /tmp/node bench/gpu-check.js > "$work/ncu-$job.csv" 2>"$work/ncu-$job.err" || true
      python3 bench/reference/kernel_times.py "$work/ncu-$job.csv" 2>&1 | tee "$OUT/kernels-$job.txt" || true
    done
  fi
  ;;
*)
  echo "usage: scripts/gpu-check.sh pack|run" >&2
  exit 2
  ;;
esac
