//! The README's generated sections (target solutions, heat maps) must match what the code
//! produces. `HSD_BLESS=1 cargo test --release -p hsd-skip --test readme` rewrites them.

use hsd_skip::report::{heat_maps, solution_table};

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

fn sections() -> [(&'static str, String); 2] {
    [
        (
            "solutions",
            solution_table(&[12, 24, 30, 32], &[0.25, 0.4, 0.5, 0.6, 0.75], 64),
        ),
        ("heat-maps", heat_maps(30, 64, 0.5, 4)),
    ]
}

/// `text` with the body between `<!-- BEGIN name -->` and `<!-- END name -->` replaced.
fn splice(text: &str, name: &str, body: &str) -> Option<String> {
    let (begin, end) = (
        format!("<!-- BEGIN {name} -->\n"),
        format!("<!-- END {name} -->"),
    );
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    Some(format!("{}{body}{}", &text[..start], &text[stop..]))
}

#[test]
fn generated_sections_are_current() {
    let current = std::fs::read_to_string(README).expect("the crate README exists");
    let mut expected = current.clone();
    for (name, body) in sections() {
        expected = splice(&expected, name, &body)
            .unwrap_or_else(|| panic!("README lacks the `{name}` markers"));
    }
    if std::env::var_os("HSD_BLESS").is_some() {
        std::fs::write(README, &expected).expect("README is writable");
    } else {
        assert!(
            current == expected,
            "README generated sections are stale: rerun with HSD_BLESS=1"
        );
    }
}
