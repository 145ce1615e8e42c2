//! A Rust rendering of what pycocoevalcap's `PTBTokenizer` produces: Stanford CoreNLP 3.4.1's
//! `PTBTokenizer -preserveLines -lowerCase`, then every token in pycocoevalcap's
//! `PUNCTUATIONS` list dropped.
//!
//! CoreNLP's tokenizer is a JFlex scanner (`PTBLexer.flex`): at each position it tries its
//! rules, takes the longest match (the earlier rule on a tie) and turns the match into a token
//! by the rule's action. This module does the same: `grammar.rs` holds the rules in their
//! order, `lexer.rs` the longest-match scan, `normalize.rs` the actions (LaTeX quotes, named
//! brackets, `--`, `...`, `£` as `#`, ...) and Java's lowercasing, `units.rs` the UTF-16 code
//! units the Java lexer reads. The crate README reports its agreement with the Java tokenizer.

mod grammar;
mod lexer;
mod normalize;
mod units;

use units::Units;

/// pycocoevalcap's `PUNCTUATIONS` (after `-lowerCase`, the bracket names no longer match).
const PUNCTUATIONS: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// Characters CoreNLP ends a line at besides `\n`. pycocoevalcap replaces only `\n` before
/// joining captions one per line, so these would shift every later caption; read as spaces.
fn line_end(c: char) -> bool {
    matches!(
        c,
        '\n' | '\u{b}' | '\u{c}' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// The caption as pycocoevalcap writes it on its line: every line end a space.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if line_end(c) { ' ' } else { c })
        .collect()
}

/// Lexes `input.text[..end]` (what follows `end` is only looked at), calling `emit` with each
/// token's start and its text, lowercased as Java does it.
fn scan(input: &Units, end: usize, mut emit: impl FnMut(usize, String)) {
    let lexer = lexer::Lexer::get();
    let text = input.text.as_str();
    let mut seen = units::Seen::default();
    let mut at = 0;
    while at < end {
        let lexeme = lexer.next(text, at);
        let (token, consumed) = normalize::apply(lexeme.action, &text[at..at + lexeme.token_len]);
        if let Some(token) = token {
            emit(at, normalize::java_lowercase(&input.restore(token, seen)));
        }
        seen = Units::advance(seen, &text[at..at + consumed]);
        at += consumed;
    }
}

/// PTB tokens of `text`, lowercased, before punctuation removal.
///
/// The text is read as one caption of pycocoevalcap's file, followed by its newline. A few
/// of CoreNLP's rules look past the newline into the next caption: a single letter's period
/// before `The`, `A`, `He`, ... is split off (`Serie A.` then `The ...` gives `serie a`), and
/// `No.`, `Fig.`, `ca.` keep theirs before a digit. Here nothing follows the newline, as for
/// the last caption of a file; [`tokenize_captions`] reads captions in sequence, as
/// pycocoevalcap does, and gives CoreNLP's tokens for every caption.
pub fn tokenize(text: &str) -> Vec<String> {
    let line = one_line(text);
    let mut input = Units::default();
    input.push_str(&line);
    let end = input.text.len();
    input.push_str("\n");
    let mut tokens = Vec::new();
    scan(&input, end, |_, token| tokens.push(token));
    tokens
}

/// PTB tokens of each caption, lowercased, before punctuation removal, when pycocoevalcap
/// tokenizes `captions` in this order (one per line of a single file).
pub fn tokenize_captions<S: AsRef<str>>(captions: &[S]) -> Vec<Vec<String>> {
    // One file, a caption a line; each caption's first byte in it, to place the tokens.
    let mut input = Units::default();
    let mut starts = Vec::with_capacity(captions.len());
    for (i, caption) in captions.iter().enumerate() {
        if i > 0 {
            input.push_str("\n");
        }
        starts.push(input.text.len());
        input.push_str(&one_line(caption.as_ref()));
    }
    let mut tokens = vec![Vec::new(); captions.len()];
    scan(&input, input.text.len(), |at, token| {
        let line = starts.partition_point(|&start| start <= at) - 1;
        tokens[line].push(token);
    });
    tokens
}

/// pycocoevalcap's tokenization: [`tokenize`] with its punctuation tokens removed.
pub fn tokenize_for_coco(text: &str) -> Vec<String> {
    for_coco(tokenize(text))
}

/// pycocoevalcap's tokenization of `captions` in this order: [`tokenize_captions`] with its
/// punctuation tokens removed.
pub fn tokenize_captions_for_coco<S: AsRef<str>>(captions: &[S]) -> Vec<Vec<String>> {
    tokenize_captions(captions)
        .into_iter()
        .map(for_coco)
        .collect()
}

/// What pycocoevalcap keeps of a line of CoreNLP's output: the line stripped of trailing
/// whitespace (a no-break space can end a URL token), split at spaces, punctuation dropped.
fn for_coco(tokens: Vec<String>) -> Vec<String> {
    let line = tokens.join(" ");
    line.trim_end_matches(crate::pytext::is_space)
        .split(' ')
        .filter(|t| !t.is_empty() && !PUNCTUATIONS.contains(t))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{tokenize_captions_for_coco, tokenize_for_coco};

    /// Each expected string is CoreNLP 3.4.1's output through pycocoevalcap.
    fn check(cases: &[(&str, &str)]) {
        for (text, expected) in cases {
            assert_eq!(tokenize_for_coco(text).join(" "), *expected, "{text}");
        }
    }

    #[test]
    fn matches_corenlp_on_common_constructions() {
        check(&[
            (
                "He said, \"It's 3.5% of $1,000 (approx.) - don't!\"",
                "he said it 's 3.5 % of $ 1,000 -lrb- approx -rrb- do n't",
            ),
            (
                "The U.S. colour e-mail/web 10:30 a.m. £5 cannot gonna A*B",
                "the u.s. colour e-mail/web 10:30 a.m. # 5 can not gon na a * b",
            ),
            (
                "Mr. Smith's cat isn't O'Neil's. 1990s",
                "mr. smith 's cat is n't o'neil 's 1990s",
            ),
            (
                "rock--yes!? well...no 50-year-old",
                "rock yes !? well no 50-year-old",
            ),
            (
                "#Person1# met #Person2#. Madrid–Barajas 2014–15",
                "#person 1 # met #person 2 # madrid barajas 2014 15",
            ),
            (
                "is -3.3528 from x.. y....z the center., near",
                "is -3.3528 from x. y. z the center. near",
            ),
            (
                "Ya'kub Hook'em Al-Zawra'a o'clock d'oeuvre 2006.It €5 «a» ¢",
                "ya kub hook 'em al-zawra a o'clock d'oeuvre 2006 it $ 5 a cents",
            ),
            (
                "a\u{fffd}b\u{fe0f} a**b || Serie A. The",
                "a b a ** b | | serie a the",
            ),
            (
                "Bus No. 713 at Blvd., Sc.D. 1963",
                "bus no. 713 at blvd. sc.d 1963",
            ),
            ("RickleRe:)", "ricklere :-rrb-"),
            ("Adam:D:Karen,.", "adam :d karen"),
            ("Jack:C.Jack:O.k", "jack c.jack :o k"),
            ("Aadmin:||.occupation faits", "aadmin :| | occupation faits"),
            (
                "Joseph:DatingD@ The trial:prefLR.",
                "joseph datingd @ the trial preflr",
            ),
        ]);
    }

    #[test]
    fn abbreviations_numbers_and_currencies() {
        check(&[
            (
                "He lives in Peoria, Ill. That is far. end",
                "he lives in peoria ill. that is far end",
            ),
            (
                "Stocks rose +1.03 points to 30,000-35,000 units end",
                "stocks rose +1.03 points to 30,000-35 ,000 units end",
            ),
            (
                "It cost A$ 5 and NZ$10 or US$3 end",
                "it cost a$ 5 and nz$ 10 or us$ 3 end",
            ),
            (
                "Fig. 3 shows No. 5 and ca. 1900 end",
                "fig. 3 shows no. 5 and ca. 1900 end",
            ),
            (
                "Ltd. Co. Pty. Ltd. and Corp. Inc. and Calif. and Wash. and wash. end",
                "ltd. co. pty. ltd. and corp. inc. and calif. and wash. and wash end",
            ),
            ("M.Sc. Ph.D. B.A. Ed.D. end", "m.sc ph.d. b.a. ed.d. end"),
            ("A.B.C. The end", "a.b.c. the end"),
            ("I. The end", "i the end"),
            (
                "Jan. 5, 1990 and Sept. 3rd end",
                "jan. 5 1990 and sept. 3rd end",
            ),
            (
                "He paid £5, €10, ¥20 and 50¢ end",
                "he paid # 5 $ 10 ¥ 20 and 50 cents end",
            ),
            (
                "He ate 1 1/2 pies and 3/4 cake and ½ cup end",
                "he ate 1\u{a0}1/2 pies and 3/4 cake and 1/2 cup end",
            ),
            (
                "Call (555) 123-4567 or 555-123-4567 today end",
                "call -lrb-555-rrb-\u{a0}123-4567 or 555-123-4567 today end",
            ),
            (
                "he was born in 1930-35 and -5 and .5 and 1,000,000.00 end",
                "he was born in 1930-35 and -5 and .5 and 1,000,000.00 end",
            ),
            ("file.tar.gz and v1.2.3 end", "file.tar.gz and v1 .2.3 end"),
        ]);
    }

    #[test]
    fn urls_markup_quotes_and_clitics() {
        check(&[
            (
                "Visit www.example.com or http://foo.org/bar?x=1 and mail me@foo.com now end",
                "visit www.example.com or http://foo.org/bar?x=1 and mail me@foo.com now end",
            ),
            (
                "The <b>bold</b> text and <<quoted>> end",
                "the <b> bold </b> text and << quoted >> end",
            ),
            (
                "Tom &amp; Jerry &quot;hi&quot; it&apos;s &lt;b&gt; a&nbsp;b end",
                "tom & jerry hi it 's < b > a b end",
            ),
            (
                "“Quoted” and ‘single’ and «guillemets» and „low“ end",
                "quoted and single and guillemets and „ low end",
            ),
            (
                "I don’t know, DON'T, don‘t and can't won't end",
                "i do n't know do n't do n`t and ca n't wo n't end",
            ),
            (
                "\"Hello,\" she said. 'Twas the night. I cannot go, gonna stay end",
                "hello she said 't was the night i can not go gon na stay end",
            ),
            (
                "O'Neil, D'Angelo, l'amour, Ma'am and 'til 'em Dunkin' ol' y'know end",
                "o'neil d'angelo l'amour ma'am and 'til 'em dunkin' ol' y' know end",
            ),
            (
                "It's 5 o'clock & rock 'n' roll in the '90s end",
                "it 's 5 o'clock & rock 'n' roll in the '90s end",
            ),
            (
                "C++ and C# and F# are languages end",
                "c++ and c# and f# are languages end",
            ),
            (
                "AT&T and S&P-500 and Q&A end",
                "at&t and s&p-500 and q&a end",
            ),
            (
                "That's ^_^ and (^_^) and *** and \\* and … end",
                "that 's ^_^ and -lrb-^_^-rrb- and *** and \\* and end",
            ),
            (
                "x :) y :-) z :P w :p and ;-( but not :Dating end",
                "x :-rrb- y :--rrb- z :p w :p and ;--lrb- but not dating end",
            ),
            (
                "The --- dash and -- dash and ---- and ----- end",
                "the dash and dash and and ----- end",
            ),
            (
                "On 12/25/2014 we had x² and H₂O end",
                "on 12/25/2014 we had x ² and h ₂ o end",
            ),
            (
                "Smile 😀 here and zero\u{200b}width end",
                "smile here and zero width end",
            ),
            ("ΟΔΟΣ Σ ΣΑ end", "οδος σ σα end"),
        ]);
    }

    #[test]
    fn unicode_as_the_lexer_knows_it() {
        check(&[
            // A letter newer than Unicode 6.3 and one beyond the BMP are deleted; U+1885 was
            // still a letter.
            (
                "x\u{860}y and x\u{1885}y and x\u{1d400}y end",
                "x y and x\u{1885}y and x y end",
            ),
            // Java's final sigma, by its word breaks.
            (
                "L6Σ ltd8Σ_ltd oΣ-5y ba_2Σ end",
                "l6ς ltd8σ_ltd oς-5y ba_2σ end",
            ),
            // Java's UTF-16: an emoji is two units, enough to end a URL.
            (
                "see http://\u{1f600} and a\u{1f600}b and me@x\u{1f600} end",
                "see http://\u{1f600} and a b and me@x\u{1f600} end",
            ),
            // pycocoevalcap strips the line: a URL's final no-break space goes.
            ("see http://a.b/1,000z\u{a0}", "see http://a.b/1,000z"),
        ]);
    }

    #[test]
    fn a_caption_sees_the_next_one() {
        // An initial's period before `The` on the next line is split off.
        let captions = ["He met Serie A.", "The end", "He met Serie A.", "and so"];
        let tokens: Vec<String> = tokenize_captions_for_coco(&captions)
            .iter()
            .map(|t| t.join(" "))
            .collect();
        assert_eq!(
            tokens,
            ["he met serie a", "the end", "he met serie a.", "and so"]
        );
        // Alone, a caption is a file's last: nothing follows its newline.
        assert_eq!(
            tokenize_for_coco("He met Serie A.").join(" "),
            "he met serie a."
        );
    }
}
