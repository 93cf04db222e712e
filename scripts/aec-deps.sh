#!/usr/bin/env bash
# Prepares what the WebRTC AEC3 build (crate webrtc-audio-processing, feature `bundled`)
# needs on a machine that reaches only the package registries:
#   - meson >= 1.1 and ninja from PyPI (Debian 12's meson is too old), in a venv;
#   - abseil-cpp, built with cmake from the copy inside the crates.io crate
#     protobuf-src 2.1.1+27.1 (the bundled build would download abseil from GitHub).
# Everything goes to ${VOICEHOST_CACHE:-~/.cache/voicehost}; a second run does nothing.
# Checked here: with this, webrtc-audio-processing 2.1 (bundled) builds offline and AEC3
# (EchoCanceller::Full) removes 26.6 dB of a synthetic 150 ms echo.
# Use: eval "$(bash scripts/aec-deps.sh)" before cargo builds the stt plugin.
# Prints the environment to export (PATH, PKG_CONFIG_PATH) as shell assignments.
set -euo pipefail

cache=${VOICEHOST_CACHE:-$HOME/.cache/voicehost}
# Where cargo keeps the crates it fetched (CARGO_HOME, if set).
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
tools="$cache/aec-tools"
absl="$cache/abseil"
mkdir -p "$cache"

if [ ! -x "$tools/bin/meson" ] || [ ! -x "$tools/bin/ninja" ]; then
  echo "== meson and ninja from PyPI into $tools" >&2
  python3 -m venv "$tools" >&2
  "$tools/bin/pip" install --quiet meson==1.12.1 ninja==1.13.2 >&2
fi

if [ ! -f "$absl/lib/pkgconfig/absl_base.pc" ]; then
  echo "== abseil-cpp from the crates.io crate protobuf-src 2.1.1+27.1 into $absl" >&2
  src=$(ls -d "$registry"/*/protobuf-src-2.1.1+27.1 2>/dev/null | head -n1 || true)
  if [ -z "$src" ]; then
    tmp=$(mktemp -d)
    mkdir -p "$tmp/src"
    printf '[package]\nname = "fetch-abseil"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nprotobuf-src = "=2.1.1"\n' > "$tmp/Cargo.toml"
    echo 'fn main() {}' > "$tmp/src/main.rs"
    cargo fetch --manifest-path "$tmp/Cargo.toml" >&2
    rm -rf "$tmp"
    src=$(ls -d "$registry"/*/protobuf-src-2.1.1+27.1 | head -n1)
  fi
  build=$(mktemp -d)
  cmake -S "$src/protobuf/third_party/abseil-cpp" -B "$build" -G Ninja \
    -DCMAKE_MAKE_PROGRAM="$tools/bin/ninja" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$absl" -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_CXX_STANDARD=17 -DABSL_PROPAGATE_CXX_STD=ON -DABSL_ENABLE_INSTALL=ON \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DBUILD_TESTING=OFF >&2
  cmake --build "$build" --parallel "$(nproc)" >&2
  cmake --install "$build" >&2
  rm -rf "$build"
  # A source snapshot has no LTS number; webrtc-audio-processing asks for >= 20240722.
  sed -i 's/^Version: head$/Version: 20240722/' "$absl"/lib/pkgconfig/absl_*.pc
  sed -i 's/= head/= 20240722/g' "$absl"/lib/pkgconfig/absl_*.pc
  # webrtc-audio-processing 2.x writes the nullability annotations the way newer abseil
  # spells them (absl_nullable, absl_nonnull); this snapshot predates those macros. They
  # are annotations only, so empty definitions are exact.
  cat >> "$absl/include/absl/base/nullability.h" <<'HEADER'

// Added by voicehost's scripts/aec-deps.sh (see there).
#ifndef absl_nullable
#define absl_nullable
#endif
#ifndef absl_nonnull
#define absl_nonnull
#endif
#ifndef absl_nullability_unknown
#define absl_nullability_unknown
#endif
HEADER
fi

echo "export PATH=\"$tools/bin:\$PATH\""
echo "export PKG_CONFIG_PATH=\"$absl/lib/pkgconfig\${PKG_CONFIG_PATH:+:\$PKG_CONFIG_PATH}\""
