#!/usr/bin/env bash
# cargo's RUSTC_WORKSPACE_WRAPPER in the test command (scripts/setup.sh): each workspace
# crate is compiled by clippy-driver, which lints it (CLIPPY_ARGS, warnings denied) in the
# same compilation that builds it, so clippy costs no second build of the dependencies.
# For the libraries plugins are built on (the ABI crate voicehost-plugin-api, the runtime and
# the tts and stt SDKs) it also has rustdoc write the crate's public API as JSON, from
# the very arguments of that compilation (same features, same compiled dependencies), into
# <target>/<profile>/api/<crate>-<hash>/, the hash being the compilation's own
# (cargo builds the crate once per feature set: `cargo build --workspace` and a `cargo test
# -p …` of a few crates make two) for scripts/api-check.sh.
#
# cargo runs it as: build-wrapper.sh RUSTC ARGS...
set -euo pipefail
rustc=$1
shift
bin="$("$rustc" --print sysroot)/bin"
"$bin/clippy-driver" "$rustc" "$@"

crate="" out_dir="" is_test=0 extra=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --crate-name) crate=${args[$((i + 1))]} ;;
    --out-dir) out_dir=${args[$((i + 1))]} ;;
    --test) is_test=1 ;;
    extra-filename=*) extra=${args[$i]#extra-filename=} ;;
  esac
done
case "$crate" in
  voicehost_plugin_api | voicehost_plugin_runtime | voicehost_tts_sdk | voicehost_stt_sdk) ;;
  *) exit 0 ;;
esac
[ "$is_test" = 0 ] && [ -n "$out_dir" ] || exit 0

# rustdoc takes the inputs of the compilation (source, edition, cfgs, dependencies); the
# code generation, output and lint options are rustc's alone.
doc=()
for ((i = 0; i < ${#args[@]}; i++)); do
  a=${args[$i]}
  case "$a" in
    --crate-name | --edition | --cfg | --check-cfg | -L | --extern | --crate-type | --target | --sysroot)
      doc+=("$a" "${args[$((i + 1))]}"); i=$((i + 1)) ;;
    --edition=* | --cfg=* | --check-cfg=* | --extern=* | --crate-type=* | --target=* | -L*)
      doc+=("$a") ;;
    -C | --codegen | --emit | --out-dir | -o | --error-format | --json | --diagnostic-width | \
      -W | -A | -D | -F | --warn | --allow | --deny | --forbid | --force-warn | --cap-lints | -Z)
      i=$((i + 1)) ;;
    -*) ;;
    *.rs) doc+=("$a") ;;
  esac
done
api="$out_dir/../api/$crate$extra"
mkdir -p "$api"
RUSTC_BOOTSTRAP=1 "$bin/rustdoc" "${doc[@]}" --cap-lints allow \
  -Z unstable-options --output-format json -o "$api"
