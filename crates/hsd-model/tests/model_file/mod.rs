//! Where the integration tests find SmolLM2-135M-Instruct's GGUF: `$HSD_MODELS`, else
//! `<repo>/models` (`scripts/fetch-model.sh` puts it there). CI always has it; elsewhere the
//! tests that need it print a notice and pass.

use std::path::PathBuf;

const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The model file, or `None` after printing why the calling test is skipped.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let dir = std::env::var_os("HSD_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    let path = dir.join(SMOLLM2_FILE);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} not found (run scripts/fetch-model.sh or set HSD_MODELS)",
            path.display()
        );
        None
    }
}
