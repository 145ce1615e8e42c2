//! CoreNLP's lexer reads UTF-16. A character beyond U+FFFF is two surrogate code units, which
//! no rule takes as a letter or symbol (each is deleted) but which the `[^...]` classes of URLs
//! and e-mail addresses take one at a time (`http://😀` is a URL: two units after `//`). So the
//! text is lexed with each such character written as two stand-ins that every rule treats
//! alike, the noncharacters U+FDD0 and U+FDD1, and tokens get the characters back.

const HIGH: char = '\u{fdd0}';
const LOW: char = '\u{fdd1}';

/// Text with every character beyond U+FFFF as a stand-in pair, and for each U+FDD0 and U+FDD1
/// in it, in order, the character it stands for (`None`: the text's own).
#[derive(Default)]
pub(crate) struct Units {
    pub(crate) text: String,
    highs: Vec<Option<char>>,
    lows: Vec<bool>,
}

/// Where a scan is: how many U+FDD0 and U+FDD1 lie before it.
#[derive(Default, Clone, Copy)]
pub(crate) struct Seen {
    highs: usize,
    lows: usize,
}

impl Units {
    /// Appends `text`, stand-ins for characters beyond U+FFFF.
    pub(crate) fn push_str(&mut self, text: &str) {
        for c in text.chars() {
            if c.len_utf16() == 2 {
                self.text.push(HIGH);
                self.text.push(LOW);
                self.highs.push(Some(c));
                self.lows.push(true);
            } else {
                self.text.push(c);
                if c == HIGH {
                    self.highs.push(None);
                } else if c == LOW {
                    self.lows.push(false);
                }
            }
        }
    }

    /// `token`, lexed from the text after `seen`, with its characters back; a lone unit is
    /// `?`, as Java writes it.
    pub(crate) fn restore(&self, token: String, seen: Seen) -> String {
        if !token.contains([HIGH, LOW]) {
            return token;
        }
        let mut out = String::with_capacity(token.len());
        let (mut highs, mut lows) = (seen.highs, seen.lows);
        let mut chars = token.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                HIGH => {
                    let original = self.highs[highs];
                    highs += 1;
                    match original {
                        None => out.push(HIGH),
                        Some(astral) if chars.peek() == Some(&LOW) && self.lows[lows] => {
                            chars.next();
                            lows += 1;
                            out.push(astral);
                        }
                        Some(_) => out.push('?'),
                    }
                }
                LOW => {
                    out.push(if self.lows[lows] { '?' } else { LOW });
                    lows += 1;
                }
                c => out.push(c),
            }
        }
        out
    }

    /// `seen` moved past `span`, a piece of the text.
    pub(crate) fn advance(seen: Seen, span: &str) -> Seen {
        Seen {
            highs: seen.highs + span.matches(HIGH).count(),
            lows: seen.lows + span.matches(LOW).count(),
        }
    }
}
