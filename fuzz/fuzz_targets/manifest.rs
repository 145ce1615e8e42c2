//! Arbitrary bytes as an experiment manifest: reading (includes resolve next to it, so an
//! `include` of the manifest itself is a cycle), validation and the expansion of every profile
//! must return errors, never panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use hsd_cli::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

/// A folder of this process's own, so that parallel fuzzing jobs do not share the file.
fn manifest_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hsd-fuzz-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the fuzz folder");
        dir.join("fuzz.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = manifest_path();
    std::fs::write(path, data).expect("writing the fuzz manifest");
    if let Ok(manifest) = Manifest::load(path) {
        let _ = manifest.expand(None, None);
        for profile in manifest.profiles.keys() {
            let _ = manifest.expand(Some(profile.as_str()), Some(3));
        }
    }
});
