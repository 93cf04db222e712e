#!/usr/bin/env bash
# cargo-semver-checks for plugin-api, the crate third-party plugins build against.
#
# The baseline is plugin-api as it was at its previous version: the newest commit whose
# plugin-api version differs from the current one (the last state of that version). So any API change since that version
# must fit the version bump (0.1.0 → 0.1.1: additions only; a break needs 0.2.0, which
# the host's layout check also treats as incompatible: see plugin-api/COMPATIBILITY.md).
# Checked with the tts and stt SDK features on.
#
# Usage: bash scripts/semver-checks.sh   (needs git history and cargo-semver-checks)
set -euo pipefail
cd "$(dirname "$0")/.."

version_at() { # version of plugin-api at commit $1
  local manifest
  manifest=$(git show "$1:plugin-api/Cargo.toml" 2>/dev/null) || return 1
  if grep -q '^version.workspace = true' <<<"$manifest"; then
    git show "$1:Cargo.toml" | sed -n 's/^version = "\(.*\)"/\1/p' | head -n1
  else
    sed -n 's/^version = "\(.*\)"/\1/p' <<<"$manifest" | head -n1
  fi
}

current=$(version_at HEAD)
if ! git rev-parse -q --verify HEAD~1 >/dev/null; then
  echo "semver-checks: no git history before HEAD (shallow clone?); nothing to compare with"
  exit 0
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
  echo "semver-checks: plugin-api $current is its first version; nothing to compare with"
  exit 0
fi
echo "semver-checks: plugin-api $current against $(version_at "$baseline") at ${baseline:0:10}"
cargo semver-checks check-release --manifest-path plugin-api/Cargo.toml \
  -p voicehost-plugin-api --baseline-rev "$baseline" \
  --only-explicit-features --features tts,stt
