#!/usr/bin/env bash
# plugin-api's compatibility check: the crate third-party plugins build against must not
# break them without saying so in its version.
#
#   bash scripts/api-check.sh           check (the test command runs it after the build)
#   bash scripts/api-check.sh --bless   write the current public API to plugin-api/api.txt
#
# plugin-api/api.txt is the crate's public API as text (tests/api-check: one line per item
# with its signature), committed and kept equal to the code: a change to the API shows in
# the diff, and each commit's file is the API of that commit. The check:
#   1. reads the current API from rustdoc's JSON of plugin-api as `cargo build --workspace`
#      compiles it (scripts/build-env.sh; the test command has built it: then nothing is
#      compiled here);
#   2. fails if plugin-api/api.txt differs from it (review, then --bless);
#   3. compares it with the API of the previous version — api.txt in the newest commit whose
#      plugin-api version differs from the current one (the last state of that version), or,
#      for a version older than api.txt, that commit's source documented by rustdoc — and
#      fails on a breaking change (an item removed or changed; a field, variant or required
#      trait item added where users rely on the set being closed) unless the version says
#      so: 0.1.x → 0.2.0 (the host's layout check then treats plugins of the old version as
#      incompatible: see plugin-api/COMPATIBILITY.md).
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
# The workspace build, as the test command makes it; it names plugin-api's compilation.
source scripts/build-env.sh
plugin_api_build() {
  cargo build --workspace --message-format=json \
    | grep -o 'libvoicehost_plugin_api-[0-9a-f]*\.rmeta' | sort -u | sed 's/^lib//; s/\.rmeta$//'
}
hash=$(plugin_api_build)
built="$target/debug/api/$hash/voicehost_plugin_api.json"
if [ ! -f "$built" ]; then
  # Compiled before the wrapper wrote its API (or by another wrapper): compile it again.
  echo "api-check: no rustdoc JSON for this build of plugin-api yet; rebuilding it"
  touch plugin-api/src/lib.rs
  hash=$(plugin_api_build)
  built="$target/debug/api/$hash/voicehost_plugin_api.json"
fi
checker="$target/debug/api-check"
# Other documentation builds here are plain ones, without clippy.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

version_at() { # version of plugin-api at commit $1
  local manifest
  manifest=$(git show "$1:plugin-api/Cargo.toml" 2>/dev/null) || return 1
  if grep -q '^version.workspace = true' <<<"$manifest"; then
    git show "$1:Cargo.toml" | sed -n 's/^version = "\(.*\)"/\1/p' | head -n1
  else
    sed -n 's/^version = "\(.*\)"/\1/p' <<<"$manifest" | head -n1
  fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\nRUSTC_BOOTSTRAP=1 exec rustdoc "$@"\n' > "$tmp/rustdoc"
chmod +x "$tmp/rustdoc"

sdk_features() { # the SDK features plugin-api has in source tree $1 (0.1.0 had none)
  sed -n 's/^\(tts\|stt\) *=.*/\1/p' "$1/plugin-api/Cargo.toml" | paste -sd, -
}

doc_json() { # $1: a voicehost source tree, $2: where plugin-api's rustdoc JSON goes,
  # $3: the features to document it with
  local features=$3
  RUSTDOC="$tmp/rustdoc" cargo rustdoc --quiet --manifest-path "$1/plugin-api/Cargo.toml" \
    -p voicehost-plugin-api --features "$features" --target-dir "$target/api-check" \
    -- -Z unstable-options --output-format json
  cp "$target/api-check/doc/voicehost_plugin_api.json" "$2"
}

# 1. The current API.
current=$(sed -n 's/^version = "\(.*\)"/\1/p' plugin-api/Cargo.toml | head -n1)
if [ ! -f "$built" ]; then
  echo "api-check: the build left no rustdoc JSON of plugin-api at $built" >&2
  exit 2
fi
cp "$built" "$tmp/new.json"
"$checker" surface "$tmp/new.json" > "$tmp/new.txt"
{
  echo "# voicehost-plugin-api $current public API (features tts, stt): path, kind, closed,"
  echo "# parent, signature. Written by scripts/api-check.sh --bless; CI keeps it equal to the code."
  cat "$tmp/new.txt"
} > "$tmp/api.txt"
if [ "$bless" = 1 ]; then
  cp "$tmp/api.txt" plugin-api/api.txt
  echo "api-check: wrote plugin-api/api.txt ($(wc -l < "$tmp/new.txt") items, $current)"
  exit 0
fi

# 2. The committed API is the code's.
status=0
if ! diff -u plugin-api/api.txt "$tmp/api.txt" > "$tmp/api.diff"; then
  echo "api-check: FAILED: plugin-api's public API differs from plugin-api/api.txt:"
  head -n 60 "$tmp/api.diff"
  echo "api-check: review the change (step 3 below says whether it breaks plugins), then run"
  echo "           bash scripts/api-check.sh --bless   and commit plugin-api/api.txt"
  status=1
fi

# 3. Against the previous version.
if ! git rev-parse -q --verify HEAD~1 >/dev/null; then
  echo "api-check: no git history before HEAD (shallow clone?); nothing to compare with"
  exit "$status"
fi
baseline=""
for rev in $(git rev-list HEAD); do
  v=$(version_at "$rev" || true)
  if [ -n "$v" ] && [ "$v" != "$current" ]; then
    baseline=$rev
    break
  fi
done
if [ -z "$baseline" ]; then
  echo "api-check: plugin-api $current is its first version; nothing to compare with"
  exit "$status"
fi
old=$(version_at "$baseline")
echo "api-check: plugin-api $current (working tree) against $old at ${baseline:0:10}"
compared="$tmp/new.txt"
if git show "$baseline:plugin-api/api.txt" > "$tmp/old.txt" 2>/dev/null; then
  :
else
  echo "api-check: $old has no plugin-api/api.txt; documenting its source"
  mkdir "$tmp/baseline"
  git archive "$baseline" | tar -x -C "$tmp/baseline"
  # The dependencies at today's versions, as for the working tree: a change that comes from
  # a dependency's update is not plugin-api's.
  cp Cargo.lock "$tmp/baseline/Cargo.lock"
  features=$(sdk_features "$tmp/baseline")
  doc_json "$tmp/baseline" "$tmp/old.txt" "$features"
  if [ "$features" != "$(sdk_features "$root")" ]; then
    # Both sides with the same features, so the dependencies are built alike (a feature
    # of a dependency can change what its types implement).
    echo "api-check: comparing with the features $old has: ${features:-none}"
    doc_json "$root" "$tmp/same-features.json" "$features"
    compared="$tmp/same-features.json"
  fi
fi
"$checker" compare "$tmp/old.txt" "$compared" --old-version "$old" --new-version "$current" \
  || status=1
exit "$status"
