//! Arbitrary bytes as an experiment manifest: reading (includes resolve next to it, so an
//! `include` of the manifest itself is a cycle), validation and the expansion of every profile
//! must return errors, never panic.
#![no_main]

mod scratch;

use std::path::PathBuf;
use std::sync::OnceLock;

use hsd_cli::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fn manifest_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| scratch::scratch_dir("manifest").join("fuzz.toml"))
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
