//! `hsd report`: regenerate tables and figures from `results/` alone.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// One manifest's results folder (`results/<manifest>`), a speed benchmark's (`results/speed`),
    /// or `results/` for every one in it.
    #[arg(default_value = "results")]
    pub results: PathBuf,
    /// Where `tables/` and `figures/` go.
    #[arg(long, default_value = "paper")]
    pub paper: PathBuf,
}

/// Whether `dir` holds something `hsd report` renders: a manifest's results or a speed benchmark.
fn is_results_folder(dir: &std::path::Path) -> bool {
    dir.join("summary.parquet").exists() || crate::bench_report::is_bench_folder(dir)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let folders: Vec<PathBuf> = if is_results_folder(&args.results) {
        vec![args.results.clone()]
    } else {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&args.results)
            .with_context(|| format!("listing {}", args.results.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_results_folder(p))
            .collect();
        found.sort();
        found
    };
    anyhow::ensure!(
        !folders.is_empty(),
        "{}: no summary.parquet or hsd.json here or one level down (run `hsd run` or `just bench` first)",
        args.results.display()
    );
    for folder in folders {
        let written = if crate::bench_report::is_bench_folder(&folder) {
            crate::bench_report::render(&folder, &args.paper)?
        } else {
            let name = folder
                .file_name()
                .map_or_else(|| "results".into(), |n| n.to_string_lossy().into_owned());
            let written = crate::report::render(&folder, &args.paper, &name)?;
            written.tables.into_iter().chain(written.figures).collect()
        };
        for path in written {
            println!("{}", path.display());
        }
    }
    Ok(())
}
