//! Embeds the commit the binary is built from, so a record names the code that made it rather
//! than whatever is checked out when a long run ends.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // A commit or checkout moves HEAD or the index; an edit anywhere in the workspace's sources
    // changes the tree's state.
    for watched in [
        ".git/HEAD",
        ".git/index",
        ".git/refs",
        "crates",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let commit = git(&["rev-parse", "HEAD"]).map(|head| {
        // Only the sources count: outputs a run writes (figures, adapters) are not the code.
        let dirty = git(&[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            "crates",
            "Cargo.toml",
            "Cargo.lock",
        ])
        .is_some_and(|status| !status.is_empty());
        if dirty { format!("{head}-dirty") } else { head }
    });
    if let Some(commit) = commit {
        println!("cargo:rustc-env=HSD_BUILD_COMMIT={commit}");
    }
}
