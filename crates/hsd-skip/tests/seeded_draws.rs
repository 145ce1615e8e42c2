//! Committed sweeps hold `random` runs drawn with these exact layer sets, and later runs are
//! compared with them byte for byte: the draw for a seed must never change.

use hsd_skip::{StrategyConfig, static_schedule};

/// One `0`/`1` string per token: the layers `random` runs with `seed` and its default reference.
fn rows(seed: u64, layers: usize, tokens: usize) -> Vec<String> {
    let config = StrategyConfig::from_settings("random", &[format!("seed={seed}")]).unwrap();
    static_schedule(
        &mut *config.build(layers, tokens).unwrap(),
        layers,
        tokens,
        0,
    )
    .iter()
    .map(|plan| {
        plan.run
            .to_bits()
            .iter()
            .map(|&bit| char::from(b'0' + bit))
            .collect()
    })
    .collect()
}

#[test]
fn random_draws_are_pinned() {
    assert_eq!(
        rows(7, 12, 16),
        [
            "111111111111",
            "111111111111",
            "111111111111",
            "111111111111",
            "100101110001",
            "100101101010",
            "001001111001",
            "101000011110",
            "000011100100",
            "001000111000",
            "001001000110",
            "110010100000",
            "000000110100",
            "100000010010",
            "100010000001",
            "010010001000",
        ]
    );
    assert_eq!(
        rows(0xDEAD_BEEF, 30, 8),
        [
            "111111111111111111111111111111",
            "111111111111111111111111111111",
            "010000110110110011100010011110",
            "010011011010010111000011010011",
            "101000001111000001000000001011",
            "001111001010001100000100000001",
            "010000100100000001001000100010",
            "101111000000001000000000100000",
        ]
    );
}
