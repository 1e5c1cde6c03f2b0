//! The embedded standard library checks with zero diagnostics, every definition is documented,
//! and every name resolves; checking only the part of it a file reaches changes nothing.

use optc::check::{self, Expect};
use optc::ir::{Layout, instantiate, print};
use optc::SourceMap;

use crate::support::{conformance_dir, files_with_extension, not_supported_yet, root};

/// A file checked against every definition of the embedded standard library (the library
/// alone without one).
fn check_all(file: Option<(&str, &str)>) -> (SourceMap, check::Checked) {
    let mut sources = SourceMap::new();
    optc::stdlib::load(&mut sources);
    let id = file.map(|(name, text)| sources.add(name, text.to_string(), false));
    let checked = check::check_as(&sources, id, Expect::Pipeline);
    (sources, checked)
}

#[test]
fn the_standard_library_checks_clean() {
    let (sources, checked) = check_all(None);
    let rendered = optc::diagnostic::render(&checked.diagnostics, &sources);
    assert!(checked.diagnostics.is_empty(), "the standard library has diagnostics:\n{rendered}");
}

#[test]
fn every_definition_has_a_doc_comment() {
    let (_, checked) = check_all(None);
    let undocumented: Vec<&str> = checked
        .program
        .defs
        .iter()
        .filter(|d| d.is_stdlib && !d.name.starts_with('_') && d.doc.as_deref().is_none_or(|doc| doc.trim().is_empty()))
        .map(|d| d.name.as_str())
        .collect();
    assert!(undocumented.is_empty(), "undocumented: {undocumented:?}");
}

#[test]
fn every_public_transform_and_schedule_builds_from_its_defaults_or_fails_only_for_required_arguments() {
    // Calling each definition with no arguments either succeeds or reports only missing
    // arguments: the defaults themselves are consistent with the declared types and ranges.
    // Except by design `lbfgs()`, whose default is Optax's line search: it asks for
    // `linesearch=None` (tests/diagnostics/ranges/lbfgs_default_linesearch.opt).
    let (_, checked) = check_all(None);
    for def in checked.program.defs.iter().filter(|d| d.is_stdlib && !d.name.starts_with('_')) {
        let text = format!("let x = {}()\n", def.name);
        let (sources, result) = optc::check_str("call.opt", &text);
        let by_design = |code: &str| def.name == "lbfgs" && code == "failed-assert";
        let bad: Vec<_> = (result.diagnostics.iter())
            .filter(|d| !matches!(d.code, "missing-argument" | "missing-pipeline") && !by_design(d.code))
            .collect();
        let rendered = optc::diagnostic::render(&result.diagnostics, &sources);
        assert!(bad.is_empty(), "`{}()` gives unexpected diagnostics:\n{rendered}", def.name);
    }
}

/// The examples and the conformance pipelines, as `(name, text)`.
pub(crate) fn pipelines() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for path in files_with_extension(&root().join("examples"), "opt") {
        out.push((path.display().to_string(), std::fs::read_to_string(&path).expect("readable example")));
    }
    for path in files_with_extension(&conformance_dir(), "json") {
        let case: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("readable case")).expect("JSON");
        let pipeline = case["pipeline"].as_str().expect("a pipeline").to_string();
        if !not_supported_yet(&pipeline) {
            out.push((path.display().to_string(), pipeline));
        }
    }
    out
}

#[test]
fn checking_only_the_definitions_a_file_reaches_gives_the_same_pipeline_and_step() {
    let layout = Layout::parse("w:5x3,b:3,s:").expect("a layout");
    let cases = pipelines();
    assert!(cases.len() > 180, "expected the examples and conformance cases, found {}", cases.len());
    let mut fewer = 0;
    for (name, text) in &cases {
        let (sources, all) = check_all(Some((name, text)));
        let (_, needed) = optc::check_str(name, text);
        let render = |c: &check::Checked| optc::diagnostic::render(&c.diagnostics, &sources);
        assert_eq!(render(&needed), render(&all), "{name}: diagnostics differ");
        let (Some(a), Some(n)) = (&all.program.pipeline, &needed.program.pipeline) else {
            panic!("{name}: a pipeline is missing\n{}", render(&all));
        };
        let describe = |p: &optc::Program, tx| check::summary::describe(p, tx);
        assert_eq!(describe(&needed.program, n), describe(&all.program, a), "{name}: pipelines differ");
        let step = |p: &optc::Program| instantiate::instantiate(p, &layout).map(|ir| print::ir(&ir)).map_err(|d| d.len());
        assert_eq!(step(&needed.program), step(&all.program), "{name}: steps differ");
        fewer += usize::from(needed.program.defs.len() < all.program.defs.len() / 4);
    }
    // The point of it: a pipeline reaches a small part of the library.
    assert!(fewer * 10 > cases.len() * 9, "only {fewer} of {} pipelines check a quarter of the library or less", cases.len());
}

#[test]
fn each_item_of_the_standard_library_parses_alone_as_in_its_file() {
    let mut sources = SourceMap::new();
    optc::stdlib::load(&mut sources);
    let mut items = optc::stdlib::ITEMS.iter().peekable();
    for (k, (id, file)) in sources.files().enumerate() {
        let (whole, diagnostics) = optc::syntax::parse(id, &file.text);
        assert!(diagnostics.is_empty(), "{} does not parse cleanly", file.name);
        let mut alone = Vec::new();
        while let Some(item) = items.next_if(|i| i.file == k) {
            let parsed = optc::syntax::parse_items(&[(id, &file.text, item.range.clone())]).pop().flatten();
            let parsed = parsed.unwrap_or_else(|| panic!("{}: `{}` does not parse alone", file.name, item.name));
            alone.extend(parsed.items);
        }
        assert_eq!(Some(alone), whole.map(|w| w.items), "{}: its items parsed one by one differ", file.name);
    }
    assert!(items.next().is_none(), "items of files that are not in the standard library");
}
