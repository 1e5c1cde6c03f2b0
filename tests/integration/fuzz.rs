//! Random and mutated input to the parser and checker: never a panic, never a stack overflow,
//! and every diagnostic points inside its file.

use proptest::prelude::*;

use crate::support::{files_with_extension, root, with_main_stack};

/// Parses and checks `text` on a main-sized stack; fails on a panic or a bad span.
fn check_survives(text: String) -> Result<(), TestCaseError> {
    let outcome = with_main_stack(move || {
        let (sources, checked) = optc::check_str("fuzz.opt", &text);
        for d in &checked.diagnostics {
            for label in d.primary.iter().chain(&d.secondary) {
                let len = sources.get(label.span.file).map_or(0, |f| f.text.len());
                if label.span.end as usize > len || label.span.start > label.span.end {
                    return Err(format!("{}: span {:?} outside a file of {len} bytes", d.code, label.span));
                }
            }
        }
        let _ = optc::diagnostic::render(&checked.diagnostics, &sources);
        Ok(())
    });
    outcome.map_err(TestCaseError::fail)
}

const TOKENS: &[&str] = &[
    "chain", "adam", "sgd", "reduce_on_plateau", "masked", "partition", "inject_hyperparams", "(", ")", "[", "]",
    "{", "}", ",", "=", ":", "=>", "->", "\"*.bias\"", "'x'", "\"", "1e-3", "10", "0.5", "-", "+", "*", "/", "^",
    "**", "==", "<", "and", "or", "not", "if", "else", "for", "in", "let", "def", "transform", "schedule", "state",
    "update", "g", "param", "value", "step", "True", "None", "_", "|", "#", "\n", ";", "learning_rate", "x",
    "tensor", "float", "?", "**kw", "assert", "reset", "builtin", ".", "inf",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..120).prop_map(|tokens| tokens.join(" "))
}

fn corpus() -> Vec<String> {
    let mut texts: Vec<String> = files_with_extension(&root().join("examples"), "opt")
        .into_iter()
        .chain(files_with_extension(&root().join("stdlib"), "opt"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    texts.push("chain(adam(learning_rate=1e-3), reduce_on_plateau(patience=10))".into());
    texts
}

/// A real file with a few random edits: deletions, duplications, insertions, replacements.
fn mutated() -> impl Strategy<Value = String> {
    let corpus = corpus();
    let n = corpus.len();
    (0..n, prop::collection::vec((any::<u16>(), any::<u16>(), 0u8..4, prop::sample::select(TOKENS)), 1..6)).prop_map(
        move |(i, edits)| {
            let mut text: Vec<char> = corpus[i].chars().collect();
            for (a, b, kind, token) in edits {
                let len = text.len().max(1);
                let (a, b) = ((a as usize) % len, (b as usize) % len);
                let (lo, hi) = (a.min(b).min(text.len()), a.max(b).min(text.len()));
                match kind {
                    0 => {
                        text.drain(lo..hi.min(lo + 40));
                    }
                    1 => {
                        let piece: Vec<char> = text[lo..hi.min(lo + 40)].to_vec();
                        text.splice(lo..lo, piece);
                    }
                    2 => {
                        text.splice(lo..lo, token.chars());
                    }
                    _ => {
                        let end = (lo + token.len()).min(text.len());
                        text.splice(lo..end, token.chars());
                    }
                }
            }
            text.into_iter().collect()
        },
    )
}

/// Deep nesting and very long lines of every kind.
fn extreme() -> impl Strategy<Value = String> {
    (0usize..3000, 0u8..8).prop_map(|(n, kind)| match kind {
        0 => format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        1 => format!("1{}", " + 1".repeat(n)),
        2 => format!("{}1", "-".repeat(n)),
        3 => format!("{}2", "2 ^ ".repeat(n)),
        4 => format!("adam(learning_rate={})", "1".repeat(n)),
        5 => format!("chain({}sgd(learning_rate=0.1){})", "masked(".repeat(n % 200), ", mask=\"*\")".repeat(n % 200)),
        6 => format!("let x = [{}]\nsgd(learning_rate=0.1)", vec!["1"; n].join(", ")),
        _ => format!("def f(x: float) {{\n{}x\n}}\nsgd(learning_rate=0.1)", "let x = x + 1\n".repeat(n)),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_crashes(text in token_soup()) {
        check_survives(text)?;
    }

    #[test]
    fn mutated_files_never_crash(text in mutated()) {
        check_survives(text)?;
    }

    #[test]
    fn extreme_inputs_never_crash(text in extreme()) {
        check_survives(text)?;
    }

    #[test]
    fn arbitrary_unicode_never_crashes(text in "\\PC{0,300}") {
        check_survives(text)?;
    }
}
