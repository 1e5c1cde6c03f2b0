//! Python habits: what a Python or Optax user writes that a `.opt` file does not take, recognised
//! where the parser stops, with a message that names the fix instead of a list of expected
//! tokens.

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};

/// Modules whose functions are built in (`np.sign(g)` is `sign(g)`).
const MODULES: &[&str] = &["np", "jnp", "numpy", "jax", "math", "torch", "tf", "F", "lax"];

/// The diagnostic for a Python habit at `pos`, where parsing `text` failed, if it is one.
pub fn diagnose(file: FileId, text: &str, pos: usize) -> Option<Diagnostic> {
    let line_start = text.get(..pos)?.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text.get(pos..)?.find('\n').map_or(text.len(), |i| pos + i);
    let line = text.get(line_start..line_end)?;
    let before = text.get(line_start..pos)?;
    let rest = text.get(pos..line_end)?;
    let indent = line.len() - line.trim_start().len();
    let trimmed = line.trim();
    // Spans stay inside the text (the parser may stop at its very end).
    let span = |start: usize, len: usize| Span::new(file, start..(start + len).min(text.len()));
    let word_at = |s: &str| -> usize { s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len()) };
    let python = |message: &str| Diagnostic::error("python-syntax", message.to_string());

    if trimmed.starts_with("import ") || trimmed.starts_with("from ") && trimmed.contains(" import ") {
        return Some(
            python("`import` is not part of .opt files")
                .with_primary(span(line_start + indent, trimmed.len()), "a Python import")
                .with_help("remove this line: every Optax name (`adam`, `chain`, `cosine_decay_schedule`, ...) is always there"),
        );
    }
    if let Some(at) = line.find("//").filter(|at| !line[..*at].contains(['"', '\'', '#'])) {
        return Some(
            python("comments start with `#`")
                .with_primary(span(line_start + at, 2), "not a comment in .opt files")
                .with_help("write `# ...`, as in Python"),
        );
    }
    if rest.starts_with("elif") && word_at(rest) == 4 {
        return Some(
            python("`elif` is written `else if` in .opt files")
                .with_primary(span(pos, 4), "write `else if`")
                .with_help("chain conditions as `if a { ... } else if b { ... } else { ... }`"),
        );
    }
    let word_before = before.trim_end().rsplit(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("");
    if word_before == "return" {
        let at = line_start + before.trim_end().len() - "return".len();
        return Some(
            python("`return` is not needed: the last expression of a block is its result")
                .with_primary(span(at, "return".len()), "remove `return`")
                .with_help("end the block with the value itself, as in `{ let y = 2 * x; y }`"),
        );
    }
    if let Some(attribute) = rest.strip_prefix('.') {
        let name = &attribute[..word_at(attribute)];
        let start = line_start + before.trim_end().len() - word_before.len();
        return Some(if MODULES.contains(&word_before) {
            python(&format!("`{word_before}.` is not needed in .opt files"))
                .with_primary(span(start, word_before.len() + 1), format!("drop `{word_before}.`"))
                .with_help(format!("element math is built in: write `{name}(...)`"))
        } else {
            python("`.` does not read attributes in .opt files")
                .with_primary(span(pos, name.len() + 1), "an attribute")
                .with_help("values have no attributes: a mask is a glob over dotted leaf names, e.g. `\"*.weight\"`")
        });
    }
    if rest.starts_with(':') && rest[1..].trim().is_empty() {
        let keyword = trimmed.split_whitespace().next().unwrap_or("");
        if matches!(keyword, "def" | "if" | "else" | "for" | "elif" | "transform" | "schedule") {
            return Some(
                python("blocks are written with `{ }`, not a colon and indentation")
                    .with_primary(span(pos, 1), "a Python block")
                    .with_help(match keyword {
                        "def" => "write `def f(x: float) { ... }`, or `def f(x: float) = expression`",
                        "for" => "write `for x in xs { ... }`",
                        _ => "write `if condition { ... } else { ... }`",
                    }),
            );
        }
    }
    if rest.starts_with('*') && !rest.starts_with("**") && before.trim_end().ends_with(['(', ',']) {
        return Some(
            python("`*` does not unpack a list in .opt files")
                .with_primary(span(pos, 1), "Python's unpacking")
                .with_help("write the arguments out: `chain(clip_by_global_norm(max_norm=1.0), adam(learning_rate=1e-3))`")
                .with_note("`**map` passes a map's entries as keyword arguments"),
        );
    }
    let mut words = trimmed.split_whitespace();
    if let (Some("let"), Some(name)) = (words.next(), words.next())
        && before.trim_start().starts_with("let")
        && !rest.starts_with('=')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        let value = trimmed["let".len()..].trim_start()[name.len()..].split('#').next().unwrap_or("").trim();
        let value = if value.is_empty() { "..." } else { value };
        return Some(
            Diagnostic::error("syntax-error", format!("`let {name}` needs `=` before its value"))
                .with_primary(span(pos, rest.trim_end().len().max(1)), "expected `=` here")
                .with_help(format!("write `let {name} = {value}`")),
        );
    }
    if rest.starts_with('=') && !rest.starts_with("==") && indent == 0 {
        let name = trimmed[..word_at(trimmed)].to_string();
        if !name.is_empty() && before.trim() == name {
            return Some(
                python("a name is bound with `let`")
                    .with_primary(span(line_start, name.len()), "a Python assignment")
                    .with_help(format!("write `let {}`", trimmed)),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str, at: &str) -> String {
        let pos = text.find(at).expect("marker");
        diagnose(FileId(0), text, pos).map(|d| d.message).unwrap_or_default()
    }

    #[test]
    fn recognises_python_habits() {
        assert_eq!(message("import optax\n", "optax"), "`import` is not part of .opt files");
        assert_eq!(message("tx = adam(1e-3)\n", "= "), "a name is bound with `let`");
        // The parser may stop at the very end of the text: the span stays inside it.
        let at_end = diagnose(FileId(0), "let chain #", 11).expect("a diagnostic");
        assert_eq!(at_end.primary.map(|l| l.span.end), Some(11));
        assert_eq!(at_end.help, ["write `let chain = ...`"]);
        assert_eq!(message("// hi\n", "/"), "comments start with `#`");
        assert_eq!(message("if a { 1 } elif b { 2 }", "elif"), "`elif` is written `else if` in .opt files");
        assert_eq!(message("sign(np.sign(g))", ".sign"), "`np.` is not needed in .opt files");
        assert_eq!(message("def f(x: float):\n", ":\n"), "blocks are written with `{ }`, not a colon and indentation");
        assert_eq!(message("def f(x: float) {\n    return x\n}", "x\n}"), "`return` is not needed: the last expression of a block is its result");
        assert_eq!(message("chain(*txs)", "*"), "`*` does not unpack a list in .opt files");
        assert_eq!(message("let lr 1e-3\n", "1e-3"), "`let lr` needs `=` before its value");
        assert_eq!(message("adam(1e-3) +\n", "\n"), "");
    }
}
