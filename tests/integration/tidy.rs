//! Architecture invariants, checked by reading the sources: imports flow one way (the bottom
//! modules use none, and the interpreter never uses the JIT), and pest, Cranelift,
//! codespan-reporting and `unsafe` stay in their modules (`unsafe`: `jit`; `native` for
//! `#[target_feature]` calls; `arena` for the `madvise` that asks for huge pages on its own
//! memory). Every diagnostic code is explained.

use std::path::Path;

use crate::support::{files_with_extension, root};

/// Modules in data-flow order: a module may use only modules at or before its own rank. The
/// source end (`source`, `diagnostic`, `limits`, `glob`, `fmath`, `codes`, `stdlib`) and the helpers
/// every stage may use (`parallel`) are rank 0.
const RANKS: &[(&str, usize)] = &[
    ("arena", 0),
    ("source", 0),
    ("diagnostic", 0),
    ("limits", 0),
    ("glob", 0),
    ("fmath", 0),
    ("codes", 0),
    ("stdlib", 0),
    ("native", 0),
    ("parallel", 0),
    ("fsio", 0),
    ("syntax", 1),
    ("check", 2),
    ("ir", 3),
    ("interp", 4),
    ("jit", 4),
    ("runtime", 5),
    ("train", 6),
    ("cli", 7),
    ("python", 8),
];

/// Modules at the bottom: they use no other module of the crate.
const BOTTOM: &[&str] = &["arena", "source", "glob", "fmath", "codes", "parallel"];

/// Pairs of modules of one rank where the first must not use the second: the interpreter is
/// the reference the JIT is tested against, so it never borrows from it.
const APART: &[(&str, &str)] = &[("interp", "jit")];

fn module_of(path: &Path) -> Option<&'static str> {
    let rel = path.strip_prefix(root().join("src")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    RANKS.iter().find(|(m, _)| *m == name).map(|(m, _)| *m)
}

fn rank(module: &str) -> Option<usize> {
    RANKS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

fn sources() -> Vec<(std::path::PathBuf, String)> {
    files_with_extension(&root().join("src"), "rs")
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable source");
            (p, text)
        })
        .collect()
}

/// The modules of the crate a line of code names: `crate::x::...`, `crate::x;` and the names
/// of `use crate::{x, y::...}`.
fn modules_used(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or("");
            out.extend(group.split(',').map(|part| part.trim().split("::").next().unwrap_or("").trim()));
        } else {
            out.push(rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or(""));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

#[test]
fn imports_flow_one_way() {
    let mut violations = Vec::new();
    for (path, text) in sources() {
        let Some(module) = module_of(&path) else { continue };
        let own = rank(module).unwrap_or(0);
        for (i, line) in text.lines().enumerate() {
            for other in modules_used(line) {
                let at = format!("{}:{}: `{module}` uses `{other}`", path.display(), i + 1);
                let forbidden = rank(other).is_some_and(|r| r > own)
                    || (BOTTOM.contains(&module) && other != module && rank(other).is_some())
                    || APART.contains(&(module, other));
                if forbidden {
                    violations.push(at);
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_import_rule_sees_every_spelling() {
    assert_eq!(modules_used("use crate::jit::compile;"), ["jit"]);
    assert_eq!(modules_used("use crate::{arena::Arena, jit};"), ["arena", "jit"]);
    assert_eq!(modules_used("let x = crate::ir::plan(&ir);"), ["ir"]);
    assert!(modules_used("use super::jit;").is_empty());
}

#[test]
fn dependencies_stay_in_their_modules() {
    let mut violations = Vec::new();
    for (path, text) in sources() {
        let rel = path.strip_prefix(root()).unwrap_or(&path).display().to_string();
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        if (code.contains("pest::") || code.contains("pest_derive")) && !rel.starts_with("src/syntax/") {
            violations.push(format!("{rel} uses pest outside src/syntax/"));
        }
        if code.contains("cranelift") && !rel.starts_with("src/jit/") {
            violations.push(format!("{rel} uses Cranelift outside src/jit/"));
        }
        if (code.contains("pyo3::") || code.contains("numpy::")) && !rel.starts_with("src/python/") {
            violations.push(format!("{rel} uses PyO3 or numpy outside src/python/"));
        }
        if code.contains("codespan_reporting") && rel != "src/diagnostic.rs" {
            violations.push(format!("{rel} uses codespan-reporting outside src/diagnostic.rs"));
        }
        // `arena.rs` holds one call: `madvise` on the allocation it owns, before its first use
        // (a bottom module, it cannot ask `native` for it).
        if (code.contains("unsafe {") || code.contains("unsafe fn") || code.contains("unsafe impl")) && !rel.starts_with("src/jit/")
            && rel != "src/native.rs"
            && rel != "src/arena.rs"
        {
            violations.push(format!("{rel} uses `unsafe` outside src/jit/, src/native.rs and src/arena.rs"));
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn every_diagnostic_code_is_explained() {
    let mut missing = Vec::new();
    for (path, text) in sources() {
        // `Diagnostic::error("code", ...)`, possibly with the code on the next line.
        let mut rest = text.as_str();
        while let Some(at) = rest.find("Diagnostic::error(") {
            rest = &rest[at + "Diagnostic::error(".len()..];
            let Some(code) = rest.trim_start().strip_prefix('"').and_then(|r| r.split('"').next()) else { continue };
            if optc::codes::explain(code).is_none() {
                missing.push(format!("{}: `{code}`", path.display()));
            }
        }
    }
    // The budgets' codes are data in src/limits.rs.
    for limit in optc::limits::ALL {
        if optc::codes::explain(limit.code).is_none() {
            missing.push(format!("src/limits.rs: `{}`", limit.code));
        }
    }
    assert!(missing.is_empty(), "codes without an explanation in src/codes.rs:\n{}", missing.join("\n"));
}

/// docs/language.md lists every budget of src/limits.rs with its number and code.
#[test]
fn every_limit_is_documented() {
    let docs = std::fs::read_to_string(root().join("docs/language.md")).expect("docs/language.md");
    for limit in optc::limits::ALL {
        let max = limit.max.to_string();
        let with_commas = if max.len() > 3 {
            let digits: Vec<char> = max.chars().collect();
            let mut out = String::new();
            for (i, c) in digits.iter().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(*c);
            }
            out
        } else {
            max
        };
        let row = format!("| {with_commas} | `{}` |", limit.code);
        assert!(docs.contains(&row), "docs/language.md has no row ending `{row}` for `{}`", limit.message);
    }
}
