//! Globs over dotted leaf names, with Python's `fnmatchcase` rules: `*` matches any run of
//! characters (dots included), `?` one character, `[abc]` / `[a-z]` / `[!abc]` a set.

/// Whether `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with backtracking to the last `*` (linear in practice, no recursion).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = match_set(&p, pi, n[ni]) {
                        if matched {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        // An unclosed `[` is a literal, as in Python.
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the set starting at `p[start] == '['`: whether it matched and the index
/// after the closing `]`, or `None` if the set is never closed.
fn match_set(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = p.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    let first = i;
    let mut matched = false;
    while i < p.len() && (p[i] != ']' || i == first) {
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            matched |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    (i < p.len()).then_some((matched != negate, i + 1))
}

/// Reports globs that are almost certainly mistakes.
pub fn validate(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("an empty glob matches no leaf".into());
    }
    let chars: Vec<char> = pattern.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '[' && match_set(&chars, i, 'x').is_none() {
            return Err("`[` starts a set of characters that is never closed with `]`".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_fnmatchcase() {
        assert!(matches("*.bias", "layers.0.bias"));
        assert!(matches("*", "a.b.c"));
        assert!(!matches("*.bias", "layers.0.weight"));
        assert!(matches("conv.*", "conv.kernel"));
        assert!(matches("layer?.w", "layer1.w"));
        assert!(matches("layer[0-2].w", "layer1.w"));
        assert!(!matches("layer[!0-2].w", "layer1.w"));
        assert!(matches("*norm*", "encoder.layernorm.scale"));
        assert!(!matches("bias", "Bias"));
        assert!(matches("a[b", "a[b"));
    }

    #[test]
    fn rejects_likely_mistakes() {
        assert!(validate("").is_err());
        assert!(validate("layer[0.w").is_err());
        assert!(validate("*.weight").is_ok());
    }
}
