//! A scratch folder per fuzzing process, so that parallel jobs never share the files they
//! write an input into.

use std::path::PathBuf;

/// `$TMPDIR/hsd-fuzz-<target>-<pid>`, created on first use.
pub fn scratch_dir(target: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hsd-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the fuzz folder");
    dir
}
