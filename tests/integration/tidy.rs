//! Architecture invariants, checked by reading the sources: imports flow one way, and pest,
//! Cranelift, codespan-reporting and `unsafe` stay in their modules (`unsafe`: `jit`, and `native` for
//! `#[target_feature]` calls and the `madvise` that asks for huge pages). Every diagnostic code is explained.

use std::path::Path;

use crate::support::{files_with_extension, root};

/// Modules in data-flow order: a module may use only modules at or before its own rank. The
/// source end (`source`, `diagnostic`, `glob`, `fmath`, `codes`, `stdlib`) and the helpers every stage
/// may use (`parallel`) are rank 0.
const RANKS: &[(&str, usize)] = &[
    ("source", 0),
    ("diagnostic", 0),
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
];

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

#[test]
fn imports_flow_one_way() {
    let mut violations = Vec::new();
    for (path, text) in sources() {
        let Some(module) = module_of(&path) else { continue };
        let own = rank(module).unwrap_or(0);
        for (i, line) in text.lines().enumerate() {
            for (other, other_rank) in RANKS {
                let uses = line.contains(&format!("crate::{other}::")) || line.contains(&format!("crate::{other};"));
                if uses && *other_rank > own {
                    violations.push(format!("{}:{}: `{module}` uses `{other}`", path.display(), i + 1));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
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
        if code.contains("codespan_reporting") && rel != "src/diagnostic.rs" {
            violations.push(format!("{rel} uses codespan-reporting outside src/diagnostic.rs"));
        }
        if (code.contains("unsafe {") || code.contains("unsafe fn") || code.contains("unsafe impl")) && !rel.starts_with("src/jit/")
            && rel != "src/native.rs"
        {
            violations.push(format!("{rel} uses `unsafe` outside src/jit/ and src/native.rs"));
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
    assert!(missing.is_empty(), "codes without an explanation in src/codes.rs:\n{}", missing.join("\n"));
}
