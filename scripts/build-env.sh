# Sourced by scripts/setup.sh (test) and scripts/api-check.sh: the build every check shares.
# cargo hands each workspace crate to scripts/build-wrapper.sh, which compiles and lints it
# with clippy-driver (warnings denied, as `cargo clippy --workspace --all-targets -- -D
# warnings` would) and has rustdoc describe plugin-api's API. Both values are part of
# cargo's fingerprints: every command of the shared build must see the same ones.
export RUSTC_WORKSPACE_WRAPPER
RUSTC_WORKSPACE_WRAPPER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/build-wrapper.sh"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
