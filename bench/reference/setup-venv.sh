#!/usr/bin/env bash
# Creates bench/.venv: PyTorch (run on the CPU) + safetensors + numpy + matplotlib, every
# version pinned in bench/reference/requirements.txt, all from PyPI; and installs
# onnxruntime-node (pinned, from npm) in bench/.cache/onnxruntime-node for bench:ort-node.
#
# PyPI's Linux torch wheel is built against CUDA and cannot even be imported without the
# nvidia-* libraries it declares (libtorch_cpu.so itself links libcudart and libcupti; the
# CPU-only builds live on PyTorch's own index, which this project does not reach), so the
# venv gets those (~3 GB). It does not get triton (1 GB, torch.compile on GPUs only):
# requirements.txt is the complete pinned set and is installed with --no-deps. No GPU,
# driver or CUDA toolkit is needed to run it on the CPU. About 4.5 GB on disk.
#
# Idempotent: when the venv exists, was made from the same requirements.txt and imports,
# it exits at once. PYTHON=/path/to/python3.x picks the interpreter (3.10 or newer).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/bench/.venv"
req="$here/requirements.txt"
stamp="$venv/.tsbert-reference-stamp"
want="$(sha256sum "$req" | cut -d' ' -f1)"
smoke='import torch, safetensors, numpy, matplotlib
x = torch.ones(2, 2, requires_grad=True)
(x @ x).sum().backward()
assert x.grad.sum().item() == 16.0
torch.optim.Adam([x], lr=0.1).step()'

# onnxruntime-node for bench:ort-node, in its own folder (not a dependency of tsbert): its
# install script would download CUDA libraries, which the CPU bench does not need
ort_node="$root/bench/.cache/onnxruntime-node"
if [[ ! -d "$ort_node/node_modules/onnxruntime-node" ]]; then
  mkdir -p "$ort_node"
  npm install --prefix "$ort_node" --no-save --no-package-lock --no-audit --no-fund --ignore-scripts onnxruntime-node@1.31.1
fi

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$venv/bin/python" -c "$smoke" 2>/dev/null; then
  echo "bench/.venv is already set up ($("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
  exit 0
fi

python="${PYTHON:-python3}"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10 or newer is needed, found " + sys.version)'

start=$SECONDS
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --no-input --disable-pip-version-check --quiet --no-deps -r "$req"
"$venv/bin/python" -c "$smoke"
echo "$want" > "$stamp"
echo "bench/.venv ready in $((SECONDS - start)) s: $("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'), $(du -sh "$venv" | cut -f1)"
