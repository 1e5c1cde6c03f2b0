//! Did-you-mean: the closest known name to a misspelt one, the names other frameworks use for
//! Optax's (`lr` for `learning_rate`, `CosineAnnealingLR` for `cosine_decay_schedule`), and the
//! Optax names optc does not support yet, with the reason.

use crate::diagnostic::Diagnostic;
use crate::source::Span;

/// The diagnostic for a name that is not defined: not supported yet (with the reason), another
/// framework's name for an Optax one, or a likely typo among `candidates`.
pub fn unknown_name<'a>(name: &str, span: Span, candidates: impl IntoIterator<Item = &'a str>) -> Diagnostic {
    if let Some(reason) = not_supported(name) {
        return Diagnostic::error("not-supported", format!("`{name}` is not supported yet"))
            .with_primary(span, "an Optax name optc does not have yet")
            .with_note(format!("`{name}` {reason}"));
    }
    let d = Diagnostic::error("unknown-name", format!("cannot find `{name}`")).with_primary(span, "not found");
    if let Some((optax, how)) = optax_equivalent(name) {
        return d.with_help(format!("use Optax's `{optax}`: {how}")).with_note("optc uses Optax's names");
    }
    match closest(name, candidates) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d,
    }
}

const NEEDS_MATRICES: &str = "needs products of each leaf as a matrix (Newton-Schulz iterations, preconditioners), which the language does not have yet";
const NEEDS_RANDOM: &str = "needs a random key at every step, which optc does not have yet";
const NEEDS_MORE: &str = "needs more than one gradient or loss per step, which a pipeline does not get";

/// Why an Optax transform or alias is not in the standard library yet.
pub fn not_supported(name: &str) -> Option<&'static str> {
    Some(match name {
        "muon" | "scale_by_muon" | "scale_by_shampoo" | "shampoo" | "galore" | "scale_by_galore" => NEEDS_MATRICES,
        "add_noise" | "noisy_sgd" => NEEDS_RANDOM,
        "sam" | "sophia" | "scale_by_zoom_linesearch" | "scale_by_backtracking_linesearch" => NEEDS_MORE,
        _ => return None,
    })
}

/// The Optax name (and how it is called) for a name PyTorch, Keras or Hugging Face use.
pub fn optax_equivalent(name: &str) -> Option<(&'static str, &'static str)> {
    let key: String = name.to_lowercase().chars().filter(|c| *c != '_').collect();
    Some(match key.as_str() {
        "cosineannealing" | "cosineannealinglr" | "cosinedecay" | "cosineschedule" => {
            ("cosine_decay_schedule", "`cosine_decay_schedule(init_value=1e-3, decay_steps=1000)`")
        }
        "cosineannealingwarmrestarts" | "sgdr" => ("sgdr_schedule", "one `warmup_cosine_decay_schedule` per cycle"),
        "getcosineschedulewithwarmup" | "cosinewithwarmup" | "warmupcosine" | "cosinewarmup" => (
            "warmup_cosine_decay_schedule",
            "`warmup_cosine_decay_schedule(init_value=0.0, peak_value=1e-3, warmup_steps=100, decay_steps=1000)`",
        ),
        "steplr" | "multisteplr" | "stepdecay" | "multistepdecay" => (
            "piecewise_constant_schedule",
            "`piecewise_constant_schedule(init_value=0.1, boundaries_and_scales={1000: 0.1, 2000: 0.1})`",
        ),
        "exponentiallr" | "exponentialdecayschedule" => {
            ("exponential_decay", "`exponential_decay(init_value=0.1, transition_steps=1, decay_rate=0.99)`")
        }
        "linearlr" | "lineardecay" | "linearwarmup" | "getlinearschedulewithwarmup" => {
            ("linear_schedule", "`linear_schedule(init_value=0.0, end_value=1e-3, transition_steps=100)`")
        }
        "polynomiallr" | "polynomialdecay" => (
            "polynomial_schedule",
            "`polynomial_schedule(init_value=1e-3, end_value=0.0, power=2, transition_steps=1000)`",
        ),
        "constantlr" => ("constant_schedule", "`constant_schedule(1e-3)`, or just the number"),
        "onecyclelr" | "onecycle" => {
            ("cosine_onecycle_schedule", "`cosine_onecycle_schedule(transition_steps=1000, peak_value=0.1)`")
        }
        "reducelronplateau" => ("reduce_on_plateau", "chain it after the optimizer: `reduce_on_plateau(patience=10)`"),
        "clipgradnorm" | "clipbynorm" | "clipnorm" => ("clip_by_global_norm", "`clip_by_global_norm(max_norm=1.0)`"),
        "clipgradvalue" | "clipbyvalue" | "clipvalue" => ("clip", "`clip(max_delta=1.0)`"),
        "momentum" | "nag" | "nesterov" => ("sgd", "`sgd(learning_rate=0.1, momentum=0.9, nesterov=True)`"),
        "weightdecay" | "decoupledweightdecay" => ("add_decayed_weights", "`add_decayed_weights(weight_decay=1e-4)`"),
        "gradientaccumulation" | "accumulategradients" | "gradaccum" => {
            ("multi_steps", "`multi_steps(adam(learning_rate=1e-3), every_k_schedule=4)`")
        }
        _ => return None,
    })
}

/// More edits than this make no typo, however long the name: it bounds the work of comparing
/// two long names (a band this wide around the diagonal of the edit table).
const MAX_EDITS: usize = 10;

/// The candidate closest to `name` by edit distance, if close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).clamp(1, MAX_EDITS);
    let lower: Vec<char> = name.to_lowercase().chars().collect();
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .filter_map(|c| {
            let candidate: Vec<char> = c.to_lowercase().chars().collect();
            // A candidate that contains the name (or is contained in it) is also likely.
            let contains = c.len() > 3 && name.len() > 3 && (c.contains(name) || name.contains(c));
            let d = distance(&lower, &candidate, limit);
            if contains { Some((d.unwrap_or(limit).min(limit), c)) } else { d.map(|d| (d, c)) }
        })
        .min_by_key(|&(d, c)| (d, c.len()))
        .map(|(_, c)| c.to_string())
}

/// Optax's keyword for a name other frameworks (PyTorch, Keras) use.
pub fn known_alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "lr" | "learningrate" | "step_size_lr" | "alpha_lr" => "learning_rate",
        "beta1" | "beta_1" => "b1",
        "beta2" | "beta_2" => "b2",
        "epsilon" => "eps",
        "wd" | "decay_rate_wd" | "l2" => "weight_decay",
        "max_grad_norm" | "clip_norm" | "clipnorm" => "max_norm",
        "clipvalue" | "clip_value" => "max_delta",
        _ => return None,
    })
}

/// Edit distance over chars where swapping two neighbours counts as one edit (optimal string
/// alignment), so `adma` is one edit from `adam`; `None` if it is more than `max`. Only the
/// cells within `max` of the table's diagonal can stay within `max`, so only they are computed,
/// three rows at a time: time in `a.len() * max`, memory in `b.len()`, whatever the lengths.
fn distance(a: &[char], b: &[char], max: usize) -> Option<usize> {
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > max {
        return None;
    }
    let over = max + 1;
    // Rows i-2, i-1 and i. A row is valid from one cell before its band to one cell after it,
    // which covers every cell the next two rows read.
    let mut two = vec![over; m + 1];
    let mut one: Vec<usize> = (0..=m).map(|j| j.min(over)).collect();
    let mut row = vec![over; m + 1];
    for i in 1..=n {
        let (lo, hi) = (i.saturating_sub(max).max(1), (i + max).min(m));
        row[lo - 1] = if lo == 1 { i.min(over) } else { over };
        if hi < m {
            row[hi + 1] = over;
        }
        for j in lo..=hi {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (one[j] + 1).min(row[j - 1] + 1).min(one[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(two[j - 2] + 1);
            }
            row[j] = best.min(over);
        }
        std::mem::swap(&mut two, &mut one);
        std::mem::swap(&mut one, &mut row);
    }
    Some(one[m]).filter(|d| *d <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["adam", "adamw", "adamax", "sgd", "learning_rate"];
        assert_eq!(closest("adma", names).as_deref(), Some("adam"));
        assert_eq!(closest("learning_rat", names).as_deref(), Some("learning_rate"));
        assert_eq!(closest("xyz", names), None);
        assert_eq!(known_alias("lr"), Some("learning_rate"));
        assert_eq!(optax_equivalent("CosineAnnealingLR").map(|(n, _)| n), Some("cosine_decay_schedule"));
        assert!(not_supported("muon").is_some() && not_supported("adam").is_none() && not_supported("adafactor").is_none());
    }

    /// The banded distance against the whole table, on every pair of short words over a small
    /// alphabet (where edits, swaps and bands interact the most).
    #[test]
    fn the_banded_distance_is_the_full_one_where_that_is_small() {
        fn full(a: &[char], b: &[char]) -> usize {
            let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
            for (i, row) in d.iter_mut().enumerate() {
                row[0] = i;
            }
            for (j, cell) in d[0].iter_mut().enumerate() {
                *cell = j;
            }
            for i in 1..=a.len() {
                for j in 1..=b.len() {
                    let cost = usize::from(a[i - 1] != b[j - 1]);
                    let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
                    if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                        best = best.min(d[i - 2][j - 2] + 1);
                    }
                    d[i][j] = best;
                }
            }
            d[a.len()][b.len()]
        }
        let words: Vec<Vec<char>> = (0..3u32.pow(5) * 3)
            .map(|k| {
                let len = (k % 6) as usize;
                (0..len).map(|p| ['a', 'b', 'c'][(k / 3u32.pow(p as u32) % 3) as usize]).collect()
            })
            .collect();
        for a in &words {
            for b in words.iter().step_by(7) {
                let d = full(a, b);
                for max in 0..4 {
                    assert_eq!(distance(a, b, max), (d <= max).then_some(d), "{a:?} {b:?} within {max}");
                }
            }
        }
    }

    #[test]
    fn a_long_misspelt_name_is_compared_in_linear_memory() {
        let long = "x".repeat(200_000);
        let other = format!("{}y", "x".repeat(199_999));
        assert_eq!(closest(&long, [other.as_str(), "adam"]), Some(other.clone()));
        assert_eq!(closest(&long, ["adam"]), None);
    }
}
