//! `hsd slurm`: a manifest's sweep as a Slurm job array. Writes two sbatch scripts: a job
//! array whose task i runs `hsd run --shard i/N --resume` into `<out>/shard-i-of-N`, and a
//! merge job that runs `hsd merge` over the N shard folders into `<out>`, then `hsd report`.
//! With `--submit` it submits both, the merge with `--dependency=afterok:<array id>`.
//!
//! The scripts call the `hsd` binary by its absolute path and carry every path, variable and
//! setting they need, so they can be read, resubmitted (`sbatch --array=K ...` for one failed
//! task) or run by hand (`SLURM_ARRAY_TASK_ID=K bash shards.sbatch`) later.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use super::jobs::{ShardBy, decoding_groups, shard_folder_name};
use crate::manifest::Manifest;

#[derive(clap::Args)]
pub struct Args {
    /// The manifest (`experiments/*.toml`).
    pub manifest: PathBuf,
    /// Number of array tasks: task i runs shard i of N, as `--shard-by` divides the sweep.
    #[arg(long)]
    pub shards: usize,
    /// `runs` (task i runs runs i, i+N, i+2N, ...) or `datasets` (whole model-and-dataset
    /// groups, balanced by estimated cost: no batch is prefilled twice, at most one task per
    /// group), as for `hsd run --shard-by`.
    #[arg(long, value_enum, default_value_t)]
    pub shard_by: ShardBy,
    /// `smoke`, `quick` or `full`, as for `hsd run`.
    #[arg(long, default_value = "quick")]
    pub profile: String,
    /// Examples per dataset, overriding the profile.
    #[arg(long)]
    pub limit: Option<usize>,
    /// sbatch `--partition` for both jobs.
    #[arg(long)]
    pub partition: Option<String>,
    /// sbatch `--time` (e.g. `HH:MM:SS`) for each array task and for the merge job.
    #[arg(long)]
    pub time: Option<String>,
    /// sbatch `--cpus-per-task` for both jobs.
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// sbatch `--mem` (e.g. `8G`) for both jobs.
    #[arg(long)]
    pub mem: Option<String>,
    /// sbatch `--account` for both jobs.
    #[arg(long)]
    pub account: Option<String>,
    /// The merged results folder; the shards go in `<out>/shard-i-of-N`.
    /// `results/<manifest name>` by default.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the scripts go (their logs in `<scripts>/logs`); `<out>/slurm` by default.
    #[arg(long)]
    pub scripts: Option<PathBuf>,
    /// Where the merge job's `hsd report` writes `tables/` and `figures/`; `<out>/paper` by
    /// default, so a cluster sweep does not overwrite the checkout's `paper/`.
    #[arg(long)]
    pub paper: Option<PathBuf>,
    /// The hsd binary the jobs run; this one by default.
    #[arg(long)]
    pub hsd: Option<PathBuf>,
    /// Submit the array, then the merge job after it (`sbatch` must be on PATH).
    #[arg(long)]
    pub submit: bool,
}

/// Variables the jobs get with the value they have here: where the model, the data and
/// WordNet are, and the log filter. The manifest's `spec_env` variables are added to these.
const PASSED_VARIABLES: [&str; 4] = ["HSD_MODELS", "HSD_DATA", "HSD_WORDNET", "HSD_LOG"];
/// Those of them that are paths, made absolute against the working directory.
const PATH_VARIABLES: [&str; 3] = ["HSD_MODELS", "HSD_DATA", "HSD_WORDNET"];

/// Everything the two scripts are made of, with every path absolute.
#[derive(Clone, Debug)]
struct Plan {
    /// The `hsd slurm ...` command line that wrote the scripts.
    generated_by: String,
    manifest: PathBuf,
    manifest_name: String,
    profile: String,
    limit: Option<usize>,
    /// Runs in the expanded list.
    runs: usize,
    shards: usize,
    shard_by: ShardBy,
    workdir: PathBuf,
    hsd: PathBuf,
    out: PathBuf,
    scripts: PathBuf,
    paper: PathBuf,
    /// `--name=value` options for `#SBATCH` lines, in the order given.
    sbatch: Vec<(&'static str, String)>,
    /// `(name, Some(value))` exported; `(name, None)` noted as unset.
    env: Vec<(String, Option<String>)>,
}

impl Plan {
    fn shard_dir(&self, i: usize) -> PathBuf {
        self.out.join(shard_folder_name(i, self.shards))
    }

    fn array_path(&self) -> PathBuf {
        self.scripts.join("shards.sbatch")
    }

    fn merge_path(&self) -> PathBuf {
        self.scripts.join("merge.sbatch")
    }

    /// ` --shard-by datasets` when the sweep is divided by groups; empty by runs.
    fn division_flag(&self) -> &'static str {
        match self.shard_by {
            ShardBy::Runs => "",
            ShardBy::Datasets => " --shard-by datasets",
        }
    }

    /// `--profile P [--limit L]`, shell-quoted.
    fn selection(&self) -> String {
        let mut s = format!("--profile {}", quote(&self.profile));
        if let Some(limit) = self.limit {
            let _ = write!(s, " --limit {limit}");
        }
        s
    }

    /// The header both scripts start with.
    fn header(&self, what: &str) -> String {
        let mut s = String::from("#!/usr/bin/env bash\n");
        let _ = writeln!(s, "# {what}");
        let _ = writeln!(s, "#");
        let _ = writeln!(s, "# Written by: {}", self.generated_by);
        let _ = writeln!(s, "# hsd:        {}", self.hsd.display());
        let _ = writeln!(s, "# hsd version {}", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(s, "# Manifest:   {}", self.manifest.display());
        let _ = writeln!(s, "# Profile:    {}", self.profile);
        let limit = self
            .limit
            .map_or_else(|| "the profile's".into(), |l| l.to_string());
        let _ = writeln!(s, "# Limit:      {limit}");
        let division = match self.shard_by {
            ShardBy::Runs => format!("task i runs runs i, i+{n}, i+2*{n}, ...", n = self.shards),
            ShardBy::Datasets => "task i runs whole model-and-dataset groups".to_owned(),
        };
        let _ = writeln!(
            s,
            "# Shards:     {} over {} runs ({division})",
            self.shards, self.runs
        );
        let _ = writeln!(s, "# Results:    {}", self.out.display());
        let _ = writeln!(s, "# Workdir:    {}", self.workdir.display());
        s
    }

    /// `#SBATCH` lines shared by both jobs, after the job's own.
    fn sbatch_lines(&self, own: &[(&str, String)]) -> String {
        let mut s = String::new();
        for (name, value) in own.iter().chain(&self.sbatch) {
            let _ = writeln!(s, "#SBATCH --{name}={value}");
        }
        s
    }

    /// `set -euo pipefail`, `cd`, and the exported variables.
    fn prologue(&self) -> String {
        let mut s = String::from("\nset -euo pipefail\n");
        let _ = writeln!(s, "cd {}", quote_path(&self.workdir));
        for (name, value) in &self.env {
            match value {
                Some(value) => {
                    let _ = writeln!(s, "export {name}={}", quote(value));
                }
                None => {
                    let _ = writeln!(s, "# {name} was not set when this script was written");
                }
            }
        }
        s.push_str(
            "# One thread per CPU Slurm gave the task.\n\
             if [[ -n \"${SLURM_CPUS_PER_TASK:-}\" ]]; then\n    \
             export RAYON_NUM_THREADS=\"$SLURM_CPUS_PER_TASK\"\n\
             fi\n",
        );
        s
    }

    /// The job array: task `$SLURM_ARRAY_TASK_ID` runs its shard, resuming what a
    /// preempted or requeued attempt left.
    fn array_script(&self) -> String {
        let n = self.shards;
        let mut s = self.header(&format!(
            "hsd sweep of {} as a Slurm job array of {n} tasks.",
            self.manifest_name
        ));
        let _ = writeln!(
            s,
            "# Task i runs: {} run {} {} --shard i/{n}{} --out {} --resume",
            self.hsd.display(),
            self.manifest.display(),
            self.selection(),
            self.division_flag(),
            self.out.join(shard_folder_name("i", n)).display()
        );
        s.push_str(
            "# A failed task resumes where it stopped: `sbatch --array=i THIS_SCRIPT`, or by hand:\n\
             # `SLURM_ARRAY_TASK_ID=i bash THIS_SCRIPT`. Then run merge.sbatch.\n",
        );
        s.push_str(&self.sbatch_lines(&[
            ("job-name", format!("hsd-{}", self.manifest_name)),
            ("array", format!("1-{n}")),
            (
                "output",
                self.scripts.join("logs/%A_%a.out").display().to_string(),
            ),
            ("open-mode", "append".into()),
            ("chdir", self.workdir.display().to_string()),
        ]));
        s.push_str("#SBATCH --requeue\n");
        s.push_str(&self.prologue());
        let _ = writeln!(
            s,
            "i=\"${{SLURM_ARRAY_TASK_ID:?submit with sbatch (a job array, tasks 1-{n}) or set SLURM_ARRAY_TASK_ID}}\""
        );
        let _ = writeln!(
            s,
            "if [[ ! \"$i\" =~ ^[0-9]+$ ]] || (( 10#$i < 1 || 10#$i > {n} )); then\n    \
             echo \"SLURM_ARRAY_TASK_ID=$i: expected 1-{n}\" >&2\n    \
             exit 2\n\
             fi"
        );
        let _ = writeln!(
            s,
            "echo \"hsd slurm: shard $i/{n} on $(hostname) at $(date -Is), job ${{SLURM_JOB_ID:-none}}\" >&2"
        );
        let _ = writeln!(
            s,
            "exec {} run {} {} \\\n    --shard \"$i/{n}\"{} --out {}\"/{}\" --resume",
            quote_path(&self.hsd),
            quote_path(&self.manifest),
            self.selection(),
            self.division_flag(),
            quote_path(&self.out),
            shard_folder_name("$i", n),
        );
        s
    }

    /// The merge job: joins the shard folders into `out`, then renders the report.
    fn merge_script(&self) -> String {
        let mut s = self.header(&format!(
            "hsd merge of the {} shards of {} into one results folder, then hsd report.",
            self.shards, self.manifest_name
        ));
        s.push_str(
            "# Submitted after the array with --dependency=afterok:<array job id>; after a failed\n\
             # task is rerun, submit it again (`sbatch THIS_SCRIPT`) or run it with bash.\n",
        );
        s.push_str(&self.sbatch_lines(&[
            ("job-name", format!("hsd-{}-merge", self.manifest_name)),
            (
                "output",
                self.scripts.join("logs/merge_%j.out").display().to_string(),
            ),
            ("open-mode", "append".into()),
            ("chdir", self.workdir.display().to_string()),
        ]));
        s.push_str(&self.prologue());
        let _ = writeln!(
            s,
            "{} merge {} \\",
            quote_path(&self.hsd),
            quote_path(&self.manifest)
        );
        for i in 1..=self.shards {
            let _ = writeln!(s, "    {} \\", quote_path(&self.shard_dir(i)));
        }
        let _ = writeln!(
            s,
            "    {} --out {}",
            self.selection(),
            quote_path(&self.out)
        );
        let _ = writeln!(
            s,
            "{} report {} --paper {}",
            quote_path(&self.hsd),
            quote_path(&self.out),
            quote_path(&self.paper)
        );
        s
    }
}

/// sbatch's arguments for the merge job, to run after the array job `array_id` succeeds.
fn merge_submission(array_id: &str, merge_script: &Path) -> Vec<String> {
    vec![
        "--parsable".into(),
        format!("--dependency=afterok:{array_id}"),
        merge_script.display().to_string(),
    ]
}

/// The job id in `sbatch --parsable`'s answer (`id` or `id;cluster`).
fn parse_job_id(answer: &str) -> anyhow::Result<String> {
    let id = answer.trim().split(';').next().unwrap_or("").trim();
    ensure!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "sbatch --parsable answered {answer:?}, not a job id"
    );
    Ok(id.to_owned())
}

fn sbatch(args: &[String]) -> anyhow::Result<String> {
    let output = Command::new("sbatch")
        .args(args)
        .output()
        .context("--submit: running sbatch (is Slurm's sbatch on PATH?)")?;
    if !output.status.success() {
        bail!(
            "--submit: sbatch {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse_job_id(&String::from_utf8_lossy(&output.stdout))
}

/// A word the shell reads back as `text`: as is when it is plainly safe, else single-quoted.
fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn quote_path(path: &Path) -> String {
    quote(&path.display().to_string())
}

/// An sbatch option's value: one line, no spaces, as `#SBATCH` lines are parsed.
fn sbatch_value(flag: &str, value: &str) -> anyhow::Result<String> {
    ensure!(
        !value.is_empty() && !value.chars().any(char::is_whitespace),
        "--{flag} {value:?}: expected a value without spaces"
    );
    Ok(value.to_owned())
}

/// `path` made absolute against `workdir`, with `.` and `..` resolved when it exists.
fn absolute(path: &Path, workdir: &Path) -> PathBuf {
    let joined = workdir.join(path);
    joined.canonicalize().unwrap_or(joined)
}

fn make_plan(args: &Args, workdir: &Path, generated_by: String) -> anyhow::Result<Plan> {
    let manifest = Manifest::load(&args.manifest)?;
    let expansion = manifest
        .expand(Some(&args.profile), args.limit)
        .with_context(|| format!("--profile {}", args.profile))?;
    let runs = expansion.runs.len();
    ensure!(args.shards >= 1, "--shards 0: expected at least 1");
    // The groups that decode with the variables the scripts export (an optional model
    // without a spec, or without its adapter, holds no work).
    let specs = crate::manifest::ModelSpecs::from_flags(&[])?;
    let groups = decoding_groups(&expansion, &super::run::decodes_here(&manifest, &specs));
    ensure!(
        args.shard_by == ShardBy::Runs || args.shards <= groups,
        "--shards {} --shard-by datasets: {} at profile {} holds {} model-and-dataset groups, so some shards would hold none (choose --shards at most {})",
        args.shards,
        args.manifest.display(),
        expansion.profile,
        groups,
        groups
    );
    ensure!(
        args.shards <= runs,
        "--shards {}: {} at profile {} expands to {runs} runs, so some shards would hold none \
         (choose --shards at most {runs})",
        args.shards,
        args.manifest.display(),
        expansion.profile
    );
    let hsd = match &args.hsd {
        Some(path) => absolute(path, workdir),
        None => std::env::current_exe()
            .context("finding this hsd binary (pass --hsd PATH)")?
            .canonicalize()
            .context("resolving this hsd binary (pass --hsd PATH)")?,
    };
    ensure!(
        hsd.is_file(),
        "--hsd {}: no such file (the hsd binary the jobs run)",
        hsd.display()
    );
    let out = absolute(
        &args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("results").join(&manifest.name)),
        workdir,
    );
    let scripts = args
        .scripts
        .as_ref()
        .map_or_else(|| out.join("slurm"), |s| absolute(s, workdir));
    // sbatch reads `#SBATCH` lines as words: a path there must not hold spaces or quotes.
    for (what, path) in [
        ("--scripts", &scripts),
        ("the working directory", &workdir.to_owned()),
    ] {
        ensure!(
            !path
                .display()
                .to_string()
                .contains(|c: char| c.is_whitespace() || c == '\'' || c == '"'),
            "{what} {}: #SBATCH lines cannot hold a path with spaces or quotes",
            path.display()
        );
    }
    let paper = args
        .paper
        .as_ref()
        .map_or_else(|| out.join("paper"), |p| absolute(p, workdir));
    let mut sbatch = Vec::new();
    if let Some(v) = &args.partition {
        sbatch.push(("partition", sbatch_value("partition", v)?));
    }
    if let Some(v) = &args.time {
        sbatch.push(("time", sbatch_value("time", v)?));
    }
    if let Some(v) = args.cpus_per_task {
        ensure!(v >= 1, "--cpus-per-task 0: expected at least 1");
        sbatch.push(("cpus-per-task", v.to_string()));
    }
    if let Some(v) = &args.mem {
        sbatch.push(("mem", sbatch_value("mem", v)?));
    }
    if let Some(v) = &args.account {
        sbatch.push(("account", sbatch_value("account", v)?));
    }
    let mut names: Vec<String> = PASSED_VARIABLES.iter().map(|&v| v.to_owned()).collect();
    for model in &manifest.models {
        if let Some(var) = &model.spec_env
            && !names.contains(var)
        {
            names.push(var.clone());
        }
    }
    let env = names
        .into_iter()
        .map(|name| {
            let value = std::env::var_os(&name).filter(|v| !v.is_empty()).map(|v| {
                if PATH_VARIABLES.contains(&name.as_str()) {
                    absolute(Path::new(&v), workdir).display().to_string()
                } else {
                    v.to_string_lossy().into_owned()
                }
            });
            (name, value)
        })
        .collect();
    Ok(Plan {
        generated_by,
        manifest: absolute(&args.manifest, workdir),
        manifest_name: manifest.name.clone(),
        profile: expansion.profile.clone(),
        limit: args.limit,
        runs,
        shards: args.shards,
        shard_by: args.shard_by,
        workdir: workdir.to_owned(),
        hsd,
        out,
        scripts,
        paper,
        sbatch,
        env,
    })
}

fn write_script(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let workdir = std::env::current_dir()
        .context("reading the working directory")?
        .canonicalize()
        .context("resolving the working directory")?;
    let generated_by = std::env::args()
        .map(|a| quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    let plan = make_plan(&args, &workdir, generated_by)?;
    let logs = plan.scripts.join("logs");
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("--scripts: creating {}", logs.display()))?;
    std::fs::create_dir_all(&plan.out)
        .with_context(|| format!("--out: creating {}", plan.out.display()))?;
    write_script(&plan.array_path(), &plan.array_script())?;
    write_script(&plan.merge_path(), &plan.merge_script())?;
    println!(
        "wrote {} ({} tasks over {} runs) and {}",
        plan.array_path().display(),
        plan.shards,
        plan.runs,
        plan.merge_path().display()
    );
    if !args.submit {
        println!("submit them with:");
        println!(
            "  array=$(sbatch --parsable {})",
            quote_path(&plan.array_path())
        );
        println!(
            "  sbatch --dependency=afterok:\"${{array%%;*}}\" {}",
            quote_path(&plan.merge_path())
        );
        return Ok(());
    }
    let array = sbatch(&["--parsable".into(), plan.array_path().display().to_string()])?;
    println!("array job: {array}");
    let merge = sbatch(&merge_submission(&array, &plan.merge_path())).with_context(|| {
        format!(
            "array job {array} is submitted; submit the merge by hand: sbatch --dependency=afterok:{array} {}",
            quote_path(&plan.merge_path())
        )
    })?;
    println!("merge job: {merge}");
    println!(
        "logs in {}; results in {} when merge job {merge} completes",
        logs.display(),
        plan.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(shards: usize) -> Plan {
        Plan {
            generated_by: "hsd slurm experiments/main.toml --shards 3".into(),
            manifest: "/repo/experiments/main.toml".into(),
            manifest_name: "main".into(),
            profile: "smoke".into(),
            limit: None,
            runs: 30,
            shards,
            shard_by: ShardBy::Runs,
            workdir: "/repo".into(),
            hsd: "/opt/hsd/bin/hsd".into(),
            out: "/scratch/my results/main".into(),
            scripts: "/scratch/slurm".into(),
            paper: "/scratch/my results/main/paper".into(),
            sbatch: vec![
                ("partition", "cpu".into()),
                ("time", "01:00:00".into()),
                ("cpus-per-task", "4".into()),
            ],
            env: vec![
                ("HSD_MODELS".into(), Some("/models".into())),
                ("HSD_WORDNET".into(), None),
            ],
        }
    }

    fn args(manifest: &str, profile: &str, shards: usize) -> Args {
        Args {
            manifest: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(manifest),
            shards,
            shard_by: ShardBy::Runs,
            profile: profile.into(),
            limit: None,
            partition: None,
            time: None,
            cpus_per_task: None,
            mem: None,
            account: None,
            out: Some("out".into()),
            scripts: None,
            paper: None,
            hsd: Some(std::env::current_exe().unwrap()),
            submit: false,
        }
    }

    #[test]
    fn the_array_task_runs_its_own_shard_and_resumes() {
        let s = plan(3).array_script();
        assert!(s.starts_with("#!/usr/bin/env bash\n"));
        assert!(s.contains("#SBATCH --array=1-3\n"), "{s}");
        assert!(s.contains("#SBATCH --output=/scratch/slurm/logs/%A_%a.out\n"));
        assert!(s.contains(
            "#SBATCH --partition=cpu\n#SBATCH --time=01:00:00\n#SBATCH --cpus-per-task=4\n"
        ));
        assert!(s.contains("#SBATCH --chdir=/repo\n"));
        assert!(s.contains("#SBATCH --requeue\n"));
        assert!(s.contains("\nexport HSD_MODELS=/models\n"));
        assert!(!s.contains("export HSD_WORDNET"));
        let exec = "exec /opt/hsd/bin/hsd run /repo/experiments/main.toml --profile smoke \\\n    \
                    --shard \"$i/3\" --out '/scratch/my results/main'\"/shard-$i-of-3\" --resume\n";
        assert!(s.contains(exec), "{s}");
        assert!(s.contains("# Manifest:   /repo/experiments/main.toml\n"));
        assert!(s.contains("# Profile:    smoke\n"));
        assert!(s.contains("# Written by: hsd slurm experiments/main.toml --shards 3\n"));
        // Every #SBATCH line comes before the first command, or sbatch ignores it.
        let first_command = s.find("\nset -euo").unwrap();
        assert!(s.rfind("#SBATCH").unwrap() < first_command);
    }

    #[test]
    fn the_array_script_runs_the_shard_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = plan(2);
        // A stand-in hsd that prints its arguments.
        let fake = dir.path().join("hsd");
        write_script(&fake, "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\"\n").unwrap();
        p.hsd = fake;
        p.workdir = dir.path().to_owned();
        p.out = dir.path().join("a b");
        let script = dir.path().join("shards.sbatch");
        write_script(&script, &p.array_script()).unwrap();
        let output = Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", "2")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let words: Vec<&str> = stdout.lines().collect();
        let out = format!("{}/shard-2-of-2", p.out.display());
        assert_eq!(
            words,
            [
                "run",
                "/repo/experiments/main.toml",
                "--profile",
                "smoke",
                "--shard",
                "2/2",
                "--out",
                out.as_str(),
                "--resume"
            ]
        );
        for bad in ["0", "3", "x", "", "1/2"] {
            let output = Command::new("bash")
                .arg(&script)
                .env("SLURM_ARRAY_TASK_ID", bad)
                .output()
                .unwrap();
            assert!(!output.status.success(), "task {bad:?}: {output:?}");
            assert!(output.stdout.is_empty(), "task {bad:?} ran hsd: {output:?}");
        }
    }

    #[test]
    fn the_merge_joins_every_shard_in_order_then_reports() {
        let mut p = plan(3);
        p.limit = Some(7);
        let s = p.merge_script();
        let merge = "/opt/hsd/bin/hsd merge /repo/experiments/main.toml \\\n    \
                     '/scratch/my results/main/shard-1-of-3' \\\n    \
                     '/scratch/my results/main/shard-2-of-3' \\\n    \
                     '/scratch/my results/main/shard-3-of-3' \\\n    \
                     --profile smoke --limit 7 --out '/scratch/my results/main'\n\
                     /opt/hsd/bin/hsd report '/scratch/my results/main' --paper '/scratch/my results/main/paper'\n";
        assert!(s.contains(merge), "{s}");
        assert!(!s.contains("--array"));
        assert!(s.contains("logs/merge_%j.out"));
        assert!(s.contains("# Limit:      7\n"));
        assert!(p.array_script().contains("--profile smoke --limit 7 \\\n"));
    }

    #[test]
    fn the_merge_waits_for_the_whole_array_to_succeed() {
        assert_eq!(
            merge_submission("4242", Path::new("/s/merge.sbatch")),
            ["--parsable", "--dependency=afterok:4242", "/s/merge.sbatch"]
        );
        assert_eq!(parse_job_id("4242\n").unwrap(), "4242");
        assert_eq!(parse_job_id("4242;cluster\n").unwrap(), "4242");
        assert!(parse_job_id("sbatch: error: oops").is_err());
        assert!(parse_job_id("").is_err());
    }

    #[test]
    fn tasks_can_take_whole_dataset_groups() {
        let dir = tempfile::tempdir().unwrap();
        // Two models on one dataset: two groups.
        let mut by_datasets = args("tests/fixtures/smoke.toml", "smoke", 2);
        by_datasets.shard_by = ShardBy::Datasets;
        let plan = make_plan(&by_datasets, dir.path(), String::new()).unwrap();
        let script = plan.array_script();
        assert!(
            script.contains("--shard \"$i/2\" --shard-by datasets --out"),
            "{script}"
        );
        assert!(script.contains("task i runs whole model-and-dataset groups"));
        by_datasets.shards = 3;
        let err = make_plan(&by_datasets, dir.path(), String::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds 2 model-and-dataset groups"), "{err}");
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(quote("/a/b-c_d.toml"), "/a/b-c_d.toml");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn shards_must_not_outnumber_runs() {
        let dir = tempfile::tempdir().unwrap();
        let runs = make_plan(
            &args("../../experiments/main.toml", "smoke", 1),
            dir.path(),
            String::new(),
        )
        .unwrap()
        .runs;
        let ok = make_plan(
            &args("../../experiments/main.toml", "smoke", runs),
            dir.path(),
            String::new(),
        )
        .unwrap();
        assert_eq!(ok.out, dir.path().join("out"));
        assert_eq!(ok.scripts, dir.path().join("out/slurm"));
        assert!(ok.manifest.is_absolute());
        let err = make_plan(
            &args("../../experiments/main.toml", "smoke", runs + 1),
            dir.path(),
            String::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(&format!("--shards {}", runs + 1)), "{err}");
        assert!(err.contains(&format!("at most {runs}")), "{err}");
        let err = make_plan(
            &args("../../experiments/main.toml", "smoke", 0),
            dir.path(),
            String::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--shards 0"), "{err}");
    }

    #[test]
    fn bad_manifests_profiles_and_options_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let err = make_plan(
            &args("../../experiments/nope.toml", "smoke", 1),
            dir.path(),
            String::new(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("nope.toml"), "{err:#}");
        let err = make_plan(
            &args("../../experiments/main.toml", "huge", 1),
            dir.path(),
            String::new(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("huge"), "{err:#}");
        let mut a = args("../../experiments/main.toml", "smoke", 1);
        a.time = Some("1 hour".into());
        let err = make_plan(&a, dir.path(), String::new()).unwrap_err();
        assert!(err.to_string().contains("--time"), "{err}");
        let mut a = args("../../experiments/main.toml", "smoke", 1);
        a.scripts = Some("my scripts".into());
        let err = make_plan(&a, dir.path(), String::new()).unwrap_err();
        assert!(err.to_string().contains("--scripts"), "{err}");
        let mut a = args("../../experiments/main.toml", "smoke", 1);
        a.hsd = Some(dir.path().join("missing"));
        let err = make_plan(&a, dir.path(), String::new()).unwrap_err();
        assert!(err.to_string().contains("--hsd"), "{err}");
    }
}
