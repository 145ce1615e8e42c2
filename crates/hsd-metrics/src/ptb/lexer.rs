//! Longest-match lexing over the rules of `grammar.rs`, as a JFlex scanner does it: at each
//! position every rule is tried, the longest match wins (a trailing context counts towards its
//! length) and, at equal length, the earlier rule.

use std::cell::RefCell;
use std::sync::OnceLock;

use regex::Regex;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind};

use super::grammar::{Action, Rule, rules};

/// The rules compiled: one lazy DFA over every rule's whole pattern (token and trailing
/// context), and for rules with a trailing context, whole-string matchers for both parts.
pub(crate) struct Lexer {
    rules: Vec<Rule>,
    dfa: DFA,
    splits: Vec<Option<(Regex, Regex)>>,
}

/// The rule that applies at a position: its action and the length in bytes of its match
/// without the trailing context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lexeme {
    pub(crate) action: Action,
    pub(crate) token_len: usize,
}

fn whole(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("lexer pattern")
}

impl Lexer {
    fn new() -> Self {
        let rules = rules();
        let patterns: Vec<String> = rules
            .iter()
            .map(|rule| match &rule.context {
                Some(context) => format!("(?:{})(?:{context})", rule.token),
                None => rule.token.clone(),
            })
            .collect();
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(16 << 20)
                    .minimum_cache_clear_count(None),
            )
            .syntax(syntax::Config::new().unicode(true).utf8(true))
            .build_many(&patterns)
            .expect("lexer DFA");
        let splits = rules
            .iter()
            .map(|rule| {
                rule.context
                    .as_ref()
                    .map(|context| (whole(&rule.token), whole(context)))
            })
            .collect();
        Lexer { rules, dfa, splits }
    }

    /// The shared lexer, compiled on first use.
    pub(crate) fn get() -> &'static Lexer {
        static LEXER: OnceLock<Lexer> = OnceLock::new();
        LEXER.get_or_init(Lexer::new)
    }

    /// The lexeme starting at `start` of `text` (`start` below `text.len()`).
    pub(crate) fn next(&self, text: &str, start: usize) -> Lexeme {
        thread_local! {
            static CACHE: RefCell<Option<Cache>> = const { RefCell::new(None) };
        }
        let (len, rule) = CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let cache = cache.get_or_insert_with(|| self.dfa.create_cache());
            self.longest(cache, text, start)
        });
        let token_len = match &self.splits[rule] {
            None => len,
            Some((token, context)) => {
                let end = start + len;
                (start + 1..=end)
                    .rev()
                    .filter(|&cut| text.is_char_boundary(cut))
                    .find(|&cut| {
                        token.is_match(&text[start..cut]) && context.is_match(&text[cut..end])
                    })
                    .expect("a trailing-context match splits")
                    - start
            }
        };
        Lexeme {
            action: self.rules[rule].action,
            token_len,
        }
    }

    /// The longest match at `start` and, among the rules matching that much, the first.
    fn longest(&self, cache: &mut Cache, text: &str, start: usize) -> (usize, usize) {
        let dfa = &self.dfa;
        let input = Input::new(text).range(start..).anchored(Anchored::Yes);
        let mut state = dfa.start_state_forward(cache, &input).expect("start state");
        let mut best: Option<(usize, usize)> = None;
        let mut record = |cache: &Cache, state, len: usize| {
            let first = (0..dfa.match_len(cache, state))
                .map(|i| dfa.match_pattern(cache, state, i).as_usize())
                .min();
            if let Some(rule) = first {
                best = Some((len, rule));
            }
        };
        let bytes = &text.as_bytes()[start..];
        let mut ended = false;
        for (i, &byte) in bytes.iter().enumerate() {
            state = dfa.next_state(cache, state, byte).expect("lazy DFA step");
            if state.is_match() {
                // Matches are reported one byte late.
                record(cache, state, i);
            }
            if state.is_dead() {
                ended = true;
                break;
            }
        }
        if !ended {
            state = dfa.next_eoi_state(cache, state).expect("lazy DFA end");
            if state.is_match() {
                record(cache, state, bytes.len());
            }
        }
        best.expect("the last rule matches any character")
    }
}
