#!/usr/bin/env bash
# The compatibility check of the crates third-party plugins build on: none may break them
# without saying so in its version.
#
#   bash scripts/api-check.sh           check (the test command runs it after the build)
#   bash scripts/api-check.sh --bless   write the current public APIs to each crate's api.txt
#
# The crates: the ABI crate voicehost-plugin-api (plugin-api/), the runtime
# (plugin-api/runtime) and the tts and stt SDKs (plugin-api/tts, plugin-api/stt). Each has
# an api.txt beside its Cargo.toml: its public API as text (tests/api-check: one line per
# item with its signature), committed and kept equal to the code, so a change to an API
# shows in the diff and each commit's file is the API of that commit. For each crate:
#   1. the current API is read from rustdoc's JSON of the crate as `cargo build --workspace`
#      compiles it (scripts/build-env.sh; the test command has built it: then nothing is
#      compiled here);
#   2. it fails if api.txt differs from it (review, then --bless);
#   3. the API is compared with the previous version's — api.txt in the newest commit whose
#      version of the crate differs from the current one — and it fails on a breaking
#      change (an item removed or changed; a field, variant or required trait item added
#      where users rely on the set being closed) unless the version says so (0.1.x → 0.2.0;
#      for the ABI crate that also makes the host refuse plugins of the old version: see
#      plugin-api/COMPATIBILITY.md). A crate's `moved-from-<old version>.txt` names items
#      that went to another crate of the family: those must exist there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bless=0
case "${1:-}" in
  --bless) bless=1 ;;
  "") ;;
  *) echo "usage: bash scripts/api-check.sh [--bless]" >&2; exit 2 ;;
esac
# crate name → its folder
crates=(voicehost_plugin_api:plugin-api voicehost_plugin_runtime:plugin-api/runtime
  voicehost_tts_sdk:plugin-api/tts voicehost_stt_sdk:plugin-api/stt)

# The workspace build, as the test command makes it; it names each crate's compilation.
source scripts/build-env.sh
build_hashes() { # lines "crate-hash" of the checked crates' library compilations
  cargo build --workspace --message-format=json \
    | grep -oE 'lib(voicehost_plugin_api|voicehost_plugin_runtime|voicehost_tts_sdk|voicehost_stt_sdk)-[0-9a-f]+\.rmeta' \
    | sort -u | sed 's/^lib//; s/\.rmeta$//'
}
hashes=$(build_hashes)
json_of() { # the rustdoc JSON the wrapper wrote for crate $1 in this build
  local h
  h=$(grep "^$1-" <<<"$hashes" | head -n1)
  echo "$target/debug/api/$h/$1.json"
}
for entry in "${crates[@]}"; do
  if [ ! -f "$(json_of "${entry%%:*}")" ]; then
    # Compiled before the wrapper wrote its API (or by another wrapper): compile it again.
    echo "api-check: no rustdoc JSON for this build of ${entry%%:*} yet; rebuilding it"
    touch "${entry#*:}/src/lib.rs"
    hashes=$(build_hashes)
  fi
done
checker="$target/debug/api-check"

version_at() { # version of the crate in folder $2 at commit $1 (empty if it had none)
  local manifest
  manifest=$(git show "$1:$2/Cargo.toml" 2>/dev/null) || return 0
  sed -n 's/^version = "\(.*\)"/\1/p' <<<"$manifest" | head -n1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The current APIs.
for entry in "${crates[@]}"; do
  crate=${entry%%:*} dir=${entry#*:}
  json=$(json_of "$crate")
  if [ ! -f "$json" ]; then
    echo "api-check: the build left no rustdoc JSON of $crate at $json" >&2
    exit 2
  fi
  "$checker" surface "$json" > "$tmp/$crate.txt"
done

status=0
for entry in "${crates[@]}"; do
  crate=${entry%%:*} dir=${entry#*:}
  current=$(sed -n 's/^version = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -n1)
  {
    echo "# ${crate//_/-} $current public API: path, kind, closed, parent, signature."
    echo "# Written by scripts/api-check.sh --bless; CI keeps it equal to the code."
    cat "$tmp/$crate.txt"
  } > "$tmp/$crate.api"
  if [ "$bless" = 1 ]; then
    cp "$tmp/$crate.api" "$dir/api.txt"
    echo "api-check: wrote $dir/api.txt ($(wc -l < "$tmp/$crate.txt") items, $current)"
    continue
  fi

  # 2. The committed API is the code's.
  if ! diff -u "$dir/api.txt" "$tmp/$crate.api" > "$tmp/api.diff" 2>&1; then
    echo "api-check: FAILED: $crate's public API differs from $dir/api.txt:"
    head -n 60 "$tmp/api.diff"
    echo "api-check: review the change (step 3 below says whether it breaks plugins), then run"
    echo "           bash scripts/api-check.sh --bless   and commit $dir/api.txt"
    status=1
  fi

  # 3. Against the previous version.
  if ! git rev-parse -q --verify HEAD~1 >/dev/null; then
    echo "api-check: no git history before HEAD (shallow clone?); nothing to compare with"
    continue
  fi
  baseline=""
  for rev in $(git rev-list HEAD); do
    v=$(version_at "$rev" "$dir")
    if [ -n "$v" ] && [ "$v" != "$current" ]; then
      baseline=$rev
      break
    fi
  done
  if [ -z "$baseline" ]; then
    echo "api-check: $crate $current is its first version; nothing to compare with"
    continue
  fi
  old=$(version_at "$baseline" "$dir")
  if ! git show "$baseline:$dir/api.txt" > "$tmp/old.txt" 2>/dev/null; then
    echo "api-check: FAILED: $crate $old (${baseline:0:10}) has no $dir/api.txt to compare with" >&2
    status=1
    continue
  fi
  echo "api-check: $crate $current (working tree) against $old at ${baseline:0:10}"
  moved=()
  if [ -f "$dir/moved-from-$old.txt" ]; then
    moved=(--moved "$dir/moved-from-$old.txt")
    for other in "${crates[@]}"; do
      moved+=("$tmp/${other%%:*}.txt")
    done
  fi
  "$checker" compare "$tmp/old.txt" "$tmp/$crate.txt" --old-version "$old" \
    --new-version "$current" "${moved[@]}" || status=1
done
exit "$status"
