//! The embedded standard library checks with zero diagnostics, every definition is documented,
//! and every name resolves.

#[test]
fn the_standard_library_checks_clean() {
    let (sources, checked) = optc::check_str("empty.opt", "");
    let rendered = optc::diagnostic::render(&checked.diagnostics, &sources);
    assert!(checked.diagnostics.is_empty(), "the standard library has diagnostics:\n{rendered}");
}

#[test]
fn every_definition_has_a_doc_comment() {
    let (_, checked) = optc::check_str("empty.opt", "");
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
    let (_, checked) = optc::check_str("empty.opt", "");
    for def in checked.program.defs.iter().filter(|d| d.is_stdlib && !d.name.starts_with('_')) {
        let text = format!("let x = {}()\n", def.name);
        let (sources, result) = optc::check_str("call.opt", &text);
        let bad: Vec<_> = result.diagnostics.iter().filter(|d| d.code != "missing-argument").collect();
        let rendered = optc::diagnostic::render(&result.diagnostics, &sources);
        assert!(bad.is_empty(), "`{}()` gives unexpected diagnostics:\n{rendered}", def.name);
    }
}
