//! Out-of-tree cargo projects (the example plugins and the fixture plugins that are
//! projects of their own): building them into the workspace's target directory and listing
//! the packages they compile.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{target_dir, workspace_root};

/// Builds the cargo project `project` (a path below the workspace root, a project of its
/// own, outside the workspace) and returns its `library` (`--locked` builds with its
/// committed Cargo.lock unchanged).
///
/// It builds into the workspace's own target directory with the workspace's dev profile,
/// so every dependency the workspace compiled already (same version, same features) is
/// reused instead of compiled again; only the project's own crates are linted by nobody
/// (the workspace's clippy wrapper is not passed on).
pub fn build_out_of_tree(project: &str, library: &str, locked: bool) -> PathBuf {
    build_project(&workspace_root().join(project), library, locked)
}

/// [`build_out_of_tree`] for a project anywhere (`dir` holds its Cargo.toml).
pub fn build_project(dir: &Path, library: &str, locked: bool) -> PathBuf {
    let project = dir.display();
    let target = target_dir().parent().unwrap().to_owned();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.arg("build");
    if locked {
        build.arg("--locked");
    }
    // The workspace's [profile.dev] (Cargo.toml), which a project of its own does not see.
    for setting in [
        "profile.dev.debug=\"line-tables-only\"",
        "profile.dev.package.\"*\".opt-level=1",
        "profile.dev.package.\"*\".debug=false",
    ] {
        build.args(["--config", setting]);
    }
    let out = build
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building {project} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let library = target.join("debug").join(library);
    assert!(library.is_file(), "{} was not built", library.display());
    library
}

/// The packages an out-of-tree `project` compiles (normal and build dependencies, each
/// once), as `cargo tree` names them: `name vX.Y.Z`.
pub fn dependency_tree(project: &str) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--manifest-path",
        ])
        .arg(workspace_root().join(project).join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree of {project} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut packages: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some(format!("{} {}", words.next()?, words.next()?))
        })
        .collect();
    packages.sort();
    packages.dedup();
    packages
}
