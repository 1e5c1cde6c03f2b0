//! Syntax: `.opt` text → [`ast::File`]. pest stays inside this module; the AST carries its own
//! spans and no pest types, so the rest of the compiler never sees the parser.

pub mod ast;
mod grammar;
mod habits;
mod lower;
mod lower_expr;
pub mod scan;

use std::sync::Mutex;

use pest::Parser;
use pest::error::{ErrorVariant, InputLocation};

use crate::diagnostic::Diagnostic;
use crate::limits;
use crate::source::{FileId, Span};
use grammar::{OptParser, Rule};

/// Brackets nested deeper than [`limits::BRACKETS`] are reported before parsing, so that neither
/// the parser nor any later recursive pass can run out of stack.
const MAX_NESTING: usize = limits::BRACKETS.max;

/// Parses one file. Syntax errors stop at the first one pest finds; the `bad_*` rules of the
/// grammar let common mistakes through with a precise diagnostic, so a file may come back with
/// an AST *and* diagnostics.
pub fn parse(file: FileId, text: &str) -> (Option<ast::File>, Vec<Diagnostic>) {
    if let Some(diagnostic) = check_nesting(file, text) {
        return (None, vec![diagnostic]);
    }
    // pest's record of what it tried makes the best messages but slows every parse several
    // times over: parse without it (pest's default), and again with it only to explain a
    // failure.
    match OptParser::parse(Rule::file, text) {
        Ok(mut pairs) => {
            let mut lowerer = lower::Lowerer { file, source: text, base: 0, diagnostics: Vec::new() };
            let ast = pairs.next().map(|p| lowerer.lower_file(p));
            (ast, lowerer.diagnostics)
        }
        Err(quick) => {
            // The setting is global and read when a parse starts: one detailed parse at a time.
            static DETAILED: Mutex<()> = Mutex::new(());
            let guard = DETAILED.lock().unwrap_or_else(|e| e.into_inner());
            pest::set_error_detail(true);
            let err = OptParser::parse(Rule::file, text).err().unwrap_or(quick);
            pest::set_error_detail(false);
            drop(guard);
            (None, vec![syntax_error(file, text, &err)])
        }
    }
}

/// What [`parse`] gives: the syntax tree (unless the file is unreadable) and diagnostics.
pub type Parsed = (Option<ast::File>, Vec<Diagnostic>);

/// [`parse`] of each of `files`, remembered for the life of the process: for the standard
/// library, which every check of a user file would otherwise parse again (pest reads it at a
/// few MB/s, tens of milliseconds; a copy of its trees, whose definitions are shared, takes
/// well under one). Files not seen before are parsed in parallel, one thread per core.
pub fn parse_cached(files: &[(FileId, &str)]) -> Vec<Parsed> {
    static CACHE: Mutex<Vec<((FileId, String), Parsed)>> = Mutex::new(Vec::new());
    /// Enough for the embedded standard library and a directory or two used in its place.
    const ENTRIES: usize = 64;
    let keys = files.iter().map(|&(file, text)| (file, text.to_string())).collect();
    remembered(&CACHE, ENTRIES, keys, |i| parse(files[i].0, files[i].1))
}

/// Parses each part `(file, text, range)` (whole top-level items of `text`, see
/// [`scan::items`]) as if it were a file of its own, with spans in `text`: `None` for a part
/// that does not parse without a single diagnostic (a caller who needs the diagnostics parses
/// the whole file). Remembered for the life of the process, as [`parse_cached`] does for whole
/// files; parts not seen before are parsed in parallel.
pub fn parse_items(parts: &[(FileId, &str, std::ops::Range<usize>)]) -> Vec<Option<ast::File>> {
    /// A part by its file, where it starts and its text.
    type Key = (FileId, usize, String);
    static CACHE: Mutex<Vec<(Key, Option<ast::File>)>> = Mutex::new(Vec::new());
    /// Enough for every item of the standard library.
    const ENTRIES: usize = 1024;
    let keys = parts.iter().map(|(file, text, range)| (*file, range.start, text.get(range.clone()).unwrap_or("").to_string())).collect();
    remembered(&CACHE, ENTRIES, keys, |i| {
        let (file, text, range) = &parts[i];
        parse_part(*file, text, range.clone())
    })
}

/// The value of each of `keys`: from `cache` if it is there, else `parse(i)` for the `i`-th,
/// those on up to one thread per core, and remembered (the cache starts again when it would
/// hold more than `limit`).
fn remembered<K, V>(cache: &Mutex<Vec<(K, V)>>, limit: usize, keys: Vec<K>, parse: impl Fn(usize) -> V + Sync) -> Vec<V>
where
    K: PartialEq + Send,
    V: Clone + Send,
{
    let mut found: Vec<Option<V>> = Vec::with_capacity(keys.len());
    let mut missing: Vec<(usize, K)> = Vec::new();
    {
        let cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        for (i, key) in keys.into_iter().enumerate() {
            let value = cache.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
            if value.is_none() {
                missing.push((i, key));
            }
            found.push(value);
        }
    }
    if !missing.is_empty() {
        let fresh = crate::parallel::map(missing, crate::parallel::cores(), |(i, key)| (i, key, parse(i)));
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() + fresh.len() > limit {
            cache.clear();
        }
        for (i, key, value) in fresh {
            cache.push((key, value.clone()));
            found[i] = Some(value);
        }
    }
    found.into_iter().flatten().collect()
}

/// One part of [`parse_items`], not remembered.
fn parse_part(file: FileId, text: &str, range: std::ops::Range<usize>) -> Option<ast::File> {
    let part = text.get(range.clone())?;
    if check_nesting(file, part).is_some() {
        return None;
    }
    let mut pairs = OptParser::parse(Rule::file, part).ok()?;
    let mut lowerer = lower::Lowerer { file, source: text, base: range.start, diagnostics: Vec::new() };
    let ast = lowerer.lower_file(pairs.next()?);
    lowerer.diagnostics.is_empty().then_some(ast)
}

/// Reports brackets nested deeper than [`limits::BRACKETS`], ignoring strings and comments.
fn check_nesting(file: FileId, text: &str) -> Option<Diagnostic> {
    let mut depth = 0usize;
    for (i, b) in scan::code(text) {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(limits::BRACKETS.exceeded(Span::new(file, i..i + 1)));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Turns pest's error into a diagnostic that names what was expected in words.
fn syntax_error(file: FileId, text: &str, err: &pest::error::Error<Rule>) -> Diagnostic {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let pos = err.parse_attempts().map_or(pos, |a| a.max_position.max(pos)).min(text.len());
    let found = describe_found(text, pos);
    let found_len = match text.get(pos..) {
        Some(rest) if !rest.is_empty() && !rest.starts_with(['\n', '\r']) => {
            found_token(rest).len().max(rest.chars().next().map_or(1, char::len_utf8))
        }
        _ => 0,
    };
    let span = Span::new(file, pos..pos + found_len);

    if let ErrorVariant::CustomError { message } = &err.variant {
        return Diagnostic::error("syntax-error", format!("cannot parse this file: {message}"))
            .with_primary(span, "here");
    }
    if let Some(d) = habits::diagnose(file, text, pos) {
        return d;
    }

    let mut expected: Vec<String> = Vec::new();
    let mut operator = false;
    if let Some(attempts) = err.parse_attempts() {
        for token in attempts.expected_tokens() {
            // Literal tokens print as themselves; operators are many, so they are named once;
            // pieces of literals (quotes, digits, `.`) are covered by "a number", "a string".
            let token = token.to_string();
            let t = token.trim();
            if OPERATORS.contains(&t) {
                operator = true;
            } else if PUNCTUATION.contains(&t) || t.chars().all(char::is_alphabetic) && t.len() > 1 {
                expected.push(format!("`{t}`"));
            }
        }
        for stack in attempts.call_stacks() {
            let rule = stack.deepest.get_rule().copied().or(stack.parent);
            if let Some(name) = rule.and_then(grammar::describe) {
                expected.push(name.to_string());
            }
        }
    }
    if let ErrorVariant::ParsingError { positives, .. } = &err.variant {
        expected.extend(positives.iter().filter_map(|r| grammar::describe(*r)).map(String::from));
    }
    if operator {
        expected.push("an operator".to_string());
    }
    simplify_expected(&mut expected);
    if let Some(quote) = unclosed_string_on_line(text, pos) {
        let q = text.get(quote..quote + 1).unwrap_or("\"");
        return Diagnostic::error("syntax-error", "this string is never closed")
            .with_primary(Span::new(file, quote..quote + 1), "the string starts here")
            .with_help(format!("end it with `{q}` on the same line"));
    }
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(&expected))
    };
    let mut d = Diagnostic::error("syntax-error", message).with_primary(span, format!("unexpected {found}"));
    let line_start = text.get(..pos).map_or(0, |b| b.rfind('\n').map_or(0, |i| i + 1));
    let starts_line = text.get(line_start..pos).is_some_and(|b| b.trim().is_empty());
    let is_operator = text.get(pos..).is_some_and(|r| OPERATORS.iter().any(|op| r.starts_with(op)));
    if starts_line && is_operator && line_start > 0 {
        d = d.with_help(
            "a newline ends a statement, so a line cannot start with an operator: end the previous line with it, or wrap the expression in `( ... )`",
        );
    }
    if let Some(open) = unclosed_bracket(text, pos) {
        let c = text.get(open..open + 1).unwrap_or("(");
        d = d.with_secondary(Span::new(file, open..open + 1), format!("this `{c}` is not closed"));
    }
    d
}

/// Drops what a shorter word already says: the tokens that start an expression when "an
/// expression" is expected, the argument starts pest tried while looking for a missing comma.
fn simplify_expected(expected: &mut Vec<String>) {
    let has = |e: &Vec<String>, x: &str| e.iter().any(|y| y == x);
    // The error rules that catch Python's spellings are not what a user should write.
    let literal_words = [
        "`True`", "`False`", "`None`", "`true`", "`false`", "`TRUE`", "`FALSE`", "`NONE`", "`none`", "`null`", "`nil`",
        "`lambda`", "`optax`",
    ];
    expected.retain(|e| !literal_words.contains(&e.as_str()));
    if has(expected, "an expression") {
        let starts = ["`(`", "`[`", "`{`", "`if`", "`partition`", "a name", "a number", "a string", "an operator"];
        expected.retain(|e| !starts.contains(&e.as_str()));
    } else if has(expected, "`,`") && (has(expected, "`)`") || has(expected, "`]`") || has(expected, "`}`")) {
        let starts = ["`(`", "a name", "a number", "a string"];
        expected.retain(|e| !starts.contains(&e.as_str()));
    }
    expected.sort_by_key(|e| (!e.starts_with('`'), e.clone()));
    expected.dedup();
}

const OPERATORS: &[&str] =
    &["+", "-", "*", "/", "%", "^", "**", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "and", "or", "is", "not"];
const PUNCTUATION: &[&str] = &["(", ")", "[", "]", "{", "}", ",", "=", ":", "=>", "->", "?", ";", "|"];

/// The innermost bracket still open at `pos`, ignoring strings and comments.
fn unclosed_bracket(text: &str, pos: usize) -> Option<usize> {
    let mut stack = Vec::new();
    for (i, b) in scan::code(text).take_while(|(i, _)| *i < pos) {
        match b {
            b'(' | b'[' | b'{' => stack.push(i),
            b')' | b']' | b'}' => {
                stack.pop();
            }
            _ => {}
        }
    }
    let at_end = text.get(pos..).is_none_or(|rest| rest.trim().is_empty());
    if at_end { stack.pop() } else { None }
}

/// The opening quote of a string still open where the line of `pos` ends (strings do not
/// span lines), ignoring comments.
fn unclosed_string_on_line(text: &str, pos: usize) -> Option<usize> {
    let start = text.get(..pos)?.rfind('\n').map_or(0, |i| i + 1);
    let end = text.get(pos..)?.find('\n').map_or(text.len(), |i| pos + i);
    let mut open: Option<(usize, char)> = None;
    let mut escaped = false;
    for (i, c) in text.get(start..end)?.char_indices() {
        match open {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some((_, q)) if c == q => open = None,
            Some(_) => {}
            None if c == '#' => break,
            None if c == '"' || c == '\'' => open = Some((start + i, c)),
            None => {}
        }
    }
    open.map(|(i, _)| i)
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A word, number or single character at the start of `rest`.
fn found_token(rest: &str) -> &str {
    if rest.starts_with(|c: char| c.is_ascii_digit()) {
        // A number, exponent sign included: `1e-3`, not `1e`.
        let bytes = rest.as_bytes();
        let mut end = 0;
        while end < bytes.len() {
            let b = bytes[end];
            let sign_after_e = (b == b'-' || b == b'+') && end > 0 && matches!(bytes[end - 1], b'e' | b'E');
            if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || sign_after_e) {
                break;
            }
            end += 1;
        }
        return &rest[..end];
    }
    let end = rest
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map_or(rest.len(), |(i, _)| i);
    if end > 0 {
        return &rest[..end];
    }
    let first = rest.chars().next().map_or(0, char::len_utf8);
    &rest[..first]
}

fn describe_found(text: &str, pos: usize) -> String {
    match text.get(pos..) {
        None | Some("") => "end of file".to_string(),
        Some(rest) if rest.starts_with(['\n', '\r']) => "end of line".to_string(),
        Some(rest) => format!("`{}`", found_token(rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> ast::File {
        let (file, diags) = parse(FileId(0), text);
        assert!(diags.is_empty(), "{diags:#?}");
        file.expect("no AST")
    }

    fn pipeline(text: &str) -> ast::Expr {
        match parse_ok(text).items.pop() {
            Some(ast::Item::Expr(e)) => e,
            other => panic!("expected an expression, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_article_pipeline() {
        let e = pipeline("chain(\n    adam(learning_rate=1e-3),\n    reduce_on_plateau(patience=10, cooldown=1),\n)\n");
        let ast::ExprKind::Call { args, .. } = e.kind else { panic!() };
        assert_eq!(args.len(), 2);
    }

    #[test]
    fn power_binds_tighter_than_unary_minus_and_is_right_associative() {
        let e = pipeline("-2 ^ 3 ^ 2");
        let ast::ExprKind::Unary { op: ast::UnaryOp::Neg, operand } = e.kind else { panic!("{e:?}") };
        let ast::ExprKind::Binary { op: ast::BinaryOp::Pow, rhs, .. } = operand.kind else { panic!() };
        assert!(matches!(rhs.kind, ast::ExprKind::Binary { op: ast::BinaryOp::Pow, .. }));
    }

    #[test]
    fn newline_ends_a_statement_but_not_a_bracketed_expression() {
        let file = parse_ok("def f(x: float) {\n    let y = x\n    -y\n}\n");
        let ast::Item::Def(def) = &file.items[0] else { panic!() };
        let body = def.body.as_ref().expect("a body");
        assert_eq!(body.stmts.len(), 1);
        assert!(matches!(body.result.as_ref().expect("a result").kind, ast::ExprKind::Unary { .. }));
        let e = pipeline("f(1\n  - 2)");
        let ast::ExprKind::Call { args, .. } = e.kind else { panic!() };
        assert_eq!(args.len(), 1);
    }

    #[test]
    fn numbers_keep_their_int_or_float_type() {
        assert_eq!(pipeline("10_000").kind, ast::ExprKind::Int(10_000));
        assert_eq!(pipeline("1e-3").kind, ast::ExprKind::Float(1e-3));
        assert_eq!(pipeline("2.").kind, ast::ExprKind::Float(2.0));
    }

    #[test]
    fn partition_arms_take_alternatives_and_a_wildcard() {
        let e = pipeline("partition {\n  \"*.bias\" | \"*norm*\" => sgd(learning_rate=0.1),\n  _ => adam(learning_rate=1e-3)\n}");
        let ast::ExprKind::Partition(arms) = e.kind else { panic!() };
        assert_eq!(arms.len(), 2);
        assert_eq!(arms[0].patterns.len(), 2);
        assert!(matches!(arms[1].patterns[0], ast::ArmPattern::Wildcard(_)));
    }

    #[test]
    fn doc_comments_are_the_comment_block_above() {
        let file = parse_ok("# unrelated\n\n# Line one.\n# Line two.\ndef f(x: float) = x\n");
        let ast::Item::Def(def) = &file.items[0] else { panic!() };
        assert_eq!(def.doc.as_deref(), Some("Line one.\nLine two."));
    }

    #[test]
    fn a_colon_for_an_equals_sign_is_reported_and_recovered() {
        let (file, diags) = parse(FileId(0), "adam(learning_rate: 1e-3)");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, "keyword-colon");
        assert!(file.is_some());
    }

    /// Each construct nested as deep as the bracket limit allows, valid and with a mistake at
    /// the end: a grammar that parsed a nested level twice would take 2^60 steps here.
    #[test]
    fn every_construct_parses_in_linear_time_at_the_nesting_limit() {
        let depth = MAX_NESTING / 2 - 2;
        let nest = |open: &str, close: &str| format!("{}0{}", open.repeat(depth), close.repeat(depth));
        let constructs = [
            nest("a[", "]"),
            nest("a[1:", "]"),
            nest("if c { ", " } else { 0 }"),
            nest("f(x=", ")"),
            nest("f(x: ", ")"),
            nest("[", " for x in y]"),
            format!("def f(a: float) {{\n{}\n}}", nest("a[if c {\n", "\n} else { 0 }]")),
            format!("def f(a: float) {{\n{} = 1\n}}", nest("a[if c {\n", "\n} else { 0 }]")),
            format!("sgd(lambda {}", "(".repeat(MAX_NESTING - 2)),
        ];
        for text in constructs {
            for tail in ["", " +", " )"] {
                let _ = parse(FileId(0), &format!("{text}{tail}"));
            }
        }
    }

    #[test]
    fn assignments_set_a_name_or_an_entry_and_nothing_else() {
        let file = parse_ok("def f(s: float) {\n  x = 1\n  x += 2\n  s[0] -= x\n  x\n}\n");
        let ast::Item::Def(def) = &file.items[0] else { panic!() };
        let stmts = &def.body.as_ref().expect("a body").stmts;
        assert!(matches!(&stmts[0], ast::Stmt::Assign(a) if a.target.name == "x" && a.op == ast::AssignOp::Set));
        assert!(matches!(&stmts[1], ast::Stmt::Assign(a) if a.op == ast::AssignOp::Add && a.index.is_none()));
        assert!(matches!(&stmts[2], ast::Stmt::Assign(a) if a.target.name == "s" && a.index.is_some()));
        let (_, diags) = parse(FileId(0), "def f(s: float) {\n  f(s) = 1\n  s\n}\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].message, "cannot assign to this expression");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "(".repeat(10_000) + &")".repeat(10_000);
        let (_, diags) = parse(FileId(0), &text);
        assert_eq!(diags[0].code, "too-deeply-nested");
        let long = vec!["1"; 5000].join(" + ");
        let (_, diags) = parse(FileId(0), &long);
        assert_eq!(diags[0].code, "too-deeply-nested");
    }
}
