//! Drift check: the checked-in generated code must equal what the `.proto` files produce.

#[path = "../src/codegen.rs"]
mod codegen;

use std::fs;

#[test]
fn generated_code_matches_protos() {
    let tmp = tempfile::tempdir().unwrap();
    codegen::generate(tmp.path()).expect("protoc run");
    let gen_dir = codegen::crate_dir().join("src/gen");
    let update = std::env::var_os("VOICEHOST_UPDATE_PROTO").is_some();
    let mut stale = Vec::new();
    for entry in fs::read_dir(tmp.path()).unwrap() {
        let entry = entry.unwrap();
        let fresh = fs::read(entry.path()).unwrap();
        let checked_in = gen_dir.join(entry.file_name());
        if fs::read(&checked_in).ok().as_deref() != Some(fresh.as_slice()) {
            if update {
                fs::write(&checked_in, &fresh).unwrap();
            } else {
                stale.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated code is stale for {stale:?}: run `VOICEHOST_UPDATE_PROTO=1 cargo test -p voicehost-proto --test codegen` and commit src/gen/"
    );
}
