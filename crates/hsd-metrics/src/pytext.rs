//! Python's `str.lower()` and `str.split()`, which the reference implementations apply and
//! which differ from Rust's `to_lowercase` and `split_whitespace` at the edges.

/// `str.lower()`: per code point, without Rust's context-dependent final sigma.
pub(crate) fn lower(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// Python's `str.isspace()` for one code point: Unicode White_Space plus the ASCII
/// information separators U+001C..U+001F.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.split()` with no argument.
pub(crate) fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_space).filter(|piece| !piece.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_keeps_sigma_per_code_point() {
        assert_eq!(lower("ΟΔΟΣ"), "οδοσ");
        assert_eq!("ΟΔΟΣ".to_lowercase(), "οδος");
    }

    #[test]
    fn split_treats_information_separators_as_space() {
        assert_eq!(
            split(" a\u{1f}b\u{a0}c  ").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }
}
