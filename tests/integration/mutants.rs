//! The seeded mutation fuzzer: real files (the standard library, the examples, the conformance
//! pipelines) with a few random edits, each through `check` and, when it checks clean, through
//! instantiation, planning, JIT compilation and two steps on a small layout. A mutant fails the
//! test if any stage panics, reports an internal error, fails after a clean check (other than
//! the layout not fitting), or takes more than a second. The inputs that once failed are kept
//! in `tests/fuzz/*.opt` and run first.
//!
//! A CI run tries a few thousand mutants from a fixed seed. For a long run, set
//! `OPTC_FUZZ_ITERS` (mutants) and `OPTC_FUZZ_SEED` (any u64; the default is fixed), as the
//! README's testing section shows. Each failing input is written to `target/fuzz-failures/` to
//! be kept as a fixture.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use optc::ir::Layout;
use optc::runtime::{Backend, Optimizer};

use crate::support::{conformance_dir, files_with_extension, root, with_main_stack};

/// Mutants per CI run.
const CI_ITERS: usize = 5000;
/// The CI run's seed.
const CI_SEED: u64 = 14;
/// The most one input may take, all stages together: a hang takes minutes, while the slowest
/// fixture takes 0.35 s alone; the room between is for a 2-core machine running other tests
/// (and builds) beside this one, where it once took 1.15 s.
const TIME_LIMIT: Duration = Duration::from_secs(3);

/// Errors that a clean pipeline may still get on a given layout.
// Errors only a layout can show: a leaf no arm takes, an axis a leaf does not have, state a
// transform makes depend on the shapes of the leaves, an `assert` on a leaf's shape.
const LAYOUT_CODES: &[&str] = &["unmatched-leaf", "layout-mismatch", "bad-axis", "bad-shape", "shape-dependent-state", "failed-assert"];

/// splitmix64: small, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Tokens an edit inserts: syntax, names of the library, and the values at the edges of every
/// range (zero, negatives, NaN, infinities, the largest ints, just past the budgets).
const TOKENS: &[&str] = &[
    "(", ")", "[", "]", "{", "}", ",", "=", ":", "=>", "+", "-", "*", "/", "^", "%", "<", "==", "and", "not", "if",
    "else", "for", "in", "let", "def", "transform", "schedule", "state", "update", "assert", "reset", "g", "param",
    "value", "step", "True", "False", "None", "_", "\"*.bias\"", "\"*\"", "0", "1", "-1", "2", "0.0", "0.5", "1e-3",
    "-1e-3", "nan", "inf", "-inf", "1e308", "65536", "65537", "2147483647", "9223372036854775807", "[]", "{}",
    "range(3)", "len(", "sum(", "norm(", "leaf_norm(", "chain(", "sgd(0.1)", "adam(1e-3)", "masked(", "partition",
    "inject_hyperparams(", "multi_steps(", "apply_if_finite(", "\n", "#",
];

/// A real file with one to three edits: a span deleted, a span duplicated, a token inserted,
/// a token written over, or (as often as all of those) a number replaced by an edge value.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(3) {
        let len = chars.len();
        let at = rng.below(len + 1);
        let end = (at + 1 + rng.below(40)).min(len);
        // Half the edits change a number, which keeps the file well-formed and tries the ranges.
        match rng.below(8) {
            0 => {
                chars.drain(at..end);
            }
            1 => {
                let piece: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, piece);
            }
            2 => {
                let token = rng.pick(TOKENS);
                chars.splice(at..at, token.chars());
            }
            3 => {
                let token = rng.pick(TOKENS);
                chars.splice(at..end.min(at + token.len()), token.chars());
            }
            _ => {
                // The next number from `at` on becomes an edge value.
                if let Some(start) = (at..len).find(|&i| chars[i].is_ascii_digit()) {
                    let stop = (start..len).find(|&i| !(chars[i].is_ascii_alphanumeric() || chars[i] == '.')).unwrap_or(len);
                    let edge = rng.pick(&["0", "-1", "nan", "inf", "0.0", "1e308", "65537", "9223372036854775807", "1e-45", "2", "0.5"]);
                    chars.splice(start..stop, edge.chars());
                }
            }
        }
    }
    chars.into_iter().collect()
}

/// The files mutants are made from: pipelines (the examples and the conformance pipelines),
/// and the standard library's files, whose mutants test the checking of definitions (they
/// define names the embedded library has, so few of them check clean).
fn seeds() -> (Vec<String>, Vec<String>) {
    let read = |dir: &str| -> Vec<String> {
        files_with_extension(&root().join(dir), "opt").into_iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect()
    };
    let mut texts = read("examples");
    for path in files_with_extension(&conformance_dir(), "json") {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(case) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        if let Some(pipeline) = case["pipeline"].as_str() {
            texts.push(pipeline.to_string());
        }
    }
    (texts, read("stdlib"))
}

/// How far an input went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reached {
    /// Check reported errors (or found no pipeline), or the layout did not fit.
    Refused,
    /// Compiled and stepped.
    Stepped,
}

/// Everything `optc` does with `text`: how far it went, or why it is a failure.
fn run_stages(text: &str) -> Result<Reached, String> {
    let (sources, checked) = optc::check_str("fuzz.opt", text);
    for d in &checked.diagnostics {
        if d.severity == optc::diagnostic::Severity::Bug {
            return Err(format!("check: internal error: {}", d.message));
        }
        for label in d.primary.iter().chain(&d.secondary) {
            let len = sources.get(label.span.file).map_or(0, |f| f.text.len());
            if label.span.end as usize > len || label.span.start > label.span.end {
                return Err(format!("{}: span {:?} outside a file of {len} bytes", d.code, label.span));
            }
        }
    }
    let _ = optc::diagnostic::render(&checked.diagnostics, &sources);
    if checked.has_errors() || checked.program.pipeline.is_none() {
        return Ok(Reached::Refused);
    }
    let layout = Layout::parse("a.bias:3, a.weight:2x3, b:").map_err(|e| format!("layout: {e}"))?;
    let mut params: Vec<f32> = (0..layout.total()).map(|i| 0.25 + i as f32 / 8.0).collect();
    let optimizer = Optimizer::with_backend(&checked.program, &layout, &params, Backend::Jit);
    let mut optimizer = match optimizer {
        Ok(o) => o,
        Err(errors) => {
            let late = errors.iter().filter(|d| d.is_error() && !LAYOUT_CODES.contains(&d.code)).collect::<Vec<_>>();
            if late.is_empty() {
                return Ok(Reached::Refused);
            }
            let shown: Vec<String> = late.iter().map(|d| format!("{:?}[{}]: {}", d.severity, d.code, d.message)).collect();
            return Err(format!("checked clean, then failed to build:\n{}", shown.join("\n")));
        }
    };
    let grads: Vec<f32> = (0..layout.total()).map(|i| (i as f32 - 2.0) / 4.0).collect();
    let value = optimizer.needs_value().then_some(1.5);
    for _ in 0..2 {
        optimizer.step(&mut params, &grads, value).map_err(|e| format!("checked clean, then a step failed: {e}"))?;
    }
    Ok(Reached::Stepped)
}

/// Runs one input on a main-sized stack: how far it went, or why it is a failure.
fn try_input(text: String) -> Result<Reached, String> {
    let start = Instant::now();
    let outcome = with_main_stack(move || match catch_unwind(AssertUnwindSafe(|| run_stages(&text))) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!("panicked: {}", message.unwrap_or_default()))
        }
    });
    let elapsed = start.elapsed();
    if outcome.is_ok() && elapsed > TIME_LIMIT {
        return Err(format!("took {elapsed:?}"));
    }
    outcome
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn inputs_that_once_failed_pass() {
    let fixtures = files_with_extension(&root().join("tests/fuzz"), "opt");
    assert!(!fixtures.is_empty(), "no fixtures in tests/fuzz");
    let failures: Vec<String> = fixtures
        .iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).expect("readable fixture");
            try_input(text).err().map(|why| format!("{}: {why}", path.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn mutants_of_real_files_pass_every_stage() {
    let iters = env_number("OPTC_FUZZ_ITERS").map_or(CI_ITERS, |n| n as usize);
    let seed = env_number("OPTC_FUZZ_SEED").unwrap_or(CI_SEED);
    let (pipelines, library) = seeds();
    assert!(pipelines.len() > 100 && !library.is_empty(), "expected the examples, the conformance pipelines and the library");
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    let mut stepped = 0;
    for i in 0..iters {
        // Three mutants of a pipeline for one of a library file.
        let seeds = if rng.below(4) == 0 { &library } else { &pipelines };
        let source = rng.below(seeds.len());
        let text = mutate(&mut rng, &seeds[source]);
        let why = match try_input(text.clone()) {
            Ok(reached) => {
                stepped += usize::from(reached == Reached::Stepped);
                continue;
            }
            Err(why) => why,
        };
        let dir = root().join("target/fuzz-failures");
        let path = dir.join(format!("{seed}-{i}.opt"));
        let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &text));
        failures.push(format!("mutant {i} of seed {seed} ({}): {why}", path.display()));
        if failures.len() >= 10 {
            break;
        }
    }
    assert!(failures.is_empty(), "{} failing mutants:\n{}", failures.len(), failures.join("\n"));
    // Mutants that check clean are the ones that test the later stages: enough must.
    assert!(stepped * 10 >= iters, "only {stepped} of {iters} mutants checked clean and ran");
}

/// The budgets are far above real pipelines: a chain of 1,000 optimizers checks clean.
#[test]
fn a_chain_of_1000_optimizers_is_inside_every_limit() {
    let text = format!("chain({})", vec!["adamw(learning_rate=1e-3, weight_decay=0.01)"; 1000].join(", "));
    let (sources, checked) = with_main_stack(move || optc::check_str("chain.opt", &text));
    assert!(!checked.has_errors(), "{}", optc::diagnostic::render(&checked.diagnostics, &sources));
}
