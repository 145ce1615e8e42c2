//! `hsd report`: regenerate tables and figures from `results/` alone.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// One manifest's results folder (`results/<manifest>`), or `results/` for every one in it.
    #[arg(default_value = "results")]
    pub results: PathBuf,
    /// Where `tables/` and `figures/` go.
    #[arg(long, default_value = "paper")]
    pub paper: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let folders: Vec<PathBuf> = if args.results.join("summary.parquet").exists() {
        vec![args.results.clone()]
    } else {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&args.results)
            .with_context(|| format!("listing {}", args.results.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("summary.parquet").exists())
            .collect();
        found.sort();
        found
    };
    anyhow::ensure!(
        !folders.is_empty(),
        "{}: no summary.parquet here or one level down (run `hsd run` first)",
        args.results.display()
    );
    for folder in folders {
        let name = folder
            .file_name()
            .map_or_else(|| "results".into(), |n| n.to_string_lossy().into_owned());
        let written = crate::report::render(&folder, &args.paper, &name)?;
        for path in written.tables.iter().chain(&written.figures) {
            println!("{}", path.display());
        }
    }
    Ok(())
}
