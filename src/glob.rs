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

/// Whether every name `later` matches is matched by one of `earlier` (so that, in a
/// `partition`, an arm of `later` after arms of `earlier` never takes a leaf). Decided exactly,
/// on the globs' automata, by walking the pairs of their states that a name can reach.
pub fn covered(later: &str, earlier: &[&str]) -> bool {
    let later = tokens(later);
    let earlier: Vec<Vec<Token>> = earlier.iter().map(|g| tokens(g)).collect();
    // One character of each class no glob tells apart.
    let mut points: Vec<u32> = vec![0];
    for t in earlier.iter().chain([&later]).flatten() {
        match t {
            Token::Char(c) => points.extend([*c as u32, *c as u32 + 1]),
            Token::Set { ranges, .. } => {
                for (lo, hi) in ranges {
                    points.extend([*lo as u32, *hi as u32 + 1]);
                }
            }
            Token::Any | Token::Star => {}
        }
    }
    points.sort_unstable();
    points.dedup();
    let alphabet: Vec<char> = points.into_iter().filter_map(|p| (p..p + 0x800).find_map(char::from_u32)).collect();

    type States = Vec<Vec<bool>>;
    let start: States = std::iter::once(&later).chain(&earlier).map(|g| closure(g, vec![true])).collect();
    let mut seen = vec![start.clone()];
    let mut work = vec![start];
    while let Some(states) = work.pop() {
        let accepts = |i: usize, s: &States| s[i].last() == Some(&true);
        if accepts(0, &states) && !(1..states.len()).any(|i| accepts(i, &states)) {
            return false;
        }
        for &c in &alphabet {
            let next: States =
                std::iter::once(&later).chain(&earlier).zip(&states).map(|(g, s)| step(g, s, c)).collect();
            if next[0].iter().any(|&b| b) && !seen.contains(&next) {
                seen.push(next.clone());
                work.push(next);
            }
        }
    }
    true
}

/// A piece of a glob.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    Char(char),
    Any,
    Star,
    Set { negate: bool, ranges: Vec<(char, char)> },
}

fn tokens(pattern: &str) -> Vec<Token> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => out.push(Token::Star),
            '?' => out.push(Token::Any),
            '[' if match_set(&p, i, 'x').is_some() => {
                let mut j = i + 1;
                let negate = p.get(j) == Some(&'!');
                if negate {
                    j += 1;
                }
                let first = j;
                let mut ranges = Vec::new();
                while p[j] != ']' || j == first {
                    if j + 2 < p.len() && p[j + 1] == '-' && p[j + 2] != ']' {
                        ranges.push((p[j], p[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((p[j], p[j]));
                        j += 1;
                    }
                }
                out.push(Token::Set { negate, ranges });
                i = j;
            }
            c => out.push(Token::Char(c)),
        }
        i += 1;
    }
    out
}

/// The positions reachable from `states` without reading a character (across `*`s).
fn closure(glob: &[Token], mut states: Vec<bool>) -> Vec<bool> {
    states.resize(glob.len() + 1, false);
    for i in 0..glob.len() {
        if states[i] && glob[i] == Token::Star {
            states[i + 1] = true;
        }
    }
    states
}

/// The positions after reading `c` from `states`.
fn step(glob: &[Token], states: &[bool], c: char) -> Vec<bool> {
    let mut next = vec![false; glob.len() + 1];
    for (i, t) in glob.iter().enumerate() {
        if !states[i] {
            continue;
        }
        match t {
            Token::Star => next[i] = true,
            Token::Any => next[i + 1] = true,
            Token::Char(x) => next[i + 1] |= *x == c,
            Token::Set { negate, ranges } => next[i + 1] |= ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate,
        }
    }
    closure(glob, next)
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
    fn coverage_is_decided_on_the_whole_language() {
        assert!(covered("*.bias", &["*"]));
        assert!(covered("layers.0.bias", &["*.bias"]));
        assert!(covered("*norm*.bias", &["*.bias"]));
        assert!(covered("layer[0-2].w", &["layer0.w", "layer[12].w"]));
        assert!(covered("a?", &["a[!x]", "ax"]));
        assert!(!covered("*.bias", &["*.weight"]));
        assert!(!covered("*norm*", &["*.bias"]));
        assert!(!covered("layer[0-3].w", &["layer[0-2].w"]));
        assert!(!covered("*", &[]));
        assert!(covered("a[b", &["a[b"]));
    }

    #[test]
    fn rejects_likely_mistakes() {
        assert!(validate("").is_err());
        assert!(validate("layer[0.w").is_err());
        assert!(validate("*.weight").is_ok());
    }
}
