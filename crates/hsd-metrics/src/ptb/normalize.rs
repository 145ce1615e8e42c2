//! What each lexer rule's match becomes as a token (CoreNLP's default PTB normalizations:
//! LaTeX quotes, named brackets, `--` dashes, `...` ellipses, ASCII currency and fractions).

use super::grammar::Action;

/// The token for `text` matched under `action` (`None`: no token) and how many bytes of it are
/// consumed; the rest is read again.
pub(crate) fn apply(action: Action, text: &str) -> (Option<String>, usize) {
    let all = text.len();
    let token = match action {
        Action::Keep => text.to_owned(),
        Action::SplitTail(n) => {
            let cut = text.char_indices().rev().nth(n - 1).map_or(0, |(i, _)| i);
            return (Some(text[..cut].to_owned()), cut);
        }
        Action::NoBreakSpaces => text.replace(' ', "\u{a0}"),
        Action::Amp => replace_amp(text),
        Action::SoftHyphens => remove_soft_hyphens(text),
        Action::Quote(opening) => latex_quotes(text, opening),
        Action::VulgarFraction => match text {
            "\u{bc}" => "1/4",
            "\u{bd}" => "1/2",
            "\u{be}" => "3/4",
            "\u{2153}" => "1/3",
            "\u{2154}" => "2/3",
            other => other,
        }
        .to_owned(),
        Action::Currency => match text {
            "\u{a2}" => "cents",
            "\u{a3}" => "#",
            "\u{80}" | "\u{a4}" | "\u{20a0}" | "\u{20ac}" => "$",
            other => other,
        }
        .to_owned(),
        Action::AcronymAtSentenceEnd => {
            // A single letter (`I.`) gives up its period; a longer acronym keeps it. Either
            // way the period is read again.
            let period = all - 1;
            if text.chars().count() == 2 {
                return (Some(text[..period].to_owned()), period);
            }
            return (Some(text.to_owned()), period);
        }
        Action::AbbreviationAtSentenceEnd => return (Some(text.to_owned()), all - 1),
        Action::Phone => text
            .replace(' ', "\u{a0}")
            .replace('(', "-LRB-")
            .replace(')', "-RRB-"),
        Action::Replace(token) => token.to_owned(),
        Action::Smiley => text.replace('(', "-LRB-").replace(')', "-RRB-"),
        Action::Hyphens => {
            if (3..=4).contains(&all) {
                "--".to_owned()
            } else {
                text.to_owned()
            }
        }
        Action::Skip => return (None, all),
    };
    (Some(token), all)
}

/// `&amp;`, in any case, as `&`.
fn replace_amp(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.len() >= 5 && tail[..5].eq_ignore_ascii_case("&amp;") {
            out.push('&');
            rest = &tail[5..];
        } else {
            out.push('&');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Soft hyphens dropped; a token of nothing but soft hyphens is `-`.
fn remove_soft_hyphens(text: &str) -> String {
    let out: String = text.chars().filter(|&c| c != '\u{ad}').collect();
    if out.is_empty() { "-".to_owned() } else { out }
}

/// CoreNLP's LaTeX quotes: ASCII quotes as opening (`` ` ``, ``` `` ```) or closing (`'`,
/// `''`), curly and angle quotes by their direction.
fn latex_quotes(text: &str, opening: bool) -> String {
    let (single, double) = if opening { ("`", "``") } else { ("'", "''") };
    let text = text
        .replace("&apos;", single)
        .replace('\'', single)
        .replace("&quot;", double)
        .replace('"', double);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{91}' | '\u{2018}' | '\u{201b}' | '\u{2039}' => out.push('`'),
            '\u{92}' | '\u{2019}' | '\u{203a}' => out.push('\''),
            '\u{93}' | '\u{201c}' | '\u{ab}' => out.push_str("``"),
            '\u{94}' | '\u{201d}' | '\u{bb}' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out
}
