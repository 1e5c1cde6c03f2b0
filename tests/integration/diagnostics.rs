//! Every `tests/diagnostics/**/*.opt` fixture through the checker. A fixture opens with the
//! codes it expects, `# error: [code] [code]`, `# warning: [code]`, both (`# error: [a]
//! warning: [b]`) or `# ok`, and its rendered diagnostics are snapshotted next to it as
//! `NAME.snap`. The expectation line is checked before the snapshot, so a blindly accepted
//! snapshot cannot hide a vanished error or warning. A second line `# layout: SPEC` also
//! instantiates the pipeline for that parameter layout (`name:4x3,other:3`), for the codes only
//! leaves show (a missing axis, a shape an `assert` refuses, a leaf no arm takes).

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{files_with_extension, root};

/// The error codes and the warning codes a fixture's first line promises.
fn expected_codes(path: &Path, text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let first = text.lines().next().unwrap_or("");
    if first.trim() == "# ok" {
        return Default::default();
    }
    let Some(rest) = first.strip_prefix("# ").filter(|r| r.starts_with("error:") || r.starts_with("warning:")) else {
        panic!("{}: the first line must be `# error: [code]`, `# warning: [code]` or `# ok`", path.display());
    };
    let (errors, warnings) = match rest.split_once("warning:") {
        Some((errors, warnings)) => (errors, warnings),
        None => (rest, ""),
    };
    let codes = |s: &str| -> BTreeSet<String> {
        s.split('[').skip(1).filter_map(|c| c.split(']').next()).map(|c| c.trim().to_string()).collect()
    };
    let (errors, warnings) = (codes(errors), codes(warnings));
    assert!(!errors.is_empty() || !warnings.is_empty(), "{}: no codes in `{first}`", path.display());
    (errors, warnings)
}

/// What checking `text` reports and, where it checks clean and has a pipeline, what
/// instantiating it for `layout` adds.
fn checked_on(name: &str, text: &str, layout: Option<&optc::ir::Layout>) -> (optc::source::SourceMap, Vec<optc::diagnostic::Diagnostic>) {
    let (sources, checked) = optc::check_str(name, text);
    let mut diagnostics = checked.diagnostics.clone();
    if let Some(layout) = layout
        && !checked.has_errors()
        && checked.program.pipeline.is_some()
    {
        match optc::ir::instantiate::instantiate(&checked.program, layout) {
            Ok(ir) => diagnostics.extend(ir.warnings),
            Err(errors) => diagnostics.extend(errors),
        }
    }
    (sources, diagnostics)
}

#[test]
fn diagnostic_fixtures_match_their_codes_and_snapshots() {
    let dir = root().join("tests/diagnostics");
    let fixtures = files_with_extension(&dir, "opt");
    assert!(fixtures.len() >= 50, "expected at least 50 fixtures, found {}", fixtures.len());
    for path in fixtures {
        let text = std::fs::read_to_string(&path).expect("readable fixture");
        let relative = path.strip_prefix(root()).unwrap_or(&path).display().to_string();
        // A fixture whose second line is `# layout: SPEC` is also instantiated for that layout,
        // for what only the leaves' names and shapes show.
        let layout = text.lines().nth(1).and_then(|l| l.strip_prefix("# layout: "));
        let layout = layout.map(|spec| optc::ir::Layout::parse(spec).unwrap_or_else(|e| panic!("{relative}: bad layout: {e}")));
        let (sources, diagnostics) = checked_on(&relative, &text, layout.as_ref());
        let rendered = optc::diagnostic::render(&diagnostics, &sources);
        let codes = |errors: bool| -> BTreeSet<String> { diagnostics.iter().filter(|d| d.is_error() == errors).map(|d| d.code.to_string()).collect() };
        let expected = expected_codes(&path, &text);
        assert_eq!((codes(true), codes(false)), expected, "{relative}: codes differ from its first line\n{rendered}");

        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let snapshot = format!("{text}\n----- diagnostics\n{rendered}");
        insta::with_settings!({
            snapshot_path => folder,
            prepend_module_to_snapshot => false,
            input_file => &path,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(stem, snapshot);
        });
    }
}

/// Every explained code's wrong example gets that code and its right example checks clean
/// (for the codes about globs and leaves, on a layout), so `optc check --explain` shows only
/// examples that do what they say.
#[test]
fn every_explanation_example_does_what_it_says() {
    let layout = optc::ir::Layout::parse("layers.0.weight:2x2,layers.0.bias:2").expect("a layout");
    let mut failures = Vec::new();
    for code in optc::codes::CODES.iter().filter(|c| !c.wrong.is_empty()) {
        for (text, wrong) in [(code.wrong, true), (code.right, false)] {
            let (sources, diagnostics) = checked_on("example.opt", text, Some(&layout));
            let has_code = diagnostics.iter().any(|d| d.code == code.code);
            let has_errors = diagnostics.iter().any(|d| d.is_error());
            if wrong != has_code || (!wrong && has_errors) {
                let rendered = optc::diagnostic::render(&diagnostics, &sources);
                let which = if wrong { "wrong" } else { "right" };
                failures.push(format!("`{}`, {which} example:\n{text}\n{rendered}", code.code));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A file saved by a Windows editor (a byte order mark) with old Mac line ends (a `\r` alone)
/// checks as the same file with `\n`: each message shows its own line, at its own number.
#[test]
fn byte_order_marks_and_carriage_returns_do_not_change_a_diagnostic() {
    let unix = "# a pipeline\n\nadam(lr=1e-3)\n";
    let mac = format!("\u{feff}{}", unix.replace('\n', "\r"));
    let (sources, checked) = optc::check_str("p.opt", unix);
    let expected = optc::diagnostic::render(&checked.diagnostics, &sources);
    let (sources, checked) = optc::check_str("p.opt", &mac);
    assert_eq!(optc::diagnostic::render(&checked.diagnostics, &sources), expected);
    assert!(expected.contains("p.opt:3:6"), "{expected}");
}
