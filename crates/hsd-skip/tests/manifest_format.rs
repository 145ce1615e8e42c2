//! `StrategyConfig`'s JSON is part of the project's records: manifests, the committed
//! records and summaries store it, and a CALM calibration cache keys on its exact string.
//! These strings must never change.

use hsd_skip::StrategyConfig;

fn json(name: &str, settings: &[&str]) -> String {
    let config = StrategyConfig::from_settings(name, settings).unwrap();
    serde_json::to_string(&config).unwrap()
}

fn solved(name: &str, settings: &[&str], layers: usize, tokens: usize) -> String {
    let config = StrategyConfig::from_settings(name, settings).unwrap();
    serde_json::to_string(&config.solve(layers, tokens).unwrap()).unwrap()
}

#[test]
fn defaults_serialize_as_they_always_have() {
    let got: Vec<String> = StrategyConfig::NAMES
        .iter()
        .map(|name| json(name, &[]))
        .collect();
    assert_eq!(
        got,
        [
            r#"{"name":"full"}"#,
            r#"{"name":"hsd","keep_last":false,"kv_fill":"propagate","position":"generated"}"#,
            r#"{"name":"skipdecode","warmup":1,"kv_fill":"none","position":"generated"}"#,
            r#"{"name":"calm","measure":"softmax_max","position_temp":4.0,"min_exit":1,"exit_interval":1,"kv_fill":"propagate","position":"generated"}"#,
            r#"{"name":"static","keep_last":false,"kv_fill":"none"}"#,
            r#"{"name":"early_exit","kv_fill":"none"}"#,
            r#"{"name":"d3","core":2,"kv_fill":"none","position":"generated"}"#,
            r#"{"name":"drop","kv_fill":"propagate"}"#,
            r#"{"name":"random","seed":0,"kv_fill":"propagate"}"#,
            r#"{"name":"oracle"}"#,
            r#"{"name":"searched","removal_order":[],"kv_fill":"propagate"}"#,
        ]
    );
}

#[test]
fn knobs_and_solutions_serialize_as_they_always_have() {
    let got = [
        json(
            "calm",
            &["threshold=0.8", "measure=state", "target_skip_ratio=0.5"],
        ),
        json(
            "random",
            &[
                "seed=3",
                "reference.name=skipdecode",
                "reference.min_layers=4",
            ],
        ),
        solved("hsd", &["target_skip_ratio=0.5"], 30, 64),
        solved("random", &["target_skip_ratio=0.4"], 24, 64),
        solved("d3", &["target_skip_ratio=0.6"], 12, 64),
        solved(
            "skipdecode",
            &["target_skip_ratio=0.25", "position=sequence"],
            32,
            64,
        ),
    ];
    assert_eq!(
        got,
        [
            r#"{"name":"calm","measure":"state","threshold":0.8,"position_temp":4.0,"min_exit":1,"exit_interval":1,"kv_fill":"propagate","position":"generated","target_skip_ratio":0.5}"#,
            r#"{"name":"random","seed":3,"reference":{"name":"skipdecode","warmup":1,"min_layers":4,"kv_fill":"none","position":"generated"},"kv_fill":"propagate"}"#,
            r#"{"name":"hsd","levels":4,"min_skip":0,"max_skip":3,"keep_last":false,"kv_fill":"propagate","position":"generated","target_skip_ratio":0.5}"#,
            r#"{"name":"random","seed":0,"reference":{"name":"hsd","levels":4,"min_skip":0,"max_skip":2,"keep_last":false,"kv_fill":"propagate","position":"generated","target_skip_ratio":0.4},"kv_fill":"propagate","target_skip_ratio":0.4}"#,
            r#"{"name":"d3","alpha":0.9348602294921875,"min_layers":4,"core":2,"kv_fill":"none","position":"generated","target_skip_ratio":0.6}"#,
            r#"{"name":"skipdecode","warmup":1,"max_layers":32,"min_layers":16,"kv_fill":"none","position":"sequence","target_skip_ratio":0.25}"#,
        ]
    );
}
