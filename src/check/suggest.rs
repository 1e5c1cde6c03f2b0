//! Did-you-mean: the closest known name to a misspelt one, and the names other frameworks use
//! for Optax's keywords (`lr` for `learning_rate`).

/// The candidate closest to `name` by edit distance, if close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| {
            let d = if c.to_lowercase() == lower { 0 } else { distance(&lower, &c.to_lowercase()) };
            // A candidate that contains the name (or is contained in it) is also likely.
            let contains = c.len() > 3 && name.len() > 3 && (c.contains(name) || name.contains(c));
            (if contains { d.min(limit) } else { d }, c)
        })
        .filter(|&(d, _)| d <= limit)
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
/// alignment), so `adma` is one edit from `adam`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
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
    }
}
