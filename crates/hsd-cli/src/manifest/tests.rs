//! Manifests written to a temporary folder, read, checked and expanded end to end.

use std::path::{Path, PathBuf};

use super::Manifest;
use super::error::ManifestError;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const COMMON: &str = r#"
seed = 7
batch_size = 2

[[model]]
name = "smollm2-135m"
spec = "smollm2-135m"

[profile.smoke]
limit = 3
target_skip_ratios = [0.3]
"#;

const MAIN: &str = r#"
include = ["common.toml"]
name = "demo"

[[dataset]]
name = "xsum"
max_new_tokens = 48
max_source_tokens = 400

[[dataset]]
name = "e2e"
max_new_tokens = 32

[[strategy]]
name = "full"

[[strategy]]
name = "hsd"
target_skip_ratio = [0.2, 0.4]

[[strategy]]
name = "hsd"
label = "hsd-none"
kv_fill = "none"
target_skip_ratio = [0.2]

[profile.smoke]
datasets = ["e2e"]
"#;

#[test]
fn includes_merge_and_the_grid_expands_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "common.toml", COMMON);
    let manifest = Manifest::load(&write(dir.path(), "main.toml", MAIN)).unwrap();
    assert_eq!(
        (manifest.name.as_str(), manifest.seed, manifest.batch_size),
        ("demo", 7, 2)
    );
    assert!(manifest.text.contains("common.toml") && manifest.text.contains("hsd-none"));

    let all = manifest.expand(None, None).unwrap();
    let ids: Vec<&str> = all.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "smollm2-135m/xsum/full",
            "smollm2-135m/xsum/hsd@0.20",
            "smollm2-135m/xsum/hsd@0.40",
            "smollm2-135m/xsum/hsd-none@0.20",
            "smollm2-135m/e2e/full",
            "smollm2-135m/e2e/hsd@0.20",
            "smollm2-135m/e2e/hsd@0.40",
            "smollm2-135m/e2e/hsd-none@0.20",
        ]
    );
    assert_eq!(all.limit, None);
    assert_eq!(
        all.datasets[1].metrics(),
        ["bleu", "meteor", "rouge", "cider", "chrf"]
    );

    // The smoke profile merges the included limit and ratios with the local dataset filter.
    let smoke = manifest.expand(Some("smoke"), None).unwrap();
    let ids: Vec<&str> = smoke.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "smollm2-135m/e2e/full",
            "smollm2-135m/e2e/hsd@0.30",
            "smollm2-135m/e2e/hsd-none@0.30"
        ]
    );
    assert_eq!(smoke.limit, Some(3));
    assert_eq!(
        manifest.expand(Some("smoke"), Some(9)).unwrap().limit,
        Some(9)
    );
    assert!(
        manifest
            .expand(Some("nope"), None)
            .unwrap_err()
            .to_string()
            .contains("no [profile.nope]")
    );
}

#[test]
fn unreachable_targets_are_skipped_or_refused_as_the_manifest_says() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "common.toml", COMMON);
    let main = MAIN.replace(
        "name = \"hsd\"\nlabel = \"hsd-none\"\nkv_fill = \"none\"",
        "name = \"static\"",
    );
    let manifest = Manifest::load(&write(dir.path(), "main.toml", &main)).unwrap();
    let runs = manifest.expand(None, None).unwrap().runs;
    let run = |id: &str| runs.iter().find(|r| r.id == id).unwrap();

    // `static` reaches only s/(s+1); HSD reaches 0.4 at 30 layers.
    let reason = manifest
        .skip_reason(run("smollm2-135m/e2e/static@0.20"), 30, 32)
        .unwrap()
        .expect("0.2 is out of static's reach");
    assert!(reason.contains("out of reach"), "{reason}");
    assert_eq!(
        manifest
            .skip_reason(run("smollm2-135m/e2e/hsd@0.40"), 30, 32)
            .unwrap(),
        None
    );

    let strict = write(
        dir.path(),
        "strict.toml",
        &format!("unreachable_targets = \"error\"\n{main}"),
    );
    let strict = Manifest::load(&strict).unwrap();
    assert!(
        strict
            .skip_reason(run("smollm2-135m/e2e/static@0.20"), 30, 32)
            .is_err()
    );
}

#[test]
fn unknown_keys_are_errors_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "common.toml",
        &COMMON.replace("batch_size = 2", "batch_sise = 2"),
    );
    let err = Manifest::load(&write(dir.path(), "main.toml", MAIN))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("common.toml:3:1:") && err.contains("batch_sise"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "common.toml", COMMON);
    let bad_knob = MAIN.replace("kv_fill = \"none\"", "kv_fil = \"none\"");
    let err = Manifest::load(&write(dir.path(), "main.toml", &bad_knob))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("main.toml:") && err.contains("kv_fil"),
        "{err}"
    );

    let bad_dataset = MAIN.replace("max_source_tokens = 400", "max_source_tokns = 400");
    let err = Manifest::load(&write(dir.path(), "main.toml", &bad_dataset))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("main.toml:8:1:") && err.contains("max_source_tokns"),
        "{err}"
    );
}

#[test]
fn invalid_grids_and_include_cycles_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "common.toml", COMMON);
    let duplicate = MAIN.replace("label = \"hsd-none\"\n", "");
    let err = Manifest::load(&write(dir.path(), "main.toml", &duplicate))
        .unwrap_err()
        .to_string();
    assert!(err.contains("share the label 'hsd'"), "{err}");

    let out_of_range = MAIN.replace("[0.2, 0.4]", "[0.2, 1.4]");
    let err = Manifest::load(&write(dir.path(), "main.toml", &out_of_range))
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside [0, 1)"), "{err}");

    write(dir.path(), "a.toml", "include = [\"b.toml\"]\n");
    write(dir.path(), "b.toml", "include = [\"a.toml\"]\n");
    let err = Manifest::load(&dir.path().join("a.toml")).unwrap_err();
    assert!(matches!(err, ManifestError::IncludeCycle { .. }), "{err}");
}

#[test]
fn speculative_strategies_expand_per_draft_length_and_bad_values_name_themselves() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "common.toml", COMMON);
    let text = r#"
include = ["common.toml"]
name = "lossless"

[[dataset]]
name = "e2e"
max_new_tokens = 32

[[strategy]]
name = "full"

[[strategy]]
name = "hsd"
label = "hsd-draft"
target_skip_ratio = [0.3]
speculative = [2, 4]
adaptive = true

[[strategy]]
name = "hsd"
label = "hsd-native"
target_skip_ratio = [0.3]
speculative = 2
draft_weights = "native"
"#;
    let path = write(dir.path(), "lossless.toml", text);
    let manifest = Manifest::load(&path).unwrap();
    let runs = manifest.expand(None, None).unwrap().runs;
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "smollm2-135m/e2e/full",
            "smollm2-135m/e2e/hsd-draft@0.30+k2a",
            "smollm2-135m/e2e/hsd-draft@0.30+k4a",
            "smollm2-135m/e2e/hsd-native@0.30+k2",
        ]
    );
    assert_eq!(runs[0].speculative, None);
    let k4 = runs[2].speculative.unwrap();
    assert!(k4.adaptive && k4.draft_tokens == 4 && k4.max_draft_tokens == 8);
    let draft_weights: Vec<_> = runs.iter().map(|r| r.draft_weights).collect();
    assert_eq!(
        draft_weights,
        [None, None, None, Some(hsd_model::WeightMode::Native)]
    );

    for (bad, message) in [
        ("speculative = 0", "draft tokens must be 1 to 64"),
        (
            "speculative = \"4\"",
            "`speculative` must be an integer or a list",
        ),
        ("speculative = []", "lists no draft length"),
        ("adaptive = true", "`adaptive` needs `speculative = k`"),
        (
            "speculative = 2\nadaptive = 1",
            "`adaptive` must be true or false",
        ),
        (
            "draft_weights = \"native\"",
            "`draft_weights` needs `speculative = k`",
        ),
        (
            "speculative = 2\ndraft_weights = \"q4\"",
            "`draft_weights`: unknown weights `q4`",
        ),
        (
            "speculative = 2\ndraft_weights = 4",
            "`draft_weights` must be \"f32\" or \"native\"",
        ),
    ] {
        let text = format!(
            "include = [\"common.toml\"]\nname = \"bad\"\n[[dataset]]\nname = \"e2e\"\n\
             max_new_tokens = 8\n[[strategy]]\nname = \"hsd\"\n{bad}\n"
        );
        let path = write(dir.path(), "bad.toml", &text);
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains(message), "{bad}: {err}");
        assert!(err.contains("bad.toml"), "{bad}: {err}");
    }
}

#[test]
fn searched_runs_take_their_order_from_the_plan_file_or_say_how_to_make_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "common.toml", COMMON);
    let plans = dir.path().join("plans.json");
    let manifest_text = |plan_file: &Path| {
        format!(
            "include = [\"common.toml\"]\nname = \"searched\"\n[[dataset]]\nname = \"e2e\"\n\
             max_new_tokens = 8\n[[dataset]]\nname = \"xsum\"\nmax_new_tokens = 8\n\
             [[strategy]]\nname = \"searched\"\nplan_file = {:?}\ntarget_skip_ratio = 0.25\n",
            plan_file.display().to_string()
        )
    };
    let path = write(dir.path(), "searched.toml", &manifest_text(&plans));
    // No plan file yet: the manifest loads (so `hsd search` can read it) and the runs say
    // how to make one.
    let manifest = Manifest::load(&path).unwrap();
    let runs = manifest.expand(None, None).unwrap().runs;
    let err = manifest
        .skip_reason(&runs[0], 8, 8)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds no plan for smollm2-135m/e2e"), "{err}");
    assert!(err.contains("hsd search"), "{err}");

    let plan = |order: &str| {
        format!(
            r#"{{"removal_order":{order},"agreement":[],"layers":8,"model":{{"name":"m","spec":"s","architecture":"llama","files":[]}},"calibration_examples":[],"scored_tokens":0,"max_new_tokens":8,"manifest":"x","git_commit":null}}"#
        )
    };
    std::fs::write(
        &plans,
        format!(
            r#"{{"format":"hsd-searched-plan/1","plans":{{"smollm2-135m/e2e":{}}}}}"#,
            plan("[3, 1, 6]")
        ),
    )
    .unwrap();
    let manifest = Manifest::load(&path).unwrap();
    let runs = manifest.expand(None, None).unwrap().runs;
    let hsd_skip::StrategyConfig::Searched(e2e) = &runs[0].strategy else {
        panic!("{:?}", runs[0].strategy)
    };
    assert_eq!(e2e.removal_order, [3, 1, 6]);
    assert_eq!(manifest.skip_reason(&runs[0], 8, 8).unwrap(), None);
    // XSum has no plan in the file.
    assert!(manifest.skip_reason(&runs[1], 8, 8).is_err());

    std::fs::write(&plans, r#"{"format":"other","plans":{}}"#).unwrap();
    let err = Manifest::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("plans.json") && err.contains("format"),
        "{err}"
    );
    let misplaced =
        manifest_text(&plans).replace("name = \"searched\"\nplan", "name = \"hsd\"\nplan");
    let path = write(dir.path(), "misplaced.toml", &misplaced);
    let err = Manifest::load(&path).unwrap_err().to_string();
    assert!(err.contains("`plan_file` belongs to `searched`"), "{err}");
}

#[test]
fn a_list_of_dropped_layers_is_a_list_of_runs_and_a_bad_layer_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "common.toml", COMMON);
    let text = r#"
include = ["common.toml"]
name = "importance"

[[dataset]]
name = "e2e"
max_new_tokens = 32

[[strategy]]
name = "full"

[[strategy]]
name = "drop"
layer = [1, 2, 30]
"#;
    let path = write(dir.path(), "importance.toml", text);
    let manifest = Manifest::load(&path).unwrap();
    // The profile's target list leaves `drop`, which has no target, alone.
    let runs = manifest.expand(Some("smoke"), None).unwrap().runs;
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "smollm2-135m/e2e/full",
            "smollm2-135m/e2e/drop-L01",
            "smollm2-135m/e2e/drop-L02",
            "smollm2-135m/e2e/drop-L30",
        ]
    );
    assert_eq!(runs[3].label, "drop-L30");
    assert_eq!(manifest.skip_reason(&runs[3], 30, 32).unwrap(), None);
    let err = manifest
        .skip_reason(&runs[3], 24, 32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer") && err.contains("1..=24"), "{err}");

    let bad = write(
        dir.path(),
        "bad.toml",
        &text.replace("[1, 2, 30]", "[1, \"two\"]"),
    );
    let err = Manifest::load(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.toml") && err.contains("drop"), "{err}");
}
